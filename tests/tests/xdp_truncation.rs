//! Every fixture frame and every Ethernet row of the parse case table
//! (`slowscan_tests::cases`) truncated at every length, through the kernel
//! program (BPF_PROG_TEST_RUN) and the userspace frame parser: never a record
//! with a wrong field, the same outcome and facts counted by both, the
//! verdict unchanged.

use slowscan::{
    frame::{FrameCounters, FrameOutcome, LinkType, parse_frame_info},
    kernel::{DataPlane, ProgramOptions},
};
use slowscan_common::{Counter, PacketRecord};
use slowscan_tests::{
    cases::cases,
    fixtures::{Mode, XDP_PASS, fixtures},
    privileged,
};

/// Counters both parsers keep (the rest belong to the kernel's pre-filter).
fn parse_counters() -> Vec<Counter> {
    let keeps = FrameCounters::default();
    Counter::ALL
        .into_iter()
        .filter(|c| keeps.get(*c).is_some())
        .collect()
}

fn strip(r: &PacketRecord) -> PacketRecord {
    PacketRecord {
        ts_ns: 0,
        status: 0,
        ..*r
    }
}

fn run(mode: Mode) {
    let mut dp = DataPlane::load(ProgramOptions {
        prefilter: mode == Mode::Prefilter,
        mirror: false,
        ..ProgramOptions::default()
    })
    .unwrap();
    let mut reader = dp.take_records().unwrap();
    let mut failures = Vec::new();
    let mut runs = 0;
    let parse_counters = parse_counters();
    let mut frames: Vec<(String, Vec<u8>)> = Vec::new();
    for fx in fixtures(mode) {
        for (i, step) in fx.steps.iter().enumerate() {
            frames.push((format!("{} step {}", fx.name, i + 1), step.frame.clone()));
        }
    }
    for case in cases().into_iter().filter(|c| c.for_kernel()) {
        frames.push((format!("row {:?}", case.name), case.frame));
    }
    {
        for (name, frame) in &frames {
            let full = match parse_frame_info(LinkType::Ethernet, frame, frame.len(), 0).0 {
                FrameOutcome::Record(r) => Some(strip(&r)),
                _ => None,
            };
            for len in 0..frame.len() {
                let ctx = format!("[{mode:?}] {name} cut to {len} bytes");
                let data = &frame[..len];
                let (user, info) = parse_frame_info(LinkType::Ethernet, data, len, 0);
                if let FrameOutcome::Record(r) = user
                    && Some(strip(&r)) != full
                {
                    failures.push(format!("{ctx}: userspace record with a wrong field: {r:?}"));
                }
                if len < 14 {
                    // The kernel refuses test frames shorter than an Ethernet header.
                    if dp.test_run(data, 1).is_ok() {
                        failures.push(format!("{ctx}: test_run accepted a runt frame"));
                    }
                    if user != FrameOutcome::Malformed {
                        failures.push(format!("{ctx}: userspace gave {user:?} for a runt"));
                    }
                    continue;
                }
                runs += 1;
                let before = dp.counters().unwrap();
                let (verdict, _) = dp.test_run(data, 1).unwrap();
                let delta = dp.counters().unwrap().since(&before);
                let mut got = Vec::new();
                reader.drain(&mut got);
                if verdict != XDP_PASS {
                    failures.push(format!("{ctx}: verdict {verdict}"));
                }
                for r in &got {
                    if Some(strip(r)) != full {
                        failures.push(format!("{ctx}: kernel record with a wrong field: {r:?}"));
                    }
                }
                let mut uc = FrameCounters::default();
                uc.count(&user, info);
                for c in parse_counters.iter().copied() {
                    if uc.get(c) != Some(delta.get(c)) {
                        failures.push(format!(
                            "{ctx}: counter {}: kernel {}, userspace {:?}",
                            c.name(),
                            delta.get(c),
                            uc.get(c)
                        ));
                    }
                }
                let skipped = delta.get(Counter::NonIp)
                    + delta.get(Counter::NonTcp)
                    + delta.get(Counter::Malformed)
                    + delta.get(Counter::FragmentsSkipped)
                    + delta.get(Counter::TooDeep);
                let parsed = matches!(user, FrameOutcome::Record(_));
                if skipped != u64::from(!parsed) {
                    failures.push(format!(
                        "{ctx}: {skipped} skip counters moved, parsed={parsed}"
                    ));
                }
            }
        }
    }
    assert!(runs > 8_000, "only {runs} truncated frames were run");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn truncated_fixtures_with_prefilter() {
    if privileged("truncated_fixtures_with_prefilter") {
        run(Mode::Prefilter);
    }
}

#[test]
fn truncated_fixtures_without_prefilter() {
    if privileged("truncated_fixtures_without_prefilter") {
        run(Mode::All);
    }
}
