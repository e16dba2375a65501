//! Root-key rotation (SPEC section 9), and SIGKILL at random moments during
//! `rotate_root_key` and during restore: afterwards the store opens with the
//! old or the new key (rotation) or is refused and can be restored again
//! (restore), verifies, and decrypts every ciphertext made before.
//! `LOCALKMS_CRASH_ROUNDS` sets the number of rounds (default 10).

mod support;

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use localkms::{
    Durability, EncryptionContext, Error, Kms, ManualClock, RootKey, WrappingAlgorithm,
};

const T0: i64 = 1_767_225_600;
const OLD: [u8; 32] = [0x31; 32];
const NEW: [u8; 32] = [0x32; 32];

fn ctx() -> EncryptionContext {
    EncryptionContext::empty()
}

fn hex(b: &[u8; 32]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn write_key(path: &Path, key: &[u8; 32]) {
    RootKey::from_bytes(key)
        .expect("key")
        .write_new_file(path)
        .expect("write key");
}

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

/// Many keys (so a rotation takes a while), a rotated key, imported
/// material, an import token, a disabled key; the blobs made.
fn populate(kms: &Kms, n: usize) -> Vec<(String, localkms::CiphertextBlob)> {
    let mut blobs = Vec::new();
    for i in 0..n {
        let k = kms.create_key(&Default::default()).expect("create").key_id;
        if i == 0 {
            kms.create_alias("alias/first", &k).expect("alias");
            kms.create_key_version(&k).expect("version");
        }
        let text = format!("p{i}");
        blobs.push((
            text.clone(),
            kms.encrypt(&k, text.as_bytes(), &ctx())
                .expect("encrypt")
                .ciphertext_blob,
        ));
    }
    let ext = support::external(kms);
    support::import(
        kms,
        &ext,
        WrappingAlgorithm::RsaesOaepSha256,
        &[5; 32],
        None,
    )
    .expect("import");
    blobs.push((
        "ext".into(),
        kms.encrypt(&ext, b"ext", &ctx())
            .expect("e")
            .ciphertext_blob,
    ));
    // A live import token for another external key.
    let ext2 = support::external(kms);
    kms.get_parameters_for_import(
        &ext2,
        WrappingAlgorithm::RsaesOaepSha256,
        localkms::WrappingKeySpec::Rsa2048,
    )
    .expect("token");
    kms.flush().expect("flush");
    blobs
}

fn check(kms: &Kms, blobs: &[(String, localkms::CiphertextBlob)], what: &str) {
    let r = kms.verify().expect("verify");
    assert!(r.is_ok(), "{what}: {r}");
    for (text, blob) in blobs {
        let d = kms
            .decrypt(blob, &ctx())
            .unwrap_or_else(|e| panic!("{what}: decrypt {text}: {e}"));
        assert_eq!(d.plaintext.expose_secret(), text.as_bytes(), "{what}");
    }
    // Import (token and import secret re-sealed) still works.
    let ext = support::external(kms);
    support::import(
        kms,
        &ext,
        WrappingAlgorithm::RsaesOaepSha256,
        &[6; 32],
        None,
    )
    .unwrap_or_else(|e| panic!("{what}: import after: {e}"));
}

fn open_with(dir: &Path, key: &[u8; 32]) -> localkms::Result<Kms> {
    Kms::builder()
        .sled(dir)
        .root_key_bytes(key)
        .clock(ManualClock::new(T0))
        .build()
}

#[test]
fn rotation_reseals_everything_and_retires_the_old_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("s");
    let kms = open_with(&dir, &OLD).expect("open");
    let blobs = populate(&kms, 5);
    let mut old_backup = Vec::new();
    kms.backup(&mut old_backup).expect("backup");
    assert_eq!(
        kms.rotate_root_key(RootKey::from_bytes(&OLD).expect("k"))
            .unwrap_err()
            .to_string(),
        Error::InvalidParameter {
            param: "new root key",
            reason: "it is the store's current root key".into()
        }
        .to_string()
    );
    kms.rotate_root_key(RootKey::from_bytes(&NEW).expect("k"))
        .expect("rotate");
    // The service goes on under the new key at once.
    check(&kms, &blobs, "same process");
    let mut new_backup = Vec::new();
    kms.backup(&mut new_backup).expect("backup");
    drop(kms);
    let err = open_with(&dir, &OLD).unwrap_err();
    assert!(
        matches!(&err, Error::RootKeyRotated(m) if m.contains("retired") && m.contains("new root key")),
        "{err:?}"
    );
    assert_eq!(open_with(&dir, &[9; 32]).unwrap_err(), Error::WrongRootKey);
    let kms = open_with(&dir, &NEW).expect("new key opens");
    check(&kms, &blobs, "reopened");
    // Rotating again retires the second key too.
    kms.rotate_root_key(RootKey::from_bytes(&[0x33; 32]).expect("k"))
        .expect("rotate again");
    drop(kms);
    for k in [OLD, NEW] {
        assert!(matches!(open_with(&dir, &k), Err(Error::RootKeyRotated(_))));
    }
    open_with(&dir, &[0x33; 32]).expect("third key");
    // Backups keep the key they were taken under.
    for (bytes, key, ok) in [
        (&old_backup, OLD, true),
        (&old_backup, NEW, false),
        (&new_backup, NEW, true),
    ] {
        let r = Kms::builder()
            .root_key_bytes(&key)
            .restore(bytes.as_slice())
            .build();
        assert_eq!(r.is_ok(), ok);
    }
}

#[test]
fn rotation_rewrites_the_root_key_file_beside_the_store() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("s");
    let kms = Kms::open(&dir).expect("open");
    let blobs = populate(&kms, 3);
    let before = std::fs::read(dir.join("root.key")).expect("key file");
    kms.rotate_root_key(RootKey::random().expect("random"))
        .expect("rotate");
    drop(kms);
    let after = std::fs::read(dir.join("root.key")).expect("key file");
    assert_ne!(before, after);
    assert!(!dir.join("root.key.new").exists());
    assert!(!dir.join("store.witness.next").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join("root.key"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let kms = Kms::open(&dir).expect("reopen with the new file");
    check(&kms, &blobs, "beside");
}

/// The files a rotation crash leaves between the switch (the store is under
/// the new key) and the renames of `root.key.new` and `store.witness.next`,
/// rebuilt exactly: open puts both in place and loses nothing.
#[test]
fn a_crash_after_the_switch_before_the_file_renames_opens_with_the_new_key() {
    // `promoted`: the crash came after the witness rename, before the key's.
    for promoted in [false, true] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("s");
        let kms = Kms::open(&dir).expect("open");
        let blobs = populate(&kms, 3);
        drop(kms);
        let old_key = std::fs::read(dir.join("root.key")).expect("key file");
        let old_witness = std::fs::read(dir.join("store.witness")).expect("witness");
        let kms = Kms::open(&dir).expect("reopen");
        kms.rotate_root_key(RootKey::random().expect("random"))
            .expect("rotate");
        drop(kms);
        let new_key = std::fs::read(dir.join("root.key")).expect("key file");
        std::fs::rename(dir.join("root.key"), dir.join("root.key.new")).expect("mv");
        std::fs::write(dir.join("root.key"), &old_key).expect("old key back");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let private = std::fs::Permissions::from_mode(0o600);
            std::fs::set_permissions(dir.join("root.key"), private).expect("chmod");
        }
        if !promoted {
            std::fs::rename(dir.join("store.witness"), dir.join("store.witness.next")).expect("mv");
            std::fs::write(dir.join("store.witness"), &old_witness).expect("old witness back");
        }
        let kms = Kms::open(&dir).expect("the crashed rotation's store opens");
        check(
            &kms,
            &blobs,
            &format!("after the switch (promoted: {promoted})"),
        );
        assert_eq!(
            std::fs::read(dir.join("root.key")).expect("key file"),
            new_key,
            "the new key file is in place"
        );
        assert!(!dir.join("root.key.new").exists());
        assert!(!dir.join("store.witness.next").exists());
        drop(kms);
        Kms::open(&dir).expect("and it opens again");
    }
}

#[test]
fn another_service_on_the_store_with_the_old_key_gets_a_clear_error() {
    let store = std::sync::Arc::new(localkms::store::MemoryKeystore::new());
    #[derive(Debug, Clone)]
    struct Shared(std::sync::Arc<localkms::store::MemoryKeystore>);
    impl localkms::store::Keystore for Shared {
        fn get(&self, ns: &str, id: &[u8]) -> Result<Option<Vec<u8>>, localkms::store::StoreError> {
            self.0.get(ns, id)
        }
        fn scan(
            &self,
            ns: &str,
            scan: localkms::store::Scan<'_>,
        ) -> Result<Vec<localkms::store::Record>, localkms::store::StoreError> {
            self.0.scan(ns, scan)
        }
        fn apply(&self, batch: localkms::store::Batch) -> Result<(), localkms::store::StoreError> {
            self.0.apply(batch)
        }
        fn flush(&self) -> Result<(), localkms::store::StoreError> {
            self.0.flush()
        }
        fn visit_all(
            &self,
            visit: &mut localkms::store::Visitor<'_>,
        ) -> Result<(), localkms::store::StoreError> {
            self.0.visit_all(visit)
        }
    }
    let build = |k: &[u8; 32]| {
        Kms::builder()
            .keystore(Shared(store.clone()))
            .root_key_bytes(k)
            .build()
    };
    let a = build(&OLD).expect("a");
    let key = a.create_key(&Default::default()).expect("k").key_id;
    let b = build(&OLD).expect("b");
    a.rotate_root_key(RootKey::from_bytes(&NEW).expect("k"))
        .expect("rotate");
    let e = b.describe_key(&key).unwrap_err();
    assert!(matches!(e, Error::RootKeyRotated(_)), "{e:?}");
    let e = b.create_key(&Default::default()).unwrap_err();
    assert!(matches!(e, Error::RootKeyRotated(_)), "{e:?}");
    assert!(a.verify().expect("verify").is_ok());
}

fn rounds() -> u32 {
    std::env::var("LOCALKMS_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

struct Rng(u64);
impl Rng {
    fn seeded() -> Self {
        let mut seed = [0u8; 8];
        getrandom::fill(&mut seed).expect("random");
        let s = u64::from_le_bytes(seed) | 1;
        eprintln!("seed {s}");
        Self(s)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Runs `child` of this binary with `env`, waits for its line `ready`, spins
/// a random while and kills it; true if it finished first.
fn kill_at_random(child: &str, env: &[(&str, &Path)], rng: &mut Rng, spins: u64) -> bool {
    let mut cmd = Command::new(std::env::current_exe().expect("exe"));
    cmd.args(["--exact", child, "--nocapture", "--test-threads=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut c: Child = cmd.spawn().expect("spawn");
    let mut lines = BufReader::new(c.stdout.take().expect("stdout")).lines();
    while let Some(Ok(l)) = lines.next() {
        if l.ends_with("ready") {
            break;
        }
    }
    // Log-uniform up to `spins`, so short and long waits are both hit.
    let bound = 1u64 << (rng.next() % u64::from(spins.ilog2() + 1));
    for _ in 0..rng.next() % bound {
        std::hint::spin_loop();
    }
    let _ = c.kill();
    let status = c.wait().expect("wait");
    status.success()
}

#[test]
fn rotate_child() {
    let Some(dir) = std::env::var_os("LOCALKMS_CRASH_DIR") else {
        return;
    };
    let dir = Path::new(&dir);
    let kms = Kms::open(dir.join("s")).expect("open");
    let new = RootKey::from_file(dir.join("new.key")).expect("new key");
    println!("ready");
    kms.rotate_root_key(new).expect("rotate");
    println!("done");
}

#[test]
fn restore_child() {
    let Some(dir) = std::env::var_os("LOCALKMS_CRASH_DIR") else {
        return;
    };
    let dir = Path::new(&dir);
    let backup = std::fs::read(dir.join("backup")).expect("backup");
    println!("ready");
    Kms::builder()
        .sled(dir.join("t"))
        .root_key_bytes(&OLD)
        .restore(backup.as_slice())
        .build()
        .expect("restore");
    println!("done");
}

/// A store beside its root key file, populated once.
fn template() -> (tempfile::TempDir, Vec<(String, localkms::CiphertextBlob)>) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("s");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("root.key"), format!("{}\n", hex(&OLD))).expect("key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.join("root.key"), std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
    }
    let kms = Kms::builder()
        .sled(&dir)
        .root_key_beside_store()
        .durability(Durability::Relaxed)
        .build()
        .expect("open");
    let blobs = populate(&kms, 150);
    drop(kms);
    (tmp, blobs)
}

#[test]
fn a_kill_during_rotate_root_key_leaves_a_store_that_opens_with_one_key() {
    let (tpl, blobs) = template();
    let mut rng = Rng::seeded();
    let (mut old, mut new, mut finished) = (0, 0, 0);
    for round in 0..rounds() {
        let tmp = tempfile::tempdir().expect("tempdir");
        copy_dir(tpl.path(), tmp.path());
        write_key(&tmp.path().join("new.key"), &NEW);
        let s = tmp.path().join("s");
        if kill_at_random(
            "rotate_child",
            &[("LOCALKMS_CRASH_DIR", tmp.path())],
            &mut rng,
            40_000_000,
        ) {
            finished += 1;
        }
        // One at a time: sled locks the store.
        let with_old = open_with(&s, &OLD).map(drop);
        let with_new = open_with(&s, &NEW).map(drop);
        let (good, bad) = match (&with_old, &with_new) {
            (Ok(_), Err(e)) => {
                old += 1;
                // Before the marker the new key is merely wrong.
                assert!(
                    matches!(e, Error::RootKeyRotated(m) if m.contains("did not complete"))
                        || *e == Error::WrongRootKey,
                    "round {round}: {e:?}"
                );
                (OLD, "old")
            }
            (Err(e), Ok(_)) => {
                new += 1;
                assert!(
                    matches!(e, Error::RootKeyRotated(m) if m.contains("retired")),
                    "round {round}: {e:?}"
                );
                (NEW, "new")
            }
            (a, b) => panic!(
                "round {round}: old {:?}, new {:?}",
                a.as_ref().err(),
                b.as_ref().err()
            ),
        };
        drop((with_old, with_new));
        let _ = bad;
        // The key file beside the store is settled to the key that opens it.
        let kms = Kms::open(&s).unwrap_or_else(|e| panic!("round {round}: Kms::open: {e}"));
        assert_eq!(
            std::fs::read_to_string(s.join("root.key"))
                .expect("key")
                .trim(),
            hex(&good),
            "round {round}: {bad}"
        );
        assert!(!s.join("root.key.new").exists());
        check(&kms, &blobs, &format!("round {round}"));
    }
    eprintln!(
        "rotation: {} rounds, {old} under the old key, {new} under the new key ({finished} finished before the kill)",
        rounds()
    );
}

#[test]
fn a_kill_during_restore_leaves_a_store_refused_or_whole() {
    let (tpl, blobs) = template();
    let backup = {
        let kms = Kms::open(tpl.path().join("s")).expect("open");
        let mut out = Vec::new();
        kms.backup(&mut out).expect("backup");
        out
    };
    let mut rng = Rng::seeded();
    let (mut whole, mut refused, mut not_started, mut finished) = (0, 0, 0, 0);
    for round in 0..rounds() {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::write(tmp.path().join("backup"), &backup).expect("write");
        if kill_at_random(
            "restore_child",
            &[("LOCALKMS_CRASH_DIR", tmp.path())],
            &mut rng,
            40_000_000,
        ) {
            finished += 1;
        }
        let t = tmp.path().join("t");
        let restore = || {
            Kms::builder()
                .sled(&t)
                .root_key_bytes(&OLD)
                .clock(ManualClock::new(T0))
                .restore(backup.as_slice())
                .build()
                .unwrap_or_else(|e| panic!("round {round}: restore again: {e}"))
        };
        if !t.join("db").exists() {
            // Killed before the restore touched the target.
            not_started += 1;
            check(&restore(), &blobs, &format!("round {round}"));
            continue;
        }
        let kms = match open_with(&t, &OLD) {
            Ok(k) => {
                whole += 1;
                k
            }
            Err(e) => {
                refused += 1;
                eprintln!("round {round}: refused: {e}");
                restore()
            }
        };
        check(&kms, &blobs, &format!("round {round}"));
    }
    eprintln!(
        "restore: {} rounds, {whole} whole, {refused} refused and restored again, {not_started} killed before touching the target ({finished} finished before the kill)",
        rounds()
    );
}
