//! RFC 3339 (UTC) timestamps for alerts, reports and whitelist files.

use time::{
    OffsetDateTime, format_description::BorrowedFormatItem,
    format_description::well_known::Rfc3339, macros::format_description,
};

/// One shape for every timestamp slowscan writes: UTC, `Z`, always nine
/// fractional digits (so the strings sort as the instants do).
const SHAPE: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z");

/// Nanoseconds since the Unix epoch (wall clock) as RFC 3339 in UTC with
/// nine fractional digits, e.g. `2014-06-25T09:00:00.500000000Z`. Instants
/// outside years 0000–9999 give the epoch.
pub fn format(unix_ns: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ns))
        .ok()
        .filter(|t| (0..=9999).contains(&t.year()))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    t.format(SHAPE)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000000000Z".to_owned())
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
        assert_eq!(s, "2014-06-25T09:00:00.500000000Z");
        assert_eq!(parse(&s), Some(ns));
        // Whole seconds and single nanoseconds keep the same shape.
        assert_eq!(
            format(1_403_686_800_000_000_000),
            "2014-06-25T09:00:00.000000000Z"
        );
        assert_eq!(format(1), "1970-01-01T00:00:00.000000001Z");
        assert_eq!(format(-1), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(format(i64::MAX), "2262-04-11T23:47:16.854775807Z");
        assert_eq!(parse("2014-06-25T09:00:00.5Z"), Some(ns));
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
