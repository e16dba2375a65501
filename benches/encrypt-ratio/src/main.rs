//! Kms::encrypt of 1 KiB beside raw AES-256-GCM + one getrandom and raw
//! XAES-256-GCM + one getrandom, in alternating batches; prints the best
//! batch of each and the ratios.
use std::hint::black_box;
use std::time::Instant;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};

const N: u32 = 2000;
const ROUNDS: usize = 300;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let kms = localkms::Kms::in_memory()?;
    let key = kms.create_key(&Default::default())?.key_id;
    let ctx = localkms::EncryptionContext::empty();
    let raw = Aes256Gcm::new(&[9u8; 32].into());
    let xaes = xaes_256_gcm::Xaes256Gcm::new(&[9u8; 32].into());
    let pt = vec![0x5au8; 1024];
    let mut buf = pt.clone();
    let mut best = [f64::MAX; 3];
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for _ in 0..N {
            let mut nonce = [0u8; 12];
            getrandom::fill(&mut nonce)?;
            let tag = raw
                .encrypt_inout_detached(&Nonce::from(nonce), b"", buf.as_mut_slice().into())
                .map_err(|_| "seal")?;
            black_box(tag);
        }
        best[0] = best[0].min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        for _ in 0..N {
            let mut nonce = [0u8; 24];
            getrandom::fill(&mut nonce)?;
            let tag = xaes
                .encrypt_inout_detached(&nonce.into(), b"", buf.as_mut_slice().into())
                .map_err(|_| "seal")?;
            black_box(tag);
        }
        best[1] = best[1].min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        for _ in 0..N {
            black_box(kms.encrypt(&key, &pt, &ctx)?);
        }
        best[2] = best[2].min(t.elapsed().as_secs_f64());
    }
    let ns = |s: f64| s * 1e9 / f64::from(N);
    println!(
        "raw AES-256-GCM+getrandom {:.0} ns, raw XAES-256-GCM+getrandom {:.0} ns, Kms::encrypt {:.0} ns: {:.2}x raw AES-256-GCM, {:.2}x raw XAES",
        ns(best[0]),
        ns(best[1]),
        ns(best[2]),
        best[2] / best[0],
        best[2] / best[1]
    );
    Ok(())
}
