//! The service object: [`Kms`], its builder, and what every operation shares:
//! the key cache, key-id resolution, the write path and deletion at
//! `DeleteDate`.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use xaes_256_gcm::Xaes256Gcm;
use xaes_256_gcm::aead::KeyInit;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Rejection, Result};
use crate::secret::KeyMaterial;
use crate::store::record::{
    Counters, KeyRecord, META_COUNTERS, META_FORMAT, META_ROOT_CHECK, NS_DELETION, NS_KEY,
    NS_KEY_ORDER, NS_MATERIAL, NS_META, PER_KEY_NAMESPACES, ROOT_CHECK_PLAINTEXT, STORE_FORMAT,
    deletion_id, material_id, time_from_bytes,
};
use crate::store::seal::RootKey;
use crate::store::{Batch, Keystore, MemoryKeystore, Scan, SledKeystore};
use crate::types::KeyState;

/// The default region id.
pub const DEFAULT_REGION_ID: &str = "cn-hangzhou";
/// The default account id (16 digits).
pub const DEFAULT_ACCOUNT_ID: &str = "1234567890123456";
/// The root key file that [`Kms::open`] keeps beside its store.
pub const ROOT_KEY_FILE: &str = "root.key";

/// When a mutating call's changes reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every mutating call is flushed (fsync) before it returns. The default.
    #[default]
    Durable,
    /// Changes are flushed by the backend in the background (sled: every
    /// 500 ms) or by [`Kms::flush`]. A crash can lose the last changes.
    Relaxed,
}

/// The service's configuration, fixed at build time.
#[derive(Debug, Clone)]
pub struct Config {
    /// The region id, used in ARNs and DescribeRegions.
    pub region_id: String,
    /// The account id, used in ARNs and `Creator`.
    pub account_id: String,
    /// When changes reach the disk.
    pub durability: Durability,
    /// The most keys a store may hold; `None` is unlimited.
    pub max_keys: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            region_id: DEFAULT_REGION_ID.into(),
            account_id: DEFAULT_ACCOUNT_ID.into(),
            durability: Durability::Durable,
            max_keys: None,
        }
    }
}

/// A cached key: its record and the ciphers of the versions used so far.
/// Replaced whole on every change to the key, which drops its ciphers.
pub(crate) struct KeyEntry {
    pub record: KeyRecord,
    ciphers: RwLock<crate::cache::IdMap<Arc<Xaes256Gcm>>>,
}

impl KeyEntry {
    pub(crate) fn new(record: KeyRecord) -> Arc<Self> {
        Arc::new(Self {
            record,
            ciphers: RwLock::new(crate::cache::IdMap::default()),
        })
    }
}

/// The key management service. Cheap to share: it is `Send + Sync`, and every
/// operation takes `&self`.
///
/// ```
/// let kms = localkms::Kms::in_memory()?;
/// let key = kms.create_key(&Default::default())?;
/// assert_eq!(key.key_state, localkms::KeyState::Enabled);
/// # Ok::<(), localkms::Error>(())
/// ```
pub struct Kms {
    pub(crate) store: Box<dyn Keystore>,
    pub(crate) root: RootKey,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: Config,
    /// Serializes every write, and holds the counters they change.
    writer: Mutex<Counters>,
    cache: crate::cache::KeyCache,
    /// Random source, fault rules and audit sink (src/testkit/).
    pub(crate) toolkit: crate::toolkit::Toolkit,
}

impl fmt::Debug for Kms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kms")
            .field("store", &self.store)
            .field("clock", &self.clock)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Where the builder puts the keys.
#[derive(Debug)]
enum StoreChoice {
    Sled(PathBuf),
    Memory,
    Custom(Box<dyn Keystore>),
}

/// Where the builder gets the root key.
#[derive(Debug)]
enum RootChoice {
    /// `dir/root.key`, created on first open.
    BesideStore(PathBuf),
    Key(Box<RootKey>),
    File(PathBuf),
    Env(String),
}

/// Chooses the keystore, root key, clock, identity and durability of a [`Kms`].
///
/// ```
/// use localkms::{Kms, ManualClock};
/// let clock = ManualClock::new(1_700_000_000);
/// let kms = Kms::builder()
///     .in_memory()
///     .root_key_bytes(&[7u8; 32])
///     .clock(clock.clone())
///     .region_id("cn-shanghai")
///     .build()?;
/// # Ok::<(), localkms::Error>(())
/// ```
#[derive(Debug)]
pub struct KmsBuilder {
    store: StoreChoice,
    root: Option<RootChoice>,
    root_error: Option<Error>,
    clock: Arc<dyn Clock>,
    config: Config,
    /// Set by `insecure_deterministic` (feature `test-util` only).
    pub(crate) deterministic_seed: Option<u64>,
}

impl KmsBuilder {
    /// A sled store in `dir` (the default store is in memory).
    pub fn sled(mut self, dir: impl Into<PathBuf>) -> Self {
        self.store = StoreChoice::Sled(dir.into());
        self
    }

    /// An in-memory store (the default).
    pub fn in_memory(mut self) -> Self {
        self.store = StoreChoice::Memory;
        self
    }

    /// Any keystore implementation.
    pub fn keystore(mut self, store: impl Keystore + 'static) -> Self {
        self.store = StoreChoice::Custom(Box::new(store));
        self
    }

    /// The root key, as 32 bytes.
    pub fn root_key_bytes(mut self, bytes: &[u8]) -> Self {
        match RootKey::from_bytes(bytes) {
            Ok(k) => self.root = Some(RootChoice::Key(Box::new(k))),
            Err(e) => self.root_error = Some(e),
        }
        self
    }

    /// The root key.
    pub fn root_key(mut self, key: RootKey) -> Self {
        self.root = Some(RootChoice::Key(Box::new(key)));
        self
    }

    /// The root key from a file (see [`RootKey::from_file`]).
    pub fn root_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.root = Some(RootChoice::File(path.into()));
        self
    }

    /// The root key from an environment variable (see [`RootKey::from_env`]).
    pub fn root_key_env(mut self, var: impl Into<String>) -> Self {
        self.root = Some(RootChoice::Env(var.into()));
        self
    }

    /// The root key in `root.key` inside the sled directory, created (mode
    /// 0600) on first open. Convenient; production should supply the root key
    /// from outside the store instead.
    pub fn root_key_beside_store(mut self) -> Self {
        if let StoreChoice::Sled(dir) = &self.store {
            self.root = Some(RootChoice::BesideStore(dir.clone()));
        }
        self
    }

    /// The clock (default [`SystemClock`]).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The region id (default `cn-hangzhou`).
    pub fn region_id(mut self, region: impl Into<String>) -> Self {
        self.config.region_id = region.into();
        self
    }

    /// The account id (default `1234567890123456`).
    pub fn account_id(mut self, account: impl Into<String>) -> Self {
        self.config.account_id = account.into();
        self
    }

    /// The durability mode (default [`Durability::Durable`]).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.config.durability = durability;
        self
    }

    /// The most keys the store may hold (default unlimited).
    pub fn max_keys(mut self, max: u64) -> Self {
        self.config.max_keys = Some(max);
        self
    }

    /// Opens the store and checks the root key against it.
    ///
    /// # Errors
    /// [`Error::InvalidRootKey`] for an unusable root key (or none given for a
    /// persistent store), [`Error::WrongRootKey`] when it does not open the
    /// store, [`Error::UnsupportedStoreVersion`], [`Error::StoreLocked`] when
    /// another process holds the store, [`Error::Storage`] otherwise. A failed
    /// build changes nothing in the store.
    pub fn build(self) -> Result<Kms> {
        if let Some(e) = self.root_error {
            return Err(e);
        }
        let root = match self.root {
            Some(RootChoice::Key(k)) => *k,
            Some(RootChoice::File(p)) => RootKey::from_file(p)?,
            Some(RootChoice::Env(v)) => RootKey::from_env(&v)?,
            Some(RootChoice::BesideStore(dir)) => root_key_beside(&dir)?,
            None => match self.store {
                StoreChoice::Memory => RootKey::generate()?.0,
                _ => {
                    return Err(Error::InvalidRootKey(
                        "a persistent store needs a root key (root_key_bytes, root_key_file, root_key_env or root_key_beside_store)".into(),
                    ));
                }
            },
        };
        let store: Box<dyn Keystore> = match self.store {
            StoreChoice::Sled(dir) => {
                create_private_dir(&dir)?;
                let existed = dir.join("db").exists();
                let store = SledKeystore::open(dir.join("db"))?;
                // sled recovers a damaged log to its last intact entry; when
                // nothing is left, say so rather than start a new store.
                if existed && store.get(NS_META, META_FORMAT)?.is_none() {
                    return Err(Error::CorruptStore(
                        "the store's files exist but hold no format record (damaged or truncated; a store whose creation was interrupted can be removed)".into(),
                    ));
                }
                Box::new(store)
            }
            StoreChoice::Memory => Box::new(MemoryKeystore::new()),
            StoreChoice::Custom(s) => s,
        };
        let mut kms = Kms::from_parts(store, root, self.clock, self.config)?;
        let next_seq = kms.lock_writer()?.next_seq;
        kms.toolkit.rng = crate::rng::Rng::new(self.deterministic_seed, next_seq);
        Ok(kms)
    }
}

/// Creates `dir` with mode 0700 if it is missing.
fn create_private_dir(dir: &Path) -> Result<()> {
    let io = |e: std::io::Error| {
        Error::Storage(crate::store::StoreError::Io(format!(
            "{}: {e}",
            dir.display()
        )))
    };
    if !dir.exists() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir).map_err(io)?;
    }
    Ok(())
}

/// Reads `dir/root.key`, or creates it (mode 0600) when the store is new.
fn root_key_beside(dir: &Path) -> Result<RootKey> {
    create_private_dir(dir)?;
    let path = dir.join(ROOT_KEY_FILE);
    if path.exists() {
        return RootKey::from_file(&path);
    }
    if dir.join("db").exists() {
        // A store without its key file: making a new key would only fail later.
        return Err(Error::InvalidRootKey(
            format!("{} is missing but the store exists", path.display()).into(),
        ));
    }
    let (key, bytes) = RootKey::generate()?;
    let hex: zeroize::Zeroizing<String> = zeroize::Zeroizing::new(
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>() + "\n",
    );
    write_private_file(&path, hex.as_bytes()).map_err(|e| {
        Error::InvalidRootKey(format!("cannot write {}: {e}", path.display()).into())
    })?;
    Ok(key)
}

/// Writes a new file with mode 0600, durably (file and directory synced).
fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

impl Kms {
    /// Opens (or creates) a durable store in `dir`, with its root key in
    /// `dir/root.key` (created with mode 0600 on first open; `dir` gets 0700).
    ///
    /// This is the convenient embedded default. A root key beside the store it
    /// protects guards only against someone who copies the store without the
    /// key file: production should supply the root key from outside the store
    /// with [`KmsBuilder::root_key_env`] or [`KmsBuilder::root_key_file`].
    ///
    /// # Errors
    /// As [`KmsBuilder::build`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::builder()
            .sled(dir.as_ref())
            .root_key_beside_store()
            .build()
    }

    /// An ephemeral in-memory store with a random root key, for tests.
    ///
    /// # Errors
    /// Only if the OS random source fails.
    pub fn in_memory() -> Result<Self> {
        Self::builder().in_memory().build()
    }

    /// A builder; by default an in-memory store, the system clock and the
    /// default region and account.
    pub fn builder() -> KmsBuilder {
        KmsBuilder {
            store: StoreChoice::Memory,
            root: None,
            root_error: None,
            clock: Arc::new(SystemClock),
            config: Config::default(),
            deterministic_seed: None,
        }
    }

    fn from_parts(
        store: Box<dyn Keystore>,
        root: RootKey,
        clock: Arc<dyn Clock>,
        config: Config,
    ) -> Result<Self> {
        let format = store.get(NS_META, META_FORMAT)?;
        let counters = match format {
            None => {
                // A new store: record the format and the root key check.
                if !store
                    .scan(
                        NS_KEY,
                        Scan {
                            limit: 1,
                            ..Scan::prefix(b"")
                        },
                    )?
                    .is_empty()
                {
                    return Err(Error::CorruptStore(
                        "the store has keys but no format record".into(),
                    ));
                }
                let mut b = Batch::new();
                b.put(NS_META, META_FORMAT, STORE_FORMAT.to_be_bytes().to_vec());
                b.put(
                    NS_META,
                    META_ROOT_CHECK,
                    root.seal(NS_META, META_ROOT_CHECK, ROOT_CHECK_PLAINTEXT)?,
                );
                b.put(NS_META, META_COUNTERS, Counters::default().encode());
                store.apply(b)?;
                store.flush()?;
                Counters::default()
            }
            Some(v) => {
                let version = <[u8; 4]>::try_from(v.as_slice())
                    .map(u32::from_be_bytes)
                    .map_err(|_| {
                        Error::CorruptStore("format record has the wrong length".into())
                    })?;
                if version != STORE_FORMAT {
                    return Err(Error::UnsupportedStoreVersion(version));
                }
                let check = store.get(NS_META, META_ROOT_CHECK)?.ok_or_else(|| {
                    Error::CorruptStore("root key check record is missing".into())
                })?;
                match root.open(NS_META, META_ROOT_CHECK, &check) {
                    Some(p) if p.as_slice() == ROOT_CHECK_PLAINTEXT => {}
                    _ => return Err(Error::WrongRootKey),
                }
                let c = store
                    .get(NS_META, META_COUNTERS)?
                    .ok_or_else(|| Error::CorruptStore("counters record is missing".into()))?;
                Counters::decode(&c)?
            }
        };
        Ok(Self {
            store,
            root,
            clock,
            config,
            writer: Mutex::new(counters),
            cache: crate::cache::KeyCache::new(),
            toolkit: Default::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The current time by the service's clock.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Makes every change so far durable (useful with [`Durability::Relaxed`]).
    ///
    /// # Errors
    /// A keystore failure.
    pub fn flush(&self) -> Result<()> {
        Ok(self.store.flush()?)
    }

    /// How many keys the store holds (deleted keys not yet purged included).
    pub fn key_count(&self) -> Result<u64> {
        Ok(self.lock_writer()?.key_count)
    }

    pub(crate) fn key_arn(&self, key_id: &str) -> String {
        format!(
            "acs:kms:{}:{}:key/{key_id}",
            self.config.region_id, self.config.account_id
        )
    }

    pub(crate) fn lock_writer(&self) -> Result<MutexGuard<'_, Counters>> {
        self.writer.lock().map_err(|_| Error::InternalFailure)
    }

    // ---- reading keys ------------------------------------------------------

    /// The key `key_id` (already resolved), after any time-driven change that
    /// is due. A key past its `DeleteDate` is purged here and is not found.
    pub(crate) fn entry(&self, key_id: &str) -> Result<Arc<KeyEntry>> {
        let cached = self.cache.get(key_id)?;
        let entry = match cached {
            Some(e) => e,
            None => {
                // Load under the writer lock, so a concurrent write cannot be
                // overtaken by this older copy.
                let _writer = self.lock_writer()?;
                let record = self.load_locked(key_id)?;
                self.cached_or_insert(record)?
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
        let now = self.clock.now();
        deletion_due(record, now)
            || crate::ops::import::material_expiry_due(record, now)
            || crate::ops::versions::rotation_due(record, now)
    }

    /// Applies due time-driven changes under the write lock.
    fn settle(&self, key_id: &str) -> Result<Arc<KeyEntry>> {
        let mut counters = self.lock_writer()?;
        let record = self.settle_locked(&mut counters, key_id)?;
        drop(counters);
        self.cached_or_insert(record)
    }

    /// Loads `key_id` (the caller holds the writer) and commits what is due:
    /// deletion at `DeleteDate` (the key is then not found), then each other
    /// time-driven change.
    fn settle_locked(&self, counters: &mut Counters, key_id: &str) -> Result<KeyRecord> {
        let mut record = self.load_locked(key_id)?;
        let now = self.clock.now();
        if deletion_due(&record, now) {
            self.purge_locked(counters, &record)?;
            return Err(Error::KeyNotFound(key_id.to_owned()));
        }
        // Material expiry (SPEC section 2): as if DeleteKeyMaterial ran then.
        if crate::ops::import::material_expiry_due(&record, now) {
            let mut batch = Batch::new();
            crate::ops::import::remove_material(&mut record, &mut batch);
            batch.put(NS_KEY, record.key_id.as_bytes().to_vec(), record.encode()?);
            self.commit(batch, Some(record.clone()), None)?;
        }
        // Automatic rotation (SPEC section 6): one new primary version and
        // the record naming it, in one batch.
        if crate::ops::versions::rotation_due(&record, now) {
            let mut batch = Batch::new();
            self.add_version(&mut record, &mut batch, now)?;
            batch.put(NS_KEY, record.key_id.as_bytes().to_vec(), record.encode()?);
            self.commit(batch, Some(record.clone()), None)?;
        }
        Ok(record)
    }

    fn cached_or_insert(&self, record: KeyRecord) -> Result<Arc<KeyEntry>> {
        self.cache.fill(record)
    }

    /// Reads a record straight from the store (the caller holds the writer).
    fn load_locked(&self, key_id: &str) -> Result<KeyRecord> {
        let bytes = self
            .store
            .get(NS_KEY, key_id.as_bytes())?
            .ok_or_else(|| Error::KeyNotFound(key_id.to_owned()))?;
        KeyRecord::decode(&bytes)
    }

    /// The cipher of one version of a key, built once and cached with the key.
    pub(crate) fn cipher(&self, entry: &KeyEntry, version_id: &str) -> Result<Arc<Xaes256Gcm>> {
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
        let Some(sealed) = self.store.get(NS_MATERIAL, &id)? else {
            // DeleteKeyMaterial (or expiry) may have landed after `entry`
            // was read: then the key is now PendingImport, not corrupt.
            let now = self.entry(key_id)?;
            if !now.record.has_material() {
                let state = now.record.state;
                let rejection = Rejection::for_use(state).unwrap_or(Rejection::PendingImport);
                return Err(Error::rejected(rejection, key_id, state));
            }
            return Err(Error::CorruptStore(
                format!("material of {key_id} version {version_id} is missing").into(),
            ));
        };
        let material = self
            .root
            .open(NS_MATERIAL, &id, &sealed)
            .and_then(|m| KeyMaterial::from_slice(&m))
            .ok_or_else(|| {
                Error::CorruptStore(
                    format!("material of {key_id} version {version_id} does not open").into(),
                )
            })?;
        let mut key = xaes_256_gcm::Key::<Xaes256Gcm>::from(*material.expose());
        let cipher = Arc::new(Xaes256Gcm::new(&key));
        zeroize::Zeroize::zeroize(key.as_mut_slice());
        entry
            .ciphers
            .write()
            .map_err(|_| Error::InternalFailure)?
            .insert(version_id.to_owned(), Arc::clone(&cipher));
        Ok(cipher)
    }

    /// Seals `material` as version `version_id` of `key_id` into `batch`.
    pub(crate) fn put_material(
        &self,
        batch: &mut Batch,
        key_id: &str,
        version_id: &str,
        material: &KeyMaterial,
    ) -> Result<()> {
        let id = material_id(key_id, version_id);
        let sealed = self.root.seal(NS_MATERIAL, &id, material.expose())?;
        batch.put(NS_MATERIAL, id, sealed);
        Ok(())
    }

    // ---- writing keys ------------------------------------------------------

    /// The one write path for an existing key: under the writer lock, reads the
    /// current record (applying due changes first), lets `change` edit it and
    /// add records to the batch, then commits, flushes and refreshes the cache.
    pub(crate) fn update_key<T>(
        &self,
        key_id: &str,
        change: impl FnOnce(&mut KeyRecord, &mut Batch) -> Result<T>,
    ) -> Result<(KeyRecord, T)> {
        let mut counters = self.lock_writer()?;
        let mut record = self.settle_locked(&mut counters, key_id)?;
        let mut batch = Batch::new();
        let out = change(&mut record, &mut batch)?;
        batch.put(NS_KEY, record.key_id.as_bytes().to_vec(), record.encode()?);
        self.commit(batch, Some(record.clone()), None)?;
        Ok((record, out))
    }

    /// Creates a key: under the writer lock, assigns its sequence number, lets
    /// `fill` finish the record and batch, and commits.
    pub(crate) fn insert_key(
        &self,
        make: impl FnOnce(u64, &mut Batch) -> Result<KeyRecord>,
    ) -> Result<KeyRecord> {
        let mut counters = self.lock_writer()?;
        if let Some(max) = self.config.max_keys
            && counters.key_count >= max
        {
            return Err(Error::LimitExceeded("keys per store".into()));
        }
        let mut batch = Batch::new();
        let record = make(counters.next_seq, &mut batch)?;
        let next = Counters {
            next_seq: counters.next_seq + 1,
            key_count: counters.key_count + 1,
        };
        batch.put(NS_KEY, record.key_id.as_bytes().to_vec(), record.encode()?);
        batch.put(
            NS_KEY_ORDER,
            record.seq.to_be_bytes().to_vec(),
            record.key_id.as_bytes().to_vec(),
        );
        batch.put(NS_META, META_COUNTERS, next.encode());
        self.commit(batch, Some(record.clone()), None)?;
        *counters = next;
        Ok(record)
    }

    /// Takes the writer lock for a change that is not an edit of one key
    /// record (aliases, tags): read live keys with [`Writer::key`], then
    /// [`Writer::commit`] one batch.
    pub(crate) fn writer(&self) -> Result<Writer<'_>> {
        Ok(Writer {
            kms: self,
            counters: self.lock_writer()?,
        })
    }

    /// Applies `batch`, flushes when durable, and refreshes the cache:
    /// `updated` replaces its key's entry, `removed` drops one.
    fn commit(
        &self,
        batch: Batch,
        updated: Option<KeyRecord>,
        removed: Option<&str>,
    ) -> Result<()> {
        self.store.apply(batch)?;
        // The batch is in the store: the cache must follow even if flush fails.
        if let Some(r) = updated {
            self.cache.update(r)?;
        }
        if let Some(id) = removed {
            self.cache.remove(id)?;
        }
        if self.config.durability == Durability::Durable {
            self.store.flush()?;
        }
        Ok(())
    }

    /// Removes a key and every record that belongs to it, in one batch.
    fn purge_locked(&self, counters: &mut Counters, record: &KeyRecord) -> Result<()> {
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
        let next = Counters {
            next_seq: counters.next_seq,
            key_count: counters.key_count.saturating_sub(1),
        };
        batch.put(NS_META, META_COUNTERS, next.encode());
        self.commit(batch, None, Some(key_id))?;
        *counters = next;
        Ok(())
    }

    /// Deletes, for good, every key whose `DeleteDate` has passed, with its
    /// material, aliases and tags. Access purges such keys lazily too; this
    /// call is for maintenance (there is no background thread). Returns how
    /// many keys it deleted.
    ///
    /// # Errors
    /// A keystore failure.
    pub fn purge_expired(&self) -> Result<usize> {
        let now = self.clock.now();
        let mut purged = 0;
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
                let mut counters = self.lock_writer()?;
                match self.load_locked(&key_id) {
                    Ok(record) if deletion_due(&record, now) => {
                        self.purge_locked(&mut counters, &record)?;
                        purged += 1;
                    }
                    _ => {
                        // A stale index entry (deletion was cancelled): drop it.
                        let mut b = Batch::new();
                        b.delete(NS_DELETION, id.clone());
                        self.commit(b, None, None)?;
                    }
                }
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

/// True when `record` is past its `DeleteDate`.
fn deletion_due(record: &KeyRecord, now: i64) -> bool {
    record.state == KeyState::PendingDeletion && record.delete_date.is_some_and(|d| now >= d)
}

/// The writer lock, held across reads and one atomic commit (see [`Kms::writer`]).
pub(crate) struct Writer<'a> {
    kms: &'a Kms,
    counters: MutexGuard<'a, Counters>,
}

impl Writer<'_> {
    /// The record of a live key. A key past its `DeleteDate` is purged now
    /// (its own batch) and is not found.
    pub(crate) fn key(&mut self, key_id: &str) -> Result<KeyRecord> {
        self.kms.settle_locked(&mut self.counters, key_id)
    }

    /// Applies `batch` (which changes no key record) and releases the lock.
    pub(crate) fn commit(self, batch: Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.kms.commit(batch, None, None)
    }
}

/// A lowercase hyphenated UUID.
pub(crate) fn is_key_id(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

/// Echoes user input in messages, cut short so a huge input stays readable.
pub(crate) fn shorten(s: &str) -> String {
    match s.char_indices().nth(128) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

/// A new lowercase UUID v4 from the OS CSPRNG.
pub(crate) fn new_uuid() -> Result<String> {
    let mut b = [0u8; 16];
    crate::secret::fill_random(&mut b)?;
    Ok(uuid::Builder::from_random_bytes(b)
        .into_uuid()
        .hyphenated()
        .to_string())
}
