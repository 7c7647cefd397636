//! The worker: claims tasks in batches, verifies them before running,
//! runs handlers with a timeout and heartbeats, and acknowledges in batches.
//!
//! ```text
//! claim loop ──claim(up to free capacity)──► verify batch ──► refuse (dead) ─┐
//!                                                 └──► spawn handler ───────┤
//!                                                       (timeout, panic,    │
//!                                                        heartbeats)        ▼
//!                                   acker ◄── outcomes ── complete_batch / fail / release
//! ```
//!
//! One task per claimed row runs on the tokio runtime (so handlers use every
//! core); one acker task turns finished runs into store writes, batching
//! successes into one `complete_batch` call. Capacity is returned to the
//! claim loop only once the outcome is written, so at most `concurrency`
//! tasks are leased by this worker at any time.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use serde::de::DeserializeOwned;
use signet_sign::{KeyRing, SigningConfig};
use signet_store::{ClaimRequest, DeadReason, FailOutcome, LeaseToken, Store, StoreError, TaskRow};
use tokio::sync::{broadcast, mpsc, watch, Notify};

use crate::backoff::RetryPolicy;
use crate::clock::{duration_ms, Clock, SystemClock};
use crate::error::RuntimeError;
use crate::handler::{
    ErasedHandler, HandlerResult, RunFailure, TaskContext, TaskMeta, TypedHandler,
};
use crate::metrics;
use crate::shutdown::ShutdownSignal;
use crate::verify::Verifier;

/// Default number of tasks run at once.
pub const DEFAULT_CONCURRENCY: usize = 64;
/// Default lease length.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// Default time between heartbeats of a running task.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);
/// Default longest run of one handler.
pub const DEFAULT_HANDLER_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Default time to let running handlers finish on shutdown.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Default wait before polling again when the queues were empty.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Most tasks asked for in one claim.
pub const MAX_CLAIM_BATCH: usize = 1000;
/// How long a store write is retried on transient errors before the worker
/// gives up on it (the lease then expires and the task is rescued).
const STORE_RETRY_BUDGET: Duration = Duration::from_secs(60);

/// What happened to a task, published on [`Worker::events`] after the store
/// recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerEvent {
    /// The task id.
    pub task_id: String,
    /// Its queue.
    pub queue: String,
    /// Its name.
    pub name: String,
    /// The attempt that ended.
    pub attempt: u32,
    /// How it ended.
    pub kind: WorkerEventKind,
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkerEventKind {
    /// The handler succeeded and the task is `succeeded`.
    Succeeded,
    /// The attempt failed; the task runs again at `at_ms`.
    Retrying {
        /// When (unix ms).
        at_ms: i64,
        /// The attempt's error.
        error: String,
    },
    /// The task was dead-lettered.
    Dead {
        /// Why.
        reason: DeadReason,
        /// Details.
        detail: String,
    },
    /// The worker gave the task back on shutdown (attempt not counted).
    Released,
    /// The lease was lost (expired and rescued); the result was dropped.
    LeaseLost,
    /// The outcome could not be written; the lease will expire and the task
    /// will be rescued.
    StoreFailed {
        /// The store's error.
        error: String,
    },
}

/// Builds a [`Worker`].
pub struct WorkerBuilder {
    store: Arc<dyn Store>,
    verifier: Option<Verifier>,
    queues: Vec<String>,
    concurrency: usize,
    lease: Duration,
    heartbeat: Duration,
    handler_timeout: Duration,
    retry: RetryPolicy,
    grace: Duration,
    poll_interval: Duration,
    clock: Arc<dyn Clock>,
    worker_id: Option<String>,
    handlers: HashMap<String, Arc<dyn ErasedHandler>>,
    duplicates: Vec<String>,
}

impl WorkerBuilder {
    /// Verification from a parsed signing configuration (the worker keeps
    /// only the verifying half of the keys). Dev mode turns verification
    /// off, with a loud warning at start.
    pub fn signing(mut self, config: &SigningConfig) -> Self {
        self.verifier = Some(Verifier::from_config(config));
        self
    }

    /// Verification with this ring (its verifying half is used). `required`
    /// refuses unsigned tasks.
    pub fn key_ring(mut self, ring: &KeyRing, required: bool) -> Self {
        self.verifier = Some(Verifier::keys(ring, required));
        self
    }

    /// Queues to take tasks from (default `default`).
    pub fn queues<I, S>(mut self, queues: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.queues = queues.into_iter().map(Into::into).collect();
        self
    }

    /// Tasks run at once (default [`DEFAULT_CONCURRENCY`]).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }

    /// Lease length and heartbeat interval (defaults [`DEFAULT_LEASE`],
    /// [`DEFAULT_HEARTBEAT`]). The heartbeat must be shorter than the lease.
    pub fn lease(mut self, lease: Duration, heartbeat: Duration) -> Self {
        self.lease = lease;
        self.heartbeat = heartbeat;
        self
    }

    /// Longest run of one handler; a run past it is a failed attempt.
    pub fn handler_timeout(mut self, timeout: Duration) -> Self {
        self.handler_timeout = timeout;
        self
    }

    /// Retry schedule for failed attempts.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How long running handlers may finish after shutdown is asked; the
    /// rest are released back to the queue.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Wait before polling again when the queues were empty.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The clock (tests pass a [`ManualClock`](crate::ManualClock)).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The lease owner name (default `worker-<pid>-<random>`).
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.worker_id = Some(id.into());
        self
    }

    /// Registers `handler` for tasks named `name`. Args are decoded from the
    /// task's JSON into `Args`; if that fails the task is dead-lettered with
    /// `payload-invalid` and the handler is not called.
    pub fn register<Args, F, Fut>(mut self, name: impl Into<String>, handler: F) -> Self
    where
        Args: DeserializeOwned + Send + 'static,
        F: Fn(TaskContext, Args) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = HandlerResult> + Send + 'static,
    {
        let name = name.into();
        let handler: Arc<dyn ErasedHandler> = Arc::new(TypedHandler::new(handler));
        if self.handlers.insert(name.clone(), handler).is_some() {
            self.duplicates.push(name);
        }
        self
    }

    /// Checks the configuration and builds the worker.
    pub fn build(self) -> Result<Worker, RuntimeError> {
        let verifier = self.verifier.ok_or_else(|| {
            RuntimeError::Config(
                "the worker has no signing configuration; call .signing(&config) (or .key_ring(..)) with the keys to verify with".into(),
            )
        })?;
        if let Some(name) = self.duplicates.first() {
            return Err(RuntimeError::Config(format!(
                "a handler for task {name:?} is registered twice; register each name once"
            )));
        }
        if self.queues.is_empty() {
            return Err(RuntimeError::Config(
                "the worker needs at least one queue to take tasks from".into(),
            ));
        }
        for queue in &self.queues {
            // Messages live on the reserved queue; only the dispatcher takes them.
            signet_store::rules::task_queue(queue)
                .map_err(|e| RuntimeError::Config(e.message().to_owned()))?;
        }
        if self.concurrency == 0 {
            return Err(RuntimeError::Config(
                "concurrency is 0; the worker needs at least 1".into(),
            ));
        }
        if self.heartbeat.is_zero() || self.heartbeat >= self.lease {
            return Err(RuntimeError::Config(format!(
                "heartbeat interval ({:?}) must be above zero and shorter than the lease ({:?})",
                self.heartbeat, self.lease
            )));
        }
        if self.handler_timeout.is_zero() {
            return Err(RuntimeError::Config(
                "handler timeout is zero; give handlers some time".into(),
            ));
        }
        match &verifier {
            Verifier::Dev => tracing::warn!(
                "DEV MODE: task signatures are NOT verified; anyone who can write to the store can run code on this worker. Never run like this in production"
            ),
            Verifier::Keys { ring, required } => {
                if ring.is_empty() && *required {
                    return Err(RuntimeError::Config(
                        "signing is required but no keys are configured to verify with; set SIGNET_SIGNING_KEYS or SIGNET_SIGNING_PUBLIC_KEYS, or SIGNET_SIGNING_REQUIRED=false to accept unsigned tasks".into(),
                    ));
                }
                if ring.is_empty() {
                    tracing::warn!(
                        "no signing keys configured: this worker accepts UNSIGNED tasks and cannot verify signed ones"
                    );
                } else if !*required {
                    tracing::warn!(
                        keys = ring.len(),
                        "signing is not required: unsigned tasks are accepted; signed tasks are still verified"
                    );
                } else {
                    tracing::info!(keys = ring.len(), "worker verifies task signatures");
                }
            }
        }
        let worker_id = self.worker_id.unwrap_or_else(|| {
            format!(
                "worker-{}-{:08x}",
                std::process::id(),
                rand::random::<u32>()
            )
        });
        let (events, _) = broadcast::channel(1024);
        let (hard_stop, _) = watch::channel(false);
        Ok(Worker {
            shared: Arc::new(Shared {
                store: self.store,
                clock: self.clock,
                verifier: Arc::new(verifier),
                handlers: self.handlers,
                queues: self.queues,
                worker_id: Arc::from(worker_id),
                concurrency: self.concurrency,
                lease_ms: duration_ms(self.lease),
                heartbeat: self.heartbeat,
                handler_timeout: self.handler_timeout,
                retry: self.retry,
                in_flight: AtomicUsize::new(0),
                capacity: Notify::new(),
                events,
                hard_stop,
            }),
            grace: self.grace,
            poll_interval: self.poll_interval,
        })
    }
}

/// Runs registered handlers for tasks claimed from the store. Build with
/// [`Worker::builder`], start with [`Worker::run`].
pub struct Worker {
    shared: Arc<Shared>,
    grace: Duration,
    poll_interval: Duration,
}

struct Shared {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    verifier: Arc<Verifier>,
    handlers: HashMap<String, Arc<dyn ErasedHandler>>,
    queues: Vec<String>,
    worker_id: Arc<str>,
    concurrency: usize,
    lease_ms: i64,
    heartbeat: Duration,
    handler_timeout: Duration,
    retry: RetryPolicy,
    /// Tasks claimed and not yet acknowledged.
    in_flight: AtomicUsize,
    /// Signalled by the acker whenever capacity is returned.
    capacity: Notify,
    events: broadcast::Sender<WorkerEvent>,
    /// Set when the grace period is over: running handlers stop and their
    /// tasks are released.
    hard_stop: watch::Sender<bool>,
}

/// A run that ended, on its way to the acker.
struct Finished {
    meta: Arc<TaskMeta>,
    outcome: Outcome,
    ran: Option<Duration>,
}

enum Outcome {
    Success(Option<Vec<u8>>),
    /// A failed attempt: retry or, out of attempts, dead with `max-attempts`.
    Failed(String),
    Dead(DeadReason, String),
    Release,
    LeaseLost,
}

impl Worker {
    /// A builder over `store`. Call `.signing(..)`, register handlers, then
    /// `.build()`.
    pub fn builder(store: Arc<dyn Store>) -> WorkerBuilder {
        WorkerBuilder {
            store,
            verifier: None,
            queues: vec![crate::producer::DEFAULT_QUEUE.to_owned()],
            concurrency: DEFAULT_CONCURRENCY,
            lease: DEFAULT_LEASE,
            heartbeat: DEFAULT_HEARTBEAT,
            handler_timeout: DEFAULT_HANDLER_TIMEOUT,
            retry: RetryPolicy::default(),
            grace: DEFAULT_SHUTDOWN_GRACE,
            poll_interval: DEFAULT_POLL_INTERVAL,
            clock: Arc::new(SystemClock),
            worker_id: None,
            handlers: HashMap::new(),
            duplicates: Vec::new(),
        }
    }

    /// The lease owner name this worker claims under.
    pub fn id(&self) -> &str {
        &self.shared.worker_id
    }

    /// Subscribes to task outcomes (after they are written). A slow
    /// subscriber misses events rather than slowing the worker.
    pub fn events(&self) -> broadcast::Receiver<WorkerEvent> {
        self.shared.events.subscribe()
    }

    /// Runs until `shutdown` fires, then stops claiming, lets running
    /// handlers finish within the grace period, releases the rest and
    /// returns once every outcome is written.
    ///
    /// Returns an error only when the store is closed under it.
    pub async fn run(self, mut shutdown: ShutdownSignal) -> Result<(), RuntimeError> {
        let shared = self.shared;
        tracing::info!(
            worker_id = %shared.worker_id,
            queues = ?shared.queues,
            concurrency = shared.concurrency,
            handlers = shared.handlers.len(),
            "worker started"
        );
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let acker = tokio::spawn(acker_loop(Arc::clone(&shared), done_rx));
        let mut store_failures = 0u32;
        let mut result = Ok(());

        while !shutdown.is_triggered() {
            let in_flight = shared.in_flight.load(Ordering::Acquire);
            let free = shared.concurrency.saturating_sub(in_flight);
            if free == 0 {
                tokio::select! {
                    _ = shared.capacity.notified() => {}
                    _ = shutdown.triggered() => {}
                }
                continue;
            }
            let request = ClaimRequest {
                queues: shared.queues.clone(),
                worker_id: shared.worker_id.to_string(),
                limit: free.min(MAX_CLAIM_BATCH),
                lease_ms: shared.lease_ms,
            };
            let rows = match shared.store.claim(request, shared.clock.now_ms()).await {
                Ok(rows) => {
                    store_failures = 0;
                    rows
                }
                Err(StoreError::Closed) => {
                    tracing::error!("the store was closed; the worker stops");
                    result = Err(RuntimeError::Store(StoreError::Closed));
                    break;
                }
                Err(e) => {
                    store_failures = store_failures.saturating_add(1);
                    let wait = store_backoff(store_failures);
                    if e.is_retryable() {
                        tracing::warn!(error = %e, retry_in = ?wait, "claim failed; retrying");
                    } else {
                        tracing::error!(error = %e, retry_in = ?wait, "claim failed; retrying");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.triggered() => {}
                    }
                    continue;
                }
            };
            if rows.is_empty() {
                tokio::select! {
                    _ = tokio::time::sleep(self.poll_interval) => {}
                    _ = shutdown.triggered() => {}
                }
                continue;
            }
            shared.in_flight.fetch_add(rows.len(), Ordering::AcqRel);
            dispatch(&shared, rows, &done_tx).await;
        }

        // Graceful shutdown: no more claims. Let running handlers finish.
        let deadline = tokio::time::Instant::now() + self.grace;
        loop {
            let notified = shared.capacity.notified();
            if shared.in_flight.load(Ordering::Acquire) == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let left = shared.in_flight.load(Ordering::Acquire);
                tracing::warn!(
                    tasks = left,
                    grace = ?self.grace,
                    "grace period over; releasing tasks still running"
                );
                shared.hard_stop.send_replace(true);
                break;
            }
        }
        drop(done_tx);
        if let Err(e) = acker.await {
            // The acker catches nothing itself; a panic there is a bug.
            tracing::error!(error = %e, "worker acknowledgement task failed");
        }
        tracing::info!(worker_id = %shared.worker_id, "worker stopped");
        result
    }
}

/// Wait before retrying a failed store call: 10 ms doubling to 1 s.
pub(crate) fn store_backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(7);
    Duration::from_millis((10u64 << exp).min(1000))
}

/// Verifies a claimed batch, refuses what must not run, starts the rest.
async fn dispatch(
    shared: &Arc<Shared>,
    rows: Vec<TaskRow>,
    done: &mpsc::UnboundedSender<Finished>,
) {
    let (checks, rows) = if shared.verifier.is_heavy(&rows) {
        let verifier = Arc::clone(&shared.verifier);
        let count = rows.len();
        match tokio::task::spawn_blocking(move || (verifier.check(&rows), rows)).await {
            Ok(pair) => pair,
            Err(e) => {
                // The rows moved into the failed closure; their leases will
                // expire and the rescuer will hand them out again.
                tracing::error!(error = %e, "signature verification task failed; the batch will be rescued after its lease expires");
                shared.in_flight.fetch_sub(count, Ordering::AcqRel);
                shared.capacity.notify_one();
                return;
            }
        }
    } else {
        (shared.verifier.check(&rows), rows)
    };
    let now = shared.clock.now_ms();
    for (row, check) in rows.into_iter().zip(checks) {
        let envelope = row.envelope;
        let meta = Arc::new(TaskMeta {
            id: envelope.id,
            queue: envelope.queue,
            name: envelope.name,
            headers: envelope.headers,
            attempt: row.attempt,
            max_attempts: envelope.max_attempts,
            worker_id: Arc::clone(&shared.worker_id),
        });
        let refuse = |reason, detail: String| Finished {
            meta: Arc::clone(&meta),
            outcome: Outcome::Dead(reason, detail),
            ran: None,
        };
        let finished = match check {
            Err(e) => {
                metrics::signature_invalid(e.reason());
                Some(refuse(
                    DeadReason::SignatureInvalid,
                    format!("{}: {}", e.reason(), e.message()),
                ))
            }
            Ok(()) => envelope.expires_at_ms.filter(|exp| *exp <= now).map(|exp| {
                refuse(
                    DeadReason::Expired,
                    format!(
                        "expired at {exp} (unix ms), {} ms before a worker got to it",
                        now.saturating_sub(exp)
                    ),
                )
            }),
        };
        if let Some(f) = finished {
            let _ = done.send(f);
            continue;
        }
        let Some(handler) = shared.handlers.get(&meta.name) else {
            let detail = format!(
                "no handler is registered for task {:?} on worker {}",
                meta.name, shared.worker_id
            );
            let _ = done.send(refuse(DeadReason::UnknownTask, detail));
            continue;
        };
        let fut = run_one(
            Arc::clone(shared),
            meta,
            Arc::clone(handler),
            envelope.args,
            done.clone(),
        );
        tokio::spawn(fut);
    }
}

/// Runs one handler: timeout, panic capture, heartbeats, hard stop.
async fn run_one(
    shared: Arc<Shared>,
    meta: Arc<TaskMeta>,
    handler: Arc<dyn ErasedHandler>,
    args: Vec<u8>,
    done: mpsc::UnboundedSender<Finished>,
) {
    let started = Instant::now();
    let run = handler.call(TaskContext::new(Arc::clone(&meta)), args);
    let guarded =
        tokio::time::timeout(shared.handler_timeout, AssertUnwindSafe(run).catch_unwind());
    tokio::pin!(guarded);
    // Heartbeats run beside the handler (polled in the same task, so the
    // handler keeps running while a heartbeat is in flight). The future only
    // completes when the lease is lost. Nothing is registered with the timer
    // until it is first polled, so a handler that finishes at once costs no
    // timer.
    let heartbeat_meta = Arc::clone(&meta);
    let heartbeats = heartbeat_until_lost(&shared, &heartbeat_meta);
    tokio::pin!(heartbeats);
    let mut stop = shared.hard_stop.subscribe();
    let outcome = tokio::select! {
        biased;
        result = &mut guarded => match result {
            Ok(Ok(Ok(value))) => Outcome::Success(value),
            Ok(Ok(Err(RunFailure::PayloadInvalid(msg)))) => {
                Outcome::Dead(DeadReason::PayloadInvalid, msg)
            }
            Ok(Ok(Err(RunFailure::Handler(e)))) if e.is_reject() => {
                Outcome::Dead(DeadReason::PayloadInvalid, e.message_chain())
            }
            Ok(Ok(Err(RunFailure::Handler(e)))) => Outcome::Failed(e.message_chain()),
            Ok(Err(panic)) => Outcome::Failed(format!(
                "handler panicked: {}",
                panic_message(panic.as_ref())
            )),
            Err(_elapsed) => Outcome::Failed(format!(
                "handler timed out after {:?}",
                shared.handler_timeout
            )),
        },
        () = &mut heartbeats => Outcome::LeaseLost,
        () = hard_stopped(&mut stop) => Outcome::Release,
    };
    let _ = done.send(Finished {
        meta,
        outcome,
        ran: Some(started.elapsed()),
    });
}

/// Extends the lease every heartbeat interval; returns once it is lost.
/// Other heartbeat errors are logged and the next heartbeat is tried on time.
async fn heartbeat_until_lost(shared: &Shared, meta: &TaskMeta) {
    let lease = lease_of(meta);
    loop {
        tokio::time::sleep(shared.heartbeat).await;
        match shared
            .store
            .heartbeat(&lease, shared.lease_ms, shared.clock.now_ms())
            .await
        {
            Ok(()) => {}
            Err(StoreError::LeaseLost { .. }) => return,
            Err(e) => {
                tracing::warn!(task_id = %meta.id, error = %e, "heartbeat failed; will try again");
            }
        }
    }
}

async fn hard_stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        // The worker is gone; nothing will ever ask this task to stop.
        std::future::pending::<()>().await;
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = panic.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s
    } else {
        "(non-string panic payload)"
    }
}

fn lease_of(meta: &TaskMeta) -> LeaseToken {
    LeaseToken {
        task_id: meta.id.clone(),
        worker_id: meta.worker_id.to_string(),
        attempt: meta.attempt,
    }
}

/// Turns finished runs into store writes, batching successes.
async fn acker_loop(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Finished>) {
    const ACK_BATCH: usize = 2048;
    let mut buf = Vec::with_capacity(ACK_BATCH);
    loop {
        let n = rx.recv_many(&mut buf, ACK_BATCH).await;
        if n == 0 {
            return;
        }
        ack(&shared, &mut buf).await;
        shared.in_flight.fetch_sub(n, Ordering::AcqRel);
        shared.capacity.notify_one();
    }
}

async fn ack(shared: &Shared, batch: &mut Vec<Finished>) {
    let now = shared.clock.now_ms();
    let mut successes: Vec<Finished> = Vec::new();
    let mut others = Vec::new();
    for f in batch.drain(..) {
        match f.outcome {
            Outcome::Success(_) => successes.push(f),
            _ => others.push(f),
        }
    }
    // Successes go in one batch; the rest are written concurrently so the
    // store's group commit can take them together.
    futures::join!(
        complete_all(shared, successes, now),
        futures::future::join_all(others.into_iter().map(|f| settle(shared, f, now))),
    );
}

async fn complete_all(shared: &Shared, successes: Vec<Finished>, now: i64) {
    if successes.is_empty() {
        return;
    }
    // Built afresh for each try: the store takes the items by value.
    let items = || -> Vec<(LeaseToken, Option<Vec<u8>>)> {
        successes
            .iter()
            .map(|f| (lease_of(&f.meta), success_result(f)))
            .collect()
    };
    let results = retry_store(|| shared.store.complete_batch(items(), now)).await;
    let results = match results {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, tasks = successes.len(), "could not record successes; the tasks will run again after their leases expire");
            for f in &successes {
                publish(
                    shared,
                    &f.meta,
                    WorkerEventKind::StoreFailed {
                        error: e.to_string(),
                    },
                );
            }
            return;
        }
    };
    let mut run: Option<(&str, &str, u64)> = None;
    for (f, r) in successes.iter().zip(results) {
        let kind = match r {
            Ok(()) => {
                if let Some(d) = f.ran {
                    metrics::run_duration(&f.meta.queue, &f.meta.name, d);
                }
                match &mut run {
                    Some((q, n, c)) if *q == f.meta.queue && *n == f.meta.name => *c += 1,
                    _ => {
                        if let Some((q, n, c)) = run {
                            metrics::succeeded(q, n, c);
                        }
                        run = Some((&f.meta.queue, &f.meta.name, 1));
                    }
                }
                tracing::debug!(task_id = %f.meta.id, task = %f.meta.name, attempt = f.meta.attempt, "task succeeded");
                WorkerEventKind::Succeeded
            }
            Err(StoreError::LeaseLost { .. }) => {
                tracing::info!(task_id = %f.meta.id, "lease lost before the success was recorded; the result is dropped");
                WorkerEventKind::LeaseLost
            }
            Err(e) if e.is_retryable() => {
                let lease = lease_of(&f.meta);
                let result = success_result(f);
                match retry_store(|| shared.store.complete(&lease, result.clone(), now)).await {
                    Ok(()) => WorkerEventKind::Succeeded,
                    Err(e) => store_failed(&f.meta, &e),
                }
            }
            Err(e) => store_failed(&f.meta, &e),
        };
        publish(shared, &f.meta, kind);
    }
    if let Some((q, n, c)) = run {
        metrics::succeeded(q, n, c);
    }
}

/// The result bytes of a successful run.
fn success_result(f: &Finished) -> Option<Vec<u8>> {
    match &f.outcome {
        Outcome::Success(r) => r.clone(),
        _ => None,
    }
}

fn store_failed(meta: &TaskMeta, e: &StoreError) -> WorkerEventKind {
    tracing::error!(task_id = %meta.id, error = %e, "could not record the outcome; the task will be rescued after its lease expires");
    WorkerEventKind::StoreFailed {
        error: e.to_string(),
    }
}

/// Writes one non-success outcome.
async fn settle(shared: &Shared, f: Finished, now: i64) {
    let meta = &f.meta;
    let lease = lease_of(meta);
    let (write, kind) = match f.outcome {
        Outcome::Success(_) => return,
        Outcome::LeaseLost => {
            tracing::info!(task_id = %meta.id, "lease lost while running; the run was abandoned");
            publish(shared, meta, WorkerEventKind::LeaseLost);
            return;
        }
        Outcome::Release => {
            let r = retry_store(|| shared.store.release(&lease, now)).await;
            (r, WorkerEventKind::Released)
        }
        Outcome::Dead(reason, detail) => {
            let r = retry_store(|| {
                shared.store.fail(
                    &lease,
                    &detail,
                    FailOutcome::Dead {
                        reason,
                        detail: detail.clone(),
                    },
                    now,
                )
            })
            .await;
            if r.is_ok() {
                metrics::dead(&meta.queue, &meta.name, reason);
                tracing::warn!(task_id = %meta.id, task = %meta.name, %reason, %detail, "task dead-lettered");
            }
            (r, WorkerEventKind::Dead { reason, detail })
        }
        Outcome::Failed(error) => {
            metrics::failed(&meta.queue, &meta.name);
            if let Some(d) = f.ran {
                metrics::run_duration(&meta.queue, &meta.name, d);
            }
            if meta.attempt >= meta.max_attempts {
                let detail = format!(
                    "all {} attempts failed; last error: {error}",
                    meta.max_attempts
                );
                let reason = DeadReason::MaxAttempts;
                let r = retry_store(|| {
                    shared.store.fail(
                        &lease,
                        &error,
                        FailOutcome::Dead {
                            reason,
                            detail: detail.clone(),
                        },
                        now,
                    )
                })
                .await;
                if r.is_ok() {
                    metrics::dead(&meta.queue, &meta.name, reason);
                    tracing::warn!(task_id = %meta.id, task = %meta.name, %error, "task failed its last attempt and was dead-lettered");
                }
                (r, WorkerEventKind::Dead { reason, detail })
            } else {
                let wait = shared.retry.delay(meta.attempt, &mut rand::thread_rng());
                let at_ms = now.saturating_add(duration_ms(wait));
                let r = retry_store(|| {
                    shared
                        .store
                        .fail(&lease, &error, FailOutcome::Retry { at_ms }, now)
                })
                .await;
                if r.is_ok() {
                    metrics::retried(&meta.queue, &meta.name);
                    tracing::info!(task_id = %meta.id, task = %meta.name, attempt = meta.attempt, retry_in = ?wait, %error, "task attempt failed; will retry");
                }
                (r, WorkerEventKind::Retrying { at_ms, error })
            }
        }
    };
    let kind = match write {
        Ok(()) => kind,
        Err(StoreError::LeaseLost { .. }) => {
            tracing::info!(task_id = %meta.id, "lease lost before the outcome was recorded; dropped");
            WorkerEventKind::LeaseLost
        }
        Err(e) => store_failed(meta, &e),
    };
    publish(shared, meta, kind);
}

/// Retries a store call on transient errors for up to [`STORE_RETRY_BUDGET`].
pub(crate) async fn retry_store<T, F, Fut>(mut op: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let started = Instant::now();
    let mut failures = 0u32;
    loop {
        match op().await {
            Err(e) if e.is_retryable() && started.elapsed() < STORE_RETRY_BUDGET => {
                failures = failures.saturating_add(1);
                let wait = store_backoff(failures);
                tracing::warn!(error = %e, retry_in = ?wait, "store busy; retrying");
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

fn publish(shared: &Shared, meta: &TaskMeta, kind: WorkerEventKind) {
    if shared.events.receiver_count() == 0 {
        return;
    }
    let _ = shared.events.send(WorkerEvent {
        task_id: meta.id.clone(),
        queue: meta.queue.clone(),
        name: meta.name.clone(),
        attempt: meta.attempt,
        kind,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_backoff_grows_and_caps() {
        assert_eq!(store_backoff(1), Duration::from_millis(10));
        assert_eq!(store_backoff(2), Duration::from_millis(20));
        assert_eq!(store_backoff(100), Duration::from_millis(1000));
    }

    #[test]
    fn panic_messages_are_extracted() {
        let p: Box<dyn std::any::Any + Send> = Box::new("boom");
        assert_eq!(panic_message(p.as_ref()), "boom");
        let p: Box<dyn std::any::Any + Send> = Box::new(String::from("bang"));
        assert_eq!(panic_message(p.as_ref()), "bang");
        let p: Box<dyn std::any::Any + Send> = Box::new(3u8);
        assert!(panic_message(p.as_ref()).contains("non-string"));
    }
}
