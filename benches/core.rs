//! Core costs, each beside its baseline in the same run:
//! - CreateKey in durable and relaxed mode, beside a raw `fdatasync` of a
//!   small file (target: durable CreateKey <= 2x the raw fdatasync);
//! - `Kms::open` and ListKeys page 1 at 1k and 100k keys (targets: 100k is
//!   at most 3x 1k for both: open scans no keys, paging reads one page).

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use localkms::{CreateKeyRequest, Durability, Kms, Paging};

const ROOT: [u8; 32] = [5; 32];

fn open(dir: &Path, durability: Durability) -> Kms {
    Kms::builder()
        .sled(dir)
        .root_key_bytes(&ROOT)
        .durability(durability)
        .build()
        .expect("open")
}

fn create_key(c: &mut Criterion) {
    let mut g = c.benchmark_group("create_key");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut file = std::fs::File::create(dir.path().join("raw")).expect("file");
    g.bench_function("raw_fdatasync_64B", |b| {
        b.iter(|| {
            file.write_all(&[7u8; 64]).expect("write");
            file.sync_data().expect("fdatasync");
        })
    });
    for (name, mode) in [
        ("durable", Durability::Durable),
        ("relaxed", Durability::Relaxed),
    ] {
        let d = tempfile::tempdir().expect("tempdir");
        let kms = open(d.path(), mode);
        let req = CreateKeyRequest::default();
        g.bench_function(name, |b| b.iter(|| kms.create_key(&req).expect("create")));
    }
    g.finish();
}

/// Stores with 1k and 100k keys, built once for both open benches.
fn populated(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let kms = open(dir.path(), Durability::Relaxed);
    let req = CreateKeyRequest::default();
    for _ in 0..n {
        kms.create_key(&req).expect("create");
    }
    kms.flush().expect("flush");
    dir
}

/// sled releases its file lock from a background thread after a handle
/// drops: wait for that outside the timed region.
fn wait_for_unlock(dir: &Path) {
    let file = std::fs::File::open(dir.join("db").join("db")).expect("sled file");
    while file.try_lock().is_err() {
        std::thread::yield_now();
    }
    file.unlock().expect("unlock");
}

fn open_and_list(c: &mut Criterion) {
    let sizes = [1_000usize, 100_000];
    let stores: Vec<_> = sizes.iter().map(|&n| (n, populated(n))).collect();
    let mut g = c.benchmark_group("open");
    g.sample_size(20);
    for (n, dir) in &stores {
        g.bench_with_input(BenchmarkId::from_parameter(n), dir, |b, dir| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    wait_for_unlock(dir.path());
                    let start = Instant::now();
                    let kms = open(dir.path(), Durability::Durable);
                    total += start.elapsed();
                    drop(kms);
                }
                total
            })
        });
    }
    // The backend alone, to attribute open time: localkms reads three
    // records at open; sled 0.34 recovers its page table, O(pages).
    for (n, dir) in &stores {
        g.bench_with_input(BenchmarkId::new("raw_sled", n), dir, |b, dir| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    wait_for_unlock(dir.path());
                    let start = Instant::now();
                    let store =
                        localkms::store::SledKeystore::open(dir.path().join("db")).expect("open");
                    total += start.elapsed();
                    drop(store);
                }
                total
            })
        });
    }
    g.finish();
    let mut g = c.benchmark_group("list_keys_page1");
    for (n, dir) in &stores {
        let kms = open(dir.path(), Durability::Durable);
        assert_eq!(kms.key_count().expect("count"), *n as u64);
        g.bench_with_input(BenchmarkId::from_parameter(n), &kms, |b, kms| {
            b.iter(|| kms.list_keys(Paging::default()).expect("list"))
        });
    }
    g.finish();
}

criterion_group!(benches, create_key, open_and_list);
criterion_main!(benches);
