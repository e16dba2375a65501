//! Durability: a writer process is killed with SIGKILL at random moments; after
//! each kill the store reopens cleanly and holds every change the writer
//! acknowledged (it prints a line only after the call returned).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use localkms::{CreateKeyRequest, KeyState, Kms, Paging};

const ROOT: [u8; 32] = [9; 32];

fn open(dir: &Path) -> Kms {
    Kms::builder()
        .sled(dir)
        .root_key_bytes(&ROOT)
        .build()
        .expect("open store")
}

/// The writer's cycle for one key; step `n` leaves the key in `STATES[n]`.
const STATES: [KeyState; 5] = [
    KeyState::Enabled,         // created
    KeyState::Disabled,        // DisableKey
    KeyState::PendingDeletion, // ScheduleKeyDeletion
    KeyState::Enabled,         // CancelKeyDeletion
    KeyState::Disabled,        // DisableKey
];

fn step(kms: &Kms, id: &str, n: usize) {
    match n {
        1 | 4 => kms.disable_key(id).expect("disable"),
        2 => kms.schedule_key_deletion(id, 7).expect("schedule"),
        3 => kms.cancel_key_deletion(id).expect("cancel"),
        _ => unreachable!("steps are 1..=4"),
    }
}

/// The writer: creates keys and walks each through its cycle, printing
/// `ack <key> <step>` after each call returns, until it is killed.
#[test]
fn writer_child() {
    let Some(dir) = std::env::var_os("LOCALKMS_WRITER_DIR") else {
        return;
    };
    let kms = open(Path::new(&dir));
    loop {
        let id = kms
            .create_key(&CreateKeyRequest::default())
            .expect("create")
            .key_id;
        println!("ack {id} 0");
        for n in 1..STATES.len() {
            step(&kms, &id, n);
            println!("ack {id} {n}");
        }
    }
}

fn seed() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("random");
    u64::from_le_bytes(b)
}

#[test]
fn acknowledged_changes_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(open(dir.path()));
    let mut rng = seed();
    eprintln!("seed {rng}");
    // key -> the last acknowledged step
    let mut acked: BTreeMap<String, usize> = BTreeMap::new();
    for round in 0..12 {
        let mut child = Command::new(std::env::current_exe().expect("exe"))
            .args(["--exact", "writer_child", "--nocapture", "--test-threads=1"])
            .env("LOCALKMS_WRITER_DIR", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn writer");
        // Kill after a random number of acknowledgements (xorshift).
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let kill_after = 1 + (rng % 60) as usize;
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut seen = 0;
        while seen < kill_after {
            let Some(Ok(line)) = lines.next() else { break };
            let Some(ack) = line.split("ack ").nth(1) else {
                continue;
            };
            let mut parts = ack.split(' ');
            let (id, n) = (parts.next().expect("id"), parts.next().expect("step"));
            acked.insert(id.to_owned(), n.parse().expect("step number"));
            seen += 1;
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        assert_eq!(seen, kill_after, "round {round}: the writer died early");
        // The writer ran on until the kill: take every acknowledgement it
        // printed before dying (a torn last line is ignored).
        for line in lines.map_while(Result::ok) {
            let Some(ack) = line.split("ack ").nth(1) else {
                continue;
            };
            let mut parts = ack.split(' ');
            if let (Some(id), Some(Ok(n))) = (parts.next(), parts.next().map(str::parse::<usize>))
                && id.len() == 36
                && n < STATES.len()
            {
                acked.insert(id.to_owned(), n);
            }
        }

        let kms = open(dir.path());
        for (id, &n) in &acked {
            let state = kms
                .describe_key(id)
                .unwrap_or_else(|e| panic!("round {round}: acknowledged key {id} is lost: {e}"))
                .key_state;
            // The change after the last acknowledged one may have landed too.
            let next = STATES.get(n + 1).copied().unwrap_or(STATES[n]);
            assert!(
                state == STATES[n] || state == next,
                "round {round}: key {id} acknowledged at step {n} is {state}"
            );
        }
        let listed = kms
            .list_keys(Paging::new(1, 100).expect("paging"))
            .expect("list");
        assert!(
            listed.total_count as usize >= acked.len(),
            "round {round}: keys missing from ListKeys"
        );
        // Finish every key's cycle so the next round starts from known states.
        for (id, n) in acked.iter_mut() {
            let state = kms.describe_key(id).expect("describe").key_state;
            if state != STATES[*n] {
                *n += 1; // the unacknowledged next step had landed
            }
            while *n + 1 < STATES.len() {
                *n += 1;
                step(&kms, id, *n);
            }
        }
    }
    assert!(
        acked.len() >= 12,
        "every round acknowledged at least one key"
    );
}
