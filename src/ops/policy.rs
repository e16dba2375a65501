//! Key policies (GetKeyPolicy, SetKeyPolicy, CreateKey `Policy`): stored and
//! returned, never enforced. This is a single-tenant library: whoever holds
//! the `Kms` (or the gateway's access key) may do everything.
//!
//! A policy is checked as the vendor bounds it: a JSON object of at most
//! 32768 bytes. Its statements are not interpreted. `PolicyName` may only be
//! `default`. A key with no policy set answers the default policy: the
//! account may do everything.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::kms::Kms;

/// The longest key policy, in bytes (the vendor's limit).
pub const MAX_KEY_POLICY_BYTES: usize = 32_768;

/// A key policy, as an operation's response (audited without its text).
pub(crate) struct KeyPolicy(pub(crate) String);

impl crate::kms::instrument::Audited for KeyPolicy {}

/// Checks a key policy document: a JSON object of at most 32768 bytes.
///
/// # Errors
/// `InvalidParameter` naming `Policy`.
pub(crate) fn check_key_policy(policy: &str) -> Result<()> {
    if policy.len() > MAX_KEY_POLICY_BYTES {
        return Err(Error::invalid("Policy", "must be at most 32768 bytes"));
    }
    match serde_json::from_str::<Value>(policy) {
        Ok(Value::Object(_)) => Ok(()),
        _ => Err(Error::invalid("Policy", "must be a JSON object")),
    }
}

fn check_policy_name(name: Option<&str>) -> Result<()> {
    match name {
        None | Some("default") => Ok(()),
        Some(_) => Err(Error::invalid("PolicyName", "must be default")),
    }
}

impl Kms {
    /// GetKeyPolicy: the key's policy, or the default one. `policy_name`
    /// may only be `default` (or absent).
    ///
    /// ```
    /// let kms = localkms::Kms::in_memory()?;
    /// let key = kms.create_key(&Default::default())?;
    /// let policy = r#"{"Version":"1","Statement":[]}"#;
    /// kms.set_key_policy(&key.key_id, policy, None)?;
    /// assert_eq!(kms.get_key_policy(&key.key_id, Some("default"))?, policy);
    /// # Ok::<(), localkms::Error>(())
    /// ```
    ///
    /// # Errors
    /// `MissingParameter` (KeyId), `InvalidParameter` (PolicyName),
    /// `Unsupported.Alias`, `Forbidden.KeyNotFound`.
    pub fn get_key_policy(&self, key_id: &str, policy_name: Option<&str>) -> Result<String> {
        self.operation("GetKeyPolicy", key_id, || {
            if key_id.is_empty() {
                return Err(Error::MissingParameter("KeyId"));
            }
            check_policy_name(policy_name)?;
            let id = self.resolve_key_id(key_id, "KeyId", false)?;
            let entry = self.entry(&id)?;
            Ok(KeyPolicy(entry.record.policy.clone().unwrap_or_else(|| {
                format!(
                    r#"{{"Version":"1","Statement":[{{"Sid":"kms default key policy","Effect":"Allow","Principal":{{"RAM":["acs:ram::{}:*"]}},"Action":["kms:*"],"Resource":["*"]}}]}}"#,
                    self.config.account_id
                )
            })))
        })
        .map(|p| p.0)
    }

    /// SetKeyPolicy: stores a policy (a JSON object of at most 32768
    /// bytes), in every key state. Not enforced.
    ///
    /// # Errors
    /// `MissingParameter` (KeyId, Policy), `InvalidParameter` (Policy,
    /// PolicyName), `Unsupported.Alias`, `Forbidden.KeyNotFound`.
    pub fn set_key_policy(
        &self,
        key_id: &str,
        policy: &str,
        policy_name: Option<&str>,
    ) -> Result<()> {
        self.operation("SetKeyPolicy", key_id, || {
            if key_id.is_empty() {
                return Err(Error::MissingParameter("KeyId"));
            }
            check_policy_name(policy_name)?;
            if policy.is_empty() {
                return Err(Error::MissingParameter("Policy"));
            }
            check_key_policy(policy)?;
            let id = self.resolve_key_id(key_id, "KeyId", false)?;
            self.update_key(&id, |r, _| {
                r.policy = Some(policy.to_owned());
                Ok(())
            })?;
            Ok(())
        })
    }
}
