//! Shared helpers for slowscan's privileged tests: the fixture and parse
//! case tables, the namespace lab around the `slowscan` binary, the fleet's
//! segments and Redis Cluster. The frames, the CI gate and the namespaces
//! are the test kit's (`slowscan-testkit`), re-exported here. Live test
//! hosts use documentation addresses only.

pub mod cases;
pub mod fixtures;
pub mod fleetlab;
pub mod flood;
pub mod lab;
pub mod mirrorlab;
pub mod redis;

use std::path::PathBuf;

pub use slowscan_testkit::{
    ForeignRow, LAB_A, LAB_B, Netns, VethLab, external_captures, foreign_captures, foreign_rows,
    frames, is_ci, privileged, sh, tools_present, unique,
};

/// The `slowscan` binary built beside this test binary (`cargo xtask test`
/// builds the whole workspace first).
pub fn slowscan_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join("slowscan");
    assert!(
        bin.exists(),
        "{} is missing: build the workspace first (`cargo build`)",
        bin.display()
    );
    bin
}
