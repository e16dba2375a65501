//! The secrets manager's actions (SPEC section 12): parse the parameters,
//! call the library, lay out the response members as the official SDKs
//! parse them.
//!
//! On the wire `VersionId` is required by CreateSecret, PutSecretValue and
//! RotateSecret, as the vendor requires it; only the Rust API generates one.

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::Fields;
use super::params::Params;
use crate::error::{Error, Result};
use crate::kms::Kms;
use crate::ops::secrets::{
    CreateSecretRequest, GetRandomPasswordRequest, GetSecretValueRequest, PutSecretValueRequest,
    SecretDataType, SecretDeletion, SecretQuery, SecretTag, SecretValue, decode_binary,
    parse_secret_filters, parse_secret_rotation_interval,
};
use crate::ops::tags::{Tag, parse_tag_keys, parse_tags};
use crate::paging::{Page, Paging};

fn s(v: impl Into<String>) -> Value {
    Value::String(v.into())
}

/// Moves a secret string into a member; `super::success` clears it after
/// writing the body.
fn secret(mut v: Zeroizing<String>) -> Value {
    Value::String(std::mem::take(&mut *v))
}

fn fields<const N: usize>(members: [(&str, Value); N]) -> Fields {
    members
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

/// `{"VersionStage": [..]}`.
fn stages(stages: &[String]) -> Value {
    let list = stages.iter().map(|x| s(x.clone())).collect();
    Value::Object(fields([("VersionStage", Value::Array(list))]))
}

/// `{"Tag": [{"TagKey", "TagValue"}]}`.
fn tags(tags: &[SecretTag]) -> Value {
    let list = tags
        .iter()
        .map(|t| {
            Value::Object(fields([
                ("TagKey", s(t.tag_key.clone())),
                ("TagValue", s(t.tag_value.clone())),
            ]))
        })
        .collect();
    Value::Object(fields([("Tag", Value::Array(list))]))
}

fn paged(mut f: Fields, page: &Page<impl Sized>) -> Fields {
    f.insert("TotalCount".into(), page.total_count.into());
    f.insert("PageNumber".into(), page.page_number.into());
    f.insert("PageSize".into(), page.page_size.into());
    f
}

/// `SecretData` as bytes: the text, or the base64 decoded for `binary`.
fn data(p: &Params<'_>, data_type: SecretDataType) -> Result<Zeroizing<Vec<u8>>> {
    let raw = p.required("SecretData")?;
    match data_type {
        SecretDataType::Text => Ok(Zeroizing::new(raw.as_bytes().to_vec())),
        SecretDataType::Binary => {
            if raw.len() > crate::ops::secrets::MAX_SECRET_DATA_BYTES {
                return Err(Error::invalid(
                    "SecretData",
                    "must be at most 30720 bytes (for binary, as base64)",
                ));
            }
            decode_binary(raw)
        }
    }
}

/// The `Tags` of CreateSecret: `[{"TagKey","TagValue"}]`, or the
/// `[{"Key","Value"}]` form of TagResources.
fn secret_tags(json: &str) -> Result<Vec<Tag>> {
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(json) else {
        return parse_tags(json);
    };
    let items: Vec<Value> = items
        .into_iter()
        .map(|item| match item {
            Value::Object(mut o) if !o.contains_key("TagKey") && o.contains_key("Key") => {
                let mut m = Map::new();
                if let Some(k) = o.remove("Key") {
                    m.insert("TagKey".into(), k);
                }
                if let Some(v) = o.remove("Value") {
                    m.insert("TagValue".into(), v);
                }
                Value::Object(m)
            }
            other => other,
        })
        .collect();
    parse_tags(&Value::Array(items).to_string())
}

/// `VersionStages`: a JSON array of strings, or one stage.
fn version_stages(p: &Params<'_>) -> Result<Vec<String>> {
    let Some(raw) = p.optional("VersionStages") else {
        return Ok(Vec::new());
    };
    if !raw.trim_start().starts_with('[') {
        return Ok(vec![raw.to_owned()]);
    }
    serde_json::from_str::<Vec<String>>(raw)
        .map_err(|_| Error::invalid("VersionStages", "must be a JSON array of strings"))
}

fn value_fields(v: &SecretValue) -> Fields {
    fields([
        ("SecretName", s(v.secret_name.clone())),
        ("SecretType", s(v.secret_type.as_str())),
        ("SecretData", secret(v.wire_secret_data())),
        ("SecretDataType", s(v.secret_data_type.as_str())),
        ("VersionId", s(v.version_id.clone())),
        ("VersionStages", stages(&v.version_stages)),
        ("CreateTime", s(v.create_time.clone())),
    ])
}

pub(super) fn create_secret(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let name = p.required("SecretName")?;
    let version_id = p.required("VersionId")?;
    let data_type = p.parse("SecretDataType")?.unwrap_or_default();
    let value = data(p, data_type)?;
    if let Some(i) = p.optional("RotationInterval") {
        parse_secret_rotation_interval(i)?;
    }
    let req = CreateSecretRequest {
        version_id: Some(version_id.to_owned()),
        secret_data_type: data_type,
        encryption_key_id: p.optional("EncryptionKeyId").map(str::to_owned),
        description: p.optional("Description").unwrap_or_default().to_owned(),
        secret_type: p.parse("SecretType")?.unwrap_or_default(),
        tags: p
            .optional("Tags")
            .map(secret_tags)
            .transpose()?
            .unwrap_or_default(),
        policy: p.optional("Policy").map(str::to_owned),
        enable_automatic_rotation: p.bool("EnableAutomaticRotation")?.unwrap_or(false),
        ..CreateSecretRequest::new(name)
    };
    let r = kms.create_secret(&req, &value)?;
    Ok(fields([
        ("Arn", s(r.arn)),
        ("SecretName", s(r.secret_name)),
        ("SecretType", s(r.secret_type.as_str())),
        ("VersionId", s(r.version_id)),
    ]))
}

fn version_request(p: &Params<'_>) -> Result<GetSecretValueRequest> {
    p.bool("FetchExtendedConfig")?;
    Ok(GetSecretValueRequest {
        version_id: p.optional("VersionId").map(str::to_owned),
        version_stage: p.optional("VersionStage").map(str::to_owned),
    })
}

pub(super) fn get_secret_value(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let name = p.required("SecretName")?;
    let v = kms.get_secret_value(name, &version_request(p)?)?;
    Ok(value_fields(&v))
}

pub(super) fn batch_get_secret_value(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    const P: &str = "SecretsList";
    let raw = p.required(P)?;
    let items: Vec<Value> = serde_json::from_str(raw)
        .map_err(|_| Error::invalid(P, "must be a JSON array of objects"))?;
    let text = |o: &Value, k: &str| -> Result<Option<String>> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(v)) if v.is_empty() => Ok(None),
            Some(Value::String(v)) => Ok(Some(v.clone())),
            Some(_) => Err(Error::invalid(P, format!("{k} must be a string"))),
        }
    };
    let queries = items
        .iter()
        .map(|o| {
            if !o.is_object() {
                return Err(Error::invalid(P, "must be a JSON array of objects"));
            }
            Ok(SecretQuery {
                secret_name: text(o, "SecretName")?
                    .ok_or_else(|| Error::invalid(P, "each entry needs a SecretName"))?,
                version: GetSecretValueRequest {
                    version_id: text(o, "VersionId")?,
                    version_stage: text(o, "VersionStage")?,
                },
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let out = kms.batch_get_secret_value(&queries)?;
    let values = out
        .secret_values
        .iter()
        .map(|v| Value::Object(value_fields(v)))
        .collect();
    let errors = out
        .errors
        .into_iter()
        .map(|e| {
            Value::Object(fields([
                ("SecretName", s(e.secret_name)),
                ("Code", s(e.code)),
                ("HttpStatus", s(e.http_status.to_string())),
                ("Message", s(e.message)),
            ]))
        })
        .collect();
    Ok(fields([
        ("SecretValues", Value::Array(values)),
        ("Errors", Value::Array(errors)),
    ]))
}

pub(super) fn put_secret_value(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let name = p.required("SecretName")?;
    let version_id = p.required("VersionId")?;
    let data_type = p.parse("SecretDataType")?.unwrap_or_default();
    let value = data(p, data_type)?;
    let req = PutSecretValueRequest {
        version_id: Some(version_id.to_owned()),
        secret_data_type: data_type,
        version_stages: version_stages(p)?,
    };
    let r = kms.put_secret_value(name, &value, &req)?;
    Ok(fields([
        ("SecretName", s(r.secret_name)),
        ("VersionId", s(r.version_id)),
        ("VersionStages", stages(&r.version_stages)),
    ]))
}

pub(super) fn describe_secret(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let name = p.required("SecretName")?;
    let fetch = p.bool("FetchTags")?.unwrap_or(false);
    let m = kms.describe_secret(name, fetch)?;
    let mut f = fields([
        ("Arn", s(m.arn)),
        ("SecretName", s(m.secret_name)),
        ("SecretType", s(m.secret_type.as_str())),
        ("Description", s(m.description)),
        ("EncryptionKeyId", s(m.encryption_key_id)),
        ("CreateTime", s(m.create_time)),
        ("UpdateTime", s(m.update_time)),
        ("PlannedDeleteTime", s(m.planned_delete_time)),
    ]);
    if fetch {
        f.insert("Tags".into(), tags(&m.tags));
    }
    Ok(f)
}

pub(super) fn list_secrets(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let filters = p
        .optional("Filters")
        .map(parse_secret_filters)
        .transpose()?
        .unwrap_or_default();
    let fetch = p.bool("FetchTags")?.unwrap_or(false);
    let page = kms.list_secrets(&filters, fetch, p.paging()?)?;
    let list = page
        .items
        .iter()
        .map(|e| {
            let mut f = fields([
                ("SecretName", s(e.secret_name.clone())),
                ("SecretType", s(e.secret_type.as_str())),
                ("CreateTime", s(e.create_time.clone())),
                ("UpdateTime", s(e.update_time.clone())),
                ("PlannedDeleteTime", s(e.planned_delete_time.clone())),
            ]);
            if fetch {
                f.insert("Tags".into(), tags(&e.tags));
            }
            Value::Object(f)
        })
        .collect();
    let f = fields([(
        "SecretList",
        Value::Object(fields([("Secret", Value::Array(list))])),
    )]);
    Ok(paged(f, &page))
}

pub(super) fn update_secret(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let name = p.required("SecretName")?;
    if p.optional("ExtendedConfig.CustomData").is_some() || p.optional("ExtendedConfig").is_some() {
        return Err(Error::UnsupportedOperation(
            "ExtendedConfig applies to managed secrets, which localkms does not support".into(),
        ));
    }
    kms.update_secret(name, p.raw("Description"))?;
    Ok(fields([("SecretName", s(name))]))
}

pub(super) fn delete_secret(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let name = p.required("SecretName")?;
    let force = p.bool("ForceDeleteWithoutRecovery")?.unwrap_or(false);
    let window: Option<u32> = p.integer("RecoveryWindowInDays")?;
    let how = match (force, window) {
        (true, Some(_)) => {
            return Err(Error::invalid(
                "RecoveryWindowInDays",
                "cannot be given with ForceDeleteWithoutRecovery=true",
            ));
        }
        (true, None) => SecretDeletion::Force,
        (false, w) => SecretDeletion::RecoveryWindow(
            w.unwrap_or(crate::ops::secrets::DEFAULT_RECOVERY_WINDOW_DAYS),
        ),
    };
    let r = kms.delete_secret(name, how)?;
    Ok(fields([
        ("SecretName", s(r.secret_name)),
        ("PlannedDeleteTime", s(r.planned_delete_time)),
    ]))
}

pub(super) fn restore_secret(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let name = p.required("SecretName")?;
    kms.restore_secret(name)?;
    Ok(fields([("SecretName", s(name))]))
}

pub(super) fn list_secret_version_ids(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let name = p.required("SecretName")?;
    let include = p.bool("IncludeDeprecated")?.unwrap_or(false);
    // The vendor's default page size here is 20.
    let paging = match p.optional("PageSize") {
        Some(_) => p.paging()?,
        None => {
            let n = p.paging()?.page_number();
            Paging::new(n, 20)?
        }
    };
    let page = kms.list_secret_version_ids(name, include, paging)?;
    let list = page
        .items
        .iter()
        .map(|v| {
            Value::Object(fields([
                ("VersionId", s(v.version_id.clone())),
                ("CreateTime", s(v.create_time.clone())),
                ("VersionStages", stages(&v.version_stages)),
            ]))
        })
        .collect();
    let f = fields([
        ("SecretName", s(name)),
        (
            "VersionIds",
            Value::Object(fields([("VersionId", Value::Array(list))])),
        ),
    ]);
    Ok(paged(f, &page))
}

pub(super) fn update_secret_version_stage(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let name = p.required("SecretName")?;
    let stage = p.required("VersionStage")?;
    kms.update_secret_version_stage(
        name,
        stage,
        p.optional("RemoveFromVersion"),
        p.optional("MoveToVersion"),
    )?;
    Ok(fields([("SecretName", s(name))]))
}

pub(super) fn rotate_secret(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let name = p.required("SecretName")?;
    let version_id = p.required("VersionId")?;
    kms.rotate_secret(name, version_id)?;
    Ok(fields([("SecretName", s(name))]))
}

pub(super) fn update_secret_rotation_policy(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let name = p.required("SecretName")?;
    let enable = p.required_bool("EnableAutomaticRotation")?;
    let interval = p
        .optional("RotationInterval")
        .map(parse_secret_rotation_interval)
        .transpose()?;
    if enable && interval.is_none() {
        return Err(Error::MissingParameter("RotationInterval"));
    }
    kms.update_secret_rotation_policy(name, enable, interval)?;
    Ok(fields([("SecretName", s(name))]))
}

pub(super) fn get_random_password(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let flag = |n: &'static str| -> Result<bool> { Ok(p.bool(n)?.unwrap_or(false)) };
    let req = GetRandomPasswordRequest {
        password_length: p.integer("PasswordLength")?,
        exclude_characters: p.raw("ExcludeCharacters").unwrap_or_default().to_owned(),
        exclude_lowercase: flag("ExcludeLowercase")?,
        exclude_uppercase: flag("ExcludeUppercase")?,
        exclude_numbers: flag("ExcludeNumbers")?,
        exclude_punctuation: flag("ExcludePunctuation")?,
        require_each_included_type: flag("RequireEachIncludedType")?,
    };
    let pw = kms.get_random_password(&req)?;
    Ok(fields([("RandomPassword", secret(pw.into_inner()))]))
}

pub(super) fn get_secret_policy(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let name = p.required("SecretName")?;
    let policy = kms.get_secret_policy(name, p.optional("PolicyName"))?;
    Ok(fields([("Policy", s(policy))]))
}

pub(super) fn set_secret_policy(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let name = p.required("SecretName")?;
    kms.set_secret_policy(name, p.required("Policy")?, p.optional("PolicyName"))?;
    Ok(Fields::new())
}

/// TagResource with `SecretName` (and no `KeyId`).
pub(super) fn tag_secret(kms: &Kms, name: &str, p: &Params<'_>) -> Result<Fields> {
    kms.tag_secret(name, &secret_tags(p.required("Tags")?)?)?;
    Ok(Fields::new())
}

/// UntagResource with `SecretName` (and no `KeyId`).
pub(super) fn untag_secret(kms: &Kms, name: &str, p: &Params<'_>) -> Result<Fields> {
    kms.untag_secret(name, &parse_tag_keys(p.required("TagKeys")?)?)?;
    Ok(Fields::new())
}
