//! Request authentication (SPEC section 7): the v1 `HMAC-SHA1` signature of
//! the 2019 reference (section 1.4) and `ACS3-HMAC-SHA256`, the current
//! SDKs' default.
//!
//! [`Verifier::verify`] takes an HTTP request as received and returns its
//! authenticated parameters, ready for [`super::dispatch`]. It checks, in
//! order: the HTTP method; that a signature is present and complete; the
//! access key id; the signature (compared in constant time); the timestamp,
//! which must be within 15 minutes of the [`Kms`] clock; and that the nonce
//! was not used within that window. A nonce is recorded only once every
//! other check has passed, so a forged request cannot burn one.
//!
//! Nonces are at most [`MAX_NONCE_CHARS`] characters. A nonce is remembered
//! until its request's timestamp leaves the window, and forgotten in order
//! of expiry: each request drops the nonces that expired since the last one,
//! so memory follows the requests of the last half hour and no request scans
//! every nonce. The parameters a signature check relies on (`Signature`,
//! `AccessKeyId`, `Timestamp`, `SignatureNonce`, ... for v1; the
//! `x-acs-action`, `x-acs-date` and `x-acs-signature-nonce` headers for ACS3)
//! are refused when given more than once.
//!
//! v1: the string to sign is `{METHOD}&%2F&{enc(canonical query)}`, where the
//! canonical query is every parameter of the query string and the form body
//! except `Signature`, sorted by name, as `enc(name)=enc(value)` joined by
//! `&`, and `enc` is RFC 3986 percent-encoding (only `A-Z a-z 0-9 - _ . ~`
//! stay as they are). The signature is base64 of HMAC-SHA1 under
//! `{secret}&`.
//!
//! ACS3: the `Authorization` header is `ACS3-HMAC-SHA256
//! Credential={id},SignedHeaders={a;b;..},Signature={hex}`. The canonical
//! request is the method, the path, the sorted encoded query, one
//! `name:value` line per signed header (lowercase names, sorted, trimmed
//! values; repeated headers joined by `,`), the signed header list, and the
//! `x-acs-content-sha256` header, which must be the hex SHA-256 of the body.
//! The signature is hex HMAC-SHA256 under the secret of
//! `ACS3-HMAC-SHA256\n{hex SHA-256 of the canonical request}`. The action is
//! the `x-acs-action` header. Every `x-acs-*` header, `host` and
//! `content-type` that the request carries must be signed.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{KeyInit as _, Mac as _};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use crate::clock::parse_timestamp;
use crate::error::{Error, Result};
use crate::kms::Kms;

/// How far a request's timestamp may be from the clock, in seconds.
pub const SIGNATURE_WINDOW_SECONDS: i64 = 15 * 60;

/// The most nonces remembered at once. Past this, once expired nonces are
/// dropped, new requests are throttled rather than letting memory grow.
const MAX_NONCES: usize = 1 << 20;

/// The longest `SignatureNonce` / `x-acs-signature-nonce` accepted, in
/// characters. The SDKs send 32 to 36 (a UUID or 32 hex digits).
pub const MAX_NONCE_CHARS: usize = 128;

/// The v1 parameters that must appear at most once.
const V1_SINGLE: &[&str] = &[
    "Signature",
    "SignatureMethod",
    "SignatureVersion",
    "AccessKeyId",
    "Timestamp",
    "SignatureNonce",
];

/// The ACS3 headers that must appear at most once: which of two values was
/// signed and meant would be ambiguous.
const ACS3_SINGLE: &[&str] = &["x-acs-action", "x-acs-date", "x-acs-signature-nonce"];

/// The ACS3 algorithm name.
const ACS3: &str = "ACS3-HMAC-SHA256";

/// RFC 3986 unreserved characters stay; everything else is encoded.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// An HTTP request as received, before any parsing.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The request target as sent: the path and an optional `?query`.
    pub target: &'a str,
    /// The headers, names in any case.
    pub headers: &'a [(String, String)],
    /// The raw body.
    pub body: &'a [u8],
}

impl<'a> HttpRequest<'a> {
    /// The parameters of the query string and the form body, as sent and
    /// not verified (for example, to answer a request that failed
    /// verification in the `Format` it asked for).
    pub fn params_unverified(&self) -> Vec<(String, String)> {
        let mut params = parse_form(self.query().as_bytes());
        params.extend(self.form_body());
        params
    }

    fn path(&self) -> &str {
        self.target.split_once('?').map_or(self.target, |(p, _)| p)
    }

    fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }

    /// The values of a header, in the order received.
    fn header_values<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        let headers: &'a [(String, String)] = self.headers;
        headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn header(&self, name: &str) -> Option<&'a str> {
        self.header_values(name).next()
    }

    /// The form body's parameters, when the body is a form.
    fn form_body(&self) -> Vec<(String, String)> {
        let is_form = self.header("content-type").is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
        if is_form {
            parse_form(self.body)
        } else {
            Vec::new()
        }
    }
}

/// Checks request signatures for one access key. Remembers recent nonces, so
/// keep one `Verifier` for the life of a server.
pub struct Verifier {
    access_key_id: String,
    secret: Zeroizing<String>,
    nonces: Mutex<Nonces>,
}

/// The nonces of the window: a set for lookups, and a heap of the same
/// nonces ordered by expiry for eviction.
#[derive(Default)]
struct Nonces {
    /// Nonce -> the time after which a replay is refused by its timestamp
    /// anyway, so the nonce can be forgotten.
    live: HashMap<Arc<str>, i64>,
    /// The same nonces, soonest expiry first.
    by_expiry: BinaryHeap<Reverse<(i64, Arc<str>)>>,
}

impl Nonces {
    /// Forgets every nonce that expired before `now`: O(log n) each, and
    /// only the expired ones are looked at.
    fn evict(&mut self, now: i64) {
        while let Some(Reverse((t, _))) = self.by_expiry.peek() {
            if *t >= now {
                break;
            }
            if let Some(Reverse((t, nonce))) = self.by_expiry.pop() {
                // A nonce is in the heap once: it is only inserted again
                // after it was evicted.
                if self.live.get(&nonce) == Some(&t) {
                    self.live.remove(&nonce);
                }
            }
        }
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier accepting requests signed with this access key.
    pub fn new(access_key_id: impl Into<String>, access_key_secret: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret: Zeroizing::new(access_key_secret.into()),
            nonces: Mutex::new(Nonces::default()),
        }
    }

    /// How many nonces are remembered now (those of requests whose timestamp
    /// is still within the window, as of the last request).
    pub fn remembered_nonces(&self) -> usize {
        self.nonces.lock().map_or(0, |n| n.live.len())
    }

    /// Verifies `req` by `kms`'s clock and returns its authenticated
    /// parameters: the query's and the form body's, and for ACS3 the
    /// `Action` from `x-acs-action`.
    ///
    /// # Errors
    /// `UnsupportedHTTPMethod` (not GET or POST); `IncompleteSignature` (no
    /// signature, an incomplete one, or a wrong one); `MissingParameter`
    /// (`AccessKeyId` or `SignatureNonce` of a v1 request);
    /// `InvalidAccessKeyId.NotFound`; `IllegalTimestamp`;
    /// `InvalidParameter` for a nonce longer than [`MAX_NONCE_CHARS`] or a
    /// signature parameter or header given more than once;
    /// `SignatureNonceUsed`; `Rejected.Throttling` when too many nonces are
    /// live at once.
    pub fn verify(&self, kms: &Kms, req: &HttpRequest<'_>) -> Result<Vec<(String, String)>> {
        if req.method != "GET" && req.method != "POST" {
            return Err(Error::UnsupportedHttpMethod(crate::error::shorten(
                req.method,
            )));
        }
        let authorization = req.header("authorization");
        let Signed {
            params,
            timestamp,
            nonce,
        } = match authorization {
            Some(auth) if auth.trim_start().starts_with(ACS3) => self.verify_acs3(req, auth)?,
            Some(_) => {
                return Err(Error::IncompleteSignature(
                    "the Authorization header names an unsupported algorithm".into(),
                ));
            }
            None => self.verify_v1(req)?,
        };
        let now = kms.now();
        let t = parse_timestamp(&timestamp).ok_or(Error::IllegalTimestamp)?;
        if t.abs_diff(now) > SIGNATURE_WINDOW_SECONDS.unsigned_abs() {
            return Err(Error::IllegalTimestamp);
        }
        self.use_nonce(nonce, t.saturating_add(SIGNATURE_WINDOW_SECONDS), now)?;
        Ok(params)
    }

    /// Checks a v1 signature; returns the parameters, timestamp and nonce.
    fn verify_v1(&self, req: &HttpRequest<'_>) -> Result<Signed> {
        let params = req.params_unverified();
        for name in V1_SINGLE {
            if params.iter().filter(|(k, _)| k == name).count() > 1 {
                return Err(Error::invalid(name, "is given more than once"));
            }
        }
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let Some(signature) = get("Signature") else {
            return Err(Error::IncompleteSignature(
                "the request is not signed".into(),
            ));
        };
        if get("SignatureMethod") != Some("HMAC-SHA1") {
            return Err(Error::IncompleteSignature(
                "SignatureMethod must be HMAC-SHA1".into(),
            ));
        }
        if get("SignatureVersion").is_some_and(|v| v != "1.0") {
            return Err(Error::IncompleteSignature(
                "SignatureVersion must be 1.0".into(),
            ));
        }
        let id = get("AccessKeyId")
            .filter(|v| !v.is_empty())
            .ok_or(Error::MissingParameter("AccessKeyId"))?;
        self.check_access_key_id(id)?;
        let expected = v1_signature(req.method, &params, &self.secret);
        if !bool::from(expected.as_bytes().ct_eq(signature.as_bytes())) {
            return Err(Error::IncompleteSignature(
                "the signature does not match".into(),
            ));
        }
        let timestamp = get("Timestamp").ok_or(Error::IllegalTimestamp)?.to_owned();
        let nonce = get("SignatureNonce")
            .filter(|v| !v.is_empty())
            .ok_or(Error::MissingParameter("SignatureNonce"))?;
        let nonce = check_nonce_length("SignatureNonce", nonce)?.to_owned();
        Ok(Signed {
            params,
            timestamp,
            nonce,
        })
    }

    /// Checks an ACS3 signature; returns the parameters, timestamp and nonce.
    fn verify_acs3(&self, req: &HttpRequest<'_>, authorization: &str) -> Result<Signed> {
        let auth = parse_acs3_authorization(authorization)?;
        self.check_access_key_id(auth.credential)?;
        let signed: Vec<String> = auth
            .signed_headers
            .split(';')
            .map(str::to_ascii_lowercase)
            .collect();
        // `x-acs-date` and `x-acs-signature-nonce` are checked after the
        // signature, as v1's `Timestamp` and `SignatureNonce` are.
        for name in ACS3_SINGLE {
            if req.header_values(name).nth(1).is_some() {
                return Err(Error::invalid(name, "is given more than once"));
            }
        }
        for required in ["host", "x-acs-action", "x-acs-content-sha256"] {
            if req.header(required).is_none() {
                return Err(Error::IncompleteSignature(
                    format!("the header {required} is missing").into(),
                ));
            }
        }
        for (name, _) in req.headers {
            let name = name.to_ascii_lowercase();
            let must_sign = name.starts_with("x-acs-") || name == "host" || name == "content-type";
            if must_sign && !signed.contains(&name) {
                return Err(Error::IncompleteSignature(
                    format!("the header {} is not signed", crate::error::shorten(&name)).into(),
                ));
            }
        }
        let content_hash = hex(&Sha256::digest(req.body));
        let claimed_hash = req.header("x-acs-content-sha256").unwrap_or_default();
        if !content_hash.eq_ignore_ascii_case(claimed_hash.trim()) {
            return Err(Error::IncompleteSignature(
                "x-acs-content-sha256 does not match the body".into(),
            ));
        }
        let query = parse_form(req.query().as_bytes());
        let mut canonical_headers = String::new();
        for name in &signed {
            let mut values: Vec<&str> = req.header_values(name).map(str::trim).collect();
            if values.is_empty() {
                return Err(Error::IncompleteSignature(
                    format!(
                        "the signed header {} is missing",
                        crate::error::shorten(name)
                    )
                    .into(),
                ));
            }
            values.sort_unstable();
            canonical_headers.push_str(name);
            canonical_headers.push(':');
            canonical_headers.push_str(&values.join(","));
            canonical_headers.push('\n');
        }
        let canonical_request = format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            req.method,
            req.path(),
            canonical_query(&query),
            canonical_headers,
            auth.signed_headers,
            claimed_hash.trim(),
        );
        let string_to_sign = format!(
            "{ACS3}\n{}",
            hex(&Sha256::digest(canonical_request.as_bytes()))
        );
        let expected = hex(&hmac_sha256(
            self.secret.as_bytes(),
            string_to_sign.as_bytes(),
        ));
        if !bool::from(
            expected
                .as_bytes()
                .ct_eq(auth.signature.to_ascii_lowercase().as_bytes()),
        ) {
            return Err(Error::IncompleteSignature(
                "the signature does not match".into(),
            ));
        }
        let mut params = query;
        params.extend(req.form_body());
        let action = req.header("x-acs-action").unwrap_or_default();
        params.push(("Action".into(), action.to_owned()));
        let timestamp = req.header("x-acs-date").unwrap_or_default().to_owned();
        let nonce = req
            .header("x-acs-signature-nonce")
            .unwrap_or_default()
            .to_owned();
        if nonce.is_empty() {
            return Err(Error::MissingParameter("SignatureNonce"));
        }
        check_nonce_length("x-acs-signature-nonce", &nonce)?;
        Ok(Signed {
            params,
            timestamp,
            nonce,
        })
    }

    fn check_access_key_id(&self, id: &str) -> Result<()> {
        // The id is not secret, but comparing in constant time costs nothing.
        if bool::from(id.as_bytes().ct_eq(self.access_key_id.as_bytes())) {
            Ok(())
        } else {
            Err(Error::InvalidAccessKeyId)
        }
    }

    /// Records `nonce` until `forget_after`; refuses one still remembered.
    fn use_nonce(&self, nonce: String, forget_after: i64, now: i64) -> Result<()> {
        let mut nonces = self.nonces.lock().map_err(|_| Error::InternalFailure)?;
        nonces.evict(now);
        // Every nonce left is live: a replay.
        if nonces.live.contains_key(nonce.as_str()) {
            return Err(Error::SignatureNonceUsed);
        }
        if nonces.live.len() >= MAX_NONCES {
            return Err(Error::Throttling);
        }
        let nonce: Arc<str> = nonce.into();
        nonces.live.insert(Arc::clone(&nonce), forget_after);
        nonces.by_expiry.push(Reverse((forget_after, nonce)));
        Ok(())
    }
}

/// Refuses a nonce longer than [`MAX_NONCE_CHARS`], naming where it came from.
fn check_nonce_length<'n>(param: &'static str, nonce: &'n str) -> Result<&'n str> {
    if nonce.chars().nth(MAX_NONCE_CHARS).is_some() {
        return Err(Error::invalid(
            param,
            format!("must be at most {MAX_NONCE_CHARS} characters"),
        ));
    }
    Ok(nonce)
}

/// What a correct signature vouches for.
struct Signed {
    params: Vec<(String, String)>,
    timestamp: String,
    nonce: String,
}

/// The parts of an ACS3 `Authorization` header.
struct Acs3Authorization<'a> {
    credential: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

fn parse_acs3_authorization(header: &str) -> Result<Acs3Authorization<'_>> {
    let incomplete = || Error::IncompleteSignature("the Authorization header is malformed".into());
    let rest = header
        .trim()
        .strip_prefix(ACS3)
        .ok_or_else(incomplete)?
        .trim_start();
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=').ok_or_else(incomplete)?;
        let slot = match k {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => return Err(incomplete()),
        };
        if slot.replace(v).is_some() {
            return Err(incomplete());
        }
    }
    match (credential, signed_headers, signature) {
        (Some(credential), Some(signed_headers), Some(signature))
            if !signed_headers.is_empty() && !signature.is_empty() =>
        {
            Ok(Acs3Authorization {
                credential,
                signed_headers,
                signature,
            })
        }
        _ => Err(incomplete()),
    }
}

/// The v1 `HMAC-SHA1` signature of a request with these parameters (every
/// parameter of the query and the form body; a `Signature` among them is
/// left out), as base64. For clients and tests.
///
/// ```
/// use localkms::wire::sign::v1_signature;
/// let params: Vec<(String, String)> = [
///     ("Action", "CreateKey"), ("Format", "json"), ("Version", "2016-01-20"),
///     ("AccessKeyId", "testid"), ("SignatureMethod", "HMAC-SHA1"),
///     ("Timestamp", "2016-03-28T03:13:08Z"), ("SignatureVersion", "1.0"),
/// ].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
/// assert_eq!(v1_signature("GET", &params, "testsecret"), "41wk2SSX1GJh7fwnc5eqOfiJPFg=");
/// ```
pub fn v1_signature(method: &str, params: &[(String, String)], secret: &str) -> String {
    let signed: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "Signature")
        .cloned()
        .collect();
    let string_to_sign = format!(
        "{method}&{}&{}",
        encode("/"),
        encode(&canonical_query(&signed))
    );
    let mut key = Zeroizing::new(String::with_capacity(secret.len() + 1));
    key.push_str(secret);
    key.push('&');
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes())
        .expect("HMAC takes a key of any length"); // safe: HMAC takes a key of any length
    mac.update(string_to_sign.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

/// `enc(name)=enc(value)` pairs sorted by encoded name, then value, joined
/// by `&`.
fn canonical_query(params: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> =
        params.iter().map(|(k, v)| (encode(k), encode(v))).collect();
    encoded.sort_unstable();
    let mut out = String::new();
    for (i, (k, v)) in encoded.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// RFC 3986 percent-encoding of UTF-8 text.
fn encode(s: &str) -> String {
    utf8_percent_encode(s, ENCODE).to_string()
}

/// Parses `application/x-www-form-urlencoded` text (also a query string):
/// `&`-separated `name=value`, `+` is a space, `%XX` a byte. Bytes that are
/// not UTF-8 become U+FFFD, so such a request fails its signature check.
pub(crate) fn parse_form(input: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(input).into_owned().collect()
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac =
        hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length"); // safe: HMAC takes a key of any length
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    base16ct::lower::encode_string(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// The reference's CreateKey example (SPEC section 7).
    #[test]
    fn v1_reference_vector() {
        let params = owned(&[
            ("Action", "CreateKey"),
            ("Format", "json"),
            ("Version", "2016-01-20"),
            ("AccessKeyId", "testid"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("Timestamp", "2016-03-28T03:13:08Z"),
            ("SignatureVersion", "1.0"),
        ]);
        assert_eq!(
            v1_signature("GET", &params, "testsecret"),
            "41wk2SSX1GJh7fwnc5eqOfiJPFg="
        );
        assert_ne!(
            v1_signature("POST", &params, "testsecret"),
            "41wk2SSX1GJh7fwnc5eqOfiJPFg="
        );
        assert_ne!(
            v1_signature("GET", &params, "testsecreT"),
            "41wk2SSX1GJh7fwnc5eqOfiJPFg="
        );
    }

    #[test]
    fn encoding_is_rfc3986() {
        assert_eq!(encode("a-_.~ +*/=é"), "a-_.~%20%2B%2A%2F%3D%C3%A9");
    }

    #[test]
    fn form_parsing() {
        assert_eq!(
            parse_form(b"a=1+2&b=%2B%2f&&c&d=&=e&f=%zz%C3%A9"),
            owned(&[
                ("a", "1 2"),
                ("b", "+/"),
                ("c", ""),
                ("d", ""),
                ("", "e"),
                ("f", "%zzé")
            ])
        );
        assert_eq!(parse_form(b"x=%FF"), owned(&[("x", "\u{fffd}")]));
    }

    #[test]
    fn acs3_authorization_parsing() {
        let a = parse_acs3_authorization(
            "ACS3-HMAC-SHA256 Credential=id,SignedHeaders=host;x-acs-date,Signature=ab",
        )
        .unwrap();
        assert_eq!(
            (a.credential, a.signed_headers, a.signature),
            ("id", "host;x-acs-date", "ab")
        );
        for bad in [
            "ACS3-HMAC-SHA256",
            "ACS3-HMAC-SHA256 Credential=id",
            "ACS3-HMAC-SHA256 Credential=id,SignedHeaders=host",
            "ACS3-HMAC-SHA256 Credential=id,SignedHeaders=host,Signature=",
            "ACS3-HMAC-SHA256 Credential=id,Credential=id,SignedHeaders=h,Signature=a",
            "ACS3-HMAC-SHA256 Credential=id,SignedHeaders=h,Signature=a,Extra=1",
            "HMAC Credential=id,SignedHeaders=h,Signature=a",
        ] {
            assert_eq!(
                parse_acs3_authorization(bad)
                    .map(|_| ())
                    .unwrap_err()
                    .code(),
                "IncompleteSignature",
                "{bad}"
            );
        }
    }
}
