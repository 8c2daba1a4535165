//! The engine state on disk (`slowscan run --state PATH`): read at start,
//! written atomically every `--checkpoint-every` and at SIGTERM/SIGINT.
//!
//! A write goes to `PATH.tmp`, is fsynced, renamed over `PATH`, and the
//! directory is fsynced: after a crash (even SIGKILL or power loss mid-write)
//! `PATH` holds either the previous checkpoint or the new one, never a torn
//! file. A `PATH.tmp` left by a crash is simply overwritten; one left by a
//! failed write (a full disk) is removed, to give the space back.
//!
//! [`Checkpointer`]: periodic checkpoints written off the loop's thread; a
//! failure is logged once, retried every [`RETRY_EVERY`] (or sooner if
//! checkpoints are more frequent) and exposed as the age of the last good
//! checkpoint.

use std::{
    fs::{self},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::atomic::{self, Durability};
use anyhow::{Context, bail};
use tracing::{error, info};

use crate::engine::EngineState;

/// How soon a failed checkpoint is tried again (at most).
pub const RETRY_EVERY: Duration = Duration::from_secs(5);

pub use crate::atomic::tmp_path;

/// Reads the state at `path`: None when there is none yet, or when `reset`
/// (start afresh, whatever the file holds). A file that cannot be read or is
/// not a state of this format is an error naming the file.
pub fn load(path: &Path, reset: bool) -> anyhow::Result<Option<EngineState>> {
    if reset {
        return Ok(None);
    }
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(e).with_context(|| format!("reading the engine state {}", path.display()));
        }
    };
    match EngineState::from_bytes(&bytes) {
        Ok(s) => Ok(Some(s)),
        Err(e) => bail!(
            "engine state {}: {e}; move the file away, or start afresh with --state-reset",
            path.display()
        ),
    }
}

/// Writes `state` to `path` atomically (see the module documentation);
/// returns its size in bytes.
pub fn save(path: &Path, state: &EngineState) -> anyhow::Result<usize> {
    save_bytes(path, &state.to_bytes())
}

/// [`save`] of already serialised bytes.
pub fn save_bytes(path: &Path, bytes: &[u8]) -> anyhow::Result<usize> {
    atomic::write(path, bytes, Durability::Power)
        .with_context(|| format!("writing the engine state to {}", path.display()))?;
    Ok(bytes.len())
}

/// Checkpoints written off the loop's thread, one at a time, retried on
/// failure.
pub struct Checkpointer {
    pub path: PathBuf,
    pub every: Duration,
    next: Instant,
    writing: Option<tokio::task::JoinHandle<anyhow::Result<usize>>>,
    /// When the last checkpoint that reached the disk was taken.
    last_good: Option<Instant>,
    /// The sensor's start: the state at risk dates from it until a first
    /// checkpoint succeeds.
    since: Instant,
    /// Since when checkpoints fail.
    failing_since: Option<Instant>,
    failures: u64,
}

impl Checkpointer {
    /// `since`: the sensor's start (see [`Self::age`]).
    pub fn new(path: PathBuf, every: Duration, since: Instant) -> Self {
        Self {
            path,
            every,
            next: Instant::now() + every,
            writing: None,
            last_good: None,
            since,
            failing_since: None,
            failures: 0,
        }
    }

    /// Due, and the previous write has finished.
    pub fn due(&self) -> bool {
        self.writing.is_none() && Instant::now() >= self.next
    }

    /// Age of the last good checkpoint. When none has succeeded yet but one
    /// failed (a disk full from start-up), the time since the sensor's start,
    /// so the metric grows instead of being absent; None before any attempt
    /// (while learning).
    pub fn age(&self) -> Option<Duration> {
        match self.last_good {
            Some(t) => Some(t.elapsed()),
            None if self.failures > 0 => Some(self.since.elapsed()),
            None => None,
        }
    }

    /// Failed checkpoints so far.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// Collects a finished background write, if any (never waits).
    pub async fn poll(&mut self) {
        if self.writing.as_ref().is_some_and(|h| h.is_finished()) {
            self.collect().await;
        }
    }

    async fn collect(&mut self) {
        if let Some(h) = self.writing.take() {
            let r = h.await.unwrap_or_else(|e| Err(anyhow::anyhow!("{e}")));
            // The state was taken when the write started.
            let taken = self.next - self.every;
            self.record(r.map(|_| ()), taken);
        }
    }

    fn record(&mut self, r: anyhow::Result<()>, taken: Instant) {
        match r {
            Ok(()) => {
                self.last_good = Some(taken);
                if let Some(since) = self.failing_since.take() {
                    info!(
                        "engine state checkpointed to {} again after {:.0} s of failures",
                        self.path.display(),
                        since.elapsed().as_secs_f64()
                    );
                }
            }
            Err(e) => {
                self.failures += 1;
                let retry = self.every.min(RETRY_EVERY);
                self.next = Instant::now() + retry;
                if self.failing_since.is_none() {
                    self.failing_since = Some(Instant::now());
                    error!(
                        "checkpointing the engine state fails: {e:#}; detection goes on, retried every {} s \
                         (metric slowscan_checkpoint_age_seconds)",
                        retry.as_secs_f64()
                    );
                }
            }
        }
    }

    /// Starts writing `state` in the background.
    pub fn start(&mut self, state: EngineState) {
        debug_assert!(self.writing.is_none());
        let now = Instant::now();
        self.next = now + self.every;
        let path = self.path.clone();
        self.writing = Some(tokio::task::spawn_blocking(move || save(&path, &state)));
    }

    /// A checkpoint written now (after any background write); the result
    /// also counts toward the age and failures.
    pub async fn write_now(&mut self, state: &EngineState) -> anyhow::Result<usize> {
        self.collect().await;
        let taken = Instant::now();
        let r = save(&self.path, state);
        self.next = Instant::now() + self.every;
        match &r {
            Ok(_) => self.record(Ok(()), taken),
            Err(e) => self.record(Err(anyhow::anyhow!("{e:#}")), taken),
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Engine, EngineConfig};

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("slowscan-ckpt-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn saves_atomically_and_loads_back() {
        let d = scratch("roundtrip");
        let p = d.join("state.json");
        assert!(load(&p, false).unwrap().is_none(), "no file: no state");
        // A torn temporary file from a crash is overwritten.
        fs::write(tmp_path(&p), b"{\"kind\":").unwrap();
        let st = Engine::new(EngineConfig::default()).checkpoint();
        save(&p, &st).unwrap();
        assert!(!tmp_path(&p).exists());
        assert_eq!(load(&p, false).unwrap(), Some(st));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_bad_file_is_an_error_naming_it_unless_reset() {
        let d = scratch("bad");
        let p = d.join("state.json");
        fs::write(&p, b"garbage").unwrap();
        let e = format!("{:#}", load(&p, false).unwrap_err());
        assert!(e.contains(&p.display().to_string()), "{e}");
        assert!(e.contains("not a slowscan engine state"), "{e}");
        assert!(e.contains("--state-reset"), "{e}");
        assert!(load(&p, true).unwrap().is_none());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_age_counts_from_the_start_until_a_first_checkpoint_succeeds() {
        let d = scratch("age");
        let p = d.join("missing-dir").join("state");
        // A sensor started a minute ago.
        let minute = Duration::from_secs(60);
        let start = Instant::now()
            .checked_sub(minute)
            .expect("booted a minute ago");
        let mut c = Checkpointer::new(p.clone(), Duration::from_secs(1), start);
        assert_eq!(c.age(), None, "no attempt yet");
        let st = Engine::new(EngineConfig::default()).checkpoint();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        // The first checkpoint fails: the age is the sensor's, not absent.
        assert!(rt.block_on(c.write_now(&st)).is_err());
        assert_eq!(c.failures(), 1);
        let failing = c.age().expect("an age while failing from the start");
        assert!(failing >= minute, "{failing:?}");
        // A checkpoint succeeds: the age falls back to the new one's.
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        rt.block_on(c.write_now(&st)).unwrap();
        assert!(c.age().unwrap() < failing, "{:?} {failing:?}", c.age());
        assert_eq!(load(&p, false).unwrap(), Some(st));
        fs::remove_dir_all(&d).unwrap();
    }
}
