//! `slowscan collect --listen ADDR:PORT`: a NetFlow v5/v9 and IPFIX
//! collector feeding the detection engine (the flow reading of R5, R5.3),
//! with the run command's detection, state, alert, metrics and fleet options.
//!
//! Flow exports are unauthenticated UDP: only `--exporters` are read (default
//! loopback), every other datagram is counted and dropped. Records are held
//! `--max-lateness` past their start and counted in start order; an
//! exporter that samples is reported once, loudly, as unusable.
//!
//! `slowscan status --iface collect-PORT` (or its `--name`) answers with a
//! `flows` section: per-exporter records, sequence gaps and sampling.
use std::{
    net::{SocketAddr, UdpSocket},
    os::fd::AsRawFd,
    process::ExitCode,
};

use anyhow::Context;
use clap::Args as ClapArgs;
use slowscan::{
    daemon::control::{ExporterStatus, FlowStatus, StatusReport},
    engine::{Alert, Engine},
    flows::netflow::{Decoder, Reorder, replay::notice_text},
    ignore::IgnoreList,
};

use super::{
    live::{self, LiveArgs, TICK},
    options::HumanDuration,
};

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
    live: LiveArgs,
    /// Receive buffer, bytes: an exporter's burst (a table flushed at once)
    /// must fit while the collector works.
    #[arg(long, value_name = "BYTES", default_value_t = 32 << 20)]
    receive_buffer: usize,
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

struct Collector {
    sock: UdpSocket,
    buf: Vec<u8>,
    records: Vec<slowscan::flows::netflow::FlowRecord>,
    decoder: Decoder,
    order: Reorder,
    lateness_ns: u64,
    /// The address received on, for `slowscan status`.
    listen: String,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let allowed = IgnoreList::parse_spec(&a.exporters).context("--exporters")?;
    let sock = UdpSocket::bind(a.listen).with_context(|| format!("binding {}", a.listen))?;
    let rcvbuf = receive_buffer(&sock, a.receive_buffer);
    sock.set_read_timeout(Some(TICK))?;
    let name = a.live.name(|| format!("collect-{}", a.listen.port()));
    let listen = sock.local_addr()?.to_string();
    let start = format!(
        "collecting NetFlow/IPFIX on {listen} as {name} (exporters {}; receive buffer {} bytes; \
         max lateness {:?})",
        a.exporters, rcvbuf, a.max_lateness.0
    );
    let lateness_ns = a.max_lateness.0.as_nanos() as u64;
    let mut c = Collector {
        sock,
        buf: vec![0u8; 65536],
        records: Vec::new(),
        decoder: Decoder::new(Some(allowed)),
        order: Reorder::new(lateness_ns, 1 << 22),
        lateness_ns,
        listen,
    };
    live::serve(&a.live, &name, &start, &mut c)
}

impl live::Input for Collector {
    fn read(&mut self, engine: &mut Engine, out: &mut Vec<Alert>) -> anyhow::Result<()> {
        match self.sock.recv_from(&mut self.buf) {
            Ok((n, from)) => {
                self.records.clear();
                self.decoder
                    .datagram(from, &self.buf[..n], &mut self.records);
                for r in &self.records {
                    self.order.push(r, engine, out);
                }
                for notice in self.decoder.take_notices() {
                    tracing::error!("{}", notice_text(&notice));
                }
                Ok(())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e).context("receiving export datagrams"),
        }
    }

    fn tick(&mut self, now_ns: u64, engine: &mut Engine, out: &mut Vec<Alert>) {
        // What started before now − max lateness is due.
        let due = now_ns.saturating_sub(self.lateness_ns);
        self.order.release(due, engine, out);
        engine.advance_to(due, out);
    }

    fn finish(&mut self, engine: &mut Engine, out: &mut Vec<Alert>) {
        self.order.finish(engine, out);
    }

    fn publish(&self, engine: &Engine) {
        publish(&self.decoder, &self.order, engine);
    }

    fn summary(&self, engine: &Engine) -> String {
        let (d, f) = (self.decoder.stats, self.order.stats);
        format!(
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
        )
    }

    fn status(&self, r: &mut StatusReport) {
        let (s, o) = (self.decoder.stats, self.order.stats);
        let mut exporters: Vec<ExporterStatus> = self
            .decoder
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
        r.phase = "collecting".into();
        r.records_lost = s.sequence_lost;
        r.flows = Some(FlowStatus {
            listen: self.listen.clone(),
            datagrams: s.datagrams,
            not_allowed: s.not_allowed,
            malformed: s.malformed,
            records: s.records,
            attempts: o.attempts,
            late: o.late,
            buffered: o.buffered,
            sequence_gaps: s.sequence_gaps,
            sequence_lost: s.sequence_lost,
            sampled_exporters: s.sampled_exporters,
            exporters,
        });
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
