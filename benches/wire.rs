//! The wire layer's cost, each beside the Rust API call it wraps, in the same
//! run (target: dispatch at most 2x the API call):
//! - DescribeKey: `wire::dispatch` vs `Kms::describe_key`.

use criterion::{Criterion, criterion_group, criterion_main};
use localkms::{Kms, wire};

fn params(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn describe_key(c: &mut Criterion) {
    let kms = Kms::in_memory().expect("kms");
    let id = kms.create_key(&Default::default()).expect("key").key_id;
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

criterion_group!(benches, describe_key);
criterion_main!(benches);
