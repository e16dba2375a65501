//! Aliases: names that point at keys. CreateAlias, UpdateAlias, DeleteAlias,
//! ListAliases and ListAliasesByKeyId (SPEC sections 1, 2 and 4), and the
//! alias half of key-id resolution ([`lookup_alias`], used only by
//! [`Kms::resolve_key_id`]).
//!
//! None of these operations takes an alias as its `KeyId`: SPEC section 4
//! marks none of them "alias ok", so CreateAlias, UpdateAlias and
//! ListAliasesByKeyId accept a key id or key ARN and answer `Unsupported.Alias`
//! to an alias.
//!
//! Checks run parameter by parameter in the order of SPEC section 4: first the
//! form of every parameter (`AliasName`, then `KeyId`), then what they name
//! (the alias, then the key and its state).
//!
//! An alias never points at a missing key: aliases are written under the
//! writer lock only after the key is read live, and a key's aliases are
//! deleted in the same batch as the key ([`purge_key_aliases`]). An alias of a
//! key past its `DeleteDate` but not purged yet is never reported: reading it
//! purges the key first.
//!
//! Store layout:
//!
//! | ns | id | value |
//! | --- | --- | --- |
//! | `alias` | AliasName | `0x01` + JSON alias record (name, KeyId, sequence) |
//! | `alias-order` | alias sequence u64 BE | the same record: creation order, for paging |
//! | `alias-by-key` | KeyId `/` alias sequence u64 BE | AliasName |
//! | `meta` | `alias-counters` | next alias sequence u64 BE, alias count u64 BE |

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::shorten;
use crate::error::{Error, Rejection, Result};
use crate::kms::{Kms, Writer};
use crate::paging::{Page, Paging};
use crate::store::record::NS_META;
use crate::store::{Batch, Scan};
use crate::types::KeyState;

pub(crate) const NS_ALIAS: &str = "alias";
pub(crate) const NS_ALIAS_ORDER: &str = "alias-order";
/// Listed in [`crate::store::record::PER_KEY_NAMESPACES`]: purged with its key.
pub(crate) const NS_ALIAS_BY_KEY: &str = "alias-by-key";
const META_ALIAS_COUNTERS: &[u8] = b"alias-counters";
const ALIAS_RECORD_V1: u8 = 1;

/// A validated `AliasName`: `alias/` followed by 1..=255 ASCII letters,
/// digits, `_`, `-` or `/`, not starting with the reserved `alias/acs`
/// (SPEC section 4). Case-sensitive.
///
/// ```
/// use localkms::AliasName;
/// assert_eq!(AliasName::new("alias/app-db")?.as_str(), "alias/app-db");
/// assert!(AliasName::new("app-db").is_err());
/// assert!(AliasName::new("alias/acs/kms").is_err());
/// # Ok::<(), localkms::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AliasName(String);

impl AliasName {
    /// Every alias name starts with this.
    pub const PREFIX: &'static str = "alias/";
    /// Names starting with this are reserved for the service.
    pub const RESERVED_PREFIX: &'static str = "alias/acs";
    /// The longest name after the prefix, in characters.
    pub const MAX_CHARS: usize = 255;

    /// Validates an alias name.
    ///
    /// # Errors
    /// `MissingParameter` when empty, `InvalidParameter` otherwise; both name
    /// `AliasName`.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        check_alias_name(&name)?;
        Ok(Self(name))
    }

    /// The name, `alias/` included.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_alias_name(name: &str) -> Result<()> {
    const PARAM: &str = "AliasName";
    if name.is_empty() {
        return Err(Error::MissingParameter(PARAM));
    }
    let Some(rest) = name.strip_prefix(AliasName::PREFIX) else {
        return Err(Error::invalid(PARAM, "must start with alias/"));
    };
    if !rest
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'/'))
    {
        return Err(Error::invalid(
            PARAM,
            "may contain only letters, digits, _, - and / after alias/",
        ));
    }
    // Every allowed character is ASCII, so bytes count characters here.
    if rest.is_empty() || rest.len() > AliasName::MAX_CHARS {
        return Err(Error::invalid(
            PARAM,
            "must have 1 to 255 characters after alias/",
        ));
    }
    if name.starts_with(AliasName::RESERVED_PREFIX) {
        return Err(Error::invalid(PARAM, "may not start with alias/acs"));
    }
    Ok(())
}

impl fmt::Display for AliasName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for AliasName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl AsRef<str> for AliasName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// One entry of ListAliases and ListAliasesByKeyId.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AliasEntry {
    /// `alias/{name}`.
    pub alias_name: String,
    /// `acs:kms:{RegionId}:{AccountId}:alias/{name}`.
    pub alias_arn: String,
    /// The key the alias points at.
    pub key_id: String,
}

/// An alias as stored in `alias` and `alias-order`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct AliasRecord {
    name: String,
    key_id: String,
    /// Position in alias creation order; kept by UpdateAlias.
    seq: u64,
}

impl AliasRecord {
    fn encode(&self) -> Result<Vec<u8>> {
        let mut out = vec![ALIAS_RECORD_V1];
        serde_json::to_writer(&mut out, self).map_err(|_| Error::InternalFailure)?;
        Ok(out)
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        match bytes.split_first() {
            Some((&ALIAS_RECORD_V1, json)) => serde_json::from_slice(json).map_err(|e| {
                Error::CorruptStore(format!("alias record does not parse: {e}").into())
            }),
            Some((v, _)) => Err(Error::CorruptStore(
                format!("alias record has unknown format {v}").into(),
            )),
            None => Err(Error::CorruptStore("empty alias record".into())),
        }
    }

    fn by_key_id(&self) -> Vec<u8> {
        by_key_id(&self.key_id, self.seq)
    }

    /// Adds the three records of this alias to `batch`.
    fn put(&self, batch: &mut Batch) -> Result<()> {
        let bytes = self.encode()?;
        batch.put(NS_ALIAS, self.name.as_bytes().to_vec(), bytes.clone());
        batch.put(NS_ALIAS_ORDER, self.seq.to_be_bytes().to_vec(), bytes);
        batch.put(
            NS_ALIAS_BY_KEY,
            self.by_key_id(),
            self.name.as_bytes().to_vec(),
        );
        Ok(())
    }
}

fn by_key_id(key_id: &str, seq: u64) -> Vec<u8> {
    let mut id = format!("{key_id}/").into_bytes();
    id.extend_from_slice(&seq.to_be_bytes());
    id
}

/// The alias counters in `meta/alias-counters` (absent: both zero).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct AliasCounters {
    next_seq: u64,
    count: u64,
}

impl AliasCounters {
    fn load(kms: &Kms) -> Result<Self> {
        let Some(b) = kms.store.get(NS_META, META_ALIAS_COUNTERS)? else {
            return Ok(Self::default());
        };
        let bad = || Error::CorruptStore("alias counters record has the wrong length".into());
        let arr: [u8; 16] = b.as_slice().try_into().map_err(|_| bad())?;
        let (a, c) = arr.split_at(8);
        Ok(Self {
            next_seq: u64::from_be_bytes(a.try_into().map_err(|_| bad())?),
            count: u64::from_be_bytes(c.try_into().map_err(|_| bad())?),
        })
    }

    fn put(self, batch: &mut Batch) {
        let bytes = [self.next_seq.to_be_bytes(), self.count.to_be_bytes()].concat();
        batch.put(NS_META, META_ALIAS_COUNTERS, bytes);
    }
}

fn read_alias(kms: &Kms, name: &str) -> Result<Option<AliasRecord>> {
    kms.store
        .get(NS_ALIAS, name.as_bytes())?
        .map(|b| AliasRecord::decode(&b))
        .transpose()
}

/// The alias `name` if it exists and its key is live (under the writer lock).
/// An alias of a key past its `DeleteDate` is purged here with its key.
fn live_alias(kms: &Kms, w: &mut Writer<'_>, name: &str) -> Result<Option<AliasRecord>> {
    let Some(rec) = read_alias(kms, name)? else {
        return Ok(None);
    };
    match w.key(&rec.key_id) {
        Ok(_) => Ok(Some(rec)),
        Err(Error::KeyNotFound(_)) => {
            if read_alias(kms, name)?.is_some() {
                return Err(Error::CorruptStore(
                    format!("alias {} points at a missing key", shorten(name)).into(),
                ));
            }
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Resolves `alias/{name}` to the id of a live key. Only
/// [`Kms::resolve_key_id`] calls this. It may take the writer lock (to load or
/// purge the key), so it must never run under [`Kms::writer`].
pub(crate) fn lookup_alias(kms: &Kms, alias: &str) -> Result<String> {
    let not_found = || Error::AliasNotFound(shorten(alias));
    let rec = read_alias(kms, alias)?.ok_or_else(not_found)?;
    match kms.entry(&rec.key_id) {
        Ok(_) => Ok(rec.key_id),
        // Deleted at its DeleteDate just now: the alias went with it.
        Err(Error::KeyNotFound(_)) => Err(not_found()),
        Err(e) => Err(e),
    }
}

/// Adds the removal of every alias of `key_id` to `batch` (the caller holds
/// the writer lock and deletes `alias-by-key` itself, with the other
/// per-key namespaces).
pub(crate) fn purge_key_aliases(kms: &Kms, batch: &mut Batch, key_id: &str) -> Result<()> {
    let prefix = format!("{key_id}/");
    let owned = kms
        .store
        .scan(NS_ALIAS_BY_KEY, Scan::prefix(prefix.as_bytes()))?;
    if owned.is_empty() {
        return Ok(());
    }
    for (id, name) in &owned {
        let seq = id.get(prefix.len()..).unwrap_or_default();
        batch.delete(NS_ALIAS, name.clone());
        batch.delete(NS_ALIAS_ORDER, seq.to_vec());
        batch.delete(NS_ALIAS_BY_KEY, id.clone());
    }
    let mut counters = AliasCounters::load(kms)?;
    counters.count = counters.count.saturating_sub(owned.len() as u64);
    counters.put(batch);
    Ok(())
}

impl Kms {
    fn alias_entry(&self, rec: AliasRecord) -> AliasEntry {
        AliasEntry {
            alias_arn: format!(
                "acs:kms:{}:{}:{}",
                self.config.region_id, self.config.account_id, rec.name
            ),
            alias_name: rec.name,
            key_id: rec.key_id,
        }
    }

    /// CreateAlias: a new alias for a key. Allowed in every key state but
    /// `PendingDeletion` (SPEC section 2).
    ///
    /// ```
    /// let kms = localkms::Kms::in_memory()?;
    /// let key = kms.create_key(&Default::default())?;
    /// kms.create_alias("alias/app", &key.key_id)?;
    /// assert_eq!(kms.describe_key("alias/app")?.key_id, key.key_id);
    /// # Ok::<(), localkms::Error>(())
    /// ```
    ///
    /// # Errors
    /// `MissingParameter`/`InvalidParameter` (AliasName, KeyId),
    /// `Unsupported.Alias` (KeyId), `AliasAlreadyExists`,
    /// `Forbidden.KeyNotFound`, `Rejected.StateModifiedFailed`.
    pub fn create_alias(&self, alias_name: &str, key_id: &str) -> Result<()> {
        self.operation("CreateAlias", key_id, || {
            self.create_alias_op(alias_name, key_id)
        })
    }

    fn create_alias_op(&self, alias_name: &str, key_id: &str) -> Result<()> {
        let name = AliasName::new(alias_name)?;
        let id = self.resolve_key_id(key_id, "KeyId", false)?;
        let mut w = self.writer()?;
        if live_alias(self, &mut w, name.as_str())?.is_some() {
            return Err(Error::AliasAlreadyExists(name.0));
        }
        let key = w.key(&id)?;
        if key.state == KeyState::PendingDeletion {
            return Err(Error::rejected(
                Rejection::StateModifiedFailed,
                &id,
                key.state,
            ));
        }
        // Read after every purge above, which may have changed them.
        let mut counters = AliasCounters::load(self)?;
        let rec = AliasRecord {
            name: name.0,
            key_id: id,
            seq: counters.next_seq,
        };
        counters.next_seq += 1;
        counters.count += 1;
        let mut batch = Batch::new();
        rec.put(&mut batch)?;
        counters.put(&mut batch);
        w.commit(batch)
    }

    /// UpdateAlias: points an existing alias at another key. Only the target
    /// key's state matters (SPEC section 2). The alias keeps its place in
    /// creation order.
    ///
    /// # Errors
    /// `MissingParameter`/`InvalidParameter` (AliasName, KeyId),
    /// `Unsupported.Alias` (KeyId), `Forbidden.AliasNotFound`,
    /// `Forbidden.KeyNotFound`, `Rejected.PendingDeletion` when the target is
    /// pending deletion.
    pub fn update_alias(&self, alias_name: &str, key_id: &str) -> Result<()> {
        self.operation("UpdateAlias", key_id, || {
            self.update_alias_op(alias_name, key_id)
        })
    }

    fn update_alias_op(&self, alias_name: &str, key_id: &str) -> Result<()> {
        let name = AliasName::new(alias_name)?;
        let id = self.resolve_key_id(key_id, "KeyId", false)?;
        let mut w = self.writer()?;
        let mut rec = live_alias(self, &mut w, name.as_str())?
            .ok_or_else(|| Error::AliasNotFound(name.0.clone()))?;
        let target = w.key(&id)?;
        if target.state == KeyState::PendingDeletion {
            return Err(Error::rejected(
                Rejection::PendingDeletion,
                &id,
                target.state,
            ));
        }
        if rec.key_id == id {
            return Ok(());
        }
        let mut batch = Batch::new();
        batch.delete(NS_ALIAS_BY_KEY, rec.by_key_id());
        rec.key_id = id;
        rec.put(&mut batch)?;
        w.commit(batch)
    }

    /// DeleteAlias. Allowed in every key state.
    ///
    /// # Errors
    /// `MissingParameter`/`InvalidParameter` (AliasName),
    /// `Forbidden.AliasNotFound`.
    pub fn delete_alias(&self, alias_name: &str) -> Result<()> {
        self.operation("DeleteAlias", "", || self.delete_alias_op(alias_name))
    }

    fn delete_alias_op(&self, alias_name: &str) -> Result<()> {
        let name = AliasName::new(alias_name)?;
        let mut w = self.writer()?;
        let rec = live_alias(self, &mut w, name.as_str())?
            .ok_or_else(|| Error::AliasNotFound(name.0.clone()))?;
        let mut counters = AliasCounters::load(self)?;
        counters.count = counters.count.saturating_sub(1);
        let mut batch = Batch::new();
        batch.delete(NS_ALIAS, rec.name.as_bytes().to_vec());
        batch.delete(NS_ALIAS_ORDER, rec.seq.to_be_bytes().to_vec());
        batch.delete(NS_ALIAS_BY_KEY, rec.by_key_id());
        counters.put(&mut batch);
        w.commit(batch)
    }

    /// ListAliases: every alias, in creation order. Keys past their
    /// `DeleteDate` are purged first, so their aliases are never listed.
    ///
    /// # Errors
    /// A storage failure.
    pub fn list_aliases(&self, paging: Paging) -> Result<Page<AliasEntry>> {
        self.operation("ListAliases", "", || self.list_aliases_op(paging))
    }

    fn list_aliases_op(&self, paging: Paging) -> Result<Page<AliasEntry>> {
        self.purge_expired()?;
        let total = AliasCounters::load(self)?.count;
        let items = paging
            .scan(self.store.as_ref(), NS_ALIAS_ORDER, b"")?
            .into_iter()
            .map(|(_, v)| Ok(self.alias_entry(AliasRecord::decode(&v)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(paging.page(items, total))
    }

    /// ListAliasesByKeyId: the aliases of one key, in alias creation order.
    ///
    /// # Errors
    /// `MissingParameter` (KeyId), `Unsupported.Alias`, `Forbidden.KeyNotFound`.
    pub fn list_aliases_by_key_id(&self, key_id: &str, paging: Paging) -> Result<Page<AliasEntry>> {
        self.operation("ListAliasesByKeyId", key_id, || {
            self.list_aliases_by_key_id_op(key_id, paging)
        })
    }

    fn list_aliases_by_key_id_op(&self, key_id: &str, paging: Paging) -> Result<Page<AliasEntry>> {
        let id = self.resolve_key_id(key_id, "KeyId", false)?;
        self.entry(&id)?;
        let prefix = format!("{id}/");
        let items = self
            .store
            .scan(NS_ALIAS_BY_KEY, Scan::prefix(prefix.as_bytes()))?
            .into_iter()
            .map(|(_, name)| {
                let alias_name = String::from_utf8(name).map_err(|_| {
                    Error::CorruptStore("alias-by-key entry is not an alias name".into())
                })?;
                Ok(self.alias_entry(AliasRecord {
                    name: alias_name,
                    key_id: id.clone(),
                    seq: 0,
                }))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(paging.slice(items))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::PER_KEY_NAMESPACES;

    #[test]
    fn alias_names() {
        let ok = [
            "alias/a".to_owned(),
            "alias/Z9_-/x".to_owned(),
            "alias//".to_owned(),
            "alias/ac".to_owned(),
            "alias/ACS".to_owned(),
            format!("alias/{}", "a".repeat(255)),
        ];
        for n in ok {
            assert_eq!(AliasName::new(n.clone()).map(|a| a.0), Ok(n));
        }
        assert_eq!(
            AliasName::new("").unwrap_err(),
            Error::MissingParameter("AliasName")
        );
        let bad = [
            "alias/".to_owned(),
            "alias".to_owned(),
            "Alias/a".to_owned(),
            "a".to_owned(),
            "alias/a b".to_owned(),
            "alias/a.b".to_owned(),
            "alias/é".to_owned(),
            "alias/acs".to_owned(),
            "alias/acs/x".to_owned(),
            "alias/acsx".to_owned(),
            format!("alias/{}", "a".repeat(256)),
            "acs:kms:cn-hangzhou:1234567890123456:alias/a".to_owned(),
        ];
        for n in bad {
            let e = AliasName::new(n.clone()).unwrap_err();
            assert_eq!(e.code(), "InvalidParameter", "{n}");
            assert!(e.to_string().contains("AliasName"), "{n}: {e}");
        }
        // The reason names the actual problem.
        let wide = format!("alias/{}", "\u{e9}".repeat(200));
        assert!(
            AliasName::new(wide)
                .unwrap_err()
                .to_string()
                .contains("only letters")
        );
        let long = format!("alias/{}", "a".repeat(256));
        assert!(
            AliasName::new(long)
                .unwrap_err()
                .to_string()
                .contains("1 to 255")
        );
    }

    #[test]
    fn alias_by_key_is_purged_with_the_key() {
        assert!(PER_KEY_NAMESPACES.contains(&NS_ALIAS_BY_KEY));
        assert!(by_key_id("k", 1).starts_with(b"k/"));
    }

    #[test]
    fn alias_record_rejects_unknown_format() {
        let r = AliasRecord {
            name: "alias/a".into(),
            key_id: "k".into(),
            seq: 7,
        };
        assert_eq!(AliasRecord::decode(&r.encode().unwrap()), Ok(r));
        assert!(AliasRecord::decode(&[2, b'{', b'}']).is_err());
        assert!(AliasRecord::decode(&[]).is_err());
    }
}
