//! Opening stores: persistence, the root key, the format version, file modes
//! and locking (SPEC section 5; durability in tests/durability.rs).

use std::os::unix::fs::PermissionsExt;

use localkms::store::{Batch, Keystore, SledKeystore};
use localkms::{CreateKeyRequest, KeyState, Kms, ManualClock, Paging, RootKey};

fn open(dir: &std::path::Path, root: &[u8; 32]) -> Result<Kms, localkms::Error> {
    Kms::builder().sled(dir).root_key_bytes(root).build()
}

#[test]
fn keys_and_states_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(1_767_225_600);
    let (a, b) = {
        let kms = Kms::builder()
            .sled(dir.path())
            .root_key_bytes(&[1; 32])
            .clock(clock.clone())
            .build()
            .expect("open");
        let a = kms
            .create_key(&CreateKeyRequest::with_description("a"))
            .expect("create");
        let b = kms
            .create_key(&CreateKeyRequest::external())
            .expect("create");
        kms.disable_key(&a.key_id).expect("disable");
        kms.schedule_key_deletion(&b.key_id, 9).expect("schedule");
        (
            kms.describe_key(&a.key_id).expect("a"),
            kms.describe_key(&b.key_id).expect("b"),
        )
    };
    let kms = Kms::builder()
        .sled(dir.path())
        .root_key_bytes(&[1; 32])
        .clock(clock.clone())
        .build()
        .expect("reopen");
    assert_eq!(kms.describe_key(&a.key_id).expect("a"), a);
    assert_eq!(kms.describe_key(&b.key_id).expect("b"), b);
    assert_eq!(a.key_state, KeyState::Disabled);
    let listed = kms.list_keys(Paging::default()).expect("list");
    assert_eq!(listed.total_count, 2);
    assert_eq!(listed.items[0].key_id, a.key_id);
    // New keys continue the creation order after a reopen.
    let c = kms
        .create_key(&CreateKeyRequest::default())
        .expect("create")
        .key_id;
    assert_eq!(
        kms.list_keys(Paging::default()).expect("list").items[2].key_id,
        c
    );
    // A deletion scheduled before the reopen still happens.
    clock.advance(9 * 86_400);
    assert_eq!(
        kms.describe_key(&b.key_id).unwrap_err().code(),
        "Forbidden.KeyNotFound"
    );
    assert_eq!(kms.key_count().expect("count"), 2);
}

#[test]
fn wrong_root_key_fails_at_open_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let id = {
        let kms = open(dir.path(), &[1; 32]).expect("open");
        kms.create_key(&CreateKeyRequest::default())
            .expect("create")
            .key_id
    };
    let err = open(dir.path(), &[2; 32]).unwrap_err();
    assert_eq!(err, localkms::Error::WrongRootKey);
    assert!(err.to_string().contains("root key"), "{err}");
    let kms = open(dir.path(), &[1; 32]).expect("the right key still opens it");
    assert_eq!(
        kms.describe_key(&id).expect("describe").key_state,
        KeyState::Enabled
    );
    assert_eq!(kms.key_count().expect("count"), 1);
}

#[test]
fn unknown_store_format_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(open(dir.path(), &[1; 32]).expect("create store"));
    {
        let raw = SledKeystore::open(dir.path().join("db")).expect("raw");
        // A store of an unknown format: no sealed head, a format record of 9.
        let mut b = Batch::new();
        b.delete("head", b"store-id".to_vec());
        b.put("meta", b"format".to_vec(), 9u32.to_be_bytes().to_vec());
        raw.apply(b).expect("apply");
        raw.flush().expect("flush");
    }
    let err = open(dir.path(), &[1; 32]).unwrap_err();
    assert_eq!(err, localkms::Error::UnsupportedStoreVersion(9));
    assert!(err.to_string().contains("format version 9"), "{err}");
}

#[test]
fn persistent_store_needs_a_root_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = Kms::builder().sled(dir.path()).build().unwrap_err();
    assert_eq!(err.code(), "InternalFailure");
    assert!(err.to_string().contains("root key"), "{err}");
    let short = Kms::builder()
        .sled(dir.path())
        .root_key_bytes(&[1; 31])
        .build()
        .unwrap_err();
    assert!(short.to_string().contains("32 bytes"), "{short}");
}

#[test]
fn open_creates_root_key_file_and_private_modes() {
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("store");
    let id = {
        let kms = Kms::open(&dir).expect("open");
        kms.create_key(&CreateKeyRequest::default())
            .expect("create")
            .key_id
    };
    let key_file = dir.join(localkms::ROOT_KEY_FILE);
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&key_file), 0o600);
    assert_eq!(mode(&dir), 0o700);
    let text = std::fs::read_to_string(&key_file).expect("read");
    assert_eq!(text.trim().len(), 64, "hex root key");
    // Reopen with the same file, and with the key supplied from elsewhere.
    assert!(Kms::open(&dir).expect("reopen").describe_key(&id).is_ok());
    let kms = Kms::builder()
        .sled(&dir)
        .root_key_file(&key_file)
        .build()
        .expect("by file");
    assert!(kms.describe_key(&id).is_ok());
    drop(kms);
    // The text forms read from a file are the ones an environment variable takes.
    assert!(RootKey::from_text(&text).is_ok());
    let unset = RootKey::from_env("LOCALKMS_TEST_ROOT_KEY_NEVER_SET").unwrap_err();
    assert!(unset.to_string().contains("not set"), "{unset}");
    // A store whose key file went missing is an error, not a new key.
    std::fs::remove_file(&key_file).expect("remove");
    let err = Kms::open(&dir).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn a_store_held_by_another_process_is_a_clear_error() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().expect("tempdir");
    drop(open(dir.path(), &[1; 32]).expect("create"));
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .args([
            "--exact",
            "hold_store_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("LOCALKMS_HOLD_DIR", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    loop {
        let line = lines.next().expect("child output").expect("line");
        if line.ends_with("holding") {
            break;
        }
    }
    let err = open(dir.path(), &[1; 32]).unwrap_err();
    assert_eq!(err.code(), "InternalFailure");
    assert!(matches!(err, localkms::Error::StoreLocked(_)), "{err:?}");
    assert!(err.to_string().contains("another process"), "{err}");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"done\n")
        .expect("release");
    assert!(child.wait().expect("wait").success());
    open(dir.path(), &[1; 32]).expect("free again after the holder exits");
}

/// The child side of the locking test: holds the store until told to stop.
#[test]
fn hold_store_child() {
    let Some(dir) = std::env::var_os("LOCALKMS_HOLD_DIR") else {
        return;
    };
    let kms = open(std::path::Path::new(&dir), &[1; 32]).expect("child open");
    println!("holding");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .expect("wait for parent");
    drop(kms);
}

#[test]
fn root_key_from_an_environment_variable() {
    use std::process::Command;
    let dir = tempfile::tempdir().expect("tempdir");
    let id = open(dir.path(), &[1; 32])
        .expect("create")
        .create_key(&CreateKeyRequest::default())
        .expect("key")
        .key_id;
    let run = |key_hex: &str| {
        let out = Command::new(std::env::current_exe().expect("exe"))
            .args([
                "--exact",
                "env_root_key_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("LOCALKMS_ENV_DIR", dir.path())
            .env("LOCALKMS_ENV_KEY_ID", &id)
            .env("LOCALKMS_TEST_ROOT_KEY", key_hex)
            .output()
            .expect("run child");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(run(&"01".repeat(32)).contains("result=Enabled"));
    assert!(run(&"02".repeat(32)).contains("result=InternalFailure:WrongRootKey"));
    assert!(run("not a key").contains("result=InternalFailure:InvalidRootKey"));
}

/// The child side: opens the store with the root key from the environment.
#[test]
fn env_root_key_child() {
    let Some(dir) = std::env::var_os("LOCALKMS_ENV_DIR") else {
        return;
    };
    let id = std::env::var("LOCALKMS_ENV_KEY_ID").expect("key id");
    let result = Kms::builder()
        .sled(std::path::Path::new(&dir))
        .root_key_env("LOCALKMS_TEST_ROOT_KEY")
        .build()
        .and_then(|kms| kms.describe_key(&id));
    match result {
        Ok(m) => println!("result={}", m.key_state),
        Err(e) => {
            let kind = format!("{e:?}");
            let kind = kind.split('(').next().unwrap_or_default();
            println!("result={}:{kind}", e.code());
        }
    }
}

#[test]
fn a_root_key_file_open_to_group_or_others_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("root.key");
    std::fs::write(&key_file, "07".repeat(32)).expect("write");
    for mode in [0o644, 0o640, 0o604, 0o660] {
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let err = RootKey::from_file(&key_file).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("chmod 600 {}", key_file.display())),
            "{text}"
        );
        let err = Kms::builder()
            .sled(dir.path().join("store"))
            .root_key_file(&key_file)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
    for mode in [0o600, 0o400] {
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(mode)).expect("chmod");
        RootKey::from_file(&key_file).expect("a private key file is read");
    }
}

#[test]
fn store_directories_are_made_private_even_when_they_existed() {
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("store");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    drop(Kms::open(&dir).expect("open"));
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("db")), 0o700, "sled's own directory");
    assert_eq!(mode(&dir.join(localkms::WITNESS_FILE)), 0o600);
    // Loosened afterwards: tightened again at the next open.
    for d in [&dir, &dir.join("db")] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    drop(Kms::open(&dir).expect("reopen"));
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("db")), 0o700);
}
