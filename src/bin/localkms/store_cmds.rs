//! The store's maintenance commands (SPEC section 9): `verify`, `backup`,
//! `restore`, `rotate-root-key` and `root-key generate`.

use std::process::ExitCode;

use clap::{Arg, ArgMatches, Command};
use localkms::RootKey;

use crate::{Globals, failure, usage_error};

/// The commands' names.
pub(crate) const NAMES: &[&str] = &["verify", "backup", "restore", "rotate-root-key", "root-key"];

/// The commands, for the CLI's table.
pub(crate) fn commands() -> Vec<Command> {
    vec![
        Command::new("verify")
            .about("Check every record and the store's digest; exit 1 when not ok"),
        Command::new("backup")
            .about("Write a consistent backup of the store to FILE (refuses to overwrite)")
            .arg(Arg::new("file").value_name("FILE").required(true)),
        Command::new("restore")
            .about("Restore the backup FILE into the store directory, which must be empty or new")
            .arg(Arg::new("file").value_name("FILE").required(true)),
        Command::new("rotate-root-key")
            .about("Re-seal the store under the root key in --new-root-key-file (root.key beside the store is replaced)")
            .arg(
                Arg::new("new-root-key-file")
                    .long("new-root-key-file")
                    .value_name("FILE")
                    .required(true),
            ),
        Command::new("root-key")
            .about("Root key files")
            .subcommand_required(true)
            .subcommand(
                Command::new("generate")
                    .about("Write a new random root key to FILE (mode 0600; refuses to overwrite)")
                    .arg(Arg::new("file").value_name("FILE").required(true)),
            ),
    ]
}

/// Runs command `name`, one of [`NAMES`].
pub(crate) fn run(globals: &Globals, name: &str, sub: &ArgMatches) -> ExitCode {
    let file = |m: &ArgMatches, id: &str| m.get_one::<String>(id).cloned().unwrap_or_default();
    match name {
        "verify" => verify(globals),
        "backup" => backup(globals, &file(sub, "file")),
        "restore" => restore(globals, &file(sub, "file")),
        "rotate-root-key" => rotate(globals, &file(sub, "new-root-key-file")),
        "root-key" => match sub.subcommand() {
            Some(("generate", m)) => generate(&file(m, "file")),
            _ => usage_error("root-key needs a subcommand: generate"),
        },
        _ => usage_error(&format!("unknown command {name}")),
    }
}

fn open(globals: &Globals) -> Result<localkms::Kms, ExitCode> {
    globals.open_or_exit(|b| b)
}

fn verify(globals: &Globals) -> ExitCode {
    let kms = match open(globals) {
        Ok(k) => k,
        Err(code) => return code,
    };
    match kms.verify() {
        Ok(report) if report.is_ok() => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Ok(report) => {
            println!("{report}");
            failure("the store failed verification (see the report above)")
        }
        Err(e) => failure(&format!("verify: {e}")),
    }
}

fn backup(globals: &Globals, path: &str) -> ExitCode {
    let kms = match open(globals) {
        Ok(k) => k,
        Err(code) => return code,
    };
    let file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) => return failure(&format!("cannot create {path}: {e}")),
    };
    let mut out = std::io::BufWriter::new(file);
    let info = match kms.backup(&mut out) {
        Ok(i) => i,
        Err(e) => return failure(&format!("backup: {e}")),
    };
    let synced = out
        .into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all());
    if let Err(e) = synced {
        return failure(&format!("cannot write {path}: {e}"));
    }
    println!(
        "backup of commit {} ({} records, {} bytes) written to {path}",
        info.seq, info.records, info.bytes
    );
    ExitCode::SUCCESS
}

fn restore(globals: &Globals, path: &str) -> ExitCode {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return failure(&format!("cannot read {path}: {e}")),
    };
    let kms = match globals.open_or_exit(|b| b.restore(bytes.as_slice())) {
        Ok(k) => k,
        Err(code) => return code,
    };
    match kms.verify() {
        Ok(r) if r.is_ok() => {
            println!("restored {path}: {r}");
            ExitCode::SUCCESS
        }
        Ok(r) => failure(&format!("restored, but verify failed: {r}")),
        Err(e) => failure(&format!("restored, but verify failed: {e}")),
    }
}

fn rotate(globals: &Globals, new_file: &str) -> ExitCode {
    let new = match RootKey::from_file(new_file) {
        Ok(k) => k,
        Err(e) => return failure(&e.to_string()),
    };
    let kms = match open(globals) {
        Ok(k) => k,
        Err(code) => return code,
    };
    if let Err(e) = kms.rotate_root_key(new) {
        return failure(&format!("rotate-root-key: {e}"));
    }
    if globals.root_key_file.is_some() || globals.root_key_env.is_some() {
        println!(
            "rotated: the store now opens only with the key in {new_file}; the old key is refused"
        );
    } else {
        println!("rotated: root.key beside the store holds the new key; the old key is refused");
    }
    ExitCode::SUCCESS
}

fn generate(path: &str) -> ExitCode {
    let key = match RootKey::random() {
        Ok(k) => k,
        Err(e) => return failure(&e.to_string()),
    };
    match key.write_new_file(path) {
        Ok(()) => {
            println!("wrote a new root key to {path} (mode 0600)");
            ExitCode::SUCCESS
        }
        Err(e) => failure(&format!("cannot write {path}: {e}")),
    }
}
