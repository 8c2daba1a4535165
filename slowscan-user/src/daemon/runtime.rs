//! The running sensor's runtime file, `/run/slowscan/<iface>.json`: its PID
//! and the `--whitelist` file it loaded, so `slowscan whitelist …` in another
//! process can keep that file in step with the kernel map (a restart then
//! keeps live changes).
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

pub const RUN_DIR: &str = "/run/slowscan";

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RuntimeInfo {
    pub pid: u32,
    /// Absolute path of the sensor's whitelist file, if it was given one.
    pub whitelist_file: Option<PathBuf>,
}

pub fn path(iface: &str) -> PathBuf {
    Path::new(RUN_DIR).join(format!("{iface}.json"))
}

pub fn write(iface: &str, whitelist_file: Option<&Path>) -> anyhow::Result<()> {
    let whitelist_file = match whitelist_file {
        Some(p) => {
            Some(std::path::absolute(p).with_context(|| format!("resolving {}", p.display()))?)
        }
        None => None,
    };
    let info = RuntimeInfo {
        pid: std::process::id(),
        whitelist_file,
    };
    std::fs::create_dir_all(RUN_DIR).with_context(|| format!("creating {RUN_DIR}"))?;
    let p = path(iface);
    let tmp = p.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string(&info)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &p).with_context(|| format!("writing {}", p.display()))
}

/// The runtime file of the sensor on `iface`, if one is there.
pub fn read(iface: &str) -> anyhow::Result<Option<RuntimeInfo>> {
    let p = path(iface);
    match std::fs::read_to_string(&p) {
        Ok(text) => Ok(Some(
            serde_json::from_str(&text).with_context(|| format!("reading {}", p.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
    }
}

pub fn remove(iface: &str) {
    let _ = std::fs::remove_file(path(iface));
}
