//! Capture errors: each names the file and, where it applies, the byte offset.

use std::{fmt, io, path::PathBuf};

/// A position in a capture. For a gzipped file the offset counts
/// decompressed bytes, and the message says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteOffset {
    pub offset: u64,
    pub gzip: bool,
}

impl fmt::Display for ByteOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "byte {}", self.offset)?;
        if self.gzip {
            f.write_str(" of the decompressed data")?;
        }
        Ok(())
    }
}

/// The I/O cause of a variant is part of its message and is not its
/// `source()`: `{:#}` (anyhow's chain) would print it twice.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{}: cannot open: {cause}", path.display())]
    Open { path: PathBuf, cause: io::Error },

    /// The gzip layer failed: the compressed data is corrupt or cut short.
    #[error("{}: corrupt or truncated gzip data at {at}: {cause}", path.display())]
    Gzip {
        path: PathBuf,
        at: ByteOffset,
        cause: io::Error,
    },

    /// Reading the file failed.
    #[error("{}: read error at {at}: {cause}", path.display())]
    Io {
        path: PathBuf,
        at: ByteOffset,
        cause: io::Error,
    },

    #[error("{}: not a pcap or pcapng capture (it starts with {})", path.display(), hex(magic))]
    NotACapture { path: PathBuf, magic: [u8; 4] },

    /// The file ends inside `what` (a header, record or block).
    #[error("{}: truncated {what} at {at} (needs {needed} bytes, {left} left)", path.display())]
    Truncated {
        path: PathBuf,
        at: ByteOffset,
        what: &'static str,
        needed: u64,
        left: u64,
    },

    /// A length field is larger than the reader accepts: almost always a corrupt file.
    #[error(
        "{}: {what} at {at} claims {len} bytes, more than the {limit}-byte limit (corrupt capture?)",
        path.display()
    )]
    TooLarge {
        path: PathBuf,
        at: ByteOffset,
        what: &'static str,
        len: u64,
        limit: u64,
    },

    #[error("{}: corrupt {what} at {at}: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        at: ByteOffset,
        what: &'static str,
        reason: String,
    },

    #[error(
        "{}: unsupported link type {link_type}{} (supported: {})",
        path.display(),
        interface.map(|i| format!(" on interface {i}")).unwrap_or_default(),
        crate::frame::LinkType::SUPPORTED
    )]
    UnknownLinkType {
        path: PathBuf,
        link_type: u32,
        interface: Option<u32>,
    },

    #[error("{}: unsupported {format} version {major}.{minor}", path.display())]
    UnsupportedVersion {
        path: PathBuf,
        format: &'static str,
        major: u16,
        minor: u16,
    },
}

impl CaptureError {
    /// Where the damage is, when the error is about a place in the file.
    pub fn at(&self) -> Option<ByteOffset> {
        match self {
            CaptureError::Io { at, .. }
            | CaptureError::Gzip { at, .. }
            | CaptureError::Truncated { at, .. }
            | CaptureError::TooLarge { at, .. }
            | CaptureError::Corrupt { at, .. } => Some(*at),
            _ => None,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}
