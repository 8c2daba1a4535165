//! Builds pcap and pcapng files byte by byte (either byte order), so the
//! reader is tested against the formats' specifications rather than
//! against its own writer.
#![allow(dead_code)]

use std::io::Write;

use slowscan::capture::CaptureReader;

/// A packet as the tests compare them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pkt {
    pub link: slowscan::frame::LinkType,
    pub ts_ns: u64,
    pub data: Vec<u8>,
    pub wire_len: usize,
    pub interface: u32,
    pub offset: u64,
}

/// Every packet of an in-memory capture, then the final result.
pub fn read_all(
    name: &str,
    bytes: Vec<u8>,
) -> (Vec<Pkt>, Result<(), slowscan::capture::CaptureError>) {
    let mut reader = match CaptureReader::from_reader(name, std::io::Cursor::new(bytes)) {
        Ok(r) => r,
        Err(e) => return (Vec::new(), Err(e)),
    };
    let mut out = Vec::new();
    loop {
        match reader.next_packet() {
            Ok(Some(p)) => out.push(Pkt {
                link: p.link,
                ts_ns: p.ts_ns,
                data: p.data.to_vec(),
                wire_len: p.wire_len,
                interface: p.interface,
                offset: p.offset,
            }),
            Ok(None) => return (out, Ok(())),
            Err(e) => return (out, Err(e)),
        }
    }
}

#[derive(Clone, Copy)]
pub struct Order {
    pub big: bool,
}

impl Order {
    pub fn u16(self, v: u16) -> [u8; 2] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    pub fn u32(self, v: u32) -> [u8; 4] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
}

pub const LE: Order = Order { big: false };
pub const BE: Order = Order { big: true };

/// A classic pcap file header.
pub fn pcap_header(o: Order, nanos: bool, link: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend(o.u32(if nanos { 0xA1B2_3C4D } else { 0xA1B2_C3D4 }));
    h.extend(o.u16(2));
    h.extend(o.u16(4));
    h.extend(o.u32(0));
    h.extend(o.u32(0));
    h.extend(o.u32(65_535));
    h.extend(o.u32(link));
    h
}

/// A classic pcap record; `frac` is µs or ns as the header says.
pub fn pcap_record(o: Order, secs: u32, frac: u32, data: &[u8], orig_len: u32) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend(o.u32(secs));
    r.extend(o.u32(frac));
    r.extend(o.u32(data.len() as u32));
    r.extend(o.u32(orig_len));
    r.extend_from_slice(data);
    r
}

/// pcapng blocks appended to one buffer.
pub struct Ng {
    pub o: Order,
    pub out: Vec<u8>,
}

pub const SHB: u32 = 0x0A0D_0D0A;
pub const IDB: u32 = 1;
pub const OPB: u32 = 2;
pub const SPB: u32 = 3;
pub const NRB: u32 = 4;
pub const ISB: u32 = 5;
pub const EPB: u32 = 6;

impl Ng {
    /// Starts with a section header.
    pub fn new(o: Order) -> Ng {
        let mut ng = Ng { o, out: Vec::new() };
        ng.shb();
        ng
    }

    pub fn shb(&mut self) -> &mut Self {
        let o = self.o;
        let mut body = Vec::new();
        body.extend(o.u32(0x1A2B_3C4D));
        body.extend(o.u16(1));
        body.extend(o.u16(0));
        body.extend([0xFF; 8]); // section length: unknown
        self.block(SHB, &body)
    }

    /// A block with `body` padded to 4 bytes.
    pub fn block(&mut self, block_type: u32, body: &[u8]) -> &mut Self {
        let o = self.o;
        let padded = body.len().next_multiple_of(4);
        let len = (12 + padded) as u32;
        self.out.extend(o.u32(block_type));
        self.out.extend(o.u32(len));
        self.out.extend_from_slice(body);
        self.out.resize(self.out.len() + padded - body.len(), 0);
        self.out.extend(o.u32(len));
        self
    }

    /// Options list: each `(code, value)`, then the end-of-options marker.
    pub fn options(&self, opts: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut b = Vec::new();
        for (code, value) in opts {
            b.extend(self.o.u16(*code));
            b.extend(self.o.u16(value.len() as u16));
            b.extend_from_slice(value);
            b.resize(b.len().next_multiple_of(4), 0);
        }
        if !opts.is_empty() {
            b.extend([0; 4]);
        }
        b
    }

    pub fn idb(&mut self, link: u16, snaplen: u32, opts: &[(u16, Vec<u8>)]) -> &mut Self {
        let mut body = Vec::new();
        body.extend(self.o.u16(link));
        body.extend(self.o.u16(0));
        body.extend(self.o.u32(snaplen));
        body.extend(self.options(opts));
        self.block(IDB, &body)
    }

    /// An enhanced packet block with a comment option.
    pub fn epb(&mut self, iface: u32, units: u64, data: &[u8], orig_len: u32) -> &mut Self {
        let mut body = Vec::new();
        body.extend(self.o.u32(iface));
        body.extend(self.o.u32((units >> 32) as u32));
        body.extend(self.o.u32(units as u32));
        body.extend(self.o.u32(data.len() as u32));
        body.extend(self.o.u32(orig_len));
        body.extend_from_slice(data);
        body.resize(body.len().next_multiple_of(4), 0);
        body.extend(self.options(&[(1, b"seen".to_vec())]));
        self.block(EPB, &body)
    }

    pub fn opb(&mut self, iface: u16, units: u64, data: &[u8], orig_len: u32) -> &mut Self {
        let mut body = Vec::new();
        body.extend(self.o.u16(iface));
        body.extend(self.o.u16(0));
        body.extend(self.o.u32((units >> 32) as u32));
        body.extend(self.o.u32(units as u32));
        body.extend(self.o.u32(data.len() as u32));
        body.extend(self.o.u32(orig_len));
        body.extend_from_slice(data);
        self.block(OPB, &body)
    }

    pub fn spb(&mut self, data: &[u8], orig_len: u32) -> &mut Self {
        let mut body = self.o.u32(orig_len).to_vec();
        body.extend_from_slice(data);
        self.block(SPB, &body)
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.out.clone()
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A fresh path under the test target's scratch directory.
pub fn temp_path(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("capture-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{}-{name}", std::process::id()))
}
