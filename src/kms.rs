//! The service object: [`Kms`], its builder, and what every operation shares:
//! the store, the key cache, the write path, the random source, the fault
//! rules and the audit sink. It calls nothing above it: key lookup and the
//! time-driven changes due on a key are operations (`ops/resolve.rs`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

mod cache_ttl;
pub(crate) mod instrument;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::secret::KeyMaterial;
use crate::store::record::{
    Counters, HEAD_STORE_ID, KeyRecord, META_COUNTERS, META_FORMAT, NS_HEAD, NS_KEY, NS_KEY_ORDER,
    NS_MATERIAL, NS_META, material_id,
};
use crate::store::seal::RootKey;
use crate::store::sealed::{OpenOptions, SealedStore};
use crate::store::{Batch, Keystore, MemoryKeystore, Op, Report, RollBack, SledKeystore};

/// The default region id.
pub const DEFAULT_REGION_ID: &str = "cn-hangzhou";
/// The default account id (16 digits).
pub const DEFAULT_ACCOUNT_ID: &str = "1234567890123456";
/// The root key file that [`Kms::open`] keeps beside its store.
pub const ROOT_KEY_FILE: &str = "root.key";
/// The witness file a sled store keeps in its directory by default.
pub const WITNESS_FILE: &str = "store.witness";

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
    /// The sealed store: every record sealed, covered by the head.
    pub(crate) store: SealedStore,
    pub(crate) root: Arc<RootKey>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: Config,
    /// Serializes every write, and holds the counters they change.
    writer: Mutex<Counters>,
    pub(crate) cache: crate::cache::KeyCache,
    /// `KmsBuilder::cache_ttl` (kms/cache_ttl.rs).
    cache_ttl: Option<std::time::Duration>,
    /// Random source, fault rules and audit sink (src/testkit/).
    pub(crate) toolkit: instrument::Toolkit,
    /// A loss accepted at open (`recover_rolled_back`), for [`Kms::verify`].
    rolled_back: Option<RollBack>,
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
    witness: WitnessChoice,
    recover_rolled_back: bool,
    verify_on_open: bool,
    /// A backup to restore into the (empty) store at build.
    restore: Option<Vec<u8>>,
    /// Set by `insecure_deterministic` (feature `test-util` only).
    pub(crate) deterministic_seed: Option<u64>,
    /// Set by `cache_ttl` (kms/cache_ttl.rs).
    cache_ttl: Option<std::time::Duration>,
}

/// Where the witness is kept.
#[derive(Debug, Clone)]
enum WitnessChoice {
    /// `store.witness` in a sled store's directory; none for other stores.
    Default,
    Path(PathBuf),
    Off,
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

    /// Keeps the witness (SPEC section 9) in `path` instead of the store's
    /// directory: on other media, beside the root key, it also catches an old
    /// copy of the whole store directory put back. Any backend can have one.
    pub fn witness_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.witness = WitnessChoice::Path(path.into());
        self
    }

    /// No witness: a sled store that loses its last writes (or is replaced by
    /// an old copy) is then not detected at open.
    pub fn without_witness(mut self) -> Self {
        self.witness = WitnessChoice::Off;
        self
    }

    /// For an operator who accepts the loss: opens a store whose head is
    /// behind its witness (or whose witness is missing or damaged) instead
    /// of refusing it with [`Error::StoreRolledBack`]. The witness is reset
    /// to the store, and [`Kms::verify`] reports what was lost.
    pub fn recover_rolled_back(mut self, recover: bool) -> Self {
        self.recover_rolled_back = recover;
        self
    }

    /// Runs [`Kms::verify`] at open and refuses a store that fails it with
    /// [`Error::CorruptStore`]. It reads every record: for small stores.
    pub fn verify_on_open(mut self, verify: bool) -> Self {
        self.verify_on_open = verify;
        self
    }

    /// Restores the backup read from `reader` ([`Kms::backup`]) into the
    /// store at build. The store must hold no record (a root key file may
    /// exist); the backup must be whole, unchanged and of this root key. It
    /// is checked completely before anything is written, and written in one
    /// atomic batch; it keeps the backup's store id. A witness at the
    /// store's witness path is replaced.
    pub fn restore(mut self, mut reader: impl std::io::Read) -> Self {
        let mut bytes = Vec::new();
        match reader.read_to_end(&mut bytes) {
            Ok(_) => self.restore = Some(bytes),
            Err(e) => self.root_error = Some(Error::from(e)),
        }
        self
    }

    /// Opens the store and checks the root key against it.
    ///
    /// # Errors
    /// [`Error::InvalidRootKey`] for an unusable root key (or none given for a
    /// persistent store, or a key file open to group or others),
    /// [`Error::WrongRootKey`] when it does not open the store,
    /// [`Error::UnsupportedStoreVersion`], [`Error::StoreLocked`] when
    /// another process holds the store, [`Error::StoreRolledBack`] when the
    /// store is behind its witness, [`Error::CorruptStore`] when the head
    /// does not open (or `verify_on_open` fails), [`Error::Storage`]
    /// otherwise. A failed build changes nothing in the store's records. A
    /// first-format store is migrated in place, in one atomic batch.
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
        let mut witness = match &self.witness {
            WitnessChoice::Path(p) => Some(p.clone()),
            WitnessChoice::Default | WitnessChoice::Off => None,
        };
        let store: Box<dyn Keystore> = match self.store {
            StoreChoice::Sled(dir) => {
                create_private_dir(&dir)?;
                if matches!(self.witness, WitnessChoice::Default) {
                    witness = Some(dir.join(WITNESS_FILE));
                }
                let existed = dir.join("db").exists();
                let store = SledKeystore::open(dir.join("db"))?;
                // sled recovers a damaged log to its last intact entry; when
                // nothing is left, say so rather than start a new store.
                if existed
                    && self.restore.is_none()
                    && store.get(NS_META, META_FORMAT)?.is_none()
                    && store.get(NS_HEAD, HEAD_STORE_ID)?.is_none()
                {
                    return Err(Error::CorruptStore(
                        "the store's files exist but hold no format record (damaged or truncated; a store whose creation was interrupted can be removed)".into(),
                    ));
                }
                Box::new(store)
            }
            StoreChoice::Memory => Box::new(MemoryKeystore::new()),
            StoreChoice::Custom(s) => s,
        };
        if let Some(bytes) = &self.restore {
            crate::store::backup::restore(store.as_ref(), &root, bytes)?;
            if let Some(w) = &witness {
                match std::fs::remove_file(w) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                    _ => {}
                }
            }
        }
        let opts = OpenOptions {
            witness,
            recover_rolled_back: self.recover_rolled_back,
            restored: self.restore.is_some(),
        };
        let mut kms = Kms::from_parts(store, root, self.clock, self.config, &opts)?;
        let next_seq = kms.lock_writer()?.next_seq;
        kms.toolkit.rng = crate::rng::Rng::new(self.deterministic_seed, next_seq);
        kms.cache_ttl = self.cache_ttl;
        if self.verify_on_open {
            let report = kms.verify()?;
            if !report.is_ok() {
                return Err(Error::CorruptStore(
                    format!("verify at open: {report}").into(),
                ));
            }
        }
        Ok(kms)
    }
}

/// Creates `dir` with mode 0700 if it is missing, and makes it 0700 if it
/// exists.
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
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir).map_err(io)?.permissions().mode() & 0o777;
        if mode != 0o700 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
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
    let hex = RootKey::hex_text(&bytes);
    write_private_file(&path, hex.as_ref()).map_err(|e| {
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
            witness: WitnessChoice::Default,
            recover_rolled_back: false,
            verify_on_open: false,
            restore: None,
            deterministic_seed: None,
            cache_ttl: None,
        }
    }

    fn from_parts(
        store: Box<dyn Keystore>,
        root: RootKey,
        clock: Arc<dyn Clock>,
        config: Config,
        opts: &OpenOptions,
    ) -> Result<Self> {
        let root = Arc::new(root);
        let (store, opened) = SealedStore::open(store, Arc::clone(&root), opts, || {
            let mut b = Batch::new();
            b.put(NS_META, META_COUNTERS, Counters::default().encode());
            Ok(b)
        })?;
        let c = store
            .get(NS_META, META_COUNTERS)?
            .ok_or_else(|| Error::CorruptStore("counters record is missing".into()))?;
        let counters = Counters::decode(&c)?;
        Ok(Self {
            store,
            root,
            clock,
            config,
            writer: Mutex::new(counters),
            cache: crate::cache::KeyCache::new(),
            cache_ttl: None,
            toolkit: Default::default(),
            rolled_back: opened.rolled_back,
        })
    }

    /// Writes a consistent snapshot of the store to `writer` (format in
    /// docs/FORMAT.md, "Backup"): the sealed records as stored, under a MAC
    /// of a key derived from the root key. Writes wait while the snapshot is
    /// taken. Restore it with [`KmsBuilder::restore`].
    ///
    /// # Errors
    /// A keystore failure, or [`Error::Io`] when `writer` fails.
    pub fn backup(&self, mut writer: impl std::io::Write) -> Result<crate::store::BackupInfo> {
        let (bytes, info) = {
            let _writer = self.lock_writer()?;
            self.store.backup()?
        };
        writer.write_all(&bytes)?;
        writer.flush()?;
        Ok(info)
    }

    /// Checks the whole store (SPEC section 9): every record opens, the
    /// records' digest matches the head, and every key's material is there
    /// in the key's generation. Writes wait while it runs. A forged, changed
    /// or copied record is named; a replayed, deleted or inserted one shows
    /// as a digest mismatch. A loss accepted at open with
    /// [`KmsBuilder::recover_rolled_back`] is reported too.
    ///
    /// # Errors
    /// A keystore failure. Findings are in the [`Report`], not errors.
    pub fn verify(&self) -> Result<Report> {
        let _writer = self.lock_writer()?;
        let mut report = self.store.verify()?;
        report.rolled_back = self.rolled_back;
        if report.unreadable.is_empty() {
            self.verify_materials(&mut report)?;
        }
        Ok(report)
    }

    /// Every version of every key with material has its material record, of
    /// the key's generation.
    fn verify_materials(&self, report: &mut Report) -> Result<()> {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = self.store.scan(
                NS_KEY,
                crate::store::Scan {
                    after: after.as_deref(),
                    limit: 256,
                    ..crate::store::Scan::prefix(b"")
                },
            )?;
            let Some((last, _)) = page.last() else {
                return Ok(());
            };
            after = Some(last.clone());
            for (_, bytes) in &page {
                let record = match KeyRecord::decode(bytes) {
                    Ok(r) => r,
                    Err(e) => {
                        report.problems.push(e.to_string());
                        continue;
                    }
                };
                if !record.has_material() {
                    continue;
                }
                for v in &record.versions {
                    if let Err(e) = self.open_material(&record, &v.id) {
                        report.problems.push(e.to_string());
                    }
                }
            }
        }
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

    /// Reads a record straight from the store (the caller holds the writer).
    pub(crate) fn load_locked(&self, key_id: &str) -> Result<KeyRecord> {
        let bytes = self
            .store
            .get(NS_KEY, key_id.as_bytes())?
            .ok_or_else(|| Error::KeyNotFound(key_id.to_owned()))?;
        KeyRecord::decode(&bytes)
    }

    /// The material of version `version_id` of `record`: refused unless it is
    /// of the record's generation (an old copy put back is not).
    ///
    /// # Errors
    /// [`Error::CorruptStore`] when it is missing, does not open, or is of
    /// another generation.
    pub(crate) fn open_material(
        &self,
        record: &KeyRecord,
        version_id: &str,
    ) -> Result<KeyMaterial> {
        let opened = self.open_material_bytes(record, version_id)?;
        KeyMaterial::from_slice(&opened).ok_or_else(|| {
            Error::CorruptStore(
                format!(
                    "material of {} version {version_id} is not 32 bytes",
                    record.key_id
                )
                .into(),
            )
        })
    }

    /// Opens the material of one version of `record`, whatever its length
    /// (a PKCS#8 private key, an HMAC key, an SM4 key), refusing a copy of
    /// another generation of the key.
    pub(crate) fn open_material_bytes(
        &self,
        record: &KeyRecord,
        version_id: &str,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        let key_id = record.key_id.as_str();
        let id = material_id(key_id, version_id);
        let value = self.store.get(NS_MATERIAL, &id)?.ok_or_else(|| {
            Error::CorruptStore(
                format!("material of {key_id} version {version_id} is missing").into(),
            )
        })?;
        let (generation, sealed) = value.split_at_checked(8).ok_or_else(|| {
            Error::CorruptStore(
                format!("material of {key_id} version {version_id} is too short").into(),
            )
        })?;
        let generation =
            u64::from_be_bytes(generation.try_into().map_err(|_| Error::InternalFailure)?);
        if generation != record.generation {
            return Err(Error::CorruptStore(
                format!(
                    "material of {key_id} version {version_id} is of generation {generation}, the key of {} (an old copy)",
                    record.generation
                )
                .into(),
            ));
        }
        self.root.open(NS_MATERIAL, &id, sealed).ok_or_else(|| {
            Error::CorruptStore(
                format!("material of {key_id} version {version_id} does not open").into(),
            )
        })
    }

    /// Seals `material` as version `version_id` of `key_id` into `batch`. The
    /// commit that writes it binds it to the key's generation
    /// ([`Kms::commit`]).
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

    /// Seals variable-length `material` (a PKCS#8 private key, an HMAC key,
    /// an SM4 key) as version `version_id` of `key_id` into `batch`. The one
    /// write path of material that is not 32 bytes; read it back with
    /// [`Kms::open_material_bytes`].
    pub(crate) fn put_material_bytes(
        &self,
        batch: &mut Batch,
        key_id: &str,
        version_id: &str,
        material: &[u8],
    ) -> Result<()> {
        let id = material_id(key_id, version_id);
        let sealed = self.root.seal(NS_MATERIAL, &id, material)?;
        batch.put(NS_MATERIAL, id, sealed);
        Ok(())
    }

    // ---- writing keys ------------------------------------------------------

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
    ///
    /// Every material record in `batch` belongs to `updated` and is bound
    /// here to its generation.
    pub(crate) fn commit(
        &self,
        mut batch: Batch,
        updated: Option<KeyRecord>,
        removed: Option<&str>,
    ) -> Result<()> {
        bind_generation(&mut batch, updated.as_ref())?;
        let seq = self.store.commit(batch)?;
        // The batch is in the store: the cache must follow even if flush fails.
        if let Some(r) = updated {
            self.cache.update(r, seq)?;
        }
        if let Some(id) = removed {
            self.cache.remove(id, seq)?;
        }
        if self.config.durability == Durability::Durable {
            self.store.flush()?;
        }
        Ok(())
    }
}

/// Prefixes each material record of `batch` with the generation of the key it
/// belongs to, `updated`; a material record of any other key is a bug.
fn bind_generation(batch: &mut Batch, updated: Option<&KeyRecord>) -> Result<()> {
    for op in batch.ops_mut() {
        if let Op::Put { ns, id, value } = op
            && *ns == NS_MATERIAL
        {
            let record = updated.ok_or(Error::InternalFailure)?;
            let prefix = record.key_id.as_bytes();
            if !(id.starts_with(prefix) && id.get(prefix.len()) == Some(&b'/')) {
                return Err(Error::InternalFailure);
            }
            let mut bound = Vec::with_capacity(8 + value.len());
            bound.extend_from_slice(&record.generation.to_be_bytes());
            bound.extend_from_slice(value);
            *value = bound;
        }
    }
    Ok(())
}

/// The writer lock, held across reads and one atomic commit (see [`Kms::writer`]).
pub(crate) struct Writer<'a> {
    pub(crate) kms: &'a Kms,
    pub(crate) counters: MutexGuard<'a, Counters>,
}

impl Writer<'_> {
    /// Applies `batch` (which changes no key record) and releases the lock.
    pub(crate) fn commit(self, batch: Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.kms.commit(batch, None, None)
    }
}

impl KmsBuilder {
    /// **INSECURE. Tests only; never use in production.** Makes key ids,
    /// version ids, key material, nonces and data keys a function of `seed`,
    /// so an application can snapshot-test its ciphertexts. Anyone who knows
    /// the seed knows every key of the service.
    ///
    /// Only in builds with the `test-util` feature, so a default build cannot
    /// reach it. Outputs are reproducible for a single-threaded sequence of
    /// calls on a fresh store with the same seed (a reopened persistent store
    /// draws a new stream, so it never repeats the ids of its keys; clock
    /// values affect only timestamps, never ids or blobs): concurrent calls draw
    /// from one generator in an order that depends on thread timing. The root
    /// key, sealing nonces at rest, BYOK wrapping keys and import tokens stay
    /// random.
    ///
    /// ```
    /// use localkms::{Kms, ManualClock};
    /// let make = || Kms::builder().clock(ManualClock::new(1_700_000_000)).insecure_deterministic(42).build();
    /// let (a, b) = (make()?, make()?);
    /// assert!(a.is_insecure_deterministic());
    /// let ka = a.create_key(&Default::default())?;
    /// assert_eq!(ka.key_id, b.create_key(&Default::default())?.key_id);
    /// let ctx = Default::default();
    /// assert_eq!(
    ///     a.encrypt(&ka.key_id, b"hi", &ctx)?.ciphertext_blob,
    ///     b.encrypt(&ka.key_id, b"hi", &ctx)?.ciphertext_blob,
    /// );
    /// # Ok::<(), localkms::Error>(())
    /// ```
    #[cfg(feature = "test-util")]
    pub fn insecure_deterministic(mut self, seed: u64) -> Self {
        self.deterministic_seed = Some(seed);
        self
    }
}

impl Kms {
    /// Fills `buf` from this service's random source.
    pub(crate) fn fill_random(&self, buf: &mut [u8]) -> Result<()> {
        self.toolkit.rng.fill_random(buf)
    }

    /// A new lowercase UUID v4 (a KeyId or KeyVersionId).
    pub(crate) fn new_uuid(&self) -> Result<String> {
        self.toolkit.rng.new_uuid()
    }

    /// Fresh 256-bit key material.
    pub(crate) fn new_material(&self) -> Result<KeyMaterial> {
        self.toolkit.rng.new_material()
    }

    /// True when this service was built with
    /// `KmsBuilder::insecure_deterministic`: its keys are predictable and
    /// must never protect real data.
    pub fn is_insecure_deterministic(&self) -> bool {
        self.toolkit.rng.is_insecure_deterministic()
    }
}
