//! The project's documents, in the API documentation: the formats of what
//! localkms writes, and the fixture files it reads.

#[doc = include_str!("../docs/FORMAT.md")]
pub mod format {}

#[doc = include_str!("../docs/FIXTURES.md")]
pub mod fixtures {}
