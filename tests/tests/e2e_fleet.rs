//! Two live sensors on two segments, one fleet (root and redis-server; a
//! failure under `CI=true`): a real 3-master Redis Cluster and both sensors
//! in one network namespace, each watching its own veth; frames are injected
//! from two others. A scanner that probes 5 hosts of each segment stays
//! under the threshold on both sensors and alerts exactly once fleet-wide,
//! naming both sensors; with the store stopped, a sensor alerts on its own
//! counts (scope "sensor").

use std::{fs, path::Path, time::Duration};

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

fn start(home: &Netns, seg: &Segment, name: &str, url: &str, dir: &Path) -> Sensor {
    seg.start_sensor(home, &slowscan_bin(), name, url, "1", dir)
        .expect("starting slowscan run --fleet")
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
    let sa = start(&home, &seg_a, "seg-a", &url, &dir);
    let sb = start(&home, &seg_b, "seg-b", &url, &dir);

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
    for s in [sa, sb] {
        let r = s.stop().expect("SIGTERM a sensor");
        assert!(r.status.success(), "{}", r.log);
    }
    fs::remove_dir_all(&dir).ok();
}
