//! Verification before running: whatever is changed in the database after
//! signing is dead-lettered with `signature-invalid`, and the handler never
//! runs.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use serde_json::json;
use signet_runtime::{Producer, TaskSpec};
use signet_sign::KeyRing;
use signet_store::{DeadReason, TaskState};

use crate::support::*;

async fn enqueue(db: &Db, ring: &KeyRing, queue: &str, name: &str) -> String {
    producer(db, ring)
        .enqueue(
            TaskSpec::new(name, &json!({ "amount": 10 }))
                .queue(queue)
                .header("tenant", "acme"),
        )
        .await
        .unwrap()
        .task
        .id()
        .to_owned()
}

fn counting(
    calls: &Arc<AtomicU32>,
) -> impl Fn(
    signet_runtime::TaskContext,
    serde_json::Value,
) -> std::future::Ready<signet_runtime::HandlerResult>
       + Send
       + Sync
       + 'static {
    let calls = Arc::clone(calls);
    move |_ctx, _args| {
        calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(None))
    }
}

#[tokio::test]
async fn tampered_envelopes_are_dead_lettered_as_mismatch() {
    let db = Db::new();
    let ring = hmac_ring();
    let q = "tamper";
    let args = enqueue(&db, &ring, q, "pay").await;
    let name = enqueue(&db, &ring, q, "pay").await;
    let headers = enqueue(&db, &ring, q, "pay").await;
    let queue = enqueue(&db, &ring, "elsewhere", "pay").await;
    let untouched = enqueue(&db, &ring, q, "pay").await;
    {
        let c = db.raw();
        let set = |sql: &str, id: &str| {
            assert_eq!(c.execute(sql, [id]).unwrap(), 1, "{sql}");
        };
        set(
            r#"UPDATE tasks SET args = CAST('{"amount":10000}' AS BLOB) WHERE id = ?1"#,
            &args,
        );
        set("UPDATE tasks SET name = 'refund' WHERE id = ?1", &name);
        set(
            r#"UPDATE tasks SET headers = '{"tenant":"evil"}' WHERE id = ?1"#,
            &headers,
        );
        set("UPDATE tasks SET queue = 'tamper' WHERE id = ?1", &queue);
    }
    let calls = Arc::new(AtomicU32::new(0));
    let w = worker(&db, &ring, q)
        .register("pay", counting(&calls))
        .register("refund", counting(&calls))
        .build()
        .unwrap();
    let mut running = Running::start(w);
    for id in [&args, &name, &headers, &queue] {
        let e = running.next_for(id).await;
        let (reason, detail) = dead(&e);
        assert_eq!(reason, DeadReason::SignatureInvalid, "{id}");
        assert!(detail.starts_with("mismatch"), "{detail}");
        let row = db.task(id).await;
        assert_eq!(row.state, TaskState::Dead);
        assert_eq!(row.dead_reason, Some(DeadReason::SignatureInvalid));
        assert!(row.dead_detail.unwrap().starts_with("mismatch"));
    }
    assert_eq!(
        running.next_for(&untouched).await.kind,
        signet_runtime::WorkerEventKind::Succeeded
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "only the untouched task ran"
    );
    running.stop().await;
}

#[tokio::test]
async fn a_stripped_or_forged_signature_is_refused() {
    let db = Db::new();
    let ring = hmac_ring();
    let q = "tamper-sig";
    let stripped = enqueue(&db, &ring, q, "pay").await;
    let wrong_alg = enqueue(&db, &ring, q, "pay").await;
    let short = enqueue(&db, &ring, q, "pay").await;
    {
        let c = db.raw();
        c.execute(
            "UPDATE tasks SET sig_alg = NULL, sig_key_id = NULL, sig = NULL WHERE id = ?1",
            [&stripped],
        )
        .unwrap();
        c.execute(
            "UPDATE tasks SET sig_alg = 'ed25519' WHERE id = ?1",
            [&wrong_alg],
        )
        .unwrap();
        c.execute("UPDATE tasks SET sig = X'0102' WHERE id = ?1", [&short])
            .unwrap();
    }
    let calls = Arc::new(AtomicU32::new(0));
    let w = worker(&db, &ring, q)
        .register("pay", counting(&calls))
        .build()
        .unwrap();
    let mut running = Running::start(w);
    let e = running.next_for(&stripped).await;
    assert_eq!(dead(&e).0, DeadReason::SignatureInvalid);
    assert!(dead(&e).1.starts_with("missing"), "{}", dead(&e).1);
    let e = running.next_for(&wrong_alg).await;
    assert!(
        dead(&e).1.starts_with("algorithm-mismatch"),
        "{}",
        dead(&e).1
    );
    let e = running.next_for(&short).await;
    let detail = dead(&e).1;
    assert!(
        detail.starts_with("malformed") || detail.starts_with("mismatch"),
        "{detail}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    running.stop().await;
}

#[tokio::test]
async fn unsigned_tasks_are_missing_and_removed_keys_unknown() {
    let db = Db::new();
    let old = KeyRing::single(hmac_key("old", 1));
    let current = KeyRing::single(hmac_key("new", 2));
    let q = "tamper-keys";
    let unsigned = Producer::with_ring(db.store.clone(), Arc::new(KeyRing::empty()), false)
        .unwrap()
        .enqueue(TaskSpec::new("pay", &json!({})).queue(q))
        .await
        .unwrap()
        .task
        .id()
        .to_owned();
    let by_old = enqueue(&db, &old, q, "pay").await;
    let by_new = enqueue(&db, &current, q, "pay").await;
    let calls = Arc::new(AtomicU32::new(0));
    // The worker only knows the new key: the old one was removed.
    let w = worker(&db, &current, q)
        .register("pay", counting(&calls))
        .build()
        .unwrap();
    let mut running = Running::start(w);
    let e = running.next_for(&unsigned).await;
    assert_eq!(dead(&e).0, DeadReason::SignatureInvalid);
    assert!(dead(&e).1.starts_with("missing"), "{}", dead(&e).1);
    let e = running.next_for(&by_old).await;
    assert_eq!(dead(&e).0, DeadReason::SignatureInvalid);
    assert!(dead(&e).1.starts_with("unknown-key"), "{}", dead(&e).1);
    assert_eq!(
        running.next_for(&by_new).await.kind,
        signet_runtime::WorkerEventKind::Succeeded
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    running.stop().await;
}

#[tokio::test]
async fn unsigned_tasks_run_when_signing_is_not_required() {
    let db = Db::new();
    let q = "unsigned-ok";
    let id = Producer::with_ring(db.store.clone(), Arc::new(KeyRing::empty()), false)
        .unwrap()
        .enqueue(TaskSpec::new("pay", &json!({})).queue(q))
        .await
        .unwrap()
        .task
        .id()
        .to_owned();
    let calls = Arc::new(AtomicU32::new(0));
    let w = signet_runtime::Worker::builder(db.store.clone())
        .key_ring(&KeyRing::empty(), false)
        .queues([q])
        .poll_interval(std::time::Duration::from_millis(5))
        .register("pay", counting(&calls))
        .build()
        .unwrap();
    let mut running = Running::start(w);
    assert_eq!(
        running.next_for(&id).await.kind,
        signet_runtime::WorkerEventKind::Succeeded
    );
    running.stop().await;
}

#[tokio::test]
async fn dev_mode_runs_tampered_tasks_without_verifying() {
    let db = Db::new();
    let ring = hmac_ring();
    let q = "dev-mode";
    let id = enqueue(&db, &ring, q, "pay").await;
    db.raw()
        .execute(
            "UPDATE tasks SET name = 'pay', args = CAST('{}' AS BLOB) WHERE id = ?1",
            [&id],
        )
        .unwrap();
    let config = signet_sign::SigningConfig {
        ring: KeyRing::empty(),
        required: false,
        dev: true,
        warnings: Vec::new(),
    };
    let calls = Arc::new(AtomicU32::new(0));
    let w = signet_runtime::Worker::builder(db.store.clone())
        .signing(&config)
        .queues([q])
        .poll_interval(std::time::Duration::from_millis(5))
        .register("pay", counting(&calls))
        .build()
        .unwrap();
    let mut running = Running::start(w);
    assert_eq!(
        running.next_for(&id).await.kind,
        signet_runtime::WorkerEventKind::Succeeded
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    running.stop().await;
}
