//! The one error type, and its mapping to the API's error codes (SPEC section 3).
//!
//! Every variant maps to exactly one wire code and HTTP status in [`Error::code`]
//! and [`Error::http_status`], both one exhaustive match, so a new variant cannot
//! forget its code. Messages name the offending parameter and never carry
//! plaintext, key material or tokens.

use std::borrow::Cow;
use std::fmt;

use crate::types::KeyState;

/// A failed operation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A required parameter is absent or empty. Carries the parameter name.
    MissingParameter(&'static str),
    /// A parameter is malformed or out of range.
    InvalidParameter {
        /// The wire name of the parameter.
        param: &'static str,
        /// Why it was rejected. Never contains secret bytes.
        reason: Cow<'static, str>,
    },
    /// Decryption failed: a tampered or foreign blob, or a wrong
    /// `EncryptionContext`. Deliberately carries no detail (wire code
    /// `InvalidParameter`, one message for every cause).
    DecryptionFailed,
    /// No such key, or it has been deleted.
    KeyNotFound(String),
    /// No such alias.
    AliasNotFound(String),
    /// No such key version.
    KeyVersionNotFound(String),
    /// CreateAlias with a name that is taken.
    AliasAlreadyExists(String),
    /// A configured limit would be exceeded. Carries what the limit is on.
    LimitExceeded(Cow<'static, str>),
    /// Imported material failed to unwrap, has the wrong length or differs from
    /// the key's earlier material. One message for every cause.
    InvalidKeyMaterial,
    /// An import token is malformed, forged or issued for another key.
    InvalidImportToken,
    /// An import token is past its expiry.
    ExpiredImportToken,
    /// An operation for one key origin was called on a key of the other.
    UnsupportedOrigin {
        /// The key.
        key_id: String,
        /// What the operation needs, in words.
        reason: &'static str,
    },
    /// An alias was given where only a key id is accepted.
    UnsupportedAlias(&'static str),
    /// A valid request that the library does not support.
    UnsupportedOperation(Cow<'static, str>),
    /// The key's state forbids the operation (SPEC section 2).
    Rejected {
        /// Which of the four rejection codes applies.
        rejection: Rejection,
        /// The key.
        key_id: String,
        /// The key's state when the operation was refused.
        state: KeyState,
    },
    /// The root key does not open this store.
    WrongRootKey,
    /// The root key given is malformed (not 32 bytes, bad encoding, unreadable).
    InvalidRootKey(Cow<'static, str>),
    /// The store was written by an unknown format version.
    UnsupportedStoreVersion(u32),
    /// Another process holds the store.
    StoreLocked(String),
    /// A stored record is corrupt or cannot be opened.
    CorruptStore(Cow<'static, str>),
    /// The keystore backend failed.
    Storage(StoreError),
    /// The request has no signature, or a wrong one.
    IncompleteSignature(Cow<'static, str>),
    /// The request's timestamp is missing, malformed or outside the window.
    IllegalTimestamp,
    /// The request's signature nonce was seen before.
    SignatureNonceUsed,
    /// The request's access key id is unknown.
    InvalidAccessKeyId,
    /// The request's `Action` is unknown.
    InvalidAction(String),
    /// The HTTP method is not supported.
    UnsupportedHttpMethod(String),
    /// An injected or real temporary failure: the caller should retry.
    Throttling,
    /// An injected or real temporary failure: the service is unavailable.
    ServiceUnavailable,
    /// An injected internal failure.
    InternalFailure,
    /// Reading or writing a caller's stream failed (envelope streaming).
    Io {
        /// The kind of I/O error.
        kind: std::io::ErrorKind,
        /// The I/O error's message.
        message: String,
    },
    /// No such secret, secret version or stage (or the secret was deleted):
    /// `Forbidden.ResourceNotFound`. Carries what was looked for.
    ResourceNotFound(String),
    /// CreateSecret with a name that is taken, or PutSecretValue with an
    /// existing VersionId and a different value: `Rejected.ResourceExist`.
    ResourceExists(String),
    /// The resource's state forbids the operation (a secret pending
    /// deletion, RestoreSecret of a live secret, DisableKey of the secrets
    /// manager's default key): `Rejected.ResourceInUse`. Carries why.
    ResourceInUse(String),
    /// The store is behind its witness: it lost acknowledged writes, or an
    /// old copy of it was put back (SPEC section 9). Open it with
    /// `KmsBuilder::recover_rolled_back` to accept the loss.
    StoreRolledBack(Cow<'static, str>),
}

/// The four state-table rejections of SPEC section 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// `Rejected.Disabled`
    Disabled,
    /// `Rejected.PendingDeletion`
    PendingDeletion,
    /// `Rejected.PendingImport`
    PendingImport,
    /// `Rejected.StateModifiedFailed`
    StateModifiedFailed,
}

impl Rejection {
    /// The rejection a crypto operation gets in `state`, if any.
    pub(crate) fn for_use(state: KeyState) -> Option<Self> {
        match state {
            KeyState::Enabled => None,
            KeyState::Disabled => Some(Self::Disabled),
            KeyState::PendingDeletion => Some(Self::PendingDeletion),
            KeyState::PendingImport => Some(Self::PendingImport),
        }
    }
}

/// The message every decryption failure carries, whatever the cause.
pub const DECRYPTION_FAILED_MESSAGE: &str =
    "The specified parameter CiphertextBlob or EncryptionContext is not valid.";

/// The message every key material failure carries, whatever the cause.
pub const INVALID_KEY_MATERIAL_MESSAGE: &str =
    "The specified parameter EncryptedKeyMaterial is not valid.";

impl Error {
    /// The API error code, exact and case-sensitive (SPEC section 3).
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingParameter(_) => "MissingParameter",
            Self::InvalidParameter { .. } | Self::DecryptionFailed => "InvalidParameter",
            Self::KeyNotFound(_) => "Forbidden.KeyNotFound",
            Self::AliasNotFound(_) => "Forbidden.AliasNotFound",
            Self::KeyVersionNotFound(_) => "Forbidden.KeyVersionNotFound",
            Self::AliasAlreadyExists(_) => "AliasAlreadyExists",
            Self::LimitExceeded(_) => "Rejected.LimitExceeded",
            Self::InvalidKeyMaterial => "InvalidKeyMaterial",
            Self::InvalidImportToken => "InvalidImportToken",
            Self::ExpiredImportToken => "ExpiredImportToken",
            Self::UnsupportedOrigin { .. } => "Unsupported.Origin",
            Self::UnsupportedAlias(_) => "Unsupported.Alias",
            Self::UnsupportedOperation(_) => "UnsupportedOperation",
            Self::Rejected { rejection, .. } => match rejection {
                Rejection::Disabled => "Rejected.Disabled",
                Rejection::PendingDeletion => "Rejected.PendingDeletion",
                Rejection::PendingImport => "Rejected.PendingImport",
                Rejection::StateModifiedFailed => "Rejected.StateModifiedFailed",
            },
            Self::WrongRootKey
            | Self::InvalidRootKey(_)
            | Self::UnsupportedStoreVersion(_)
            | Self::StoreLocked(_)
            | Self::CorruptStore(_)
            | Self::Storage(_)
            | Self::InternalFailure
            | Self::Io { .. }
            | Self::StoreRolledBack(_) => "InternalFailure",
            Self::IncompleteSignature(_) => "IncompleteSignature",
            Self::IllegalTimestamp => "IllegalTimestamp",
            Self::SignatureNonceUsed => "SignatureNonceUsed",
            Self::InvalidAccessKeyId => "InvalidAccessKeyId.NotFound",
            Self::InvalidAction(_) => "InvalidAction.NotFound",
            Self::UnsupportedHttpMethod(_) => "UnsupportedHTTPMethod",
            Self::Throttling => "Rejected.Throttling",
            Self::ServiceUnavailable => "ServiceUnavailableTemporary",
            Self::ResourceNotFound(_) => "Forbidden.ResourceNotFound",
            Self::ResourceExists(_) => "Rejected.ResourceExist",
            Self::ResourceInUse(_) => "Rejected.ResourceInUse",
        }
    }

    /// The HTTP status that goes with [`Error::code`].
    pub fn http_status(&self) -> u16 {
        match self {
            Self::MissingParameter(_)
            | Self::InvalidParameter { .. }
            | Self::DecryptionFailed
            | Self::AliasAlreadyExists(_)
            | Self::LimitExceeded(_)
            | Self::InvalidKeyMaterial
            | Self::InvalidImportToken
            | Self::ExpiredImportToken
            | Self::UnsupportedOrigin { .. }
            | Self::UnsupportedAlias(_)
            | Self::UnsupportedOperation(_)
            | Self::IncompleteSignature(_)
            | Self::IllegalTimestamp
            | Self::SignatureNonceUsed => 400,
            Self::UnsupportedHttpMethod(_) => 403,
            Self::KeyNotFound(_)
            | Self::AliasNotFound(_)
            | Self::KeyVersionNotFound(_)
            | Self::InvalidAccessKeyId
            | Self::InvalidAction(_) => 404,
            Self::Rejected { .. } => 409,
            Self::Throttling => 429,
            Self::WrongRootKey
            | Self::InvalidRootKey(_)
            | Self::UnsupportedStoreVersion(_)
            | Self::StoreLocked(_)
            | Self::CorruptStore(_)
            | Self::Storage(_)
            | Self::InternalFailure
            | Self::Io { .. }
            | Self::StoreRolledBack(_) => 500,
            Self::ServiceUnavailable => 503,
            Self::ResourceNotFound(_) => 404,
            Self::ResourceExists(_) | Self::ResourceInUse(_) => 409,
        }
    }

    pub(crate) fn invalid(param: &'static str, reason: impl Into<Cow<'static, str>>) -> Self {
        Self::InvalidParameter {
            param,
            reason: reason.into(),
        }
    }

    pub(crate) fn rejected(rejection: Rejection, key_id: &str, state: KeyState) -> Self {
        Self::Rejected {
            rejection,
            key_id: key_id.to_owned(),
            state,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingParameter(p) => write!(f, "The parameter {p} is required."),
            Self::InvalidParameter { param, reason } => {
                write!(f, "The specified parameter {param} is not valid: {reason}.")
            }
            Self::DecryptionFailed => f.write_str(DECRYPTION_FAILED_MESSAGE),
            Self::KeyNotFound(id) => write!(f, "The specified KeyId {id} is not found."),
            Self::AliasNotFound(a) => write!(f, "The specified alias {a} is not found."),
            Self::KeyVersionNotFound(v) => {
                write!(f, "The specified KeyVersionId {v} is not found.")
            }
            Self::AliasAlreadyExists(a) => write!(f, "The specified AliasName {a} already exists."),
            Self::LimitExceeded(what) => write!(f, "The limit on {what} would be exceeded."),
            Self::InvalidKeyMaterial => f.write_str(INVALID_KEY_MATERIAL_MESSAGE),
            Self::InvalidImportToken => f.write_str("The specified parameter ImportToken is not valid."),
            Self::ExpiredImportToken => f.write_str("The specified parameter ImportToken has expired."),
            Self::UnsupportedOrigin { key_id, reason } => {
                write!(f, "The key {key_id} does not support this operation: {reason}.")
            }
            Self::UnsupportedAlias(p) => {
                write!(f, "The parameter {p} does not accept an alias for this operation.")
            }
            Self::UnsupportedOperation(what) => write!(f, "The operation is not supported: {what}."),
            Self::Rejected { key_id, state, .. } => {
                write!(f, "The key {key_id} is {state}, which does not allow this operation.")
            }
            Self::WrongRootKey => f.write_str(
                "The root key does not open this store (wrong root key, or a store from elsewhere).",
            ),
            Self::InvalidRootKey(why) => write!(f, "The root key is not usable: {why}."),
            Self::UnsupportedStoreVersion(v) => write!(
                f,
                "The store has format version {v}, which this library does not know."
            ),
            Self::StoreLocked(why) => write!(f, "The store is held by another process: {why}."),
            Self::CorruptStore(why) => write!(f, "The store is corrupt: {why}."),
            Self::Storage(e) => write!(f, "The keystore failed: {e}."),
            Self::IncompleteSignature(why) => {
                write!(f, "The request signature does not conform to the specification: {why}.")
            }
            Self::IllegalTimestamp => f.write_str(
                "The parameter Timestamp is missing, malformed or more than 15 minutes from the server time.",
            ),
            Self::SignatureNonceUsed => f.write_str("The parameter SignatureNonce has been used."),
            Self::InvalidAccessKeyId => f.write_str("The specified AccessKeyId is not found."),
            Self::InvalidAction(a) => write!(f, "The specified Action {a} is not found."),
            Self::UnsupportedHttpMethod(m) => write!(f, "The HTTP method {m} is not supported."),
            Self::Throttling => f.write_str("The request was throttled; retry later."),
            Self::ServiceUnavailable => f.write_str("The service is temporarily unavailable; retry later."),
            Self::InternalFailure => f.write_str("An internal failure occurred."),
            Self::Io { message, .. } => write!(f, "A stream failed: {message}."),
            Self::ResourceNotFound(what) => write!(f, "The specified resource {what} is not found."),
            Self::ResourceExists(what) => write!(f, "The specified resource {what} already exists."),
            Self::ResourceInUse(why) => write!(f, "The resource is in use: {why}."),
            Self::StoreRolledBack(why) => write!(f, "The store was rolled back: {why}."),
        }
    }
}

impl std::error::Error for Error {}

impl From<crate::types::UnknownValue> for Error {
    fn from(e: crate::types::UnknownValue) -> Self {
        Self::invalid(e.param, e.expected)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Locked(why) => Self::StoreLocked(why),
            StoreError::Corrupt(why) => Self::CorruptStore(why.into()),
            other => Self::Storage(other),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::Io {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failure of the storage backend.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// An I/O failure, with the backend's description.
    Io(String),
    /// Another process holds the store.
    Locked(String),
    /// The backend found its own files damaged.
    Corrupt(String),
    /// Any other backend failure.
    Other(String),
    /// The store's server cannot be reached, or the connection to it was lost
    /// during the operation. The operation may be retried.
    Unavailable(String),
    /// The server refused the operation for lack of privileges or credentials.
    Denied(String),
    /// The store was written in a schema version this build does not read.
    SchemaVersion(String),
    /// The backend does not offer this operation.
    Unsupported(String),
    /// Another writer (in this process or another) changed the store while
    /// this write ran: nothing was applied. The library retries such a write
    /// a bounded number of times; this is returned when every retry lost.
    /// The operation may be retried.
    Conflict(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "I/O error: {e}"),
            Self::Locked(e) => write!(f, "store is locked: {e}"),
            Self::Corrupt(e) => write!(f, "store is corrupt: {e}"),
            Self::Other(e) => f.write_str(e),
            Self::Unavailable(e) => write!(f, "store unavailable: {e}"),
            Self::Denied(e) => write!(f, "store access denied: {e}"),
            Self::SchemaVersion(e) => write!(f, "store schema version: {e}"),
            Self::Unsupported(e) => write!(f, "not supported by this store: {e}"),
            Self::Conflict(e) => write!(f, "write conflict: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// Echoes user input in messages, cut short so a huge input stays readable.
pub(crate) fn shorten(s: &str) -> String {
    match s.char_indices().nth(128) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}
