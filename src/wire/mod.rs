//! The wire layer (SPEC section 7): the API's `Action` + parameters form in,
//! an HTTP status and a JSON or XML body out. It opens no sockets: a server
//! (`localkms serve`, or your own: see `examples/gateway.rs`) or a command
//! line hands it the parameters.
//!
//! ```
//! use localkms::{Kms, wire};
//! let kms = Kms::in_memory()?;
//! let params = |p: &[(&str, &str)]| -> Vec<(String, String)> {
//!     p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
//! };
//! let created = wire::dispatch(&kms, &params(&[("Action", "CreateKey")]));
//! assert_eq!(created.status, 200);
//! let missing = wire::dispatch(&kms, &params(&[("Action", "DescribeKey")]));
//! assert_eq!(missing.status, 400);
//! assert!(missing.body.contains(r#""Code":"MissingParameter""#));
//! # Ok::<(), localkms::Error>(())
//! ```
//!
//! Every action is one entry of the `ACTIONS` table and one parse-and-call
//! function in `actions.rs`; parameter parsing is shared (`params.rs`), and
//! so is rendering (`render.rs`). Request signatures are checked by
//! [`sign::Verifier`] before [`dispatch`] is called; [`handle`] does both.

mod actions;
mod asymmetric;
mod current;
mod params;
mod render;
mod secrets;
pub mod sign;

use serde_json::{Map, Value};
use zeroize::Zeroize as _;

use crate::audit::request_id;
use crate::error::{Error, Result};
use crate::kms::Kms;
use params::Params;
use render::Format;

pub use sign::{HttpRequest, Verifier};

/// The `HostId` of error bodies.
const HOST_ID: &str = "localkms";

/// An HTTP response: status, content type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status: 200, or the error's status.
    pub status: u16,
    /// The `Content-Type` of `body`.
    pub content_type: &'static str,
    /// JSON (the default) or XML (`Format=XML`).
    pub body: String,
}

/// An action's result: the response members besides `RequestId`.
type Fields = Map<String, Value>;

/// One action of the API.
struct Action {
    /// The exact `Action` string.
    name: &'static str,
    /// One line for help texts.
    summary: &'static str,
    /// Parses the parameters and calls the library.
    run: fn(&Kms, &Params<'_>) -> Result<Fields>,
}

/// Every action the wire layer answers, in the order of SPEC sections 4 and 6.
static ACTIONS: &[Action] = &[
    Action {
        name: "CreateKey",
        summary: "Create a customer master key",
        run: actions::create_key,
    },
    Action {
        name: "DescribeKey",
        summary: "Show a key's metadata",
        run: actions::describe_key,
    },
    Action {
        name: "ListKeys",
        summary: "List keys, a page at a time",
        run: actions::list_keys,
    },
    Action {
        name: "UpdateKeyDescription",
        summary: "Replace a key's description",
        run: actions::update_key_description,
    },
    Action {
        name: "EnableKey",
        summary: "Enable a key",
        run: actions::enable_key,
    },
    Action {
        name: "DisableKey",
        summary: "Disable a key",
        run: actions::disable_key,
    },
    Action {
        name: "ScheduleKeyDeletion",
        summary: "Schedule a key's deletion after 7 to 30 days",
        run: actions::schedule_key_deletion,
    },
    Action {
        name: "CancelKeyDeletion",
        summary: "Cancel a key's scheduled deletion",
        run: actions::cancel_key_deletion,
    },
    Action {
        name: "Encrypt",
        summary: "Encrypt up to 6 KiB of text under a key",
        run: actions::encrypt,
    },
    Action {
        name: "GenerateDataKey",
        summary: "Generate a data key, returned in plaintext and encrypted",
        run: actions::generate_data_key,
    },
    Action {
        name: "GenerateDataKeyWithoutPlaintext",
        summary: "Generate a data key, returned only encrypted",
        run: actions::generate_data_key_without_plaintext,
    },
    Action {
        name: "Decrypt",
        summary: "Decrypt a CiphertextBlob from Encrypt or GenerateDataKey",
        run: actions::decrypt,
    },
    Action {
        name: "ReEncrypt",
        summary: "Decrypt a CiphertextBlob and encrypt it again under another key or context",
        run: actions::re_encrypt,
    },
    Action {
        name: "UpdateRotationPolicy",
        summary: "Turn automatic rotation on or off, and set its interval",
        run: actions::update_rotation_policy,
    },
    Action {
        name: "CreateKeyVersion",
        summary: "Rotate a key now: a new primary version",
        run: actions::create_key_version,
    },
    Action {
        name: "DescribeKeyVersion",
        summary: "Show a key version",
        run: actions::describe_key_version,
    },
    Action {
        name: "ListKeyVersions",
        summary: "List a key's versions, a page at a time",
        run: actions::list_key_versions,
    },
    Action {
        name: "GetParametersForImport",
        summary: "Get a wrapping public key and import token for an EXTERNAL key",
        run: actions::get_parameters_for_import,
    },
    Action {
        name: "ImportKeyMaterial",
        summary: "Import wrapped key material into an EXTERNAL key",
        run: actions::import_key_material,
    },
    Action {
        name: "DeleteKeyMaterial",
        summary: "Delete an EXTERNAL key's imported material",
        run: actions::delete_key_material,
    },
    Action {
        name: "CreateAlias",
        summary: "Create an alias for a key",
        run: actions::create_alias,
    },
    Action {
        name: "UpdateAlias",
        summary: "Point an alias at another key",
        run: actions::update_alias,
    },
    Action {
        name: "DeleteAlias",
        summary: "Delete an alias",
        run: actions::delete_alias,
    },
    Action {
        name: "ListAliases",
        summary: "List aliases, a page at a time",
        run: actions::list_aliases,
    },
    Action {
        name: "ListAliasesByKeyId",
        summary: "List a key's aliases, a page at a time",
        run: actions::list_aliases_by_key_id,
    },
    Action {
        name: "TagResource",
        summary: "Add or overwrite tags on a key",
        run: actions::tag_resource,
    },
    Action {
        name: "UntagResource",
        summary: "Remove tags from a key",
        run: actions::untag_resource,
    },
    Action {
        name: "ListResourceTags",
        summary: "List a key's tags",
        run: actions::list_resource_tags,
    },
    Action {
        name: "DescribeRegions",
        summary: "List the region this service answers for",
        run: actions::describe_regions,
    },
    Action {
        name: "CreateSecret",
        summary: "Create a secret and store its first version",
        run: secrets::create_secret,
    },
    Action {
        name: "GetSecretValue",
        summary: "Read a secret's value (ACSCurrent, or a version or stage)",
        run: secrets::get_secret_value,
    },
    Action {
        name: "BatchGetSecretValue",
        summary: "Read the values of up to 20 secrets",
        run: secrets::batch_get_secret_value,
    },
    Action {
        name: "PutSecretValue",
        summary: "Store a new version of a secret's value",
        run: secrets::put_secret_value,
    },
    Action {
        name: "DescribeSecret",
        summary: "Show a secret's metadata",
        run: secrets::describe_secret,
    },
    Action {
        name: "ListSecrets",
        summary: "List secrets, filtered, a page at a time",
        run: secrets::list_secrets,
    },
    Action {
        name: "UpdateSecret",
        summary: "Replace a secret's description",
        run: secrets::update_secret,
    },
    Action {
        name: "DeleteSecret",
        summary: "Delete a secret after a recovery window, or at once",
        run: secrets::delete_secret,
    },
    Action {
        name: "RestoreSecret",
        summary: "Cancel a secret's scheduled deletion",
        run: secrets::restore_secret,
    },
    Action {
        name: "ListSecretVersionIds",
        summary: "List a secret's versions and stages",
        run: secrets::list_secret_version_ids,
    },
    Action {
        name: "UpdateSecretVersionStage",
        summary: "Move, attach or remove a version stage",
        run: secrets::update_secret_version_stage,
    },
    Action {
        name: "RotateSecret",
        summary: "Rotate a managed secret now (not for Generic secrets)",
        run: secrets::rotate_secret,
    },
    Action {
        name: "UpdateSecretRotationPolicy",
        summary: "Set a managed secret's rotation (not for Generic secrets)",
        run: secrets::update_secret_rotation_policy,
    },
    Action {
        name: "GetRandomPassword",
        summary: "Generate a random password",
        run: secrets::get_random_password,
    },
    Action {
        name: "GetSecretPolicy",
        summary: "Show a secret's policy",
        run: secrets::get_secret_policy,
    },
    Action {
        name: "SetSecretPolicy",
        summary: "Store a secret's policy (not enforced)",
        run: secrets::set_secret_policy,
    },
    Action {
        name: "GetPublicKey",
        summary: "Get the public key (PEM) of an asymmetric key version",
        run: asymmetric::get_public_key,
    },
    Action {
        name: "AsymmetricSign",
        summary: "Sign a digest with an asymmetric key version",
        run: asymmetric::asymmetric_sign,
    },
    Action {
        name: "AsymmetricVerify",
        summary: "Verify a signature over a digest with an asymmetric key version",
        run: asymmetric::asymmetric_verify,
    },
    Action {
        name: "AsymmetricEncrypt",
        summary: "Encrypt with the public key of an asymmetric key version",
        run: asymmetric::asymmetric_encrypt,
    },
    Action {
        name: "AsymmetricDecrypt",
        summary: "Decrypt with the private key of an asymmetric key version",
        run: asymmetric::asymmetric_decrypt,
    },
    Action {
        name: "GenerateMac",
        summary: "Compute the HMAC of a message with an HMAC key",
        run: asymmetric::generate_mac,
    },
    Action {
        name: "VerifyMac",
        summary: "Verify the HMAC of a message with an HMAC key",
        run: asymmetric::verify_mac,
    },
    Action {
        name: "ExportDataKey",
        summary: "Re-wrap a data key blob under a caller's public key",
        run: current::export_data_key,
    },
    Action {
        name: "GenerateAndExportDataKey",
        summary: "Generate a data key, returned encrypted and wrapped under a public key",
        run: current::generate_and_export_data_key,
    },
    Action {
        name: "SetDeletionProtection",
        summary: "Turn a key's deletion protection on or off",
        run: current::set_deletion_protection,
    },
    Action {
        name: "GetKeyPolicy",
        summary: "Show a key's policy",
        run: current::get_key_policy,
    },
    Action {
        name: "SetKeyPolicy",
        summary: "Store a key's policy (not enforced)",
        run: current::set_key_policy,
    },
    Action {
        name: "TagResources",
        summary: "Tag up to 50 keys or secrets",
        run: current::tag_resources,
    },
    Action {
        name: "UntagResources",
        summary: "Remove tags from up to 50 keys or secrets",
        run: current::untag_resources,
    },
    Action {
        name: "ListTagResources",
        summary: "List the tags of keys or secrets, a page at a time",
        run: current::list_tag_resources,
    },
    Action {
        name: "DescribeAccountKmsStatus",
        summary: "Show the service's status for the account (always Enabled)",
        run: current::describe_account_kms_status,
    },
    Action {
        name: "OpenKmsService",
        summary: "Open the service for the account (always open)",
        run: current::open_kms_service,
    },
];

/// The actions [`dispatch`] answers, with a one-line summary of each.
pub fn actions() -> impl Iterator<Item = (&'static str, &'static str)> {
    ACTIONS.iter().map(|a| (a.name, a.summary))
}

/// Answers one request given as its parameters: `Action`, optionally
/// `Format` (`XML` in any case for XML; JSON otherwise), and the action's
/// parameters. Other parameters (signature, `Version`, `RegionId`) are
/// ignored: check signatures with [`Verifier`] first.
///
/// Never panics. Errors in the input are answered with the API's error code
/// and status, never 500; 500 (`InternalFailure`) means a storage failure.
///
/// The pairs may be any string types: `&[(&str, &str)]`,
/// `&[(String, String)]`, and so on.
///
/// ```
/// let kms = localkms::Kms::in_memory()?;
/// let r = localkms::wire::dispatch(&kms, &[("Action", "DescribeRegions")]);
/// assert_eq!(r.status, 200);
/// # Ok::<(), localkms::Error>(())
/// ```
pub fn dispatch<K: AsRef<str>, V: AsRef<str>>(kms: &Kms, params: &[(K, V)]) -> Response {
    let pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .collect();
    dispatch_pairs(kms, &pairs)
}

fn dispatch_pairs(kms: &Kms, params: &[(&str, &str)]) -> Response {
    let format = format_of(params);
    // Made first, so the audit event of the operation carries it too.
    let id = request_id();
    let outcome = crate::audit::with_request_id(&id, || {
        Params::new(params).and_then(|p| {
            let name = p.required("Action")?;
            let action = ACTIONS.iter().find(|a| a.name == name).ok_or_else(|| {
                current::refusal(name)
                    .unwrap_or_else(|| Error::InvalidAction(crate::error::shorten(name)))
            })?;
            let key = p.optional("KeyId").or(p.optional("DestinationKeyId"));
            // DryRun (the actions whose 3.3.1 request model has it): the
            // action runs behind the write barrier of `Kms::dry_run`, and
            // a request that would succeed answers DryRunOperationError.
            let run = || {
                let dry = crate::action_names::DRY_RUN_ACTIONS.contains(&action.name)
                    && p.bool("DryRun")?.unwrap_or(false);
                if !dry {
                    return (action.run)(kms, &p);
                }
                kms.dry_run(|k| (action.run)(k, &p))
                    .and(Err(Error::DryRunOperation))
            };
            Ok((action.name, kms.wire_action(action.name, key, run)?))
        })
    });
    match outcome {
        Ok((name, fields)) => success(format, name, fields, id),
        Err(e) => error_response(format, &e, id),
    }
}

/// Response members that may hold plaintext, cleared after rendering.
const SECRET_MEMBERS: &[&str] = &["Plaintext", "SecretData", "SecretValues", "RandomPassword"];

fn success(format: Format, action: &str, mut fields: Fields, request_id: String) -> Response {
    fields.insert("RequestId".into(), Value::String(request_id));
    let body = render::body(format, action, &fields);
    // Plaintext members (Decrypt, GenerateDataKey): clear this copy. The
    // body is the caller's to handle.
    for name in SECRET_MEMBERS {
        if let Some(v) = fields.get_mut(*name) {
            clear(v);
        }
    }
    Response {
        status: 200,
        content_type: format.content_type(),
        body,
    }
}

/// Zeroizes every string in `v`.
fn clear(v: &mut Value) {
    match v {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(clear),
        Value::Object(m) => m.values_mut().for_each(clear),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// The error body of SPEC section 7: `RequestId`, `HostId`, `Code`,
/// `Message` and `HttpStatus` (an integer in JSON), XML root `<Error>`.
fn error_response(format: Format, e: &Error, request_id: String) -> Response {
    let status = e.http_status();
    let mut fields = Fields::new();
    fields.insert("RequestId".into(), Value::String(request_id));
    fields.insert("HostId".into(), Value::String(HOST_ID.into()));
    fields.insert("Code".into(), Value::String(e.code().into()));
    fields.insert("Message".into(), Value::String(e.to_string()));
    fields.insert("HttpStatus".into(), Value::from(status));
    Response {
        status,
        content_type: format.content_type(),
        body: render::error_body(format, &fields),
    }
}

/// The error response for `e` (for failures before [`dispatch`], such as a
/// bad signature), in the format the request's `Format` parameter asks for.
pub fn error<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)], e: &Error) -> Response {
    let format = Format::from_param(
        params
            .iter()
            .find(|(k, _)| k.as_ref() == "Format")
            .map(|(_, v)| v.as_ref()),
    );
    error_response(format, e, request_id())
}

/// Verifies a request received over HTTP and answers it: what a gateway does
/// with each request.
pub fn handle(kms: &Kms, verifier: &Verifier, req: &HttpRequest<'_>) -> Response {
    match verifier.verify(kms, req) {
        Ok(params) => dispatch(kms, &params),
        Err(e) => error(&req.params_unverified(), &e),
    }
}

/// The `Format` the first `Format` parameter asks for.
fn format_of(params: &[(&str, &str)]) -> Format {
    Format::from_param(params.iter().find(|(k, _)| *k == "Format").map(|(_, v)| *v))
}

#[cfg(test)]
mod table_tests {
    use super::ACTIONS;

    #[test]
    fn the_action_table_matches_the_names_below_it() {
        let names: Vec<&str> = ACTIONS.iter().map(|a| a.name).collect();
        assert_eq!(names, crate::action_names::WIRE_ACTIONS);
    }
}
