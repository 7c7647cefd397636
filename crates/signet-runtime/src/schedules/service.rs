//! [`ScheduleService`]: creating, changing, pausing, resuming, deleting and
//! showing schedules, with every check a schedule is held to. The HTTP API
//! and the CLI both call it, so they accept and refuse the same
//! definitions with the same words.

use std::fmt;
use std::sync::Arc;

use serde_json::value::RawValue;
use signet_store::rules::{self, FieldError};
use signet_store::{CatchUp, ScheduleId, ScheduleRecord, Store, StoreError, TargetRecord};

use super::cron::{off_runtime, CronSchedule, DEFAULT_TIMEZONE};
use super::template::SchedulePayload;
use crate::clock::{Clock, SystemClock};
use crate::error::RuntimeError;
use crate::message::NewMessage;
use crate::ssrf::SsrfPolicy;
use crate::targets::TargetService;

/// How many upcoming due times the API and CLI show.
pub const UPCOMING_SHOWN: usize = 5;

/// A schedule to create.
#[derive(Debug)]
pub struct NewSchedule {
    /// Unique name: 1–128 of `A-Z a-z 0-9 . _ : -`.
    pub name: String,
    /// Cron expression: 5 fields, 6 (seconds first) or a nickname
    /// (`@daily`, …).
    pub cron: String,
    /// IANA time zone the expression is read in; `None` is
    /// [`DEFAULT_TIMEZONE`].
    pub timezone: Option<String>,
    /// What it fires.
    pub payload: SchedulePayload,
    /// What happens to due times missed while no scheduler ran; `None` is
    /// [`CatchUp::Skip`].
    pub catch_up: Option<CatchUp>,
    /// Create it paused.
    pub paused: bool,
}

/// Changes to a schedule; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct SchedulePatch {
    /// A new unique name.
    pub name: Option<String>,
    /// A new cron expression (the next due time is computed again from now).
    pub cron: Option<String>,
    /// A new time zone (the next due time is computed again from now).
    pub timezone: Option<String>,
    /// A new payload: a task replaces a message and the other way round.
    pub payload: Option<SchedulePayload>,
    /// A new catch-up rule.
    pub catch_up: Option<CatchUp>,
}

/// Parses a `catch_up` value (`skip` or `once`); the error names the field
/// `catch_up` and says what each value does.
pub fn parse_catch_up(value: &str) -> Result<CatchUp, FieldError> {
    CatchUp::parse(value).map_err(|_| {
        FieldError::new(
            "catch_up",
            format!("{value:?} is not known; use \"skip\" (missed due times fire nothing) or \"once\" (they fire one run)"),
        )
    })
}

/// Writes and reads schedules on a store. Cheap to clone.
///
/// Not found is a [`StoreError::NotFound`] and a name in use a
/// [`StoreError::Conflict`] (both inside [`RuntimeError::Store`]); a field
/// that breaks a rule is a [`RuntimeError::InvalidField`] naming it as the
/// HTTP API spells it (`cron`, `timezone`, `task.queue`, `message.target`,
/// `catch_up`, …).
#[derive(Clone)]
pub struct ScheduleService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// Finds the target a message schedule names (reading needs no master
    /// key).
    targets: TargetService,
    /// The dispatcher's SSRF policy, to refuse message URLs early.
    ssrf: Option<SsrfPolicy>,
}

impl fmt::Debug for ScheduleService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScheduleService").finish_non_exhaustive()
    }
}

impl ScheduleService {
    /// Schedules on `store`, on the system clock.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self::with_clock(store, Arc::new(SystemClock))
    }

    /// Like [`ScheduleService::new`] with a clock (tests, and a server on a
    /// pinned clock).
    pub fn with_clock(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        let targets = TargetService::with_clock(Arc::clone(&store), None, Arc::clone(&clock));
        Self {
            store,
            clock,
            targets,
            ssrf: None,
        }
    }

    /// Refuses a message schedule whose URL's host is an IP literal
    /// `policy` refuses (give it the policy the dispatcher delivers under),
    /// as publishing does: every message it fired could only fail.
    pub fn ssrf_policy(mut self, policy: SsrfPolicy) -> Self {
        self.ssrf = Some(policy);
        self
    }

    /// Checks a definition and stores it, with its first due time after
    /// now. A message schedule's target must exist (the scheduler looks it
    /// up again at every due time).
    pub async fn create(&self, new: NewSchedule) -> Result<ScheduleRecord, RuntimeError> {
        let now = self.clock.now_ms();
        rules::schedule_name(&new.name)?;
        let timezone = new.timezone.unwrap_or_else(|| DEFAULT_TIMEZONE.to_owned());
        let (cron, next) = first_due(new.cron.clone(), timezone.clone(), now).await?;
        new.payload.validate()?;
        self.check_target(&new.payload).await?;
        let record = ScheduleRecord {
            id: ScheduleId::generate().to_string(),
            name: new.name,
            cron: cron.expression().to_owned(),
            timezone,
            payload: new.payload.to_json()?,
            catch_up: new.catch_up.unwrap_or(CatchUp::Skip),
            paused: new.paused,
            next_fire_at_ms: Some(next),
            last_fired_at_ms: None,
            created_at_ms: now,
            updated_at_ms: now,
        };
        check_record(&record)?;
        self.store.create_schedule(record.clone()).await?;
        tracing::info!(schedule = %record.name, id = %record.id, cron = %record.cron, timezone = %record.timezone, "schedule created");
        Ok(record)
    }

    /// Applies a patch. A new cron expression or time zone moves the next
    /// due time to the first one after now.
    pub async fn update(
        &self,
        id: &str,
        patch: SchedulePatch,
    ) -> Result<ScheduleRecord, RuntimeError> {
        let mut record = self.show(id).await?;
        let now = self.clock.now_ms();
        if let Some(name) = patch.name {
            rules::schedule_name(&name)?;
            record.name = name;
        }
        let timing_changed = patch.cron.is_some() || patch.timezone.is_some();
        if let Some(cron) = patch.cron {
            record.cron = cron;
        }
        if let Some(tz) = patch.timezone {
            record.timezone = tz;
        }
        if timing_changed {
            let (cron, next) = first_due(record.cron.clone(), record.timezone.clone(), now).await?;
            record.cron = cron.expression().to_owned();
            record.next_fire_at_ms = Some(next);
        } else {
            CronSchedule::parse_stored(&record.cron, &record.timezone)?;
        }
        if let Some(payload) = patch.payload {
            payload.validate()?;
            self.check_target(&payload).await?;
            record.payload = payload.to_json()?;
        }
        if let Some(catch_up) = patch.catch_up {
            record.catch_up = catch_up;
        }
        record.updated_at_ms = now;
        check_record(&record)?;
        self.store.update_schedule(record.clone()).await?;
        Ok(record)
    }

    /// Pauses a schedule: it fires nothing until resumed. Returns it and
    /// whether it changed (`false`: it was already paused).
    pub async fn pause(&self, id: &str) -> Result<(ScheduleRecord, bool), RuntimeError> {
        self.set_paused(id, true).await
    }

    /// Resumes a schedule from its first due time after now: due times
    /// while it was paused do not fire. Returns it and whether it changed
    /// (`false`: it was not paused).
    pub async fn resume(&self, id: &str) -> Result<(ScheduleRecord, bool), RuntimeError> {
        self.set_paused(id, false).await
    }

    async fn set_paused(
        &self,
        id: &str,
        paused: bool,
    ) -> Result<(ScheduleRecord, bool), RuntimeError> {
        let mut record = self.show(id).await?;
        if record.paused == paused {
            return Ok((record, false));
        }
        let now = self.clock.now_ms();
        if !paused {
            let (cron, timezone) = (record.cron.clone(), record.timezone.clone());
            let next = off_runtime(move || {
                CronSchedule::parse_stored(&cron, &timezone)?.check_fires_after(now)
            })
            .await??;
            record.next_fire_at_ms = Some(next);
        }
        record.paused = paused;
        record.updated_at_ms = now;
        self.store.update_schedule(record.clone()).await?;
        Ok((record, true))
    }

    /// Deletes a schedule. Runs it already fired stay.
    pub async fn delete(&self, id: &str) -> Result<(), RuntimeError> {
        if ScheduleId::parse(id).is_err() {
            return Err(StoreError::not_found("schedule", id).into());
        }
        self.store.delete_schedule(id).await?;
        tracing::info!(id = %id, "schedule deleted");
        Ok(())
    }

    /// A schedule by id (`sch_…`).
    pub async fn get(&self, id: &str) -> Result<Option<ScheduleRecord>, RuntimeError> {
        if ScheduleId::parse(id).is_err() {
            return Ok(None);
        }
        Ok(self.store.schedule(id).await?)
    }

    /// A schedule by id (`sch_…`) or, failing that, by name.
    pub async fn find(&self, id_or_name: &str) -> Result<Option<ScheduleRecord>, RuntimeError> {
        if let Some(found) = self.get(id_or_name).await? {
            return Ok(Some(found));
        }
        if rules::schedule_name(id_or_name).is_err() {
            return Ok(None);
        }
        Ok(self.store.schedule_by_name(id_or_name).await?)
    }

    /// Every schedule, by name.
    pub async fn list(&self) -> Result<Vec<ScheduleRecord>, RuntimeError> {
        Ok(self.store.list_schedules().await?)
    }

    /// The due times shown for a schedule: its next one and those after it,
    /// up to [`UPCOMING_SHOWN`], in unix ms; none while it is paused.
    /// Bounded work, but CPU work: async callers run it off the runtime (the
    /// schedule routes build their views on the blocking pool).
    pub fn upcoming(record: &ScheduleRecord) -> Vec<i64> {
        match (record.paused, record.next_fire_at_ms) {
            (false, Some(next)) => {
                let mut times = vec![next];
                if let Ok(cron) = CronSchedule::parse_stored(&record.cron, &record.timezone) {
                    times.extend(cron.upcoming(next, UPCOMING_SHOWN - 1));
                }
                times
            }
            _ => Vec::new(),
        }
    }

    /// A schedule by id; a missing one is a [`StoreError::NotFound`].
    pub async fn show(&self, id: &str) -> Result<ScheduleRecord, RuntimeError> {
        self.get(id)
            .await?
            .ok_or_else(|| StoreError::not_found("schedule", id).into())
    }

    /// The schedules whose message names `target` (by id or by name).
    pub async fn using_target(
        &self,
        target: &TargetRecord,
    ) -> Result<Vec<ScheduleRecord>, RuntimeError> {
        Ok(self
            .list()
            .await?
            .into_iter()
            .filter(|s| {
                stored_target(s).is_some_and(|named| named == target.id || named == target.name)
            })
            .collect())
    }

    /// Whether a message schedule names a target that does not exist (it
    /// was deleted, or renamed away from the name the schedule gives): each
    /// due time is given up (the scheduler cannot publish it). `false` for task
    /// schedules and messages without a target.
    pub async fn target_missing(&self, record: &ScheduleRecord) -> Result<bool, RuntimeError> {
        match stored_target(record) {
            None => Ok(false),
            Some(named) => Ok(self.targets.find(&named).await?.is_none()),
        }
    }

    /// A message schedule that names a target: the target must exist when
    /// the schedule is written.
    async fn check_target(&self, payload: &SchedulePayload) -> Result<(), RuntimeError> {
        let SchedulePayload::Message(message) = payload else {
            return Ok(());
        };
        if let Some(policy) = &self.ssrf {
            if let Ok(parsed) = NewMessage::from_json(message.get()) {
                // Checked by `payload.validate()` before this.
                let url = rules::http_url("message.url", &parsed.url)?;
                policy.refuse_early("message.url", &url)?;
            }
        }
        let Some(name) = target_of(message) else {
            return Ok(());
        };
        if self.targets.find(&name).await?.is_none() {
            return Err(RuntimeError::field(
                "message.target",
                format!(
                    "no target {:?}; register it first (POST /v1/targets) or name an existing target by id or name",
                    rules::excerpt(&name)
                ),
            ));
        }
        Ok(())
    }
}

/// Parses `cron` in `timezone` and finds its first due time after `now`,
/// off the async runtime.
async fn first_due(
    cron: String,
    timezone: String,
    now: i64,
) -> Result<(CronSchedule, i64), RuntimeError> {
    off_runtime(move || {
        let cron = CronSchedule::parse(&cron, &timezone)?;
        let next = cron.check_fires_after(now)?;
        Ok((cron, next))
    })
    .await?
}

/// The target a message names, if it parses and names one.
fn target_of(message: &RawValue) -> Option<String> {
    NewMessage::from_json(message.get()).ok()?.target
}

/// The target a stored schedule's message names, if any.
fn stored_target(record: &ScheduleRecord) -> Option<String> {
    let (_, message) = SchedulePayload::stored_parts(&record.payload);
    target_of(&message?)
}

/// What every backend refuses, as a field error of the request.
fn check_record(record: &ScheduleRecord) -> Result<(), FieldError> {
    record
        .validate()
        .map_err(|e| FieldError::new("request", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::schedules::TaskTemplate;

    /// 2030-01-01T00:00:30Z.
    const NOW: i64 = 1_893_456_030_000;

    struct Setup {
        service: ScheduleService,
        clock: Arc<ManualClock>,
        _dir: tempfile::TempDir,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("signet.db").display());
        let store =
            signet_sqlite::SqliteStore::open(&url, signet_sqlite::SqliteConfig::default()).unwrap();
        let clock = Arc::new(ManualClock::new(NOW));
        Setup {
            service: ScheduleService::with_clock(Arc::new(store), clock.clone()),
            clock,
            _dir: dir,
        }
    }

    fn task(args: &str) -> SchedulePayload {
        SchedulePayload::Task(TaskTemplate {
            queue: "reports".into(),
            task: "report.daily".into(),
            args: Some(RawValue::from_string(args.into()).unwrap()),
            ..TaskTemplate::default()
        })
    }

    fn new(name: &str, cron: &str, payload: SchedulePayload) -> NewSchedule {
        NewSchedule {
            name: name.into(),
            cron: cron.into(),
            timezone: None,
            payload,
            catch_up: None,
            paused: false,
        }
    }

    fn field(e: RuntimeError) -> String {
        match e {
            RuntimeError::InvalidField(e) => e.field().to_owned(),
            other => panic!("not a field error: {other}"),
        }
    }

    fn ms(rfc3339: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis()
    }

    #[tokio::test]
    async fn create_stores_the_payload_with_args_byte_for_byte() {
        let s = setup();
        let mut def = new("daily", "0 9 * * *", task(r#"{ "b":2,  "a":1 }"#));
        def.timezone = Some("Europe/Paris".into());
        let created = s.service.create(def).await.unwrap();
        assert_eq!(created.timezone, "Europe/Paris");
        assert_eq!(created.catch_up, CatchUp::Skip);
        assert_eq!(created.next_fire_at_ms, Some(ms("2030-01-01T08:00:00Z")));
        assert_eq!(
            String::from_utf8(created.payload.clone()).unwrap(),
            r#"{"task":{"queue":"reports","task":"report.daily","args":{ "b":2,  "a":1 }}}"#
        );
        // The stored form is the one the scheduler reads.
        assert!(matches!(
            SchedulePayload::from_json(&created.payload),
            Ok(SchedulePayload::Task(_))
        ));
        let found = s.service.find("daily").await.unwrap().unwrap();
        assert_eq!(found.id, created.id);
        let found = s.service.find(&created.id).await.unwrap().unwrap();
        assert_eq!(found.name, "daily");
        assert!(s.service.find("nobody").await.unwrap().is_none());
        assert!(s.service.get("daily").await.unwrap().is_none());
        assert_eq!(s.service.list().await.unwrap().len(), 1);

        let e = s
            .service
            .create(new("daily", "* * * * *", task("{}")))
            .await
            .unwrap_err();
        assert!(
            matches!(e, RuntimeError::Store(StoreError::Conflict(_))),
            "{e}"
        );
    }

    #[tokio::test]
    async fn invalid_definitions_name_the_field_and_store_nothing() {
        let s = setup();
        let cases = [
            (new("a b", "* * * * *", task("{}")), "name"),
            (new("s", "61 * * * *", task("{}")), "cron"),
            (new("s", "0 0 30 2 *", task("{}")), "cron"),
            (
                NewSchedule {
                    timezone: Some("Mars/Olympus".into()),
                    ..new("s", "* * * * *", task("{}"))
                },
                "timezone",
            ),
            (
                new(
                    "s",
                    "* * * * *",
                    SchedulePayload::Task(TaskTemplate {
                        queue: "signet:x".into(),
                        task: "t".into(),
                        ..TaskTemplate::default()
                    }),
                ),
                "task.queue",
            ),
            (
                new(
                    "s",
                    "* * * * *",
                    SchedulePayload::Message(
                        RawValue::from_string(
                            r#"{"url":"https://example.com","target":"nobody"}"#.into(),
                        )
                        .unwrap(),
                    ),
                ),
                "message.target",
            ),
            (
                new(
                    "s",
                    "* * * * *",
                    SchedulePayload::Message(
                        RawValue::from_string(r#"{"body":"x"}"#.into()).unwrap(),
                    ),
                ),
                "message",
            ),
        ];
        for (def, want) in cases {
            let e = s.service.create(def).await.unwrap_err();
            assert_eq!(field(e), want);
        }
        assert_eq!(
            field(parse_catch_up("sometimes").unwrap_err().into()),
            "catch_up"
        );
        assert_eq!(parse_catch_up("once").unwrap(), CatchUp::Once);
        assert!(s.service.list().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn patch_pause_resume_and_next_due_times() {
        let s = setup();
        let created = s
            .service
            .create(new("s", "0 9 * * *", task("{}")))
            .await
            .unwrap();
        assert_eq!(
            ScheduleService::upcoming(&created),
            (1..=5)
                .map(|d| ms(&format!("2030-01-0{d}T09:00:00Z")))
                .collect::<Vec<_>>()
        );

        // A new cron recomputes the next due time from now; the payload stays.
        s.clock.set(NOW + 3_600_000);
        let patched = s
            .service
            .update(
                &created.id,
                SchedulePatch {
                    cron: Some("*/15 * * * *".into()),
                    catch_up: Some(CatchUp::Once),
                    ..SchedulePatch::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(patched.next_fire_at_ms, Some(ms("2030-01-01T01:15:00Z")));
        assert_eq!(patched.catch_up, CatchUp::Once);
        assert_eq!(patched.payload, created.payload);
        let e = s
            .service
            .update(
                &created.id,
                SchedulePatch {
                    timezone: Some("Nowhere/Land".into()),
                    ..SchedulePatch::default()
                },
            )
            .await
            .unwrap_err();
        assert_eq!(field(e), "timezone");

        let (paused, changed) = s.service.pause(&created.id).await.unwrap();
        assert!(paused.paused && changed);
        assert!(ScheduleService::upcoming(&paused).is_empty());
        let (_, changed) = s.service.pause(&created.id).await.unwrap();
        assert!(!changed, "already paused");
        // Resuming two hours later continues after now.
        s.clock.set(NOW + 3 * 3_600_000);
        let (resumed, changed) = s.service.resume(&created.id).await.unwrap();
        assert!(!resumed.paused && changed);
        assert_eq!(resumed.next_fire_at_ms, Some(ms("2030-01-01T03:15:00Z")));

        s.service.delete(&created.id).await.unwrap();
        for e in [
            s.service.delete(&created.id).await.unwrap_err(),
            s.service.pause(&created.id).await.unwrap_err(),
            s.service.delete("nonsense").await.unwrap_err(),
        ] {
            assert!(
                matches!(&e, RuntimeError::Store(e) if e.is_not_found()),
                "{e}"
            );
        }
    }
}
