//! The live sensor (`slowscan run`): the XDP data plane on an interface feeds
//! the detection engine; alerts go to their own sink, logs to stderr.
//!
//! The daemon is a [`Sensor`] (`sensor.rs`) whose loop dispatches events to
//! small handlers (`handlers.rs`): records, the tick, signals, the end of
//! learning, shutdown. Around it, on threads of their own so the engine's
//! work never delays them: the ring reader (`reader.rs`) and the kernel
//! pending-table sweep (`housekeeping.rs`). Alerts take one path
//! (`alerts.rs`, with its bounded retry queue); checkpoints are written off
//! the loop (`checkpoint.rs`); signals are described in `signals.rs`, the
//! interface watch in `iface.rs`, learning's safeguards in `learning.rs`.
//!
//! Time: the engine runs on CLOCK_MONOTONIC + [`ENGINE_CLOCK_BIAS_NS`] (the
//! kernel stamps records with the coarse monotonic clock), so failure times
//! from before a reboot, restored from a checkpoint, stay representable.
//! Every 250 ms the engine advances to the ring reader's watermark, so
//! attempts whose handshake timeout passed are decided Failed (R5.1) even
//! when no traffic comes.
//!
//! Learning (R4.1): with `learn_for`, a first engine learns destinations with
//! Established connections on eligible ports (R4.2, R4.3); at the end they are
//! written to `learn_out`, go into the kernel whitelist map (R4.4) and
//! detection starts with a fresh engine.

pub mod alerts;
pub mod checkpoint;
pub mod control;
pub mod fleet_link;
mod handlers;
pub mod housekeeping;
pub mod iface;
pub mod learning;
pub mod metrics;
mod metrics_http;
pub mod reader;
pub mod reload;
pub mod runtime;
mod sensor;
pub use sensor::identities_label;
pub mod signals;
pub mod sink;
mod summary;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use tracing::{info, warn};

use crate::engine::{EngineConfig, LearnConfig, Restored, rfc3339};

pub use alerts::{AlertPath, AlertStats};
pub use fleet_link::FleetLink;
pub use sensor::Sensor;
pub use sink::AlertSink;
pub use summary::{Snapshot, Summary};

/// Everything `slowscan run` needs.
#[derive(Clone, Debug)]
pub struct DaemonConfig {
    pub iface: String,
    /// `observer.name` in every alert (`--sensor-name`, default the hostname).
    pub sensor_name: String,
    /// Several sensors seen as one (`--fleet`): counted failures are shared
    /// through the store; fleet alerts are written by the sensor that claims
    /// them, local ones only while the store is out of reach.
    pub fleet: Option<crate::fleet::FleetConfig>,
    pub attach: crate::kernel::AttachMode,
    /// Dedicated mirror/SPAN port: the program drops every frame after
    /// inspection.
    pub mirror: bool,
    /// Detectors, handshake timeout, caps. `whitelist` is the file's (also
    /// loaded into the kernel map); `wall_clock_offset_ns` is set at start.
    pub engine: EngineConfig,
    /// `-` for stdout, else a file appended to.
    pub alerts: PathBuf,
    /// Prometheus endpoint, None = off.
    pub metrics: Option<SocketAddr>,
    /// Learn a whitelist for this long first (R4.1), then detect.
    pub learn_for: Option<Duration>,
    pub learn: LearnConfig,
    /// Where the learned whitelist is saved: required with `learn_for`
    /// (learning never loses its result).
    pub learn_out: Option<PathBuf>,
    /// The `--whitelist` file, kept in step by `slowscan whitelist …` so that a
    /// restart keeps live changes (recorded in the sensor's runtime file),
    /// and reread at SIGHUP.
    pub whitelist_file: Option<PathBuf>,
    /// Stop once learning is done (`slowscan learn --iface`) instead of detecting.
    pub learn_only: bool,
    /// Log a one-line summary this often.
    pub summary_every: Option<Duration>,
    /// Stop by itself after this long.
    pub run_for: Option<Duration>,
    /// How often the kernel pre-filter table is swept (on its own thread).
    pub sweep_every: Duration,
    /// Engine state file: loaded at start if present, checkpointed.
    pub state: Option<PathBuf>,
    /// Ignore the state file at start (it is overwritten by the next checkpoint).
    pub state_reset: bool,
    /// How often the engine state is checkpointed.
    pub checkpoint_every: Duration,
    /// R4.6: sources never counted, loaded into the kernel ignore maps at
    /// start (right after the whitelist).
    pub ignore: Option<crate::ignore::IgnoreList>,
    /// The file `ignore` came from, if any: kept in step by `slowscan
    /// ignore …` (recorded in the sensor's runtime file), reread at SIGHUP.
    pub ignore_file: Option<PathBuf>,
    /// Size of the kernel whitelist map (entries).
    pub whitelist_max: u32,
    /// Size of the kernel pending table (entries).
    pub pending_max: u32,
    /// Size of the record ring buffer (bytes).
    pub ring_bytes: u32,
    /// With a `--config` file: parses it again at SIGHUP.
    pub reload: Option<reload::Reloader>,
    /// The options this configuration was made from, by config key (what
    /// a reload compares).
    pub options: reload::Options,
}

impl DaemonConfig {
    /// The option that names the learned whitelist's file, for messages.
    fn learn_out_option(&self) -> &'static str {
        if self.learn_only {
            "--out"
        } else {
            "--learn-out"
        }
    }
}

/// This machine's host name (the default `--sensor-name`), or `slowscan`.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "slowscan".into())
}

/// The IP addresses configured on `iface` (a host interface has some; a
/// dedicated SPAN port usually none). IPv6 link-local addresses (fe80::/10)
/// are left out: the kernel gives one to every interface with IPv6 on, SPAN
/// ports included, so they say nothing about the host using the interface.
pub fn addresses_of(iface: &str) -> Vec<std::net::IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addrs
        .filter(|a| a.interface_name == iface)
        .filter_map(|a| a.address)
        .filter_map(|s| {
            s.as_sockaddr_in()
                .map(|v4| std::net::IpAddr::V4(v4.ip()))
                .or_else(|| s.as_sockaddr_in6().map(|v6| std::net::IpAddr::V6(v6.ip())))
        })
        .filter(|ip| !is_link_local_v6(ip))
        .collect()
}

/// fe80::/10, the address the kernel configures by itself.
fn is_link_local_v6(ip: &std::net::IpAddr) -> bool {
    matches!(ip, std::net::IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
}

/// The interfaces of this network namespace, sorted.
pub fn interfaces() -> Vec<String> {
    let mut v: Vec<String> = nix::net::if_::if_nameindex()
        .map(|l| {
            l.iter()
                .map(|i| i.name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Fails with the list of existing interfaces when `iface` is not one.
pub fn check_interface(iface: &str) -> anyhow::Result<()> {
    if iface::index_of(iface).is_none() {
        bail!(
            "interface {iface} does not exist (ip link lists: {})",
            interfaces().join(", ")
        );
    }
    Ok(())
}

/// Fails unless the process may load and attach an XDP program.
pub fn check_privileges() -> anyhow::Result<()> {
    use caps::{CapSet, Capability};
    let has = |c| caps::has_cap(None, CapSet::Effective, c).unwrap_or(false);
    let bpf = has(Capability::CAP_BPF) || has(Capability::CAP_SYS_ADMIN);
    if !(bpf && has(Capability::CAP_NET_ADMIN)) {
        bail!(
            "slowscan run must run as root: loading and attaching an XDP program needs CAP_BPF (or CAP_SYS_ADMIN) \
             and CAP_NET_ADMIN (try sudo)"
        );
    }
    Ok(())
}

/// Reduces the effective and permitted capability sets to CAP_BPF (map
/// operations, the learned whitelist) and CAP_NET_ADMIN (detaching); without
/// CAP_BPF in the kernel's list, CAP_SYS_ADMIN stands in for it. Returns the
/// names kept.
pub fn drop_capabilities() -> Result<String, caps::errors::CapsError> {
    use caps::{CapSet, Capability, CapsHashSet};
    let all = caps::runtime::procfs_all_supported(None).unwrap_or_else(|_| caps::all());
    let bpf = if all.contains(&Capability::CAP_BPF) {
        Capability::CAP_BPF
    } else {
        Capability::CAP_SYS_ADMIN
    };
    let keep: CapsHashSet = [bpf, Capability::CAP_NET_ADMIN].into_iter().collect();
    caps::set(None, CapSet::Effective, &keep)?;
    caps::set(None, CapSet::Permitted, &keep)?;
    caps::clear(None, CapSet::Inheritable)?;
    let _ = caps::clear(None, CapSet::Ambient);
    Ok(format!("{bpf} and CAP_NET_ADMIN"))
}

/// CLOCK_MONOTONIC in ns: the clock of kernel record timestamps.
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC) as u64
}

fn clock_ns(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid clock id and out-pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// realtime − monotonic now: added to kernel record times gives wall clock.
pub fn wall_clock_offset_ns() -> i64 {
    clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_MONOTONIC)
}

/// Added to CLOCK_MONOTONIC (kernel record times) to make the engine's time:
/// 2^62 ns (146 years), so that times before this boot, restored from a
/// checkpoint, are still positive.
pub const ENGINE_CLOCK_BIAS_NS: u64 = 1 << 62;

/// The engine clock now: CLOCK_MONOTONIC + [`ENGINE_CLOCK_BIAS_NS`].
pub fn engine_now_ns() -> u64 {
    monotonic_ns() + ENGINE_CLOCK_BIAS_NS
}

fn log_restored(r: &Restored, path: Option<&PathBuf>) {
    let now = clock_ns(libc::CLOCK_REALTIME);
    info!(
        "engine state restored from {} (format {}{}, saved {}, {:.0} s ago): {} sources, {} pending attempts, \
         {} live services; dropped {} attempts whose handshake deadline passed while stopped and {} sources \
         out of every window",
        path.map_or_else(|| "?".into(), |p| p.display().to_string()),
        r.format,
        if r.format != crate::engine::STATE_FORMAT {
            ", migrated"
        } else {
            ""
        },
        rfc3339::format(r.saved_at_ns),
        (now - r.saved_at_ns) as f64 / 1e9,
        r.sources,
        r.pending,
        r.services,
        r.pending_dropped,
        r.sources_dropped,
    );
    for d in &r.new_detectors {
        warn!(
            "detector {} ({}) is not in the saved state: it starts armed, counting the saved failed pairs",
            d.name(),
            d.window.mode()
        );
    }
}

/// Checks, loads, attaches and runs until a terminating signal or
/// `run_for`; returns the final summary. The program is detached and its
/// pins and runtime file removed on every exit path after attaching.
pub fn run(cfg: DaemonConfig) -> anyhow::Result<Summary> {
    // First: a signal from here on is a clean stop once the sensor runs,
    // never a death that leaves the program attached and its pins behind.
    signals::install(signals::Reads::Restart)?;
    check_interface(&cfg.iface)?;
    runtime::check_free(&cfg.iface)?;
    check_privileges()?;
    // Before attaching, and before hours of learning: an unwritable output
    // stops the start, not the end.
    if cfg.learn_for.is_some() {
        let p = cfg.learn_out.as_ref().with_context(|| {
            format!(
                "learning needs somewhere to write its result: give {}",
                cfg.learn_out_option()
            )
        })?;
        learning::check_output(p, cfg.learn_out_option())?;
    }
    // Before attaching: a bad state file stops the start.
    let saved = match &cfg.state {
        Some(p) => checkpoint::load(p, cfg.state_reset)?,
        None => None,
    };
    if let Some(p) = &cfg.state {
        match (&saved, cfg.state_reset) {
            (_, true) => info!(
                "--state-reset: starting afresh; {} will be overwritten",
                p.display()
            ),
            (None, false) => info!("no engine state at {} yet: starting afresh", p.display()),
            (Some(_), false) => {}
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(async move { Sensor::start(cfg, saved).await?.run().await })
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_automatic_ipv6_link_local_addresses_are_left_out() {
        let ll = |s: &str| super::is_link_local_v6(&s.parse().unwrap());
        assert!(ll("fe80::1c2b:3ff:fe4d:5e6f") && ll("febf::1"));
        assert!(!ll("2001:db8::2") && !ll("fec0::1") && !ll("198.51.100.2"));
    }
}
