//! The Rust API for 1.0 (SPEC section 13): the key handle and its trait, a
//! swapped-in implementation, stream adapters, a cheap-to-clone `Kms`,
//! summaries for `Debug`, an order-independent builder, a pluggable random
//! source, errors with sources, and `tracing` events.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use localkms::{
    CiphertextBlob, DataKeySpec, EncryptionContext, Error, KeyEncrypter, Kms, SecretBytes,
};

fn ctx(v: &str) -> EncryptionContext {
    EncryptionContext::from_pairs([("purpose", v)]).expect("ctx")
}

fn new_key(kms: &Kms) -> String {
    kms.create_key(&Default::default()).expect("key").key_id
}

// ---- the handle ---------------------------------------------------------------

#[test]
fn a_handle_follows_its_alias_on_every_call() {
    let kms = Kms::in_memory().expect("kms");
    let (a, b) = (new_key(&kms), new_key(&kms));
    kms.create_alias("alias/orders", &a).expect("alias");
    let key = kms.key("alias/orders");
    assert_eq!(key.key_id().expect("resolves"), a);
    let under_a = key.encrypt(b"one", &ctx("x")).expect("encrypt");
    assert_eq!(&under_a[2..38], a.as_bytes());
    kms.update_alias("alias/orders", &b).expect("move alias");
    let under_b = key.encrypt(b"two", &ctx("x")).expect("encrypt");
    assert_eq!(
        &under_b[2..38],
        b.as_bytes(),
        "the same handle follows the alias"
    );
    assert_eq!(
        key.decrypt(&under_b, &ctx("x"))
            .expect("open")
            .expose_secret(),
        b"two"
    );
    // A blob made under another key than the one the name resolves to now
    // is refused, though the service could open it.
    let e = key.decrypt(&under_a, &ctx("x")).unwrap_err();
    assert_eq!(e.code(), "InvalidParameter");
    assert!(e.to_string().contains("another key"), "{e}");
    assert!(kms.decrypt(&under_a, &ctx("x")).is_ok());
    // Handles by id and by ARN behave alike.
    let arn = kms.describe_key(&a).expect("describe").arn;
    for h in [kms.key(a.clone()), kms.key(arn)] {
        assert!(h.decrypt(&under_a, &ctx("x")).is_ok());
        assert!(h.decrypt(&under_b, &ctx("x")).is_err());
    }
    // A missing alias is named.
    kms.delete_alias("alias/orders").expect("delete");
    assert_eq!(
        key.encrypt(b"x", &ctx("x")).unwrap_err().code(),
        "Forbidden.AliasNotFound"
    );
}

#[test]
fn handle_data_keys_and_envelopes() {
    let kms = Kms::in_memory().expect("kms");
    let (a, b) = (new_key(&kms), new_key(&kms));
    let key = kms.key(a.clone());
    let (plain, blob) = key
        .generate_data_key(DataKeySpec::Aes128, &ctx("dk"))
        .expect("gdk");
    assert_eq!(plain.len(), 16);
    assert_eq!(
        key.decrypt(&blob, &ctx("dk"))
            .expect("open")
            .expose_secret(),
        plain.expose_secret()
    );
    // Envelope streams through the trait object.
    let dyn_key: &dyn KeyEncrypter = &key;
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let mut env = Vec::new();
    let mut w = dyn_key
        .envelope_writer(&ctx("e"), &mut env)
        .expect("writer");
    for piece in data.chunks(10_000) {
        w.write_all(piece).expect("write");
    }
    assert_eq!(w.plaintext_bytes(), data.len() as u64);
    w.finish().expect("finish");
    let mut out = Vec::new();
    dyn_key
        .envelope_reader(&ctx("e"), &mut &env[..])
        .expect("reader")
        .read_to_end(&mut out)
        .expect("read");
    assert_eq!(out, data);
    // The service's own functions read it too.
    assert_eq!(
        kms.envelope_decrypt(&env, &ctx("e"))
            .expect("decrypt")
            .as_slice(),
        &data[..]
    );
    // A handle on another key refuses the envelope's key.
    let other = kms.key(b);
    assert!(other.envelope_reader(&ctx("e"), &mut &env[..]).is_err());
    // The envelope key is not a data key: decrypt refuses it.
    assert_eq!(
        key.decrypt(&env[7..153], &ctx("e")).unwrap_err(),
        Error::DecryptionFailed
    );
}

/// What an application writes: it depends on the trait only.
mod app {
    use super::*;

    pub fn seal_order(key: &dyn KeyEncrypter, order: &str) -> localkms::Result<CiphertextBlob> {
        key.encrypt(
            order.as_bytes(),
            &EncryptionContext::from_pairs([("t", "order")])?,
        )
    }

    pub fn open_order<K: KeyEncrypter + ?Sized>(key: &K, blob: &[u8]) -> localkms::Result<String> {
        let p = key.decrypt(blob, &EncryptionContext::from_pairs([("t", "order")])?)?;
        Ok(String::from_utf8_lossy(p.expose_secret()).into_owned())
    }

    pub fn archive(key: &dyn KeyEncrypter, data: &[u8]) -> localkms::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut w = key.envelope_writer(&EncryptionContext::empty(), &mut out)?;
        w.write_all(data)?;
        w.finish()?;
        Ok(out)
    }

    pub fn unarchive(key: &dyn KeyEncrypter, env: &[u8]) -> localkms::Result<Vec<u8>> {
        let mut out = Vec::new();
        key.envelope_reader(&EncryptionContext::empty(), &mut &env[..])?
            .read_to_end(&mut out)?;
        Ok(out)
    }
}

/// A stand-in a test swaps in: reverses bytes and records every call.
#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<&'static str>>,
}

impl Fake {
    fn note(&self, call: &'static str) {
        self.calls.lock().expect("lock").push(call);
    }
}

impl KeyEncrypter for Fake {
    fn encrypt(&self, plaintext: &[u8], _: &EncryptionContext) -> localkms::Result<CiphertextBlob> {
        self.note("encrypt");
        Ok(plaintext.iter().rev().copied().collect::<Vec<u8>>().into())
    }

    fn decrypt(&self, ciphertext: &[u8], _: &EncryptionContext) -> localkms::Result<SecretBytes> {
        self.note("decrypt");
        Ok(SecretBytes::from(
            ciphertext.iter().rev().copied().collect::<Vec<u8>>(),
        ))
    }

    fn generate_data_key(
        &self,
        spec: DataKeySpec,
        _: &EncryptionContext,
    ) -> localkms::Result<(SecretBytes, CiphertextBlob)> {
        self.note("generate_data_key");
        let key = vec![7u8; spec.byte_len()];
        Ok((SecretBytes::from(key.clone()), CiphertextBlob::from(key)))
    }

    fn generate_envelope_key(
        &self,
        _: &EncryptionContext,
    ) -> localkms::Result<(SecretBytes, CiphertextBlob)> {
        self.note("generate_envelope_key");
        Ok((
            SecretBytes::from(vec![9u8; 32]),
            CiphertextBlob::from(b"fake".to_vec()),
        ))
    }

    fn open_envelope_key(
        &self,
        version: u8,
        blob: &[u8],
        _: &EncryptionContext,
    ) -> localkms::Result<SecretBytes> {
        self.note("open_envelope_key");
        if version == 2 && blob == b"fake" {
            Ok(SecretBytes::from(vec![9u8; 32]))
        } else {
            Err(Error::DecryptionFailed)
        }
    }
}

#[test]
fn application_code_runs_on_a_swapped_in_implementation() {
    let fake = Fake::default();
    let blob = app::seal_order(&fake, "3 apples").expect("seal");
    assert_eq!(blob.as_bytes(), b"selppa 3");
    assert_eq!(app::open_order(&fake, &blob).expect("open"), "3 apples");
    // The provided envelope streams run on the fake's keys.
    let env = app::archive(&fake, b"archive me").expect("archive");
    assert_eq!(&env[..5], b"LKEV\x02");
    assert_eq!(
        app::unarchive(&fake, &env).expect("unarchive"),
        b"archive me"
    );
    assert_eq!(
        *fake.calls.lock().expect("lock"),
        [
            "encrypt",
            "decrypt",
            "generate_envelope_key",
            "open_envelope_key"
        ]
    );
    // The same code on the real thing, as a trait object in an Arc.
    let kms = Kms::in_memory().expect("kms");
    let real: Arc<dyn KeyEncrypter> = Arc::new(kms.key(new_key(&kms)));
    let blob = app::seal_order(real.as_ref(), "3 apples").expect("seal");
    assert_eq!(
        app::open_order(real.as_ref(), &blob).expect("open"),
        "3 apples"
    );
    let env = app::archive(real.as_ref(), b"archive me").expect("archive");
    assert_eq!(
        app::unarchive(real.as_ref(), &env).expect("unarchive"),
        b"archive me"
    );
    // The fake cannot open the real envelope, nor the real key the fake's.
    assert!(app::unarchive(&fake, &env).is_err());
    let fake_env = app::archive(&fake, b"x").expect("archive");
    assert!(app::unarchive(real.as_ref(), &fake_env).is_err());
}

// ---- stream adapters ------------------------------------------------------------

#[test]
fn an_unfinished_writer_leaves_an_envelope_that_never_decrypts() {
    let kms = Kms::in_memory().expect("kms");
    let key = new_key(&kms);
    for n in [0usize, 5, 65_536, 65_537, 300_000] {
        let data = vec![0x42u8; n];
        let mut out = Vec::new();
        {
            let mut w = kms
                .envelope_writer(&key, &ctx("w"), &mut out)
                .expect("writer");
            w.write_all(&data).expect("write");
            // Dropped without finish().
        }
        assert_eq!(
            kms.envelope_decrypt(&out, &ctx("w")).unwrap_err(),
            Error::DecryptionFailed,
            "{n} bytes"
        );
        let mut r = kms
            .envelope_reader(&ctx("w"), &out[..])
            .expect("header is fine");
        let mut got = Vec::new();
        let e = r.read_to_end(&mut got).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(Error::from(e), Error::DecryptionFailed);
        assert!(got.len() <= n, "only authenticated bytes came out");
        // Finished, the same bytes round-trip.
        let mut w = kms
            .envelope_writer(&key, &ctx("w"), Vec::new())
            .expect("writer");
        w.write_all(&data).expect("write");
        let env = w.finish().expect("finish");
        assert_eq!(
            kms.envelope_decrypt(&env, &ctx("w"))
                .expect("open")
                .as_slice(),
            &data[..]
        );
    }
}

#[test]
fn a_reader_returns_no_byte_of_a_chunk_that_fails() {
    let kms = Kms::in_memory().expect("kms");
    let key = new_key(&kms);
    let data = vec![0x11u8; 3 * 65_536 + 10];
    let env = kms.envelope_encrypt(&key, &data, &ctx("r")).expect("seal");
    // Damage the second chunk's last byte (its tag).
    let mut bad = env.clone();
    let second_end = 153 + 2 * (65_536 + 16) - 1;
    bad[second_end] ^= 1;
    let mut r = kms.envelope_reader(&ctx("r"), &bad[..]).expect("reader");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let err = loop {
        match r.read(&mut buf) {
            Ok(0) => panic!("a damaged envelope read to its end"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => break e,
        }
    };
    assert_eq!(got.len(), 65_536, "exactly the first chunk came out");
    assert_eq!(Error::from(err), Error::DecryptionFailed);
    // And it stays failed.
    assert!(r.read(&mut buf).is_err());
}

// ---- the service object -----------------------------------------------------------

#[test]
fn kms_is_cheap_to_clone_and_shared_across_threads() {
    fn assert_traits<T: Clone + Send + Sync + 'static>() {}
    assert_traits::<Kms>();
    assert_traits::<localkms::KeyHandle>();
    let kms = Kms::in_memory().expect("kms");
    let key = new_key(&kms);
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let kms = kms.clone();
            let key = key.clone();
            std::thread::spawn(move || {
                kms.encrypt(&key, format!("t{i}").as_bytes(), &ctx("t"))
                    .expect("encrypt")
                    .ciphertext_blob
            })
        })
        .collect();
    for t in threads {
        let blob = t.join().expect("thread");
        assert!(kms.decrypt(&blob, &ctx("t")).is_ok());
    }
    // A clone is the same service: a key made through one is seen by all.
    let other = kms.clone();
    let k2 = new_key(&other);
    assert!(kms.describe_key(&k2).is_ok());
}

#[test]
fn debug_is_a_summary_never_the_records() {
    let kms = Kms::in_memory().expect("kms");
    for _ in 0..100 {
        kms.create_key(&Default::default()).expect("key");
    }
    let text = format!("{kms:?}");
    assert!(text.len() < 600, "{} bytes: {text}", text.len());
    assert!(text.contains("MemoryKeystore"), "{text}");
    assert!(text.contains("records"), "{text}");
    let dir = tempfile::tempdir().expect("tempdir");
    let sled = Kms::builder()
        .sled(dir.path())
        .root_key_bytes(&[4; 32])
        .build()
        .expect("sled");
    for _ in 0..100 {
        sled.create_key(&Default::default()).expect("key");
    }
    let text = format!("{sled:?}");
    assert!(text.len() < 800, "{} bytes: {text}", text.len());
    assert!(text.contains("SledKeystore"), "{text}");
    assert!(text.contains(&dir.path().display().to_string()), "{text}");
}

#[test]
fn root_key_beside_store_works_in_either_order() {
    let before = tempfile::tempdir().expect("tempdir");
    let after = tempfile::tempdir().expect("tempdir");
    let a = Kms::builder()
        .root_key_beside_store()
        .sled(before.path())
        .build()
        .expect("beside, then sled");
    let b = Kms::builder()
        .sled(after.path())
        .root_key_beside_store()
        .build()
        .expect("sled, then beside");
    for (kms, dir) in [(a, &before), (b, &after)] {
        assert!(dir.path().join(localkms::ROOT_KEY_FILE).exists());
        new_key(&kms);
    }
    // Without a sled store it is refused, not ignored.
    let e = Kms::builder().root_key_beside_store().build().unwrap_err();
    assert_eq!(e.code(), "InternalFailure");
    assert!(matches!(e, Error::InvalidRootKey(_)), "{e:?}");
}

/// A generator that returns the same bytes every time: it makes the same
/// UUIDs, so it exercises the refusal to overwrite.
struct Stuck;

impl rand_core::TryRng for Stuck {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(7)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(7)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        dst.fill(7);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for Stuck {}

#[test]
fn a_caller_generator_is_used_and_repeated_ids_are_refused() {
    let kms = Kms::builder().rng(Stuck).build().expect("kms");
    assert!(format!("{kms:?}").contains("Custom"));
    let key = kms.create_key(&Default::default()).expect("first key");
    assert_eq!(key.key_id, "07070707-0707-4707-8707-070707070707");
    // The same id again: refused, and the first key is intact.
    let e = kms.create_key(&Default::default()).unwrap_err();
    assert!(e.to_string().contains("exists already"), "{e}");
    // The refused write (checked in the commit itself) applied nothing.
    assert_eq!(kms.key_count().expect("count"), 1);
    assert!(kms.verify().expect("verify").is_ok());
    let blob = kms
        .encrypt(&key.key_id, b"x", &ctx("s"))
        .expect("encrypt")
        .ciphertext_blob;
    assert_eq!(
        &blob[74..98],
        &[7u8; 24],
        "the nonce came from the generator"
    );
    // The version id repeats the key's first version id: refused.
    let e = kms.create_key_version(&key.key_id).unwrap_err();
    assert!(e.to_string().contains("KeyVersionId"), "{e}");
    assert_eq!(
        kms.list_key_versions(&key.key_id, Default::default())
            .expect("list")
            .items
            .len(),
        1
    );
    assert!(kms.decrypt(&blob, &ctx("s")).is_ok());
}

/// A generator that fails: operations fail with InternalFailure.
struct Broken;

impl rand_core::TryRng for Broken {
    type Error = std::io::Error;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Err(std::io::Error::other("hsm offline"))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Err(std::io::Error::other("hsm offline"))
    }
    fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), Self::Error> {
        Err(std::io::Error::other("hsm offline"))
    }
}

impl rand_core::TryCryptoRng for Broken {}

#[test]
fn a_failing_generator_fails_the_operation() {
    let kms = Kms::builder().rng(Broken).build().expect("kms");
    let e = kms.create_key(&Default::default()).unwrap_err();
    assert_eq!(e, Error::InternalFailure);
    assert!(e.is_retryable());
}

#[cfg(feature = "test-util")]
#[test]
fn deterministic_mode_does_not_replay_on_reopen_without_new_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = || {
        Kms::builder()
            .sled(dir.path())
            .root_key_bytes(&[5; 32])
            .insecure_deterministic(11)
            .build()
            .expect("open")
    };
    let kms = open();
    let key = new_key(&kms);
    let first = kms
        .encrypt(&key, b"same", &ctx("d"))
        .expect("encrypt")
        .ciphertext_blob;
    drop(kms);
    // Reopened twice, making no key in between: each open draws anew.
    let mut nonces = vec![first[74..98].to_vec()];
    for _ in 0..2 {
        let kms = open();
        let again = kms
            .encrypt(&key, b"same", &ctx("d"))
            .expect("encrypt")
            .ciphertext_blob;
        nonces.push(again[74..98].to_vec());
        drop(kms);
    }
    nonces.sort();
    nonces.dedup();
    assert_eq!(nonces.len(), 3, "a reopened store replayed its stream");
    // A fresh store with the same seed is still reproducible.
    let fresh = |d: &std::path::Path| {
        let kms = Kms::builder()
            .sled(d)
            .root_key_bytes(&[5; 32])
            .insecure_deterministic(11)
            .build()
            .expect("open");
        new_key(&kms)
    };
    let (d1, d2) = (
        tempfile::tempdir().expect("t"),
        tempfile::tempdir().expect("t"),
    );
    assert_eq!(fresh(d1.path()), fresh(d2.path()));
}

// ---- errors -------------------------------------------------------------------------

#[test]
fn errors_keep_their_source_and_say_if_retrying_helps() {
    use std::error::Error as _;
    let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "disk slow");
    let e = Error::from(io);
    assert!(e.is_retryable());
    let source = e.source().expect("an I/O error keeps its source");
    assert_eq!(source.to_string(), "disk slow");
    let Error::Io { cause: Some(c), .. } = &e else {
        panic!("{e:?}")
    };
    assert!(c.get_ref().downcast_ref::<std::io::Error>().is_some());
    // A file that is not there, through the fixtures loader.
    let kms = Kms::in_memory().expect("kms");
    let e = kms
        .load_fixtures_file("/nonexistent/fixtures.json")
        .unwrap_err();
    assert!(e.source().is_some());
    assert!(!e.is_retryable());
    for (e, retry) in [
        (Error::Throttling, true),
        (Error::ServiceUnavailable, true),
        (Error::StoreLocked("pid 7".into()), true),
        (Error::InternalFailure, true),
        (Error::DecryptionFailed, false),
        (Error::KeyNotFound("k".into()), false),
        (Error::MissingParameter("KeyId"), false),
        (Error::WrongRootKey, false),
    ] {
        assert_eq!(e.is_retryable(), retry, "{e:?}");
    }
    let e = Error::from(localkms::store::StoreError::Io("eio".into()));
    assert!(e.source().is_some(), "a backend failure keeps its source");
}

// ---- tracing ------------------------------------------------------------------------

/// A tiny subscriber that keeps every event's fields as text.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={value:?} ", field.name()));
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut f = Fields(format!(
            "{} {} ",
            event.metadata().level(),
            event.metadata().target()
        ));
        event.record(&mut f);
        self.0.lock().expect("lock").push(f.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn every_operation_emits_one_tracing_event_and_no_secret() {
    let kms = Kms::in_memory().expect("kms");
    let key = new_key(&kms);
    // Silent without a subscriber: nothing to observe but that it works.
    kms.encrypt(&key, b"x", &ctx("t")).expect("encrypt");
    let capture = Capture::default();
    let blob = tracing::subscriber::with_default(capture.clone(), || {
        let blob = kms
            .encrypt(&key, b"TOPSECRET", &ctx("t"))
            .expect("encrypt")
            .ciphertext_blob;
        let dk = kms
            .generate_data_key(&key, &Default::default())
            .expect("gdk");
        assert!(kms.decrypt(&blob, &ctx("other")).is_err());
        kms.disable_key(&key).expect("disable");
        (blob, dk.plaintext.to_base64().to_string())
    });
    let events = capture.0.lock().expect("lock").clone();
    assert_eq!(events.len(), 4, "{events:#?}");
    assert!(events[0].contains("action=\"Encrypt\""), "{}", events[0]);
    assert!(
        events[0].contains(&format!("key_id=\"{key}\"")),
        "{}",
        events[0]
    );
    assert!(events[0].contains("outcome=\"Success\""), "{}", events[0]);
    assert!(events[0].contains("duration_us="), "{}", events[0]);
    assert!(events[0].starts_with("DEBUG localkms"), "{}", events[0]);
    assert!(events[1].contains("GenerateDataKey"));
    assert!(events[2].contains("action=\"Decrypt\""));
    assert!(
        events[2].contains("outcome=\"InvalidParameter\""),
        "{}",
        events[2]
    );
    assert!(events[2].starts_with("INFO"), "{}", events[2]);
    assert!(events[3].contains("DisableKey"));
    let all = events.join("\n");
    assert!(!all.contains("TOPSECRET"));
    assert!(!all.contains(&blob.0.to_base64()));
    assert!(!all.contains(&blob.1));
    // Nested operations (Decrypt inside ReEncrypt) are one event.
    let capture = Capture::default();
    kms.enable_key(&key).expect("enable");
    let sealed = kms.encrypt(&key, b"y", &ctx("t")).expect("encrypt");
    tracing::subscriber::with_default(capture.clone(), || {
        kms.re_encrypt(&sealed.ciphertext_blob, &key, &ctx("t"), &ctx("u"))
            .expect("re-encrypt");
    });
    let events = capture.0.lock().expect("lock").clone();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert!(events[0].contains("ReEncrypt"));
}

#[test]
fn secret_bytes_move_out_as_zeroizing() {
    let kms = Kms::in_memory().expect("kms");
    let key = new_key(&kms);
    let dk = kms
        .generate_data_key(&key, &Default::default())
        .expect("gdk");
    let copy = dk.plaintext.expose_secret().to_vec();
    let owned: zeroize::Zeroizing<Vec<u8>> = dk.plaintext.into_zeroizing();
    assert_eq!(owned.as_slice(), &copy[..]);
    let opened = kms
        .decrypt(&dk.ciphertext_blob, &EncryptionContext::empty())
        .expect("decrypt");
    // Opened in place inside the blob's buffer; moved out, only the key.
    assert_eq!(opened.plaintext.into_zeroizing().as_slice(), &copy[..]);
}

#[test]
fn dispatch_takes_any_string_pairs() {
    let kms = Kms::in_memory().expect("kms");
    let r = localkms::wire::dispatch(&kms, &[("Action", "CreateKey")]);
    assert_eq!(r.status, 200, "{}", r.body);
    let owned = vec![("Action".to_owned(), "ListKeys".to_owned())];
    assert_eq!(localkms::wire::dispatch(&kms, &owned).status, 200);
    let mixed: [(&str, String); 2] = [("Action", "Encrypt".into()), ("Format", "XML".into())];
    let r = localkms::wire::dispatch(&kms, &mixed);
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("<Code>MissingParameter</Code>"),
        "{}",
        r.body
    );
}

#[test]
fn key_metadata_has_typed_accessors_over_unchanged_wire_strings() {
    use std::time::{Duration, UNIX_EPOCH};
    let clock = localkms::ManualClock::new(1_700_000_000);
    let kms = Kms::builder().clock(clock.clone()).build().expect("kms");
    let at = |s: u64| Some(UNIX_EPOCH + Duration::from_secs(s));
    let req = localkms::CreateKeyRequest {
        enable_automatic_rotation: true,
        rotation_interval: Some(8 * 86_400),
        ..Default::default()
    };
    let meta = kms.create_key(&req).expect("key");
    assert_eq!(meta.creation_date, "2023-11-14T22:13:20Z");
    assert_eq!(meta.created(), at(1_700_000_000));
    assert!(meta.rotation_enabled());
    assert_eq!(meta.automatic_rotation, "Enabled");
    assert_eq!(
        meta.rotation_period(),
        Some(Duration::from_secs(8 * 86_400))
    );
    assert_eq!(meta.rotation_interval, "691200s");
    assert_eq!(meta.next_rotation(), at(1_700_000_000 + 8 * 86_400));
    assert_eq!(meta.deletion_date(), None);
    assert_eq!(meta.material_expires(), None);
    kms.schedule_key_deletion(&meta.key_id, 7)
        .expect("schedule");
    let meta = kms.describe_key(&meta.key_id).expect("describe");
    assert_eq!(meta.deletion_date(), at(1_700_000_000 + 7 * 86_400));
    let plain = kms.create_key(&Default::default()).expect("key");
    assert!(!plain.rotation_enabled());
    assert_eq!(plain.rotation_period(), None);
    assert_eq!(
        plain.last_rotation(),
        at(1_700_000_000).filter(|_| !plain.last_rotation_date.is_empty())
    );
}
