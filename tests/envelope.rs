//! Envelope encryption of large data: round trips in memory and as streams,
//! and detection of truncation, reordering, chunk swapping, appended data
//! and tampering (docs/FORMAT.md, "Envelope").

use std::io::{self, Read, Write};

use localkms::{ENVELOPE_CHUNK_BYTES, EncryptionContext, Error, Kms};

const CHUNK: usize = ENVELOPE_CHUNK_BYTES;
const SEALED_CHUNK: usize = CHUNK + 16;
const HEADER: usize = 153;

fn setup() -> (Kms, String) {
    let kms = Kms::in_memory().expect("kms");
    let key = kms.create_key(&Default::default()).expect("key").key_id;
    (kms, key)
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + i / 251) as u8).collect()
}

fn none() -> EncryptionContext {
    EncryptionContext::empty()
}

fn chunk(env: &[u8], i: usize) -> std::ops::Range<usize> {
    let start = HEADER + i * SEALED_CHUNK;
    start..(start + SEALED_CHUNK).min(env.len())
}

fn assert_rejected(kms: &Kms, env: &[u8], what: &str) {
    let e = kms.envelope_decrypt(env, &none()).expect_err(what);
    assert_eq!(e, Error::DecryptionFailed, "{what}");
    let mut out = Vec::new();
    let e = kms
        .envelope_decrypt_stream(&none(), env, &mut out)
        .expect_err(what);
    assert_eq!(e, Error::DecryptionFailed, "{what} (stream)");
}

#[test]
fn round_trips_at_chunk_boundaries() {
    let (kms, key) = setup();
    let ctx = EncryptionContext::from_pairs([("file", "a.bin")]).expect("ctx");
    for n in [
        0,
        1,
        15,
        16,
        17,
        CHUNK - 1,
        CHUNK,
        CHUNK + 1,
        2 * CHUNK,
        3 * CHUNK + 7,
    ] {
        let pt = data(n);
        let env = kms.envelope_encrypt(&key, &pt, &ctx).expect("encrypt");
        let full = n / CHUNK;
        assert_eq!(
            env.len(),
            HEADER + full * SEALED_CHUNK + (n % CHUNK) + 16,
            "size {n}"
        );
        let out = kms.envelope_decrypt(&env, &ctx).expect("decrypt");
        assert_eq!(out.as_slice(), &pt[..], "size {n}");
        // Streams give the same.
        let mut streamed = Vec::new();
        let info = kms
            .envelope_decrypt_stream(&ctx, &env[..], &mut streamed)
            .expect("stream decrypt");
        assert_eq!(streamed, pt);
        assert_eq!(info.plaintext_bytes, n as u64);
        assert_eq!(info.key_id, key);
    }
}

#[test]
fn streams_round_trip_with_tiny_reads() {
    /// A reader that hands out one byte at a time.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((b, rest)), Some(slot)) => {
                    *slot = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }
    let (kms, key) = setup();
    let pt = data(CHUNK + 999);
    let mut env = Vec::new();
    let info = kms
        .envelope_encrypt_stream(&key, &none(), Trickle(&pt), &mut env)
        .expect("encrypt");
    assert_eq!(info.plaintext_bytes, pt.len() as u64);
    let mut out = Vec::new();
    kms.envelope_decrypt_stream(&none(), Trickle(&env), &mut out)
        .expect("decrypt");
    assert_eq!(out, pt);
}

#[test]
fn every_envelope_has_a_fresh_data_key() {
    let (kms, key) = setup();
    let pt = data(100);
    let a = kms.envelope_encrypt(&key, &pt, &none()).expect("a");
    let b = kms.envelope_encrypt(&key, &pt, &none()).expect("b");
    assert_ne!(a[7..HEADER], b[7..HEADER], "different data key blobs");
    assert_ne!(a[HEADER..], b[HEADER..], "different ciphertexts");
}

#[test]
fn wrong_context_is_rejected() {
    let (kms, key) = setup();
    let ctx = EncryptionContext::from_pairs([("a", "1")]).expect("ctx");
    let env = kms
        .envelope_encrypt(&key, &data(10), &ctx)
        .expect("encrypt");
    assert_rejected(&kms, &env, "no context");
    let other = EncryptionContext::from_pairs([("a", "2")]).expect("ctx");
    assert_eq!(
        kms.envelope_decrypt(&env, &other).unwrap_err(),
        Error::DecryptionFailed
    );
}

#[test]
fn truncation_is_detected() {
    let (kms, key) = setup();
    let env = kms
        .envelope_encrypt(&key, &data(3 * CHUNK + 100), &none())
        .expect("encrypt");
    // Cut at every chunk boundary (dropping the tail) and inside chunks.
    for cut in [
        0,
        1,
        HEADER - 1,
        HEADER,
        HEADER + 15,
        HEADER + 16,
        HEADER + SEALED_CHUNK,
        HEADER + 2 * SEALED_CHUNK,
        HEADER + 3 * SEALED_CHUNK,
        HEADER + 3 * SEALED_CHUNK + 16,
        env.len() - 1,
    ] {
        assert_rejected(&kms, &env[..cut], &format!("cut at {cut}"));
    }
    // An envelope whose length is an exact number of chunks: the empty last
    // chunk is what proves nothing was cut.
    let env = kms
        .envelope_encrypt(&key, &data(2 * CHUNK), &none())
        .expect("encrypt");
    assert_eq!(env.len(), HEADER + 2 * SEALED_CHUNK + 16);
    assert_rejected(&kms, &env[..env.len() - 16], "empty last chunk removed");
    assert_rejected(&kms, &env[..HEADER + SEALED_CHUNK], "last chunks removed");
}

#[test]
fn reordering_and_dropping_chunks_is_detected() {
    let (kms, key) = setup();
    let env = kms
        .envelope_encrypt(&key, &data(3 * CHUNK + 100), &none())
        .expect("encrypt");
    let c: Vec<Vec<u8>> = (0..4).map(|i| env[chunk(&env, i)].to_vec()).collect();
    let build = |order: &[usize]| {
        let mut e = env[..HEADER].to_vec();
        for &i in order {
            e.extend_from_slice(&c[i]);
        }
        e
    };
    assert!(kms.envelope_decrypt(&build(&[0, 1, 2, 3]), &none()).is_ok());
    assert_rejected(&kms, &build(&[1, 0, 2, 3]), "swap 0 and 1");
    assert_rejected(&kms, &build(&[0, 2, 1, 3]), "swap 1 and 2");
    assert_rejected(&kms, &build(&[0, 1, 3]), "middle chunk dropped");
    assert_rejected(&kms, &build(&[0, 0, 2, 3]), "chunk repeated");
    assert_rejected(&kms, &build(&[0, 1, 2, 2, 3]), "chunk duplicated");
}

#[test]
fn chunks_from_another_envelope_are_detected() {
    let (kms, key) = setup();
    let pt = data(2 * CHUNK + 10);
    let a = kms.envelope_encrypt(&key, &pt, &none()).expect("a");
    let b = kms.envelope_encrypt(&key, &pt, &none()).expect("b");
    let mut mixed = a.clone();
    mixed[chunk(&a, 1)].copy_from_slice(&b[chunk(&b, 1)]);
    assert_rejected(&kms, &mixed, "a chunk of another envelope");
    let mut header_swapped = b[..HEADER].to_vec();
    header_swapped.extend_from_slice(&a[HEADER..]);
    assert_rejected(&kms, &header_swapped, "the header of another envelope");
}

#[test]
fn appended_data_is_detected() {
    let (kms, key) = setup();
    for n in [0, 10, CHUNK, CHUNK + 10] {
        let env = kms
            .envelope_encrypt(&key, &data(n), &none())
            .expect("encrypt");
        let last = env[env.len() - 16.min(env.len())..].to_vec();
        for extra in [
            vec![0u8],
            last.clone(),
            vec![7u8; SEALED_CHUNK],
            vec![1u8; 100],
        ] {
            let mut e = env.clone();
            e.extend_from_slice(&extra);
            assert_rejected(
                &kms,
                &e,
                &format!("size {n}, {} bytes appended", extra.len()),
            );
        }
        // A second envelope appended to the first.
        let mut e = env.clone();
        e.extend_from_slice(&env);
        assert_rejected(&kms, &e, "two envelopes back to back");
    }
}

#[test]
fn bit_flips_are_detected() {
    let (kms, key) = setup();
    let env = kms
        .envelope_encrypt(&key, &data(CHUNK + 50), &none())
        .expect("encrypt");
    // Every bit of the prefix, of the blob outside its KeyId/KeyVersionId,
    // and a spread of bits across both chunks.
    let blob_ids = 7 + 2..7 + 74;
    let mut bits: Vec<usize> = (0..HEADER * 8)
        .filter(|b| !blob_ids.contains(&(b / 8)))
        .collect();
    bits.extend((HEADER * 8..env.len() * 8).step_by(997));
    bits.push(env.len() * 8 - 1);
    for bit in bits {
        let mut t = env.clone();
        t[bit / 8] ^= 1 << (bit % 8);
        assert_rejected(&kms, &t, &format!("bit {bit}"));
    }
    // Inside the blob's KeyId the envelope names another key.
    let mut t = env.clone();
    t[7 + 2] ^= 1;
    assert_eq!(
        kms.envelope_decrypt(&t, &none()).unwrap_err().code(),
        "Forbidden.KeyNotFound"
    );
}

#[test]
fn an_envelope_from_another_store_names_its_key() {
    let (kms, key) = setup();
    let (other, _) = setup();
    let env = kms.envelope_encrypt(&key, b"x", &none()).expect("encrypt");
    assert_eq!(
        other.envelope_decrypt(&env, &none()).unwrap_err(),
        Error::KeyNotFound(key)
    );
}

#[test]
fn key_state_applies() {
    let (kms, key) = setup();
    let env = kms.envelope_encrypt(&key, b"x", &none()).expect("encrypt");
    kms.disable_key(&key).expect("disable");
    assert_eq!(
        kms.envelope_encrypt(&key, b"x", &none())
            .unwrap_err()
            .code(),
        "Rejected.Disabled"
    );
    assert_eq!(
        kms.envelope_decrypt(&env, &none()).unwrap_err().code(),
        "Rejected.Disabled"
    );
    assert_eq!(
        kms.envelope_encrypt("", b"x", &none()).unwrap_err(),
        Error::MissingParameter("KeyId")
    );
}

#[test]
fn io_failures_are_reported() {
    struct Broken;
    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::BrokenPipe, "reader broke"))
        }
    }
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::StorageFull, "writer broke"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let (kms, key) = setup();
    let e = kms
        .envelope_encrypt_stream(&key, &none(), Broken, Vec::new())
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Io {
                kind: io::ErrorKind::BrokenPipe,
                ..
            }
        ),
        "{e:?}"
    );
    let e = kms
        .envelope_encrypt_stream(&key, &none(), &b"data"[..], Broken)
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Io {
                kind: io::ErrorKind::StorageFull,
                ..
            }
        ),
        "{e:?}"
    );
    let env = kms
        .envelope_encrypt(&key, b"data", &none())
        .expect("encrypt");
    let e = kms
        .envelope_decrypt_stream(&none(), &env[..], Broken)
        .unwrap_err();
    assert!(matches!(e, Error::Io { .. }));
    assert_eq!(e.code(), "InternalFailure");
}

#[test]
fn only_authenticated_chunks_are_written() {
    let (kms, key) = setup();
    let pt = data(3 * CHUNK);
    let mut env = kms.envelope_encrypt(&key, &pt, &none()).expect("encrypt");
    let r = chunk(&env, 1);
    env[r.start + 5] ^= 0x80;
    let mut out = Vec::new();
    assert_eq!(
        kms.envelope_decrypt_stream(&none(), &env[..], &mut out)
            .unwrap_err(),
        Error::DecryptionFailed
    );
    assert_eq!(out, pt[..CHUNK], "only the first, authentic chunk came out");
}
