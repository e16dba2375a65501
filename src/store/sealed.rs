//! The sealed store: the layer between the service and a [`Keystore`] that
//! makes every record sealed and the whole store tamper-evident (SPEC
//! section 9; formats in docs/FORMAT.md).
//!
//! - **Every record is sealed** (format v2) under the record key derived from
//!   the root key ([`crate::store::seal::StoreKeys`]), with AAD = label ||
//!   store id || namespace || id. The store id is random, fixed at creation,
//!   and held in the sealed record `head/store-id` (sealed with an all-zero
//!   store id): a record copied to another id, namespace or store does not
//!   open, and opening `head/store-id` proves the root key.
//! - **The head** (`head/head`, sealed) holds the commit sequence, the number
//!   of records and their digest: the sum mod 2^256 of
//!   HMAC-SHA256(digest key, store id || ns || id || sealed value) over every
//!   record outside `head`. Each commit reads the head, subtracts the term of
//!   each record it replaces or deletes, adds the term of each record it
//!   writes, and writes the new head in the same atomic batch. So a record
//!   replayed (an older sealed copy), deleted or inserted behind the
//!   library's back shows as a digest mismatch in [`SealedStore::verify`].
//!   Because each commit reads and rewrites the one head record, a backend
//!   with optimistic concurrency serializes commits on it.
//! - **The witness** ([`crate::store::witness`]) records the commit sequence
//!   outside the store once it is durable; open refuses a head behind it.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use hmac::{KeyInit as _, Mac as _};
use xaes_256_gcm::aead::AeadInOut;
use zeroize::{Zeroize as _, Zeroizing};

use super::record::{
    FIRST_FORMAT, HEAD_HEAD, HEAD_STORE_ID, META_FORMAT, META_ROOT_CHECK, NS_HEAD, NS_MATERIAL,
    NS_META, ROOT_CHECK_PLAINTEXT, STORE_FORMAT, static_ns,
};
use super::seal::{RootCell, RootKey, StoreKeys};
use super::verify::{Report, RollBack};
use super::witness::{self, Witness, WitnessState};
use super::{Batch, Conflict, Expect, Keystore, Op, Record, Scan, StoreError};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::secret::fill_random;

/// The sealed record format v2.
pub(crate) const SEALED_V2: u8 = 2;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const RECORD_AAD_LABEL: &[u8] = b"localkms/record/v2\0";
const DIGEST_LABEL: &[u8] = b"localkms/digest/v2\0";
const HEAD_V1: u8 = 1;
/// A head that carries a root-key rotation's lease.
const HEAD_V2: u8 = 2;
/// How long a rotation's lease lasts by default.
pub(crate) const DEFAULT_ROTATION_LEASE: std::time::Duration = std::time::Duration::from_secs(300);
/// The store id `head/store-id` is sealed with.
const NO_STORE_ID: [u8; 16] = [0; 16];
/// `head/rotating`: the store id sealed (as `head/store-id` is) under the new
/// key of a rotation under way; deleted by the rotation's batch.
pub(crate) const HEAD_ROTATING: &[u8] = b"rotating";
/// `head/retired-<seq>`: the store id sealed (as `head/store-id` is) under a
/// root key retired by the rotation of commit `seq` (20 decimal digits).
pub(crate) const HEAD_RETIRED_PREFIX: &[u8] = b"retired-";

/// A store's random id.
pub(crate) type StoreId = [u8; 16];

/// The AAD of a v2 sealed record.
fn record_aad(store_id: &StoreId, ns: &str, id: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(RECORD_AAD_LABEL.len() + 17 + ns.len() + id.len());
    aad.extend_from_slice(RECORD_AAD_LABEL);
    aad.extend_from_slice(store_id);
    aad.push(u8::try_from(ns.len()).unwrap_or(u8::MAX));
    aad.extend_from_slice(ns.as_bytes());
    aad.extend_from_slice(id);
    aad
}

/// Seals a record (format v2) with a given nonce.
pub(crate) fn seal_record_with_nonce(
    keys: &StoreKeys,
    store_id: &StoreId,
    ns: &str,
    id: &[u8],
    plaintext: &[u8],
    nonce: [u8; NONCE_LEN],
) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
    out.push(SEALED_V2);
    out.extend_from_slice(&nonce);
    let body = out.len();
    out.extend_from_slice(plaintext);
    let tag = keys
        .record
        .encrypt_inout_detached(
            &nonce.into(),
            &record_aad(store_id, ns, id),
            (&mut out[body..]).into(),
        )
        .map_err(|_| Error::InternalFailure)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

fn seal_record(
    keys: &StoreKeys,
    store_id: &StoreId,
    ns: &str,
    id: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    seal_record_with_nonce(keys, store_id, ns, id, plaintext, nonce)
}

/// Opens a v2 sealed record; `None` on any failure.
pub(crate) fn open_record(
    keys: &StoreKeys,
    store_id: &StoreId,
    ns: &str,
    id: &[u8],
    sealed: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed[0] != SEALED_V2 {
        return None;
    }
    let (nonce, rest) = sealed[1..].split_at(NONCE_LEN);
    let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
    let nonce = xaes_256_gcm::Nonce::try_from(nonce).ok()?;
    let tag = xaes_256_gcm::Tag::try_from(tag).ok()?;
    let mut buf = Zeroizing::new(ct.to_vec());
    keys.record
        .decrypt_inout_detached(
            &nonce,
            &record_aad(store_id, ns, id),
            buf.as_mut_slice().into(),
            &tag,
        )
        .ok()?;
    Some(buf)
}

/// A record's term of the digest: HMAC-SHA256(digest key, label || store id
/// || len(ns) u8 || ns || len(id) u32 BE || id || sealed value).
pub(crate) fn digest_term(
    keys: &StoreKeys,
    store_id: &StoreId,
    ns: &str,
    id: &[u8],
    sealed: &[u8],
) -> [u8; 32] {
    let mut mac = <hmac::Hmac<sha2::Sha256>>::new_from_slice(keys.digest.as_ref())
        // safe: HMAC takes a key of any length
        .unwrap_or_else(|_| unreachable!());
    mac.update(DIGEST_LABEL);
    mac.update(store_id);
    mac.update(&[u8::try_from(ns.len()).unwrap_or(u8::MAX)]);
    mac.update(ns.as_bytes());
    mac.update(&u32::try_from(id.len()).unwrap_or(u32::MAX).to_be_bytes());
    mac.update(id);
    mac.update(sealed);
    mac.finalize().into_bytes().into()
}

/// A 256-bit big-endian number: the multiset digest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Digest(pub(crate) [u8; 32]);

impl Digest {
    pub(crate) fn add(&mut self, term: &[u8; 32]) {
        let mut carry = 0u16;
        for i in (0..32).rev() {
            let s = u16::from(self.0[i]) + u16::from(term[i]) + carry;
            self.0[i] = s as u8;
            carry = s >> 8;
        }
    }

    pub(crate) fn sub(&mut self, term: &[u8; 32]) {
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let mut d = i16::from(self.0[i]) - i16::from(term[i]) - borrow;
            borrow = 0;
            if d < 0 {
                d += 256;
                borrow = 1;
            }
            self.0[i] = d as u8;
        }
    }

    /// Constant-time equality.
    pub(crate) fn matches(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq as _;
        self.0.ct_eq(&other.0).into()
    }
}

/// The head record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Head {
    /// Commits so far (the creation of the store is commit 1).
    pub(crate) seq: u64,
    /// Records outside `head`.
    pub(crate) count: u64,
    pub(crate) digest: Digest,
    /// The lease of a root-key rotation under way on a shared store.
    pub(crate) lease: Option<Lease>,
}

/// A root-key rotation's exclusive lease on a shared store (SPEC section
/// 9): while it runs, no other holder commits; a lease whose holder died
/// lapses at `until_ms` on the service's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lease {
    /// The holder: random per opened store.
    pub(crate) owner: [u8; 16],
    /// When it lapses, in milliseconds since the epoch.
    pub(crate) until_ms: i64,
}

impl Head {
    /// `0x01 || seq u64 BE || count u64 BE || digest (32 bytes)`, or with a
    /// lease `0x02 || the same || owner (16 bytes) || until_ms i64 BE`.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(73);
        out.push(if self.lease.is_some() {
            HEAD_V2
        } else {
            HEAD_V1
        });
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(&self.digest.0);
        if let Some(lease) = &self.lease {
            out.extend_from_slice(&lease.owner);
            out.extend_from_slice(&lease.until_ms.to_be_bytes());
        }
        out
    }

    pub(crate) fn decode(b: &[u8]) -> Option<Self> {
        let lease = match (b.first(), b.len()) {
            (Some(&HEAD_V1), 49) => None,
            (Some(&HEAD_V2), 73) => Some(Lease {
                owner: b[49..65].try_into().ok()?,
                until_ms: i64::from_be_bytes(b[65..73].try_into().ok()?),
            }),
            _ => return None,
        };
        Some(Self {
            seq: u64::from_be_bytes(b[1..9].try_into().ok()?),
            count: u64::from_be_bytes(b[9..17].try_into().ok()?),
            digest: Digest(b[17..49].try_into().ok()?),
            lease,
        })
    }
}

/// How to open a store.
#[derive(Debug, Clone, Default)]
pub(crate) struct OpenOptions {
    /// The witness file, if the store has one.
    pub(crate) witness: Option<PathBuf>,
    /// Open a store whose head is behind its witness, accepting the loss.
    pub(crate) recover_rolled_back: bool,
    /// The store was just restored from a backup: its witness starts anew.
    pub(crate) restored: bool,
    /// The service's clock, for rotation leases (default: the system's).
    pub(crate) clock: Option<Arc<dyn Clock>>,
    /// How long a rotation's lease lasts on a shared store (default
    /// [`DEFAULT_ROTATION_LEASE`]).
    pub(crate) rotation_lease: Option<std::time::Duration>,
}

/// What opening found.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Opened {
    /// The store was created by this open.
    pub(crate) created: bool,
    /// The store was migrated from the first format by this open.
    pub(crate) migrated: bool,
    /// The head was behind the witness and the caller accepted it.
    pub(crate) rolled_back: Option<RollBack>,
}

/// How many times a write that lost to another writer is tried again.
pub(crate) const WRITE_ATTEMPTS: u32 = 64;

/// True for the error of a write that lost to another writer.
pub(crate) fn is_conflict(e: &Error) -> bool {
    matches!(e, Error::Storage(StoreError::Conflict(_)))
}

/// Waits before retrying a write that lost a race: a random pause that grows
/// with `attempt`, up to about 10 ms, so racing writers spread out.
pub(crate) fn conflict_backoff(attempt: u32) {
    let mut r = [0u8; 2];
    let _ = fill_random(&mut r);
    let cap = 100 * u64::from(attempt.min(100));
    let micros = u64::from(u16::from_le_bytes(r)) % cap.max(1);
    std::thread::sleep(std::time::Duration::from_micros(micros));
}

/// The head as a write read it (see [`SealedStore::snapshot`]).
pub(crate) struct Snapshot {
    /// The head record's stored (sealed) bytes.
    sealed: Vec<u8>,
    head: Head,
    /// Records read with the head (namespace, id, stored bytes): a commit
    /// at this head needs not read them again.
    known: Vec<KnownOwned>,
}

/// A record read with the head: namespace, id, stored bytes.
type KnownOwned = (&'static str, Vec<u8>, Option<Vec<u8>>);

/// A record whose stored bytes a write knows (`None`: absent).
type Known<'a> = (&'a str, &'a [u8], Option<&'a [u8]>);

/// What [`stage`] takes the replaced records to be.
#[derive(Clone, Copy)]
enum Prior<'a> {
    /// The store's records are not yet covered by the head (creation,
    /// migration, rotation), so nothing is subtracted.
    Fresh,
    /// As stored: these as given, the others read.
    Stored(&'a [Known<'a>]),
}

impl Snapshot {
    /// The commit sequence of this head.
    pub(crate) fn seq(&self) -> u64 {
        self.head.seq
    }
}

/// The head and the records (as stored) that this holder's last commit
/// wrote to a shared store. Until another commit lands they are the store's
/// current state, so a write may start from them instead of reading them
/// over the network: its commit is conditional on the head, so a stale start
/// fails as a conflict (nothing applied), which forgets them, and the retry
/// reads. Every commit rewrites the head, so an unchanged head means these
/// records are unchanged too.
struct LastCommit {
    sealed: Vec<u8>,
    head: Head,
    records: HashMap<(&'static str, Vec<u8>), Option<Vec<u8>>>,
}

/// A [`Keystore`] whose records are sealed and covered by the head.
pub(crate) struct SealedStore {
    inner: Box<dyn Keystore>,
    root: Arc<RootCell>,
    store_id: StoreId,
    /// Serializes the read-modify-write of the head.
    commit: Mutex<()>,
    /// What this holder's last commit left in a shared store (see
    /// [`LastCommit`]).
    last: Mutex<Option<LastCommit>>,
    /// The sequence of the last commit applied.
    seq: AtomicU64,
    witness: Option<Witness>,
    /// The service's clock, for rotation leases.
    clock: Arc<dyn Clock>,
    /// How long this holder's rotation lease lasts, in milliseconds.
    lease_ms: i64,
    /// This holder's lease owner id: random per open.
    owner: [u8; 16],
}

impl fmt::Debug for SealedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedStore")
            .field("inner", &self.inner)
            .field("seq", &self.seq.load(Ordering::Relaxed))
            .field("witness", &self.witness)
            .finish_non_exhaustive()
    }
}

/// The error for a record that does not open.
pub(crate) fn unreadable(ns: &str, id: &[u8]) -> StoreError {
    StoreError::Corrupt(format!(
        "record {} does not open (changed, or copied from another record or store)",
        record_name(ns, id)
    ))
}

/// A record's name for messages: `ns/id`, the id as text when it is text,
/// else hex.
pub(crate) fn record_name(ns: &str, id: &[u8]) -> String {
    match std::str::from_utf8(id) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => format!("{ns}/{s}"),
        _ => {
            let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
            format!("{ns}/0x{hex}")
        }
    }
}

impl SealedStore {
    /// Opens `inner`: creates a new store (with `initial` as its first
    /// commit), migrates a first-format store, or checks the store id, the
    /// format, the head and the witness of an existing one. O(1) except for
    /// creation and migration.
    pub(crate) fn open(
        inner: Box<dyn Keystore>,
        root: Arc<RootCell>,
        opts: &OpenOptions,
        initial: impl FnOnce() -> Result<Batch>,
    ) -> Result<(Self, Opened)> {
        let mut opened = Opened::default();
        let root_now = root.get();
        let keys = root_now.keys();
        let store_id = match inner.get(NS_HEAD, HEAD_STORE_ID)? {
            Some(sealed) => {
                let plain = open_record(keys, &NO_STORE_ID, NS_HEAD, HEAD_STORE_ID, &sealed)
                    .ok_or_else(|| why_not_open(inner.as_ref(), keys))?;
                StoreId::try_from(plain.as_slice())
                    .map_err(|_| Error::CorruptStore("the store id has the wrong length".into()))?
            }
            None => match inner.get(NS_META, META_FORMAT)? {
                Some(v) => {
                    let version = <[u8; 4]>::try_from(v.as_slice())
                        .map(u32::from_be_bytes)
                        .map_err(|_| {
                            Error::CorruptStore("format record has the wrong length".into())
                        })?;
                    if version != FIRST_FORMAT {
                        return Err(Error::UnsupportedStoreVersion(version));
                    }
                    opened.migrated = true;
                    migrate_first_format(inner.as_ref(), &root_now)?
                }
                None => {
                    let mut any = false;
                    inner
                        .visit_all(&mut |_, _, _| {
                            any = true;
                            Err(StoreError::Other("stop".into()))
                        })
                        .or_else(|e| if any { Ok(()) } else { Err(e) })?;
                    if any {
                        return Err(Error::CorruptStore(
                            "the store has records but no format record".into(),
                        ));
                    }
                    if let Some(path) = &opts.witness
                        && path.exists()
                        && !opts.recover_rolled_back
                    {
                        return Err(Error::StoreRolledBack(
                            format!(
                                "the store is empty but its witness {} exists: the store was lost or replaced (to start a new store, remove the witness)",
                                path.display()
                            )
                            .into(),
                        ));
                    }
                    match create(inner.as_ref(), &root_now, initial()?) {
                        Ok(id) => {
                            opened.created = true;
                            id
                        }
                        // Another process created it first: open theirs.
                        Err(e) if is_conflict(&e) => {
                            let sealed = inner.get(NS_HEAD, HEAD_STORE_ID)?.ok_or_else(|| {
                                Error::CorruptStore("the store id is missing".into())
                            })?;
                            let plain =
                                open_record(keys, &NO_STORE_ID, NS_HEAD, HEAD_STORE_ID, &sealed)
                                    .ok_or(Error::WrongRootKey)?;
                            StoreId::try_from(plain.as_slice()).map_err(|_| {
                                Error::CorruptStore("the store id has the wrong length".into())
                            })?
                        }
                        Err(e) => return Err(e),
                    }
                }
            },
        };
        let mut store = Self {
            inner,
            root,
            store_id,
            commit: Mutex::new(()),
            last: Mutex::new(None),
            seq: AtomicU64::new(0),
            witness: None,
            clock: opts.clock.clone().unwrap_or_else(|| Arc::new(SystemClock)),
            lease_ms: i64::try_from(
                opts.rotation_lease
                    .unwrap_or(DEFAULT_ROTATION_LEASE)
                    .as_millis(),
            )
            .unwrap_or(i64::MAX),
            owner: {
                let mut owner = [0u8; 16];
                fill_random(&mut owner)?;
                owner
            },
        };
        if !opened.created && !opened.migrated {
            let format = store
                .get(NS_META, META_FORMAT)?
                .ok_or_else(|| Error::CorruptStore("the format record is missing".into()))?;
            let version = <[u8; 4]>::try_from(format.as_slice())
                .map(u32::from_be_bytes)
                .map_err(|_| Error::CorruptStore("format record has the wrong length".into()))?;
            if version != STORE_FORMAT {
                return Err(Error::UnsupportedStoreVersion(version));
            }
        }
        let head = store.read_head()?;
        store.seq.store(head.seq, Ordering::Release);
        if let Some(path) = &opts.witness {
            let key = &root_now.keys().witness;
            witness::settle_next(path, key, &store.store_id)?;
            let state = witness::read(path, key, &store.store_id)?;
            let lost = match state {
                WitnessState::At(w) if w > head.seq => Some(rolled_back(path, head.seq, Some(w))),
                WitnessState::At(_) => None,
                // A new or just migrated store, or one that crashed before
                // its first witness was written, has nothing to lose.
                WitnessState::Missing if head.seq <= 1 || opts.restored => None,
                WitnessState::Missing | WitnessState::Foreign => {
                    Some(rolled_back(path, head.seq, None))
                }
                WitnessState::Damaged => Some(Error::CorruptStore(
                    format!(
                        "the witness {} is damaged (open with recover_rolled_back to replace it)",
                        path.display()
                    )
                    .into(),
                )),
            };
            let witness = match (lost, state) {
                (None, WitnessState::At(w)) => Witness::existing(path, key, &store.store_id, w)?,
                (None, _) => Witness::create(path, key, &store.store_id, head.seq)?,
                (Some(e), _) if !opts.recover_rolled_back => return Err(e),
                (Some(_), state) => {
                    opened.rolled_back = Some(RollBack {
                        head_seq: head.seq,
                        witness_seq: match state {
                            WitnessState::At(w) => Some(w),
                            _ => None,
                        },
                    });
                    Witness::create(path, key, &store.store_id, head.seq)?
                }
            };
            witness.record(head.seq)?;
            store.witness = Some(witness);
        }
        Ok((store, opened))
    }

    /// The sequence of the last commit.
    pub(crate) fn seq(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    /// A backup of every record as stored, taken while no commit runs.
    pub(crate) fn backup(&self) -> Result<(Vec<u8>, super::BackupInfo)> {
        let _commit = self
            .commit
            .lock()
            .map_err(|_| StoreError::Other("the commit lock is poisoned".into()))?;
        let mut records = Vec::new();
        self.inner.visit_all(&mut |ns, id, v| {
            records.push((ns.to_owned(), id.to_vec(), v.to_vec()));
            Ok(())
        })?;
        let n = records.len() as u64;
        let root = self.root.get();
        // The commit of the snapshot is its own head's (on a shared store,
        // other processes may have committed since this one last did).
        let seq = records
            .iter()
            .find(|(ns, id, _)| ns == NS_HEAD && id == HEAD_HEAD)
            .and_then(|(_, _, sealed)| {
                open_record(root.keys(), &self.store_id, NS_HEAD, HEAD_HEAD, sealed)
            })
            .and_then(|plain| Head::decode(&plain))
            .map_or_else(|| self.seq(), |head| head.seq);
        let bytes = super::backup::encode(&root, &self.store_id, seq, records)?;
        let info = super::BackupInfo {
            seq,
            records: n,
            bytes: bytes.len() as u64,
        };
        Ok((bytes, info))
    }

    fn read_head(&self) -> Result<Head> {
        let root = self.root.get();
        read_head(self.inner.as_ref(), root.keys(), &self.store_id).map_err(|e| {
            match self.rotated_away(root.keys()) {
                Some(r) => r.into(),
                None => e,
            }
        })
    }

    /// Why a record did not open: `RootKeyRotated` when the store's id no
    /// longer opens under `keys` (another process rotated the root key),
    /// else `None`.
    fn rotated_away(&self, keys: &StoreKeys) -> Option<StoreError> {
        let sealed = self.inner.get(NS_HEAD, HEAD_STORE_ID).ok()??;
        if open_record(keys, &NO_STORE_ID, NS_HEAD, HEAD_STORE_ID, &sealed).is_some() {
            return None;
        }
        Some(StoreError::RootKeyRotated(
            "the store's root key was rotated (by another process) since this one opened it: its records no longer open under the old key; reopen with the new root key".into(),
        ))
    }

    /// The error for `(ns, id)` that did not open under `keys`.
    fn unopened(&self, keys: &StoreKeys, ns: &str, id: &[u8]) -> StoreError {
        self.rotated_away(keys)
            .unwrap_or_else(|| unreadable(ns, id))
    }

    /// The opened value of `(ns, id)`.
    pub(crate) fn get(&self, ns: &str, id: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let root = self.root.read();
        match self.inner.get(ns, id)? {
            None => Ok(None),
            Some(sealed) => {
                let mut plain = open_record(root.keys(), &self.store_id, ns, id, &sealed)
                    .ok_or_else(|| self.unopened(root.keys(), ns, id))?;
                Ok(Some(std::mem::take(&mut *plain)))
            }
        }
    }

    /// The opened records that `scan` selects.
    pub(crate) fn scan(&self, ns: &str, scan: Scan<'_>) -> Result<Vec<Record>, StoreError> {
        let root = self.root.read();
        let mut out = self.inner.scan(ns, scan)?;
        for (id, value) in &mut out {
            let mut plain = open_record(root.keys(), &self.store_id, ns, id, value)
                .ok_or_else(|| self.unopened(root.keys(), ns, id))?;
            *value = std::mem::take(&mut *plain);
        }
        Ok(out)
    }

    /// Reads the head: the start of a write. Everything the write reads
    /// afterwards is consistent with what it commits, because
    /// [`SealedStore::commit_at`] applies only while the head is still the
    /// one read here (every commit rewrites it), in this process or any other.
    pub(crate) fn snapshot(&self) -> Result<Snapshot> {
        let sealed = self.inner.get(NS_HEAD, HEAD_HEAD)?;
        self.snapshot_of(sealed)
    }

    /// [`SealedStore::snapshot`] and the opened value of `(ns, id)`, read
    /// after the head in one call to the backend (one round trip on a
    /// shared one). The value belongs to the snapshot as any read made after
    /// it does: a commit at the snapshot applies only if no other landed.
    pub(crate) fn snapshot_reading(
        &self,
        ns: &'static str,
        id: &[u8],
    ) -> Result<(Snapshot, Option<Vec<u8>>)> {
        if let Some(hit) = self.reading_last_commit(ns, id)? {
            return Ok(hit);
        }
        let mut got = self
            .inner
            .get_many(&[(NS_HEAD, HEAD_HEAD), (ns, id)])?
            .into_iter();
        let (Some(head), Some(value), None) = (got.next(), got.next(), got.next()) else {
            return Err(StoreError::Other(
                "the keystore answered the wrong number of records read at once".into(),
            )
            .into());
        };
        let mut snap = self.snapshot_of(head)?;
        let opened = self.opened(ns, id, value.as_deref())?;
        snap.known.push((ns, id.to_vec(), value));
        Ok((snap, opened))
    }

    /// The opened value of `(ns, id)` stored as `stored`.
    fn opened(&self, ns: &str, id: &[u8], stored: Option<&[u8]>) -> Result<Option<Vec<u8>>> {
        let Some(sealed) = stored else {
            return Ok(None);
        };
        let root = self.root.read();
        let mut plain = open_record(root.keys(), &self.store_id, ns, id, sealed)
            .ok_or_else(|| self.unopened(root.keys(), ns, id))?;
        Ok(Some(std::mem::take(&mut *plain)))
    }

    /// [`SealedStore::snapshot_reading`] from this holder's last commit,
    /// when it wrote `(ns, id)`; `None` when it did not (or there is none).
    fn reading_last_commit(
        &self,
        ns: &'static str,
        id: &[u8],
    ) -> Result<Option<(Snapshot, Option<Vec<u8>>)>> {
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(last) = last.as_ref() else {
            return Ok(None);
        };
        let Some(stored) = last.records.get(&(ns, id.to_vec())) else {
            return Ok(None);
        };
        let value = self.opened(ns, id, stored.as_deref())?;
        let snap = Snapshot {
            sealed: last.sealed.clone(),
            head: last.head,
            known: vec![(ns, id.to_vec(), stored.clone())],
        };
        Ok(Some((snap, value)))
    }

    /// Remembers (on a shared store) or forgets what the last commit wrote.
    fn remember(&self, commit: Option<(&Batch, &[u8], Head)>) {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        *last = match commit {
            Some((out, sealed, head)) if self.inner.is_shared() => Some(LastCommit {
                sealed: sealed.to_vec(),
                head,
                records: out
                    .ops()
                    .iter()
                    .filter_map(|op| match op {
                        Op::Put { ns, id, value } if *ns != NS_HEAD => {
                            Some(((*ns, id.clone()), Some(value.clone())))
                        }
                        Op::Delete { ns, id } if *ns != NS_HEAD => Some(((*ns, id.clone()), None)),
                        _ => None,
                    })
                    .collect(),
            }),
            _ => None,
        };
    }

    fn snapshot_of(&self, sealed: Option<Vec<u8>>) -> Result<Snapshot> {
        let sealed =
            sealed.ok_or_else(|| Error::CorruptStore("the head record is missing".into()))?;
        let root = self.root.get();
        let head = match open_record(root.keys(), &self.store_id, NS_HEAD, HEAD_HEAD, &sealed)
            .and_then(|p| Head::decode(&p))
        {
            Some(h) => h,
            None => {
                return Err(match self.rotated_away(root.keys()) {
                    Some(r) => r.into(),
                    None => Error::CorruptStore("the head record does not open".into()),
                });
            }
        };
        self.seq.fetch_max(head.seq, Ordering::AcqRel);
        Ok(Snapshot {
            sealed,
            head,
            known: Vec::new(),
        })
    }

    /// Seals and applies `batch` with the new head, atomically, if the head
    /// is still `snap` (else nothing is applied and the error is
    /// [`StoreError::Conflict`]: read again and retry). On success `snap`
    /// becomes the new head, so one write may commit several batches.
    /// Returns the commit's sequence.
    pub(crate) fn commit_at(&self, snap: &mut Snapshot, batch: Batch) -> Result<u64> {
        self.commit_new_at(snap, batch, &[])
    }

    /// [`SealedStore::commit_at`] for a batch that creates the records
    /// named in `new`: each must be absent, checked in the same atomic step
    /// (else the error is a conflict, as for a moved head), so they are not
    /// read first.
    pub(crate) fn commit_new_at(
        &self,
        snap: &mut Snapshot,
        batch: Batch,
        new: &[(&'static str, Vec<u8>)],
    ) -> Result<u64> {
        let _commit = self
            .commit
            .lock()
            .map_err(|_| StoreError::Other("the commit lock is poisoned".into()))?;
        let mut head = snap.head;
        self.refuse_foreign_lease(&head)?;
        // A lease that lapsed (its holder died, or overran) is broken here:
        // the rotation's own switch then fails, changing nothing.
        head.lease = None;
        let root = self.root.get();
        let mut out = Batch::new();
        let known: Vec<Known<'_>> = snap
            .known
            .iter()
            .map(|(ns, id, v)| (*ns, id.as_slice(), v.as_deref()))
            .chain(new.iter().map(|(ns, id)| (*ns, id.as_slice(), None)))
            .collect();
        stage(
            self.inner.as_ref(),
            root.keys(),
            &self.store_id,
            &mut head,
            batch,
            &mut out,
            Prior::Stored(&known),
        )?;
        head.seq += 1;
        let sealed = seal_record(
            root.keys(),
            &self.store_id,
            NS_HEAD,
            HEAD_HEAD,
            &head.encode(),
        )?;
        out.put(NS_HEAD, HEAD_HEAD.to_vec(), sealed.clone());
        let mut expect = vec![Expect::value(NS_HEAD, HEAD_HEAD, &snap.sealed)];
        expect.extend(new.iter().map(|(ns, id)| Expect::absent(ns, id)));
        let applied = match self.inner.apply_if(&expect, out.clone()) {
            Ok(r) => r,
            // A backend without conditional apply is single-process: under
            // the commit lock, check and apply cannot be interleaved here.
            Err(StoreError::Unsupported(_)) => {
                let mut holds =
                    self.inner.get(NS_HEAD, HEAD_HEAD)?.as_deref() == Some(snap.sealed.as_slice());
                for (ns, id) in new {
                    holds = holds && self.inner.get(ns, id)?.is_none();
                }
                if holds {
                    self.inner.apply(out.clone())?;
                    Ok(())
                } else {
                    Err(Conflict)
                }
            }
            Err(e) => {
                self.remember(None);
                return Err(e.into());
            }
        };
        if applied.is_err() {
            self.remember(None);
            return Err(Error::Storage(StoreError::Conflict(
                "another writer committed since this write read the store; nothing was applied"
                    .into(),
            )));
        }
        self.remember(Some((&out, &sealed, head)));
        self.seq.fetch_max(head.seq, Ordering::AcqRel);
        *snap = Snapshot {
            sealed,
            head,
            known: Vec::new(),
        };
        Ok(head.seq)
    }

    /// Refuses a write while another holder's rotation lease is live.
    fn refuse_foreign_lease(&self, head: &Head) -> Result<()> {
        match head.lease {
            Some(lease) if lease.owner != self.owner => {
                let left = lease.until_ms.saturating_sub(self.clock.now_millis());
                if left > 0 {
                    return Err(Error::Storage(StoreError::Locked(format!(
                        "another process is rotating the store's root key (its lease lapses in {} s at most); writes wait for it: retry",
                        left.saturating_add(999) / 1000
                    ))));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Seals and applies `batch` (which depends on nothing read before it)
    /// with the new head, atomically, retried while other writers win;
    /// returns the commit's sequence.
    pub(crate) fn commit(&self, batch: Batch) -> Result<u64> {
        let mut attempt = 0;
        loop {
            let mut snap = self.snapshot()?;
            match self.commit_at(&mut snap, batch.clone()) {
                Err(e) if is_conflict(&e) && attempt < WRITE_ATTEMPTS => {
                    attempt += 1;
                    conflict_backoff(attempt);
                }
                other => return other,
            }
        }
    }

    /// [`SealedStore::commit`] for callers that need no sequence.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        Keystore::apply(self, batch)
    }

    /// Makes every commit so far durable, then records it in the witness.
    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        let seq = self.seq();
        self.inner.flush()?;
        if let Some(w) = &self.witness {
            w.record(seq).map_err(|e| match e {
                Error::Storage(s) => s,
                other => StoreError::Io(other.to_string()),
            })?;
        }
        Ok(())
    }

    /// Checks every record and the digest (no commit runs meanwhile).
    pub(crate) fn verify(&self) -> Result<Report> {
        let _commit = self
            .commit
            .lock()
            .map_err(|_| StoreError::Other("the commit lock is poisoned".into()))?;
        let mut report = Report::default();
        let mut digest = Digest::default();
        let mut count = 0u64;
        let root = self.root.get();
        let keys = root.keys();
        // The head is read in the same pass: on a shared store the pass is
        // one snapshot, so other processes' commits cannot come between the
        // head and the records.
        let mut head_sealed = None;
        self.inner.visit_all(&mut |ns, id, sealed| {
            if ns == NS_HEAD {
                if id == HEAD_HEAD {
                    head_sealed = Some(sealed.to_vec());
                }
                return Ok(());
            }
            count += 1;
            digest.add(&digest_term(keys, &self.store_id, ns, id, sealed));
            if static_ns(ns).is_none()
                || open_record(keys, &self.store_id, ns, id, sealed).is_none()
            {
                report.unreadable.push(record_name(ns, id));
            }
            Ok(())
        })?;
        let head = head_sealed
            .and_then(|sealed| open_record(keys, &self.store_id, NS_HEAD, HEAD_HEAD, &sealed))
            .and_then(|plain| Head::decode(&plain));
        if head.is_none() {
            report.unreadable.push(record_name(NS_HEAD, HEAD_HEAD));
        }
        report.records = count;
        if let Some(h) = head {
            report.head_seq = h.seq;
            report.digest_matches = h.digest.matches(&digest) && h.count == count;
        }
        report.witness_seq = match &self.witness {
            Some(w) => Some(w.written()?),
            None => None,
        };
        Ok(report)
    }
}

impl SealedStore {
    /// Rotates the root key to `new` (SPEC section 9): every record is
    /// opened under the old key, passed through `reseal` (which re-seals the
    /// inner seal of a secret value), sealed again under `new`, and written
    /// with the re-sealed store id, a new head and a `head/retired-<seq>`
    /// marker in one atomic batch. Before it, `head/rotating` (under `new`)
    /// and the witness's `.next` file are written and `before` runs (the
    /// caller writes the new root key file); after it, the witness is
    /// replaced and `after` runs. A crash before the batch leaves the store
    /// under the old key, after it under the new. Commits and readers wait.
    pub(crate) fn rotate(
        &self,
        new: RootKey,
        reseal: impl Fn(&RootKey, &RootKey, &'static str, &[u8], Zeroizing<Vec<u8>>) -> Result<Vec<u8>>,
        before: impl FnOnce() -> Result<()>,
        after: impl FnOnce() -> Result<()>,
    ) -> Result<u64> {
        let _commit = self
            .commit
            .lock()
            .map_err(|_| StoreError::Other("the commit lock is poisoned".into()))?;
        self.remember(None);
        let new = Arc::new(new);
        let mut root = self.root.write();
        let old = Arc::clone(&root);
        let (ok, nk) = (old.keys(), new.keys());
        let id_sealed = self
            .inner
            .get(NS_HEAD, HEAD_STORE_ID)?
            .ok_or_else(|| Error::CorruptStore("the store id record is missing".into()))?;
        if open_record(ok, &NO_STORE_ID, NS_HEAD, HEAD_STORE_ID, &id_sealed).is_none() {
            return Err(self
                .rotated_away(ok)
                .map_or(Error::WrongRootKey, Error::from));
        }
        if open_record(nk, &NO_STORE_ID, NS_HEAD, HEAD_STORE_ID, &id_sealed).is_some() {
            return Err(Error::InvalidParameter {
                param: "new root key",
                reason: "it is the store's current root key".into(),
            });
        }
        // On a shared store, the lease first: every other holder's write
        // from here on fails (its head changed) or waits (it sees the lease).
        let mut lease = LeaseGuard {
            store: self,
            keys: ok,
            leased: if self.inner.is_shared() {
                Some(self.take_lease(ok)?)
            } else {
                None
            },
        };
        let head = match &lease.leased {
            Some(snap) => snap.head,
            None => read_head(self.inner.as_ref(), ok, &self.store_id)?,
        };
        let mut records: Vec<(&'static str, Vec<u8>, Vec<u8>)> = Vec::new();
        self.inner.visit_all(&mut |ns, id, value| {
            if ns == NS_HEAD {
                return Ok(());
            }
            let ns = static_ns(ns).ok_or_else(|| unreadable(ns, id))?;
            records.push((ns, id.to_vec(), value.to_vec()));
            Ok(())
        })?;
        // Everything opens before anything is written: a store with a bad
        // record is not rotated (run verify).
        let mut batch = Batch::new();
        for (ns, id, sealed) in records {
            let plain = open_record(ok, &self.store_id, ns, &id, &sealed)
                .ok_or_else(|| unreadable(ns, &id))?;
            let value = reseal(&old, &new, ns, &id, plain)?;
            batch.put(ns, id, value);
        }
        let seq = head.seq + 1;
        let mut new_head = Head::default();
        let mut out = Batch::new();
        out.put(
            NS_HEAD,
            HEAD_STORE_ID.to_vec(),
            seal_record(nk, &NO_STORE_ID, NS_HEAD, HEAD_STORE_ID, &self.store_id)?,
        );
        stage(
            self.inner.as_ref(),
            nk,
            &self.store_id,
            &mut new_head,
            batch,
            &mut out,
            Prior::Fresh,
        )?;
        new_head.seq = seq;
        out.put(
            NS_HEAD,
            HEAD_HEAD.to_vec(),
            seal_record(nk, &self.store_id, NS_HEAD, HEAD_HEAD, &new_head.encode())?,
        );
        let retired = retired_id(seq);
        out.put(
            NS_HEAD,
            retired.clone(),
            seal_record(ok, &NO_STORE_ID, NS_HEAD, &retired, &self.store_id)?,
        );
        out.delete(NS_HEAD, HEAD_ROTATING.to_vec());
        // Before: the markers that let open explain a crash.
        let mut marker = Batch::new();
        marker.put(
            NS_HEAD,
            HEAD_ROTATING.to_vec(),
            seal_record(nk, &NO_STORE_ID, NS_HEAD, HEAD_ROTATING, &self.store_id)?,
        );
        self.inner.apply(marker)?;
        self.inner.flush()?;
        if let Some(w) = &self.witness {
            w.prepare_next(&nk.witness, seq)?;
        }
        before()?;
        // The switch: one atomic batch; on a shared store, only while the
        // head is still the leased one (no other holder broke a lapsed lease
        // and wrote).
        match &lease.leased {
            None => self.inner.apply(out)?,
            Some(snap) => {
                if self
                    .inner
                    .apply_if(&[Expect::value(NS_HEAD, HEAD_HEAD, &snap.sealed)], out)?
                    .is_err()
                {
                    return Err(Error::Storage(StoreError::Conflict(format!(
                        "the rotation outlived its lease of {} s and another process wrote meanwhile: nothing was rotated (the store opens with the old root key); rotate again, with a longer rotation lease",
                        self.lease_ms / 1000
                    ))));
                }
                // The switch wrote a head without the lease.
                lease.leased = None;
            }
        }
        drop(lease);
        self.inner.flush()?;
        *root = Arc::clone(&new);
        self.seq.store(seq, Ordering::Release);
        drop(root);
        if let Some(w) = &self.witness {
            w.promote_next(&nk.witness, seq)?;
        }
        after()?;
        Ok(seq)
    }
}

impl SealedStore {
    /// Takes the rotation lease of a shared store (a commit of the head
    /// alone, with the lease in it), retrying while other writers win.
    /// Returns the leased head.
    fn take_lease(&self, keys: &StoreKeys) -> Result<Snapshot> {
        let mut attempt = 0;
        loop {
            // Not `snapshot`: the rotation holds the root cell's write lock.
            let sealed_head = self
                .inner
                .get(NS_HEAD, HEAD_HEAD)?
                .ok_or_else(|| Error::CorruptStore("the head record is missing".into()))?;
            let snap = Snapshot {
                head: open_record(keys, &self.store_id, NS_HEAD, HEAD_HEAD, &sealed_head)
                    .and_then(|p| Head::decode(&p))
                    .ok_or_else(|| Error::CorruptStore("the head record does not open".into()))?,
                sealed: sealed_head,
                known: Vec::new(),
            };
            self.refuse_foreign_lease(&snap.head)?;
            let mut head = snap.head;
            head.seq += 1;
            head.lease = Some(Lease {
                owner: self.owner,
                until_ms: self.clock.now_millis().saturating_add(self.lease_ms),
            });
            let sealed = seal_record(keys, &self.store_id, NS_HEAD, HEAD_HEAD, &head.encode())?;
            let mut batch = Batch::new();
            batch.put(NS_HEAD, HEAD_HEAD.to_vec(), sealed.clone());
            let expect = [Expect::value(NS_HEAD, HEAD_HEAD, &snap.sealed)];
            match self.inner.apply_if(&expect, batch)? {
                Ok(()) => {
                    self.seq.fetch_max(head.seq, Ordering::AcqRel);
                    return Ok(Snapshot {
                        sealed,
                        head,
                        known: Vec::new(),
                    });
                }
                Err(Conflict) if attempt < WRITE_ATTEMPTS => {
                    attempt += 1;
                    conflict_backoff(attempt);
                }
                Err(Conflict) => {
                    return Err(Error::Storage(StoreError::Conflict(
                        "other writers kept committing: the rotation could not take its lease; nothing was rotated".into(),
                    )));
                }
            }
        }
    }
}

/// A rotation's lease, released (by a commit of the head without it) when
/// the rotation fails after taking it, so other holders need not wait for
/// it to lapse.
struct LeaseGuard<'a> {
    store: &'a SealedStore,
    keys: &'a StoreKeys,
    leased: Option<Snapshot>,
}

impl Drop for LeaseGuard<'_> {
    fn drop(&mut self) {
        let Some(snap) = self.leased.take() else {
            return;
        };
        let mut head = snap.head;
        head.seq += 1;
        head.lease = None;
        let store = self.store;
        let Ok(sealed) = seal_record(
            self.keys,
            &store.store_id,
            NS_HEAD,
            HEAD_HEAD,
            &head.encode(),
        ) else {
            return;
        };
        let mut batch = Batch::new();
        batch.put(NS_HEAD, HEAD_HEAD.to_vec(), sealed);
        // Best effort: a lease not released lapses at its time.
        if let Ok(Ok(())) = store
            .inner
            .apply_if(&[Expect::value(NS_HEAD, HEAD_HEAD, &snap.sealed)], batch)
        {
            store.seq.fetch_max(head.seq, Ordering::AcqRel);
        }
    }
}

/// The id of the marker of a root key retired by the rotation of commit `seq`.
fn retired_id(seq: u64) -> Vec<u8> {
    let mut id = HEAD_RETIRED_PREFIX.to_vec();
    id.extend_from_slice(format!("{seq:020}").as_bytes());
    id
}

/// Whether `root` opens the store in `inner` (its id record).
pub(crate) fn opens(inner: &dyn Keystore, root: &RootKey) -> Result<bool> {
    Ok(match inner.get(NS_HEAD, HEAD_STORE_ID)? {
        Some(sealed) => {
            open_record(root.keys(), &NO_STORE_ID, NS_HEAD, HEAD_STORE_ID, &sealed).is_some()
        }
        None => false,
    })
}

/// Why a root key whose `keys` do not open the store's id record fails: a
/// retired key, the new key of an unfinished rotation, or a wrong key.
fn why_not_open(inner: &dyn Keystore, keys: &StoreKeys) -> Error {
    if let Ok(Some(v)) = inner.get(NS_HEAD, HEAD_ROTATING)
        && open_record(keys, &NO_STORE_ID, NS_HEAD, HEAD_ROTATING, &v).is_some()
    {
        return Error::RootKeyRotated(
            "this is the new key of a rotation that did not complete; the store still opens with the previous root key: open it with that key and run the rotation again".into(),
        );
    }
    if let Ok(retired) = inner.scan(NS_HEAD, Scan::prefix(HEAD_RETIRED_PREFIX)) {
        for (id, v) in retired {
            if open_record(keys, &NO_STORE_ID, NS_HEAD, &id, &v).is_some() {
                let at = String::from_utf8_lossy(&id[HEAD_RETIRED_PREFIX.len()..]).into_owned();
                let at = at.trim_start_matches('0');
                return Error::RootKeyRotated(
                    format!("this root key was retired by a rotation (commit {at}): open the store with the new root key").into(),
                );
            }
        }
    }
    Error::WrongRootKey
}

impl AsRef<dyn Keystore> for SealedStore {
    fn as_ref(&self) -> &(dyn Keystore + 'static) {
        self
    }
}

impl Keystore for SealedStore {
    fn get(&self, ns: &str, id: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        SealedStore::get(self, ns, id)
    }

    fn scan(&self, ns: &str, scan: Scan<'_>) -> Result<Vec<Record>, StoreError> {
        SealedStore::scan(self, ns, scan)
    }

    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        self.commit(batch).map(|_| ()).map_err(|e| match e {
            Error::Storage(s) => s,
            Error::StoreLocked(s) => StoreError::Locked(s),
            other => StoreError::Corrupt(other.to_string()),
        })
    }

    fn flush(&self) -> Result<(), StoreError> {
        SealedStore::flush(self)
    }

    fn is_shared(&self) -> bool {
        self.inner.is_shared()
    }
}

fn rolled_back(path: &std::path::Path, head: u64, witness: Option<u64>) -> Error {
    let what = match witness {
        Some(w) => format!(
            "the store's head is at commit {head} but its witness {} is at commit {w}",
            path.display()
        ),
        None => format!(
            "the store is at commit {head} but its witness {} is missing or belongs to another store",
            path.display()
        ),
    };
    Error::StoreRolledBack(
        format!(
            "{what}: acknowledged writes were lost, or an old copy of the store was put back (to accept the loss, open with recover_rolled_back)"
        )
        .into(),
    )
}

fn read_head(inner: &dyn Keystore, keys: &StoreKeys, store_id: &StoreId) -> Result<Head> {
    let sealed = inner
        .get(NS_HEAD, HEAD_HEAD)?
        .ok_or_else(|| Error::CorruptStore("the head record is missing".into()))?;
    open_record(keys, store_id, NS_HEAD, HEAD_HEAD, &sealed)
        .and_then(|p| Head::decode(&p))
        .ok_or_else(|| Error::CorruptStore("the head record does not open".into()))
}

/// Seals the changes of `batch` into `out` and updates `head`'s digest and
/// count: the term of each record replaced or deleted is subtracted, the term
/// of each record written added ([`Prior`] says how the replaced records
/// are found).
fn stage(
    inner: &dyn Keystore,
    keys: &StoreKeys,
    store_id: &StoreId,
    head: &mut Head,
    batch: Batch,
    out: &mut Batch,
    prior: Prior<'_>,
) -> Result<()> {
    // What this batch has written so far, so a record changed twice
    // subtracts its own earlier term.
    let mut overlay: HashMap<(&'static str, Vec<u8>), Option<[u8; 32]>> = HashMap::new();
    let ops = batch.into_ops();
    // The terms of the records the batch replaces, read in one call (one
    // round trip on a shared backend).
    let mut stored: HashMap<(&'static str, Vec<u8>), Option<[u8; 32]>> = HashMap::new();
    let fresh = matches!(prior, Prior::Fresh);
    if let Prior::Stored(known) = prior {
        let mut names: Vec<(&'static str, &[u8])> = Vec::new();
        for op in &ops {
            let (Op::Put { ns, id, .. } | Op::Delete { ns, id }) = op;
            if stored.contains_key(&(*ns, id.clone())) {
                continue;
            }
            match known.iter().find(|(n, i, _)| n == ns && i == id) {
                Some((_, _, v)) => {
                    let term = v.map(|v| digest_term(keys, store_id, ns, id, v));
                    stored.insert((*ns, id.clone()), term);
                }
                None => {
                    stored.insert((*ns, id.clone()), None);
                    names.push((*ns, id.as_slice()));
                }
            }
        }
        let got = inner.get_many(&names)?;
        if got.len() != names.len() {
            return Err(StoreError::Other(format!(
                "the keystore answered {} of {} records read at once",
                got.len(),
                names.len()
            ))
            .into());
        }
        for ((ns, id), v) in names.iter().zip(got) {
            let term = v.map(|v| digest_term(keys, store_id, ns, id, &v));
            stored.insert((*ns, id.to_vec()), term);
        }
    }
    for op in ops {
        let (ns, id) = match &op {
            Op::Put { ns, id, .. } | Op::Delete { ns, id } => (*ns, id.clone()),
        };
        if ns == NS_HEAD {
            return Err(Error::InternalFailure);
        }
        let old = match overlay.get(&(ns, id.clone())) {
            Some(t) => *t,
            None if fresh => None,
            None => *stored
                .get(&(ns, id.clone()))
                .ok_or(Error::InternalFailure)?,
        };
        if let Some(t) = old {
            head.digest.sub(&t);
            head.count = head.count.saturating_sub(1);
        }
        match op {
            Op::Put { ns, id, mut value } => {
                let sealed = seal_record(keys, store_id, ns, &id, &value)?;
                value.zeroize();
                let t = digest_term(keys, store_id, ns, &id, &sealed);
                head.digest.add(&t);
                head.count += 1;
                overlay.insert((ns, id.clone()), Some(t));
                out.put(ns, id, sealed);
            }
            Op::Delete { ns, id } => {
                overlay.insert((ns, id.clone()), None);
                out.delete(ns, id);
            }
        }
    }
    Ok(())
}

/// Writes a new store: its id, then `initial` and the format record, and
/// the head, in one batch.
fn create(inner: &dyn Keystore, root: &RootKey, initial: Batch) -> Result<StoreId> {
    let mut store_id = NO_STORE_ID;
    fill_random(&mut store_id)?;
    let keys = root.keys();
    let mut batch = initial;
    batch.put(NS_META, META_FORMAT, STORE_FORMAT.to_be_bytes().to_vec());
    write_new(inner, keys, &store_id, batch)?;
    Ok(store_id)
}

/// Writes `batch` into a store that has no head yet, with the store id and
/// the head of commit 1, in one batch, and flushes. Records already in the
/// store are not covered by any digest: `batch` must overwrite or delete each.
fn write_new(
    inner: &dyn Keystore,
    keys: &StoreKeys,
    store_id: &StoreId,
    batch: Batch,
) -> Result<()> {
    let mut head = Head::default();
    let mut out = Batch::new();
    out.put(
        NS_HEAD,
        HEAD_STORE_ID.to_vec(),
        seal_record(keys, &NO_STORE_ID, NS_HEAD, HEAD_STORE_ID, store_id)?,
    );
    stage(
        inner,
        keys,
        store_id,
        &mut head,
        batch,
        &mut out,
        Prior::Fresh,
    )?;
    head.seq = 1;
    out.put(
        NS_HEAD,
        HEAD_HEAD.to_vec(),
        seal_record(keys, store_id, NS_HEAD, HEAD_HEAD, &head.encode())?,
    );
    // Two processes may create one shared store at once: only the first
    // wins; the other opens what it wrote.
    match inner.apply_if(&[Expect::absent(NS_HEAD, HEAD_STORE_ID)], out.clone()) {
        Ok(Ok(())) => {}
        Ok(Err(Conflict)) => {
            return Err(Error::Storage(StoreError::Conflict(
                "another process created the store at the same time".into(),
            )));
        }
        Err(StoreError::Unsupported(_)) => inner.apply(out)?,
        Err(e) => return Err(e.into()),
    }
    inner.flush()?;
    Ok(())
}

/// Migrates a first-format store in place: every record is sealed (material
/// bound to generation 0), the root check is replaced by the store id, and
/// the head is written, all in one atomic batch. A crash leaves the first
/// format or the new one, never a mix.
fn migrate_first_format(inner: &dyn Keystore, root: &RootKey) -> Result<StoreId> {
    let check = inner
        .get(NS_META, META_ROOT_CHECK)?
        .ok_or_else(|| Error::CorruptStore("root key check record is missing".into()))?;
    match root.open(NS_META, META_ROOT_CHECK, &check) {
        Some(p) if p.as_slice() == ROOT_CHECK_PLAINTEXT => {}
        _ => return Err(Error::WrongRootKey),
    }
    let mut records: Vec<(&'static str, Vec<u8>, Vec<u8>)> = Vec::new();
    inner.visit_all(&mut |ns, id, value| {
        let Some(ns) = static_ns(ns).filter(|n| *n != NS_HEAD) else {
            return Err(StoreError::Corrupt(format!(
                "a first-format store holds a record in the unknown namespace {ns:?}"
            )));
        };
        records.push((ns, id.to_vec(), value.to_vec()));
        Ok(())
    })?;
    let mut store_id = NO_STORE_ID;
    fill_random(&mut store_id)?;
    let mut batch = Batch::new();
    for (ns, id, value) in records {
        if ns == NS_META && (id == META_FORMAT || id == META_ROOT_CHECK) {
            continue;
        }
        let value = if ns == NS_MATERIAL {
            [0u64.to_be_bytes().as_slice(), &value].concat()
        } else {
            value
        };
        batch.put(ns, id, value);
    }
    batch.put(NS_META, META_FORMAT, STORE_FORMAT.to_be_bytes().to_vec());
    batch.delete(NS_META, META_ROOT_CHECK.to_vec());
    write_new(inner, root.keys(), &store_id, batch)?;
    Ok(store_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_add_and_sub_are_inverse_mod_2_256() {
        let mut d = Digest::default();
        let a = [0xff; 32];
        let mut b = [0u8; 32];
        b[31] = 2;
        d.add(&a);
        d.add(&b);
        let mut expect = [0u8; 32];
        expect[31] = 1;
        assert_eq!(d.0, expect, "wraps mod 2^256");
        d.sub(&a);
        assert_eq!(d.0, b);
        d.sub(&b);
        assert_eq!(d, Digest::default());
        d.sub(&b);
        d.add(&b);
        assert_eq!(d, Digest::default());
    }

    #[test]
    fn head_round_trips_and_refuses_other_lengths() {
        let h = Head {
            seq: 7,
            count: 3,
            digest: Digest([9; 32]),
            lease: None,
        };
        assert_eq!(Head::decode(&h.encode()), Some(h));
        assert_eq!(Head::decode(&h.encode()[..48]), None);
        let mut other = h.encode();
        other[0] = 2;
        assert_eq!(Head::decode(&other), None);
        let leased = Head {
            lease: Some(Lease {
                owner: [5; 16],
                until_ms: 1_700_000_000_123,
            }),
            ..h
        };
        assert_eq!(Head::decode(&leased.encode()), Some(leased));
        assert_eq!(Head::decode(&leased.encode()[..72]), None);
        let mut other = leased.encode();
        other[0] = 1;
        assert_eq!(Head::decode(&other), None);
    }

    /// Golden vector of a head with a lease (docs/FORMAT.md).
    #[test]
    fn leased_head_golden_vector() {
        let h = Head {
            seq: 7,
            count: 3,
            digest: Digest([9; 32]),
            lease: Some(Lease {
                owner: [5; 16],
                until_ms: 1_700_000_000_123,
            }),
        };
        let hex: String = h.encode().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            concat!(
                "02",
                "0000000000000007",
                "0000000000000003",
                "0909090909090909090909090909090909090909090909090909090909090909",
                "05050505050505050505050505050505",
                "0000018bcfe5687b"
            )
        );
    }
}
