//! The ring reader, on a thread of its own: it only drains the kernel's
//! record ring buffer into batches for the engine, so nothing the sensor
//! does elsewhere (map walks, checkpoints, alert writes, reloads) can keep
//! it from the ring. Its worst lag — how old a record is when its batch is
//! handed to the engine's queue, from the record's own kernel timestamp — is
//! measured for the metrics.
//!
//! The engine must not decide an attempt Failed while its follow-up still
//! waits unread, so time advances only to the reader's **watermark**: the
//! coarse monotonic time (the kernel stamps records with the same clock)
//! taken just before a drain that emptied the ring. Every record stamped
//! before it was read and queued before the watermark was published.
use std::{
    os::fd::AsRawFd,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use anyhow::Context;
use slowscan_common::PacketRecord;
use tokio::sync::mpsc;

use crate::kernel::RecordReader;

/// Records per batch handed to the engine.
pub const BATCH: usize = 8192;
/// Batches that may wait for the engine (≈ 29 MiB of records); beyond, the
/// reader waits and the ring absorbs the rest.
pub const QUEUE_BATCHES: usize = 64;
/// How long the reader waits for a wakeup: the kernel wakes it only once
/// 64 KiB wait, so on a quiet link records wait at most this long.
pub const POLL: Duration = Duration::from_millis(50);

/// What the reader thread shares with the loop.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    watermark_ns: AtomicU64,
    bad_items: AtomicU64,
    /// Worst lag since start, and since the loop last took it (ns).
    lag_max_ns: AtomicU64,
    lag_recent_ns: AtomicU64,
}

/// The loop's end of the reader.
pub struct RecordFeed {
    rx: mpsc::Receiver<Vec<PacketRecord>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// CLOCK_MONOTONIC_COARSE in ns: `bpf_ktime_get_coarse_ns`'s clock.
pub fn coarse_now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid clock id and out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl RecordFeed {
    /// Starts the reader thread on `reader`.
    pub fn start(reader: RecordReader) -> anyhow::Result<Self> {
        let (tx, rx) = mpsc::channel(QUEUE_BATCHES);
        let shared = Arc::new(Shared {
            watermark_ns: AtomicU64::new(coarse_now_ns()),
            ..Shared::default()
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("ring-reader".into())
            .spawn(move || read_loop(reader, &tx, &s))
            .context("starting the ring reader thread")?;
        Ok(Self {
            rx,
            shared,
            thread: Some(thread),
        })
    }

    /// The next batch; None once the reader has stopped and everything it
    /// read was taken.
    pub async fn next(&mut self) -> Option<Vec<PacketRecord>> {
        self.rx.recv().await
    }

    /// Batches waiting now, without waiting.
    pub fn try_next(&mut self) -> Option<Vec<PacketRecord>> {
        self.rx.try_recv().ok()
    }

    /// Kernel time up to which every record is read (coarse monotonic ns).
    /// Load it before taking the batches queued so far.
    pub fn watermark_ns(&self) -> u64 {
        self.shared.watermark_ns.load(Ordering::Acquire)
    }

    pub fn bad_items(&self) -> u64 {
        self.shared.bad_items.load(Ordering::Relaxed)
    }

    /// Worst reader lag since start.
    pub fn lag_max(&self) -> Duration {
        Duration::from_nanos(self.shared.lag_max_ns.load(Ordering::Relaxed))
    }

    /// Worst reader lag since the previous call.
    pub fn take_recent_lag(&self) -> Duration {
        Duration::from_nanos(self.shared.lag_recent_ns.swap(0, Ordering::Relaxed))
    }

    /// Asks the reader for a last drain and to stop; [`Self::next`] then
    /// yields what is left and None.
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
    }
}

impl Drop for RecordFeed {
    fn drop(&mut self) {
        self.stop();
        self.rx.close();
        // Unblocks a reader waiting on a full queue.
        while self.rx.try_recv().is_ok() {}
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_loop(mut reader: RecordReader, tx: &mpsc::Sender<Vec<PacketRecord>>, s: &Shared) {
    let fd = reader.as_raw_fd();
    loop {
        let last = s.stop.load(Ordering::Acquire);
        if !last {
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd; an error (EINTR) just means read now.
            unsafe { libc::poll(&mut pfd, 1, POLL.as_millis() as libc::c_int) };
        }
        let mark = coarse_now_ns();
        loop {
            let mut batch = Vec::with_capacity(BATCH);
            reader.drain_max(&mut batch, BATCH);
            let full = batch.len() == BATCH;
            // CPUs reserve ring space in any order: the oldest may not be first.
            let Some(oldest) = batch.iter().map(|r| r.ts_ns).min() else {
                break;
            };
            if tx.blocking_send(batch).is_err() {
                return;
            }
            // Measured when the engine's queue took the batch, not at `mark`:
            // records drained after a wait for a full queue sat in the ring
            // all that wait, which is what the ring must absorb.
            let lag = coarse_now_ns().saturating_sub(oldest);
            s.lag_max_ns.fetch_max(lag, Ordering::Relaxed);
            s.lag_recent_ns.fetch_max(lag, Ordering::Relaxed);
            if !full {
                break;
            }
        }
        s.bad_items.store(reader.bad_items, Ordering::Relaxed);
        s.watermark_ns.store(mark, Ordering::Release);
        if last {
            return;
        }
    }
}
