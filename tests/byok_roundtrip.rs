//! BYOK with Encrypt and Decrypt (SPEC sections 2, 4 and 8): material wrapped
//! outside the library (Python `cryptography`) encrypts and decrypts, and
//! ciphertexts made before DeleteKeyMaterial decrypt again once the same
//! material is re-imported.
//!
//! Pending: rename to `byok_roundtrip.rs` once Encrypt/Decrypt are in the
//! crate. The calls below assume
//! `kms.encrypt(key_id, plaintext_bytes, &EncryptionContext::default())`
//! returning a value with a `ciphertext_blob` text and
//! `kms.decrypt(&blob, &EncryptionContext::default())` returning a value with
//! `key_id`, `key_version_id` and the `plaintext` bytes; adjust the field names
//! to the real ones.

mod support;

use localkms::{EncryptionContext, Error, KeyState, WrappingAlgorithm};
use support::*;

const ALGS: [WrappingAlgorithm; 3] = [
    WrappingAlgorithm::RsaesPkcs1V15,
    WrappingAlgorithm::RsaesOaepSha1,
    WrappingAlgorithm::RsaesOaepSha256,
];

fn import_with_python(kms: &localkms::Kms, key_id: &str, alg: WrappingAlgorithm, material: &[u8]) {
    let p = params(kms, key_id, alg);
    let wrapped = wrap_with_python(&p, alg, material);
    kms.import_key_material(key_id, &wrapped, &p.import_token, None)
        .unwrap_or_else(|e| panic!("{alg}: {e}"));
}

#[test]
fn python_wrapped_material_encrypts_and_decrypts_with_every_algorithm() {
    let (kms, _clock) = kms();
    let ctx = EncryptionContext::default();
    for alg in ALGS {
        let id = external(&kms);
        import_with_python(&kms, &id, alg, &random_material());
        let version = kms.describe_key(&id).expect("describe").primary_key_version;
        let out = kms
            .encrypt(&id, b"bring your own key", &ctx)
            .expect("encrypt");
        let back = kms.decrypt(&out.ciphertext_blob, &ctx).expect("decrypt");
        assert_eq!(
            back.plaintext.expose_secret(),
            b"bring your own key",
            "{alg}"
        );
        assert_eq!(back.key_id, id);
        assert_eq!(back.key_version_id, version);
    }
}

#[test]
fn ciphertexts_decrypt_again_after_the_same_material_is_reimported() {
    let (kms, _clock) = kms();
    let ctx = EncryptionContext::default();
    let id = external(&kms);
    let material = random_material();
    import_with_python(&kms, &id, WrappingAlgorithm::RsaesOaepSha256, &material);
    let blob = kms
        .encrypt(&id, b"made before", &ctx)
        .expect("encrypt")
        .ciphertext_blob;

    kms.delete_key_material(&id).expect("delete key material");
    assert_eq!(
        kms.describe_key(&id).expect("d").key_state,
        KeyState::PendingImport
    );
    let e = kms.decrypt(&blob, &ctx).unwrap_err();
    assert_eq!(e.code(), "Rejected.PendingImport");
    let e = kms.encrypt(&id, b"x", &ctx).unwrap_err();
    assert_eq!(e.code(), "Rejected.PendingImport");

    // Other material is refused; the same material, wrapped another way,
    // brings the old ciphertext back.
    let p = params(&kms, &id, WrappingAlgorithm::RsaesPkcs1V15);
    let other = wrap_with_python(&p, WrappingAlgorithm::RsaesPkcs1V15, &random_material());
    assert_eq!(
        kms.import_key_material(&id, &other, &p.import_token, None)
            .unwrap_err(),
        Error::InvalidKeyMaterial
    );
    import_with_python(&kms, &id, WrappingAlgorithm::RsaesPkcs1V15, &material);
    let back = kms.decrypt(&blob, &ctx).expect("decrypts again");
    assert_eq!(back.plaintext.expose_secret(), b"made before");
}

#[test]
fn expired_material_stops_encryption_until_reimported() {
    let (kms, clock) = kms();
    let ctx = EncryptionContext::default();
    let id = external(&kms);
    let material = random_material();
    let p = params(&kms, &id, WrappingAlgorithm::RsaesOaepSha1);
    let wrapped = wrap_with_python(&p, WrappingAlgorithm::RsaesOaepSha1, &material);
    kms.import_key_material(&id, &wrapped, &p.import_token, Some(T0 + 60))
        .expect("import");
    let blob = kms
        .encrypt(&id, b"short-lived", &ctx)
        .expect("encrypt")
        .ciphertext_blob;
    clock.set(T0 + 60);
    assert_eq!(
        kms.decrypt(&blob, &ctx).unwrap_err().code(),
        "Rejected.PendingImport"
    );
    // The token was spent by the import (and revoked again by the expiry):
    // the same material comes back through a new one.
    assert_eq!(
        kms.import_key_material(&id, &wrapped, &p.import_token, None)
            .unwrap_err(),
        Error::InvalidImportToken
    );
    let p = params(&kms, &id, WrappingAlgorithm::RsaesOaepSha1);
    let wrapped = wrap_with_python(&p, WrappingAlgorithm::RsaesOaepSha1, &material);
    kms.import_key_material(&id, &wrapped, &p.import_token, None)
        .expect("new token, same material");
    assert_eq!(
        kms.decrypt(&blob, &ctx)
            .expect("decrypt")
            .plaintext
            .expose_secret(),
        b"short-lived"
    );
}
