//! Unit tests across the primitives: each names what it would catch.

use getrandom::SysRng;
use p256::elliptic_curve::scalar::IsHigh;

use super::*;

fn keys() -> Vec<PrivateKey> {
    [
        KeySpec::Rsa2048,
        KeySpec::EcP256,
        KeySpec::EcP256K,
        KeySpec::EcSm2,
    ]
    .into_iter()
    .map(|s| PrivateKey::generate(s, &mut SysRng).unwrap())
    .collect()
}

fn sign_algs(spec: KeySpec) -> &'static [Algorithm] {
    match spec {
        KeySpec::Rsa2048 | KeySpec::Rsa3072 => {
            &[Algorithm::RsaPkcs1Sha256, Algorithm::RsaPssSha256]
        }
        KeySpec::EcP256 | KeySpec::EcP256K => &[Algorithm::EcdsaSha256],
        KeySpec::EcSm2 => &[Algorithm::Sm2Dsa],
        _ => &[],
    }
}

fn digest_for(key: &PrivateKey, msg: &[u8]) -> [u8; 32] {
    if key.spec() == KeySpec::EcSm2 {
        sm2_digest(&key.public_key(), msg).unwrap()
    } else {
        sha256(msg)
    }
}

#[test]
fn sign_verify_flipped_bits_and_other_digests() {
    for key in keys() {
        let pk = key.public_key();
        for &alg in sign_algs(key.spec()) {
            let d = digest_for(&key, b"message");
            let sig = key.sign_digest(alg, &d, &mut SysRng).unwrap();
            assert!(pk.verify_digest(alg, &d, &sig).unwrap(), "{alg}");
            // A signature over another digest fails.
            let other = digest_for(&key, b"messagf");
            assert!(!pk.verify_digest(alg, &other, &sig).unwrap(), "{alg}");
            // Every flipped bit of the digest or of the signature fails.
            for i in 0..d.len() * 8 {
                let mut bad = d;
                bad[i / 8] ^= 1 << (i % 8);
                assert!(
                    !pk.verify_digest(alg, &bad, &sig).unwrap(),
                    "{alg} digest bit {i}"
                );
            }
            for i in 0..sig.len() * 8 {
                let mut bad = sig.clone();
                bad[i / 8] ^= 1 << (i % 8);
                assert!(
                    !pk.verify_digest(alg, &d, &bad).unwrap(),
                    "{alg} sig bit {i}"
                );
            }
            assert!(!pk.verify_digest(alg, &d, &[]).unwrap());
            assert!(!pk.verify_digest(alg, &d, &sig[..sig.len() - 1]).unwrap());
        }
    }
}

#[test]
fn wrong_digest_length_names_digest() {
    for key in keys() {
        for &alg in sign_algs(key.spec()) {
            for len in [0usize, 20, 31, 33, 48, 64] {
                let d = vec![1u8; len];
                let e = key.sign_digest(alg, &d, &mut SysRng).unwrap_err();
                assert!(
                    matches!(
                        e,
                        AsymError::InvalidParameter {
                            param: "Digest",
                            ..
                        }
                    ),
                    "{alg} {len}: {e:?}"
                );
                assert!(e.to_string().contains("Digest"));
                let e = key.verify_digest(alg, &d, &[0u8; 64]).unwrap_err();
                assert!(matches!(
                    e,
                    AsymError::InvalidParameter {
                        param: "Digest",
                        ..
                    }
                ));
            }
        }
    }
}

#[test]
fn wrong_algorithm_names_algorithm() {
    let keys = keys();
    for key in &keys {
        for &alg in Algorithm::ALL {
            let fits_sign = sign_algs(key.spec()).contains(&alg);
            let r = key.sign_digest(alg, &[0u8; 32], &mut SysRng);
            assert_eq!(r.is_ok(), fits_sign, "{} {alg}", key.spec());
            if let Err(e) = r {
                assert!(matches!(
                    e,
                    AsymError::InvalidParameter {
                        param: "Algorithm",
                        ..
                    }
                ));
            }
        }
    }
    let ec = &keys[1];
    let e = ec
        .decrypt(Algorithm::RsaesOaepSha256, &[0u8; 10], &mut SysRng)
        .unwrap_err();
    assert!(matches!(
        e,
        AsymError::InvalidParameter {
            param: "Algorithm",
            ..
        }
    ));
    let e = ec
        .public_key()
        .encrypt(Algorithm::Sm2Pke, b"x", &mut SysRng)
        .unwrap_err();
    assert!(matches!(
        e,
        AsymError::InvalidParameter {
            param: "Algorithm",
            ..
        }
    ));
    assert!(PrivateKey::generate(KeySpec::Aes256, &mut SysRng).is_err());
    assert!(PrivateKey::generate(KeySpec::HmacSha256, &mut SysRng).is_err());
}

#[test]
fn ecdsa_emits_low_s_and_accepts_high_s() {
    // P-256 and secp256k1: our signatures are low-S; the high-S twin of a
    // valid signature (s -> n - s) verifies too (SPEC section 11).
    for spec in [KeySpec::EcP256, KeySpec::EcP256K] {
        let key = PrivateKey::generate(spec, &mut SysRng).unwrap();
        let pk = key.public_key();
        let mut saw_high = false;
        for i in 0..16u8 {
            let d = sha256(&[i]);
            let der = key
                .sign_digest(Algorithm::EcdsaSha256, &d, &mut SysRng)
                .unwrap();
            let high = if spec == KeySpec::EcP256 {
                let s = p256::ecdsa::Signature::from_der(&der).unwrap();
                assert!(!bool::from(s.s().is_high()), "emitted high-S");
                let h = p256::ecdsa::Signature::from_scalars(s.r(), -s.s()).unwrap();
                assert!(bool::from(h.s().is_high()));
                h.to_der().as_bytes().to_vec()
            } else {
                let s = k256::ecdsa::Signature::from_der(&der).unwrap();
                assert!(!bool::from(s.s().is_high()), "emitted high-S");
                let h = k256::ecdsa::Signature::from_scalars(s.r(), -s.s()).unwrap();
                assert!(bool::from(h.s().is_high()));
                h.to_der().as_bytes().to_vec()
            };
            saw_high = true;
            assert_ne!(high, der);
            assert!(
                pk.verify_digest(Algorithm::EcdsaSha256, &d, &high).unwrap(),
                "{spec}"
            );
        }
        assert!(saw_high);
    }
}

#[test]
fn pkcs8_round_trip_and_spec_binding() {
    for key in keys() {
        let der = key.to_pkcs8_der().unwrap();
        let back = PrivateKey::from_pkcs8_der(key.spec(), &der).unwrap();
        assert_eq!(
            back.public_key_pem().unwrap(),
            key.public_key_pem().unwrap()
        );
        // The same document is refused under any other spec.
        for &other in KeySpec::ALL {
            if other != key.spec() {
                assert!(PrivateKey::from_pkcs8_der(other, &der).is_err(), "{other}");
            }
        }
        let mut bad = der.to_vec();
        bad.truncate(bad.len() - 1);
        assert_eq!(
            PrivateKey::from_pkcs8_der(key.spec(), &bad).unwrap_err(),
            AsymError::InvalidKeyMaterial
        );
    }
}

#[test]
fn pem_parses_and_round_trips() {
    for key in keys() {
        let pem = key.public_key_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
        assert!(pem.trim_end().ends_with("-----END PUBLIC KEY-----"));
        let pk = PublicKey::from_pem(key.spec(), &pem).unwrap();
        assert_eq!(pk.to_pem().unwrap(), pem);
        assert_eq!(
            PublicKey::from_public_key_der(key.spec(), &pk.to_der().unwrap())
                .unwrap()
                .to_pem()
                .unwrap(),
            pem
        );
        for &other in KeySpec::ALL {
            if other != key.spec() {
                assert!(
                    PublicKey::from_pem(other, &pem).is_err(),
                    "{} as {other}",
                    key.spec()
                );
            }
        }
    }
    assert!(
        PublicKey::from_pem(
            KeySpec::EcP256,
            "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n"
        )
        .is_err()
    );
}

#[test]
fn encrypt_decrypt_round_trips_and_tampering() {
    for key in keys() {
        let algs: &[Algorithm] = match key.spec() {
            KeySpec::Rsa2048 => &[Algorithm::RsaesOaepSha256, Algorithm::RsaesOaepSha1],
            KeySpec::EcSm2 => &[Algorithm::Sm2Pke],
            _ => &[],
        };
        for &alg in algs {
            let pk = key.public_key();
            let ct = pk.encrypt(alg, b"secret data", &mut SysRng).unwrap();
            assert_eq!(
                &key.decrypt(alg, &ct, &mut SysRng).unwrap()[..],
                b"secret data"
            );
            for i in 0..ct.len() {
                let mut bad = ct.clone();
                bad[i] ^= 0x40;
                assert_eq!(
                    key.decrypt(alg, &bad, &mut SysRng),
                    Err(AsymError::DecryptionFailed),
                    "{alg} byte {i}"
                );
            }
            assert_eq!(
                key.decrypt(alg, &[], &mut SysRng),
                Err(AsymError::DecryptionFailed)
            );
        }
    }
    let rsa = PrivateKey::generate(KeySpec::Rsa2048, &mut SysRng).unwrap();
    let pk = rsa.public_key();
    // RFC 8017: at most k - 2 hLen - 2 bytes.
    assert!(
        pk.encrypt(Algorithm::RsaesOaepSha256, &[0; 190], &mut SysRng)
            .is_ok()
    );
    let e = pk
        .encrypt(Algorithm::RsaesOaepSha256, &[0; 191], &mut SysRng)
        .unwrap_err();
    assert!(matches!(
        e,
        AsymError::InvalidParameter {
            param: "Plaintext",
            ..
        }
    ));
    assert!(
        pk.encrypt(Algorithm::RsaesOaepSha1, &[0; 214], &mut SysRng)
            .is_ok()
    );
    assert!(
        pk.encrypt(Algorithm::RsaesOaepSha1, &[0; 215], &mut SysRng)
            .is_err()
    );
}

#[test]
fn sm2_digest_matches_the_crates_message_signing() {
    // Our Z(A) || M digest agrees with the sm2 crate's own message hashing
    // (which computes Z(A) from its curve arithmetic, not from our constants).
    use signature::Signer;
    let key = PrivateKey::generate(KeySpec::EcSm2, &mut SysRng).unwrap();
    let der = key.to_pkcs8_der().unwrap();
    let sk = <sm2::SecretKey as rsa::pkcs8::DecodePrivateKey>::from_pkcs8_der(&der).unwrap();
    let signer = sm2::dsa::SigningKey::new("1234567812345678", &sk).unwrap();
    let sig: sm2::dsa::Signature = signer.sign(b"abc");
    let der_sig = sm2::dsa::DerSignature::from(sig).to_vec();
    let e = sm2_digest(&key.public_key(), b"abc").unwrap();
    assert!(key.verify_digest(Algorithm::Sm2Dsa, &e, &der_sig).unwrap());
    let e2 = sm2_digest(&key.public_key(), b"abd").unwrap();
    assert!(!key.verify_digest(Algorithm::Sm2Dsa, &e2, &der_sig).unwrap());
}

#[test]
fn debug_is_redacted() {
    for key in keys() {
        let s = format!("{key:?}");
        assert!(s.contains("[REDACTED]"), "{s}");
        let der = key.to_pkcs8_der().unwrap();
        // No run of 8 secret bytes appears as decimal or hex in the output.
        assert!(!s.contains(&format!(
            "{:02x}{:02x}",
            der[der.len() - 1],
            der[der.len() - 2]
        )));
        assert!(s.len() < 80, "{s}");
    }
}
