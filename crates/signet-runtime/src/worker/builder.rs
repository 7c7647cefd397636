//! Configuring a worker: keys, queues, handlers, capacity, leases.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use signet_sign::{KeyRing, SigningConfig};
use signet_store::Store;
use tokio::sync::broadcast;

use super::run::Worker;
use super::shared::Shared;
use crate::backoff::RetryPolicy;
use crate::claim::{default_owner, ClaimLoop, ClaimSettings};
use crate::clock::{Clock, SystemClock};
use crate::error::RuntimeError;
use crate::handler::{ErasedHandler, HandlerResult, TaskContext, TypedHandler};
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
/// Default longest wait for new work before claiming again, when the
/// store does not signal it sooner.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Most tasks asked for in one claim.
pub const MAX_CLAIM_BATCH: usize = 1000;

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

    /// Longest wait for new work before claiming again when the queues were
    /// empty ([`DEFAULT_POLL_INTERVAL`]). Stores that signal new work
    /// ([`Store::wait_for_work`]) wake the worker sooner; this is the
    /// safety net.
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
        let worker_id: Arc<str> =
            Arc::from(self.worker_id.unwrap_or_else(|| default_owner("worker")));
        let (events, _) = broadcast::channel(1024);
        let (claims, leases) = ClaimLoop::new(ClaimSettings {
            role: "worker",
            store: Arc::clone(&self.store),
            clock: Arc::clone(&self.clock),
            queues: self.queues,
            owner: Arc::clone(&worker_id),
            concurrency: self.concurrency,
            max_batch: MAX_CLAIM_BATCH,
            poll_interval: self.poll_interval,
            grace: self.grace,
            lease: self.lease,
            heartbeat: self.heartbeat,
        })?;
        Ok(Worker {
            shared: Arc::new(Shared {
                store: self.store,
                clock: self.clock,
                verifier: Arc::new(verifier),
                handlers: self.handlers,
                worker_id,
                leases,
                handler_timeout: self.handler_timeout,
                retry: self.retry,
                events,
            }),
            claims,
        })
    }
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
}
