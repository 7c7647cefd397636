//! `wait_for_work` over LISTEN/NOTIFY: a node waiting on a queue wakes when
//! another node makes work due there, and not for other queues.

use std::pin::pin;
use std::time::{Duration, Instant};

use signet_postgres::PostgresStore;
use signet_store::testkit::{new_task, T0};
use signet_store::{ClaimRequest, LeaseToken, Store};

use crate::{database_url, fresh_schema, test_options};

/// Far longer than any wake-up takes: a wait that runs into it was not woken.
const NEVER: Duration = Duration::from_secs(120);
/// How long the test waits for a wake-up before failing.
const BOUND: Duration = Duration::from_secs(30);

/// Waits until `store`'s listener is connected.
pub(crate) async fn until_listening(store: &PostgresStore) {
    assert!(
        store.until_listening(BOUND).await,
        "the listener did not connect"
    );
    assert!(store.is_listening());
}

/// Asserts that `act` wakes a waiter on `queue` of `waiter`.
pub(crate) async fn assert_wakes<F: std::future::Future<Output = ()>>(
    waiter: &PostgresStore,
    queue: &str,
    what: &str,
    act: F,
) {
    let queues = vec![queue.to_owned()];
    let mut wait = pin!(waiter.wait_for_work(&queues, NEVER));
    // First poll: the waiter subscribes before the work is made due.
    assert!(
        futures::poll!(wait.as_mut()).is_pending(),
        "{what}: woke before the work"
    );
    act.await;
    tokio::time::timeout(BOUND, wait)
        .await
        .unwrap_or_else(|_| panic!("{what}: the waiter on {queue} was not woken"));
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

    assert_wakes(&worker, "emails", "enqueue", async {
        producer
            .enqueue(new_task("emails"), T0)
            .await
            .expect("enqueue");
    })
    .await;

    // Work on another queue does not wake it: it runs to its timeout.
    let started = Instant::now();
    let short = Duration::from_millis(700);
    let queues = vec!["emails".to_owned()];
    let mut wait = pin!(worker.wait_for_work(&queues, short));
    assert!(futures::poll!(wait.as_mut()).is_pending());
    producer
        .enqueue(new_task("reports"), T0)
        .await
        .expect("enqueue");
    wait.await;
    assert!(started.elapsed() >= short, "woken by another queue's work");

    // A release and a retry due now make work due too.
    let claim = ClaimRequest {
        queues: vec!["emails".into()],
        worker_id: "w1".into(),
        limit: 1,
        lease_ms: 30_000,
    };
    let row = worker
        .claim(claim.clone(), T0)
        .await
        .expect("claim")
        .remove(0);
    assert_wakes(&worker, "emails", "release", async {
        producer
            .release(&LeaseToken::of(&row), T0)
            .await
            .expect("release");
    })
    .await;
    let row = worker.claim(claim, T0).await.expect("claim").remove(0);
    assert_wakes(&worker, "emails", "retry due now", async {
        producer
            .fail(
                &LeaseToken::of(&row),
                "boom",
                signet_store::FailOutcome::Retry { at_ms: T0 },
                T0,
            )
            .await
            .expect("fail");
    })
    .await;

    producer.close().await.expect("close");
    worker.danger_drop_schema().await.expect("drop");
}
