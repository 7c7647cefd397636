//! Cron schedules: parsing and validating them, what they fire, writing
//! them ([`ScheduleService`], which the API and the CLI both call) and the
//! [`Scheduler`] that fires them.
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
//! fired ([`Store::advance_schedule`](signet_store::Store::advance_schedule)). So:
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
//! schedule's [`CatchUp`](signet_store::CatchUp) decides: `skip` fires nothing for them, `once`
//! fires one run (keyed by the first missed due time) for all of them. Then
//! the schedule continues with its first due time inside the grace window.
//!
//! # What a fired task carries
//!
//! A task fired by a schedule is signed by the [`Producer`](crate::Producer) like any other
//! and carries two signed headers: [`HEADER_SCHEDULE_ID`] (the schedule id)
//! and [`HEADER_FIRE_AT`] (the due time it fired for, unix ms), so a handler
//! knows which run it is doing even when it runs late.
//!
//! # Files
//!
//! One concern a file: `cron.rs` (expressions and due times),
//! `template.rs` (the task or message a schedule fires and its stored form),
//! `service.rs` (creating, changing, pausing, resuming, deleting and showing
//! schedules) and `scheduler.rs` (the service that fires them).

mod cron;
pub(crate) mod scheduler;
mod service;
mod template;

pub use cron::{CronSchedule, DEFAULT_TIMEZONE};
pub use scheduler::{
    PassReport, Scheduler, DEFAULT_MISFIRE_GRACE, DEFAULT_POLL_INTERVAL, DEFAULT_SCHEDULE_BATCH,
    MAX_FIRES_PER_PASS, SCHEDULES_FAILED, SCHEDULES_FIRED, SCHEDULES_SKIPPED,
};
pub use service::{parse_catch_up, NewSchedule, SchedulePatch, ScheduleService, UPCOMING_SHOWN};
pub use template::{fire_key, SchedulePayload, TaskTemplate, HEADER_FIRE_AT, HEADER_SCHEDULE_ID};
