//! Every operation of the service, as `impl Kms` blocks, one file per concern.

pub(crate) mod account;
pub(crate) mod aliases;
pub(crate) mod asymmetric;
pub(crate) mod batch_tags;
pub(crate) mod envelope;
pub(crate) mod export;
pub(crate) mod fixtures;
pub(crate) mod handle;
pub(crate) mod import;
pub(crate) mod keys;
pub(crate) mod mac;
pub(crate) mod policy;
pub(crate) mod protection;
pub(crate) mod reencrypt;
pub(crate) mod regions;
pub(crate) mod resolve;
pub(crate) mod secrets;
pub(crate) mod sm4;
pub(crate) mod symmetric;
pub(crate) mod tags;
pub(crate) mod versions;

crate::kms::instrument::audited_ids! {
    symmetric::EncryptResponse => |r| (Some(&r.key_id), Some(&r.key_version_id));
    symmetric::DataKey => |r| (Some(&r.key_id), Some(&r.key_version_id));
    symmetric::Decrypted => |r| (Some(&r.key_id), Some(&r.key_version_id));
    reencrypt::ReEncryptResponse => |r| (Some(&r.key_id), Some(&r.key_version_id));
    versions::KeyVersion => |r| (Some(&r.key_id), Some(&r.key_version_id));
    import::ImportParameters => |r| (Some(&r.key_id), None);
    envelope::EnvelopeInfo => |r| (Some(&r.key_id), Some(&r.key_version_id));
    secrets::CreateSecretResponse => |r| (Some(&r.encryption_key_id), None);
    secrets::SecretValue => |r| (Some(&r.encryption_key_id), None);
    secrets::PutSecretValueResponse => |r| (Some(&r.encryption_key_id), None);
    secrets::SecretMetadata => |r| (Some(&r.encryption_key_id), None);
    secrets::BatchSecretValues => |_r| (None, None);
    secrets::DeleteSecretResponse => |_r| (None, None);
}
