//! The scheduler over the real SQLite store, on a manual clock: each due
//! time fires once with several schedulers, across a crash between enqueue
//! and advance, and across a restart; late and missed due times; pauses;
//! message schedules; metrics.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::value::RawValue;
use signet_runtime::schedules::{
    fire_key, CronSchedule, SchedulePayload, Scheduler, HEADER_FIRE_AT, HEADER_SCHEDULE_ID,
    SCHEDULES_FIRED,
};
use signet_runtime::{Clock, ManualClock, MessagePublisher, RuntimeError, Shutdown};
use signet_sqlite::{SqliteConfig, SqliteStore};
use signet_store::{CatchUp, ScheduleId, ScheduleRecord, Store, TaskFilter, TaskRow};

use crate::support::*;

/// 2030-01-01T00:00:00Z.
const T0: i64 = 1_893_456_000_000;

fn task_payload(queue: &str) -> Vec<u8> {
    let raw = RawValue::from_string(format!(
        r#"{{"queue":"{queue}","task":"report.tick","args":{{"n": 1}},"headers":{{"tenant":"acme"}}}}"#
    ))
    .unwrap();
    SchedulePayload::task_json(&raw)
}

/// A schedule in UTC, created at `T0`.
fn schedule(name: &str, cron: &str, payload: Vec<u8>, catch_up: CatchUp) -> ScheduleRecord {
    let now = T0;
    let next = CronSchedule::parse(cron, "UTC")
        .unwrap()
        .next_after(now)
        .unwrap();
    ScheduleRecord {
        id: ScheduleId::generate().to_string(),
        name: name.into(),
        cron: cron.into(),
        timezone: "UTC".into(),
        payload,
        catch_up,
        paused: false,
        next_fire_at_ms: Some(next),
        last_fired_at_ms: None,
        created_at_ms: now,
        updated_at_ms: now,
    }
}

/// A store holding some schedules, and a manual clock at `T0`.
struct Setup {
    db: Db,
    clock: Arc<ManualClock>,
    dyn_clock: Arc<dyn Clock>,
}

impl Setup {
    async fn with(schedules: &[&ScheduleRecord]) -> Self {
        let db = Db::new();
        for s in schedules {
            db.store.create_schedule((*s).clone()).await.unwrap();
        }
        let (clock, dyn_clock) = manual_clock(T0);
        Self {
            db,
            clock,
            dyn_clock,
        }
    }

    /// A scheduler on this store and clock, enqueueing with the HMAC ring.
    fn scheduler(&self) -> Scheduler {
        Scheduler::new(producer(&self.db, &hmac_ring())).clock(Arc::clone(&self.dyn_clock))
    }

    async fn next_fire_at(&self, id: &str) -> Option<i64> {
        let s = self.db.store.schedule(id).await.unwrap().unwrap();
        s.next_fire_at_ms
    }

    async fn fired(&self, queue: &str) -> Vec<i64> {
        fired_due_times(self.db.store.as_ref(), queue).await
    }

    async fn tasks(&self, queue: &str) -> Vec<TaskRow> {
        tasks_in(self.db.store.as_ref(), queue).await
    }
}

async fn tasks_in(store: &dyn Store, queue: &str) -> Vec<TaskRow> {
    store
        .list_tasks(TaskFilter {
            queue: Some(queue.into()),
            state: None,
            include_internal: false,
            limit: 1000,
            cursor: None,
        })
        .await
        .unwrap()
        .items
}

/// The due times the tasks in `queue` were fired for, sorted, with
/// duplicates kept (so a double fire shows).
async fn fired_due_times(store: &dyn Store, queue: &str) -> Vec<i64> {
    let mut due: Vec<i64> = tasks_in(store, queue)
        .await
        .iter()
        .map(|t| t.envelope.headers[HEADER_FIRE_AT].parse().unwrap())
        .collect();
    due.sort_unstable();
    due
}

#[tokio::test]
async fn each_due_time_fires_once_with_two_schedulers_a_crash_and_a_restart() {
    let s = schedule(
        "every-10s",
        "*/10 * * * * *",
        task_payload("cron-a"),
        CatchUp::Skip,
    );
    let t = Setup::with(&[&s]).await;
    let a = t.scheduler();
    let b = t.scheduler();

    // Nothing due yet.
    assert_eq!(a.run_once().await.unwrap().fired, 0);

    // Two schedulers racing on each of three due times.
    for step in 1..=3 {
        t.clock.set(T0 + step * 10_000);
        let (ra, rb) = tokio::join!(a.run_once(), b.run_once());
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!(ra.fired + rb.fired, 1, "step {step}: {ra:?} {rb:?}");
    }
    assert_eq!(
        t.fired("cron-a").await,
        vec![T0 + 10_000, T0 + 20_000, T0 + 30_000]
    );

    // A crash between the enqueue and the advance: the schedule still says
    // the last due time is next. Firing it again enqueues nothing new.
    let mut stale = t.db.store.schedule(&s.id).await.unwrap().unwrap();
    assert_eq!(stale.next_fire_at_ms, Some(T0 + 40_000));
    assert_eq!(stale.last_fired_at_ms, Some(T0 + 30_000));
    stale.next_fire_at_ms = Some(T0 + 30_000);
    t.db.store.update_schedule(stale).await.unwrap();
    let again = a.run_once().await.unwrap();
    assert_eq!((again.fired, again.already_fired), (0, 1), "{again:?}");
    assert_eq!(t.next_fire_at(&s.id).await, Some(T0 + 40_000));

    // A restart: a new store handle on the same file, a new scheduler.
    drop((a, b));
    let reopened: Arc<dyn Store> = Arc::new(
        SqliteStore::open(
            &format!("sqlite://{}", t.db.path.display()),
            SqliteConfig::default(),
        )
        .unwrap(),
    );
    let c = Scheduler::new(
        signet_runtime::Producer::with_ring(Arc::clone(&reopened), Arc::new(hmac_ring()), true)
            .unwrap(),
    )
    .clock(Arc::clone(&t.dyn_clock));
    assert_eq!(
        c.run_once().await.unwrap().fired,
        0,
        "same time as before the restart"
    );
    t.clock.set(T0 + 40_000);
    assert_eq!(c.run_once().await.unwrap().fired, 1);
    assert_eq!(
        fired_due_times(reopened.as_ref(), "cron-a").await,
        vec![T0 + 10_000, T0 + 20_000, T0 + 30_000, T0 + 40_000]
    );

    // What a fired task carries: signed, idempotency key, schedule headers.
    let tasks = tasks_in(reopened.as_ref(), "cron-a").await;
    for t in &tasks {
        assert!(t.signature.is_some(), "fired tasks are signed");
        assert_eq!(t.envelope.headers[HEADER_SCHEDULE_ID], s.id);
        assert_eq!(t.envelope.headers["tenant"], "acme");
        assert_eq!(t.envelope.name, "report.tick");
        assert_eq!(t.envelope.args, br#"{"n": 1}"#);
        let due: i64 = t.envelope.headers[HEADER_FIRE_AT].parse().unwrap();
        assert_eq!(
            t.idempotency_key.as_deref(),
            Some(fire_key(&s.id, due).as_str())
        );
    }
}

#[tokio::test]
async fn late_due_times_within_the_grace_each_fire() {
    let s = schedule(
        "late",
        "*/10 * * * * *",
        task_payload("cron-late"),
        CatchUp::Skip,
    );
    let t = Setup::with(&[&s]).await;
    // 45 s later: 10, 20, 30 and 40 are late but inside the 60 s grace.
    t.clock.set(T0 + 45_000);
    let report = t.scheduler().run_once().await.unwrap();
    assert_eq!((report.fired, report.skipped), (4, 0), "{report:?}");
    assert_eq!(
        t.fired("cron-late").await,
        vec![T0 + 10_000, T0 + 20_000, T0 + 30_000, T0 + 40_000]
    );
    assert_eq!(t.next_fire_at(&s.id).await, Some(T0 + 50_000));
}

#[tokio::test]
async fn missed_due_times_are_skipped_or_fired_once() {
    let skip = schedule(
        "hourly-skip",
        "* * * * *",
        task_payload("cron-skip"),
        CatchUp::Skip,
    );
    let once = schedule(
        "hourly-once",
        "* * * * *",
        task_payload("cron-once"),
        CatchUp::Once,
    );
    let t = Setup::with(&[&skip, &once]).await;
    let sched = t.scheduler().misfire_grace(Duration::from_secs(30));

    // Down for an hour: every minute from T0+1min to T0+60min came due.
    // With a 30 s grace only T0+60min (10 s ago) is late rather than missed.
    t.clock.set(T0 + 3_610_000);
    let report = sched.run_once().await.unwrap();
    assert_eq!(report.skipped, 1, "{report:?}");
    assert_eq!(report.fired, 1 + 2, "{report:?}");

    // skip: nothing for the missed minutes; the late one fires.
    assert_eq!(t.fired("cron-skip").await, vec![T0 + 3_600_000]);
    // once: one run for all missed minutes (keyed by the first), then the
    // late one.
    assert_eq!(
        t.fired("cron-once").await,
        vec![T0 + 60_000, T0 + 3_600_000]
    );
    for s in [&skip, &once] {
        assert_eq!(
            t.next_fire_at(&s.id).await,
            Some(T0 + 3_660_000),
            "{}",
            s.name
        );
    }

    // The catch-up run is itself idempotent: replaying the pass after a
    // crash before the advance gives nothing new.
    let mut stale = t.db.store.schedule(&once.id).await.unwrap().unwrap();
    stale.next_fire_at_ms = Some(T0 + 60_000);
    t.db.store.update_schedule(stale).await.unwrap();
    let again = sched.run_once().await.unwrap();
    assert_eq!(again.fired, 0, "{again:?}");
    assert_eq!(t.fired("cron-once").await.len(), 2);
}

#[tokio::test]
async fn paused_schedules_fire_nothing() {
    let mut s = schedule(
        "paused",
        "* * * * *",
        task_payload("cron-paused"),
        CatchUp::Once,
    );
    s.paused = true;
    let t = Setup::with(&[&s]).await;
    t.clock.set(T0 + 600_000);
    let report = t.scheduler().run_once().await.unwrap();
    assert_eq!(report, Default::default());
    assert!(t.tasks("cron-paused").await.is_empty());
}

#[tokio::test]
async fn a_schedule_that_cannot_be_read_is_stopped_not_retried_forever() {
    let mut s = schedule(
        "broken",
        "* * * * *",
        task_payload("cron-broken"),
        CatchUp::Skip,
    );
    // As if edited by hand: an expression the API would refuse.
    s.cron = "every tuesday".into();
    let t = Setup::with(&[&s]).await;
    t.clock.set(T0 + 60_000);
    let report = t.scheduler().run_once().await.unwrap();
    assert_eq!(report.failed, 1);
    assert_eq!(t.next_fire_at(&s.id).await, None);
    assert!(t.tasks("cron-broken").await.is_empty());
}

/// Records what it publishes; a key seen before is not published again
/// (like the real publisher's idempotency key).
#[derive(Default)]
struct Recorder {
    published: Mutex<BTreeMap<String, String>>,
}

#[async_trait::async_trait]
impl MessagePublisher for Recorder {
    async fn publish(&self, message: &RawValue, key: String) -> Result<bool, RuntimeError> {
        let mut published = self.published.lock().unwrap();
        if published.contains_key(&key) {
            return Ok(false);
        }
        published.insert(key, message.get().to_owned());
        Ok(true)
    }
}

#[tokio::test]
async fn message_schedules_publish_through_the_publisher_and_wait_without_one() {
    let message =
        RawValue::from_string(r#"{"url":"https://example.com/hook","body":{"ping":true}}"#.into())
            .unwrap();
    let s = schedule(
        "ping",
        "* * * * *",
        SchedulePayload::message_json(&message),
        CatchUp::Skip,
    );
    let t = Setup::with(&[&s]).await;
    t.clock.set(T0 + 60_000);

    // No publisher: the due time stays for a scheduler that has one.
    let report = t.scheduler().run_once().await.unwrap();
    assert_eq!(report.fired, 0);
    assert_eq!(t.next_fire_at(&s.id).await, Some(T0 + 60_000));

    let recorder = Arc::new(Recorder::default());
    let with = t.scheduler().messages(recorder.clone());
    assert_eq!(with.run_once().await.unwrap().fired, 1);
    let published = recorder.published.lock().unwrap().clone();
    assert_eq!(
        published
            .get(&fire_key(&s.id, T0 + 60_000))
            .map(String::as_str),
        Some(message.get())
    );
    assert_eq!(t.next_fire_at(&s.id).await, Some(T0 + 120_000));
}

#[tokio::test]
async fn the_running_scheduler_fires_when_the_clock_reaches_a_due_time() {
    let s = schedule(
        "loop",
        "*/5 * * * * *",
        task_payload("cron-loop"),
        CatchUp::Skip,
    );
    let t = Setup::with(&[&s]).await;
    let shutdown = Shutdown::new();
    let handle = tokio::spawn(
        t.scheduler()
            .poll_interval(Duration::from_millis(5))
            .run(shutdown.signal()),
    );
    t.clock.set(T0 + 5_000);
    tokio::time::timeout(WAIT, async {
        while t.tasks("cron-loop").await.is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the scheduler fires the due time");
    shutdown.trigger();
    tokio::time::timeout(WAIT, handle)
        .await
        .expect("the scheduler stops on shutdown")
        .unwrap();
    assert_eq!(t.fired("cron-loop").await, vec![T0 + 5_000]);
}

/// Counted per schedule name, read with a recorder local to this thread
/// (the binary's global recorder belongs to the metrics test).
#[test]
fn fired_due_times_are_counted_per_schedule() {
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let s = schedule(
                "metered",
                "*/10 * * * * *",
                task_payload("cron-metered"),
                CatchUp::Skip,
            );
            let t = Setup::with(&[&s]).await;
            t.clock.set(T0 + 30_000);
            t.scheduler().run_once().await.unwrap();
        });
    });
    let fired = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .find(|(key, _, _, _)| {
            key.key().name() == SCHEDULES_FIRED
                && key
                    .key()
                    .labels()
                    .any(|l| l.key() == "schedule" && l.value() == "metered")
        })
        .map(|(_, _, _, value)| value);
    assert_eq!(fired, Some(metrics_util::debugging::DebugValue::Counter(3)));
}

/// A client cannot take a due time's key first: the same text sent as an
/// API key's (or the CLI's) `Idempotency-Key` is another scope's, so the
/// schedule still fires its own task, and the client keeps its own.
#[tokio::test]
async fn a_client_using_a_fire_key_does_not_stop_the_schedule_firing() {
    use signet_runtime::TaskSpec;
    use signet_store::IdempotencyScope;

    let s = schedule(
        "guarded",
        "*/10 * * * * *",
        task_payload("cron-guarded"),
        CatchUp::Skip,
    );
    let t = Setup::with(&[&s]).await;
    let key = fire_key(&s.id, T0 + 10_000);
    let p = producer(&t.db, &hmac_ring());
    for scope in [
        IdempotencyScope::ApiKey("key_intruder".into()),
        IdempotencyScope::Local,
    ] {
        let planted = p
            .enqueue(
                TaskSpec::new("report.tick", &serde_json::json!({"n": 1}))
                    .queue("cron-guarded")
                    .idempotency_key(key.clone())
                    .idempotency_scope(scope),
            )
            .await
            .unwrap();
        assert!(planted.created);
    }
    t.clock.set(T0 + 10_000);
    let report = t.scheduler().run_once().await.unwrap();
    assert_eq!(report.fired, 1, "{report:?}");
    let tasks = t.tasks("cron-guarded").await;
    assert_eq!(tasks.len(), 3, "two planted, one fired");
    let fired: Vec<_> = tasks
        .iter()
        .filter(|r| r.envelope.headers.get(HEADER_SCHEDULE_ID) == Some(&s.id))
        .collect();
    assert_eq!(fired.len(), 1, "the schedule fired its own task");
    assert_eq!(
        fired[0]
            .envelope
            .headers
            .get(HEADER_FIRE_AT)
            .map(String::as_str),
        Some((T0 + 10_000).to_string().as_str())
    );
}
