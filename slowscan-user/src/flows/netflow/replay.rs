//! `slowscan replay --flow-exports`: export datagrams captured on the wire
//! (UDP payloads to a collector, in pcap or pcapng) through the decoder, the
//! reordering and the engine, as the collector would have taken them.
use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::PathBuf,
};

use anyhow::Context;
use serde::Serialize;
use slowscan_common::wire::{ETH_P_8021AD, ETH_P_8021Q, ETH_P_IP, ETH_P_IPV6, ETH_P_QINQ_9100};

use super::{DecodeStats, Decoder, FeedStats, Reorder};
use crate::{
    capture::CaptureReader,
    engine::{Alert, Engine},
    frame::{LinkType, network_layer},
};

/// What a replay of flow exports read, for its report and log line.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FlowReplay {
    pub packets: u64,
    /// Packets that were not a whole UDP datagram over IPv4 or IPv6.
    pub not_udp: u64,
    pub decode: DecodeStats,
    pub feed: FeedStats,
    pub exporters: Vec<ExporterReport>,
}

/// One exporter's view, for the report and `status`.
#[derive(Clone, Debug, Serialize)]
pub struct ExporterReport {
    pub exporter: String,
    pub datagrams: u64,
    pub records: u64,
    pub sequence_gaps: u64,
    pub sequence_lost: u64,
    /// The sampling interval it announced, when above 1: unusable.
    pub sampled: Option<u64>,
}

impl ExporterReport {
    pub fn all(d: &Decoder) -> Vec<ExporterReport> {
        let mut v: Vec<_> = d
            .exporters()
            .map(|(k, e)| ExporterReport {
                exporter: k.to_string(),
                datagrams: e.datagrams,
                records: e.records,
                sequence_gaps: e.gaps,
                sequence_lost: e.lost,
                sampled: e.sampling.filter(|&s| s > 1),
            })
            .collect();
        v.sort_by(|a, b| a.exporter.cmp(&b.exporter));
        v
    }
}

/// Replays `files` in order into `engine`; alerts go to `alerts` as they are
/// decided. `max_lateness_ns`: see [`Reorder`].
pub fn replay(
    files: &[PathBuf],
    max_lateness_ns: u64,
    engine: &mut Engine,
    mut alerts: impl FnMut(&[Alert]) -> anyhow::Result<()>,
) -> anyhow::Result<FlowReplay> {
    let mut decoder = Decoder::new(None);
    let mut order = Reorder::new(max_lateness_ns, usize::MAX);
    let mut r = FlowReplay::default();
    let (mut records, mut out) = (Vec::new(), Vec::new());
    for path in files {
        let mut reader = CaptureReader::open(path)?;
        while let Some(p) = reader
            .next_packet()
            .with_context(|| format!("reading {}", path.display()))?
        {
            r.packets += 1;
            let Some((from, payload)) = udp_payload(p.link, p.data) else {
                r.not_udp += 1;
                continue;
            };
            records.clear();
            decoder.datagram(from, payload, &mut records);
            for rec in &records {
                order.push(rec, engine, &mut out);
            }
            for n in decoder.take_notices() {
                tracing::warn!("{}", notice_text(&n));
            }
            if !out.is_empty() {
                alerts(&out)?;
                out.clear();
            }
        }
    }
    order.finish(engine, &mut out);
    engine.finish(&mut out);
    alerts(&out)?;
    r.decode = decoder.stats;
    r.feed = order.stats;
    r.exporters = ExporterReport::all(&decoder);
    Ok(r)
}

/// The operator's line for a notice.
pub fn notice_text(n: &super::Notice) -> String {
    match n {
        super::Notice::Sampled { exporter, interval } => format!(
            "exporter {exporter} samples 1 packet in {interval}: its records are UNUSABLE for \
             slow-scan detection (a probe's lone SYN is sampled away, and an attempt's SYN \
             without its ACK looks failed); turn sampling off on it"
        ),
    }
}

/// The source and payload of a UDP datagram in a captured frame (Ethernet
/// with up to two VLAN tags, or any link type the frame parser knows).
pub fn udp_payload(link: LinkType, data: &[u8]) -> Option<(SocketAddr, &[u8])> {
    let be16 = |o: usize| Some(u16::from_be_bytes(data.get(o..o + 2)?.try_into().ok()?));
    let (mut ether, mut off) = match link {
        LinkType::Ethernet => (be16(12)?, 14),
        _ => network_layer(link, data)?,
    };
    for _ in 0..2 {
        if matches!(ether, ETH_P_8021Q | ETH_P_8021AD | ETH_P_QINQ_9100) {
            ether = be16(off + 2)?;
            off += 4;
        }
    }
    let ip = data.get(off..)?;
    let (src, udp) = match ether {
        ETH_P_IP => {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            let frag = u16::from_be_bytes(ip.get(6..8)?.try_into().ok()?);
            // Fragments of a datagram are not reassembled.
            if ip[0] >> 4 != 4 || ip.get(9)? != &17 || frag & 0x3fff != 0 || ihl < 20 {
                return None;
            }
            let a: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            (IpAddr::V4(Ipv4Addr::from(a)), ip.get(ihl..)?)
        }
        ETH_P_IPV6 => {
            if ip.first()? >> 4 != 6 || ip.get(6)? != &17 {
                return None;
            }
            let a: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            (IpAddr::V6(Ipv6Addr::from(a)), ip.get(40..)?)
        }
        _ => return None,
    };
    let sport = u16::from_be_bytes(udp.get(0..2)?.try_into().ok()?);
    let len = usize::from(u16::from_be_bytes(udp.get(4..6)?.try_into().ok()?));
    // A datagram cut by the snap length is not read as a shorter one.
    let payload = udp.get(8..len.max(8))?;
    Some((SocketAddr::new(src, sport), payload))
}
