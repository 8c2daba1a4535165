//! `slowscan follow-zeek --log PATH`: a live Zeek conn.log followed across
//! Zeek's hourly rotations ([`slowscan::zeek::follow`]), with the
//! collector's state, alerts, metrics, fleet and signals (docs/flows.md).
//!
//! Lines are held `--max-lateness` past their `ts` and counted in start
//! order (Zeek writes a line when its connection ends); the wall clock
//! drives engine time, so a Failed attempt is decided at its deadline.
//!
//! `slowscan status --iface zeek-STEM` (or its `--name`) answers with a
//! `zeek` section: the file, lines, late lines, rotations and bytes read.
use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Instant,
};

use clap::Args as ClapArgs;
use slowscan::{
    daemon::control::{StatusReport, ZeekStatus},
    engine::{Alert, Engine},
    zeek::{self, Orderer, follow::Follow},
};

use super::{
    live::{self, LiveArgs, TICK},
    options::HumanDuration,
};

#[derive(ClapArgs)]
pub struct Args {
    /// The live conn.log Zeek writes (e.g. /opt/zeek/logs/current/conn.log),
    /// TSV or JSON lines.
    #[arg(long, value_name = "PATH")]
    log: PathBuf,
    /// Read the file there now from its start (default: from its end, the
    /// state carrying the history); files after a rotation are always read
    /// whole.
    #[arg(long)]
    from_start: bool,
    /// Lines are counted in start order when at most this late (behind the
    /// wall clock); later ones are counted at once (and reported as late).
    #[arg(long, value_name = "DURATION", default_value = zeek::LIVE_MAX_LATENESS)]
    max_lateness: HumanDuration,
    #[command(flatten)]
    live: LiveArgs,
}

struct Follower {
    follow: Follow,
    order: Orderer,
    lateness_ns: u64,
    late_warned: u64,
    /// The last read found nothing new: the clock may drive time. While a
    /// backlog is read, its lines drive it, as in a replay.
    caught_up: bool,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let lateness_ns = a.max_lateness.0.as_nanos() as u64;
    let timeout_ns = a.live.engine.engine_config()?.handshake_timeout_ns;
    let name = a.live.name(|| default_name(&a.log));
    let start = format!(
        "following {} as {name} from its {} (max lateness {:?})",
        a.log.display(),
        if a.from_start { "start" } else { "end" },
        a.max_lateness.0
    );
    let mut f = Follower {
        follow: Follow::new(&a.log, a.from_start),
        order: Orderer::new(lateness_ns, timeout_ns),
        lateness_ns,
        late_warned: 0,
        caught_up: false,
    };
    live::serve(&a.live, &name, &start, &mut f)
}

/// `zeek-STEM`: STEM the log's file name before its extension (`zeek-conn`).
fn default_name(log: &Path) -> String {
    let stem = log
        .file_stem()
        .map_or_else(|| "log".into(), |s| s.to_string_lossy());
    format!("zeek-{stem}")
}

impl live::Input for Follower {
    fn read(&mut self, engine: &mut Engine, out: &mut Vec<Alert>) -> anyhow::Result<()> {
        let started = Instant::now();
        let (order, follow) = (&mut self.order, &mut self.follow);
        let mut n = 0;
        // Bounded, so that ticks and stops come while a backlog is read.
        while started.elapsed() < TICK {
            n = follow.poll(1 << 22, &mut |parsed| {
                zeek::count_line(&mut order.stats, &parsed);
                if let Ok(c) = parsed {
                    order.push(&c, engine, out);
                }
            })?;
            if n == 0 {
                break;
            }
        }
        self.caught_up = n == 0;
        if n == 0 {
            std::thread::sleep(TICK);
        }
        Ok(())
    }

    fn tick(&mut self, now_ns: u64, engine: &mut Engine, out: &mut Vec<Alert>) {
        if !self.caught_up {
            return;
        }
        // Every line that started before now − max lateness has come.
        self.order
            .advance(now_ns.saturating_sub(self.lateness_ns), engine, out);
        let late = self.order.stats.late;
        if late > self.late_warned {
            tracing::warn!(
                "{} lines came more than --max-lateness after their start (up to {:.0} s behind): \
                 counted out of order; raise --max-lateness to count them in order",
                late - self.late_warned,
                self.order.stats.max_late_seconds
            );
            self.late_warned = late;
        }
    }

    fn finish(&mut self, engine: &mut Engine, out: &mut Vec<Alert>) {
        // Attempts still waiting for their deadline are decided Failed at
        // it: they are in no checkpoint.
        self.order.finish(engine, out);
    }

    fn publish(&self, engine: &Engine) {
        let (s, f) = (self.order.stats, self.follow.stats);
        for (name, v) in [
            ("slowscan_zeek_lines_total", s.lines),
            ("slowscan_zeek_lines_late_total", s.late),
            ("slowscan_zeek_lines_unusable_total", s.unusable()),
            ("slowscan_zeek_attempts_total", s.attempts),
            ("slowscan_zeek_lines_buffered", self.order.buffered() as u64),
            ("slowscan_zeek_rotations_total", f.rotations),
            ("slowscan_zeek_truncations_total", f.truncations),
            ("slowscan_zeek_bytes_total", f.bytes),
            ("slowscan_alerts_total", engine.stats().alerts),
        ] {
            metrics::gauge!(name).set(v as f64);
        }
    }

    fn summary(&self, engine: &Engine) -> String {
        let (s, f) = (self.order.stats, self.follow.stats);
        format!(
            "follower stopped: {} read, {} rotations, {} truncations; {} lines, {} TCP; {} \
             attempts ({} established, {} failed; {} split lines joined, {} retried SYN lines \
             folded); {} late, {} unusable; {}",
            slowscan::count(f.files, "file"),
            f.rotations,
            f.truncations,
            s.lines,
            s.tcp_lines,
            s.attempts,
            s.established,
            s.failed,
            s.joined,
            s.retransmissions,
            s.late,
            s.unusable(),
            slowscan::count(engine.stats().alerts, "alert"),
        )
    }

    fn status(&self, r: &mut StatusReport) {
        let (s, f) = (self.order.stats, self.follow.stats);
        r.phase = "following".into();
        r.zeek = Some(ZeekStatus {
            file: self.follow.path().display().to_string(),
            lines: s.lines,
            late: s.late,
            rotations: f.rotations,
            bytes: f.bytes,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_name_is_the_logs_stem() {
        assert_eq!(
            default_name(Path::new("/opt/zeek/logs/current/conn.log")),
            "zeek-conn"
        );
        assert_eq!(default_name(Path::new("conn")), "zeek-conn");
    }
}
