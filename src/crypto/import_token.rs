//! The import token that GetParametersForImport hands out and
//! ImportKeyMaterial takes back (SPEC sections 4, 5 and 8).
//!
//! The token is the base64 (standard alphabet, padded) of this byte string,
//! documented with the rest of the formats in `docs/FORMAT.md`:
//!
//! ```text
//! offset  size  field
//! 0       1     format version, 0x01
//! 1       16    token id (random)
//! 17      1     n = length of the KeyId, 1..=64
//! 18      n     KeyId (ASCII)
//! 18+n    1     wrapping algorithm: 1 RSAES_PKCS1_V1_5, 2 RSAES_OAEP_SHA_1,
//!               3 RSAES_OAEP_SHA_256
//! 19+n    1     wrapping key spec: 1 RSA_2048
//! 20+n    8     expiry, Unix seconds, i64 big-endian
//! 28+n    32    SHA-256 of the wrapping public key (DER SubjectPublicKeyInfo)
//! 60+n    32    tag = HMAC-SHA-256(token key, LABEL || bytes 0..60+n)
//! ```
//!
//! The tag binds every field: the key, the algorithm, the key pair (through
//! its public key hash) and the expiry. The token key is secret to the store
//! (see `crate::ops::import`), so nobody else can make a token that verifies. The
//! private key itself never travels: it is sealed in the store under an id
//! made of the KeyId, the expiry and the token id.
//!
//! Parsing is in [`read`], writing in [`mod@write`]. The tag is checked, in
//! constant time, before any field is interpreted, so a malformed token and a
//! forged one are the same failure.

pub(crate) use crate::secret::hmac_sha256;
use zeroize::Zeroizing;

use crate::types::{WrappingAlgorithm, WrappingKeySpec};

/// The token format this library writes.
pub(crate) const TOKEN_V1: u8 = 1;
/// Bytes of the random token id.
pub(crate) const TOKEN_ID_LEN: usize = 16;
/// Bytes of the public key hash.
pub(crate) const PUBLIC_KEY_HASH_LEN: usize = 32;
/// Bytes of the tag.
pub(crate) const TAG_LEN: usize = 32;
/// The longest KeyId a token may carry.
pub(crate) const MAX_KEY_ID_LEN: usize = 64;
/// Domain separation for the tag.
const TAG_LABEL: &[u8] = b"localkms/import-token/v1\0";
/// Every byte of a v1 token except the KeyId.
const FIXED_LEN: usize = 1 + TOKEN_ID_LEN + 1 + 1 + 1 + 8 + PUBLIC_KEY_HASH_LEN + TAG_LEN;
/// The longest token text accepted: anything longer is rejected before
/// decoding, so a huge parameter costs nothing.
pub(crate) const MAX_TOKEN_TEXT_LEN: usize = (FIXED_LEN + MAX_KEY_ID_LEN).div_ceil(3) * 4;

/// What a token says. Built by GetParametersForImport, checked by
/// ImportKeyMaterial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImportToken {
    pub token_id: [u8; TOKEN_ID_LEN],
    pub key_id: String,
    pub algorithm: WrappingAlgorithm,
    pub key_spec: WrappingKeySpec,
    /// Unix seconds; the token is refused from this instant on.
    pub expire: i64,
    pub public_key_sha256: [u8; PUBLIC_KEY_HASH_LEN],
}

/// The secret key that tags tokens. Zeroized on drop; prints nothing.
pub(crate) struct TokenKey(Zeroizing<[u8; 32]>);

impl TokenKey {
    pub(crate) fn new(bytes: Zeroizing<[u8; 32]>) -> Self {
        Self(bytes)
    }

    /// HMAC-SHA-256 over `LABEL || body`.
    pub(crate) fn tag(&self, body: &[u8]) -> [u8; TAG_LEN] {
        *hmac_sha256(self.0.as_ref(), &[TAG_LABEL, body])
    }
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey([REDACTED])")
    }
}

fn algorithm_code(a: WrappingAlgorithm) -> u8 {
    match a {
        WrappingAlgorithm::RsaesPkcs1V15 => 1,
        WrappingAlgorithm::RsaesOaepSha1 => 2,
        WrappingAlgorithm::RsaesOaepSha256 => 3,
    }
}

fn key_spec_code(s: WrappingKeySpec) -> u8 {
    match s {
        WrappingKeySpec::Rsa2048 => 1,
    }
}

pub(crate) mod write {
    use base64::Engine as _;

    use super::*;

    /// The token's bytes, tagged under `key`. `None` only if the KeyId is
    /// empty or longer than [`MAX_KEY_ID_LEN`] (never for a real key).
    pub(crate) fn encode(token: &ImportToken, key: &TokenKey) -> Option<Vec<u8>> {
        let id = token.key_id.as_bytes();
        if id.is_empty() || id.len() > MAX_KEY_ID_LEN {
            return None;
        }
        let mut out = Vec::with_capacity(FIXED_LEN + id.len());
        out.push(TOKEN_V1);
        out.extend_from_slice(&token.token_id);
        out.push(u8::try_from(id.len()).ok()?);
        out.extend_from_slice(id);
        out.push(algorithm_code(token.algorithm));
        out.push(key_spec_code(token.key_spec));
        out.extend_from_slice(&token.expire.to_be_bytes());
        out.extend_from_slice(&token.public_key_sha256);
        let tag = key.tag(&out);
        out.extend_from_slice(&tag);
        Some(out)
    }

    /// The token as the `ImportToken` text of the API.
    pub(crate) fn encode_text(token: &ImportToken, key: &TokenKey) -> Option<String> {
        encode(token, key).map(|b| base64::engine::general_purpose::STANDARD.encode(b))
    }
}

pub(crate) mod read {
    use base64::Engine as _;
    use subtle::ConstantTimeEq as _;

    use super::*;

    /// Parses and authenticates a token. `None` for anything that is not a
    /// token this store's `key` tagged: bad length, unknown version, bad tag,
    /// unknown algorithm. Expiry and the KeyId are checked by the caller.
    pub(crate) fn decode(bytes: &[u8], key: &TokenKey) -> Option<ImportToken> {
        let (&version, _) = bytes.split_first()?;
        if version != TOKEN_V1 || bytes.len() < FIXED_LEN + 1 {
            return None;
        }
        let id_len = usize::from(*bytes.get(1 + TOKEN_ID_LEN)?);
        if id_len == 0 || id_len > MAX_KEY_ID_LEN || bytes.len() != FIXED_LEN + id_len {
            return None;
        }
        let (body, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        if !bool::from(key.tag(body).ct_eq(tag)) {
            return None;
        }
        // Authentic from here on; every slice below is within `body`, whose
        // length was checked above.
        let mut r = Reader(body);
        r.take(1)?;
        let token_id = r.array::<TOKEN_ID_LEN>()?;
        r.take(1)?;
        let key_id = std::str::from_utf8(r.take(id_len)?).ok()?.to_owned();
        let algorithm = match r.array::<1>()? {
            [1] => WrappingAlgorithm::RsaesPkcs1V15,
            [2] => WrappingAlgorithm::RsaesOaepSha1,
            [3] => WrappingAlgorithm::RsaesOaepSha256,
            _ => return None,
        };
        let key_spec = match r.array::<1>()? {
            [1] => WrappingKeySpec::Rsa2048,
            _ => return None,
        };
        let expire = i64::from_be_bytes(r.array::<8>()?);
        let public_key_sha256 = r.array::<PUBLIC_KEY_HASH_LEN>()?;
        if !r.0.is_empty() {
            return None;
        }
        Some(ImportToken {
            token_id,
            key_id,
            algorithm,
            key_spec,
            expire,
            public_key_sha256,
        })
    }

    /// Decodes the `ImportToken` text, then [`decode`]s it.
    pub(crate) fn decode_text(text: &str, key: &TokenKey) -> Option<ImportToken> {
        if text.len() > MAX_TOKEN_TEXT_LEN {
            return None;
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?;
        decode(&bytes, key)
    }

    /// A cursor that refuses to read past the end.
    struct Reader<'a>(&'a [u8]);

    impl<'a> Reader<'a> {
        fn take(&mut self, n: usize) -> Option<&'a [u8]> {
            if n > self.0.len() {
                return None;
            }
            let (head, rest) = self.0.split_at(n);
            self.0 = rest;
            Some(head)
        }

        fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
            self.take(N)?.try_into().ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> TokenKey {
        TokenKey::new(Zeroizing::new([b; 32]))
    }

    fn sample() -> ImportToken {
        ImportToken {
            token_id: [0x11; TOKEN_ID_LEN],
            key_id: "5a1e6f2c-0b7d-4c3e-9f1a-2b3c4d5e6f70".into(),
            algorithm: WrappingAlgorithm::RsaesOaepSha256,
            key_spec: WrappingKeySpec::Rsa2048,
            expire: 1_700_086_400,
            public_key_sha256: [0x22; PUBLIC_KEY_HASH_LEN],
        }
    }

    /// Reads a known-answer file: `name: value` lines, `#` comments.
    fn field<'a>(file: &'a str, name: &str) -> &'a str {
        file.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
            .unwrap_or_else(|| panic!("{name} missing from the vector file"))
    }

    fn hex(s: &str) -> Vec<u8> {
        base16ct::mixed::decode_vec(s).expect("hex")
    }

    #[test]
    fn golden_vector() {
        let file = include_str!("../../tests/data/import_token_v1.txt");
        let k = TokenKey::new(Zeroizing::new(
            hex(field(file, "token_key")).try_into().expect("32 bytes"),
        ));
        let token = ImportToken {
            token_id: hex(field(file, "token_id")).try_into().expect("16 bytes"),
            key_id: field(file, "key_id").into(),
            algorithm: field(file, "algorithm").parse().expect("algorithm"),
            key_spec: field(file, "key_spec").parse().expect("key spec"),
            expire: field(file, "expire").parse().expect("expire"),
            public_key_sha256: hex(field(file, "public_key_sha256"))
                .try_into()
                .expect("32 bytes"),
        };
        let expect = field(file, "expect");
        assert_eq!(write::encode_text(&token, &k).as_deref(), Some(expect));
        assert_eq!(read::decode_text(expect, &k), Some(token));
    }

    #[test]
    fn round_trip_for_every_algorithm() {
        for a in WrappingAlgorithm::ALL {
            let t = ImportToken {
                algorithm: *a,
                ..sample()
            };
            let bytes = write::encode(&t, &key(1)).expect("encodes");
            assert_eq!(bytes.len(), FIXED_LEN + 36);
            assert_eq!(read::decode(&bytes, &key(1)), Some(t));
        }
    }

    #[test]
    fn another_key_or_any_change_is_refused() {
        let bytes = write::encode(&sample(), &key(1)).expect("encodes");
        assert_eq!(read::decode(&bytes, &key(2)), None);
        for bit in 0..bytes.len() * 8 {
            let mut t = bytes.clone();
            t[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(read::decode(&t, &key(1)), None, "bit {bit}");
        }
        for len in 0..bytes.len() {
            assert_eq!(read::decode(&bytes[..len], &key(1)), None, "len {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(read::decode(&longer, &key(1)), None);
    }

    #[test]
    fn a_tagged_token_with_unknown_codes_is_refused() {
        // Authentic bytes whose algorithm code is unknown: the reader must
        // still refuse them rather than guess.
        let mut bytes = write::encode(&sample(), &key(1)).expect("encodes");
        let at = 1 + TOKEN_ID_LEN + 1 + 36;
        for code in [0u8, 4, 255] {
            bytes[at] = code;
            let body_len = bytes.len() - TAG_LEN;
            let tag = key(1).tag(&bytes[..body_len]);
            bytes[body_len..].copy_from_slice(&tag);
            assert_eq!(read::decode(&bytes, &key(1)), None, "code {code}");
        }
    }

    #[test]
    fn text_limits() {
        assert_eq!(MAX_TOKEN_TEXT_LEN, 208, "as docs/FORMAT.md says");
        let text = write::encode_text(&sample(), &key(1)).expect("encodes");
        assert_eq!(text.len(), 172, "as docs/FORMAT.md says");
        assert_eq!(
            read::decode_text(&"A".repeat(MAX_TOKEN_TEXT_LEN + 4), &key(1)),
            None
        );
        assert_eq!(read::decode_text("not base64!", &key(1)), None);
        assert_eq!(read::decode_text("", &key(1)), None);
        let long_id = ImportToken {
            key_id: "k".repeat(MAX_KEY_ID_LEN + 1),
            ..sample()
        };
        assert_eq!(write::encode(&long_id, &key(1)), None);
        let max_id = ImportToken {
            key_id: "k".repeat(MAX_KEY_ID_LEN),
            ..sample()
        };
        let text = write::encode_text(&max_id, &key(1)).expect("encodes");
        assert!(text.len() <= MAX_TOKEN_TEXT_LEN);
        assert_eq!(read::decode_text(&text, &key(1)), Some(max_id));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = read::decode(&bytes, &key(1));
        }
    }
}
