//! Encrypt, GenerateDataKey and Decrypt with `Aliyun_SM4` keys: SM4-GCM with
//! a random 96-bit nonce, in the v2 blob ([`crate::crypto::sm4_blob`]). The
//! operations in `symmetric.rs` route here by the key's spec (sealing) and
//! by the blob's first byte (opening); everything else about them (state
//! table, context, limits, the uniform decryption error) is theirs.

use zeroize::Zeroizing;

use crate::cache::{KeyEntry, VersionSecret};
use crate::crypto::asym::{SM4_GCM_NONCE_LEN, SM4_GCM_TAG_LEN, SM4_KEY_LEN};
use crate::crypto::blob::{PlaintextKind, with_aad};
use crate::crypto::context::EncryptionContext;
use crate::crypto::sm4_blob;
use crate::error::{Error, Result, shorten};
use crate::kms::Kms;
use crate::ops::symmetric::{Decrypted, Sealed, SecretBytes};
use crate::store::record::KeyRecord;
use crate::types::KeySpec;

/// `InvalidParameter` naming `KeyId` unless `record` is a symmetric
/// encryption key (`Aliyun_AES_256` or `Aliyun_SM4`): Encrypt, Decrypt,
/// GenerateDataKey and ReEncrypt refuse key pairs and HMAC keys.
pub(crate) fn check_symmetric(record: &KeyRecord) -> Result<()> {
    match record.spec {
        KeySpec::Aes256 | KeySpec::Sm4 => Ok(()),
        spec => Err(Error::invalid(
            "KeyId",
            format!(
                "symmetric encryption needs an Aliyun_AES_256 or Aliyun_SM4 key, and this is a {spec} key with KeyUsage {}",
                record.usage
            ),
        )),
    }
}

impl Kms {
    /// The 16-byte SM4 key of one version.
    fn sm4_key(&self, entry: &KeyEntry, version_id: &str) -> Result<[u8; SM4_KEY_LEN]> {
        let secret = self.version_secret(entry, version_id)?;
        match &*secret {
            VersionSecret::Raw(k) => <[u8; SM4_KEY_LEN]>::try_from(k.as_slice())
                .map_err(|_| Error::CorruptStore("SM4 key material is not 16 bytes".into())),
            VersionSecret::Private { .. } => Err(Error::InternalFailure),
        }
    }

    /// Seals `plaintext` under the primary version of an `Aliyun_SM4` key,
    /// with the first 96 bits of the random `nonce`.
    pub(crate) fn seal_sm4(
        &self,
        entry: &KeyEntry,
        kind: PlaintextKind,
        plaintext: &[u8],
        context: &EncryptionContext,
        nonce: &[u8],
    ) -> Result<Sealed> {
        let record = &entry.record;
        let version = record.primary().ok_or_else(|| {
            Error::CorruptStore(format!("usable key {} has no version", record.key_id).into())
        })?;
        let nonce: &[u8; SM4_GCM_NONCE_LEN] = nonce
            .get(..SM4_GCM_NONCE_LEN)
            .and_then(|n| n.try_into().ok())
            .ok_or(Error::InternalFailure)?;
        let key = Zeroizing::new(self.sm4_key(entry, &version.id)?);
        let mut blob = sm4_blob::header(kind, &record.key_id, &version.id, nonce)?;
        let sealed = with_aad(&blob, context.encoded(), |aad| {
            crate::crypto::asym::sm4_gcm_seal(&key, nonce, aad, plaintext)
        })
        .map_err(|_| Error::InternalFailure)?;
        blob.extend_from_slice(&sealed);
        Ok(Sealed {
            key_id: record.key_id.clone(),
            key_version_id: version.id.clone(),
            blob,
        })
    }

    /// Opens a v2 (SM4-GCM) blob.
    pub(crate) fn decrypt_sm4(
        &self,
        blob: &[u8],
        context: &EncryptionContext,
    ) -> Result<Decrypted> {
        let h = sm4_blob::read(blob)?;
        let key_id = std::str::from_utf8(h.key_id)
            .ok()
            .filter(|id| crate::types::is_key_id(id))
            .ok_or_else(|| Error::KeyNotFound(shorten(&String::from_utf8_lossy(h.key_id))))?;
        let entry = self.usable_entry(key_id)?;
        if entry.record.spec != KeySpec::Sm4 {
            // A v2 blob naming an AES key was not made here.
            return Err(Error::DecryptionFailed);
        }
        let version_id = std::str::from_utf8(h.version_id)
            .map_err(|_| {
                Error::KeyVersionNotFound(shorten(&String::from_utf8_lossy(h.version_id)))
            })?
            .to_owned();
        let key = Zeroizing::new(self.sm4_key(&entry, &version_id)?);
        if h.sealed.len() < SM4_GCM_TAG_LEN {
            return Err(Error::DecryptionFailed);
        }
        let plain = with_aad(h.header, context.encoded(), |aad| {
            crate::crypto::asym::sm4_gcm_open(&key, h.nonce, aad, h.sealed)
        })
        .map_err(|_| Error::DecryptionFailed)?;
        let len = plain.len();
        Ok(Decrypted {
            key_id: entry.record.key_id.clone(),
            key_version_id: version_id,
            kind: h.kind,
            plaintext: SecretBytes::in_buffer(plain, 0..len)?,
        })
    }
}
