//! Fuzzes the frame parser with proptest: random bytes on every link type,
//! and mutated valid frames checked at every truncation length.
//!
//! `SLOWSCAN_FUZZ_CASES=N` sets the proptest cases per test (default below,
//! sized for the CI budget); `PROPTEST_RNG_SEED` replays a run. Each case
//! feeds many inputs to the parser; the totals are printed.

mod catalogue;

use std::cell::Cell;

use catalogue::catalogue;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use slowscan::frame::{FrameOutcome, LinkType, parse_frame, parse_frame_info};
use slowscan_common::{
    AF_INET, AF_INET6,
    wire::{MAX_ENCAPS, MAX_VLAN_TAGS},
};

const LINKS: [LinkType; 13] = [
    LinkType::Ethernet,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::RawIp,
    LinkType::Ipv4,
    LinkType::Ipv6,
    LinkType::Null,
    LinkType::Ppp,
    LinkType::CiscoHdlc,
    LinkType::Nflog,
    LinkType::IpOverIb,
    LinkType::Ieee80211,
    LinkType::Radiotap,
];

/// Tags over every Ethernet header a frame can hold.
const MAX_TAGS: u8 = MAX_VLAN_TAGS * (MAX_ENCAPS + 1);

fn runner(default_cases: u32) -> TestRunner {
    slowscan_testkit::fuzz::fuzz_runner(default_cases)
}

/// What any record must satisfy, whatever the input.
fn check_record(link: LinkType, outcome: &FrameOutcome, ts_ns: u64) -> Result<(), TestCaseError> {
    if let FrameOutcome::Record(r) = outcome {
        prop_assert!(r.family == AF_INET || r.family == AF_INET6);
        if r.family == AF_INET {
            prop_assert_eq!(&r.src_addr[4..], &[0u8; 12][..]);
            prop_assert_eq!(&r.dst_addr[4..], &[0u8; 12][..]);
        }
        prop_assert_eq!((r.ts_ns, r.status, r._pad), (ts_ns, 0, [0; 6]));
        prop_assert!(r.vlan_tags <= MAX_TAGS, "{:?}: {} tags", link, r.vlan_tags);
    }
    Ok(())
}

#[test]
fn random_bytes_on_every_link_type() {
    let inputs = Cell::new(0u64);
    let strategy = (
        proptest::collection::vec(any::<u8>(), 0..160),
        0usize..100,
        any::<u64>(),
    );
    runner(40_000)
        .run(&strategy, |(data, extra, ts)| {
            for link in LINKS {
                for wire_len in [data.len(), data.len() + extra, 0] {
                    let (outcome, info) = parse_frame_info(link, &data, wire_len, ts);
                    check_record(link, &outcome, ts)?;
                    prop_assert!(info.vlan_tags <= MAX_TAGS);
                    inputs.set(inputs.get() + 1);
                }
            }
            Ok(())
        })
        .unwrap();
    eprintln!("frame fuzz, random bytes: {} inputs", inputs.get());
}

/// Byte sets, biased towards the header fields that steer the parse.
fn mutations() -> impl Strategy<Value = Vec<(usize, u8)>> {
    let interesting = prop_oneof![
        any::<u8>(),
        Just(0u8),
        Just(0xFF),
        Just(0x81),
        Just(0x86),
        Just(0x88),
        Just(0x45),
        Just(0x60),
        Just(6),
        Just(44),
        Just(60),
        Just(0x50),
    ];
    proptest::collection::vec((0usize..200, interesting), 0..6)
}

/// A mutated catalogue frame, cut at every length with the wire length held:
/// a prefix gives `Malformed` or exactly the longer frame's outcome, so a
/// record is never built from bytes that were not there (length fields are
/// judged against the wire length, which the cut keeps).
#[test]
fn mutated_frames_at_every_truncation() {
    let cases = catalogue();
    let inputs = Cell::new(0u64);
    // Full-frame outcomes, to show the mutations reach every branch.
    let tally = Cell::new([0u64; 6]);
    let strategy = (0..cases.len(), mutations(), 0usize..64, any::<bool>());
    runner(6_000)
        .run(&strategy, |(which, muts, extra, grow)| {
            let case = &cases[which];
            let mut frame = case.frame.clone();
            if grow {
                frame.extend(std::iter::repeat_n(0xA5, extra));
            }
            for (pos, value) in muts {
                if !frame.is_empty() {
                    let at = pos % frame.len();
                    frame[at] = value;
                }
            }
            let wire = frame.len() + if grow { 0 } else { extra };
            let full = parse_frame(case.link, &frame, wire, 7);
            check_record(case.link, &full, 7)?;
            let mut t = tally.get();
            t[outcome_index(&full)] += 1;
            tally.set(t);
            for n in 0..frame.len() {
                let cut = parse_frame(case.link, &frame[..n], wire, 7);
                prop_assert!(
                    cut == full || cut == FrameOutcome::Malformed,
                    "{} cut to {}: {:?} vs {:?}",
                    case.name,
                    n,
                    cut,
                    full
                );
                let short = parse_frame(case.link, &frame[..n], n, 7);
                check_record(case.link, &short, 7)?;
                inputs.set(inputs.get() + 2);
            }
            inputs.set(inputs.get() + 1);
            Ok(())
        })
        .unwrap();
    let [rec, non_ip, non_tcp, malformed, frag, deep] = tally.get();
    eprintln!(
        "frame fuzz, mutated frames: {} inputs; full frames: {rec} records, {non_ip} non-IP, \
         {non_tcp} non-TCP, {malformed} malformed, {frag} fragments, {deep} too deep",
        inputs.get()
    );
    assert_every_outcome(tally.get());
}

fn outcome_index(o: &FrameOutcome) -> usize {
    match o {
        FrameOutcome::Record(_) => 0,
        FrameOutcome::NonIp => 1,
        FrameOutcome::NonTcp => 2,
        FrameOutcome::Malformed => 3,
        FrameOutcome::Fragment => 4,
        FrameOutcome::TooDeep => 5,
    }
}

fn assert_every_outcome(tally: [u64; 6]) {
    assert!(
        tally.iter().all(|&n| n > 0),
        "some outcome was never produced: {tally:?}"
    );
}
