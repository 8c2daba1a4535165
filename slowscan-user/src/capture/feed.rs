//! Capture files → frame parser → records (→ engine): the one loop that
//! `slowscan replay`, `slowscan learn` and the tests use, so the same
//! traffic always gives the same records and the same answers.
//!
//! Files are read in the order given as one continuous stream. On damage
//! (a truncated or corrupt capture) everything before it has been delivered
//! when the damage is returned, and nothing after it is read.

use std::path::{Path, PathBuf};

use serde::Serialize;
use slowscan_common::PacketRecord;

use super::{CaptureError, CaptureReader};
use crate::engine::{Alert, Engine};
use crate::frame::{FrameCounters, FrameOutcome, parse_frame_info};

/// What was read from the capture files.
#[derive(Clone, Debug, Default)]
pub struct Input {
    pub files: Vec<FileSummary>,
    pub frames: FrameCounters,
    /// Capture time of the first and the last packet.
    pub first_ts_ns: Option<u64>,
    pub last_ts_ns: Option<u64>,
    /// Reading stopped early at a terminating signal (its number; see
    /// [`crate::stop`]): what was read before it was delivered, the rest
    /// not read.
    pub stopped_by: Option<i32>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FileSummary {
    pub path: PathBuf,
    /// Packets read (every frame, whatever it held).
    pub packets: u64,
    /// TCP segments among them.
    pub tcp: u64,
    /// Read to its end without damage.
    pub complete: bool,
}

/// Told how reading goes (a progress bar, a log); every method may do
/// nothing.
pub trait ReadObserver {
    fn start_file(&mut self, _path: &Path) {}
    /// Bytes of the current file read so far (now and then).
    fn position(&mut self, _bytes: u64) {}
    fn end_file(&mut self, _len: u64) {}
    /// `path` was read to its end and held no packet; `what` says what it
    /// held instead.
    fn no_packets(&mut self, path: &Path, what: &str) {
        tracing::warn!("{} holds no packets ({what})", path.display());
    }
    /// `path` starts `behind_s` seconds before the end of the previous file.
    fn out_of_order(&mut self, path: &Path, behind_s: f64) {
        tracing::warn!(
            "{} starts {behind_s:.1} s before the end of the previous file: \
             files are read in the order given, so give them in time order",
            path.display()
        );
    }
}

/// An observer that only warns.
pub struct Quiet;

impl ReadObserver for Quiet {}

/// Opens every file first, so a missing file, a file that is not a capture
/// or an unsupported link type is reported before anything is processed.
/// A FIFO or a character device (`tcpdump -w - | slowscan learn
/// /dev/stdin`) is a stream that can be read only once: it is checked when
/// its turn comes. Returns the total size in bytes (for a progress bar).
pub fn check_inputs(files: &[PathBuf]) -> Result<u64, CaptureError> {
    use std::os::unix::fs::FileTypeExt;
    let mut total = 0;
    for path in files {
        if let Ok(m) = std::fs::metadata(path)
            && (m.file_type().is_fifo() || m.file_type().is_char_device())
        {
            continue;
        }
        total += CaptureReader::open(path)?.input_len().unwrap_or(0);
    }
    Ok(total)
}

/// Streams the TCP records of `files`, in order, into `on_record`, counting
/// every frame into `input`. Returns `Ok(Some(damage))` when a capture is
/// truncated or corrupt (or cannot be opened); `Err` only for failures of
/// `on_record`. A stop asked for by a signal ([`crate::stop`]) ends the
/// reading before the next read from a file, with `input.stopped_by` set:
/// what was already read is delivered first.
pub fn for_each_record<E>(
    files: &[PathBuf],
    input: &mut Input,
    obs: &mut dyn ReadObserver,
    mut on_record: impl FnMut(&PacketRecord) -> Result<(), E>,
) -> Result<Option<CaptureError>, E> {
    let mut clock = None;
    for path in files {
        let mut reader = match CaptureReader::open(path) {
            Ok(r) => r,
            Err(_) if stopped(input) => return Ok(None),
            Err(e) => return Ok(Some(e)),
        };
        let mut file = FileSummary {
            path: path.clone(),
            packets: 0,
            tcp: 0,
            complete: false,
        };
        obs.start_file(path);
        let damage = loop {
            let packet = match reader.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => break None,
                Err(_) if stopped(input) => break None,
                Err(e) => break Some(e),
            };
            if file.packets == 0
                && let Some(last) = clock
                && packet.ts_ns < last
            {
                obs.out_of_order(path, (last - packet.ts_ns) as f64 / 1e9);
            }
            file.packets += 1;
            input.first_ts_ns.get_or_insert(packet.ts_ns);
            input.last_ts_ns = Some(packet.ts_ns);
            let (outcome, info) =
                parse_frame_info(packet.link, packet.data, packet.wire_len, packet.ts_ns);
            input.frames.count(&outcome, info);
            if let FrameOutcome::Record(rec) = outcome {
                file.tcp += 1;
                on_record(&rec)?;
            }
            if file.packets.is_multiple_of(16_384) {
                obs.position(reader.input_position());
            }
        };
        file.complete = damage.is_none() && input.stopped_by.is_none();
        if file.complete && file.packets == 0 {
            obs.no_packets(
                path,
                &match (reader.is_empty(), reader.is_gzip()) {
                    (true, true) => "gzip of an empty file".to_string(),
                    (true, false) => "an empty file".to_string(),
                    (false, _) => "a capture header only".to_string(),
                },
            );
        }
        input.files.push(file);
        if damage.is_some() || input.stopped_by.is_some() {
            return Ok(damage);
        }
        clock = input.last_ts_ns;
        obs.end_file(reader.input_len().unwrap_or(0));
    }
    Ok(None)
}

/// A read failed: records in `input` whether a signal asked for a stop (the
/// reader refuses to read on once one did, see `capture::source`).
fn stopped(input: &mut Input) -> bool {
    input.stopped_by = crate::stop::requested();
    input.stopped_by.is_some()
}

/// [`for_each_record`] into `engine`, passing each batch of alerts to
/// `on_alerts` as soon as it is decided; at the end of the last file the
/// engine is finished (pending attempts decided Failed). On damage or a
/// stop the engine is not finished: attempts pending there stay undecided,
/// their follow-ups may lie past that point.
pub fn feed_engine(
    files: &[PathBuf],
    engine: &mut Engine,
    input: &mut Input,
    obs: &mut dyn ReadObserver,
    mut on_record: impl FnMut(&PacketRecord),
    mut on_alerts: impl FnMut(&[Alert]) -> anyhow::Result<()>,
) -> anyhow::Result<Option<CaptureError>> {
    let mut out: Vec<Alert> = Vec::new();
    let damage = for_each_record(files, input, obs, |rec| {
        on_record(rec);
        engine.process(rec, &mut out);
        if out.is_empty() {
            return Ok(());
        }
        let r = on_alerts(&out);
        out.clear();
        r
    })?;
    if damage.is_none() && input.stopped_by.is_none() {
        engine.finish(&mut out);
        if !out.is_empty() {
            on_alerts(&out)?;
        }
    }
    Ok(damage)
}
