//! `EncryptionContext`: a JSON object of string -> string that is
//! authenticated with a ciphertext but never stored in it (SPEC sections 1, 5
//! and 8).
//!
//! The context enters the AEAD's associated data through one canonical,
//! unambiguous encoding: pairs sorted by key (byte order), every string
//! length-prefixed, so `{"ab":"c"}` and `{"a":"bc"}` never collide and key
//! order in the JSON text does not matter:
//!
//! ```text
//! count u32 BE || for each pair: len(key) u32 BE || key || len(value) u32 BE || value
//! ```
//!
//! `{}`, `""` and no context at all are the same context (count 0).

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserializer;
use serde::de::{self, MapAccess, Visitor};

use crate::error::{Error, Result};

/// The wire name of the parameter.
const PARAM: &str = "EncryptionContext";

/// The longest `EncryptionContext`, in characters of JSON text.
pub const MAX_ENCRYPTION_CONTEXT_CHARS: usize = 8192;

/// A validated `EncryptionContext` and its canonical encoding.
///
/// ```
/// use localkms::EncryptionContext;
/// let a = EncryptionContext::from_json(r#"{"a":"1","b":"2"}"#)?;
/// let b = EncryptionContext::from_pairs([("b", "2"), ("a", "1")])?;
/// assert_eq!(a, b);
/// assert_ne!(
///     EncryptionContext::from_json(r#"{"ab":"c"}"#)?,
///     EncryptionContext::from_json(r#"{"a":"bc"}"#)?,
/// );
/// # Ok::<(), localkms::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptionContext {
    pairs: BTreeMap<String, String>,
    /// The canonical encoding, computed once.
    encoded: Vec<u8>,
}

impl fmt::Debug for EncryptionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.pairs.iter()).finish()
    }
}

impl Default for EncryptionContext {
    fn default() -> Self {
        Self::empty()
    }
}

impl EncryptionContext {
    /// The empty context (the same as `{}` or no context).
    pub fn empty() -> Self {
        Self::from_map(BTreeMap::new())
    }

    /// Parses the `EncryptionContext` parameter. An empty string is no
    /// context (SPEC section 8).
    ///
    /// # Errors
    /// `InvalidParameter` naming `EncryptionContext` when the text is longer
    /// than 8192 characters, is not a JSON object, has a value that is not a
    /// string, or repeats a key.
    pub fn from_json(text: &str) -> Result<Self> {
        if text.is_empty() {
            return Ok(Self::empty());
        }
        if text.chars().count() > MAX_ENCRYPTION_CONTEXT_CHARS {
            return Err(Error::invalid(PARAM, "must be at most 8192 characters"));
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let map = de
            .deserialize_map(StrictMap)
            .and_then(|m| de.end().map(|()| m))
            .map_err(|_| {
                Error::invalid(
                    PARAM,
                    "must be a JSON object of string keys to string values, each key once",
                )
            })?;
        Ok(Self::from_map(map))
    }

    /// Builds a context from key/value pairs.
    ///
    /// # Errors
    /// `InvalidParameter` naming `EncryptionContext` when a key repeats, or
    /// when the context as JSON text would exceed 8192 characters.
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<Self>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let mut map = BTreeMap::new();
        for (k, v) in pairs {
            if map.insert(k.into(), v.into()).is_some() {
                return Err(Error::invalid(PARAM, "repeats a key"));
            }
        }
        let ctx = Self::from_map(map);
        if ctx.to_json().chars().count() > MAX_ENCRYPTION_CONTEXT_CHARS {
            return Err(Error::invalid(PARAM, "must be at most 8192 characters"));
        }
        Ok(ctx)
    }

    fn from_map(pairs: BTreeMap<String, String>) -> Self {
        let encoded = encode(&pairs);
        Self { pairs, encoded }
    }

    /// True for the empty context.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The pairs, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The context as compact JSON text with keys sorted.
    pub fn to_json(&self) -> String {
        // safe: a map of strings always serializes.
        serde_json::to_string(&self.pairs).unwrap_or_default()
    }

    /// The canonical encoding that is authenticated (see the module docs).
    pub(crate) fn encoded(&self) -> &[u8] {
        &self.encoded
    }
}

/// The canonical encoding of sorted pairs. Lengths fit in u32: a context is at
/// most 8192 characters of JSON.
fn encode(pairs: &BTreeMap<String, String>) -> Vec<u8> {
    let len = 4 + pairs
        .iter()
        .map(|(k, v)| 8 + k.len() + v.len())
        .sum::<usize>();
    let mut out = Vec::with_capacity(len);
    let count = u32::try_from(pairs.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&count.to_be_bytes());
    for (k, v) in pairs {
        for s in [k, v] {
            let n = u32::try_from(s.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&n.to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
    }
    out
}

/// Deserializes a JSON object of string -> string, refusing repeated keys
/// (serde_json's own maps keep the last value silently).
struct StrictMap;

impl<'de> Visitor<'de> for StrictMap {
    type Value = BTreeMap<String, String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of string values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut map = BTreeMap::new();
        while let Some((k, v)) = access.next_entry::<String, String>()? {
            if map.insert(k, v).is_some() {
                return Err(de::Error::custom("repeated key"));
            }
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(s: &str) -> EncryptionContext {
        EncryptionContext::from_json(s).expect("valid context")
    }

    fn invalid(s: &str) {
        let e = EncryptionContext::from_json(s).expect_err(s);
        assert_eq!(e.code(), "InvalidParameter", "{s}");
        assert!(e.to_string().contains("EncryptionContext"), "{s}");
    }

    #[test]
    fn key_order_does_not_matter() {
        assert_eq!(ctx(r#"{"a":"1","b":"2"}"#), ctx(r#"{"b":"2","a":"1"}"#));
        assert_eq!(
            ctx(r#"{"a":"1","b":"2"}"#).encoded(),
            ctx(r#" { "b" : "2" , "a" : "1" } "#).encoded()
        );
    }

    #[test]
    fn encoding_is_unambiguous() {
        assert_ne!(
            ctx(r#"{"ab":"c"}"#).encoded(),
            ctx(r#"{"a":"bc"}"#).encoded()
        );
        assert_ne!(
            ctx(r#"{"a":"b","c":"d"}"#).encoded(),
            ctx(r#"{"a":"b\u0000c"}"#).encoded()
        );
        assert_ne!(ctx(r#"{"":""}"#).encoded(), ctx("{}").encoded());
    }

    #[test]
    fn encoding_is_length_prefixed_and_sorted() {
        assert_eq!(
            ctx(r#"{"b":"xy","a":""}"#).encoded(),
            [
                &[0, 0, 0, 2][..],
                &[0, 0, 0, 1],
                b"a",
                &[0, 0, 0, 0],
                &[0, 0, 0, 1],
                b"b",
                &[0, 0, 0, 2],
                b"xy"
            ]
            .concat()
        );
    }

    #[test]
    fn empty_object_empty_text_and_none_are_equal() {
        assert_eq!(ctx("{}"), EncryptionContext::empty());
        assert_eq!(ctx(""), EncryptionContext::empty());
        assert_eq!(ctx(" { } "), EncryptionContext::default());
        assert!(ctx("{}").is_empty());
        assert_eq!(EncryptionContext::empty().encoded(), [0, 0, 0, 0]);
    }

    #[test]
    fn anything_but_an_object_of_strings_is_invalid() {
        for s in [
            "[]",
            "null",
            "\"x\"",
            "1",
            "{",
            " ",
            r#"{"a":1}"#,
            r#"{"a":null}"#,
            r#"{"a":["b"]}"#,
            r#"{"a":{"b":"c"}}"#,
            r#"{"a":"b"} x"#,
            r#"{"a":"b"}{}"#,
            r#"{a:"b"}"#,
            r#"{"a":"b",}"#,
        ] {
            invalid(s);
        }
    }

    #[test]
    fn repeated_keys_are_invalid() {
        invalid(r#"{"a":"1","a":"2"}"#);
        invalid(r#"{"a":"1","b":"","a":"1"}"#);
        assert_eq!(
            EncryptionContext::from_pairs([("a", "1"), ("a", "2")])
                .unwrap_err()
                .code(),
            "InvalidParameter"
        );
    }

    #[test]
    fn at_most_8192_characters() {
        // {"k":"…"} is 8 characters plus the value.
        let fits = format!(r#"{{"k":"{}"}}"#, "é".repeat(8192 - 8));
        assert_eq!(fits.chars().count(), 8192);
        assert!(fits.len() > 8192, "characters, not bytes, are counted");
        ctx(&fits);
        let over = format!(r#"{{"k":"{}"}}"#, "é".repeat(8192 - 7));
        invalid(&over);
        let e = EncryptionContext::from_pairs([("k", "v".repeat(8192))]).unwrap_err();
        assert!(e.to_string().contains("EncryptionContext"));
        assert!(EncryptionContext::from_pairs([("k", "v".repeat(8192 - 8))]).is_ok());
    }

    #[test]
    fn json_round_trip() {
        let c = ctx(r#"{"b":"\"q\"","a":"é"}"#);
        assert_eq!(ctx(&c.to_json()), c);
        assert_eq!(c.iter().collect::<Vec<_>>(), [("a", "é"), ("b", "\"q\"")]);
    }
}
