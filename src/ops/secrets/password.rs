//! GetRandomPassword: passwords drawn uniformly from the allowed characters
//! with the service's random source (the OS CSPRNG, or the deterministic
//! generator under `test-util`), by rejection sampling, so no character is
//! favoured.

use std::fmt;

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::kms::Kms;

/// The shortest password.
pub const MIN_PASSWORD_LENGTH: u32 = 8;
/// The longest password.
pub const MAX_PASSWORD_LENGTH: u32 = 128;
/// The length when none is given.
pub const DEFAULT_PASSWORD_LENGTH: u32 = 32;

const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &str = "0123456789";
/// The punctuation characters the vendor lists.
const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// The parameters of GetRandomPassword. `Default` is 32 characters of every
/// class.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GetRandomPasswordRequest {
    /// 8..=128; `None` is 32.
    pub password_length: Option<u32>,
    /// Characters never used.
    pub exclude_characters: String,
    /// No `a-z`.
    pub exclude_lowercase: bool,
    /// No `A-Z`.
    pub exclude_uppercase: bool,
    /// No `0-9`.
    pub exclude_numbers: bool,
    /// No punctuation.
    pub exclude_punctuation: bool,
    /// At least one character of each class that is not excluded (and has
    /// a character left after `exclude_characters`).
    pub require_each_included_type: bool,
}

/// A generated password: zeroized on drop, printed as `[REDACTED]`.
pub struct RandomPassword(Zeroizing<String>);

impl RandomPassword {
    /// The password.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The password, moved out.
    pub fn into_inner(self) -> Zeroizing<String> {
        self.0
    }
}

impl fmt::Debug for RandomPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RandomPassword([REDACTED])")
    }
}

impl crate::kms::instrument::Audited for RandomPassword {}

/// A uniform index below `n` (1..=256) from the service's random source.
fn index(kms: &Kms, n: usize) -> Result<usize> {
    let n = u32::try_from(n).map_err(|_| Error::InternalFailure)?;
    if n == 0 {
        return Err(Error::InternalFailure);
    }
    // Largest multiple of n that fits in u32: values at or above it are redrawn.
    let zone = u32::MAX - (u32::MAX % n);
    loop {
        let mut b = [0u8; 4];
        kms.fill_random(&mut b)?;
        let v = u32::from_le_bytes(b);
        if v < zone {
            return usize::try_from(v % n).map_err(|_| Error::InternalFailure);
        }
    }
}

pub(super) fn generate(kms: &Kms, req: &GetRandomPasswordRequest) -> Result<RandomPassword> {
    let length = req.password_length.unwrap_or(DEFAULT_PASSWORD_LENGTH);
    if !(MIN_PASSWORD_LENGTH..=MAX_PASSWORD_LENGTH).contains(&length) {
        return Err(Error::invalid(
            "PasswordLength",
            "must be an integer from 8 to 128",
        ));
    }
    let length = usize::try_from(length).map_err(|_| Error::InternalFailure)?;
    let keep = |set: &str, excluded: bool| -> Vec<char> {
        if excluded {
            return Vec::new();
        }
        set.chars()
            .filter(|c| !req.exclude_characters.contains(*c))
            .collect()
    };
    let classes: Vec<Vec<char>> = [
        keep(LOWER, req.exclude_lowercase),
        keep(UPPER, req.exclude_uppercase),
        keep(DIGITS, req.exclude_numbers),
        keep(PUNCTUATION, req.exclude_punctuation),
    ]
    .into_iter()
    .filter(|c| !c.is_empty())
    .collect();
    let all: Vec<char> = classes.iter().flatten().copied().collect();
    if all.is_empty() {
        return Err(Error::invalid(
            "ExcludeCharacters",
            "every character is excluded",
        ));
    }
    let mut chars: Vec<char> = Vec::with_capacity(length);
    if req.require_each_included_type {
        for class in &classes {
            chars.push(class[index(kms, class.len())?]);
        }
    }
    while chars.len() < length {
        chars.push(all[index(kms, all.len())?]);
    }
    // Fisher-Yates, so the required characters are not at the front.
    for i in (1..chars.len()).rev() {
        let j = index(kms, i + 1)?;
        chars.swap(i, j);
    }
    let out = Zeroizing::new(chars.iter().collect::<String>());
    zeroize::Zeroize::zeroize(&mut chars);
    Ok(RandomPassword(out))
}
