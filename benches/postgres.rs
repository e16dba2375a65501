//! A durable single-record `PostgresKeystore::apply` beside a raw single-row
//! `INSERT` commit through the `postgres` crate, on the same throwaway server
//! (see `tests/support/pg.rs`), and their ratio. Both commits wait for the
//! server's WAL flush (`synchronous_commit = on`), which dominates; the
//! store adds its serializable transaction (three round trips, not one).
//!
//!   cargo bench --features postgres --bench postgres

#[path = "../tests/support/pg.rs"]
mod pg;

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use localkms::store::{Batch, Keystore, PostgresKeystore};

struct Setup {
    _server: pg::PgServer,
    store: PostgresKeystore,
    raw: postgres::Client,
}

fn setup() -> Option<Setup> {
    let server = pg::PgServer::start()?;
    let store = PostgresKeystore::connect(&server.url(), "bench").expect("connect");
    let mut raw = server.admin();
    raw.batch_execute("CREATE TABLE raw (id BYTEA PRIMARY KEY, v BYTEA NOT NULL)")
        .expect("raw table");
    Some(Setup {
        _server: server,
        store,
        raw,
    })
}

fn apply_one(store: &PostgresKeystore, n: u64) {
    let mut b = Batch::new();
    b.put("bench", n.to_be_bytes().to_vec(), vec![7u8; 64]);
    store.apply(b).expect("apply");
}

fn insert_one(raw: &mut postgres::Client, stmt: &postgres::Statement, n: u64) {
    raw.execute(stmt, &[&n.to_be_bytes().as_slice(), &vec![7u8; 64]])
        .expect("insert");
}

fn bench(c: &mut Criterion) {
    let Some(mut s) = setup() else { return };
    let stmt = s
        .raw
        .prepare("INSERT INTO raw (id, v) VALUES ($1, $2)")
        .expect("prepare");
    let mut n = 0u64;
    let mut g = c.benchmark_group("postgres_commit");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    g.bench_function("keystore_apply_1_record", |b| {
        b.iter(|| {
            n += 1;
            apply_one(&s.store, n);
        })
    });
    g.bench_function("raw_insert_commit", |b| {
        b.iter(|| {
            n += 1;
            insert_one(&mut s.raw, &stmt, n);
        })
    });
    g.finish();

    // The ratio, interleaved so both see the same disk.
    let rounds = 300;
    let (mut store_t, mut raw_t) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        n += 1;
        let t = Instant::now();
        apply_one(&s.store, n);
        store_t += t.elapsed();
        n += 1;
        let t = Instant::now();
        insert_one(&mut s.raw, &stmt, n);
        raw_t += t.elapsed();
    }
    println!(
        "durable apply of 1 record: {:?}/commit; raw INSERT commit: {:?}/commit; ratio {:.2}x (target <= 2x)",
        store_t / rounds,
        raw_t / rounds,
        store_t.as_secs_f64() / raw_t.as_secs_f64()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
