//! The secrets manager (SPEC section 12): CreateSecret, GetSecretValue,
//! BatchGetSecretValue, PutSecretValue, DescribeSecret, ListSecrets,
//! UpdateSecret, DeleteSecret, RestoreSecret, ListSecretVersionIds,
//! UpdateSecretVersionStage, RotateSecret, UpdateSecretRotationPolicy,
//! GetRandomPassword, Get/SetSecretPolicy and tags on secrets.
//!
//! Every value is sealed as an Encrypt blob under the secret's CMK, with the
//! secret name and version id as its EncryptionContext; the secret's
//! metadata (no value) is a JSON record. Two functions, [`Kms::seal_value`]
//! and [`Kms::open_value`], are the only calls into the symmetric
//! operations' internals. The rules of versions and stages are in
//! [`model`]; GetRandomPassword in [`password`].
//!
//! A secret pending deletion is purged when the clock reaches its
//! `PlannedDeleteTime`: lazily on access, and by [`Kms::purge_expired`].

pub(crate) mod fixtures;
pub(crate) mod model;
pub(crate) mod password;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use base64::Engine as _;
use serde_json::Value;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use crate::clock::format_timestamp;
use crate::crypto::blob::{NONCE_LEN, PlaintextKind};
use crate::crypto::context::EncryptionContext;
use crate::error::{Error, Result, shorten};
use crate::kms::Kms;
use crate::ops::symmetric::SecretBytes;
use crate::ops::tags::{Tag, TagKey};
use crate::paging::{Page, Paging};
use crate::store::Batch;
use crate::store::Scan;
use crate::store::record::{
    META_SECRET_COUNTERS, META_SECRETS_DEFAULT_KEY, NS_META, NS_SECRET, NS_SECRET_DELETION,
    NS_SECRET_ORDER, NS_SECRET_VALUE, deletion_id, time_from_bytes,
};
use crate::types::{KeySpec, KeyState, KeyUsage, Origin, ProtectionLevel};
use model::{ACS_CURRENT, SecretRecord, check_stage, check_version_id, not_found};

pub use model::{
    ACS_CURRENT as STAGE_CURRENT, ACS_PENDING as STAGE_PENDING, ACS_PREVIOUS as STAGE_PREVIOUS,
    MAX_SECRET_STAGES, MAX_SECRET_VERSIONS, SecretDataType,
};
pub use password::{GetRandomPasswordRequest, RandomPassword};

/// The largest `SecretData`, in bytes as sent on the wire (for `binary`, its
/// base64 text), as the vendor documents.
pub const MAX_SECRET_DATA_BYTES: usize = 30_720;
/// The longest `SecretName`, in characters.
pub const MAX_SECRET_NAME_CHARS: usize = 192;
/// The most tags one secret may have.
pub const MAX_TAGS_PER_SECRET: usize = 20;
/// The most secrets one BatchGetSecretValue may ask for.
pub const MAX_BATCH_SECRETS: usize = 20;
/// The longest secret policy, in bytes.
pub const MAX_SECRET_POLICY_BYTES: usize = 32_768;
/// The recovery window when DeleteSecret is given none, in days.
pub const DEFAULT_RECOVERY_WINDOW_DAYS: u32 = 30;
/// The description of the secrets manager's default CMK.
pub const DEFAULT_SECRET_KEY_DESCRIPTION: &str = "Default key of the secrets manager (a service key: it cannot be disabled or scheduled for deletion)";

/// Serializes the lazy creation of the default CMK.
static DEFAULT_KEY_LOCK: Mutex<()> = Mutex::new(());

/// The `SecretType` of CreateSecret. Only `Generic` is supported; the
/// managed types are refused with `UnsupportedOperation` naming the type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SecretType {
    /// `Generic` (the default): values you store.
    #[default]
    Generic,
    /// `Rds`: a managed ApsaraDB RDS secret (not supported).
    Rds,
    /// `RAMCredentials`: a managed RAM AccessKey secret (not supported).
    RamCredentials,
    /// `ECS`: a managed ECS secret (not supported).
    Ecs,
    /// `Redis`: a managed Redis/Tair secret (not supported).
    Redis,
    /// `PolarDB`: a managed PolarDB secret (not supported).
    PolarDb,
}

impl SecretType {
    /// The exact wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Generic => "Generic",
            Self::Rds => "Rds",
            Self::RamCredentials => "RAMCredentials",
            Self::Ecs => "ECS",
            Self::Redis => "Redis",
            Self::PolarDb => "PolarDB",
        }
    }

    fn managed_what(self) -> &'static str {
        match self {
            Self::Generic => "generic secrets",
            Self::Rds => "managed ApsaraDB RDS secrets",
            Self::RamCredentials => "managed RAM credential secrets",
            Self::Ecs => "managed ECS secrets",
            Self::Redis => "managed Redis/Tair secrets",
            Self::PolarDb => "managed PolarDB secrets",
        }
    }
}

impl fmt::Display for SecretType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SecretType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "Generic" => Ok(Self::Generic),
            "Rds" | "RDS" => Ok(Self::Rds),
            "RAMCredentials" => Ok(Self::RamCredentials),
            "ECS" => Ok(Self::Ecs),
            "Redis" => Ok(Self::Redis),
            "PolarDB" => Ok(Self::PolarDb),
            _ => Err(Error::invalid(
                "SecretType",
                "must be one of Generic Rds RAMCredentials ECS Redis PolarDB",
            )),
        }
    }
}

/// The parameters of CreateSecret, except the value. Build with
/// [`CreateSecretRequest::new`] and struct update syntax.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateSecretRequest {
    /// 1..=192 letters, digits and `_ / + = . - @`; not starting `acs/`.
    pub secret_name: String,
    /// The first version's id. The wire requires it; on the Rust API `None`
    /// generates a UUID.
    pub version_id: Option<String>,
    /// `text` (default) or `binary`.
    pub secret_data_type: SecretDataType,
    /// The CMK (key id, key ARN or alias); `None` is the default CMK, a
    /// service key created on first need.
    pub encryption_key_id: Option<String>,
    /// 0..=8192 characters.
    pub description: String,
    /// Only `Generic`.
    pub secret_type: SecretType,
    /// At most 20 tags.
    pub tags: Vec<Tag>,
    /// A JSON secret policy, stored and returned, not enforced.
    pub policy: Option<String>,
    /// Refused for `Generic` secrets (the vendor rotates only managed ones).
    pub enable_automatic_rotation: bool,
}

impl CreateSecretRequest {
    /// A `Generic` text secret named `name`, under the default CMK.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            secret_name: name.into(),
            ..Self::default()
        }
    }
}

/// The response of CreateSecret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CreateSecretResponse {
    /// `acs:kms:{region}:{account}:secret/{name}`.
    pub arn: String,
    /// The secret's name.
    pub secret_name: String,
    /// `Generic`.
    pub secret_type: SecretType,
    /// The first version's id.
    pub version_id: String,
    /// The CMK the value is sealed under (resolved to a key id).
    pub encryption_key_id: String,
}

/// Which version GetSecretValue returns: by default the `ACSCurrent` one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GetSecretValueRequest {
    /// A version id.
    pub version_id: Option<String>,
    /// A stage; with `version_id` both must name the same version.
    pub version_stage: Option<String>,
}

impl GetSecretValueRequest {
    /// The version carrying `stage`.
    pub fn stage(stage: impl Into<String>) -> Self {
        Self {
            version_stage: Some(stage.into()),
            ..Self::default()
        }
    }

    /// The version `id`.
    pub fn version(id: impl Into<String>) -> Self {
        Self {
            version_id: Some(id.into()),
            ..Self::default()
        }
    }
}

/// One secret of a BatchGetSecretValue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecretQuery {
    /// The secret's name or ARN.
    pub secret_name: String,
    /// Which version.
    pub version: GetSecretValueRequest,
}

impl SecretQuery {
    /// The current version of `name`.
    pub fn current(name: impl Into<String>) -> Self {
        Self {
            secret_name: name.into(),
            version: GetSecretValueRequest::default(),
        }
    }
}

/// A secret's value, as GetSecretValue returns it. The value prints as
/// `[REDACTED]`.
#[derive(Debug)]
#[non_exhaustive]
pub struct SecretValue {
    /// The secret's name.
    pub secret_name: String,
    /// `Generic`.
    pub secret_type: SecretType,
    /// The value's bytes (for `binary`, the bytes, not base64).
    pub secret_data: SecretBytes,
    /// `text` or `binary`.
    pub secret_data_type: SecretDataType,
    /// The version returned.
    pub version_id: String,
    /// Its stages, sorted.
    pub version_stages: Vec<String>,
    /// When the version was created.
    pub create_time: String,
    /// The CMK the value was sealed under.
    pub encryption_key_id: String,
}

impl SecretValue {
    /// The wire `SecretData`: the text as stored, or base64 for `binary`.
    /// Text that is not UTF-8 can only come from the Rust API; it is
    /// rendered lossily.
    pub fn wire_secret_data(&self) -> Zeroizing<String> {
        let bytes = self.secret_data.expose_secret();
        match self.secret_data_type {
            SecretDataType::Binary => self.secret_data.to_base64(),
            SecretDataType::Text => Zeroizing::new(match std::str::from_utf8(bytes) {
                Ok(t) => t.to_owned(),
                Err(_) => String::from_utf8_lossy(bytes).into_owned(),
            }),
        }
    }
}

/// One failure of a BatchGetSecretValue.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchSecretError {
    /// The secret asked for.
    pub secret_name: String,
    /// The error's wire code.
    pub code: &'static str,
    /// The error's HTTP status.
    pub http_status: u16,
    /// The error's message.
    pub message: String,
}

/// The response of BatchGetSecretValue: the values found, and one error per
/// secret that could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub struct BatchSecretValues {
    /// In the order asked.
    pub secret_values: Vec<SecretValue>,
    /// In the order asked.
    pub errors: Vec<BatchSecretError>,
}

/// The optional parameters of PutSecretValue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PutSecretValueRequest {
    /// The new version's id. The wire requires it; on the Rust API `None`
    /// generates a UUID.
    pub version_id: Option<String>,
    /// `text` (default) or `binary`.
    pub secret_data_type: SecretDataType,
    /// The stages of the new version; empty is `ACSCurrent`.
    pub version_stages: Vec<String>,
}

impl PutSecretValueRequest {
    /// A version with this id, staged `ACSCurrent`.
    pub fn version(id: impl Into<String>) -> Self {
        Self {
            version_id: Some(id.into()),
            ..Self::default()
        }
    }

    /// The same request with these stages.
    pub fn stages<S: Into<String>>(mut self, stages: impl IntoIterator<Item = S>) -> Self {
        self.version_stages = stages.into_iter().map(Into::into).collect();
        self
    }
}

/// The response of PutSecretValue.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PutSecretValueResponse {
    /// The secret's name.
    pub secret_name: String,
    /// The version stored (or found, for a repeated request).
    pub version_id: String,
    /// Its stages, sorted.
    pub version_stages: Vec<String>,
    /// The CMK the value is sealed under.
    pub encryption_key_id: String,
}

/// A tag of a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecretTag {
    /// The tag key.
    pub tag_key: String,
    /// The tag value.
    pub tag_value: String,
}

/// The metadata of a secret (DescribeSecret). Holds no value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecretMetadata {
    /// `acs:kms:{region}:{account}:secret/{name}`.
    pub arn: String,
    /// The name.
    pub secret_name: String,
    /// `Generic`.
    pub secret_type: SecretType,
    /// The description.
    pub description: String,
    /// The CMK that seals its values.
    pub encryption_key_id: String,
    /// When it was created.
    pub create_time: String,
    /// When it last changed.
    pub update_time: String,
    /// When it will be deleted, or `""`.
    pub planned_delete_time: String,
    /// Its tags (only when asked for).
    pub tags: Vec<SecretTag>,
}

/// One entry of ListSecrets.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecretListEntry {
    /// The name.
    pub secret_name: String,
    /// `Generic`.
    pub secret_type: SecretType,
    /// When it was created.
    pub create_time: String,
    /// When it last changed.
    pub update_time: String,
    /// When it will be deleted, or `""`.
    pub planned_delete_time: String,
    /// Its tags (only when asked for).
    pub tags: Vec<SecretTag>,
}

/// One filter of ListSecrets: `Key` is `SecretName`, `Description`,
/// `TagKey`, `TagValue`, `SecretType` or `Creator`; a secret matches when
/// one of `values` does (names and descriptions by substring, the others
/// exactly). Several filters must all match.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecretFilter {
    /// The property.
    pub key: String,
    /// Alternatives.
    pub values: Vec<String>,
}

impl SecretFilter {
    /// A filter.
    pub fn new<S: Into<String>>(
        key: impl Into<String>,
        values: impl IntoIterator<Item = S>,
    ) -> Self {
        Self {
            key: key.into(),
            values: values.into_iter().map(Into::into).collect(),
        }
    }
}

const FILTER_KEYS: &[&str] = &[
    "SecretName",
    "Description",
    "TagKey",
    "TagValue",
    "SecretType",
    "Creator",
    "DKMSInstanceId",
];

/// Parses the `Filters` parameter of ListSecrets: a JSON array of at most 10
/// `{"Key": "..", "Values": [".."]}`.
///
/// # Errors
/// `InvalidParameter` naming `Filters`.
pub fn parse_secret_filters(json: &str) -> Result<Vec<SecretFilter>> {
    const P: &str = "Filters";
    let v: Value =
        serde_json::from_str(json).map_err(|_| Error::invalid(P, "must be a JSON array"))?;
    let Value::Array(items) = v else {
        return Err(Error::invalid(P, "must be a JSON array"));
    };
    if items.len() > 10 {
        return Err(Error::invalid(P, "at most 10 filters"));
    }
    let filters = items
        .into_iter()
        .map(|item| {
            let key = item
                .get("Key")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::invalid(P, "each filter needs a string Key"))?;
            let values = match item.get("Values") {
                Some(Value::Array(vs)) => vs
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| Error::invalid(P, "Values must be strings"))
                    })
                    .collect::<Result<Vec<_>>>()?,
                Some(Value::String(s)) => vec![s.clone()],
                _ => return Err(Error::invalid(P, "each filter needs Values, an array")),
            };
            Ok(SecretFilter::new(key, values))
        })
        .collect::<Result<Vec<_>>>()?;
    check_filters(&filters)?;
    Ok(filters)
}

fn check_filters(filters: &[SecretFilter]) -> Result<()> {
    for f in filters {
        if !FILTER_KEYS.contains(&f.key.as_str()) {
            return Err(Error::invalid(
                "Filters",
                format!(
                    "Key {} is not one of {}",
                    shorten(&f.key),
                    FILTER_KEYS.join(" ")
                ),
            ));
        }
        if f.values.is_empty() || f.values.len() > 10 {
            return Err(Error::invalid("Filters", "each filter has 1 to 10 Values"));
        }
    }
    Ok(())
}

/// How DeleteSecret deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretDeletion {
    /// Schedules deletion after 7..=30 days; RestoreSecret cancels it.
    RecoveryWindow(u32),
    /// `ForceDeleteWithoutRecovery`: gone at once, for good.
    Force,
}

impl Default for SecretDeletion {
    /// A 30-day recovery window.
    fn default() -> Self {
        Self::RecoveryWindow(DEFAULT_RECOVERY_WINDOW_DAYS)
    }
}

/// The response of DeleteSecret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeleteSecretResponse {
    /// The secret's name.
    pub secret_name: String,
    /// When it will be deleted (now, for a forced deletion).
    pub planned_delete_time: String,
}

/// One entry of ListSecretVersionIds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecretVersionEntry {
    /// The version id.
    pub version_id: String,
    /// When it was created.
    pub create_time: String,
    /// Its stages, sorted (empty for a deprecated version).
    pub version_stages: Vec<String>,
}

/// A policy, as an operation's result.
struct Policy(String);

impl crate::kms::instrument::Audited for Policy {}

/// The `EncryptionContext` every value is sealed with.
fn value_context(name: &str, version_id: &str) -> Result<EncryptionContext> {
    EncryptionContext::from_pairs([("SecretName", name), ("VersionId", version_id)])
}

fn value_id(name: &str, version_id: &str) -> Vec<u8> {
    let mut id = Vec::with_capacity(name.len() + 1 + version_id.len());
    id.extend_from_slice(name.as_bytes());
    id.push(0);
    id.extend_from_slice(version_id.as_bytes());
    id
}

fn value_prefix(name: &str) -> Vec<u8> {
    let mut id = name.as_bytes().to_vec();
    id.push(0);
    id
}

fn secret_not_found(name: &str) -> Error {
    Error::ResourceNotFound(format!("secret {}", shorten(name)))
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '/' | '+' | '=' | '.' | '-' | '@')
}

/// Checks a new secret's name.
fn check_new_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::MissingParameter("SecretName"));
    }
    if name.chars().count() > MAX_SECRET_NAME_CHARS || !name.chars().all(name_char) {
        return Err(Error::invalid(
            "SecretName",
            "must have 1 to 192 letters, digits or _ / + = . - @",
        ));
    }
    if name.starts_with("acs/") {
        return Err(Error::invalid(
            "SecretName",
            "may not start with acs/ (reserved for managed secrets)",
        ));
    }
    Ok(())
}

/// The wire length of a value: its bytes, or its base64 for `binary`.
fn check_data(data: &[u8], data_type: SecretDataType) -> Result<()> {
    if data.is_empty() {
        return Err(Error::MissingParameter("SecretData"));
    }
    let wire_len = match data_type {
        SecretDataType::Text => data.len(),
        SecretDataType::Binary => data.len().div_ceil(3).saturating_mul(4),
    };
    if wire_len > MAX_SECRET_DATA_BYTES {
        return Err(Error::invalid(
            "SecretData",
            "must be at most 30720 bytes (for binary, as base64)",
        ));
    }
    Ok(())
}

fn check_tags(tags: &[Tag]) -> Result<BTreeMap<String, String>> {
    let map: BTreeMap<String, String> = tags
        .iter()
        .map(|t| (t.key().as_str().to_owned(), t.value().to_owned()))
        .collect();
    if map.len() > MAX_TAGS_PER_SECRET {
        return Err(Error::LimitExceeded(
            "tags per secret (at most 20; parameter Tags)".into(),
        ));
    }
    Ok(map)
}

fn check_policy(policy: &str) -> Result<()> {
    if policy.len() > MAX_SECRET_POLICY_BYTES {
        return Err(Error::invalid("Policy", "must be at most 32768 bytes"));
    }
    match serde_json::from_str::<Value>(policy) {
        Ok(Value::Object(_)) => Ok(()),
        _ => Err(Error::invalid("Policy", "must be a JSON object")),
    }
}

fn check_policy_name(name: Option<&str>) -> Result<()> {
    match name {
        None | Some("default") => Ok(()),
        Some(_) => Err(Error::invalid("PolicyName", "must be default")),
    }
}

/// Parses a secret rotation interval (`{n}d`, `{n}h`, `{n}m`, `{n}s`,
/// 6 hours to 8760 hours), in seconds.
///
/// # Errors
/// `InvalidParameter` naming `RotationInterval`.
pub fn parse_secret_rotation_interval(s: &str) -> Result<u64> {
    let bad = || {
        Error::invalid(
            "RotationInterval",
            "must be {n}d, {n}h, {n}m or {n}s, from 6 hours to 8760 hours",
        )
    };
    let (digits, unit) = s.split_at(s.len().saturating_sub(1));
    let factor = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return Err(bad()),
    };
    if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let secs = n.checked_mul(factor).ok_or_else(bad)?;
    if !(6 * 3_600..=8_760 * 3_600).contains(&secs) {
        return Err(bad());
    }
    Ok(secs)
}

fn deletion_due(r: &SecretRecord, now: i64) -> bool {
    r.planned_delete.is_some_and(|d| now >= d)
}

/// Refuses an operation on a secret pending deletion.
fn live(r: &SecretRecord) -> Result<()> {
    if r.planned_delete.is_some() {
        return Err(Error::ResourceInUse(format!(
            "secret {} is pending deletion (RestoreSecret cancels it)",
            shorten(&r.name)
        )));
    }
    Ok(())
}

fn tags_of(r: &SecretRecord) -> Vec<SecretTag> {
    r.tags
        .iter()
        .map(|(k, v)| SecretTag {
            tag_key: k.clone(),
            tag_value: v.clone(),
        })
        .collect()
}

fn generic_rotation_error() -> Error {
    Error::UnsupportedOperation(
        "Generic secrets are not rotated by the service (RotateSecret, automatic rotation); store a new version with PutSecretValue".into(),
    )
}

fn unsupported_type(t: SecretType) -> Error {
    Error::UnsupportedOperation(
        format!(
            "SecretType {t}: {} are not supported by localkms; only Generic",
            t.managed_what()
        )
        .into(),
    )
}

/// The default CMK of the secrets manager, if it has been created.
fn default_key_id(kms: &Kms) -> Result<Option<String>> {
    kms.store
        .get(NS_META, META_SECRETS_DEFAULT_KEY)?
        .map(|b| {
            String::from_utf8(b)
                .map_err(|_| Error::CorruptStore("default secret key id is not UTF-8".into()))
        })
        .transpose()
}

/// Refuses DisableKey and ScheduleKeyDeletion of the secrets manager's
/// default CMK (a service key): `Rejected.ResourceInUse`.
pub(crate) fn refuse_service_key(kms: &Kms, key_id: &str) -> Result<()> {
    if default_key_id(kms)?.as_deref() == Some(key_id) {
        return Err(Error::ResourceInUse(format!(
            "key {key_id} is the secrets manager's default key, a service key that cannot be disabled or scheduled for deletion"
        )));
    }
    Ok(())
}

/// Deletes every secret whose `PlannedDeleteTime` has passed; returns how
/// many. Part of [`Kms::purge_expired`].
pub(crate) fn purge_expired_secrets(kms: &Kms) -> Result<usize> {
    let now = kms.clock.now();
    let due = kms.store.scan(NS_SECRET_DELETION, Scan::prefix(b""))?;
    let mut purged = 0;
    for (id, _) in due {
        let Some(date) = time_from_bytes(&id) else {
            continue;
        };
        if date > now {
            break;
        }
        let name = String::from_utf8_lossy(id.get(8..).unwrap_or_default()).into_owned();
        if kms.purge_secret_if_due(&name)? {
            purged += 1;
        } else {
            let w = kms.writer()?;
            let mut b = Batch::new();
            b.delete(NS_SECRET_DELETION, id);
            w.commit(b)?;
        }
    }
    Ok(purged)
}

impl Kms {
    fn secret_arn(&self, name: &str) -> String {
        format!(
            "acs:kms:{}:{}:secret/{name}",
            self.config.region_id, self.config.account_id
        )
    }

    /// A `SecretName` parameter: a name, or an ARN of this region and account.
    fn secret_name<'a>(&self, input: &'a str) -> Result<&'a str> {
        if input.is_empty() {
            return Err(Error::MissingParameter("SecretName"));
        }
        if let Some(rest) = input.strip_prefix("acs:kms:") {
            let prefix = format!(
                "{}:{}:secret/",
                self.config.region_id, self.config.account_id
            );
            return match rest.strip_prefix(&prefix) {
                Some(name) if !name.is_empty() => Ok(name),
                _ => Err(secret_not_found(input)),
            };
        }
        Ok(input)
    }

    // ---- the seam into the symmetric operations ---------------------------

    /// Seals `value` under the CMK `cmk` (a key id), with the secret name and
    /// version id as context.
    fn seal_value(&self, cmk: &str, name: &str, version_id: &str, value: &[u8]) -> Result<Vec<u8>> {
        let entry = self.usable_entry(cmk)?;
        let mut nonce = [0u8; NONCE_LEN];
        self.fill_random(&mut nonce)?;
        let ctx = value_context(name, version_id)?;
        Ok(self
            .seal_with(&entry, PlaintextKind::Text, value, &ctx, &nonce)?
            .blob)
    }

    /// Opens a stored value. The CMK's state applies (`Rejected.Disabled`,
    /// `Forbidden.KeyNotFound` ...); a blob that does not open is corruption.
    fn open_value(&self, name: &str, version_id: &str, blob: Vec<u8>) -> Result<SecretBytes> {
        let ctx = value_context(name, version_id)?;
        match self.decrypt_raw(Zeroizing::new(blob), &ctx, None) {
            Ok(d) => Ok(d.plaintext),
            Err(Error::DecryptionFailed) => Err(Error::CorruptStore(
                format!(
                    "value of secret {} version {} does not open",
                    shorten(name),
                    shorten(version_id)
                )
                .into(),
            )),
            Err(e) => Err(e),
        }
    }

    // ---- reading and writing records --------------------------------------

    /// The record of a secret, purging it first if its deletion is due.
    fn load_secret(&self, name: &str) -> Result<SecretRecord> {
        let bytes = self
            .store
            .get(NS_SECRET, name.as_bytes())?
            .ok_or_else(|| secret_not_found(name))?;
        let record = SecretRecord::decode(&bytes)?;
        if deletion_due(&record, self.clock.now()) {
            self.maintain(|| self.purge_secret_if_due(name))?;
            return Err(secret_not_found(name));
        }
        Ok(record)
    }

    /// Purges `name` if its deletion is due (re-read under the writer lock).
    fn purge_secret_if_due(&self, name: &str) -> Result<bool> {
        let w = self.writer()?;
        let Some(bytes) = self.store.get(NS_SECRET, name.as_bytes())? else {
            return Ok(false);
        };
        let record = SecretRecord::decode(&bytes)?;
        if !deletion_due(&record, self.clock.now()) {
            return Ok(false);
        }
        let mut batch = Batch::new();
        self.purge_batch(&mut batch, &record)?;
        w.commit(batch)?;
        Ok(true)
    }

    /// Adds the deletion of a secret and all its values to `batch`.
    fn purge_batch(&self, batch: &mut Batch, r: &SecretRecord) -> Result<()> {
        batch.delete(NS_SECRET, r.name.as_bytes().to_vec());
        batch.delete(NS_SECRET_ORDER, r.seq.to_be_bytes().to_vec());
        if let Some(d) = r.planned_delete {
            batch.delete(NS_SECRET_DELETION, deletion_id(d, &r.name));
        }
        for (id, _) in self
            .store
            .scan(NS_SECRET_VALUE, Scan::prefix(&value_prefix(&r.name)))?
        {
            batch.delete(NS_SECRET_VALUE, id);
        }
        Ok(())
    }

    /// The one write path for an existing secret: under the writer lock,
    /// reads it (purging it if due), lets `change` edit it and add records,
    /// then commits the record with the batch.
    fn update_secret_record<T>(
        &self,
        name: &str,
        change: impl FnOnce(&mut SecretRecord, &mut Batch) -> Result<T>,
    ) -> Result<T> {
        let w = self.writer()?;
        let bytes = self
            .store
            .get(NS_SECRET, name.as_bytes())?
            .ok_or_else(|| secret_not_found(name))?;
        let mut record = SecretRecord::decode(&bytes)?;
        let now = self.clock.now();
        if deletion_due(&record, now) {
            let mut batch = Batch::new();
            self.purge_batch(&mut batch, &record)?;
            w.commit(batch)?;
            return Err(secret_not_found(name));
        }
        let mut batch = Batch::new();
        let out = change(&mut record, &mut batch)?;
        record.updated = now;
        batch.put(NS_SECRET, name.as_bytes().to_vec(), record.encode()?);
        w.commit(batch)?;
        Ok(out)
    }

    /// The secrets manager's default CMK, created on first need.
    fn default_secret_key(&self) -> Result<String> {
        if let Some(id) = default_key_id(self)? {
            return Ok(id);
        }
        let _guard = DEFAULT_KEY_LOCK
            .lock()
            .map_err(|_| Error::InternalFailure)?;
        if let Some(id) = default_key_id(self)? {
            return Ok(id);
        }
        let key_id = self.new_uuid()?;
        let version_id = self.new_uuid()?;
        let material = self.new_material()?;
        let now = self.clock.now();
        self.insert_key(|seq, batch| {
            self.put_material(batch, &key_id, &version_id, &material)?;
            batch.put(
                NS_META,
                META_SECRETS_DEFAULT_KEY.to_vec(),
                key_id.as_bytes().to_vec(),
            );
            // Through the record's serde form, so fields added to the key
            // record later take their defaults here too.
            serde_json::from_value(serde_json::json!({
                "key_id": key_id,
                "seq": seq,
                "created": now,
                "description": DEFAULT_SECRET_KEY_DESCRIPTION,
                "state": KeyState::Enabled,
                "usage": KeyUsage::EncryptDecrypt,
                "spec": KeySpec::Aes256,
                "origin": Origin::AliyunKms,
                "protection": ProtectionLevel::Software,
                "versions": [{"id": version_id, "created": now}],
            }))
            .map_err(|_| Error::InternalFailure)
        })?;
        Ok(key_id)
    }

    /// The value of one version of `record`.
    fn read_value(
        &self,
        record: &SecretRecord,
        req: &GetSecretValueRequest,
    ) -> Result<SecretValue> {
        let version = match (&req.version_id, &req.version_stage) {
            (Some(id), stage) => {
                check_version_id(id, "VersionId")?;
                let v = record
                    .version(id)
                    .ok_or_else(|| not_found(&record.name, id))?;
                if let Some(s) = stage
                    && !v.has(s)
                {
                    return Err(Error::invalid(
                        "VersionStage",
                        "does not name the version VersionId names",
                    ));
                }
                v
            }
            (None, stage) => {
                let s = stage.as_deref().unwrap_or(ACS_CURRENT);
                check_stage(s, "VersionStage")?;
                record.with_stage(s).ok_or_else(|| {
                    Error::ResourceNotFound(format!(
                        "stage {} of secret {}",
                        shorten(s),
                        shorten(&record.name)
                    ))
                })?
            }
        };
        let blob = self
            .store
            .get(NS_SECRET_VALUE, &value_id(&record.name, &version.id))?
            .ok_or_else(|| {
                Error::CorruptStore(
                    format!("value of secret {} is missing", shorten(&record.name)).into(),
                )
            })?;
        let secret_data = self.open_value(&record.name, &version.id, blob)?;
        Ok(SecretValue {
            secret_name: record.name.clone(),
            secret_type: SecretType::Generic,
            secret_data,
            secret_data_type: version.data_type,
            version_id: version.id.clone(),
            version_stages: version.stages.clone(),
            create_time: format_timestamp(version.created),
            encryption_key_id: record.encryption_key_id.clone(),
        })
    }

    // ---- operations -------------------------------------------------------

    /// CreateSecret: a new secret whose first version holds `secret_data`,
    /// staged `ACSCurrent`, sealed under the request's CMK (or the default
    /// CMK, created on first need).
    ///
    /// ```
    /// use localkms::{CreateSecretRequest, GetSecretValueRequest, Kms};
    /// let kms = Kms::in_memory()?;
    /// kms.create_secret(&CreateSecretRequest::new("db/password"), b"hunter2")?;
    /// let v = kms.get_secret_value("db/password", &GetSecretValueRequest::default())?;
    /// assert_eq!(v.secret_data.expose_secret(), b"hunter2");
    /// assert_eq!(v.version_stages, ["ACSCurrent"]);
    /// # Ok::<(), localkms::Error>(())
    /// ```
    ///
    /// # Errors
    /// `MissingParameter` (SecretName, SecretData), `InvalidParameter`
    /// (SecretName, VersionId, SecretData over 30720 bytes, Description,
    /// Policy), `UnsupportedOperation` (a managed SecretType, automatic
    /// rotation), `Rejected.ResourceExist` (the name is taken, also by a
    /// secret pending deletion), `Rejected.LimitExceeded` (over 20 tags), and
    /// the CMK's errors (`Forbidden.KeyNotFound`, `Rejected.Disabled` ...).
    pub fn create_secret(
        &self,
        req: &CreateSecretRequest,
        secret_data: &[u8],
    ) -> Result<CreateSecretResponse> {
        self.operation("CreateSecret", "", || {
            self.create_secret_op(req, secret_data)
        })
    }

    fn create_secret_op(
        &self,
        req: &CreateSecretRequest,
        secret_data: &[u8],
    ) -> Result<CreateSecretResponse> {
        check_new_name(&req.secret_name)?;
        if req.secret_type != SecretType::Generic {
            return Err(unsupported_type(req.secret_type));
        }
        if req.enable_automatic_rotation {
            return Err(generic_rotation_error());
        }
        check_data(secret_data, req.secret_data_type)?;
        let version_id = match &req.version_id {
            Some(v) => {
                check_version_id(v, "VersionId")?;
                v.clone()
            }
            None => self.new_uuid()?,
        };
        crate::ops::keys::validate_description(&req.description)?;
        if let Some(p) = &req.policy {
            check_policy(p)?;
        }
        let tags = check_tags(&req.tags)?;
        let name = req.secret_name.as_str();
        if self.store.get(NS_SECRET, name.as_bytes())?.is_some() {
            // Purges it first if its deletion is due.
            match self.load_secret(name) {
                Ok(_) => return Err(Error::ResourceExists(format!("secret {name}"))),
                Err(Error::ResourceNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let cmk = match &req.encryption_key_id {
            Some(k) => self.resolve_key_id(k, "EncryptionKeyId", true)?,
            None => self.default_secret_key()?,
        };
        let blob = self.seal_value(&cmk, name, &version_id, secret_data)?;
        let now = self.clock.now();
        let w = self.writer()?;
        if self.store.get(NS_SECRET, name.as_bytes())?.is_some() {
            return Err(Error::ResourceExists(format!("secret {name}")));
        }
        let seq = match self.store.get(NS_META, META_SECRET_COUNTERS)? {
            Some(b) => <[u8; 8]>::try_from(b.as_slice())
                .map(u64::from_be_bytes)
                .map_err(|_| Error::CorruptStore("secret counters have the wrong length".into()))?,
            None => 0,
        };
        let mut record = SecretRecord {
            name: name.to_owned(),
            seq,
            created: now,
            updated: now,
            description: req.description.clone(),
            encryption_key_id: cmk.clone(),
            secret_type: SecretType::Generic.as_str().to_owned(),
            planned_delete: None,
            policy: req.policy.clone(),
            tags,
            versions: Vec::new(),
        };
        record.add_version(&version_id, now, req.secret_data_type, &[])?;
        let mut batch = Batch::new();
        batch.put(NS_SECRET, name.as_bytes().to_vec(), record.encode()?);
        batch.put(
            NS_SECRET_ORDER,
            seq.to_be_bytes().to_vec(),
            name.as_bytes().to_vec(),
        );
        batch.put(NS_SECRET_VALUE, value_id(name, &version_id), blob);
        batch.put(
            NS_META,
            META_SECRET_COUNTERS.to_vec(),
            (seq + 1).to_be_bytes().to_vec(),
        );
        w.commit(batch)?;
        Ok(CreateSecretResponse {
            arn: self.secret_arn(name),
            secret_name: name.to_owned(),
            secret_type: SecretType::Generic,
            version_id,
            encryption_key_id: cmk,
        })
    }

    /// GetSecretValue: the value of the `ACSCurrent` version, or of the
    /// version or stage asked for, opened with the secret's CMK.
    ///
    /// # Errors
    /// `MissingParameter` (SecretName), `Forbidden.ResourceNotFound` (no such
    /// secret, version or stage), `InvalidParameter` (VersionId and
    /// VersionStage name different versions), `Rejected.ResourceInUse` (the
    /// secret is pending deletion), and the CMK's state errors:
    /// `Rejected.Disabled`, `Rejected.PendingDeletion`, `Forbidden.KeyNotFound`.
    pub fn get_secret_value(
        &self,
        secret_name: &str,
        req: &GetSecretValueRequest,
    ) -> Result<SecretValue> {
        self.operation("GetSecretValue", "", || {
            let name = self.secret_name(secret_name)?;
            let record = self.load_secret(name)?;
            live(&record)?;
            self.read_value(&record, req)
        })
    }

    /// BatchGetSecretValue: up to 20 secrets; each one that cannot be read
    /// is an entry of `errors` instead.
    ///
    /// # Errors
    /// `MissingParameter` (SecretsList empty), `InvalidParameter` (more than
    /// 20 secrets, or one twice).
    pub fn batch_get_secret_value(&self, secrets: &[SecretQuery]) -> Result<BatchSecretValues> {
        self.operation("BatchGetSecretValue", "", || {
            if secrets.is_empty() {
                return Err(Error::MissingParameter("SecretsList"));
            }
            if secrets.len() > MAX_BATCH_SECRETS {
                return Err(Error::invalid("SecretsList", "at most 20 secrets"));
            }
            let mut out = BatchSecretValues {
                secret_values: Vec::with_capacity(secrets.len()),
                errors: Vec::new(),
            };
            for q in secrets {
                let one = self.secret_name(&q.secret_name).and_then(|name| {
                    let record = self.load_secret(name)?;
                    live(&record)?;
                    self.read_value(&record, &q.version)
                });
                match one {
                    Ok(v) => out.secret_values.push(v),
                    Err(e) => out.errors.push(BatchSecretError {
                        secret_name: q.secret_name.clone(),
                        code: e.code(),
                        http_status: e.http_status(),
                        message: e.to_string(),
                    }),
                }
            }
            Ok(out)
        })
    }

    /// PutSecretValue: stores `secret_data` as a new version, staged
    /// `ACSCurrent` unless other stages are given; the old `ACSCurrent`
    /// version becomes `ACSPrevious`. The same VersionId with the same value
    /// (and type) again succeeds and changes nothing; with another value it
    /// is `Rejected.ResourceExist`. Beyond ten versions the oldest version
    /// without a stage is deleted.
    ///
    /// # Errors
    /// `MissingParameter` (SecretName, SecretData), `InvalidParameter`
    /// (VersionId, VersionStages, SecretData over 30720 bytes),
    /// `Forbidden.ResourceNotFound`, `Rejected.ResourceExist`,
    /// `Rejected.ResourceInUse` (pending deletion), `Rejected.LimitExceeded`
    /// (more than 8 stages), and the CMK's state errors.
    pub fn put_secret_value(
        &self,
        secret_name: &str,
        secret_data: &[u8],
        req: &PutSecretValueRequest,
    ) -> Result<PutSecretValueResponse> {
        self.operation("PutSecretValue", "", || {
            self.put_secret_value_op(secret_name, secret_data, req)
        })
    }

    fn put_secret_value_op(
        &self,
        secret_name: &str,
        secret_data: &[u8],
        req: &PutSecretValueRequest,
    ) -> Result<PutSecretValueResponse> {
        let name = self.secret_name(secret_name)?;
        check_data(secret_data, req.secret_data_type)?;
        let version_id = match &req.version_id {
            Some(v) => {
                check_version_id(v, "VersionId")?;
                v.clone()
            }
            None => self.new_uuid()?,
        };
        for s in &req.version_stages {
            check_stage(s, "VersionStages")?;
        }
        // Crypto runs outside the writer lock (key lookups may take it);
        // a version that appears meanwhile sends us round again.
        for _ in 0..3 {
            let record = self.load_secret(name)?;
            live(&record)?;
            if record.version(&version_id).is_some() {
                return self.repeated_put(&record, &version_id, secret_data, req);
            }
            let cmk = record.encryption_key_id.clone();
            let blob = self.seal_value(&cmk, name, &version_id, secret_data)?;
            let now = self.clock.now();
            let done = self.update_secret_record(name, |r, batch| {
                live(r)?;
                if r.version(&version_id).is_some() {
                    return Ok(None);
                }
                if r.encryption_key_id != cmk {
                    return Err(Error::InternalFailure);
                }
                let removed =
                    r.add_version(&version_id, now, req.secret_data_type, &req.version_stages)?;
                for old in removed {
                    batch.delete(NS_SECRET_VALUE, value_id(name, &old));
                }
                batch.put(NS_SECRET_VALUE, value_id(name, &version_id), blob);
                Ok(r.version(&version_id).map(|v| v.stages.clone()))
            })?;
            if let Some(version_stages) = done {
                return Ok(PutSecretValueResponse {
                    secret_name: name.to_owned(),
                    version_id,
                    version_stages,
                    encryption_key_id: cmk,
                });
            }
        }
        Err(Error::ServiceUnavailable)
    }

    /// PutSecretValue with a VersionId the secret has: idempotent for the
    /// same value, else `Rejected.ResourceExist`.
    fn repeated_put(
        &self,
        record: &SecretRecord,
        version_id: &str,
        secret_data: &[u8],
        req: &PutSecretValueRequest,
    ) -> Result<PutSecretValueResponse> {
        let stored = self.read_value(record, &GetSecretValueRequest::version(version_id))?;
        let same = stored.secret_data_type == req.secret_data_type
            && bool::from(stored.secret_data.expose_secret().ct_eq(secret_data));
        if !same {
            return Err(Error::ResourceExists(format!(
                "version {} of secret {} (with a different value)",
                shorten(version_id),
                shorten(&record.name)
            )));
        }
        Ok(PutSecretValueResponse {
            secret_name: record.name.clone(),
            version_id: version_id.to_owned(),
            version_stages: stored.version_stages,
            encryption_key_id: record.encryption_key_id.clone(),
        })
    }

    /// DescribeSecret: the metadata of a secret (never its value); its tags
    /// when `fetch_tags`.
    ///
    /// # Errors
    /// `MissingParameter`, `Forbidden.ResourceNotFound`.
    pub fn describe_secret(&self, secret_name: &str, fetch_tags: bool) -> Result<SecretMetadata> {
        self.operation("DescribeSecret", "", || {
            let r = self.load_secret(self.secret_name(secret_name)?)?;
            let ts = |t: Option<i64>| t.map(format_timestamp).unwrap_or_default();
            Ok(SecretMetadata {
                arn: self.secret_arn(&r.name),
                secret_type: SecretType::Generic,
                description: r.description.clone(),
                encryption_key_id: r.encryption_key_id.clone(),
                create_time: format_timestamp(r.created),
                update_time: format_timestamp(r.updated),
                planned_delete_time: ts(r.planned_delete),
                tags: if fetch_tags { tags_of(&r) } else { Vec::new() },
                secret_name: r.name,
            })
        })
    }

    /// ListSecrets: secrets in creation order (those pending deletion too),
    /// those matching every filter, a page at a time.
    ///
    /// # Errors
    /// `InvalidParameter` (Filters, paging).
    pub fn list_secrets(
        &self,
        filters: &[SecretFilter],
        fetch_tags: bool,
        paging: Paging,
    ) -> Result<Page<SecretListEntry>> {
        self.operation("ListSecrets", "", || {
            check_filters(filters)?;
            purge_expired_secrets(self)?;
            let mut items = Vec::new();
            for (_, name) in self.store.scan(NS_SECRET_ORDER, Scan::prefix(b""))? {
                let Some(bytes) = self.store.get(NS_SECRET, &name)? else {
                    continue;
                };
                let r = SecretRecord::decode(&bytes)?;
                if filters.iter().all(|f| self.matches(&r, f)) {
                    items.push(SecretListEntry {
                        secret_type: SecretType::Generic,
                        create_time: format_timestamp(r.created),
                        update_time: format_timestamp(r.updated),
                        planned_delete_time: r
                            .planned_delete
                            .map(format_timestamp)
                            .unwrap_or_default(),
                        tags: if fetch_tags { tags_of(&r) } else { Vec::new() },
                        secret_name: r.name,
                    });
                }
            }
            Ok(paging.slice(items))
        })
    }

    fn matches(&self, r: &SecretRecord, f: &SecretFilter) -> bool {
        let any = |p: &dyn Fn(&str) -> bool| f.values.iter().any(|v| p(v));
        match f.key.as_str() {
            "SecretName" => any(&|v| r.name.contains(v)),
            "Description" => any(&|v| r.description.contains(v)),
            "TagKey" => any(&|v| r.tags.contains_key(v)),
            "TagValue" => any(&|v| r.tags.values().any(|t| t == v)),
            "SecretType" => any(&|v| v.eq_ignore_ascii_case(&r.secret_type)),
            "Creator" => any(&|v| v == self.config.account_id),
            _ => false,
        }
    }

    /// UpdateSecret: replaces the description (`None` leaves it).
    ///
    /// # Errors
    /// `MissingParameter`, `InvalidParameter` (Description),
    /// `Forbidden.ResourceNotFound`, `Rejected.ResourceInUse` (pending deletion).
    pub fn update_secret(&self, secret_name: &str, description: Option<&str>) -> Result<()> {
        self.operation("UpdateSecret", "", || {
            let name = self.secret_name(secret_name)?;
            if let Some(d) = description {
                crate::ops::keys::validate_description(d)?;
            }
            self.update_secret_record(name, |r, _| {
                live(r)?;
                if let Some(d) = description {
                    r.description = d.to_owned();
                }
                Ok(())
            })
        })
    }

    /// DeleteSecret: schedules deletion after a 7..=30 day recovery window
    /// (RestoreSecret cancels it; the clock purges it), or with
    /// [`SecretDeletion::Force`] deletes it at once, for good.
    ///
    /// # Errors
    /// `MissingParameter`, `InvalidParameter` (RecoveryWindowInDays outside
    /// 7..=30), `Forbidden.ResourceNotFound`, `Rejected.ResourceInUse`
    /// (already pending deletion, unless forced).
    pub fn delete_secret(
        &self,
        secret_name: &str,
        how: SecretDeletion,
    ) -> Result<DeleteSecretResponse> {
        self.operation("DeleteSecret", "", || {
            let name = self.secret_name(secret_name)?;
            let now = self.clock.now();
            match how {
                SecretDeletion::RecoveryWindow(days) => {
                    if !(7..=30).contains(&days) {
                        return Err(Error::invalid(
                            "RecoveryWindowInDays",
                            "must be an integer from 7 to 30",
                        ));
                    }
                    let date = now.saturating_add(i64::from(days) * 86_400);
                    self.update_secret_record(name, |r, batch| {
                        live(r)?;
                        r.planned_delete = Some(date);
                        batch.put(NS_SECRET_DELETION, deletion_id(date, name), Vec::new());
                        Ok(())
                    })?;
                    Ok(DeleteSecretResponse {
                        secret_name: name.to_owned(),
                        planned_delete_time: format_timestamp(date),
                    })
                }
                SecretDeletion::Force => {
                    let record = self.load_secret(name)?;
                    let w = self.writer()?;
                    let mut batch = Batch::new();
                    self.purge_batch(&mut batch, &record)?;
                    w.commit(batch)?;
                    Ok(DeleteSecretResponse {
                        secret_name: name.to_owned(),
                        planned_delete_time: format_timestamp(now),
                    })
                }
            }
        })
    }

    /// RestoreSecret: cancels a scheduled deletion.
    ///
    /// # Errors
    /// `MissingParameter`, `Forbidden.ResourceNotFound` (also after the
    /// window), `Rejected.ResourceInUse` (not pending deletion).
    pub fn restore_secret(&self, secret_name: &str) -> Result<()> {
        self.operation("RestoreSecret", "", || {
            let name = self.secret_name(secret_name)?;
            self.update_secret_record(name, |r, batch| match r.planned_delete.take() {
                Some(d) => {
                    batch.delete(NS_SECRET_DELETION, deletion_id(d, name));
                    Ok(())
                }
                None => Err(Error::ResourceInUse(format!(
                    "secret {} is not pending deletion",
                    shorten(name)
                ))),
            })
        })
    }

    /// ListSecretVersionIds: the versions in creation order, those without a
    /// stage only when `include_deprecated`.
    ///
    /// # Errors
    /// `MissingParameter`, `Forbidden.ResourceNotFound`.
    pub fn list_secret_version_ids(
        &self,
        secret_name: &str,
        include_deprecated: bool,
        paging: Paging,
    ) -> Result<Page<SecretVersionEntry>> {
        self.operation("ListSecretVersionIds", "", || {
            let r = self.load_secret(self.secret_name(secret_name)?)?;
            let items = r
                .versions
                .iter()
                .filter(|v| include_deprecated || !v.stages.is_empty())
                .map(|v| SecretVersionEntry {
                    version_id: v.id.clone(),
                    create_time: format_timestamp(v.created),
                    version_stages: v.stages.clone(),
                })
                .collect();
            Ok(paging.slice(items))
        })
    }

    /// UpdateSecretVersionStage: attaches `stage` to `move_to` (taking it
    /// from the version that had it), removes it from `remove_from`, or both.
    /// `ACSCurrent` and `ACSPrevious` can only move; moving `ACSCurrent`
    /// makes its old version `ACSPrevious`.
    ///
    /// # Errors
    /// `MissingParameter` (SecretName, VersionStage), `InvalidParameter`
    /// (neither version given; ACSCurrent/ACSPrevious without MoveToVersion;
    /// RemoveFromVersion not carrying the stage), `Forbidden.ResourceNotFound`
    /// (secret or version), `Rejected.LimitExceeded` (over 8 stages),
    /// `Rejected.ResourceInUse` (pending deletion).
    pub fn update_secret_version_stage(
        &self,
        secret_name: &str,
        version_stage: &str,
        remove_from_version: Option<&str>,
        move_to_version: Option<&str>,
    ) -> Result<()> {
        self.operation("UpdateSecretVersionStage", "", || {
            let name = self.secret_name(secret_name)?;
            check_stage(version_stage, "VersionStage")?;
            self.update_secret_record(name, |r, _| {
                live(r)?;
                r.update_stage(version_stage, remove_from_version, move_to_version)
            })
        })
    }

    /// RotateSecret. The vendor rotates only managed secrets, which are not
    /// supported here: for every (Generic) secret this is
    /// `UnsupportedOperation`, after the checks below.
    ///
    /// # Errors
    /// `MissingParameter` (SecretName, VersionId), `InvalidParameter`
    /// (VersionId), `Forbidden.ResourceNotFound`, `UnsupportedOperation`.
    pub fn rotate_secret(&self, secret_name: &str, version_id: &str) -> Result<()> {
        self.operation("RotateSecret", "", || {
            let name = self.secret_name(secret_name)?;
            check_version_id(version_id, "VersionId")?;
            self.load_secret(name)?;
            Err(generic_rotation_error())
        })
    }

    /// UpdateSecretRotationPolicy: as [`Kms::rotate_secret`], always
    /// `UnsupportedOperation` for a Generic secret, after the checks below.
    ///
    /// # Errors
    /// `InvalidParameter` (RotationInterval outside 6..=8760 hours),
    /// `Forbidden.ResourceNotFound`, `UnsupportedOperation`.
    pub fn update_secret_rotation_policy(
        &self,
        secret_name: &str,
        enable_automatic_rotation: bool,
        rotation_interval: Option<u64>,
    ) -> Result<()> {
        self.operation("UpdateSecretRotationPolicy", "", || {
            let name = self.secret_name(secret_name)?;
            if let Some(s) = rotation_interval
                && !(6 * 3_600..=8_760 * 3_600).contains(&s)
            {
                return Err(Error::invalid(
                    "RotationInterval",
                    "must be from 6 hours to 8760 hours",
                ));
            }
            let _ = enable_automatic_rotation;
            self.load_secret(name)?;
            Err(generic_rotation_error())
        })
    }

    /// GetSecretPolicy: the stored policy, or the default one (the account
    /// may do everything). Policies are not enforced.
    ///
    /// # Errors
    /// `InvalidParameter` (PolicyName other than `default`),
    /// `Forbidden.ResourceNotFound`.
    pub fn get_secret_policy(
        &self,
        secret_name: &str,
        policy_name: Option<&str>,
    ) -> Result<String> {
        self.operation("GetSecretPolicy", "", || {
            check_policy_name(policy_name)?;
            let r = self.load_secret(self.secret_name(secret_name)?)?;
            Ok(Policy(r.policy.unwrap_or_else(|| {
                format!(
                    r#"{{"Version":"1","Statement":[{{"Sid":"kms default secret policy","Effect":"Allow","Principal":{{"RAM":["acs:ram::{}:*"]}},"Action":["kms:*"],"Resource":["*"]}}]}}"#,
                    self.config.account_id
                )
            })))
        })
        .map(|p| p.0)
    }

    /// SetSecretPolicy: stores a JSON policy (at most 32768 bytes); not
    /// enforced.
    ///
    /// # Errors
    /// `MissingParameter` (Policy), `InvalidParameter` (Policy, PolicyName),
    /// `Forbidden.ResourceNotFound`, `Rejected.ResourceInUse` (pending deletion).
    pub fn set_secret_policy(
        &self,
        secret_name: &str,
        policy: &str,
        policy_name: Option<&str>,
    ) -> Result<()> {
        self.operation("SetSecretPolicy", "", || {
            let name = self.secret_name(secret_name)?;
            check_policy_name(policy_name)?;
            if policy.is_empty() {
                return Err(Error::MissingParameter("Policy"));
            }
            check_policy(policy)?;
            self.update_secret_record(name, |r, _| {
                live(r)?;
                r.policy = Some(policy.to_owned());
                Ok(())
            })
        })
    }

    /// Tags a secret (TagResource with `SecretName`): an existing TagKey is
    /// overwritten; at most 20 tags after the merge.
    ///
    /// # Errors
    /// `MissingParameter` (Tags empty), `Rejected.LimitExceeded`,
    /// `Forbidden.ResourceNotFound`.
    pub fn tag_secret(&self, secret_name: &str, tags: &[Tag]) -> Result<()> {
        self.operation("TagResource", "", || {
            let name = self.secret_name(secret_name)?;
            if tags.is_empty() {
                return Err(Error::MissingParameter("Tags"));
            }
            self.update_secret_record(name, |r, _| {
                for t in tags {
                    r.tags
                        .insert(t.key().as_str().to_owned(), t.value().to_owned());
                }
                if r.tags.len() > MAX_TAGS_PER_SECRET {
                    return Err(Error::LimitExceeded(
                        "tags per secret (at most 20; parameter Tags)".into(),
                    ));
                }
                Ok(())
            })
        })
    }

    /// Removes tags from a secret (UntagResource with `SecretName`); absent
    /// keys are ignored.
    ///
    /// # Errors
    /// `MissingParameter` (TagKeys empty), `Forbidden.ResourceNotFound`.
    pub fn untag_secret(&self, secret_name: &str, tag_keys: &[TagKey]) -> Result<()> {
        self.operation("UntagResource", "", || {
            let name = self.secret_name(secret_name)?;
            if tag_keys.is_empty() {
                return Err(Error::MissingParameter("TagKeys"));
            }
            self.update_secret_record(name, |r, _| {
                for k in tag_keys {
                    r.tags.remove(k.as_str());
                }
                Ok(())
            })
        })
    }

    /// GetRandomPassword: a password from this service's random source (the
    /// OS CSPRNG, or the deterministic one under `test-util`).
    ///
    /// # Errors
    /// `InvalidParameter` (PasswordLength outside 8..=128; every character
    /// excluded; more required classes than characters).
    pub fn get_random_password(&self, req: &GetRandomPasswordRequest) -> Result<RandomPassword> {
        self.operation("GetRandomPassword", "", || password::generate(self, req))
    }

    /// The secrets manager's default CMK, if it has been created.
    ///
    /// # Errors
    /// A storage failure.
    pub fn default_secret_key_id(&self) -> Result<Option<String>> {
        default_key_id(self)
    }
}

/// Decodes the wire `SecretData` of a `binary` value (standard base64).
pub(crate) fn decode_binary(data: &str) -> Result<Zeroizing<Vec<u8>>> {
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .map(Zeroizing::new)
        .map_err(|_| Error::invalid("SecretData", "must be base64 when SecretDataType is binary"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_intervals() {
        assert_eq!(parse_secret_rotation_interval("6h"), Ok(21_600));
        assert_eq!(parse_secret_rotation_interval("7d"), Ok(604_800));
        assert_eq!(parse_secret_rotation_interval("365d"), Ok(31_536_000));
        for bad in [
            "5h",
            "366d",
            "",
            "d",
            "7",
            "7w",
            "-7d",
            "99999999999999999d",
        ] {
            assert_eq!(
                parse_secret_rotation_interval(bad).unwrap_err().code(),
                "InvalidParameter",
                "{bad}"
            );
        }
    }

    #[test]
    fn names() {
        assert!(check_new_name("db/prod+x=y.z-w@v_1").is_ok());
        assert!(check_new_name(&"a".repeat(192)).is_ok());
        for bad in ["acs/x", "a b", "é", "a\u{0}b"] {
            assert_eq!(check_new_name(bad).unwrap_err().code(), "InvalidParameter");
        }
        assert_eq!(
            check_new_name(&"a".repeat(193)).unwrap_err().code(),
            "InvalidParameter"
        );
        assert_eq!(check_new_name("").unwrap_err().code(), "MissingParameter");
    }

    #[test]
    fn filters() {
        let f = parse_secret_filters(r#"[{"Key":"SecretName","Values":["a","b"]}]"#).unwrap();
        assert_eq!(f, [SecretFilter::new("SecretName", ["a", "b"])]);
        for bad in [
            "{}",
            "[1]",
            r#"[{"Key":"Nope","Values":["a"]}]"#,
            r#"[{"Key":"SecretName","Values":[]}]"#,
            r#"[{"Key":"SecretName"}]"#,
        ] {
            let e = parse_secret_filters(bad).unwrap_err();
            assert!(e.to_string().contains("Filters"), "{bad}: {e}");
        }
    }
}
