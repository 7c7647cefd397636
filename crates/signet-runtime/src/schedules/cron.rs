//! Cron expressions: parsing them (with errors that name the field at
//! fault) and computing their due times in an IANA time zone.

use std::fmt;

use chrono::{TimeZone as _, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use signet_store::rules::{self, FieldError, MAX_CRON_LEN};

/// The time zone of a schedule that names none.
pub const DEFAULT_TIMEZONE: &str = "UTC";

/// The fields of a 6-field expression, in order (a 5-field one has no
/// `second`).
const FIELDS: [(&str, &str); 6] = [
    ("second", "0-59"),
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31, L, W"),
    ("month", "1-12 or JAN-DEC"),
    ("day-of-week", "0-7 or SUN-SAT (0 and 7 are Sunday), L, #"),
];

/// A parsed cron expression in a time zone.
#[derive(Clone)]
pub struct CronSchedule {
    expression: String,
    cron: Cron,
    tz: Tz,
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CronSchedule")
            .field("expression", &self.expression)
            .field("timezone", &self.tz.name())
            .finish()
    }
}

fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
}

impl CronSchedule {
    /// Parses a 5- or 6-field expression and an IANA time zone name. Errors
    /// name the field (`cron` or `timezone`) and say what is wrong; for a
    /// bad cron field they name that field too.
    pub fn parse(expression: &str, timezone: &str) -> Result<Self, FieldError> {
        let tz = parse_timezone(timezone)?;
        let cron = parse_cron(expression)?;
        Ok(Self {
            expression: expression.trim().to_owned(),
            cron,
            tz,
        })
    }

    /// The expression, trimmed.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The time zone's IANA name.
    pub fn timezone(&self) -> &str {
        self.tz.name()
    }

    /// The first due time strictly after `after_ms` (unix ms), or `None`
    /// when the expression has none (a date that never comes, or a time
    /// past what the calendar search covers).
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        // Due times fall on whole seconds: search from the second holding
        // `after_ms`, exclusive, which gives the first one after it.
        let start = Utc
            .timestamp_opt(after_ms.div_euclid(1000), 0)
            .single()?
            .with_timezone(&self.tz);
        let next = self.cron.find_next_occurrence(&start, false).ok()?;
        Some(next.timestamp_millis())
    }

    /// The first due time at or after `at_ms`.
    pub fn next_at_or_after(&self, at_ms: i64) -> Option<i64> {
        self.next_after(at_ms.checked_sub(1)?)
    }

    /// Up to `n` due times strictly after `after_ms`.
    pub fn upcoming(&self, after_ms: i64, n: usize) -> Vec<i64> {
        let mut out = Vec::with_capacity(n);
        let mut t = after_ms;
        while out.len() < n {
            match self.next_after(t) {
                Some(next) => {
                    out.push(next);
                    t = next;
                }
                None => break,
            }
        }
        out
    }

    /// Checks that the expression has a due time after `now_ms`, so a
    /// schedule that could never fire (30 February) is refused up front.
    pub fn check_fires_after(&self, now_ms: i64) -> Result<i64, FieldError> {
        self.next_after(now_ms).ok_or_else(|| {
            FieldError::new(
                "cron",
                format!(
                    "{:?} never comes due (it names a date that does not exist, such as 30 February); check the day-of-month and month fields",
                    self.expression
                ),
            )
        })
    }
}

/// Parses an IANA time zone name exactly; a name that only differs in case
/// from a real one gets a suggestion.
fn parse_timezone(name: &str) -> Result<Tz, FieldError> {
    let invalid = |message: String| FieldError::new("timezone", message);
    rules::timezone_len(name)?;
    if let Ok(tz) = name.parse::<Tz>() {
        return Ok(tz);
    }
    match chrono_tz::TZ_VARIANTS
        .iter()
        .find(|tz| tz.name().eq_ignore_ascii_case(name))
    {
        Some(tz) => Err(invalid(format!(
            "{name:?} is not an IANA time zone name; did you mean {:?}? (names are case-sensitive)",
            tz.name()
        ))),
        None => Err(invalid(format!(
            "{name:?} is not an IANA time zone name; use one like UTC, Europe/Paris or America/New_York"
        ))),
    }
}

fn cron_fields_hint() -> &'static str {
    "5 fields (minute hour day-of-month month day-of-week) or 6 (second minute hour day-of-month month day-of-week)"
}

/// Parses a cron expression; on failure, finds the field at fault by
/// parsing each field alone with wildcards around it.
fn parse_cron(expression: &str) -> Result<Cron, FieldError> {
    let invalid = |message: String| FieldError::new("cron", message);
    let trimmed = expression.trim();
    if trimmed.is_empty() {
        return Err(invalid(format!("is empty; give {}", cron_fields_hint())));
    }
    if trimmed.len() > MAX_CRON_LEN {
        return Err(invalid(format!("is longer than {MAX_CRON_LEN} characters")));
    }
    if let Some(c) = trimmed
        .chars()
        .find(|c| c.is_control() && !c.is_ascii_whitespace())
    {
        return Err(invalid(format!("contains the control character {c:?}")));
    }
    let parts: Vec<&str> = trimmed.split_whitespace().collect();
    let nickname = parts.len() == 1 && parts[0].starts_with('@');
    if nickname {
        const NICKNAMES: [&str; 6] = [
            "@yearly",
            "@annually",
            "@monthly",
            "@weekly",
            "@daily",
            "@hourly",
        ];
        if !NICKNAMES.iter().any(|n| n.eq_ignore_ascii_case(parts[0])) {
            return Err(invalid(format!(
                "{:?} is not a known nickname; use one of {} or {}",
                parts[0],
                NICKNAMES.join(", "),
                cron_fields_hint()
            )));
        }
    } else if parts.len() != 5 && parts.len() != 6 {
        return Err(invalid(format!(
            "{trimmed:?} has {} field{}; give {}",
            parts.len(),
            if parts.len() == 1 { "" } else { "s" },
            cron_fields_hint()
        )));
    } else if parts.iter().any(|p| p.contains('@')) {
        return Err(invalid(format!(
            "{trimmed:?} mixes a nickname with fields; give either a nickname like @daily or {}",
            cron_fields_hint()
        )));
    }
    let parser = parser();
    match parser.parse(trimmed) {
        Ok(cron) => Ok(cron),
        Err(whole) => {
            if !nickname {
                let names = &FIELDS[6 - parts.len()..];
                for (i, ((name, allowed), value)) in names.iter().zip(&parts).enumerate() {
                    let probe: Vec<&str> = (0..parts.len())
                        .map(|j| if j == i { *value } else { "*" })
                        .collect();
                    if let Err(e) = parser.parse(&probe.join(" ")) {
                        return Err(invalid(format!(
                            "the {name} field {value:?} is invalid ({}); it takes {allowed}, with * , - and */step",
                            describe_cron_error(&e)
                        )));
                    }
                }
            }
            Err(invalid(format!(
                "{trimmed:?} is invalid ({}); give {}",
                describe_cron_error(&whole),
                cron_fields_hint()
            )))
        }
    }
}

/// croner's message without its own prefixes, first letter lower-cased.
fn describe_cron_error(e: &croner::errors::CronError) -> String {
    let text = e.to_string();
    let text = text
        .strip_prefix("Invalid pattern: ")
        .or_else(|| text.strip_prefix("Component error: "))
        .unwrap_or(&text)
        .trim_end_matches('.')
        .to_owned();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc3339: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn five_and_six_fields_parse() {
        let s = CronSchedule::parse("*/15 * * * *", "UTC").unwrap();
        assert_eq!(
            s.next_after(ms("2030-01-01T00:07:00Z")),
            Some(ms("2030-01-01T00:15:00Z"))
        );
        let s = CronSchedule::parse("*/10 * * * * *", "UTC").unwrap();
        assert_eq!(
            s.next_after(ms("2030-01-01T00:00:00.500Z")),
            Some(ms("2030-01-01T00:00:10Z"))
        );
        // Strictly after: a due time is not its own successor.
        assert_eq!(
            s.next_after(ms("2030-01-01T00:00:10Z")),
            Some(ms("2030-01-01T00:00:20Z"))
        );
        assert_eq!(
            s.next_at_or_after(ms("2030-01-01T00:00:10Z")),
            Some(ms("2030-01-01T00:00:10Z"))
        );
        let daily = CronSchedule::parse("@daily", "UTC").unwrap();
        assert_eq!(
            daily.next_after(ms("2030-01-01T00:00:00Z")),
            Some(ms("2030-01-02T00:00:00Z"))
        );
    }

    #[test]
    fn due_times_follow_the_time_zone_across_dst() {
        let s = CronSchedule::parse("0 9 * * *", "Europe/Paris").unwrap();
        // Winter: UTC+1.
        assert_eq!(
            s.next_after(ms("2030-01-10T12:00:00Z")),
            Some(ms("2030-01-11T08:00:00Z"))
        );
        // Clocks go forward on 31 March 2030; 09:00 is UTC+2 after.
        assert_eq!(
            s.upcoming(ms("2030-03-30T00:00:00Z"), 2),
            vec![ms("2030-03-30T08:00:00Z"), ms("2030-03-31T07:00:00Z")]
        );
        // 02:30 does not exist on that day in Paris: it fires once, at the
        // first instant after the gap (03:00 local = 01:00 UTC).
        let gap = CronSchedule::parse("30 2 * * *", "Europe/Paris").unwrap();
        assert_eq!(
            gap.next_after(ms("2030-03-30T12:00:00Z")),
            Some(ms("2030-03-31T01:00:00Z"))
        );
        // 02:30 happens twice on 27 October 2030 (clocks go back): once.
        let twice = gap.upcoming(ms("2030-10-26T12:00:00Z"), 2);
        assert_eq!(twice[0], ms("2030-10-27T00:30:00Z"));
        assert_eq!(twice[1], ms("2030-10-28T01:30:00Z"));
    }

    #[test]
    fn invalid_cron_names_the_field_and_why() {
        let e = CronSchedule::parse("61 * * * *", "UTC").unwrap_err();
        assert_eq!(e.field(), "cron");
        assert!(e.message().contains("minute field \"61\""), "{e}");
        let e = CronSchedule::parse("0 0 32 * *", "UTC").unwrap_err();
        assert!(e.message().contains("day-of-month field \"32\""), "{e}");
        let e = CronSchedule::parse("0 0 * 13 *", "UTC").unwrap_err();
        assert!(e.message().contains("month field \"13\""), "{e}");
        let e = CronSchedule::parse("0 0 * * FUNDAY", "UTC").unwrap_err();
        assert!(e.message().contains("day-of-week field"), "{e}");
        let e = CronSchedule::parse("99 * * * * *", "UTC").unwrap_err();
        assert!(e.message().contains("second field \"99\""), "{e}");
        let e = CronSchedule::parse("* * *", "UTC").unwrap_err();
        assert!(e.message().contains("has 3 fields"), "{e}");
        let e = CronSchedule::parse("", "UTC").unwrap_err();
        assert!(e.message().contains("is empty"), "{e}");
        let e = CronSchedule::parse("@sometimes", "UTC").unwrap_err();
        assert!(e.message().contains("nickname"), "{e}");
        let e = CronSchedule::parse("@daily * *", "UTC").unwrap_err();
        assert_eq!(e.field(), "cron");
        let never = CronSchedule::parse("0 0 30 2 *", "UTC").unwrap();
        let e = never
            .check_fires_after(ms("2030-01-01T00:00:00Z"))
            .unwrap_err();
        assert!(e.message().contains("never comes due"), "{e}");
    }

    #[test]
    fn invalid_time_zones_are_explained() {
        let e = CronSchedule::parse("* * * * *", "Mars/Olympus").unwrap_err();
        assert_eq!(e.field(), "timezone");
        assert!(e.message().contains("not an IANA time zone"), "{e}");
        let e = CronSchedule::parse("* * * * *", "europe/paris").unwrap_err();
        assert!(e.message().contains("did you mean \"Europe/Paris\""), "{e}");
        let e = CronSchedule::parse("* * * * *", "").unwrap_err();
        assert!(e.message().contains("empty"), "{e}");
    }

    #[test]
    fn extreme_times_do_not_panic() {
        let s = CronSchedule::parse("* * * * *", "UTC").unwrap();
        assert_eq!(s.next_after(i64::MAX), None);
        let _ = s.next_after(i64::MIN);
        assert_eq!(s.next_at_or_after(i64::MIN), None);
    }

    proptest::proptest! {
        #[test]
        fn next_after_is_strictly_later_and_matches(minute in 0u32..60, hour in 0u32..24, start in 0i64..4_102_444_800_000) {
            let s = CronSchedule::parse(&format!("{minute} {hour} * * *"), "America/New_York").unwrap();
            let next = s.next_after(start).unwrap();
            proptest::prop_assert!(next > start);
            proptest::prop_assert!(next - start <= 25 * 3600 * 1000 + 3600 * 1000);
            proptest::prop_assert_eq!(next % 60_000, 0);
            // Nothing in between: the next after (next - 1 ms) is next.
            proptest::prop_assert_eq!(s.next_at_or_after(next), Some(next));
        }

        #[test]
        fn arbitrary_cron_text_never_panics(text in "\\PC{0,40}", tz in "\\PC{0,20}") {
            let _ = CronSchedule::parse(&text, &tz);
        }
    }
}
