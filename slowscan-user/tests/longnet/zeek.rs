//! A generated network written the way a Zeek cluster leaves it: one
//! conn.log line per attempt, written when Zeek would write it (a lone or
//! rejected SYN 5 s after its last packet, a closed connection 5 s after
//! its end, an idle one 5 min after; a few last hours), so lines are in
//! connection-END order, rotated hourly into gzipped
//! `YYYY-MM-DD/conn.HH:00:00-HH:00:00.log.gz` files, TSV or JSON.
//!
//! The history letters follow the packets written to the capture: `S`, the
//! server's `h` or `r` when a reply was written, and for an Established
//! attempt (R5, [`reference::established`]) the client's `A`, `D`, `F`.

use std::{
    io::{self, Write},
    path::{Path, PathBuf},
};

use flate2::{Compression, write::GzEncoder};

use super::{Attempt, Network, Reply, SECOND_NS, reference};

const HOUR_NS: u64 = 3600 * SECOND_NS;

struct Line {
    end_ns: u64,
    text: String,
}

/// splitmix of an attempt: its connection's length, deterministically.
fn mix(a: &Attempt) -> u64 {
    let mut z = a.syn_ns ^ (u64::from(a.sport) << 48) ^ u64::from(a.seq);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

fn line(a: &Attempt, uid: usize, json: bool) -> Line {
    let est = reference::established(a, reference::HANDSHAKE_TIMEOUT_NS);
    let h = mix(a);
    let (history, duration_ns, end_ns) = if est {
        let (dur, linger) = if h.is_multiple_of(40) {
            // Long, then idle: logged at the inactivity timeout.
            (30 * 60 * SECOND_NS + h % (3 * HOUR_NS), 300 * SECOND_NS)
        } else {
            (100_000_000 + h % (20 * SECOND_NS), 5 * SECOND_NS)
        };
        let hist = if a.reply == Reply::SynAck {
            "ShADadFf"
        } else {
            "SADF"
        };
        (hist, dur, a.syn_ns + dur + linger)
    } else {
        let last = a.retransmit_after_ns.iter().max().copied().unwrap_or(0);
        let hist = match a.reply {
            Reply::None => "S",
            Reply::SynAck => "ShR",
            Reply::RstAck => "Sr",
        };
        (hist, last, a.syn_ns + last + 5 * SECOND_NS)
    };
    let ts = format!(
        "{}.{:06}",
        a.syn_ns / SECOND_NS,
        a.syn_ns % SECOND_NS / 1000
    );
    let dur = format!(
        "{}.{:06}",
        duration_ns / SECOND_NS,
        duration_ns % SECOND_NS / 1000
    );
    let text = if json {
        format!(
            "{{\"ts\":{ts},\"uid\":\"C{uid:x}\",\"id.orig_h\":\"{}\",\"id.orig_p\":{},\"id.resp_h\":\"{}\",\"id.resp_p\":{},\"proto\":\"tcp\",\"duration\":{dur},\"conn_state\":\"OTH\",\"missed_bytes\":0,\"history\":\"{history}\",\"orig_pkts\":2}}\n",
            a.src, a.sport, a.dst, a.dport
        )
    } else {
        format!(
            "{ts}\tC{uid:x}\t{}\t{}\t{}\t{}\ttcp\t-\t{dur}\t-\t-\tOTH\t-\t-\t0\t{history}\t2\t-\n",
            a.src, a.sport, a.dst, a.dport
        )
    };
    Line { end_ns, text }
}

fn stamp(ns: u64, fmt: &[time::format_description::BorrowedFormatItem]) -> String {
    time::OffsetDateTime::from_unix_timestamp((ns / SECOND_NS) as i64)
        .unwrap()
        .format(fmt)
        .unwrap()
}

/// Writes `net` as Zeek's rotated conn logs under `dir`; returns the files.
pub fn write_conn_logs(dir: &Path, net: &Network, json: bool) -> io::Result<Vec<PathBuf>> {
    use time::macros::format_description;
    let mut lines: Vec<Line> = net
        .attempts
        .iter()
        .enumerate()
        .map(|(i, a)| line(a, i, json))
        .collect();
    lines.sort_by_key(|l| l.end_ns);
    let mut files = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let hour = lines[i].end_ns / HOUR_NS * HOUR_NS;
        let day = dir.join(stamp(hour, format_description!("[year]-[month]-[day]")));
        std::fs::create_dir_all(&day)?;
        let hms = format_description!("[hour]:[minute]:[second]");
        let path = day.join(format!(
            "conn.{}-{}.log.gz",
            stamp(hour, hms),
            stamp(hour + HOUR_NS, hms)
        ));
        let mut gz = GzEncoder::new(
            io::BufWriter::new(std::fs::File::create(&path)?),
            Compression::fast(),
        );
        let ymd = format_description!("[year]-[month]-[day]-[hour]-[minute]-[second]");
        if !json {
            write!(
                gz,
                "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#open\t{}\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\ttunnel_parents\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tset[string]\n",
                stamp(hour, ymd)
            )?;
        }
        while i < lines.len() && lines[i].end_ns / HOUR_NS * HOUR_NS == hour {
            gz.write_all(lines[i].text.as_bytes())?;
            i += 1;
        }
        if !json {
            writeln!(gz, "#close\t{}", stamp(hour + HOUR_NS, ymd))?;
        }
        gz.finish()?.flush()?;
        files.push(path);
    }
    Ok(files)
}
