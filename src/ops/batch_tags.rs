//! Batch tags: TagResources, UntagResources and ListTagResources over keys
//! or secrets (`ResourceType` `key` or `secret`).
//!
//! A request names at most [`MAX_BATCH_RESOURCES`] resources and at most
//! [`MAX_BATCH_TAGS`] tags (or tag keys), as the vendor documents. Each
//! resource keeps its own rules: a key at most [`crate::MAX_TAGS_PER_KEY`]
//! tags, a secret at most [`crate::MAX_TAGS_PER_SECRET`], counted after the
//! merge; keys and values follow [`Tag`] for both (SPEC section 4).
//!
//! Every resource is checked (it exists; its tag count after the merge fits)
//! before any is changed, so a refused request changes nothing; the changes
//! are then made resource by resource, through the same paths as
//! TagResource and UntagResource.
//!
//! ListTagResources answers one row per (resource, tag), ordered by resource
//! id then tag key, [`LIST_TAG_RESOURCES_PAGE`] rows a page; `NextToken`
//! resumes after the last row of the previous page, so pages stay consistent
//! while tags change. `Tag` filters keep the rows whose key equals a filter's
//! key (and whose value equals its value, when the filter gives one).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::kms::Kms;
use crate::ops::secrets::model::SecretRecord;
use crate::ops::tags::{MAX_TAGS_PER_KEY, NS_TAG, Tag, TagKey};
use crate::store::Scan;
use crate::store::record::NS_SECRET;

/// The most resources one batch request names.
pub const MAX_BATCH_RESOURCES: usize = 50;
/// The most tags (or tag keys) one batch request names.
pub const MAX_BATCH_TAGS: usize = 20;
/// Rows per page of ListTagResources (the vendor's default).
pub const LIST_TAG_RESOURCES_PAGE: usize = 200;

/// The `ResourceType` of the batch tag actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResourceType {
    /// A key (`key`): `ResourceId` is a key id or key ARN.
    Key,
    /// A secret (`secret`): `ResourceId` is a secret name or secret ARN.
    Secret,
}

impl ResourceType {
    /// The exact wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Secret => "secret",
        }
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ResourceType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "key" => Ok(Self::Key),
            "secret" => Ok(Self::Secret),
            _ => Err(Error::invalid("ResourceType", "must be key or secret")),
        }
    }
}

/// One row of ListTagResources.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TagResource {
    /// The key id or secret name.
    pub resource_id: String,
    /// `key` or `secret`.
    pub resource_type: ResourceType,
    /// The tag key.
    pub tag_key: String,
    /// The tag value.
    pub tag_value: String,
}

/// A page of ListTagResources.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TagResourcePage {
    /// The rows of this page.
    pub tag_resources: Vec<TagResource>,
    /// Where the next page starts, or `""` after the last page.
    pub next_token: String,
}

impl crate::kms::instrument::Audited for TagResourcePage {}

/// Checks the counts of a batch request.
fn check_counts(resources: usize, tags: usize, tag_param: &'static str) -> Result<()> {
    if resources == 0 {
        return Err(Error::MissingParameter("ResourceId"));
    }
    if resources > MAX_BATCH_RESOURCES {
        return Err(Error::invalid(
            "ResourceId",
            "must name at most 50 resources",
        ));
    }
    if tags > MAX_BATCH_TAGS {
        return Err(Error::invalid(tag_param, "must name at most 20 tags"));
    }
    Ok(())
}

/// The distinct ids of `ids`, in order.
fn distinct(ids: &[String]) -> Vec<&str> {
    let mut seen = BTreeSet::new();
    ids.iter()
        .map(String::as_str)
        .filter(|id| seen.insert(*id))
        .collect()
}

/// A `NextToken`: the hex of `resource id NUL tag key` of the last row.
fn encode_token(row: &TagResource) -> String {
    let mut raw = row.resource_id.as_bytes().to_vec();
    raw.push(0);
    raw.extend_from_slice(row.tag_key.as_bytes());
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_token(token: &str) -> Result<(String, String)> {
    let bad = || Error::invalid("NextToken", "is not a token a ListTagResources gave");
    if !token.len().is_multiple_of(2) || token.len() > 2048 {
        return Err(bad());
    }
    let raw = (0..token.len())
        .step_by(2)
        .map(|i| {
            token
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (id, key) = text.split_once('\0').ok_or_else(bad)?;
    Ok((id.to_owned(), key.to_owned()))
}

impl Kms {
    /// The key id a key `ResourceId` names (a key id or key ARN), if the
    /// key exists.
    fn tag_target_key(&self, id: &str) -> Result<String> {
        let key_id = self.resolve_key_id(id, "ResourceId", false)?;
        self.entry(&key_id)?;
        Ok(key_id)
    }

    /// The tags a resource has now.
    fn current_tags(
        &self,
        resource_type: ResourceType,
        id: &str,
    ) -> Result<BTreeMap<String, String>> {
        Ok(match resource_type {
            ResourceType::Key => self
                .list_resource_tags(id)?
                .into_iter()
                .map(|t| (t.tag_key, t.tag_value))
                .collect(),
            ResourceType::Secret => self
                .describe_secret(id, true)?
                .tags
                .into_iter()
                .map(|t| (t.tag_key, t.tag_value))
                .collect(),
        })
    }

    /// TagResources: adds `tags` to every resource named (an existing tag
    /// key's value is overwritten).
    ///
    /// ```
    /// use localkms::{ResourceType, Tag};
    /// let kms = localkms::Kms::in_memory()?;
    /// let a = kms.create_key(&Default::default())?.key_id;
    /// let b = kms.create_key(&Default::default())?.key_id;
    /// kms.tag_resources(ResourceType::Key, &[a.clone(), b], &[Tag::new("team", "pay")?])?;
    /// let page = kms.list_tag_resources(ResourceType::Key, &[a], &[], None)?;
    /// assert_eq!(page.tag_resources[0].tag_value, "pay");
    /// # Ok::<(), localkms::Error>(())
    /// ```
    ///
    /// # Errors
    /// `MissingParameter` (ResourceId, Tag), `InvalidParameter` (more than 50
    /// resources or 20 tags), `Forbidden.KeyNotFound` /
    /// `Forbidden.ResourceNotFound` for a resource that does not exist,
    /// `Unsupported.Alias`, `Rejected.LimitExceeded` when a resource would
    /// have more tags than its limit. Nothing is changed on an error.
    pub fn tag_resources(
        &self,
        resource_type: ResourceType,
        resource_ids: &[String],
        tags: &[Tag],
    ) -> Result<()> {
        self.operation("TagResources", "", || {
            check_counts(resource_ids.len(), tags.len(), "Tag")?;
            if tags.is_empty() {
                return Err(Error::MissingParameter("Tag"));
            }
            let ids = self.checked_targets(resource_type, resource_ids)?;
            for id in &ids {
                let mut all = self.current_tags(resource_type, id)?;
                for t in tags {
                    all.insert(t.key().as_str().to_owned(), t.value().to_owned());
                }
                let (limit, what) = match resource_type {
                    ResourceType::Key => {
                        (MAX_TAGS_PER_KEY, "tags per key (at most 10; parameter Tag)")
                    }
                    ResourceType::Secret => (
                        crate::ops::secrets::MAX_TAGS_PER_SECRET,
                        "tags per secret (at most 20; parameter Tag)",
                    ),
                };
                if all.len() > limit {
                    return Err(Error::LimitExceeded(what.into()));
                }
            }
            for id in &ids {
                match resource_type {
                    ResourceType::Key => self.tag_resource(id, tags)?,
                    ResourceType::Secret => self.tag_secret(id, tags)?,
                }
            }
            Ok(())
        })
    }

    /// The resources named, checked to exist: key ids (resolved from ARNs),
    /// or secret names as given.
    fn checked_targets(&self, resource_type: ResourceType, ids: &[String]) -> Result<Vec<String>> {
        distinct(ids)
            .into_iter()
            .map(|id| match resource_type {
                ResourceType::Key => self.tag_target_key(id),
                ResourceType::Secret => {
                    if id.is_empty() {
                        return Err(Error::MissingParameter("ResourceId"));
                    }
                    self.describe_secret(id, false)?;
                    Ok(id.to_owned())
                }
            })
            .collect()
    }

    /// UntagResources: removes the tags `tag_keys` names from every resource
    /// named (absent keys are ignored), or, with `all` and no tag keys,
    /// every tag.
    ///
    /// # Errors
    /// `MissingParameter` (ResourceId; TagKey when it is empty and `all` is
    /// false), `InvalidParameter` (more than 50 resources or 20 tag keys),
    /// `Forbidden.KeyNotFound` / `Forbidden.ResourceNotFound`,
    /// `Unsupported.Alias`. Nothing is changed on an error.
    pub fn untag_resources(
        &self,
        resource_type: ResourceType,
        resource_ids: &[String],
        tag_keys: &[TagKey],
        all: bool,
    ) -> Result<()> {
        self.operation("UntagResources", "", || {
            check_counts(resource_ids.len(), tag_keys.len(), "TagKey")?;
            if tag_keys.is_empty() && !all {
                return Err(Error::MissingParameter("TagKey"));
            }
            let ids = self.checked_targets(resource_type, resource_ids)?;
            for id in &ids {
                let keys: Vec<TagKey> = if tag_keys.is_empty() {
                    self.current_tags(resource_type, id)?
                        .into_keys()
                        .map(TagKey::new)
                        .collect::<Result<_>>()?
                } else {
                    tag_keys.to_vec()
                };
                if keys.is_empty() {
                    continue;
                }
                match resource_type {
                    ResourceType::Key => self.untag_resource(id, &keys)?,
                    ResourceType::Secret => self.untag_secret(id, &keys)?,
                }
            }
            Ok(())
        })
    }

    /// ListTagResources: the tags of the resources named (or of every
    /// resource of the type), one row per tag, filtered by `tags`, a page of
    /// [`LIST_TAG_RESOURCES_PAGE`] rows after `next_token`.
    ///
    /// # Errors
    /// `InvalidParameter` (more than 50 resources or 20 tags, a malformed
    /// NextToken), `Forbidden.KeyNotFound` / `Forbidden.ResourceNotFound`
    /// for a named resource that does not exist, `Unsupported.Alias`.
    pub fn list_tag_resources(
        &self,
        resource_type: ResourceType,
        resource_ids: &[String],
        tags: &[Tag],
        next_token: Option<&str>,
    ) -> Result<TagResourcePage> {
        self.operation("ListTagResources", "", || {
            if resource_ids.len() > MAX_BATCH_RESOURCES {
                return Err(Error::invalid(
                    "ResourceId",
                    "must name at most 50 resources",
                ));
            }
            if tags.len() > MAX_BATCH_TAGS {
                return Err(Error::invalid("Tag", "must name at most 20 tags"));
            }
            let after = next_token.map(decode_token).transpose()?;
            let mut rows = if resource_ids.is_empty() {
                self.all_tag_rows(resource_type)?
            } else {
                let mut rows = Vec::new();
                for id in self.checked_targets(resource_type, resource_ids)? {
                    for (k, v) in self.current_tags(resource_type, &id)? {
                        rows.push(TagResource {
                            resource_id: id.clone(),
                            resource_type,
                            tag_key: k,
                            tag_value: v,
                        });
                    }
                }
                rows
            };
            rows.retain(|r| {
                tags.is_empty()
                    || tags.iter().any(|t| {
                        t.key().as_str() == r.tag_key
                            && (t.value().is_empty() || t.value() == r.tag_value)
                    })
            });
            rows.sort_by(|a, b| (&a.resource_id, &a.tag_key).cmp(&(&b.resource_id, &b.tag_key)));
            if let Some((id, key)) = &after {
                rows.retain(|r| (&r.resource_id, &r.tag_key) > (id, key));
            }
            let more = rows.len() > LIST_TAG_RESOURCES_PAGE;
            rows.truncate(LIST_TAG_RESOURCES_PAGE);
            let next_token = match rows.last() {
                Some(last) if more => encode_token(last),
                _ => String::new(),
            };
            Ok(TagResourcePage {
                tag_resources: rows,
                next_token,
            })
        })
    }

    /// Every tag of every live resource of the type.
    fn all_tag_rows(&self, resource_type: ResourceType) -> Result<Vec<TagResource>> {
        let mut rows = Vec::new();
        match resource_type {
            ResourceType::Key => {
                let mut live: BTreeMap<String, bool> = BTreeMap::new();
                for (id, value) in self.store.scan(NS_TAG, Scan::prefix(b""))? {
                    let text = String::from_utf8(id)
                        .map_err(|_| Error::CorruptStore("tag record is not UTF-8".into()))?;
                    let Some((key_id, tag_key)) = text.split_once('/') else {
                        continue;
                    };
                    let alive = match live.get(key_id) {
                        Some(a) => *a,
                        None => {
                            let a = match self.entry(key_id) {
                                Ok(_) => true,
                                Err(Error::KeyNotFound(_)) => false,
                                Err(e) => return Err(e),
                            };
                            live.insert(key_id.to_owned(), a);
                            a
                        }
                    };
                    if alive {
                        rows.push(TagResource {
                            resource_id: key_id.to_owned(),
                            resource_type,
                            tag_key: tag_key.to_owned(),
                            tag_value: String::from_utf8(value).map_err(|_| {
                                Error::CorruptStore("tag record is not UTF-8".into())
                            })?,
                        });
                    }
                }
            }
            ResourceType::Secret => {
                let now = self.clock.now();
                for (_, bytes) in self.store.scan(NS_SECRET, Scan::prefix(b""))? {
                    let r = SecretRecord::decode(&bytes)?;
                    if r.planned_delete.is_some_and(|d| now >= d) {
                        continue;
                    }
                    for (k, v) in &r.tags {
                        rows.push(TagResource {
                            resource_id: r.name.clone(),
                            resource_type,
                            tag_key: k.clone(),
                            tag_value: v.clone(),
                        });
                    }
                }
            }
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_garbage() {
        let row = TagResource {
            resource_id: "k".into(),
            resource_type: ResourceType::Key,
            tag_key: "a/b".into(),
            tag_value: String::new(),
        };
        assert_eq!(
            decode_token(&encode_token(&row)).unwrap(),
            ("k".into(), "a/b".into())
        );
        for bad in ["x", "zz", "6b", "ff00", &"00".repeat(2000)] {
            assert_eq!(decode_token(bad).unwrap_err().code(), "InvalidParameter");
        }
    }
}
