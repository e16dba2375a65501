//! PostgreSQL figures, as ratios measured in one run on one throwaway server
//! (see `tests/support/pg.rs`):
//!
//! 1. a durable single-record `PostgresKeystore::apply`, and a durable
//!    `CreateKey` through `Kms`, each beside a raw single-row `INSERT` commit
//!    through the `postgres` crate, interleaved so all see the same disk
//!    (target for CreateKey: at most 2x); plus the SQL statements (round
//!    trips) one CreateKey sends, counted in the server's statement log;
//! 2. Encrypt of 1 KiB on one shared store: two OS processes against one
//!    (target: at least 1.8x the aggregate throughput; the crypto is local,
//!    so this needs two idle cores). The bench runs itself again as the
//!    worker processes (`LOCALKMS_PG_BENCH_WORKER`). Calls per second of
//!    each worker's own CPU time are printed too: on a busy machine they
//!    show whether anything shared slows two processes down;
//! 3. opening a `Kms` over an existing store (connect + build) and ListKeys
//!    page 1, at 1k against 100k keys (target: at most 1.5x). The stores are
//!    filled by restoring a backup of an in-memory `Kms`; the time that takes
//!    is printed.
//!
//!   cargo bench --features postgres --bench postgres
//!
//! `LOCALKMS_PG_BENCH_KEYS` sets the larger key count (default 100000),
//! `LOCALKMS_PG_BENCH_SECS` the seconds of each Encrypt run (default 3).

#[path = "../tests/support/pg.rs"]
mod pg;

use std::hint::black_box;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use localkms::store::{Batch, Keystore, PostgresKeystore};
use localkms::{CreateKeyRequest, EncryptionContext, Kms, Paging};

const ROOT: [u8; 32] = [0x42; 32];
const WORKER_ENV: &str = "LOCALKMS_PG_BENCH_WORKER";

struct Setup {
    server: pg::PgServer,
    store: PostgresKeystore,
    raw: postgres::Client,
}

fn setup() -> Option<Setup> {
    let server = pg::PgServer::start()?;
    let store = PostgresKeystore::connect(&server.url(), "bench").expect("connect");
    let mut raw = server.admin();
    raw.batch_execute("CREATE TABLE raw (id BYTEA PRIMARY KEY, v BYTEA NOT NULL)")
        .expect("raw table");
    Some(Setup { server, store, raw })
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

fn kms_on(url: &str, schema: &str) -> Kms {
    Kms::builder()
        .keystore(PostgresKeystore::connect(url, schema).expect("connect"))
        .root_key_bytes(&ROOT)
        .build()
        .expect("build")
}

fn bench(c: &mut Criterion) {
    let Some(mut s) = setup() else { return };
    let stmt = s
        .raw
        .prepare("INSERT INTO raw (id, v) VALUES ($1, $2)")
        .expect("prepare");
    let mut n = 0u64;
    let mut g = c.benchmark_group("postgres_commit");
    g.sample_size(10).measurement_time(Duration::from_secs(2));
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

    // The ratios, interleaved so every measurement sees the same disk.
    let kms = kms_on(&s.server.url(), "createkey");
    let req = CreateKeyRequest::default();
    kms.create_key(&req).expect("warm up");
    let rounds = 300u32;
    let (mut store_t, mut kms_t, mut raw_t) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        n += 1;
        let t = Instant::now();
        apply_one(&s.store, n);
        store_t += t.elapsed();
        let t = Instant::now();
        black_box(kms.create_key(&req).expect("create"));
        kms_t += t.elapsed();
        n += 1;
        let t = Instant::now();
        insert_one(&mut s.raw, &stmt, n);
        raw_t += t.elapsed();
    }
    println!(
        "raw INSERT commit: {:?}/commit\n\
         durable keystore apply of 1 record: {:?}/commit; ratio {:.2}x\n\
         durable CreateKey through Kms: {:?}/key; ratio {:.2}x (target <= 2x)",
        raw_t / rounds,
        store_t / rounds,
        store_t.as_secs_f64() / raw_t.as_secs_f64(),
        kms_t / rounds,
        kms_t.as_secs_f64() / raw_t.as_secs_f64(),
    );
    count_statements(&s.server, &mut s.raw, &kms);

    encrypt_processes(&s.server.url());
    open_and_list(&s.server.url());
}

/// Counts the statements one CreateKey sends, in the server's log with
/// `log_statement = 'all'`: each is one round trip (statements are prepared
/// once per pooled connection, and the warm-up prepared them).
fn count_statements(server: &pg::PgServer, raw: &mut postgres::Client, kms: &Kms) {
    let set = |raw: &mut postgres::Client, value: &str| {
        // ALTER SYSTEM refuses a multi-statement string (a transaction).
        raw.batch_execute(&format!("ALTER SYSTEM SET log_statement = '{value}'"))
            .expect("set log_statement");
        raw.batch_execute("SELECT pg_reload_conf()")
            .expect("reload");
        // Backends read the new setting before their next statement; give
        // the signal a moment.
        std::thread::sleep(Duration::from_millis(300));
    };
    let req = CreateKeyRequest::default();
    kms.create_key(&req).expect("warm up");
    set(raw, "all");
    let before = server.log().len();
    let key = kms.create_key(&req).expect("create");
    std::thread::sleep(Duration::from_millis(100));
    let log = server.log();
    set(raw, "none");
    let lines: Vec<&str> = log
        .get(before..)
        .unwrap_or("")
        .lines()
        .filter(|l| l.contains("LOG:  statement: ") || l.contains("LOG:  execute "))
        .filter(|l| !l.contains("log_statement"))
        .collect();
    println!(
        "SQL statements (round trips) for one CreateKey ({}): {}",
        key.key_id,
        lines.len()
    );
    for l in &lines {
        let l = l.split_once("LOG:  ").map_or(*l, |(_, rest)| rest);
        println!("    {}", l.chars().take(150).collect::<String>());
    }
}

/// Encrypt throughput of one worker process, then of two at once, on one
/// shared store and key, best of three alternating rounds each.
fn encrypt_processes(url: &str) {
    let kms = kms_on(url, "encrypt");
    let key = kms.create_key(&CreateKeyRequest::default()).expect("key");
    drop(kms);
    let secs: u64 = std::env::var("LOCALKMS_PG_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let exe = std::env::current_exe().expect("current exe");
    let spawn = || {
        Command::new(&exe)
            .env(WORKER_ENV, format!("{url} encrypt {} {secs}", key.key_id))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn worker")
    };
    // A worker prints calls per second of wall time and per second of its
    // own CPU time.
    let rate = |child: std::process::Child| -> (f64, f64) {
        let out = child.wait_with_output().expect("worker");
        assert!(out.status.success(), "worker failed");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut it = text.split_whitespace().map(|w| w.parse().expect("a rate"));
        (it.next().expect("wall rate"), it.next().expect("cpu rate"))
    };
    let (mut one, mut two, mut cpu_one, mut cpu_two) = (0f64, 0f64, 0f64, 0f64);
    for _ in 0..3 {
        let (wall, cpu) = rate(spawn());
        one = one.max(wall);
        cpu_one = cpu_one.max(cpu);
        let (a, b) = (spawn(), spawn());
        let ((wa, ca), (wb, cb)) = (rate(a), rate(b));
        two = two.max(wa + wb);
        cpu_two = cpu_two.max((ca + cb) / 2.0);
    }
    println!(
        "Encrypt 1 KiB on one PostgreSQL store: 1 process {one:.0}/s, 2 processes {two:.0}/s together; ratio {:.2}x (target >= 1.8x; {} CPUs, load average {})\n\
         per CPU-second of each process: 1 process {cpu_one:.0}/s, 2 processes {cpu_two:.0}/s each ({:.2}x: 1.00 = nothing shared slows them)",
        two / one,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        cpu_two / cpu_one,
    );
}

/// This process's CPU time (user + system), from /proc.
fn cpu_time() -> Duration {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let rest = stat.rsplit_once(')')?.1.to_owned();
            let f: Vec<u64> = rest
                .split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|w| w.parse().ok())
                .collect();
            Some(f.iter().sum::<u64>())
        })
        .unwrap_or(0);
    // Linux reports clock ticks of 1/100 s.
    Duration::from_millis(ticks * 10)
}

/// The worker: Encrypt in a loop for the given seconds (after opening),
/// then print calls per second.
fn worker(spec: &str) {
    let parts: Vec<&str> = spec.split(' ').collect();
    let [url, schema, key, secs] = parts.as_slice() else {
        panic!("bad worker spec")
    };
    let kms = kms_on(url, schema);
    let ctx = EncryptionContext::empty();
    let pt = [0x5au8; 1024];
    kms.encrypt(key, &pt, &ctx).expect("warm up");
    let run = Duration::from_secs(secs.parse().expect("seconds"));
    let start = Instant::now();
    let cpu = cpu_time();
    let mut count = 0u64;
    while start.elapsed() < run {
        for _ in 0..64 {
            black_box(kms.encrypt(key, &pt, &ctx).expect("encrypt"));
        }
        count += 64;
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = (cpu_time() - cpu).as_secs_f64().max(0.01);
    println!("{} {}", count as f64 / wall, count as f64 / cpu);
}

/// Fills `schema` with `keys` keys by restoring a backup of an in-memory
/// `Kms`; returns how long the restore took.
fn populate(url: &str, schema: &str, keys: usize) -> (Duration, Duration) {
    let t = Instant::now();
    let mem = Kms::builder()
        .in_memory()
        .root_key_bytes(&ROOT)
        .build()
        .expect("memory");
    let req = CreateKeyRequest::default();
    for _ in 0..keys {
        mem.create_key(&req).expect("create");
    }
    let mut backup = Vec::new();
    mem.backup(&mut backup).expect("backup");
    let made = t.elapsed();
    let t = Instant::now();
    Kms::builder()
        .keystore(PostgresKeystore::connect(url, schema).expect("connect"))
        .root_key_bytes(&ROOT)
        .restore(backup.as_slice())
        .build()
        .expect("restore");
    (made, t.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Open (connect + build over an existing store) and ListKeys page 1 at a
/// small and a large key count, interleaved.
fn open_and_list(url: &str) {
    let big: usize = std::env::var("LOCALKMS_PG_BENCH_KEYS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let small = 1000;
    for (schema, keys) in [("keys_small", small), ("keys_big", big)] {
        let (made, restored) = populate(url, schema, keys);
        println!(
            "populated {keys} keys: {made:?} in memory (CreateKey + backup), {restored:?} to restore into PostgreSQL"
        );
    }
    let (mut open_s, mut open_b) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        for (schema, out) in [("keys_small", &mut open_s), ("keys_big", &mut open_b)] {
            let t = Instant::now();
            black_box(kms_on(url, schema));
            out.push(t.elapsed());
        }
    }
    let (ks, kb) = (kms_on(url, "keys_small"), kms_on(url, "keys_big"));
    let (mut list_s, mut list_b) = (Vec::new(), Vec::new());
    for _ in 0..200 {
        for (kms, out, keys) in [(&ks, &mut list_s, small), (&kb, &mut list_b, big)] {
            let t = Instant::now();
            let page = kms.list_keys(Paging::default()).expect("list");
            out.push(t.elapsed());
            assert_eq!(page.total_count, keys as u64);
        }
    }
    let (os, ob, ls, lb) = (
        median(open_s),
        median(open_b),
        median(list_s),
        median(list_b),
    );
    println!(
        "open (connect + build), median: {small} keys {os:?}, {big} keys {ob:?}; ratio {:.2}x (target <= 1.5x)\n\
         ListKeys page 1, median: {small} keys {ls:?}, {big} keys {lb:?}; ratio {:.2}x (target <= 1.5x)",
        ob.as_secs_f64() / os.as_secs_f64(),
        lb.as_secs_f64() / ls.as_secs_f64(),
    );
}

criterion_group!(benches, bench);

fn main() {
    if let Ok(spec) = std::env::var(WORKER_ENV) {
        worker(&spec);
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --all-targets` does not,
    // and a run of a minute or more (a server, 100k keys) is not a test.
    if !std::env::args().any(|a| a == "--bench") {
        println!("postgres bench: run with `cargo bench --features postgres --bench postgres`");
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
