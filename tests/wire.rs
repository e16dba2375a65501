//! `wire::dispatch` (SPEC sections 3, 4, 7 and 8): response shapes in JSON
//! and XML, error bodies, the shared parameter rules, every action, and a
//! property test that no parameter set makes it panic or answer 500.

mod support;

use localkms::wire::{self, Response};
use localkms::{ImportParameters, Kms, ManualClock, WrappingAlgorithm};
use proptest::prelude::*;
use serde_json::Value;

const T0: i64 = 1_800_000_000;

fn kms() -> (Kms, ManualClock) {
    let clock = ManualClock::new(T0);
    let kms = Kms::builder()
        .in_memory()
        .clock(clock.clone())
        .build()
        .expect("kms");
    (kms, clock)
}

fn owned(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn raw(kms: &Kms, p: &[(&str, &str)]) -> Response {
    wire::dispatch(kms, &owned(p))
}

/// Calls with JSON and returns the status and parsed body.
fn call(kms: &Kms, p: &[(&str, &str)]) -> (u16, Value) {
    let r = raw(kms, p);
    assert!(r.content_type.starts_with("application/json"), "{r:?}");
    let v: Value = serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body));
    (r.status, v)
}

/// Calls, expects success, returns the body.
fn ok(kms: &Kms, p: &[(&str, &str)]) -> Value {
    let (status, v) = call(kms, p);
    assert_eq!(status, 200, "{p:?}: {v}");
    assert_is_request_id(&v["RequestId"]);
    v
}

/// Calls, expects the error `code`, checks the error body, returns the message.
fn err(kms: &Kms, p: &[(&str, &str)], code: &str, status: u16) -> String {
    let (got, v) = call(kms, p);
    assert_eq!(
        (got, v["Code"].as_str()),
        (status, Some(code)),
        "{p:?}: {v}"
    );
    let members: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        members,
        ["Code", "HostId", "HttpStatus", "Message", "RequestId"]
    );
    assert_eq!(v["HttpStatus"], Value::from(status));
    assert_is_request_id(&v["RequestId"]);
    v["Message"].as_str().expect("message").to_owned()
}

fn assert_is_request_id(v: &Value) {
    let s = v.as_str().expect("RequestId is a string");
    assert_eq!(s.len(), 36, "{s}");
    assert_eq!(s.matches('-').count(), 4, "{s}");
    assert_eq!(&s[14..15], "4", "a version 4 UUID: {s}");
    assert!(
        s.bytes()
            .all(|b| b == b'-' || b.is_ascii_digit() || b.is_ascii_uppercase()),
        "{s}"
    );
}

fn create(kms: &Kms) -> String {
    ok(kms, &[("Action", "CreateKey")])["KeyMetadata"]["KeyId"]
        .as_str()
        .expect("KeyId")
        .to_owned()
}

const METADATA_FIELDS: [&str; 19] = [
    "Arn",
    "AutomaticRotation",
    "CreationDate",
    "Creator",
    "DeleteDate",
    "DeletionProtection",
    "DeletionProtectionDescription",
    "Description",
    "KeyId",
    "KeySpec",
    "KeyState",
    "KeyUsage",
    "LastRotationDate",
    "MaterialExpireTime",
    "NextRotationDate",
    "Origin",
    "PrimaryKeyVersion",
    "ProtectionLevel",
    "RotationInterval",
];

#[test]
fn create_and_describe_key_metadata_is_all_strings() {
    let (kms, _) = kms();
    let v = ok(
        &kms,
        &[
            ("Action", "CreateKey"),
            ("Description", "orders"),
            ("EnableAutomaticRotation", "True"),
            ("RotationInterval", "7d"),
            ("ProtectionLevel", "HSM"),
        ],
    );
    let meta = v["KeyMetadata"].as_object().expect("KeyMetadata");
    let mut names: Vec<&str> = meta.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, METADATA_FIELDS);
    assert!(meta.values().all(Value::is_string), "{meta:?}");
    assert_eq!(meta["Description"], "orders");
    assert_eq!(meta["AutomaticRotation"], "Enabled");
    assert_eq!(meta["RotationInterval"], "604800s");
    assert_eq!(meta["ProtectionLevel"], "HSM");
    assert_eq!(meta["KeyState"], "Enabled");
    let id = meta["KeyId"].as_str().expect("id");
    let d = ok(&kms, &[("Action", "DescribeKey"), ("KeyId", id)]);
    assert_eq!(d["KeyMetadata"], v["KeyMetadata"]);
    // By ARN too.
    let arn = meta["Arn"].as_str().expect("arn");
    let d = ok(&kms, &[("Action", "DescribeKey"), ("KeyId", arn)]);
    assert_eq!(d["KeyMetadata"]["KeyId"], id);
}

#[test]
fn request_ids_are_fresh() {
    let (kms, _) = kms();
    let a = ok(&kms, &[("Action", "ListKeys")]);
    let b = ok(&kms, &[("Action", "ListKeys")]);
    assert_ne!(a["RequestId"], b["RequestId"]);
}

#[test]
fn list_keys_paging_numbers_are_integers() {
    let (kms, _) = kms();
    let ids: Vec<String> = (0..3).map(|_| create(&kms)).collect();
    let v = ok(
        &kms,
        &[
            ("Action", "ListKeys"),
            ("PageNumber", "2"),
            ("PageSize", "2"),
        ],
    );
    assert_eq!(v["TotalCount"], 3);
    assert_eq!(v["PageNumber"], 2);
    assert_eq!(v["PageSize"], 2);
    let keys = v["Keys"]["Key"].as_array().expect("Keys.Key[]");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["KeyId"], ids[2].as_str());
    assert!(keys[0]["KeyArn"].as_str().expect("arn").ends_with(&ids[2]));
    // Defaults, and an empty page past the end.
    let v = ok(
        &kms,
        &[("Action", "ListKeys"), ("PageNumber", ""), ("PageSize", "")],
    );
    assert_eq!(
        (v["PageNumber"].clone(), v["PageSize"].clone()),
        (1.into(), 10.into())
    );
    let v = ok(&kms, &[("Action", "ListKeys"), ("PageNumber", "9")]);
    assert_eq!(v["Keys"]["Key"], Value::Array(vec![]));
    for (n, s, param) in [
        ("0", "10", "PageNumber"),
        ("-1", "10", "PageNumber"),
        ("1", "101", "PageSize"),
        ("1", "1.5", "PageSize"),
    ] {
        let m = err(
            &kms,
            &[("Action", "ListKeys"), ("PageNumber", n), ("PageSize", s)],
            "InvalidParameter",
            400,
        );
        assert!(m.contains(param), "{m}");
    }
}

#[test]
fn xml_responses() {
    let (kms, _) = kms();
    let id = create(&kms);
    for format in ["XML", "xml", "Xml"] {
        let r = raw(&kms, &[("Action", "ListKeys"), ("Format", format)]);
        assert_eq!(r.status, 200);
        assert!(r.content_type.contains("xml"));
        assert!(
            r.body.starts_with(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListKeysResponse><Keys><Key>"
            ),
            "{}",
            r.body
        );
        assert!(r.body.contains(&format!("<KeyId>{id}</KeyId>")));
        assert!(r.body.contains("<TotalCount>1</TotalCount>"));
        assert!(r.body.contains("<RequestId>"));
        assert!(r.body.ends_with("</ListKeysResponse>"));
    }
    let r = raw(
        &kms,
        &[
            ("Action", "CreateKey"),
            ("Format", "XML"),
            ("Description", "a<b&c>\"'"),
        ],
    );
    assert!(
        r.body.contains("<CreateKeyResponse><KeyMetadata>"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("<Description>a&lt;b&amp;c&gt;&quot;&apos;</Description>")
    );
    let r = raw(&kms, &[("Action", "DescribeKey"), ("Format", "XML")]);
    assert_eq!(r.status, 400);
    assert!(
        r.body
            .starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error>")
    );
    for child in [
        "<Code>MissingParameter</Code>",
        "<HttpStatus>400</HttpStatus>",
        "<HostId>",
        "<RequestId>",
        "<Message>",
    ] {
        assert!(r.body.contains(child), "{child}: {}", r.body);
    }
    // JSON is the default for anything else.
    let r = raw(&kms, &[("Action", "ListKeys"), ("Format", "json")]);
    assert!(r.content_type.starts_with("application/json"));
}

#[test]
fn action_errors() {
    let (kms, _) = kms();
    let m = err(&kms, &[], "MissingParameter", 400);
    assert!(m.contains("Action"), "{m}");
    err(&kms, &[("Action", "")], "MissingParameter", 400);
    let m = err(
        &kms,
        &[("Action", "NoSuchAction")],
        "InvalidAction.NotFound",
        404,
    );
    assert!(m.contains("NoSuchAction"), "{m}");
    // Action names are case-sensitive.
    err(
        &kms,
        &[("Action", "listkeys")],
        "InvalidAction.NotFound",
        404,
    );
    let m = err(
        &kms,
        &[("Action", "ListKeys"), ("PageSize", "5"), ("PageSize", "6")],
        "InvalidParameter",
        400,
    );
    assert!(m.contains("PageSize"), "{m}");
}

/// Every required parameter of every action: absent and empty are both
/// `MissingParameter` naming it.
#[test]
fn required_parameters_are_named() {
    let (kms, _) = kms();
    let id = create(&kms);
    let table: &[(&str, &[(&str, &str)])] = &[
        ("DescribeKey", &[("KeyId", &id)]),
        ("EnableKey", &[("KeyId", &id)]),
        ("DisableKey", &[("KeyId", &id)]),
        ("CancelKeyDeletion", &[("KeyId", &id)]),
        (
            "ScheduleKeyDeletion",
            &[("KeyId", &id), ("PendingWindowInDays", "7")],
        ),
        (
            "GetParametersForImport",
            &[
                ("KeyId", &id),
                ("WrappingAlgorithm", "RSAES_OAEP_SHA_256"),
                ("WrappingKeySpec", "RSA_2048"),
            ],
        ),
        (
            "ImportKeyMaterial",
            &[
                ("KeyId", &id),
                ("EncryptedKeyMaterial", "AAAA"),
                ("ImportToken", "AAAA"),
            ],
        ),
        ("DeleteKeyMaterial", &[("KeyId", &id)]),
        ("Encrypt", &[("KeyId", &id), ("Plaintext", "x")]),
        ("GenerateDataKey", &[("KeyId", &id)]),
        ("Decrypt", &[("CiphertextBlob", "AAAA")]),
        ("GenerateDataKeyWithoutPlaintext", &[("KeyId", &id)]),
        (
            "ReEncrypt",
            &[("CiphertextBlob", "AAAA"), ("DestinationKeyId", &id)],
        ),
        (
            "UpdateKeyDescription",
            &[("KeyId", &id), ("Description", "d")],
        ),
        (
            "UpdateRotationPolicy",
            &[("KeyId", &id), ("EnableAutomaticRotation", "true")],
        ),
        ("CreateKeyVersion", &[("KeyId", &id)]),
        (
            "DescribeKeyVersion",
            &[("KeyId", &id), ("KeyVersionId", "v")],
        ),
        ("ListKeyVersions", &[("KeyId", &id)]),
        ("CreateAlias", &[("AliasName", "alias/a"), ("KeyId", &id)]),
        ("UpdateAlias", &[("AliasName", "alias/a"), ("KeyId", &id)]),
        ("DeleteAlias", &[("AliasName", "alias/a")]),
        ("ListAliasesByKeyId", &[("KeyId", &id)]),
        ("TagResource", &[("KeyId", &id), ("Tags", "[]")]),
        ("UntagResource", &[("KeyId", &id), ("TagKeys", "[]")]),
        ("ListResourceTags", &[("KeyId", &id)]),
    ];
    for (action, required) in table {
        for skip in 0..required.len() {
            for empty in [false, true] {
                let mut p = vec![("Action", *action)];
                for (i, (k, v)) in required.iter().enumerate() {
                    if i != skip {
                        p.push((k, v));
                    } else if empty {
                        p.push((k, ""));
                    }
                }
                let m = err(&kms, &p, "MissingParameter", 400);
                assert!(m.contains(required[skip].0), "{action}: {m}");
            }
        }
    }
}

#[test]
fn parameter_rules() {
    let (kms, _) = kms();
    // Empty optionals are absent.
    let v = ok(
        &kms,
        &[
            ("Action", "CreateKey"),
            ("Description", ""),
            ("Origin", ""),
            ("KeyUsage", ""),
            ("KeySpec", ""),
            ("ProtectionLevel", ""),
            ("EnableAutomaticRotation", ""),
            ("RotationInterval", ""),
        ],
    );
    assert_eq!(v["KeyMetadata"]["Origin"], "Aliyun_KMS");
    // Enums are case-sensitive and name their parameter.
    for (param, value) in [
        ("Origin", "external"),
        ("KeyUsage", "encrypt/decrypt"),
        ("ProtectionLevel", "software"),
        ("KeySpec", "aliyun_aes_256"),
    ] {
        let m = err(
            &kms,
            &[("Action", "CreateKey"), (param, value)],
            "InvalidParameter",
            400,
        );
        assert!(m.contains(param), "{m}");
    }
    // Booleans in any case; nothing else.
    for b in ["true", "TRUE", "False", "false"] {
        ok(
            &kms,
            &[("Action", "CreateKey"), ("EnableAutomaticRotation", b)],
        );
    }
    for b in ["1", "yes", "t", " true"] {
        let m = err(
            &kms,
            &[("Action", "CreateKey"), ("EnableAutomaticRotation", b)],
            "InvalidParameter",
            400,
        );
        assert!(m.contains("EnableAutomaticRotation"), "{m}");
    }
    // Rotation intervals.
    for bad in ["6d", "731d", "7", "7w", "-7d"] {
        let m = err(
            &kms,
            &[
                ("Action", "CreateKey"),
                ("EnableAutomaticRotation", "true"),
                ("RotationInterval", bad),
            ],
            "InvalidParameter",
            400,
        );
        assert!(m.contains("RotationInterval"), "{bad}: {m}");
    }
    // Integers are plain decimal.
    let id = create(&kms);
    for bad in [
        "7.0",
        "+7",
        "-7",
        " 7",
        "0x7",
        "99999999999999999999",
        "6",
        "31",
    ] {
        let m = err(
            &kms,
            &[
                ("Action", "ScheduleKeyDeletion"),
                ("KeyId", &id),
                ("PendingWindowInDays", bad),
            ],
            "InvalidParameter",
            400,
        );
        assert!(m.contains("PendingWindowInDays"), "{bad}: {m}");
    }
    // Unknown extra parameters (the SDKs' signature parameters) are ignored.
    ok(
        &kms,
        &[
            ("Action", "DescribeKey"),
            ("KeyId", &id),
            ("Version", "2016-01-20"),
            ("RegionId", "cn-hangzhou"),
            ("SignatureType", ""),
        ],
    );
}

#[test]
fn lifecycle_through_the_wire() {
    let (kms, clock) = kms();
    let id = create(&kms);
    let state = |kms: &Kms| {
        ok(kms, &[("Action", "DescribeKey"), ("KeyId", &id)])["KeyMetadata"]["KeyState"]
            .as_str()
            .expect("state")
            .to_owned()
    };
    let v = ok(&kms, &[("Action", "DisableKey"), ("KeyId", &id)]);
    assert_eq!(v.as_object().expect("obj").len(), 1, "only RequestId: {v}");
    assert_eq!(state(&kms), "Disabled");
    ok(&kms, &[("Action", "EnableKey"), ("KeyId", &id)]);
    assert_eq!(state(&kms), "Enabled");
    ok(
        &kms,
        &[
            ("Action", "ScheduleKeyDeletion"),
            ("KeyId", &id),
            ("PendingWindowInDays", "7"),
        ],
    );
    assert_eq!(state(&kms), "PendingDeletion");
    err(
        &kms,
        &[("Action", "EnableKey"), ("KeyId", &id)],
        "Rejected.StateModifiedFailed",
        409,
    );
    ok(&kms, &[("Action", "CancelKeyDeletion"), ("KeyId", &id)]);
    err(
        &kms,
        &[("Action", "CancelKeyDeletion"), ("KeyId", &id)],
        "Rejected.StateModifiedFailed",
        409,
    );
    ok(
        &kms,
        &[
            ("Action", "ScheduleKeyDeletion"),
            ("KeyId", &id),
            ("PendingWindowInDays", "7"),
        ],
    );
    clock.advance(7 * 86_400);
    err(
        &kms,
        &[("Action", "DescribeKey"), ("KeyId", &id)],
        "Forbidden.KeyNotFound",
        404,
    );
    err(
        &kms,
        &[("Action", "DescribeKey"), ("KeyId", "not-a-key")],
        "Forbidden.KeyNotFound",
        404,
    );
    err(
        &kms,
        &[("Action", "DescribeKey"), ("KeyId", "alias/none")],
        "Forbidden.AliasNotFound",
        404,
    );
    err(
        &kms,
        &[("Action", "EnableKey"), ("KeyId", "alias/none")],
        "Unsupported.Alias",
        400,
    );
}

#[test]
fn byok_through_the_wire() {
    let (kms, _) = kms();
    let v = ok(&kms, &[("Action", "CreateKey"), ("Origin", "EXTERNAL")]);
    let id = v["KeyMetadata"]["KeyId"].as_str().expect("id").to_owned();
    assert_eq!(v["KeyMetadata"]["KeyState"], "PendingImport");
    assert_eq!(v["KeyMetadata"]["PrimaryKeyVersion"], "");
    let v = ok(
        &kms,
        &[
            ("Action", "GetParametersForImport"),
            ("KeyId", &id),
            ("WrappingAlgorithm", "RSAES_OAEP_SHA_256"),
            ("WrappingKeySpec", "RSA_2048"),
        ],
    );
    let s = |name: &str| v[name].as_str().expect(name).to_owned();
    assert_eq!(s("KeyId"), id);
    assert_eq!(
        s("TokenExpireTime"),
        localkms::format_timestamp(T0 + 86_400)
    );
    let params = ImportParameters {
        key_id: s("KeyId"),
        import_token: s("ImportToken"),
        public_key: s("PublicKey"),
        token_expire_time: s("TokenExpireTime"),
    };
    let material = [7u8; 32];
    let wrapped = support::wrap(&params, WrappingAlgorithm::RsaesOaepSha256, &material);
    let import = |wrapped: &str, expire: &str| {
        raw(
            &kms,
            &[
                ("Action", "ImportKeyMaterial"),
                ("KeyId", &id),
                ("EncryptedKeyMaterial", wrapped),
                ("ImportToken", &params.import_token),
                ("KeyMaterialExpireUnix", expire),
            ],
        )
    };
    assert_eq!(import(&wrapped, "-1").status, 400);
    assert_eq!(import(&wrapped, "1.5").status, 400);
    let past = (T0 - 1).to_string();
    let r = import(&wrapped, &past);
    assert!(r.body.contains("KeyMaterialExpireUnix"), "{}", r.body);
    let other = support::wrap(&params, WrappingAlgorithm::RsaesOaepSha256, &[8u8; 31]);
    let r = import(&other, "");
    assert!(
        r.body.contains(r#""Code":"InvalidKeyMaterial""#),
        "{}",
        r.body
    );
    assert_eq!(import(&wrapped, "0").status, 200);
    let meta = ok(&kms, &[("Action", "DescribeKey"), ("KeyId", &id)]);
    assert_eq!(meta["KeyMetadata"]["KeyState"], "Enabled");
    assert_eq!(meta["KeyMetadata"]["MaterialExpireTime"], "");
    ok(&kms, &[("Action", "DeleteKeyMaterial"), ("KeyId", &id)]);
    let meta = ok(&kms, &[("Action", "DescribeKey"), ("KeyId", &id)]);
    assert_eq!(meta["KeyMetadata"]["KeyState"], "PendingImport");
    // Errors of the import flow.
    for (alg, spec, param) in [
        ("RSAES_OAEP_SHA_512", "RSA_2048", "WrappingAlgorithm"),
        ("rsaes_oaep_sha_256", "RSA_2048", "WrappingAlgorithm"),
        ("RSAES_OAEP_SHA_256", "RSA_4096", "WrappingKeySpec"),
    ] {
        let m = err(
            &kms,
            &[
                ("Action", "GetParametersForImport"),
                ("KeyId", &id),
                ("WrappingAlgorithm", alg),
                ("WrappingKeySpec", spec),
            ],
            "InvalidParameter",
            400,
        );
        assert!(m.contains(param), "{m}");
    }
    let aliyun = create(&kms);
    err(
        &kms,
        &[("Action", "DeleteKeyMaterial"), ("KeyId", &aliyun)],
        "Unsupported.Origin",
        400,
    );
    err(
        &kms,
        &[
            ("Action", "ImportKeyMaterial"),
            ("KeyId", &id),
            ("EncryptedKeyMaterial", &wrapped),
            ("ImportToken", "garbage"),
        ],
        "InvalidImportToken",
        400,
    );
}

#[test]
fn aliases_tags_and_regions_through_the_wire() {
    let (kms, _) = kms();
    let a = create(&kms);
    let b = create(&kms);
    ok(
        &kms,
        &[
            ("Action", "CreateAlias"),
            ("AliasName", "alias/app"),
            ("KeyId", &a),
        ],
    );
    err(
        &kms,
        &[
            ("Action", "CreateAlias"),
            ("AliasName", "alias/app"),
            ("KeyId", &b),
        ],
        "AliasAlreadyExists",
        400,
    );
    let m = err(
        &kms,
        &[
            ("Action", "CreateAlias"),
            ("AliasName", "app"),
            ("KeyId", &b),
        ],
        "InvalidParameter",
        400,
    );
    assert!(m.contains("AliasName"), "{m}");
    let d = ok(&kms, &[("Action", "DescribeKey"), ("KeyId", "alias/app")]);
    assert_eq!(d["KeyMetadata"]["KeyId"], a.as_str());
    ok(
        &kms,
        &[
            ("Action", "UpdateAlias"),
            ("AliasName", "alias/app"),
            ("KeyId", &b),
        ],
    );
    let v = ok(&kms, &[("Action", "ListAliases")]);
    assert_eq!(v["TotalCount"], 1);
    let alias = &v["Aliases"]["Alias"][0];
    assert_eq!(alias["AliasName"], "alias/app");
    assert_eq!(alias["KeyId"], b.as_str());
    assert!(
        alias["AliasArn"]
            .as_str()
            .expect("arn")
            .ends_with(":alias/app")
    );
    let v = ok(&kms, &[("Action", "ListAliasesByKeyId"), ("KeyId", &a)]);
    assert_eq!(
        (v["TotalCount"].clone(), v["Aliases"]["Alias"].clone()),
        (0.into(), Value::Array(vec![]))
    );
    let v = ok(
        &kms,
        &[
            ("Action", "ListAliasesByKeyId"),
            ("KeyId", &b),
            ("PageSize", "1"),
        ],
    );
    assert_eq!(v["Aliases"]["Alias"][0]["AliasName"], "alias/app");
    assert_eq!(v["PageSize"], 1);
    let r = raw(&kms, &[("Action", "ListAliases"), ("Format", "XML")]);
    assert!(r.body.contains("<Aliases><Alias><AliasArn>"), "{}", r.body);
    ok(
        &kms,
        &[("Action", "DeleteAlias"), ("AliasName", "alias/app")],
    );
    err(
        &kms,
        &[("Action", "DeleteAlias"), ("AliasName", "alias/app")],
        "Forbidden.AliasNotFound",
        404,
    );

    ok(
        &kms,
        &[
            ("Action", "TagResource"),
            ("KeyId", &a),
            (
                "Tags",
                r#"[{"TagKey":"Project","TagValue":"A B"},{"TagKey":"empty"}]"#,
            ),
        ],
    );
    let v = ok(&kms, &[("Action", "ListResourceTags"), ("KeyId", &a)]);
    let tags = v["Tags"]["Tag"].as_array().expect("Tags.Tag[]");
    assert_eq!(tags.len(), 2);
    assert!(
        tags.contains(&serde_json::json!({"KeyId": a, "TagKey": "Project", "TagValue": "A B"}))
    );
    assert!(tags.contains(&serde_json::json!({"KeyId": a, "TagKey": "empty", "TagValue": ""})));
    ok(
        &kms,
        &[
            ("Action", "UntagResource"),
            ("KeyId", &a),
            ("TagKeys", r#"["Project","absent"]"#),
        ],
    );
    let v = ok(&kms, &[("Action", "ListResourceTags"), ("KeyId", &a)]);
    assert_eq!(v["Tags"]["Tag"].as_array().expect("tags").len(), 1);
    for (param, value) in [("Tags", "not json"), ("Tags", r#"[{"TagKey":"acs:x"}]"#)] {
        let m = err(
            &kms,
            &[("Action", "TagResource"), ("KeyId", &a), (param, value)],
            "InvalidParameter",
            400,
        );
        assert!(m.contains(param), "{m}");
    }
    err(
        &kms,
        &[("Action", "TagResource"), ("KeyId", &a), ("Tags", "")],
        "MissingParameter",
        400,
    );
    let many: Vec<String> = (0..11).map(|i| format!(r#"{{"TagKey":"k{i}"}}"#)).collect();
    let many = format!("[{}]", many.join(","));
    err(
        &kms,
        &[("Action", "TagResource"), ("KeyId", &b), ("Tags", &many)],
        "Rejected.LimitExceeded",
        400,
    );
    // CreateKey with Tags.
    let v = ok(
        &kms,
        &[
            ("Action", "CreateKey"),
            ("Tags", r#"[{"TagKey":"t","TagValue":"v"}]"#),
        ],
    );
    let c = v["KeyMetadata"]["KeyId"].as_str().expect("id");
    let v = ok(&kms, &[("Action", "ListResourceTags"), ("KeyId", c)]);
    assert_eq!(v["Tags"]["Tag"][0]["TagValue"], "v");

    let v = ok(&kms, &[("Action", "DescribeRegions")]);
    assert_eq!(
        v["Regions"],
        serde_json::json!({"Region": [{"RegionId": "cn-hangzhou"}]})
    );
    let r = raw(&kms, &[("Action", "DescribeRegions"), ("Format", "XML")]);
    assert!(
        r.body
            .contains("<Regions><Region><RegionId>cn-hangzhou</RegionId></Region></Regions>"),
        "{}",
        r.body
    );
}

const TRICKY: &str = "hello world+/=*~ é & 漢字 \" ' < > \\ \n\t%00";

#[test]
fn encrypt_decrypt_and_data_keys_through_the_wire() {
    let (kms, _) = kms();
    let id = create(&kms);
    ok(
        &kms,
        &[
            ("Action", "CreateAlias"),
            ("AliasName", "alias/app"),
            ("KeyId", &id),
        ],
    );
    let e = ok(
        &kms,
        &[
            ("Action", "Encrypt"),
            ("KeyId", "alias/app"),
            ("Plaintext", TRICKY),
            ("EncryptionContext", r#"{"tenant":"t 1","a":"b"}"#),
        ],
    );
    assert_eq!(e["KeyId"], id.as_str());
    let version = e["KeyVersionId"].as_str().expect("version").to_owned();
    let blob = e["CiphertextBlob"].as_str().expect("blob").to_owned();
    // Context key order does not matter.
    let d = ok(
        &kms,
        &[
            ("Action", "Decrypt"),
            ("CiphertextBlob", &blob),
            ("EncryptionContext", r#"{"a":"b","tenant":"t 1"}"#),
        ],
    );
    assert_eq!(d["Plaintext"], TRICKY);
    assert_eq!(
        (d["KeyId"].as_str(), d["KeyVersionId"].as_str()),
        (Some(id.as_str()), Some(version.as_str()))
    );
    // XML carries the same text.
    let r = raw(
        &kms,
        &[
            ("Action", "Decrypt"),
            ("Format", "XML"),
            ("CiphertextBlob", &blob),
            ("EncryptionContext", r#"{"a":"b","tenant":"t 1"}"#),
        ],
    );
    assert!(
        r.body
            .contains("<Plaintext>hello world+/=*~ é &amp; 漢字 &quot; &apos; &lt; &gt;"),
        "{}",
        r.body
    );
    // Wrong context, no context, and a tampered blob: one uniform error.
    let m1 = err(
        &kms,
        &[
            ("Action", "Decrypt"),
            ("CiphertextBlob", &blob),
            ("EncryptionContext", r#"{"tenant":"t 2","a":"b"}"#),
        ],
        "InvalidParameter",
        400,
    );
    let m2 = err(
        &kms,
        &[("Action", "Decrypt"), ("CiphertextBlob", &blob)],
        "InvalidParameter",
        400,
    );
    let m3 = err(
        &kms,
        &[
            ("Action", "Decrypt"),
            ("CiphertextBlob", "AbC+/dEf=="),
            ("EncryptionContext", "{}"),
        ],
        "InvalidParameter",
        400,
    );
    assert_eq!((&m1, &m2), (&m3, &m3));
    assert_eq!(m1, localkms::DECRYPTION_FAILED_MESSAGE);
    // An empty context is no context.
    let e = ok(
        &kms,
        &[
            ("Action", "Encrypt"),
            ("KeyId", &id),
            ("Plaintext", "x"),
            ("EncryptionContext", "{}"),
        ],
    );
    let blob2 = e["CiphertextBlob"].as_str().expect("blob");
    let d = ok(
        &kms,
        &[
            ("Action", "Decrypt"),
            ("CiphertextBlob", blob2),
            ("EncryptionContext", ""),
        ],
    );
    assert_eq!(d["Plaintext"], "x");
    for bad in ["[]", "{\"a\":1}", "not json", "{\"a\":\"b\",\"a\":\"c\"}"] {
        let m = err(
            &kms,
            &[
                ("Action", "Encrypt"),
                ("KeyId", &id),
                ("Plaintext", "x"),
                ("EncryptionContext", bad),
            ],
            "InvalidParameter",
            400,
        );
        assert!(m.contains("EncryptionContext"), "{bad}: {m}");
    }
    let big = "x".repeat(6145);
    let m = err(
        &kms,
        &[("Action", "Encrypt"), ("KeyId", &id), ("Plaintext", &big)],
        "InvalidParameter",
        400,
    );
    assert!(m.contains("Plaintext"), "{m}");

    // Data keys.
    for (extra, len) in [
        (&[][..], 32),
        (&[("KeySpec", "AES_128")][..], 16),
        (&[("NumberOfBytes", "1")][..], 1),
        (
            &[("NumberOfBytes", "1024"), ("KeySpec", "AES_128")][..],
            1024,
        ),
    ] {
        let mut p = vec![
            ("Action", "GenerateDataKey"),
            ("KeyId", id.as_str()),
            ("EncryptionContext", r#"{"k":"v"}"#),
        ];
        p.extend_from_slice(extra);
        let g = ok(&kms, &p);
        let plain = g["Plaintext"].as_str().expect("Plaintext");
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(plain)
            .expect("base64");
        assert_eq!(bytes.len(), len);
        let d = ok(
            &kms,
            &[
                ("Action", "Decrypt"),
                (
                    "CiphertextBlob",
                    g["CiphertextBlob"].as_str().expect("blob"),
                ),
                ("EncryptionContext", r#"{"k":"v"}"#),
            ],
        );
        assert_eq!(d["Plaintext"], plain);
    }
    for (param, value) in [
        ("NumberOfBytes", "0"),
        ("NumberOfBytes", "1025"),
        ("NumberOfBytes", "-1"),
        ("NumberOfBytes", "99999999999"),
        ("KeySpec", "aes_256"),
        ("KeySpec", "Aliyun_AES_256"),
    ] {
        let m = err(
            &kms,
            &[
                ("Action", "GenerateDataKey"),
                ("KeyId", &id),
                (param, value),
            ],
            "InvalidParameter",
            400,
        );
        assert!(m.contains(param), "{param}={value}: {m}");
    }

    // State rejections.
    ok(&kms, &[("Action", "DisableKey"), ("KeyId", &id)]);
    err(
        &kms,
        &[("Action", "Encrypt"), ("KeyId", &id), ("Plaintext", "x")],
        "Rejected.Disabled",
        409,
    );
    err(
        &kms,
        &[
            ("Action", "Decrypt"),
            ("CiphertextBlob", &blob),
            ("EncryptionContext", r#"{"a":"b","tenant":"t 1"}"#),
        ],
        "Rejected.Disabled",
        409,
    );
    err(
        &kms,
        &[("Action", "GenerateDataKey"), ("KeyId", "alias/app")],
        "Rejected.Disabled",
        409,
    );
    err(
        &kms,
        &[
            ("Action", "Encrypt"),
            ("KeyId", "alias/none"),
            ("Plaintext", "x"),
        ],
        "Forbidden.AliasNotFound",
        404,
    );
}

#[test]
fn versions_rotation_and_re_encrypt_through_the_wire() {
    let (kms, clock) = kms();
    let id = create(&kms);
    ok(
        &kms,
        &[
            ("Action", "UpdateKeyDescription"),
            ("KeyId", &id),
            ("Description", "new words"),
        ],
    );
    let d = ok(&kms, &[("Action", "DescribeKey"), ("KeyId", &id)]);
    assert_eq!(d["KeyMetadata"]["Description"], "new words");
    let first = d["KeyMetadata"]["PrimaryKeyVersion"]
        .as_str()
        .expect("v1")
        .to_owned();
    let blob = ok(
        &kms,
        &[("Action", "Encrypt"), ("KeyId", &id), ("Plaintext", "old")],
    )["CiphertextBlob"]
        .as_str()
        .expect("blob")
        .to_owned();

    clock.advance(60);
    let v = ok(&kms, &[("Action", "CreateKeyVersion"), ("KeyId", &id)]);
    let version = v["KeyVersion"].as_object().expect("KeyVersion");
    assert_eq!(version["KeyId"], id.as_str());
    assert_eq!(version["CreationDate"], localkms::format_timestamp(T0 + 60));
    let second = version["KeyVersionId"].as_str().expect("v2").to_owned();
    let d = ok(
        &kms,
        &[
            ("Action", "DescribeKeyVersion"),
            ("KeyId", &id),
            ("KeyVersionId", &second),
        ],
    );
    assert_eq!(d["KeyVersion"]["KeyVersionId"], second.as_str());
    err(
        &kms,
        &[
            ("Action", "DescribeKeyVersion"),
            ("KeyId", &id),
            ("KeyVersionId", "nope"),
        ],
        "Forbidden.KeyVersionNotFound",
        404,
    );
    let l = ok(
        &kms,
        &[
            ("Action", "ListKeyVersions"),
            ("KeyId", &id),
            ("PageSize", "1"),
            ("PageNumber", "2"),
        ],
    );
    assert_eq!(
        (
            l["TotalCount"].clone(),
            l["PageNumber"].clone(),
            l["PageSize"].clone()
        ),
        (2.into(), 2.into(), 1.into())
    );
    assert_eq!(
        l["KeyVersions"]["KeyVersion"][0]["KeyVersionId"],
        second.as_str()
    );
    let r = raw(
        &kms,
        &[
            ("Action", "ListKeyVersions"),
            ("KeyId", &id),
            ("Format", "XML"),
        ],
    );
    assert!(
        r.body.contains("<KeyVersions><KeyVersion><CreationDate>"),
        "{}",
        r.body
    );
    assert!(r.body.contains(&first));

    // ReEncrypt moves the old blob to the new primary and another context.
    let other = create(&kms);
    let re = ok(
        &kms,
        &[
            ("Action", "ReEncrypt"),
            ("CiphertextBlob", &blob),
            ("DestinationKeyId", &other),
            ("DestinationEncryptionContext", r#"{"to":"other"}"#),
            ("SourceEncryptionContext", ""),
        ],
    );
    assert_eq!(re["KeyId"], other.as_str());
    let moved = re["CiphertextBlob"].as_str().expect("blob");
    let d = ok(
        &kms,
        &[
            ("Action", "Decrypt"),
            ("CiphertextBlob", moved),
            ("EncryptionContext", r#"{"to":"other"}"#),
        ],
    );
    assert_eq!(d["Plaintext"], "old");
    let m = err(
        &kms,
        &[
            ("Action", "ReEncrypt"),
            ("CiphertextBlob", &blob),
            ("DestinationKeyId", &other),
            ("SourceEncryptionContext", r#"{"x":"y"}"#),
        ],
        "InvalidParameter",
        400,
    );
    assert_eq!(m, localkms::DECRYPTION_FAILED_MESSAGE);

    // A data key without plaintext, re-encrypted, still decrypts to base64.
    let g = ok(
        &kms,
        &[
            ("Action", "GenerateDataKeyWithoutPlaintext"),
            ("KeyId", &id),
            ("NumberOfBytes", "16"),
        ],
    );
    assert!(g.get("Plaintext").is_none(), "{g}");
    assert_eq!(g["KeyVersionId"], second.as_str());
    let re = ok(
        &kms,
        &[
            ("Action", "ReEncrypt"),
            ("CiphertextBlob", g["CiphertextBlob"].as_str().expect("b")),
            ("DestinationKeyId", &id),
        ],
    );
    let d = ok(
        &kms,
        &[
            ("Action", "Decrypt"),
            ("CiphertextBlob", re["CiphertextBlob"].as_str().expect("b")),
        ],
    );
    assert_eq!(
        d["Plaintext"].as_str().expect("p").len(),
        24,
        "16 bytes as base64: {d}"
    );

    // Rotation policy.
    ok(
        &kms,
        &[
            ("Action", "UpdateRotationPolicy"),
            ("KeyId", &id),
            ("EnableAutomaticRotation", "TRUE"),
            ("RotationInterval", "30d"),
        ],
    );
    let d = ok(&kms, &[("Action", "DescribeKey"), ("KeyId", &id)]);
    assert_eq!(d["KeyMetadata"]["AutomaticRotation"], "Enabled");
    assert_eq!(d["KeyMetadata"]["RotationInterval"], "2592000s");
    ok(
        &kms,
        &[
            ("Action", "UpdateRotationPolicy"),
            ("KeyId", &id),
            ("EnableAutomaticRotation", "false"),
        ],
    );
    let d = ok(&kms, &[("Action", "DescribeKey"), ("KeyId", &id)]);
    assert_eq!(d["KeyMetadata"]["AutomaticRotation"], "Disabled");
    for (value, interval, param) in [
        ("yes", "", "EnableAutomaticRotation"),
        ("true", "1d", "RotationInterval"),
        ("true", "30", "RotationInterval"),
    ] {
        let m = err(
            &kms,
            &[
                ("Action", "UpdateRotationPolicy"),
                ("KeyId", &id),
                ("EnableAutomaticRotation", value),
                ("RotationInterval", interval),
            ],
            "InvalidParameter",
            400,
        );
        assert!(m.contains(param), "{m}");
    }
    let ext = ok(&kms, &[("Action", "CreateKey"), ("Origin", "EXTERNAL")])["KeyMetadata"]["KeyId"]
        .as_str()
        .expect("id")
        .to_owned();
    err(
        &kms,
        &[("Action", "CreateKeyVersion"), ("KeyId", &ext)],
        "Unsupported.Origin",
        400,
    );
    err(
        &kms,
        &[
            ("Action", "UpdateRotationPolicy"),
            ("KeyId", &ext),
            ("EnableAutomaticRotation", "true"),
        ],
        "Unsupported.Origin",
        400,
    );
}

#[test]
fn every_action_is_listed_once() {
    let names: Vec<&str> = wire::actions().map(|(n, _)| n).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len());
    for expected in [
        "CreateKey",
        "DescribeKey",
        "ListKeys",
        "EnableKey",
        "DisableKey",
        "ScheduleKeyDeletion",
        "CancelKeyDeletion",
        "GetParametersForImport",
        "ImportKeyMaterial",
        "DeleteKeyMaterial",
        "Encrypt",
        "GenerateDataKey",
        "Decrypt",
        "GenerateDataKeyWithoutPlaintext",
        "ReEncrypt",
        "UpdateKeyDescription",
        "UpdateRotationPolicy",
        "CreateKeyVersion",
        "DescribeKeyVersion",
        "ListKeyVersions",
        "CreateAlias",
        "UpdateAlias",
        "DeleteAlias",
        "ListAliases",
        "ListAliasesByKeyId",
        "TagResource",
        "UntagResource",
        "ListResourceTags",
        "DescribeRegions",
    ] {
        assert!(names.contains(&expected), "{expected}");
    }
    // Every listed action answers (no InvalidAction.NotFound).
    let (kms, _) = kms();
    for name in names {
        let r = raw(&kms, &[("Action", name)]);
        assert!(!r.body.contains("InvalidAction"), "{name}: {}", r.body);
    }
}

/// Parameter names the actions read, plus noise, for the property test.
const NAMES: &[&str] = &[
    "Action",
    "Format",
    "KeyId",
    "Description",
    "KeyUsage",
    "Origin",
    "ProtectionLevel",
    "KeySpec",
    "EnableAutomaticRotation",
    "RotationInterval",
    "PageNumber",
    "PageSize",
    "PendingWindowInDays",
    "WrappingAlgorithm",
    "WrappingKeySpec",
    "EncryptedKeyMaterial",
    "ImportToken",
    "KeyMaterialExpireUnix",
    "Plaintext",
    "CiphertextBlob",
    "EncryptionContext",
    "NumberOfBytes",
    "AliasName",
    "Tags",
    "TagKeys",
    "KeyVersionId",
    "DestinationKeyId",
    "x",
];

fn action_name() -> impl Strategy<Value = String> {
    let mut names: Vec<String> = wire::actions().map(|(n, _)| n.to_owned()).collect();
    names.extend(["".into(), "Nope".into(), "createkey".into()]);
    prop::sample::select(names)
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("XML".to_owned()),
        Just("true".to_owned()),
        Just("7".to_owned()),
        Just("alias/x".to_owned()),
        Just("EXTERNAL".to_owned()),
        Just("RSAES_OAEP_SHA_256".to_owned()),
        Just("RSA_2048".to_owned()),
        Just("[{\"TagKey\":\"a\"}]".to_owned()),
        Just("{\"a\":\"b\"}".to_owned()),
        "[0-9]{1,25}",
        "-?[0-9a-z.+]{0,12}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// No parameter set makes dispatch panic or answer 500, and every
    /// answer is a well-formed body with a RequestId.
    #[test]
    fn arbitrary_parameters_never_panic_or_500(
        action in action_name(),
        with_action in any::<bool>(),
        pairs in prop::collection::vec(
            (prop_oneof![prop::sample::select(NAMES).prop_map(str::to_owned), any::<String>()], value()),
            0..8,
        ),
        key_ref in 0usize..3,
    ) {
        let (kms, _) = kms();
        let id = create(&kms);
        let mut params = Vec::new();
        if with_action {
            params.push(("Action".to_owned(), action));
        }
        for (k, v) in pairs {
            // Sometimes point at a real key.
            let v = if k == "KeyId" && key_ref == 0 { id.clone() } else { v };
            params.push((k, v));
        }
        let r = wire::dispatch(&kms, &params);
        prop_assert_ne!(r.status, 500, "{:?} -> {}", params, r.body);
        prop_assert!(r.status == 200 || (400..500).contains(&r.status));
        if r.content_type.starts_with("application/json") {
            let v: Value = serde_json::from_str(&r.body).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(v["RequestId"].is_string());
            if r.status != 200 {
                prop_assert_eq!(v["HttpStatus"].as_u64(), Some(u64::from(r.status)));
            }
        } else {
            prop_assert!(r.body.contains("<RequestId>"));
        }
    }
}
