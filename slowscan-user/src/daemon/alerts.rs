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

use super::sink::{AlertSink, LineSink};
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

pub struct AlertPath<S = AlertSink> {
    sink: S,
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

    /// A reload: alerts go to `spec` from now on (what waits in the queue
    /// too). On failure the old sink stays.
    pub fn retarget(&mut self, spec: &Path) -> anyhow::Result<()> {
        self.sink = AlertSink::open(spec)?;
        info!("alerts now go to {}", self.sink.describe());
        self.flush();
        Ok(())
    }
}

impl<S: LineSink> AlertPath<S> {
    pub fn new(sink: S, cap: usize, observer: Observer) -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::sink::tiny_disk::TinyDisk;
    use crate::engine::{Shape, Target, Window};

    fn alert(failed_pairs: u32) -> Alert {
        Alert {
            timestamp_ns: 1_403_690_700_000_000_000,
            source: "198.51.100.66".parse().unwrap(),
            identity: crate::engine::Identity::Address("198.51.100.66".parse().unwrap()),
            addresses: vec!["198.51.100.66".parse().unwrap()],
            addresses_total: 1,
            detector: 0,
            failed_pairs,
            estimated: false,
            threshold: 3,
            window: Window::Sliding(3600 * 1_000_000_000),
            window_start_ns: Some(1_403_686_800_000_000_000),
            first_failure_ns: 1_403_686_800_000_000_000,
            last_failure_ns: 1_403_690_640_000_000_000,
            shape: Shape::Vertical,
            distinct_hosts: 1,
            distinct_ports: failed_pairs,
            targets: vec![Target {
                ip: "198.51.100.2".parse().unwrap(),
                port: 22,
            }],
            alert_seq: 1,
        }
    }

    fn path_on(disk: TinyDisk, cap: usize) -> AlertPath<TinyDisk> {
        let observer = Observer {
            name: "test".into(),
            interface: Some("veth0".into()),
        };
        AlertPath::new(disk, cap, observer)
    }

    /// `slowscan.failed_pairs` of each line of the file, in file order.
    fn counts_in(path: &std::path::Path) -> Vec<u64> {
        TinyDisk::contents(path)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("a whole JSON line");
                v["slowscan"]["failed_pairs"].as_u64().unwrap()
            })
            .collect()
    }

    #[test]
    fn a_full_disk_queues_alerts_in_order_and_writing_resumes() {
        let disk = TinyDisk::new("resume.jsonl", 0);
        let (file, capacity) = (disk.path.clone(), disk.capacity.clone());
        let mut p = path_on(disk, 10);
        for n in [4, 8, 16] {
            p.send(&alert(n));
        }
        // The first send failed; the others wait for the retry, not the disk.
        let s = p.stats();
        assert_eq!((s.written, s.queued, s.write_errors), (0, 3, 1), "{s:?}");
        assert!(counts_in(&file).is_empty());

        // Room for one line and a half: one is written, the torn half cut.
        let line = crate::fleet::alert_json(&alert(4), &p.observer, Scope::Sensor, None).len() + 1;
        capacity.set(line as u64 * 3 / 2);
        assert_eq!(p.flush(), 1);
        assert_eq!(counts_in(&file), [4]);
        let s = p.stats();
        assert_eq!((s.written, s.queued, s.write_errors), (1, 2, 2), "{s:?}");

        // Space returns: the rest, in order, then new alerts at once.
        capacity.set(1 << 20);
        assert_eq!(p.flush(), 2);
        p.send(&alert(32));
        assert_eq!(counts_in(&file), [4, 8, 16, 32]);
        let s = p.stats();
        assert_eq!(
            (s.written, s.queued, s.dropped, s.write_errors),
            (4, 0, 0, 2),
            "{s:?}"
        );
        std::fs::remove_file(&file).unwrap();
    }

    #[test]
    fn a_full_queue_drops_new_alerts_and_counts_them() {
        let disk = TinyDisk::new("drops.jsonl", 0);
        let (file, capacity) = (disk.path.clone(), disk.capacity.clone());
        let mut p = path_on(disk, 2);
        for n in [4, 8, 16, 32, 64] {
            p.send(&alert(n));
        }
        let s = p.stats();
        assert_eq!((s.queued, s.dropped), (2, 3), "{s:?}");
        // The earliest alerts of the scan are the ones kept.
        capacity.set(1 << 20);
        assert_eq!(p.flush(), 2);
        assert_eq!(counts_in(&file), [4, 8]);
        let s = p.stats();
        assert_eq!((s.written, s.queued, s.dropped), (2, 0, 3), "{s:?}");
        std::fs::remove_file(&file).unwrap();
    }

    #[test]
    fn alerts_still_unwritten_at_exit_leave_the_queue() {
        let disk = TinyDisk::new("finish.jsonl", 0);
        let file = disk.path.clone();
        let mut p = path_on(disk, 10);
        p.send(&alert(4));
        p.finish();
        // Logged instead (see `finish`): nothing waits, nothing half-written.
        assert_eq!(p.stats().queued, 0);
        assert!(counts_in(&file).is_empty());
        std::fs::remove_file(&file).unwrap();
    }
}
