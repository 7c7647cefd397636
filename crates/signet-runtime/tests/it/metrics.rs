//! Metrics, read back with `metrics-util`'s debugging recorder.
//!
//! The recorder is global to the test binary and a snapshot resets counters,
//! so this is the only test that takes snapshots; it filters by its own queue.

use std::sync::OnceLock;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use serde_json::json;
use signet_runtime::{HandlerError, TaskSpec};

use crate::support::*;

fn snapshotter() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("only this test installs a recorder");
        snapshotter
    })
}

/// `(name, labels, value)` of every metric in a snapshot.
type Entry = (String, Vec<(String, String)>, DebugValue);

struct Seen(Vec<Entry>);

impl Seen {
    fn take() -> Self {
        Self(
            snapshotter()
                .snapshot()
                .into_vec()
                .into_iter()
                .map(|(key, _, _, value)| {
                    let key = key.key();
                    let labels = key
                        .labels()
                        .map(|l| (l.key().to_owned(), l.value().to_owned()))
                        .collect();
                    (key.name().to_owned(), labels, value)
                })
                .collect(),
        )
    }

    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<&DebugValue> {
        self.0
            .iter()
            .find(|(n, ls, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| ls.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, _, v)| v)
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        match self.find(name, labels) {
            Some(DebugValue::Counter(n)) => *n,
            None => 0,
            Some(other) => panic!("{name} is not a counter: {other:?}"),
        }
    }
}

#[tokio::test]
async fn outcomes_are_counted_by_queue_task_and_reason() {
    snapshotter();
    let db = Db::new();
    let ring = hmac_ring();
    let q = "metrics-q";
    let w = worker(&db, &ring, q)
        .register("ok", |_ctx, _a: serde_json::Value| async { Ok(None) })
        .register("fail", |_ctx, _a: serde_json::Value| async {
            Err::<Option<serde_json::Value>, _>(HandlerError::retry("nope"))
        })
        .build()
        .unwrap();
    let p = producer(&db, &ring);
    let mut ids = Vec::new();
    for spec in [
        TaskSpec::new("ok", &json!({})),
        TaskSpec::new("ok", &json!({})),
        TaskSpec::new("ok", &json!({})),
        TaskSpec::new("fail", &json!({})).max_attempts(2),
        TaskSpec::new("nobody", &json!({})),
        TaskSpec::new("ok", &json!({ "tampered": false })),
    ] {
        ids.push(p.enqueue(spec.queue(q)).await.unwrap().task.id().to_owned());
    }
    db.raw()
        .execute(
            r#"UPDATE tasks SET args = CAST('{"tampered":true}' AS BLOB) WHERE id = ?1"#,
            [&ids[5]],
        )
        .unwrap();
    let mut running = Running::start(w);
    for id in &ids {
        running.until_final(id).await;
    }
    running.stop().await;
    signet_runtime::QueueDepthReporter::new(db.store.clone())
        .sample()
        .await
        .unwrap();

    let seen = Seen::take();
    let c = |name: &str, labels: &[(&str, &str)]| seen.counter(name, labels);
    use signet_runtime::metrics::*;
    assert_eq!(c(TASKS_ENQUEUED, &[("queue", q), ("task", "ok")]), 4);
    assert_eq!(c(TASKS_ENQUEUED, &[("queue", q), ("task", "fail")]), 1);
    assert_eq!(c(TASKS_SUCCEEDED, &[("queue", q), ("task", "ok")]), 3);
    assert_eq!(c(TASKS_FAILED, &[("queue", q), ("task", "fail")]), 2);
    assert_eq!(c(TASKS_RETRIED, &[("queue", q), ("task", "fail")]), 1);
    assert_eq!(
        c(
            TASKS_DEAD,
            &[("queue", q), ("task", "fail"), ("reason", "max-attempts")]
        ),
        1
    );
    assert_eq!(
        c(
            TASKS_DEAD,
            &[("queue", q), ("task", "nobody"), ("reason", "unknown-task")]
        ),
        1
    );
    assert_eq!(
        c(
            TASKS_DEAD,
            &[
                ("queue", q),
                ("task", "ok"),
                ("reason", "signature-invalid")
            ]
        ),
        1
    );
    // Other tests may refuse signatures at the same time: at least ours.
    assert!(c(SIGNATURE_INVALID, &[("reason", "mismatch")]) >= 1);
    match seen.find(TASK_RUN_DURATION, &[("queue", q), ("task", "ok")]) {
        Some(DebugValue::Histogram(v)) => assert_eq!(v.len(), 3),
        other => panic!("run duration histogram: {other:?}"),
    }
    let gauge = |state: &str| match seen.find(QUEUE_DEPTH, &[("queue", q), ("state", state)]) {
        Some(DebugValue::Gauge(v)) => v.into_inner(),
        other => panic!("queue depth {state}: {other:?}"),
    };
    assert_eq!(gauge("succeeded"), 3.0);
    assert_eq!(gauge("dead"), 3.0);
    assert_eq!(gauge("running"), 0.0);
}

/// A message whose target was deleted is dead-lettered under that target's
/// label (`_hidden` while target names are off), not the key ring's `none`.
/// A recorder local to this test's thread (the test runtime has one
/// thread, so the dispatcher records on it too) keeps other tests' series
/// out and this test's out of the global snapshot.
#[tokio::test]
async fn a_deleted_targets_message_is_counted_under_the_target() {
    use crate::dispatcher::{dead_of, Receiver, RunningDispatcher, Setup};
    use signet_runtime::metrics::{HIDDEN_TARGET_LABEL, MESSAGES_DEAD, NO_TARGET_LABEL};
    use signet_runtime::NewTarget;
    use signet_store::DeadReason;

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let s = Setup::new();
    let rx = Receiver::ok().await;
    let (t, _) = s
        .targets
        .create(NewTarget {
            name: "soon-gone".into(),
            url_prefix: None,
            secret: None,
            rate_limit_per_s: None,
            max_concurrency: None,
            https_only: false,
        })
        .await
        .unwrap();
    let id = s
        .publish(json!({"url": rx.url("/hook"), "target": "soon-gone"}))
        .await;
    s.targets.delete(&t.id, true).await.unwrap();
    let mut d = RunningDispatcher::start(s.dispatcher().build().unwrap());
    assert_eq!(dead_of(&d.next_for(&id).await).0, DeadReason::TargetRefused);
    d.stop().await;

    let dead: Vec<(String, u64)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == MESSAGES_DEAD)
        .map(|(key, _, _, value)| {
            let target = key
                .key()
                .labels()
                .find(|l| l.key() == "target")
                .map(|l| l.value().to_owned())
                .unwrap_or_default();
            match value {
                DebugValue::Counter(n) => (target, n),
                other => panic!("{MESSAGES_DEAD} is not a counter: {other:?}"),
            }
        })
        .collect();
    assert_eq!(
        dead,
        [(HIDDEN_TARGET_LABEL.to_owned(), 1)],
        "not {NO_TARGET_LABEL}"
    );
}
