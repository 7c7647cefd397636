//! The worker on PostgreSQL (`SIGNET_TEST_DATABASE_URL`), and the URL checks.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use signet_postgres::{PostgresOptions, PostgresStore};
use signet_runtime::{Producer, TaskSpec};
use signet_sign::SigningConfig;
use signet_store::{Store, TaskState};

use crate::support::{signing_vars, spawn_worker, terminate};

fn must_not_skip() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_tasks_from_a_postgres_schema() {
    let Some(url) = std::env::var("SIGNET_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        assert!(
            !must_not_skip(),
            "SIGNET_TEST_DATABASE_URL is not set, and CI requires the PostgreSQL tests"
        );
        eprintln!("SKIPPED runs_tasks_from_a_postgres_schema: SIGNET_TEST_DATABASE_URL is not set");
        return;
    };
    let schema = format!("worker_it_{}_{}", std::process::id(), rand::random::<u32>());
    let store = PostgresStore::connect(
        &url,
        PostgresOptions {
            schema: Some(schema.clone()),
            ..PostgresOptions::default()
        },
    )
    .await
    .expect("connect to SIGNET_TEST_DATABASE_URL");
    let store = Arc::new(store);
    let signing = SigningConfig::from_vars(signing_vars()).unwrap();
    let producer = Producer::new(Arc::clone(&store) as Arc<dyn Store>, &signing).unwrap();
    let mut ids = Vec::new();
    for i in 0..20 {
        let spec = TaskSpec::new("text.stats", &json!({ "text": format!("task {i}") })).queue("pg");
        ids.push(producer.enqueue(spec).await.unwrap().task.id().to_owned());
    }

    let dir = tempfile::tempdir().unwrap();
    let child = spawn_worker(
        &url,
        &dir.path().join("outbox"),
        &[
            "--database-schema",
            &schema,
            "--queue",
            "pg",
            "--poll-ms",
            "20",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut left = ids.clone();
    while !left.is_empty() {
        let mut still = Vec::new();
        for id in left {
            let row = store.task(&id).await.unwrap().expect("the task exists");
            if !row.state.is_final() {
                still.push(id);
            }
        }
        left = still;
        assert!(
            Instant::now() < deadline,
            "{} tasks not finished in time",
            left.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    terminate(child, Duration::from_secs(15));
    for id in &ids {
        let row = store.task(id).await.unwrap().unwrap();
        assert_eq!(row.state, TaskState::Succeeded, "{id}");
        let result: serde_json::Value = serde_json::from_slice(&row.result.unwrap()).unwrap();
        assert_eq!(result["words"], 2);
    }
    store
        .danger_drop_schema()
        .await
        .expect("drop the test schema");
}

fn worker_output(args: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_signet-example-worker"))
        .args(args)
        .arg("--outbox")
        .arg(dir.path().join("outbox"))
        .env_remove("SIGNET_DATABASE_URL")
        .env_remove("SIGNET_DATABASE_SCHEMA")
        .envs(signing_vars())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unknown_schemes_are_refused_without_echoing_the_url() {
    let (ok, stderr) = worker_output(&["--database-url", "mysql://me:hunter2@db/signet"]);
    assert!(!ok);
    assert!(stderr.contains("\"mysql\""), "{stderr}");
    assert!(stderr.contains("postgres://"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn a_schema_with_sqlite_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("x.db").display());
    let (ok, stderr) = worker_output(&["--database-url", &url, "--database-schema", "s1"]);
    assert!(!ok);
    assert!(stderr.contains("--database-schema"), "{stderr}");
}

#[test]
fn an_unreachable_postgres_fails_without_the_password() {
    // Port 1 on loopback: nothing listens there.
    let (ok, stderr) = worker_output(&[
        "--database-url",
        "postgres://me:hunter2@127.0.0.1:1/signet?connect_timeout=2",
    ]);
    assert!(!ok);
    assert!(stderr.contains("PostgreSQL"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}
