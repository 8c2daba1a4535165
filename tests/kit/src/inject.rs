//! Frames into a veth end through AF_PACKET (qdisc bypassed): one frame at
//! a time, a batch with `sendmmsg`, or a SYN flood. Flood frames are IPv6
//! SYNs from random sources in 2001:db8::/32 (random source port and
//! sequence number) to one destination: every one a new attempt that never
//! completes, like spoofed SYNs.

use std::{
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::{
    frames::{self, Tcp},
    netns::Netns,
};

/// An AF_PACKET socket bound to `ifname` in the calling thread's network
/// namespace, bypassing the qdisc layer.
pub fn raw_socket(ifname: &str) -> OwnedFd {
    // SAFETY: plain syscalls on values we own; results checked.
    unsafe {
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0);
        assert!(
            fd >= 0,
            "AF_PACKET socket: {}",
            std::io::Error::last_os_error()
        );
        let fd = OwnedFd::from_raw_fd(fd);
        let name = std::ffi::CString::new(ifname).unwrap();
        let index = libc::if_nametoindex(name.as_ptr());
        assert!(index > 0, "no interface {ifname}");
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = index as i32;
        let rc = libc::bind(
            fd.as_raw_fd(),
            (&raw const sll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        );
        assert_eq!(rc, 0, "bind AF_PACKET: {}", std::io::Error::last_os_error());
        let one: libc::c_int = 1;
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_QDISC_BYPASS,
            (&raw const one).cast(),
            4,
        );
        // Room for bursts at the sender's ceiling.
        let sndbuf: libc::c_int = 4 << 20;
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&raw const sndbuf).cast(),
            4,
        );
        fd
    }
}

/// Sends one frame, retrying while the device is busy.
pub fn send(fd: &OwnedFd, frame: &[u8]) {
    loop {
        // SAFETY: a valid buffer on a bound AF_PACKET socket.
        let r = unsafe { libc::send(fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if r == frame.len() as isize {
            return;
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENOBUFS | libc::EAGAIN | libc::EINTR) => std::thread::yield_now(),
            _ => panic!("send: {e}"),
        }
    }
}

/// Pins the calling thread to `cpu`.
pub fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t with one bit set, for the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Frames laid out in one buffer, sent together with `sendmmsg`; the caller
/// may rewrite them in place between sends.
pub struct SendBatch {
    buf: Vec<u8>,
    // Point into `buf` and `iov`: neither is resized after `new`.
    iov: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

// SAFETY: the raw pointers point into the batch's own heap buffers.
unsafe impl Send for SendBatch {}

impl SendBatch {
    /// The frames `buf[off..off + len]` for each `(off, len)` of `frames`.
    pub fn new(mut buf: Vec<u8>, frames: impl IntoIterator<Item = (usize, usize)>) -> Self {
        let base = buf.as_mut_ptr();
        let mut iov: Vec<libc::iovec> = frames
            .into_iter()
            .map(|(off, len)| {
                assert!(off + len <= buf.len(), "frame past the buffer");
                libc::iovec {
                    // SAFETY: off + len lie inside buf, which the batch keeps.
                    iov_base: unsafe { base.add(off) }.cast(),
                    iov_len: len,
                }
            })
            .collect();
        let hdrs = iov
            .iter_mut()
            .map(|v| {
                // SAFETY: all-zero is a valid msghdr.
                let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                h.msg_hdr.msg_iov = v;
                h.msg_hdr.msg_iovlen = 1;
                h
            })
            .collect();
        Self { buf, iov, hdrs }
    }

    /// The frames' bytes, to rewrite in place.
    pub fn buf_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    pub fn len(&self) -> usize {
        self.iov.len()
    }

    pub fn is_empty(&self) -> bool {
        self.iov.is_empty()
    }

    /// One `sendmmsg` of at most `max` frames from frame `first` on: how
    /// many went (0 while the device is busy).
    pub fn send_from(&mut self, fd: &OwnedFd, first: usize, max: usize) -> usize {
        let n = max.min(self.hdrs.len() - first);
        // SAFETY: hdrs[first..first + n] are valid mmsghdrs pointing into buf.
        let r = unsafe {
            libc::sendmmsg(
                fd.as_raw_fd(),
                self.hdrs.as_mut_ptr().add(first),
                n as u32,
                0,
            )
        };
        if r >= 0 {
            return r as usize;
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENOBUFS | libc::EAGAIN | libc::EINTR) => {
                std::thread::yield_now();
                0
            }
            _ => panic!("sendmmsg: {e}"),
        }
    }

    /// Sends every frame once unless `stop` is set first: how many went.
    pub fn send(&mut self, fd: &OwnedFd, stop: &AtomicBool) -> usize {
        let mut done = 0;
        while done < self.len() && !stop.load(Ordering::Relaxed) {
            done += self.send_from(fd, done, usize::MAX);
        }
        done
    }
}

/// Flood sender threads inside a namespace; stopped and joined on drop.
pub struct Flood {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
}

/// Offsets in a flood frame (Ethernet 14 + IPv6 40 + TCP 20).
const SRC_RANDOM: std::ops::Range<usize> = 26..38;
const SPORT: usize = 54;
const SEQ: usize = 58;
const BATCH: usize = 64;

fn flood_frame(dst: [u8; 16]) -> Vec<u8> {
    let t = Tcp {
        dst_port: 80,
        ..Tcp::syn(0)
    };
    let src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    frames::ethernet(
        &[],
        frames::ETH_IPV6,
        &frames::ipv6(src, dst, &[], 6, &t.bytes()),
    )
}

impl Flood {
    /// `threads` senders (each pinned to a core) in `ns` on `ifname`, each at
    /// most `rate` frames/s (None: as fast as it can).
    pub fn start(
        ns: &Netns,
        ifname: &str,
        dst: [u8; 16],
        threads: usize,
        rate: Option<u64>,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let threads = (0..threads)
            .map(|t| {
                let (stop, sent, ifname) = (stop.clone(), sent.clone(), ifname.to_string());
                ns.spawn(move || send_loop(&ifname, dst, t, rate, &stop, &sent))
            })
            .collect();
        Self {
            stop,
            sent,
            threads,
        }
    }

    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn send_loop(
    ifname: &str,
    dst: [u8; 16],
    thread: usize,
    rate: Option<u64>,
    stop: &AtomicBool,
    sent: &AtomicU64,
) {
    pin_to_cpu(thread);
    let fd = raw_socket(ifname);
    let proto = flood_frame(dst);
    let len = proto.len();
    let mut batch = SendBatch::new(proto.repeat(BATCH), (0..BATCH).map(|i| (i * len, len)));
    let mut rng: u64 =
        0x9e37_79b9_7f4a_7c15 ^ ((thread as u64 + 1) << 32) ^ u64::from(std::process::id());
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let start = Instant::now();
    let mut mine: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        for f in batch.buf_mut().chunks_exact_mut(len) {
            let (a, b) = (next(), next());
            f[SRC_RANDOM][..8].copy_from_slice(&a.to_ne_bytes());
            f[SRC_RANDOM][8..].copy_from_slice(&b.to_ne_bytes()[..4]);
            f[SPORT..SPORT + 2].copy_from_slice(&((b >> 32) as u16 | 1024).to_be_bytes());
            f[SEQ..SEQ + 4].copy_from_slice(&((b >> 40) as u32).to_be_bytes());
        }
        let done = batch.send(&fd, stop);
        mine += done as u64;
        sent.fetch_add(done as u64, Ordering::Relaxed);
        if let Some(rate) = rate {
            let due = Duration::from_secs_f64(mine as f64 / rate as f64);
            if let Some(ahead) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(ahead);
            }
        }
    }
}
