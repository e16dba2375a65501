//! The envelope format: data of any size sealed under a fresh data key.
//!
//! Each envelope gets a fresh 256-bit data key from GenerateDataKey; the data
//! is split into 64 KiB chunks sealed with AES-256-GCM in the STREAM
//! construction (`aead-stream`, big-endian 32-bit counter and a last-chunk
//! flag in the nonce), so data of any size streams through constant memory
//! and truncation, reordering, chunk swapping and appended data are all
//! detected. The format is in `docs/FORMAT.md`:
//!
//! ```text
//! header = "LKEV" || 0x01 || len(blob) u16 BE || blob (the CMK blob of the data key)
//! chunk i (not last) = AES-256-GCM(data key, nonce = 0^7 || i u32 BE || 0x00, aad = header, 65536 bytes)
//! last chunk         = AES-256-GCM(data key, nonce = 0^7 || i u32 BE || 0x01, aad = header, 0..=65535 bytes)
//! ```
//!
//! The nonce prefix is zero: every data key is fresh from the CSPRNG and
//! seals exactly one envelope, so nonces never repeat under a key.

use std::io::Read;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Buffer, KeyInit};

use crate::crypto::blob::{HEADER_LEN, TAG_LEN};
use crate::error::{Error, Result};

/// The plaintext bytes in every chunk but the last (which holds fewer).
pub const ENVELOPE_CHUNK_BYTES: usize = 64 * 1024;
pub(crate) const MAGIC: &[u8; 4] = b"LKEV";
pub(crate) const ENVELOPE_V1: u8 = 1;
pub(crate) const DATA_KEY_LEN: usize = 32;
/// The CMK blob of a 32-byte data key: the only blob length v1 holds.
pub(crate) const BLOB_LEN: usize = HEADER_LEN + DATA_KEY_LEN + TAG_LEN;
/// Magic, version and blob length.
pub(crate) const PREFIX_LEN: usize = 4 + 1 + 2;
pub(crate) const ENVELOPE_HEADER_LEN: usize = PREFIX_LEN + BLOB_LEN;
pub(crate) const SEALED_CHUNK_BYTES: usize = ENVELOPE_CHUNK_BYTES + TAG_LEN;

/// The length of the envelope of `n` plaintext bytes.
pub(crate) fn sealed_len(n: usize) -> usize {
    let full = n / ENVELOPE_CHUNK_BYTES;
    let rest = n % ENVELOPE_CHUNK_BYTES;
    ENVELOPE_HEADER_LEN
        .saturating_add(full.saturating_mul(SEALED_CHUNK_BYTES))
        .saturating_add(rest + TAG_LEN)
}

pub(crate) fn chunk_cipher(data_key: &[u8]) -> Result<Aes256Gcm> {
    Aes256Gcm::new_from_slice(data_key).map_err(|_| Error::InternalFailure)
}

pub(crate) mod read {
    use super::*;

    /// Checks the envelope header and returns the CMK blob in it.
    pub(crate) fn blob(header: &[u8; ENVELOPE_HEADER_LEN]) -> Result<&[u8]> {
        let (prefix, blob) = header.split_at(PREFIX_LEN);
        let len = usize::from(u16::from_be_bytes([prefix[5], prefix[6]]));
        if &prefix[..4] != MAGIC || prefix[4] != ENVELOPE_V1 || len != BLOB_LEN {
            return Err(Error::DecryptionFailed);
        }
        Ok(blob)
    }
}

pub(crate) mod write {
    use super::*;

    /// The envelope header around the CMK blob of the data key.
    pub(crate) fn header(blob: &[u8]) -> Result<[u8; ENVELOPE_HEADER_LEN]> {
        if blob.len() != BLOB_LEN {
            return Err(Error::InternalFailure);
        }
        let mut h = [0u8; ENVELOPE_HEADER_LEN];
        h[..4].copy_from_slice(MAGIC);
        h[4] = ENVELOPE_V1;
        h[5..PREFIX_LEN].copy_from_slice(&(BLOB_LEN as u16).to_be_bytes());
        h[PREFIX_LEN..].copy_from_slice(blob);
        Ok(h)
    }
}

/// Reads until `buf` is full or the reader ends; returns the bytes read.
pub(crate) fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            // A reader that claims more than it was given is clamped.
            Ok(k) => n = n.saturating_add(k).min(buf.len()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}

/// A fixed buffer with a length, for in-place AEAD without reallocation.
pub(crate) struct SliceBuf<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> SliceBuf<'a> {
    pub(crate) fn new(buf: &'a mut [u8], len: usize) -> Self {
        let len = len.min(buf.len());
        Self { buf, len }
    }
}

impl AsRef<[u8]> for SliceBuf<'_> {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl AsMut<[u8]> for SliceBuf<'_> {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.buf[..self.len]
    }
}

impl Buffer for SliceBuf<'_> {
    fn extend_from_slice(&mut self, other: &[u8]) -> aes_gcm::aead::Result<()> {
        let end = self
            .len
            .checked_add(other.len())
            .ok_or(aes_gcm::aead::Error)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(aes_gcm::aead::Error)?
            .copy_from_slice(other);
        self.len = end;
        Ok(())
    }

    fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_len_matches_the_layout() {
        assert_eq!(ENVELOPE_HEADER_LEN, 153);
        assert_eq!(sealed_len(0), 153 + 16);
        assert_eq!(sealed_len(1), 153 + 17);
        assert_eq!(sealed_len(ENVELOPE_CHUNK_BYTES), 153 + 65552 + 16);
        assert_eq!(sealed_len(ENVELOPE_CHUNK_BYTES + 5), 153 + 65552 + 21);
    }

    #[test]
    fn slice_buf_refuses_to_overflow() {
        let mut b = [0u8; 4];
        let mut s = SliceBuf::new(&mut b, 2);
        assert!(s.extend_from_slice(&[1, 2]).is_ok());
        assert!(s.extend_from_slice(&[3]).is_err());
        s.truncate(9);
        assert_eq!(s.as_ref(), &[0, 0, 1, 2]);
        s.truncate(1);
        assert_eq!(s.as_ref(), &[0]);
    }

    #[test]
    fn header_checks() {
        let blob = [7u8; BLOB_LEN];
        let h = write::header(&blob).expect("header");
        assert_eq!(read::blob(&h).expect("blob"), &blob[..]);
        for at in 0..PREFIX_LEN {
            let mut t = h;
            t[at] ^= 1;
            assert_eq!(read::blob(&t).unwrap_err(), Error::DecryptionFailed);
        }
        assert!(write::header(&blob[1..]).is_err());
    }
}
