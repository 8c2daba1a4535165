//! slowscan's test kit, shared by every test crate (`slowscan-user`'s tests
//! and benches, `slowscan-tests`): it knows the wire formats and the
//! machine, not slowscan, so its only workspace dependency is
//! `slowscan-common`.
//!
//! - [`frames`]: the frame builder (every layer the parser reads) and the
//!   internet checksum;
//! - [`gate`]: whether a test may run — root, tools, the capture
//!   directories — with one definition of CI;
//! - [`netns`]: network namespaces and veth pairs, removed on drop;
//! - [`inject`]: AF_PACKET senders (one frame, a `sendmmsg` batch, a flood);
//! - [`procfs`]: a process's CPU time and memory, for the benches;
//! - [`run`]: a built binary run from a test, and a test's own directory;
//! - `fuzz` (feature `fuzz`): proptest runners.

pub mod exports;
pub mod frames;
#[cfg(feature = "fuzz")]
pub mod fuzz;
pub mod gate;
pub mod inject;
pub mod netns;
pub mod procfs;
pub mod run;

pub use gate::{
    ForeignRow, external_captures, foreign_captures, foreign_rows, is_ci, privileged,
    tools_present, zeek_testdata,
};
pub use netns::{LAB_A, LAB_B, Netns, VethLab, sh, unique, veth_queues};
pub use run::{Cli, TempDir};
