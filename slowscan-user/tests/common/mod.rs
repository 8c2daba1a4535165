//! Helpers shared by this crate's integration tests (each test crate uses
//! some of them).
#![allow(dead_code)]

use std::path::PathBuf;

use proptest::test_runner::{Config, TestRunner};

/// A proptest runner with `default_cases`, or `SLOWSCAN_FUZZ_CASES` for longer runs.
pub fn fuzz_runner(default_cases: u32) -> TestRunner {
    let cases = std::env::var("SLOWSCAN_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// The external captures directory (`SLOWSCAN_EXTERNAL_CAPTURES`), or None
/// with a notice; under `CI=true` a missing directory is a failure.
pub fn external_dir() -> Option<PathBuf> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let Some(dir) = std::env::var_os("SLOWSCAN_EXTERNAL_CAPTURES").map(PathBuf::from) else {
        assert!(!ci, "CI=true but SLOWSCAN_EXTERNAL_CAPTURES is not set");
        eprintln!(
            "notice: SLOWSCAN_EXTERNAL_CAPTURES is not set; skipping the external-capture tests"
        );
        return None;
    };
    assert!(
        dir.is_dir(),
        "SLOWSCAN_EXTERNAL_CAPTURES={} is not a directory (it should hold the external captures, see their README.md)",
        dir.display()
    );
    Some(dir)
}

/// The foreign captures directory (`SLOWSCAN_FOREIGN_CAPTURES`: real
/// captures from other projects' test suites, with a README giving each
/// one's expected outcome), or None with a notice; under `CI=true` a missing
/// directory is a failure.
pub fn foreign_dir() -> Option<PathBuf> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let Some(dir) = std::env::var_os("SLOWSCAN_FOREIGN_CAPTURES").map(PathBuf::from) else {
        assert!(!ci, "CI=true but SLOWSCAN_FOREIGN_CAPTURES is not set");
        eprintln!(
            "notice: SLOWSCAN_FOREIGN_CAPTURES is not set; skipping the foreign-capture tests"
        );
        return None;
    };
    assert!(
        dir.is_dir(),
        "SLOWSCAN_FOREIGN_CAPTURES={} is not a directory (it should hold the foreign captures, see their README.md)",
        dir.display()
    );
    Some(dir)
}
