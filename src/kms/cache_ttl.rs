//! How long a process may serve a key's metadata from its cache (SPEC
//! section 10, "Coherence bound"). Several processes on one store: a change
//! made by one is honoured by the others once their copies are older than
//! this.
//!
//! For now only 0 (read through: every lookup reads the key's record from
//! the store) changes anything; a non-zero bound keeps the cache as before.

use std::sync::Arc;
use std::time::Duration;

use crate::cache::KeyEntry;
use crate::error::Result;
use crate::kms::{Kms, KmsBuilder};

impl KmsBuilder {
    /// How long a key's metadata may be served from the cache before it is
    /// read again from the store; `Duration::ZERO` reads it on every use.
    /// For several processes sharing one store (SPEC section 10).
    #[must_use]
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = Some(ttl);
        self
    }
}

impl Kms {
    /// True when every key lookup must read the store (`cache_ttl` 0).
    pub(crate) fn reads_through(&self) -> bool {
        self.cache_ttl == Some(Duration::ZERO)
    }

    /// `key_id`'s entry with its record read from the store now: the cached
    /// entry (and its ciphers: key material never changes) if its record is
    /// the same, else a new one that replaces it.
    pub(crate) fn fresh_entry(&self, key_id: &str) -> Result<Arc<KeyEntry>> {
        let record = self.load_locked(key_id)?;
        if let Some(e) = self.cache.get(key_id)?
            && e.record == record
        {
            return Ok(e);
        }
        let seq = self.store.seq();
        self.cache.remove(key_id, seq)?;
        self.cache.fill(record, seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Batch, Keystore, MemoryKeystore, Record, Scan, StoreError};

    /// One memory store with several holders, as processes share a database.
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

    /// A key disabled by another holder of the store (another process) is
    /// refused at once with `cache_ttl(0)`, and served from the cache without.
    #[test]
    fn zero_reads_every_change_from_the_store() {
        let store = Shared(Arc::new(MemoryKeystore::new()));
        let open = |ttl: Option<Duration>| {
            let b = Kms::builder()
                .keystore(store.clone())
                .root_key_bytes(&[9u8; 32]);
            match ttl {
                Some(t) => b.cache_ttl(t),
                None => b,
            }
            .build()
            .expect("open")
        };
        let a = open(None);
        let key = a.create_key(&Default::default()).expect("create").key_id;
        let through = open(Some(Duration::ZERO));
        let cached = open(None);
        assert!(through.reads_through() && !cached.reads_through());
        for kms in [&through, &cached] {
            kms.encrypt(&key, b"hi", &Default::default())
                .expect("enabled");
        }
        a.disable_key(&key).expect("disable");
        assert!(through.encrypt(&key, b"hi", &Default::default()).is_err());
        // Without the bound, the other holder's copy is stale (issue 14).
        assert!(cached.encrypt(&key, b"hi", &Default::default()).is_ok());
    }
}
