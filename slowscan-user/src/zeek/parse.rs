//! One conn.log line → a [`ConnLine`] or the reason it cannot count.
//!
//! TSV: fields are located by the `#fields` header (never by position),
//! with the file's `#separator` and `#unset_field`. JSON lines: Zeek's flat
//! keys (`"id.orig_h"`), unset fields left out; `ts` an epoch number,
//! epoch milliseconds (a number ≥ 10^11), or an ISO 8601 string.

use std::net::IpAddr;

use serde::{Deserialize, Deserializer, de};

use super::history::{Judged, judge};
use crate::addr::{addr_of, canonical};

/// The fields a conn.log must have to be read as attempts.
pub const NEEDED: [&str; 7] = [
    "ts",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "proto",
    "history",
];

/// An endpoint as the engine keys it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub family: u8,
    pub addr: [u8; 16],
    pub port: u16,
}

/// A TCP line that can count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnLine {
    /// The connection's first packet, Unix ns.
    pub ts_ns: u64,
    pub orig: Endpoint,
    pub resp: Endpoint,
    pub judged: Judged,
    /// `orig_l2_addr` / `resp_l2_addr` when logged (zero otherwise).
    pub orig_mac: [u8; 6],
    pub resp_mac: [u8; 6],
}

/// Why a line does not count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Not TCP (UDP, ICMP, unknown_transport).
    NotTcp,
    /// `ts` masked (`XXXXXXXXXX.XXXXXX`, as Zeek's test baselines write it).
    MaskedTs,
    /// `ts` unset or absent.
    MissingTs,
    /// `ts` not a time, or outside 1970–2262.
    BadTs,
    /// An address, port, protocol or history unset or absent.
    MissingField,
    /// Not a record: too few columns, not JSON, a bad address or port.
    Malformed,
}

pub type Parsed = Result<ConnLine, Problem>;

// ---------------------------------------------------------------------------
// Time

/// Largest Unix second whose nanoseconds fit in an i64 (year 2262).
const MAX_SECONDS: u64 = (i64::MAX as u64) / 1_000_000_000;
/// JSON numbers at or above this are epoch milliseconds (10^11 s is year 5138).
const MILLIS_FROM: f64 = 1e11;

/// `1300475167.096535` (any number of decimals), `-`-free; or ISO 8601.
pub fn parse_ts(s: &[u8]) -> Result<u64, Problem> {
    if s.first() == Some(&b'X') {
        return Err(Problem::MaskedTs);
    }
    let (int, frac) = match s.iter().position(|&c| c == b'.') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &b""[..]),
    };
    let digits = |d: &[u8]| d.iter().all(u8::is_ascii_digit);
    if int.is_empty() || int.len() > 12 || !digits(int) || !digits(frac) {
        return std::str::from_utf8(s)
            .ok()
            .and_then(iso_ns)
            .ok_or(Problem::BadTs);
    }
    let secs = int.iter().fold(0u64, |v, &c| v * 10 + u64::from(c - b'0'));
    if secs > MAX_SECONDS {
        return Err(Problem::BadTs);
    }
    let mut ns = 0u64;
    for i in 0..9 {
        ns = ns * 10 + frac.get(i).map_or(0, |&c| u64::from(c - b'0'));
    }
    Ok(secs * 1_000_000_000 + ns)
}

fn iso_ns(s: &str) -> Option<u64> {
    crate::rfc3339::parse(s).and_then(|ns| u64::try_from(ns).ok())
}

/// A JSON number of seconds (or milliseconds, see [`MILLIS_FROM`]) to ns,
/// rounded to the microsecond Zeek writes.
fn epoch_f64(x: f64) -> Result<u64, Problem> {
    let us = if x >= MILLIS_FROM { x * 1e3 } else { x * 1e6 };
    if !us.is_finite() || us < 0.0 || us >= (MAX_SECONDS * 1_000_000) as f64 {
        return Err(Problem::BadTs);
    }
    Ok(us.round() as u64 * 1000)
}

// ---------------------------------------------------------------------------
// Fields

fn endpoint(h: &[u8], p: &[u8]) -> Result<Endpoint, Problem> {
    let ip: IpAddr = match ipv4(h) {
        Some(v4) => IpAddr::from(v4),
        None => std::str::from_utf8(h)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(Problem::Malformed)?,
    };
    Ok(endpoint_of(ip, decimal_u16(p).ok_or(Problem::Malformed)?))
}

/// A dotted quad, the common case, without the general parser.
fn ipv4(s: &[u8]) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut parts = s.split(|&c| c == b'.');
    for o in &mut out {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 || (p.len() > 1 && p[0] == b'0') {
            return None;
        }
        *o = u8::try_from(decimal(p)?).ok()?;
    }
    parts.next().is_none().then_some(out)
}

fn decimal(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 5 {
        return None;
    }
    s.iter().try_fold(0u32, |v, &c| {
        c.is_ascii_digit().then(|| v * 10 + u32::from(c - b'0'))
    })
}

fn decimal_u16(s: &[u8]) -> Option<u16> {
    decimal(s).and_then(|v| u16::try_from(v).ok())
}

fn endpoint_of(ip: IpAddr, port: u16) -> Endpoint {
    let (family, addr) = addr_of(ip);
    Endpoint {
        family,
        addr: canonical(family, &addr),
        port,
    }
}

/// `00:11:22:33:44:55`; anything else is no MAC.
pub fn parse_mac(s: &[u8]) -> [u8; 6] {
    let mut mac = [0u8; 6];
    let mut parts = s.split(|&c| c == b':');
    for m in &mut mac {
        match parts
            .next()
            .and_then(|p| std::str::from_utf8(p).ok())
            .and_then(|p| u8::from_str_radix(p, 16).ok())
        {
            Some(b) => *m = b,
            None => return [0; 6],
        }
    }
    if parts.next().is_some() { [0; 6] } else { mac }
}

// ---------------------------------------------------------------------------
// TSV

/// Column indexes of a TSV log, from its header.
#[derive(Clone, Debug)]
pub struct TsvLayout {
    pub sep: u8,
    pub unset: Vec<u8>,
    /// Indexes of [`NEEDED`], then orig_l2_addr and resp_l2_addr.
    idx: [Option<usize>; 9],
    /// Per column, its slot in `idx` (`NONE`: not read).
    slot_of: Vec<u8>,
    /// The last column read, and how many are read.
    last: usize,
    wanted: usize,
    columns: usize,
}

const NONE: u8 = u8::MAX;

impl Default for TsvLayout {
    fn default() -> Self {
        TsvLayout {
            sep: b'\t',
            unset: b"-".to_vec(),
            idx: [None; 9],
            slot_of: Vec::new(),
            last: 0,
            wanted: 0,
            columns: 0,
        }
    }
}

/// `\x09` → tab; other text as is (its first byte).
fn unescape_sep(v: &[u8]) -> u8 {
    if v.len() == 4
        && v.starts_with(b"\\x")
        && let Ok(b) = u8::from_str_radix(std::str::from_utf8(&v[2..]).unwrap_or(""), 16)
    {
        return b;
    }
    v.first().copied().unwrap_or(b'\t')
}

impl TsvLayout {
    /// Takes a `#…` header line. `#fields` sets the layout again (logs
    /// concatenated with `cat` repeat their headers).
    pub fn header(&mut self, line: &[u8]) {
        if let Some(v) = line.strip_prefix(b"#separator ") {
            self.sep = unescape_sep(v);
            return;
        }
        let mut parts = line.split(|&c| c == self.sep);
        let key = parts.next().unwrap_or_default();
        match key {
            b"#unset_field" => self.unset = parts.next().unwrap_or(b"-").to_vec(),
            b"#fields" => {
                self.idx = [None; 9];
                let names: Vec<&[u8]> = parts.collect();
                self.columns = names.len();
                for (i, n) in names.iter().enumerate() {
                    let slot = NEEDED.iter().position(|w| w.as_bytes() == *n).or(match *n {
                        b"orig_l2_addr" => Some(7),
                        b"resp_l2_addr" => Some(8),
                        _ => None,
                    });
                    if let Some(s) = slot {
                        self.idx[s] = Some(i);
                    }
                }
                self.slot_of = vec![NONE; names.len()];
                for (s, i) in self.idx.iter().enumerate() {
                    if let Some(i) = *i {
                        self.slot_of[i] = s as u8;
                    }
                }
                self.last = self.idx.iter().flatten().copied().max().unwrap_or(0);
                self.wanted = self.idx.iter().flatten().count();
            }
            _ => {}
        }
    }

    /// A `#fields` line was seen.
    pub fn has_fields(&self) -> bool {
        self.columns > 0
    }

    /// The needed fields the header lacks.
    pub fn missing(&self) -> Vec<&'static str> {
        NEEDED
            .iter()
            .zip(&self.idx)
            .filter(|(_, i)| i.is_none())
            .map(|(n, _)| *n)
            .collect()
    }

    /// One record line (header complete, [`TsvLayout::missing`] empty).
    pub fn parse(&self, line: &[u8]) -> Parsed {
        let mut cols: [&[u8]; 9] = [&[]; 9];
        let mut found = 0usize;
        for (i, col) in line.split(|&c| c == self.sep).enumerate() {
            let slot = self.slot_of[i];
            if slot != NONE {
                cols[slot as usize] = col;
                found += 1;
            }
            if i >= self.last {
                break;
            }
        }
        if found < self.wanted {
            return Err(Problem::Malformed);
        }
        let unset = |v: &[u8]| v == self.unset.as_slice() || v.is_empty();
        let [ts, oh, op, rh, rp, proto, history, omac, rmac] = cols;
        if proto != b"tcp" {
            return Err(if unset(proto) {
                Problem::MissingField
            } else {
                Problem::NotTcp
            });
        }
        if [oh, op, rh, rp, history].iter().any(|v| unset(v)) {
            return Err(Problem::MissingField);
        }
        if unset(ts) {
            return Err(Problem::MissingTs);
        }
        let ts_ns = parse_ts(ts)?;
        Ok(ConnLine {
            ts_ns,
            orig: endpoint(oh, op)?,
            resp: endpoint(rh, rp)?,
            judged: judge(history),
            orig_mac: parse_mac(omac),
            resp_mac: parse_mac(rmac),
        })
    }
}

// ---------------------------------------------------------------------------
// JSON

/// `ts` as any of Zeek's JSON timestamp encodings.
struct Ts(Result<u64, Problem>);

impl<'de> Deserialize<'de> for Ts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Ts;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an epoch number or an ISO 8601 string")
            }
            fn visit_f64<E>(self, x: f64) -> Result<Ts, E> {
                Ok(Ts(epoch_f64(x)))
            }
            fn visit_u64<E>(self, x: u64) -> Result<Ts, E> {
                Ok(Ts(epoch_f64(x as f64)))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Ts, E> {
                Ok(Ts(Err(Problem::BadTs)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Ts, E> {
                Ok(Ts(parse_ts(s.as_bytes())))
            }
            fn visit_unit<E>(self) -> Result<Ts, E> {
                Ok(Ts(Err(Problem::MissingTs)))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
struct JsonConn<'a> {
    ts: Option<Ts>,
    #[serde(rename = "id.orig_h", borrow)]
    orig_h: Option<&'a str>,
    #[serde(rename = "id.orig_p")]
    orig_p: Option<u16>,
    #[serde(rename = "id.resp_h", borrow)]
    resp_h: Option<&'a str>,
    #[serde(rename = "id.resp_p")]
    resp_p: Option<u16>,
    #[serde(borrow)]
    proto: Option<&'a str>,
    #[serde(borrow)]
    history: Option<&'a str>,
    #[serde(borrow)]
    orig_l2_addr: Option<&'a str>,
    #[serde(borrow)]
    resp_l2_addr: Option<&'a str>,
}

/// Which of [`NEEDED`] a JSON line carries (bit i: `NEEDED[i]`), and the
/// line read.
pub fn parse_json(line: &[u8]) -> (u8, Parsed) {
    let Ok(j) = serde_json::from_slice::<JsonConn>(line) else {
        return (0, Err(Problem::Malformed));
    };
    let present = [
        j.ts.is_some(),
        j.orig_h.is_some(),
        j.orig_p.is_some(),
        j.resp_h.is_some(),
        j.resp_p.is_some(),
        j.proto.is_some(),
        j.history.is_some(),
    ]
    .iter()
    .enumerate()
    .fold(0u8, |m, (i, &p)| m | (u8::from(p) << i));
    (present, json_line(j))
}

fn json_line(j: JsonConn) -> Parsed {
    match j.proto {
        Some("tcp") => {}
        Some(_) => return Err(Problem::NotTcp),
        None => return Err(Problem::MissingField),
    }
    let (Some(oh), Some(op), Some(rh), Some(rp), Some(history)) =
        (j.orig_h, j.orig_p, j.resp_h, j.resp_p, j.history)
    else {
        return Err(Problem::MissingField);
    };
    let ts_ns = j.ts.ok_or(Problem::MissingTs)?.0?;
    let ip = |s: &str| s.parse::<IpAddr>().map_err(|_| Problem::Malformed);
    let mac = |m: Option<&str>| m.map_or([0; 6], |m| parse_mac(m.as_bytes()));
    Ok(ConnLine {
        ts_ns,
        orig: endpoint_of(ip(oh)?, op),
        resp: endpoint_of(ip(rh)?, rp),
        judged: judge(history.as_bytes()),
        orig_mac: mac(j.orig_l2_addr),
        resp_mac: mac(j.resp_l2_addr),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_every_encoding_and_absurd_ones_are_refused() {
        assert_eq!(
            parse_ts(b"1300475167.096535"),
            Ok(1_300_475_167_096_535_000)
        );
        assert_eq!(parse_ts(b"1300475167"), Ok(1_300_475_167_000_000_000));
        assert_eq!(parse_ts(b"1.0000000019"), Ok(1_000_000_001));
        assert_eq!(
            parse_ts(b"2011-03-18T19:06:07.096535Z"),
            Ok(1_300_475_167_096_535_000)
        );
        assert_eq!(parse_ts(b"XXXXXXXXXX.XXXXXX"), Err(Problem::MaskedTs));
        for bad in [
            &b"-5.0"[..],
            b"99999999999.0",
            b"1e300",
            b"NaN",
            b"",
            b"12.3.4",
            b"\xff",
        ] {
            assert_eq!(parse_ts(bad), Err(Problem::BadTs), "{bad:?}");
        }
        assert_eq!(
            epoch_f64(1_300_475_167_096.0),
            Ok(1_300_475_167_096_000_000)
        );
        assert_eq!(
            epoch_f64(1_300_475_167.096535),
            Ok(1_300_475_167_096_535_000)
        );
        assert_eq!(epoch_f64(f64::INFINITY), Err(Problem::BadTs));
        assert_eq!(epoch_f64(-1.0), Err(Problem::BadTs));
        assert_eq!(epoch_f64(1e300), Err(Problem::BadTs));
    }

    #[test]
    fn addresses_and_ports() {
        assert_eq!(ipv4(b"192.168.0.4"), Some([192, 168, 0, 4]));
        for bad in [
            &b"1.2.3"[..],
            b"1.2.3.4.5",
            b"256.1.1.1",
            b"01.2.3.4",
            b"1..2.3",
            b"a.b.c.d",
        ] {
            assert_eq!(ipv4(bad), None, "{bad:?}");
        }
        let e = endpoint(b"2001:db8::1", b"443").unwrap();
        assert_eq!((e.family, e.port), (slowscan_common::AF_INET6, 443));
        assert_eq!(endpoint(b"1.2.3.4", b"65536"), Err(Problem::Malformed));
        assert_eq!(endpoint(b"1.2.3.4", b"-1"), Err(Problem::Malformed));
        assert_eq!(endpoint(b"1.2.3.4", b""), Err(Problem::Malformed));
    }

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac(b"00:1a:2B:3c:4d:ff"),
            [0, 0x1a, 0x2b, 0x3c, 0x4d, 0xff]
        );
        assert_eq!(parse_mac(b"-"), [0; 6]);
        assert_eq!(parse_mac(b"00:1a:2b:3c:4d:ff:00"), [0; 6]);
    }

    #[test]
    fn json_lines_with_unset_keys_left_out() {
        let l = br#"{"ts":1300475168.902635,"uid":"C","id.orig_h":"141.142.220.118","id.orig_p":35642,"id.resp_h":"208.80.152.2","id.resp_p":80,"proto":"tcp","history":"ShADad","orig_l2_addr":"00:11:22:33:44:55"}"#;
        let (present, p) = parse_json(l);
        assert_eq!(present, 0x7f);
        let c = p.unwrap();
        assert_eq!(c.ts_ns, 1_300_475_168_902_635_000);
        assert_eq!(c.orig.port, 35642);
        assert!(c.judged.orig.established);
        assert_eq!(c.orig_mac, [0, 0x11, 0x22, 0x33, 0x44, 0x55]);
        let (_, p) = parse_json(br#"{"ts":"2011-03-18T19:06:07.096535Z","id.orig_h":"::1","id.orig_p":1,"id.resp_h":"::2","id.resp_p":2,"proto":"tcp","history":"S"}"#);
        assert_eq!(p.unwrap().ts_ns, 1_300_475_167_096_535_000);
        let (_, p) = parse_json(br#"{"ts":1300475167096,"id.orig_h":"::1","id.orig_p":1,"id.resp_h":"::2","id.resp_p":2,"proto":"tcp","history":"S"}"#);
        assert_eq!(p.unwrap().ts_ns, 1_300_475_167_096_000_000);
        let (present, p) = parse_json(br#"{"ts":1.0,"id.orig_h":"::1","id.orig_p":1,"id.resp_h":"::2","id.resp_p":2,"proto":"tcp"}"#);
        assert_eq!((present, p), (0x3f, Err(Problem::MissingField)));
        assert_eq!(parse_json(br#"{"proto":"udp"}"#).1, Err(Problem::NotTcp));
        assert_eq!(parse_json(b"{\"ts\":").1, Err(Problem::Malformed));
        assert_eq!(parse_json(br#"{"ts":-3,"id.orig_h":"::1","id.orig_p":1,"id.resp_h":"::2","id.resp_p":2,"proto":"tcp","history":"S"}"#).1, Err(Problem::BadTs));
        assert_eq!(parse_json(br#"{"ts":1,"id.orig_h":"x","id.orig_p":1,"id.resp_h":"::2","id.resp_p":2,"proto":"tcp","history":"S"}"#).1, Err(Problem::Malformed));
        assert_eq!(parse_json(br#"{"ts":1,"id.orig_h":"::1","id.orig_p":70000,"id.resp_h":"::2","id.resp_p":2,"proto":"tcp","history":"S"}"#).1, Err(Problem::Malformed));
    }

    #[test]
    fn tsv_fields_by_the_header_and_the_conventions() {
        let mut l = TsvLayout::default();
        l.header(b"#separator \\x09");
        l.header(b"#unset_field\t-");
        l.header(b"#fields\tuid\tproto\thistory\tid.resp_p\tid.resp_h\tid.orig_p\tid.orig_h\tts");
        assert!(l.missing().is_empty());
        let c = l
            .parse(b"C1\ttcp\tSr\t110\t212.227.15.188\t26242\t192.168.0.4\t1.5")
            .unwrap();
        assert_eq!(c.ts_ns, 1_500_000_000);
        assert_eq!(c.resp.port, 110);
        assert!(c.judged.orig.syn && !c.judged.orig.established);
        assert_eq!(
            l.parse(b"C1\tudp\tD\t53\t1.1.1.1\t1\t2.2.2.2\t1.5"),
            Err(Problem::NotTcp)
        );
        assert_eq!(
            l.parse(b"C1\ttcp\t-\t53\t1.1.1.1\t1\t2.2.2.2\t1.5"),
            Err(Problem::MissingField)
        );
        assert_eq!(
            l.parse(b"C1\ttcp\tS\t53\t1.1.1.1\t1\t2.2.2.2\t-"),
            Err(Problem::MissingTs)
        );
        assert_eq!(l.parse(b"C1\ttcp\tS\t53"), Err(Problem::Malformed));
        assert_eq!(
            l.parse(b"C1\ttcp\tS\t53\t1.1.1\t1\t2.2.2.2\t1"),
            Err(Problem::Malformed)
        );
        let mut l = TsvLayout::default();
        l.header(b"#fields\tts\tuid\tid.orig_h\tid.resp_h\thistory\tservice");
        assert_eq!(l.missing(), ["id.orig_p", "id.resp_p", "proto"]);
    }
}
