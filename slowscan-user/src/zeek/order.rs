//! Conn logs arrive in connection-END order; the method counts each attempt
//! at its SYN's time (R6). [`Orderer`] holds lines for `max_lateness` and
//! releases them in start order, so the engine sees them exactly as if the
//! input had been in order; a line older than what was already released is
//! `late`: counted, and fed at once.
//!
//! It also joins what Zeek split (R5.4): a Failed attempt waits for the
//! handshake timeout, as the packet rule's pending attempt does. A later
//! line of the same 5-tuple within it that carries the originator's ACK,
//! payload or FIN (`Dr` after `ShR`) Establishes it; another `S` line is a
//! retransmission of it (Zeek logs a SYN retried after a RST anew). A
//! Failed attempt is fed to the engine at its deadline, after every line
//! that started before it, as the packet engine decides it.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::Serialize;
use slowscan_common::FlowKey;

use super::parse::{ConnLine, Endpoint};
use crate::engine::{Alert, DecidedAttempt, Engine};

/// What was read and how it counted (the report's `zeek` part).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ZeekStats {
    pub files: u64,
    /// Record lines (headers and comments aside).
    pub lines: u64,
    pub tcp_lines: u64,
    pub not_tcp: u64,
    /// Attempts (an `S`) fed to the engine, Established or Failed.
    pub attempts: u64,
    pub established: u64,
    pub failed: u64,
    /// `S` lines folded into an earlier attempt of their 5-tuple.
    pub retransmissions: u64,
    /// Failed attempts Established by a later line of their 5-tuple.
    pub joined: u64,
    pub masked_ts: u64,
    pub missing_ts: u64,
    pub bad_ts: u64,
    pub missing_fields: u64,
    pub malformed: u64,
    /// Lines more than `max_lateness` behind the newest one: counted at
    /// once, out of order.
    pub late: u64,
    /// The latest of them, seconds behind.
    pub max_late_seconds: f64,
}

impl ZeekStats {
    /// Lines that could not count (reported, never fatal).
    pub fn unusable(&self) -> u64 {
        self.masked_ts + self.missing_ts + self.bad_ts + self.missing_fields + self.malformed
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// An `S` from the flow's source, Established in the same line or not.
    Attempt { established: bool },
    /// The source's ACK, payload or FIN, without its SYN.
    FollowUp,
}

#[derive(Clone, Copy, Debug)]
struct Item {
    ts: u64,
    /// Arrival order: ties keep it.
    n: u64,
    kind: Kind,
    flow: FlowKey,
    mac: [u8; 6],
}

// Ordered by start time, then arrival.
impl PartialEq for Item {
    fn eq(&self, o: &Self) -> bool {
        (self.ts, self.n) == (o.ts, o.n)
    }
}
impl Eq for Item {}
impl PartialOrd for Item {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Item {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.ts, self.n).cmp(&(o.ts, o.n))
    }
}

/// A Failed attempt waiting for its deadline (or a line that Establishes it).
struct Waiting {
    flow: FlowKey,
    ts: u64,
    mac: [u8; 6],
    established: bool,
}

/// Lines are held in buckets of this much start time, each sorted when it
/// is released: nearly sorted input makes a heap's every pop a cache miss.
const BUCKET_NS: u64 = 1_000_000_000;

pub struct Orderer {
    lateness: u64,
    timeout: u64,
    /// Held lines by start-time bucket; `held` counts them.
    buckets: BTreeMap<u64, Vec<Item>>,
    held: usize,
    n: u64,
    newest: u64,
    /// Start time of the last line released.
    released: u64,
    /// In start order; `front` numbers `waiting[0]`.
    waiting: VecDeque<Waiting>,
    front: u64,
    /// The newest waiting attempt of a flow, by number.
    by_flow: HashMap<FlowKey, u64, foldhash::fast::RandomState>,
    pub stats: ZeekStats,
}

fn flow(src: &Endpoint, dst: &Endpoint) -> FlowKey {
    FlowKey {
        src_addr: src.addr,
        dst_addr: dst.addr,
        src_port: src.port,
        dst_port: dst.port,
        family: src.family,
        _pad0: 0,
        _pad1: 0,
    }
}

impl Orderer {
    pub fn new(max_lateness_ns: u64, handshake_timeout_ns: u64) -> Orderer {
        Orderer {
            lateness: max_lateness_ns,
            timeout: handshake_timeout_ns,
            buckets: BTreeMap::new(),
            held: 0,
            n: 0,
            newest: 0,
            released: 0,
            waiting: VecDeque::new(),
            front: 0,
            by_flow: HashMap::default(),
            stats: ZeekStats::default(),
        }
    }

    /// Lines held for ordering.
    pub fn buffered(&self) -> usize {
        self.held
    }

    /// One TCP line; alerts it decides go to `out`.
    pub fn push(&mut self, c: &ConnLine, engine: &mut Engine, out: &mut Vec<Alert>) {
        let sides = [
            (c.judged.orig, flow(&c.orig, &c.resp), c.orig_mac),
            (c.judged.resp, flow(&c.resp, &c.orig), c.resp_mac),
        ];
        for (side, flow, mac) in sides {
            let kind = if side.syn {
                Kind::Attempt {
                    established: side.established,
                }
            } else if side.follow_up {
                Kind::FollowUp
            } else {
                continue;
            };
            self.n += 1;
            let item = Item {
                ts: c.ts_ns,
                n: self.n,
                kind,
                flow,
                mac,
            };
            if c.ts_ns < self.released {
                self.stats.late += 1;
                let behind = self.newest.saturating_sub(c.ts_ns) as f64 / 1e9;
                self.stats.max_late_seconds = self.stats.max_late_seconds.max(behind);
                self.release(item, engine, out);
                continue;
            }
            self.newest = self.newest.max(c.ts_ns);
            self.buckets
                .entry(c.ts_ns / BUCKET_NS)
                .or_default()
                .push(item);
            self.held += 1;
        }
        // A bucket goes when its newest possible line is `lateness` old.
        while let Some((&k, _)) = self.buckets.first_key_value()
            && (k + 1)
                .saturating_mul(BUCKET_NS)
                .saturating_add(self.lateness)
                <= self.newest
        {
            let items = self.buckets.remove(&k).expect("first");
            self.release_bucket(items, engine, out);
        }
    }

    /// Live input: the clock says every line that started before `t` has
    /// come (one that comes later is late). Releases them in start order,
    /// decides the attempts whose deadline passed, and moves the engine to
    /// that time.
    pub fn advance(&mut self, t: u64, engine: &mut Engine, out: &mut Vec<Alert>) {
        let upto = t / BUCKET_NS * BUCKET_NS;
        while let Some((&k, _)) = self.buckets.first_key_value()
            && (k + 1).saturating_mul(BUCKET_NS) <= upto
        {
            let items = self.buckets.remove(&k).expect("first");
            self.release_bucket(items, engine, out);
        }
        self.released = self.released.max(upto);
        self.decide_until(self.released, engine, out);
        engine.advance_to(self.released, out);
    }

    fn release_bucket(&mut self, mut items: Vec<Item>, engine: &mut Engine, out: &mut Vec<Alert>) {
        self.held -= items.len();
        items.sort_unstable();
        for item in items {
            self.release(item, engine, out);
        }
    }

    /// End of input: everything held is released, then every waiting
    /// attempt is decided Failed at its deadline (the log was written after
    /// its connections ended, so that time did pass).
    pub fn finish(&mut self, engine: &mut Engine, out: &mut Vec<Alert>) {
        while let Some((_, items)) = self.buckets.pop_first() {
            self.release_bucket(items, engine, out);
        }
        self.decide_until(u64::MAX, engine, out);
    }

    fn release(&mut self, item: Item, engine: &mut Engine, out: &mut Vec<Alert>) {
        self.decide_until(item.ts, engine, out);
        self.released = self.released.max(item.ts);
        let live = |w: &Waiting, t: u64| t >= w.ts && t <= w.ts.saturating_add(self.timeout);
        let waiting = self
            .by_flow
            .get(&item.flow)
            .and_then(|&n| self.waiting.get_mut((n - self.front) as usize))
            .filter(|w| live(w, item.ts));
        match (item.kind, waiting) {
            (Kind::Attempt { established }, Some(w)) => {
                // R5.1: a retried SYN is the same attempt.
                self.stats.retransmissions += 1;
                if established && !w.established {
                    w.established = true;
                    let (flow, ts, mac) = (w.flow, w.ts, w.mac);
                    self.feed(flow, ts, mac, true, engine, out);
                }
            }
            (Kind::FollowUp, Some(w)) => {
                if !w.established {
                    w.established = true;
                    self.stats.joined += 1;
                    let (flow, ts, mac) = (w.flow, w.ts, w.mac);
                    self.feed(flow, ts, mac, true, engine, out);
                }
            }
            (Kind::Attempt { established: true }, None) => {
                self.feed(item.flow, item.ts, item.mac, true, engine, out)
            }
            (Kind::Attempt { established: false }, None) => {
                let n = self.front + self.waiting.len() as u64;
                self.by_flow.insert(item.flow, n);
                self.waiting.push_back(Waiting {
                    flow: item.flow,
                    ts: item.ts,
                    mac: item.mac,
                    established: false,
                });
            }
            (Kind::FollowUp, None) => {}
        }
    }

    /// Decides Failed every waiting attempt whose deadline is before `t`,
    /// at its deadline (R5.1).
    fn decide_until(&mut self, t: u64, engine: &mut Engine, out: &mut Vec<Alert>) {
        while let Some(w) = self.waiting.front()
            && w.ts.saturating_add(self.timeout) < t
        {
            let w = self.waiting.pop_front().expect("front");
            let n = self.front;
            self.front += 1;
            if self.by_flow.get(&w.flow) == Some(&n) {
                self.by_flow.remove(&w.flow);
            }
            if !w.established {
                engine.advance_to(w.ts.saturating_add(self.timeout), out);
                self.feed(w.flow, w.ts, w.mac, false, engine, out);
            }
        }
    }

    fn feed(
        &mut self,
        flow: FlowKey,
        ts: u64,
        mac: [u8; 6],
        established: bool,
        engine: &mut Engine,
        out: &mut Vec<Alert>,
    ) {
        self.stats.attempts += 1;
        if established {
            self.stats.established += 1;
        } else {
            self.stats.failed += 1;
        }
        engine.decided_attempt(
            &DecidedAttempt {
                flow,
                syn_ts_ns: ts,
                established,
                src_mac: mac,
            },
            out,
        );
    }
}
