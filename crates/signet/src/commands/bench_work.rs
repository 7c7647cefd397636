//! `signet bench work`: the task queue end to end ACROSS PROCESSES, in the
//! shape users deploy: this command starts `signet serve` (this binary, as
//! a child process) on a fresh store, producers in this process enqueue
//! over HTTP with `POST /v1/tasks/batch` (the server signs each task with
//! the run's HMAC key and commits it durably before answering), and a
//! worker PROCESS runs the tasks:
//!
//! - `--worker http`: a small Rust client of the pull protocol (the hidden
//!   `signet bench work-http-worker`, see `bench_work/pull.rs`): claims of
//!   up to 100 with a long poll, every signature verified, batched
//!   `complete`s — what an SDK in another language does;
//! - `--worker store`: the runtime's `Worker` on the store directly (the
//!   hidden `signet bench work-store-worker`), as a Rust service linked
//!   against `signet-runtime` runs.
//!
//! Both workers are this binary, so the bench needs nothing else built
//! (the example worker is a separate package) and the store worker is the
//! same `Worker` the example worker wraps, with the same settings given.
//!
//! End to end = tasks ÷ (the last task's `finished_at` − the first task's
//! `created_at`), both stamped by the store; latency = `finished_at` −
//! `created_at` of each task (ms resolution). The store is a fresh SQLite
//! file in a temporary directory, or with `--database-url postgres://…` a
//! fresh schema of that database, dropped after. The last line printed is
//! one JSON object, for scripts.

mod http;
mod pull;

use std::net::TcpListener;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use axum::http::StatusCode;
use serde_json::json;
use signet_runtime::{HandlerResult, TaskContext, Worker};
use signet_server::{create_api_key, Scope};
use signet_sign::SigningConfig;
use signet_store::{Store, TaskFilter, TaskState};

use crate::commands::bench_pickup::{
    at_least_one, run_until_stdin_closes, runtime, signing_vars, until_stdin_closes, WorkerChild,
};
use crate::commands::bench_queue::{bench_url, quantile_ms, BenchStore};
use crate::commands::{finish, now_ms};
use crate::store_url::{open_in, redact};
use http::{excerpt, Conn};

/// Default tasks per run.
const DEFAULT_TASKS: usize = 50_000;
/// The task name of the run.
const TASK: &str = "bench.work";
/// The variable that hands the API key to the HTTP worker (not its
/// command line, which `ps` shows).
const VAR_API_KEY: &str = "SIGNET_API_KEY";
/// Longest wait for `signet serve` to answer `/readyz`.
const SERVE_TIMEOUT: Duration = Duration::from_secs(30);
/// A run fails when no task finishes for this long.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Which worker process runs the tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum WorkerKind {
    /// The pull protocol over HTTP (`POST /v1/work/*`).
    Http,
    /// The runtime's `Worker` on the store directly.
    Store,
}

impl WorkerKind {
    fn name(self) -> &'static str {
        match self {
            WorkerKind::Http => "http",
            WorkerKind::Store => "store",
        }
    }
}

/// Arguments of `signet bench work`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Tasks per run.
    #[arg(long, default_value_t = DEFAULT_TASKS, value_parser = at_least_one)]
    tasks: usize,
    /// The worker processes to measure, one run each, in this order:
    /// `http` (the pull protocol), `store` (the runtime Worker on the store).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "http,store")]
    worker: Vec<WorkerKind>,
    /// Store to use (default: a fresh SQLite file in a temporary directory,
    /// deleted after). With postgres://…, each run uses a fresh schema of
    /// that database and drops it after.
    #[arg(long)]
    database_url: Option<String>,
    /// Tasks per `POST /v1/tasks/batch` (1 to 1000).
    #[arg(long, default_value_t = 500, value_parser = batch_size)]
    batch: usize,
    /// Producer connections, each posting batches back to back.
    #[arg(long, default_value_t = 2, value_parser = at_least_one)]
    producers: usize,
    /// HTTP worker: claim loops, each on its own connection, each claiming
    /// up to 100 tasks at a time.
    #[arg(long, default_value_t = 4, value_parser = at_least_one)]
    claimers: usize,
    /// Store worker: tasks run at once.
    #[arg(long, default_value_t = 256, value_parser = at_least_one)]
    concurrency: usize,
}

/// Arguments of the hidden `signet bench work-http-worker` (a child). The
/// API key comes in `SIGNET_API_KEY`, the signing keys in the usual
/// variables.
#[derive(Debug, clap::Args)]
pub(crate) struct HttpWorkerArgs {
    /// The server, `host:port`.
    #[arg(long)]
    addr: String,
    /// The queue to work.
    #[arg(long)]
    queue: String,
    /// Claim loops.
    #[arg(long, value_parser = at_least_one)]
    claimers: usize,
}

/// Arguments of the hidden `signet bench work-store-worker` (a child).
#[derive(Debug, clap::Args)]
pub(crate) struct StoreWorkerArgs {
    /// The store.
    #[arg(long)]
    database_url: String,
    /// PostgreSQL: the schema of the run.
    #[arg(long)]
    database_schema: Option<String>,
    /// The queue to work.
    #[arg(long)]
    queue: String,
    /// Tasks run at once.
    #[arg(long, value_parser = at_least_one)]
    concurrency: usize,
}

fn batch_size(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=1000).contains(&n) => Ok(n),
        _ => Err(format!("{text:?} is not a batch size of 1 to 1000")),
    }
}

pub(crate) fn run(args: Args) -> ExitCode {
    finish(
        "bench work",
        runtime().and_then(|rt| rt.block_on(bench(args))),
    )
}

pub(crate) fn run_http_worker(args: HttpWorkerArgs) -> ExitCode {
    finish(
        "bench work-http-worker",
        runtime().and_then(|rt| rt.block_on(http_worker(args))),
    )
}

pub(crate) fn run_store_worker(args: StoreWorkerArgs) -> ExitCode {
    finish(
        "bench work-store-worker",
        runtime().and_then(|rt| rt.block_on(store_worker(args))),
    )
}

/// What one run measured.
struct Figures {
    worker: WorkerKind,
    store: &'static str,
    /// Tasks acknowledged by the producers per second (first send to last
    /// answer).
    enqueue_per_s: f64,
    /// Tasks per second, first `created_at` to last `finished_at`.
    end_to_end_per_s: f64,
    /// Enqueue → complete, µs, sorted.
    latencies_us: Vec<i64>,
}

async fn bench(args: Args) -> anyhow::Result<()> {
    if args.worker.is_empty() {
        bail!("--worker names no worker; give http, store or http,store");
    }
    let mut all = Vec::new();
    for kind in args.worker.clone() {
        let (_tmp, url) = bench_url(args.database_url.as_deref())?;
        let opened = BenchStore::open(&url).await?;
        println!(
            "signet bench work --worker {}: {} tasks, {} producer connection(s) posting batches of {} to `signet serve`, store {} ({})",
            kind.name(),
            args.tasks,
            args.producers,
            args.batch,
            redact(&url),
            opened.describe()
        );
        let result = one_run(&args, kind, &url, &opened).await;
        opened.finish().await;
        let figures = result?;
        print_figures(&figures);
        all.push(figures);
    }
    let runs: Vec<serde_json::Value> = all
        .iter()
        .map(|f| {
            let round1 = |x: f64| (x * 10.0).round() / 10.0;
            json!({
                "worker": f.worker.name(),
                "store": f.store,
                "tasks": args.tasks,
                "enqueue_per_s": f.enqueue_per_s.round(),
                "end_to_end_per_s": f.end_to_end_per_s.round(),
                "p50_ms": round1(quantile_ms(&f.latencies_us, 0.50)),
                "p99_ms": round1(quantile_ms(&f.latencies_us, 0.99)),
            })
        })
        .collect();
    println!("{}", json!({ "runs": runs }));
    Ok(())
}

/// A child process killed (and reaped) when dropped.
struct Server {
    child: Child,
}

impl Server {
    /// Starts `signet serve` on `addr` with the run's keys and no rate
    /// limits (they would measure themselves, not the server).
    fn start(
        addr: &str,
        url: &str,
        schema: Option<&str>,
        vars: &[(&'static str, String)],
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find this program to start a server")?;
        let mut cmd = Command::new(exe);
        cmd.args([
            "serve",
            "--listen",
            addr,
            "--database-url",
            url,
            "--rate-limit-per-key",
            "0",
            "--rate-limit-per-ip",
            "0",
        ]);
        if let Some(schema) = schema {
            cmd.args(["--database-schema", schema]);
        }
        for (name, _) in std::env::vars() {
            if name.starts_with("SIGNET_") {
                cmd.env_remove(name);
            }
        }
        cmd.envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = cmd.spawn().context("cannot start `signet serve`")?;
        Ok(Self { child })
    }

    /// Waits until the server answers `/readyz`.
    async fn ready(&mut self, addr: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + SERVE_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .try_wait()
                .context("checking on `signet serve`")?
            {
                bail!("`signet serve` ended with {status} before it was ready (its log is above)");
            }
            if let Ok(mut conn) = Conn::open(addr, None).await {
                if let Ok((StatusCode::OK, _)) = conn.get("/readyz").await {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "`signet serve` did not answer /readyz within {} s",
                    SERVE_TIMEOUT.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port on the loopback interface.
fn free_addr() -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.to_string())
}

async fn one_run(
    args: &Args,
    kind: WorkerKind,
    url: &str,
    opened: &BenchStore,
) -> anyhow::Result<Figures> {
    let store = opened.store();
    let queue = format!("work-{:08x}", rand::random::<u32>());
    let key = create_api_key(store.as_ref(), "bench-work", Scope::Work, now_ms()).await?;
    let api_key = key.secret.expose_secret().to_owned();
    let vars = signing_vars();
    let addr = free_addr()?;
    let mut server = Server::start(&addr, url, opened.schema(), &vars)?;
    server.ready(&addr).await?;

    let concurrency = args.concurrency.to_string();
    let claimers = args.claimers.to_string();
    let worker = match kind {
        WorkerKind::Http => {
            let mut child_vars = vars.clone();
            child_vars.push((VAR_API_KEY, api_key.clone()));
            WorkerChild::spawn(
                &[
                    "work-http-worker",
                    "--addr",
                    &addr,
                    "--queue",
                    &queue,
                    "--claimers",
                    &claimers,
                ],
                &child_vars,
            )?
        }
        WorkerKind::Store => {
            let mut child_args = vec![
                "work-store-worker",
                "--database-url",
                url,
                "--queue",
                &queue,
                "--concurrency",
                &concurrency,
            ];
            if let Some(schema) = opened.schema() {
                child_args.extend(["--database-schema", schema]);
            }
            WorkerChild::spawn(&child_args, &vars)?
        }
    };
    println!(
        "  signet serve on http://{addr}, worker process: {}",
        match kind {
            WorkerKind::Http => format!(
                "the pull protocol over HTTP, {} claim loop(s) of up to 100 tasks",
                args.claimers
            ),
            WorkerKind::Store => format!(
                "the runtime Worker on the store, concurrency {}",
                args.concurrency
            ),
        }
    );

    let enqueue_per_s = produce(args, &addr, &api_key, &queue).await?;
    wait_for_all(store.as_ref(), &queue, args.tasks).await?;
    worker.stop()?;
    drop(server);
    let (end_to_end_per_s, latencies_us) = timings(store.as_ref(), &queue, args.tasks).await?;
    Ok(Figures {
        worker: kind,
        store: if signet_postgres::is_postgres_url(url) {
            "postgres"
        } else {
            "sqlite"
        },
        enqueue_per_s,
        end_to_end_per_s,
        latencies_us,
    })
}

/// The producers: `--producers` connections posting batches until
/// `--tasks` are enqueued. Answers enqueues per second.
async fn produce(args: &Args, addr: &str, api_key: &str, queue: &str) -> anyhow::Result<f64> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..args.producers {
        let (next, addr, key, queue) = (
            Arc::clone(&next),
            addr.to_owned(),
            api_key.to_owned(),
            queue.to_owned(),
        );
        let (total, batch) = (args.tasks, args.batch);
        set.spawn(async move {
            let mut conn = Conn::open(&addr, Some(&key)).await?;
            loop {
                let first = next.fetch_add(batch, Ordering::Relaxed);
                if first >= total {
                    return anyhow::Ok(());
                }
                let tasks: Vec<serde_json::Value> = (first..total.min(first + batch))
                    .map(|i| json!({"queue": queue, "task": TASK, "args": {"i": i}}))
                    .collect();
                let body = json!({ "tasks": tasks }).to_string().into_bytes();
                let (status, bytes) = conn.post("/v1/tasks/batch", body).await?;
                if status != StatusCode::CREATED {
                    bail!(
                        "POST /v1/tasks/batch answered {status}: {}",
                        excerpt(&bytes)
                    );
                }
            }
        });
    }
    while let Some(joined) = set.join_next().await {
        joined.map_err(|e| anyhow!("a producer failed: {e}"))??;
    }
    #[allow(clippy::cast_precision_loss)] // task counts far below 2^52
    Ok(args.tasks as f64 / started.elapsed().as_secs_f64().max(f64::EPSILON))
}

/// Waits until every task of the run succeeded; fails when one is dead or
/// none finishes for [`STALL_TIMEOUT`].
async fn wait_for_all(store: &dyn Store, queue: &str, total: usize) -> anyhow::Result<()> {
    let total = total as u64;
    let mut last = (0, Instant::now());
    loop {
        let counts = store.counts().await?;
        let ours = counts.iter().find(|c| c.queue == queue);
        let done = ours.map_or(0, |c| c.count(TaskState::Succeeded));
        let dead = ours.map_or(0, |c| c.count(TaskState::Dead));
        if dead > 0 {
            bail!("{dead} task(s) of the run are dead; `signet dead-letters ls` on the store says why");
        }
        if done >= total {
            return Ok(());
        }
        if done > last.0 {
            last = (done, Instant::now());
        } else if last.1.elapsed() > STALL_TIMEOUT {
            bail!(
                "{done} of {total} tasks succeeded and none finished for {} s",
                STALL_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// End to end per second and each task's enqueue → complete time (µs,
/// sorted), from the store's own times.
async fn timings(store: &dyn Store, queue: &str, total: usize) -> anyhow::Result<(f64, Vec<i64>)> {
    let mut latencies = Vec::with_capacity(total);
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    let mut cursor = None;
    loop {
        let page = store
            .list_tasks(TaskFilter {
                queue: Some(queue.to_owned()),
                state: Some(TaskState::Succeeded),
                limit: signet_store::MAX_PAGE,
                cursor,
                ..TaskFilter::default()
            })
            .await?;
        for row in &page.items {
            let created = row.envelope.created_at_ms;
            let finished = row
                .finished_at_ms
                .ok_or_else(|| anyhow!("task {} succeeded without a finish time", row.id()))?;
            first = first.min(created);
            last = last.max(finished);
            latencies.push(finished.saturating_sub(created).saturating_mul(1000));
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    if latencies.len() != total {
        bail!(
            "the store lists {} succeeded tasks, expected {total}",
            latencies.len()
        );
    }
    latencies.sort_unstable();
    #[allow(clippy::cast_precision_loss)] // far below 2^52
    let per_s = total as f64 * 1000.0 / (last.saturating_sub(first).max(1)) as f64;
    Ok((per_s, latencies))
}

fn print_figures(f: &Figures) {
    println!(
        "  enqueue over HTTP: {:.0} tasks/s; end to end: {:.0} tasks/s; enqueue→complete p50 {:.1} ms, p99 {:.1} ms",
        f.enqueue_per_s,
        f.end_to_end_per_s,
        quantile_ms(&f.latencies_us, 0.50),
        quantile_ms(&f.latencies_us, 0.99)
    );
}

/// The HTTP worker child: claim loops until stdin closes.
async fn http_worker(args: HttpWorkerArgs) -> anyhow::Result<()> {
    let api_key = std::env::var(VAR_API_KEY)
        .map_err(|_| anyhow!("{VAR_API_KEY} is not set; `signet bench work` sets it"))?;
    let signing = SigningConfig::from_vars(std::env::vars())
        .map_err(|e| anyhow!("signing configuration: {e}"))?;
    let ring = Arc::new(signing.ring.verify_only());
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(pull::Counts::default());
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..args.claimers {
        set.spawn(pull::claim_loop(
            args.addr.clone(),
            api_key.clone(),
            args.queue.clone(),
            Arc::clone(&ring),
            Arc::clone(&stop),
            Arc::clone(&counts),
        ));
    }
    println!("ready");
    tokio::select! {
        closed = until_stdin_closes() => closed?,
        Some(ended) = set.join_next() => {
            ended.map_err(|e| anyhow!("a claim loop failed: {e}"))??;
            bail!("a claim loop ended before the run did");
        }
    }
    stop.store(true, Ordering::Relaxed);
    while let Some(ended) = set.join_next().await {
        ended.map_err(|e| anyhow!("a claim loop failed: {e}"))??;
    }
    let refused = counts.refused.load(Ordering::Relaxed);
    let lost = counts.lost.load(Ordering::Relaxed);
    if refused > 0 || lost > 0 {
        bail!(
            "{} completed, {refused} refused as signature-invalid, {lost} reports lost",
            counts.completed.load(Ordering::Relaxed)
        );
    }
    Ok(())
}

/// The store worker child: the runtime's Worker with a no-op handler until
/// stdin closes.
async fn store_worker(args: StoreWorkerArgs) -> anyhow::Result<()> {
    let signing = SigningConfig::from_vars(std::env::vars())
        .map_err(|e| anyhow!("signing configuration: {e}"))?;
    let store = open_in(&args.database_url, args.database_schema.as_deref()).await?;
    let worker = Worker::builder(Arc::clone(&store))
        .signing(&signing)
        .queues([args.queue])
        .concurrency(args.concurrency)
        .register(TASK, |_ctx: TaskContext, _a: serde_json::Value| async {
            HandlerResult::Ok(None)
        })
        .build()
        .map_err(|e| anyhow!("{e}"))?;
    run_until_stdin_closes(worker, &store).await
}
