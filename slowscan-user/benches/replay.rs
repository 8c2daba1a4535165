//! Replay throughput: `slowscan replay FILE --report /dev/null --alerts
//! /dev/null` (the whole pipeline: capture reader, frame parser, engine with
//! the sensor's default detector, report) beside `tcpdump -r FILE -w
//! /dev/null` (libpcap's plain copy) on the same generated capture, in the
//! same run. Target: replay ≥ 0.5× tcpdump's packets/s.
//!
//! The capture (see `tests/replay_gen`) is ≥ 1M packets over 3 hours: mostly
//! data packets of established connections, failed SYNs with
//! retransmissions, one slow scanner. It is measured twice: whole frames
//! (≈ 0.8 KB a packet) and headers only (snaplen 96, as a sensor would record
//! for this method, R2), where per-packet costs dominate. Each command runs
//! three times after a warm-up; the best time counts.
//!
//! `cargo bench -p slowscan-user --bench replay`. Environment:
//! `SLOWSCAN_REPLAY_BENCH_PACKETS` (default 1,000,000),
//! `SLOWSCAN_REPLAY_BENCH_KEEP=DIR` keeps the captures there.
//! Without `--bench` (e.g. `cargo test --benches`) it runs a 20,000-packet smoke test.

#[path = "../tests/replay_gen/mod.rs"]
mod replay_gen;

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use replay_gen::{SCANNER, Traffic, write_capture};

const RUNS: usize = 3;

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let packets: u64 = match std::env::var("SLOWSCAN_REPLAY_BENCH_PACKETS") {
        Ok(v) => v
            .parse()
            .expect("SLOWSCAN_REPLAY_BENCH_PACKETS: a number of packets"),
        Err(_) if bench => 1_000_000,
        Err(_) => 20_000,
    };
    let keep = std::env::var_os("SLOWSCAN_REPLAY_BENCH_KEEP").map(PathBuf::from);
    let dir = keep.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("slowscan-replay-bench-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).expect("bench directory");
    if !bench {
        println!(
            "replay: smoke test (no --bench: small capture, maybe a debug build; figures are not meaningful)"
        );
    }
    let tcpdump = which("tcpdump");
    if tcpdump.is_none() {
        println!("notice: tcpdump not found on PATH; measuring slowscan replay alone");
    }
    let slowscan = Path::new(env!("CARGO_BIN_EXE_slowscan"));

    for (label, file, snaplen) in [
        ("whole frames", "bench-full.pcap", None),
        ("headers only, snaplen 96", "bench-snap96.pcap", Some(96)),
    ] {
        let path = dir.join(file);
        let t0 = Instant::now();
        let traffic = Traffic {
            packets,
            snaplen,
            ..Traffic::default()
        };
        let w = write_capture(&path, &traffic).expect("write the capture");
        println!(
            "replay/{label}: {} packets, {:.1} MB, {} connections, {} failed attempts, {} scan probes \
             (generated in {:.1} s)",
            w.packets,
            w.bytes as f64 / 1e6,
            w.connections,
            w.failed_attempts,
            w.scan_probes,
            t0.elapsed().as_secs_f64()
        );

        // Warm-up (page cache) and a check that the replay is a real one.
        let report = dir.join(format!("{file}.report.json"));
        let out = Command::new(slowscan)
            .arg("replay")
            .arg(&path)
            .args(["--alerts", "/dev/null", "--report"])
            .arg(&report)
            .env("SLOWSCAN_LOG", "warn")
            .output()
            .expect("run slowscan");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        assert_eq!(r["packets"], w.packets, "{r}");
        assert_eq!(r["established"], w.connections);
        assert_eq!(r["failed"], w.failed_attempts);
        let alerted = r["detectors"][0]["alerting_sources"].as_array().unwrap();
        assert!(
            alerted.contains(&SCANNER.to_string().into()),
            "the scanner is detected: {r}"
        );

        let replay_time = best(|| {
            let mut c = Command::new(slowscan);
            c.arg("replay")
                .arg(&path)
                .args(["--report", "/dev/null", "--alerts", "/dev/null"])
                .env("SLOWSCAN_LOG", "warn");
            c
        });
        let rate = |d: Duration| w.packets as f64 / d.as_secs_f64();
        println!(
            "replay/{label}: slowscan replay  {:>8.3} s  {:>12.0} packets/s  {:>7.1} MB/s",
            replay_time.as_secs_f64(),
            rate(replay_time),
            w.bytes as f64 / 1e6 / replay_time.as_secs_f64()
        );
        if let Some(tcpdump) = &tcpdump {
            let tcpdump_time = best(|| {
                let mut c = Command::new(tcpdump);
                c.arg("-r").arg(&path).args(["-w", "/dev/null"]);
                c
            });
            println!(
                "replay/{label}: tcpdump -r -w    {:>8.3} s  {:>12.0} packets/s  {:>7.1} MB/s",
                tcpdump_time.as_secs_f64(),
                rate(tcpdump_time),
                w.bytes as f64 / 1e6 / tcpdump_time.as_secs_f64()
            );
            let ratio = rate(replay_time) / rate(tcpdump_time);
            let verdict = match (bench, ratio >= 0.5) {
                (false, _) => "",
                (true, true) => "",
                (true, false) => "  BELOW TARGET",
            };
            println!("replay/{label}: ratio {ratio:.2}× tcpdump (target ≥ 0.5×){verdict}");
        }
        if keep.is_none() {
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(&report);
        }
    }
    if keep.is_none() {
        let _ = std::fs::remove_dir(&dir);
    } else {
        println!("captures kept in {}", dir.display());
    }
}

/// The best wall time of [`RUNS`] runs of the command (which must succeed).
fn best(make: impl Fn() -> Command) -> Duration {
    (0..RUNS)
        .map(|_| {
            let mut c = make();
            c.stdout(Stdio::null()).stderr(Stdio::piped());
            let t = Instant::now();
            let out = c.output().expect("run the command");
            let d = t.elapsed();
            assert!(
                out.status.success(),
                "{c:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            d
        })
        .min()
        .expect("at least one run")
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}
