//! `slowscan status --iface IF` and `slowscan explain SOURCE --iface IF`: ask
//! the running sensor, through its control socket (`daemon::control`), what
//! it holds now.
use std::{fmt::Write as _, net::IpAddr, process::ExitCode};

use clap::Args as ClapArgs;
use slowscan::daemon::control::{self, ExplainReport, Request, Response, StatusReport};

#[derive(ClapArgs)]
pub struct StatusArgs {
    /// The interface the sensor watches (in this network namespace), or a
    /// flow collector's or conn.log follower's name (`collect-PORT`,
    /// `zeek-STEM`, or its `--name`).
    #[arg(long, visible_alias = "name")]
    iface: String,
    /// The answer as JSON.
    #[arg(long)]
    json: bool,
    /// Sources shown per detector.
    #[arg(long, default_value_t = 10, value_name = "N")]
    top: usize,
}

#[derive(ClapArgs)]
pub struct ExplainArgs {
    /// The source to explain: an address, a MAC (02-10-00-00-00-05) or a
    /// prefix (2001:db8:bad:1::/64); an address also finds the MAC or
    /// prefix it is counted under.
    source: slowscan::engine::Identity,
    /// The interface the sensor watches (in this network namespace), or a
    /// flow collector's or conn.log follower's name (`collect-PORT`,
    /// `zeek-STEM`, or its `--name`).
    #[arg(long, visible_alias = "name")]
    iface: String,
    /// The answer as JSON.
    #[arg(long)]
    json: bool,
}

fn ask(iface: &str, req: Request, json: bool) -> anyhow::Result<Option<Response>> {
    let resp = control::request(iface, &req)?;
    if let Response::Error(e) = &resp {
        anyhow::bail!("the sensor on {iface} answered: {e}");
    }
    if json {
        let v = match &resp {
            Response::Status(s) => serde_json::to_string_pretty(s)?,
            Response::Explain(x) => serde_json::to_string_pretty(x)?,
            Response::Error(_) => unreachable!(),
        };
        println!("{v}");
        return Ok(None);
    }
    Ok(Some(resp))
}

pub fn status(a: StatusArgs) -> anyhow::Result<ExitCode> {
    if let Some(Response::Status(s)) = ask(&a.iface, Request::Status { top: a.top }, a.json)? {
        print!("{}", format_status(&s));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn explain(a: ExplainArgs) -> anyhow::Result<ExitCode> {
    let req = Request::Explain { source: a.source };
    if let Some(Response::Explain(x)) = ask(&a.iface, req, a.json)? {
        print!("{}", format_explain(&a.iface, &x));
    }
    Ok(ExitCode::SUCCESS)
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn format_status(s: &StatusReport) -> String {
    let mut o = String::new();
    if let Some(f) = &s.flows {
        let _ = writeln!(
            o,
            "slowscan collect {} on {} — sensor {}, pid {}, up {:.0} s",
            s.iface, f.listen, s.sensor_name, s.pid, s.uptime_seconds
        );
        let _ = writeln!(
            o,
            "  {} ({} from exporters not allowed, {} malformed), {}, {} ({} late, {} waiting \
             for --max-lateness); {} ({} lost); {}",
            plural(f.datagrams, "datagram", "datagrams"),
            f.not_allowed,
            f.malformed,
            plural(f.records, "record", "records"),
            plural(f.attempts, "attempt", "attempts"),
            f.late,
            f.buffered,
            plural(f.sequence_gaps, "sequence gap", "sequence gaps"),
            f.sequence_lost,
            plural(f.sampled_exporters, "sampled exporter", "sampled exporters"),
        );
        for x in &f.exporters {
            let _ = writeln!(
                o,
                "  exporter {} ({}, domain {}): {}, {}, {} ({} lost){}",
                x.address,
                x.protocol,
                x.domain,
                plural(x.datagrams, "datagram", "datagrams"),
                plural(x.records, "record", "records"),
                plural(x.sequence_gaps, "sequence gap", "sequence gaps"),
                x.sequence_lost,
                match x.sampling {
                    Some(n) if x.sampled => format!(", SAMPLED 1 in {n}: UNUSABLE for this method"),
                    Some(n) => format!(", sampling 1 in {n}"),
                    None => String::new(),
                }
            );
        }
        format_engine(&mut o, s);
        return o;
    }
    if let Some(z) = &s.zeek {
        let _ = writeln!(
            o,
            "slowscan follow-zeek {} on {} — sensor {}, pid {}, up {:.0} s",
            s.iface, z.file, s.sensor_name, s.pid, s.uptime_seconds
        );
        let _ = writeln!(
            o,
            "  {} ({} late), {}, {} bytes read",
            plural(z.lines, "line", "lines"),
            z.late,
            plural(z.rotations, "rotation", "rotations"),
            z.bytes,
        );
        format_engine(&mut o, s);
        return o;
    }
    let _ = writeln!(
        o,
        "slowscan on {} — sensor {}, pid {}, up {:.0} s, {}{}",
        s.iface,
        s.sensor_name,
        s.pid,
        s.uptime_seconds,
        s.phase,
        if s.interface_attached {
            ""
        } else {
            " (INTERFACE GONE: waiting to reattach)"
        }
    );
    let _ = writeln!(
        o,
        "  {}, {} of {} in the kernel table; {} tracked ({} sketched); {}; {} to live services",
        plural(s.pending_attempts, "pending attempt", "pending attempts"),
        s.kernel_pending_entries
            .map_or_else(|| "?".into(), |n| n.to_string()),
        s.kernel_pending_max
            .map_or_else(|| "?".into(), |n| n.to_string()),
        plural(s.tracked_sources, "source", "sources"),
        s.sketched_sources,
        plural(s.live_services, "live service", "live services"),
        plural(s.outage_failures, "outage failure", "outage failures"),
    );
    let _ = writeln!(
        o,
        "  {} written ({} queued, {} dropped, {} withheld across detectors); records lost {}; last checkpoint {}",
        plural(s.alerts_written, "alert", "alerts"),
        s.alerts_queued,
        s.alerts_dropped,
        s.alerts_suppressed,
        s.records_lost,
        s.checkpoint_age_seconds
            .map_or_else(|| "none".into(), |a| format!("{a:.0} s ago")),
    );
    if !s.identities.is_empty() {
        let _ = writeln!(o, "  identities: {}", s.identities);
    }
    let kernel: Vec<String> = s.kernel.iter().map(|(n, v)| format!("{n}={v}")).collect();
    let _ = writeln!(o, "  kernel: {}", kernel.join(" "));
    format_detectors(&mut o, s);
    o
}

/// A live input's engine, alerts and detectors (`collect`, `follow-zeek`).
fn format_engine(o: &mut String, s: &StatusReport) {
    let _ = writeln!(
        *o,
        "  {} tracked ({} sketched); {}; {} to live services",
        plural(s.tracked_sources, "source", "sources"),
        s.sketched_sources,
        plural(s.live_services, "live service", "live services"),
        plural(s.outage_failures, "outage failure", "outage failures"),
    );
    let _ = writeln!(
        *o,
        "  {} written ({} queued, {} dropped, {} withheld across detectors); last checkpoint {}",
        plural(s.alerts_written, "alert", "alerts"),
        s.alerts_queued,
        s.alerts_dropped,
        s.alerts_suppressed,
        s.checkpoint_age_seconds
            .map_or_else(|| "none".into(), |a| format!("{a:.0} s ago")),
    );
    if !s.identities.is_empty() {
        let _ = writeln!(*o, "  identities: {}", s.identities);
    }
    format_detectors(o, s);
}

fn format_detectors(o: &mut String, s: &StatusReport) {
    for d in &s.detectors {
        let _ = writeln!(
            *o,
            "\ndetector {} ({}; alert above {}):",
            d.name, d.mode, d.threshold
        );
        if d.top.is_empty() {
            let _ = writeln!(*o, "  no source with a failed pair in the window");
        }
        for t in &d.top {
            let _ = writeln!(
                *o,
                "  {:<39} {:>5}{} failed pairs  {:<10}  first {}  last {}",
                t.identity
                    .map_or_else(|| t.ip.to_string(), |i| i.to_string()),
                t.failed_pairs,
                if t.estimated { "~" } else { " " },
                t.shape,
                t.first_failure.as_deref().unwrap_or("-"),
                t.last_failure.as_deref().unwrap_or("-"),
            );
        }
    }
}

fn format_explain(iface: &str, x: &ExplainReport) -> String {
    let mut o = String::new();
    if !x.tracked {
        let _ = writeln!(
            o,
            "{} on {iface}: no counted failure in any detector's window (never failed, \
             failed only to live services or whitelisted destinations, ignored, or forgotten)",
            x.source
        );
        return o;
    }
    if let Some(id) = x.identity.filter(|id| *id != x.source) {
        let _ = writeln!(o, "{} is counted under {} {id}", x.source, id.kind());
    }
    let counts: Vec<String> = x
        .detectors
        .iter()
        .map(|(d, n, t)| {
            format!(
                "{d} {n}{}",
                if n > t { " (above the threshold)" } else { "" }
            )
        })
        .collect();
    let _ = writeln!(
        o,
        "{} on {iface}: {}{}",
        x.identity.unwrap_or(x.source),
        counts.join(", "),
        if x.estimated {
            " — estimated (more failed pairs than the exact cap; pairs below are a sample)"
        } else {
            ""
        }
    );
    if x.identity.is_some_and(|id| id.address().is_none()) {
        let shown: Vec<String> = x.addresses.iter().map(|a| a.to_string()).collect();
        let _ = writeln!(
            o,
            "addresses used ({} in all, most recent first): {}",
            x.addresses_total,
            shown.join(", ")
        );
    }
    let _ = writeln!(
        o,
        "failed pairs, latest failure first ({}):",
        x.failed_pairs.len()
    );
    for (ip, port, t) in &x.failed_pairs {
        let dest = match ip {
            IpAddr::V4(_) => format!("{ip}:{port}"),
            IpAddr::V6(_) => format!("[{ip}]:{port}"),
        };
        let _ = writeln!(o, "  {dest:<46} {t}");
    }
    o
}
