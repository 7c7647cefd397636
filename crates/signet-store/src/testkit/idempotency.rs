//! Idempotency keys: scoped per caller and kind, bound to the request's
//! fingerprint (`crate::idempotency`).

use std::sync::Arc;

use super::{get, new_message, new_task, put, total, T0};
use crate::{
    Fingerprint, IdempotencyConflict, IdempotencyScope, NewTask, Store, StoreError, MESSAGE_QUEUE,
};

/// A task on `queue` with key `key` in `scope`, fingerprinted by its args
/// and priority (as a producer would).
fn keyed(mut task: NewTask, key: &str, scope: IdempotencyScope) -> NewTask {
    task.idempotency_key = Some(key.to_owned());
    task.idempotency_scope = scope;
    task.fingerprint = Fingerprint::new()
        .field("args", &task.envelope.args)
        .field("priority", task.priority.to_string());
    task
}

fn api_key(id: &str) -> IdempotencyScope {
    IdempotencyScope::ApiKey(id.to_owned())
}

fn assert_idempotency_conflict<T: std::fmt::Debug>(
    what: &str,
    r: Result<T, StoreError>,
    key: &str,
    fields: &[&str],
) {
    match r {
        Err(StoreError::IdempotencyConflict(IdempotencyConflict { key: k, fields: f })) => {
            assert_eq!(k, key, "{what}: the conflict names the key");
            assert_eq!(f, fields, "{what}: the conflict names the differing fields");
        }
        other => panic!("{what}: expected IdempotencyConflict, got {other:?}"),
    }
}

/// The same key in two scopes makes two tasks; neither scope sees the other's.
pub(super) async fn idempotency_scopes(store: Arc<dyn Store>) {
    let s = &*store;
    let a = keyed(new_task("default"), "order-1", api_key("key_aaaa"));
    let b = keyed(new_task("default"), "order-1", api_key("key_bbbb"));
    let local = keyed(new_task("default"), "order-1", IdempotencyScope::Local);
    put(s, a.clone()).await;
    put(s, b.clone()).await;
    put(s, local.clone()).await;
    assert_eq!(total(s).await, 3, "one task per scope");
    // Each scope gets back its own.
    for task in [&a, &b, &local] {
        let mut again = task.clone();
        again.envelope.id = crate::TaskId::generate().to_string();
        let out = s.enqueue(again, T0 + 1).await.expect("enqueue again");
        assert!(!out.created, "a retry in the same scope creates nothing");
        assert_eq!(
            out.task.id(),
            task.envelope.id,
            "scope {}",
            task.idempotency_scope
        );
    }
    assert_eq!(total(s).await, 3);
}

/// The same key for a task and a message makes two rows: a task request
/// never gets a message back, nor the other way round.
pub(super) async fn idempotency_kinds(store: Arc<dyn Store>) {
    let s = &*store;
    let scope = api_key("key_aaaa");
    let message = keyed(new_message(), "shared", scope.clone());
    let task = keyed(new_task("default"), "shared", scope.clone());
    put(s, message.clone()).await;
    let out = s.enqueue(task.clone(), T0).await.expect("task");
    assert!(out.created, "a task with a message's key is a new task");
    assert_eq!(out.task.queue(), "default");
    // The same message request again (same args, so the same fingerprint).
    let again = keyed(new_message(), "shared", scope);
    let out = s.enqueue(again, T0 + 1).await.expect("message again");
    assert!(!out.created);
    assert_eq!(out.task.id(), message.envelope.id);
    assert_eq!(out.task.queue(), MESSAGE_QUEUE);
}

/// The same key with the same request returns the original, across calls
/// and inside a batch.
pub(super) async fn idempotency_same_request(store: Arc<dyn Store>) {
    let s = &*store;
    let scope = api_key("key_aaaa");
    let first = keyed(new_task("default"), "k1", scope.clone());
    put(s, first.clone()).await;
    // Another id and creation time (server-assigned): still the same request.
    let mut retry = keyed(new_task("default"), "k1", scope.clone());
    retry.envelope.created_at_ms = T0 + 500;
    let out = s.enqueue(retry.clone(), T0 + 500).await.expect("retry");
    assert!(!out.created);
    assert_eq!(out.task.id(), first.envelope.id);
    assert!(s.task(&retry.envelope.id).await.expect("task").is_none());
    // Twice in one batch: the second is the first.
    let c = keyed(new_task("default"), "k2", scope.clone());
    let d = keyed(new_task("default"), "k2", scope.clone());
    let out = s
        .enqueue_batch(vec![c.clone(), d.clone()], T0)
        .await
        .expect("batch");
    assert!(out[0].created && !out[1].created);
    assert_eq!(out[1].task.id(), c.envelope.id);
    assert_eq!(total(s).await, 2);
    // Signet's own keys name one event: the first enqueue wins whatever
    // the request.
    let sys = keyed(
        new_task("default"),
        "schedule:sch_1:1",
        IdempotencyScope::System,
    );
    put(s, sys.clone()).await;
    let mut later = keyed(
        new_task("default"),
        "schedule:sch_1:1",
        IdempotencyScope::System,
    );
    later.envelope.args = b"{\"edited\":true}".to_vec();
    later = keyed(later, "schedule:sch_1:1", IdempotencyScope::System);
    let out = s.enqueue(later, T0 + 1).await.expect("system retry");
    assert!(!out.created);
    assert_eq!(out.task.id(), sys.envelope.id);
}

/// The same key with a different request is a conflict naming the key and
/// the fields that differ; nothing is stored, not even the rest of a batch.
pub(super) async fn idempotency_conflict(store: Arc<dyn Store>) {
    let s = &*store;
    let scope = api_key("key_aaaa");
    let first = keyed(new_task("default"), "abc", scope.clone());
    put(s, first.clone()).await;

    let mut other = new_task("default");
    other.envelope.args = b"{\"n\":2}".to_vec();
    other.priority = 5;
    let other = keyed(other, "abc", scope.clone());
    assert_idempotency_conflict(
        "different args and priority",
        s.enqueue(other.clone(), T0 + 1).await,
        "abc",
        &["args", "priority"],
    );
    assert!(s.task(&other.envelope.id).await.expect("task").is_none());

    // In a batch, after a new task: the batch stores nothing.
    let fresh = new_task("default");
    assert_idempotency_conflict(
        "conflict in a batch",
        s.enqueue_batch(vec![fresh.clone(), other.clone()], T0 + 2)
            .await,
        "abc",
        &["args", "priority"],
    );
    assert!(s.task(&fresh.envelope.id).await.expect("task").is_none());
    // Twice in the same batch, differently.
    let mut x = new_task("default");
    x.envelope.args = b"[1]".to_vec();
    let mut y = new_task("default");
    y.envelope.args = b"[2]".to_vec();
    assert_idempotency_conflict(
        "two requests under one key in a batch",
        s.enqueue_batch(
            vec![keyed(x.clone(), "xy", scope.clone()), keyed(y, "xy", scope)],
            T0 + 3,
        )
        .await,
        "xy",
        &["args"],
    );
    assert!(s.task(&x.envelope.id).await.expect("task").is_none());
    assert_eq!(total(s).await, 1);
    // The first task is untouched.
    assert_eq!(get(s, &first.envelope.id).await.envelope, first.envelope);
}
