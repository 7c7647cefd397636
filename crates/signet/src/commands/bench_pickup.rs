//! `signet bench pickup`: idle pickup latency, enqueue → handler start,
//! with the worker in another process.
//!
//! The command starts a worker child process (this binary, `signet bench
//! pickup-worker`, hidden) on the same store with the worker's default
//! settings, then enqueues one signed task at a time at `--rate` tasks per
//! second, so the worker is idle each time a task arrives. The handler
//! returns the time it started (unix microseconds) as the task's result;
//! the latency of a task is that time minus the time just before its
//! enqueue call. Both processes read the same system clock.
//!
//! The store is a fresh SQLite file in a temporary directory, or, with
//! `--database-url postgres://…`, a fresh schema of that database, dropped
//! after the run. The last line printed is one JSON object, for scripts.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::json;
use signet_runtime::{HandlerResult, Producer, Shutdown, TaskContext, TaskSpec, Worker};
use signet_sign::config::{VAR_ACTIVE_KEY, VAR_KEYS};
use signet_sign::SigningConfig;
use signet_store::{Store, TaskState};

use crate::commands::bench_queue::{bench_url, quantile_ms, BenchStore};
use crate::commands::finish;
use crate::store_url::{open_in, redact};

/// Default number of measured tasks.
pub(crate) const DEFAULT_TASKS: usize = 200;
/// Default tasks enqueued per second (one at a time).
pub(crate) const DEFAULT_RATE: f64 = 20.0;
/// Tasks run first and not measured: the worker's first claims and the
/// store's connections warm up.
const WARM_UP: usize = 3;
/// The task name the child worker handles.
const TASK: &str = "bench.pickup";
/// Longest wait for the child to start, and for the last task to finish.
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);
/// The key id of the run's signing key.
const KEY_ID: &str = "bench";

/// Arguments of `signet bench pickup`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Tasks to measure (after a few warm-up tasks).
    #[arg(long, default_value_t = DEFAULT_TASKS, value_parser = at_least_one)]
    tasks: usize,
    /// Tasks enqueued per second, one at a time.
    #[arg(long, default_value_t = DEFAULT_RATE, value_parser = positive_rate)]
    rate: f64,
    /// Store to use (default: a fresh SQLite file in a temporary directory,
    /// deleted after). With postgres://…, the run uses a fresh schema of
    /// that database and drops it after.
    #[arg(long)]
    database_url: Option<String>,
}

/// Arguments of the hidden `signet bench pickup-worker` (the child).
#[derive(Debug, clap::Args)]
pub(crate) struct WorkerArgs {
    /// The store.
    #[arg(long)]
    database_url: String,
    /// PostgreSQL: the schema of the run.
    #[arg(long)]
    database_schema: Option<String>,
    /// The queue to work.
    #[arg(long)]
    queue: String,
}

pub(crate) fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{text:?} is not a whole number of at least 1")),
    }
}

fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 && r <= 10_000.0 => Ok(r),
        _ => Err(format!(
            "{text:?} is not a rate between 0 (excluded) and 10000 tasks per second"
        )),
    }
}

/// The handler's args: when the producer was about to enqueue, unix µs.
#[derive(serde::Serialize, serde::Deserialize)]
struct PickupArgs {
    t: i64,
}

/// The handler's result: when it started, unix µs.
#[derive(serde::Deserialize)]
struct Started {
    started_us: i64,
}

pub(crate) fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub(crate) fn run(args: Args) -> ExitCode {
    finish(
        "bench pickup",
        runtime().and_then(|rt| rt.block_on(bench(args))),
    )
}

pub(crate) fn run_worker(args: WorkerArgs) -> ExitCode {
    finish(
        "bench pickup-worker",
        runtime().and_then(|rt| rt.block_on(child(args))),
    )
}

/// The signing variables of a run: one fresh HMAC key, active.
pub(crate) fn signing_vars() -> Vec<(&'static str, String)> {
    let secret: [u8; 32] = rand::random();
    vec![
        (VAR_KEYS, format!("{KEY_ID}:{}", STANDARD.encode(secret))),
        (VAR_ACTIVE_KEY, KEY_ID.to_owned()),
    ]
}

/// A worker child (this program, a hidden `bench` subcommand); killed
/// when dropped.
pub(crate) struct WorkerChild {
    child: Child,
    /// Closing it asks the child to stop.
    stdin: Option<ChildStdin>,
}

impl WorkerChild {
    fn start(
        url: &str,
        schema: Option<&str>,
        queue: &str,
        vars: &[(&'static str, String)],
    ) -> anyhow::Result<Self> {
        let mut args = vec!["pickup-worker", "--database-url", url, "--queue", queue];
        if let Some(schema) = schema {
            args.extend(["--database-schema", schema]);
        }
        Self::spawn(&args, vars)
    }

    /// Starts `signet bench <args>` with only `vars` of the SIGNET_*
    /// variables, and waits for it to print `ready`.
    pub(crate) fn spawn(args: &[&str], vars: &[(&'static str, String)]) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find this program to start a worker")?;
        let mut cmd = Command::new(exe);
        cmd.arg("bench").args(args);
        // Only this run's keys: none of the caller's SIGNET_* settings.
        for (name, _) in std::env::vars() {
            if name.starts_with("SIGNET_") {
                cmd.env_remove(name);
            }
        }
        cmd.envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().context("cannot start the worker process")?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("the worker process has no stdout"))?;
        let mut started = WorkerChild { child, stdin };
        // Wait for "ready" (on a thread: reading a pipe blocks).
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(read.map(|_| line));
        });
        match rx.recv_timeout(CHILD_TIMEOUT) {
            Ok(Ok(line)) if line.trim() == "ready" => Ok(started),
            Ok(Ok(line)) => {
                started.kill();
                bail!(
                    "the worker process did not start (it said {:?})",
                    line.trim()
                )
            }
            Ok(Err(e)) => {
                started.kill();
                Err(anyhow!("reading the worker process's output: {e}"))
            }
            Err(_) => {
                started.kill();
                bail!(
                    "the worker process did not start within {} s",
                    CHILD_TIMEOUT.as_secs()
                )
            }
        }
    }

    /// Asks the child to stop (closes its stdin) and waits for it.
    pub(crate) fn stop(mut self) -> anyhow::Result<()> {
        drop(self.stdin.take());
        let status = self
            .child
            .wait()
            .context("waiting for the worker process")?;
        if !status.success() {
            bail!("the worker process ended with {status}");
        }
        Ok(())
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for WorkerChild {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            self.kill();
        }
    }
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let (_tmp, url) = bench_url(args.database_url.as_deref())?;
    let opened = BenchStore::open(&url).await?;
    let result = measure(&args, &url, &opened).await;
    opened.finish().await;
    print_figures(&args, &url, &result?);
    Ok(())
}

/// What a run measured, microseconds, each sorted.
struct Measured {
    /// Enqueue → handler start.
    pickup: Vec<i64>,
    /// The enqueue call alone (signing and the durable commit), part of
    /// `pickup`.
    enqueue: Vec<i64>,
}

/// Runs the child and the paced producer.
async fn measure(args: &Args, url: &str, opened: &BenchStore) -> anyhow::Result<Measured> {
    let store = opened.store();
    let queue = format!("pickup-{:08x}", rand::random::<u32>());
    let vars = signing_vars();
    let signing = SigningConfig::from_vars(vars.iter().map(|(k, v)| (*k, v.clone())))
        .map_err(|e| anyhow!("the run's signing key: {e}"))?;
    let producer = Producer::new(Arc::clone(&store), &signing).map_err(|e| anyhow!("{e}"))?;
    println!(
        "signet bench pickup: {} tasks one at a time at {}/s, worker in another process, store {} ({})",
        args.tasks,
        args.rate,
        redact(url),
        opened.describe()
    );
    let child = WorkerChild::start(url, opened.schema(), &queue, &vars)?;

    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let begun = tokio::time::Instant::now();
    let mut sent = Vec::with_capacity(args.tasks + WARM_UP);
    let mut enqueue = Vec::with_capacity(args.tasks + WARM_UP);
    for i in 0..args.tasks + WARM_UP {
        tokio::time::sleep_until(begun + interval.mul_f64(i as f64)).await;
        let t = now_us();
        let spec = TaskSpec::new(TASK, &PickupArgs { t })
            .queue(queue.clone())
            .max_attempts(1);
        let enqueued = producer
            .enqueue(spec)
            .await
            .map_err(|e| anyhow!("enqueue failed: {e}"))?;
        enqueue.push(now_us().saturating_sub(t));
        sent.push((enqueued.task.envelope.id, t));
    }
    let latencies = collect(store.as_ref(), &sent[WARM_UP..]).await;
    child.stop()?;
    let mut pickup = latencies?;
    pickup.sort_unstable();
    let mut enqueue = enqueue.split_off(WARM_UP);
    enqueue.sort_unstable();
    Ok(Measured { pickup, enqueue })
}

/// Waits for every task to succeed and returns start − enqueue of each, µs.
async fn collect(store: &dyn Store, sent: &[(String, i64)]) -> anyhow::Result<Vec<i64>> {
    let deadline = tokio::time::Instant::now() + CHILD_TIMEOUT;
    let mut out = Vec::with_capacity(sent.len());
    for (id, t) in sent {
        loop {
            let row = store
                .task(id)
                .await?
                .ok_or_else(|| anyhow!("task {id} disappeared"))?;
            match row.state {
                TaskState::Succeeded => {
                    let started: Started =
                        serde_json::from_slice(row.result.as_deref().unwrap_or_default())
                            .with_context(|| {
                                format!("task {id} has no start time as its result")
                            })?;
                    out.push(started.started_us.saturating_sub(*t));
                    break;
                }
                TaskState::Dead | TaskState::Cancelled => {
                    bail!("task {id} did not succeed: {:?}", row.dead_detail)
                }
                _ if tokio::time::Instant::now() > deadline => {
                    bail!("task {id} was not run within {} s", CHILD_TIMEOUT.as_secs())
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
    Ok(out)
}

fn print_figures(args: &Args, url: &str, m: &Measured) {
    let q = |p| quantile_ms(&m.pickup, p);
    let max = m.pickup.last().copied().unwrap_or(0) as f64 / 1000.0;
    let enqueue_p50 = quantile_ms(&m.enqueue, 0.50);
    println!(
        "  enqueue→start latency: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {max:.1} ms",
        q(0.50),
        q(0.90),
        q(0.99)
    );
    println!("  of which the enqueue call itself: p50 {enqueue_p50:.1} ms");
    let round1 = |x: f64| (x * 10.0).round() / 10.0;
    let backend = if signet_postgres::is_postgres_url(url) {
        "postgres"
    } else {
        "sqlite"
    };
    let line = json!({
        "tasks": args.tasks,
        "rate": args.rate,
        "store": backend,
        "p50_ms": round1(q(0.50)),
        "p90_ms": round1(q(0.90)),
        "p99_ms": round1(q(0.99)),
        "max_ms": round1(max),
        "enqueue_p50_ms": round1(enqueue_p50),
    });
    println!("{line}");
}

/// The child: a worker with default settings whose handler returns the
/// time it started. Prints `ready` once running; stops when its stdin
/// closes.
async fn child(args: WorkerArgs) -> anyhow::Result<()> {
    let signing = SigningConfig::from_vars(std::env::vars())
        .map_err(|e| anyhow!("signing configuration: {e}"))?;
    let store = open_in(&args.database_url, args.database_schema.as_deref()).await?;
    let worker = Worker::builder(Arc::clone(&store))
        .signing(&signing)
        .queues([args.queue])
        .register(TASK, |_ctx: TaskContext, _a: PickupArgs| async {
            HandlerResult::Ok(Some(json!({ "started_us": now_us() })))
        })
        .build()
        .map_err(|e| anyhow!("{e}"))?;
    run_until_stdin_closes(worker, &store).await
}

/// Runs a bench's worker child: says `ready`, runs `worker` until the
/// parent closes this child's stdin, then shuts it down and closes `store`.
pub(crate) async fn run_until_stdin_closes(
    worker: Worker,
    store: &Arc<dyn Store>,
) -> anyhow::Result<()> {
    let shutdown = Shutdown::new();
    let running = tokio::spawn(worker.run(shutdown.signal()));
    println!("ready");
    until_stdin_closes().await?;
    shutdown.trigger();
    let ran = running.await.context("the worker task")?;
    store.close().await?;
    ran.map_err(|e| anyhow!("the worker: {e}"))
}

/// Returns when the parent closes this child's stdin (or goes away).
pub(crate) async fn until_stdin_closes() -> anyhow::Result<()> {
    tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
    })
    .await
    .context("waiting for the end of the run")
}
