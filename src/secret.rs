//! Secret byte holders and the OS random source.
//!
//! Secrets zeroize on drop, print as `[REDACTED]`, and are neither `Clone` nor
//! `Serialize`.

use std::fmt;

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// 256 bits of key material.
pub(crate) struct KeyMaterial(Zeroizing<[u8; 32]>);

impl KeyMaterial {
    /// Fresh material from the OS CSPRNG.
    pub(crate) fn generate() -> Result<Self> {
        let mut m = Zeroizing::new([0u8; 32]);
        fill_random(m.as_mut())?;
        Ok(Self(m))
    }

    /// Takes material from a slice, which must be exactly 32 bytes.
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut m = Zeroizing::new([0u8; 32]);
        if bytes.len() != 32 {
            return None;
        }
        m.copy_from_slice(bytes);
        Some(Self(m))
    }

    pub(crate) fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyMaterial([REDACTED])")
    }
}

/// Fills `buf` from the OS CSPRNG.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|_| Error::InternalFailure)
}

/// HMAC-SHA-256 (RFC 2104) of the concatenated `parts`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Zeroizing<[u8; 32]> {
    use hmac::{KeyInit as _, Mac as _};
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes a key of any length"); // safe: HMAC takes a key of any length
    for p in parts {
        mac.update(p);
    }
    Zeroizing::new(mac.finalize().into_bytes().into())
}
