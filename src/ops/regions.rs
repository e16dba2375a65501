//! DescribeRegions (SPEC section 4): the one configured region.

use crate::kms::Kms;

impl Kms {
    /// DescribeRegions: the configured region id, the only region this
    /// service has.
    ///
    /// ```
    /// let kms = localkms::Kms::builder().region_id("cn-shanghai").build()?;
    /// assert_eq!(kms.describe_regions(), ["cn-shanghai"]);
    /// # Ok::<(), localkms::Error>(())
    /// ```
    pub fn describe_regions(&self) -> Vec<String> {
        // Audited; never faulted (it cannot fail).
        let regions = || Ok(vec![self.config.region_id.clone()]);
        self.operation("DescribeRegions", "", regions)
            .unwrap_or_else(|_| vec![self.config.region_id.clone()])
    }
}
