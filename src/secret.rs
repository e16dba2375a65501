//! Secret byte holders and the OS random source.
//!
//! Secrets zeroize on drop, print as `[REDACTED]`, and are neither `Clone` nor
//! `Serialize`.

use std::fmt;
use std::ops::Range;
use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::Simd;
use base64::engine::general_purpose::PAD;
use zeroize::{Zeroize as _, Zeroizing};

use crate::error::{Error, Result};

/// Standard base64 with padding, strict on decode: the same text as
/// `base64::engine::general_purpose::STANDARD`, with its SIMD kernels (base64
/// dominates the cost of a small operation otherwise).
pub(crate) static BASE64: LazyLock<Simd> = LazyLock::new(|| Simd::standard(PAD));

/// Secret bytes: zeroized on drop, printed as `[REDACTED]`, reached only
/// through [`SecretBytes::expose_secret`] or moved out with
/// [`SecretBytes::into_zeroizing`]. Not `Clone`.
///
/// ```
/// use localkms::SecretBytes;
/// let s = SecretBytes::from(vec![1, 2, 3]);
/// assert_eq!(format!("{s:?}"), "SecretBytes([REDACTED])");
/// let owned: zeroize::Zeroizing<Vec<u8>> = s.into_zeroizing();
/// assert_eq!(owned.as_slice(), &[1, 2, 3]);
/// ```
pub struct SecretBytes {
    /// The whole buffer is zeroized on drop; the secret is `buf[range]`.
    buf: Zeroizing<Vec<u8>>,
    range: Range<usize>,
}

impl SecretBytes {
    /// The secret is `buf[range]` (so a blob opened in place needs no copy).
    pub(crate) fn in_buffer(buf: Zeroizing<Vec<u8>>, range: Range<usize>) -> Result<Self> {
        if range.start > range.end || range.end > buf.len() {
            return Err(Error::InternalFailure);
        }
        Ok(Self { buf, range })
    }

    /// The secret bytes.
    pub fn expose_secret(&self) -> &[u8] {
        self.buf.get(self.range.clone()).unwrap_or_default()
    }

    /// The length in bytes (not secret).
    pub fn len(&self) -> usize {
        self.range.len()
    }

    /// True when there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }

    /// The bytes as standard base64, in a zeroizing string.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(BASE64.encode(self.expose_secret()))
    }

    /// Moves the secret out, still zeroizing, without a copy left behind:
    /// the bytes around it in the buffer (a blob's header and tag) are
    /// cleared first.
    pub fn into_zeroizing(mut self) -> Zeroizing<Vec<u8>> {
        let Range { start, end } = self.range.clone();
        let mut buf = std::mem::take(&mut self.buf);
        if start > 0 {
            buf.copy_within(start..end, 0);
        }
        let len = end - start;
        if let Some(tail) = buf.get_mut(len..) {
            tail.zeroize();
        }
        buf.truncate(len);
        buf
    }
}

impl From<Zeroizing<Vec<u8>>> for SecretBytes {
    fn from(buf: Zeroizing<Vec<u8>>) -> Self {
        let range = 0..buf.len();
        Self { buf, range }
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(buf: Vec<u8>) -> Self {
        Self::from(Zeroizing::new(buf))
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes([REDACTED])")
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simd_base64_is_standard_base64() {
        use base64::engine::general_purpose::STANDARD;
        for len in 0..300usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 167 + len) as u8).collect();
            let text = BASE64.encode(&bytes);
            assert_eq!(text, STANDARD.encode(&bytes));
            assert_eq!(BASE64.decode(&text).ok(), Some(bytes));
        }
        let good = STANDARD.encode([0xffu8; 100]);
        let mut cases = vec![
            "A".to_owned(),
            "AB".into(),
            "AB=".into(),
            "AB==".into(),
            "AQ==".into(),
            "AR==".into(),
            "AQ".into(),
            "A===".into(),
            "====".into(),
            format!("{good}="),
            format!("{good} "),
            good.replace('/', "_"),
        ];
        for i in 0..good.len() {
            for c in [b'!', b'=', b'-', b'\n', 0x80] {
                let mut t = good.clone().into_bytes();
                t[i] = c;
                cases.push(String::from_utf8_lossy(&t).into_owned());
            }
        }
        for c in cases {
            assert_eq!(BASE64.decode(&c).ok(), STANDARD.decode(&c).ok(), "{c}");
        }
    }

    #[test]
    fn into_zeroizing_moves_the_secret_out_of_its_buffer() {
        let buf = Zeroizing::new(b"headerSECRETtag".to_vec());
        let s = SecretBytes::in_buffer(buf, 6..12).expect("range");
        assert_eq!(s.expose_secret(), b"SECRET");
        let owned = s.into_zeroizing();
        assert_eq!(owned.as_slice(), b"SECRET");
        // The bytes around it were cleared, not left in the spare capacity.
        assert!(owned.capacity() >= 15);
        let whole = SecretBytes::from(vec![1, 2, 3]).into_zeroizing();
        assert_eq!(whole.as_slice(), &[1, 2, 3]);
        assert!(SecretBytes::in_buffer(Zeroizing::new(vec![0; 3]), 2..5).is_err());
    }
}
