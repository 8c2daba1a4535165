//! NetFlow v5/v9 and IPFIX flow records as decided attempts (the flow
//! reading of R5, a project rule: `docs/method.md`, R5.3).
//!
//! A TCP record from the client whose OR'd flags have SYN and not ACK is a
//! Failed attempt; SYN with ACK, Established; a record without SYN from the
//! client is no attempt. Biflow records (RFC 5103) are judged in whichever
//! direction holds the client: the "forward" side is the exporter's choice
//! (softflowd: the lower address), not the initiator.
//!
//! Records come when a flow ends, late and out of order: [`Reorder`] holds
//! them until `max_lateness` has passed beyond their start and releases them
//! in start order, so they are counted as if the input had been in order;
//! later ones are counted as late and fed at once.
pub mod decode;
pub mod replay;

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap},
    net::IpAddr,
};

use slowscan_common::{
    FlowKey,
    tcp::{ACK, SYN},
};

pub use decode::{DecodeStats, Decoder, ExporterKey, FlowRecord, Notice};

use crate::engine::{Alert, DecidedAttempt, Engine};

const SYN16: u16 = SYN as u16;
const ACK16: u16 = ACK as u16;

/// A flow record read as an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Judged {
    pub attempt: DecidedAttempt,
    /// A uniflow SYN+ACK record: the client's established flow, or the
    /// server's SYN-ACK direction of someone else's attempt. Decided by
    /// [`Reorder`] from the reverse record, when it saw one.
    pub maybe_reply: bool,
}

fn syn_only(f: u16) -> bool {
    f & SYN16 != 0 && f & ACK16 == 0
}

fn syn_ack(f: u16) -> bool {
    f & SYN16 != 0 && f & ACK16 != 0
}

/// The rule: which side initiated and how the attempt ended, or `None` when
/// the record holds no attempt.
pub fn judge(r: &FlowRecord) -> Option<Judged> {
    let forward = |established, maybe_reply| {
        Some(judged(
            r.src,
            r.src_port,
            r.dst,
            r.dst_port,
            r.start_ns,
            established,
            r.src_mac,
            maybe_reply,
        ))
    };
    let reverse = |established, start| {
        Some(judged(
            r.dst,
            r.dst_port,
            r.src,
            r.src_port,
            start,
            established,
            [0; 6],
            false,
        ))
    };
    match r.reverse {
        // Uniflow (or a biflow whose reverse side carried nothing).
        None | Some((0, _)) => {
            if syn_only(r.flags) {
                forward(false, false)
            } else if syn_ack(r.flags) {
                forward(true, r.reverse.is_none())
            } else {
                None
            }
        }
        Some((rf, rstart)) => {
            let f = r.flags;
            match (syn_only(f), syn_only(rf)) {
                // A SYN answered by no ACK from its sender: Failed.
                (true, false) => forward(false, false),
                (false, true) => reverse(false, rstart),
                // Simultaneous open: the earlier side.
                (true, true) if rstart < r.start_ns => reverse(false, rstart),
                (true, true) => forward(false, false),
                // Both sides SYN+ACK: a handshake; the client spoke first
                // (at a tie, the side calling the lower port).
                _ if syn_ack(f) && syn_ack(rf) => {
                    if (rstart, r.src_port) < (r.start_ns, r.dst_port) {
                        reverse(true, rstart)
                    } else {
                        forward(true, false)
                    }
                }
                // One side SYN+ACK, the other without SYN: the SYN-ACK is
                // the server's, and the client's SYN is not in this record.
                _ => None,
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn judged(
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    syn_ts_ns: u64,
    established: bool,
    src_mac: [u8; 6],
    maybe_reply: bool,
) -> Judged {
    let (family, src_addr) = crate::addr::addr_of(src);
    let (_, dst_addr) = crate::addr::addr_of(dst);
    Judged {
        attempt: DecidedAttempt {
            flow: FlowKey {
                src_addr,
                dst_addr,
                src_port: sport,
                dst_port: dport,
                family,
                ..FlowKey::default()
            },
            syn_ts_ns,
            established,
            src_mac,
        },
        maybe_reply,
    }
}

/// Counters of the reordering and the rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FeedStats {
    /// TCP records without an attempt (no SYN from the client).
    pub not_attempts: u64,
    pub attempts: u64,
    pub failed: u64,
    pub established: u64,
    /// Uniflow SYN+ACK records that were a server's answer to an attempt
    /// already seen: not attempts.
    pub replies: u64,
    /// Records more than `max_lateness` behind the newest start seen: fed
    /// at once, out of order.
    pub late: u64,
    /// The most a record was behind the newest start, ns.
    pub max_behind_ns: u64,
    /// Records waiting in the reorder buffer now.
    pub buffered: u64,
}

/// Records held until `max_lateness` past their start, released in start
/// order (ties: the record calling the lower port first, so a client's
/// record comes before its server's).
pub struct Reorder {
    max_lateness_ns: u64,
    cap: usize,
    heap: BinaryHeap<Reverse<(u64, u16, u64, OrdJudged)>>,
    seq: u64,
    /// The newest start seen.
    newest_ns: u64,
    /// The start time up to which records were released.
    released_ns: u64,
    /// Recent uniflow records with SYN, by 5-tuple: a SYN+ACK record in the
    /// other direction, starting no earlier, is the server's answer.
    recent: HashMap<FlowKey, u64>,
    pub stats: FeedStats,
}

/// `Judged` with an order for the heap (by sequence, never compared).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct OrdJudged(Judged);
impl PartialOrd for OrdJudged {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for OrdJudged {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

/// Recent SYN records remembered for pairing (a reply within this of them).
const RECENT_MAX: usize = 1 << 18;
const REPLY_WINDOW_NS: u64 = 120 * 1_000_000_000;

impl Reorder {
    /// `cap`: records held at most (the oldest go out early beyond it).
    pub fn new(max_lateness_ns: u64, cap: usize) -> Self {
        Reorder {
            max_lateness_ns,
            cap: cap.max(1),
            heap: BinaryHeap::new(),
            seq: 0,
            newest_ns: 0,
            released_ns: 0,
            recent: HashMap::new(),
            stats: FeedStats::default(),
        }
    }

    /// Takes one record; what is due goes to the engine.
    pub fn push(&mut self, r: &FlowRecord, engine: &mut Engine, out: &mut Vec<Alert>) {
        let Some(j) = judge(r) else {
            self.stats.not_attempts += 1;
            return;
        };
        let t = j.attempt.syn_ts_ns;
        let behind = self.newest_ns.saturating_sub(t);
        self.stats.max_behind_ns = self.stats.max_behind_ns.max(behind);
        self.newest_ns = self.newest_ns.max(t);
        if t < self.released_ns {
            // Its turn has passed: counted now, out of order.
            self.stats.late += 1;
            self.feed(j, engine, out);
        } else {
            self.seq += 1;
            let tie = j.attempt.flow.dst_port;
            self.heap.push(Reverse((t, tie, self.seq, OrdJudged(j))));
        }
        let due = self.newest_ns.saturating_sub(self.max_lateness_ns);
        self.release(due, engine, out);
    }

    /// Releases what started before `until_ns` (and the oldest beyond the
    /// cap). Live, called as the clock passes with `now − max_lateness`.
    pub fn release(&mut self, until_ns: u64, engine: &mut Engine, out: &mut Vec<Alert>) {
        while let Some(Reverse((t, _, _, _))) = self.heap.peek() {
            if *t >= until_ns && self.heap.len() <= self.cap {
                break;
            }
            let Reverse((t, _, _, OrdJudged(j))) = self.heap.pop().expect("peeked");
            self.released_ns = self.released_ns.max(t);
            self.feed(j, engine, out);
        }
        self.stats.buffered = self.heap.len() as u64;
    }

    /// Releases everything (end of input).
    pub fn finish(&mut self, engine: &mut Engine, out: &mut Vec<Alert>) {
        self.release(u64::MAX, engine, out);
    }

    /// The lateness used when the clock is the wall clock (live).
    pub fn max_lateness_ns(&self) -> u64 {
        self.max_lateness_ns
    }

    fn feed(&mut self, j: Judged, engine: &mut Engine, out: &mut Vec<Alert>) {
        let a = &j.attempt;
        let k = a.flow;
        if j.maybe_reply {
            let back = FlowKey {
                src_addr: k.dst_addr,
                dst_addr: k.src_addr,
                src_port: k.dst_port,
                dst_port: k.src_port,
                ..k
            };
            if let Some(&t) = self.recent.get(&back)
                && t <= a.syn_ts_ns
                && a.syn_ts_ns - t <= REPLY_WINDOW_NS
            {
                self.stats.replies += 1;
                return;
            }
        }
        if self.recent.len() >= RECENT_MAX {
            let horizon = self.released_ns.saturating_sub(REPLY_WINDOW_NS);
            self.recent.retain(|_, t| *t >= horizon);
            if self.recent.len() >= RECENT_MAX {
                self.recent.clear();
            }
        }
        self.recent.insert(k, a.syn_ts_ns);
        self.stats.attempts += 1;
        if a.established {
            self.stats.established += 1;
        } else {
            self.stats.failed += 1;
        }
        engine.decided_attempt(a, out);
    }
}

#[cfg(test)]
mod tests;
