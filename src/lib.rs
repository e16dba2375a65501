#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod action_names;
mod audit;
mod cache;
mod clock;
mod crypto;
mod error;
mod faults;
#[doc(hidden)]
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod kms;
mod ops;
mod paging;
mod rng;
mod secret;
pub mod store;
mod types;
pub mod wire;

pub use audit::{AuditEvent, AuditSink, JsonLinesAudit, MemoryAudit};
pub use clock::{Clock, ManualClock, SystemClock, format_timestamp, parse_timestamp};
pub use crypto::context::{EncryptionContext, MAX_ENCRYPTION_CONTEXT_CHARS};
pub use crypto::envelope::{ENVELOPE_CHUNK_BYTES, EnvelopeReader, EnvelopeWriter};
pub use error::{
    Cause, DECRYPTION_FAILED_MESSAGE, Error, INVALID_KEY_MATERIAL_MESSAGE, Rejection, Result,
};
pub use faults::{Fault, Faults};
pub use kms::{
    Config, DEFAULT_ACCOUNT_ID, DEFAULT_REGION_ID, Durability, Kms, KmsBuilder, ROOT_KEY_FILE,
};
pub use ops::aliases::{AliasEntry, AliasName};
pub use ops::envelope::EnvelopeInfo;
pub use ops::handle::{KeyEncrypter, KeyHandle};
pub use ops::import::{IMPORT_TOKEN_LIFETIME_SECONDS, ImportParameters};
pub use ops::keys::{
    CreateKeyRequest, DEFAULT_ROTATION_INTERVAL, MAX_DESCRIPTION_CHARS, MAX_ROTATION_INTERVAL,
    MIN_ROTATION_INTERVAL,
};
pub use ops::reencrypt::ReEncryptResponse;
#[doc(hidden)]
#[cfg(any(feature = "test-util", feature = "fuzzing"))]
pub use ops::symmetric::internal;
pub use ops::symmetric::{
    CiphertextBlob, DataKey, DataKeySpec, Decrypted, EncryptResponse, GenerateDataKeyRequest,
    MAX_DATA_KEY_BYTES, MAX_PLAINTEXT_BYTES, PlaintextKind, SecretBytes,
};
pub use ops::tags::{MAX_TAGS_PER_KEY, ResourceTag, Tag, TagKey, parse_tag_keys, parse_tags};
pub use ops::versions::{KeyVersion, parse_rotation_interval};
pub use paging::{Page, Paging};
pub use store::seal::RootKey;
pub use types::{KeyListEntry, KeyMetadata, KeySpec, KeyState, KeyUsage, Origin, ProtectionLevel};
pub use types::{UnknownValue, WrappingAlgorithm, WrappingKeySpec};
