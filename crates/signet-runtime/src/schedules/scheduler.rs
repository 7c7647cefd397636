//! The [`Scheduler`]: the service that fires due schedules, each due time
//! once across every scheduler running (see the [module
//! documentation](super) for how).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use signet_store::{CatchUp, Enqueued, IdempotencyScope, ScheduleRecord, Store, StoreError};

use super::cron::CronSchedule;
use super::template::{fire_key, SchedulePayload};
use crate::clock::{duration_ms, Clock, SystemClock};
use crate::error::RuntimeError;
use crate::message::MessagePublisher;
use crate::producer::Producer;
use crate::shutdown::ShutdownSignal;

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
/// Counter: due times fired (a task or message enqueued), by `schedule` name.
pub const SCHEDULES_FIRED: &str = "signet_schedules_fired_total";
/// Counter: passes that skipped missed due times (`catch_up: skip`), by
/// `schedule` name.
pub const SCHEDULES_SKIPPED: &str = "signet_schedules_skipped_total";
/// Counter: due times that could not be fired, by `schedule` name.
pub const SCHEDULES_FAILED: &str = "signet_schedules_failed_total";

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
            SchedulePayload::from_stored(&schedule.payload, &schedule.id),
        ) {
            (Ok(cron), Ok(payload)) => (cron, payload),
            (Err(e), _) | (_, Err(e)) => {
                // Only a database edited by hand (or by a newer version)
                // gets here: the API and CLI refuse such schedules.
                tracing::error!(schedule = %span_name, id = %schedule.id, error = %e, "stored schedule is invalid; it will not fire again until it is fixed (PATCH it)");
                crate::metrics::schedule_event(SCHEDULES_FAILED, &span_name);
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
                        crate::metrics::schedule_event(SCHEDULES_FIRED, &schedule.name);
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
                        crate::metrics::schedule_event(SCHEDULES_FAILED, &schedule.name);
                        tracing::error!(schedule = %schedule.name, id = %schedule.id, due_ms = due, error = %e, "could not fire schedule; this due time is given up");
                    }
                }
            } else {
                report.skipped += 1;
                crate::metrics::schedule_event(SCHEDULES_SKIPPED, &schedule.name);
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
                    .enqueue(
                        template
                            .spec(&schedule.id, due, key)
                            .idempotency_scope(IdempotencyScope::System),
                    )
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
