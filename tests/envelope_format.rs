//! Envelope formats v1 and v2 (docs/FORMAT.md, "Envelope"): golden vectors
//! in `tests/data/envelope/` decrypt, v2 binds its data key to envelope use,
//! and v1 envelopes still open.
//!
//! `LOCALKMS_BLESS=1` rewrites the v2 vector (v1 is frozen: the library no
//! longer writes it).
#![cfg(any(feature = "test-util", feature = "fuzzing"))]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use localkms::internal::{insecure_insert_fixed_key, insecure_seal_with_nonce};
use localkms::{EncryptionContext, Error, GenerateDataKeyRequest, Kms, PlaintextKind};

const KEY_ID: &str = "2b4d6f80-1a3c-4e5f-8a9b-0c1d2e3f4a5b";
const VERSION_ID: &str = "9e8d7c6b-5a49-4837-a261-504f3e2d1c0b";

fn material() -> [u8; 32] {
    std::array::from_fn(|i| i as u8)
}

#[cfg_attr(not(feature = "test-util"), allow(dead_code))]
fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/envelope")
}

fn golden_store() -> Kms {
    let kms = Kms::in_memory().expect("kms");
    insecure_insert_fixed_key(&kms, KEY_ID, VERSION_ID, &material()).expect("fixed key");
    kms
}

fn vector(name: &str) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(dir().join(name)).expect("vector file");
    text.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn check(name: &str, version: u8) {
    let v = vector(name);
    assert_eq!(v["expect"], "success");
    assert_eq!(v["key-id"], KEY_ID);
    assert_eq!(unhex(&v["material"]), material());
    let env = unhex(&v["envelope"]);
    assert_eq!(&env[..4], b"LKEV");
    assert_eq!(env[4], version, "{name}");
    let ctx = EncryptionContext::from_json(&v["context"]).expect("context");
    let kms = golden_store();
    let out = kms
        .envelope_decrypt(&env, &ctx)
        .expect("golden envelope opens");
    assert_eq!(out.as_slice(), v["plaintext"].as_bytes());
    let mut streamed = Vec::new();
    let info = kms
        .envelope_decrypt_stream(&ctx, &env[..], &mut streamed)
        .expect("stream");
    assert_eq!(streamed, v["plaintext"].as_bytes());
    assert_eq!(info.key_id, KEY_ID);
    assert_eq!(info.key_version_id, VERSION_ID);
    let mut r = kms.envelope_reader(&ctx, &env[..]).expect("reader");
    let mut read = Vec::new();
    std::io::Read::read_to_end(&mut r, &mut read).expect("read");
    assert_eq!(read, v["plaintext"].as_bytes());
    // A wrong context, a flipped bit anywhere, a cut: refused.
    assert_eq!(
        kms.envelope_decrypt(&env, &EncryptionContext::empty())
            .unwrap_err(),
        Error::DecryptionFailed
    );
    for i in (0..env.len()).filter(|i| !(9..81).contains(i)) {
        let mut t = env.clone();
        t[i] ^= 0x10;
        assert!(kms.envelope_decrypt(&t, &ctx).is_err(), "{name} byte {i}");
    }
    for cut in [env.len() - 1, env.len() - 16, 153, 7] {
        assert!(kms.envelope_decrypt(&env[..cut], &ctx).is_err());
    }
}

#[test]
fn v1_golden_envelope_still_decrypts() {
    check("v1-single-chunk.txt", 1);
}

#[test]
fn v2_golden_envelope_decrypts() {
    if std::env::var_os("LOCALKMS_BLESS").is_some() {
        bless_v2();
    }
    check("v2-single-chunk.txt", 2);
}

#[cfg(feature = "test-util")]
fn bless_v2() {
    let kms = Kms::builder()
        .insecure_deterministic(7)
        .build()
        .expect("kms");
    insecure_insert_fixed_key(&kms, KEY_ID, VERSION_ID, &material()).expect("fixed key");
    let plaintext = "localkms envelope v2 golden vector";
    let ctx = r#"{"file":"golden.txt"}"#;
    let env = kms
        .envelope_encrypt(
            KEY_ID,
            plaintext.as_bytes(),
            &EncryptionContext::from_json(ctx).expect("ctx"),
        )
        .expect("encrypt");
    let text = format!(
        "expect: success\nkey-id: {KEY_ID}\nkey-version-id: {VERSION_ID}\nmaterial: {}\ncontext: {ctx}\nplaintext: {plaintext}\nenvelope: {}\n",
        hex(&material()),
        hex(&env)
    );
    std::fs::write(dir().join("v2-single-chunk.txt"), text).expect("write");
}

#[cfg(not(feature = "test-util"))]
fn bless_v2() {
    panic!("blessing needs --features test-util");
}

/// The blob in a v2 header is bound to envelope use: Decrypt refuses it,
/// and a GenerateDataKey blob in its place is refused by the reader.
#[test]
fn v2_data_key_is_bound_to_envelope_use() {
    let kms = golden_store();
    let ctx = EncryptionContext::empty();
    let env = kms
        .envelope_encrypt(KEY_ID, b"data", &ctx)
        .expect("encrypt");
    assert_eq!(env[4], 2, "the library writes v2");
    let blob = &env[7..153];
    assert_eq!(blob[1], 3, "kind EnvelopeKey");
    assert_eq!(
        kms.decrypt(blob, &ctx).unwrap_err(),
        Error::DecryptionFailed,
        "an envelope key is not a data key"
    );
    assert_eq!(
        kms.re_encrypt(blob, KEY_ID, &ctx, &ctx).unwrap_err(),
        Error::DecryptionFailed
    );
    // A GenerateDataKey blob is not an envelope header, in v2 or v1.
    let dk = kms
        .generate_data_key(KEY_ID, &GenerateDataKeyRequest::default())
        .expect("gdk");
    for version in [1u8, 2] {
        let mut forged = env.clone();
        forged[4] = version;
        forged[7..153].copy_from_slice(&dk.ciphertext_blob);
        assert_eq!(
            kms.envelope_decrypt(&forged, &ctx).unwrap_err(),
            Error::DecryptionFailed,
            "data key blob as a v{version} header"
        );
    }
    // The v2 header's own blob under a v1 version byte: refused (the kind
    // does not match, and the chunk key would differ).
    let mut as_v1 = env.clone();
    as_v1[4] = 1;
    assert_eq!(
        kms.envelope_decrypt(&as_v1, &ctx).unwrap_err(),
        Error::DecryptionFailed
    );
    // A v2 envelope built by hand with the data key sealed as an envelope
    // key but the chunks keyed with the raw data key (v1's rule) fails: the
    // chunk key is derived.
    let data_key = [0x42u8; 32];
    let sealed = insecure_seal_with_nonce(
        &kms,
        KEY_ID,
        PlaintextKind::EnvelopeKey,
        &data_key,
        &ctx,
        &[1; 24],
    )
    .expect("seal");
    let mut header = b"LKEV\x02\x00\x92".to_vec();
    header.extend_from_slice(&sealed);
    use aes_gcm::aead::{AeadInOut, KeyInit};
    let raw = aes_gcm::Aes256Gcm::new(&data_key.into());
    let mut body = b"hello".to_vec();
    let mut nonce = [0u8; 12];
    nonce[11] = 1;
    let tag = raw
        .encrypt_inout_detached(&nonce.into(), &header, body.as_mut_slice().into())
        .expect("seal");
    let mut forged = header.clone();
    forged.extend_from_slice(&body);
    forged.extend_from_slice(&tag);
    assert_eq!(
        kms.envelope_decrypt(&forged, &ctx).unwrap_err(),
        Error::DecryptionFailed
    );
}
