//! The ciphertext blob of `Aliyun_SM4` keys: format v2, which names its
//! cipher (SM4-GCM) by its first byte. The v1 blob of `Aliyun_AES_256` keys
//! ([`crate::crypto::blob`]) is unchanged, byte for byte.
//!
//! ```text
//! offset  0      1      2            38               74         86
//!         +------+------+------------+----------------+----------+---------------+---------+
//!         | 0x02 | kind | KeyId (36) | KeyVersionId   | nonce    | ciphertext    | tag     |
//!         |      |      | ASCII      | (36) ASCII     | (12)     | (n bytes)     | (16)    |
//!         +------+------+------------+----------------+----------+---------------+---------+
//! AAD = bytes 0..86 (the whole header) || canonical EncryptionContext
//! cipher = SM4-GCM (RFC 8998) under the version's 16-byte key, nonce = bytes 74..86
//! ```
//!
//! The nonce is 96 random bits, so one key version may seal at most 2^32
//! blobs (NIST SP 800-38D section 8.3); automatic rotation keeps users under
//! that. `kind` is the v1 blob's byte (1 Encrypt text, 2 GenerateDataKey).

use crate::crypto::asym::{SM4_GCM_NONCE_LEN, SM4_GCM_TAG_LEN};
use crate::crypto::blob::{ID_LEN, PlaintextKind};
use crate::error::Error;

/// The format byte of SM4-GCM blobs.
pub(crate) const BLOB_SM4: u8 = 2;
const KIND_AT: usize = 1;
const KEY_ID_AT: usize = 2;
const VERSION_ID_AT: usize = KEY_ID_AT + ID_LEN;
const NONCE_AT: usize = VERSION_ID_AT + ID_LEN;
/// Everything before the ciphertext; all of it is associated data.
pub(crate) const SM4_HEADER_LEN: usize = NONCE_AT + SM4_GCM_NONCE_LEN;

/// The parsed header of a v2 blob, borrowed from it.
#[derive(Debug)]
pub(crate) struct Sm4Header<'a> {
    pub kind: PlaintextKind,
    /// The KeyId bytes, not yet checked: they may name no key.
    pub key_id: &'a [u8],
    /// The KeyVersionId bytes, not yet checked.
    pub version_id: &'a [u8],
    pub nonce: &'a [u8; SM4_GCM_NONCE_LEN],
    /// The header bytes (the AAD's first part).
    pub header: &'a [u8],
    /// Ciphertext || tag.
    pub sealed: &'a [u8],
}

/// Parses a v2 blob.
///
/// # Errors
/// [`Error::DecryptionFailed`] when it is too short, not v2, or of an
/// unknown kind.
pub(crate) fn read(blob: &[u8]) -> Result<Sm4Header<'_>, Error> {
    if blob.len() < SM4_HEADER_LEN + SM4_GCM_TAG_LEN || blob[0] != BLOB_SM4 {
        return Err(Error::DecryptionFailed);
    }
    let kind = match blob[KIND_AT] {
        1 => PlaintextKind::Text,
        2 => PlaintextKind::DataKey,
        3 => PlaintextKind::EnvelopeKey,
        _ => return Err(Error::DecryptionFailed),
    };
    let nonce = blob[NONCE_AT..SM4_HEADER_LEN]
        .try_into()
        .map_err(|_| Error::DecryptionFailed)?;
    let (header, sealed) = blob.split_at(SM4_HEADER_LEN);
    Ok(Sm4Header {
        kind,
        key_id: &blob[KEY_ID_AT..VERSION_ID_AT],
        version_id: &blob[VERSION_ID_AT..NONCE_AT],
        nonce,
        header,
        sealed,
    })
}

/// The v2 header for these ids and nonce.
///
/// # Errors
/// [`Error::InternalFailure`] when an id is not 36 bytes.
pub(crate) fn header(
    kind: PlaintextKind,
    key_id: &str,
    version_id: &str,
    nonce: &[u8; SM4_GCM_NONCE_LEN],
) -> Result<Vec<u8>, Error> {
    if key_id.len() != ID_LEN || version_id.len() != ID_LEN {
        return Err(Error::InternalFailure);
    }
    let mut out = Vec::with_capacity(SM4_HEADER_LEN);
    out.push(BLOB_SM4);
    out.push(match kind {
        PlaintextKind::Text => 1,
        PlaintextKind::DataKey => 2,
        PlaintextKind::EnvelopeKey => 3,
    });
    out.extend_from_slice(key_id.as_bytes());
    out.extend_from_slice(version_id.as_bytes());
    out.extend_from_slice(nonce);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0b5e1f0c-9c53-4b8e-a0ae-2b7a8c5f0d11";
    const VER: &str = "7f7e1d36-3f4c-4a3d-9d1c-6c1b2a3e4f50";

    #[test]
    fn layout_and_bad_input() {
        let mut b = header(PlaintextKind::DataKey, KEY, VER, &[9; 12]).expect("ids");
        assert_eq!(b.len(), 86);
        b.extend_from_slice(&[0xaa; 5 + 16]);
        let h = read(&b).expect("parses");
        assert_eq!(h.kind, PlaintextKind::DataKey);
        assert_eq!(h.key_id, KEY.as_bytes());
        assert_eq!(h.version_id, VER.as_bytes());
        assert_eq!(h.nonce, &[9; 12]);
        assert_eq!(h.sealed.len(), 21);
        for len in 0..SM4_HEADER_LEN + 16 {
            assert!(read(&b[..len]).is_err());
        }
        for (at, v) in [(0, 1u8), (0, 3), (1, 0), (1, 4)] {
            let mut t = b.clone();
            t[at] = v;
            assert!(read(&t).is_err());
        }
        assert!(header(PlaintextKind::Text, "short", VER, &[0; 12]).is_err());
    }
}

#[cfg(test)]
mod golden {
    use super::*;
    use crate::crypto::asym::sm4_gcm_seal;
    use crate::crypto::blob::with_aad;

    /// The golden vector of `docs/FORMAT.md` ("SM4-GCM blob, v2").
    #[test]
    fn golden_vector() {
        let key: [u8; 16] = core::array::from_fn(|i| i as u8);
        let nonce: [u8; 12] = core::array::from_fn(|i| 0xa0 + i as u8);
        let mut blob = header(
            PlaintextKind::Text,
            "0b5e1f0c-9c53-4b8e-a0ae-2b7a8c5f0d11",
            "7f7e1d36-3f4c-4a3d-9d1c-6c1b2a3e4f50",
            &nonce,
        )
        .expect("ids");
        let context = crate::crypto::context::EncryptionContext::empty();
        let sealed = with_aad(&blob, context.encoded(), |aad| {
            sm4_gcm_seal(&key, &nonce, aad, b"hello sm4")
        })
        .expect("seal");
        blob.extend_from_slice(&sealed);
        let hex: String = blob.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "020130623565316630632d396335332d346238652d613061652d32623761386335663064313137663765316433362d336634632d346133642d396431632d366331623261336534663530a0a1a2a3a4a5a6a7a8a9aaab552ba5076294f39bddeb49ad0503d93bd3c23efb70a2ad6b11"
        );
    }
}
