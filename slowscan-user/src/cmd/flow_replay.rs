//! `slowscan replay --flow-exports`: the engine over captured NetFlow/IPFIX
//! export datagrams (`slowscan::flows::netflow::replay`).
use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, Instant},
};

use serde::Serialize;
use slowscan::{
    engine::{EngineConfig, EngineStats, Report},
    flows::netflow::replay::{FlowReplay, replay},
};

use super::replay::{AlertOut, write_report};

#[derive(Serialize)]
struct FlowReport<'a> {
    #[serde(flatten)]
    totals: &'a Report,
    complete: bool,
    flow_exports: &'a FlowReplay,
    /// The reordering horizon, seconds (`null`: the whole input sorted).
    max_lateness_seconds: Option<f64>,
    engine: EngineStats,
    alerts: u64,
    seconds: f64,
}

pub fn run(
    files: &[PathBuf],
    max_lateness: Option<Duration>,
    cfg: EngineConfig,
    alerts_path: Option<&Path>,
    report: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let mut alerts = AlertOut::open(alerts_path)?;
    let mut engine = slowscan::engine::Engine::new(cfg);
    let started = Instant::now();
    let lateness_ns = max_lateness.map_or(u64::MAX, |d| d.as_nanos() as u64);
    let r = replay(files, lateness_ns, &mut engine, |batch| alerts.write(batch))?;
    alerts.flush()?;
    let stats = engine.stats();
    let totals = engine.report();
    if let Some(path) = report {
        write_report(
            path,
            &FlowReport {
                totals: &totals,
                complete: true,
                flow_exports: &r,
                max_lateness_seconds: max_lateness.map(|d| d.as_secs_f64()),
                engine: stats,
                alerts: stats.alerts,
                seconds: started.elapsed().as_secs_f64(),
            },
        )?;
    }
    let d = &r.decode;
    tracing::info!(
        "replayed flow exports: {} datagrams, {} records ({} TCP); {} attempts ({} failed, {} \
         established), {} late, {} server replies; {} sequence gaps ({} lost); {} sampled \
         exporters; {}",
        d.datagrams,
        d.records,
        d.tcp_records,
        r.feed.attempts,
        r.feed.failed,
        r.feed.established,
        r.feed.late,
        r.feed.replies,
        d.sequence_gaps,
        d.sequence_lost,
        d.sampled_exporters,
        slowscan::count(stats.alerts, "alert"),
    );
    Ok(ExitCode::SUCCESS)
}
