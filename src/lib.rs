#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod action_names;
mod audit;
mod cache;
mod clock;
mod crypto;
#[doc(hidden)]
pub use crypto::asym;
pub mod docs;
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
#[cfg(feature = "wire")]
#[cfg_attr(docsrs, doc(cfg(feature = "wire")))]
pub mod wire;

pub use audit::{AuditEvent, AuditSink, JsonLinesAudit, MemoryAudit};
pub use clock::{Clock, ManualClock, SystemClock, format_timestamp, parse_timestamp};
pub use crypto::asym::Algorithm;
pub use crypto::context::{EncryptionContext, MAX_ENCRYPTION_CONTEXT_CHARS};
pub use crypto::envelope::{ENVELOPE_CHUNK_BYTES, EnvelopeReader, EnvelopeWriter};
pub use error::{
    Cause, DECRYPTION_FAILED_MESSAGE, Error, INVALID_KEY_MATERIAL_MESSAGE, Rejection, Result,
};
pub use faults::{Fault, Faults};
pub use kms::WITNESS_FILE;
pub use kms::{
    Config, DEFAULT_ACCOUNT_ID, DEFAULT_REGION_ID, Durability, Kms, KmsBuilder, ROOT_KEY_FILE,
};
pub use ops::account::ACCOUNT_STATUS_ENABLED;
pub use ops::aliases::{AliasEntry, AliasName};
pub use ops::asymmetric::{
    AsymmetricCiphertext, AsymmetricKeyHandle, AsymmetricPlaintext, MAX_SM2_PLAINTEXT_BYTES,
    PublicKeyInfo, Signed, Verified,
};
pub use ops::batch_tags::{
    LIST_TAG_RESOURCES_PAGE, MAX_BATCH_RESOURCES, MAX_BATCH_TAGS, ResourceType, TagResource,
    TagResourcePage,
};
pub use ops::envelope::EnvelopeInfo;
pub use ops::export::{
    ExportAlgorithm, ExportKeySpec, ExportedDataKey, GeneratedExportedDataKey, WrappingPublicKey,
};
pub use ops::handle::{KeyEncrypter, KeyHandle};
pub use ops::import::{IMPORT_TOKEN_LIFETIME_SECONDS, ImportParameters, MAX_LIVE_IMPORT_TOKENS};
pub use ops::keys::{
    CreateKeyRequest, DEFAULT_ROTATION_INTERVAL, MAX_DESCRIPTION_CHARS, MAX_ROTATION_INTERVAL,
    MIN_ROTATION_INTERVAL,
};
pub use ops::mac::{MAX_MAC_MESSAGE_BYTES, Mac, MacVerified};
pub use ops::policy::MAX_KEY_POLICY_BYTES;
pub use ops::reencrypt::ReEncryptResponse;
pub use ops::secrets::{
    BatchSecretError, BatchSecretValues, CreateSecretRequest, CreateSecretResponse,
    DEFAULT_RECOVERY_WINDOW_DAYS, DeleteSecretResponse, GetRandomPasswordRequest,
    GetSecretValueRequest, MAX_BATCH_SECRETS, MAX_SECRET_DATA_BYTES, MAX_SECRET_NAME_CHARS,
    MAX_SECRET_STAGES, MAX_SECRET_VERSIONS, MAX_TAGS_PER_SECRET, PutSecretValueRequest,
    PutSecretValueResponse, RandomPassword, STAGE_CURRENT, STAGE_PENDING, STAGE_PREVIOUS,
    SecretDataType, SecretDeletion, SecretFilter, SecretListEntry, SecretMetadata, SecretQuery,
    SecretTag, SecretType, SecretValue, SecretVersionEntry, parse_secret_filters,
    parse_secret_rotation_interval,
};
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
