//! The key cache of a [`crate::Kms`], replicated in shards.
//!
//! Encrypt and Decrypt read a cached key and its cipher on every call. With
//! one shared map, every call by every thread would write the same cache
//! lines (the lock's reader count, the entry's and the cipher's reference
//! counts), and two threads would spend their time passing those lines
//! between cores. Here each thread reads its own shard, which holds its own
//! copy of each entry (with its own ciphers), so threads on different shards
//! share no line that they write. Writers update or remove a key in every
//! shard, so no shard ever holds a changed or deleted key after the change.
//!
//! Every slot carries the commit sequence of what it knows about its key
//! (the commit that wrote the record, or the last commit before it was
//! read), also when the slot is empty because the key changed or went away.
//! A fill with a record read before that sequence is refused: a reader that
//! loaded a record and was overtaken by a writer before it filled the cache
//! cannot put the older record back (issue 13, finding 7.1). This holds
//! whatever lock the writers take.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use zeroize::Zeroizing;

use crate::crypto::asym::{PrivateKey, PublicKey};
use crate::crypto::xaes::Xaes;

use crate::error::{Error, Result};
use crate::store::record::KeyRecord;

/// A map keyed by key ids or key version ids.
/// A cached key: its record and the ciphers of the versions used so far.
/// Replaced whole on every change to the key, which drops its ciphers.
pub(crate) struct KeyEntry {
    pub record: KeyRecord,
    pub(crate) ciphers: RwLock<IdMap<Arc<Xaes>>>,
    /// The cipher of the primary version of `record`, once used: Encrypt
    /// and GenerateDataKey take it without a lock or a map lookup. The
    /// primary is fixed for the life of the entry (a rotation replaces it).
    pub(crate) primary: OnceLock<Arc<Xaes>>,
    /// The parsed secrets of the versions of a key that is not
    /// `Aliyun_AES_256` (private keys, HMAC and SM4 keys), by version id.
    pub(crate) secrets: RwLock<IdMap<Arc<VersionSecret>>>,
    /// When the record was last read from (or written to) the store, in
    /// milliseconds of the service's clock: after `cache_ttl` it is read
    /// again, so another process's change is seen within that bound.
    pub(crate) checked: AtomicI64,
}

/// The parsed secret of one version of a key that is not `Aliyun_AES_256`,
/// cached like the ciphers so an operation does not parse PKCS#8 each time.
/// Zeroized on drop (the key types and `Zeroizing` see to it); never printed.
#[allow(clippy::large_enum_variant)] // always behind an Arc, built once per version
pub(crate) enum VersionSecret {
    /// An RSA, EC or SM2 private key, with its public half.
    Private {
        /// The private key.
        key: PrivateKey,
        /// Its public key, derived once.
        public: PublicKey,
    },
    /// An HMAC key or an SM4 key: raw bytes.
    Raw(Zeroizing<Vec<u8>>),
}

impl KeyEntry {
    pub(crate) fn new(record: KeyRecord, now_ms: i64) -> Arc<Self> {
        Arc::new(Self {
            record,
            ciphers: RwLock::new(IdMap::default()),
            primary: OnceLock::new(),
            secrets: RwLock::new(IdMap::default()),
            checked: AtomicI64::new(now_ms),
        })
    }

    /// A new entry for `record`, a newer record of the key of `old`: key
    /// material is immutable within a generation, so the built ciphers and
    /// parsed secrets of `old` carry over when the generation is the same.
    fn succeeding(old: &Self, record: KeyRecord, now_ms: i64) -> Result<Arc<Self>> {
        if old.record.generation != record.generation || old.record.key_id != record.key_id {
            return Ok(Self::new(record, now_ms));
        }
        let ciphers = old
            .ciphers
            .read()
            .map_err(|_| Error::InternalFailure)?
            .clone();
        let secrets = old
            .secrets
            .read()
            .map_err(|_| Error::InternalFailure)?
            .clone();
        Ok(Arc::new(Self {
            record,
            ciphers: RwLock::new(ciphers),
            primary: OnceLock::new(),
            secrets: RwLock::new(secrets),
            checked: AtomicI64::new(now_ms),
        }))
    }

    /// True when the record was read from the store less than `ttl_ms` ago
    /// (a clock that went back counts as stale).
    pub(crate) fn fresh(&self, now_ms: i64, ttl_ms: i64) -> bool {
        let checked = self.checked.load(Ordering::Acquire);
        now_ms >= checked && now_ms - checked < ttl_ms
    }
}

pub(crate) type IdMap<V> = HashMap<String, V, BuildHasherDefault<IdHasher>>;

/// FNV-1a, for the cache's maps: their keys are ids this library generated
/// (random UUIDs) or loaded from the store, never inserted from request input,
/// so a keyed hash against flooding buys nothing here, and SipHash was a
/// visible share of an Encrypt.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    /// Word-wise FNV carries each word's high bytes only upwards: a final
    /// mix (splitmix64's) spreads them into the low bits that pick buckets.
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// FNV-1a over 8-byte words (a 36-byte id is 5 multiplications, not
    /// 36), then the tail bytes.
    fn write(&mut self, bytes: &[u8]) {
        const PRIME: u64 = 0x0100_0000_01b3;
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            h = (h ^ u64::from_le_bytes(b)).wrapping_mul(PRIME);
        }
        for &b in words.remainder() {
            h = (h ^ u64::from(b)).wrapping_mul(PRIME);
        }
        self.0 = h;
    }
}

/// Shards per cache: threads are spread over them round-robin.
const SHARDS: usize = 8;

/// What a shard knows of one key: the commit sequence of that knowledge, and
/// the entry, unless the key changed or went away since (then the next
/// reader loads it).
#[derive(Clone)]
struct Slot {
    seq: u64,
    entry: Option<Arc<KeyEntry>>,
}

/// One shard, aligned so that no two shards share a cache line.
#[repr(align(128))]
#[derive(Default)]
struct Shard(RwLock<IdMap<Slot>>);

/// The sharded key cache.
pub(crate) struct KeyCache {
    shards: Box<[Shard]>,
}

/// The shard of the calling thread: threads take shards in turn, so two
/// threads get different shards.
fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    INDEX.with(|i| *i)
}

impl KeyCache {
    pub(crate) fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }

    fn mine(&self) -> &RwLock<IdMap<Slot>> {
        // safe: shard_index() < SHARDS == self.shards.len()
        &self.shards[shard_index() % self.shards.len()].0
    }

    /// The calling thread's cached entry of `key_id`.
    pub(crate) fn get(&self, key_id: &str) -> Result<Option<Arc<KeyEntry>>> {
        Ok(self
            .mine()
            .read()
            .map_err(|_| Error::InternalFailure)?
            .get(key_id)
            .and_then(|s| s.entry.clone()))
    }

    /// The calling thread's entry for `record`, read from the store (at
    /// `now_ms`) when the last commit was `seq`: the cached one if it is as
    /// new, else a new one, cached unless the shard knows of a later change
    /// to the key (then the record is returned for this call only, and never
    /// cached).
    pub(crate) fn fill(&self, record: KeyRecord, seq: u64, now_ms: i64) -> Result<Arc<KeyEntry>> {
        let mut shard = self.mine().write().map_err(|_| Error::InternalFailure)?;
        let entry = match shard.get(&record.key_id) {
            Some(Slot {
                entry: Some(e),
                seq: known,
            }) if *known >= seq || e.record == record => {
                e.checked.fetch_max(now_ms, Ordering::AcqRel);
                return Ok(Arc::clone(e));
            }
            Some(Slot { seq: known, .. }) if *known > seq => {
                return Ok(KeyEntry::new(record, now_ms));
            }
            Some(Slot { entry: Some(e), .. }) => KeyEntry::succeeding(e, record, now_ms)?,
            _ => KeyEntry::new(record, now_ms),
        };
        shard.insert(
            entry.record.key_id.clone(),
            Slot {
                seq,
                entry: Some(Arc::clone(&entry)),
            },
        );
        Ok(entry)
    }

    /// A key changed in commit `seq` (at `now_ms`): every shard drops its old
    /// entry, with its ciphers, and remembers `seq`; the calling thread's
    /// shard gets the new record, the others load it when they next need it.
    pub(crate) fn update(&self, record: KeyRecord, seq: u64, now_ms: i64) -> Result<()> {
        self.remove(&record.key_id, seq)?;
        let mut shard = self.mine().write().map_err(|_| Error::InternalFailure)?;
        if shard.get(&record.key_id).is_some_and(|s| s.seq > seq) {
            return Ok(());
        }
        shard.insert(
            record.key_id.clone(),
            Slot {
                seq,
                entry: Some(KeyEntry::new(record, now_ms)),
            },
        );
        Ok(())
    }

    /// A key is gone in commit `seq`: every shard drops it and remembers
    /// `seq`, so an older fill cannot bring it back.
    pub(crate) fn remove(&self, key_id: &str, seq: u64) -> Result<()> {
        for shard in &self.shards {
            let mut shard = shard.0.write().map_err(|_| Error::InternalFailure)?;
            match shard.get_mut(key_id) {
                Some(slot) if slot.seq > seq => {}
                Some(slot) => {
                    *slot = Slot { seq, entry: None };
                }
                None => {
                    shard.insert(key_id.to_owned(), Slot { seq, entry: None });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{KeySpec, KeyState, KeyUsage, Origin, ProtectionLevel};

    fn record(state: KeyState) -> KeyRecord {
        KeyRecord {
            key_id: "k".into(),
            seq: 0,
            created: 0,
            description: String::new(),
            state,
            usage: KeyUsage::EncryptDecrypt,
            spec: KeySpec::Aes256,
            origin: Origin::AliyunKms,
            protection: ProtectionLevel::Software,
            delete_date: None,
            material_expire: None,
            versions: Vec::new(),
            automatic_rotation: false,
            rotation_interval: None,
            last_rotation: None,
            next_rotation: None,
            material_fingerprint: None,
            material_deleted: false,
            generation: 0,
            deletion_protection: None,
            policy: None,
        }
    }

    /// Finding 7.1: a reader loads the Enabled record (commit 3), a writer on
    /// another thread commits DisableKey (commit 4) before the reader fills
    /// the cache. The reader's fill must not cache the Enabled record.
    #[test]
    fn a_fill_older_than_a_change_on_another_thread_is_not_cached() {
        let cache = Arc::new(KeyCache::new());
        let enabled = record(KeyState::Enabled);
        let writer = {
            let cache = Arc::clone(&cache);
            std::thread::spawn(move || cache.update(record(KeyState::Disabled), 4, 0))
        };
        writer.join().expect("writer").expect("update");
        let got = cache.fill(enabled, 3, 0).expect("fill");
        assert_eq!(got.record.state, KeyState::Enabled, "this call's own read");
        assert!(
            cache.get("k").expect("get").is_none(),
            "the stale Enabled record must not be cached"
        );
        // A read after the change is cached.
        let now = cache.fill(record(KeyState::Disabled), 4, 0).expect("fill");
        assert_eq!(now.record.state, KeyState::Disabled);
        assert_eq!(
            cache.get("k").expect("get").map(|e| e.record.state),
            Some(KeyState::Disabled)
        );
        // And an older one does not replace it.
        let old = cache.fill(record(KeyState::Enabled), 2, 0).expect("fill");
        assert_eq!(old.record.state, KeyState::Disabled);
    }

    #[test]
    fn a_removed_key_is_not_brought_back_by_an_older_fill() {
        let cache = KeyCache::new();
        cache.fill(record(KeyState::Enabled), 1, 0).expect("fill");
        cache.remove("k", 5).expect("remove");
        cache.fill(record(KeyState::Enabled), 4, 0).expect("fill");
        assert!(cache.get("k").expect("get").is_none());
        // An update older than the removal is ignored too.
        cache
            .update(record(KeyState::Enabled), 3, 0)
            .expect("update");
        assert!(cache.get("k").expect("get").is_none());
    }
}
