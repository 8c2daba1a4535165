//! A stop asked for by a terminating signal, for loops that must end
//! cleanly rather than die: set from the signal handler
//! (`daemon::signals`), read by the capture reader between reads (so
//! `slowscan learn CAPTURES…` stops reading and writes what it learned).
//! Only `slowscan run` and `slowscan learn` install the handler; elsewhere
//! it is never set.
use std::sync::atomic::{AtomicI32, Ordering};

/// The first terminating signal received, 0 for none.
static FIRST: AtomicI32 = AtomicI32::new(0);

/// Records `sig` unless a stop was already asked for (async-signal-safe:
/// one atomic operation).
pub fn request(sig: libc::c_int) {
    let _ = FIRST.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
}

/// The signal that asked for a stop, if one did.
pub fn requested() -> Option<libc::c_int> {
    match FIRST.load(Ordering::SeqCst) {
        0 => None,
        n => Some(n),
    }
}
