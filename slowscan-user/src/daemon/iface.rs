//! Watching the interface: one that vanishes (deleted, or its driver gone)
//! takes the XDP program with it and leaves the sensor blind. That is logged
//! as an error (and `slowscan_interface_attached` drops to 0); the sensor
//! keeps its state and reattaches as soon as an interface of that name
//! exists again. Checked every [`CHECK_EVERY`] by interface index: a rename
//! keeps the program attached (the index stays), a deleted and re-created
//! interface gets a new index.
use std::{
    ffi::CString,
    time::{Duration, Instant},
};

use tracing::{error, info, warn};

use crate::kernel::{AttachMode, DataPlane};

pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The index of interface `name` in this network namespace (None if absent).
pub fn index_of(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: a NUL-terminated name.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

/// Whether an interface with this index exists.
fn index_exists(index: u32) -> bool {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: a buffer of IF_NAMESIZE bytes, as if_indextoname requires.
    !unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) }.is_null()
}

pub struct IfaceWatch {
    name: String,
    mode: AttachMode,
    /// The index attached to, None while the interface is gone.
    index: Option<u32>,
    lost_at: Option<Instant>,
    next_check: Instant,
    losses: u64,
    /// The last reattach error, logged once.
    attach_error: Option<String>,
}

impl IfaceWatch {
    pub fn new(name: &str, mode: AttachMode) -> Self {
        Self {
            name: name.to_string(),
            mode,
            index: index_of(name),
            lost_at: None,
            next_check: Instant::now() + CHECK_EVERY,
            losses: 0,
            attach_error: None,
        }
    }

    pub fn attached(&self) -> bool {
        self.index.is_some()
    }

    /// Times the interface vanished.
    pub fn losses(&self) -> u64 {
        self.losses
    }

    /// Tick: notices a vanished interface, reattaches to a returned one.
    pub fn check(&mut self, dp: &mut DataPlane) {
        if Instant::now() < self.next_check {
            return;
        }
        self.next_check = Instant::now() + CHECK_EVERY;
        match self.index {
            Some(i) if index_exists(i) => {}
            Some(i) => {
                dp.forget_link();
                self.index = None;
                self.lost_at = Some(Instant::now());
                self.losses += 1;
                error!(
                    "interface {} (index {i}) vanished: the sensor sees nothing until it returns, \
                     then reattaches (state and pending attempts are kept)",
                    self.name
                );
            }
            None => {
                let Some(new) = index_of(&self.name) else {
                    return;
                };
                match dp.attach(&self.name, self.mode) {
                    Ok(_) => {
                        self.index = Some(new);
                        self.attach_error = None;
                        info!(
                            "interface {} is back (index {new}): reattached after {:.1} s blind",
                            self.name,
                            self.lost_at.map_or(0.0, |t| t.elapsed().as_secs_f64())
                        );
                    }
                    Err(e) => {
                        let msg = format!("{e:#}");
                        if self.attach_error.as_deref() != Some(&msg) {
                            warn!(
                                "interface {} is back but attaching failed (retrying): {msg}",
                                self.name
                            );
                            self.attach_error = Some(msg);
                        }
                    }
                }
            }
        }
    }
}
