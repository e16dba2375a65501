//! The ciphertext blob format v1 (docs/FORMAT.md): golden vectors made with a
//! fixed key and nonce, the XAES-256-GCM known answers, and tamper tests.
//!
//! Each file in tests/data/blob-v1/ is one vector (`name: value` lines).
//! Set `LOCALKMS_BLESS=1` to rewrite them after a deliberate format change.
#![cfg(any(feature = "test-util", feature = "fuzzing"))]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use localkms::internal::{insecure_insert_fixed_key, insecure_seal_with_nonce};
use localkms::{CiphertextBlob, EncryptionContext, Error, Kms, PlaintextKind};
use xaes_256_gcm::Xaes256Gcm;
use xaes_256_gcm::aead::{Aead, KeyInit, Payload};

const KEY_ID: &str = "2b4d6f80-1a3c-4e5f-8a9b-0c1d2e3f4a5b";
const VERSION_ID: &str = "9e8d7c6b-5a49-4837-a261-504f3e2d1c0b";

/// Decrypt of the wire's base64 text, as the wire layer does it.
fn dec(kms: &Kms, text: &str, ctx: &EncryptionContext) -> Result<localkms::Decrypted, Error> {
    CiphertextBlob::from_base64(text).and_then(|b| kms.decrypt(&b, ctx))
}

fn material() -> [u8; 32] {
    std::array::from_fn(|i| i as u8)
}

fn nonce() -> [u8; 24] {
    std::array::from_fn(|i| 0x40 + i as u8)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A store that holds the golden key, so that tampered blobs reach it.
fn golden_store() -> Kms {
    let kms = Kms::builder()
        .in_memory()
        .root_key_bytes(&[0x11; 32])
        .build()
        .expect("kms");
    insecure_insert_fixed_key(&kms, KEY_ID, VERSION_ID, &material()).expect("golden key");
    kms
}

struct Vector {
    path: PathBuf,
    fields: BTreeMap<String, String>,
}

impl Vector {
    fn get(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .unwrap_or_else(|| panic!("{}: no {name}", self.path.display()))
    }

    fn kind(&self) -> PlaintextKind {
        match self.get("kind") {
            "text" => PlaintextKind::Text,
            "data-key" => PlaintextKind::DataKey,
            k => panic!("unknown kind {k}"),
        }
    }

    fn context(&self) -> EncryptionContext {
        EncryptionContext::from_json(self.get("context")).expect("context")
    }
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/blob-v1")
}

/// The vectors: (file name, kind, context, plaintext).
const SPECS: &[(&str, &str, &str, &[u8])] = &[
    ("text-no-context", "text", "", b"hello, localkms"),
    (
        "text-with-context",
        "text",
        r#"{"tenant":"a","purpose":"golden"}"#,
        b"hello, localkms",
    ),
    ("text-one-byte", "text", "{}", b"x"),
    (
        "data-key-256",
        "data-key",
        r#"{"ab":"c"}"#,
        &[
            0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd,
            0xde, 0xdf, 0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xeb,
            0xec, 0xed, 0xee, 0xef,
        ],
    ),
];

fn bless() {
    let kms = golden_store();
    std::fs::create_dir_all(data_dir()).expect("mkdir");
    for (name, kind, context, plaintext) in SPECS {
        let k = if *kind == "text" {
            PlaintextKind::Text
        } else {
            PlaintextKind::DataKey
        };
        let ctx = EncryptionContext::from_json(context).expect("context");
        let blob =
            insecure_seal_with_nonce(&kms, KEY_ID, k, plaintext, &ctx, &nonce()).expect("seal");
        let text = format!(
            "expect: success\nkey-id: {KEY_ID}\nkey-version-id: {VERSION_ID}\nmaterial: {}\nnonce: {}\nkind: {kind}\ncontext: {context}\nplaintext: {}\nblob: {blob}\n",
            hex(&material()),
            hex(&nonce()),
            hex(plaintext),
        );
        std::fs::write(data_dir().join(format!("{name}.txt")), text).expect("write");
    }
}

fn vectors() -> Vec<Vector> {
    if std::env::var_os("LOCALKMS_BLESS").is_some() {
        bless();
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(data_dir()).expect("tests/data/blob-v1") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let fields = text
            .lines()
            .filter_map(|l| {
                l.split_once(": ")
                    .or_else(|| l.strip_suffix(':').map(|k| (k, "")))
            })
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        out.push(Vector { path, fields });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(out.len(), SPECS.len(), "one file per vector");
    out
}

fn vector(name: &str) -> Vector {
    vectors()
        .into_iter()
        .find(|v| v.path.file_stem().is_some_and(|s| s == name))
        .expect("vector")
}

/// The canonical context encoding, written out independently of the library.
fn context_bytes(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut sorted = pairs.to_vec();
    sorted.sort();
    let mut out = (sorted.len() as u32).to_be_bytes().to_vec();
    for (k, v) in sorted {
        out.extend_from_slice(&(k.len() as u32).to_be_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as u32).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out
}

#[test]
fn golden_vectors_seal_and_open() {
    let kms = golden_store();
    for v in vectors() {
        assert_eq!(v.get("expect"), "success");
        assert_eq!(v.get("key-id"), KEY_ID);
        assert_eq!(v.get("key-version-id"), VERSION_ID);
        assert_eq!(unhex(v.get("material")), material());
        assert_eq!(unhex(v.get("nonce")), nonce());
        let pt = unhex(v.get("plaintext"));
        let ctx = v.context();
        let nonce: [u8; 24] = unhex(v.get("nonce")).try_into().expect("24 bytes");
        let sealed =
            insecure_seal_with_nonce(&kms, KEY_ID, v.kind(), &pt, &ctx, &nonce).expect("seal");
        assert_eq!(
            sealed.to_base64(),
            v.get("blob"),
            "{}: sealing is stable",
            v.path.display()
        );
        let d = dec(&kms, v.get("blob"), &ctx).expect("decrypt");
        assert_eq!(d.plaintext.expose_secret(), &pt[..]);
        assert_eq!(d.kind, v.kind());
        assert_eq!(d.key_id, KEY_ID);
        assert_eq!(d.key_version_id, VERSION_ID);
    }
}

/// The documented layout, recomputed with the raw XAES-256-GCM primitive.
#[test]
fn golden_vectors_match_the_documented_layout() {
    let cipher = Xaes256Gcm::new(&material().into());
    let contexts: BTreeMap<&str, Vec<u8>> = [
        ("text-no-context", context_bytes(&[])),
        (
            "text-with-context",
            context_bytes(&[("tenant", "a"), ("purpose", "golden")]),
        ),
        ("text-one-byte", context_bytes(&[])),
        ("data-key-256", context_bytes(&[("ab", "c")])),
    ]
    .into();
    for v in vectors() {
        let name = v.path.file_stem().and_then(|s| s.to_str()).expect("name");
        let mut header = vec![
            1u8,
            if v.kind() == PlaintextKind::Text {
                1
            } else {
                2
            },
        ];
        header.extend_from_slice(KEY_ID.as_bytes());
        header.extend_from_slice(VERSION_ID.as_bytes());
        header.extend_from_slice(&nonce());
        assert_eq!(header.len(), 98);
        let aad = [&header[..], &contexts[name]].concat();
        let pt = unhex(v.get("plaintext"));
        let ct = cipher
            .encrypt(
                &nonce().into(),
                Payload {
                    msg: &pt,
                    aad: &aad,
                },
            )
            .expect("seal");
        let expected = BASE64.encode([&header[..], &ct].concat());
        assert_eq!(v.get("blob"), expected, "{name}");
    }
}

/// C2SP XAES-256-GCM known answers (tests/data/xaes-256-gcm-vectors.md).
#[test]
fn xaes_256_gcm_known_answers() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/xaes-256-gcm-vectors.md"),
    )
    .expect("vectors");
    let mut checked = 0;
    for line in text.lines().filter(|l| l.starts_with("| 0")) {
        let cells: Vec<&str> = line
            .split('|')
            .map(|c| c.trim().trim_matches('`'))
            .collect();
        let key_byte = u8::from_str_radix(&cells[1][..2], 16).expect("key byte");
        let nonce = cells[2].as_bytes();
        let aad = if cells[4] == "(empty)" { "" } else { cells[4] };
        let cipher = Xaes256Gcm::new(&[key_byte; 32].into());
        let out = cipher
            .encrypt(
                nonce.try_into().expect("24-byte nonce"),
                Payload {
                    msg: cells[3].as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .expect("seal");
        assert_eq!(hex(&out), format!("{}{}", cells[5], cells[6]), "{line}");
        checked += 1;
    }
    assert_eq!(checked, 2);
}

/// What Decrypt must say when exactly `bytes` of the golden blob changed.
fn expected_error(changed: std::ops::Range<usize>) -> &'static str {
    if changed.start >= 2 && changed.end <= 38 {
        "Forbidden.KeyNotFound"
    } else if changed.start >= 38 && changed.end <= 74 {
        "Forbidden.KeyVersionNotFound"
    } else {
        "InvalidParameter"
    }
}

/// SPEC section 5: every single-bit change is rejected, uniformly, except
/// inside KeyId / KeyVersionId, which then name a key or version not found.
#[test]
fn every_bit_flip_is_rejected() {
    let kms = golden_store();
    for v in vectors() {
        let ctx = v.context();
        let raw = BASE64.decode(v.get("blob")).expect("b64");
        assert!(
            dec(&kms, v.get("blob"), &ctx).is_ok(),
            "the golden blob opens"
        );
        for bit in 0..raw.len() * 8 {
            let byte = bit / 8;
            let mut t = raw.clone();
            t[byte] ^= 1 << (bit % 8);
            let e = kms.decrypt(&t, &ctx).expect_err("tampered blob opened");
            let want = expected_error(byte..byte + 1);
            assert_eq!(e.code(), want, "{} bit {bit}", v.path.display());
            match want {
                "InvalidParameter" => assert_eq!(e, Error::DecryptionFailed),
                _ => assert_eq!(e.http_status(), 404),
            }
        }
    }
}

/// Flips every bit of the base64 text too: the decoded change decides the
/// error, and nothing panics or opens.
#[test]
fn every_bit_flip_of_the_base64_text_is_rejected() {
    let kms = golden_store();
    let v = vector("text-with-context");
    let ctx = v.context();
    let text = v.get("blob").as_bytes().to_vec();
    let raw = BASE64.decode(&text).expect("b64");
    for bit in 0..text.len() * 8 {
        let mut t = text.clone();
        t[bit / 8] ^= 1 << (bit % 8);
        let Ok(s) = String::from_utf8(t) else {
            continue; // not a string: cannot reach Decrypt
        };
        let e = dec(&kms, &s, &ctx).expect_err("tampered text opened");
        // The header is read in order: version and kind, then the KeyId,
        // then the KeyVersionId; anything else is the uniform failure.
        let want = match BASE64.decode(&s) {
            Ok(d) if d.len() == raw.len() && d[0] == 1 && matches!(d[1], 1 | 2) => {
                if d[2..38] != raw[2..38] {
                    "Forbidden.KeyNotFound"
                } else if d[38..74] != raw[38..74] {
                    "Forbidden.KeyVersionNotFound"
                } else {
                    "InvalidParameter"
                }
            }
            _ => "InvalidParameter",
        };
        assert_eq!(e.code(), want, "bit {bit}");
    }
}

#[test]
fn truncations_are_rejected_uniformly() {
    let kms = golden_store();
    let v = vector("text-with-context");
    let raw = BASE64.decode(v.get("blob")).expect("b64");
    for len in 1..raw.len() {
        let e = kms.decrypt(&raw[..len], &v.context()).unwrap_err();
        assert_eq!(e, Error::DecryptionFailed, "length {len}");
    }
}

#[test]
fn golden_blob_needs_its_context() {
    let kms = golden_store();
    let v = vector("data-key-256");
    for wrong in ["", r#"{"a":"bc"}"#, r#"{"ab":"c","d":""}"#] {
        let e = kms
            .decrypt(
                &CiphertextBlob::from_base64(v.get("blob")).expect("base64"),
                &EncryptionContext::from_json(wrong).expect("ctx"),
            )
            .unwrap_err();
        assert_eq!(e, Error::DecryptionFailed);
    }
}

#[test]
fn golden_blob_in_a_store_without_its_key() {
    let kms = Kms::in_memory().expect("kms");
    let v = vector("text-no-context");
    assert_eq!(
        dec(&kms, v.get("blob"), &v.context()).unwrap_err(),
        Error::KeyNotFound(KEY_ID.into())
    );
}
