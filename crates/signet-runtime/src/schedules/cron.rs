//! Cron expressions: parsing them (with errors that name the field at
//! fault) and computing their due times in an IANA time zone.
//!
//! Every computation here is bounded. croner walks the calendar until it
//! finds a match or reaches the year 5000, which for an expression that
//! never matches costs seconds of CPU (`,,,,, * * * *`, whose minute field
//! croner reads as "no minute", took 6–8 s). So an expression is refused up
//! front when a field is degenerate (an empty list item, a field that
//! matches no value), and before croner searches, [`CronSchedule`] looks
//! for the first calendar day the expression matches, at most
//! [`MAX_SEARCH_DAYS`] days ahead: a day-and-month pattern repeats within
//! 8 years (29 February 2096, then 2104), so finding none means it never
//! comes due, and finding one bounds croner's walk to it. Callers on the
//! async runtime run these computations with [`off_runtime`].

use std::fmt;

use chrono::{Datelike as _, NaiveDate, TimeZone as _, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use signet_store::rules::{self, FieldError, MAX_CRON_LEN};

/// The time zone of a schedule that names none.
pub const DEFAULT_TIMEZONE: &str = "UTC";

/// Most calendar days the search for a due time looks at before deciding
/// an expression never comes due: 8 years and a week. Day-of-month and
/// month patterns repeat every year or every leap year (at most 8 years
/// apart: 2096, then 2104); day-of-week patterns every week; `L`, `W` and
/// `#` every month they can fall in.
pub(crate) const MAX_SEARCH_DAYS: u32 = 8 * 366 + 7;

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
    /// Whether every field matches some value; when one matches none (only
    /// possible for an expression read from the store), nothing is due.
    fields_match: bool,
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
        Self::parse_as(expression, timezone, Strictness::NewInput)
    }

    /// Parses an expression read back from the store. Rules added since it
    /// was stored (the degenerate-field checks) do not apply, so a schedule
    /// written under a looser rule keeps firing as before; its due times are
    /// still searched in bounded work.
    pub fn parse_stored(expression: &str, timezone: &str) -> Result<Self, FieldError> {
        Self::parse_as(expression, timezone, Strictness::Stored)
    }

    fn parse_as(
        expression: &str,
        timezone: &str,
        strictness: Strictness,
    ) -> Result<Self, FieldError> {
        let tz = parse_timezone(timezone)?;
        let cron = parse_cron(expression, strictness)?;
        Ok(Self {
            expression: expression.trim().to_owned(),
            fields_match: empty_field(&cron).is_none(),
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
    ///
    /// Bounded work: at most 8 years and a week of calendar days are looked
    /// at before croner is asked, and croner is asked only when a matching
    /// day exists, so its walk ends at that day or the next matching one.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        // Due times fall on whole seconds: search from the second holding
        // `after_ms`, exclusive, which gives the first one after it.
        if !self.fields_match {
            return None;
        }
        let start = Utc
            .timestamp_opt(after_ms.div_euclid(1000), 0)
            .single()?
            .with_timezone(&self.tz);
        self.first_matching_day(start.date_naive())?;
        let next = self.cron.find_next_occurrence(&start, false).ok()?;
        Some(next.timestamp_millis())
    }

    /// The first calendar day on or after `from` (a local date) that the
    /// day-of-month, month and day-of-week fields match, looking at most
    /// [`MAX_SEARCH_DAYS`] days ahead; with how many days were looked at.
    fn first_matching_day(&self, from: NaiveDate) -> Option<(NaiveDate, u32)> {
        let pattern = &self.cron.pattern;
        let mut day = from;
        for looked in 1..=MAX_SEARCH_DAYS {
            let weekday =
                croner::Weekday::from_days_from_sunday(day.weekday().num_days_from_sunday());
            let matches = pattern.month_match(day.month()).unwrap_or(false)
                && pattern
                    .day_match(day.year(), day.month(), day.day(), weekday)
                    .unwrap_or(false);
            if matches {
                return Some((day, looked));
            }
            day = day.succ_opt()?;
        }
        None
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

/// Which rules an expression is held to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Strictness {
    /// Every rule: an expression a caller gives now.
    NewInput,
    /// Only what croner itself refuses: an expression read from the store.
    Stored,
}

fn cron_fields_hint() -> &'static str {
    "5 fields (minute hour day-of-month month day-of-week) or 6 (second minute hour day-of-month month day-of-week)"
}

/// Parses a cron expression; on failure, finds the field at fault by
/// parsing each field alone with wildcards around it.
fn parse_cron(expression: &str, strictness: Strictness) -> Result<Cron, FieldError> {
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
    let strict = !nickname && strictness == Strictness::NewInput;
    if strict {
        check_field_syntax(&parts)?;
    }
    let parser = parser();
    match parser.parse(trimmed) {
        Ok(cron) => {
            if let (true, Some(i)) = (strict, empty_field(&cron)) {
                let (name, allowed) = FIELDS[i];
                let value = parts
                    .get((i + parts.len()).saturating_sub(6))
                    .unwrap_or(&"");
                return Err(invalid(format!(
                    "the {name} field {value:?} matches no value; it takes {allowed}"
                )));
            }
            Ok(cron)
        }
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

/// Refuses degenerate list syntax croner would accept and read as "no
/// value": an empty item in a list (`,,`, `1,`, `,5`) or a step or range
/// with a side missing (`*/`, `/5`).
fn check_field_syntax(parts: &[&str]) -> Result<(), FieldError> {
    let names = &FIELDS[6 - parts.len()..];
    for ((name, allowed), value) in names.iter().zip(parts) {
        let degenerate = value.split(',').find_map(|item| {
            if item.is_empty() {
                Some("an empty list item")
            } else if item.split('/').any(str::is_empty) {
                Some("a step with a side missing")
            } else {
                None
            }
        });
        if let Some(what) = degenerate {
            return Err(FieldError::new(
                "cron",
                format!(
                    "the {name} field {value:?} has {what}; it takes {allowed}, with * , - and */step (for example 0,15,30,45)"
                ),
            ));
        }
    }
    Ok(())
}

/// The index (into [`FIELDS`]) of the first field that matches no value
/// at all, which makes the expression one that can never come due.
fn empty_field(cron: &Cron) -> Option<usize> {
    let p = &cron.pattern;
    [
        &p.seconds,
        &p.minutes,
        &p.hours,
        &p.days,
        &p.months,
        &p.days_of_week,
    ]
    .iter()
    .position(|c| c.values().is_empty() && !c.has_modifiers())
}

/// Runs a cron computation on the blocking pool, off the async runtime: a
/// request or a scheduler pass never holds a runtime thread while due
/// times are computed. The work itself is bounded (see the module docs).
pub(crate) async fn off_runtime<T, F>(f: F) -> Result<T, crate::error::RuntimeError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        crate::error::RuntimeError::Config(format!(
            "the cron computation did not finish ({e}); this is a bug, please report it"
        ))
    })
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

    #[test]
    fn degenerate_fields_are_refused_up_front() {
        // croner read this minute field as "no minute" and walked to the
        // year 5000 (6–8 s of CPU per call).
        let e = CronSchedule::parse(",,,,, * * * *", "UTC").unwrap_err();
        assert_eq!(e.field(), "cron");
        assert!(
            e.message()
                .contains("minute field \",,,,,\" has an empty list item"),
            "{e}"
        );
        for bad in [
            "1, * * * *",
            "* ,2 * * *",
            "0 0 1,,2 * *",
            "*/ * * * *",
            "0 /5 * * *",
        ] {
            let e = CronSchedule::parse(bad, "UTC").unwrap_err();
            assert!(e.message().contains("field"), "{bad}: {e}");
        }
        // Lists, ranges and steps that match something still parse.
        // A stored expression keeps working (rules apply to new input).
        let stored = CronSchedule::parse_stored("0,30, * * * *", "UTC").unwrap();
        assert_eq!(
            stored.next_after(ms("2030-01-01T00:01:00Z")),
            Some(ms("2030-01-01T00:30:00Z"))
        );
        let stored = CronSchedule::parse_stored(",,,,, * * * *", "UTC").unwrap();
        assert_eq!(stored.next_after(ms("2030-01-01T00:01:00Z")), None);
        for good in [
            "0,30 * * * *",
            "0 9-17/2 * * 1-5",
            "0 0 L * *",
            "0 0 * * 5#2",
            "0 0 15W * *",
        ] {
            CronSchedule::parse(good, "UTC").unwrap();
        }
    }

    #[test]
    fn dates_that_never_come_are_found_within_the_day_bound() {
        for never in ["0 0 30 2 *", "0 0 31 2,4,6,9,11 *", "0 0 31W 2 *"] {
            let s = CronSchedule::parse(never, "Europe/Paris").unwrap();
            let from = NaiveDate::from_ymd_opt(2030, 1, 1).unwrap();
            // No matching day within the bound: croner is never asked.
            assert_eq!(s.first_matching_day(from), None, "{never}");
            assert_eq!(s.next_after(ms("2030-01-01T00:00:00Z")), None, "{never}");
            assert!(s.check_fires_after(ms("2030-01-01T00:00:00Z")).is_err());
        }
        // The rarest day that exists: 29 February across 2100 (no leap day).
        let s = CronSchedule::parse("0 0 29 2 *", "UTC").unwrap();
        let (day, looked) = s
            .first_matching_day(NaiveDate::from_ymd_opt(2096, 3, 1).unwrap())
            .unwrap();
        assert_eq!(day, NaiveDate::from_ymd_opt(2104, 2, 29).unwrap());
        assert!(looked <= MAX_SEARCH_DAYS);
        assert_eq!(
            s.next_after(ms("2096-03-01T00:00:00Z")),
            Some(ms("2104-02-29T00:00:00Z"))
        );
    }

    #[tokio::test]
    async fn off_runtime_returns_the_result() {
        let s = CronSchedule::parse("*/5 * * * *", "UTC").unwrap();
        let next = off_runtime(move || s.next_after(ms("2030-01-01T00:01:00Z")))
            .await
            .unwrap();
        assert_eq!(next, Some(ms("2030-01-01T00:05:00Z")));
    }

    proptest::proptest! {
        /// Random short cron text: each parsed expression either has no
        /// matching day within [`MAX_SEARCH_DAYS`] (and then croner is not
        /// asked), or croner's answer lies within two days of the first
        /// matching day, so its walk was bounded by that day. The bound is
        /// an iteration count, never a wall-clock time.
        #[test]
        fn random_short_cron_text_is_answered_within_the_day_bound(
            fields in proptest::collection::vec("[0-9*,/L#W?-]{1,5}", 5..=6),
            start in 0i64..4_102_444_800_000,
        ) {
            let text = fields.join(" ");
            // New input and (looser) stored expressions alike.
            let parsed = [
                CronSchedule::parse(&text, "Europe/Paris"),
                CronSchedule::parse_stored(&text, "Europe/Paris"),
            ];
            for s in parsed.into_iter().flatten() {
                let local = Utc.timestamp_millis_opt(start).single().unwrap().with_timezone(&s.tz);
                match s.first_matching_day(local.date_naive()).filter(|_| s.fields_match) {
                    None => proptest::prop_assert_eq!(s.next_after(start), None),
                    Some((day, looked)) => {
                        proptest::prop_assert!(looked <= MAX_SEARCH_DAYS);
                        if let Some(next) = s.next_after(start) {
                            let next_day = Utc.timestamp_millis_opt(next).single().unwrap().with_timezone(&s.tz).date_naive();
                            // The first matching day, or (its times already
                            // past) a later one within the bound.
                            proptest::prop_assert!(next_day >= day, "{text}: {next_day} before {day}");
                            proptest::prop_assert!((next_day - local.date_naive()).num_days() <= i64::from(MAX_SEARCH_DAYS) + 1, "{text}");
                        }
                    }
                }
            }
        }

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
