//! Several OS processes on one throwaway PostgreSQL database (SPEC 10).
//!
//! The children are this test binary run again (`child_process_entry`, with
//! `LOCALKMS_MP_ROLE` naming what to do). Each child prints one line per
//! acknowledged operation, `@@ ...`, flushed before the next operation, so
//! the parent knows exactly what was acknowledged, even of a child killed
//! with SIGKILL. The parent and the children synchronise through files in a
//! temporary directory (a child polls for a file to appear); nothing here
//! asserts on time, and the cache bound is shown on a `ManualClock`.
//!
//! `LOCALKMS_KILL_ROUNDS` sets how many writers are killed (default 10).

#[path = "support/pg.rs"]
mod pg;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use localkms::store::PostgresKeystore;
use localkms::{
    CreateKeyRequest, EncryptionContext, Error, KeyState, Kms, ManualClock, Paging, Tag,
};
use pg::PgServer;

const ROOT: [u8; 32] = [0x4d; 32];

const ROLE: &str = "LOCALKMS_MP_ROLE";
const URL: &str = "LOCALKMS_MP_URL";
const SCHEMA: &str = "LOCALKMS_MP_SCHEMA";
const ID: &str = "LOCALKMS_MP_ID";
const DIR: &str = "LOCALKMS_MP_DIR";
/// `cache_ttl` in milliseconds (the library's default when unset).
const TTL_MS: &str = "LOCALKMS_MP_TTL_MS";
/// A `ManualClock` starting at these unix seconds (the system clock when
/// unset).
const CLOCK: &str = "LOCALKMS_MP_CLOCK";
const MAX_KEYS: &str = "LOCALKMS_MP_MAX_KEYS";
/// Key ids, comma-separated.
const KEYS: &str = "LOCALKMS_MP_KEYS";
/// How many iterations or rounds.
const COUNT: &str = "LOCALKMS_MP_COUNT";

/// The start of the children's `ManualClock`.
const START: i64 = 1_700_000_000;

/// A hang guard for the parent's waits (a failing child is noticed at once;
/// this only ends a wait that would otherwise never end).
const HANG: Duration = Duration::from_secs(300);

// ---------------------------------------------------------------- parent side

fn server() -> Option<&'static PgServer> {
    static SERVER: OnceLock<Option<PgServer>> = OnceLock::new();
    SERVER.get_or_init(PgServer::start).as_ref()
}

/// A schema name no other test uses.
fn schema(test: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("mp_{test}_{}", N.fetch_add(1, Ordering::Relaxed))
}

/// The parent's own service on the schema: reads through (`cache_ttl` 0).
fn open(url: &str, schema: &str) -> Kms {
    Kms::builder()
        .keystore(PostgresKeystore::connect(url, schema).expect("connect"))
        .root_key_bytes(&ROOT)
        .cache_ttl(Duration::ZERO)
        .build()
        .expect("build")
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("random");
    u64::from_le_bytes(b)
}

/// One acknowledged line: its words.
type Line = Vec<String>;

/// The `@@` lines of a child's output, complete lines only.
fn read_acks(path: &Path) -> Vec<Line> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .lines()
        .filter_map(|l| l.split_once("@@ ").map(|(_, rest)| rest))
        .map(|rest| rest.split_whitespace().map(str::to_owned).collect())
        .collect()
}

struct Proc {
    child: Child,
    out: PathBuf,
    err: PathBuf,
    name: String,
    status: Option<ExitStatus>,
}

/// The children of one test; every one still running is killed on drop, so
/// a failing test leaves none behind.
struct Procs {
    dir: tempfile::TempDir,
    procs: Vec<Proc>,
}

impl Drop for Procs {
    fn drop(&mut self) {
        for p in &mut self.procs {
            if p.status.is_none() {
                let _ = p.child.kill();
                let _ = p.child.wait();
            }
        }
    }
}

impl Procs {
    fn new() -> Self {
        Self {
            dir: tempfile::Builder::new()
                .prefix("localkms-mp-")
                .tempdir()
                .expect("tempdir"),
            procs: Vec::new(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Creates the file `name`, which children poll for.
    fn signal(&self, name: &str) {
        File::create(self.path(name)).expect("create a signal file");
    }

    /// Starts a child in `role` with `vars`; returns its index.
    fn spawn(&mut self, role: &str, url: &str, schema: &str, vars: &[(&str, String)]) -> usize {
        let i = self.procs.len();
        let name = format!("{role}-{i}");
        let out = self.path(&format!("{name}.out"));
        let err = self.path(&format!("{name}.err"));
        let child = Command::new(std::env::current_exe().expect("current exe"))
            .args([
                "--exact",
                "child_process_entry",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROLE, role)
            .env(URL, url)
            .env(SCHEMA, schema)
            .env(ID, i.to_string())
            .env(DIR, self.dir.path())
            .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(File::create(&out).expect("child stdout file"))
            .stderr(File::create(&err).expect("child stderr file"))
            .spawn()
            .expect("spawn a child");
        self.procs.push(Proc {
            child,
            out,
            err,
            name,
            status: None,
        });
        i
    }

    fn acks(&self, i: usize) -> Vec<Line> {
        read_acks(&self.procs[i].out)
    }

    fn report(&self, i: usize) -> String {
        let p = &self.procs[i];
        format!(
            "{} ({:?})\n--- stdout\n{}\n--- stderr\n{}",
            p.name,
            p.status,
            std::fs::read_to_string(&p.out).unwrap_or_default(),
            std::fs::read_to_string(&p.err).unwrap_or_default()
        )
    }

    /// Waits until `done(i, acks)` holds for every child `i` in `which`; a
    /// child that exits first fails the test.
    fn wait_until(&mut self, which: &[usize], what: &str, done: impl Fn(usize, &[Line]) -> bool) {
        let start = Instant::now();
        loop {
            let mut all = true;
            for &i in which {
                if done(i, &self.acks(i)) {
                    continue;
                }
                all = false;
                if let Some(status) = self.procs[i].child.try_wait().expect("try_wait") {
                    self.procs[i].status = Some(status);
                    // It may have printed the awaited line just before exiting.
                    if !done(i, &self.acks(i)) {
                        panic!("child exited before {what}: {}", self.report(i));
                    }
                }
            }
            if all {
                return;
            }
            assert!(
                start.elapsed() < HANG,
                "hang guard: children never reached {what}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits for every child `which` to exit, successfully; their acks.
    fn finish(&mut self, which: &[usize]) -> Vec<Vec<Line>> {
        for &i in which {
            let status = self.procs[i].child.wait().expect("wait");
            self.procs[i].status = Some(status);
            assert!(status.success(), "child failed: {}", self.report(i));
        }
        which.iter().map(|&i| self.acks(i)).collect()
    }

    /// SIGKILLs child `i` and reaps it.
    fn kill(&mut self, i: usize) {
        let p = &mut self.procs[i];
        let _ = p.child.kill();
        p.status = Some(p.child.wait().expect("wait"));
    }

    fn all(&self) -> Vec<usize> {
        (0..self.procs.len()).collect()
    }
}

/// A count of lines whose first word is `word`.
fn count(lines: &[Line], word: &str) -> usize {
    lines.iter().filter(|l| l[0] == word).count()
}

/// What acknowledged lines say must be in the store (lines from any role:
/// `key ID`, `state ID Enabled|Disabled`, `alias NAME ID`,
/// `tag ID TAGKEY VALUE`, `ct ID PLAINTEXT BASE64`).
#[derive(Default)]
struct Expected {
    /// Every key named, with its last acknowledged state.
    states: BTreeMap<String, KeyState>,
    created: usize,
    aliases: Vec<(String, String)>,
    tags: BTreeMap<(String, String), String>,
    cts: Vec<(String, String, String)>,
}

impl Expected {
    fn from_lines<'a>(lines: impl IntoIterator<Item = &'a Line>) -> Self {
        let mut e = Self::default();
        for l in lines {
            match l[0].as_str() {
                "key" => {
                    e.created += 1;
                    e.states.entry(l[1].clone()).or_insert(KeyState::Enabled);
                }
                "state" => {
                    let s = match l[2].as_str() {
                        "Disabled" => KeyState::Disabled,
                        _ => KeyState::Enabled,
                    };
                    e.states.insert(l[1].clone(), s);
                }
                "alias" => e.aliases.push((l[1].clone(), l[2].clone())),
                "tag" => {
                    e.tags.insert((l[1].clone(), l[2].clone()), l[3].clone());
                }
                "ct" => e.cts.push((l[1].clone(), l[2].clone(), l[3].clone())),
                _ => {}
            }
        }
        e
    }

    /// Every acknowledged change is visible in `kms`, and every
    /// acknowledged ciphertext decrypts to its plaintext. Returns how many
    /// facts were checked.
    fn check(&self, kms: &Kms, who: &str) -> usize {
        for (key, state) in &self.states {
            let meta = kms
                .describe_key(key)
                .unwrap_or_else(|e| panic!("{who}: acknowledged key {key} lost: {e}"));
            assert_eq!(&meta.key_state, state, "{who}: the state of {key}");
        }
        for (alias, key) in &self.aliases {
            let meta = kms
                .describe_key(alias)
                .unwrap_or_else(|e| panic!("{who}: acknowledged alias {alias} lost: {e}"));
            assert_eq!(&meta.key_id, key, "{who}: {alias} points elsewhere");
        }
        for ((key, tag_key), value) in &self.tags {
            let tags = kms.list_resource_tags(key).expect("list tags");
            assert!(
                tags.iter()
                    .any(|t| &t.tag_key == tag_key && &t.tag_value == value),
                "{who}: tag {tag_key}={value} on {key} missing: {tags:?}"
            );
        }
        for (key, plaintext, blob) in &self.cts {
            let blob = base64::engine::general_purpose::STANDARD
                .decode(blob)
                .expect("base64");
            let d = kms
                .decrypt(&blob, &EncryptionContext::default())
                .unwrap_or_else(|e| panic!("{who}: an acknowledged ciphertext of {key}: {e}"));
            assert_eq!(&d.key_id, key);
            assert_eq!(d.plaintext.expose_secret(), plaintext.as_bytes());
        }
        self.states.len() + self.aliases.len() + self.tags.len() + self.cts.len()
    }
}

fn assert_verify_clean(kms: &Kms) {
    let report = kms.verify().expect("verify");
    assert!(report.is_ok(), "verify: {report}");
}

/// All keys of `kms` (by ListKeys).
fn all_keys(kms: &Kms) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for page in 1.. {
        let p = kms
            .list_keys(Paging::new(page, 100).expect("paging"))
            .expect("list keys");
        if p.items.is_empty() {
            break;
        }
        keys.extend(p.items.into_iter().map(|k| k.key_id));
    }
    keys
}

// ----------------------------------------------------------------- the tests

#[test]
fn mixed_operations_from_four_processes_are_all_visible_everywhere() {
    let Some(server) = server() else { return };
    let (url, schema) = (server.url(), schema("mixed"));
    let kms = open(&url, &schema);
    let shared: Vec<String> = (0..4)
        .map(|_| kms.create_key(&Default::default()).expect("create").key_id)
        .collect();
    let mut procs = Procs::new();
    for i in 0..4 {
        // Two read through, two cache for 1 s on a clock of their own.
        let mut vars = vec![(KEYS, shared.join(",")), (COUNT, "8".to_owned())];
        if i < 2 {
            vars.push((TTL_MS, "0".to_owned()));
        } else {
            vars.push((TTL_MS, "1000".to_owned()));
            vars.push((CLOCK, START.to_string()));
        }
        procs.spawn("mixed", &url, &schema, &vars);
    }
    let all = procs.all();
    procs.wait_until(&all, "done", |_, l| l.iter().any(|w| w[0] == "done"));

    // Every child's acknowledged changes, handed to all of them.
    let lines: Vec<Line> = all.iter().flat_map(|&i| procs.acks(i)).collect();
    let text: String = lines.iter().map(|l| l.join(" ") + "\n").collect();
    std::fs::write(procs.path("acks.tmp"), text).expect("write acks");
    std::fs::rename(procs.path("acks.tmp"), procs.path("acks")).expect("publish acks");
    let outputs = procs.finish(&all);
    for out in &outputs {
        assert_eq!(count(out, "verified"), 1, "{out:?}");
    }

    let expected = Expected::from_lines(&lines);
    assert_eq!(expected.created, 4 * 8);
    assert!(!expected.cts.is_empty());
    let checked = expected.check(&kms, "parent");
    assert_eq!(kms.key_count().expect("count"), 4 + 4 * 8);
    assert_eq!(
        kms.list_aliases(Paging::default())
            .expect("aliases")
            .total_count,
        4 * 8
    );
    assert_verify_clean(&kms);
    eprintln!(
        "mixed: 4 processes, {} acknowledged operations, {checked} facts checked in each of 5 processes",
        lines.len()
    );
}

#[test]
fn of_processes_racing_to_create_one_alias_exactly_one_wins() {
    let Some(server) = server() else { return };
    let (url, schema) = (server.url(), schema("race"));
    let kms = open(&url, &schema);
    const N: usize = 6;
    const ROUNDS: usize = 5;
    let mut procs = Procs::new();
    for _ in 0..N {
        procs.spawn("race", &url, &schema, &[(COUNT, ROUNDS.to_string())]);
    }
    let all = procs.all();
    for r in 0..ROUNDS {
        let ready = ["ready".to_owned(), r.to_string()];
        procs.wait_until(&all, "ready", |_, l| l.iter().any(|w| w[..] == ready));
        procs.signal(&format!("go{r}"));
    }
    let outputs = procs.finish(&all);
    let key_of: Vec<&String> = outputs
        .iter()
        .map(|out| &out.iter().find(|l| l[0] == "key").expect("a key")[1])
        .collect();
    for r in 0..ROUNDS {
        let r_text = r.to_string();
        let outcome = |out: &[Line], word: &str| out.iter().any(|l| l[0] == word && l[1] == r_text);
        let winners: Vec<usize> = (0..N).filter(|&i| outcome(&outputs[i], "won")).collect();
        let losers = (0..N).filter(|&i| outcome(&outputs[i], "lost")).count();
        assert_eq!(winners.len(), 1, "round {r}: {outputs:?}");
        assert_eq!(losers, N - 1, "round {r}: {outputs:?}");
        let meta = kms
            .describe_key(&format!("alias/race{r}"))
            .expect("the alias");
        assert_eq!(
            &meta.key_id, key_of[winners[0]],
            "round {r}: the winner's key"
        );
    }
    assert_eq!(
        kms.list_aliases(Paging::default())
            .expect("aliases")
            .total_count,
        ROUNDS as u64
    );
    assert_verify_clean(&kms);
}

#[test]
fn max_keys_holds_exactly_across_processes() {
    let Some(server) = server() else { return };
    let (url, schema) = (server.url(), schema("max"));
    const M: u64 = 13;
    let kms = open(&url, &schema);
    let mut procs = Procs::new();
    for _ in 0..5 {
        procs.spawn("max", &url, &schema, &[(MAX_KEYS, M.to_string())]);
    }
    let all = procs.all();
    procs.wait_until(&all, "ready", |_, l| l.iter().any(|w| w[0] == "ready"));
    procs.signal("go");
    let outputs = procs.finish(&all);
    let acked: Vec<&String> = outputs
        .iter()
        .flatten()
        .filter(|l| l[0] == "key")
        .map(|l| &l[1])
        .collect();
    for out in &outputs {
        assert_eq!(
            count(out, "refused"),
            1,
            "every creator was refused once: {out:?}"
        );
    }
    assert_eq!(acked.len() as u64, M, "acknowledged creates");
    assert_eq!(kms.key_count().expect("count"), M, "keys in the store");
    let listed = all_keys(&kms);
    let acked: BTreeSet<String> = acked.into_iter().cloned().collect();
    assert_eq!(listed, acked, "the keys are exactly the acknowledged ones");
    assert_verify_clean(&kms);
}

#[test]
fn a_disable_in_one_process_is_honoured_by_the_others_within_the_bound() {
    let Some(server) = server() else { return };
    let (url, schema) = (server.url(), schema("disable"));
    let kms = open(&url, &schema);
    let key = kms.create_key(&Default::default()).expect("create").key_id;
    let mut procs = Procs::new();
    for i in 0..4 {
        let mut vars = vec![(KEYS, key.clone())];
        if i % 2 == 0 {
            vars.push((TTL_MS, "0".to_owned()));
        } else {
            vars.push((TTL_MS, "1000".to_owned()));
            vars.push((CLOCK, START.to_string()));
        }
        procs.spawn("disable", &url, &schema, &vars);
    }
    let all = procs.all();
    procs.wait_until(&all, "ready", |_, l| l.iter().any(|w| w[0] == "ready"));
    kms.disable_key(&key).expect("disable");
    procs.signal("disabled");
    procs.wait_until(&all, "refused", |_, l| l.iter().any(|w| w[0] == "refused"));
    kms.enable_key(&key).expect("enable");
    procs.signal("enabled");
    for out in procs.finish(&all) {
        assert_eq!(count(&out, "reenabled"), 1, "{out:?}");
    }
}

fn kill_rounds() -> usize {
    std::env::var("LOCALKMS_KILL_ROUNDS")
        .ok()
        .map(|v| v.parse().expect("LOCALKMS_KILL_ROUNDS: a number"))
        .unwrap_or(10)
}

#[test]
fn a_writer_killed_at_random_moments_loses_nothing_acknowledged() {
    let Some(server) = server() else { return };
    let (url, schema) = (server.url(), schema("kill"));
    drop(open(&url, &schema));
    let rounds = kill_rounds();
    let mut procs = Procs::new();
    let mut everything: Vec<Line> = Vec::new();
    let mut random_kills = 0;
    for round in 0..rounds {
        let i = procs.spawn("writer", &url, &schema, &[]);
        // After a random number of acknowledged operations, and then a
        // random part of the next one.
        let after = 1 + (random_u64() % 8) as usize;
        procs.wait_until(&[i], "some writes", |_, l| l.len() >= after);
        std::thread::sleep(Duration::from_micros(random_u64() % 3000));
        procs.kill(i);
        let status = procs.procs[i].status.expect("reaped");
        if status.code().is_none() {
            random_kills += 1;
        }
        let acks = procs.acks(i);
        assert!(acks.len() >= after);
        // A fresh service on the database: whole, and nothing lost.
        let kms = open(&url, &schema);
        assert_verify_clean(&kms);
        Expected::from_lines(&acks).check(&kms, &format!("round {round}"));
        everything.extend(acks);
    }
    let kms = open(&url, &schema);
    assert_verify_clean(&kms);
    let expected = Expected::from_lines(&everything);
    expected.check(&kms, "at the end");
    let in_store = kms.key_count().expect("count") as usize;
    // At most one unacknowledged key per kill (a create cut off after its commit).
    assert!(in_store >= expected.created && in_store <= expected.created + rounds);
    assert_eq!(random_kills, rounds, "every writer died of SIGKILL");
    eprintln!(
        "kill -9: {rounds} rounds, {} acknowledged operations ({} CreateKey, {} Encrypt), {} keys in the store, lost 0",
        everything.len(),
        expected.created,
        expected.cts.len(),
        in_store
    );
}

#[test]
fn killing_the_server_mid_run_gives_errors_and_service_resumes() {
    // Its own server: this test stops it.
    let Some(server) = PgServer::start() else {
        return;
    };
    let (url, schema) = (server.url(), "outage".to_owned());
    let kms = open(&url, &schema);
    let shared = kms.create_key(&Default::default()).expect("create").key_id;
    drop(kms);
    let mut procs = Procs::new();
    for _ in 0..3 {
        procs.spawn(
            "outage",
            &url,
            &schema,
            &[(KEYS, shared.clone()), (TTL_MS, "0".to_owned())],
        );
    }
    let all = procs.all();
    procs.wait_until(&all, "writes before the stop", |_, l| count(l, "ct") >= 3);
    server.stop();
    procs.wait_until(&all, "errors while down", |_, l| count(l, "err") >= 2);
    let marks: Vec<usize> = all.iter().map(|&i| procs.acks(i).len()).collect();
    server.start_again();
    procs.wait_until(&all, "writes after the restart", |i, l| {
        l.len() > marks[i] && count(&l[marks[i]..], "ct") >= 3 && count(&l[marks[i]..], "key") >= 3
    });
    procs.signal("stop");
    let outputs = procs.finish(&all);
    let lines: Vec<Line> = outputs.iter().flatten().cloned().collect();
    for l in lines.iter().filter(|l| l[0] == "err") {
        assert_eq!(l[1], "InternalFailure", "{l:?}");
    }
    let kms = open(&url, &schema);
    assert_verify_clean(&kms);
    let expected = Expected::from_lines(&lines);
    let checked = expected.check(&kms, "after the restart");
    eprintln!(
        "server outage: 3 processes, {} acknowledged operations, {} errors, {checked} facts checked",
        lines
            .iter()
            .filter(|l| l[0] != "err" && l[0] != "done")
            .count(),
        count(&lines, "err")
    );
}

#[test]
fn a_backup_taken_while_other_processes_write_is_a_consistent_snapshot() {
    let Some(server) = server() else { return };
    let (url, schema) = (server.url(), schema("backup"));
    let kms = open(&url, &schema);
    let mut procs = Procs::new();
    for _ in 0..3 {
        procs.spawn("writer", &url, &schema, &[]);
    }
    let all = procs.all();
    let mut seen = vec![0usize; all.len()];
    let mut last_seq = 0;
    for b in 0..3 {
        let need = seen.clone();
        procs.wait_until(&all, "more writes", |i, l| l.len() >= need[i] + 4);
        // Acknowledged before the backup began: must be in it.
        let before: Vec<Line> = all.iter().flat_map(|&i| procs.acks(i)).collect();
        for &i in &all {
            seen[i] = procs.acks(i).len();
        }
        // verify reads one snapshot too: clean while the others write.
        assert_verify_clean(&kms);
        let mut bytes = Vec::new();
        let info = kms.backup(&mut bytes).expect("backup");
        let restored = Kms::builder()
            .in_memory()
            .root_key_bytes(&ROOT)
            .restore(&bytes[..])
            .build()
            .expect("restore");
        assert_verify_clean(&restored);
        let expected = Expected::from_lines(&before);
        expected.check(&restored, &format!("backup {b}"));
        let keys = restored.key_count().expect("count") as usize;
        assert!(keys >= expected.created, "backup {b}: {keys} keys");
        // The backup's sequence is the snapshot's, not this process's last
        // commit (it made none).
        assert_eq!(restored.verify().expect("verify").head_seq, info.seq);
        assert!(
            info.seq > last_seq,
            "backup {b}: seq {} after {last_seq}",
            info.seq
        );
        last_seq = info.seq;
    }
    for i in all {
        procs.kill(i);
    }
    assert_verify_clean(&open(&url, &schema));
}

// ----------------------------------------------------------------- children

/// The children's entry: returns at once unless `LOCALKMS_MP_ROLE` is set.
#[test]
fn child_process_entry() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    // A fresh line: the harness may have started one without ending it.
    println!();
    match role.as_str() {
        "mixed" => child_mixed(),
        "race" => child_race(),
        "max" => child_max(),
        "disable" => child_disable(),
        "writer" => child_writer(),
        "outage" => child_outage(),
        other => panic!("unknown role {other}"),
    }
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

fn number(name: &str) -> u64 {
    var(name).parse().expect("a number")
}

/// Prints one acknowledged line and flushes it.
fn ack(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "@@ {line}").expect("stdout");
    out.flush().expect("flush stdout");
}

/// Ends this child when its parent is gone (it was killed, not dropped).
fn parent_alive(parent: u32) {
    if std::os::unix::process::parent_id() != parent {
        std::process::exit(3);
    }
}

fn dir_file(name: &str) -> PathBuf {
    Path::new(&var(DIR)).join(name)
}

/// Polls for the file `name` in the shared directory.
fn wait_for_file(name: &str) {
    let parent = std::os::unix::process::parent_id();
    let path = dir_file(name);
    while !path.exists() {
        parent_alive(parent);
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn child_kms() -> (Kms, Option<ManualClock>, u64) {
    let store = PostgresKeystore::connect(&var(URL), &var(SCHEMA))
        .expect("connect")
        .pool_size(2);
    let mut builder = Kms::builder().keystore(store).root_key_bytes(&ROOT);
    let ttl = std::env::var(TTL_MS).map_or(1000, |v| v.parse().expect("a number"));
    builder = builder.cache_ttl(Duration::from_millis(ttl));
    if std::env::var(MAX_KEYS).is_ok() {
        builder = builder.max_keys(number(MAX_KEYS));
    }
    let clock = std::env::var(CLOCK)
        .ok()
        .map(|v| ManualClock::new(v.parse().expect("a number")));
    if let Some(c) = &clock {
        builder = builder.clock(c.clone());
    }
    (builder.build().expect("build"), clock, ttl)
}

fn b64(blob: &localkms::CiphertextBlob) -> String {
    blob.to_base64()
}

fn is(code: &str, r: &Result<impl std::fmt::Debug, Error>) -> bool {
    matches!(r, Err(e) if e.code() == code)
}

fn child_mixed() {
    let (kms, clock, ttl) = child_kms();
    let id: usize = var(ID).parse().expect("id");
    let shared: Vec<String> = var(KEYS).split(',').map(str::to_owned).collect();
    let mine = &shared[id % shared.len()];
    let ctx = EncryptionContext::default();
    for j in 0..number(COUNT) as usize {
        let req = CreateKeyRequest {
            description: format!("c{id}-{j}"),
            ..Default::default()
        };
        let key = kms.create_key(&req).expect("create").key_id;
        ack(format_args!("key {key}"));
        let alias = format!("alias/c{id}_{j}");
        kms.create_alias(&alias, &key).expect("create alias");
        ack(format_args!("alias {alias} {key}"));
        let other = &shared[(id + j) % shared.len()];
        let tag = Tag::new(format!("c{id}"), j.to_string()).expect("tag");
        kms.tag_resource(other, &[tag]).expect("tag a shared key");
        ack(format_args!("tag {other} c{id} {j}"));
        for s in &shared {
            let plaintext = format!("c{id}-{j}");
            match kms.encrypt(s, plaintext.as_bytes(), &ctx) {
                Ok(r) => ack(format_args!(
                    "ct {} {plaintext} {}",
                    r.key_id,
                    b64(&r.ciphertext_blob)
                )),
                // Another process has it disabled for a moment.
                r if is("Rejected.Disabled", &r) => ack(format_args!("refused {s}")),
                Err(e) => panic!("encrypt with {s}: {e}"),
            }
        }
        if j % 2 == 1 {
            kms.disable_key(&key).expect("disable my key");
            ack(format_args!("state {key} Disabled"));
        }
        if j % 3 == 0 {
            kms.disable_key(mine).expect("disable a shared key");
            ack(format_args!("state {mine} Disabled"));
            kms.enable_key(mine).expect("enable a shared key");
            ack(format_args!("state {mine} Enabled"));
        }
    }
    ack(format_args!("done"));

    // Everyone's acknowledged changes, seen from here once the bound passed.
    wait_for_file("acks");
    if let Some(c) = &clock {
        c.advance_millis(i64::try_from(ttl).expect("ttl"));
    }
    let text = std::fs::read_to_string(dir_file("acks")).expect("read acks");
    let lines: Vec<Line> = text
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect();
    let checked = Expected::from_lines(&lines).check(&kms, &format!("child {id}"));
    ack(format_args!("verified {checked}"));
}

fn child_race() {
    let (kms, _, _) = child_kms();
    let key = kms.create_key(&Default::default()).expect("create").key_id;
    ack(format_args!("key {key}"));
    for r in 0..number(COUNT) {
        ack(format_args!("ready {r}"));
        wait_for_file(&format!("go{r}"));
        match kms.create_alias(&format!("alias/race{r}"), &key) {
            Ok(()) => ack(format_args!("won {r}")),
            r2 if is("AliasAlreadyExists", &r2) => ack(format_args!("lost {r}")),
            Err(e) => panic!("create alias: {e}"),
        }
    }
}

fn child_max() {
    let (kms, _, _) = child_kms();
    ack(format_args!("ready"));
    wait_for_file("go");
    loop {
        match kms.create_key(&Default::default()) {
            Ok(m) => ack(format_args!("key {}", m.key_id)),
            r if is("Rejected.LimitExceeded", &r) => {
                ack(format_args!("refused"));
                return;
            }
            Err(e) => panic!("create: {e}"),
        }
    }
}

fn child_disable() {
    let (kms, clock, ttl) = child_kms();
    let key = var(KEYS);
    let ctx = EncryptionContext::default();
    let encrypt = || kms.encrypt(&key, b"x", &ctx).map(|_| ());
    encrypt().expect("enabled: and now cached");
    ack(format_args!("ready"));
    let pass_the_bound = || {
        if let Some(c) = &clock {
            c.advance_millis(i64::try_from(ttl).expect("ttl"));
        }
    };
    wait_for_file("disabled");
    pass_the_bound();
    let r = encrypt();
    assert!(
        is("Rejected.Disabled", &r),
        "DisableKey in another process not honoured within {ttl} ms: {r:?}"
    );
    ack(format_args!("refused"));
    wait_for_file("enabled");
    pass_the_bound();
    encrypt().expect("EnableKey in another process honoured within the bound");
    ack(format_args!("reenabled"));
}

/// CreateKey + Encrypt with it, acknowledged, until killed.
fn child_writer() {
    let (kms, _, _) = child_kms();
    let parent = std::os::unix::process::parent_id();
    let id = var(ID);
    let ctx = EncryptionContext::default();
    for j in 0.. {
        parent_alive(parent);
        let key = kms.create_key(&Default::default()).expect("create").key_id;
        ack(format_args!("key {key}"));
        let plaintext = format!("w{id}-{j}");
        let r = kms
            .encrypt(&key, plaintext.as_bytes(), &ctx)
            .expect("encrypt");
        ack(format_args!(
            "ct {key} {plaintext} {}",
            b64(&r.ciphertext_blob)
        ));
    }
}

/// Operations until the file `stop` appears; while the server is down every
/// operation must fail with a retryable storage error, never panic or give a
/// wrong answer.
fn child_outage() {
    let (kms, _, _) = child_kms();
    let parent = std::os::unix::process::parent_id();
    let shared = var(KEYS);
    let id = var(ID);
    let ctx = EncryptionContext::default();
    let stop = dir_file("stop");
    let mut last: Option<(String, Vec<u8>)> = None;
    let failed = |e: Error| {
        assert!(
            e.code() == "InternalFailure" && e.is_retryable(),
            "not a clean, retryable failure: {e:?}"
        );
        ack(format_args!(
            "err {} {}",
            e.code(),
            e.to_string().replace(' ', "_")
        ));
        std::thread::sleep(Duration::from_millis(5));
    };
    for j in 0.. {
        parent_alive(parent);
        if stop.exists() {
            break;
        }
        match kms.create_key(&Default::default()) {
            Ok(m) => ack(format_args!("key {}", m.key_id)),
            Err(e) => failed(e),
        }
        let plaintext = format!("o{id}-{j}");
        match kms.encrypt(&shared, plaintext.as_bytes(), &ctx) {
            Ok(r) => {
                ack(format_args!(
                    "ct {} {plaintext} {}",
                    r.key_id,
                    b64(&r.ciphertext_blob)
                ));
                last = Some((plaintext, r.ciphertext_blob.into_vec()));
            }
            Err(e) => failed(e),
        }
        if let Some((plaintext, blob)) = &last {
            match kms.decrypt(blob, &ctx) {
                Ok(d) => assert_eq!(
                    d.plaintext.expose_secret(),
                    plaintext.as_bytes(),
                    "a wrong answer"
                ),
                Err(e) => failed(e),
            }
        }
    }
    ack(format_args!("done"));
}
