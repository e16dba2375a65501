//! Aliases: names that point at keys.

use crate::error::{Error, Result};
use crate::keystore::Batch;
use crate::kms::{Kms, shorten};

/// Resolves `alias/{name}` to its key id.
pub(crate) fn lookup_alias(_kms: &Kms, alias: &str) -> Result<String> {
    Err(Error::AliasNotFound(shorten(alias)))
}

/// Adds the removal of every alias of `key_id` to `batch`.
pub(crate) fn purge_key_aliases(_kms: &Kms, _batch: &mut Batch, _key_id: &str) -> Result<()> {
    Ok(())
}
