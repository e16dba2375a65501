//! The sealed record format (docs/FORMAT.md): a golden vector computed
//! independently, and records copied over one another in a real store.
#![cfg(any(feature = "test-util", feature = "fuzzing"))]

use localkms::internal::{insecure_open_record, insecure_seal_record_with_nonce};
use localkms::store::{Batch, Keystore, Scan, SledKeystore};
use localkms::{EncryptionContext, Kms};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

fn field<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
        .unwrap_or_else(|| panic!("field {name}"))
}

#[test]
fn golden_vector_matches_and_every_change_fails() {
    let text = include_str!("data/sealed-record-v1.txt");
    let root = hex(field(text, "root_key"));
    let (ns, id) = (field(text, "ns"), field(text, "id").as_bytes());
    let plaintext = hex(field(text, "plaintext"));
    let nonce: [u8; 24] = hex(field(text, "nonce")).try_into().expect("24-byte nonce");
    let expect = hex(field(text, "expect"));
    let sealed = insecure_seal_record_with_nonce(&root, ns, id, &plaintext, nonce).expect("seal");
    assert_eq!(sealed, expect);
    assert_eq!(
        insecure_open_record(&root, ns, id, &expect).expect("root"),
        Some(plaintext)
    );
    for i in 0..expect.len() {
        let mut t = expect.clone();
        t[i] ^= 0x01;
        assert_eq!(
            insecure_open_record(&root, ns, id, &t).expect("root"),
            None,
            "byte {i}"
        );
    }
    assert_eq!(
        insecure_open_record(&root, ns, b"other", &expect).expect("root"),
        None
    );
    assert_eq!(
        insecure_open_record(&root, "token", id, &expect).expect("root"),
        None
    );
}

#[test]
fn material_copied_over_another_key_is_detected_when_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = || {
        Kms::builder()
            .sled(dir.path())
            .root_key_bytes(&[4; 32])
            .build()
            .expect("open")
    };
    let ctx = EncryptionContext::default();
    let (a, b, blob_a, blob_b) = {
        let kms = open();
        let a = kms.create_key(&Default::default()).expect("a").key_id;
        let b = kms.create_key(&Default::default()).expect("b").key_id;
        let blob_a = kms.encrypt(&a, b"for a", &ctx).expect("a").ciphertext_blob;
        let blob_b = kms.encrypt(&b, b"for b", &ctx).expect("b").ciphertext_blob;
        (a, b, blob_a, blob_b)
    };
    {
        let raw = SledKeystore::open(dir.path().join("db")).expect("raw");
        let material = |key: &str| {
            let found = raw
                .scan("material", Scan::prefix(format!("{key}/").as_bytes()))
                .expect("scan");
            assert_eq!(found.len(), 1);
            found.into_iter().next().expect("one record")
        };
        let (_, a_value) = material(&a);
        let (b_id, b_value) = material(&b);
        assert_ne!(a_value, b_value);
        let mut batch = Batch::new();
        batch.put("material", b_id, a_value);
        raw.apply(batch).expect("apply");
        raw.flush().expect("flush");
    }
    let kms = open();
    // Key a is untouched; key b's material no longer opens: a clear error,
    // never key a's material under key b's name.
    assert_eq!(
        kms.decrypt(&blob_a, &ctx)
            .expect("a")
            .plaintext
            .expose_secret(),
        b"for a"
    );
    for err in [
        kms.encrypt(&b, b"x", &ctx).map(|_| ()).unwrap_err(),
        kms.decrypt(&blob_b, &ctx).map(|_| ()).unwrap_err(),
    ] {
        assert_eq!(err.code(), "InternalFailure", "{err:?}");
        assert!(err.to_string().contains("does not open"), "{err}");
    }
}
