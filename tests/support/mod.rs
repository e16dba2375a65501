//! Helpers for the BYOK tests: wrapping material as a user does, in Rust
//! (`rsa`) and in Python (`cryptography`, through `wrap_key.py`).

#![allow(dead_code)]

use std::io::Write as _;
use std::process::{Command, Stdio};

use base64::Engine as _;
use localkms::{
    CreateKeyRequest, ImportParameters, Kms, ManualClock, WrappingAlgorithm, WrappingKeySpec,
};
use rsa::pkcs8::DecodePublicKey as _;
use rsa::traits::PublicKeyParts as _;

pub const T0: i64 = 1_700_000_000;

pub fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

pub fn kms() -> (Kms, ManualClock) {
    let clock = ManualClock::new(T0);
    let kms = Kms::builder()
        .in_memory()
        .clock(clock.clone())
        .build()
        .expect("kms");
    (kms, clock)
}

pub fn external(kms: &Kms) -> String {
    kms.create_key(&CreateKeyRequest::external())
        .expect("create")
        .key_id
}

pub fn params(kms: &Kms, key_id: &str, alg: WrappingAlgorithm) -> ImportParameters {
    kms.get_parameters_for_import(key_id, alg, WrappingKeySpec::Rsa2048)
        .expect("parameters")
}

pub fn public_key(params: &ImportParameters) -> rsa::PublicKey {
    let der = b64().decode(&params.public_key).expect("base64");
    rsa::PublicKey::from_public_key_der(&der).expect("DER SubjectPublicKeyInfo")
}

pub fn random_material() -> [u8; 32] {
    let mut m = [0u8; 32];
    getrandom::fill(&mut m).expect("random");
    m
}

/// RSA without padding: `em` is the encoded message, `k` bytes.
pub fn raw_encrypt(key: &rsa::PublicKey, em: &[u8]) -> Vec<u8> {
    let m = rsa::BoxedUint::from_be_slice(em, key.n_bits_precision()).expect("fits");
    let c = rsa::hazmat::rsa_encrypt(key, &m).expect("encrypt");
    let bytes = c.to_be_bytes();
    bytes[bytes.len() - key.size()..].to_vec()
}

/// EME-PKCS1-v1_5 encoding (RFC 8017 section 7.2.1) of `msg` into `k` bytes.
pub fn pkcs1_em(k: usize, msg: &[u8]) -> Vec<u8> {
    let mut em = vec![0u8, 2];
    while em.len() < k - msg.len() - 1 {
        let mut b = [0u8; 1];
        getrandom::fill(&mut b).expect("random");
        if b[0] != 0 {
            em.push(b[0]);
        }
    }
    em.push(0);
    em.extend_from_slice(msg);
    em
}

/// Wraps `material` under `key` with `alg`, in Rust, as raw bytes.
pub fn wrap_raw(key: &rsa::PublicKey, alg: WrappingAlgorithm, material: &[u8]) -> Vec<u8> {
    let mut rng = getrandom::SysRng;
    match alg {
        WrappingAlgorithm::RsaesPkcs1V15 => raw_encrypt(key, &pkcs1_em(key.size(), material)),
        WrappingAlgorithm::RsaesOaepSha1 => key
            .encrypt(&mut rng, rsa::Oaep::<sha1::Sha1>::new(), material)
            .expect("oaep"),
        WrappingAlgorithm::RsaesOaepSha256 => key
            .encrypt(&mut rng, rsa::Oaep::<sha2::Sha256>::new(), material)
            .expect("oaep"),
    }
}

/// Wraps `material` for `params`, in Rust, as the `EncryptedKeyMaterial` text.
pub fn wrap(params: &ImportParameters, alg: WrappingAlgorithm, material: &[u8]) -> String {
    b64().encode(wrap_raw(&public_key(params), alg, material))
}

/// Gets fresh parameters, wraps `material` in Rust and imports it.
pub fn import(
    kms: &Kms,
    key_id: &str,
    alg: WrappingAlgorithm,
    material: &[u8],
    expire: Option<i64>,
) -> localkms::Result<()> {
    let p = params(kms, key_id, alg);
    kms.import_key_material(key_id, &wrap(&p, alg, material), &p.import_token, expire)
}

/// Wraps `material` for `params` with Python's `cryptography`, through
/// `tests/support/wrap_key.py`. The interpreter is `$LOCALKMS_PYTHON`
/// (default `python3`). Panics, failing the test, if it cannot run.
pub fn wrap_with_python(
    params: &ImportParameters,
    alg: WrappingAlgorithm,
    material: &[u8],
) -> String {
    let python = std::env::var("LOCALKMS_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/wrap_key.py");
    let mut child = Command::new(&python)
        .arg(script)
        .arg(alg.as_str())
        .arg(&params.public_key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {python} (set LOCALKMS_PYTHON to a Python with `cryptography`): {e}")
        });
    let hex: String = material.iter().map(|b| format!("{b:02x}")).collect();
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(hex.as_bytes())
        .expect("write material");
    let out = child.wait_with_output().expect("wait for python");
    assert!(
        out.status.success(),
        "{python} {script} failed (set LOCALKMS_PYTHON to a Python with `cryptography`): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

// ---- for the backup round trips (tests/backup.rs, tests/pg_backup.rs) ----

/// Keys in several states with blobs: an alias, a tag, a second version,
/// imported material, a disabled key.
pub fn populate(kms: &Kms) -> Vec<(String, localkms::CiphertextBlob)> {
    let a = kms
        .create_key(&localkms::CreateKeyRequest {
            tags: vec![localkms::Tag::new("team", "x").expect("tag")],
            ..Default::default()
        })
        .expect("a")
        .key_id;
    kms.create_alias("alias/a", &a).expect("alias");
    let mut blobs = vec![(
        a.clone(),
        kms.encrypt(&a, b"a1", &localkms::EncryptionContext::empty())
            .expect("e")
            .ciphertext_blob,
    )];
    kms.create_key_version(&a).expect("rotate");
    blobs.push((
        a.clone(),
        kms.encrypt(&a, b"a2", &localkms::EncryptionContext::empty())
            .expect("e")
            .ciphertext_blob,
    ));
    let ext = external(kms);
    import(
        kms,
        &ext,
        WrappingAlgorithm::RsaesOaepSha256,
        &[3; 32],
        None,
    )
    .expect("import");
    blobs.push((
        ext.clone(),
        kms.encrypt(&ext, b"x", &localkms::EncryptionContext::empty())
            .expect("e")
            .ciphertext_blob,
    ));
    let b = kms.create_key(&Default::default()).expect("b").key_id;
    blobs.push((
        b.clone(),
        kms.encrypt(&b, b"b", &localkms::EncryptionContext::empty())
            .expect("e")
            .ciphertext_blob,
    ));
    kms.disable_key(&b).expect("disable");
    blobs
}

/// verify() passes, every blob decrypts (or its key is disabled, as it was),
/// the alias and the tag came along, and the store takes new writes.
pub fn check_restored(kms: &Kms, blobs: &[(String, localkms::CiphertextBlob)]) {
    let r = kms.verify().expect("verify");
    assert!(r.is_ok(), "{r}");
    let mut decrypted = 0;
    for (key, blob) in blobs {
        match kms.decrypt(blob, &localkms::EncryptionContext::empty()) {
            Ok(d) => {
                assert_eq!(&d.key_id, key);
                decrypted += 1;
            }
            Err(e) => {
                assert_eq!(e.code(), "Rejected.Disabled", "{e:?}");
                assert_eq!(
                    kms.describe_key(key).expect("d").key_state,
                    localkms::KeyState::Disabled
                );
            }
        }
    }
    assert_eq!(decrypted, blobs.len() - 1);
    assert_eq!(kms.list_resource_tags(&blobs[0].0).expect("tags").len(), 1);
    assert_eq!(
        kms.encrypt("alias/a", b"y", &localkms::EncryptionContext::empty())
            .expect("alias")
            .key_id,
        blobs[0].0
    );
    kms.create_key(&Default::default())
        .expect("create after restore");
    assert!(kms.verify().expect("verify").is_ok());
}
