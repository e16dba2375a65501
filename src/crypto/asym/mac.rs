//! HMAC for the `HMAC_*` key specs (RFC 2104; SHA-2 per FIPS 180-4, SM3 per
//! GB/T 32905), for GenerateMac and VerifyMac.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Sha224, Sha256, Sha384, Sha512};
use sm3::Sm3;

use super::error::{AsymError, Result};
use super::spec::KeySpec;

/// Computes the full-length HMAC tag of `msg` under `key` for an HMAC key
/// spec. Any key length is accepted, as RFC 2104 allows.
///
/// # Errors
/// [`AsymError::InvalidParameter`] naming `KeySpec` if `spec` is not an HMAC
/// spec.
pub fn mac(spec: KeySpec, key: &[u8], msg: &[u8]) -> Result<Vec<u8>> {
    fn run<M: Mac + KeyInit>(key: &[u8], msg: &[u8]) -> Result<Vec<u8>> {
        let mut m = <M as KeyInit>::new_from_slice(key).map_err(|_| AsymError::Internal)?;
        m.update(msg);
        Ok(m.finalize().into_bytes().to_vec())
    }
    match spec {
        KeySpec::HmacSha224 => run::<Hmac<Sha224>>(key, msg),
        KeySpec::HmacSha256 => run::<Hmac<Sha256>>(key, msg),
        KeySpec::HmacSha384 => run::<Hmac<Sha384>>(key, msg),
        KeySpec::HmacSha512 => run::<Hmac<Sha512>>(key, msg),
        KeySpec::HmacSm3 => run::<Hmac<Sm3>>(key, msg),
        _ => Err(not_hmac()),
    }
}

/// Whether `tag` is the full-length HMAC tag of `msg` under `key`, compared
/// in constant time. A tag of any other length (a truncated tag) is `false`.
///
/// # Errors
/// [`AsymError::InvalidParameter`] naming `KeySpec` if `spec` is not an HMAC
/// spec.
pub fn verify_mac(spec: KeySpec, key: &[u8], msg: &[u8], tag: &[u8]) -> Result<bool> {
    fn run<M: Mac + KeyInit>(key: &[u8], msg: &[u8], tag: &[u8]) -> Result<bool> {
        let mut m = <M as KeyInit>::new_from_slice(key).map_err(|_| AsymError::Internal)?;
        m.update(msg);
        // `verify_slice` compares in constant time and refuses other lengths.
        Ok(m.verify_slice(tag).is_ok())
    }
    match spec {
        KeySpec::HmacSha224 => run::<Hmac<Sha224>>(key, msg, tag),
        KeySpec::HmacSha256 => run::<Hmac<Sha256>>(key, msg, tag),
        KeySpec::HmacSha384 => run::<Hmac<Sha384>>(key, msg, tag),
        KeySpec::HmacSha512 => run::<Hmac<Sha512>>(key, msg, tag),
        KeySpec::HmacSm3 => run::<Hmac<Sm3>>(key, msg, tag),
        _ => Err(not_hmac()),
    }
}

const fn not_hmac() -> AsymError {
    AsymError::param("KeySpec", "not an HMAC key spec")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let msg = b"what do ya want for nothing?";
        let t = mac(KeySpec::HmacSha256, b"Jefe", msg).unwrap();
        assert_eq!(
            t,
            hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
        assert!(verify_mac(KeySpec::HmacSha256, b"Jefe", msg, &t).unwrap());
        let mut bad = t.clone();
        bad[31] ^= 1;
        assert!(!verify_mac(KeySpec::HmacSha256, b"Jefe", msg, &bad).unwrap());
        assert!(!verify_mac(KeySpec::HmacSha256, b"Jefe", msg, &t[..16]).unwrap());
        assert!(!verify_mac(KeySpec::HmacSha384, b"Jefe", msg, &t).unwrap());
    }

    #[test]
    fn tag_lengths() {
        for (spec, len) in [
            (KeySpec::HmacSha224, 28),
            (KeySpec::HmacSha256, 32),
            (KeySpec::HmacSha384, 48),
            (KeySpec::HmacSha512, 64),
            (KeySpec::HmacSm3, 32),
        ] {
            assert_eq!(mac(spec, b"k", b"m").unwrap().len(), len);
        }
        assert!(matches!(
            mac(KeySpec::EcP256, b"k", b"m"),
            Err(AsymError::InvalidParameter {
                param: "KeySpec",
                ..
            })
        ));
    }
}
