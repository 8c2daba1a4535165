//! Differential test: every frame of the external and the foreign captures
//! (real traffic written by others; never put onto a link) through the
//! kernel program (BPF_PROG_TEST_RUN, pre-filter off) and through the
//! userspace frame parser must give identical records and identical parse
//! counters. Frames of other link types than Ethernet (the only framing XDP
//! sees) are re-framed as Ethernet from their network layer on, and must
//! give the record they gave in their own framing.

use std::path::{Path, PathBuf};

use slowscan::{
    capture::CaptureReader,
    frame::{FrameCounters, FrameOutcome, LinkType, network_layer, parse_frame_info},
    kernel::{DataPlane, ProgramOptions, RecordReader},
};
use slowscan_common::{Counter, PacketRecord};
use slowscan_tests::{external_captures, foreign_captures, privileged};

/// The most of a frame an XDP program without multi-buffer support sees:
/// BPF_PROG_TEST_RUN (like a driver) puts the linear part in a page after
/// 256 bytes of headroom and before the shared info, the rest of a larger
/// (jumbo) frame in fragments the program cannot read. Both parsers are
/// given these bytes.
const XDP_LINEAR_MAX: usize = 4096 - 256 - 320;

fn strip(r: &PacketRecord) -> PacketRecord {
    PacketRecord {
        ts_ns: 0,
        status: 0,
        ..*r
    }
}

/// Capture files under `dir`, recursively, sorted.
fn captures(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                todo.push(p);
            } else if [".pcap", ".pcapng", ".pcap.gz", ".pcapng.gz"]
                .iter()
                .any(|x| name.ends_with(x))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[derive(Default, Debug)]
struct Tally {
    files: usize,
    frames: u64,
    records: u64,
    reframed: u64,
    damaged: usize,
}

struct Kernel {
    dp: DataPlane,
    reader: RecordReader,
    parse_counters: Vec<Counter>,
}

impl Kernel {
    /// One frame through both parsers: the same outcome, record and counters.
    fn compare(&mut self, ctx: &str, frame: &[u8]) -> Option<PacketRecord> {
        let frame = &frame[..frame.len().min(XDP_LINEAR_MAX)];
        let (user, info) = parse_frame_info(LinkType::Ethernet, frame, frame.len(), 0);
        let before = self.dp.counters().unwrap();
        self.dp.test_run(frame, 1).unwrap();
        let delta = self.dp.counters().unwrap().since(&before);
        let mut got = Vec::new();
        self.reader.drain(&mut got);
        let mut uc = FrameCounters::default();
        uc.count(&user, info);
        for c in &self.parse_counters {
            assert_eq!(
                uc.get(*c),
                Some(delta.get(*c)),
                "{ctx}: counter {} (userspace {user:?})",
                c.name()
            );
        }
        match (&user, got.as_slice()) {
            (FrameOutcome::Record(u), [k]) => {
                assert_eq!(
                    strip(k),
                    strip(u),
                    "{ctx}: kernel and userspace records differ"
                );
                Some(strip(u))
            }
            (FrameOutcome::Record(u), k) => panic!("{ctx}: userspace {u:?}, kernel {k:?}"),
            (_, []) => None,
            (other, k) => panic!("{ctx}: userspace {other:?}, kernel emitted {k:?}"),
        }
    }

    fn file(&mut self, path: &Path, tally: &mut Tally) {
        tally.files += 1;
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut cap = CaptureReader::open(path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut index = 0;
        loop {
            let pkt = match cap.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => break,
                // Damage is the capture reader's business (its own tests);
                // every frame before it was compared.
                Err(_) => {
                    tally.damaged += 1;
                    break;
                }
            };
            index += 1;
            let ctx = format!("{name} packet {index}");
            if pkt.link == LinkType::Ethernet {
                if pkt.data.len() < 14 {
                    continue; // the kernel refuses runts in test_run; see xdp_truncation
                }
                tally.frames += 1;
                // The kernel sees exactly the captured bytes.
                if self.compare(&ctx, pkt.data).is_some() {
                    tally.records += 1;
                }
                continue;
            }
            let own = match parse_frame_info(pkt.link, pkt.data, pkt.data.len(), 0).0 {
                FrameOutcome::Record(r) => Some(strip(&r)),
                _ => None,
            };
            let Some((ether_type, off)) = network_layer(pkt.link, pkt.data) else {
                assert!(own.is_none(), "{ctx}: a record without a network layer");
                continue;
            };
            let mut frame = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
            frame.extend_from_slice(&ether_type.to_be_bytes());
            frame.extend_from_slice(&pkt.data[off..]);
            tally.frames += 1;
            tally.reframed += 1;
            let got = self.compare(&format!("{ctx} (re-framed)"), &frame);
            if got.is_some() {
                tally.records += 1;
            }
            if frame.len() <= XDP_LINEAR_MAX {
                // The kernel records an attempt's re-framing header MAC (R9).
                let own = own.map(|r| PacketRecord {
                    src_mac: if slowscan_common::tcp::is_attempt(r.tcp_flags) {
                        [0x02, 0, 0, 0, 0, 2]
                    } else {
                        [0; 6]
                    },
                    ..r
                });
                assert_eq!(got, own, "{ctx}: re-framed as Ethernet, another record");
            }
        }
    }
}

fn kernel() -> Kernel {
    let mut dp = DataPlane::load(ProgramOptions {
        prefilter: false,
        mirror: false,
        ..ProgramOptions::default()
    })
    .unwrap();
    let reader = dp.take_records().unwrap();
    let keeps = FrameCounters::default();
    Kernel {
        dp,
        reader,
        parse_counters: Counter::ALL
            .into_iter()
            .filter(|c| keeps.get(*c).is_some())
            .collect(),
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
    let mut k = kernel();
    let mut tally = Tally::default();
    for path in captures(&dir) {
        k.file(&path, &mut tally);
    }
    eprintln!("differential, external captures: {tally:?}");
    assert!(
        tally.files >= 9,
        "expected the 9 external captures, found {}",
        tally.files
    );
    assert!(
        tally.records > 1500,
        "only {} TCP records compared",
        tally.records
    );
}

#[test]
fn foreign_captures_kernel_equals_userspace() {
    if !privileged("foreign_captures_kernel_equals_userspace") {
        return;
    }
    let Some(dir) = foreign_captures("foreign_captures_kernel_equals_userspace") else {
        return;
    };
    let mut k = kernel();
    let mut tally = Tally::default();
    for path in captures(&dir) {
        k.file(&path, &mut tally);
    }
    eprintln!("differential, foreign captures: {tally:?}");
    assert!(
        tally.files >= 57,
        "expected the 57 foreign captures, found {}",
        tally.files
    );
    assert!(
        tally.records > 100_000,
        "only {} TCP records compared",
        tally.records
    );
    assert!(
        tally.reframed > 1000,
        "only {} frames of other link types re-framed",
        tally.reframed
    );
}
