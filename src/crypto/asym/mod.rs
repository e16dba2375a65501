//! Cryptographic primitives for asymmetric, HMAC and SM4 keys (SPEC
//! section 11), over plain bytes: no `Kms`, no wire layer.
//!
//! - `spec`: `KeySpec`, `KeyUsage`, `Algorithm` with their wire strings and
//!   the table of valid combinations;
//! - `keys`: RSA, P-256, secp256k1 and SM2 key pairs: generation, PKCS#8
//!   for sealed storage, SubjectPublicKeyInfo PEM, sign/verify over a digest,
//!   encrypt/decrypt;
//! - `mac`: HMAC-SHA-224/256/384/512 and HMAC-SM3;
//! - `sm4gcm`: SM4-GCM with a 96-bit nonce.
//!
//! All of it is RustCrypto code; this module chooses parameters, encodings
//! and error behaviour. Tested against Wycheproof (`tests/wycheproof.rs`) and
//! against OpenSSL, Python `cryptography` and `gmssl`
//! (`tests/asym_crosscheck.rs`).

pub mod error;
pub mod keys;
pub mod mac;
pub mod sm4gcm;
pub mod spec;

pub use error::{AsymError, Result};
pub use keys::{
    PrivateKey, PublicKey, RSA_PSS_SALT_LEN, SM2_DEFAULT_ID, sha256, sm2_digest, sm2_za,
};
pub use mac::{mac, verify_mac};
pub use sm4gcm::{SM4_GCM_NONCE_LEN, SM4_GCM_TAG_LEN, SM4_KEY_LEN, sm4_gcm_open, sm4_gcm_seal};
pub use spec::{Algorithm, KeySpec, KeyUsage, check_combination, is_valid_combination};

#[cfg(test)]
mod tests;
