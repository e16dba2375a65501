//! Encrypt, GenerateDataKey and Decrypt against SPEC sections 1, 2, 4 and 5,
//! run on every keystore backend.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use localkms::{
    CiphertextBlob, CreateKeyRequest, DECRYPTION_FAILED_MESSAGE, DataKeySpec, Decrypted,
    EncryptionContext, Error, GenerateDataKeyRequest, Kms, ManualClock, PlaintextKind,
};
use proptest::prelude::*;

const T0: i64 = 1_700_000_000;

/// Decrypt of the wire's base64 text, as the wire layer does it.
fn decrypt_text(kms: &Kms, text: &str, ctx: &EncryptionContext) -> Result<Decrypted, Error> {
    CiphertextBlob::from_base64(text).and_then(|b| kms.decrypt(&b, ctx))
}

struct Fixture {
    kms: Kms,
    clock: ManualClock,
    key: String,
    _dir: Option<tempfile::TempDir>,
}

fn memory() -> Fixture {
    let clock = ManualClock::new(T0);
    let kms = Kms::builder()
        .in_memory()
        .clock(clock.clone())
        .build()
        .expect("kms");
    let key = kms.create_key(&Default::default()).expect("key").key_id;
    Fixture {
        kms,
        clock,
        key,
        _dir: None,
    }
}

fn sled() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(T0);
    let kms = Kms::builder()
        .sled(dir.path())
        .root_key_bytes(&[5; 32])
        .clock(clock.clone())
        .build()
        .expect("kms");
    let key = kms.create_key(&Default::default()).expect("key").key_id;
    Fixture {
        kms,
        clock,
        key,
        _dir: Some(dir),
    }
}

fn none() -> EncryptionContext {
    EncryptionContext::empty()
}

fn ctx(json: &str) -> EncryptionContext {
    EncryptionContext::from_json(json).expect("context")
}

fn assert_decryption_failed(e: &Error) {
    assert_eq!(e, &Error::DecryptionFailed);
    assert_eq!(e.code(), "InvalidParameter");
    assert_eq!(e.http_status(), 400);
    assert_eq!(e.to_string(), DECRYPTION_FAILED_MESSAGE);
}

/// Declares each test once per backend.
macro_rules! on_every_backend {
    ($($name:ident),+ $(,)?) => {
        mod on_memory { $(#[test] fn $name() { super::$name(super::memory()) })+ }
        mod on_sled { $(#[test] fn $name() { super::$name(super::sled()) })+ }
    };
}

on_every_backend!(
    encrypt_decrypt_round_trip,
    data_key_round_trip,
    data_key_lengths,
    plaintext_limits,
    missing_parameters,
    key_id_forms,
    state_table,
    context_is_authenticated,
    blob_from_another_store_is_key_not_found,
    malformed_blobs_are_uniformly_invalid,
    nonces_never_repeat,
    deleted_key_never_decrypts,
    cache_follows_enable_and_disable,
);

fn encrypt_decrypt_round_trip(f: Fixture) {
    let c = ctx(r#"{"a":"1"}"#);
    let text = "Plaintext is an opaque string: ünïcödé, \"quotes\", \\ and \u{1F512}";
    let e = f.kms.encrypt(&f.key, text.as_bytes(), &c).expect("encrypt");
    assert_eq!(e.key_id, f.key);
    let meta = f.kms.describe_key(&f.key).expect("describe");
    assert_eq!(e.key_version_id, meta.primary_key_version);
    let d = f.kms.decrypt(&e.ciphertext_blob, &c).expect("decrypt");
    assert_eq!(d.key_id, f.key);
    assert_eq!(d.key_version_id, e.key_version_id);
    assert_eq!(d.kind, PlaintextKind::Text);
    assert_eq!(d.plaintext.expose_secret(), text.as_bytes());
    assert_eq!(
        d.wire_plaintext().as_str(),
        text,
        "the wire gets the same string"
    );
    // Bytes in, same bytes out, even when they are not text.
    let bytes: Vec<u8> = (0..=255).collect();
    let e = f.kms.encrypt(&f.key, &bytes, &none()).expect("encrypt");
    let d = f.kms.decrypt(&e.ciphertext_blob, &none()).expect("decrypt");
    assert_eq!(d.plaintext.expose_secret(), &bytes[..]);
}

fn data_key_round_trip(f: Fixture) {
    let c = ctx(r#"{"file":"x"}"#);
    let req = GenerateDataKeyRequest::default().context(c.clone());
    let dk = f.kms.generate_data_key(&f.key, &req).expect("gdk");
    assert_eq!(dk.key_id, f.key);
    assert_eq!(dk.plaintext.len(), 32, "AES_256 is the default");
    let d = f.kms.decrypt(&dk.ciphertext_blob, &c).expect("decrypt");
    assert_eq!(d.kind, PlaintextKind::DataKey);
    assert_eq!(d.key_version_id, dk.key_version_id);
    assert_eq!(
        d.plaintext.expose_secret(),
        dk.plaintext.expose_secret(),
        "the Rust API gets the raw data key"
    );
    assert_eq!(
        d.wire_plaintext().as_str(),
        dk.plaintext.to_base64().as_str(),
        "the wire gets the same base64 Plaintext"
    );
    assert_eq!(
        BASE64
            .decode(dk.plaintext.to_base64().as_str())
            .expect("b64"),
        dk.plaintext.expose_secret()
    );
    let other = f.kms.generate_data_key(&f.key, &req).expect("gdk");
    assert_ne!(
        other.plaintext.expose_secret(),
        dk.plaintext.expose_secret(),
        "every data key is fresh"
    );
    assert_decryption_failed(&f.kms.decrypt(&dk.ciphertext_blob, &none()).unwrap_err());
}

fn data_key_lengths(f: Fixture) {
    let len = |req: GenerateDataKeyRequest| {
        f.kms
            .generate_data_key(&f.key, &req)
            .map(|dk| dk.plaintext.len())
    };
    assert_eq!(
        len(GenerateDataKeyRequest::with_spec(DataKeySpec::Aes256)),
        Ok(32)
    );
    assert_eq!(
        len(GenerateDataKeyRequest::with_spec(DataKeySpec::Aes128)),
        Ok(16)
    );
    for n in [1u32, 16, 31, 1024] {
        assert_eq!(
            len(GenerateDataKeyRequest::with_number_of_bytes(n)),
            Ok(n as usize)
        );
    }
    // NumberOfBytes wins over KeySpec.
    let mut req = GenerateDataKeyRequest::with_spec(DataKeySpec::Aes128);
    req.number_of_bytes = Some(64);
    assert_eq!(len(req), Ok(64));
    for n in [0u32, 1025, u32::MAX] {
        let e = len(GenerateDataKeyRequest::with_number_of_bytes(n)).unwrap_err();
        assert_eq!(e.code(), "InvalidParameter");
        assert!(e.to_string().contains("NumberOfBytes"), "{e}");
    }
    // Every length decrypts to the same key.
    let dk = f
        .kms
        .generate_data_key(&f.key, &GenerateDataKeyRequest::with_number_of_bytes(1024))
        .expect("gdk");
    let d = f
        .kms
        .decrypt(&dk.ciphertext_blob, &none())
        .expect("decrypt");
    assert_eq!(d.plaintext.expose_secret(), dk.plaintext.expose_secret());
}

#[test]
fn data_key_spec_wire_strings_are_exact() {
    assert_eq!("AES_256".parse::<DataKeySpec>(), Ok(DataKeySpec::Aes256));
    assert_eq!("AES_128".parse::<DataKeySpec>(), Ok(DataKeySpec::Aes128));
    for bad in ["aes_256", "AES_512", "", "Aliyun_AES_256", "AES_256 "] {
        let e = bad.parse::<DataKeySpec>().unwrap_err();
        assert_eq!(e.code(), "InvalidParameter");
        assert!(e.to_string().contains("KeySpec"));
    }
    assert_eq!(DataKeySpec::Aes128.to_string(), "AES_128");
    assert_eq!(DataKeySpec::default(), DataKeySpec::Aes256);
}

fn plaintext_limits(f: Fixture) {
    let max = vec![b'p'; 6144];
    let e = f
        .kms
        .encrypt(&f.key, &max, &none())
        .expect("6144 bytes fit");
    let d = f.kms.decrypt(&e.ciphertext_blob, &none()).expect("decrypt");
    assert_eq!(d.plaintext.expose_secret(), &max[..]);
    let over = vec![b'q'; 6145];
    let e = f.kms.encrypt(&f.key, &over, &none()).unwrap_err();
    assert_eq!(e.code(), "InvalidParameter");
    assert!(e.to_string().contains("Plaintext"));
    assert!(!e.to_string().contains("qqqq"), "no plaintext in errors");
    // Bytes, not characters: 2049 three-byte characters are 6147 bytes.
    let wide = "€".repeat(2049);
    assert_eq!(
        f.kms
            .encrypt(&f.key, wide.as_bytes(), &none())
            .unwrap_err()
            .code(),
        "InvalidParameter"
    );
}

fn missing_parameters(f: Fixture) {
    assert_eq!(
        f.kms.encrypt("", b"x", &none()).unwrap_err(),
        Error::MissingParameter("KeyId")
    );
    assert_eq!(
        f.kms.encrypt(&f.key, b"", &none()).unwrap_err(),
        Error::MissingParameter("Plaintext")
    );
    assert_eq!(
        f.kms
            .generate_data_key("", &GenerateDataKeyRequest::default())
            .unwrap_err(),
        Error::MissingParameter("KeyId")
    );
    assert_eq!(
        f.kms.decrypt(b"", &none()).unwrap_err(),
        Error::MissingParameter("CiphertextBlob")
    );
}

fn key_id_forms(f: Fixture) {
    let arn = f.kms.describe_key(&f.key).expect("describe").arn;
    let e = f
        .kms
        .encrypt(&arn, b"x", &none())
        .expect("a key ARN is accepted");
    assert_eq!(e.key_id, f.key, "the response names the key, not the ARN");
    let dk = f
        .kms
        .generate_data_key(&arn, &GenerateDataKeyRequest::default())
        .expect("gdk by ARN");
    assert_eq!(dk.key_id, f.key);
    // Aliases are accepted ("alias ok"): an unknown one is not found.
    for alias in [
        "alias/missing".to_owned(),
        format!(
            "acs:kms:{}:{}:alias/missing",
            localkms::DEFAULT_REGION_ID,
            localkms::DEFAULT_ACCOUNT_ID
        ),
    ] {
        assert_eq!(
            f.kms.encrypt(&alias, b"x", &none()).unwrap_err().code(),
            "Forbidden.AliasNotFound"
        );
        assert_eq!(
            f.kms
                .generate_data_key(&alias, &GenerateDataKeyRequest::default())
                .unwrap_err()
                .code(),
            "Forbidden.AliasNotFound"
        );
    }
    for missing in [
        "not-a-key",
        "00000000-0000-4000-8000-000000000000",
        "acs:kms:cn-beijing:1234567890123456:key/00000000-0000-4000-8000-000000000000",
    ] {
        assert_eq!(
            f.kms.encrypt(missing, b"x", &none()).unwrap_err().code(),
            "Forbidden.KeyNotFound",
            "{missing}"
        );
    }
    let other_region = arn.replace(localkms::DEFAULT_REGION_ID, "cn-beijing");
    assert_eq!(
        f.kms
            .encrypt(&other_region, b"x", &none())
            .unwrap_err()
            .code(),
        "Forbidden.KeyNotFound"
    );
}

/// SPEC section 2: the crypto row of the state table.
fn state_table(f: Fixture) {
    let blob = f
        .kms
        .encrypt(&f.key, b"x", &none())
        .expect("encrypt")
        .ciphertext_blob;
    let check = |key: &str, blob: Option<&[u8]>, code: &str| {
        assert_eq!(f.kms.encrypt(key, b"x", &none()).unwrap_err().code(), code);
        assert_eq!(
            f.kms
                .generate_data_key(key, &GenerateDataKeyRequest::default())
                .unwrap_err()
                .code(),
            code
        );
        if let Some(b) = blob {
            assert_eq!(f.kms.decrypt(b, &none()).unwrap_err().code(), code);
        }
    };
    f.kms.disable_key(&f.key).expect("disable");
    check(&f.key, Some(&blob), "Rejected.Disabled");
    f.kms.schedule_key_deletion(&f.key, 7).expect("schedule");
    check(&f.key, Some(&blob), "Rejected.PendingDeletion");
    f.kms.cancel_key_deletion(&f.key).expect("cancel");
    assert_eq!(
        f.kms
            .decrypt(&blob, &none())
            .expect("enabled again")
            .plaintext
            .expose_secret(),
        b"x"
    );
    let external = f
        .kms
        .create_key(&CreateKeyRequest::external())
        .expect("external")
        .key_id;
    check(&external, None, "Rejected.PendingImport");
    let e = f.kms.encrypt(&external, b"x", &none()).unwrap_err();
    assert_eq!(e.http_status(), 409);
}

fn context_is_authenticated(f: Fixture) {
    let seal = |c: &str| {
        f.kms
            .encrypt(&f.key, b"secret", &ctx(c))
            .expect("encrypt")
            .ciphertext_blob
    };
    let open = |blob: &[u8], c: &str| f.kms.decrypt(blob, &ctx(c));
    let b = seal(r#"{"a":"1","b":"2"}"#);
    assert!(
        open(&b, r#"{"b":"2","a":"1"}"#).is_ok(),
        "key order does not matter"
    );
    for wrong in [
        "",
        "{}",
        r#"{"a":"1"}"#,
        r#"{"a":"1","b":"3"}"#,
        r#"{"a":"1","b":"2","c":"3"}"#,
    ] {
        assert_decryption_failed(&open(&b, wrong).unwrap_err());
    }
    let b = seal(r#"{"ab":"c"}"#);
    assert_decryption_failed(&open(&b, r#"{"a":"bc"}"#).unwrap_err());
    assert!(open(&b, r#"{"ab":"c"}"#).is_ok());
    // {} equals no context, both ways.
    assert!(open(&seal("{}"), "").is_ok());
    assert!(open(&seal(""), "{}").is_ok());
    let dk = f
        .kms
        .generate_data_key(&f.key, &GenerateDataKeyRequest::default())
        .expect("gdk");
    assert!(f.kms.decrypt(&dk.ciphertext_blob, &ctx("{}")).is_ok());
}

fn blob_from_another_store_is_key_not_found(f: Fixture) {
    let other = memory();
    let blob = other
        .kms
        .encrypt(&other.key, b"x", &none())
        .expect("encrypt")
        .ciphertext_blob;
    assert_eq!(
        f.kms.decrypt(&blob, &none()).unwrap_err(),
        Error::KeyNotFound(other.key.clone())
    );
}

fn malformed_blobs_are_uniformly_invalid(f: Fixture) {
    let good = f
        .kms
        .encrypt(&f.key, b"abc", &none())
        .expect("encrypt")
        .ciphertext_blob
        .to_base64();
    let raw = BASE64.decode(&good).expect("b64");
    let mut cases: Vec<String> = vec![
        "not base64!".into(),
        "====".into(),
        "AAAA".into(),
        "A".into(),
        good[..good.len() - 1].to_owned(),
        format!("{good}A"),
        format!(" {good}"),
        good.replace('+', "-").replace('/', "_") + "-_",
        "A".repeat(1 << 20),
    ];
    for len in [0, 1, 2, 97, 98, 113, raw.len() - 1] {
        cases.push(BASE64.encode(&raw[..len]));
    }
    // A header with no ciphertext or tag, and a header with only a tag.
    cases.push(BASE64.encode(&raw[..98]));
    cases.push(BASE64.encode([&raw[..98], &raw[raw.len() - 16..]].concat()));
    cases.push(BASE64.encode([&raw[..], b"appended"].concat()));
    for c in &cases {
        if c.is_empty() {
            continue;
        }
        assert_decryption_failed(&decrypt_text(&f.kms, c, &none()).unwrap_err());
        if let Ok(bytes) = BASE64.decode(c) {
            assert_decryption_failed(&f.kms.decrypt(&bytes, &none()).unwrap_err());
        }
    }
}

fn nonces_never_repeat(f: Fixture) {
    let mut seen = std::collections::HashSet::new();
    for _ in 0..64 {
        let b = f
            .kms
            .encrypt(&f.key, b"same", &none())
            .expect("encrypt")
            .ciphertext_blob;
        assert!(seen.insert(b[74..98].to_vec()), "a nonce repeated");
    }
}

fn deleted_key_never_decrypts(f: Fixture) {
    let blob = f
        .kms
        .encrypt(&f.key, b"x", &none())
        .expect("encrypt")
        .ciphertext_blob;
    f.kms.schedule_key_deletion(&f.key, 30).expect("schedule");
    f.clock.advance(30 * 86_400 - 1);
    assert_eq!(
        f.kms.decrypt(&blob, &none()).unwrap_err().code(),
        "Rejected.PendingDeletion"
    );
    f.clock.advance(1);
    assert_eq!(
        f.kms.decrypt(&blob, &none()).unwrap_err(),
        Error::KeyNotFound(f.key.clone())
    );
    assert_eq!(
        f.kms.encrypt(&f.key, b"x", &none()).unwrap_err().code(),
        "Forbidden.KeyNotFound"
    );
}

/// The cipher cache never outlives a state change.
fn cache_follows_enable_and_disable(f: Fixture) {
    let blob = f
        .kms
        .encrypt(&f.key, b"x", &none())
        .expect("encrypt")
        .ciphertext_blob;
    for _ in 0..3 {
        f.kms.disable_key(&f.key).expect("disable");
        assert_eq!(
            f.kms.encrypt(&f.key, b"x", &none()).unwrap_err().code(),
            "Rejected.Disabled"
        );
        assert_eq!(
            f.kms.decrypt(&blob, &none()).unwrap_err().code(),
            "Rejected.Disabled"
        );
        f.kms.enable_key(&f.key).expect("enable");
        assert!(f.kms.decrypt(&blob, &none()).is_ok());
        assert!(f.kms.encrypt(&f.key, b"x", &none()).is_ok());
    }
}

#[test]
fn sled_blobs_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = || {
        Kms::builder()
            .sled(dir.path())
            .root_key_bytes(&[9; 32])
            .build()
            .expect("kms")
    };
    let (key, blob, dk) = {
        let kms = open();
        let key = kms.create_key(&Default::default()).expect("key").key_id;
        let blob = kms
            .encrypt(&key, b"kept", &none())
            .expect("encrypt")
            .ciphertext_blob;
        let dk = kms
            .generate_data_key(&key, &GenerateDataKeyRequest::default())
            .expect("gdk");
        (key, blob, dk)
    };
    let kms = open();
    let d = kms.decrypt(&blob, &none()).expect("decrypt after reopen");
    assert_eq!(d.key_id, key);
    assert_eq!(d.plaintext.expose_secret(), b"kept");
    let d = kms
        .decrypt(&dk.ciphertext_blob, &none())
        .expect("decrypt after reopen");
    assert_eq!(d.plaintext.expose_secret(), dk.plaintext.expose_secret());
}

#[test]
fn errors_never_carry_plaintext() {
    let f = memory();
    let secret = "TOPSECRET-".repeat(700);
    let e = f
        .kms
        .encrypt(&f.key, secret.as_bytes(), &none())
        .unwrap_err();
    assert!(!e.to_string().contains("TOPSECRET"));
    assert!(!format!("{e:?}").contains("TOPSECRET"));
    let blob = f
        .kms
        .encrypt(&f.key, b"TOPSECRET", &none())
        .expect("encrypt")
        .ciphertext_blob;
    let e = f.kms.decrypt(&blob, &ctx(r#"{"x":"y"}"#)).unwrap_err();
    assert!(!format!("{e} {e:?}").contains("TOPSECRET"));
}

#[test]
fn encrypt_and_decrypt_from_many_threads() {
    let f = memory();
    std::thread::scope(|s| {
        for t in 0..4u8 {
            let (kms, key) = (&f.kms, &f.key);
            s.spawn(move || {
                for i in 0..50u8 {
                    let msg = [t, i];
                    let b = kms
                        .encrypt(key, &msg, &none())
                        .expect("encrypt")
                        .ciphertext_blob;
                    let d = kms.decrypt(&b, &none()).expect("decrypt");
                    assert_eq!(d.plaintext.expose_secret(), &msg);
                }
            });
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_blobs_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let f = memory();
        if !bytes.is_empty() {
            let e = f.kms.decrypt(&bytes, &none()).unwrap_err();
            prop_assert!(matches!(
                e,
                Error::DecryptionFailed | Error::KeyNotFound(_) | Error::KeyVersionNotFound(_)
            ));
        }
    }

    #[test]
    fn random_text_never_panics(text in ".{0,300}") {
        let f = memory();
        let _ = decrypt_text(&f.kms, &text, &none());
        let _ = f.kms.decrypt(text.as_bytes(), &none());
    }

    #[test]
    fn any_plaintext_round_trips(pt in proptest::collection::vec(any::<u8>(), 1..=6144)) {
        let f = memory();
        let b = f.kms.encrypt(&f.key, &pt, &none()).expect("encrypt").ciphertext_blob;
        let d = f.kms.decrypt(&b, &none()).expect("decrypt");
        prop_assert_eq!(d.plaintext.expose_secret(), &pt[..]);
    }
}
