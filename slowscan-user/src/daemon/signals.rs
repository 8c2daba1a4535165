//! Signals, as a daemon takes them:
//! - SIGHUP: reload — reopen the alerts file (logrotate), reread the
//!   whitelist and ignore files;
//! - SIGUSR1: checkpoint now and log a summary;
//! - every other catchable signal whose default is to end the process
//!   (SIGINT, SIGTERM, SIGQUIT, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF,
//!   SIGXCPU, SIGPOLL, SIGPWR, SIGSTKFLT, the real-time signals): the clean
//!   shutdown (checkpoint, detach, pins and runtime file removed);
//! - SIGPIPE and SIGXFSZ stay ignored: they come from failing writes, which
//!   the alert path and the checkpointer handle as errors and retry.
use anyhow::Context;
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::mpsc,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sig {
    /// SIGHUP.
    Reload,
    /// SIGUSR1.
    Report,
    /// A terminating signal, by name.
    Stop(&'static str),
}

const STOP: &[(libc::c_int, &str)] = &[
    (libc::SIGINT, "SIGINT"),
    (libc::SIGTERM, "SIGTERM"),
    (libc::SIGQUIT, "SIGQUIT"),
    (libc::SIGUSR2, "SIGUSR2"),
    (libc::SIGALRM, "SIGALRM"),
    (libc::SIGVTALRM, "SIGVTALRM"),
    (libc::SIGPROF, "SIGPROF"),
    (libc::SIGXCPU, "SIGXCPU"),
    (libc::SIGPOLL, "SIGPOLL"),
    (libc::SIGPWR, "SIGPWR"),
    (libc::SIGSTKFLT, "SIGSTKFLT"),
];

/// Installs the handlers (on the current tokio runtime); signals arrive on
/// the returned channel in order.
pub fn listen() -> anyhow::Result<mpsc::UnboundedReceiver<Sig>> {
    // SAFETY: setting a signal's disposition to ignore.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let (tx, rx) = mpsc::unbounded_channel();
    let mut all: Vec<(libc::c_int, Sig)> =
        vec![(libc::SIGHUP, Sig::Reload), (libc::SIGUSR1, Sig::Report)];
    all.extend(STOP.iter().map(|&(n, name)| (n, Sig::Stop(name))));
    for (n, sig) in all {
        let mut s = signal(SignalKind::from_raw(n))
            .with_context(|| format!("installing the handler of signal {n}"))?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while s.recv().await.is_some() {
                if tx.send(sig).is_err() {
                    break;
                }
            }
        });
    }
    // Real-time signals end a process by default too. tokio takes them up to
    // SIGRTMAX − 1; the C library keeps the first few for itself.
    for n in libc::SIGRTMIN()..libc::SIGRTMAX() {
        let Ok(mut s) = signal(SignalKind::from_raw(n)) else {
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            while s.recv().await.is_some() {
                if tx.send(Sig::Stop("a real-time signal")).is_err() {
                    break;
                }
            }
        });
    }
    Ok(rx)
}
