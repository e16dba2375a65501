//! Security properties that cut across operations:
//! - `Debug` and `Display` of every public type and error show no plaintext,
//!   data key or key material;
//! - the store's files never hold material, data keys or plaintexts;
//! - sealed records copied over one another are detected when used;
//! - a wrong root key, and a truncated or corrupted store, give a clear error
//!   and never a panic.
#![cfg(any(feature = "test-util", feature = "fuzzing"))]

mod support;

use std::path::Path;

use base64::Engine as _;
use localkms::store::{Batch, Keystore, Scan, SledKeystore, StoreError};
use localkms::{
    Config, CreateKeyRequest, DataKeySpec, EncryptionContext, Error, GenerateDataKeyRequest,
    KeyState, Kms, KmsBuilder, ManualClock, Paging, Rejection, RootKey, WrappingAlgorithm,
};

const ROOT: [u8; 32] = [0xa5; 32];
const FIXED_KEY: &str = "6e2f1a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b";
const FIXED_VERSION: &str = "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d";
/// Known material for a fixed key; no real key would have it.
const FIXED_MATERIAL: [u8; 32] = *b"FIXED-MATERIAL-0123456789abcdef!";
/// Known material imported through BYOK.
const BYOK_MATERIAL: [u8; 32] = *b"IMPORTED-MATERIAL-0123456789abc!";

/// The renderings of a secret that must never appear in text.
fn renderings(secret: &[u8]) -> Vec<String> {
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let mut v = vec![
        hex.clone(),
        hex.to_uppercase(),
        base64::engine::general_purpose::STANDARD.encode(secret),
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(secret),
        format!("{secret:?}"),
    ];
    // The first bytes alone, as a list, catch truncated dumps too.
    v.push(
        format!("{:?}", &secret[..secret.len().min(8)])
            .trim_end_matches(']')
            .to_owned(),
    );
    if let Ok(text) = std::str::from_utf8(secret) {
        v.push(text.to_owned());
    }
    v
}

fn assert_clean(what: &str, text: &str, secrets: &[Vec<u8>]) {
    for s in secrets {
        for r in renderings(s) {
            assert!(!text.contains(&r), "{what} shows a secret ({r}): {text}");
        }
    }
}

fn clock() -> ManualClock {
    ManualClock::new(support::T0)
}

/// A store with a fixed-material key, an imported key, a data key and an
/// encrypted plaintext; returns the service, the secrets and what was made.
struct Scene {
    kms: Kms,
    secrets: Vec<Vec<u8>>,
    external: String,
}

fn scene(kms: Kms) -> Scene {
    localkms::internal::insecure_insert_fixed_key(&kms, FIXED_KEY, FIXED_VERSION, &FIXED_MATERIAL)
        .expect("fixed key");
    let external = support::external(&kms);
    support::import(
        &kms,
        &external,
        WrappingAlgorithm::RsaesOaepSha256,
        &BYOK_MATERIAL,
        None,
    )
    .expect("import");
    Scene {
        kms,
        secrets: vec![
            FIXED_MATERIAL.to_vec(),
            BYOK_MATERIAL.to_vec(),
            ROOT.to_vec(),
        ],
        external,
    }
}

#[test]
fn debug_and_display_show_no_secret() {
    let Scene {
        kms,
        mut secrets,
        external,
    } = scene(
        Kms::builder()
            .in_memory()
            .root_key_bytes(&ROOT)
            .clock(clock())
            .build()
            .expect("kms"),
    );
    let ctx = EncryptionContext::from_pairs([("purpose", "test")]).expect("ctx");
    let plaintext = b"PLAINTEXT-THAT-MUST-NOT-SHOW-UP-IN-ANY-OUTPUT".to_vec();
    secrets.push(plaintext.clone());
    let mut shown: Vec<(String, String)> = Vec::new();
    let mut show = |what: &str, debug: String| shown.push((what.to_owned(), debug));

    for key in [FIXED_KEY, external.as_str()] {
        let enc = kms.encrypt(key, &plaintext, &ctx).expect("encrypt");
        show("EncryptResponse", format!("{enc:?}"));
        let dec = kms.decrypt(&enc.ciphertext_blob, &ctx).expect("decrypt");
        show("Decrypted", format!("{dec:?}"));
        show("SecretBytes", format!("{:?}", dec.plaintext));
        for spec in [DataKeySpec::Aes128, DataKeySpec::Aes256] {
            let dk = kms
                .generate_data_key(
                    key,
                    &GenerateDataKeyRequest::with_spec(spec).context(ctx.clone()),
                )
                .expect("data key");
            secrets.push(dk.plaintext.expose_secret().to_vec());
            show("DataKey", format!("{dk:?}"));
            show("SecretBytes", format!("{:?}", dk.plaintext));
            let d = kms.decrypt(&dk.ciphertext_blob, &ctx).expect("decrypt");
            show("Decrypted", format!("{d:?}"));
        }
        let env = kms
            .envelope_encrypt(key, &plaintext, &ctx)
            .expect("envelope");
        let info = kms
            .envelope_decrypt_stream(&ctx, env.as_slice(), Vec::new())
            .expect("open");
        show("EnvelopeInfo", format!("{info:?}"));
        show("KeyMetadata", format!("{:?}", kms.describe_key(key)));
    }
    let params = kms
        .get_parameters_for_import(
            &support::external(&kms),
            WrappingAlgorithm::RsaesPkcs1V15,
            localkms::WrappingKeySpec::Rsa2048,
        )
        .expect("params");
    show("ImportParameters", format!("{params:?}"));
    let moved = kms
        .re_encrypt(
            &kms.encrypt(FIXED_KEY, &plaintext, &ctx)
                .expect("encrypt")
                .ciphertext_blob,
            &external,
            &ctx,
            &EncryptionContext::empty(),
        )
        .expect("re-encrypt");
    show("ReEncryptResponse", format!("{moved:?}"));
    show(
        "KeyVersion",
        format!("{:?}", kms.create_key_version(FIXED_KEY).expect("rotate")),
    );
    show(
        "GenerateDataKeyWithoutPlaintext",
        format!(
            "{:?}",
            kms.generate_data_key_without_plaintext(FIXED_KEY, &Default::default())
        ),
    );
    let access_secret = b"ACCESS-KEY-SECRET-MUST-NOT-SHOW".to_vec();
    secrets.push(access_secret.clone());
    show(
        "Verifier",
        format!(
            "{:?}",
            localkms::wire::Verifier::new("AKID", String::from_utf8(access_secret).expect("utf-8"))
        ),
    );
    // Wire error responses carry no plaintext either.
    let wire_blob = kms
        .encrypt(FIXED_KEY, &plaintext, &ctx)
        .expect("encrypt")
        .ciphertext_blob
        .to_base64();
    for params in [
        vec![
            ("Action", "Decrypt"),
            ("CiphertextBlob", wire_blob.as_str()),
        ],
        vec![
            ("Action", "Decrypt"),
            ("CiphertextBlob", wire_blob.as_str()),
            ("EncryptionContext", "{\"purpose\":\"other\"}"),
            ("Format", "XML"),
        ],
    ] {
        let params: Vec<(String, String)> = params
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let response = localkms::wire::dispatch(&kms, &params);
        assert_eq!(response.status, 400);
        show("wire error response", format!("{response:?}"));
    }
    show("Kms", format!("{kms:?}"));
    show("Config", format!("{:?}", Config::default()));
    show(
        "RootKey",
        format!("{:?}", RootKey::from_bytes(&ROOT).expect("root")),
    );
    let builder: KmsBuilder = Kms::builder().in_memory().root_key_bytes(&ROOT);
    show("KmsBuilder", format!("{builder:?}"));
    show("EncryptionContext", format!("{ctx:?}"));
    show(
        "ListKeys",
        format!("{:?}", kms.list_keys(Paging::new(1, 100).expect("p"))),
    );

    // Every error the operations above can meet with these secrets at hand.
    let blob = kms
        .encrypt(FIXED_KEY, &plaintext, &ctx)
        .expect("encrypt")
        .ciphertext_blob;
    let mut errors = vec![
        kms.decrypt(&blob, &EncryptionContext::empty()).unwrap_err(),
        kms.decrypt(&blob[4..], &ctx).unwrap_err(),
        kms.decrypt(b"!!!!", &ctx).unwrap_err(),
        localkms::CiphertextBlob::from_base64("!!!!").unwrap_err(),
        kms.encrypt(FIXED_KEY, &[0u8; 7000], &ctx).unwrap_err(),
        kms.import_key_material(&external, "AAAA", &params.import_token, None)
            .unwrap_err(),
        kms.import_key_material(
            &params.key_id,
            &base64::engine::general_purpose::STANDARD.encode(FIXED_MATERIAL),
            &params.import_token,
            None,
        )
        .unwrap_err(),
        kms.import_key_material(
            &params.key_id,
            &support::wrap(&params, WrappingAlgorithm::RsaesPkcs1V15, &[1u8; 31]),
            &params.import_token,
            None,
        )
        .unwrap_err(),
        Kms::builder()
            .in_memory()
            .root_key_bytes(&ROOT[..31])
            .build()
            .unwrap_err(),
        RootKey::from_text(&format!("{}zz", "ab".repeat(31))).unwrap_err(),
        RootKey::from_text(&"41".repeat(33)).unwrap_err(),
    ];
    kms.disable_key(FIXED_KEY).expect("disable");
    errors.push(kms.encrypt(FIXED_KEY, &plaintext, &ctx).unwrap_err());
    errors.push(kms.decrypt(&blob, &ctx).unwrap_err());
    // And every variant, built by hand.
    errors.extend(every_variant());
    for e in &errors {
        show("Error (Debug)", format!("{e:?}"));
        show("Error (Display)", format!("{e}"));
    }
    for (what, text) in &shown {
        assert_clean(what, text, &secrets);
    }
    // The redacting types say so.
    for (what, text) in &shown {
        if ["DataKey", "SecretBytes", "Decrypted", "RootKey"].contains(&what.as_str()) {
            assert!(text.contains("REDACTED"), "{what}: {text}");
        }
    }
}

/// One value of every `Error` variant.
fn every_variant() -> Vec<Error> {
    vec![
        Error::MissingParameter("KeyId"),
        Error::InvalidParameter {
            param: "Plaintext",
            reason: "must be at most 6144 bytes".into(),
        },
        Error::DecryptionFailed,
        Error::KeyNotFound(FIXED_KEY.into()),
        Error::AliasNotFound("alias/x".into()),
        Error::KeyVersionNotFound(FIXED_VERSION.into()),
        Error::AliasAlreadyExists("alias/x".into()),
        Error::LimitExceeded("keys per store".into()),
        Error::InvalidKeyMaterial,
        Error::InvalidImportToken,
        Error::ExpiredImportToken,
        Error::UnsupportedOrigin {
            key_id: FIXED_KEY.into(),
            reason: "imported material",
        },
        Error::UnsupportedAlias("KeyId"),
        Error::UnsupportedOperation("x".into()),
        Error::Rejected {
            rejection: Rejection::Disabled,
            key_id: FIXED_KEY.into(),
            state: KeyState::Disabled,
        },
        Error::WrongRootKey,
        Error::InvalidRootKey("expected 32 bytes".into()),
        Error::UnsupportedStoreVersion(9),
        Error::StoreLocked("held".into()),
        Error::CorruptStore("x".into()),
        Error::Storage(StoreError::Io("disk".into())),
        Error::IncompleteSignature("x".into()),
        Error::IllegalTimestamp,
        Error::SignatureNonceUsed,
        Error::InvalidAccessKeyId,
        Error::InvalidAction("X".into()),
        Error::UnsupportedHttpMethod("PUT".into()),
        Error::Throttling,
        Error::ServiceUnavailable,
        Error::InternalFailure,
        Error::Io {
            kind: std::io::ErrorKind::BrokenPipe,
            message: "pipe".into(),
            cause: None,
        },
        Error::StoreRolledBack("behind its witness".into()),
        Error::from(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "pipe")),
    ]
}

/// Every file under `dir`, recursively.
fn all_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            all_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn store_files_hold_no_material_data_key_or_plaintext() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = || {
        Kms::builder()
            .sled(dir.path())
            .root_key_bytes(&ROOT)
            .clock(clock())
            .build()
            .expect("open")
    };
    let Scene {
        kms,
        mut secrets,
        external,
    } = scene(open());
    let ctx = EncryptionContext::from_pairs([("file", "x")]).expect("ctx");
    let mut blobs = Vec::new();
    for i in 0..20u8 {
        let key = if i % 2 == 0 { FIXED_KEY } else { &external };
        let mut plaintext = b"STORE-PLAINTEXT-MARKER-".to_vec();
        plaintext.extend_from_slice(&[b'a' + i; 16]);
        blobs.push(kms.encrypt(key, &plaintext, &ctx).expect("encrypt"));
        secrets.push(plaintext);
        let dk = kms
            .generate_data_key(key, &GenerateDataKeyRequest::default())
            .expect("data key");
        secrets.push(dk.plaintext.expose_secret().to_vec());
        let big = vec![b'Z' ^ i; 70_000];
        let env = kms.envelope_encrypt(key, &big, &ctx).expect("envelope");
        assert_eq!(
            kms.envelope_decrypt(&env, &ctx).expect("open").len(),
            70_000
        );
        secrets.push(big[..64].to_vec());
        let made = kms.create_key(&CreateKeyRequest::default()).expect("key");
        if i % 3 == 0 {
            kms.schedule_key_deletion(&made.key_id, 7)
                .expect("schedule");
        }
    }
    kms.flush().expect("flush");
    drop(kms);
    // Reopen once, so sled rewrites what it keeps at startup too.
    let kms = open();
    assert_eq!(
        kms.decrypt(&blobs[0].ciphertext_blob, &ctx)
            .expect("decrypt")
            .plaintext
            .expose_secret()[..6],
        *b"STORE-"
    );
    drop(kms);
    let mut files = Vec::new();
    all_files(dir.path(), &mut files);
    assert!(!files.is_empty());
    let mut total = 0;
    for f in &files {
        let bytes = std::fs::read(f).expect("read");
        total += bytes.len();
        for s in &secrets {
            // The whole secret, and its first half (a partial leak).
            for needle in [&s[..], &s[..s.len() / 2]] {
                assert!(
                    !contains(&bytes, needle),
                    "{} holds secret bytes {:02x?}",
                    f.display(),
                    needle
                );
            }
            for r in renderings(s) {
                assert!(
                    !contains(&bytes, r.as_bytes()),
                    "{} holds a rendering of a secret",
                    f.display()
                );
            }
        }
    }
    assert!(total > 10_000, "the store was written ({total} bytes)");
}

// ---- sealed records copied over others ---------------------------------------

fn sled_open(dir: &Path) -> Result<Kms, Error> {
    Kms::builder()
        .sled(dir)
        .root_key_bytes(&ROOT)
        .clock(clock())
        .build()
}

fn raw(dir: &Path) -> SledKeystore {
    SledKeystore::open(dir.join("db")).expect("raw store")
}

fn only(store: &SledKeystore, ns: &str, prefix: &str) -> (Vec<u8>, Vec<u8>) {
    let found = store
        .scan(ns, Scan::prefix(prefix.as_bytes()))
        .expect("scan");
    assert_eq!(found.len(), 1, "{ns} {prefix}");
    found.into_iter().next().expect("one")
}

#[test]
fn import_token_record_copied_over_another_is_detected_when_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, pa, pb) = {
        let kms = sled_open(dir.path()).expect("open");
        let a = support::external(&kms);
        let b = support::external(&kms);
        let pa = support::params(&kms, &a, WrappingAlgorithm::RsaesOaepSha1);
        let pb = support::params(&kms, &b, WrappingAlgorithm::RsaesOaepSha1);
        (a, b, pa, pb)
    };
    {
        let store = raw(dir.path());
        let (_, a_value) = only(&store, "import-token", &format!("{a}/"));
        let (b_id, b_value) = only(&store, "import-token", &format!("{b}/"));
        assert_ne!(a_value, b_value);
        let mut batch = Batch::new();
        batch.put("import-token", b_id, a_value);
        store.apply(batch).expect("apply");
        store.flush().expect("flush");
    }
    let kms = sled_open(dir.path()).expect("open");
    // A's token is untouched; B's record no longer opens: a clear error, and
    // never A's private key used under B's token.
    let material = support::random_material();
    let err = kms
        .import_key_material(
            &b,
            &support::wrap(&pb, WrappingAlgorithm::RsaesOaepSha1, &material),
            &pb.import_token,
            None,
        )
        .unwrap_err();
    assert_eq!(err.code(), "InternalFailure", "{err:?}");
    assert!(err.to_string().contains("does not open"), "{err}");
    // Material wrapped for A's key pair, with B's token, does not go in either.
    let err = kms
        .import_key_material(
            &b,
            &support::wrap(&pa, WrappingAlgorithm::RsaesOaepSha1, &material),
            &pb.import_token,
            None,
        )
        .unwrap_err();
    assert_eq!(err.code(), "InternalFailure", "{err:?}");
    assert_eq!(
        kms.describe_key(&b).expect("b").key_state,
        KeyState::PendingImport
    );
    kms.import_key_material(
        &a,
        &support::wrap(&pa, WrappingAlgorithm::RsaesOaepSha1, &material),
        &pa.import_token,
        None,
    )
    .expect("a imports");
    assert_eq!(
        kms.describe_key(&a).expect("a").key_state,
        KeyState::Enabled
    );
}

#[test]
fn store_id_replaced_by_another_sealed_record_is_detected_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let kms = sled_open(dir.path()).expect("open");
        kms.create_key(&CreateKeyRequest::default()).expect("key");
    }
    {
        let store = raw(dir.path());
        let (_, material) = only(&store, "material", "");
        let mut batch = Batch::new();
        batch.put("head", b"store-id".to_vec(), material);
        store.apply(batch).expect("apply");
        store.flush().expect("flush");
    }
    let err = sled_open(dir.path()).unwrap_err();
    assert_eq!(err, Error::WrongRootKey);
}

#[test]
fn store_id_of_another_store_opens_nothing_else() {
    // Store B gets the store id record of store A (another root key): the
    // id opens under A's root key, but none of B's records does, so B is
    // refused at open under A's key (its head does not open), and under its
    // own key the store id does not open.
    let (a, b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let other_root = [0x5a; 32];
    let open_with = |dir: &Path, root: &[u8; 32]| {
        Kms::builder()
            .sled(dir)
            .root_key_bytes(root)
            .clock(clock())
            .build()
    };
    drop(open_with(a.path(), &other_root).expect("a"));
    {
        let kms = open_with(b.path(), &ROOT).expect("b");
        kms.create_key(&Default::default()).expect("key");
    }
    let (_, id) = only(&raw(a.path()), "head", "store-id");
    {
        let store = raw(b.path());
        let mut batch = Batch::new();
        batch.put("head", b"store-id".to_vec(), id);
        store.apply(batch).expect("apply");
        store.flush().expect("flush");
    }
    let err = open_with(b.path(), &other_root).unwrap_err();
    assert_eq!(err.code(), "InternalFailure", "{err:?}");
    assert!(err.to_string().contains("does not open"), "{err}");
    assert_eq!(open_with(b.path(), &ROOT).unwrap_err(), Error::WrongRootKey);
}

// ---- wrong root key, truncated and corrupted stores --------------------------

#[test]
fn wrong_root_key_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(sled_open(dir.path()).expect("open"));
    let err = Kms::builder()
        .sled(dir.path())
        .root_key_bytes(&[0x5a; 32])
        .build()
        .unwrap_err();
    assert_eq!(err, Error::WrongRootKey);
    assert!(err.to_string().contains("root key"));
}

/// A store with some keys, aliases and ciphertexts, closed; returns its
/// ciphertexts.
fn populated(dir: &Path) -> Vec<localkms::CiphertextBlob> {
    let kms = sled_open(dir).expect("open");
    let mut blobs = Vec::new();
    for i in 0..30 {
        let key = kms.create_key(&Default::default()).expect("key").key_id;
        kms.create_alias(&format!("alias/k{i}"), &key)
            .expect("alias");
        blobs.push(
            kms.encrypt(&key, b"data", &EncryptionContext::empty())
                .expect("encrypt")
                .ciphertext_blob,
        );
    }
    blobs
}

/// Opens a damaged store and uses it: every step must return, `Ok` or a
/// clear error, and never panic.
fn use_damaged(dir: &Path, blobs: &[localkms::CiphertextBlob]) -> Result<(), Error> {
    let kms = sled_open(dir)?;
    kms.list_keys(Paging::new(1, 100).expect("paging"))?;
    kms.list_aliases(Paging::new(1, 100).expect("paging"))?;
    for b in blobs {
        kms.decrypt(b, &EncryptionContext::empty())?;
    }
    kms.create_key(&Default::default())?;
    Ok(())
}

fn damaged_runs(label: &str, dir: &Path, blobs: &[localkms::CiphertextBlob]) {
    let outcome = std::panic::catch_unwind(|| use_damaged(dir, blobs));
    match outcome {
        Ok(Ok(())) => eprintln!("{label}: store usable"),
        Ok(Err(e)) => {
            eprintln!("{label}: {e}");
            // sled recovers a damaged log up to its last intact entry, like
            // a crash before the later writes: those keys are then not found.
            assert!(
                ["InternalFailure", "Forbidden.KeyNotFound"].contains(&e.code()),
                "{label}: {e:?}"
            );
            assert!(!e.to_string().is_empty());
        }
        Err(_) => panic!("{label}: a damaged store caused a panic"),
    }
}

fn db_file(dir: &Path) -> std::path::PathBuf {
    dir.join("db").join("db")
}

#[test]
fn truncated_store_file_gives_an_error_not_a_panic() {
    let base = tempfile::tempdir().expect("tempdir");
    let blobs = populated(base.path());
    let len = std::fs::metadata(db_file(base.path())).expect("db").len();
    assert!(len > 0);
    for cut in [0, 1, 7, 64, 512, 4096, len / 3, len / 2, len - 100, len - 1] {
        let dir = tempfile::tempdir().expect("copy");
        copy_dir(base.path(), dir.path());
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(db_file(dir.path()))
            .expect("open db");
        f.set_len(cut.min(len)).expect("truncate");
        drop(f);
        damaged_runs(&format!("truncated to {cut}"), dir.path(), &blobs);
    }
}

#[test]
fn corrupted_store_file_gives_an_error_not_a_panic() {
    let base = tempfile::tempdir().expect("tempdir");
    let blobs = populated(base.path());
    let len = std::fs::metadata(db_file(base.path())).expect("db").len() as usize;
    let mut offsets: Vec<usize> = vec![0, 1, 8, 13, 20, 32, 100, 512, 4000, 4096, 4100];
    offsets.extend((1..48).map(|i| len * i / 48));
    offsets.extend([len - 20, len - 1]);
    offsets.retain(|&o| o < len);
    for at in offsets {
        for pattern in [0xffu8, 0x01] {
            let dir = tempfile::tempdir().expect("copy");
            copy_dir(base.path(), dir.path());
            let path = db_file(dir.path());
            let mut bytes = std::fs::read(&path).expect("read");
            for b in bytes.iter_mut().skip(at).take(16) {
                *b ^= pattern;
            }
            std::fs::write(&path, &bytes).expect("write");
            damaged_runs(
                &format!("bytes {at}..{} xor {pattern:#04x}", at + 16),
                dir.path(),
                &blobs,
            );
        }
    }
}

#[test]
fn a_store_that_lost_every_record_does_not_reopen_as_a_new_store() {
    for damage in ["truncate", "zero the head"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let blobs = populated(dir.path());
        let path = db_file(dir.path());
        if damage == "truncate" {
            std::fs::write(&path, b"").expect("truncate");
        } else {
            let mut bytes = std::fs::read(&path).expect("read");
            bytes[..64].fill(0);
            std::fs::write(&path, &bytes).expect("write");
        }
        let err = sled_open(dir.path()).unwrap_err();
        assert!(matches!(err, Error::CorruptStore(_)), "{damage}: {err:?}");
        assert!(err.to_string().contains("format record"), "{err}");
        // Still refused on a second try: nothing was initialised over it.
        assert!(matches!(sled_open(dir.path()), Err(Error::CorruptStore(_))));
        damaged_runs(damage, dir.path(), &blobs);
    }
}

#[test]
fn damaged_sled_side_files_give_an_error_not_a_panic() {
    let base = tempfile::tempdir().expect("tempdir");
    let blobs = populated(base.path());
    let mut side = Vec::new();
    all_files(&base.path().join("db"), &mut side);
    let side: Vec<String> = side
        .iter()
        .filter(|p| p.file_name().is_some_and(|n| n != "db"))
        .filter_map(|p| p.strip_prefix(base.path()).ok())
        .map(|p| p.display().to_string())
        .collect();
    assert!(!side.is_empty(), "sled keeps files beside db");
    for name in &side {
        for damage in ["truncate", "flip", "delete"] {
            let dir = tempfile::tempdir().expect("copy");
            copy_dir(base.path(), dir.path());
            let path = dir.path().join(name);
            match damage {
                "truncate" => std::fs::write(&path, b"").expect("truncate"),
                "delete" => std::fs::remove_file(&path).expect("delete"),
                _ => {
                    let mut bytes = std::fs::read(&path).expect("read");
                    for b in bytes.iter_mut().step_by(7) {
                        *b ^= 0x5a;
                    }
                    std::fs::write(&path, &bytes).expect("write");
                }
            }
            damaged_runs(&format!("{damage} {name}"), dir.path(), &blobs);
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).expect("copy");
        }
    }
}
