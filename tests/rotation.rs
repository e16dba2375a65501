//! Key versions and rotation (SPEC sections 6 and 8), and UpdateKeyDescription:
//! CreateKeyVersion, DescribeKeyVersion, ListKeyVersions, automatic rotation
//! under a manual clock, UpdateRotationPolicy, durability across a sled
//! reopen, and atomicity when the store fails.

mod common;
mod sled_reopen;
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::T0;
use localkms::store::{Batch, Keystore, MemoryKeystore, Op, Record, Scan, StoreError};
use localkms::{
    CreateKeyRequest, DataKeySpec, EncryptionContext, Error, GenerateDataKeyRequest, KeyState, Kms,
    ManualClock, Paging, WrappingAlgorithm, format_timestamp, parse_rotation_interval,
};

const DAY: i64 = 86_400;

on_every_backend!(
    five_rotations_across_five_intervals,
    rotation_waits_for_next_rotation_date,
    missed_intervals_make_one_version,
    any_use_of_the_key_rotates_it,
    manual_versions_become_primary,
    create_key_version_needs_an_enabled_key,
    external_keys_never_add_versions,
    unknown_versions_are_not_found,
    key_version_ids_take_no_alias,
    list_key_versions_pages,
    disabled_keys_rotate_only_once_enabled,
    pending_deletion_keys_do_not_rotate,
    update_rotation_policy_turns_rotation_on_and_off,
    update_rotation_policy_checks_its_parameters,
    enabling_rotation_counts_from_the_primary_version,
    concurrent_users_of_a_due_key_make_one_version,
    update_key_description_replaces_the_description,
);

fn none() -> EncryptionContext {
    EncryptionContext::empty()
}

fn rotating(interval: &str) -> CreateKeyRequest {
    CreateKeyRequest {
        enable_automatic_rotation: true,
        rotation_interval: Some(parse_rotation_interval(interval).expect("interval")),
        ..CreateKeyRequest::default()
    }
}

fn versions(kms: &Kms, key: &str) -> Vec<String> {
    let page = kms
        .list_key_versions(key, Paging::new(1, 100).expect("paging"))
        .expect("list versions");
    assert_eq!(page.total_count as usize, page.items.len());
    page.items.into_iter().map(|v| v.key_version_id).collect()
}

/// One ciphertext of each kind made in one era of the key.
struct Era {
    version: String,
    text_blob: localkms::CiphertextBlob,
    text: Vec<u8>,
    data_key_blob: localkms::CiphertextBlob,
    data_key_b64: String,
}

fn five_rotations_across_five_intervals(kms: Kms, clock: ManualClock) {
    let interval = 30 * DAY;
    let m = kms.create_key(&rotating("30d")).expect("create");
    let key = m.key_id;
    assert_eq!(m.automatic_rotation, "Enabled");
    assert_eq!(m.rotation_interval, "2592000s");
    assert_eq!(m.last_rotation_date, "");
    assert_eq!(m.next_rotation_date, format_timestamp(T0 + interval));
    let ctx = EncryptionContext::from_json(r#"{"era":"all"}"#).expect("ctx");
    let mut eras: Vec<Era> = Vec::new();
    for era in 0..=5 {
        let meta = kms.describe_key(&key).expect("describe");
        let listed = versions(&kms, &key);
        assert_eq!(listed.len(), era + 1, "one version per era");
        assert_eq!(
            listed.last(),
            Some(&meta.primary_key_version),
            "the newest version is primary"
        );
        if era > 0 {
            let now = T0 + era as i64 * interval;
            assert_ne!(meta.primary_key_version, eras[era - 1].version, "advanced");
            assert_eq!(meta.last_rotation_date, format_timestamp(now));
            assert_eq!(meta.next_rotation_date, format_timestamp(now + interval));
        }
        let text = format!("secret of era {era}").into_bytes();
        let sealed = kms.encrypt(&key, &text, &ctx).expect("encrypt");
        assert_eq!(sealed.key_version_id, meta.primary_key_version);
        let dk = kms
            .generate_data_key(
                &key,
                &GenerateDataKeyRequest::with_spec(DataKeySpec::Aes128).context(ctx.clone()),
            )
            .expect("data key");
        assert_eq!(dk.key_version_id, meta.primary_key_version);
        eras.push(Era {
            version: meta.primary_key_version.clone(),
            text_blob: sealed.ciphertext_blob,
            text,
            data_key_blob: dk.ciphertext_blob,
            data_key_b64: dk.plaintext.to_base64().to_string(),
        });
        clock.advance(interval);
    }
    // Every era's ciphertexts still decrypt, each naming its own version.
    let mut seen = std::collections::HashSet::new();
    for (i, era) in eras.iter().enumerate() {
        assert!(
            seen.insert(era.version.clone()),
            "era {i} has its own version"
        );
        let d = kms.decrypt(&era.text_blob, &ctx).expect("decrypt text");
        assert_eq!(d.key_version_id, era.version, "era {i}");
        assert_eq!(d.plaintext.expose_secret(), &era.text[..]);
        let d = kms
            .decrypt(&era.data_key_blob, &ctx)
            .expect("decrypt data key");
        assert_eq!(d.key_version_id, era.version, "era {i}");
        assert_eq!(d.wire_plaintext().as_str(), era.data_key_b64);
    }
    // The clock passed a sixth date during the loop's last advance.
    assert_eq!(versions(&kms, &key).len(), 7);
}

fn rotation_waits_for_next_rotation_date(kms: Kms, clock: ManualClock) {
    let key = kms.create_key(&rotating("7d")).expect("create").key_id;
    let v1 = kms
        .describe_key(&key)
        .expect("describe")
        .primary_key_version;
    clock.set(T0 + 7 * DAY - 1);
    let m = kms.describe_key(&key).expect("describe");
    assert_eq!(m.primary_key_version, v1, "one second early: no rotation");
    assert_eq!(m.last_rotation_date, "");
    clock.set(T0 + 7 * DAY);
    let m = kms.describe_key(&key).expect("describe");
    assert_ne!(m.primary_key_version, v1, "at NextRotationDate: rotated");
    assert_eq!(m.last_rotation_date, format_timestamp(T0 + 7 * DAY));
    assert_eq!(m.next_rotation_date, format_timestamp(T0 + 14 * DAY));
}

fn missed_intervals_make_one_version(kms: Kms, clock: ManualClock) {
    let key = kms.create_key(&rotating("10d")).expect("create").key_id;
    let later = T0 + 35 * DAY + 123;
    clock.set(later);
    let m = kms.describe_key(&key).expect("describe");
    assert_eq!(versions(&kms, &key).len(), 2, "one version, not three");
    assert_eq!(m.last_rotation_date, format_timestamp(later));
    assert_eq!(m.next_rotation_date, format_timestamp(later + 10 * DAY));
}

fn any_use_of_the_key_rotates_it(kms: Kms, clock: ManualClock) {
    let key = kms.create_key(&rotating("7d")).expect("create").key_id;
    let old = kms.encrypt(&key, b"x", &none()).expect("encrypt");
    // Decrypt alone (no Encrypt) triggers the due rotation.
    clock.set(T0 + 7 * DAY);
    let d = kms.decrypt(&old.ciphertext_blob, &none()).expect("decrypt");
    assert_eq!(d.key_version_id, old.key_version_id);
    clock.advance(5);
    let m = kms.describe_key(&key).expect("describe");
    assert_eq!(
        m.last_rotation_date,
        format_timestamp(T0 + 7 * DAY),
        "rotated when Decrypt touched the key"
    );
    // So does an alias lookup through Encrypt.
    kms.create_alias("alias/rotating", &key).expect("alias");
    clock.set(T0 + 14 * DAY);
    let e = kms
        .encrypt("alias/rotating", b"y", &none())
        .expect("encrypt");
    let m = kms.describe_key(&key).expect("describe");
    assert_eq!(e.key_version_id, m.primary_key_version);
    assert_eq!(m.last_rotation_date, format_timestamp(T0 + 14 * DAY));
    assert_eq!(versions(&kms, &key).len(), 3);
}

fn manual_versions_become_primary(kms: Kms, clock: ManualClock) {
    let key = kms.create_key(&Default::default()).expect("create").key_id;
    let v1 = kms
        .describe_key(&key)
        .expect("describe")
        .primary_key_version;
    let old = kms.encrypt(&key, b"before", &none()).expect("encrypt");
    clock.advance(100);
    let v2 = kms.create_key_version(&key).expect("new version");
    assert_eq!(v2.key_id, key);
    assert_eq!(v2.creation_date, format_timestamp(T0 + 100));
    assert_ne!(v2.key_version_id, v1);
    let m = kms.describe_key(&key).expect("describe");
    assert_eq!(m.primary_key_version, v2.key_version_id);
    assert_eq!(m.last_rotation_date, format_timestamp(T0 + 100));
    assert_eq!(m.automatic_rotation, "Disabled");
    assert_eq!(
        m.next_rotation_date, "",
        "manual rotation schedules nothing"
    );
    let new = kms.encrypt(&key, b"after", &none()).expect("encrypt");
    assert_eq!(new.key_version_id, v2.key_version_id);
    let d = kms.decrypt(&old.ciphertext_blob, &none()).expect("old");
    assert_eq!(d.key_version_id, v1);
    assert_eq!(d.plaintext.expose_secret(), b"before");
    // By ARN too; and the version is described.
    let arn = m.arn;
    let v3 = kms.create_key_version(&arn).expect("by arn");
    assert_eq!(
        kms.describe_key_version(&key, &v3.key_version_id)
            .expect("describe version"),
        v3
    );
    assert_eq!(
        kms.describe_key_version(&key, &v1)
            .expect("v1")
            .creation_date,
        format_timestamp(T0)
    );
    assert_eq!(
        versions(&kms, &key),
        vec![v1, v2.key_version_id, v3.key_version_id]
    );

    // With automatic rotation on, a manual version restarts the schedule.
    let auto = kms.create_key(&rotating("7d")).expect("create").key_id;
    clock.advance(3 * DAY);
    kms.create_key_version(&auto).expect("manual");
    let now = T0 + 100 + 3 * DAY;
    let m = kms.describe_key(&auto).expect("describe");
    assert_eq!(m.last_rotation_date, format_timestamp(now));
    assert_eq!(m.next_rotation_date, format_timestamp(now + 7 * DAY));
}

fn create_key_version_needs_an_enabled_key(kms: Kms, _clock: ManualClock) {
    let key = kms.create_key(&Default::default()).expect("create").key_id;
    kms.disable_key(&key).expect("disable");
    let e = kms.create_key_version(&key).unwrap_err();
    assert_eq!(e.code(), "Rejected.Disabled");
    assert_eq!(e.http_status(), 409);
    kms.schedule_key_deletion(&key, 7).expect("schedule");
    assert_eq!(
        kms.create_key_version(&key).unwrap_err().code(),
        "Rejected.PendingDeletion"
    );
    assert_eq!(versions(&kms, &key).len(), 1, "nothing added");
    kms.cancel_key_deletion(&key).expect("cancel");
    kms.create_key_version(&key).expect("enabled again");
    assert_eq!(versions(&kms, &key).len(), 2);
    assert_eq!(
        kms.create_key_version("").unwrap_err(),
        Error::MissingParameter("KeyId")
    );
    assert_eq!(
        kms.create_key_version("not-a-key").unwrap_err().code(),
        "Forbidden.KeyNotFound"
    );
}

fn external_keys_never_add_versions(kms: Kms, _clock: ManualClock) {
    let origin = |kms: &Kms, key: &str| {
        let e = kms.create_key_version(key).unwrap_err();
        assert_eq!(e.code(), "Unsupported.Origin", "{e}");
        assert_eq!(e.http_status(), 400);
    };
    let key = support::external(&kms);
    origin(&kms, &key); // PendingImport
    assert!(versions(&kms, &key).is_empty(), "no version before import");
    support::import(
        &kms,
        &key,
        WrappingAlgorithm::RsaesOaepSha256,
        &support::random_material(),
        None,
    )
    .expect("import");
    let imported = versions(&kms, &key);
    assert_eq!(imported.len(), 1, "the first import creates one version");
    origin(&kms, &key); // Enabled
    kms.disable_key(&key).expect("disable");
    origin(&kms, &key); // Disabled: origin before state
    kms.schedule_key_deletion(&key, 7).expect("schedule");
    origin(&kms, &key); // PendingDeletion
    assert_eq!(
        kms.update_rotation_policy(&key, true, None)
            .unwrap_err()
            .code(),
        "Unsupported.Origin"
    );
    assert_eq!(versions(&kms, &key), imported);
    let m = kms.describe_key(&key).expect("describe");
    assert_eq!(m.automatic_rotation, "Disabled");
}

/// Puts `version` (a UUID) where a v1 blob names its KeyVersionId.
fn with_version(blob: &[u8], version: &str) -> Vec<u8> {
    let mut bytes = blob.to_vec();
    bytes[38..74].copy_from_slice(version.as_bytes());
    bytes
}

fn unknown_versions_are_not_found(kms: Kms, _clock: ManualClock) {
    let a = kms.create_key(&Default::default()).expect("a").key_id;
    let b = kms.create_key(&Default::default()).expect("b").key_id;
    let b_version = kms.describe_key(&b).expect("b").primary_key_version;
    let sealed = kms.encrypt(&a, b"x", &none()).expect("encrypt");
    // A real version, but of another key.
    let e = kms
        .decrypt(&with_version(&sealed.ciphertext_blob, &b_version), &none())
        .unwrap_err();
    assert_eq!(e.code(), "Forbidden.KeyVersionNotFound");
    assert_eq!(e.http_status(), 404);
    let e = kms
        .decrypt(
            &with_version(
                &sealed.ciphertext_blob,
                "00000000-0000-4000-8000-000000000000",
            ),
            &none(),
        )
        .unwrap_err();
    assert_eq!(e.code(), "Forbidden.KeyVersionNotFound");
    // DescribeKeyVersion.
    let e = kms.describe_key_version(&a, &b_version).unwrap_err();
    assert_eq!(e.code(), "Forbidden.KeyVersionNotFound");
    assert_eq!(
        kms.describe_key_version(&a, "nope").unwrap_err().code(),
        "Forbidden.KeyVersionNotFound"
    );
    assert_eq!(
        kms.describe_key_version(&a, "").unwrap_err(),
        Error::MissingParameter("KeyVersionId")
    );
    assert_eq!(
        kms.describe_key_version("", &b_version).unwrap_err(),
        Error::MissingParameter("KeyId")
    );
    assert_eq!(
        kms.describe_key_version("00000000-0000-4000-8000-000000000000", &b_version)
            .unwrap_err()
            .code(),
        "Forbidden.KeyNotFound"
    );
}

fn key_version_ids_take_no_alias(kms: Kms, _clock: ManualClock) {
    let key = kms.create_key(&Default::default()).expect("create").key_id;
    kms.create_alias("alias/versions", &key).expect("alias");
    let v = kms
        .describe_key(&key)
        .expect("describe")
        .primary_key_version;
    let alias_arn = format!(
        "acs:kms:cn-hangzhou:{}:alias/versions",
        localkms::DEFAULT_ACCOUNT_ID
    );
    for id in ["alias/versions", alias_arn.as_str()] {
        assert_eq!(
            kms.create_key_version(id).unwrap_err(),
            Error::UnsupportedAlias("KeyId")
        );
        assert_eq!(
            kms.describe_key_version(id, &v).unwrap_err(),
            Error::UnsupportedAlias("KeyId")
        );
        assert_eq!(
            kms.list_key_versions(id, Paging::default()).unwrap_err(),
            Error::UnsupportedAlias("KeyId")
        );
        assert_eq!(
            kms.update_rotation_policy(id, true, None).unwrap_err(),
            Error::UnsupportedAlias("KeyId")
        );
        assert_eq!(
            kms.update_key_description(id, "d").unwrap_err(),
            Error::UnsupportedAlias("KeyId")
        );
    }
}

fn list_key_versions_pages(kms: Kms, clock: ManualClock) {
    let key = kms.create_key(&Default::default()).expect("create").key_id;
    let mut made = vec![
        kms.describe_key(&key)
            .expect("describe")
            .primary_key_version,
    ];
    for _ in 1..25 {
        clock.advance(1);
        made.push(
            kms.create_key_version(&key)
                .expect("version")
                .key_version_id,
        );
    }
    let mut paged = Vec::new();
    for n in 1..=3 {
        let page = kms
            .list_key_versions(&key, Paging::new(n, 10).expect("paging"))
            .expect("page");
        assert_eq!(page.total_count, 25);
        assert_eq!(page.page_number, n);
        assert_eq!(page.page_size, 10);
        assert_eq!(page.items.len(), if n < 3 { 10 } else { 5 });
        for v in &page.items {
            assert_eq!(v.key_id, key);
        }
        paged.extend(page.items);
    }
    let ids: Vec<String> = paged.iter().map(|v| v.key_version_id.clone()).collect();
    assert_eq!(ids, made, "creation order, stable");
    for (i, v) in paged.iter().enumerate() {
        assert_eq!(v.creation_date, format_timestamp(T0 + i as i64));
    }
    let past = kms
        .list_key_versions(&key, Paging::new(4, 10).expect("paging"))
        .expect("past the end");
    assert!(past.items.is_empty());
    assert_eq!(past.total_count, 25);
    let first = kms
        .list_key_versions(&key, Paging::default())
        .expect("default paging");
    assert_eq!(first.items.len(), 10);
    assert_eq!(first.page_size, 10);
    // Every key state lists.
    kms.disable_key(&key).expect("disable");
    kms.schedule_key_deletion(&key, 7).expect("schedule");
    assert_eq!(
        kms.list_key_versions(&key, Paging::default())
            .expect("pending deletion")
            .total_count,
        25
    );
    assert_eq!(
        kms.list_key_versions("", Paging::default()).unwrap_err(),
        Error::MissingParameter("KeyId")
    );
}

fn disabled_keys_rotate_only_once_enabled(kms: Kms, clock: ManualClock) {
    let key = kms.create_key(&rotating("7d")).expect("create").key_id;
    let v1 = kms
        .describe_key(&key)
        .expect("describe")
        .primary_key_version;
    kms.disable_key(&key).expect("disable");
    clock.set(T0 + 20 * DAY);
    let m = kms.describe_key(&key).expect("describe");
    assert_eq!(m.primary_key_version, v1, "a disabled key does not rotate");
    assert_eq!(m.key_state, KeyState::Disabled);
    assert_eq!(m.next_rotation_date, format_timestamp(T0 + 7 * DAY));
    assert_eq!(versions(&kms, &key).len(), 1);
    clock.set(T0 + 21 * DAY);
    kms.enable_key(&key).expect("enable");
    // The date passed while disabled: the next use rotates.
    let e = kms.encrypt(&key, b"x", &none()).expect("encrypt");
    let m = kms.describe_key(&key).expect("describe");
    assert_ne!(m.primary_key_version, v1);
    assert_eq!(e.key_version_id, m.primary_key_version);
    assert_eq!(m.last_rotation_date, format_timestamp(T0 + 21 * DAY));
    assert_eq!(m.next_rotation_date, format_timestamp(T0 + 28 * DAY));
    assert_eq!(versions(&kms, &key).len(), 2);
}

fn pending_deletion_keys_do_not_rotate(kms: Kms, clock: ManualClock) {
    let key = kms.create_key(&rotating("7d")).expect("create").key_id;
    kms.schedule_key_deletion(&key, 30).expect("schedule");
    clock.set(T0 + 8 * DAY);
    assert_eq!(versions(&kms, &key).len(), 1);
    kms.cancel_key_deletion(&key).expect("cancel");
    assert_eq!(versions(&kms, &key).len(), 2, "rotates once Enabled again");
}

fn update_rotation_policy_turns_rotation_on_and_off(kms: Kms, clock: ManualClock) {
    let key = kms.create_key(&Default::default()).expect("create").key_id;
    clock.set(T0 + DAY);
    kms.update_rotation_policy(&key, true, Some(30 * DAY as u64))
        .expect("enable");
    let m = kms.describe_key(&key).expect("describe");
    assert_eq!(m.automatic_rotation, "Enabled");
    assert_eq!(m.rotation_interval, "2592000s");
    assert_eq!(
        m.next_rotation_date,
        format_timestamp(T0 + 30 * DAY),
        "the primary version's creation plus the interval"
    );
    assert_eq!(m.last_rotation_date, "");
    // Off: nothing rotates, the dates are cleared.
    kms.update_rotation_policy(&key, false, None)
        .expect("disable");
    let m = kms.describe_key(&key).expect("describe");
    assert_eq!(m.automatic_rotation, "Disabled");
    assert_eq!(m.rotation_interval, "");
    assert_eq!(m.next_rotation_date, "");
    clock.set(T0 + 100 * DAY);
    assert_eq!(versions(&kms, &key).len(), 1, "no rotation while off");
    // On again without an interval keeps the earlier one; the date has
    // passed, so the next use rotates.
    kms.update_rotation_policy(&key, true, None)
        .expect("enable");
    let m = kms.describe_key(&key).expect("describe");
    assert_eq!(m.rotation_interval, "2592000s");
    assert_eq!(versions(&kms, &key).len(), 2);
    assert_eq!(m.last_rotation_date, format_timestamp(T0 + 100 * DAY));
    assert_eq!(m.next_rotation_date, format_timestamp(T0 + 130 * DAY));
    // A new interval reschedules from the primary version.
    kms.update_rotation_policy(&key, true, Some(parse_rotation_interval("7d").expect("7d")))
        .expect("change interval");
    let m = kms.describe_key(&key).expect("describe");
    assert_eq!(m.rotation_interval, "604800s");
    assert_eq!(m.next_rotation_date, format_timestamp(T0 + 107 * DAY));
    // A key never given an interval gets 365 days.
    let other = kms.create_key(&Default::default()).expect("create").key_id;
    kms.update_rotation_policy(&other, true, None)
        .expect("enable");
    let m = kms.describe_key(&other).expect("describe");
    assert_eq!(m.rotation_interval, "31536000s");
    // Allowed in every state.
    kms.disable_key(&other).expect("disable");
    kms.update_rotation_policy(&other, false, None)
        .expect("disabled key");
    kms.schedule_key_deletion(&other, 7).expect("schedule");
    kms.update_rotation_policy(&other, true, Some(8 * DAY as u64))
        .expect("pending deletion");
    assert_eq!(
        kms.describe_key(&other)
            .expect("describe")
            .rotation_interval,
        "691200s"
    );
}

fn update_rotation_policy_checks_its_parameters(kms: Kms, _clock: ManualClock) {
    let key = kms.create_key(&rotating("30d")).expect("create").key_id;
    let before = kms.describe_key(&key).expect("describe");
    for bad in [7 * DAY as u64 - 1, 730 * DAY as u64 + 1, 0] {
        let e = kms
            .update_rotation_policy(&key, true, Some(bad))
            .unwrap_err();
        assert_eq!(e.code(), "InvalidParameter");
        assert!(e.to_string().contains("RotationInterval"), "{e}");
    }
    kms.update_rotation_policy(&key, true, Some(7 * DAY as u64))
        .expect("7 days");
    kms.update_rotation_policy(&key, true, Some(730 * DAY as u64))
        .expect("730 days");
    kms.update_rotation_policy(&key, true, Some(30 * DAY as u64))
        .expect("back");
    assert_eq!(kms.describe_key(&key).expect("describe"), before);
    assert_eq!(
        kms.update_rotation_policy("", true, None).unwrap_err(),
        Error::MissingParameter("KeyId")
    );
    assert_eq!(
        kms.update_rotation_policy("00000000-0000-4000-8000-000000000000", true, None)
            .unwrap_err()
            .code(),
        "Forbidden.KeyNotFound"
    );
    // CreateKey checks the interval too, and creates nothing.
    let e = kms
        .create_key(&CreateKeyRequest {
            enable_automatic_rotation: true,
            rotation_interval: Some(6 * DAY as u64),
            ..CreateKeyRequest::default()
        })
        .unwrap_err();
    assert!(e.to_string().contains("RotationInterval"), "{e}");
    assert_eq!(kms.key_count().expect("count"), 1);
}

fn enabling_rotation_counts_from_the_primary_version(kms: Kms, clock: ManualClock) {
    let key = kms.create_key(&Default::default()).expect("create").key_id;
    clock.set(T0 + 50 * DAY);
    let v2 = kms.create_key_version(&key).expect("version");
    clock.set(T0 + 60 * DAY);
    kms.update_rotation_policy(&key, true, Some(7 * DAY as u64))
        .expect("enable");
    let m = kms.describe_key(&key).expect("describe");
    // 50 + 7 days has passed already: describing it rotated it.
    assert_ne!(m.primary_key_version, v2.key_version_id);
    assert_eq!(m.last_rotation_date, format_timestamp(T0 + 60 * DAY));
    assert_eq!(m.next_rotation_date, format_timestamp(T0 + 67 * DAY));
}

fn concurrent_users_of_a_due_key_make_one_version(kms: Kms, clock: ManualClock) {
    let key = kms.create_key(&rotating("7d")).expect("create").key_id;
    clock.set(T0 + 7 * DAY);
    let kms = Arc::new(kms);
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (kms, key) = (Arc::clone(&kms), key.clone());
            std::thread::spawn(move || {
                let e = kms.encrypt(&key, b"x", &none()).expect("encrypt");
                e.key_version_id
            })
        })
        .collect();
    let used: Vec<String> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    let listed = versions(&kms, &key);
    assert_eq!(listed.len(), 2, "exactly one rotation");
    for v in used {
        assert_eq!(
            v, listed[1],
            "every Encrypt after the date used the new version"
        );
    }
}

fn update_key_description_replaces_the_description(kms: Kms, clock: ManualClock) {
    let m = kms
        .create_key(&CreateKeyRequest::with_description("first"))
        .expect("create");
    let key = m.key_id.clone();
    clock.advance(10);
    kms.update_key_description(&key, "second").expect("update");
    let after = kms.describe_key(&key).expect("describe");
    assert_eq!(after.description, "second");
    let mut expected = after.clone();
    expected.description = "first".into();
    assert_eq!(expected, m, "nothing else changes");
    let ok = "é".repeat(8192);
    kms.update_key_description(&key, &ok).expect("8192");
    assert_eq!(kms.describe_key(&key).expect("describe").description, ok);
    let e = kms
        .update_key_description(&key, &"a".repeat(8193))
        .unwrap_err();
    assert_eq!(e.code(), "InvalidParameter");
    assert!(e.to_string().contains("Description"), "{e}");
    assert_eq!(kms.describe_key(&key).expect("describe").description, ok);
    assert_eq!(
        kms.update_key_description(&key, "").unwrap_err(),
        Error::MissingParameter("Description")
    );
    assert_eq!(
        kms.update_key_description("", "x").unwrap_err(),
        Error::MissingParameter("KeyId")
    );
    assert_eq!(
        kms.update_key_description("nope", "x").unwrap_err().code(),
        "Forbidden.KeyNotFound"
    );
    // Every state.
    kms.disable_key(&key).expect("disable");
    kms.update_key_description(&key, "disabled")
        .expect("disabled");
    kms.schedule_key_deletion(&key, 7).expect("schedule");
    kms.update_key_description(&key, "pending")
        .expect("pending");
    let ext = support::external(&kms);
    kms.update_key_description(&ext, "import me")
        .expect("pending import");
    assert_eq!(
        kms.describe_key(&key).expect("describe").description,
        "pending"
    );
    assert_eq!(
        kms.describe_key(&ext).expect("describe").description,
        "import me"
    );
}

// ---- durability ---------------------------------------------------------------

#[test]
fn rotation_survives_a_sled_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(T0);
    let open = || {
        sled_reopen::build_retrying(|| {
            Kms::builder()
                .sled(dir.path())
                .root_key_bytes(&[9u8; 32])
                .clock(clock.clone())
                .build()
        })
    };
    let kms = open();
    let key = kms.create_key(&rotating("7d")).expect("create").key_id;
    let first = kms.encrypt(&key, b"one", &none()).expect("encrypt");
    clock.set(T0 + 7 * DAY);
    let second = kms.encrypt(&key, b"two", &none()).expect("encrypt");
    clock.set(T0 + 8 * DAY);
    let manual = kms.create_key_version(&key).expect("manual");
    let before = kms.describe_key(&key).expect("describe");
    let listed = versions(&kms, &key);
    assert_eq!(listed.len(), 3);
    drop(kms);

    let kms = open();
    assert_eq!(kms.describe_key(&key).expect("describe"), before);
    assert_eq!(before.primary_key_version, manual.key_version_id);
    assert_eq!(before.next_rotation_date, format_timestamp(T0 + 15 * DAY));
    assert_eq!(versions(&kms, &key), listed);
    for (sealed, text) in [(&first, &b"one"[..]), (&second, &b"two"[..])] {
        let d = kms
            .decrypt(&sealed.ciphertext_blob, &none())
            .expect("decrypt");
        assert_eq!(d.key_version_id, sealed.key_version_id);
        assert_eq!(d.plaintext.expose_secret(), text);
    }
    assert_ne!(first.key_version_id, second.key_version_id);
    // The schedule kept running across the reopen.
    clock.set(T0 + 15 * DAY);
    let third = kms.encrypt(&key, b"three", &none()).expect("encrypt");
    assert_eq!(versions(&kms, &key).len(), 4);
    drop(kms);
    let kms = open();
    let d = kms
        .decrypt(&third.ciphertext_blob, &none())
        .expect("decrypt");
    assert_eq!(d.plaintext.expose_secret(), b"three");
    assert_eq!(
        kms.describe_key(&key)
            .expect("describe")
            .primary_key_version,
        third.key_version_id
    );
}

// ---- atomicity ----------------------------------------------------------------

/// A memory keystore whose `apply` can be made to fail, recording every
/// batch it applies. Clones share the same records, so a service can be
/// reopened over them.
#[derive(Debug, Default)]
struct FlakyState {
    inner: MemoryKeystore,
    failing: AtomicBool,
    applied: Mutex<Vec<Vec<Op>>>,
}

#[derive(Debug, Clone, Default)]
struct Flaky(Arc<FlakyState>);

impl std::ops::Deref for Flaky {
    type Target = FlakyState;
    fn deref(&self) -> &FlakyState {
        &self.0
    }
}

impl Keystore for Flaky {
    fn get(&self, ns: &str, id: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(ns, id)
    }
    fn scan(&self, ns: &str, scan: Scan<'_>) -> Result<Vec<Record>, StoreError> {
        self.inner.scan(ns, scan)
    }
    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Io("injected failure".into()));
        }
        self.applied
            .lock()
            .expect("lock")
            .push(batch.ops().to_vec());
        self.inner.apply(batch)
    }
    fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush()
    }
}

fn flaky() -> (Kms, ManualClock, Flaky) {
    let clock = ManualClock::new(T0);
    let store = Flaky::default();
    let kms = Kms::builder()
        .keystore(store.clone())
        .root_key_bytes(&[5u8; 32])
        .clock(clock.clone())
        .build()
        .expect("build");
    (kms, clock, store)
}

fn stored_materials(store: &Flaky, key: &str) -> usize {
    store
        .inner
        .scan("material", Scan::prefix(format!("{key}/").as_bytes()))
        .expect("scan")
        .len()
}

#[test]
fn a_failed_manual_rotation_keeps_the_old_primary() {
    let (kms, _clock, store) = flaky();
    let key = kms.create_key(&Default::default()).expect("create").key_id;
    let old = kms.encrypt(&key, b"kept", &none()).expect("encrypt");
    store.failing.store(true, Ordering::SeqCst);
    let e = kms.create_key_version(&key).unwrap_err();
    assert_eq!(e.code(), "InternalFailure");
    store.failing.store(false, Ordering::SeqCst);
    let m = kms.describe_key(&key).expect("describe");
    assert_eq!(m.primary_key_version, old.key_version_id);
    assert_eq!(m.last_rotation_date, "");
    assert_eq!(versions(&kms, &key), vec![old.key_version_id.clone()]);
    assert_eq!(stored_materials(&store, &key), 1, "no orphan material");
    let again = kms
        .encrypt(&key, b"still", &none())
        .expect("still encrypts");
    assert_eq!(again.key_version_id, old.key_version_id);
    let d = kms.decrypt(&old.ciphertext_blob, &none()).expect("decrypt");
    assert_eq!(d.plaintext.expose_secret(), b"kept");
    // A reopen over the same records agrees (nothing half-written).
    let reopened = Kms::builder()
        .keystore(store.clone())
        .root_key_bytes(&[5u8; 32])
        .build()
        .expect("reopen");
    assert_eq!(
        reopened
            .describe_key(&key)
            .expect("describe")
            .primary_key_version,
        old.key_version_id
    );
}

#[test]
fn a_failed_automatic_rotation_keeps_the_old_primary_and_retries() {
    let (kms, clock, store) = flaky();
    let key = kms.create_key(&rotating("7d")).expect("create").key_id;
    let old = kms.encrypt(&key, b"kept", &none()).expect("encrypt");
    clock.set(T0 + 7 * DAY);
    store.failing.store(true, Ordering::SeqCst);
    assert_eq!(
        kms.encrypt(&key, b"x", &none()).unwrap_err().code(),
        "InternalFailure"
    );
    // What the store holds: the old key, whole.
    let reopened = Kms::builder()
        .keystore(store.clone())
        .root_key_bytes(&[5u8; 32])
        .clock(ManualClock::new(T0))
        .build()
        .expect("reopen at T0");
    let m = reopened.describe_key(&key).expect("describe");
    assert_eq!(m.primary_key_version, old.key_version_id);
    assert_eq!(m.last_rotation_date, "");
    assert_eq!(stored_materials(&store, &key), 1);
    let e = reopened
        .encrypt(&key, b"y", &none())
        .expect("still encrypts");
    assert_eq!(e.key_version_id, old.key_version_id);
    drop(reopened);

    // Once the store works, the next use rotates, in one batch.
    store.failing.store(false, Ordering::SeqCst);
    store.applied.lock().expect("lock").clear();
    let new = kms.encrypt(&key, b"z", &none()).expect("encrypt");
    assert_ne!(new.key_version_id, old.key_version_id);
    let batches = store.applied.lock().expect("lock").clone();
    let material_id = format!("{key}/{}", new.key_version_id);
    let rotation: Vec<&Vec<Op>> = batches
        .iter()
        .filter(|ops| {
            ops.iter().any(|op| {
                matches!(op, Op::Put { ns: "material", id, .. } if id == material_id.as_bytes())
            })
        })
        .collect();
    assert_eq!(rotation.len(), 1, "the new material was written once");
    assert!(
        rotation[0]
            .iter()
            .any(|op| matches!(op, Op::Put { ns: "key", id, .. } if id == key.as_bytes())),
        "the key record that names the new version is in the same batch"
    );
    let d = kms.decrypt(&old.ciphertext_blob, &none()).expect("decrypt");
    assert_eq!(d.plaintext.expose_secret(), b"kept");
}

#[test]
fn interval_given_at_creation_is_kept_for_a_later_policy_update() {
    let kms = localkms::Kms::in_memory().expect("kms");
    let key = kms
        .create_key(&localkms::CreateKeyRequest {
            enable_automatic_rotation: false,
            rotation_interval: Some(30 * 86_400),
            ..Default::default()
        })
        .expect("create")
        .key_id;
    assert_eq!(
        kms.describe_key(&key).expect("describe").rotation_interval,
        ""
    );
    kms.update_rotation_policy(&key, true, None)
        .expect("enable rotation");
    assert_eq!(
        kms.describe_key(&key).expect("describe").rotation_interval,
        "2592000s"
    );
}
