//! Envelope encryption of data of any size under a CMK: the operations. The
//! format is in `crate::crypto::envelope` and `docs/FORMAT.md`.

use std::io::{Read, Write};

use aead_stream::{DecryptorBE32, EncryptorBE32};
use zeroize::Zeroizing;

use crate::crypto::blob::{PlaintextKind, TAG_LEN};
use crate::crypto::context::EncryptionContext;
use crate::crypto::envelope::{
    DATA_KEY_LEN, ENVELOPE_CHUNK_BYTES, ENVELOPE_HEADER_LEN, SEALED_CHUNK_BYTES, SliceBuf,
    chunk_cipher, read, read_full, sealed_len, write,
};
use crate::error::{Error, Result};
use crate::kms::Kms;

/// What an envelope operation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeInfo {
    /// The CMK that holds the data key.
    pub key_id: String,
    /// The CMK version that sealed the data key.
    pub key_version_id: String,
    /// How many plaintext bytes went in or came out.
    pub plaintext_bytes: u64,
}

impl Kms {
    /// Encrypts `plaintext` of any size into an envelope under `key_id`
    /// (alias ok), with a fresh data key.
    ///
    /// ```
    /// use localkms::{EncryptionContext, Kms};
    /// let kms = Kms::in_memory()?;
    /// let key = kms.create_key(&Default::default())?.key_id;
    /// let ctx = EncryptionContext::from_pairs([("file", "report.pdf")])?;
    /// let sealed = kms.envelope_encrypt(&key, b"large data", &ctx)?;
    /// assert_eq!(kms.envelope_decrypt(&sealed, &ctx)?.as_slice(), b"large data");
    /// # Ok::<(), localkms::Error>(())
    /// ```
    ///
    /// # Errors
    /// The errors of [`Kms::generate_data_key`].
    pub fn envelope_encrypt(
        &self,
        key_id: &str,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<Vec<u8>> {
        self.operation("EnvelopeEncrypt", key_id, || {
            self.envelope_encrypt_op(key_id, plaintext, context)
        })
    }

    fn envelope_encrypt_op(
        &self,
        key_id: &str,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(sealed_len(plaintext.len()));
        self.envelope_encrypt_stream(key_id, context, plaintext, &mut out)?;
        Ok(out)
    }

    /// Decrypts an envelope made by [`Kms::envelope_encrypt`] or
    /// [`Kms::envelope_encrypt_stream`].
    ///
    /// # Errors
    /// The uniform `InvalidParameter` ([`Error::DecryptionFailed`]) for a
    /// malformed, truncated, reordered, extended or tampered envelope or a
    /// wrong context; otherwise the errors of [`Kms::decrypt`] for its data
    /// key.
    pub fn envelope_decrypt(
        &self,
        envelope: &[u8],
        context: &EncryptionContext,
    ) -> Result<Zeroizing<Vec<u8>>> {
        self.operation("EnvelopeDecrypt", "", || {
            self.envelope_decrypt_op(envelope, context)
        })
    }

    fn envelope_decrypt_op(
        &self,
        envelope: &[u8],
        context: &EncryptionContext,
    ) -> Result<Zeroizing<Vec<u8>>> {
        // The plaintext is shorter than the envelope: this capacity never
        // grows, so no copy of the plaintext is left behind by a reallocation.
        let mut out = Zeroizing::new(Vec::with_capacity(envelope.len()));
        self.envelope_decrypt_stream(context, envelope, &mut *out)?;
        Ok(out)
    }

    /// Encrypts everything `reader` yields into an envelope written to
    /// `writer`, in constant memory (one 64 KiB chunk at a time).
    ///
    /// # Errors
    /// The errors of [`Kms::generate_data_key`]; [`Error::Io`] when the
    /// reader or writer fails.
    pub fn envelope_encrypt_stream(
        &self,
        key_id: &str,
        context: &EncryptionContext,
        reader: impl Read,
        writer: impl Write,
    ) -> Result<EnvelopeInfo> {
        self.operation_once("EnvelopeEncryptStream", key_id, || {
            self.envelope_encrypt_stream_op(key_id, context, reader, writer)
        })
    }

    fn envelope_encrypt_stream_op(
        &self,
        key_id: &str,
        context: &EncryptionContext,
        mut reader: impl Read,
        mut writer: impl Write,
    ) -> Result<EnvelopeInfo> {
        let (sealed, data_key) = self.generate_data_key_raw(key_id, DATA_KEY_LEN, context)?;
        // Envelope v1 holds a v1 (Aliyun_AES_256) blob of fixed length.
        let header = write::header(&sealed.blob).map_err(|_| {
            Error::UnsupportedOperation("envelope encryption needs an Aliyun_AES_256 key".into())
        })?;
        writer.write_all(&header)?;
        let mut stream =
            EncryptorBE32::from_aead(chunk_cipher(data_key.expose_secret())?, &Default::default());
        let mut buf = Zeroizing::new(vec![0u8; SEALED_CHUNK_BYTES]);
        let mut total = 0u64;
        loop {
            let n = read_full(&mut reader, &mut buf[..ENVELOPE_CHUNK_BYTES])?;
            total = total.saturating_add(n as u64);
            let mut chunk = SliceBuf::new(&mut buf, n);
            if n == ENVELOPE_CHUNK_BYTES {
                stream
                    .encrypt_next_in_place(&header, &mut chunk)
                    .map_err(|_| Error::UnsupportedOperation("envelopes over 256 TiB".into()))?;
                writer.write_all(chunk.as_ref())?;
            } else {
                stream
                    .encrypt_last_in_place(&header, &mut chunk)
                    .map_err(|_| Error::InternalFailure)?;
                writer.write_all(chunk.as_ref())?;
                break;
            }
        }
        writer.flush()?;
        Ok(EnvelopeInfo {
            key_id: sealed.key_id,
            key_version_id: sealed.key_version_id,
            plaintext_bytes: total,
        })
    }

    /// Decrypts an envelope from `reader` to `writer`, in constant memory.
    ///
    /// Each chunk is written only after it authenticates, but a truncated or
    /// tampered envelope is noticed only when the reader reaches the damage:
    /// on any error, discard everything written so far.
    ///
    /// # Errors
    /// As [`Kms::envelope_decrypt`]; [`Error::Io`] when the reader or writer
    /// fails.
    pub fn envelope_decrypt_stream(
        &self,
        context: &EncryptionContext,
        reader: impl Read,
        writer: impl Write,
    ) -> Result<EnvelopeInfo> {
        self.operation_once("EnvelopeDecryptStream", "", || {
            self.envelope_decrypt_stream_op(context, reader, writer)
        })
    }

    fn envelope_decrypt_stream_op(
        &self,
        context: &EncryptionContext,
        mut reader: impl Read,
        mut writer: impl Write,
    ) -> Result<EnvelopeInfo> {
        let mut header = [0u8; ENVELOPE_HEADER_LEN];
        if read_full(&mut reader, &mut header)? != ENVELOPE_HEADER_LEN {
            return Err(Error::DecryptionFailed);
        }
        let blob = read::blob(&header)?;
        let opened = self.decrypt_raw(Zeroizing::new(blob.to_vec()), context)?;
        if opened.kind != PlaintextKind::DataKey || opened.plaintext.len() != DATA_KEY_LEN {
            return Err(Error::DecryptionFailed);
        }
        let mut stream = DecryptorBE32::from_aead(
            chunk_cipher(opened.plaintext.expose_secret())?,
            &Default::default(),
        );
        let mut buf = Zeroizing::new(vec![0u8; SEALED_CHUNK_BYTES]);
        let mut total = 0u64;
        loop {
            let n = read_full(&mut reader, &mut buf)?;
            let mut chunk = SliceBuf::new(&mut buf, n);
            if n == SEALED_CHUNK_BYTES {
                stream
                    .decrypt_next_in_place(&header, &mut chunk)
                    .map_err(|_| Error::DecryptionFailed)?;
            } else if n < TAG_LEN {
                // The last chunk is missing: the envelope was truncated.
                return Err(Error::DecryptionFailed);
            } else {
                stream
                    .decrypt_last_in_place(&header, &mut chunk)
                    .map_err(|_| Error::DecryptionFailed)?;
                writer.write_all(chunk.as_ref())?;
                total = total.saturating_add(chunk.as_ref().len() as u64);
                break;
            }
            writer.write_all(chunk.as_ref())?;
            total = total.saturating_add(chunk.as_ref().len() as u64);
        }
        writer.flush()?;
        Ok(EnvelopeInfo {
            key_id: opened.key_id,
            key_version_id: opened.key_version_id,
            plaintext_bytes: total,
        })
    }
}
