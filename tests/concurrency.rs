//! N threads run mixed Encrypt, Decrypt, GenerateDataKey, rotation and
//! management operations on one `Kms`. The test fails if a thread does not finish
//! within a generous bound (a deadlock), if a change is lost (every thread's
//! keys, aliases and tags are all there at the end, and the key counter
//! agrees), or if a read is torn (a key's state and its DeleteDate always
//! agree; a ciphertext always decrypts to exactly its plaintext; a cached
//! key never serves a state it has left).
//!
//! Threads report over channels; the main thread waits with timeouts, never
//! with sleeps.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use localkms::{
    CreateKeyRequest, Durability, EncryptionContext, GenerateDataKeyRequest, KeyState, Kms, Paging,
    Tag, TagKey,
};

const THREADS: usize = 6;
const ROUNDS: usize = 150;
/// Far beyond what the work needs; only a deadlock reaches it.
const DEADLINE: Duration = Duration::from_secs(120);

fn stores() -> Vec<(&'static str, Kms, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let sled = Kms::builder()
        .sled(dir.path())
        .root_key_bytes(&[8; 32])
        .durability(Durability::Relaxed)
        .build()
        .expect("sled");
    vec![
        ("memory", Kms::in_memory().expect("memory"), None),
        ("sled", sled, Some(dir)),
    ]
}

/// What one worker made, for the final check.
struct Made {
    keys: Vec<String>,
    aliases: Vec<(String, String)>,
    tags: Vec<String>,
    rotations: usize,
}

/// One worker: thread `t` of the mix.
fn worker(kms: &Kms, t: usize, shared: &[String], flipper: &str) -> Made {
    let mut made = Made {
        keys: Vec::new(),
        aliases: Vec::new(),
        tags: Vec::new(),
        rotations: 0,
    };
    let ctx = EncryptionContext::from_pairs([("thread", t.to_string())]).expect("ctx");
    for r in 0..ROUNDS {
        let key = &shared[(t + r) % shared.len()];
        // Encrypt and decrypt on shared keys: always exactly our plaintext.
        let plaintext = format!("thread {t} round {r}").into_bytes();
        let blob = kms.encrypt(key, &plaintext, &ctx).expect("encrypt");
        assert_eq!(&blob.key_id, key);
        let opened = kms.decrypt(&blob.ciphertext_blob, &ctx).expect("decrypt");
        assert_eq!(opened.plaintext.expose_secret(), plaintext.as_slice());
        assert_eq!(&opened.key_id, key);
        assert_eq!(opened.key_version_id, blob.key_version_id);
        let dk = kms
            .generate_data_key(key, &GenerateDataKeyRequest::default().context(ctx.clone()))
            .expect("data key");
        let back = kms.decrypt(&dk.ciphertext_blob, &ctx).expect("decrypt");
        assert_eq!(back.plaintext.expose_secret(), dk.plaintext.expose_secret());

        // The flipped key: its state and DeleteDate never disagree, and
        // Encrypt answers for one of the states it moves through.
        let meta = kms.describe_key(flipper).expect("describe");
        match meta.key_state {
            KeyState::PendingDeletion => assert!(!meta.delete_date.is_empty(), "torn: {meta:?}"),
            KeyState::Enabled | KeyState::Disabled => {
                assert!(meta.delete_date.is_empty(), "torn: {meta:?}");
            }
            other => panic!("the flipped key is {other}"),
        }
        match kms.encrypt(flipper, b"x", &ctx) {
            Ok(_) => {}
            Err(e) => assert!(
                ["Rejected.Disabled", "Rejected.PendingDeletion"].contains(&e.code()),
                "{e:?}"
            ),
        }

        // Management on our own keys, aliases and tags, and on shared keys.
        match r % 6 {
            0 => {
                let id = kms
                    .create_key(&CreateKeyRequest::default())
                    .expect("create")
                    .key_id;
                made.keys.push(id);
            }
            1 if !made.keys.is_empty() => {
                let own = made.keys[r % made.keys.len()].clone();
                let name = format!("alias/t{t}-r{r}");
                kms.create_alias(&name, &own).expect("alias");
                made.aliases.push((name, own));
            }
            2 => {
                let tag_key = format!("t{t}-r{r}");
                kms.tag_resource(
                    shared[0].as_str(),
                    &[Tag::new(tag_key.clone(), "v").expect("tag")],
                )
                .map(|()| made.tags.push(tag_key))
                .or_else(|e| {
                    // Ten tags per key: later taggers are refused, cleanly.
                    assert_eq!(e.code(), "Rejected.LimitExceeded", "{e:?}");
                    Ok::<(), localkms::Error>(())
                })
                .expect("tag");
            }
            3 if made.tags.len() > 1 => {
                let gone = made.tags.remove(0);
                kms.untag_resource(&shared[0], &[TagKey::new(gone).expect("tag key")])
                    .expect("untag");
            }
            5 if r % 12 == 5 => {
                // Rotation of a shared key while others encrypt under it.
                let v = kms.create_key_version(key).expect("rotate");
                let e = kms.encrypt(key, b"after", &ctx).expect("encrypt");
                let versions = kms
                    .list_key_versions(key, Paging::new(1, 100).expect("paging"))
                    .expect("versions")
                    .items;
                let at = |id: &str| versions.iter().position(|x| x.key_version_id == id);
                // Sealed by this rotation's version or a later one.
                assert!(
                    at(&e.key_version_id) >= at(&v.key_version_id),
                    "stale primary"
                );
                made.rotations += 1;
            }
            4 if !made.keys.is_empty() => {
                let own = &made.keys[r % made.keys.len()];
                kms.disable_key(own).expect("disable");
                kms.enable_key(own).expect("enable");
            }
            _ => {
                kms.list_keys(Paging::new(1, 5).expect("paging"))
                    .expect("list");
            }
        }
    }
    made
}

/// Moves `key` through Enabled, Disabled, PendingDeletion and back until
/// told to stop.
fn flip(kms: &Kms, key: &str, stop: &mpsc::Receiver<()>) -> usize {
    let mut n = 0;
    while let Err(mpsc::TryRecvError::Empty) = stop.try_recv() {
        kms.disable_key(key).expect("disable");
        kms.schedule_key_deletion(key, 7).expect("schedule");
        kms.cancel_key_deletion(key).expect("cancel");
        n += 1;
    }
    n
}

#[test]
fn mixed_operations_from_many_threads() {
    for (name, kms, _dir) in stores() {
        let kms = Arc::new(kms);
        let before = kms.key_count().expect("count");
        let shared: Vec<String> = (0..3)
            .map(|_| {
                kms.create_key(&CreateKeyRequest::default())
                    .expect("key")
                    .key_id
            })
            .collect();
        let flipper = kms
            .create_key(&CreateKeyRequest::default())
            .expect("key")
            .key_id;
        let start = Arc::new(Barrier::new(THREADS + 1));
        let (done_tx, done_rx) = mpsc::channel();
        for t in 0..THREADS {
            let (kms, shared, flipper, start, done) = (
                Arc::clone(&kms),
                shared.clone(),
                flipper.clone(),
                Arc::clone(&start),
                done_tx.clone(),
            );
            std::thread::spawn(move || {
                start.wait();
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    worker(&kms, t, &shared, &flipper)
                }));
                let _ = done.send((t, result));
            });
        }
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let (flips_tx, flips_rx) = mpsc::channel();
        {
            let (kms, flipper, start) = (Arc::clone(&kms), flipper.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                let _ = flips_tx.send(flip(&kms, &flipper, &stop_rx));
            });
        }
        let mut made = Vec::new();
        for _ in 0..THREADS {
            match done_rx.recv_timeout(DEADLINE) {
                Ok((_, Ok(m))) => made.push(m),
                Ok((t, Err(p))) => {
                    let msg = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_default();
                    panic!("{name}: thread {t} failed: {msg}");
                }
                Err(RecvTimeoutError::Timeout) => panic!("{name}: a worker is stuck (deadlock?)"),
                Err(RecvTimeoutError::Disconnected) => panic!("{name}: a worker vanished"),
            }
        }
        stop_tx.send(()).expect("stop the flipper");
        let flips = flips_rx
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("{name}: the flipper is stuck (deadlock?)"));
        assert!(flips > 0);

        // No lost update: everything every thread made is there.
        let keys: Vec<&String> = made.iter().flat_map(|m| &m.keys).collect();
        assert_eq!(
            kms.key_count().expect("count"),
            before + 4 + keys.len() as u64,
            "{name}: the key counter lost an update"
        );
        let listed = kms
            .list_keys(Paging::new(1, 100).expect("paging"))
            .expect("list");
        assert_eq!(
            listed.total_count,
            kms.key_count().expect("count"),
            "{name}"
        );
        for k in &keys {
            assert_eq!(
                kms.describe_key(k).expect("own key").key_state,
                KeyState::Enabled,
                "{name}"
            );
        }
        for (alias, key) in made.iter().flat_map(|m| &m.aliases) {
            assert_eq!(
                &kms.describe_key(alias).expect("alias").key_id,
                key,
                "{name}"
            );
        }
        let tags: Vec<String> = kms
            .list_resource_tags(&shared[0])
            .expect("tags")
            .into_iter()
            .map(|t| t.tag_key)
            .collect();
        let mut want: Vec<String> = made.iter().flat_map(|m| m.tags.clone()).collect();
        let mut got = tags.clone();
        want.sort();
        got.sort();
        assert_eq!(got, want, "{name}: a tag change was lost");
        // Every rotation made a version.
        let rotations: usize = made.iter().map(|m| m.rotations).sum();
        let versions: usize = shared
            .iter()
            .map(|k| {
                kms.list_key_versions(k, Paging::new(1, 100).expect("paging"))
                    .expect("versions")
                    .total_count as usize
            })
            .sum();
        assert!(rotations > 0);
        assert_eq!(
            versions,
            shared.len() + rotations,
            "{name}: a rotation was lost"
        );
        // The flipper ended Enabled, and its cached state says so.
        assert_eq!(
            kms.describe_key(&flipper).expect("flipper").key_state,
            KeyState::Enabled
        );
        kms.encrypt(&flipper, b"x", &EncryptionContext::empty())
            .expect("the flipper is usable again");
    }
}

/// Readers never see a key's cached state lag behind a change another
/// thread has already seen acknowledged.
#[test]
fn a_change_is_seen_by_every_thread_once_acknowledged() {
    let kms = Arc::new(Kms::in_memory().expect("kms"));
    let key = kms
        .create_key(&CreateKeyRequest::default())
        .expect("key")
        .key_id;
    let ctx = EncryptionContext::empty();
    // Warm every reader's cache with the Enabled key.
    let readers = 4;
    let (to_readers, from_main): (Vec<_>, Vec<_>) =
        (0..readers).map(|_| mpsc::channel::<bool>()).unzip();
    let (answers_tx, answers) = mpsc::channel();
    for rx in from_main {
        let (kms, key, tx) = (Arc::clone(&kms), key.clone(), answers_tx.clone());
        std::thread::spawn(move || {
            let ctx = EncryptionContext::empty();
            while let Ok(expect_enabled) = rx.recv() {
                let ok = kms.encrypt(&key, b"x", &ctx).is_ok();
                let _ = tx.send(ok == expect_enabled);
            }
        });
    }
    for step in 0..20 {
        let enabled = step % 2 == 0;
        if enabled {
            kms.enable_key(&key).expect("enable");
        } else {
            kms.disable_key(&key).expect("disable");
        }
        assert_eq!(kms.encrypt(&key, b"x", &ctx).is_ok(), enabled);
        for tx in &to_readers {
            tx.send(enabled).expect("reader");
        }
        for _ in 0..readers {
            let agreed = answers.recv_timeout(DEADLINE).expect("a reader is stuck");
            assert!(agreed, "step {step}: a reader served a stale key state");
        }
    }
}
