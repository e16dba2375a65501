//! Envelope encryption of data of any size under a CMK.
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

use std::io::{Read, Write};

use aead_stream::{DecryptorBE32, EncryptorBE32};
use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Buffer, KeyInit};
use zeroize::Zeroizing;

use crate::crypto::blob::PlaintextKind;
use crate::crypto::blob::{HEADER_LEN, TAG_LEN};
use crate::crypto::context::EncryptionContext;
use crate::error::{Error, Result};
use crate::kms::Kms;
use crate::ops::symmetric::SecretBytes;

/// The plaintext bytes in every chunk but the last (which holds fewer).
pub const ENVELOPE_CHUNK_BYTES: usize = 64 * 1024;
const MAGIC: &[u8; 4] = b"LKEV";
const ENVELOPE_V1: u8 = 1;
const DATA_KEY_LEN: usize = 32;
/// The CMK blob of a 32-byte data key: the only blob length v1 holds.
const BLOB_LEN: usize = HEADER_LEN + DATA_KEY_LEN + TAG_LEN;
/// Magic, version and blob length.
const PREFIX_LEN: usize = 4 + 1 + 2;
const ENVELOPE_HEADER_LEN: usize = PREFIX_LEN + BLOB_LEN;
const SEALED_CHUNK_BYTES: usize = ENVELOPE_CHUNK_BYTES + TAG_LEN;

/// What an envelope operation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeInfo {
    /// The CMK that holds the data key.
    pub key_id: String,
    /// The CMK version that sealed the data key.
    pub key_version_id: String,
    /// How many plaintext bytes went in or came out.
    pub plaintext_bytes: u64,
}

impl Kms {
    /// Encrypts `plaintext` of any size into an envelope under `key_id`
    /// (alias ok), with a fresh data key.
    ///
    /// ```
    /// use localkms::{EncryptionContext, Kms};
    /// let kms = Kms::in_memory()?;
    /// let key = kms.create_key(&Default::default())?.key_id;
    /// let ctx = EncryptionContext::from_pairs([("file", "report.pdf")])?;
    /// let sealed = kms.envelope_encrypt(&key, b"large data", &ctx)?;
    /// assert_eq!(kms.envelope_decrypt(&sealed, &ctx)?.as_slice(), b"large data");
    /// # Ok::<(), localkms::Error>(())
    /// ```
    ///
    /// # Errors
    /// The errors of [`Kms::generate_data_key`].
    pub fn envelope_encrypt(
        &self,
        key_id: &str,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<Vec<u8>> {
        self.operation("EnvelopeEncrypt", key_id, || {
            self.envelope_encrypt_op(key_id, plaintext, context)
        })
    }

    fn envelope_encrypt_op(
        &self,
        key_id: &str,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(sealed_len(plaintext.len()));
        self.envelope_encrypt_stream(key_id, context, plaintext, &mut out)?;
        Ok(out)
    }

    /// Decrypts an envelope made by [`Kms::envelope_encrypt`] or
    /// [`Kms::envelope_encrypt_stream`].
    ///
    /// # Errors
    /// The uniform `InvalidParameter` ([`Error::DecryptionFailed`]) for a
    /// malformed, truncated, reordered, extended or tampered envelope or a
    /// wrong context; otherwise the errors of [`Kms::decrypt`] for its data
    /// key.
    pub fn envelope_decrypt(
        &self,
        envelope: &[u8],
        context: &EncryptionContext,
    ) -> Result<Zeroizing<Vec<u8>>> {
        self.operation("EnvelopeDecrypt", "", || {
            self.envelope_decrypt_op(envelope, context)
        })
    }

    fn envelope_decrypt_op(
        &self,
        envelope: &[u8],
        context: &EncryptionContext,
    ) -> Result<Zeroizing<Vec<u8>>> {
        // The plaintext is shorter than the envelope: this capacity never
        // grows, so no copy of the plaintext is left behind by a reallocation.
        let mut out = Zeroizing::new(Vec::with_capacity(envelope.len()));
        self.envelope_decrypt_stream(context, envelope, &mut *out)?;
        Ok(out)
    }

    /// Encrypts everything `reader` yields into an envelope written to
    /// `writer`, in constant memory (one 64 KiB chunk at a time).
    ///
    /// # Errors
    /// The errors of [`Kms::generate_data_key`]; [`Error::Io`] when the
    /// reader or writer fails.
    pub fn envelope_encrypt_stream(
        &self,
        key_id: &str,
        context: &EncryptionContext,
        reader: impl Read,
        writer: impl Write,
    ) -> Result<EnvelopeInfo> {
        self.operation("EnvelopeEncryptStream", key_id, || {
            self.envelope_encrypt_stream_op(key_id, context, reader, writer)
        })
    }

    fn envelope_encrypt_stream_op(
        &self,
        key_id: &str,
        context: &EncryptionContext,
        mut reader: impl Read,
        mut writer: impl Write,
    ) -> Result<EnvelopeInfo> {
        let (sealed, data_key) = self.generate_data_key_raw(key_id, DATA_KEY_LEN, context)?;
        let header = write::header(&sealed.blob)?;
        writer.write_all(&header)?;
        let mut stream = EncryptorBE32::from_aead(chunk_cipher(&data_key)?, &Default::default());
        let mut buf = Zeroizing::new(vec![0u8; SEALED_CHUNK_BYTES]);
        let mut total = 0u64;
        loop {
            let n = read_full(&mut reader, &mut buf[..ENVELOPE_CHUNK_BYTES])?;
            total = total.saturating_add(n as u64);
            let mut chunk = SliceBuf::new(&mut buf, n);
            if n == ENVELOPE_CHUNK_BYTES {
                stream
                    .encrypt_next_in_place(&header, &mut chunk)
                    .map_err(|_| Error::UnsupportedOperation("envelopes over 256 TiB".into()))?;
                writer.write_all(chunk.as_ref())?;
            } else {
                stream
                    .encrypt_last_in_place(&header, &mut chunk)
                    .map_err(|_| Error::InternalFailure)?;
                writer.write_all(chunk.as_ref())?;
                break;
            }
        }
        writer.flush()?;
        Ok(EnvelopeInfo {
            key_id: sealed.key_id,
            key_version_id: sealed.key_version_id,
            plaintext_bytes: total,
        })
    }

    /// Decrypts an envelope from `reader` to `writer`, in constant memory.
    ///
    /// Each chunk is written only after it authenticates, but a truncated or
    /// tampered envelope is noticed only when the reader reaches the damage:
    /// on any error, discard everything written so far.
    ///
    /// # Errors
    /// As [`Kms::envelope_decrypt`]; [`Error::Io`] when the reader or writer
    /// fails.
    pub fn envelope_decrypt_stream(
        &self,
        context: &EncryptionContext,
        reader: impl Read,
        writer: impl Write,
    ) -> Result<EnvelopeInfo> {
        self.operation("EnvelopeDecryptStream", "", || {
            self.envelope_decrypt_stream_op(context, reader, writer)
        })
    }

    fn envelope_decrypt_stream_op(
        &self,
        context: &EncryptionContext,
        mut reader: impl Read,
        mut writer: impl Write,
    ) -> Result<EnvelopeInfo> {
        let mut header = [0u8; ENVELOPE_HEADER_LEN];
        if read_full(&mut reader, &mut header)? != ENVELOPE_HEADER_LEN {
            return Err(Error::DecryptionFailed);
        }
        let blob = read::blob(&header)?;
        let opened = self.decrypt_raw(Zeroizing::new(blob.to_vec()), context)?;
        if opened.kind != PlaintextKind::DataKey || opened.plaintext.len() != DATA_KEY_LEN {
            return Err(Error::DecryptionFailed);
        }
        let mut stream =
            DecryptorBE32::from_aead(chunk_cipher(&opened.plaintext)?, &Default::default());
        let mut buf = Zeroizing::new(vec![0u8; SEALED_CHUNK_BYTES]);
        let mut total = 0u64;
        loop {
            let n = read_full(&mut reader, &mut buf)?;
            let mut chunk = SliceBuf::new(&mut buf, n);
            if n == SEALED_CHUNK_BYTES {
                stream
                    .decrypt_next_in_place(&header, &mut chunk)
                    .map_err(|_| Error::DecryptionFailed)?;
            } else if n < TAG_LEN {
                // The last chunk is missing: the envelope was truncated.
                return Err(Error::DecryptionFailed);
            } else {
                stream
                    .decrypt_last_in_place(&header, &mut chunk)
                    .map_err(|_| Error::DecryptionFailed)?;
                writer.write_all(chunk.as_ref())?;
                total = total.saturating_add(chunk.len() as u64);
                break;
            }
            writer.write_all(chunk.as_ref())?;
            total = total.saturating_add(chunk.len() as u64);
        }
        writer.flush()?;
        Ok(EnvelopeInfo {
            key_id: opened.key_id,
            key_version_id: opened.key_version_id,
            plaintext_bytes: total,
        })
    }
}

/// The length of the envelope of `n` plaintext bytes.
pub(crate) fn sealed_len(n: usize) -> usize {
    let full = n / ENVELOPE_CHUNK_BYTES;
    let rest = n % ENVELOPE_CHUNK_BYTES;
    ENVELOPE_HEADER_LEN
        .saturating_add(full.saturating_mul(SEALED_CHUNK_BYTES))
        .saturating_add(rest + TAG_LEN)
}

fn chunk_cipher(data_key: &SecretBytes) -> Result<Aes256Gcm> {
    Aes256Gcm::new_from_slice(data_key.expose_secret()).map_err(|_| Error::InternalFailure)
}

mod read {
    use super::*;

    /// Checks the envelope header and returns the CMK blob in it.
    pub(super) fn blob(header: &[u8; ENVELOPE_HEADER_LEN]) -> Result<&[u8]> {
        let (prefix, blob) = header.split_at(PREFIX_LEN);
        let len = usize::from(u16::from_be_bytes([prefix[5], prefix[6]]));
        if &prefix[..4] != MAGIC || prefix[4] != ENVELOPE_V1 || len != BLOB_LEN {
            return Err(Error::DecryptionFailed);
        }
        Ok(blob)
    }
}

mod write {
    use super::*;

    /// The envelope header around the CMK blob of the data key.
    pub(super) fn header(blob: &[u8]) -> Result<[u8; ENVELOPE_HEADER_LEN]> {
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
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
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
struct SliceBuf<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> SliceBuf<'a> {
    fn new(buf: &'a mut [u8], len: usize) -> Self {
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
