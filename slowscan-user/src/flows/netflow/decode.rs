//! NetFlow v5, v9 and IPFIX export datagrams to flow records, on
//! `netflow_parser` (templates kept per exporter address and observation
//! domain / source id by its `AutoScopedParser`, bounded here).
//!
//! Per exporter (address, version, domain) this also keeps what the method
//! needs to trust the records: export sequence gaps (lost datagrams), whether
//! the exporter samples (sampling breaks the method: a scanner's lone SYN is
//! dropped by the sampler), and for IPFIX the exporter's boot time (records
//! stamped in milliseconds since boot, `systemInitTimeMilliseconds`).
use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
};

use netflow_parser::{
    AutoScopedParser, NetflowPacket, NetflowParser,
    variable_versions::{
        field_value::{DurationValue, FieldValue},
        ipfix::{self, lookup::IPFixField},
        v9,
    },
};

/// Exporters tracked (each with its template cache) before the least
/// recently heard is forgotten.
pub const MAX_EXPORTERS: usize = 1024;
/// Templates kept per exporter and domain.
pub const MAX_TEMPLATES: usize = 256;
/// Fields a template may declare.
const MAX_TEMPLATE_FIELDS: usize = 128;

/// Seconds between the NTP epoch (1900) and the Unix epoch.
const NTP_UNIX_OFFSET_S: u64 = 2_208_988_800;
/// The IPFIX enterprise number of RFC 5103's reverse information elements.
const REVERSE_PEN: u32 = 29305;
/// A record stamped this far from its datagram's export time is not trusted:
/// it takes the export time instead (counted).
const MAX_SKEW_NS: u64 = 366 * 86_400 * 1_000_000_000;

/// One TCP flow record, in the exporter's direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowRecord {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    /// OR'd TCP flags of the forward direction.
    pub flags: u16,
    /// Flow start, Unix ns.
    pub start_ns: u64,
    /// RFC 5103 biflow: the reverse direction's OR'd flags and start.
    pub reverse: Option<(u16, u64)>,
    pub src_mac: [u8; 6],
}

/// Counters of a decoder, for the replay report, metrics and `status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DecodeStats {
    pub datagrams: u64,
    /// Datagrams from an address outside `--exporters`, dropped unread.
    pub not_allowed: u64,
    /// Datagrams the parser gave up on (truncated, malformed, unknown
    /// version); the records before the damage are kept.
    pub malformed: u64,
    /// Data sets whose template was not (yet) known.
    pub no_template: u64,
    pub records: u64,
    pub tcp_records: u64,
    /// TCP records without addresses, ports or flags: unusable.
    pub incomplete: u64,
    /// Records with no usable start time (none, or more than a year from
    /// the export time): stamped with the export time.
    pub bad_time: u64,
    /// Export sequence gaps, and the datagrams (v9) or records (v5, IPFIX)
    /// they lost, summed over exporters.
    pub sequence_gaps: u64,
    pub sequence_lost: u64,
    /// Exporters that said they sample.
    pub sampled_exporters: u64,
    /// Exporters forgotten because `MAX_EXPORTERS` were tracked.
    pub exporters_evicted: u64,
}

/// What is known of one exporter (address, version, observation domain).
#[derive(Clone, Debug, Default)]
pub struct Exporter {
    /// The sequence number the next datagram should carry, and the last
    /// one carried.
    next_seq: Option<u32>,
    last_seq: u32,
    pub gaps: u64,
    pub lost: u64,
    pub datagrams: u64,
    pub records: u64,
    /// The sampling interval it announced (> 1: sampled).
    pub sampling: Option<u64>,
    /// IPFIX `systemInitTimeMilliseconds`: the exporter's boot, Unix ms.
    boot_ms: Option<u64>,
    last_heard: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExporterKey {
    pub addr: IpAddr,
    pub version: u16,
    /// v9 source id, IPFIX observation domain, v5 engine type and id.
    pub domain: u32,
}

impl std::fmt::Display for ExporterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = match self.version {
            10 => "IPFIX".to_string(),
            v => format!("NetFlow v{v}"),
        };
        write!(f, "{} ({v}, domain {})", self.addr, self.domain)
    }
}

/// Something an operator must hear about once (logged loudly by the caller).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// The exporter samples 1 in `interval`: unusable for this method.
    Sampled {
        exporter: ExporterKey,
        interval: u64,
    },
}

/// The decoder: one per collector (all exporters).
pub struct Decoder {
    parser: AutoScopedParser,
    exporters: HashMap<ExporterKey, Exporter>,
    allowed: Option<crate::ignore::IgnoreList>,
    pub stats: DecodeStats,
    notices: Vec<Notice>,
    tick: u64,
}

impl Decoder {
    /// `allowed`: exporter address prefixes (`None`: any).
    pub fn new(allowed: Option<crate::ignore::IgnoreList>) -> Self {
        let builder = NetflowParser::builder()
            .with_cache_size(MAX_TEMPLATES)
            .with_max_field_count(MAX_TEMPLATE_FIELDS);
        let parser = AutoScopedParser::try_with_builder(builder)
            .and_then(|p| p.with_max_sources(MAX_EXPORTERS))
            .expect("constant parser limits are valid");
        Decoder {
            parser,
            exporters: HashMap::new(),
            allowed,
            stats: DecodeStats::default(),
            notices: Vec::new(),
            tick: 0,
        }
    }

    /// Whether datagrams from `addr` are read.
    pub fn allows(&self, addr: IpAddr) -> bool {
        let (family, bytes) = crate::addr::addr_of(canonical_ip(addr));
        self.allowed
            .as_ref()
            .is_none_or(|l| l.contains(family, &bytes))
    }

    /// Decodes one export datagram from `from`; its TCP flow records are
    /// pushed to `out`.
    pub fn datagram(&mut self, from: SocketAddr, data: &[u8], out: &mut Vec<FlowRecord>) {
        self.stats.datagrams += 1;
        if !self.allows(from.ip()) {
            self.stats.not_allowed += 1;
            return;
        }
        let result = self.parser.parse_from_source(from, data);
        if result.error.is_some() {
            self.stats.malformed += 1;
        }
        for packet in &result.packets {
            match packet {
                NetflowPacket::V5(p) => self.v5(from.ip(), p, out),
                NetflowPacket::V9(p) => self.v9(from.ip(), p, out),
                NetflowPacket::IPFix(p) => self.ipfix(from.ip(), p, out),
                _ => {}
            }
        }
    }

    /// Notices raised since the last call (each exporter's once).
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// Per-exporter state, for metrics and `status`.
    pub fn exporters(&self) -> impl Iterator<Item = (&ExporterKey, &Exporter)> {
        self.exporters.iter()
    }

    fn exporter(&mut self, key: ExporterKey) -> &mut Exporter {
        self.tick += 1;
        if !self.exporters.contains_key(&key) && self.exporters.len() >= MAX_EXPORTERS {
            // Bounded: forget the exporter heard from least recently.
            if let Some(old) = self
                .exporters
                .iter()
                .min_by_key(|(_, e)| e.last_heard)
                .map(|(k, _)| *k)
            {
                self.exporters.remove(&old);
                self.stats.exporters_evicted += 1;
            }
        }
        let tick = self.tick;
        let e = self.exporters.entry(key).or_default();
        e.last_heard = tick;
        e
    }

    /// Checks the export sequence: `seq` carried, `advance` what this
    /// datagram adds to it. `also_this`: the exporter may count this
    /// datagram's records in its own sequence number (softflowd's IPFIX does,
    /// against RFC 7011), which is no loss either.
    fn sequence(&mut self, key: ExporterKey, seq: u32, advance: u32, also_this: bool) {
        let e = self.exporter(key);
        e.datagrams += 1;
        let (mut gap, mut lost) = (false, 0);
        if let Some(want) = e.next_seq
            && seq != want
            && !(also_this && seq == e.last_seq.wrapping_add(advance))
        {
            let ahead = seq.wrapping_sub(want);
            // Far behind: a restarted exporter or a reordered datagram, not loss.
            if ahead < 1 << 30 {
                gap = true;
                lost = u64::from(ahead);
            }
        }
        e.next_seq = Some(seq.wrapping_add(advance));
        e.last_seq = seq;
        if gap {
            e.gaps += 1;
            e.lost += lost;
            self.stats.sequence_gaps += 1;
            self.stats.sequence_lost += lost;
        }
    }

    fn sampling(&mut self, key: ExporterKey, interval: u64) {
        let e = self.exporter(key);
        let first = e.sampling.is_none_or(|s| s <= 1) && interval > 1;
        e.sampling = Some(interval);
        if first {
            self.stats.sampled_exporters += 1;
            self.notices.push(Notice::Sampled {
                exporter: key,
                interval,
            });
        }
    }

    fn v5(
        &mut self,
        addr: IpAddr,
        p: &netflow_parser::static_versions::v5::V5,
        out: &mut Vec<FlowRecord>,
    ) {
        let h = &p.header;
        let key = ExporterKey {
            addr,
            version: 5,
            domain: u32::from(h.engine_type) << 8 | u32::from(h.engine_id),
        };
        // v5's sequence counts flows.
        self.sequence(key, h.flow_sequence, u32::from(h.count), false);
        // Top two bits: the mode; the rest: 1 in N (0 or 1: every packet).
        let interval = u64::from(h.sampling_interval & 0x3fff);
        if interval > 1 {
            self.sampling(key, interval);
        }
        let export_ns = u64::from(h.unix_secs) * 1_000_000_000 + u64::from(h.unix_nsecs);
        self.exporter(key).records += p.flowsets.len() as u64;
        for f in &p.flowsets {
            self.stats.records += 1;
            if f.protocol_number != 6 {
                continue;
            }
            self.stats.tcp_records += 1;
            let start = uptime_ns(export_ns, h.sys_up_time, f.first);
            out.push(FlowRecord {
                src: IpAddr::V4(f.src_addr),
                dst: IpAddr::V4(f.dst_addr),
                src_port: f.src_port,
                dst_port: f.dst_port,
                flags: u16::from(f.tcp_flags),
                start_ns: self.checked_time(Some(start), export_ns),
                reverse: None,
                src_mac: [0; 6],
            });
        }
    }

    fn v9(&mut self, addr: IpAddr, p: &v9::V9, out: &mut Vec<FlowRecord>) {
        let h = &p.header;
        let key = ExporterKey {
            addr,
            version: 9,
            domain: h.source_id,
        };
        // v9's sequence counts export datagrams.
        self.sequence(key, h.sequence_number, 1, false);
        let export_ns = u64::from(h.unix_secs) * 1_000_000_000;
        let ctx = TimeCtx {
            export_ns,
            uptime_ms: Some(h.sys_up_time),
            boot_ms: None,
        };
        for set in &p.flowsets {
            match &set.body {
                v9::FlowSetBody::Data(d) => {
                    for rec in &d.fields {
                        let fields = Fields::read(rec.iter().map(|(f, v)| (v9_id(*f), v)));
                        self.record(key, &fields, &ctx, out);
                    }
                }
                v9::FlowSetBody::OptionsData(d) => {
                    for rec in &d.fields {
                        let fields =
                            Fields::read(rec.options_fields.iter().map(|(f, v)| (v9_id(*f), v)));
                        self.options(key, &fields);
                    }
                }
                v9::FlowSetBody::NoTemplate(_) => self.stats.no_template += 1,
                _ => {}
            }
        }
    }

    fn ipfix(&mut self, addr: IpAddr, p: &ipfix::IPFix, out: &mut Vec<FlowRecord>) {
        let h = &p.header;
        let key = ExporterKey {
            addr,
            version: 10,
            domain: h.observation_domain_id,
        };
        // Options first: a boot time or a sampler in this datagram applies
        // to its own data records.
        for set in &p.flowsets {
            if let ipfix::FlowSetBody::OptionsData(d) = &set.body {
                for rec in &d.fields {
                    let fields = Fields::read(rec.iter().map(|(f, v)| (ipfix_id(f), v)));
                    self.options(key, &fields);
                }
            }
        }
        let records: usize = p
            .flowsets
            .iter()
            .map(|s| match &s.body {
                ipfix::FlowSetBody::Data(d) => d.fields.len(),
                _ => 0,
            })
            .sum();
        // IPFIX's sequence counts data records sent before this message.
        self.sequence(key, h.sequence_number, records as u32, true);
        let ctx = TimeCtx {
            export_ns: u64::from(h.export_time) * 1_000_000_000,
            uptime_ms: None,
            boot_ms: self.exporter(key).boot_ms,
        };
        for set in &p.flowsets {
            match &set.body {
                ipfix::FlowSetBody::Data(d) => {
                    for rec in &d.fields {
                        let fields = Fields::read(rec.iter().map(|(f, v)| (ipfix_id(f), v)));
                        self.record(key, &fields, &ctx, out);
                    }
                }
                ipfix::FlowSetBody::NoTemplate(_) => self.stats.no_template += 1,
                _ => {}
            }
        }
    }

    fn options(&mut self, key: ExporterKey, f: &Fields) {
        if let Some(boot) = f.boot_ms {
            self.exporter(key).boot_ms = Some(boot);
        }
        if let Some(s) = f.sampling {
            self.sampling(key, s);
        }
    }

    fn record(&mut self, key: ExporterKey, f: &Fields, ctx: &TimeCtx, out: &mut Vec<FlowRecord>) {
        self.stats.records += 1;
        self.exporter(key).records += 1;
        if let Some(s) = f.sampling {
            self.sampling(key, s);
        }
        if f.protocol != Some(6) {
            return;
        }
        self.stats.tcp_records += 1;
        let (Some(src), Some(dst), Some(src_port), Some(dst_port), Some(flags)) =
            (f.src, f.dst, f.src_port, f.dst_port, f.fwd.flags)
        else {
            self.stats.incomplete += 1;
            return;
        };
        let start_ns = self.checked_time(ctx.resolve(f.fwd.start), ctx.export_ns);
        let reverse = f.rev.flags.map(|rf| {
            // A reverse side without its own start began with the flow.
            let t = ctx.resolve(f.rev.start).unwrap_or(start_ns);
            (rf, self.checked_time(Some(t), ctx.export_ns))
        });
        out.push(FlowRecord {
            src,
            dst,
            src_port,
            dst_port,
            flags,
            start_ns,
            reverse,
            src_mac: f.src_mac.unwrap_or([0; 6]),
        });
    }

    /// `t`, unless missing or absurd: then the export time, counted.
    fn checked_time(&mut self, t: Option<u64>, export_ns: u64) -> u64 {
        match t {
            Some(t) if t.abs_diff(export_ns) <= MAX_SKEW_NS => t,
            _ => {
                self.stats.bad_time += 1;
                export_ns
            }
        }
    }
}

/// IPv4-mapped IPv6 (a dual-stack socket's view of an IPv4 exporter) as IPv4.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// `first_ms` on the exporter's uptime clock, given an export at `export_ns`
/// when its uptime was `uptime_ms` (32-bit ms wrap handled).
fn uptime_ns(export_ns: u64, uptime_ms: u32, first_ms: u32) -> u64 {
    let ago_ms = u64::from(uptime_ms.wrapping_sub(first_ms));
    export_ns.saturating_sub(ago_ms * 1_000_000)
}

/// What a datagram's header says about its records' clocks.
struct TimeCtx {
    export_ns: u64,
    /// v9: the uptime at export (records are in ms since boot).
    uptime_ms: Option<u32>,
    /// IPFIX: the exporter's boot, from its options.
    boot_ms: Option<u64>,
}

impl TimeCtx {
    fn resolve(&self, t: Option<Stamp>) -> Option<u64> {
        match t? {
            Stamp::UnixNs(ns) => Some(ns),
            Stamp::UptimeMs(ms) => match (self.uptime_ms, self.boot_ms) {
                (Some(up), _) => Some(uptime_ns(self.export_ns, up, ms as u32)),
                (None, Some(boot)) => boot.checked_add(ms)?.checked_mul(1_000_000),
                (None, None) => None,
            },
            Stamp::DeltaUs(us) => self.export_ns.checked_sub(us.checked_mul(1000)?),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Stamp {
    UnixNs(u64),
    UptimeMs(u64),
    /// Microseconds before the export time (IPFIX flowStartDeltaMicroseconds).
    DeltaUs(u64),
}

#[derive(Default, Debug)]
struct Side {
    flags: Option<u16>,
    start: Option<Stamp>,
}

/// The fields the method reads, by information element (v9 field types
/// share IPFIX's numbers for all of them).
#[derive(Default, Debug)]
struct Fields {
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    src_port: Option<u16>,
    dst_port: Option<u16>,
    protocol: Option<u8>,
    fwd: Side,
    rev: Side,
    src_mac: Option<[u8; 6]>,
    sampling: Option<u64>,
    /// PSAMP (RFC 5476): packets selected and skipped per round
    /// (samplingPacketInterval, samplingPacketSpace), or selected of a
    /// population (samplingSize, samplingPopulation).
    psamp: [Option<u64>; 4],
    boot_ms: Option<u64>,
}

/// (enterprise, element id): enterprise 0 is IANA's.
type Ie = (u32, u16);

fn v9_id(f: v9::lookup::V9Field) -> Ie {
    (0, u16::from(f))
}

fn ipfix_id(f: &IPFixField) -> Ie {
    use netflow_parser::variable_versions::ipfix::lookup::{
        IANAIPFixField as I, ReverseInformationElement as R,
    };
    // The parser's element enums have no numeric conversion: the elements
    // the method reads, by name.
    let iana = |x: &I| match x {
        I::ProtocolIdentifier => 4,
        I::TcpControlBits => 6,
        I::SourceTransportPort => 7,
        I::SourceIpv4address => 8,
        I::DestinationTransportPort => 11,
        I::DestinationIpv4address => 12,
        I::FlowStartSysUpTime => 22,
        I::SourceIpv6address => 27,
        I::DestinationIpv6address => 28,
        I::SamplingInterval => 34,
        I::SamplerRandomInterval => 50,
        I::SourceMacaddress => 56,
        I::FlowStartSeconds => 150,
        I::FlowStartMilliseconds => 152,
        I::FlowStartMicroseconds => 154,
        I::FlowStartNanoseconds => 156,
        I::FlowStartDeltaMicroseconds => 158,
        I::SystemInitTimeMilliseconds => 160,
        I::SamplingPacketInterval => 305,
        I::SamplingPacketSpace => 306,
        I::SamplingSize => 309,
        I::SamplingPopulation => 310,
        _ => 0,
    };
    let reverse = |x: &R| match x {
        R::ReverseTcpControlBits => 6,
        R::ReverseFlowStartSysUpTime => 22,
        R::ReverseFlowStartSeconds => 150,
        R::ReverseFlowStartMilliseconds => 152,
        R::ReverseFlowStartMicroseconds => 154,
        R::ReverseFlowStartNanoseconds => 156,
        R::ReverseFlowStartDeltaMicroseconds => 158,
        _ => 0,
    };
    match f {
        IPFixField::IANA(x) => (0, iana(x)),
        IPFixField::ReverseInformationElement(x) => (REVERSE_PEN, reverse(x)),
        // Vendor elements carry nothing the method reads.
        _ => (u32::MAX, 0),
    }
}

impl Fields {
    fn read<'a>(pairs: impl Iterator<Item = (Ie, &'a FieldValue)>) -> Fields {
        let mut f = Fields::default();
        for ((pen, id), v) in pairs {
            let side = match pen {
                0 => &mut f.fwd,
                REVERSE_PEN => &mut f.rev,
                _ => continue,
            };
            // Elements both directions carry (RFC 5103).
            match id {
                6 => side.flags = flags(v),
                // flowStartSysUpTime
                22 => side.start = side.start.or(v.as_u64().map(Stamp::UptimeMs)),
                // flowStartSeconds / Milliseconds / Microseconds / Nanoseconds
                150 | 152 | 154 | 156 => side.start = unix_ns(v).map(Stamp::UnixNs),
                // flowStartDeltaMicroseconds
                158 => side.start = side.start.or(v.as_u64().map(Stamp::DeltaUs)),
                _ if pen == 0 => f.forward_only(id, v),
                _ => {}
            }
        }
        f.sampling = f.sampling.or_else(|| f.psamp_interval());
        f
    }

    /// 1 in N, from PSAMP's counts (N rounded up; 1 when nothing is skipped).
    fn psamp_interval(&self) -> Option<u64> {
        let ratio = |sel: u64, all: u64| all.div_ceil(sel.max(1));
        match self.psamp {
            [Some(sel), Some(skip), ..] => Some(ratio(sel, sel.saturating_add(skip))),
            [_, _, Some(size), Some(pop)] => Some(ratio(size, pop)),
            _ => None,
        }
    }
}

impl Fields {
    fn forward_only(&mut self, id: u16, v: &FieldValue) {
        match id {
            8 | 27 => self.src = self.src.or(ip(v)),
            12 | 28 => self.dst = self.dst.or(ip(v)),
            7 => self.src_port = v.as_u16(),
            11 => self.dst_port = v.as_u16(),
            4 => self.protocol = v.as_u8(),
            56 => {
                if let FieldValue::MacAddr(m) = v {
                    self.src_mac = Some(*m);
                }
            }
            305 => self.psamp[0] = v.as_u64(),
            306 => self.psamp[1] = v.as_u64(),
            309 => self.psamp[2] = v.as_u64(),
            310 => self.psamp[3] = v.as_u64(),
            // samplingInterval, samplerRandomInterval: 1 in N.
            34 | 50 => {
                if let Some(n) = v.as_u64() {
                    self.sampling = Some(self.sampling.map_or(n, |s| s.max(n)));
                }
            }
            160 => self.boot_ms = duration_ms(v),
            _ => {}
        }
    }
}

fn ip(v: &FieldValue) -> Option<IpAddr> {
    match v {
        FieldValue::Ip4Addr(a) => Some(IpAddr::V4(*a)),
        FieldValue::Ip6Addr(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

fn flags(v: &FieldValue) -> Option<u16> {
    match v {
        FieldValue::TcpControlBits(b, _) => Some(u16::from(*b)),
        v => v.as_u16(),
    }
}

fn duration_ms(v: &FieldValue) -> Option<u64> {
    match v {
        FieldValue::Duration(d) => Some(d.as_duration().as_millis() as u64),
        v => v.as_u64(),
    }
}

/// An absolute start time as Unix ns (NTP-based micro/nanoseconds since 1900).
fn unix_ns(v: &FieldValue) -> Option<u64> {
    let FieldValue::Duration(d) = v else {
        return v.as_u64().and_then(|ms| ms.checked_mul(1_000_000));
    };
    let ns = d.as_duration().as_nanos();
    let ns = u64::try_from(ns).ok()?;
    match d {
        DurationValue::MicrosNtp { .. } | DurationValue::NanosNtp { .. } => {
            ns.checked_sub(NTP_UNIX_OFFSET_S * 1_000_000_000)
        }
        _ => Some(ns),
    }
}
