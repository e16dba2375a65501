//! The key lifecycle: CreateKey, DescribeKey, ListKeys, UpdateKeyDescription,
//! EnableKey, DisableKey, ScheduleKeyDeletion and CancelKeyDeletion, with the
//! state table of SPEC section 2.

use crate::clock::format_timestamp;
use crate::error::{Error, Rejection, Result};
use crate::kms::Kms;
use crate::ops::asymmetric::{asym_spec, check_spec_usage, service_usage};
use crate::ops::tags::Tag;
use crate::paging::{Page, Paging};
use crate::store::record::{KeyRecord, NS_DELETION, NS_KEY_ORDER, VersionMeta, deletion_id};
use crate::types::{
    KeyListEntry, KeyMetadata, KeySpec, KeyState, KeyUsage, Origin, ProtectionLevel,
};

/// The longest `Description`, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 8192;
/// The shortest automatic rotation interval, in seconds (7 days).
pub const MIN_ROTATION_INTERVAL: u64 = 7 * 86_400;
/// The longest automatic rotation interval, in seconds (730 days).
pub const MAX_ROTATION_INTERVAL: u64 = 730 * 86_400;
/// The rotation interval when automatic rotation is enabled without one (365 days).
pub const DEFAULT_ROTATION_INTERVAL: u64 = 365 * 86_400;

/// The parameters of CreateKey. `Default` is a software-protected
/// `Aliyun_KMS` AES-256 key with no description. Build requests with struct
/// update syntax over `Default`, so new fields do not break callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateKeyRequest {
    /// 0..=8192 characters.
    pub description: String,
    /// `None` takes the spec's default (SPEC section 11, the vendor's rule):
    /// `SIGN/VERIFY` for RSA, EC and SM2 key pairs, `GENERATE/VERIFY MAC`
    /// for HMAC keys, `ENCRYPT/DECRYPT` for `Aliyun_AES_256` and
    /// `Aliyun_SM4`. A usage the spec does not have is `InvalidParameter`.
    pub key_usage: Option<KeyUsage>,
    /// `Aliyun_KMS` (material generated here) or `EXTERNAL` (imported).
    pub origin: Origin,
    /// Recorded and reported; material is always software-protected here.
    pub protection_level: ProtectionLevel,
    /// `Aliyun_AES_256` (the default), `Aliyun_SM4`, `RSA_2048`,
    /// `RSA_3072`, `EC_P256`, `EC_P256K`, `EC_SM2`, or an `HMAC_*` spec.
    /// `EXTERNAL` keys are `Aliyun_AES_256` only.
    pub key_spec: KeySpec,
    /// Rotate automatically every `rotation_interval`. Only symmetric
    /// encryption keys (`Aliyun_AES_256`, `Aliyun_SM4`) rotate: for other
    /// specs it is ignored, as the vendor documents ("valid only when the
    /// key supports automatic rotation").
    pub enable_automatic_rotation: bool,
    /// Seconds between rotations, 7..=730 days; `None` is 365 days.
    pub rotation_interval: Option<u64>,
    /// Tags (SPEC section 6), at most 10 distinct keys, written in the same
    /// batch as the key. Parse the wire form with [`crate::parse_tags`].
    pub tags: Vec<Tag>,
    /// The key policy (a JSON object of at most 32768 bytes), stored and
    /// returned by GetKeyPolicy, not enforced; `None` is the default policy.
    pub policy: Option<String>,
}

impl Default for CreateKeyRequest {
    fn default() -> Self {
        Self {
            description: String::new(),
            key_usage: None,
            origin: Origin::AliyunKms,
            protection_level: ProtectionLevel::Software,
            key_spec: KeySpec::Aes256,
            enable_automatic_rotation: false,
            rotation_interval: None,
            tags: Vec::new(),
            policy: None,
        }
    }
}

impl CreateKeyRequest {
    /// A default request with this description.
    pub fn with_description(description: impl Into<String>) -> Self {
        Self {
            description: description.into(),
            ..Self::default()
        }
    }

    /// A default request for an `EXTERNAL` (BYOK) key.
    pub fn external() -> Self {
        Self {
            origin: Origin::External,
            ..Self::default()
        }
    }
}

/// Checks a `Description` (CreateKey, UpdateKeyDescription).
pub(crate) fn validate_description(d: &str) -> Result<()> {
    if d.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(Error::invalid(
            "Description",
            "must be at most 8192 characters",
        ));
    }
    Ok(())
}

/// Checks a rotation interval in seconds.
pub(crate) fn validate_rotation_interval(seconds: u64) -> Result<()> {
    if !(MIN_ROTATION_INTERVAL..=MAX_ROTATION_INTERVAL).contains(&seconds) {
        return Err(Error::invalid(
            "RotationInterval",
            "must be from 7 to 730 days",
        ));
    }
    Ok(())
}

impl Kms {
    /// Builds the `KeyMetadata` of a record (SPEC section 4).
    pub(crate) fn metadata(&self, r: &KeyRecord) -> KeyMetadata {
        let ts = |t: Option<i64>| t.map(format_timestamp).unwrap_or_default();
        KeyMetadata {
            creation_date: format_timestamp(r.created),
            description: r.description.clone(),
            key_id: r.key_id.clone(),
            key_state: r.state,
            key_usage: r.usage,
            key_spec: r.spec,
            delete_date: ts(r.delete_date),
            creator: self.config.account_id.clone(),
            arn: self.key_arn(&r.key_id),
            origin: r.origin,
            material_expire_time: ts(r.material_expire),
            protection_level: r.protection,
            primary_key_version: r.primary().map(|v| v.id.clone()).unwrap_or_default(),
            automatic_rotation: if r.automatic_rotation {
                "Enabled"
            } else {
                "Disabled"
            }
            .into(),
            rotation_interval: match (r.automatic_rotation, r.rotation_interval) {
                (true, Some(s)) => format!("{s}s"),
                _ => String::new(),
            },
            last_rotation_date: ts(r.last_rotation),
            next_rotation_date: if r.automatic_rotation {
                ts(r.next_rotation)
            } else {
                String::new()
            },
            deletion_protection: if r.deletion_protection.is_some() {
                "Enabled"
            } else {
                "Disabled"
            }
            .into(),
            deletion_protection_description: r.deletion_protection.clone().unwrap_or_default(),
        }
    }

    /// CreateKey: a new key, `Enabled` with its first version, or
    /// `PendingImport` without material for an `EXTERNAL` key.
    ///
    /// # Errors
    /// `InvalidParameter` (Description, RotationInterval), `Unsupported.Origin`
    /// (automatic rotation of an `EXTERNAL` key), `Rejected.LimitExceeded`
    /// (more than 10 tags, or the store key limit), or a storage failure.
    pub fn create_key(&self, req: &CreateKeyRequest) -> Result<KeyMetadata> {
        self.operation("CreateKey", "", || self.create_key_op(req))
    }

    fn create_key_op(&self, req: &CreateKeyRequest) -> Result<KeyMetadata> {
        validate_description(&req.description)?;
        let spec = req.key_spec;
        let usage = req
            .key_usage
            .unwrap_or_else(|| service_usage(asym_spec(spec).default_usage()));
        check_spec_usage(spec, usage)?;
        if req.origin == Origin::External && spec != KeySpec::Aes256 {
            return Err(Error::invalid(
                "Origin",
                format!("EXTERNAL keys must be Aliyun_AES_256, not {spec}"),
            ));
        }
        let rotates =
            req.enable_automatic_rotation && matches!(spec, KeySpec::Aes256 | KeySpec::Sm4);
        if let Some(i) = req.rotation_interval {
            validate_rotation_interval(i)?;
        }
        let key_id = self.new_uuid()?;
        if req.enable_automatic_rotation && req.origin == Origin::External {
            return Err(Error::UnsupportedOrigin {
                key_id,
                reason: "EXTERNAL keys do not rotate",
            });
        }
        crate::ops::tags::check_new_key_tags(&req.tags)?;
        if let Some(p) = &req.policy {
            crate::ops::policy::check_key_policy(p)?;
        }
        if self.config.max_keys.is_some() {
            // Keys past their DeleteDate must not hold slots.
            self.purge_expired()?;
        }
        let now = self.clock.now();
        // Generated before the writer lock: RSA key generation is slow.
        let material = match req.origin {
            Origin::AliyunKms => Some((self.new_uuid()?, self.new_material_for(spec)?)),
            Origin::External => None,
        };
        let interval = req.rotation_interval.unwrap_or(DEFAULT_ROTATION_INTERVAL);
        let record = self.insert_key(|seq, batch| {
            crate::ops::tags::put_new_key_tags(batch, &key_id, &req.tags);
            let versions = match &material {
                Some((version_id, m)) => {
                    self.put_new_material(batch, &key_id, version_id, m)?;
                    vec![VersionMeta {
                        id: version_id.clone(),
                        created: now,
                    }]
                }
                None => Vec::new(),
            };
            Ok(KeyRecord {
                key_id: key_id.clone(),
                seq,
                created: now,
                description: req.description.clone(),
                state: if material.is_some() {
                    KeyState::Enabled
                } else {
                    KeyState::PendingImport
                },
                usage,
                spec,
                origin: req.origin,
                protection: req.protection_level,
                delete_date: None,
                material_expire: None,
                last_rotation: None,
                next_rotation: rotates
                    .then(|| now.saturating_add(i64::try_from(interval).unwrap_or(i64::MAX))),
                versions,
                automatic_rotation: rotates,
                rotation_interval: req.rotation_interval.or(rotates.then_some(interval)),
                material_fingerprint: None,
                material_deleted: false,
                generation: 0,
                deletion_protection: None,
                policy: req.policy.clone(),
            })
        })?;
        Ok(self.metadata(&record))
    }

    /// DescribeKey. `key_id` may be an alias.
    ///
    /// # Errors
    /// `MissingParameter`, `Forbidden.KeyNotFound`, `Forbidden.AliasNotFound`.
    pub fn describe_key(&self, key_id: &str) -> Result<KeyMetadata> {
        self.operation("DescribeKey", key_id, || self.describe_key_op(key_id))
    }

    fn describe_key_op(&self, key_id: &str) -> Result<KeyMetadata> {
        let id = self.resolve_key_id(key_id, "KeyId", true)?;
        Ok(self.metadata(&self.entry(&id)?.record))
    }

    /// ListKeys, in creation order. Keys past their `DeleteDate` are purged
    /// first, so they are never listed.
    ///
    /// # Errors
    /// A storage failure.
    pub fn list_keys(&self, paging: Paging) -> Result<Page<KeyListEntry>> {
        self.operation("ListKeys", "", || self.list_keys_op(paging))
    }

    fn list_keys_op(&self, paging: Paging) -> Result<Page<KeyListEntry>> {
        self.purge_expired()?;
        let total = self.key_count()?;
        let items = paging
            .scan(self.store.as_ref(), NS_KEY_ORDER, b"")?
            .into_iter()
            .map(|(_, id)| {
                let key_id = String::from_utf8(id)
                    .map_err(|_| Error::CorruptStore("key-order entry is not a key id".into()))?;
                Ok(KeyListEntry {
                    key_arn: self.key_arn(&key_id),
                    key_id,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(paging.page(items, total))
    }

    /// UpdateKeyDescription: replaces the description, in any key state.
    ///
    /// # Errors
    /// `MissingParameter` (KeyId, Description), `InvalidParameter`
    /// (Description over 8192 characters), `Unsupported.Alias`,
    /// `Forbidden.KeyNotFound`.
    pub fn update_key_description(&self, key_id: &str, description: &str) -> Result<()> {
        self.operation("UpdateKeyDescription", key_id, || {
            self.update_key_description_op(key_id, description)
        })
    }

    fn update_key_description_op(&self, key_id: &str, description: &str) -> Result<()> {
        if key_id.is_empty() {
            return Err(Error::MissingParameter("KeyId"));
        }
        if description.is_empty() {
            return Err(Error::MissingParameter("Description"));
        }
        validate_description(description)?;
        let id = self.resolve_key_id(key_id, "KeyId", false)?;
        self.update_key(&id, |r, _| {
            r.description = description.to_owned();
            Ok(())
        })?;
        Ok(())
    }

    /// EnableKey: `Enabled` or `Disabled` -> `Enabled`.
    ///
    /// # Errors
    /// `Rejected.StateModifiedFailed` from `PendingDeletion` or `PendingImport`;
    /// `Unsupported.Alias`, `Forbidden.KeyNotFound`.
    pub fn enable_key(&self, key_id: &str) -> Result<()> {
        self.operation("EnableKey", key_id, || self.enable_key_op(key_id))
    }

    fn enable_key_op(&self, key_id: &str) -> Result<()> {
        self.set_enabled(key_id, KeyState::Enabled)
    }

    /// DisableKey: `Enabled` or `Disabled` -> `Disabled`.
    ///
    /// # Errors
    /// As [`Kms::enable_key`]; and `Rejected.ResourceInUse` for the secrets
    /// manager's default key, a service key.
    pub fn disable_key(&self, key_id: &str) -> Result<()> {
        self.operation("DisableKey", key_id, || self.disable_key_op(key_id))
    }

    fn disable_key_op(&self, key_id: &str) -> Result<()> {
        let id = self.resolve_key_id(key_id, "KeyId", false)?;
        crate::ops::secrets::refuse_service_key(self, &id)?;
        self.set_enabled(key_id, KeyState::Disabled)
    }

    fn set_enabled(&self, key_id: &str, to: KeyState) -> Result<()> {
        let id = self.resolve_key_id(key_id, "KeyId", false)?;
        self.update_key(&id, |r, _| match r.state {
            KeyState::Enabled | KeyState::Disabled => {
                r.state = to;
                Ok(())
            }
            s @ (KeyState::PendingDeletion | KeyState::PendingImport) => Err(Error::rejected(
                Rejection::StateModifiedFailed,
                &r.key_id,
                s,
            )),
        })?;
        Ok(())
    }

    /// ScheduleKeyDeletion: `Enabled`, `Disabled` or `PendingImport` ->
    /// `PendingDeletion`, with `DeleteDate` = now + `pending_window_in_days`.
    ///
    /// # Errors
    /// `Rejected.ResourceInUse` for the secrets manager's default key (as
    /// DisableKey), `Rejected.DeletionProtection` while deletion protection
    /// is enabled (see [`Kms::set_deletion_protection`]), `InvalidParameter` (PendingWindowInDays outside 7..=30),
    /// `Rejected.StateModifiedFailed` when already pending deletion,
    /// `Unsupported.Alias`, `Forbidden.KeyNotFound`.
    pub fn schedule_key_deletion(&self, key_id: &str, pending_window_in_days: u32) -> Result<()> {
        self.operation("ScheduleKeyDeletion", key_id, || {
            self.schedule_key_deletion_op(key_id, pending_window_in_days)
        })
    }

    fn schedule_key_deletion_op(&self, key_id: &str, pending_window_in_days: u32) -> Result<()> {
        if !(7..=30).contains(&pending_window_in_days) {
            return Err(Error::invalid(
                "PendingWindowInDays",
                "must be an integer from 7 to 30",
            ));
        }
        let id = self.resolve_key_id(key_id, "KeyId", false)?;
        crate::ops::secrets::refuse_service_key(self, &id)?;
        let now = self.clock.now();
        self.update_key(&id, |r, batch| match r.state {
            KeyState::PendingDeletion => Err(Error::rejected(
                Rejection::StateModifiedFailed,
                &r.key_id,
                r.state,
            )),
            _ if r.deletion_protection.is_some() => Err(Error::DeletionProtected(r.key_id.clone())),
            _ => {
                let date = now.saturating_add(i64::from(pending_window_in_days) * 86_400);
                r.state = KeyState::PendingDeletion;
                r.delete_date = Some(date);
                batch.put(NS_DELETION, deletion_id(date, &r.key_id), Vec::new());
                Ok(())
            }
        })?;
        Ok(())
    }

    /// CancelKeyDeletion: `PendingDeletion` -> `Enabled` (or `PendingImport`
    /// for an `EXTERNAL` key without material), clearing `DeleteDate`.
    ///
    /// # Errors
    /// `Rejected.StateModifiedFailed` unless pending deletion;
    /// `Unsupported.Alias`, `Forbidden.KeyNotFound`.
    pub fn cancel_key_deletion(&self, key_id: &str) -> Result<()> {
        self.operation("CancelKeyDeletion", key_id, || {
            self.cancel_key_deletion_op(key_id)
        })
    }

    fn cancel_key_deletion_op(&self, key_id: &str) -> Result<()> {
        let id = self.resolve_key_id(key_id, "KeyId", false)?;
        self.update_key(&id, |r, batch| match (r.state, r.delete_date) {
            (KeyState::PendingDeletion, Some(date)) => {
                batch.delete(NS_DELETION, deletion_id(date, &r.key_id));
                r.delete_date = None;
                r.state = if r.has_material() {
                    KeyState::Enabled
                } else {
                    KeyState::PendingImport
                };
                Ok(())
            }
            (s, _) => Err(Error::rejected(
                Rejection::StateModifiedFailed,
                &r.key_id,
                s,
            )),
        })?;
        Ok(())
    }
}
