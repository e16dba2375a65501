//! Import tokens are revoked and bounded (SPEC section 8, revised): a
//! successful ImportKeyMaterial and a DeleteKeyMaterial (or material expiry,
//! which acts as one) revoke every outstanding token of the key; a key holds
//! at most 10 live tokens and an 11th GetParametersForImport evicts the
//! oldest. A key with versions but no material fingerprint refuses import.

mod support;

use localkms::store::{Batch, Keystore, Scan, SledKeystore};
use localkms::{
    EncryptionContext, Error, ImportParameters, KeyState, Kms, ManualClock, WrappingAlgorithm,
};
use support::*;

const ALG: WrappingAlgorithm = WrappingAlgorithm::RsaesOaepSha256;

fn state(kms: &Kms, id: &str) -> KeyState {
    kms.describe_key(id).expect("describe").key_state
}

fn import_with(kms: &Kms, id: &str, p: &ImportParameters, material: &[u8]) -> localkms::Result<()> {
    kms.import_key_material(id, &wrap(p, ALG, material), &p.import_token, None)
}

/// A token is live when ImportKeyMaterial gets past it: with 31 bytes of
/// material the answer is then `InvalidKeyMaterial`, and nothing changes.
fn is_live(kms: &Kms, id: &str, p: &ImportParameters) -> bool {
    match import_with(kms, id, p, &[7; 31]) {
        Err(Error::InvalidKeyMaterial) => true,
        Err(Error::InvalidImportToken) => false,
        other => panic!("unexpected answer {other:?}"),
    }
}

// ---- Revocation --------------------------------------------------------------

#[test]
fn a_token_from_before_delete_key_material_cannot_bring_the_material_back() {
    let (kms, _clock) = kms();
    let id = external(&kms);
    let material = random_material();
    import(&kms, &id, ALG, &material, None).expect("import");
    let ctx = EncryptionContext::default();
    let blob = kms
        .encrypt(&id, b"before", &ctx)
        .expect("encrypt")
        .ciphertext_blob;
    // A token taken while the material is in, kept for later.
    let kept = params(&kms, &id, ALG);
    assert!(is_live(&kms, &id, &kept));

    kms.delete_key_material(&id).expect("delete");
    let e = import_with(&kms, &id, &kept, &material).unwrap_err();
    assert_eq!(e, Error::InvalidImportToken);
    assert_eq!((e.code(), e.http_status()), ("InvalidImportToken", 400));
    assert_eq!(state(&kms, &id), KeyState::PendingImport);
    assert_eq!(
        kms.decrypt(&blob, &ctx).unwrap_err().code(),
        "Rejected.PendingImport"
    );

    // Re-importing takes a new GetParametersForImport.
    let fresh = params(&kms, &id, ALG);
    import_with(&kms, &id, &fresh, &material).expect("fresh token");
    assert_eq!(
        kms.decrypt(&blob, &ctx)
            .expect("decrypts again")
            .plaintext
            .expose_secret(),
        b"before"
    );
}

#[test]
fn delete_key_material_revokes_tokens_of_a_key_that_never_had_material() {
    let (kms, _clock) = kms();
    let id = external(&kms);
    let kept = params(&kms, &id, ALG);
    kms.delete_key_material(&id).expect("delete");
    assert_eq!(
        import_with(&kms, &id, &kept, &[1; 32]).unwrap_err(),
        Error::InvalidImportToken
    );
    assert_eq!(state(&kms, &id), KeyState::PendingImport);
}

#[test]
fn a_token_is_spent_by_a_successful_import_and_so_are_the_others() {
    let (kms, _clock) = kms();
    let id = external(&kms);
    let material = random_material();
    let used = params(&kms, &id, ALG);
    let other = params(&kms, &id, WrappingAlgorithm::RsaesPkcs1V15);
    import_with(&kms, &id, &used, &material).expect("import");
    assert_eq!(
        import_with(&kms, &id, &used, &material).unwrap_err(),
        Error::InvalidImportToken,
        "the same token again"
    );
    assert_eq!(
        kms.import_key_material(
            &id,
            &wrap(&other, WrappingAlgorithm::RsaesPkcs1V15, &material),
            &other.import_token,
            None
        )
        .unwrap_err(),
        Error::InvalidImportToken,
        "a token issued before the import"
    );
    // Then, after DeleteKeyMaterial, the spent token still cannot restore it.
    kms.delete_key_material(&id).expect("delete");
    assert_eq!(
        import_with(&kms, &id, &used, &material).unwrap_err(),
        Error::InvalidImportToken
    );
    assert_eq!(state(&kms, &id), KeyState::PendingImport);
}

#[test]
fn a_failed_import_does_not_spend_the_token() {
    let (kms, _clock) = kms();
    let id = external(&kms);
    let material = random_material();
    import(&kms, &id, ALG, &material, None).expect("import");
    let p = params(&kms, &id, ALG);
    let mut other = material;
    other[0] ^= 1;
    assert_eq!(
        import_with(&kms, &id, &p, &other).unwrap_err(),
        Error::InvalidKeyMaterial
    );
    import_with(&kms, &id, &p, &material).expect("the token still works");
}

#[test]
fn tokens_issued_to_other_keys_are_not_revoked() {
    let (kms, _clock) = kms();
    let a = external(&kms);
    let b = external(&kms);
    let pb = params(&kms, &b, ALG);
    import(&kms, &a, ALG, &[1; 32], None).expect("import a");
    kms.delete_key_material(&a).expect("delete a");
    import_with(&kms, &b, &pb, &[2; 32]).expect("b's token is untouched");
}

#[test]
fn material_expiry_revokes_the_tokens_issued_before_it() {
    let (kms, clock) = kms();
    let id = external(&kms);
    let material = random_material();
    let at = T0 + 1000;
    import(&kms, &id, ALG, &material, Some(at)).expect("import");
    let kept = params(&kms, &id, ALG);
    clock.set(at + 1);
    assert_eq!(
        import_with(&kms, &id, &kept, &material).unwrap_err(),
        Error::InvalidImportToken
    );
    assert_eq!(state(&kms, &id), KeyState::PendingImport);
    // A token issued after the expiry works.
    let fresh = params(&kms, &id, ALG);
    import_with(&kms, &id, &fresh, &material).expect("fresh token");
    assert_eq!(state(&kms, &id), KeyState::Enabled);
}

#[test]
fn revocation_survives_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(T0);
    let open = || {
        Kms::builder()
            .sled(dir.path())
            .root_key_bytes(&[9u8; 32])
            .clock(clock.clone())
            .build()
            .expect("open")
    };
    let material = random_material();
    let (id, kept) = {
        let kms = open();
        let id = external(&kms);
        import(&kms, &id, ALG, &material, None).expect("import");
        let kept = params(&kms, &id, ALG);
        kms.delete_key_material(&id).expect("delete");
        (id, kept)
    };
    let kms = open();
    assert_eq!(
        import_with(&kms, &id, &kept, &material).unwrap_err(),
        Error::InvalidImportToken
    );
    assert_eq!(state(&kms, &id), KeyState::PendingImport);
}

// ---- At most 10 live tokens per key ----------------------------------------------

#[test]
fn an_eleventh_token_evicts_the_first_and_the_other_ten_work() {
    let (kms, _clock) = kms();
    let id = external(&kms);
    // All in the same second: the order of issue decides, not the expiry.
    let tokens: Vec<_> = (0..11).map(|_| params(&kms, &id, ALG)).collect();
    let e = import_with(&kms, &id, &tokens[0], &[1; 32]).unwrap_err();
    assert_eq!(e, Error::InvalidImportToken);
    assert_eq!(e.code(), "InvalidImportToken");
    for (i, p) in tokens.iter().enumerate().skip(1) {
        assert!(is_live(&kms, &id, p), "token {i}");
    }
    assert_eq!(state(&kms, &id), KeyState::PendingImport);
    // Any of the ten imports.
    import_with(&kms, &id, &tokens[10], &[1; 32]).expect("the newest imports");
    assert_eq!(state(&kms, &id), KeyState::Enabled);
}

#[test]
fn eviction_goes_oldest_first_over_time() {
    let (kms, clock) = kms();
    let id = external(&kms);
    let mut tokens = Vec::new();
    for _ in 0..10 {
        tokens.push(params(&kms, &id, ALG));
        clock.advance(60);
    }
    // Three more evict the first three, in order.
    for n in 1..=3 {
        tokens.push(params(&kms, &id, ALG));
        for (i, p) in tokens.iter().enumerate() {
            assert_eq!(is_live(&kms, &id, p), i >= n, "after {n} more, token {i}");
        }
    }
    // Another key's tokens are counted apart.
    let other = external(&kms);
    let po = params(&kms, &other, ALG);
    assert!(is_live(&kms, &other, &po));
    assert!(is_live(&kms, &id, &tokens[3]));
}

#[test]
fn expired_tokens_do_not_count_against_the_ten() {
    let (kms, clock) = kms();
    let id = external(&kms);
    for _ in 0..10 {
        params(&kms, &id, ALG);
    }
    clock.advance(86_400);
    let fresh: Vec<_> = (0..10).map(|_| params(&kms, &id, ALG)).collect();
    for (i, p) in fresh.iter().enumerate() {
        assert!(is_live(&kms, &id, p), "token {i}");
    }
}

// ---- A key with versions but no fingerprint --------------------------------

#[test]
fn a_key_with_versions_but_no_fingerprint_refuses_import() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = || {
        Kms::builder()
            .sled(dir.path())
            .root_key_bytes(&[6u8; 32])
            .clock(ManualClock::new(T0))
            .build()
            .expect("open")
    };
    let ctx = EncryptionContext::default();
    let (id, blob) = {
        let kms = open();
        let id = kms.create_key(&Default::default()).expect("create").key_id;
        let blob = kms
            .encrypt(&id, b"own material", &ctx)
            .expect("encrypt")
            .ciphertext_blob;
        (id, blob)
    };
    // Behind the library's back: the review's attack was to change the clear
    // record's origin to EXTERNAL, so that ImportKeyMaterial would replace
    // the material with known bytes. The record is sealed now: its origin
    // cannot be read or edited, and a changed record does not open.
    {
        let raw = SledKeystore::open(dir.path().join("db")).expect("raw store");
        let (key, mut value) = raw
            .scan("key", Scan::prefix(id.as_bytes()))
            .expect("scan")
            .into_iter()
            .next()
            .expect("the key record");
        let needle = br#""origin":"#;
        assert!(
            !value.windows(needle.len()).any(|w| w == needle),
            "the key record is in clear"
        );
        let last = value.len() - 1;
        value[last] ^= 1;
        let mut batch = Batch::new();
        batch.put("key", key, value);
        raw.apply(batch).expect("apply");
        raw.flush().expect("flush");
    }
    let kms = open();
    let e = kms
        .get_parameters_for_import(&id, ALG, localkms::WrappingKeySpec::Rsa2048)
        .unwrap_err();
    assert!(matches!(e, Error::CorruptStore(_)), "{e:?}");
    let e = kms.decrypt(&blob, &ctx).unwrap_err();
    assert!(matches!(e, Error::CorruptStore(_)), "{e:?}");
}
