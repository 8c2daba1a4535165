//! The Prometheus text endpoint: every kernel counter and engine gauge.
//!
//! Names: `slowscan_kernel_<counter>_total` for each kernel outcome counter
//! (frames, whitelisted, ring_full …), `slowscan_records_lost_total` (ring
//! buffer full + malformed ring items), `slowscan_kernel_pending_forgotten_total`
//! (attempts the kernel's LRU pending table forgot), `slowscan_engine_<stat>_total`
//! for engine counters (`…_outage_failures_total`: failures to live services,
//! R4.5), `slowscan_evictions_total{kind="pending"|"sources"|"services"}`,
//! `slowscan_expired_sources_total`, `slowscan_alerts_total`,
//! `slowscan_alerts_suppressed_total` (R8 across detectors), and the gauges
//! `slowscan_pending_attempts`, `slowscan_tracked_sources`,
//! `slowscan_sketched_sources`, `slowscan_live_services`,
//! `slowscan_kernel_pending_entries`, `slowscan_kernel_whitelist_entries`,
//! `slowscan_engine_memory_bytes`, `slowscan_learning`. The sensor's own
//! health: `slowscan_reader_lag_seconds` (worst age of a record when the ring
//! reader took it, over the last second) and `slowscan_reader_lag_max_seconds`
//! (since start), `slowscan_alerts_queued`, `slowscan_alerts_dropped_total`,
//! `slowscan_alert_write_errors_total`, `slowscan_checkpoint_age_seconds`,
//! `slowscan_checkpoint_failures_total`, `slowscan_interface_attached`,
//! `slowscan_interface_losses_total`.
use std::net::SocketAddr;

use anyhow::Context;
use metrics::{counter, gauge};
use metrics_exporter_prometheus::PrometheusBuilder;

use super::Snapshot;

/// Starts the HTTP listener on the current tokio runtime.
pub fn install(addr: SocketAddr) -> anyhow::Result<()> {
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .with_context(|| {
            format!(
                "starting the Prometheus endpoint on {addr} (in use? `--metrics off` disables it)"
            )
        })?;
    metrics::describe_counter!(
        "slowscan_records_lost_total",
        "Records the kernel could not hand to the daemon"
    );
    metrics::describe_counter!("slowscan_alerts_total", "Alerts written to the alert sink");
    metrics::describe_gauge!(
        "slowscan_alerts_queued",
        "Alerts waiting in memory for a failing sink (full disk)"
    );
    metrics::describe_counter!(
        "slowscan_alerts_dropped_total",
        "Alerts dropped because the in-memory queue for a failing sink was full"
    );
    metrics::describe_gauge!(
        "slowscan_reader_lag_seconds",
        "Worst age of a record when the ring reader took it, over the last second"
    );
    metrics::describe_gauge!(
        "slowscan_reader_lag_max_seconds",
        "Worst age of a record when the ring reader took it, since start"
    );
    metrics::describe_gauge!(
        "slowscan_checkpoint_age_seconds",
        "Age of the last engine state checkpoint that reached the disk"
    );
    metrics::describe_gauge!(
        "slowscan_interface_attached",
        "1 while the program is attached to the interface, 0 while the interface is gone"
    );
    metrics::describe_gauge!(
        "slowscan_pending_attempts",
        "Attempts waiting for their handshake (R5)"
    );
    metrics::describe_gauge!(
        "slowscan_tracked_sources",
        "Sources with failed attempts in some detector's window (R6)"
    );
    metrics::describe_gauge!(
        "slowscan_sketched_sources",
        "Sources whose failed pairs exceed the exact cap, counted by a sketch (R6.3)"
    );
    metrics::describe_gauge!(
        "slowscan_live_services",
        "Destinations Established within the service memory (R4.5)"
    );
    metrics::describe_counter!(
        "slowscan_engine_outage_failures_total",
        "Failed attempts to live services: outages, counted toward no detector (R4.5)"
    );
    metrics::describe_counter!(
        "slowscan_alerts_suppressed_total",
        "Detector crossings withheld because an alert with at least half the count was written in the window (R8)"
    );
    Ok(())
}

/// Publishes one snapshot (absolute values; cheap).
pub fn publish(s: &Snapshot) {
    for (name, v) in s.kernel.iter() {
        counter!(format!("slowscan_kernel_{name}_total")).absolute(v);
    }
    counter!("slowscan_records_lost_total").absolute(s.records_lost());
    counter!("slowscan_kernel_pending_forgotten_total").absolute(s.kernel_forgotten);
    let e = &s.engine;
    counter!("slowscan_engine_records_total").absolute(e.records);
    counter!("slowscan_engine_whitelisted_records_total").absolute(e.whitelisted_records);
    counter!("slowscan_engine_attempts_total").absolute(e.attempts);
    counter!("slowscan_engine_established_total").absolute(e.established);
    counter!("slowscan_engine_failed_total").absolute(e.failed);
    counter!("slowscan_engine_untracked_total").absolute(e.untracked);
    counter!("slowscan_engine_retransmissions_total").absolute(e.retransmissions);
    counter!("slowscan_evictions_total", "kind" => "pending").absolute(e.evicted_pending);
    counter!("slowscan_evictions_total", "kind" => "sources").absolute(e.evicted_sources);
    counter!("slowscan_evictions_total", "kind" => "services").absolute(e.evicted_services);
    counter!("slowscan_engine_outage_failures_total").absolute(e.outage_failures);
    counter!("slowscan_engine_ignored_records_total").absolute(e.ignored_records);
    counter!("slowscan_expired_sources_total").absolute(e.expired_sources);
    counter!("slowscan_alerts_total").absolute(s.alerts.written);
    gauge!("slowscan_alerts_queued").set(s.alerts.queued as f64);
    counter!("slowscan_alerts_dropped_total").absolute(s.alerts.dropped);
    counter!("slowscan_alert_write_errors_total").absolute(s.alerts.write_errors);
    gauge!("slowscan_reader_lag_seconds").set(s.reader_lag_recent.as_secs_f64());
    gauge!("slowscan_reader_lag_max_seconds").set(s.reader_lag_max.as_secs_f64());
    if let Some(age) = s.checkpoint_age {
        gauge!("slowscan_checkpoint_age_seconds").set(age.as_secs_f64());
    }
    counter!("slowscan_checkpoint_failures_total").absolute(s.checkpoint_failures);
    gauge!("slowscan_interface_attached").set(if s.iface_attached { 1.0 } else { 0.0 });
    counter!("slowscan_interface_losses_total").absolute(s.iface_losses);
    counter!("slowscan_alerts_suppressed_total").absolute(e.alerts_suppressed);
    gauge!("slowscan_sketched_sources").set(e.sketched_sources as f64);
    gauge!("slowscan_live_services").set(e.services as f64);
    gauge!("slowscan_pending_attempts").set(e.pending as f64);
    gauge!("slowscan_tracked_sources").set(e.sources as f64);
    gauge!("slowscan_engine_memory_bytes").set(s.memory_bytes as f64);
    gauge!("slowscan_learning").set(if s.learning { 1.0 } else { 0.0 });
    if let Some(n) = s.kernel_pending {
        gauge!("slowscan_kernel_pending_entries").set(n as f64);
    }
    gauge!("slowscan_kernel_whitelist_entries").set(s.whitelist_entries as f64);
}
