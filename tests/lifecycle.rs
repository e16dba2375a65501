//! The key lifecycle and its state table (SPEC sections 1, 2 and 4), on every
//! keystore backend.

mod common;

use common::T0;
use localkms::{
    CreateKeyRequest, Error, KeyState, Kms, ManualClock, Origin, Paging, ProtectionLevel,
    format_timestamp,
};

const DAY: i64 = 86_400;

on_every_backend!(
    create_key_reports_exact_metadata,
    external_key_starts_pending_import_without_version,
    description_is_limited_to_8192_characters,
    enable_and_disable_follow_the_state_table,
    schedule_deletion_follows_the_state_table,
    cancel_deletion_follows_the_state_table,
    pending_window_must_be_7_to_30_days,
    key_is_gone_at_delete_date,
    purge_expired_deletes_only_due_keys,
    list_keys_pages_in_creation_order,
    key_id_forms_resolve_as_spec_says,
    many_threads_create_and_change_keys,
);

fn create_key_reports_exact_metadata(kms: Kms, _clock: ManualClock) {
    let m = kms
        .create_key(&CreateKeyRequest::with_description("app key"))
        .expect("create");
    assert_eq!(m.key_state, KeyState::Enabled);
    assert_eq!(m.description, "app key");
    assert_eq!(m.creation_date, "2026-01-01T00:00:00Z");
    assert_eq!(m.creator, localkms::DEFAULT_ACCOUNT_ID);
    assert_eq!(
        m.arn,
        format!(
            "acs:kms:cn-hangzhou:{}:key/{}",
            localkms::DEFAULT_ACCOUNT_ID,
            m.key_id
        )
    );
    assert_eq!(m.key_usage.as_str(), "ENCRYPT/DECRYPT");
    assert_eq!(m.key_spec.as_str(), "Aliyun_AES_256");
    assert_eq!(m.origin, Origin::AliyunKms);
    assert_eq!(m.protection_level, ProtectionLevel::Software);
    assert_eq!(m.delete_date, "");
    assert_eq!(m.material_expire_time, "");
    assert_eq!(m.automatic_rotation, "Disabled");
    assert_eq!(m.rotation_interval, "");
    assert_eq!(m.last_rotation_date, "");
    assert_eq!(m.next_rotation_date, "");
    assert_eq!(m.primary_key_version.len(), 36, "first version exists");
    assert_ne!(m.primary_key_version, m.key_id);
    assert!(uuid::Uuid::parse_str(&m.key_id).is_ok());
    assert_eq!(m.key_id, m.key_id.to_lowercase());

    // The JSON form has exactly the SPEC's fields, all strings.
    let json = serde_json::to_value(&m).expect("serialize");
    let obj = json.as_object().expect("object");
    let mut fields: Vec<&str> = obj.keys().map(String::as_str).collect();
    fields.sort_unstable();
    let mut want = vec![
        "CreationDate",
        "Description",
        "KeyId",
        "KeyState",
        "KeyUsage",
        "KeySpec",
        "DeleteDate",
        "Creator",
        "Arn",
        "Origin",
        "MaterialExpireTime",
        "ProtectionLevel",
        "PrimaryKeyVersion",
        "AutomaticRotation",
        "RotationInterval",
        "LastRotationDate",
        "NextRotationDate",
        // The current API's (issue 17).
        "DeletionProtection",
        "DeletionProtectionDescription",
    ];
    want.sort_unstable();
    assert_eq!(fields, want);
    assert!(obj.values().all(serde_json::Value::is_string));

    let hsm = CreateKeyRequest {
        protection_level: ProtectionLevel::Hsm,
        ..CreateKeyRequest::default()
    };
    assert_eq!(
        kms.create_key(&hsm).expect("hsm").protection_level,
        ProtectionLevel::Hsm
    );
    assert_eq!(kms.describe_key(&m.key_id).expect("describe"), m);
}

fn external_key_starts_pending_import_without_version(kms: Kms, _clock: ManualClock) {
    let m = kms
        .create_key(&CreateKeyRequest::external())
        .expect("create");
    assert_eq!(m.key_state, KeyState::PendingImport);
    assert_eq!(m.origin, Origin::External);
    assert_eq!(m.primary_key_version, "");
    let rotating = CreateKeyRequest {
        enable_automatic_rotation: true,
        ..CreateKeyRequest::external()
    };
    assert_eq!(
        kms.create_key(&rotating).unwrap_err().code(),
        "Unsupported.Origin"
    );
}

fn description_is_limited_to_8192_characters(kms: Kms, _clock: ManualClock) {
    let ok = "é".repeat(8192);
    assert_eq!(
        kms.create_key(&CreateKeyRequest::with_description(ok.clone()))
            .expect("8192")
            .description,
        ok
    );
    let err = kms
        .create_key(&CreateKeyRequest::with_description("a".repeat(8193)))
        .unwrap_err();
    assert_eq!(err.code(), "InvalidParameter");
    assert_eq!(err.http_status(), 400);
    assert!(err.to_string().contains("Description"), "{err}");
    assert_eq!(
        kms.list_keys(Paging::default()).expect("list").total_count,
        1,
        "nothing created"
    );
}

/// Keys in each of the four states.
fn one_key_per_state(kms: &Kms) -> [(KeyState, String); 4] {
    let enabled = kms
        .create_key(&CreateKeyRequest::default())
        .expect("create")
        .key_id;
    let disabled = kms
        .create_key(&CreateKeyRequest::default())
        .expect("create")
        .key_id;
    kms.disable_key(&disabled).expect("disable");
    let pending_deletion = kms
        .create_key(&CreateKeyRequest::default())
        .expect("create")
        .key_id;
    kms.schedule_key_deletion(&pending_deletion, 7)
        .expect("schedule");
    let pending_import = kms
        .create_key(&CreateKeyRequest::external())
        .expect("create")
        .key_id;
    let out = [
        (KeyState::Enabled, enabled),
        (KeyState::Disabled, disabled),
        (KeyState::PendingDeletion, pending_deletion),
        (KeyState::PendingImport, pending_import),
    ];
    for (state, id) in &out {
        assert_eq!(kms.describe_key(id).expect("describe").key_state, *state);
    }
    out
}

fn state_of(kms: &Kms, id: &str) -> KeyState {
    kms.describe_key(id).expect("describe").key_state
}

fn code(r: Result<(), Error>) -> &'static str {
    match r {
        Ok(()) => "ok",
        Err(e) => e.code(),
    }
}

fn enable_and_disable_follow_the_state_table(kms: Kms, _clock: ManualClock) {
    use KeyState::*;
    // (from, EnableKey result, DisableKey result) — SPEC section 2.
    let table = [
        (Enabled, "ok", "ok"),
        (Disabled, "ok", "ok"),
        (
            PendingDeletion,
            "Rejected.StateModifiedFailed",
            "Rejected.StateModifiedFailed",
        ),
        (
            PendingImport,
            "Rejected.StateModifiedFailed",
            "Rejected.StateModifiedFailed",
        ),
    ];
    for (from, enable, disable) in table {
        let keys = one_key_per_state(&kms);
        let id = &keys.iter().find(|(s, _)| *s == from).expect("state").1;
        assert_eq!(code(kms.enable_key(id)), enable, "EnableKey from {from}");
        let after = if enable == "ok" { Enabled } else { from };
        assert_eq!(state_of(&kms, id), after, "EnableKey from {from}");

        let keys = one_key_per_state(&kms);
        let id = &keys.iter().find(|(s, _)| *s == from).expect("state").1;
        assert_eq!(code(kms.disable_key(id)), disable, "DisableKey from {from}");
        let after = if disable == "ok" { Disabled } else { from };
        assert_eq!(state_of(&kms, id), after, "DisableKey from {from}");
    }
    let keys = one_key_per_state(&kms);
    let err = kms.enable_key(&keys[2].1).unwrap_err();
    assert_eq!(err.http_status(), 409);
    assert!(err.to_string().contains("PendingDeletion"), "{err}");
}

fn schedule_deletion_follows_the_state_table(kms: Kms, _clock: ManualClock) {
    use KeyState::*;
    let table = [
        (Enabled, "ok"),
        (Disabled, "ok"),
        (PendingDeletion, "Rejected.StateModifiedFailed"),
        (PendingImport, "ok"),
    ];
    for (from, want) in table {
        let keys = one_key_per_state(&kms);
        let id = &keys.iter().find(|(s, _)| *s == from).expect("state").1;
        let before = kms.describe_key(id).expect("describe");
        assert_eq!(code(kms.schedule_key_deletion(id, 10)), want, "from {from}");
        let after = kms.describe_key(id).expect("describe");
        if want == "ok" {
            assert_eq!(after.key_state, PendingDeletion);
            assert_eq!(after.delete_date, format_timestamp(T0 + 10 * DAY));
        } else {
            assert_eq!(after, before, "a rejected call changes nothing");
        }
    }
}

fn cancel_deletion_follows_the_state_table(kms: Kms, _clock: ManualClock) {
    use KeyState::*;
    let table = [
        (Enabled, "Rejected.StateModifiedFailed"),
        (Disabled, "Rejected.StateModifiedFailed"),
        (PendingDeletion, "ok"),
        (PendingImport, "Rejected.StateModifiedFailed"),
    ];
    for (from, want) in table {
        let keys = one_key_per_state(&kms);
        let id = &keys.iter().find(|(s, _)| *s == from).expect("state").1;
        assert_eq!(code(kms.cancel_key_deletion(id)), want, "from {from}");
        let m = kms.describe_key(id).expect("describe");
        if want == "ok" {
            assert_eq!(m.key_state, Enabled);
            assert_eq!(m.delete_date, "");
        } else {
            assert_eq!(m.key_state, from);
        }
    }
    // A disabled key scheduled and cancelled comes back Enabled (SPEC section 2).
    let id = kms
        .create_key(&CreateKeyRequest::default())
        .expect("create")
        .key_id;
    kms.disable_key(&id).expect("disable");
    kms.schedule_key_deletion(&id, 7).expect("schedule");
    kms.cancel_key_deletion(&id).expect("cancel");
    assert_eq!(state_of(&kms, &id), Enabled);
    // An EXTERNAL key without material comes back PendingImport.
    let ext = kms
        .create_key(&CreateKeyRequest::external())
        .expect("create")
        .key_id;
    kms.schedule_key_deletion(&ext, 7).expect("schedule");
    kms.cancel_key_deletion(&ext).expect("cancel");
    assert_eq!(state_of(&kms, &ext), PendingImport);
}

fn pending_window_must_be_7_to_30_days(kms: Kms, _clock: ManualClock) {
    let id = kms
        .create_key(&CreateKeyRequest::default())
        .expect("create")
        .key_id;
    for bad in [0, 6, 31, u32::MAX] {
        let e = kms.schedule_key_deletion(&id, bad).unwrap_err();
        assert_eq!(e.code(), "InvalidParameter", "{bad}");
        assert!(e.to_string().contains("PendingWindowInDays"), "{e}");
    }
    assert_eq!(state_of(&kms, &id), KeyState::Enabled);
    kms.schedule_key_deletion(&id, 30).expect("30 days");
    let other = kms
        .create_key(&CreateKeyRequest::default())
        .expect("create")
        .key_id;
    kms.schedule_key_deletion(&other, 7).expect("7 days");
    assert_eq!(
        kms.describe_key(&id).expect("describe").delete_date,
        format_timestamp(T0 + 30 * DAY)
    );
}

fn key_is_gone_at_delete_date(kms: Kms, clock: ManualClock) {
    let id = kms
        .create_key(&CreateKeyRequest::default())
        .expect("create")
        .key_id;
    let keep = kms
        .create_key(&CreateKeyRequest::default())
        .expect("create")
        .key_id;
    kms.schedule_key_deletion(&id, 7).expect("schedule");
    clock.set(T0 + 7 * DAY - 1);
    assert_eq!(
        state_of(&kms, &id),
        KeyState::PendingDeletion,
        "one second before"
    );
    clock.set(T0 + 7 * DAY);
    for (op, r) in [
        ("DescribeKey", kms.describe_key(&id).map(|_| ())),
        ("EnableKey", kms.enable_key(&id)),
        ("DisableKey", kms.disable_key(&id)),
        ("CancelKeyDeletion", kms.cancel_key_deletion(&id)),
        ("ScheduleKeyDeletion", kms.schedule_key_deletion(&id, 7)),
    ] {
        let e = r.unwrap_err();
        assert_eq!(e.code(), "Forbidden.KeyNotFound", "{op}");
        assert_eq!(e.http_status(), 404, "{op}");
    }
    let listed = kms.list_keys(Paging::default()).expect("list");
    assert_eq!(listed.total_count, 1);
    assert_eq!(listed.items[0].key_id, keep);
    assert_eq!(kms.key_count().expect("count"), 1);
    // Time going back does not resurrect it.
    clock.set(T0);
    assert_eq!(
        kms.describe_key(&id).unwrap_err().code(),
        "Forbidden.KeyNotFound"
    );
}

fn purge_expired_deletes_only_due_keys(kms: Kms, clock: ManualClock) {
    let soon = kms
        .create_key(&CreateKeyRequest::default())
        .expect("create")
        .key_id;
    let later = kms
        .create_key(&CreateKeyRequest::default())
        .expect("create")
        .key_id;
    let cancelled = kms
        .create_key(&CreateKeyRequest::default())
        .expect("create")
        .key_id;
    kms.schedule_key_deletion(&soon, 7).expect("schedule");
    kms.schedule_key_deletion(&later, 20).expect("schedule");
    kms.schedule_key_deletion(&cancelled, 7).expect("schedule");
    kms.cancel_key_deletion(&cancelled).expect("cancel");
    assert_eq!(kms.purge_expired().expect("purge"), 0);
    clock.advance(7 * DAY);
    assert_eq!(kms.purge_expired().expect("purge"), 1);
    assert_eq!(kms.purge_expired().expect("purge again"), 0);
    assert_eq!(
        kms.describe_key(&soon).unwrap_err().code(),
        "Forbidden.KeyNotFound"
    );
    assert_eq!(state_of(&kms, &later), KeyState::PendingDeletion);
    assert_eq!(state_of(&kms, &cancelled), KeyState::Enabled);
    clock.advance(30 * DAY);
    assert_eq!(kms.purge_expired().expect("purge"), 1);
    assert_eq!(kms.key_count().expect("count"), 1);
}

fn list_keys_pages_in_creation_order(kms: Kms, _clock: ManualClock) {
    let ids: Vec<String> = (0..25)
        .map(|_| {
            kms.create_key(&CreateKeyRequest::default())
                .expect("create")
                .key_id
        })
        .collect();
    let default = kms.list_keys(Paging::default()).expect("list");
    assert_eq!(
        (default.page_number, default.page_size, default.total_count),
        (1, 10, 25)
    );
    let mut seen = Vec::new();
    for page in 1..=3 {
        let p = kms
            .list_keys(Paging::new(page, 10).expect("paging"))
            .expect("list");
        assert_eq!(p.total_count, 25);
        for e in &p.items {
            assert_eq!(
                e.key_arn,
                format!(
                    "acs:kms:cn-hangzhou:{}:key/{}",
                    localkms::DEFAULT_ACCOUNT_ID,
                    e.key_id
                )
            );
        }
        seen.extend(p.items.into_iter().map(|e| e.key_id));
    }
    assert_eq!(seen, ids);
    assert!(
        kms.list_keys(Paging::new(4, 10).expect("paging"))
            .expect("list")
            .items
            .is_empty()
    );
    let all = kms
        .list_keys(Paging::new(1, 100).expect("paging"))
        .expect("list");
    assert_eq!(all.items.len(), 25);
    let p = kms
        .list_keys(Paging::new(7, 4).expect("paging"))
        .expect("list");
    assert_eq!(
        p.items.iter().map(|e| e.key_id.clone()).collect::<Vec<_>>(),
        ids[24..]
    );
    // Stable across calls.
    assert_eq!(kms.list_keys(Paging::default()).expect("list"), default);
}

fn key_id_forms_resolve_as_spec_says(kms: Kms, _clock: ManualClock) {
    let m = kms
        .create_key(&CreateKeyRequest::default())
        .expect("create");
    assert_eq!(kms.describe_key(&m.arn).expect("by ARN").key_id, m.key_id);
    kms.disable_key(&m.arn)
        .expect("non-alias operations take a key ARN");
    let cases = [
        ("", "MissingParameter"),
        ("not-a-key", "Forbidden.KeyNotFound"),
        (
            "00000000-0000-4000-8000-000000000000",
            "Forbidden.KeyNotFound",
        ),
        (&*m.key_id.to_uppercase(), "Forbidden.KeyNotFound"),
        (
            &*m.arn.replace("cn-hangzhou", "cn-beijing"),
            "Forbidden.KeyNotFound",
        ),
        (
            &*m.arn
                .replace(localkms::DEFAULT_ACCOUNT_ID, "1111111111111111"),
            "Forbidden.KeyNotFound",
        ),
        ("acs:kms:cn-hangzhou", "Forbidden.KeyNotFound"),
        ("alias/nothing", "Forbidden.AliasNotFound"),
    ];
    for (input, want) in cases {
        assert_eq!(
            kms.describe_key(input).unwrap_err().code(),
            want,
            "DescribeKey({input:?})"
        );
    }
    let alias_arn = format!(
        "acs:kms:cn-hangzhou:{}:alias/app",
        localkms::DEFAULT_ACCOUNT_ID
    );
    for input in ["alias/app", alias_arn.as_str()] {
        for r in [
            kms.enable_key(input),
            kms.disable_key(input),
            kms.schedule_key_deletion(input, 7),
            kms.cancel_key_deletion(input),
        ] {
            let e = r.unwrap_err();
            assert_eq!(e.code(), "Unsupported.Alias", "{input}");
            assert!(e.to_string().contains("KeyId"), "{e}");
        }
    }
    let huge = "x".repeat(100_000);
    let e = kms.describe_key(&huge).unwrap_err();
    assert!(e.to_string().len() < 400, "messages stay short");
}

fn many_threads_create_and_change_keys(kms: Kms, _clock: ManualClock) {
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    assert_send_sync(&kms);
    let ids = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..25 {
                    let id = kms
                        .create_key(&CreateKeyRequest::default())
                        .expect("create")
                        .key_id;
                    kms.disable_key(&id).expect("disable");
                    kms.enable_key(&id).expect("enable");
                    kms.disable_key(&id).expect("disable");
                    ids.lock().expect("lock").push(id);
                }
            });
        }
    });
    let ids = ids.into_inner().expect("ids");
    let listed = kms
        .list_keys(Paging::new(1, 100).expect("paging"))
        .expect("list");
    assert_eq!(listed.total_count, 100);
    let mut a: Vec<_> = listed.items.into_iter().map(|e| e.key_id).collect();
    let mut b = ids.clone();
    a.sort();
    b.sort();
    assert_eq!(a, b, "no create lost, none duplicated");
    for id in ids {
        assert_eq!(state_of(&kms, &id), KeyState::Disabled, "no update lost");
    }
}
