//! Zeek conn.log as an input (docs/method.md R5.4, docs/flows.md).
//!
//! A conn.log line is a connection whose outcome Zeek already judged: its
//! `history` says whether the originator sent a SYN and then an ACK,
//! payload or FIN ([`history`]). Lines enter the engine as decided attempts
//! ([`crate::engine::Engine::decided_attempt`]), so the whitelist, ignore
//! list, service map, identities, detectors and alerts are the packet
//! path's. Zeek writes a line when the connection ends; [`order`] puts the
//! lines back in start order within `--max-lateness` and joins the lines
//! of one 5-tuple that Zeek split.
//!
//! Inputs: files (TSV or JSON lines, plain or gzipped), Zeek's log
//! directories (`YYYY-MM-DD/conn.HH:MM:SS-HH:MM:SS.log.gz`, searched for
//! `conn.*` files), and glob patterns the shell did not expand. Files may
//! be given in any order: they are read in the order of their first
//! record's time. Lines that cannot count are counted ([`ZeekStats`]),
//! never fatal; a file that is not a conn.log is an error naming what is
//! missing.

pub mod follow;
pub mod history;
pub mod order;
pub mod parse;
pub mod read;

use std::path::{Path, PathBuf};

pub use order::{Orderer, ZeekStats};
pub use parse::{ConnLine, NEEDED, Problem};
pub use read::{ConnLogError, ConnLogFile, Format};

use crate::engine::{Alert, Engine, HOUR_NS};

/// Default `--max-lateness` for replay: Zeek logs an idle connection 5 min
/// after its last packet and long ones when they end; 6 h covers all but
/// connections longer than that, at the memory of 6 h of lines.
pub const REPLAY_MAX_LATENESS_NS: u64 = 6 * HOUR_NS;

/// Default `--max-lateness` for following a live conn.log
/// (`slowscan follow-zeek`): Zeek writes a lone SYN about 5 s after it and
/// an idle connection `tcp_inactivity_timeout` (5 min) after its last
/// packet; 10 min covers both.
pub const LIVE_MAX_LATENESS: &str = "10m";

/// Whether `path` holds a conn log rather than a capture: a directory (of
/// Zeek logs), a glob, or a file whose decoded content starts like a Zeek
/// TSV log (`#`) or a JSON line (`{`).
pub fn looks_like_conn_log(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    if path.is_dir() || (!path.exists() && is_glob(path)) {
        return true;
    }
    // A FIFO or a device can be read once: it stays a capture stream.
    if std::fs::metadata(path)
        .is_ok_and(|m| m.file_type().is_fifo() || m.file_type().is_char_device())
    {
        return false;
    }
    read::sniff(path).is_ok_and(|head| {
        head.iter()
            .find(|c| !c.is_ascii_whitespace())
            .is_some_and(|&c| c == b'#' || c == b'{')
    })
}

fn is_glob(path: &Path) -> bool {
    path.to_string_lossy().contains(['*', '?', '['])
}

/// The conn-log files named by `inputs`: files as given, directories
/// searched (recursively) for `conn.*` files, glob patterns expanded. An
/// input that names nothing is an error.
pub fn expand_inputs(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in inputs {
        let before = out.len();
        if p.is_dir() {
            walk(p, &mut out)?;
        } else if !p.exists() && is_glob(p) {
            glob(p, &mut out)?;
        } else {
            out.push(p.clone());
            continue;
        }
        if out.len() == before {
            anyhow::bail!("{}: no Zeek conn.* log found there", p.display());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out)?;
        } else if p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("conn."))
        {
            out.push(p);
        }
    }
    Ok(())
}

/// `*`, `?` and `[…]`-free character matching per path component (enough
/// for `/opt/zeek/logs/2026-*/conn.*.log.gz` given quoted).
fn glob(pattern: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut bases = vec![PathBuf::new()];
    for comp in pattern.components() {
        let c = comp.as_os_str().to_string_lossy();
        let mut next = Vec::new();
        for b in &bases {
            if !c.contains(['*', '?']) {
                next.push(b.join(comp));
                continue;
            }
            let dir = if b.as_os_str().is_empty() {
                Path::new(".")
            } else {
                b.as_path()
            };
            let Ok(rd) = std::fs::read_dir(dir) else {
                continue;
            };
            for e in rd.filter_map(Result::ok) {
                if wild_match(c.as_bytes(), e.file_name().to_string_lossy().as_bytes()) {
                    next.push(b.join(e.file_name()));
                }
            }
        }
        bases = next;
    }
    out.extend(bases.into_iter().filter(|p| p.is_file()));
    Ok(())
}

fn wild_match(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => wild_match(&p[1..], s) || (!s.is_empty() && wild_match(p, &s[1..])),
        (Some(b'?'), Some(_)) => wild_match(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => wild_match(&p[1..], &s[1..]),
        _ => false,
    }
}

/// The start of a file's hour from Zeek's rotated name
/// (`YYYY-MM-DD/conn.HH:MM:SS-HH:MM:SS.log.gz`), Unix ns.
pub fn rotated_start_ns(path: &Path) -> Option<u64> {
    use time::{Date, Time, macros::format_description};
    let day = path.parent()?.file_name()?.to_str()?;
    let name = path.file_name()?.to_str()?;
    let hms = name.strip_prefix("conn.")?.get(..8)?;
    let date = Date::parse(day, format_description!("[year]-[month]-[day]")).ok()?;
    let time = Time::parse(hms, format_description!("[hour]:[minute]:[second]")).ok()?;
    let ns = date.with_time(time).assume_utc().unix_timestamp_nanos();
    u64::try_from(ns).ok()
}

/// Opens every file (so a file that is not a conn.log is an error before
/// anything is counted) and orders them: by the hour in Zeek's rotated
/// name, else by the first record's time. (Not by the first record alone:
/// a file's first line may be a connection that started hours before.)
pub fn open_in_order(files: &[PathBuf]) -> Result<Vec<PathBuf>, ConnLogError> {
    let mut keyed = Vec::with_capacity(files.len());
    for p in files {
        let mut f = ConnLogFile::open(p)?;
        if let Some(t) = rotated_start_ns(p) {
            keyed.push((t, p.clone()));
            continue;
        }
        let mut first = u64::MAX;
        for _ in 0..64 {
            match f.next_line() {
                Ok(Some(Ok(c))) => {
                    first = c.ts_ns;
                    break;
                }
                Ok(Some(Err(_))) => continue,
                // Damage and the end are found again when it is read.
                Ok(None) | Err(_) => break,
            }
        }
        keyed.push((first, p.clone()));
    }
    keyed.sort();
    Ok(keyed.into_iter().map(|(_, p)| p).collect())
}

/// Reads `files` (already ordered) into `engine` through an [`Orderer`];
/// alerts go to `on_alerts` as they are decided. On damage (a truncated
/// gzip, a file that stops being a conn.log) what was read before it is
/// delivered, then the damage is returned; later files are not read.
pub fn feed_engine(
    files: &[PathBuf],
    engine: &mut Engine,
    orderer: &mut Orderer,
    mut on_alerts: impl FnMut(&[Alert]) -> anyhow::Result<()>,
) -> anyhow::Result<Option<ConnLogError>> {
    let mut out = Vec::new();
    let mut damage = None;
    'files: for p in files {
        let mut f = match ConnLogFile::open(p) {
            Ok(f) => f,
            Err(e) => {
                damage = Some(e);
                break;
            }
        };
        orderer.stats.files += 1;
        loop {
            let parsed = match f.next_line() {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => {
                    damage = Some(e);
                    break 'files;
                }
            };
            count_line(&mut orderer.stats, &parsed);
            if let Ok(c) = parsed {
                orderer.push(&c, engine, &mut out);
                if !out.is_empty() {
                    on_alerts(&out)?;
                    out.clear();
                }
            }
        }
    }
    orderer.finish(engine, &mut out);
    on_alerts(&out)?;
    Ok(damage)
}

/// Counts a line read into `st`.
pub fn count_line(st: &mut ZeekStats, parsed: &parse::Parsed) {
    st.lines += 1;
    match parsed {
        Ok(_) => st.tcp_lines += 1,
        Err(Problem::NotTcp) => st.not_tcp += 1,
        Err(Problem::MaskedTs) => st.masked_ts += 1,
        Err(Problem::MissingTs) => st.missing_ts += 1,
        Err(Problem::BadTs) => st.bad_ts += 1,
        Err(Problem::MissingField) => st.missing_fields += 1,
        Err(Problem::Malformed) => st.malformed += 1,
    }
    if matches!(
        parsed,
        Err(Problem::MaskedTs | Problem::MissingTs | Problem::BadTs)
    ) {
        st.tcp_lines += 1;
    }
}

#[cfg(test)]
mod tests;
