//! A toolkit for testing applications that use the service: a deterministic
//! random source (feature `test-util`), JSON fixtures, fault injection and an
//! audit trail.
//!
//! Every public operation of [`Kms`] runs through [`Kms::operation`]: it
//! checks the fault rules, runs the operation, and hands an [`AuditEvent`]
//! to the audit sink. Operations called from inside another operation on
//! the same thread (Decrypt inside ReEncrypt, or any call made by a reader,
//! writer or audit sink that an operation is running) are neither faulted
//! nor audited again.
//!
//! The README's testing example (kept identical, so it is tested here):
//!
//! ```
//! use std::sync::Arc;
//! use localkms::{EncryptionContext, Fault, Kms, ManualClock, MemoryAudit};
//!
//! let clock = ManualClock::new(1_767_225_600); // 2026-01-01T00:00:00Z
//! let kms = Kms::builder().clock(clock.clone()).build()?;
//!
//! // Fixtures: keys with fixed ids, aliases, tags, states and dates (docs/FIXTURES.md).
//! kms.load_fixtures(r#"{"Keys": [{
//!     "KeyId": "c0ffee00-0000-4000-8000-000000000001",
//!     "Aliases": ["alias/cards"],
//!     "Tags": [{"TagKey": "app", "TagValue": "cards"}]
//! }]}"#)?;
//!
//! // Audit trail: one event per operation (never plaintext, material or tokens).
//! let audit = Arc::new(MemoryAudit::new());
//! kms.set_audit_sink(audit.clone());
//!
//! // Fault injection, at run time, for the Rust API and the wire alike.
//! kms.faults().fail_next("Encrypt", 2, Fault::Throttling)?;
//! let ctx = EncryptionContext::empty();
//! let mut attempts = 0;
//! let sealed = loop {
//!     attempts += 1;
//!     match kms.encrypt("alias/cards", b"4111", &ctx) {
//!         Err(e) if e.code() == "Rejected.Throttling" => continue, // 429: retry
//!         other => break other?,
//!     }
//! };
//! assert_eq!(attempts, 3);
//! assert_eq!(audit.events().len(), 3);
//!
//! // Time: a deletion window passes in an instant.
//! kms.schedule_key_deletion("c0ffee00-0000-4000-8000-000000000001", 7)?;
//! clock.advance(7 * 86_400);
//! assert_eq!(kms.decrypt(&sealed.ciphertext_blob, &ctx).unwrap_err().code(), "Forbidden.KeyNotFound");
//! # Ok::<(), localkms::Error>(())
//! ```

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use crate::audit::{AuditEvent, AuditSink};
use crate::error::Result;
use crate::faults::Faults;
use crate::kms::Kms;

/// The toolkit state of one [`Kms`].
#[derive(Default)]
pub(crate) struct Toolkit {
    pub(crate) rng: crate::rng::Rng,
    pub(crate) faults: Faults,
    audit_on: AtomicBool,
    audit: RwLock<Option<Arc<dyn AuditSink>>>,
}

impl fmt::Debug for Toolkit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Toolkit")
            .field("rng", &self.rng)
            .field("faults", &self.faults)
            .field("audit", &self.audit_on)
            .finish()
    }
}

thread_local! {
    /// How many operations are running on this thread (nested ones are not
    /// faulted or audited).
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// Set when the outermost operation on this thread has been audited.
    static AUDITED: Cell<bool> = const { Cell::new(false) };
}

/// Leaves an operation (also on unwind).
struct DepthGuard;

impl DepthGuard {
    /// Enters an operation; true if it is the outermost on this thread.
    fn enter() -> (Self, bool) {
        let outer = DEPTH.with(|d| {
            let v = d.get();
            d.set(v.saturating_add(1));
            v == 0
        });
        (Self, outer)
    }
}

impl Drop for DepthGuard {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// What an operation's response says about the key it used.
pub(crate) trait Audited {
    /// The KeyId and KeyVersionId the response names.
    fn audit_ids(&self) -> (Option<&str>, Option<&str>) {
        (None, None)
    }
}

/// Implements [`Audited`] for response types from the ids they carry.
macro_rules! audited_ids {
    ($($t:ty => |$r:ident| $e:expr;)*) => {
        $(impl $crate::kms::instrument::Audited for $t {
            fn audit_ids(&self) -> (Option<&str>, Option<&str>) {
                let $r = self;
                $e
            }
        })*
    };
}

pub(crate) use audited_ids;

pub(crate) fn nonempty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

audited_ids! {
    crate::types::KeyMetadata => |r| (Some(&r.key_id), nonempty(&r.primary_key_version));
}

impl Audited for () {}
impl Audited for zeroize::Zeroizing<Vec<u8>> {}
impl<T> Audited for Vec<T> {}
impl<T> Audited for crate::paging::Page<T> {}

/// One `tracing` event per public operation (SPEC section 13), target
/// `localkms`: the action, the key (the resolved id when the response names
/// it, else the parameter as given), the outcome (`Success` or the error
/// code) and the duration. Success is `DEBUG`, failure `INFO`. Never a
/// secret: responses are not formatted, and error codes carry no input.
fn trace<T: Audited>(
    action: &'static str,
    key_param: &str,
    result: &Result<T>,
    elapsed: std::time::Duration,
) {
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    match result {
        Ok(v) => {
            let key = v
                .audit_ids()
                .0
                .map(str::to_owned)
                .or_else(|| key_of_param(key_param));
            tracing::debug!(
                target: "localkms",
                action,
                key_id = key.as_deref().unwrap_or(""),
                outcome = "Success",
                duration_us = micros,
                "operation"
            );
        }
        Err(e) => {
            let key = key_of_param(key_param);
            tracing::info!(
                target: "localkms",
                action,
                key_id = key.as_deref().unwrap_or(""),
                outcome = e.code(),
                duration_us = micros,
                "operation"
            );
        }
    }
}

/// The key a `KeyId` parameter names, for an event: the id inside a key
/// ARN, else the parameter as given (shortened).
fn key_of_param(param: &str) -> Option<String> {
    if param.is_empty() {
        return None;
    }
    let id = param
        .strip_prefix("acs:kms:")
        .and_then(|r| r.rsplit_once(":key/"))
        .map_or(param, |(_, id)| id);
    Some(crate::error::shorten(id))
}

impl Kms {
    /// Runs one public operation: checks the fault rules for `action`, runs
    /// `f`, and records the outcome with the audit sink. `key_param` is the
    /// operation's `KeyId` parameter ("" if it has none). A write that lost
    /// to another writer (in this process or another) applied nothing: `f`
    /// runs again on fresh reads ([`Kms::retrying`]).
    pub(crate) fn operation<T: Audited>(
        &self,
        action: &'static str,
        key_param: &str,
        mut f: impl FnMut() -> Result<T>,
    ) -> Result<T> {
        self.operation_once(action, key_param, || self.retrying(&mut f))
    }

    /// [`Kms::operation`] for an operation that cannot run twice (it
    /// consumes a stream): a lost write race is returned to the caller as
    /// a retryable [`StoreError::Conflict`](crate::store::StoreError::Conflict).
    pub(crate) fn operation_once<T: Audited>(
        &self,
        action: &'static str,
        key_param: &str,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let (_guard, outer) = DepthGuard::enter();
        if !outer {
            return f();
        }
        let audit = self.toolkit.audit_on.load(Ordering::Acquire);
        let time = if audit { self.clock.now() } else { 0 };
        let started = tracing::enabled!(target: "localkms", tracing::Level::INFO)
            .then(std::time::Instant::now);
        let result = if action == "DescribeRegions" {
            f()
        } else {
            self.toolkit.faults.check(action).and_then(|()| f())
        };
        if let Some(started) = started {
            trace(action, key_param, &result, started.elapsed());
        }
        if audit {
            self.audit(action, key_param, time, &result);
        }
        result
    }

    /// Runs a wire action: a request refused before it reaches an operation
    /// (a missing or malformed parameter) is audited here, as the action.
    #[cfg_attr(not(feature = "wire"), allow(dead_code))] // used by the wire layer only
    pub(crate) fn wire_action<T>(
        &self,
        action: &'static str,
        key_param: Option<&str>,
        run: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        if !self.toolkit.audit_on.load(Ordering::Acquire) {
            return run();
        }
        AUDITED.with(|a| a.set(false));
        let time = self.clock.now();
        let result = run();
        if let Err(e) = &result
            && !AUDITED.with(Cell::get)
        {
            // As a nested operation, so a sink that calls the service is
            // not audited in turn.
            self.quietly(|| {
                self.audit::<()>(action, key_param.unwrap_or(""), time, &Err(e.clone()));
            });
        }
        result
    }

    /// Runs `f` as part of an operation that is neither faulted nor audited
    /// (fixture loading).
    pub(crate) fn quietly<T>(&self, f: impl FnOnce() -> T) -> T {
        let (_guard, _) = DepthGuard::enter();
        f()
    }

    fn audit<T: Audited>(&self, action: &'static str, key_param: &str, time: i64, r: &Result<T>) {
        let Ok(guard) = self.toolkit.audit.read() else {
            return;
        };
        let Some(sink) = guard.as_ref().map(Arc::clone) else {
            return;
        };
        drop(guard);
        let (key_id, key_version_id, outcome) = match r {
            Ok(v) => {
                let (k, ver) = v.audit_ids();
                (
                    k.map(str::to_owned).or_else(|| key_of_param(key_param)),
                    ver.map(str::to_owned),
                    if self.in_dry_run() {
                        "DryRunOperationError"
                    } else {
                        "Success"
                    },
                )
            }
            Err(e) => (key_of_param(key_param), None, e.code()),
        };
        AUDITED.with(|a| a.set(true));
        let request_id = crate::audit::current_request_id();
        sink.record(&AuditEvent {
            time,
            action,
            key_id,
            key_version_id,
            outcome,
            request_id,
        });
    }

    /// The fault rules, changeable at any time (see [`Faults`]). They apply
    /// to the Rust API and to [`wire::dispatch`](crate::wire::dispatch)
    /// alike. Available in every build: with no rule set they cost one
    /// atomic load per operation.
    pub fn faults(&self) -> &Faults {
        &self.toolkit.faults
    }

    /// Sends an [`AuditEvent`] for every later operation to `sink`,
    /// replacing any sink set before.
    pub fn set_audit_sink(&self, sink: Arc<dyn AuditSink>) {
        if let Ok(mut s) = self.toolkit.audit.write() {
            *s = Some(sink);
            self.toolkit.audit_on.store(true, Ordering::Release);
        }
    }

    /// Stops auditing.
    pub fn clear_audit_sink(&self) {
        if let Ok(mut s) = self.toolkit.audit.write() {
            *s = None;
            self.toolkit.audit_on.store(false, Ordering::Release);
        }
    }
}
