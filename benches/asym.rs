//! Raw RustCrypto primitives for the asymmetric and MAC operations, named
//! `raw/...`, so the KMS operations (`AsymmetricSign`, `GenerateMac`) can be
//! measured against them in the same run (issue 15: ECDSA P-256 sign within
//! 1.3x, RSA-2048 sign within 1.1x, HMAC-SHA256 of 1 KiB within 2x).
//! `asym/...` measures this crate's primitives layer over the same inputs.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use getrandom::SysRng;
use hmac::{Hmac, KeyInit, Mac};
use localkms::asym::{Algorithm, KeySpec, PrivateKey, mac, sha256};
use sha2::Sha256;
use signature::hazmat::RandomizedPrehashSigner;

fn raw(c: &mut Criterion) {
    let digest = sha256(b"bench message");

    let p256_key = p256::ecdsa::SigningKey::from_slice(&[0x42; 32]).unwrap();
    c.bench_function("raw/p256_sign", |b| {
        b.iter(|| {
            let sig: p256::ecdsa::Signature = p256_key
                .sign_prehash_with_rng(&mut SysRng, black_box(&digest))
                .unwrap();
            black_box(sig.normalize_s().to_der())
        })
    });

    let rsa_key = rsa::PrivateKey::new(&mut SysRng, 2048).unwrap();
    c.bench_function("raw/rsa2048_sign_pkcs1", |b| {
        b.iter(|| {
            rsa_key
                .sign_with_rng(
                    &mut SysRng,
                    rsa::Pkcs1v15Sign::new::<Sha256>(),
                    black_box(&digest),
                )
                .unwrap()
        })
    });

    let key = [0x0bu8; 32];
    let msg = vec![0x5au8; 1024];
    let mut g = c.benchmark_group("raw");
    g.throughput(Throughput::Bytes(msg.len() as u64));
    g.bench_function("hmac_sha256_1KiB", |b| {
        b.iter(|| {
            let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).unwrap();
            m.update(black_box(&msg));
            black_box(m.finalize().into_bytes())
        })
    });
    g.finish();
}

fn layer(c: &mut Criterion) {
    let digest = sha256(b"bench message");
    let p256 = PrivateKey::generate(KeySpec::EcP256, &mut SysRng).unwrap();
    c.bench_function("asym/p256_sign", |b| {
        b.iter(|| {
            p256.sign_digest(Algorithm::EcdsaSha256, black_box(&digest), &mut SysRng)
                .unwrap()
        })
    });
    let rsa = PrivateKey::generate(KeySpec::Rsa2048, &mut SysRng).unwrap();
    c.bench_function("asym/rsa2048_sign_pkcs1", |b| {
        b.iter(|| {
            rsa.sign_digest(Algorithm::RsaPkcs1Sha256, black_box(&digest), &mut SysRng)
                .unwrap()
        })
    });
    let key = [0x0bu8; 32];
    let msg = vec![0x5au8; 1024];
    let mut g = c.benchmark_group("asym");
    g.throughput(Throughput::Bytes(msg.len() as u64));
    g.bench_function("hmac_sha256_1KiB", |b| {
        b.iter(|| mac(KeySpec::HmacSha256, &key, black_box(&msg)).unwrap())
    });
    g.finish();
}

/// The KMS operations over the same inputs (`kms/...`): compare with
/// `raw/...` of the same run. Plus CreateKey of RSA_3072, which is slow and
/// kept off every other path.
fn service(c: &mut Criterion) {
    use localkms::{CreateKeyRequest, Kms};
    let kms = Kms::in_memory().unwrap();
    let create = |spec| {
        let m = kms
            .create_key(&CreateKeyRequest {
                key_spec: spec,
                ..Default::default()
            })
            .unwrap();
        (m.key_id, m.primary_key_version)
    };
    let digest = sha256(b"bench message");
    let (p256, p256_v) = create(localkms::KeySpec::EcP256);
    c.bench_function("kms/p256_sign", |b| {
        b.iter(|| {
            kms.asymmetric_sign(&p256, &p256_v, Algorithm::EcdsaSha256, black_box(&digest))
                .unwrap()
        })
    });
    let (rsa, rsa_v) = create(localkms::KeySpec::Rsa2048);
    c.bench_function("kms/rsa2048_sign_pkcs1", |b| {
        b.iter(|| {
            kms.asymmetric_sign(&rsa, &rsa_v, Algorithm::RsaPkcs1Sha256, black_box(&digest))
                .unwrap()
        })
    });
    let (hmac, _) = create(localkms::KeySpec::HmacSha256);
    let msg = vec![0x5au8; 1024];
    let mut g = c.benchmark_group("kms");
    g.throughput(Throughput::Bytes(msg.len() as u64));
    g.bench_function("hmac_sha256_1KiB", |b| {
        b.iter(|| {
            kms.generate_mac(&hmac, Algorithm::HmacSha256, black_box(&msg))
                .unwrap()
        })
    });
    g.finish();
    let mut g = c.benchmark_group("kms_keygen");
    g.sample_size(10);
    g.bench_function("create_key_rsa3072", |b| {
        b.iter(|| create(localkms::KeySpec::Rsa3072))
    });
    g.bench_function("create_key_ec_p256", |b| {
        b.iter(|| create(localkms::KeySpec::EcP256))
    });
    g.finish();
}

criterion_group!(benches, raw, layer, service);
criterion_main!(benches);
