//! NetFlow v9 and IPFIX export datagrams built by hand (RFC 3954, RFC
//! 7011): one template of IPv4 addresses, ports, protocol, TCP flags and a
//! start time, and data records under it, with the header's sequence
//! numbers as real exporters count them. For tests and benches that send
//! exports to a collector.
use std::net::Ipv4Addr;

/// One flow record.
#[derive(Clone, Copy, Debug)]
pub struct Flow {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub src_port: u16,
    pub dst_port: u16,
    /// OR'd TCP flags (SYN 0x02, ACK 0x10, …).
    pub flags: u8,
    /// Start, Unix ms (IPFIX `flowStartMilliseconds`; v9: converted to
    /// `FIRST_SWITCHED`, since the exporter's boot).
    pub start_ms: u64,
}

/// (IE id, length): sourceIPv4Address, destinationIPv4Address,
/// sourceTransportPort, destinationTransportPort, protocolIdentifier,
/// tcpControlBits, then the start time (IPFIX flowStartMilliseconds 152/8;
/// v9 FIRST_SWITCHED 22/4).
const COMMON: [(u16, u16); 6] = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (6, 1)];
pub const TEMPLATE_ID: u16 = 256;

/// Records per datagram that keep it under 1,400 bytes.
pub const IPFIX_PER_DATAGRAM: usize = 60;
pub const V9_PER_DATAGRAM: usize = 70;

fn common(out: &mut Vec<u8>, f: &Flow) {
    out.extend_from_slice(&f.src.octets());
    out.extend_from_slice(&f.dst.octets());
    out.extend_from_slice(&f.src_port.to_be_bytes());
    out.extend_from_slice(&f.dst_port.to_be_bytes());
    out.push(6);
    out.push(f.flags);
}

fn set(out: &mut Vec<u8>, id: u16, body: &[u8]) {
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
    out.extend_from_slice(body);
}

fn template_body(start: (u16, u16)) -> Vec<u8> {
    let mut t = TEMPLATE_ID.to_be_bytes().to_vec();
    t.extend_from_slice(&((COMMON.len() + 1) as u16).to_be_bytes());
    for (id, len) in COMMON.iter().chain([&start]) {
        t.extend_from_slice(&id.to_be_bytes());
        t.extend_from_slice(&len.to_be_bytes());
    }
    t
}

/// An IPFIX exporter: its observation domain and the count of
/// data records sent so far (the header's sequence number).
pub struct Ipfix {
    pub domain: u32,
    pub sequence: u32,
}

impl Ipfix {
    pub fn new(domain: u32) -> Self {
        Self {
            domain,
            sequence: 0,
        }
    }

    /// One message holding `flows` (and the template first when `template`).
    pub fn datagram(&mut self, export_s: u32, template: bool, flows: &[Flow]) -> Vec<u8> {
        let mut m = vec![0, 10, 0, 0];
        m.extend_from_slice(&export_s.to_be_bytes());
        m.extend_from_slice(&self.sequence.to_be_bytes());
        m.extend_from_slice(&self.domain.to_be_bytes());
        if template {
            set(&mut m, 2, &template_body((152, 8)));
        }
        if !flows.is_empty() {
            let mut d = Vec::with_capacity(flows.len() * 22);
            for f in flows {
                common(&mut d, f);
                d.extend_from_slice(&f.start_ms.to_be_bytes());
            }
            set(&mut m, TEMPLATE_ID, &d);
        }
        let len = m.len() as u16;
        m[2..4].copy_from_slice(&len.to_be_bytes());
        self.sequence = self.sequence.wrapping_add(flows.len() as u32);
        m
    }
}

/// A NetFlow v9 exporter: source id, boot time, and the count of export
/// datagrams sent so far (the header's sequence number).
pub struct V9 {
    pub source_id: u32,
    pub boot_ms: u64,
    pub sequence: u32,
}

impl V9 {
    pub fn new(source_id: u32, boot_ms: u64) -> Self {
        Self {
            source_id,
            boot_ms,
            sequence: 0,
        }
    }

    pub fn datagram(&mut self, export_s: u32, template: bool, flows: &[Flow]) -> Vec<u8> {
        let mut m = vec![0, 9];
        let count = flows.len() as u16 + u16::from(template);
        m.extend_from_slice(&count.to_be_bytes());
        let up = (u64::from(export_s) * 1000).saturating_sub(self.boot_ms) as u32;
        m.extend_from_slice(&up.to_be_bytes());
        m.extend_from_slice(&export_s.to_be_bytes());
        m.extend_from_slice(&self.sequence.to_be_bytes());
        m.extend_from_slice(&self.source_id.to_be_bytes());
        if template {
            set(&mut m, 0, &template_body((22, 4)));
        }
        if !flows.is_empty() {
            let mut d = Vec::with_capacity(flows.len() * 18 + 3);
            for f in flows {
                common(&mut d, f);
                let first = f.start_ms.saturating_sub(self.boot_ms) as u32;
                d.extend_from_slice(&first.to_be_bytes());
            }
            // Flowsets are padded to 4 bytes.
            while (d.len() + 4) % 4 != 0 {
                d.push(0);
            }
            set(&mut m, TEMPLATE_ID, &d);
        }
        self.sequence = self.sequence.wrapping_add(1);
        m
    }
}
