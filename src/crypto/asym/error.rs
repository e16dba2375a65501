//! The one error type of the primitives layer.
//!
//! Small and closed: each variant says which wire parameter was wrong or that
//! a secret operation failed, and none carries key material, plaintext or the
//! reason a decryption failed. The service layer maps it onto its own error.

use std::fmt;

/// A failed primitive operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AsymError {
    /// A parameter is malformed or does not fit the key. Carries the wire name
    /// of the parameter (`Digest`, `Algorithm`, `KeySpec`, `KeyUsage`,
    /// `Plaintext`, `PublicKey`, `Nonce`) and a short reason.
    InvalidParameter {
        /// The wire name of the parameter.
        param: &'static str,
        /// Why it was rejected. Never contains secret bytes.
        reason: &'static str,
    },
    /// Decryption failed. One unit variant for every cause (bad padding, bad
    /// tag, wrong length, point not on the curve), so no oracle is exposed.
    DecryptionFailed,
    /// Stored key material could not be parsed or does not match its spec.
    InvalidKeyMaterial,
    /// The random source failed, or an internal step that cannot fail for
    /// valid keys did.
    Internal,
}

impl AsymError {
    pub(crate) const fn param(param: &'static str, reason: &'static str) -> Self {
        Self::InvalidParameter { param, reason }
    }
}

impl fmt::Display for AsymError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidParameter { param, reason } => {
                write!(f, "the specified parameter {param} is not valid: {reason}")
            }
            Self::DecryptionFailed => f.write_str("decryption failed"),
            Self::InvalidKeyMaterial => f.write_str("the key material is not valid"),
            Self::Internal => f.write_str("internal cryptographic failure"),
        }
    }
}

impl std::error::Error for AsymError {}

/// The result of a primitive operation.
pub type Result<T> = std::result::Result<T, AsymError>;
