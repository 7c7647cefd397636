//! `wait_for_work` over LISTEN/NOTIFY: a node waiting on a queue wakes when
//! another node makes work due there, and not for other queues.

use std::pin::pin;
use std::time::{Duration, Instant};

use signet_postgres::PostgresStore;
use signet_store::testkit::{
    assert_wakes, assert_wakes_from_mark, claim_one, claim_req, new_task, T0,
};
use signet_store::{FailOutcome, LeaseToken, Store};

use crate::{database_url, fresh_schema, test_options};

/// How long a test waits for the listener to connect before failing.
const BOUND: Duration = Duration::from_secs(30);

/// Waits until `store`'s listener is connected.
pub(crate) async fn until_listening(store: &PostgresStore) {
    assert!(
        store.until_listening(BOUND).await,
        "the listener did not connect"
    );
    assert!(store.is_listening());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_work_wakes_waiters_on_other_nodes() {
    let Some(url) = database_url("due_work_wakes_waiters_on_other_nodes") else {
        return;
    };
    let schema = fresh_schema("wake");
    let producer = PostgresStore::connect(&url, test_options(&schema))
        .await
        .expect("connect producer");
    let worker = PostgresStore::connect(&url, test_options(&schema))
        .await
        .expect("connect worker");
    until_listening(&worker).await;

    assert_wakes(&worker, &["emails"], "enqueue", async {
        producer
            .enqueue(new_task("emails"), T0)
            .await
            .expect("enqueue");
    })
    .await;
    // Work that arrives while a claim runs (after the consumer's mark,
    // before its wait) is not missed, even when its notification arrives
    // before the wait begins.
    assert_wakes_from_mark(&worker, &["emails"], "an enqueue", async {
        producer
            .enqueue(new_task("emails"), T0)
            .await
            .expect("enqueue");
        // Long enough for the notification to reach the listener.
        tokio::time::sleep(Duration::from_millis(200)).await;
    })
    .await;
    let extra = claim_one(&worker, "emails", "w0", T0).await;
    worker
        .complete(&LeaseToken::of(&extra), None, T0)
        .await
        .expect("complete");

    // Work on another queue does not wake it: it runs to its timeout.
    let started = Instant::now();
    let short = Duration::from_millis(700);
    let queues = vec!["emails".to_owned()];
    let mut wait = pin!(worker.wait_for_work(&queues, worker.work_mark(&queues), short));
    assert!(futures::poll!(wait.as_mut()).is_pending());
    producer
        .enqueue(new_task("reports"), T0)
        .await
        .expect("enqueue");
    wait.await;
    assert!(started.elapsed() >= short, "woken by another queue's work");

    // A release and a retry due now make work due too.
    let row = claim_one(&worker, "emails", "w1", T0).await;
    assert_wakes(&worker, &["emails"], "release", async {
        producer
            .release(&LeaseToken::of(&row), T0)
            .await
            .expect("release");
    })
    .await;
    let row = claim_one(&worker, "emails", "w1", T0).await;
    assert_wakes(&worker, &["emails"], "retry due now", async {
        producer
            .fail(
                &LeaseToken::of(&row),
                "boom",
                FailOutcome::Retry { at_ms: T0 },
                T0,
            )
            .await
            .expect("fail");
    })
    .await;

    // A resume and a retry now on another node make work due too.
    producer
        .pause_queue("emails", "test", None, T0)
        .await
        .expect("pause");
    producer
        .enqueue(new_task("emails"), T0)
        .await
        .expect("enqueue");
    assert!(
        worker
            .claim(claim_req(&["emails"], "w1", 10), T0)
            .await
            .expect("claim")
            .is_empty(),
        "the pause holds on the other node"
    );
    assert_wakes(&worker, &["emails"], "resume", async {
        producer.resume_queue("emails").await.expect("resume");
    })
    .await;
    let mut rows = worker
        .claim(claim_req(&["emails"], "w1", 10), T0)
        .await
        .expect("claim");
    assert_eq!(rows.len(), 2, "both waiting tasks are claimed once resumed");
    let row = rows.remove(0);
    worker
        .fail(
            &LeaseToken::of(&row),
            "later",
            FailOutcome::Retry {
                at_ms: T0 + 3_600_000,
            },
            T0,
        )
        .await
        .expect("fail");
    assert_wakes(&worker, &["emails"], "retry now", async {
        producer
            .retry_now(row.id(), "test", T0 + 1)
            .await
            .expect("retry now");
    })
    .await;

    producer.close().await.expect("close");
    worker.danger_drop_schema().await.expect("drop");
}
