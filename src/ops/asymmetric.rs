//! Asymmetric keys in the service (SPEC section 11): GetPublicKey,
//! AsymmetricSign, AsymmetricVerify, AsymmetricEncrypt, AsymmetricDecrypt,
//! the sealed, cached per-version secrets of every key that is not
//! `Aliyun_AES_256`, and [`AsymmetricKeyHandle`], which plugs a key version
//! into the `signature` crate's `Signer` and `Verifier` traits.
//!
//! Every call checks, in this order: the `KeyId` (resolved; alias ok), the
//! key's kind and usage against the operation (a symmetric or HMAC key, or a
//! key pair of the other usage, is `InvalidParameter` naming `KeyId`), the
//! algorithm against the key's spec (`InvalidParameter` naming `Algorithm`),
//! the key's state (the crypto row of the state table: `Rejected.Disabled`,
//! `Rejected.PendingDeletion`), and last the version (`KeyVersionId` of
//! another key, or of none: `Forbidden.KeyVersionNotFound`). A key's spec and
//! usage never change, so, like origin checks (SPEC section 8), they come
//! before state checks. The vendor documents no dedicated error code for a
//! wrong usage or algorithm; SPEC section 11 decides `InvalidParameter`.
//!
//! Signatures take a DIGEST (SHA-256, or for `SM2DSA` the SM3 digest of
//! Z(A) || M); nothing here hashes it again. [`AsymmetricKeyHandle`] takes
//! messages and hashes them once, for the `signature` traits.

use std::fmt;
use std::sync::Arc;

use rand_core::{TryCryptoRng, TryRng};
use zeroize::Zeroizing;

use crate::cache::{KeyEntry, VersionSecret};
use crate::crypto::asym::{self, Algorithm, AsymError, PrivateKey, PublicKey};
use crate::error::{Error, Rejection, Result, shorten};
use crate::kms::Kms;
use crate::ops::symmetric::SecretBytes;
use crate::secret::KeyMaterial;
use crate::store::Batch;
use crate::types::{KeySpec, KeyUsage};

/// The longest `Plaintext` of AsymmetricEncrypt with `SM2PKE`, in bytes
/// (the vendor's limit; RSA-OAEP is limited by the key size).
pub const MAX_SM2_PLAINTEXT_BYTES: usize = 6047;
/// The longest `CiphertextBlob` AsymmetricDecrypt reads, in bytes.
const MAX_ASYM_CIPHERTEXT_BYTES: usize = 8192;

/// The primitives' spec of a key spec (the two enums name the same specs).
pub(crate) const fn asym_spec(s: KeySpec) -> asym::KeySpec {
    match s {
        KeySpec::Aes256 => asym::KeySpec::Aes256,
        KeySpec::Sm4 => asym::KeySpec::Sm4,
        KeySpec::Rsa2048 => asym::KeySpec::Rsa2048,
        KeySpec::Rsa3072 => asym::KeySpec::Rsa3072,
        KeySpec::EcP256 => asym::KeySpec::EcP256,
        KeySpec::EcP256K => asym::KeySpec::EcP256K,
        KeySpec::EcSm2 => asym::KeySpec::EcSm2,
        KeySpec::HmacSha224 => asym::KeySpec::HmacSha224,
        KeySpec::HmacSha256 => asym::KeySpec::HmacSha256,
        KeySpec::HmacSha384 => asym::KeySpec::HmacSha384,
        KeySpec::HmacSha512 => asym::KeySpec::HmacSha512,
        KeySpec::HmacSm3 => asym::KeySpec::HmacSm3,
    }
}

/// The primitives' usage of a key usage.
pub(crate) const fn asym_usage(u: KeyUsage) -> asym::KeyUsage {
    match u {
        KeyUsage::EncryptDecrypt => asym::KeyUsage::EncryptDecrypt,
        KeyUsage::SignVerify => asym::KeyUsage::SignVerify,
        KeyUsage::GenerateVerifyMac => asym::KeyUsage::GenerateVerifyMac,
    }
}

/// The service's usage of a primitives' usage.
pub(crate) const fn service_usage(u: asym::KeyUsage) -> KeyUsage {
    match u {
        asym::KeyUsage::EncryptDecrypt => KeyUsage::EncryptDecrypt,
        asym::KeyUsage::SignVerify => KeyUsage::SignVerify,
        asym::KeyUsage::GenerateVerifyMac => KeyUsage::GenerateVerifyMac,
    }
}

/// The service error of a primitive's error.
pub(crate) fn asym_error(e: AsymError) -> Error {
    match e {
        AsymError::InvalidParameter { param, reason } => Error::invalid(param, reason),
        // One message for every cause: no padding oracle.
        AsymError::DecryptionFailed => Error::invalid(
            "CiphertextBlob",
            "it cannot be decrypted with this key version and algorithm",
        ),
        AsymError::InvalidKeyMaterial => {
            Error::CorruptStore("stored key material does not parse for its key spec".into())
        }
        AsymError::Internal => Error::InternalFailure,
    }
}

/// Checks a `KeySpec` + `KeyUsage` pair of CreateKey (SPEC section 11).
pub(crate) fn check_spec_usage(spec: KeySpec, usage: KeyUsage) -> Result<()> {
    if asym_spec(spec).allows_usage(asym_usage(usage)) {
        Ok(())
    } else {
        Err(Error::invalid(
            "KeyUsage",
            format!("{usage} is not a usage of {spec} keys"),
        ))
    }
}

/// The service's random source as a `rand_core` generator, for the
/// primitives (key generation, signing nonces, blinding, padding).
pub(crate) struct ServiceRng<'a>(&'a crate::rng::Rng);

/// The random source failed.
#[derive(Debug)]
pub(crate) struct RngFailure;

impl fmt::Display for RngFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the random source failed")
    }
}

impl std::error::Error for RngFailure {}

impl TryRng for ServiceRng<'_> {
    type Error = RngFailure;

    fn try_next_u32(&mut self) -> std::result::Result<u32, RngFailure> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> std::result::Result<u64, RngFailure> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> std::result::Result<(), RngFailure> {
        self.0.fill_random(dst).map_err(|_| RngFailure)
    }
}

impl TryCryptoRng for ServiceRng<'_> {}

/// The material of a new key version, by spec: 32 bytes for
/// `Aliyun_AES_256` (the existing sealed-material path), otherwise the bytes
/// [`Kms::put_material_bytes`] seals (PKCS#8 DER of a private key, an HMAC
/// key, an SM4 key).
pub(crate) enum NewMaterial {
    /// `Aliyun_AES_256` material.
    Aes(KeyMaterial),
    /// Any other spec's material.
    Bytes(Zeroizing<Vec<u8>>),
}

impl Kms {
    /// The service's random source for the primitives.
    pub(crate) fn service_rng(&self) -> ServiceRng<'_> {
        ServiceRng(&self.toolkit.rng)
    }

    /// Fresh material for a version of a key of `spec`. RSA generation is
    /// slow (RSA_3072: about a second in release builds; see
    /// `benches/asym.rs`): call this before taking the writer lock.
    pub(crate) fn new_material_for(&self, spec: KeySpec) -> Result<NewMaterial> {
        let a = asym_spec(spec);
        if spec == KeySpec::Aes256 {
            return Ok(NewMaterial::Aes(self.new_material()?));
        }
        if a.is_asymmetric() {
            let key = PrivateKey::generate(a, &mut self.service_rng()).map_err(asym_error)?;
            return Ok(NewMaterial::Bytes(key.to_pkcs8_der().map_err(asym_error)?));
        }
        let len = a.secret_len().ok_or(Error::InternalFailure)?;
        let mut bytes = Zeroizing::new(vec![0u8; len]);
        self.fill_random(&mut bytes)?;
        Ok(NewMaterial::Bytes(bytes))
    }

    /// Seals new material as version `version_id` of `key_id` into `batch`.
    pub(crate) fn put_new_material(
        &self,
        batch: &mut Batch,
        key_id: &str,
        version_id: &str,
        material: &NewMaterial,
    ) -> Result<()> {
        match material {
            NewMaterial::Aes(m) => self.put_material(batch, key_id, version_id, m),
            NewMaterial::Bytes(b) => self.put_material_bytes(batch, key_id, version_id, b),
        }
    }

    /// The parsed secret of one version of a key that is not
    /// `Aliyun_AES_256`, opened once and cached with the key (a change to
    /// the key drops the cache entry, and with it the secrets).
    pub(crate) fn version_secret(
        &self,
        entry: &KeyEntry,
        version_id: &str,
    ) -> Result<Arc<VersionSecret>> {
        if let Some(s) = entry
            .secrets
            .read()
            .map_err(|_| Error::InternalFailure)?
            .get(version_id)
        {
            return Ok(Arc::clone(s));
        }
        let record = &entry.record;
        if !record.versions.iter().any(|v| v.id == version_id) {
            return Err(Error::KeyVersionNotFound(shorten(version_id)));
        }
        let bytes = self.open_material_bytes(record, version_id)?;
        let spec = asym_spec(record.spec);
        let secret = if spec.is_asymmetric() {
            let key = PrivateKey::from_pkcs8_der(spec, &bytes).map_err(asym_error)?;
            let public = key.public_key();
            VersionSecret::Private { key, public }
        } else if spec.secret_len().is_some_and(|n| n == bytes.len()) {
            VersionSecret::Raw(bytes)
        } else {
            return Err(asym_error(AsymError::InvalidKeyMaterial));
        };
        let secret = Arc::new(secret);
        entry
            .secrets
            .write()
            .map_err(|_| Error::InternalFailure)?
            .insert(version_id.to_owned(), Arc::clone(&secret));
        Ok(secret)
    }

    /// The key `key_id` for `action`, which needs a key of `usage` (and for
    /// the asymmetric operations a key pair): checks kind and usage, then
    /// `algorithm` against the spec, then the state (see the module docs).
    pub(crate) fn keyed_entry(
        &self,
        key_id: &str,
        action: &'static str,
        usage: Option<asym::KeyUsage>,
        algorithm: Option<Algorithm>,
    ) -> Result<Arc<KeyEntry>> {
        let id = self.resolve_key(key_id, "KeyId", true)?;
        let entry = self.entry(&id)?;
        let r = &entry.record;
        let spec = asym_spec(r.spec);
        let key_usage = asym_usage(r.usage);
        let wants_pair = !matches!(usage, Some(asym::KeyUsage::GenerateVerifyMac));
        if wants_pair && !spec.is_asymmetric() {
            let kind = if spec.is_hmac() {
                "an HMAC"
            } else {
                "a symmetric"
            };
            return Err(Error::invalid(
                "KeyId",
                format!(
                    "{action} needs an asymmetric key, and this is {kind} key (KeySpec {})",
                    r.spec
                ),
            ));
        }
        if let Some(u) = usage
            && u != key_usage
        {
            return Err(Error::invalid(
                "KeyId",
                format!(
                    "{action} needs a key with KeyUsage {}, and this {} key has KeyUsage {}",
                    service_usage(u),
                    r.spec,
                    r.usage
                ),
            ));
        }
        if let Some(alg) = algorithm
            && !(alg.fits_spec(spec) && Some(alg.usage()) == usage)
        {
            return Err(Error::invalid(
                "Algorithm",
                format!(
                    "{alg} is not an algorithm of {} keys with KeyUsage {}",
                    r.spec, r.usage
                ),
            ));
        }
        if let Some(rejection) = Rejection::for_use(r.state) {
            return Err(Error::rejected(rejection, &r.key_id, r.state));
        }
        Ok(entry)
    }

    /// The private and public key of `version_id` of an asymmetric `entry`.
    fn key_pair(&self, entry: &KeyEntry, version_id: &str) -> Result<Arc<VersionSecret>> {
        if version_id.is_empty() {
            return Err(Error::MissingParameter("KeyVersionId"));
        }
        let secret = self.version_secret(entry, version_id)?;
        match &*secret {
            VersionSecret::Private { .. } => Ok(secret),
            VersionSecret::Raw(_) => Err(Error::InternalFailure),
        }
    }

    /// GetPublicKey: the SubjectPublicKeyInfo PEM of one version of an
    /// asymmetric key (any usage). `key_id` may be an alias.
    ///
    /// ```
    /// use localkms::{CreateKeyRequest, KeySpec, Kms};
    /// let kms = Kms::in_memory()?;
    /// let key = kms.create_key(&CreateKeyRequest { key_spec: KeySpec::EcP256, ..Default::default() })?;
    /// let pem = kms.get_public_key(&key.key_id, &key.primary_key_version)?.public_key;
    /// assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    /// # Ok::<(), localkms::Error>(())
    /// ```
    ///
    /// # Errors
    /// `MissingParameter` (KeyId, KeyVersionId), `InvalidParameter` naming
    /// `KeyId` for a key that is not a key pair, `Forbidden.KeyNotFound`,
    /// `Forbidden.AliasNotFound`, `Forbidden.KeyVersionNotFound`, the state
    /// rejections.
    pub fn get_public_key(&self, key_id: &str, key_version_id: &str) -> Result<PublicKeyInfo> {
        self.operation("GetPublicKey", key_id, || {
            let entry = self.keyed_entry(key_id, "GetPublicKey", None, None)?;
            let secret = self.key_pair(&entry, key_version_id)?;
            let VersionSecret::Private { public, .. } = &*secret else {
                return Err(Error::InternalFailure);
            };
            Ok(PublicKeyInfo {
                key_id: entry.record.key_id.clone(),
                key_version_id: key_version_id.to_owned(),
                public_key: public.to_pem().map_err(asym_error)?,
            })
        })
    }

    /// AsymmetricSign: signs a DIGEST (32 bytes: SHA-256 of the message, or
    /// for `SM2DSA` e = SM3(Z(A) || M), see [`crate::asym::sm2_digest`]) with
    /// one version of a `SIGN/VERIFY` key. ECDSA and SM2 signatures are DER,
    /// ECDSA ones always low-S; RSA ones are the raw k-byte signature.
    ///
    /// # Errors
    /// `MissingParameter` (KeyId, KeyVersionId, Digest); `InvalidParameter`
    /// naming `KeyId` (not a `SIGN/VERIFY` key pair), `Algorithm` (not one
    /// of the key's spec) or `Digest` (not 32 bytes); the key, version and
    /// state errors of [`Kms::get_public_key`].
    pub fn asymmetric_sign(
        &self,
        key_id: &str,
        key_version_id: &str,
        algorithm: Algorithm,
        digest: &[u8],
    ) -> Result<Signed> {
        self.operation("AsymmetricSign", key_id, || {
            let entry = self.keyed_entry(
                key_id,
                "AsymmetricSign",
                Some(asym::KeyUsage::SignVerify),
                Some(algorithm),
            )?;
            let secret = self.key_pair(&entry, key_version_id)?;
            let VersionSecret::Private { key, .. } = &*secret else {
                return Err(Error::InternalFailure);
            };
            if digest.is_empty() {
                return Err(Error::MissingParameter("Digest"));
            }
            let value = key
                .sign_digest(algorithm, digest, &mut self.service_rng())
                .map_err(asym_error)?;
            Ok(Signed {
                key_id: entry.record.key_id.clone(),
                key_version_id: key_version_id.to_owned(),
                value,
            })
        })
    }

    /// AsymmetricVerify: whether `signature` is a valid signature of the
    /// DIGEST with one version of a `SIGN/VERIFY` key. ECDSA accepts high-S
    /// signatures too (SPEC section 11). A signature that does not parse is
    /// simply not valid (`value` false).
    ///
    /// # Errors
    /// As [`Kms::asymmetric_sign`], and `MissingParameter` (Value).
    pub fn asymmetric_verify(
        &self,
        key_id: &str,
        key_version_id: &str,
        algorithm: Algorithm,
        digest: &[u8],
        signature: &[u8],
    ) -> Result<Verified> {
        self.operation("AsymmetricVerify", key_id, || {
            let entry = self.keyed_entry(
                key_id,
                "AsymmetricVerify",
                Some(asym::KeyUsage::SignVerify),
                Some(algorithm),
            )?;
            let secret = self.key_pair(&entry, key_version_id)?;
            let VersionSecret::Private { public, .. } = &*secret else {
                return Err(Error::InternalFailure);
            };
            if digest.is_empty() {
                return Err(Error::MissingParameter("Digest"));
            }
            if signature.is_empty() {
                return Err(Error::MissingParameter("Value"));
            }
            let value = public
                .verify_digest(algorithm, digest, signature)
                .map_err(asym_error)?;
            Ok(Verified {
                key_id: entry.record.key_id.clone(),
                key_version_id: key_version_id.to_owned(),
                value,
            })
        })
    }

    /// AsymmetricEncrypt: encrypts `plaintext` to one version of an
    /// `ENCRYPT/DECRYPT` key pair: RSAES-OAEP (SHA-256 or SHA-1, MGF1 with
    /// the same hash, empty label) or SM2PKE (GM/T 0009 ASN.1 ciphertext).
    ///
    /// # Errors
    /// `MissingParameter` (KeyId, KeyVersionId, Plaintext), `InvalidParameter`
    /// naming `KeyId`, `Algorithm` or `Plaintext` (too long for the key and
    /// padding, or over 6047 bytes for SM2), and the key errors of
    /// [`Kms::get_public_key`].
    pub fn asymmetric_encrypt(
        &self,
        key_id: &str,
        key_version_id: &str,
        algorithm: Algorithm,
        plaintext: &[u8],
    ) -> Result<AsymmetricCiphertext> {
        self.operation("AsymmetricEncrypt", key_id, || {
            let entry = self.keyed_entry(
                key_id,
                "AsymmetricEncrypt",
                Some(asym::KeyUsage::EncryptDecrypt),
                Some(algorithm),
            )?;
            let secret = self.key_pair(&entry, key_version_id)?;
            let VersionSecret::Private { public, .. } = &*secret else {
                return Err(Error::InternalFailure);
            };
            if plaintext.is_empty() {
                return Err(Error::MissingParameter("Plaintext"));
            }
            if algorithm == Algorithm::Sm2Pke && plaintext.len() > MAX_SM2_PLAINTEXT_BYTES {
                return Err(Error::invalid(
                    "Plaintext",
                    "must be at most 6047 bytes for SM2PKE",
                ));
            }
            let ciphertext_blob = public
                .encrypt(algorithm, plaintext, &mut self.service_rng())
                .map_err(asym_error)?;
            Ok(AsymmetricCiphertext {
                key_id: entry.record.key_id.clone(),
                key_version_id: key_version_id.to_owned(),
                ciphertext_blob,
            })
        })
    }

    /// AsymmetricDecrypt: decrypts a ciphertext made for one version of an
    /// `ENCRYPT/DECRYPT` key pair. Every decryption failure (wrong key,
    /// version or algorithm for the ciphertext, bad padding, tampering) is
    /// one `InvalidParameter` naming `CiphertextBlob`, with one message.
    ///
    /// # Errors
    /// `MissingParameter` (KeyId, KeyVersionId, CiphertextBlob),
    /// `InvalidParameter` naming `KeyId`, `Algorithm` or `CiphertextBlob`,
    /// and the key errors of [`Kms::get_public_key`].
    pub fn asymmetric_decrypt(
        &self,
        key_id: &str,
        key_version_id: &str,
        algorithm: Algorithm,
        ciphertext: &[u8],
    ) -> Result<AsymmetricPlaintext> {
        self.operation("AsymmetricDecrypt", key_id, || {
            let entry = self.keyed_entry(
                key_id,
                "AsymmetricDecrypt",
                Some(asym::KeyUsage::EncryptDecrypt),
                Some(algorithm),
            )?;
            let secret = self.key_pair(&entry, key_version_id)?;
            let VersionSecret::Private { key, .. } = &*secret else {
                return Err(Error::InternalFailure);
            };
            if ciphertext.is_empty() {
                return Err(Error::MissingParameter("CiphertextBlob"));
            }
            if ciphertext.len() > MAX_ASYM_CIPHERTEXT_BYTES {
                return Err(asym_error(AsymError::DecryptionFailed));
            }
            let plain = key
                .decrypt(algorithm, ciphertext, &mut self.service_rng())
                .map_err(asym_error)?;
            let len = plain.len();
            Ok(AsymmetricPlaintext {
                key_id: entry.record.key_id.clone(),
                key_version_id: key_version_id.to_owned(),
                plaintext: SecretBytes::in_buffer(plain, 0..len)?,
            })
        })
    }

    /// A handle on one version of an asymmetric key, for the `signature`
    /// crate's traits (see [`AsymmetricKeyHandle`]). Checks nothing yet:
    /// every call through the handle checks the key as the operations do.
    pub fn asymmetric_key<'a>(
        &'a self,
        key_id: impl Into<String>,
        key_version_id: impl Into<String>,
    ) -> AsymmetricKeyHandle<'a> {
        AsymmetricKeyHandle {
            kms: self,
            key_id: key_id.into(),
            key_version_id: key_version_id.into(),
        }
    }
}

/// The public key of GetPublicKey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeyInfo {
    /// The key (resolved from an alias or ARN).
    pub key_id: String,
    /// The version.
    pub key_version_id: String,
    /// SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`).
    pub public_key: String,
}

/// The response of AsymmetricSign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The key.
    pub key_id: String,
    /// The version that signed.
    pub key_version_id: String,
    /// The signature (the wire `Value` is its base64).
    pub value: Vec<u8>,
}

/// The response of AsymmetricVerify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The key.
    pub key_id: String,
    /// The version that verified.
    pub key_version_id: String,
    /// Whether the signature is valid.
    pub value: bool,
}

/// The response of AsymmetricEncrypt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsymmetricCiphertext {
    /// The key.
    pub key_id: String,
    /// The version encrypted to.
    pub key_version_id: String,
    /// The ciphertext (the wire `CiphertextBlob` is its base64).
    pub ciphertext_blob: Vec<u8>,
}

/// The response of AsymmetricDecrypt.
#[derive(Debug)]
pub struct AsymmetricPlaintext {
    /// The key.
    pub key_id: String,
    /// The version that decrypted.
    pub key_version_id: String,
    /// The plaintext (the wire `Plaintext` is its base64).
    pub plaintext: SecretBytes,
}

crate::kms::instrument::audited_ids! {
    PublicKeyInfo => |r| (Some(&r.key_id), Some(&r.key_version_id));
    Signed => |r| (Some(&r.key_id), Some(&r.key_version_id));
    Verified => |r| (Some(&r.key_id), Some(&r.key_version_id));
    AsymmetricCiphertext => |r| (Some(&r.key_id), Some(&r.key_version_id));
    AsymmetricPlaintext => |r| (Some(&r.key_id), Some(&r.key_version_id));
}

/// One version of an asymmetric key in the service, as a signer and
/// verifier of the `signature` crate: Rust libraries that sign through
/// `signature::Signer` (JWT, X.509, COSE crates) can sign with a localkms
/// key, whose private half never leaves the service.
///
/// The handle takes MESSAGES and hashes them once (SHA-256; for SM2, SM3 of
/// Z(A) || M with the default id), then calls AsymmetricSign /
/// AsymmetricVerify, so every call is checked, audited and subject to fault
/// rules like those operations. A key of another spec or usage fails with
/// `signature::Error` (its source is the service's [`Error`]).
///
/// | key spec | `Signer` / `Verifier` of |
/// | --- | --- |
/// | `EC_P256` | `p256::ecdsa::Signature`, `p256::ecdsa::DerSignature` |
/// | `EC_P256K` | `k256::ecdsa::Signature`, `k256::ecdsa::DerSignature` |
/// | `RSA_2048`, `RSA_3072` | `rsa::pkcs1v15::Signature` (`RSA_PKCS1_SHA_256`), `rsa::pss::Signature` (`RSA_PSS_SHA_256`) |
/// | `EC_SM2` | `sm2::dsa::Signature` |
///
/// ```
/// use localkms::{CreateKeyRequest, KeySpec, Kms};
/// use signature::{Signer, Verifier};
/// let kms = Kms::in_memory()?;
/// let key = kms.create_key(&CreateKeyRequest { key_spec: KeySpec::EcP256, ..Default::default() })?;
/// let signer = kms.asymmetric_key(&key.key_id, &key.primary_key_version);
/// let sig: p256::ecdsa::DerSignature = signer.try_sign(b"message").expect("sign");
/// assert!(signer.verify(b"message", &sig).is_ok());
/// # Ok::<(), localkms::Error>(())
/// ```
///
/// Kept apart from the symmetric key handle on purpose, so the two can be
/// joined into one handle type later.
pub struct AsymmetricKeyHandle<'a> {
    kms: &'a Kms,
    key_id: String,
    key_version_id: String,
}

impl fmt::Debug for AsymmetricKeyHandle<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsymmetricKeyHandle")
            .field("key_id", &self.key_id)
            .field("key_version_id", &self.key_version_id)
            .finish_non_exhaustive()
    }
}

impl AsymmetricKeyHandle<'_> {
    /// The key id (as given).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The key version id.
    pub fn key_version_id(&self) -> &str {
        &self.key_version_id
    }

    /// The version's public key (GetPublicKey), parsed.
    ///
    /// # Errors
    /// As [`Kms::get_public_key`].
    pub fn public_key(&self) -> Result<PublicKey> {
        let entry = self
            .kms
            .keyed_entry(&self.key_id, "GetPublicKey", None, None)?;
        let secret = self.kms.key_pair(&entry, &self.key_version_id)?;
        match &*secret {
            VersionSecret::Private { public, .. } => Ok(public.clone()),
            VersionSecret::Raw(_) => Err(Error::InternalFailure),
        }
    }

    /// Signs `msg` (hashed here once) with `algorithm`: the signature bytes
    /// of AsymmetricSign.
    ///
    /// # Errors
    /// As [`Kms::asymmetric_sign`].
    pub fn sign_message(&self, algorithm: Algorithm, msg: &[u8]) -> Result<Vec<u8>> {
        let digest = self.digest(algorithm, msg)?;
        Ok(self
            .kms
            .asymmetric_sign(&self.key_id, &self.key_version_id, algorithm, &digest)?
            .value)
    }

    /// Verifies a signature over `msg` (hashed here once).
    ///
    /// # Errors
    /// As [`Kms::asymmetric_verify`].
    pub fn verify_message(&self, algorithm: Algorithm, msg: &[u8], sig: &[u8]) -> Result<bool> {
        let digest = self.digest(algorithm, msg)?;
        Ok(self
            .kms
            .asymmetric_verify(&self.key_id, &self.key_version_id, algorithm, &digest, sig)?
            .value)
    }

    fn digest(&self, algorithm: Algorithm, msg: &[u8]) -> Result<[u8; 32]> {
        if algorithm == Algorithm::Sm2Dsa {
            asym::sm2_digest(&self.public_key()?, msg).map_err(asym_error)
        } else {
            Ok(asym::sha256(msg))
        }
    }

    /// `InvalidParameter` naming `KeyId` unless the key is of one of
    /// `specs` (the signature type's curve or key kind).
    fn check_spec(&self, specs: &[KeySpec]) -> Result<()> {
        let id = self.kms.resolve_key(&self.key_id, "KeyId", true)?;
        let spec = self.kms.entry(&id)?.record.spec;
        if specs.contains(&spec) {
            Ok(())
        } else {
            Err(Error::invalid(
                "KeyId",
                format!("this signature type needs a key of {specs:?}, and the key is {spec}"),
            ))
        }
    }

    fn try_sign_as(
        &self,
        specs: &[KeySpec],
        algorithm: Algorithm,
        msg: &[u8],
    ) -> signature::Result<Vec<u8>> {
        self.check_spec(specs)
            .and_then(|()| self.sign_message(algorithm, msg))
            .map_err(signature::Error::from_source)
    }

    fn try_verify_as(
        &self,
        specs: &[KeySpec],
        algorithm: Algorithm,
        msg: &[u8],
        sig: &[u8],
    ) -> signature::Result<()> {
        self.check_spec(specs)
            .map_err(signature::Error::from_source)?;
        match self.verify_message(algorithm, msg, sig) {
            Ok(true) => Ok(()),
            Ok(false) => Err(signature::Error::new()),
            Err(e) => Err(signature::Error::from_source(e)),
        }
    }
}

/// `Signer<S>` and `Verifier<S>` for `S`, a signature of `algorithm` whose
/// encoding the service produces (`$from` parses the service's bytes,
/// `$to` gives the bytes the service reads).
macro_rules! signature_traits {
    ($($sig:ty, $specs:expr, $alg:expr, |$b:ident| $from:expr, |$s:ident| $to:expr;)*) => {$(
        impl signature::Signer<$sig> for AsymmetricKeyHandle<'_> {
            fn try_sign(&self, msg: &[u8]) -> signature::Result<$sig> {
                let $b = self.try_sign_as($specs, $alg, msg)?;
                $from
            }
        }

        impl signature::Verifier<$sig> for AsymmetricKeyHandle<'_> {
            fn verify(&self, msg: &[u8], signature: &$sig) -> signature::Result<()> {
                let $s = signature;
                self.try_verify_as($specs, $alg, msg, &$to)
            }
        }

        impl signature::Signer<$sig> for crate::ops::handle::KeyHandle {
            fn try_sign(&self, msg: &[u8]) -> signature::Result<$sig> {
                let h = self.asymmetric().map_err(signature::Error::from_source)?;
                signature::Signer::<$sig>::try_sign(&h, msg)
            }
        }

        impl signature::Verifier<$sig> for crate::ops::handle::KeyHandle {
            fn verify(&self, msg: &[u8], signature: &$sig) -> signature::Result<()> {
                let h = self.asymmetric().map_err(signature::Error::from_source)?;
                signature::Verifier::<$sig>::verify(&h, msg, signature)
            }
        }
    )*};
}

signature_traits! {
    p256::ecdsa::Signature, &[KeySpec::EcP256], Algorithm::EcdsaSha256,
        |b| p256::ecdsa::Signature::from_der(&b), |s| s.to_der().to_bytes();
    p256::ecdsa::DerSignature, &[KeySpec::EcP256], Algorithm::EcdsaSha256,
        |b| p256::ecdsa::DerSignature::try_from(b.as_slice()), |s| s.to_bytes();
    k256::ecdsa::Signature, &[KeySpec::EcP256K], Algorithm::EcdsaSha256,
        |b| k256::ecdsa::Signature::from_der(&b), |s| s.to_der().to_bytes();
    k256::ecdsa::DerSignature, &[KeySpec::EcP256K], Algorithm::EcdsaSha256,
        |b| k256::ecdsa::DerSignature::try_from(b.as_slice()), |s| s.to_bytes();
    rsa::pkcs1v15::Signature, &[KeySpec::Rsa2048, KeySpec::Rsa3072], Algorithm::RsaPkcs1Sha256,
        |b| rsa::pkcs1v15::Signature::try_from(b.as_slice()), |s| signature::SignatureEncoding::to_vec(s);
    rsa::pss::Signature, &[KeySpec::Rsa2048, KeySpec::Rsa3072], Algorithm::RsaPssSha256,
        |b| rsa::pss::Signature::try_from(b.as_slice()), |s| signature::SignatureEncoding::to_vec(s);
    sm2::dsa::Signature, &[KeySpec::EcSm2], Algorithm::Sm2Dsa,
        |b| sm2::dsa::DerSignature::from_bytes(&b).and_then(sm2::dsa::Signature::try_from),
        |s| sm2::dsa::DerSignature::from(*s).to_vec();
}
