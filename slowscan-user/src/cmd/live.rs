//! The loop shared by the live record inputs without packet capture
//! (`slowscan collect`, `slowscan follow-zeek`): engine state restored and
//! checkpointed, alerts, metrics, signals, a control socket (`slowscan
//! status`/`explain`, each input adding its own section), a fleet
//! (`--fleet`, joined as the packet sensor joins it: [`FleetLink`]), and
//! engine time driven by the wall clock (records carry wall-clock times).
use std::{
    net::SocketAddr,
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use clap::Args as ClapArgs;
use slowscan::{
    daemon::{
        self, AlertPath, FleetLink, checkpoint,
        control::{self, BlockingControl, Request, Response, StatusReport},
    },
    engine::{Alert, Engine, Observer},
};

use super::options::{EngineArgs, FleetArgs, HumanDuration};

/// How often what is due is counted, metrics published, the stop checked.
pub const TICK: Duration = Duration::from_millis(250);

#[derive(ClapArgs)]
pub struct LiveArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    fleet: FleetArgs,
    /// Alerts as JSON lines: `-` (stdout) or a file appended to.
    #[arg(long, value_name = "PATH|-", default_value = "-")]
    alerts: PathBuf,
    /// Engine state file: restored at start, checkpointed every
    /// --checkpoint-every and at the end.
    #[arg(long, value_name = "PATH")]
    state: Option<PathBuf>,
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    checkpoint_every: HumanDuration,
    /// Prometheus text endpoint (`/metrics`).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// `observer.name` in every alert (default: the hostname).
    #[arg(long, value_name = "NAME")]
    sensor_name: Option<String>,
    /// Stop by itself after this long.
    #[arg(long = "for", value_name = "DURATION")]
    run_for: Option<HumanDuration>,
    /// The name `slowscan status --iface NAME` and `slowscan explain` know
    /// this input by (default: `collect-PORT` for collect, `zeek-STEM` for
    /// follow-zeek, STEM the log's file name before its extension).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
}

impl LiveArgs {
    /// `--name`, else `default`.
    pub fn name(&self, default: impl FnOnce() -> String) -> String {
        self.name.clone().unwrap_or_else(default)
    }
}

/// A live source of decided attempts.
pub trait Input {
    /// Reads what came (waiting at most about [`TICK`] when nothing did)
    /// into `engine`.
    fn read(&mut self, engine: &mut Engine, out: &mut Vec<Alert>) -> anyhow::Result<()>;
    /// The wall clock is `now_ns`: counts what is due, advances the engine.
    fn tick(&mut self, now_ns: u64, engine: &mut Engine, out: &mut Vec<Alert>);
    /// The end: counts everything held.
    fn finish(&mut self, engine: &mut Engine, out: &mut Vec<Alert>);
    /// Its metrics (a no-op without `--metrics`).
    fn publish(&self, engine: &Engine);
    /// The log line at the end.
    fn summary(&self, engine: &Engine) -> String;
    /// Its part of a `slowscan status` answer: `phase`, `records_lost` and
    /// its own section (`flows`, `zeek`).
    fn status(&self, report: &mut StatusReport);
}

pub fn unix_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Runs `input` until a stop signal or `--for`, answering `slowscan status`
/// and `explain` as `name` (see [`LiveArgs::name`]). `start` is the input's
/// start-up log line, logged once the control socket answers.
pub fn serve(
    a: &LiveArgs,
    name: &str,
    start: &str,
    input: &mut impl Input,
) -> anyhow::Result<ExitCode> {
    daemon::signals::install(daemon::signals::Reads::Interrupt)?;
    let sensor_name = a.sensor_name.clone().unwrap_or_else(daemon::hostname);
    let fleet = a.fleet.config(&sensor_name, &a.engine)?;
    let cfg = slowscan::engine::EngineConfig {
        export_failures: fleet.is_some(),
        ..a.engine.engine_config()?
    };
    let identities = daemon::identities_label(&cfg.identity);
    // Engine time is Unix time (records carry their writers' wall clocks).
    let mut engine = match &a.state {
        Some(p) => match checkpoint::load(p, false)? {
            Some(state) => Engine::restore(cfg, state, unix_now_ns()).0,
            None => Engine::new(cfg),
        },
        None => Engine::new(cfg),
    };
    let _rt = match a.metrics {
        Some(addr) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?;
            {
                let _g = rt.enter();
                daemon::metrics::install(addr)?;
            }
            Some(rt)
        }
        None => None,
    };
    let observer = Observer {
        name: sensor_name.clone(),
        interface: None,
    };
    // As the packet sensor: the engine's counted failures go to the store,
    // the fleet alerts this input claims are written, its own are held
    // until the store counted their failures (docs/fleet.md).
    let mut fleet = fleet.map(FleetLink::start).transpose()?;
    let mut alerts = AlertPath::open(&a.alerts, observer)?;
    let ctl = match BlockingControl::bind(name) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!("no control socket (`slowscan status` will not answer): {e:#}");
            None
        }
    };
    tracing::info!("{start}");
    tracing::info!("identities (R9): {identities}");
    let mut checkpointed: Option<Instant> = None;
    let save = |engine: &Engine, at: &mut Option<Instant>| -> anyhow::Result<()> {
        if let Some(p) = &a.state {
            checkpoint::save(p, &engine.checkpoint())?;
            *at = Some(Instant::now());
        }
        Ok(())
    };
    let mut out = Vec::new();
    let started = Instant::now();
    let mut last_tick = Instant::now();
    let mut last_checkpoint = Instant::now();
    loop {
        if let Some(sig) = slowscan::stop::requested() {
            tracing::info!("{}: stopping", daemon::signals::name(sig));
            break;
        }
        if a.run_for.is_some_and(|d| started.elapsed() >= d.0) {
            break;
        }
        input.read(&mut engine, &mut out)?;
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            input.tick(unix_now_ns(), &mut engine, &mut out);
            input.publish(&engine);
            if last_checkpoint.elapsed() >= a.checkpoint_every.0 {
                last_checkpoint = Instant::now();
                save(&engine, &mut checkpointed)?;
            }
            if let Some(c) = &ctl {
                c.poll(|req| match *req {
                    Request::Status { top } => {
                        let es = engine.stats();
                        let al = alerts.stats();
                        let mut r = StatusReport {
                            iface: name.to_string(),
                            sensor_name: sensor_name.clone(),
                            pid: std::process::id(),
                            uptime_seconds: started.elapsed().as_secs_f64(),
                            phase: "detecting".into(),
                            detectors: control::detector_statuses(&engine, top),
                            pending_attempts: es.pending,
                            kernel_pending_entries: None,
                            kernel_pending_max: None,
                            identities: identities.clone(),
                            tracked_sources: es.sources,
                            sketched_sources: es.sketched_sources,
                            live_services: es.services,
                            outage_failures: es.outage_failures,
                            records_lost: 0,
                            alerts_written: al.written,
                            alerts_queued: al.queued,
                            alerts_dropped: al.dropped,
                            alerts_suppressed: es.alerts_suppressed,
                            checkpoint_age_seconds: checkpointed.map(|t| t.elapsed().as_secs_f64()),
                            interface_attached: true,
                            kernel: Vec::new(),
                            flows: None,
                            zeek: None,
                        };
                        input.status(&mut r);
                        Response::Status(Box::new(r))
                    }
                    Request::Explain { source } => {
                        Response::Explain(control::explain_report(&engine, source))
                    }
                });
            }
        }
        if let Some(f) = &mut fleet {
            f.exchange(&mut engine, &mut out, &mut alerts);
        }
        for alert in out.drain(..) {
            alerts.send(&alert);
        }
        alerts.flush();
    }
    input.finish(&mut engine, &mut out);
    if let Some(f) = fleet.take() {
        f.leave(&mut engine, &mut out, &mut alerts);
    }
    for alert in out.drain(..) {
        alerts.send(&alert);
    }
    alerts.finish();
    save(&engine, &mut checkpointed)?;
    input.publish(&engine);
    tracing::info!("{}", input.summary(&engine));
    Ok(ExitCode::SUCCESS)
}
