//! Sealing at rest: every stored record that holds key material is encrypted
//! under the root key (SPEC section 5).
//!
//! Sealed record format v1 (all of it is covered by the AEAD):
//!
//! ```text
//! +------+------------------+---------------------------+
//! | 0x01 | nonce (24 bytes) | XAES-256-GCM(ct || tag16) |
//! +------+------------------+---------------------------+
//! AAD = "localkms/sealed-record/v1" || 0x00 || len(ns) u8 || ns || id
//! ```
//!
//! The AAD binds the record's identity, so a sealed record copied over
//! another fails to open.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use xaes_256_gcm::Xaes256Gcm;
use xaes_256_gcm::aead::{AeadInOut, KeyInit};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::secret::fill_random;

const SEALED_V1: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const AAD_LABEL: &[u8] = b"localkms/sealed-record/v1\0";

/// The key that seals every stored secret. 256 bits.
///
/// Production deployments should supply it from outside the store (an
/// environment variable, a secrets manager, a file on other media): a root key
/// kept beside the store it protects protects only against reading the store
/// alone. `Debug` never shows it.
pub struct RootKey {
    cipher: Xaes256Gcm,
}

impl fmt::Debug for RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RootKey([REDACTED])")
    }
}

impl RootKey {
    /// A root key from 32 raw bytes.
    ///
    /// # Errors
    /// [`Error::InvalidRootKey`] if `bytes` is not 32 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != 32 {
            return Err(Error::InvalidRootKey(
                format!("expected 32 bytes, got {}", bytes.len()).into(),
            ));
        }
        let key = xaes_256_gcm::Key::<Xaes256Gcm>::try_from(bytes)
            .map_err(|_| Error::InvalidRootKey("expected 32 bytes".into()))?;
        Ok(Self {
            cipher: Xaes256Gcm::new(&key),
        })
    }

    /// A root key from text: 64 hex digits, or standard base64 of 32 bytes.
    /// Surrounding whitespace is ignored.
    ///
    /// # Errors
    /// [`Error::InvalidRootKey`] if the text is neither.
    pub fn from_text(text: &str) -> Result<Self> {
        let text = text.trim();
        let bytes = Zeroizing::new(
            if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
                (0..32)
                    .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
                    .collect::<Result<Vec<u8>, _>>()
                    .map_err(|_| Error::InvalidRootKey("bad hex".into()))?
            } else {
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|_| Error::InvalidRootKey("neither 64 hex digits nor base64".into()))?
            },
        );
        Self::from_bytes(&bytes)
    }

    /// Reads a root key file: 32 raw bytes, or the text forms of
    /// [`RootKey::from_text`].
    ///
    /// # Errors
    /// [`Error::InvalidRootKey`] if the file cannot be read or holds no key.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| {
            Error::InvalidRootKey(format!("cannot read {}: {}", path.display(), e.kind()).into())
        })?);
        if bytes.len() == 32 {
            return Self::from_bytes(&bytes);
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            Error::InvalidRootKey(format!("{} holds no key", path.display()).into())
        })?;
        Self::from_text(text)
    }

    /// Reads a root key from an environment variable, in the text forms of
    /// [`RootKey::from_text`].
    ///
    /// # Errors
    /// [`Error::InvalidRootKey`] if the variable is unset or holds no key.
    pub fn from_env(var: &str) -> Result<Self> {
        let value = Zeroizing::new(std::env::var(var).map_err(|_| {
            Error::InvalidRootKey(format!("environment variable {var} is not set").into())
        })?);
        Self::from_text(&value)
    }

    /// A fresh root key from the OS CSPRNG, and its 32 bytes (to keep
    /// outside the store, for example in a secrets manager or a file of
    /// mode 0600).
    ///
    /// ```
    /// let (key, bytes) = localkms::RootKey::generate()?;
    /// let again = localkms::RootKey::from_bytes(&*bytes)?;
    /// let kms = localkms::Kms::builder().root_key(key).build()?;
    /// # drop((again, kms));
    /// # Ok::<(), localkms::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InternalFailure`](crate::Error::InternalFailure) if the OS
    /// random source fails.
    pub fn generate() -> Result<(Self, Zeroizing<[u8; 32]>)> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        fill_random(bytes.as_mut())?;
        Ok((Self::from_bytes(bytes.as_ref())?, bytes))
    }

    /// Seals `plaintext` as the record `(ns, id)`.
    pub(crate) fn seal(&self, ns: &str, id: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce)?;
        self.seal_with_nonce(ns, id, plaintext, nonce)
    }

    pub(crate) fn seal_with_nonce(
        &self,
        ns: &str,
        id: &[u8],
        plaintext: &[u8],
        nonce: [u8; NONCE_LEN],
    ) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce);
        let body = out.len();
        out.extend_from_slice(plaintext);
        let tag = self
            .cipher
            .encrypt_inout_detached(&nonce.into(), &aad(ns, id), (&mut out[body..]).into())
            .map_err(|_| Error::InternalFailure)?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Opens the sealed record `(ns, id)`. Any failure, including a record
    /// sealed for another identity or under another root key, is `None`.
    pub(crate) fn open(&self, ns: &str, id: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed[0] != SEALED_V1 {
            return None;
        }
        let (nonce, rest) = sealed[1..].split_at(NONCE_LEN);
        let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
        let nonce = xaes_256_gcm::Nonce::try_from(nonce).ok()?;
        let tag = xaes_256_gcm::Tag::try_from(tag).ok()?;
        let mut buf = Zeroizing::new(ct.to_vec());
        self.cipher
            .decrypt_inout_detached(&nonce, &aad(ns, id), buf.as_mut_slice().into(), &tag)
            .ok()?;
        Some(buf)
    }
}

fn aad(ns: &str, id: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_LABEL.len() + 1 + ns.len() + id.len());
    aad.extend_from_slice(AAD_LABEL);
    aad.push(u8::try_from(ns.len()).unwrap_or(u8::MAX));
    aad.extend_from_slice(ns.as_bytes());
    aad.extend_from_slice(id);
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> RootKey {
        RootKey::from_bytes(&[7u8; 32]).expect("32 bytes")
    }

    #[test]
    fn seal_open_round_trip() {
        let k = key();
        let sealed = k.seal("material", b"id-1", b"secret").expect("seal");
        assert_eq!(
            k.open("material", b"id-1", &sealed)
                .as_deref()
                .map(Vec::as_slice),
            Some(&b"secret"[..])
        );
    }

    #[test]
    fn a_record_copied_over_another_fails_to_open() {
        let k = key();
        let sealed = k.seal("material", b"id-1", b"secret").expect("seal");
        assert!(k.open("material", b"id-2", &sealed).is_none());
        assert!(k.open("materia", b"lid-1", &sealed).is_none());
        assert!(k.open("token", b"id-1", &sealed).is_none());
    }

    #[test]
    fn another_root_key_fails_to_open() {
        let sealed = key().seal("m", b"i", b"secret").expect("seal");
        let other = RootKey::from_bytes(&[8u8; 32]).expect("32 bytes");
        assert!(other.open("m", b"i", &sealed).is_none());
    }

    #[test]
    fn every_bit_flip_and_truncation_fails() {
        let k = key();
        let sealed = k
            .seal("m", b"i", b"0123456789abcdef0123456789abcdef")
            .expect("seal");
        for bit in 0..sealed.len() * 8 {
            let mut t = sealed.clone();
            t[bit / 8] ^= 1 << (bit % 8);
            assert!(k.open("m", b"i", &t).is_none(), "bit {bit}");
        }
        for len in 0..sealed.len() {
            assert!(k.open("m", b"i", &sealed[..len]).is_none(), "len {len}");
        }
    }

    #[test]
    fn root_key_text_forms() {
        let hex = "07".repeat(32);
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let sealed = key().seal("m", b"i", b"x").expect("seal");
        for text in [hex.as_str(), b64.as_str(), &format!("  {hex}\n")] {
            let k = RootKey::from_text(text).expect("valid text");
            assert!(k.open("m", b"i", &sealed).is_some());
        }
        for bad in ["", "07", &"zz".repeat(32), "AAAA"] {
            assert_eq!(
                RootKey::from_text(bad).unwrap_err().code(),
                "InternalFailure"
            );
        }
        assert!(format!("{:?}", key()).contains("REDACTED"));
    }
}
