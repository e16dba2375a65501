//! XAES-256-GCM (C2SP, <https://c2sp.org/XAES-256-GCM>), the AEAD of the
//! ciphertext blob, with the per-message work kept to what the construction
//! needs.
//!
//! The output is byte for byte that of the `xaes-256-gcm` crate (tested
//! below against it and against the C2SP vectors). What differs is the cost
//! of a message: the two halves of the derived key are one two-block AES
//! call (one round-key setup, not two), and the derived AES-256-GCM uses
//! the encryption-only key schedule (GCM never runs AES backwards).
//!
//! ```text
//! L  = AES-256(K, 0^128);  K1 = L << 1, xor 0x87 into the last byte if L's top bit was set
//! Kx = AES-256(K, [0, 1, 'X', 0] || N[..12] ^ K1) || AES-256(K, [0, 2, 'X', 0] || N[..12] ^ K1)
//! XAES-256-GCM(K, N, A, P) = AES-256-GCM(Kx, N[12..], A, P)
//! ```

use std::fmt;

use xaes_256_gcm::aead::array::Array;
use xaes_256_gcm::aead::consts::{U12, U16, U24};
use xaes_256_gcm::aead::inout::InOutBuf;
use xaes_256_gcm::aead::{AeadCore, AeadInOut, Error, KeyInit, TagPosition};
use xaes_256_gcm::aes::Aes256Enc;
use xaes_256_gcm::aes::cipher::BlockCipherEncrypt;
use xaes_256_gcm::aes_gcm::AesGcm;
use zeroize::Zeroize;

/// The AES-256-GCM of one message's derived key.
type Derived = AesGcm<Aes256Enc, U12>;

/// One AES block.
type Block = Array<u8, U16>;

/// An XAES-256-GCM key, prepared once: its AES-256 key schedule and `K1`.
/// Zeroized on drop (the key schedule by the `aes` crate's `zeroize`
/// feature, `K1` here); never printed.
pub(crate) struct Xaes {
    aes: Aes256Enc,
    k1: [u8; 16],
}

impl Xaes {
    /// Prepares `key`.
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        let aes = Aes256Enc::new(&(*key).into());
        let mut l = Block::default();
        aes.encrypt_block(&mut l);
        let mut k1 = [0u8; 16];
        k1.copy_from_slice(&l);
        l.as_mut_slice().zeroize();
        // K1 = L << 1 in GF(2^128), without a branch on the key.
        let mut carry = 0u8;
        for b in k1.iter_mut().rev() {
            let top = *b >> 7;
            *b = (*b << 1) | carry;
            carry = top;
        }
        k1[15] ^= carry.wrapping_mul(0x87);
        Self { aes, k1 }
    }

    /// The AES-256-GCM of the key derived for the nonce half `n1`. Inlined,
    /// so the cipher is built where it is used, not copied there.
    #[inline(always)]
    fn derive(&self, n1: &[u8]) -> Derived {
        let mut m = [Block::default(), Block::default()];
        for (i, block) in m.iter_mut().enumerate() {
            block[..4].copy_from_slice(&[0, 1 + i as u8, b'X', 0]);
            block[4..].copy_from_slice(n1);
            for (b, k) in block.iter_mut().zip(&self.k1) {
                *b ^= k;
            }
        }
        self.aes.encrypt_blocks(&mut m);
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(&m[0]);
        key[16..].copy_from_slice(&m[1]);
        for block in &mut m {
            block.as_mut_slice().zeroize();
        }
        let cipher = Derived::new(&key.into());
        key.zeroize();
        cipher
    }
}

impl Drop for Xaes {
    fn drop(&mut self) {
        self.k1.zeroize();
    }
}

impl fmt::Debug for Xaes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Xaes(..)")
    }
}

impl AeadCore for Xaes {
    type NonceSize = U24;
    type TagSize = U16;
    const TAG_POSITION: TagPosition = TagPosition::Postfix;
}

impl AeadInOut for Xaes {
    fn encrypt_inout_detached(
        &self,
        nonce: &Array<u8, U24>,
        associated_data: &[u8],
        buffer: InOutBuf<'_, '_, u8>,
    ) -> Result<Array<u8, U16>, Error> {
        let (n1, n2) = nonce.split_at(12);
        let n2 = Array::<u8, U12>::try_from(n2).map_err(|_| Error)?;
        self.derive(n1)
            .encrypt_inout_detached(&n2, associated_data, buffer)
    }

    fn decrypt_inout_detached(
        &self,
        nonce: &Array<u8, U24>,
        associated_data: &[u8],
        buffer: InOutBuf<'_, '_, u8>,
        tag: &Array<u8, U16>,
    ) -> Result<(), Error> {
        let (n1, n2) = nonce.split_at(12);
        let n2 = Array::<u8, U12>::try_from(n2).map_err(|_| Error)?;
        self.derive(n1)
            .decrypt_inout_detached(&n2, associated_data, buffer, tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xaes_256_gcm::Xaes256Gcm;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// The C2SP vectors (c2sp.org/XAES-256-GCM).
    #[test]
    fn c2sp_vectors() {
        let cases = [
            (
                1u8,
                &b""[..],
                "ce546ef63c9cc60765923609",
                "b33a9a1974e96e52daf2fcf7075e2271",
            ),
            (
                3,
                b"c2sp.org/XAES-256-GCM",
                "986ec1832593df5443a17943",
                "7fd083bf3fdb41abd740a21f71eb769d",
            ),
        ];
        for (k, aad, ct, tag) in cases {
            let x = Xaes::new(&[k; 32]);
            let nonce = Array::from(*b"ABCDEFGHIJKLMNOPQRSTUVWX");
            let mut buf = b"XAES-256-GCM".to_vec();
            let t = x
                .encrypt_inout_detached(&nonce, aad, buf.as_mut_slice().into())
                .expect("seal");
            assert_eq!(buf, hex(ct));
            assert_eq!(t.as_slice(), hex(tag));
            x.decrypt_inout_detached(&nonce, aad, buf.as_mut_slice().into(), &t)
                .expect("open");
            assert_eq!(buf, b"XAES-256-GCM");
        }
    }

    /// The same bytes as the `xaes-256-gcm` crate for keys whose `L` has
    /// either top bit, nonces, lengths and associated data; a changed byte
    /// anywhere fails to open.
    #[test]
    fn matches_the_reference_crate() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..64usize {
            let mut key = [0u8; 32];
            key.iter_mut().for_each(|b| *b = next() as u8);
            let mut nonce = [0u8; 24];
            nonce.iter_mut().for_each(|b| *b = next() as u8);
            let len = [0, 1, 15, 16, 17, 100, 1024, 6144][round % 8];
            let pt: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let aad: Vec<u8> = (0..round * 3).map(|_| next() as u8).collect();
            let ours = Xaes::new(&key);
            let theirs = Xaes256Gcm::new(&key.into());
            let mut a = pt.clone();
            let mut b = pt.clone();
            let ta = ours
                .encrypt_inout_detached(&nonce.into(), &aad, a.as_mut_slice().into())
                .expect("seal");
            let tb = theirs
                .encrypt_inout_detached(&nonce.into(), &aad, b.as_mut_slice().into())
                .expect("seal");
            assert_eq!((&a, ta), (&b, tb), "round {round}");
            let mut bad = a.clone();
            if let Some(first) = bad.first_mut() {
                *first ^= 1;
                assert!(
                    ours.decrypt_inout_detached(
                        &nonce.into(),
                        &aad,
                        bad.as_mut_slice().into(),
                        &ta
                    )
                    .is_err()
                );
            }
            let mut bad_nonce = nonce;
            bad_nonce[round % 24] ^= 0x80;
            let mut c = a.clone();
            assert!(
                ours.decrypt_inout_detached(&bad_nonce.into(), &aad, c.as_mut_slice().into(), &ta)
                    .is_err()
            );
            ours.decrypt_inout_detached(&nonce.into(), &aad, a.as_mut_slice().into(), &ta)
                .expect("open");
            assert_eq!(a, pt);
        }
    }
}
