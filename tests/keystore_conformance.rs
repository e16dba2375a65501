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
