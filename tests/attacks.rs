//! The attack suite of SPEC section 9, on every backend: someone who can read
//! and write the store's records, but has no root key, edits, swaps, copies,
//! replays, deletes and inserts records behind the library's back.
//!
//! - A forged, swapped or cross-copied record is refused at use and named by
//!   `verify`.
//! - A replayed, deleted or inserted record makes `verify` report a digest
//!   mismatch.
//! - `verify` never passes a store that was changed.
//!
//! And sled's log damaged after acknowledged writes: open refuses, or every
//! acknowledged write is there. Never silent loss.

mod support;

#[cfg(feature = "postgres")]
#[path = "support/pg.rs"]
mod pg;

use std::path::Path;
use std::sync::Arc;

use localkms::store::{
    Batch, Keystore, MemoryKeystore, Record, Scan, SledKeystore, StoreError, Visitor,
};
use localkms::{
    CreateKeyRequest, EncryptionContext, Error, Kms, ManualClock, Tag, WrappingAlgorithm,
};

const ROOT: [u8; 32] = [0x42; 32];
const T0: i64 = 1_767_225_600;

/// A keystore the test also holds, to write behind the library's back.
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
    fn apply_if(
        &self,
        expect: &[localkms::store::Expect<'_>],
        batch: Batch,
    ) -> Result<Result<(), localkms::store::Conflict>, StoreError> {
        self.0.apply_if(expect, batch)
    }
    fn visit_all(&self, visit: &mut Visitor<'_>) -> Result<(), StoreError> {
        self.0.visit_all(visit)
    }
    fn is_shared(&self) -> bool {
        self.0.is_shared()
    }
}

impl Tap {
    fn raw(&self, ns: &str, id: &str) -> Vec<u8> {
        self.0
            .get(ns, id.as_bytes())
            .expect("get")
            .unwrap_or_else(|| panic!("{ns}/{id} exists"))
    }
    fn put(&self, ns: &'static str, id: &str, value: Vec<u8>) {
        let mut b = Batch::new();
        b.put(ns, id.as_bytes().to_vec(), value);
        self.0.apply(b).expect("apply");
    }
    fn delete(&self, ns: &'static str, id: &str) {
        let mut b = Batch::new();
        b.delete(ns, id.as_bytes().to_vec());
        self.0.apply(b).expect("apply");
    }
    fn only(&self, ns: &str, prefix: &str) -> (String, Vec<u8>) {
        let found = self
            .0
            .scan(ns, Scan::prefix(prefix.as_bytes()))
            .expect("scan");
        assert_eq!(found.len(), 1, "{ns} {prefix}");
        let (id, v) = found.into_iter().next().expect("one");
        (String::from_utf8(id).expect("text id"), v)
    }
}

/// The backends, each with the directory that keeps it alive.
fn backends() -> Vec<(&'static str, Tap, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let sled = SledKeystore::open(dir.path().join("db")).expect("sled");
    #[allow(unused_mut)]
    let mut all = vec![
        ("memory", Tap(Arc::new(MemoryKeystore::new())), None),
        ("sled", Tap(Arc::new(sled)), Some(dir)),
    ];
    #[cfg(feature = "postgres")]
    if let Some(store) = postgres() {
        all.push(("postgres", Tap(store), None));
    }
    all
}

/// A fresh schema on one throwaway PostgreSQL server for the whole file
/// (`None`, with a loud SKIPPED, when the server binaries are missing).
#[cfg(feature = "postgres")]
fn postgres() -> Option<Arc<dyn Keystore>> {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static SERVER: OnceLock<Option<pg::PgServer>> = OnceLock::new();
    static N: AtomicUsize = AtomicUsize::new(0);
    let server = SERVER.get_or_init(pg::PgServer::start).as_ref()?;
    let schema = format!("attacks_{}", N.fetch_add(1, Ordering::Relaxed));
    let store =
        localkms::store::PostgresKeystore::connect(&server.url(), &schema).expect("connect");
    Some(Arc::new(store))
}

fn open(tap: &Tap) -> Result<Kms, Error> {
    Kms::builder()
        .keystore(tap.clone())
        .root_key_bytes(&ROOT)
        .clock(ManualClock::new(T0))
        .build()
}

fn ctx() -> EncryptionContext {
    EncryptionContext::empty()
}

/// Two keys with a blob each, an alias and a tag on the first, and an
/// EXTERNAL key with imported material.
struct Scene {
    a: String,
    b: String,
    ext: String,
    blob_a: localkms::CiphertextBlob,
    blob_b: localkms::CiphertextBlob,
    blob_ext: localkms::CiphertextBlob,
}

fn scene(kms: &Kms) -> Scene {
    let a = kms
        .create_key(&CreateKeyRequest {
            tags: vec![Tag::new("env", "prod").expect("tag")],
            ..Default::default()
        })
        .expect("a")
        .key_id;
    let b = kms.create_key(&Default::default()).expect("b").key_id;
    kms.create_alias("alias/a", &a).expect("alias");
    let ext = support::external(kms);
    support::import(
        kms,
        &ext,
        WrappingAlgorithm::RsaesOaepSha256,
        &[7; 32],
        None,
    )
    .expect("import");
    let enc = |k: &str| {
        kms.encrypt(k, b"secret", &ctx())
            .expect("enc")
            .ciphertext_blob
    };
    Scene {
        blob_a: enc(&a),
        blob_b: enc(&b),
        blob_ext: enc(&ext),
        a,
        b,
        ext,
    }
}

/// A fresh service on the tampered store (no cache from before).
fn reopen(tap: &Tap) -> Kms {
    open(tap).expect("reopen")
}

fn assert_refused(what: &str, r: Result<impl Sized, Error>) {
    match r {
        Ok(_) => panic!("{what}: accepted"),
        Err(e) => {
            assert_eq!(e.code(), "InternalFailure", "{what}: {e:?}");
            assert!(e.to_string().contains("does not open"), "{what}: {e}");
        }
    }
}

/// `verify` names `names` as unreadable (and fails).
fn assert_named(what: &str, kms: &Kms, names: &[String]) {
    let r = kms.verify().expect("verify");
    assert!(!r.is_ok(), "{what}: verify passed: {r}");
    for n in names {
        assert!(r.unreadable.contains(n), "{what}: {n} not named in {r}");
    }
}

/// `verify` reports a digest mismatch (and fails).
fn assert_mismatch(what: &str, kms: &Kms) {
    let r = kms.verify().expect("verify");
    assert!(!r.is_ok(), "{what}: verify passed: {r}");
    assert!(!r.digest_matches, "{what}: digest matches: {r}");
    assert!(r.to_string().contains("digest"), "{what}: {r}");
}

#[test]
fn an_untouched_store_verifies() {
    for (name, tap, _dir) in backends() {
        let kms = open(&tap).expect("open");
        scene(&kms);
        let r = kms.verify().expect("verify");
        assert!(r.is_ok(), "{name}: {r}");
        drop(kms);
        assert!(reopen(&tap).verify().expect("verify").is_ok(), "{name}");
    }
}

#[test]
fn an_edited_record_is_refused_and_named() {
    for (name, tap, _dir) in backends() {
        let s = scene(&open(&tap).expect("open"));
        for (ns, id) in [("key", s.a.clone()), ("tag", format!("{}/env", s.a))] {
            let mut v = tap.raw(ns, &id);
            let last = v.len() - 1;
            v[last] ^= 1;
            tap.put(if ns == "key" { "key" } else { "tag" }, &id, v);
        }
        let kms = reopen(&tap);
        assert_refused(name, kms.describe_key(&s.a));
        assert_refused(name, kms.decrypt(&s.blob_a, &ctx()));
        assert_refused(name, kms.list_resource_tags(&s.a));
        assert_named(
            name,
            &kms,
            &[format!("key/{}", s.a), format!("tag/{}/env", s.a)],
        );
        // The other keys still work.
        kms.decrypt(&s.blob_b, &ctx()).expect("b untouched");
    }
}

#[test]
fn swapped_records_are_refused_and_named() {
    for (name, tap, _dir) in backends() {
        let s = scene(&open(&tap).expect("open"));
        let (va, vb) = (tap.raw("key", &s.a), tap.raw("key", &s.b));
        tap.put("key", &s.a, vb);
        tap.put("key", &s.b, va);
        let (ma_id, ma) = tap.only("material", &format!("{}/", s.a));
        let (mb_id, mb) = tap.only("material", &format!("{}/", s.b));
        tap.put("material", &ma_id, mb);
        tap.put("material", &mb_id, ma);
        let kms = reopen(&tap);
        assert_refused(name, kms.decrypt(&s.blob_a, &ctx()));
        assert_refused(name, kms.decrypt(&s.blob_b, &ctx()));
        assert_named(
            name,
            &kms,
            &[
                format!("key/{}", s.a),
                format!("key/{}", s.b),
                format!("material/{ma_id}"),
                format!("material/{mb_id}"),
            ],
        );
    }
}

#[test]
fn a_record_copied_across_namespaces_is_refused_and_named() {
    for (name, tap, _dir) in backends() {
        let s = scene(&open(&tap).expect("open"));
        // The alias record's value into the key record (both name key a).
        let alias = tap.raw("alias", "alias/a");
        tap.put("key", &s.a, alias);
        // A key record into a tag.
        let key_b = tap.raw("key", &s.b);
        tap.put("tag", &format!("{}/env", s.a), key_b);
        let kms = reopen(&tap);
        assert_refused(name, kms.describe_key(&s.a));
        assert_refused(name, kms.list_resource_tags(&s.a));
        assert_named(
            name,
            &kms,
            &[format!("key/{}", s.a), format!("tag/{}/env", s.a)],
        );
    }
}

#[test]
fn a_record_copied_from_another_store_is_refused_and_named() {
    // Two stores under the same root key: only the store id tells them apart.
    for ((name, tap, _d1), (_, other, _d2)) in backends().into_iter().zip(backends()) {
        let s = scene(&open(&tap).expect("open"));
        let o = scene(&open(&other).expect("other"));
        // The other store's key record and material, under this store's ids.
        tap.put("key", &s.a, other.raw("key", &o.a));
        let (m_id, _) = tap.only("material", &format!("{}/", s.b));
        let (_, om) = other.only("material", &format!("{}/", o.b));
        tap.put("material", &m_id, om);
        // And a whole record of the other store, under its own id.
        tap.put("key", &o.b, other.raw("key", &o.b));
        let kms = reopen(&tap);
        assert_refused(name, kms.describe_key(&s.a));
        assert_refused(name, kms.decrypt(&s.blob_b, &ctx()));
        assert_refused(name, kms.describe_key(&o.b));
        assert_named(
            name,
            &kms,
            &[
                format!("key/{}", s.a),
                format!("material/{m_id}"),
                format!("key/{}", o.b),
            ],
        );
    }
}

#[test]
fn a_replayed_key_record_is_a_digest_mismatch() {
    for (name, tap, _dir) in backends() {
        let kms = open(&tap).expect("open");
        let s = scene(&kms);
        let before = tap.raw("key", &s.a);
        kms.disable_key(&s.a).expect("disable");
        drop(kms);
        tap.put("key", &s.a, before);
        let kms = reopen(&tap);
        // Not refused at use (SPEC 9): the old copy opens. verify says so.
        assert_mismatch(name, &kms);
        let r = kms.verify().expect("verify");
        assert!(r.unreadable.is_empty(), "{name}: {r}");
    }
}

#[test]
fn replayed_material_is_a_digest_mismatch_and_refused_after_a_reimport() {
    for (name, tap, _dir) in backends() {
        let kms = open(&tap).expect("open");
        let s = scene(&kms);
        let (m_id, before) = tap.only("material", &format!("{}/", s.ext));
        kms.delete_key_material(&s.ext).expect("delete material");
        // Put back while deleted: the key stays PendingImport; verify sees it.
        tap.put("material", &m_id, before.clone());
        drop(kms);
        let kms = reopen(&tap);
        assert_mismatch(name, &kms);
        assert_eq!(
            kms.decrypt(&s.blob_ext, &ctx()).unwrap_err().code(),
            "Rejected.PendingImport",
            "{name}"
        );
        drop(kms);
        tap.delete("material", &m_id);
        // Re-import (a new generation), then put the old copy back over it.
        let kms = reopen(&tap);
        support::import(
            &kms,
            &s.ext,
            WrappingAlgorithm::RsaesOaepSha256,
            &[7; 32],
            None,
        )
        .expect("re-import");
        drop(kms);
        tap.put("material", &m_id, before);
        let kms = reopen(&tap);
        let err = kms.decrypt(&s.blob_ext, &ctx()).unwrap_err();
        assert_eq!(err.code(), "InternalFailure", "{name}: {err:?}");
        assert!(err.to_string().contains("old copy"), "{name}: {err}");
        assert_mismatch(name, &kms);
        let r = kms.verify().expect("verify");
        assert!(
            r.problems.iter().any(|p| p.contains("old copy")),
            "{name}: {r}"
        );
    }
}

#[test]
fn a_deleted_record_is_a_digest_mismatch() {
    for (name, tap, _dir) in backends() {
        let s = scene(&open(&tap).expect("open"));
        tap.delete("tag", &format!("{}/env", s.a));
        let kms = reopen(&tap);
        assert_mismatch(name, &kms);
        // A deleted material record is named as a problem too.
        tap.delete("material", &tap.only("material", &format!("{}/", s.b)).0);
        let r = kms.verify().expect("verify");
        assert!(
            r.problems.iter().any(|p| p.contains("missing")),
            "{name}: {r}"
        );
    }
}

#[test]
fn an_inserted_record_is_a_digest_mismatch() {
    for (name, tap, _dir) in backends() {
        let kms = open(&tap).expect("open");
        let s = scene(&kms);
        // A validly sealed record the library deleted, put back.
        let alias = tap.raw("alias", "alias/a");
        kms.delete_alias("alias/a").expect("delete alias");
        drop(kms);
        tap.put("alias", "alias/a", alias);
        let kms = reopen(&tap);
        assert_mismatch(name, &kms);
        let _ = s;
        // Garbage under a new id is named as well.
        tap.put("tag", "not-a-record", vec![2; 60]);
        assert_named(name, &kms, &["tag/not-a-record".to_owned()]);
    }
}

#[test]
fn review_finding_editing_the_state_in_a_clear_key_record_no_longer_works() {
    for (name, tap, _dir) in backends() {
        let kms = open(&tap).expect("open");
        let s = scene(&kms);
        kms.disable_key(&s.a).expect("disable");
        drop(kms);
        let raw = tap.raw("key", &s.a);
        // The state is no longer there to edit...
        let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        assert!(!find(&raw, b"Disabled"), "{name}: state in clear");
        assert!(!find(&raw, b"state"), "{name}: field names in clear");
        // ...and any edit of the sealed bytes is refused.
        for at in [1, 30, raw.len() / 2, raw.len() - 1] {
            let mut v = raw.clone();
            v[at] ^= 0x20;
            tap.put("key", &s.a, v);
            let kms = reopen(&tap);
            assert_refused(name, kms.decrypt(&s.blob_a, &ctx()));
            assert_named(name, &kms, &[format!("key/{}", s.a)]);
        }
    }
}

#[test]
fn review_finding_changing_the_origin_to_allow_material_substitution_no_longer_works() {
    for (name, tap, _dir) in backends() {
        let kms = open(&tap).expect("open");
        let s = scene(&kms);
        drop(kms);
        let raw = tap.raw("key", &s.a);
        let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        assert!(!find(&raw, b"Aliyun_KMS"), "{name}: origin in clear");
        // Put the EXTERNAL key's record (which says EXTERNAL) in its place:
        // refused, so ImportKeyMaterial cannot replace a's material.
        tap.put("key", &s.a, tap.raw("key", &s.ext));
        let kms = reopen(&tap);
        let p = kms.get_parameters_for_import(
            &s.a,
            WrappingAlgorithm::RsaesOaepSha256,
            localkms::WrappingKeySpec::Rsa2048,
        );
        assert_refused(name, p);
        assert_refused(name, kms.encrypt(&s.a, b"x", &ctx()));
        assert_named(name, &kms, &[format!("key/{}", s.a)]);
    }
}

// ---- sled's log damaged after acknowledged writes ----------------------------

fn sled_open(dir: &Path) -> Result<Kms, Error> {
    Kms::builder()
        .sled(dir)
        .root_key_bytes(&ROOT)
        .clock(ManualClock::new(T0))
        .build()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).expect("copy");
        }
    }
}

/// Opens the damaged copy: refused with StoreRolledBack or CorruptStore, or
/// opened with every acknowledged key and blob intact.
fn never_silent_loss(
    label: &str,
    dir: &Path,
    acked: &[(String, localkms::CiphertextBlob)],
) -> &'static str {
    let outcome = std::panic::catch_unwind(|| match sled_open(dir) {
        Err(e) => {
            assert!(
                matches!(e, Error::StoreRolledBack(_) | Error::CorruptStore(_)),
                "{label}: refused with {e:?}"
            );
            if matches!(e, Error::StoreRolledBack(_)) {
                "rolled back"
            } else {
                "corrupt"
            }
        }
        Ok(kms) => {
            for (key, blob) in acked {
                let d = kms.decrypt(blob, &ctx());
                assert!(d.is_ok(), "{label}: acknowledged key {key} lost: {d:?}");
            }
            assert_eq!(
                kms.key_count().expect("count"),
                acked.len() as u64,
                "{label}"
            );
            "intact"
        }
    });
    outcome.unwrap_or_else(|_| panic!("{label}: a damaged store caused a panic"))
}

#[test]
fn damaged_sled_log_is_refused_or_intact_never_silent_loss() {
    let base = tempfile::tempdir().expect("tempdir");
    let acked: Vec<(String, localkms::CiphertextBlob)> = {
        let kms = sled_open(base.path()).expect("open");
        (0..12)
            .map(|i| {
                let k = kms.create_key(&Default::default()).expect("create").key_id;
                let blob = kms
                    .encrypt(&k, format!("{i}").as_bytes(), &ctx())
                    .expect("enc")
                    .ciphertext_blob;
                (k, blob)
            })
            .collect()
    };
    let db = |d: &Path| d.join("db").join("db");
    let len = std::fs::metadata(db(base.path())).expect("db").len();
    let mut outcomes = std::collections::BTreeMap::new();
    let mut record = |o: &'static str| *outcomes.entry(o).or_insert(0) += 1;
    for i in 1..40u64 {
        let cut = len * i / 40;
        let dir = tempfile::tempdir().expect("copy");
        copy_dir(base.path(), dir.path());
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(db(dir.path()))
            .expect("open db");
        f.set_len(cut).expect("truncate");
        drop(f);
        record(never_silent_loss(
            &format!("truncated to {cut}"),
            dir.path(),
            &acked,
        ));
    }
    for i in 1..40u64 {
        let at = (len * i / 40) as usize;
        let dir = tempfile::tempdir().expect("copy");
        copy_dir(base.path(), dir.path());
        let path = db(dir.path());
        let mut bytes = std::fs::read(&path).expect("read");
        for b in bytes.iter_mut().skip(at).take(16) {
            *b ^= 0xff;
        }
        std::fs::write(&path, &bytes).expect("write");
        record(never_silent_loss(
            &format!("bytes {at}.. flipped"),
            dir.path(),
            &acked,
        ));
    }
    eprintln!("outcomes: {outcomes:?}");
}

#[test]
fn an_old_copy_of_the_store_is_refused_unless_the_loss_is_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old = tempfile::tempdir().expect("old copy");
    let witness_dir = tempfile::tempdir().expect("witness elsewhere");
    let witness = witness_dir.path().join("w");
    let open = |d: &Path, recover: bool| {
        Kms::builder()
            .sled(d)
            .root_key_bytes(&ROOT)
            .witness_path(&witness)
            .recover_rolled_back(recover)
            .build()
    };
    let first = {
        let kms = open(dir.path(), false).expect("open");
        let k = kms.create_key(&Default::default()).expect("k").key_id;
        copy_dir(dir.path(), old.path());
        kms.create_key(&Default::default()).expect("later");
        k
    };
    // The old copy put back: refused.
    let err = open(old.path(), false).unwrap_err();
    assert!(matches!(err, Error::StoreRolledBack(_)), "{err:?}");
    assert!(err.to_string().contains("recover_rolled_back"), "{err}");
    // Accepted by the operator: it opens, and verify reports the loss.
    let kms = open(old.path(), true).expect("recover");
    kms.describe_key(&first).expect("the first key is there");
    let r = kms.verify().expect("verify");
    assert!(!r.is_ok());
    let lost = r.rolled_back.expect("rolled back");
    assert_eq!(lost.witness_seq, Some(lost.head_seq + 1), "{r}");
    assert!(r.to_string().contains("were lost"), "{r}");
    drop(kms);
    // The witness now follows the recovered store: a plain open works.
    let kms = open(old.path(), false).expect("open after recovery");
    assert!(kms.verify().expect("verify").is_ok());
}

#[test]
fn a_missing_witness_is_refused_once_the_store_has_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(sled_open(dir.path()).expect("create"));
    let w = dir.path().join(localkms::WITNESS_FILE);
    // Right after creation there is nothing to lose.
    std::fs::remove_file(&w).expect("remove");
    let kms = sled_open(dir.path()).expect("reopen");
    kms.create_key(&Default::default()).expect("k");
    drop(kms);
    std::fs::remove_file(&w).expect("remove");
    let err = sled_open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::StoreRolledBack(_)), "{err:?}");
    // A damaged witness is a clear error too.
    drop(
        Kms::builder()
            .sled(dir.path())
            .root_key_bytes(&ROOT)
            .recover_rolled_back(true)
            .build()
            .expect("recover"),
    );
    std::fs::write(&w, [0u8; 128]).expect("damage");
    let err = sled_open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::CorruptStore(_)), "{err:?}");
    assert!(err.to_string().contains("witness"), "{err}");
}

#[test]
fn verify_on_open_refuses_a_tampered_store() {
    for (name, tap, _dir) in backends() {
        let s = scene(&open(&tap).expect("open"));
        let verified = |tap: &Tap| {
            Kms::builder()
                .keystore(tap.clone())
                .root_key_bytes(&ROOT)
                .verify_on_open(true)
                .build()
        };
        verified(&tap).expect("an untouched store opens");
        tap.delete("tag", &format!("{}/env", s.a));
        let err = verified(&tap).unwrap_err();
        assert!(matches!(err, Error::CorruptStore(_)), "{name}: {err:?}");
        assert!(err.to_string().contains("digest"), "{name}: {err}");
    }
}
