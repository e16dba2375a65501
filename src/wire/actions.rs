//! One parse-and-call function per action: read the parameters with the
//! shared [`Params`] helpers, call the library, and lay out the response
//! members (SPEC sections 4 and 6).

use serde::Serialize;
use serde_json::Value;

use super::Fields;
use super::params::Params;
use crate::crypto::blob::PlaintextKind;
use crate::crypto::context::EncryptionContext;
use crate::error::{Error, Result};
use crate::kms::Kms;
use crate::ops::keys::CreateKeyRequest;
use crate::ops::symmetric::{CiphertextBlob, GenerateDataKeyRequest};
use crate::ops::tags::{parse_tag_keys, parse_tags};
use crate::paging::Page;

/// The members of a serializable response struct (every field a string).
fn members<T: Serialize>(value: &T) -> Result<Fields> {
    match serde_json::to_value(value) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Error::InternalFailure),
    }
}

/// A list member without paging: `{list: {item: [..]}}`.
fn list<T: Serialize>(list: &str, item: &str, items: &[T]) -> Result<Fields> {
    let items = serde_json::to_value(items).map_err(|_| Error::InternalFailure)?;
    Ok(one(list, Value::Object(one(item, items))))
}

/// The optional `EncryptionContext` (empty is none).
fn context(p: &Params<'_>, name: &str) -> Result<EncryptionContext> {
    p.optional(name).map_or_else(
        || Ok(EncryptionContext::empty()),
        EncryptionContext::from_json,
    )
}

/// The optional parameters of GenerateDataKey and
/// GenerateDataKeyWithoutPlaintext.
fn data_key_request(p: &Params<'_>) -> Result<GenerateDataKeyRequest> {
    Ok(GenerateDataKeyRequest {
        key_spec: p.parse("KeySpec")?,
        number_of_bytes: p.integer("NumberOfBytes")?,
        encryption_context: context(p, "EncryptionContext")?,
        ..GenerateDataKeyRequest::default()
    })
}

/// Moves a secret string into a member; [`super::success`] clears it after
/// writing the body.
fn secret(mut s: zeroize::Zeroizing<String>) -> Value {
    Value::String(std::mem::take(&mut *s))
}

/// `{name: value}`.
fn one(name: &str, value: Value) -> Fields {
    let mut f = Fields::new();
    f.insert(name.into(), value);
    f
}

/// A List response: `{list: {item: [..]}}` and the paging members, with
/// `TotalCount`, `PageNumber` and `PageSize` as JSON integers.
fn page<T: Serialize>(list: &str, item: &str, page: &Page<T>) -> Result<Fields> {
    let mut f = self::list(list, item, &page.items)?;
    f.insert("TotalCount".into(), page.total_count.into());
    f.insert("PageNumber".into(), page.page_number.into());
    f.insert("PageSize".into(), page.page_size.into());
    Ok(f)
}

pub(super) fn create_key(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let d = CreateKeyRequest::default();
    let req = CreateKeyRequest {
        description: p.optional("Description").unwrap_or_default().to_owned(),
        key_usage: p.parse("KeyUsage")?,
        origin: p.parse("Origin")?.unwrap_or(d.origin),
        protection_level: p.parse("ProtectionLevel")?.unwrap_or(d.protection_level),
        key_spec: super::asymmetric::key_spec(p)?.unwrap_or(d.key_spec),
        enable_automatic_rotation: p
            .bool("EnableAutomaticRotation")?
            .unwrap_or(d.enable_automatic_rotation),
        rotation_interval: p.rotation_interval()?,
        tags: p
            .optional("Tags")
            .map(parse_tags)
            .transpose()?
            .unwrap_or_default(),
        policy: p.optional("Policy").map(str::to_owned),
    };
    let meta = kms.create_key(&req)?;
    Ok(one("KeyMetadata", Value::Object(members(&meta)?)))
}

pub(super) fn describe_key(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let meta = kms.describe_key(p.required("KeyId")?)?;
    Ok(one("KeyMetadata", Value::Object(members(&meta)?)))
}

pub(super) fn list_keys(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    page("Keys", "Key", &kms.list_keys(p.paging()?)?)
}

pub(super) fn enable_key(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    kms.enable_key(p.required("KeyId")?)?;
    Ok(Fields::new())
}

pub(super) fn disable_key(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    kms.disable_key(p.required("KeyId")?)?;
    Ok(Fields::new())
}

pub(super) fn schedule_key_deletion(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let key_id = p.required("KeyId")?;
    let days = p
        .required_integer("PendingWindowInDays")
        .map_err(|e| match e {
            // Out of u32 range is out of 7..=30: say so with the library's words.
            Error::InvalidParameter { .. } => {
                Error::invalid("PendingWindowInDays", "must be an integer from 7 to 30")
            }
            other => other,
        })?;
    kms.schedule_key_deletion(key_id, days)?;
    Ok(Fields::new())
}

pub(super) fn cancel_key_deletion(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    kms.cancel_key_deletion(p.required("KeyId")?)?;
    Ok(Fields::new())
}

pub(super) fn get_parameters_for_import(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let key_id = p.required("KeyId")?;
    let algorithm = p.required("WrappingAlgorithm")?.parse()?;
    let spec = p.required("WrappingKeySpec")?.parse()?;
    members(&kms.get_parameters_for_import(key_id, algorithm, spec)?)
}

pub(super) fn import_key_material(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let key_id = p.required("KeyId")?;
    let material = p.required("EncryptedKeyMaterial")?;
    let token = p.required("ImportToken")?;
    let expire = p.integer::<i64>("KeyMaterialExpireUnix")?;
    kms.import_key_material(key_id, material, token, expire)?;
    Ok(Fields::new())
}

pub(super) fn delete_key_material(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    kms.delete_key_material(p.required("KeyId")?)?;
    Ok(Fields::new())
}

pub(super) fn create_alias(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let alias = p.required("AliasName")?;
    kms.create_alias(alias, p.required("KeyId")?)?;
    Ok(Fields::new())
}

pub(super) fn update_alias(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let alias = p.required("AliasName")?;
    kms.update_alias(alias, p.required("KeyId")?)?;
    Ok(Fields::new())
}

pub(super) fn delete_alias(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    kms.delete_alias(p.required("AliasName")?)?;
    Ok(Fields::new())
}

pub(super) fn list_aliases(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    page("Aliases", "Alias", &kms.list_aliases(p.paging()?)?)
}

pub(super) fn list_aliases_by_key_id(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let key_id = p.required("KeyId")?;
    page(
        "Aliases",
        "Alias",
        &kms.list_aliases_by_key_id(key_id, p.paging()?)?,
    )
}

pub(super) fn tag_resource(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    if let (None, Some(name)) = (p.optional("KeyId"), p.optional("SecretName")) {
        return super::secrets::tag_secret(kms, name, p);
    }
    let key_id = p.required("KeyId")?;
    kms.tag_resource(key_id, &parse_tags(p.required("Tags")?)?)?;
    Ok(Fields::new())
}

pub(super) fn untag_resource(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    if let (None, Some(name)) = (p.optional("KeyId"), p.optional("SecretName")) {
        return super::secrets::untag_secret(kms, name, p);
    }
    let key_id = p.required("KeyId")?;
    kms.untag_resource(key_id, &parse_tag_keys(p.required("TagKeys")?)?)?;
    Ok(Fields::new())
}

pub(super) fn list_resource_tags(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    list(
        "Tags",
        "Tag",
        &kms.list_resource_tags(p.required("KeyId")?)?,
    )
}

pub(super) fn describe_regions(kms: &Kms, _: &Params<'_>) -> Result<Fields> {
    let regions: Vec<Value> = kms
        .describe_regions()
        .into_iter()
        .map(|r| Value::Object(one("RegionId", Value::String(r))))
        .collect();
    list("Regions", "Region", &regions)
}

pub(super) fn encrypt(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let key_id = p.required("KeyId")?;
    let plaintext = p.required("Plaintext")?;
    let r = kms.encrypt(
        key_id,
        plaintext.as_bytes(),
        &context(p, "EncryptionContext")?,
    )?;
    let mut f = one("KeyId", r.key_id.into());
    f.insert("KeyVersionId".into(), r.key_version_id.into());
    f.insert(
        "CiphertextBlob".into(),
        r.ciphertext_blob.to_base64().into(),
    );
    Ok(f)
}

pub(super) fn generate_data_key(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let key_id = p.required("KeyId")?;
    let r = kms.generate_data_key(key_id, &data_key_request(p)?)?;
    let mut f = one("KeyId", r.key_id.into());
    f.insert("KeyVersionId".into(), r.key_version_id.into());
    f.insert("Plaintext".into(), secret(r.plaintext.to_base64()));
    f.insert(
        "CiphertextBlob".into(),
        r.ciphertext_blob.to_base64().into(),
    );
    Ok(f)
}

pub(super) fn decrypt(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let blob = CiphertextBlob::from_base64(p.required("CiphertextBlob")?)?;
    let r = kms.decrypt(&blob, &context(p, "EncryptionContext")?)?;
    let mut f = one("KeyId", r.key_id.clone().into());
    f.insert("KeyVersionId".into(), r.key_version_id.clone().into());
    // `wire_plaintext` converts text lossily; valid UTF-8 (all text that came
    // over the wire) takes the quick, exact path here.
    let text = match (r.kind, std::str::from_utf8(r.plaintext.expose_secret())) {
        (PlaintextKind::Text, Ok(s)) => zeroize::Zeroizing::new(s.to_owned()),
        _ => r.wire_plaintext(),
    };
    f.insert("Plaintext".into(), secret(text));
    Ok(f)
}

pub(super) fn update_key_description(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let key_id = p.required("KeyId")?;
    kms.update_key_description(key_id, p.required("Description")?)?;
    Ok(Fields::new())
}

pub(super) fn update_rotation_policy(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let key_id = p.required("KeyId")?;
    let enable = p.required_bool("EnableAutomaticRotation")?;
    kms.update_rotation_policy(key_id, enable, p.rotation_interval()?)?;
    Ok(Fields::new())
}

pub(super) fn create_key_version(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let v = kms.create_key_version(p.required("KeyId")?)?;
    Ok(one("KeyVersion", Value::Object(members(&v)?)))
}

pub(super) fn describe_key_version(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let key_id = p.required("KeyId")?;
    let v = kms.describe_key_version(key_id, p.required("KeyVersionId")?)?;
    Ok(one("KeyVersion", Value::Object(members(&v)?)))
}

pub(super) fn list_key_versions(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let key_id = p.required("KeyId")?;
    page(
        "KeyVersions",
        "KeyVersion",
        &kms.list_key_versions(key_id, p.paging()?)?,
    )
}

pub(super) fn generate_data_key_without_plaintext(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let key_id = p.required("KeyId")?;
    let r = kms.generate_data_key_without_plaintext(key_id, &data_key_request(p)?)?;
    let mut f = one("KeyId", r.key_id.into());
    f.insert("KeyVersionId".into(), r.key_version_id.into());
    f.insert(
        "CiphertextBlob".into(),
        r.ciphertext_blob.to_base64().into(),
    );
    Ok(f)
}

pub(super) fn re_encrypt(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let blob = p.required("CiphertextBlob")?;
    let destination = p.required("DestinationKeyId")?;
    let blob = CiphertextBlob::from_base64(blob)?;
    let r = kms.re_encrypt(
        &blob,
        destination,
        &context(p, "SourceEncryptionContext")?,
        &context(p, "DestinationEncryptionContext")?,
    )?;
    let mut f = one("KeyId", r.key_id.into());
    f.insert("KeyVersionId".into(), r.key_version_id.into());
    f.insert(
        "CiphertextBlob".into(),
        r.ciphertext_blob.to_base64().into(),
    );
    Ok(f)
}
