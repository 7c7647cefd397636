//! Crash safety: the worker is SIGKILLed at random moments while producers
//! keep enqueueing; after restarts and a final drain every task succeeded
//! exactly once, none is lost, none is stuck in `running`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use serde_json::json;
use signet_runtime::TaskSpec;

use crate::support::*;

const TASKS: usize = 3000;
const BATCH: usize = 50;
const KILLS: usize = 5;
/// Low on purpose: the worker stays busy with a backlog, so kills land
/// while tasks are leased rather than between them.
const CONCURRENCY: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_succeeds_exactly_once_across_sigkills() {
    let env = Env::new();
    let queue = "crash";
    let seed: u64 = rand::random();
    println!("crash test seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    // Producers: batches with idempotency keys, so a batch retried after a
    // transient error can never be enqueued twice.
    let producer = env.producer.clone();
    let producing = tokio::spawn(async move {
        let mut ids = Vec::with_capacity(TASKS);
        for start in (0..TASKS).step_by(BATCH) {
            // Rebuilt on every try: an enqueue that failed changed nothing.
            let batch = || -> Vec<TaskSpec> {
                (start..start + BATCH)
                    .map(|i| {
                        TaskSpec::new(
                            "text.stats",
                            &json!({ "text": format!("task number {i}\nline two") }),
                        )
                        .queue(queue)
                        .idempotency_key(format!("crash-{i}"))
                    })
                    .collect()
            };
            let out = loop {
                match producer.enqueue_batch(batch()).await {
                    Ok(out) => break out,
                    Err(e) if e.is_retryable() => {
                        tokio::time::sleep(Duration::from_millis(20)).await
                    }
                    Err(e) => panic!("enqueue failed: {e}"),
                }
            };
            ids.extend(out.into_iter().map(|e| e.task.id().to_owned()));
            // Pace the producers so enqueueing spans the kills.
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        ids
    });

    let mut child = env.spawn_worker(queue, CONCURRENCY);
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(100..=600))).await;
        child.kill().expect("SIGKILL the worker");
        child.wait().expect("reap the worker");
        child = env.spawn_worker(queue, CONCURRENCY);
    }
    let ids = tokio::time::timeout(Duration::from_secs(30), producing)
        .await
        .expect("producers finish")
        .expect("producer task");
    assert_eq!(ids.len(), TASKS);
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), TASKS, "every enqueue made its own task");

    // Drain with the last worker, polling the database file with a deadline.
    let deadline = Instant::now() + Duration::from_secs(30);
    let expected = vec![("succeeded".to_owned(), TASKS as i64)];
    loop {
        let now = states(&env.db_path(), queue);
        if now == expected {
            break;
        }
        assert!(Instant::now() < deadline, "not drained in time: {now:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    terminate(child, Duration::from_secs(15));

    // Exactly the enqueued ids, each succeeded, with a result.
    let c = rusqlite::Connection::open(env.db_path()).unwrap();
    let mut stmt = c
        .prepare("SELECT id, state, result IS NOT NULL FROM tasks WHERE queue = ?1")
        .unwrap();
    let rows: Vec<(String, String, bool)> = stmt
        .query_map([queue], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), TASKS);
    let stored: HashSet<&String> = rows.iter().map(|(id, _, _)| id).collect();
    assert_eq!(stored, unique, "no task lost, none invented");
    assert!(rows
        .iter()
        .all(|(_, state, has_result)| state == "succeeded" && *has_result));
    let rerun: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM tasks WHERE queue = ?1 AND attempt > 1",
            [queue],
            |r| r.get(0),
        )
        .unwrap();
    println!("{rerun} tasks ran more than once (interrupted by a kill, then rescued)");
    let store_counts = env.store.counts().await.unwrap();
    let crash = store_counts.iter().find(|q| q.queue == queue).unwrap();
    assert_eq!(
        crash.count(signet_store::TaskState::Succeeded),
        TASKS as u64
    );
    assert_eq!(crash.count(signet_store::TaskState::Running), 0);
}
