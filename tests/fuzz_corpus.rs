//! Replays the fuzz corpora under `cargo test`, through the same functions the
//! fuzz targets in `fuzz/` call (`localkms::fuzzing`): the committed seeds in
//! `fuzz/seeds/<target>/`, the inputs of past findings in
//! `fuzz/regressions/<target>/`, and the seeds built in code.
//!
//! Needs the `fuzzing` feature (`scripts/test.sh` enables all features).
//! `LOCALKMS_WRITE_SEEDS=1 cargo test --features fuzzing --test fuzz_corpus` rewrites
//! `fuzz/seeds/` from the seeds built in code.

use std::path::{Path, PathBuf};

use localkms::fuzzing;

const TARGETS: [&str; 7] = [
    "blob_decrypt",
    "envelope_reader",
    "import_token",
    "encryption_context",
    "state_model",
    "dispatch",
    "asym_inputs",
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Every file in `dir`, sorted; none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = entries
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

fn replay(target: &str, sub: &str) -> usize {
    let paths = files(&fuzz_dir().join(sub).join(target));
    for p in &paths {
        let data = std::fs::read(p).expect("read corpus file");
        eprintln!("{target}: {}", p.display());
        assert!(fuzzing::run(target, &data), "unknown target {target}");
    }
    paths.len()
}

#[test]
fn seeds_built_in_code_pass() {
    let write = std::env::var_os("LOCALKMS_WRITE_SEEDS").is_some();
    let seeds = fuzzing::seeds();
    assert_eq!(seeds.len(), TARGETS.len());
    for (target, inputs) in seeds {
        assert!(TARGETS.contains(&target), "{target}");
        assert!(!inputs.is_empty(), "{target} has seeds");
        let dir = fuzz_dir().join("seeds").join(target);
        if write {
            std::fs::create_dir_all(&dir).expect("mkdir");
        }
        for (i, data) in inputs.iter().enumerate() {
            assert!(fuzzing::run(target, data));
            if write {
                std::fs::write(dir.join(format!("seed-{i}")), data).expect("write seed");
            }
        }
    }
}

#[test]
fn committed_seeds_pass() {
    for target in TARGETS {
        assert!(replay(target, "seeds") > 0, "{target} has committed seeds");
    }
}

#[test]
fn past_findings_pass() {
    for target in TARGETS {
        replay(target, "regressions");
    }
}

#[test]
fn unknown_target_is_refused() {
    assert!(!fuzzing::run("no_such_target", b""));
}
