//! Asymmetric, HMAC and SM4 keys through the service (SPEC section 11): key
//! specs and usages at CreateKey, every new operation in every state of the
//! state table, wrong usage, wrong algorithm, wrong version, bad digests,
//! tampering, SM4 blobs, rotation rules, the `signature` traits and the
//! wire actions.

use localkms::asym::{PublicKey, sha256, sm2_digest};
use localkms::{Algorithm, CreateKeyRequest, Error, KeySpec, KeyUsage, Kms, ManualClock, wire};

fn kms() -> (Kms, ManualClock) {
    let clock = ManualClock::new(1_700_000_000);
    let kms = Kms::builder()
        .in_memory()
        .clock(clock.clone())
        .build()
        .expect("kms");
    (kms, clock)
}

fn key(kms: &Kms, spec: KeySpec, usage: Option<KeyUsage>) -> (String, String) {
    let m = kms
        .create_key(&CreateKeyRequest {
            key_spec: spec,
            key_usage: usage,
            ..Default::default()
        })
        .expect("create key");
    assert_eq!(m.key_spec, spec);
    (m.key_id, m.primary_key_version)
}

fn param(e: &Error) -> &'static str {
    match e {
        Error::InvalidParameter { param, .. } => param,
        other => panic!("not InvalidParameter: {other:?}"),
    }
}

const SIGNERS: &[(KeySpec, Algorithm)] = &[
    (KeySpec::EcP256, Algorithm::EcdsaSha256),
    (KeySpec::EcP256K, Algorithm::EcdsaSha256),
    (KeySpec::EcSm2, Algorithm::Sm2Dsa),
    (KeySpec::Rsa2048, Algorithm::RsaPkcs1Sha256),
    (KeySpec::Rsa2048, Algorithm::RsaPssSha256),
];

#[test]
fn create_key_specs_usages_and_defaults() {
    let (kms, _) = kms();
    for (spec, usage) in [
        (KeySpec::Aes256, KeyUsage::EncryptDecrypt),
        (KeySpec::Sm4, KeyUsage::EncryptDecrypt),
        (KeySpec::EcP256, KeyUsage::SignVerify),
        (KeySpec::EcP256K, KeyUsage::SignVerify),
        (KeySpec::EcSm2, KeyUsage::SignVerify),
        (KeySpec::Rsa2048, KeyUsage::SignVerify),
        (KeySpec::HmacSha224, KeyUsage::GenerateVerifyMac),
        (KeySpec::HmacSha256, KeyUsage::GenerateVerifyMac),
        (KeySpec::HmacSha384, KeyUsage::GenerateVerifyMac),
        (KeySpec::HmacSha512, KeyUsage::GenerateVerifyMac),
        (KeySpec::HmacSm3, KeyUsage::GenerateVerifyMac),
    ] {
        let (id, _) = key(&kms, spec, None);
        let m = kms.describe_key(&id).expect("describe");
        assert_eq!((m.key_spec, m.key_usage), (spec, usage), "{spec}");
        assert_eq!(
            kms.list_key_versions(&id, Default::default())
                .unwrap()
                .items
                .len(),
            1
        );
    }
    let (id, _) = key(&kms, KeySpec::EcSm2, Some(KeyUsage::EncryptDecrypt));
    assert_eq!(
        kms.describe_key(&id).unwrap().key_usage,
        KeyUsage::EncryptDecrypt
    );
    for (spec, usage) in [
        (KeySpec::EcP256, KeyUsage::EncryptDecrypt),
        (KeySpec::EcP256K, KeyUsage::GenerateVerifyMac),
        (KeySpec::Aes256, KeyUsage::SignVerify),
        (KeySpec::Sm4, KeyUsage::GenerateVerifyMac),
        (KeySpec::HmacSha256, KeyUsage::SignVerify),
        (KeySpec::Rsa2048, KeyUsage::GenerateVerifyMac),
    ] {
        let e = kms
            .create_key(&CreateKeyRequest {
                key_spec: spec,
                key_usage: Some(usage),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(param(&e), "KeyUsage", "{spec} {usage}");
    }
    let e = kms
        .create_key(&CreateKeyRequest {
            key_spec: KeySpec::Sm4,
            ..CreateKeyRequest::external()
        })
        .unwrap_err();
    assert_eq!(param(&e), "Origin");
    // Automatic rotation is ignored for key pairs (vendor: valid only for
    // keys that rotate), kept for SM4.
    let ec = kms
        .create_key(&CreateKeyRequest {
            key_spec: KeySpec::EcP256,
            enable_automatic_rotation: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(ec.automatic_rotation, "Disabled");
    let sm4 = kms
        .create_key(&CreateKeyRequest {
            key_spec: KeySpec::Sm4,
            enable_automatic_rotation: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(sm4.automatic_rotation, "Enabled");
}

#[test]
fn sign_and_verify_every_signing_spec() {
    let (kms, _) = kms();
    for &(spec, alg) in SIGNERS {
        let (id, v1) = key(&kms, spec, None);
        let pem = kms.get_public_key(&id, &v1).unwrap().public_key;
        let public = PublicKey::from_pem(spec.as_str().parse().unwrap(), &pem).unwrap();
        let digest = if alg == Algorithm::Sm2Dsa {
            sm2_digest(&public, b"message").unwrap()
        } else {
            sha256(b"message")
        };
        let sig = kms.asymmetric_sign(&id, &v1, alg, &digest).unwrap();
        assert_eq!(
            (sig.key_id.as_str(), sig.key_version_id.as_str()),
            (id.as_str(), v1.as_str())
        );
        // An independent check of the same bytes with the primitives' verifier.
        assert!(
            public.verify_digest(alg, &digest, &sig.value).unwrap(),
            "{spec} {alg}"
        );
        let ok =
            |d: &[u8], s: &[u8], v: &str| kms.asymmetric_verify(&id, v, alg, d, s).unwrap().value;
        assert!(ok(&digest, &sig.value, &v1));
        // A signature over a different digest fails; so does a flipped bit.
        assert!(!ok(&sha256(b"other"), &sig.value, &v1), "{spec} {alg}");
        for i in [0, sig.value.len() / 2, sig.value.len() - 1] {
            let mut bad = sig.value.clone();
            bad[i] ^= 0x01;
            assert!(!ok(&digest, &bad, &v1), "{spec} {alg} bit {i}");
        }
        // A digest of the wrong length is InvalidParameter naming Digest.
        for len in [0usize, 20, 31, 33, 64] {
            let d = vec![7u8; len];
            let e = kms.asymmetric_sign(&id, &v1, alg, &d).unwrap_err();
            if len == 0 {
                assert_eq!(e, Error::MissingParameter("Digest"));
            } else {
                assert_eq!(param(&e), "Digest", "{len}");
                assert_eq!(
                    param(
                        &kms.asymmetric_verify(&id, &v1, alg, &d, &sig.value)
                            .unwrap_err()
                    ),
                    "Digest"
                );
            }
        }
        // The wrong version fails to verify.
        let v2 = kms.create_key_version(&id).unwrap().key_version_id;
        assert!(!ok(&digest, &sig.value, &v2), "{spec} {alg}");
        assert!(ok(&digest, &sig.value, &v1), "old versions keep verifying");
        assert_ne!(kms.get_public_key(&id, &v2).unwrap().public_key, pem);
    }
}

#[test]
fn ecdsa_signatures_are_low_s_and_high_s_verifies() {
    let (kms, _) = kms();
    let (id, v) = key(&kms, KeySpec::EcP256, None);
    let digest = sha256(b"low s");
    for _ in 0..8 {
        let der = kms
            .asymmetric_sign(&id, &v, Algorithm::EcdsaSha256, &digest)
            .unwrap()
            .value;
        let sig = p256::ecdsa::Signature::from_der(&der).unwrap();
        assert!(sig.normalize_s() == sig, "low-S");
        // The high-S twin (r, n - s) verifies too (SPEC 11).
        let (r, s) = sig.split_scalars();
        let high = p256::ecdsa::Signature::from_scalars(r, -*s).unwrap();
        assert_ne!(high, sig);
        let high_der = high.to_der();
        assert!(
            kms.asymmetric_verify(
                &id,
                &v,
                Algorithm::EcdsaSha256,
                &digest,
                high_der.as_bytes()
            )
            .unwrap()
            .value
        );
    }
}

#[test]
fn encrypt_and_decrypt_every_encryption_spec() {
    let (kms, _) = kms();
    for (spec, alg) in [
        (KeySpec::Rsa2048, Algorithm::RsaesOaepSha256),
        (KeySpec::Rsa2048, Algorithm::RsaesOaepSha1),
        (KeySpec::EcSm2, Algorithm::Sm2Pke),
    ] {
        let (id, v1) = key(&kms, spec, Some(KeyUsage::EncryptDecrypt));
        let ct = kms
            .asymmetric_encrypt(&id, &v1, alg, b"secret data")
            .unwrap();
        let pt = kms
            .asymmetric_decrypt(&id, &v1, alg, &ct.ciphertext_blob)
            .unwrap();
        assert_eq!(pt.plaintext.expose_secret(), b"secret data");
        assert!(format!("{pt:?}").contains("REDACTED"));
        // Every failure is one InvalidParameter naming CiphertextBlob.
        let failed = kms
            .asymmetric_decrypt(&id, &v1, alg, &[1, 2, 3])
            .unwrap_err();
        assert_eq!(param(&failed), "CiphertextBlob");
        for i in [
            0,
            ct.ciphertext_blob.len() / 2,
            ct.ciphertext_blob.len() - 1,
        ] {
            let mut bad = ct.ciphertext_blob.clone();
            bad[i] ^= 0x80;
            let e = kms.asymmetric_decrypt(&id, &v1, alg, &bad).unwrap_err();
            assert_eq!(e.to_string(), failed.to_string(), "{spec} {alg} byte {i}");
        }
        let v2 = kms.create_key_version(&id).unwrap().key_version_id;
        let e = kms
            .asymmetric_decrypt(&id, &v2, alg, &ct.ciphertext_blob)
            .unwrap_err();
        assert_eq!(e.to_string(), failed.to_string(), "the wrong version fails");
        assert_eq!(
            param(
                &kms.asymmetric_encrypt(&id, &v1, alg, &[0u8; 6048])
                    .unwrap_err()
            ),
            "Plaintext"
        );
        assert_eq!(
            kms.asymmetric_encrypt(&id, &v1, alg, b"").unwrap_err(),
            Error::MissingParameter("Plaintext")
        );
    }
}

#[test]
fn wrong_usage_wrong_algorithm_and_wrong_kind_have_their_own_errors() {
    let (kms, _) = kms();
    let (sign_rsa, sv) = key(&kms, KeySpec::Rsa2048, None);
    let (enc_rsa, ev) = key(&kms, KeySpec::Rsa2048, Some(KeyUsage::EncryptDecrypt));
    let (ec, ecv) = key(&kms, KeySpec::EcP256, None);
    let (aes, aesv) = key(&kms, KeySpec::Aes256, None);
    let (hmac, _) = key(&kms, KeySpec::HmacSha256, None);
    let d = sha256(b"x");
    let msg = |e: Error| (param(&e), e.to_string());
    // Usage: a SIGN/VERIFY key does not decrypt, an ENCRYPT/DECRYPT one does not sign.
    let (p, m) = msg(kms
        .asymmetric_decrypt(&sign_rsa, &sv, Algorithm::RsaesOaepSha256, &[0; 256])
        .unwrap_err());
    assert_eq!(p, "KeyId");
    assert!(
        m.contains("ENCRYPT/DECRYPT") && m.contains("SIGN/VERIFY"),
        "{m}"
    );
    let (p, m2) = msg(kms
        .asymmetric_sign(&enc_rsa, &ev, Algorithm::RsaPssSha256, &d)
        .unwrap_err());
    assert_eq!(p, "KeyId");
    assert_ne!(m, m2);
    // Algorithm of another spec.
    let (p, m3) = msg(kms
        .asymmetric_sign(&ec, &ecv, Algorithm::RsaPssSha256, &d)
        .unwrap_err());
    assert_eq!(p, "Algorithm");
    assert!(
        m3.contains("RSA_PSS_SHA_256") && m3.contains("EC_P256"),
        "{m3}"
    );
    assert_eq!(
        param(
            &kms.asymmetric_sign(&ec, &ecv, Algorithm::Sm2Dsa, &d)
                .unwrap_err()
        ),
        "Algorithm"
    );
    assert_eq!(
        param(
            &kms.asymmetric_encrypt(&enc_rsa, &ev, Algorithm::Sm2Pke, b"x")
                .unwrap_err()
        ),
        "Algorithm"
    );
    // An encryption algorithm on a signing call is an Algorithm error too.
    assert_eq!(
        param(
            &kms.asymmetric_sign(&sign_rsa, &sv, Algorithm::RsaesOaepSha1, &d)
                .unwrap_err()
        ),
        "Algorithm"
    );
    // Asymmetric operations on symmetric and HMAC keys.
    let (p, m4) = msg(kms
        .asymmetric_sign(&aes, &aesv, Algorithm::EcdsaSha256, &d)
        .unwrap_err());
    assert_eq!(p, "KeyId");
    assert!(m4.contains("symmetric"), "{m4}");
    let (p, m5) = msg(kms.get_public_key(&hmac, &aesv).unwrap_err());
    assert_eq!(p, "KeyId");
    assert!(m5.contains("HMAC"), "{m5}");
    // Symmetric operations on key pairs and HMAC keys.
    let ctx = Default::default();
    for k in [&sign_rsa, &ec, &hmac] {
        assert_eq!(param(&kms.encrypt(k, b"x", &ctx).unwrap_err()), "KeyId");
        assert_eq!(
            param(&kms.generate_data_key(k, &Default::default()).unwrap_err()),
            "KeyId"
        );
    }
    // MAC operations on other keys, and the wrong HMAC.
    assert_eq!(
        param(
            &kms.generate_mac(&ec, Algorithm::HmacSha256, b"m")
                .unwrap_err()
        ),
        "KeyId"
    );
    assert_eq!(
        param(
            &kms.generate_mac(&aes, Algorithm::HmacSha256, b"m")
                .unwrap_err()
        ),
        "KeyId"
    );
    assert_eq!(
        param(
            &kms.generate_mac(&hmac, Algorithm::HmacSha512, b"m")
                .unwrap_err()
        ),
        "Algorithm"
    );
    assert_eq!(
        param(
            &kms.generate_mac(&hmac, Algorithm::EcdsaSha256, b"m")
                .unwrap_err()
        ),
        "Algorithm"
    );
    // Every one of these is a 400.
    assert_eq!(
        kms.asymmetric_sign(&aes, &aesv, Algorithm::EcdsaSha256, &d)
            .unwrap_err()
            .http_status(),
        400
    );
}

#[test]
fn versions_must_belong_to_the_key() {
    let (kms, _) = kms();
    let (a, av) = key(&kms, KeySpec::EcP256, None);
    let (b, bv) = key(&kms, KeySpec::EcP256, None);
    let d = sha256(b"v");
    let e = kms
        .asymmetric_sign(&a, &bv, Algorithm::EcdsaSha256, &d)
        .unwrap_err();
    assert_eq!(e.code(), "Forbidden.KeyVersionNotFound");
    assert_eq!(
        kms.get_public_key(&b, &av).unwrap_err().code(),
        "Forbidden.KeyVersionNotFound"
    );
    assert_eq!(
        kms.get_public_key(&a, "nonsense").unwrap_err().code(),
        "Forbidden.KeyVersionNotFound"
    );
    assert_eq!(
        kms.get_public_key(&a, "").unwrap_err(),
        Error::MissingParameter("KeyVersionId")
    );
    // Aliases resolve.
    kms.create_alias("alias/signer", &a).unwrap();
    assert_eq!(
        kms.asymmetric_sign("alias/signer", &av, Algorithm::EcdsaSha256, &d)
            .unwrap()
            .key_id,
        a
    );
}

#[test]
fn every_state_of_the_state_table() {
    let (kms, clock) = kms();
    let (sig, sv) = key(&kms, KeySpec::EcP256, None);
    let (enc, ev) = key(&kms, KeySpec::EcSm2, Some(KeyUsage::EncryptDecrypt));
    let (mac, _) = key(&kms, KeySpec::HmacSm3, None);
    let (sm4, _) = key(&kms, KeySpec::Sm4, None);
    let d = sha256(b"state");
    let ctx = localkms::EncryptionContext::empty();
    let sig_value = kms
        .asymmetric_sign(&sig, &sv, Algorithm::EcdsaSha256, &d)
        .unwrap()
        .value;
    let ct = kms
        .asymmetric_encrypt(&enc, &ev, Algorithm::Sm2Pke, b"p")
        .unwrap()
        .ciphertext_blob;
    let tag = kms
        .generate_mac(&mac, Algorithm::HmacSm3, b"m")
        .unwrap()
        .mac;
    let blob = kms.encrypt(&sm4, b"p", &ctx).unwrap().ciphertext_blob;
    let run = |kms: &Kms| -> Vec<std::result::Result<(), Error>> {
        vec![
            kms.get_public_key(&sig, &sv).map(drop),
            kms.asymmetric_sign(&sig, &sv, Algorithm::EcdsaSha256, &d)
                .map(drop),
            kms.asymmetric_verify(&sig, &sv, Algorithm::EcdsaSha256, &d, &sig_value)
                .map(drop),
            kms.asymmetric_encrypt(&enc, &ev, Algorithm::Sm2Pke, b"p")
                .map(drop),
            kms.asymmetric_decrypt(&enc, &ev, Algorithm::Sm2Pke, &ct)
                .map(drop),
            kms.generate_mac(&mac, Algorithm::HmacSm3, b"m").map(drop),
            kms.verify_mac(&mac, Algorithm::HmacSm3, b"m", &tag)
                .map(drop),
            kms.encrypt(&sm4, b"p", &ctx).map(drop),
            kms.decrypt(&blob, &ctx).map(drop),
        ]
    };
    let all = [&sig, &enc, &mac, &sm4];
    assert!(
        run(&kms).iter().all(Result::is_ok),
        "Enabled: {:?}",
        run(&kms)
    );
    for k in all {
        kms.disable_key(k).unwrap();
    }
    for r in run(&kms) {
        assert_eq!(r.unwrap_err().code(), "Rejected.Disabled");
    }
    for k in all {
        kms.enable_key(k).unwrap();
        kms.schedule_key_deletion(k, 7).unwrap();
    }
    for r in run(&kms) {
        assert_eq!(r.unwrap_err().code(), "Rejected.PendingDeletion");
    }
    for k in all {
        kms.cancel_key_deletion(k).unwrap();
    }
    assert!(run(&kms).iter().all(Result::is_ok));
    // PendingImport: only EXTERNAL keys reach it, and those are
    // Aliyun_AES_256 only, so no key of these specs can be in it.
    for spec in [
        KeySpec::EcP256,
        KeySpec::EcSm2,
        KeySpec::HmacSm3,
        KeySpec::Sm4,
    ] {
        let e = kms
            .create_key(&CreateKeyRequest {
                key_spec: spec,
                ..CreateKeyRequest::external()
            })
            .unwrap_err();
        assert_eq!(param(&e), "Origin");
    }
    for k in all {
        kms.schedule_key_deletion(k, 7).unwrap();
    }
    clock.advance(7 * 86_400);
    for r in run(&kms) {
        assert_eq!(r.unwrap_err().code(), "Forbidden.KeyNotFound");
    }
}

#[test]
fn macs() {
    let (kms, _) = kms();
    for (spec, alg, len) in [
        (KeySpec::HmacSha224, Algorithm::HmacSha224, 28),
        (KeySpec::HmacSha256, Algorithm::HmacSha256, 32),
        (KeySpec::HmacSha384, Algorithm::HmacSha384, 48),
        (KeySpec::HmacSha512, Algorithm::HmacSha512, 64),
        (KeySpec::HmacSm3, Algorithm::HmacSm3, 32),
    ] {
        let (id, v) = key(&kms, spec, None);
        let m = kms.generate_mac(&id, alg, b"hello").unwrap();
        assert_eq!(
            (m.mac.len(), m.key_version_id.as_str(), m.algorithm),
            (len, v.as_str(), alg)
        );
        assert_eq!(
            kms.generate_mac(&id, alg, b"hello").unwrap().mac,
            m.mac,
            "deterministic"
        );
        let ok = |msg: &[u8], tag: &[u8]| kms.verify_mac(&id, alg, msg, tag).unwrap().value;
        assert!(ok(b"hello", &m.mac));
        assert!(!ok(b"hellp", &m.mac));
        assert!(!ok(b"hello", &m.mac[..16]), "a truncated tag is not valid");
        let mut bad = m.mac.clone();
        bad[0] ^= 1;
        assert!(!ok(b"hello", &bad));
        assert_eq!(
            kms.generate_mac(&id, alg, b"").unwrap_err(),
            Error::MissingParameter("Message")
        );
        assert_eq!(
            param(&kms.generate_mac(&id, alg, &[0; 6145]).unwrap_err()),
            "Message"
        );
        assert_eq!(
            kms.verify_mac(&id, alg, b"m", b"").unwrap_err(),
            Error::MissingParameter("Mac")
        );
        // HMAC keys keep their one version; they do not rotate.
        assert_eq!(
            kms.create_key_version(&id).unwrap_err().code(),
            "UnsupportedOperation"
        );
        assert_eq!(
            kms.update_rotation_policy(&id, true, None)
                .unwrap_err()
                .code(),
            "UnsupportedOperation"
        );
    }
}

#[test]
fn sm4_keys_encrypt_decrypt_and_generate_data_keys() {
    let (kms, _) = kms();
    let (sm4, v1) = key(&kms, KeySpec::Sm4, None);
    let (aes, _) = key(&kms, KeySpec::Aes256, None);
    let ctx = localkms::EncryptionContext::from_pairs([("a", "b")]).unwrap();
    let b64 =
        |s: &str| base64::Engine::decode(&base64::engine::general_purpose::STANDARD, s).unwrap();
    let enc = kms.encrypt(&sm4, b"sm4 text", &ctx).unwrap();
    let blob = enc.ciphertext_blob.to_vec();
    assert_eq!(blob[0], 2, "SM4 blobs are v2");
    assert_eq!(blob.len(), 86 + 8 + 16);
    assert_eq!(
        kms.encrypt(&aes, b"x", &ctx)
            .unwrap()
            .ciphertext_blob
            .to_vec()[0],
        1,
        "AES blobs stay v1"
    );
    let dec = kms.decrypt(&enc.ciphertext_blob, &ctx).unwrap();
    assert_eq!(
        (
            dec.plaintext.expose_secret(),
            dec.key_id.as_str(),
            dec.key_version_id.as_str()
        ),
        (&b"sm4 text"[..], sm4.as_str(), v1.as_str())
    );
    assert_eq!(
        kms.decrypt(&enc.ciphertext_blob, &Default::default())
            .unwrap_err(),
        Error::DecryptionFailed
    );
    for i in 0..blob.len() {
        if (2..74).contains(&i) {
            continue; // the ids: another key or version, not found
        }
        let mut bad = blob.clone();
        bad[i] ^= 0x01;
        let text = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &bad);
        assert_eq!(
            kms.decrypt(&b64(&text), &ctx).unwrap_err(),
            Error::DecryptionFailed,
            "byte {i}"
        );
    }
    // Nonces are random: two blobs of one text differ.
    assert_ne!(
        kms.encrypt(&sm4, b"sm4 text", &ctx)
            .unwrap()
            .ciphertext_blob,
        enc.ciphertext_blob
    );
    let dk = kms
        .generate_data_key(
            &sm4,
            &localkms::GenerateDataKeyRequest::with_number_of_bytes(24),
        )
        .unwrap();
    let opened = kms
        .decrypt(&dk.ciphertext_blob, &Default::default())
        .unwrap();
    assert_eq!(
        opened.plaintext.expose_secret(),
        dk.plaintext.expose_secret()
    );
    assert_eq!(
        opened.wire_plaintext().as_str(),
        dk.plaintext.to_base64().as_str()
    );
    // Rotation: a new version encrypts; the old one still decrypts.
    let v2 = kms.create_key_version(&sm4).unwrap().key_version_id;
    assert_eq!(kms.encrypt(&sm4, b"y", &ctx).unwrap().key_version_id, v2);
    assert!(kms.decrypt(&enc.ciphertext_blob, &ctx).is_ok());
    // ReEncrypt between the two symmetric specs keeps the plaintext.
    let moved = kms
        .re_encrypt(&enc.ciphertext_blob, &aes, &ctx, &ctx)
        .unwrap();
    assert_eq!(
        kms.decrypt(&moved.ciphertext_blob, &ctx)
            .unwrap()
            .plaintext
            .expose_secret(),
        b"sm4 text"
    );
    // A v2 blob naming an AES key, or a v1 blob naming an SM4 key, is not
    // a blob of this store.
    let mut forged = blob.clone();
    forged[2..38].copy_from_slice(aes.as_bytes());
    let text = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &forged);
    assert_eq!(
        kms.decrypt(&b64(&text), &ctx).unwrap_err(),
        Error::DecryptionFailed
    );
    let mut v1blob = kms
        .encrypt(&aes, b"x", &ctx)
        .unwrap()
        .ciphertext_blob
        .to_vec();
    v1blob[2..38].copy_from_slice(sm4.as_bytes());
    let text = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &v1blob);
    assert_eq!(
        kms.decrypt(&b64(&text), &ctx).unwrap_err(),
        Error::DecryptionFailed
    );
    // Envelope v2 holds a data-key blob of any length: SM4 keys seal
    // envelopes too.
    let sealed = kms.envelope_encrypt(&sm4, b"x", &ctx).unwrap();
    assert_eq!(&kms.envelope_decrypt(&sealed, &ctx).unwrap()[..], b"x");
}

#[test]
fn asymmetric_keys_rotate_only_by_hand() {
    let (kms, _) = kms();
    let (id, _) = key(&kms, KeySpec::EcP256K, None);
    assert_eq!(
        kms.update_rotation_policy(&id, true, None)
            .unwrap_err()
            .code(),
        "UnsupportedOperation"
    );
    kms.update_rotation_policy(&id, false, None).unwrap();
    let v2 = kms.create_key_version(&id).unwrap();
    assert_eq!(
        kms.describe_key(&id).unwrap().primary_key_version,
        v2.key_version_id
    );
    kms.disable_key(&id).unwrap();
    assert_eq!(
        kms.create_key_version(&id).unwrap_err().code(),
        "Rejected.Disabled"
    );
}

#[test]
fn signature_traits_interoperate_with_rustcrypto_verifiers() {
    use signature::{Signer, Verifier};
    let (kms, _) = kms();
    let pem_of = |id: &str, v: &str| kms.get_public_key(id, v).unwrap().public_key;

    let (id, v) = key(&kms, KeySpec::EcP256, None);
    let h = kms.asymmetric_key(&id, &v);
    let sig: p256::ecdsa::DerSignature = h.try_sign(b"jwt payload").unwrap();
    let vk: p256::ecdsa::VerifyingKey =
        p256::pkcs8::DecodePublicKey::from_public_key_pem(&pem_of(&id, &v)).unwrap();
    vk.verify(b"jwt payload", &sig).unwrap();
    let fixed: p256::ecdsa::Signature = h.try_sign(b"m").unwrap();
    vk.verify(b"m", &fixed).unwrap();
    h.verify(b"m", &fixed).unwrap();
    assert!(h.verify(b"n", &fixed).is_err());
    // A handle on a key of another spec fails cleanly.
    assert!(Signer::<k256::ecdsa::Signature>::try_sign(&h, b"m").is_err());

    let (id, v) = key(&kms, KeySpec::EcP256K, None);
    let h = kms.asymmetric_key(&id, &v);
    let sig: k256::ecdsa::Signature = h.try_sign(b"tx").unwrap();
    let vk: k256::ecdsa::VerifyingKey =
        k256::pkcs8::DecodePublicKey::from_public_key_pem(&pem_of(&id, &v)).unwrap();
    vk.verify(b"tx", &sig).unwrap();

    let (id, v) = key(&kms, KeySpec::Rsa2048, None);
    let h = kms.asymmetric_key(&id, &v);
    let sig: rsa::pkcs1v15::Signature = h.try_sign(b"doc").unwrap();
    let pk: rsa::PublicKey =
        rsa::pkcs8::DecodePublicKey::from_public_key_pem(&pem_of(&id, &v)).unwrap();
    rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(pk.clone())
        .verify(b"doc", &sig)
        .unwrap();
    let pss: rsa::pss::Signature = h.try_sign(b"doc").unwrap();
    rsa::pss::VerifyingKey::<sha2::Sha256>::new(pk)
        .verify(b"doc", &pss)
        .unwrap();
    h.verify(b"doc", &pss).unwrap();

    // SM2: the sm2 crate's verifier hashes Z(A) || M itself with the
    // default id, so this checks the handle's Z(A) independently.
    let (id, v) = key(&kms, KeySpec::EcSm2, None);
    let h = kms.asymmetric_key(&id, &v);
    let sig: sm2::dsa::Signature = h.try_sign(b"gm").unwrap();
    let pk: sm2::PublicKey =
        sm2::pkcs8::DecodePublicKey::from_public_key_pem(&pem_of(&id, &v)).unwrap();
    sm2::dsa::VerifyingKey::new("1234567812345678", pk)
        .unwrap()
        .verify(b"gm", &sig)
        .unwrap();
}

fn call(kms: &Kms, p: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let pairs: Vec<(String, String)> = p
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let r = wire::dispatch(kms, &pairs);
    (r.status, serde_json::from_str(&r.body).unwrap())
}

#[test]
fn wire_actions() {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    let (kms, _) = kms();
    let (s, r) = call(&kms, &[("Action", "CreateKey"), ("KeySpec", "EC_P256")]);
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["KeyMetadata"]["KeyUsage"], "SIGN/VERIFY");
    let id = r["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    let v = r["KeyMetadata"]["PrimaryKeyVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    for spec in ["Aliyun_AES_128", "Aliyun_AES_192", "RSA_4096", "aliyun_sm4"] {
        let (s, r) = call(&kms, &[("Action", "CreateKey"), ("KeySpec", spec)]);
        assert_eq!(
            (s, r["Code"].as_str()),
            (400, Some("InvalidParameter")),
            "{spec}"
        );
        assert!(r["Message"].as_str().unwrap().contains("KeySpec"));
    }
    let (s, r) = call(
        &kms,
        &[
            ("Action", "CreateKey"),
            ("KeySpec", "EC_P256"),
            ("KeyUsage", "ENCRYPT/DECRYPT"),
        ],
    );
    assert_eq!((s, r["Code"].as_str()), (400, Some("InvalidParameter")));
    let (s, r) = call(
        &kms,
        &[
            ("Action", "GetPublicKey"),
            ("KeyId", &id),
            ("KeyVersionId", &v),
        ],
    );
    assert_eq!(s, 200);
    assert!(
        r["PublicKey"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
    let digest = STANDARD.encode(sha256(b"wire"));
    let (s, r) = call(
        &kms,
        &[
            ("Action", "AsymmetricSign"),
            ("KeyId", &id),
            ("KeyVersionId", &v),
            ("Algorithm", "ECDSA_SHA_256"),
            ("Digest", &digest),
        ],
    );
    assert_eq!(s, 200, "{r}");
    let value = r["Value"].as_str().unwrap().to_owned();
    let (s, r) = call(
        &kms,
        &[
            ("Action", "AsymmetricVerify"),
            ("KeyId", &id),
            ("KeyVersionId", &v),
            ("Algorithm", "ECDSA_SHA_256"),
            ("Digest", &digest),
            ("Value", &value),
        ],
    );
    assert_eq!((s, &r["Value"]), (200, &serde_json::Value::Bool(true)));
    // KeyVersionId is required on the wire.
    let (s, r) = call(
        &kms,
        &[
            ("Action", "AsymmetricSign"),
            ("KeyId", &id),
            ("Algorithm", "ECDSA_SHA_256"),
            ("Digest", &digest),
        ],
    );
    assert_eq!((s, r["Code"].as_str()), (400, Some("MissingParameter")));
    assert!(r["Message"].as_str().unwrap().contains("KeyVersionId"));
    for (name, val, want) in [
        ("Algorithm", "ECDSA_SHA_384", "Algorithm"),
        ("Digest", "not base64!", "Digest"),
        ("Digest", "AAAA", "Digest"),
    ] {
        let mut p = vec![
            ("Action", "AsymmetricSign"),
            ("KeyId", id.as_str()),
            ("KeyVersionId", v.as_str()),
            ("Algorithm", "ECDSA_SHA_256"),
            ("Digest", digest.as_str()),
        ];
        p.retain(|(k, _)| *k != name);
        p.push((name, val));
        let (s, r) = call(&kms, &p);
        assert_eq!(
            (s, r["Code"].as_str()),
            (400, Some("InvalidParameter")),
            "{name}={val}"
        );
        assert!(r["Message"].as_str().unwrap().contains(want), "{r}");
    }
    // Encrypt/decrypt and MACs.
    let (_, r) = call(
        &kms,
        &[
            ("Action", "CreateKey"),
            ("KeySpec", "RSA_2048"),
            ("KeyUsage", "ENCRYPT/DECRYPT"),
        ],
    );
    let rid = r["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    let rv = r["KeyMetadata"]["PrimaryKeyVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let pt = STANDARD.encode(b"wire secret");
    let (s, r) = call(
        &kms,
        &[
            ("Action", "AsymmetricEncrypt"),
            ("KeyId", &rid),
            ("KeyVersionId", &rv),
            ("Algorithm", "RSAES_OAEP_SHA_256"),
            ("Plaintext", &pt),
        ],
    );
    assert_eq!(s, 200, "{r}");
    let ct = r["CiphertextBlob"].as_str().unwrap().to_owned();
    let (s, r) = call(
        &kms,
        &[
            ("Action", "AsymmetricDecrypt"),
            ("KeyId", &rid),
            ("KeyVersionId", &rv),
            ("Algorithm", "RSAES_OAEP_SHA_256"),
            ("CiphertextBlob", &ct),
        ],
    );
    assert_eq!((s, r["Plaintext"].as_str()), (200, Some(pt.as_str())));
    let (_, r) = call(
        &kms,
        &[("Action", "CreateKey"), ("KeySpec", "HMAC_SHA_256")],
    );
    assert_eq!(r["KeyMetadata"]["KeyUsage"], "GENERATE/VERIFY MAC");
    let hid = r["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    let msg = STANDARD.encode(b"1234");
    let (s, r) = call(
        &kms,
        &[
            ("Action", "GenerateMac"),
            ("KeyId", &hid),
            ("Algorithm", "HMAC_SHA_256"),
            ("Message", &msg),
        ],
    );
    assert_eq!((s, r["Algorithm"].as_str()), (200, Some("HMAC_SHA_256")));
    let mac = r["Mac"].as_str().unwrap().to_owned();
    let (s, r) = call(
        &kms,
        &[
            ("Action", "VerifyMac"),
            ("KeyId", &hid),
            ("Algorithm", "HMAC_SHA_256"),
            ("Message", &msg),
            ("Mac", &mac),
        ],
    );
    assert_eq!((s, &r["Value"]), (200, &serde_json::Value::Bool(true)));
    // XML renders the boolean.
    let pairs: Vec<(String, String)> = [
        ("Action", "VerifyMac"),
        ("KeyId", hid.as_str()),
        ("Algorithm", "HMAC_SHA_256"),
        ("Message", msg.as_str()),
        ("Mac", mac.as_str()),
        ("Format", "XML"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert!(
        wire::dispatch(&kms, &pairs)
            .body
            .contains("<Value>true</Value>")
    );
    // A wrong usage is a 400 naming KeyId.
    let (s, r) = call(
        &kms,
        &[("Action", "Encrypt"), ("KeyId", &hid), ("Plaintext", "x")],
    );
    assert_eq!((s, r["Code"].as_str()), (400, Some("InvalidParameter")));
    assert!(r["Message"].as_str().unwrap().contains("KeyId"));
}

#[test]
fn fixtures_carry_specs_and_usages() {
    let (kms, _) = kms();
    let ids = kms
        .load_fixtures(
            r#"{"Keys": [
                {"KeySpec": "EC_SM2", "KeyUsage": "ENCRYPT/DECRYPT"},
                {"KeySpec": "HMAC_SHA_384"},
                {"KeySpec": "Aliyun_SM4", "Versions": [{}, {}]}
            ]}"#,
        )
        .unwrap();
    let m: Vec<_> = ids.iter().map(|i| kms.describe_key(i).unwrap()).collect();
    assert_eq!(
        (m[0].key_spec, m[0].key_usage),
        (KeySpec::EcSm2, KeyUsage::EncryptDecrypt)
    );
    assert_eq!(m[1].key_usage, KeyUsage::GenerateVerifyMac);
    let ct = kms
        .asymmetric_encrypt(&ids[0], &m[0].primary_key_version, Algorithm::Sm2Pke, b"f")
        .unwrap();
    assert!(
        kms.asymmetric_decrypt(
            &ids[0],
            &m[0].primary_key_version,
            Algorithm::Sm2Pke,
            &ct.ciphertext_blob
        )
        .is_ok()
    );
    assert!(
        kms.generate_mac(&ids[1], Algorithm::HmacSha384, b"f")
            .is_ok()
    );
    let ctx = Default::default();
    let blob = kms.encrypt(&ids[2], b"f", &ctx).unwrap().ciphertext_blob;
    assert!(kms.decrypt(&blob, &ctx).is_ok());
    let exported = kms.export_fixtures().unwrap();
    assert!(exported.contains("\"EC_SM2\"") && exported.contains("GENERATE/VERIFY MAC"));
    for bad in [
        r#"{"Keys": [{"KeySpec": "EC_P256", "KeyUsage": "ENCRYPT/DECRYPT"}]}"#,
        r#"{"Keys": [{"KeySpec": "RSA_2048", "Origin": "EXTERNAL"}]}"#,
        r#"{"Keys": [{"KeySpec": "EC_P256", "AutomaticRotation": true}]}"#,
    ] {
        assert_eq!(
            param(&kms.load_fixtures(bad).unwrap_err()),
            "Fixture",
            "{bad}"
        );
    }
}

/// SPEC 13: the key handle of `kms.key(..)` signs too, through the
/// `signature` traits, with the primary version unless one is named, and
/// follows its alias.
#[test]
fn the_key_handle_signs_with_the_signature_traits() {
    use signature::{Signer, Verifier};
    let (kms, _) = kms();
    let (id, v1) = key(&kms, KeySpec::EcP256, None);
    kms.create_alias("alias/signer", &id).unwrap();
    let handle = kms.key("alias/signer");
    let sig: p256::ecdsa::DerSignature = handle.try_sign(b"token").unwrap();
    let pem = kms.get_public_key(&id, &v1).unwrap().public_key;
    let vk: p256::ecdsa::VerifyingKey =
        p256::pkcs8::DecodePublicKey::from_public_key_pem(&pem).unwrap();
    vk.verify(b"token", &sig).unwrap();
    handle.verify(b"token", &sig).unwrap();
    assert!(handle.verify(b"other", &sig).is_err());
    // A new primary version signs from now on; the old one still verifies
    // when named.
    let v2 = kms.create_key_version(&id).unwrap().key_version_id;
    let sig2: p256::ecdsa::DerSignature = handle.try_sign(b"token").unwrap();
    let pem2 = kms.get_public_key(&id, &v2).unwrap().public_key;
    let vk2: p256::ecdsa::VerifyingKey =
        p256::pkcs8::DecodePublicKey::from_public_key_pem(&pem2).unwrap();
    vk2.verify(b"token", &sig2).unwrap();
    kms.key("alias/signer")
        .with_version(v1.clone())
        .verify(b"token", &sig)
        .unwrap();
    // The alias moves to another key: the handle follows it.
    let (other, ov) = key(&kms, KeySpec::EcP256, None);
    kms.update_alias("alias/signer", &other).unwrap();
    let sig3: p256::ecdsa::DerSignature = handle.try_sign(b"token").unwrap();
    let pem3 = kms.get_public_key(&other, &ov).unwrap().public_key;
    let vk3: p256::ecdsa::VerifyingKey =
        p256::pkcs8::DecodePublicKey::from_public_key_pem(&pem3).unwrap();
    vk3.verify(b"token", &sig3).unwrap();
    // A symmetric key's handle refuses to sign, cleanly.
    let aes = kms.create_key(&Default::default()).unwrap().key_id;
    assert!(Signer::<p256::ecdsa::DerSignature>::try_sign(&kms.key(aes), b"m").is_err());
}
