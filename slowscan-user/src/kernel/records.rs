//! Reading `PacketRecord`s from the BPF ring buffer.
use aya::maps::{MapData, RingBuf};
use slowscan_common::PacketRecord;
use tokio::io::unix::AsyncFd;

/// Reader over the kernel's record ring buffer.
pub struct RecordReader {
    ring: RingBuf<MapData>,
    /// Items whose size was not a record's (a build mismatch): counted, not misread.
    pub bad_items: u64,
}

impl RecordReader {
    pub fn new(ring: RingBuf<MapData>) -> Self {
        Self { ring, bad_items: 0 }
    }

    /// Appends every record available now, without waiting; returns how many.
    pub fn drain(&mut self, out: &mut Vec<PacketRecord>) -> usize {
        let mut n = 0;
        while let Some(item) = self.ring.next() {
            match decode(&item) {
                Some(rec) => {
                    out.push(rec);
                    n += 1;
                }
                None => self.bad_items += 1,
            }
        }
        n
    }

    /// Appends at most `max` records available now, without waiting;
    /// returns how many.
    pub fn drain_max(&mut self, out: &mut Vec<PacketRecord>, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            let Some(item) = self.ring.next() else { break };
            match decode(&item) {
                Some(rec) => {
                    out.push(rec);
                    n += 1;
                }
                None => self.bad_items += 1,
            }
        }
        n
    }

    /// An async reader woken by the ring buffer's epoll notifications; needs a
    /// tokio runtime.
    pub fn into_async(self) -> std::io::Result<AsyncRecordReader> {
        // SAFETY: the ring buffer owns its map fd, which lives exactly as long
        // as the AsyncFd that owns the ring buffer.
        Ok(AsyncRecordReader {
            inner: unsafe { AsyncFd::register(self)? },
        })
    }
}

impl std::os::fd::AsRawFd for RecordReader {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.ring.as_raw_fd()
    }
}

/// How often the async reader looks for records the kernel did not wake it for.
pub const POLL: std::time::Duration = std::time::Duration::from_millis(50);

pub struct AsyncRecordReader {
    inner: AsyncFd<RecordReader>,
}

impl AsyncRecordReader {
    /// Waits until records are available, then appends every available one
    /// to `out`. Returns the number appended. The kernel wakes the reader
    /// only once a batch is waiting, so this also polls every `POLL`.
    pub async fn read(&mut self, out: &mut Vec<PacketRecord>) -> std::io::Result<usize> {
        loop {
            match tokio::time::timeout(POLL, self.inner.readable_mut()).await {
                Ok(guard) => {
                    let mut guard = guard?;
                    let n = guard.get_inner_mut().drain(out);
                    guard.clear_ready();
                    if n > 0 {
                        return Ok(n);
                    }
                }
                Err(_elapsed) => {
                    let n = self.inner.get_mut().drain(out);
                    if n > 0 {
                        return Ok(n);
                    }
                }
            }
        }
    }

    pub fn get_mut(&mut self) -> &mut RecordReader {
        self.inner.get_mut()
    }
}

/// A ring item as a record, if it has exactly a record's size.
pub fn decode(bytes: &[u8]) -> Option<PacketRecord> {
    if bytes.len() != size_of::<PacketRecord>() {
        return None;
    }
    // SAFETY: PacketRecord is repr(C) plain data valid for any bit pattern;
    // the length was checked and read_unaligned tolerates any alignment.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<PacketRecord>()) })
}
