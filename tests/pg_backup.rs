//! Backup and restore between sled and PostgreSQL, both ways (SPEC section
//! 9; issue 14): the path from one process on a directory to many processes
//! on a database, and back. Against a throwaway server (`support/pg.rs`).
//!
//! Also the command line on PostgreSQL (features `cli` and `postgres`):
//! `--postgres-env` on a one-shot action, the root key it requires, and the
//! options that cannot go together.

mod support;

#[path = "support/pg.rs"]
mod pg;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use localkms::store::PostgresKeystore;
use localkms::{EncryptionContext, Kms, ManualClock};
use pg::PgServer;

const ROOT: [u8; 32] = [0x42; 32];
const T0: i64 = 1_767_225_600;

fn server() -> Option<&'static PgServer> {
    static SERVER: OnceLock<Option<PgServer>> = OnceLock::new();
    SERVER.get_or_init(PgServer::start).as_ref()
}

/// A schema name no other test uses.
fn schema(test: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("{test}_{}", N.fetch_add(1, Ordering::Relaxed))
}

fn ctx() -> EncryptionContext {
    EncryptionContext::empty()
}

fn on_pg(server: &PgServer, schema: &str) -> localkms::KmsBuilder {
    let store = PostgresKeystore::connect(&server.url(), schema).expect("connect");
    Kms::builder()
        .keystore(store)
        .root_key_bytes(&ROOT)
        .clock(ManualClock::new(T0))
}

fn on_sled(dir: &std::path::Path) -> localkms::KmsBuilder {
    Kms::builder()
        .sled(dir)
        .root_key_bytes(&ROOT)
        .clock(ManualClock::new(T0))
}

#[test]
fn sled_to_postgres_and_back() {
    let Some(server) = server() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let (backup, blobs) = {
        let kms = on_sled(dir.path()).build().expect("open sled");
        let blobs = support::populate(&kms);
        let mut out = Vec::new();
        kms.backup(&mut out).expect("backup");
        (out, blobs)
    };
    // Into an empty schema.
    let schema = schema("from_sled");
    let kms = on_pg(server, &schema)
        .restore(backup.as_slice())
        .build()
        .expect("restore into postgres");
    support::check_restored(&kms, &blobs);
    let mut again = Vec::new();
    kms.backup(&mut again).expect("backup of postgres");
    drop(kms);
    // Another holder of the schema (another process would be) sees it all.
    let other = on_pg(server, &schema).build().expect("reopen postgres");
    assert!(other.verify().expect("verify").is_ok());
    assert_eq!(
        other.decrypt(&blobs[0].1, &ctx()).expect("decrypt").key_id,
        blobs[0].0
    );
    // And back into a new sled store.
    let target = tempfile::tempdir().expect("tempdir");
    let kms = on_sled(target.path())
        .restore(again.as_slice())
        .build()
        .expect("restore into sled");
    support::check_restored(&kms, &blobs);
    drop(kms);
    let kms = on_sled(target.path()).build().expect("reopen sled");
    assert!(kms.verify().expect("verify").is_ok());
}

#[test]
fn postgres_to_sled_and_back_into_another_schema() {
    let Some(server) = server() else { return };
    let source = schema("source");
    let (backup, blobs) = {
        let kms = on_pg(server, &source).build().expect("open postgres");
        let blobs = support::populate(&kms);
        let mut out = Vec::new();
        kms.backup(&mut out).expect("backup");
        (out, blobs)
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let kms = on_sled(dir.path())
        .restore(backup.as_slice())
        .build()
        .expect("restore into sled");
    support::check_restored(&kms, &blobs);
    let mut again = Vec::new();
    kms.backup(&mut again).expect("backup of sled");
    let kms = on_pg(server, &schema("target"))
        .restore(again.as_slice())
        .build()
        .expect("restore into a second schema");
    support::check_restored(&kms, &blobs);
}

#[test]
fn a_non_empty_schema_and_a_wrong_root_key_are_refused() {
    let Some(server) = server() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let kms = on_sled(dir.path()).build().expect("open sled");
    let _ = support::populate(&kms);
    let mut backup = Vec::new();
    kms.backup(&mut backup).expect("backup");
    // A schema that already holds a store.
    let used = schema("used");
    let existing = on_pg(server, &used).build().expect("open");
    existing
        .create_key(&Default::default())
        .expect("a key of its own");
    let e = on_pg(server, &used)
        .restore(backup.as_slice())
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
    assert_eq!(
        existing
            .list_keys(Default::default())
            .expect("list")
            .total_count,
        1
    );
    // The wrong root key: refused, and nothing written.
    let fresh = schema("fresh");
    let store = PostgresKeystore::connect(&server.url(), &fresh).expect("connect");
    let e = Kms::builder()
        .keystore(store)
        .root_key_bytes(&[1; 32])
        .restore(backup.as_slice())
        .build()
        .unwrap_err();
    assert!(!e.to_string().is_empty());
    // The schema is still empty: the right key restores into it.
    let kms = on_pg(server, &fresh)
        .restore(backup.as_slice())
        .build()
        .expect("restore after a refusal");
    assert!(kms.verify().expect("verify").is_ok());
}

/// The command line on PostgreSQL.
#[cfg(feature = "cli")]
mod cli {
    use std::process::{Command, Output};

    use serde_json::Value;

    use super::{ROOT, pg::PASSWORD, schema, server};

    const URL_VAR: &str = "LOCALKMS_TEST_PG_URL";

    fn localkms(args: &[&str], url: &str) -> Output {
        Command::new(env!("CARGO_BIN_EXE_localkms"))
            .args(args)
            .env(URL_VAR, url)
            .output()
            .expect("run localkms")
    }

    fn stderr(o: &Output) -> String {
        String::from_utf8_lossy(&o.stderr).into_owned()
    }

    fn json(o: &Output) -> Value {
        assert!(o.status.success(), "{}", stderr(o));
        serde_json::from_slice(&o.stdout).expect("json")
    }

    #[test]
    fn one_shot_actions_share_a_schema() {
        let Some(server) = server() else { return };
        let dir = tempfile::tempdir().expect("tempdir");
        let key_file = dir.path().join("root.key");
        {
            use std::io::Write as _;
            use std::os::unix::fs::OpenOptionsExt as _;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&key_file)
                .expect("key file");
            f.write_all(hex(&ROOT).as_bytes()).expect("write key");
        }
        let key_file = key_file.to_str().expect("utf-8");
        let schema = schema("cli");
        let url = server.url();
        // Global options before the action...
        let created = json(&localkms(
            &[
                "--postgres-env",
                URL_VAR,
                "--postgres-schema",
                &schema,
                "--root-key-file",
                key_file,
                "CreateKey",
                "--Description",
                "from the cli",
            ],
            &url,
        ));
        let key = created["KeyMetadata"]["KeyId"]
            .as_str()
            .expect("KeyId")
            .to_owned();
        // ...or after it, and the next process sees the key.
        let described = json(&localkms(
            &[
                "DescribeKey",
                "--KeyId",
                &key,
                "--postgres-env",
                URL_VAR,
                "--postgres-schema",
                &schema,
                "--root-key-file",
                key_file,
            ],
            &url,
        ));
        assert_eq!(described["KeyMetadata"]["Description"], "from the cli");
        // --postgres URL works too.
        let listed = json(&localkms(
            &[
                "--postgres",
                &url,
                "--postgres-schema",
                &schema,
                "--root-key-file",
                key_file,
                "ListKeys",
            ],
            "",
        ));
        assert_eq!(listed["TotalCount"], 1);
        // Another schema is another store.
        let other = json(&localkms(
            &[
                "--postgres-env",
                URL_VAR,
                "--root-key-file",
                key_file,
                "ListKeys",
            ],
            &url,
        ));
        assert_eq!(other["TotalCount"], 0);
        // The server down: a failure that does not show the password.
        let down = url.replace(&format!(":{}/", server.port), ":1/");
        let o = localkms(
            &[
                "--postgres-env",
                URL_VAR,
                "--root-key-file",
                key_file,
                "ListKeys",
            ],
            &down,
        );
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains("PostgreSQL"), "{}", stderr(&o));
        assert!(!stderr(&o).contains(PASSWORD), "{}", stderr(&o));
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Usage errors, before any connection: exit status 2, one line.
    #[test]
    fn option_mistakes_are_usage_errors() {
        let url = "postgresql://u:p@127.0.0.1:1/db";
        for (args, says) in [
            (
                &["--postgres-env", URL_VAR, "ListKeys"][..],
                "--root-key-file or --root-key-env",
            ),
            (
                &["--postgres", url, "ListKeys"][..],
                "--root-key-file or --root-key-env",
            ),
            (
                &[
                    "--postgres",
                    url,
                    "--postgres-env",
                    URL_VAR,
                    "--root-key-env",
                    "K",
                    "ListKeys",
                ][..],
                "cannot be used together",
            ),
            (
                &[
                    "--data-dir",
                    "/tmp/x",
                    "--postgres-env",
                    URL_VAR,
                    "--root-key-env",
                    "K",
                    "ListKeys",
                ][..],
                "--data-dir and --postgres-env cannot be used together",
            ),
            (
                &[
                    "--postgres-env",
                    "LOCALKMS_TEST_UNSET_VAR",
                    "--root-key-env",
                    "K",
                    "ListKeys",
                ][..],
                "LOCALKMS_TEST_UNSET_VAR: the variable is not set",
            ),
            (
                &["--postgres-schema", "s", "ListKeys"][..],
                "--postgres-schema needs",
            ),
            (
                &["ListKeys"][..],
                "--data-dir, --postgres or --postgres-env is required",
            ),
            (
                &[
                    "serve",
                    "--listen",
                    "127.0.0.1:0",
                    "--access-key-id",
                    "a",
                    "--access-key-secret-env",
                    URL_VAR,
                    "--cache-ttl",
                    "1h",
                ][..],
                "--cache-ttl \"1h\"",
            ),
            (
                &[
                    "serve",
                    "--listen",
                    "127.0.0.1:0",
                    "--access-key-id",
                    "a",
                    "--access-key-secret-env",
                    URL_VAR,
                    "--postgres-env",
                    URL_VAR,
                ][..],
                "--root-key-file or --root-key-env",
            ),
        ] {
            let o = localkms(args, url);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
            assert!(err.contains(says), "{args:?}: {err}");
            assert_eq!(err.trim_end().lines().count(), 1, "{err}");
            assert!(!err.contains("u:p@"), "the URL leaked: {err}");
        }
    }
}
