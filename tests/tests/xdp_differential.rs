//! Differential test: every frame of the external captures (real traffic
//! written by others; never put onto a link) through the kernel program
//! (BPF_PROG_TEST_RUN, pre-filter off) and through the userspace frame parser
//! must give identical records and identical parse counters.

use slowscan::{
    capture::CaptureReader,
    frame::{FrameCounters, FrameOutcome, LinkType, parse_frame_info},
    kernel::{DataPlane, ProgramOptions},
};
use slowscan_common::{Counter, PacketRecord};
use slowscan_tests::{external_captures, privileged};

fn strip(r: &PacketRecord) -> PacketRecord {
    PacketRecord {
        ts_ns: 0,
        status: 0,
        ..*r
    }
}

#[test]
fn external_captures_kernel_equals_userspace() {
    if !privileged("external_captures_kernel_equals_userspace") {
        return;
    }
    let Some(dir) = external_captures("external_captures_kernel_equals_userspace") else {
        return;
    };
    let mut dp = DataPlane::load(ProgramOptions {
        prefilter: false,
        mirror: false,
        ..ProgramOptions::default()
    })
    .unwrap();
    let mut reader = dp.take_records().unwrap();
    let mut files = 0;
    let mut frames = 0;
    let mut records = 0;
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for path in paths
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
    {
        files += 1;
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut cap = CaptureReader::open(path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut index = 0;
        while let Some(pkt) = cap.next_packet().unwrap_or_else(|e| panic!("{name}: {e}")) {
            index += 1;
            assert_eq!(
                pkt.link,
                LinkType::Ethernet,
                "{name}: XDP sees Ethernet frames only"
            );
            if pkt.data.len() < 14 {
                continue; // the kernel refuses runts in test_run; see xdp_truncation
            }
            frames += 1;
            let ctx = format!("{name} packet {index}");
            // The kernel sees exactly the captured bytes.
            let (user, info) = parse_frame_info(pkt.link, pkt.data, pkt.data.len(), pkt.ts_ns);
            let before = dp.counters().unwrap();
            dp.test_run(pkt.data, 1).unwrap();
            let delta = dp.counters().unwrap().since(&before);
            let mut got = Vec::new();
            reader.drain(&mut got);
            match (&user, got.as_slice()) {
                (FrameOutcome::Record(u), [k]) => {
                    records += 1;
                    assert_eq!(
                        strip(k),
                        strip(u),
                        "{ctx}: kernel and userspace records differ"
                    );
                }
                (FrameOutcome::Record(u), k) => panic!("{ctx}: userspace {u:?}, kernel {k:?}"),
                (other, []) => {
                    let mut uc = FrameCounters::default();
                    uc.count(other, info);
                    for c in [
                        Counter::NonIp,
                        Counter::NonTcp,
                        Counter::Malformed,
                        Counter::FragmentsSkipped,
                    ] {
                        assert_eq!(uc.get(c), Some(delta.get(c)), "{ctx}: counter {}", c.name());
                    }
                }
                (other, k) => panic!("{ctx}: userspace {other:?}, kernel emitted {k:?}"),
            }
            let mut uc = FrameCounters::default();
            uc.count(&user, info);
            for c in [Counter::Ipv6, Counter::VlanTagged] {
                assert_eq!(uc.get(c), Some(delta.get(c)), "{ctx}: counter {}", c.name());
            }
        }
    }
    eprintln!("differential: {files} captures, {frames} frames, {records} records identical");
    assert!(
        files >= 9,
        "expected the 9 external captures, found {files}"
    );
    assert!(records > 1500, "only {records} TCP records compared");
}
