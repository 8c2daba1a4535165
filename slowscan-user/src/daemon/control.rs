//! The sensor's control socket: `slowscan status` and `slowscan explain` ask
//! a running sensor what it holds. A Unix socket beside the runtime file,
//! `/run/slowscan/net<netns inode>/<iface>.sock`, mode 0600: root only, and
//! one per network namespace like the pins, so it is found from the
//! sensor's own mount namespace and from `ip netns exec` alike (both see the
//! same /run). One JSON request line, one JSON response line.

use std::{
    io::{BufRead, BufReader, Write},
    net::IpAddr,
    os::unix::{fs::PermissionsExt, net::UnixStream},
    path::PathBuf,
    time::Duration,
};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::engine::Identity;

use super::runtime;

/// How long either side waits for the other.
const TIMEOUT: Duration = Duration::from_secs(5);

/// What a client asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "lowercase")]
pub enum Request {
    /// The sensor's state and its `top` sources per detector.
    Status { top: usize },
    /// One source's counts and failed pairs: an address, a MAC or a prefix
    /// (R9).
    Explain { source: Identity },
}

/// The answer: one of these, or `{"error": "…"}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Response {
    Status(Box<StatusReport>),
    Explain(ExplainReport),
    Error(String),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StatusReport {
    pub iface: String,
    pub sensor_name: String,
    pub pid: u32,
    pub uptime_seconds: f64,
    /// `detecting` or `learning`.
    pub phase: String,
    pub detectors: Vec<DetectorStatus>,
    /// Attempts waiting for their handshake in the engine (R5).
    pub pending_attempts: u64,
    /// Entries of the kernel's pending table (pre-filter).
    pub kernel_pending_entries: Option<u64>,
    /// Its capacity (`--kernel-pending-max`); absent from older sensors.
    #[serde(default)]
    pub kernel_pending_max: Option<u64>,
    /// R9: home networks, outside prefix (absent from older sensors).
    #[serde(default)]
    pub identities: String,
    pub tracked_sources: u64,
    pub sketched_sources: u64,
    /// Live services (R4.5).
    pub live_services: u64,
    pub outage_failures: u64,
    pub records_lost: u64,
    pub alerts_written: u64,
    pub alerts_queued: u64,
    pub alerts_dropped: u64,
    pub alerts_suppressed: u64,
    /// Age of the last good checkpoint (with `--state`).
    pub checkpoint_age_seconds: Option<f64>,
    pub interface_attached: bool,
    /// Every kernel counter, by name.
    pub kernel: Vec<(String, u64)>,
    /// A flow collector's (`slowscan collect`) inputs; absent for a sensor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flows: Option<FlowStatus>,
    /// A Zeek conn.log follower's (`slowscan follow-zeek`) input; absent
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zeek: Option<ZeekStatus>,
}

/// What a conn.log follower has read.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ZeekStatus {
    /// The conn.log it follows.
    pub file: String,
    pub lines: u64,
    /// Lines more than `--max-lateness` behind the clock (counted at once).
    pub late: u64,
    /// Zeek's rotations followed (the file replaced by a new one).
    pub rotations: u64,
    /// Bytes read, over every file.
    pub bytes: u64,
}

/// What a flow collector received, in all and per exporter.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FlowStatus {
    /// The UDP address it listens on.
    pub listen: String,
    pub datagrams: u64,
    pub not_allowed: u64,
    pub malformed: u64,
    pub records: u64,
    pub attempts: u64,
    pub late: u64,
    /// Records waiting for their turn (`--max-lateness`).
    pub buffered: u64,
    /// Lost export datagrams seen by sequence numbers, and what they held.
    pub sequence_gaps: u64,
    pub sequence_lost: u64,
    pub sampled_exporters: u64,
    pub exporters: Vec<ExporterStatus>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExporterStatus {
    pub address: IpAddr,
    /// `IPFIX`, `NetFlow v9`, `NetFlow v5`.
    pub protocol: String,
    /// v9 source id, IPFIX observation domain, v5 engine type and id.
    pub domain: u32,
    pub datagrams: u64,
    pub records: u64,
    pub sequence_gaps: u64,
    pub sequence_lost: u64,
    /// The sampling interval it announced, when it did.
    pub sampling: Option<u64>,
    /// Sampling above 1 in 1: unusable for this method.
    pub sampled: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DetectorStatus {
    /// `1h:9`.
    pub name: String,
    pub mode: String,
    pub threshold: u32,
    /// The sources with the most failed pairs in its window, most first.
    pub top: Vec<TopSource>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TopSource {
    /// What the failures are counted under (R9); the address otherwise.
    #[serde(default)]
    pub identity: Option<Identity>,
    pub ip: IpAddr,
    pub failed_pairs: u32,
    pub estimated: bool,
    pub shape: String,
    /// SYN times, RFC 3339.
    pub first_failure: Option<String>,
    pub last_failure: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExplainReport {
    /// What was asked.
    pub source: Identity,
    /// What its failures are counted under (R9), when tracked.
    #[serde(default)]
    pub identity: Option<Identity>,
    /// The addresses that identity used, most recent first (bounded), and
    /// how many in all.
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
    #[serde(default)]
    pub addresses_total: u32,
    /// False: the sensor holds nothing about it (no counted failure in any
    /// window, or forgotten).
    pub tracked: bool,
    pub estimated: bool,
    /// (detector, failed pairs in its window, threshold).
    pub detectors: Vec<(String, u32, u32)>,
    /// Latest first: destination, port, latest failure (RFC 3339).
    pub failed_pairs: Vec<(IpAddr, u16, String)>,
}

/// Each detector and its `top` sources, for a status answer.
pub fn detector_statuses(engine: &crate::engine::Engine, top: usize) -> Vec<DetectorStatus> {
    let wall = |ns: Option<i64>| ns.map(crate::engine::rfc3339::format);
    engine
        .detectors()
        .iter()
        .enumerate()
        .map(|(k, d)| DetectorStatus {
            name: d.name(),
            mode: d.window.mode().into(),
            threshold: d.threshold,
            top: engine
                .top_sources_for(k, top)
                .into_iter()
                .map(|s| TopSource {
                    identity: Some(s.identity),
                    ip: s.ip,
                    failed_pairs: s.failed_pairs,
                    estimated: s.estimated,
                    shape: s.shape.name().into(),
                    first_failure: wall(s.first_failure_ns),
                    last_failure: wall(s.last_failure_ns),
                })
                .collect(),
        })
        .collect()
}

/// What the engine holds about `source`, for an explain answer.
pub fn explain_report(engine: &crate::engine::Engine, source: Identity) -> ExplainReport {
    let s = engine.source_status(source);
    ExplainReport {
        source,
        identity: s.as_ref().map(|s| s.identity),
        addresses: s.as_ref().map(|s| s.addresses.clone()).unwrap_or_default(),
        addresses_total: s.as_ref().map_or(0, |s| s.addresses_total),
        tracked: s.is_some(),
        estimated: s.as_ref().is_some_and(|s| s.estimated),
        detectors: s
            .as_ref()
            .map(|s| {
                s.detectors
                    .iter()
                    .map(|(d, n)| (d.name(), *n, d.threshold))
                    .collect()
            })
            .unwrap_or_default(),
        failed_pairs: s
            .map(|s| {
                s.failed_pairs
                    .iter()
                    .map(|&(ip, port, t)| (ip, port, crate::engine::rfc3339::format(t)))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// A control socket for a daemon without an async runtime (`slowscan
/// collect`, `slowscan follow-zeek`): polled from its loop, it answers whoever is waiting.
pub struct BlockingControl {
    listener: std::os::unix::net::UnixListener,
    path: PathBuf,
}

impl BlockingControl {
    pub fn bind(name: &str) -> anyhow::Result<Self> {
        let path = socket_path(name)?;
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path)
            .with_context(|| format!("binding the control socket {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {} to root", path.display()))?;
        listener.set_nonblocking(true)?;
        Ok(Self { listener, path })
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Answers every client waiting now (one request line each, read with
    /// a short timeout so a silent client cannot stall the daemon).
    pub fn poll(&self, mut answer: impl FnMut(&Request) -> Response) {
        while let Ok((stream, _)) = self.listener.accept() {
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let mut line = String::new();
            let mut r = BufReader::new(std::io::Read::take(&stream, 64 * 1024));
            let resp = match r.read_line(&mut line) {
                Ok(_) => match serde_json::from_str::<Request>(line.trim()) {
                    Ok(req) => answer(&req),
                    Err(e) => Response::Error(format!("not a control request: {e}")),
                },
                Err(e) => Response::Error(format!("the client sent nothing: {e}")),
            };
            let Ok(mut out) = serde_json::to_vec(&resp) else {
                continue;
            };
            out.push(b'\n');
            let _ = (&stream).write_all(&out);
        }
    }
}

impl Drop for BlockingControl {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The socket of the sensor on `iface` in this network namespace.
pub fn socket_path(iface: &str) -> anyhow::Result<PathBuf> {
    Ok(runtime::dir()?.join(format!("{iface}.sock")))
}

/// The listening socket, removed when the sensor stops.
pub struct ControlServer {
    listener: tokio::net::UnixListener,
    path: PathBuf,
}

impl ControlServer {
    pub fn bind(iface: &str) -> anyhow::Result<Self> {
        let path = socket_path(iface)?;
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        // A socket left by a sensor that was killed.
        let _ = std::fs::remove_file(&path);
        let listener = tokio::net::UnixListener::bind(&path)
            .with_context(|| format!("binding the control socket {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {} to root", path.display()))?;
        Ok(Self { listener, path })
    }

    pub async fn accept(&self) -> std::io::Result<tokio::net::UnixStream> {
        self.listener.accept().await.map(|(s, _)| s)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Reads one request line (bounded in size and time).
pub async fn read_request(stream: &mut tokio::net::UnixStream) -> anyhow::Result<Request> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    let mut line = String::new();
    // A request is a few dozen bytes.
    let mut r = tokio::io::BufReader::new(stream.take(64 * 1024));
    tokio::time::timeout(TIMEOUT, r.read_line(&mut line))
        .await
        .context("the client sent nothing")??;
    serde_json::from_str(line.trim()).context("not a control request")
}

/// Writes one response line.
pub async fn write_response(
    stream: &mut tokio::net::UnixStream,
    resp: &Response,
) -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut line = serde_json::to_vec(resp)?;
    line.push(b'\n');
    tokio::time::timeout(TIMEOUT, stream.write_all(&line))
        .await
        .context("the client does not read")??;
    Ok(())
}

/// Asks the sensor on `iface` (in this network namespace); a clear error
/// when there is none or the caller may not ask.
pub fn request(iface: &str, req: &Request) -> anyhow::Result<Response> {
    let path = socket_path(iface)?;
    let mut stream = match UnixStream::connect(&path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            bail!("{} is root's only: run as root (sudo)", path.display())
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            bail!(
                "no sensor is running on {iface} in this network namespace (no control socket at {}); \
                 start one with `slowscan run --iface {iface}`{}",
                path.display(),
                if iface.starts_with("collect-") {
                    " (a flow collector's name is collect-PORT or its --name)"
                } else if iface.starts_with("zeek-") {
                    " (a conn.log follower's name is zeek-STEM, STEM its file's name before \
                     the extension, or its --name)"
                } else {
                    ""
                }
            )
        }
        Err(e) => return Err(e).with_context(|| format!("connecting to {}", path.display())),
    };
    stream.set_read_timeout(Some(TIMEOUT * 2))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut line = serde_json::to_vec(req)?;
    line.push(b'\n');
    stream
        .write_all(&line)
        .with_context(|| format!("asking the sensor at {}", path.display()))?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .with_context(|| format!("reading the sensor's answer from {}", path.display()))?;
    if answer.is_empty() {
        bail!("the sensor on {iface} closed the connection without answering");
    }
    serde_json::from_str(answer.trim()).context("the sensor's answer is not a control response")
}
