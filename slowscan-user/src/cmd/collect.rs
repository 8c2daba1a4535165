//! `slowscan collect --listen ADDR:PORT`: a NetFlow v5/v9 and IPFIX
//! collector feeding the detection engine (the flow reading of R5, R5.3),
//! with the run command's detection, state, alert and metrics options.
//!
//! Flow exports are unauthenticated UDP: only `--exporters` are read (default
//! loopback), every other datagram is counted and dropped. Records are held
//! `--max-lateness` past their start and counted in start order; an
//! exporter that samples is reported once, loudly, as unusable.
use std::{
    net::{SocketAddr, UdpSocket},
    os::fd::AsRawFd,
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::Context;
use clap::Args as ClapArgs;
use slowscan::{
    daemon::{
        self, AlertPath, checkpoint,
        control::{
            self, BlockingControl, ExporterStatus, FlowStatus, Request, Response, StatusReport,
        },
    },
    engine::{Engine, Observer},
    flows::netflow::{Decoder, Reorder, replay::notice_text},
    ignore::IgnoreList,
};

use super::options::{EngineArgs, HumanDuration};

#[derive(ClapArgs)]
pub struct Args {
    /// UDP address to receive exports on (e.g. 0.0.0.0:2055, [::]:4739).
    #[arg(long, value_name = "ADDR:PORT")]
    listen: SocketAddr,
    /// Exporters whose datagrams are read, as prefixes or a file of them;
    /// others are counted and dropped.
    #[arg(
        long,
        value_name = "CIDR,…|FILE",
        default_value = "127.0.0.0/8,::1/128"
    )]
    exporters: String,
    /// Records are counted in start order when at most this late; later
    /// ones are counted at once, out of order (and reported as late).
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    max_lateness: HumanDuration,
    #[command(flatten)]
    engine: EngineArgs,
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
    /// Receive buffer, bytes: an exporter's burst (a table flushed at once)
    /// must fit while the collector works.
    #[arg(long, value_name = "BYTES", default_value_t = 32 << 20)]
    receive_buffer: usize,
    /// Stop by itself after this long.
    #[arg(long = "for", value_name = "DURATION")]
    run_for: Option<HumanDuration>,
    /// The name `slowscan status --iface NAME` and `slowscan explain`
    /// know this collector by (default `collect-PORT`).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
}

fn unix_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Sets SO_RCVBUF (SO_RCVBUFFORCE first: root may exceed rmem_max); the
/// size the kernel granted.
fn receive_buffer(sock: &UdpSocket, bytes: usize) -> usize {
    let size = bytes.min(i32::MAX as usize) as libc::c_int;
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: a valid socket and an int option.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&size as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            break;
        }
    }
    let mut got: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: a valid socket, an int out parameter and its length.
    unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&mut got as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    got as usize
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    daemon::signals::install(daemon::signals::Reads::Interrupt)?;
    let allowed = IgnoreList::parse_spec(&a.exporters).context("--exporters")?;
    let cfg = a.engine.engine_config()?;
    let identities = daemon::identities_label(&cfg.identity);
    let now = unix_now_ns();
    // Engine time is Unix time (records carry exporters' wall clocks).
    let mut engine = match &a.state {
        Some(p) => match checkpoint::load(p, false)? {
            Some(state) => Engine::restore(cfg, state, now).0,
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
    let sock = UdpSocket::bind(a.listen).with_context(|| format!("binding {}", a.listen))?;
    let rcvbuf = receive_buffer(&sock, a.receive_buffer);
    sock.set_read_timeout(Some(Duration::from_millis(250)))?;
    let observer = Observer {
        name: a.sensor_name.clone().unwrap_or_else(daemon::hostname),
        interface: None,
    };
    let sensor_name = observer.name.clone();
    let mut alerts = AlertPath::open(&a.alerts, observer)?;
    let name = a
        .name
        .clone()
        .unwrap_or_else(|| format!("collect-{}", a.listen.port()));
    let ctl = match BlockingControl::bind(&name) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!("no control socket (`slowscan status` will not answer): {e:#}");
            None
        }
    };
    tracing::info!(
        "collecting NetFlow/IPFIX on {} as {name} (exporters {}; receive buffer {} bytes; max \
         lateness {:?})",
        sock.local_addr()?,
        a.exporters,
        rcvbuf,
        a.max_lateness.0
    );
    let lateness_ns = a.max_lateness.0.as_nanos() as u64;
    let mut decoder = Decoder::new(Some(allowed));
    let mut order = Reorder::new(lateness_ns, 1 << 22);
    let (mut buf, mut records, mut out) = (vec![0u8; 65536], Vec::new(), Vec::new());
    let started = Instant::now();
    let mut last_tick = Instant::now();
    let mut last_checkpoint = Instant::now();
    let mut checkpointed: Option<Instant> = None;
    let save = |engine: &Engine, at: &mut Option<Instant>| -> anyhow::Result<()> {
        if let Some(p) = &a.state {
            checkpoint::save(p, &engine.checkpoint())?;
            *at = Some(Instant::now());
        }
        Ok(())
    };
    let listen = sock.local_addr()?.to_string();
    loop {
        if let Some(sig) = slowscan::stop::requested() {
            tracing::info!("{}: stopping", daemon::signals::name(sig));
            break;
        }
        if a.run_for.is_some_and(|d| started.elapsed() >= d.0) {
            break;
        }
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                records.clear();
                decoder.datagram(from, &buf[..n], &mut records);
                for r in &records {
                    order.push(r, &mut engine, &mut out);
                }
                for notice in decoder.take_notices() {
                    tracing::error!("{}", notice_text(&notice));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e).context("receiving export datagrams"),
        }
        if last_tick.elapsed() >= Duration::from_millis(250) {
            last_tick = Instant::now();
            // What started before now − max lateness is due.
            let due = unix_now_ns().saturating_sub(lateness_ns);
            order.release(due, &mut engine, &mut out);
            engine.advance_to(due, &mut out);
            publish(&decoder, &order, &engine);
            if last_checkpoint.elapsed() >= a.checkpoint_every.0 {
                last_checkpoint = Instant::now();
                save(&engine, &mut checkpointed)?;
            }
            if let Some(c) = &ctl {
                c.poll(|req| match *req {
                    Request::Status { top } => Response::Status(Box::new(status(
                        &name,
                        &sensor_name,
                        started,
                        &listen,
                        &decoder,
                        &order,
                        &engine,
                        &alerts,
                        checkpointed,
                        &identities,
                        top,
                    ))),
                    Request::Explain { source } => {
                        Response::Explain(control::explain_report(&engine, source))
                    }
                });
            }
        }
        for alert in out.drain(..) {
            alerts.send(&alert);
        }
        alerts.flush();
    }
    order.finish(&mut engine, &mut out);
    for alert in out.drain(..) {
        alerts.send(&alert);
    }
    alerts.finish();
    save(&engine, &mut checkpointed)?;
    publish(&decoder, &order, &engine);
    let (d, f) = (decoder.stats, order.stats);
    tracing::info!(
        "collector stopped: {} datagrams ({} from exporters not allowed, {} malformed), {} \
         records; {} attempts ({} failed, {} established), {} late; {} sequence gaps ({} lost); \
         {} sampled exporters; {}",
        d.datagrams,
        d.not_allowed,
        d.malformed,
        d.records,
        f.attempts,
        f.failed,
        f.established,
        f.late,
        d.sequence_gaps,
        d.sequence_lost,
        d.sampled_exporters,
        slowscan::count(engine.stats().alerts, "alert"),
    );
    Ok(ExitCode::SUCCESS)
}

/// The answer to `slowscan status --iface NAME`.
#[allow(clippy::too_many_arguments)]
fn status(
    name: &str,
    sensor_name: &str,
    started: Instant,
    listen: &str,
    d: &Decoder,
    o: &Reorder,
    e: &Engine,
    alerts: &AlertPath,
    checkpointed: Option<Instant>,
    identities: &str,
    top: usize,
) -> StatusReport {
    let es = e.stats();
    let al = alerts.stats();
    let s = d.stats;
    let mut exporters: Vec<ExporterStatus> = d
        .exporters()
        .map(|(k, x)| ExporterStatus {
            address: k.addr,
            protocol: match k.version {
                10 => "IPFIX".into(),
                v => format!("NetFlow v{v}"),
            },
            domain: k.domain,
            datagrams: x.datagrams,
            records: x.records,
            sequence_gaps: x.gaps,
            sequence_lost: x.lost,
            sampling: x.sampling,
            sampled: x.sampling.is_some_and(|n| n > 1),
        })
        .collect();
    exporters.sort_by(|a, b| {
        (a.address, &a.protocol, a.domain).cmp(&(b.address, &b.protocol, b.domain))
    });
    StatusReport {
        iface: name.to_string(),
        sensor_name: sensor_name.to_string(),
        pid: std::process::id(),
        uptime_seconds: started.elapsed().as_secs_f64(),
        phase: "collecting".into(),
        detectors: control::detector_statuses(e, top),
        pending_attempts: es.pending,
        kernel_pending_entries: None,
        kernel_pending_max: None,
        identities: identities.to_string(),
        tracked_sources: es.sources,
        sketched_sources: es.sketched_sources,
        live_services: es.services,
        outage_failures: es.outage_failures,
        records_lost: s.sequence_lost,
        alerts_written: al.written,
        alerts_queued: al.queued,
        alerts_dropped: al.dropped,
        alerts_suppressed: es.alerts_suppressed,
        checkpoint_age_seconds: checkpointed.map(|t| t.elapsed().as_secs_f64()),
        interface_attached: true,
        kernel: Vec::new(),
        flows: Some(FlowStatus {
            listen: listen.to_string(),
            datagrams: s.datagrams,
            not_allowed: s.not_allowed,
            malformed: s.malformed,
            records: s.records,
            attempts: o.stats.attempts,
            late: o.stats.late,
            buffered: o.stats.buffered,
            sequence_gaps: s.sequence_gaps,
            sequence_lost: s.sequence_lost,
            sampled_exporters: s.sampled_exporters,
            exporters,
        }),
    }
}

/// The collector's metrics (a no-op without `--metrics`).
fn publish(d: &Decoder, o: &Reorder, e: &Engine) {
    let s = d.stats;
    for (name, v) in [
        ("slowscan_flow_datagrams_total", s.datagrams),
        ("slowscan_flow_datagrams_not_allowed_total", s.not_allowed),
        ("slowscan_flow_datagrams_malformed_total", s.malformed),
        ("slowscan_flow_records_total", s.records),
        ("slowscan_flow_records_late_total", o.stats.late),
        ("slowscan_flow_attempts_total", o.stats.attempts),
        ("slowscan_flow_sequence_gaps_total", s.sequence_gaps),
        ("slowscan_flow_sampled_exporters", s.sampled_exporters),
        ("slowscan_flow_records_buffered", o.stats.buffered),
        ("slowscan_alerts_total", e.stats().alerts),
    ] {
        metrics::gauge!(name).set(v as f64);
    }
    for (k, x) in d.exporters() {
        let label = k.to_string();
        metrics::gauge!("slowscan_flow_exporter_sequence_gaps_total", "exporter" => label.clone())
            .set(x.gaps as f64);
        metrics::gauge!("slowscan_flow_exporter_records_total", "exporter" => label)
            .set(x.records as f64);
    }
}
