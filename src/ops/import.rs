//! Bring your own key (SPEC sections 2, 4, 5 and 8): GetParametersForImport,
//! ImportKeyMaterial and DeleteKeyMaterial, for `EXTERNAL` keys.
//!
//! The flow: GetParametersForImport makes a fresh RSA-2048 key pair and an
//! import token (see `crate::crypto::import_token`) that is valid for 24 hours. The
//! user wraps 32 bytes of material under the public key with the chosen
//! algorithm and calls ImportKeyMaterial with the wrapped material and the
//! token. The private key is sealed in the store (namespace `import-token`,
//! id `{KeyId}/{token id}-{expiry}`), so a token survives a reopen of the
//! store, and goes when its key is purged.
//!
//! Tokens are revoked by deleting their records (SPEC section 8): a
//! successful import, DeleteKeyMaterial and material expiry delete every
//! token record of the key, in the same batch as the change itself, so a
//! token kept from before cannot bring deleted material back. A key holds at
//! most [`MAX_LIVE_IMPORT_TOKENS`]; the token id begins with a per-key issue
//! number, so a key's records scan in order of issue and the oldest is
//! evicted first, even among tokens issued in the same second.
//!
//! Store-wide secret: `meta/import-secret` holds 32 random bytes, sealed,
//! made on first use under the writer lock. Two keys are derived from it:
//! one tags import tokens, the other makes the keyed fingerprint of imported
//! material that lets a key accept only its first material again. The
//! fingerprint is kept in the key record; the material never is.
//!
//! Unwrapping is uniform: a ciphertext of the wrong size, bad PKCS#1 v1.5
//! padding, bad OAEP, a message that is not 32 bytes and material that differs
//! from the key's earlier material all end in the one
//! [`Error::InvalidKeyMaterial`], decided by a single branch at the end. The
//! PKCS#1 v1.5 check is done here, in constant time, on a fixed layout: only a
//! 32-byte message is acceptable, so the separator's position is known.
//! (Implicit rejection, which `rsa` offers, was not used: it turns a malformed
//! ciphertext into a synthetic message that is 32 bytes long about once in
//! 246 tries, which a first import would accept without a word.)

use base64::Engine as _;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, EncodePublicKey as _};
use rsa::traits::PublicKeyParts as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use subtle::{Choice, ConstantTimeEq as _};
use zeroize::Zeroizing;

use crate::clock::format_timestamp;
use crate::crypto::import_token::{self, ImportToken, TOKEN_ID_LEN, TokenKey, hmac_sha256};
use crate::error::{Error, Rejection, Result};
use crate::kms::Kms;
use crate::secret::{KeyMaterial, fill_random};
use crate::store::record::{KeyRecord, NS_MATERIAL, NS_META, VersionMeta, material_id, time_bytes};
use crate::store::{Batch, Scan};
use crate::types::{KeyState, Origin, WrappingAlgorithm, WrappingKeySpec};

/// Where the sealed private keys of import tokens live. Ids start with
/// `{KeyId}/`, so purging a key removes them (`PER_KEY_NAMESPACES`).
pub(crate) const NS_IMPORT_TOKEN: &str = "import-token";
/// The store-wide import secret, sealed, in `meta`.
const META_IMPORT_SECRET: &[u8] = b"import-secret";
/// How long an import token is valid: 24 hours.
pub const IMPORT_TOKEN_LIFETIME_SECONDS: i64 = 86_400;
/// How many live import tokens a key holds. GetParametersForImport on a key
/// that holds this many evicts the oldest (SPEC section 8).
pub const MAX_LIVE_IMPORT_TOKENS: usize = 10;
/// Bytes of a token id that hold its issue number, u64 big-endian; the rest
/// is random.
const ISSUE_LEN: usize = 8;
/// Bytes of key material an `EXTERNAL` key takes.
const MATERIAL_LEN: usize = 32;
/// The longest `EncryptedKeyMaterial` text looked at. A wrapped RSA-2048
/// ciphertext is 344 characters; anything much longer is refused undecoded.
const MAX_ENCRYPTED_TEXT_LEN: usize = 1024;
const FINGERPRINT_LABEL: &[u8] = b"localkms/material-fingerprint/v1\0";
const TOKEN_KEY_LABEL: &[u8] = b"localkms/import-secret/token-key/v1";
const FINGERPRINT_KEY_LABEL: &[u8] = b"localkms/import-secret/fingerprint-key/v1";

/// The response of GetParametersForImport.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImportParameters {
    /// The key the token is for.
    pub key_id: String,
    /// The token to give back to ImportKeyMaterial.
    pub import_token: String,
    /// The wrapping public key: base64 of its DER SubjectPublicKeyInfo.
    pub public_key: String,
    /// When the token (and its key pair) stops working, `YYYY-MM-DDThh:mm:ssZ`.
    pub token_expire_time: String,
}

/// The two keys derived from the store's import secret. Zeroized on drop.
struct ImportSecrets {
    token: TokenKey,
    fingerprint: Zeroizing<[u8; 32]>,
}

impl ImportSecrets {
    fn derive(secret: &[u8; 32]) -> Self {
        Self {
            token: TokenKey::new(hmac_sha256(secret, &[TOKEN_KEY_LABEL])),
            fingerprint: hmac_sha256(secret, &[FINGERPRINT_KEY_LABEL]),
        }
    }
}

/// The keyed fingerprint of a key's material: HMAC-SHA-256 under the
/// fingerprint key, over the label, the KeyId and the material. Binding the
/// KeyId keeps two keys with the same material from showing it.
fn fingerprint(key: &[u8; 32], key_id: &str, material: &[u8; MATERIAL_LEN]) -> [u8; 32] {
    *hmac_sha256(
        key,
        &[FINGERPRINT_LABEL, key_id.as_bytes(), b"\0", material],
    )
}

fn to_hex(bytes: &[u8]) -> String {
    base16ct::lower::encode_string(bytes)
}

fn from_hex_32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    (s.len() == 64 && base16ct::mixed::decode(s, &mut out).is_ok()).then_some(out)
}

/// The id of a token's sealed private key: `{KeyId}/{token id}-{expiry}`,
/// in lowercase hex, with the expiry as order-preserving bytes. The token id
/// begins with the token's issue number, so a key's records scan in order of
/// issue.
fn token_record_id(token: &ImportToken) -> Vec<u8> {
    format!(
        "{}/{}-{}",
        token.key_id,
        to_hex(&token.token_id),
        to_hex(&time_bytes(token.expire))
    )
    .into_bytes()
}

/// The issue number and expiry in a token record id of `key_id`, if the id
/// is well formed. Ids of the first format (`{KeyId}/{expiry}-{token id}`,
/// with no issue number) give `None`.
fn parse_token_record_id(id: &[u8], key_id: &str) -> Option<(u64, i64)> {
    let rest = id.strip_prefix(key_id.as_bytes())?.strip_prefix(b"/")?;
    let rest = std::str::from_utf8(rest).ok()?;
    let (token_id, expire) = rest.split_once('-')?;
    if token_id.len() != 2 * TOKEN_ID_LEN || expire.len() != 16 {
        return None;
    }
    let is_hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !is_hex(token_id) || !is_hex(expire) {
        return None;
    }
    let issue = u64::from_str_radix(token_id.get(..2 * ISSUE_LEN)?, 16).ok()?;
    let expire = u64::from_str_radix(expire, 16).ok()?;
    let expire = crate::store::record::time_from_bytes(&expire.to_be_bytes())?;
    Some((issue, expire))
}

/// The prefix of every token record of `key_id`.
fn token_prefix(key_id: &str) -> Vec<u8> {
    format!("{key_id}/").into_bytes()
}

/// Origin check for the operations of this module (before any state check,
/// SPEC section 8).
fn require_external(r: &KeyRecord) -> Result<()> {
    match r.origin {
        Origin::External => Ok(()),
        Origin::AliyunKms => Err(Error::UnsupportedOrigin {
            key_id: r.key_id.clone(),
            reason: "only EXTERNAL keys take imported key material",
        }),
    }
}

/// The ImportKeyMaterial cell of the state table: refused only in
/// `PendingDeletion`.
fn require_importable(r: &KeyRecord) -> Result<()> {
    require_external(r)?;
    match r.state {
        KeyState::PendingDeletion => Err(Error::rejected(
            Rejection::StateModifiedFailed,
            &r.key_id,
            r.state,
        )),
        KeyState::Enabled | KeyState::Disabled | KeyState::PendingImport => Ok(()),
    }
}

/// A key with versions but no material fingerprint never took its material
/// through ImportKeyMaterial (an `EXTERNAL` origin written over another key's
/// record, for example), so no material can be checked against it: import
/// is refused rather than let new material replace the old.
fn require_fingerprint_if_versions(r: &KeyRecord) -> Result<()> {
    if !r.versions.is_empty() && r.material_fingerprint.is_none() {
        return Err(Error::CorruptStore(
            format!(
                "key {} has key versions but no material fingerprint, so its material \
                 did not come through ImportKeyMaterial and cannot be checked; import refused",
                r.key_id
            )
            .into(),
        ));
    }
    Ok(())
}

/// True when `record`'s imported material has expired at `now`.
pub(crate) fn material_expiry_due(record: &KeyRecord, now: i64) -> bool {
    record.material_expire.is_some_and(|t| now >= t)
}

/// DeleteKeyMaterial's change to the key, also applied when material
/// expires: the sealed material goes, the versions stay (a re-import of the
/// same material restores them), `MaterialExpireTime` is cleared, and the
/// state becomes `PendingImport` unless the key is pending deletion. Both
/// callers also revoke the key's tokens ([`Kms::revoke_import_tokens`]).
pub(crate) fn remove_material(record: &mut KeyRecord, batch: &mut Batch) {
    for v in &record.versions {
        batch.delete(NS_MATERIAL, material_id(&record.key_id, &v.id));
    }
    record.material_deleted = true;
    record.material_expire = None;
    if record.state != KeyState::PendingDeletion {
        record.state = KeyState::PendingImport;
    }
}

/// A fresh wrapping key pair of `spec`.
fn generate_wrapping_key(spec: WrappingKeySpec) -> Result<rsa::PrivateKey> {
    let bits = match spec {
        WrappingKeySpec::Rsa2048 => 2048,
    };
    rsa::PrivateKey::new(&mut getrandom::SysRng, bits).map_err(|_| Error::InternalFailure)
}

/// SHA-256 of the DER SubjectPublicKeyInfo of `key`'s public half, and the DER.
fn public_key_der(key: &rsa::PrivateKey) -> Result<(Vec<u8>, [u8; 32])> {
    let der = key
        .to_public_key()
        .to_public_key_der()
        .map_err(|_| Error::InternalFailure)?
        .into_vec();
    let hash = Sha256::digest(&der).into();
    Ok((der, hash))
}

/// What unwrapping gives: always 32 candidate bytes, and whether they are a
/// correctly unwrapped 32-byte message. The two are combined with the
/// material check before anything branches on them.
struct Unwrapped {
    candidate: Zeroizing<[u8; MATERIAL_LEN]>,
    valid: Choice,
}

impl Unwrapped {
    fn invalid() -> Self {
        Self {
            candidate: Zeroizing::new([0u8; MATERIAL_LEN]),
            valid: Choice::from(0),
        }
    }
}

/// Maps an RSA failure: an RNG or fault-check failure is ours
/// (`InternalFailure`); every other failure is the ciphertext's.
fn rsa_failure(e: rsa::Error) -> Result<Unwrapped> {
    match e {
        rsa::Error::Rng | rsa::Error::Internal => Err(Error::InternalFailure),
        _ => Ok(Unwrapped::invalid()),
    }
}

/// Unwraps `wrapped` with `key` under `algorithm` (RFC 8017 sections 7.1.2
/// and 7.2.2). RSA runs blinded, on constant-time arithmetic.
fn unwrap_material(
    key: &rsa::PrivateKey,
    algorithm: WrappingAlgorithm,
    wrapped: &[u8],
) -> Result<Unwrapped> {
    use crate::crypto::asym::{AsymError, keys::oaep_decrypt};
    // `rsa` 0.10 does not check OAEP's leading zero byte (RFC 8017 7.1.2
    // step 3g); `oaep_decrypt` does, in constant time, and reports every
    // padding failure as the same error.
    let decrypted = match algorithm {
        WrappingAlgorithm::RsaesPkcs1V15 => return unwrap_pkcs1_v15(key, wrapped),
        WrappingAlgorithm::RsaesOaepSha1 => oaep_decrypt(
            key,
            rsa::Oaep::<sha1::Sha1>::new(),
            wrapped,
            &mut getrandom::SysRng,
        ),
        WrappingAlgorithm::RsaesOaepSha256 => oaep_decrypt(
            key,
            rsa::Oaep::<Sha256>::new(),
            wrapped,
            &mut getrandom::SysRng,
        ),
    };
    let message = match decrypted {
        Ok(m) => m,
        Err(AsymError::DecryptionFailed | AsymError::InvalidParameter { .. }) => {
            return Ok(Unwrapped::invalid());
        }
        Err(_) => return Err(Error::InternalFailure),
    };
    let mut out = Unwrapped::invalid();
    if let Ok(m) = <&[u8; MATERIAL_LEN]>::try_from(message.as_slice()) {
        out.candidate.copy_from_slice(m);
        out.valid = Choice::from(1);
    }
    Ok(out)
}

/// RSAES-PKCS1-v1_5 decryption of a 32-byte message. With the message length
/// fixed, a valid EM (RFC 8017 section 7.2.2 step 3) is exactly
/// `0x00 0x02 PS 0x00 M` with PS = k - 35 nonzero bytes and M 32 bytes; every
/// byte of it is checked without branching on its value.
fn unwrap_pkcs1_v15(key: &rsa::PrivateKey, wrapped: &[u8]) -> Result<Unwrapped> {
    let k = key.size();
    if wrapped.len() != k || k < MATERIAL_LEN + 11 {
        return Ok(Unwrapped::invalid());
    }
    let Ok(c) = rsa::BoxedUint::from_be_slice(wrapped, key.n_bits_precision()) else {
        return Ok(Unwrapped::invalid());
    };
    let m = match rsa::hazmat::rsa_decrypt_and_check(key, Some(&mut getrandom::SysRng), &c) {
        Ok(m) => Zeroizing::new(m),
        Err(e) => return rsa_failure(e),
    };
    // EM = I2OSP(m, k). The buffer sizes depend only on the modulus.
    let bytes = Zeroizing::new(m.to_be_bytes());
    let mut em = Zeroizing::new(vec![0u8; k]);
    if bytes.len() >= k {
        em.copy_from_slice(&bytes[bytes.len() - k..]);
    } else {
        em[k - bytes.len()..].copy_from_slice(&bytes);
    }
    let sep = k - MATERIAL_LEN - 1;
    let mut valid = em[0].ct_eq(&0) & em[1].ct_eq(&2) & em[sep].ct_eq(&0);
    for b in &em[2..sep] {
        valid &= !b.ct_eq(&0);
    }
    let mut candidate = Zeroizing::new([0u8; MATERIAL_LEN]);
    candidate.copy_from_slice(&em[sep + 1..]);
    Ok(Unwrapped { candidate, valid })
}

impl Kms {
    /// GetParametersForImport: a fresh RSA key pair and import token for an
    /// `EXTERNAL` key, in any state. The token is valid for 24 hours by the
    /// service's clock, for this key only, until it is revoked: a successful
    /// ImportKeyMaterial, DeleteKeyMaterial and material expiry revoke every
    /// token of the key. A key holds at most [`MAX_LIVE_IMPORT_TOKENS`] live
    /// tokens; issuing one more evicts the oldest, which is then an
    /// `InvalidImportToken`.
    ///
    /// The whole flow, with the wrapping done by the `rsa` crate as a user's
    /// tool would:
    ///
    /// ```
    /// use localkms::{CreateKeyRequest, Kms, WrappingAlgorithm, WrappingKeySpec};
    /// use base64::Engine as _;
    /// use rsa::pkcs8::DecodePublicKey as _;
    ///
    /// let kms = Kms::in_memory()?;
    /// let key = kms.create_key(&CreateKeyRequest::external())?;
    /// let params = kms.get_parameters_for_import(
    ///     &key.key_id,
    ///     WrappingAlgorithm::RsaesOaepSha256,
    ///     WrappingKeySpec::Rsa2048,
    /// )?;
    ///
    /// // Outside the library: wrap 32 bytes of material under the public key.
    /// let b64 = base64::engine::general_purpose::STANDARD;
    /// let der = b64.decode(&params.public_key).unwrap();
    /// let public_key = rsa::PublicKey::from_public_key_der(&der).unwrap();
    /// let material = [42u8; 32];
    /// let wrapped = public_key
    ///     .encrypt(&mut getrandom::SysRng, rsa::Oaep::<sha2::Sha256>::new(), &material)
    ///     .unwrap();
    ///
    /// kms.import_key_material(&key.key_id, &b64.encode(wrapped), &params.import_token, None)?;
    /// assert_eq!(kms.describe_key(&key.key_id)?.key_state, localkms::KeyState::Enabled);
    /// # Ok::<(), localkms::Error>(())
    /// ```
    ///
    /// # Errors
    /// `MissingParameter`, `Unsupported.Alias`, `Forbidden.KeyNotFound`,
    /// `Unsupported.Origin` for an `Aliyun_KMS` key, or a storage failure.
    pub fn get_parameters_for_import(
        &self,
        key_id: &str,
        wrapping_algorithm: WrappingAlgorithm,
        wrapping_key_spec: WrappingKeySpec,
    ) -> Result<ImportParameters> {
        self.operation("GetParametersForImport", key_id, || {
            self.get_parameters_for_import_op(key_id, wrapping_algorithm, wrapping_key_spec)
        })
    }

    fn get_parameters_for_import_op(
        &self,
        key_id: &str,
        wrapping_algorithm: WrappingAlgorithm,
        wrapping_key_spec: WrappingKeySpec,
    ) -> Result<ImportParameters> {
        let id = self.resolve_key_id(key_id, "KeyId", false)?;
        require_external(&self.entry(&id)?.record)?;
        let now = self.clock.now();
        let secrets = self.import_secrets()?;
        let private_key = generate_wrapping_key(wrapping_key_spec)?;
        let (public_der, public_key_sha256) = public_key_der(&private_key)?;
        let private_der = private_key
            .to_pkcs8_der()
            .map_err(|_| Error::InternalFailure)?;
        let mut token_id = [0u8; TOKEN_ID_LEN];
        fill_random(&mut token_id[ISSUE_LEN..])?;
        let expire = now.saturating_add(IMPORT_TOKEN_LIFETIME_SECONDS);
        // The issue number, the eviction and the new record are decided
        // under the writer lock, from the key's records as they are.
        let (_, text) = self.update_key(&id, |r, batch| {
            require_external(r)?;
            let issue = self.make_room_for_a_token(batch, &r.key_id, now)?;
            token_id[..ISSUE_LEN].copy_from_slice(&issue.to_be_bytes());
            let token = ImportToken {
                token_id,
                key_id: r.key_id.clone(),
                algorithm: wrapping_algorithm,
                key_spec: wrapping_key_spec,
                expire,
                public_key_sha256,
            };
            let text = import_token::write::encode_text(&token, &secrets.token)
                .ok_or(Error::InternalFailure)?;
            let record_id = token_record_id(&token);
            let sealed = self
                .root
                .seal(NS_IMPORT_TOKEN, &record_id, private_der.as_bytes())?;
            batch.put(NS_IMPORT_TOKEN, record_id, sealed);
            Ok(text)
        })?;
        Ok(ImportParameters {
            key_id: id,
            import_token: text,
            public_key: base64::engine::general_purpose::STANDARD.encode(public_der),
            token_expire_time: format_timestamp(expire),
        })
    }

    /// ImportKeyMaterial: unwraps 32 bytes of material with the token's key
    /// pair and makes them the key's material. The first import creates the
    /// key's single version; later imports must bring the same material and
    /// restore that version. `PendingImport` becomes `Enabled`; other states
    /// are kept. `key_material_expire_unix`: `None` or `Some(0)` never
    /// expires; otherwise a future Unix time at which the key behaves as if
    /// DeleteKeyMaterial had been called.
    ///
    /// # Errors
    /// `MissingParameter` (KeyId, EncryptedKeyMaterial, ImportToken),
    /// `InvalidParameter` (KeyMaterialExpireUnix not in the future),
    /// `Unsupported.Alias`, `Forbidden.KeyNotFound`, `Unsupported.Origin`,
    /// `Rejected.StateModifiedFailed` when pending deletion,
    /// `InvalidImportToken` (malformed, forged, for another key, revoked or
    /// evicted), `ExpiredImportToken`, `InvalidKeyMaterial` for every
    /// unwrapping or material failure, with one message, and
    /// `InternalFailure` (a corrupt store) for a key that has versions but no
    /// material fingerprint.
    ///
    /// A successful import revokes the token it used and every other token
    /// of the key; a failed one revokes nothing.
    pub fn import_key_material(
        &self,
        key_id: &str,
        encrypted_key_material: &str,
        import_token: &str,
        key_material_expire_unix: Option<i64>,
    ) -> Result<()> {
        self.operation("ImportKeyMaterial", key_id, || {
            self.import_key_material_op(
                key_id,
                encrypted_key_material,
                import_token,
                key_material_expire_unix,
            )
        })
    }

    fn import_key_material_op(
        &self,
        key_id: &str,
        encrypted_key_material: &str,
        import_token: &str,
        key_material_expire_unix: Option<i64>,
    ) -> Result<()> {
        let id = self.resolve_key_id(key_id, "KeyId", false)?;
        if encrypted_key_material.is_empty() {
            return Err(Error::MissingParameter("EncryptedKeyMaterial"));
        }
        if import_token.is_empty() {
            return Err(Error::MissingParameter("ImportToken"));
        }
        let now = self.clock.now();
        let expire = match key_material_expire_unix {
            None | Some(0) => None,
            Some(t) if t > now => Some(t),
            Some(_) => {
                return Err(Error::invalid(
                    "KeyMaterialExpireUnix",
                    "must be 0 or a Unix time in the future",
                ));
            }
        };
        let entry = self.entry(&id)?;
        require_importable(&entry.record)?;
        require_fingerprint_if_versions(&entry.record)?;
        drop(entry);

        // No secret yet means no token was ever issued here.
        let secrets = self
            .read_import_secret()?
            .ok_or(Error::InvalidImportToken)?;
        let token = import_token::read::decode_text(import_token, &secrets.token)
            .ok_or(Error::InvalidImportToken)?;
        if token.key_id != id {
            return Err(Error::InvalidImportToken);
        }
        if now >= token.expire {
            return Err(Error::ExpiredImportToken);
        }
        let private_key = self.token_private_key(&token)?;

        let wrapped = (encrypted_key_material.len() <= MAX_ENCRYPTED_TEXT_LEN)
            .then(|| {
                base64::engine::general_purpose::STANDARD
                    .decode(encrypted_key_material)
                    .ok()
            })
            .flatten();
        let unwrapped = match wrapped {
            Some(wrapped) => unwrap_material(&private_key, token.algorithm, &wrapped)?,
            None => Unwrapped::invalid(),
        };
        drop(private_key);
        let fp = fingerprint(&secrets.fingerprint, &id, &unwrapped.candidate);
        let material =
            KeyMaterial::from_slice(unwrapped.candidate.as_ref()).ok_or(Error::InternalFailure)?;

        let record_id = token_record_id(&token);
        self.update_key(&id, |r, batch| {
            require_importable(r)?;
            require_fingerprint_if_versions(r)?;
            // A DeleteKeyMaterial or another import may have revoked the
            // token since its record was read: look again under the writer.
            if self.store.get(NS_IMPORT_TOKEN, &record_id)?.is_none() {
                return Err(Error::InvalidImportToken);
            }
            let same = match &r.material_fingerprint {
                None => Choice::from(1),
                Some(stored) => from_hex_32(stored)
                    .ok_or_else(|| {
                        Error::CorruptStore("a material fingerprint is malformed".into())
                    })?
                    .ct_eq(&fp),
            };
            // The one branch on the outcome: every failure is the same error.
            if !bool::from(unwrapped.valid & same) {
                return Err(Error::InvalidKeyMaterial);
            }
            if r.versions.is_empty() {
                r.versions.push(VersionMeta {
                    id: self.new_uuid()?,
                    created: now,
                });
            }
            for v in &r.versions {
                self.put_material(batch, &r.key_id, &v.id, &material)?;
            }
            r.material_fingerprint = Some(to_hex(&fp));
            r.material_deleted = false;
            r.material_expire = expire;
            if r.state == KeyState::PendingImport {
                r.state = KeyState::Enabled;
            }
            // The token is spent, and every other token of the key revoked.
            self.revoke_import_tokens(&r.key_id, batch)?;
            Ok(())
        })?;
        Ok(())
    }

    /// DeleteKeyMaterial: removes an `EXTERNAL` key's material, in any state.
    /// The key becomes `PendingImport` (unless pending deletion, which is
    /// kept), `MaterialExpireTime` is cleared and every import token of the
    /// key is revoked, so a re-import takes a new GetParametersForImport. Its version ids are kept, so
    /// a re-import of the same material makes earlier ciphertexts decrypt
    /// again.
    ///
    /// # Errors
    /// `MissingParameter`, `Unsupported.Alias`, `Forbidden.KeyNotFound`,
    /// `Unsupported.Origin` for an `Aliyun_KMS` key, or a storage failure.
    pub fn delete_key_material(&self, key_id: &str) -> Result<()> {
        self.operation("DeleteKeyMaterial", key_id, || {
            self.delete_key_material_op(key_id)
        })
    }

    fn delete_key_material_op(&self, key_id: &str) -> Result<()> {
        let id = self.resolve_key_id(key_id, "KeyId", false)?;
        self.update_key(&id, |r, batch| {
            require_external(r)?;
            remove_material(r, batch);
            self.revoke_import_tokens(&r.key_id, batch)?;
            Ok(())
        })?;
        Ok(())
    }

    /// The private key of an authentic, unexpired token, checked against the
    /// public key hash the token carries.
    fn token_private_key(&self, token: &ImportToken) -> Result<rsa::PrivateKey> {
        let record_id = token_record_id(token);
        let sealed = self
            .store
            .get(NS_IMPORT_TOKEN, &record_id)?
            .ok_or(Error::InvalidImportToken)?;
        let der = self
            .root
            .open(NS_IMPORT_TOKEN, &record_id, &sealed)
            .ok_or_else(|| Error::CorruptStore("an import token record does not open".into()))?;
        let key = rsa::PrivateKey::from_pkcs8_der(&der)
            .map_err(|_| Error::CorruptStore("an import token record does not parse".into()))?;
        let (_, hash) = public_key_der(&key)?;
        if !bool::from(hash.ct_eq(&token.public_key_sha256)) {
            return Err(Error::InvalidImportToken);
        }
        Ok(key)
    }

    /// Before a new token of `key_id` is issued (the caller holds the
    /// writer): deletes the key's expired token records, and records of an
    /// older format, then evicts the oldest live ones so that the new token
    /// makes at most [`MAX_LIVE_IMPORT_TOKENS`]. Returns the new token's
    /// issue number, one above every remaining record's.
    fn make_room_for_a_token(&self, batch: &mut Batch, key_id: &str, now: i64) -> Result<u64> {
        let mut live = Vec::new();
        let mut next_issue = 0u64;
        // Ids sort by issue number, so `live` is oldest first.
        for (id, _) in self
            .store
            .scan(NS_IMPORT_TOKEN, Scan::prefix(&token_prefix(key_id)))?
        {
            match parse_token_record_id(&id, key_id) {
                Some((issue, expire)) => {
                    next_issue = next_issue.max(issue.saturating_add(1));
                    if expire > now {
                        live.push(id);
                    } else {
                        batch.delete(NS_IMPORT_TOKEN, id);
                    }
                }
                None => batch.delete(NS_IMPORT_TOKEN, id),
            }
        }
        let evict = (live.len() + 1).saturating_sub(MAX_LIVE_IMPORT_TOKENS);
        for id in live.into_iter().take(evict) {
            batch.delete(NS_IMPORT_TOKEN, id);
        }
        Ok(next_issue)
    }

    /// Revokes every import token of `key_id`: deletes their records in
    /// `batch`. Called (under the writer) by a successful import,
    /// DeleteKeyMaterial and material expiry, in the batch of that change.
    pub(crate) fn revoke_import_tokens(&self, key_id: &str, batch: &mut Batch) -> Result<()> {
        for (id, _) in self
            .store
            .scan(NS_IMPORT_TOKEN, Scan::prefix(&token_prefix(key_id)))?
        {
            batch.delete(NS_IMPORT_TOKEN, id);
        }
        Ok(())
    }

    /// The keys derived from the store's import secret, which is made on
    /// first use (under the writer lock, flushed before any token is issued).
    fn import_secrets(&self) -> Result<ImportSecrets> {
        if let Some(s) = self.read_import_secret()? {
            return Ok(s);
        }
        // One write: two processes making the secret at once cannot both
        // win (the loser re-reads the winner's on retry).
        let w = self.writer()?;
        if let Some(s) = self.read_import_secret()? {
            return Ok(s);
        }
        let mut secret = Zeroizing::new([0u8; 32]);
        fill_random(secret.as_mut())?;
        let mut batch = Batch::new();
        batch.put(
            NS_META,
            META_IMPORT_SECRET,
            self.root
                .seal(NS_META, META_IMPORT_SECRET, secret.as_ref())?,
        );
        self.refuse_write_in_dry_run()?;
        w.commit(batch)?;
        self.store.flush()?;
        Ok(ImportSecrets::derive(&secret))
    }

    fn read_import_secret(&self) -> Result<Option<ImportSecrets>> {
        let Some(sealed) = self.store.get(NS_META, META_IMPORT_SECRET)? else {
            return Ok(None);
        };
        let opened = self
            .root
            .open(NS_META, META_IMPORT_SECRET, &sealed)
            .ok_or_else(|| Error::CorruptStore("the import secret does not open".into()))?;
        let secret =
            Zeroizing::new(<[u8; 32]>::try_from(opened.as_slice()).map_err(|_| {
                Error::CorruptStore("the import secret has the wrong length".into())
            })?);
        Ok(Some(ImportSecrets::derive(&secret)))
    }
}

#[cfg(test)]
mod tests {
    use rsa::pkcs8::DecodePublicKey as _;
    use xaes_256_gcm::aead::AeadInOut as _;

    use super::*;
    use crate::clock::ManualClock;
    use crate::ops::keys::CreateKeyRequest;

    /// RFC 8017 7.1.2 step 3g: an OAEP message whose leading octet is not
    /// zero is refused, although `rsa` 0.10's own decoding accepts it.
    #[test]
    fn oaep_with_a_nonzero_leading_octet_is_refused() {
        let mut rng = getrandom::SysRng;
        let key = rsa::PrivateKey::new(&mut rng, 2048).expect("keygen");
        let public = key.as_ref().clone();
        let material = [7u8; MATERIAL_LEN];
        let good = public
            .encrypt(&mut rng, rsa::Oaep::<Sha256>::new(), &material)
            .expect("encrypt");
        let ok = unwrap_material(&key, WrappingAlgorithm::RsaesOaepSha256, &good).expect("unwrap");
        assert!(bool::from(ok.valid));
        // Raw RSA: recover EM, set its leading octet to 1, encrypt again.
        let bits = key.n_bits_precision();
        let c = rsa::BoxedUint::from_be_slice(&good, bits).expect("c");
        let m = rsa::hazmat::rsa_decrypt_and_check(&key, Some(&mut rng), &c).expect("raw");
        let mut em = vec![0u8; 256];
        let raw = m.to_be_bytes();
        em[256 - raw.len().min(256)..].copy_from_slice(&raw[raw.len().saturating_sub(256)..]);
        em[0] = 1;
        let m2 = rsa::BoxedUint::from_be_slice(&em, bits).expect("m2");
        let bad = rsa::hazmat::rsa_encrypt(&public, &m2)
            .expect("raw encrypt")
            .to_be_bytes();
        let mut bad_ct = vec![0u8; 256];
        bad_ct[256 - bad.len().min(256)..].copy_from_slice(&bad[bad.len().saturating_sub(256)..]);
        // The crate alone still decodes it (the reason for the extra check).
        assert!(
            key.decrypt_blinded(&mut rng, rsa::Oaep::<Sha256>::new(), &bad_ct)
                .is_ok()
        );
        let refused =
            unwrap_material(&key, WrappingAlgorithm::RsaesOaepSha256, &bad_ct).expect("unwrap");
        assert!(!bool::from(refused.valid));
    }

    fn kms() -> (Kms, ManualClock) {
        let clock = ManualClock::new(1_700_000_000);
        let kms = Kms::builder()
            .in_memory()
            .clock(clock.clone())
            .build()
            .expect("kms");
        (kms, clock)
    }

    fn import(kms: &Kms, key_id: &str, material: &[u8; 32]) -> Result<()> {
        let p = kms.get_parameters_for_import(
            key_id,
            WrappingAlgorithm::RsaesOaepSha256,
            WrappingKeySpec::Rsa2048,
        )?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let der = b64.decode(&p.public_key).expect("base64");
        let public = rsa::PublicKey::from_public_key_der(&der).expect("spki");
        let wrapped = public
            .encrypt(&mut getrandom::SysRng, rsa::Oaep::<Sha256>::new(), material)
            .expect("wrap");
        kms.import_key_material(key_id, &b64.encode(wrapped), &p.import_token, None)
    }

    fn seal_with(kms: &Kms, key_id: &str, version: &str, msg: &[u8]) -> Result<Vec<u8>> {
        let entry = kms.entry(key_id)?;
        let cipher = kms.cipher(&entry, version)?;
        let mut buf = msg.to_vec();
        let tag = cipher
            .encrypt_inout_detached(&[0u8; 24].into(), b"", buf.as_mut_slice().into())
            .map_err(|_| Error::InternalFailure)?;
        buf.extend_from_slice(&tag);
        Ok(buf)
    }

    fn open_with(kms: &Kms, key_id: &str, version: &str, sealed: &[u8]) -> Result<Vec<u8>> {
        let entry = kms.entry(key_id)?;
        let cipher = kms.cipher(&entry, version)?;
        let (ct, tag) = sealed.split_at(sealed.len() - 16);
        let mut buf = ct.to_vec();
        let tag = xaes_256_gcm::Tag::try_from(tag).map_err(|_| Error::InternalFailure)?;
        cipher
            .decrypt_inout_detached(&[0u8; 24].into(), b"", buf.as_mut_slice().into(), &tag)
            .map_err(|_| Error::DecryptionFailed)?;
        Ok(buf)
    }

    #[test]
    fn imported_material_is_what_was_wrapped_and_survives_delete_and_reimport() {
        let (kms, _clock) = kms();
        let id = kms
            .create_key(&CreateKeyRequest::external())
            .expect("create")
            .key_id;
        let material = [0x5au8; 32];
        import(&kms, &id, &material).expect("import");
        let record = kms.record(&id).expect("record");
        assert_eq!(record.versions.len(), 1);
        let version = record.versions[0].id.clone();

        // The sealed material is exactly the bytes wrapped.
        let mid = material_id(&id, &version);
        let opened = kms.open_material(&record, &version).expect("opens");
        assert_eq!(opened.expose(), &material);

        let before = seal_with(&kms, &id, &version, b"made before").expect("cipher");

        kms.delete_key_material(&id).expect("delete");
        assert!(kms.store.get(NS_MATERIAL, &mid).expect("get").is_none());
        assert!(kms.record(&id).expect("r").material_deleted);
        assert!(
            seal_with(&kms, &id, &version, b"x").is_err(),
            "material unusable"
        );

        import(&kms, &id, &material).expect("re-import");
        let record = kms.record(&id).expect("record");
        assert_eq!(record.versions.len(), 1);
        assert_eq!(record.versions[0].id, version);
        assert_eq!(
            open_with(&kms, &id, &version, &before).expect("decrypts again"),
            b"made before"
        );
    }

    #[test]
    fn the_fingerprint_is_keyed_and_per_key() {
        let (kms, _clock) = kms();
        let material = [0x11u8; 32];
        let mut fps = Vec::new();
        for _ in 0..2 {
            let id = kms
                .create_key(&CreateKeyRequest::external())
                .expect("create")
                .key_id;
            import(&kms, &id, &material).expect("import");
            let fp = kms
                .record(&id)
                .expect("record")
                .material_fingerprint
                .expect("fingerprint");
            assert_eq!(fp.len(), 64);
            assert!(!fp.contains(&to_hex(&material)));
            assert_ne!(fp, to_hex(&Sha256::digest(material)));
            fps.push(fp);
        }
        assert_ne!(
            fps[0], fps[1],
            "two keys with the same material look unrelated"
        );
        // The secret is sealed, not stored in clear.
        let sealed = kms
            .store
            .get(NS_META, META_IMPORT_SECRET)
            .expect("get")
            .expect("secret");
        assert!(
            kms.root
                .open(NS_META, META_IMPORT_SECRET, &sealed)
                .is_some()
        );
    }

    #[test]
    fn token_records_are_sealed_collected_when_expired_and_purged_with_the_key() {
        let (kms, clock) = kms();
        let id = kms
            .create_key(&CreateKeyRequest::external())
            .expect("create")
            .key_id;
        let count = || {
            kms.store
                .scan(NS_IMPORT_TOKEN, Scan::prefix(format!("{id}/").as_bytes()))
                .expect("scan")
        };
        let p = || {
            kms.get_parameters_for_import(
                &id,
                WrappingAlgorithm::RsaesPkcs1V15,
                WrappingKeySpec::Rsa2048,
            )
            .expect("params")
        };
        p();
        clock.advance(3600);
        p();
        let records = count();
        assert_eq!(records.len(), 2);
        for (rid, value) in &records {
            // No PKCS#8 in clear: the record opens only under its own id.
            assert!(kms.root.open(NS_IMPORT_TOKEN, rid, value).is_some());
            assert!(kms.root.open(NS_IMPORT_TOKEN, b"other", value).is_none());
            let (_, expire) = parse_token_record_id(rid, &id).expect("well formed");
            assert!(expire > 0);
        }
        // Now the first token has expired and the second has not.
        clock.advance(86_400 - 1800);
        p();
        assert_eq!(count().len(), 2, "the first token's record was collected");

        kms.schedule_key_deletion(&id, 7).expect("schedule");
        clock.advance(7 * 86_400);
        assert_eq!(kms.purge_expired().expect("purge"), 1);
        assert!(count().is_empty());
    }

    /// The record id of a token, pinned (docs/FORMAT.md gives the same).
    #[test]
    fn token_record_id_golden() {
        let mut token_id = [0xa5u8; TOKEN_ID_LEN];
        token_id[..ISSUE_LEN].copy_from_slice(&3u64.to_be_bytes());
        let token = ImportToken {
            token_id,
            key_id: "5a1e6f2c-0b7d-4c3e-9f1a-2b3c4d5e6f70".into(),
            algorithm: WrappingAlgorithm::RsaesOaepSha256,
            key_spec: WrappingKeySpec::Rsa2048,
            expire: 1_700_086_400,
            public_key_sha256: [0x22; 32],
        };
        let id = token_record_id(&token);
        assert_eq!(
            std::str::from_utf8(&id).expect("ascii"),
            "5a1e6f2c-0b7d-4c3e-9f1a-2b3c4d5e6f70/0000000000000003a5a5a5a5a5a5a5a5-8000000065554280"
        );
        assert_eq!(
            parse_token_record_id(&id, &token.key_id),
            Some((3, 1_700_086_400))
        );
        // Another key's prefix, the first format, and damaged ids: no parse.
        assert_eq!(parse_token_record_id(&id, "5a1e6f2c"), None);
        let first_format =
            b"5a1e6f2c-0b7d-4c3e-9f1a-2b3c4d5e6f70/8000000065554280-a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5";
        assert_eq!(parse_token_record_id(first_format, &token.key_id), None);
        for bad in [
            "+000000000000003a5a5a5a5a5a5a5a5",
            "0000000000000003A5A5A5A5A5A5A5A5",
        ] {
            let bad = format!("{}/{bad}-8000000065554280", token.key_id);
            assert_eq!(parse_token_record_id(bad.as_bytes(), &token.key_id), None);
        }
    }

    #[test]
    fn a_key_keeps_at_most_ten_token_records_in_issue_order() {
        let (kms, clock) = kms();
        let id = kms
            .create_key(&CreateKeyRequest::external())
            .expect("create")
            .key_id;
        let records = || {
            kms.store
                .scan(NS_IMPORT_TOKEN, Scan::prefix(&token_prefix(&id)))
                .expect("scan")
                .into_iter()
                .map(|(rid, _)| parse_token_record_id(&rid, &id).expect("parses").0)
                .collect::<Vec<_>>()
        };
        // A record of the first format, left from before: collected at the
        // next issue, and never counted.
        let mut batch = Batch::new();
        batch.put(
            NS_IMPORT_TOKEN,
            format!("{id}/8000000065554280-{}", "ab".repeat(16)).into_bytes(),
            b"old".to_vec(),
        );
        kms.store.apply(batch).expect("apply");
        for n in 0..25u64 {
            kms.get_parameters_for_import(
                &id,
                WrappingAlgorithm::RsaesOaepSha1,
                WrappingKeySpec::Rsa2048,
            )
            .expect("params");
            let first = n.saturating_sub(9);
            assert_eq!(records(), (first..=n).collect::<Vec<_>>(), "after {n}");
            if n % 5 == 0 {
                clock.advance(1);
            }
        }
        // Revocation leaves none, and numbering starts again.
        kms.delete_key_material(&id).expect("delete");
        assert!(records().is_empty());
        kms.get_parameters_for_import(
            &id,
            WrappingAlgorithm::RsaesOaepSha1,
            WrappingKeySpec::Rsa2048,
        )
        .expect("params");
        assert_eq!(records(), vec![0]);
    }

    #[test]
    fn versions_without_a_fingerprint_refuse_import() {
        let (kms, _clock) = kms();
        let id = kms
            .create_key(&CreateKeyRequest::default())
            .expect("create")
            .key_id;
        let version = kms.record(&id).expect("record").versions[0].id.clone();
        let before = seal_with(&kms, &id, &version, b"own").expect("seal");
        // The record turned EXTERNAL through the write path itself: it has a
        // version and no fingerprint.
        kms.update_key(&id, |r, _| {
            r.origin = Origin::External;
            Ok(())
        })
        .expect("edit");
        let e = import(&kms, &id, &[0x42; 32]).unwrap_err();
        assert!(matches!(e, Error::CorruptStore(_)), "{e:?}");
        assert!(e.to_string().contains("no material fingerprint"), "{e}");
        let record = kms.record(&id).expect("record");
        assert_eq!(record.material_fingerprint, None);
        assert_eq!(
            open_with(&kms, &id, &version, &before).expect("old material"),
            b"own"
        );
        // A token is still issued and survives the refusal.
        let records = kms
            .store
            .scan(NS_IMPORT_TOKEN, Scan::prefix(&token_prefix(&id)))
            .expect("scan");
        assert_eq!(records.len(), 1);
    }

    #[test]
    fn an_import_attempt_alone_makes_no_secret() {
        let (kms, _clock) = kms();
        let id = kms
            .create_key(&CreateKeyRequest::external())
            .expect("create")
            .key_id;
        assert_eq!(
            kms.import_key_material(&id, "AAAA", "AAAA", None),
            Err(Error::InvalidImportToken)
        );
        assert!(
            kms.store
                .get(NS_META, META_IMPORT_SECRET)
                .expect("get")
                .is_none()
        );
    }

    fn test_key() -> rsa::PrivateKey {
        generate_wrapping_key(WrappingKeySpec::Rsa2048).expect("key")
    }

    fn raw_encrypt(key: &rsa::PrivateKey, em: &[u8]) -> Vec<u8> {
        let public = key.to_public_key();
        let m = rsa::BoxedUint::from_be_slice(em, public.n_bits_precision()).expect("fits");
        let c = rsa::hazmat::rsa_encrypt(&public, &m).expect("encrypt");
        c.to_be_bytes()[..].to_vec()
    }

    fn em(k: usize, msg: &[u8]) -> Vec<u8> {
        let mut em = vec![0u8, 2];
        em.resize(k - msg.len() - 1, 0xa5);
        em.push(0);
        em.extend_from_slice(msg);
        em
    }

    #[test]
    fn pkcs1_v15_accepts_exactly_a_32_byte_message() {
        let key = test_key();
        let k = key.size();
        let msg = [0x33u8; 32];
        let ok = unwrap_pkcs1_v15(&key, &raw_encrypt(&key, &em(k, &msg))).expect("unwrap");
        assert!(bool::from(ok.valid));
        assert_eq!(*ok.candidate, msg);

        let sep = k - 33;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("first byte", {
                let mut e = em(k, &msg);
                e[0] = 1;
                e
            }),
            ("block type 1", {
                let mut e = em(k, &msg);
                e[1] = 1;
                e
            }),
            ("no separator", {
                let mut e = em(k, &msg);
                e[sep] = 7;
                e
            }),
            ("zero in PS (longer message)", {
                let mut e = em(k, &msg);
                e[sep - 1] = 0;
                e
            }),
            ("zero right after the block type", {
                let mut e = em(k, &msg);
                e[2] = 0;
                e
            }),
            ("31-byte message", em(k, &msg[..31])),
            ("33-byte message", em(k, &[0x33u8; 33])),
        ];
        for (what, e) in cases {
            let out = unwrap_pkcs1_v15(&key, &raw_encrypt(&key, &e)).expect("unwrap");
            assert!(!bool::from(out.valid), "{what}");
        }
        // A ciphertext not below the modulus, or of the wrong size.
        let too_big = vec![0xffu8; k];
        assert!(!bool::from(
            unwrap_pkcs1_v15(&key, &too_big).expect("u").valid
        ));
        assert!(!bool::from(
            unwrap_pkcs1_v15(&key, &[1u8; 10]).expect("u").valid
        ));
    }
}
