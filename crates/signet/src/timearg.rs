//! Durations (`500ms`, `10s`, `5min`, `2h30m`, `1 hour`) and points in time
//! (RFC 3339 or unix milliseconds) as command-line arguments.

use std::time::Duration;

/// What a duration looks like, for help and error messages.
pub(crate) const DURATION_HELP: &str =
    "write a duration like 500ms, 10s, 5m, 5min, 2h30m, 1 hour or 1d";

/// Parses a duration as `humantime` does: one or more `<number><unit>`
/// parts, optionally spaced (`1h30m`, `2h 30min`, `1 hour`, `1.5s`), units
/// from `ns` to `years` (`ms`, `s`/`sec`, `m`/`min`, `h`/`hour`, `d`/`day`,
/// `w`/`week`; `M` is a month). A bare `0` is zero.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err(format!("empty duration; {DURATION_HELP}"));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("{text:?} is not a duration ({e}); {DURATION_HELP}"))
}

/// Parses a point in time as the API does (`signet_runtime::parse_time_ms`,
/// the one parser): RFC 3339 (`2026-11-23T12:00:00Z`) or a whole number of
/// unix **milliseconds** (`1795000000000`). Returns unix milliseconds.
pub(crate) fn parse_time_ms(text: &str) -> Result<i64, String> {
    let ms = signet_runtime::parse_time_ms(text)?;
    // Until this release the command line read a bare number as unix
    // seconds: such a number now means a date in early 1973 or before.
    // Refuse it rather than let `dlq purge --since <seconds>` reach back
    // to 1970.
    let trimmed = text.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) && ms < SECONDS_LOOKALIKE
    {
        return Err(format!(
            "{trimmed} looks like unix seconds; times are RFC 3339 (2026-11-23T12:00:00Z) or unix milliseconds: write {trimmed}000"
        ));
    }
    Ok(ms)
}

/// Unix milliseconds below this (1973-03-03) are unix seconds typed by
/// habit: every second from 2001 on is at least 10^9.
const SECONDS_LOOKALIKE: i64 = 100_000_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_are_refused_with_what_to_write() {
        let e = parse_time_ms("1795000000").unwrap_err();
        assert!(
            e.contains("looks like unix seconds") && e.contains("1795000000000"),
            "{e}"
        );
        assert_eq!(parse_time_ms("1795000000000"), Ok(1_795_000_000_000));
        assert!(parse_time_ms("2026-11-23T12:00:00Z").is_ok());
    }

    #[test]
    fn durations_keep_the_old_forms() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn durations_accept_the_units_people_type() {
        assert_eq!(parse_duration("5min"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h30m"), Ok(Duration::from_secs(9000)));
        assert_eq!(parse_duration("2h 30min"), Ok(Duration::from_secs(9000)));
        assert_eq!(parse_duration("1 hour"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90 seconds"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1w"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration(" 10s "), Ok(Duration::from_secs(10)));
    }

    #[test]
    fn bad_durations_say_what_to_write() {
        for bad in [
            "",
            "10",
            "s",
            "10x",
            "-5s",
            "5 parsecs",
            "99999999999999999999s",
        ] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("write a duration like"), "{bad:?}: {e}");
        }
        let e = parse_duration("10").unwrap_err();
        assert!(e.contains("unit"), "{e}");
    }

    #[test]
    fn times_are_rfc3339_or_unix_milliseconds_as_in_the_api() {
        assert_eq!(parse_time_ms("1700000000000"), Ok(1_700_000_000_000));
        assert_eq!(
            parse_time_ms("2023-11-14T22:13:20.5Z"),
            Ok(1_700_000_000_500)
        );
        assert_eq!(
            parse_time_ms("2023-11-14T23:13:20+01:00"),
            Ok(1_700_000_000_000)
        );
        for bad in ["", "yesterday", "2023-11-14", "99999999999999999999"] {
            assert!(parse_time_ms(bad).is_err(), "{bad:?}");
        }
    }
}
