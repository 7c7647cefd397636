//! A worker holding only Ed25519 public keys runs the whole flow, retries
//! included: delivery state is not signed, so nothing needs re-signing.

use serde_json::json;
use signet_runtime::{HandlerError, TaskContext, TaskSpec, WorkerEventKind};
use signet_store::TaskState;

use crate::support::*;

#[tokio::test]
async fn a_public_key_worker_verifies_runs_and_retries() {
    let db = Db::new();
    let signer = ed25519_ring(9);
    let public = signer.verify_only();
    assert!(public.active().is_none(), "the worker's ring cannot sign");
    let q = "verify-only";
    let w = worker(&db, &public, q)
        .concurrency(64)
        .register(
            "flaky",
            |ctx: TaskContext, _a: serde_json::Value| async move {
                if ctx.attempt() < 3 {
                    Err(HandlerError::retry(format!(
                        "attempt {} failed",
                        ctx.attempt()
                    )))
                } else {
                    Ok(Some(json!({ "attempt": ctx.attempt() })))
                }
            },
        )
        .register("ok", |_ctx, _a: serde_json::Value| async { Ok(None) })
        .build()
        .unwrap();
    let mut running = Running::start(w);
    let p = producer(&db, &signer);
    let flaky = enqueue_id(
        &p,
        TaskSpec::new("flaky", &json!({})).queue(q).max_attempts(5),
    )
    .await;
    let events = running.until_final(&flaky).await;
    let kinds: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.attempt,
                matches!(e.kind, WorkerEventKind::Retrying { .. }),
            )
        })
        .collect();
    assert_eq!(kinds, [(1, true), (2, true), (3, false)]);
    assert_eq!(events[2].kind, WorkerEventKind::Succeeded);
    assert_eq!(db.task(&flaky).await.state, TaskState::Succeeded);

    // A batch big enough to go through Ed25519 batch verification.
    let specs = (0..200)
        .map(|i| TaskSpec::new("ok", &json!({ "i": i })).queue(q))
        .collect();
    let ids: Vec<String> = p
        .enqueue_batch(specs)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.task.id().to_owned())
        .collect();
    // Tamper with one of them: batch verification must name exactly that one.
    db.raw()
        .execute(
            "UPDATE tasks SET args = CAST('{\"i\":-1}' AS BLOB) WHERE id = ?1",
            [&ids[77]],
        )
        .unwrap();
    let mut ok = 0;
    let mut bad = Vec::new();
    tokio::time::timeout(WAIT, async {
        while ok + bad.len() < ids.len() {
            let e = running.events.recv().await.unwrap();
            match e.kind {
                WorkerEventKind::Succeeded => ok += 1,
                WorkerEventKind::Dead { detail, .. } => bad.push((e.task_id, detail)),
                other => panic!("unexpected {other:?}"),
            }
        }
    })
    .await
    .expect("batch finishes");
    assert_eq!(ok, 199);
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].0, ids[77]);
    assert!(bad[0].1.starts_with("mismatch"), "{}", bad[0].1);
    running.stop().await;
}
