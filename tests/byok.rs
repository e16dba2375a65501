//! BYOK: GetParametersForImport, ImportKeyMaterial, DeleteKeyMaterial
//! (SPEC sections 2 to 5 and 8).

mod support;

use base64::Engine as _;
use localkms::{
    CreateKeyRequest, Error, INVALID_KEY_MATERIAL_MESSAGE, KeyState, Kms, ManualClock,
    WrappingAlgorithm, WrappingKeySpec, format_timestamp,
};
use rsa::traits::PublicKeyParts as _;
use support::*;

const ALGS: [WrappingAlgorithm; 3] = [
    WrappingAlgorithm::RsaesPkcs1V15,
    WrappingAlgorithm::RsaesOaepSha1,
    WrappingAlgorithm::RsaesOaepSha256,
];

fn state(kms: &Kms, id: &str) -> KeyState {
    kms.describe_key(id).expect("describe").key_state
}

/// An `EXTERNAL` key with material, in state `s`.
fn external_in(kms: &Kms, s: KeyState) -> String {
    let id = external(kms);
    if s == KeyState::PendingImport {
        return id;
    }
    import(kms, &id, WrappingAlgorithm::RsaesOaepSha256, &[1; 32], None).expect("import");
    match s {
        KeyState::Disabled => kms.disable_key(&id).expect("disable"),
        KeyState::PendingDeletion => kms.schedule_key_deletion(&id, 7).expect("schedule"),
        _ => {}
    }
    assert_eq!(state(kms, &id), s);
    id
}

// ---- GetParametersForImport ------------------------------------------------

#[test]
fn parameters_are_a_fresh_rsa_2048_key_and_token_every_call() {
    let (kms, _clock) = kms();
    let id = external(&kms);
    let a = params(&kms, &id, WrappingAlgorithm::RsaesOaepSha256);
    let b = params(&kms, &id, WrappingAlgorithm::RsaesOaepSha256);
    assert_eq!(a.key_id, id);
    assert_eq!(a.token_expire_time, format_timestamp(T0 + 86_400));
    assert_eq!(a.token_expire_time, "2023-11-15T22:13:20Z");
    let key = public_key(&a);
    assert_eq!(key.size() * 8, 2048);
    assert_ne!(a.public_key, b.public_key);
    assert_ne!(a.import_token, b.import_token);
}

#[test]
fn parameters_and_delete_key_material_work_in_every_state() {
    let (kms, _clock) = kms();
    for s in KeyState::ALL {
        let id = external_in(&kms, *s);
        params(&kms, &id, WrappingAlgorithm::RsaesPkcs1V15);
        kms.delete_key_material(&id).expect("delete key material");
    }
}

#[test]
fn aliyun_keys_are_unsupported_origin_in_every_state() {
    let (kms, _clock) = kms();
    for s in [
        KeyState::Enabled,
        KeyState::Disabled,
        KeyState::PendingDeletion,
    ] {
        let id = kms.create_key(&Default::default()).expect("create").key_id;
        match s {
            KeyState::Disabled => kms.disable_key(&id).expect("disable"),
            KeyState::PendingDeletion => kms.schedule_key_deletion(&id, 7).expect("schedule"),
            _ => {}
        }
        let errors = [
            kms.get_parameters_for_import(
                &id,
                WrappingAlgorithm::RsaesOaepSha1,
                WrappingKeySpec::Rsa2048,
            )
            .map(|_| ()),
            kms.import_key_material(&id, "AAAA", "AAAA", None),
            kms.delete_key_material(&id),
        ];
        for e in errors {
            let e = e.expect_err("Aliyun_KMS key");
            assert_eq!(e.code(), "Unsupported.Origin", "{s}");
            assert_eq!(e.http_status(), 400);
        }
        assert_eq!(state(&kms, &id), s, "nothing changed");
    }
}

#[test]
fn key_id_is_not_alias_ok_and_must_exist() {
    let (kms, _clock) = kms();
    let alias_arn = format!(
        "acs:kms:{}:{}:alias/mine",
        localkms::DEFAULT_REGION_ID,
        localkms::DEFAULT_ACCOUNT_ID
    );
    for key in ["alias/mine", alias_arn.as_str()] {
        let calls = [
            kms.get_parameters_for_import(
                key,
                WrappingAlgorithm::RsaesOaepSha1,
                WrappingKeySpec::Rsa2048,
            )
            .map(|_| ()),
            kms.import_key_material(key, "AAAA", "AAAA", None),
            kms.delete_key_material(key),
        ];
        for e in calls {
            assert_eq!(e.expect_err("alias").code(), "Unsupported.Alias");
        }
    }
    let missing = "00000000-0000-4000-8000-000000000000";
    for key in [missing, "not-a-key"] {
        assert_eq!(
            kms.delete_key_material(key).unwrap_err().code(),
            "Forbidden.KeyNotFound"
        );
        assert_eq!(
            kms.import_key_material(key, "AAAA", "AAAA", None)
                .unwrap_err()
                .code(),
            "Forbidden.KeyNotFound"
        );
    }
    assert_eq!(
        kms.delete_key_material("").unwrap_err(),
        Error::MissingParameter("KeyId")
    );
    let id = external(&kms);
    assert_eq!(
        kms.import_key_material(&id, "", "AAAA", None).unwrap_err(),
        Error::MissingParameter("EncryptedKeyMaterial")
    );
    assert_eq!(
        kms.import_key_material(&id, "AAAA", "", None).unwrap_err(),
        Error::MissingParameter("ImportToken")
    );
}

// ---- ImportKeyMaterial and the state table ---------------------------------

#[test]
fn first_import_creates_the_single_version_and_enables_the_key() {
    let (kms, _clock) = kms();
    let id = external(&kms);
    let before = kms.describe_key(&id).expect("describe");
    assert_eq!(before.key_state, KeyState::PendingImport);
    assert_eq!(before.primary_key_version, "");
    for alg in ALGS {
        import(&kms, &id, alg, &[7; 32], None).expect("import");
    }
    let after = kms.describe_key(&id).expect("describe");
    assert_eq!(after.key_state, KeyState::Enabled);
    assert_eq!(after.primary_key_version.len(), 36);
    assert_eq!(after.material_expire_time, "");
}

#[test]
fn import_keeps_other_states_and_is_refused_when_pending_deletion() {
    let (kms, _clock) = kms();
    let id = external_in(&kms, KeyState::Disabled);
    import(
        &kms,
        &id,
        WrappingAlgorithm::RsaesOaepSha256,
        &[1; 32],
        None,
    )
    .expect("import");
    assert_eq!(state(&kms, &id), KeyState::Disabled);
    let id = external_in(&kms, KeyState::Enabled);
    import(
        &kms,
        &id,
        WrappingAlgorithm::RsaesOaepSha256,
        &[1; 32],
        None,
    )
    .expect("import");
    assert_eq!(state(&kms, &id), KeyState::Enabled);

    let id = external_in(&kms, KeyState::PendingDeletion);
    let e = import(
        &kms,
        &id,
        WrappingAlgorithm::RsaesOaepSha256,
        &[1; 32],
        None,
    )
    .unwrap_err();
    assert_eq!(e.code(), "Rejected.StateModifiedFailed");
    assert_eq!(e.http_status(), 409);
    // Also with material deleted: still refused, state kept.
    kms.delete_key_material(&id).expect("delete");
    let e = import(
        &kms,
        &id,
        WrappingAlgorithm::RsaesOaepSha256,
        &[1; 32],
        None,
    )
    .unwrap_err();
    assert_eq!(e.code(), "Rejected.StateModifiedFailed");
    assert_eq!(state(&kms, &id), KeyState::PendingDeletion);
}

// ---- DeleteKeyMaterial ------------------------------------------------------

#[test]
fn delete_key_material_goes_to_pending_import_unless_pending_deletion() {
    let (kms, clock) = kms();
    for (from, to) in [
        (KeyState::Enabled, KeyState::PendingImport),
        (KeyState::Disabled, KeyState::PendingImport),
        (KeyState::PendingImport, KeyState::PendingImport),
        (KeyState::PendingDeletion, KeyState::PendingDeletion),
    ] {
        let id = external_in(&kms, from);
        if from != KeyState::PendingImport && from != KeyState::PendingDeletion {
            import(
                &kms,
                &id,
                WrappingAlgorithm::RsaesOaepSha1,
                &[1; 32],
                Some(clock.now_unix() + 1000),
            )
            .expect("import");
            assert_ne!(kms.describe_key(&id).expect("d").material_expire_time, "");
        }
        let version = kms.describe_key(&id).expect("d").primary_key_version;
        kms.delete_key_material(&id).expect("delete");
        let m = kms.describe_key(&id).expect("describe");
        assert_eq!(m.key_state, to, "from {from}");
        assert_eq!(m.material_expire_time, "");
        assert_eq!(m.primary_key_version, version, "the version id is kept");
    }
}

#[test]
fn cancel_key_deletion_without_material_goes_to_pending_import() {
    let (kms, _clock) = kms();
    // Material deleted while pending deletion.
    let id = external_in(&kms, KeyState::PendingDeletion);
    kms.delete_key_material(&id).expect("delete");
    kms.cancel_key_deletion(&id).expect("cancel");
    assert_eq!(state(&kms, &id), KeyState::PendingImport);
    // With material: back to Enabled.
    let id = external_in(&kms, KeyState::PendingDeletion);
    kms.cancel_key_deletion(&id).expect("cancel");
    assert_eq!(state(&kms, &id), KeyState::Enabled);
    // Never imported.
    let id = external(&kms);
    kms.schedule_key_deletion(&id, 7).expect("schedule");
    kms.cancel_key_deletion(&id).expect("cancel");
    assert_eq!(state(&kms, &id), KeyState::PendingImport);
}

#[test]
fn reimport_after_delete_restores_the_same_version() {
    let (kms, _clock) = kms();
    let id = external(&kms);
    let material = random_material();
    import(&kms, &id, WrappingAlgorithm::RsaesPkcs1V15, &material, None).expect("import");
    let version = kms.describe_key(&id).expect("d").primary_key_version;
    kms.delete_key_material(&id).expect("delete");
    assert_eq!(state(&kms, &id), KeyState::PendingImport);
    import(&kms, &id, WrappingAlgorithm::RsaesOaepSha1, &material, None).expect("re-import");
    let m = kms.describe_key(&id).expect("d");
    assert_eq!(m.key_state, KeyState::Enabled);
    assert_eq!(m.primary_key_version, version);
}

// ---- Material rules ---------------------------------------------------------

#[test]
fn a_key_accepts_only_its_first_material_again() {
    let (kms, _clock) = kms();
    let id = external(&kms);
    let first = random_material();
    let mut other = first;
    other[31] ^= 1;
    import(&kms, &id, WrappingAlgorithm::RsaesOaepSha256, &first, None).expect("import");
    for alg in ALGS {
        assert_eq!(
            import(&kms, &id, alg, &other, None).unwrap_err(),
            Error::InvalidKeyMaterial
        );
        import(&kms, &id, alg, &first, None).expect("same material");
    }
    // Also once the material is deleted: the key remembers it.
    kms.delete_key_material(&id).expect("delete");
    assert_eq!(
        import(&kms, &id, WrappingAlgorithm::RsaesOaepSha1, &other, None).unwrap_err(),
        Error::InvalidKeyMaterial
    );
    assert_eq!(state(&kms, &id), KeyState::PendingImport);
}

#[test]
fn material_is_exactly_32_bytes() {
    let (kms, _clock) = kms();
    let id = external(&kms);
    for alg in ALGS {
        for len in [0usize, 1, 16, 31, 33, 64] {
            let e = import(&kms, &id, alg, &vec![5u8; len], None).unwrap_err();
            assert_eq!(e, Error::InvalidKeyMaterial, "{alg} {len}");
        }
    }
    assert_eq!(state(&kms, &id), KeyState::PendingImport);
    assert_eq!(kms.describe_key(&id).expect("d").primary_key_version, "");
}

/// Every way unwrapping can fail gives the same code, message and status,
/// and leaves the key as it was.
#[test]
fn every_unwrap_failure_is_indistinguishable() {
    let (kms, _clock) = kms();
    let fresh = external(&kms);
    let had = external(&kms);
    import(
        &kms,
        &had,
        WrappingAlgorithm::RsaesOaepSha256,
        &[9; 32],
        None,
    )
    .expect("import");

    let mut errors: Vec<(String, Error)> = Vec::new();
    let mut attempt = |what: &str,
                       key: &str,
                       alg: WrappingAlgorithm,
                       make: &dyn Fn(&rsa::PublicKey) -> Vec<u8>| {
        let p = params(&kms, key, alg);
        let wrapped = b64().encode(make(&public_key(&p)));
        let e = kms
            .import_key_material(key, &wrapped, &p.import_token, None)
            .expect_err(what);
        errors.push((what.to_owned(), e));
    };
    for key in [fresh.as_str(), had.as_str()] {
        let pk = WrappingAlgorithm::RsaesPkcs1V15;
        // Bad PKCS#1 v1.5 padding of a 32-byte message.
        attempt("block type 1", key, pk, &|k| {
            let mut em = pkcs1_em(k.size(), &[9; 32]);
            em[1] = 1;
            raw_encrypt(k, &em)
        });
        attempt("no separator", key, pk, &|k| {
            let mut em = pkcs1_em(k.size(), &[9; 32]);
            let sep = em.len() - 33;
            em[sep] = 0x55;
            raw_encrypt(k, &em)
        });
        attempt("short padding string", key, pk, &|k| {
            let mut em = pkcs1_em(k.size(), &[9; 32]);
            em[5] = 0;
            raw_encrypt(k, &em)
        });
        attempt("random pkcs1 ciphertext", key, pk, &|k| {
            let mut em = vec![0u8; k.size()];
            getrandom::fill(&mut em[1..]).expect("random");
            raw_encrypt(k, &em)
        });
        // Wrong length behind valid padding.
        for alg in ALGS {
            attempt("31 bytes", key, alg, &|k| wrap_raw(k, alg, &[9; 31]));
            attempt("33 bytes", key, alg, &|k| wrap_raw(k, alg, &[9; 33]));
        }
        // Bad OAEP: another hash, another scheme, random bytes.
        attempt(
            "oaep sha1 for sha256",
            key,
            WrappingAlgorithm::RsaesOaepSha256,
            &|k| wrap_raw(k, WrappingAlgorithm::RsaesOaepSha1, &[9; 32]),
        );
        attempt(
            "pkcs1 for oaep",
            key,
            WrappingAlgorithm::RsaesOaepSha1,
            &|k| wrap_raw(k, WrappingAlgorithm::RsaesPkcs1V15, &[9; 32]),
        );
        attempt("oaep for pkcs1", key, pk, &|k| {
            wrap_raw(k, WrappingAlgorithm::RsaesOaepSha256, &[9; 32])
        });
        attempt(
            "random oaep ciphertext",
            key,
            WrappingAlgorithm::RsaesOaepSha256,
            &|k| {
                let mut em = vec![0u8; k.size()];
                getrandom::fill(&mut em[1..]).expect("random");
                raw_encrypt(k, &em)
            },
        );
        // Wrong ciphertext sizes.
        attempt("short ciphertext", key, pk, &|k| {
            wrap_raw(k, pk, &[9; 32])[1..].to_vec()
        });
        attempt("long ciphertext", key, pk, &|k| {
            let mut c = wrap_raw(k, pk, &[9; 32]);
            c.insert(0, 0);
            c
        });
        attempt("one byte", key, pk, &|_| vec![1u8]);
    }
    // Different material for a key that had some.
    for alg in ALGS {
        attempt("different material", &had, alg, &|k| {
            wrap_raw(k, alg, &[8; 32])
        });
    }
    // Wrapped under another call's public key.
    let other = params(&kms, &fresh, WrappingAlgorithm::RsaesOaepSha256);
    let p = params(&kms, &fresh, WrappingAlgorithm::RsaesOaepSha256);
    let e = kms
        .import_key_material(
            &fresh,
            &wrap(&other, WrappingAlgorithm::RsaesOaepSha256, &[9; 32]),
            &p.import_token,
            None,
        )
        .expect_err("another key pair");
    errors.push(("another key pair".into(), e));
    // Not base64.
    let e = kms
        .import_key_material(&fresh, "%%%%", &p.import_token, None)
        .expect_err("not base64");
    errors.push(("not base64".into(), e));

    let (_, first) = &errors[0];
    for (what, e) in &errors {
        assert_eq!(e, first, "{what}");
        assert_eq!(e.code(), "InvalidKeyMaterial", "{what}");
        assert_eq!(e.http_status(), 400, "{what}");
        assert_eq!(e.to_string(), INVALID_KEY_MATERIAL_MESSAGE, "{what}");
    }
    assert_eq!(state(&kms, &fresh), KeyState::PendingImport);
    assert_eq!(kms.describe_key(&fresh).expect("d").primary_key_version, "");
    import(&kms, &had, WrappingAlgorithm::RsaesOaepSha1, &[9; 32], None)
        .expect("still its material");
}

// ---- The import token -------------------------------------------------------

#[test]
fn a_token_works_only_for_its_key() {
    let (kms, _clock) = kms();
    let a = external(&kms);
    let b = external(&kms);
    let p = params(&kms, &a, WrappingAlgorithm::RsaesOaepSha256);
    let wrapped = wrap(&p, WrappingAlgorithm::RsaesOaepSha256, &[3; 32]);
    assert_eq!(
        kms.import_key_material(&b, &wrapped, &p.import_token, None)
            .unwrap_err(),
        Error::InvalidImportToken
    );
    assert_eq!(state(&kms, &b), KeyState::PendingImport);
    kms.import_key_material(&a, &wrapped, &p.import_token, None)
        .expect("its own key");
}

#[test]
fn a_token_from_another_store_is_invalid() {
    let (kms, _clock) = kms();
    let (other, _clock2) = support::kms();
    let id = external(&kms);
    let foreign_id = external(&other);
    let p = params(&other, &foreign_id, WrappingAlgorithm::RsaesOaepSha256);
    let wrapped = wrap(&p, WrappingAlgorithm::RsaesOaepSha256, &[3; 32]);
    assert_eq!(
        kms.import_key_material(&id, &wrapped, &p.import_token, None)
            .unwrap_err(),
        Error::InvalidImportToken
    );
}

#[test]
fn a_changed_or_malformed_token_is_invalid() {
    let (kms, _clock) = kms();
    let id = external(&kms);
    let p = params(&kms, &id, WrappingAlgorithm::RsaesOaepSha1);
    let wrapped = wrap(&p, WrappingAlgorithm::RsaesOaepSha1, &[3; 32]);
    let bytes = b64().decode(&p.import_token).expect("base64 token");
    let try_token = |t: &str| kms.import_key_material(&id, &wrapped, t, None);
    for bit in 0..bytes.len() * 8 {
        let mut t = bytes.clone();
        t[bit / 8] ^= 1 << (bit % 8);
        assert_eq!(
            try_token(&b64().encode(&t)).unwrap_err(),
            Error::InvalidImportToken,
            "bit {bit}"
        );
    }
    for len in [1, 17, bytes.len() - 1] {
        assert_eq!(
            try_token(&b64().encode(&bytes[..len])).unwrap_err(),
            Error::InvalidImportToken
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    for bad in [
        b64().encode(&longer),
        "not a token".to_owned(),
        format!("{} ", p.import_token),
        "A".repeat(100_000),
    ] {
        assert_eq!(try_token(&bad).unwrap_err(), Error::InvalidImportToken);
    }
    let e = try_token("AAAA").unwrap_err();
    assert_eq!((e.code(), e.http_status()), ("InvalidImportToken", 400));
    assert!(!e.to_string().contains("AAAA"), "no token in messages");
    assert_eq!(state(&kms, &id), KeyState::PendingImport);
    try_token(&p.import_token).expect("the real token");
}

#[test]
fn a_token_expires_after_24_hours_and_works_until_then() {
    let (kms, clock) = kms();
    let id = external(&kms);
    let p = params(&kms, &id, WrappingAlgorithm::RsaesOaepSha256);
    let wrapped = wrap(&p, WrappingAlgorithm::RsaesOaepSha256, &[4; 32]);
    clock.advance(86_399);
    kms.import_key_material(&id, &wrapped, &p.import_token, None)
        .expect("still valid");
    // Until revoked: the import spent it (tests/import_tokens.rs has more).
    assert_eq!(
        kms.import_key_material(&id, &wrapped, &p.import_token, None)
            .unwrap_err(),
        Error::InvalidImportToken
    );
    // An unspent token past its expiry.
    let p = params(&kms, &id, WrappingAlgorithm::RsaesOaepSha256);
    let wrapped = wrap(&p, WrappingAlgorithm::RsaesOaepSha256, &[4; 32]);
    clock.advance(86_400);
    let e = kms
        .import_key_material(&id, &wrapped, &p.import_token, None)
        .unwrap_err();
    assert_eq!(e, Error::ExpiredImportToken);
    assert_eq!((e.code(), e.http_status()), ("ExpiredImportToken", 400));
    // An expired token for another key is still an invalid one.
    let other = external(&kms);
    assert_eq!(
        kms.import_key_material(&other, &wrapped, &p.import_token, None)
            .unwrap_err(),
        Error::InvalidImportToken
    );
}

#[test]
fn a_token_and_the_material_rule_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(T0);
    let open = || {
        Kms::builder()
            .sled(dir.path())
            .root_key_bytes(&[5u8; 32])
            .clock(clock.clone())
            .build()
            .expect("open")
    };
    let kms = open();
    let id = external(&kms);
    let p = params(&kms, &id, WrappingAlgorithm::RsaesPkcs1V15);
    let material = random_material();
    let wrapped = wrap(&p, WrappingAlgorithm::RsaesPkcs1V15, &material);
    drop(kms);

    let kms = open();
    kms.import_key_material(&id, &wrapped, &p.import_token, None)
        .expect("token valid after reopen");
    let version = kms.describe_key(&id).expect("d").primary_key_version;
    kms.delete_key_material(&id).expect("delete");
    drop(kms);

    let kms = open();
    assert_eq!(
        import(&kms, &id, WrappingAlgorithm::RsaesOaepSha1, &[0; 32], None).unwrap_err(),
        Error::InvalidKeyMaterial
    );
    import(&kms, &id, WrappingAlgorithm::RsaesOaepSha1, &material, None).expect("same material");
    assert_eq!(
        kms.describe_key(&id).expect("d").primary_key_version,
        version
    );
}

// ---- KeyMaterialExpireUnix ----------------------------------------------------

#[test]
fn key_material_expire_unix_must_be_zero_or_in_the_future() {
    let (kms, clock) = kms();
    let id = external(&kms);
    let now = clock.now_unix();
    for bad in [now - 1, now, -1, i64::MIN] {
        let e = import(
            &kms,
            &id,
            WrappingAlgorithm::RsaesOaepSha1,
            &[1; 32],
            Some(bad),
        )
        .unwrap_err();
        assert_eq!(e.code(), "InvalidParameter", "{bad}");
        assert!(e.to_string().contains("KeyMaterialExpireUnix"), "{e}");
    }
    assert_eq!(state(&kms, &id), KeyState::PendingImport);
    import(
        &kms,
        &id,
        WrappingAlgorithm::RsaesOaepSha1,
        &[1; 32],
        Some(0),
    )
    .expect("0 = never");
    assert_eq!(kms.describe_key(&id).expect("d").material_expire_time, "");
    import(
        &kms,
        &id,
        WrappingAlgorithm::RsaesOaepSha1,
        &[1; 32],
        Some(now + 3600),
    )
    .expect("future");
    assert_eq!(
        kms.describe_key(&id).expect("d").material_expire_time,
        format_timestamp(now + 3600)
    );
    // A re-import without an expiry makes the material permanent again.
    import(&kms, &id, WrappingAlgorithm::RsaesOaepSha1, &[1; 32], None).expect("never");
    assert_eq!(kms.describe_key(&id).expect("d").material_expire_time, "");
    clock.advance(7200);
    assert_eq!(state(&kms, &id), KeyState::Enabled);
}

#[test]
fn material_expiry_acts_as_delete_key_material() {
    let (kms, clock) = kms();
    let id = external(&kms);
    let material = random_material();
    let at = clock.now_unix() + 1000;
    import(
        &kms,
        &id,
        WrappingAlgorithm::RsaesOaepSha256,
        &material,
        Some(at),
    )
    .expect("import");
    let version = kms.describe_key(&id).expect("d").primary_key_version;
    clock.set(at - 1);
    assert_eq!(state(&kms, &id), KeyState::Enabled);
    clock.set(at);
    let m = kms.describe_key(&id).expect("d");
    assert_eq!(m.key_state, KeyState::PendingImport);
    assert_eq!(m.material_expire_time, "");
    assert_eq!(m.primary_key_version, version);
    // Only the same material comes back, to the same version.
    assert_eq!(
        import(
            &kms,
            &id,
            WrappingAlgorithm::RsaesOaepSha256,
            &[0; 32],
            None
        )
        .unwrap_err(),
        Error::InvalidKeyMaterial
    );
    import(
        &kms,
        &id,
        WrappingAlgorithm::RsaesOaepSha256,
        &material,
        None,
    )
    .expect("again");
    let m = kms.describe_key(&id).expect("d");
    assert_eq!(m.key_state, KeyState::Enabled);
    assert_eq!(m.primary_key_version, version);
}

#[test]
fn material_expiry_is_applied_before_a_write() {
    let (kms, clock) = kms();
    let id = external(&kms);
    let at = clock.now_unix() + 10;
    import(
        &kms,
        &id,
        WrappingAlgorithm::RsaesOaepSha256,
        &[2; 32],
        Some(at),
    )
    .expect("import");
    clock.set(at + 5);
    // No read in between: the write path must see the key as PendingImport.
    let e = kms.disable_key(&id).unwrap_err();
    assert_eq!(e.code(), "Rejected.StateModifiedFailed");
    assert_eq!(state(&kms, &id), KeyState::PendingImport);
}

#[test]
fn material_expiry_in_other_states() {
    let (kms, clock) = kms();
    let disabled = external(&kms);
    let pending = external(&kms);
    let at = clock.now_unix() + 10;
    for id in [&disabled, &pending] {
        import(
            &kms,
            id,
            WrappingAlgorithm::RsaesOaepSha1,
            &[2; 32],
            Some(at),
        )
        .expect("import");
    }
    kms.disable_key(&disabled).expect("disable");
    kms.schedule_key_deletion(&pending, 7).expect("schedule");
    clock.set(at);
    assert_eq!(state(&kms, &disabled), KeyState::PendingImport);
    let m = kms.describe_key(&pending).expect("d");
    assert_eq!(m.key_state, KeyState::PendingDeletion);
    assert_eq!(m.material_expire_time, "");
    kms.cancel_key_deletion(&pending).expect("cancel");
    assert_eq!(state(&kms, &pending), KeyState::PendingImport);
}

#[test]
fn deleted_keys_stay_deleted_with_their_tokens() {
    let (kms, clock) = kms();
    let id = external(&kms);
    let p = params(&kms, &id, WrappingAlgorithm::RsaesOaepSha256);
    kms.schedule_key_deletion(&id, 7).expect("schedule");
    clock.advance(7 * 86_400);
    let wrapped = wrap(&p, WrappingAlgorithm::RsaesOaepSha256, &[1; 32]);
    assert_eq!(
        kms.import_key_material(&id, &wrapped, &p.import_token, None)
            .unwrap_err()
            .code(),
        "Forbidden.KeyNotFound"
    );
}

#[test]
fn external_keys_are_created_pending_import() {
    let (kms, _clock) = kms();
    let m = kms
        .create_key(&CreateKeyRequest::external())
        .expect("create");
    assert_eq!(m.key_state, KeyState::PendingImport);
    assert_eq!(m.primary_key_version, "");
    assert_eq!(m.origin.as_str(), "EXTERNAL");
}

// ---- Wrapping outside the library: Python `cryptography` --------------------

/// The user's flow with an independent RSA implementation: wrap 32 random
/// bytes with each algorithm in Python and import them. Fails (does not skip)
/// when `$LOCALKMS_PYTHON` (default `python3`) cannot run the wrapper.
#[test]
fn python_wrapped_material_imports_with_every_algorithm() {
    let (kms, _clock) = kms();
    for alg in ALGS {
        let id = external(&kms);
        let material = random_material();
        let p = params(&kms, &id, alg);
        let wrapped = wrap_with_python(&p, alg, &material);
        kms.import_key_material(&id, &wrapped, &p.import_token, None)
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(state(&kms, &id), KeyState::Enabled, "{alg}");

        // The key now holds exactly these bytes: one flipped bit is not
        // taken, nor is the wrong length, and the same material is (last,
        // since a successful import spends the token).
        let p = params(&kms, &id, alg);
        let mut other = material;
        other[0] ^= 0x80;
        for bad in [&other[..], &material[..31]] {
            let wrapped = wrap_with_python(&p, alg, bad);
            assert_eq!(
                kms.import_key_material(&id, &wrapped, &p.import_token, None)
                    .unwrap_err(),
                Error::InvalidKeyMaterial,
                "{alg}"
            );
        }
        let again = wrap_with_python(&p, alg, &material);
        kms.import_key_material(&id, &again, &p.import_token, None)
            .unwrap_or_else(|e| panic!("{alg} again: {e}"));
    }
}

#[test]
fn wrapping_enums_take_exact_wire_strings() {
    for (s, a) in [
        ("RSAES_PKCS1_V1_5", WrappingAlgorithm::RsaesPkcs1V15),
        ("RSAES_OAEP_SHA_1", WrappingAlgorithm::RsaesOaepSha1),
        ("RSAES_OAEP_SHA_256", WrappingAlgorithm::RsaesOaepSha256),
    ] {
        assert_eq!(s.parse::<WrappingAlgorithm>(), Ok(a));
        assert_eq!(a.to_string(), s);
    }
    assert_eq!(
        "RSA_2048".parse::<WrappingKeySpec>(),
        Ok(WrappingKeySpec::Rsa2048)
    );
    for bad in ["rsaes_oaep_sha_256", "RSAES_OAEP_SHA256", ""] {
        let e = bad.parse::<WrappingAlgorithm>().unwrap_err();
        assert_eq!(localkms::Error::from(e).code(), "InvalidParameter");
        assert!(e.to_string().contains("WrappingAlgorithm"), "{e}");
    }
    let e = "RSA_4096".parse::<WrappingKeySpec>().unwrap_err();
    assert_eq!(localkms::Error::from(e).code(), "InvalidParameter");
    assert!(e.to_string().contains("WrappingKeySpec"), "{e}");
}
