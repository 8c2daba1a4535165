//! End to end, R9 (who a source is) with real changing addresses: the lab of
//! tests/src/lab.rs (hosts on a bridge in a switch namespace, every port's
//! ingress mirrored to the sensor's `span0`), in IPv6, with a router.
//!
//! ```text
//!   server ::10   scanner ::66 (tempaddr)   benign ::20 (tempaddr)   router ::1 ── eth1 ── outside
//!      │ eth0          │ eth0                    │ eth0                │ eth0      2001:db8:bad:1::/64
//!   ───┴───────────────┴──── br0 (switch) ───────┴─────────────────────┴────
//!        every port's ingress ── tc mirred egress mirror ──► mon ═══ span0 (sensor)
//! ```
//!
//! The LAN is 2001:db8:10:1::/64, inside the sensor's home networks
//! (`--home-nets 2001:db8:10::/48`); 2001:db8:bad:1::/64 is outside. The
//! scanner and the benign host use temporary addresses (`use_tempaddr=2`)
//! with a 10 s preferred lifetime, so the kernel makes a new one every few
//! seconds and their outgoing connections move to it. The scanner runs a real
//! `nmap -6 -sT` slow scan (connect(): the kernel's own source address
//! selection) of 8 closed ports; the outside host probes 8 closed ports, each
//! from a fresh random address of its /64 (added to its interface, `nmap -6
//! -sT -S`), through the router, so the sensor sees those SYNs from the
//! router's MAC; the benign host connects to real services from its changing
//! addresses and fails twice. With `--detector 10m:4` exactly two alerts: the
//! scanner under its MAC, the outside host under its /64, each with the
//! addresses it used; the benign host stays quiet.

use std::{
    collections::BTreeSet,
    fs,
    net::Ipv6Addr,
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::Value;
use slowscan_tests::{
    Netns,
    lab::{self, Proc, SENSOR_IF, Sensor},
    privileged, slowscan_bin, tools_present, unique,
};

const TOOLS: &[&str] = &["nmap", "tc", "ip", "sysctl", "python3"];

const SERVER: &str = "2001:db8:10:1::10";
const ROUTER_LAN: &str = "2001:db8:10:1::1";
const ROUTER_OUT: &str = "2001:db8:bad:1::1";
const SCANNER_MAC: &str = "02:10:00:00:00:66";
const BENIGN_MAC: &str = "02:10:00:00:00:20";
const ROUTER_MAC: &str = "02:10:00:00:00:01";
const OUTSIDE_PREFIX: &str = "2001:db8:bad:1::/64";
/// Ports the server serves (accept, say hello, close).
const SERVICES: [u16; 2] = [80, 22];
/// Closed ports: the scanner's, the outside host's, the benign host's two failures.
const SCAN_PORTS: &str = "101-108";
const SCAN_COUNT: u64 = 8;
const OUTSIDE_PORTS: [u16; 8] = [201, 202, 203, 204, 205, 206, 207, 208];
const BENIGN_DEAD: &str = "7001,7002";
const TIMEOUT_S: u64 = 2;
const THRESHOLD: u64 = 4;

const LISTENER_PY: &str = r#"
import selectors, socket, sys
sel = selectors.DefaultSelector()
for p in sys.argv[1:]:
    s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", int(p))); s.listen(64); s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        try:
            c, _ = key.fileobj.accept(); c.sendall(b"hello\n"); c.close()
        except OSError:
            pass
"#;

/// The benign LAN host: real connections to the server's services, one a
/// second, until they came from `want` distinct (temporary) source addresses,
/// with one failure to each dead port on the way (each from a newer address
/// than the one before). Prints what it did as JSON; exit 1 if `limit` s
/// pass first.
const BENIGN_PY: &str = r#"
import json, socket, sys, time
server = sys.argv[1]
services = [int(p) for p in sys.argv[2].split(",")]
dead = [int(p) for p in sys.argv[3].split(",")]
want, limit = int(sys.argv[4]), float(sys.argv[5])
ok_from, failed_from = [], []
def attempt(port):
    s = socket.socket(socket.AF_INET6); s.settimeout(3)
    try:
        s.connect((server, port)); a = s.getsockname()[0]; s.recv(64); return a, True
    except OSError:
        try:
            a = s.getsockname()[0]
        except OSError:
            a = None
        return a, False
    finally:
        s.close()
end = time.time() + limit
done = False
while time.time() < end:
    for p in services:
        a, good = attempt(p)
        if good and a not in ok_from:
            ok_from.append(a)
    if len(failed_from) < len(dead) and len(ok_from) > len(failed_from):
        a, good = attempt(dead[len(failed_from)])
        failed_from.append(a if not good else "connected?")
    if len(ok_from) >= want and len(failed_from) == len(dead):
        done = True
        break
    time.sleep(1)
print(json.dumps({"ok_from": ok_from, "failed_from": failed_from}))
sys.exit(0 if done else 1)
"#;

fn ip(args: &[&str]) {
    lab::run(Command::new("ip").args(args)).unwrap_or_else(|e| panic!("{e:#}"));
}

fn tc(args: &[&str]) {
    lab::run(Command::new("tc").args(args)).unwrap_or_else(|e| panic!("{e:#}"));
}

fn sysctl(ns: &Netns, settings: &[String]) {
    let mut c = ns.command("sysctl");
    c.arg("-qw").args(settings);
    lab::run(&mut c).unwrap_or_else(|e| panic!("{e:#}"));
}

/// The lab's namespaces; dropping it deletes them (and every veth and the
/// bridge with them). Processes are held by the test, dropped first.
struct IdLab {
    server: Netns,
    scanner: Netns,
    benign: Netns,
    _router: Netns,
    outside: Netns,
    sensor: Netns,
    _switch: Netns,
    dir: std::path::PathBuf,
}

impl Drop for IdLab {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `use_tempaddr=2` with a 10 s preferred lifetime on `eth0`: a new
/// temporary address every few seconds, the old ones kept (deprecated) for
/// two minutes; no cap on their number.
fn rotate_temporary_addresses(ns: &Netns) {
    sysctl(
        ns,
        &[
            "use_tempaddr=2",
            "temp_prefered_lft=10",
            "temp_valid_lft=120",
            "max_desync_factor=1",
            "max_addresses=0",
        ]
        .map(|s| format!("net.ipv6.conf.eth0.{s}")),
    );
}

impl IdLab {
    fn new() -> Self {
        let switch = Netns::new("ssisw");
        let sensor = Netns::new("ssise");
        let sw = switch.name.clone();
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"]);
        ip(&[
            "-n",
            &sw,
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        ip(&["-n", &sw, "link", "set", "br0", "up"]);
        ip(&[
            "link",
            "add",
            "mon",
            "netns",
            &sw,
            "type",
            "veth",
            "peer",
            "name",
            SENSOR_IF,
            "netns",
            &sensor.name,
        ]);
        ip(&["-n", &sw, "link", "set", "mon", "up"]);
        ip(&["-n", &sensor.name, "link", "set", SENSOR_IF, "up"]);
        let mut n = 0;
        let mut host = |prefix: &str, mac: Option<&str>| -> Netns {
            n += 1;
            let ns = Netns::new(prefix);
            let port = format!("p{n}");
            ip(&[
                "link", "add", "eth0", "netns", &ns.name, "type", "veth", "peer", "name", &port,
                "netns", &sw,
            ]);
            if let Some(mac) = mac {
                ip(&["-n", &ns.name, "link", "set", "eth0", "address", mac]);
            }
            ip(&["-n", &sw, "link", "set", &port, "master", "br0"]);
            ip(&["-n", &sw, "link", "set", &port, "up"]);
            ip(&["-n", &ns.name, "link", "set", "eth0", "up"]);
            // What the host sends enters the bridge here: mirror it to the sensor.
            tc(&["-n", &sw, "qdisc", "add", "dev", &port, "clsact"]);
            tc(&[
                "-n", &sw, "filter", "add", "dev", &port, "ingress", "protocol", "all", "u32",
                "match", "u32", "0", "0", "action", "mirred", "egress", "mirror", "dev", "mon",
            ]);
            ns
        };
        let server = host("ssisv", None);
        let scanner = host("ssisc", Some(SCANNER_MAC));
        let benign = host("ssibe", Some(BENIGN_MAC));
        let router = host("ssirt", Some(ROUTER_MAC));

        ip(&[
            "-n",
            &server.name,
            "-6",
            "addr",
            "add",
            &format!("{SERVER}/64"),
            "dev",
            "eth0",
            "nodad",
        ]);
        ip(&[
            "-n",
            &server.name,
            "-6",
            "route",
            "add",
            "default",
            "via",
            ROUTER_LAN,
        ]);
        for (ns, stable) in [
            (&scanner, "2001:db8:10:1::66/64"),
            (&benign, "2001:db8:10:1::20/64"),
        ] {
            rotate_temporary_addresses(ns);
            ip(&[
                "-n",
                &ns.name,
                "-6",
                "addr",
                "add",
                stable,
                "dev",
                "eth0",
                "mngtmpaddr",
                "nodad",
            ]);
        }

        // The router: eth0 on the LAN, eth1 to the outside host's /64.
        let outside = Netns::new("ssiou");
        ip(&[
            "link",
            "add",
            "eth1",
            "netns",
            &router.name,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &outside.name,
        ]);
        sysctl(&router, &["net.ipv6.conf.all.forwarding=1".to_string()]);
        ip(&[
            "-n",
            &router.name,
            "-6",
            "addr",
            "add",
            &format!("{ROUTER_LAN}/64"),
            "dev",
            "eth0",
            "nodad",
        ]);
        ip(&[
            "-n",
            &router.name,
            "-6",
            "addr",
            "add",
            &format!("{ROUTER_OUT}/64"),
            "dev",
            "eth1",
            "nodad",
        ]);
        ip(&["-n", &router.name, "link", "set", "eth1", "up"]);
        ip(&["-n", &outside.name, "link", "set", "eth0", "up"]);
        ip(&[
            "-n",
            &outside.name,
            "-6",
            "addr",
            "add",
            "2001:db8:bad:1::99/64",
            "dev",
            "eth0",
            "nodad",
        ]);
        ip(&[
            "-n",
            &outside.name,
            "-6",
            "route",
            "add",
            "default",
            "via",
            ROUTER_OUT,
        ]);

        let dir = std::env::temp_dir().join(unique("slowscan-identity-"));
        fs::create_dir_all(&dir).unwrap();
        Self {
            server,
            scanner,
            benign,
            _router: router,
            outside,
            sensor,
            _switch: switch,
            dir,
        }
    }
}

/// The temporary addresses on namespace `ns`'s eth0 now: (address,
/// usable: neither tentative nor deprecated).
fn temporary_addresses(ns: &str) -> Vec<(String, bool)> {
    let out = Command::new("ip")
        .args(["-n", ns, "-6", "-o", "addr", "show", "dev", "eth0"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.lines()
        .filter(|l| l.contains(" temporary"))
        .filter_map(|l| {
            let a = l.split_whitespace().skip_while(|w| *w != "inet6").nth(1)?;
            let usable = !l.contains("tentative") && !l.contains("deprecated");
            Some((a.split('/').next()?.to_string(), usable))
        })
        .collect()
}

/// Waits (up to `limit`) until `ns` has a temporary address in use.
fn wait_temporary(ns: &Netns, limit: Duration) {
    let end = Instant::now() + limit;
    while !temporary_addresses(&ns.name)
        .iter()
        .any(|(_, usable)| *usable)
    {
        assert!(
            Instant::now() < end,
            "{} has no usable temporary address after {} s",
            ns.name,
            limit.as_secs()
        );
        lab::sleep(Duration::from_millis(200)).unwrap();
    }
}

/// Every temporary address `nss` have had, sampled twice a second until
/// `stop`.
fn sample_temporary(
    nss: Vec<String>,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<Vec<BTreeSet<String>>> {
    thread::spawn(move || {
        let mut seen = vec![BTreeSet::new(); nss.len()];
        loop {
            let last = stop.load(Ordering::SeqCst);
            for (set, ns) in seen.iter_mut().zip(&nss) {
                set.extend(temporary_addresses(ns).into_iter().map(|(a, _)| a));
            }
            if last {
                return seen;
            }
            thread::sleep(Duration::from_millis(500));
        }
    })
}

/// A random address of the outside /64 (xorshift, seeded by the clock).
fn random_outside_addresses(n: usize) -> Vec<String> {
    let mut x = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        ^ u64::from(std::process::id()) << 32
        | 1;
    let mut out = BTreeSet::new();
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let iid = x | 0x0100; // never ::0–::ff (the router, the host's own ::99)
        let seg = |i: u32| (iid >> (48 - 16 * i)) as u16;
        let a = Ipv6Addr::new(0x2001, 0xdb8, 0xbad, 1, seg(0), seg(1), seg(2), seg(3));
        out.insert(a.to_string());
    }
    out.into_iter().collect()
}

fn mac_ecs(mac: &str) -> String {
    mac.to_uppercase().replace(':', "-")
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

fn in_lan(a: &str) -> bool {
    a.parse::<Ipv6Addr>()
        .is_ok_and(|a| a.segments()[..4] == [0x2001, 0xdb8, 0x10, 1])
}

#[test]
fn temporary_and_per_probe_addresses_alert_once_per_identity() {
    let name = "temporary_and_per_probe_addresses_alert_once_per_identity";
    if !privileged(name) || !tools_present(name, TOOLS) {
        return;
    }
    let bin = slowscan_bin();
    let lab = IdLab::new();
    let python = if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };

    // The server's services, ready when they answer on its own address.
    let mut l = lab.server.command(python);
    l.arg("-c")
        .arg(LISTENER_PY)
        .args(SERVICES.iter().map(u16::to_string))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _listeners = Proc::spawn("listeners", l).unwrap();
    let probe = format!(
        "import socket\nfor p in {SERVICES:?}: socket.create_connection(('{SERVER}', p), timeout=1).close()"
    );
    let end = Instant::now() + Duration::from_secs(30);
    while !lab
        .server
        .command(python)
        .args(["-c", &probe])
        .output()
        .unwrap()
        .status
        .success()
    {
        assert!(
            Instant::now() < end,
            "the server's services did not come up"
        );
        lab::sleep(Duration::from_millis(200)).unwrap();
    }
    wait_temporary(&lab.scanner, Duration::from_secs(60));
    wait_temporary(&lab.benign, Duration::from_secs(60));

    let alerts = lab.dir.join("alerts.jsonl");
    let sensor = Sensor::start_ip_netns(
        &lab.sensor,
        &bin,
        &[
            "run",
            "--iface",
            SENSOR_IF,
            "--mirror",
            "--source-totals",
            "--metrics",
            "off",
            "--home-nets",
            "2001:db8:10::/48",
            "--detector",
            &format!("10m:{THRESHOLD}"),
            "--handshake-timeout",
            &TIMEOUT_S.to_string(),
            "--alerts",
            alerts.to_str().unwrap(),
        ],
        alerts.clone(),
        lab.dir.join("sensor.log"),
        "detecting on",
    )
    .expect("starting slowscan run");

    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_temporary(
        vec![lab.scanner.name.clone(), lab.benign.name.clone()],
        stop.clone(),
    );

    // The benign host: services from ≥ 3 of its addresses, 2 failures.
    let benign_out = lab.dir.join("benign.json");
    let mut b = lab.benign.command(python);
    b.arg("-c")
        .arg(BENIGN_PY)
        .args([
            SERVER,
            &SERVICES.map(|p| p.to_string()).join(","),
            BENIGN_DEAD,
            "3",
            "400",
        ])
        .stdout(fs::File::create(&benign_out).unwrap())
        .stderr(Stdio::null());
    let mut benign = Proc::spawn("benign client", b).unwrap();

    // The LAN scanner: a real connect() slow scan, a probe every 4 s, its
    // source addresses chosen by the kernel.
    let nmap_out = lab.dir.join("nmap-scanner.txt");
    let mut s = lab.scanner.command("nmap");
    s.args([
        "-6",
        "-sT",
        "-n",
        "-Pn",
        "--max-retries",
        "0",
        "--scan-delay",
        "4s",
        "-p",
        SCAN_PORTS,
        SERVER,
    ])
    .stdout(fs::File::create(&nmap_out).unwrap())
    .stderr(Stdio::null());
    let mut scan = Proc::spawn("nmap from the scanner", s).unwrap();

    // The outside host: each probe from a fresh address of its /64.
    let used_outside = random_outside_addresses(OUTSIDE_PORTS.len());
    for (addr, port) in used_outside.iter().zip(OUTSIDE_PORTS) {
        ip(&[
            "-n",
            &lab.outside.name,
            "-6",
            "addr",
            "add",
            &format!("{addr}/64"),
            "dev",
            "eth0",
            "nodad",
        ]);
        let out = lab::run(lab.outside.command("nmap").args([
            "-6",
            "-sT",
            "-n",
            "-Pn",
            "--max-retries",
            "0",
            "-S",
            addr,
            "-e",
            "eth0",
            "-p",
            &port.to_string(),
            SERVER,
        ]))
        .unwrap_or_else(|e| panic!("nmap from {addr}: {e:#}"));
        assert!(
            out.contains(&format!("{port}/tcp closed")),
            "the probe from {addr} did not reach the server through the router:\n{out}"
        );
        lab::sleep(Duration::from_millis(500)).unwrap();
    }

    let st = scan.wait(Duration::from_secs(600)).unwrap();
    let nmap_text = fs::read_to_string(&nmap_out).unwrap_or_default();
    assert!(st.success(), "nmap from the scanner: {st}\n{nmap_text}");
    let st = benign.wait(Duration::from_secs(600)).unwrap();
    let benign_text = fs::read_to_string(&benign_out).unwrap_or_default();
    assert!(st.success(), "the benign client: {st}\n{benign_text}");
    stop.store(true, Ordering::SeqCst);
    let seen = sampler.join().unwrap();
    let (scanner_temps, benign_temps) = (&seen[0], &seen[1]);

    // Both scanners' alerts, however slowly the machine decides them.
    let is_mac = |a: &Value| a["source"]["mac"] == mac_ecs(SCANNER_MAC);
    let is_prefix = |a: &Value| a["slowscan"]["source"]["prefix"] == OUTSIDE_PREFIX;
    let end = Instant::now() + Duration::from_secs(180);
    loop {
        let so_far = sensor.alerts_so_far();
        if so_far.iter().any(is_mac) && so_far.iter().any(is_prefix) {
            break;
        }
        if Instant::now() > end {
            break; // the assertions below say what is missing
        }
        lab::sleep(Duration::from_millis(500)).unwrap();
    }
    // Time for a (wrong) second alert to show.
    lab::sleep(Duration::from_secs(TIMEOUT_S + 3)).unwrap();
    let r = sensor.stop().expect("stopping the sensor");
    let ctx = format!(
        "alerts:\n{}\nsensor log:\n{}\nnmap:\n{nmap_text}\nbenign: {benign_text}\n\
         scanner temporaries: {scanner_temps:?}\nbenign temporaries: {benign_temps:?}\n\
         outside addresses: {used_outside:?}",
        r.alerts
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
        r.log
    );
    assert!(
        r.status.success(),
        "slowscan run exited with {}; {ctx}",
        r.status
    );

    // Every alert is a valid line of docs/alert.schema.json.
    let schema: Value = serde_json::from_str(include_str!("../../docs/alert.schema.json")).unwrap();
    let schema = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("docs/alert.schema.json is a JSON Schema");
    for a in &r.alerts {
        let errors: Vec<String> = schema.iter_errors(a).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "alert {a} fails the schema: {errors:?}");
    }

    // Exactly two alerts: one per scanner.
    assert_eq!(r.alerts.len(), 2, "two alerts expected; {ctx}");
    let mac_alert = r
        .alerts
        .iter()
        .find(|a| is_mac(a))
        .unwrap_or_else(|| panic!("no alert under the scanner's MAC; {ctx}"));
    let prefix_alert = r
        .alerts
        .iter()
        .find(|a| is_prefix(a))
        .unwrap_or_else(|| panic!("no alert under the outside /64; {ctx}"));

    // The LAN scanner: under its MAC, with the temporary addresses it used.
    let s = &mac_alert["slowscan"];
    assert_eq!(s["source"]["kind"], "mac", "{mac_alert}");
    assert_eq!(s["source"]["identity"], mac_ecs(SCANNER_MAC), "{mac_alert}");
    assert!(s["source"].get("prefix").is_none(), "{mac_alert}");
    assert_eq!(s["alert_seq"], 1, "{mac_alert}");
    assert_eq!(s["shape"], "vertical", "{mac_alert}");
    let pairs = s["failed_pairs"].as_u64().unwrap();
    assert!(
        pairs > THRESHOLD && pairs <= SCAN_COUNT,
        "failed pairs {pairs}: {mac_alert}"
    );
    let addrs = strs(&s["source"]["addresses"]);
    assert!(
        addrs.len() >= 2,
        "the scanner's temporary address did not change during its scan (or the change was not \
         followed); {ctx}"
    );
    assert!(s["source"]["addresses_count"].as_u64().unwrap() >= addrs.len() as u64);
    for a in addrs.iter().chain(std::iter::once(
        &mac_alert["source"]["ip"].as_str().unwrap().to_string(),
    )) {
        assert!(
            in_lan(a) && scanner_temps.contains(a),
            "{a} is not one of the scanner's temporary addresses; {ctx}"
        );
    }

    // The outside scanner: under its /64, through the router's MAC.
    let s = &prefix_alert["slowscan"];
    assert_eq!(s["source"]["kind"], "prefix", "{prefix_alert}");
    assert_eq!(s["source"]["identity"], OUTSIDE_PREFIX, "{prefix_alert}");
    assert!(
        prefix_alert["source"].get("mac").is_none(),
        "the router's MAC became an identity: {prefix_alert}"
    );
    assert_eq!(s["alert_seq"], 1, "{prefix_alert}");
    let pairs = s["failed_pairs"].as_u64().unwrap();
    assert!(
        pairs > THRESHOLD && pairs <= OUTSIDE_PORTS.len() as u64,
        "failed pairs {pairs}: {prefix_alert}"
    );
    let addrs = strs(&s["source"]["addresses"]);
    assert!(addrs.len() >= 2, "{prefix_alert}");
    assert!(s["source"]["addresses_count"].as_u64().unwrap() >= addrs.len() as u64);
    for a in addrs.iter().chain(std::iter::once(
        &prefix_alert["source"]["ip"].as_str().unwrap().to_string(),
    )) {
        assert!(
            used_outside.contains(a),
            "{a} is not an address the outside host probed from; {ctx}"
        );
    }

    // The benign host changed addresses too, connected and failed, and is
    // in no alert (neither its MAC nor any of its addresses).
    let b: Value = serde_json::from_str(benign_text.trim()).unwrap();
    let ok_from = strs(&b["ok_from"]);
    assert!(ok_from.len() >= 3, "{benign_text}");
    for a in &ok_from {
        assert!(
            benign_temps.contains(a),
            "the benign host connected from {a}, not a temporary address; {ctx}"
        );
    }
    assert_eq!(strs(&b["failed_from"]).len(), 2, "{benign_text}");
    for a in &r.alerts {
        assert_ne!(
            a["source"]["mac"],
            mac_ecs(BENIGN_MAC),
            "benign alerted; {ctx}"
        );
        let ip = a["source"]["ip"].as_str().unwrap();
        assert!(!benign_temps.contains(ip), "benign alerted; {ctx}");
        for x in strs(&a["slowscan"]["source"]["addresses"]) {
            assert!(!benign_temps.contains(&x), "benign in an alert; {ctx}");
        }
    }
    // Per address (the summary's totals), nobody exceeded the threshold:
    // only counting per identity (R9) catches the two scanners. The benign
    // host's two failures were seen and decided.
    let summary = r.summary();
    let per_address: Vec<(String, u64, u64)> = summary
        .lines()
        .skip_while(|l| !l.contains("per source"))
        .filter_map(|l| {
            let (who, rest) = l.trim_start().split_once(": ")?;
            let field = |f: &str| {
                rest.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(f)?.strip_prefix('=')?.parse::<u64>().ok())
            };
            Some((who.to_string(), field("failed")?, field("failed_pairs")?))
        })
        .collect();
    for (who, _, pairs) in &per_address {
        assert!(
            *pairs <= THRESHOLD,
            "{who} alone failed {pairs} pairs: the test no longer needs identities; {ctx}"
        );
    }
    let benign_failed: u64 = per_address
        .iter()
        .filter(|(who, _, _)| benign_temps.contains(who))
        .map(|(_, failed, _)| failed)
        .sum();
    assert_eq!(benign_failed, 2, "the benign host's failures; {ctx}");

    for a in &r.alerts {
        eprintln!("alert: {a}");
    }
    eprintln!("{summary}");

    // Nothing lost.
    assert_eq!(r.kernel_counter("ring_full"), Some(0), "{ctx}");
    assert_eq!(r.kernel_counter("records_lost"), Some(0), "{ctx}");
}
