//! Encrypt throughput on one thread and on two threads sharing one `Kms`
//! (one key, a 32-byte plaintext, the memory store), and the ratio. On an
//! idle machine with two or more cores the ratio should be close to 2: the
//! hot path takes no exclusive lock.
//!
//! `cargo bench --bench concurrency` (a measurement program, not criterion:
//! the point is the ratio of two parallel runs). `LOCALKMS_BENCH_OPS` sets the
//! Encrypt calls per thread per run (default 200000); each figure is the best
//! of five runs.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::Instant;

use localkms::{EncryptionContext, Kms};

/// The process's CPU time (user + system) in clock ticks, where /proc has it.
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Runs `threads` threads of `ops` Encrypt calls each; returns calls per
/// second of wall time and CPU ticks per million calls.
fn run(kms: &Arc<Kms>, key: &str, threads: usize, ops: usize) -> (f64, Option<f64>) {
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (kms, key, barrier) = (Arc::clone(kms), key.to_owned(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                let ctx = EncryptionContext::empty();
                let pt = [0x5au8; 32];
                barrier.wait();
                for _ in 0..ops {
                    black_box(kms.encrypt(&key, &pt, &ctx).expect("encrypt"));
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let cpu = cpu_ticks();
    for h in handles {
        h.join().expect("thread");
    }
    let total = (threads * ops) as f64;
    let per_million = cpu
        .zip(cpu_ticks())
        .map(|(a, b)| (b - a) as f64 * 1e6 / total);
    (total / start.elapsed().as_secs_f64(), per_million)
}

/// The control: the same thread layout running only the raw cipher (no
/// `Kms`), to show what parallelism the machine offers at the moment.
fn control(threads: usize, ops: usize) -> f64 {
    use aes_gcm::aead::{AeadInOut, KeyInit};
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let cipher = aes_gcm::Aes256Gcm::new(&[9u8; 32].into());
                let mut buf = [0x5au8; 32];
                barrier.wait();
                for i in 0..ops {
                    let mut nonce = [0u8; 12];
                    nonce[..8].copy_from_slice(&(i as u64).to_le_bytes());
                    black_box(
                        cipher
                            .encrypt_inout_detached(&nonce.into(), b"", (&mut buf[..]).into())
                            .expect("seal"),
                    );
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for h in handles {
        h.join().expect("thread");
    }
    (threads * ops) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    // `cargo bench` passes `--bench`; a filter that names nothing here skips.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with("--") && a != "concurrency")
    {
        return;
    }
    let ops: usize = std::env::var("LOCALKMS_BENCH_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let kms = Arc::new(Kms::in_memory().expect("kms"));
    let key = kms.create_key(&Default::default()).expect("key").key_id;
    run(&kms, &key, 2, ops / 10); // warm up
    let best = |threads| {
        (0..5)
            .map(|_| run(&kms, &key, threads, ops))
            .fold(
                (0.0f64, None),
                |best, r| if r.0 > best.0 { r } else { best },
            )
    };
    let (one, cpu_one) = best(1);
    let (two, cpu_two) = best(2);
    let ticks = |c: Option<f64>| c.map_or("?".into(), |c| format!("{c:.0}"));
    println!("encrypt 32 B, memory store, {ops} calls per thread, best of 5");
    println!(
        "1 thread:  {one:>12.0} calls/s  (CPU ticks per 1M calls: {})",
        ticks(cpu_one)
    );
    println!(
        "2 threads: {two:>12.0} calls/s  (CPU ticks per 1M calls: {})",
        ticks(cpu_two)
    );
    println!("ratio:     {:>12.2}x", two / one);
    let c1 = (0..5).map(|_| control(1, ops * 4)).fold(0.0f64, f64::max);
    let c2 = (0..5).map(|_| control(2, ops * 4)).fold(0.0f64, f64::max);
    println!(
        "control (raw AES-256-GCM, no Kms): 1 thread {c1:.0}/s, 2 threads {c2:.0}/s, ratio {:.2}x",
        c2 / c1
    );
}
