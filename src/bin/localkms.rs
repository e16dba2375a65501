//! `localkms`: the API on the command line, in the style of the aliyun CLI.
//!
//! ```text
//! localkms --data-dir DIR Encrypt --KeyId alias/app --Plaintext hello
//! ```
//!
//! Each `--Name value` (or `--Name=value`) pair after the action becomes a
//! request parameter, and the request goes through `localkms::wire::dispatch`,
//! the same code a gateway uses. The JSON response is printed on stdout; an
//! error response goes to stderr and the exit status is 1 (2 for a usage
//! error).

use std::process::ExitCode;

use clap::{Arg, ArgAction, Command};
use localkms::{Kms, wire};

fn cli() -> Command {
    let mut cmd = Command::new("localkms")
        .about("A local key management service: the Alibaba Cloud KMS API (2016-01-20) over a local store")
        .after_help(
            "Parameters follow the action as --Name value pairs, with the API's names:\n  \
             localkms --data-dir ./kms CreateKey --Description orders\n  \
             localkms --data-dir ./kms Encrypt --KeyId alias/app --Plaintext hello\n\
             Add --Format XML for an XML response.",
        )
        .arg(
            Arg::new("data-dir")
                .long("data-dir")
                .value_name("DIR")
                .required(true)
                .help("The store directory (created on first use, with its root key)"),
        )
        .subcommand_required(true)
        .subcommand_value_name("ACTION")
        .subcommand_help_heading("Actions")
        .allow_external_subcommands(true);
    for (name, summary) in wire::actions() {
        cmd = cmd.subcommand(
            Command::new(name).about(summary).arg(
                Arg::new("params")
                    .value_name("--Name value")
                    .num_args(0..)
                    .trailing_var_arg(true)
                    .allow_hyphen_values(true)
                    .action(ArgAction::Append)
                    .help("The action's parameters, by their API names"),
            ),
        );
    }
    cmd
}

/// Turns `--Name value` and `--Name=value` into parameter pairs.
fn pairs(args: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let Some(name) = arg.strip_prefix("--").filter(|n| !n.is_empty()) else {
            return Err(format!("expected --Name value, found {arg:?}"));
        };
        match name.split_once('=') {
            Some((n, v)) => out.push((n.to_owned(), v.to_owned())),
            None => {
                let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
                out.push((name.to_owned(), value.clone()));
            }
        }
    }
    Ok(out)
}

fn main() -> ExitCode {
    let matches = cli().get_matches();
    let Some(data_dir) = matches.get_one::<String>("data-dir") else {
        return ExitCode::from(2); // clap enforces `required`
    };
    let Some((action, sub)) = matches.subcommand() else {
        return ExitCode::from(2); // clap enforces `subcommand_required`
    };
    // Listed actions keep their parameters under "params"; an unknown
    // action's arguments arrive as external-subcommand values.
    let raw: Vec<String> = sub
        .try_get_many::<String>("params")
        .ok()
        .flatten()
        .map(|v| v.cloned().collect())
        .or_else(|| {
            sub.try_get_many::<std::ffi::OsString>("")
                .ok()
                .flatten()
                .map(|v| v.map(|s| s.to_string_lossy().into_owned()).collect())
        })
        .unwrap_or_default();
    let mut params = vec![("Action".to_owned(), action.to_owned())];
    match pairs(&raw) {
        Ok(p) => params.extend(p),
        Err(msg) => {
            eprintln!("error: {msg}");
            return ExitCode::from(2);
        }
    }
    let kms = match Kms::open(data_dir) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("{}", wire::error(&params, &e).body);
            return ExitCode::FAILURE;
        }
    };
    let response = wire::dispatch(&kms, &params);
    if response.status == 200 {
        println!("{}", response.body);
        ExitCode::SUCCESS
    } else {
        eprintln!("{}", response.body);
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_is_well_formed() {
        cli().debug_assert();
    }

    #[test]
    fn pairs_from_arguments() {
        let args: Vec<String> = [
            "--KeyId",
            "alias/app",
            "--Plaintext=a=b",
            "--Description",
            "--x",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        assert_eq!(
            pairs(&args).unwrap(),
            [
                ("KeyId".to_owned(), "alias/app".to_owned()),
                ("Plaintext".to_owned(), "a=b".to_owned()),
                ("Description".to_owned(), "--x".to_owned()),
            ]
        );
        assert!(pairs(&["KeyId".to_owned()]).is_err());
        assert!(pairs(&["--KeyId".to_owned()]).is_err());
        assert!(pairs(&["--".to_owned(), "x".to_owned()]).is_err());
    }
}
