//! Crash soak: a writer process is killed with SIGKILL over and over while it
//! runs a mix of operations (CreateKey, CreateAlias, BYOK import of known
//! material, ScheduleKeyDeletion, Encrypt, envelope encryption,
//! CreateKeyVersion (rotation) and ReEncrypt). It prints a
//! line only after a call returned. After every kill the store must open
//! cleanly, hold every acknowledged change, and decrypt every acknowledged
//! ciphertext and envelope.
//!
//! `LOCALKMS_SOAK_ROUNDS` sets the number of kills (default 40, which runs in
//! well under a minute in a debug build); for a long run:
//! `LOCALKMS_SOAK_ROUNDS=500 cargo test --release --test soak -- --nocapture`.
#![cfg(any(feature = "test-util", feature = "fuzzing"))]

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine as _;
use localkms::{
    CreateKeyRequest, EncryptionContext, Error, KeyState, Kms, Paging, WrappingAlgorithm,
};

const ROOT: [u8; 32] = [0x3c; 32];

fn open(dir: &Path) -> Result<Kms, Error> {
    Kms::builder().sled(dir).root_key_bytes(&ROOT).build()
}

fn ctx(n: u64) -> EncryptionContext {
    EncryptionContext::from_pairs([("n", n.to_string())]).expect("ctx") // test input
}

/// The plaintext of operation `n`: reproducible, so the log need not hold it.
fn plaintext(n: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (n as usize * 31 + i * 7) as u8 | 1)
        .collect()
}

/// The material imported by operation `n`.
fn material(n: u64) -> [u8; 32] {
    let mut m = [0u8; 32];
    for (i, b) in m.iter_mut().enumerate() {
        *b = (n as u8).wrapping_mul(13) ^ i as u8 ^ 0xa0;
    }
    m
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// The writer: loops over the operation mix until killed. Every line is
/// printed after its call returned; `n` is unique across runs (the child
/// starts at `LOCALKMS_SOAK_START`).
#[test]
fn soak_writer_child() {
    let Some(dir) = std::env::var_os("LOCALKMS_SOAK_DIR") else {
        return;
    };
    let mut n: u64 = std::env::var("LOCALKMS_SOAK_START")
        .expect("start")
        .parse()
        .expect("number");
    let kms = open(Path::new(&dir)).expect("writer opens the store");
    let mut keys: Vec<String> = Vec::new();
    // Generated keys only: imported ones cannot rotate.
    let mut generated: Vec<String> = Vec::new();
    // The last ciphertext this run made: (n, blob).
    let mut last: Option<(u64, localkms::CiphertextBlob)> = None;
    loop {
        n += 1;
        match n % 8 {
            7 if n % 16 == 7 && !generated.is_empty() => {
                let key = &generated[n as usize % generated.len()];
                let v = kms.create_key_version(key).expect("rotate");
                println!("ack rotate {n} {key} {}", v.key_version_id);
            }
            7 if last.is_some() && !keys.is_empty() => {
                let (src, blob) = last.take().expect("checked");
                let dest = &keys[n as usize % keys.len()];
                let r = kms
                    .re_encrypt(&blob, dest, &ctx(src), &ctx(n))
                    .expect("re-encrypt");
                println!(
                    "ack reencrypt {n} {} {} {} {src}",
                    r.key_id, r.key_version_id, r.ciphertext_blob
                );
            }
            0 | 1 => {
                let id = kms
                    .create_key(&CreateKeyRequest::default())
                    .expect("create")
                    .key_id;
                println!("ack create {n} {id}");
                keys.push(id.clone());
                generated.push(id);
            }
            2 if !keys.is_empty() => {
                let key = &keys[n as usize % keys.len()];
                let name = format!("alias/soak-{n}");
                kms.create_alias(&name, key).expect("alias");
                println!("ack alias {n} {name} {key}");
            }
            3 if n % 24 == 3 => {
                let id = support::external(&kms);
                println!("ack create-external {n} {id}");
                support::import(
                    &kms,
                    &id,
                    WrappingAlgorithm::RsaesOaepSha256,
                    &material(n),
                    None,
                )
                .expect("import");
                println!("ack import {n} {id}");
                keys.push(id);
            }
            4 => {
                let id = kms
                    .create_key(&CreateKeyRequest::default())
                    .expect("create")
                    .key_id;
                println!("ack create {n} {id}");
                kms.schedule_key_deletion(&id, 7).expect("schedule");
                println!("ack schedule {n} {id}");
            }
            5 if !keys.is_empty() => {
                let key = &keys[n as usize % keys.len()];
                let env = kms
                    .envelope_encrypt(key, &plaintext(n, 300), &ctx(n))
                    .expect("envelope");
                println!("ack envelope {n} {key} {}", b64().encode(env));
            }
            _ if !keys.is_empty() => {
                let key = &keys[n as usize % keys.len()];
                let r = kms
                    .encrypt(key, &plaintext(n, 40), &ctx(n))
                    .expect("encrypt");
                println!(
                    "ack encrypt {n} {key} {} {}",
                    r.key_version_id, r.ciphertext_blob
                );
                last = Some((n, r.ciphertext_blob));
            }
            _ => {}
        }
    }
}

/// What the writers acknowledged.
#[derive(Default)]
struct Acked {
    /// Key -> state it must be in.
    keys: BTreeMap<String, KeyState>,
    /// Key -> the operation whose material it imported.
    imported: BTreeMap<String, u64>,
    aliases: BTreeMap<String, String>,
    /// (n of the plaintext, n of the context, key, version, blob) of
    /// Encrypt and ReEncrypt.
    blobs: Vec<(u64, u64, String, String, String)>,
    /// (key, version) of CreateKeyVersion.
    versions: Vec<(String, String)>,
    /// (n, key, envelope) of envelope encryption.
    envelopes: Vec<(u64, String, Vec<u8>)>,
    last_n: u64,
}

impl Acked {
    fn record(&mut self, line: &str) {
        let parts: Vec<&str> = line.split(' ').collect();
        let n: u64 = parts[2].parse().expect("n");
        self.last_n = self.last_n.max(n);
        match parts[1] {
            "create" => {
                self.keys.insert(parts[3].into(), KeyState::Enabled);
            }
            "create-external" => {
                self.keys.insert(parts[3].into(), KeyState::PendingImport);
            }
            "import" => {
                self.keys.insert(parts[3].into(), KeyState::Enabled);
                self.imported.insert(parts[3].into(), n);
            }
            "schedule" => {
                self.keys.insert(parts[3].into(), KeyState::PendingDeletion);
            }
            "alias" => {
                self.aliases.insert(parts[3].into(), parts[4].into());
            }
            "encrypt" => {
                self.blobs
                    .push((n, n, parts[3].into(), parts[4].into(), parts[5].into()));
            }
            "reencrypt" => {
                let src: u64 = parts[6].parse().expect("source n");
                self.blobs
                    .push((src, n, parts[3].into(), parts[4].into(), parts[5].into()));
            }
            "rotate" => self.versions.push((parts[3].into(), parts[4].into())),
            "envelope" => self.envelopes.push((
                n,
                parts[3].into(),
                b64().decode(parts[4]).expect("envelope base64"),
            )),
            other => panic!("unknown acknowledgement {other}"),
        }
    }

    /// Every acknowledged change is in the reopened store.
    fn verify(&self, kms: &Kms, round: usize) {
        for (id, &state) in &self.keys {
            let meta = kms
                .describe_key(id)
                .unwrap_or_else(|e| panic!("round {round}: acknowledged key {id} is lost: {e}"));
            // A PendingImport key may have had its import land unacknowledged.
            let ok = meta.key_state == state
                || (state == KeyState::PendingImport && meta.key_state == KeyState::Enabled)
                || (state == KeyState::Enabled && meta.key_state == KeyState::PendingDeletion);
            assert!(
                ok,
                "round {round}: key {id} should be {state}, is {}",
                meta.key_state
            );
        }
        for (id, &n) in &self.imported {
            // The imported material is the known one: a ciphertext made
            // under a key with that material decrypts here.
            let twin = Kms::in_memory().expect("twin");
            let version = kms
                .describe_key(id)
                .expect("imported key")
                .primary_key_version;
            localkms::internal::insecure_insert_fixed_key(&twin, id, &version, &material(n))
                .expect("twin key");
            let blob = twin
                .encrypt(id, b"twin", &EncryptionContext::empty())
                .expect("twin encrypt")
                .ciphertext_blob;
            let opened = kms
                .decrypt(&blob, &EncryptionContext::empty())
                .unwrap_or_else(|e| panic!("round {round}: imported material of {id}: {e}"));
            assert_eq!(opened.plaintext.expose_secret(), b"twin");
        }
        for (name, key) in &self.aliases {
            let meta = kms
                .describe_key(name)
                .unwrap_or_else(|e| panic!("round {round}: acknowledged alias {name}: {e}"));
            assert_eq!(&meta.key_id, key, "round {round}: alias {name}");
        }
        for (n, c, key, version, blob) in &self.blobs {
            let blob = localkms::CiphertextBlob::from_base64(blob)
                .unwrap_or_else(|e| panic!("round {round}: ciphertext {c}: {e}"));
            let d = kms
                .decrypt(&blob, &ctx(*c))
                .unwrap_or_else(|e| panic!("round {round}: ciphertext {c} under {key}: {e}"));
            assert_eq!(d.plaintext.expose_secret(), plaintext(*n, 40).as_slice());
            assert_eq!(&d.key_id, key);
            assert_eq!(&d.key_version_id, version);
        }
        for (key, version) in &self.versions {
            kms.describe_key_version(key, version)
                .unwrap_or_else(|e| panic!("round {round}: version {version} of {key}: {e}"));
        }
        // The newest acknowledged version of each key is primary, or a
        // newer one whose rotation was not acknowledged.
        let mut newest: BTreeMap<&str, &str> = BTreeMap::new();
        for (key, version) in &self.versions {
            newest.insert(key, version);
        }
        for (key, version) in newest {
            let listed = kms
                .list_key_versions(key, Paging::new(1, 100).expect("paging"))
                .expect("versions")
                .items;
            let at = listed
                .iter()
                .position(|v| v.key_version_id == version)
                .expect("listed");
            let primary = kms.describe_key(key).expect("key").primary_key_version;
            assert!(
                listed[at..].iter().any(|v| v.key_version_id == primary),
                "round {round}: {key} went back to an older primary"
            );
        }
        for (n, key, env) in &self.envelopes {
            let out = kms
                .envelope_decrypt(env, &ctx(*n))
                .unwrap_or_else(|e| panic!("round {round}: envelope {n} under {key}: {e}"));
            assert_eq!(out.as_slice(), plaintext(*n, 300).as_slice());
        }
        // The counters agree with the keys that are there.
        let listed = kms
            .list_keys(Paging::new(1, 1).expect("paging"))
            .expect("ListKeys")
            .total_count;
        assert_eq!(kms.key_count().expect("count"), listed, "round {round}");
        assert!(listed as usize >= self.keys.len(), "round {round}");
        let aliases = kms
            .list_aliases(Paging::new(1, 1).expect("paging"))
            .expect("ListAliases")
            .total_count;
        assert!(aliases as usize >= self.aliases.len(), "round {round}");
    }
}

fn rounds() -> usize {
    std::env::var("LOCALKMS_SOAK_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

fn seed() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("random");
    u64::from_le_bytes(b) | 1
}

#[test]
fn acknowledged_changes_survive_repeated_kills() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(open(dir.path()).expect("create the store"));
    let mut rng = seed();
    eprintln!("soak seed {rng}, {} rounds", rounds());
    let mut acked = Acked::default();
    for round in 0..rounds() {
        let mut child = Command::new(std::env::current_exe().expect("exe"))
            .args([
                "--exact",
                "soak_writer_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("LOCALKMS_SOAK_DIR", dir.path())
            // Leave room for the unacknowledged operations of killed runs.
            .env("LOCALKMS_SOAK_START", (acked.last_n + 1000).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn writer");
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let kill_after = 1 + (rng % 48) as usize;
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut seen = 0;
        while seen < kill_after {
            let Some(Ok(line)) = lines.next() else { break };
            let Some(at) = line.find("ack ") else {
                continue;
            };
            acked.record(&line[at..]);
            seen += 1;
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        assert_eq!(seen, kill_after, "round {round}: the writer died early");
        let kms = open(dir.path())
            .unwrap_or_else(|e| panic!("round {round}: the store does not reopen: {e}"));
        acked.verify(&kms, round);
    }
    assert!(!acked.blobs.is_empty() && !acked.keys.is_empty());
    assert!(!acked.versions.is_empty(), "some rotation was acknowledged");
    let moved = acked.blobs.iter().filter(|b| b.0 != b.1).count();
    assert!(moved > 0, "some ReEncrypt was acknowledged");
    eprintln!(
        "soak: {} keys, {} imported, {} aliases, {} rotations, {} ciphertexts ({moved} re-encrypted), {} envelopes verified",
        acked.keys.len(),
        acked.imported.len(),
        acked.aliases.len(),
        acked.versions.len(),
        acked.blobs.len(),
        acked.envelopes.len()
    );
}
