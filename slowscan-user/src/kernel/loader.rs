//! Loading the XDP program, attaching it, and BPF_PROG_TEST_RUN.
use std::time::Duration;

use anyhow::{Context, bail};
use aya::{
    Ebpf, EbpfLoader,
    maps::{Map, MapData, PerCpuArray, RingBuf},
    programs::{TestRun, TestRunOptions, Xdp, XdpMode, xdp::XdpLinkId},
};
use slowscan_common::{FlowKey, PendingValue, globals, maps};
use tracing::{info, warn};

use super::{
    Counters, HintArray, IgnoreMap, RecordReader, WhitelistMap,
    editable::EditableMaps,
    pending::{self, PendingStats, PendingSweeper},
    pins,
};

const PROGRAM: &str = "slowscan";
const BASELINE: &str = "baseline_pass";

/// Load-time choices (see `slowscan_common::globals`) and map sizes.
#[derive(Clone, Copy, Debug)]
pub struct ProgramOptions {
    /// Emit only attempts and their first candidate follow-up (default on).
    pub prefilter: bool,
    /// Dedicated mirror/SPAN port: drop every frame after inspection.
    pub mirror: bool,
    /// Entries of the kernel whitelist map (`--whitelist-max`).
    pub whitelist_max: u32,
    /// Entries of the pending table (`--kernel-pending-max`): under a flood
    /// of R new attempts/s an attempt stays tracked about this / R seconds.
    pub pending_max: u32,
    /// Bytes of the record ring buffer (`--ring-bytes`): a power of two, at
    /// least a page.
    pub ring_bytes: u32,
}

impl Default for ProgramOptions {
    fn default() -> Self {
        Self {
            prefilter: true,
            mirror: false,
            whitelist_max: slowscan_common::WHITELIST_MAX,
            pending_max: slowscan_common::PENDING_MAX,
            ring_bytes: slowscan_common::RING_BYTES,
        }
    }
}

impl ProgramOptions {
    /// Checks the sizes; the message names the option.
    pub fn check(&self) -> anyhow::Result<()> {
        let page = 4096;
        if !self.ring_bytes.is_power_of_two() || self.ring_bytes < page {
            bail!(
                "--ring-bytes {} must be a power of two of at least {page} (e.g. 16777216 for 16 MiB)",
                self.ring_bytes
            );
        }
        if self.whitelist_max == 0 {
            bail!("--whitelist-max must be at least 1");
        }
        let (min, max) = (
            slowscan_common::PENDING_MAX_MIN,
            slowscan_common::PENDING_MAX_LIMIT,
        );
        if !(min..=max).contains(&self.pending_max) {
            bail!(
                "--kernel-pending-max {} must be between {min} and {max} entries (each takes about \
                 120 bytes of kernel memory, allocated at load; default {})",
                self.pending_max,
                slowscan_common::PENDING_MAX
            );
        }
        Ok(())
    }
}

/// How to attach: native (driver) XDP, generic (skb) XDP, or native with a
/// logged fallback to generic when the driver has no XDP support.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AttachMode {
    #[default]
    Auto,
    Native,
    Generic,
}

/// The loaded program and its maps.
pub struct DataPlane {
    ebpf: Ebpf,
    records: Option<RingBuf<MapData>>,
    // Kept untyped so they can be pinned; typed views are made on use.
    counters: Map,
    pending: Map,
    editable: EditableMaps,
    hints: HintArray,
    sweeper: Option<PendingSweeper>,
    link: Option<(String, XdpLinkId)>,
    whitelist_max: u32,
    pending_max: u32,
    logger: Option<aya_log::EbpfLogger<&'static dyn log::Log>>,
}

impl DataPlane {
    /// Verifies and loads the program without attaching it.
    pub fn load(opts: ProgramOptions) -> anyhow::Result<Self> {
        opts.check()?;
        raise_memlock();
        let prefilter_off = u8::from(!opts.prefilter);
        let mirror = u8::from(opts.mirror);
        let mut ebpf = EbpfLoader::new()
            .override_global(globals::PREFILTER_OFF, &prefilter_off, true)
            .override_global(globals::MIRROR, &mirror, true)
            .map_max_entries(maps::WHITELIST, opts.whitelist_max)
            .map_max_entries(maps::PENDING, opts.pending_max)
            .map_max_entries(maps::RECORDS, opts.ring_bytes)
            .load(super::object()?)
            .context(
                "loading the slowscan XDP object (is this root, with BPF enabled in the kernel?)",
            )?;
        let logger = match aya_log::EbpfLogger::init(&mut ebpf) {
            Ok(l) => Some(l),
            Err(e) => {
                warn!("kernel-side diagnostics unavailable: {e}");
                None
            }
        };
        let prog: &mut Xdp = program(&mut ebpf)?;
        prog.load()
            .context("the kernel verifier rejected the slowscan XDP program")?;
        let records = RingBuf::try_from(take(&mut ebpf, maps::RECORDS)?)
            .context("the RECORDS map is not a ring buffer: does this kernel support BPF ring buffers (5.8+)?")?;
        let editable = EditableMaps::take(|name| take(&mut ebpf, name))?;
        let counters = take(&mut ebpf, maps::COUNTERS)?;
        let pending = take(&mut ebpf, maps::PENDING)?;
        let hints_map = take(&mut ebpf, maps::HINTS)?;
        let hints = HintArray::map(&hints_map)?;
        let sweeper = PendingSweeper::new(&pending, &counters, &hints_map)?;
        Ok(Self {
            ebpf,
            records: Some(records),
            counters,
            pending,
            editable,
            hints,
            sweeper: Some(sweeper),
            link: None,
            whitelist_max: opts.whitelist_max,
            pending_max: opts.pending_max,
            logger,
        })
    }

    /// Attaches to `iface`; returns the mode actually used.
    pub fn attach(&mut self, iface: &str, mode: AttachMode) -> anyhow::Result<XdpMode> {
        if self.link.is_some() {
            bail!("the slowscan program is already attached");
        }
        let prog: &mut Xdp = program(&mut self.ebpf)?;
        let (first, fallback) = match mode {
            AttachMode::Auto => (XdpMode::Driver, Some(XdpMode::Skb)),
            AttachMode::Native => (XdpMode::Driver, None),
            AttachMode::Generic => (XdpMode::Skb, None),
        };
        let (id, used) = match (prog.attach(iface, first), fallback) {
            (Ok(id), _) => (id, first),
            (Err(e), Some(fb)) => {
                warn!("native XDP attach to {iface} failed ({e}); falling back to generic XDP");
                (
                    prog.attach(iface, fb)
                        .with_context(|| attach_error(iface))?,
                    fb,
                )
            }
            (Err(e), None) => return Err(anyhow::Error::new(e).context(attach_error(iface))),
        };
        info!("slowscan attached to {iface} ({used:?} mode)");
        self.link = Some((iface.to_string(), id));
        Ok(used)
    }

    /// Detaches the program if attached (dropping the `DataPlane` does too).
    pub fn detach(&mut self) -> anyhow::Result<()> {
        if let Some((_, id)) = self.link.take() {
            program(&mut self.ebpf)?.detach(id)?;
        }
        Ok(())
    }

    /// Drops the attachment of an interface that vanished (the kernel
    /// already removed the program from it), so [`Self::attach`] can attach
    /// to its successor.
    pub fn forget_link(&mut self) {
        if let Some((_, id)) = self.link.take()
            && let Ok(p) = program(&mut self.ebpf)
        {
            // A link on a deleted device is defunct: closing it is all there is.
            let _ = p.detach(id);
        }
    }

    /// Pins the whitelist, ignore, counter and pending maps under bpffs for
    /// `iface`, so `slowscan whitelist …` and `slowscan ignore …` in another
    /// process can reach them.
    pub fn pin(&self, iface: &str) -> anyhow::Result<std::path::PathBuf> {
        let mut maps = vec![
            (maps::COUNTERS, &self.counters),
            (maps::PENDING, &self.pending),
        ];
        maps.extend(self.editable.named());
        pins::pin_maps(iface, &maps)
    }

    /// Runs the program once per `repeat` on `frame` (BPF_PROG_TEST_RUN);
    /// returns the verdict and the kernel's mean time per run.
    pub fn test_run(&mut self, frame: &[u8], repeat: u32) -> anyhow::Result<(u32, Duration)> {
        let prog: &mut Xdp = program(&mut self.ebpf)?;
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(frame);
        opts.repeat = repeat;
        let r = prog
            .test_run(opts)
            .with_context(|| format!("BPF_PROG_TEST_RUN on a {}-byte frame", frame.len()))?;
        Ok((r.return_value, r.duration))
    }

    /// Like [`Self::test_run`] for the object's empty `baseline_pass`
    /// program, the benchmark's yardstick.
    pub fn test_run_baseline(&mut self, frame: &[u8], repeat: u32) -> anyhow::Result<Duration> {
        let prog: &mut Xdp = self
            .ebpf
            .program_mut(BASELINE)
            .context("the XDP object has no baseline program")?
            .try_into()?;
        if prog.fd().is_err() {
            prog.load()?;
        }
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(frame);
        opts.repeat = repeat;
        Ok(prog.test_run(opts)?.duration)
    }

    pub fn counters(&self) -> anyhow::Result<Counters> {
        Counters::read(&PerCpuArray::try_from(&self.counters)?)
    }

    /// The ring buffer reader; can be taken once.
    pub fn take_records(&mut self) -> anyhow::Result<RecordReader> {
        Ok(RecordReader::new(
            self.records
                .take()
                .context("the record reader was already taken")?,
        ))
    }

    pub fn whitelist(&mut self) -> anyhow::Result<WhitelistMap<&mut MapData>> {
        Ok(self.editable.whitelist(Some(self.whitelist_max))?)
    }

    /// The kernel ignore list (R4.6).
    pub fn ignore(&mut self) -> anyhow::Result<IgnoreMap<&mut MapData>> {
        Ok(self.editable.ignore()?)
    }

    /// Removes pre-filter entries of attempts older than `timeout_ns` (their
    /// handshake can no longer succeed, R5.1), takes back hint counts the
    /// LRU left behind, and updates [`Self::pending_stats`]; returns the
    /// number of entries removed. One batched walk of the table (a syscall
    /// per 8192 entries) plus a syscall per removed entry, and two 1 ms
    /// pauses (see `kernel::pending`). `now_ns` is CLOCK_MONOTONIC, the base
    /// of the kernel records' coarse clock. Fails once the sweeper was taken
    /// ([`Self::take_sweeper`]).
    pub fn sweep_pending(&mut self, now_ns: u64, timeout_ns: u64) -> anyhow::Result<usize> {
        self.sweeper
            .as_mut()
            .context("the pending-table sweeper was taken: sweep through it")?
            .sweep(now_ns, timeout_ns)
    }

    /// The pending table as the last sweep found it: entries, swept,
    /// forgotten (LRU evictions), stale hints taken back. All zero once the
    /// sweeper was taken: ask the sweeper.
    pub fn pending_stats(&self) -> PendingStats {
        self.sweeper
            .as_ref()
            .map(PendingSweeper::stats)
            .unwrap_or_default()
    }

    /// The pending-table sweeper, to run on a thread of its own (it holds
    /// its own map handles); can be taken once.
    pub fn take_sweeper(&mut self) -> anyhow::Result<PendingSweeper> {
        self.sweeper
            .take()
            .context("the pending-table sweeper was already taken")
    }

    /// The pre-filter's hint array (tests check it against the table).
    pub fn hints(&self) -> &HintArray {
        &self.hints
    }

    /// The pending table's capacity, as loaded (`--kernel-pending-max`).
    pub fn pending_capacity(&self) -> u32 {
        self.pending_max
    }

    /// Number of entries in the pre-filter table (a gauge; a batched walk).
    pub fn pending_len(&self) -> anyhow::Result<usize> {
        Ok(self.pending_entries()?.len())
    }

    /// Every entry of the pre-filter table (a batched walk).
    pub fn pending_entries(&self) -> anyhow::Result<Vec<(FlowKey, PendingValue)>> {
        pending::entries(pending::map_data(&self.pending)?)
    }

    /// Forwards kernel-side diagnostics (aya-log) to the log.
    pub fn flush_kernel_log(&mut self) {
        if let Some(l) = self.logger.as_mut() {
            l.flush();
        }
    }
}

fn program(ebpf: &mut Ebpf) -> anyhow::Result<&mut Xdp> {
    ebpf.program_mut(PROGRAM)
        .context("the XDP object has no `slowscan` program")?
        .try_into()
        .context("the `slowscan` program is not an XDP program")
}

fn take(ebpf: &mut Ebpf, name: &str) -> anyhow::Result<Map> {
    ebpf.take_map(name)
        .with_context(|| format!("the XDP object has no {name} map"))
}

fn attach_error(iface: &str) -> String {
    format!(
        "attaching XDP to {iface} (another XDP program may already be attached: `ip link show {iface}`)"
    )
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; lift it.
fn raise_memlock() {
    let lim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain syscall with a valid pointer; failure only matters on old kernels.
    unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) };
}
