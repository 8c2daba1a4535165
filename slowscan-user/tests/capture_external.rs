//! The external captures (ESnet curated-pcaps, see that directory's
//! README.md) through the reader and the frame parser: per file the frame,
//! TCP-record and attempt (R1) counts. The files are read from
//! `SLOWSCAN_EXTERNAL_CAPTURES`; without it the tests are skipped with a
//! notice, except under `CI=true`, where a missing directory fails.

mod capture_builder;

use capture_builder::*;
use slowscan::capture::{CaptureReader, Input, feed::Quiet, for_each_record};
use slowscan::frame::{FrameCounters, LinkType, parse_frame};
use slowscan_common::PacketRecord;
use slowscan_testkit::external_captures;

/// file, frames, TCP records, attempts, VLAN-tagged frames. Frame and TCP
/// counts agree with `tcpdump -r FILE [vlan and] tcp | wc -l`; attempts with
/// the README's table.
const EXPECTED: [(&str, u64, u64, u64, u64); 9] = [
    ("tcp_0_1000_20190821.pcap", 1005, 1005, 1001, 1005),
    ("nmap_80_vanilla.pcap", 11, 11, 3, 0),
    ("nmap_80_w_service_detection.pcap", 154, 148, 11, 0),
    ("nmap_80_all.pcap", 431, 425, 35, 0),
    ("one_way_all_flags.pcap", 63, 63, 4, 0),
    ("two_way_all_flags.pcap", 7938, 7938, 504, 0),
    ("single_syn.pcap", 1, 1, 1, 0),
    ("single_syn_ack.pcap", 1, 1, 0, 0),
    ("single_rst.pcap", 1, 1, 0, 0),
];

fn records_of(path: &std::path::Path) -> (Vec<PacketRecord>, FrameCounters) {
    let mut records = Vec::new();
    let mut input = Input::default();
    let damage = for_each_record(&[path.to_path_buf()], &mut input, &mut Quiet, |r| {
        records.push(*r);
        Ok::<(), ()>(())
    });
    if let Ok(Some(e)) = damage {
        panic!("{e}");
    }
    (records, input.frames)
}

#[test]
fn external_captures_give_the_expected_counts() {
    let Some(dir) = external_captures("external_captures_give_the_expected_counts") else {
        return;
    };
    for (file, frames, tcp, attempts, tagged) in EXPECTED {
        let (records, counters) = records_of(&dir.join(file));
        let got_attempts = records
            .iter()
            .filter(|r| slowscan_common::tcp::is_attempt(r.tcp_flags))
            .count();
        assert_eq!(counters.frames, frames, "{file}: frames");
        assert_eq!(counters.records, tcp, "{file}: TCP records");
        assert_eq!(records.len() as u64, tcp, "{file}: records delivered");
        assert_eq!(got_attempts as u64, attempts, "{file}: attempts");
        assert_eq!(counters.vlan_tagged, tagged, "{file}: VLAN-tagged frames");
        assert_eq!(counters.malformed, 0, "{file}: malformed");
        assert!(
            records.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns),
            "{file}: time order"
        );
    }
}

#[test]
fn single_syn_fields() {
    let Some(dir) = external_captures("single_syn_fields") else {
        return;
    };
    let (records, _) = records_of(&dir.join("single_syn.pcap"));
    let r = records[0];
    assert_eq!(r.family, slowscan_common::AF_INET);
    assert_eq!(&r.src_addr[..4], &[10, 0, 0, 10]);
    assert_eq!(&r.src_addr[4..], &[0; 12]);
    assert_eq!(r.tcp_flags, slowscan_common::tcp::SYN);
    assert_eq!(r.status, 0);
}

#[test]
fn masscan_scan_is_one_source_to_1001_ports() {
    let Some(dir) = external_captures("masscan_scan_is_one_source_to_1001_ports") else {
        return;
    };
    let (records, _) = records_of(&dir.join("tcp_0_1000_20190821.pcap"));
    let attempts: Vec<_> = records.iter().filter(|r| r.is_attempt()).collect();
    assert!(
        attempts
            .iter()
            .all(|r| r.src_addr[..4] == [172, 31, 15, 102] && r.vlan_tags == 1)
    );
    let mut ports: Vec<u16> = attempts.iter().map(|r| r.dst_port).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports, (0..=1000).collect::<Vec<u16>>());
}

/// The same packets, gzipped or rewritten as pcapng in either byte order,
/// give the same records.
#[test]
fn external_captures_in_other_containers() {
    let Some(dir) = external_captures("external_captures_in_other_containers") else {
        return;
    };
    for (file, ..) in EXPECTED {
        let path = dir.join(file);
        let bytes = std::fs::read(&path).unwrap();
        let (plain, res) = read_all(file, bytes.clone());
        res.unwrap();
        let (gz, res) = read_all(file, gzip(&bytes));
        res.unwrap();
        assert_eq!(plain, gz, "{file} gzipped");
        for o in [LE, BE] {
            let mut ng = Ng::new(o);
            ng.idb(1, 0, &[(9, vec![9])]);
            for p in &plain {
                ng.epb(0, p.ts_ns, &p.data, p.wire_len as u32);
            }
            let (pkts, res) = read_all(file, ng.bytes());
            res.unwrap();
            let key = |v: &[Pkt]| {
                v.iter()
                    .map(|p| (p.ts_ns, p.data.clone(), p.wire_len))
                    .collect::<Vec<_>>()
            };
            assert_eq!(key(&plain), key(&pkts), "{file} as pcapng");
        }
        // And the streaming reader agrees with for_each_record.
        let mut reader = CaptureReader::open(&path).unwrap();
        let mut n = 0;
        while let Some(p) = reader.next_packet().unwrap() {
            assert_eq!(p.link, LinkType::Ethernet);
            let _ = parse_frame(p.link, p.data, p.wire_len, p.ts_ns);
            n += 1;
        }
        assert_eq!(n, plain.len());
    }
}
