//! The userspace half of the data plane: load and attach the XDP program,
//! read its records and counters, sweep its pending table, and edit its
//! whitelist and ignore list — also from a second process, through maps
//! pinned under bpffs.

mod counters;
mod editable;
mod flags;
mod hints;
mod ignore_map;
mod loader;
mod pending;
mod pins;
mod records;
mod whitelist_map;

pub use counters::Counters;
pub use hints::HintArray;
pub use ignore_map::IgnoreMap;
pub use loader::{AttachMode, DataPlane, ProgramOptions};
pub use pending::{PendingStats, PendingSweeper};
pub use pins::{PinnedMaps, ensure_bpffs, pin_dir, remove_pins};
pub use records::{AsyncRecordReader, RecordReader, decode};
pub use whitelist_map::{WhitelistMap, WhitelistMaps};

/// The XDP object built by `cargo xtask build-ebpf`, embedded at compile time.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/slowscan.bpf.o"));

/// The embedded object, or a message saying how to build it.
pub fn object() -> anyhow::Result<&'static [u8]> {
    if OBJECT.is_empty() {
        anyhow::bail!(
            "this slowscan binary was built without its XDP program: run `cargo xtask build-ebpf`, then rebuild"
        );
    }
    Ok(OBJECT)
}
