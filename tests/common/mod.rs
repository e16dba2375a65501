//! Helpers shared by the integration tests.
#![allow(dead_code)]

use localkms::{Kms, ManualClock};

/// The fixed start time of test clocks: 2026-01-01T00:00:00Z.
pub const T0: i64 = 1_767_225_600;

/// A fresh store of the named backend, with a manual clock at [`T0`].
/// Sled stores live in a temporary directory kept alive by the returned guard.
pub fn fresh(backend: &str) -> (Kms, ManualClock, Option<tempfile::TempDir>) {
    let clock = ManualClock::new(T0);
    match backend {
        "memory" => {
            let kms = Kms::builder()
                .in_memory()
                .clock(clock.clone())
                .build()
                .expect("memory store");
            (kms, clock, None)
        }
        "sled" => {
            let dir = tempfile::tempdir().expect("tempdir");
            let kms = Kms::builder()
                .sled(dir.path())
                .root_key_bytes(&[42u8; 32])
                .clock(clock.clone())
                .build()
                .expect("sled store");
            (kms, clock, Some(dir))
        }
        other => panic!("unknown backend {other}"),
    }
}

/// Runs `$body` as one test per backend: `mod memory` and `mod sled`, each
/// with the test functions given. `$body` is a fn(Kms, ManualClock).
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),+ $(,)?) => {
        mod memory {
            $(#[test] fn $name() { let (kms, clock, _dir) = $crate::common::fresh("memory"); super::$name(kms, clock); })+
        }
        mod sled {
            $(#[test] fn $name() { let (kms, clock, _dir) = $crate::common::fresh("sled"); super::$name(kms, clock); })+
        }
    };
}
