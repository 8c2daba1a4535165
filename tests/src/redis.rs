//! Real Redis servers for the fleet's tests and benchmarks: `redis-server`
//! processes on loopback ports of their own, in a temporary directory, made
//! into a cluster by `redis-cli --cluster create`. Every process is stopped
//! by its PID when the value is dropped (also when the test panics).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One redis-server process.
pub struct RedisNode {
    pub port: u16,
    child: Option<Child>,
    args: Vec<String>,
}

impl RedisNode {
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }
}

/// A Redis Cluster (or one plain server) on 127.0.0.1.
pub struct RedisCluster {
    pub nodes: Vec<RedisNode>,
    pub dir: PathBuf,
    pub cluster: bool,
}

/// Ports handed out by this process (so that its tests never pick one
/// twice, even before a server binds it).
static TAKEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());

/// A free loopback port whose cluster-bus port (+10000) is free too.
fn free_port() -> u16 {
    for _ in 0..1000 {
        let l = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
        let p = l.local_addr().unwrap().port();
        if !(10000..55000).contains(&p) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", p + 10000)).is_err() {
            continue;
        }
        let mut taken = TAKEN.lock().unwrap();
        if taken.contains(&p) || taken.contains(&(p + 10000)) {
            continue;
        }
        taken.push(p);
        return p;
    }
    panic!("no free loopback port pair found");
}

pub fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("running redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

impl RedisCluster {
    /// `masters` masters with `replicas` replicas each, cluster state ok and
    /// every replica in sync.
    pub fn start(masters: usize, replicas: usize) -> RedisCluster {
        Self::start_with(masters, replicas, &[])
    }

    /// [`RedisCluster::start`] with more redis-server options.
    pub fn start_with(masters: usize, replicas: usize, extra: &[&str]) -> RedisCluster {
        let c = Self::spawn(masters * (1 + replicas), true, extra);
        let addrs: Vec<String> = c
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut cmd = Command::new("redis-cli");
        cmd.args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdin(Stdio::null());
        let out = cmd.output().expect("running redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        c.wait_ok(Duration::from_secs(30));
        c
    }

    /// One server without cluster support that speaks TLS only, with a
    /// self-signed certificate for 127.0.0.1 made by `openssl` in its
    /// directory (clients: `rediss://127.0.0.1:PORT#insecure`).
    pub fn single_tls() -> RedisCluster {
        let dir = std::env::temp_dir().join(format!(
            "slowscan-redis-tls-{}-{}",
            std::process::id(),
            crate::unique("t")
        ));
        std::fs::create_dir_all(&dir).expect("creating the servers' directory");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        crate::sh(&[
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            &key.display().to_string(),
            "-out",
            &cert.display().to_string(),
        ]);
        let port = free_port();
        let args: Vec<String> = [
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            &cert.display().to_string(),
            "--tls-key-file",
            &key.display().to_string(),
            "--tls-ca-cert-file",
            &cert.display().to_string(),
            "--tls-auth-clients",
            "no",
            "--bind",
            "127.0.0.1",
            "--dir",
            &dir.display().to_string(),
            "--save",
            "",
            "--logfile",
            &dir.join(format!("{port}.log")).display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let node = RedisNode {
            port,
            child: Some(launch(&args)),
            args,
        };
        let end = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < end,
                "redis-server (TLS) on port {port} does not listen (log in {})",
                dir.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        RedisCluster {
            nodes: vec![node],
            dir,
            cluster: false,
        }
    }

    /// One server without cluster support; `extra` are redis-server options.
    pub fn single(extra: &[&str]) -> RedisCluster {
        let c = Self::spawn(1, false, extra);
        c.wait_ok(Duration::from_secs(10));
        c
    }

    fn spawn(n: usize, cluster: bool, extra: &[&str]) -> RedisCluster {
        let dir = std::env::temp_dir().join(format!(
            "slowscan-redis-{}-{}",
            std::process::id(),
            crate::unique("r")
        ));
        std::fs::create_dir_all(&dir).expect("creating the servers' directory");
        let mut nodes = Vec::new();
        for _ in 0..n {
            let port = free_port();
            let mut args: Vec<String> = [
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--dir",
                &dir.display().to_string(),
                "--dbfilename",
                &format!("dump-{port}.rdb"),
                "--appendonly",
                "yes",
                "--appendfilename",
                &format!("aof-{port}"),
                "--appenddirname",
                &format!("aof-{port}"),
                "--save",
                "",
                "--logfile",
                &dir.join(format!("{port}.log")).display().to_string(),
                "--protected-mode",
                "no",
                "--repl-diskless-sync",
                "yes",
                "--repl-diskless-sync-delay",
                "0",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            if cluster {
                for a in [
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    &dir.join(format!("nodes-{port}.conf")).display().to_string(),
                    "--cluster-node-timeout",
                    "1000",
                    "--cluster-replica-validity-factor",
                    "0",
                ] {
                    args.push(a.to_string());
                }
            }
            args.extend(extra.iter().map(|s| s.to_string()));
            let mut node = RedisNode {
                port,
                child: None,
                args,
            };
            node.child = Some(launch(&node.args));
            nodes.push(node);
        }
        let c = RedisCluster {
            nodes,
            dir,
            cluster,
        };
        for n in &c.nodes {
            wait_ping(n.port, Duration::from_secs(10), &c.dir);
        }
        c
    }

    /// `redis://127.0.0.1:P1,127.0.0.1:P2,…` (every node as a seed).
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis://{}", seeds.join(","))
    }

    /// Waits until every running node says cluster_state:ok (and every
    /// replica's link to its master is up).
    pub fn wait_ok(&self, timeout: Duration) {
        let end = Instant::now() + timeout;
        loop {
            let ok = self.nodes.iter().filter(|n| n.running()).all(|n| {
                let cluster_ok =
                    !self.cluster || cli(n.port, &["cluster", "info"]).contains("cluster_state:ok");
                let repl = cli(n.port, &["info", "replication"]);
                let link_ok =
                    !repl.contains("role:slave") || repl.contains("master_link_status:up");
                cluster_ok && link_ok
            });
            if ok {
                return;
            }
            assert!(
                Instant::now() < end,
                "the Redis cluster in {} is not ok after {timeout:?} (see its logs)",
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Ports of the nodes that are masters now (CLUSTER NODES of a running
    /// node; a master just killed is listed until the others flag it failed).
    pub fn master_ports(&self) -> Vec<u16> {
        if !self.cluster {
            return vec![self.nodes[0].port];
        }
        let n = self
            .nodes
            .iter()
            .find(|n| n.running())
            .expect("a running node");
        let mut v: Vec<u16> = cli(n.port, &["cluster", "nodes"])
            .lines()
            .filter(|l| l.contains("master") && !l.contains("fail"))
            .filter_map(|l| {
                let addr = l.split_whitespace().nth(1)?;
                addr.split(['@', ','])
                    .next()?
                    .rsplit_once(':')?
                    .1
                    .parse()
                    .ok()
            })
            .collect();
        v.sort();
        v
    }

    /// The port of the master serving `key`.
    pub fn master_of(&self, key: &str) -> u16 {
        let slot: u16 = {
            let n = self
                .nodes
                .iter()
                .find(|n| n.running())
                .expect("a running node");
            cli(n.port, &["cluster", "keyslot", key])
                .trim()
                .parse()
                .expect("a slot")
        };
        let n = self.nodes.iter().find(|n| n.running()).unwrap();
        for l in cli(n.port, &["cluster", "nodes"]).lines() {
            if !l.contains("master") || l.contains("fail") {
                continue;
            }
            let f: Vec<&str> = l.split_whitespace().collect();
            for r in &f[8..] {
                let (a, b) = r.split_once('-').unwrap_or((r, r));
                if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>())
                    && (a..=b).contains(&slot)
                {
                    let port = f[1]
                        .split(['@', ','])
                        .next()
                        .unwrap()
                        .rsplit_once(':')
                        .unwrap()
                        .1;
                    return port.parse().unwrap();
                }
            }
        }
        panic!("no master serves slot {slot}");
    }

    fn node_mut(&mut self, port: u16) -> &mut RedisNode {
        self.nodes
            .iter_mut()
            .find(|n| n.port == port)
            .unwrap_or_else(|| panic!("no node on port {port}"))
    }

    /// SIGKILL one node (by its PID) and reap it.
    pub fn kill(&mut self, port: u16) {
        let n = self.node_mut(port);
        if let Some(mut c) = n.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The ports of `master`'s replicas (CLUSTER NODES).
    pub fn replicas_of(&self, master: u16) -> Vec<u16> {
        let n = self
            .nodes
            .iter()
            .find(|n| n.running())
            .expect("a running node");
        let nodes = cli(n.port, &["cluster", "nodes"]);
        let port_of = |addr: &str| -> Option<u16> {
            addr.split(['@', ','])
                .next()?
                .rsplit_once(':')?
                .1
                .parse()
                .ok()
        };
        let Some(id) = nodes.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 2 && port_of(f[1]) == Some(master)).then(|| f[0].to_string())
        }) else {
            return Vec::new();
        };
        nodes
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() > 3 && f[2].contains("slave") && f[3] == id)
                    .then(|| port_of(f[1]))
                    .flatten()
            })
            .collect()
    }

    /// SIGSTOP one node (by its PID): it keeps its connections but answers
    /// nothing, as a stalled node does, until [`RedisCluster::resume`].
    pub fn pause(&mut self, port: u16) {
        self.signal(port, libc::SIGSTOP);
    }

    /// SIGCONT a paused node.
    pub fn resume(&mut self, port: u16) {
        self.signal(port, libc::SIGCONT);
    }

    fn signal(&mut self, port: u16, sig: i32) {
        if let Some(c) = &self.node_mut(port).child {
            // SAFETY: signalling a child process this value started.
            unsafe { libc::kill(c.id() as i32, sig) };
        }
    }

    /// SIGTERM one node (by its PID: it writes its append-only file and exits).
    pub fn stop(&mut self, port: u16) {
        let n = self.node_mut(port);
        if let Some(mut c) = n.child.take() {
            // SAFETY: signalling a child process this value started.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }

    /// Stops every node (SIGTERM).
    pub fn stop_all(&mut self) {
        let ports: Vec<u16> = self.nodes.iter().map(|n| n.port).collect();
        for p in ports {
            self.stop(p);
        }
    }

    /// Starts a stopped node again with the same options (and data).
    pub fn restart(&mut self, port: u16) {
        let dir = self.dir.clone();
        let n = self.node_mut(port);
        if n.child.is_none() {
            n.child = Some(launch(&n.args));
        }
        wait_ping(port, Duration::from_secs(10), &dir);
    }

    pub fn restart_all(&mut self) {
        let ports: Vec<u16> = self.nodes.iter().map(|n| n.port).collect();
        for p in ports {
            self.restart(p);
        }
    }

    /// `used_memory` of every master, summed.
    pub fn used_memory(&self) -> u64 {
        self.master_ports()
            .iter()
            .map(|&p| {
                cli(p, &["info", "memory"])
                    .lines()
                    .find_map(|l| l.strip_prefix("used_memory:")?.trim().parse::<u64>().ok())
                    .unwrap_or(0)
            })
            .sum()
    }

    /// Keys on every master, summed.
    pub fn keys(&self) -> u64 {
        self.master_ports()
            .iter()
            .map(|&p| cli(p, &["dbsize"]).trim().parse::<u64>().unwrap_or(0))
            .sum()
    }
}

fn launch(args: &[String]) -> Child {
    Command::new("redis-server")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting redis-server (`cargo xtask setup` installs it)")
}

fn wait_ping(port: u16, timeout: Duration, dir: &std::path::Path) {
    let end = Instant::now() + timeout;
    while !cli(port, &["ping"]).contains("PONG") && !cli(port, &["ping"]).contains("NOAUTH") {
        assert!(
            Instant::now() < end,
            "redis-server on port {port} does not answer (log in {})",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
