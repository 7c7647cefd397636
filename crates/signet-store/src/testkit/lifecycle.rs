//! A store's life: it answers pings, and after `close` every call is
//! `Closed`.

use std::sync::Arc;

use super::{claim_req, new_task, put, T0};
use crate::{Store, StoreError};

/// Ping answers; after close every call is `Closed`.
pub(super) async fn close(store: Arc<dyn Store>) {
    let s = &*store;
    s.ping().await.expect("ping");
    let t = put(s, new_task("default")).await;
    s.close().await.expect("close");
    s.close().await.expect("close twice");
    let closed = |what: &str, r: Result<(), StoreError>| match r {
        Err(StoreError::Closed) => {}
        other => panic!("{what} after close: expected Closed, got {other:?}"),
    };
    closed("ping", s.ping().await);
    closed(
        "enqueue",
        s.enqueue(new_task("default"), T0).await.map(|_| ()),
    );
    closed("task", s.task(t.id()).await.map(|_| ()));
    closed(
        "claim",
        s.claim(claim_req(&["default"], "w", 1), T0)
            .await
            .map(|_| ()),
    );
    closed("counts", s.counts().await.map(|_| ()));
}

/// `check_writable` passes on a writable store, repeatably, and leaves no
/// row behind.
pub(super) async fn check_writable(store: Arc<dyn Store>) {
    store.check_writable(T0).await.expect("check_writable");
    store
        .check_writable(T0 + 1)
        .await
        .expect("check_writable twice");
    assert_eq!(
        store.leader("signet:write-check").await.expect("leader"),
        None,
        "the write check leaves no lease row behind"
    );
    store.close().await.expect("close");
    assert!(
        matches!(
            store.check_writable(T0 + 2).await,
            Err(crate::StoreError::Closed)
        ),
        "a closed store is not writable"
    );
}
