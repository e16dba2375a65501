//! Tags on keys: TagResource, UntagResource, ListResourceTags, and the tags
//! of CreateKey (SPEC sections 4 and 6), with the parsers of the wire
//! parameters `Tags` and `TagKeys`.
//!
//! None of these operations takes an alias as its `KeyId` (SPEC section 4
//! marks none "alias ok"): an alias is `Unsupported.Alias`. Tags may be
//! changed in every key state. A key holds at most [`MAX_TAGS_PER_KEY`] tags,
//! counted after the merge; its tags are deleted in the same batch as the key.
//!
//! "Letters" are ASCII letters, as the reference's "uppercase and lowercase
//! letters" says; reserved prefixes are matched case-sensitively.
//!
//! Store layout:
//!
//! | ns | id | value |
//! | --- | --- | --- |
//! | `tag` | KeyId `/` TagKey | TagValue (UTF-8) |

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::kms::Kms;
use crate::store::{Batch, Scan};

/// Listed in [`crate::store::record::PER_KEY_NAMESPACES`]: purged with its key.
pub(crate) const NS_TAG: &str = "tag";

/// The most tags one key may have.
pub const MAX_TAGS_PER_KEY: usize = 10;
/// The longest `TagKey`, in characters.
pub(crate) const MAX_TAG_KEY_CHARS: usize = 128;
/// The longest `TagValue`, in characters.
pub(crate) const MAX_TAG_VALUE_CHARS: usize = 256;
/// What [`Error::LimitExceeded`] names when a key would have too many tags.
const TAG_LIMIT: &str = "tags per key (at most 10; parameter Tags)";
/// `TagKey` prefixes reserved for the service.
pub(crate) const RESERVED_TAG_KEY_PREFIXES: &[&str] = &["acs:", "aliyun"];

fn tag_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '.' | '+' | '=' | '@' | ':')
}

/// Why a tag key is not valid, if it is not.
fn tag_key_problem(key: &str) -> Option<&'static str> {
    let n = key.chars().count();
    if n == 0 || n > MAX_TAG_KEY_CHARS {
        Some("TagKey must have 1 to 128 characters")
    } else if !key.chars().all(tag_char) {
        Some("TagKey may contain only letters, digits and / _ - . + = @ :")
    } else if RESERVED_TAG_KEY_PREFIXES.iter().any(|p| key.starts_with(p)) {
        Some("TagKey may not start with acs: or aliyun")
    } else {
        None
    }
}

/// Why a tag value is not valid, if it is not.
fn tag_value_problem(value: &str) -> Option<&'static str> {
    if value.chars().count() > MAX_TAG_VALUE_CHARS {
        Some("TagValue must have at most 256 characters")
    } else if !value.chars().all(|c| c == ' ' || tag_char(c)) {
        Some("TagValue may contain only letters, digits, spaces and / _ - . + = @ :")
    } else {
        None
    }
}

/// A validated `TagKey`: 1..=128 ASCII letters, digits or `/ _ - . + = @ :`,
/// not starting with `acs:` or `aliyun` (SPEC section 4).
///
/// ```
/// use localkms::TagKey;
/// assert!(TagKey::new("Project").is_ok());
/// assert!(TagKey::new("acs:owner").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TagKey(String);

impl TagKey {
    /// Validates a tag key.
    ///
    /// # Errors
    /// `InvalidParameter` naming `TagKey`.
    pub fn new(key: impl Into<String>) -> Result<Self> {
        let key = key.into();
        match tag_key_problem(&key) {
            Some(why) => Err(Error::invalid("TagKey", why)),
            None => Ok(Self(key)),
        }
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TagKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TagKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl AsRef<str> for TagKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A validated tag: a [`TagKey`] and a `TagValue` of 0..=256 ASCII letters,
/// digits, spaces or `/ _ - . + = @ :`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag {
    key: TagKey,
    value: String,
}

impl Tag {
    /// Validates a tag.
    ///
    /// # Errors
    /// `InvalidParameter` naming `TagKey` or `TagValue`.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Result<Self> {
        let key = TagKey::new(key)?;
        let value = value.into();
        match tag_value_problem(&value) {
            Some(why) => Err(Error::invalid("TagValue", why)),
            None => Ok(Self { key, value }),
        }
    }

    /// The key.
    pub fn key(&self) -> &TagKey {
        &self.key
    }

    /// The value (`""` when none was given).
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// One entry of ListResourceTags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceTag {
    /// The key the tag is on.
    pub key_id: String,
    /// The tag key.
    pub tag_key: String,
    /// The tag value.
    pub tag_value: String,
}

/// Parses the `Tags` parameter of TagResource and CreateKey: a JSON array of
/// `{"TagKey": "..", "TagValue": ".."}`. A missing or `null` `TagValue` is
/// `""`; other members are ignored. The array may be empty (TagResource
/// refuses an empty list itself). An empty string is `MissingParameter`: a
/// wire layer treats an empty optional parameter as absent before calling.
///
/// ```
/// let tags = localkms::parse_tags(r#"[{"TagKey":"Project","TagValue":"Test"},{"TagKey":"k"}]"#)?;
/// assert_eq!((tags[1].key().as_str(), tags[1].value()), ("k", ""));
/// # Ok::<(), localkms::Error>(())
/// ```
///
/// # Errors
/// `MissingParameter` or `InvalidParameter`, naming `Tags`.
pub fn parse_tags(json: &str) -> Result<Vec<Tag>> {
    const PARAM: &str = "Tags";
    let items = parse_array(json, PARAM)?;
    items
        .into_iter()
        .map(|item| {
            let Value::Object(mut obj) = item else {
                return Err(Error::invalid(PARAM, "each tag must be a JSON object"));
            };
            let key = match obj.remove("TagKey") {
                Some(Value::String(s)) => s,
                _ => return Err(Error::invalid(PARAM, "each tag needs a string TagKey")),
            };
            let value = match obj.remove("TagValue") {
                Some(Value::String(s)) => s,
                None | Some(Value::Null) => String::new(),
                Some(_) => return Err(Error::invalid(PARAM, "TagValue must be a string")),
            };
            if let Some(why) = tag_key_problem(&key) {
                return Err(Error::invalid(PARAM, why));
            }
            if let Some(why) = tag_value_problem(&value) {
                return Err(Error::invalid(PARAM, why));
            }
            Ok(Tag {
                key: TagKey(key),
                value,
            })
        })
        .collect()
}

/// Parses the `TagKeys` parameter of UntagResource: a JSON array of tag keys,
/// each validated as a [`TagKey`].
///
/// # Errors
/// `MissingParameter` or `InvalidParameter`, naming `TagKeys`.
pub fn parse_tag_keys(json: &str) -> Result<Vec<TagKey>> {
    const PARAM: &str = "TagKeys";
    parse_array(json, PARAM)?
        .into_iter()
        .map(|item| {
            let Value::String(key) = item else {
                return Err(Error::invalid(PARAM, "each tag key must be a JSON string"));
            };
            match tag_key_problem(&key) {
                Some(why) => Err(Error::invalid(PARAM, why)),
                None => Ok(TagKey(key)),
            }
        })
        .collect()
}

fn parse_array(json: &str, param: &'static str) -> Result<Vec<Value>> {
    if json.is_empty() {
        return Err(Error::MissingParameter(param));
    }
    match serde_json::from_str(json) {
        Ok(Value::Array(items)) => Ok(items),
        _ => Err(Error::invalid(param, "must be a JSON array")),
    }
}

fn tag_id(key_id: &str, tag_key: &str) -> Vec<u8> {
    format!("{key_id}/{tag_key}").into_bytes()
}

/// The distinct tags of `tags`, a later duplicate key winning.
fn merged<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> BTreeMap<&'a str, &'a str> {
    tags.into_iter().collect()
}

/// CreateKey's check of its tags: at most [`MAX_TAGS_PER_KEY`] distinct keys.
pub(crate) fn check_new_key_tags(tags: &[Tag]) -> Result<()> {
    let n = merged(tags.iter().map(|t| (t.key.as_str(), t.value.as_str()))).len();
    if n > MAX_TAGS_PER_KEY {
        return Err(Error::LimitExceeded(TAG_LIMIT.into()));
    }
    Ok(())
}

/// Adds the tags of a new key to the batch that creates it.
pub(crate) fn put_new_key_tags(batch: &mut Batch, key_id: &str, tags: &[Tag]) {
    for (k, v) in merged(tags.iter().map(|t| (t.key.as_str(), t.value.as_str()))) {
        batch.put(NS_TAG, tag_id(key_id, k), v.as_bytes().to_vec());
    }
}

impl Kms {
    fn read_tags(&self, key_id: &str) -> Result<Vec<(String, String)>> {
        let prefix = format!("{key_id}/");
        self.store
            .scan(NS_TAG, Scan::prefix(prefix.as_bytes()))?
            .into_iter()
            .map(|(id, v)| {
                let key = id
                    .get(prefix.len()..)
                    .and_then(|k| String::from_utf8(k.to_vec()).ok());
                match (key, String::from_utf8(v)) {
                    (Some(k), Ok(v)) => Ok((k, v)),
                    _ => Err(Error::CorruptStore("tag record is not UTF-8".into())),
                }
            })
            .collect()
    }

    /// TagResource: adds tags to a key, overwriting the values of keys it
    /// already has.
    ///
    /// ```
    /// use localkms::Tag;
    /// let kms = localkms::Kms::in_memory()?;
    /// let key = kms.create_key(&Default::default())?;
    /// kms.tag_resource(&key.key_id, &[Tag::new("Project", "Test")?])?;
    /// assert_eq!(kms.list_resource_tags(&key.key_id)?[0].tag_value, "Test");
    /// # Ok::<(), localkms::Error>(())
    /// ```
    ///
    /// # Errors
    /// `MissingParameter` (KeyId, or Tags when empty), `Unsupported.Alias`,
    /// `Forbidden.KeyNotFound`, `Rejected.LimitExceeded` when the key would
    /// have more than [`MAX_TAGS_PER_KEY`] tags.
    pub fn tag_resource(&self, key_id: &str, tags: &[Tag]) -> Result<()> {
        self.operation("TagResource", key_id, || self.tag_resource_op(key_id, tags))
    }

    fn tag_resource_op(&self, key_id: &str, tags: &[Tag]) -> Result<()> {
        let id = self.resolve_key_id(key_id, "KeyId", false)?;
        if tags.is_empty() {
            return Err(Error::MissingParameter("Tags"));
        }
        let mut w = self.writer()?;
        w.key(&id)?;
        let existing = self.read_tags(&id)?;
        let all = merged(
            existing
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .chain(tags.iter().map(|t| (t.key.as_str(), t.value.as_str()))),
        );
        if all.len() > MAX_TAGS_PER_KEY {
            return Err(Error::LimitExceeded(TAG_LIMIT.into()));
        }
        let mut batch = Batch::new();
        put_new_key_tags(&mut batch, &id, tags);
        w.commit(batch)
    }

    /// UntagResource: removes tags from a key; keys it does not have are
    /// ignored.
    ///
    /// # Errors
    /// `MissingParameter` (KeyId, or TagKeys when empty), `Unsupported.Alias`,
    /// `Forbidden.KeyNotFound`.
    pub fn untag_resource(&self, key_id: &str, tag_keys: &[TagKey]) -> Result<()> {
        self.operation("UntagResource", key_id, || {
            self.untag_resource_op(key_id, tag_keys)
        })
    }

    fn untag_resource_op(&self, key_id: &str, tag_keys: &[TagKey]) -> Result<()> {
        let id = self.resolve_key_id(key_id, "KeyId", false)?;
        if tag_keys.is_empty() {
            return Err(Error::MissingParameter("TagKeys"));
        }
        let mut w = self.writer()?;
        w.key(&id)?;
        let existing = self.read_tags(&id)?;
        let mut batch = Batch::new();
        for k in tag_keys {
            if existing.iter().any(|(e, _)| e == k.as_str()) {
                batch.delete(NS_TAG, tag_id(&id, k.as_str()));
            }
        }
        w.commit(batch)
    }

    /// ListResourceTags: the tags of a key, in byte order of `TagKey`.
    ///
    /// # Errors
    /// `MissingParameter` (KeyId), `Unsupported.Alias`, `Forbidden.KeyNotFound`.
    pub fn list_resource_tags(&self, key_id: &str) -> Result<Vec<ResourceTag>> {
        self.operation("ListResourceTags", key_id, || {
            self.list_resource_tags_op(key_id)
        })
    }

    fn list_resource_tags_op(&self, key_id: &str) -> Result<Vec<ResourceTag>> {
        let id = self.resolve_key_id(key_id, "KeyId", false)?;
        self.entry(&id)?;
        Ok(self
            .read_tags(&id)?
            .into_iter()
            .map(|(tag_key, tag_value)| ResourceTag {
                key_id: id.clone(),
                tag_key,
                tag_value,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::PER_KEY_NAMESPACES;

    fn code_and_param(e: &Error) -> (&'static str, String) {
        (e.code(), e.to_string())
    }

    #[test]
    fn tag_keys_and_values() {
        for k in [
            "a",
            "A/b_c-d.e+f=g@h:i",
            &"k".repeat(128),
            "ac:",
            "Aliyun",
            "acs",
        ] {
            assert!(TagKey::new(k).is_ok(), "{k}");
        }
        for k in [
            "",
            &"k".repeat(129),
            "a b",
            "é",
            "a;b",
            "acs:x",
            "acs:",
            "aliyun",
            "aliyunx",
        ] {
            let e = TagKey::new(k).unwrap_err();
            assert_eq!(e.code(), "InvalidParameter", "{k}");
            assert!(e.to_string().contains("TagKey"), "{k}: {e}");
        }
        for v in ["", "a b", "A/b_c-d.e+f=g@h:i", &"v".repeat(256), "acs:x"] {
            assert!(Tag::new("k", v).is_ok(), "{v}");
        }
        for v in [&"v".repeat(257), "a\tb", "é", "a;b", "a\nb"] {
            let e = Tag::new("k", v).unwrap_err();
            assert_eq!(e.code(), "InvalidParameter", "{v}");
            assert!(e.to_string().contains("TagValue"), "{v}: {e}");
        }
    }

    #[test]
    fn parse_tags_reads_the_wire_form() {
        let tags =
            parse_tags(r#"[{"TagKey":"Project","TagValue":"Test"},{"TagKey":"k"},{"TagKey":"n","TagValue":null,"X":1}]"#)
                .unwrap();
        assert_eq!(
            tags,
            vec![
                Tag::new("Project", "Test").unwrap(),
                Tag::new("k", "").unwrap(),
                Tag::new("n", "").unwrap()
            ]
        );
        assert_eq!(parse_tags("[]").unwrap(), vec![]);
        assert_eq!(parse_tags(""), Err(Error::MissingParameter("Tags")));
        for bad in [
            "{}",
            "[",
            "x",
            "[1]",
            r#"["k"]"#,
            r#"[{"TagValue":"v"}]"#,
            r#"[{"TagKey":1}]"#,
            r#"[{"TagKey":"k","TagValue":2}]"#,
            r#"[{"TagKey":""}]"#,
            r#"[{"TagKey":"acs:k"}]"#,
            r#"[{"TagKey":"k","TagValue":"a;b"}]"#,
        ] {
            let (code, msg) = code_and_param(&parse_tags(bad).unwrap_err());
            assert_eq!(code, "InvalidParameter", "{bad}");
            assert!(msg.contains("parameter Tags "), "{bad}: {msg}");
        }
    }

    #[test]
    fn parse_tag_keys_reads_the_wire_form() {
        assert_eq!(
            parse_tag_keys(r#"["a","b"]"#).unwrap(),
            vec![TagKey::new("a").unwrap(), TagKey::new("b").unwrap()]
        );
        assert_eq!(parse_tag_keys(""), Err(Error::MissingParameter("TagKeys")));
        for bad in [
            "[1]",
            "{}",
            r#"[""]"#,
            r#"["aliyun1"]"#,
            r#"[["a"]]"#,
            "[null]",
        ] {
            let (code, msg) = code_and_param(&parse_tag_keys(bad).unwrap_err());
            assert_eq!(code, "InvalidParameter", "{bad}");
            assert!(msg.contains("parameter TagKeys "), "{bad}: {msg}");
        }
    }

    #[test]
    fn deep_json_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        assert_eq!(parse_tags(&deep).unwrap_err().code(), "InvalidParameter");
        assert_eq!(
            parse_tag_keys(&deep).unwrap_err().code(),
            "InvalidParameter"
        );
    }

    #[test]
    fn tags_are_purged_with_the_key() {
        assert!(PER_KEY_NAMESPACES.contains(&NS_TAG));
    }

    #[test]
    fn new_key_tags_merge_before_the_limit() {
        let many: Vec<Tag> = (0..11)
            .map(|i| Tag::new(format!("k{i}"), "v").unwrap())
            .collect();
        assert_eq!(
            check_new_key_tags(&many).unwrap_err().code(),
            "Rejected.LimitExceeded"
        );
        let dup: Vec<Tag> = (0..20)
            .map(|i| Tag::new(format!("k{}", i % 10), "v").unwrap())
            .collect();
        assert!(check_new_key_tags(&dup).is_ok());
    }
}
