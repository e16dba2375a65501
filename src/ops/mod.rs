//! Every operation of the service, as `impl Kms` blocks, one file per concern.

pub(crate) mod aliases;
pub(crate) mod envelope;
pub(crate) mod fixtures;
pub(crate) mod import;
pub(crate) mod keys;
pub(crate) mod reencrypt;
pub(crate) mod symmetric;
pub(crate) mod tags;
pub(crate) mod versions;
