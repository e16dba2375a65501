//! Dry runs (the `DryRun` parameter of the current API): an operation runs
//! through its real code path, validation and key-state checks included,
//! behind a write barrier that refuses to commit.
//!
//! While [`Kms::dry_run`] runs its closure on a thread, that thread is marked
//! for that service. Then:
//! - [`Kms::commit`] (the write path of every change) writes nothing and
//!   answers [`Error::DryRunOperation`]: an operation that reached its
//!   commit has passed every check, so it would have succeeded;
//! - lazy maintenance (deletion at `DeleteDate`, material expiry, automatic
//!   rotation, secret purges) is worked out in memory only, so the
//!   operation answers as it would after that maintenance, and nothing is
//!   stored or cached;
//! - the audit event of the operation carries the outcome
//!   `DryRunOperationError` (the one trace a dry run leaves).
//!
//! A dry run may draw from the random source (a nonce or a data key is
//! made and dropped), which advances the deterministic generator of
//! `test-util` builds.

use std::cell::Cell;

use crate::error::{Error, Result};
use crate::kms::Kms;

thread_local! {
    /// The address of the service a dry run is in progress for on this
    /// thread, or 0.
    static DRY: Cell<usize> = const { Cell::new(0) };
}

/// Ends a dry run (also on unwind), restoring the enclosing mark.
struct DryGuard(usize);

impl Drop for DryGuard {
    fn drop(&mut self) {
        DRY.with(|d| d.set(self.0));
    }
}

impl Kms {
    /// Runs `f` as a dry run: every check of the operations it calls runs as
    /// for a real call, and nothing is written (no record, no lazy
    /// maintenance, no cache change). `Ok(())` means the call would have
    /// succeeded; otherwise the error is the one the real call would give.
    /// On the wire, an action called with `DryRun=true` answers
    /// `DryRunOperationError` instead of `Ok(())`.
    ///
    /// ```
    /// use localkms::{EncryptionContext, Kms};
    /// let kms = Kms::in_memory()?;
    /// let key = kms.create_key(&Default::default())?;
    /// let ctx = EncryptionContext::empty();
    /// assert!(kms.dry_run(|k| k.encrypt(&key.key_id, b"hi", &ctx)).is_ok());
    /// kms.disable_key(&key.key_id)?;
    /// let e = kms.dry_run(|k| k.encrypt(&key.key_id, b"hi", &ctx)).unwrap_err();
    /// assert_eq!(e.code(), "Rejected.Disabled");
    /// // Writes are refused, so a dry run changes nothing.
    /// assert!(kms.dry_run(|k| k.enable_key(&key.key_id)).is_ok());
    /// assert_eq!(kms.describe_key(&key.key_id)?.key_state, localkms::KeyState::Disabled);
    /// # Ok::<(), localkms::Error>(())
    /// ```
    ///
    /// # Errors
    /// The error the operations in `f` would give outside a dry run.
    pub fn dry_run<T>(&self, f: impl FnOnce(&Kms) -> Result<T>) -> Result<()> {
        let me = self.dry_run_id();
        let _guard = DryGuard(DRY.with(|d| d.replace(me)));
        match f(self) {
            Ok(_) | Err(Error::DryRunOperation) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// True while a dry run of this service is in progress on this thread.
    pub(crate) fn in_dry_run(&self) -> bool {
        DRY.with(Cell::get) == self.dry_run_id()
    }

    /// The write barrier: refuses a write during a dry run.
    pub(crate) fn refuse_write_in_dry_run(&self) -> Result<()> {
        if self.in_dry_run() {
            return Err(Error::DryRunOperation);
        }
        Ok(())
    }

    /// Runs lazy maintenance `f` unless a dry run is in progress (then its
    /// effect is left to the caller's in-memory view).
    pub(crate) fn maintain<T: Default>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        if self.in_dry_run() {
            return Ok(T::default());
        }
        f()
    }

    fn dry_run_id(&self) -> usize {
        std::ptr::from_ref(self).addr()
    }
}
