//! How an application tests its own KMS code with the toolkit: a small
//! application module (`app`) and its tests, using a manual clock through a
//! deletion window, deterministic blobs checked against a committed
//! snapshot, and injected throttling that exercises the retry loop.
//!
//! Regenerate the snapshot after a deliberate format change with
//! `UPDATE_SNAPSHOTS=1 cargo test --all-features --test toolkit_example`.

use std::sync::Arc;

use localkms::{CiphertextBlob, EncryptionContext, Error, Fault, Kms, ManualClock, MemoryAudit};

/// The application under test.
mod app {
    use super::*;

    /// The alias the application encrypts under.
    pub const KEY: &str = "alias/cards";

    /// Retries a KMS call on throttling and temporary unavailability, at
    /// most `MAX_ATTEMPTS` times. (A real application sleeps with backoff
    /// between attempts; the sleep is left out here.)
    pub const MAX_ATTEMPTS: u32 = 4;

    pub fn with_retries<T>(mut call: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
        let mut attempt = 1;
        loop {
            match call() {
                Err(Error::Throttling | Error::ServiceUnavailable) if attempt < MAX_ATTEMPTS => {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn context(customer: &str) -> EncryptionContext {
        EncryptionContext::from_pairs([("customer", customer)]).expect("valid context")
    }

    /// Seals a card number for a customer.
    pub fn seal_card(kms: &Kms, customer: &str, card: &str) -> Result<CiphertextBlob, Error> {
        with_retries(|| kms.encrypt(KEY, card.as_bytes(), &context(customer)))
            .map(|r| r.ciphertext_blob)
    }

    /// Opens a sealed card number; `None` once the key is gone for good.
    pub fn open_card(kms: &Kms, customer: &str, blob: &[u8]) -> Result<Option<String>, Error> {
        match with_retries(|| kms.decrypt(blob, &context(customer))) {
            Ok(d) => Ok(Some(
                String::from_utf8_lossy(d.plaintext.expose_secret()).into_owned(),
            )),
            Err(Error::KeyNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Retires the application's key: deleted after the shortest window.
    pub fn retire_key(kms: &Kms) -> Result<(), Error> {
        let key = kms.describe_key(KEY)?.key_id;
        kms.schedule_key_deletion(&key, 7)
    }
}

/// The fixture every test starts from: one key with a fixed id, behind the
/// application's alias.
const FIXTURE: &str = r#"{
  "Keys": [{
    "KeyId": "c0ffee00-0000-4000-8000-000000000001",
    "Description": "card numbers",
    "Aliases": ["alias/cards"],
    "Tags": [{"TagKey": "app", "TagValue": "cards"}]
  }]
}"#;

const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn service() -> (Kms, ManualClock) {
    let clock = ManualClock::new(T0);
    let kms = Kms::builder().clock(clock.clone()).build().expect("kms");
    kms.load_fixtures(FIXTURE).expect("fixture");
    (kms, clock)
}

#[test]
fn cards_survive_until_the_deletion_window_ends() {
    let (kms, clock) = service();
    let blob = app::seal_card(&kms, "alice", "4111111111111111").unwrap();
    assert_eq!(
        app::open_card(&kms, "alice", &blob).unwrap().as_deref(),
        Some("4111111111111111")
    );
    // Another customer's context does not open it.
    assert!(app::open_card(&kms, "bob", &blob).is_err());

    app::retire_key(&kms).unwrap();
    // Inside the window the key refuses to decrypt, and can be recovered.
    clock.advance(6 * 86_400);
    let e = app::open_card(&kms, "alice", &blob).unwrap_err();
    assert_eq!(e.code(), "Rejected.PendingDeletion");
    // At DeleteDate the key is gone: the application reports the card lost.
    clock.advance(86_400);
    assert_eq!(app::open_card(&kms, "alice", &blob).unwrap(), None);
    assert_eq!(
        kms.describe_key(app::KEY).unwrap_err().code(),
        "Forbidden.AliasNotFound"
    );
}

#[test]
fn retries_ride_out_throttling() {
    let (kms, _) = service();
    let audit = Arc::new(MemoryAudit::new());
    kms.set_audit_sink(audit.clone());

    // Fewer failures than attempts: the application succeeds.
    kms.faults()
        .fail_next("Encrypt", app::MAX_ATTEMPTS as u64 - 1, Fault::Throttling)
        .unwrap();
    let blob = app::seal_card(&kms, "alice", "4111").unwrap();
    let outcomes: Vec<_> = audit.take().iter().map(|e| e.outcome).collect();
    assert_eq!(
        outcomes,
        [
            "Rejected.Throttling",
            "Rejected.Throttling",
            "Rejected.Throttling",
            "Success"
        ]
    );

    // Temporary unavailability is retried too.
    kms.faults()
        .fail_next("Decrypt", 1, Fault::ServiceUnavailable)
        .unwrap();
    assert_eq!(
        app::open_card(&kms, "alice", &blob).unwrap().as_deref(),
        Some("4111")
    );
    assert_eq!(audit.take().len(), 2);

    // More failures than attempts: the application gives up with the error.
    kms.faults()
        .fail_next("Encrypt", 10, Fault::Throttling)
        .unwrap();
    let e = app::seal_card(&kms, "alice", "4111").unwrap_err();
    assert_eq!((e.code(), e.http_status()), ("Rejected.Throttling", 429));
    assert_eq!(audit.take().len(), app::MAX_ATTEMPTS as usize);

    // An internal failure is not retried.
    kms.faults().clear();
    kms.faults()
        .fail_next("Encrypt", 1, Fault::InternalFailure)
        .unwrap();
    assert_eq!(
        app::seal_card(&kms, "alice", "4111").unwrap_err().code(),
        "InternalFailure"
    );
    assert_eq!(audit.take().len(), 1);
}

/// Deterministic mode: the same seed, fixture and calls give the same
/// blobs, checked against `tests/data/toolkit-snapshot.json`.
#[cfg(feature = "test-util")]
#[test]
fn blobs_match_the_snapshot() {
    const SNAPSHOT: &str = "tests/data/toolkit-snapshot.json";
    let kms = Kms::builder()
        .clock(ManualClock::new(T0))
        .insecure_deterministic(2026)
        .build()
        .unwrap();
    kms.load_fixtures(FIXTURE).unwrap();
    let alice = app::seal_card(&kms, "alice", "4111111111111111").unwrap();
    let bob = app::seal_card(&kms, "bob", "5500000000000004").unwrap();
    let version = kms.describe_key(app::KEY).unwrap().primary_key_version;
    let got = serde_json::json!({
        "KeyVersionId": version,
        "alice": alice.to_base64(),
        "bob": bob.to_base64(),
    });
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SNAPSHOT);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
    }
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("snapshot file")).unwrap();
    assert_eq!(got, want, "blobs differ from {SNAPSHOT}");
    // The snapshot blobs still open.
    assert_eq!(
        app::open_card(
            &kms,
            "alice",
            &CiphertextBlob::from_base64(want["alice"].as_str().unwrap()).unwrap()
        )
        .unwrap()
        .as_deref(),
        Some("4111111111111111")
    );
}
