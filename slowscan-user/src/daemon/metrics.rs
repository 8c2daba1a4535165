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
//! `slowscan_engine_memory_bytes`, `slowscan_learning`; the identity rule
//! (R9): the gauges `slowscan_identity_macs` (MACs learned) and
//! `slowscan_identity_routers` (of them, taken for a router's) and the counter
//! `slowscan_identity_macs_dropped_total` (MACs beyond the table's cap). The sensor's own
//! health: `slowscan_reader_lag_seconds` (worst age of a record when the ring
//! reader handed it to the engine, over the last second) and `slowscan_reader_lag_max_seconds`
//! (since start), `slowscan_alerts_queued`, `slowscan_alerts_dropped_total`,
//! `slowscan_alert_write_errors_total`, `slowscan_checkpoint_age_seconds`,
//! `slowscan_checkpoint_failures_total`, `slowscan_interface_attached`,
//! `slowscan_interface_losses_total`.
use std::net::SocketAddr;

use anyhow::Context;
use metrics::{counter, gauge};
use metrics_exporter_prometheus::PrometheusBuilder;

use super::Snapshot;

/// Starts the HTTP listener (`GET /metrics` only, see `metrics_http`) on
/// the current tokio runtime.
pub fn install(addr: SocketAddr) -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind(addr)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .and_then(tokio::net::TcpListener::from_std)
        .with_context(|| {
            format!(
                "starting the Prometheus endpoint on {addr} (in use? `--metrics off` disables it)"
            )
        })?;
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    tokio::spawn(super::metrics_http::serve(listener, handle));
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
        "Worst age of a record when the ring reader handed it to the engine, over the last second"
    );
    metrics::describe_gauge!(
        "slowscan_reader_lag_max_seconds",
        "Worst age of a record when the ring reader handed it to the engine, since start"
    );
    metrics::describe_gauge!(
        "slowscan_checkpoint_age_seconds",
        "Age of the last engine state checkpoint that reached the disk (time since start while none has)"
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
    metrics::describe_gauge!(
        "slowscan_identity_macs",
        "MACs learned from attempts, hosts and routers (R9)"
    );
    metrics::describe_gauge!(
        "slowscan_identity_routers",
        "Learned MACs now taken for a router's: their sources are counted per address or prefix (R9)"
    );
    metrics::describe_counter!(
        "slowscan_identity_macs_dropped_total",
        "MACs not learned because the table was full: treated as a router's (R9)"
    );
    metrics::describe_counter!(
        "slowscan_engine_outage_failures_total",
        "Failed attempts to live services: outages, counted toward no detector (R4.5)"
    );
    metrics::describe_counter!(
        "slowscan_alerts_suppressed_total",
        "Detector crossings withheld because an alert with at least half the count was written in the window (R8)"
    );
    metrics::describe_counter!(
        "slowscan_kernel_frames_total",
        "Frames the XDP program inspected"
    );
    metrics::describe_counter!(
        "slowscan_kernel_non_ip_total",
        "Frames that were neither IPv4 nor IPv6"
    );
    metrics::describe_counter!(
        "slowscan_kernel_non_tcp_total",
        "IP packets that were not TCP"
    );
    metrics::describe_counter!(
        "slowscan_kernel_malformed_total",
        "Frames whose headers were cut short or inconsistent (R2)"
    );
    metrics::describe_counter!(
        "slowscan_kernel_fragments_skipped_total",
        "Later IP fragments, which carry no TCP header (R2.1)"
    );
    metrics::describe_counter!(
        "slowscan_kernel_whitelisted_total",
        "TCP segments to whitelisted destinations, dropped from the record stream in the kernel (R4.4)"
    );
    metrics::describe_counter!(
        "slowscan_kernel_attempts_emitted_total",
        "Connection attempts (SYN) sent to the daemon (R1)"
    );
    metrics::describe_counter!(
        "slowscan_kernel_follow_ups_emitted_total",
        "Candidate follow-up segments sent to the daemon (R5)"
    );
    metrics::describe_counter!(
        "slowscan_kernel_other_emitted_total",
        "Other TCP segments sent to the daemon (pre-filter off)"
    );
    metrics::describe_counter!(
        "slowscan_kernel_ring_full_total",
        "Records lost because the ring buffer was full"
    );
    metrics::describe_counter!(
        "slowscan_kernel_pending_insert_failed_total",
        "Attempts the kernel pending table could not take (sent untracked: neither Failed nor Established)"
    );
    metrics::describe_counter!(
        "slowscan_kernel_ignored_total",
        "Records suppressed in the kernel because their source is on the ignore list (R4.6)"
    );
    metrics::describe_counter!(
        "slowscan_kernel_pending_inserted_total",
        "New entries inserted into the kernel pending table of attempts (R5)"
    );
    metrics::describe_counter!(
        "slowscan_kernel_pending_resolved_total",
        "Kernel pending table entries resolved by their follow-up (R5)"
    );
    metrics::describe_counter!(
        "slowscan_kernel_pending_forgotten_total",
        "Pending attempts the kernel's LRU table forgot to make room (under a flood)"
    );
    for (name, help) in [
        (
            "slowscan_kernel_header_anomalies_total",
            "TCP segments read although a header length field disagreed with the captured bytes (R2.1)",
        ),
        (
            "slowscan_kernel_first_fragments_total",
            "First fragments whose TCP ports, sequence number and flags were read (R2.1)",
        ),
        (
            "slowscan_kernel_too_deep_total",
            "Frames past the parser's bounds (VLAN stack, extension headers, tunnel depth)",
        ),
        (
            "slowscan_kernel_decap_gre_total",
            "GRE headers opened (R2.1)",
        ),
        (
            "slowscan_kernel_decap_erspan_total",
            "ERSPAN headers opened (R2.1)",
        ),
        (
            "slowscan_kernel_decap_vxlan_total",
            "VXLAN headers opened (R2.1)",
        ),
        (
            "slowscan_kernel_decap_geneve_total",
            "Geneve headers opened (R2.1)",
        ),
        (
            "slowscan_kernel_decap_gtpu_total",
            "GTP-U headers opened (R2.1)",
        ),
        (
            "slowscan_kernel_decap_mpls_total",
            "MPLS label stacks opened (R2.1)",
        ),
        (
            "slowscan_kernel_decap_pppoe_total",
            "PPPoE session headers opened (R2.1)",
        ),
        (
            "slowscan_kernel_decap_pbb_total",
            "802.1ah (provider backbone bridging) headers opened (R2.1)",
        ),
        (
            "slowscan_kernel_decap_ip_in_ip_total",
            "IP-in-IP, 6in4 and 4in6 headers opened (R2.1)",
        ),
    ] {
        metrics::describe_counter!(name, help);
    }
    metrics::describe_counter!("slowscan_kernel_ipv6_total", "IPv6 packets inspected");
    metrics::describe_counter!(
        "slowscan_kernel_vlan_tagged_total",
        "Frames with at least one VLAN tag"
    );
    metrics::describe_counter!(
        "slowscan_engine_records_total",
        "Records the engine processed"
    );
    metrics::describe_counter!(
        "slowscan_engine_whitelisted_records_total",
        "Records the engine ignored because their destination is whitelisted (R4.4)"
    );
    metrics::describe_counter!(
        "slowscan_engine_ignored_records_total",
        "Records the engine ignored because their source is in the ignore list (R4.6)"
    );
    metrics::describe_counter!(
        "slowscan_engine_attempts_total",
        "Connection attempts opened (R1, R5; retransmissions excluded)"
    );
    metrics::describe_counter!(
        "slowscan_engine_established_total",
        "Attempts decided Established (R5)"
    );
    metrics::describe_counter!(
        "slowscan_engine_failed_total",
        "Attempts decided Failed (R5; outages and early evictions included)"
    );
    metrics::describe_counter!(
        "slowscan_engine_untracked_total",
        "Attempts the kernel marked untracked: neither Failed nor Established"
    );
    metrics::describe_counter!(
        "slowscan_engine_retransmissions_total",
        "Retransmitted SYNs: the same attempt again (R5.1)"
    );
    metrics::describe_counter!(
        "slowscan_evictions_total",
        "Memory cap evictions: pending attempts decided Failed early, sources or live services forgotten"
    );
    metrics::describe_counter!(
        "slowscan_expired_sources_total",
        "Sources forgotten because no failed pair was left in any window"
    );
    metrics::describe_gauge!(
        "slowscan_engine_memory_bytes",
        "Estimated bytes held by the detection engine"
    );
    metrics::describe_gauge!(
        "slowscan_learning",
        "1 while learning a whitelist (--learn-for), 0 while detecting"
    );
    metrics::describe_gauge!(
        "slowscan_kernel_pending_entries",
        "Entries in the kernel pre-filter table of pending attempts"
    );
    metrics::describe_gauge!(
        "slowscan_kernel_pending_capacity",
        "Capacity of the kernel pending table (--kernel-pending-max): a handshake is recognised under a flood of R new attempts/s if it completes within capacity / R seconds"
    );
    metrics::describe_gauge!(
        "slowscan_kernel_whitelist_entries",
        "Entries in the kernel whitelist map (R4.4)"
    );
    metrics::describe_counter!(
        "slowscan_alert_write_errors_total",
        "Failed attempts to write an alert to its sink (the alert waits in memory and is retried)"
    );
    metrics::describe_counter!(
        "slowscan_checkpoint_failures_total",
        "Engine checkpoints that could not be written (retried)"
    );
    metrics::describe_counter!(
        "slowscan_interface_losses_total",
        "Times the monitored interface vanished (the sensor reattaches when it returns)"
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
    gauge!("slowscan_identity_macs").set(e.identity_macs as f64);
    gauge!("slowscan_identity_routers").set(e.identity_routers as f64);
    counter!("slowscan_identity_macs_dropped_total").absolute(e.macs_dropped);
    gauge!("slowscan_engine_memory_bytes").set(s.memory_bytes as f64);
    gauge!("slowscan_learning").set(if s.learning { 1.0 } else { 0.0 });
    if let Some(n) = s.kernel_pending {
        gauge!("slowscan_kernel_pending_entries").set(n as f64);
    }
    gauge!("slowscan_kernel_whitelist_entries").set(s.whitelist_entries as f64);
}
