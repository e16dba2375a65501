//! Formats and primitives: ciphertext blobs, the encryption context, the
//! import token. Nothing here knows the service object.

#[doc(hidden)]
pub mod asym;
pub(crate) mod blob;
pub(crate) mod context;
pub(crate) mod envelope;
pub(crate) mod import_token;
pub(crate) mod sm4_blob;
pub(crate) mod xaes;
