//! Deletion protection (SetDeletionProtection): a protected key refuses
//! ScheduleKeyDeletion with `Rejected.DeletionProtection` until protection
//! is disabled. DescribeKey reports `DeletionProtection` (`Enabled` or
//! `Disabled`) and `DeletionProtectionDescription`.
//!
//! Protection can be set in every key state but `PendingDeletion` (the
//! vendor: "ensure that the CMK is not in the PendingDeletion state"), which
//! answers `Rejected.StateModifiedFailed` as the state table does for other
//! state changes of a key pending deletion.

use crate::error::{Error, Rejection, Result};
use crate::kms::Kms;
use crate::ops::keys::validate_description;
use crate::types::KeyState;

impl Kms {
    /// SetDeletionProtection: `Some(description)` enables deletion
    /// protection (the description may be empty, at most 8192 characters);
    /// `None` disables it. `key_id` is a key id or key ARN (the wire's
    /// `KeyId` or `ProtectedResourceArn`).
    ///
    /// ```
    /// let kms = localkms::Kms::in_memory()?;
    /// let key = kms.create_key(&Default::default())?;
    /// kms.set_deletion_protection(&key.key_id, Some("used by billing"))?;
    /// let e = kms.schedule_key_deletion(&key.key_id, 7).unwrap_err();
    /// assert_eq!(e.code(), "Rejected.DeletionProtection");
    /// assert_eq!(kms.describe_key(&key.key_id)?.deletion_protection, "Enabled");
    /// kms.set_deletion_protection(&key.key_id, None)?;
    /// kms.schedule_key_deletion(&key.key_id, 7)?;
    /// # Ok::<(), localkms::Error>(())
    /// ```
    ///
    /// # Errors
    /// `MissingParameter` (KeyId), `InvalidParameter`
    /// (DeletionProtectionDescription over 8192 characters),
    /// `Unsupported.Alias`, `Forbidden.KeyNotFound`,
    /// `Rejected.StateModifiedFailed` for a key pending deletion.
    pub fn set_deletion_protection(&self, key_id: &str, description: Option<&str>) -> Result<()> {
        self.operation("SetDeletionProtection", key_id, || {
            if key_id.is_empty() {
                return Err(Error::MissingParameter("KeyId"));
            }
            if let Some(d) = description {
                validate_description(d).map_err(|_| {
                    Error::invalid(
                        "DeletionProtectionDescription",
                        "must be at most 8192 characters",
                    )
                })?;
            }
            let id = self.resolve_key_id(key_id, "KeyId", false)?;
            self.update_key(&id, |r, _| {
                if r.state == KeyState::PendingDeletion {
                    return Err(Error::rejected(
                        Rejection::StateModifiedFailed,
                        &r.key_id,
                        r.state,
                    ));
                }
                r.deletion_protection = description.map(str::to_owned);
                Ok(())
            })?;
            Ok(())
        })
    }
}
