//! Signals, as a daemon takes them:
//! - SIGHUP: reload — reopen the alerts file (logrotate), reread the
//!   whitelist and ignore files;
//! - SIGUSR1: checkpoint now and log a summary;
//! - every other catchable signal whose default is to end the process
//!   (SIGINT, SIGTERM, SIGQUIT, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF,
//!   SIGXCPU, SIGPOLL, SIGPWR, SIGSTKFLT, SIGRTMIN to SIGRTMAX, and SIGABRT,
//!   SIGTRAP and SIGSYS when another process sends them): the clean shutdown
//!   (checkpoint, detach, pins and runtime file removed);
//! - SIGABRT, SIGTRAP and SIGSYS raised by this process or by the kernel (an
//!   `abort()`, a breakpoint, a seccomp trap) keep their default: the
//!   process ends as it would have, so a Rust abort still aborts;
//! - SIGPIPE and SIGXFSZ stay ignored: they come from failing writes, which
//!   the alert path and the checkpointer handle as errors and retry.
//!
//! The handlers are installed first thing ([`install`]), before anything is
//! loaded or attached. A signal only writes its number into a pipe (and,
//! if it asks for a stop, into [`crate::stop`]); the sensor's loop reads the
//! pipe once it runs ([`listen`]), so a stop that came while the program was
//! being loaded, attached or checkpointed is acted on then, by the clean
//! shutdown. Our own handler rather than tokio's: tokio refuses SIGRTMAX and
//! cannot tell who sent a SIGABRT.
use std::{
    os::fd::{FromRawFd, OwnedFd},
    sync::{
        OnceLock,
        atomic::{AtomicI32, Ordering},
    },
};

use anyhow::Context;
use libc::c_int;
use tokio::{io::AsyncReadExt, sync::mpsc};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sig {
    /// SIGHUP.
    Reload,
    /// SIGUSR1.
    Report,
    /// A terminating signal, by name.
    Stop(&'static str),
}

const NAMED: &[(c_int, &str)] = &[
    (libc::SIGHUP, "SIGHUP"),
    (libc::SIGUSR1, "SIGUSR1"),
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
    (libc::SIGABRT, "SIGABRT"),
    (libc::SIGTRAP, "SIGTRAP"),
    (libc::SIGSYS, "SIGSYS"),
];

/// Signals that also report this process's own abort or fault: taken only
/// when another process sends them.
fn is_fault(sig: c_int) -> bool {
    matches!(sig, libc::SIGABRT | libc::SIGTRAP | libc::SIGSYS)
}

/// Every signal this module takes: the named ones and the real-time range
/// (glibc's SIGRTMIN already skips the few the C library keeps for itself).
fn taken() -> impl Iterator<Item = c_int> {
    NAMED
        .iter()
        .map(|&(n, _)| n)
        .chain(libc::SIGRTMIN()..=libc::SIGRTMAX())
}

/// A signal's name, for logs and the summary.
pub fn name(sig: c_int) -> &'static str {
    match NAMED.iter().find(|&&(n, _)| n == sig) {
        Some(&(_, name)) => name,
        None if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&sig) => "a real-time signal",
        None => "a signal",
    }
}

/// What `sig` asks the sensor to do.
pub fn meaning(sig: c_int) -> Sig {
    match sig {
        libc::SIGHUP => Sig::Reload,
        libc::SIGUSR1 => Sig::Report,
        n => Sig::Stop(name(n)),
    }
}

/// The name of the terminating signal received so far, if any.
pub fn stop_received() -> Option<&'static str> {
    crate::stop::requested().map(name)
}

/// The pipe's write end, for the handler; -1 before [`install`].
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);
/// The pipe's read end until [`listen`] takes it.
static PIPE_READ: AtomicI32 = AtomicI32::new(-1);

/// How the process takes signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reads {
    /// The daemon: SIGHUP and SIGUSR1 reload and report; interrupted system
    /// calls are restarted (SA_RESTART): its threads block in no read that
    /// a signal must end.
    Restart,
    /// Offline `slowscan learn`: every taken signal is a stop (there is
    /// nothing to reload), and ends a blocked read with EINTR, so a learner
    /// waiting on a FIFO sees it.
    Interrupt,
}

/// [`Reads::Interrupt`] was installed.
static ALL_STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Installs the handlers (once per process; later calls do nothing).
pub fn install(reads: Reads) -> anyhow::Result<()> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| install_once(reads).map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn install_once(reads: Reads) -> anyhow::Result<()> {
    let mut fds = [0; 2];
    // SAFETY: a valid two-int out array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(std::io::Error::last_os_error()).context("creating the signal pipe");
    }
    ALL_STOP.store(reads == Reads::Interrupt, Ordering::SeqCst);
    PIPE_READ.store(fds[0], Ordering::SeqCst);
    PIPE_WRITE.store(fds[1], Ordering::SeqCst);
    // SAFETY: setting a signal's disposition to ignore.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    for sig in taken() {
        // SAFETY: a zeroed sigaction with a valid handler and empty mask.
        let r = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO
                | if reads == Reads::Restart {
                    libc::SA_RESTART
                } else {
                    0
                };
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("installing the handler of {} ({sig})", name(sig)));
        }
    }
    Ok(())
}

/// The handler: async-signal-safe calls only (getpid, signal, raise,
/// write, atomics).
extern "C" fn on_signal(sig: c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo with SA_SIGINFO; errno is
    // this thread's and is restored for the interrupted code.
    unsafe {
        let errno = *libc::__errno_location();
        let from_elsewhere = (*info).si_code <= 0 && (*info).si_pid() != libc::getpid();
        if is_fault(sig) && !from_elsewhere {
            // An abort() or a fault of this process: end as by default.
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        } else {
            if ALL_STOP.load(Ordering::Relaxed) || !matches!(sig, libc::SIGHUP | libc::SIGUSR1) {
                crate::stop::request(sig);
            }
            let fd = PIPE_WRITE.load(Ordering::Relaxed);
            if fd >= 0 {
                // Signals are numbered below 256; a full pipe drops the
                // byte, and a stop is still in `crate::stop`.
                let b = sig as u8;
                libc::write(fd, (&b as *const u8).cast(), 1);
            }
        }
        *libc::__errno_location() = errno;
    }
}

/// Runs `f` with the taken signals held back in this thread: the kernel
/// verifier gives up (EAGAIN) on a signal pending in the thread that loads
/// a program. A signal meanwhile is delivered when `f` returns.
pub fn held<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: sigset operations on local sets, then pthread_sigmask on this
    // thread only.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in taken() {
            libc::sigaddset(&mut set, sig);
        }
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        let r = f();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        r
    }
}

/// The signals received since [`install`] (also those that came before this
/// call), in order, on a channel; needs the tokio runtime. Can be called
/// once.
pub fn listen() -> anyhow::Result<mpsc::UnboundedReceiver<Sig>> {
    install(Reads::Restart)?;
    let fd = PIPE_READ.swap(-1, Ordering::SeqCst);
    anyhow::ensure!(fd >= 0, "the signal pipe is already being read");
    // SAFETY: the pipe's read end, owned by nobody else since the swap.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut rx =
        tokio::net::unix::pipe::Receiver::from_owned_fd(fd).context("reading the signal pipe")?;
    let (tx, out) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buf = [0u8; 64];
        while let Ok(n) = rx.read(&mut buf).await {
            if n == 0 {
                break;
            }
            for &b in &buf[..n] {
                if tx.send(meaning(c_int::from(b))).is_err() {
                    return;
                }
            }
        }
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    //! Each case runs in a child process (this test binary again, told by
    //! an environment variable which part to play): signals and aborts would
    //! end the test runner itself.
    use std::{
        io::{BufRead, BufReader},
        os::unix::process::ExitStatusExt,
        process::{Command, Stdio},
    };

    use super::*;

    const ROLE: &str = "SLOWSCAN_SIGNALS_CHILD";

    fn child(test: &str, role: &str) -> std::process::Child {
        Command::new(std::env::current_exe().unwrap())
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(ROLE, role)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// Plays `role` if this process is a child; true if it did.
    fn play() -> bool {
        let Ok(role) = std::env::var(ROLE) else {
            return false;
        };
        install(Reads::Restart).unwrap();
        match role.as_str() {
            "catch" => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let mut sigs = listen().unwrap();
                    println!("ready");
                    for _ in 0..5 {
                        println!("{:?}", sigs.recv().await.unwrap());
                    }
                });
                std::process::exit(0);
            }
            "abort" => std::process::abort(),
            "trap" => {
                // SAFETY: raising a signal at ourselves.
                unsafe { libc::raise(libc::SIGTRAP) };
                std::process::exit(0);
            }
            other => panic!("unknown role {other}"),
        }
    }

    #[test]
    fn signals_sent_by_another_process_stop_including_sigrtmax_and_sigabrt() {
        if play() {
            return;
        }
        let mut c = child(
            "daemon::signals::tests::signals_sent_by_another_process_stop_including_sigrtmax_and_sigabrt",
            "catch",
        );
        let mut out = BufReader::new(c.stdout.take().unwrap());
        let mut line = String::new();
        // libtest's `test … ... ` precedes the child's first line.
        while !line.trim_end().ends_with("ready") {
            line.clear();
            assert_ne!(out.read_line(&mut line).unwrap(), 0, "the child ended");
        }
        let sent = [
            libc::SIGABRT,
            libc::SIGTRAP,
            libc::SIGSYS,
            libc::SIGRTMAX(),
            libc::SIGHUP,
        ];
        let mut got = Vec::new();
        for sig in sent {
            // SAFETY: signalling the child we started and have not reaped.
            unsafe { libc::kill(c.id() as libc::pid_t, sig) };
            // One at a time: signals pending together may arrive out of order.
            line.clear();
            out.read_line(&mut line).unwrap();
            got.push(line.trim().to_string());
        }
        let status = c.wait().unwrap();
        assert_eq!(
            got,
            [
                "Stop(\"SIGABRT\")",
                "Stop(\"SIGTRAP\")",
                "Stop(\"SIGSYS\")",
                "Stop(\"a real-time signal\")",
                "Reload"
            ]
        );
        assert!(status.success(), "{status:?}");
    }

    #[test]
    fn an_abort_or_trap_of_the_process_itself_still_ends_it() {
        if play() {
            return;
        }
        let test = "daemon::signals::tests::an_abort_or_trap_of_the_process_itself_still_ends_it";
        for (role, sig) in [("abort", libc::SIGABRT), ("trap", libc::SIGTRAP)] {
            let status = child(test, role).wait().unwrap();
            assert_eq!(status.signal(), Some(sig), "{role}: {status:?}");
        }
    }

    #[test]
    fn every_taken_signal_has_a_meaning() {
        assert_eq!(meaning(libc::SIGHUP), Sig::Reload);
        assert_eq!(meaning(libc::SIGTERM), Sig::Stop("SIGTERM"));
        assert_eq!(meaning(libc::SIGRTMAX()), Sig::Stop("a real-time signal"));
        assert!(taken().any(|s| s == libc::SIGRTMAX()));
        assert!(!taken().any(|s| matches!(s, libc::SIGPIPE | libc::SIGSEGV)));
    }
}
