//! The [`Sensor`]'s handlers, one per kind of event: records, the tick,
//! signals, the end of learning, control requests (`slowscan status`,
//! `slowscan explain`). Each does its part and tells the loop whether to go
//! on.
use std::time::Instant;

use anyhow::Context;
use slowscan_common::PacketRecord;
use tracing::{info, warn};

use super::{
    Snapshot,
    control::{self, Request, Response, StatusReport},
    learning, metrics,
    sensor::{Flow, PUBLISH_EVERY, Phase, Sensor, detection_engine},
    signals::Sig,
};
use crate::{
    engine::{EngineStats, Whitelist},
    ignore::IgnoreList,
};

impl Sensor {
    /// A `slowscan status|explain` connection: one request, one answer. A
    /// client that fails is logged and dropped; detection goes on.
    pub(super) async fn on_control(&mut self, mut conn: tokio::net::UnixStream) {
        let resp = match control::read_request(&mut conn).await {
            Ok(req) => self.answer(&req),
            Err(e) => Response::Error(format!("{e:#}")),
        };
        if let Err(e) = control::write_response(&mut conn, &resp).await {
            warn!("control socket: {e:#}");
        }
    }

    fn answer(&mut self, req: &Request) -> Response {
        self.catch_up();
        match *req {
            Request::Status { top } => {
                let snap = match self.snapshot() {
                    Ok(s) => s,
                    Err(e) => return Response::Error(format!("{e:#}")),
                };
                let e = &snap.engine;
                Response::Status(Box::new(StatusReport {
                    iface: self.cfg.iface.clone(),
                    sensor_name: self.cfg.sensor_name.clone(),
                    pid: std::process::id(),
                    identities: super::sensor::identities_label(&self.cfg.engine.identity),
                    uptime_seconds: self.started.elapsed().as_secs_f64(),
                    phase: if snap.learning {
                        "learning"
                    } else {
                        "detecting"
                    }
                    .into(),
                    detectors: control::detector_statuses(&self.engine, top),
                    pending_attempts: e.pending,
                    kernel_pending_entries: snap.kernel_pending.map(|n| n as u64),
                    kernel_pending_max: Some(u64::from(self.dp.pending_capacity())),
                    tracked_sources: e.sources,
                    sketched_sources: e.sketched_sources,
                    live_services: e.services,
                    outage_failures: e.outage_failures,
                    records_lost: snap.records_lost(),
                    alerts_written: snap.alerts.written,
                    alerts_queued: snap.alerts.queued,
                    alerts_dropped: snap.alerts.dropped,
                    alerts_suppressed: e.alerts_suppressed,
                    checkpoint_age_seconds: snap.checkpoint_age.map(|d| d.as_secs_f64()),
                    interface_attached: snap.iface_attached,
                    kernel: snap
                        .kernel
                        .iter()
                        .map(|(n, v)| (n.to_string(), v))
                        .collect(),
                    flows: None,
                    zeek: None,
                }))
            }
            Request::Explain { source } => {
                Response::Explain(control::explain_report(&self.engine, source))
            }
        }
    }

    /// A batch from the ring reader.
    pub(super) fn on_records(&mut self, batch: Vec<PacketRecord>) {
        self.feed_engine(batch);
    }

    /// Every 250 ms: time advances (attempts past their deadline fail,
    /// R5.1), learning may end, the interface is checked, failing alert and
    /// checkpoint writes are retried, metrics published.
    pub(super) async fn on_tick(&mut self) -> anyhow::Result<Flow> {
        self.catch_up();
        if let Phase::Learning { until, .. } = self.phase
            && Instant::now() >= until
            && let Flow::Stop(r) = self.on_learning_done(None)?
        {
            return Ok(Flow::Stop(r));
        }
        self.iface.check(&mut self.dp);
        self.alerts.retry_due();
        if let Some(c) = &mut self.checkpointer {
            c.poll().await;
        }
        if self.last_publish.elapsed() >= PUBLISH_EVERY {
            self.last_publish = Instant::now();
            if self.cfg.metrics.is_some() {
                metrics::publish(&self.snapshot()?);
            }
        }
        if let Some(every) = self.cfg.summary_every
            && self.last_summary.elapsed() >= every
        {
            self.last_summary = Instant::now();
            info!("summary: {}", self.snapshot()?);
        }
        self.dp.flush_kernel_log();
        Ok(Flow::Continue)
    }

    pub(super) async fn on_signal(&mut self, sig: Sig) -> anyhow::Result<Flow> {
        match sig {
            Sig::Reload => {
                self.reload();
                Ok(Flow::Continue)
            }
            Sig::Report => {
                self.catch_up();
                self.send_decided();
                if let (Some(c), Phase::Detecting) = (&mut self.checkpointer, &self.phase) {
                    match c.write_now(&self.engine.checkpoint()).await {
                        Ok(n) => info!(
                            "SIGUSR1: engine state checkpointed to {} ({n} bytes)",
                            c.path.display()
                        ),
                        Err(e) => warn!("SIGUSR1: checkpoint failed: {e:#}"),
                    }
                }
                info!("summary (SIGUSR1): {}", self.snapshot()?);
                Ok(Flow::Continue)
            }
            // Learning cut short is written by the shutdown, once the ring
            // is drained: everything seen before the signal counts.
            Sig::Stop(name) => Ok(Flow::Stop(name.to_string())),
        }
    }

    /// The learning period ended (or a signal cut it short): the learned
    /// set is written first, then goes into the kernel map (R4.4), then
    /// detection starts with a fresh engine — unless learning was all, or
    /// cut short.
    pub(super) fn on_learning_done(&mut self, interrupted: Option<&str>) -> anyhow::Result<Flow> {
        let Phase::Learning { started, until } = self.phase else {
            return Ok(Flow::Continue);
        };
        let wl = self.engine.learned().unwrap_or_default();
        let saved_to = match &self.cfg.learn_out {
            Some(p) => {
                wl.save(p).with_context(|| {
                    format!(
                        "the learned whitelist ({} destinations) could not be written",
                        wl.len()
                    )
                })?;
                Some(p.clone())
            }
            None => None,
        };
        let written = match &saved_to {
            Some(p) => format!("written to {}", p.display()),
            None => format!("not written (no {})", self.cfg.learn_out_option()),
        };
        self.learned = Some(wl.clone());
        if let Some(sig) = interrupted {
            let msg = format!(
                "learning interrupted by {sig} after {:.1} s of {:.1} s: the {} learned so far \
                 were {written} (a partial whitelist)",
                started.elapsed().as_secs_f64(),
                (until - started).as_secs_f64(),
                crate::count(wl.len() as u64, "destination")
            );
            warn!("{msg}");
            self.learning_interrupted = Some(msg);
            return Ok(Flow::Stop(sig.to_string()));
        }
        info!(
            "learning done: {} learned (R4.1), {written}",
            crate::count(wl.len() as u64, "destination")
        );
        if self.cfg.learn_only {
            return Ok(Flow::Stop("learning done".into()));
        }
        learning::load_into_kernel(&mut self.dp, &wl).with_context(|| match &saved_to {
            Some(p) => format!(
                "loading the learned whitelist ({} destinations, written to {}) into the kernel; \
                 restart with `--whitelist {}` and a --whitelist-max of at least {}",
                wl.len(),
                p.display(),
                p.display(),
                (wl.len() + self.file_whitelist.len()).next_power_of_two()
            ),
            None => format!(
                "loading the learned whitelist ({} destinations) into the kernel",
                wl.len()
            ),
        })?;
        info!(
            "{} learned destinations whitelisted in the kernel map (R4.4)",
            wl.len()
        );
        self.whitelist_entries = self.wanted_whitelist().len();
        self.base = add_stats(self.base, self.engine.stats());
        self.engine = detection_engine(&self.cfg, &mut self.saved);
        self.phase = Phase::Detecting;
        self.log_detecting();
        Ok(Flow::Continue)
    }

    /// The file's entries and those learned this run.
    fn wanted_whitelist(&self) -> Whitelist {
        let mut w = self.file_whitelist.clone();
        for (k, e) in self.learned.iter().flat_map(|l| l.iter()) {
            w.insert(*k, *e);
        }
        w
    }

    /// SIGHUP: the kernel map follows the `--whitelist` file (plus what
    /// this run learned). A file that cannot be read leaves the map as is.
    pub(super) fn reread_whitelist(&mut self) {
        let (wl, name) = match self.cfg.whitelist_file.clone() {
            Some(path) => match Whitelist::load(&path) {
                Ok(wl) => (wl, path.display().to_string()),
                Err(e) => {
                    warn!("rereading the whitelist (the kernel map is unchanged): {e}");
                    return;
                }
            },
            // No file (any more, after a reload): only what was learned.
            None if self.file_whitelist.is_empty() => return,
            None => (Whitelist::default(), "(no --whitelist file)".into()),
        };
        self.file_whitelist = wl;
        let want = self.wanted_whitelist();
        match learning::sync_kernel(&mut self.dp, &want) {
            Ok((added, removed)) => {
                self.whitelist_entries = want.len();
                info!(
                    "whitelist {name} reread: {} in the kernel maps ({added} added, {removed} removed)",
                    crate::count(want.len() as u64, "entry")
                );
            }
            Err(e) => warn!("whitelist {name} reread, but the kernel map: {e:#}"),
        }
    }

    /// SIGHUP: the kernel ignore maps follow the ignore file.
    pub(super) fn reread_ignore(&mut self) {
        let Some(path) = self.cfg.ignore_file.clone() else {
            return;
        };
        let list = match IgnoreList::load(&path) {
            Ok(l) => l,
            Err(e) => {
                warn!("rereading the ignore list (the kernel maps are unchanged): {e:#}");
                return;
            }
        };
        match self.sync_ignore(&list) {
            Ok((added, removed)) => info!(
                "ignore list {} reread: {} prefixes in the kernel maps ({added} added, {removed} removed)",
                path.display(),
                list.len()
            ),
            Err(e) => warn!(
                "ignore list {} reread, but the kernel maps: {e:#}",
                path.display()
            ),
        }
    }

    /// Makes the kernel ignore maps hold exactly `list`; returns (added,
    /// removed) prefixes.
    pub(super) fn sync_ignore(&mut self, list: &IgnoreList) -> anyhow::Result<(usize, usize)> {
        let mut map = self.dp.ignore()?;
        let have = map.list()?;
        let mut added = 0;
        for p in list.iter() {
            if !have.iter().any(|h| h == p) {
                map.insert(p)?;
                added += 1;
            }
        }
        let mut removed = 0;
        for p in have.iter().filter(|h| !list.iter().any(|p| p == *h)) {
            if map.remove(p)? {
                removed += 1;
            }
        }
        Ok((added, removed))
    }

    /// What the sensor knows now.
    pub(super) fn snapshot(&self) -> anyhow::Result<Snapshot> {
        let mem = self.engine.memory_usage();
        let pending = self.housekeeper.stats();
        Ok(Snapshot {
            kernel: self.dp.counters().context("reading the kernel counters")?,
            bad_items: self.feed.bad_items(),
            engine: add_stats(self.base, self.engine.stats()),
            alerts: self.alerts.stats(),
            memory_bytes: mem.pending_bytes
                + mem.source_bytes
                + mem.service_bytes
                + mem.identity_bytes,
            learning: matches!(self.phase, Phase::Learning { .. }),
            kernel_pending: pending.map(|p| p.entries as usize),
            kernel_forgotten: pending.map_or(0, |p| p.forgotten),
            whitelist_entries: self.whitelist_entries,
            reader_lag_max: self.feed.lag_max(),
            reader_lag_recent: self.feed.take_recent_lag(),
            checkpoint_age: self.checkpointer.as_ref().and_then(|c| c.age()),
            checkpoint_failures: self.checkpointer.as_ref().map_or(0, |c| c.failures()),
            iface_attached: self.iface.attached(),
            iface_losses: self.iface.losses(),
        })
    }
}

/// Counters of two engine phases added up; gauges are `b`'s.
fn add_stats(a: EngineStats, b: EngineStats) -> EngineStats {
    EngineStats {
        records: a.records + b.records,
        whitelisted_records: a.whitelisted_records + b.whitelisted_records,
        ignored_records: a.ignored_records + b.ignored_records,
        attempts: a.attempts + b.attempts,
        established: a.established + b.established,
        failed: a.failed + b.failed,
        outage_failures: a.outage_failures + b.outage_failures,
        untracked: a.untracked + b.untracked,
        retransmissions: a.retransmissions + b.retransmissions,
        evicted_pending: a.evicted_pending + b.evicted_pending,
        evicted_sources: a.evicted_sources + b.evicted_sources,
        expired_sources: a.expired_sources + b.expired_sources,
        evicted_services: a.evicted_services + b.evicted_services,
        alerts: a.alerts + b.alerts,
        alerts_suppressed: a.alerts_suppressed + b.alerts_suppressed,
        macs_dropped: a.macs_dropped + b.macs_dropped,
        ..b
    }
}
