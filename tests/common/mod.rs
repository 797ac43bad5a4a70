//! Helpers shared by the integration tests: where the shared benchmarks are, and the project's
//! own test models.
#![allow(dead_code)]

pub mod emulated;
pub mod soundness;

use std::path::PathBuf;

/// The crate root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shared VNN-COMP benchmarks (`BEACONS_BENCHMARKS`, default `../shared/benchmarks`).
/// Returns `None` after a loud SKIPPED line when they are absent, unless
/// `BEACONS_REQUIRE_BENCHMARKS` is set (as in CI), where their absence fails the test.
pub fn benchmarks(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("BEACONS_BENCHMARKS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/benchmarks"));
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var_os("BEACONS_REQUIRE_BENCHMARKS").is_some() {
        panic!(
            "{test}: BEACONS_REQUIRE_BENCHMARKS is set but there are no benchmarks at {}",
            dir.display()
        );
    }
    eprintln!(
        "SKIPPED {test}: no benchmarks at {} (set BEACONS_BENCHMARKS)",
        dir.display()
    );
    None
}
