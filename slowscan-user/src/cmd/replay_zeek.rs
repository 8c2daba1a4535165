//! `slowscan replay` over Zeek conn logs (docs/flows.md): the inputs are
//! told apart from captures by their content, expanded (directories,
//! quoted globs), ordered, and fed through [`slowscan::zeek`].
use std::path::PathBuf;

use anyhow::bail;
use slowscan::{
    engine::{Alert, Engine},
    zeek::{self, Orderer, ZeekStats},
};

/// The conn-log files when every input is a conn log (or a directory or
/// glob of them); `None` when none is (captures); an error when mixed.
pub fn inputs(files: &[PathBuf]) -> anyhow::Result<Option<Vec<PathBuf>>> {
    let logs = files
        .iter()
        .filter(|p| zeek::looks_like_conn_log(p))
        .count();
    if logs == 0 {
        return Ok(None);
    }
    if logs < files.len() {
        bail!("give either capture files or Zeek conn logs, not both in one replay");
    }
    let expanded = zeek::expand_inputs(files)?;
    Ok(Some(zeek::open_in_order(&expanded)?))
}

/// Reads the logs into the engine; the stats and any damage.
pub fn feed(
    files: &[PathBuf],
    engine: &mut Engine,
    max_lateness_ns: u64,
    handshake_timeout_ns: u64,
    on_alerts: impl FnMut(&[Alert]) -> anyhow::Result<()>,
) -> anyhow::Result<(ZeekStats, Option<anyhow::Error>)> {
    let mut o = Orderer::new(max_lateness_ns, handshake_timeout_ns);
    let damage = zeek::feed_engine(files, engine, &mut o, on_alerts)?;
    let st = o.stats;
    tracing::info!(
        "read {}: {} lines, {} TCP, {} not TCP; {} attempts ({} established, {} failed; \
         {} split lines joined, {} retried SYN lines folded); {} lines late, {} unusable \
         ({} masked ts, {} missing ts, {} bad ts, {} missing fields, {} malformed)",
        slowscan::count(st.files, "conn log"),
        st.lines,
        st.tcp_lines,
        st.not_tcp,
        st.attempts,
        st.established,
        st.failed,
        st.joined,
        st.retransmissions,
        st.late,
        st.unusable(),
        st.masked_ts,
        st.missing_ts,
        st.bad_ts,
        st.missing_fields,
        st.malformed,
    );
    if st.late > 0 {
        tracing::warn!(
            "{} lines came more than --max-lateness after newer ones (up to {:.0} s): \
             counted out of order; raise --max-lateness to count them in order",
            st.late,
            st.max_late_seconds
        );
    }
    if st.masked_ts > 0 && st.tcp_lines == st.masked_ts {
        tracing::warn!("every TCP line's ts is masked (a Zeek test baseline?): nothing counted");
    }
    Ok((st, damage.map(anyhow::Error::from)))
}
