//! Exporting data keys: ExportDataKey re-wraps a data key blob (from
//! GenerateDataKey, GenerateDataKeyWithoutPlaintext or
//! GenerateAndExportDataKey) under a caller's public key;
//! GenerateAndExportDataKey makes a new data key and returns it sealed under
//! a CMK and wrapped under the public key, never in clear.
//!
//! Wrappings: `RSAES_OAEP_SHA_256` or `RSAES_OAEP_SHA_1` (empty label) with
//! an `RSA_2048` key, and `SM2PKE` (GM/T 0009 ASN.1 ciphertext) with an
//! `EC_SM2` key. The public key is a DER SubjectPublicKeyInfo (the wire's
//! `PublicKeyBlob` is its base64). What is wrapped is the raw data key, the
//! bytes whose base64 GenerateDataKey returns as `Plaintext`.
//!
//! The data key is opened through one seam, [`Kms::open_data_key`], into a
//! zeroizing buffer that is dropped as soon as it is wrapped.

use std::fmt;
use std::str::FromStr;

use crate::crypto::asym::{self, AsymError, PublicKey};
use crate::crypto::blob::PlaintextKind;
use crate::crypto::context::EncryptionContext;
use crate::error::{Error, Result};
use crate::kms::Kms;
use crate::ops::symmetric::{Decrypted, GenerateDataKeyRequest, MAX_DATA_KEY_BYTES};

/// The `WrappingAlgorithm` of ExportDataKey and GenerateAndExportDataKey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExportAlgorithm {
    /// RSAES-OAEP with SHA-256 and MGF1-SHA-256: `RSAES_OAEP_SHA_256`.
    RsaesOaepSha256,
    /// RSAES-OAEP with SHA-1 and MGF1-SHA-1: `RSAES_OAEP_SHA_1`.
    RsaesOaepSha1,
    /// SM2 public-key encryption: `SM2PKE`.
    Sm2Pke,
}

impl ExportAlgorithm {
    /// The exact wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RsaesOaepSha256 => "RSAES_OAEP_SHA_256",
            Self::RsaesOaepSha1 => "RSAES_OAEP_SHA_1",
            Self::Sm2Pke => "SM2PKE",
        }
    }

    fn primitive(self) -> asym::Algorithm {
        match self {
            Self::RsaesOaepSha256 => asym::Algorithm::RsaesOaepSha256,
            Self::RsaesOaepSha1 => asym::Algorithm::RsaesOaepSha1,
            Self::Sm2Pke => asym::Algorithm::Sm2Pke,
        }
    }

    /// The longest plaintext this wrapping takes with its key spec's key.
    fn max_plaintext(self) -> usize {
        // RFC 8017 section 7.1.1: k - 2 hLen - 2, k = 256 for RSA_2048.
        match self {
            Self::RsaesOaepSha256 => 256 - 2 * 32 - 2,
            Self::RsaesOaepSha1 => 256 - 2 * 20 - 2,
            Self::Sm2Pke => usize::MAX,
        }
    }
}

impl fmt::Display for ExportAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExportAlgorithm {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "RSAES_OAEP_SHA_256" => Ok(Self::RsaesOaepSha256),
            "RSAES_OAEP_SHA_1" => Ok(Self::RsaesOaepSha1),
            "SM2PKE" => Ok(Self::Sm2Pke),
            _ => Err(Error::invalid(
                "WrappingAlgorithm",
                "must be one of RSAES_OAEP_SHA_256 RSAES_OAEP_SHA_1 SM2PKE",
            )),
        }
    }
}

/// The `WrappingKeySpec` of ExportDataKey and GenerateAndExportDataKey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExportKeySpec {
    /// A 2048-bit RSA public key: `RSA_2048`.
    Rsa2048,
    /// An SM2 public key: `EC_SM2`.
    EcSm2,
}

impl ExportKeySpec {
    /// The exact wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rsa2048 => "RSA_2048",
            Self::EcSm2 => "EC_SM2",
        }
    }

    fn primitive(self) -> asym::KeySpec {
        match self {
            Self::Rsa2048 => asym::KeySpec::Rsa2048,
            Self::EcSm2 => asym::KeySpec::EcSm2,
        }
    }
}

impl fmt::Display for ExportKeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExportKeySpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "RSA_2048" => Ok(Self::Rsa2048),
            "EC_SM2" => Ok(Self::EcSm2),
            _ => Err(Error::invalid(
                "WrappingKeySpec",
                "must be one of RSA_2048 EC_SM2",
            )),
        }
    }
}

/// The caller's public key and how to wrap under it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WrappingPublicKey {
    /// The wrapping algorithm.
    pub algorithm: ExportAlgorithm,
    /// The kind of `public_key_der`.
    pub key_spec: ExportKeySpec,
    /// A DER SubjectPublicKeyInfo (the wire's `PublicKeyBlob`, decoded).
    pub public_key_der: Vec<u8>,
}

impl WrappingPublicKey {
    /// A wrapping under `public_key_der` (checked when used).
    pub fn new(
        algorithm: ExportAlgorithm,
        key_spec: ExportKeySpec,
        public_key_der: impl Into<Vec<u8>>,
    ) -> Self {
        Self {
            algorithm,
            key_spec,
            public_key_der: public_key_der.into(),
        }
    }

    /// Parses the public key and checks that it and the algorithm fit the
    /// key spec.
    fn parse(&self) -> Result<PublicKey> {
        let fits = matches!(
            (self.algorithm, self.key_spec),
            (
                ExportAlgorithm::RsaesOaepSha256 | ExportAlgorithm::RsaesOaepSha1,
                ExportKeySpec::Rsa2048
            ) | (ExportAlgorithm::Sm2Pke, ExportKeySpec::EcSm2)
        );
        if !fits {
            return Err(Error::invalid(
                "WrappingAlgorithm",
                format!(
                    "{} does not apply to WrappingKeySpec {}",
                    self.algorithm, self.key_spec
                ),
            ));
        }
        if self.public_key_der.is_empty() {
            return Err(Error::MissingParameter("PublicKeyBlob"));
        }
        PublicKey::from_public_key_der(self.key_spec.primitive(), &self.public_key_der).map_err(
            |_| {
                Error::invalid(
                    "PublicKeyBlob",
                    format!(
                        "must be a base64 DER SubjectPublicKeyInfo of a {} key",
                        self.key_spec
                    ),
                )
            },
        )
    }
}

/// The response of ExportDataKey.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportedDataKey {
    /// The CMK the data key blob was sealed under.
    pub key_id: String,
    /// The version of that CMK.
    pub key_version_id: String,
    /// The data key wrapped under the public key (the wire's
    /// `ExportedDataKey` is its base64).
    pub exported_data_key: Vec<u8>,
}

/// The response of GenerateAndExportDataKey: no plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GeneratedExportedDataKey {
    /// The CMK that sealed the data key.
    pub key_id: String,
    /// Its primary version.
    pub key_version_id: String,
    /// The data key sealed under the CMK: a blob Decrypt and ExportDataKey
    /// accept (the wire's `CiphertextBlob` is its base64).
    pub ciphertext_blob: Vec<u8>,
    /// The data key wrapped under the public key.
    pub exported_data_key: Vec<u8>,
}

crate::kms::instrument::audited_ids! {
    ExportedDataKey => |r| (Some(&r.key_id), Some(&r.key_version_id));
    GeneratedExportedDataKey => |r| (Some(&r.key_id), Some(&r.key_version_id));
}

/// The data key length of `req`: `NumberOfBytes` (1..=1024) if given, else
/// the `KeySpec`'s (as GenerateDataKey).
fn data_key_length(req: &GenerateDataKeyRequest) -> Result<usize> {
    match req.number_of_bytes {
        Some(n) if (1..=MAX_DATA_KEY_BYTES).contains(&n) => {
            usize::try_from(n).map_err(|_| Error::InternalFailure)
        }
        Some(_) => Err(Error::invalid(
            "NumberOfBytes",
            "must be an integer from 1 to 1024",
        )),
        None => Ok(req.key_spec.unwrap_or_default().byte_len()),
    }
}

/// Wraps `data_key` under `public` with `wrapping`'s algorithm.
fn wrap(wrapping: &WrappingPublicKey, public: &PublicKey, data_key: &[u8]) -> Result<Vec<u8>> {
    public
        .encrypt(
            wrapping.algorithm.primitive(),
            data_key,
            &mut getrandom::SysRng,
        )
        .map_err(|e| match e {
            AsymError::InvalidParameter { .. } => {
                Error::invalid("WrappingAlgorithm", "the data key is too long for it")
            }
            _ => Error::InternalFailure,
        })
}

impl Kms {
    /// The seam into the symmetric operations: opens a data key blob (the
    /// key state table applies as for Decrypt).
    fn open_data_key(&self, blob: &[u8], context: &EncryptionContext) -> Result<Decrypted> {
        if blob.is_empty() {
            return Err(Error::MissingParameter("CiphertextBlob"));
        }
        let opened = self.decrypt_raw(zeroize::Zeroizing::new(blob.to_vec()), context, None)?;
        if opened.kind != PlaintextKind::DataKey {
            return Err(Error::invalid(
                "CiphertextBlob",
                "is not a data key (it comes from Encrypt, not GenerateDataKey)",
            ));
        }
        Ok(opened)
    }

    /// ExportDataKey: the data key in `ciphertext_blob` (the blob's bytes),
    /// wrapped under the caller's public key. The data key never leaves in
    /// clear.
    ///
    /// # Errors
    /// `MissingParameter` (CiphertextBlob, PublicKeyBlob); `InvalidParameter`
    /// naming `PublicKeyBlob` (does not parse, or is not of the key spec),
    /// `WrappingAlgorithm` (does not fit the key spec, or the data key is too
    /// long for RSA-OAEP), `CiphertextBlob` (an Encrypt blob); and every
    /// error of [`Kms::decrypt`].
    pub fn export_data_key(
        &self,
        ciphertext_blob: &[u8],
        context: &EncryptionContext,
        wrapping: &WrappingPublicKey,
    ) -> Result<ExportedDataKey> {
        self.operation("ExportDataKey", "", || {
            if ciphertext_blob.is_empty() {
                return Err(Error::MissingParameter("CiphertextBlob"));
            }
            let public = wrapping.parse()?;
            let opened = self.open_data_key(ciphertext_blob, context)?;
            let exported = wrap(wrapping, &public, opened.plaintext.expose_secret())?;
            Ok(ExportedDataKey {
                key_id: opened.key_id.clone(),
                key_version_id: opened.key_version_id.clone(),
                exported_data_key: exported,
            })
        })
    }

    /// GenerateAndExportDataKey: a new data key (as GenerateDataKey makes),
    /// returned sealed under `key_id` (alias ok) and wrapped under the
    /// caller's public key; never in clear.
    ///
    /// # Errors
    /// As [`Kms::generate_data_key`], and `InvalidParameter` naming
    /// `PublicKeyBlob`, `WrappingAlgorithm`, or `NumberOfBytes` when the
    /// data key is too long for RSA-OAEP (at most 190 bytes with SHA-256,
    /// 214 with SHA-1).
    pub fn generate_and_export_data_key(
        &self,
        key_id: &str,
        req: &GenerateDataKeyRequest,
        wrapping: &WrappingPublicKey,
    ) -> Result<GeneratedExportedDataKey> {
        self.operation("GenerateAndExportDataKey", key_id, || {
            if key_id.is_empty() {
                return Err(Error::MissingParameter("KeyId"));
            }
            let len = data_key_length(req)?;
            let public = wrapping.parse()?;
            if len > wrapping.algorithm.max_plaintext() {
                return Err(Error::invalid(
                    "NumberOfBytes",
                    format!(
                        "must be at most {} for {}",
                        wrapping.algorithm.max_plaintext(),
                        wrapping.algorithm
                    ),
                ));
            }
            let (sealed, data_key) =
                self.generate_data_key_raw(key_id, len, &req.encryption_context)?;
            let exported = wrap(wrapping, &public, data_key.expose_secret())?;
            Ok(GeneratedExportedDataKey {
                key_id: sealed.key_id,
                key_version_id: sealed.key_version_id,
                ciphertext_blob: sealed.blob,
                exported_data_key: exported,
            })
        })
    }
}
