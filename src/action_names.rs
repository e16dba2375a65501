//! The name of every operation, as the API spells its `Action`: the wire
//! actions and the operations of the Rust API that have no wire action.
//! Fault rules and audit events name operations this way. The wire layer's
//! action table is checked against [`WIRE_ACTIONS`] by a test, so the two
//! cannot drift apart.

/// Every action the wire layer answers, in the order of its action table.
pub(crate) const WIRE_ACTIONS: &[&str] = &[
    "CreateKey",
    "DescribeKey",
    "ListKeys",
    "UpdateKeyDescription",
    "EnableKey",
    "DisableKey",
    "ScheduleKeyDeletion",
    "CancelKeyDeletion",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "Decrypt",
    "ReEncrypt",
    "UpdateRotationPolicy",
    "CreateKeyVersion",
    "DescribeKeyVersion",
    "ListKeyVersions",
    "GetParametersForImport",
    "ImportKeyMaterial",
    "DeleteKeyMaterial",
    "CreateAlias",
    "UpdateAlias",
    "DeleteAlias",
    "ListAliases",
    "ListAliasesByKeyId",
    "TagResource",
    "UntagResource",
    "ListResourceTags",
    "DescribeRegions",
    "CreateSecret",
    "GetSecretValue",
    "BatchGetSecretValue",
    "PutSecretValue",
    "DescribeSecret",
    "ListSecrets",
    "UpdateSecret",
    "DeleteSecret",
    "RestoreSecret",
    "ListSecretVersionIds",
    "UpdateSecretVersionStage",
    "RotateSecret",
    "UpdateSecretRotationPolicy",
    "GetRandomPassword",
    "GetSecretPolicy",
    "SetSecretPolicy",
    "GetPublicKey",
    "AsymmetricSign",
    "AsymmetricVerify",
    "AsymmetricEncrypt",
    "AsymmetricDecrypt",
    "GenerateMac",
    "VerifyMac",
    "ExportDataKey",
    "GenerateAndExportDataKey",
    "SetDeletionProtection",
    "GetKeyPolicy",
    "SetKeyPolicy",
    "TagResources",
    "UntagResources",
    "ListTagResources",
    "DescribeAccountKmsStatus",
    "OpenKmsService",
];

/// The actions whose request model in `alibabacloud-kms20160120` 3.3.1 has
/// `DryRun`, which the wire layer honours for each that it answers (see
/// `Kms::dry_run`). The asymmetric ones are answered once their actions are
/// in the table.
#[cfg_attr(not(feature = "wire"), allow(dead_code))] // read by the wire layer only
pub(crate) const DRY_RUN_ACTIONS: &[&str] = &[
    "Encrypt",
    "Decrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncrypt",
    "ExportDataKey",
    "GenerateAndExportDataKey",
    "GetSecretValue",
    "AsymmetricEncrypt",
    "AsymmetricDecrypt",
    "AsymmetricSign",
    "AsymmetricVerify",
    "GetPublicKey",
    "GenerateMac",
    "VerifyMac",
];

/// Operations of the Rust API that have no wire action, named like actions.
pub(crate) const RUST_ONLY_ACTIONS: &[&str] = &[
    "EnvelopeEncrypt",
    "EnvelopeDecrypt",
    "EnvelopeEncryptStream",
    "EnvelopeDecryptStream",
];

/// True when `name` names an operation (a wire action or a Rust-only one).
pub(crate) fn is_known(name: &str) -> bool {
    WIRE_ACTIONS.contains(&name) || RUST_ONLY_ACTIONS.contains(&name)
}
