//! A byte stream with its own buffer, so packets are handed out as slices of
//! it (no copy, no allocation per packet) and every position is known.

use std::io::{self, ErrorKind, Read};

/// Initial buffer; it grows (once) up to the largest block the reader accepts.
const INITIAL_BUF: usize = 64 * 1024;

pub(crate) struct Source {
    inner: Box<dyn Read + Send>,
    /// Fully initialised; only `buf[pos..end]` holds unread data.
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// Stream offset of `buf[pos]`.
    offset: u64,
    eof: bool,
}

impl Source {
    pub(crate) fn new(inner: Box<dyn Read + Send>) -> Self {
        Source {
            inner,
            buf: Vec::new(),
            pos: 0,
            end: 0,
            offset: 0,
            eof: false,
        }
    }

    /// Stream offset of the next unread byte.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Buffers at least `n` bytes unless the stream ends first; returns how
    /// many are buffered (less than `n` only at the end of the stream).
    /// Callers bound `n`, so the buffer never outgrows the largest block.
    pub(crate) fn fill(&mut self, n: usize) -> io::Result<usize> {
        if self.end - self.pos >= n || self.eof {
            return Ok(self.end - self.pos);
        }
        if self.buf.len() < n {
            // `vec!` of zeros is a calloc: cheap, unlike resizing in place.
            let mut bigger = vec![0; n.max(INITIAL_BUF)];
            bigger[..self.end - self.pos].copy_from_slice(&self.buf[self.pos..self.end]);
            self.buf = bigger;
            self.end -= self.pos;
            self.pos = 0;
        } else if self.buf.len() - self.pos < n {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        while self.end - self.pos < n {
            // A terminating signal (only `slowscan learn` takes them) ends
            // the reading here; an EINTR without one is retried.
            if let Some(sig) = crate::stop::requested() {
                return Err(io::Error::new(
                    ErrorKind::Interrupted,
                    format!("reading stopped by signal {sig}"),
                ));
            }
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(read) => self.end += read,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end - self.pos)
    }

    /// The next `n` buffered bytes (`n` must not exceed what `fill` returned).
    pub(crate) fn peek(&self, n: usize) -> &[u8] {
        &self.buf[self.pos..self.pos + n]
    }

    /// Consumes `n` buffered bytes and returns their range in [`Self::slice`].
    pub(crate) fn consume(&mut self, n: usize) -> std::ops::Range<usize> {
        let start = self.pos;
        self.pos += n;
        self.offset += n as u64;
        start..self.pos
    }

    /// Bytes consumed earlier, valid until the next `fill`.
    pub(crate) fn slice(&self, range: std::ops::Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    /// Skips `n` bytes without keeping them; returns how many were skipped
    /// (less than `n` only at the end of the stream).
    pub(crate) fn skip(&mut self, n: u64) -> io::Result<u64> {
        let mut left = n;
        while left > 0 {
            let want = usize::try_from(left).unwrap_or(usize::MAX).min(INITIAL_BUF);
            let got = self.fill(want)?.min(want);
            if got == 0 {
                break;
            }
            self.consume(got);
            left -= got as u64;
        }
        Ok(n - left)
    }
}

/// Counts the bytes read from the file itself (before any gunzipping), for
/// progress bars.
pub(crate) struct Counting<R> {
    pub(crate) inner: R,
    pub(crate) count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}
