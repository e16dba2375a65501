//! The bodies of the fuzz targets in `fuzz/`, here so that each target is one
//! line and `tests/fuzz_corpus.rs` replays the committed corpora through the
//! very same functions under `cargo test`.
//!
//! Every function takes arbitrary bytes and must return normally. Each one
//! asserts properties of what the library did (round trips, canonical
//! encodings, agreement with a model): a failed assertion here is a finding,
//! which is the point of a fuzz target, so these are the only assertions in
//! `src/` that input can reach. **Not for use** outside fuzzing and tests.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use zeroize::Zeroizing;

use crate::clock::ManualClock;
use crate::crypto::blob::{self, HEADER_LEN, NONCE_LEN, PlaintextKind, TAG_LEN};
use crate::crypto::context::EncryptionContext;
use crate::crypto::import_token::{
    ImportToken, TokenKey, read as token_read, write as token_write,
};
use crate::error::Error;
use crate::kms::Kms;
use crate::store::{Batch, Keystore, MemoryKeystore, Record, Scan, StoreError};
use crate::types::KeyState;

/// The fixed start time of the fuzzing clocks.
pub const T0: i64 = 1_700_000_000;
/// The enabled key of [`fixture`].
pub const KEY_A: &str = "0b5e1f0c-9c53-4b8e-a0ae-2b7a8c5f0d11";
/// The version of [`KEY_A`].
pub const VERSION_A: &str = "7f7e1d36-3f4c-4a3d-9d1c-6c1b2a3e4f50";
/// The disabled key of [`fixture`].
pub const KEY_B: &str = "2c8d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f";
/// The version of [`KEY_B`].
pub const VERSION_B: &str = "3d9e4f50-6b7c-4d8e-9fa0-1b2c3d4e5f60";

/// The contexts a fuzz input picks from with its first byte.
fn context(selector: u8) -> EncryptionContext {
    let pairs: &[(&str, &str)] = match selector % 4 {
        0 => &[],
        1 => &[("a", "b")],
        2 => &[("ab", "")],
        _ => &[("purpose", "fuzz"), ("x", "\u{e9}")],
    };
    // safe: these fixed contexts are valid.
    EncryptionContext::from_pairs(pairs.iter().copied()).unwrap_or_default()
}

/// A shared in-memory service with fixed keys: [`KEY_A`] (enabled, material
/// `[0x11; 32]`) and [`KEY_B`] (disabled, material `[0x22; 32]`), so that
/// committed seeds stay valid.
///
/// # Panics
/// If the fixture cannot be built (never: it is an in-memory store).
pub fn fixture() -> &'static Kms {
    static KMS: OnceLock<Kms> = OnceLock::new();
    KMS.get_or_init(|| build_fixture(None))
}

/// An in-memory service holding [`KEY_A`] (enabled) and [`KEY_B`] (disabled)
/// with fixed material, and at most `max_keys` keys when given.
fn build_fixture(max_keys: Option<u64>) -> Kms {
    let build = || -> crate::error::Result<Kms> {
        let mut builder = Kms::builder()
            .in_memory()
            .root_key_bytes(&[0x42; 32])
            .clock(ManualClock::new(T0));
        if let Some(max) = max_keys {
            builder = builder.max_keys(max);
        }
        let kms = builder.build()?;
        crate::ops::symmetric::internal::insecure_insert_fixed_key(
            &kms,
            KEY_A,
            VERSION_A,
            &[0x11; 32],
        )?;
        crate::ops::symmetric::internal::insecure_insert_fixed_key(
            &kms,
            KEY_B,
            VERSION_B,
            &[0x22; 32],
        )?;
        kms.disable_key(KEY_B)?;
        Ok(kms)
    };
    build().expect("the fuzzing fixture builds") // safe: in memory, fixed valid inputs
}

// ---- ciphertext blobs and Decrypt -------------------------------------------

/// Target `blob_decrypt`. Input: a context selector byte, then blob bytes.
/// The blob goes through the header parser, Decrypt (as base64, and as the
/// raw text when it is UTF-8). A blob that decrypts must be exactly the blob
/// that sealing its plaintext with its nonce gives: nothing else verifies.
pub fn blob_decrypt(data: &[u8]) {
    let Some((&sel, bytes)) = data.split_first() else {
        return;
    };
    let kms = fixture();
    let ctx = context(sel);
    let header = blob::read::header(bytes);
    match kms.decrypt(bytes, &ctx) {
        Ok(d) => {
            let h = header.expect("a blob that decrypts has a valid header");
            assert_eq!(d.key_id.as_bytes(), h.key_id);
            assert_eq!(d.key_version_id.as_bytes(), h.version_id);
            assert_eq!(d.kind, h.kind);
            assert_eq!(d.plaintext.len(), bytes.len() - HEADER_LEN - TAG_LEN);
            let again = crate::ops::symmetric::internal::insecure_seal_with_nonce(
                kms,
                &d.key_id,
                d.kind,
                d.plaintext.expose_secret(),
                &ctx,
                h.nonce,
            )
            .expect("what decrypts re-seals");
            assert_eq!(again.as_bytes(), bytes, "the blob is the canonical sealing");
        }
        Err(e) => {
            check_error(&e);
            if bytes.is_empty() {
                assert_eq!(e, Error::MissingParameter("CiphertextBlob"));
            } else if header.is_err() {
                assert_eq!(e, Error::DecryptionFailed, "a bad header is uniform");
            }
        }
    }
    // The wire's path: base64 of the bytes, and the bytes read as base64.
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    let via_text = crate::crypto::blob::CiphertextBlob::from_base64(&b64)
        .expect("strict base64 decodes")
        .into_vec();
    assert!(via_text == bytes || bytes.len() > crate::crypto::blob::MAX_BLOB_BYTES);
    if let Ok(text) = std::str::from_utf8(bytes)
        && let Err(e) = crate::crypto::blob::CiphertextBlob::from_base64(text)
            .and_then(|b| kms.decrypt(&b, &ctx))
    {
        check_error(&e);
    }
}

/// Errors from input name no secret and have a wire code; only
/// input-related failures are expected here.
fn check_error(e: &Error) {
    let code = e.code();
    assert!(!code.is_empty());
    assert_ne!(code, "InternalFailure", "input caused {e:?}");
    let _ = format!("{e} {e:?}");
}

/// Valid blobs under the fixture keys, with their context selector byte.
fn blob_seeds() -> Vec<Vec<u8>> {
    let kms = fixture();
    let mut out = Vec::new();
    for (sel, kind, plaintext) in [
        (0u8, PlaintextKind::Text, &b"x"[..]),
        (1, PlaintextKind::Text, b"hello, world"),
        (3, PlaintextKind::DataKey, &[7u8; 32]),
        (2, PlaintextKind::DataKey, &[9u8; 16]),
    ] {
        let nonce = [sel.wrapping_mul(31); NONCE_LEN];
        if let Ok(blob) = crate::ops::symmetric::internal::insecure_seal_with_nonce(
            kms,
            KEY_A,
            kind,
            plaintext,
            &context(sel),
            &nonce,
        ) {
            let mut seed = vec![sel];
            seed.extend_from_slice(&blob);
            out.push(seed);
        }
    }
    // A blob naming the disabled key, and one naming no key.
    if let Some(first) = out.first().cloned() {
        let mut b = first.clone();
        b[1 + 2..1 + 38].copy_from_slice(KEY_B.as_bytes());
        b[1 + 38..1 + 74].copy_from_slice(VERSION_B.as_bytes());
        out.push(b);
        let mut c = first.clone();
        c[5] ^= 1;
        out.push(c);
    }
    out
}

// ---- envelopes ---------------------------------------------------------------

/// A reader that hands out its bytes in pieces of a fixed size.
struct Pieces<'a> {
    data: &'a [u8],
    piece: usize,
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.piece.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// The plaintext bytes of a full chunk while fuzzing envelopes: small, so
/// inputs of a few KiB span several chunks and reach chunk boundaries.
pub const FUZZ_CHUNK_BYTES: usize = 64;

/// Sets this thread's envelope chunk size to [`FUZZ_CHUNK_BYTES`] until
/// dropped.
struct SmallChunks;

impl SmallChunks {
    fn on() -> Self {
        crate::crypto::envelope::set_fuzzing_chunk_bytes(FUZZ_CHUNK_BYTES);
        Self
    }
}

impl Drop for SmallChunks {
    fn drop(&mut self) {
        crate::crypto::envelope::set_fuzzing_chunk_bytes(0);
    }
}

/// Target `envelope_reader`. Input: a context selector byte, a read-size
/// byte, then envelope bytes (made with 64-byte chunks, [`FUZZ_CHUNK_BYTES`]).
/// The streaming reader, the `Read` adapter and the whole-buffer call must
/// agree, and refuse anything but a whole, untampered envelope; what they
/// accept has exactly the length of the envelope of what it holds.
pub fn envelope_reader(data: &[u8]) {
    let [sel, piece, bytes @ ..] = data else {
        return;
    };
    let _small = SmallChunks::on();
    let kms = fixture();
    let ctx = context(*sel);
    let reader = Pieces {
        data: bytes,
        piece: usize::from(*piece).max(1) * 97,
    };
    let mut out = Zeroizing::new(Vec::new());
    match kms.envelope_decrypt_stream(&ctx, reader, &mut *out) {
        Ok(info) => {
            assert_eq!(info.plaintext_bytes, out.len() as u64);
            let blob_len = usize::from(u16::from_be_bytes([bytes[5], bytes[6]]));
            assert_eq!(
                crate::crypto::envelope::sealed_len(out.len(), blob_len),
                bytes.len()
            );
            assert_eq!(info.key_id, KEY_A);
            let whole = kms.envelope_decrypt(bytes, &ctx).expect("the same bytes");
            assert_eq!(whole.as_slice(), out.as_slice());
        }
        Err(e) => {
            check_error(&e);
            assert!(kms.envelope_decrypt(bytes, &ctx).is_err());
        }
    }
    // The `Read` adapter, in small reads, agrees with the stream.
    let mut read = Zeroizing::new(Vec::new());
    let adapter = kms.envelope_reader(&ctx, bytes).and_then(|mut r| {
        let mut piece_buf = [0u8; 13];
        loop {
            match r.read(&mut piece_buf) {
                Ok(0) => return Ok(()),
                Ok(n) => read.extend_from_slice(&piece_buf[..n]),
                Err(e) => return Err(Error::from(e)),
            }
        }
    });
    match adapter {
        Ok(()) => assert_eq!(read.as_slice(), out.as_slice(), "adapter and stream agree"),
        Err(e) => {
            check_error(&e);
            assert!(out.is_empty() || kms.envelope_decrypt(bytes, &ctx).is_err());
            // Every byte it returned was authenticated: a prefix of the truth.
            assert!(read.len() <= out.len() || out.is_empty());
        }
    }
}

fn envelope_seeds() -> Vec<Vec<u8>> {
    let _small = SmallChunks::on();
    let kms = fixture();
    let mut out = Vec::new();
    for (sel, plaintext) in [
        (0u8, &b""[..]),
        (1, b"a"),
        (2, &[0x11; FUZZ_CHUNK_BYTES]),
        (3, &[0x5a; 300]),
    ] {
        if let Ok(env) = kms.envelope_encrypt(KEY_A, plaintext, &context(sel)) {
            let mut seed = vec![sel, 1];
            seed.extend_from_slice(&env);
            out.push(seed);
        }
    }
    out
}

// ---- import tokens -----------------------------------------------------------

fn token_key() -> TokenKey {
    TokenKey::new(Zeroizing::new([0x33; 32]))
}

/// Target `import_token`. Input: token bytes. They are parsed as bytes, as
/// text, and once more with a valid tag put in place of their last 32 bytes
/// (so the fields behind the tag check are explored too). A token that
/// parses must encode back to exactly its bytes.
pub fn import_token(data: &[u8]) {
    let key = token_key();
    let check = |bytes: &[u8], token: Option<ImportToken>| {
        if let Some(t) = token {
            let again = token_write::encode(&t, &key).expect("a parsed token encodes");
            assert_eq!(again, bytes, "the token is canonical");
        }
    };
    check(data, token_read::decode(data, &key));
    if let Ok(text) = std::str::from_utf8(data)
        && let Some(t) = token_read::decode_text(text, &key)
    {
        let again = token_write::encode_text(&t, &key).expect("encodes");
        assert_eq!(again, text, "the token text is canonical");
    }
    if data.len() >= crate::crypto::import_token::TAG_LEN {
        let body = &data[..data.len() - crate::crypto::import_token::TAG_LEN];
        let mut retagged = body.to_vec();
        retagged.extend_from_slice(&key.tag(body));
        check(&retagged, token_read::decode(&retagged, &key));
    }
}

fn token_seeds() -> Vec<Vec<u8>> {
    let key = token_key();
    let token = ImportToken {
        token_id: [5; 16],
        key_id: KEY_A.to_owned(),
        algorithm: crate::types::WrappingAlgorithm::RsaesOaepSha256,
        key_spec: crate::types::WrappingKeySpec::Rsa2048,
        expire: T0 + 86_400,
        public_key_sha256: [6; 32],
    };
    let mut out = Vec::new();
    if let Some(b) = token_write::encode(&token, &key) {
        out.push(b);
    }
    if let Some(t) = token_write::encode_text(&token, &key) {
        out.push(t.into_bytes());
    }
    out
}

// ---- EncryptionContext -------------------------------------------------------

/// Target `encryption_context`. Input: two texts separated by a 0xff byte.
/// Each that parses survives a JSON round trip with the same canonical
/// encoding; two contexts with the same encoding are the same context.
pub fn encryption_context(data: &[u8]) {
    let mut parsed = Vec::new();
    for part in data.splitn(2, |&b| b == 0xff) {
        let Ok(text) = std::str::from_utf8(part) else {
            continue;
        };
        match EncryptionContext::from_json(text) {
            Ok(ctx) => {
                let json = ctx.to_json();
                let again = EncryptionContext::from_json(&json).expect("to_json parses");
                assert_eq!(again, ctx);
                assert_eq!(again.encoded(), ctx.encoded());
                let pairs = EncryptionContext::from_pairs(ctx.iter()).expect("pairs rebuild it");
                assert_eq!(pairs, ctx);
                assert_eq!(ctx.is_empty(), ctx.iter().next().is_none());
                parsed.push(ctx);
            }
            Err(e) => {
                assert_eq!(e.code(), "InvalidParameter");
                assert!(e.to_string().contains("EncryptionContext"));
            }
        }
    }
    if let [a, b] = parsed.as_slice() {
        assert_eq!(
            a.encoded() == b.encoded(),
            a == b,
            "the encoding is injective"
        );
    }
}

fn context_seeds() -> Vec<Vec<u8>> {
    [
        &b"{}"[..],
        br#"{"a":"b"}"#,
        br#"{"ab":"c"}"#,
        b"{\"a\":\"bc\"}\xff{\"ab\":\"c\"}",
        br#"{"k":"\u00e9\ud83d\ude00","z":"","a":"1"}"#,
        br#"{"a":"1","a":"2"}"#,
        br#"{"a":1}"#,
        b"",
    ]
    .iter()
    .map(|s| s.to_vec())
    .collect()
}

// ---- the state model -----------------------------------------------------------

/// A memory keystore shared across reopens.
#[derive(Debug, Clone, Default)]
struct Shared(Arc<MemoryKeystore>);

impl Keystore for Shared {
    fn get(&self, ns: &str, id: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.get(ns, id)
    }
    fn scan(&self, ns: &str, scan: Scan<'_>) -> Result<Vec<Record>, StoreError> {
        self.0.scan(ns, scan)
    }
    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        self.0.apply(batch)
    }
    fn flush(&self) -> Result<(), StoreError> {
        self.0.flush()
    }
}

const DAY: i64 = 86_400;
const MAX_MODEL_KEYS: usize = 4;
const ALIAS_NAMES: [&str; 3] = ["alias/a", "alias/b", "alias/c/d"];
const MISSING_KEY: &str = "00000000-0000-4000-8000-000000000000";

/// A key as the model sees it.
struct MKey {
    id: String,
    state: KeyState,
    delete_date: Option<i64>,
    /// Every version, the primary last.
    versions: Vec<String>,
}

/// A ciphertext the library acknowledged, with what it must decrypt to.
struct MBlob {
    key: String,
    version: String,
    blob: crate::crypto::blob::CiphertextBlob,
    ctx: u8,
    plaintext: Vec<u8>,
    data_key: bool,
}

struct Model {
    now: i64,
    keys: Vec<MKey>,
    aliases: BTreeMap<&'static str, String>,
    blobs: Vec<MBlob>,
}

impl Model {
    /// Deletion at `DeleteDate`, applied eagerly.
    fn settle(&mut self) {
        let now = self.now;
        let due = |k: &MKey| {
            k.state == KeyState::PendingDeletion && k.delete_date.is_some_and(|d| d <= now)
        };
        let gone: Vec<String> = self
            .keys
            .iter()
            .filter(|k| due(k))
            .map(|k| k.id.clone())
            .collect();
        self.keys.retain(|k| !gone.contains(&k.id));
        self.aliases.retain(|_, k| !gone.contains(k));
    }

    fn key(&self, id: &str) -> Result<&MKey, &'static str> {
        self.keys
            .iter()
            .find(|k| k.id == id)
            .ok_or("Forbidden.KeyNotFound")
    }

    /// The expected outcome of using `id` for a cryptographic operation.
    fn usable(&self, id: &str) -> Result<(), &'static str> {
        match self.key(id)?.state {
            KeyState::Enabled => Ok(()),
            KeyState::Disabled => Err("Rejected.Disabled"),
            KeyState::PendingDeletion => Err("Rejected.PendingDeletion"),
            _ => Err("Rejected.PendingImport"),
        }
    }
}

/// Drives the library and the model with the same steps.
struct Harness {
    store: Shared,
    clock: ManualClock,
    kms: Option<Kms>,
    model: Model,
}

fn code<T>(r: crate::error::Result<T>) -> Result<T, &'static str> {
    r.map_err(|e| {
        assert_ne!(e.code(), "InternalFailure", "{e:?}");
        e.code()
    })
}

impl Harness {
    fn new() -> Self {
        let mut h = Self {
            store: Shared::default(),
            clock: ManualClock::new(T0),
            kms: None,
            model: Model {
                now: T0,
                keys: Vec::new(),
                aliases: BTreeMap::new(),
                blobs: Vec::new(),
            },
        };
        h.reopen();
        h
    }

    fn reopen(&mut self) {
        self.kms = None;
        let kms = Kms::builder()
            .keystore(self.store.clone())
            .root_key_bytes(&[0x42; 32])
            .clock(self.clock.clone())
            .max_keys(MAX_MODEL_KEYS as u64)
            .build()
            .expect("the store reopens");
        self.kms = Some(kms);
    }

    fn kms(&self) -> &Kms {
        self.kms.as_ref().expect("open") // safe: reopen always sets it
    }

    /// A key reference: an existing key (by id, ARN or alias), or a missing one.
    fn key_ref(&self, b: u8) -> (String, Option<String>) {
        let keys = &self.model.keys;
        match b % 8 {
            0..=4 if !keys.is_empty() => {
                let id = keys[usize::from(b / 8) % keys.len()].id.clone();
                match b % 8 {
                    3 => (self.kms().key_arn(&id), Some(id)),
                    _ => (id.clone(), Some(id)),
                }
            }
            5 => {
                let name = ALIAS_NAMES[usize::from(b / 8) % ALIAS_NAMES.len()];
                (name.to_owned(), self.model.aliases.get(name).cloned())
            }
            _ => (MISSING_KEY.to_owned(), Some(MISSING_KEY.to_owned())),
        }
    }

    /// The expected resolution of a reference for an operation that takes
    /// aliases or not.
    fn resolve(
        &self,
        input: &str,
        target: &Option<String>,
        alias_ok: bool,
    ) -> Result<String, &'static str> {
        if input.starts_with("alias/") {
            if !alias_ok {
                return Err("Unsupported.Alias");
            }
            return target.clone().ok_or("Forbidden.AliasNotFound");
        }
        target.clone().ok_or("Forbidden.KeyNotFound")
    }

    fn step(&mut self, op: u8, a: u8, b: u8) {
        self.model.now = self.clock.now_unix();
        self.model.settle();
        match op % 16 {
            0 => {
                let got = code(self.kms().create_key(&Default::default()));
                if self.model.keys.len() >= MAX_MODEL_KEYS {
                    assert_eq!(got.err(), Some("Rejected.LimitExceeded"));
                } else {
                    let meta = got.expect("CreateKey");
                    assert_eq!(meta.key_state, KeyState::Enabled);
                    self.model.keys.push(MKey {
                        id: meta.key_id,
                        state: KeyState::Enabled,
                        delete_date: None,
                        versions: vec![meta.primary_key_version],
                    });
                }
            }
            1 | 2 => {
                let (input, target) = self.key_ref(a);
                let enable = op % 16 == 1;
                let got = if enable {
                    code(self.kms().enable_key(&input))
                } else {
                    code(self.kms().disable_key(&input))
                };
                let want = self.resolve(&input, &target, false).and_then(|id| {
                    match self.model.key(&id)?.state {
                        KeyState::Enabled | KeyState::Disabled => Ok(id),
                        _ => Err("Rejected.StateModifiedFailed"),
                    }
                });
                assert_eq!(got.is_ok(), want.is_ok(), "{got:?} {want:?}");
                match want {
                    Ok(id) => self.set_state(&id, enabled(enable), None),
                    Err(w) => assert_eq!(got.err(), Some(w)),
                }
            }
            3 => {
                let (input, target) = self.key_ref(a);
                let days = u32::from(b % 32);
                let got = code(self.kms().schedule_key_deletion(&input, days));
                let want = if (7..=30).contains(&days) {
                    self.resolve(&input, &target, false).and_then(|id| {
                        match self.model.key(&id)?.state {
                            KeyState::PendingDeletion => Err("Rejected.StateModifiedFailed"),
                            _ => Ok(id),
                        }
                    })
                } else {
                    Err("InvalidParameter")
                };
                match want {
                    Ok(id) => {
                        got.expect("ScheduleKeyDeletion");
                        let date = self.model.now + i64::from(days) * DAY;
                        self.set_state(&id, KeyState::PendingDeletion, Some(date));
                    }
                    Err(w) => assert_eq!(got.err(), Some(w)),
                }
            }
            4 => {
                let (input, target) = self.key_ref(a);
                let got = code(self.kms().cancel_key_deletion(&input));
                let want = self.resolve(&input, &target, false).and_then(|id| {
                    match self.model.key(&id)?.state {
                        KeyState::PendingDeletion => Ok(id),
                        _ => Err("Rejected.StateModifiedFailed"),
                    }
                });
                match want {
                    Ok(id) => {
                        got.expect("CancelKeyDeletion");
                        self.set_state(&id, KeyState::Enabled, None);
                    }
                    Err(w) => assert_eq!(got.err(), Some(w)),
                }
            }
            5 | 6 => {
                let (input, target) = self.key_ref(a);
                let data_key = op % 16 == 6;
                let sel = b % 4;
                let ctx = context(sel);
                let want = self
                    .resolve(&input, &target, true)
                    .and_then(|id| self.model.usable(&id).map(|()| id));
                let got = if data_key {
                    code(
                        self.kms().generate_data_key(
                            &input,
                            &crate::ops::symmetric::GenerateDataKeyRequest::with_number_of_bytes(
                                u32::from(b % 64) + 1,
                            )
                            .context(ctx),
                        ),
                    )
                    .map(|d| {
                        (
                            d.key_id,
                            d.key_version_id,
                            d.ciphertext_blob,
                            d.plaintext.expose_secret().to_vec(),
                        )
                    })
                } else {
                    let plaintext = vec![b; usize::from(a) + 1];
                    code(self.kms().encrypt(&input, &plaintext, &ctx))
                        .map(|r| (r.key_id, r.key_version_id, r.ciphertext_blob, plaintext))
                };
                match want {
                    Ok(id) => {
                        let (key, version, blob, plaintext) =
                            got.expect("Encrypt / GenerateDataKey");
                        assert_eq!(key, id);
                        assert_eq!(Some(&version), self.primary(&id), "the primary seals");
                        self.model.blobs.push(MBlob {
                            key,
                            version,
                            blob,
                            ctx: sel,
                            plaintext,
                            data_key,
                        });
                    }
                    Err(w) => assert_eq!(got.err(), Some(w)),
                }
            }
            7 => {
                if self.model.blobs.is_empty() {
                    return;
                }
                let i = usize::from(a) % self.model.blobs.len();
                let wrong_ctx = b % 5 == 4;
                let m = &self.model.blobs[i];
                let ctx = context(if wrong_ctx { m.ctx + 1 } else { m.ctx });
                let got = code(self.kms().decrypt(&m.blob, &ctx));
                let ctx_check = if wrong_ctx {
                    Err("InvalidParameter")
                } else {
                    Ok(())
                };
                let want = self.model.usable(&m.key).and(ctx_check);
                match want {
                    Ok(()) => {
                        let d = got.expect("Decrypt of an acknowledged ciphertext");
                        assert_eq!(d.plaintext.expose_secret(), m.plaintext.as_slice());
                        assert_eq!(d.kind == PlaintextKind::DataKey, m.data_key);
                        assert_eq!(d.key_id, m.key);
                        assert_eq!(d.key_version_id, m.version);
                    }
                    Err(w) => assert_eq!(got.err(), Some(w)),
                }
            }
            8 => {
                let name = ALIAS_NAMES[usize::from(b) % ALIAS_NAMES.len()];
                let (input, target) = self.key_ref(a);
                let got = code(self.kms().create_alias(name, &input));
                let want = self.resolve(&input, &target, false).and_then(|id| {
                    if self.model.aliases.contains_key(name) {
                        return Err("AliasAlreadyExists");
                    }
                    match self.model.key(&id)?.state {
                        KeyState::PendingDeletion => Err("Rejected.StateModifiedFailed"),
                        _ => Ok(id),
                    }
                });
                match want {
                    Ok(id) => {
                        got.expect("CreateAlias");
                        self.model.aliases.insert(name, id);
                    }
                    Err(w) => assert_eq!(got.err(), Some(w)),
                }
            }
            9 => {
                let name = ALIAS_NAMES[usize::from(b) % ALIAS_NAMES.len()];
                let got = code(self.kms().delete_alias(name));
                match self.model.aliases.remove(name) {
                    Some(_) => got.expect("DeleteAlias"),
                    None => assert_eq!(got.err(), Some("Forbidden.AliasNotFound")),
                }
            }
            14 => {
                let (input, target) = self.key_ref(a);
                let got = code(self.kms().create_key_version(&input));
                let want = self.resolve(&input, &target, false).and_then(|id| {
                    self.model.usable(&id)?;
                    Ok(id)
                });
                match want {
                    Ok(id) => {
                        let v = got.expect("CreateKeyVersion");
                        assert_eq!(v.key_id, id);
                        if let Some(k) = self.model.keys.iter_mut().find(|k| k.id == id) {
                            assert!(!k.versions.contains(&v.key_version_id));
                            k.versions.push(v.key_version_id);
                        }
                    }
                    Err(w) => assert_eq!(got.err(), Some(w)),
                }
            }
            15 => {
                if self.model.blobs.is_empty() {
                    return;
                }
                let i = usize::from(b) % self.model.blobs.len();
                let (input, target) = self.key_ref(a);
                let dest_sel = a % 4;
                let m = &self.model.blobs[i];
                let got = code(self.kms().re_encrypt(
                    &m.blob,
                    &input,
                    &context(m.ctx),
                    &context(dest_sel),
                ));
                let want = self.model.usable(&m.key).and_then(|()| {
                    let id = self.resolve(&input, &target, true)?;
                    self.model.usable(&id)?;
                    Ok(id)
                });
                match want {
                    Ok(id) => {
                        let r = got.expect("ReEncrypt");
                        assert_eq!(r.key_id, id);
                        assert_eq!(r.source_key_id, m.key);
                        assert_eq!(r.source_key_version_id, m.version);
                        assert_eq!(Some(&r.key_version_id), self.primary(&id));
                        let moved = MBlob {
                            key: r.key_id,
                            version: r.key_version_id,
                            blob: r.ciphertext_blob,
                            ctx: dest_sel,
                            plaintext: m.plaintext.clone(),
                            data_key: m.data_key,
                        };
                        self.model.blobs.push(moved);
                    }
                    Err(w) => assert_eq!(got.err(), Some(w)),
                }
            }
            10 => {
                // Forward, from seconds to months: past DeleteDates or not.
                let secs = i64::from(a) * i64::from(b) * 600 + i64::from(b);
                self.clock.advance(secs);
            }
            11 => {
                // Backward: a maintenance purge first, so keys already due
                // at the later time are gone, as the eager model has them.
                self.kms().purge_expired().expect("purge");
                self.clock.advance(-(i64::from(a) * 3_600));
            }
            12 => self.reopen(),
            _ => {
                let (input, target) = self.key_ref(a);
                let got = code(self.kms().describe_key(&input));
                let want = self
                    .resolve(&input, &target, true)
                    .and_then(|id| self.model.key(&id).map(|k| (k.state, k.delete_date)));
                match want {
                    Ok((state, date)) => {
                        let meta = got.expect("DescribeKey");
                        assert_eq!(meta.key_state, state);
                        assert_eq!(Some(&meta.primary_key_version), self.primary(&meta.key_id));
                        assert_eq!(
                            meta.delete_date,
                            date.map(crate::clock::format_timestamp).unwrap_or_default()
                        );
                    }
                    Err(w) => assert_eq!(got.err(), Some(w)),
                }
            }
        }
    }

    /// The model's primary version of `id`.
    fn primary(&self, id: &str) -> Option<&String> {
        self.model.key(id).ok().and_then(|k| k.versions.last())
    }

    fn set_state(&mut self, id: &str, state: KeyState, delete_date: Option<i64>) {
        if let Some(k) = self.model.keys.iter_mut().find(|k| k.id == id) {
            k.state = state;
            k.delete_date = delete_date;
        }
    }

    /// After the last step: every key and alias agrees, and every
    /// acknowledged ciphertext of a usable key decrypts.
    fn final_check(&mut self) {
        self.reopen();
        self.model.now = self.clock.now_unix();
        self.model.settle();
        let page = self
            .kms()
            .list_keys(crate::paging::Paging::new(1, 100).expect("paging"))
            .expect("ListKeys");
        let mut listed: Vec<String> = page.items.into_iter().map(|k| k.key_id).collect();
        let mut want: Vec<String> = self.model.keys.iter().map(|k| k.id.clone()).collect();
        listed.sort();
        want.sort();
        assert_eq!(listed, want);
        for (name, id) in &self.model.aliases {
            let meta = self.kms().describe_key(name).expect("alias resolves");
            assert_eq!(&meta.key_id, id);
        }
        for m in &self.model.blobs {
            if self.model.usable(&m.key).is_ok() {
                let d = self
                    .kms()
                    .decrypt(&m.blob, &context(m.ctx))
                    .expect("acknowledged ciphertext decrypts");
                assert_eq!(d.plaintext.expose_secret(), m.plaintext.as_slice());
            }
        }
    }
}

fn enabled(yes: bool) -> KeyState {
    if yes {
        KeyState::Enabled
    } else {
        KeyState::Disabled
    }
}

/// Target `state_model`. Input: steps of three bytes (operation, two
/// arguments), at most 64. CreateKey, Enable/Disable, Schedule/Cancel
/// deletion, Encrypt, GenerateDataKey, Decrypt (right and wrong context),
/// CreateAlias/DeleteAlias, CreateKeyVersion (rotation), ReEncrypt, clock
/// jumps forward and back, store reopens and DescribeKey run against the library and a model; every response, or error
/// code, must agree, and so must the final state.
pub fn state_model(data: &[u8]) {
    let mut h = Harness::new();
    for step in data.chunks_exact(3).take(64) {
        h.step(step[0], step[1], step[2]);
    }
    h.final_check();
}

fn model_seeds() -> Vec<Vec<u8>> {
    vec![
        // create, encrypt, disable, decrypt, enable, decrypt
        vec![0, 0, 0, 5, 0, 1, 2, 0, 0, 7, 0, 0, 1, 0, 0, 7, 0, 0],
        // create x2, alias, GDK via alias, schedule 7 days, reopen, jump, decrypt
        vec![
            0, 0, 0, 0, 0, 0, 8, 0, 0, 6, 5, 3, 3, 0, 7, 12, 0, 0, 10, 255, 255, 7, 0, 0, 13, 5, 0,
        ],
        // rotate, decrypt old and new, ReEncrypt, reopen, decrypt both
        vec![
            0, 0, 0, 5, 0, 1, 14, 0, 0, 7, 0, 0, 5, 0, 2, 15, 0, 0, 12, 0, 0, 7, 1, 0, 7, 2, 0, 13,
            0, 0,
        ],
        // schedule, cancel, jump back, describe, wrong context
        vec![
            0, 0, 0, 5, 0, 2, 3, 0, 30, 4, 0, 0, 11, 9, 0, 13, 0, 0, 7, 0, 4, 9, 0, 0,
        ],
    ]
}

// ---- the wire layer ------------------------------------------------------------

/// A fresh service with the fixed keys of [`fixture`], for one dispatch input.
fn fresh_fixture() -> Kms {
    build_fixture(Some(16))
}

/// Target `dispatch`. Input: up to 8 requests, one per line; each is
/// `name=value` pairs joined by `&` (no decoding; bytes that are not UTF-8
/// are replaced). The values `$A` and `$B` stand for the enabled and the
/// disabled fixed key, `$BLOB` for a ciphertext under `$A` with no context.
/// They run in order against one fresh service. Every response must be a
/// well-formed answer: never 500 (the memory store does not fail), JSON that
/// parses unless XML was asked for, a `RequestId`, and no key material.
pub fn dispatch(data: &[u8]) {
    let kms = fresh_fixture();
    let blob = crate::ops::symmetric::internal::insecure_seal_with_nonce(
        &kms,
        KEY_A,
        PlaintextKind::Text,
        b"fuzz",
        &EncryptionContext::empty(),
        &[7; NONCE_LEN],
    )
    .expect("fixture blob")
    .to_base64();
    let material: Vec<String> = [[0x11u8; 32], [0x22; 32]]
        .iter()
        .map(|m| base64::engine::general_purpose::STANDARD.encode(m))
        .collect();
    for line in data.split(|&b| b == b'\n').take(8) {
        let text = String::from_utf8_lossy(line);
        let params: Vec<(String, String)> = text
            .split('&')
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let v = match v {
                    "$A" => KEY_A,
                    "$B" => KEY_B,
                    "$BLOB" => blob.as_str(),
                    other => other,
                };
                (k.to_owned(), v.to_owned())
            })
            .collect();
        let response = crate::wire::dispatch(&kms, &params);
        assert_ne!(response.status, 500, "{params:?} -> {}", response.body);
        assert!(response.body.contains("RequestId"), "{}", response.body);
        if response.content_type.contains("json") {
            serde_json::from_str::<serde_json::Value>(&response.body)
                .unwrap_or_else(|e| panic!("{e}: {}", response.body));
        }
        for m in &material {
            // An echo of the input is not a leak.
            assert!(
                !response.body.contains(m.as_str()) || text.contains(m.as_str()),
                "material in a response"
            );
        }
    }
}

fn dispatch_seeds() -> Vec<Vec<u8>> {
    [
        &b"Action=Encrypt&KeyId=$A&Plaintext=hello\nAction=Decrypt&CiphertextBlob=$BLOB"[..],
        b"Action=CreateKey&Description=x\nAction=ListKeys&PageNumber=1&PageSize=10",
        b"Action=CreateAlias&AliasName=alias/a&KeyId=$A\nAction=GenerateDataKey&KeyId=alias/a&NumberOfBytes=16&EncryptionContext={\"k\":\"v\"}",
        b"Action=DescribeKey&KeyId=$B&Format=XML\nAction=EnableKey&KeyId=$B\nAction=ScheduleKeyDeletion&KeyId=$B&PendingWindowInDays=7",
        b"Action=TagResource&KeyId=$A&Tags=[{\"TagKey\":\"k\",\"TagValue\":\"v\"}]\nAction=ListResourceTags&KeyId=$A\nAction=UntagResource&KeyId=$A&TagKeys=[\"k\"]",
        b"Action=ReEncrypt&CiphertextBlob=$BLOB&DestinationKeyId=$A\nAction=CreateKeyVersion&KeyId=$A\nAction=ListKeyVersions&KeyId=$A",
        b"Action=DescribeRegions\nAction=ListAliases\nAction=GenerateDataKeyWithoutPlaintext&KeyId=$A&KeySpec=AES_128",
        b"Action=Nope\nAction=Encrypt\nAction=UpdateKeyDescription&KeyId=$A&Description=d",
    ]
    .iter()
    .map(|s| s.to_vec())
    .collect()
}

// ---- asymmetric and MAC inputs ------------------------------------------------

/// The keys of [`asym_inputs`]: (key id, version id, algorithm) for an
/// EC_P256 signer, an RSA_2048 PSS signer, an SM2 signer, an RSA_2048
/// OAEP-SHA-256 decrypter, an SM2 decrypter and an HMAC_SHA_256 key.
type AsymFixture = (Kms, Vec<(String, String, crate::crypto::asym::Algorithm)>);

fn asym_fixture() -> &'static AsymFixture {
    use crate::crypto::asym::Algorithm as A;
    use crate::types::{KeySpec as S, KeyUsage as U};
    static KMS: OnceLock<AsymFixture> = OnceLock::new();
    KMS.get_or_init(|| {
        let build = || -> crate::error::Result<AsymFixture> {
            let kms = Kms::builder()
                .in_memory()
                .clock(ManualClock::new(T0))
                .build()?;
            let mut keys = Vec::new();
            for (spec, usage, alg) in [
                (S::EcP256, U::SignVerify, A::EcdsaSha256),
                (S::Rsa2048, U::SignVerify, A::RsaPssSha256),
                (S::EcSm2, U::SignVerify, A::Sm2Dsa),
                (S::Rsa2048, U::EncryptDecrypt, A::RsaesOaepSha256),
                (S::EcSm2, U::EncryptDecrypt, A::Sm2Pke),
                (S::HmacSha256, U::GenerateVerifyMac, A::HmacSha256),
            ] {
                let m = kms.create_key(&crate::ops::keys::CreateKeyRequest {
                    key_spec: spec,
                    key_usage: Some(usage),
                    ..Default::default()
                })?;
                keys.push((m.key_id, m.primary_key_version, alg));
            }
            Ok((kms, keys))
        };
        build().expect("the asym fuzzing fixture builds") // safe: in memory, fixed valid inputs
    })
}

/// Target `asym_inputs`. Input: a selector byte, then a digest or message
/// length byte, then the digest or message, then the signature, ciphertext
/// or MAC. Selectors 0-2 verify (and for a 32-byte digest, sign and check
/// the signature verifies and a flipped one does not), 3-4 decrypt, 5
/// verifies a MAC (and checks a generated one), 6-7 go through the wire.
/// No input may panic, answer 500, or give any error but a parameter error.
pub fn asym_inputs(data: &[u8]) {
    use base64::engine::general_purpose::STANDARD;
    let (kms, keys) = asym_fixture();
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let (n, rest) = rest
        .split_first()
        .map_or((0, &[][..]), |(n, r)| (usize::from(*n), r));
    let (first, second) = rest.split_at(n.min(rest.len()));
    let param_error = |e: &Error| {
        matches!(
            e,
            Error::InvalidParameter { .. } | Error::MissingParameter(_)
        )
    };
    match sel % 8 {
        i @ 0..=2 => {
            let (id, v, alg) = &keys[usize::from(i)];
            match kms.asymmetric_verify(id, v, *alg, first, second) {
                Ok(_) => {}
                Err(e) => assert!(param_error(&e), "verify: {e:?}"),
            }
            if first.len() == 32 {
                let sig = kms
                    .asymmetric_sign(id, v, *alg, first)
                    .expect("sign a digest")
                    .value;
                assert!(
                    kms.asymmetric_verify(id, v, *alg, first, &sig)
                        .expect("verify")
                        .value
                );
                let mut bad = sig.clone();
                let at = usize::from(second.first().copied().unwrap_or(0)) % bad.len();
                bad[at] ^= 0x01;
                assert!(
                    !kms.asymmetric_verify(id, v, *alg, first, &bad)
                        .map(|r| r.value)
                        .unwrap_or(false)
                );
            }
        }
        i @ 3..=4 => {
            let (id, v, alg) = &keys[usize::from(i)];
            match kms.asymmetric_decrypt(id, v, *alg, rest) {
                Ok(p) => {
                    // Whatever decrypts must be what encrypting it gives back.
                    let again = kms
                        .asymmetric_encrypt(id, v, *alg, p.plaintext.expose_secret())
                        .map(|c| c.ciphertext_blob);
                    if let Ok(c) = again {
                        let round = kms.asymmetric_decrypt(id, v, *alg, &c).expect("round trip");
                        assert_eq!(round.plaintext.expose_secret(), p.plaintext.expose_secret());
                    }
                }
                Err(e) => assert!(param_error(&e), "decrypt: {e:?}"),
            }
        }
        5 => {
            let (id, _, alg) = &keys[5];
            match kms.verify_mac(id, *alg, first, second) {
                Ok(r) => assert!(!r.value || second.len() == 32),
                Err(e) => assert!(param_error(&e), "verify_mac: {e:?}"),
            }
            if let Ok(m) = kms.generate_mac(id, *alg, first) {
                assert!(
                    kms.verify_mac(id, *alg, first, &m.mac)
                        .expect("verify")
                        .value
                );
            }
        }
        i => {
            let (id, v, alg) = if i == 6 { &keys[0] } else { &keys[3] };
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            let mut params = vec![
                (
                    "Action".to_owned(),
                    if i == 6 {
                        "AsymmetricVerify"
                    } else {
                        "AsymmetricDecrypt"
                    }
                    .to_owned(),
                ),
                ("KeyId".to_owned(), id.clone()),
                ("KeyVersionId".to_owned(), v.clone()),
                ("Algorithm".to_owned(), alg.as_str().to_owned()),
            ];
            if i == 6 {
                params.push(("Digest".into(), STANDARD.encode(first)));
                params.push(("Value".into(), text(second)));
            } else {
                params.push(("CiphertextBlob".into(), text(rest)));
            }
            let r = crate::wire::dispatch(kms, &params);
            assert!(
                r.status == 200 || r.status == 400,
                "{}: {}",
                r.status,
                r.body
            );
        }
    }
}

fn asym_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for sel in 0u8..8 {
        seeds.push(vec![sel]);
        let mut s = vec![sel, 32];
        s.extend_from_slice(&[0x5a; 32]);
        s.extend_from_slice(b"0D\x02 \x01\x02");
        seeds.push(s);
        let mut s = vec![sel, 3, 1, 2, 3];
        s.extend(std::iter::repeat_n(0xa5, 256));
        seeds.push(s);
    }
    seeds.push(b"\x06\x20AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAMEQCIA==".to_vec());
    seeds.push(b"\x07\x00MIIBCgKCAQEA!!not base64".to_vec());
    seeds
}

/// The seed corpus of each target, by target name. `tests/fuzz_corpus.rs`
/// checks that the committed files under `fuzz/seeds/` hold them.
pub fn seeds() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    vec![
        ("blob_decrypt", blob_seeds()),
        ("envelope_reader", envelope_seeds()),
        ("import_token", token_seeds()),
        ("encryption_context", context_seeds()),
        ("state_model", model_seeds()),
        ("dispatch", dispatch_seeds()),
        ("asym_inputs", asym_seeds()),
    ]
}

/// Runs the target called `name` on `data`; `false` for an unknown name.
pub fn run(name: &str, data: &[u8]) -> bool {
    match name {
        "blob_decrypt" => blob_decrypt(data),
        "envelope_reader" => envelope_reader(data),
        "import_token" => import_token(data),
        "encryption_context" => encryption_context(data),
        "state_model" => state_model(data),
        "dispatch" => dispatch(data),
        "asym_inputs" => asym_inputs(data),
        _ => return false,
    }
    true
}
