//! The running sensor's runtime file, `/run/slowscan/<iface>.json`: its PID
//! and the `--whitelist` and ignore files it loaded, so `slowscan whitelist …`
//! and `slowscan ignore …` in another process can keep those files in step
//! with the kernel maps (a restart then keeps live changes).
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

pub const RUN_DIR: &str = "/run/slowscan";

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RuntimeInfo {
    pub pid: u32,
    /// Absolute path of the sensor's whitelist file, if it was given one.
    pub whitelist_file: Option<PathBuf>,
    /// Absolute path of the sensor's ignore file (`--ignore-sources FILE`),
    /// if it was given one. Absent in files written by older builds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_file: Option<PathBuf>,
}

pub fn path(iface: &str) -> PathBuf {
    Path::new(RUN_DIR).join(format!("{iface}.json"))
}

pub fn write(
    iface: &str,
    whitelist_file: Option<&Path>,
    ignore_file: Option<&Path>,
) -> anyhow::Result<()> {
    let absolute = |f: Option<&Path>| -> anyhow::Result<Option<PathBuf>> {
        f.map(|p| std::path::absolute(p).with_context(|| format!("resolving {}", p.display())))
            .transpose()
    };
    let info = RuntimeInfo {
        pid: std::process::id(),
        whitelist_file: absolute(whitelist_file)?,
        ignore_file: absolute(ignore_file)?,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r4_6_runtime_files_of_older_builds_still_read() {
        let old: RuntimeInfo =
            serde_json::from_str(r#"{"pid":7,"whitelist_file":"/etc/slowscan/wl.json"}"#).unwrap();
        assert_eq!(old.ignore_file, None);
        assert_eq!(
            old.whitelist_file,
            Some(PathBuf::from("/etc/slowscan/wl.json"))
        );
        let new = RuntimeInfo {
            pid: 7,
            whitelist_file: None,
            ignore_file: Some("/etc/slowscan/ignore.txt".into()),
        };
        let text = serde_json::to_string(&new).unwrap();
        assert_eq!(serde_json::from_str::<RuntimeInfo>(&text).unwrap(), new);
    }
}
