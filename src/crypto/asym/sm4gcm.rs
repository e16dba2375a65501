//! SM4-GCM (GB/T 32907 block cipher in NIST SP 800-38D GCM mode, as in
//! RFC 8998) with a 96-bit nonce and a 128-bit tag, for `Aliyun_SM4` keys.
//!
//! The GCM mode is RustCrypto's generic `AesGcm<Cipher, NonceSize>` (GHASH from
//! the `ghash` crate) over the `sm4` block cipher: nothing hand-written.
//! With random 96-bit nonces one key version must seal at most 2^32 messages
//! (SP 800-38D section 8.3); the service keeps users under it by rotation.

use aes_gcm::AesGcm;
use aes_gcm::aead::array::typenum::U12;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use sm4::Sm4;
use zeroize::Zeroizing;

use super::error::{AsymError, Result};

/// SM4 key length in bytes.
pub const SM4_KEY_LEN: usize = 16;
/// Nonce length in bytes (96 bits).
pub const SM4_GCM_NONCE_LEN: usize = 12;
/// Tag length in bytes (128 bits).
pub const SM4_GCM_TAG_LEN: usize = 16;

type Sm4Gcm = AesGcm<Sm4, U12>;

/// Encrypts `plaintext` with `aad`, returning ciphertext || tag.
///
/// # Errors
/// [`AsymError::Internal`] if the plaintext exceeds GCM's length limit.
pub fn sm4_gcm_seal(
    key: &[u8; SM4_KEY_LEN],
    nonce: &[u8; SM4_GCM_NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let cipher = Sm4Gcm::new(key.into());
    cipher
        .encrypt(
            nonce.into(),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| AsymError::Internal)
}

/// Decrypts ciphertext || tag with `aad`. Any failure (short input, wrong
/// tag, wrong key, nonce or AAD) is the one [`AsymError::DecryptionFailed`].
///
/// # Errors
/// [`AsymError::DecryptionFailed`].
pub fn sm4_gcm_open(
    key: &[u8; SM4_KEY_LEN],
    nonce: &[u8; SM4_GCM_NONCE_LEN],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    if sealed.len() < SM4_GCM_TAG_LEN {
        return Err(AsymError::DecryptionFailed);
    }
    let cipher = Sm4Gcm::new(key.into());
    cipher
        .decrypt(nonce.into(), Payload { msg: sealed, aad })
        .map(Zeroizing::new)
        .map_err(|_| AsymError::DecryptionFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let key = [7u8; 16];
        let nonce = [9u8; 12];
        let sealed = sm4_gcm_seal(&key, &nonce, b"aad", b"hello sm4").unwrap();
        assert_eq!(sealed.len(), 9 + SM4_GCM_TAG_LEN);
        let opened = sm4_gcm_open(&key, &nonce, b"aad", &sealed).unwrap();
        assert_eq!(&opened[..], b"hello sm4");
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                sm4_gcm_open(&key, &nonce, b"aad", &bad),
                Err(AsymError::DecryptionFailed)
            );
        }
        assert!(sm4_gcm_open(&key, &nonce, b"aaD", &sealed).is_err());
        assert!(sm4_gcm_open(&key, &nonce, b"aad", &sealed[..15]).is_err());
    }
}
