//! Writes classic pcap with nanosecond timestamps (little-endian), readable
//! by tcpdump, Wireshark and [`super::CaptureReader`].

use std::{
    fs::File,
    io::{self, BufWriter, Write},
    path::Path,
};

use super::MAX_PACKET;
use crate::frame::LinkType;

const MAGIC_NANOS: u32 = 0xA1B2_3C4D;

pub struct PcapWriter<W: Write> {
    out: W,
    snaplen: usize,
}

impl PcapWriter<BufWriter<File>> {
    /// Creates (or truncates) `path` and writes the file header.
    pub fn create(path: impl AsRef<Path>, link: LinkType) -> io::Result<Self> {
        PcapWriter::new(BufWriter::new(File::create(path)?), link)
    }
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header; packets longer than [`MAX_PACKET`] are cut to it.
    pub fn new(mut out: W, link: LinkType) -> io::Result<Self> {
        let mut header = [0u8; 24];
        header[0..4].copy_from_slice(&MAGIC_NANOS.to_le_bytes());
        header[4..6].copy_from_slice(&2u16.to_le_bytes());
        header[6..8].copy_from_slice(&4u16.to_le_bytes());
        header[16..20].copy_from_slice(&(MAX_PACKET as u32).to_le_bytes());
        header[20..24].copy_from_slice(&link.to_pcap().to_le_bytes());
        out.write_all(&header)?;
        Ok(PcapWriter {
            out,
            snaplen: MAX_PACKET,
        })
    }

    /// Appends one packet; `wire_len` is its length on the wire (at least
    /// `data.len()` is recorded). Fails for a time after 2106 (pcap's 32-bit seconds).
    pub fn write_packet(&mut self, ts_ns: u64, data: &[u8], wire_len: usize) -> io::Result<()> {
        let secs = u32::try_from(ts_ns / 1_000_000_000).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("timestamp {ts_ns} ns is past 2106"),
            )
        })?;
        let data = &data[..data.len().min(self.snaplen)];
        let orig_len = u32::try_from(wire_len.max(data.len())).unwrap_or(u32::MAX);
        let mut header = [0u8; 16];
        header[0..4].copy_from_slice(&secs.to_le_bytes());
        header[4..8].copy_from_slice(&((ts_ns % 1_000_000_000) as u32).to_le_bytes());
        header[8..12].copy_from_slice(&(data.len() as u32).to_le_bytes());
        header[12..16].copy_from_slice(&orig_len.to_le_bytes());
        self.out.write_all(&header)?;
        self.out.write_all(data)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}
