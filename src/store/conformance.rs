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
//! factory that returns a fresh, empty store for every check. A backend that
//! several holders (processes) can open at once also runs [`run_shared`].
//!
//! The suite requires [`Keystore::apply_if`]: a backend that keeps the
//! provided method (which answers `Unsupported`) fails it.

use std::sync::Arc;

use super::{Batch, Conflict, Expect, Keystore, Scan};

/// Every check, in order. `fresh` returns a new, empty store each call.
pub fn run_all(fresh: impl Fn() -> Box<dyn Keystore>) {
    for (name, check) in CHECKS {
        let store = fresh();
        eprintln!("keystore conformance: {name}");
        check(store.as_ref());
    }
    concurrent_batches_are_all_kept(Arc::from(fresh()));
    eprintln!("keystore conformance: concurrent compare-and-swap increments");
    let store: Arc<dyn Keystore> = Arc::from(fresh());
    concurrent_increments_are_exact(&[store], 4, 50);
}

/// The checks for a backend that several holders can open at once (SPEC 10:
/// several processes, one store). `open` returns a NEW holder of one and the
/// same store on each call (a new connection pool on the same schema, say),
/// not a clone of a handle; the store is empty before the first call.
pub fn run_shared(open: impl Fn() -> Box<dyn Keystore>) {
    let a: Arc<dyn Keystore> = Arc::from(open());
    let b: Arc<dyn Keystore> = Arc::from(open());
    eprintln!("keystore conformance (shared): a write through one holder is read through another");
    put(a.as_ref(), "shared", b"x", b"1");
    assert_eq!(get(b.as_ref(), "shared", b"x").as_deref(), Some(&b"1"[..]));
    let stale = b
        .apply_if(&[Expect::absent("shared", b"x")], Batch::new())
        .expect("apply_if");
    assert_eq!(
        stale,
        Err(Conflict),
        "another holder's write is seen by apply_if"
    );
    eprintln!("keystore conformance (shared): compare-and-swap increments across holders");
    concurrent_increments_are_exact(&[a, b], 2, 40);
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
        "apply_if compares, then applies all or nothing",
        compare_and_swap,
    ),
    (
        "visit_all sees every record once",
        visit_all_sees_every_record,
    ),
    ("get_many reads each named record", get_many_reads_each),
    ("a large batch applies whole", large_batch_applies_whole),
];

/// `get_many` answers, in order, what `get` answers for each name, repeated
/// names included.
pub fn get_many_reads_each(store: &dyn Keystore) {
    put(store, "k", b"a", b"1");
    put(store, "j", b"a", b"2");
    put(store, "k", b"", b"empty id");
    let names: [(&str, &[u8]); 6] = [
        ("k", b"a"),
        ("k", b"missing"),
        ("j", b"a"),
        ("k", b"a"),
        ("k", b""),
        ("nowhere", b"a"),
    ];
    let got = store.get_many(&names).expect("get_many");
    let want: Vec<Option<Vec<u8>>> = names.iter().map(|(ns, id)| get(store, ns, id)).collect();
    assert_eq!(got, want);
    assert_eq!(got[0].as_deref(), Some(&b"1"[..]));
    assert_eq!(got[1], None);
    assert!(store.get_many(&[]).expect("no names").is_empty());
}

/// A batch of thousands of records (more than a backend may send in one
/// statement), mixing puts, overwrites and deletes of one record, applies
/// whole; so does an `apply_if` of one.
pub fn large_batch_applies_whole(store: &dyn Keystore) {
    let n = 2500u32;
    let mut b = Batch::new();
    for i in 0..n {
        b.put("big", i.to_be_bytes().to_vec(), vec![1; 40]);
    }
    // Deleted, then put again: the put wins; put, then deleted: gone.
    b.delete("big", 7u32.to_be_bytes().to_vec());
    b.put("big", 7u32.to_be_bytes().to_vec(), b"again".to_vec());
    b.delete("big", 8u32.to_be_bytes().to_vec());
    store.apply(b).expect("apply a large batch");
    let all = store
        .scan(
            "big",
            Scan {
                limit: usize::MAX,
                ..Scan::prefix(b"")
            },
        )
        .expect("scan");
    assert_eq!(all.len(), n as usize - 1);
    assert_eq!(
        get(store, "big", &7u32.to_be_bytes()).as_deref(),
        Some(&b"again"[..])
    );
    assert_eq!(get(store, "big", &8u32.to_be_bytes()), None);

    let mut b = Batch::new();
    for i in 0..n {
        b.delete("big", i.to_be_bytes().to_vec());
    }
    let expect = [Expect::value("big", &[0, 0, 0, 7], b"again")];
    assert_eq!(apply_if(store, &expect, b), Ok(()));
    assert!(
        store
            .scan("big", Scan::prefix(b""))
            .expect("scan")
            .is_empty()
    );
}

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

fn apply_if(store: &dyn Keystore, expect: &[Expect<'_>], batch: Batch) -> Result<(), Conflict> {
    store.apply_if(expect, batch).expect("apply_if")
}

/// `apply_if` applies its batch only when every expectation holds, and then
/// all of it; a failed expectation applies nothing.
pub fn compare_and_swap(store: &dyn Keystore) {
    let mut b = Batch::new();
    b.put("c", b"x".to_vec(), b"1".to_vec());
    b.put("c", b"log1".to_vec(), b"".to_vec());
    assert_eq!(
        apply_if(store, &[Expect::absent("c", b"x")], b.clone()),
        Ok(())
    );
    assert_eq!(get(store, "c", b"x").as_deref(), Some(&b"1"[..]));
    assert_eq!(
        apply_if(store, &[Expect::absent("c", b"x")], b),
        Err(Conflict),
        "absent expected, present found"
    );

    let mut b = Batch::new();
    b.put("c", b"x".to_vec(), b"2".to_vec());
    b.put("c", b"side".to_vec(), b"s".to_vec());
    assert_eq!(
        apply_if(store, &[Expect::value("c", b"x", b"0")], b.clone()),
        Err(Conflict),
        "wrong value expected"
    );
    assert_eq!(
        apply_if(store, &[Expect::value("c", b"y", b"1")], b.clone()),
        Err(Conflict),
        "a value expected, absent found"
    );
    assert_eq!(
        apply_if(store, &[Expect::value("c", b"x", b"")], b.clone()),
        Err(Conflict),
        "empty is not the value"
    );
    // Namespaces stay apart in expectations too: ("c", "x") is not ("cx", "").
    assert_eq!(
        apply_if(store, &[Expect::value("cx", b"", b"1")], b.clone()),
        Err(Conflict)
    );
    // One false expectation among true ones: nothing applies.
    let mixed = [
        Expect::value("c", b"x", b"1"),
        Expect::absent("c", b"side"),
        Expect::absent("c", b"log1"),
    ];
    assert_eq!(apply_if(store, &mixed, b.clone()), Err(Conflict));
    assert_eq!(get(store, "c", b"x").as_deref(), Some(&b"1"[..]));
    assert_eq!(get(store, "c", b"side"), None, "a conflict applies nothing");

    let read = get(store, "c", b"x");
    let holds = [
        Expect::read("c", b"x", read.as_deref()),
        Expect::absent("c", b"side"),
        Expect::value("c", b"log1", b""),
    ];
    assert_eq!(apply_if(store, &holds, b), Ok(()));
    assert_eq!(get(store, "c", b"x").as_deref(), Some(&b"2"[..]));
    assert_eq!(get(store, "c", b"side").as_deref(), Some(&b"s"[..]));

    // Deletes, and expecting a record absent after its delete.
    let mut d = Batch::new();
    d.delete("c", b"x".to_vec());
    assert_eq!(
        apply_if(store, &[Expect::value("c", b"x", b"2")], d),
        Ok(())
    );
    assert_eq!(get(store, "c", b"x"), None);
    let mut p = Batch::new();
    p.put("c", b"x".to_vec(), b"3".to_vec());
    assert_eq!(apply_if(store, &[Expect::absent("c", b"x")], p), Ok(()));

    // No expectation: applies; an empty batch under a true expectation: fine.
    let mut e = Batch::new();
    e.put("c", b"free".to_vec(), b"f".to_vec());
    assert_eq!(apply_if(store, &[], e), Ok(()));
    assert_eq!(get(store, "c", b"free").as_deref(), Some(&b"f"[..]));
    assert_eq!(
        apply_if(store, &[Expect::value("c", b"x", b"3")], Batch::new()),
        Ok(())
    );
    assert_eq!(
        apply_if(store, &[Expect::value("c", b"x", b"2")], Batch::new()),
        Err(Conflict)
    );
}

/// `threads` threads per holder in `holders` each add one, `rounds` times, to
/// one counter with read, then `apply_if`, retried on [`Conflict`]. Each
/// increment also writes a log record that must not exist yet. The counter
/// ends exact, and every value was taken once: no lost update, no double
/// apply.
pub fn concurrent_increments_are_exact(holders: &[Arc<dyn Keystore>], threads: u32, rounds: u32) {
    let workers: Vec<_> = holders
        .iter()
        .flat_map(|store| (0..threads).map(move |_| Arc::clone(store)))
        .map(|store| {
            std::thread::spawn(move || {
                let mut conflicts = 0u32;
                for _ in 0..rounds {
                    loop {
                        let read = store.get("cas", b"counter").expect("read the counter");
                        let n = read.as_deref().map_or(0, |v| {
                            u64::from_be_bytes(v.try_into().expect("an 8-byte counter"))
                        });
                        let next = (n + 1).to_be_bytes();
                        let mut b = Batch::new();
                        b.put("cas", b"counter".to_vec(), next.to_vec());
                        b.put("cas-log", next.to_vec(), b"taken".to_vec());
                        let expect = [
                            Expect::read("cas", b"counter", read.as_deref()),
                            Expect::absent("cas-log", &next),
                        ];
                        match store.apply_if(&expect, b).expect("apply_if") {
                            Ok(()) => break,
                            Err(Conflict) => conflicts += 1,
                        }
                    }
                }
                conflicts
            })
        })
        .collect();
    let mut conflicts = 0;
    for w in workers {
        conflicts += w.join().expect("incrementing thread");
    }
    let total = u64::from(threads) * u64::from(rounds) * holders.len() as u64;
    for store in holders {
        let counter = get(store.as_ref(), "cas", b"counter").expect("the counter exists");
        assert_eq!(
            u64::from_be_bytes(counter.try_into().expect("8 bytes")),
            total,
            "every increment counted once ({conflicts} conflicts retried)"
        );
        let log = store.scan("cas-log", Scan::prefix(b"")).expect("scan");
        assert_eq!(log.len() as u64, total, "every value taken once");
    }
}
