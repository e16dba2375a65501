//! The wire layer's cost, each beside the Rust API call it wraps, in the same
//! run (target: `wire::dispatch` at most 2x the API call):
//! - Encrypt and Decrypt of 1 KiB of text, with an EncryptionContext;
//! - DescribeKey.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use localkms::{EncryptionContext, Kms, wire};

const CONTEXT: &str = r#"{"tenant":"t1","purpose":"bench"}"#;

fn params(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn setup() -> (Kms, String) {
    let kms = Kms::in_memory().expect("kms");
    let id = kms.create_key(&Default::default()).expect("key").key_id;
    (kms, id)
}

fn encrypt_decrypt(c: &mut Criterion) {
    let (kms, id) = setup();
    let text = "x".repeat(1024);
    let mut g = c.benchmark_group("encrypt_1KiB");
    g.throughput(Throughput::Bytes(1024));
    g.bench_function("rust_api", |b| {
        b.iter(|| {
            // The API call with the same parsing the wire needs.
            let ctx = EncryptionContext::from_json(CONTEXT).expect("context");
            kms.encrypt(&id, text.as_bytes(), &ctx).expect("encrypt")
        })
    });
    let p = params(&[
        ("Action", "Encrypt"),
        ("KeyId", &id),
        ("Plaintext", &text),
        ("EncryptionContext", CONTEXT),
    ]);
    g.bench_function("dispatch", |b| {
        b.iter(|| {
            let r = wire::dispatch(&kms, &p);
            assert_eq!(r.status, 200);
            r
        })
    });
    g.finish();

    let ctx = EncryptionContext::from_json(CONTEXT).expect("context");
    let blob = kms
        .encrypt(&id, text.as_bytes(), &ctx)
        .expect("encrypt")
        .ciphertext_blob;
    let mut g = c.benchmark_group("decrypt_1KiB");
    g.throughput(Throughput::Bytes(1024));
    g.bench_function("rust_api", |b| {
        b.iter(|| {
            let ctx = EncryptionContext::from_json(CONTEXT).expect("context");
            kms.decrypt(&blob, &ctx).expect("decrypt")
        })
    });
    let p = params(&[
        ("Action", "Decrypt"),
        ("CiphertextBlob", &blob.to_base64()),
        ("EncryptionContext", CONTEXT),
    ]);
    g.bench_function("dispatch", |b| {
        b.iter(|| {
            let r = wire::dispatch(&kms, &p);
            assert_eq!(r.status, 200);
            r
        })
    });
    g.finish();
}

fn describe_key(c: &mut Criterion) {
    let (kms, id) = setup();
    let mut g = c.benchmark_group("describe_key");
    g.bench_function("rust_api", |b| {
        b.iter(|| kms.describe_key(&id).expect("describe"))
    });
    let p = params(&[("Action", "DescribeKey"), ("KeyId", &id)]);
    g.bench_function("dispatch", |b| {
        b.iter(|| {
            let r = wire::dispatch(&kms, &p);
            assert_eq!(r.status, 200);
            r
        })
    });
    g.finish();
}

criterion_group!(benches, encrypt_decrypt, describe_key);
criterion_main!(benches);
