//! Wall-clock staleness across holders of one PostgreSQL store: how long
//! after a DisableKey is acknowledged by one service another service (its
//! own `Kms`, cache and connections, as another process would have) still
//! encrypts under the key, with the system clock and `cache_ttl` of 1 s (the
//! default), 100 ms and 0. The bound promised is `cache_ttl` (SPEC section
//! 10); this measures it on the wall clock, which tests do not assert.
//!
//!   cargo bench --features postgres --bench staleness
//!
//! `LOCALKMS_STALENESS_ROUNDS` sets the rounds per TTL (default 20).

#[path = "../tests/support/pg.rs"]
mod pg;

use std::time::{Duration, Instant};

use localkms::store::PostgresKeystore;
use localkms::{EncryptionContext, Kms};

const ROOT: [u8; 32] = [7; 32];

fn service(url: &str, schema: &str, ttl: Duration) -> Kms {
    Kms::builder()
        .keystore(PostgresKeystore::connect(url, schema).expect("connect"))
        .root_key_bytes(&ROOT)
        .cache_ttl(ttl)
        .build()
        .expect("build")
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let Some(server) = pg::PgServer::start() else {
        return;
    };
    let rounds: usize = std::env::var("LOCALKMS_STALENESS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let ctx = EncryptionContext::empty();
    for (i, ttl) in [
        Duration::from_secs(1),
        Duration::from_millis(100),
        Duration::ZERO,
    ]
    .into_iter()
    .enumerate()
    {
        let schema = format!("staleness_{i}");
        let writer = service(&server.url(), &schema, ttl);
        let reader = service(&server.url(), &schema, ttl);
        let mut stale = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let key = writer
                .create_key(&Default::default())
                .expect("create")
                .key_id;
            reader
                .encrypt(&key, b"x", &ctx)
                .expect("the reader caches it");
            writer.disable_key(&key).expect("disable");
            let acknowledged = Instant::now();
            let mut calls = 0u64;
            while reader.encrypt(&key, b"x", &ctx).is_ok() {
                calls += 1;
                assert!(
                    acknowledged.elapsed() < ttl + Duration::from_secs(5),
                    "the reader kept encrypting far past the bound"
                );
            }
            stale.push((acknowledged.elapsed(), calls));
        }
        stale.sort();
        let (max, max_calls) = stale[stale.len() - 1];
        let (median, _) = stale[stale.len() / 2];
        println!(
            "cache_ttl {ttl:?}: after DisableKey, the other service refused within median {median:?}, max {max:?} (bound {ttl:?}; at most {max_calls} stale Encrypt calls), {rounds} rounds"
        );
    }
}
