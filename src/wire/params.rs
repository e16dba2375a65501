//! Request parameters, parsed the same way for every action (SPEC sections 4
//! and 8): a required parameter that is absent or empty is `MissingParameter`
//! naming it; an empty optional parameter is absent; booleans are
//! `true`/`false` in any case; integers are plain decimal; enums are
//! case-sensitive.

use std::str::FromStr;

use crate::error::{Error, Result};
use crate::paging::Paging;

/// The longest plain decimal integer looked at, in digits.
const MAX_INTEGER_DIGITS: usize = 19;

/// The parameters of one request, checked to hold each name at most once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Params<'a> {
    pairs: &'a [(&'a str, &'a str)],
}

impl<'a> Params<'a> {
    /// Wraps the request's pairs.
    ///
    /// # Errors
    /// `InvalidParameter` naming a parameter given more than once: which of
    /// two values was meant (and signed) is ambiguous.
    pub(crate) fn new(pairs: &'a [(&'a str, &'a str)]) -> Result<Self> {
        let mut names: Vec<&str> = pairs.iter().map(|(k, _)| *k).collect();
        names.sort_unstable();
        if let Some(name) = names.windows(2).find(|w| w[0] == w[1]).map(|w| w[0]) {
            {
                return Err(match wire_name(name) {
                    Some(param) => Error::invalid(param, "is given more than once"),
                    None => Error::invalid(
                        "parameters",
                        format!("{} is given more than once", crate::error::shorten(name)),
                    ),
                });
            }
        }
        Ok(Self { pairs })
    }

    /// The value as given, empty or not.
    pub(crate) fn raw(&self, name: &str) -> Option<&'a str> {
        self.pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }

    /// An optional parameter; empty is absent (SPEC section 8).
    pub(crate) fn optional(&self, name: &str) -> Option<&'a str> {
        self.raw(name).filter(|v| !v.is_empty())
    }

    /// A required parameter.
    ///
    /// # Errors
    /// `MissingParameter` naming it when absent or empty.
    pub(crate) fn required(&self, name: &'static str) -> Result<&'a str> {
        self.optional(name).ok_or(Error::MissingParameter(name))
    }

    /// An optional enum parameter, parsed case-sensitively by the enum's own
    /// `FromStr` (which names the parameter in its error).
    pub(crate) fn parse<T: FromStr<Err = E>, E: Into<Error>>(
        &self,
        name: &str,
    ) -> Result<Option<T>> {
        self.optional(name)
            .map(|v| v.parse().map_err(Into::into))
            .transpose()
    }

    /// An optional boolean: `true` or `false` in any case.
    pub(crate) fn bool(&self, name: &'static str) -> Result<Option<bool>> {
        self.optional(name).map(|v| parse_bool(name, v)).transpose()
    }

    /// An optional plain decimal integer, no sign, that fits `T`.
    pub(crate) fn integer<T: TryFrom<u64>>(&self, name: &'static str) -> Result<Option<T>> {
        self.optional(name)
            .map(|v| parse_integer(name, v))
            .transpose()
    }

    /// A required plain decimal integer, no sign, that fits `T`.
    pub(crate) fn required_integer<T: TryFrom<u64>>(&self, name: &'static str) -> Result<T> {
        parse_integer(name, self.required(name)?)
    }

    /// `PageNumber` and `PageSize` (SPEC section 1).
    pub(crate) fn paging(&self) -> Result<Paging> {
        Paging::from_params(self.raw("PageNumber"), self.raw("PageSize"))
    }

    /// An optional `RotationInterval` (`{n}d`, `{n}h`, `{n}m` or `{n}s`,
    /// 7..=730 days), in seconds.
    pub(crate) fn rotation_interval(&self) -> Result<Option<u64>> {
        self.optional("RotationInterval")
            .map(crate::ops::versions::parse_rotation_interval)
            .transpose()
    }

    /// A required boolean.
    pub(crate) fn required_bool(&self, name: &'static str) -> Result<bool> {
        parse_bool(name, self.required(name)?)
    }
}

/// `true`/`false` in any case (the Python SDKs send `True`).
fn parse_bool(name: &'static str, v: &str) -> Result<bool> {
    if v.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if v.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(Error::invalid(name, "must be true or false"))
    }
}

/// Digits only: no sign, spaces, exponent or fraction.
fn parse_integer<T: TryFrom<u64>>(name: &'static str, v: &str) -> Result<T> {
    let bad = || Error::invalid(name, "must be a plain decimal integer in range");
    if v.is_empty() || v.len() > MAX_INTEGER_DIGITS || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = v.parse().map_err(|_| bad())?;
    T::try_from(n).map_err(|_| bad())
}

/// The `&'static` wire name equal to `name`, if it is one the wire layer
/// knows (`Error` carries only static parameter names).
fn wire_name(name: &str) -> Option<&'static str> {
    KNOWN_PARAMETERS.iter().copied().find(|k| *k == name)
}

/// Every parameter name the wire layer reads, and the common ones the SDKs
/// send.
const KNOWN_PARAMETERS: &[&str] = &[
    "AccessKeyId",
    "Action",
    "AliasName",
    "CiphertextBlob",
    "Description",
    "DestinationEncryptionContext",
    "DestinationKeyId",
    "EnableAutomaticRotation",
    "EncryptedKeyMaterial",
    "EncryptionContext",
    "EncryptionKeyId",
    "ExcludeCharacters",
    "ExcludeLowercase",
    "ExcludeNumbers",
    "ExcludePunctuation",
    "ExcludeUppercase",
    "ExtendedConfig",
    "FetchExtendedConfig",
    "FetchTags",
    "Filters",
    "ForceDeleteWithoutRecovery",
    "Format",
    "ImportToken",
    "IncludeDeprecated",
    "KeyId",
    "KeyMaterialExpireUnix",
    "KeySpec",
    "KeyUsage",
    "KeyVersionId",
    "MoveToVersion",
    "NumberOfBytes",
    "Origin",
    "PageNumber",
    "PageSize",
    "PasswordLength",
    "PendingWindowInDays",
    "Plaintext",
    "Policy",
    "PolicyName",
    "ProtectionLevel",
    "RecoveryWindowInDays",
    "RegionId",
    "RemoveFromVersion",
    "RequireEachIncludedType",
    "RotationInterval",
    "SecretData",
    "SecretDataType",
    "SecretName",
    "SecretType",
    "SecretsList",
    "Signature",
    "SignatureMethod",
    "SignatureNonce",
    "SignatureType",
    "SignatureVersion",
    "SourceEncryptionContext",
    "TagKeys",
    "Tags",
    "Timestamp",
    "Version",
    "VersionId",
    "VersionStage",
    "VersionStages",
    "WrappingAlgorithm",
    "WrappingKeySpec",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs<'a>(p: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        p.to_vec()
    }

    #[test]
    fn required_optional_and_empty() {
        let p = pairs(&[("A", "x"), ("B", "")]);
        let p = Params::new(&p).unwrap();
        assert_eq!(p.required("A"), Ok("x"));
        assert_eq!(p.required("B"), Err(Error::MissingParameter("B")));
        assert_eq!(p.required("C"), Err(Error::MissingParameter("C")));
        assert_eq!(p.optional("B"), None);
        assert_eq!(p.raw("B"), Some(""));
    }

    #[test]
    fn duplicates_are_refused_by_name() {
        let p = pairs(&[("KeyId", "a"), ("KeyId", "b")]);
        let e = Params::new(&p).unwrap_err();
        assert_eq!(e.code(), "InvalidParameter");
        assert!(e.to_string().contains("KeyId"), "{e}");
        let p = pairs(&[("Odd", "a"), ("Odd", "b")]);
        let e = Params::new(&p).unwrap_err();
        assert!(e.to_string().contains("Odd is given more than once"), "{e}");
    }

    #[test]
    fn booleans_any_case() {
        let p = pairs(&[("T", "True"), ("F", "FALSE"), ("X", "yes"), ("O", "1")]);
        let p = Params::new(&p).unwrap();
        assert_eq!(p.bool("T"), Ok(Some(true)));
        assert_eq!(p.bool("F"), Ok(Some(false)));
        assert_eq!(p.bool("N"), Ok(None));
        assert_eq!(p.required_bool("T"), Ok(true));
        assert_eq!(p.required_bool("N"), Err(Error::MissingParameter("N")));
        for bad in ["X", "O"] {
            let e = p.bool(if bad == "X" { "X" } else { "O" }).unwrap_err();
            assert_eq!(e.code(), "InvalidParameter");
        }
    }

    #[test]
    fn integers_are_plain_decimal() {
        for (v, ok) in [
            ("7", Some(7u32)),
            ("007", Some(7)),
            ("4294967295", Some(u32::MAX)),
            ("4294967296", None),
            ("-7", None),
            ("+7", None),
            (" 7", None),
            ("7.0", None),
            ("1e3", None),
            ("0x10", None),
            ("99999999999999999999999", None),
            ("７", None),
        ] {
            let p = pairs(&[("N", v)]);
            let p = Params::new(&p).unwrap();
            match ok {
                Some(n) => assert_eq!(p.integer::<u32>("N"), Ok(Some(n)), "{v}"),
                None => {
                    let e = p.integer::<u32>("N").unwrap_err();
                    assert_eq!(e.code(), "InvalidParameter", "{v}");
                    assert!(e.to_string().contains('N'), "{v}");
                }
            }
        }
    }

    #[test]
    fn rotation_intervals() {
        for (v, want) in [
            ("7d", Some(604_800)),
            ("168h", Some(604_800)),
            ("10080m", Some(604_800)),
            ("31536000s", Some(31_536_000)),
        ] {
            let p = pairs(&[("RotationInterval", v)]);
            assert_eq!(
                Params::new(&p).unwrap().rotation_interval(),
                Ok(want),
                "{v}"
            );
        }
        for v in [
            "7",
            "d",
            "7w",
            "-7d",
            "7 d",
            "7D",
            "é",
            "99999999999999999999d",
            "18446744073709551615d",
        ] {
            let p = pairs(&[("RotationInterval", v)]);
            let e = Params::new(&p).unwrap().rotation_interval().unwrap_err();
            assert_eq!(e.code(), "InvalidParameter", "{v}");
            assert!(e.to_string().contains("RotationInterval"), "{v}");
        }
    }
}
