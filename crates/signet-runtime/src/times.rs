//! Points in time as people read and write them: one formatter for every
//! time Signet prints (API, CLI, callbacks) and one parser for every time it
//! is given (API fields and query strings, CLI `--since`/`--until`).
//!
//! Printed: RFC 3339 in UTC with exactly three fractional digits
//! (`2026-12-07T01:02:03.000Z`), so times sort as text and line up in
//! columns. Read: RFC 3339 with any offset, or an integer of unix
//! **milliseconds** (`1796605323000`).

use time::format_description::FormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

/// `2026-12-07T01:02:03.000Z`: the one output format.
const FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// What to write, for error messages.
pub const TIME_HELP: &str =
    "write RFC 3339 like 2030-01-02T03:04:05Z or unix milliseconds like 1893553445000";

/// Unix milliseconds as RFC 3339 UTC with three fractional digits
/// (`2023-11-14T22:13:20.000Z`). A time outside years 0000–9999, which RFC
/// 3339 cannot write, prints as the number.
pub fn format_time_ms(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .filter(|t| (0..=9999).contains(&t.year()))
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// Parses a time given as text: an integer is unix milliseconds (as in the
/// API's JSON), anything else must be RFC 3339. Returns unix milliseconds.
pub fn parse_time_ms(text: &str) -> Result<i64, String> {
    let s = text.trim();
    let shown = signet_store::rules::excerpt(text);
    let digits = s.strip_prefix('-').unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<i64>()
            .map_err(|_| format!("{shown:?} is too large for unix milliseconds; {TIME_HELP}"));
    }
    let t = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("{shown:?} is not a time ({e}); {TIME_HELP}"))?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| format!("{shown:?} is out of range; {TIME_HELP}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_print_three_fractional_digits() {
        assert_eq!(
            format_time_ms(1_700_000_000_000),
            "2023-11-14T22:13:20.000Z"
        );
        assert_eq!(
            format_time_ms(1_700_000_000_500),
            "2023-11-14T22:13:20.500Z"
        );
        assert_eq!(
            format_time_ms(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(format_time_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time_ms(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(format_time_ms(i64::MAX), i64::MAX.to_string());
        assert_eq!(format_time_ms(i64::MIN), i64::MIN.to_string());
        assert_eq!(format_time_ms(253_402_300_800_000), "253402300800000");
    }

    #[test]
    fn times_are_rfc3339_or_unix_milliseconds() {
        assert_eq!(parse_time_ms("1700000000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_time_ms(" 1700000000000 "), Ok(1_700_000_000_000));
        assert_eq!(parse_time_ms("-1000"), Ok(-1000));
        assert_eq!(
            parse_time_ms("2023-11-14T22:13:20.5Z"),
            Ok(1_700_000_000_500)
        );
        assert_eq!(
            parse_time_ms("2023-11-14T23:13:20+01:00"),
            Ok(1_700_000_000_000)
        );
        for bad in [
            "",
            "-",
            "yesterday",
            "2023-11-14",
            "1.5",
            "99999999999999999999",
        ] {
            let e = parse_time_ms(bad).unwrap_err();
            assert!(e.contains("unix milliseconds"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn what_is_printed_reads_back() {
        for ms in [0, 1_700_000_000_000, 1_700_000_000_001, 253_402_300_799_999] {
            assert_eq!(parse_time_ms(&format_time_ms(ms)), Ok(ms));
        }
    }
}
