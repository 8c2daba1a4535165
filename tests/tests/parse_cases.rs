//! The parse case table (`slowscan_tests::cases`, docs/parsing.md) through
//! both parsers: the userspace frame parser in every plain `cargo test` (no
//! root needed), and the XDP program under BPF_PROG_TEST_RUN (pre-filter
//! off, so every record leaves the kernel) in the privileged tests. Every
//! row's record, outcome counter and fact counters must be exactly the
//! table's, in both.

use slowscan::{
    frame::{FrameCounters, FrameOutcome, parse_frame_info},
    kernel::{DataPlane, ProgramOptions},
};
use slowscan_common::{Counter, FACT_COUNTERS, PacketRecord, tcp, wire::fact};
use slowscan_tests::{
    cases::{Case, Outcome, cases},
    fixtures::XDP_PASS,
    privileged,
};

/// The counters a row must move, and by one each: `frames`, its outcome's
/// (for a record, what the kernel emits it as), its facts'.
fn expected_counters(case: &Case, kernel: bool) -> Vec<Counter> {
    let mut want = vec![Counter::Frames];
    match &case.outcome {
        Outcome::Record(r) if kernel => want.push(if tcp::is_attempt(r.tcp_flags) {
            Counter::AttemptsEmitted
        } else {
            Counter::OtherEmitted
        }),
        Outcome::Record(_) => {}
        Outcome::Skipped(c) => want.push(*c),
    }
    for (bit, c) in FACT_COUNTERS {
        if case.facts & bit != 0 {
            want.push(c);
        }
    }
    want
}

#[test]
fn table_is_sound() {
    let all = cases();
    assert!(all.len() >= 100, "{} rows", all.len());
    let mut names: Vec<_> = all.iter().map(|c| c.name).collect();
    names.sort_unstable();
    let n = names.len();
    names.dedup();
    assert_eq!(names.len(), n, "row names are distinct");
    for c in &all {
        if matches!(c.outcome, Outcome::Skipped(_)) {
            assert_eq!(
                c.facts & fact::ANOMALY,
                0,
                "{}: the anomaly counts only with a record",
                c.name
            );
        }
    }
    // Every encapsulation, outcome and fact appears in some row the kernel runs.
    let kernel: Vec<_> = all.iter().filter(|c| c.for_kernel()).collect();
    for (bit, c) in FACT_COUNTERS {
        assert!(
            kernel.iter().any(|k| k.facts & bit != 0),
            "no kernel row notes {}",
            c.name()
        );
    }
    for why in [
        Counter::NonIp,
        Counter::NonTcp,
        Counter::Malformed,
        Counter::FragmentsSkipped,
        Counter::TooDeep,
    ] {
        assert!(
            kernel.iter().any(|k| k.outcome == Outcome::Skipped(why)),
            "no kernel row is {}",
            why.name()
        );
    }
}

#[test]
fn userspace_parser_gives_every_row() {
    let mut failures = Vec::new();
    for case in cases() {
        let wire = case.wire_len.unwrap_or(case.frame.len());
        let (outcome, info) = parse_frame_info(case.link, &case.frame, wire, 0);
        let got = match outcome {
            FrameOutcome::Record(r) => Outcome::Record(r),
            FrameOutcome::NonIp => Outcome::Skipped(Counter::NonIp),
            FrameOutcome::NonTcp => Outcome::Skipped(Counter::NonTcp),
            FrameOutcome::Malformed => Outcome::Skipped(Counter::Malformed),
            FrameOutcome::Fragment => Outcome::Skipped(Counter::FragmentsSkipped),
            FrameOutcome::TooDeep => Outcome::Skipped(Counter::TooDeep),
        };
        if got != case.outcome {
            failures.push(format!(
                "{} ({:?}): got {got:?}\n    want {:?}",
                case.name, case.link, case.outcome
            ));
        }
        // The facts as counted: the anomaly only with a record.
        let mut counted = FrameCounters::default();
        counted.count(&outcome, info);
        for c in Counter::ALL {
            let Some(v) = counted.get(c) else { continue };
            let want = u64::from(expected_counters(&case, false).contains(&c));
            if v != want {
                failures.push(format!(
                    "{} ({:?}): counter {} is {v}, want {want}",
                    case.name,
                    case.link,
                    c.name()
                ));
            }
        }
        if let FrameOutcome::Record(r) = outcome {
            assert_eq!(r.vlan_tags, info.vlan_tags, "{}", case.name);
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn kernel_parser_gives_every_ethernet_row() {
    if !privileged("kernel_parser_gives_every_ethernet_row") {
        return;
    }
    let mut dp = DataPlane::load(ProgramOptions {
        prefilter: false,
        mirror: false,
        ..ProgramOptions::default()
    })
    .expect("load the XDP program");
    let mut reader = dp.take_records().unwrap();
    let mut failures = Vec::new();
    let mut rows = 0;
    for case in cases().into_iter().filter(Case::for_kernel) {
        rows += 1;
        let before = dp.counters().unwrap();
        let (verdict, _) = dp.test_run(&case.frame, 1).unwrap();
        let delta = dp.counters().unwrap().since(&before);
        let mut got = Vec::new();
        reader.drain(&mut got);
        let ctx = case.name;
        if verdict != XDP_PASS {
            failures.push(format!("{ctx}: verdict {verdict}"));
        }
        let want = expected_counters(&case, true);
        for c in Counter::ALL {
            let w = u64::from(want.contains(&c));
            if delta.get(c) != w {
                failures.push(format!(
                    "{ctx}: counter {} moved by {}, want {w}",
                    c.name(),
                    delta.get(c)
                ));
            }
        }
        match (&case.outcome, got.as_slice()) {
            (Outcome::Skipped(_), []) => {}
            (Outcome::Record(want), [one]) => {
                let one = PacketRecord {
                    ts_ns: 0,
                    status: 0,
                    ..*one
                };
                if one != *want {
                    failures.push(format!(
                        "{ctx}: record\n    got  {one:?}\n    want {want:?}"
                    ));
                }
            }
            (want, got) => failures.push(format!("{ctx}: records {got:?}, want {want:?}")),
        }
    }
    assert!(rows >= 70, "only {rows} rows ran through the kernel");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
