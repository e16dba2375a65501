//! The `localkms` command line (feature `cli`): `--Name value` pairs into
//! `wire::dispatch`, JSON on stdout, errors as JSON on stderr with a non-zero
//! exit status.
#![cfg(feature = "cli")]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_localkms"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run localkms")
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)))
}

#[test]
fn actions_succeed_and_print_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(dir.path(), &["CreateKey", "--Description", "orders"]);
    assert!(out.status.success(), "{out:?}");
    let v = json(&out.stdout);
    let id = v["KeyMetadata"]["KeyId"]
        .as_str()
        .expect("KeyId")
        .to_owned();
    assert_eq!(v["KeyMetadata"]["Description"], "orders");
    // The store persists between runs; `--Name=value` works too.
    let out = run(
        dir.path(),
        &["CreateAlias", "--AliasName=alias/app", "--KeyId", &id],
    );
    assert!(out.status.success(), "{out:?}");
    let out = run(dir.path(), &["DescribeKey", "--KeyId", "alias/app"]);
    assert_eq!(json(&out.stdout)["KeyMetadata"]["KeyId"], id.as_str());
    let out = run(dir.path(), &["ListKeys", "--Format", "XML"]);
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert!(text.starts_with("<?xml"), "{text}");
}

#[test]
fn errors_go_to_stderr_as_json_with_a_failing_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (args, code) in [
        (
            &["DescribeKey", "--KeyId", "nope"][..],
            "Forbidden.KeyNotFound",
        ),
        (&["DescribeKey"][..], "MissingParameter"),
        (&["NoSuchAction", "--x", "1"][..], "InvalidAction.NotFound"),
    ] {
        let out = run(dir.path(), args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(out.stdout.is_empty());
        assert_eq!(json(&out.stderr)["Code"], code, "{args:?}");
    }
    // A usage error: a name without a value.
    let out = run(dir.path(), &["DescribeKey", "--KeyId"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_lists_the_actions() {
    let out = Command::new(env!("CARGO_BIN_EXE_localkms"))
        .arg("--help")
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf-8");
    for (name, _) in localkms::wire::actions() {
        assert!(text.contains(name), "{name} missing from help");
    }
}
