//! Enqueue: what goes in comes back byte for byte; bad input, atomic
//! batches, idempotency keys and tasks scheduled for later.

use std::sync::Arc;

use signet_sign::{Algorithm, TaskEnvelope};

use super::{
    assert_conflict, assert_invalid, assert_same_signed, claim_n, claim_one, claim_req, get, ids,
    new_task, put, signed, total, T0,
};
use crate::{Store, TaskState, MAX_ARGS_BYTES, MAX_QUEUE_NAME_LEN};

/// Enqueue then read back: envelope, signature and options byte for byte.
pub(super) async fn round_trip(store: Arc<dyn Store>) {
    let s = &*store;
    // Everything optional absent.
    let plain = new_task("default");
    // Everything present, args that are not valid UTF-8, odd header text.
    let mut full = signed(new_task("q.full:1-x_y"), Algorithm::Ed25519, "ed-key-1");
    full.envelope.name = "email.send".into();
    full.envelope.args = vec![b'{', 0xff, 0x00, 0xfe, b'"', b'\\', 0x80, b'}', 0x00];
    full.envelope.headers = TaskEnvelope::normalise_headers([
        ("tenant", "acme"),
        ("x-unicode", "h\u{e9}llo \u{1f600} \"q\" \\"),
        ("x-empty", ""),
    ])
    .expect("headers");
    full.envelope.not_before_ms = Some(T0 - 5_000);
    full.envelope.expires_at_ms = Some(T0 + 3_600_000);
    full.envelope.max_attempts = 7;
    full.envelope.callback_url = Some("https://example.com/cb?a=1&b=\u{e9}".into());
    full.priority = -5;
    full.idempotency_key = Some("idem-\u{e9}-1".into());
    // Args exactly at the limit.
    let mut big = signed(new_task("big"), Algorithm::HmacSha256, "hmac-1");
    big.envelope.args = (0..MAX_ARGS_BYTES).map(|i| (i % 251) as u8).collect();

    let out = s
        .enqueue_batch(vec![plain.clone(), full.clone(), big.clone()], T0)
        .await
        .expect("enqueue_batch");
    assert_eq!(out.len(), 3, "one result per task");
    for (res, task) in out.iter().zip([&plain, &full, &big]) {
        assert!(res.created);
        assert_same_signed("enqueue result", &res.task, task);
    }
    for task in [&plain, &full, &big] {
        let row = get(s, &task.envelope.id).await;
        assert_same_signed("task()", &row, task);
        assert_eq!(row.priority, task.priority);
        assert_eq!(row.idempotency_key, task.idempotency_key);
        assert_eq!(row.state, TaskState::Available, "due task is available");
        assert_eq!(row.attempt, 0);
        assert!(row.run_at_ms <= T0, "a due task has run_at <= now");
        assert_eq!(row.lease_owner, None);
        assert_eq!(row.lease_expires_at_ms, None);
        assert_eq!(row.last_error, None);
        assert_eq!(row.dead_reason, None);
        assert_eq!(row.dead_detail, None);
        assert_eq!(row.result, None);
        assert_eq!(row.finished_at_ms, None);
    }
    assert!(s
        .task("task_0000doesnotexist")
        .await
        .expect("task")
        .is_none());

    // A claimed row carries the same envelope and signature.
    let claimed = claim_one(s, "q.full:1-x_y", "w1", T0).await;
    assert_same_signed("claimed row", &claimed, &full);
}

/// Oversize args, bad queue names, bad ids and options are `Invalid` and
/// store nothing.
pub(super) async fn invalid_input(store: Arc<dyn Store>) {
    let s = &*store;
    let mut t = new_task("default");
    t.envelope.args = vec![b'x'; MAX_ARGS_BYTES + 1];
    assert_invalid("args over the limit", s.enqueue(t, T0).await);

    let long = "q".repeat(MAX_QUEUE_NAME_LEN + 1);
    for bad in [
        "",
        long.as_str(),
        "has space",
        "caf\u{e9}",
        "a/b",
        "q\n",
        "*",
    ] {
        assert_invalid(
            &format!("queue name {bad:?}"),
            s.enqueue(new_task(bad), T0).await,
        );
    }
    let max = "q".repeat(MAX_QUEUE_NAME_LEN);
    put(s, new_task(&max)).await;

    for bad in ["job_123", "msg_", "task_a b", "123"] {
        let mut t = new_task("default");
        t.envelope.id = bad.into();
        assert_invalid(&format!("task id {bad:?}"), s.enqueue(t, T0).await);
    }
    let mut t = new_task("default");
    t.envelope.name = String::new();
    assert_invalid("empty task name", s.enqueue(t, T0).await);
    let mut t = new_task("default");
    t.envelope.max_attempts = 0;
    assert_invalid("max_attempts 0", s.enqueue(t, T0).await);
    let mut t = new_task("default");
    t.idempotency_key = Some(String::new());
    assert_invalid("empty idempotency key", s.enqueue(t, T0).await);

    assert_invalid(
        "claim without queues",
        s.claim(claim_req(&[], "w", 1), T0).await,
    );
    assert_invalid(
        "claim on a bad queue name",
        s.claim(claim_req(&["bad queue"], "w", 1), T0).await,
    );
    let mut req = claim_req(&["default"], "w", 1);
    req.lease_ms = 0;
    assert_invalid("claim with a zero lease", s.claim(req, T0).await);

    assert_eq!(total(s).await, 1, "only the valid task is stored");
    assert!(claim_n(s, &["default"], 10, T0).await.is_empty());
}

/// A batch with one bad task stores none of them.
pub(super) async fn batch_atomic(store: Arc<dyn Store>) {
    let s = &*store;
    let mut bad = new_task("default");
    bad.envelope.args = vec![0; MAX_ARGS_BYTES + 1];
    let batch = vec![new_task("default"), bad, new_task("default")];
    assert_invalid("batch with oversize args", s.enqueue_batch(batch, T0).await);
    assert_eq!(total(s).await, 0, "a refused batch stores nothing");

    // A duplicate id is found only by the store: the whole batch fails.
    let existing = put(s, new_task("default")).await;
    let mut dup = new_task("default");
    dup.envelope.id = existing.id().to_owned();
    let first = new_task("default");
    let r = s
        .enqueue_batch(vec![first.clone(), dup, new_task("default")], T0)
        .await;
    assert_conflict("batch reusing an existing task id", r);
    assert!(
        s.task(&first.envelope.id).await.expect("task").is_none(),
        "the good task before the duplicate must not be stored"
    );
    assert_eq!(total(s).await, 1);

    // Empty batch is a no-op.
    assert!(s.enqueue_batch(vec![], T0).await.expect("empty").is_empty());
}

/// An idempotency key without a fingerprint returns the first task, across
/// calls and inside a batch.
pub(super) async fn idempotency(store: Arc<dyn Store>) {
    let s = &*store;
    let mut a = new_task("default");
    a.idempotency_key = Some("order-42".into());
    let first = s.enqueue(a.clone(), T0).await.expect("enqueue");
    assert!(first.created);

    let mut b = new_task("other");
    b.idempotency_key = Some("order-42".into());
    b.envelope.args = b"{\"different\":true}".to_vec();
    let again = s.enqueue(b.clone(), T0 + 1).await.expect("enqueue again");
    assert!(!again.created, "same key: created must be false");
    assert_eq!(
        again.task.id(),
        a.envelope.id,
        "same key returns the first task"
    );
    assert_same_signed("idempotent result", &again.task, &a);
    assert!(s.task(&b.envelope.id).await.expect("task").is_none());

    // Inside one batch.
    let mut c = new_task("default");
    c.idempotency_key = Some("batch-key".into());
    let mut d = new_task("default");
    d.idempotency_key = Some("batch-key".into());
    let plain = new_task("default");
    let out = s
        .enqueue_batch(vec![c.clone(), plain, d.clone()], T0)
        .await
        .expect("batch");
    assert!(out[0].created && out[1].created);
    assert!(!out[2].created, "second use of a key in one batch");
    assert_eq!(out[2].task.id(), c.envelope.id);
    assert!(s.task(&d.envelope.id).await.expect("task").is_none());
    assert_eq!(total(s).await, 3);
}

/// A task with `not_before` in the future is not claimable until due.
pub(super) async fn scheduled(store: Arc<dyn Store>) {
    let s = &*store;
    let mut t = new_task("default");
    t.envelope.not_before_ms = Some(T0 + 10_000);
    let row = put(s, t).await;
    assert_eq!(row.state, TaskState::Scheduled);
    assert_eq!(row.run_at_ms, T0 + 10_000);
    assert!(claim_n(s, &["default"], 10, T0).await.is_empty());
    assert!(claim_n(s, &["default"], 10, T0 + 9_999).await.is_empty());
    let got = claim_n(s, &["default"], 10, T0 + 10_000).await;
    assert_eq!(ids(&got), vec![row.id().to_owned()]);
    assert_eq!(got[0].state, TaskState::Running);
    assert_eq!(got[0].attempt, 1);
}
