//! `localkms`: the API on the command line, in the style of the aliyun CLI,
//! and `localkms serve`, the API over HTTP for the official SDKs.
//!
//! ```text
//! localkms --data-dir DIR Encrypt --KeyId alias/app --Plaintext hello
//! ACCESS_KEY_SECRET=testsecret localkms --data-dir DIR serve \
//!     --listen 127.0.0.1:8080 --access-key-id testid --access-key-secret-env ACCESS_KEY_SECRET
//! ```
//!
//! Each `--Name value` (or `--Name=value`) pair after an action becomes a
//! request parameter, and the request goes through `localkms::wire::dispatch`,
//! the same code `serve` uses. The JSON response is printed on stdout; an
//! error response goes to stderr and the exit status is 1. A usage error is
//! one line on stderr and exit status 2.
//!
//! The global options (`--data-dir`, `--root-key-file`, `--root-key-env`,
//! `--log`, and with feature `postgres` `--postgres`, `--postgres-env`,
//! `--postgres-schema`) may stand before or after the subcommand.
//!
//! ```text
//! LOCALKMS_PG='postgresql://kms:PASSWORD@db.internal/kms?sslmode=require' \
//!     localkms --postgres-env LOCALKMS_PG --root-key-file /etc/localkms/root.key ListKeys
//! ```

mod serve;
mod store_cmds;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Arg, ArgAction, ArgMatches, Command};
use localkms::{Kms, KmsBuilder, wire};

/// The global options: (long name, value name, help).
const GLOBALS: &[(&str, &str, &str)] = &[
    (
        "data-dir",
        "DIR",
        "The store directory (created on first use, mode 0700)",
    ),
    (
        "root-key-file",
        "FILE",
        "Read the root key from FILE (32 bytes, 64 hex digits or base64) instead of DIR/root.key",
    ),
    (
        "root-key-env",
        "VAR",
        "Read the root key from the environment variable VAR (64 hex digits or base64) instead of DIR/root.key",
    ),
    (
        "log",
        "FILTER",
        "What to log on stderr: a level (error, warn, info, debug, trace) or target=level pairs, as RUST_LOG [default: RUST_LOG, else info for serve and warn otherwise]",
    ),
];

/// The PostgreSQL global options (feature `postgres`).
#[cfg(feature = "postgres")]
const PG_GLOBALS: &[(&str, &str, &str)] = &[
    (
        "postgres",
        "URL",
        "Keep the store in PostgreSQL at URL (postgresql://USER:PASSWORD@HOST:PORT/DB?sslmode=require) instead of --data-dir; prefer --postgres-env, which keeps the password out of argv",
    ),
    (
        "postgres-env",
        "VAR",
        "As --postgres, with the URL read from the environment variable VAR",
    ),
    (
        "postgres-schema",
        "NAME",
        "The schema holding the store in the PostgreSQL database [default: localkms]",
    ),
];
#[cfg(not(feature = "postgres"))]
const PG_GLOBALS: &[(&str, &str, &str)] = &[];

/// The schema `--postgres-schema` defaults to.
#[cfg(feature = "postgres")]
const DEFAULT_SCHEMA: &str = "localkms";

fn cli() -> Command {
    let mut cmd = Command::new("localkms")
        .version(env!("CARGO_PKG_VERSION"))
        .about("A local key management service: the Alibaba Cloud KMS API (2016-01-20) over a local store")
        .after_help(
            "Parameters follow the action as --Name value pairs, with the API's names:\n  \
             localkms --data-dir ./kms CreateKey --Description orders\n  \
             localkms --data-dir ./kms Encrypt --KeyId alias/app --Plaintext hello\n\
             Add --Format XML for an XML response. `localkms serve --help` shows the server's options.",
        )
        .subcommand_required(true)
        .subcommand_value_name("ACTION")
        .subcommand_help_heading("Actions")
        .allow_external_subcommands(true);
    for (id, value_name, help) in GLOBALS.iter().chain(PG_GLOBALS) {
        cmd = cmd.arg(
            Arg::new(*id)
                .long(*id)
                .value_name(*value_name)
                .global(true)
                .help(*help),
        );
    }
    cmd = cmd.subcommand(serve::command());
    for c in store_cmds::commands() {
        cmd = cmd.subcommand(c);
    }
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

/// The global options, wherever they were given.
#[derive(Debug, Default, PartialEq, Eq)]
struct Globals {
    data_dir: Option<String>,
    root_key_file: Option<String>,
    root_key_env: Option<String>,
    log: Option<String>,
    #[cfg(feature = "postgres")]
    postgres: Option<String>,
    #[cfg(feature = "postgres")]
    postgres_env: Option<String>,
    #[cfg(feature = "postgres")]
    postgres_schema: Option<String>,
}

/// Where the store is, as the options name it.
enum StoreArg<'a> {
    Dir(&'a str),
    #[cfg(feature = "postgres")]
    Postgres {
        /// May hold a password: never shown.
        url: zeroize::Zeroizing<String>,
        schema: &'a str,
    },
}

impl Globals {
    fn from_matches(m: &ArgMatches) -> Self {
        let get = |id: &str| m.try_get_one::<String>(id).ok().flatten().cloned();
        Self {
            data_dir: get("data-dir"),
            root_key_file: get("root-key-file"),
            root_key_env: get("root-key-env"),
            log: get("log"),
            #[cfg(feature = "postgres")]
            postgres: get("postgres"),
            #[cfg(feature = "postgres")]
            postgres_env: get("postgres-env"),
            #[cfg(feature = "postgres")]
            postgres_schema: get("postgres-schema"),
        }
    }

    /// Sets a global option met among an action's `--Name value` pairs
    /// (the API's names are CamelCase, so they cannot clash). Returns false
    /// for an API parameter.
    fn take(&mut self, name: &str, value: &str) -> Result<bool, String> {
        let slot = match name {
            "data-dir" => &mut self.data_dir,
            "root-key-file" => &mut self.root_key_file,
            "root-key-env" => &mut self.root_key_env,
            "log" => &mut self.log,
            #[cfg(feature = "postgres")]
            "postgres" => &mut self.postgres,
            #[cfg(feature = "postgres")]
            "postgres-env" => &mut self.postgres_env,
            #[cfg(feature = "postgres")]
            "postgres-schema" => &mut self.postgres_schema,
            _ => return Ok(false),
        };
        set_once(slot, name, value.to_owned())?;
        Ok(true)
    }

    /// The store the options name, checked: a usage error otherwise.
    fn store(&self) -> Result<StoreArg<'_>, String> {
        if self.root_key_file.is_some() && self.root_key_env.is_some() {
            return Err("--root-key-file and --root-key-env cannot be used together".into());
        }
        #[cfg(feature = "postgres")]
        if let Some(store) = self.postgres_store()? {
            return Ok(store);
        }
        match &self.data_dir {
            Some(dir) => Ok(StoreArg::Dir(dir)),
            None if cfg!(feature = "postgres") => {
                Err("--data-dir, --postgres or --postgres-env is required".into())
            }
            None => Err("--data-dir is required".into()),
        }
    }

    /// The PostgreSQL store, if the options name one.
    #[cfg(feature = "postgres")]
    fn postgres_store(&self) -> Result<Option<StoreArg<'_>>, String> {
        let url = match (&self.postgres, &self.postgres_env) {
            (Some(_), Some(_)) => {
                return Err("--postgres and --postgres-env cannot be used together".into());
            }
            (Some(url), None) => zeroize::Zeroizing::new(url.clone()),
            (None, Some(var)) => match std::env::var(var) {
                Ok(url) if !url.is_empty() => zeroize::Zeroizing::new(url),
                Ok(_) | Err(std::env::VarError::NotPresent) => {
                    return Err(format!(
                        "--postgres-env {var}: the variable is not set or empty"
                    ));
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(format!("--postgres-env {var}: the value is not UTF-8"));
                }
            },
            (None, None) => {
                if self.postgres_schema.is_some() {
                    return Err("--postgres-schema needs --postgres or --postgres-env".into());
                }
                return Ok(None);
            }
        };
        let flag = if self.postgres.is_some() {
            "--postgres"
        } else {
            "--postgres-env"
        };
        if self.data_dir.is_some() {
            return Err(format!("--data-dir and {flag} cannot be used together"));
        }
        if self.root_key_file.is_none() && self.root_key_env.is_none() {
            return Err(format!(
                "{flag} needs --root-key-file or --root-key-env: \
                 a PostgreSQL store has no directory to keep its root key beside"
            ));
        }
        let schema = self.postgres_schema.as_deref().unwrap_or(DEFAULT_SCHEMA);
        Ok(Some(StoreArg::Postgres { url, schema }))
    }

    /// Opens the store the options name, with `configure` applied to the
    /// builder. Usage errors (see [`Globals::store`]) come first, as
    /// `Err(Usage)`.
    fn open_with(
        &self,
        configure: impl FnOnce(KmsBuilder) -> KmsBuilder,
    ) -> Result<Kms, OpenError> {
        let store = self.store().map_err(OpenError::Usage)?;
        let (builder, place) = match &store {
            StoreArg::Dir(dir) => (Kms::builder().sled(dir), format!("the store in {dir}")),
            #[cfg(feature = "postgres")]
            StoreArg::Postgres { url, schema } => {
                let place = format!("the PostgreSQL store in schema {schema}");
                let pg = localkms::store::PostgresKeystore::connect(url, schema)
                    .map_err(|e| OpenError::Failure(format!("cannot open {place}: {e}")))?;
                (Kms::builder().keystore(pg), place)
            }
        };
        let builder = match (&self.root_key_file, &self.root_key_env) {
            (Some(file), _) => builder.root_key_file(file),
            (None, Some(var)) => builder.root_key_env(var),
            (None, None) => builder.root_key_beside_store(),
        };
        configure(builder)
            .build()
            .map_err(|e| OpenError::Failure(format!("cannot open {place}: {e}")))
    }

    /// Opens the store, or prints why not and gives the exit status.
    fn open_or_exit(
        &self,
        configure: impl FnOnce(KmsBuilder) -> KmsBuilder,
    ) -> Result<Kms, ExitCode> {
        self.open_with(configure).map_err(|e| match e {
            OpenError::Usage(msg) => usage_error(&msg),
            OpenError::Failure(msg) => failure(&msg),
        })
    }
}

/// Why the store did not open.
#[derive(Debug)]
enum OpenError {
    /// The options are wrong (exit status 2).
    Usage(String),
    /// The store refused (exit status 1).
    Failure(String),
}

fn set_once<T>(slot: &mut Option<T>, name: &str, value: T) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("--{name} is given more than once"));
    }
    *slot = Some(value);
    Ok(())
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

/// clap's error message on one line: the lines before its usage, without
/// its tips.
fn one_line(rendered: &str) -> String {
    let parts: Vec<&str> = rendered
        .lines()
        .take_while(|l| !l.starts_with("Usage:"))
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
        .collect();
    let text = parts.join(" ");
    match text.strip_prefix("error: ") {
        Some(rest) => rest.to_owned(),
        None if text.is_empty() => "bad arguments".to_owned(),
        None => text,
    }
}

/// Prints a usage error as one line; exit status 2.
fn usage_error(msg: &str) -> ExitCode {
    eprintln!("error: {msg} (see localkms --help)");
    ExitCode::from(2)
}

/// Prints a runtime error as one line; exit status 1.
fn failure(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::FAILURE
}

/// Logs to stderr through `tracing`, filtered by `--log`, else `RUST_LOG`,
/// else `default`.
fn init_logging(filter: Option<&str>, default: &str) -> Result<(), String> {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let from_env = std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty());
    let (text, source) = match (filter, &from_env) {
        (Some(f), _) => (f, "--log"),
        (None, Some(env)) => (env.as_str(), "RUST_LOG"),
        (None, None) => (default, "the default"),
    };
    let targets: Targets = text
        .parse()
        .map_err(|e| format!("{source} {text:?}: {e}"))?;
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false),
        )
        .with(targets)
        .try_init()
        .map_err(|e| format!("cannot set up logging: {e}"))
}

fn main() -> ExitCode {
    let matches = match cli().try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                let _ = e.print();
                return ExitCode::from(2);
            }
            return usage_error(&one_line(&e.render().to_string()));
        }
    };
    let Some((name, sub)) = matches.subcommand() else {
        return usage_error("no action given"); // clap enforces `subcommand_required`
    };
    let globals = Globals::from_matches(sub);
    if name == "serve" {
        return serve::run(&globals, sub);
    }
    if store_cmds::NAMES.contains(&name) {
        if let Err(msg) = init_logging(globals.log.as_deref(), "warn") {
            return usage_error(&msg);
        }
        return store_cmds::run(&globals, name, sub);
    }
    run_action(globals, name, sub)
}

/// One API action: its parameters into `wire::dispatch`.
fn run_action(mut globals: Globals, action: &str, sub: &ArgMatches) -> ExitCode {
    // Listed actions keep their parameters under "params"; an unknown
    // action's arguments arrive as external-subcommand values.
    let raw: Vec<String> = sub
        .try_get_many::<String>("params")
        .ok()
        .flatten()
        .map(|v| v.cloned().collect())
        .or_else(|| {
            sub.try_get_many::<OsString>("")
                .ok()
                .flatten()
                .map(|v| v.map(|s| s.to_string_lossy().into_owned()).collect())
        })
        .unwrap_or_default();
    let mut params = vec![("Action".to_owned(), action.to_owned())];
    let parsed = pairs(&raw).and_then(|pairs| {
        for (name, value) in pairs {
            if !globals.take(&name, &value)? {
                params.push((name, value));
            }
        }
        Ok(())
    });
    if let Err(msg) = parsed {
        return usage_error(&msg);
    }
    if let Err(msg) = init_logging(globals.log.as_deref(), "warn") {
        return usage_error(&msg);
    }
    let kms = match globals.open_or_exit(|b| b) {
        Ok(k) => k,
        Err(status) => return status,
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

    #[test]
    fn clap_errors_on_one_line() {
        let e = cli()
            .try_get_matches_from(["localkms", "serve", "--access-key-id", "a"])
            .unwrap_err();
        let line = one_line(&e.render().to_string());
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("--listen <ADDR>"), "{line}");
        assert!(!line.starts_with("error"), "{line}");
        assert_eq!(one_line(""), "bad arguments");
    }

    #[test]
    fn global_options_among_parameters() {
        let mut g = Globals::default();
        assert_eq!(g.take("data-dir", "d"), Ok(true));
        assert_eq!(g.take("root-key-env", "K"), Ok(true));
        assert_eq!(g.take("KeyId", "k"), Ok(false));
        assert!(g.take("data-dir", "again").is_err());
        assert_eq!(g.data_dir.as_deref(), Some("d"));
        assert_eq!(g.root_key_env.as_deref(), Some("K"));
    }
}
