//! BPF_PROG_TEST_RUN over the fixture table (`slowscan_tests::fixtures`):
//! for each frame, the verdict, every record field and every counter delta,
//! in both pre-filter modes. The real program runs in the real kernel.

use slowscan::kernel::{Counters, DataPlane, ProgramOptions, RecordReader};
use slowscan_common::{AF_INET6, Counter, PacketRecord, WhitelistKey};
use slowscan_tests::{
    fixtures::{Mode, XDP_DROP, XDP_PASS, fixtures, port},
    frames::{self, DST6, Tcp},
    privileged,
};

fn load(mode: Mode, mirror: bool) -> (DataPlane, RecordReader) {
    let mut dp = DataPlane::load(ProgramOptions {
        prefilter: mode == Mode::Prefilter,
        mirror,
    })
    .expect("load the XDP program");
    let reader = dp.take_records().expect("record reader");
    (dp, reader)
}

fn run_fixtures(mode: Mode) {
    let (mut dp, mut reader) = load(mode, false);
    let mut failures = Vec::new();
    for fx in fixtures(mode) {
        for k in &fx.whitelist {
            dp.whitelist().unwrap().insert(*k).unwrap();
        }
        for (i, step) in fx.steps.iter().enumerate() {
            let ctx = format!("[{:?}] {} step {}", mode, fx.name, i + 1);
            let before = dp.counters().unwrap();
            let (verdict, _) = dp.test_run(&step.frame, 1).unwrap();
            let delta = dp.counters().unwrap().since(&before);
            let mut got = Vec::new();
            reader.drain(&mut got);
            if verdict != XDP_PASS {
                failures.push(format!("{ctx}: verdict {verdict}, expected XDP_PASS"));
            }
            check_counters(&ctx, &delta, &step.counters, &mut failures);
            match (&step.record, got.as_slice()) {
                (None, []) => {}
                (Some(want), [one]) => {
                    if one.ts_ns == 0 {
                        failures.push(format!("{ctx}: record without a kernel timestamp"));
                    }
                    let one = PacketRecord { ts_ns: 0, ..*one };
                    if one != *want {
                        failures.push(format!("{ctx}: record\n  got  {one:?}\n  want {want:?}"));
                    }
                }
                (want, got) => failures.push(format!("{ctx}: records {got:?}, expected {want:?}")),
            }
        }
        for k in &fx.whitelist {
            dp.whitelist().unwrap().remove(k).unwrap();
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn check_counters(ctx: &str, delta: &Counters, want: &[Counter], failures: &mut Vec<String>) {
    for c in Counter::ALL {
        let expected = match c {
            Counter::Frames => 1,
            c => want.iter().filter(|w| **w == c).count() as u64,
        };
        if delta.get(c) != expected {
            failures.push(format!(
                "{ctx}: counter {} moved by {}, expected {expected}",
                c.name(),
                delta.get(c)
            ));
        }
    }
}

#[test]
fn fixtures_with_prefilter() {
    if privileged("fixtures_with_prefilter") {
        run_fixtures(Mode::Prefilter);
    }
}

#[test]
fn fixtures_without_prefilter() {
    if privileged("fixtures_without_prefilter") {
        run_fixtures(Mode::All);
    }
}

/// Mirror mode drops every frame after inspection, whatever it is.
#[test]
fn mirror_mode_drops_after_inspection() {
    if !privileged("mirror_mode_drops_after_inspection") {
        return;
    }
    let (mut dp, mut reader) = load(Mode::Prefilter, true);
    for fx in fixtures(Mode::Prefilter) {
        for step in &fx.steps {
            let (verdict, _) = dp.test_run(&step.frame, 1).unwrap();
            assert_eq!(verdict, XDP_DROP, "{}", fx.name);
        }
    }
    let mut got = Vec::new();
    reader.drain(&mut got);
    assert!(
        got.iter().any(|r| r.is_attempt()),
        "mirror mode must still emit records"
    );
}

/// A whitelist added while the program runs takes effect on the next frame.
#[test]
fn whitelist_update_takes_effect_at_once() {
    if !privileged("whitelist_update_takes_effect_at_once") {
        return;
    }
    let (mut dp, mut reader) = load(Mode::Prefilter, false);
    let t = port(Tcp::syn(9), 31);
    let f6 = frames::tcp6(&t);
    let key = WhitelistKey::new(AF_INET6, DST6, 80);
    let mut got = Vec::new();
    dp.test_run(&f6, 1).unwrap();
    assert_eq!(reader.drain(&mut got), 1);
    dp.whitelist().unwrap().insert(key).unwrap();
    assert!(dp.whitelist().unwrap().contains(&key));
    dp.test_run(&f6, 1).unwrap();
    assert_eq!(
        reader.drain(&mut got),
        0,
        "whitelisted IPv6 destination must not be emitted"
    );
    // Another port of the same host is not whitelisted.
    let mut other = t.clone();
    other.dst_port = 81;
    dp.test_run(&frames::tcp6(&other), 1).unwrap();
    assert_eq!(reader.drain(&mut got), 1);
    assert!(dp.whitelist().unwrap().remove(&key).unwrap());
    dp.test_run(&f6, 1).unwrap();
    assert_eq!(reader.drain(&mut got), 1);
}

/// The pre-filter's hint array counts exactly the pending attempts, through
/// retransmissions, new sequence numbers on a 5-tuple and matched follow-ups;
/// the userspace sweep releases what it expires, after which a late
/// follow-up is bulk data and a new handshake is tracked again.
#[test]
fn pending_hints_stay_consistent_through_sweeps() {
    if !privileged("pending_hints_stay_consistent_through_sweeps") {
        return;
    }
    let (mut dp, mut reader) = load(Mode::Prefilter, false);
    let mut got = Vec::new();
    let run = |dp: &mut DataPlane, t: &Tcp| {
        dp.test_run(&frames::tcp4(t), 1).unwrap();
    };
    for i in 0..300u32 {
        let p = 1000 + i as u16;
        let seq = i.wrapping_mul(2_654_435_761);
        run(&mut dp, &port(Tcp::syn(seq), p));
        if i % 7 == 0 {
            run(&mut dp, &port(Tcp::syn(seq), p)); // retransmission
        }
        if i % 5 == 0 {
            run(&mut dp, &port(Tcp::syn(seq ^ 0xffff), p)); // new S on the same 5-tuple
        } else if i % 3 == 0 {
            run(
                &mut dp,
                &port(Tcp::new(slowscan_common::tcp::ACK, seq.wrapping_add(1)), p),
            );
        }
    }
    reader.drain(&mut got);
    let pending = dp.pending_len().unwrap() as u64;
    assert_eq!(
        pending,
        300 - (0..300).filter(|i| i % 5 != 0 && i % 3 == 0).count() as u64
    );
    assert_eq!(
        dp.hints().total(),
        pending,
        "hints must count the pending attempts exactly"
    );
    let follow_ups = got
        .iter()
        .filter(|r| r.status & slowscan_common::STATUS_FOLLOW_UP != 0)
        .count();
    assert_eq!(
        follow_ups,
        (0..300).filter(|i| i % 5 != 0 && i % 3 == 0).count()
    );

    let swept = dp.sweep_pending(u64::MAX / 2, 60_000_000_000).unwrap();
    assert_eq!(swept as u64, pending);
    assert_eq!(dp.pending_len().unwrap(), 0);
    assert_eq!(
        dp.hints().total(),
        0,
        "the sweep releases every hint it expires"
    );

    got.clear();
    let late = port(Tcp::new(slowscan_common::tcp::ACK, 2), 1001);
    run(&mut dp, &late);
    assert_eq!(
        reader.drain(&mut got),
        0,
        "a follow-up after its attempt expired is bulk data"
    );
    run(&mut dp, &port(Tcp::syn(1), 1001));
    run(&mut dp, &late);
    assert_eq!(
        reader.drain(&mut got),
        2,
        "a new handshake is tracked again"
    );
}

/// A full pending table is a counted outcome, never a silent loss: the
/// attempt is still emitted, marked untracked, and `pending_full` counts it,
/// so userspace does not mistake "could not track" for "failed".
#[test]
fn full_pending_table_marks_attempts_untracked() {
    if !privileged("full_pending_table_marks_attempts_untracked") {
        return;
    }
    let (mut dp, mut reader) = load(Mode::Prefilter, false);
    let mut got = Vec::new();
    let distinct = |i: u32| {
        let mut t = Tcp::syn(i);
        t.src_port = 1024 + (i % 60_000) as u16;
        t.dst_port = 1 + (i / 60_000) as u16;
        frames::tcp4(&t)
    };
    let max = slowscan_common::PENDING_MAX;
    for i in 0..max {
        dp.test_run(&distinct(i), 1).unwrap();
        if i % 100_000 == 0 {
            got.clear();
            reader.drain(&mut got);
        }
    }
    got.clear();
    reader.drain(&mut got);
    let before = dp.counters().unwrap();
    dp.test_run(&distinct(max), 1).unwrap();
    // A known 5-tuple still updates in place.
    dp.test_run(&distinct(0), 1).unwrap();
    let delta = dp.counters().unwrap().since(&before);
    got.clear();
    reader.drain(&mut got);
    assert_eq!(got.len(), 2, "both attempts are emitted");
    assert_eq!(
        got[0].status & slowscan_common::STATUS_UNTRACKED,
        slowscan_common::STATUS_UNTRACKED
    );
    assert_eq!(got[1].status & slowscan_common::STATUS_UNTRACKED, 0);
    assert_eq!(delta.get(Counter::PendingFull), 1);
    assert_eq!(delta.get(Counter::AttemptsEmitted), 2);
    assert_eq!(dp.pending_len().unwrap(), max as usize);
    assert_eq!(
        dp.hints().total(),
        u64::from(max),
        "an untracked attempt leaves no hint behind"
    );
}

/// A full whitelist map is a clear error naming the limit.
#[test]
fn full_whitelist_map_is_a_clear_error() {
    if !privileged("full_whitelist_map_is_a_clear_error") {
        return;
    }
    let (mut dp, _reader) = load(Mode::Prefilter, false);
    let mut wl = dp.whitelist().unwrap();
    let key = |i: u32| {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&[203, 0, 113, (i % 256) as u8]);
        WhitelistKey::new(slowscan_common::AF_INET, a, 1 + (i / 256) as u16)
    };
    for i in 0..slowscan_common::WHITELIST_MAX {
        wl.insert(key(i)).unwrap();
    }
    let err = format!(
        "{:#}",
        wl.insert(key(slowscan_common::WHITELIST_MAX)).unwrap_err()
    );
    assert!(
        err.contains("full") && err.contains(&slowscan_common::WHITELIST_MAX.to_string()),
        "{err}"
    );
}
