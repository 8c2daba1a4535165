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
    load_sized(mode, mirror, slowscan_common::PENDING_MAX)
}

/// The tests that fill the pending table use one smaller than the default
/// (`--kernel-pending-max`): the same LRU, a quarter of the frames.
const SMALL_TABLE: u32 = 262_144;

fn load_sized(mode: Mode, mirror: bool, pending_max: u32) -> (DataPlane, RecordReader) {
    let mut dp = DataPlane::load(ProgramOptions {
        prefilter: mode == Mode::Prefilter,
        mirror,
        pending_max,
        ..ProgramOptions::default()
    })
    .expect("load the XDP program");
    let reader = dp.take_records().expect("record reader");
    (dp, reader)
}

fn run_fixtures(mode: Mode) {
    let (mut dp, mut reader) = load(mode, false);
    let mut failures = Vec::new();
    for fx in fixtures(mode) {
        for r in &fx.whitelist {
            dp.whitelist().unwrap().insert_rule(r).unwrap();
        }
        for p in &fx.ignore {
            dp.ignore().unwrap().insert(p).unwrap();
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
        for r in &fx.whitelist {
            assert!(
                dp.whitelist().unwrap().remove_rule(r).unwrap(),
                "{}: {r}",
                fx.name
            );
        }
        for p in &fx.ignore {
            assert!(dp.ignore().unwrap().remove(p).unwrap(), "{}: {p}", fx.name);
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

/// A full pending table cannot blind the pre-filter: the table is an LRU
/// map, so the oldest attempts give way. After more attempts than it holds,
/// a new attempt is still tracked (not `STATUS_UNTRACKED`), a handshake
/// whose SYN and follow-up come back to back is still recognised, and the
/// forgotten count says how many gave way. The sweep then takes back the
/// hint counts the evicted entries left, never below a live entry's.
#[test]
fn full_pending_table_forgets_the_oldest_attempts() {
    if !privileged("full_pending_table_forgets_the_oldest_attempts") {
        return;
    }
    let (mut dp, mut reader) = load_sized(Mode::Prefilter, false, SMALL_TABLE);
    let mut got = Vec::new();
    let distinct = |i: u32| {
        let mut t = Tcp::syn(i);
        t.src_port = 1024 + (i % 60_000) as u16;
        t.dst_port = 1 + (i / 60_000) as u16;
        t
    };
    let max = SMALL_TABLE;
    let extra = 20_000;
    let before = dp.counters().unwrap();
    let mut untracked = 0;
    let mut emitted = 0;
    for i in 0..max + extra {
        dp.test_run(&frames::tcp4(&distinct(i)), 1).unwrap();
        if i % 50_000 == 0 || i == max + extra - 1 {
            got.clear();
            reader.drain(&mut got);
            emitted += got.len();
            untracked += got
                .iter()
                .filter(|r| r.status & slowscan_common::STATUS_UNTRACKED != 0)
                .count();
        }
    }
    assert_eq!(emitted, (max + extra) as usize, "every attempt is emitted");
    assert_eq!(
        untracked, 0,
        "no attempt is untracked, the table full or not"
    );
    let entries = dp.pending_len().unwrap();
    assert!(
        entries <= max as usize && entries > (max - max / 8) as usize,
        "the table stays at its capacity: {entries} of {max}"
    );

    // A scanner's probe, and a handshake completing back to back, while full.
    let probe = distinct(max + extra);
    let mut syn = distinct(max + extra + 1);
    syn.seq = 77;
    let mut ack = syn.clone();
    ack.flags = slowscan_common::tcp::ACK;
    ack.seq = 78;
    let mid = dp.counters().unwrap();
    for t in [&probe, &syn, &ack] {
        dp.test_run(&frames::tcp4(t), 1).unwrap();
    }
    let delta = dp.counters().unwrap().since(&mid);
    got.clear();
    reader.drain(&mut got);
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0].status, 0, "the new attempt is tracked: {:?}", got[0]);
    assert_eq!(got[1].status, 0, "{:?}", got[1]);
    assert_eq!(
        (got[2].seq, got[2].status),
        (78, slowscan_common::STATUS_FOLLOW_UP),
        "the handshake's follow-up is emitted"
    );
    assert_eq!(delta.get(Counter::PendingInsertFailed), 0);
    assert_eq!(delta.get(Counter::PendingInserted), 2);
    assert_eq!(delta.get(Counter::PendingResolved), 1);

    // The forgotten count: inserted − resolved − swept − entries. A sweep at
    // time 0 expires nothing.
    assert_eq!(dp.sweep_pending(0, 60_000_000_000).unwrap(), 0);
    let stats = dp.pending_stats();
    let c = dp.counters().unwrap().since(&before);
    let entries = dp.pending_len().unwrap() as u64;
    assert_eq!(stats.entries, entries);
    assert_eq!(
        stats.forgotten,
        c.get(Counter::PendingInserted) - c.get(Counter::PendingResolved) - entries
    );
    assert!(
        stats.forgotten >= u64::from(extra),
        "forgotten {} after {extra} attempts beyond the capacity",
        stats.forgotten
    );
    // Every evicted entry's hint count was stale; the sweep took them back,
    // and no live entry's slot went below the entries hashing there.
    assert_eq!(stats.stale_hints_released, stats.forgotten);
    assert_eq!(dp.hints().total(), entries);
    let mut per_slot = std::collections::HashMap::new();
    for (k, v) in dp.pending_entries().unwrap() {
        *per_slot.entry(k.hint_slot(v.seq)).or_insert(0u64) += 1;
    }
    for (slot, n) in per_slot {
        assert_eq!(dp.hints().get(slot), n, "slot {slot}");
    }
    // Everything expires at last; nothing is left behind.
    dp.sweep_pending(u64::MAX / 2, 0).unwrap();
    assert_eq!(dp.pending_len().unwrap(), 0);
    assert_eq!(dp.hints().total(), 0);
    let stats = dp.pending_stats();
    assert_eq!(stats.entries, 0);
    assert_eq!(stats.swept, entries);
}

/// The sweep takes stale hint counts back beside a running program without
/// ever taking a live entry's: while one thread floods the program with new
/// attempts, follow-ups and new sequence numbers, and a sweeper on another
/// thread corrects (and, in a first round, expires entries older than
/// 200 ms, so its deletes race the follow-ups; in a second, the table
/// overflows and the LRU evicts), no entry left at the end has fewer counts
/// in its slot than entries hashing there (so the correction lost no
/// follow-up). Once quiet, a last sweep leaves exactly the live entries' counts.
#[test]
fn hint_correction_beside_a_flood_never_undercounts() {
    if !privileged("hint_correction_beside_a_flood_never_undercounts") {
        return;
    }
    let (mut dp, mut reader) = load_sized(Mode::Prefilter, false, SMALL_TABLE);
    let mut sweeper = Some(dp.take_sweeper().unwrap());
    let max = SMALL_TABLE;
    for (round, expire, attempts) in [(0u32, true, 200_000u32), (1, false, max + 60_000)] {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sweeping = {
            let stop = stop.clone();
            let mut sweeper = sweeper.take().unwrap();
            std::thread::spawn(move || {
                let mut sweeps = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let now = if expire {
                        slowscan::daemon::monotonic_ns()
                    } else {
                        0
                    };
                    sweeper.sweep(now, 200_000_000).unwrap();
                    sweeps += 1;
                }
                (sweeper, sweeps)
            })
        };
        let mut got = Vec::new();
        for i in 0..attempts {
            let mut t = Tcp::syn(i.wrapping_mul(2_654_435_761));
            t.src_port = 1024 + (i % 60_000) as u16;
            t.dst_port = 1 + (i / 60_000) as u16 + 100 * round as u16;
            dp.test_run(&frames::tcp4(&t), 1).unwrap();
            match i % 6 {
                0 => {
                    // Completes at once.
                    let mut a = t.clone();
                    a.flags = slowscan_common::tcp::ACK;
                    a.seq = t.seq.wrapping_add(1);
                    dp.test_run(&frames::tcp4(&a), 1).unwrap();
                }
                3 => {
                    // A new S on the same 5-tuple moves its hint.
                    let mut r = t.clone();
                    r.seq ^= 0x5555;
                    dp.test_run(&frames::tcp4(&r), 1).unwrap();
                }
                _ => {}
            }
            if i % 20_000 == 0 {
                got.clear();
                reader.drain(&mut got);
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (s, sweeps) = sweeping.join().unwrap();
        sweeper = Some(s);
        assert!(sweeps >= 2, "round {round}: the sweeper ran {sweeps} times");
        let mut per_slot = std::collections::HashMap::new();
        for (k, v) in dp.pending_entries().unwrap() {
            *per_slot.entry(k.hint_slot(v.seq)).or_insert(0u64) += 1;
        }
        for (slot, live) in &per_slot {
            assert!(
                dp.hints().get(*slot) >= *live,
                "round {round}, slot {slot}: {} counts for {live} live entries",
                dp.hints().get(*slot)
            );
        }
    }
    let mut sweeper = sweeper.unwrap();
    // A starved sweeper thread (a loaded machine) may have last run before
    // the overflow: one sweep now sees what the LRU evicted.
    sweeper.sweep(0, 0).unwrap();
    let stats = sweeper.stats();
    assert!(
        stats.swept > 0 && stats.forgotten > 0 && stats.stale_hints_released > 0,
        "{stats:?}"
    );
    // Quiet now: a last sweep that expires nothing leaves exact counts.
    sweeper.sweep(0, 0).unwrap();
    assert_eq!(dp.hints().total(), dp.pending_len().unwrap() as u64);
    assert!(
        dp.sweep_pending(0, 0).is_err(),
        "one sweeper per table: the data plane's was taken"
    );
}

/// R4.6: an ignored source's SYN takes no pending entry (its follow-up,
/// once the source is no longer ignored, is bulk data), and the follow-up of
/// an attempt pending from before its source was ignored is suppressed and
/// counted, and releases the entry.
#[test]
fn ignored_sources_take_no_pending_entry() {
    if !privileged("ignored_sources_take_no_pending_entry") {
        return;
    }
    let (mut dp, mut reader) = load(Mode::Prefilter, false);
    let net: slowscan::ignore::Prefix = "198.51.100.0/24".parse().unwrap();
    let mut got = Vec::new();
    let syn = port(Tcp::syn(500), 61);
    let ack = port(Tcp::new(slowscan_common::tcp::ACK, 501), 61);

    dp.ignore().unwrap().insert(&net).unwrap();
    let c0 = dp.counters().unwrap();
    dp.test_run(&frames::tcp4(&syn), 1).unwrap();
    assert_eq!(reader.drain(&mut got), 0);
    assert_eq!(
        dp.pending_len().unwrap(),
        0,
        "an ignored SYN takes no entry"
    );
    assert_eq!(dp.hints().total(), 0, "nor a hint");
    assert!(dp.ignore().unwrap().remove(&net).unwrap());
    dp.test_run(&frames::tcp4(&ack), 1).unwrap();
    assert_eq!(reader.drain(&mut got), 0, "nothing was pending");
    let d = dp.counters().unwrap().since(&c0);
    assert_eq!(d.get(Counter::Ignored), 1);
    assert_eq!(d.get(Counter::PendingInserted), 0);

    // Pending before the source is ignored: the follow-up is suppressed.
    dp.test_run(&frames::tcp4(&syn), 1).unwrap();
    assert_eq!(reader.drain(&mut got), 1);
    assert_eq!(dp.pending_len().unwrap(), 1);
    dp.ignore().unwrap().insert(&net).unwrap();
    let c1 = dp.counters().unwrap();
    dp.test_run(&frames::tcp4(&ack), 1).unwrap();
    let d = dp.counters().unwrap().since(&c1);
    got.clear();
    assert_eq!(reader.drain(&mut got), 0, "{got:?}");
    assert_eq!(d.get(Counter::Ignored), 1);
    assert_eq!(d.get(Counter::PendingResolved), 1);
    assert_eq!(d.get(Counter::FollowUpsEmitted), 0);
    assert_eq!(dp.pending_len().unwrap(), 0);
    assert_eq!(dp.hints().total(), 0);

    // The kernel map lists what it holds, and says what it does not.
    let map = dp.ignore().unwrap();
    assert!(map.contains(&net));
    assert!(!map.contains(&"198.51.100.0/25".parse().unwrap()));
    assert!(!map.contains(&"198.51.0.0/16".parse().unwrap()));
    assert_eq!(map.list().unwrap(), vec![net]);
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

/// A full ignore trie is a clear error naming the cap, and the prefixes
/// already in it keep working.
#[test]
fn full_ignore_map_is_a_clear_error() {
    if !privileged("full_ignore_map_is_a_clear_error") {
        return;
    }
    let (mut dp, _reader) = load(Mode::Prefilter, false);
    let mut map = dp.ignore().unwrap();
    let host = |i: u32| -> slowscan::ignore::Prefix {
        let a = std::net::Ipv4Addr::from(0xc000_0000u32 | i); // 192.0.0.0/8 hosts
        slowscan::ignore::Prefix::host(a.into())
    };
    let max = slowscan_common::IGNORE_MAX;
    for i in 0..max {
        map.insert(&host(i)).unwrap();
    }
    let err = format!("{:#}", map.insert(&host(max)).unwrap_err());
    assert!(
        err.contains("full") && err.contains(&max.to_string()),
        "{err}"
    );
    assert!(map.contains(&host(max - 1)));
    assert!(!map.contains(&host(max)));
    // The IPv6 trie has its own room.
    map.insert(&"2001:db8::/32".parse().unwrap()).unwrap();
}

fn rule(s: &str) -> slowscan::whitelist::WhitelistRule {
    s.parse().unwrap()
}

/// The rule tries list what they hold (a port range per run of ports,
/// overlapping ranges merged), tell an exact rule from a covered one, and
/// follow a whitelist file on sync (R4.4).
#[test]
fn whitelist_rules_list_remove_and_sync() {
    if !privileged("whitelist_rules_list_remove_and_sync") {
        return;
    }
    let (mut dp, _reader) = load(Mode::Prefilter, false);
    let mut map = dp.whitelist().unwrap();
    for r in [
        "203.0.113.0/24:80-90",
        "203.0.113.0/24:85-100",
        "[2001:db8::/32]:*",
    ] {
        map.insert_rule(&rule(r)).unwrap();
    }
    // A single destination goes to the exact map.
    map.insert_rule(&rule("198.51.100.7:22")).unwrap();
    assert_eq!(
        map.rules().unwrap(),
        vec![rule("203.0.113.0/24:80-100"), rule("[2001:db8::/32]:*")]
    );
    assert_eq!(
        map.keys().unwrap(),
        vec![rule("198.51.100.7:22").as_key().unwrap()]
    );
    assert!(map.has_rule(&rule("203.0.113.0/24:90-95")));
    // Covered, but not a rule of its own.
    assert!(!map.has_rule(&rule("203.0.113.0/25:80")));
    let key = |s: &str| {
        let sa: std::net::SocketAddr = s.parse().unwrap();
        slowscan::whitelist::key_of(sa.ip(), sa.port())
    };
    assert!(map.matches(&key("203.0.113.200:100")));
    assert!(!map.matches(&key("203.0.113.200:101")));
    assert!(map.matches(&key("[2001:db8:ffff::1]:1")));
    assert!(!map.matches(&key("[2001:db9::1]:1")));
    assert!(map.matches(&key("198.51.100.7:22")));

    // Removing one of two overlapping rules takes the shared ports too; a
    // sync to the file puts them back and drops what the file lacks.
    assert!(map.remove_rule(&rule("203.0.113.0/24:80-90")).unwrap());
    assert_eq!(
        map.rules().unwrap(),
        vec![rule("203.0.113.0/24:91-100"), rule("[2001:db8::/32]:*")]
    );
    let mut want = slowscan::whitelist::Whitelist::new();
    want.insert_rule(rule("203.0.113.0/24:85-100"));
    want.insert_rule(rule("198.51.100.0/24:443"));
    let (added, removed) = map.sync(&want).unwrap();
    // 85–90 and 198.51.100.0/24:443 added; the IPv6 rule and 198.51.100.7:22 removed.
    assert_eq!((added, removed), (7, 2));
    assert_eq!(
        map.rules().unwrap(),
        vec![rule("198.51.100.0/24:443"), rule("203.0.113.0/24:85-100")]
    );
    assert!(map.keys().unwrap().is_empty());
    assert_eq!(map.sync(&want).unwrap(), (0, 0));
    assert_eq!(
        map.sync(&slowscan::whitelist::Whitelist::new()).unwrap(),
        (0, 17)
    );
    assert!(map.rules().unwrap().is_empty());
}

/// The XDP program and the engine's whitelist agree on every rule set:
/// random prefixes around DST4 and DST6 with random port ranges, SYNs to
/// random ports, the kernel's verdict (a record or a `whitelisted` count)
/// against `Whitelist::contains` (R4.4).
#[test]
fn kernel_rules_agree_with_the_engine() {
    if !privileged("kernel_rules_agree_with_the_engine") {
        return;
    }
    use slowscan::whitelist::{Whitelist, WhitelistRule, key_of};
    let (mut dp, mut reader) = load(Mode::All, false);
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let dst4: std::net::IpAddr = std::net::Ipv4Addr::from(frames::DST4).into();
    let dst6: std::net::IpAddr = std::net::Ipv6Addr::from(DST6).into();
    let mut checked = [0u32; 2];
    for round in 0..24 {
        let mut wl = Whitelist::new();
        for _ in 0..1 + next(4) {
            let v6 = next(2) == 1;
            let (ip, bits) = if v6 { (dst6, 128) } else { (dst4, 32) };
            // Lengths near the host's, so some prefixes cover it and some
            // (a flipped bit inside the prefix) do not.
            let len = (bits - next(12)) as u8;
            let mut p = slowscan::ignore::Prefix::masked(ip, len);
            if next(3) == 0 {
                let flipped = flip_bit(ip, len.saturating_sub(1 + next(4) as u8));
                p = slowscan::ignore::Prefix::masked(flipped, len);
            }
            let lo = 1 + next(200) as u16;
            let ports = match next(5) {
                0 => (1, u16::MAX),
                1 => (lo, lo),
                _ => (lo, lo + next(60) as u16),
            };
            let r = WhitelistRule { prefix: p, ports };
            wl.insert_rule(r);
            dp.whitelist().unwrap().insert_rule(&r).unwrap();
        }
        for i in 0..40u16 {
            let dport = 1 + next(260) as u16;
            let v6 = next(2) == 1;
            let mut t = port(Tcp::syn(round), 1000 + i);
            t.dst_port = dport;
            let frame = if v6 {
                frames::tcp6(&t)
            } else {
                frames::tcp4(&t)
            };
            let key = key_of(if v6 { dst6 } else { dst4 }, dport);
            dp.test_run(&frame, 1).unwrap();
            let mut got = Vec::new();
            let emitted = reader.drain(&mut got) == 1;
            assert_eq!(
                !emitted,
                wl.contains(&key),
                "round {round}: SYN to {}:{dport}, rules {:?}",
                if v6 { dst6 } else { dst4 },
                wl.rules().map(|r| r.to_string()).collect::<Vec<_>>()
            );
            checked[usize::from(emitted)] += 1;
        }
        dp.whitelist().unwrap().sync(&Whitelist::new()).unwrap();
    }
    // Both outcomes occurred often enough to mean something.
    assert!(checked.iter().all(|&n| n >= 50), "{checked:?}");
}

fn flip_bit(ip: std::net::IpAddr, bit: u8) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V4(a) => {
            std::net::Ipv4Addr::from(u32::from(a) ^ (1 << (31 - bit))).into()
        }
        std::net::IpAddr::V6(a) => {
            std::net::Ipv6Addr::from(u128::from(a) ^ (1 << (127 - u32::from(bit)))).into()
        }
    }
}

/// A full rule trie is a clear error; the rule that did not fit leaves
/// nothing behind, and the rules before it keep working.
#[test]
fn full_whitelist_rule_table_is_a_clear_error() {
    if !privileged("full_whitelist_rule_table_is_a_clear_error") {
        return;
    }
    let (mut dp, _reader) = load(Mode::Prefilter, false);
    let mut map = dp.whitelist().unwrap();
    let big = rule("203.0.113.0/24:2-65000");
    map.insert_rule(&big).unwrap();
    let over = rule("198.51.100.0/24:1000-2000");
    let err = format!("{:#}", map.insert_rule(&over).unwrap_err());
    assert!(
        err.contains("full") && err.contains(&slowscan_common::WHITELIST_RULES_MAX.to_string()),
        "{err}"
    );
    assert_eq!(map.rules().unwrap(), vec![big]);
    // A range wider than the table is refused before it is tried.
    let err = format!(
        "{:#}",
        map.insert_rule(&rule("198.51.100.0/24:1-65534"))
            .unwrap_err()
    );
    assert!(err.contains("full"), "{err}");
    // `*` takes one entry in the other trie.
    map.insert_rule(&rule("198.51.100.0/24:*")).unwrap();
}
