//! Durability of PutSecretValue: a writer process stores versions and is
//! killed with SIGKILL at random moments; after each kill the store reopens
//! and holds every version the writer acknowledged (it prints a line only
//! after the call returned), with its value. Rounds: `LOCALKMS_KILL_ROUNDS`
//! (default 10).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use localkms::{CreateSecretRequest, GetSecretValueRequest, Kms, PutSecretValueRequest};

const ROOT: [u8; 32] = [11; 32];

fn open(dir: &Path) -> Kms {
    Kms::builder()
        .sled(dir)
        .root_key_bytes(&ROOT)
        .build()
        .expect("open store")
}

fn value(secret: &str, version: u64) -> Vec<u8> {
    format!("{secret}:{version}:").repeat(40).into_bytes()
}

/// The writer: per process, one new secret, then versions 1, 2, ... of it,
/// printing `ack <secret> <version>` after each call returns, until killed.
#[test]
fn secret_writer_child() {
    let Some(dir) = std::env::var_os("LOCALKMS_SECRET_WRITER_DIR") else {
        return;
    };
    let name = std::env::var("LOCALKMS_SECRET_NAME").expect("name");
    let kms = open(Path::new(&dir));
    let req = CreateSecretRequest {
        version_id: Some("0".into()),
        ..CreateSecretRequest::new(name.clone())
    };
    kms.create_secret(&req, &value(&name, 0)).expect("create");
    println!("ack {name} 0");
    for n in 1.. {
        kms.put_secret_value(
            &name,
            &value(&name, n),
            &PutSecretValueRequest::version(n.to_string()),
        )
        .expect("put");
        println!("ack {name} {n}");
    }
}

fn seed() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("random");
    u64::from_le_bytes(b)
}

#[test]
fn acknowledged_versions_survive_sigkill() {
    let rounds: usize = std::env::var("LOCALKMS_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().expect("tempdir");
    drop(open(dir.path()));
    let mut rng = seed();
    eprintln!("seed {rng}");
    // secret -> the last acknowledged version
    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    for round in 0..rounds {
        let name = format!("s{round}");
        let mut child = Command::new(std::env::current_exe().expect("exe"))
            .args([
                "--exact",
                "secret_writer_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("LOCALKMS_SECRET_WRITER_DIR", dir.path())
            .env("LOCALKMS_SECRET_NAME", &name)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn writer");
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let kill_after = 1 + (rng % 30) as usize;
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut seen = 0;
        let parse = |line: &str| -> Option<(String, u64)> {
            let ack = line.split("ack ").nth(1)?;
            let mut parts = ack.split(' ');
            let (s, n) = (parts.next()?, parts.next()?.parse().ok()?);
            Some((s.to_owned(), n))
        };
        while seen < kill_after {
            let Some(Ok(line)) = lines.next() else { break };
            if let Some((s, n)) = parse(&line) {
                acked.insert(s, n);
                seen += 1;
            }
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        assert_eq!(seen, kill_after, "round {round}: the writer died early");
        for line in lines.map_while(Result::ok) {
            if let Some((s, n)) = parse(&line)
                && s == name
            {
                acked.insert(s, n);
            }
        }

        let kms = open(dir.path());
        for (secret, &last) in &acked {
            // At most ten versions are kept: check the last ones.
            for n in last.saturating_sub(8)..=last {
                let v = kms
                    .get_secret_value(secret, &GetSecretValueRequest::version(n.to_string()))
                    .unwrap_or_else(|e| {
                        panic!("round {round}: acknowledged {secret} version {n} is lost: {e}")
                    });
                assert_eq!(v.secret_data.expose_secret(), value(secret, n).as_slice());
            }
            // The put after the last acknowledged one may have landed too.
            let current = kms
                .get_secret_value(secret, &GetSecretValueRequest::default())
                .expect("current")
                .version_id;
            assert!(
                current == last.to_string() || current == (last + 1).to_string(),
                "round {round}: {secret} acknowledged at {last} is current at {current}"
            );
        }
    }
    assert_eq!(acked.len(), rounds);
}
