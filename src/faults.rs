//! Fault injection: make chosen actions fail, a number of times or with a
//! probability under a seeded generator, with a retryable error, so an
//! application can test its retry logic against the Rust API or the wire
//! (the gateway and the official SDKs).
//!
//! Always compiled: with no rule set, the cost is one atomic load per
//! operation. Faults are checked at the start of each operation, before any
//! input is read, so a failed call changes nothing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

/// The error an injected fault produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `Rejected.Throttling` (HTTP 429): [`Error::Throttling`].
    Throttling,
    /// `ServiceUnavailableTemporary` (HTTP 503): [`Error::ServiceUnavailable`].
    ServiceUnavailable,
    /// `InternalFailure` (HTTP 500): [`Error::InternalFailure`].
    InternalFailure,
}

impl Fault {
    /// The error this fault produces.
    pub fn error(self) -> Error {
        match self {
            Self::Throttling => Error::Throttling,
            Self::ServiceUnavailable => Error::ServiceUnavailable,
            Self::InternalFailure => Error::InternalFailure,
        }
    }
}

impl std::str::FromStr for Fault {
    type Err = Error;

    /// `Throttling`, `ServiceUnavailable` or `InternalFailure`, or the wire
    /// codes `Rejected.Throttling` and `ServiceUnavailableTemporary`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "Throttling" | "Rejected.Throttling" => Ok(Self::Throttling),
            "ServiceUnavailable" | "ServiceUnavailableTemporary" => Ok(Self::ServiceUnavailable),
            "InternalFailure" => Ok(Self::InternalFailure),
            _ => Err(Error::invalid(
                "Fault",
                "must be Throttling, ServiceUnavailable or InternalFailure",
            )),
        }
    }
}

/// One rule: the next `remaining` calls fail, or each call fails with
/// probability `p`.
#[derive(Debug)]
enum Rule {
    Count { remaining: u64, fault: Fault },
    Chance { p: f64, fault: Fault, state: u64 },
}

/// The fault rules of one [`Kms`](crate::Kms), changeable at any time
/// through [`Kms::faults`](crate::Kms::faults).
///
/// Rules are per action (its wire name, such as `"Encrypt"`), or `"*"` for
/// every action. An action's own rule is consulted before `"*"`. A wire
/// request meets the rules when it reaches its operation, after its
/// parameters are read (a request with a missing parameter still gets
/// `MissingParameter`); an operation called inside another one (Decrypt
/// inside ReEncrypt) is not checked again. DescribeRegions cannot fail.
///
/// ```
/// use localkms::{Fault, Kms};
/// let kms = Kms::in_memory()?;
/// let key = kms.create_key(&Default::default())?;
/// kms.faults().fail_next("Encrypt", 2, Fault::Throttling)?;
/// let ctx = Default::default();
/// assert_eq!(kms.encrypt(&key.key_id, b"x", &ctx).unwrap_err().code(), "Rejected.Throttling");
/// assert_eq!(kms.encrypt(&key.key_id, b"x", &ctx).unwrap_err().http_status(), 429);
/// assert!(kms.encrypt(&key.key_id, b"x", &ctx).is_ok());
/// # Ok::<(), localkms::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct Faults {
    armed: AtomicBool,
    rules: Mutex<HashMap<String, Rule>>,
}

/// Wire names of every action that can be made to fail, besides `"*"`.
pub(crate) fn known_action(name: &str) -> bool {
    name == "*" || (name != "DescribeRegions" && crate::action_names::is_known(name))
}

impl Faults {
    /// The next `times` calls of `action` fail with `fault` (replacing any
    /// rule for `action`).
    ///
    /// # Errors
    /// `InvalidParameter` (Action) for a name that is not an action that can
    /// fail (DescribeRegions cannot).
    pub fn fail_next(&self, action: &str, times: u64, fault: Fault) -> Result<()> {
        self.set(
            action,
            Rule::Count {
                remaining: times,
                fault,
            },
        )
    }

    /// Each call of `action` fails with `fault` with probability
    /// `probability` (0.0..=1.0), drawn from a generator seeded with `seed`,
    /// so a test sees the same sequence of failures on every run (for a
    /// single-threaded sequence of calls).
    ///
    /// # Errors
    /// `InvalidParameter` for an unknown action or a probability outside
    /// 0.0..=1.0.
    pub fn fail_with_probability(
        &self,
        action: &str,
        probability: f64,
        fault: Fault,
        seed: u64,
    ) -> Result<()> {
        if !(0.0..=1.0).contains(&probability) {
            return Err(Error::invalid("Probability", "must be from 0.0 to 1.0"));
        }
        self.set(
            action,
            Rule::Chance {
                p: probability,
                fault,
                state: seed,
            },
        )
    }

    /// Removes the rule of `action` (or of `"*"`).
    pub fn clear_action(&self, action: &str) {
        if let Ok(mut rules) = self.rules.lock() {
            rules.remove(action);
            self.armed.store(!rules.is_empty(), Ordering::Release);
        }
    }

    /// Removes every rule.
    pub fn clear(&self) {
        if let Ok(mut rules) = self.rules.lock() {
            rules.clear();
            self.armed.store(false, Ordering::Release);
        }
    }

    fn set(&self, action: &str, rule: Rule) -> Result<()> {
        if !known_action(action) {
            return Err(Error::invalid(
                "Action",
                format!(
                    "{} is not an action faults apply to",
                    crate::error::shorten(action)
                ),
            ));
        }
        let mut rules = self.rules.lock().map_err(|_| Error::InternalFailure)?;
        rules.insert(action.to_owned(), rule);
        self.armed.store(true, Ordering::Release);
        Ok(())
    }

    /// The injected error for one call of `action`, if a rule fires.
    pub(crate) fn check(&self, action: &str) -> Result<()> {
        if !self.armed.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut rules = self.rules.lock().map_err(|_| Error::InternalFailure)?;
        for name in [action, "*"] {
            let Some(rule) = rules.get_mut(name) else {
                continue;
            };
            match rule {
                Rule::Count { remaining, fault } => {
                    if *remaining > 0 {
                        *remaining -= 1;
                        let e = fault.error();
                        if *remaining == 0 {
                            rules.remove(name);
                            self.armed.store(!rules.is_empty(), Ordering::Release);
                        }
                        return Err(e);
                    }
                }
                Rule::Chance { p, fault, state } => {
                    if unit(splitmix64(state)) < *p {
                        return Err(fault.error());
                    }
                }
            }
            // An action's own rule decides; "*" applies only without one.
            return Ok(());
        }
        Ok(())
    }
}

/// SplitMix64: a small seeded generator (not for secrets).
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform float in [0, 1) from 53 random bits.
fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_rule_fires_then_disarms() {
        let f = Faults::default();
        f.fail_next("Encrypt", 2, Fault::ServiceUnavailable)
            .unwrap();
        assert_eq!(f.check("Decrypt"), Ok(()));
        assert_eq!(f.check("Encrypt"), Err(Error::ServiceUnavailable));
        assert_eq!(f.check("Encrypt"), Err(Error::ServiceUnavailable));
        assert_eq!(f.check("Encrypt"), Ok(()));
        assert!(!f.armed.load(Ordering::Acquire));
    }

    #[test]
    fn wildcard_and_action_rules() {
        let f = Faults::default();
        f.fail_next("*", 1, Fault::InternalFailure).unwrap();
        f.fail_next("Decrypt", 0, Fault::Throttling).unwrap();
        // Decrypt's own (spent) rule decides for Decrypt.
        assert_eq!(f.check("Decrypt"), Ok(()));
        assert_eq!(f.check("Encrypt"), Err(Error::InternalFailure));
        assert_eq!(f.check("Encrypt"), Ok(()));
        f.clear();
        assert_eq!(f.check("Decrypt"), Ok(()));
    }

    #[test]
    fn chance_rule_is_seeded() {
        let run = |seed| {
            let f = Faults::default();
            f.fail_with_probability("Encrypt", 0.5, Fault::Throttling, seed)
                .unwrap();
            (0..64)
                .map(|_| f.check("Encrypt").is_err())
                .collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        assert_ne!(a, run(8));
        let failures = a.iter().filter(|x| **x).count();
        assert!((10..=54).contains(&failures), "{failures}");
        let never = Faults::default();
        never
            .fail_with_probability("Encrypt", 0.0, Fault::Throttling, 1)
            .unwrap();
        assert!((0..100).all(|_| never.check("Encrypt").is_ok()));
        let always = Faults::default();
        always
            .fail_with_probability("Encrypt", 1.0, Fault::Throttling, 1)
            .unwrap();
        assert!((0..100).all(|_| always.check("Encrypt").is_err()));
    }

    #[test]
    fn fault_names() {
        for (text, f) in [
            ("Throttling", Fault::Throttling),
            ("Rejected.Throttling", Fault::Throttling),
            ("ServiceUnavailable", Fault::ServiceUnavailable),
            ("ServiceUnavailableTemporary", Fault::ServiceUnavailable),
            ("InternalFailure", Fault::InternalFailure),
        ] {
            assert_eq!(text.parse::<Fault>(), Ok(f));
        }
        assert!("throttling".parse::<Fault>().is_err());
        assert_eq!(Fault::Throttling.error().http_status(), 429);
        assert_eq!(Fault::ServiceUnavailable.error().http_status(), 503);
        assert_eq!(Fault::InternalFailure.error().http_status(), 500);
    }

    #[test]
    fn bad_rules_are_refused() {
        let f = Faults::default();
        assert_eq!(
            f.fail_next("Encrpyt", 1, Fault::Throttling)
                .unwrap_err()
                .code(),
            "InvalidParameter"
        );
        assert!(
            f.fail_next("DescribeRegions", 1, Fault::Throttling)
                .is_err()
        );
        assert!(
            f.fail_with_probability("Encrypt", 1.5, Fault::Throttling, 0)
                .is_err()
        );
        assert!(
            f.fail_with_probability("Encrypt", f64::NAN, Fault::Throttling, 0)
                .is_err()
        );
        assert!(f.fail_next("EnvelopeEncrypt", 1, Fault::Throttling).is_ok());
    }
}
