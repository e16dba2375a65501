//! Envelope encryption of data of any size under a CMK: the operations. The
//! format and the stream adapters are in `crate::crypto::envelope` and
//! `docs/FORMAT.md`.

use std::io::{Read, Write};

use zeroize::Zeroizing;

use crate::crypto::blob::{BLOB_V1, PlaintextKind};
use crate::crypto::context::EncryptionContext;
use crate::crypto::envelope::{
    BLOB_LEN, DATA_KEY_LEN, ENVELOPE_V1, EnvelopeReader, EnvelopeWriter, sealed_len,
};
use crate::error::{Error, Result};
use crate::kms::Kms;
use crate::secret::SecretBytes;

/// What an envelope operation did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
            let mut out = Vec::with_capacity(sealed_len(plaintext.len(), BLOB_LEN));
            let mut w = self.envelope_writer_op(key_id, context, &mut out)?;
            w.0.write_all(plaintext)?;
            w.0.finish()?;
            Ok(out)
        })
    }

    /// Decrypts an envelope made by [`Kms::envelope_encrypt`],
    /// [`Kms::envelope_encrypt_stream`] or an [`EnvelopeWriter`].
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
            // The plaintext is shorter than the envelope: this capacity never
            // grows, so no copy of the plaintext is left behind by a
            // reallocation.
            let mut out = Zeroizing::new(Vec::with_capacity(envelope.len()));
            self.envelope_reader_op(context, envelope, None)?
                .0
                .copy_to(&mut *out)?;
            Ok(out)
        })
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
        self.envelope_encrypt_dyn(key_id, context, &mut reader, &mut writer)
    }

    fn envelope_encrypt_dyn(
        &self,
        key_id: &str,
        context: &EncryptionContext,
        reader: &mut dyn Read,
        writer: &mut dyn Write,
    ) -> Result<EnvelopeInfo> {
        self.operation_once("EnvelopeEncryptStream", key_id, || {
            let (mut w, mut info) = self.envelope_writer_op(key_id, context, writer)?;
            info.plaintext_bytes = w.copy_from(reader)?;
            w.finish()?;
            Ok(info)
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
        self.envelope_decrypt_dyn(context, &mut reader, &mut writer)
    }

    fn envelope_decrypt_dyn(
        &self,
        context: &EncryptionContext,
        reader: &mut dyn Read,
        writer: &mut dyn Write,
    ) -> Result<EnvelopeInfo> {
        self.operation_once("EnvelopeDecryptStream", "", || {
            let (mut r, mut info) = self.envelope_reader_op(context, reader, None)?;
            info.plaintext_bytes = r.copy_to(writer)?;
            Ok(info)
        })
    }

    /// An encrypting [`Write`] adapter: what is written to it is sealed into
    /// an envelope under `key_id` (alias ok) and written to `writer`. Call
    /// [`EnvelopeWriter::finish`] at the end.
    ///
    /// ```
    /// use std::io::Write;
    /// use localkms::{EncryptionContext, Kms};
    /// let kms = Kms::in_memory()?;
    /// let key = kms.create_key(&Default::default())?.key_id;
    /// let ctx = EncryptionContext::empty();
    /// let mut w = kms.envelope_writer(&key, &ctx, Vec::new())?;
    /// w.write_all(b"part one, ")?;
    /// w.write_all(b"part two")?;
    /// let envelope = w.finish()?;
    /// let mut r = kms.envelope_reader(&ctx, &envelope[..])?;
    /// let mut text = String::new();
    /// std::io::Read::read_to_string(&mut r, &mut text)?;
    /// assert_eq!(text, "part one, part two");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// The errors of [`Kms::generate_data_key`]; [`Error::Io`] when writing
    /// the header fails.
    pub fn envelope_writer<W: Write>(
        &self,
        key_id: &str,
        context: &EncryptionContext,
        writer: W,
    ) -> Result<EnvelopeWriter<W>> {
        self.operation_once("EnvelopeEncryptStream", key_id, || {
            Ok(Opaque(self.envelope_writer_op(key_id, context, writer)?.0))
        })
        .map(|o| o.0)
    }

    /// A decrypting [`Read`] adapter over the envelope in `reader`; it reads
    /// and opens the header now. See [`EnvelopeReader`] for what it returns
    /// when.
    ///
    /// # Errors
    /// As [`Kms::envelope_decrypt`] for the header and its data key.
    pub fn envelope_reader<R: Read>(
        &self,
        context: &EncryptionContext,
        reader: R,
    ) -> Result<EnvelopeReader<R>> {
        self.operation_once("EnvelopeDecryptStream", "", || {
            Ok(Opaque(self.envelope_reader_op(context, reader, None)?.0))
        })
        .map(|o| o.0)
    }

    /// Starts an envelope under `key_id`.
    pub(crate) fn envelope_writer_op<W: Write>(
        &self,
        key_id: &str,
        context: &EncryptionContext,
        writer: W,
    ) -> Result<(EnvelopeWriter<W>, EnvelopeInfo)> {
        let (sealed, data_key) = self.generate_envelope_key(key_id, context)?;
        let w = EnvelopeWriter::start(&data_key, &sealed.blob, writer)?;
        Ok((
            w,
            EnvelopeInfo {
                key_id: sealed.key_id,
                key_version_id: sealed.key_version_id,
                plaintext_bytes: 0,
            },
        ))
    }

    /// Reads an envelope header and opens its data key; with `only` set, a
    /// data key sealed under another key is refused.
    pub(crate) fn envelope_reader_op<R: Read>(
        &self,
        context: &EncryptionContext,
        reader: R,
        only: Option<&str>,
    ) -> Result<(EnvelopeReader<R>, EnvelopeInfo)> {
        let mut info = None;
        let mut unwrap = |version: u8, blob: &[u8]| -> Result<SecretBytes> {
            let (key, ids) = self.open_envelope_key(version, blob, context, only)?;
            info = Some(ids);
            Ok(key)
        };
        let r = EnvelopeReader::start(reader, &mut unwrap)?;
        let (key_id, key_version_id) = info.ok_or(Error::InternalFailure)?;
        Ok((
            r,
            EnvelopeInfo {
                key_id,
                key_version_id,
                plaintext_bytes: 0,
            },
        ))
    }

    /// The data key of an envelope header: a v2 header holds an
    /// `EnvelopeKey` blob, a v1 header a 32-byte `DataKey` blob.
    pub(crate) fn open_envelope_key(
        &self,
        version: u8,
        blob: &[u8],
        context: &EncryptionContext,
        only: Option<&str>,
    ) -> Result<(SecretBytes, (String, String))> {
        // v1 envelopes hold Aliyun_AES_256 blobs only; v2 also SM4 blobs.
        let known = match blob.first() {
            Some(&BLOB_V1) => true,
            Some(&crate::crypto::sm4_blob::BLOB_SM4) => version != ENVELOPE_V1,
            _ => false,
        };
        if !known {
            return Err(Error::DecryptionFailed);
        }
        let opened = self.decrypt_raw(Zeroizing::new(blob.to_vec()), context, only)?;
        let want = if version == ENVELOPE_V1 {
            PlaintextKind::DataKey
        } else {
            PlaintextKind::EnvelopeKey
        };
        if opened.kind != want || opened.plaintext.len() != DATA_KEY_LEN {
            return Err(Error::DecryptionFailed);
        }
        Ok((opened.plaintext, (opened.key_id, opened.key_version_id)))
    }

    /// A fresh 256-bit envelope data key sealed as kind `EnvelopeKey`.
    pub(crate) fn generate_envelope_key(
        &self,
        key_id: &str,
        context: &EncryptionContext,
    ) -> Result<(crate::ops::symmetric::Sealed, SecretBytes)> {
        self.generate_data_key_kind(key_id, DATA_KEY_LEN, context, PlaintextKind::EnvelopeKey)
    }
}

/// Lets a stream adapter pass through [`Kms::operation`], which audits the
/// ids of its response: the adapter names none.
pub(crate) struct Opaque<T>(pub(crate) T);

impl<T> crate::kms::instrument::Audited for Opaque<T> {}
