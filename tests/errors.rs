//! Every error variant maps to the code and HTTP status of SPEC section 3.

use localkms::{Error, KeyState, Rejection};

#[test]
fn every_variant_has_its_spec_code_and_status() {
    let rejected = |rejection| Error::Rejected {
        rejection,
        key_id: "k".into(),
        state: KeyState::Disabled,
    };
    let table: Vec<(Error, &str, u16)> = vec![
        (Error::MissingParameter("KeyId"), "MissingParameter", 400),
        (
            Error::InvalidParameter {
                param: "PageSize",
                reason: "x".into(),
            },
            "InvalidParameter",
            400,
        ),
        (Error::DecryptionFailed, "InvalidParameter", 400),
        (Error::KeyNotFound("k".into()), "Forbidden.KeyNotFound", 404),
        (
            Error::AliasNotFound("alias/a".into()),
            "Forbidden.AliasNotFound",
            404,
        ),
        (
            Error::KeyVersionNotFound("v".into()),
            "Forbidden.KeyVersionNotFound",
            404,
        ),
        (
            Error::AliasAlreadyExists("alias/a".into()),
            "AliasAlreadyExists",
            400,
        ),
        (
            Error::LimitExceeded("tags".into()),
            "Rejected.LimitExceeded",
            400,
        ),
        (Error::InvalidKeyMaterial, "InvalidKeyMaterial", 400),
        (Error::InvalidImportToken, "InvalidImportToken", 400),
        (Error::ExpiredImportToken, "ExpiredImportToken", 400),
        (
            Error::UnsupportedOrigin {
                key_id: "k".into(),
                reason: "r",
            },
            "Unsupported.Origin",
            400,
        ),
        (Error::UnsupportedAlias("KeyId"), "Unsupported.Alias", 400),
        (
            Error::UnsupportedOperation("x".into()),
            "UnsupportedOperation",
            400,
        ),
        (rejected(Rejection::Disabled), "Rejected.Disabled", 409),
        (
            rejected(Rejection::PendingDeletion),
            "Rejected.PendingDeletion",
            409,
        ),
        (
            rejected(Rejection::PendingImport),
            "Rejected.PendingImport",
            409,
        ),
        (
            rejected(Rejection::StateModifiedFailed),
            "Rejected.StateModifiedFailed",
            409,
        ),
        (Error::WrongRootKey, "InternalFailure", 500),
        (Error::InternalFailure, "InternalFailure", 500),
        (
            Error::IncompleteSignature("x".into()),
            "IncompleteSignature",
            400,
        ),
        (Error::IllegalTimestamp, "IllegalTimestamp", 400),
        (Error::SignatureNonceUsed, "SignatureNonceUsed", 400),
        (
            Error::InvalidAccessKeyId,
            "InvalidAccessKeyId.NotFound",
            404,
        ),
        (
            Error::InvalidAction("X".into()),
            "InvalidAction.NotFound",
            404,
        ),
        (
            Error::UnsupportedHttpMethod("PUT".into()),
            "UnsupportedHTTPMethod",
            403,
        ),
        (Error::Throttling, "Rejected.Throttling", 429),
        (
            Error::ServiceUnavailable,
            "ServiceUnavailableTemporary",
            503,
        ),
    ];
    for (e, code, status) in table {
        assert_eq!(e.code(), code, "{e:?}");
        assert_eq!(e.http_status(), status, "{e:?}");
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn messages_name_the_parameter_and_decryption_failures_are_uniform() {
    assert!(
        Error::MissingParameter("PendingWindowInDays")
            .to_string()
            .contains("PendingWindowInDays")
    );
    assert!(
        Error::UnsupportedAlias("KeyId")
            .to_string()
            .contains("KeyId")
    );
    let e = Error::InvalidParameter {
        param: "Description",
        reason: "too long".into(),
    };
    assert!(e.to_string().contains("Description"));
    assert_eq!(
        Error::DecryptionFailed.to_string(),
        localkms::DECRYPTION_FAILED_MESSAGE
    );
    assert_eq!(
        Error::InvalidKeyMaterial.to_string(),
        localkms::INVALID_KEY_MATERIAL_MESSAGE
    );
}

#[test]
fn region_and_account_configure_arns_and_creator() {
    let kms = localkms::Kms::builder()
        .in_memory()
        .region_id("cn-shanghai")
        .account_id("5555666677778888")
        .build()
        .expect("build");
    let m = kms.create_key(&Default::default()).expect("create");
    assert_eq!(
        m.arn,
        format!("acs:kms:cn-shanghai:5555666677778888:key/{}", m.key_id)
    );
    assert_eq!(m.creator, "5555666677778888");
    assert_eq!(kms.describe_key(&m.arn).expect("by arn").key_id, m.key_id);
    let default_arn = format!(
        "acs:kms:cn-hangzhou:{}:key/{}",
        localkms::DEFAULT_ACCOUNT_ID,
        m.key_id
    );
    assert_eq!(
        kms.describe_key(&default_arn).unwrap_err().code(),
        "Forbidden.KeyNotFound"
    );
}

#[test]
fn a_custom_keystore_plugs_in() {
    #[derive(Debug, Default)]
    struct Counting {
        inner: localkms::store::MemoryKeystore,
        applies: std::sync::atomic::AtomicUsize,
    }
    use localkms::store::{Batch, Keystore, Record, Scan, StoreError};
    impl Keystore for Counting {
        fn get(&self, ns: &str, id: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            self.inner.get(ns, id)
        }
        fn scan(&self, ns: &str, scan: Scan<'_>) -> Result<Vec<Record>, StoreError> {
            self.inner.scan(ns, scan)
        }
        fn apply(&self, batch: Batch) -> Result<(), StoreError> {
            self.applies
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner.apply(batch)
        }
        fn flush(&self) -> Result<(), StoreError> {
            self.inner.flush()
        }
        // A backend for several writers compares and applies atomically.
        fn apply_if(
            &self,
            expect: &[localkms::store::Expect<'_>],
            batch: Batch,
        ) -> Result<Result<(), localkms::store::Conflict>, StoreError> {
            self.applies
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner.apply_if(expect, batch)
        }
    }
    let kms = localkms::Kms::builder()
        .keystore(Counting::default())
        .root_key_bytes(&[3; 32])
        .build()
        .expect("build");
    let id = kms.create_key(&Default::default()).expect("create").key_id;
    kms.disable_key(&id).expect("disable");
    assert_eq!(
        kms.describe_key(&id).expect("describe").key_state,
        KeyState::Disabled
    );
    // The conformance suite is public for exactly this kind of backend.
    localkms::store::conformance::run_all(|| Box::new(Counting::default()));
}
