//! The kernel pending table's sweep on a thread of its own: it walks the
//! table (batched), expires attempts past their handshake timeout (R5.1),
//! takes back stale hints and counts what the LRU forgot. A walk of a full
//! table under a flood takes long enough to matter, so it never runs on the
//! loop that feeds the engine, nor near the ring reader.
use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::Duration,
};

use anyhow::Context;
use tracing::{debug, info, warn};

use crate::kernel::{PendingStats, PendingSweeper};

pub struct Housekeeper {
    stats: Arc<Mutex<Option<PendingStats>>>,
    /// The handshake timeout (ns), changed by a reload.
    timeout_ns: Arc<AtomicU64>,
    /// Dropping it stops the thread.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Housekeeper {
    /// Sweeps every `every`, expiring entries older than `timeout_ns`.
    pub fn start(
        mut sweeper: PendingSweeper,
        every: Duration,
        timeout_ns: u64,
    ) -> anyhow::Result<Self> {
        let stats = Arc::new(Mutex::new(None));
        let (stop, stopped) = mpsc::channel::<()>();
        let shared = stats.clone();
        let timeout = Arc::new(AtomicU64::new(timeout_ns));
        let timeout_ns = timeout.clone();
        let thread = std::thread::Builder::new()
            .name("pending-sweep".into())
            .spawn(move || {
                let mut failing = false;
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    match sweeper.sweep(super::monotonic_ns(), timeout_ns.load(Ordering::Relaxed)) {
                        Ok(n) => {
                            if failing {
                                info!("sweeping the kernel pre-filter table works again");
                                failing = false;
                            }
                            if n > 0 {
                                debug!("swept {n} stale pre-filter entries");
                            }
                            *shared.lock().unwrap() = Some(sweeper.stats());
                        }
                        Err(e) if !failing => {
                            warn!("sweeping the kernel pre-filter table: {e:#}");
                            failing = true;
                        }
                        Err(_) => {}
                    }
                }
            })
            .context("starting the pending-table sweep thread")?;
        Ok(Self {
            stats,
            timeout_ns: timeout,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// From the next sweep on, entries older than `ns` expire.
    pub fn set_timeout(&self, ns: u64) {
        self.timeout_ns.store(ns, Ordering::Relaxed);
    }

    /// What the last sweep found (None before the first).
    pub fn stats(&self) -> Option<PendingStats> {
        *self.stats.lock().unwrap()
    }
}

impl Drop for Housekeeper {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
