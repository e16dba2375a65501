//! Key specs, key usages and algorithms with their exact wire strings
//! (SPEC section 11), and the table of which combinations are valid.

use std::fmt;
use std::str::FromStr;

use super::error::AsymError;

/// Declares a closed enum whose variants map one to one onto wire strings.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident, $param:literal, { $($(#[$vmeta:meta])* $variant:ident => $wire:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// The exact wire string.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = AsymError;

            /// Parses the exact (case-sensitive) wire string.
            fn from_str(s: &str) -> Result<Self, AsymError> {
                match s {
                    $($wire => Ok(Self::$variant),)+
                    _ => Err(AsymError::param($param, "unknown value")),
                }
            }
        }
    };
}

wire_enum!(
    /// The kind of key material (`CreateKey` `KeySpec`).
    KeySpec, "KeySpec", {
        /// A 256-bit AES key.
        Aes256 => "Aliyun_AES_256",
        /// A 128-bit SM4 key.
        Sm4 => "Aliyun_SM4",
        /// A 2048-bit RSA key pair.
        Rsa2048 => "RSA_2048",
        /// A 3072-bit RSA key pair.
        Rsa3072 => "RSA_3072",
        /// A NIST P-256 (secp256r1) key pair.
        EcP256 => "EC_P256",
        /// A secp256k1 key pair.
        EcP256K => "EC_P256K",
        /// An SM2 key pair (GB/T 32918).
        EcSm2 => "EC_SM2",
        /// An HMAC-SHA-224 key.
        HmacSha224 => "HMAC_SHA_224",
        /// An HMAC-SHA-256 key.
        HmacSha256 => "HMAC_SHA_256",
        /// An HMAC-SHA-384 key.
        HmacSha384 => "HMAC_SHA_384",
        /// An HMAC-SHA-512 key.
        HmacSha512 => "HMAC_SHA_512",
        /// An HMAC-SM3 key.
        HmacSm3 => "HMAC_SM3",
    }
);

wire_enum!(
    /// What a key may be used for (`CreateKey` `KeyUsage`).
    KeyUsage, "KeyUsage", {
        /// Encryption and decryption.
        EncryptDecrypt => "ENCRYPT/DECRYPT",
        /// Signing and signature verification.
        SignVerify => "SIGN/VERIFY",
        /// Generating and verifying MACs.
        GenerateVerifyMac => "GENERATE/VERIFY MAC",
    }
);

wire_enum!(
    /// An asymmetric or MAC algorithm (the `Algorithm` parameter).
    Algorithm, "Algorithm", {
        /// RSASSA-PSS, SHA-256, MGF1-SHA-256, 32-byte salt.
        RsaPssSha256 => "RSA_PSS_SHA_256",
        /// RSASSA-PKCS1-v1_5 with SHA-256.
        RsaPkcs1Sha256 => "RSA_PKCS1_SHA_256",
        /// ECDSA over SHA-256, DER signatures.
        EcdsaSha256 => "ECDSA_SHA_256",
        /// SM2 signatures (GB/T 32918.2), DER signatures.
        Sm2Dsa => "SM2DSA",
        /// RSAES-OAEP, SHA-256 and MGF1-SHA-256, empty label.
        RsaesOaepSha256 => "RSAES_OAEP_SHA_256",
        /// RSAES-OAEP, SHA-1 and MGF1-SHA-1, empty label.
        RsaesOaepSha1 => "RSAES_OAEP_SHA_1",
        /// SM2 public-key encryption (GB/T 32918.4), GM/T 0009 ASN.1 ciphertext.
        Sm2Pke => "SM2PKE",
        /// HMAC with SHA-224.
        HmacSha224 => "HMAC_SHA_224",
        /// HMAC with SHA-256.
        HmacSha256 => "HMAC_SHA_256",
        /// HMAC with SHA-384.
        HmacSha384 => "HMAC_SHA_384",
        /// HMAC with SHA-512.
        HmacSha512 => "HMAC_SHA_512",
        /// HMAC with SM3.
        HmacSm3 => "HMAC_SM3",
    }
);

impl KeySpec {
    /// Whether the key is a symmetric encryption key (`Aliyun_AES_256`,
    /// `Aliyun_SM4`).
    pub const fn is_symmetric(self) -> bool {
        matches!(self, Self::Aes256 | Self::Sm4)
    }

    /// Whether the key is an asymmetric key pair.
    pub const fn is_asymmetric(self) -> bool {
        matches!(
            self,
            Self::Rsa2048 | Self::Rsa3072 | Self::EcP256 | Self::EcP256K | Self::EcSm2
        )
    }

    /// Whether the key is an HMAC key.
    pub const fn is_hmac(self) -> bool {
        matches!(
            self,
            Self::HmacSha224
                | Self::HmacSha256
                | Self::HmacSha384
                | Self::HmacSha512
                | Self::HmacSm3
        )
    }

    /// The `KeyUsage` a `CreateKey` without one gets.
    ///
    /// The vendor's rule (CreateKey, `KeyUsage`): "if the key supports signing
    /// and verification, the default value is SIGN/VERIFY; otherwise
    /// ENCRYPT/DECRYPT". RSA and SM2 keys support signing, so they default to
    /// `SIGN/VERIFY` as the EC keys do. HMAC keys can do neither; they get the
    /// one usage they have (SPEC section 11).
    pub const fn default_usage(self) -> KeyUsage {
        match self {
            Self::Aes256 | Self::Sm4 => KeyUsage::EncryptDecrypt,
            Self::Rsa2048 | Self::Rsa3072 | Self::EcP256 | Self::EcP256K | Self::EcSm2 => {
                KeyUsage::SignVerify
            }
            Self::HmacSha224
            | Self::HmacSha256
            | Self::HmacSha384
            | Self::HmacSha512
            | Self::HmacSm3 => KeyUsage::GenerateVerifyMac,
        }
    }

    /// Whether a key of this spec may be created with `usage` (SPEC section 11).
    pub const fn allows_usage(self, usage: KeyUsage) -> bool {
        match self {
            Self::Aes256 | Self::Sm4 => matches!(usage, KeyUsage::EncryptDecrypt),
            Self::Rsa2048 | Self::Rsa3072 | Self::EcSm2 => {
                matches!(usage, KeyUsage::EncryptDecrypt | KeyUsage::SignVerify)
            }
            Self::EcP256 | Self::EcP256K => matches!(usage, KeyUsage::SignVerify),
            Self::HmacSha224
            | Self::HmacSha256
            | Self::HmacSha384
            | Self::HmacSha512
            | Self::HmacSm3 => matches!(usage, KeyUsage::GenerateVerifyMac),
        }
    }

    /// The key length in bytes of a symmetric or HMAC key of this spec, or
    /// `None` for a key pair. HMAC keys are as long as the hash output.
    pub const fn secret_len(self) -> Option<usize> {
        match self {
            Self::Aes256 => Some(32),
            Self::Sm4 => Some(16),
            Self::HmacSha224 => Some(28),
            Self::HmacSha256 | Self::HmacSm3 => Some(32),
            Self::HmacSha384 => Some(48),
            Self::HmacSha512 => Some(64),
            Self::Rsa2048 | Self::Rsa3072 | Self::EcP256 | Self::EcP256K | Self::EcSm2 => None,
        }
    }
}

impl Algorithm {
    /// The usage a key must have for this algorithm.
    pub const fn usage(self) -> KeyUsage {
        match self {
            Self::RsaPssSha256 | Self::RsaPkcs1Sha256 | Self::EcdsaSha256 | Self::Sm2Dsa => {
                KeyUsage::SignVerify
            }
            Self::RsaesOaepSha256 | Self::RsaesOaepSha1 | Self::Sm2Pke => KeyUsage::EncryptDecrypt,
            Self::HmacSha224
            | Self::HmacSha256
            | Self::HmacSha384
            | Self::HmacSha512
            | Self::HmacSm3 => KeyUsage::GenerateVerifyMac,
        }
    }

    /// The digest length a signature algorithm takes (SHA-256 or SM3: 32
    /// bytes), or `None` for the others.
    pub const fn digest_len(self) -> Option<usize> {
        match self {
            Self::RsaPssSha256 | Self::RsaPkcs1Sha256 | Self::EcdsaSha256 | Self::Sm2Dsa => {
                Some(32)
            }
            _ => None,
        }
    }

    /// Whether this algorithm may be used with a key of `spec` (ignoring
    /// usage).
    pub const fn fits_spec(self, spec: KeySpec) -> bool {
        match self {
            Self::RsaPssSha256
            | Self::RsaPkcs1Sha256
            | Self::RsaesOaepSha256
            | Self::RsaesOaepSha1 => matches!(spec, KeySpec::Rsa2048 | KeySpec::Rsa3072),
            Self::EcdsaSha256 => matches!(spec, KeySpec::EcP256 | KeySpec::EcP256K),
            Self::Sm2Dsa | Self::Sm2Pke => matches!(spec, KeySpec::EcSm2),
            Self::HmacSha224 => matches!(spec, KeySpec::HmacSha224),
            Self::HmacSha256 => matches!(spec, KeySpec::HmacSha256),
            Self::HmacSha384 => matches!(spec, KeySpec::HmacSha384),
            Self::HmacSha512 => matches!(spec, KeySpec::HmacSha512),
            Self::HmacSm3 => matches!(spec, KeySpec::HmacSm3),
        }
    }
}

/// Whether a key of `spec` created for `usage` may run `algorithm`
/// (SPEC section 11): the spec allows the usage, the algorithm needs that
/// usage, and the algorithm belongs to the spec. Symmetric specs take no
/// [`Algorithm`] at all.
pub const fn is_valid_combination(spec: KeySpec, usage: KeyUsage, algorithm: Algorithm) -> bool {
    spec.allows_usage(usage)
        && algorithm.fits_spec(spec)
        && matches!(
            (algorithm.usage(), usage),
            (KeyUsage::EncryptDecrypt, KeyUsage::EncryptDecrypt)
                | (KeyUsage::SignVerify, KeyUsage::SignVerify)
                | (KeyUsage::GenerateVerifyMac, KeyUsage::GenerateVerifyMac)
        )
}

/// Checks [`is_valid_combination`], naming the parameter at fault: `KeyUsage`
/// when the spec cannot have that usage, `Algorithm` otherwise.
///
/// # Errors
/// [`AsymError::InvalidParameter`] naming `KeyUsage` or `Algorithm`.
pub fn check_combination(
    spec: KeySpec,
    usage: KeyUsage,
    algorithm: Algorithm,
) -> Result<(), AsymError> {
    if !spec.allows_usage(usage) {
        return Err(AsymError::param("KeyUsage", "not allowed for the key spec"));
    }
    if !is_valid_combination(spec, usage, algorithm) {
        return Err(AsymError::param(
            "Algorithm",
            "not supported by the key spec and usage",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_strings_round_trip() {
        for s in KeySpec::ALL {
            assert_eq!(s.as_str().parse::<KeySpec>(), Ok(*s));
        }
        for u in KeyUsage::ALL {
            assert_eq!(u.as_str().parse::<KeyUsage>(), Ok(*u));
        }
        for a in Algorithm::ALL {
            assert_eq!(a.as_str().parse::<Algorithm>(), Ok(*a));
        }
        assert_eq!(KeySpec::ALL.len(), 12);
        assert_eq!(Algorithm::ALL.len(), 12);
        assert_eq!(KeySpec::EcP256K.to_string(), "EC_P256K");
        assert_eq!(
            KeyUsage::GenerateVerifyMac.to_string(),
            "GENERATE/VERIFY MAC"
        );
        assert_eq!(Algorithm::Sm2Pke.to_string(), "SM2PKE");
    }

    #[test]
    fn parsing_is_exact() {
        assert!("rsa_2048".parse::<KeySpec>().is_err());
        assert!("Aliyun_AES_128".parse::<KeySpec>().is_err());
        assert!("SIGN/VERIFY ".parse::<KeyUsage>().is_err());
        let e = "ECDSA_SHA_384".parse::<Algorithm>().unwrap_err();
        assert!(e.to_string().contains("Algorithm"), "{e}");
    }

    #[test]
    fn combinations() {
        use Algorithm as A;
        use KeySpec as S;
        use KeyUsage as U;
        assert!(is_valid_combination(
            S::Rsa2048,
            U::SignVerify,
            A::RsaPssSha256
        ));
        assert!(is_valid_combination(
            S::Rsa3072,
            U::EncryptDecrypt,
            A::RsaesOaepSha1
        ));
        assert!(!is_valid_combination(
            S::Rsa2048,
            U::EncryptDecrypt,
            A::RsaPssSha256
        ));
        assert!(!is_valid_combination(
            S::Rsa2048,
            U::SignVerify,
            A::EcdsaSha256
        ));
        assert!(is_valid_combination(
            S::EcP256K,
            U::SignVerify,
            A::EcdsaSha256
        ));
        assert!(!is_valid_combination(
            S::EcP256,
            U::EncryptDecrypt,
            A::EcdsaSha256
        ));
        assert!(is_valid_combination(S::EcSm2, U::EncryptDecrypt, A::Sm2Pke));
        assert!(is_valid_combination(S::EcSm2, U::SignVerify, A::Sm2Dsa));
        assert!(!is_valid_combination(S::EcSm2, U::SignVerify, A::Sm2Pke));
        assert!(is_valid_combination(
            S::HmacSm3,
            U::GenerateVerifyMac,
            A::HmacSm3
        ));
        assert!(!is_valid_combination(
            S::HmacSha256,
            U::GenerateVerifyMac,
            A::HmacSha512
        ));
        for a in Algorithm::ALL {
            assert!(!is_valid_combination(S::Aes256, U::EncryptDecrypt, *a));
            assert!(!is_valid_combination(S::Sm4, U::EncryptDecrypt, *a));
        }
        // Every spec allows its own default usage.
        for s in KeySpec::ALL {
            assert!(s.allows_usage(s.default_usage()), "{s}");
        }
        assert_eq!(S::Rsa2048.default_usage(), U::SignVerify);
        assert_eq!(S::Sm4.default_usage(), U::EncryptDecrypt);
        assert_eq!(
            check_combination(S::EcP256, U::EncryptDecrypt, A::EcdsaSha256),
            Err(AsymError::param("KeyUsage", "not allowed for the key spec"))
        );
        assert!(matches!(
            check_combination(S::EcP256, U::SignVerify, A::Sm2Dsa),
            Err(AsymError::InvalidParameter {
                param: "Algorithm",
                ..
            })
        ));
    }
}
