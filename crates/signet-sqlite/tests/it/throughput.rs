//! A quick measurement to run by hand (not a timed test):
//!
//! ```text
//! cargo test --release -p signet-sqlite --test it -- --ignored --nocapture throughput
//! ```

use std::sync::Arc;
use std::time::Instant;

use signet_sqlite::SqliteConfig;
use signet_store::testkit::{claim_req, new_task, T0};
use signet_store::{LeaseToken, Store};

use crate::TempDb;

const TASKS: usize = 50_000;
const ENQUEUE_BATCH: usize = 100;
const CLAIM_BATCH: usize = 64;

/// CPU seconds this process used so far (user + system), from /proc.
/// The machine is shared, so wall-clock rates depend on the load; CPU per
/// task does not.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the ')'.
    (ticks(11) + ticks(12)) / 100.0
}

async fn measure(label: &str, config: SqliteConfig, producers: usize, consumers: usize) {
    let db = TempDb::new();
    let (store, _url) = db.open(config);
    let store = Arc::new(store);

    let started = Instant::now();
    let cpu0 = cpu_seconds();
    let per_producer = TASKS / producers;
    let handles: Vec<_> = (0..producers)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..per_producer / ENQUEUE_BATCH {
                    let batch = (0..ENQUEUE_BATCH)
                        .map(|_| {
                            let mut t = new_task("bench");
                            t.envelope.args = br#"{"to":"user@example.com","n":12345}"#.to_vec();
                            t
                        })
                        .collect();
                    store.enqueue_batch(batch, T0).await.expect("enqueue");
                }
            })
        })
        .collect();
    for h in handles {
        h.await.expect("producer");
    }
    let enq = started.elapsed();
    let enq_cpu = cpu_seconds() - cpu0;
    let total = per_producer / ENQUEUE_BATCH * ENQUEUE_BATCH * producers;

    let started = Instant::now();
    let cpu0 = cpu_seconds();
    let handles: Vec<_> = (0..consumers)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut done = 0;
                loop {
                    let rows = store
                        .claim(claim_req(&["bench"], &format!("w{w}"), CLAIM_BATCH), T0)
                        .await
                        .expect("claim");
                    if rows.is_empty() {
                        return done;
                    }
                    let items = rows.iter().map(|r| (LeaseToken::of(r), None)).collect();
                    let out = store.complete_batch(items, T0).await.expect("complete");
                    done += out.into_iter().filter(Result::is_ok).count();
                }
            })
        })
        .collect();
    let mut completed = 0;
    for h in handles {
        completed += h.await.expect("consumer");
    }
    let run = started.elapsed();
    let run_cpu = cpu_seconds() - cpu0;
    assert_eq!(completed, total);
    let stats = store.writer_stats();
    println!(
        "{label}: enqueue (batches of {ENQUEUE_BATCH}, {producers} producers): {:.0} tasks/s \
         ({:.0} tasks per CPU-second); claim {CLAIM_BATCH} + complete_batch ({consumers} consumers): \
         {:.0} tasks/s ({:.0} tasks per CPU-second); {} commits for {} operations",
        total as f64 / enq.as_secs_f64(),
        total as f64 / enq_cpu.max(0.01),
        total as f64 / run.as_secs_f64(),
        total as f64 / run_cpu.max(0.01),
        stats.commits,
        stats.operations,
    );
    store.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement to run by hand with --release --nocapture"]
async fn throughput_durable() {
    measure(
        "FULL, 1 producer, 1 consumer",
        SqliteConfig::default(),
        1,
        1,
    )
    .await;
    measure(
        "FULL, 4 producers, 4 consumers",
        SqliteConfig::default(),
        4,
        4,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement to run by hand with --release --nocapture"]
async fn throughput_normal() {
    let config = SqliteConfig {
        synchronous: signet_sqlite::Synchronous::Normal,
        ..SqliteConfig::default()
    };
    measure("NORMAL, 4 producers, 4 consumers", config, 4, 4).await;
}
