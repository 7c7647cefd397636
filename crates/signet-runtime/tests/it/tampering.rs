//! Verification before running: whatever is changed in the database after
//! signing is dead-lettered with `signature-invalid`, and the handler never
//! runs.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use serde_json::json;
use signet_runtime::{Producer, TaskSpec, Worker, WorkerBuilder};
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

/// Starts the worker `builder` makes, with one handler for each of `names`
/// that counts the calls of all of them.
fn start_counting(builder: WorkerBuilder, names: &[&str]) -> (Running, Arc<AtomicU32>) {
    let calls = Arc::new(AtomicU32::new(0));
    let builder = names
        .iter()
        .fold(builder, |b, name| b.register(*name, counting(&calls)));
    (Running::start(builder.build().unwrap()), calls)
}

/// Enqueues a `pay` task on `queue` without a signature, as a producer
/// without keys does.
async fn enqueue_unsigned(db: &Db, queue: &str) -> String {
    Producer::with_ring(db.store.clone(), Arc::new(KeyRing::empty()), false)
        .unwrap()
        .enqueue(TaskSpec::new("pay", &json!({})).queue(queue))
        .await
        .unwrap()
        .task
        .id()
        .to_owned()
}

/// A worker builder on `queue` polling every 5 ms, its signing not set yet.
fn keyless_worker(db: &Db, queue: &str) -> WorkerBuilder {
    Worker::builder(db.store.clone())
        .queues([queue])
        .poll_interval(std::time::Duration::from_millis(5))
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
    let (mut running, calls) = start_counting(worker(&db, &ring, q), &["pay", "refund"]);
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
    let (mut running, calls) = start_counting(worker(&db, &ring, q), &["pay"]);
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
    let unsigned = enqueue_unsigned(&db, q).await;
    let by_old = enqueue(&db, &old, q, "pay").await;
    let by_new = enqueue(&db, &current, q, "pay").await;
    // The worker only knows the new key: the old one was removed.
    let (mut running, calls) = start_counting(worker(&db, &current, q), &["pay"]);
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
    let id = enqueue_unsigned(&db, q).await;
    let builder = keyless_worker(&db, q).key_ring(&KeyRing::empty(), false);
    let (mut running, _calls) = start_counting(builder, &["pay"]);
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
    let builder = keyless_worker(&db, q).signing(&config);
    let (mut running, calls) = start_counting(builder, &["pay"]);
    assert_eq!(
        running.next_for(&id).await.kind,
        signet_runtime::WorkerEventKind::Succeeded
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    running.stop().await;
}
