//! Backup and restore (SPEC section 9): round trips across backends, every
//! refusal before any write, and the golden vector of the format.

mod support;

use std::sync::Arc;

use localkms::store::{Batch, Keystore, MemoryKeystore, Record, Scan, StoreError, Visitor, golden};
use localkms::{Error, Kms, ManualClock};

const ROOT: [u8; 32] = [0x24; 32];
const T0: i64 = 1_767_225_600;

#[derive(Debug, Clone)]
struct Tap(Arc<dyn Keystore>);

impl Keystore for Tap {
    fn get(&self, ns: &str, id: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.get(ns, id)
    }
    fn scan(&self, ns: &str, scan: Scan<'_>) -> Result<Vec<Record>, StoreError> {
        self.0.scan(ns, scan)
    }
    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        self.0.apply(batch)
    }
    fn flush(&self) -> Result<(), StoreError> {
        self.0.flush()
    }
    fn visit_all(&self, visit: &mut Visitor<'_>) -> Result<(), StoreError> {
        self.0.visit_all(visit)
    }
}

fn records(store: &dyn Keystore) -> usize {
    let mut n = 0;
    store
        .visit_all(&mut |_, _, _| {
            n += 1;
            Ok(())
        })
        .expect("visit");
    n
}

#[test]
fn sled_to_memory_and_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sled = |d: &std::path::Path| {
        Kms::builder()
            .sled(d)
            .root_key_bytes(&ROOT)
            .clock(ManualClock::new(T0))
    };
    let (backup, blobs) = {
        let kms = sled(dir.path()).build().expect("open");
        let blobs = support::populate(&kms);
        let mut out = Vec::new();
        let info = kms.backup(&mut out).expect("backup");
        assert_eq!(info.bytes as usize, out.len());
        assert!(info.records > 10);
        (out, blobs)
    };
    // Into memory.
    let mem = Kms::builder()
        .in_memory()
        .root_key_bytes(&ROOT)
        .clock(ManualClock::new(T0))
        .restore(backup.as_slice())
        .build()
        .expect("restore into memory");
    support::check_restored(&mem, &blobs);
    let mut again = Vec::new();
    mem.backup(&mut again).expect("backup of memory");
    // And back into a new sled store (its directory may hold a root key file).
    let target = tempfile::tempdir().expect("tempdir");
    let kms = sled(target.path())
        .restore(again.as_slice())
        .build()
        .expect("restore into sled");
    support::check_restored(&kms, &blobs);
    drop(kms);
    let kms = sled(target.path()).build().expect("reopen");
    assert!(kms.verify().expect("verify").is_ok());
}

#[test]
fn bad_backups_and_non_empty_targets_are_refused_before_any_write() {
    let kms = Kms::builder().root_key_bytes(&ROOT).build().expect("kms");
    support::populate(&kms);
    let mut backup = Vec::new();
    kms.backup(&mut backup).expect("backup");
    let restore = |bytes: &[u8], root: &[u8; 32], tap: &Tap| {
        Kms::builder()
            .keystore(tap.clone())
            .root_key_bytes(root)
            .restore(bytes)
            .build()
    };
    let empty = || Tap(Arc::new(MemoryKeystore::new()));
    // Wrong root key.
    let tap = empty();
    assert_eq!(
        restore(&backup, &[1; 32], &tap).unwrap_err(),
        Error::WrongRootKey
    );
    assert_eq!(records(tap.0.as_ref()), 0);
    // Truncated anywhere, or one byte changed anywhere.
    let step = (backup.len() / 97).max(1);
    for cut in (0..backup.len()).step_by(step) {
        let tap = empty();
        let err = restore(&backup[..cut], &ROOT, &tap).unwrap_err();
        assert!(
            matches!(err, Error::CorruptStore(_) | Error::WrongRootKey),
            "cut {cut}: {err:?}"
        );
        assert_eq!(records(tap.0.as_ref()), 0, "cut {cut}");
    }
    for at in (0..backup.len()).step_by(step) {
        let mut t = backup.clone();
        t[at] ^= 0x01;
        let tap = empty();
        let err = restore(&t, &ROOT, &tap).unwrap_err();
        assert!(
            matches!(
                err,
                Error::CorruptStore(_) | Error::WrongRootKey | Error::UnsupportedStoreVersion(_)
            ),
            "byte {at}: {err:?}"
        );
        assert_eq!(records(tap.0.as_ref()), 0, "byte {at}");
    }
    // A non-empty target.
    let tap = empty();
    let mut b = Batch::new();
    b.put("tag", b"x".to_vec(), b"y".to_vec());
    tap.apply(b).expect("apply");
    let err = restore(&backup, &ROOT, &tap).unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
    assert_eq!(records(tap.0.as_ref()), 1);
    // The whole backup restores.
    let tap = empty();
    restore(&backup, &ROOT, &tap).expect("restore");
    assert!(records(tap.0.as_ref()) > 10);
}

#[test]
fn backup_golden_vector() {
    let text = include_str!("data/backup-v1.txt");
    let field = |name: &str| {
        let v = text
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
            .expect("field");
        (0..v.len() / 2)
            .map(|i| u8::from_str_radix(&v[2 * i..2 * i + 2], 16).expect("hex"))
            .collect::<Vec<u8>>()
    };
    let (root, backup) = (field("root_key"), field("backup"));
    assert_eq!(golden::check_backup(&root, &backup).expect("valid"), 3);
    let mut t = backup.clone();
    let last = t.len() - 1;
    t[last] ^= 1;
    assert!(golden::check_backup(&root, &t).is_err());
    assert_eq!(
        golden::check_backup(&[9; 32], &backup).unwrap_err(),
        Error::WrongRootKey
    );
}
