//! GenerateMac and VerifyMac (SPEC section 11) with the `HMAC_*` keys.
//!
//! Both use the key's primary version (the API names no version; HMAC keys
//! have exactly one, as CreateKeyVersion refuses them). Checks come in the
//! order of the asymmetric operations: the key's kind and usage (`KeyId`),
//! the algorithm against the spec (`Algorithm`), then the state table's
//! crypto row. Tags are full length and compared in constant time.

use crate::cache::VersionSecret;
use crate::crypto::asym::{self, Algorithm};
use crate::error::{Error, Result};
use crate::kms::Kms;
use crate::ops::asymmetric::{asym_error, asym_spec};

/// The longest `Message` of GenerateMac and VerifyMac, in bytes.
pub const MAX_MAC_MESSAGE_BYTES: usize = 6144;

/// The response of GenerateMac.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mac {
    /// The key (resolved from an alias or ARN).
    pub key_id: String,
    /// The version whose key made the tag (the primary).
    pub key_version_id: String,
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The tag (the wire `Mac` is its base64).
    pub mac: Vec<u8>,
}

/// The response of VerifyMac.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacVerified {
    /// The key.
    pub key_id: String,
    /// The version that checked the tag (the primary).
    pub key_version_id: String,
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Whether the tag is valid.
    pub value: bool,
}

crate::kms::instrument::audited_ids! {
    Mac => |r| (Some(&r.key_id), Some(&r.key_version_id));
    MacVerified => |r| (Some(&r.key_id), Some(&r.key_version_id));
}

impl Kms {
    /// GenerateMac: the full-length HMAC of `message` (1..=6144 bytes) under
    /// the primary version of a `GENERATE/VERIFY MAC` key. `key_id` may be
    /// an alias.
    ///
    /// ```
    /// use localkms::{Algorithm, CreateKeyRequest, KeySpec, Kms};
    /// let kms = Kms::in_memory()?;
    /// let key = kms.create_key(&CreateKeyRequest { key_spec: KeySpec::HmacSha256, ..Default::default() })?;
    /// let tag = kms.generate_mac(&key.key_id, Algorithm::HmacSha256, b"hello")?.mac;
    /// assert!(kms.verify_mac(&key.key_id, Algorithm::HmacSha256, b"hello", &tag)?.value);
    /// # Ok::<(), localkms::Error>(())
    /// ```
    ///
    /// # Errors
    /// `MissingParameter` (KeyId, Message); `InvalidParameter` naming
    /// `KeyId` (not an HMAC key), `Algorithm` (not the key's HMAC) or
    /// `Message` (too long); `Forbidden.KeyNotFound`,
    /// `Forbidden.AliasNotFound`, the state rejections.
    pub fn generate_mac(&self, key_id: &str, algorithm: Algorithm, message: &[u8]) -> Result<Mac> {
        self.operation("GenerateMac", key_id, || {
            let (entry, version) = self.mac_key(key_id, "GenerateMac", algorithm, message)?;
            let secret = self.version_secret(&entry, &version)?;
            let VersionSecret::Raw(key) = &*secret else {
                return Err(Error::InternalFailure);
            };
            let mac = asym::mac(asym_spec(entry.record.spec), key, message).map_err(asym_error)?;
            Ok(Mac {
                key_id: entry.record.key_id.clone(),
                key_version_id: version,
                algorithm,
                mac,
            })
        })
    }

    /// VerifyMac: whether `mac` is the full-length HMAC of `message` under
    /// the primary version (a truncated tag is not valid).
    ///
    /// # Errors
    /// As [`Kms::generate_mac`], and `MissingParameter` (Mac).
    pub fn verify_mac(
        &self,
        key_id: &str,
        algorithm: Algorithm,
        message: &[u8],
        mac: &[u8],
    ) -> Result<MacVerified> {
        self.operation("VerifyMac", key_id, || {
            let (entry, version) = self.mac_key(key_id, "VerifyMac", algorithm, message)?;
            if mac.is_empty() {
                return Err(Error::MissingParameter("Mac"));
            }
            let secret = self.version_secret(&entry, &version)?;
            let VersionSecret::Raw(key) = &*secret else {
                return Err(Error::InternalFailure);
            };
            let value = asym::verify_mac(asym_spec(entry.record.spec), key, message, mac)
                .map_err(asym_error)?;
            Ok(MacVerified {
                key_id: entry.record.key_id.clone(),
                key_version_id: version,
                algorithm,
                value,
            })
        })
    }

    fn mac_key(
        &self,
        key_id: &str,
        action: &'static str,
        algorithm: Algorithm,
        message: &[u8],
    ) -> Result<(std::sync::Arc<crate::cache::KeyEntry>, String)> {
        let entry = self.keyed_entry(
            key_id,
            action,
            Some(asym::KeyUsage::GenerateVerifyMac),
            Some(algorithm),
        )?;
        if message.is_empty() {
            return Err(Error::MissingParameter("Message"));
        }
        if message.len() > MAX_MAC_MESSAGE_BYTES {
            return Err(Error::invalid("Message", "must be at most 6144 bytes"));
        }
        let version = entry
            .record
            .primary()
            .map(|v| v.id.clone())
            .ok_or_else(|| {
                Error::CorruptStore(
                    format!("usable key {} has no version", entry.record.key_id).into(),
                )
            })?;
        Ok((entry, version))
    }
}
