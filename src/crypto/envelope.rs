//! The envelope format: data of any size sealed under a fresh data key, and
//! the streaming adapters that write and read it.
//!
//! Each envelope gets a fresh 256-bit data key; the data is split into 64 KiB
//! chunks sealed with AES-256-GCM in the STREAM construction (big-endian
//! 32-bit counter and a last-chunk flag in the nonce), so data of any size
//! streams through constant memory and truncation, reordering, chunk swapping
//! and appended data are all detected. The format is in `docs/FORMAT.md`:
//!
//! ```text
//! header = "LKEV" || version || len(blob) u16 BE || blob (the CMK blob of the data key)
//! v1: chunk key = the data key (blob kind DataKey, 146 bytes)
//! v2: chunk key = HKDF-SHA256(salt = "localkms envelope v2", ikm = data key, info = header)
//!     (blob kind EnvelopeKey in the library's blobs)
//! chunk i (not last) = AES-256-GCM(chunk key, nonce = 0^7 || i u32 BE || 0x00, aad = header, 65536 bytes)
//! last chunk         = AES-256-GCM(chunk key, nonce = 0^7 || i u32 BE || 0x01, aad = header, 0..=65535 bytes)
//! ```
//!
//! The nonce prefix is zero: every data key is fresh from the CSPRNG and
//! seals exactly one envelope, so nonces never repeat under a key.
//!
//! The chunk loops are written once, over `&mut dyn Read` / `&mut dyn Write`:
//! the generic adapters are thin shells, so a user's unoptimised build runs
//! this crate's optimised code (see the README's `[profile.dev.package]`).

use std::io::{self, Read, Write};

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut, KeyInit};
use zeroize::Zeroizing;

use crate::crypto::blob::{HEADER_LEN, TAG_LEN};
use crate::error::{Error, Result};
use crate::secret::{SecretBytes, hmac_sha256};

/// The plaintext bytes in every chunk but the last (which holds fewer).
pub const ENVELOPE_CHUNK_BYTES: usize = 64 * 1024;
pub(crate) const MAGIC: &[u8; 4] = b"LKEV";
pub(crate) const ENVELOPE_V1: u8 = 1;
pub(crate) const ENVELOPE_V2: u8 = 2;
pub(crate) const DATA_KEY_LEN: usize = 32;
/// The CMK blob of a 32-byte data key: the only blob length v1 holds.
pub(crate) const BLOB_LEN: usize = HEADER_LEN + DATA_KEY_LEN + TAG_LEN;
/// The longest key blob a v2 header holds (another [`KeyEncrypter`]'s blob
/// may differ from the library's 146 bytes).
///
/// [`KeyEncrypter`]: crate::KeyEncrypter
pub(crate) const MAX_KEY_BLOB_LEN: usize = 4096;
/// Magic, version and blob length.
pub(crate) const PREFIX_LEN: usize = 4 + 1 + 2;
/// The header of an envelope made by the library's own keys.
#[cfg(test)]
pub(crate) const ENVELOPE_HEADER_LEN: usize = PREFIX_LEN + BLOB_LEN;
const HKDF_SALT: &[u8] = b"localkms envelope v2";

#[cfg(feature = "fuzzing")]
thread_local! {
    static CHUNK_OVERRIDE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Makes this thread's envelopes use `bytes`-byte chunks (0 restores 64 KiB),
/// so fuzz inputs, which are a few KiB, span several chunks. Envelopes made
/// so are not readable by a normal build.
#[cfg(feature = "fuzzing")]
pub fn set_fuzzing_chunk_bytes(bytes: usize) {
    CHUNK_OVERRIDE.with(|c| c.set(bytes));
}

/// The plaintext bytes of a full chunk.
pub(crate) fn chunk_bytes() -> usize {
    #[cfg(feature = "fuzzing")]
    {
        let n = CHUNK_OVERRIDE.with(std::cell::Cell::get);
        if n > 0 {
            return n;
        }
    }
    ENVELOPE_CHUNK_BYTES
}

/// The length of the envelope of `n` plaintext bytes with a `blob_len` key
/// blob.
pub(crate) fn sealed_len(n: usize, blob_len: usize) -> usize {
    let chunk = chunk_bytes();
    let full = n / chunk;
    let rest = n % chunk;
    (PREFIX_LEN + blob_len)
        .saturating_add(full.saturating_mul(chunk + TAG_LEN))
        .saturating_add(rest + TAG_LEN)
}

/// RFC 5869 HKDF-SHA256 with a 32-byte output: T(1) = HMAC(PRK, info || 1),
/// PRK = HMAC(salt, IKM).
pub(crate) fn hkdf_sha256_32(salt: &[u8], ikm: &[u8], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let prk = hmac_sha256(salt, &[ikm]);
    hmac_sha256(prk.as_ref(), &[info, &[1]])
}

/// The chunk cipher of an envelope of `version` with `header`.
pub(crate) fn chunk_cipher(version: u8, data_key: &[u8], header: &[u8]) -> Result<Aes256Gcm> {
    if data_key.len() != DATA_KEY_LEN {
        return Err(Error::DecryptionFailed);
    }
    match version {
        ENVELOPE_V1 => Aes256Gcm::new_from_slice(data_key).map_err(|_| Error::InternalFailure),
        _ => {
            let key = hkdf_sha256_32(HKDF_SALT, data_key, header);
            Ok(Aes256Gcm::new(&(*key).into()))
        }
    }
}

/// The STREAM nonce (`aead-stream`'s `StreamBE32` with a zero prefix).
fn nonce(counter: u32, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[7..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    n
}

pub(crate) mod read {
    use super::*;

    /// Checks a v1 envelope header and returns the CMK blob in it.
    #[cfg(test)]
    pub(crate) fn blob(header: &[u8; ENVELOPE_HEADER_LEN]) -> Result<&[u8]> {
        let (version, len) = prefix(
            header[..PREFIX_LEN]
                .try_into()
                .map_err(|_| Error::DecryptionFailed)?,
        )?;
        if version != ENVELOPE_V1 || len != BLOB_LEN {
            return Err(Error::DecryptionFailed);
        }
        Ok(&header[PREFIX_LEN..])
    }

    /// Checks the fixed prefix; returns the version and the blob length.
    pub(crate) fn prefix(p: &[u8; PREFIX_LEN]) -> Result<(u8, usize)> {
        let len = usize::from(u16::from_be_bytes([p[5], p[6]]));
        let ok = &p[..4] == MAGIC
            && match p[4] {
                ENVELOPE_V1 => len == BLOB_LEN,
                ENVELOPE_V2 => (1..=MAX_KEY_BLOB_LEN).contains(&len),
                _ => false,
            };
        if !ok {
            return Err(Error::DecryptionFailed);
        }
        Ok((p[4], len))
    }
}

pub(crate) mod write {
    use super::*;

    /// The v2 envelope header around the blob of the data key.
    pub(crate) fn header(blob: &[u8]) -> Result<Vec<u8>> {
        if blob.is_empty() || blob.len() > MAX_KEY_BLOB_LEN {
            return Err(Error::InternalFailure);
        }
        let len = u16::try_from(blob.len()).map_err(|_| Error::InternalFailure)?;
        let mut h = Vec::with_capacity(PREFIX_LEN + blob.len());
        h.extend_from_slice(MAGIC);
        h.push(ENVELOPE_V2);
        h.extend_from_slice(&len.to_be_bytes());
        h.extend_from_slice(blob);
        Ok(h)
    }
}

/// Reads until `buf` is full or the reader ends; returns the bytes read.
pub(crate) fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            // A reader that claims more than it was given is clamped.
            Ok(k) => n = n.saturating_add(k).min(buf.len()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// An [`Error`] carried through `std::io`, so `?` in a caller's
/// `Read`/`Write` code keeps it (get it back with [`Error::from`]).
pub(crate) fn to_io(e: Error) -> io::Error {
    match e {
        Error::Io {
            cause: None,
            kind,
            message,
        } => io::Error::new(kind, message),
        Error::DecryptionFailed => io::Error::new(io::ErrorKind::InvalidData, e),
        other => io::Error::other(other),
    }
}

// ---- sealing ----------------------------------------------------------------

/// The non-generic state of an encrypting writer.
struct Sealer {
    cipher: Aes256Gcm,
    header: Vec<u8>,
    /// One sealed chunk: plaintext fills `buf[..filled]`, then the tag.
    buf: Zeroizing<Vec<u8>>,
    filled: usize,
    chunk: usize,
    counter: u32,
    total: u64,
    /// Set when an error left the envelope unfinishable.
    failed: bool,
}

impl Sealer {
    /// Writes the header to `out` and readies the chunk cipher.
    fn start(data_key: &[u8], blob: &[u8], out: &mut dyn Write) -> Result<Self> {
        let header = write::header(blob)?;
        let cipher = chunk_cipher(ENVELOPE_V2, data_key, &header)?;
        out.write_all(&header)?;
        let chunk = chunk_bytes();
        Ok(Self {
            cipher,
            header,
            buf: Zeroizing::new(vec![0u8; chunk + TAG_LEN]),
            filled: 0,
            chunk,
            counter: 0,
            total: 0,
            failed: false,
        })
    }

    /// Seals `buf[..filled]` as chunk `counter` and writes it out.
    fn seal(&mut self, last: bool, out: &mut dyn Write) -> Result<()> {
        let n = self.filled;
        let (body, rest) = self.buf.split_at_mut(n);
        let tag = self
            .cipher
            .encrypt_inout_detached(&nonce(self.counter, last).into(), &self.header, body.into())
            .map_err(|_| Error::InternalFailure)?;
        rest[..TAG_LEN].copy_from_slice(&tag);
        self.filled = 0;
        if !last {
            self.counter = self
                .counter
                .checked_add(1)
                .ok_or_else(|| Error::UnsupportedOperation("envelopes over 256 TiB".into()))?;
        }
        out.write_all(&self.buf[..n + TAG_LEN])?;
        Ok(())
    }

    /// Takes plaintext; seals and writes every chunk it completes.
    fn write(&mut self, mut data: &[u8], out: &mut dyn Write) -> Result<usize> {
        if self.failed {
            return Err(Error::io(
                io::ErrorKind::BrokenPipe,
                "the envelope writer failed earlier",
            ));
        }
        let given = data.len();
        while !data.is_empty() {
            let take = (self.chunk - self.filled).min(data.len());
            self.buf[self.filled..self.filled + take].copy_from_slice(&data[..take]);
            self.filled += take;
            data = &data[take..];
            if self.filled == self.chunk {
                // A full chunk is never the last (the last is shorter).
                if let Err(e) = self.seal(false, out) {
                    self.failed = true;
                    return Err(e);
                }
            }
        }
        self.total = self.total.saturating_add(given as u64);
        Ok(given)
    }

    /// Encrypts everything `reader` yields, reading straight into the chunk
    /// buffer (no intermediate copy).
    fn copy_from(&mut self, reader: &mut dyn Read, out: &mut dyn Write) -> Result<()> {
        loop {
            let chunk = self.chunk;
            let n = read_full(reader, &mut self.buf[self.filled..chunk])?;
            self.filled += n;
            self.total = self.total.saturating_add(n as u64);
            if self.filled < chunk {
                return Ok(());
            }
            self.seal(false, out)?;
        }
    }

    /// Seals the last chunk and flushes.
    fn finish(&mut self, out: &mut dyn Write) -> Result<()> {
        if self.failed {
            return Err(Error::io(
                io::ErrorKind::BrokenPipe,
                "the envelope writer failed earlier",
            ));
        }
        self.failed = true;
        self.seal(true, out)?;
        out.flush()?;
        Ok(())
    }
}

/// An encrypting [`Write`] adapter: everything written is sealed into an
/// envelope (format v2, `docs/FORMAT.md`) written to the inner writer, one
/// 64 KiB chunk at a time. Made by [`KeyEncrypter::envelope_writer`] or
/// [`Kms::envelope_writer`](crate::Kms::envelope_writer).
///
/// **Call [`EnvelopeWriter::finish`].** It seals the last chunk, which marks
/// the end of the data. A writer dropped without `finish` (an early return, a
/// panic) leaves an envelope without its last chunk: it never decrypts, so a
/// cut-short envelope cannot pass for a complete one. Buffered plaintext is
/// zeroized on drop.
///
/// [`KeyEncrypter::envelope_writer`]: crate::KeyEncrypter::envelope_writer
pub struct EnvelopeWriter<W: Write> {
    sealer: Sealer,
    inner: W,
}

impl<W: Write> EnvelopeWriter<W> {
    /// Writes the header of an envelope whose data key is `data_key`, sealed
    /// as `blob`, to `inner`.
    pub(crate) fn start(data_key: &SecretBytes, blob: &[u8], mut inner: W) -> Result<Self> {
        let sealer = Sealer::start(data_key.expose_secret(), blob, &mut inner)?;
        Ok(Self { sealer, inner })
    }

    /// Seals the last chunk, flushes, and returns the inner writer.
    ///
    /// # Errors
    /// [`Error::Io`] when the inner writer fails (the envelope is then
    /// incomplete and does not decrypt), or when an earlier write failed.
    pub fn finish(mut self) -> Result<W> {
        self.sealer.finish(&mut self.inner)?;
        Ok(self.inner)
    }

    /// How many plaintext bytes have been written so far.
    pub fn plaintext_bytes(&self) -> u64 {
        self.sealer.total
    }

    /// Encrypts everything `reader` yields (until it ends), without an
    /// intermediate buffer. Call [`EnvelopeWriter::finish`] after.
    ///
    /// # Errors
    /// [`Error::Io`] when the reader or the inner writer fails.
    pub fn copy_from(&mut self, mut reader: impl Read) -> Result<u64> {
        let before = self.sealer.total;
        let r = self.sealer.copy_from(&mut reader, &mut self.inner);
        if r.is_err() {
            self.sealer.failed = true;
        }
        r?;
        Ok(self.sealer.total - before)
    }
}

impl<W: Write> Write for EnvelopeWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sealer.write(buf, &mut self.inner).map_err(to_io)
    }

    /// Flushes the inner writer. Sealed chunks are already written; the
    /// buffered part of the current chunk stays buffered until the chunk is
    /// full or [`EnvelopeWriter::finish`] is called.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> std::fmt::Debug for EnvelopeWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvelopeWriter")
            .field("plaintext_bytes", &self.sealer.total)
            .finish_non_exhaustive()
    }
}

// ---- opening ----------------------------------------------------------------

/// Opens the key blob of an envelope header: `(version, blob)` to the data key.
pub(crate) type Unwrap<'a> = &'a mut dyn FnMut(u8, &[u8]) -> Result<SecretBytes>;

/// The non-generic state of a decrypting reader.
struct Opener {
    cipher: Aes256Gcm,
    header: Vec<u8>,
    buf: Zeroizing<Vec<u8>>,
    chunk: usize,
    /// Authenticated plaintext not yet returned: `buf[pos..end]`.
    pos: usize,
    end: usize,
    counter: u32,
    done: bool,
    /// The first error, returned again by every later read.
    failed: Option<Error>,
    total: u64,
}

impl Opener {
    /// Reads and checks the header, and opens its data key with `unwrap`.
    fn start(input: &mut dyn Read, unwrap: Unwrap<'_>) -> Result<Self> {
        let mut prefix = [0u8; PREFIX_LEN];
        if read_full(input, &mut prefix)? != PREFIX_LEN {
            return Err(Error::DecryptionFailed);
        }
        let (version, len) = read::prefix(&prefix)?;
        let mut header = vec![0u8; PREFIX_LEN + len];
        header[..PREFIX_LEN].copy_from_slice(&prefix);
        if read_full(input, &mut header[PREFIX_LEN..])? != len {
            return Err(Error::DecryptionFailed);
        }
        let data_key = unwrap(version, &header[PREFIX_LEN..])?;
        let cipher = chunk_cipher(version, data_key.expose_secret(), &header)?;
        let chunk = chunk_bytes();
        Ok(Self {
            cipher,
            header,
            buf: Zeroizing::new(vec![0u8; chunk + TAG_LEN]),
            chunk,
            pos: 0,
            end: 0,
            counter: 0,
            done: false,
            failed: None,
            total: 0,
        })
    }

    /// Reads and authenticates the next chunk into `buf`.
    fn next_chunk(&mut self, input: &mut dyn Read) -> Result<()> {
        let sealed = self.chunk + TAG_LEN;
        let n = read_full(input, &mut self.buf[..sealed])?;
        if n < TAG_LEN {
            // The last chunk is missing: the envelope was cut short.
            return Err(Error::DecryptionFailed);
        }
        let last = n < sealed;
        let (body, tag) = self.buf[..n].split_at_mut(n - TAG_LEN);
        let tag = aes_gcm::Tag::try_from(&*tag).map_err(|_| Error::DecryptionFailed)?;
        if self
            .cipher
            .decrypt_inout_detached(
                &nonce(self.counter, last).into(),
                &self.header,
                body.into(),
                &tag,
            )
            .is_err()
        {
            zeroize::Zeroize::zeroize(&mut self.buf[..]);
            return Err(Error::DecryptionFailed);
        }
        self.pos = 0;
        self.end = n - TAG_LEN;
        self.total = self.total.saturating_add(self.end as u64);
        if last {
            self.done = true;
        } else {
            self.counter = self.counter.checked_add(1).ok_or(Error::DecryptionFailed)?;
        }
        Ok(())
    }

    fn read(&mut self, out: &mut [u8], input: &mut dyn Read) -> Result<usize> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        while self.pos == self.end && !self.done {
            if let Err(e) = self.next_chunk(input) {
                self.failed = Some(e.clone());
                return Err(e);
            }
        }
        let n = (self.end - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }

    /// Decrypts the rest of the envelope to `out`, chunk by chunk, writing
    /// each only after it authenticates.
    fn copy_to(&mut self, input: &mut dyn Read, out: &mut dyn Write) -> Result<u64> {
        let mut written = 0u64;
        loop {
            if let Some(e) = &self.failed {
                return Err(e.clone());
            }
            if self.pos < self.end {
                out.write_all(&self.buf[self.pos..self.end])?;
                written = written.saturating_add((self.end - self.pos) as u64);
                self.pos = self.end;
            }
            if self.done {
                out.flush()?;
                return Ok(written);
            }
            if let Err(e) = self.next_chunk(input) {
                self.failed = Some(e.clone());
                return Err(e);
            }
        }
    }
}

/// A decrypting [`Read`] adapter over an envelope. It returns a chunk's
/// bytes only after the chunk authenticates, and reports the end of the data
/// (`Ok(0)`) only after the last chunk authenticates, so a cut-short,
/// reordered or tampered envelope is an error (`InvalidData`, carrying
/// [`Error::DecryptionFailed`]), never a silent short read. On an error,
/// discard the bytes read so far: they were authentic, but the whole is not.
///
/// Made by [`KeyEncrypter::envelope_reader`] or
/// [`Kms::envelope_reader`](crate::Kms::envelope_reader).
///
/// [`KeyEncrypter::envelope_reader`]: crate::KeyEncrypter::envelope_reader
pub struct EnvelopeReader<R: Read> {
    opener: Opener,
    inner: R,
}

impl<R: Read> EnvelopeReader<R> {
    /// Reads the header from `inner` and opens its data key with `unwrap`.
    pub(crate) fn start(mut inner: R, unwrap: Unwrap<'_>) -> Result<Self> {
        let opener = Opener::start(&mut inner, unwrap)?;
        Ok(Self { opener, inner })
    }

    /// How many plaintext bytes have been authenticated so far.
    pub fn plaintext_bytes(&self) -> u64 {
        self.opener.total
    }

    /// Decrypts the rest of the envelope into `writer`, one authenticated
    /// chunk at a time; returns the bytes written.
    ///
    /// # Errors
    /// [`Error::DecryptionFailed`] for a damaged envelope (discard what was
    /// written), [`Error::Io`] when the reader or writer fails.
    pub fn copy_to(&mut self, mut writer: impl Write) -> Result<u64> {
        self.opener.copy_to(&mut self.inner, &mut writer)
    }

    /// The inner reader, positioned after what has been read.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for EnvelopeReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.opener.read(buf, &mut self.inner).map_err(to_io)
    }
}

impl<R: Read> std::fmt::Debug for EnvelopeReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvelopeReader")
            .field("plaintext_bytes", &self.opener.total)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_len_matches_the_layout() {
        assert_eq!(ENVELOPE_HEADER_LEN, 153);
        assert_eq!(sealed_len(0, BLOB_LEN), 153 + 16);
        assert_eq!(sealed_len(1, BLOB_LEN), 153 + 17);
        assert_eq!(sealed_len(ENVELOPE_CHUNK_BYTES, BLOB_LEN), 153 + 65552 + 16);
        assert_eq!(
            sealed_len(ENVELOPE_CHUNK_BYTES + 5, BLOB_LEN),
            153 + 65552 + 21
        );
    }

    #[test]
    fn header_checks() {
        let blob = [7u8; BLOB_LEN];
        let mut h = write::header(&blob).expect("header");
        assert_eq!(h[4], ENVELOPE_V2);
        let p: [u8; PREFIX_LEN] = h[..PREFIX_LEN].try_into().expect("prefix");
        assert_eq!(read::prefix(&p).expect("prefix"), (ENVELOPE_V2, BLOB_LEN));
        for at in 0..5 {
            let mut t = p;
            t[at] ^= 1;
            // Version 2 -> 3 is unknown; 2 -> 0 too; magic changes fail.
            assert_eq!(read::prefix(&t).unwrap_err(), Error::DecryptionFailed);
        }
        // v1 takes only the 146-byte blob.
        h[4] = ENVELOPE_V1;
        let v1: [u8; ENVELOPE_HEADER_LEN] = h.clone().try_into().expect("len");
        assert_eq!(read::blob(&v1).expect("blob"), &blob[..]);
        let mut short = p;
        short[4] = ENVELOPE_V1;
        short[6] = 0x91;
        assert!(read::prefix(&short).is_err());
        // v2 takes 1..=4096.
        let mut zero = p;
        zero[5] = 0;
        zero[6] = 0;
        assert!(read::prefix(&zero).is_err());
        assert!(write::header(&[]).is_err());
        assert!(write::header(&[0; MAX_KEY_BLOB_LEN + 1]).is_err());
    }

    #[test]
    fn hkdf_matches_rfc_5869_case_1() {
        // RFC 5869 A.1: the first 32 bytes of the 42-byte OKM are T(1).
        let ikm = [0x0bu8; 22];
        let salt: Vec<u8> = (0u8..=0x0c).collect();
        let info: Vec<u8> = (0xf0u8..=0xf9).collect();
        let okm = hkdf_sha256_32(&salt, &ikm, &info);
        let want = "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf";
        let got: String = okm.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn nonces_follow_stream_be32() {
        assert_eq!(nonce(0, false), [0; 12]);
        assert_eq!(nonce(1, true), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
        assert_eq!(nonce(0x0102_0304, false)[7..11], [1, 2, 3, 4]);
    }

    fn key() -> SecretBytes {
        SecretBytes::from(vec![5u8; 32])
    }

    fn unwrap_ok(_: u8, _: &[u8]) -> Result<SecretBytes> {
        Ok(key())
    }

    /// Large, unaligned and chunk-sized writes seal the same bytes as small
    /// ones (the key and nonces are fixed here).
    #[test]
    fn large_writes_seal_the_same_bytes_as_small_ones() {
        let n = 3 * ENVELOPE_CHUNK_BYTES + 123;
        let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
        let seal = |pieces: &[usize]| {
            let mut w = EnvelopeWriter::start(&key(), b"blob", Vec::new()).expect("start");
            let mut rest = &data[..];
            for &p in pieces.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (a, b) = rest.split_at(p.min(rest.len()));
                w.write_all(a).expect("write");
                rest = b;
            }
            w.finish().expect("finish")
        };
        let small = seal(&[1000]);
        assert_eq!(seal(&[n]), small, "one write");
        assert_eq!(seal(&[5, 2 * ENVELOPE_CHUNK_BYTES]), small, "unaligned");
        assert_eq!(seal(&[ENVELOPE_CHUNK_BYTES]), small, "aligned");
    }

    /// Reads of any size return the plaintext; a tampered chunk leaves
    /// nothing of itself in the caller's buffer.
    #[test]
    fn large_reads_return_only_authenticated_bytes() {
        let n = 2 * ENVELOPE_CHUNK_BYTES + 7;
        let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
        let mut w = EnvelopeWriter::start(&key(), b"blob", Vec::new()).expect("start");
        w.write_all(&data).expect("write");
        let env = w.finish().expect("finish");
        for size in [ENVELOPE_CHUNK_BYTES, n + 100, 1000] {
            let mut r = EnvelopeReader::start(&env[..], &mut unwrap_ok).expect("reader");
            let mut out = Vec::new();
            let mut buf = vec![0u8; size];
            loop {
                let k = r.read(&mut buf).expect("read");
                if k == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..k]);
            }
            assert_eq!(out, data, "reads of {size}");
        }
        // Flip a byte of the second chunk's ciphertext.
        let mut bad = env.clone();
        let at = PREFIX_LEN + 4 + ENVELOPE_CHUNK_BYTES + TAG_LEN + 10;
        bad[at] ^= 1;
        let mut r = EnvelopeReader::start(&bad[..], &mut unwrap_ok).expect("reader");
        let mut buf = vec![0xeeu8; n];
        assert_eq!(r.read(&mut buf).expect("first chunk"), ENVELOPE_CHUNK_BYTES);
        assert_eq!(buf[..ENVELOPE_CHUNK_BYTES], data[..ENVELOPE_CHUNK_BYTES]);
        buf.fill(0xee);
        let e = r.read(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(
            buf.iter().all(|&b| b == 0xee || b == 0),
            "no byte of the tampered chunk reached the caller"
        );
        assert!(r.read(&mut buf).is_err(), "the error sticks");
    }

    #[test]
    fn writer_and_reader_round_trip_with_any_write_sizes() {
        for n in [0usize, 1, 65535, 65536, 65537, 200_000] {
            let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            let mut w = EnvelopeWriter::start(&key(), b"blob", Vec::new()).expect("start");
            for piece in data.chunks(7000) {
                w.write_all(piece).expect("write");
            }
            assert_eq!(w.plaintext_bytes(), n as u64);
            let env = w.finish().expect("finish");
            assert_eq!(env.len(), sealed_len(n, 4));
            let mut r = EnvelopeReader::start(&env[..], &mut unwrap_ok).expect("reader");
            let mut out = Vec::new();
            r.read_to_end(&mut out).expect("read");
            assert_eq!(out, data);
            // An unfinished writer's output never decrypts.
            let mut w = EnvelopeWriter::start(&key(), b"blob", Vec::new()).expect("start");
            w.write_all(&data).expect("write");
            let cut = w.inner.clone();
            drop(w);
            let r = EnvelopeReader::start(&cut[..], &mut unwrap_ok);
            let mut out = Vec::new();
            let e = r.and_then(|mut r| r.read_to_end(&mut out).map_err(Error::from));
            assert!(e.is_err(), "unfinished envelope of {n} bytes");
        }
    }
}
