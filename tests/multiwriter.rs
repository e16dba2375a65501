//! Several `Kms` instances over one shared store, as several processes over
//! one database: every write is a conditional commit (the store's head must be
//! unchanged since the write began), so alias uniqueness, `max_keys` and the
//! state machine hold across instances; a change made by one instance is
//! honoured by the others within `cache_ttl`, on the service's clock.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use localkms::store::{
    Batch, Conflict, Expect, Keystore, MemoryKeystore, Record, Scan, StoreError,
};
use localkms::{EncryptionContext, Error, KeyState, Kms, ManualClock, Paging};

/// One `MemoryKeystore` held by several instances (each builds its own
/// `Kms`, with its own cache and writer lock, as a process would).
#[derive(Debug, Clone, Default)]
struct Shared(Arc<MemoryKeystore>);

impl Keystore for Shared {
    fn get(&self, ns: &str, id: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.get(ns, id)
    }
    fn scan(&self, ns: &str, scan: Scan<'_>) -> Result<Vec<Record>, StoreError> {
        self.0.scan(ns, scan)
    }
    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        self.0.apply(batch)
    }
    fn apply_if(
        &self,
        expect: &[Expect<'_>],
        batch: Batch,
    ) -> Result<Result<(), Conflict>, StoreError> {
        self.0.apply_if(expect, batch)
    }
    fn flush(&self) -> Result<(), StoreError> {
        self.0.flush()
    }
    fn visit_all(&self, visit: &mut localkms::store::Visitor<'_>) -> Result<(), StoreError> {
        self.0.visit_all(visit)
    }
    /// Held as processes would hold one database.
    fn is_shared(&self) -> bool {
        true
    }
}

const ROOT: [u8; 32] = [3; 32];

fn instance(store: &Shared, clock: &ManualClock, ttl: Duration) -> Kms {
    Kms::builder()
        .keystore(store.clone())
        .root_key_bytes(&ROOT)
        .clock(clock.clone())
        .cache_ttl(ttl)
        .build()
        .expect("build")
}

fn pair(ttl: Duration) -> (Kms, Kms, ManualClock) {
    let store = Shared::default();
    let clock = ManualClock::new(1_700_000_000);
    let a = instance(&store, &clock, ttl);
    let b = instance(&store, &clock, ttl);
    (a, b, clock)
}

fn encrypt(kms: &Kms, key: &str) -> Result<(), Error> {
    kms.encrypt(key, b"hello", &EncryptionContext::default())
        .map(|_| ())
}

fn is_disabled(r: Result<(), Error>) -> bool {
    matches!(r, Err(ref e) if e.code() == "Rejected.Disabled")
}

#[test]
fn a_disable_in_one_instance_is_honoured_by_another_after_the_ttl() {
    let (a, b, clock) = pair(Duration::from_secs(1));
    let key = a.create_key(&Default::default()).expect("create").key_id;
    encrypt(&b, &key).expect("b caches the key");
    a.disable_key(&key).expect("disable");
    assert!(is_disabled(encrypt(&a, &key)), "the writer sees it at once");
    // Within the bound, B may still use its cached record (not asserted
    // either way beyond what the clock allows): move just short of the TTL.
    clock.advance_millis(999);
    let _ = encrypt(&b, &key);
    clock.advance_millis(1);
    assert!(
        is_disabled(encrypt(&b, &key)),
        "after cache_ttl the other instance honours DisableKey"
    );
    assert_eq!(
        b.describe_key(&key).expect("describe").key_state,
        KeyState::Disabled
    );
    // And the enable in B reaches A after the TTL too.
    b.enable_key(&key).expect("enable in b");
    clock.advance_millis(1000);
    encrypt(&a, &key).expect("a honours EnableKey after the TTL");
}

#[test]
fn a_zero_ttl_reads_through_at_once() {
    let (a, b, _clock) = pair(Duration::ZERO);
    let key = a.create_key(&Default::default()).expect("create").key_id;
    encrypt(&b, &key).expect("b uses the key");
    a.disable_key(&key).expect("disable");
    assert!(is_disabled(encrypt(&b, &key)), "read through: at once");
    a.enable_key(&key).expect("enable");
    encrypt(&b, &key).expect("enabled again, at once");
    a.schedule_key_deletion(&key, 7).expect("schedule");
    let e = encrypt(&b, &key).expect_err("pending deletion");
    assert_eq!(e.code(), "Rejected.PendingDeletion");
}

#[test]
fn a_deletion_in_one_instance_is_not_found_in_another() {
    let (a, b, clock) = pair(Duration::ZERO);
    let key = a.create_key(&Default::default()).expect("create").key_id;
    encrypt(&b, &key).expect("b uses the key");
    a.schedule_key_deletion(&key, 7).expect("schedule");
    clock.advance(7 * 86_400);
    assert_eq!(a.purge_expired().expect("purge"), 1);
    let e = encrypt(&b, &key).expect_err("gone");
    assert_eq!(e.code(), "Forbidden.KeyNotFound");
    assert_eq!(b.key_count().expect("count"), 0);
    assert_eq!(b.purge_expired().expect("nothing left to purge"), 0);
}

#[test]
fn racing_alias_creation_on_two_instances_has_exactly_one_winner() {
    for round in 0..10 {
        let (a, b, _clock) = pair(Duration::from_secs(1));
        let ka = a.create_key(&Default::default()).expect("create").key_id;
        let kb = b.create_key(&Default::default()).expect("create").key_id;
        let name = format!("alias/race{round}");
        let barrier = Barrier::new(4);
        let outcomes: Vec<(String, Result<(), Error>)> = std::thread::scope(|s| {
            let handles: Vec<_> = [(&a, &ka), (&a, &ka), (&b, &kb), (&b, &kb)]
                .into_iter()
                .map(|(kms, key)| {
                    let (barrier, name) = (&barrier, &name);
                    s.spawn(move || {
                        barrier.wait();
                        (key.clone(), kms.create_alias(name, key))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("join"))
                .collect()
        });
        let winners: Vec<_> = outcomes.iter().filter(|(_, r)| r.is_ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {outcomes:?}");
        for (_, r) in &outcomes {
            if let Err(e) = r {
                assert_eq!(e.code(), "AliasAlreadyExists", "{e}");
            }
        }
        let winner = &winners[0].0;
        for kms in [&a, &b] {
            let page = kms.list_aliases(Paging::default()).expect("list");
            assert_eq!(page.total_count, 1);
            assert_eq!(&kms.describe_key(&name).expect("resolve").key_id, winner);
        }
    }
}

#[test]
fn max_keys_holds_exactly_with_creators_racing_on_two_instances() {
    let store = Shared::default();
    let clock = ManualClock::new(1_700_000_000);
    let make = || {
        Kms::builder()
            .keystore(store.clone())
            .root_key_bytes(&ROOT)
            .clock(clock.clone())
            .max_keys(10)
            .build()
            .expect("build")
    };
    let (a, b) = (make(), make());
    let barrier = Barrier::new(4);
    let created: usize = std::thread::scope(|s| {
        let handles: Vec<_> = [&a, &a, &b, &b]
            .into_iter()
            .map(|kms| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let mut ok = 0;
                    for _ in 0..8 {
                        match kms.create_key(&Default::default()) {
                            Ok(_) => ok += 1,
                            Err(e) => assert_eq!(e.code(), "Rejected.LimitExceeded", "{e}"),
                        }
                    }
                    ok
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("join")).sum()
    });
    assert_eq!(created, 10);
    for kms in [&a, &b] {
        assert_eq!(kms.key_count().expect("count"), 10);
        let page = kms
            .list_keys(Paging::new(1, 100).expect("paging"))
            .expect("list");
        assert_eq!(page.total_count, 10);
        let mut ids: Vec<_> = page.items.iter().map(|k| k.key_id.clone()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(
            ids.len(),
            10,
            "every key listed once (sequence numbers unique)"
        );
    }
    let report = a.verify().expect("verify");
    assert!(report.is_ok(), "{report}");
}

#[test]
fn racing_writes_on_one_key_from_two_instances_all_land() {
    // Tags written by both instances at once: no acknowledged write is lost
    // (each commit is conditional on the head, so none overwrites another
    // it did not read).
    let (a, b, _clock) = pair(Duration::ZERO);
    let key = a.create_key(&Default::default()).expect("create").key_id;
    std::thread::scope(|s| {
        for (n, kms) in [&a, &b, &a, &b].into_iter().enumerate() {
            let key = &key;
            s.spawn(move || {
                for i in 0..2 {
                    let tag = localkms::Tag::new(format!("t{n}-{i}"), "v").expect("tag");
                    kms.tag_resource(key, &[tag]).expect("tag");
                }
            });
        }
    });
    for kms in [&a, &b] {
        assert_eq!(kms.list_resource_tags(&key).expect("tags").len(), 8);
    }
    let report = b.verify().expect("verify");
    assert!(report.is_ok(), "{report}");
}

/// A write starts from its instance's last commit without reading (on a
/// shared store); after another instance committed, that start is stale:
/// the commit conflicts, nothing of it lands, and the retry reads afresh.
#[test]
fn a_write_started_from_a_stale_last_commit_conflicts_once_and_lands() {
    let store = Shared::default();
    let clock = ManualClock::new(1_700_000_000);
    let a = instance(&store, &clock, Duration::ZERO);
    let b = instance(&store, &clock, Duration::ZERO);
    for round in 0..5u64 {
        a.create_key(&Default::default()).expect("a creates");
        b.create_key(&Default::default()).expect("b creates");
        assert_eq!(a.key_count().expect("count"), 2 * (round + 1));
        assert_eq!(b.key_count().expect("count"), 2 * (round + 1));
    }
    let report = a.verify().expect("verify");
    assert!(report.is_ok(), "{report}");
}

type Hook = Box<dyn FnOnce() + Send>;

/// A shared store that runs a hook once, at the first read of key material.
#[derive(Clone, Default)]
struct Hooked {
    inner: Shared,
    hook: Arc<std::sync::Mutex<Option<Hook>>>,
}

impl std::fmt::Debug for Hooked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hooked")
    }
}

impl Keystore for Hooked {
    fn get(&self, ns: &str, id: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if ns == "material" {
            let hook = self.hook.lock().expect("hook").take();
            if let Some(hook) = hook {
                hook();
            }
        }
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
    fn visit_all(&self, visit: &mut localkms::store::Visitor<'_>) -> Result<(), StoreError> {
        self.inner.visit_all(visit)
    }
    fn is_shared(&self) -> bool {
        true
    }
}

/// A key purged by another process while `verify` runs is not reported as
/// missing material: only a key record still as read is a finding.
#[test]
fn verify_does_not_report_material_purged_by_another_process_meanwhile() {
    let store = Hooked::default();
    let clock = ManualClock::new(1_700_000_000);
    let build = || {
        Kms::builder()
            .keystore(store.clone())
            .root_key_bytes(&ROOT)
            .clock(clock.clone())
            .cache_ttl(Duration::ZERO)
            .build()
            .expect("build")
    };
    let (a, b) = (build(), build());
    let key = b.create_key(&Default::default()).expect("create").key_id;
    b.schedule_key_deletion(&key, 7).expect("schedule");
    clock.advance(7 * 86_400);
    let purger = b.clone();
    *store.hook.lock().expect("hook") = Some(Box::new(move || {
        assert_eq!(purger.purge_expired().expect("purge"), 1);
    }));
    let report = a.verify().expect("verify");
    assert!(store.hook.lock().expect("hook").is_none(), "the hook ran");
    assert!(report.problems.is_empty(), "{report}");
}
