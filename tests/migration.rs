//! A first-format store (tests/data/first-format) is migrated in place on
//! open: every record sealed, the head written; its blobs still decrypt.

mod support;

use std::path::Path;

use localkms::store::{Keystore as _, SledKeystore, StoreError};
use localkms::{EncryptionContext, KeyState, Kms, ManualClock, WrappingAlgorithm};

const T0: i64 = 1_767_225_600;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).expect("copy");
        }
    }
}

struct Fixture {
    keys: Vec<(String, String)>,
    blobs: Vec<(String, String, String)>,
}

fn fixture() -> Fixture {
    let text = include_str!("data/first-format/fixture.txt");
    let mut lines = text.lines();
    assert!(lines.next().expect("root").starts_with("root_key: 5a5a"));
    lines.next();
    lines.next();
    let keys = lines
        .next()
        .expect("keys")
        .strip_prefix("keys: ")
        .expect("keys line")
        .split(' ')
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("name=id");
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let blobs = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut p = l.splitn(3, ' ');
            (
                p.next().expect("key").to_owned(),
                p.next().expect("text").to_owned(),
                p.next().expect("blob").to_owned(),
            )
        })
        .collect();
    Fixture { keys, blobs }
}

fn open(dir: &Path, clock: &ManualClock) -> Result<Kms, localkms::Error> {
    Kms::builder()
        .sled(dir)
        .root_key_bytes(&[0x5a; 32])
        .clock(clock.clone())
        .build()
}

#[test]
fn a_first_format_store_is_migrated_and_its_blobs_decrypt() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/first-format/store"),
        &dir,
    );
    let fx = fixture();
    let key = |name: &str| {
        fx.keys
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .expect("key")
    };
    let clock = ManualClock::new(T0);
    // The wrong root key is refused before anything is migrated.
    let wrong = Kms::builder()
        .sled(&dir)
        .root_key_bytes(&[1; 32])
        .build()
        .unwrap_err();
    assert_eq!(wrong, localkms::Error::WrongRootKey);
    let kms = open(&dir, &clock).expect("migrate");
    let report = kms.verify().expect("verify");
    assert!(report.is_ok(), "{report}");
    assert!(report.records > 10, "{report}");
    let ctx = EncryptionContext::from_json(r#"{"purpose":"fixture"}"#).expect("ctx");
    // Bring every key back to a usable state.
    kms.enable_key(&key("b")).expect("enable b");
    kms.cancel_key_deletion(&key("e")).expect("cancel e");
    kms.enable_key(&key("e")).expect("enable e");
    assert_eq!(
        kms.describe_key(&key("d")).expect("d").key_state,
        KeyState::PendingImport
    );
    support::import(
        &kms,
        &key("d"),
        WrappingAlgorithm::RsaesOaepSha256,
        &[0xd4; 32],
        None,
    )
    .expect("re-import d");
    assert_eq!(fx.blobs.len(), 6);
    for (key_id, text, blob) in &fx.blobs {
        let d = kms
            .decrypt(
                &base64::Engine::decode(&base64::engine::general_purpose::STANDARD, blob)
                    .expect("base64"),
                &ctx,
            )
            .expect("decrypt");
        assert_eq!(d.key_id, *key_id);
        assert_eq!(d.plaintext.expose_secret(), text.as_bytes());
    }
    // The alias and the tag came through.
    let a = key("a");
    let by_alias = kms.encrypt("alias/fixture-a", b"x", &ctx).expect("alias");
    assert_eq!(by_alias.key_id, a);
    let tags = kms.list_resource_tags(&a).expect("tags");
    assert_eq!(tags.len(), 1);
    assert_eq!(kms.key_count().expect("count"), 5);
    assert!(kms.verify().expect("verify").is_ok());
    drop(kms);

    // Every record is sealed now (format v2), and a reopen migrates nothing.
    {
        let raw = SledKeystore::open(dir.join("db")).expect("raw");
        let mut seen = 0;
        raw.visit_all(&mut |ns, id, value| {
            seen += 1;
            if value.first() != Some(&2) {
                return Err(StoreError::Other(format!(
                    "{ns}/{} is not sealed",
                    String::from_utf8_lossy(id)
                )));
            }
            Ok(())
        })
        .expect("every record sealed");
        assert!(seen > 10);
        assert!(raw.get("meta", b"root-check").expect("get").is_none());
    }
    let kms = open(&dir, &clock).expect("reopen");
    assert!(kms.verify().expect("verify").is_ok());
    let (_, text, blob) = &fx.blobs[0];
    assert_eq!(
        kms.decrypt(
            &base64::Engine::decode(&base64::engine::general_purpose::STANDARD, blob)
                .expect("base64"),
            &ctx
        )
        .expect("decrypt")
        .plaintext
        .expose_secret(),
        text.as_bytes()
    );
}

/// The child of the crash test: opens (so migrates) the store in
/// `LOCALKMS_MIGRATE_DIR`, announcing it first.
#[test]
fn migrate_child() {
    let Some(dir) = std::env::var_os("LOCALKMS_MIGRATE_DIR") else {
        return;
    };
    println!("opening");
    let kms = open(Path::new(&dir), &ManualClock::new(T0)).expect("migrate");
    drop(kms);
    println!("done");
}

/// SIGKILL during migration, at random moments: the store always opens
/// afterwards (migrated or not yet), verifies and decrypts its blobs.
/// `LOCALKMS_CRASH_ROUNDS` sets the number of rounds (default 10).
#[test]
fn a_kill_during_migration_leaves_a_store_that_opens() {
    use std::io::{BufRead as _, BufReader};
    use std::process::{Command, Stdio};
    let rounds: u32 = std::env::var("LOCALKMS_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let fx = fixture();
    let ctx = EncryptionContext::from_json(r#"{"purpose":"fixture"}"#).expect("ctx");
    let mut seed = [0u8; 8];
    getrandom::fill(&mut seed).expect("random");
    let mut rng = u64::from_le_bytes(seed);
    eprintln!("seed {rng}");
    let (mut migrated, mut not_yet) = (0, 0);
    for round in 0..rounds {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("store");
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/first-format/store"),
            &dir,
        );
        let mut child = Command::new(std::env::current_exe().expect("exe"))
            .args([
                "--exact",
                "migrate_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("LOCALKMS_MIGRATE_DIR", &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        while let Some(Ok(l)) = lines.next() {
            if l.ends_with("opening") {
                break;
            }
        }
        // A random moment: spin, do not sleep.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        for _ in 0..rng % 12_000_000 {
            std::hint::spin_loop();
        }
        let _ = child.kill();
        let _ = child.wait();
        let raw = SledKeystore::open(dir.join("db")).expect("raw");
        let done = raw.get("head", b"store-id").expect("get").is_some();
        drop(raw);
        if done {
            migrated += 1;
        } else {
            not_yet += 1;
        }
        let kms = open(&dir, &ManualClock::new(T0))
            .unwrap_or_else(|e| panic!("round {round}: the store does not open: {e}"));
        let r = kms.verify().expect("verify");
        assert!(r.is_ok(), "round {round}: {r}");
        let (key_id, text, blob) = &fx.blobs[0];
        let d = kms
            .decrypt(
                &base64::Engine::decode(&base64::engine::general_purpose::STANDARD, blob)
                    .expect("base64"),
                &ctx,
            )
            .expect("decrypt");
        assert_eq!(
            (&d.key_id, d.plaintext.expose_secret()),
            (key_id, text.as_bytes())
        );
    }
    eprintln!("{rounds} rounds: killed after migration {migrated}, before {not_yet}");
}
