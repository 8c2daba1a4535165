//! Property-test runners sized for the default run, longer on demand.

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
