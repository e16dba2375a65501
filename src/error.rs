//! The one error type, and its mapping to the API's error codes (SPEC section 3).
//!
//! Every variant maps to exactly one wire code and HTTP status in [`Error::code`]
//! and [`Error::http_status`], both one exhaustive match, so a new variant cannot
//! forget its code. Messages name the offending parameter and never carry
//! plaintext, key material or tokens.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::types::KeyState;

/// A failed operation.
///
/// Errors compare by variant and fields; a carried [`Cause`] (the I/O error
/// behind [`Error::Io`]) is reached through [`std::error::Error::source`] and
/// not compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A required parameter is absent or empty. Carries the parameter name.
    #[error("The parameter {0} is required.")]
    MissingParameter(&'static str),
    /// A parameter is malformed or out of range.
    #[error("The specified parameter {param} is not valid: {reason}.")]
    InvalidParameter {
        /// The wire name of the parameter.
        param: &'static str,
        /// Why it was rejected. Never contains secret bytes.
        reason: Cow<'static, str>,
    },
    /// Decryption failed: a tampered or foreign blob, or a wrong
    /// `EncryptionContext`. Deliberately carries no detail (wire code
    /// `InvalidParameter`, one message for every cause).
    #[error("{}", DECRYPTION_FAILED_MESSAGE)]
    DecryptionFailed,
    /// No such key, or it has been deleted.
    #[error("The specified KeyId {0} is not found.")]
    KeyNotFound(String),
    /// No such alias.
    #[error("The specified alias {0} is not found.")]
    AliasNotFound(String),
    /// No such key version.
    #[error("The specified KeyVersionId {0} is not found.")]
    KeyVersionNotFound(String),
    /// CreateAlias with a name that is taken.
    #[error("The specified AliasName {0} already exists.")]
    AliasAlreadyExists(String),
    /// A configured limit would be exceeded. Carries what the limit is on.
    #[error("The limit on {0} would be exceeded.")]
    LimitExceeded(Cow<'static, str>),
    /// Imported material failed to unwrap, has the wrong length or differs from
    /// the key's earlier material. One message for every cause.
    #[error("{}", INVALID_KEY_MATERIAL_MESSAGE)]
    InvalidKeyMaterial,
    /// An import token is malformed, forged or issued for another key.
    #[error("The specified parameter ImportToken is not valid.")]
    InvalidImportToken,
    /// An import token is past its expiry.
    #[error("The specified parameter ImportToken has expired.")]
    ExpiredImportToken,
    /// An operation for one key origin was called on a key of the other.
    #[error("The key {key_id} does not support this operation: {reason}.")]
    UnsupportedOrigin {
        /// The key.
        key_id: String,
        /// What the operation needs, in words.
        reason: &'static str,
    },
    /// An alias was given where only a key id is accepted.
    #[error("The parameter {0} does not accept an alias for this operation.")]
    UnsupportedAlias(&'static str),
    /// A valid request that the library does not support.
    #[error("The operation is not supported: {0}.")]
    UnsupportedOperation(Cow<'static, str>),
    /// The key's state forbids the operation (SPEC section 2).
    #[error("The key {key_id} is {state}, which does not allow this operation.")]
    Rejected {
        /// Which of the four rejection codes applies.
        rejection: Rejection,
        /// The key.
        key_id: String,
        /// The key's state when the operation was refused.
        state: KeyState,
    },
    /// The root key does not open this store.
    #[error("The root key does not open this store (wrong root key, or a store from elsewhere).")]
    WrongRootKey,
    /// The root key given is malformed (not 32 bytes, bad encoding, unreadable).
    #[error("The root key is not usable: {0}.")]
    InvalidRootKey(Cow<'static, str>),
    /// The store was written by an unknown format version.
    #[error("The store has format version {0}, which this library does not know.")]
    UnsupportedStoreVersion(u32),
    /// Another process holds the store.
    #[error("The store is held by another process: {0}.")]
    StoreLocked(String),
    /// A stored record is corrupt or cannot be opened.
    #[error("The store is corrupt: {0}.")]
    CorruptStore(Cow<'static, str>),
    /// The keystore backend failed; the backend's error is the `source()`.
    #[error("The keystore failed: {0}.")]
    Storage(#[source] StoreError),
    /// The request has no signature, or a wrong one.
    #[error("The request signature does not conform to the specification: {0}.")]
    IncompleteSignature(Cow<'static, str>),
    /// The request's timestamp is missing, malformed or outside the window.
    #[error(
        "The parameter Timestamp is missing, malformed or more than 15 minutes from the server time."
    )]
    IllegalTimestamp,
    /// The request's signature nonce was seen before.
    #[error("The parameter SignatureNonce has been used.")]
    SignatureNonceUsed,
    /// The request's access key id is unknown.
    #[error("The specified AccessKeyId is not found.")]
    InvalidAccessKeyId,
    /// The request's `Action` is unknown.
    #[error("The specified Action {0} is not found.")]
    InvalidAction(String),
    /// The HTTP method is not supported.
    #[error("The HTTP method {0} is not supported.")]
    UnsupportedHttpMethod(String),
    /// An injected or real temporary failure: the caller should retry.
    #[error("The request was throttled; retry later.")]
    Throttling,
    /// An injected or real temporary failure: the service is unavailable.
    #[error("The service is temporarily unavailable; retry later.")]
    ServiceUnavailable,
    /// An injected internal failure.
    #[error("An internal failure occurred.")]
    InternalFailure,
    /// Reading or writing a caller's stream or file failed. The I/O error
    /// is the `source()`.
    #[error("A stream failed: {message}.")]
    Io {
        /// The kind of I/O error.
        kind: std::io::ErrorKind,
        /// The I/O error's message.
        message: String,
        /// The I/O error itself (`None` when the library made the error).
        #[source]
        cause: Option<Cause>,
    },
    /// No such secret, secret version or stage (or the secret was deleted):
    /// `Forbidden.ResourceNotFound`. Carries what was looked for.
    #[error("The specified resource {0} is not found.")]
    ResourceNotFound(String),
    /// CreateSecret with a name that is taken, or PutSecretValue with an
    /// existing VersionId and a different value: `Rejected.ResourceExist`.
    #[error("The specified resource {0} already exists.")]
    ResourceExists(String),
    /// The resource's state forbids the operation (a secret pending
    /// deletion, RestoreSecret of a live secret, DisableKey of the secrets
    /// manager's default key): `Rejected.ResourceInUse`. Carries why.
    #[error("The resource is in use: {0}.")]
    ResourceInUse(String),
    /// The store is behind its witness: it lost acknowledged writes, or an
    /// old copy of it was put back (SPEC section 9). Open it with
    /// `KmsBuilder::recover_rolled_back` to accept the loss.
    #[error("The store was rolled back: {0}.")]
    StoreRolledBack(Cow<'static, str>),
    /// A dry run (`DryRun=true`) of a request that would have succeeded:
    /// `DryRunOperationError`. Nothing was written.
    #[error("The request would have succeeded, but DryRun is set: nothing was done.")]
    DryRunOperation,
    /// ScheduleKeyDeletion of a key with deletion protection enabled:
    /// `Rejected.DeletionProtection`. Carries the key id.
    #[error(
        "The key {0} has deletion protection enabled; disable it with SetDeletionProtection first."
    )]
    DeletionProtected(String),
    /// The root key given was retired by a rotation (use the new one), or is
    /// the new key of a rotation that did not complete (use the old one), or
    /// the store was rotated by another process while this one was open
    /// (SPEC section 9). Carries which, and what to do.
    #[error("The root key was rotated: {0}.")]
    RootKeyRotated(Cow<'static, str>),
}

/// The error behind another (an I/O error): shared, so [`Error`] stays
/// `Clone`, and never compared, so errors compare by what they say.
#[derive(Clone)]
pub struct Cause(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl Cause {
    /// The underlying error, to downcast (for example to `std::io::Error`).
    pub fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl PartialEq for Cause {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Cause {}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// The four state-table rejections of SPEC section 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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
            | Self::StoreRolledBack(_)
            | Self::RootKeyRotated(_) => "InternalFailure",
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
            Self::DryRunOperation => "DryRunOperationError",
            Self::DeletionProtected(_) => "Rejected.DeletionProtection",
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
            | Self::StoreRolledBack(_)
            | Self::RootKeyRotated(_) => 500,
            Self::ServiceUnavailable => 503,
            Self::ResourceNotFound(_) => 404,
            Self::ResourceExists(_) | Self::ResourceInUse(_) => 409,
            Self::DryRunOperation => 400,
            Self::DeletionProtected(_) => 409,
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
            StoreError::RootKeyRotated(why) => Self::RootKeyRotated(why.into()),
            other => Self::Storage(other),
        }
    }
}

impl From<std::io::Error> for Error {
    /// An I/O error; one that carries an [`Error`] (as the envelope
    /// adapters' errors do) gives that error back.
    fn from(e: std::io::Error) -> Self {
        if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<Error>()) {
            return inner.clone();
        }
        Self::Io {
            kind: e.kind(),
            message: e.to_string(),
            cause: Some(Cause(Arc::new(e))),
        }
    }
}

impl Error {
    /// An I/O failure the library detected itself.
    pub(crate) fn io(kind: std::io::ErrorKind, message: impl Into<String>) -> Self {
        Self::Io {
            kind,
            message: message.into(),
            cause: None,
        }
    }

    /// True when the same call may succeed if retried later: throttling,
    /// temporary unavailability, a store held by another process, an
    /// internal failure, a backend I/O failure, or an interrupted or
    /// timed-out stream. A retry loop should still cap its attempts.
    ///
    /// ```
    /// use localkms::Error;
    /// assert!(Error::Throttling.is_retryable());
    /// assert!(!Error::DecryptionFailed.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        use std::io::ErrorKind as K;
        match self {
            Self::Throttling
            | Self::ServiceUnavailable
            | Self::StoreLocked(_)
            | Self::InternalFailure => true,
            Self::Storage(e) => matches!(
                e,
                StoreError::Io(_) | StoreError::Locked(_) | StoreError::Unavailable(_)
            ),
            Self::Io { kind, .. } => matches!(
                kind,
                K::Interrupted | K::WouldBlock | K::TimedOut | K::ResourceBusy
            ),
            _ => false,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failure of the storage backend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An I/O failure, with the backend's description.
    #[error("I/O error: {0}")]
    Io(String),
    /// Another process holds the store.
    #[error("store is locked: {0}")]
    Locked(String),
    /// The backend found its own files damaged.
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    /// Any other backend failure.
    #[error("{0}")]
    Other(String),
    /// The store's server cannot be reached, or the connection to it was lost
    /// during the operation. The operation may be retried.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The server refused the operation for lack of privileges or credentials.
    #[error("store access denied: {0}")]
    Denied(String),
    /// The store was written in a schema version this build does not read.
    #[error("store schema version: {0}")]
    SchemaVersion(String),
    /// The backend does not offer this operation.
    #[error("not supported by this store: {0}")]
    Unsupported(String),
    /// Records no longer open under this process's root key because another
    /// process rotated it (SPEC section 9).
    #[error("root key rotated: {0}")]
    RootKeyRotated(String),
    /// Another writer (in this process or another) changed the store while
    /// this write ran: nothing was applied. The library retries such a write
    /// a bounded number of times; this is returned when every retry lost.
    /// The operation may be retried.
    #[error("write conflict: {0}")]
    Conflict(String),
}

/// Echoes user input in messages, cut short so a huge input stays readable.
pub(crate) fn shorten(s: &str) -> String {
    match s.char_indices().nth(128) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}
