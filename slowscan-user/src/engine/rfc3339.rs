//! RFC 3339 (UTC) timestamps for alerts, reports and whitelist files.

use time::{OffsetDateTime, format_description::well_known::Rfc3339};

/// Nanoseconds since the Unix epoch (wall clock) as RFC 3339 in UTC, e.g.
/// `2014-06-25T09:00:00.5Z`. Instants outside years 0000–9999 are clamped.
pub fn format(unix_ns: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ns))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    t.format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// Parses an RFC 3339 timestamp (any offset) into Unix nanoseconds.
pub fn parse(text: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos()).ok()
}

/// A record time (`ts_ns`) plus the engine's wall-clock offset, saturated.
pub(crate) fn wall(ts_ns: u64, offset_ns: i64) -> i64 {
    let v = i128::from(ts_ns) + i128::from(offset_ns);
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_fraction() {
        let ns = 1_403_686_800_500_000_000; // 2014-06-25T09:00:00.5Z
        let s = format(ns);
        assert_eq!(s, "2014-06-25T09:00:00.5Z");
        assert_eq!(parse(&s), Some(ns));
        assert_eq!(
            parse("2014-06-25T18:00:00+09:00"),
            Some(1_403_686_800_000_000_000)
        );
        assert_eq!(parse("yesterday"), None);
    }

    #[test]
    fn wall_clock_offset_saturates() {
        assert_eq!(wall(5, -10), -5);
        assert_eq!(wall(u64::MAX, i64::MAX), i64::MAX);
    }
}
