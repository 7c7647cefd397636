//! Cron schedules: parsing and validating them, computing their due times in
//! a time zone, and the [`Scheduler`] service that fires them.
//!
//! # Expressions and time zones
//!
//! A cron expression has 5 fields (`minute hour day-of-month month
//! day-of-week`) or 6 (a `second` field first), parsed by `croner`: ranges,
//! steps (`*/5`, `10-40/10`), lists, month and weekday names, `L`, `W`, `#`,
//! and the nicknames `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`.
//! Due times are computed in the schedule's IANA time zone (default UTC), so
//! `0 9 * * *` in `Europe/Paris` fires at 09:00 Paris time on both sides of
//! a daylight-saving change; a wall-clock time that does not exist on the
//! day the clocks go forward fires at the first instant after the gap, and
//! one that happens twice when they go back fires once.
//!
//! # Firing exactly once per due time
//!
//! The store keeps each schedule's next due time. A scheduler pass asks the
//! store for the due schedules and, for each, enqueues the payload with the
//! idempotency key `schedule:<id>:<due time in unix ms>`, then moves the
//! schedule to its next due time with a compare-and-set on the due time it
//! fired ([`Store::advance_schedule`]). So:
//! - two schedulers that see the same due time enqueue one task (the second
//!   enqueue returns the first task) and only one of them advances it;
//! - a scheduler that crashes between the enqueue and the advance fires the
//!   same key again after the restart, which again enqueues nothing new.
//!
//! # Late and missed due times
//!
//! A due time at most [`Scheduler::misfire_grace`] old (default
//! [`DEFAULT_MISFIRE_GRACE`]) is late, not missed: it fires as usual, each
//! one, so a scheduler that was down for a few seconds (a restart, a leader
//! hand-over) loses nothing. Due times older than that were missed, and the
//! schedule's [`CatchUp`] decides: `skip` fires nothing for them, `once`
//! fires one run (keyed by the first missed due time) for all of them. Then
//! the schedule continues with its first due time inside the grace window.
//!
//! # What a fired task carries
//!
//! A task fired by a schedule is signed by the [`Producer`] like any other
//! and carries two signed headers: [`HEADER_SCHEDULE_ID`] (the schedule id)
//! and [`HEADER_FIRE_AT`] (the due time it fired for, unix ms), so a handler
//! knows which run it is doing even when it runs late.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone as _, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use signet_store::rules::{self, FieldError, MAX_CRON_LEN};
use signet_store::{CatchUp, Enqueued, ScheduleRecord, Store, StoreError};

use crate::clock::{duration_ms, Clock, SystemClock};
use crate::error::RuntimeError;
use crate::message::MessagePublisher;
use crate::producer::{Producer, TaskSpec};
use crate::shutdown::ShutdownSignal;

/// The time zone of a schedule that names none.
pub const DEFAULT_TIMEZONE: &str = "UTC";
/// Default longest wait between two scheduler passes. The scheduler also
/// wakes at the next due time when that comes sooner.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Default age up to which a due time still fires (late, not missed).
pub const DEFAULT_MISFIRE_GRACE: Duration = Duration::from_secs(60);
/// Default most schedules read per store call.
pub const DEFAULT_SCHEDULE_BATCH: usize = 100;
/// Most due times one schedule fires in one pass (the rest in the next), so
/// one schedule far behind cannot starve the others.
pub const MAX_FIRES_PER_PASS: usize = 1000;
/// How many upcoming due times the API and CLI show.
pub const UPCOMING_SHOWN: usize = 5;

/// Signed header on fired tasks: the schedule id.
pub const HEADER_SCHEDULE_ID: &str = "signet-schedule-id";
/// Signed header on fired tasks: the due time fired for, unix ms.
pub const HEADER_FIRE_AT: &str = "signet-fire-at";

/// Counter: due times fired (a task or message enqueued), by `schedule` name.
pub const SCHEDULES_FIRED: &str = "signet_schedules_fired_total";
/// Counter: passes that skipped missed due times (`catch_up: skip`), by
/// `schedule` name.
pub const SCHEDULES_SKIPPED: &str = "signet_schedules_skipped_total";
/// Counter: due times that could not be fired, by `schedule` name.
pub const SCHEDULES_FAILED: &str = "signet_schedules_failed_total";

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

/// Checks a schedule name ([`rules::schedule_name`]).
pub fn validate_schedule_name(name: &str) -> Result<(), FieldError> {
    rules::schedule_name(name)
}

/// The task a schedule fires: the fields of `POST /v1/tasks` that make
/// sense for a task enqueued again and again.
///
/// Refused, with a reason: `not_before` and `expires_at` (an absolute time
/// would be the same for every run; use `delay_ms`), and `id`,
/// `created_at` and `signature` (each run is a new task, signed when it is
/// enqueued).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TaskTemplate {
    /// Queue: 1–128 of `A-Z a-z 0-9 . _ : -`.
    pub queue: String,
    /// Task (handler) name.
    pub task: String,
    /// Arguments (any JSON; default `{}`), stored and signed byte for byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Box<RawValue>>,
    /// Each run is due this many ms after it is enqueued (0 to one year).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<i64>,
    /// Attempts allowed per run, 1–1000 (default 25).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// -1000–1000, higher first (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// Headers carried (and signed) with each run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// `http(s)://` URL for a signed callback when a run finishes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// Refused (see the type's documentation).
    #[serde(default, skip_serializing)]
    pub not_before: Option<serde::de::IgnoredAny>,
    /// Refused.
    #[serde(default, skip_serializing)]
    pub expires_at: Option<serde::de::IgnoredAny>,
    /// Refused.
    #[serde(default, skip_serializing)]
    pub id: Option<serde::de::IgnoredAny>,
    /// Refused.
    #[serde(default, skip_serializing)]
    pub created_at: Option<serde::de::IgnoredAny>,
    /// Refused.
    #[serde(default, skip_serializing)]
    pub signature: Option<serde::de::IgnoredAny>,
}

impl TaskTemplate {
    /// Checks every field; errors name the field as `task.<field>`. A run
    /// is checked as the [`Producer`] checks it (the same rules, the same
    /// words), plus what only a schedule refuses.
    pub fn validate(&self) -> Result<(), FieldError> {
        let refused = [
            ("not_before", self.not_before.is_some(), "an absolute time would be the same for every run; use delay_ms"),
            ("expires_at", self.expires_at.is_some(), "an absolute time would be the same for every run"),
            ("id", self.id.is_some(), "each run is a new task with its own id"),
            ("created_at", self.created_at.is_some(), "each run is created when it fires"),
            ("signature", self.signature.is_some(), "each run is signed by the server when it fires; a client signature cannot cover a task that does not exist yet"),
        ];
        if let Some((field, _, why)) = refused.iter().find(|(_, present, _)| *present) {
            return Err(
                FieldError::new(*field, format!("not allowed in a schedule: {why}")).within("task"),
            );
        }
        let reserved = self.headers.iter().flatten().find(|(name, _)| {
            [HEADER_SCHEDULE_ID, HEADER_FIRE_AT]
                .iter()
                .any(|r| name.eq_ignore_ascii_case(r))
        });
        if let Some((name, _)) = reserved {
            return Err(FieldError::new(
                format!("headers.{}", rules::excerpt(&name.to_ascii_lowercase())),
                "is set by the scheduler on every run; choose another name",
            )
            .within("task"));
        }
        // A run as the scheduler would enqueue it (any id and due time).
        let run = self.spec("sch_0", 0, fire_key("sch_0", 0));
        match run.check(0) {
            Ok(()) => Ok(()),
            Err(RuntimeError::InvalidField(e)) => Err(e.within("task")),
            Err(other) => Err(FieldError::new("task", other.to_string())),
        }
    }

    /// The task spec of one run, due at `fire_ms`, for schedule `schedule_id`.
    fn spec(&self, schedule_id: &str, fire_ms: i64, idempotency_key: String) -> TaskSpec {
        let args = self
            .args
            .as_ref()
            .map_or_else(|| b"{}".to_vec(), |a| a.get().as_bytes().to_vec());
        let mut spec = TaskSpec::raw(self.task.clone(), args)
            .queue(self.queue.clone())
            .idempotency_key(idempotency_key)
            .header(HEADER_SCHEDULE_ID, schedule_id)
            .header(HEADER_FIRE_AT, fire_ms.to_string())
            .with(self.priority, TaskSpec::priority)
            .with(self.max_attempts, TaskSpec::max_attempts)
            .with(self.delay_ms, TaskSpec::delay_ms)
            .with(self.callback_url.clone(), TaskSpec::callback_url);
        for (name, value) in self.headers.iter().flatten() {
            spec = spec.header(name.clone(), value.clone());
        }
        spec
    }
}

/// What a schedule fires, as stored: `{"task":{…}}` or `{"message":{…}}`.
#[derive(Debug)]
pub enum SchedulePayload {
    /// A signed task, through the [`Producer`].
    Task(TaskTemplate),
    /// An HTTP message: the `POST /v1/messages` body, as given.
    Message(Box<RawValue>),
}

/// The stored JSON, with exactly one of the two set.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PayloadRepr {
    #[serde(default)]
    task: Option<Box<RawValue>>,
    #[serde(default)]
    message: Option<Box<RawValue>>,
}

impl SchedulePayload {
    /// The stored form of a task payload given as JSON text (kept as given).
    pub fn task_json(task: &RawValue) -> Vec<u8> {
        format!("{{\"task\":{}}}", task.get()).into_bytes()
    }

    /// The stored form of a message payload given as JSON text.
    pub fn message_json(message: &RawValue) -> Vec<u8> {
        format!("{{\"message\":{}}}", message.get()).into_bytes()
    }

    /// Parses and checks the stored form. Errors name the field.
    pub fn from_json(bytes: &[u8]) -> Result<Self, FieldError> {
        let repr: PayloadRepr = serde_json::from_slice(bytes)
            .map_err(|e| FieldError::new("payload", format!("is not a schedule payload: {e}")))?;
        match (repr.task, repr.message) {
            (Some(task), None) => {
                let template: TaskTemplate = serde_json::from_str(task.get())
                    .map_err(|e| FieldError::new("task", e.to_string()))?;
                template.validate()?;
                Ok(SchedulePayload::Task(template))
            }
            (None, Some(message)) => {
                validate_message(&message)?;
                Ok(SchedulePayload::Message(message))
            }
            (Some(_), Some(_)) => Err(FieldError::new(
                "task",
                "give \"task\" or \"message\", not both",
            )),
            (None, None) => Err(FieldError::new(
                "task",
                "give what the schedule fires: \"task\" (a task body like POST /v1/tasks) or \"message\" (a body like POST /v1/messages)",
            )),
        }
    }

    /// `task` or `message`.
    pub fn kind(&self) -> &'static str {
        match self {
            SchedulePayload::Task(_) => "task",
            SchedulePayload::Message(_) => "message",
        }
    }
}

/// Checks the message of a message schedule: a `POST /v1/messages` body
/// without `not_before` (an absolute time would be the same for every
/// run). Errors name the field as `message.<field>`. Whether a named target
/// exists is checked when the message is published.
pub fn validate_message(message: &RawValue) -> Result<(), FieldError> {
    let parsed = crate::message::NewMessage::from_json(message.get()).map_err(message_error)?;
    if parsed.not_before.is_some() {
        return Err(FieldError::new(
            "message.not_before",
            "not allowed in a schedule: an absolute time would be the same for every run; use delay_ms",
        ));
    }
    parsed.validate().map_err(message_error)
}

fn message_error(e: RuntimeError) -> FieldError {
    match e {
        RuntimeError::InvalidField(e) if e.field() == "message" => {
            FieldError::new("message", e.message())
        }
        RuntimeError::InvalidField(e) => e.within("message"),
        other => FieldError::new("message", other.to_string()),
    }
}

/// The idempotency key of one due time of one schedule.
pub fn fire_key(schedule_id: &str, fire_ms: i64) -> String {
    format!("schedule:{schedule_id}:{fire_ms}")
}

/// What one scheduler pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Due times fired (new tasks or messages enqueued).
    pub fired: usize,
    /// Due times whose enqueue found the run already there (another
    /// scheduler, or this one before a crash, fired it).
    pub already_fired: usize,
    /// Schedules moved past missed due times without firing them.
    pub skipped: usize,
    /// Due times that could not be fired and were given up.
    pub failed: usize,
}

/// Fires due schedules. Any number may run (one per node under a
/// [`LeaderElector`](crate::leader::LeaderElector) is usual); each due
/// time still fires once.
pub struct Scheduler {
    store: Arc<dyn Store>,
    producer: Producer,
    messages: Option<Arc<dyn MessagePublisher>>,
    clock: Arc<dyn Clock>,
    poll_interval: Duration,
    misfire_grace: Duration,
    batch: usize,
}

impl fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler")
            .field("producer", &self.producer)
            .field("messages", &self.messages.is_some())
            .field("poll_interval", &self.poll_interval)
            .field("misfire_grace", &self.misfire_grace)
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

/// How firing one due time went.
enum Fire {
    Created,
    Existed,
}

impl Scheduler {
    /// A scheduler that enqueues tasks with `producer` (on the producer's
    /// store), on the system clock, with the default poll interval, grace
    /// and batch. Message schedules need [`Scheduler::messages`].
    pub fn new(producer: Producer) -> Self {
        Self {
            store: Arc::clone(producer.store()),
            producer,
            messages: None,
            clock: Arc::new(SystemClock),
            poll_interval: DEFAULT_POLL_INTERVAL,
            misfire_grace: DEFAULT_MISFIRE_GRACE,
            batch: DEFAULT_SCHEDULE_BATCH,
        }
    }

    /// How message schedules publish their messages.
    pub fn messages(mut self, publisher: Arc<dyn MessagePublisher>) -> Self {
        self.messages = Some(publisher);
        self
    }

    /// The clock (tests pass a [`ManualClock`](crate::ManualClock)); the
    /// producer uses it too, so runs are created at the scheduler's time.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.producer = self.producer.clone().clock(Arc::clone(&clock));
        self.clock = clock;
        self
    }

    /// Longest wait between passes (it also wakes at the next due time).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Due times at most this old still fire; older ones are missed and
    /// handled by the schedule's [`CatchUp`].
    pub fn misfire_grace(mut self, grace: Duration) -> Self {
        self.misfire_grace = grace;
        self
    }

    /// Most schedules per store call.
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// One pass: fires every schedule due now, as many due times each as
    /// are due (up to [`MAX_FIRES_PER_PASS`]). Store failures while reading
    /// due schedules end the pass with the error; failures of one schedule
    /// are logged and counted, and do not stop the others.
    pub async fn run_once(&self) -> Result<PassReport, StoreError> {
        let now = self.clock.now_ms();
        let mut report = PassReport::default();
        let mut seen = std::collections::HashSet::new();
        loop {
            let due = self.store.due_schedules(now, self.batch).await?;
            let full = due.len() >= self.batch;
            let mut progressed = false;
            for schedule in due {
                if !seen.insert(schedule.id.clone()) {
                    // Handled earlier in this pass and still due (a failure
                    // left it there, or it is far behind): next pass.
                    continue;
                }
                progressed = true;
                self.process(schedule, now, &mut report).await;
            }
            if !full || !progressed {
                break;
            }
        }
        Ok(report)
    }

    /// Fires the due times of one schedule up to `now`.
    async fn process(&self, mut schedule: ScheduleRecord, now: i64, report: &mut PassReport) {
        let span_name = schedule.name.clone();
        let (cron, payload) = match (
            CronSchedule::parse(&schedule.cron, &schedule.timezone),
            SchedulePayload::from_json(&schedule.payload),
        ) {
            (Ok(cron), Ok(payload)) => (cron, payload),
            (Err(e), _) | (_, Err(e)) => {
                // Only a database edited by hand (or by a newer version)
                // gets here: the API and CLI refuse such schedules.
                tracing::error!(schedule = %span_name, id = %schedule.id, error = %e, "stored schedule is invalid; it will not fire again until it is fixed (PATCH it)");
                metrics::counter!(SCHEDULES_FAILED, "schedule" => span_name).increment(1);
                report.failed += 1;
                if let Some(due) = schedule.next_fire_at_ms {
                    if let Err(e) = self
                        .store
                        .advance_schedule(&schedule.id, due, None, now)
                        .await
                    {
                        tracing::warn!(schedule = %schedule.name, error = %e, "could not stop the invalid schedule; will retry next pass");
                    }
                }
                return;
            }
        };
        let horizon = now.saturating_sub(duration_ms(self.misfire_grace));
        for _ in 0..MAX_FIRES_PER_PASS {
            let Some(due) = schedule.next_fire_at_ms.filter(|d| *d <= now) else {
                return;
            };
            let (fire, next) = if due < horizon {
                // Missed: everything before the grace window.
                let next = cron.next_at_or_after(horizon);
                match schedule.catch_up {
                    CatchUp::Skip => (false, next),
                    CatchUp::Once => (true, next),
                }
            } else {
                (true, cron.next_after(due))
            };
            if fire {
                match self.fire(&schedule, &payload, due).await {
                    Ok(Fire::Created) => {
                        report.fired += 1;
                        metrics::counter!(SCHEDULES_FIRED, "schedule" => schedule.name.clone())
                            .increment(1);
                        tracing::info!(schedule = %schedule.name, id = %schedule.id, due_ms = due, missed = due < horizon, "schedule fired");
                    }
                    Ok(Fire::Existed) => {
                        report.already_fired += 1;
                        tracing::debug!(schedule = %schedule.name, due_ms = due, "due time was already fired; advancing");
                    }
                    Err(e) if e.is_retryable() || is_unconfigured(&e) => {
                        tracing::warn!(schedule = %schedule.name, due_ms = due, error = %e, "could not fire schedule; will retry next pass");
                        return;
                    }
                    Err(e) => {
                        report.failed += 1;
                        metrics::counter!(SCHEDULES_FAILED, "schedule" => schedule.name.clone())
                            .increment(1);
                        tracing::error!(schedule = %schedule.name, id = %schedule.id, due_ms = due, error = %e, "could not fire schedule; this due time is given up");
                    }
                }
            } else {
                report.skipped += 1;
                metrics::counter!(SCHEDULES_SKIPPED, "schedule" => schedule.name.clone())
                    .increment(1);
                tracing::info!(schedule = %schedule.name, id = %schedule.id, first_missed_ms = due, next_ms = ?next, "skipped missed due times (catch_up: skip)");
            }
            match self
                .store
                .advance_schedule(&schedule.id, due, next, now)
                .await
            {
                Ok(true) => {
                    schedule.last_fired_at_ms = Some(due);
                    schedule.next_fire_at_ms = next;
                }
                // Another scheduler moved it (or it was edited): its due
                // time is that one's business now.
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(schedule = %schedule.name, error = %e, "could not advance schedule; its due time fires again next pass (the enqueue is idempotent)");
                    return;
                }
            }
        }
    }

    async fn fire(
        &self,
        schedule: &ScheduleRecord,
        payload: &SchedulePayload,
        due: i64,
    ) -> Result<Fire, RuntimeError> {
        let key = fire_key(&schedule.id, due);
        let created = match payload {
            SchedulePayload::Task(template) => {
                let Enqueued { created, .. } = self
                    .producer
                    .enqueue(template.spec(&schedule.id, due, key))
                    .await?;
                created
            }
            SchedulePayload::Message(message) => {
                let publisher = self.messages.as_ref().ok_or_else(|| {
                    RuntimeError::Config(
                        "a message schedule is due but this scheduler has no message publisher"
                            .into(),
                    )
                })?;
                publisher.publish(message, key).await?
            }
        };
        Ok(if created {
            Fire::Created
        } else {
            Fire::Existed
        })
    }

    /// The time until the next schedule is due, at most the poll interval.
    async fn wait_time(&self) -> Duration {
        let now = self.clock.now_ms();
        let horizon = now.saturating_add(duration_ms(self.poll_interval));
        match self.store.due_schedules(horizon, 1).await {
            Ok(next) => match next.first().and_then(|s| s.next_fire_at_ms) {
                // Still due after a pass: it failed; wait a whole interval.
                Some(at) if at <= now => self.poll_interval,
                Some(at) => Duration::from_millis(u64::try_from(at - now).unwrap_or(0)),
                None => self.poll_interval,
            },
            Err(_) => self.poll_interval,
        }
    }

    /// Runs passes until `shutdown` fires: each pass fires what is due,
    /// then the scheduler sleeps until the next due time or the poll
    /// interval, whichever is sooner. Store errors are logged and the next
    /// pass is tried on time.
    pub async fn run(self, shutdown: ShutdownSignal) {
        tracing::info!(
            poll_interval_ms = duration_ms(self.poll_interval),
            misfire_grace_s = self.misfire_grace.as_secs(),
            "scheduler started"
        );
        crate::periodic::run_paced(shutdown, || async {
            if let Err(e) = self.run_once().await {
                tracing::warn!(error = %e, "scheduler pass failed; will retry");
            }
            self.wait_time().await
        })
        .await;
        tracing::info!("scheduler stopped");
    }
}

/// A message schedule met a scheduler without a publisher: leave the due
/// time for a scheduler that has one.
fn is_unconfigured(e: &RuntimeError) -> bool {
    matches!(e, RuntimeError::Config(_))
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

    fn template(json: &str) -> Result<TaskTemplate, FieldError> {
        let t: TaskTemplate =
            serde_json::from_str(json).map_err(|e| FieldError::new("task", e.to_string()))?;
        t.validate()?;
        Ok(t)
    }

    #[test]
    fn task_templates_are_checked_field_by_field() {
        assert!(template(r#"{"queue":"q","task":"report.daily","args":{"a":1}}"#).is_ok());
        let e = template(r#"{"queue":"q","task":"t","not_before":1}"#).unwrap_err();
        assert_eq!(e.field(), "task.not_before");
        let e = template(r#"{"queue":"q","task":"t","signature":{"alg":"x"}}"#).unwrap_err();
        assert_eq!(e.field(), "task.signature");
        let e = template(r#"{"queue":"signet:messages","task":"t"}"#).unwrap_err();
        assert_eq!(e.field(), "task.queue");
        let e = template(r#"{"queue":"a b","task":"t"}"#).unwrap_err();
        assert_eq!(e.field(), "task.queue");
        let e = template(r#"{"queue":"q","task":""}"#).unwrap_err();
        assert_eq!(e.field(), "task.task");
        let e = template(r#"{"queue":"q","task":"t","max_attempts":0}"#).unwrap_err();
        assert_eq!(e.field(), "task.max_attempts");
        let e = template(r#"{"queue":"q","task":"t","priority":5000}"#).unwrap_err();
        assert_eq!(e.field(), "task.priority");
        let e = template(r#"{"queue":"q","task":"t","delay_ms":-1}"#).unwrap_err();
        assert_eq!(e.field(), "task.delay_ms");
        let e =
            template(r#"{"queue":"q","task":"t","headers":{"Signet-Fire-At":"1"}}"#).unwrap_err();
        assert_eq!(e.field(), "task.headers.signet-fire-at");
        let e = template(r#"{"queue":"q","task":"t","callback_url":"ftp://x"}"#).unwrap_err();
        assert_eq!(e.field(), "task.callback_url");
        assert!(template(r#"{"queue":"q","task":"t","bogus":1}"#).is_err());
    }

    #[test]
    fn payloads_need_exactly_one_kind() {
        let raw =
            serde_json::value::RawValue::from_string(r#"{"queue":"q","task":"t"}"#.into()).unwrap();
        let stored = SchedulePayload::task_json(&raw);
        assert!(matches!(
            SchedulePayload::from_json(&stored),
            Ok(SchedulePayload::Task(_))
        ));
        assert!(SchedulePayload::from_json(b"{}").is_err());
        assert!(SchedulePayload::from_json(b"not json").is_err());
        assert!(
            SchedulePayload::from_json(br#"{"task":{"queue":"q","task":"t"},"message":{}}"#)
                .is_err()
        );
    }

    #[test]
    fn fire_keys_name_the_schedule_and_due_time() {
        assert_eq!(
            fire_key("sch_1", 1_900_000_000_000),
            "schedule:sch_1:1900000000000"
        );
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
