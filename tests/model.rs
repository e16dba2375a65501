//! A model-based property test of the key lifecycle, aliases and tags.
//!
//! Random sequences of operations run against the library and against a plain
//! in-memory model (a `Vec` of keys in creation order, a `Vec` of aliases in
//! creation order, a `BTreeMap` of tags per key); both must give the same
//! response, or the same error code, at every step. The sequences move the
//! clock past deletion dates and reopen the store between steps (the same
//! store, root key and clock): most cases use a shared in-memory keystore,
//! a fraction a sled directory.
//!
//! The model is written from SPEC sections 1 to 4, independently of the
//! library: its own validation, its own key-id resolution, and deletion at
//! `DeleteDate` applied eagerly before every step (the library applies it
//! lazily). Key ids and key version ids are random, so the model learns them
//! from CreateKey's responses.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

mod sled_reopen;

use localkms::store::{Batch, Keystore, MemoryKeystore, Record, Scan, StoreError};
use localkms::{
    AliasEntry, CreateKeyRequest, Durability, Error, KeyListEntry, KeyMetadata, KeySpec, KeyState,
    KeyUsage, Kms, ManualClock, Origin, Page, Paging, ProtectionLevel, ResourceTag,
    format_timestamp, parse_tag_keys, parse_tags,
};

const T0: i64 = 1_700_000_000;
const DAY: i64 = 86_400;
const ROOT: [u8; 32] = [42; 32];
const REGION: &str = "cn-hangzhou";
const ACCOUNT: &str = "1234567890123456";
const MAX_KEYS: usize = 6;
const MISSING_KEY: &str = "00000000-0000-4000-8000-000000000000";

// ---- input pools -----------------------------------------------------------

/// Alias names: the first five are valid.
const ALIASES: [&str; 10] = [
    "alias/a",
    "alias/b",
    "alias/c/d",
    "alias/E-1_x",
    "alias/ACS",
    "",
    "alias/",
    "alias/acs/x",
    "app",
    "alias/a.b",
];

/// Tag keys: the first twelve are valid.
fn tag_key_pool() -> Vec<String> {
    let mut v: Vec<String> = (0..11).map(|i| format!("k{i}")).collect();
    v.push("K".repeat(128));
    v.extend(
        ["acs:x", "aliyun-x", "a b", ""]
            .iter()
            .map(|s| (*s).to_owned()),
    );
    v.push("K".repeat(129));
    v
}

/// Tag values: the first five are valid.
fn tag_value_pool() -> Vec<String> {
    vec![
        String::new(),
        "v".into(),
        "a b".into(),
        "x@y.z+1=2:3/4_5-6".into(),
        "V".repeat(256),
        "a;b".into(),
        "V".repeat(257),
        "\u{e9}".into(),
    ]
}

// ---- the steps -------------------------------------------------------------

#[derive(Debug, Clone)]
enum KeyRef {
    Known(usize),
    KnownArn(usize),
    ForeignArn(usize),
    Alias(usize),
    AliasArn(usize),
    Missing,
    Garbage,
    Empty,
}

#[derive(Debug, Clone)]
struct TagSpec {
    key: usize,
    value: Option<usize>,
}

#[derive(Debug, Clone)]
enum Step {
    CreateKey {
        external: bool,
        tags: Vec<TagSpec>,
    },
    DescribeKey(KeyRef),
    ListKeys(u32, u32),
    EnableKey(KeyRef),
    DisableKey(KeyRef),
    ScheduleKeyDeletion(KeyRef, u32),
    CancelKeyDeletion(KeyRef),
    CreateAlias(usize, KeyRef),
    UpdateAlias(usize, KeyRef),
    DeleteAlias(usize),
    ListAliases(u32, u32),
    ListAliasesByKeyId(KeyRef, u32, u32),
    TagResource(KeyRef, Vec<TagSpec>),
    UntagResource(KeyRef, Vec<usize>),
    ListResourceTags(KeyRef),
    Advance(i64),
    /// Moves the clock to the earliest pending `DeleteDate`, plus this offset
    /// (-1: just before; 0: exactly when the key goes).
    AdvanceToDeletion(i64),
    Reopen,
}

fn key_ref() -> impl Strategy<Value = KeyRef> {
    prop_oneof![
        14 => (0..8usize).prop_map(KeyRef::Known),
        2 => (0..8usize).prop_map(KeyRef::KnownArn),
        1 => (0..8usize).prop_map(KeyRef::ForeignArn),
        3 => alias_idx().prop_map(KeyRef::Alias),
        1 => alias_idx().prop_map(KeyRef::AliasArn),
        1 => Just(KeyRef::Missing),
        1 => Just(KeyRef::Garbage),
        1 => Just(KeyRef::Empty),
    ]
}

fn alias_idx() -> impl Strategy<Value = usize> {
    prop_oneof![9 => 0..5usize, 1 => 5..10usize]
}

fn tag_spec() -> impl Strategy<Value = TagSpec> {
    let key = prop_oneof![15 => 0..12usize, 1 => 12..17usize];
    let value = prop_oneof![
        2 => Just(None),
        15 => (0..5usize).prop_map(Some),
        1 => (5..8usize).prop_map(Some),
    ];
    (key, value).prop_map(|(key, value)| TagSpec { key, value })
}

/// Valid tags only: long lists of these reach the tag limit.
fn valid_tag_spec() -> impl Strategy<Value = TagSpec> {
    (0..12usize, prop::option::of(0..5usize)).prop_map(|(key, value)| TagSpec { key, value })
}

fn tag_list(usual: usize) -> impl Strategy<Value = Vec<TagSpec>> {
    prop_oneof![
        4 => prop::collection::vec(tag_spec(), 0..=usual),
        1 => prop::collection::vec(valid_tag_spec(), 8..=12),
    ]
}

fn paging() -> impl Strategy<Value = (u32, u32)> {
    (
        prop_oneof![4 => Just(1u32), 1 => 2..=4u32],
        prop_oneof![Just(1u32), Just(2), Just(3), Just(10)],
    )
}

fn step() -> impl Strategy<Value = Step> {
    let days = prop_oneof![8 => 7..=30u32, 1 => Just(6u32), 1 => Just(31u32), 1 => Just(0u32)];
    let advance = prop_oneof![
        2 => Just(1i64),
        2 => Just(3_600),
        2 => Just(DAY),
        1 => Just(7 * DAY),
        1 => 6 * DAY..=31 * DAY,
    ];
    prop_oneof![
        5 => (prop::bool::weighted(0.3), tag_list(3))
            .prop_map(|(external, tags)| Step::CreateKey { external, tags }),
        3 => key_ref().prop_map(Step::DescribeKey),
        1 => paging().prop_map(|(n, s)| Step::ListKeys(n, s)),
        2 => key_ref().prop_map(Step::EnableKey),
        2 => key_ref().prop_map(Step::DisableKey),
        2 => (key_ref(), days).prop_map(|(k, d)| Step::ScheduleKeyDeletion(k, d)),
        2 => key_ref().prop_map(Step::CancelKeyDeletion),
        5 => (alias_idx(), key_ref()).prop_map(|(a, k)| Step::CreateAlias(a, k)),
        3 => (alias_idx(), key_ref()).prop_map(|(a, k)| Step::UpdateAlias(a, k)),
        1 => alias_idx().prop_map(Step::DeleteAlias),
        2 => paging().prop_map(|(n, s)| Step::ListAliases(n, s)),
        2 => (key_ref(), paging()).prop_map(|(k, (n, s))| Step::ListAliasesByKeyId(k, n, s)),
        3 => (key_ref(), tag_list(4)).prop_map(|(k, t)| Step::TagResource(k, t)),
        2 => (key_ref(), prop::collection::vec(prop_oneof![15 => 0..12usize, 1 => 12..17usize], 0..=3))
            .prop_map(|(k, t)| Step::UntagResource(k, t)),
        2 => key_ref().prop_map(Step::ListResourceTags),
        2 => advance.prop_map(Step::Advance),
        2 => prop_oneof![Just(-1i64), Just(0), Just(1)].prop_map(Step::AdvanceToDeletion),
        1 => Just(Step::Reopen),
    ]
}

// ---- the model -------------------------------------------------------------

#[derive(Debug, Clone)]
struct MKey {
    id: String,
    primary_version: String,
    created: i64,
    external: bool,
    state: KeyState,
    delete_date: Option<i64>,
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct Model {
    now: i64,
    /// Live keys, in creation order.
    keys: Vec<MKey>,
    /// Aliases (name, key id), in creation order.
    aliases: Vec<(String, String)>,
}

type Code = &'static str;

/// What an operation returns, comparable between library and model.
#[derive(Debug, PartialEq)]
enum Out {
    Unit,
    Meta(Box<serde_json::Value>),
    Keys(Page<KeyListEntry>),
    Aliases(Page<AliasEntry>),
    Tags(Vec<ResourceTag>),
}

/// The library's metadata in the model's form.
fn meta_json(m: &KeyMetadata) -> serde_json::Value {
    serde_json::to_value(m).expect("KeyMetadata serialises")
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_digit() || ('a'..='f').contains(&c)
            }
        })
}

fn alias_name_check(name: &str) -> Result<(), Code> {
    if name.is_empty() {
        return Err("MissingParameter");
    }
    let Some(rest) = name.strip_prefix("alias/") else {
        return Err("InvalidParameter");
    };
    let ok = (1..=255).contains(&rest.chars().count())
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-/".contains(c))
        && !name.starts_with("alias/acs");
    if ok { Ok(()) } else { Err("InvalidParameter") }
}

fn tag_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "/_-.+=@:".contains(c)
}

fn tag_key_ok(k: &str) -> bool {
    (1..=128).contains(&k.chars().count())
        && k.chars().all(tag_char)
        && !k.starts_with("acs:")
        && !k.starts_with("aliyun")
}

fn tag_value_ok(v: &str) -> bool {
    v.chars().count() <= 256 && v.chars().all(|c| c == ' ' || tag_char(c))
}

fn page_of<T>(all: Vec<T>, number: u32, size: u32) -> Page<T> {
    let total_count = all.len() as u64;
    let items = all
        .into_iter()
        .skip((number as usize - 1) * size as usize)
        .take(size as usize)
        .collect();
    Page {
        items,
        total_count,
        page_number: number,
        page_size: size,
    }
}

fn alias_entry(name: &str, key_id: &str) -> AliasEntry {
    AliasEntry {
        alias_name: name.to_owned(),
        alias_arn: format!("acs:kms:{REGION}:{ACCOUNT}:{name}"),
        key_id: key_id.to_owned(),
    }
}

impl Model {
    /// Deletion at DeleteDate, with aliases and tags.
    fn settle(&mut self) {
        let now = self.now;
        let gone: Vec<String> = self
            .keys
            .iter()
            .filter(|k| {
                k.state == KeyState::PendingDeletion && k.delete_date.is_some_and(|d| d <= now)
            })
            .map(|k| k.id.clone())
            .collect();
        self.keys.retain(|k| !gone.contains(&k.id));
        self.aliases.retain(|(_, k)| !gone.contains(k));
    }

    fn key(&self, id: &str) -> Result<&MKey, Code> {
        self.keys
            .iter()
            .find(|k| k.id == id)
            .ok_or("Forbidden.KeyNotFound")
    }

    fn key_mut(&mut self, id: &str) -> Result<&mut MKey, Code> {
        self.keys
            .iter_mut()
            .find(|k| k.id == id)
            .ok_or("Forbidden.KeyNotFound")
    }

    fn alias(&self, name: &str) -> Option<usize> {
        self.aliases.iter().position(|(n, _)| n == name)
    }

    fn lookup(&self, name: &str) -> Result<String, Code> {
        self.alias(name)
            .map(|i| self.aliases[i].1.clone())
            .ok_or("Forbidden.AliasNotFound")
    }

    /// SPEC section 1: key ids, key ARNs, and where alias ok, aliases and
    /// alias ARNs. Existence of the key is checked by the caller.
    fn resolve(&self, input: &str, alias_ok: bool) -> Result<String, Code> {
        if input.is_empty() {
            return Err("MissingParameter");
        }
        if let Some(rest) = input.strip_prefix("acs:kms:") {
            let parts: Vec<&str> = rest.splitn(3, ':').collect();
            let ours = parts.len() == 3 && parts[0] == REGION && parts[1] == ACCOUNT;
            let resource = parts.get(2).copied().unwrap_or("");
            if resource.starts_with("alias/") {
                if !alias_ok {
                    return Err("Unsupported.Alias");
                }
                return if ours {
                    self.lookup(resource)
                } else {
                    Err("Forbidden.AliasNotFound")
                };
            }
            return match resource.strip_prefix("key/") {
                Some(id) if ours && is_uuid(id) => Ok(id.to_owned()),
                _ => Err("Forbidden.KeyNotFound"),
            };
        }
        if input.starts_with("alias/") {
            return if alias_ok {
                self.lookup(input)
            } else {
                Err("Unsupported.Alias")
            };
        }
        if is_uuid(input) {
            Ok(input.to_owned())
        } else {
            Err("Forbidden.KeyNotFound")
        }
    }

    /// The key's metadata as the model expects it, in its serialised form
    /// (`KeyMetadata` is `#[non_exhaustive]`: only the library builds one).
    fn metadata(&self, k: &MKey) -> serde_json::Value {
        serde_json::json!({
            "CreationDate": format_timestamp(k.created),
            "Description": "",
            "KeyId": k.id,
            "KeyState": k.state,
            "KeyUsage": KeyUsage::EncryptDecrypt,
            "KeySpec": KeySpec::Aes256,
            "DeleteDate": k.delete_date.map(format_timestamp).unwrap_or_default(),
            "Creator": ACCOUNT,
            "Arn": format!("acs:kms:{REGION}:{ACCOUNT}:key/{}", k.id),
            "Origin": if k.external {
                Origin::External
            } else {
                Origin::AliyunKms
            },
            "MaterialExpireTime": "",
            "ProtectionLevel": ProtectionLevel::Software,
            "PrimaryKeyVersion": k.primary_version,
            "AutomaticRotation": "Disabled",
            "RotationInterval": "",
            "LastRotationDate": "",
            "NextRotationDate": "",
            "DeletionProtection": "Disabled",
            "DeletionProtectionDescription": "",
        })
    }

    /// The tags of a request, or the error parsing them gives.
    fn tags(specs: &[(String, String)]) -> Result<BTreeMap<String, String>, Code> {
        if specs.iter().all(|(k, v)| tag_key_ok(k) && tag_value_ok(v)) {
            Ok(specs.iter().cloned().collect())
        } else {
            Err("InvalidParameter")
        }
    }

    /// CreateKey, up to the point where the library picks the ids.
    fn create_key_check(
        &self,
        tags: &[(String, String)],
    ) -> Result<BTreeMap<String, String>, Code> {
        let tags = Self::tags(tags)?;
        if tags.len() > 10 || self.keys.len() >= MAX_KEYS {
            return Err("Rejected.LimitExceeded");
        }
        Ok(tags)
    }

    fn describe_key(&self, key: &str) -> Result<Out, Code> {
        let id = self.resolve(key, true)?;
        Ok(Out::Meta(Box::new(self.metadata(self.key(&id)?))))
    }

    fn list_keys(&self, n: u32, s: u32) -> Result<Out, Code> {
        let all = self
            .keys
            .iter()
            .map(|k| KeyListEntry {
                key_id: k.id.clone(),
                key_arn: format!("acs:kms:{REGION}:{ACCOUNT}:key/{}", k.id),
            })
            .collect();
        Ok(Out::Keys(page_of(all, n, s)))
    }

    fn set_enabled(&mut self, key: &str, to: KeyState) -> Result<Out, Code> {
        let id = self.resolve(key, false)?;
        let k = self.key_mut(&id)?;
        match k.state {
            KeyState::Enabled | KeyState::Disabled => {
                k.state = to;
                Ok(Out::Unit)
            }
            _ => Err("Rejected.StateModifiedFailed"),
        }
    }

    fn schedule(&mut self, key: &str, days: u32) -> Result<Out, Code> {
        if !(7..=30).contains(&days) {
            return Err("InvalidParameter");
        }
        let id = self.resolve(key, false)?;
        let now = self.now;
        let k = self.key_mut(&id)?;
        if k.state == KeyState::PendingDeletion {
            return Err("Rejected.StateModifiedFailed");
        }
        k.state = KeyState::PendingDeletion;
        k.delete_date = Some(now + i64::from(days) * DAY);
        Ok(Out::Unit)
    }

    fn cancel(&mut self, key: &str) -> Result<Out, Code> {
        let id = self.resolve(key, false)?;
        let k = self.key_mut(&id)?;
        if k.state != KeyState::PendingDeletion {
            return Err("Rejected.StateModifiedFailed");
        }
        // No material is ever imported here, so an EXTERNAL key has none.
        k.state = if k.external {
            KeyState::PendingImport
        } else {
            KeyState::Enabled
        };
        k.delete_date = None;
        Ok(Out::Unit)
    }

    fn create_alias(&mut self, name: &str, key: &str) -> Result<Out, Code> {
        alias_name_check(name)?;
        let id = self.resolve(key, false)?;
        if self.alias(name).is_some() {
            return Err("AliasAlreadyExists");
        }
        if self.key(&id)?.state == KeyState::PendingDeletion {
            return Err("Rejected.StateModifiedFailed");
        }
        self.aliases.push((name.to_owned(), id));
        Ok(Out::Unit)
    }

    fn update_alias(&mut self, name: &str, key: &str) -> Result<Out, Code> {
        alias_name_check(name)?;
        let id = self.resolve(key, false)?;
        let i = self.alias(name).ok_or("Forbidden.AliasNotFound")?;
        if self.key(&id)?.state == KeyState::PendingDeletion {
            return Err("Rejected.PendingDeletion");
        }
        self.aliases[i].1 = id;
        Ok(Out::Unit)
    }

    fn delete_alias(&mut self, name: &str) -> Result<Out, Code> {
        alias_name_check(name)?;
        let i = self.alias(name).ok_or("Forbidden.AliasNotFound")?;
        self.aliases.remove(i);
        Ok(Out::Unit)
    }

    fn list_aliases(&self, n: u32, s: u32) -> Result<Out, Code> {
        let all = self
            .aliases
            .iter()
            .map(|(a, k)| alias_entry(a, k))
            .collect();
        Ok(Out::Aliases(page_of(all, n, s)))
    }

    fn list_aliases_by_key_id(&self, key: &str, n: u32, s: u32) -> Result<Out, Code> {
        let id = self.resolve(key, false)?;
        self.key(&id)?;
        let all = self
            .aliases
            .iter()
            .filter(|(_, k)| *k == id)
            .map(|(a, k)| alias_entry(a, k))
            .collect();
        Ok(Out::Aliases(page_of(all, n, s)))
    }

    fn tag_resource(&mut self, key: &str, tags: &[(String, String)]) -> Result<Out, Code> {
        let tags = Self::tags(tags)?;
        let id = self.resolve(key, false)?;
        if tags.is_empty() {
            return Err("MissingParameter");
        }
        let k = self.key_mut(&id)?;
        let mut merged = k.tags.clone();
        merged.extend(tags);
        if merged.len() > 10 {
            return Err("Rejected.LimitExceeded");
        }
        k.tags = merged;
        Ok(Out::Unit)
    }

    fn untag_resource(&mut self, key: &str, keys: &[String]) -> Result<Out, Code> {
        if !keys.iter().all(|k| tag_key_ok(k)) {
            return Err("InvalidParameter");
        }
        let id = self.resolve(key, false)?;
        if keys.is_empty() {
            return Err("MissingParameter");
        }
        let k = self.key_mut(&id)?;
        for t in keys {
            k.tags.remove(t);
        }
        Ok(Out::Unit)
    }

    fn list_resource_tags(&self, key: &str) -> Result<Out, Code> {
        let id = self.resolve(key, false)?;
        let k = self.key(&id)?;
        Ok(Out::Tags(
            k.tags
                .iter()
                .map(|(t, v)| ResourceTag {
                    key_id: id.clone(),
                    tag_key: t.clone(),
                    tag_value: v.clone(),
                })
                .collect(),
        ))
    }
}

// ---- the library side ------------------------------------------------------

/// A memory keystore that outlives the service, so the service can be
/// dropped and reopened on it.
#[derive(Debug, Clone)]
struct Shared(Arc<MemoryKeystore>);

impl Keystore for Shared {
    fn get(&self, ns: &str, id: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.get(ns, id)
    }
    fn scan(&self, ns: &str, scan: Scan<'_>) -> Result<Vec<Record>, StoreError> {
        self.0.scan(ns, scan)
    }
    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        self.0.apply(batch)
    }
    fn flush(&self) -> Result<(), StoreError> {
        self.0.flush()
    }
}

enum Backend {
    Memory(Shared),
    Sled(tempfile::TempDir),
}

impl Backend {
    fn open(&self, clock: &ManualClock) -> Kms {
        sled_reopen::build_retrying(|| self.build(clock))
    }

    fn build(&self, clock: &ManualClock) -> Result<Kms, Error> {
        let b = Kms::builder()
            .root_key_bytes(&ROOT)
            .clock(clock.clone())
            .max_keys(MAX_KEYS as u64);
        match self {
            Self::Memory(s) => b.keystore(s.clone()),
            Self::Sled(dir) => b.sled(dir.path()).durability(Durability::Durable),
        }
        .build()
    }
}

struct Harness {
    clock: ManualClock,
    backend: Backend,
    kms: Option<Kms>,
    model: Model,
    /// Every key id the library has returned, in order: what `KeyRef` picks from.
    known: Vec<String>,
    key_pool: Vec<String>,
    value_pool: Vec<String>,
}

fn code<T>(r: Result<T, Error>) -> Result<T, Code> {
    r.map_err(|e| e.code())
}

impl Harness {
    fn new(sled: bool) -> Self {
        let clock = ManualClock::new(T0);
        let backend = if sled {
            Backend::Sled(tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}")))
        } else {
            Backend::Memory(Shared(Arc::new(MemoryKeystore::new())))
        };
        let kms = backend.open(&clock);
        Self {
            clock,
            backend,
            kms: Some(kms),
            model: Model {
                now: T0,
                ..Model::default()
            },
            known: Vec::new(),
            key_pool: tag_key_pool(),
            value_pool: tag_value_pool(),
        }
    }

    fn kms(&self) -> &Kms {
        self.kms.as_ref().unwrap_or_else(|| unreachable!())
    }

    fn known(&self, i: usize) -> String {
        // Counted from the newest, which is most often still live.
        match self.known.len() {
            0 => MISSING_KEY.to_owned(),
            n => self.known[n - 1 - i % n].clone(),
        }
    }

    fn key_str(&self, r: &KeyRef) -> String {
        match r {
            KeyRef::Known(i) => self.known(*i),
            KeyRef::KnownArn(i) => format!("acs:kms:{REGION}:{ACCOUNT}:key/{}", self.known(*i)),
            KeyRef::ForeignArn(i) => {
                format!("acs:kms:cn-shanghai:{ACCOUNT}:key/{}", self.known(*i))
            }
            KeyRef::Alias(a) => ALIASES[*a].to_owned(),
            KeyRef::AliasArn(a) => format!("acs:kms:{REGION}:{ACCOUNT}:{}", ALIASES[*a]),
            KeyRef::Missing => MISSING_KEY.to_owned(),
            KeyRef::Garbage => "not-a-key".to_owned(),
            KeyRef::Empty => String::new(),
        }
    }

    fn tag_pairs(&self, specs: &[TagSpec]) -> Vec<(String, String)> {
        specs
            .iter()
            .map(|t| {
                let v = t
                    .value
                    .map(|v| self.value_pool[v].clone())
                    .unwrap_or_default();
                (self.key_pool[t.key].clone(), v)
            })
            .collect()
    }

    /// The `Tags` parameter as the wire carries it; a missing value is
    /// left out of its object.
    fn tags_json(&self, specs: &[TagSpec]) -> String {
        let items: Vec<serde_json::Value> = specs
            .iter()
            .map(|t| match t.value {
                Some(v) => serde_json::json!({"TagKey": self.key_pool[t.key], "TagValue": self.value_pool[v]}),
                None => serde_json::json!({"TagKey": self.key_pool[t.key]}),
            })
            .collect();
        serde_json::Value::Array(items).to_string()
    }

    fn step(&mut self, i: usize, step: &Step) -> Result<(), TestCaseError> {
        self.model.settle();
        let (got, want): (Result<Out, Code>, Result<Out, Code>) = match step {
            Step::CreateKey { external, tags } => return self.create_key(i, *external, tags),
            Step::DescribeKey(k) => {
                let k = self.key_str(k);
                (
                    code(self.kms().describe_key(&k)).map(|m| Out::Meta(Box::new(meta_json(&m)))),
                    self.model.describe_key(&k),
                )
            }
            Step::ListKeys(n, s) => (
                code(self.kms().list_keys(page(*n, *s))).map(Out::Keys),
                self.model.list_keys(*n, *s),
            ),
            Step::EnableKey(k) => {
                let k = self.key_str(k);
                (
                    code(self.kms().enable_key(&k)).map(|()| Out::Unit),
                    self.model.set_enabled(&k, KeyState::Enabled),
                )
            }
            Step::DisableKey(k) => {
                let k = self.key_str(k);
                (
                    code(self.kms().disable_key(&k)).map(|()| Out::Unit),
                    self.model.set_enabled(&k, KeyState::Disabled),
                )
            }
            Step::ScheduleKeyDeletion(k, d) => {
                let k = self.key_str(k);
                (
                    code(self.kms().schedule_key_deletion(&k, *d)).map(|()| Out::Unit),
                    self.model.schedule(&k, *d),
                )
            }
            Step::CancelKeyDeletion(k) => {
                let k = self.key_str(k);
                (
                    code(self.kms().cancel_key_deletion(&k)).map(|()| Out::Unit),
                    self.model.cancel(&k),
                )
            }
            Step::CreateAlias(a, k) => {
                let k = self.key_str(k);
                (
                    code(self.kms().create_alias(ALIASES[*a], &k)).map(|()| Out::Unit),
                    self.model.create_alias(ALIASES[*a], &k),
                )
            }
            Step::UpdateAlias(a, k) => {
                let k = self.key_str(k);
                (
                    code(self.kms().update_alias(ALIASES[*a], &k)).map(|()| Out::Unit),
                    self.model.update_alias(ALIASES[*a], &k),
                )
            }
            Step::DeleteAlias(a) => (
                code(self.kms().delete_alias(ALIASES[*a])).map(|()| Out::Unit),
                self.model.delete_alias(ALIASES[*a]),
            ),
            Step::ListAliases(n, s) => (
                code(self.kms().list_aliases(page(*n, *s))).map(Out::Aliases),
                self.model.list_aliases(*n, *s),
            ),
            Step::ListAliasesByKeyId(k, n, s) => {
                let k = self.key_str(k);
                (
                    code(self.kms().list_aliases_by_key_id(&k, page(*n, *s))).map(Out::Aliases),
                    self.model.list_aliases_by_key_id(&k, *n, *s),
                )
            }
            Step::TagResource(k, tags) => {
                let k = self.key_str(k);
                let json = self.tags_json(tags);
                let got = code(parse_tags(&json))
                    .and_then(|t| code(self.kms().tag_resource(&k, &t)))
                    .map(|()| Out::Unit);
                (got, self.model.tag_resource(&k, &self.tag_pairs(tags)))
            }
            Step::UntagResource(k, keys) => {
                let k = self.key_str(k);
                let keys: Vec<String> = keys.iter().map(|i| self.key_pool[*i].clone()).collect();
                let json = serde_json::to_string(&keys).unwrap_or_default();
                let got = code(parse_tag_keys(&json))
                    .and_then(|t| code(self.kms().untag_resource(&k, &t)))
                    .map(|()| Out::Unit);
                (got, self.model.untag_resource(&k, &keys))
            }
            Step::ListResourceTags(k) => {
                let k = self.key_str(k);
                (
                    code(self.kms().list_resource_tags(&k)).map(Out::Tags),
                    self.model.list_resource_tags(&k),
                )
            }
            Step::Advance(s) => {
                self.clock.advance(*s);
                self.model.now += s;
                (Ok(Out::Unit), Ok(Out::Unit))
            }
            Step::AdvanceToDeletion(offset) => {
                let next = self.model.keys.iter().filter_map(|k| k.delete_date).min();
                if let Some(date) = next {
                    let by = (date + offset - self.model.now).max(0);
                    self.clock.advance(by);
                    self.model.now += by;
                }
                (Ok(Out::Unit), Ok(Out::Unit))
            }
            Step::Reopen => {
                drop(self.kms.take());
                self.kms = Some(self.backend.open(&self.clock));
                (Ok(Out::Unit), Ok(Out::Unit))
            }
        };
        prop_assert_eq!(got, want, "step {}: {:?}", i, step);
        Ok(())
    }

    fn create_key(
        &mut self,
        i: usize,
        external: bool,
        tags: &[TagSpec],
    ) -> Result<(), TestCaseError> {
        let json = self.tags_json(tags);
        let mut req = if external {
            CreateKeyRequest::external()
        } else {
            CreateKeyRequest::default()
        };
        let got = code(parse_tags(&json)).and_then(|t| {
            req.tags = t;
            code(self.kms().create_key(&req))
        });
        let want = self.model.create_key_check(&self.tag_pairs(tags));
        match (got, want) {
            (Ok(meta), Ok(tags)) => {
                prop_assert!(is_uuid(&meta.key_id), "step {}: key id {}", i, meta.key_id);
                prop_assert!(!self.known.contains(&meta.key_id), "step {}: id reused", i);
                prop_assert_eq!(meta.primary_key_version.is_empty(), external, "step {}", i);
                let key = MKey {
                    id: meta.key_id.clone(),
                    primary_version: meta.primary_key_version.clone(),
                    created: self.model.now,
                    external,
                    state: if external {
                        KeyState::PendingImport
                    } else {
                        KeyState::Enabled
                    },
                    delete_date: None,
                    tags,
                };
                prop_assert_eq!(&meta_json(&meta), &self.model.metadata(&key), "step {}", i);
                self.known.push(key.id.clone());
                self.model.keys.push(key);
            }
            (Err(g), Err(w)) => prop_assert_eq!(g, w, "step {}: CreateKey", i),
            (g, w) => prop_assert!(
                false,
                "step {}: CreateKey: library {:?}, model {:?}",
                i,
                g.map(|m| m.key_id),
                w
            ),
        }
        Ok(())
    }

    /// After the sequence: everything the model holds, the library lists.
    fn final_check(&mut self) -> Result<(), TestCaseError> {
        self.model.settle();
        let mut aliases = Vec::new();
        for n in 1.. {
            let p = code(self.kms().list_aliases(page(n, 100))).map_err(TestCaseError::fail)?;
            if p.items.is_empty() {
                break;
            }
            aliases.extend(p.items);
        }
        let want: Vec<AliasEntry> = self
            .model
            .aliases
            .iter()
            .map(|(a, k)| alias_entry(a, k))
            .collect();
        prop_assert_eq!(aliases, want);
        for id in self.known.clone() {
            prop_assert_eq!(
                code(self.kms().list_resource_tags(&id)).map(Out::Tags),
                self.model.list_resource_tags(&id)
            );
            prop_assert_eq!(
                code(self.kms().describe_key(&id)).map(|m| Out::Meta(Box::new(meta_json(&m)))),
                self.model.describe_key(&id)
            );
        }
        prop_assert_eq!(
            code(self.kms().key_count()),
            Ok(self.model.keys.len() as u64)
        );
        Ok(())
    }
}

fn page(n: u32, s: u32) -> Paging {
    Paging::new(n, s).unwrap_or_else(|e| panic!("paging {n} {s}: {e}"))
}

fn run(steps: &[Step], sled: bool) -> Result<(), TestCaseError> {
    let mut h = Harness::new(sled);
    for (i, s) in steps.iter().enumerate() {
        h.step(i, s)?;
    }
    h.final_check()
}

proptest! {
    // PROPTEST_CASES may raise the count for a soak run, never lower it.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256u32)
            .max(256),
        max_shrink_iters: 2048,
        ..ProptestConfig::default()
    })]

    /// 256 sequences of 50 steps; one in four on sled.
    #[test]
    fn library_agrees_with_the_model(
        steps in prop::collection::vec(step(), 50),
        sled in prop::bool::weighted(0.25),
    ) {
        run(&steps, sled)?;
    }
}

/// A fixed sequence through the interesting corners, so they are covered
/// whatever the random cases draw.
#[test]
fn scripted_sequence_agrees_with_the_model() {
    use KeyRef::*;
    let t = |key, value| TagSpec { key, value };
    let steps = vec![
        Step::CreateKey {
            external: false,
            tags: vec![t(0, Some(1)), t(1, None)],
        },
        Step::CreateKey {
            external: true,
            tags: vec![],
        },
        Step::CreateAlias(0, Known(0)),
        Step::CreateAlias(1, Known(1)),
        Step::CreateAlias(0, Known(1)),
        Step::DescribeKey(Alias(0)),
        Step::DescribeKey(AliasArn(1)),
        Step::EnableKey(Alias(0)),
        Step::ScheduleKeyDeletion(Known(0), 7),
        Step::CreateAlias(2, Known(0)),
        Step::UpdateAlias(1, Known(0)),
        Step::UpdateAlias(0, Known(1)),
        Step::UpdateAlias(0, Known(0)),
        Step::TagResource(Known(0), (2..12).map(|k| t(k, Some(1))).collect()),
        Step::TagResource(Known(0), (2..10).map(|k| t(k, Some(2))).collect()),
        Step::Reopen,
        Step::Advance(7 * DAY - 1),
        Step::ListAliases(1, 10),
        Step::Advance(1),
        Step::DescribeKey(Alias(1)),
        Step::ListAliases(1, 10),
        Step::ListAliasesByKeyId(Known(1), 1, 10),
        Step::ListResourceTags(Known(0)),
        Step::CreateAlias(0, Known(1)),
        Step::Reopen,
        Step::ListKeys(1, 10),
        Step::CreateKey {
            external: false,
            tags: (0..11).map(|k| t(k, None)).collect(),
        },
        Step::CancelKeyDeletion(Known(1)),
        Step::ScheduleKeyDeletion(Known(1), 30),
        Step::CancelKeyDeletion(Known(1)),
        Step::UntagResource(Known(1), vec![0, 12]),
        Step::UntagResource(Known(1), vec![]),
        Step::TagResource(Known(1), vec![]),
        Step::DeleteAlias(0),
        Step::DeleteAlias(0),
    ];
    for sled in [false, true] {
        run(&steps, sled).unwrap_or_else(|e| panic!("sled {sled}: {e}"));
    }
}
