//! Encrypt, GenerateDataKey and Decrypt (SPEC sections 2, 4 and 5).
//!
//! Every blob is sealed with XAES-256-GCM under the key version's material
//! (see [`crate::crypto::blob`] for the format). One call to the OS CSPRNG per
//! operation supplies the nonce and any data key. The key state table is
//! applied in one place, [`Kms::usable_entry`].

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use xaes_256_gcm::aead::AeadInOut;
use zeroize::Zeroizing;

use crate::cache::KeyEntry;
use crate::crypto::blob::{self, HEADER_LEN, NONCE_LEN, TAG_LEN};
pub use crate::crypto::blob::{CiphertextBlob, PlaintextKind};
use crate::crypto::context::EncryptionContext;
use crate::crypto::xaes::Xaes;
use crate::error::shorten;
use crate::error::{Error, Rejection, Result};
use crate::kms::Kms;
pub use crate::secret::SecretBytes;

/// The largest `Plaintext` of Encrypt, in bytes.
pub const MAX_PLAINTEXT_BYTES: usize = blob::MAX_PAYLOAD_BYTES;
/// The largest `NumberOfBytes` of GenerateDataKey.
pub const MAX_DATA_KEY_BYTES: u32 = 1024;
use crate::crypto::blob::MAX_BLOB_BYTES;

/// The `KeySpec` of GenerateDataKey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum DataKeySpec {
    /// A 256-bit data key: `AES_256` (the default).
    #[default]
    Aes256,
    /// A 128-bit data key: `AES_128`.
    Aes128,
}

impl DataKeySpec {
    /// The exact wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aes256 => "AES_256",
            Self::Aes128 => "AES_128",
        }
    }

    /// The data key length in bytes.
    pub fn byte_len(self) -> usize {
        match self {
            Self::Aes256 => 32,
            Self::Aes128 => 16,
        }
    }
}

impl fmt::Display for DataKeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DataKeySpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "AES_256" => Ok(Self::Aes256),
            "AES_128" => Ok(Self::Aes128),
            _ => Err(Error::invalid("KeySpec", "must be one of AES_256 AES_128")),
        }
    }
}

/// The optional parameters of GenerateDataKey.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct GenerateDataKeyRequest {
    /// `AES_256` when absent.
    pub key_spec: Option<DataKeySpec>,
    /// 1..=1024; wins over `key_spec` when given.
    pub number_of_bytes: Option<u32>,
    /// Authenticated with the blob; Decrypt must be given the same.
    pub encryption_context: EncryptionContext,
}

impl GenerateDataKeyRequest {
    /// A request for a data key of `spec` (no context).
    pub fn with_spec(spec: DataKeySpec) -> Self {
        Self {
            key_spec: Some(spec),
            ..Self::default()
        }
    }

    /// A request for a data key of `n` bytes (no context).
    pub fn with_number_of_bytes(n: u32) -> Self {
        Self {
            number_of_bytes: Some(n),
            ..Self::default()
        }
    }

    /// The same request with `context`.
    pub fn context(mut self, context: EncryptionContext) -> Self {
        self.encryption_context = context;
        self
    }

    /// The data key length: `NumberOfBytes` if given, else the `KeySpec`'s.
    fn length(&self) -> Result<usize> {
        match self.number_of_bytes {
            Some(n) if (1..=MAX_DATA_KEY_BYTES).contains(&n) => {
                usize::try_from(n).map_err(|_| Error::InternalFailure)
            }
            Some(_) => Err(Error::invalid(
                "NumberOfBytes",
                "must be an integer from 1 to 1024",
            )),
            None => Ok(self.key_spec.unwrap_or_default().byte_len()),
        }
    }
}

/// The response of Encrypt (and of a re-seal).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EncryptResponse {
    /// The key that encrypted (resolved from an alias or ARN).
    pub key_id: String,
    /// The key version that encrypted (the primary).
    pub key_version_id: String,
    /// The blob (the wire sends its base64).
    pub ciphertext_blob: CiphertextBlob,
}

/// The response of GenerateDataKey.
#[derive(Debug)]
#[non_exhaustive]
pub struct DataKey {
    /// The key that encrypted the data key.
    pub key_id: String,
    /// The key version that encrypted the data key.
    pub key_version_id: String,
    /// The data key. The wire `Plaintext` is its base64
    /// ([`SecretBytes::to_base64`]).
    pub plaintext: SecretBytes,
    /// The blob holding the data key (the wire sends its base64).
    pub ciphertext_blob: CiphertextBlob,
}

/// The response of Decrypt.
#[derive(Debug)]
#[non_exhaustive]
pub struct Decrypted {
    /// The key named by the blob.
    pub key_id: String,
    /// The key version named by the blob.
    pub key_version_id: String,
    /// Whether the blob came from Encrypt or GenerateDataKey.
    pub kind: PlaintextKind,
    /// The plaintext bytes: what Encrypt was given, or the raw data key.
    pub plaintext: SecretBytes,
}

impl Decrypted {
    /// The wire `Plaintext`: the text given to Encrypt as it was, or the data
    /// key as base64 (the same string GenerateDataKey returned).
    ///
    /// Text that is not UTF-8 can only come from the Rust API, never from the
    /// wire; it is rendered lossily.
    pub fn wire_plaintext(&self) -> Zeroizing<String> {
        match self.kind {
            PlaintextKind::DataKey | PlaintextKind::EnvelopeKey => self.plaintext.to_base64(),
            PlaintextKind::Text => {
                let bytes = self.plaintext.expose_secret();
                // The fast path is the common one: the wire only sends strings.
                Zeroizing::new(match std::str::from_utf8(bytes) {
                    Ok(text) => text.to_owned(),
                    Err(_) => String::from_utf8_lossy(bytes).into_owned(),
                })
            }
        }
    }
}

/// A sealed blob before base64, with the version that sealed it.
pub(crate) struct Sealed {
    pub key_id: String,
    pub key_version_id: String,
    pub blob: Vec<u8>,
}

impl Sealed {
    fn into_response(self) -> EncryptResponse {
        EncryptResponse {
            ciphertext_blob: CiphertextBlob::from(self.blob),
            key_id: self.key_id,
            key_version_id: self.key_version_id,
        }
    }
}

impl Kms {
    /// Encrypt: seals `plaintext` (at most 6144 bytes) under the primary
    /// version of `key_id` (a key id, key ARN, alias or alias ARN).
    ///
    /// ```
    /// use localkms::{EncryptionContext, Kms};
    /// let kms = Kms::in_memory()?;
    /// let key = kms.create_key(&Default::default())?;
    /// let ctx = EncryptionContext::from_json(r#"{"purpose":"docs"}"#)?;
    /// let sealed = kms.encrypt(&key.key_id, b"hello", &ctx)?;
    /// let opened = kms.decrypt(&sealed.ciphertext_blob, &ctx)?;
    /// assert_eq!(opened.plaintext.expose_secret(), b"hello");
    /// # Ok::<(), localkms::Error>(())
    /// ```
    ///
    /// # Errors
    /// `MissingParameter` (KeyId, Plaintext), `InvalidParameter` (Plaintext
    /// over 6144 bytes), `Forbidden.KeyNotFound`, `Forbidden.AliasNotFound`,
    /// `Rejected.Disabled` / `Rejected.PendingDeletion` /
    /// `Rejected.PendingImport`.
    pub fn encrypt(
        &self,
        key_id: &str,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<EncryptResponse> {
        self.operation("Encrypt", key_id, || {
            self.encrypt_op(key_id, plaintext, context)
        })
    }

    fn encrypt_op(
        &self,
        key_id: &str,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<EncryptResponse> {
        if key_id.is_empty() {
            return Err(Error::MissingParameter("KeyId"));
        }
        check_plaintext(plaintext)?;
        let id = self.resolve_key(key_id, "KeyId", true)?;
        let entry = self.usable_entry(&id)?;
        let mut nonce = [0u8; NONCE_LEN];
        self.fill_random(&mut nonce)?;
        Ok(self
            .seal_with(&entry, PlaintextKind::Text, plaintext, context, &nonce)?
            .into_response())
    }

    /// GenerateDataKey: a fresh data key from the OS CSPRNG, returned in
    /// plaintext and sealed under the primary version of `key_id` (alias ok).
    /// Its length is `NumberOfBytes` if given, else 32 (`AES_256`, the
    /// default) or 16 (`AES_128`).
    ///
    /// # Errors
    /// `MissingParameter` (KeyId), `InvalidParameter` (NumberOfBytes outside
    /// 1..=1024), and the key errors of [`Kms::encrypt`].
    pub fn generate_data_key(&self, key_id: &str, req: &GenerateDataKeyRequest) -> Result<DataKey> {
        self.operation("GenerateDataKey", key_id, || {
            self.generate_data_key_op(key_id, req)
        })
    }

    fn generate_data_key_op(&self, key_id: &str, req: &GenerateDataKeyRequest) -> Result<DataKey> {
        if key_id.is_empty() {
            return Err(Error::MissingParameter("KeyId"));
        }
        let len = req.length()?;
        let (sealed, plaintext) =
            self.generate_data_key_raw(key_id, len, &req.encryption_context)?;
        let response = sealed.into_response();
        Ok(DataKey {
            key_id: response.key_id,
            key_version_id: response.key_version_id,
            plaintext,
            ciphertext_blob: response.ciphertext_blob,
        })
    }

    /// GenerateDataKey of a checked length (1..=1024): the blob and the
    /// data key.
    pub(crate) fn generate_data_key_raw(
        &self,
        key_id: &str,
        len: usize,
        context: &EncryptionContext,
    ) -> Result<(Sealed, SecretBytes)> {
        self.generate_data_key_kind(key_id, len, context, PlaintextKind::DataKey)
    }

    /// A fresh key of `len` bytes sealed as `kind` (a data key, or an
    /// envelope's data key).
    pub(crate) fn generate_data_key_kind(
        &self,
        key_id: &str,
        len: usize,
        context: &EncryptionContext,
        kind: PlaintextKind,
    ) -> Result<(Sealed, SecretBytes)> {
        if key_id.is_empty() {
            return Err(Error::MissingParameter("KeyId"));
        }
        let id = self.resolve_key(key_id, "KeyId", true)?;
        let entry = self.usable_entry(&id)?;
        // One CSPRNG call: the nonce, then the data key. The buffer then
        // serves as the data key's holder.
        let mut random = Zeroizing::new(vec![0u8; NONCE_LEN + len]);
        self.fill_random(&mut random)?;
        let (nonce, key) = random.split_at(NONCE_LEN);
        let nonce: &[u8; NONCE_LEN] = nonce.try_into().map_err(|_| Error::InternalFailure)?;
        let sealed = self.seal_with(&entry, kind, key, context, nonce)?;
        let end = random.len();
        Ok((sealed, SecretBytes::in_buffer(random, NONCE_LEN..end)?))
    }

    /// Decrypt: opens a blob from Encrypt or GenerateDataKey. The blob names
    /// its key and version; `context` must equal the one it was sealed with.
    ///
    /// # Errors
    /// `MissingParameter` (CiphertextBlob empty); the uniform
    /// `InvalidParameter` ([`Error::DecryptionFailed`]) for a blob that is
    /// not base64, malformed, tampered with, or sealed with another context;
    /// `Forbidden.KeyNotFound` / `Forbidden.KeyVersionNotFound` when the key
    /// or version it names does not exist here (a blob from another store,
    /// or altered KeyId / KeyVersionId bytes); the state rejections of
    /// [`Kms::encrypt`].
    pub fn decrypt(
        &self,
        ciphertext_blob: &[u8],
        context: &EncryptionContext,
    ) -> Result<Decrypted> {
        self.operation("Decrypt", "", || self.decrypt_op(ciphertext_blob, context))
    }

    fn decrypt_op(&self, ciphertext_blob: &[u8], context: &EncryptionContext) -> Result<Decrypted> {
        if ciphertext_blob.is_empty() {
            return Err(Error::MissingParameter("CiphertextBlob"));
        }
        if ciphertext_blob.len() > MAX_BLOB_BYTES {
            return Err(Error::DecryptionFailed);
        }
        let opened = self.decrypt_raw(Zeroizing::new(ciphertext_blob.to_vec()), context, None)?;
        if opened.kind == PlaintextKind::EnvelopeKey {
            // Bound to envelope use (docs/FORMAT.md, envelope v2).
            return Err(Error::DecryptionFailed);
        }
        Ok(opened)
    }

    /// Decrypt of blob bytes, opened in place. With `only_key`, a blob that
    /// names another key is refused as undecryptable before any lookup.
    pub(crate) fn decrypt_raw(
        &self,
        mut blob: Zeroizing<Vec<u8>>,
        context: &EncryptionContext,
        only_key: Option<&str>,
    ) -> Result<Decrypted> {
        if blob.first() == Some(&crate::crypto::sm4_blob::BLOB_SM4) {
            let opened = self.decrypt_sm4(&blob, context)?;
            if only_key.is_some_and(|want| want != opened.key_id) {
                return Err(Error::invalid(
                    "CiphertextBlob",
                    "was made under another key than the one this handle names",
                ));
            }
            return Ok(opened);
        }
        let header = blob::read::header(&blob)?;
        if let Some(want) = only_key
            && header.key_id != want.as_bytes()
        {
            // The key id bytes are in clear in every blob: naming the
            // mismatch reveals nothing.
            return Err(Error::invalid(
                "CiphertextBlob",
                "was made under another key than the one this handle names",
            ));
        }
        let kind = header.kind;
        let nonce = *header.nonce;
        let key_id = std::str::from_utf8(header.key_id)
            .ok()
            .filter(|id| crate::types::is_key_id(id))
            .ok_or_else(|| Error::KeyNotFound(lossy(header.key_id)))?;
        let entry = self.usable_entry(key_id)?;
        if entry.record.spec != crate::types::KeySpec::Aes256 {
            // A v1 blob naming an SM4 key was not made here.
            return Err(Error::DecryptionFailed);
        }
        let version_id = std::str::from_utf8(header.version_id)
            .map_err(|_| Error::KeyVersionNotFound(lossy(header.version_id)))?
            .to_owned();
        let cipher = self.version_cipher(&entry, &version_id)?;
        let (header, body, tag) = blob::read::split_mut(&mut blob)?;
        let tag = xaes_256_gcm::Tag::try_from(tag).map_err(|_| Error::DecryptionFailed)?;
        blob::with_aad(header, context.encoded(), |aad| {
            cipher.decrypt_inout_detached(&nonce.into(), aad, body.into(), &tag)
        })
        .map_err(|_| Error::DecryptionFailed)?;
        let end = blob.len() - TAG_LEN;
        Ok(Decrypted {
            key_id: entry.record.key_id.clone(),
            key_version_id: version_id,
            kind,
            plaintext: SecretBytes::in_buffer(blob, HEADER_LEN..end)?,
        })
    }

    /// Seals a decrypted payload under another key, keeping its kind, so a
    /// re-encrypted data key still renders as the same base64 (SPEC section
    /// 8, ReEncrypt).
    pub(crate) fn reseal(
        &self,
        payload: &Decrypted,
        destination_key_id: &str,
        context: &EncryptionContext,
    ) -> Result<EncryptResponse> {
        if destination_key_id.is_empty() {
            return Err(Error::MissingParameter("DestinationKeyId"));
        }
        let id = self.resolve_key_id(destination_key_id, "DestinationKeyId", true)?;
        let entry = self.usable_entry(&id)?;
        let mut nonce = [0u8; NONCE_LEN];
        self.fill_random(&mut nonce)?;
        Ok(self
            .seal_with(
                &entry,
                payload.kind,
                payload.plaintext.expose_secret(),
                context,
                &nonce,
            )?
            .into_response())
    }

    /// The key, if its state allows Encrypt, Decrypt and GenerateDataKey:
    /// the one place the state table's crypto row is applied (SPEC section 2).
    pub(crate) fn usable_entry(&self, key_id: &str) -> Result<Arc<KeyEntry>> {
        let entry = self.entry(key_id)?;
        crate::ops::sm4::check_symmetric(&entry.record)?;
        match Rejection::for_use(entry.record.state) {
            None => Ok(entry),
            Some(r) => Err(Error::rejected(r, key_id, entry.record.state)),
        }
    }

    /// Seals `plaintext` under the primary version of `entry` with `nonce`.
    pub(crate) fn seal_with(
        &self,
        entry: &KeyEntry,
        kind: PlaintextKind,
        plaintext: &[u8],
        context: &EncryptionContext,
        nonce: &[u8; NONCE_LEN],
    ) -> Result<Sealed> {
        let record = &entry.record;
        if record.spec == crate::types::KeySpec::Sm4 {
            return self.seal_sm4(entry, kind, plaintext, context, nonce);
        }
        let cipher = self.primary_cipher(entry)?;
        let version = record.primary().ok_or(Error::InternalFailure)?;
        let blob = seal(
            cipher,
            kind,
            &record.key_id,
            &version.id,
            nonce,
            plaintext,
            context,
        )?;
        Ok(Sealed {
            key_id: record.key_id.clone(),
            key_version_id: version.id.clone(),
            blob,
        })
    }
}

/// Builds a v1 blob: header, then `plaintext` sealed in place.
fn seal(
    cipher: &Xaes,
    kind: PlaintextKind,
    key_id: &str,
    version_id: &str,
    nonce: &[u8; NONCE_LEN],
    plaintext: &[u8],
    context: &EncryptionContext,
) -> Result<Vec<u8>> {
    // Zeroizing: it holds the plaintext until it is sealed.
    let mut out = Zeroizing::new(Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN));
    blob::write::header(&mut out, kind, key_id, version_id, nonce)?;
    out.extend_from_slice(plaintext);
    let (header, body) = out.split_at_mut(HEADER_LEN);
    let tag = blob::with_aad(header, context.encoded(), |aad| {
        cipher.encrypt_inout_detached(&(*nonce).into(), aad, body.into())
    })
    .map_err(|_| Error::InternalFailure)?;
    out.extend_from_slice(&tag);
    Ok(std::mem::take(&mut *out))
}

fn check_plaintext(plaintext: &[u8]) -> Result<()> {
    if plaintext.is_empty() {
        return Err(Error::MissingParameter("Plaintext"));
    }
    if plaintext.len() > MAX_PLAINTEXT_BYTES {
        return Err(Error::invalid("Plaintext", "must be at most 6144 bytes"));
    }
    Ok(())
}

/// An id read from a blob, for an error message.
fn lossy(bytes: &[u8]) -> String {
    shorten(&String::from_utf8_lossy(bytes))
}

/// Fixed-nonce sealing and fixed-material keys, for golden vectors, fuzzers
/// and tests only: only in builds with the `test-util` or `fuzzing` feature.
///
/// **Not for use.** A fixed nonce repeated under one key destroys the
/// confidentiality and integrity of everything sealed under it.
#[doc(hidden)]
#[cfg(any(feature = "test-util", feature = "fuzzing"))]
pub mod internal {
    use super::*;
    use crate::secret::KeyMaterial;
    use crate::store::record::{KeyRecord, VersionMeta};
    use crate::types::{KeySpec, KeyState, KeyUsage, Origin, ProtectionLevel};

    /// Creates an `Enabled` key with the given id, version id and material.
    /// **Not for use**: material must come from the CSPRNG.
    ///
    /// # Errors
    /// `InvalidParameter` for ids that are not lowercase UUIDs, or a store
    /// failure.
    pub fn insecure_insert_fixed_key(
        kms: &Kms,
        key_id: &str,
        version_id: &str,
        material: &[u8; 32],
    ) -> Result<()> {
        if !crate::types::is_key_id(key_id) || !crate::types::is_key_id(version_id) {
            return Err(Error::invalid("KeyId", "must be a lowercase UUID"));
        }
        let material = KeyMaterial::from_slice(material).ok_or(Error::InternalFailure)?;
        let now = kms.now();
        kms.insert_key(|seq, batch| {
            kms.put_material(batch, key_id, version_id, &material)?;
            // Built through the record's serde form, so fields added to the
            // record later (all `#[serde(default)]`, for stored records) take
            // their defaults here too.
            let record: KeyRecord = serde_json::from_value(serde_json::json!({
                "key_id": key_id,
                "seq": seq,
                "created": now,
                "description": "",
                "state": KeyState::Enabled,
                "usage": KeyUsage::EncryptDecrypt,
                "spec": KeySpec::Aes256,
                "origin": Origin::AliyunKms,
                "protection": ProtectionLevel::Software,
                "versions": [VersionMeta { id: version_id.to_owned(), created: now }],
            }))
            .map_err(|_| Error::InternalFailure)?;
            Ok(record)
        })?;
        Ok(())
    }

    /// Encrypt (or, with `kind` DataKey, the sealing half of
    /// GenerateDataKey) with a caller-chosen nonce. Returns base64.
    /// **Not for use**: nonces must come from the CSPRNG.
    ///
    /// # Errors
    /// As [`Kms::encrypt`].
    pub fn insecure_seal_with_nonce(
        kms: &Kms,
        key_id: &str,
        kind: PlaintextKind,
        plaintext: &[u8],
        context: &EncryptionContext,
        nonce: &[u8; NONCE_LEN],
    ) -> Result<CiphertextBlob> {
        if kind == PlaintextKind::Text {
            check_plaintext(plaintext)?;
        }
        let id = kms.resolve_key_id(key_id, "KeyId", true)?;
        let entry = kms.usable_entry(&id)?;
        Ok(kms
            .seal_with(&entry, kind, plaintext, context, nonce)?
            .into_response()
            .ciphertext_blob)
    }

    /// Seals a stored record (format in `docs/FORMAT.md`, "Sealed record")
    /// under `root_key` with a caller-chosen nonce, for golden vectors.
    /// **Not for use**: nonces must come from the CSPRNG.
    ///
    /// # Errors
    /// `InvalidRootKey` unless `root_key` is 32 bytes.
    pub fn insecure_seal_record_with_nonce(
        root_key: &[u8],
        ns: &str,
        id: &[u8],
        plaintext: &[u8],
        nonce: [u8; 24],
    ) -> Result<Vec<u8>> {
        crate::store::seal::RootKey::from_bytes(root_key)?.seal_with_nonce(ns, id, plaintext, nonce)
    }

    /// Opens a sealed record; `None` for any failure.
    ///
    /// # Errors
    /// `InvalidRootKey` unless `root_key` is 32 bytes.
    pub fn insecure_open_record(
        root_key: &[u8],
        ns: &str,
        id: &[u8],
        sealed: &[u8],
    ) -> Result<Option<Vec<u8>>> {
        Ok(crate::store::seal::RootKey::from_bytes(root_key)?
            .open(ns, id, sealed)
            .map(|p| p.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn setup() -> (Kms, ManualClock, String) {
        let clock = ManualClock::new(1_700_000_000);
        let kms = Kms::builder()
            .in_memory()
            .clock(clock.clone())
            .build()
            .expect("kms");
        let key = kms.create_key(&Default::default()).expect("key").key_id;
        (kms, clock, key)
    }

    fn cached_cipher(kms: &Kms, key: &str) -> std::sync::Weak<Xaes> {
        let entry = kms.entry(key).expect("entry");
        let version = entry.record.primary().expect("version").id.clone();
        Arc::downgrade(&kms.cipher(&entry, &version).expect("cipher"))
    }

    #[test]
    fn a_change_to_the_key_drops_its_cached_ciphers() {
        let (kms, _, key) = setup();
        let ctx = EncryptionContext::empty();
        kms.encrypt(&key, b"x", &ctx).expect("encrypt");
        let weak = cached_cipher(&kms, &key);
        assert!(weak.upgrade().is_some(), "the cipher is cached");
        kms.disable_key(&key).expect("disable");
        assert!(weak.upgrade().is_none(), "disable dropped the cipher");
        assert_eq!(
            kms.encrypt(&key, b"x", &ctx).unwrap_err().code(),
            "Rejected.Disabled"
        );
    }

    #[test]
    fn the_primary_cipher_follows_a_rotation() {
        let (kms, _, key) = setup();
        let ctx = EncryptionContext::empty();
        let first = kms.encrypt(&key, b"one", &ctx).expect("encrypt");
        let entry = kms.entry(&key).expect("entry");
        let slot = entry.primary.get().expect("kept after Encrypt");
        let weak = cached_cipher(&kms, &key);
        assert!(
            std::ptr::eq(Arc::as_ptr(slot), weak.as_ptr()),
            "the slot holds the primary version's cipher"
        );
        drop(entry);
        let v2 = kms.create_key_version(&key).expect("rotate").key_version_id;
        let second = kms.encrypt(&key, b"two", &ctx).expect("encrypt");
        assert_eq!(second.key_version_id, v2);
        assert_ne!(first.key_version_id, v2);
        for (sealed, want) in [(&first, &b"one"[..]), (&second, &b"two"[..])] {
            let opened = kms.decrypt(&sealed.ciphertext_blob, &ctx).expect("decrypt");
            assert_eq!(opened.key_version_id, sealed.key_version_id);
            assert_eq!(opened.plaintext.expose_secret(), want);
        }
    }

    #[test]
    fn a_purged_key_leaves_no_cipher_behind() {
        let (kms, clock, key) = setup();
        let ctx = EncryptionContext::empty();
        let blob = kms
            .encrypt(&key, b"x", &ctx)
            .expect("encrypt")
            .ciphertext_blob;
        let weak = cached_cipher(&kms, &key);
        kms.schedule_key_deletion(&key, 7).expect("schedule");
        assert!(weak.upgrade().is_none(), "scheduling dropped the cipher");
        // Decrypt while pending deletion is refused.
        assert_eq!(
            kms.decrypt(&blob, &ctx).unwrap_err().code(),
            "Rejected.PendingDeletion"
        );
        // Cache a cipher in the pending key's entry; the purge must drop it.
        let weak = cached_cipher(&kms, &key);
        assert!(weak.upgrade().is_some());
        clock.advance(7 * 86_400);
        assert_eq!(
            kms.decrypt(&blob, &ctx).unwrap_err(),
            Error::KeyNotFound(key.clone())
        );
        assert!(weak.upgrade().is_none(), "the purge dropped the cipher");
        assert!(kms.entry(&key).is_err());
    }

    #[test]
    fn reseal_keeps_the_kind_and_the_wire_plaintext() {
        let (kms, _, key) = setup();
        let dest = kms.create_key(&Default::default()).expect("key").key_id;
        let src_ctx = EncryptionContext::from_pairs([("from", "a")]).expect("ctx");
        let dst_ctx = EncryptionContext::from_pairs([("to", "b")]).expect("ctx");
        let dk = kms
            .generate_data_key(
                &key,
                &GenerateDataKeyRequest::default().context(src_ctx.clone()),
            )
            .expect("gdk");
        let text = kms
            .encrypt(&key, "héllo".as_bytes(), &src_ctx)
            .expect("encrypt");
        for (blob, wire) in [
            (&dk.ciphertext_blob, dk.plaintext.to_base64().to_string()),
            (&text.ciphertext_blob, "héllo".to_owned()),
        ] {
            let opened = kms.decrypt(blob, &src_ctx).expect("decrypt");
            let moved = kms.reseal(&opened, &dest, &dst_ctx).expect("reseal");
            assert_eq!(moved.key_id, dest);
            let again = kms
                .decrypt(&moved.ciphertext_blob, &dst_ctx)
                .expect("decrypt");
            assert_eq!(again.kind, opened.kind);
            assert_eq!(again.key_id, dest);
            assert_eq!(again.wire_plaintext().as_str(), wire);
            assert_eq!(
                kms.decrypt(&moved.ciphertext_blob, &src_ctx).unwrap_err(),
                Error::DecryptionFailed
            );
        }
        let opened = kms
            .decrypt(&text.ciphertext_blob, &src_ctx)
            .expect("decrypt");
        assert_eq!(
            kms.reseal(&opened, "", &dst_ctx).unwrap_err(),
            Error::MissingParameter("DestinationKeyId")
        );
        kms.disable_key(&dest).expect("disable");
        assert_eq!(
            kms.reseal(&opened, &dest, &dst_ctx).unwrap_err().code(),
            "Rejected.Disabled"
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let (kms, _, key) = setup();
        let dk = kms
            .generate_data_key(&key, &GenerateDataKeyRequest::default())
            .expect("gdk");
        let b64 = dk.plaintext.to_base64();
        assert!(!format!("{dk:?}").contains(b64.as_str()));
        assert!(format!("{dk:?}").contains("REDACTED"));
        let d = kms
            .decrypt(&dk.ciphertext_blob, &EncryptionContext::empty())
            .expect("decrypt");
        assert!(format!("{d:?}").contains("REDACTED"));
    }
}

/// The default build has no `localkms::internal`: this must not compile
/// without the `test-util` or `fuzzing` feature (`cargo test --doc` without
/// features checks it).
///
/// ```compile_fail,E0432
/// use localkms::internal::insecure_seal_with_nonce;
/// ```
#[cfg(not(any(feature = "test-util", feature = "fuzzing")))]
#[allow(dead_code)]
pub(crate) struct InternalGate;
