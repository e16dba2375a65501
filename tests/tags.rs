//! Tags: TagResource, UntagResource, ListResourceTags and the tags of
//! CreateKey.

mod sled_reopen;

use std::sync::{Arc, Mutex};

use localkms::store::{Batch, Keystore, MemoryKeystore, Op, Record, Scan, StoreError};
use localkms::{
    CreateKeyRequest, Error, KeyState, Kms, MAX_TAGS_PER_KEY, ManualClock, ResourceTag, Tag,
    TagKey, parse_tag_keys, parse_tags,
};

const T0: i64 = 1_700_000_000;

fn key(kms: &Kms) -> String {
    kms.create_key(&CreateKeyRequest::default()).unwrap().key_id
}

fn with_tags(mut req: CreateKeyRequest, tags: Vec<Tag>) -> CreateKeyRequest {
    req.tags = tags;
    req
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::new(k, v).unwrap()
}

fn pairs(tags: &[ResourceTag]) -> Vec<(&str, &str)> {
    tags.iter()
        .map(|t| (t.tag_key.as_str(), t.tag_value.as_str()))
        .collect()
}

fn tags_of(kms: &Kms, k: &str) -> Vec<(String, String)> {
    kms.list_resource_tags(k)
        .unwrap()
        .into_iter()
        .map(|t| {
            assert_eq!(t.key_id, k);
            (t.tag_key, t.tag_value)
        })
        .collect()
}

fn owned(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn tag_overwrite_untag_and_list() {
    let kms = Kms::in_memory().unwrap();
    let k = key(&kms);
    assert!(kms.list_resource_tags(&k).unwrap().is_empty());
    kms.tag_resource(
        &k,
        &parse_tags(r#"[{"TagKey":"Project","TagValue":"Test"},{"TagKey":"Env"}]"#).unwrap(),
    )
    .unwrap();
    let listed = kms.list_resource_tags(&k).unwrap();
    assert_eq!(pairs(&listed), [("Env", ""), ("Project", "Test")]);
    assert!(listed.iter().all(|t| t.key_id == k));
    // An existing key's value is overwritten; the rest stay.
    kms.tag_resource(&k, &[tag("Project", "Prod"), tag("Owner", "a@b.c")])
        .unwrap();
    assert_eq!(
        tags_of(&kms, &k),
        owned(&[("Env", ""), ("Owner", "a@b.c"), ("Project", "Prod")])
    );
    // Absent keys are ignored.
    kms.untag_resource(&k, &parse_tag_keys(r#"["Env","Nope"]"#).unwrap())
        .unwrap();
    assert_eq!(
        tags_of(&kms, &k),
        owned(&[("Owner", "a@b.c"), ("Project", "Prod")])
    );
    kms.untag_resource(&k, &[TagKey::new("Nothing").unwrap()])
        .unwrap();
    assert_eq!(tags_of(&kms, &k).len(), 2);
    // Within one request, a later duplicate wins.
    kms.tag_resource(&k, &[tag("Dup", "1"), tag("Dup", "2")])
        .unwrap();
    assert_eq!(tags_of(&kms, &k)[0], ("Dup".into(), "2".into()));
    // Tags belong to their key only.
    let other = key(&kms);
    assert!(kms.list_resource_tags(&other).unwrap().is_empty());
    // A key ARN works as the key id.
    let arn = format!("acs:kms:cn-hangzhou:1234567890123456:key/{k}");
    assert_eq!(kms.list_resource_tags(&arn).unwrap().len(), 3);
}

#[test]
fn empty_lists_are_missing_parameters() {
    let kms = Kms::in_memory().unwrap();
    let k = key(&kms);
    assert_eq!(
        kms.tag_resource(&k, &[]).unwrap_err(),
        Error::MissingParameter("Tags")
    );
    assert_eq!(
        kms.untag_resource(&k, &[]).unwrap_err(),
        Error::MissingParameter("TagKeys")
    );
    for e in [
        kms.tag_resource("", &[tag("a", "b")]).unwrap_err(),
        kms.untag_resource("", &[TagKey::new("a").unwrap()])
            .unwrap_err(),
        kms.list_resource_tags("").unwrap_err(),
    ] {
        assert_eq!(e, Error::MissingParameter("KeyId"));
    }
}

#[test]
fn at_most_ten_tags_after_the_merge() {
    assert_eq!(MAX_TAGS_PER_KEY, 10);
    let kms = Kms::in_memory().unwrap();
    let k = key(&kms);
    let nine: Vec<Tag> = (0..9).map(|i| tag(&format!("k{i}"), "v")).collect();
    kms.tag_resource(&k, &nine).unwrap();
    // 9 + one overwrite + one new = 10: fine.
    kms.tag_resource(&k, &[tag("k0", "new"), tag("k9", "v")])
        .unwrap();
    assert_eq!(tags_of(&kms, &k).len(), 10);
    // Overwrites only: still 10.
    kms.tag_resource(&k, &[tag("k1", "x"), tag("k2", "y")])
        .unwrap();
    // One more: refused, and nothing of the request is written.
    let e = kms
        .tag_resource(&k, &[tag("k3", "changed"), tag("k10", "v")])
        .unwrap_err();
    assert_eq!(e.code(), "Rejected.LimitExceeded");
    assert_eq!(e.http_status(), 400);
    assert!(e.to_string().contains("Tags"), "{e}");
    let now = tags_of(&kms, &k);
    assert_eq!(now.len(), 10);
    assert!(now.contains(&("k3".into(), "v".into())));
    assert!(now.contains(&("k0".into(), "new".into())));
    // Free one, then the new one fits.
    kms.untag_resource(&k, &[TagKey::new("k5").unwrap()])
        .unwrap();
    kms.tag_resource(&k, &[tag("k10", "v")]).unwrap();
    // Eleven at once on a fresh key: refused.
    let fresh = key(&kms);
    let eleven: Vec<Tag> = (0..11).map(|i| tag(&format!("k{i}"), "v")).collect();
    assert_eq!(
        kms.tag_resource(&fresh, &eleven).unwrap_err().code(),
        "Rejected.LimitExceeded"
    );
    assert!(kms.list_resource_tags(&fresh).unwrap().is_empty());
}

#[test]
fn tags_work_in_every_key_state() {
    let clock = ManualClock::new(T0);
    let kms = Kms::builder().clock(clock.clone()).build().unwrap();
    let disabled = key(&kms);
    kms.disable_key(&disabled).unwrap();
    let pending = key(&kms);
    kms.schedule_key_deletion(&pending, 7).unwrap();
    let import = kms
        .create_key(&CreateKeyRequest::external())
        .unwrap()
        .key_id;
    for (k, state) in [
        (key(&kms), KeyState::Enabled),
        (disabled, KeyState::Disabled),
        (pending, KeyState::PendingDeletion),
        (import, KeyState::PendingImport),
    ] {
        kms.tag_resource(&k, &[tag("a", "1"), tag("b", "2")])
            .unwrap();
        kms.untag_resource(&k, &[TagKey::new("a").unwrap()])
            .unwrap();
        assert_eq!(tags_of(&kms, &k), owned(&[("b", "2")]), "{state}");
        assert_eq!(kms.describe_key(&k).unwrap().key_state, state);
    }
}

#[test]
fn unknown_keys_and_aliases() {
    let clock = ManualClock::new(T0);
    let kms = Kms::builder().clock(clock.clone()).build().unwrap();
    let missing = "00000000-0000-4000-8000-000000000000";
    for k in [missing, "not-a-key"] {
        assert_eq!(
            kms.tag_resource(k, &[tag("a", "")]).unwrap_err().code(),
            "Forbidden.KeyNotFound"
        );
        assert_eq!(
            kms.untag_resource(k, &[TagKey::new("a").unwrap()])
                .unwrap_err()
                .code(),
            "Forbidden.KeyNotFound"
        );
        assert_eq!(
            kms.list_resource_tags(k).unwrap_err().code(),
            "Forbidden.KeyNotFound"
        );
    }
    // Tags go with their key at its DeleteDate.
    let k = key(&kms);
    kms.tag_resource(&k, &[tag("a", "1")]).unwrap();
    kms.schedule_key_deletion(&k, 7).unwrap();
    clock.advance(7 * 86_400);
    assert_eq!(
        kms.tag_resource(&k, &[tag("b", "2")]).unwrap_err().code(),
        "Forbidden.KeyNotFound"
    );
    assert_eq!(
        kms.list_resource_tags(&k).unwrap_err().code(),
        "Forbidden.KeyNotFound"
    );
}

#[test]
fn create_key_with_tags() {
    let kms = Kms::in_memory().unwrap();
    let req = with_tags(
        CreateKeyRequest::default(),
        parse_tags(r#"[{"TagKey":"Project","TagValue":"Test"},{"TagKey":"Empty"}]"#).unwrap(),
    );
    let k = kms.create_key(&req).unwrap().key_id;
    assert_eq!(
        tags_of(&kms, &k),
        owned(&[("Empty", ""), ("Project", "Test")])
    );
    // More than ten distinct keys: no key is created.
    let too_many = with_tags(
        CreateKeyRequest::default(),
        (0..11).map(|i| tag(&format!("k{i}"), "")).collect(),
    );
    assert_eq!(
        kms.create_key(&too_many).unwrap_err().code(),
        "Rejected.LimitExceeded"
    );
    assert_eq!(kms.key_count().unwrap(), 1);
    // Duplicates merge before counting, the later value winning.
    let dups = with_tags(
        CreateKeyRequest::external(),
        (0..20)
            .map(|i| tag(&format!("k{}", i % 10), &i.to_string()))
            .collect(),
    );
    let k = kms.create_key(&dups).unwrap().key_id;
    let t = tags_of(&kms, &k);
    assert_eq!(t.len(), 10);
    assert_eq!(t[0], ("k0".into(), "10".into()));
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

#[test]
fn create_key_writes_its_tags_in_the_key_s_batch() {
    let store = Recording::default();
    let batches = Arc::clone(&store.batches);
    let kms = Kms::builder()
        .keystore(store)
        .root_key_bytes(&[1; 32])
        .build()
        .unwrap();
    let before = batches.lock().unwrap().len();
    let req = with_tags(
        CreateKeyRequest::default(),
        vec![tag("a", "1"), tag("b", "2")],
    );
    let k = kms.create_key(&req).unwrap().key_id;
    let recorded = batches.lock().unwrap();
    assert_eq!(recorded.len(), before + 1);
    let puts: Vec<(&str, Vec<u8>)> = recorded[before]
        .ops()
        .iter()
        .filter_map(|op| match op {
            Op::Put { ns, id, .. } => Some((*ns, id.clone())),
            Op::Delete { .. } => None,
        })
        .collect();
    assert!(puts.contains(&("key", k.as_bytes().to_vec())));
    assert!(puts.contains(&("tag", format!("{k}/a").into_bytes())));
    assert!(puts.contains(&("tag", format!("{k}/b").into_bytes())));
}

#[test]
fn tags_survive_reopen_and_limit_counts_stored_tags() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        sled_reopen::build_retrying(|| {
            Kms::builder()
                .sled(dir.path())
                .root_key_bytes(&[3; 32])
                .build()
        })
    };
    let k;
    {
        let kms = open();
        k = kms
            .create_key(&with_tags(
                CreateKeyRequest::default(),
                (0..10).map(|i| tag(&format!("k{i}"), "v")).collect(),
            ))
            .unwrap()
            .key_id;
    }
    let kms = open();
    assert_eq!(tags_of(&kms, &k).len(), 10);
    assert_eq!(
        kms.tag_resource(&k, &[tag("k10", "")]).unwrap_err().code(),
        "Rejected.LimitExceeded"
    );
}
