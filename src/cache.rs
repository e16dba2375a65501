//! The key cache of a [`crate::Kms`], replicated in shards.
//!
//! Encrypt and Decrypt read a cached key and its cipher on every call. With
//! one shared map, every call by every thread would write the same cache
//! lines (the lock's reader count, the entry's and the cipher's reference
//! counts), and two threads would spend their time passing those lines
//! between cores. Here each thread reads its own shard, which holds its own
//! copy of each entry (with its own ciphers), so threads on different shards
//! share no line that they write. Writers, which hold the writer lock, update
//! or remove a key in every shard, so no shard ever holds a changed or
//! deleted key after the change.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use xaes_256_gcm::Xaes256Gcm;
use zeroize::Zeroizing;

use crate::crypto::asym::{PrivateKey, PublicKey};

use crate::error::{Error, Result};
use crate::store::record::KeyRecord;

/// A map keyed by key ids or key version ids.
/// A cached key: its record and the ciphers of the versions used so far.
/// Replaced whole on every change to the key, which drops its ciphers.
pub(crate) struct KeyEntry {
    pub record: KeyRecord,
    pub(crate) ciphers: RwLock<IdMap<Arc<Xaes256Gcm>>>,
    /// The parsed secrets of the versions of a key that is not
    /// `Aliyun_AES_256` (private keys, HMAC and SM4 keys), by version id.
    pub(crate) secrets: RwLock<IdMap<Arc<VersionSecret>>>,
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
    pub(crate) fn new(record: KeyRecord) -> Arc<Self> {
        Arc::new(Self {
            record,
            ciphers: RwLock::new(IdMap::default()),
            secrets: RwLock::new(IdMap::default()),
        })
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
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// Shards per cache: threads are spread over them round-robin.
const SHARDS: usize = 8;

/// One shard, aligned so that no two shards share a cache line.
#[repr(align(128))]
#[derive(Default)]
struct Shard(RwLock<IdMap<Arc<KeyEntry>>>);

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

    fn mine(&self) -> &RwLock<IdMap<Arc<KeyEntry>>> {
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
            .cloned())
    }

    /// The calling thread's entry for `record` (read from the store under the
    /// writer lock): the cached one if it holds this record, else a new one.
    pub(crate) fn fill(&self, record: KeyRecord) -> Result<Arc<KeyEntry>> {
        let mut shard = self.mine().write().map_err(|_| Error::InternalFailure)?;
        if let Some(e) = shard.get(&record.key_id)
            && e.record == record
        {
            return Ok(Arc::clone(e));
        }
        let entry = KeyEntry::new(record);
        shard.insert(entry.record.key_id.clone(), Arc::clone(&entry));
        Ok(entry)
    }

    /// A key changed (the caller holds the writer lock): every shard drops
    /// its old entry, with its ciphers; the calling thread's shard gets the
    /// new record, the others load it when they next need it.
    pub(crate) fn update(&self, record: KeyRecord) -> Result<()> {
        self.remove(&record.key_id)?;
        self.mine()
            .write()
            .map_err(|_| Error::InternalFailure)?
            .insert(record.key_id.clone(), KeyEntry::new(record));
        Ok(())
    }

    /// A key is gone (the caller holds the writer lock): every shard drops it.
    pub(crate) fn remove(&self, key_id: &str) -> Result<()> {
        for shard in &self.shards {
            shard
                .0
                .write()
                .map_err(|_| Error::InternalFailure)?
                .remove(key_id);
        }
        Ok(())
    }
}
