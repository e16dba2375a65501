//! The store commands of the CLI (SPEC section 9): verify, backup, restore,
//! rotate-root-key, root-key generate, with the root key beside the store,
//! in a file or in an environment variable.
#![cfg(feature = "cli")]

use std::path::Path;
use std::process::{Command, Output};

fn localkms(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_localkms"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run localkms")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "status {:?}: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Fails with exactly one line on stderr.
fn fails(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    err
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn encrypt(dir: &str, extra: &[&str]) -> (String, String) {
    let mut args = vec!["--data-dir", dir];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["CreateKey"]);
    let v: serde_json::Value = serde_json::from_str(&ok(&localkms(&args, &[]))).expect("json");
    let key = v["KeyMetadata"]["KeyId"].as_str().expect("id").to_owned();
    let mut args = vec!["--data-dir", dir];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["Encrypt", "--KeyId", &key, "--Plaintext", "aGVsbG8="]);
    let v: serde_json::Value = serde_json::from_str(&ok(&localkms(&args, &[]))).expect("json");
    (key, v["CiphertextBlob"].as_str().expect("blob").to_owned())
}

fn decrypts(dir: &str, extra: &[&str], env: &[(&str, &str)], blob: &str) -> bool {
    let mut args = vec!["--data-dir", dir];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["Decrypt", "--CiphertextBlob", blob]);
    localkms(&args, env).status.success()
}

#[test]
fn root_key_generate_writes_0600_and_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let f = tmp.path().join("k");
    ok(&localkms(&["root-key", "generate", s(&f)], &[]));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&f).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let text = std::fs::read_to_string(&f).expect("read");
    assert_eq!(text.trim().len(), 64);
    let err = fails(&localkms(&["root-key", "generate", s(&f)], &[]));
    assert!(err.contains("cannot write"), "{err}");
    assert_eq!(std::fs::read_to_string(&f).expect("read"), text);
}

#[test]
fn verify_backup_restore_rotate_with_the_key_beside_the_store() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path().join("d");
    let (_, blob) = encrypt(s(&d), &[]);
    let out = ok(&localkms(&["--data-dir", s(&d), "verify"], &[]));
    assert!(out.contains("ok"), "{out}");
    let b = tmp.path().join("b.bak");
    ok(&localkms(&["--data-dir", s(&d), "backup", s(&b)], &[]));
    fails(&localkms(&["--data-dir", s(&d), "backup", s(&b)], &[]));
    // Restore into a new directory with the same key (a key file first).
    let r = tmp.path().join("r");
    std::fs::create_dir(&r).expect("mkdir");
    std::fs::copy(d.join("root.key"), r.join("root.key")).expect("copy key");
    ok(&localkms(&["--data-dir", s(&r), "restore", s(&b)], &[]));
    assert!(decrypts(s(&r), &[], &[], &blob));
    // Not into a store that has records.
    let err = fails(&localkms(&["--data-dir", s(&r), "restore", s(&b)], &[]));
    assert!(err.contains("not empty"), "{err}");
    // Rotate: root.key is replaced; the blob still decrypts.
    let new = tmp.path().join("new.key");
    ok(&localkms(&["root-key", "generate", s(&new)], &[]));
    let old_key = std::fs::read(d.join("root.key")).expect("key");
    ok(&localkms(
        &[
            "--data-dir",
            s(&d),
            "rotate-root-key",
            "--new-root-key-file",
            s(&new),
        ],
        &[],
    ));
    let now = std::fs::read_to_string(d.join("root.key")).expect("key");
    assert_eq!(now, std::fs::read_to_string(&new).expect("new"));
    assert!(decrypts(s(&d), &[], &[], &blob));
    ok(&localkms(&["--data-dir", s(&d), "verify"], &[]));
    // The old key is refused with a clear error.
    let old = tmp.path().join("old.key");
    std::fs::write(&old, &old_key).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let err = fails(&localkms(
        &["--data-dir", s(&d), "--root-key-file", s(&old), "verify"],
        &[],
    ));
    assert!(err.contains("retired"), "{err}");
}

#[test]
fn root_key_file_and_env_work_on_every_store_command() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let k1 = tmp.path().join("k1");
    let k2 = tmp.path().join("k2");
    ok(&localkms(&["root-key", "generate", s(&k1)], &[]));
    ok(&localkms(&["root-key", "generate", s(&k2)], &[]));
    let d = tmp.path().join("d");
    let with_k1 = ["--root-key-file", s(&k1)];
    let (_, blob) = encrypt(s(&d), &with_k1);
    assert!(!d.join("root.key").exists());
    ok(&localkms(
        &["--data-dir", s(&d), "--root-key-file", s(&k1), "verify"],
        &[],
    ));
    let hex1 = std::fs::read_to_string(&k1).expect("k1");
    let env = [("ROOT1", hex1.trim())];
    // The global option after the command, and from the environment.
    ok(&localkms(
        &["--data-dir", s(&d), "verify", "--root-key-env", "ROOT1"],
        &env,
    ));
    let b = tmp.path().join("b");
    ok(&localkms(
        &[
            "--data-dir",
            s(&d),
            "--root-key-env",
            "ROOT1",
            "backup",
            s(&b),
        ],
        &env,
    ));
    let r = tmp.path().join("r");
    ok(&localkms(
        &[
            "--data-dir",
            s(&r),
            "--root-key-env",
            "ROOT1",
            "restore",
            s(&b),
        ],
        &env,
    ));
    assert!(decrypts(s(&r), &["--root-key-env", "ROOT1"], &env, &blob));
    // A wrong key: one line, non-zero.
    fails(&localkms(
        &["--data-dir", s(&r), "--root-key-file", s(&k2), "verify"],
        &[],
    ));
    // Rotate with the key in a file: the file is the operator's to replace.
    ok(&localkms(
        &[
            "--data-dir",
            s(&d),
            "--root-key-file",
            s(&k1),
            "rotate-root-key",
            "--new-root-key-file",
            s(&k2),
        ],
        &[],
    ));
    assert!(decrypts(s(&d), &["--root-key-file", s(&k2)], &[], &blob));
    let err = fails(&localkms(
        &["--data-dir", s(&d), "--root-key-file", s(&k1), "verify"],
        &[],
    ));
    assert!(err.contains("retired"), "{err}");
    // A missing --data-dir is a usage error.
    fails(&localkms(&["verify"], &[]));
}

#[test]
fn verify_exits_non_zero_on_a_damaged_store() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let k = tmp.path().join("k");
    ok(&localkms(&["root-key", "generate", s(&k)], &[]));
    let d = tmp.path().join("d");
    encrypt(s(&d), &["--root-key-file", s(&k)]);
    // Delete a record behind the library's back.
    {
        use localkms::store::Keystore as _;
        let raw = localkms::store::SledKeystore::open(d.join("db")).expect("raw");
        let mut batch = localkms::store::Batch::new();
        let mut victim = None;
        raw.visit_all(&mut |ns, id, _| {
            if ns == "tag" || ns == "key-order" {
                victim = Some((if ns == "tag" { "tag" } else { "key-order" }, id.to_vec()));
            }
            Ok(())
        })
        .expect("visit");
        let (ns, id) = victim.expect("a record");
        batch.delete(ns, id);
        raw.apply(batch).expect("apply");
        raw.flush().expect("flush");
    }
    let o = localkms(
        &["--data-dir", s(&d), "--root-key-file", s(&k), "verify"],
        &[],
    );
    fails(&o);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("digest"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}
