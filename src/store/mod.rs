//! The pluggable storage under the service: a synchronous, byte-level store of
//! namespaced records with atomic batches and an explicit flush.
//!
//! The library keeps its own record formats above this trait, and seals every
//! record before it reaches a backend (`store::sealed`), so a backend never sees a
//! secret in clear and cannot change a record undetected. Two backends ship: [`SledKeystore`] (durable,
//! the default) and [`MemoryKeystore`] (ephemeral). [`conformance`] is the suite
//! any backend must pass.

use std::fmt;

pub(crate) mod backup;
pub mod conformance;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
pub(crate) mod record;
pub(crate) mod seal;
pub(crate) mod sealed;
mod sled_store;
pub(crate) mod verify;
pub(crate) mod witness;

pub use backup::BackupInfo;
pub use verify::{Report, RollBack};

pub use memory::MemoryKeystore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresKeystore;
pub use sled_store::SledKeystore;

/// What [`Keystore::visit_all`] calls on each record: `(ns, id, value)`.
pub type Visitor<'a> = dyn FnMut(&str, &[u8], &[u8]) -> Result<(), StoreError> + 'a;

/// A record as a scan returns it: `(id, value)`.
pub type Record = (Vec<u8>, Vec<u8>);

/// One change inside a [`Batch`].
#[derive(Clone, PartialEq, Eq)]
pub enum Op {
    /// Create or replace a record.
    Put {
        /// The record's namespace.
        ns: &'static str,
        /// The record's id within its namespace.
        id: Vec<u8>,
        /// The record's bytes.
        value: Vec<u8>,
    },
    /// Remove a record; removing an absent record is not an error.
    Delete {
        /// The record's namespace.
        ns: &'static str,
        /// The record's id within its namespace.
        id: Vec<u8>,
    },
}

impl fmt::Debug for Op {
    // Values may be sealed material: show only their length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Put { ns, id, value } => f
                .debug_struct("Put")
                .field("ns", ns)
                .field("id", &String::from_utf8_lossy(id))
                .field("value_len", &value.len())
                .finish(),
            Self::Delete { ns, id } => f
                .debug_struct("Delete")
                .field("ns", ns)
                .field("id", &String::from_utf8_lossy(id))
                .finish(),
        }
    }
}

/// A set of changes applied all-or-nothing by [`Keystore::apply`]. Later
/// operations on the same record win.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    ops: Vec<Op>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put.
    pub fn put(&mut self, ns: &'static str, id: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(Op::Put {
            ns,
            id: id.into(),
            value: value.into(),
        });
    }

    /// Adds a delete.
    pub fn delete(&mut self, ns: &'static str, id: impl Into<Vec<u8>>) {
        self.ops.push(Op::Delete { ns, id: id.into() });
    }

    /// The changes, in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Consumes the batch into its changes.
    pub fn into_ops(self) -> Vec<Op> {
        self.ops
    }

    /// The changes, to edit in place (the write path binds material records
    /// to their key's generation).
    pub(crate) fn ops_mut(&mut self) -> &mut [Op] {
        &mut self.ops
    }

    /// True if the batch holds no change.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// Which records a [`Keystore::scan`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan<'a> {
    /// Only ids that start with this prefix.
    pub prefix: &'a [u8],
    /// Only ids strictly greater than this one.
    pub after: Option<&'a [u8]>,
    /// Skip this many matching records first.
    pub skip: usize,
    /// Return at most this many records.
    pub limit: usize,
}

impl<'a> Scan<'a> {
    /// Every record whose id starts with `prefix`.
    pub fn prefix(prefix: &'a [u8]) -> Self {
        Self {
            prefix,
            after: None,
            skip: 0,
            limit: usize::MAX,
        }
    }
}

pub use crate::error::StoreError;

/// What [`Keystore::apply_if`] expects a record to hold when it commits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Expect<'a> {
    /// The record's namespace.
    pub ns: &'a str,
    /// The record's id within its namespace.
    pub id: &'a [u8],
    /// The bytes the record must hold, or `None` if it must be absent.
    pub value: Option<&'a [u8]>,
}

impl<'a> Expect<'a> {
    /// The record must hold exactly `value`.
    pub fn value(ns: &'a str, id: &'a [u8], value: &'a [u8]) -> Self {
        Self {
            ns,
            id,
            value: Some(value),
        }
    }

    /// The record must be absent.
    pub fn absent(ns: &'a str, id: &'a [u8]) -> Self {
        Self {
            ns,
            id,
            value: None,
        }
    }

    /// The record must be as `read` returned it (`Keystore::get`'s result).
    pub fn read(ns: &'a str, id: &'a [u8], read: Option<&'a [u8]>) -> Self {
        Self {
            ns,
            id,
            value: read,
        }
    }
}

impl fmt::Debug for Expect<'_> {
    // Values may be sealed material: show only their length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Expect")
            .field("ns", &self.ns)
            .field("id", &String::from_utf8_lossy(self.id))
            .field("value_len", &self.value.map(<[u8]>::len))
            .finish()
    }
}

/// [`Keystore::apply_if`] found a record changed since the caller read it (or
/// lost a race with a concurrent writer): nothing was applied. Read again and
/// retry. A normal outcome under concurrency, not a failure of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conflict;

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a record changed since it was read; nothing was applied")
    }
}

impl std::error::Error for Conflict {}

/// Record storage for the service.
///
/// A record is addressed by a namespace and an id. Implementations must:
/// - keep namespaces separate (`("a", "bc")` and `("ab", "c")` are different);
/// - apply a [`Batch`] atomically: after a failure or a crash, all of it or
///   none of it is there. (Readers that read several records while a batch
///   lands may see part of it; the service serializes its own writers and
///   never relies on a multi-record snapshot.)
/// - return scans in ascending byte order of id;
/// - make every applied batch durable once [`Keystore::flush`] returns.
///
/// Run [`conformance::run_all`] against a new implementation.
pub trait Keystore: Send + Sync + fmt::Debug {
    /// The record's bytes, if it exists.
    ///
    /// # Errors
    /// A backend failure.
    fn get(&self, ns: &str, id: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// The bytes of each record named in `keys` (namespace, id), in the
    /// same order; a name may repeat. Not a snapshot: each record is read as
    /// [`Keystore::get`] would.
    ///
    /// The provided method calls [`Keystore::get`] for each; a backend with
    /// a round trip per call (PostgreSQL) reads them all in one.
    ///
    /// # Errors
    /// A backend failure.
    fn get_many(&self, keys: &[(&str, &[u8])]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        keys.iter().map(|(ns, id)| self.get(ns, id)).collect()
    }

    /// The records of `ns` that `scan` selects, in ascending id order.
    ///
    /// # Errors
    /// A backend failure.
    fn scan(&self, ns: &str, scan: Scan<'_>) -> Result<Vec<Record>, StoreError>;

    /// Applies every change of `batch`, or none of them.
    ///
    /// # Errors
    /// A backend failure; then nothing of the batch was applied.
    fn apply(&self, batch: Batch) -> Result<(), StoreError>;

    /// Applies `batch` only if every record named in `expect` holds what it
    /// expects, checked and applied as one atomic step against every other
    /// writer of the store, in this process or another (SPEC 10: optimistic
    /// concurrency). The outer result is a failure of the store (stop); the
    /// inner one a lost race (read again and retry), as sled's
    /// compare-and-swap.
    ///
    /// Backends that several processes share must check in the store itself,
    /// never under an in-process lock alone.
    ///
    /// The provided method answers [`StoreError::Unsupported`]: a check made
    /// outside the backend could not be atomic.
    ///
    /// # Errors
    /// `Ok(Err(Conflict))` if a record differs from its expectation or a
    /// concurrent writer won; nothing was applied. `Err` on a backend failure:
    /// nothing was applied, except that a connection lost while a server
    /// commits leaves the outcome unknown (read again before retrying).
    fn apply_if(
        &self,
        expect: &[Expect<'_>],
        batch: Batch,
    ) -> Result<Result<(), Conflict>, StoreError> {
        let _ = (expect, batch);
        Err(StoreError::Unsupported(format!(
            "{} has no conditional apply (Keystore::apply_if)",
            std::any::type_name::<Self>()
        )))
    }

    /// Makes everything applied so far durable.
    ///
    /// # Errors
    /// A backend failure.
    fn flush(&self) -> Result<(), StoreError>;

    /// True when other processes may hold the store at the same time (a
    /// database server). Root-key rotation then takes an exclusive lease
    /// (SPEC section 9) that other holders' writes wait for. A store that
    /// only one process can open answers `false` (the default), so a lease
    /// left by a crash cannot outlive the process that held it.
    fn is_shared(&self) -> bool {
        false
    }

    /// Calls `visit(ns, id, value)` on every record of every namespace, in
    /// any order. Verification ([`crate::Kms::verify`]), migration and backup
    /// read the whole store through it. A backend that several processes
    /// share must visit one consistent snapshot (`PostgresKeystore` reads in
    /// one transaction): verify and backup check the records against the
    /// head among them.
    ///
    /// The default visits the namespaces the library writes, with
    /// [`Keystore::scan`]; a backend that can list all of its records should
    /// do so instead, so a record inserted into an unknown namespace is seen.
    ///
    /// # Errors
    /// A backend failure, or the first error `visit` returns.
    fn visit_all(&self, visit: &mut Visitor<'_>) -> Result<(), StoreError> {
        for ns in record::NAMESPACES.iter().copied().chain([record::NS_HEAD]) {
            for (id, value) in self.scan(ns, Scan::prefix(b""))? {
                visit(ns, &id, &value)?;
            }
        }
        Ok(())
    }
}

/// Splits a physical key into `(ns, id)`; `None` if it is not one.
pub(crate) fn split_physical(key: &[u8]) -> Option<(&str, &[u8])> {
    let (&len, rest) = key.split_first()?;
    let len = usize::from(len);
    if rest.len() < len {
        return None;
    }
    let (ns, id) = rest.split_at(len);
    Some((std::str::from_utf8(ns).ok()?, id))
}

/// Visits every `(physical key, value)` pair of a whole-store iterator.
pub(crate) fn visit_physical<I, E>(
    iter: I,
    map_err: impl Fn(E) -> StoreError,
    visit: &mut Visitor<'_>,
) -> Result<(), StoreError>
where
    I: Iterator<Item = Result<(Vec<u8>, Vec<u8>), E>>,
{
    for item in iter {
        let (k, v) = item.map_err(&map_err)?;
        let (ns, id) = split_physical(&k).ok_or_else(|| {
            StoreError::Corrupt("a record key is not a namespace and an id".into())
        })?;
        visit(ns, id, &v)?;
    }
    Ok(())
}

/// The physical key of a record: `len(ns) || ns || id`, so that namespaces
/// never run into each other and a namespace's records are one contiguous range.
pub(crate) fn physical_key(ns: &str, id: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + ns.len() + id.len());
    k.push(u8::try_from(ns.len()).unwrap_or(u8::MAX));
    k.extend_from_slice(ns.as_bytes());
    k.extend_from_slice(id);
    k
}

/// Applies `scan` to an ascending iterator of `(physical key, value)` pairs
/// that starts at the namespace prefix. Shared by both backends.
pub(crate) fn select<I, E>(ns: &str, scan: Scan<'_>, iter: I) -> Result<Vec<Record>, E>
where
    I: Iterator<Item = Result<(Vec<u8>, Vec<u8>), E>>,
{
    let head = 1 + ns.len();
    let mut out = Vec::new();
    let mut skipped = 0;
    for item in iter {
        if out.len() >= scan.limit {
            break;
        }
        let (k, v) = item?;
        let id = &k[head..];
        if let Some(after) = scan.after
            && id <= after
        {
            continue;
        }
        if skipped < scan.skip {
            skipped += 1;
            continue;
        }
        out.push((id.to_vec(), v));
    }
    Ok(out)
}

/// The store's byte formats as functions, for golden vectors
/// (`tests/store_format.rs`, docs/FORMAT.md). **Not for use**: fixed nonces
/// destroy the sealing's security.
#[doc(hidden)]
pub mod golden {
    use crate::error::Result;
    use crate::store::seal::RootKey;
    use crate::store::sealed;

    /// The keys derived from `root`: record, digest and witness keys.
    ///
    /// # Errors
    /// `InvalidRootKey` unless `root` is 32 bytes.
    pub fn derived_keys(root: &[u8]) -> Result<[[u8; 32]; 3]> {
        let k = RootKey::from_bytes(root)?;
        Ok([
            *crate::store::seal::derive_for_golden(root, "record")?,
            *k.keys().digest,
            *k.keys().witness,
        ])
    }

    /// Seals a record (format v2) with a caller-chosen nonce.
    ///
    /// # Errors
    /// `InvalidRootKey` unless `root` is 32 bytes.
    pub fn seal_record(
        root: &[u8],
        store_id: &[u8; 16],
        ns: &str,
        id: &[u8],
        plaintext: &[u8],
        nonce: [u8; 24],
    ) -> Result<Vec<u8>> {
        let k = RootKey::from_bytes(root)?;
        sealed::seal_record_with_nonce(k.keys(), store_id, ns, id, plaintext, nonce)
    }

    /// Opens a v2 sealed record; `None` for any failure.
    ///
    /// # Errors
    /// `InvalidRootKey` unless `root` is 32 bytes.
    pub fn open_record(
        root: &[u8],
        store_id: &[u8; 16],
        ns: &str,
        id: &[u8],
        sealed: &[u8],
    ) -> Result<Option<Vec<u8>>> {
        let k = RootKey::from_bytes(root)?;
        Ok(sealed::open_record(k.keys(), store_id, ns, id, sealed).map(|p| p.to_vec()))
    }

    /// A record's term of the store digest.
    ///
    /// # Errors
    /// `InvalidRootKey` unless `root` is 32 bytes.
    pub fn digest_term(
        root: &[u8],
        store_id: &[u8; 16],
        ns: &str,
        id: &[u8],
        sealed: &[u8],
    ) -> Result<[u8; 32]> {
        let k = RootKey::from_bytes(root)?;
        Ok(sealed::digest_term(k.keys(), store_id, ns, id, sealed))
    }

    /// The head's plaintext.
    pub fn head(seq: u64, count: u64, digest: [u8; 32]) -> Vec<u8> {
        sealed::Head {
            seq,
            count,
            digest: sealed::Digest(digest),
            lease: None,
        }
        .encode()
    }

    /// The plaintext of a head that carries a root-key rotation's lease
    /// (owner, expiry in milliseconds since the epoch).
    pub fn leased_head(
        seq: u64,
        count: u64,
        digest: [u8; 32],
        owner: [u8; 16],
        until_ms: i64,
    ) -> Vec<u8> {
        sealed::Head {
            seq,
            count,
            digest: sealed::Digest(digest),
            lease: Some(sealed::Lease { owner, until_ms }),
        }
        .encode()
    }

    /// Checks a backup completely (nothing is written); returns how many
    /// records it holds.
    ///
    /// # Errors
    /// As [`crate::KmsBuilder::restore`].
    pub fn check_backup(root: &[u8], bytes: &[u8]) -> Result<usize> {
        let k = RootKey::from_bytes(root)?;
        Ok(crate::store::backup::check(&k, bytes)?.ops().len())
    }

    /// One slot of the witness file.
    ///
    /// # Errors
    /// `InvalidRootKey` unless `root` is 32 bytes.
    pub fn witness_slot(root: &[u8], store_id: &[u8; 16], seq: u64) -> Result<[u8; 64]> {
        let k = RootKey::from_bytes(root)?;
        Ok(crate::store::witness::slot(
            &k.keys().witness,
            store_id,
            seq,
        ))
    }
}
