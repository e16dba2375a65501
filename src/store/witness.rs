//! The witness (SPEC section 9): a small file outside the store's own
//! records that holds the last durable commit sequence, MACed under a key
//! derived from the root key. Open refuses a store whose head is behind it:
//! the store lost acknowledged writes (sled recovers a damaged log "up to the
//! last intact entry"), or an old copy was put back.
//!
//! Format (docs/FORMAT.md, "Witness"): 128 bytes, two 64-byte slots, each
//!
//! ```text
//! "LKMSWIT1" || store id (16) || seq u64 BE || HMAC-SHA256(witness key, the 32 bytes before)
//! ```
//!
//! A commit `n` is written in place into slot `n % 2` and `fdatasync`ed, so a
//! torn write damages one slot and the other still holds an earlier sequence.
//! The file is created whole (temporary file, fsync, rename, fsync of the
//! directory); it never changes size afterwards, so `fdatasync` needs no
//! metadata write. The reader takes the highest valid slot.

use std::fmt;
use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use hmac::{KeyInit as _, Mac as _};
use zeroize::Zeroizing;

use super::StoreError;
use super::sealed::StoreId;
use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"LKMSWIT1";
pub(crate) const SLOT_LEN: usize = 64;
pub(crate) const FILE_LEN: usize = 2 * SLOT_LEN;

/// What a witness file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WitnessState {
    /// No witness file.
    Missing,
    /// The highest valid slot of this store.
    At(u64),
    /// Valid slots, but of another store.
    Foreign,
    /// No valid slot.
    Damaged,
}

/// One slot: the witness of commit `seq` of store `store_id`.
pub(crate) fn slot(key: &[u8; 32], store_id: &StoreId, seq: u64) -> [u8; SLOT_LEN] {
    let mut out = [0u8; SLOT_LEN];
    out[..8].copy_from_slice(MAGIC);
    out[8..24].copy_from_slice(store_id);
    out[24..32].copy_from_slice(&seq.to_be_bytes());
    let tag = mac(key, &out[..32]);
    out[32..].copy_from_slice(&tag);
    out
}

fn mac(key: &[u8; 32], data: &[u8]) -> [u8; 32] {
    let mut m = <hmac::Hmac<sha2::Sha256>>::new_from_slice(key)
        // safe: HMAC takes a key of any length
        .unwrap_or_else(|_| unreachable!());
    m.update(data);
    m.finalize().into_bytes().into()
}

/// Parses one slot: `Some((store id, seq))` if its MAC holds.
fn parse_slot(key: &[u8; 32], s: &[u8]) -> Option<(StoreId, u64)> {
    use subtle::ConstantTimeEq as _;
    if s.len() != SLOT_LEN || &s[..8] != MAGIC {
        return None;
    }
    if !bool::from(mac(key, &s[..32]).ct_eq(&s[32..])) {
        return None;
    }
    Some((
        s[8..24].try_into().ok()?,
        u64::from_be_bytes(s[24..32].try_into().ok()?),
    ))
}

/// Reads the witness file at `path` for store `store_id`.
pub(crate) fn read(path: &Path, key: &[u8; 32], store_id: &StoreId) -> Result<WitnessState> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(WitnessState::Missing),
        Err(e) => return Err(io_error(path, &e)),
    };
    let mut buf = [0u8; FILE_LEN + 1];
    let mut len = 0;
    loop {
        let n = file.read(&mut buf[len..]).map_err(|e| io_error(path, &e))?;
        if n == 0 || len + n == buf.len() {
            len += n;
            break;
        }
        len += n;
    }
    if len != FILE_LEN {
        return Ok(WitnessState::Damaged);
    }
    let mut best = None;
    let mut foreign = false;
    for s in buf[..FILE_LEN].chunks_exact(SLOT_LEN) {
        match parse_slot(key, s) {
            Some((id, seq)) if id == *store_id => best = best.max(Some(seq)),
            Some(_) => foreign = true,
            None => {}
        }
    }
    Ok(match best {
        Some(seq) => WitnessState::At(seq),
        None if foreign => WitnessState::Foreign,
        None => WitnessState::Damaged,
    })
}

fn io_error(path: &Path, e: &std::io::Error) -> Error {
    Error::Storage(StoreError::Io(format!("witness {}: {e}", path.display())))
}

/// An open witness file, advanced after each durable commit.
pub(crate) struct Witness {
    path: PathBuf,
    store_id: StoreId,
    /// The file, the highest sequence written to it, and the key (replaced
    /// by a root-key rotation).
    state: Mutex<(File, u64, Zeroizing<[u8; 32]>)>,
}

impl fmt::Debug for Witness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Witness")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Witness {
    /// Writes a new witness file at commit `seq` (replacing any), durably.
    pub(crate) fn create(
        path: &Path,
        key: &[u8; 32],
        store_id: &StoreId,
        seq: u64,
    ) -> Result<Self> {
        write_whole(path, key, store_id, seq)?;
        Self::existing(path, key, store_id, seq)
    }

    /// Writes `<path>.next`, the witness of commit `seq` under the new
    /// `key` of a root-key rotation, before the rotation's batch. If the
    /// batch lands, [`settle_next`] at open (or [`Witness::promote_next`])
    /// puts it in place; if not, it does not open under the old key and is
    /// removed.
    pub(crate) fn prepare_next(&self, key: &[u8; 32], seq: u64) -> Result<()> {
        write_whole(&next_path(&self.path), key, &self.store_id, seq)
    }

    /// Puts `<path>.next` in place after the rotation's batch, and writes on
    /// under `key`.
    pub(crate) fn promote_next(&self, key: &[u8; 32], seq: u64) -> Result<()> {
        let mut state = self.state.lock().map_err(|_| Error::InternalFailure)?;
        let io = |e: std::io::Error| io_error(&self.path, &e);
        std::fs::rename(next_path(&self.path), &self.path).map_err(io)?;
        sync_parent(&self.path).map_err(io)?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(io)?;
        *state = (file, seq, Zeroizing::new(*key));
        Ok(())
    }
}

/// `<path>.next`.
fn next_path(path: &Path) -> PathBuf {
    let mut next = path.as_os_str().to_owned();
    next.push(".next");
    PathBuf::from(next)
}

/// At open, under a root key that opens the store: a `<path>.next` that
/// opens under it is the witness of a rotation whose batch landed (it is
/// only ever written under the new key), and replaces `path`; any other is
/// left from a rotation that did not land, and is removed.
pub(crate) fn settle_next(path: &Path, key: &[u8; 32], store_id: &StoreId) -> Result<()> {
    let next = next_path(path);
    let io = |e: std::io::Error| io_error(&next, &e);
    match read(&next, key, store_id)? {
        WitnessState::Missing => return Ok(()),
        WitnessState::At(_) => std::fs::rename(&next, path).map_err(io)?,
        WitnessState::Foreign | WitnessState::Damaged => std::fs::remove_file(&next).map_err(io)?,
    }
    sync_parent(path).map_err(io)
}

/// Writes a whole witness file at commit `seq` (replacing any), durably:
/// temporary file, fsync, rename, fsync of the directory.
fn write_whole(path: &Path, key: &[u8; 32], store_id: &StoreId, seq: u64) -> Result<()> {
    {
        let io = |e: std::io::Error| io_error(path, &e);
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp).map_err(io)?;
        let s = slot(key, store_id, seq);
        f.write_all(&s).map_err(io)?;
        f.write_all(&s).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(io)?;
        sync_parent(path).map_err(io)?;
        Ok(())
    }
}

impl Witness {
    /// Opens an existing witness file that holds commit `seq`.
    pub(crate) fn existing(
        path: &Path,
        key: &[u8; 32],
        store_id: &StoreId,
        seq: u64,
    ) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| io_error(path, &e))?;
        Ok(Self {
            path: path.to_owned(),
            store_id: *store_id,
            state: Mutex::new((file, seq, Zeroizing::new(*key))),
        })
    }

    /// Records that commit `seq` is durable (no-op if it is not newer).
    pub(crate) fn record(&self, seq: u64) -> Result<()> {
        let mut state = self.state.lock().map_err(|_| Error::InternalFailure)?;
        if seq <= state.1 {
            return Ok(());
        }
        let io = |e: std::io::Error| io_error(&self.path, &e);
        let offset = if seq.is_multiple_of(2) {
            0
        } else {
            SLOT_LEN as u64
        };
        let s = slot(&state.2, &self.store_id, seq);
        let file = &mut state.0;
        file.seek(SeekFrom::Start(offset)).map_err(io)?;
        file.write_all(&s).map_err(io)?;
        file.sync_data().map_err(io)?;
        state.1 = seq;
        Ok(())
    }

    /// The highest sequence written.
    pub(crate) fn written(&self) -> Result<u64> {
        Ok(self.state.lock().map_err(|_| Error::InternalFailure)?.1)
    }
}

/// fsyncs the directory holding `path`, so a rename in it is durable.
fn sync_parent(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    if let Some(parent) = path.parent() {
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        File::open(parent)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_valid_slot_wins_and_a_torn_slot_is_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w");
        let (key, id) = ([1u8; 32], [2u8; 16]);
        let w = Witness::create(&path, &key, &id, 5).expect("create");
        assert_eq!(read(&path, &key, &id).expect("read"), WitnessState::At(5));
        w.record(6).expect("record");
        w.record(4).expect("older is a no-op");
        assert_eq!(read(&path, &key, &id).expect("read"), WitnessState::At(6));
        // Tear slot 0 (which holds 6): slot 1 still holds 5.
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[40] ^= 1;
        std::fs::write(&path, &bytes).expect("write");
        assert_eq!(read(&path, &key, &id).expect("read"), WitnessState::At(5));
        assert_eq!(
            read(&path, &key, &[3u8; 16]).expect("read"),
            WitnessState::Foreign
        );
        assert_eq!(
            read(&path, &[9u8; 32], &id).expect("read"),
            WitnessState::Damaged
        );
        std::fs::write(&path, &bytes[..100]).expect("truncate");
        assert_eq!(read(&path, &key, &id).expect("read"), WitnessState::Damaged);
        std::fs::remove_file(&path).expect("remove");
        assert_eq!(read(&path, &key, &id).expect("read"), WitnessState::Missing);
    }
}
