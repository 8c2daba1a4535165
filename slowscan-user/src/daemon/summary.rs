//! What the sensor knows at one moment ([`Snapshot`]: metrics, periodic and
//! SIGUSR1 summaries) and the final summary printed at exit.
use std::{fmt, time::Duration};

use slowscan_common::Counter;

use super::alerts::AlertStats;
use crate::{
    engine::{EngineStats, Report},
    kernel::Counters,
};

#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub kernel: Counters,
    /// Ring items of the wrong size (build mismatch).
    pub bad_items: u64,
    /// Engine statistics over the whole run (learning and detection phases
    /// added up; gauges are the current engine's).
    pub engine: EngineStats,
    pub alerts: AlertStats,
    pub memory_bytes: usize,
    pub learning: bool,
    pub kernel_pending: Option<usize>,
    /// Pending attempts the kernel's LRU table forgot (see `kernel::PendingStats`).
    pub kernel_forgotten: u64,
    pub whitelist_entries: usize,
    /// Worst age of a record when the ring reader took it: since start, and
    /// since the previous snapshot.
    pub reader_lag_max: Duration,
    pub reader_lag_recent: Duration,
    /// Age of the last good checkpoint (with `--state`; None before the first).
    pub checkpoint_age: Option<Duration>,
    pub checkpoint_failures: u64,
    pub iface_attached: bool,
    pub iface_losses: u64,
}

impl Snapshot {
    pub fn records_lost(&self) -> u64 {
        self.kernel.get(Counter::RingFull) + self.bad_items
    }
}

/// The attempt outcomes both summaries open with (R1, R5).
struct Outcomes<'a>(&'a EngineStats);

impl fmt::Display for Outcomes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.0;
        write!(
            f,
            "records={} attempts={} established={} failed={} untracked={} retransmissions={}",
            e.records, e.attempts, e.established, e.failed, e.untracked, e.retransmissions
        )
    }
}

impl fmt::Display for Snapshot {
    /// One line: `records=… attempts=… established=… failed=… …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.engine;
        write!(
            f,
            "{} pending={} sources={} alerts={} alerts_queued={} alerts_dropped={} records_lost={} \
             pending_forgotten={} frames={} reader_lag_max_ms={:.1}",
            Outcomes(e),
            e.pending,
            e.sources,
            self.alerts.written,
            self.alerts.queued,
            self.alerts.dropped,
            self.records_lost(),
            self.kernel_forgotten,
            self.kernel.get(Counter::Frames),
            self.reader_lag_max.as_secs_f64() * 1e3,
        )
    }
}

/// The final summary printed on stderr at exit.
pub struct Summary {
    pub iface: String,
    pub ran_for: Duration,
    pub stop_reason: String,
    pub snapshot: Snapshot,
    pub report: Report,
    pub learned: Option<usize>,
    /// Learning was cut short (by this signal): what was learned so far was
    /// written (if there was a file to write it to).
    pub learning_interrupted: Option<String>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.snapshot;
        let e = &s.engine;
        writeln!(
            f,
            "slowscan summary: {} on {} for {:.1} s ({})",
            crate::count(s.alerts.written, "alert"),
            self.iface,
            self.ran_for.as_secs_f64(),
            self.stop_reason
        )?;
        writeln!(
            f,
            "  engine: {} whitelisted_records={} evicted_pending={} evicted_sources={} pending={} sources={}",
            Outcomes(e),
            e.whitelisted_records,
            e.evicted_pending,
            e.evicted_sources,
            e.pending,
            e.sources
        )?;
        writeln!(
            f,
            "  kernel: {} pending_forgotten={} records_lost={}",
            s.kernel,
            s.kernel_forgotten,
            s.records_lost()
        )?;
        writeln!(
            f,
            "  sensor: reader_lag_max_ms={:.1} alerts_queued={} alerts_dropped={} alert_write_errors={} \
             checkpoint_failures={} interface_losses={}",
            s.reader_lag_max.as_secs_f64() * 1e3,
            s.alerts.queued,
            s.alerts.dropped,
            s.alerts.write_errors,
            s.checkpoint_failures,
            s.iface_losses
        )?;
        if let Some(n) = self.learned {
            writeln!(
                f,
                "  learned whitelist: {}",
                crate::count(n as u64, "destination")
            )?;
        }
        if !self.report.sources.is_empty() {
            writeln!(f, "  per source (detection phase):")?;
            for (ip, t) in &self.report.sources {
                writeln!(
                    f,
                    "    {ip}: attempts={} established={} failed={} failed_pairs={}",
                    t.attempts, t.established, t.failed, t.failed_pairs
                )?;
            }
        }
        Ok(())
    }
}
