//! Maps pinned under bpffs, so a second process (`slowscan whitelist …`,
//! `slowscan ignore …`) can change a running sensor's whitelist or ignore
//! list at once.
//!
//! Layout: `/sys/fs/bpf/slowscan/net<netns inode>/<iface>/v<FORMAT_VERSION>/<MAP>`.
//! The network namespace in the path keeps sensors on same-named interfaces
//! in different namespaces apart (`crate::netns`); the format version means a
//! pin left by an older build is never reused.
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use aya::maps::{Map, MapData, PerCpuArray};
use slowscan_common::{CounterBlock, FORMAT_VERSION, maps};

use super::{Counters, IgnoreMap, WhitelistMap, editable::EditableMaps};

pub const BPFFS: &str = "/sys/fs/bpf";
const BPF_FS_MAGIC: i64 = 0xcafe4a11;

/// Where a sensor on `iface` in this network namespace pins its maps.
pub fn pin_dir(iface: &str) -> anyhow::Result<PathBuf> {
    Ok(iface_dir(iface)?.join(format!("v{FORMAT_VERSION}")))
}

/// This network namespace's pins, one directory per interface.
fn netns_dir() -> anyhow::Result<PathBuf> {
    Ok(Path::new(BPFFS).join("slowscan").join(crate::netns::key()?))
}

fn iface_dir(iface: &str) -> anyhow::Result<PathBuf> {
    Ok(netns_dir()?.join(iface))
}

/// Mounts bpffs at /sys/fs/bpf if nothing of that type is there yet.
pub fn ensure_bpffs() -> anyhow::Result<()> {
    let path = std::ffi::CString::new(BPFFS).expect("no NUL");
    // SAFETY: statfs with a valid C string and an out-pointer to zeroed memory.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(path.as_ptr(), &mut st) } != 0 {
        bail!("{BPFFS} is missing: {}", std::io::Error::last_os_error());
    }
    if st.f_type as i64 == BPF_FS_MAGIC {
        return Ok(());
    }
    nix::mount::mount(
        Some("bpf"),
        BPFFS,
        Some("bpf"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .with_context(|| format!("mounting bpffs at {BPFFS} (needs root)"))
}

/// Pins `maps` for `iface`, replacing pins a crashed sensor left behind.
pub(super) fn pin_maps(iface: &str, maps: &[(&str, &Map)]) -> anyhow::Result<PathBuf> {
    ensure_bpffs()?;
    let dir = pin_dir(iface)?;
    remove_pins(iface)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, map) in maps {
        let path = dir.join(name);
        map.pin(&path)
            .with_context(|| format!("pinning the {name} map at {}", path.display()))?;
    }
    Ok(dir)
}

/// Removes every pin (of any format version) for `iface` in this network
/// namespace.
pub fn remove_pins(iface: &str) -> anyhow::Result<()> {
    let dir = iface_dir(iface)?;
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e).with_context(|| format!("removing stale pins in {}", dir.display()));
        }
    }
    // The namespace's directory goes with its last sensor.
    let _ = std::fs::remove_dir(netns_dir()?);
    Ok(())
}

/// A running sensor's maps, opened from their pins by another process.
pub struct PinnedMaps {
    pub dir: PathBuf,
    counters: Map,
    editable: EditableMaps,
}

impl PinnedMaps {
    /// The pins for `iface` in this network namespace, as this process's
    /// mount namespace sees them.
    pub fn open(iface: &str) -> anyhow::Result<Self> {
        let dir = pin_dir(iface)?;
        if !dir.exists() {
            bail!("{}", missing_message(iface)?);
        }
        Self::open_dir(dir)
    }

    /// The pins of the sensor process `pid` on `iface`, as its own mount
    /// namespace sees them (`/proc/PID/root/sys/fs/bpf/…`): found however
    /// this command was entered. `ip netns exec` gives every command a
    /// mount namespace with a fresh /sys, where the bpffs the sensor pinned
    /// in is not mounted; the sensor's control socket, in /run, is seen
    /// from both, which is why `slowscan status` worked there and this did not.
    pub fn open_of(iface: &str, pid: u32) -> anyhow::Result<Self> {
        let here = pin_dir(iface)?;
        let theirs = Path::new("/proc")
            .join(pid.to_string())
            .join("root")
            .join(here.strip_prefix("/").unwrap_or(&here));
        if theirs.exists() {
            return Self::open_dir(theirs);
        }
        Self::open(iface)
    }

    fn open_dir(dir: PathBuf) -> anyhow::Result<Self> {
        let open = |name: &str| {
            let p = dir.join(name);
            MapData::from_pin(&p)
                .and_then(Map::from_map_data)
                .with_context(|| format!("opening the pinned map {}", p.display()))
        };
        Ok(Self {
            counters: open(maps::COUNTERS)?,
            editable: EditableMaps::take(open)?,
            dir,
        })
    }

    pub fn ignore(&mut self) -> anyhow::Result<IgnoreMap<&mut MapData>> {
        self.editable.ignore().map_err(map_err)
    }

    pub fn whitelist(&mut self) -> anyhow::Result<WhitelistMap<&mut MapData>> {
        self.editable.whitelist(None).map_err(map_err)
    }

    pub fn counters(&self) -> anyhow::Result<Counters> {
        let m: PerCpuArray<&MapData, CounterBlock> =
            PerCpuArray::try_from(&self.counters).map_err(map_err)?;
        Counters::read(&m)
    }
}

fn map_err(e: aya::maps::MapError) -> anyhow::Error {
    anyhow::Error::new(e).context("the pinned map has an unexpected type")
}

/// Explains why no pins exist for `iface`: no sensor, or one from another build.
fn missing_message(iface: &str) -> anyhow::Result<String> {
    let root = netns_dir()?;
    let others: Vec<String> = std::fs::read_dir(iface_dir(iface)?)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    if !others.is_empty() {
        return Ok(format!(
            "the sensor on {iface} uses pinned-map format {} but this slowscan build uses v{FORMAT_VERSION}; \
             restart the sensor with this build (pins in {})",
            others.join(", "),
            iface_dir(iface)?.display()
        ));
    }
    let running: Vec<String> = std::fs::read_dir(&root)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    Ok(if running.is_empty() {
        format!(
            "no slowscan sensor is running on {iface} in this network namespace (nothing pinned under {})",
            root.display()
        )
    } else {
        format!(
            "no slowscan sensor is running on {iface} in this network namespace; sensors here run on: {}",
            running.join(", ")
        )
    })
}
