//! The capture reader on hand-built pcap, pcapng and gzip files, good and bad.

mod capture_builder;
mod catalogue;

use capture_builder::*;
use slowscan::capture::{
    CaptureError, CaptureReader, Input, MAX_PACKET, PcapWriter, feed::Quiet, for_each_record,
};
use slowscan::frame::LinkType;

fn syn_frame() -> Vec<u8> {
    use catalogue::*;
    tcp4(&syn())
}

fn raw_syn6() -> Vec<u8> {
    use catalogue::*;
    inner6(&syn())
}

fn err_of(bytes: Vec<u8>) -> CaptureError {
    match read_all("t.pcap", bytes) {
        (_, Err(e)) => e,
        (pkts, Ok(())) => panic!("expected an error, read {} packets", pkts.len()),
    }
}

#[test]
fn writer_output_reads_back() {
    let frame = syn_frame();
    let mut w = PcapWriter::new(Vec::new(), LinkType::Ethernet).unwrap();
    w.write_packet(1_700_000_000_123_456_789, &frame, frame.len())
        .unwrap();
    w.write_packet(1_700_000_001_000_000_001, &frame[..20], 1500)
        .unwrap();
    let bytes = w.finish().unwrap();
    let (pkts, res) = read_all("w.pcap", bytes);
    res.unwrap();
    assert_eq!(pkts.len(), 2);
    assert_eq!(pkts[0].ts_ns, 1_700_000_000_123_456_789);
    assert_eq!(pkts[0].data, frame);
    assert_eq!(
        (pkts[0].wire_len, pkts[0].offset, pkts[0].link),
        (frame.len(), 24, LinkType::Ethernet)
    );
    assert_eq!(pkts[1].ts_ns, 1_700_000_001_000_000_001);
    assert_eq!((pkts[1].data.len(), pkts[1].wire_len), (20, 1500));
    assert_eq!(pkts[1].offset, 24 + 16 + frame.len() as u64);
}

#[test]
fn writer_rejects_times_past_2106() {
    let mut w = PcapWriter::new(Vec::new(), LinkType::RawIp).unwrap();
    assert!(w.write_packet(u64::MAX, &[0x45], 1).is_err());
}

#[test]
fn pcap_both_byte_orders_and_resolutions() {
    let frame = syn_frame();
    for o in [LE, BE] {
        for nanos in [false, true] {
            let frac = if nanos { 250_000_000 } else { 250_000 };
            let mut f = pcap_header(o, nanos, 1);
            f.extend(pcap_record(o, 1_600_000_000, frac, &frame, 60));
            f.extend(pcap_record(o, 1_600_000_001, 0, &frame[..30], 60));
            let (pkts, res) = read_all("o.pcap", f);
            res.unwrap();
            assert_eq!(pkts.len(), 2, "big {} nanos {nanos}", o.big);
            assert_eq!(pkts[0].ts_ns, 1_600_000_000_250_000_000);
            assert_eq!(pkts[0].data, frame);
            assert_eq!(pkts[0].wire_len, 60);
            assert_eq!(pkts[1].ts_ns, 1_600_000_001_000_000_000);
            assert_eq!((pkts[1].data.len(), pkts[1].wire_len), (30, 60));
        }
    }
}

#[test]
fn pcap_fcs_bits_are_not_the_link_type() {
    let mut f = pcap_header(LE, false, 1 | 0x0400_0000 | (4 << 28)); // P bit, FCS length 4
    f.extend(pcap_record(LE, 1, 0, &syn_frame(), 58));
    let (pkts, res) = read_all("fcs.pcap", f);
    res.unwrap();
    assert_eq!(pkts[0].link, LinkType::Ethernet);
}

#[test]
fn original_length_below_captured_is_raised() {
    let mut f = pcap_header(LE, false, 1);
    f.extend(pcap_record(LE, 1, 0, &syn_frame(), 10));
    let (pkts, _) = read_all("o.pcap", f);
    assert_eq!(pkts[0].wire_len, syn_frame().len());
}

/// Two interfaces with different link types and timestamp units, skipped
/// blocks between them, simple and obsolete packet blocks, in both orders.
#[test]
fn pcapng_interfaces_and_blocks() {
    let eth = syn_frame();
    let raw = raw_syn6();
    for o in [LE, BE] {
        let mut ng = Ng::new(o);
        ng.idb(1, 0, &[]) // µs by default
            .block(NRB, &[0; 12])
            .idb(101, 96, &[(9, vec![9]), (2, b"eth1".to_vec())]) // ns
            .idb(
                229,
                0,
                &[
                    (9, vec![0x80 | 10]),
                    (14, o.u32(5).iter().chain(&[0; 4]).copied().collect()),
                ],
            );
        if o.big {
            // if_tsoffset's 8 bytes: big-endian puts the high word first.
            let n = ng.out.len();
            let opt = &mut ng.out[n - 4 - 4 - 8..n - 4 - 4];
            opt.copy_from_slice(&[0, 0, 0, 0, 0, 0, 0, 5]);
        }
        ng.epb(0, 1_600_000_000_000_001, &eth, 60)
            .block(ISB, &[0; 20])
            .block(0x0000_0BAD, &[1, 2, 3])
            .epb(1, 1_600_000_000_000_000_123, &raw, raw.len() as u32)
            .spb(&eth, eth.len() as u32)
            .opb(0, 1_600_000_000_000_002, &eth[..40], 60)
            .epb(2, 3 << 10, &raw, raw.len() as u32);
        let (pkts, res) = read_all("i.pcapng", ng.bytes());
        res.unwrap();
        assert_eq!(pkts.len(), 5, "big {}", o.big);
        let summary: Vec<_> = pkts
            .iter()
            .map(|p| (p.link, p.interface, p.ts_ns, p.wire_len))
            .collect();
        assert_eq!(
            summary,
            [
                (LinkType::Ethernet, 0, 1_600_000_000_000_001_000, 60),
                (LinkType::RawIp, 1, 1_600_000_000_000_000_123, raw.len()),
                (LinkType::Ethernet, 0, 1_600_000_000_000_000_123, eth.len()), // SPB: previous time
                (LinkType::Ethernet, 0, 1_600_000_000_000_002_000, 60),
                (LinkType::Ipv6, 2, 5_000_000_000 + 3_000_000_000, raw.len()),
            ],
            "big {}",
            o.big
        );
        assert_eq!(pkts[0].data, eth);
        assert_eq!(pkts[1].data, raw);
        assert_eq!(pkts[2].data, eth);
        assert_eq!(pkts[3].data, &eth[..40]);
        // Offsets point at each block.
        for p in &pkts {
            let at = p.offset as usize;
            let t = if o.big {
                u32::from_be_bytes
            } else {
                u32::from_le_bytes
            }(ng.out[at..at + 4].try_into().unwrap());
            assert!(
                [EPB, SPB, OPB].contains(&t),
                "offset {at} is block type {t}"
            );
        }
    }
}

#[test]
fn simple_packet_block_honours_snaplen() {
    let eth = syn_frame();
    let mut ng = Ng::new(LE);
    ng.idb(1, 20, &[]).spb(&eth, eth.len() as u32);
    let (pkts, res) = read_all("s.pcapng", ng.bytes());
    res.unwrap();
    assert_eq!((pkts[0].data.len(), pkts[0].wire_len), (20, eth.len()));
}

#[test]
fn pcapng_sections_may_change_byte_order_and_interfaces() {
    let eth = syn_frame();
    let raw = raw_syn6();
    let mut a = Ng::new(LE);
    a.idb(1, 0, &[]).epb(0, 1, &eth, 60);
    let mut b = Ng::new(BE);
    b.idb(101, 0, &[]).epb(0, 2, &raw, raw.len() as u32);
    let mut bytes = a.bytes();
    bytes.extend(b.bytes());
    let (pkts, res) = read_all("two.pcapng", bytes);
    res.unwrap();
    let links: Vec<_> = pkts.iter().map(|p| (p.link, p.ts_ns)).collect();
    assert_eq!(
        links,
        [(LinkType::Ethernet, 1_000), (LinkType::RawIp, 2_000)]
    );
}

#[test]
fn gzip_is_transparent() {
    let frame = syn_frame();
    let mut f = pcap_header(LE, true, 1);
    for i in 0..100 {
        f.extend(pcap_record(LE, i, 7, &frame, 60));
    }
    let (plain, res) = read_all("p.pcap", f.clone());
    res.unwrap();
    let (gz, res) = read_all("p.pcap.gz", gzip(&f));
    res.unwrap();
    assert_eq!(plain, gz);
    // Concatenated members (as `cat a.gz b.gz`) read as one stream.
    let mut two = gzip(&f[..1000]);
    two.extend(gzip(&f[1000..]));
    let (members, res) = read_all("m.pcap.gz", two);
    res.unwrap();
    assert_eq!(plain, members);
    // pcapng too, and from a file.
    let mut ng = Ng::new(BE);
    ng.idb(1, 0, &[]).epb(0, 5, &frame, 60);
    let path = temp_path("ng.pcapng.gz");
    std::fs::write(&path, gzip(&ng.bytes())).unwrap();
    let mut reader = CaptureReader::open(&path).unwrap();
    assert!(reader.is_gzip());
    assert_eq!(reader.next_packet().unwrap().unwrap().data, frame);
    assert!(reader.next_packet().unwrap().is_none());
    assert_eq!(reader.input_position(), reader.input_len().unwrap());
}

#[test]
fn empty_and_header_only_captures_have_no_packets() {
    let path = temp_path("empty.pcap");
    std::fs::write(&path, b"").unwrap();
    let mut input = Input::default();
    let none = for_each_record(
        std::slice::from_ref(&path),
        &mut input,
        &mut Quiet,
        |_| -> Result<(), ()> { panic!("no records") },
    );
    assert!(matches!(none, Ok(None)));
    assert_eq!((input.files[0].packets, input.frames.frames), (0, 0));
    let mut shb_idb = Ng::new(LE);
    shb_idb.idb(1, 0, &[]);
    for (name, bytes) in [
        ("empty", Vec::new()),
        ("gzip of nothing", gzip(&[])),
        ("pcap header", pcap_header(BE, false, 1)),
        ("gzipped pcap header", gzip(&pcap_header(LE, true, 113))),
        ("pcapng section header", Ng::new(LE).bytes()),
        ("pcapng with an interface", shb_idb.bytes()),
    ] {
        let (pkts, res) = read_all(name, bytes);
        res.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(pkts.is_empty(), "{name}");
    }
}

#[test]
fn not_a_capture() {
    let e = err_of(b"Hello, world\n".to_vec());
    assert_eq!(
        e.to_string(),
        "t.pcap: not a pcap or pcapng capture (it starts with 48 65 6c 6c)"
    );
    let e = err_of(vec![0xd4, 0xc3]);
    assert_eq!(
        e.to_string(),
        "t.pcap: truncated capture header at byte 0 (needs 4 bytes, 2 left)"
    );
    let e = err_of(pcap_header(LE, false, 1)[..10].to_vec());
    assert_eq!(
        e.to_string(),
        "t.pcap: truncated pcap file header at byte 0 (needs 24 bytes, 10 left)"
    );
}

#[test]
fn unknown_link_types_are_named() {
    // 192: PPI, which replay does not read.
    let e = err_of(pcap_header(LE, false, 192));
    assert!(matches!(
        e,
        CaptureError::UnknownLinkType {
            link_type: 192,
            interface: None,
            ..
        }
    ));
    assert!(
        e.to_string().starts_with(
            "t.pcap: unsupported link type 192 (supported: 0 (BSD loopback), 1 (Ethernet)"
        ),
        "{e}"
    );
    // pcapng: only once a packet uses the interface.
    let mut ng = Ng::new(LE);
    ng.idb(1, 0, &[])
        .idb(147, 0, &[])
        .epb(0, 1, &syn_frame(), 60);
    let (pkts, res) = read_all("u.pcapng", ng.bytes());
    assert_eq!((pkts.len(), res.is_ok()), (1, true));
    ng.epb(1, 1, &syn_frame(), 60);
    let e = err_of(ng.bytes());
    assert!(
        e.to_string()
            .contains("unsupported link type 147 on interface 1"),
        "{e}"
    );
}

#[test]
fn unsupported_versions() {
    let mut h = pcap_header(LE, false, 1);
    h[4] = 3;
    assert_eq!(
        err_of(h).to_string(),
        "t.pcap: unsupported pcap version 3.4"
    );
    let mut ng = Ng::new(LE);
    ng.out[12] = 2;
    assert_eq!(
        err_of(ng.bytes()).to_string(),
        "t.pcap: unsupported pcapng version 2.0"
    );
}

#[test]
fn truncated_pcap_names_offset_and_sizes() {
    let frame = syn_frame();
    let mut f = pcap_header(LE, false, 1);
    f.extend(pcap_record(LE, 1, 0, &frame, 60));
    let good = f.len();
    f.extend(pcap_record(LE, 2, 0, &frame, 60));
    f.truncate(good + 12);
    let e = err_of(f.clone());
    assert_eq!(
        e.to_string(),
        format!("t.pcap: truncated packet record header at byte {good} (needs 16 bytes, 12 left)")
    );
    f.truncate(good);
    f.extend(&pcap_record(LE, 2, 0, &frame, 60)[..28]);
    let e = err_of(f);
    assert_eq!(
        e.to_string(),
        format!(
            "t.pcap: truncated packet record at byte {good} (needs {} bytes, 28 left)",
            16 + frame.len()
        )
    );
    assert_eq!(e.at().unwrap().offset, good as u64);
}

#[test]
fn oversized_packet_is_an_error_not_an_allocation() {
    let mut f = pcap_header(LE, false, 1);
    let mut rec = pcap_record(LE, 1, 0, &[], 0);
    rec[8..12].copy_from_slice(&(MAX_PACKET as u32 + 1).to_le_bytes());
    f.extend(rec);
    let e = err_of(f);
    assert_eq!(
        e.to_string(),
        "t.pcap: packet record at byte 24 claims 262145 bytes, more than the 262144-byte limit (corrupt capture?)"
    );
    let mut ng = Ng::new(LE);
    ng.idb(1, 0, &[]);
    ng.out.extend(LE.u32(EPB));
    ng.out.extend(LE.u32(0x4000_0000));
    assert!(matches!(err_of(ng.bytes()), CaptureError::TooLarge { .. }));
    // A block within the block limit whose packet is over the packet limit.
    let mut ng = Ng::new(LE);
    ng.idb(1, 0, &[]).epb(0, 1, &vec![0; MAX_PACKET + 4], 60);
    let e = err_of(ng.bytes());
    assert!(
        e.to_string()
            .contains("enhanced packet block at byte 48 claims 262148 bytes"),
        "{e}"
    );
}

#[test]
fn corrupt_pcapng_blocks() {
    let base = || {
        let mut ng = Ng::new(LE);
        ng.idb(1, 0, &[]);
        ng
    };
    let at = base().out.len();
    // Block lengths that would not advance, or not to a 4-byte boundary.
    for len in [0u32, 4, 8, 13, 30] {
        let mut ng = base();
        ng.out.extend(LE.u32(EPB));
        ng.out.extend(LE.u32(len));
        ng.out.extend([0u8; 64]);
        let e = err_of(ng.bytes());
        assert!(matches!(e, CaptureError::Corrupt { .. }), "{len}: {e}");
        assert_eq!(e.at().unwrap().offset, at as u64, "{len}");
    }
    // Trailing length differs, for a parsed and for a skipped block.
    for t in [EPB, ISB] {
        let mut ng = base();
        ng.epb(0, 1, &syn_frame(), 60);
        let n = ng.out.len();
        ng.out[n - 4] ^= 4;
        ng.out[at..at + 4].copy_from_slice(&LE.u32(t));
        let e = err_of(ng.bytes());
        assert!(e.to_string().contains("trailing length"), "{e}");
    }
    // A packet on an interface that was never described.
    let mut ng = base();
    ng.epb(1, 1, &syn_frame(), 60);
    let e = err_of(ng.bytes());
    assert!(
        e.to_string()
            .contains("refers to interface 1, but the section describes 1"),
        "{e}"
    );
    // A captured length beyond its block.
    let mut ng = base();
    ng.epb(0, 1, &syn_frame(), 60);
    ng.out[at + 20..at + 24].copy_from_slice(&LE.u32(1000));
    let e = err_of(ng.bytes());
    assert!(
        e.to_string().contains("captured length 1000 exceeds"),
        "{e}"
    );
    // A section header with a bad byte-order magic.
    let mut ng = base();
    ng.out[8] = 0;
    assert!(err_of(ng.bytes()).to_string().contains("byte-order magic"));
    // A skipped block that claims more than the file holds.
    let mut ng = base();
    ng.out.extend(LE.u32(ISB));
    ng.out.extend(LE.u32(0xFFFF_FFF0));
    ng.out.extend([0u8; 100]);
    let e = err_of(ng.bytes());
    assert_eq!(
        e.to_string(),
        format!("t.pcap: truncated pcapng block at byte {at} (needs 4294967280 bytes, 108 left)")
    );
}

#[test]
fn corrupt_gzip_is_an_error() {
    let mut f = pcap_header(LE, false, 1);
    for i in 0..50 {
        f.extend(pcap_record(LE, i, 0, &syn_frame(), 60));
    }
    let gz = gzip(&f);
    let mut bad = gz.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xFF;
    bad[mid + 1] ^= 0x55;
    let (_, res) = read_all("c.pcap.gz", bad);
    let e = res.unwrap_err();
    assert!(e.to_string().starts_with("c.pcap.gz: "), "{e}");
    // Cut short, or followed by junk: an error too, never a silent end.
    let mut junk = gz.clone();
    junk.extend(b"junk after the member");
    for bytes in [
        gz[..gz.len() - 20].to_vec(),
        gz[..gz.len() / 3].to_vec(),
        junk,
    ] {
        let (pkts, res) = read_all("c.pcap.gz", bytes);
        let e = res.unwrap_err();
        assert!(matches!(e, CaptureError::Gzip { .. }), "{e}");
        let want = format!(
            "c.pcap.gz: corrupt or truncated gzip data at byte {} of the decompressed data: ",
            e.at().unwrap().offset
        );
        assert!(e.to_string().starts_with(&want), "{e}");
        assert!(pkts.len() < 50 || e.at().unwrap().offset == f.len() as u64);
    }
}

#[test]
fn reader_is_finished_after_an_error() {
    let mut f = pcap_header(LE, false, 1);
    f.extend(pcap_record(LE, 1, 0, &syn_frame(), 60));
    f.extend([0u8; 5]);
    let mut r = CaptureReader::from_reader("f.pcap", std::io::Cursor::new(f)).unwrap();
    assert!(r.next_packet().unwrap().is_some());
    assert!(r.next_packet().is_err());
    assert!(r.next_packet().unwrap().is_none());
    assert!(r.next_packet().unwrap().is_none());
}

#[test]
fn read_records_delivers_everything_before_the_damage() {
    let frame = syn_frame();
    let mut f = pcap_header(LE, false, 1);
    for i in 0..3 {
        f.extend(pcap_record(LE, 10 + i, 0, &frame, 60));
    }
    f.extend(pcap_record(LE, 20, 0, &[0u8; 20], 60)); // not IP
    let damage = f.len();
    f.extend(&pcap_record(LE, 30, 0, &frame, 60)[..30]);
    let path = temp_path("damaged.pcap");
    std::fs::write(&path, &f).unwrap();
    let mut seen = Vec::new();
    let mut input = Input::default();
    let e = for_each_record(
        std::slice::from_ref(&path),
        &mut input,
        &mut Quiet,
        |r| -> Result<(), ()> {
            seen.push(r.ts_ns);
            Ok(())
        },
    )
    .unwrap()
    .expect("the damage");
    assert_eq!(seen, [10_000_000_000, 11_000_000_000, 12_000_000_000]);
    let counters = &input.frames;
    assert_eq!(
        (counters.frames, counters.records, counters.non_ip),
        (4, 3, 1)
    );
    assert!(!input.files[0].complete);
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "{}: truncated packet record at byte {damage}",
            path.display()
        )),
        "{msg}"
    );
    std::fs::write(&path, &f[..damage]).unwrap();
    let mut input = Input::default();
    let ok = for_each_record(std::slice::from_ref(&path), &mut input, &mut Quiet, |_| {
        Ok::<(), ()>(())
    });
    assert!(matches!(ok, Ok(None)));
    assert_eq!((input.files[0].packets, input.files[0].tcp), (4, 3));
    assert!(input.files[0].complete);
    assert_eq!(
        (input.first_ts_ns, input.last_ts_ns),
        (Some(10_000_000_000), Some(20_000_000_000))
    );
}

#[test]
fn missing_file_is_named() {
    let e = CaptureReader::open("/nonexistent/x.pcap").err().unwrap();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/x.pcap: cannot open: "),
        "{e}"
    );
}
