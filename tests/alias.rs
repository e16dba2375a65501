//! Aliases: CreateAlias, UpdateAlias, DeleteAlias, ListAliases,
//! ListAliasesByKeyId, alias resolution, the state table, deletion at
//! `DeleteDate`, concurrency and persistence. Behaviour tests run against both
//! keystore backends.

mod sled_reopen;

use std::sync::{Arc, Barrier, Mutex};

use localkms::store::{Batch, Keystore, MemoryKeystore, Op, Record, Scan, StoreError};
use localkms::{
    AliasEntry, CreateKeyRequest, Error, KeyState, Kms, ManualClock, Paging, Tag, TagKey,
};

const ROOT: [u8; 32] = [7; 32];
const T0: i64 = 1_700_000_000;
const DAY: i64 = 86_400;

/// Runs `test` on a fresh in-memory service and a fresh sled service.
fn each_backend(test: impl Fn(&Kms, &ManualClock)) {
    let clock = ManualClock::new(T0);
    let kms = Kms::builder()
        .in_memory()
        .root_key_bytes(&ROOT)
        .clock(clock.clone())
        .build()
        .unwrap();
    test(&kms, &clock);
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let kms = Kms::builder()
        .sled(dir.path())
        .root_key_bytes(&ROOT)
        .clock(clock.clone())
        .build()
        .unwrap();
    test(&kms, &clock);
}

fn key(kms: &Kms) -> String {
    kms.create_key(&CreateKeyRequest::default()).unwrap().key_id
}

fn code<T: std::fmt::Debug>(r: Result<T, Error>) -> &'static str {
    r.unwrap_err().code()
}

fn names(page: &localkms::Page<AliasEntry>) -> Vec<&str> {
    page.items.iter().map(|a| a.alias_name.as_str()).collect()
}

/// Every alias, read page by page.
fn all_aliases(kms: &Kms) -> Vec<AliasEntry> {
    let mut out = Vec::new();
    for page in 1.. {
        let p = kms.list_aliases(Paging::new(page, 100).unwrap()).unwrap();
        if p.items.is_empty() {
            assert_eq!(p.total_count, out.len() as u64);
            return out;
        }
        out.extend(p.items);
    }
    unreachable!()
}

/// A key in each of the four states: Enabled, Disabled, PendingDeletion,
/// PendingImport.
fn keys_in_every_state(kms: &Kms) -> [(KeyState, String); 4] {
    let enabled = key(kms);
    let disabled = key(kms);
    kms.disable_key(&disabled).unwrap();
    let pending = key(kms);
    kms.schedule_key_deletion(&pending, 7).unwrap();
    let import = kms
        .create_key(&CreateKeyRequest::external())
        .unwrap()
        .key_id;
    [
        (KeyState::Enabled, enabled),
        (KeyState::Disabled, disabled),
        (KeyState::PendingDeletion, pending),
        (KeyState::PendingImport, import),
    ]
}

#[test]
fn create_resolve_and_list() {
    each_backend(|kms, _| {
        let k = key(kms);
        kms.create_alias("alias/app", &k).unwrap();
        assert_eq!(kms.describe_key("alias/app").unwrap().key_id, k);
        let arn = "acs:kms:cn-hangzhou:1234567890123456:alias/app";
        assert_eq!(kms.describe_key(arn).unwrap().key_id, k);
        assert_eq!(
            all_aliases(kms),
            vec![AliasEntry {
                alias_name: "alias/app".into(),
                alias_arn: arn.into(),
                key_id: k.clone(),
            }]
        );
        let by_key = kms.list_aliases_by_key_id(&k, Paging::default()).unwrap();
        assert_eq!(by_key.items, all_aliases(kms));
        assert_eq!(by_key.total_count, 1);
        // A key ARN is a key id everywhere.
        let key_arn = format!("acs:kms:cn-hangzhou:1234567890123456:key/{k}");
        kms.create_alias("alias/by-arn", &key_arn).unwrap();
        assert_eq!(kms.describe_key("alias/by-arn").unwrap().key_id, k);
    });
}

#[test]
fn alias_arn_uses_the_configured_region_and_account() {
    let kms = Kms::builder()
        .region_id("cn-shanghai")
        .account_id("9999999999999999")
        .build()
        .unwrap();
    let k = key(&kms);
    kms.create_alias("alias/a", &k).unwrap();
    assert_eq!(
        all_aliases(&kms)[0].alias_arn,
        "acs:kms:cn-shanghai:9999999999999999:alias/a"
    );
    assert_eq!(
        kms.describe_key("acs:kms:cn-shanghai:9999999999999999:alias/a")
            .unwrap()
            .key_id,
        k
    );
    // Another region's or account's alias ARN names no alias here.
    for other in [
        "acs:kms:cn-hangzhou:9999999999999999:alias/a",
        "acs:kms:cn-shanghai:1234567890123456:alias/a",
    ] {
        assert_eq!(code(kms.describe_key(other)), "Forbidden.AliasNotFound");
    }
    assert_eq!(kms.describe_regions(), vec!["cn-shanghai".to_owned()]);
}

#[test]
fn describe_regions_defaults_to_cn_hangzhou() {
    let kms = Kms::in_memory().unwrap();
    assert_eq!(kms.describe_regions(), vec!["cn-hangzhou".to_owned()]);
}

#[test]
fn unknown_aliases_are_alias_not_found() {
    each_backend(|kms, _| {
        for a in [
            "alias/none",
            "alias/",
            "alias/a b",
            "acs:kms:cn-hangzhou:1234567890123456:alias/none",
        ] {
            let e = kms.describe_key(a).unwrap_err();
            assert_eq!(e.code(), "Forbidden.AliasNotFound", "{a}");
        }
        assert_eq!(
            code(kms.delete_alias("alias/none")),
            "Forbidden.AliasNotFound"
        );
        let k = key(kms);
        assert_eq!(
            code(kms.update_alias("alias/none", &k)),
            "Forbidden.AliasNotFound"
        );
    });
}

#[test]
fn alias_grammar_is_enforced_by_every_operation() {
    let kms = Kms::in_memory().unwrap();
    let k = key(&kms);
    let long = format!("alias/{}", "x".repeat(256));
    for (name, want) in [
        ("", "MissingParameter"),
        ("app", "InvalidParameter"),
        ("alias/", "InvalidParameter"),
        ("alias/a b", "InvalidParameter"),
        ("alias/a.b", "InvalidParameter"),
        ("alias/acs", "InvalidParameter"),
        ("alias/acs/kms", "InvalidParameter"),
        ("alias/acsx", "InvalidParameter"),
        (long.as_str(), "InvalidParameter"),
        (
            "acs:kms:cn-hangzhou:1234567890123456:alias/a",
            "InvalidParameter",
        ),
    ] {
        for e in [
            kms.create_alias(name, &k).unwrap_err(),
            kms.update_alias(name, &k).unwrap_err(),
            kms.delete_alias(name).unwrap_err(),
        ] {
            assert_eq!(e.code(), want, "{name}");
            assert!(e.to_string().contains("AliasName"), "{name}: {e}");
        }
    }
    let longest = format!("alias/{}", "x".repeat(255));
    for ok in [
        "alias/a",
        "alias/A-b_c/d",
        "alias/ACS",
        "alias/ac",
        &longest,
    ] {
        kms.create_alias(ok, &k).unwrap();
    }
    assert_eq!(all_aliases(&kms).len(), 5);
}

#[test]
fn only_alias_ok_operations_take_an_alias() {
    each_backend(|kms, _| {
        let k = key(kms);
        kms.create_alias("alias/a", &k).unwrap();
        for a in ["alias/a", "acs:kms:cn-hangzhou:1234567890123456:alias/a"] {
            let tag = [Tag::new("k", "v").unwrap()];
            let tag_key = [TagKey::new("k").unwrap()];
            let errors = [
                kms.create_alias("alias/b", a).unwrap_err(),
                kms.update_alias("alias/a", a).unwrap_err(),
                kms.list_aliases_by_key_id(a, Paging::default())
                    .unwrap_err(),
                kms.tag_resource(a, &tag).unwrap_err(),
                kms.untag_resource(a, &tag_key).unwrap_err(),
                kms.list_resource_tags(a).unwrap_err(),
                kms.enable_key(a).unwrap_err(),
                kms.disable_key(a).unwrap_err(),
                kms.schedule_key_deletion(a, 7).unwrap_err(),
                kms.cancel_key_deletion(a).unwrap_err(),
            ];
            for e in errors {
                assert_eq!(e.code(), "Unsupported.Alias", "{a}: {e}");
                assert!(e.to_string().contains("KeyId"), "{e}");
            }
            // Even an alias that names nothing.
            assert_eq!(
                code(kms.list_resource_tags("alias/none")),
                "Unsupported.Alias"
            );
            // DescribeKey is alias ok.
            assert_eq!(kms.describe_key(a).unwrap().key_id, k);
        }
        assert!(all_aliases(kms).iter().all(|a| a.alias_name == "alias/a"));
    });
}

#[test]
fn key_ids_that_name_no_key() {
    each_backend(|kms, _| {
        let missing = "00000000-0000-4000-8000-000000000000";
        for k in [missing, "not-a-key"] {
            assert_eq!(
                code(kms.create_alias("alias/a", k)),
                "Forbidden.KeyNotFound"
            );
            assert_eq!(
                code(kms.list_aliases_by_key_id(k, Paging::default())),
                "Forbidden.KeyNotFound"
            );
        }
        assert_eq!(
            kms.create_alias("alias/a", "").unwrap_err(),
            Error::MissingParameter("KeyId")
        );
        let k = key(kms);
        kms.create_alias("alias/a", &k).unwrap();
        assert_eq!(
            code(kms.update_alias("alias/a", missing)),
            "Forbidden.KeyNotFound"
        );
        assert_eq!(kms.describe_key("alias/a").unwrap().key_id, k);
    });
}

#[test]
fn names_are_unique_per_store() {
    each_backend(|kms, _| {
        let (a, b) = (key(kms), key(kms));
        kms.create_alias("alias/x", &a).unwrap();
        let e = kms.create_alias("alias/x", &b).unwrap_err();
        assert_eq!(e.code(), "AliasAlreadyExists");
        assert!(e.to_string().contains("AliasName"), "{e}");
        assert_eq!(code(kms.create_alias("alias/x", &a)), "AliasAlreadyExists");
        // Names are case-sensitive.
        kms.create_alias("alias/X", &b).unwrap();
        assert_eq!(kms.describe_key("alias/x").unwrap().key_id, a);
        assert_eq!(kms.describe_key("alias/X").unwrap().key_id, b);
        // A key may have many aliases.
        kms.create_alias("alias/y", &a).unwrap();
        let by_a = kms.list_aliases_by_key_id(&a, Paging::default()).unwrap();
        assert_eq!(names(&by_a), ["alias/x", "alias/y"]);
    });
}

#[test]
fn create_alias_follows_the_state_table() {
    each_backend(|kms, _| {
        for (state, k) in keys_in_every_state(kms) {
            let name = format!("alias/{state}");
            let r = kms.create_alias(&name, &k);
            if state == KeyState::PendingDeletion {
                let e = r.unwrap_err();
                assert_eq!(e.code(), "Rejected.StateModifiedFailed");
                assert_eq!(e.http_status(), 409);
                assert_eq!(code(kms.describe_key(&name)), "Forbidden.AliasNotFound");
            } else {
                r.unwrap();
                assert_eq!(kms.describe_key(&name).unwrap().key_state, state);
            }
        }
    });
}

#[test]
fn delete_alias_and_list_aliases_work_in_every_state() {
    each_backend(|kms, _| {
        let keys = keys_in_every_state(kms);
        // Alias every key while it can still take one.
        let mut all = Vec::new();
        for (state, k) in &keys {
            let name = format!("alias/{state}");
            if *state == KeyState::PendingDeletion {
                kms.cancel_key_deletion(k).unwrap();
                kms.create_alias(&name, k).unwrap();
                kms.schedule_key_deletion(k, 7).unwrap();
            } else {
                kms.create_alias(&name, k).unwrap();
            }
            all.push(name);
        }
        for (state, k) in &keys {
            assert_eq!(kms.describe_key(k).unwrap().key_state, *state);
        }
        let listed: Vec<String> = all_aliases(kms).into_iter().map(|a| a.alias_name).collect();
        assert_eq!(listed, all);
        for name in &all {
            kms.delete_alias(name).unwrap();
            assert_eq!(code(kms.describe_key(name)), "Forbidden.AliasNotFound");
        }
        assert!(all_aliases(kms).is_empty());
        assert_eq!(kms.list_aliases(Paging::default()).unwrap().total_count, 0);
    });
}

#[test]
fn update_alias_looks_only_at_the_target_key() {
    each_backend(|kms, _| {
        let keys = keys_in_every_state(kms);
        let source = key(kms);
        kms.create_alias("alias/moving", &source).unwrap();
        for (state, target) in &keys {
            let r = kms.update_alias("alias/moving", target);
            if *state == KeyState::PendingDeletion {
                let e = r.unwrap_err();
                assert_eq!(e.code(), "Rejected.PendingDeletion");
                assert_ne!(kms.describe_key("alias/moving").unwrap().key_id, *target);
            } else {
                r.unwrap();
                assert_eq!(kms.describe_key("alias/moving").unwrap().key_id, *target);
            }
        }
        // The source's state does not matter: move it off a key pending deletion.
        let (_, enabled) = &keys[0];
        kms.update_alias("alias/moving", enabled).unwrap();
        kms.schedule_key_deletion(enabled, 7).unwrap();
        kms.update_alias("alias/moving", &source).unwrap();
        assert_eq!(kms.describe_key("alias/moving").unwrap().key_id, source);
        // Updating to the key it already names is a no-op.
        kms.update_alias("alias/moving", &source).unwrap();
        assert_eq!(all_aliases(kms).len(), 1);
    });
}

#[test]
fn update_alias_moves_between_key_lists_and_keeps_its_place() {
    each_backend(|kms, _| {
        let (a, b) = (key(kms), key(kms));
        for n in ["alias/1", "alias/2", "alias/3"] {
            kms.create_alias(n, &a).unwrap();
        }
        kms.create_alias("alias/4", &b).unwrap();
        kms.update_alias("alias/2", &b).unwrap();
        let p = Paging::default();
        assert_eq!(
            names(&kms.list_aliases_by_key_id(&a, p).unwrap()),
            ["alias/1", "alias/3"]
        );
        // In b's list by alias creation order, so alias/2 comes first.
        assert_eq!(
            names(&kms.list_aliases_by_key_id(&b, p).unwrap()),
            ["alias/2", "alias/4"]
        );
        let all = kms.list_aliases(p).unwrap();
        assert_eq!(names(&all), ["alias/1", "alias/2", "alias/3", "alias/4"]);
        assert_eq!(all.items[1].key_id, b);
        // A deleted and re-created name goes to the end.
        kms.delete_alias("alias/1").unwrap();
        kms.create_alias("alias/1", &b).unwrap();
        assert_eq!(
            names(&kms.list_aliases(p).unwrap()),
            ["alias/2", "alias/3", "alias/4", "alias/1"]
        );
    });
}

#[test]
fn lists_page_in_creation_order() {
    each_backend(|kms, _| {
        let (a, b) = (key(kms), key(kms));
        let mut created = Vec::new();
        // Names out of byte order, so creation order is not name order.
        for i in 0..25 {
            let name = format!("alias/n{:02}", (i * 7) % 25);
            kms.create_alias(&name, if i % 2 == 0 { &a } else { &b })
                .unwrap();
            created.push(name);
        }
        let mut seen = Vec::new();
        for page in 1..=3 {
            let p = kms.list_aliases(Paging::new(page, 10).unwrap()).unwrap();
            assert_eq!(p.total_count, 25);
            assert_eq!((p.page_number, p.page_size), (page, 10));
            assert_eq!(p.items.len(), if page == 3 { 5 } else { 10 });
            seen.extend(p.items.into_iter().map(|e| e.alias_name));
        }
        assert_eq!(seen, created);
        let past = kms.list_aliases(Paging::new(4, 10).unwrap()).unwrap();
        assert!(past.items.is_empty());
        assert_eq!(past.total_count, 25);
        // Stable: the same page twice is the same.
        let p2 = kms.list_aliases(Paging::new(2, 7).unwrap()).unwrap();
        assert_eq!(p2, kms.list_aliases(Paging::new(2, 7).unwrap()).unwrap());

        let of_a: Vec<String> = created.iter().step_by(2).cloned().collect();
        let mut seen = Vec::new();
        for page in 1..=3 {
            let p = kms
                .list_aliases_by_key_id(&a, Paging::new(page, 5).unwrap())
                .unwrap();
            assert_eq!(p.total_count, 13);
            assert!(p.items.iter().all(|e| e.key_id == a));
            seen.extend(p.items.into_iter().map(|e| e.alias_name));
        }
        assert_eq!(seen, of_a);
        let past = kms
            .list_aliases_by_key_id(&a, Paging::new(9, 5).unwrap())
            .unwrap();
        assert!(past.items.is_empty());
        assert_eq!(past.total_count, 13);
    });
}

#[test]
fn aliases_and_tags_vanish_at_delete_date() {
    each_backend(|kms, clock| {
        let (doomed, kept) = (key(kms), key(kms));
        kms.create_alias("alias/doomed-1", &doomed).unwrap();
        kms.create_alias("alias/kept", &kept).unwrap();
        kms.create_alias("alias/doomed-2", &doomed).unwrap();
        kms.tag_resource(&doomed, &[Tag::new("k", "v").unwrap()])
            .unwrap();
        kms.schedule_key_deletion(&doomed, 7).unwrap();
        // Still there, and usable by DescribeKey, while pending.
        clock.advance(7 * DAY - 1);
        assert_eq!(
            kms.describe_key("alias/doomed-1").unwrap().key_state,
            KeyState::PendingDeletion
        );
        assert_eq!(all_aliases(kms).len(), 3);
        clock.advance(1);
        // Gone, whichever way it is reached first.
        assert_eq!(
            code(kms.describe_key("alias/doomed-1")),
            "Forbidden.AliasNotFound"
        );
        assert_eq!(code(kms.describe_key(&doomed)), "Forbidden.KeyNotFound");
        assert_eq!(
            code(kms.list_resource_tags(&doomed)),
            "Forbidden.KeyNotFound"
        );
        assert_eq!(
            code(kms.list_aliases_by_key_id(&doomed, Paging::default())),
            "Forbidden.KeyNotFound"
        );
        let left = kms.list_aliases(Paging::default()).unwrap();
        assert_eq!(names(&left), ["alias/kept"]);
        assert_eq!(left.total_count, 1);
        assert_eq!(
            code(kms.delete_alias("alias/doomed-2")),
            "Forbidden.AliasNotFound"
        );
        // The names are free again.
        kms.create_alias("alias/doomed-2", &kept).unwrap();
        assert_eq!(kms.list_aliases(Paging::default()).unwrap().total_count, 2);
    });
}

/// Each way of reaching an alias of a key past its DeleteDate first.
#[test]
fn every_path_sees_an_expired_key_s_aliases_as_gone() {
    type Probe = fn(&Kms, &str) -> Result<(), Error>;
    let probes: [(&str, Probe); 5] = [
        ("describe", |k, _| k.describe_key("alias/a").map(drop)),
        ("create", |k, other| k.create_alias("alias/a", other)),
        ("update", |k, other| k.update_alias("alias/a", other)),
        ("delete", |k, _| k.delete_alias("alias/a")),
        ("list", |k, _| {
            let p = k.list_aliases(Paging::default())?;
            assert_eq!(p.total_count, 0);
            assert!(p.items.is_empty());
            Ok(())
        }),
    ];
    for (what, probe) in probes {
        let clock = ManualClock::new(T0);
        let kms = Kms::builder().clock(clock.clone()).build().unwrap();
        let (doomed, other) = (key(&kms), key(&kms));
        kms.create_alias("alias/a", &doomed).unwrap();
        kms.schedule_key_deletion(&doomed, 7).unwrap();
        clock.advance(7 * DAY);
        let r = probe(&kms, &other);
        match what {
            "create" => r.unwrap(),
            "list" => r.unwrap(),
            _ => assert_eq!(r.unwrap_err().code(), "Forbidden.AliasNotFound", "{what}"),
        }
        let after = all_aliases(&kms);
        if what == "create" {
            assert_eq!(after.len(), 1);
            assert_eq!(after[0].key_id, other);
        } else {
            assert!(after.is_empty(), "{what}");
        }
        assert_eq!(kms.key_count().unwrap(), 1, "{what}");
    }
}

/// A keystore that records every batch it applies.
#[derive(Debug, Default)]
struct Recording {
    inner: MemoryKeystore,
    batches: Arc<Mutex<Vec<Batch>>>,
}

impl Keystore for Recording {
    fn get(&self, ns: &str, id: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(ns, id)
    }
    fn scan(&self, ns: &str, scan: Scan<'_>) -> Result<Vec<Record>, StoreError> {
        self.inner.scan(ns, scan)
    }
    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        self.batches.lock().unwrap().push(batch.clone());
        self.inner.apply(batch)
    }
    fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush()
    }
}

fn deletes(batch: &Batch) -> Vec<(&'static str, Vec<u8>)> {
    batch
        .ops()
        .iter()
        .filter_map(|op| match op {
            Op::Delete { ns, id } => Some((*ns, id.clone())),
            Op::Put { .. } => None,
        })
        .collect()
}

#[test]
fn a_key_s_aliases_and_tags_go_in_the_same_batch_as_the_key() {
    let clock = ManualClock::new(T0);
    let store = Recording::default();
    let batches = Arc::clone(&store.batches);
    let kms = Kms::builder()
        .keystore(store)
        .root_key_bytes(&ROOT)
        .clock(clock.clone())
        .build()
        .unwrap();
    let (doomed, kept) = (key(&kms), key(&kms));
    kms.create_alias("alias/a", &doomed).unwrap();
    kms.create_alias("alias/b", &kept).unwrap();
    kms.create_alias("alias/c", &doomed).unwrap();
    kms.tag_resource(&doomed, &[Tag::new("t", "v").unwrap()])
        .unwrap();
    kms.schedule_key_deletion(&doomed, 7).unwrap();
    clock.advance(7 * DAY);
    let before = batches.lock().unwrap().len();
    assert_eq!(kms.purge_expired().unwrap(), 1);
    let recorded = batches.lock().unwrap();
    assert_eq!(recorded.len(), before + 1, "one batch for the whole purge");
    let del = deletes(&recorded[before]);
    let has = |ns: &str, id: &[u8]| del.iter().any(|(n, i)| *n == ns && i == id);
    assert!(has("key", doomed.as_bytes()));
    assert!(has("alias", b"alias/a"));
    assert!(has("alias", b"alias/c"));
    assert!(!has("alias", b"alias/b"));
    assert!(has("tag", format!("{doomed}/t").as_bytes()));
    assert_eq!(del.iter().filter(|(n, _)| *n == "alias-order").count(), 2);
    drop(recorded);
    assert_eq!(
        names(&kms.list_aliases(Paging::default()).unwrap()),
        ["alias/b"]
    );
}

#[test]
fn concurrent_create_alias_of_one_name_has_one_winner() {
    for round in 0..5 {
        let kms = Arc::new(Kms::in_memory().unwrap());
        let keys: Vec<String> = (0..8).map(|_| key(&kms)).collect();
        let barrier = Arc::new(Barrier::new(keys.len()));
        let handles: Vec<_> = keys
            .iter()
            .cloned()
            .map(|k| {
                let (kms, barrier) = (Arc::clone(&kms), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    kms.create_alias("alias/contended", &k).map(|()| k)
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let winners: Vec<&String> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}");
        for r in &results {
            if let Err(e) = r {
                assert_eq!(e.code(), "AliasAlreadyExists");
            }
        }
        let listed = all_aliases(&kms);
        assert_eq!(listed.len(), 1);
        assert_eq!(&listed[0].key_id, winners[0]);
        assert_eq!(
            kms.describe_key("alias/contended").unwrap().key_id,
            *winners[0]
        );
    }
}

#[test]
fn concurrent_alias_writes_keep_the_store_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let kms = Arc::new(
        Kms::builder()
            .sled(dir.path())
            .root_key_bytes(&ROOT)
            .durability(localkms::Durability::Relaxed)
            .build()
            .unwrap(),
    );
    let keys: Vec<String> = (0..4).map(|_| key(&kms)).collect();
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (kms, barrier, keys) = (Arc::clone(&kms), Arc::clone(&barrier), keys.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..20 {
                    // Each thread fights over a few shared names and owns some.
                    let shared = format!("alias/shared-{}", i % 3);
                    let _ = kms.create_alias(&shared, &keys[(t + i) % 4]);
                    let _ = kms.update_alias(&shared, &keys[(t + i + 1) % 4]);
                    if i % 4 == 3 {
                        let _ = kms.delete_alias(&shared);
                    }
                    kms.create_alias(&format!("alias/own-{t}-{i}"), &keys[i % 4])
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let listed = all_aliases(&kms);
    let page = kms.list_aliases(Paging::default()).unwrap();
    assert_eq!(page.total_count, listed.len() as u64);
    let mut unique: Vec<&str> = listed.iter().map(|a| a.alias_name.as_str()).collect();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), listed.len(), "no name listed twice");
    assert_eq!(
        listed
            .iter()
            .filter(|a| a.alias_name.starts_with("alias/own-"))
            .count(),
        threads * 20
    );
    // Every alias appears in exactly its key's list, and resolves to it.
    let mut by_key_total = 0;
    for k in &keys {
        let first = kms.list_aliases_by_key_id(k, Paging::default()).unwrap();
        by_key_total += first.total_count;
        let mut of_k = Vec::new();
        for page in 1..=3 {
            let p = kms
                .list_aliases_by_key_id(k, Paging::new(page, 100).unwrap())
                .unwrap();
            of_k.extend(p.items);
        }
        assert_eq!(of_k.len() as u64, first.total_count);
        for a in of_k {
            assert_eq!(kms.describe_key(&a.alias_name).unwrap().key_id, *k);
        }
    }
    assert_eq!(by_key_total, listed.len() as u64);
}

#[test]
fn aliases_and_tags_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let open = || {
        sled_reopen::build_retrying(|| {
            Kms::builder()
                .sled(dir.path())
                .root_key_bytes(&ROOT)
                .clock(clock.clone())
                .build()
        })
    };
    let (a, b);
    {
        let kms = open();
        a = key(&kms);
        b = key(&kms);
        for n in ["alias/z", "alias/y", "alias/x"] {
            kms.create_alias(n, &a).unwrap();
        }
        kms.update_alias("alias/y", &b).unwrap();
        kms.tag_resource(&b, &[Tag::new("Project", "Test").unwrap()])
            .unwrap();
        kms.schedule_key_deletion(&a, 7).unwrap();
    }
    {
        let kms = open();
        assert_eq!(
            names(&kms.list_aliases(Paging::default()).unwrap()),
            ["alias/z", "alias/y", "alias/x"]
        );
        assert_eq!(kms.describe_key("alias/y").unwrap().key_id, b);
        assert_eq!(kms.list_resource_tags(&b).unwrap()[0].tag_value, "Test");
        // The alias sequence continues after reopen.
        kms.create_alias("alias/w", &b).unwrap();
        clock.advance(7 * DAY);
    }
    let kms = open();
    let left = kms.list_aliases(Paging::default()).unwrap();
    assert_eq!(names(&left), ["alias/y", "alias/w"]);
    assert_eq!(left.total_count, 2);
    drop(kms);
    let kms = open();
    assert_eq!(kms.list_aliases(Paging::default()).unwrap().total_count, 2);
    assert_eq!(code(kms.describe_key("alias/z")), "Forbidden.AliasNotFound");
}

#[test]
fn parameters_are_checked_in_order() {
    each_backend(|kms, _| {
        let k = key(kms);
        kms.create_alias("alias/taken", &k).unwrap();
        kms.schedule_key_deletion(&k, 7).unwrap();
        // AliasName form before KeyId form.
        assert_eq!(code(kms.create_alias("bad", "alias/x")), "InvalidParameter");
        // KeyId form before the alias's existence.
        assert_eq!(
            code(kms.create_alias("alias/taken", "alias/x")),
            "Unsupported.Alias"
        );
        // The alias before the key: taken wins over the key's state...
        assert_eq!(
            code(kms.create_alias("alias/taken", &k)),
            "AliasAlreadyExists"
        );
        // ...and over a missing key.
        let missing = "00000000-0000-4000-8000-000000000000";
        assert_eq!(
            code(kms.create_alias("alias/taken", missing)),
            "AliasAlreadyExists"
        );
        assert_eq!(
            code(kms.update_alias("alias/none", missing)),
            "Forbidden.AliasNotFound"
        );
        assert_eq!(
            code(kms.update_alias("alias/taken", missing)),
            "Forbidden.KeyNotFound"
        );
    });
}

/// Aliases moved, deleted and read while their key reaches its DeleteDate:
/// whatever the interleaving, no alias outlives its key, every move either
/// happened before the purge or found no alias, and the count matches the
/// list.
#[test]
fn aliases_of_a_key_being_deleted_never_dangle() {
    for round in 0..5 {
        let clock = ManualClock::new(T0);
        let kms = Arc::new(Kms::builder().clock(clock.clone()).build().unwrap());
        let (doomed, kept) = (key(&kms), key(&kms));
        let threads = 6;
        let per_thread = 10;
        for t in 0..threads {
            for i in 0..per_thread {
                kms.create_alias(&format!("alias/t{t}-{i}"), &doomed)
                    .unwrap();
            }
        }
        kms.schedule_key_deletion(&doomed, 7).unwrap();
        let barrier = Arc::new(Barrier::new(threads + 1));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (kms, barrier, kept) = (Arc::clone(&kms), Arc::clone(&barrier), kept.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let mut moved = Vec::new();
                    for i in 0..per_thread {
                        let name = format!("alias/t{t}-{i}");
                        let r = if i % 3 == 2 {
                            kms.delete_alias(&name)
                        } else if i % 3 == 1 {
                            kms.describe_key(&name).map(drop)
                        } else {
                            kms.update_alias(&name, &kept).map(|()| moved.push(name))
                        };
                        if let Err(e) = r {
                            assert_eq!(e.code(), "Forbidden.AliasNotFound");
                        }
                    }
                    moved
                })
            })
            .collect();
        barrier.wait();
        clock.advance(7 * DAY);
        let mut moved: Vec<String> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        moved.sort();
        let listed = all_aliases(&kms);
        assert!(listed.iter().all(|a| a.key_id == kept), "round {round}");
        let mut listed: Vec<String> = listed.into_iter().map(|a| a.alias_name).collect();
        listed.sort();
        assert_eq!(listed, moved, "round {round}");
        assert_eq!(kms.key_count().unwrap(), 1);
        assert_eq!(code(kms.describe_key(&doomed)), "Forbidden.KeyNotFound");
    }
}
