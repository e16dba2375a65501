//! `PostgresKeystore` against a real, throwaway PostgreSQL server (see
//! `support/pg.rs`): the conformance suite, several holders of one store, and
//! the failures a shared server brings (server down, connection lost, wrong
//! schema version, missing privileges, TLS).
//!
//! The tests share one server (each uses its own schema); the ones that stop
//! the server or need TLS start their own.

#[path = "support/pg.rs"]
mod pg;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use localkms::store::{
    Batch, Conflict, Expect, Keystore, PostgresKeystore, Scan, StoreError, conformance,
};
use pg::{PASSWORD, PgServer};

fn server() -> Option<&'static PgServer> {
    static SERVER: OnceLock<Option<PgServer>> = OnceLock::new();
    SERVER.get_or_init(PgServer::start).as_ref()
}

/// A schema name no other test uses.
fn schema(test: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("{test}_{}", N.fetch_add(1, Ordering::Relaxed))
}

fn put(store: &dyn Keystore, ns: &'static str, id: &[u8], value: &[u8]) -> Result<(), StoreError> {
    let mut b = Batch::new();
    b.put(ns, id, value);
    store.apply(b)
}

fn assert_no_secret(e: &StoreError) {
    let text = format!("{e} {e:?}");
    assert!(!text.contains(PASSWORD), "the password leaked: {text}");
}

#[test]
fn conformance_suite() {
    let Some(server) = server() else { return };
    conformance::run_all(|| {
        Box::new(PostgresKeystore::connect(&server.url(), &schema("conf")).expect("connect"))
    });
}

/// The write path for poolers: every write in START/COMMIT.
#[test]
fn conformance_suite_with_explicit_transactions() {
    let Some(server) = server() else { return };
    conformance::run_all(|| {
        Box::new(
            PostgresKeystore::connect(&server.url(), &schema("explicit"))
                .expect("connect")
                .explicit_transactions(),
        )
    });
}

/// One-statement writes and explicit transactions on one store, at once:
/// the count stays exact.
#[test]
fn one_statement_and_explicit_writers_together_count_exactly() {
    let Some(server) = server() else { return };
    let name = schema("mixed");
    let plain: Arc<dyn Keystore> =
        Arc::new(PostgresKeystore::connect(&server.url(), &name).expect("connect"));
    let explicit: Arc<dyn Keystore> = Arc::new(
        PostgresKeystore::connect(&server.url(), &name)
            .expect("connect")
            .explicit_transactions(),
    );
    conformance::concurrent_increments_are_exact(&[plain, explicit], 3, 20);
}

#[test]
fn two_holders_of_one_store() {
    let Some(server) = server() else { return };
    let name = schema("shared");
    conformance::run_shared(|| {
        Box::new(PostgresKeystore::connect(&server.url(), &name).expect("connect"))
    });
}

#[test]
fn two_holders_with_one_connection_each_still_count_exactly() {
    // Connections are not what makes apply_if correct: with one pooled
    // connection per holder and more threads than connections, extra
    // connections come and go, and the count is still exact.
    let Some(server) = server() else { return };
    let name = schema("narrow");
    let open = || -> Arc<dyn Keystore> {
        Arc::new(
            PostgresKeystore::connect(&server.url(), &name)
                .expect("connect")
                .pool_size(1),
        )
    };
    conformance::concurrent_increments_are_exact(&[open(), open()], 3, 20);
}

#[test]
fn concurrent_first_opens_of_one_schema_all_succeed() {
    let Some(server) = server() else { return };
    let name = schema("race");
    let url = server.url();
    let openers: Vec<_> = (0..4)
        .map(|_| {
            let (url, name) = (url.clone(), name.clone());
            std::thread::spawn(move || PostgresKeystore::connect(&url, &name).map(|_| ()))
        })
        .collect();
    for o in openers {
        o.join()
            .expect("thread")
            .expect("every concurrent open succeeds");
    }
}

#[test]
fn records_outlive_the_holder_and_the_schema_version_is_checked() {
    let Some(server) = server() else { return };
    let name = schema("version");
    {
        let store = PostgresKeystore::connect(&server.url(), &name).expect("create");
        put(&store, "k", b"id", b"v").expect("put");
    }
    let store = PostgresKeystore::connect(&server.url(), &name).expect("reopen");
    assert_eq!(
        store.get("k", b"id").expect("get").as_deref(),
        Some(&b"v"[..])
    );
    drop(store);

    let mut admin = server.admin();
    admin
        .execute(
            &format!("UPDATE \"{name}\".meta SET v = '2' WHERE k = 'schema_version'"),
            &[],
        )
        .expect("set a future version");
    let e = PostgresKeystore::connect(&server.url(), &name).expect_err("version 2 is refused");
    assert!(matches!(e, StoreError::SchemaVersion(_)), "{e:?}");
    assert!(e.to_string().contains("version 2"), "{e}");
    assert!(e.to_string().contains(&name), "{e}");
}

#[test]
fn bad_schema_names_are_refused_before_any_sql() {
    let Some(server) = server() else { return };
    for bad in ["Upper", "semi;colon", "quo\"te", ""] {
        let e = PostgresKeystore::connect(&server.url(), bad).expect_err(bad);
        assert!(matches!(e, StoreError::Other(_)), "{e:?}");
    }
}

#[test]
fn server_down_at_connect_is_unavailable_and_names_the_server() {
    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let url = format!("postgresql://kms:{PASSWORD}@127.0.0.1:{port}/kms?sslmode=disable");
    let e = PostgresKeystore::connect(&url, "kms").expect_err("nobody listens");
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    assert!(
        e.to_string().contains(&format!("kms@127.0.0.1:{port}/kms")),
        "{e}"
    );
    assert!(e.to_string().to_lowercase().contains("refused"), "{e}");
    assert_no_secret(&e);
}

#[test]
fn a_wrong_password_is_denied_without_echoing_it() {
    let Some(server) = server() else { return };
    let url = server.url_as("postgres", "not-the-Secr3t", "postgres", "");
    let e = PostgresKeystore::connect(&url, "kms").expect_err("wrong password");
    assert!(matches!(e, StoreError::Denied(_)), "{e:?}");
    assert!(e.to_string().contains("28P01"), "{e}");
    assert!(!e.to_string().contains("not-the-Secr3t"), "{e}");
}

#[test]
fn missing_privileges_are_denied_with_the_servers_message() {
    let Some(server) = server() else { return };
    let name = schema("acl");
    let store = PostgresKeystore::connect(&server.url(), &name).expect("owner creates");
    put(&store, "k", b"id", b"v").expect("owner writes");

    let mut admin = server.admin();
    admin
        .batch_execute(&format!(
            "CREATE ROLE nobody_{name} LOGIN PASSWORD '{PASSWORD}';\
             CREATE ROLE reader_{name} LOGIN PASSWORD '{PASSWORD}';\
             GRANT USAGE ON SCHEMA \"{name}\" TO reader_{name};\
             GRANT SELECT ON ALL TABLES IN SCHEMA \"{name}\" TO reader_{name};"
        ))
        .expect("roles");

    // No privilege on the schema at all: the open is refused.
    let nobody = server.url_as(&format!("nobody_{name}"), PASSWORD, "postgres", "");
    let e = PostgresKeystore::connect(&nobody, &name).expect_err("no usage");
    assert!(matches!(e, StoreError::Denied(_)), "{e:?}");
    assert!(e.to_string().contains("permission denied"), "{e}");
    assert_no_secret(&e);
    // Nor may it create a store of its own.
    let e = PostgresKeystore::connect(&nobody, &schema("acl_new")).expect_err("no create");
    assert!(matches!(e, StoreError::Denied(_)), "{e:?}");

    // Read-only: opens and reads, every write is refused and changes nothing.
    let reader_url = server.url_as(&format!("reader_{name}"), PASSWORD, "postgres", "");
    let reader = PostgresKeystore::connect(&reader_url, &name).expect("reader opens");
    assert_eq!(
        reader.get("k", b"id").expect("read").as_deref(),
        Some(&b"v"[..])
    );
    let e = put(&reader, "k", b"id", b"w").expect_err("read-only");
    assert!(matches!(e, StoreError::Denied(_)), "{e:?}");
    assert!(e.to_string().contains("42501"), "{e}");
    let mut b = Batch::new();
    b.put("k", b"id".to_vec(), b"w".to_vec());
    let e = reader
        .apply_if(&[Expect::value("k", b"id", b"v")], b)
        .expect_err("read-only");
    assert!(matches!(e, StoreError::Denied(_)), "{e:?}");
    assert_eq!(
        store.get("k", b"id").expect("get").as_deref(),
        Some(&b"v"[..])
    );
    // The refused writes left the reader's connections usable.
    assert_eq!(
        reader.get("k", b"id").expect("read").as_deref(),
        Some(&b"v"[..])
    );
}

#[test]
fn a_lost_server_fails_operations_cleanly_and_service_resumes() {
    // Its own server: this test stops it.
    let Some(server) = PgServer::start() else {
        return;
    };
    let store = Arc::new(PostgresKeystore::connect(&server.url(), "kms").expect("connect"));

    // A writer puts pairs (a/i, b/i) atomically while the server goes away.
    let writer = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || {
            let mut acknowledged = Vec::new();
            let mut errors = Vec::new();
            for i in 0u32..100_000 {
                let mut b = Batch::new();
                b.put("a", i.to_be_bytes().to_vec(), b"x".to_vec());
                b.put("b", i.to_be_bytes().to_vec(), b"x".to_vec());
                match store.apply(b) {
                    Ok(()) => acknowledged.push(i),
                    Err(e) => {
                        errors.push(e);
                        if errors.len() >= 3 {
                            break;
                        }
                    }
                }
            }
            (acknowledged, errors)
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    server.stop();
    let (acknowledged, errors) = writer.join().expect("writer");
    assert!(!acknowledged.is_empty(), "the writer wrote before the stop");
    for e in &errors {
        assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
        assert!(
            e.to_string()
                .contains(&format!("127.0.0.1:{}", server.port)),
            "{e}"
        );
        assert_no_secret(e);
    }

    // While the server is down, every operation fails cleanly.
    let e = store.get("a", b"x").expect_err("server down");
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    let e = put(store.as_ref(), "a", b"down", b"x").expect_err("server down");
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    let e = store
        .apply_if(&[Expect::absent("a", b"down")], Batch::new())
        .expect_err("server down");
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    let e = PostgresKeystore::connect(&server.url(), "kms").expect_err("server down");
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");

    // Back up: the same handle serves again, and the store is whole.
    server.start_again();
    assert_eq!(store.get("a", b"down").expect("get after restart"), None);
    let a = store.scan("a", Scan::prefix(b"")).expect("scan a");
    let b = store.scan("b", Scan::prefix(b"")).expect("scan b");
    assert_eq!(a, b, "every pair is whole: no batch half applied");
    let present: std::collections::BTreeSet<Vec<u8>> = a.into_iter().map(|(id, _)| id).collect();
    for i in &acknowledged {
        assert!(
            present.contains(i.to_be_bytes().as_slice()),
            "acknowledged {i} lost"
        );
    }
    // At most the batch whose commit was cut off is there unacknowledged.
    assert!(present.len() <= acknowledged.len() + 1);
    put(store.as_ref(), "a", b"after", b"y").expect("writes resume");
    let mut b = Batch::new();
    b.put("a", b"after".to_vec(), b"z".to_vec());
    assert_eq!(
        store
            .apply_if(&[Expect::value("a", b"after", b"y")], b)
            .expect("apply_if resumes"),
        Ok(())
    );
    assert_eq!(
        store
            .apply_if(&[Expect::value("a", b"after", b"y")], Batch::new())
            .expect("apply_if"),
        Err(Conflict)
    );
}

/// Whether the store's connection, marked by `application_name`, uses TLS.
fn uses_tls(server: &PgServer, app: &str) -> bool {
    let row = server
        .admin()
        .query_one(
            "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid \
             WHERE a.application_name = $1",
            &[&app],
        )
        .expect("pg_stat_ssl");
    row.get::<_, Option<bool>>(0)
        .expect("the store's connection is listed")
}

#[test]
fn tls_honours_sslmode() {
    let Some(server) = PgServer::start_tls() else {
        return;
    };
    let ca = server.ca.clone().expect("a CA");
    let ca = ca.to_str().expect("utf-8 path");
    let open = |app: &str, query: &str| {
        let url = server.url_as(
            "postgres",
            PASSWORD,
            "postgres",
            &format!("{query}&application_name={app}"),
        );
        let store = PostgresKeystore::connect(&url, "kms")?;
        put(&store, "k", app.as_bytes(), b"v")?;
        Ok::<_, StoreError>(store)
    };

    let _require = open("require", "sslmode=require").expect("require connects");
    assert!(uses_tls(&server, "require"), "sslmode=require is encrypted");
    let _prefer = open("prefer", "sslmode=prefer").expect("prefer connects");
    assert!(
        uses_tls(&server, "prefer"),
        "sslmode=prefer takes TLS when offered"
    );
    let _plain = open("plain", "sslmode=disable").expect("disable connects");
    assert!(
        !uses_tls(&server, "plain"),
        "sslmode=disable is not encrypted"
    );

    let full = open("full", &format!("sslmode=verify-full&sslrootcert={ca}"))
        .expect("verify-full with the right CA");
    assert!(uses_tls(&server, "full"));
    assert_eq!(
        full.get("k", b"require").expect("get").as_deref(),
        Some(&b"v"[..])
    );
    open("ca", &format!("sslmode=verify-ca&sslrootcert={ca}"))
        .expect("verify-ca with the right CA");

    let other = tempfile::tempdir().expect("tempdir");
    let wrong = pg::make_ca(other.path(), "other");
    let wrong = wrong.to_str().expect("utf-8 path");
    for mode in ["verify-full", "verify-ca", "require"] {
        let e = open("wrong", &format!("sslmode={mode}&sslrootcert={wrong}"))
            .expect_err("a certificate from another CA is refused");
        assert!(matches!(e, StoreError::Other(_)), "{mode}: {e:?}");
        assert!(e.to_string().contains("TLS"), "{mode}: {e}");
        assert_no_secret(&e);
    }
}

#[test]
fn require_against_a_server_without_tls_fails() {
    let Some(server) = server() else { return };
    let url = server.url_as("postgres", PASSWORD, "postgres", "sslmode=require");
    let e = PostgresKeystore::connect(&url, "kms").expect_err("no TLS on the server");
    assert!(matches!(e, StoreError::Other(_)), "{e:?}");
    assert!(e.to_string().contains("TLS"), "{e}");
    // prefer falls back to plain.
    let url = server.url_as("postgres", PASSWORD, "postgres", "sslmode=prefer");
    PostgresKeystore::connect(&url, &schema("prefer")).expect("prefer falls back");
}

/// Two services, each with its own connection pool, cache and writer lock
/// (as two processes would have), on one schema: creators racing on both
/// stop at `max_keys` exactly, and a DisableKey in one is honoured by the
/// other at once with `cache_ttl(0)`.
#[test]
fn two_services_on_one_schema_keep_max_keys_and_see_each_others_changes() {
    let Some(server) = server() else { return };
    let name = schema("services");
    let make = || {
        localkms::Kms::builder()
            .keystore(PostgresKeystore::connect(&server.url(), &name).expect("connect"))
            .root_key_bytes(&[5u8; 32])
            .max_keys(6)
            .cache_ttl(std::time::Duration::ZERO)
            .build()
            .expect("build")
    };
    let a = make();
    let b = make();
    let created: usize = std::thread::scope(|s| {
        let handles: Vec<_> = [&a, &b, &a, &b]
            .into_iter()
            .map(|kms| {
                s.spawn(move || {
                    (0..4)
                        .filter(|_| match kms.create_key(&Default::default()) {
                            Ok(_) => true,
                            Err(e) => {
                                assert_eq!(e.code(), "Rejected.LimitExceeded", "{e}");
                                false
                            }
                        })
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("join")).sum()
    });
    assert_eq!(created, 6);
    assert_eq!(b.key_count().expect("count"), 6);
    let key = a
        .list_keys(localkms::Paging::default())
        .expect("list")
        .items[0]
        .key_id
        .clone();
    let ctx = localkms::EncryptionContext::default();
    b.encrypt(&key, b"x", &ctx).expect("enabled");
    a.disable_key(&key).expect("disable");
    let e = b.encrypt(&key, b"x", &ctx).expect_err("disabled in a");
    assert_eq!(e.code(), "Rejected.Disabled");
    assert!(b.verify().expect("verify").is_ok());
}
