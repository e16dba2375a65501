//! The actions of the current API beyond keys, secrets and asymmetric keys:
//! exporting data keys, deletion protection, key policies, batch tags and
//! the account calls; and the table of actions this library refuses, each
//! with its reason (`UnsupportedOperation`).
//!
//! List parameters of the batch tag actions come in two forms: the JSON
//! strings the vendor documents (`ResourceId=["a","b"]`,
//! `Tag=[{"Key":"k","Value":"v"}]`, `TagKey=["k"]`), and the flattened form
//! the 3.3.1 SDK sends (`ResourceId.1`, `Tag.1.Key`, `Tag.1.Value`,
//! `TagKey.1`). A single `ResourceId` or `TagKey` that is not a JSON array
//! is one item.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use super::Fields;
use super::params::Params;
use crate::crypto::context::EncryptionContext;
use crate::error::{Error, Result};
use crate::kms::Kms;
use crate::ops::batch_tags::{MAX_BATCH_RESOURCES, MAX_BATCH_TAGS, ResourceType};
use crate::ops::export::WrappingPublicKey;
use crate::ops::symmetric::GenerateDataKeyRequest;
use crate::ops::tags::{Tag, TagKey};

/// The longest `CiphertextBlob` looked at, in base64 characters (a data key
/// blob of 1024 bytes is about 1.5 KiB).
const MAX_BLOB_CHARS: usize = 16 * 1024;
/// The longest `PublicKeyBlob` looked at, in characters.
const MAX_PUBLIC_KEY_CHARS: usize = 16 * 1024;

fn fields<const N: usize>(members: [(&str, Value); N]) -> Fields {
    members
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

fn b64(bytes: &[u8]) -> Value {
    Value::String(STANDARD.encode(bytes))
}

fn context(p: &Params<'_>) -> Result<EncryptionContext> {
    p.optional("EncryptionContext").map_or_else(
        || Ok(EncryptionContext::empty()),
        EncryptionContext::from_json,
    )
}

/// `PublicKeyBlob` (base64 DER SubjectPublicKeyInfo, or a PEM document),
/// `WrappingAlgorithm` and `WrappingKeySpec`.
fn wrapping(p: &Params<'_>) -> Result<WrappingPublicKey> {
    let algorithm = p.required("WrappingAlgorithm")?.parse()?;
    let spec = p.required("WrappingKeySpec")?.parse()?;
    let blob = p.required("PublicKeyBlob")?;
    let bad = || {
        Error::invalid(
            "PublicKeyBlob",
            "must be base64 of a DER SubjectPublicKeyInfo",
        )
    };
    if blob.len() > MAX_PUBLIC_KEY_CHARS {
        return Err(bad());
    }
    let der = match blob.trim().strip_prefix("-----BEGIN PUBLIC KEY-----") {
        Some(rest) => {
            let body: String = rest
                .split("-----END PUBLIC KEY-----")
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .collect();
            STANDARD.decode(body).map_err(|_| bad())?
        }
        None => STANDARD.decode(blob.trim()).map_err(|_| bad())?,
    };
    Ok(WrappingPublicKey::new(algorithm, spec, der))
}

pub(super) fn export_data_key(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let blob = p.required("CiphertextBlob")?;
    if blob.len() > MAX_BLOB_CHARS {
        return Err(Error::DecryptionFailed);
    }
    let blob = zeroize::Zeroizing::new(STANDARD.decode(blob).map_err(|_| Error::DecryptionFailed)?);
    let r = kms.export_data_key(&blob, &context(p)?, &wrapping(p)?)?;
    Ok(fields([
        ("KeyId", r.key_id.into()),
        ("KeyVersionId", r.key_version_id.into()),
        ("ExportedDataKey", b64(&r.exported_data_key)),
    ]))
}

pub(super) fn generate_and_export_data_key(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let key_id = p.required("KeyId")?;
    let req = GenerateDataKeyRequest {
        key_spec: p.parse("KeySpec")?,
        number_of_bytes: p.integer("NumberOfBytes")?,
        encryption_context: context(p)?,
        ..GenerateDataKeyRequest::default()
    };
    let r = kms.generate_and_export_data_key(key_id, &req, &wrapping(p)?)?;
    Ok(fields([
        ("KeyId", r.key_id.into()),
        ("KeyVersionId", r.key_version_id.into()),
        ("CiphertextBlob", b64(&r.ciphertext_blob)),
        ("ExportedDataKey", b64(&r.exported_data_key)),
    ]))
}

pub(super) fn set_deletion_protection(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let enable = p.required_bool("EnableDeletionProtection")?;
    let key = p
        .optional("KeyId")
        .or(p.optional("ProtectedResourceArn"))
        .ok_or(Error::MissingParameter("KeyId"))?;
    let description = p.raw("DeletionProtectionDescription").unwrap_or_default();
    kms.set_deletion_protection(key, enable.then_some(description))?;
    Ok(Fields::new())
}

pub(super) fn get_key_policy(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let policy = kms.get_key_policy(p.required("KeyId")?, p.optional("PolicyName"))?;
    Ok(fields([("Policy", policy.into())]))
}

pub(super) fn set_key_policy(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let key_id = p.required("KeyId")?;
    kms.set_key_policy(key_id, p.required("Policy")?, p.optional("PolicyName"))?;
    Ok(Fields::new())
}

/// The flattened items `name.1`, `name.2`, ... (at most `max` + 1 looked at,
/// so one too many is seen).
fn flattened(p: &Params<'_>, name: &str, max: usize) -> Vec<String> {
    (1..=max + 1)
        .map_while(|i| p.raw(&format!("{name}.{i}")).map(str::to_owned))
        .collect()
}

/// A list of strings: `name` as a JSON array (or one item), or `name.N`.
fn string_list(p: &Params<'_>, name: &'static str, max: usize) -> Result<Vec<String>> {
    match p.optional(name) {
        Some(v) if v.trim_start().starts_with('[') => serde_json::from_str::<Vec<String>>(v)
            .map_err(|_| Error::invalid(name, "must be a JSON array of strings")),
        Some(v) => Ok(vec![v.to_owned()]),
        None => Ok(flattened(p, name, max)),
    }
}

/// The `Tag` list: JSON `[{"Key","Value"}]`, or `Tag.N.Key`/`Tag.N.Value`.
fn tag_list(p: &Params<'_>) -> Result<Vec<Tag>> {
    const P: &str = "Tag";
    if let Some(v) = p.optional(P) {
        let Ok(Value::Array(items)) = serde_json::from_str::<Value>(v) else {
            return Err(Error::invalid(
                P,
                "must be a JSON array of {\"Key\",\"Value\"}",
            ));
        };
        return items
            .into_iter()
            .map(|item| {
                let Value::Object(o) = item else {
                    return Err(Error::invalid(P, "each tag must be a JSON object"));
                };
                let key = match o.get("Key").or(o.get("TagKey")) {
                    Some(Value::String(s)) => s.clone(),
                    _ => return Err(Error::invalid(P, "each tag needs a string Key")),
                };
                let value = match o.get("Value").or(o.get("TagValue")) {
                    Some(Value::String(s)) => s.clone(),
                    None | Some(Value::Null) => String::new(),
                    Some(_) => return Err(Error::invalid(P, "Value must be a string")),
                };
                Tag::new(key, value)
            })
            .collect();
    }
    (1..=MAX_BATCH_TAGS + 1)
        .map_while(|i| {
            let key = p.raw(&format!("Tag.{i}.Key"))?;
            let value = p.raw(&format!("Tag.{i}.Value")).unwrap_or_default();
            Some(Tag::new(key, value))
        })
        .collect()
}

fn resource_type(p: &Params<'_>) -> Result<ResourceType> {
    p.required("ResourceType")?.parse()
}

pub(super) fn tag_resources(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let kind = resource_type(p)?;
    let ids = string_list(p, "ResourceId", MAX_BATCH_RESOURCES)?;
    kms.tag_resources(kind, &ids, &tag_list(p)?)?;
    Ok(Fields::new())
}

pub(super) fn untag_resources(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let kind = resource_type(p)?;
    let ids = string_list(p, "ResourceId", MAX_BATCH_RESOURCES)?;
    let keys = string_list(p, "TagKey", MAX_BATCH_TAGS)?
        .into_iter()
        .map(TagKey::new)
        .collect::<Result<Vec<_>>>()?;
    let all = p.bool("All")?.unwrap_or(false);
    kms.untag_resources(kind, &ids, &keys, all)?;
    Ok(Fields::new())
}

pub(super) fn list_tag_resources(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let kind = resource_type(p)?;
    let ids = string_list(p, "ResourceId", MAX_BATCH_RESOURCES)?;
    let page = kms.list_tag_resources(kind, &ids, &tag_list(p)?, p.optional("NextToken"))?;
    let rows = page
        .tag_resources
        .into_iter()
        .map(|r| {
            Value::Object(fields([
                ("ResourceId", r.resource_id.into()),
                ("ResourceType", r.resource_type.as_str().into()),
                ("TagKey", r.tag_key.into()),
                ("TagValue", r.tag_value.into()),
            ]))
        })
        .collect();
    Ok(fields([
        (
            "TagResources",
            Value::Object(fields([("TagResource", Value::Array(rows))])),
        ),
        ("NextToken", page.next_token.into()),
    ]))
}

pub(super) fn describe_account_kms_status(kms: &Kms, _: &Params<'_>) -> Result<Fields> {
    Ok(fields([(
        "AccountStatus",
        kms.describe_account_kms_status()?.into(),
    )]))
}

pub(super) fn open_kms_service(kms: &Kms, _: &Params<'_>) -> Result<Fields> {
    kms.open_kms_service()?;
    Ok(Fields::new())
}

/// Why the instance actions are refused.
const INSTANCE: &str = "KMS instances (dedicated software or hardware key management instances) are a deployment of the cloud service; localkms is one in-process service with one key store";
/// Why the application access point actions are refused.
const ACCESS_POINT: &str = "application access points, their network rules, permission policies and client keys authenticate applications to a KMS instance's dedicated gateway; localkms has no instances and authenticates with one access key";
/// Why the managed data key actions are refused (for now).
const MANAGED_DATA_KEY: &str = "managed data keys (named data keys whose plaintext the service keeps) are not implemented yet; use GenerateDataKey and Decrypt";
/// Why GetChallenge is refused (for now).
const CHALLENGE: &str = "the 3.3.1 SDK documents neither its parameters nor its answer, so there is no behaviour to emulate yet";

/// The actions of `alibabacloud-kms20160120` 3.3.1 this library refuses on
/// purpose, with why: `UnsupportedOperation` rather than
/// `InvalidAction.NotFound`, so a caller learns it is not a typo.
pub(super) static REFUSED: &[(&str, &str)] = &[
    ("ConnectKmsInstance", INSTANCE),
    ("GetKmsInstance", INSTANCE),
    ("ListKmsInstances", INSTANCE),
    ("GetDefaultKmsInstance", INSTANCE),
    ("GetKmsInstanceQuotaInfos", INSTANCE),
    ("ReleaseKmsInstance", INSTANCE),
    ("UpdateKmsInstanceBindVpc", INSTANCE),
    ("CreateApplicationAccessPoint", ACCESS_POINT),
    ("DescribeApplicationAccessPoint", ACCESS_POINT),
    ("ListApplicationAccessPoints", ACCESS_POINT),
    ("UpdateApplicationAccessPoint", ACCESS_POINT),
    ("DeleteApplicationAccessPoint", ACCESS_POINT),
    ("CreateNetworkRule", ACCESS_POINT),
    ("DescribeNetworkRule", ACCESS_POINT),
    ("ListNetworkRules", ACCESS_POINT),
    ("UpdateNetworkRule", ACCESS_POINT),
    ("DeleteNetworkRule", ACCESS_POINT),
    ("CreatePolicy", ACCESS_POINT),
    ("DescribePolicy", ACCESS_POINT),
    ("ListPolicies", ACCESS_POINT),
    ("UpdatePolicy", ACCESS_POINT),
    ("DeletePolicy", ACCESS_POINT),
    ("CreateClientKey", ACCESS_POINT),
    ("GetClientKey", ACCESS_POINT),
    ("ListClientKeys", ACCESS_POINT),
    ("DeleteClientKey", ACCESS_POINT),
    ("GetChallenge", CHALLENGE),
    ("GetManagedDataKey", MANAGED_DATA_KEY),
    ("ListManagedDataKeyVersions", MANAGED_DATA_KEY),
];

/// The refusal of a refused action, if `name` is one.
pub(super) fn refusal(name: &str) -> Option<Error> {
    REFUSED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, why)| Error::UnsupportedOperation(format!("{n}: {why}").into()))
}
