//! The ciphertext blob of Encrypt and GenerateDataKey, format v1 (SPEC
//! section 5; the byte diagram is in `docs/FORMAT.md`).
//!
//! ```text
//! offset  0      1      2            38               74         98
//!         +------+------+------------+----------------+----------+---------------+---------+
//!         | 0x01 | kind | KeyId (36) | KeyVersionId   | nonce    | ciphertext    | tag     |
//!         |      |      | ASCII      | (36) ASCII     | (24)     | (n bytes)     | (16)    |
//!         +------+------+------------+----------------+----------+---------------+---------+
//! AAD = bytes 0..98 (the whole header) || canonical EncryptionContext
//! cipher = XAES-256-GCM under the key version's material, nonce = bytes 74..98
//! ```
//!
//! Parsing is in [`read`], writing in [`write`]; every length is checked
//! before any slice is taken. A malformed blob is never a panic: it is the
//! uniform [`Error::DecryptionFailed`], except that the KeyId and KeyVersionId
//! bytes are read as names, and a name that is not found is reported as such.

use std::fmt;

use base64::Engine as _;

use crate::error::Error;
use crate::secret::BASE64;

/// The one blob format this library writes.
pub(crate) const BLOB_V1: u8 = 1;
/// The XAES-256-GCM nonce length.
pub(crate) const NONCE_LEN: usize = 24;
/// The AES-GCM tag length.
pub(crate) const TAG_LEN: usize = 16;
/// KeyId and KeyVersionId are hyphenated UUIDs.
pub(crate) const ID_LEN: usize = 36;
const KIND_AT: usize = 1;
const KEY_ID_AT: usize = 2;
const VERSION_ID_AT: usize = KEY_ID_AT + ID_LEN;
const NONCE_AT: usize = VERSION_ID_AT + ID_LEN;
/// Everything before the ciphertext; all of it is associated data.
pub(crate) const HEADER_LEN: usize = NONCE_AT + NONCE_LEN;

/// The longest payload a blob holds (Encrypt's limit, above GenerateDataKey's).
pub(crate) const MAX_PAYLOAD_BYTES: usize = 6144;
/// The longest blob: the longest payload, sealed.
pub(crate) const MAX_BLOB_BYTES: usize = HEADER_LEN + MAX_PAYLOAD_BYTES + TAG_LEN;

/// The ciphertext of Encrypt, GenerateDataKey and ReEncrypt: bytes, as the
/// Rust API takes and returns them. The wire's `CiphertextBlob` is their
/// standard base64 ([`CiphertextBlob::to_base64`]).
///
/// It dereferences to `[u8]`, so `kms.decrypt(&response.ciphertext_blob, ..)`
/// takes it as it is.
///
/// ```
/// use localkms::CiphertextBlob;
/// let blob = CiphertextBlob::from(vec![1u8, 2, 3]);
/// assert_eq!(blob.to_base64(), "AQID");
/// assert_eq!(CiphertextBlob::from_base64("AQID")?, blob);
/// assert_eq!(blob.as_bytes(), &[1, 2, 3]);
/// # Ok::<(), localkms::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct CiphertextBlob(Vec<u8>);

impl CiphertextBlob {
    /// The blob's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The blob's bytes, owned.
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }

    /// Standard base64 with padding: the wire's `CiphertextBlob`.
    pub fn to_base64(&self) -> String {
        BASE64.encode(&self.0)
    }

    /// Reads the wire's `CiphertextBlob` (standard base64 with padding).
    ///
    /// # Errors
    /// The uniform [`Error::DecryptionFailed`] for text that is not strict
    /// base64, or longer than any blob this library makes.
    pub fn from_base64(text: &str) -> Result<Self, Error> {
        if text.len() > MAX_BLOB_BYTES.div_ceil(3) * 4 {
            return Err(Error::DecryptionFailed);
        }
        let mut out = Vec::with_capacity(text.len() / 4 * 3 + 3);
        BASE64
            .decode_vec(text, &mut out)
            .map_err(|_| Error::DecryptionFailed)?;
        Ok(Self(out))
    }
}

impl From<Vec<u8>> for CiphertextBlob {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl From<&[u8]> for CiphertextBlob {
    fn from(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }
}

impl From<CiphertextBlob> for Vec<u8> {
    fn from(blob: CiphertextBlob) -> Self {
        blob.0
    }
}

impl AsRef<[u8]> for CiphertextBlob {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl std::ops::Deref for CiphertextBlob {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// Shows the wire form, standard base64.
impl fmt::Display for CiphertextBlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl fmt::Debug for CiphertextBlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CiphertextBlob({} bytes)", self.0.len())
    }
}

/// What a blob's plaintext is, recorded in its header so the wire layer
/// renders Decrypt's `Plaintext` as the operation that made the blob did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PlaintextKind {
    /// The `Plaintext` given to Encrypt, returned as given.
    Text,
    /// A data key from GenerateDataKey, rendered on the wire as base64.
    DataKey,
    /// The data key of an envelope (format v2). Only an envelope reader
    /// opens it: Decrypt and ReEncrypt refuse it, so a GenerateDataKey blob
    /// is not an envelope header and an envelope header is not a data key.
    EnvelopeKey,
}

impl PlaintextKind {
    const fn byte(self) -> u8 {
        match self {
            Self::Text => 1,
            Self::DataKey => 2,
            Self::EnvelopeKey => 3,
        }
    }

    const fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Text),
            2 => Some(Self::DataKey),
            3 => Some(Self::EnvelopeKey),
            _ => None,
        }
    }
}

pub(crate) mod read {
    use super::*;

    /// The parsed header of a v1 blob, borrowed from it.
    #[derive(Debug)]
    pub(crate) struct Header<'a> {
        pub kind: PlaintextKind,
        /// The KeyId bytes, not yet checked: they may name no key.
        pub key_id: &'a [u8],
        /// The KeyVersionId bytes, not yet checked.
        pub version_id: &'a [u8],
        pub nonce: &'a [u8; NONCE_LEN],
    }

    /// Parses the header of `blob`, which must hold at least a tag after it.
    ///
    /// # Errors
    /// [`Error::DecryptionFailed`] when the blob is too short, of an unknown
    /// format version, or of an unknown kind.
    pub(crate) fn header(blob: &[u8]) -> Result<Header<'_>, Error> {
        if blob.len() < HEADER_LEN + TAG_LEN {
            return Err(Error::DecryptionFailed);
        }
        if blob[0] != BLOB_V1 {
            return Err(Error::DecryptionFailed);
        }
        let kind = PlaintextKind::from_byte(blob[KIND_AT]).ok_or(Error::DecryptionFailed)?;
        let nonce = blob[NONCE_AT..HEADER_LEN]
            .try_into()
            .map_err(|_| Error::DecryptionFailed)?;
        Ok(Header {
            kind,
            key_id: &blob[KEY_ID_AT..VERSION_ID_AT],
            version_id: &blob[VERSION_ID_AT..NONCE_AT],
            nonce,
        })
    }

    /// A blob's header, ciphertext (mutable, to decrypt in place) and tag.
    pub(crate) type Parts<'a> = (&'a [u8], &'a mut [u8], &'a [u8]);

    /// Splits a blob (already checked by [`header`]) into its [`Parts`].
    pub(crate) fn split_mut(blob: &mut [u8]) -> Result<Parts<'_>, Error> {
        if blob.len() < HEADER_LEN + TAG_LEN {
            return Err(Error::DecryptionFailed);
        }
        let (header, rest) = blob.split_at_mut(HEADER_LEN);
        let (body, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
        Ok((header, body, tag))
    }
}

pub(crate) mod write {
    use super::*;

    /// Appends a v1 header to `out`.
    ///
    /// # Errors
    /// [`Error::InternalFailure`] when an id is not 36 bytes (a corrupt key
    /// record: ids are UUIDs).
    pub(crate) fn header(
        out: &mut Vec<u8>,
        kind: PlaintextKind,
        key_id: &str,
        version_id: &str,
        nonce: &[u8; NONCE_LEN],
    ) -> Result<(), Error> {
        if key_id.len() != ID_LEN || version_id.len() != ID_LEN {
            return Err(Error::InternalFailure);
        }
        out.push(BLOB_V1);
        out.push(kind.byte());
        out.extend_from_slice(key_id.as_bytes());
        out.extend_from_slice(version_id.as_bytes());
        out.extend_from_slice(nonce);
        Ok(())
    }
}

/// Calls `f` with the associated data of a blob: its header, then the
/// canonical context. Small contexts are assembled on the stack.
pub(crate) fn with_aad<T>(header: &[u8], context: &[u8], f: impl FnOnce(&[u8]) -> T) -> T {
    const STACK: usize = HEADER_LEN + 158;
    let n = header.len() + context.len();
    if n <= STACK {
        let mut buf = [0u8; STACK];
        buf[..header.len()].copy_from_slice(header);
        buf[header.len()..n].copy_from_slice(context);
        f(&buf[..n])
    } else {
        f(&[header, context].concat())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0b5e1f0c-9c53-4b8e-a0ae-2b7a8c5f0d11";
    const VER: &str = "7f7e1d36-3f4c-4a3d-9d1c-6c1b2a3e4f50";

    fn sample() -> Vec<u8> {
        let mut b = Vec::new();
        write::header(&mut b, PlaintextKind::DataKey, KEY, VER, &[9; NONCE_LEN]).expect("ids");
        b.extend_from_slice(&[0xaa; 5 + TAG_LEN]);
        b
    }

    #[test]
    fn header_layout() {
        let b = sample();
        assert_eq!(HEADER_LEN, 98);
        assert_eq!(b[0], 1);
        assert_eq!(b[1], 2);
        assert_eq!(&b[2..38], KEY.as_bytes());
        assert_eq!(&b[38..74], VER.as_bytes());
        assert_eq!(&b[74..98], &[9; 24]);
        let h = read::header(&b).expect("parses");
        assert_eq!(h.kind, PlaintextKind::DataKey);
        assert_eq!(h.key_id, KEY.as_bytes());
        assert_eq!(h.version_id, VER.as_bytes());
        assert_eq!(h.nonce, &[9; 24]);
    }

    #[test]
    fn every_short_length_is_rejected() {
        let b = sample();
        for len in 0..HEADER_LEN + TAG_LEN {
            assert_eq!(
                read::header(&b[..len]).unwrap_err(),
                Error::DecryptionFailed
            );
            let mut t = b[..len].to_vec();
            assert!(read::split_mut(&mut t).is_err());
        }
        // A header and a tag with nothing between is well formed.
        assert!(read::header(&b[..HEADER_LEN + TAG_LEN]).is_ok());
    }

    #[test]
    fn unknown_version_and_kind_are_rejected() {
        for v in [0u8, 2, 0x81, 0xff] {
            let mut b = sample();
            b[0] = v;
            assert_eq!(read::header(&b).unwrap_err(), Error::DecryptionFailed);
        }
        for k in [0u8, 4, 0x80, 0xff] {
            let mut b = sample();
            b[1] = k;
            assert_eq!(read::header(&b).unwrap_err(), Error::DecryptionFailed);
        }
    }

    #[test]
    fn ids_of_the_wrong_length_are_not_written() {
        let mut b = Vec::new();
        assert!(write::header(&mut b, PlaintextKind::Text, "short", VER, &[0; 24]).is_err());
        assert!(write::header(&mut b, PlaintextKind::Text, KEY, "", &[0; 24]).is_err());
    }
}
