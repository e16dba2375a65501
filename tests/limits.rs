//! The store-wide key limit (`KmsBuilder::max_keys`).

mod sled_reopen;

use localkms::{CreateKeyRequest, Kms, ManualClock};

const T0: i64 = 1_700_000_000;
const DAY: i64 = 86_400;

#[test]
fn the_key_limit_holds_and_deletion_frees_a_slot() {
    let clock = ManualClock::new(T0);
    let kms = Kms::builder()
        .clock(clock.clone())
        .max_keys(2)
        .build()
        .unwrap();
    let a = kms.create_key(&CreateKeyRequest::default()).unwrap().key_id;
    kms.create_key(&CreateKeyRequest::external()).unwrap();
    for req in [CreateKeyRequest::default(), CreateKeyRequest::external()] {
        let e = kms.create_key(&req).unwrap_err();
        assert_eq!(e.code(), "Rejected.LimitExceeded");
        assert_eq!(e.http_status(), 400);
    }
    assert_eq!(kms.key_count().unwrap(), 2);
    assert_eq!(kms.list_keys(Default::default()).unwrap().total_count, 2);
    // A key pending deletion still holds its slot...
    kms.schedule_key_deletion(&a, 7).unwrap();
    clock.advance(7 * DAY - 1);
    assert_eq!(
        kms.create_key(&CreateKeyRequest::default())
            .unwrap_err()
            .code(),
        "Rejected.LimitExceeded"
    );
    // ...until its DeleteDate: CreateKey purges it without any other call.
    clock.advance(1);
    kms.create_key(&CreateKeyRequest::default()).unwrap();
    assert_eq!(kms.key_count().unwrap(), 2);
    assert_eq!(
        kms.create_key(&CreateKeyRequest::default())
            .unwrap_err()
            .code(),
        "Rejected.LimitExceeded"
    );
}

#[test]
fn the_key_limit_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let open = || {
        sled_reopen::build_retrying(|| {
            Kms::builder()
                .sled(dir.path())
                .root_key_bytes(&[9; 32])
                .clock(clock.clone())
                .max_keys(3)
                .build()
        })
    };
    let first;
    {
        let kms = open();
        first = kms.create_key(&CreateKeyRequest::default()).unwrap().key_id;
        kms.create_key(&CreateKeyRequest::default()).unwrap();
        kms.create_key(&CreateKeyRequest::default()).unwrap();
        kms.schedule_key_deletion(&first, 30).unwrap();
    }
    {
        let kms = open();
        assert_eq!(kms.key_count().unwrap(), 3);
        assert_eq!(
            kms.create_key(&CreateKeyRequest::default())
                .unwrap_err()
                .code(),
            "Rejected.LimitExceeded"
        );
        clock.advance(30 * DAY);
        assert_eq!(kms.purge_expired().unwrap(), 1);
        assert_eq!(kms.key_count().unwrap(), 2);
    }
    let kms = open();
    assert_eq!(kms.key_count().unwrap(), 2);
    kms.create_key(&CreateKeyRequest::default()).unwrap();
    assert_eq!(
        kms.create_key(&CreateKeyRequest::default())
            .unwrap_err()
            .code(),
        "Rejected.LimitExceeded"
    );
}

#[test]
fn no_limit_by_default() {
    let kms = Kms::in_memory().unwrap();
    assert_eq!(kms.config().max_keys, None);
    for _ in 0..50 {
        kms.create_key(&CreateKeyRequest::default()).unwrap();
    }
    assert_eq!(kms.key_count().unwrap(), 50);
}
