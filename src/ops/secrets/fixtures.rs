//! The `Secrets` member of a fixture (`docs/FIXTURES.md`): secrets with
//! chosen names, CMKs, tags, and versions with values and stages, checked
//! whole before anything is written, then created through the ordinary
//! operations (so every value is sealed as usual).

use std::collections::HashSet;

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::{
    CreateSecretRequest, PutSecretValueRequest, SecretDataType, check_data, check_new_name,
    decode_binary,
};
use crate::error::{Error, Result, shorten};
use crate::kms::Kms;
use crate::ops::tags::parse_tags;
use crate::store::record::NS_SECRET;

const SECRET_FIELDS: &[&str] = &[
    "SecretName",
    "Description",
    "EncryptionKeyId",
    "Tags",
    "Versions",
];
const VERSION_FIELDS: &[&str] = &["VersionId", "SecretData", "SecretDataType", "VersionStages"];

fn bad(path: &str, why: impl std::fmt::Display) -> Error {
    Error::invalid("Fixture", format!("{path}: {why}"))
}

fn object<'a>(v: &'a Value, path: &str, allowed: &[&str]) -> Result<&'a Map<String, Value>> {
    let m = v
        .as_object()
        .ok_or_else(|| bad(path, "must be a JSON object"))?;
    if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(bad(
            &format!("{path}.{}", shorten(k)),
            format!("unknown field (expected one of {})", allowed.join(", ")),
        ));
    }
    Ok(m)
}

fn text<'a>(m: &'a Map<String, Value>, k: &str, path: &str) -> Result<Option<&'a str>> {
    match m.get(k) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad(&format!("{path}.{k}"), "must be a string")),
    }
}

struct PlannedVersion {
    id: String,
    data: Zeroizing<Vec<u8>>,
    data_type: SecretDataType,
    stages: Vec<String>,
}

/// A secret of a fixture, checked, ready to create.
pub(crate) struct PlannedSecret {
    create: CreateSecretRequest,
    versions: Vec<PlannedVersion>,
}

/// Checks the `Secrets` member (absent is none).
pub(crate) fn plan(kms: &Kms, secrets: Option<&Value>) -> Result<Vec<PlannedSecret>> {
    let Some(secrets) = secrets else {
        return Ok(Vec::new());
    };
    let items = secrets
        .as_array()
        .ok_or_else(|| bad("Secrets", "must be an array"))?;
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, v) in items.iter().enumerate() {
        let path = format!("Secrets[{i}]");
        let m = object(v, &path, SECRET_FIELDS)?;
        let name = text(m, "SecretName", &path)?
            .ok_or_else(|| bad(&format!("{path}.SecretName"), "is required"))?;
        check_new_name(name).map_err(|e| bad(&format!("{path}.SecretName"), e))?;
        if !seen.insert(name.to_owned()) {
            return Err(bad(
                &format!("{path}.SecretName"),
                "appears twice in the fixture",
            ));
        }
        if kms.store.get(NS_SECRET, name.as_bytes())?.is_some() {
            return Err(bad(&format!("{path}.SecretName"), "exists in the store"));
        }
        let tags = match m.get("Tags") {
            None => Vec::new(),
            Some(t) => parse_tags(&t.to_string()).map_err(|e| bad(&format!("{path}.Tags"), e))?,
        };
        let versions = match m.get("Versions") {
            Some(Value::Array(a)) if !a.is_empty() => a,
            _ => {
                return Err(bad(
                    &format!("{path}.Versions"),
                    "must be a non-empty array",
                ));
            }
        };
        let mut ids = HashSet::new();
        let mut planned = Vec::with_capacity(versions.len());
        for (j, v) in versions.iter().enumerate() {
            let vpath = format!("{path}.Versions[{j}]");
            let vm = object(v, &vpath, VERSION_FIELDS)?;
            let id = text(vm, "VersionId", &vpath)?
                .ok_or_else(|| bad(&format!("{vpath}.VersionId"), "is required"))?;
            super::model::check_version_id(id, "VersionId").map_err(|e| bad(&vpath, e))?;
            if !ids.insert(id.to_owned()) {
                return Err(bad(
                    &format!("{vpath}.VersionId"),
                    "appears twice in the secret",
                ));
            }
            let data_type: SecretDataType = text(vm, "SecretDataType", &vpath)?
                .map(str::parse)
                .transpose()
                .map_err(|e| bad(&vpath, e))?
                .unwrap_or_default();
            let raw = text(vm, "SecretData", &vpath)?
                .ok_or_else(|| bad(&format!("{vpath}.SecretData"), "is required"))?;
            let data = match data_type {
                SecretDataType::Text => Zeroizing::new(raw.as_bytes().to_vec()),
                SecretDataType::Binary => decode_binary(raw).map_err(|e| bad(&vpath, e))?,
            };
            check_data(&data, data_type).map_err(|e| bad(&vpath, e))?;
            let stages: Vec<String> = match vm.get("VersionStages") {
                None => Vec::new(),
                Some(s) => serde_json::from_value(s.clone()).map_err(|_| {
                    bad(
                        &format!("{vpath}.VersionStages"),
                        "must be an array of strings",
                    )
                })?,
            };
            for s in &stages {
                super::model::check_stage(s, "VersionStages").map_err(|e| bad(&vpath, e))?;
            }
            if j == 0 && !(stages.is_empty() || stages == ["ACSCurrent"]) {
                return Err(bad(
                    &format!("{vpath}.VersionStages"),
                    "the first version is ACSCurrent (later versions take other stages)",
                ));
            }
            planned.push(PlannedVersion {
                id: id.to_owned(),
                data,
                data_type,
                stages,
            });
        }
        out.push(PlannedSecret {
            create: CreateSecretRequest {
                version_id: planned.first().map(|v| v.id.clone()),
                secret_data_type: planned.first().map(|v| v.data_type).unwrap_or_default(),
                encryption_key_id: text(m, "EncryptionKeyId", &path)?.map(str::to_owned),
                description: text(m, "Description", &path)?
                    .unwrap_or_default()
                    .to_owned(),
                tags,
                ..CreateSecretRequest::new(name)
            },
            versions: planned,
        });
    }
    Ok(out)
}

/// Creates the planned secrets, in order.
pub(crate) fn load(kms: &Kms, plan: Vec<PlannedSecret>) -> Result<()> {
    for s in plan {
        let mut versions = s.versions.into_iter();
        let Some(first) = versions.next() else {
            continue;
        };
        kms.create_secret(&s.create, &first.data)?;
        for v in versions {
            let req = PutSecretValueRequest {
                version_id: Some(v.id),
                secret_data_type: v.data_type,
                version_stages: v.stages,
            };
            kms.put_secret_value(&s.create.secret_name, &v.data, &req)?;
        }
    }
    Ok(())
}
