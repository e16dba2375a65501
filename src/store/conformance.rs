//! The conformance suite every [`Keystore`] must pass.
//!
//! It is public so that a third-party backend can run the same checks as the
//! built-in ones:
//!
//! ```
//! localkms::store::conformance::run_all(|| Box::new(localkms::store::MemoryKeystore::new()));
//! ```
//!
//! Each check panics with a description of what broke. `run_all` takes a
//! factory that returns a fresh, empty store for every check.

use std::sync::Arc;

use super::{Batch, Keystore, Scan};

/// Every check, in order. `fresh` returns a new, empty store each call.
pub fn run_all(fresh: impl Fn() -> Box<dyn Keystore>) {
    for (name, check) in CHECKS {
        let store = fresh();
        eprintln!("keystore conformance: {name}");
        check(store.as_ref());
    }
    concurrent_batches_are_all_kept(Arc::from(fresh()));
}

/// `visit_all` visits each record of the library's namespaces exactly once,
/// with its value, and no deleted record.
pub fn visit_all_sees_every_record(store: &dyn Keystore) {
    let mut b = Batch::new();
    b.put("key", b"k1".to_vec(), b"v1".to_vec());
    b.put("key", b"k2".to_vec(), b"v2".to_vec());
    b.put("tag", b"k1/t".to_vec(), b"".to_vec());
    b.put("meta", b"m".to_vec(), vec![0xff; 3]);
    b.put("material", b"gone".to_vec(), b"x".to_vec());
    b.delete("material", b"gone".to_vec());
    store.apply(b).expect("apply");
    let mut seen = Vec::new();
    store
        .visit_all(&mut |ns, id, v| {
            seen.push((ns.to_owned(), id.to_vec(), v.to_vec()));
            Ok(())
        })
        .expect("visit_all");
    seen.sort();
    let expect = vec![
        ("key".to_owned(), b"k1".to_vec(), b"v1".to_vec()),
        ("key".to_owned(), b"k2".to_vec(), b"v2".to_vec()),
        ("meta".to_owned(), b"m".to_vec(), vec![0xff; 3]),
        ("tag".to_owned(), b"k1/t".to_vec(), Vec::new()),
    ];
    assert_eq!(seen, expect);
}

/// One check of one store.
pub type Check = fn(&dyn Keystore);

/// Checks that work on one store, by name.
pub const CHECKS: &[(&str, Check)] = &[
    ("missing record is None", missing_record_is_none),
    ("put then get", put_then_get),
    ("later put overwrites", later_put_overwrites),
    ("delete removes, absent delete is fine", delete_removes),
    ("namespaces are separate", namespaces_are_separate),
    ("batch applies every op in order", batch_applies_in_order),
    ("scan order, prefix, cursor, skip, limit", scan_selects),
    ("empty and binary ids and values", binary_ids_and_values),
    ("flush succeeds", flush_succeeds),
    (
        "visit_all sees every record once",
        visit_all_sees_every_record,
    ),
];

fn put(store: &dyn Keystore, ns: &'static str, id: &[u8], value: &[u8]) {
    let mut b = Batch::new();
    b.put(ns, id, value);
    store.apply(b).expect("apply a put");
}

fn get(store: &dyn Keystore, ns: &str, id: &[u8]) -> Option<Vec<u8>> {
    store.get(ns, id).expect("get")
}

/// A get of an absent record returns `None`.
pub fn missing_record_is_none(store: &dyn Keystore) {
    assert_eq!(get(store, "k", b"nope"), None);
}

/// A put is visible to a get.
pub fn put_then_get(store: &dyn Keystore) {
    put(store, "k", b"id", b"value");
    assert_eq!(get(store, "k", b"id").as_deref(), Some(&b"value"[..]));
}

/// A second put to the same record replaces the first.
pub fn later_put_overwrites(store: &dyn Keystore) {
    put(store, "k", b"id", b"one");
    put(store, "k", b"id", b"two");
    assert_eq!(get(store, "k", b"id").as_deref(), Some(&b"two"[..]));
}

/// A delete removes the record; deleting an absent record is not an error.
pub fn delete_removes(store: &dyn Keystore) {
    put(store, "k", b"id", b"v");
    let mut b = Batch::new();
    b.delete("k", b"id".to_vec());
    b.delete("k", b"never-there".to_vec());
    store.apply(b).expect("apply deletes");
    assert_eq!(get(store, "k", b"id"), None);
}

/// `("a", "bc")` and `("ab", "c")` are different records, and a scan of one
/// namespace never returns another's records.
pub fn namespaces_are_separate(store: &dyn Keystore) {
    put(store, "a", b"bc", b"1");
    put(store, "ab", b"c", b"2");
    put(store, "b", b"", b"3");
    assert_eq!(get(store, "a", b"bc").as_deref(), Some(&b"1"[..]));
    assert_eq!(get(store, "ab", b"c").as_deref(), Some(&b"2"[..]));
    assert_eq!(get(store, "a", b"b"), None);
    let a = store.scan("a", Scan::prefix(b"")).expect("scan a");
    assert_eq!(a, vec![(b"bc".to_vec(), b"1".to_vec())]);
    let ab = store.scan("ab", Scan::prefix(b"")).expect("scan ab");
    assert_eq!(ab, vec![(b"c".to_vec(), b"2".to_vec())]);
}

/// Every op of a batch takes effect, later ops on the same record winning.
pub fn batch_applies_in_order(store: &dyn Keystore) {
    put(store, "k", b"gone", b"x");
    let mut b = Batch::new();
    b.put("k", b"one".to_vec(), b"1".to_vec());
    b.put("k", b"two".to_vec(), b"first".to_vec());
    b.put("k", b"two".to_vec(), b"second".to_vec());
    b.delete("k", b"gone".to_vec());
    b.put("other", b"one".to_vec(), b"o".to_vec());
    b.put("k", b"three".to_vec(), b"3".to_vec());
    b.delete("k", b"three".to_vec());
    store.apply(b).expect("apply batch");
    assert_eq!(get(store, "k", b"one").as_deref(), Some(&b"1"[..]));
    assert_eq!(get(store, "k", b"two").as_deref(), Some(&b"second"[..]));
    assert_eq!(get(store, "k", b"gone"), None);
    assert_eq!(get(store, "k", b"three"), None);
    assert_eq!(get(store, "other", b"one").as_deref(), Some(&b"o"[..]));
    store.apply(Batch::new()).expect("an empty batch is fine");
}

/// Scans return ascending ids, honour the prefix, the exclusive cursor, skip
/// and limit.
pub fn scan_selects(store: &dyn Keystore) {
    let ids: Vec<Vec<u8>> = [&b"k/3"[..], b"k/1", b"j/9", b"k/2", b"k/10", b"l/0", b"k"]
        .iter()
        .map(|s| s.to_vec())
        .collect();
    let mut b = Batch::new();
    for id in &ids {
        b.put("s", id.clone(), id.clone());
    }
    store.apply(b).expect("apply");
    let keys = |scan: Scan<'_>| -> Vec<String> {
        store
            .scan("s", scan)
            .expect("scan")
            .into_iter()
            .map(|(k, v)| {
                assert_eq!(k, v, "value belongs to its id");
                String::from_utf8(k).expect("utf8")
            })
            .collect()
    };
    assert_eq!(
        keys(Scan::prefix(b"")),
        ["j/9", "k", "k/1", "k/10", "k/2", "k/3", "l/0"]
    );
    assert_eq!(keys(Scan::prefix(b"k/")), ["k/1", "k/10", "k/2", "k/3"]);
    let after = Scan {
        after: Some(b"k/10"),
        ..Scan::prefix(b"k/")
    };
    assert_eq!(keys(after), ["k/2", "k/3"]);
    let before_prefix = Scan {
        after: Some(b"a"),
        ..Scan::prefix(b"k/")
    };
    assert_eq!(keys(before_prefix), ["k/1", "k/10", "k/2", "k/3"]);
    let past = Scan {
        after: Some(b"k/9"),
        ..Scan::prefix(b"k/")
    };
    assert!(keys(past).is_empty());
    let paged = Scan {
        skip: 1,
        limit: 2,
        ..Scan::prefix(b"k/")
    };
    assert_eq!(keys(paged), ["k/10", "k/2"]);
    let beyond = Scan {
        skip: 10,
        ..Scan::prefix(b"")
    };
    assert!(keys(beyond).is_empty());
    let none = Scan {
        limit: 0,
        ..Scan::prefix(b"")
    };
    assert!(keys(none).is_empty());
    assert!(store.scan("t", Scan::prefix(b"")).expect("scan").is_empty());
}

/// Ids and values are arbitrary bytes, including empty and 0xff.
pub fn binary_ids_and_values(store: &dyn Keystore) {
    put(store, "bin", b"", b"");
    put(store, "bin", &[0xff, 0x00, 0xff], &[0u8; 1000]);
    assert_eq!(get(store, "bin", b"").as_deref(), Some(&b""[..]));
    assert_eq!(
        get(store, "bin", &[0xff, 0x00, 0xff]),
        Some(vec![0u8; 1000])
    );
    let all = store.scan("bin", Scan::prefix(b"")).expect("scan");
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].0, b"");
}

/// Flush returns Ok, on an empty store and after changes.
pub fn flush_succeeds(store: &dyn Keystore) {
    store.flush().expect("flush empty");
    put(store, "k", b"id", b"v");
    store.flush().expect("flush after a change");
    assert_eq!(get(store, "k", b"id").as_deref(), Some(&b"v"[..]));
}

/// Batches applied from many threads at once are all kept: no lost update.
pub fn concurrent_batches_are_all_kept(store: Arc<dyn Keystore>) {
    let writers: Vec<_> = (0..4u32)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for n in 0..250u32 {
                    let mut b = Batch::new();
                    let id = [t.to_be_bytes(), n.to_be_bytes()].concat();
                    b.put("many", id.clone(), n.to_be_bytes().to_vec());
                    b.put("mirror", id, t.to_be_bytes().to_vec());
                    store.apply(b).expect("apply from a thread");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer thread");
    }
    assert_eq!(
        store.scan("many", Scan::prefix(b"")).expect("scan").len(),
        1000
    );
    assert_eq!(
        store.scan("mirror", Scan::prefix(b"")).expect("scan").len(),
        1000
    );
}
