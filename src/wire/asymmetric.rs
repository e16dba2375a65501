//! The wire handlers of the asymmetric and MAC actions (SPEC section 11):
//! GetPublicKey, AsymmetricSign, AsymmetricVerify, AsymmetricEncrypt,
//! AsymmetricDecrypt, GenerateMac and VerifyMac. Binary parameters and
//! results travel as standard base64; `KeyVersionId` is required for every
//! asymmetric action, as the vendor requires.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use zeroize::Zeroizing;

use super::Fields;
use super::params::Params;
use crate::crypto::asym::Algorithm;
use crate::error::{Error, Result};
use crate::kms::Kms;
use crate::ops::asymmetric::asym_error;
use crate::types::KeySpec;

/// CreateKey's `KeySpec`, refusing the hardware-only AES specs clearly.
pub(super) fn key_spec(p: &Params<'_>) -> Result<Option<KeySpec>> {
    match p.optional("KeySpec") {
        Some(s @ ("Aliyun_AES_128" | "Aliyun_AES_192")) => Err(Error::invalid(
            "KeySpec",
            format!(
                "{s} exists only in the vendor's hardware key management instances; use Aliyun_AES_256 or Aliyun_SM4"
            ),
        )),
        _ => p.parse("KeySpec"),
    }
}

fn algorithm(p: &Params<'_>) -> Result<Algorithm> {
    p.required("Algorithm")?.parse().map_err(asym_error)
}

/// A required base64 parameter, decoded.
fn bytes(p: &Params<'_>, name: &'static str) -> Result<Zeroizing<Vec<u8>>> {
    STANDARD
        .decode(p.required(name)?)
        .map(Zeroizing::new)
        .map_err(|_| Error::invalid(name, "must be standard base64"))
}

fn member(f: &mut Fields, name: &str, value: impl Into<Value>) {
    f.insert(name.into(), value.into());
}

fn ids(key_id: String, key_version_id: String) -> Fields {
    let mut f = Fields::new();
    member(&mut f, "KeyId", key_id);
    member(&mut f, "KeyVersionId", key_version_id);
    f
}

pub(super) fn get_public_key(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let r = kms.get_public_key(p.required("KeyId")?, p.required("KeyVersionId")?)?;
    let mut f = ids(r.key_id, r.key_version_id);
    member(&mut f, "PublicKey", r.public_key);
    Ok(f)
}

pub(super) fn asymmetric_sign(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let (key_id, version) = (p.required("KeyId")?, p.required("KeyVersionId")?);
    let alg = algorithm(p)?;
    let digest = bytes(p, "Digest")?;
    let r = kms.asymmetric_sign(key_id, version, alg, &digest)?;
    let mut f = ids(r.key_id, r.key_version_id);
    member(&mut f, "Value", STANDARD.encode(&r.value));
    Ok(f)
}

pub(super) fn asymmetric_verify(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let (key_id, version) = (p.required("KeyId")?, p.required("KeyVersionId")?);
    let alg = algorithm(p)?;
    let digest = bytes(p, "Digest")?;
    let value = bytes(p, "Value")?;
    let r = kms.asymmetric_verify(key_id, version, alg, &digest, &value)?;
    let mut f = ids(r.key_id, r.key_version_id);
    member(&mut f, "Value", r.value);
    Ok(f)
}

pub(super) fn asymmetric_encrypt(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let (key_id, version) = (p.required("KeyId")?, p.required("KeyVersionId")?);
    let alg = algorithm(p)?;
    let plaintext = bytes(p, "Plaintext")?;
    let r = kms.asymmetric_encrypt(key_id, version, alg, &plaintext)?;
    let mut f = ids(r.key_id, r.key_version_id);
    member(
        &mut f,
        "CiphertextBlob",
        STANDARD.encode(&r.ciphertext_blob),
    );
    Ok(f)
}

pub(super) fn asymmetric_decrypt(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let (key_id, version) = (p.required("KeyId")?, p.required("KeyVersionId")?);
    let alg = algorithm(p)?;
    let blob = STANDARD
        .decode(p.required("CiphertextBlob")?)
        .map_err(|_| Error::invalid("CiphertextBlob", "must be standard base64"))?;
    let r = kms.asymmetric_decrypt(key_id, version, alg, &blob)?;
    let mut f = ids(r.key_id, r.key_version_id);
    let mut text = r.plaintext.to_base64();
    member(&mut f, "Plaintext", std::mem::take(&mut *text));
    Ok(f)
}

pub(super) fn generate_mac(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let key_id = p.required("KeyId")?;
    let alg = algorithm(p)?;
    let message = bytes(p, "Message")?;
    let r = kms.generate_mac(key_id, alg, &message)?;
    let mut f = ids(r.key_id, r.key_version_id);
    member(&mut f, "Algorithm", r.algorithm.as_str());
    member(&mut f, "Mac", STANDARD.encode(&r.mac));
    Ok(f)
}

pub(super) fn verify_mac(kms: &Kms, p: &Params<'_>) -> Result<Fields> {
    let key_id = p.required("KeyId")?;
    let alg = algorithm(p)?;
    let message = bytes(p, "Message")?;
    let mac = bytes(p, "Mac")?;
    let r = kms.verify_mac(key_id, alg, &message, &mac)?;
    let mut f = ids(r.key_id, r.key_version_id);
    member(&mut f, "Algorithm", r.algorithm.as_str());
    member(&mut f, "Value", r.value);
    Ok(f)
}
