#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod alias;
#[doc(hidden)]
pub mod asym;
mod blob;
mod cache;
mod clock;
mod context;
mod crypto;
mod envelope;
mod error;
#[doc(hidden)]
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod import;
mod import_token;
pub mod keystore;
mod kms;
mod lifecycle;
mod paging;
mod record;
mod reencrypt;
mod regions;
mod rotation;
mod seal;
mod secret;
mod tags;
mod testkit;
mod types;
pub mod wire;

pub use alias::{AliasEntry, AliasName};
pub use clock::{Clock, ManualClock, SystemClock, format_timestamp, parse_timestamp};
pub use context::{EncryptionContext, MAX_ENCRYPTION_CONTEXT_CHARS};
#[doc(hidden)]
pub use crypto::internal;
pub use crypto::{
    DataKey, DataKeySpec, Decrypted, EncryptResponse, GenerateDataKeyRequest, MAX_DATA_KEY_BYTES,
    MAX_PLAINTEXT_BYTES, PlaintextKind, SecretBytes,
};
pub use envelope::{ENVELOPE_CHUNK_BYTES, EnvelopeInfo};
pub use error::{
    DECRYPTION_FAILED_MESSAGE, Error, INVALID_KEY_MATERIAL_MESSAGE, Rejection, Result,
};
pub use import::{IMPORT_TOKEN_LIFETIME_SECONDS, ImportParameters};
pub use kms::{
    Config, DEFAULT_ACCOUNT_ID, DEFAULT_REGION_ID, Durability, Kms, KmsBuilder, ROOT_KEY_FILE,
};
pub use lifecycle::{
    CreateKeyRequest, DEFAULT_ROTATION_INTERVAL, MAX_DESCRIPTION_CHARS, MAX_ROTATION_INTERVAL,
    MIN_ROTATION_INTERVAL,
};
pub use paging::{Page, Paging};
pub use reencrypt::ReEncryptResponse;
pub use rotation::{KeyVersion, parse_rotation_interval};
pub use seal::RootKey;
pub use tags::{MAX_TAGS_PER_KEY, ResourceTag, Tag, TagKey, parse_tag_keys, parse_tags};
pub use testkit::{AuditEvent, AuditSink, Fault, Faults, JsonLinesAudit, MemoryAudit};
pub use types::{KeyListEntry, KeyMetadata, KeySpec, KeyState, KeyUsage, Origin, ProtectionLevel};
pub use types::{WrappingAlgorithm, WrappingKeySpec};
