//! Root-key rotation on a store shared by several holders (SPEC section 9):
//! the rotation takes an exclusive lease in the head, other holders' writes
//! wait for it (a retryable error), a lease whose holder overran lapses on
//! the service's clock, and no holder writes under the retired key after the
//! rotation. The store is held by several `Kms` instances, as processes
//! would hold one database; a gate in `visit_all` (which the rotation calls
//! once it holds the lease) stops the rotation at that point, so every
//! interleaving below is deterministic.

#[cfg(feature = "postgres")]
#[path = "support/pg.rs"]
mod pg;

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use localkms::store::{
    Batch, Conflict, Expect, Keystore, MemoryKeystore, Record, Scan, StoreError, Visitor,
};
use localkms::{EncryptionContext, Error, Kms, ManualClock, RootKey};

const OLD: [u8; 32] = [3; 32];
const NEW: [u8; 32] = [4; 32];

/// Where the rotation stops: it reports that it reached `visit_all`, then
/// waits for the test's go.
struct Gate {
    entered: Sender<()>,
    go: Receiver<()>,
}

/// A store shared by every instance (as one database by processes), with
/// a gate the test can arm.
#[derive(Clone)]
struct Gated {
    inner: Arc<dyn Keystore>,
    gate: Arc<Mutex<Option<Gate>>>,
}

impl std::fmt::Debug for Gated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gated")
    }
}

impl Gated {
    fn new(inner: Arc<dyn Keystore>) -> Self {
        Self {
            inner,
            gate: Arc::new(Mutex::new(None)),
        }
    }

    /// Arms the gate: the next `visit_all` stops. Returns (reached, go).
    fn arm(&self) -> (Receiver<()>, Sender<()>) {
        let (entered_tx, entered_rx) = channel();
        let (go_tx, go_rx) = channel();
        *self.gate.lock().expect("gate") = Some(Gate {
            entered: entered_tx,
            go: go_rx,
        });
        (entered_rx, go_tx)
    }
}

impl Keystore for Gated {
    fn get(&self, ns: &str, id: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(ns, id)
    }
    fn scan(&self, ns: &str, scan: Scan<'_>) -> Result<Vec<Record>, StoreError> {
        self.inner.scan(ns, scan)
    }
    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        self.inner.apply(batch)
    }
    fn apply_if(
        &self,
        expect: &[Expect<'_>],
        batch: Batch,
    ) -> Result<Result<(), Conflict>, StoreError> {
        self.inner.apply_if(expect, batch)
    }
    fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush()
    }
    fn visit_all(&self, visit: &mut Visitor<'_>) -> Result<(), StoreError> {
        let gate = self.gate.lock().expect("gate").take();
        if let Some(gate) = gate {
            gate.entered.send(()).expect("the test waits");
            gate.go.recv().expect("the test releases the rotation");
        }
        self.inner.visit_all(visit)
    }
    fn is_shared(&self) -> bool {
        true
    }
}

fn instance(store: &Gated, root: &[u8; 32], clock: &ManualClock, lease: Duration) -> Kms {
    Kms::builder()
        .keystore(store.clone())
        .root_key_bytes(root)
        .clock(clock.clone())
        .cache_ttl(Duration::ZERO)
        .rotation_lease(lease)
        .build()
        .expect("build")
}

fn new_key() -> RootKey {
    RootKey::from_bytes(&NEW).expect("root key")
}

fn is_lease_wait(e: &Error) -> bool {
    e.is_retryable() && e.to_string().contains("rotating the store's root key")
}

fn is_rotated(e: &Error) -> bool {
    matches!(e, Error::RootKeyRotated(_))
}

/// Starts a rotation by `kms` that stops once it holds the lease; returns
/// its thread and the sender that lets it go on.
fn stopped_rotation(
    store: &Gated,
    kms: &Kms,
) -> (std::thread::JoinHandle<Result<(), Error>>, Sender<()>) {
    let (entered, go) = store.arm();
    let rotating = kms.clone();
    let thread = std::thread::spawn(move || rotating.rotate_root_key(new_key()));
    entered.recv().expect("the rotation reaches its lease");
    (thread, go)
}

fn writes_wait_for_the_lease_and_the_old_key_is_refused_after(store: Arc<dyn Keystore>) {
    let store = Gated::new(store);
    let clock = ManualClock::new(1_700_000_000);
    let lease = Duration::from_secs(60);
    let a = instance(&store, &OLD, &clock, lease);
    let b = instance(&store, &OLD, &clock, lease);
    let key = b.create_key(&Default::default()).expect("create").key_id;
    let ctx = EncryptionContext::default();
    let blob = b
        .encrypt(&key, b"kept", &ctx)
        .expect("encrypt")
        .ciphertext_blob;

    let (rotation, go) = stopped_rotation(&store, &a);
    // Under the lease: B's writes wait (a retryable error), even after
    // a while short of the lease; its reads go on.
    let e = b.create_key(&Default::default()).expect_err("lease held");
    assert!(is_lease_wait(&e), "{e}");
    clock.advance(59);
    let e = b.disable_key(&key).expect_err("lease held");
    assert!(is_lease_wait(&e), "{e}");
    let plain = b.decrypt(&blob, &ctx).expect("reads go on").plaintext;
    assert_eq!(plain.expose_secret(), b"kept");

    go.send(()).expect("release");
    rotation.join().expect("thread").expect("rotation");
    // After it, B (old key) never writes: a clear error, not a silent one.
    let e = b.create_key(&Default::default()).expect_err("old key");
    assert!(is_rotated(&e), "{e}");
    let e = b.enable_key(&key).expect_err("old key");
    assert!(is_rotated(&e), "{e}");
    // A (the rotator) writes under the new key, and so does a holder
    // opened with it; the lease is gone.
    a.create_key(&Default::default())
        .expect("rotator writes on");
    let c = instance(&store, &NEW, &clock, lease);
    c.create_key(&Default::default())
        .expect("new holder writes");
    let plain = c.decrypt(&blob, &ctx).expect("decrypt").plaintext;
    assert_eq!(plain.expose_secret(), b"kept");
    let report = c.verify().expect("verify");
    assert!(report.is_ok(), "{report:?}");
}

fn a_lapsed_lease_is_broken_and_the_overrunning_rotation_changes_nothing(store: Arc<dyn Keystore>) {
    let store = Gated::new(store);
    let clock = ManualClock::new(1_700_000_000);
    let lease = Duration::from_secs(60);
    let a = instance(&store, &OLD, &clock, lease);
    let b = instance(&store, &OLD, &clock, lease);
    let (rotation, go) = stopped_rotation(&store, &a);
    assert!(is_lease_wait(
        &b.create_key(&Default::default()).expect_err("lease held")
    ));
    // The rotation overruns its lease: B breaks it and writes.
    clock.advance(61);
    let late = b
        .create_key(&Default::default())
        .expect("lease lapsed")
        .key_id;
    go.send(()).expect("release");
    let e = rotation
        .join()
        .expect("thread")
        .expect_err("the rotation lost its lease");
    assert!(e.to_string().contains("outlived its lease"), "{e}");
    // Nothing was rotated: the old key opens the store, with B's write.
    a.create_key(&Default::default())
        .expect("old key writes on");
    let c = instance(&store, &OLD, &clock, lease);
    c.describe_key(&late).expect("B's key is there");
    let report = c.verify().expect("verify");
    assert!(report.is_ok(), "{report:?}");
    assert!(
        Kms::builder()
            .keystore(store.clone())
            .root_key_bytes(&NEW)
            .build()
            .is_err(),
        "the new key does not open the store"
    );
    // And a rotation that keeps its lease then succeeds.
    a.rotate_root_key(new_key()).expect("rotate");
    assert!(is_rotated(
        &b.create_key(&Default::default()).expect_err("old key")
    ));
}

fn a_failed_rotation_releases_its_lease_at_once(store: Arc<dyn Keystore>) {
    let store = Gated::new(store);
    let clock = ManualClock::new(1_700_000_000);
    let lease = Duration::from_secs(60);
    let a = instance(&store, &OLD, &clock, lease);
    let b = instance(&store, &OLD, &clock, lease);
    // A record that does not open: the rotation refuses the store after
    // it took the lease, and must give the lease back.
    let mut forged = Batch::new();
    forged.put("key", b"forged".to_vec(), vec![2u8; 64]);
    store.inner.apply(forged).expect("write behind the library");
    let e = a.rotate_root_key(new_key()).expect_err("a record is bad");
    assert!(
        matches!(e, Error::CorruptStore(_) | Error::Storage(_)),
        "{e}"
    );
    // No clock advance: B writes at once.
    b.create_key(&Default::default())
        .expect("the lease was released");
}

fn memory() -> Arc<dyn Keystore> {
    Arc::new(MemoryKeystore::new())
}

#[test]
fn writes_wait_for_the_lease_and_the_old_key_is_refused_after_on_memory() {
    writes_wait_for_the_lease_and_the_old_key_is_refused_after(memory());
}

#[test]
fn a_lapsed_lease_is_broken_and_the_overrunning_rotation_changes_nothing_on_memory() {
    a_lapsed_lease_is_broken_and_the_overrunning_rotation_changes_nothing(memory());
}

#[test]
fn a_failed_rotation_releases_its_lease_at_once_on_memory() {
    a_failed_rotation_releases_its_lease_at_once(memory());
}

/// A store only one process opens takes no lease: a crash cannot leave one
/// behind to block the next open's writes.
#[test]
fn an_unshared_store_takes_no_lease() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kms = Kms::builder()
        .sled(dir.path().join("store"))
        .root_key_bytes(&OLD)
        .build()
        .expect("build");
    kms.create_key(&Default::default()).expect("create");
    let before = kms.verify().expect("verify").head_seq;
    kms.rotate_root_key(new_key()).expect("rotate");
    let after = kms.verify().expect("verify").head_seq;
    assert_eq!(after, before + 1, "one commit: the switch, no lease");
}

#[cfg(feature = "postgres")]
mod on_postgres {
    use super::*;

    fn store(test: &str) -> Option<Arc<dyn Keystore>> {
        static SERVER: std::sync::OnceLock<Option<pg::PgServer>> = std::sync::OnceLock::new();
        let server = SERVER.get_or_init(pg::PgServer::start).as_ref()?;
        let store =
            localkms::store::PostgresKeystore::connect(&server.url(), test).expect("connect");
        assert!(store.is_shared());
        Some(Arc::new(store))
    }

    #[test]
    fn writes_wait_for_the_lease_and_the_old_key_is_refused_after_on_postgres() {
        if let Some(s) = store("lease_wait") {
            writes_wait_for_the_lease_and_the_old_key_is_refused_after(s);
        }
    }

    #[test]
    fn a_lapsed_lease_is_broken_and_the_overrunning_rotation_changes_nothing_on_postgres() {
        if let Some(s) = store("lease_lapse") {
            a_lapsed_lease_is_broken_and_the_overrunning_rotation_changes_nothing(s);
        }
    }

    #[test]
    fn a_failed_rotation_releases_its_lease_at_once_on_postgres() {
        if let Some(s) = store("lease_release") {
            a_failed_rotation_releases_its_lease_at_once(s);
        }
    }
}
