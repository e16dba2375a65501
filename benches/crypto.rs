//! Encrypt, Decrypt and GenerateDataKey on the memory and sled stores, and
//! envelope streaming, each beside raw AES-256-GCM (`aes-gcm`) in the same
//! run: the baseline for the small operations is one seal of the same size
//! plus one `getrandom` call.

use std::hint::black_box;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use localkms::{EncryptionContext, GenerateDataKeyRequest, Kms};

const SIZES: [usize; 3] = [32, 1024, 6144];

fn stores() -> Vec<(&'static str, Kms, String, Option<tempfile::TempDir>)> {
    let mem = Kms::in_memory().expect("kms");
    let mem_key = mem.create_key(&Default::default()).expect("key").key_id;
    let dir = tempfile::tempdir().expect("tempdir");
    let sled = Kms::builder()
        .sled(dir.path())
        .root_key_bytes(&[3; 32])
        .build()
        .expect("sled kms");
    let sled_key = sled.create_key(&Default::default()).expect("key").key_id;
    vec![
        ("memory", mem, mem_key, None),
        ("sled", sled, sled_key, Some(dir)),
    ]
}

/// Raw AES-256-GCM seal of `buf` plus one getrandom call for its nonce.
fn raw_seal(cipher: &Aes256Gcm, buf: &mut [u8]) {
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce).expect("getrandom");
    let tag = cipher
        .encrypt_inout_detached(&Nonce::from(nonce), b"", buf.into())
        .expect("seal");
    black_box(tag);
}

/// Raw XAES-256-GCM seal of `buf` plus one getrandom call for its 24-byte
/// nonce: the construction Encrypt uses (SPEC section 5), without the
/// service around it.
fn raw_xaes_seal(cipher: &xaes_256_gcm::Xaes256Gcm, buf: &mut [u8]) {
    let mut nonce = [0u8; 24];
    getrandom::fill(&mut nonce).expect("getrandom");
    let tag = cipher
        .encrypt_inout_detached(&nonce.into(), b"", buf.into())
        .expect("seal");
    black_box(tag);
}

fn small_operations(c: &mut Criterion) {
    let stores = stores();
    let raw = Aes256Gcm::new(&[9u8; 32].into());
    let xaes = xaes_256_gcm::Xaes256Gcm::new(&[9u8; 32].into());
    let ctx = EncryptionContext::empty();
    for op in ["encrypt", "decrypt"] {
        let mut g = c.benchmark_group(op);
        for size in SIZES {
            g.throughput(Throughput::Bytes(size as u64));
            let pt = vec![0x5a; size];
            g.bench_with_input(
                BenchmarkId::new("raw-aes-gcm+getrandom", size),
                &size,
                |b, _| {
                    let mut buf = pt.clone();
                    b.iter(|| raw_seal(&raw, &mut buf));
                },
            );
            g.bench_with_input(
                BenchmarkId::new("raw-xaes-256-gcm+getrandom", size),
                &size,
                |b, _| {
                    let mut buf = pt.clone();
                    b.iter(|| raw_xaes_seal(&xaes, &mut buf));
                },
            );
            for (name, kms, key, _) in &stores {
                let blob = kms
                    .encrypt(key, &pt, &ctx)
                    .expect("encrypt")
                    .ciphertext_blob;
                g.bench_with_input(BenchmarkId::new(*name, size), &size, |b, _| match op {
                    "encrypt" => {
                        b.iter(|| black_box(kms.encrypt(key, &pt, &ctx).expect("encrypt")))
                    }
                    _ => b.iter(|| black_box(kms.decrypt(&blob, &ctx).expect("decrypt"))),
                });
            }
        }
        g.finish();
    }
    let mut g = c.benchmark_group("generate_data_key");
    g.bench_function("raw-aes-gcm+getrandom/32", |b| {
        let mut buf = [0x5a; 32];
        b.iter(|| raw_seal(&raw, &mut buf));
    });
    let req = GenerateDataKeyRequest::default();
    for (name, kms, key, _) in &stores {
        g.bench_function(format!("{name}/32"), |b| {
            b.iter(|| black_box(kms.generate_data_key(key, &req).expect("gdk")));
        });
    }
    g.finish();
}

/// Raw AES-256-GCM of `buf` in place, in 64 KiB chunks (a counter nonce and
/// a detached tag per chunk): the baseline for envelope streaming.
fn raw_seal_chunks(cipher: &Aes256Gcm, buf: &mut [u8]) {
    for (i, chunk) in buf.chunks_mut(64 * 1024).enumerate() {
        let mut nonce = [0u8; 12];
        nonce[7..11].copy_from_slice(&(i as u32).to_be_bytes());
        let tag = cipher
            .encrypt_inout_detached(&Nonce::from(nonce), b"", chunk.into())
            .expect("seal");
        black_box(tag);
    }
}

fn envelope_streaming(c: &mut Criterion) {
    let kms = Kms::in_memory().expect("kms");
    let key = kms.create_key(&Default::default()).expect("key").key_id;
    let ctx = EncryptionContext::empty();
    let raw = Aes256Gcm::new(&[9u8; 32].into());
    let mut g = c.benchmark_group("envelope");
    g.sample_size(10);
    for size in [1usize << 20, 64 << 20] {
        let label = format!("{}MiB", size >> 20);
        g.throughput(Throughput::Bytes(size as u64));
        let pt = vec![0x5a; size];
        let mut out = Vec::with_capacity(size + size / 1000 + 4096);
        g.bench_function(BenchmarkId::new("raw-aes-gcm", &label), |b| {
            let mut buf = pt.clone();
            b.iter(|| raw_seal(&raw, &mut buf));
        });
        g.bench_function(BenchmarkId::new("raw-aes-gcm-64k-chunks", &label), |b| {
            let mut buf = pt.clone();
            b.iter(|| raw_seal_chunks(&raw, &mut buf));
        });
        g.bench_function(BenchmarkId::new("writer-adapter", &label), |b| {
            b.iter(|| {
                out.clear();
                let mut w = kms.envelope_writer(&key, &ctx, &mut out).expect("writer");
                std::io::Write::write_all(&mut w, &pt).expect("write");
                w.finish().expect("finish");
            });
        });
        g.bench_function(BenchmarkId::new("encrypt-stream", &label), |b| {
            b.iter(|| {
                out.clear();
                kms.envelope_encrypt_stream(&key, &ctx, &pt[..], &mut out)
                    .expect("encrypt");
            });
        });
        let env = kms.envelope_encrypt(&key, &pt, &ctx).expect("encrypt");
        g.bench_function(BenchmarkId::new("decrypt-stream", &label), |b| {
            b.iter(|| {
                out.clear();
                kms.envelope_decrypt_stream(&ctx, &env[..], &mut out)
                    .expect("decrypt");
            });
        });
        g.bench_function(BenchmarkId::new("reader-adapter", &label), |b| {
            b.iter(|| {
                out.clear();
                let mut r = kms.envelope_reader(&ctx, &env[..]).expect("reader");
                std::io::Read::read_to_end(&mut r, &mut out).expect("read");
            });
        });
    }
    g.finish();
}

/// The pieces of a small operation, to explain its cost: base64 of a 1 KiB
/// blob, AES-256-GCM vs XAES-256-GCM of 1 KiB, one getrandom call, and
/// zeroizing a 1 KiB buffer.
fn parts(c: &mut Criterion) {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let raw = Aes256Gcm::new(&[9u8; 32].into());
    let x = xaes_256_gcm::Xaes256Gcm::new(&[9u8; 32].into());
    let mut buf = vec![0u8; 1024];
    let blob = vec![7u8; 1138];
    let text = b64.encode(&blob);
    c.bench_function("parts/b64enc", |b| b.iter(|| black_box(b64.encode(&blob))));
    c.bench_function("parts/b64dec", |b| {
        b.iter(|| black_box(b64.decode(&text).expect("ok")))
    });
    c.bench_function("parts/aesgcm", |b| {
        b.iter(|| {
            black_box(
                raw.encrypt_inout_detached(&[0u8; 12].into(), b"", buf.as_mut_slice().into())
                    .expect("ok"),
            )
        })
    });
    c.bench_function("parts/xaes", |b| {
        b.iter(|| {
            black_box(
                x.encrypt_inout_detached(&[0u8; 24].into(), b"", buf.as_mut_slice().into())
                    .expect("ok"),
            )
        })
    });
    c.bench_function("parts/getrandom", |b| {
        b.iter(|| {
            let mut n = [0u8; 24];
            getrandom::fill(&mut n).expect("ok");
            black_box(n)
        })
    });
    c.bench_function("parts/zeroize", |b| {
        b.iter(|| {
            let v = zeroize::Zeroizing::new(vec![1u8; 1138]);
            black_box(&v);
        })
    });
}

criterion_group!(benches, parts, small_operations, envelope_streaming);
criterion_main!(benches);
