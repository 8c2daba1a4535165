//! The store: a Redis Cluster (its masters and the slots each serves) or a
//! single Redis server, one multiplexed connection per master. Commands of
//! one master go out as one pipeline; a master that fails does not hold up
//! the others.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, IntoConnectionInfo, Value};

use super::url::FleetUrl;

/// The function library (loaded with FUNCTION LOAD REPLACE on every master).
pub const LIBRARY: &str = include_str!("slowscan.lua");
pub const FUNCTION: &str = "slowscan_push_v3";
pub const SLOTS: usize = 16384;

/// What the `--fleet` URL leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreMode {
    Cluster,
    Single,
}

/// (slot ranges, address, replicas) of one master.
type Master = (Vec<(u16, u16)>, String, usize);

struct Node {
    addr: String,
    conn: Option<MultiplexedConnection>,
    replicas: usize,
}

/// A failure of the store that the caller can only report: the URL's
/// credentials or TLS settings are wrong, or the server refuses the library.
#[derive(Debug, Clone)]
pub struct Fatal(pub String);

pub struct Store {
    url: FleetUrl,
    pub mode: Option<StoreMode>,
    nodes: Vec<Node>,
    /// Slot → index in `nodes` (`u16::MAX`: no master serves it).
    slots: Vec<u16>,
    pub stale: bool,
    connect_timeout: Duration,
    response_timeout: Duration,
}

/// The result of one command sent to a master.
pub enum Reply {
    Ok(Value),
    /// The node answered with an error (MOVED, CLUSTERDOWN, …).
    Server(String),
    /// The node could not be reached, or its connection broke.
    Down(String),
}

impl Store {
    pub fn new(url: FleetUrl, connect_timeout: Duration, response_timeout: Duration) -> Store {
        Store {
            url,
            mode: None,
            nodes: Vec::new(),
            slots: vec![u16::MAX; SLOTS],
            stale: true,
            connect_timeout,
            response_timeout,
        }
    }

    pub fn masters(&self) -> usize {
        self.nodes.len()
    }

    /// Masters now connected.
    pub fn connected(&self) -> usize {
        self.nodes.iter().filter(|n| n.conn.is_some()).count()
    }

    async fn connect(&self, addr: &str) -> Result<MultiplexedConnection, redis::RedisError> {
        let info = self.url.node_url(addr).into_connection_info()?;
        let client = Client::open(info)?;
        let cfg = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.response_timeout));
        client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await
    }

    /// Learns the topology from the first node that answers (the known
    /// masters, then the seeds), connects to every master and loads the
    /// library there. `Err(Fatal)` for what retrying cannot fix; `Ok(false)`
    /// when no node answered (try again later).
    pub async fn refresh(&mut self) -> Result<bool, Fatal> {
        let mut candidates: Vec<String> = self.nodes.iter().map(|n| n.addr.clone()).collect();
        for s in &self.url.seeds {
            if !candidates.contains(s) {
                candidates.push(s.clone());
            }
        }
        let mut last_err = None;
        for addr in candidates {
            let mut conn = match self.existing(&addr) {
                Some(c) => c,
                None => match self.connect(&addr).await {
                    Ok(c) => c,
                    Err(e) => {
                        fatal_if_auth(&self.url, &e)?;
                        last_err = Some(e);
                        continue;
                    }
                },
            };
            match self.topology(&mut conn, &addr).await {
                Ok(masters) => {
                    self.install(masters, &addr, conn).await?;
                    self.stale = self.nodes.iter().any(|n| n.conn.is_none())
                        || self.slots.contains(&u16::MAX);
                    return Ok(true);
                }
                Err(e) => {
                    fatal_if_auth(&self.url, &e)?;
                    last_err = Some(e);
                }
            }
        }
        if let Some(e) = last_err {
            tracing::debug!("fleet store {}: {e}", self.url);
        }
        for n in &mut self.nodes {
            n.conn = None;
        }
        Ok(false)
    }

    fn existing(&self, addr: &str) -> Option<MultiplexedConnection> {
        self.nodes
            .iter()
            .find(|n| n.addr == addr)
            .and_then(|n| n.conn.clone())
    }

    /// (slot ranges, master address, replicas) from CLUSTER SLOTS, or the one
    /// server for a store without cluster support.
    async fn topology(
        &mut self,
        conn: &mut MultiplexedConnection,
        addr: &str,
    ) -> Result<Vec<Master>, redis::RedisError> {
        let v: Value = match redis::cmd("CLUSTER").arg("SLOTS").query_async(conn).await {
            Ok(v) => v,
            Err(e) if e.to_string().contains("cluster support disabled") => {
                self.mode = Some(StoreMode::Single);
                let info: String = redis::cmd("INFO")
                    .arg("replication")
                    .query_async(conn)
                    .await?;
                let replicas = info_field(&info, "connected_slaves").unwrap_or(0);
                return Ok(vec![(
                    vec![(0, (SLOTS - 1) as u16)],
                    addr.to_string(),
                    replicas,
                )]);
            }
            Err(e) => return Err(e),
        };
        self.mode = Some(StoreMode::Cluster);
        let host_of = |a: &str| a.rsplit_once(':').map(|(h, _)| h.to_string());
        let mut masters: Vec<Master> = Vec::new();
        let Value::Array(ranges) = v else {
            return Ok(masters);
        };
        for r in ranges {
            let Value::Array(r) = r else { continue };
            if r.len() < 3 {
                continue;
            }
            let (Some(start), Some(end)) = (int(&r[0]), int(&r[1])) else {
                continue;
            };
            let Value::Array(m) = &r[2] else { continue };
            let ip = m.first().and_then(text).unwrap_or_default();
            let Some(port) = m.get(1).and_then(int) else {
                continue;
            };
            // An empty or unknown address: the node we asked.
            let host = if ip.is_empty() || ip == "?" {
                host_of(addr).unwrap_or_default()
            } else if ip.contains(':') {
                format!("[{ip}]")
            } else {
                ip
            };
            let a = format!("{host}:{port}");
            let replicas = r.len() - 3;
            match masters.iter_mut().find(|x| x.1 == a) {
                Some(x) => x.0.push((start as u16, end as u16)),
                None => masters.push((vec![(start as u16, end as u16)], a, replicas)),
            }
        }
        Ok(masters)
    }

    async fn install(
        &mut self,
        masters: Vec<Master>,
        asked: &str,
        asked_conn: MultiplexedConnection,
    ) -> Result<(), Fatal> {
        let mut nodes = Vec::with_capacity(masters.len());
        self.slots.fill(u16::MAX);
        for (i, (ranges, addr, replicas)) in masters.into_iter().enumerate() {
            for (s, e) in ranges {
                for slot in s..=e.min((SLOTS - 1) as u16) {
                    self.slots[slot as usize] = i as u16;
                }
            }
            let known = self.existing(&addr);
            let conn = if addr == asked {
                Some(asked_conn.clone())
            } else {
                known
            };
            nodes.push(Node {
                addr,
                conn,
                replicas,
            });
        }
        self.nodes = nodes;
        for i in 0..self.nodes.len() {
            if self.nodes[i].conn.is_none() {
                match self.connect(&self.nodes[i].addr.clone()).await {
                    Ok(c) => self.nodes[i].conn = Some(c),
                    Err(e) => {
                        fatal_if_auth(&self.url, &e)?;
                        tracing::debug!("fleet store node {}: {e}", self.nodes[i].addr);
                        continue;
                    }
                }
            }
            // A master knows its replicas at once; the node that answered
            // CLUSTER SLOTS may not have heard of them yet (gossip), and a
            // master believed to have none is never waited for (WAIT).
            if let Some(n) = self.connected_replicas(i).await {
                self.nodes[i].replicas = self.nodes[i].replicas.max(n);
            }
            if let Err(e) = self.load_library(i).await {
                let msg = e.to_string();
                if msg.contains("NOPERM") || msg.contains("unknown command") {
                    return Err(Fatal(format!(
                        "fleet store {}: loading the slowscan function library on {} failed ({}); the user needs FUNCTION and FCALL (Redis 7 or later)",
                        self.url,
                        self.nodes[i].addr,
                        one_line(&msg)
                    )));
                }
                tracing::debug!("fleet store node {}: {msg}", self.nodes[i].addr);
                self.nodes[i].conn = None;
            }
        }
        Ok(())
    }

    /// `connected_slaves` of master `i` (INFO replication).
    async fn connected_replicas(&mut self, i: usize) -> Option<usize> {
        let conn = self.nodes[i].conn.as_mut()?;
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query_async(conn)
            .await
            .ok()?;
        info_field(&info, "connected_slaves")
    }

    async fn load_library(&mut self, i: usize) -> Result<(), redis::RedisError> {
        let conn = self.nodes[i].conn.as_mut().expect("connected");
        let _: String = redis::cmd("FUNCTION")
            .arg("LOAD")
            .arg("REPLACE")
            .arg(LIBRARY)
            .query_async(conn)
            .await?;
        Ok(())
    }

    /// The master serving `slot`, if connected.
    pub fn node_of(&self, slot: u16) -> Option<usize> {
        let i = self.slots[slot as usize];
        (i != u16::MAX && self.nodes[i as usize].conn.is_some()).then_some(i as usize)
    }

    pub fn replicas(&self, node: usize) -> usize {
        self.nodes[node].replicas
    }

    pub fn addr(&self, node: usize) -> &str {
        &self.nodes[node].addr
    }

    /// A handle on `node`'s connection (pipelines to several masters go out
    /// at once).
    pub fn conn(&self, node: usize) -> Option<MultiplexedConnection> {
        self.nodes[node].conn.clone()
    }

    /// Each command's reply from `node`'s pipeline result; a broken
    /// connection marks the node down.
    pub fn replies(
        &mut self,
        node: usize,
        r: Result<Vec<Value>, redis::RedisError>,
        n: usize,
    ) -> Vec<Reply> {
        match r {
            Ok(values) => {
                let mut out: Vec<Reply> = values
                    .into_iter()
                    .map(|v| match v {
                        Value::ServerError(e) => Reply::Server(e.to_string()),
                        v => Reply::Ok(v),
                    })
                    .collect();
                while out.len() < n {
                    out.push(Reply::Down("short reply".into()));
                }
                out
            }
            Err(e) => {
                let msg = one_line(&e.to_string());
                if let Some(c) = e.code() {
                    // A whole-pipeline server error (CLUSTERDOWN…).
                    self.stale = true;
                    return (0..n)
                        .map(|_| Reply::Server(format!("{c}: {msg}")))
                        .collect();
                }
                self.nodes[node].conn = None;
                self.stale = true;
                (0..n).map(|_| Reply::Down(msg.clone())).collect()
            }
        }
    }

    /// Forgets `node`'s connection (it broke); the topology is asked again.
    pub fn mark_down(&mut self, node: usize) {
        self.nodes[node].conn = None;
        self.stale = true;
    }

    /// Reloads the library on `node` (after a "function not found").
    pub async fn reload(&mut self, node: usize) {
        if self.nodes[node].conn.is_some() && self.load_library(node).await.is_err() {
            self.nodes[node].conn = None;
            self.stale = true;
        }
    }
}

fn fatal_if_auth(url: &FleetUrl, e: &redis::RedisError) -> Result<(), Fatal> {
    let msg = e.to_string();
    let auth = e.kind() == redis::ErrorKind::AuthenticationFailed
        || [
            "WRONGPASS",
            "NOAUTH",
            "invalid password",
            "invalid username-password",
        ]
        .iter()
        .any(|w| msg.contains(w));
    if auth {
        return Err(Fatal(format!(
            "fleet store {url} refused the credentials ({}): give the ACL user and password in the URL, redis://USER:PASSWORD@HOST:PORT",
            one_line(&msg)
        )));
    }
    if msg.contains("NOPERM") {
        return Err(Fatal(format!(
            "fleet store {url}: the user lacks a permission ({}): it needs CLUSTER, INFO, FUNCTION, FCALL and WAIT",
            one_line(&msg)
        )));
    }
    Ok(())
}

pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

fn info_field(info: &str, key: &str) -> Option<usize> {
    info.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':')?.trim().parse().ok())
}

/// The cluster slot of a key: CRC16 (XMODEM) of its hash tag, mod 16384.
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|s| {
            let rest = &key[s + 1..];
            rest.iter()
                .position(|&b| b == b'}')
                .filter(|&e| e > 0)
                .map(|e| &rest[..e])
        })
        .unwrap_or(key);
    crc16(tagged) % SLOTS as u16
}

fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

pub(super) fn as_int(v: &Value) -> Option<i64> {
    int(v)
}

pub(super) fn as_bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

pub(super) fn as_text(v: &Value) -> Option<String> {
    text(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_slots_match_redis() {
        // Values from the Redis Cluster specification and CLUSTER KEYSLOT.
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
    }
}
