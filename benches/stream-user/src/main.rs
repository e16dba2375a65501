//! Streams 64 MiB through the envelope writer and reader adapters and the
//! Read->Write functions, and prints MiB/s (best of 5).
use std::io::{Read, Write};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let kms = localkms::Kms::in_memory()?;
    let key = kms.create_key(&Default::default())?.key_id;
    let ctx = localkms::EncryptionContext::empty();
    let data = vec![0x5au8; 64 << 20];
    let mut env = Vec::with_capacity(data.len() + (1 << 20));
    let mut back = Vec::with_capacity(data.len());
    let mib = (data.len() >> 20) as f64;
    let best = |f: &mut dyn FnMut()| {
        (0..5)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .fold(f64::MAX, f64::min)
    };
    let t_enc = best(&mut || {
        env.clear();
        kms.envelope_encrypt_stream(&key, &ctx, &data[..], &mut env).unwrap();
    });
    let t_dec = best(&mut || {
        back.clear();
        kms.envelope_decrypt_stream(&ctx, &env[..], &mut back).unwrap();
    });
    let t_w = best(&mut || {
        env.clear();
        let mut w = kms.envelope_writer(&key, &ctx, &mut env).unwrap();
        for c in data.chunks(8192) {
            w.write_all(c).unwrap();
        }
        w.finish().unwrap();
    });
    let t_r = best(&mut || {
        back.clear();
        let mut r = kms.envelope_reader(&ctx, &env[..]).unwrap();
        let mut buf = [0u8; 8192];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            back.extend_from_slice(&buf[..n]);
        }
    });
    assert_eq!(back, data);
    println!(
        "encrypt-stream {:.0} MiB/s, decrypt-stream {:.0} MiB/s, writer(8 KiB writes) {:.0} MiB/s, reader(8 KiB reads) {:.0} MiB/s",
        mib / t_enc,
        mib / t_dec,
        mib / t_w,
        mib / t_r
    );
    Ok(())
}
