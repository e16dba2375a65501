//! The secrets manager: GetSecretValue of a 30 KiB value beside an envelope
//! decrypt of 30 KiB in the same run (goal: at most 2x), and
//! BatchGetSecretValue of 20 secrets beside 20 GetSecretValue calls. Both
//! on a sled store (the default), relaxed durability (reads do not flush).

use criterion::{Criterion, criterion_group, criterion_main};
use localkms::{
    CreateSecretRequest, Durability, EncryptionContext, GetSecretValueRequest, Kms, SecretQuery,
};

const VALUE_BYTES: usize = 30 * 1024;

fn store() -> (Kms, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let kms = Kms::builder()
        .sled(dir.path())
        .root_key_bytes(&[5u8; 32])
        .durability(Durability::Relaxed)
        .build()
        .expect("kms");
    (kms, dir)
}

fn get_vs_envelope(c: &mut Criterion) {
    let (kms, _dir) = store();
    let value: Vec<u8> = (0..VALUE_BYTES).map(|i| (i % 251) as u8).collect();
    kms.create_secret(&CreateSecretRequest::new("big"), &value)
        .expect("create");
    let key = kms
        .describe_secret("big", false)
        .expect("describe")
        .encryption_key_id;
    let ctx = EncryptionContext::empty();
    let envelope = kms.envelope_encrypt(&key, &value, &ctx).expect("envelope");
    let req = GetSecretValueRequest::default();
    let mut g = c.benchmark_group("secrets_30KiB");
    g.bench_function("GetSecretValue", |b| {
        b.iter(|| kms.get_secret_value("big", &req).expect("get"))
    });
    g.bench_function("envelope_decrypt", |b| {
        b.iter(|| kms.envelope_decrypt(&envelope, &ctx).expect("decrypt"))
    });
    g.finish();
}

fn batch(c: &mut Criterion) {
    let (kms, _dir) = store();
    let names: Vec<String> = (0..20).map(|i| format!("app/secret-{i}")).collect();
    for n in &names {
        kms.create_secret(
            &CreateSecretRequest::new(n.clone()),
            b"a 32-byte database password....",
        )
        .expect("create");
    }
    let queries: Vec<SecretQuery> = names.iter().map(SecretQuery::current).collect();
    let req = GetSecretValueRequest::default();
    let mut g = c.benchmark_group("secrets_batch_20");
    g.bench_function("BatchGetSecretValue", |b| {
        b.iter(|| kms.batch_get_secret_value(&queries).expect("batch"))
    });
    g.bench_function("20x_GetSecretValue", |b| {
        b.iter(|| {
            for n in &names {
                kms.get_secret_value(n, &req).expect("get");
            }
        })
    });
    g.finish();
}

criterion_group!(benches, get_vs_envelope, batch);
criterion_main!(benches);
