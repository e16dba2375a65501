//! JSON fixtures: load keys with chosen ids, states, aliases, tags, dates
//! and versions into a service, and export a service's keys in the same
//! format. The format is documented in `docs/FIXTURES.md`.
//!
//! A fixture is checked whole, and against the store, before anything is
//! written; an error names the offending entry (`Keys[3].Aliases[1]: ...`).
//! Fixed key material (`MaterialHex`, `MaterialBase64`) is accepted, and
//! exported, only with the `test-util` feature.

use std::collections::HashSet;
use std::path::Path;

use base64::Engine as _;
use serde_json::{Map, Value, json};
use zeroize::{Zeroize as _, Zeroizing};

use crate::clock::{format_timestamp, parse_timestamp};
use crate::error::{Error, Result};
use crate::kms::Kms;
use crate::ops::aliases::AliasName;
use crate::ops::asymmetric::{NewMaterial, asym_spec, check_spec_usage, service_usage};
use crate::ops::tags::Tag;
use crate::paging::Paging;
use crate::secret::KeyMaterial;
use crate::store::record::{KeyRecord, NS_DELETION, VersionMeta, deletion_id};
use crate::types::is_key_id;
use crate::types::{KeySpec, KeyState, KeyUsage, Origin, ProtectionLevel};

/// The fixture format version this library reads and writes.
const FIXTURE_VERSION: u64 = 1;

const TOP_FIELDS: &[&str] = &["FixtureVersion", "Keys", "Secrets"];
const KEY_FIELDS: &[&str] = &[
    "KeyId",
    "Description",
    "KeyState",
    "KeyUsage",
    "KeySpec",
    "Origin",
    "ProtectionLevel",
    "CreationDate",
    "DeleteDate",
    "AutomaticRotation",
    "RotationInterval",
    "Aliases",
    "Tags",
    "Versions",
];
const VERSION_FIELDS: &[&str] = &[
    "KeyVersionId",
    "CreationDate",
    "MaterialHex",
    "MaterialBase64",
];

/// A fixture error at `path`.
fn bad(path: &str, why: impl std::fmt::Display) -> Error {
    Error::invalid("Fixture", format!("{path}: {why}"))
}

/// One key of a fixture, checked, ready to insert.
struct PlannedKey {
    record: KeyRecord,
    aliases: Vec<AliasName>,
    tags: Vec<Tag>,
    materials: Vec<NewMaterial>,
    /// The state and date to set after the aliases exist (CreateAlias
    /// refuses a key pending deletion).
    deletion: Option<i64>,
}

fn object<'a>(v: &'a Value, path: &str, allowed: &[&str]) -> Result<&'a Map<String, Value>> {
    let m = v
        .as_object()
        .ok_or_else(|| bad(path, "must be a JSON object"))?;
    if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(bad(
            &format!("{path}.{}", crate::error::shorten(k)),
            format!("unknown field (expected one of {})", allowed.join(", ")),
        ));
    }
    Ok(m)
}

fn string<'a>(m: &'a Map<String, Value>, path: &str, field: &str) -> Result<Option<&'a str>> {
    match m.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad(&format!("{path}.{field}"), "must be a string")),
    }
}

fn parsed<T: std::str::FromStr<Err = E>, E: Into<Error>>(
    m: &Map<String, Value>,
    path: &str,
    field: &str,
) -> Result<Option<T>> {
    string(m, path, field)?
        .map(|s| {
            s.parse()
                .map_err(|e: E| bad(&format!("{path}.{field}"), e.into()))
        })
        .transpose()
}

fn time(m: &Map<String, Value>, path: &str, field: &str) -> Result<Option<i64>> {
    string(m, path, field)?
        .map(|s| {
            parse_timestamp(s).ok_or_else(|| {
                bad(
                    &format!("{path}.{field}"),
                    "must be like 2024-01-31T12:00:00Z",
                )
            })
        })
        .transpose()
}

fn array<'a>(m: &'a Map<String, Value>, path: &str, field: &str) -> Result<&'a [Value]> {
    match m.get(field) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(bad(&format!("{path}.{field}"), "must be an array")),
    }
}

fn decode_hex(s: &str) -> Option<Zeroizing<Vec<u8>>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let mut out = Zeroizing::new(vec![0u8; s.len() / 2]);
    base16ct::mixed::decode(s, &mut out[..]).ok()?;
    Some(out)
}

fn hex(bytes: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(base16ct::lower::encode_string(bytes))
}

impl Kms {
    /// Loads the keys of a JSON fixture (format: `docs/FIXTURES.md`) and
    /// returns their KeyIds in file order. Missing KeyIds, KeyVersionIds and
    /// material are generated (reproducibly under
    /// `KmsBuilder::insecure_deterministic`). Loading is set-up, not an
    /// operation: it is neither audited nor subject to fault rules.
    ///
    /// ```
    /// let kms = localkms::Kms::in_memory()?;
    /// let ids = kms.load_fixtures(r#"{"Keys": [{
    ///     "KeyId": "11111111-1111-4111-8111-111111111111",
    ///     "Description": "orders", "KeyState": "Disabled",
    ///     "Aliases": ["alias/orders"], "Tags": [{"TagKey": "team", "TagValue": "pay"}]
    /// }]}"#)?;
    /// assert_eq!(kms.describe_key("alias/orders")?.key_id, ids[0]);
    /// # Ok::<(), localkms::Error>(())
    /// ```
    ///
    /// # Errors
    /// `InvalidParameter` (parameter `Fixture`) naming the offending entry,
    /// for a malformed fixture or a KeyId or alias that exists already;
    /// nothing is written then. A storage failure or the key limit can stop
    /// a load part way (the keys before it stay).
    pub fn load_fixtures(&self, json: &str) -> Result<Vec<String>> {
        self.quietly(|| {
            let doc: Value = serde_json::from_str(json).map_err(|e| bad("fixture", e))?;
            let plan = self.plan(&doc)?;
            let secrets = crate::ops::secrets::fixtures::plan(self, doc.get("Secrets"))?;
            let ids = plan.iter().map(|k| k.record.key_id.clone()).collect();
            for key in plan {
                self.insert_planned(key)?;
            }
            crate::ops::secrets::fixtures::load(self, secrets)?;
            Ok(ids)
        })
    }

    /// [`Kms::load_fixtures`] from a file.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read; else as
    /// [`Kms::load_fixtures`].
    pub fn load_fixtures_file(&self, path: impl AsRef<Path>) -> Result<Vec<String>> {
        let text = std::fs::read_to_string(path).map_err(Error::from)?;
        self.load_fixtures(&text)
    }

    /// Checks a whole fixture against itself and the store.
    fn plan(&self, doc: &Value) -> Result<Vec<PlannedKey>> {
        let top = object(doc, "fixture", TOP_FIELDS)?;
        match top.get("FixtureVersion") {
            None => {}
            Some(v) if v.as_u64() == Some(FIXTURE_VERSION) => {}
            Some(_) => return Err(bad("FixtureVersion", "must be 1")),
        }
        let no_keys = Vec::new();
        let keys = match top.get("Keys") {
            Some(Value::Array(a)) => a,
            None if top.contains_key("Secrets") => &no_keys,
            _ => return Err(bad("Keys", "must be an array")),
        };
        let mut seen_ids = HashSet::new();
        let mut seen_aliases = HashSet::new();
        let mut plan = Vec::with_capacity(keys.len());
        for (i, v) in keys.iter().enumerate() {
            let path = format!("Keys[{i}]");
            let key = self.plan_key(v, &path)?;
            if !seen_ids.insert(key.record.key_id.clone()) {
                return Err(bad(
                    &format!("{path}.KeyId"),
                    "appears twice in the fixture",
                ));
            }
            match self.entry(&key.record.key_id) {
                Err(Error::KeyNotFound(_)) => {}
                Ok(_) => return Err(bad(&format!("{path}.KeyId"), "exists in the store")),
                Err(e) => return Err(e),
            }
            for (j, a) in key.aliases.iter().enumerate() {
                let apath = format!("{path}.Aliases[{j}]");
                if !seen_aliases.insert(a.as_str().to_owned()) {
                    return Err(bad(&apath, "appears twice in the fixture"));
                }
                match crate::ops::aliases::lookup_alias(self, a.as_str()) {
                    Err(Error::AliasNotFound(_)) => {}
                    Ok(_) => return Err(bad(&apath, "exists in the store")),
                    Err(e) => return Err(e),
                }
            }
            plan.push(key);
        }
        Ok(plan)
    }

    fn plan_key(&self, v: &Value, path: &str) -> Result<PlannedKey> {
        let m = object(v, path, KEY_FIELDS)?;
        let key_id = match string(m, path, "KeyId")? {
            Some(id) if is_key_id(id) => id.to_owned(),
            Some(_) => {
                return Err(bad(
                    &format!("{path}.KeyId"),
                    "must be a lowercase UUID such as 11111111-1111-4111-8111-111111111111",
                ));
            }
            None => self.new_uuid()?,
        };
        let description = string(m, path, "Description")?.unwrap_or_default();
        crate::ops::keys::validate_description(description)
            .map_err(|e| bad(&format!("{path}.Description"), e))?;
        let origin = parsed(m, path, "Origin")?.unwrap_or(Origin::AliyunKms);
        let external = origin == Origin::External;
        let state = parsed(m, path, "KeyState")?.unwrap_or(if external {
            KeyState::PendingImport
        } else {
            KeyState::Enabled
        });
        let created = time(m, path, "CreationDate")?.unwrap_or_else(|| self.now());
        let delete_date = time(m, path, "DeleteDate")?;
        let spath = format!("{path}.KeyState");
        match (state, external) {
            (KeyState::PendingImport, false) => {
                return Err(bad(&spath, "only an EXTERNAL key can be PendingImport"));
            }
            (KeyState::Enabled | KeyState::Disabled, true) => {
                return Err(bad(
                    &spath,
                    "an EXTERNAL key gets material only through ImportKeyMaterial: use PendingImport or PendingDeletion",
                ));
            }
            _ => {}
        }
        if (state == KeyState::PendingDeletion) != delete_date.is_some() {
            return Err(bad(
                &format!("{path}.DeleteDate"),
                "is required with KeyState PendingDeletion, and allowed only then",
            ));
        }
        let automatic_rotation = match m.get("AutomaticRotation") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(bad(
                    &format!("{path}.AutomaticRotation"),
                    "must be true or false",
                ));
            }
        };
        let rotation_interval = string(m, path, "RotationInterval")?
            .map(|s| {
                crate::ops::versions::parse_rotation_interval(s)
                    .map_err(|e| bad(&format!("{path}.RotationInterval"), e))
            })
            .transpose()?;
        if external && (automatic_rotation || rotation_interval.is_some()) {
            return Err(bad(
                &format!("{path}.AutomaticRotation"),
                "EXTERNAL keys do not rotate",
            ));
        }
        let aliases = array(m, path, "Aliases")?
            .iter()
            .enumerate()
            .map(|(j, a)| {
                let apath = format!("{path}.Aliases[{j}]");
                let s = a.as_str().ok_or_else(|| bad(&apath, "must be a string"))?;
                AliasName::new(s).map_err(|e| bad(&apath, e))
            })
            .collect::<Result<Vec<_>>>()?;
        let tags = array(m, path, "Tags")?
            .iter()
            .enumerate()
            .map(|(j, t)| {
                let tpath = format!("{path}.Tags[{j}]");
                let tm = object(t, &tpath, &["TagKey", "TagValue"])?;
                let k = string(tm, &tpath, "TagKey")?
                    .ok_or_else(|| bad(&tpath, "TagKey is required"))?;
                let v = string(tm, &tpath, "TagValue")?.unwrap_or_default();
                Tag::new(k, v).map_err(|e| bad(&tpath, e))
            })
            .collect::<Result<Vec<_>>>()?;
        crate::ops::tags::check_new_key_tags(&tags).map_err(|e| bad(&format!("{path}.Tags"), e))?;

        let listed = array(m, path, "Versions")?;
        if external && !listed.is_empty() {
            return Err(bad(
                &format!("{path}.Versions"),
                "an EXTERNAL key gets versions only through ImportKeyMaterial",
            ));
        }
        if !external && m.contains_key("Versions") && listed.is_empty() {
            return Err(bad(
                &format!("{path}.Versions"),
                "must list at least one version",
            ));
        }
        let mut versions = Vec::new();
        let mut materials = Vec::new();
        let default_version = [json!({})];
        let listed = if external || !listed.is_empty() {
            listed
        } else {
            &default_version[..]
        };
        for (j, vv) in listed.iter().enumerate() {
            let vpath = format!("{path}.Versions[{j}]");
            let (version, material) = self.plan_version(vv, &vpath, created)?;
            if versions.iter().any(|x: &VersionMeta| x.id == version.id) {
                return Err(bad(
                    &format!("{vpath}.KeyVersionId"),
                    "appears twice in this key",
                ));
            }
            versions.push(version);
            materials.push(NewMaterial::Aes(material));
        }
        let spec: KeySpec = parsed(m, path, "KeySpec")?.unwrap_or(KeySpec::Aes256);
        let usage: KeyUsage = match parsed(m, path, "KeyUsage")? {
            Some(u) => u,
            None => service_usage(asym_spec(spec).default_usage()),
        };
        check_spec_usage(spec, usage).map_err(|e| bad(&format!("{path}.KeyUsage"), e))?;
        if spec != KeySpec::Aes256 {
            let key_spec_path = format!("{path}.KeySpec");
            if external {
                return Err(bad(&key_spec_path, "EXTERNAL keys must be Aliyun_AES_256"));
            }
            if automatic_rotation && spec != KeySpec::Sm4 {
                return Err(bad(
                    &key_spec_path,
                    "only symmetric keys rotate automatically",
                ));
            }
            let fixed =
                |v: &Value| v.get("MaterialHex").is_some() || v.get("MaterialBase64").is_some();
            // 32-byte HMAC keys take fixed material like AES keys (tests
            // against other HMAC implementations); other specs do not.
            let takes_32 = matches!(spec, KeySpec::HmacSha256 | KeySpec::HmacSm3);
            if !takes_32 && listed.iter().any(fixed) {
                return Err(bad(
                    &key_spec_path,
                    "fixed key material is only for Aliyun_AES_256, HMAC_SHA_256 and HMAC_SM3 keys",
                ));
            }
            // Generated while planning, before any write: RSA is slow.
            let given = std::mem::take(&mut materials);
            for (j, m) in given.into_iter().enumerate() {
                materials.push(match m {
                    NewMaterial::Aes(k) if takes_32 && listed.get(j).is_some_and(fixed) => {
                        NewMaterial::Bytes(Zeroizing::new(k.expose().to_vec()))
                    }
                    _ => self.new_material_for(spec)?,
                });
            }
        }
        let interval = rotation_interval.unwrap_or(crate::ops::keys::DEFAULT_ROTATION_INTERVAL);
        let primary_created = versions.last().map_or(created, |v| v.created);
        let record = KeyRecord {
            key_id,
            seq: 0,
            created,
            description: description.to_owned(),
            state,
            usage,
            spec,
            origin,
            protection: parsed(m, path, "ProtectionLevel")?.unwrap_or(ProtectionLevel::Software),
            delete_date: None,
            material_expire: None,
            last_rotation: (versions.len() > 1).then_some(primary_created),
            next_rotation: automatic_rotation.then(|| {
                primary_created.saturating_add(i64::try_from(interval).unwrap_or(i64::MAX))
            }),
            versions,
            automatic_rotation,
            rotation_interval: rotation_interval.or(automatic_rotation.then_some(interval)),
            material_fingerprint: None,
            material_deleted: false,
            generation: 0,
            deletion_protection: None,
            policy: None,
        };
        Ok(PlannedKey {
            record,
            aliases,
            tags,
            materials,
            deletion: delete_date,
        })
    }

    fn plan_version(
        &self,
        v: &Value,
        path: &str,
        key_created: i64,
    ) -> Result<(VersionMeta, KeyMaterial)> {
        let m = object(v, path, VERSION_FIELDS)?;
        let id = match string(m, path, "KeyVersionId")? {
            Some(id) if is_key_id(id) => id.to_owned(),
            Some(_) => {
                return Err(bad(
                    &format!("{path}.KeyVersionId"),
                    "must be a lowercase UUID",
                ));
            }
            None => self.new_uuid()?,
        };
        let created = time(m, path, "CreationDate")?.unwrap_or(key_created);
        let hex_text = string(m, path, "MaterialHex")?;
        let b64_text = string(m, path, "MaterialBase64")?;
        let material = match (hex_text, b64_text) {
            (None, None) => self.new_material()?,
            (Some(_), Some(_)) => {
                return Err(bad(path, "give MaterialHex or MaterialBase64, not both"));
            }
            (Some(h), None) => fixed_material(&format!("{path}.MaterialHex"), decode_hex(h))?,
            (None, Some(b)) => fixed_material(
                &format!("{path}.MaterialBase64"),
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .ok()
                    .map(Zeroizing::new),
            )?,
        };
        Ok((VersionMeta { id, created }, material))
    }

    fn insert_planned(&self, key: PlannedKey) -> Result<()> {
        let PlannedKey {
            mut record,
            aliases,
            tags,
            materials,
            deletion,
        } = key;
        if deletion.is_some() {
            record.state = if record.origin == Origin::External {
                KeyState::PendingImport
            } else {
                KeyState::Enabled
            };
        }
        let key_id = record.key_id.clone();
        self.insert_key(|seq, batch| {
            record.seq = seq;
            for (v, m) in record.versions.iter().zip(&materials) {
                self.put_new_material(batch, &record.key_id, &v.id, m)?;
            }
            crate::ops::tags::put_new_key_tags(batch, &record.key_id, &tags);
            Ok(record)
        })?;
        for a in &aliases {
            self.create_alias(a.as_str(), &key_id)?;
        }
        if let Some(date) = deletion {
            self.update_key(&key_id, |r, batch| {
                r.state = KeyState::PendingDeletion;
                r.delete_date = Some(date);
                batch.put(NS_DELETION, deletion_id(date, &r.key_id), Vec::new());
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Every key of the store as a fixture (format: `docs/FIXTURES.md`),
    /// without key material: loading it elsewhere gives keys with the same
    /// ids, states, aliases, tags and versions, and new material.
    ///
    /// # Errors
    /// A storage failure.
    pub fn export_fixtures(&self) -> Result<String> {
        let mut doc = self.quietly(|| self.export(false))?;
        let text = serde_json::to_string_pretty(&doc).map_err(|_| Error::InternalFailure)?;
        clear_material(&mut doc);
        Ok(text)
    }

    /// **INSECURE, tests only.** [`Kms::export_fixtures`] with every key
    /// version's material in `MaterialHex`: a full copy of the keys.
    ///
    /// # Errors
    /// A storage failure, or `CorruptStore` for material that does not open.
    #[cfg(feature = "test-util")]
    pub fn export_fixtures_with_material(&self) -> Result<Zeroizing<String>> {
        let mut doc = self.quietly(|| self.export(true))?;
        let text = serde_json::to_string_pretty(&doc)
            .map(Zeroizing::new)
            .map_err(|_| Error::InternalFailure);
        clear_material(&mut doc);
        text
    }

    fn export(&self, material: bool) -> Result<Value> {
        let mut keys = Vec::new();
        let mut page = 1;
        loop {
            let listed = self.list_keys(Paging::new(page, 100)?)?;
            if listed.items.is_empty() {
                break;
            }
            for k in &listed.items {
                match self.export_key(&k.key_id, material) {
                    Ok(v) => keys.push(v),
                    // Deleted since the listing.
                    Err(Error::KeyNotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            page += 1;
        }
        Ok(json!({ "FixtureVersion": FIXTURE_VERSION, "Keys": keys }))
    }

    fn export_key(&self, key_id: &str, material: bool) -> Result<Value> {
        let entry = self.entry(key_id)?;
        let r = &entry.record;
        let mut aliases = Vec::new();
        let mut page = 1;
        loop {
            let listed = self.list_aliases_by_key_id(key_id, Paging::new(page, 100)?)?;
            if listed.items.is_empty() {
                break;
            }
            aliases.extend(
                listed
                    .items
                    .into_iter()
                    .map(|a| Value::String(a.alias_name)),
            );
            page += 1;
        }
        let tags: Vec<Value> = self
            .list_resource_tags(key_id)?
            .into_iter()
            .map(|t| json!({ "TagKey": t.tag_key, "TagValue": t.tag_value }))
            .collect();
        let mut versions = Vec::new();
        for v in &r.versions {
            let mut o = Map::new();
            o.insert("KeyVersionId".into(), v.id.clone().into());
            o.insert("CreationDate".into(), format_timestamp(v.created).into());
            if material && !r.material_deleted && r.spec == KeySpec::Aes256 {
                let opened = self.open_material(r, &v.id)?;
                let mut h = hex(opened.expose());
                o.insert("MaterialHex".into(), Value::String(std::mem::take(&mut *h)));
            }
            versions.push(Value::Object(o));
        }
        let mut o = Map::new();
        o.insert("KeyId".into(), r.key_id.clone().into());
        o.insert("Description".into(), r.description.clone().into());
        o.insert("KeyState".into(), r.state.as_str().into());
        o.insert("KeyUsage".into(), r.usage.as_str().into());
        o.insert("KeySpec".into(), r.spec.as_str().into());
        o.insert("Origin".into(), r.origin.as_str().into());
        o.insert("ProtectionLevel".into(), r.protection.as_str().into());
        o.insert("CreationDate".into(), format_timestamp(r.created).into());
        if let Some(d) = r.delete_date {
            o.insert("DeleteDate".into(), format_timestamp(d).into());
        }
        if r.automatic_rotation {
            o.insert("AutomaticRotation".into(), true.into());
        }
        if let Some(i) = r.rotation_interval {
            o.insert("RotationInterval".into(), format!("{i}s").into());
        }
        o.insert("Aliases".into(), aliases.into());
        o.insert("Tags".into(), tags.into());
        if !r.versions.is_empty() {
            o.insert("Versions".into(), versions.into());
        }
        Ok(Value::Object(o))
    }
}

/// Fixed material: 32 bytes, and only under `test-util`.
fn fixed_material(path: &str, bytes: Option<Zeroizing<Vec<u8>>>) -> Result<KeyMaterial> {
    if !cfg!(feature = "test-util") {
        return Err(bad(
            path,
            "fixed key material needs the test-util feature (leave it out to generate material)",
        ));
    }
    bytes
        .as_deref()
        .and_then(|b| KeyMaterial::from_slice(b))
        .ok_or_else(|| bad(path, "must encode exactly 32 bytes"))
}

/// Zeroizes the `MaterialHex` strings of an exported document.
fn clear_material(doc: &mut Value) {
    let Some(keys) = doc.get_mut("Keys").and_then(Value::as_array_mut) else {
        return;
    };
    for k in keys {
        let Some(versions) = k.get_mut("Versions").and_then(Value::as_array_mut) else {
            continue;
        };
        for v in versions {
            if let Some(Value::String(s)) = v.get_mut("MaterialHex") {
                s.zeroize();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]).as_str(), "00abff");
        assert_eq!(
            decode_hex("00abFF").as_deref().map(Vec::as_slice),
            Some(&[0, 0xab, 0xff][..])
        );
        assert!(decode_hex("abc").is_none());
        assert!(decode_hex("zz").is_none());
        assert!(decode_hex("é1").is_none());
    }
}
