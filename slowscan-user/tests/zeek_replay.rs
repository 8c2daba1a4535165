//! `slowscan replay` over Zeek conn logs.
//!
//! A month-long generated network (`longnet`) replayed two ways: as the
//! capture, and as the conn logs a Zeek cluster would have left for the same
//! traffic (hourly rotated gzipped files in daily directories, lines in
//! connection-END order), TSV and JSON. The conn logs must raise exactly the
//! capture's alerts (R5.4: the lines are put back in start order, each
//! failure decided at its deadline).

mod longnet;

use std::{ffi::OsStr, fs, path::Path};

use longnet::{Config, generate, zeek::write_conn_logs};
use serde_json::Value;
use slowscan::addr::addr_of;
use slowscan::engine::{DecidedAttempt, Engine, EngineConfig, EngineState, SECOND_NS};
use slowscan_common::FlowKey;
use slowscan_testkit::{Cli, TempDir};

fn replay(inputs: &[&OsStr], out: &Path, name: &str) -> (Value, Vec<Value>) {
    let report = out.join(format!("{name}.report.json"));
    let alerts = out.join(format!("{name}.alerts.jsonl"));
    let mut args: Vec<&OsStr> = vec!["replay".as_ref()];
    args.extend(inputs);
    args.extend(["--report".as_ref(), report.as_os_str()]);
    args.extend(["--alerts".as_ref(), alerts.as_os_str()]);
    Cli(env!("CARGO_BIN_EXE_slowscan")).ok(args);
    let r: Value = serde_json::from_str(&fs::read_to_string(&report).unwrap()).unwrap();
    let a = fs::read_to_string(&alerts)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (r, a)
}

/// What must agree: who, which detector, the count, the failures' span,
/// when it was decided — times to the microsecond Zeek logs.
fn key(a: &Value) -> String {
    let us = |v: &Value| v.as_str().expect("a time")[..26].to_owned();
    let s = &a["slowscan"];
    format!(
        "{} {} {} {} {} {} {}",
        us(&a["@timestamp"]),
        a["source"]["ip"],
        s["detector"],
        s["failed_pairs"],
        us(&s["first_failure"]),
        us(&s["last_failure"]),
        s["alert_seq"]
    )
}

#[test]
fn r5_4_a_month_of_rotated_conn_logs_alerts_exactly_like_its_capture() {
    let dir = TempDir::new("zeek-month");
    let net = generate(&dir, &Config::month()).unwrap();
    let pcaps: Vec<&OsStr> = net.files.iter().map(|f| f.as_os_str()).collect();
    let (pr, palerts) = replay(&pcaps, &dir, "pcap");
    assert!(palerts.len() >= 10, "the month's scanners alert");
    let want: Vec<String> = palerts.iter().map(key).collect();
    let scanners: Vec<String> = net
        .scanner_addrs()
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect();
    for s in &scanners {
        assert!(
            want.iter().any(|k| k.contains(s.as_str())),
            "scanner {s} alerts"
        );
    }

    let tsv = dir.join("zeek-tsv");
    let files = write_conn_logs(&tsv, &net, false).unwrap();
    assert!(files.len() > 24 * 29, "hourly files: {}", files.len());
    // A quoted glob, as a shell would not expand it.
    let glob = tsv.join("2014-*").join("conn.*.log.gz");
    let (tr, talerts) = replay(&[glob.as_os_str()], &dir, "tsv");
    let z = &tr["zeek"];
    assert_eq!(z["late"], 0, "{z}");
    assert_eq!(z["attempts"], pr["attempts"], "{z}");
    assert_eq!(z["failed"], pr["failed"], "{z}");
    assert_eq!(
        tr["engine"]["outage_failures"],
        pr["engine"]["outage_failures"]
    );
    assert_eq!(talerts.iter().map(key).collect::<Vec<_>>(), want, "TSV");

    // JSON lines, the files given one by one, backwards.
    let json = dir.join("zeek-json");
    let mut files = write_conn_logs(&json, &net, true).unwrap();
    files.reverse();
    let args: Vec<&OsStr> = files.iter().map(|f| f.as_os_str()).collect();
    let (jr, jalerts) = replay(&args, &dir, "json");
    assert_eq!(jr["zeek"]["late"], 0);
    assert_eq!(jalerts.iter().map(key).collect::<Vec<_>>(), want, "JSON");
}

/// Day one: `replay --state-out` of conn logs whose scanner stayed under
/// every threshold writes a state that `run --state` restores (the same
/// format, read here as the sensor reads it); the first new probe then
/// crosses 30d:20 at once.
#[test]
fn replay_state_out_carries_the_history_into_a_sensor() {
    let dir = TempDir::new("zeek-state");
    let t0: u64 = 1_401_667_200;
    let mut log = String::from(
        "#separator \\x09\n#fields\tts\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\thistory\n",
    );
    // 20 probes a day apart: 20 pairs, at 30d:20's threshold, no alert.
    for i in 0..20u64 {
        log += &format!(
            "{}.000000\t203.0.113.9\t40000\t198.51.100.50\t{}\ttcp\tS\n",
            t0 + i * 86_400,
            100 + i
        );
    }
    let path = dir.join("conn.log");
    fs::write(&path, log).unwrap();
    let state = dir.join("history.state");
    let alerts = dir.join("alerts.jsonl");
    Cli(env!("CARGO_BIN_EXE_slowscan")).ok([
        "replay".as_ref(),
        path.as_os_str(),
        "--alerts".as_ref(),
        alerts.as_os_str(),
        "--state-out".as_ref(),
        state.as_os_str(),
    ]);
    assert_eq!(
        fs::read_to_string(&alerts).unwrap(),
        "",
        "under the thresholds"
    );
    let saved = EngineState::from_bytes(&fs::read(&state).unwrap()).unwrap();
    // A sensor started an hour after the history ends, wall clock = engine
    // time here.
    let now = (t0 + 20 * 86_400) * SECOND_NS;
    let (mut sensor, restored) = Engine::restore(EngineConfig::default(), saved, now);
    assert_eq!(restored.sources, 1, "{restored:?}");
    let (family, src) = addr_of("203.0.113.9".parse().unwrap());
    let (_, dst) = addr_of("198.51.100.50".parse().unwrap());
    let mut out = Vec::new();
    sensor.decided_attempt(
        &DecidedAttempt {
            flow: FlowKey {
                src_addr: src,
                dst_addr: dst,
                src_port: 40000,
                dst_port: 999,
                family,
                _pad0: 0,
                _pad1: 0,
            },
            syn_ts_ns: now + SECOND_NS,
            established: false,
            src_mac: [0; 6],
        },
        &mut out,
    );
    assert_eq!(out.len(), 1, "the first new probe alerts");
    assert_eq!(out[0].failed_pairs, 21);
}
