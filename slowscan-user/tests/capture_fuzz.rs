//! Fuzzes the capture reader with proptest: random bytes behind every magic,
//! and byte flips, length-field overwrites and truncations of generated
//! pcap/pcapng captures (and of the external captures when
//! `SLOWSCAN_EXTERNAL_CAPTURES` is set), plain and gzipped, gzipping before
//! or after the damage. Every packet read also goes through the frame parser.
//!
//! The reader must end every input with `Ok(None)` or an error, each packet
//! strictly after the previous one, and stay finished afterwards.
//! `SLOWSCAN_FUZZ_CASES=N` sets the proptest cases per test.

mod capture_builder;
mod catalogue;

use std::{cell::Cell, io::Cursor};

use capture_builder::*;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use slowscan::capture::{CaptureReader, MAX_PACKET};
use slowscan::frame::parse_frame;

fn runner(default_cases: u32) -> TestRunner {
    slowscan_testkit::fuzz::fuzz_runner(default_cases)
}

/// Reads `bytes` to the end; returns the packets read.
fn drain(bytes: Vec<u8>, gzipped: bool) -> Result<u64, TestCaseError> {
    let len = bytes.len() as u64;
    let mut reader = match CaptureReader::from_reader("fuzz.pcap", Cursor::new(bytes)) {
        Ok(r) => r,
        Err(e) => {
            prop_assert!(!e.to_string().is_empty());
            return Ok(0);
        }
    };
    let mut packets = 0u64;
    let mut last_offset = None;
    loop {
        match reader.next_packet() {
            Ok(Some(p)) => {
                prop_assert!(
                    last_offset.is_none_or(|l| p.offset > l),
                    "no progress at {}",
                    p.offset
                );
                last_offset = Some(p.offset);
                prop_assert!(p.data.len() <= MAX_PACKET && p.wire_len >= p.data.len());
                let _ = parse_frame(p.link, p.data, p.wire_len, p.ts_ns);
                packets += 1;
                // Every record or block takes at least 12 bytes of the stream.
                prop_assert!(
                    gzipped || packets * 12 <= len,
                    "{packets} packets from {len} bytes"
                );
                prop_assert!(packets <= 1_000_000, "reader does not end");
            }
            Ok(None) => break,
            Err(e) => {
                prop_assert!(e.to_string().starts_with("fuzz.pcap: "), "{}", e);
                break;
            }
        }
    }
    prop_assert!(
        matches!(reader.next_packet(), Ok(None)),
        "reader not finished"
    );
    Ok(packets)
}

/// Valid captures to damage: every format variant the reader knows.
fn seeds() -> Vec<Vec<u8>> {
    let frames: Vec<_> = catalogue::catalogue()
        .into_iter()
        .filter(|c| c.link == slowscan::frame::LinkType::Ethernet)
        .map(|c| c.frame)
        .collect();
    let mut seeds = Vec::new();
    for (o, nanos) in [(LE, false), (BE, true)] {
        let mut f = pcap_header(o, nanos, 1);
        for (i, frame) in frames.iter().take(6).enumerate() {
            f.extend(pcap_record(o, i as u32, 999, frame, frame.len() as u32 + 4));
        }
        seeds.push(f);
    }
    for o in [LE, BE] {
        let mut ng = Ng::new(o);
        ng.idb(1, 0, &[])
            .block(NRB, &[0; 8])
            .idb(101, 64, &[(9, vec![0x8A])]);
        ng.epb(0, 1 << 40, &frames[0], 60)
            .spb(&frames[1], frames[1].len() as u32);
        ng.epb(1, 77, &catalogue::inner4(&catalogue::syn()), 40)
            .block(ISB, &[1; 16]);
        ng.opb(0, 5, &frames[2], 90)
            .shb()
            .idb(113, 0, &[])
            .epb(0, 9, &frames[3], 70);
        seeds.push(ng.bytes());
    }
    seeds.extend(external_seeds());
    seeds
}

/// The first packets of each external capture, cut at a record boundary.
fn external_seeds() -> Vec<Vec<u8>> {
    let Some(dir) = std::env::var_os("SLOWSCAN_EXTERNAL_CAPTURES") else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut seeds = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "pcap") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let mut reader = CaptureReader::open(&path).unwrap();
        let mut end = bytes.len();
        for _ in 0..8 {
            if reader.next_packet().unwrap().is_none() {
                break;
            }
        }
        if let Some(p) = reader.next_packet().unwrap() {
            end = p.offset as usize;
        }
        seeds.push(bytes[..end].to_vec());
    }
    seeds
}

#[derive(Clone, Debug)]
enum Damage {
    /// Set one byte.
    Byte(usize, u8),
    /// Overwrite 4 bytes with a length-like value, in both byte orders.
    Word(usize, u32, bool),
}

fn damage() -> impl Strategy<Value = Vec<Damage>> {
    let word = prop_oneof![
        Just(0u32),
        Just(4),
        Just(8),
        Just(12),
        Just(13),
        Just(0xFFFF_FFFF),
        Just(0x7FFF_FFFC),
        Just(MAX_PACKET as u32 + 1),
        0u32..600,
    ];
    let one = prop_oneof![
        3 => (any::<usize>(), any::<u8>()).prop_map(|(at, v)| Damage::Byte(at, v)),
        1 => (any::<usize>(), word, any::<bool>()).prop_map(|(at, v, big)| Damage::Word(at, v, big)),
    ];
    proptest::collection::vec(one, 0..5)
}

fn apply(bytes: &mut [u8], damage: &[Damage]) {
    if bytes.is_empty() {
        return;
    }
    for d in damage {
        match *d {
            Damage::Byte(at, v) => bytes[at % bytes.len()] = v,
            Damage::Word(at, v, big) => {
                let at = at % bytes.len();
                let word = if big {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                };
                for (i, b) in word.into_iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(at + i) {
                        *slot = b;
                    }
                }
            }
        }
    }
}

/// Random bytes after each magic the reader dispatches on.
#[test]
fn random_bytes_behind_every_magic() {
    let inputs = Cell::new(0u64);
    let magics: [&[u8]; 7] = [
        &[],
        &[0xD4, 0xC3, 0xB2, 0xA1],
        &[0xA1, 0xB2, 0x3C, 0x4D],
        &[0x0A, 0x0D, 0x0D, 0x0A],
        &[
            0x0A, 0x0D, 0x0D, 0x0A, 0x1C, 0, 0, 0, 0x4D, 0x3C, 0x2B, 0x1A, 1, 0, 0, 0,
        ],
        &[0x1F, 0x8B],
        &[0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF],
    ];
    let strategy = (
        0..magics.len(),
        proptest::collection::vec(any::<u8>(), 0..300),
    );
    runner(25_000)
        .run(&strategy, |(m, tail)| {
            let mut bytes = magics[m].to_vec();
            bytes.extend(tail);
            drain(bytes, m >= 5)?;
            inputs.set(inputs.get() + 1);
            Ok(())
        })
        .unwrap();
    eprintln!("capture fuzz, random bytes: {} inputs", inputs.get());
}

/// Damaged and truncated captures, gzipped before or after the damage.
#[test]
fn damaged_captures() {
    let seeds = seeds();
    let gzipped: Vec<_> = seeds.iter().map(|s| gzip(s)).collect();
    let inputs = Cell::new(0u64);
    let packets = Cell::new(0u64);
    let strategy = (
        0..seeds.len(),
        damage(),
        proptest::option::of(any::<usize>()),
        0u8..3,
    );
    runner(40_000)
        .run(&strategy, |(which, dmg, cut, gz)| {
            let mut bytes = if gz == 1 {
                gzipped[which].clone()
            } else {
                seeds[which].clone()
            };
            apply(&mut bytes, &dmg);
            if let Some(cut) = cut {
                bytes.truncate(cut % (bytes.len() + 1));
            }
            if gz == 2 {
                bytes = gzip(&bytes);
            }
            packets.set(packets.get() + drain(bytes, gz != 0)?);
            inputs.set(inputs.get() + 1);
            Ok(())
        })
        .unwrap();
    eprintln!(
        "capture fuzz, damaged captures: {} inputs from {} seeds, {} packets read",
        inputs.get(),
        seeds.len(),
        packets.get()
    );
}
