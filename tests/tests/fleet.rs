//! The fleet against real Redis servers (docs/fleet.md): clusters of 3
//! masters (and 3 replicas for failover) and a single server with an ACL
//! user, started by each test on loopback ports of its own, stopped by PID.
//! Two `Fleet` clients play two sensors on two segments. Needs `redis-server`
//! and `redis-cli` (`cargo xtask setup`); skipped without them, a failure
//! under CI=true.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use slowscan::engine::{
    CountedFailure, DetectorConfig, Engine, EngineConfig, HOUR_NS, Identity, Window,
};
use slowscan::fleet::{Fleet, FleetAlert, FleetConfig, FleetUrl, StoreMode};
use slowscan_common::{AF_INET, PacketRecord};
use slowscan_tests::redis::RedisCluster;
use slowscan_tests::tools_present;

const S: i64 = 1_000_000_000;
/// An arbitrary wall-clock second (2025-06-15).
const T0: i64 = 1_750_000_000 * S;

fn redis_present(test: &str) -> bool {
    tools_present(test, &["redis-server", "redis-cli"])
}

fn config(url: &str, name: &str, dets: &[DetectorConfig]) -> FleetConfig {
    let mut cfg = FleetConfig::new(FleetUrl::parse(url).unwrap(), name, dets).unwrap();
    cfg.backoff_max = Duration::from_millis(400);
    cfg.connect_timeout = Duration::from_millis(500);
    cfg.response_timeout = Duration::from_secs(2);
    cfg
}

fn sensor(url: &str, name: &str, dets: &[DetectorConfig]) -> Fleet {
    Fleet::start(config(url, name, dets)).unwrap_or_else(|e| panic!("{e}"))
}

fn failure(src: &str, dst: &str, port: u16, t: i64) -> CountedFailure {
    CountedFailure {
        source: src.parse().unwrap(),
        identity: slowscan::engine::Identity::Address(src.parse().unwrap()),
        destination: dst.parse().unwrap(),
        port,
        at_ns: t,
    }
}

/// Every alert the sensors claimed once everything they hold is pushed.
fn alerts(sensors: &[&Fleet]) -> Vec<FleetAlert> {
    for f in sensors {
        assert!(
            f.flush(Duration::from_secs(60)),
            "not flushed: {:?}",
            f.status()
        );
    }
    let mut out = Vec::new();
    for f in sensors {
        f.drain_alerts(&mut out);
    }
    out
}

fn ladder() -> Vec<DetectorConfig> {
    DetectorConfig::default_ladder()
}

/// The case: a scanner probes 6 hosts of one segment and 6 of
/// another, 300 s apart (the paper's pace); each sensor sees 6, under the
/// 1h:9 threshold, and the fleet sees 12: exactly one alert, written by one
/// of the two sensors, naming both. A source with 4 + 4 failed pairs stays
/// quiet, and so does one whose 8 pairs both sensors saw (mirrored: the
/// fleet counts distinct pairs, not reports).
#[test]
fn split_scan_alerts_once_fleet_wide() {
    if !redis_present("split_scan_alerts_once_fleet_wide") {
        return;
    }
    let cluster = RedisCluster::start(3, 0);
    let a = sensor(&cluster.url(), "seg-a", &ladder());
    let b = sensor(&cluster.url(), "seg-b", &ladder());
    assert_eq!(a.status().mode, Some(StoreMode::Cluster));
    assert_eq!(a.status().masters, 3);
    for i in 0..12i64 {
        let t = T0 + i * 300 * S;
        let who = if i % 2 == 0 { &a } else { &b };
        who.push(failure(
            "198.51.100.66",
            &format!("203.0.113.{}", 10 + i),
            23,
            t,
        ));
        if i < 8 {
            let who = if i < 4 { &a } else { &b };
            who.push(failure(
                "198.51.100.21",
                &format!("203.0.113.{}", 40 + i),
                80,
                t,
            ));
            for f in [&a, &b] {
                f.push(failure(
                    "198.51.100.22",
                    &format!("203.0.113.{}", 60 + i),
                    443,
                    t,
                ));
            }
        }
        // Time passes between probes: each one is pushed before the next.
        a.flush(Duration::from_secs(30));
        b.flush(Duration::from_secs(30));
    }
    let got = alerts(&[&a, &b]);
    assert_eq!(got.len(), 1, "{got:#?}");
    let al = &got[0];
    assert_eq!(al.source.to_string(), "198.51.100.66");
    assert_eq!(al.config.name(), "1h:9");
    assert_eq!(al.failed_pairs, 10);
    assert_eq!(al.alert_seq, 1);
    assert!(!al.estimated);
    assert_eq!(al.sensors, ["seg-a", "seg-b"]);
    assert_eq!(al.distinct_hosts, 10);
    assert_eq!(al.last_failure_ns, T0 + 9 * 300 * S);
    assert_eq!(al.first_failure_ns, T0);
    // The alert line carries the scope and the contributing sensors.
    let line = slowscan::fleet::alert_json(
        &al.to_alert(),
        &slowscan::engine::Observer {
            name: "seg-b".into(),
            interface: Some("mirror0".into()),
        },
        slowscan::fleet::Scope::Fleet,
        Some(&al.sensors),
    );
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["slowscan"]["scope"], "fleet");
    assert_eq!(
        v["slowscan"]["sensors"],
        serde_json::json!(["seg-a", "seg-b"])
    );
    assert_eq!(v["observer"]["name"], "seg-b");
    assert_eq!(v["observer"]["ingress"]["interface"]["name"], "mirror0");
    assert_eq!(v["slowscan"]["failed_pairs"], 10);
    let (sa, sb) = (a.status(), b.status());
    assert_eq!(sa.alerts + sb.alerts, 1);
    assert_eq!(sa.dropped + sb.dropped, 0);
    assert!(!sa.degraded && !sb.degraded);
    assert_eq!(sa.pushed + sb.pushed, 12 + 8 + 16);
}

/// A tiny deterministic generator (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn v4(a: [u8; 4]) -> [u8; 16] {
    let mut x = [0u8; 16];
    x[..4].copy_from_slice(&a);
    x
}

/// The store applies the engine's own rules: the same failures give the
/// same alerts (detector, count, alert_seq), first crossings, doublings,
/// re-arming as the sliding windows move on, and the cross-detector rule
/// (R6, R8). One sensor, no dedup (its windows are then exactly the
/// engine's).
#[test]
fn store_raises_the_engines_alerts() {
    if !redis_present("store_raises_the_engines_alerts") {
        return;
    }
    let dets = vec![
        DetectorConfig {
            window: Window::Sliding(600 * S as u64),
            threshold: 4,
        },
        DetectorConfig {
            window: Window::Sliding(HOUR_NS),
            threshold: 9,
        },
        DetectorConfig {
            window: Window::Sliding(3 * HOUR_NS),
            threshold: 12,
        },
    ];
    let mut engine = Engine::new(EngineConfig {
        handshake_timeout_ns: S as u64,
        detectors: dets.clone(),
        services: None,
        export_failures: true,
        ..Default::default()
    });
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let sources: Vec<[u8; 4]> = (0..6).map(|i| [198, 51, 100, 60 + i]).collect();
    let mut t = T0 as u64;
    let mut local = Vec::new();
    let mut seq = 1u32;
    for _ in 0..1500 {
        t += (1 + rng.below(40)) * S as u64;
        let src = sources[rng.below(sources.len() as u64) as usize];
        // A pool small enough for repeats, large enough for doublings.
        let dst = [203, 0, 113, 1 + rng.below(30) as u8];
        let port = [22u16, 80, 443][rng.below(3) as usize];
        seq = seq.wrapping_add(7919);
        let r = PacketRecord {
            ts_ns: t,
            src_addr: v4(src),
            dst_addr: v4(dst),
            seq,
            src_port: 40000 + rng.below(20000) as u16,
            dst_port: port,
            family: AF_INET,
            tcp_flags: 0x02,
            ..Default::default()
        };
        engine.process(&r, &mut local);
    }
    engine.advance_to(t + 10 * S as u64, &mut local);
    engine.finish(&mut local);
    let mut failures = Vec::new();
    engine.drain_failures(&mut failures);
    assert!(failures.len() > 1000);
    assert!(
        local.len() > 10,
        "the stream must raise alerts: {}",
        local.len()
    );

    let cluster = RedisCluster::start(3, 0);
    let mut cfg = config(&cluster.url(), "solo", &dets);
    cfg.dedup_ns = 0;
    let fleet = Fleet::start(cfg).unwrap();
    // Pushed in slices, as a sensor does tick by tick.
    for chunk in failures.chunks(7) {
        fleet.push_all(&mut chunk.to_vec());
        fleet.flush(Duration::from_secs(30));
    }
    let got = alerts(&[&fleet]);
    let key = |src: IpAddr, det: usize, n: u32, seq: u32, t: i64| (src, t, det, n, seq);
    let mut want: Vec<_> = local
        .iter()
        .map(|a| {
            key(
                a.source,
                a.detector,
                a.failed_pairs,
                a.alert_seq,
                a.last_failure_ns,
            )
        })
        .collect();
    let mut have: Vec<_> = got
        .iter()
        .map(|a| {
            key(
                a.source,
                a.detector,
                a.failed_pairs,
                a.alert_seq,
                a.last_failure_ns,
            )
        })
        .collect();
    want.sort();
    have.sort();
    assert_eq!(have, want);
    assert_eq!(
        fleet.status().withheld,
        engine.stats().alerts_suppressed,
        "cross-detector rule"
    );
    assert!(engine.stats().alerts_suppressed > 0);
}

/// Past the exact cap (128 pairs) a source's pairs go into time-bucketed
/// HyperLogLogs: the crossings up to the cap are exact, the next doubling
/// is an estimate and says so, and the source's pair set shrinks to a sample.
#[test]
fn beyond_the_cap_counts_are_estimated() {
    if !redis_present("beyond_the_cap_counts_are_estimated") {
        return;
    }
    let cluster = RedisCluster::start(3, 0);
    let dets = [DetectorConfig {
        window: Window::Sliding(HOUR_NS),
        threshold: 9,
    }];
    let f = sensor(&cluster.url(), "solo", &dets);
    for i in 0..400i64 {
        f.push(failure(
            "198.51.100.70",
            &format!("203.0.113.{}", i % 200),
            1000 + (i / 200) as u16,
            T0 + i * S,
        ));
        // Ten a tick: beyond the cap a push is evaluated once, at its end.
        if i % 10 == 9 {
            f.flush(Duration::from_secs(10));
        }
    }
    let mut got = alerts(&[&f]);
    got.sort_by_key(|a| a.alert_seq);
    let counts: Vec<(u32, bool)> = got.iter().map(|a| (a.failed_pairs, a.estimated)).collect();
    assert_eq!(
        &counts[..4],
        &[(10, false), (20, false), (40, false), (80, false)]
    );
    assert!(counts.len() >= 5, "{counts:?}");
    let (n, est) = counts[4];
    assert!(est, "{counts:?}");
    assert!((150..=190).contains(&n), "{counts:?}");
    assert!(got[4].targets.len() <= 32);
    let port = cluster.master_of("ss:{198.51.100.70}:p");
    let card = slowscan_tests::redis::cli(port, &["zcard", "ss:{198.51.100.70}:p"]);
    assert_eq!(card.trim(), "32");
}

/// The store stopped: pushes fail, the sensor is degraded (it writes its
/// own alerts meanwhile), the queue holds failures up to its capacity and
/// counts the newer ones as dropped. The store back: the queue is
/// pushed, a crossing made while it was away alerts, nothing is pushed twice.
#[test]
fn store_stopped_then_back() {
    if !redis_present("store_stopped_then_back") {
        return;
    }
    let mut cluster = RedisCluster::start(3, 0);
    let mut cfg = config(&cluster.url(), "seg-a", &ladder());
    cfg.queue_capacity = 1000;
    let a = Fleet::start(cfg).unwrap();
    for i in 0..100 {
        a.push(failure(
            "198.51.100.30",
            &format!("203.0.113.{}", i % 5),
            80 + (i / 5) as u16,
            T0 + i as i64 * S,
        ));
    }
    assert!(a.flush(Duration::from_secs(30)));
    let before = a.status();
    assert_eq!(before.pushed, 100);
    let mut early = Vec::new();
    a.drain_alerts(&mut early);
    assert!(!early.is_empty());

    cluster.stop_all();
    // First a scan of ten hosts: a crossing made during the outage.
    for i in 0..10 {
        a.push(failure(
            "198.51.100.32",
            &format!("203.0.113.{}", 100 + i),
            22,
            T0 + 300 * S + i as i64 * S,
        ));
    }
    // 2990 more while the store is away: past 1000 held, new ones are dropped.
    for i in 0..2990 {
        a.push(failure(
            "198.51.100.31",
            &format!("203.0.113.{}", i % 200),
            9000 + (i / 200) as u16,
            T0 + 400 * S + i as i64 * S / 100,
        ));
    }
    let end = Instant::now() + Duration::from_secs(20);
    while !(a.degraded() && a.status().store_errors > before.store_errors) {
        assert!(Instant::now() < end, "{:?}", a.status());
        std::thread::sleep(Duration::from_millis(20));
    }
    let away = a.status();
    assert!(away.degraded);
    assert_eq!(away.queued, 1000, "{away:?}");
    assert_eq!(away.dropped, 2000, "{away:?}");
    assert!(!a.flush(Duration::from_millis(500)));

    cluster.restart_all();
    cluster.wait_ok(Duration::from_secs(30));
    assert!(a.flush(Duration::from_secs(60)), "{:?}", a.status());
    let back = a.status();
    assert_eq!(back.pushed, 100 + 1000, "{back:?}");
    assert_eq!(back.queued, 0);
    assert!(!back.degraded, "{back:?}");
    let got = alerts(&[&a]);
    let srcs: Vec<String> = got.iter().map(|x| x.source.to_string()).collect();
    assert!(srcs.contains(&"198.51.100.32".to_string()), "{srcs:?}");
    // The data pushed before the stop was kept (append-only file): the
    // first source does not alert again.
    assert!(!srcs.contains(&"198.51.100.30".to_string()), "{srcs:?}");
}

/// A master killed (SIGKILL) while two sensors push and claim: its replica
/// takes over, the sensors follow, and every crossing of every source — the
/// first (count > 9) and each doubling, 4 per source — is alerted exactly
/// once fleet-wide: none lost, none twice. Sources are staggered, so that
/// some cross a level in every round, the kill's too: pushes that claimed a
/// crossing are in flight (unreplicated, or their reply lost) when the
/// master dies, and their retries must hand the claim back, once.
#[test]
fn failover_under_load() {
    if !redis_present("failover_under_load") {
        return;
    }
    let mut cluster = RedisCluster::start(3, 1);
    let dets = [DetectorConfig {
        window: Window::Sliding(HOUR_NS),
        threshold: 9,
    }];
    let a = sensor(&cluster.url(), "seg-a", &dets);
    let b = sensor(&cluster.url(), "seg-b", &dets);
    const SOURCES: u32 = 300;
    const STAGGER: u32 = 20;
    // 128 distinct pairs a source (the exact cap): crossings at 10, 20, 40
    // and 80 — or above, when the sensors' retries reorder its failures and
    // the count jumps past a level — and never a fifth (160).
    const PAIRS: u32 = 128;
    const KILL_ROUND: u32 = 45;
    let src = |s: u32| format!("2001:db8::5:{s:x}");
    let victim = cluster.master_of(&format!("ss:{{{}}}:p", src(0)));
    // Gossip may not list a fresh cluster's replicas at once.
    let replica = (0..100)
        .find_map(|_| {
            let r = cluster.replicas_of(victim);
            if r.is_empty() {
                std::thread::sleep(Duration::from_millis(100));
            }
            r.first().copied()
        })
        .expect("the victim's replica: CLUSTER NODES listed none for 10 s");
    let on_victim: Vec<bool> = (0..SOURCES)
        .map(|s| cluster.master_of(&format!("ss:{{{}}}:p", src(s))) == victim)
        .collect();
    // Source s pushes its pair k in round s % STAGGER + k, alternately
    // through each sensor; 20 s of traffic time a round (all in the hour).
    for round in 0..STAGGER + PAIRS {
        for s in 0..SOURCES {
            let Some(k) = round.checked_sub(s % STAGGER).filter(|&k| k < PAIRS) else {
                continue;
            };
            let who = if (s + k) % 2 == 0 { &a } else { &b };
            who.push(failure(
                &src(s),
                &format!("2001:db8:1::{:x}", k + 1),
                443,
                T0 + i64::from(round) * 20 * S + i64::from(s) * 1000,
            ));
        }
        // The replica stalls (longer than a WAIT): the master's pushes, and
        // the claims they made, go unconfirmed and are pushed again; the
        // retries hand the claims back once the replica has caught up. It
        // stalls again until the kill, so that it takes over with only what
        // reached it: the rest is pushed again, on it.
        if round == KILL_ROUND - 30 || round == KILL_ROUND - 10 {
            cluster.pause(replica);
        }
        if round == KILL_ROUND - 14 {
            cluster.resume(replica);
        }
        if round == KILL_ROUND {
            cluster.kill(victim);
            cluster.resume(replica);
        }
        std::thread::sleep(Duration::from_millis(40));
    }
    let got = alerts(&[&a, &b]);
    let mut per_source: BTreeMap<IpAddr, Vec<(u32, u32)>> = BTreeMap::new();
    for al in &got {
        per_source
            .entry(al.source)
            .or_default()
            .push((al.alert_seq, al.failed_pairs));
    }
    assert_eq!(per_source.len(), SOURCES as usize, "sources never alerted");
    for (source, v) in &mut per_source {
        v.sort();
        let seqs: Vec<u32> = v.iter().map(|x| x.0).collect();
        assert_eq!(
            seqs,
            [1, 2, 3, 4],
            "{source}: a crossing lost or alerted twice: {v:?}"
        );
        // Each level is the first count past the threshold, then doublings.
        assert!((10..20).contains(&v[0].1), "{source}: {v:?}");
        for w in v.windows(2) {
            assert!(
                w[1].1 >= 2 * w[0].1 && w[1].1 < 4 * w[0].1,
                "{source}: {v:?}"
            );
        }
    }
    // The victim's sources crossed levels on both sides of the kill.
    let victim_sources = on_victim.iter().filter(|&&x| x).count();
    assert!(victim_sources > 50, "{victim_sources}");
    let kill_ns = T0 + i64::from(KILL_ROUND) * 20 * S;
    let victim_crossings = |after: bool| {
        got.iter()
            .filter(|al| {
                let s = (0..SOURCES)
                    .find(|&s| src(s) == al.source.to_string())
                    .unwrap();
                on_victim[s as usize] && (al.last_failure_ns > kill_ns) == after
            })
            .count()
    };
    assert!(victim_crossings(false) > 0 && victim_crossings(true) > 0);
    let (sa, sb) = (a.status(), b.status());
    assert!(
        sa.store_errors + sb.store_errors > 0,
        "the kill was noticed"
    );
    assert_eq!(sa.dropped + sb.dropped, 0);
    assert_eq!(sa.pushed + sb.pushed, u64::from(SOURCES * PAIRS));
    assert_eq!(sa.alerts + sb.alerts, u64::from(SOURCES) * 4);
    assert!(!cluster.master_ports().contains(&victim));
    // No acknowledged failure was lost: the store holds every pair of every
    // source (what the replica lacked at the kill was pushed again).
    for s in 0..SOURCES {
        let key = format!("ss:{{{}}}:p", src(s));
        let card = slowscan_tests::redis::cli(cluster.master_of(&key), &["zcard", &key]);
        assert_eq!(card.trim(), PAIRS.to_string(), "{key}");
    }
    let replayed = got.iter().filter(|a| a.replayed).count();
    assert!(replayed > 0, "no claim was handed back by a retried push");
}

/// On a master with replicas a push counts as done only once a replica
/// has it (WAIT), from the first push on: with every replica stalled, a
/// push stays unconfirmed (and is pushed again, changing nothing); the
/// replicas back, it is done, and its claim handed back once.
#[test]
fn pushes_wait_for_a_replica() {
    if !redis_present("pushes_wait_for_a_replica") {
        return;
    }
    let mut cluster = RedisCluster::start(3, 1);
    let dets = [DetectorConfig {
        window: Window::Sliding(HOUR_NS),
        threshold: 9,
    }];
    let a = sensor(&cluster.url(), "seg-a", &dets);
    let replicas: Vec<u16> = cluster
        .master_ports()
        .iter()
        .flat_map(|&m| cluster.replicas_of(m))
        .collect();
    assert_eq!(replicas.len(), 3);
    for &r in &replicas {
        cluster.pause(r);
    }
    for i in 0..10i64 {
        a.push(failure(
            "198.51.100.50",
            &format!("203.0.113.{}", 1 + i),
            22,
            T0 + i * S,
        ));
    }
    let unconfirmed = !a.flush(Duration::from_secs(2));
    for &r in &replicas {
        cluster.resume(r);
    }
    assert!(unconfirmed, "pushed without a replica: {:?}", a.status());
    let got = alerts(&[&a]);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].replayed, "{got:?}");
    assert_eq!((got[0].failed_pairs, got[0].alert_seq), (10, 1));
    assert_eq!(a.status().pushed, 10);
}

/// A push repeated with the same push id and the retry flag (its reply was
/// lost, or a replica never confirmed it) changes no count and hands back
/// the claim the first try made, marked replayed — even after another push
/// crossed the next level — and a plain push with a new id claims nothing
/// already claimed. Straight FCALLs on a real server.
#[test]
fn repeated_push_changes_nothing_and_replays_its_claim() {
    if !redis_present("repeated_push_changes_nothing_and_replays_its_claim") {
        return;
    }
    use redis::{Commands, Value};
    let server = RedisCluster::single(&[]);
    let port = server.nodes[0].port;
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    let mut c = client.get_connection().unwrap();
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(slowscan::fleet::LIBRARY)
        .query(&mut c)
        .unwrap();
    let key = "ss:{198.51.100.90}:";
    let t0 = T0 / 1_000_000;
    // FCALL slowscan_push_v3 1 PREFIX SENSOR PUSH RETRY SLACK CAP DETECTORS RESOLVE ADDRS (PAIR T)…
    let push = |c: &mut redis::Connection, id: &str, retry: bool, hosts: std::ops::Range<u8>| {
        let mut cmd = redis::cmd("FCALL");
        cmd.arg(slowscan::fleet::FUNCTION)
            .arg(1)
            .arg(key)
            .arg("seg-a")
            .arg(id)
            .arg(u8::from(retry))
            .arg(0)
            .arg(128)
            .arg("3600000 9 1h:9")
            .arg(1)
            .arg("");
        for h in hosts {
            cmd.arg(&[203u8, 0, 113, h, 0, 22][..])
                .arg(t0 + i64::from(h) * 1000);
        }
        cmd.query::<Value>(c).unwrap()
    };
    // (alert_seq, count, replayed) of each claim in a reply.
    let claims = |v: &Value| -> Vec<(i64, i64, i64)> {
        let Value::Array(items) = v else {
            panic!("{v:?}")
        };
        let int = |x: &Value| match x {
            Value::Int(i) => *i,
            x => panic!("{x:?}"),
        };
        items[1..]
            .iter()
            .map(|c| match c {
                Value::Array(c) => (int(&c[2]), int(&c[1]), int(&c[10])),
                c => panic!("{c:?}"),
            })
            .collect()
    };
    let state = |c: &mut redis::Connection| {
        let pairs: Vec<(Vec<u8>, i64)> = c.zrange_withscores(format!("{key}p"), 0, -1).unwrap();
        let hash: BTreeMap<String, String> = c.hgetall(format!("{key}s")).unwrap();
        (pairs, hash)
    };

    assert_eq!(claims(&push(&mut c, "seg-a#1:1", false, 1..10)), []);
    let first = push(&mut c, "seg-a#1:2", false, 10..12);
    assert_eq!(claims(&first), [(1, 10, 0)]);
    let before = state(&mut c);
    assert_eq!(before.0.len(), 11);
    // The same push again, flagged a retry: nothing changes, its claim
    // comes back, replayed.
    for _ in 0..2 {
        let again = push(&mut c, "seg-a#1:2", true, 10..12);
        assert_eq!(claims(&again), [(1, 10, 1)]);
        assert_eq!(state(&mut c), before);
    }
    // Another push crosses the next level (20); the first push's retry
    // still hands back its own claim (count 10, alert_seq 1), not the latest.
    let next = push(&mut c, "seg-b#1:1", false, 12..21);
    assert_eq!(claims(&next), [(2, 20, 0)]);
    let after = state(&mut c);
    assert_eq!(
        claims(&push(&mut c, "seg-a#1:2", true, 10..12)),
        [(1, 10, 1)]
    );
    assert_eq!(
        claims(&push(&mut c, "seg-b#1:1", true, 12..21)),
        [(2, 20, 1)]
    );
    assert_eq!(state(&mut c), after);
    // The same failures under a new id (a sensor's duplicate, not a retry):
    // counted already, so no claim.
    assert_eq!(claims(&push(&mut c, "seg-c#1:1", false, 1..21)), []);
    assert_eq!(state(&mut c).0, after.0);
}

/// One master of three killed, no replica (`cluster-require-full-coverage
/// no`, so the other shards keep serving): sources on the other shards are
/// pushed and alert at once; the dead shard's wait in the queue, the sensor
/// is degraded meanwhile; the master back, they are pushed and alert.
#[test]
fn one_shard_down_the_others_go_on() {
    if !redis_present("one_shard_down_the_others_go_on") {
        return;
    }
    let (mut cluster, _, a, x, y, down) = one_master_down();
    for i in 0..10i64 {
        for s in [x, y.as_str()] {
            a.push(failure(s, &format!("203.0.113.{}", 1 + i), 22, T0 + i * S));
        }
    }
    let mut got = Vec::new();
    let end = Instant::now() + Duration::from_secs(30);
    while got.is_empty() {
        assert!(Instant::now() < end, "{:?}", a.status());
        std::thread::sleep(Duration::from_millis(50));
        a.drain_alerts(&mut got);
    }
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].source.to_string(), y);
    let st = a.status();
    assert!(st.degraded, "{st:?}");
    assert_eq!(st.queued, 10, "{st:?}");
    assert_eq!(st.pushed, 10, "{st:?}");

    cluster.restart(down);
    cluster.wait_ok(Duration::from_secs(30));
    let got = alerts(&[&a]);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].source.to_string(), x);
    let st = a.status();
    assert_eq!((st.pushed, st.queued, st.dropped), (20, 0, 0), "{st:?}");
    assert!(!st.degraded, "{st:?}");
}

/// Three masters without replicas (`cluster-require-full-coverage no`, so
/// the other shards keep serving), a sensor `seg-a` with one detector
/// (1h:9), and the master of source `x` killed: (cluster, detectors,
/// sensor, x, a source `y` on a healthy shard, the dead master's port).
fn one_master_down() -> (
    RedisCluster,
    [DetectorConfig; 1],
    Fleet,
    &'static str,
    String,
    u16,
) {
    let mut cluster = RedisCluster::start_with(3, 0, &["--cluster-require-full-coverage", "no"]);
    let dets = [DetectorConfig {
        window: Window::Sliding(HOUR_NS),
        threshold: 9,
    }];
    let fleet = sensor(&cluster.url(), "seg-a", &dets);
    let key = |s: &str| format!("ss:{{{s}}}:p");
    let x = "198.51.100.80";
    let down = cluster.master_of(&key(x));
    let y = (81..200)
        .map(|i| format!("198.51.100.{i}"))
        .find(|y| cluster.master_of(&key(y)) != down)
        .unwrap();
    kill_and_wait_failed(&mut cluster, down);
    (cluster, dets, fleet, x, y, down)
}

/// Kills the master on `port` and waits until the others flag it failed
/// (cluster-node-timeout 1 s).
fn kill_and_wait_failed(cluster: &mut RedisCluster, port: u16) {
    cluster.kill(port);
    let end = Instant::now() + Duration::from_secs(20);
    let alive = cluster.nodes.iter().find(|n| n.running()).unwrap().port;
    while !slowscan_tests::redis::cli(alive, &["cluster", "nodes"])
        .lines()
        .any(|l| l.contains(&format!(":{port}@")) && l.contains("fail"))
    {
        assert!(Instant::now() < end, "the kill is not noticed");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A SYN never followed up (a failed attempt once the handshake timeout
/// passed).
fn syn(src: &str, dst: [u8; 4], port: u16, t: i64) -> PacketRecord {
    let src: std::net::Ipv4Addr = src.parse().unwrap();
    PacketRecord {
        ts_ns: t as u64,
        src_addr: v4(src.octets()),
        dst_addr: v4(dst),
        seq: 1000 + u32::from(dst[3]),
        src_port: 40_000,
        dst_port: port,
        family: AF_INET,
        tcp_flags: 0x02,
        ..Default::default()
    }
}

/// The sensor's rule for its own alerts (`HeldAlerts`, as `slowscan run`
/// applies it every tick), one master of three down: the sensor is
/// degraded, yet a source on a healthy shard alerts once, from the fleet
/// (its failures were counted there: its local alert is dropped), and a
/// source on the dead shard alerts from the sensor's own counts (its
/// failures cannot be counted). The master back, x's backlog is counted
/// and the fleet's crossing of x is claimed then (late pushes): the fleet's
/// view, which may hold other sensors' failures, beside the local one.
#[test]
fn one_shard_down_local_alerts_only_where_the_store_cannot_count() {
    let name = "one_shard_down_local_alerts_only_where_the_store_cannot_count";
    if !redis_present(name) {
        return;
    }
    let (mut cluster, dets, fleet, x, y, down) = one_master_down();

    let mut engine = Engine::new(EngineConfig {
        handshake_timeout_ns: S as u64,
        detectors: dets.to_vec(),
        services: None,
        export_failures: true,
        ..Default::default()
    });
    let mut decided = Vec::new();
    for i in 0..10u8 {
        for src in [x, y.as_str()] {
            engine.process(
                &syn(src, [203, 0, 113, 1 + i], 22, T0 + i64::from(i) * S),
                &mut decided,
            );
        }
    }
    engine.advance_to((T0 + 12 * S) as u64, &mut decided);
    assert_eq!(
        decided.len(),
        2,
        "each source crosses on the sensor's own counts"
    );
    let mut failures = Vec::new();
    engine.drain_failures(&mut failures);
    assert_eq!(failures.len(), 20);

    // What the sensor does each tick: push, write the fleet's claims, hold
    // its own alerts and write those the store cannot count.
    let mut held = slowscan::fleet::HeldAlerts::new(Duration::from_secs(30));
    let (mut fleet_scope, mut sensor_scope) = (Vec::new(), Vec::new());
    fleet.push_all(&mut failures);
    held.hold(decided.drain(..));
    let end = Instant::now() + Duration::from_secs(30);
    while !held.is_empty() {
        assert!(Instant::now() < end, "still held: {:?}", fleet.status());
        std::thread::sleep(Duration::from_millis(50));
        fleet.drain_alerts(&mut fleet_scope);
        held.settle(&fleet, &mut sensor_scope);
    }
    assert!(fleet.degraded(), "one shard is down: {:?}", fleet.status());
    // The fleet's claim of y may come back just after its count is known.
    let end = Instant::now() + Duration::from_secs(10);
    while fleet_scope.is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
        fleet.drain_alerts(&mut fleet_scope);
    }
    let sources = |v: &[FleetAlert]| v.iter().map(|a| a.source.to_string()).collect::<Vec<_>>();
    assert_eq!(sources(&fleet_scope), [y.as_str()], "fleet scope");
    let local: Vec<String> = sensor_scope.iter().map(|a| a.source.to_string()).collect();
    assert_eq!(local, [x], "sensor scope");
    assert_eq!(
        fleet.confirmation(x.parse().unwrap()),
        slowscan::fleet::Confirmation::Unreachable
    );

    // The master back: x's failures are counted, nothing more is held.
    cluster.restart(down);
    cluster.wait_ok(Duration::from_secs(30));
    assert!(fleet.flush(Duration::from_secs(60)), "{:?}", fleet.status());
    assert_eq!(
        fleet.confirmation(x.parse().unwrap()),
        slowscan::fleet::Confirmation::Counted
    );
    let mut late = Vec::new();
    fleet.drain_alerts(&mut late);
    assert_eq!(sources(&late), [x], "{late:?}");
}

/// One Redis server without cluster support, with an ACL user: detected
/// as a single node; bad credentials are one clear error; the right ones
/// work.
#[test]
fn single_node_with_acl_user() {
    if !redis_present("single_node_with_acl_user") {
        return;
    }
    let server = RedisCluster::single(&[
        "--user", "default", "off", "--user", "sensor", "on", ">s3cret", "~ss:*", "+@all",
    ]);
    let port = server.nodes[0].port;
    let bad = FleetConfig::new(
        FleetUrl::parse(&format!("redis://sensor:wrong@127.0.0.1:{port}")).unwrap(),
        "seg-a",
        &ladder(),
    )
    .unwrap();
    let e = Fleet::start(bad)
        .err()
        .expect("bad credentials are refused");
    let e = e.to_string();
    assert!(e.contains("refused the credentials"), "{e}");
    assert!(!e.contains("wrong"), "the password is not shown: {e}");
    assert!(!e.contains('\n'));

    let url = format!("redis://sensor:s3cret@127.0.0.1:{port}");
    let a = sensor(&url, "seg-a", &ladder());
    let b = sensor(&url, "seg-b", &ladder());
    assert_eq!(a.status().mode, Some(StoreMode::Single));
    for i in 0..12i64 {
        let who = if i % 2 == 0 { &a } else { &b };
        who.push(failure(
            "198.51.100.66",
            "203.0.113.5",
            1 + i as u16,
            T0 + i * 60 * S,
        ));
        who.flush(Duration::from_secs(10));
    }
    let got = alerts(&[&a, &b]);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].shape, slowscan::engine::Shape::Vertical);
    assert_eq!(got[0].sensors, ["seg-a", "seg-b"]);
}

/// A 3-master cluster with an ACL user limited to the fleet's keys, its
/// user and password in the URL (the seeds after the `@`): a wrong password
/// is refused in one line that does not show it; with the right one every
/// master's connection is that user's, the library is loaded on every
/// master, and split scans of sources spread over the shards alert once
/// each. (The servers' `default` user stays open for the test's own
/// `redis-cli`.)
#[test]
fn cluster_with_acl_user() {
    if !redis_present("cluster_with_acl_user") {
        return;
    }
    let cluster = RedisCluster::start_with(
        3,
        0,
        &["--user", "sensor", "on", ">s3cret", "~ss:*", "+@all"],
    );
    let seeds: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect();
    let url = |password: &str| format!("redis://sensor:{password}@{}", seeds.join(","));
    let bad =
        FleetConfig::new(FleetUrl::parse(&url("wrong")).unwrap(), "seg-a", &ladder()).unwrap();
    let e = Fleet::start(bad)
        .err()
        .expect("bad credentials are refused")
        .to_string();
    assert!(e.contains("refused the credentials"), "{e}");
    assert!(!e.contains("wrong") && !e.contains('\n'), "{e}");

    let a = sensor(&url("s3cret"), "seg-a", &ladder());
    let b = sensor(&url("s3cret"), "seg-b", &ladder());
    let st = a.status();
    assert_eq!(
        (st.mode, st.masters, st.connected),
        (Some(StoreMode::Cluster), 3, 3)
    );
    // Sources on every shard.
    let key = |s: &str| format!("ss:{{{s}}}:p");
    let mut sources: Vec<String> = Vec::new();
    for m in cluster.master_ports() {
        let s = (1..=254)
            .map(|i| format!("198.51.100.{i}"))
            .find(|s| cluster.master_of(&key(s)) == m)
            .unwrap();
        sources.push(s);
    }
    for i in 0..12i64 {
        let who = if i % 2 == 0 { &a } else { &b };
        for src in &sources {
            who.push(failure(
                src,
                &format!("203.0.113.{}", 10 + i),
                22,
                T0 + i * 60 * S,
            ));
        }
        who.flush(Duration::from_secs(10));
    }
    let got = alerts(&[&a, &b]);
    let mut alerted: Vec<String> = got.iter().map(|x| x.source.to_string()).collect();
    alerted.sort();
    sources.sort();
    assert_eq!(alerted, sources, "{got:#?}");
    assert!(
        got.iter().all(|x| x.sensors == ["seg-a", "seg-b"]),
        "{got:#?}"
    );
    for m in cluster.master_ports() {
        let clients = slowscan_tests::redis::cli(m, &["client", "list"]);
        assert!(clients.contains("user=sensor"), "master {m}: {clients}");
        let libs = slowscan_tests::redis::cli(m, &["function", "list"]);
        assert!(libs.contains("slowscan_v3"), "master {m}: {libs}");
    }
}

/// `rediss://`: the store over TLS (a self-signed certificate, so
/// `#insecure`); without TLS the same port gives no answer the client takes.
#[test]
fn single_node_over_tls() {
    if !tools_present("single_node_over_tls", &["redis-server", "openssl"]) {
        return;
    }
    let server = RedisCluster::single_tls();
    let port = server.nodes[0].port;
    let url = format!("rediss://127.0.0.1:{port}#insecure");
    let a = sensor(&url, "seg-a", &ladder());
    let b = sensor(&url, "seg-b", &ladder());
    assert_eq!(a.status().mode, Some(StoreMode::Single));
    for i in 0..12i64 {
        let who = if i % 2 == 0 { &a } else { &b };
        who.push(failure(
            "2001:db8::66",
            &format!("2001:db8:1::{}", i + 1),
            443,
            T0 + i * 60 * S,
        ));
        who.flush(Duration::from_secs(10));
    }
    let got = alerts(&[&a, &b]);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].failed_pairs, 10);
    assert_eq!(got[0].shape, slowscan::engine::Shape::Horizontal);

    // Plain redis:// to the TLS port: never connected, degraded, not fatal.
    let plain = sensor(&format!("redis://127.0.0.1:{port}"), "seg-c", &ladder());
    plain.push(failure("2001:db8::67", "2001:db8:1::1", 443, T0));
    assert!(!plain.flush(Duration::from_secs(2)));
    assert!(plain.degraded());
    assert_eq!(plain.status().connected, 0);
}

/// A failure counted under `identity` (R9), from `src`.
fn failure_as(identity: Identity, src: &str, dst: &str, port: u16, t: i64) -> CountedFailure {
    CountedFailure {
        source: src.parse().unwrap(),
        identity,
        destination: dst.parse().unwrap(),
        port,
        at_ns: t,
    }
}

const HOST_MAC: Identity = Identity::Mac([0x02, 0x10, 0x00, 0x00, 0x00, 0x05]);

/// Issue 16, item 4: a host with rotating addresses that sensor lan-a sees
/// on-link (under its MAC) and sensor seg-b sees routed (under its address)
/// is one identity fleet-wide. lan-a counts 6 pairs from two addresses (it
/// publishes them as aliases of the MAC); seg-b counts 6 from the second
/// address, 2 of them the same pairs lan-a saw: the store counts seg-b's
/// under the MAC, the union is 10 > 9, and one alert comes, under the MAC,
/// naming both sensors and both addresses. Neither sensor alone, nor the
/// address alone, crosses. seg-b's own failures are counted (its local
/// alerts of that address would be dropped).
#[test]
fn rotating_host_on_link_and_routed_alerts_once_under_its_mac() {
    if !redis_present("rotating_host_on_link_and_routed_alerts_once_under_its_mac") {
        return;
    }
    let cluster = RedisCluster::start(3, 0);
    let a = sensor(&cluster.url(), "lan-a", &ladder());
    let b = sensor(&cluster.url(), "seg-b", &ladder());
    let (a1, a2) = ("2001:db8:10:1::a1", "2001:db8:10:1::a2");
    for i in 0..6i64 {
        let from = if i < 3 { a1 } else { a2 };
        let dst = format!("2001:db8:20::{}", 10 + i);
        a.push(failure_as(HOST_MAC, from, &dst, 22, T0 + i * 300 * S));
    }
    assert!(a.flush(Duration::from_secs(30)), "{:?}", a.status());
    assert!(alerts(&[&a]).is_empty());
    // The alias is in the store, on the address's slot.
    let key = format!("ss:{{{a2}}}:i");
    let port = cluster.master_of(&key);
    assert_eq!(
        slowscan_tests::redis::cli(port, &["get", &key]).trim(),
        "02-10-00-00-00-05"
    );
    for i in 4..10i64 {
        let dst = format!("2001:db8:20::{}", 10 + i);
        b.push(failure(a2, &dst, 22, T0 + (i + 2) * 300 * S));
        b.flush(Duration::from_secs(30));
    }
    let got = alerts(&[&a, &b]);
    assert_eq!(got.len(), 1, "{got:#?}");
    let al = &got[0];
    assert_eq!(al.identity, HOST_MAC);
    assert_eq!(al.source.to_string(), a2);
    assert_eq!(al.config.name(), "1h:9");
    assert_eq!(al.failed_pairs, 10);
    assert_eq!(al.alert_seq, 1);
    assert_eq!(al.sensors, ["lan-a", "seg-b"]);
    assert_eq!(al.distinct_hosts, 10);
    assert_eq!(al.first_failure_ns, T0);
    let mut addrs: Vec<String> = al.addresses.iter().map(|x| x.to_string()).collect();
    assert_eq!(addrs[0], a2, "latest first");
    addrs.sort();
    assert_eq!(addrs, [a1, a2]);
    assert_eq!(al.addresses_total, 2);
    // Nothing was counted under the address itself.
    let s_key = format!("ss:{{{a2}}}:s");
    let port = cluster.master_of(&s_key);
    assert_eq!(
        slowscan_tests::redis::cli(port, &["exists", &s_key, &format!("ss:{{{a2}}}:p")]).trim(),
        "0"
    );
    // seg-b's failures (its identity: the address) are counted: a local
    // alert of it would be the fleet's.
    assert_eq!(
        b.confirmation(Identity::Address(a2.parse().unwrap())),
        slowscan::fleet::Confirmation::Counted
    );
    // The alert line names the MAC, as a local one would.
    let line = slowscan::fleet::alert_json(
        &al.to_alert(),
        &slowscan::engine::Observer {
            name: "seg-b".into(),
            interface: None,
        },
        slowscan::fleet::Scope::Fleet,
        Some(&al.sensors),
    );
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["source"]["mac"], "02-10-00-00-00-05");
    assert_eq!(v["source"]["ip"], a2);
    assert_eq!(v["slowscan"]["source"]["kind"], "mac");
    assert_eq!(v["slowscan"]["source"]["identity"], "02-10-00-00-00-05");
    assert_eq!(v["slowscan"]["source"]["addresses_count"], 2);
    assert_eq!(v["slowscan"]["scope"], "fleet");
    let (sa, sb) = (a.status(), b.status());
    assert_eq!(sa.alerts + sb.alerts, 1);
    assert_eq!(sa.pushed + sb.pushed, 12);
    assert_eq!(sa.dropped + sb.dropped, 0);
}

/// The order the docs promise: failures seg-b pushes from an address
/// before any sensor published it as an alias stay counted under the
/// address (5 pairs, no alert there); from the alias on, they count under
/// the MAC: lan-a's 6 and seg-b's later ones cross 9 with seg-b's 4th later
/// failure (counting the earlier 5 too, lan-a's 5th would have crossed):
/// one alert, under the MAC, and none under the address, which keeps its 5.
#[test]
fn routed_before_the_alias_stays_under_the_address() {
    if !redis_present("routed_before_the_alias_stays_under_the_address") {
        return;
    }
    let cluster = RedisCluster::start(3, 0);
    let a = sensor(&cluster.url(), "lan-a", &ladder());
    let b = sensor(&cluster.url(), "seg-b", &ladder());
    let a3 = "2001:db8:10:1::a3";
    let mut t = T0;
    let mut next = || {
        t += 60 * S;
        t
    };
    for i in 0..5 {
        b.push(failure(a3, &format!("2001:db8:30::{i}"), 22, next()));
    }
    assert!(b.flush(Duration::from_secs(30)));
    for i in 0..6 {
        a.push(failure_as(
            HOST_MAC,
            a3,
            &format!("2001:db8:40::{i}"),
            22,
            next(),
        ));
    }
    assert!(a.flush(Duration::from_secs(30)));
    for i in 5..10 {
        b.push(failure(a3, &format!("2001:db8:30::{i}"), 22, next()));
    }
    let got = alerts(&[&a, &b]);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].identity, HOST_MAC);
    assert_eq!(got[0].failed_pairs, 10);
    assert_eq!(got[0].last_failure_ns, T0 + 15 * 60 * S);
    assert_eq!(got[0].sensors, ["lan-a", "seg-b"]);
    let p_key = format!("ss:{{{a3}}}:p");
    let port = cluster.master_of(&p_key);
    assert_eq!(
        slowscan_tests::redis::cli(port, &["zcard", &p_key]).trim(),
        "5"
    );
}

/// A host whose temporary address changes every day probes one target every
/// 6 hours for 5 days, the probes alternating between a target on its own
/// LAN's segment (lan-a sees it on-link: under its MAC) and one on another
/// (seg-b sees it routed: under the day's address). Per address: 4 pairs;
/// per sensor: 10. Fleet-wide, the MAC's 20 cross 7d:18 once: one alert,
/// under the MAC, naming both sensors and the five addresses — and none
/// under any address.
#[test]
fn daily_rotating_host_alerts_once_fleet_wide() {
    if !redis_present("daily_rotating_host_alerts_once_fleet_wide") {
        return;
    }
    let cluster = RedisCluster::start(3, 0);
    let a = sensor(&cluster.url(), "lan-a", &ladder());
    let b = sensor(&cluster.url(), "seg-b", &ladder());
    const H6: i64 = 6 * 3600 * S;
    for k in 0..20i64 {
        let day = k / 4;
        let from = format!("2001:db8:10:1:{:x}::5", 0x100 + day);
        let t = T0 + k * H6;
        if k % 2 == 0 {
            a.push(failure_as(
                HOST_MAC,
                &from,
                &format!("2001:db8:10:1::{:x}", 0x1000 + k),
                445,
                t,
            ));
        } else {
            b.push(failure(
                &from,
                &format!("2001:db8:20::{:x}", 0x1000 + k),
                445,
                t,
            ));
        }
        a.flush(Duration::from_secs(30));
        b.flush(Duration::from_secs(30));
    }
    let got = alerts(&[&a, &b]);
    assert_eq!(got.len(), 1, "{got:#?}");
    let al = &got[0];
    assert_eq!(al.identity, HOST_MAC);
    assert_eq!(al.config.name(), "7d:18");
    assert_eq!(al.failed_pairs, 19);
    assert_eq!(al.sensors, ["lan-a", "seg-b"]);
    assert_eq!(al.addresses_total, 5);
    assert_eq!(al.addresses[0].to_string(), "2001:db8:10:1:104::5");
}

/// A live `slowscan follow-zeek` (the real binary) joined to the fleet,
/// following its own conn.log; SIGKILLed by its PID if the test ends
/// before it stopped.
struct Follower {
    child: std::process::Child,
    alerts: std::path::PathBuf,
    log: std::path::PathBuf,
}

const ZEEK_HEADER: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n\
#unset_field\t-\n#path\tconn\n#open\t2026-01-01-10-00-00\n#fields\tts\tuid\tid.orig_h\t\
id.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\tconn_state\thistory\n#types\ttime\t\
string\taddr\tport\taddr\tport\tenum\tstring\tinterval\tstring\tstring\n";

impl Follower {
    fn start(dir: &std::path::Path, name: &str, url: &str) -> Follower {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let (log, alerts) = (dir.join("conn.log"), dir.join("alerts.jsonl"));
        std::fs::write(&log, ZEEK_HEADER).unwrap();
        let stderr = std::fs::File::create(dir.join("stderr")).unwrap();
        let child = std::process::Command::new(slowscan_tests::slowscan_bin())
            .args(["follow-zeek", "--from-start", "--log"])
            .arg(&log)
            .args(["--detector", "1h:9", "--handshake-timeout", "1s"])
            .args(["--max-lateness", "1s", "--fleet", url])
            .args(["--sensor-name", name, "--name", &format!("fleet-{name}")])
            .arg("--alerts")
            .arg(&alerts)
            .env("SLOWSCAN_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        Follower { child, alerts, log }
    }

    /// Failed attempts (`S0`, history `S`) from `src` to `dsts`, port 22,
    /// written now.
    fn fail(&self, src: &str, dsts: impl IntoIterator<Item = String>) {
        use std::io::Write;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let mut text = String::new();
        for (i, dst) in dsts.into_iter().enumerate() {
            let sport = 40000 + i;
            text.push_str(&format!(
                "{}.{:06}\tC{sport}\t{src}\t{sport}\t{dst}\t22\ttcp\t-\t0.1\tS0\tS\n",
                now.as_secs(),
                now.subsec_micros()
            ));
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.log)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn alerts(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.alerts)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.alerts.with_file_name("stderr")).unwrap_or_default()
    }

    /// SIGTERM, then waits for a clean exit (its last push and alerts).
    fn stop(&mut self) {
        // SAFETY: our own child, by its PID.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "follower exited {status}: {}",
                    self.stderr()
                );
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the follower did not stop: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Inputs without packets join the fleet (docs/flows.md): two `slowscan
/// follow-zeek` processes, each following its own conn.log, with `--fleet`
/// and one 1h:9 detector. A scanner fails to 6 hosts in each log: neither
/// follower counts past 9, the fleet counts 12, and exactly one alert is
/// written, scope "fleet", naming both followers. A source failing to 10
/// hosts in one log crosses locally too: its local alert is dropped (the
/// store counted its failures) and the fleet's alert is the one written.
/// A source with 4 + 4 stays quiet.
#[test]
fn followers_split_scan_alerts_once_fleet_wide() {
    if !redis_present("followers_split_scan_alerts_once_fleet_wide") {
        return;
    }
    let cluster = RedisCluster::start(3, 0);
    let dir = slowscan_testkit::TempDir::new("fleet-followers");
    let mut a = Follower::start(&dir, "zeek-a", &cluster.url());
    let mut b = Follower::start(&dir, "zeek-b", &cluster.url());
    let (split, alone, quiet) = ("203.0.113.5", "203.0.113.77", "203.0.113.44");
    a.fail(split, (1..=6).map(|i| format!("10.1.0.{i}")));
    b.fail(split, (1..=6).map(|i| format!("10.2.0.{i}")));
    a.fail(alone, (1..=10).map(|i| format!("10.1.1.{i}")));
    a.fail(quiet, (1..=4).map(|i| format!("10.1.2.{i}")));
    b.fail(quiet, (1..=4).map(|i| format!("10.2.2.{i}")));
    let of = |all: &[serde_json::Value], src: &str| -> Vec<serde_json::Value> {
        all.iter()
            .filter(|v| v["source"]["ip"] == src)
            .cloned()
            .collect()
    };
    let start = Instant::now();
    loop {
        let all: Vec<_> = a.alerts().into_iter().chain(b.alerts()).collect();
        if !of(&all, split).is_empty() && !of(&all, alone).is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no fleet alert yet: {all:?}\nzeek-a: {}\nzeek-b: {}",
            a.stderr(),
            b.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    a.stop();
    b.stop();
    let (from_a, from_b) = (a.alerts(), b.alerts());
    let all: Vec<_> = from_a.iter().chain(&from_b).cloned().collect();
    let s = of(&all, split);
    assert_eq!(s.len(), 1, "split scan: {all:?}");
    assert_eq!(s[0]["slowscan"]["scope"], "fleet", "{s:?}");
    assert_eq!(s[0]["slowscan"]["failed_pairs"], 10, "{s:?}");
    let mut sensors: Vec<String> = s[0]["slowscan"]["sensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    sensors.sort();
    assert_eq!(sensors, ["zeek-a", "zeek-b"], "{s:?}");
    let l = of(&all, alone);
    assert_eq!(l.len(), 1, "one follower's scan: {all:?}");
    assert_eq!(l[0]["slowscan"]["scope"], "fleet", "{l:?}");
    assert_eq!(l[0]["slowscan"]["sensors"], serde_json::json!(["zeek-a"]));
    assert_eq!(
        of(&from_a, alone).len(),
        1,
        "written by the follower that saw it"
    );
    assert_eq!(l[0]["observer"]["name"], "zeek-a");
    assert!(of(&all, quiet).is_empty(), "4 + 4: {all:?}");
    assert!(a.stderr().contains("joined the fleet"), "{}", a.stderr());
}
