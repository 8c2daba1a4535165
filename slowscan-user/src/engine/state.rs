//! Engine checkpoints: slow scans span hours to months, so a restart of the
//! sensor must not forget them.
//!
//! [`Engine::checkpoint`] captures what detection depends on — per source its
//! failed pairs with the time of each one's latest failure (or its sketch,
//! R6.3), every detector's re-alert state and the alerts written (R8), the
//! pending attempts in deadline-queue order, the live services (R4.5), the
//! totals and (when kept) the per-source report — as an [`EngineState`].
//! Window counts are not stored: restore recomputes them from the pairs.
//!
//! On disk (format 3) it is binary, so that a million tracked sources write
//! in about a second and take tens of MB: the magic `SLOWSCAN-STATE`, the
//! format as a little-endian u32, a JSON header (clocks, detectors, totals),
//! then the pending attempts, sources and services as length-prefixed
//! records, the report (JSON), and an FNV-1a checksum of everything before
//! it. Format 3 added identities (R9): a source is an address, a prefix or
//! a MAC, pending attempts carry their MAC, and the header holds what the
//! identity rule learned. Format 2 (every source an address) and format 1
//! (JSON) are read and migrated: their failed pairs and alert states carry
//! over. Any other format is refused
//! with a message naming it and the formats this build reads.
//!
//! Times are stored as wall-clock Unix nanoseconds (engine time +
//! `wall_clock_offset_ns`), because live record times are CLOCK_MONOTONIC,
//! which restarts at boot; [`Engine::restore`] converts them back with the
//! new configuration's offset (a time before the new clock's zero is clamped
//! to it; the daemon runs the engine on CLOCK_MONOTONIC + 2^62 so that never
//! happens).
//!
//! What restore drops, as of the restore time `now_ns` and the state's
//! failure clock (the latest failure time counted):
//! * pending attempts whose handshake deadline passed while the engine was
//!   stopped (after the checkpoint, before `now_ns`) are **dropped**, not
//!   decided Failed: their follow-up may have come while nothing watched.
//!   Attempts closed as Failed by a new SYN (R5.1), and attempts whose
//!   deadline had already passed when the checkpoint was taken, stay and are
//!   counted; attempts still inside their handshake timeout stay pending;
//! * failed pairs out of every window at the failure clock, and sources left
//!   with none; services older than the service memory.
//!
//! None of this changes a later alert: with the same configuration and no
//! time gap, a restored engine raises exactly the alerts the uninterrupted
//! engine would (tested below), except where the `max_sources` cap evicts (its
//! order is not kept). A configuration that differs from the checkpoint's is
//! accepted: detectors are matched by (window, threshold); a new detector
//! starts armed, and every window counts from the saved pairs.

use std::net::IpAddr;

use bytes::{Buf, BufMut};
use serde::{Deserialize, Serialize};
use slowscan_common::{FlowKey, WhitelistKey};

use crate::addr::addr_of;

use super::counting::{Pair, SetSnapshot, SourceSnapshot};
use super::identity::{IdentitiesSnapshot, Identity};
use super::{DetectorConfig, Engine, EngineConfig, EngineStats, canonical, ip_from, rfc3339};

/// The checkpoint format this build writes.
pub const STATE_FORMAT: u32 = 3;
/// The binary format before identities (R9), migrated.
const FORMAT_V2: u32 = 2;
/// The earlier (JSON) format this build migrates.
const FORMAT_V1: u64 = 1;
const MAGIC: &[u8; 14] = b"SLOWSCAN-STATE";
const KIND_V1: &str = "slowscan-engine-state";

/// Why a checkpoint could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("not a slowscan engine state: {0}")]
    Malformed(String),
    #[error(
        "engine state format {found} is not supported (this slowscan writes format {STATE_FORMAT} and also reads formats {FORMAT_V1} and {FORMAT_V2})"
    )]
    Version { found: u64 },
}

/// A checkpoint of an [`Engine`]; every time is wall-clock Unix ns.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineState {
    /// The format it was read from (written: always [`STATE_FORMAT`]).
    pub format: u32,
    /// The engine clock when the checkpoint was taken.
    pub saved_at_ns: i64,
    /// The latest failure time counted (window time never goes back).
    pub failure_clock_ns: i64,
    pub handshake_timeout_ns: u64,
    /// Detectors, in the order of [`SourceState::detectors`].
    pub detectors: Vec<DetectorConfig>,
    /// Totals so far (gauges as at the checkpoint).
    pub stats: EngineStats,
    /// In deadline-queue (SYN) order.
    pub pending: Vec<PendingAttempt>,
    pub sources: Vec<SourceState>,
    /// R4.5: live services.
    pub services: Vec<ServiceState>,
    /// Per-source totals, when the engine keeps them (`EngineConfig::report`).
    pub report: Option<Vec<ReportSource>>,
    /// What the identity rule learned (R9).
    pub identities: IdentitiesSnapshot,
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
    /// Its SYN's source MAC (zero: none, R9).
    #[serde(default)]
    pub mac: [u8; 6],
}

/// One source's failure state (R6, R8).
#[derive(Clone, Debug, PartialEq)]
pub struct SourceState {
    /// What its failures are counted under (R9).
    pub identity: Identity,
    pub pairs: SourcePairs,
    /// Per detector of [`EngineState::detectors`].
    pub detectors: Vec<AlertArm>,
    /// (count, failure time) of the latest alerts written for it.
    pub written: Vec<(u32, i64)>,
}

/// A source's distinct failed pairs: exactly, or as a sketch (R6.3).
#[derive(Clone, Debug, PartialEq)]
pub enum SourcePairs {
    Exact(Vec<FailedPair>),
    Sketch {
        /// Per register: (start of the minute, rank), oldest first.
        registers: Vec<Vec<(i64, u8)>>,
        /// The most recent pairs (the alert sample).
        recent: Vec<FailedPair>,
        overflowed: u32,
    },
}

impl SourcePairs {
    /// Exact pairs, or the size of the sample.
    pub fn len(&self) -> usize {
        match self {
            SourcePairs::Exact(p) => p.len(),
            SourcePairs::Sketch { recent, .. } => recent.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedPair {
    pub ip: IpAddr,
    pub port: u16,
    pub at_ns: i64,
}

/// Re-alert state of one (source, detector) (R8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertArm {
    /// Count at the latest alert; 0 = armed for a first crossing.
    pub last_alert: u32,
    pub alert_seq: u32,
}

/// A live service (R4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceState {
    pub ip: IpAddr,
    pub port: u16,
    /// SYN time of its latest Established attempt.
    pub established_ns: i64,
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
    /// The format read (1: migrated).
    pub format: u32,
    pub pending: usize,
    /// Deadline passed while stopped.
    pub pending_dropped: usize,
    pub sources: usize,
    /// Sources left with no failed pair in any window.
    pub sources_dropped: usize,
    pub services: usize,
    /// Detectors of this configuration the checkpoint did not have.
    pub new_detectors: Vec<DetectorConfig>,
}

/// The JSON header of format 2.
#[derive(Serialize, Deserialize)]
struct Header {
    saved_at_ns: i64,
    failure_clock_ns: i64,
    handshake_timeout_ns: u64,
    detectors: Vec<DetectorConfig>,
    stats: EngineStats,
    #[serde(default)]
    identities: IdentitiesSnapshot,
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.put_u8(v as u8 | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

fn put_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => {
            out.put_u8(4);
            out.put_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            out.put_u8(6);
            out.put_slice(&a.octets());
        }
    }
}

/// An address as [`put_ip`]; a prefix as 0x14 / 0x16, its length and
/// bytes; a MAC as 0x4D and 6 bytes.
fn put_identity(out: &mut Vec<u8>, id: &Identity) {
    match id {
        Identity::Address(ip) => put_ip(out, *ip),
        Identity::Prefix(p) => {
            let v4 = p.family() == slowscan_common::AF_INET;
            out.put_u8(if v4 { 0x14 } else { 0x16 });
            out.put_u8(p.prefix_len());
            out.put_slice(&p.bytes()[..if v4 { 4 } else { 16 }]);
        }
        Identity::Mac(m) => {
            out.put_u8(0x4D);
            out.put_slice(m);
        }
    }
}

fn put_pair(out: &mut Vec<u8>, p: &FailedPair) {
    put_ip(out, p.ip);
    out.put_u16_le(p.port);
    out.put_i64_le(p.at_ns);
}

fn put_json(out: &mut Vec<u8>, v: &impl Serialize) {
    let j = serde_json::to_vec(v).expect("serialises");
    put_varint(out, j.len() as u64);
    out.put_slice(&j);
}

/// A cursor over a format-2 body whose reads fail cleanly when truncated.
struct Reader<'a> {
    buf: &'a [u8],
    len: usize,
}

impl<'a> Reader<'a> {
    fn at(&self) -> usize {
        self.len - self.buf.remaining()
    }

    fn need(&self, n: usize) -> Result<(), StateError> {
        if self.buf.remaining() < n {
            return Err(StateError::Malformed(format!(
                "truncated at byte {}",
                self.at()
            )));
        }
        Ok(())
    }

    fn u8(&mut self) -> Result<u8, StateError> {
        self.need(1)?;
        Ok(self.buf.get_u8())
    }

    fn u16(&mut self) -> Result<u16, StateError> {
        self.need(2)?;
        Ok(self.buf.get_u16_le())
    }

    fn u32(&mut self) -> Result<u32, StateError> {
        self.need(4)?;
        Ok(self.buf.get_u32_le())
    }

    fn i64(&mut self) -> Result<i64, StateError> {
        self.need(8)?;
        Ok(self.buf.get_i64_le())
    }

    fn varint(&mut self) -> Result<u64, StateError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(StateError::Malformed(format!(
            "bad length at byte {}",
            self.at()
        )))
    }

    /// A count of items of at least `min_bytes` each: never more than the
    /// bytes left could hold (a corrupt count cannot allocate wildly).
    fn count(&mut self, min_bytes: usize) -> Result<usize, StateError> {
        let n = self.varint()?;
        if n > (self.buf.remaining() / min_bytes.max(1)) as u64 {
            return Err(StateError::Malformed(format!(
                "count {n} at byte {} exceeds the file",
                self.at()
            )));
        }
        Ok(n as usize)
    }

    fn ip(&mut self) -> Result<IpAddr, StateError> {
        match self.u8()? {
            4 => {
                self.need(4)?;
                let mut a = [0u8; 4];
                self.buf.copy_to_slice(&mut a);
                Ok(IpAddr::from(a))
            }
            6 => {
                self.need(16)?;
                let mut a = [0u8; 16];
                self.buf.copy_to_slice(&mut a);
                Ok(IpAddr::from(a))
            }
            other => Err(StateError::Malformed(format!(
                "address family {other} at byte {}",
                self.at()
            ))),
        }
    }

    fn identity(&mut self) -> Result<Identity, StateError> {
        let at = self.at();
        let bad = |what: String| StateError::Malformed(format!("{what} at byte {at}"));
        match self.buf.first().copied() {
            Some(4 | 6) => Ok(Identity::Address(self.ip()?)),
            Some(tag @ (0x14 | 0x16)) => {
                self.u8()?;
                let len = self.u8()?;
                let n = if tag == 0x14 { 4 } else { 16 };
                self.need(n)?;
                let mut a = [0u8; 16];
                self.buf.copy_to_slice(&mut a[..n]);
                let ip = if n == 4 {
                    IpAddr::from([a[0], a[1], a[2], a[3]])
                } else {
                    IpAddr::from(a)
                };
                crate::ignore::Prefix::new(ip, len)
                    .map(Identity::Prefix)
                    .map_err(|e| bad(e.to_string()))
            }
            Some(0x4D) => {
                self.u8()?;
                self.need(6)?;
                let mut m = [0u8; 6];
                self.buf.copy_to_slice(&mut m);
                Ok(Identity::Mac(m))
            }
            Some(other) => Err(bad(format!("source kind {other}"))),
            None => Err(bad("truncated".into())),
        }
    }

    fn pair(&mut self) -> Result<FailedPair, StateError> {
        Ok(FailedPair {
            ip: self.ip()?,
            port: self.u16()?,
            at_ns: self.i64()?,
        })
    }

    fn json<T: for<'de> Deserialize<'de>>(&mut self, what: &str) -> Result<T, StateError> {
        let n = self.count(1)?;
        let (j, rest) = self.buf.split_at(n);
        self.buf = rest;
        serde_json::from_slice(j).map_err(|e| StateError::Malformed(format!("{what}: {e}")))
    }
}

impl EngineState {
    /// The state in format 2 (see the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.sources.len() * 48 + self.pending.len() * 48);
        out.put_slice(MAGIC);
        out.put_u32_le(STATE_FORMAT);
        put_json(
            &mut out,
            &Header {
                saved_at_ns: self.saved_at_ns,
                failure_clock_ns: self.failure_clock_ns,
                handshake_timeout_ns: self.handshake_timeout_ns,
                detectors: self.detectors.clone(),
                stats: self.stats,
                identities: self.identities.clone(),
            },
        );
        put_varint(&mut out, self.pending.len() as u64);
        for p in &self.pending {
            put_ip(&mut out, p.src);
            put_ip(&mut out, p.dst);
            out.put_u16_le(p.src_port);
            out.put_u16_le(p.dst_port);
            out.put_u32_le(p.seq);
            out.put_i64_le(p.syn_ns);
            out.put_u8(u8::from(p.closed));
            out.put_slice(&p.mac);
        }
        put_varint(&mut out, self.sources.len() as u64);
        for s in &self.sources {
            put_identity(&mut out, &s.identity);
            match &s.pairs {
                SourcePairs::Exact(pairs) => {
                    out.put_u8(0);
                    put_varint(&mut out, pairs.len() as u64);
                    pairs.iter().for_each(|p| put_pair(&mut out, p));
                }
                SourcePairs::Sketch {
                    registers,
                    recent,
                    overflowed,
                } => {
                    out.put_u8(1);
                    out.put_u32_le(*overflowed);
                    put_varint(&mut out, registers.len() as u64);
                    for r in registers {
                        put_varint(&mut out, r.len() as u64);
                        for &(t, rank) in r {
                            out.put_i64_le(t);
                            out.put_u8(rank);
                        }
                    }
                    put_varint(&mut out, recent.len() as u64);
                    recent.iter().for_each(|p| put_pair(&mut out, p));
                }
            }
            put_varint(&mut out, s.detectors.len() as u64);
            for a in &s.detectors {
                out.put_u32_le(a.last_alert);
                out.put_u32_le(a.alert_seq);
            }
            put_varint(&mut out, s.written.len() as u64);
            for &(c, t) in &s.written {
                out.put_u32_le(c);
                out.put_i64_le(t);
            }
        }
        put_varint(&mut out, self.services.len() as u64);
        for s in &self.services {
            put_ip(&mut out, s.ip);
            out.put_u16_le(s.port);
            out.put_i64_le(s.established_ns);
        }
        put_json(&mut out, &self.report);
        let sum = fnv1a(&out);
        out.put_u64_le(sum);
        out
    }

    /// Reads a state written by [`EngineState::to_bytes`], or a format-1
    /// (JSON) state, migrated. The format is checked first, so a state of
    /// another format gives [`StateError::Version`] whatever its layout.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StateError> {
        if bytes.first() == Some(&b'{') {
            return v1::read(bytes);
        }
        let Some(rest) = bytes.strip_prefix(MAGIC) else {
            return Err(StateError::Malformed(
                "it does not start with SLOWSCAN-STATE".into(),
            ));
        };
        if rest.len() < 4 {
            return Err(StateError::Malformed("no format version".into()));
        }
        let format = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes"));
        if format != STATE_FORMAT && format != FORMAT_V2 {
            return Err(StateError::Version {
                found: u64::from(format),
            });
        }
        if bytes.len() < MAGIC.len() + 12 {
            return Err(StateError::Malformed("truncated".into()));
        }
        let (body, sum) = bytes.split_at(bytes.len() - 8);
        if fnv1a(body) != u64::from_le_bytes(sum.try_into().expect("8 bytes")) {
            return Err(StateError::Malformed(
                "checksum mismatch (a torn or damaged file)".into(),
            ));
        }
        let body = &body[MAGIC.len() + 4..];
        let mut r = Reader {
            buf: body,
            len: body.len(),
        };
        let h: Header = r.json("header")?;
        let n = r.count(20)?;
        let mut pending = Vec::with_capacity(n);
        for _ in 0..n {
            pending.push(PendingAttempt {
                src: r.ip()?,
                dst: r.ip()?,
                src_port: r.u16()?,
                dst_port: r.u16()?,
                seq: r.u32()?,
                syn_ns: r.i64()?,
                closed: r.u8()? != 0,
                mac: if format == FORMAT_V2 {
                    [0; 6]
                } else {
                    r.need(6)?;
                    let mut m = [0u8; 6];
                    r.buf.copy_to_slice(&mut m);
                    m
                },
            });
        }
        let n = r.count(8)?;
        let mut sources = Vec::with_capacity(n);
        for _ in 0..n {
            let identity = r.identity()?;
            let pairs = match r.u8()? {
                0 => {
                    let k = r.count(15)?;
                    let mut v = Vec::with_capacity(k);
                    for _ in 0..k {
                        v.push(r.pair()?);
                    }
                    SourcePairs::Exact(v)
                }
                1 => {
                    let overflowed = r.u32()?;
                    let nr = r.count(1)?;
                    let mut registers = Vec::with_capacity(nr);
                    for _ in 0..nr {
                        let k = r.count(9)?;
                        let mut reg = Vec::with_capacity(k);
                        for _ in 0..k {
                            reg.push((r.i64()?, r.u8()?));
                        }
                        registers.push(reg);
                    }
                    let k = r.count(15)?;
                    let mut recent = Vec::with_capacity(k);
                    for _ in 0..k {
                        recent.push(r.pair()?);
                    }
                    SourcePairs::Sketch {
                        registers,
                        recent,
                        overflowed,
                    }
                }
                other => {
                    return Err(StateError::Malformed(format!(
                        "source kind {other} at byte {}",
                        r.at()
                    )));
                }
            };
            let k = r.count(8)?;
            let mut detectors = Vec::with_capacity(k);
            for _ in 0..k {
                detectors.push(AlertArm {
                    last_alert: r.u32()?,
                    alert_seq: r.u32()?,
                });
            }
            let k = r.count(12)?;
            let mut written = Vec::with_capacity(k);
            for _ in 0..k {
                written.push((r.u32()?, r.i64()?));
            }
            sources.push(SourceState {
                identity,
                pairs,
                detectors,
                written,
            });
        }
        let n = r.count(11)?;
        let mut services = Vec::with_capacity(n);
        for _ in 0..n {
            services.push(ServiceState {
                ip: r.ip()?,
                port: r.u16()?,
                established_ns: r.i64()?,
            });
        }
        let report = r.json("report")?;
        if r.buf.has_remaining() {
            return Err(StateError::Malformed(format!(
                "{} unexpected bytes at the end",
                r.buf.remaining()
            )));
        }
        Ok(EngineState {
            format,
            saved_at_ns: h.saved_at_ns,
            failure_clock_ns: h.failure_clock_ns,
            handshake_timeout_ns: h.handshake_timeout_ns,
            detectors: h.detectors,
            stats: h.stats,
            pending,
            sources,
            services,
            report,
            identities: h.identities,
        })
    }
}

/// Format 1: JSON, one window state per source (migrated: the pairs and the
/// alert states carry over; counts are recomputed).
mod v1 {
    use super::*;

    #[derive(Deserialize)]
    struct Probe {
        kind: Option<String>,
        format: Option<u64>,
    }

    #[derive(Deserialize)]
    struct State {
        saved_at_ns: i64,
        failure_clock_ns: i64,
        handshake_timeout_ns: u64,
        detectors: Vec<DetectorConfig>,
        stats: EngineStats,
        pending: Vec<PendingAttempt>,
        sources: Vec<Source>,
        report: Option<Vec<ReportSource>>,
    }

    #[derive(Deserialize)]
    struct Source {
        ip: IpAddr,
        pairs: Vec<FailedPair>,
        detectors: Vec<AlertArm>,
    }

    pub(super) fn read(bytes: &[u8]) -> Result<EngineState, StateError> {
        let p: Probe =
            serde_json::from_slice(bytes).map_err(|e| StateError::Malformed(e.to_string()))?;
        if p.kind.as_deref() != Some(KIND_V1) {
            return Err(StateError::Malformed(format!(
                "its \"kind\" is not \"{KIND_V1}\""
            )));
        }
        match p.format {
            Some(FORMAT_V1) => {}
            Some(found) => return Err(StateError::Version { found }),
            None => return Err(StateError::Malformed("no \"format\" version".into())),
        }
        let s: State =
            serde_json::from_slice(bytes).map_err(|e| StateError::Malformed(e.to_string()))?;
        Ok(EngineState {
            format: FORMAT_V1 as u32,
            saved_at_ns: s.saved_at_ns,
            failure_clock_ns: s.failure_clock_ns,
            handshake_timeout_ns: s.handshake_timeout_ns,
            detectors: s.detectors,
            stats: s.stats,
            pending: s.pending,
            sources: s
                .sources
                .into_iter()
                .map(|src| SourceState {
                    identity: Identity::Address(src.ip),
                    pairs: SourcePairs::Exact(src.pairs),
                    detectors: src.detectors,
                    written: Vec::new(),
                })
                .collect(),
            services: Vec::new(),
            report: s.report,
            identities: IdentitiesSnapshot::default(),
        })
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
                mac: a.mac,
            })
            .collect();
        let pair = |p: &Pair, t: u64| FailedPair {
            ip: p.ip(),
            port: p.port,
            at_ns: wall(t),
        };
        let sources = self
            .counting
            .snapshot()
            .into_iter()
            .map(|s| SourceState {
                identity: Identity::of_key(&s.key),
                pairs: match s.set {
                    SetSnapshot::Exact(pairs) => {
                        SourcePairs::Exact(pairs.iter().map(|(p, t)| pair(p, *t)).collect())
                    }
                    SetSnapshot::Sketch {
                        registers,
                        recent,
                        overflowed,
                    } => SourcePairs::Sketch {
                        registers: registers
                            .iter()
                            .map(|r| r.iter().map(|&(t, rank)| (wall(t), rank)).collect())
                            .collect(),
                        recent: recent.iter().map(|(t, p)| pair(p, *t)).collect(),
                        overflowed,
                    },
                },
                detectors: s
                    .dets
                    .iter()
                    .map(|&(last_alert, alert_seq)| AlertArm {
                        last_alert,
                        alert_seq,
                    })
                    .collect(),
                written: s.written.iter().map(|&(c, t)| (c, wall(t))).collect(),
            })
            .collect();
        let services = self
            .services
            .as_ref()
            .map(|m| {
                m.entries()
                    .iter()
                    .map(|(k, t)| ServiceState {
                        ip: ip_from(k.family, &k.addr),
                        port: k.port,
                        established_ns: wall(*t),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let report = self.report.as_ref().map(|r| {
            r.export()
                .into_iter()
                .map(|(k, [attempts, established, failed], pairs)| ReportSource {
                    ip: ip_from(k.family, &k.addr),
                    attempts,
                    established,
                    failed,
                    failed_pairs: pairs.iter().map(|p| (p.ip(), p.port)).collect(),
                })
                .collect()
        });
        EngineState {
            format: STATE_FORMAT,
            saved_at_ns: wall(self.now),
            failure_clock_ns: wall(self.count_clock),
            handshake_timeout_ns: self.timeout,
            detectors: self.detectors.clone(),
            stats: self.stats(),
            pending,
            sources,
            services,
            report,
            identities: self.identities.snapshot(wall),
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
            format: state.format,
            ..Restored::default()
        };
        e.now = now_ns.max(saved_now);
        e.next_sweep = e.now.saturating_add(super::SWEEP_EVERY_NS);
        e.count_clock = t(state.failure_clock_ns);
        let s = state.stats;
        e.st = EngineStats {
            pending: 0,
            sources: 0,
            sketched_sources: 0,
            services: 0,
            identity_macs: 0,
            identity_routers: 0,
            ..s
        };
        e.counting.evicted = s.evicted_sources;
        e.identities.macs_dropped = s.macs_dropped;
        e.counting.expired = s.expired_sources;
        e.counting.suppressed = s.alerts_suppressed;

        for p in state.pending {
            let (family, src) = addr_of(p.src);
            let (_, dst) = addr_of(p.dst);
            let syn = t(p.syn_ns);
            let key = FlowKey {
                src_addr: canonical(family, &src),
                dst_addr: canonical(family, &dst),
                src_port: p.src_port,
                dst_port: p.dst_port,
                family,
                _pad0: 0,
                _pad1: 0,
            };
            let a = super::handshake::Attempt::new(key, p.seq, syn, p.mac);
            // Not timed out at the checkpoint, timed out now: its deadline
            // passed while nothing watched.
            if !p.closed && a.is_live_at(saved_now, timeout) && !a.is_live_at(e.now, timeout) {
                r.pending_dropped += 1;
                continue;
            }
            e.pending.push_restored(key, p.seq, syn, p.mac, p.closed);
            r.pending += 1;
        }

        if let Some(m) = &mut e.services {
            for s in &state.services {
                let (family, addr) = addr_of(s.ip);
                m.established(WhitelistKey::new(family, addr, s.port), t(s.established_ns));
            }
            m.expire(e.count_clock);
            r.services = m.len();
        }

        // Detectors are matched by (window, threshold).
        let det_of: Vec<Option<usize>> = e
            .detectors
            .iter()
            .map(|d| state.detectors.iter().position(|v| v == d))
            .collect();
        r.new_detectors = e
            .detectors
            .iter()
            .zip(&det_of)
            .filter(|(_, k)| k.is_none())
            .map(|(d, _)| *d)
            .collect();
        let pair = |fp: &FailedPair| {
            let (family, addr) = addr_of(fp.ip);
            (Pair::new(family, &addr, fp.port), t(fp.at_ns))
        };
        let at = e.count_clock;
        e.identities.restore(&state.identities, t);
        for src in state.sources {
            let set = match &src.pairs {
                SourcePairs::Exact(pairs) => SetSnapshot::Exact(pairs.iter().map(pair).collect()),
                SourcePairs::Sketch {
                    registers,
                    recent,
                    overflowed,
                } => SetSnapshot::Sketch {
                    registers: registers
                        .iter()
                        .map(|reg| reg.iter().map(|&(w, rank)| (t(w), rank)).collect())
                        .collect(),
                    recent: recent
                        .iter()
                        .map(|fp| {
                            let (p, pt) = pair(fp);
                            (pt, p)
                        })
                        .collect(),
                    overflowed: *overflowed,
                },
            };
            let snap = SourceSnapshot {
                key: src.identity.key(),
                set,
                dets: det_of
                    .iter()
                    .map(|k| {
                        k.and_then(|k| src.detectors.get(k))
                            .map_or((0, 0), |a| (a.last_alert, a.alert_seq))
                    })
                    .collect(),
                written: src.written.iter().map(|&(c, w)| (c, t(w))).collect(),
            };
            if e.counting.restore(snap, at) {
                r.sources += 1;
            } else {
                r.sources_dropped += 1;
            }
        }

        if let (Some(rep), Some(saved)) = (&mut e.report, state.report) {
            for s in saved {
                let pairs = s
                    .failed_pairs
                    .iter()
                    .map(|&(ip, port)| {
                        let (f, a) = addr_of(ip);
                        Pair::new(f, &a, port)
                    })
                    .collect();
                rep.import(
                    Identity::Address(s.ip).key(),
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
