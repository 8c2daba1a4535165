//! The kernel pre-filter changes what leaves the kernel, not what is
//! detected: every external capture, run frame by frame through the real XDP
//! program (BPF_PROG_TEST_RUN) with the pre-filter on and off, feeds the
//! detection engine to the same report and alerts — and those are the
//! outcomes the captures' README gives (R1, R5, R6; timeout 60 s, window
//! none, threshold 4). The same for every foreign capture (threshold 9, no
//! service map, as their README says), frames of other link types re-framed
//! as Ethernet from their network layer on.

use std::collections::BTreeSet;

use slowscan::{
    capture::CaptureReader,
    engine::{DetectorConfig, Engine, EngineConfig, IdentityConfig, Report, Window},
    frame::{LinkType, network_layer},
    kernel::{DataPlane, ProgramOptions, RecordReader},
};
use slowscan_tests::{external_captures, foreign_captures, foreign_rows, privileged};

struct Outcome {
    report: Report,
    alerting: BTreeSet<String>,
    records: usize,
}

fn detect(dp: &mut DataPlane, reader: &mut RecordReader, path: &std::path::Path) -> Outcome {
    let mut engine = Engine::new(EngineConfig {
        detectors: vec![DetectorConfig {
            window: Window::None,
            threshold: 4,
        }],
        report: true,
        // The READMEs name alerting addresses (the paper's R6).
        identity: IdentityConfig::addresses_only(),
        ..EngineConfig::default()
    });
    let mut cap = CaptureReader::open(path).unwrap();
    let mut alerts = Vec::new();
    let mut recs = Vec::new();
    let mut records = 0;
    while let Some(pkt) = cap.next_packet().unwrap() {
        if pkt.data.len() < 14 {
            continue;
        }
        let ts = pkt.ts_ns;
        dp.test_run(pkt.data, 1).unwrap();
        recs.clear();
        reader.drain(&mut recs);
        for r in &mut recs {
            // Capture time instead of test-run time, so timeouts mean what they did on the wire.
            r.ts_ns = ts;
            engine.process(r, &mut alerts);
            records += 1;
        }
    }
    engine.finish(&mut alerts);
    let alerting = alerts.iter().map(|a| a.source_ip().to_string()).collect();
    Outcome {
        report: engine.report(),
        alerting,
        records,
    }
}

/// (file, attempts, established, failed, sources alerting at threshold 4)
const EXPECTED: &[(&str, u64, u64, u64, &[&str])] = &[
    (
        "tcp_0_1000_20190821.pcap",
        1001,
        0,
        1001,
        &["172.31.15.102"],
    ),
    ("nmap_80_vanilla.pcap", 3, 2, 1, &[]),
    ("nmap_80_w_service_detection.pcap", 11, 10, 1, &[]),
    ("nmap_80_all.pcap", 35, 34, 1, &[]),
    ("one_way_all_flags.pcap", 4, 0, 4, &[]),
    ("two_way_all_flags.pcap", 504, 0, 504, &["10.0.0.80"]),
    ("single_syn.pcap", 1, 0, 1, &[]),
    ("single_syn_ack.pcap", 0, 0, 0, &[]),
    ("single_rst.pcap", 0, 0, 0, &[]),
];

#[test]
fn prefilter_on_and_off_detect_the_same() {
    if !privileged("prefilter_on_and_off_detect_the_same") {
        return;
    }
    let Some(dir) = external_captures("prefilter_on_and_off_detect_the_same") else {
        return;
    };
    let mut on = DataPlane::load(ProgramOptions {
        prefilter: true,
        mirror: false,
        ..ProgramOptions::default()
    })
    .unwrap();
    let mut on_reader = on.take_records().unwrap();
    let mut off = DataPlane::load(ProgramOptions {
        prefilter: false,
        mirror: false,
        ..ProgramOptions::default()
    })
    .unwrap();
    let mut off_reader = off.take_records().unwrap();
    for (file, attempts, established, failed, alerting) in EXPECTED {
        let path = dir.join(file);
        let a = detect(&mut on, &mut on_reader, &path);
        let b = detect(&mut off, &mut off_reader, &path);
        assert_eq!(
            a.report, b.report,
            "{file}: reports differ between pre-filter on and off"
        );
        assert_eq!(
            a.alerting, b.alerting,
            "{file}: alerts differ between pre-filter on and off"
        );
        assert!(
            a.records <= b.records,
            "{file}: the pre-filter emitted more records"
        );
        let r = &a.report;
        assert_eq!(
            (r.attempts, r.established, r.failed),
            (*attempts, *established, *failed),
            "{file}"
        );
        let want: BTreeSet<String> = alerting.iter().map(|s| s.to_string()).collect();
        assert_eq!(a.alerting, want, "{file}: alerting sources");
        eprintln!(
            "{file}: {} records with the pre-filter, {} without",
            a.records, b.records
        );
        // Leave no pending attempts for the next file.
        on.sweep_pending(u64::MAX / 2, 0).unwrap();
    }
}

/// The most of a frame XDP sees without multi-buffer support (see
/// `xdp_differential.rs`).
const XDP_LINEAR_MAX: usize = 4096 - 256 - 320;

/// A foreign capture through the kernel into the engine (window none,
/// threshold 9, no service map). On damage the engine is not finished:
/// attempts pending there stay undecided, as in `slowscan replay`.
fn detect_foreign(
    dp: &mut DataPlane,
    reader: &mut RecordReader,
    path: &std::path::Path,
) -> (Report, BTreeSet<String>) {
    let mut engine = Engine::new(EngineConfig {
        detectors: vec![DetectorConfig {
            window: Window::None,
            threshold: 9,
        }],
        services: None,
        report: true,
        // The READMEs name alerting addresses (the paper's R6).
        identity: IdentityConfig::addresses_only(),
        ..EngineConfig::default()
    });
    let mut cap = CaptureReader::open(path).unwrap();
    let mut alerts = Vec::new();
    let mut recs = Vec::new();
    let mut damaged = false;
    loop {
        let pkt = match cap.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(_) => {
                damaged = true;
                break;
            }
        };
        let ts = pkt.ts_ns;
        let frame = if pkt.link == LinkType::Ethernet {
            pkt.data.to_vec()
        } else if let Some((ether_type, off)) = network_layer(pkt.link, pkt.data) {
            let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
            f.extend_from_slice(&ether_type.to_be_bytes());
            f.extend_from_slice(&pkt.data[off..]);
            f
        } else {
            continue;
        };
        if frame.len() < 14 {
            continue;
        }
        dp.test_run(&frame[..frame.len().min(XDP_LINEAR_MAX)], 1)
            .unwrap();
        recs.clear();
        reader.drain(&mut recs);
        for r in &mut recs {
            r.ts_ns = ts;
            engine.process(r, &mut alerts);
        }
    }
    if !damaged {
        engine.finish(&mut alerts);
    }
    let alerting = alerts.iter().map(|a| a.source_ip().to_string()).collect();
    (engine.report(), alerting)
}

#[test]
fn foreign_captures_through_the_kernel_give_their_readme_outcomes() {
    let test = "foreign_captures_through_the_kernel_give_their_readme_outcomes";
    if !privileged(test) {
        return;
    }
    let Some(dir) = foreign_captures(test) else {
        return;
    };
    let rows = foreign_rows(&dir);
    assert!(rows.len() >= 57, "{} README rows", rows.len());
    let mut on = DataPlane::load(ProgramOptions {
        prefilter: true,
        mirror: false,
        ..ProgramOptions::default()
    })
    .unwrap();
    let mut on_reader = on.take_records().unwrap();
    let mut off = DataPlane::load(ProgramOptions {
        prefilter: false,
        mirror: false,
        ..ProgramOptions::default()
    })
    .unwrap();
    let mut off_reader = off.take_records().unwrap();
    let mut wrong = Vec::new();
    for row in &rows {
        let path = dir.join(&row.file);
        let (a, a_alerting) = detect_foreign(&mut on, &mut on_reader, &path);
        let (b, b_alerting) = detect_foreign(&mut off, &mut off_reader, &path);
        on.sweep_pending(u64::MAX / 2, 0).unwrap();
        if a != b || a_alerting != b_alerting {
            wrong.push(format!("{}: pre-filter on and off differ", row.file));
        }
        let got = (a.attempts, a.established, a.failed);
        let want = (row.attempts, row.established, row.failed);
        if got != want || a_alerting != row.alerting {
            wrong.push(format!(
                "{}: {got:?}, alerting {a_alerting:?}; README {want:?}, {:?}",
                row.file, row.alerting
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} foreign captures:\n{}",
        wrong.len(),
        rows.len(),
        wrong.join("\n")
    );
}
