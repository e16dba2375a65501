//! The account calls SDKs make at start-up: DescribeAccountKmsStatus and
//! OpenKmsService. The service of this library is always open, so the first
//! answers `Enabled` and the second succeeds without changing anything.

use crate::error::Result;
use crate::kms::Kms;

/// The `AccountStatus` of DescribeAccountKmsStatus: the service is open.
pub const ACCOUNT_STATUS_ENABLED: &str = "Enabled";

impl Kms {
    /// DescribeAccountKmsStatus: always `Enabled`.
    ///
    /// # Errors
    /// Only an injected fault.
    pub fn describe_account_kms_status(&self) -> Result<&'static str> {
        self.operation("DescribeAccountKmsStatus", "", || Ok(()))
            .map(|()| ACCOUNT_STATUS_ENABLED)
    }

    /// OpenKmsService: the service is already open; nothing changes.
    ///
    /// # Errors
    /// Only an injected fault.
    pub fn open_kms_service(&self) -> Result<()> {
        self.operation("OpenKmsService", "", || Ok(()))
    }
}
