//! The stored records of the service and the store's layout.
//!
//! Namespaces (see [`crate::store`]):
//!
//! | ns | id | value |
//! | --- | --- | --- |
//! | `head` | `store-id` | the store's random 16-byte id (sealed without a store id) |
//! | `head` | `head` | the head: commit sequence, record count, digest ([`crate::store::sealed`]) |
//! | `meta` | `format` | store format version, u32 big-endian |
//! | `meta` | `counters` | next key sequence u64 BE, key count u64 BE |
//! | `key` | KeyId | `0x01` + JSON [`KeyRecord`] (no secrets) |
//! | `key-order` | sequence u64 BE | KeyId: creation order, for paging |
//! | `deletion` | DeleteDate i64 BE (sign-flipped) + KeyId | empty: due deletions |
//! | `material` | KeyId `/` KeyVersionId | the key's generation u64 BE + the v1-sealed 32-byte material |
//! | `meta` | `import-secret` | sealed 32 random bytes: BYOK token and fingerprint keys |
//! | `import-token` | KeyId `/` token id hex `-` expiry hex | sealed PKCS#8 RSA private key |
//! | `alias` | AliasName | `0x01` + JSON alias record (name, KeyId, alias sequence) |
//! | `alias-order` | alias sequence u64 BE | the same record: alias creation order, for paging |
//! | `alias-by-key` | KeyId `/` alias sequence u64 BE | AliasName |
//! | `meta` | `alias-counters` | next alias sequence u64 BE, alias count u64 BE |
//! | `tag` | KeyId `/` TagKey | TagValue (UTF-8) |
//! | `secret` | SecretName | `0x01` + JSON secret record (metadata, versions, stages, tags; no value) |
//! | `secret-order` | secret sequence u64 BE | SecretName: creation order, for paging |
//! | `secret-value` | SecretName `0x00` VersionId | the value, sealed under the secret's CMK (a blob as Encrypt makes) |
//! | `secret-deletion` | PlannedDeleteTime i64 BE (sign-flipped) + SecretName | empty: due deletions |
//! | `meta` | `secret-counters` | next secret sequence u64 BE |
//! | `meta` | `secrets-default-key` | KeyId of the secrets manager's default CMK |
//!
//! Every namespace whose ids start with a KeyId is listed in
//! [`PER_KEY_NAMESPACES`], so purging a key removes all of its records.
//!
//! Every value in the table is what the library writes; the store holds it
//! sealed (`crate::store::sealed`), `head` records included. Every namespace
//! is listed in [`NAMESPACES`]. The first store format (1) held these values
//! in clear, except material, tokens and the import secret, and had a
//! `meta/root-check` record instead of `head`; it is migrated on open.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::types::{KeySpec, KeyState, KeyUsage, Origin, ProtectionLevel};

/// The store format this library writes and reads.
pub(crate) const STORE_FORMAT: u32 = 2;
/// The first store format: records in clear; migrated on open.
pub(crate) const FIRST_FORMAT: u32 = 1;
/// The key record format.
const KEY_RECORD_V1: u8 = 1;

pub(crate) const NS_META: &str = "meta";
pub(crate) const NS_KEY: &str = "key";
pub(crate) const NS_KEY_ORDER: &str = "key-order";
pub(crate) const NS_DELETION: &str = "deletion";
pub(crate) const NS_MATERIAL: &str = "material";
/// The store id and the head: not covered by the digest.
pub(crate) const NS_HEAD: &str = "head";
pub(crate) const HEAD_STORE_ID: &[u8] = b"store-id";
pub(crate) const HEAD_HEAD: &[u8] = b"head";

/// Every namespace the library writes, `head` excepted. A backend that can
/// list all of its records (sled, memory) need not rely on this list.
pub(crate) const NAMESPACES: &[&str] = &[
    NS_META,
    NS_KEY,
    NS_KEY_ORDER,
    NS_DELETION,
    NS_MATERIAL,
    "import-token",
    "alias",
    "alias-order",
    "alias-by-key",
    "tag",
    NS_SECRET,
    NS_SECRET_ORDER,
    NS_SECRET_VALUE,
    NS_SECRET_DELETION,
];

/// The namespace named `ns`, as the static string a [`crate::store::Batch`]
/// takes; `None` for one the library does not know.
pub(crate) fn static_ns(ns: &str) -> Option<&'static str> {
    if ns == NS_HEAD {
        return Some(NS_HEAD);
    }
    NAMESPACES.iter().copied().find(|n| *n == ns)
}

pub(crate) const NS_SECRET: &str = "secret";
pub(crate) const NS_SECRET_ORDER: &str = "secret-order";
pub(crate) const NS_SECRET_VALUE: &str = "secret-value";
pub(crate) const NS_SECRET_DELETION: &str = "secret-deletion";
pub(crate) const META_SECRET_COUNTERS: &[u8] = b"secret-counters";
pub(crate) const META_SECRETS_DEFAULT_KEY: &[u8] = b"secrets-default-key";

pub(crate) const META_FORMAT: &[u8] = b"format";
/// The first format's root key check (a v1-sealed constant).
pub(crate) const META_ROOT_CHECK: &[u8] = b"root-check";
pub(crate) const META_COUNTERS: &[u8] = b"counters";
pub(crate) const ROOT_CHECK_PLAINTEXT: &[u8] = b"localkms root key check v1";

/// Namespaces whose record ids begin with `KeyId` + `/`: purged with the key.
pub(crate) const PER_KEY_NAMESPACES: &[&str] =
    &[NS_MATERIAL, "tag", "alias-by-key", "import-token"];

/// One version of a key's material. The material itself is in `material`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct VersionMeta {
    pub id: String,
    pub created: i64,
}

/// Everything about a key except its material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeyRecord {
    pub key_id: String,
    /// Position in creation order (`key-order`).
    pub seq: u64,
    pub created: i64,
    pub description: String,
    pub state: KeyState,
    pub usage: KeyUsage,
    pub spec: KeySpec,
    pub origin: Origin,
    pub protection: ProtectionLevel,
    #[serde(default)]
    pub delete_date: Option<i64>,
    #[serde(default)]
    pub material_expire: Option<i64>,
    /// Versions in creation order; the last is primary.
    #[serde(default)]
    pub versions: Vec<VersionMeta>,
    #[serde(default)]
    pub automatic_rotation: bool,
    /// Seconds between automatic rotations.
    #[serde(default)]
    pub rotation_interval: Option<u64>,
    #[serde(default)]
    pub last_rotation: Option<i64>,
    #[serde(default)]
    pub next_rotation: Option<i64>,
    /// Keyed fingerprint of imported material (hex), never the material.
    #[serde(default)]
    pub material_fingerprint: Option<String>,
    /// True once DeleteKeyMaterial or material expiry removed the material
    /// of `versions`, until a re-import of the same material restores it.
    #[serde(default)]
    pub material_deleted: bool,
    /// Deletion protection (SetDeletionProtection): its description when
    /// enabled, `None` when disabled. Left out of the record when `None`,
    /// so records written before it existed encode as they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_protection: Option<String>,
    /// The key policy (CreateKey `Policy`, SetKeyPolicy), stored and
    /// returned, not enforced; `None` is the default policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Bumped each time the key's material is deleted. Every material
    /// record carries the generation it was written in, and one of another
    /// generation (an old copy put back) is refused.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generation: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl KeyRecord {
    pub(crate) fn primary(&self) -> Option<&VersionMeta> {
        self.versions.last()
    }

    /// True when the key has usable material now.
    pub(crate) fn has_material(&self) -> bool {
        !self.versions.is_empty() && !self.material_deleted
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        let mut out = vec![KEY_RECORD_V1];
        serde_json::to_writer(&mut out, self).map_err(|_| Error::InternalFailure)?;
        Ok(out)
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        match bytes.split_first() {
            Some((&KEY_RECORD_V1, json)) => serde_json::from_slice(json)
                .map_err(|e| Error::CorruptStore(format!("key record does not parse: {e}").into())),
            Some((v, _)) => Err(Error::CorruptStore(
                format!("key record has unknown format {v}").into(),
            )),
            None => Err(Error::CorruptStore("empty key record".into())),
        }
    }
}

pub(crate) fn material_id(key_id: &str, version_id: &str) -> Vec<u8> {
    format!("{key_id}/{version_id}").into_bytes()
}

/// Orders signed times as unsigned big-endian bytes.
pub(crate) fn time_bytes(t: i64) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

pub(crate) fn time_from_bytes(b: &[u8]) -> Option<i64> {
    let arr: [u8; 8] = b.get(..8)?.try_into().ok()?;
    Some((u64::from_be_bytes(arr) ^ (1 << 63)) as i64)
}

pub(crate) fn deletion_id(delete_date: i64, key_id: &str) -> Vec<u8> {
    let mut id = time_bytes(delete_date).to_vec();
    id.extend_from_slice(key_id.as_bytes());
    id
}

/// The store's counters, kept in `meta/counters`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    pub next_seq: u64,
    pub key_count: u64,
}

impl Counters {
    pub(crate) fn encode(self) -> Vec<u8> {
        [self.next_seq.to_be_bytes(), self.key_count.to_be_bytes()].concat()
    }

    pub(crate) fn decode(b: &[u8]) -> Result<Self> {
        if b.len() != 16 {
            return Err(Error::CorruptStore(
                "counters record has the wrong length".into(),
            ));
        }
        let (a, c) = b.split_at(8);
        Ok(Self {
            next_seq: u64::from_be_bytes(a.try_into().map_err(|_| Error::InternalFailure)?),
            key_count: u64::from_be_bytes(c.try_into().map_err(|_| Error::InternalFailure)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_bytes_sort_like_times() {
        let times = [i64::MIN, -5, -1, 0, 1, 1_700_000_000, i64::MAX];
        for w in times.windows(2) {
            assert!(time_bytes(w[0]) < time_bytes(w[1]));
        }
        for t in times {
            assert_eq!(time_from_bytes(&time_bytes(t)), Some(t));
        }
    }

    /// The committed v1 key record decodes to these values, and encodes back
    /// to the same bytes: the stored format is pinned.
    #[test]
    fn key_record_v1_golden() {
        let bytes = include_bytes!("../../tests/data/key-record-v1.bin");
        let r = KeyRecord::decode(bytes).expect("decode golden record");
        assert_eq!(r.key_id, "11111111-1111-4111-8111-111111111111");
        assert_eq!((r.seq, r.created), (7, 1_767_225_600));
        assert_eq!(r.state, KeyState::PendingDeletion);
        assert_eq!(r.protection, ProtectionLevel::Hsm);
        assert_eq!(r.delete_date, Some(1_767_830_400));
        assert_eq!(r.versions[0].id, "22222222-2222-4222-8222-222222222222");
        assert!(r.automatic_rotation);
        assert_eq!(r.rotation_interval, Some(604_800));
        assert_eq!(r.encode().expect("encode"), bytes.to_vec());
        // A record from before later optional fields existed still decodes.
        let minimal = br#"{"key_id":"k","seq":0,"created":0,"description":"","state":"Enabled","usage":"ENCRYPT/DECRYPT","spec":"Aliyun_AES_256","origin":"EXTERNAL","protection":"SOFTWARE"}"#;
        let mut old = vec![1u8];
        old.extend_from_slice(minimal);
        let r = KeyRecord::decode(&old).expect("decode minimal record");
        assert!(r.versions.is_empty() && r.delete_date.is_none());
    }

    #[test]
    fn key_record_rejects_unknown_format() {
        assert_eq!(
            KeyRecord::decode(&[2, b'{', b'}']).unwrap_err().code(),
            "InternalFailure"
        );
        assert!(KeyRecord::decode(&[]).is_err());
        assert!(KeyRecord::decode(&[1, b'{']).is_err());
    }
}
