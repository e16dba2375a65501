//! The testing toolkit: deterministic mode (feature `test-util`), fixtures,
//! fault injection and the audit trail.

mod common;

use std::sync::Arc;

use common::T0;
use localkms::{
    EncryptionContext, Fault, GenerateDataKeyRequest, JsonLinesAudit, KeyState, Kms, ManualClock,
    MemoryAudit, Paging, wire,
};
use serde_json::Value;

fn kms() -> (Kms, ManualClock) {
    let clock = ManualClock::new(T0);
    let kms = Kms::builder().clock(clock.clone()).build().expect("kms");
    (kms, clock)
}

fn params(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn body(r: &wire::Response) -> Value {
    serde_json::from_str(&r.body).expect("JSON body")
}

fn ctx() -> EncryptionContext {
    EncryptionContext::empty()
}

// ---- deterministic mode ----------------------------------------------------

#[test]
fn default_builds_are_random() {
    let (a, _) = kms();
    let (b, _) = kms();
    assert!(!a.is_insecure_deterministic());
    let ka = a.create_key(&Default::default()).unwrap();
    let kb = b.create_key(&Default::default()).unwrap();
    assert_ne!(ka.key_id, kb.key_id);
    let e1 = a.encrypt(&ka.key_id, b"x", &ctx()).unwrap();
    let e2 = a.encrypt(&ka.key_id, b"x", &ctx()).unwrap();
    assert_ne!(e1.ciphertext_blob, e2.ciphertext_blob);
}

/// The feature gate itself: `test-util` is not a default feature, and the
/// deterministic builder method and fixed-material paths are compiled only
/// with it. (The doc test on `testkit::rng::DefaultBuildGate` checks, in a
/// build without the feature, that the method cannot be called.)
#[test]
fn deterministic_mode_is_behind_a_non_default_feature() {
    let manifest = include_str!("../Cargo.toml");
    let features = manifest
        .split("[features]")
        .nth(1)
        .expect("a [features] table");
    let features = features.split("\n[").next().unwrap_or("");
    assert!(features.contains("test-util = []"), "{features}");
    for line in features.lines() {
        if line.trim_start().starts_with("default") {
            assert!(!line.contains("test-util"), "{line}");
        }
    }
    let kms = include_str!("../src/kms.rs");
    let at = kms
        .find("pub fn insecure_deterministic")
        .expect("the method");
    let before: Vec<&str> = kms[..at].lines().rev().take(2).collect();
    assert!(
        before
            .iter()
            .any(|l| l.trim() == "#[cfg(feature = \"test-util\")]"),
        "{before:?}"
    );
    let rng = include_str!("../src/rng.rs");
    let variant = rng
        .find("Deterministic(std::sync::Mutex<Drbg>)")
        .expect("the variant");
    assert!(
        rng[..variant]
            .trim_end()
            .lines()
            .last()
            .is_some_and(|l| l.trim() == "#[cfg(feature = \"test-util\")]")
    );
}

#[cfg(feature = "test-util")]
mod deterministic {
    use super::*;

    fn seeded(seed: u64) -> Kms {
        Kms::builder()
            .clock(ManualClock::new(T0))
            .insecure_deterministic(seed)
            .build()
            .expect("kms")
    }

    /// Everything an application can snapshot, from one seed.
    fn transcript(kms: &Kms) -> Vec<String> {
        let key = kms.create_key(&Default::default()).unwrap();
        let blob = kms
            .encrypt(&key.key_id, b"hello", &ctx())
            .unwrap()
            .ciphertext_blob;
        let dk = kms
            .generate_data_key(&key.key_id, &GenerateDataKeyRequest::default())
            .unwrap();
        let v2 = kms.create_key_version(&key.key_id).unwrap();
        let re = kms.re_encrypt(&blob, &key.key_id, &ctx(), &ctx()).unwrap();
        let env = kms.envelope_encrypt(&key.key_id, b"big", &ctx()).unwrap();
        vec![
            key.key_id,
            key.primary_key_version,
            blob.to_base64(),
            dk.plaintext.to_base64().to_string(),
            dk.ciphertext_blob.to_base64(),
            v2.key_version_id,
            re.ciphertext_blob.to_base64(),
            env.iter().map(|b| format!("{b:02x}")).collect(),
        ]
    }

    #[test]
    fn same_seed_same_outputs() {
        let a = transcript(&seeded(7));
        assert_eq!(a, transcript(&seeded(7)));
        let b = transcript(&seeded(8));
        for (x, y) in a.iter().zip(&b) {
            assert_ne!(x, y);
        }
        let kms = seeded(7);
        assert!(kms.is_insecure_deterministic());
        // Ids are still well-formed UUID v4.
        let id = &a[0];
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        // And the outputs still decrypt.
        let key = kms.create_key(&Default::default()).unwrap();
        let e = kms.encrypt(&key.key_id, b"hi", &ctx()).unwrap();
        assert_eq!(
            kms.decrypt(&e.ciphertext_blob, &ctx())
                .unwrap()
                .plaintext
                .expose_secret(),
            b"hi"
        );
    }

    #[test]
    fn a_reopened_store_does_not_make_the_same_ids_again() {
        let open = |dir: &std::path::Path| {
            Kms::builder()
                .sled(dir)
                .root_key_bytes(&[9u8; 32])
                .clock(ManualClock::new(T0))
                .insecure_deterministic(5)
                .build()
                .expect("sled")
        };
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let first = open(d1.path()).create_key(&Default::default()).unwrap();
        // A fresh store with the same seed repeats the stream...
        let again = open(d2.path()).create_key(&Default::default()).unwrap();
        assert_eq!(first.key_id, again.key_id);
        // ...a reopened one does not: the old key stays as it was.
        let kms = open(d1.path());
        let second = kms.create_key(&Default::default()).unwrap();
        assert_ne!(second.key_id, first.key_id);
        assert_ne!(second.primary_key_version, first.primary_key_version);
        assert_eq!(kms.describe_key(&first.key_id).unwrap(), first);
        assert_eq!(kms.key_count().unwrap(), 2);
    }

    #[test]
    fn fixtures_generate_reproducibly() {
        let f = r#"{"Keys":[{"Description":"a"},{"Versions":[{},{}]}]}"#;
        let a = seeded(3);
        let b = seeded(3);
        let ia = a.load_fixtures(f).unwrap();
        assert_eq!(ia, b.load_fixtures(f).unwrap());
        assert_eq!(
            a.export_fixtures_with_material().unwrap().as_str(),
            b.export_fixtures_with_material().unwrap().as_str()
        );
    }
}

// ---- fixtures --------------------------------------------------------------

const K1: &str = "11111111-1111-4111-8111-111111111111";
const K2: &str = "22222222-2222-4222-8222-222222222222";
const V1: &str = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
const V2: &str = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";

fn full_fixture() -> String {
    format!(
        r#"{{
  "FixtureVersion": 1,
  "Keys": [
    {{
      "KeyId": "{K1}",
      "Description": "orders",
      "KeyState": "Disabled",
      "ProtectionLevel": "HSM",
      "CreationDate": "2025-06-01T00:00:00Z",
      "AutomaticRotation": true,
      "RotationInterval": "30d",
      "Aliases": ["alias/orders", "alias/orders-v2"],
      "Tags": [{{"TagKey": "team", "TagValue": "pay"}}, {{"TagKey": "env"}}],
      "Versions": [
        {{"KeyVersionId": "{V1}", "CreationDate": "2025-06-01T00:00:00Z"}},
        {{"KeyVersionId": "{V2}", "CreationDate": "2025-07-01T00:00:00Z"}}
      ]
    }},
    {{
      "KeyId": "{K2}",
      "KeyState": "PendingDeletion",
      "DeleteDate": "2026-01-08T00:00:00Z",
      "Aliases": ["alias/doomed"]
    }},
    {{ "Origin": "EXTERNAL", "Description": "byok" }}
  ]
}}"#
    )
}

#[test]
fn fixture_loads_ids_states_aliases_tags_dates_and_versions() {
    let (kms, clock) = kms();
    let ids = kms.load_fixtures(&full_fixture()).unwrap();
    assert_eq!(ids.len(), 3);
    assert_eq!((ids[0].as_str(), ids[1].as_str()), (K1, K2));

    let m = kms.describe_key("alias/orders").unwrap();
    assert_eq!(m.key_id, K1);
    assert_eq!(m.key_state, KeyState::Disabled);
    assert_eq!(m.description, "orders");
    assert_eq!(m.creation_date, "2025-06-01T00:00:00Z");
    assert_eq!(m.primary_key_version, V2);
    assert_eq!(m.protection_level.as_str(), "HSM");
    assert_eq!(m.automatic_rotation, "Enabled");
    assert_eq!(m.rotation_interval, "2592000s");
    assert_eq!(m.last_rotation_date, "2025-07-01T00:00:00Z");
    assert_eq!(m.next_rotation_date, "2025-07-31T00:00:00Z");
    assert_eq!(kms.describe_key("alias/orders-v2").unwrap().key_id, K1);
    let versions = kms.list_key_versions(K1, Paging::default()).unwrap();
    let vids: Vec<_> = versions
        .items
        .iter()
        .map(|v| v.key_version_id.as_str())
        .collect();
    assert_eq!(vids, [V1, V2]);
    let tags = kms.list_resource_tags(K1).unwrap();
    let tags: Vec<_> = tags
        .iter()
        .map(|t| (t.tag_key.as_str(), t.tag_value.as_str()))
        .collect();
    assert_eq!(tags, [("env", ""), ("team", "pay")]);

    let doomed = kms.describe_key(K2).unwrap();
    assert_eq!(doomed.key_state, KeyState::PendingDeletion);
    assert_eq!(doomed.delete_date, "2026-01-08T00:00:00Z");
    let ext = kms.describe_key(&ids[2]).unwrap();
    assert_eq!(ext.key_state, KeyState::PendingImport);
    assert_eq!(ext.primary_key_version, "");

    // The deletion window runs on the injected clock.
    clock.advance(7 * 86_400);
    assert_eq!(
        kms.describe_key(K2).unwrap_err().code(),
        "Forbidden.KeyNotFound"
    );
    assert_eq!(
        kms.describe_key("alias/doomed").unwrap_err().code(),
        "Forbidden.AliasNotFound"
    );
    // Rotation is due (NextRotationDate passed): the key rotates on use.
    kms.enable_key(K1).unwrap();
    assert_eq!(
        kms.list_key_versions(K1, Paging::default())
            .unwrap()
            .total_count,
        3
    );
}

fn load_err(json: &str) -> String {
    let (kms, _) = kms();
    let e = kms.load_fixtures(json).unwrap_err();
    assert_eq!(e.code(), "InvalidParameter", "{e}");
    // Nothing was written.
    assert_eq!(kms.key_count().unwrap(), 0, "{e}");
    e.to_string()
}

#[test]
fn bad_fixtures_name_the_offending_entry() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"Keys":[{},{},{},{"Aliases":["alias/ok","bad name"]}]}"#,
            "Keys[3].Aliases[1]: ",
        ),
        (
            r#"{"Keys":[{"Colour":"red"}]}"#,
            "Keys[0].Colour: unknown field",
        ),
        (
            r#"{"Keys":[{"KeyId":"not-a-uuid"}]}"#,
            "Keys[0].KeyId: must be a lowercase UUID",
        ),
        (
            r#"{"Keys":[{"KeyState":"PendingDeletion"}]}"#,
            "Keys[0].DeleteDate: is required",
        ),
        (
            r#"{"Keys":[{"DeleteDate":"2026-01-08T00:00:00Z"}]}"#,
            "Keys[0].DeleteDate",
        ),
        (r#"{"Keys":[{"KeyState":"Enabld"}]}"#, "Keys[0].KeyState: "),
        (
            r#"{"Keys":[{"CreationDate":"yesterday"}]}"#,
            "Keys[0].CreationDate: must be like",
        ),
        (
            r#"{"Keys":[{"Tags":[{"TagKey":"acs:x"}]}]}"#,
            "Keys[0].Tags[0]: ",
        ),
        (
            r#"{"Keys":[{"Tags":[{"TagValue":"v"}]}]}"#,
            "Keys[0].Tags[0]: TagKey is required",
        ),
        (
            r#"{"Keys":[{"RotationInterval":"1d"}]}"#,
            "Keys[0].RotationInterval: ",
        ),
        (
            r#"{"Keys":[{"Versions":[]}]}"#,
            "Keys[0].Versions: must list at least one",
        ),
        (
            r#"{"Keys":[{"Versions":[{"Bytes":"00"}]}]}"#,
            "Keys[0].Versions[0].Bytes: unknown field",
        ),
        (
            r#"{"Keys":[{"Origin":"EXTERNAL","KeyState":"Enabled"}]}"#,
            "Keys[0].KeyState: an EXTERNAL key",
        ),
        (
            r#"{"Keys":[{"Origin":"EXTERNAL","Versions":[{}]}]}"#,
            "Keys[0].Versions: an EXTERNAL key",
        ),
        (
            r#"{"Keys":[{"KeyState":"PendingImport"}]}"#,
            "Keys[0].KeyState: only an EXTERNAL",
        ),
        (
            r#"{"Keys":[{"AutomaticRotation":"yes"}]}"#,
            "Keys[0].AutomaticRotation: must be true or false",
        ),
        (
            r#"{"Keys":[{"Aliases":["alias/a"]},{"Aliases":["alias/a"]}]}"#,
            "Keys[1].Aliases[0]: appears twice",
        ),
        (
            r#"{"FixtureVersion":2,"Keys":[]}"#,
            "FixtureVersion: must be 1",
        ),
        (r#"{"keys":[]}"#, "fixture.keys: unknown field"),
        (r#"[1]"#, "fixture: must be a JSON object"),
        (r#"{"Keys":"#, "fixture: "),
    ];
    for (json, want) in cases {
        let msg = load_err(json);
        assert!(msg.contains(want), "{json}\n  got: {msg}\n  want: {want}");
        assert!(msg.contains("Fixture"), "{msg}");
    }
    let dup = format!(r#"{{"Keys":[{{"KeyId":"{K1}"}},{{"KeyId":"{K1}"}}]}}"#);
    assert!(load_err(&dup).contains("Keys[1].KeyId: appears twice"));
    let dup_v = format!(
        r#"{{"Keys":[{{"Versions":[{{"KeyVersionId":"{V1}"}},{{"KeyVersionId":"{V1}"}}]}}]}}"#
    );
    assert!(load_err(&dup_v).contains("Keys[0].Versions[1].KeyVersionId: appears twice"));
}

#[test]
fn fixtures_do_not_overwrite_the_store() {
    let (kms, _) = kms();
    kms.load_fixtures(&format!(
        r#"{{"Keys":[{{"KeyId":"{K1}","Aliases":["alias/a"]}}]}}"#
    ))
    .unwrap();
    let e = kms
        .load_fixtures(&format!(r#"{{"Keys":[{{}},{{"KeyId":"{K1}"}}]}}"#))
        .unwrap_err();
    assert!(
        e.to_string().contains("Keys[1].KeyId: exists in the store"),
        "{e}"
    );
    let e = kms
        .load_fixtures(r#"{"Keys":[{"Aliases":["alias/a"]}]}"#)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("Keys[0].Aliases[0]: exists in the store"),
        "{e}"
    );
    assert_eq!(kms.key_count().unwrap(), 1);
}

#[cfg(not(feature = "test-util"))]
#[test]
fn fixed_material_needs_the_feature() {
    let msg = load_err(&format!(
        r#"{{"Keys":[{{"Versions":[{{"MaterialHex":"{}"}}]}}]}}"#,
        "00".repeat(32)
    ));
    assert!(msg.contains(
        "Keys[0].Versions[0].MaterialHex: fixed key material needs the test-util feature"
    ));
}

#[cfg(feature = "test-util")]
#[test]
fn fixed_material_hex_and_base64() {
    let hex = "0f".repeat(32);
    let b64 = "Dw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8="; // 32 x 0x0f
    let a = format!(
        r#"{{"Keys":[{{"KeyId":"{K1}","Versions":[{{"KeyVersionId":"{V1}","MaterialHex":"{hex}"}}]}}]}}"#
    );
    let b = format!(
        r#"{{"Keys":[{{"KeyId":"{K1}","Versions":[{{"KeyVersionId":"{V1}","MaterialBase64":"{b64}"}}]}}]}}"#
    );
    let (ka, _) = kms();
    let (kb, _) = kms();
    ka.load_fixtures(&a).unwrap();
    kb.load_fixtures(&b).unwrap();
    // Same ids and material: a blob of one store opens in the other.
    let blob = ka.encrypt(K1, b"fixture", &ctx()).unwrap().ciphertext_blob;
    assert_eq!(
        kb.decrypt(&blob, &ctx()).unwrap().plaintext.expose_secret(),
        b"fixture"
    );
    for bad in ["0f", "zz", ""] {
        let f = format!(r#"{{"Keys":[{{"Versions":[{{"MaterialHex":"{bad}"}}]}}]}}"#);
        assert!(
            load_err(&f).contains("Keys[0].Versions[0].MaterialHex: must encode exactly 32 bytes")
        );
    }
    let both = format!(
        r#"{{"Keys":[{{"Versions":[{{"MaterialHex":"{hex}","MaterialBase64":"{b64}"}}]}}]}}"#
    );
    assert!(load_err(&both).contains("not both"));

    // Export with material reproduces the keys elsewhere.
    let exported = ka.export_fixtures_with_material().unwrap();
    assert!(exported.contains(&hex));
    let (kc, _) = kms();
    kc.load_fixtures(&exported).unwrap();
    assert_eq!(
        kc.decrypt(&blob, &ctx()).unwrap().plaintext.expose_secret(),
        b"fixture"
    );
}

#[test]
fn export_has_no_material_and_round_trips() {
    let (a, _) = kms();
    a.load_fixtures(&full_fixture()).unwrap();
    let key = a.create_key(&Default::default()).unwrap();
    a.tag_resource(&key.key_id, &[localkms::Tag::new("k", "v").unwrap()])
        .unwrap();
    let text = a.export_fixtures().unwrap();
    assert!(!text.contains("Material"), "{text}");
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["FixtureVersion"], 1);
    assert_eq!(doc["Keys"].as_array().unwrap().len(), 4);
    assert_eq!(
        doc["Keys"][0]["Aliases"],
        serde_json::json!(["alias/orders", "alias/orders-v2"])
    );

    let (b, _) = kms();
    b.load_fixtures(&text).unwrap();
    assert_eq!(b.export_fixtures().unwrap(), text);
    // Same metadata, new material: old blobs do not open.
    let blob = a
        .encrypt(&key.key_id, b"x", &ctx())
        .unwrap()
        .ciphertext_blob;
    assert!(b.decrypt(&blob, &ctx()).is_err());
}

#[test]
fn fixture_file_loads_and_missing_file_is_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    std::fs::write(&path, full_fixture()).unwrap();
    let (kms, _) = kms();
    assert_eq!(kms.load_fixtures_file(&path).unwrap().len(), 3);
    let e = kms
        .load_fixtures_file(dir.path().join("none.json"))
        .unwrap_err();
    assert!(matches!(e, localkms::Error::Io { .. }), "{e:?}");
}

// ---- fault injection -------------------------------------------------------

#[test]
fn faults_fail_next_through_the_rust_api() {
    let (kms, _) = kms();
    let key = kms.create_key(&Default::default()).unwrap().key_id;
    kms.faults()
        .fail_next("Encrypt", 2, Fault::Throttling)
        .unwrap();
    for _ in 0..2 {
        let e = kms.encrypt(&key, b"x", &ctx()).unwrap_err();
        assert_eq!((e.code(), e.http_status()), ("Rejected.Throttling", 429));
    }
    kms.encrypt(&key, b"x", &ctx()).unwrap();
    // Other actions were never affected.
    kms.faults()
        .fail_next("Decrypt", 1, Fault::ServiceUnavailable)
        .unwrap();
    let blob = kms.encrypt(&key, b"x", &ctx()).unwrap().ciphertext_blob;
    let e = kms.decrypt(&blob, &ctx()).unwrap_err();
    assert_eq!(
        (e.code(), e.http_status()),
        ("ServiceUnavailableTemporary", 503)
    );
    kms.decrypt(&blob, &ctx()).unwrap();

    // A faulted call changes nothing.
    kms.faults()
        .fail_next("CreateKey", 1, Fault::InternalFailure)
        .unwrap();
    let e = kms.create_key(&Default::default()).unwrap_err();
    assert_eq!((e.code(), e.http_status()), ("InternalFailure", 500));
    assert_eq!(kms.key_count().unwrap(), 1);

    // Nested calls are not faulted again: ReEncrypt calls Decrypt inside.
    kms.faults()
        .fail_next("Decrypt", 5, Fault::Throttling)
        .unwrap();
    kms.re_encrypt(&blob, &key, &ctx(), &ctx()).unwrap();
    kms.faults().clear();
    kms.decrypt(&blob, &ctx()).unwrap();
}

#[test]
fn faults_reach_the_wire() {
    let (kms, _) = kms();
    let created = wire::dispatch(&kms, &params(&[("Action", "CreateKey")]));
    let key = body(&created)["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    kms.faults().fail_next("*", 1, Fault::Throttling).unwrap();
    let r = wire::dispatch(&kms, &params(&[("Action", "DescribeKey"), ("KeyId", &key)]));
    assert_eq!(r.status, 429);
    let b = body(&r);
    assert_eq!(b["Code"], "Rejected.Throttling");
    assert_eq!(b["HttpStatus"], 429);
    let r = wire::dispatch(&kms, &params(&[("Action", "DescribeKey"), ("KeyId", &key)]));
    assert_eq!(r.status, 200);

    kms.faults()
        .fail_next("Encrypt", 1, Fault::ServiceUnavailable)
        .unwrap();
    let enc = [
        ("Action", "Encrypt"),
        ("KeyId", key.as_str()),
        ("Plaintext", "hi"),
    ];
    let r = wire::dispatch(&kms, &params(&enc));
    assert_eq!(
        (r.status, body(&r)["Code"].as_str()),
        (503, Some("ServiceUnavailableTemporary"))
    );
    assert_eq!(wire::dispatch(&kms, &params(&enc)).status, 200);
}

#[test]
fn probabilistic_faults_repeat_with_the_seed() {
    let run = |seed| {
        let (kms, _) = kms();
        let key = kms.create_key(&Default::default()).unwrap().key_id;
        kms.faults()
            .fail_with_probability("Encrypt", 0.3, Fault::Throttling, seed)
            .unwrap();
        (0..40)
            .map(|_| kms.encrypt(&key, b"x", &ctx()).is_err())
            .collect::<Vec<_>>()
    };
    let a = run(11);
    assert_eq!(a, run(11));
    assert!(a.iter().any(|f| *f) && a.iter().any(|f| !*f));
    assert_ne!(a, run(12));
}

#[test]
fn fault_rules_are_checked() {
    let (kms, _) = kms();
    let e = kms
        .faults()
        .fail_next("Encript", 1, Fault::Throttling)
        .unwrap_err();
    assert_eq!(e.code(), "InvalidParameter");
    assert!(e.to_string().contains("Encript"));
    assert!(
        kms.faults()
            .fail_with_probability("Encrypt", -0.1, Fault::Throttling, 1)
            .is_err()
    );
}

// ---- audit trail -----------------------------------------------------------

#[test]
fn audit_events_for_success_and_failure() {
    let (kms, _) = kms();
    let audit = Arc::new(MemoryAudit::new());
    kms.set_audit_sink(audit.clone());
    let key = kms.create_key(&Default::default()).unwrap();
    kms.create_alias("alias/app", &key.key_id).unwrap();
    let e = kms
        .encrypt("alias/app", b"secret plaintext", &ctx())
        .unwrap();
    kms.disable_key(&key.key_id).unwrap();
    assert!(kms.encrypt(&key.key_id, b"x", &ctx()).is_err());
    assert!(kms.decrypt(&[0, 0, 0], &ctx()).is_err());
    kms.faults()
        .fail_next("DescribeKey", 1, Fault::Throttling)
        .unwrap();
    assert!(kms.describe_key("alias/app").is_err());

    let ev = audit.take();
    let summary: Vec<_> = ev
        .iter()
        .map(|e| {
            (
                e.action,
                e.key_id.as_deref(),
                e.key_version_id.as_deref(),
                e.outcome,
            )
        })
        .collect();
    let (k, v) = (
        Some(key.key_id.as_str()),
        Some(key.primary_key_version.as_str()),
    );
    assert_eq!(
        summary,
        [
            ("CreateKey", k, v, "Success"),
            ("CreateAlias", k, None, "Success"),
            ("Encrypt", k, Some(e.key_version_id.as_str()), "Success"),
            ("DisableKey", k, None, "Success"),
            ("Encrypt", k, None, "Rejected.Disabled"),
            ("Decrypt", None, None, "InvalidParameter"),
            (
                "DescribeKey",
                Some("alias/app"),
                None,
                "Rejected.Throttling"
            ),
        ]
    );
    for e in &ev {
        assert_eq!(e.time, T0);
        assert_eq!(e.request_id.len(), 36);
        assert_eq!(e.request_id, e.request_id.to_uppercase());
    }
    let mut ids: Vec<_> = ev.iter().map(|e| &e.request_id).collect();
    ids.dedup();
    assert_eq!(ids.len(), ev.len());

    // Nested operations are one event; an ARN names its key id.
    let arn = format!("acs:kms:cn-hangzhou:1234567890123456:key/{}", key.key_id);
    kms.enable_key(&arn).unwrap();
    kms.re_encrypt(&e.ciphertext_blob, &key.key_id, &ctx(), &ctx())
        .unwrap();
    let ev = audit.take();
    assert_eq!(ev.len(), 2);
    assert_eq!((ev[0].action, ev[0].key_id.as_deref()), ("EnableKey", k));
    assert_eq!(ev[1].action, "ReEncrypt");

    kms.clear_audit_sink();
    kms.describe_regions();
    assert!(audit.events().is_empty());
}

#[test]
fn wire_audit_events_carry_the_response_request_id() {
    let (kms, _) = kms();
    let audit = Arc::new(MemoryAudit::new());
    kms.set_audit_sink(audit.clone());
    let created = wire::dispatch(&kms, &params(&[("Action", "CreateKey")]));
    let b = body(&created);
    let key = b["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    let gen_params = [("Action", "GenerateDataKey"), ("KeyId", key.as_str())];
    let generated = wire::dispatch(&kms, &params(&gen_params));
    let missing = wire::dispatch(&kms, &params(&[("Action", "DescribeKey")]));
    let regions = wire::dispatch(
        &kms,
        &params(&[("Action", "DescribeRegions"), ("Format", "XML")]),
    );
    let ev = audit.take();
    assert_eq!(ev.len(), 4);
    for (e, r) in ev.iter().zip([&created, &generated, &missing]) {
        assert_eq!(
            e.request_id,
            body(r)["RequestId"].as_str().unwrap(),
            "{e:?}"
        );
    }
    assert!(
        regions
            .body
            .contains(&format!("<RequestId>{}</RequestId>", ev[3].request_id))
    );
    assert_eq!(
        (ev[1].action, ev[1].outcome),
        ("GenerateDataKey", "Success")
    );
    assert_eq!(
        ev[1].key_version_id.as_deref(),
        body(&generated)["KeyVersionId"].as_str()
    );
    assert_eq!(
        (ev[2].action, ev[2].outcome),
        ("DescribeKey", "MissingParameter")
    );
    // An unknown action is no operation: nothing to audit.
    wire::dispatch(&kms, &params(&[("Action", "Nope")]));
    assert!(audit.events().is_empty());
}

#[test]
fn json_lines_sink_writes_no_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let (kms, _) = kms();
    let sink = Arc::new(JsonLinesAudit::file(&path).unwrap());
    kms.set_audit_sink(sink.clone());
    let key = kms.create_key(&Default::default()).unwrap().key_id;
    let sealed = kms.encrypt(&key, b"TOPSECRETPLAINTEXT", &ctx()).unwrap();
    let dk = kms
        .generate_data_key(&key, &GenerateDataKeyRequest::default())
        .unwrap();
    let opened = kms.decrypt(&sealed.ciphertext_blob, &ctx()).unwrap();
    assert_eq!(opened.plaintext.expose_secret(), b"TOPSECRETPLAINTEXT");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[2]["Action"], "GenerateDataKey");
    assert_eq!(lines[3]["Outcome"], "Success");
    assert_eq!(lines[3]["KeyId"], key.as_str());
    for l in &lines {
        let fields: Vec<_> = l.as_object().unwrap().keys().cloned().collect();
        for f in &fields {
            assert!(
                [
                    "Time",
                    "Action",
                    "KeyId",
                    "KeyVersionId",
                    "Outcome",
                    "RequestId"
                ]
                .contains(&f.as_str()),
                "{f}"
            );
        }
    }
    assert!(!text.contains("TOPSECRET"));
    assert!(!text.contains(&sealed.ciphertext_blob.to_base64()));
    assert!(!text.contains(dk.plaintext.to_base64().as_str()));
    assert_eq!(sink.failures(), 0);
}

#[test]
fn counted_faults_and_audit_hold_across_threads() {
    let (kms, _) = kms();
    let key = kms.create_key(&Default::default()).unwrap().key_id;
    let audit = Arc::new(MemoryAudit::new());
    kms.set_audit_sink(audit.clone());
    kms.faults()
        .fail_next("Encrypt", 25, Fault::Throttling)
        .unwrap();
    let failures: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    (0..50)
                        .filter(|_| kms.encrypt(&key, b"x", &ctx()).is_err())
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(failures, 25);
    let ev = audit.take();
    assert_eq!(ev.len(), 200);
    assert_eq!(
        ev.iter()
            .filter(|e| e.outcome == "Rejected.Throttling")
            .count(),
        25
    );
    let ids: std::collections::HashSet<_> = ev.iter().map(|e| e.request_id.clone()).collect();
    assert_eq!(ids.len(), 200);
}

#[test]
fn fault_rules_can_be_replaced_and_cleared() {
    let (kms, _) = kms();
    let key = kms.create_key(&Default::default()).unwrap().key_id;
    kms.faults()
        .fail_next("Encrypt", 100, Fault::Throttling)
        .unwrap();
    kms.faults()
        .fail_next("Encrypt", 1, Fault::InternalFailure)
        .unwrap();
    assert_eq!(
        kms.encrypt(&key, b"x", &ctx()).unwrap_err().code(),
        "InternalFailure"
    );
    kms.encrypt(&key, b"x", &ctx()).unwrap();
    kms.faults()
        .fail_next("Encrypt", 100, Fault::Throttling)
        .unwrap();
    kms.faults().fail_next("*", 100, Fault::Throttling).unwrap();
    kms.faults().clear_action("Encrypt");
    // "*" still applies to Encrypt once its own rule is gone.
    assert!(kms.encrypt(&key, b"x", &ctx()).is_err());
    kms.faults().clear_action("*");
    kms.encrypt(&key, b"x", &ctx()).unwrap();
    kms.describe_key(&key).unwrap();
}
