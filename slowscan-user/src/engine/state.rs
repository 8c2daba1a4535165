//! Engine checkpoints: slow scans span hours to months, so a restart of the
//! sensor must not forget them (issue 4).
//!
//! [`Engine::checkpoint`] captures what detection depends on — per source the
//! distinct failed pairs with the time of each one's latest failure, every
//! window's count (tumbling window index, sliding log and cursors) and every
//! detector's re-alert state (R8), the pending attempts in deadline-queue
//! order, the totals, and (when kept) the per-source report — as an
//! [`EngineState`], serialisable (JSON) with a format version. The learned
//! whitelist is not in it (learning restarts).
//!
//! Times are stored as wall-clock Unix nanoseconds (engine time +
//! `wall_clock_offset_ns`), because live record times are CLOCK_MONOTONIC,
//! which restarts at boot; [`Engine::restore`] converts them back with the
//! new configuration's offset (a time that would fall before the new clock's
//! zero is clamped to it; the daemon runs the engine on CLOCK_MONOTONIC +
//! 2^62 so that never happens).
//!
//! What restore drops, as of the restore time `now_ns` and the state's
//! failure clock (the latest failure time counted):
//! * pending attempts whose handshake deadline passed while the engine was
//!   stopped (after the checkpoint, before `now_ns`) are **dropped**, not
//!   decided Failed: their follow-up may have come while nothing watched.
//!   Attempts closed as Failed by a new SYN (R5.1), and attempts whose
//!   deadline had already passed when the checkpoint was taken, stay and are
//!   counted; attempts still inside their handshake timeout stay pending;
//! * sliding-log entries out of every sliding window, and failed pairs out of
//!   every window (tumbling: in an earlier window than the failure clock's;
//!   sliding: at or before failure clock − W; never with window `none`);
//! * sources left with no failed pair.
//!
//! None of this changes a later alert: with the same configuration and no
//! time gap, a restored engine raises exactly the alerts the uninterrupted
//! engine would (tested below), except where the `max_sources` cap evicts (its
//! order is not kept).
//!
//! A configuration that differs from the checkpoint's is accepted: windows
//! are matched by value and detectors by (window, threshold); a window the
//! checkpoint did not have is counted afresh from the failed pairs (a sliding
//! one starts empty), a new detector starts armed.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use slowscan_common::{AF_INET, AF_INET6, FlowKey};

use super::window::{GroupSnapshot, Pair, SourceKey, SourceSnapshot};
use super::{
    DetectorConfig, Engine, EngineConfig, EngineStats, Window, canonical, ip_from, rfc3339,
};

/// The checkpoint format this build writes and reads.
pub const STATE_FORMAT: u32 = 1;
const KIND: &str = "slowscan-engine-state";

/// Why a checkpoint could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("not a slowscan engine state: {0}")]
    Malformed(String),
    #[error(
        "engine state format {found} is not supported (this slowscan reads format {STATE_FORMAT})"
    )]
    Version { found: u64 },
}

/// A checkpoint of an [`Engine`]; every time is wall-clock Unix ns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngineState {
    /// Always `slowscan-engine-state`.
    pub kind: String,
    /// [`STATE_FORMAT`].
    pub format: u32,
    /// The engine clock when the checkpoint was taken.
    pub saved_at_ns: i64,
    /// The latest failure time counted (window time never goes back).
    pub failure_clock_ns: i64,
    pub handshake_timeout_ns: u64,
    /// Counting groups, in the order of [`SourceState::windows`].
    pub windows: Vec<Window>,
    /// Detectors, in the order of [`SourceState::detectors`].
    pub detectors: Vec<DetectorConfig>,
    /// Totals so far (gauges as at the checkpoint).
    pub stats: EngineStats,
    /// In deadline-queue (SYN) order.
    pub pending: Vec<PendingAttempt>,
    pub sources: Vec<SourceState>,
    /// Per-source totals, when the engine keeps them (`EngineConfig::report`).
    pub report: Option<Vec<ReportSource>>,
}

/// An attempt (R5) waiting for its follow-up, or closed as Failed by a SYN
/// with a new sequence number and waiting to be counted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingAttempt {
    pub src: IpAddr,
    pub src_port: u16,
    pub dst: IpAddr,
    pub dst_port: u16,
    pub seq: u32,
    /// Time of its first SYN.
    pub syn_ns: i64,
    pub closed: bool,
}

/// One source's failure state (R6, R8).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceState {
    pub ip: IpAddr,
    /// Distinct failed (host, port) pairs, each with its latest failure.
    pub pairs: Vec<FailedPair>,
    /// Per window of [`EngineState::windows`].
    pub windows: Vec<WindowCount>,
    /// Per detector of [`EngineState::detectors`].
    pub detectors: Vec<AlertArm>,
    /// Sliding windows: failures in time order (the oldest one still in a
    /// window first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<FailedPair>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedPair {
    pub ip: IpAddr,
    pub port: u16,
    pub at_ns: i64,
}

/// A source's count in one window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowCount {
    /// Tumbling: index of the current window since the Unix epoch
    /// (`i64::MIN` before the first failure).
    pub index: i64,
    pub count: u32,
    /// Sliding: index in `log` of the first failure still in the window.
    pub cursor: u64,
    pub first_ns: i64,
    pub last_ns: i64,
}

/// Re-alert state of one (source, detector) (R8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertArm {
    /// Count at the latest alert; 0 = armed for a first crossing.
    pub last_alert: u32,
    pub alert_seq: u32,
}

/// `slowscan replay --report` / run summary totals of one source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportSource {
    pub ip: IpAddr,
    pub attempts: u64,
    pub established: u64,
    pub failed: u64,
    pub failed_pairs: Vec<(IpAddr, u16)>,
}

/// What [`Engine::restore`] kept and dropped, for the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// When the checkpoint was taken (wall-clock Unix ns).
    pub saved_at_ns: i64,
    pub pending: usize,
    /// Deadline passed while stopped.
    pub pending_dropped: usize,
    pub sources: usize,
    /// Sources left with no failed pair in any window.
    pub sources_dropped: usize,
    pub pairs_dropped: usize,
    /// Windows of this configuration the checkpoint did not have.
    pub new_windows: Vec<Window>,
}

#[derive(Deserialize)]
struct Header {
    kind: Option<String>,
    format: Option<u64>,
}

impl EngineState {
    /// The state as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("engine state serialises")
    }

    /// Reads a state written by [`EngineState::to_json`]: the format version
    /// is checked first, so a state of another version gives
    /// [`StateError::Version`] whatever its layout.
    pub fn from_json(bytes: &[u8]) -> Result<Self, StateError> {
        let h: Header =
            serde_json::from_slice(bytes).map_err(|e| StateError::Malformed(e.to_string()))?;
        if h.kind.as_deref() != Some(KIND) {
            return Err(StateError::Malformed(format!(
                "its \"kind\" is not \"{KIND}\""
            )));
        }
        match h.format {
            Some(f) if f == u64::from(STATE_FORMAT) => {}
            Some(found) => return Err(StateError::Version { found }),
            None => return Err(StateError::Malformed("no \"format\" version".into())),
        }
        serde_json::from_slice(bytes).map_err(|e| StateError::Malformed(e.to_string()))
    }
}

fn addr_of(ip: IpAddr) -> (u8, [u8; 16]) {
    let mut a = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => {
            a[..4].copy_from_slice(&v4.octets());
            (AF_INET, a)
        }
        IpAddr::V6(v6) => (AF_INET6, v6.octets()),
    }
}

/// Wall-clock ns → engine time with offset `offset`, clamped to the clock's
/// range.
fn engine_time(wall_ns: i64, offset: i64) -> u64 {
    (i128::from(wall_ns) - i128::from(offset)).clamp(0, i128::from(u64::MAX)) as u64
}

impl Engine {
    /// A checkpoint of everything detection depends on (see the module
    /// documentation); the engine is unchanged.
    pub fn checkpoint(&self) -> EngineState {
        let off = self.offset;
        let wall = |t: u64| rfc3339::wall(t, off);
        let pending = self
            .pending
            .queued_attempts()
            .map(|(a, closed)| PendingAttempt {
                src: ip_from(a.key.family, &a.key.src_addr),
                src_port: a.key.src_port,
                dst: ip_from(a.key.family, &a.key.dst_addr),
                dst_port: a.key.dst_port,
                seq: a.seq,
                syn_ns: wall(a.syn_ts),
                closed,
            })
            .collect();
        let pair = |p: &Pair, t: u64, family: u8| FailedPair {
            ip: ip_from(family, &p.addr),
            port: p.port,
            at_ns: wall(t),
        };
        let sources = self
            .counting
            .snapshot()
            .into_iter()
            .map(|s| {
                let f = s.key.family;
                SourceState {
                    ip: ip_from(f, &s.key.addr),
                    pairs: s.pairs.iter().map(|(p, t)| pair(p, *t, f)).collect(),
                    windows: s
                        .groups
                        .iter()
                        .map(|g| {
                            let g = g.expect("a snapshot has every group");
                            WindowCount {
                                index: g.window,
                                count: g.count,
                                cursor: g.cursor,
                                first_ns: wall(g.first),
                                last_ns: wall(g.last),
                            }
                        })
                        .collect(),
                    detectors: s
                        .dets
                        .iter()
                        .map(|&(last_alert, alert_seq)| AlertArm {
                            last_alert,
                            alert_seq,
                        })
                        .collect(),
                    log: s.log.iter().map(|(t, p)| pair(p, *t, f)).collect(),
                }
            })
            .collect();
        let report = self.report.as_ref().map(|r| {
            r.export()
                .into_iter()
                .map(|(k, [attempts, established, failed], pairs)| ReportSource {
                    ip: ip_from(k.family, &k.addr),
                    attempts,
                    established,
                    failed,
                    failed_pairs: pairs
                        .iter()
                        .map(|p| (ip_from(k.family, &p.addr), p.port))
                        .collect(),
                })
                .collect()
        });
        EngineState {
            kind: KIND.into(),
            format: STATE_FORMAT,
            saved_at_ns: wall(self.now),
            failure_clock_ns: wall(self.count_clock),
            handshake_timeout_ns: self.timeout,
            windows: self.counting.windows(),
            detectors: self.detectors.clone(),
            stats: self.stats(),
            pending,
            sources,
            report,
        }
    }

    /// An engine configured by `cfg` that continues from `state` at engine
    /// time `now_ns` (live: CLOCK_MONOTONIC now, in the engine's time base),
    /// dropping what expired (see the module documentation).
    pub fn restore(cfg: EngineConfig, state: EngineState, now_ns: u64) -> (Engine, Restored) {
        let off = cfg.wall_clock_offset_ns;
        let timeout = cfg.handshake_timeout_ns;
        let mut e = Engine::new(cfg);
        let t = |w: i64| engine_time(w, off);
        let saved_now = t(state.saved_at_ns);
        let mut r = Restored {
            saved_at_ns: state.saved_at_ns,
            ..Restored::default()
        };
        e.now = now_ns.max(saved_now);
        e.count_clock = t(state.failure_clock_ns);
        let s = state.stats;
        e.st = EngineStats {
            pending: 0,
            sources: 0,
            ..s
        };
        e.counting.evicted = s.evicted_sources;

        for p in state.pending {
            let (family, src) = addr_of(p.src);
            let (_, dst) = addr_of(p.dst);
            let syn = t(p.syn_ns);
            let deadline = syn.saturating_add(timeout);
            // Not timed out at the checkpoint, timed out now: its deadline
            // passed while nothing watched.
            if !p.closed && deadline >= saved_now && deadline < e.now {
                r.pending_dropped += 1;
                continue;
            }
            let key = FlowKey {
                src_addr: canonical(family, &src),
                dst_addr: canonical(family, &dst),
                src_port: p.src_port,
                dst_port: p.dst_port,
                family,
                _pad0: 0,
                _pad1: 0,
            };
            e.pending.push_restored(key, p.seq, syn, p.closed);
            r.pending += 1;
        }

        // Map the checkpoint's windows and detectors onto this configuration.
        let windows = e.counting.windows();
        let group_of: Vec<Option<usize>> = windows
            .iter()
            .map(|w| state.windows.iter().position(|v| v == w))
            .collect();
        r.new_windows = windows
            .iter()
            .zip(&group_of)
            .filter(|(_, g)| g.is_none())
            .map(|(w, _)| *w)
            .collect();
        let det_of: Vec<Option<usize>> = e
            .detectors
            .iter()
            .map(|d| state.detectors.iter().position(|v| v == d))
            .collect();
        let pair = |fp: &FailedPair| {
            let (family, addr) = addr_of(fp.ip);
            (
                Pair {
                    addr: canonical(family, &addr),
                    port: fp.port,
                },
                t(fp.at_ns),
            )
        };
        let at = e.count_clock;
        for src in state.sources {
            let (family, addr) = addr_of(src.ip);
            let snap = SourceSnapshot {
                key: SourceKey {
                    addr: canonical(family, &addr),
                    family,
                },
                pairs: src.pairs.iter().map(pair).collect(),
                groups: group_of
                    .iter()
                    .map(|g| {
                        g.and_then(|g| src.windows.get(g)).map(|w| GroupSnapshot {
                            window: w.index,
                            count: w.count,
                            cursor: w.cursor,
                            first: t(w.first_ns),
                            last: t(w.last_ns),
                        })
                    })
                    .collect(),
                dets: det_of
                    .iter()
                    .map(|d| {
                        d.and_then(|d| src.detectors.get(d))
                            .map_or((0, 0), |a| (a.last_alert, a.alert_seq))
                    })
                    .collect(),
                log: src
                    .log
                    .iter()
                    .map(|fp| {
                        let (p, t) = pair(fp);
                        (t, p)
                    })
                    .collect(),
            };
            let n = snap.pairs.len();
            let dropped = e.counting.restore(snap, at);
            r.pairs_dropped += dropped;
            if dropped == n {
                r.sources_dropped += 1;
            } else {
                r.sources += 1;
            }
        }

        if let (Some(rep), Some(saved)) = (&mut e.report, state.report) {
            for s in saved {
                let (family, addr) = addr_of(s.ip);
                let pairs = s
                    .failed_pairs
                    .iter()
                    .map(|&(ip, port)| {
                        let (f, a) = addr_of(ip);
                        Pair {
                            addr: canonical(f, &a),
                            port,
                        }
                    })
                    .collect();
                rep.import(
                    SourceKey {
                        addr: canonical(family, &addr),
                        family,
                    },
                    [s.attempts, s.established, s.failed],
                    pairs,
                );
            }
        }
        (e, r)
    }
}

#[cfg(test)]
mod tests;
