//! ReEncrypt and GenerateDataKeyWithoutPlaintext (SPEC sections 6 and 8).
//!
//! ReEncrypt opens a blob and seals its payload under another key, version
//! or context without the plaintext leaving the library: the payload lives
//! only in the zeroizing buffer Decrypt opened it in, and is sealed from
//! there.

use crate::crypto::context::EncryptionContext;
use crate::error::{Error, Result};
use crate::kms::Kms;
use crate::ops::symmetric::{CiphertextBlob, EncryptResponse, GenerateDataKeyRequest};

/// The response of ReEncrypt.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReEncryptResponse {
    /// The new blob (the wire sends its base64).
    pub ciphertext_blob: CiphertextBlob,
    /// The destination key (resolved from an alias or ARN).
    pub key_id: String,
    /// The destination key version that sealed the new blob (its primary).
    pub key_version_id: String,
    /// The key named by the source blob. Not part of the cloud API's
    /// ReEncrypt response; offered to Rust callers.
    pub source_key_id: String,
    /// The key version named by the source blob. Not part of the cloud API's
    /// ReEncrypt response; offered to Rust callers.
    pub source_key_version_id: String,
}

impl Kms {
    /// ReEncrypt: decrypts `ciphertext_blob` with `source_context` and seals
    /// the same payload under the primary version of `destination_key_id`
    /// (a key id, key ARN, alias or alias ARN) with `destination_context`.
    /// The source and destination may be the same key (to move a blob to
    /// the key's newest version, or to another context).
    ///
    /// The new blob keeps the kind of plaintext it holds: a re-encrypted
    /// data key still decrypts, on the wire, to the same base64 `Plaintext`.
    ///
    /// ```
    /// use localkms::{EncryptionContext, Kms};
    /// let kms = Kms::in_memory()?;
    /// let a = kms.create_key(&Default::default())?.key_id;
    /// let b = kms.create_key(&Default::default())?.key_id;
    /// let none = EncryptionContext::empty();
    /// let sealed = kms.encrypt(&a, b"hello", &none)?;
    /// let ctx = EncryptionContext::from_json(r#"{"moved":"yes"}"#)?;
    /// let moved = kms.re_encrypt(&sealed.ciphertext_blob, &b, &none, &ctx)?;
    /// assert_eq!(moved.key_id, b);
    /// let opened = kms.decrypt(&moved.ciphertext_blob, &ctx)?;
    /// assert_eq!(opened.plaintext.expose_secret(), b"hello");
    /// # Ok::<(), localkms::Error>(())
    /// ```
    ///
    /// # Errors
    /// `MissingParameter` (CiphertextBlob, DestinationKeyId); then every
    /// error of [`Kms::decrypt`] for the source; then, for the destination,
    /// `Forbidden.KeyNotFound`, `Forbidden.AliasNotFound` and the state
    /// rejections of [`Kms::encrypt`].
    pub fn re_encrypt(
        &self,
        ciphertext_blob: &[u8],
        destination_key_id: &str,
        source_context: &EncryptionContext,
        destination_context: &EncryptionContext,
    ) -> Result<ReEncryptResponse> {
        self.operation("ReEncrypt", destination_key_id, || {
            self.re_encrypt_op(
                ciphertext_blob,
                destination_key_id,
                source_context,
                destination_context,
            )
        })
    }

    fn re_encrypt_op(
        &self,
        ciphertext_blob: &[u8],
        destination_key_id: &str,
        source_context: &EncryptionContext,
        destination_context: &EncryptionContext,
    ) -> Result<ReEncryptResponse> {
        if ciphertext_blob.is_empty() {
            return Err(Error::MissingParameter("CiphertextBlob"));
        }
        if destination_key_id.is_empty() {
            return Err(Error::MissingParameter("DestinationKeyId"));
        }
        // The source first (SPEC section 8), then the destination.
        let payload = self.decrypt(ciphertext_blob, source_context)?;
        let sealed = self.reseal(&payload, destination_key_id, destination_context)?;
        Ok(ReEncryptResponse {
            ciphertext_blob: sealed.ciphertext_blob,
            key_id: sealed.key_id,
            key_version_id: sealed.key_version_id,
            source_key_id: payload.key_id,
            source_key_version_id: payload.key_version_id,
        })
        // The rest of `payload`, the plaintext, is zeroized as it drops.
    }

    /// GenerateDataKeyWithoutPlaintext: GenerateDataKey without the data key
    /// in the response. The data key is made, sealed and zeroized; decrypt
    /// the blob when the key is needed.
    ///
    /// ```
    /// use localkms::{EncryptionContext, Kms};
    /// let kms = Kms::in_memory()?;
    /// let key = kms.create_key(&Default::default())?.key_id;
    /// let sealed = kms.generate_data_key_without_plaintext(&key, &Default::default())?;
    /// let data_key = kms.decrypt(&sealed.ciphertext_blob, &EncryptionContext::empty())?;
    /// assert_eq!(data_key.plaintext.len(), 32);
    /// # Ok::<(), localkms::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Kms::generate_data_key`].
    pub fn generate_data_key_without_plaintext(
        &self,
        key_id: &str,
        req: &GenerateDataKeyRequest,
    ) -> Result<EncryptResponse> {
        self.operation("GenerateDataKeyWithoutPlaintext", key_id, || {
            self.generate_data_key_without_plaintext_op(key_id, req)
        })
    }

    fn generate_data_key_without_plaintext_op(
        &self,
        key_id: &str,
        req: &GenerateDataKeyRequest,
    ) -> Result<EncryptResponse> {
        let data_key = self.generate_data_key(key_id, req)?;
        // The data key (a zeroizing buffer) is dropped here, unseen.
        Ok(EncryptResponse {
            key_id: data_key.key_id,
            key_version_id: data_key.key_version_id,
            ciphertext_blob: data_key.ciphertext_blob,
        })
    }
}
