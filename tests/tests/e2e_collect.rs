//! End to end, issue 17: `slowscan collect` fed by Debian's softflowd
//! watching the lab's mirror port (tests/src/lab.rs, the veth `span0` in the
//! sensor namespace) while a real nmap SYN slow scan runs from one namespace
//! and a benign client makes real connections from another. Three
//! exporters, each to its own collector on the sensor namespace's loopback:
//! IPFIX (`-v 10 -A milli`), NetFlow v9 (`-v 9`) and IPFIX biflow (`-v 10
//! -b`), all with short idle timeouts (`-t tcp=10 -t tcp.rst=5 -t tcp.fin=5
//! -t general=10 -t expint=1`). Each collector alerts on the scanner and on
//! nobody else; `slowscan status` shows its exporter with no sequence gap;
//! the export datagrams, captured on the wire by tcpdump during the test,
//! replayed with `slowscan replay --flow-exports`, give the same alerts.
//! Needs root, softflowd, nmap, tcpdump (under CI=true it fails instead of
//! skipping). Waits poll; nothing asserts a time.

use std::{
    collections::BTreeSet,
    fs,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use slowscan_tests::{
    lab::{self, BENIGN, Lab, MISCONFIGURED, Proc, SCANNER_V, SENSOR_IF, SERVER, Scanner, Sensor},
    privileged, slowscan_bin, tools_present,
};

const TOOLS: &[&str] = &["softflowd", "nmap", "tcpdump", "tc", "python3"];
const TIMEOUTS: &[&str] = &[
    "-t",
    "tcp=10",
    "-t",
    "tcp.rst=5",
    "-t",
    "tcp.fin=5",
    "-t",
    "general=10",
    "-t",
    "expint=1",
];
/// Detection as the replay runs it too: 15 probes cross 9 once.
const DETECTION: &[&str] = &["--window", "300", "--threshold", "9"];
const PORTS: &str = "1-15";

struct Exporter {
    what: &'static str,
    args: &'static [&'static str],
    port: u16,
}

fn source(a: &Value) -> String {
    a["source"]["ip"].as_str().unwrap_or("?").to_string()
}

/// What must agree between the live collector and the replay: who, how
/// many failed pairs, the window and the targets (not when it was written).
fn essence(a: &Value) -> Value {
    let s = &a["slowscan"];
    serde_json::json!({
        "source": source(a),
        "failed_pairs": s["failed_pairs"],
        "alert_seq": s["alert_seq"],
        "shape": s["shape"],
        "distinct_ports": s["distinct_ports"],
        "detector": s["detector"],
    })
}

fn status(lab: &Lab, bin: &Path, port: u16) -> anyhow::Result<Value> {
    let out = lab.in_sensor(
        bin.to_str().unwrap(),
        &["status", "--iface", &format!("collect-{port}"), "--json"],
    )?;
    Ok(serde_json::from_str(&out)?)
}

/// Polls `f` every 200 ms until it says yes, up to `limit`.
fn poll(what: &str, limit: Duration, mut f: impl FnMut() -> anyhow::Result<bool>) {
    let end = Instant::now() + limit;
    let mut last = None;
    loop {
        match f() {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => last = Some(e),
        }
        assert!(
            Instant::now() < end,
            "{what}: not after {} s (last error: {last:?})",
            limit.as_secs()
        );
        lab::sleep(Duration::from_millis(200)).unwrap();
    }
}

#[test]
fn softflowd_exports_of_a_live_slow_scan_alert_the_collector_on_the_scanner_only() {
    let name = "softflowd_exports_of_a_live_slow_scan_alert_the_collector_on_the_scanner_only";
    if !privileged(name) || !tools_present(name, TOOLS) {
        return;
    }
    let bin = slowscan_bin();
    let mut lab = Lab::new().expect("building the lab");
    lab.start_services().expect("server services");
    let dir = lab.dir.clone();
    let exporters = [
        Exporter {
            what: "IPFIX",
            args: &["-v", "10", "-A", "milli"],
            port: 4739,
        },
        Exporter {
            what: "NetFlow v9",
            args: &["-v", "9"],
            port: 2055,
        },
        Exporter {
            what: "IPFIX biflow",
            args: &["-v", "10", "-A", "milli", "-b"],
            port: 4740,
        },
    ];

    // Collectors first, then the taps on their ports, then the exporters.
    let mut collectors = Vec::new();
    for e in &exporters {
        let listen = format!("127.0.0.1:{}", e.port);
        let alerts = dir.join(format!("alerts-{}.jsonl", e.port));
        let mut args = vec!["collect", "--listen", &listen, "--max-lateness", "20s"];
        args.extend_from_slice(DETECTION);
        args.extend_from_slice(&["--alerts", alerts.to_str().unwrap()]);
        let c = Sensor::start_ip_netns(
            &lab.sensor,
            &bin,
            &args,
            alerts.clone(),
            dir.join(format!("collect-{}.log", e.port)),
            "collecting NetFlow/IPFIX",
        )
        .unwrap_or_else(|err| panic!("starting the {} collector: {err:#}", e.what));
        collectors.push(c);
    }
    let mut taps = Vec::new();
    for e in &exporters {
        let mut t = lab.sensor.command("tcpdump");
        t.args(["-i", "lo", "-U", "-n", "-Z", "root", "-w"])
            .arg(dir.join(format!("exports-{}.pcap", e.port)))
            .args(["udp", "dst", "port", &e.port.to_string()]);
        t.stdout(Stdio::null())
            .stderr(fs::File::create(dir.join(format!("tcpdump-{}.log", e.port))).unwrap());
        taps.push(Proc::spawn("tcpdump", t).unwrap());
    }
    for e in &exporters {
        let log = dir.join(format!("tcpdump-{}.log", e.port));
        poll("tcpdump listening", Duration::from_secs(15), || {
            Ok(fs::read_to_string(&log)?.contains("listening on"))
        });
    }
    let mut softflowds = Vec::new();
    for e in &exporters {
        let mut s = lab.sensor.command("softflowd");
        s.args([
            "-d",
            "-i",
            SENSOR_IF,
            "-n",
            &format!("127.0.0.1:{}", e.port),
        ])
        .args(["-c"])
        .arg(dir.join(format!("softflowd-{}.ctl", e.port)))
        .args(e.args)
        .args(TIMEOUTS);
        s.stdout(Stdio::null())
            .stderr(fs::File::create(dir.join(format!("softflowd-{}.log", e.port))).unwrap());
        softflowds.push(Proc::spawn(&format!("softflowd {}", e.what), s).unwrap());
    }
    // softflowd answers on its control socket once its capture is open.
    for e in &exporters {
        let ctl = dir.join(format!("softflowd-{}.ctl", e.port));
        poll("softflowd ready", Duration::from_secs(15), || {
            Ok(lab
                .sensor
                .command("softflowctl")
                .args(["-c", ctl.to_str().unwrap(), "statistics"])
                .output()?
                .status
                .success())
        });
    }

    lab.start_clients().expect("clients");
    let v = lab
        .spawn_nmap(
            Scanner::Vertical,
            &["-T4", "--scan-delay", "300ms", "-p", PORTS, SERVER],
        )
        .unwrap();
    let nmap = lab.wait_nmap(Scanner::Vertical, v).expect("nmap");
    assert!(nmap.contains("Nmap done"), "{nmap}");

    // Each collector alerts on the scanner once its probes are exported
    // (idle timeout) and past --max-lateness, and has counted the benign
    // client's connections as established.
    for (e, c) in exporters.iter().zip(&collectors) {
        poll(
            &format!("the {} collector alerting on {SCANNER_V}", e.what),
            Duration::from_secs(120),
            || {
                let st = status(&lab, &bin, e.port)?;
                let top = &st["detectors"][0]["top"];
                let scanner_done = top.as_array().is_some_and(|t| {
                    t.iter()
                        .any(|s| s["ip"] == SCANNER_V && s["failed_pairs"] == 15)
                });
                Ok(scanner_done && c.alerts_so_far().iter().any(|a| source(a) == SCANNER_V))
            },
        );
    }

    // The exporters stop (flushing their tables); the collectors take what
    // came, then stop and count everything buffered.
    for s in &mut softflowds {
        s.stop(Duration::from_secs(5)).unwrap();
    }
    let mut statuses = Vec::new();
    for e in &exporters {
        let mut last = u64::MAX;
        poll(
            "the collector's intake settling",
            Duration::from_secs(30),
            || {
                let n = status(&lab, &bin, e.port)?["flows"]["datagrams"]
                    .as_u64()
                    .unwrap_or(0);
                let settled = n == last;
                last = n;
                Ok(settled)
            },
        );
        statuses.push(status(&lab, &bin, e.port).unwrap());
    }
    let results: Vec<_> = collectors
        .into_iter()
        .map(|c| c.stop().expect("stopping a collector"))
        .collect();
    for t in &mut taps {
        t.stop(Duration::from_secs(5)).unwrap();
    }

    for ((e, r), st) in exporters.iter().zip(&results).zip(&statuses) {
        let ctx = format!(
            "{} collector; status {st:#}\nlog:\n{}\nsoftflowd: {}",
            e.what,
            r.log,
            fs::read_to_string(dir.join(format!("softflowd-{}.log", e.port))).unwrap_or_default()
        );
        assert!(r.status.success(), "exited {}; {ctx}", r.status);
        let sources: BTreeSet<String> = r.alerts.iter().map(source).collect();
        assert_eq!(
            sources,
            BTreeSet::from([SCANNER_V.to_string()]),
            "alerting sources; {ctx}"
        );
        let f = &st["flows"];
        assert_eq!(f["sequence_gaps"], 0, "a lost export datagram; {ctx}");
        assert_eq!(f["sampled_exporters"], 0, "{ctx}");
        assert_eq!(f["not_allowed"], 0, "{ctx}");
        assert_eq!(f["malformed"], 0, "{ctx}");
        let x = &f["exporters"][0];
        assert_eq!(f["exporters"].as_array().unwrap().len(), 1, "{ctx}");
        assert_eq!(x["address"], "127.0.0.1", "{ctx}");
        let proto = if e.what.starts_with("IPFIX") {
            "IPFIX"
        } else {
            "NetFlow v9"
        };
        assert_eq!(x["protocol"], proto, "{ctx}");
        assert!(x["records"].as_u64().unwrap() > 0, "{ctx}");
        // Only the scanner and the misconfigured client (one dead port)
        // failed; the benign client's connections all succeeded.
        for s in st["detectors"][0]["top"].as_array().unwrap() {
            assert_ne!(s["ip"], BENIGN, "the benign client failed; {ctx}");
            if s["ip"] == MISCONFIGURED {
                assert_eq!(s["failed_pairs"], 1, "{ctx}");
            }
        }
        // Many attempts: the scanner's 15 and the clients' dozens.
        assert!(f["attempts"].as_u64().unwrap() > 40, "{ctx}");

        // The replay of what went over the wire says the same.
        let pcap = dir.join(format!("exports-{}.pcap", e.port));
        let report = dir.join(format!("report-{}.json", e.port));
        let out = Command::new(&bin)
            .args(["replay", "--flow-exports"])
            .arg(&pcap)
            .args(DETECTION)
            .arg("--report")
            .arg(&report)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "replay: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let replayed: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let live: Vec<Value> = r.alerts.iter().map(essence).collect();
        let again: Vec<Value> = replayed.iter().map(essence).collect();
        assert_eq!(live, again, "live vs replayed alerts; {ctx}");
        let rep: Value = serde_json::from_str(&fs::read_to_string(&report).unwrap()).unwrap();
        let fe = &rep["flow_exports"];
        assert_eq!(
            fe["decode"]["datagrams"], f["datagrams"],
            "the capture holds what the collector received; report {fe:#}; {ctx}"
        );
        assert_eq!(fe["decode"]["sequence_gaps"], 0, "{fe:#}");
        assert_eq!(fe["decode"]["records"], f["records"], "{fe:#}; {ctx}");
    }
}
