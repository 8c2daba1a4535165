//! Learning never loses its result (R4.1): the output path is checked before
//! learning starts (its directory created, a file written and removed
//! there), the learned set is written before it goes into the kernel map
//! (which may be too small for it), and a learning period cut short by a
//! signal still writes what it learned.
use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::Context;

use crate::{engine::Whitelist, kernel::DataPlane};

/// Makes sure `path` can be written: creates its directory if missing and
/// writes and removes a probe file beside it. Run before learning starts.
pub fn check_output(path: &Path, option: &str) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).with_context(|| {
        format!(
            "{option} {}: cannot create its directory {}; give a writable path",
            path.display(),
            dir.display()
        )
    })?;
    let mut probe = path.as_os_str().to_owned();
    probe.push(".tmp");
    let probe = PathBuf::from(probe);
    fs::write(&probe, b"")
        .and_then(|()| fs::remove_file(&probe))
        .with_context(|| {
            format!(
                "{option} {}: cannot write in {}; give a writable path",
                path.display(),
                dir.display()
            )
        })?;
    if path.is_dir() {
        anyhow::bail!(
            "{option} {} is a directory: give a file name",
            path.display()
        );
    }
    Ok(())
}

/// Adds `wl`'s entries and rules to the kernel whitelist (R4.4).
pub fn load_into_kernel(dp: &mut DataPlane, wl: &Whitelist) -> anyhow::Result<()> {
    dp.whitelist()?.load(wl)
}

/// Makes the kernel whitelist hold exactly `want` (SIGHUP reread); returns
/// (added, removed) kernel entries.
pub fn sync_kernel(dp: &mut DataPlane, want: &Whitelist) -> anyhow::Result<(usize, usize)> {
    dp.whitelist()?.sync(want)
}
