//! The random source of a [`Kms`]: the OS CSPRNG (the default), a caller's
//! generator through `rand_core`'s [`TryCryptoRng`] (an HSM's, a FIPS DRBG:
//! `KmsBuilder::rng`), or (feature `test-util` only) a seeded HMAC-SHA256
//! DRBG that makes key ids, version ids, key material, nonces and data keys
//! reproducible.
//!
//! Root-key sealing nonces, BYOK RSA key pairs and import token ids stay
//! OS-random in every mode: they never appear in anything an application
//! snapshots.

use rand_core::TryCryptoRng;
#[cfg(feature = "test-util")]
use rand_core::TryRng;

use crate::error::{Error, Result};
use crate::secret::{KeyMaterial, fill_random};

/// A caller's generator, boxed: any `rand_core` [`TryCryptoRng`].
pub(crate) trait DynRng: Send {
    fn fill(&mut self, buf: &mut [u8]) -> Result<()>;
}

impl<R: TryCryptoRng + Send> DynRng for R {
    fn fill(&mut self, buf: &mut [u8]) -> Result<()> {
        // The generator's error may say anything; it is not echoed.
        self.try_fill_bytes(buf).map_err(|_| Error::InternalFailure)
    }
}

/// Where a [`Kms`] takes the randomness that shapes its outputs.
#[derive(Default)]
pub(crate) enum Rng {
    /// The OS CSPRNG (`getrandom`, the same source as its `SysRng`).
    #[default]
    Os,
    /// A caller's generator (`KmsBuilder::rng`).
    Custom(std::sync::Mutex<Box<dyn DynRng>>),
    /// HMAC-SHA256(seed, counter) blocks. **Insecure**: anyone who knows the
    /// seed knows every key.
    #[cfg(feature = "test-util")]
    Deterministic(std::sync::Mutex<Drbg>),
}

impl Rng {
    /// The OS CSPRNG, or the DRBG seeded with `seed` (which only
    /// `KmsBuilder::insecure_deterministic` sets) for a store whose next key
    /// sequence number is `next_seq`: a fresh store always gets the same
    /// stream, and a reopened one a new stream, so it never makes again the
    /// ids of keys it made before.
    pub(crate) fn new(seed: Option<u64>, epoch: u64) -> Self {
        match seed {
            #[cfg(feature = "test-util")]
            Some(seed) => Self::Deterministic(std::sync::Mutex::new(Drbg::new(seed, epoch))),
            _ => {
                let _ = epoch;
                Self::Os
            }
        }
    }
}

impl std::fmt::Debug for Rng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Os => f.write_str("Os"),
            Self::Custom(_) => f.write_str("Custom"),
            #[cfg(feature = "test-util")]
            Self::Deterministic(_) => f.write_str("Deterministic([REDACTED])"),
        }
    }
}

/// The deterministic generator: block `i` is HMAC-SHA256(seed || epoch,
/// "localkms drbg v1" || i), all numbers u64 big-endian, where the epoch is
/// how many times the store was opened in deterministic mode before (0 for a
/// fresh store; persisted in the store, so a reopened store never replays a
/// stream, even when it made no keys).
/// Output is the blocks in order; a request that ends inside a block
/// discards the rest of it.
#[cfg(feature = "test-util")]
pub(crate) struct Drbg {
    seed: [u8; 16],
    counter: u64,
}

/// The generator is a `rand_core` [`TryCryptoRng`] like any other source;
/// it is **insecure**: anyone who knows the seed knows its output.
#[cfg(feature = "test-util")]
impl TryRng for Drbg {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> std::result::Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.fill(&mut b);
        Ok(u32::from_be_bytes(b))
    }

    fn try_next_u64(&mut self) -> std::result::Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        Ok(u64::from_be_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> std::result::Result<(), Self::Error> {
        self.fill(dst);
        Ok(())
    }
}

#[cfg(feature = "test-util")]
impl TryCryptoRng for Drbg {}

#[cfg(feature = "test-util")]
impl Drbg {
    pub(crate) fn new(seed: u64, epoch: u64) -> Self {
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&seed.to_be_bytes());
        key[8..].copy_from_slice(&epoch.to_be_bytes());
        Self {
            seed: key,
            counter: 0,
        }
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(32) {
            let block = crate::secret::hmac_sha256(
                &self.seed,
                &[b"localkms drbg v1", &self.counter.to_be_bytes()],
            );
            self.counter = self.counter.wrapping_add(1);
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }
}

impl Rng {
    /// Fills `buf` from this service's random source (see [`Rng`]).
    pub(crate) fn fill_random(&self, buf: &mut [u8]) -> Result<()> {
        match self {
            Rng::Os => fill_random(buf),
            Rng::Custom(r) => r.lock().map_err(|_| Error::InternalFailure)?.fill(buf),
            #[cfg(feature = "test-util")]
            Rng::Deterministic(d) => {
                DynRng::fill(&mut *d.lock().map_err(|_| Error::InternalFailure)?, buf)
            }
        }
    }

    /// A new lowercase UUID v4 (a KeyId or KeyVersionId).
    pub(crate) fn new_uuid(&self) -> Result<String> {
        if matches!(self, Rng::Os) {
            return new_uuid();
        }
        let mut b = [0u8; 16];
        self.fill_random(&mut b)?;
        Ok(uuid::Builder::from_random_bytes(b)
            .into_uuid()
            .hyphenated()
            .to_string())
    }

    /// Fresh 256-bit key material.
    pub(crate) fn new_material(&self) -> Result<KeyMaterial> {
        match self {
            Rng::Os => KeyMaterial::generate(),
            _ => {
                let mut m = zeroize::Zeroizing::new([0u8; 32]);
                self.fill_random(m.as_mut())?;
                KeyMaterial::from_slice(m.as_ref()).ok_or(Error::InternalFailure)
            }
        }
    }

    /// True when this service was built with
    /// `KmsBuilder::insecure_deterministic`: its keys are predictable and
    /// must never protect real data.
    pub(crate) fn is_insecure_deterministic(&self) -> bool {
        match self {
            #[cfg(feature = "test-util")]
            Rng::Deterministic(_) => true,
            _ => false,
        }
    }
}

/// A new lowercase UUID v4 from the OS CSPRNG.
pub(crate) fn new_uuid() -> Result<String> {
    let mut b = [0u8; 16];
    fill_random(&mut b)?;
    Ok(uuid::Builder::from_random_bytes(b)
        .into_uuid()
        .hyphenated()
        .to_string())
}

#[cfg(all(test, feature = "test-util"))]
mod tests {
    use super::*;

    #[test]
    fn drbg_is_reproducible_and_seed_dependent() {
        let mut a = [0u8; 70];
        let mut b = [0u8; 70];
        Drbg::new(1, 0).fill(&mut a);
        Drbg::new(1, 0).fill(&mut b);
        assert_eq!(a, b);
        Drbg::new(2, 0).fill(&mut b);
        assert_ne!(a, b);
        Drbg::new(1, 1).fill(&mut b);
        assert_ne!(a, b);
        // Block 0 is HMAC-SHA256(seed || epoch, label || 0).
        let block0 = crate::secret::hmac_sha256(
            &[1u64.to_be_bytes(), 0u64.to_be_bytes()].concat(),
            &[b"localkms drbg v1", &0u64.to_be_bytes()],
        );
        assert_eq!(&a[..32], &block0[..]);
        // Consecutive calls continue the stream, not restart it.
        let mut d = Drbg::new(1, 0);
        let mut first = [0u8; 16];
        let mut second = [0u8; 16];
        d.fill(&mut first);
        d.fill(&mut second);
        assert_ne!(first, second);
    }
}

/// The default build has no deterministic mode: this must not compile
/// without the `test-util` feature (run `cargo test --doc` without
/// features to check; with the feature this item does not exist).
///
/// ```compile_fail,E0599
/// let kms = localkms::Kms::builder().insecure_deterministic(1).build();
/// ```
///
/// The same code without the method compiles, so the failure above is the
/// missing method and nothing else:
///
/// ```
/// let kms = localkms::Kms::builder().build();
/// ```
#[cfg(not(feature = "test-util"))]
#[allow(dead_code)]
pub(crate) struct DefaultBuildGate;
