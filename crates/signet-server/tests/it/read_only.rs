//! A database that answers reads but refuses writes (a read-only file or
//! mount, a standby): `/readyz` answers `503 store_unavailable` with the
//! cause, and so does an API write (it was `500 internal`, and `/readyz`
//! said `200`).

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use signet_store::testkit::FaultyStore;
use signet_store::{Store, StoreError};

use crate::routes::{harness, Harness};

/// The words a read-only SQLite database answers with.
const CAUSE: &str =
    "attempt to write a readonly database (SQLite code 8); nothing was written. Check that the database file is writable";

fn refusal() -> StoreError {
    StoreError::unavailable(format!(
        "checking that the database can be written: {CAUSE}"
    ))
}

/// Reads go to a real store; enqueues and the write check are refused as a
/// read-only SQLite database refuses them.
fn read_only(inner: Arc<dyn Store>) -> FaultyStore {
    FaultyStore::new(inner, |method| {
        matches!(method, "enqueue_batch" | "check_writable").then(refusal)
    })
}

#[tokio::test]
async fn a_store_that_cannot_write_is_not_ready_and_writes_answer_503_with_the_cause() {
    let h = harness().await;
    let read_only: Arc<dyn Store> = Arc::new(read_only(Arc::clone(&h.store)));
    let h = Harness::with_store(h, read_only);
    let r = h.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert_eq!(r.code(), "store_unavailable");
    assert!(r.message().contains("readonly database"), "{}", r.text);
    let r = h
        .call(
            Method::POST,
            "/v1/tasks",
            Some(&h.publish),
            Some(r#"{"queue":"default","task":"t","args":{}}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert_eq!(r.code(), "store_unavailable");
    assert!(r.message().contains("readonly database"), "{}", r.text);
}
