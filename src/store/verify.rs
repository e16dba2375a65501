//! The report of [`crate::Kms::verify`].

use std::fmt;

/// The head was behind the witness when the store was opened with
/// `KmsBuilder::recover_rolled_back`: the commits after `head_seq` (up to
/// `witness_seq`, when the witness could say) were lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollBack {
    /// The store's commit sequence at open.
    pub head_seq: u64,
    /// The witness's sequence; `None` when the witness was missing, damaged
    /// or of another store.
    pub witness_seq: Option<u64>,
}

/// What [`crate::Kms::verify`] found. [`Report::is_ok`] is true only when
/// every record opens, the digest and count match the head, every key's
/// material is there in its generation, and no loss was accepted at open.
///
/// A record that was forged, changed, or copied from another record or
/// store is named in `unreadable`. A record replayed (an older copy put
/// back), deleted, or inserted shows as `digest_matches == false`: the
/// digest says that the set of records is not the one the library wrote,
/// not which record differs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// Records checked (the head and the store id not counted).
    pub records: u64,
    /// Records that do not open, as `namespace/id`.
    pub unreadable: Vec<String>,
    /// True when the records' digest and count equal the head's.
    pub digest_matches: bool,
    /// The head's commit sequence.
    pub head_seq: u64,
    /// The witness's sequence, when the store has a witness.
    pub witness_seq: Option<u64>,
    /// A loss accepted at open.
    pub rolled_back: Option<RollBack>,
    /// Other findings, one sentence each (a key's material missing, or of
    /// another generation).
    pub problems: Vec<String>,
}

impl Report {
    /// True when nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.unreadable.is_empty()
            && self.digest_matches
            && self.rolled_back.is_none()
            && self.problems.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_ok() {
            return write!(f, "ok: {} records, commit {}", self.records, self.head_seq);
        }
        let mut parts = Vec::new();
        if !self.unreadable.is_empty() {
            parts.push(format!(
                "{} records do not open: {}",
                self.unreadable.len(),
                self.unreadable.join(", ")
            ));
        }
        if !self.digest_matches {
            parts.push(
                "the digest does not match the head (a record was replayed, deleted or inserted)"
                    .to_owned(),
            );
        }
        if let Some(r) = self.rolled_back {
            parts.push(match r.witness_seq {
                Some(w) => format!(
                    "commits {}..={w} were lost (the witness was ahead of the head at open)",
                    r.head_seq + 1
                ),
                None => format!(
                    "the witness was missing or unusable at open, with the store at commit {}",
                    r.head_seq
                ),
            });
        }
        parts.extend(self.problems.iter().cloned());
        write!(f, "FAILED: {}", parts.join("; "))
    }
}
