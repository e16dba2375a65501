//! The secrets manager through the Rust API and the wire (SPEC section 12):
//! versions and stages, deletion windows on the clock, the CMK's state, the
//! default service key, and every error path.

mod common;

use std::sync::Arc;

use common::T0;
use localkms::{
    CreateSecretRequest, Error, GetRandomPasswordRequest, GetSecretValueRequest, Kms, ManualClock,
    MemoryAudit, Paging, PutSecretValueRequest, SecretDataType, SecretDeletion, SecretFilter,
    SecretQuery, SecretType, Tag, TagKey, wire,
};

fn kms() -> (Kms, ManualClock) {
    let clock = ManualClock::new(T0);
    let kms = Kms::builder()
        .in_memory()
        .clock(clock.clone())
        .build()
        .expect("kms");
    (kms, clock)
}

fn create(kms: &Kms, name: &str, value: &[u8]) {
    let req = CreateSecretRequest {
        version_id: Some("v1".into()),
        ..CreateSecretRequest::new(name)
    };
    kms.create_secret(&req, value).expect("create");
}

fn get(kms: &Kms, name: &str, req: &GetSecretValueRequest) -> Result<Vec<u8>, Error> {
    kms.get_secret_value(name, req)
        .map(|v| v.secret_data.expose_secret().to_vec())
}

fn current(kms: &Kms, name: &str) -> Vec<u8> {
    get(kms, name, &GetSecretValueRequest::default()).expect("get current")
}

fn code<T: std::fmt::Debug>(r: Result<T, Error>) -> &'static str {
    r.expect_err("must fail").code()
}

fn put(kms: &Kms, name: &str, id: &str, value: &[u8]) -> Vec<String> {
    kms.put_secret_value(name, value, &PutSecretValueRequest::version(id))
        .expect("put")
        .version_stages
}

#[test]
fn a_secrets_life_current_previous_and_custom_stages() {
    let (kms, _) = kms();
    let created = kms
        .create_secret(
            &CreateSecretRequest {
                version_id: Some("v1".into()),
                description: "db".into(),
                ..CreateSecretRequest::new("db/password")
            },
            b"one",
        )
        .expect("create");
    assert_eq!(
        created.arn,
        "acs:kms:cn-hangzhou:1234567890123456:secret/db/password"
    );
    assert_eq!(created.secret_type, SecretType::Generic);
    assert_eq!(current(&kms, "db/password"), b"one");
    assert_eq!(current(&kms, &created.arn), b"one", "an ARN names it too");

    assert_eq!(put(&kms, "db/password", "v2", b"two"), ["ACSCurrent"]);
    assert_eq!(current(&kms, "db/password"), b"two");
    let prev = kms
        .get_secret_value("db/password", &GetSecretValueRequest::stage("ACSPrevious"))
        .expect("previous");
    assert_eq!(prev.secret_data.expose_secret(), b"one");
    assert_eq!(prev.version_id, "v1");
    assert_eq!(prev.version_stages, ["ACSPrevious"]);

    // A pending version does not move ACSCurrent; a stage move does.
    let pending = kms
        .put_secret_value(
            "db/password",
            b"three",
            &PutSecretValueRequest::version("v3").stages(["ACSPending"]),
        )
        .expect("put pending");
    assert_eq!(pending.version_stages, ["ACSPending"]);
    assert_eq!(current(&kms, "db/password"), b"two");
    kms.update_secret_version_stage("db/password", "ACSCurrent", Some("v2"), Some("v3"))
        .expect("promote");
    assert_eq!(current(&kms, "db/password"), b"three");
    assert_eq!(
        get(
            &kms,
            "db/password",
            &GetSecretValueRequest::stage("ACSPrevious")
        )
        .expect("prev"),
        b"two"
    );
    // Custom stage: attach, then remove.
    kms.update_secret_version_stage("db/password", "blue", None, Some("v1"))
        .expect("attach");
    assert_eq!(
        get(&kms, "db/password", &GetSecretValueRequest::stage("blue")).expect("blue"),
        b"one"
    );
    kms.update_secret_version_stage("db/password", "blue", Some("v1"), None)
        .expect("remove");
    assert_eq!(
        code(get(
            &kms,
            "db/password",
            &GetSecretValueRequest::stage("blue")
        )),
        "Forbidden.ResourceNotFound"
    );
    // v1 is deprecated now: listed only with IncludeDeprecated, still readable by id.
    let all = |dep| {
        kms.list_secret_version_ids("db/password", dep, Paging::default())
            .expect("list")
            .items
            .into_iter()
            .map(|v| (v.version_id, v.version_stages))
            .collect::<Vec<_>>()
    };
    assert_eq!(all(false).len(), 2);
    assert_eq!(all(true).len(), 3);
    assert_eq!(all(true)[0], ("v1".to_owned(), Vec::new()));
    assert_eq!(
        get(&kms, "db/password", &GetSecretValueRequest::version("v1")).expect("v1"),
        b"one"
    );
    // Both VersionId and VersionStage: they must agree.
    let both = GetSecretValueRequest {
        version_id: Some("v2".into()),
        version_stage: Some("ACSCurrent".into()),
    };
    assert_eq!(code(get(&kms, "db/password", &both)), "InvalidParameter");
    assert_eq!(
        code(get(
            &kms,
            "db/password",
            &GetSecretValueRequest::version("nope")
        )),
        "Forbidden.ResourceNotFound"
    );
}

#[test]
fn put_is_idempotent_for_the_same_value_and_refuses_another() {
    let (kms, _) = kms();
    create(&kms, "s", b"one");
    assert_eq!(put(&kms, "s", "v2", b"two"), ["ACSCurrent"]);
    // Same id, same value: success, nothing changes (v2 stays current).
    assert_eq!(put(&kms, "s", "v2", b"two"), ["ACSCurrent"]);
    assert_eq!(put(&kms, "s", "v1", b"one"), ["ACSPrevious"]);
    assert_eq!(current(&kms, "s"), b"two");
    let e = kms
        .put_secret_value("s", b"other", &PutSecretValueRequest::version("v2"))
        .unwrap_err();
    assert_eq!((e.code(), e.http_status()), ("Rejected.ResourceExist", 409));
    assert!(!e.to_string().contains("other"), "no value in errors: {e}");
    // The same bytes as another type are another value.
    let bin = PutSecretValueRequest {
        secret_data_type: SecretDataType::Binary,
        ..PutSecretValueRequest::version("v2")
    };
    assert_eq!(
        code(kms.put_secret_value("s", b"two", &bin)),
        "Rejected.ResourceExist"
    );
    // The Rust API may leave the VersionId to the library.
    let generated = kms
        .put_secret_value("s", b"three", &PutSecretValueRequest::default())
        .expect("generated id");
    assert_eq!(generated.version_id.len(), 36);
}

#[test]
fn versions_beyond_ten_drop_the_oldest_without_a_stage() {
    let (kms, _) = kms();
    create(&kms, "s", b"0");
    kms.update_secret_version_stage("s", "keep", None, Some("v1"))
        .expect("stage");
    for i in 2..=14 {
        put(&kms, "s", &format!("v{i}"), i.to_string().as_bytes());
    }
    let ids: Vec<String> = kms
        .list_secret_version_ids("s", true, Paging::new(1, 100).expect("paging"))
        .expect("list")
        .items
        .into_iter()
        .map(|v| v.version_id)
        .collect();
    assert_eq!(ids.len(), localkms::MAX_SECRET_VERSIONS);
    assert_eq!(ids[0], "v1", "a staged version is kept");
    assert_eq!(ids[1], "v6");
    assert_eq!(
        code(get(&kms, "s", &GetSecretValueRequest::version("v2"))),
        "Forbidden.ResourceNotFound"
    );
}

#[test]
fn at_most_eight_stages() {
    let (kms, _) = kms();
    create(&kms, "s", b"0");
    // ACSCurrent + 7 custom stages.
    for i in 0..7 {
        kms.update_secret_version_stage("s", &format!("s{i}"), None, Some("v1"))
            .expect("stage");
    }
    assert_eq!(
        code(kms.update_secret_version_stage("s", "s7", None, Some("v1"))),
        "Rejected.LimitExceeded"
    );
    let e = kms
        .put_secret_value(
            "s",
            b"x",
            &PutSecretValueRequest::version("v2").stages(["ACSPending"]),
        )
        .unwrap_err();
    assert_eq!(e.code(), "Rejected.LimitExceeded");
    // Nothing was stored by the refused put.
    assert_eq!(
        code(get(&kms, "s", &GetSecretValueRequest::version("v2"))),
        "Forbidden.ResourceNotFound"
    );
}

#[test]
fn update_secret_version_stage_errors() {
    let (kms, _) = kms();
    create(&kms, "s", b"0");
    put(&kms, "s", "v2", b"1");
    for (stage, from, to, want) in [
        ("x", None, None, "InvalidParameter"),
        ("ACSCurrent", Some("v2"), None, "InvalidParameter"),
        ("ACSPrevious", Some("v1"), None, "InvalidParameter"),
        ("x", Some("v1"), None, "InvalidParameter"),
        ("x", None, Some("v9"), "Forbidden.ResourceNotFound"),
        ("x", Some("v9"), Some("v1"), "Forbidden.ResourceNotFound"),
        ("", None, Some("v1"), "MissingParameter"),
        ("a b", None, Some("v1"), "InvalidParameter"),
    ] {
        assert_eq!(
            code(kms.update_secret_version_stage("s", stage, from, to)),
            want,
            "{stage} {from:?} {to:?}"
        );
    }
    assert_eq!(
        code(kms.update_secret_version_stage("nope", "x", None, Some("v1"))),
        "Forbidden.ResourceNotFound"
    );
}

#[test]
fn deletion_window_follows_the_clock_and_restore_cancels() {
    let (kms, clock) = kms();
    create(&kms, "a", b"1");
    create(&kms, "b", b"2");
    create(&kms, "c", b"3");
    for days in [0, 6, 31] {
        assert_eq!(
            code(kms.delete_secret("a", SecretDeletion::RecoveryWindow(days))),
            "InvalidParameter"
        );
    }
    let d = kms
        .delete_secret("a", SecretDeletion::RecoveryWindow(7))
        .expect("delete");
    assert_eq!(d.planned_delete_time, "2026-01-08T00:00:00Z");
    assert_eq!(
        kms.describe_secret("a", false)
            .expect("describe")
            .planned_delete_time,
        "2026-01-08T00:00:00Z"
    );
    // Pending deletion: values and changes are refused, metadata is not.
    let e = get(&kms, "a", &GetSecretValueRequest::default()).unwrap_err();
    assert_eq!((e.code(), e.http_status()), ("Rejected.ResourceInUse", 409));
    assert_eq!(
        code(kms.put_secret_value("a", b"x", &PutSecretValueRequest::version("v2"))),
        "Rejected.ResourceInUse"
    );
    assert_eq!(
        code(kms.update_secret("a", Some("d"))),
        "Rejected.ResourceInUse"
    );
    assert_eq!(
        code(kms.delete_secret("a", SecretDeletion::default())),
        "Rejected.ResourceInUse"
    );
    assert_eq!(
        code(kms.create_secret(&CreateSecretRequest::new("a"), b"x")),
        "Rejected.ResourceExist"
    );
    kms.restore_secret("a").expect("restore");
    assert_eq!(current(&kms, "a"), b"1");
    assert_eq!(code(kms.restore_secret("a")), "Rejected.ResourceInUse");

    // Lazy: at the planned time, the next access finds nothing.
    kms.delete_secret("a", SecretDeletion::RecoveryWindow(7))
        .expect("delete");
    kms.delete_secret("b", SecretDeletion::default())
        .expect("delete");
    clock.advance(7 * 86_400 - 1);
    assert_eq!(
        code(get(&kms, "a", &Default::default())),
        "Rejected.ResourceInUse"
    );
    clock.advance(1);
    assert_eq!(
        code(kms.describe_secret("a", false)),
        "Forbidden.ResourceNotFound"
    );
    assert_eq!(code(kms.restore_secret("a")), "Forbidden.ResourceNotFound");
    // The name is free again.
    create(&kms, "a", b"new");
    assert_eq!(current(&kms, "a"), b"new");
    // purge_expired counts secrets.
    clock.advance(30 * 86_400);
    assert_eq!(kms.purge_expired().expect("purge"), 1);
    let names: Vec<String> = kms
        .list_secrets(&[], false, Paging::default())
        .expect("list")
        .items
        .into_iter()
        .map(|s| s.secret_name)
        .collect();
    assert_eq!(names, ["c", "a"]);
    // Forced: gone at once, for good.
    kms.delete_secret("c", SecretDeletion::Force)
        .expect("force");
    assert_eq!(code(kms.restore_secret("c")), "Forbidden.ResourceNotFound");
    assert_eq!(
        code(kms.delete_secret("c", SecretDeletion::Force)),
        "Forbidden.ResourceNotFound"
    );
}

#[test]
fn values_follow_the_cmk_state() {
    let (kms, clock) = kms();
    let key = kms.create_key(&Default::default()).expect("key").key_id;
    kms.create_alias("alias/secrets", &key).expect("alias");
    let req = CreateSecretRequest {
        encryption_key_id: Some("alias/secrets".into()),
        ..CreateSecretRequest::new("s")
    };
    assert_eq!(
        kms.create_secret(&req, b"v")
            .expect("create")
            .encryption_key_id,
        key
    );
    assert_eq!(
        kms.describe_secret("s", false)
            .expect("describe")
            .encryption_key_id,
        key
    );
    kms.disable_key(&key).expect("disable");
    let e = get(&kms, "s", &Default::default()).unwrap_err();
    assert_eq!((e.code(), e.http_status()), ("Rejected.Disabled", 409));
    assert_eq!(
        code(kms.put_secret_value("s", b"w", &PutSecretValueRequest::default())),
        "Rejected.Disabled"
    );
    kms.enable_key(&key).expect("enable");
    assert_eq!(current(&kms, "s"), b"v");
    kms.schedule_key_deletion(&key, 7).expect("schedule");
    assert_eq!(
        code(get(&kms, "s", &Default::default())),
        "Rejected.PendingDeletion"
    );
    clock.advance(7 * 86_400);
    assert_eq!(
        code(get(&kms, "s", &Default::default())),
        "Forbidden.KeyNotFound"
    );
    // A CMK that does not exist, or is disabled, refuses CreateSecret.
    let other = CreateSecretRequest {
        encryption_key_id: Some(key.clone()),
        ..CreateSecretRequest::new("t")
    };
    assert_eq!(
        code(kms.create_secret(&other, b"v")),
        "Forbidden.KeyNotFound"
    );
}

#[test]
fn the_default_key_is_a_listed_service_key() {
    let (kms, clock) = kms();
    assert_eq!(kms.default_secret_key_id().expect("id"), None);
    assert_eq!(kms.key_count().expect("count"), 0, "created lazily");
    create(&kms, "a", b"1");
    create(&kms, "b", b"2");
    let key = kms.default_secret_key_id().expect("id").expect("created");
    assert_eq!(kms.key_count().expect("count"), 1, "once");
    assert_eq!(
        kms.describe_secret("a", false)
            .expect("describe")
            .encryption_key_id,
        key
    );
    let listed = kms.list_keys(Paging::default()).expect("list");
    assert_eq!(listed.items[0].key_id, key);
    let meta = kms.describe_key(&key).expect("describe");
    assert!(
        meta.description.contains("secrets manager"),
        "{}",
        meta.description
    );
    assert_eq!(meta.key_state, localkms::KeyState::Enabled);
    for e in [
        kms.disable_key(&key).unwrap_err(),
        kms.schedule_key_deletion(&key, 7).unwrap_err(),
        kms.disable_key(&kms.describe_key(&key).expect("d").arn)
            .unwrap_err(),
    ] {
        assert_eq!((e.code(), e.http_status()), ("Rejected.ResourceInUse", 409));
        assert!(e.to_string().contains("default key"), "{e}");
    }
    clock.advance(400 * 86_400);
    assert_eq!(current(&kms, "a"), b"1");
    // Other keys are unaffected.
    let k = kms.create_key(&Default::default()).expect("key").key_id;
    kms.disable_key(&k).expect("disable");
}

#[test]
fn create_secret_errors() {
    let (kms, _) = kms();
    let req = |name: &str| CreateSecretRequest::new(name);
    assert_eq!(code(kms.create_secret(&req(""), b"x")), "MissingParameter");
    assert_eq!(code(kms.create_secret(&req("s"), b"")), "MissingParameter");
    for bad in ["acs/x", "a b", "é", &"n".repeat(193)] {
        assert_eq!(code(kms.create_secret(&req(bad), b"x")), "InvalidParameter");
    }
    let big = vec![b'x'; localkms::MAX_SECRET_DATA_BYTES + 1];
    assert_eq!(code(kms.create_secret(&req("s"), &big)), "InvalidParameter");
    kms.create_secret(&req("max"), &big[1..])
        .expect("30720 bytes is fine");
    // Binary: the limit is on the base64 text.
    let bin = CreateSecretRequest {
        secret_data_type: SecretDataType::Binary,
        ..req("bin")
    };
    assert_eq!(
        code(kms.create_secret(&bin, &[0u8; 23_041])),
        "InvalidParameter"
    );
    kms.create_secret(&bin, &[0u8; 23_040])
        .expect("binary at the limit");
    for (bad_version, want) in [("", "MissingParameter"), ("a\nb", "InvalidParameter")] {
        let r = CreateSecretRequest {
            version_id: Some(bad_version.into()),
            ..req("v")
        };
        assert_eq!(code(kms.create_secret(&r, b"x")), want);
    }
    let long_version = CreateSecretRequest {
        version_id: Some("v".repeat(65)),
        ..req("v")
    };
    assert_eq!(
        code(kms.create_secret(&long_version, b"x")),
        "InvalidParameter"
    );
    for t in [
        SecretType::Rds,
        SecretType::RamCredentials,
        SecretType::Ecs,
        SecretType::Redis,
        SecretType::PolarDb,
    ] {
        let e = kms
            .create_secret(
                &CreateSecretRequest {
                    secret_type: t,
                    ..req("m")
                },
                b"x",
            )
            .unwrap_err();
        assert_eq!(e.code(), "UnsupportedOperation");
        assert!(e.to_string().contains(t.as_str()), "{e}");
    }
    let rot = CreateSecretRequest {
        enable_automatic_rotation: true,
        ..req("r")
    };
    assert_eq!(code(kms.create_secret(&rot, b"x")), "UnsupportedOperation");
    let pol = CreateSecretRequest {
        policy: Some("[]".into()),
        ..req("p")
    };
    assert_eq!(code(kms.create_secret(&pol, b"x")), "InvalidParameter");
    let desc = CreateSecretRequest {
        description: "d".repeat(8193),
        ..req("d")
    };
    assert_eq!(code(kms.create_secret(&desc, b"x")), "InvalidParameter");
    let tags = CreateSecretRequest {
        tags: (0..21)
            .map(|i| Tag::new(format!("k{i}"), "v").expect("tag"))
            .collect(),
        ..req("t")
    };
    assert_eq!(
        code(kms.create_secret(&tags, b"x")),
        "Rejected.LimitExceeded"
    );
    let cmk = CreateSecretRequest {
        encryption_key_id: Some("alias/none".into()),
        ..req("c")
    };
    assert_eq!(
        code(kms.create_secret(&cmk, b"x")),
        "Forbidden.AliasNotFound"
    );
    create(&kms, "taken", b"x");
    let e = kms.create_secret(&req("taken"), b"y").unwrap_err();
    assert_eq!((e.code(), e.http_status()), ("Rejected.ResourceExist", 409));
    // Unknown secrets, everywhere.
    for e in [
        get(&kms, "nope", &Default::default()).unwrap_err(),
        kms.describe_secret("nope", true).unwrap_err(),
        kms.update_secret("nope", None).unwrap_err(),
        kms.restore_secret("nope").unwrap_err(),
        kms.delete_secret("nope", SecretDeletion::default())
            .unwrap_err(),
        kms.get_secret_policy("nope", None).unwrap_err(),
        kms.rotate_secret("nope", "v").unwrap_err(),
        kms.list_secret_version_ids("nope", false, Paging::default())
            .unwrap_err(),
        kms.put_secret_value("nope", b"x", &Default::default())
            .unwrap_err(),
        get(
            &kms,
            "acs:kms:cn-beijing:1234567890123456:secret/taken",
            &Default::default(),
        )
        .unwrap_err(),
    ] {
        assert_eq!(
            (e.code(), e.http_status()),
            ("Forbidden.ResourceNotFound", 404)
        );
    }
}

#[test]
fn rotation_does_not_apply_to_generic_secrets() {
    let (kms, _) = kms();
    create(&kms, "s", b"x");
    let e = kms.rotate_secret("s", "v2").unwrap_err();
    assert_eq!(e.code(), "UnsupportedOperation");
    assert!(e.to_string().contains("PutSecretValue"), "{e}");
    assert_eq!(code(kms.rotate_secret("s", "")), "MissingParameter");
    assert_eq!(
        code(kms.update_secret_rotation_policy("s", true, Some(86_400))),
        "UnsupportedOperation"
    );
    assert_eq!(
        code(kms.update_secret_rotation_policy("s", true, Some(3_600))),
        "InvalidParameter"
    );
}

#[test]
fn describe_list_filters_tags_and_policies() {
    let (kms, _) = kms();
    let tagged = CreateSecretRequest {
        description: "orders db".into(),
        tags: vec![Tag::new("team", "pay").expect("tag")],
        ..CreateSecretRequest::new("orders/db")
    };
    kms.create_secret(&tagged, b"x").expect("create");
    create(&kms, "other", b"y");
    let m = kms.describe_secret("orders/db", true).expect("describe");
    assert_eq!(m.tags.len(), 1);
    assert_eq!(
        (m.tags[0].tag_key.as_str(), m.tags[0].tag_value.as_str()),
        ("team", "pay")
    );
    assert!(
        kms.describe_secret("orders/db", false)
            .expect("d")
            .tags
            .is_empty()
    );
    assert_eq!(m.create_time, "2026-01-01T00:00:00Z");
    let names = |filters: &[SecretFilter]| -> Vec<String> {
        kms.list_secrets(filters, true, Paging::default())
            .expect("list")
            .items
            .into_iter()
            .map(|s| s.secret_name)
            .collect()
    };
    assert_eq!(names(&[]), ["orders/db", "other"]);
    assert_eq!(
        names(&[SecretFilter::new("SecretName", ["orders"])]),
        ["orders/db"]
    );
    assert_eq!(
        names(&[SecretFilter::new("TagKey", ["team"])]),
        ["orders/db"]
    );
    assert_eq!(
        names(&[SecretFilter::new("TagValue", ["pay", "x"])]),
        ["orders/db"]
    );
    assert_eq!(
        names(&[SecretFilter::new("Description", ["db"])]),
        ["orders/db"]
    );
    assert_eq!(
        names(&[SecretFilter::new("SecretType", ["Generic"])]).len(),
        2
    );
    assert!(
        names(&[
            SecretFilter::new("SecretName", ["orders"]),
            SecretFilter::new("TagKey", ["none"])
        ])
        .is_empty()
    );
    assert_eq!(
        code(kms.list_secrets(
            &[SecretFilter::new("Color", ["x"])],
            false,
            Paging::default()
        )),
        "InvalidParameter"
    );
    let page2 = kms
        .list_secrets(&[], false, Paging::new(2, 1).expect("paging"))
        .expect("page");
    assert_eq!(
        (page2.total_count, page2.items[0].secret_name.as_str()),
        (2, "other")
    );

    // Tags after creation.
    kms.tag_secret("other", &[Tag::new("a", "1").expect("tag")])
        .expect("tag");
    kms.untag_secret("orders/db", &[TagKey::new("team").expect("key")])
        .expect("untag");
    assert_eq!(names(&[SecretFilter::new("TagKey", ["a"])]), ["other"]);
    assert!(names(&[SecretFilter::new("TagKey", ["team"])]).is_empty());
    assert_eq!(code(kms.tag_secret("other", &[])), "MissingParameter");
    let many: Vec<Tag> = (0..20)
        .map(|i| Tag::new(format!("t{i}"), "").expect("tag"))
        .collect();
    assert_eq!(
        code(kms.tag_secret("other", &many)),
        "Rejected.LimitExceeded"
    );

    // Update and policies.
    kms.update_secret("other", Some("new")).expect("update");
    assert_eq!(
        kms.describe_secret("other", false).expect("d").description,
        "new"
    );
    let default = kms.get_secret_policy("other", None).expect("policy");
    assert!(default.contains("acs:ram::1234567890123456:*"), "{default}");
    kms.set_secret_policy("other", r#"{"Version":"1"}"#, Some("default"))
        .expect("set");
    assert_eq!(
        kms.get_secret_policy("other", Some("default"))
            .expect("get"),
        r#"{"Version":"1"}"#
    );
    assert_eq!(
        code(kms.set_secret_policy("other", "", None)),
        "MissingParameter"
    );
    assert_eq!(
        code(kms.set_secret_policy("other", "nope", None)),
        "InvalidParameter"
    );
    assert_eq!(
        code(kms.set_secret_policy("other", "{}", Some("custom"))),
        "InvalidParameter"
    );
    let huge = format!(r#"{{"a":"{}"}}"#, "x".repeat(32_768));
    assert_eq!(
        code(kms.set_secret_policy("other", &huge, None)),
        "InvalidParameter"
    );
}

#[test]
fn batch_get_secret_value_reports_each_failure() {
    let (kms, _) = kms();
    create(&kms, "a", b"1");
    create(&kms, "b", b"2");
    put(&kms, "b", "v2", b"22");
    let out = kms
        .batch_get_secret_value(&[
            SecretQuery::current("a"),
            SecretQuery::current("missing"),
            SecretQuery {
                secret_name: "b".into(),
                version: GetSecretValueRequest::stage("ACSPrevious"),
            },
        ])
        .expect("batch");
    let values: Vec<&[u8]> = out
        .secret_values
        .iter()
        .map(|v| v.secret_data.expose_secret())
        .collect();
    assert_eq!(values, [b"1".as_slice(), b"2".as_slice()]);
    assert_eq!(out.errors.len(), 1);
    assert_eq!(
        (
            out.errors[0].secret_name.as_str(),
            out.errors[0].code,
            out.errors[0].http_status
        ),
        ("missing", "Forbidden.ResourceNotFound", 404)
    );
    assert_eq!(code(kms.batch_get_secret_value(&[])), "MissingParameter");
    let many: Vec<SecretQuery> = (0..21).map(|_| SecretQuery::current("a")).collect();
    assert_eq!(code(kms.batch_get_secret_value(&many)), "InvalidParameter");
}

#[test]
fn random_passwords_honour_every_option() {
    let (kms, _) = kms();
    let pw = |req: &GetRandomPasswordRequest| -> String {
        kms.get_random_password(req)
            .expect("password")
            .expose_secret()
            .to_owned()
    };
    let p = pw(&Default::default());
    assert_eq!(p.chars().count(), 32);
    for len in [8, 128] {
        let r = GetRandomPasswordRequest {
            password_length: Some(len),
            ..Default::default()
        };
        assert_eq!(pw(&r).len(), len as usize);
    }
    for len in [7, 129, 0] {
        let r = GetRandomPasswordRequest {
            password_length: Some(len),
            ..Default::default()
        };
        assert_eq!(code(kms.get_random_password(&r)), "InvalidParameter");
    }
    let only_digits = GetRandomPasswordRequest {
        exclude_lowercase: true,
        exclude_uppercase: true,
        exclude_punctuation: true,
        ..Default::default()
    };
    for _ in 0..20 {
        assert!(pw(&only_digits).bytes().all(|b| b.is_ascii_digit()));
    }
    let no_chars = GetRandomPasswordRequest {
        exclude_characters: "0123456789".into(),
        ..only_digits.clone()
    };
    assert_eq!(code(kms.get_random_password(&no_chars)), "InvalidParameter");
    let excl = GetRandomPasswordRequest {
        password_length: Some(128),
        exclude_characters: "aeiouAEIOU01!\"'\\".into(),
        ..Default::default()
    };
    for _ in 0..20 {
        let p = pw(&excl);
        assert!(!p.chars().any(|c| "aeiouAEIOU01!\"'\\".contains(c)), "{p}");
    }
    let no_lower_upper = GetRandomPasswordRequest {
        exclude_lowercase: true,
        exclude_uppercase: true,
        ..Default::default()
    };
    assert!(!pw(&no_lower_upper).chars().any(|c| c.is_ascii_alphabetic()));
    let no_digits_punct = GetRandomPasswordRequest {
        exclude_numbers: true,
        exclude_punctuation: true,
        ..Default::default()
    };
    assert!(
        pw(&no_digits_punct)
            .chars()
            .all(|c| c.is_ascii_alphabetic())
    );
    // Every included class at least once, even in the shortest password.
    let each = GetRandomPasswordRequest {
        password_length: Some(8),
        require_each_included_type: true,
        exclude_characters: "abcdefghijklmnopqrstuvwxy".into(),
        ..Default::default()
    };
    for _ in 0..200 {
        let p = pw(&each);
        assert!(p.contains('z'), "{p}");
        assert!(p.chars().any(|c| c.is_ascii_uppercase()), "{p}");
        assert!(p.chars().any(|c| c.is_ascii_digit()), "{p}");
        assert!(p.chars().any(|c| c.is_ascii_punctuation()), "{p}");
    }
    // Every allowed character turns up, so none is excluded by mistake.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..100 {
        seen.extend(
            pw(&GetRandomPasswordRequest {
                password_length: Some(128),
                ..Default::default()
            })
            .chars(),
        );
    }
    assert_eq!(seen.len(), 26 + 26 + 10 + 32);
    assert!(
        format!(
            "{:?}",
            kms.get_random_password(&Default::default()).expect("pw")
        )
        .contains("REDACTED")
    );
}

#[cfg(feature = "test-util")]
#[test]
fn random_passwords_are_deterministic_under_test_util() {
    let make = || {
        Kms::builder()
            .clock(ManualClock::new(T0))
            .insecure_deterministic(7)
            .build()
            .expect("kms")
    };
    let (a, b) = (make(), make());
    let req = GetRandomPasswordRequest::default();
    assert_eq!(
        a.get_random_password(&req).expect("a").expose_secret(),
        b.get_random_password(&req).expect("b").expose_secret()
    );
}

#[test]
fn values_stay_out_of_debug_errors_and_the_audit_trail() {
    let (kms, _) = kms();
    let audit = Arc::new(MemoryAudit::new());
    kms.set_audit_sink(audit.clone());
    let value = b"correct horse battery staple";
    create(&kms, "s", value);
    let v = kms.get_secret_value("s", &Default::default()).expect("get");
    let debug = format!("{v:?}");
    assert!(!debug.contains("horse"), "{debug}");
    assert!(debug.contains("REDACTED"));
    let e = kms
        .put_secret_value("s", b"another horse", &PutSecretValueRequest::version("v1"))
        .unwrap_err();
    assert!(!format!("{e:?} {e}").contains("horse"));
    let events = audit.events();
    let actions: Vec<&str> = events.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        ["CreateSecret", "GetSecretValue", "PutSecretValue"]
    );
    assert_eq!(events[2].outcome, "Rejected.ResourceExist");
    assert!(!format!("{events:?}").contains("horse"));
    let key = kms.default_secret_key_id().expect("id");
    assert_eq!(events[1].key_id, key, "the CMK that opened the value");
}

#[test]
fn faults_cover_secret_actions() {
    let (kms, _) = kms();
    kms.faults()
        .fail_next("GetSecretValue", 1, localkms::Fault::Throttling)
        .expect("rule");
    create(&kms, "s", b"x");
    assert_eq!(
        code(get(&kms, "s", &Default::default())),
        "Rejected.Throttling"
    );
    assert_eq!(current(&kms, "s"), b"x");
}

fn call(kms: &Kms, p: &[(&str, &str)]) -> wire::Response {
    let params: Vec<(String, String)> = p
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    wire::dispatch(kms, &params)
}

fn body(r: &wire::Response) -> serde_json::Value {
    serde_json::from_str(&r.body).expect("json")
}

#[test]
fn the_wire_requires_version_ids_and_renders_stages() {
    let (kms, _) = kms();
    let r = call(
        &kms,
        &[
            ("Action", "CreateSecret"),
            ("SecretName", "s"),
            ("SecretData", "x"),
        ],
    );
    assert_eq!(r.status, 400);
    assert_eq!(body(&r)["Code"], "MissingParameter");
    assert!(r.body.contains("VersionId"));
    let r = call(
        &kms,
        &[
            ("Action", "CreateSecret"),
            ("SecretName", "s"),
            ("SecretData", "x"),
            ("VersionId", "v1"),
            ("Tags", r#"[{"Key":"team","Value":"a"}]"#),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(
        &kms,
        &[
            ("Action", "PutSecretValue"),
            ("SecretName", "s"),
            ("SecretData", "y"),
        ],
    );
    assert_eq!(body(&r)["Code"], "MissingParameter");
    let r = call(
        &kms,
        &[
            ("Action", "PutSecretValue"),
            ("SecretName", "s"),
            ("SecretData", "y"),
            ("VersionId", "v2"),
            ("VersionStages", r#"["ACSCurrent","green"]"#),
        ],
    );
    assert_eq!(
        body(&r)["VersionStages"]["VersionStage"],
        serde_json::json!(["ACSCurrent", "green"])
    );
    let r = call(&kms, &[("Action", "GetSecretValue"), ("SecretName", "s")]);
    let b = body(&r);
    assert_eq!(
        (b["SecretData"].as_str(), b["VersionId"].as_str()),
        (Some("y"), Some("v2"))
    );
    let r = call(
        &kms,
        &[
            ("Action", "GetSecretValue"),
            ("SecretName", "s"),
            ("Format", "XML"),
        ],
    );
    assert!(r.body.contains("<VersionStages><VersionStage>ACSCurrent</VersionStage><VersionStage>green</VersionStage></VersionStages>"), "{}", r.body);
    let r = call(&kms, &[("Action", "RotateSecret"), ("SecretName", "s")]);
    assert_eq!(body(&r)["Code"], "MissingParameter");
    // Binary values travel as base64.
    let r = call(
        &kms,
        &[
            ("Action", "CreateSecret"),
            ("SecretName", "bin"),
            ("SecretData", "AAEC/w=="),
            ("SecretDataType", "binary"),
            ("VersionId", "v1"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = kms
        .get_secret_value("bin", &Default::default())
        .expect("get");
    assert_eq!(v.secret_data.expose_secret(), [0, 1, 2, 255]);
    let r = call(&kms, &[("Action", "GetSecretValue"), ("SecretName", "bin")]);
    assert_eq!(body(&r)["SecretData"], "AAEC/w==");
    let r = call(
        &kms,
        &[
            ("Action", "CreateSecret"),
            ("SecretName", "bad"),
            ("SecretData", "not base64!"),
            ("SecretDataType", "binary"),
            ("VersionId", "v1"),
        ],
    );
    assert_eq!(body(&r)["Code"], "InvalidParameter");
    // Tags through TagResource with SecretName.
    let r = call(
        &kms,
        &[
            ("Action", "TagResource"),
            ("SecretName", "s"),
            ("Tags", r#"[{"TagKey":"b","TagValue":"2"}]"#),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(
        &kms,
        &[
            ("Action", "DescribeSecret"),
            ("SecretName", "s"),
            ("FetchTags", "true"),
        ],
    );
    assert_eq!(body(&r)["Tags"]["Tag"].as_array().map(Vec::len), Some(2));
    let r = call(
        &kms,
        &[
            ("Action", "DeleteSecret"),
            ("SecretName", "s"),
            ("ForceDeleteWithoutRecovery", "true"),
            ("RecoveryWindowInDays", "7"),
        ],
    );
    assert_eq!(body(&r)["Code"], "InvalidParameter");
    let r = call(
        &kms,
        &[
            ("Action", "GetRandomPassword"),
            ("PasswordLength", "12"),
            ("ExcludePunctuation", "true"),
        ],
    );
    assert_eq!(body(&r)["RandomPassword"].as_str().map(str::len), Some(12));
}

#[test]
fn the_sled_files_hold_no_secret_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = b"SECRET-VALUE-MARKER-5f1c0e2a";
    {
        let kms = Kms::builder()
            .sled(dir.path())
            .root_key_bytes(&[3u8; 32])
            .build()
            .expect("sled");
        let mut value = marker.to_vec();
        value.extend_from_slice(&[b'!'; 1000]);
        create(&kms, "s", &value);
        kms.put_secret_value("s", marker, &PutSecretValueRequest::version("v2"))
            .expect("put");
        kms.flush().expect("flush");
        assert_eq!(
            kms.get_secret_value("s", &GetSecretValueRequest::version("v1"))
                .expect("get")
                .secret_data
                .len(),
            value.len()
        );
    }
    let mut files = vec![dir.path().to_path_buf()];
    let mut scanned = 0;
    while let Some(p) = files.pop() {
        if p.is_dir() {
            for e in std::fs::read_dir(&p).expect("read_dir") {
                files.push(e.expect("entry").path());
            }
        } else {
            let bytes = std::fs::read(&p).expect("read");
            scanned += bytes.len();
            assert!(
                !bytes.windows(marker.len()).any(|w| w == marker),
                "{} holds a secret value",
                p.display()
            );
        }
    }
    assert!(scanned > 0);
}

#[test]
fn fixtures_load_secrets_with_versions_and_stages() {
    let (kms, _) = kms();
    kms.load_fixtures(
        r#"{"Keys": [{"KeyId": "c0ffee00-0000-4000-8000-000000000009", "Aliases": ["alias/s"]}],
            "Secrets": [{
              "SecretName": "db/password", "Description": "fixture", "EncryptionKeyId": "alias/s",
              "Tags": [{"TagKey": "team", "TagValue": "pay"}],
              "Versions": [
                {"VersionId": "v1", "SecretData": "old"},
                {"VersionId": "v2", "SecretData": "new"},
                {"VersionId": "v3", "SecretData": "AAE=", "SecretDataType": "binary", "VersionStages": ["ACSPending"]}
              ]}]}"#,
    )
    .expect("load");
    assert_eq!(current(&kms, "db/password"), b"new");
    assert_eq!(
        get(
            &kms,
            "db/password",
            &GetSecretValueRequest::stage("ACSPrevious")
        )
        .expect("prev"),
        b"old"
    );
    assert_eq!(
        get(
            &kms,
            "db/password",
            &GetSecretValueRequest::stage("ACSPending")
        )
        .expect("pending"),
        [0, 1]
    );
    let m = kms.describe_secret("db/password", true).expect("describe");
    assert_eq!(m.encryption_key_id, "c0ffee00-0000-4000-8000-000000000009");
    assert_eq!(m.tags.len(), 1);
    // Secrets only; checked whole before anything is written.
    for (bad, what) in [
        (
            r#"{"Secrets": [{"SecretName": "db/password", "Versions": [{"VersionId": "1", "SecretData": "x"}]}]}"#,
            "exists in the store",
        ),
        (
            r#"{"Secrets": [{"SecretName": "x", "Versions": []}]}"#,
            "Versions",
        ),
        (
            r#"{"Secrets": [{"SecretName": "y", "Versions": [{"VersionId": "1", "SecretData": "x"}]}, {"SecretName": "z", "Color": 1}]}"#,
            "Secrets[1].Color",
        ),
        (
            r#"{"Secrets": [{"SecretName": "y", "Versions": [{"VersionId": "1", "SecretData": "x", "VersionStages": ["blue"]}]}]}"#,
            "ACSCurrent",
        ),
    ] {
        let e = kms.load_fixtures(bad).unwrap_err();
        assert!(e.to_string().contains(what), "{bad}: {e}");
    }
    assert_eq!(
        code(kms.describe_secret("y", false)),
        "Forbidden.ResourceNotFound"
    );
}
