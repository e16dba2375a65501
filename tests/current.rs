//! The rest of the current API (issue 17): ExportDataKey and
//! GenerateAndExportDataKey, deletion protection, key policies, batch tags,
//! DryRun, the account calls and the refused actions; through the Rust API
//! and the wire.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use getrandom::SysRng;
use localkms::asym::{Algorithm, KeySpec as AsymSpec, PrivateKey};
use localkms::store::{
    Batch, Conflict, Expect, Keystore, MemoryKeystore, Op, Record, Scan, StoreError,
};
use localkms::{
    CreateKeyRequest, CreateSecretRequest, EncryptionContext, ExportAlgorithm, ExportKeySpec,
    GenerateDataKeyRequest, KeyState, Kms, ManualClock, MemoryAudit, ResourceType, Tag, TagKey,
    WrappingPublicKey, wire,
};
use serde_json::Value;

const T0: i64 = 1_767_225_600;

// ---- a keystore that can be watched ---------------------------------------

/// Every namespace the library writes (src/store/record.rs and the tag,
/// alias and import namespaces), scanned for the before/after snapshots;
/// namespaces seen in any write are added.
const NAMESPACES: &[&str] = &[
    "meta",
    "key",
    "key-order",
    "deletion",
    "material",
    "import-token",
    "alias",
    "alias-order",
    "alias-by-key",
    "tag",
    "secret",
    "secret-order",
    "secret-value",
    "secret-deletion",
];

/// A memory keystore shared with the test, which counts writes and
/// remembers the namespaces written.
#[derive(Debug, Clone, Default)]
struct Watched {
    inner: Arc<MemoryKeystore>,
    applies: Arc<AtomicUsize>,
    seen: Arc<Mutex<BTreeSet<&'static str>>>,
}

impl Watched {
    fn note(&self, batch: &Batch) {
        self.applies.fetch_add(1, Ordering::SeqCst);
        let mut seen = self.seen.lock().unwrap();
        for op in batch.ops() {
            match op {
                Op::Put { ns, .. } | Op::Delete { ns, .. } => seen.insert(*ns),
            };
        }
    }

    /// Every record of every namespace, by namespace.
    fn snapshot(&self) -> BTreeMap<String, Vec<Record>> {
        let mut names: BTreeSet<&str> = NAMESPACES.iter().copied().collect();
        names.extend(self.seen.lock().unwrap().iter().copied());
        names
            .into_iter()
            .map(|ns| {
                let records = self.inner.scan(ns, Scan::prefix(b"")).unwrap();
                (ns.to_owned(), records)
            })
            .collect()
    }

    fn applies(&self) -> usize {
        self.applies.load(Ordering::SeqCst)
    }
}

impl Keystore for Watched {
    fn get(&self, ns: &str, id: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(ns, id)
    }
    fn scan(&self, ns: &str, scan: Scan<'_>) -> Result<Vec<Record>, StoreError> {
        self.inner.scan(ns, scan)
    }
    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        self.note(&batch);
        self.inner.apply(batch)
    }
    fn apply_if(
        &self,
        expect: &[Expect<'_>],
        batch: Batch,
    ) -> Result<Result<(), Conflict>, StoreError> {
        self.note(&batch);
        self.inner.apply_if(expect, batch)
    }
    fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush()
    }
}

fn watched() -> (Kms, ManualClock, Watched) {
    let clock = ManualClock::new(T0);
    let store = Watched::default();
    let kms = Kms::builder()
        .keystore(store.clone())
        .root_key_bytes(&[9; 32])
        .clock(clock.clone())
        .build()
        .unwrap();
    (kms, clock, store)
}

// ---- wire helpers ----------------------------------------------------------

fn owned(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn call(kms: &Kms, p: &[(&str, &str)]) -> (u16, Value) {
    let r = wire::dispatch(kms, &owned(p));
    (r.status, serde_json::from_str(&r.body).unwrap())
}

fn ok(kms: &Kms, p: &[(&str, &str)]) -> Value {
    let (status, v) = call(kms, p);
    assert_eq!(status, 200, "{p:?}: {v}");
    v
}

fn err(kms: &Kms, p: &[(&str, &str)], code: &str, status: u16) -> String {
    let (s, v) = call(kms, p);
    assert_eq!(
        (s, v["Code"].as_str().unwrap()),
        (status, code),
        "{p:?}: {v}"
    );
    v["Message"].as_str().unwrap().to_owned()
}

fn s(v: &Value) -> String {
    v.as_str().unwrap().to_owned()
}

fn rsa_key() -> (PrivateKey, String) {
    let k = PrivateKey::generate(AsymSpec::Rsa2048, &mut SysRng).unwrap();
    let der = k.public_key().to_der().unwrap();
    (k, STANDARD.encode(der))
}

// ---- export ------------------------------------------------------------

#[test]
fn export_unwraps_to_the_data_key_rsa_and_sm2() {
    let kms = Kms::in_memory().unwrap();
    let key = kms.create_key(&Default::default()).unwrap().key_id;
    let (rsa, rsa_blob) = rsa_key();
    let sm2 = PrivateKey::generate(AsymSpec::EcSm2, &mut SysRng).unwrap();
    let sm2_blob = STANDARD.encode(sm2.public_key().to_der().unwrap());
    let gdk = ok(
        &kms,
        &[
            ("Action", "GenerateDataKey"),
            ("KeyId", &key),
            ("EncryptionContext", r#"{"app":"x"}"#),
        ],
    );
    let plaintext = STANDARD.decode(s(&gdk["Plaintext"])).unwrap();
    for (alg, spec, blob, private) in [
        ("RSAES_OAEP_SHA_256", "RSA_2048", &rsa_blob, &rsa),
        ("RSAES_OAEP_SHA_1", "RSA_2048", &rsa_blob, &rsa),
        ("SM2PKE", "EC_SM2", &sm2_blob, &sm2),
    ] {
        let algorithm: Algorithm = alg.parse().unwrap();
        let out = ok(
            &kms,
            &[
                ("Action", "ExportDataKey"),
                ("CiphertextBlob", &s(&gdk["CiphertextBlob"])),
                ("EncryptionContext", r#"{"app":"x"}"#),
                ("PublicKeyBlob", blob),
                ("WrappingAlgorithm", alg),
                ("WrappingKeySpec", spec),
            ],
        );
        assert_eq!(out["KeyId"], gdk["KeyId"]);
        assert_eq!(out["KeyVersionId"], gdk["KeyVersionId"]);
        assert!(out.get("Plaintext").is_none());
        let wrapped = STANDARD.decode(s(&out["ExportedDataKey"])).unwrap();
        let unwrapped = private.decrypt(algorithm, &wrapped, &mut SysRng).unwrap();
        assert_eq!(&unwrapped[..], &plaintext[..], "{alg}");

        // GenerateAndExportDataKey: no plaintext; the blob decrypts to the
        // key the exported copy unwraps to.
        let both = ok(
            &kms,
            &[
                ("Action", "GenerateAndExportDataKey"),
                ("KeyId", &key),
                ("NumberOfBytes", "24"),
                ("PublicKeyBlob", blob),
                ("WrappingAlgorithm", alg),
                ("WrappingKeySpec", spec),
            ],
        );
        assert!(both.get("Plaintext").is_none());
        let opened = ok(
            &kms,
            &[
                ("Action", "Decrypt"),
                ("CiphertextBlob", &s(&both["CiphertextBlob"])),
            ],
        );
        let dk = STANDARD.decode(s(&opened["Plaintext"])).unwrap();
        assert_eq!(dk.len(), 24);
        let wrapped = STANDARD.decode(s(&both["ExportedDataKey"])).unwrap();
        assert_eq!(
            &private.decrypt(algorithm, &wrapped, &mut SysRng).unwrap()[..],
            &dk[..]
        );
    }
    // A PEM public key is accepted too.
    let pem = rsa.public_key_pem().unwrap();
    ok(
        &kms,
        &[
            ("Action", "GenerateAndExportDataKey"),
            ("KeyId", &key),
            ("PublicKeyBlob", &pem),
            ("WrappingAlgorithm", "RSAES_OAEP_SHA_256"),
            ("WrappingKeySpec", "RSA_2048"),
        ],
    );
}

#[test]
fn export_through_the_rust_api() {
    let kms = Kms::in_memory().unwrap();
    let key = kms.create_key(&Default::default()).unwrap().key_id;
    let (rsa, _) = rsa_key();
    let wrapping = WrappingPublicKey::new(
        ExportAlgorithm::RsaesOaepSha256,
        ExportKeySpec::Rsa2048,
        rsa.public_key().to_der().unwrap(),
    );
    let ctx = EncryptionContext::from_json(r#"{"a":"b"}"#).unwrap();
    let both = kms
        .generate_and_export_data_key(
            &format!("acs:kms:cn-hangzhou:1234567890123456:key/{key}"),
            &GenerateDataKeyRequest::default().context(ctx.clone()),
            &wrapping,
        )
        .unwrap();
    assert_eq!(both.key_id, key);
    let again = kms
        .export_data_key(&both.ciphertext_blob, &ctx, &wrapping)
        .unwrap();
    let a = rsa
        .decrypt(
            Algorithm::RsaesOaepSha256,
            &both.exported_data_key,
            &mut SysRng,
        )
        .unwrap();
    let b = rsa
        .decrypt(
            Algorithm::RsaesOaepSha256,
            &again.exported_data_key,
            &mut SysRng,
        )
        .unwrap();
    assert_eq!(&a[..], &b[..]);
    assert_eq!(a.len(), 32);
    let opened = kms.decrypt(&both.ciphertext_blob[..], &ctx).unwrap();
    assert_eq!(opened.plaintext.expose_secret(), &a[..]);
}

#[test]
fn export_errors_name_their_parameter() {
    let kms = Kms::in_memory().unwrap();
    let key = kms.create_key(&Default::default()).unwrap().key_id;
    let (_, rsa) = rsa_key();
    let rsa3072 = STANDARD.encode(
        PrivateKey::generate(AsymSpec::Rsa3072, &mut SysRng)
            .unwrap()
            .public_key()
            .to_der()
            .unwrap(),
    );
    let p256 = STANDARD.encode(
        PrivateKey::generate(AsymSpec::EcP256, &mut SysRng)
            .unwrap()
            .public_key()
            .to_der()
            .unwrap(),
    );
    let blob = s(&ok(
        &kms,
        &[
            ("Action", "GenerateDataKeyWithoutPlaintext"),
            ("KeyId", &key),
        ],
    )["CiphertextBlob"]);
    let export = |pk: &str, alg: &str, spec: &str| {
        vec![
            ("Action", "ExportDataKey".to_owned()),
            ("CiphertextBlob", blob.clone()),
            ("PublicKeyBlob", pk.to_owned()),
            ("WrappingAlgorithm", alg.to_owned()),
            ("WrappingKeySpec", spec.to_owned()),
        ]
    };
    let run = |p: Vec<(&str, String)>| {
        let p: Vec<(&str, &str)> = p.iter().map(|(k, v)| (*k, v.as_str())).collect();
        call(&kms, &p)
    };
    for (pk, alg, spec, param) in [
        (
            "not base64!",
            "RSAES_OAEP_SHA_256",
            "RSA_2048",
            "PublicKeyBlob",
        ),
        ("AAAA", "RSAES_OAEP_SHA_256", "RSA_2048", "PublicKeyBlob"),
        (
            rsa3072.as_str(),
            "RSAES_OAEP_SHA_256",
            "RSA_2048",
            "PublicKeyBlob",
        ),
        (
            p256.as_str(),
            "RSAES_OAEP_SHA_256",
            "RSA_2048",
            "PublicKeyBlob",
        ),
        (rsa.as_str(), "SM2PKE", "EC_SM2", "PublicKeyBlob"),
        (rsa.as_str(), "SM2PKE", "RSA_2048", "WrappingAlgorithm"),
        (
            rsa.as_str(),
            "RSAES_PKCS1_V1_5",
            "RSA_2048",
            "WrappingAlgorithm",
        ),
        (
            rsa.as_str(),
            "RSAES_OAEP_SHA_256",
            "RSA_3072",
            "WrappingKeySpec",
        ),
    ] {
        let (status, v) = run(export(pk, alg, spec));
        assert_eq!(
            (status, s(&v["Code"])),
            (400, "InvalidParameter".into()),
            "{v}"
        );
        assert!(s(&v["Message"]).contains(param), "{param}: {v}");
    }
    // Missing parameters, by name.
    for missing in [
        "CiphertextBlob",
        "PublicKeyBlob",
        "WrappingAlgorithm",
        "WrappingKeySpec",
    ] {
        let p: Vec<_> = export(&rsa, "RSAES_OAEP_SHA_256", "RSA_2048")
            .into_iter()
            .filter(|(k, _)| *k != missing)
            .collect();
        let (status, v) = run(p);
        assert_eq!((status, s(&v["Code"])), (400, "MissingParameter".into()));
        assert!(s(&v["Message"]).contains(missing));
    }
    // A wrong context or a tampered blob is the uniform Decrypt failure.
    let mut p = export(&rsa, "RSAES_OAEP_SHA_256", "RSA_2048");
    p.push(("EncryptionContext", r#"{"x":"y"}"#.into()));
    assert_eq!(s(&run(p).1["Message"]), localkms::DECRYPTION_FAILED_MESSAGE);
    // An Encrypt blob is not a data key.
    let text = s(&ok(
        &kms,
        &[("Action", "Encrypt"), ("KeyId", &key), ("Plaintext", "hi")],
    )["CiphertextBlob"]);
    let mut p = export(&rsa, "RSAES_OAEP_SHA_256", "RSA_2048");
    p[1].1 = text;
    let (status, v) = run(p);
    assert_eq!(status, 400);
    assert!(s(&v["Message"]).contains("CiphertextBlob"), "{v}");
    // A data key too long for RSA-OAEP.
    err(
        &kms,
        &[
            ("Action", "GenerateAndExportDataKey"),
            ("KeyId", &key),
            ("NumberOfBytes", "191"),
            ("PublicKeyBlob", &rsa),
            ("WrappingAlgorithm", "RSAES_OAEP_SHA_256"),
            ("WrappingKeySpec", "RSA_2048"),
        ],
        "InvalidParameter",
        400,
    );
    // The state table applies as for Decrypt and GenerateDataKey.
    kms.disable_key(&key).unwrap();
    let (status, v) = run(export(&rsa, "RSAES_OAEP_SHA_256", "RSA_2048"));
    assert_eq!((status, s(&v["Code"])), (409, "Rejected.Disabled".into()));
    err(
        &kms,
        &[
            ("Action", "GenerateAndExportDataKey"),
            ("KeyId", &key),
            ("PublicKeyBlob", &rsa),
            ("WrappingAlgorithm", "RSAES_OAEP_SHA_256"),
            ("WrappingKeySpec", "RSA_2048"),
        ],
        "Rejected.Disabled",
        409,
    );
}

// ---- deletion protection -----------------------------------------------

/// A key in each state of the state table.
fn key_in(kms: &Kms, state: KeyState) -> String {
    let external = state == KeyState::PendingImport;
    let req = if external {
        CreateKeyRequest::external()
    } else {
        CreateKeyRequest::default()
    };
    let id = kms.create_key(&req).unwrap().key_id;
    match state {
        KeyState::Disabled => kms.disable_key(&id).unwrap(),
        KeyState::PendingDeletion => kms.schedule_key_deletion(&id, 7).unwrap(),
        _ => {}
    }
    assert_eq!(kms.describe_key(&id).unwrap().key_state, state);
    id
}

#[test]
fn deletion_protection_across_the_state_table() {
    let kms = Kms::in_memory().unwrap();
    for state in [
        KeyState::Enabled,
        KeyState::Disabled,
        KeyState::PendingImport,
    ] {
        let id = key_in(&kms, state);
        let m = kms.describe_key(&id).unwrap();
        assert_eq!(
            (
                m.deletion_protection.as_str(),
                m.deletion_protection_description.as_str()
            ),
            ("Disabled", "")
        );
        kms.set_deletion_protection(&id, Some("used by billing"))
            .unwrap();
        let m = kms.describe_key(&id).unwrap();
        assert_eq!(
            (
                m.deletion_protection.as_str(),
                m.deletion_protection_description.as_str()
            ),
            ("Enabled", "used by billing"),
            "{state}"
        );
        let e = kms.schedule_key_deletion(&id, 7).unwrap_err();
        assert_eq!(
            (e.code(), e.http_status()),
            ("Rejected.DeletionProtection", 409)
        );
        assert_eq!(kms.describe_key(&id).unwrap().key_state, state, "unchanged");
        // Other state changes are not affected.
        if state != KeyState::PendingImport {
            kms.disable_key(&id).unwrap();
            kms.enable_key(&id).unwrap();
            if state == KeyState::Disabled {
                kms.disable_key(&id).unwrap();
            }
        }
        kms.set_deletion_protection(&id, None).unwrap();
        let m = kms.describe_key(&id).unwrap();
        assert_eq!(
            (
                m.deletion_protection.as_str(),
                m.deletion_protection_description.as_str()
            ),
            ("Disabled", "")
        );
        kms.schedule_key_deletion(&id, 7).unwrap();
        // Pending deletion: protection cannot be set either way.
        for d in [Some("x"), None] {
            let e = kms.set_deletion_protection(&id, d).unwrap_err();
            assert_eq!(e.code(), "Rejected.StateModifiedFailed", "{state}");
        }
        kms.cancel_key_deletion(&id).unwrap();
    }
    let id = key_in(&kms, KeyState::PendingDeletion);
    assert_eq!(
        kms.set_deletion_protection(&id, Some("late"))
            .unwrap_err()
            .code(),
        "Rejected.StateModifiedFailed"
    );
    // Unknown key, alias, bad description.
    let missing = "00000000-0000-4000-8000-000000000000";
    assert_eq!(
        kms.set_deletion_protection(missing, None)
            .unwrap_err()
            .code(),
        "Forbidden.KeyNotFound"
    );
    let id = key_in(&kms, KeyState::Enabled);
    kms.create_alias("alias/p", &id).unwrap();
    assert_eq!(
        kms.set_deletion_protection("alias/p", None)
            .unwrap_err()
            .code(),
        "Unsupported.Alias"
    );
    let long = "x".repeat(8193);
    let e = kms.set_deletion_protection(&id, Some(&long)).unwrap_err();
    assert!(e.to_string().contains("DeletionProtectionDescription"));
}

#[test]
fn deletion_protection_on_the_wire() {
    let kms = Kms::in_memory().unwrap();
    let meta = &ok(&kms, &[("Action", "CreateKey")])["KeyMetadata"];
    let (id, arn) = (s(&meta["KeyId"]), s(&meta["Arn"]));
    assert_eq!(meta["DeletionProtection"], "Disabled");
    assert_eq!(meta["DeletionProtectionDescription"], "");
    ok(
        &kms,
        &[
            ("Action", "SetDeletionProtection"),
            ("ProtectedResourceArn", &arn),
            ("EnableDeletionProtection", "True"),
            ("DeletionProtectionDescription", "keep"),
        ],
    );
    let meta = &ok(&kms, &[("Action", "DescribeKey"), ("KeyId", &id)])["KeyMetadata"];
    assert_eq!(meta["DeletionProtection"], "Enabled");
    assert_eq!(meta["DeletionProtectionDescription"], "keep");
    err(
        &kms,
        &[
            ("Action", "ScheduleKeyDeletion"),
            ("KeyId", &id),
            ("PendingWindowInDays", "7"),
        ],
        "Rejected.DeletionProtection",
        409,
    );
    err(
        &kms,
        &[("Action", "SetDeletionProtection"), ("KeyId", &id)],
        "MissingParameter",
        400,
    );
    err(
        &kms,
        &[
            ("Action", "SetDeletionProtection"),
            ("EnableDeletionProtection", "false"),
        ],
        "MissingParameter",
        400,
    );
    ok(
        &kms,
        &[
            ("Action", "SetDeletionProtection"),
            ("KeyId", &id),
            ("EnableDeletionProtection", "false"),
            ("DeletionProtectionDescription", "ignored"),
        ],
    );
    let meta = &ok(&kms, &[("Action", "DescribeKey"), ("KeyId", &id)])["KeyMetadata"];
    assert_eq!(meta["DeletionProtectionDescription"], "");
    ok(
        &kms,
        &[
            ("Action", "ScheduleKeyDeletion"),
            ("KeyId", &id),
            ("PendingWindowInDays", "7"),
        ],
    );
}

#[test]
fn deletion_protection_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let kms = Kms::open(dir.path()).unwrap();
        let id = kms.create_key(&Default::default()).unwrap().key_id;
        kms.set_deletion_protection(&id, Some("durable")).unwrap();
        kms.set_key_policy(&id, r#"{"Version":"1"}"#, None).unwrap();
        id
    };
    let kms = Kms::open(dir.path()).unwrap();
    assert_eq!(
        kms.describe_key(&id)
            .unwrap()
            .deletion_protection_description,
        "durable"
    );
    assert_eq!(kms.get_key_policy(&id, None).unwrap(), r#"{"Version":"1"}"#);
}

// ---- key policies ------------------------------------------------------

#[test]
fn key_policies_are_stored_and_returned() {
    let kms = Kms::in_memory().unwrap();
    let id = kms.create_key(&Default::default()).unwrap().key_id;
    let default: Value = serde_json::from_str(&kms.get_key_policy(&id, None).unwrap()).unwrap();
    assert_eq!(default["Version"], "1");
    assert_eq!(
        default["Statement"][0]["Principal"]["RAM"][0],
        "acs:ram::1234567890123456:*"
    );
    let policy = r#"{"Version":"1","Statement":[{"Effect":"Deny","Principal":{"RAM":["*"]},"Action":["kms:*"],"Resource":["*"]}]}"#;
    ok(
        &kms,
        &[
            ("Action", "SetKeyPolicy"),
            ("KeyId", &id),
            ("Policy", policy),
            ("PolicyName", "default"),
        ],
    );
    let got = ok(
        &kms,
        &[
            ("Action", "GetKeyPolicy"),
            ("KeyId", &id),
            ("PolicyName", "default"),
        ],
    );
    assert_eq!(got["Policy"], policy);
    // Not enforced: the Deny changes nothing.
    kms.encrypt(&id, b"still works", &EncryptionContext::empty())
        .unwrap();
    // CreateKey Policy.
    let created = ok(
        &kms,
        &[("Action", "CreateKey"), ("Policy", r#"{"Version":"1"}"#)],
    );
    let new_id = s(&created["KeyMetadata"]["KeyId"]);
    assert_eq!(
        ok(&kms, &[("Action", "GetKeyPolicy"), ("KeyId", &new_id)])["Policy"],
        r#"{"Version":"1"}"#
    );
    // Limits: a JSON object of at most 32768 bytes; PolicyName default.
    let padded = |n: usize| format!(r#"{{"Version":"1","Pad":"{}"}}"#, "x".repeat(n - 24));
    assert_eq!(padded(32_768).len(), 32_768);
    kms.set_key_policy(&id, &padded(32_768), None).unwrap();
    for bad in [
        padded(32_769),
        "[]".into(),
        "not json".into(),
        "\"s\"".into(),
    ] {
        let e = kms.set_key_policy(&id, &bad, None).unwrap_err();
        assert_eq!(e.code(), "InvalidParameter");
        assert!(e.to_string().contains("Policy"));
        let e = kms
            .create_key(&CreateKeyRequest {
                policy: Some(bad),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(e.code(), "InvalidParameter");
    }
    let e = kms.get_key_policy(&id, Some("other")).unwrap_err();
    assert!(e.to_string().contains("PolicyName"));
    err(
        &kms,
        &[("Action", "SetKeyPolicy"), ("KeyId", &id)],
        "MissingParameter",
        400,
    );
    err(&kms, &[("Action", "GetKeyPolicy")], "MissingParameter", 400);
    kms.create_alias("alias/pol", &id).unwrap();
    assert_eq!(
        kms.get_key_policy("alias/pol", None).unwrap_err().code(),
        "Unsupported.Alias"
    );
    // Any key state.
    kms.schedule_key_deletion(&id, 7).unwrap();
    kms.set_key_policy(&id, policy, None).unwrap();
}

// ---- batch tags ------------------------------------------------------------

fn secret(kms: &Kms, name: &str) {
    kms.create_secret(&CreateSecretRequest::new(name), b"v")
        .unwrap();
}

fn rows(v: &Value) -> Vec<(String, String, String)> {
    v["TagResources"]["TagResource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (s(&r["ResourceId"]), s(&r["TagKey"]), s(&r["TagValue"])))
        .collect()
}

#[test]
fn batch_tags_on_keys_and_secrets_in_both_wire_forms() {
    let kms = Kms::in_memory().unwrap();
    let a = kms.create_key(&Default::default()).unwrap().key_id;
    let b = kms.create_key(&Default::default()).unwrap().key_id;
    // JSON forms.
    let ids = format!(r#"["{a}","{b}"]"#);
    ok(
        &kms,
        &[
            ("Action", "TagResources"),
            ("ResourceType", "key"),
            ("ResourceId", &ids),
            (
                "Tag",
                r#"[{"Key":"team","Value":"pay"},{"Key":"env","Value":"prod"}]"#,
            ),
        ],
    );
    // Flattened forms, as the 3.3.1 SDK sends them.
    let arn_b = format!("acs:kms:cn-hangzhou:1234567890123456:key/{b}");
    ok(
        &kms,
        &[
            ("Action", "TagResources"),
            ("ResourceType", "key"),
            ("ResourceId.1", &arn_b),
            ("Tag.1.Key", "tier"),
            ("Tag.1.Value", "gold"),
            ("Tag.2.Key", "empty"),
        ],
    );
    let listed = ok(
        &kms,
        &[
            ("Action", "ListTagResources"),
            ("ResourceType", "key"),
            ("ResourceId", &ids),
        ],
    );
    let mut want = vec![
        (a.clone(), "env".into(), "prod".into()),
        (a.clone(), "team".into(), "pay".into()),
        (b.clone(), "empty".into(), String::new()),
        (b.clone(), "env".into(), "prod".into()),
        (b.clone(), "team".into(), "pay".into()),
        (b.clone(), "tier".into(), "gold".into()),
    ];
    want.sort();
    assert_eq!(rows(&listed), want);
    assert_eq!(listed["NextToken"], "");
    assert_eq!(
        listed["TagResources"]["TagResource"][0]["ResourceType"],
        "key"
    );
    // The old single-key actions see the same tags.
    assert_eq!(kms.list_resource_tags(&b).unwrap().len(), 4);
    // Filters: key, or key and value.
    let f = ok(
        &kms,
        &[
            ("Action", "ListTagResources"),
            ("ResourceType", "key"),
            ("Tag.1.Key", "tier"),
            ("Tag.2.Key", "team"),
            ("Tag.2.Value", "pay"),
        ],
    );
    assert_eq!(rows(&f).len(), 3);
    // Untag: named keys (flattened), then All.
    ok(
        &kms,
        &[
            ("Action", "UntagResources"),
            ("ResourceType", "key"),
            ("ResourceId.1", &a),
            ("ResourceId.2", &b),
            ("TagKey.1", "env"),
            ("TagKey.2", "absent"),
        ],
    );
    assert_eq!(kms.list_resource_tags(&a).unwrap().len(), 1);
    ok(
        &kms,
        &[
            ("Action", "UntagResources"),
            ("ResourceType", "key"),
            ("ResourceId", &b),
            ("All", "true"),
        ],
    );
    assert!(kms.list_resource_tags(&b).unwrap().is_empty());
    err(
        &kms,
        &[
            ("Action", "UntagResources"),
            ("ResourceType", "key"),
            ("ResourceId", &b),
        ],
        "MissingParameter",
        400,
    );

    // Secrets.
    secret(&kms, "s1");
    secret(&kms, "s2");
    ok(
        &kms,
        &[
            ("Action", "TagResources"),
            ("ResourceType", "secret"),
            (
                "ResourceId",
                r#"["s1","acs:kms:cn-hangzhou:1234567890123456:secret/s2"]"#,
            ),
            ("Tag", r#"[{"Key":"k","Value":"v"}]"#),
        ],
    );
    let listed = ok(
        &kms,
        &[("Action", "ListTagResources"), ("ResourceType", "secret")],
    );
    let got: Vec<_> = rows(&listed).into_iter().map(|r| r.0).collect();
    assert_eq!(got, ["s1", "s2"]);
    assert_eq!(
        kms.describe_secret("s2", true).unwrap().tags[0].tag_value,
        "v"
    );
    ok(
        &kms,
        &[
            ("Action", "UntagResources"),
            ("ResourceType", "secret"),
            ("ResourceId", "s1"),
            ("TagKey", r#"["k"]"#),
        ],
    );
    assert!(kms.describe_secret("s1", true).unwrap().tags.is_empty());
    err(
        &kms,
        &[
            ("Action", "TagResources"),
            ("ResourceType", "bucket"),
            ("ResourceId", "s1"),
            ("Tag.1.Key", "k"),
        ],
        "InvalidParameter",
        400,
    );
}

#[test]
fn batch_tag_limits_and_all_or_nothing() {
    let kms = Kms::in_memory().unwrap();
    let keys: Vec<String> = (0..51)
        .map(|_| kms.create_key(&Default::default()).unwrap().key_id)
        .collect();
    let tag = [Tag::new("k", "v").unwrap()];
    let e = kms
        .tag_resources(ResourceType::Key, &keys, &tag)
        .unwrap_err();
    assert!(e.to_string().contains("ResourceId"), "{e}");
    kms.tag_resources(ResourceType::Key, &keys[..50], &tag)
        .unwrap();
    let many: Vec<Tag> = (0..21)
        .map(|i| Tag::new(format!("t{i}"), "").unwrap())
        .collect();
    let e = kms
        .tag_resources(ResourceType::Key, &keys[..1], &many)
        .unwrap_err();
    assert!(e.to_string().contains("Tag"), "{e}");
    let keys21: Vec<TagKey> = (0..21)
        .map(|i| TagKey::new(format!("t{i}")).unwrap())
        .collect();
    assert!(
        kms.untag_resources(ResourceType::Key, &keys[..1], &keys21, false)
            .is_err()
    );
    // Per resource: 10 tags on a key, 20 on a secret, after the merge; a
    // refused request changes no resource.
    let ten: Vec<Tag> = (0..10)
        .map(|i| Tag::new(format!("t{i}"), "").unwrap())
        .collect();
    kms.tag_resources(ResourceType::Key, &keys[1..2], &ten[..9])
        .unwrap();
    let e = kms
        .tag_resources(ResourceType::Key, &keys[..2], &ten[9..])
        .unwrap_err();
    assert_eq!(e.code(), "Rejected.LimitExceeded");
    assert_eq!(
        kms.list_resource_tags(&keys[0]).unwrap().len(),
        1,
        "untouched"
    );
    let twenty: Vec<Tag> = (0..20)
        .map(|i| Tag::new(format!("t{i}"), "").unwrap())
        .collect();
    secret(&kms, "big");
    kms.tag_resources(ResourceType::Secret, &["big".into()], &twenty)
        .unwrap();
    assert_eq!(
        kms.tag_resources(ResourceType::Secret, &["big".into()], &tag)
            .unwrap_err()
            .code(),
        "Rejected.LimitExceeded"
    );
    // A missing resource: nothing is tagged.
    let missing = "00000000-0000-4000-8000-000000000000".to_owned();
    let e = kms
        .tag_resources(
            ResourceType::Key,
            &[keys[2].clone(), missing],
            &[Tag::new("new", "").unwrap()],
        )
        .unwrap_err();
    assert_eq!(e.code(), "Forbidden.KeyNotFound");
    assert_eq!(kms.list_resource_tags(&keys[2]).unwrap().len(), 1);
    assert_eq!(
        kms.tag_resources(ResourceType::Secret, &["nope".into()], &tag)
            .unwrap_err()
            .code(),
        "Forbidden.ResourceNotFound"
    );
    assert_eq!(
        kms.tag_resources(ResourceType::Key, &["alias/x".into()], &tag)
            .unwrap_err()
            .code(),
        "Unsupported.Alias"
    );
    // Value rules (SPEC 4) apply on the wire for both resource types.
    for kind in ["key", "secret"] {
        let id = if kind == "key" {
            keys[3].as_str()
        } else {
            "big"
        };
        let m = err(
            &kms,
            &[
                ("Action", "TagResources"),
                ("ResourceType", kind),
                ("ResourceId", id),
                ("Tag.1.Key", "ok"),
                ("Tag.1.Value", "no#hash"),
            ],
            "InvalidParameter",
            400,
        );
        assert!(m.contains("TagValue"), "{m}");
        err(
            &kms,
            &[
                ("Action", "TagResources"),
                ("ResourceType", kind),
                ("ResourceId", id),
                ("Tag.1.Key", "acs:reserved"),
            ],
            "InvalidParameter",
            400,
        );
    }
}

#[test]
fn list_tag_resources_pages_with_next_token() {
    let (kms, clock, _store) = watched();
    let mut want = Vec::new();
    for i in 0..25 {
        let id = kms.create_key(&Default::default()).unwrap().key_id;
        let tags: Vec<Tag> = (0..10)
            .map(|t| Tag::new(format!("t{t}"), format!("{i}")).unwrap())
            .collect();
        kms.tag_resources(ResourceType::Key, std::slice::from_ref(&id), &tags)
            .unwrap();
        for t in &tags {
            want.push((id.clone(), t.key().as_str().to_owned()));
        }
    }
    want.sort();
    let mut got = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = kms
            .list_tag_resources(ResourceType::Key, &[], &[], token.as_deref())
            .unwrap();
        pages += 1;
        assert!(page.tag_resources.len() <= localkms::LIST_TAG_RESOURCES_PAGE);
        got.extend(
            page.tag_resources
                .into_iter()
                .map(|r| (r.resource_id, r.tag_key)),
        );
        if page.next_token.is_empty() {
            break;
        }
        token = Some(page.next_token);
    }
    assert_eq!(pages, 2);
    assert_eq!(got, want);
    // On the wire too, and a bad token is named.
    let first = ok(
        &kms,
        &[("Action", "ListTagResources"), ("ResourceType", "key")],
    );
    assert_eq!(rows(&first).len(), 200);
    let second = ok(
        &kms,
        &[
            ("Action", "ListTagResources"),
            ("ResourceType", "key"),
            ("NextToken", &s(&first["NextToken"])),
        ],
    );
    assert_eq!(rows(&second).len(), 50);
    let m = err(
        &kms,
        &[
            ("Action", "ListTagResources"),
            ("ResourceType", "key"),
            ("NextToken", "zz"),
        ],
        "InvalidParameter",
        400,
    );
    assert!(m.contains("NextToken"));
    // A key past its deletion date is not listed.
    kms.schedule_key_deletion(&want[0].0, 7).unwrap();
    clock.advance(8 * 86_400);
    let first = kms
        .list_tag_resources(ResourceType::Key, &[], &[], None)
        .unwrap();
    let rest = kms
        .list_tag_resources(ResourceType::Key, &[], &[], Some(&first.next_token))
        .unwrap();
    assert_eq!(first.tag_resources.len() + rest.tag_resources.len(), 240);
    assert!(
        first
            .tag_resources
            .iter()
            .all(|r| r.resource_id != want[0].0)
    );
}

// ---- DryRun ------------------------------------------------------------

/// The actions whose 3.3.1 request model has `DryRun`.
const DRY_RUN_ACTIONS: [&str; 15] = [
    "Encrypt",
    "Decrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncrypt",
    "ExportDataKey",
    "GenerateAndExportDataKey",
    "GetSecretValue",
    "AsymmetricEncrypt",
    "AsymmetricDecrypt",
    "AsymmetricSign",
    "AsymmetricVerify",
    "GetPublicKey",
    "GenerateMac",
    "VerifyMac",
];

/// Asserts that `p` (with `DryRun=true` added) answers `code` and writes
/// nothing at all.
fn dry(kms: &Kms, store: &Watched, p: &[(&str, &str)], code: &str, status: u16) {
    let before = store.snapshot();
    let applies = store.applies();
    let mut p = p.to_vec();
    p.push(("DryRun", "true"));
    err(kms, &p, code, status);
    assert_eq!(store.applies(), applies, "a dry run wrote: {p:?}");
    assert!(
        store.snapshot() == before,
        "a dry run changed records: {p:?}"
    );
}

#[test]
fn dry_run_writes_nothing_and_answers_dry_run_operation_error() {
    let (kms, clock, store) = watched();
    let audit = Arc::new(MemoryAudit::new());
    kms.set_audit_sink(audit.clone());
    let key = s(&ok(&kms, &[("Action", "CreateKey")])["KeyMetadata"]["KeyId"]);
    let other = s(&ok(&kms, &[("Action", "CreateKey")])["KeyMetadata"]["KeyId"]);
    ok(
        &kms,
        &[
            ("Action", "CreateAlias"),
            ("AliasName", "alias/dry"),
            ("KeyId", &key),
        ],
    );
    let sealed = s(&ok(
        &kms,
        &[("Action", "Encrypt"), ("KeyId", &key), ("Plaintext", "p")],
    )["CiphertextBlob"]);
    let data_key = s(&ok(
        &kms,
        &[
            ("Action", "GenerateDataKeyWithoutPlaintext"),
            ("KeyId", &key),
        ],
    )["CiphertextBlob"]);
    ok(
        &kms,
        &[
            ("Action", "CreateSecret"),
            ("SecretName", "dry"),
            ("SecretData", "v"),
            ("VersionId", "v1"),
        ],
    );
    // Asymmetric and HMAC keys for the asymmetric dry-run actions.
    let make = |spec: &str, usage: &str| {
        let m = ok(
            &kms,
            &[
                ("Action", "CreateKey"),
                ("KeySpec", spec),
                ("KeyUsage", usage),
            ],
        );
        (
            s(&m["KeyMetadata"]["KeyId"]),
            s(&m["KeyMetadata"]["PrimaryKeyVersion"]),
        )
    };
    let (ec, ec_v) = make("EC_P256", "SIGN/VERIFY");
    let (rsa_enc, rsa_v) = make("RSA_2048", "ENCRYPT/DECRYPT");
    let (hmac, _) = make("HMAC_SHA_256", "GENERATE/VERIFY MAC");
    let digest = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let signature = s(&ok(
        &kms,
        &[
            ("Action", "AsymmetricSign"),
            ("KeyId", &ec),
            ("KeyVersionId", &ec_v),
            ("Algorithm", "ECDSA_SHA_256"),
            ("Digest", digest),
        ],
    )["Value"]);
    let asym_blob = s(&ok(
        &kms,
        &[
            ("Action", "AsymmetricEncrypt"),
            ("KeyId", &rsa_enc),
            ("KeyVersionId", &rsa_v),
            ("Algorithm", "RSAES_OAEP_SHA_256"),
            ("Plaintext", "aGVsbG8="),
        ],
    )["CiphertextBlob"]);
    let mac = s(&ok(
        &kms,
        &[
            ("Action", "GenerateMac"),
            ("KeyId", &hmac),
            ("Algorithm", "HMAC_SHA_256"),
            ("Message", "aGVsbG8="),
        ],
    )["Mac"]);
    let (_, rsa) = rsa_key();
    let wrap = [
        ("PublicKeyBlob", rsa.as_str()),
        ("WrappingAlgorithm", "RSAES_OAEP_SHA_256"),
        ("WrappingKeySpec", "RSA_2048"),
    ];
    let requests: BTreeMap<&str, Vec<(&str, &str)>> = [
        (
            "Encrypt",
            vec![("KeyId", "alias/dry"), ("Plaintext", "hello")],
        ),
        ("Decrypt", vec![("CiphertextBlob", sealed.as_str())]),
        ("GenerateDataKey", vec![("KeyId", key.as_str())]),
        (
            "GenerateDataKeyWithoutPlaintext",
            vec![("KeyId", key.as_str()), ("NumberOfBytes", "64")],
        ),
        (
            "ReEncrypt",
            vec![
                ("CiphertextBlob", sealed.as_str()),
                ("DestinationKeyId", other.as_str()),
            ],
        ),
        (
            "ExportDataKey",
            [vec![("CiphertextBlob", data_key.as_str())], wrap.to_vec()].concat(),
        ),
        (
            "GenerateAndExportDataKey",
            [vec![("KeyId", key.as_str())], wrap.to_vec()].concat(),
        ),
        ("GetSecretValue", vec![("SecretName", "dry")]),
        (
            "GetPublicKey",
            vec![("KeyId", ec.as_str()), ("KeyVersionId", ec_v.as_str())],
        ),
        (
            "AsymmetricSign",
            vec![
                ("KeyId", ec.as_str()),
                ("KeyVersionId", ec_v.as_str()),
                ("Algorithm", "ECDSA_SHA_256"),
                ("Digest", digest),
            ],
        ),
        (
            "AsymmetricVerify",
            vec![
                ("KeyId", ec.as_str()),
                ("KeyVersionId", ec_v.as_str()),
                ("Algorithm", "ECDSA_SHA_256"),
                ("Digest", digest),
                ("Value", signature.as_str()),
            ],
        ),
        (
            "AsymmetricEncrypt",
            vec![
                ("KeyId", rsa_enc.as_str()),
                ("KeyVersionId", rsa_v.as_str()),
                ("Algorithm", "RSAES_OAEP_SHA_256"),
                ("Plaintext", "aGVsbG8="),
            ],
        ),
        (
            "AsymmetricDecrypt",
            vec![
                ("KeyId", rsa_enc.as_str()),
                ("KeyVersionId", rsa_v.as_str()),
                ("Algorithm", "RSAES_OAEP_SHA_256"),
                ("CiphertextBlob", asym_blob.as_str()),
            ],
        ),
        (
            "GenerateMac",
            vec![
                ("KeyId", hmac.as_str()),
                ("Algorithm", "HMAC_SHA_256"),
                ("Message", "aGVsbG8="),
            ],
        ),
        (
            "VerifyMac",
            vec![
                ("KeyId", hmac.as_str()),
                ("Algorithm", "HMAC_SHA_256"),
                ("Message", "aGVsbG8="),
                ("Mac", mac.as_str()),
            ],
        ),
    ]
    .into_iter()
    .collect();
    let table: BTreeSet<&str> = wire::actions().map(|(name, _)| name).collect();
    let mut checked = 0;
    for action in DRY_RUN_ACTIONS {
        if !table.contains(action) {
            eprintln!("DryRun: {action} is not in this build's action table; not checked");
            continue;
        }
        let params = requests
            .get(action)
            .unwrap_or_else(|| panic!("give {action} a would-succeed request here"));
        let mut p = vec![("Action", action)];
        p.extend(params.iter().copied());
        dry(&kms, &store, &p, "DryRunOperationError", 400);
        // A bad request answers the error the real call gives, and writes
        // nothing either.
        let (real_status, real) = {
            let mut bad = p.clone();
            bad.retain(|(k, _)| *k == "Action");
            call(&kms, &bad)
        };
        let mut bad = vec![("Action", action)];
        bad.push(("DryRun", "true"));
        let (status, v) = call(&kms, &bad);
        assert_eq!(
            (status, &v["Code"]),
            (real_status, &real["Code"]),
            "{action}"
        );
        assert_eq!(v["Code"], "MissingParameter", "{action}");
        // And the real call succeeds.
        ok(&kms, &p);
        checked += 1;
    }
    assert_eq!(checked, requests.len());

    // DryRun=false is a real call; a malformed DryRun is named.
    ok(
        &kms,
        &[
            ("Action", "Encrypt"),
            ("KeyId", &key),
            ("Plaintext", "x"),
            ("DryRun", "false"),
        ],
    );
    let m = err(
        &kms,
        &[
            ("Action", "Encrypt"),
            ("KeyId", &key),
            ("Plaintext", "x"),
            ("DryRun", "maybe"),
        ],
        "InvalidParameter",
        400,
    );
    assert!(m.contains("DryRun"));

    // State errors, as the real call gives them.
    kms.disable_key(&other).unwrap();
    dry(
        &kms,
        &store,
        &[("Action", "GenerateDataKey"), ("KeyId", &other)],
        "Rejected.Disabled",
        409,
    );
    dry(
        &kms,
        &store,
        &[
            ("Action", "ReEncrypt"),
            ("CiphertextBlob", &sealed),
            ("DestinationKeyId", &other),
        ],
        "Rejected.Disabled",
        409,
    );
    dry(
        &kms,
        &store,
        &[
            ("Action", "Decrypt"),
            ("CiphertextBlob", &sealed),
            ("EncryptionContext", r#"{"a":"b"}"#),
        ],
        "InvalidParameter",
        400,
    );
    dry(
        &kms,
        &store,
        &[("Action", "GetSecretValue"), ("SecretName", "nope")],
        "Forbidden.ResourceNotFound",
        404,
    );

    // Lazy maintenance is worked out, not written: rotation due, deletion
    // due, a secret past its recovery window.
    let rotating = s(&ok(
        &kms,
        &[
            ("Action", "CreateKey"),
            ("EnableAutomaticRotation", "true"),
            ("RotationInterval", "7d"),
        ],
    )["KeyMetadata"]["KeyId"]);
    let doomed = s(&ok(&kms, &[("Action", "CreateKey")])["KeyMetadata"]["KeyId"]);
    ok(
        &kms,
        &[
            ("Action", "ScheduleKeyDeletion"),
            ("KeyId", &doomed),
            ("PendingWindowInDays", "7"),
        ],
    );
    ok(
        &kms,
        &[
            ("Action", "DeleteSecret"),
            ("SecretName", "dry"),
            ("RecoveryWindowInDays", "7"),
        ],
    );
    clock.advance(8 * 86_400);
    dry(
        &kms,
        &store,
        &[
            ("Action", "Encrypt"),
            ("KeyId", &rotating),
            ("Plaintext", "x"),
        ],
        "DryRunOperationError",
        400,
    );
    dry(
        &kms,
        &store,
        &[
            ("Action", "Encrypt"),
            ("KeyId", &doomed),
            ("Plaintext", "x"),
        ],
        "Forbidden.KeyNotFound",
        404,
    );
    dry(
        &kms,
        &store,
        &[("Action", "GetSecretValue"), ("SecretName", "dry")],
        "Forbidden.ResourceNotFound",
        404,
    );
    // The cache was not given the settled records either: the real calls
    // still do the maintenance (a cached rotation whose material was never
    // stored would fail here).
    kms.encrypt(&rotating, b"x", &EncryptionContext::empty())
        .unwrap();
    let versions = kms
        .list_key_versions(&rotating, Default::default())
        .unwrap()
        .total_count;
    assert_eq!(versions, 2);
    let before = kms.key_count().unwrap();
    assert_eq!(
        kms.encrypt(&doomed, b"x", &EncryptionContext::empty())
            .unwrap_err()
            .code(),
        "Forbidden.KeyNotFound"
    );
    assert_eq!(kms.key_count().unwrap(), before - 1);

    // The audit trail records dry runs with their own outcome.
    let events = audit.events();
    assert!(
        events
            .iter()
            .any(|e| e.action == "ExportDataKey" && e.outcome == "DryRunOperationError")
    );
    assert!(
        events
            .iter()
            .any(|e| e.action == "ExportDataKey" && e.outcome == "Success")
    );
}

#[test]
fn dry_run_in_the_rust_api() {
    let (kms, _clock, store) = watched();
    let key = kms.create_key(&Default::default()).unwrap().key_id;
    let ctx = EncryptionContext::empty();
    let before = store.snapshot();
    let applies = store.applies();
    kms.dry_run(|k| k.encrypt(&key, b"x", &ctx)).unwrap();
    kms.dry_run(|k| k.generate_data_key(&key, &Default::default()))
        .unwrap();
    // Any operation: writes reach the barrier and stop there.
    kms.dry_run(|k| k.create_key(&Default::default())).unwrap();
    kms.dry_run(|k| k.disable_key(&key)).unwrap();
    kms.dry_run(|k| k.set_deletion_protection(&key, Some("d")))
        .unwrap();
    kms.dry_run(|k| k.set_key_policy(&key, "{}", None)).unwrap();
    kms.dry_run(|k| k.create_secret(&CreateSecretRequest::new("x"), b"v"))
        .unwrap();
    assert_eq!(
        kms.dry_run(|k| k.schedule_key_deletion(&key, 3))
            .unwrap_err()
            .code(),
        "InvalidParameter"
    );
    assert_eq!(store.applies(), applies);
    assert!(store.snapshot() == before);
    assert_eq!(kms.key_count().unwrap(), 1);
    assert_eq!(kms.describe_key(&key).unwrap().key_state, KeyState::Enabled);
    // The barrier is per service and ends with the closure.
    let other = Kms::in_memory().unwrap();
    kms.dry_run(|_| other.create_key(&Default::default()))
        .unwrap();
    assert_eq!(other.key_count().unwrap(), 1);
    kms.create_key(&Default::default()).unwrap();
    assert_eq!(kms.key_count().unwrap(), 2);
}

// ---- account calls and refused actions -----------------------------------

#[test]
fn account_calls_answer_as_an_open_service() {
    let kms = Kms::in_memory().unwrap();
    let v = ok(&kms, &[("Action", "DescribeAccountKmsStatus")]);
    assert_eq!(v["AccountStatus"], "Enabled");
    ok(&kms, &[("Action", "OpenKmsService")]);
    assert_eq!(kms.describe_account_kms_status().unwrap(), "Enabled");
}

#[test]
fn instance_and_access_point_actions_are_refused_with_a_reason() {
    let kms = Kms::in_memory().unwrap();
    for action in [
        "ListKmsInstances",
        "CreateApplicationAccessPoint",
        "CreateNetworkRule",
        "CreateClientKey",
        "GetManagedDataKey",
    ] {
        let m = err(&kms, &[("Action", action)], "UnsupportedOperation", 400);
        assert!(m.contains(action), "{m}");
    }
    err(
        &kms,
        &[("Action", "NoSuchAction")],
        "InvalidAction.NotFound",
        404,
    );
}
