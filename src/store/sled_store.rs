//! The durable backend, on sled 0.34.
//!
//! All records live in one sled tree under [`physical_key`]s, so a [`Batch`]
//! maps onto one `sled::Batch`, which sled applies atomically, also across a
//! crash.

use std::path::Path;

use super::{
    Batch, Conflict, Expect, Keystore, Op, Record, Scan, StoreError, Visitor, physical_key, select,
    visit_physical,
};

/// How long a locked open is retried before it fails.
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

/// A keystore in a sled database directory.
///
/// [`Keystore::flush`] is a full `fdatasync` of sled's log file: sled 0.34
/// itself makes its log writes stable with `sync_file_range` on Linux, which
/// neither flushes the drive's cache nor the file's size, so a flush alone
/// survives a killed process but not a power cut.
#[derive(Clone)]
pub struct SledKeystore {
    db: sled::Db,
    path: std::path::PathBuf,
    /// sled's log file, opened again for `fdatasync` (it syncs the inode,
    /// whichever descriptor asks).
    log: std::sync::Arc<std::fs::File>,
}

/// A summary (backend, path, record count), never the records.
impl std::fmt::Debug for SledKeystore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledKeystore")
            .field("path", &self.path)
            .field("records", &self.db.len())
            .finish_non_exhaustive()
    }
}

impl SledKeystore {
    /// Opens (or creates) the database in `path`.
    ///
    /// # Errors
    /// [`StoreError::Locked`] if another process holds it; [`StoreError::Corrupt`]
    /// if sled finds its files damaged; [`StoreError::Io`] otherwise.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        // sled's own periodic flush stays on for relaxed durability; durable
        // mode flushes explicitly after each change.
        let config = sled::Config::new()
            .path(path.as_ref())
            .mode(sled::Mode::LowSpace);
        // sled releases its file lock from a background thread after the
        // last handle drops, so a reopen in the same process can race it.
        // Retry a locked open briefly; a store held by a live process still
        // fails within this bound.
        let deadline = std::time::Instant::now() + LOCK_RETRY;
        loop {
            match guarded(|| config.open().map_err(map_err)) {
                Ok(db) => {
                    let dir = path.as_ref();
                    let io = |e: std::io::Error| StoreError::Io(format!("{}: {e}", dir.display()));
                    let log = std::fs::File::open(dir.join("db")).map_err(io)?;
                    // sled creates its directory with the default mode: make
                    // it private, also when it already existed.
                    #[cfg(unix)]
                    {
                        use std::os::unix::fs::PermissionsExt as _;
                        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                            .map_err(io)?;
                    }
                    // Make the files sled may just have created part of the directory.
                    std::fs::File::open(dir)
                        .and_then(|d| d.sync_all())
                        .map_err(io)?;
                    return Ok(Self {
                        db,
                        path: dir.to_path_buf(),
                        log: std::sync::Arc::new(log),
                    });
                }
                Err(StoreError::Locked(_)) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The underlying sled database, for tools that inspect it.
    pub fn db(&self) -> &sled::Db {
        &self.db
    }
}

/// Runs a sled call, turning a panic inside sled into
/// [`StoreError::Corrupt`]: sled 0.34 may assert on damaged files, and
/// nothing may panic on input, a store's files included. (The panic hook
/// still prints sled's message.)
fn guarded<T>(f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(StoreError::Corrupt(
            "sled failed on its files (a panic inside sled)".into(),
        ))
    })
}

fn map_err(e: sled::Error) -> StoreError {
    match e {
        sled::Error::Io(io) => {
            let text = io.to_string();
            // sled takes an exclusive advisory lock on its file at open; a
            // second opener gets WouldBlock ("could not acquire lock").
            if io.kind() == std::io::ErrorKind::WouldBlock || text.contains("lock") {
                StoreError::Locked(text)
            } else {
                StoreError::Io(text)
            }
        }
        sled::Error::Corruption { at, .. } => StoreError::Corrupt(match at {
            Some(at) => format!("sled reports corruption at {at}"),
            None => "sled reports corruption".into(),
        }),
        sled::Error::ReportableBug(e) => StoreError::Other(format!("sled bug: {e}")),
        other => StoreError::Other(other.to_string()),
    }
}

impl Keystore for SledKeystore {
    fn get(&self, ns: &str, id: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        guarded(|| {
            Ok(self
                .db
                .get(physical_key(ns, id))
                .map_err(map_err)?
                .map(|v| v.to_vec()))
        })
    }

    fn scan(&self, ns: &str, scan: Scan<'_>) -> Result<Vec<Record>, StoreError> {
        guarded(|| self.scan_unguarded(ns, scan))
    }

    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        let mut b = sled::Batch::default();
        for op in batch.into_ops() {
            match op {
                Op::Put { ns, id, value } => b.insert(physical_key(ns, &id), value),
                Op::Delete { ns, id } => b.remove(physical_key(ns, &id)),
            }
        }
        guarded(|| self.db.apply_batch(b).map_err(map_err))
    }

    fn apply_if(
        &self,
        expect: &[Expect<'_>],
        batch: Batch,
    ) -> Result<Result<(), Conflict>, StoreError> {
        use sled::transaction::{ConflictableTransactionError, TransactionError};
        let mut b = sled::Batch::default();
        for op in batch.into_ops() {
            match op {
                Op::Put { ns, id, value } => b.insert(physical_key(ns, &id), value),
                Op::Delete { ns, id } => b.remove(physical_key(ns, &id)),
            }
        }
        let keys: Vec<(Vec<u8>, Option<&[u8]>)> = expect
            .iter()
            .map(|e| (physical_key(e.ns, e.id), e.value))
            .collect();
        // sled is single-process. A sled 0.34 transaction holds sled's
        // write lock from its first read to its commit, the same lock
        // `apply_batch` takes, so the check and the batch are one step
        // against every writer of this database.
        let outcome = guarded(|| {
            let r = self.db.transaction(|tx| {
                for (k, want) in &keys {
                    if tx.get(k)?.as_deref() != *want {
                        return Err(ConflictableTransactionError::Abort(Conflict));
                    }
                }
                tx.apply_batch(&b)?;
                Ok(())
            });
            match r {
                Ok(()) => Ok(Ok(())),
                Err(TransactionError::Abort(c)) => Ok(Err(c)),
                Err(TransactionError::Storage(e)) => Err(map_err(e)),
            }
        })?;
        Ok(outcome)
    }

    fn flush(&self) -> Result<(), StoreError> {
        guarded(|| self.db.flush().map_err(map_err))?;
        self.log
            .sync_data()
            .map_err(|e| StoreError::Io(format!("fdatasync of the sled log: {e}")))
    }

    fn visit_all(&self, visit: &mut Visitor<'_>) -> Result<(), StoreError> {
        guarded(|| {
            visit_physical(
                self.db
                    .iter()
                    .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec()))),
                map_err,
                visit,
            )
        })
    }
}

impl SledKeystore {
    fn scan_unguarded(&self, ns: &str, scan: Scan<'_>) -> Result<Vec<Record>, StoreError> {
        let prefix = physical_key(ns, scan.prefix);
        let iter =
            match scan.after {
                // Start the range at the cursor, so paging does not rescan.
                Some(after) if after >= scan.prefix => {
                    let start = physical_key(ns, after);
                    Box::new(self.db.range(start..).take_while(move |r| {
                        r.as_ref().map_or(true, |(k, _)| k.starts_with(&prefix))
                    })) as Box<dyn Iterator<Item = _>>
                }
                _ => Box::new(self.db.scan_prefix(prefix)),
            };
        select(
            ns,
            scan,
            iter.map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(map_err)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_inside_sled_is_a_corrupt_store_error() {
        let r: Result<(), StoreError> = guarded(|| panic!("sled asserted"));
        assert!(matches!(r, Err(StoreError::Corrupt(_))));
        assert_eq!(guarded(|| Ok(5)), Ok(5));
        assert_eq!(
            guarded::<()>(|| Err(StoreError::Io("x".into()))),
            Err(StoreError::Io("x".into()))
        );
    }
}
