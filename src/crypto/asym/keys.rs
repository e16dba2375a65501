//! Key pairs for the asymmetric specs: generation, sealed-storage encoding
//! (PKCS#8), public keys (SubjectPublicKeyInfo), and the sign, verify,
//! encrypt and decrypt primitives of SPEC section 11.
//!
//! Every signature primitive takes a DIGEST, not a message (the API's
//! `Digest` parameter): SHA-256 for RSA and ECDSA, and for `SM2DSA` the SM3
//! digest e = SM3(Z(A) || M) of GB/T 32918.2 section 6.1 ([`sm2_digest`]
//! computes it with the default distinguishing id). Nothing here hashes
//! twice.

use std::fmt;

use rand_core::TryCryptoRng;
use rsa::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rsa::traits::PublicKeyParts;
use sha2::Sha256;
use signature::hazmat::{PrehashVerifier, RandomizedPrehashSigner};
use sm2::elliptic_curve::Generate;
use sm2::pkcs8::der::Decode;
use sm3::{Digest, Sm3};
use zeroize::Zeroizing;

use super::error::{AsymError, Result};
use super::spec::{Algorithm, KeySpec, KeyUsage};

/// The default SM2 distinguishing identifier (GM/T 0009 section 10),
/// used for Z(A).
pub const SM2_DEFAULT_ID: &[u8] = b"1234567812345678";

/// The PSS salt length of `RSA_PSS_SHA_256`: the SHA-256 output length.
pub const RSA_PSS_SALT_LEN: usize = 32;

/// An asymmetric private key of one [`KeySpec`].
///
/// Holds the secret in the RustCrypto key types, each of which zeroizes on
/// drop. Deliberately not `Clone`, `Serialize` or `Debug`-derived: `Debug`
/// prints `[REDACTED]`. The only way out is [`PrivateKey::to_pkcs8_der`],
/// for sealed storage.
pub struct PrivateKey {
    spec: KeySpec,
    inner: PrivateInner,
}

enum PrivateInner {
    Rsa(Box<rsa::PrivateKey>),
    P256(p256::ecdsa::SigningKey),
    K256(k256::ecdsa::SigningKey),
    // `sm2::SecretKey` zeroizes on drop; the crate's signing and decrypting
    // keys do not, so they are built per operation.
    Sm2(sm2::SecretKey),
}

/// An asymmetric public key of one [`KeySpec`]: what `GetPublicKey` returns,
/// and what verification and public-key encryption use.
#[derive(Clone)]
pub struct PublicKey {
    spec: KeySpec,
    inner: PublicInner,
}

#[derive(Clone)]
enum PublicInner {
    Rsa(rsa::PublicKey),
    P256(p256::ecdsa::VerifyingKey),
    K256(k256::ecdsa::VerifyingKey),
    Sm2(sm2::PublicKey),
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("spec", &self.spec)
            .field("material", &format_args!("[REDACTED]"))
            .finish()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

fn rsa_bits(spec: KeySpec) -> Option<usize> {
    match spec {
        KeySpec::Rsa2048 => Some(2048),
        KeySpec::Rsa3072 => Some(3072),
        _ => None,
    }
}

fn internal<E>(_: E) -> AsymError {
    AsymError::Internal
}

fn failed<E>(_: E) -> AsymError {
    AsymError::DecryptionFailed
}

const fn not_asymmetric() -> AsymError {
    AsymError::param("KeySpec", "not an asymmetric key spec")
}

const fn wrong_algorithm() -> AsymError {
    AsymError::param("Algorithm", "not supported by the key spec and usage")
}

/// Checks that `alg` fits the key's spec and is of the wanted kind, and that
/// a signature algorithm's digest has the digest's length.
fn check_algorithm(spec: KeySpec, alg: Algorithm, usage: KeyUsage) -> Result<()> {
    if alg.fits_spec(spec) && alg.usage() == usage {
        Ok(())
    } else {
        Err(wrong_algorithm())
    }
}

fn check_digest(alg: Algorithm, digest: &[u8]) -> Result<()> {
    match alg.digest_len() {
        Some(n) if digest.len() == n => Ok(()),
        _ => Err(AsymError::param(
            "Digest",
            "must be the 32-byte SHA-256 or SM3 digest",
        )),
    }
}

fn sm2_signing_key(secret: &sm2::SecretKey) -> Result<sm2::dsa::SigningKey> {
    // The id only feeds the crate's own message hashing, which we never use
    // (we sign the caller's e directly); the default id keeps it consistent.
    let id = std::str::from_utf8(SM2_DEFAULT_ID).map_err(|_| AsymError::Internal)?;
    sm2::dsa::SigningKey::new(id, secret).map_err(|_| AsymError::Internal)
}

impl PrivateKey {
    /// Generates a fresh key pair. RSA keys use e = 65537; RSA_3072 takes
    /// seconds in a debug build and well over 100 ms in a release build,
    /// so keep generation off hot paths.
    ///
    /// # Errors
    /// [`AsymError::InvalidParameter`] naming `KeySpec` for a symmetric or
    /// HMAC spec; [`AsymError::Internal`] if the random source fails.
    pub fn generate<R: TryCryptoRng + ?Sized>(spec: KeySpec, rng: &mut R) -> Result<Self> {
        let inner = match spec {
            KeySpec::Rsa2048 | KeySpec::Rsa3072 => {
                let bits = rsa_bits(spec).ok_or(AsymError::Internal)?;
                let key = rsa::PrivateKey::new(rng, bits).map_err(|_| AsymError::Internal)?;
                PrivateInner::Rsa(Box::new(key))
            }
            KeySpec::EcP256 => PrivateInner::P256(
                p256::ecdsa::SigningKey::try_generate_from_rng(rng)
                    .map_err(|_| AsymError::Internal)?,
            ),
            KeySpec::EcP256K => PrivateInner::K256(
                k256::ecdsa::SigningKey::try_generate_from_rng(rng)
                    .map_err(|_| AsymError::Internal)?,
            ),
            KeySpec::EcSm2 => PrivateInner::Sm2(
                sm2::SecretKey::try_generate_from_rng(rng).map_err(|_| AsymError::Internal)?,
            ),
            _ => return Err(not_asymmetric()),
        };
        Ok(Self { spec, inner })
    }

    /// The key's spec.
    pub fn spec(&self) -> KeySpec {
        self.spec
    }

    /// The private key as PKCS#8 DER (RFC 5208 `PrivateKeyInfo`), for sealing
    /// into the store. Never hand this to a caller.
    ///
    /// # Errors
    /// [`AsymError::Internal`] if encoding fails.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>> {
        let doc = match &self.inner {
            PrivateInner::Rsa(k) => k.to_pkcs8_der(),
            PrivateInner::P256(k) => k.to_pkcs8_der(),
            PrivateInner::K256(k) => k.to_pkcs8_der(),
            PrivateInner::Sm2(k) => k.to_pkcs8_der(),
        }
        .map_err(|_| AsymError::Internal)?;
        // `SecretDocument` zeroizes its own buffer on drop.
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    /// Parses PKCS#8 DER written by [`PrivateKey::to_pkcs8_der`]. The
    /// algorithm, curve and modulus size must match `spec`.
    ///
    /// # Errors
    /// [`AsymError::InvalidKeyMaterial`] if the document does not parse or
    /// holds a key of another spec; [`AsymError::InvalidParameter`] naming
    /// `KeySpec` for a spec without a key pair.
    pub fn from_pkcs8_der(spec: KeySpec, der: &[u8]) -> Result<Self> {
        let bad = |_| AsymError::InvalidKeyMaterial;
        let inner = match spec {
            KeySpec::Rsa2048 | KeySpec::Rsa3072 => {
                let key = rsa::PrivateKey::from_pkcs8_der(der).map_err(bad)?;
                if Some(key.n().bit_width() as usize) != rsa_bits(spec) {
                    return Err(AsymError::InvalidKeyMaterial);
                }
                PrivateInner::Rsa(Box::new(key))
            }
            KeySpec::EcP256 => {
                PrivateInner::P256(p256::ecdsa::SigningKey::from_pkcs8_der(der).map_err(bad)?)
            }
            KeySpec::EcP256K => {
                PrivateInner::K256(k256::ecdsa::SigningKey::from_pkcs8_der(der).map_err(bad)?)
            }
            KeySpec::EcSm2 => PrivateInner::Sm2(sm2::SecretKey::from_pkcs8_der(der).map_err(bad)?),
            _ => return Err(not_asymmetric()),
        };
        Ok(Self { spec, inner })
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        let inner = match &self.inner {
            PrivateInner::Rsa(k) => PublicInner::Rsa(k.to_public_key()),
            PrivateInner::P256(k) => PublicInner::P256(*k.verifying_key()),
            PrivateInner::K256(k) => PublicInner::K256(*k.verifying_key()),
            PrivateInner::Sm2(k) => PublicInner::Sm2(k.public_key()),
        };
        PublicKey {
            spec: self.spec,
            inner,
        }
    }

    /// The public key as a SubjectPublicKeyInfo PEM (`GetPublicKey`).
    ///
    /// # Errors
    /// [`AsymError::Internal`] if encoding fails.
    pub fn public_key_pem(&self) -> Result<String> {
        self.public_key().to_pem()
    }

    /// Signs a digest (`AsymmetricSign`).
    ///
    /// - `RSA_PKCS1_SHA_256`: RSASSA-PKCS1-v1_5 (RFC 8017 section 8.2) with the
    ///   SHA-256 DigestInfo; blinded.
    /// - `RSA_PSS_SHA_256`: RSASSA-PSS, MGF1-SHA-256, salt length 32; blinded.
    /// - `ECDSA_SHA_256`: ECDSA with a hedged RFC 6979 nonce (deterministic
    ///   plus fresh randomness); DER, always low-S.
    /// - `SM2DSA`: GB/T 32918.2 over the given e (see [`sm2_digest`]),
    ///   hedged RFC 6979 nonce; DER `SEQUENCE { r, s }`.
    ///
    /// # Errors
    /// [`AsymError::InvalidParameter`] naming `Algorithm` if `alg` is not a
    /// signature algorithm of this key, or `Digest` if the digest is not 32
    /// bytes; [`AsymError::Internal`] if the random source fails.
    pub fn sign_digest<R: TryCryptoRng + ?Sized>(
        &self,
        alg: Algorithm,
        digest: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>> {
        check_algorithm(self.spec, alg, KeyUsage::SignVerify)?;
        check_digest(alg, digest)?;
        match (&self.inner, alg) {
            (PrivateInner::Rsa(k), Algorithm::RsaPkcs1Sha256) => k
                .sign_with_rng(rng, rsa::Pkcs1v15Sign::new::<Sha256>(), digest)
                .map_err(internal),
            (PrivateInner::Rsa(k), Algorithm::RsaPssSha256) => k
                .sign_with_rng(
                    rng,
                    rsa::Pss::<Sha256>::new_with_salt(RSA_PSS_SALT_LEN),
                    digest,
                )
                .map_err(internal),
            (PrivateInner::P256(k), Algorithm::EcdsaSha256) => {
                let sig: p256::ecdsa::Signature =
                    k.sign_prehash_with_rng(rng, digest).map_err(internal)?;
                Ok(sig.normalize_s().to_der().as_bytes().to_vec())
            }
            (PrivateInner::K256(k), Algorithm::EcdsaSha256) => {
                let sig: k256::ecdsa::Signature =
                    k.sign_prehash_with_rng(rng, digest).map_err(internal)?;
                Ok(sig.normalize_s().to_der().as_bytes().to_vec())
            }
            (PrivateInner::Sm2(k), Algorithm::Sm2Dsa) => {
                let signer = sm2_signing_key(k)?;
                let sig: sm2::dsa::Signature = signer
                    .sign_prehash_with_rng(rng, digest)
                    .map_err(internal)?;
                Ok(sm2::dsa::DerSignature::from(sig).to_vec())
            }
            _ => Err(wrong_algorithm()),
        }
    }

    /// Verifies a signature over a digest with this key's public half.
    ///
    /// # Errors
    /// As [`PublicKey::verify_digest`].
    pub fn verify_digest(&self, alg: Algorithm, digest: &[u8], sig: &[u8]) -> Result<bool> {
        self.public_key().verify_digest(alg, digest, sig)
    }

    /// Decrypts (`AsymmetricDecrypt`).
    ///
    /// - `RSAES_OAEP_SHA_256` / `RSAES_OAEP_SHA_1`: RSAES-OAEP (RFC 8017
    ///   section 7.1) with MGF1 over the same hash and an empty label;
    ///   blinded.
    /// - `SM2PKE`: GB/T 32918.4 with SM3; the ciphertext is the GM/T 0009
    ///   ASN.1 form `SEQUENCE { x INTEGER, y INTEGER, hash OCTET STRING (C3),
    ///   ciphertext OCTET STRING (C2) }`.
    ///
    /// # Errors
    /// [`AsymError::InvalidParameter`] naming `Algorithm` if `alg` is not an
    /// encryption algorithm of this key; otherwise every failure is the one
    /// [`AsymError::DecryptionFailed`].
    pub fn decrypt<R: TryCryptoRng + ?Sized>(
        &self,
        alg: Algorithm,
        ciphertext: &[u8],
        rng: &mut R,
    ) -> Result<Zeroizing<Vec<u8>>> {
        check_algorithm(self.spec, alg, KeyUsage::EncryptDecrypt)?;
        match (&self.inner, alg) {
            (PrivateInner::Rsa(k), Algorithm::RsaesOaepSha256) => {
                oaep_decrypt(k, rsa::Oaep::<Sha256>::new(), ciphertext, rng)
            }
            (PrivateInner::Rsa(k), Algorithm::RsaesOaepSha1) => {
                oaep_decrypt(k, rsa::Oaep::<sha1::Sha1>::new(), ciphertext, rng)
            }
            (PrivateInner::Sm2(k), Algorithm::Sm2Pke) => {
                let cipher = sm2::pke::Cipher::<sm2::Sm2, Sm3>::from_der(ciphertext)
                    .map_err(|_| AsymError::DecryptionFailed)?;
                let key = sm2::pke::DecryptingKey::new(k.clone());
                let mut out = Zeroizing::new(vec![0u8; cipher.c2().len()]);
                let n = key
                    .decrypt_cipher_with_buf::<Sm3>(&cipher, &mut out)
                    .map_err(failed)?;
                out.truncate(n);
                Ok(out)
            }
            _ => Err(wrong_algorithm()),
        }
    }
}

impl PublicKey {
    /// The key's spec.
    pub fn spec(&self) -> KeySpec {
        self.spec
    }

    /// Parses a SubjectPublicKeyInfo DER of `spec`: the algorithm, curve and
    /// modulus size must match.
    ///
    /// # Errors
    /// [`AsymError::InvalidParameter`] naming `PublicKey` if it does not parse
    /// or is of another spec, or `KeySpec` for a spec without a key pair.
    pub fn from_public_key_der(spec: KeySpec, der: &[u8]) -> Result<Self> {
        let bad = |_| AsymError::param("PublicKey", "not a valid key of the key spec");
        let inner = match spec {
            KeySpec::Rsa2048 | KeySpec::Rsa3072 => {
                let key = rsa::PublicKey::from_public_key_der(der).map_err(bad)?;
                if Some(key.n().bit_width() as usize) != rsa_bits(spec) {
                    return Err(AsymError::param(
                        "PublicKey",
                        "modulus size does not match the key spec",
                    ));
                }
                PublicInner::Rsa(key)
            }
            KeySpec::EcP256 => {
                PublicInner::P256(p256::ecdsa::VerifyingKey::from_public_key_der(der).map_err(bad)?)
            }
            KeySpec::EcP256K => {
                PublicInner::K256(k256::ecdsa::VerifyingKey::from_public_key_der(der).map_err(bad)?)
            }
            KeySpec::EcSm2 => {
                PublicInner::Sm2(sm2::PublicKey::from_public_key_der(der).map_err(bad)?)
            }
            _ => return Err(not_asymmetric()),
        };
        Ok(Self { spec, inner })
    }

    /// Parses a SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`).
    ///
    /// # Errors
    /// As [`PublicKey::from_public_key_der`].
    pub fn from_pem(spec: KeySpec, pem: &str) -> Result<Self> {
        let (label, der) = rsa::pkcs8::der::pem::decode_vec(pem.as_bytes())
            .map_err(|_| AsymError::param("PublicKey", "not a PEM document"))?;
        if label != "PUBLIC KEY" {
            return Err(AsymError::param("PublicKey", "not a PUBLIC KEY PEM"));
        }
        Self::from_public_key_der(spec, &der)
    }

    /// The SubjectPublicKeyInfo DER.
    ///
    /// # Errors
    /// [`AsymError::Internal`] if encoding fails.
    pub fn to_der(&self) -> Result<Vec<u8>> {
        let doc = match &self.inner {
            PublicInner::Rsa(k) => k.to_public_key_der(),
            PublicInner::P256(k) => k.to_public_key_der(),
            PublicInner::K256(k) => k.to_public_key_der(),
            PublicInner::Sm2(k) => k.to_public_key_der(),
        }
        .map_err(|_| AsymError::Internal)?;
        Ok(doc.into_vec())
    }

    /// The SubjectPublicKeyInfo PEM with LF line endings (`GetPublicKey`).
    ///
    /// # Errors
    /// [`AsymError::Internal`] if encoding fails.
    pub fn to_pem(&self) -> Result<String> {
        match &self.inner {
            PublicInner::Rsa(k) => k.to_public_key_pem(LineEnding::LF),
            PublicInner::P256(k) => k.to_public_key_pem(LineEnding::LF),
            PublicInner::K256(k) => k.to_public_key_pem(LineEnding::LF),
            PublicInner::Sm2(k) => k.to_public_key_pem(LineEnding::LF),
        }
        .map_err(|_| AsymError::Internal)
    }

    /// Verifies a signature over a digest (`AsymmetricVerify`). A signature
    /// that is malformed, not strict DER, or simply wrong is `Ok(false)`.
    /// ECDSA accepts high-S signatures (they are normalised first, SPEC
    /// section 11); RSA-PSS requires a 32-byte salt.
    ///
    /// # Errors
    /// [`AsymError::InvalidParameter`] naming `Algorithm` if `alg` is not a
    /// signature algorithm of this key, or `Digest` if the digest is not 32
    /// bytes.
    pub fn verify_digest(&self, alg: Algorithm, digest: &[u8], sig: &[u8]) -> Result<bool> {
        check_algorithm(self.spec, alg, KeyUsage::SignVerify)?;
        check_digest(alg, digest)?;
        let ok = match (&self.inner, alg) {
            (PublicInner::Rsa(k), Algorithm::RsaPkcs1Sha256) => k
                .verify(rsa::Pkcs1v15Sign::new::<Sha256>(), digest, sig)
                .is_ok(),
            (PublicInner::Rsa(k), Algorithm::RsaPssSha256) => k
                .verify(
                    rsa::Pss::<Sha256>::new_with_salt(RSA_PSS_SALT_LEN),
                    digest,
                    sig,
                )
                .is_ok(),
            (PublicInner::P256(k), Algorithm::EcdsaSha256) => {
                match p256::ecdsa::Signature::from_der(sig) {
                    Ok(s) => k.verify_prehash(digest, &s.normalize_s()).is_ok(),
                    Err(_) => false,
                }
            }
            (PublicInner::K256(k), Algorithm::EcdsaSha256) => {
                match k256::ecdsa::Signature::from_der(sig) {
                    Ok(s) => k.verify_prehash(digest, &s.normalize_s()).is_ok(),
                    Err(_) => false,
                }
            }
            (PublicInner::Sm2(k), Algorithm::Sm2Dsa) => {
                let parsed =
                    sm2::dsa::DerSignature::from_bytes(sig).and_then(sm2::dsa::Signature::try_from);
                match parsed {
                    Ok(s) => sm2_verifying_key(k)?.verify_prehash(digest, &s).is_ok(),
                    Err(_) => false,
                }
            }
            _ => return Err(wrong_algorithm()),
        };
        Ok(ok)
    }

    /// Encrypts to this public key (what a client does before
    /// `AsymmetricDecrypt`). Same algorithms and encodings as
    /// [`PrivateKey::decrypt`].
    ///
    /// # Errors
    /// [`AsymError::InvalidParameter`] naming `Algorithm` if `alg` is not an
    /// encryption algorithm of this key, or `Plaintext` if it is too long for
    /// RSA-OAEP; [`AsymError::Internal`] if the random source fails.
    pub fn encrypt<R: TryCryptoRng + ?Sized>(
        &self,
        alg: Algorithm,
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>> {
        check_algorithm(self.spec, alg, KeyUsage::EncryptDecrypt)?;
        let too_long = AsymError::param("Plaintext", "too long for the key and padding");
        match (&self.inner, alg) {
            (PublicInner::Rsa(k), Algorithm::RsaesOaepSha256 | Algorithm::RsaesOaepSha1) => {
                // RFC 8017 section 7.1.1: mLen <= k - 2 hLen - 2.
                let h_len = if alg == Algorithm::RsaesOaepSha256 {
                    32
                } else {
                    20
                };
                if plaintext.len() + 2 * h_len + 2 > k.size() {
                    return Err(too_long);
                }
                let r = if alg == Algorithm::RsaesOaepSha256 {
                    k.encrypt(rng, rsa::Oaep::<Sha256>::new(), plaintext)
                } else {
                    k.encrypt(rng, rsa::Oaep::<sha1::Sha1>::new(), plaintext)
                };
                r.map_err(|_| AsymError::Internal)
            }
            (PublicInner::Sm2(k), Algorithm::Sm2Pke) => {
                let mut rng = rng;
                sm2::pke::EncryptingKey::new(*k)
                    .encrypt_der(&mut rng, plaintext)
                    .map_err(|_| AsymError::Internal)
            }
            _ => Err(wrong_algorithm()),
        }
    }
}

/// RSAES-OAEP decryption (RFC 8017 section 7.1.2), blinded, with the
/// leading-zero check `rsa` 0.10.0 lacks. `pub(crate)` so that BYOK
/// unwrapping (`ops/import.rs`, which calls `rsa` directly today) can use
/// it: every failure is the one [`AsymError::DecryptionFailed`].
///
/// `rsa` 0.10.0 decodes OAEP in constant time but skips step 3g's check that
/// the leading octet Y of EM is zero (Wycheproof "First byte is 1" cases
/// decrypt). So EM's leading octet is also checked here, from a second,
/// blinded RSA decryption through `rsa::hazmat`. Both run on every call and
/// their verdicts are combined without branching in between, so a nonzero Y
/// is not distinguishable from any other padding failure (Manger's attack).
pub(crate) fn oaep_decrypt<R, P>(
    key: &rsa::PrivateKey,
    padding: P,
    ciphertext: &[u8],
    rng: &mut R,
) -> Result<Zeroizing<Vec<u8>>>
where
    R: TryCryptoRng + ?Sized,
    P: rsa::traits::PaddingScheme,
{
    use subtle::ConstantTimeEq;
    let k = key.size();
    if ciphertext.len() != k {
        return Err(AsymError::DecryptionFailed);
    }
    let c = rsa::BoxedUint::from_be_slice(ciphertext, key.n_bits_precision()).map_err(failed)?;
    // c >= n is public (ciphertext and modulus), so failing early leaks nothing.
    let m = Zeroizing::new(
        rsa::hazmat::rsa_decrypt_and_check(key, Some(&mut *rng), &c).map_err(failed)?,
    );
    // EM = I2OSP(m, k); its leading octet is the byte k - 1 from the right.
    let bytes = Zeroizing::new(m.to_be_bytes());
    let leading_zero = match bytes.len().checked_sub(k) {
        Some(extra) => {
            let mut z = subtle::Choice::from(1);
            for b in &bytes[..=extra] {
                z &= b.ct_eq(&0);
            }
            z
        }
        // Fewer than k bytes: the leading octet is an implicit zero.
        None => subtle::Choice::from(1),
    };
    let decoded = key
        .decrypt_blinded(rng, padding, ciphertext)
        .map(Zeroizing::new);
    match decoded {
        Ok(pt) if bool::from(leading_zero) => Ok(pt),
        _ => Err(AsymError::DecryptionFailed),
    }
}

fn sm2_verifying_key(public: &sm2::PublicKey) -> Result<sm2::dsa::VerifyingKey> {
    let id = std::str::from_utf8(SM2_DEFAULT_ID).map_err(|_| AsymError::Internal)?;
    sm2::dsa::VerifyingKey::new(id, *public).map_err(|_| AsymError::Internal)
}

// SM2 curve parameters (GB/T 32918.5), as they enter Z(A).
const SM2_A: [u8; 32] = hex32("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC");
const SM2_B: [u8; 32] = hex32("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93");
const SM2_GX: [u8; 32] = hex32("32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7");
const SM2_GY: [u8; 32] = hex32("BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0");

const fn hex32(s: &str) -> [u8; 32] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("not an upper-case hex digit"), // safe: const-evaluated on the literals above only, so a bad digit fails the build
        }
    }
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

/// Z(A) of GB/T 32918.2 section 5.5: SM3(ENTL || ID || a || b || xG || yG ||
/// xA || yA), for the distinguishing `id`.
///
/// # Errors
/// [`AsymError::InvalidParameter`] naming `KeySpec` if the key is not SM2, or
/// naming `Id` if the id is longer than 8191 bytes.
pub fn sm2_za(public: &PublicKey, id: &[u8]) -> Result<[u8; 32]> {
    use sm2::elliptic_curve::sec1::ToSec1Point;
    let PublicInner::Sm2(pk) = &public.inner else {
        return Err(AsymError::param("KeySpec", "not an SM2 key"));
    };
    let entl = id
        .len()
        .checked_mul(8)
        .and_then(|bits| u16::try_from(bits).ok())
        .ok_or(AsymError::param("Id", "too long"))?;
    let point = pk.to_sec1_point(false);
    let (Some(x), Some(y)) = (point.x(), point.y()) else {
        return Err(AsymError::Internal);
    };
    let mut h = Sm3::new();
    h.update(entl.to_be_bytes());
    h.update(id);
    h.update(SM2_A);
    h.update(SM2_B);
    h.update(SM2_GX);
    h.update(SM2_GY);
    h.update(x);
    h.update(y);
    Ok(h.finalize().into())
}

/// The `SM2DSA` digest e = SM3(Z(A) || M) with the default id
/// `1234567812345678` (GB/T 32918.2 section 6.1, steps A1 and A2): what a
/// client passes as `Digest` to sign message `msg`.
///
/// # Errors
/// As [`sm2_za`].
pub fn sm2_digest(public: &PublicKey, msg: &[u8]) -> Result<[u8; 32]> {
    let za = sm2_za(public, SM2_DEFAULT_ID)?;
    let mut h = Sm3::new();
    h.update(za);
    h.update(msg);
    Ok(h.finalize().into())
}

/// SHA-256 of `msg`: the digest `RSA_*_SHA_256` and `ECDSA_SHA_256` sign.
pub fn sha256(msg: &[u8]) -> [u8; 32] {
    Sha256::digest(msg).into()
}
