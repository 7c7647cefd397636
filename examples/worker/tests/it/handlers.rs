//! The two handlers, end to end through the binary.

use std::time::{Duration, Instant};

use serde_json::json;
use signet_runtime::TaskSpec;
use signet_store::{DeadReason, TaskState};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_stats_and_files_write_run_and_traversal_is_dead_lettered() {
    let env = Env::new();
    let q = "handlers";
    let p = &env.producer;
    let enqueue = |spec: TaskSpec| async move {
        p.enqueue(spec.queue(q)).await.unwrap().task.id().to_owned()
    };
    let stats = enqueue(TaskSpec::new(
        "text.stats",
        &json!({ "text": "hello signed\nworld" }),
    ))
    .await;
    let write = enqueue(TaskSpec::new(
        "files.write",
        &json!({ "path": "reports/today.txt", "content": "all good" }),
    ))
    .await;
    let escape = enqueue(TaskSpec::new(
        "files.write",
        &json!({ "path": "../outside.txt", "content": "nope" }),
    ))
    .await;
    let bad_args = enqueue(TaskSpec::new("text.stats", &json!({ "txt": "typo" }))).await;

    let child = env.spawn_worker(q, 8);
    let deadline = Instant::now() + Duration::from_secs(20);
    let ids = [&stats, &write, &escape, &bad_args];
    loop {
        let mut done = true;
        for id in ids {
            let row = env.store.task(id).await.unwrap().unwrap();
            done &= row.state.is_final();
        }
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "tasks not finished in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    terminate(child, Duration::from_secs(15));

    let row = env.store.task(&stats).await.unwrap().unwrap();
    assert_eq!(row.state, TaskState::Succeeded);
    let result: serde_json::Value = serde_json::from_slice(&row.result.unwrap()).unwrap();
    assert_eq!(result["words"], 3);
    assert_eq!(result["lines"], 2);
    assert_eq!(result["bytes"], 18);
    assert_eq!(result["sha256"].as_str().unwrap().len(), 64);

    let row = env.store.task(&write).await.unwrap().unwrap();
    assert_eq!(row.state, TaskState::Succeeded);
    let written = std::fs::read_to_string(env.outbox().join("reports/today.txt")).unwrap();
    assert_eq!(written, "all good");

    let row = env.store.task(&escape).await.unwrap().unwrap();
    assert_eq!(row.state, TaskState::Dead);
    assert_eq!(row.dead_reason, Some(DeadReason::PayloadInvalid));
    assert!(row.dead_detail.unwrap().contains(".."));
    assert!(!env.dir.path().join("outside.txt").exists());

    let row = env.store.task(&bad_args).await.unwrap().unwrap();
    assert_eq!(row.dead_reason, Some(DeadReason::PayloadInvalid));
    assert!(row.dead_detail.unwrap().contains("txt"));
}

#[test]
fn a_worker_without_a_place_for_keys_stops_at_start() {
    // An in-memory database has no key file beside it, like PostgreSQL.
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_signet-example-worker"))
        .arg("--database-url")
        .arg("sqlite::memory:")
        .arg("--outbox")
        .arg(dir.path().join("outbox"))
        .env_remove("SIGNET_SIGNING_KEYS")
        .env_remove("SIGNET_SIGNING_PRIVATE_KEYS")
        .env_remove("SIGNET_SIGNING_PUBLIC_KEYS")
        .env_remove("SIGNET_DEV")
        .env("SIGNET_SIGNING_REQUIRED", "true")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no signing keys") && stderr.contains("SIGNET_KEYS_FILE"),
        "{stderr}"
    );
}
