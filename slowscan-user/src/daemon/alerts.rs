//! The one path every alert takes (R8): logged, turned into its JSON line,
//! queued, written to the sink. This is the seam for what alerts will carry
//! and where they will go next (sensor identity fields, a fleet sink):
//! change [`AlertPath::send`], nothing else.
//!
//! A sink that fails (full or failing disk, closed stdout) does not stop
//! detection: unwritten lines wait in a bounded in-memory queue, oldest
//! first, and are retried every [`RETRY_EVERY`]; when the queue is full, new
//! alerts are dropped and counted (the earliest alerts of a scan are kept).
//! One log line says when writing fails and one when it resumes.
use std::{
    collections::VecDeque,
    path::Path,
    time::{Duration, Instant},
};

use tracing::{error, info, warn};

use super::sink::AlertSink;
use crate::engine::{Alert, Observer};
use crate::fleet::Scope;

/// Unwritten alerts held in memory (an alert line is about 1 KiB).
pub const QUEUE_CAP: usize = 10_000;
/// How often a failing sink is tried again.
pub const RETRY_EVERY: Duration = Duration::from_secs(1);

/// What the alert path has done, for metrics and summaries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AlertStats {
    /// Alerts on their sink.
    pub written: u64,
    /// Alerts waiting for the sink (gauge).
    pub queued: u64,
    /// Alerts dropped because the queue was full.
    pub dropped: u64,
    /// Failed write attempts.
    pub write_errors: u64,
}

pub struct AlertPath {
    sink: AlertSink,
    /// Who wrote the alerts (`observer.*` in every line).
    observer: Observer,
    queue: VecDeque<String>,
    cap: usize,
    stats: AlertStats,
    /// Since when writing fails, and the last error.
    failing: Option<(Instant, String)>,
    next_retry: Instant,
}

impl AlertPath {
    pub fn open(spec: &Path, observer: Observer) -> anyhow::Result<Self> {
        Ok(Self::new(AlertSink::open(spec)?, QUEUE_CAP, observer))
    }

    pub fn new(sink: AlertSink, cap: usize, observer: Observer) -> Self {
        Self {
            sink,
            observer,
            queue: VecDeque::new(),
            cap,
            stats: AlertStats::default(),
            failing: None,
            next_retry: Instant::now(),
        }
    }

    pub fn describe(&self) -> String {
        self.sink.describe()
    }

    pub fn stats(&self) -> AlertStats {
        AlertStats {
            queued: self.queue.len() as u64,
            ..self.stats
        }
    }

    /// Sends one alert: logged, queued, and written at once unless the sink
    /// is failing (then at its next retry).
    /// An alert this sensor decided on its own counts (`slowscan.scope`:
    /// `sensor`).
    pub fn send(&mut self, a: &Alert) {
        self.send_as(a, Scope::Sensor, None);
    }

    /// The one path every alert takes: logged, queued, written (or kept in
    /// memory while the sink fails). `sensors`: the fleet's contributors.
    pub fn send_as(&mut self, a: &Alert, scope: Scope, sensors: Option<&[String]>) {
        info!(
            "ALERT ({}) {} {}: {} failed pairs > threshold {} ({} hosts, {} ports)",
            scope.as_str(),
            a.source,
            a.shape.name(),
            a.failed_pairs,
            a.threshold,
            a.distinct_hosts,
            a.distinct_ports
        );
        if self.queue.len() >= self.cap {
            self.stats.dropped += 1;
            error!(
                "alert from {} dropped: {} alerts already wait for {} ({} dropped so far)",
                a.source,
                self.queue.len(),
                self.sink.describe(),
                self.stats.dropped
            );
            return;
        }
        let mut line = crate::fleet::alert_json(a, &self.observer, scope, sensors);
        line.push('\n');
        self.queue.push_back(line);
        if self.failing.is_none() {
            self.flush();
        }
    }

    /// Tick: tries a failing sink again when its retry is due.
    pub fn retry_due(&mut self) {
        if !self.queue.is_empty() && Instant::now() >= self.next_retry {
            self.flush();
        }
    }

    /// Writes queued lines in order until one fails; returns how many were
    /// written.
    pub fn flush(&mut self) -> usize {
        let mut n = 0;
        while let Some(line) = self.queue.front() {
            match self.sink.write_line(line) {
                Ok(()) => {
                    self.queue.pop_front();
                    self.stats.written += 1;
                    n += 1;
                }
                Err(e) => {
                    self.stats.write_errors += 1;
                    self.next_retry = Instant::now() + RETRY_EVERY;
                    if self.failing.is_none() {
                        error!(
                            "writing alerts to {} fails ({e}): detection goes on, {} alerts wait in memory \
                             (at most {}), retried every {} s",
                            self.sink.describe(),
                            self.queue.len(),
                            self.cap,
                            RETRY_EVERY.as_secs()
                        );
                        self.failing = Some((Instant::now(), e.to_string()));
                    }
                    return n;
                }
            }
        }
        if let Some((since, _)) = self.failing.take() {
            info!(
                "writing alerts to {} again after {:.0} s ({} dropped meanwhile)",
                self.sink.describe(),
                since.elapsed().as_secs_f64(),
                self.stats.dropped
            );
        }
        n
    }

    /// SIGHUP: reopen the file (logrotate), then write what waits.
    pub fn reopen(&mut self) {
        match self.sink.reopen() {
            Ok(()) => info!("alerts file {} reopened", self.sink.describe()),
            Err(e) => warn!("{e:#}"),
        }
        self.flush();
    }

    /// At exit: a last try; alerts still unwritten go to the log, so they
    /// are not lost with the process.
    pub fn finish(&mut self) {
        self.flush();
        if self.queue.is_empty() {
            return;
        }
        error!(
            "{} alerts could not be written to {}: they follow, one per line",
            self.queue.len(),
            self.sink.describe()
        );
        for line in self.queue.drain(..) {
            error!("unwritten alert: {}", line.trim_end());
        }
    }
}
