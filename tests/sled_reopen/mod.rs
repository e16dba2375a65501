//! Reopening a sled store in the same process.

use localkms::{Error, Kms};

/// Builds a service, retrying while the store is still locked: sled 0.34
/// releases its file lock from a background thread shortly after the last
/// handle is dropped (spacejam/sled#1289), so an immediate reopen in the same
/// process can find it held. Yields rather than sleeps, with a generous
/// deadline so a real lock-up still fails.
pub fn build_retrying(build: impl Fn() -> Result<Kms, Error>) -> Kms {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match build() {
            Err(Error::StoreLocked(_)) if std::time::Instant::now() < deadline => {
                std::thread::yield_now();
            }
            r => return r.unwrap_or_else(|e| panic!("open failed: {e}")),
        }
    }
}
