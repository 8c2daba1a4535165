//! What an operator does in the first week, end to end (root; a failure
//! under `CI=true`): a sensor started with `ip netns exec` (a mount
//! namespace of its own, so a /sys and a bpffs of its own) takes whitelist
//! and ignore pushes from `ip netns exec` too, and the operator's files keep
//! their comments, blank lines and order; its metrics page is `/metrics`
//! and nothing else.

use std::{
    fs,
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::Path,
    process::{Command, Output},
    time::Duration,
};

use slowscan_tests::{
    Netns, VethLab,
    lab::{Sensor, setup},
    slowscan_bin, unique,
};

/// `ip netns exec NS slowscan args…`, as an operator types it.
fn cli(ns: &Netns, args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", &ns.name])
        .arg(slowscan_bin())
        .args(args)
        .output()
        .unwrap()
}

fn ok(what: &str, o: &Output) -> String {
    assert!(
        o.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn start(lab: &VethLab, dir: &Path, extra: &[&str]) -> Sensor {
    let alerts = dir.join("alerts.jsonl");
    let mut args = vec![
        "run",
        "--iface",
        &lab.if_b,
        "--mirror",
        "--alerts",
        alerts.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    Sensor::start_ip_netns(
        &lab.b,
        &slowscan_bin(),
        &args,
        alerts.clone(),
        dir.join(unique("sensor-") + ".log"),
        "detecting on",
    )
    .expect("starting slowscan run with ip netns exec")
}

const IGNORE: &str = "# scanners and monitoring\n\
    198.51.100.20/32   # lab client\n\
    \n\
    # the vulnerability scanner\n\
    203.0.113.5\n";

const WHITELIST: &str = r#"{"version": 1, "comment": "hand-kept",
  "entries": [{"ip": "198.51.100.2", "port": 22, "comment": "the sensor's own ssh"}]}"#;

#[test]
fn pushes_through_ip_netns_exec_reach_the_sensor_and_keep_the_files() {
    let Some((lab, dir)) = setup(
        "pushes_through_ip_netns_exec_reach_the_sensor_and_keep_the_files",
        "slowscan-op-push",
        &[],
    ) else {
        return;
    };
    let (ign, wl) = (dir.join("ignore.txt"), dir.join("whitelist.json"));
    fs::write(&ign, IGNORE).unwrap();
    fs::write(&wl, WHITELIST).unwrap();
    let sensor = start(
        &lab,
        &dir,
        &[
            "--ignore-sources",
            ign.to_str().unwrap(),
            "--whitelist",
            wl.to_str().unwrap(),
            "--metrics",
            "off",
        ],
    );
    let iface = lab.if_b.as_str();
    let b = &lab.b;

    ok(
        "whitelist add",
        &cli(
            b,
            &[
                "whitelist",
                "add",
                "198.51.100.7:80",
                "[2001:db8::/32]:443",
                "--iface",
                iface,
            ],
        ),
    );
    ok(
        "ignore add",
        &cli(b, &["ignore", "add", "198.51.100.64/26", "--iface", iface]),
    );
    ok(
        "ignore remove",
        &cli(b, &["ignore", "remove", "203.0.113.5/32", "--iface", iface]),
    );
    let listed = ok(
        "whitelist list",
        &cli(b, &["whitelist", "list", "--iface", iface]),
    );
    for want in ["198.51.100.2:22", "198.51.100.7:80", "[2001:db8::/32]:443"] {
        assert!(listed.lines().any(|l| l == want), "{want} not in\n{listed}");
    }
    let ignored = ok(
        "ignore list",
        &cli(b, &["ignore", "list", "--iface", iface]),
    );
    let mut ignored: Vec<&str> = ignored.lines().collect();
    ignored.sort();
    assert_eq!(ignored, ["198.51.100.20/32", "198.51.100.64/26"]);

    // The operator's files: comments, blank lines and order kept.
    assert_eq!(
        fs::read_to_string(&ign).unwrap(),
        "# scanners and monitoring\n\
         198.51.100.20/32   # lab client\n\
         \n\
         # the vulnerability scanner\n\
         198.51.100.64/26\n"
    );
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&wl).unwrap()).unwrap();
    assert_eq!(v["comment"], "hand-kept");
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{v}");
    assert_eq!(entries[0]["comment"], "the sensor's own ssh");
    assert_eq!(entries[1]["ip"], "198.51.100.7");
    assert_eq!(entries[2]["ip"], "2001:db8::/32");

    let end = sensor.stop().unwrap();
    assert!(end.status.success(), "{}", end.log);
    fs::remove_dir_all(&dir).unwrap();
}

/// `GET path` on the sensor's metrics address in `ns`: the status line and body.
fn get(ns: &Netns, addr: &'static str, path: &str) -> (String, String) {
    let req = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    ns.run(move || {
        let addr: SocketAddr = addr.parse().unwrap();
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        (
            head.lines().next().unwrap_or("").to_string(),
            body.to_string(),
        )
    })
}

#[test]
fn metrics_are_served_on_the_metrics_path_only() {
    let Some((lab, dir)) = setup(
        "metrics_are_served_on_the_metrics_path_only",
        "slowscan-op-metrics",
        &[],
    ) else {
        return;
    };
    const ADDR: &str = "127.0.0.1:9464";
    let sensor = start(&lab, &dir, &["--metrics", ADDR]);
    // The first counters are published within a second of the start.
    let end = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = get(&lab.b, ADDR, "/metrics");
        assert!(status.ends_with("200 OK"), "{status}");
        if body.contains("slowscan_kernel_frames_total") {
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "no kernel counter on /metrics:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for other in ["/", "/index.html", "/metrics/x", "/favicon.ico"] {
        let (status, body) = get(&lab.b, ADDR, other);
        assert!(status.contains(" 404 "), "{other}: {status}");
        assert!(!body.contains("slowscan_kernel"), "{other}: {body}");
    }
    let end = sensor.stop().unwrap();
    assert!(end.status.success(), "{}", end.log);
    fs::remove_dir_all(&dir).unwrap();
}
