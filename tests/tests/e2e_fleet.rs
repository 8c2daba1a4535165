//! Two live sensors on two segments, one fleet (root and redis-server; a
//! failure under `CI=true`): a real 3-master Redis Cluster and both sensors
//! in one network namespace, each watching its own veth; frames are injected
//! from two others. A scanner that probes 5 hosts of each segment stays
//! under the threshold on both sensors and alerts exactly once fleet-wide,
//! naming both sensors; with the store stopped, a sensor alerts on its own
//! counts (scope "sensor"); with the store back, pushes resume (the backlog
//! is counted, a new split scan alerts once fleet-wide), and the fleet's
//! metrics are on each sensor's /metrics.

use std::{
    fs,
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::Path,
    time::{Duration, Instant},
};

use slowscan_tests::{
    Netns, fleetlab::Segment, lab::Sensor, privileged, redis::RedisCluster, slowscan_bin,
    tools_present, unique,
};

const WAIT: Duration = Duration::from_secs(20);

/// Failed attempts from `src` to 203.0.113.`hosts`, port 445.
fn probe(seg: &Segment, src: [u8; 4], hosts: std::ops::RangeInclusive<u8>) {
    for h in hosts {
        seg.probe(src, h);
    }
}

fn alert_lines(path: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn start(home: &Netns, seg: &Segment, name: &str, url: &str, metrics: &str, dir: &Path) -> Sensor {
    seg.start_sensor(home, &slowscan_bin(), name, url, "1", metrics, dir)
        .expect("starting slowscan run --fleet")
}

/// Each sensor's `--metrics` address (in the shared namespace).
const METRICS: [&str; 2] = ["127.0.0.1:9181", "127.0.0.1:9182"];

/// GET /metrics of the sensor at `addr` (inside `home`).
fn scrape(home: &Netns, addr: &'static str) -> String {
    home.run(move || {
        let addr: SocketAddr = addr.parse().unwrap();
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("/metrics on {addr}: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
        assert!(head.contains(" 200 "), "{head}");
        body.to_owned()
    })
}

/// The value of a metric without labels on a /metrics page.
fn metric(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Waits until `cond` holds, or panics with `what` after [`WAIT`].
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < end, "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The alerts of both sensors for `src`.
fn alerts_of(paths: &[&Path], src: &str) -> Vec<serde_json::Value> {
    paths
        .iter()
        .flat_map(|p| alert_lines(p))
        .filter(|a| a["source"]["ip"] == src)
        .collect()
}

#[test]
fn a_scan_split_over_two_segments_alerts_once_fleet_wide() {
    let name = "a_scan_split_over_two_segments_alerts_once_fleet_wide";
    if !privileged(name) || !tools_present(name, &["nsenter", "redis-server", "redis-cli"]) {
        return;
    }
    let home = Netns::new("ssfh");
    home.exec(&["ip", "link", "set", "lo", "up"]);
    let mut cluster = home.run(|| RedisCluster::start(3, 0));
    let url = cluster.url();
    let dir = std::env::temp_dir().join(unique("ssfleet"));
    fs::create_dir_all(&dir).unwrap();
    let (seg_a, seg_b) = (Segment::new(&home), Segment::new(&home));
    let sa = start(&home, &seg_a, "seg-a", &url, METRICS[0], &dir);
    let sb = start(&home, &seg_b, "seg-b", &url, METRICS[1], &dir);

    // 5 + 5 distinct pairs: 10 fleet-wide > 8; 5 on each sensor, not > 8.
    const SCANNER: [u8; 4] = [198, 51, 100, 66];
    // 4 + 4: 8 fleet-wide, not above 8.
    const QUIET: [u8; 4] = [198, 51, 100, 77];
    probe(&seg_a, SCANNER, 1..=5);
    probe(&seg_b, SCANNER, 6..=10);
    probe(&seg_a, QUIET, 1..=4);
    probe(&seg_b, QUIET, 5..=8);
    let (pa, pb) = (dir.join("seg-a.jsonl"), dir.join("seg-b.jsonl"));
    let end = std::time::Instant::now() + WAIT;
    while alert_lines(&pa).is_empty()
        && alert_lines(&pb).is_empty()
        && std::time::Instant::now() < end
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    // Let a duplicate show itself, if there were one.
    std::thread::sleep(Duration::from_secs(3));
    let all: Vec<_> = alert_lines(&pa)
        .into_iter()
        .chain(alert_lines(&pb))
        .collect();
    assert_eq!(all.len(), 1, "exactly one alert fleet-wide: {all:#?}");
    let a = &all[0];
    assert_eq!(a["source"]["ip"], "198.51.100.66", "{a}");
    assert_eq!(a["slowscan"]["scope"], "fleet", "{a}");
    assert_eq!(a["slowscan"]["failed_pairs"], 9, "{a}");
    assert_eq!(
        a["slowscan"]["sensors"],
        serde_json::json!(["seg-a", "seg-b"]),
        "{a}"
    );

    // The store stopped: each sensor detects on its own counts.
    cluster.stop_all();
    const ALONE: [u8; 4] = [198, 51, 100, 88];
    probe(&seg_a, ALONE, 21..=29);
    let end = std::time::Instant::now() + WAIT;
    let local = loop {
        let v: Vec<_> = alert_lines(&pa)
            .into_iter()
            .filter(|a| a["source"]["ip"] == "198.51.100.88")
            .collect();
        if !v.is_empty() || std::time::Instant::now() > end {
            break v;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(local.len(), 1, "a local alert with the store down");
    assert_eq!(local[0]["slowscan"]["scope"], "sensor", "{}", local[0]);
    assert_eq!(local[0]["observer"]["name"], "seg-a", "{}", local[0]);
    // seg-a found the store gone and holds ALONE's 9 failures for it (seg-b,
    // with nothing to push, need not have noticed yet).
    wait_for("seg-a's queue holds ALONE's failures", || {
        metric(&scrape(&home, METRICS[0]), "slowscan_fleet_queue_length") == Some(9.0)
    });
    let away: Vec<String> = METRICS.iter().map(|m| scrape(&home, m)).collect();
    assert_eq!(metric(&away[0], "slowscan_fleet_degraded"), Some(1.0));
    assert!(metric(&away[0], "slowscan_fleet_store_errors_total") > Some(0.0));
    let pushed = |pages: &[String]| -> f64 {
        pages
            .iter()
            .map(|p| metric(p, "slowscan_fleet_pushed_total").unwrap_or(0.0))
            .sum()
    };
    let pushed_away = pushed(&away);

    // The store back (same data): the sensors reconnect and push again.
    let cluster = home.run(move || {
        cluster.restart_all();
        cluster.wait_ok(Duration::from_secs(30));
        cluster
    });
    wait_for("the sensors reconnect and push their backlog", || {
        METRICS.iter().all(|m| {
            let page = scrape(&home, m);
            metric(&page, "slowscan_fleet_degraded") == Some(0.0)
                && metric(&page, "slowscan_fleet_queue_length") == Some(0.0)
        })
    });
    // ALONE's backlog is counted now: its crossing is the fleet's too
    // (docs/fleet.md: late pushes), claimed by seg-a.
    let paths = [pa.as_path(), pb.as_path()];
    wait_for("the backlog's crossing claimed", || {
        alerts_of(&paths, "198.51.100.88").len() == 2
    });
    let alone = alerts_of(&paths, "198.51.100.88");
    assert_eq!(alone[1]["slowscan"]["scope"], "fleet", "{alone:#?}");
    assert_eq!(alone[1]["observer"]["name"], "seg-a", "{alone:#?}");

    // A new split scan alerts exactly once fleet-wide again.
    const AGAIN: [u8; 4] = [198, 51, 100, 99];
    probe(&seg_a, AGAIN, 31..=35);
    probe(&seg_b, AGAIN, 36..=40);
    wait_for("the new split scan alerts", || {
        !alerts_of(&paths, "198.51.100.99").is_empty()
    });
    std::thread::sleep(Duration::from_secs(3));
    let again = alerts_of(&paths, "198.51.100.99");
    assert_eq!(again.len(), 1, "exactly one alert fleet-wide: {again:#?}");
    assert_eq!(again[0]["slowscan"]["scope"], "fleet", "{}", again[0]);
    assert_eq!(
        again[0]["slowscan"]["sensors"],
        serde_json::json!(["seg-a", "seg-b"]),
        "{}",
        again[0]
    );

    // The fleet's metrics (docs/fleet.md, Metrics): the push rate's counter
    // grew by the backlog and the new scan; nothing dropped; the claiming
    // sensor timed its claims.
    let back: Vec<String> = METRICS.iter().map(|m| scrape(&home, m)).collect();
    assert!(pushed(&back) >= pushed_away + 9.0 + 10.0, "{back:#?}");
    for page in &back {
        for name in [
            "slowscan_fleet_pushed_total",
            "slowscan_fleet_queue_length",
            "slowscan_fleet_dropped_total",
            "slowscan_fleet_store_errors_total",
            "slowscan_fleet_degraded",
            "slowscan_fleet_connected_masters",
        ] {
            assert!(
                metric(page, name).is_some(),
                "{name} not on /metrics:\n{page}"
            );
        }
        assert_eq!(metric(page, "slowscan_fleet_dropped_total"), Some(0.0));
        assert_eq!(metric(page, "slowscan_fleet_connected_masters"), Some(3.0));
    }
    let claimer = if again[0]["observer"]["name"] == "seg-a" {
        0
    } else {
        1
    };
    let claims = metric(&back[claimer], "slowscan_fleet_push_to_alert_seconds_count");
    assert!(claims >= Some(1.0), "{}", back[claimer]);
    for s in [sa, sb] {
        let r = s.stop().expect("SIGTERM a sensor");
        assert!(r.status.success(), "{}", r.log);
    }
    drop(cluster);
    fs::remove_dir_all(&dir).ok();
}
