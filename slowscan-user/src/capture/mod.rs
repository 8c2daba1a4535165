//! Streaming capture reader: classic pcap and pcapng, gzipped or not.
//!
//! Hand-written rather than built on `pcap-parser`: both formats are small,
//! and owning the buffer lets the reader hand out packets without copying,
//! name the byte offset of any damage, and bound every length field
//! ([`MAX_PACKET`]) so a corrupt file can neither hang it nor make it
//! allocate without limit. Every step consumes at least one block header or
//! ends with `Ok(None)` or an error; after an error the reader is finished.

mod error;
pub mod feed;
mod pcap;
mod pcapng;
mod source;
mod writer;

use std::{
    fs::File,
    io::{BufRead, BufReader, Read},
    ops::Range,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

pub use error::{ByteOffset, CaptureError};
pub use feed::{FileSummary, Input, ReadObserver, check_inputs, feed_engine, for_each_record};
pub use writer::PcapWriter;

use crate::frame::LinkType;
use source::{Counting, Source};

/// Largest captured packet accepted (snap lengths are 262144 at most in
/// practice); a larger length field means a corrupt capture.
pub const MAX_PACKET: usize = 256 * 1024;

/// One packet as stored in the capture, borrowed from the reader's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapturedPacket<'a> {
    pub link: LinkType,
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    pub data: &'a [u8],
    /// Length on the wire: the record's original length, never less than `data.len()`.
    pub wire_len: usize,
    /// pcapng interface id (0 for classic pcap).
    pub interface: u32,
    /// Byte offset of the packet's record or block (of the decompressed data
    /// for a gzipped file).
    pub offset: u64,
}

/// What a format's reader gives for each record: a packet, the end of the
/// file, or why it cannot go on.
type Next = Result<Option<RawPacket>, CaptureError>;

/// A packet located in the source buffer; turned into [`CapturedPacket`] by the reader.
struct RawPacket {
    link: LinkType,
    ts_ns: u64,
    data: Range<usize>,
    wire_len: usize,
    interface: u32,
    offset: u64,
}

enum Format {
    /// A 0-byte file (or gzip of one): no packets.
    Empty,
    Pcap(pcap::State),
    PcapNg(pcapng::State),
}

/// Reads packets one at a time from a capture file.
pub struct CaptureReader {
    ctx: Ctx,
    src: Source,
    format: Format,
    done: bool,
    /// Offset of the last record or block read.
    block_offset: u64,
    input_read: Arc<AtomicU64>,
    input_len: Option<u64>,
}

impl CaptureReader {
    /// Opens a pcap or pcapng file, gunzipping it when it starts with the gzip
    /// magic. Reads the file header, so an unsupported format or link type
    /// fails here.
    pub fn open(path: impl AsRef<Path>) -> Result<CaptureReader, CaptureError> {
        let path = path.as_ref();
        let open_err = |cause| CaptureError::Open {
            path: path.to_owned(),
            cause,
        };
        let file = File::open(path).map_err(open_err)?;
        let len = file.metadata().map_err(open_err)?.len();
        let mut reader = Self::from_reader(path, file)?;
        reader.input_len = Some(len);
        Ok(reader)
    }

    /// Reads a capture from any byte stream; `name` is used in error messages.
    pub fn from_reader(
        name: impl Into<PathBuf>,
        input: impl Read + Send + 'static,
    ) -> Result<CaptureReader, CaptureError> {
        let path = name.into();
        let input_read = Arc::new(AtomicU64::new(0));
        let mut buffered = BufReader::new(Counting {
            inner: input,
            count: Arc::clone(&input_read),
        });
        let io_err = |cause| CaptureError::Io {
            path: path.clone(),
            at: ByteOffset {
                offset: 0,
                gzip: false,
            },
            cause,
        };
        // EINTR (a signal while a FIFO waits for data) is retried unless
        // the signal asked for a stop (`crate::stop`).
        loop {
            match buffered.fill_buf() {
                Ok(_) => break,
                Err(e)
                    if e.kind() == std::io::ErrorKind::Interrupted
                        && crate::stop::requested().is_none() => {}
                Err(e) => return Err(io_err(e)),
            }
        }
        let gzip = buffered
            .fill_buf()
            .map_err(io_err)?
            .starts_with(&[0x1f, 0x8b]);
        let input: Box<dyn Read + Send> = if gzip {
            Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
        } else {
            Box::new(buffered)
        };
        let mut reader = CaptureReader {
            ctx: Ctx { path, gzip },
            src: Source::new(input),
            format: Format::Empty,
            done: false,
            block_offset: 0,
            input_read,
            input_len: None,
        };
        reader.format = reader.read_header()?;
        Ok(reader)
    }

    fn read_header(&mut self) -> Result<Format, CaptureError> {
        let have = self.ctx.fill(&mut self.src, 4)?;
        if have == 0 {
            return Ok(Format::Empty);
        }
        if have < 4 {
            return Err(self.ctx.truncated(0, "capture header", 4, have));
        }
        let magic: [u8; 4] = self.src.peek(4).try_into().expect("4 bytes");
        if let Some(state) = pcap::open(&magic, &mut self.src, &self.ctx)? {
            Ok(Format::Pcap(state))
        } else if magic == pcapng::SHB_MAGIC {
            Ok(Format::PcapNg(pcapng::State::default()))
        } else {
            Err(CaptureError::NotACapture {
                path: self.ctx.path.clone(),
                magic,
            })
        }
    }

    /// The next packet, `Ok(None)` at the end of the capture. After an error
    /// the reader is finished and returns `Ok(None)`.
    pub fn next_packet(&mut self) -> Result<Option<CapturedPacket<'_>>, CaptureError> {
        if self.done {
            return Ok(None);
        }
        let next = match &mut self.format {
            Format::Empty => Ok(None),
            Format::Pcap(state) => state.next(&mut self.src, &self.ctx),
            Format::PcapNg(state) => state.next(&mut self.src, &self.ctx),
        };
        match next {
            Ok(Some(raw)) => {
                self.block_offset = raw.offset;
                Ok(Some(CapturedPacket {
                    link: raw.link,
                    ts_ns: raw.ts_ns,
                    data: self.src.slice(raw.data),
                    wire_len: raw.wire_len,
                    interface: raw.interface,
                    offset: raw.offset,
                }))
            }
            other => {
                self.done = true;
                other.map(|_| None)
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.ctx.path
    }

    pub fn is_gzip(&self) -> bool {
        self.ctx.gzip
    }

    /// Offset of the last packet's record or block (see [`CapturedPacket::offset`]).
    pub fn block_offset(&self) -> u64 {
        self.block_offset
    }

    /// Bytes read from the file itself so far (compressed bytes for a
    /// gzipped file), for progress bars; compare with [`Self::input_len`].
    pub fn input_position(&self) -> u64 {
        self.input_read.load(Ordering::Relaxed)
    }

    /// Nothing at all to read: a 0-byte file, or gzip of nothing (no
    /// capture header either).
    pub fn is_empty(&self) -> bool {
        matches!(self.format, Format::Empty)
    }

    /// The file's size, when opened from a path.
    pub fn input_len(&self) -> Option<u64> {
        self.input_len
    }
}

/// Byte order of a pcap file or pcapng section.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Endian {
    #[default]
    Little,
    Big,
}

impl Endian {
    fn u16(self, b: &[u8], off: usize) -> u16 {
        let b = [b[off], b[off + 1]];
        match self {
            Endian::Little => u16::from_le_bytes(b),
            Endian::Big => u16::from_be_bytes(b),
        }
    }

    fn u32(self, b: &[u8], off: usize) -> u32 {
        let b = [b[off], b[off + 1], b[off + 2], b[off + 3]];
        match self {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        }
    }

    fn u64(self, b: &[u8], off: usize) -> u64 {
        let (first, second) = (u64::from(self.u32(b, off)), u64::from(self.u32(b, off + 4)));
        match self {
            Endian::Little => second << 32 | first,
            Endian::Big => first << 32 | second,
        }
    }
}

/// What error messages need to know about the capture.
struct Ctx {
    path: PathBuf,
    gzip: bool,
}

impl Ctx {
    fn at(&self, offset: u64) -> ByteOffset {
        ByteOffset {
            offset,
            gzip: self.gzip,
        }
    }

    /// [`Source::fill`] with the error named.
    fn fill(&self, src: &mut Source, n: usize) -> Result<usize, CaptureError> {
        let offset = src.offset();
        src.fill(n).map_err(|source| self.io(offset, source))
    }

    fn io(&self, offset: u64, source: std::io::Error) -> CaptureError {
        use std::io::ErrorKind::{InvalidData, InvalidInput, UnexpectedEof};
        let (path, at) = (self.path.clone(), self.at(offset));
        // flate2 reports damage with these kinds; a failing disk gives others.
        if self.gzip && matches!(source.kind(), InvalidData | InvalidInput | UnexpectedEof) {
            CaptureError::Gzip {
                path,
                at,
                cause: source,
            }
        } else {
            CaptureError::Io {
                path,
                at,
                cause: source,
            }
        }
    }

    fn truncated(
        &self,
        offset: u64,
        what: &'static str,
        needed: usize,
        left: usize,
    ) -> CaptureError {
        CaptureError::Truncated {
            path: self.path.clone(),
            at: self.at(offset),
            what,
            needed: needed as u64,
            left: left as u64,
        }
    }

    fn too_large(&self, offset: u64, what: &'static str, len: u64, limit: usize) -> CaptureError {
        CaptureError::TooLarge {
            path: self.path.clone(),
            at: self.at(offset),
            what,
            len,
            limit: limit as u64,
        }
    }

    fn corrupt(&self, offset: u64, what: &'static str, reason: String) -> CaptureError {
        CaptureError::Corrupt {
            path: self.path.clone(),
            at: self.at(offset),
            what,
            reason,
        }
    }

    /// A file header's (major, minor) version: only `supported` majors are read.
    fn version(
        &self,
        format: &'static str,
        (major, minor): (u16, u16),
        supported: u16,
    ) -> Result<(), CaptureError> {
        if major == supported {
            return Ok(());
        }
        Err(CaptureError::UnsupportedVersion {
            path: self.path.clone(),
            format,
            major,
            minor,
        })
    }

    fn unknown_link(&self, link_type: u32, interface: Option<u32>) -> CaptureError {
        CaptureError::UnknownLinkType {
            path: self.path.clone(),
            link_type,
            interface,
        }
    }
}
