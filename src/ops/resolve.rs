//! Key lookup and the time-driven changes due on it: resolving a `KeyId`
//! parameter, reading a key through the cache, and applying what the clock
//! has made due (deletion at `DeleteDate`, material expiry, automatic
//! rotation) before any operation sees the key.

use std::borrow::Cow;
use std::sync::Arc;

use crate::cache::KeyEntry;
use crate::crypto::xaes::Xaes;
use crate::error::{Error, Rejection, Result, shorten};
use crate::kms::{Kms, Writer};
use crate::store::record::{
    Counters, KeyRecord, META_COUNTERS, NS_DELETION, NS_KEY, NS_KEY_ORDER, NS_MATERIAL, NS_META,
    PER_KEY_NAMESPACES, deletion_id, material_id, time_from_bytes,
};
use crate::store::sealed::Snapshot;
use crate::store::{Batch, Scan};
use crate::types::{KeyState, is_key_id};

impl Kms {
    // ---- reading keys ------------------------------------------------------

    /// The key `key_id` (already resolved), after any time-driven change that
    /// is due. A key past its `DeleteDate` is purged here and is not found.
    pub(crate) fn entry(&self, key_id: &str) -> Result<Arc<KeyEntry>> {
        let cached = self.cache.get(key_id)?;
        let now_ms = self.clock.now_millis();
        let entry = match cached {
            Some(e) if e.fresh(now_ms, self.cache_ttl_ms()) => e,
            _ => {
                // The head first, then the record: the record is at least
                // as new as the head's sequence, and the cache refuses this
                // copy if it knows of a later commit to the key. Another
                // process's change is seen here once the entry is older
                // than the cache TTL.
                let seq = self.store.snapshot()?.seq();
                match self.load_locked(key_id) {
                    Ok(record) => self.cache.fill(record, seq, now_ms)?,
                    Err(e @ Error::KeyNotFound(_)) => {
                        self.cache.remove(key_id, seq)?;
                        return Err(e);
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        if self.due(&entry.record) {
            return self.settle(key_id);
        }
        Ok(entry)
    }

    /// The record of `key_id`, after due changes.
    #[allow(dead_code)] // for operations that need the record only
    pub(crate) fn record(&self, key_id: &str) -> Result<KeyRecord> {
        Ok(self.entry(key_id)?.record.clone())
    }

    /// True when a time-driven change of `record` is due now.
    fn due(&self, record: &KeyRecord) -> bool {
        // Most keys have no date that can fall due: then the clock is not
        // read (this runs on every Encrypt and Decrypt).
        if !may_fall_due(record) {
            return false;
        }
        let now = self.clock.now();
        deletion_due(record, now)
            || crate::ops::import::material_expiry_due(record, now)
            || crate::ops::versions::rotation_due(record, now)
    }

    /// Applies due time-driven changes in one write.
    fn settle(&self, key_id: &str) -> Result<Arc<KeyEntry>> {
        let mut w = self.writer()?;
        let record = self.settle_locked(&mut w.txn, key_id)?;
        let seq = w.txn.seq();
        drop(w);
        if self.in_dry_run() {
            // Settled in memory only: the cache keeps what the store holds.
            return Ok(KeyEntry::new(record, self.clock.now_millis()));
        }
        // A commit that lands between here and the fill has a later
        // sequence: the cache then keeps this record out (issue 13, 7.1).
        self.cache.fill(record, seq, self.clock.now_millis())
    }

    /// Loads `key_id` in the write `txn` and commits what is due: deletion
    /// at `DeleteDate` (the key is then not found), then each other
    /// time-driven change.
    fn settle_locked(&self, txn: &mut Snapshot, key_id: &str) -> Result<KeyRecord> {
        let mut record = match self.load_locked(key_id) {
            Ok(r) => r,
            Err(e @ Error::KeyNotFound(_)) => {
                // Gone (perhaps purged by another process): not cached.
                self.cache.remove(key_id, txn.seq())?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let now = self.clock.now();
        if deletion_due(&record, now) {
            self.maintain(|| self.purge_locked(txn, &record))?;
            return Err(Error::KeyNotFound(key_id.to_owned()));
        }
        // Material expiry (SPEC section 2): as if DeleteKeyMaterial ran then.
        if crate::ops::import::material_expiry_due(&record, now) {
            let mut batch = Batch::new();
            crate::ops::import::remove_material(&mut record, &mut batch);
            self.revoke_import_tokens(&record.key_id, &mut batch)?;
            record.generation += 1;
            batch.put(NS_KEY, record.key_id.as_bytes().to_vec(), record.encode()?);
            self.maintain(|| self.commit(txn, batch, Some(record.clone()), None))?;
        }
        // Automatic rotation (SPEC section 6): one new primary version and
        // the record naming it, in one batch.
        if crate::ops::versions::rotation_due(&record, now) && !self.in_dry_run() {
            let mut batch = Batch::new();
            self.add_version(&mut record, &mut batch, now)?;
            batch.put(NS_KEY, record.key_id.as_bytes().to_vec(), record.encode()?);
            self.commit(txn, batch, Some(record.clone()), None)?;
        }
        Ok(record)
    }

    /// The cipher of the primary version of `entry`'s key (the one
    /// Encrypt seals with), kept in the entry after the first use.
    pub(crate) fn primary_cipher<'e>(&self, entry: &'e KeyEntry) -> Result<&'e Xaes> {
        if let Some(c) = entry.primary.get() {
            return Ok(c);
        }
        let version = entry.record.primary().ok_or_else(|| {
            Error::CorruptStore(format!("usable key {} has no version", entry.record.key_id).into())
        })?;
        let cipher = self.cipher(entry, &version.id)?;
        Ok(entry.primary.get_or_init(|| cipher))
    }

    /// The cipher of `version_id` of `entry`'s key: the primary's without a
    /// lookup, else [`Kms::cipher`].
    pub(crate) fn version_cipher(&self, entry: &KeyEntry, version_id: &str) -> Result<Arc<Xaes>> {
        match entry.primary.get() {
            Some(c) if entry.record.primary().is_some_and(|v| v.id == version_id) => {
                Ok(Arc::clone(c))
            }
            _ => self.cipher(entry, version_id),
        }
    }

    /// The cipher of one version of a key, built once and cached with the key.
    pub(crate) fn cipher(&self, entry: &KeyEntry, version_id: &str) -> Result<Arc<Xaes>> {
        if let Some(c) = entry
            .ciphers
            .read()
            .map_err(|_| Error::InternalFailure)?
            .get(version_id)
        {
            return Ok(Arc::clone(c));
        }
        let key_id = &entry.record.key_id;
        if !entry.record.versions.iter().any(|v| v.id == version_id) {
            return Err(Error::KeyVersionNotFound(version_id.to_owned()));
        }
        let id = material_id(key_id, version_id);
        if self.store.get(NS_MATERIAL, &id)?.is_none() {
            // DeleteKeyMaterial (or expiry) may have landed after `entry`
            // was read: then the key is now PendingImport, not corrupt.
            let now = self.entry(key_id)?;
            if !now.record.has_material() {
                let state = now.record.state;
                let rejection = Rejection::for_use(state).unwrap_or(Rejection::PendingImport);
                return Err(Error::rejected(rejection, key_id, state));
            }
        }
        let material = self.open_material(&entry.record, version_id)?;
        let cipher = Arc::new(Xaes::new(material.expose()));
        entry
            .ciphers
            .write()
            .map_err(|_| Error::InternalFailure)?
            .insert(version_id.to_owned(), Arc::clone(&cipher));
        Ok(cipher)
    }

    /// The one write path for an existing key: under the writer lock, reads the
    /// current record (applying due changes first), lets `change` edit it and
    /// add records to the batch, then commits, flushes and refreshes the cache.
    pub(crate) fn update_key<T>(
        &self,
        key_id: &str,
        change: impl FnOnce(&mut KeyRecord, &mut Batch) -> Result<T>,
    ) -> Result<(KeyRecord, T)> {
        let mut w = self.writer()?;
        let txn = &mut w.txn;
        let mut record = self.settle_locked(txn, key_id)?;
        let had_material = !record.material_deleted;
        let mut batch = Batch::new();
        let out = change(&mut record, &mut batch)?;
        if had_material && record.material_deleted {
            // Material deleted: a new generation, so an old copy of it put
            // back is refused after a re-import.
            record.generation += 1;
        }
        batch.put(NS_KEY, record.key_id.as_bytes().to_vec(), record.encode()?);
        self.commit(txn, batch, Some(record.clone()), None)?;
        Ok((record, out))
    }

    /// Removes a key and every record that belongs to it, in one batch.
    fn purge_locked(&self, txn: &mut Snapshot, record: &KeyRecord) -> Result<()> {
        let key_id = record.key_id.as_str();
        let mut batch = Batch::new();
        batch.delete(NS_KEY, key_id.as_bytes().to_vec());
        batch.delete(NS_KEY_ORDER, record.seq.to_be_bytes().to_vec());
        if let Some(d) = record.delete_date {
            batch.delete(NS_DELETION, deletion_id(d, key_id));
        }
        let prefix = format!("{key_id}/");
        for ns in PER_KEY_NAMESPACES {
            for (id, _) in self.store.scan(ns, Scan::prefix(prefix.as_bytes()))? {
                batch.delete(ns, id);
            }
        }
        crate::ops::aliases::purge_key_aliases(self, &mut batch, key_id)?;
        let counters = self.read_counters()?;
        let next = Counters {
            next_seq: counters.next_seq,
            key_count: counters.key_count.saturating_sub(1),
        };
        batch.put(NS_META, META_COUNTERS, next.encode());
        self.commit(txn, batch, None, Some(key_id))?;
        Ok(())
    }

    /// Deletes, for good, every key whose `DeleteDate` has passed, with its
    /// material, aliases and tags, and every secret whose
    /// `PlannedDeleteTime` has passed. Access purges such keys and secrets
    /// lazily too; this call is for maintenance (there is no background
    /// thread). Returns how many keys and secrets it deleted.
    ///
    /// # Errors
    /// A keystore failure.
    pub fn purge_expired(&self) -> Result<usize> {
        let now = self.clock.now();
        let mut purged = crate::ops::secrets::purge_expired_secrets(self)?;
        loop {
            let due = self.store.scan(
                NS_DELETION,
                Scan {
                    limit: 64,
                    ..Scan::prefix(b"")
                },
            )?;
            let mut progressed = false;
            for (id, _) in &due {
                let Some(date) = time_from_bytes(id) else {
                    continue;
                };
                if date > now {
                    return Ok(purged);
                }
                let key_id = String::from_utf8_lossy(&id[8..]).into_owned();
                purged += self.retrying(|| {
                    let mut w = self.writer()?;
                    match self.load_locked(&key_id) {
                        Ok(record) if deletion_due(&record, now) => {
                            self.purge_locked(&mut w.txn, &record)?;
                            Ok(1)
                        }
                        _ => {
                            // A stale index entry (deletion was cancelled, or
                            // another process purged the key): drop it.
                            if self.store.get(NS_DELETION, id)?.is_some() {
                                let mut b = Batch::new();
                                b.delete(NS_DELETION, id.clone());
                                self.commit(&mut w.txn, b, None, None)?;
                            }
                            Ok(0)
                        }
                    }
                })?;
                progressed = true;
            }
            if !progressed {
                return Ok(purged);
            }
        }
    }

    // ---- key id resolution -------------------------------------------------

    /// Resolves a `KeyId` parameter (SPEC section 1) to a key id: a key id, a
    /// key ARN, and where `alias_ok`, an alias or alias ARN. This is the one
    /// resolution function of the library.
    pub(crate) fn resolve_key_id(
        &self,
        input: &str,
        param: &'static str,
        alias_ok: bool,
    ) -> Result<String> {
        self.resolve_key(input, param, alias_ok)
            .map(Cow::into_owned)
    }

    /// [`Kms::resolve_key_id`] without a copy when `input` already names the
    /// key (the hot path of Encrypt and GenerateDataKey).
    pub(crate) fn resolve_key<'a>(
        &self,
        input: &'a str,
        param: &'static str,
        alias_ok: bool,
    ) -> Result<Cow<'a, str>> {
        if input.is_empty() {
            return Err(Error::MissingParameter(param));
        }
        if let Some(rest) = input.strip_prefix("acs:kms:") {
            let mut parts = rest.splitn(3, ':');
            let (region, account, resource) = (parts.next(), parts.next(), parts.next());
            let ours = region == Some(self.config.region_id.as_str())
                && account == Some(self.config.account_id.as_str());
            return match resource {
                Some(r) if r.starts_with("alias/") => {
                    if !alias_ok {
                        Err(Error::UnsupportedAlias(param))
                    } else if !ours {
                        Err(Error::AliasNotFound(shorten(input)))
                    } else {
                        crate::ops::aliases::lookup_alias(self, r).map(Cow::Owned)
                    }
                }
                Some(r) if ours => match r.strip_prefix("key/") {
                    Some(id) if is_key_id(id) => Ok(Cow::Borrowed(id)),
                    _ => Err(Error::KeyNotFound(shorten(input))),
                },
                _ => Err(Error::KeyNotFound(shorten(input))),
            };
        }
        if input.starts_with("alias/") {
            if !alias_ok {
                return Err(Error::UnsupportedAlias(param));
            }
            return crate::ops::aliases::lookup_alias(self, input).map(Cow::Owned);
        }
        if is_key_id(input) {
            // The hot path: a plain key id, resolved without a copy.
            Ok(Cow::Borrowed(input))
        } else {
            Err(Error::KeyNotFound(shorten(input)))
        }
    }
}

/// True when `record` has a date at which a time-driven change can fall
/// due: the preconditions of [`deletion_due`],
/// [`material_expiry_due`](crate::ops::import::material_expiry_due) and
/// [`rotation_due`](crate::ops::versions::rotation_due) that do not depend
/// on the time.
fn may_fall_due(record: &KeyRecord) -> bool {
    (record.state == KeyState::PendingDeletion && record.delete_date.is_some())
        || record.material_expire.is_some()
        || (record.automatic_rotation && record.next_rotation.is_some())
}

/// True when `record` is past its `DeleteDate`.
fn deletion_due(record: &KeyRecord, now: i64) -> bool {
    record.state == KeyState::PendingDeletion && record.delete_date.is_some_and(|d| now >= d)
}

impl Writer<'_> {
    /// The record of a live key. A key past its `DeleteDate` is purged now
    /// (its own batch) and is not found.
    pub(crate) fn key(&mut self, key_id: &str) -> Result<KeyRecord> {
        self.kms.settle_locked(&mut self.txn, key_id)
    }
}
