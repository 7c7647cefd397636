//! Durations (`10s`, `5m`, `2h`, `500ms`, `1h30m`) and points in time
//! (RFC 3339 or unix seconds) as command-line arguments.

use std::time::Duration;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Parses a duration: one or more `<number><unit>` parts, unit one of `ms`,
/// `s`, `m`, `h`, `d` (`1h30m`). A bare `0` is zero.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let help = "write a duration like 500ms, 10s, 5m, 2h, 1d or 1h30m";
    let s = text.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(format!("empty duration; {help}"));
    }
    let mut total_ms: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("{text:?} is not a duration; {help}"));
        }
        let (number, after) = rest.split_at(digits);
        let units = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, after) = after.split_at(units);
        let per_unit_ms: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(format!("{text:?} has a number without a unit; {help}")),
            other => return Err(format!("{text:?} has an unknown unit {other:?}; {help}")),
        };
        let n: u64 = number
            .parse()
            .map_err(|_| format!("{text:?} is too large"))?;
        total_ms = n
            .checked_mul(per_unit_ms)
            .and_then(|v| total_ms.checked_add(v))
            .ok_or_else(|| format!("{text:?} is too large"))?;
        rest = after;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Parses a point in time as RFC 3339 (`2026-11-23T12:00:00Z`) or unix
/// seconds (`1795000000`), returning unix milliseconds.
pub(crate) fn parse_time_ms(text: &str) -> Result<i64, String> {
    let s = text.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i64 = s
            .parse()
            .map_err(|_| format!("{text:?} is too large for unix seconds"))?;
        return secs
            .checked_mul(1000)
            .ok_or_else(|| format!("{text:?} is too large for unix seconds"));
    }
    let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|e| {
        format!(
            "{text:?} is not a time ({e}); write RFC 3339 like 2026-11-23T12:00:00Z or unix seconds"
        )
    })?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| format!("{text:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "10", "s", "10x", "-5s", "1.5s", "99999999999999999999s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn times() {
        assert_eq!(parse_time_ms("1700000000"), Ok(1_700_000_000_000));
        assert_eq!(
            parse_time_ms("2023-11-14T22:13:20.5Z"),
            Ok(1_700_000_000_500)
        );
        assert_eq!(
            parse_time_ms("2023-11-14T23:13:20+01:00"),
            Ok(1_700_000_000_000)
        );
        for bad in ["", "yesterday", "2023-11-14", "-5", "99999999999999999999"] {
            assert!(parse_time_ms(bad).is_err(), "{bad:?}");
        }
    }
}
