//! `signet bench queue`: the task queue end to end, durable.
//!
//! Producers sign and enqueue tasks (in batches, as a bulk producer would)
//! while one worker claims, verifies, runs a trivial handler and
//! acknowledges them, all against a SQLite store with `synchronous=FULL`
//! (default: a fresh file), or a PostgreSQL store (`--database-url
//! postgres://…`: a fresh schema, dropped after the run).
//! Reported: enqueue rate, end-to-end rate (tasks / wall time from the first
//! enqueue to the last acknowledgement), and the enqueue→start latency each
//! handler measures from a timestamp the producer put in the args.
//!
//! The last line printed is one JSON object, for scripts.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use serde_json::json;
use signet_runtime::{
    HandlerResult, Producer, Shutdown, TaskContext, TaskSpec, Worker, WorkerEventKind,
    MAX_BATCH_TASKS,
};
use signet_sign::{Algorithm, Ed25519SecretKey, HmacSecret, Key, KeyId, KeyMaterial, KeyRing};
use signet_sqlite::{SqliteConfig, WriterStats};
use signet_store::{Store, TaskState};
use tokio::sync::broadcast::error::RecvError;

use crate::commands::finish;
use crate::commands::keys::parse_algorithm;
use crate::store_url::{backend, open_postgres, open_sqlite, postgres_options, redact, Backend};

/// Default number of tasks.
pub(crate) const DEFAULT_TASKS: usize = 100_000;
/// Default worker concurrency.
pub(crate) const DEFAULT_CONCURRENCY: usize = 2000;
/// Default number of concurrent producers.
pub(crate) const DEFAULT_PRODUCERS: usize = 1;
/// Default tasks per enqueue call.
pub(crate) const DEFAULT_BATCH: usize = 500;
/// Give up when no task finished for this long.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Arguments of `signet bench queue`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Tasks to run.
    #[arg(long, default_value_t = DEFAULT_TASKS, value_parser = at_least_one)]
    tasks: usize,
    /// Signing algorithm: hmac-sha256 or ed25519.
    #[arg(long, value_parser = parse_algorithm, default_value = "hmac-sha256")]
    algorithm: Algorithm,
    /// Store to use (default: a fresh SQLite file in a temporary directory,
    /// deleted after). With postgres://…, the run uses a fresh schema of
    /// that database and drops it after.
    #[arg(long)]
    database_url: Option<String>,
    /// Tasks the worker runs at once.
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY, value_parser = at_least_one)]
    concurrency: usize,
    /// Concurrent producers.
    #[arg(long, default_value_t = DEFAULT_PRODUCERS, value_parser = at_least_one)]
    producers: usize,
    /// Tasks per enqueue call (1 = one call per task). Default: 500, or
    /// 5 ms worth of tasks with --rate.
    #[arg(long, value_parser = at_least_one)]
    batch: Option<usize>,
    /// Enqueue at this many tasks per second in total instead of as fast as
    /// possible: latency at a load the queue sustains, rather than the
    /// backlog of a flood.
    #[arg(long, value_parser = at_least_one)]
    rate: Option<usize>,
}

impl Args {
    /// Tasks per enqueue call.
    fn batch(&self) -> usize {
        batch_size(self.batch, self.rate, self.producers, DEFAULT_BATCH)
    }
}

/// Items per call of a bench's producers: `given`, or with a `rate` 5 ms
/// worth per producer (so pacing stays smooth, at most a full batch), or
/// `default` in a flood.
pub(crate) fn batch_size(
    given: Option<usize>,
    rate: Option<usize>,
    producers: usize,
    default: usize,
) -> usize {
    match (given, rate) {
        (Some(b), _) => b,
        (None, Some(rate)) => (rate / producers.max(1) / 200).clamp(1, MAX_BATCH_TASKS),
        (None, None) => default,
    }
}

/// A count of at least 1.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{text:?} is not a whole number of at least 1")),
    }
}

/// The handler's args: when the producer built the task, unix microseconds.
#[derive(serde::Serialize, serde::Deserialize)]
struct BenchArgs {
    t: i64,
}

/// What one run measured.
#[derive(Debug)]
struct Figures {
    tasks: usize,
    enqueue: Duration,
    e2e: Duration,
    /// enqueue→start latencies, microseconds, sorted.
    latencies_us: Vec<i64>,
}

impl Figures {
    fn enqueue_per_s(&self) -> f64 {
        self.tasks as f64 / self.enqueue.as_secs_f64().max(1e-9)
    }

    fn e2e_per_s(&self) -> f64 {
        self.tasks as f64 / self.e2e.as_secs_f64().max(1e-9)
    }

    /// The `q` quantile in milliseconds (nearest rank).
    fn quantile_ms(&self, q: f64) -> f64 {
        quantile_ms(&self.latencies_us, q)
    }
}

/// The `q` quantile of sorted microsecond latencies, in milliseconds
/// (nearest rank); 0 when there are none.
pub(crate) fn quantile_ms(sorted_us: &[i64], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let n = sorted_us.len();
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    sorted_us[rank - 1] as f64 / 1000.0
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

pub(crate) fn run(args: Args) -> ExitCode {
    finish("bench queue", bench(args))
}

fn bench(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(bench_async(args))
}

/// A fresh key ring with one signing key of `algorithm`.
pub(crate) fn bench_ring(algorithm: Algorithm) -> anyhow::Result<KeyRing> {
    let material = match algorithm {
        Algorithm::HmacSha256 => KeyMaterial::Hmac(HmacSecret::generate(32)),
        Algorithm::Ed25519 => KeyMaterial::Ed25519Private(Ed25519SecretKey::generate()),
    };
    let id = KeyId::new("bench").map_err(|e| anyhow!("{e}"))?;
    Ok(KeyRing::single(Key::new(id, material)))
}

async fn bench_async(args: Args) -> anyhow::Result<()> {
    // Keep the temporary directory alive until the end of the run.
    let (_tmp, url) = bench_url(args.database_url.as_deref())?;
    let opened = BenchStore::open(&url).await?;
    let store: Arc<dyn Store> = opened.store();
    // A queue of its own, so an existing database's tasks do not count.
    let queue = format!("bench-{:08x}", rand::random::<u32>());
    let ring = bench_ring(args.algorithm)?;

    println!(
        "signet bench queue: {} tasks, {} signatures, store {} ({})",
        args.tasks,
        args.algorithm,
        redact(&url),
        opened.describe()
    );
    let batch = args.batch();
    let pace = pace(args.rate, "tasks");
    println!(
        "  {} producer(s) enqueueing batches of {batch} {pace}, one worker with concurrency {}",
        args.producers, args.concurrency
    );

    let latencies = Arc::new(Mutex::new(Vec::<i64>::with_capacity(args.tasks)));
    let recorder = Arc::clone(&latencies);
    let worker = Worker::builder(Arc::clone(&store))
        .key_ring(&ring, true)
        .queues([queue.clone()])
        .concurrency(args.concurrency)
        .poll_interval(Duration::from_millis(5))
        .register("bench.noop", move |_ctx: TaskContext, a: BenchArgs| {
            let latency = now_us().saturating_sub(a.t);
            if let Ok(mut v) = recorder.lock() {
                v.push(latency);
            }
            async { HandlerResult::Ok(None) }
        })
        .build()
        .map_err(|e| anyhow!("{e}"))?;
    let mut events = worker.events();
    let shutdown = Shutdown::new();
    let worker_task = tokio::spawn(worker.run(shutdown.signal()));

    let producer = Producer::with_ring(Arc::clone(&store), Arc::new(ring.duplicate()), true)
        .map_err(|e| anyhow!("{e}"))?;

    let started = Instant::now();
    let mut producers = Vec::with_capacity(args.producers);
    for p in 0..args.producers {
        let share = args.tasks / args.producers + usize::from(p < args.tasks % args.producers);
        let producer = producer.clone();
        let queue = queue.clone();
        // Seconds per task of this producer, when paced.
        let interval = args.rate.map(|rate| args.producers as f64 / rate as f64);
        producers.push(tokio::spawn(async move {
            let begun = tokio::time::Instant::now();
            let mut left = share;
            while left > 0 {
                if let Some(interval) = interval {
                    let sent = (share - left) as f64;
                    tokio::time::sleep_until(begun + Duration::from_secs_f64(sent * interval))
                        .await;
                }
                let n = left.min(batch);
                let specs: Vec<TaskSpec> = (0..n)
                    .map(|_| {
                        TaskSpec::new("bench.noop", &BenchArgs { t: now_us() })
                            .queue(queue.clone())
                            .max_attempts(1)
                    })
                    .collect();
                producer
                    .enqueue_batch(specs)
                    .await
                    .map_err(|e| anyhow!("enqueue failed: {e}"))?;
                left -= n;
            }
            anyhow::Ok(())
        }));
    }

    // Count outcomes while the producers run.
    let mut finished = 0usize;
    let mut failed = 0usize;
    let mut enqueue_done: Option<Duration> = None;
    let mut pending_producers = producers;
    let outcome: anyhow::Result<()> = loop {
        if enqueue_done.is_none() && pending_producers.iter().all(|h| h.is_finished()) {
            for h in pending_producers.drain(..) {
                if let Err(e) = h
                    .await
                    .map_err(|e| anyhow!("producer task: {e}"))
                    .and_then(|r| r)
                {
                    shutdown.trigger();
                    return Err(e);
                }
            }
            enqueue_done = Some(started.elapsed());
        }
        if finished >= args.tasks {
            break Ok(());
        }
        let next = tokio::time::timeout(
            if enqueue_done.is_some() {
                STALL_TIMEOUT
            } else {
                Duration::from_millis(20)
            },
            events.recv(),
        )
        .await;
        match next {
            Ok(Ok(event)) => match event.kind {
                WorkerEventKind::Succeeded => finished += 1,
                WorkerEventKind::Retrying { .. } | WorkerEventKind::Released => {}
                _ => {
                    finished += 1;
                    failed += 1;
                }
            },
            // Missed events are outcomes too; the store's counts check them below.
            Ok(Err(RecvError::Lagged(n))) => finished += usize::try_from(n).unwrap_or(usize::MAX),
            Ok(Err(RecvError::Closed)) => break Err(anyhow!("the worker stopped early")),
            Err(_) if enqueue_done.is_some() => {
                break Err(anyhow!(
                    "no task finished for {} s ({finished} of {} done); the worker is stuck",
                    STALL_TIMEOUT.as_secs(),
                    args.tasks
                ))
            }
            Err(_) => {}
        }
    };
    let e2e = started.elapsed();
    shutdown.trigger();
    worker_task
        .await
        .map_err(|e| anyhow!("worker task: {e}"))?
        .map_err(|e| anyhow!("worker: {e}"))?;
    outcome?;
    let enqueue = enqueue_done.unwrap_or(e2e);

    // Check against the store: every task succeeded, exactly once.
    let succeeded = store
        .counts()
        .await?
        .iter()
        .find(|q| q.queue == queue)
        .map_or(0, |q| q.count(TaskState::Succeeded));
    if failed > 0 || succeeded != args.tasks as u64 {
        bail!(
            "{succeeded} of {} tasks succeeded ({failed} did not); the figures would be wrong",
            args.tasks
        );
    }
    let stats = opened.stats(e2e, WriterStats::default());
    let cpu = process_cpu_secs();
    let threads = thread_times();
    opened.finish().await;

    let mut latencies_us = std::mem::take(
        &mut *latencies
            .lock()
            .map_err(|_| anyhow!("a handler panicked while recording"))?,
    );
    latencies_us.sort_unstable();
    let figures = Figures {
        tasks: args.tasks,
        enqueue,
        e2e,
        latencies_us,
    };
    println!("  {stats}");
    if let Some(cpu) = cpu {
        println!(
            "  process CPU: {cpu:.2} s over {:.2} s wall ({:.0}% of one core)",
            figures.e2e.as_secs_f64(),
            100.0 * cpu / figures.e2e.as_secs_f64().max(1e-9)
        );
    }
    for t in threads.iter().take(3) {
        println!(
            "  thread {:<16} on CPU {:.2} s, waiting for a CPU {:.2} s (of {:.2} s wall)",
            t.name,
            t.on_cpu,
            t.waiting_for_cpu,
            figures.e2e.as_secs_f64()
        );
    }
    print_figures(&figures, args.algorithm);
    Ok(())
}

/// How a bench paces its producers, for its banner: `rate` of `what` per
/// second in total, or as fast as they can.
pub(crate) fn pace(rate: Option<usize>, what: &str) -> String {
    match rate {
        Some(rate) => format!("at {rate} {what}/s in total"),
        None => "as fast as they can".to_owned(),
    }
}

/// The store URL of a run: the one given, or a fresh SQLite file in a
/// temporary directory (returned too: the file lives as long as it).
pub(crate) fn bench_url(
    given: Option<&str>,
) -> anyhow::Result<(Option<tempfile::TempDir>, String)> {
    Ok(match given {
        Some(url) => (None, url.to_owned()),
        None => {
            let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
            let url = format!("sqlite://{}", dir.path().join("bench.db").display());
            (Some(dir), url)
        }
    })
}

/// The store a run uses, and what to do with it after.
pub(crate) enum BenchStore {
    Sqlite(Arc<signet_sqlite::SqliteStore>),
    /// In a fresh schema, dropped after the run.
    Postgres(signet_postgres::PostgresStore),
}

impl BenchStore {
    pub(crate) async fn open(url: &str) -> anyhow::Result<Self> {
        Ok(match backend(url)? {
            Backend::Sqlite => BenchStore::Sqlite(open_sqlite(url, SqliteConfig::default())?),
            Backend::Postgres => {
                let schema = format!("signet_bench_{:08x}", rand::random::<u32>());
                BenchStore::Postgres(open_postgres(url, postgres_options(Some(&schema))).await?)
            }
        })
    }

    pub(crate) fn store(&self) -> Arc<dyn Store> {
        match self {
            BenchStore::Sqlite(s) => s.clone(),
            BenchStore::Postgres(s) => Arc::new(s.clone()),
        }
    }

    /// The PostgreSQL schema of the run (`None` on SQLite).
    pub(crate) fn schema(&self) -> Option<&str> {
        match self {
            BenchStore::Sqlite(_) => None,
            BenchStore::Postgres(s) => Some(s.schema_name()),
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            BenchStore::Sqlite(_) => "SQLite, synchronous=FULL".to_owned(),
            BenchStore::Postgres(s) => format!(
                "PostgreSQL, fresh schema {}, {} pooled connections at most",
                s.schema_name(),
                s.pool_status().max_size
            ),
        }
    }

    /// The SQLite writer's counters so far (zero on PostgreSQL), to pass
    /// to [`BenchStore::stats`] as the start of a measured run.
    pub(crate) fn writer_mark(&self) -> WriterStats {
        match self {
            BenchStore::Sqlite(s) => s.writer_stats(),
            BenchStore::Postgres(_) => WriterStats::default(),
        }
    }

    /// One line about the store's own work over `wall` time, counted from
    /// `mark` (a [`BenchStore::writer_mark`]; the default: from the start).
    pub(crate) fn stats(&self, wall: Duration, mark: WriterStats) -> String {
        match self {
            BenchStore::Sqlite(s) => {
                let now = s.writer_stats();
                let stats = WriterStats {
                    commits: now.commits.saturating_sub(mark.commits),
                    operations: now.operations.saturating_sub(mark.operations),
                };
                format!(
                    "store writer: {} commits for {} operations ({:.1} operations per commit, {:.0} commits/s)",
                    stats.commits,
                    stats.operations,
                    stats.operations as f64 / (stats.commits.max(1)) as f64,
                    stats.commits as f64 / wall.as_secs_f64().max(1e-9)
                )
            }
            BenchStore::Postgres(s) => {
                let pool = s.pool_status();
                format!(
                    "store pool: {} connections open of {} at most, {} idle at the end",
                    pool.size, pool.max_size, pool.available
                )
            }
        }
    }

    /// Closes the store; a PostgreSQL run drops its schema.
    pub(crate) async fn finish(self) {
        let closed = match &self {
            BenchStore::Sqlite(s) => s.close().await,
            BenchStore::Postgres(s) => s.danger_drop_schema().await,
        };
        if let Err(e) = closed {
            eprintln!("warning: closing the store: {e}");
        }
    }
}

/// User + system CPU seconds of this process so far, from `/proc/self/stat`
/// (Linux); `None` elsewhere.
pub(crate) fn process_cpu_secs() -> Option<f64> {
    cpu_secs_of_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// User + system CPU seconds from a `/proc/.../stat` line.
fn cpu_secs_of_stat(stat: &str) -> Option<f64> {
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // The kernel's USER_HZ is 100 on every Linux architecture Rust supports.
    Some(ticks / 100.0)
}

/// `now`'s thread times less those in `before` of the same name: the
/// time spent since `before` was read.
pub(crate) fn since(now: Vec<ThreadTime>, before: &[ThreadTime]) -> Vec<ThreadTime> {
    let mut out: Vec<ThreadTime> = now
        .into_iter()
        .map(|mut t| {
            if let Some(b) = before.iter().find(|b| b.name == t.name) {
                t.on_cpu = (t.on_cpu - b.on_cpu).max(0.0);
                t.waiting_for_cpu = (t.waiting_for_cpu - b.waiting_for_cpu).max(0.0);
            }
            t
        })
        .collect();
    out.sort_by(|a, b| b.on_cpu.total_cmp(&a.on_cpu));
    out
}

/// Time of one thread name (threads of one name summed), from
/// `/proc/self/task/*/schedstat` (Linux): on a CPU, and runnable but waiting
/// for a CPU (the machine is busy). The rest of the wall time the thread was
/// blocked: on I/O such as fsync, or idle.
#[derive(Debug, Default)]
pub(crate) struct ThreadTime {
    pub(crate) name: String,
    pub(crate) on_cpu: f64,
    pub(crate) waiting_for_cpu: f64,
}

/// Per thread name, busiest first; empty where `/proc` is missing.
pub(crate) fn thread_times() -> Vec<ThreadTime> {
    let mut by_name: Vec<ThreadTime> = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return by_name;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let Ok(sched) = std::fs::read_to_string(path.join("schedstat")) else {
            continue;
        };
        let mut fields = sched
            .split_whitespace()
            .map(|f| f.parse::<f64>().unwrap_or(0.0));
        let on_cpu = fields.next().unwrap_or(0.0) / 1e9;
        let waiting = fields.next().unwrap_or(0.0) / 1e9;
        let name = name.trim().to_owned();
        match by_name.iter_mut().find(|t| t.name == name) {
            Some(t) => {
                t.on_cpu += on_cpu;
                t.waiting_for_cpu += waiting;
            }
            None => by_name.push(ThreadTime {
                name,
                on_cpu,
                waiting_for_cpu: waiting,
            }),
        }
    }
    by_name.sort_by(|a, b| b.on_cpu.total_cmp(&a.on_cpu));
    by_name
}

fn print_figures(f: &Figures, algorithm: Algorithm) {
    println!(
        "  enqueue:    {:>10.0} tasks/s  ({} tasks in {:.2} s)",
        f.enqueue_per_s(),
        f.tasks,
        f.enqueue.as_secs_f64()
    );
    println!(
        "  end to end: {:>10.0} tasks/s  (first enqueue to last ack: {:.2} s)",
        f.e2e_per_s(),
        f.e2e.as_secs_f64()
    );
    println!(
        "  enqueue→start latency: p50 {:.1} ms, p99 {:.1} ms",
        f.quantile_ms(0.50),
        f.quantile_ms(0.99)
    );
    let round1 = |x: f64| (x * 10.0).round() / 10.0;
    let line = json!({
        "enqueue_per_s": f.enqueue_per_s().round(),
        "e2e_per_s": f.e2e_per_s().round(),
        "p50_ms": round1(f.quantile_ms(0.50)),
        "p99_ms": round1(f.quantile_ms(0.99)),
        "tasks": f.tasks,
        "algorithm": algorithm.as_str(),
    });
    println!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_sizes_follow_the_rate_and_stay_within_a_batch() {
        assert_eq!(batch_size(Some(7), Some(10_000), 4, 500), 7);
        assert_eq!(batch_size(None, None, 4, 500), 500);
        // 5 ms worth per producer, at least one, at most a full batch.
        assert_eq!(batch_size(None, Some(10_000), 64, 500), 1);
        assert_eq!(batch_size(None, Some(10_000), 1, 500), 50);
        assert_eq!(
            batch_size(None, Some(1_000_000_000), 1, 500),
            MAX_BATCH_TASKS
        );
        assert_eq!(batch_size(None, Some(10), 0, 500), 1);
    }

    #[test]
    fn thread_times_since_a_mark_subtract_by_name_and_sort_again() {
        let time = |name: &str, on_cpu: f64, waiting_for_cpu: f64| ThreadTime {
            name: name.to_owned(),
            on_cpu,
            waiting_for_cpu,
        };
        let before = [time("writer", 3.0, 1.0), time("worker", 1.0, 0.5)];
        let now = vec![
            time("writer", 3.5, 1.25),
            time("worker", 2.0, 0.5),
            time("new", 0.25, 0.0),
        ];
        let got: Vec<(String, f64, f64)> = since(now, &before)
            .into_iter()
            .map(|t| (t.name, t.on_cpu, t.waiting_for_cpu))
            .collect();
        assert_eq!(
            got,
            [
                ("worker".to_owned(), 1.0, 0.0),
                ("writer".to_owned(), 0.5, 0.25),
                ("new".to_owned(), 0.25, 0.0),
            ]
        );
    }

    #[test]
    fn quantiles_use_nearest_rank() {
        let f = Figures {
            tasks: 100,
            enqueue: Duration::from_secs(1),
            e2e: Duration::from_secs(2),
            latencies_us: (1..=100).map(|i| i * 1000).collect(),
        };
        assert_eq!(f.quantile_ms(0.50), 50.0);
        assert_eq!(f.quantile_ms(0.99), 99.0);
        assert_eq!(f.enqueue_per_s(), 100.0);
        assert_eq!(f.e2e_per_s(), 50.0);
    }
}
