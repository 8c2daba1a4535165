//! The running sensor's runtime file,
//! `/run/slowscan/net<netns inode>/<iface>.json`: its PID (with the process's
//! start time, so a reused PID is not mistaken for it) and the `--whitelist`
//! and ignore files it loaded, so `slowscan whitelist …` and `slowscan
//! ignore …` in another process can check that the sensor is alive and keep
//! those files in step with the kernel maps (a restart then keeps live
//! changes). Keyed by network namespace (see `crate::netns`), like the pins.
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

pub const RUN_DIR: &str = "/run/slowscan";

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RuntimeInfo {
    pub pid: u32,
    /// The process's start time (clock ticks after boot, `/proc/PID/stat`
    /// field 22). Absent in files written by older builds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<u64>,
    /// Absolute path of the sensor's whitelist file, if it was given one.
    pub whitelist_file: Option<PathBuf>,
    /// Absolute path of the sensor's ignore file (`--ignore-sources FILE`),
    /// if it was given one. Absent in files written by older builds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_file: Option<PathBuf>,
}

/// This network namespace's runtime directory.
pub fn dir() -> anyhow::Result<PathBuf> {
    Ok(Path::new(RUN_DIR).join(crate::netns::key()?))
}

pub fn path(iface: &str) -> anyhow::Result<PathBuf> {
    Ok(dir()?.join(format!("{iface}.json")))
}

/// Start time of process `pid` (clock ticks after boot), None if it is gone.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count
    // fields after its closing parenthesis; start time is field 22.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
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
    let pid = std::process::id();
    let info = RuntimeInfo {
        pid,
        start_time: start_time(pid),
        whitelist_file: absolute(whitelist_file)?,
        ignore_file: absolute(ignore_file)?,
    };
    let d = dir()?;
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    let p = path(iface)?;
    // In /run: it need not outlive the machine, only the sensor.
    crate::atomic::write(
        &p,
        serde_json::to_string(&info)?.as_bytes(),
        crate::atomic::Durability::Process,
    )
    .with_context(|| format!("writing {}", p.display()))
}

/// The runtime file of the sensor on `iface` in this network namespace, if
/// one is there (alive or not).
pub fn read(iface: &str) -> anyhow::Result<Option<RuntimeInfo>> {
    let p = path(iface)?;
    match std::fs::read_to_string(&p) {
        Ok(text) => Ok(Some(
            serde_json::from_str(&text).with_context(|| format!("reading {}", p.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
    }
}

impl RuntimeInfo {
    /// The process it names is still the one that wrote it.
    pub fn alive(&self) -> bool {
        match (start_time(self.pid), self.start_time) {
            (None, _) => false,
            (Some(now), Some(then)) => now == then,
            (Some(_), None) => true,
        }
    }
}

/// The live sensor on `iface` in this network namespace, or an error that
/// says why there is none: no runtime file, or its process is gone (killed
/// without a clean stop: its pins are stale and would swallow changes).
pub fn sensor(iface: &str) -> anyhow::Result<RuntimeInfo> {
    let p = path(iface)?;
    let Some(info) = read(iface)? else {
        bail!(
            "no slowscan sensor is running on {iface} in this network namespace (no {}); \
             a sensor started in another network namespace is reached from it: \
             `ip netns exec NS slowscan …` or `nsenter -t <sensor pid> -n slowscan …`",
            p.display()
        );
    };
    if !info.alive() {
        bail!(
            "no slowscan sensor is running on {iface}: its process {} (recorded in {}) has exited without \
             a clean stop (e.g. SIGKILL), so its pinned maps are stale; start the sensor again (it replaces them)",
            info.pid,
            p.display()
        );
    }
    Ok(info)
}

/// Fails when a live slowscan sensor already holds `iface` in this network
/// namespace, naming its PID: a second one would only fail later, on the
/// metrics port or at attaching, with a cause that does not say this.
pub fn check_free(iface: &str) -> anyhow::Result<()> {
    if let Some(info) = read(iface)?
        && info.alive()
        && info.pid != std::process::id()
    {
        bail!(
            "a slowscan sensor (PID {}) is already running on {iface} in this network namespace \
             (its runtime file {}); stop it first (`systemctl stop slowscan@{iface}` or `kill {}`), \
             or watch another interface",
            info.pid,
            path(iface)?.display(),
            info.pid
        );
    }
    Ok(())
}

pub fn remove(iface: &str) {
    if let Ok(p) = path(iface) {
        let _ = std::fs::remove_file(p);
    }
    // The namespace's directory goes when its last sensor does.
    if let Ok(d) = dir() {
        let _ = std::fs::remove_dir(d);
    }
}

/// The pinned maps of the live sensor on `iface`: its process must be
/// alive, or a change would land in stale pins that nothing reads. They are
/// opened as the sensor sees them, whatever mount namespace this command
/// runs in (`ip netns exec`).
pub fn live_maps(iface: &str) -> anyhow::Result<crate::kernel::PinnedMaps> {
    let s = sensor(iface)?;
    crate::kernel::PinnedMaps::open_of(iface, s.pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r4_6_runtime_files_of_older_builds_still_read() {
        let old: RuntimeInfo =
            serde_json::from_str(r#"{"pid":7,"whitelist_file":"/etc/slowscan/wl.json"}"#).unwrap();
        assert_eq!(old.ignore_file, None);
        assert_eq!(old.start_time, None);
        assert_eq!(
            old.whitelist_file,
            Some(PathBuf::from("/etc/slowscan/wl.json"))
        );
        let new = RuntimeInfo {
            pid: 7,
            start_time: Some(42),
            whitelist_file: None,
            ignore_file: Some("/etc/slowscan/ignore.txt".into()),
        };
        let text = serde_json::to_string(&new).unwrap();
        assert_eq!(serde_json::from_str::<RuntimeInfo>(&text).unwrap(), new);
    }

    #[test]
    fn a_process_is_alive_only_with_its_own_start_time() {
        let me = std::process::id();
        let t = start_time(me).expect("this process has a start time");
        let info = |start_time| RuntimeInfo {
            pid: me,
            start_time,
            whitelist_file: None,
            ignore_file: None,
        };
        assert!(info(Some(t)).alive());
        assert!(!info(Some(t + 1)).alive(), "a reused PID is not the sensor");
        assert!(info(None).alive(), "older files: the PID alone");
        // PIDs above pid_max never exist.
        let gone = RuntimeInfo {
            pid: u32::MAX,
            ..info(None)
        };
        assert!(!gone.alive());
    }
}
