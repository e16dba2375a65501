//! Key versions and rotation (SPEC sections 6 and 8): CreateKeyVersion,
//! DescribeKeyVersion, ListKeyVersions, UpdateRotationPolicy, and automatic
//! rotation driven by the service's clock.
//!
//! Decisions:
//! - Only `Aliyun_KMS` keys have versions added: an `EXTERNAL` key gets
//!   `Unsupported.Origin` from CreateKeyVersion and UpdateRotationPolicy in
//!   every state (origin checks come before state checks).
//! - CreateKeyVersion needs an `Enabled` key, as the current Alibaba Cloud
//!   documentation says; otherwise it answers the crypto row of the state
//!   table (`Rejected.Disabled`, `Rejected.PendingDeletion`).
//! - UpdateRotationPolicy changes a policy, not material: it is allowed in
//!   every state, like tags and UpdateKeyDescription.
//! - Every new version, manual or automatic, becomes primary and sets
//!   `LastRotationDate`; while automatic rotation is on, it also moves
//!   `NextRotationDate` to its creation time plus `RotationInterval`.
//! - Automatic rotation is checked on use (no background thread): when the
//!   clock has reached `NextRotationDate`, the next operation that touches the
//!   key adds ONE version, however many intervals have passed, and the next
//!   date becomes now + `RotationInterval`.
//! - Only `Enabled` keys rotate automatically. A `Disabled` (or
//!   `PendingDeletion`) key keeps its schedule but does not rotate; once it is
//!   enabled again, a date that has passed meanwhile rotates it on its next
//!   use (the cloud service pauses rotation the same way).
//! - A rotation is one atomic batch: the new version's sealed material and
//!   the key record naming it. A failure or crash leaves the key with its old
//!   primary version. If the store refuses an automatic rotation, the
//!   operation that triggered it fails with the storage error
//!   (`InternalFailure`) and the next use tries again.
//! - Versions are never deleted and their number is not limited (the cloud
//!   service counts each against the key quota; there is no quota here).

use serde::Serialize;

use crate::clock::format_timestamp;
use crate::error::shorten;
use crate::error::{Error, Rejection, Result};
use crate::kms::Kms;
use crate::ops::asymmetric::NewMaterial;
use crate::ops::keys::{DEFAULT_ROTATION_INTERVAL, validate_rotation_interval};
use crate::paging::{Page, Paging};
use crate::store::Batch;
use crate::store::record::{KeyRecord, VersionMeta};
use crate::types::{KeySpec, KeyState, Origin};

/// One version of a key (`KeyVersion` of CreateKeyVersion, DescribeKeyVersion
/// and ListKeyVersions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyVersion {
    /// The key.
    pub key_id: String,
    /// The version (a lowercase UUID).
    pub key_version_id: String,
    /// When the version was created, `YYYY-MM-DDThh:mm:ssZ`.
    pub creation_date: String,
}

impl KeyVersion {
    fn new(key_id: &str, v: &VersionMeta) -> Self {
        Self {
            key_id: key_id.to_owned(),
            key_version_id: v.id.clone(),
            creation_date: format_timestamp(v.created),
        }
    }
}

/// Parses a `RotationInterval`: a decimal count and a unit, `{n}d`, `{n}h`,
/// `{n}m` or `{n}s` (days, hours, minutes, seconds), from 7 to 730 days.
/// Returns seconds.
///
/// ```
/// assert_eq!(localkms::parse_rotation_interval("30d")?, 30 * 86_400);
/// assert_eq!(localkms::parse_rotation_interval("604800s")?, 7 * 86_400);
/// assert!(localkms::parse_rotation_interval("6d").is_err());
/// # Ok::<(), localkms::Error>(())
/// ```
///
/// # Errors
/// `InvalidParameter` naming `RotationInterval` for any other text (no unit,
/// an unknown or upper-case unit, a sign, spaces, an overflowing count) or a
/// value outside 7..=730 days.
pub fn parse_rotation_interval(text: &str) -> Result<u64> {
    let bad = || {
        Error::invalid(
            "RotationInterval",
            "must be an integer followed by d, h, m or s, from 7 to 730 days",
        )
    };
    let (count, unit) = match text.char_indices().last() {
        Some((i, c)) => (&text[..i], c),
        None => return Err(bad()),
    };
    let scale: u64 = match unit {
        'd' => 86_400,
        'h' => 3_600,
        'm' => 60,
        's' => 1,
        _ => return Err(bad()),
    };
    if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let seconds = count
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(bad)?;
    validate_rotation_interval(seconds)?;
    Ok(seconds)
}

/// True when automatic rotation of `record` is due at `now`.
pub(crate) fn rotation_due(record: &KeyRecord, now: i64) -> bool {
    record.automatic_rotation
        && record.state == KeyState::Enabled
        && record.origin == Origin::AliyunKms
        && record.has_material()
        && record.next_rotation.is_some_and(|t| now >= t)
}

/// `Unsupported.Origin` for an `EXTERNAL` key (checked before any state).
fn require_generated(r: &KeyRecord) -> Result<()> {
    match r.origin {
        Origin::AliyunKms => Ok(()),
        Origin::External => Err(Error::UnsupportedOrigin {
            key_id: r.key_id.clone(),
            reason: "EXTERNAL keys do not rotate",
        }),
    }
}

/// Seconds as a time offset (intervals are at most 730 days).
fn offset(seconds: u64) -> i64 {
    i64::try_from(seconds).unwrap_or(i64::MAX)
}

impl Kms {
    /// Adds a new version with fresh material to `record` and seals the
    /// material into `batch`; the version becomes primary. The caller puts
    /// the record into the same batch, so both land together or not at all.
    pub(crate) fn add_version(
        &self,
        record: &mut KeyRecord,
        batch: &mut Batch,
        now: i64,
    ) -> Result<VersionMeta> {
        let material = self.new_material_for(record.spec)?;
        self.add_version_with(record, batch, now, &material)
    }

    /// [`Kms::add_version`] with material generated beforehand (outside the
    /// writer lock, for the slow RSA key generation).
    pub(crate) fn add_version_with(
        &self,
        record: &mut KeyRecord,
        batch: &mut Batch,
        now: i64,
        material: &NewMaterial,
    ) -> Result<VersionMeta> {
        let version = VersionMeta {
            id: self.new_uuid()?,
            created: now,
        };
        if record.versions.iter().any(|v| v.id == version.id) {
            // A repeated id (a replayed random stream) must not overwrite.
            return Err(Error::UnsupportedOperation(
                format!(
                    "the new KeyVersionId {} exists already; refused rather than overwritten",
                    version.id
                )
                .into(),
            ));
        }
        self.put_new_material(batch, &record.key_id, &version.id, material)?;
        record.versions.push(version.clone());
        record.last_rotation = Some(now);
        if record.automatic_rotation {
            let interval = record
                .rotation_interval
                .unwrap_or(DEFAULT_ROTATION_INTERVAL);
            record.next_rotation = Some(now.saturating_add(offset(interval)));
        }
        Ok(version)
    }

    /// CreateKeyVersion: a new version with fresh material, which becomes
    /// primary at once (Encrypt and GenerateDataKey use it; every older
    /// version keeps decrypting).
    ///
    /// ```
    /// let kms = localkms::Kms::in_memory()?;
    /// let key = kms.create_key(&Default::default())?;
    /// let v2 = kms.create_key_version(&key.key_id)?;
    /// assert_eq!(kms.describe_key(&key.key_id)?.primary_key_version, v2.key_version_id);
    /// # Ok::<(), localkms::Error>(())
    /// ```
    ///
    /// # Errors
    /// `MissingParameter`, `Unsupported.Alias`, `Forbidden.KeyNotFound`,
    /// `Unsupported.Origin` for an `EXTERNAL` key (in every state),
    /// `Rejected.Disabled` / `Rejected.PendingDeletion` unless the key is
    /// `Enabled`, or a storage failure (the key then keeps its primary).
    pub fn create_key_version(&self, key_id: &str) -> Result<KeyVersion> {
        self.operation("CreateKeyVersion", key_id, || {
            self.create_key_version_op(key_id)
        })
    }

    fn create_key_version_op(&self, key_id: &str) -> Result<KeyVersion> {
        let id = self.resolve_key_id(key_id, "KeyId", false)?;
        let now = self.clock.now();
        // A key's spec never changes: the material (a slow RSA key pair for
        // RSA specs) is made before the writer lock is taken.
        let spec = self.entry(&id)?.record.spec;
        if spec.as_str().starts_with("HMAC_") {
            return Err(Error::UnsupportedOperation(
                "HMAC keys have one version (GenerateMac and VerifyMac name none)".into(),
            ));
        }
        let material = self.new_material_for(spec)?;
        let (record, version) = self.update_key(&id, |r, batch| {
            require_generated(r)?;
            if let Some(rejection) = Rejection::for_use(r.state) {
                return Err(Error::rejected(rejection, &r.key_id, r.state));
            }
            self.add_version_with(r, batch, now, &material)
        })?;
        Ok(KeyVersion::new(&record.key_id, &version))
    }

    /// DescribeKeyVersion, in any key state.
    ///
    /// # Errors
    /// `MissingParameter` (KeyId, KeyVersionId), `Unsupported.Alias`,
    /// `Forbidden.KeyNotFound`, `Forbidden.KeyVersionNotFound`.
    pub fn describe_key_version(&self, key_id: &str, key_version_id: &str) -> Result<KeyVersion> {
        self.operation("DescribeKeyVersion", key_id, || {
            self.describe_key_version_op(key_id, key_version_id)
        })
    }

    fn describe_key_version_op(&self, key_id: &str, key_version_id: &str) -> Result<KeyVersion> {
        if key_id.is_empty() {
            return Err(Error::MissingParameter("KeyId"));
        }
        if key_version_id.is_empty() {
            return Err(Error::MissingParameter("KeyVersionId"));
        }
        let id = self.resolve_key_id(key_id, "KeyId", false)?;
        let entry = self.entry(&id)?;
        let record = &entry.record;
        record
            .versions
            .iter()
            .find(|v| v.id == key_version_id)
            .map(|v| KeyVersion::new(&record.key_id, v))
            .ok_or_else(|| Error::KeyVersionNotFound(shorten(key_version_id)))
    }

    /// ListKeyVersions, in creation order (the last is primary), in any key
    /// state. An `EXTERNAL` key lists nothing until its first import.
    ///
    /// # Errors
    /// `MissingParameter`, `Unsupported.Alias`, `Forbidden.KeyNotFound`.
    pub fn list_key_versions(&self, key_id: &str, paging: Paging) -> Result<Page<KeyVersion>> {
        self.operation("ListKeyVersions", key_id, || {
            self.list_key_versions_op(key_id, paging)
        })
    }

    fn list_key_versions_op(&self, key_id: &str, paging: Paging) -> Result<Page<KeyVersion>> {
        let id = self.resolve_key_id(key_id, "KeyId", false)?;
        let entry = self.entry(&id)?;
        let record = &entry.record;
        let versions = record
            .versions
            .iter()
            .map(|v| KeyVersion::new(&record.key_id, v))
            .collect();
        Ok(paging.slice(versions))
    }

    /// UpdateRotationPolicy: turns automatic rotation on or off. When on,
    /// `rotation_interval` (seconds, 7..=730 days; parse the wire text with
    /// [`parse_rotation_interval`]) replaces the interval, which otherwise
    /// stays as it was (365 days if never set), and `NextRotationDate`
    /// becomes the primary version's creation time plus the interval: a date
    /// already passed rotates the key on its next use. When off,
    /// `NextRotationDate` is cleared (a given interval is kept for later).
    /// Allowed in every key state.
    ///
    /// # Errors
    /// `InvalidParameter` (RotationInterval), `MissingParameter`,
    /// `Unsupported.Alias`, `Forbidden.KeyNotFound`, `Unsupported.Origin`
    /// for an `EXTERNAL` key.
    pub fn update_rotation_policy(
        &self,
        key_id: &str,
        enable_automatic_rotation: bool,
        rotation_interval: Option<u64>,
    ) -> Result<()> {
        self.operation("UpdateRotationPolicy", key_id, || {
            self.update_rotation_policy_op(key_id, enable_automatic_rotation, rotation_interval)
        })
    }

    fn update_rotation_policy_op(
        &self,
        key_id: &str,
        enable_automatic_rotation: bool,
        rotation_interval: Option<u64>,
    ) -> Result<()> {
        if key_id.is_empty() {
            return Err(Error::MissingParameter("KeyId"));
        }
        if let Some(i) = rotation_interval {
            validate_rotation_interval(i)?;
        }
        let id = self.resolve_key_id(key_id, "KeyId", false)?;
        self.update_key(&id, |r, _| {
            require_generated(r)?;
            if enable_automatic_rotation && !matches!(r.spec, KeySpec::Aes256 | KeySpec::Sm4) {
                // "Only symmetric keys support key rotation" (the vendor's
                // UpdateRotationPolicy page).
                return Err(Error::UnsupportedOperation(
                    format!("{} keys do not rotate automatically", r.spec).into(),
                ));
            }
            let interval = rotation_interval.or(r.rotation_interval);
            r.automatic_rotation = enable_automatic_rotation;
            if enable_automatic_rotation {
                let interval = interval.unwrap_or(DEFAULT_ROTATION_INTERVAL);
                let base = r.primary().map_or(r.created, |v| v.created);
                r.rotation_interval = Some(interval);
                r.next_rotation = Some(base.saturating_add(offset(interval)));
            } else {
                r.rotation_interval = interval;
                r.next_rotation = None;
            }
            Ok(())
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_interval_text() {
        let day = 86_400;
        for (text, want) in [
            ("7d", 7 * day),
            ("730d", 730 * day),
            ("168h", 7 * day),
            ("10080m", 7 * day),
            ("604800s", 7 * day),
            ("31536000s", 365 * day),
            ("0030d", 30 * day),
        ] {
            assert_eq!(parse_rotation_interval(text), Ok(want), "{text}");
        }
        for text in [
            "",
            "d",
            "7",
            "6d",
            "731d",
            "604799s",
            "7D",
            "7w",
            "+7d",
            "-7d",
            " 7d",
            "7d ",
            "7.0d",
            "7dd",
            "99999999999999999999d",
            "18446744073709551615d",
            "7é",
            "é",
        ] {
            let e = parse_rotation_interval(text).unwrap_err();
            assert_eq!(e.code(), "InvalidParameter", "{text}");
            assert!(e.to_string().contains("RotationInterval"), "{text}: {e}");
        }
    }
}
