//! The cost of the store's integrity, each beside its baseline in one run:
//! durable CreateKey with the witness (the default for sled) and without it,
//! beside a raw `fdatasync` of a small file (goal: with the witness <= 3x the
//! raw fdatasync). Also Encrypt with a hot cache (it never reads the store)
//! and `Kms::verify` of a 1k-key store.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use localkms::{CreateKeyRequest, Durability, EncryptionContext, Kms};

const ROOT: [u8; 32] = [5; 32];

fn open(dir: &Path, witness: bool) -> Kms {
    let b = Kms::builder()
        .sled(dir)
        .root_key_bytes(&ROOT)
        .durability(Durability::Durable);
    let b = if witness { b } else { b.without_witness() };
    b.build().expect("open")
}

fn durable_create_key(c: &mut Criterion) {
    let mut g = c.benchmark_group("durable_create_key");
    g.measurement_time(Duration::from_secs(8));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut file = std::fs::File::create(dir.path().join("raw")).expect("file");
    g.bench_function("raw_fdatasync_64B", |b| {
        b.iter(|| {
            file.write_all(&[7u8; 64]).expect("write");
            file.sync_data().expect("fdatasync");
        })
    });
    for (name, witness) in [("witness_on", true), ("witness_off", false)] {
        let d = tempfile::tempdir().expect("tempdir");
        let kms = open(d.path(), witness);
        let req = CreateKeyRequest::default();
        g.bench_function(name, |b| b.iter(|| kms.create_key(&req).expect("create")));
    }
    g.finish();
}

fn verify_and_encrypt(c: &mut Criterion) {
    let mut g = c.benchmark_group("store_read");
    let d = tempfile::tempdir().expect("tempdir");
    let kms = Kms::builder()
        .sled(d.path())
        .root_key_bytes(&ROOT)
        .durability(Durability::Relaxed)
        .build()
        .expect("open");
    let mut last = String::new();
    for _ in 0..1000 {
        last = kms
            .create_key(&CreateKeyRequest::default())
            .expect("create")
            .key_id;
    }
    let ctx = EncryptionContext::empty();
    g.bench_function("encrypt_hot", |b| {
        b.iter(|| {
            kms.encrypt(&last, b"sixteen byte msg", &ctx)
                .expect("encrypt")
        })
    });
    g.sample_size(10);
    g.bench_function("verify_1k_keys", |b| {
        b.iter(|| assert!(kms.verify().expect("verify").is_ok()))
    });
    g.finish();
}

criterion_group!(benches, durable_create_key, verify_and_encrypt);
criterion_main!(benches);
