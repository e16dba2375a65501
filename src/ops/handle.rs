//! The key handle and the small trait application code depends on
//! (SPEC section 13), like Tink's `Aead`: encrypt, decrypt, data keys and
//! envelope streams with one CMK, without naming [`Kms`].

use std::fmt;
use std::io::{Read, Write};

use zeroize::Zeroizing;

use crate::crypto::blob::{CiphertextBlob, MAX_BLOB_BYTES, PlaintextKind};
use crate::crypto::context::EncryptionContext;
use crate::crypto::envelope::{EnvelopeReader, EnvelopeWriter};
use crate::error::{Error, Result};
use crate::kms::Kms;
use crate::ops::envelope::Opaque;
use crate::ops::symmetric::{DataKeySpec, GenerateDataKeyRequest};
use crate::secret::SecretBytes;

/// Something that encrypts with one key: the trait to code against, so a
/// test can swap in another implementation (a fake, a recorder, a remote
/// KMS). It is object-safe: use it as `&dyn KeyEncrypter`,
/// `Arc<dyn KeyEncrypter>` or a generic `K: KeyEncrypter`.
///
/// Five small methods are required; the envelope streams are provided on
/// top of [`KeyEncrypter::generate_envelope_key`] and
/// [`KeyEncrypter::open_envelope_key`], so every implementation writes and
/// reads the same envelope format (`docs/FORMAT.md`, v2).
///
/// ```
/// use std::io::{Read, Write};
/// use localkms::{EncryptionContext, KeyEncrypter, Kms};
///
/// // Application code names the trait, not the service.
/// fn store_report(key: &dyn KeyEncrypter, report: &[u8]) -> localkms::Result<Vec<u8>> {
///     let ctx = EncryptionContext::from_pairs([("kind", "report")])?;
///     let mut out = Vec::new();
///     let mut w = key.envelope_writer(&ctx, &mut out)?;
///     w.write_all(report)?;
///     w.finish()?;
///     Ok(out)
/// }
///
/// let kms = Kms::in_memory()?;
/// let id = kms.create_key(&Default::default())?.key_id;
/// kms.create_alias("alias/reports", &id)?;
/// let key = kms.key("alias/reports");
/// let sealed = store_report(&key, b"quarterly numbers")?;
/// let ctx = EncryptionContext::from_pairs([("kind", "report")])?;
/// let mut text = Vec::new();
/// key.envelope_reader(&ctx, &mut &sealed[..])?.read_to_end(&mut text)?;
/// assert_eq!(text, b"quarterly numbers");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait KeyEncrypter: Send + Sync {
    /// Seals `plaintext` (at most 6144 bytes for a KMS key).
    ///
    /// # Errors
    /// As [`Kms::encrypt`].
    fn encrypt(&self, plaintext: &[u8], context: &EncryptionContext) -> Result<CiphertextBlob>;

    /// Opens a blob that [`KeyEncrypter::encrypt`] or
    /// [`KeyEncrypter::generate_data_key`] of this key made.
    ///
    /// # Errors
    /// As [`Kms::decrypt`]; a blob made under another key is refused.
    fn decrypt(&self, ciphertext: &[u8], context: &EncryptionContext) -> Result<SecretBytes>;

    /// A fresh data key of `spec`: in plaintext, and sealed.
    ///
    /// # Errors
    /// As [`Kms::generate_data_key`].
    fn generate_data_key(
        &self,
        spec: DataKeySpec,
        context: &EncryptionContext,
    ) -> Result<(SecretBytes, CiphertextBlob)>;

    /// A fresh 256-bit envelope data key: in plaintext, and sealed so that
    /// only [`KeyEncrypter::open_envelope_key`] opens it (not `decrypt`).
    ///
    /// # Errors
    /// As [`KeyEncrypter::generate_data_key`].
    fn generate_envelope_key(
        &self,
        context: &EncryptionContext,
    ) -> Result<(SecretBytes, CiphertextBlob)>;

    /// Opens the key blob in an envelope header of format `version`: 2 for
    /// a blob of [`KeyEncrypter::generate_envelope_key`]; 1 (read only) for a
    /// 32-byte data key blob of GenerateDataKey.
    ///
    /// # Errors
    /// The uniform [`Error::DecryptionFailed`] for any other blob.
    fn open_envelope_key(
        &self,
        version: u8,
        blob: &[u8],
        context: &EncryptionContext,
    ) -> Result<SecretBytes>;

    /// An encrypting [`Write`] adapter over `output`: what is written is
    /// sealed into an envelope. Call [`EnvelopeWriter::finish`] at the end;
    /// an unfinished envelope never decrypts.
    ///
    /// # Errors
    /// As [`KeyEncrypter::generate_envelope_key`]; [`Error::Io`] when writing
    /// the header fails.
    fn envelope_writer<'a>(
        &self,
        context: &EncryptionContext,
        output: &'a mut dyn Write,
    ) -> Result<EnvelopeWriter<&'a mut dyn Write>> {
        let (key, blob) = self.generate_envelope_key(context)?;
        EnvelopeWriter::start(&key, &blob, output)
    }

    /// A decrypting [`Read`] adapter over the envelope in `input`; it reads
    /// the header now. It returns only authenticated bytes.
    ///
    /// # Errors
    /// As [`KeyEncrypter::open_envelope_key`]; [`Error::DecryptionFailed`]
    /// for a malformed header.
    fn envelope_reader<'a>(
        &self,
        context: &EncryptionContext,
        input: &'a mut dyn Read,
    ) -> Result<EnvelopeReader<&'a mut dyn Read>> {
        EnvelopeReader::start(input, &mut |version, blob| {
            self.open_envelope_key(version, blob, context)
        })
    }
}

/// A handle on one CMK of a [`Kms`], named by key id, key ARN, alias or
/// alias ARN: made by [`Kms::key`]. Cheap to clone.
///
/// It resolves its name on **every** call, so a handle on an alias follows
/// the alias when it moves. Its `decrypt` refuses a blob made under another
/// key than the one its name resolves to at that moment.
#[derive(Clone)]
pub struct KeyHandle {
    kms: Kms,
    key: String,
    version: Option<String>,
}

impl Kms {
    /// A handle on the key `key_id` (a key id, key ARN, alias or alias ARN),
    /// implementing [`KeyEncrypter`]. Nothing is looked up until it is used.
    pub fn key(&self, key_id: impl Into<String>) -> KeyHandle {
        KeyHandle {
            kms: self.clone(),
            key: key_id.into(),
            version: None,
        }
    }
}

impl KeyHandle {
    /// The name the handle was made with (id, ARN or alias).
    pub fn name(&self) -> &str {
        &self.key
    }

    /// The same handle naming a key version. Encryption always uses the
    /// key's primary version (as Encrypt does); the version is for
    /// operations that name one (signing, with asymmetric keys).
    #[must_use]
    pub fn with_version(mut self, key_version_id: impl Into<String>) -> Self {
        self.version = Some(key_version_id.into());
        self
    }

    /// The key version named by [`KeyHandle::with_version`], if any.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// This key as an asymmetric key, for signing and verifying: the version
    /// named by [`KeyHandle::with_version`], else the key's primary version
    /// now (SPEC section 13). The name is resolved again on each call, so an
    /// alias that moves is followed. The handle itself implements
    /// `signature::Signer` and `signature::Verifier` through this.
    ///
    /// # Errors
    /// As [`Kms::describe_key`] when the primary version is looked up.
    pub fn asymmetric(&self) -> Result<crate::ops::asymmetric::AsymmetricKeyHandle<'_>> {
        let version = match &self.version {
            Some(v) => v.clone(),
            None => self.kms.describe_key(&self.key)?.primary_key_version,
        };
        Ok(self.kms.asymmetric_key(self.key.clone(), version))
    }

    /// The key id the name resolves to now.
    ///
    /// # Errors
    /// `Forbidden.KeyNotFound`, `Forbidden.AliasNotFound`.
    pub fn key_id(&self) -> Result<String> {
        Ok(self.kms.resolve_key(&self.key, "KeyId", true)?.into_owned())
    }

    fn decrypt_op(&self, ciphertext: &[u8], context: &EncryptionContext) -> Result<SecretBytes> {
        let id = self.key_id()?;
        if ciphertext.is_empty() {
            return Err(Error::MissingParameter("CiphertextBlob"));
        }
        if ciphertext.len() > MAX_BLOB_BYTES {
            return Err(Error::DecryptionFailed);
        }
        let d = self
            .kms
            .decrypt_raw(Zeroizing::new(ciphertext.to_vec()), context, Some(&id))?;
        if d.kind == PlaintextKind::EnvelopeKey {
            return Err(Error::DecryptionFailed);
        }
        Ok(d.plaintext)
    }
}

impl fmt::Debug for KeyHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyHandle")
            .field("key", &self.key)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl KeyEncrypter for KeyHandle {
    fn encrypt(&self, plaintext: &[u8], context: &EncryptionContext) -> Result<CiphertextBlob> {
        Ok(self
            .kms
            .encrypt(&self.key, plaintext, context)?
            .ciphertext_blob)
    }

    fn decrypt(&self, ciphertext: &[u8], context: &EncryptionContext) -> Result<SecretBytes> {
        self.kms
            .operation("Decrypt", &self.key, || {
                self.decrypt_op(ciphertext, context).map(Opaque)
            })
            .map(|o| o.0)
    }

    fn generate_data_key(
        &self,
        spec: DataKeySpec,
        context: &EncryptionContext,
    ) -> Result<(SecretBytes, CiphertextBlob)> {
        let req = GenerateDataKeyRequest::with_spec(spec).context(context.clone());
        let dk = self.kms.generate_data_key(&self.key, &req)?;
        Ok((dk.plaintext, dk.ciphertext_blob))
    }

    fn generate_envelope_key(
        &self,
        context: &EncryptionContext,
    ) -> Result<(SecretBytes, CiphertextBlob)> {
        self.kms
            .operation("EnvelopeEncryptStream", &self.key, || {
                let (sealed, key) = self.kms.generate_envelope_key(&self.key, context)?;
                Ok(Opaque((key, CiphertextBlob::from(sealed.blob))))
            })
            .map(|o| o.0)
    }

    fn open_envelope_key(
        &self,
        version: u8,
        blob: &[u8],
        context: &EncryptionContext,
    ) -> Result<SecretBytes> {
        self.kms
            .operation("EnvelopeDecryptStream", &self.key, || {
                let id = self.key_id()?;
                let (key, _) = self
                    .kms
                    .open_envelope_key(version, blob, context, Some(&id))?;
                Ok(Opaque(key))
            })
            .map(|o| o.0)
    }
}
