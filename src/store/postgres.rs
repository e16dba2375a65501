//! The shared backend, on PostgreSQL (SPEC 10): several processes, on one or
//! many machines, open one store.
//!
//! # Layout
//!
//! Everything lives in one schema, named at [`PostgresKeystore::connect`], so
//! several stores can share a database:
//!
//! ```text
//! <schema>.meta    (k TEXT PRIMARY KEY, v TEXT NOT NULL)
//!                  k = 'schema_version' -> v = '1'
//! <schema>.records (ns TEXT, id BYTEA, v BYTEA, PRIMARY KEY (ns, id))
//! ```
//!
//! The schema is created on first open and its version checked on every open:
//! a store written by another version is refused with
//! [`StoreError::SchemaVersion`].
//!
//! # The SQL subset
//!
//! Only statements that the PostgreSQL-compatible distributed databases
//! (CockroachDB, YugabyteDB) also accept, so the backend can move there
//! (untested here: neither can be installed):
//! - `CREATE SCHEMA IF NOT EXISTS`, `CREATE TABLE IF NOT EXISTS` with `TEXT`
//!   and `BYTEA` columns and a composite primary key;
//! - `SELECT ... WHERE ... ORDER BY ... LIMIT $n OFFSET $m` on the primary key
//!   (`BYTEA` compares bytewise, as the trait's scan order requires);
//! - `INSERT ... ON CONFLICT (...) DO UPDATE SET v = excluded.v`,
//!   `ON CONFLICT DO NOTHING`, `DELETE ... WHERE`;
//! - arrays as parameters (`$1::bytea[]`) and the multi-array
//!   `unnest(...)` in `FROM`, so one statement reads, writes or deletes many
//!   records;
//! - data-modifying `WITH` (`WITH ok AS (...), put AS (INSERT ...
//!   RETURNING 1) SELECT ...`), `NOT EXISTS`, `IS DISTINCT FROM`;
//! - `START TRANSACTION ISOLATION LEVEL SERIALIZABLE`, `COMMIT`, `ROLLBACK`,
//!   and the startup option `default_transaction_isolation = serializable`
//!   (each connection sets it when it connects).
//!
//! No PL/pgSQL, no triggers, no sequences, no advisory locks, no
//! LISTEN/NOTIFY: correctness rests on serializable transactions alone.
//!
//! # Concurrency
//!
//! Every write is one serializable transaction of one round trip: one
//! statement, run on its own (the connection's transactions are
//! serializable by default), that checks every expectation and, only if all
//! hold, writes every put and delete. The default is checked on each new
//! connection (`SHOW default_transaction_isolation`); where it did not take
//! (a pooler that drops startup options), or with
//! [`PostgresKeystore::explicit_transactions`], the statement runs inside
//! `START TRANSACTION ISOLATION LEVEL SERIALIZABLE` … `COMMIT`. (A batch of
//! more than a thousand records or expectations is an explicit transaction
//! that sends them a thousand per statement.) [`Keystore::apply_if`] reads its expectations
//! inside that transaction; a concurrent writer that would
//! break serializability makes the server abort one of them with SQLSTATE
//! 40001 (or 40P01), which `apply_if` reports as [`Conflict`] and `apply`
//! retries. No in-process lock takes part.
//!
//! # Durability
//!
//! A commit that returns is durable on the server (with the server's default
//! `synchronous_commit = on`), so [`Keystore::flush`] has nothing to do.
//!
//! # Failures
//!
//! A server that cannot be reached, or a connection lost during an operation,
//! is [`StoreError::Unavailable`]: the open transaction dies with the
//! connection, so nothing of it is applied, except when the connection is
//! lost once a write was sent, where the outcome is unknown and the error
//! says so. The pool drops connections the server closed (a restart) before
//! it hands them out, and a read that finds its pooled connection dead is
//! retried once on a fresh connection, so service resumes as soon as the
//! server is back. Missing privileges or a refused
//! login are [`StoreError::Denied`]. Messages carry the server's own message
//! and `user@host:port/database`, never a password.
//!
//! # Connection strings
//!
//! A URL (`postgresql://user:password@host:port/db?sslmode=verify-full&sslrootcert=ca.pem`)
//! or libpq's `key=value` form, as the `postgres` crate reads them, plus
//! `sslmode` (`disable`, `prefer` (the default), `require`, `verify-ca`,
//! `verify-full`) and `sslrootcert` (a PEM file) with libpq's meanings: see
//! the table in `postgres/tls.rs`. Client certificates are not supported.

use std::collections::HashMap;
use std::error::Error as _;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use postgres::{Client, IsolationLevel, NoTls, Statement};

use super::{Batch, Conflict, Expect, Keystore, Op, Record, Scan, StoreError};

mod tls;

/// The version of the layout above that this build reads and writes.
const SCHEMA_VERSION: &str = "1";

/// How often `apply` retries a transaction the server aborted as a
/// serialization failure before it gives up.
const APPLY_ATTEMPTS: u32 = 100;

/// Connections kept open for reuse, unless set otherwise.
const DEFAULT_POOL: usize = 8;

/// How long a connection attempt may take when the URL sets no
/// `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A keystore in a PostgreSQL schema, shared by every process that opens it.
///
/// Cloning shares the connection pool; a second [`PostgresKeystore::connect`]
/// to the same schema is another holder of the same store, as another process
/// would be.
#[derive(Clone)]
pub struct PostgresKeystore {
    inner: Arc<Inner>,
}

struct Inner {
    server: Server,
    schema: String,
    sql: Sql,
    idle: Mutex<Vec<Conn>>,
    pool: AtomicUsize,
    /// Writes always in START/COMMIT (see `explicit_transactions`).
    explicit: std::sync::atomic::AtomicBool,
}

impl fmt::Debug for PostgresKeystore {
    // The connection string may hold a password: show where, not how.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresKeystore")
            .field("server", &self.inner.server.place)
            .field("schema", &self.inner.schema)
            .finish_non_exhaustive()
    }
}

impl PostgresKeystore {
    /// Connects to the server at `url` and opens the store in `schema`,
    /// creating the schema and its tables if they do not exist.
    ///
    /// `schema` is 1 to 63 characters of `a-z`, `0-9` and `_`, not starting
    /// with a digit.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the server cannot be reached;
    /// [`StoreError::Denied`] if it refuses the login or the role lacks the
    /// privileges to read (or, on first open, create) the schema;
    /// [`StoreError::SchemaVersion`] if the schema holds a store of another
    /// version; [`StoreError::Other`] for a malformed URL, schema name, root
    /// certificate or a failed TLS handshake.
    pub fn connect(url: &str, schema: &str) -> Result<Self, StoreError> {
        check_schema_name(schema)?;
        let server = Server::parse(url)?;
        let store = Self {
            inner: Arc::new(Inner {
                server,
                schema: schema.to_owned(),
                sql: Sql::new(schema),
                idle: Mutex::new(Vec::new()),
                pool: AtomicUsize::new(DEFAULT_POOL),
                explicit: std::sync::atomic::AtomicBool::new(false),
            }),
        };
        store.open_schema()?;
        Ok(store)
    }

    /// Keeps at most `n` idle connections for reuse (default 8). Busier
    /// moments open more and close them afterwards.
    #[must_use]
    pub fn pool_size(self, n: usize) -> Self {
        self.inner.pool.store(n, Ordering::Relaxed);
        self
    }

    /// Wraps every write in `START TRANSACTION ISOLATION LEVEL
    /// SERIALIZABLE` … `COMMIT` (three round trips) instead of sending it as
    /// one statement that runs serializable by the connection's default.
    /// For a connection pooler between the library and the server that does
    /// not keep a connection's session settings (transaction pooling). A
    /// pooler that drops the startup option is detected at connect and
    /// gets this without asking.
    #[must_use]
    pub fn explicit_transactions(self) -> Self {
        self.inner.explicit.store(true, Ordering::Relaxed);
        self.drop_idle();
        self
    }

    /// The schema that holds the store.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    fn open_schema(&self) -> Result<(), StoreError> {
        let inner = &self.inner;
        let mut conn = self.take()?.0;
        // Two holders opening a new store at once race to create it; the
        // loser sees a duplicate object and reads again.
        for _ in 0..3 {
            match conn.client.query_opt(inner.sql.version.as_str(), &[]) {
                Ok(Some(row)) => {
                    let version: String = row.try_get(0).map_err(|e| self.fail(&e))?;
                    if version != SCHEMA_VERSION {
                        return Err(StoreError::SchemaVersion(format!(
                            "schema \"{}\" holds a store of version {version}; this build reads version {SCHEMA_VERSION}",
                            inner.schema
                        )));
                    }
                    self.give(conn);
                    return Ok(());
                }
                // The tables exist but a creation did not finish: finish it.
                Ok(None) => {}
                Err(e) if matches!(code(&e), Some("42P01" | "3F000")) => {}
                Err(e) => return Err(self.fail(&e)),
            }
            match conn.client.batch_execute(&inner.sql.create) {
                Ok(()) => {}
                Err(e) if matches!(code(&e), Some("23505" | "42P06" | "42P07" | "40001")) => {}
                Err(e) => return Err(self.fail(&e)),
            }
        }
        Err(StoreError::Other(format!(
            "schema \"{}\" could not be created: concurrent creators kept interfering",
            inner.schema
        )))
    }

    /// A connection: an idle one (and `true`) or a new one.
    fn take(&self) -> Result<(Conn, bool), StoreError> {
        let reused = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match reused {
            Some(conn) if !conn.client.is_closed() => Ok((conn, true)),
            _ => {
                let mut conn = self.inner.server.connect()?;
                conn.serializable &= !self.inner.explicit.load(Ordering::Relaxed);
                Ok((conn, false))
            }
        }
    }

    fn give(&self, conn: Conn) {
        if conn.client.is_closed() {
            return;
        }
        let mut idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.inner.pool.load(Ordering::Relaxed) {
            idle.push(conn);
        }
    }

    /// Forgets the idle connections: after one died, the others most likely
    /// did too (a server restart).
    fn drop_idle(&self) {
        let old = std::mem::take(
            &mut *self
                .inner
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        drop(old);
    }

    /// Runs `op` on a connection. `op` sets its `bool` when it starts to
    /// commit: a connection lost before that point lost nothing, so the
    /// operation is retried once on a fresh connection when the one it had
    /// came from the pool (it may have died while idle).
    fn run<T>(
        &self,
        mut op: impl FnMut(&mut Conn, &Sql, &mut bool) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let mut retried = false;
        loop {
            let (mut conn, reused) = self.take()?;
            let mut committing = false;
            match op(&mut conn, &self.inner.sql, &mut committing) {
                Ok(v) => {
                    self.give(conn);
                    return Ok(v);
                }
                Err(e) if is_connection_loss(&e) => {
                    drop(conn);
                    self.drop_idle();
                    if reused && !committing && !retried {
                        retried = true;
                        continue;
                    }
                    let outcome = if committing {
                        "; the connection was lost during the commit, whose outcome is unknown"
                    } else {
                        "; nothing was applied"
                    };
                    return Err(StoreError::Unavailable(format!(
                        "PostgreSQL at {}: {}{outcome}",
                        self.inner.server.place,
                        describe(&e)
                    )));
                }
                Err(e) => {
                    self.give(conn);
                    return Err(self.fail(&e));
                }
            }
        }
    }

    fn fail(&self, e: &postgres::Error) -> StoreError {
        classify(&format!("PostgreSQL at {}", self.inner.server.place), e)
    }

    /// One serializable transaction: check `expect`, then apply `ops`.
    fn transaction(
        conn: &mut Conn,
        sql: &Sql,
        committing: &mut bool,
        expect: &[Expect<'_>],
        ops: &[Op],
    ) -> Result<Result<(), Conflict>, postgres::Error> {
        let (puts, deletes) = net_changes(ops);
        let small = [expect.len(), puts.len(), deletes.len()]
            .iter()
            .all(|n| *n <= ROWS_PER_STATEMENT);
        if small {
            // The usual write: one statement checks every expectation and,
            // only if all hold, writes every put and delete. It is its own
            // serializable transaction (the connection's default), so the
            // write is one round trip: no BEGIN, no COMMIT.
            let write = conn.prepared(sql, Q::Write)?;
            let e_ns: Vec<&str> = expect.iter().map(|e| e.ns).collect();
            let e_id: Vec<&[u8]> = expect.iter().map(|e| e.id).collect();
            let e_v: Vec<Option<&[u8]>> = expect.iter().map(|e| e.value).collect();
            let p_ns: Vec<&str> = puts.iter().map(|p| p.0).collect();
            let p_id: Vec<&[u8]> = puts.iter().map(|p| p.1).collect();
            let p_v: Vec<&[u8]> = puts.iter().map(|p| p.2).collect();
            let d_ns: Vec<&str> = deletes.iter().map(|d| d.0).collect();
            let d_id: Vec<&[u8]> = deletes.iter().map(|d| d.1).collect();
            let params: [&(dyn postgres::types::ToSql + Sync); 8] =
                [&e_ns, &e_id, &e_v, &p_ns, &p_id, &p_v, &d_ns, &d_id];
            if conn.serializable {
                // A connection that died while idle is found by the pool
                // (`is_closed`) before it is used; a loss from here on leaves
                // the outcome unknown.
                *committing = true;
                let held: bool = conn.client.query_one(&write, &params)?.try_get(0)?;
                return Ok(if held { Ok(()) } else { Err(Conflict) });
            }
            // The server did not take the connection's default (a pooler
            // that drops startup options): an explicit transaction.
            let mut tx = conn
                .client
                .build_transaction()
                .isolation_level(IsolationLevel::Serializable)
                .start()?;
            let held: bool = tx.query_one(&write, &params)?.try_get(0)?;
            if !held {
                tx.rollback()?;
                return Ok(Err(Conflict));
            }
            *committing = true;
            tx.commit()?;
            return Ok(Ok(()));
        }
        let get_many = conn.prepared(sql, Q::GetMany)?;
        let put = conn.prepared(sql, Q::Put)?;
        let delete = conn.prepared(sql, Q::Delete)?;
        let mut tx = conn
            .client
            .build_transaction()
            .isolation_level(IsolationLevel::Serializable)
            .start()?;
        // A large batch: every expectation in one statement, every put (and delete) in one
        // per `ROWS_PER_STATEMENT`: a write is a few round trips, however
        // many records it names.
        for chunk in expect.chunks(ROWS_PER_STATEMENT) {
            let names: Vec<(&str, &[u8])> = chunk.iter().map(|e| (e.ns, e.id)).collect();
            let current = read_many(&mut tx, &get_many, &names)?;
            if chunk
                .iter()
                .zip(&current)
                .any(|(e, c)| c.as_deref() != e.value)
            {
                tx.rollback()?;
                return Ok(Err(Conflict));
            }
        }
        for chunk in puts.chunks(ROWS_PER_STATEMENT) {
            let ns: Vec<&str> = chunk.iter().map(|p| p.0).collect();
            let id: Vec<&[u8]> = chunk.iter().map(|p| p.1).collect();
            let v: Vec<&[u8]> = chunk.iter().map(|p| p.2).collect();
            tx.execute(&put, &[&ns, &id, &v])?;
        }
        for chunk in deletes.chunks(ROWS_PER_STATEMENT) {
            let ns: Vec<&str> = chunk.iter().map(|d| d.0).collect();
            let id: Vec<&[u8]> = chunk.iter().map(|d| d.1).collect();
            tx.execute(&delete, &[&ns, &id])?;
        }
        *committing = true;
        tx.commit()?;
        Ok(Ok(()))
    }
}

impl Keystore for PostgresKeystore {
    fn get(&self, ns: &str, id: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(|conn, sql, _| {
            let get = conn.prepared(sql, Q::Get)?;
            match conn.client.query_opt(&get, &[&ns, &id])? {
                Some(row) => Ok(Some(row.try_get(0)?)),
                None => Ok(None),
            }
        })
    }

    fn get_many(&self, keys: &[(&str, &[u8])]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.run(|conn, sql, _| {
            let get_many = conn.prepared(sql, Q::GetMany)?;
            let mut out = Vec::with_capacity(keys.len());
            for chunk in keys.chunks(ROWS_PER_STATEMENT) {
                out.extend(read_many(&mut conn.client, &get_many, chunk)?);
            }
            Ok(out)
        })
    }

    fn scan(&self, ns: &str, scan: Scan<'_>) -> Result<Vec<Record>, StoreError> {
        // The lower bound is the cursor when it lies at or past the prefix,
        // else the prefix; the upper bound is the first id past the prefix.
        let (q_lower, lower) = match scan.after {
            Some(after) if after >= scan.prefix => (true, after),
            _ => (false, scan.prefix),
        };
        let upper = prefix_end(scan.prefix);
        let limit = i64::try_from(scan.limit).unwrap_or(i64::MAX);
        let skip = i64::try_from(scan.skip).unwrap_or(i64::MAX);
        let q = match (q_lower, upper.is_some()) {
            (false, false) => Q::ScanFrom,
            (false, true) => Q::ScanFromTo,
            (true, false) => Q::ScanAfter,
            (true, true) => Q::ScanAfterTo,
        };
        self.run(|conn, sql, _| {
            let stmt = conn.prepared(sql, q)?;
            let rows = match &upper {
                Some(upper) => conn
                    .client
                    .query(&stmt, &[&ns, &lower, &upper.as_slice(), &limit, &skip])?,
                None => conn.client.query(&stmt, &[&ns, &lower, &limit, &skip])?,
            };
            rows.iter()
                .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                .collect()
        })
    }

    fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let ops = batch.into_ops();
        for attempt in 0..APPLY_ATTEMPTS {
            let outcome = self.run(|conn, sql, committing| {
                match Self::transaction(conn, sql, committing, &[], &ops) {
                    Err(e) if is_serialization_failure(&e) => Ok(false),
                    Err(e) => Err(e),
                    Ok(_) => Ok(true),
                }
            })?;
            if outcome {
                return Ok(());
            }
            backoff(attempt);
        }
        Err(StoreError::Other(format!(
            "PostgreSQL at {}: a write lost {APPLY_ATTEMPTS} serialization races in a row; nothing was applied",
            self.inner.server.place
        )))
    }

    fn apply_if(
        &self,
        expect: &[Expect<'_>],
        batch: Batch,
    ) -> Result<Result<(), Conflict>, StoreError> {
        let ops = batch.into_ops();
        self.run(|conn, sql, committing| {
            match Self::transaction(conn, sql, committing, expect, &ops) {
                Err(e) if is_serialization_failure(&e) => Ok(Err(Conflict)),
                other => other,
            }
        })
    }

    fn flush(&self) -> Result<(), StoreError> {
        // Every commit that returned is already durable on the server.
        Ok(())
    }

    fn is_shared(&self) -> bool {
        true
    }

    /// Every record, read in one serializable read-only transaction: a
    /// consistent snapshot while other processes write (backup and verify
    /// rely on it; one scan per namespace would mix moments).
    fn visit_all(&self, visit: &mut super::Visitor<'_>) -> Result<(), StoreError> {
        for attempt in 0..APPLY_ATTEMPTS {
            let rows = self.run(|conn, sql, _| {
                let mut tx = conn
                    .client
                    .build_transaction()
                    .isolation_level(IsolationLevel::Serializable)
                    .read_only(true)
                    .start()?;
                let rows = match tx.query(sql.all.as_str(), &[]) {
                    Err(e) if is_serialization_failure(&e) => return Ok(None),
                    other => other?,
                };
                let records = rows
                    .iter()
                    .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
                    .collect::<Result<Vec<(String, Vec<u8>, Vec<u8>)>, postgres::Error>>()?;
                match tx.commit() {
                    Err(e) if is_serialization_failure(&e) => Ok(None),
                    other => other.map(|()| Some(records)),
                }
            })?;
            if let Some(rows) = rows {
                for (ns, id, v) in rows {
                    visit(&ns, &id, &v)?;
                }
                return Ok(());
            }
            backoff(attempt);
        }
        Err(StoreError::Other(format!(
            "PostgreSQL at {}: reading every record lost {APPLY_ATTEMPTS} serialization races in a row",
            self.inner.server.place
        )))
    }
}

/// The most rows one statement reads or writes; larger batches send several.
const ROWS_PER_STATEMENT: usize = 1000;

/// The records named in `names`, in order, read with the `GetMany`
/// statement, on a client or in a transaction.
fn read_many(
    client: &mut impl postgres::GenericClient,
    get_many: &Statement,
    names: &[(&str, &[u8])],
) -> Result<Vec<Option<Vec<u8>>>, postgres::Error> {
    let ns: Vec<&str> = names.iter().map(|n| n.0).collect();
    let id: Vec<&[u8]> = names.iter().map(|n| n.1).collect();
    let mut found: HashMap<(String, Vec<u8>), Vec<u8>> = HashMap::new();
    for row in client.query(get_many, &[&ns, &id])? {
        found.insert((row.try_get(0)?, row.try_get(1)?), row.try_get(2)?);
    }
    Ok(names
        .iter()
        .map(|(ns, id)| found.get(&((*ns).to_owned(), id.to_vec())).cloned())
        .collect())
}

/// What `ops` leave behind: the last op on each record wins, so each
/// record appears once, among the puts (with its final value) or the
/// deletes. (One statement may not change a row twice.)
type NetChanges<'a> = (Vec<(&'a str, &'a [u8], &'a [u8])>, Vec<(&'a str, &'a [u8])>);

fn net_changes(ops: &[Op]) -> NetChanges<'_> {
    fn name(op: &Op) -> (&str, &[u8]) {
        match op {
            Op::Put { ns, id, .. } | Op::Delete { ns, id } => (ns, id),
        }
    }
    let last: HashMap<(&str, &[u8]), usize> = ops
        .iter()
        .enumerate()
        .map(|(i, op)| (name(op), i))
        .collect();
    let (mut puts, mut deletes) = (Vec::new(), Vec::new());
    for (i, op) in ops.iter().enumerate() {
        if last.get(&name(op)) != Some(&i) {
            continue;
        }
        match op {
            Op::Put { ns, id, value } => puts.push((*ns, id.as_slice(), value.as_slice())),
            Op::Delete { ns, id } => deletes.push((*ns, id.as_slice())),
        }
    }
    (puts, deletes)
}

/// Waits a little before a retry, longer each time, up to 20 ms.
fn backoff(attempt: u32) {
    std::thread::sleep(Duration::from_micros(200 * u64::from(attempt.min(100))));
}

/// The statements, by name.
#[derive(Debug, Clone, Copy)]
enum Q {
    Get,
    Write,
    GetMany,
    Put,
    Delete,
    ScanFrom,
    ScanFromTo,
    ScanAfter,
    ScanAfterTo,
}

/// The SQL text of every statement, in one schema.
struct Sql {
    create: String,
    version: String,
    get: String,
    get_many: String,
    write: String,
    put: String,
    delete: String,
    scan_from: String,
    scan_from_to: String,
    scan_after: String,
    scan_after_to: String,
    /// Every record (for [`Keystore::visit_all`]).
    all: String,
}

impl Sql {
    /// `schema` has been checked by [`check_schema_name`]; it is quoted all
    /// the same.
    fn new(schema: &str) -> Self {
        let s = format!("\"{schema}\"");
        let scan = |lower: &str, upper: bool| {
            let (upper, n) = if upper { (" AND id < $3", 4) } else { ("", 3) };
            format!(
                "SELECT id, v FROM {s}.records WHERE ns = $1 AND id {lower} $2{upper} ORDER BY id LIMIT ${n} OFFSET ${}",
                n + 1
            )
        };
        Self {
            create: format!(
                "CREATE SCHEMA IF NOT EXISTS {s};\
                 CREATE TABLE IF NOT EXISTS {s}.meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);\
                 CREATE TABLE IF NOT EXISTS {s}.records (ns TEXT NOT NULL, id BYTEA NOT NULL, v BYTEA NOT NULL, PRIMARY KEY (ns, id));\
                 INSERT INTO {s}.meta (k, v) VALUES ('schema_version', '{SCHEMA_VERSION}') ON CONFLICT (k) DO NOTHING"
            ),
            version: format!("SELECT v FROM {s}.meta WHERE k = 'schema_version'"),
            get: format!("SELECT v FROM {s}.records WHERE ns = $1 AND id = $2"),
            get_many: format!(
                "SELECT r.ns, r.id, r.v FROM unnest($1::text[], $2::bytea[]) AS w (ns, id) JOIN {s}.records r ON r.ns = w.ns AND r.id = w.id"
            ),
            // Data-modifying CTEs run once, to completion, on the snapshot
            // that `ok` reads; `ok` is true when no expectation differs
            // (a NULL value expects the record absent).
            write: format!(
                "WITH ok AS (SELECT NOT EXISTS (SELECT 1 FROM unnest($1::text[], $2::bytea[], $3::bytea[]) AS e (ns, id, v) \
                 LEFT JOIN {s}.records r ON r.ns = e.ns AND r.id = e.id WHERE r.v IS DISTINCT FROM e.v) AS ok), \
                 put AS (INSERT INTO {s}.records (ns, id, v) SELECT * FROM unnest($4::text[], $5::bytea[], $6::bytea[]) \
                 WHERE (SELECT ok FROM ok) ON CONFLICT (ns, id) DO UPDATE SET v = excluded.v RETURNING 1), \
                 del AS (DELETE FROM {s}.records WHERE (ns, id) IN (SELECT * FROM unnest($7::text[], $8::bytea[])) \
                 AND (SELECT ok FROM ok) RETURNING 1) \
                 SELECT ok FROM ok"
            ),
            put: format!(
                "INSERT INTO {s}.records (ns, id, v) SELECT * FROM unnest($1::text[], $2::bytea[], $3::bytea[]) ON CONFLICT (ns, id) DO UPDATE SET v = excluded.v"
            ),
            delete: format!(
                "DELETE FROM {s}.records WHERE (ns, id) IN (SELECT * FROM unnest($1::text[], $2::bytea[]))"
            ),
            scan_from: scan(">=", false),
            scan_from_to: scan(">=", true),
            scan_after: scan(">", false),
            scan_after_to: scan(">", true),
            all: format!("SELECT ns, id, v FROM {s}.records ORDER BY ns, id"),
        }
    }

    fn text(&self, q: Q) -> &str {
        match q {
            Q::Get => &self.get,
            Q::GetMany => &self.get_many,
            Q::Write => &self.write,
            Q::Put => &self.put,
            Q::Delete => &self.delete,
            Q::ScanFrom => &self.scan_from,
            Q::ScanFromTo => &self.scan_from_to,
            Q::ScanAfter => &self.scan_after,
            Q::ScanAfterTo => &self.scan_after_to,
        }
    }
}

/// A pooled connection with the statements it has prepared.
struct Conn {
    client: Client,
    /// The server runs this connection's transactions serializable by
    /// default (the startup option took): a write may be one statement.
    serializable: bool,
    prepared: [Option<Statement>; 9],
}

impl Conn {
    fn prepared(&mut self, sql: &Sql, q: Q) -> Result<Statement, postgres::Error> {
        let slot = match q {
            Q::Get => 0,
            Q::Put => 1,
            Q::Delete => 2,
            Q::ScanFrom => 3,
            Q::ScanFromTo => 4,
            Q::ScanAfter => 5,
            Q::ScanAfterTo => 6,
            Q::GetMany => 7,
            Q::Write => 8,
        };
        if let Some(Some(stmt)) = self.prepared.get(slot) {
            return Ok(stmt.clone());
        }
        let stmt = self.client.prepare(sql.text(q))?;
        if let Some(cached) = self.prepared.get_mut(slot) {
            *cached = Some(stmt.clone());
        }
        Ok(stmt)
    }
}

/// Where and how to connect.
struct Server {
    config: postgres::Config,
    tls: Option<tls::MakeRustls>,
    /// `user@host:port/database`, for messages: never the password.
    place: String,
}

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl Server {
    fn parse(url: &str) -> Result<Self, StoreError> {
        let bad = |why: String| StoreError::Other(format!("PostgreSQL connection string: {why}"));
        let (rest, mode, root) = split_tls_options(url).map_err(bad)?;
        let mut config: postgres::Config = rest.parse().map_err(|e| bad(format!("{e}")))?;
        // Every transaction is serializable, the single-statement ones too:
        // a write is then one round trip (see `PostgresKeystore::transaction`).
        let options = match config.get_options() {
            Some(o) if !o.is_empty() => {
                format!("{o} -c default_transaction_isolation=serializable")
            }
            _ => "-c default_transaction_isolation=serializable".to_owned(),
        };
        config.options(&options);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let root = root.map(PathBuf::from);
        let check = match mode {
            SslMode::Disable => None,
            SslMode::Prefer => Some(tls::Check::Nothing),
            // libpq: `require` with a root certificate checks as `verify-ca`.
            SslMode::Require if root.is_some() => Some(tls::Check::Chain),
            SslMode::Require => Some(tls::Check::Nothing),
            SslMode::VerifyCa => Some(tls::Check::Chain),
            SslMode::VerifyFull => Some(tls::Check::ChainAndName),
        };
        config.ssl_mode(match mode {
            SslMode::Disable => postgres::config::SslMode::Disable,
            SslMode::Prefer => postgres::config::SslMode::Prefer,
            _ => postgres::config::SslMode::Require,
        });
        let tls = match check {
            None => None,
            Some(check) => Some(tls::MakeRustls::new(
                tls::client_config(check, root.as_deref()).map_err(bad)?,
            )),
        };
        let place = place(&config);
        Ok(Self { config, tls, place })
    }

    fn connect(&self) -> Result<Conn, StoreError> {
        let connected = match &self.tls {
            None => self.config.connect(NoTls),
            Some(tls) => self.config.connect(tls.clone()),
        };
        let mut client = connected.map_err(|e| self.connect_error(&e))?;
        // Checked, not assumed: a pooler in between may drop the option.
        let serializable = client
            .query_one("SHOW default_transaction_isolation", &[])
            .and_then(|row| row.try_get::<_, String>(0))
            .map_err(|e| classify(&format!("PostgreSQL at {}", self.place), &e))?
            == "serializable";
        Ok(Conn {
            client,
            serializable,
            prepared: Default::default(),
        })
    }

    fn connect_error(&self, e: &postgres::Error) -> StoreError {
        let what = format!("cannot connect to PostgreSQL at {}", self.place);
        if e.as_db_error().is_some() {
            return classify(&what, e);
        }
        let mut source = e.source();
        while let Some(err) = source {
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                let tls = io
                    .get_ref()
                    .is_some_and(|inner| inner.is::<rustls::Error>());
                return if tls {
                    StoreError::Other(format!("{what}: TLS handshake failed: {io}"))
                } else {
                    StoreError::Unavailable(format!("{what}: {io}"))
                };
            }
            source = err.source();
        }
        StoreError::Other(format!("{what}: {e}"))
    }
}

/// `user@host:port/database` of a configuration.
fn place(config: &postgres::Config) -> String {
    use postgres::config::Host;
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let host = match host {
                Host::Tcp(h) => h.clone(),
                Host::Unix(p) => p.display().to_string(),
            };
            // One port for every host, or one each; 5432 if none.
            let port = ports
                .get(i)
                .or_else(|| ports.first())
                .copied()
                .unwrap_or(5432);
            format!("{host}:{port}")
        })
        .collect();
    let hosts = if hosts.is_empty() {
        "localhost".to_owned()
    } else {
        hosts.join(",")
    };
    let user = config.get_user().unwrap_or("");
    let db = config.get_dbname().unwrap_or(user);
    format!("{user}@{hosts}/{db}")
}

/// Takes `sslmode` and `sslrootcert` out of a connection string (the
/// `postgres` crate knows neither `verify-*` nor root certificates).
fn split_tls_options(url: &str) -> Result<(String, SslMode, Option<String>), String> {
    let mut mode = None;
    let mut root = None;
    let mut take = |key: &str, value: String| -> Result<bool, String> {
        match key {
            "sslmode" => {
                mode = Some(match value.as_str() {
                    "disable" => SslMode::Disable,
                    "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" => SslMode::VerifyFull,
                    other => {
                        return Err(format!(
                            "sslmode={other} is not one of disable, prefer, require, verify-ca, verify-full"
                        ));
                    }
                });
                Ok(true)
            }
            "sslrootcert" => {
                root = Some(value);
                Ok(true)
            }
            _ => Ok(false),
        }
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            None => url.to_owned(),
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&') {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    let value = percent_encoding::percent_decode_str(value)
                        .decode_utf8()
                        .map_err(|_| format!("the value of {key} is not UTF-8"))?
                        .into_owned();
                    if !take(key, value)? {
                        kept.push(pair);
                    }
                }
                if kept.is_empty() {
                    base.to_owned()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        let mut kept = Vec::new();
        for word in url.split_whitespace() {
            let taken = match word.split_once('=') {
                Some((key, value)) => take(key, value.trim_matches('\'').to_owned())?,
                None => false,
            };
            if !taken {
                kept.push(word);
            }
        }
        kept.join(" ")
    };
    Ok((rest, mode.unwrap_or(SslMode::Prefer), root))
}

fn check_schema_name(schema: &str) -> Result<(), StoreError> {
    let ok = (1..=63).contains(&schema.len())
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !schema.as_bytes().first().is_some_and(u8::is_ascii_digit);
    if ok {
        Ok(())
    } else {
        Err(StoreError::Other(format!(
            "PostgreSQL schema name {schema:?}: use 1 to 63 of a-z, 0-9 and _, not starting with a digit"
        )))
    }
}

/// The first id past every id that starts with `prefix`, if there is one.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The SQLSTATE of a server error.
fn code(e: &postgres::Error) -> Option<&str> {
    e.as_db_error().map(|db| db.code().code())
}

fn is_serialization_failure(e: &postgres::Error) -> bool {
    matches!(code(e), Some("40001" | "40P01"))
}

/// The connection is gone (or going): class 08, or the server shutting down.
fn is_connection_loss(e: &postgres::Error) -> bool {
    match code(e) {
        Some(c) => c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03"),
        None => {
            if e.is_closed() {
                return true;
            }
            let mut source = e.source();
            while let Some(err) = source {
                if err.is::<std::io::Error>() {
                    return true;
                }
                source = err.source();
            }
            false
        }
    }
}

/// The server's message with its severity and SQLSTATE, or the client's.
/// Neither holds the password: the server never echoes it.
fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        None => e.to_string(),
    }
}

fn classify(what: &str, e: &postgres::Error) -> StoreError {
    let message = format!("{what}: {}", describe(e));
    match code(e) {
        // insufficient_privilege, invalid_authorization_specification,
        // invalid_password
        Some("42501" | "28000" | "28P01") => StoreError::Denied(message),
        Some(c) if c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03") => {
            StoreError::Unavailable(message)
        }
        _ => StoreError::Other(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_options_are_taken_out_of_urls() {
        let (rest, mode, root) = split_tls_options(
            "postgresql://u:p@h:5/db?sslmode=verify-full&connect_timeout=3&sslrootcert=%2Ftmp%2Fca.pem",
        )
        .expect("parse");
        assert_eq!(rest, "postgresql://u:p@h:5/db?connect_timeout=3");
        assert_eq!(mode, SslMode::VerifyFull);
        assert_eq!(root.as_deref(), Some("/tmp/ca.pem"));

        let (rest, mode, root) = split_tls_options("postgres://h/db").expect("parse");
        assert_eq!(
            (rest.as_str(), mode, root),
            ("postgres://h/db", SslMode::Prefer, None)
        );

        let (rest, mode, _) =
            split_tls_options("host=h user=u sslmode=disable dbname=d").expect("parse");
        assert_eq!(
            (rest.as_str(), mode),
            ("host=h user=u dbname=d", SslMode::Disable)
        );

        let err = split_tls_options("postgres://h/?sslmode=allow").expect_err("allow");
        assert!(err.contains("sslmode=allow"), "{err}");
    }

    #[test]
    fn messages_name_the_place_but_never_the_password() {
        let server =
            Server::parse("postgresql://alice:hunter2@db.example:6543/kms?sslmode=disable")
                .expect("parse");
        assert_eq!(server.place, "alice@db.example:6543/kms");
        let bad = Server::parse("postgresql://alice:hunter2@db.example:x/kms")
            .err()
            .expect("a bad port is refused");
        assert!(!bad.to_string().contains("hunter2"), "{bad}");
    }

    #[test]
    fn verify_modes_need_a_root_certificate() {
        let e = Server::parse("postgresql://h/db?sslmode=verify-full")
            .err()
            .expect("no root");
        assert!(e.to_string().contains("sslrootcert"), "{e}");
        let e = Server::parse("postgresql://h/db?sslmode=verify-ca&sslrootcert=/nonexistent.pem")
            .err()
            .expect("missing file");
        assert!(e.to_string().contains("/nonexistent.pem"), "{e}");
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        for ok in ["kms", "a_1", "_x", &"a".repeat(63)] {
            assert!(check_schema_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1a", "A", "a-b", "a\"b", "a b", &"a".repeat(64)] {
            assert!(check_schema_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prefix_end_is_the_first_id_past_the_prefix() {
        assert_eq!(prefix_end(b""), None);
        assert_eq!(prefix_end(b"k/"), Some(b"k0".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff]), None);
    }

    #[test]
    fn net_changes_keep_the_last_op_on_each_record() {
        let mut b = Batch::new();
        b.put("k", b"a".to_vec(), b"1".to_vec());
        b.delete("k", b"b".to_vec());
        b.put("j", b"a".to_vec(), b"j".to_vec());
        b.put("k", b"a".to_vec(), b"2".to_vec());
        b.put("k", b"b".to_vec(), b"3".to_vec());
        b.put("k", b"c".to_vec(), b"4".to_vec());
        b.delete("k", b"c".to_vec());
        let ops = b.into_ops();
        let (puts, deletes) = net_changes(&ops);
        assert_eq!(
            puts,
            vec![
                ("j", &b"a"[..], &b"j"[..]),
                ("k", &b"a"[..], &b"2"[..]),
                ("k", &b"b"[..], &b"3"[..]),
            ]
        );
        assert_eq!(deletes, vec![("k", &b"c"[..])]);
    }

    #[test]
    fn statements_are_schema_qualified() {
        let sql = Sql::new("s1");
        assert!(sql.put.starts_with("INSERT INTO \"s1\".records"));
        assert!(sql.scan_after_to.contains("id > $2 AND id < $3"));
        assert!(sql.scan_after_to.ends_with("LIMIT $4 OFFSET $5"));
        assert!(sql.scan_from.ends_with("LIMIT $3 OFFSET $4"));
    }
}
