//! Connection loss: every backend of the store is terminated (as a server
//! restart does); the store answers again without being reopened, nothing
//! written before is lost, and the listener comes back.

use std::time::Duration;

use signet_postgres::PostgresStore;
use signet_store::testkit::{assert_wakes, claim_req, new_task, put, T0};
use signet_store::Store;

use crate::wakeups::until_listening;
use crate::{database_url, fresh_schema, test_options, Admin};

/// Terminates every connection whose application_name is `app`; returns
/// how many.
async fn terminate(url: &str, app: &str) -> i64 {
    let admin = Admin::connect(url).await;
    let row = admin
        .query_one(
            "SELECT COUNT(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = $1 AND pid <> pg_backend_pid()",
            &[&app],
        )
        .await
        .expect("terminate backends");
    admin.close().await;
    row.get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_recovers_after_its_connections_are_killed() {
    let Some(url) = database_url("the_store_recovers_after_its_connections_are_killed") else {
        return;
    };
    let schema = fresh_schema("lost");
    let app = schema.clone();
    let sep = if url.contains('?') { '&' } else { '?' };
    let store_url = format!("{url}{sep}application_name={app}");
    let store = PostgresStore::connect(&store_url, test_options(&schema))
        .await
        .expect("connect");
    let before = put(&store, new_task("q")).await;
    until_listening(&store).await;

    let killed = terminate(&url, &app).await;
    assert!(
        killed >= 2,
        "the pool and the listener had connections ({killed})"
    );

    // Calls may fail while the pool notices; each failure is retryable and
    // the store answers again within a few tries.
    let mut recovered = false;
    for _ in 0..50 {
        match store.ping().await {
            Ok(()) => {
                recovered = true;
                break;
            }
            Err(e) => {
                assert!(e.is_retryable(), "a lost connection is retryable: {e:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert!(recovered, "the store did not reconnect");
    let got = store
        .claim(claim_req(&["q"], "w", 10), T0)
        .await
        .expect("claim after reconnecting");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id(), before.id(), "the task written before survived");

    // The listener reconnects by itself and wakes waiters again.
    until_listening(&store).await;
    let producer = PostgresStore::connect(&url, test_options(&schema))
        .await
        .expect("connect producer");
    assert_wakes(&store, &["q"], "enqueue after reconnect", async {
        producer.enqueue(new_task("q"), T0).await.expect("enqueue");
    })
    .await;
    producer.close().await.expect("close");
    store.danger_drop_schema().await.expect("drop");
}
