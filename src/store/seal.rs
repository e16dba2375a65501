//! Sealing at rest: every stored record that holds key material is encrypted
//! under the root key (SPEC section 5).
//!
//! Sealed record format v1 (all of it is covered by the AEAD):
//!
//! ```text
//! +------+------------------+---------------------------+
//! | 0x01 | nonce (24 bytes) | XAES-256-GCM(ct || tag16) |
//! +------+------------------+---------------------------+
//! AAD = "localkms/sealed-record/v1" || 0x00 || len(ns) u8 || ns || id
//! ```
//!
//! The AAD binds the record's identity, so a sealed record copied over
//! another fails to open.
//!
//! This v1 seal, under the root key itself, is the inner seal of the values
//! that are secrets (key material, import tokens, the import secret). Every
//! record, these included, is sealed again by [`crate::store::sealed`] under a
//! key derived from the root key ([`StoreKeys`]), bound to the store's id.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use xaes_256_gcm::Xaes256Gcm;
use xaes_256_gcm::aead::{AeadInOut, KeyInit};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::secret::fill_random;

const SEALED_V1: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const AAD_LABEL: &[u8] = b"localkms/sealed-record/v1\0";

/// The key that seals every stored secret. 256 bits.
///
/// Production deployments should supply it from outside the store (an
/// environment variable, a secrets manager, a file on other media): a root key
/// kept beside the store it protects protects only against reading the store
/// alone. `Debug` never shows it.
pub struct RootKey {
    cipher: Xaes256Gcm,
    /// The keys derived from this root key, boxed so that moving a `RootKey`
    /// leaves no copy of them behind.
    derived: Box<StoreKeys>,
    /// The key's bytes, for writing a rotated key file.
    bytes: Box<Zeroizing<[u8; 32]>>,
}

/// HKDF-SHA256 labels (the `info` input), one per purpose.
const LABEL_RECORD: &[u8] = b"localkms/v2 record seal";
const LABEL_DIGEST: &[u8] = b"localkms/v2 store digest";
const LABEL_WITNESS: &[u8] = b"localkms/v2 witness";
const LABEL_BACKUP: &[u8] = b"localkms/v2 backup";

/// The keys derived from a root key with HKDF-SHA256 (no salt, one label per
/// purpose; docs/FORMAT.md).
pub(crate) struct StoreKeys {
    /// Seals every record (XAES-256-GCM).
    pub(crate) record: Xaes256Gcm,
    /// The HMAC-SHA256 key of the store digest's per-record terms.
    pub(crate) digest: Zeroizing<[u8; 32]>,
    /// The HMAC-SHA256 key of the witness.
    pub(crate) witness: Zeroizing<[u8; 32]>,
    /// The HMAC-SHA256 key of a backup's MAC.
    pub(crate) backup: Zeroizing<[u8; 32]>,
}

/// A derived key by purpose name, for golden vectors only.
pub(crate) fn derive_for_golden(root: &[u8], purpose: &str) -> Result<Zeroizing<[u8; 32]>> {
    let label = match purpose {
        "record" => LABEL_RECORD,
        "digest" => LABEL_DIGEST,
        "witness" => LABEL_WITNESS,
        _ => LABEL_BACKUP,
    };
    derive(root, label)
}

/// HKDF-SHA256(ikm = root key, salt = none, info = `label`), 32 bytes.
fn derive(root: &[u8], label: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
    let mut out = Zeroizing::new([0u8; 32]);
    hkdf::Hkdf::<sha2::Sha256>::new(None, root)
        .expand(label, out.as_mut())
        .map_err(|_| Error::InternalFailure)?;
    Ok(out)
}

impl fmt::Debug for RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RootKey([REDACTED])")
    }
}

impl RootKey {
    /// A root key from 32 raw bytes.
    ///
    /// # Errors
    /// [`Error::InvalidRootKey`] if `bytes` is not 32 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != 32 {
            return Err(Error::InvalidRootKey(
                format!("expected 32 bytes, got {}", bytes.len()).into(),
            ));
        }
        let mut key = xaes_256_gcm::Key::<Xaes256Gcm>::try_from(bytes)
            .map_err(|_| Error::InvalidRootKey("expected 32 bytes".into()))?;
        let cipher = Xaes256Gcm::new(&key);
        zeroize::Zeroize::zeroize(key.as_mut_slice());
        let mut record_key = xaes_256_gcm::Key::<Xaes256Gcm>::from(*derive(bytes, LABEL_RECORD)?);
        let record = Xaes256Gcm::new(&record_key);
        zeroize::Zeroize::zeroize(record_key.as_mut_slice());
        let mut own = Box::new(Zeroizing::new([0u8; 32]));
        own.copy_from_slice(bytes);
        Ok(Self {
            cipher,
            bytes: own,
            derived: Box::new(StoreKeys {
                record,
                digest: derive(bytes, LABEL_DIGEST)?,
                witness: derive(bytes, LABEL_WITNESS)?,
                backup: derive(bytes, LABEL_BACKUP)?,
            }),
        })
    }

    /// The keys derived from this root key.
    pub(crate) fn keys(&self) -> &StoreKeys {
        &self.derived
    }

    /// A root key from text: 64 hex digits, or standard base64 of 32 bytes.
    /// Surrounding whitespace is ignored.
    ///
    /// # Errors
    /// [`Error::InvalidRootKey`] if the text is neither.
    pub fn from_text(text: &str) -> Result<Self> {
        Self::from_text_bytes(text.as_bytes())
    }

    /// [`RootKey::from_text`] on bytes, decoded into fixed buffers that are
    /// zeroed on drop: no intermediate copy of the key is left in freed memory.
    fn from_text_bytes(text: &[u8]) -> Result<Self> {
        let text = text.trim_ascii();
        let mut bytes = Zeroizing::new([0u8; 48]);
        if text.len() == 64 && text.iter().all(u8::is_ascii_hexdigit) {
            base16ct::mixed::decode(text, &mut bytes[..32])
                .map_err(|_| Error::InvalidRootKey("bad hex".into()))?;
            return Self::from_bytes(&bytes[..32]);
        }
        let len = base64::engine::general_purpose::STANDARD
            .decode_slice(text, bytes.as_mut())
            .map_err(|_| Error::InvalidRootKey("neither 64 hex digits nor base64".into()))?;
        Self::from_bytes(&bytes[..len])
    }

    /// The 64 lowercase hex digits of `key` and a newline, in a fixed buffer
    /// that is zeroed on drop.
    pub(crate) fn hex_text(key: &[u8; 32]) -> Zeroizing<[u8; 65]> {
        let mut out = Zeroizing::new([b'\n'; 65]);
        // 32 bytes always fit 64 digits.
        let _ = base16ct::lower::encode(key, &mut out[..64]);
        out
    }

    /// This key as [`RootKey::hex_text`].
    pub(crate) fn to_hex_text(&self) -> Zeroizing<[u8; 65]> {
        Self::hex_text(&self.bytes)
    }

    /// Writes this key to a new file `path` (64 hex digits and a newline),
    /// mode 0600, durably (file and directory fsynced). Refuses to overwrite.
    ///
    /// # Errors
    /// [`Error::Io`] when the file exists or cannot be written.
    pub fn write_new_file(&self, path: impl AsRef<Path>) -> Result<()> {
        use std::io::Write as _;
        let path = path.as_ref();
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(path)?;
        f.write_all(self.to_hex_text().as_ref())?;
        f.sync_all()?;
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::File::open(parent)?.sync_all()?;
        Ok(())
    }

    /// A fresh random root key from the OS random source.
    ///
    /// # Errors
    /// Only if the OS random source fails.
    pub fn random() -> Result<Self> {
        Ok(Self::generate()?.0)
    }

    /// Reads a root key file: 32 raw bytes, or the text forms of
    /// [`RootKey::from_text`].
    ///
    /// # Errors
    /// [`Error::InvalidRootKey`] if the file cannot be read or holds no key.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        use std::io::Read as _;
        let path = path.as_ref();
        let cannot = |e: std::io::Error| {
            Error::InvalidRootKey(format!("cannot read {}: {}", path.display(), e.kind()).into())
        };
        let mut file = std::fs::File::open(path).map_err(cannot)?;
        check_private(path, &file.metadata().map_err(cannot)?)?;
        // Read into a fixed buffer, never a growing one: a reallocation
        // would leave a copy of the key in freed memory.
        let mut buf = Zeroizing::new([0u8; 128]);
        let mut len = 0;
        loop {
            let n = file.read(&mut buf[len..]).map_err(cannot)?;
            if n == 0 {
                break;
            }
            len += n;
            if len == buf.len() {
                return Err(Error::InvalidRootKey(
                    format!("{} is too long to hold a key", path.display()).into(),
                ));
            }
        }
        if len == 32 {
            return Self::from_bytes(&buf[..32]);
        }
        Self::from_text_bytes(&buf[..len])
            .map_err(|_| Error::InvalidRootKey(format!("{} holds no key", path.display()).into()))
    }

    /// Reads a root key from an environment variable, in the text forms of
    /// [`RootKey::from_text`].
    ///
    /// # Errors
    /// [`Error::InvalidRootKey`] if the variable is unset or holds no key.
    pub fn from_env(var: &str) -> Result<Self> {
        let value = Zeroizing::new(std::env::var(var).map_err(|_| {
            Error::InvalidRootKey(format!("environment variable {var} is not set").into())
        })?);
        Self::from_text(&value)
    }

    /// A fresh root key from the OS CSPRNG, and its 32 bytes (to keep
    /// outside the store, for example in a secrets manager or a file of
    /// mode 0600).
    ///
    /// ```
    /// let (key, bytes) = localkms::RootKey::generate()?;
    /// let again = localkms::RootKey::from_bytes(&*bytes)?;
    /// let kms = localkms::Kms::builder().root_key(key).build()?;
    /// # drop((again, kms));
    /// # Ok::<(), localkms::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InternalFailure`](crate::Error::InternalFailure) if the OS
    /// random source fails.
    pub fn generate() -> Result<(Self, Zeroizing<[u8; 32]>)> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        fill_random(bytes.as_mut())?;
        Ok((Self::from_bytes(bytes.as_ref())?, bytes))
    }

    /// Seals `plaintext` as the record `(ns, id)`.
    pub(crate) fn seal(&self, ns: &str, id: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce)?;
        self.seal_with_nonce(ns, id, plaintext, nonce)
    }

    pub(crate) fn seal_with_nonce(
        &self,
        ns: &str,
        id: &[u8],
        plaintext: &[u8],
        nonce: [u8; NONCE_LEN],
    ) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce);
        let body = out.len();
        out.extend_from_slice(plaintext);
        let tag = self
            .cipher
            .encrypt_inout_detached(&nonce.into(), &aad(ns, id), (&mut out[body..]).into())
            .map_err(|_| Error::InternalFailure)?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Opens the sealed record `(ns, id)`. Any failure, including a record
    /// sealed for another identity or under another root key, is `None`.
    pub(crate) fn open(&self, ns: &str, id: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed[0] != SEALED_V1 {
            return None;
        }
        let (nonce, rest) = sealed[1..].split_at(NONCE_LEN);
        let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
        let nonce = xaes_256_gcm::Nonce::try_from(nonce).ok()?;
        let tag = xaes_256_gcm::Tag::try_from(tag).ok()?;
        let mut buf = Zeroizing::new(ct.to_vec());
        self.cipher
            .decrypt_inout_detached(&nonce, &aad(ns, id), buf.as_mut_slice().into(), &tag)
            .ok()?;
        Some(buf)
    }
}

/// The root key in use, replaced by a rotation ([`crate::Kms::rotate_root_key`]).
/// Readers that open what they read under it hold [`RootCell::read`] across
/// both, so a rotation (which holds [`RootCell::write`] while it swaps the
/// records and the key) never shows them a record and a key that disagree.
pub(crate) struct RootCell(std::sync::RwLock<std::sync::Arc<RootKey>>);

impl fmt::Debug for RootCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RootCell([REDACTED])")
    }
}

impl RootCell {
    pub(crate) fn new(key: RootKey) -> Self {
        Self(std::sync::RwLock::new(std::sync::Arc::new(key)))
    }

    /// The root key now.
    pub(crate) fn get(&self) -> std::sync::Arc<RootKey> {
        std::sync::Arc::clone(&self.read())
    }

    /// Holds the root key against a rotation (a poisoned lock still holds a
    /// whole key: the swap is one assignment).
    pub(crate) fn read(&self) -> std::sync::RwLockReadGuard<'_, std::sync::Arc<RootKey>> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Excludes readers while a rotation swaps the records and the key.
    pub(crate) fn write(&self) -> std::sync::RwLockWriteGuard<'_, std::sync::Arc<RootKey>> {
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// [`RootKey::seal`] under the root key now.
    pub(crate) fn seal(&self, ns: &str, id: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        self.read().seal(ns, id, plaintext)
    }

    /// [`RootKey::open`] under the root key now.
    pub(crate) fn open(&self, ns: &str, id: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        self.read().open(ns, id, sealed)
    }
}

/// Refuses a root key file that group or others may read or write (as ssh
/// does with private keys).
fn check_private(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::InvalidRootKey(
                format!(
                    "{p} has mode {mode:03o}, open to group or others; run `chmod 600 {p}`",
                    p = path.display()
                )
                .into(),
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = (path, meta);
    Ok(())
}

fn aad(ns: &str, id: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_LABEL.len() + 1 + ns.len() + id.len());
    aad.extend_from_slice(AAD_LABEL);
    aad.push(u8::try_from(ns.len()).unwrap_or(u8::MAX));
    aad.extend_from_slice(ns.as_bytes());
    aad.extend_from_slice(id);
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> RootKey {
        RootKey::from_bytes(&[7u8; 32]).expect("32 bytes")
    }

    #[test]
    fn seal_open_round_trip() {
        let k = key();
        let sealed = k.seal("material", b"id-1", b"secret").expect("seal");
        assert_eq!(
            k.open("material", b"id-1", &sealed)
                .as_deref()
                .map(Vec::as_slice),
            Some(&b"secret"[..])
        );
    }

    #[test]
    fn a_record_copied_over_another_fails_to_open() {
        let k = key();
        let sealed = k.seal("material", b"id-1", b"secret").expect("seal");
        assert!(k.open("material", b"id-2", &sealed).is_none());
        assert!(k.open("materia", b"lid-1", &sealed).is_none());
        assert!(k.open("token", b"id-1", &sealed).is_none());
    }

    #[test]
    fn another_root_key_fails_to_open() {
        let sealed = key().seal("m", b"i", b"secret").expect("seal");
        let other = RootKey::from_bytes(&[8u8; 32]).expect("32 bytes");
        assert!(other.open("m", b"i", &sealed).is_none());
    }

    #[test]
    fn every_bit_flip_and_truncation_fails() {
        let k = key();
        let sealed = k
            .seal("m", b"i", b"0123456789abcdef0123456789abcdef")
            .expect("seal");
        for bit in 0..sealed.len() * 8 {
            let mut t = sealed.clone();
            t[bit / 8] ^= 1 << (bit % 8);
            assert!(k.open("m", b"i", &t).is_none(), "bit {bit}");
        }
        for len in 0..sealed.len() {
            assert!(k.open("m", b"i", &sealed[..len]).is_none(), "len {len}");
        }
    }

    #[test]
    fn root_key_text_forms() {
        let hex = "07".repeat(32);
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let sealed = key().seal("m", b"i", b"x").expect("seal");
        for text in [hex.as_str(), b64.as_str(), &format!("  {hex}\n")] {
            let k = RootKey::from_text(text).expect("valid text");
            assert!(k.open("m", b"i", &sealed).is_some());
        }
        for bad in ["", "07", &"zz".repeat(32), "AAAA"] {
            assert_eq!(
                RootKey::from_text(bad).unwrap_err().code(),
                "InternalFailure"
            );
        }
        assert!(format!("{:?}", key()).contains("REDACTED"));
    }

    #[test]
    fn hex_text_round_trips_through_from_text() {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i * 37) as u8);
        let text = RootKey::hex_text(&bytes);
        assert_eq!(text[64], b'\n');
        let expect: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(&text[..64], expect.as_bytes());
        let sealed = RootKey::from_bytes(&bytes)
            .expect("key")
            .seal("m", b"i", b"x")
            .expect("seal");
        let k =
            RootKey::from_text(std::str::from_utf8(text.as_ref()).expect("ascii")).expect("text");
        assert!(k.open("m", b"i", &sealed).is_some());
        let upper = expect.to_uppercase();
        assert!(
            RootKey::from_text(&upper)
                .expect("upper")
                .open("m", b"i", &sealed)
                .is_some()
        );
    }
}
