//! The stored form of a secret and the rules of its versions and stages,
//! free of I/O so that they can be checked on their own.
//!
//! A secret holds at most [`MAX_SECRET_VERSIONS`] versions in creation order;
//! each carries a set of stages, and a stage names at most one version.
//! `ACSCurrent` is on exactly one version from creation on. Attaching
//! `ACSCurrent` to another version moves `ACSPrevious` to the version that
//! had `ACSCurrent`. A version without stages is "deprecated": it stays
//! readable by its VersionId until it is pruned, oldest first, when a new
//! version would make more than ten.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The stage of the version GetSecretValue returns by default.
pub const ACS_CURRENT: &str = "ACSCurrent";
/// The stage the version that was current gets when another becomes current.
pub const ACS_PREVIOUS: &str = "ACSPrevious";
/// The stage a rotation in progress uses (an ordinary stage here).
pub const ACS_PENDING: &str = "ACSPending";
/// The most versions a secret keeps (the vendor's limit for generic secrets);
/// the oldest version without a stage is deleted beyond it.
pub const MAX_SECRET_VERSIONS: usize = 10;
/// The most distinct stages one secret may carry (the vendor's limit).
pub const MAX_SECRET_STAGES: usize = 8;
/// The longest `VersionId`, in characters.
pub const MAX_VERSION_ID_CHARS: usize = 64;
/// The longest stage name, in characters (our decision: as a VersionId).
pub const MAX_STAGE_CHARS: usize = 64;

/// The `SecretDataType` of a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum SecretDataType {
    /// `text` (the default): SecretData is returned as given.
    #[default]
    #[serde(rename = "text")]
    Text,
    /// `binary`: on the wire SecretData is base64 of the bytes.
    #[serde(rename = "binary")]
    Binary,
}

impl SecretDataType {
    /// The exact wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Binary => "binary",
        }
    }
}

impl fmt::Display for SecretDataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SecretDataType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "text" => Ok(Self::Text),
            "binary" => Ok(Self::Binary),
            _ => Err(Error::invalid("SecretDataType", "must be text or binary")),
        }
    }
}

/// One version of a secret (its value is stored apart, sealed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SecretVersion {
    pub id: String,
    pub created: i64,
    pub data_type: SecretDataType,
    /// Sorted, distinct.
    #[serde(default)]
    pub stages: Vec<String>,
}

impl SecretVersion {
    pub(crate) fn has(&self, stage: &str) -> bool {
        self.stages.iter().any(|s| s == stage)
    }

    fn add(&mut self, stage: &str) {
        if let Err(at) = self.stages.binary_search_by(|s| s.as_str().cmp(stage)) {
            self.stages.insert(at, stage.to_owned());
        }
    }

    fn remove(&mut self, stage: &str) {
        self.stages.retain(|s| s != stage);
    }
}

/// Everything about a secret except its values. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SecretRecord {
    pub name: String,
    /// Position in creation order (`secret-order`).
    pub seq: u64,
    pub created: i64,
    pub updated: i64,
    pub description: String,
    /// The CMK every version is sealed under.
    pub encryption_key_id: String,
    /// Always `Generic` in this round.
    pub secret_type: String,
    #[serde(default)]
    pub planned_delete: Option<i64>,
    #[serde(default)]
    pub policy: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// In creation order.
    #[serde(default)]
    pub versions: Vec<SecretVersion>,
}

/// The secret record format.
const SECRET_RECORD_V1: u8 = 1;

impl SecretRecord {
    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        let mut out = vec![SECRET_RECORD_V1];
        serde_json::to_writer(&mut out, self).map_err(|_| Error::InternalFailure)?;
        Ok(out)
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        match bytes.split_first() {
            Some((&SECRET_RECORD_V1, json)) => serde_json::from_slice(json).map_err(|e| {
                Error::CorruptStore(format!("secret record does not parse: {e}").into())
            }),
            _ => Err(Error::CorruptStore(
                "secret record has an unknown format".into(),
            )),
        }
    }

    pub(crate) fn version(&self, id: &str) -> Option<&SecretVersion> {
        self.versions.iter().find(|v| v.id == id)
    }

    pub(crate) fn with_stage(&self, stage: &str) -> Option<&SecretVersion> {
        self.versions.iter().find(|v| v.has(stage))
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.versions.iter().position(|v| v.id == id)
    }

    /// Attaches `stage` to version `id` (which exists), taking it from any
    /// other version; `ACSCurrent` moving on leaves `ACSPrevious` behind.
    fn attach(&mut self, stage: &str, id: &str) {
        if stage == ACS_CURRENT
            && let Some(old) = self.with_stage(ACS_CURRENT).map(|v| v.id.clone())
            && old != id
        {
            self.versions
                .iter_mut()
                .for_each(|v| v.remove(ACS_PREVIOUS));
            if let Some(i) = self.index(&old) {
                self.versions[i].add(ACS_PREVIOUS);
            }
        }
        self.versions.iter_mut().for_each(|v| v.remove(stage));
        if let Some(i) = self.index(id) {
            self.versions[i].add(stage);
        }
    }

    /// The number of distinct stages.
    pub(crate) fn stage_count(&self) -> usize {
        let mut all: Vec<&str> = self
            .versions
            .iter()
            .flat_map(|v| v.stages.iter().map(String::as_str))
            .collect();
        all.sort_unstable();
        all.dedup();
        all.len()
    }

    fn check_stage_limit(&self) -> Result<()> {
        if self.stage_count() > MAX_SECRET_STAGES {
            return Err(Error::LimitExceeded(
                "version stages per secret (at most 8; parameter VersionStage)".into(),
            ));
        }
        Ok(())
    }

    /// Adds a new version carrying `stages` (ACSCurrent when empty), then
    /// prunes: returns the ids of the versions removed to stay within
    /// [`MAX_SECRET_VERSIONS`] (oldest first, never one with a stage).
    pub(crate) fn add_version(
        &mut self,
        id: &str,
        created: i64,
        data_type: SecretDataType,
        stages: &[String],
    ) -> Result<Vec<String>> {
        self.versions.push(SecretVersion {
            id: id.to_owned(),
            created,
            data_type,
            stages: Vec::new(),
        });
        if stages.is_empty() {
            self.attach(ACS_CURRENT, id);
        }
        for s in stages {
            self.attach(s, id);
        }
        self.check_stage_limit()?;
        let mut removed = Vec::new();
        while self.versions.len() > MAX_SECRET_VERSIONS {
            let Some(i) = self.versions.iter().position(|v| v.stages.is_empty()) else {
                return Err(Error::LimitExceeded(
                    "versions per secret (at most 10, and every version has a stage)".into(),
                ));
            };
            removed.push(self.versions.remove(i).id);
        }
        Ok(removed)
    }

    /// UpdateSecretVersionStage on the record (versions checked here).
    pub(crate) fn update_stage(
        &mut self,
        stage: &str,
        remove_from: Option<&str>,
        move_to: Option<&str>,
    ) -> Result<()> {
        check_stage(stage, "VersionStage")?;
        let reserved = stage == ACS_CURRENT || stage == ACS_PREVIOUS;
        match (remove_from, move_to) {
            (None, None) => {
                return Err(Error::invalid(
                    "MoveToVersion",
                    "give MoveToVersion, RemoveFromVersion or both",
                ));
            }
            (Some(_), None) if reserved => {
                return Err(Error::invalid(
                    "MoveToVersion",
                    "is required for ACSCurrent and ACSPrevious, which can only move",
                ));
            }
            _ => {}
        }
        if let Some(from) = remove_from {
            let v = self
                .version(from)
                .ok_or_else(|| not_found(&self.name, from))?;
            if !v.has(stage) {
                return Err(Error::invalid(
                    "RemoveFromVersion",
                    format!(
                        "version {} does not carry the stage {}",
                        crate::error::shorten(from),
                        crate::error::shorten(stage)
                    ),
                ));
            }
        }
        match move_to {
            Some(to) => {
                if self.version(to).is_none() {
                    return Err(not_found(&self.name, to));
                }
                self.attach(stage, to);
            }
            None => {
                if let Some(i) = remove_from.and_then(|from| self.index(from)) {
                    self.versions[i].remove(stage);
                }
            }
        }
        self.check_stage_limit()
    }
}

/// `Forbidden.ResourceNotFound` for a version of a secret.
pub(crate) fn not_found(secret: &str, version: &str) -> Error {
    Error::ResourceNotFound(format!(
        "version {} of secret {}",
        crate::error::shorten(version),
        crate::error::shorten(secret)
    ))
}

/// Checks a `VersionId`: 1..=64 characters, no control characters.
pub(crate) fn check_version_id(id: &str, param: &'static str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::MissingParameter(param));
    }
    if id.chars().count() > MAX_VERSION_ID_CHARS || id.chars().any(char::is_control) {
        return Err(Error::invalid(
            param,
            "must have 1 to 64 characters and no control characters",
        ));
    }
    Ok(())
}

/// Checks a stage name: 1..=64 characters, no spaces or control characters.
pub(crate) fn check_stage(stage: &str, param: &'static str) -> Result<()> {
    if stage.is_empty() {
        return Err(Error::MissingParameter(param));
    }
    if stage.chars().count() > MAX_STAGE_CHARS
        || stage.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(Error::invalid(
            param,
            "a stage has 1 to 64 characters and no spaces or control characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> SecretRecord {
        let mut r = SecretRecord {
            name: "s".into(),
            seq: 0,
            created: 0,
            updated: 0,
            description: String::new(),
            encryption_key_id: "k".into(),
            secret_type: "Generic".into(),
            planned_delete: None,
            policy: None,
            tags: BTreeMap::new(),
            versions: Vec::new(),
        };
        r.add_version("v1", 0, SecretDataType::Text, &[]).unwrap();
        r
    }

    fn stages(r: &SecretRecord, id: &str) -> Vec<String> {
        r.version(id).unwrap().stages.clone()
    }

    #[test]
    fn current_moves_and_leaves_previous() {
        let mut r = record();
        r.add_version("v2", 1, SecretDataType::Text, &[]).unwrap();
        assert_eq!(stages(&r, "v2"), ["ACSCurrent"]);
        assert_eq!(stages(&r, "v1"), ["ACSPrevious"]);
        r.add_version("v3", 2, SecretDataType::Text, &[]).unwrap();
        assert_eq!(stages(&r, "v1"), Vec::<String>::new());
        assert_eq!(stages(&r, "v2"), ["ACSPrevious"]);
        r.add_version("p", 3, SecretDataType::Text, &["ACSPending".into()])
            .unwrap();
        assert_eq!(stages(&r, "v3"), ["ACSCurrent"]);
        r.update_stage("ACSCurrent", Some("v3"), Some("p")).unwrap();
        assert_eq!(stages(&r, "p"), ["ACSCurrent", "ACSPending"]);
        assert_eq!(stages(&r, "v3"), ["ACSPrevious"]);
        assert_eq!(stages(&r, "v2"), Vec::<String>::new());
    }

    #[test]
    fn pruning_keeps_staged_versions() {
        let mut r = record();
        r.update_stage("keep", None, Some("v1")).unwrap();
        let mut removed = Vec::new();
        for i in 2..=12 {
            removed.extend(
                r.add_version(&format!("v{i}"), i, SecretDataType::Text, &[])
                    .unwrap(),
            );
        }
        assert_eq!(r.versions.len(), MAX_SECRET_VERSIONS);
        assert!(r.version("v1").is_some(), "a staged version is kept");
        assert_eq!(removed, ["v2", "v3"]);
    }

    #[test]
    fn stage_rules() {
        let mut r = record();
        assert_eq!(
            r.update_stage("ACSCurrent", Some("v1"), None)
                .unwrap_err()
                .code(),
            "InvalidParameter"
        );
        assert_eq!(
            r.update_stage("x", None, None).unwrap_err().code(),
            "InvalidParameter"
        );
        assert_eq!(
            r.update_stage("x", Some("v1"), None).unwrap_err().code(),
            "InvalidParameter"
        );
        assert_eq!(
            r.update_stage("x", None, Some("nope")).unwrap_err().code(),
            "Forbidden.ResourceNotFound"
        );
        for i in 0..7 {
            r.update_stage(&format!("s{i}"), None, Some("v1")).unwrap();
        }
        assert_eq!(r.stage_count(), 8);
        assert_eq!(
            r.update_stage("s9", None, Some("v1")).unwrap_err().code(),
            "Rejected.LimitExceeded"
        );
        r.update_stage("s0", Some("v1"), None).unwrap();
        assert!(!r.version("v1").unwrap().has("s0"));
    }
}
