//! The public keystore conformance suite, run against both backends.

use localkms::store::{MemoryKeystore, SledKeystore, conformance};

#[test]
fn memory_backend_conforms() {
    conformance::run_all(|| Box::new(MemoryKeystore::new()));
}

#[test]
fn sled_backend_conforms() {
    let dirs = std::sync::Mutex::new(Vec::new());
    conformance::run_all(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SledKeystore::open(dir.path()).expect("open sled");
        dirs.lock().expect("lock").push(dir);
        Box::new(store)
    });
}

#[test]
fn sled_backend_keeps_applied_batches_across_reopen() {
    use localkms::store::{Batch, Keystore, Scan};
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = SledKeystore::open(dir.path()).expect("open");
        let mut b = Batch::new();
        b.put("k", b"a".to_vec(), b"1".to_vec());
        b.put("k", b"b".to_vec(), b"2".to_vec());
        store.apply(b).expect("apply");
        store.flush().expect("flush");
    }
    let store = SledKeystore::open(dir.path()).expect("reopen");
    assert_eq!(store.scan("k", Scan::prefix(b"")).expect("scan").len(), 2);
}

#[test]
fn a_backend_without_apply_if_says_so() {
    use localkms::store::{Batch, Expect, Keystore, Record, Scan, StoreError};
    #[derive(Debug)]
    struct Plain;
    impl Keystore for Plain {
        fn get(&self, _: &str, _: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            Ok(None)
        }
        fn scan(&self, _: &str, _: Scan<'_>) -> Result<Vec<Record>, StoreError> {
            Ok(Vec::new())
        }
        fn apply(&self, _: Batch) -> Result<(), StoreError> {
            Ok(())
        }
        fn flush(&self) -> Result<(), StoreError> {
            Ok(())
        }
    }
    let r = Plain.apply_if(&[Expect::absent("k", b"x")], Batch::new());
    assert!(matches!(r, Err(StoreError::Unsupported(_))), "{r:?}");
}
