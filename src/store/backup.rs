//! Backup and restore (SPEC section 9; format in docs/FORMAT.md, "Backup").
//!
//! A backup is a consistent snapshot of the sealed records as stored, with a
//! header and a MAC under the backup key derived from the root key:
//!
//! ```text
//! "LKMSBAK1" || store format u32 || store id (16) || seq u64 || count u64
//! || count x ( len(ns) u8 || ns || len(id) u32 || id || len(value) u32 || value )
//! || HMAC-SHA256(backup key, everything before)
//! ```
//!
//! Records are in ascending (ns, id) order, the `head` namespace included.
//! Restore checks everything (structure, the root key, the MAC, the head,
//! every record, the digest) before it writes, and writes into an empty
//! store in one atomic batch.

use hmac::{KeyInit as _, Mac as _};

use super::record::{HEAD_HEAD, HEAD_STORE_ID, NS_HEAD, STORE_FORMAT, static_ns};
use super::seal::RootKey;
use super::sealed::{Digest, Head, StoreId, digest_term, open_record};
use super::{Batch, Keystore, StoreError};
use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"LKMSBAK1";
const MAC_LEN: usize = 32;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

fn new_mac(root: &RootKey) -> HmacSha256 {
    HmacSha256::new_from_slice(root.keys().backup.as_ref())
        // safe: HMAC takes a key of any length
        .unwrap_or_else(|_| unreachable!())
}

/// What a backup holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupInfo {
    /// The store's commit sequence at the snapshot.
    pub seq: u64,
    /// Records written (the head and the store id included).
    pub records: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// Encodes a backup of `records` (raw, as stored).
pub(crate) fn encode(
    root: &RootKey,
    store_id: &StoreId,
    seq: u64,
    mut records: Vec<(String, Vec<u8>, Vec<u8>)>,
) -> Result<Vec<u8>> {
    records.sort();
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&STORE_FORMAT.to_be_bytes());
    out.extend_from_slice(store_id);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&(records.len() as u64).to_be_bytes());
    for (ns, id, value) in &records {
        out.push(u8::try_from(ns.len()).map_err(|_| Error::InternalFailure)?);
        out.extend_from_slice(ns.as_bytes());
        out.extend_from_slice(
            &u32::try_from(id.len())
                .map_err(|_| Error::InternalFailure)?
                .to_be_bytes(),
        );
        out.extend_from_slice(id);
        out.extend_from_slice(
            &u32::try_from(value.len())
                .map_err(|_| Error::InternalFailure)?
                .to_be_bytes(),
        );
        out.extend_from_slice(value);
    }
    let mut mac = new_mac(root);
    mac.update(&out);
    out.extend_from_slice(&mac.finalize().into_bytes());
    Ok(out)
}

fn bad(why: &str) -> Error {
    Error::CorruptStore(format!("the backup is not valid: {why}").into())
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(bad("it is truncated"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(
            self.take(4)?
                .try_into()
                .map_err(|_| Error::InternalFailure)?,
        ))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(
            self.take(8)?
                .try_into()
                .map_err(|_| Error::InternalFailure)?,
        ))
    }
}

/// Checks a backup completely and returns the batch that restores it.
pub(crate) fn check(root: &RootKey, bytes: &[u8]) -> Result<Batch> {
    use subtle::ConstantTimeEq as _;
    if bytes.len() < MAGIC.len() + 4 + 16 + 16 + MAC_LEN {
        return Err(bad("it is truncated"));
    }
    let (body, tag) = bytes.split_at(bytes.len() - MAC_LEN);
    let mut r = Reader(body);
    if r.take(8)? != MAGIC {
        return Err(bad("it is not a localkms backup"));
    }
    let format = r.u32()?;
    if format != STORE_FORMAT {
        return Err(Error::UnsupportedStoreVersion(format));
    }
    let store_id: StoreId = r.take(16)?.try_into().map_err(|_| Error::InternalFailure)?;
    let seq = r.u64()?;
    let count = r.u64()?;
    let mut records = Vec::new();
    for _ in 0..count {
        let ns_len = usize::from(r.take(1)?[0]);
        let ns = std::str::from_utf8(r.take(ns_len)?).map_err(|_| bad("a namespace"))?;
        let ns = static_ns(ns).ok_or_else(|| bad("an unknown namespace"))?;
        let id_len = r.u32()? as usize;
        let id = r.take(id_len)?;
        let v_len = r.u32()? as usize;
        let value = r.take(v_len)?;
        records.push((ns, id, value));
    }
    if !r.0.is_empty() {
        return Err(bad("it has bytes after its records"));
    }
    // The root key first (a clear error), then the MAC over everything.
    let keys = root.keys();
    let id_record = records
        .iter()
        .find(|(ns, id, _)| *ns == NS_HEAD && *id == HEAD_STORE_ID)
        .ok_or_else(|| bad("it has no store id"))?;
    let opened = open_record(keys, &[0; 16], NS_HEAD, HEAD_STORE_ID, id_record.2)
        .ok_or(Error::WrongRootKey)?;
    if opened.as_slice() != store_id {
        return Err(bad("its header names another store"));
    }
    let mut mac = new_mac(root);
    mac.update(body);
    if !bool::from(mac.finalize().into_bytes().as_slice().ct_eq(tag)) {
        return Err(bad("its MAC does not match (changed or truncated)"));
    }
    // Every record opens, and the digest and count match the head.
    let head_record = records
        .iter()
        .find(|(ns, id, _)| *ns == NS_HEAD && *id == HEAD_HEAD)
        .ok_or_else(|| bad("it has no head"))?;
    let head = open_record(keys, &store_id, NS_HEAD, HEAD_HEAD, head_record.2)
        .and_then(|p| Head::decode(&p))
        .ok_or_else(|| bad("its head does not open"))?;
    if head.seq != seq {
        return Err(bad("its header and head disagree"));
    }
    let mut digest = Digest::default();
    let mut n = 0u64;
    let mut batch = Batch::new();
    for (ns, id, value) in records {
        if ns != NS_HEAD {
            if open_record(keys, &store_id, ns, id, value).is_none() {
                return Err(bad("a record does not open"));
            }
            digest.add(&digest_term(keys, &store_id, ns, id, value));
            n += 1;
        }
        batch.put(ns, id.to_vec(), value.to_vec());
    }
    if !head.digest.matches(&digest) || head.count != n {
        return Err(bad("its records do not match its head's digest"));
    }
    Ok(batch)
}

/// Restores a checked backup into `inner`, which must hold no record.
/// `before` runs after every check, just before the one write, with the
/// backup's store id and commit sequence (the caller writes the witness
/// there, so a restore killed after its batch leaves a store that opens).
pub(crate) fn restore(
    inner: &dyn Keystore,
    root: &RootKey,
    bytes: &[u8],
    before: impl FnOnce(&StoreId, u64) -> Result<()>,
) -> Result<()> {
    let batch = check(root, bytes)?;
    // `check` has read the header: magic, format, store id, sequence.
    let mut r = Reader(bytes.get(MAGIC.len() + 4..).ok_or(Error::InternalFailure)?);
    let store_id: StoreId = r.take(16)?.try_into().map_err(|_| Error::InternalFailure)?;
    let seq = r.u64()?;
    let mut any = false;
    let r = inner.visit_all(&mut |_, _, _| {
        any = true;
        Err(StoreError::Other("stop".into()))
    });
    if any {
        return Err(Error::InvalidParameter {
            param: "restore",
            reason: "the target store is not empty".into(),
        });
    }
    r?;
    before(&store_id, seq)?;
    // One atomic batch: a restore killed halfway left nothing, and can be
    // run again.
    inner.apply(batch)?;
    inner.flush()?;
    Ok(())
}
