//! The service object: [`Kms`], its builder, and what every operation shares:
//! the store, the key cache, the write path, the random source, the fault
//! rules and the audit sink. It calls nothing above it: key lookup and the
//! time-driven changes due on a key are operations (`ops/resolve.rs`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

mod dry_run;
pub(crate) mod instrument;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::secret::KeyMaterial;
use crate::store::record::{
    Counters, HEAD_STORE_ID, KeyRecord, META_COUNTERS, META_FORMAT, NS_HEAD, NS_KEY, NS_KEY_ORDER,
    NS_MATERIAL, NS_META, material_id,
};
use crate::store::seal::{RootCell, RootKey};
use crate::store::sealed::{OpenOptions, SealedStore, Snapshot};
use crate::store::{Batch, Keystore, MemoryKeystore, Op, Report, RollBack, SledKeystore};

/// The default region id.
pub const DEFAULT_REGION_ID: &str = "cn-hangzhou";
/// The default account id (16 digits).
pub const DEFAULT_ACCOUNT_ID: &str = "1234567890123456";
/// How long a cached key record is trusted by default ([`KmsBuilder::cache_ttl`]).
pub const DEFAULT_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);
/// The root key file that [`Kms::open`] keeps beside its store.
pub const ROOT_KEY_FILE: &str = "root.key";
/// The witness file a sled store keeps in its directory by default.
pub const WITNESS_FILE: &str = "store.witness";

/// When a mutating call's changes reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
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
    /// How long a cached key record is trusted before it is read again, so
    /// a change made by another process sharing the store is honoured
    /// within this bound. Zero reads through on every use. Default 1 s.
    pub cache_ttl: std::time::Duration,
    /// How long a root-key rotation's exclusive lease on a shared store
    /// lasts (SPEC section 9): other holders' writes wait while it is held,
    /// and a lease whose holder died lapses after it. A rotation that runs
    /// longer fails, changing nothing, if another holder wrote meanwhile.
    /// Default 5 minutes.
    pub rotation_lease: std::time::Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            region_id: DEFAULT_REGION_ID.into(),
            account_id: DEFAULT_ACCOUNT_ID.into(),
            durability: Durability::Durable,
            max_keys: None,
            cache_ttl: DEFAULT_CACHE_TTL,
            rotation_lease: crate::store::sealed::DEFAULT_ROTATION_LEASE,
        }
    }
}

/// The key management service. Cheap to clone, like a connection pool: a
/// clone is another handle on the same service (an `Arc` inside), so it can
/// be handed to threads and tasks without wrapping. It is `Send + Sync`, and
/// every operation takes `&self`.
///
/// ```
/// let kms = localkms::Kms::in_memory()?;
/// let key = kms.create_key(&Default::default())?;
/// assert_eq!(key.key_state, localkms::KeyState::Enabled);
/// let for_a_thread = kms.clone();
/// std::thread::spawn(move || for_a_thread.describe_key(&key.key_id)).join().unwrap()?;
/// # Ok::<(), localkms::Error>(())
/// ```
#[derive(Clone)]
pub struct Kms {
    inner: Arc<KmsInner>,
}

impl std::ops::Deref for Kms {
    type Target = KmsInner;
    fn deref(&self) -> &KmsInner {
        &self.inner
    }
}

/// The shared state behind a [`Kms`] handle (not part of the API).
#[doc(hidden)]
pub struct KmsInner {
    /// The sealed store: every record sealed, covered by the head.
    pub(crate) store: SealedStore,
    /// The root key, shared with the store; replaced by a rotation.
    pub(crate) root: Arc<RootCell>,
    /// The root key file beside the store ([`Kms::open`]), rewritten by a
    /// rotation.
    root_file: Option<PathBuf>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: Config,
    /// Serializes this process's writes, so they rarely conflict with each
    /// other. Correctness does not rest on it: every commit applies only if
    /// the store's head is unchanged since the write began ([`Writer`]).
    writer: Mutex<()>,
    pub(crate) cache: crate::cache::KeyCache,
    /// Random source, fault rules and audit sink (src/testkit/).
    pub(crate) toolkit: instrument::Toolkit,
    /// A loss accepted at open (`recover_rolled_back`), for [`Kms::verify`].
    rolled_back: Option<RollBack>,
}

/// A summary: the backend (its own summary: kind, path, record count), the
/// clock, the configuration and the random source. Never a record.
impl fmt::Debug for Kms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kms")
            .field("store", &self.store)
            .field("clock", &self.clock)
            .field("config", &self.config)
            .field("rng", &self.toolkit.rng)
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
    /// `root.key` in the sled directory, created on first open (whichever
    /// order the builder calls came in).
    BesideStore,
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
///
/// Every method returns the builder, and the result of [`KmsBuilder::build`]
/// does not depend on the order of the calls (the last call of each kind
/// wins).
#[must_use = "a builder does nothing until build() is called"]
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
    rng: Option<Box<dyn crate::rng::DynRng>>,
    /// Set by `insecure_deterministic` (feature `test-util` only).
    pub(crate) deterministic_seed: Option<u64>,
}

impl fmt::Debug for KmsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsBuilder")
            .field("store", &self.store)
            .field("root", &self.root)
            .field("clock", &self.clock)
            .field("config", &self.config)
            .field("witness", &self.witness)
            .field("recover_rolled_back", &self.recover_rolled_back)
            .field("verify_on_open", &self.verify_on_open)
            .field("restore", &self.restore.as_ref().map(Vec::len))
            .field("custom_rng", &self.rng.is_some())
            .field("deterministic", &self.deterministic_seed.is_some())
            .finish()
    }
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
    ///
    /// It may come before or after [`KmsBuilder::sled`]; without a sled store
    /// [`KmsBuilder::build`] refuses it.
    pub fn root_key_beside_store(mut self) -> Self {
        self.root = Some(RootChoice::BesideStore);
        self
    }

    /// The random source for key ids, key material, nonces and data keys: any
    /// `rand_core` [`TryCryptoRng`](rand_core::TryCryptoRng) (an HSM's
    /// generator, a FIPS DRBG). The default is the OS CSPRNG (`getrandom`).
    /// A generator that fails makes the operation fail with
    /// `InternalFailure`. The root key, sealing nonces at rest, BYOK wrapping
    /// keys and import tokens always come from the OS.
    ///
    /// ```
    /// let kms = localkms::Kms::builder().rng(getrandom::SysRng).build()?;
    /// kms.create_key(&Default::default())?;
    /// # Ok::<(), localkms::Error>(())
    /// ```
    pub fn rng(mut self, rng: impl rand_core::TryCryptoRng + Send + 'static) -> Self {
        self.rng = Some(Box::new(rng));
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

    /// How long a cached key record is trusted before it is read again
    /// (default 1 s; [`Duration::ZERO`](std::time::Duration::ZERO) reads
    /// through on every use). A change made by another process sharing the
    /// store (DisableKey, ScheduleKeyDeletion, rotation, DeleteKeyMaterial…)
    /// is honoured here within this bound, measured on the service's clock.
    /// Key material never changes, so built ciphers stay cached; only the key
    /// record is read again. Aliases are always read from the store.
    pub fn cache_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.config.cache_ttl = ttl;
        self
    }

    /// How long a root-key rotation's exclusive lease on a shared store
    /// (PostgreSQL) lasts, on the service's clock (default 5 minutes; see
    /// [`Config::rotation_lease`]).
    pub fn rotation_lease(mut self, lease: std::time::Duration) -> Self {
        self.config.rotation_lease = lease;
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
        let beside = match (&self.root, &self.store) {
            (Some(RootChoice::BesideStore), StoreChoice::Sled(dir)) => {
                Some(dir.join(ROOT_KEY_FILE))
            }
            _ => None,
        };
        let mut root = match self.root {
            Some(RootChoice::Key(k)) => *k,
            Some(RootChoice::File(p)) => RootKey::from_file(p)?,
            Some(RootChoice::Env(v)) => RootKey::from_env(&v)?,
            Some(RootChoice::BesideStore) => match &self.store {
                StoreChoice::Sled(dir) => root_key_beside(dir)?,
                _ => {
                    return Err(Error::InvalidRootKey(
                        "root_key_beside_store needs a sled store (KmsBuilder::sled)".into(),
                    ));
                }
            },
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
        if let Some(file) = &beside {
            root = settle_new_root_file(store.as_ref(), file, root)?;
        }
        if let Some(bytes) = &self.restore {
            // The witness of the backup's commit is written before the
            // batch: killed before the batch, the store is empty (refused
            // as such, and restorable again); after it, the store opens.
            crate::store::backup::restore(store.as_ref(), &root, bytes, |id, seq| {
                if let Some(w) = &witness {
                    crate::store::witness::Witness::create(w, &root.keys().witness, id, seq)?;
                }
                Ok(())
            })?;
        }
        let opts = OpenOptions {
            witness,
            recover_rolled_back: self.recover_rolled_back,
            restored: self.restore.is_some(),
            clock: Some(Arc::clone(&self.clock)),
            rotation_lease: Some(self.config.rotation_lease),
        };
        let mut inner = Kms::from_parts(store, root, self.clock, self.config, &opts)?;
        inner.toolkit.rng = match (self.deterministic_seed, self.rng) {
            (Some(seed), _) => crate::rng::Rng::new(Some(seed), next_epoch(&inner.store)?),
            (None, Some(r)) => crate::rng::Rng::Custom(Mutex::new(r)),
            (None, None) => crate::rng::Rng::Os,
        };
        inner.root_file = beside;
        let kms = Kms {
            inner: Arc::new(inner),
        };
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

/// The deterministic generator's epoch for this open: how many times the
/// store was opened in deterministic mode before, counted in the store, so a
/// reopened store draws a new stream even when it made no keys.
fn next_epoch(store: &SealedStore) -> Result<u64> {
    const META_DRBG_EPOCH: &[u8] = b"drbg-epoch";
    let epoch = match store.get(NS_META, META_DRBG_EPOCH)? {
        None => 0,
        Some(v) => <[u8; 8]>::try_from(v.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| {
                Error::CorruptStore("the drbg-epoch record has the wrong length".into())
            })?,
    };
    let mut b = Batch::new();
    b.put(
        NS_META,
        META_DRBG_EPOCH,
        epoch.saturating_add(1).to_be_bytes().to_vec(),
    );
    store.commit(b)?;
    store.flush()?;
    Ok(epoch)
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

/// `<file>.new`: the new root key file of a rotation, written before the
/// rotation's batch and renamed over `file` after it.
fn new_root_file(file: &Path) -> PathBuf {
    let mut p = file.as_os_str().to_owned();
    p.push(".new");
    PathBuf::from(p)
}

/// At open of a store whose root key is beside it: a `root.key.new` left by
/// a rotation that crashed is put in place if its key opens the store (the
/// batch landed), else removed (it did not; `current` still opens it).
fn settle_new_root_file(store: &dyn Keystore, file: &Path, current: RootKey) -> Result<RootKey> {
    let next = new_root_file(file);
    if !next.exists() {
        return Ok(current);
    }
    let io = |e: std::io::Error| {
        Error::InvalidRootKey(format!("cannot replace {}: {e}", file.display()).into())
    };
    let candidate = RootKey::from_file(&next);
    match candidate {
        Ok(key) if crate::store::sealed::opens(store, &key)? => {
            std::fs::rename(&next, file).map_err(io)?;
            sync_parent_dir(file).map_err(io)?;
            Ok(key)
        }
        _ => {
            std::fs::remove_file(&next).map_err(io)?;
            sync_parent_dir(file).map_err(io)?;
            Ok(current)
        }
    }
}

fn sync_parent_dir(path: &Path) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
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

    /// A builder; by default an in-memory store, the system clock, the OS
    /// random source and the default region and account.
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
            rng: None,
            deterministic_seed: None,
        }
    }

    fn from_parts(
        store: Box<dyn Keystore>,
        root: RootKey,
        clock: Arc<dyn Clock>,
        config: Config,
        opts: &OpenOptions,
    ) -> Result<KmsInner> {
        let root = Arc::new(RootCell::new(root));
        let (store, opened) = SealedStore::open(store, Arc::clone(&root), opts, || {
            let mut b = Batch::new();
            b.put(NS_META, META_COUNTERS, Counters::default().encode());
            Ok(b)
        })?;
        let kms = KmsInner {
            store,
            root,
            clock,
            config,
            writer: Mutex::new(()),
            cache: crate::cache::KeyCache::new(),
            toolkit: Default::default(),
            rolled_back: opened.rolled_back,
            root_file: None,
        };
        let c = kms
            .store
            .get(NS_META, META_COUNTERS)?
            .ok_or_else(|| Error::CorruptStore("counters record is missing".into()))?;
        Counters::decode(&c)?;
        Ok(kms)
    }

    /// The key counters as the store holds them now.
    pub(crate) fn read_counters(&self) -> Result<Counters> {
        let c = self
            .store
            .get(NS_META, META_COUNTERS)?
            .ok_or_else(|| Error::CorruptStore("counters record is missing".into()))?;
        Counters::decode(&c)
    }

    /// The cache TTL in milliseconds of the service's clock.
    pub(crate) fn cache_ttl_ms(&self) -> i64 {
        i64::try_from(self.config.cache_ttl.as_millis()).unwrap_or(i64::MAX)
    }

    /// Runs `attempt` until it does not lose a write race (a
    /// [`StoreError::Conflict`](crate::store::StoreError::Conflict)), at
    /// most a bounded number of times; each run reads the store afresh.
    pub(crate) fn retrying<T>(&self, mut attempt: impl FnMut() -> Result<T>) -> Result<T> {
        let mut n = 0;
        loop {
            match attempt() {
                Err(e)
                    if crate::store::sealed::is_conflict(&e)
                        && n < crate::store::sealed::WRITE_ATTEMPTS =>
                {
                    n += 1;
                    crate::store::sealed::conflict_backoff(n);
                }
                other => return other,
            }
        }
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

    /// Rotates the root key to `new` (SPEC section 9): every record is
    /// sealed again under keys derived from `new` (record, digest, witness and
    /// backup keys all change), and so is the inner seal of key material,
    /// import tokens and the import secret. Afterwards the old key is
    /// refused with [`Error::RootKeyRotated`]; the new key is used by this
    /// service at once. Ciphertexts are unchanged (key material is). Backups
    /// taken before stay restorable with the old key only.
    ///
    /// Crash safety: the switch is one atomic batch. Killed before it, the
    /// store opens with the old key (and the new one is refused with
    /// [`Error::RootKeyRotated`], "did not complete"); after it, with the new
    /// key. With the root key beside the store ([`Kms::open`]) the new key is
    /// written to `root.key.new` (fsynced) before the batch and renamed over
    /// `root.key` after it; [`Kms::open`] finishes or discards a leftover
    /// `root.key.new` by whether its key opens the store. The witness is
    /// replaced the same way (`store.witness.next`).
    ///
    /// Every write of this service waits while it runs. On a store shared
    /// by several processes (PostgreSQL), the rotation first takes an
    /// exclusive lease in the store's head ([`KmsBuilder::rotation_lease`]):
    /// other processes' writes are refused with a retryable
    /// [`StoreError::Locked`](crate::store::StoreError::Locked) while it is
    /// held, and the switch commits only if no other process wrote, so none
    /// writes under the retired key. Another process that still holds the
    /// old key gets [`Error::RootKeyRotated`] on its next read or commit.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] when `new` is the current key,
    /// [`Error::CorruptStore`] when a record does not open (nothing is
    /// written; run [`Kms::verify`]), a keystore or file failure.
    pub fn rotate_root_key(&self, new: RootKey) -> Result<()> {
        let _writer = self.lock_writer()?;
        let file = self.root_file.clone();
        let mut new_bytes: Option<zeroize::Zeroizing<[u8; 65]>> = None;
        if file.is_some() {
            new_bytes = Some(new.to_hex_text());
        }
        self.store.rotate(
            new,
            reseal_inner,
            || {
                if let (Some(f), Some(text)) = (&file, &new_bytes) {
                    let next = new_root_file(f);
                    match std::fs::remove_file(&next) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                        _ => {}
                    }
                    write_private_file(&next, text.as_ref())?;
                }
                Ok(())
            },
            || {
                if let Some(f) = &file {
                    std::fs::rename(new_root_file(f), f)?;
                    sync_parent_dir(f)?;
                }
                Ok(())
            },
        )?;
        Ok(())
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
            for (id, bytes) in &page {
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
                        // Another process sharing the store may have deleted
                        // the key or its material since the page was read
                        // (that commit changes the key record too): only a
                        // key record still as read makes this a finding.
                        if self.store.get(NS_KEY, id)?.as_deref() == Some(bytes.as_slice()) {
                            report.problems.push(e.to_string());
                        }
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
        Ok(self.read_counters()?.key_count)
    }

    pub(crate) fn key_arn(&self, key_id: &str) -> String {
        format!(
            "acs:kms:{}:{}:key/{key_id}",
            self.config.region_id, self.config.account_id
        )
    }

    pub(crate) fn lock_writer(&self) -> Result<MutexGuard<'_, ()>> {
        self.writer.lock().map_err(|_| Error::InternalFailure)
    }

    /// Reads a record straight from the store.
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
        let root = self.root.get();
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
        if let Some(opened) = root.open(NS_MATERIAL, &id, sealed) {
            return Ok(opened);
        }
        // A rotation between reading the key and the record: read again.
        if !Arc::ptr_eq(&root, &self.root.get()) {
            return self.open_material_bytes(record, version_id);
        }
        Err(Error::CorruptStore(
            format!("material of {key_id} version {version_id} does not open").into(),
        ))
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

    /// Creates a key: in one write ([`Kms::writer`]), reads the counters,
    /// assigns its sequence number, lets `fill` finish the record and batch,
    /// and commits. Loses with a conflict (retried by the operation) when
    /// another writer committed meanwhile, so `max_keys` and the sequence
    /// hold across processes.
    pub(crate) fn insert_key(
        &self,
        make: impl FnOnce(u64, &mut Batch) -> Result<KeyRecord>,
    ) -> Result<KeyRecord> {
        let (mut w, counters) = self.writer_reading(NS_META, META_COUNTERS)?;
        let counters = Counters::decode(
            &counters.ok_or_else(|| Error::CorruptStore("counters record is missing".into()))?,
        )?;
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
        // Every record of the new key is new: the commit checks that each
        // is absent rather than reading it first. The store's own records
        // (the counters) are not.
        let new: Vec<(&'static str, Vec<u8>)> = batch
            .ops()
            .iter()
            .filter_map(|op| match op {
                Op::Put { ns, id, .. } if *ns != NS_META => Some((*ns, id.clone())),
                _ => None,
            })
            .collect();
        batch.put(NS_META, META_COUNTERS, next.encode());
        match self.commit_new(&mut w.txn, batch, Some(record.clone()), &new) {
            // A repeated id (a replayed random stream, or a racing process
            // that drew the same) must not overwrite.
            Err(e)
                if crate::store::sealed::is_conflict(&e)
                    && self.store.get(NS_KEY, record.key_id.as_bytes())?.is_some() =>
            {
                Err(Error::UnsupportedOperation(
                    format!(
                        "the new KeyId {} exists already; refused rather than overwritten",
                        record.key_id
                    )
                    .into(),
                ))
            }
            Err(e) => Err(e),
            Ok(()) => Ok(record),
        }
    }

    /// Begins a write: takes this process's writer lock and reads the
    /// store's head. Read with [`Writer::key`] and the store, then
    /// [`Writer::commit`]: it applies only if no other writer (in any
    /// process) committed since, else fails with a conflict that
    /// [`Kms::retrying`] (every operation) answers by running the whole
    /// operation again.
    pub(crate) fn writer(&self) -> Result<Writer<'_>> {
        let guard = self.lock_writer()?;
        let txn = self.store.snapshot()?;
        Ok(Writer {
            kms: self,
            _guard: guard,
            txn,
        })
    }

    /// [`Kms::writer`] and the value of `(ns, id)`, read with the head in
    /// one call to the store.
    pub(crate) fn writer_reading(
        &self,
        ns: &'static str,
        id: &[u8],
    ) -> Result<(Writer<'_>, Option<Vec<u8>>)> {
        let guard = self.lock_writer()?;
        let (txn, value) = self.store.snapshot_reading(ns, id)?;
        Ok((
            Writer {
                kms: self,
                _guard: guard,
                txn,
            },
            value,
        ))
    }

    /// Applies `batch` if the store is still at `txn` (then `txn` moves to
    /// the new head), flushes when durable, and refreshes the cache:
    /// `updated` replaces its key's entry, `removed` drops one.
    ///
    /// Every material record in `batch` belongs to `updated` and is bound
    /// here to its generation.
    pub(crate) fn commit(
        &self,
        txn: &mut Snapshot,
        batch: Batch,
        updated: Option<KeyRecord>,
        removed: Option<&str>,
    ) -> Result<()> {
        self.commit_inner(txn, batch, updated, removed, &[])
    }

    /// [`Kms::commit`] of a batch that creates the records named in `new`,
    /// which the commit checks are absent (a conflict if one is not).
    pub(crate) fn commit_new(
        &self,
        txn: &mut Snapshot,
        batch: Batch,
        updated: Option<KeyRecord>,
        new: &[(&'static str, Vec<u8>)],
    ) -> Result<()> {
        self.commit_inner(txn, batch, updated, None, new)
    }

    fn commit_inner(
        &self,
        txn: &mut Snapshot,
        mut batch: Batch,
        updated: Option<KeyRecord>,
        removed: Option<&str>,
        new: &[(&'static str, Vec<u8>)],
    ) -> Result<()> {
        self.refuse_write_in_dry_run()?;
        bind_generation(&mut batch, updated.as_ref())?;
        let seq = self.store.commit_new_at(txn, batch, new)?;
        // The batch is in the store: the cache must follow even if flush fails.
        if let Some(r) = updated {
            self.cache.update(r, seq, self.clock.now_millis())?;
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

/// Re-seals the inner (v1) seal of a secret value under the new root key
/// during a rotation; other values are unchanged.
fn reseal_inner(
    old: &RootKey,
    new: &RootKey,
    ns: &'static str,
    id: &[u8],
    plain: zeroize::Zeroizing<Vec<u8>>,
) -> Result<Vec<u8>> {
    // The records whose values are v1-sealed secrets (ops/import.rs names
    // them; this layer may not use it).
    const NS_IMPORT_TOKEN: &str = "import-token";
    const META_IMPORT_SECRET: &[u8] = b"import-secret";
    let name = || crate::store::sealed::record_name(ns, id);
    let reseal = |sealed: &[u8]| -> Result<Vec<u8>> {
        let opened = old.open(ns, id, sealed).ok_or_else(|| {
            Error::CorruptStore(format!("the inner seal of {} does not open", name()).into())
        })?;
        new.seal(ns, id, &opened)
    };
    if ns == NS_MATERIAL {
        let (generation, sealed) = plain
            .split_at_checked(8)
            .ok_or_else(|| Error::CorruptStore(format!("{} is too short", name()).into()))?;
        let mut out = generation.to_vec();
        out.extend_from_slice(&reseal(sealed)?);
        return Ok(out);
    }
    if ns == NS_IMPORT_TOKEN || (ns == NS_META && id == META_IMPORT_SECRET) {
        return reseal(&plain);
    }
    Ok(plain.to_vec())
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

/// One write: the writer lock and the head it began at, held across reads
/// and the commits they decide (see [`Kms::writer`]).
pub(crate) struct Writer<'a> {
    pub(crate) kms: &'a Kms,
    _guard: MutexGuard<'a, ()>,
    pub(crate) txn: Snapshot,
}

impl Writer<'_> {
    /// Applies `batch` (which changes no key record) and releases the lock.
    pub(crate) fn commit(mut self, batch: Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.kms.commit(&mut self.txn, batch, None, None)
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
    /// draws a new stream, counted in the store, so it never replays one,
    /// even when it made no keys; a repeated KeyId or KeyVersionId is
    /// refused rather than overwriting; clock
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
