//! The producer: builds task envelopes, signs them with the active key and
//! enqueues them.
//!
//! Args are serialised once; those exact bytes are signed and stored, and a
//! worker verifies the same bytes before decoding them.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use signet_sign::{KeyRing, SigningConfig, TaskEnvelope};
use signet_store::{
    Enqueued, NewTask, SignatureRecord, Store, TaskId, DEFAULT_MAX_ATTEMPTS, MAX_ARGS_BYTES,
    MAX_QUEUE_NAME_LEN, RESERVED_QUEUE_PREFIX,
};

use crate::clock::{duration_ms, Clock, SystemClock};
use crate::error::RuntimeError;
use crate::metrics;

/// The queue used when a spec names none.
pub const DEFAULT_QUEUE: &str = "default";
/// Longest task name.
pub const MAX_TASK_NAME_LEN: usize = 128;
/// Longest idempotency key.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 256;
/// Longest callback URL.
pub const MAX_CALLBACK_URL_LEN: usize = 2048;

/// A time given either as an instant or relative to the moment of enqueue.
#[derive(Clone, Copy, Debug)]
enum When {
    At(i64),
    In(Duration),
}

impl When {
    fn resolve(self, now_ms: i64) -> i64 {
        match self {
            When::At(ms) => ms,
            When::In(d) => now_ms.saturating_add(duration_ms(d)),
        }
    }
}

/// A task to enqueue, built with chained setters:
///
/// ```
/// # use signet_runtime::TaskSpec;
/// # use std::time::Duration;
/// let spec = TaskSpec::new("email.send", &serde_json::json!({ "to": "a@example.com" }))
///     .queue("mail")
///     .priority(5)
///     .delay(Duration::from_secs(30))
///     .max_attempts(10)
///     .header("tenant", "acme")
///     .idempotency_key("welcome-42");
/// # let _ = spec;
/// ```
#[derive(Debug)]
pub struct TaskSpec {
    name: String,
    args: Result<Vec<u8>, serde_json::Error>,
    raw: bool,
    queue: String,
    priority: i32,
    not_before: Option<When>,
    expires_at: Option<When>,
    max_attempts: u32,
    headers: Vec<(String, String)>,
    idempotency_key: Option<String>,
    callback_url: Option<String>,
}

impl TaskSpec {
    /// A task `name` whose args are `args` serialised to JSON (once; those
    /// bytes are what is signed). A serialisation error is reported by
    /// `enqueue`.
    pub fn new<A: Serialize + ?Sized>(name: impl Into<String>, args: &A) -> Self {
        Self::with_args(name.into(), serde_json::to_vec(args), false)
    }

    /// A task whose args are the given JSON bytes, stored and signed as they
    /// are. `enqueue` checks that they are JSON.
    pub fn raw(name: impl Into<String>, json: impl Into<Vec<u8>>) -> Self {
        Self::with_args(name.into(), Ok(json.into()), true)
    }

    fn with_args(name: String, args: Result<Vec<u8>, serde_json::Error>, raw: bool) -> Self {
        Self {
            name,
            args,
            raw,
            queue: DEFAULT_QUEUE.to_owned(),
            priority: 0,
            not_before: None,
            expires_at: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            headers: Vec::new(),
            idempotency_key: None,
            callback_url: None,
        }
    }

    /// The queue (default [`DEFAULT_QUEUE`]).
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = queue.into();
        self
    }

    /// Priority among due tasks of the queue; higher runs first. Not signed.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Not to run until `delay` after enqueue.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.not_before = Some(When::In(delay));
        self
    }

    /// Not to run before this time (unix ms).
    pub fn not_before_ms(mut self, at_ms: i64) -> Self {
        self.not_before = Some(When::At(at_ms));
        self
    }

    /// Not to run after `ttl` from enqueue: a worker that gets to it later
    /// dead-letters it with `expired`.
    pub fn expires_in(mut self, ttl: Duration) -> Self {
        self.expires_at = Some(When::In(ttl));
        self
    }

    /// Not to run after this time (unix ms).
    pub fn expires_at_ms(mut self, at_ms: i64) -> Self {
        self.expires_at = Some(When::At(at_ms));
        self
    }

    /// Attempts allowed, the first one included (default
    /// [`DEFAULT_MAX_ATTEMPTS`]).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }

    /// Adds a signed header (names are case-insensitive; each name once).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Makes enqueue exactly-once per key while the first task is retained.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Where a signed callback goes when the task finishes.
    pub fn callback_url(mut self, url: impl Into<String>) -> Self {
        self.callback_url = Some(url.into());
        self
    }

    /// The task name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Builds the envelope (fresh id, times resolved against `now_ms`).
    fn into_parts(self, now_ms: i64) -> Result<(TaskEnvelope, i32, Option<String>), RuntimeError> {
        let args = self.args.map_err(RuntimeError::Args)?;
        check_args_len(&self.name, &args)?;
        if self.raw {
            serde_json::from_slice::<serde::de::IgnoredAny>(&args).map_err(|e| {
                RuntimeError::invalid(format!(
                    "args of task {:?} are not valid JSON: {e}",
                    self.name
                ))
            })?;
        }
        let headers = TaskEnvelope::normalise_headers(self.headers)
            .map_err(|e| RuntimeError::invalid(e.to_string()))?;
        let envelope = TaskEnvelope {
            id: TaskId::generate().into(),
            queue: self.queue,
            name: self.name,
            args,
            headers,
            created_at_ms: now_ms,
            not_before_ms: self.not_before.map(|w| w.resolve(now_ms)),
            expires_at_ms: self.expires_at.map(|w| w.resolve(now_ms)),
            max_attempts: self.max_attempts,
            callback_url: self.callback_url,
        };
        Ok((envelope, self.priority, self.idempotency_key))
    }
}

/// Checks what a store would accept, so a bad task fails here with a message
/// that says what to change.
pub fn validate(task: &NewTask) -> Result<(), RuntimeError> {
    let e = &task.envelope;
    TaskId::parse(&e.id).map_err(|err| RuntimeError::invalid(err.to_string()))?;
    check_name("queue", &e.queue, MAX_QUEUE_NAME_LEN).map_err(RuntimeError::InvalidTask)?;
    check_not_reserved(&e.queue).map_err(RuntimeError::InvalidTask)?;
    check_name("task name", &e.name, MAX_TASK_NAME_LEN).map_err(RuntimeError::InvalidTask)?;
    check_args_len(&e.name, &e.args)?;
    if e.max_attempts == 0 {
        return Err(RuntimeError::invalid(format!(
            "max_attempts of task {:?} is 0; it must be at least 1",
            e.name
        )));
    }
    if let (Some(nb), Some(exp)) = (e.not_before_ms, e.expires_at_ms) {
        if exp <= nb {
            return Err(RuntimeError::invalid(format!(
                "task {:?} expires ({exp}) before it may run ({nb}); move expires_at after not_before",
                e.name
            )));
        }
    }
    if let Some(key) = &task.idempotency_key {
        if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN {
            return Err(RuntimeError::invalid(format!(
                "idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} bytes, got {}",
                key.len()
            )));
        }
    }
    if let Some(url) = &e.callback_url {
        let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
        if !scheme_ok
            || url.len() > MAX_CALLBACK_URL_LEN
            || url.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(RuntimeError::invalid(format!(
                "callback URL {url:?} is not an http(s) URL of at most {MAX_CALLBACK_URL_LEN} characters without spaces"
            )));
        }
    }
    Ok(())
}

fn check_args_len(name: &str, args: &[u8]) -> Result<(), RuntimeError> {
    if args.len() > MAX_ARGS_BYTES {
        return Err(RuntimeError::invalid(format!(
            "args of task {name:?} are {} bytes; the limit is {MAX_ARGS_BYTES} bytes (store large payloads elsewhere and pass a reference)",
            args.len()
        )));
    }
    Ok(())
}

/// Refuses queues that belong to Signet itself ([`RESERVED_QUEUE_PREFIX`],
/// where messages live): a user task there would be taken for a message.
pub fn check_not_reserved(queue: &str) -> Result<(), String> {
    if queue.starts_with(RESERVED_QUEUE_PREFIX) {
        return Err(format!(
            "queue {queue:?} is reserved: names starting with {RESERVED_QUEUE_PREFIX:?} belong to Signet (messages are delivered from there); choose another queue name"
        ));
    }
    Ok(())
}

/// Checks a queue or task name; the error says what to change.
pub(crate) fn check_name(what: &str, value: &str, max: usize) -> Result<(), String> {
    if value.is_empty() || value.len() > max {
        return Err(format!("{what} {value:?} must be 1 to {max} characters"));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/')))
    {
        return Err(format!(
            "{what} {value:?} contains {c:?}; use only A-Z a-z 0-9 . _ - : /"
        ));
    }
    Ok(())
}

/// Signs and enqueues tasks.
///
/// Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Producer {
    store: Arc<dyn Store>,
    ring: Arc<KeyRing>,
    required: bool,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("ring", &self.ring)
            .field("required", &self.required)
            .finish_non_exhaustive()
    }
}

impl Producer {
    /// A producer signing with the active key of `signing.ring`.
    ///
    /// Fails when signing is required but no key can sign. With no signing
    /// key and signing not required, tasks are enqueued unsigned and a
    /// warning is logged once, here.
    pub fn new(store: Arc<dyn Store>, signing: &SigningConfig) -> Result<Self, RuntimeError> {
        Self::with_ring(store, Arc::new(signing.ring.duplicate()), signing.required)
    }

    /// A producer over an existing ring (shared with other components).
    pub fn with_ring(
        store: Arc<dyn Store>,
        ring: Arc<KeyRing>,
        required: bool,
    ) -> Result<Self, RuntimeError> {
        match ring.active() {
            Some(key) => tracing::info!(
                algorithm = %key.algorithm(),
                key_id = %key.id(),
                "producer signs tasks"
            ),
            None if required => {
                return Err(RuntimeError::Config(
                    "signing is required but no key can sign; set SIGNET_SIGNING_KEYS (HMAC) or SIGNET_SIGNING_PRIVATE_KEYS (Ed25519) with SIGNET_SIGNING_ACTIVE_KEY, or set SIGNET_SIGNING_REQUIRED=false to enqueue unsigned tasks".into(),
                ))
            }
            None => tracing::warn!(
                "no signing key is configured: tasks are enqueued UNSIGNED and workers that require signatures will dead-letter them"
            ),
        }
        Ok(Self {
            store,
            ring,
            required,
            clock: Arc::new(SystemClock),
        })
    }

    /// Replaces the clock (tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The store this producer writes to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Signs and enqueues one task.
    pub async fn enqueue(&self, spec: TaskSpec) -> Result<Enqueued, RuntimeError> {
        let now = self.clock.now_ms();
        let task = self.prepare(spec, now)?;
        let out = self.store.enqueue(task, now).await?;
        if out.created {
            metrics::enqueued(out.task.queue(), &out.task.envelope.name, 1);
        }
        Ok(out)
    }

    /// Signs and enqueues many tasks atomically (all or none), in order.
    pub async fn enqueue_batch(&self, specs: Vec<TaskSpec>) -> Result<Vec<Enqueued>, RuntimeError> {
        let now = self.clock.now_ms();
        let tasks = specs
            .into_iter()
            .map(|s| self.prepare(s, now))
            .collect::<Result<Vec<_>, _>>()?;
        self.store_batch(tasks, now).await
    }

    /// Enqueues a task signed elsewhere (a client's envelope that the server
    /// verified at the door). The envelope and signature are stored as given.
    /// Unsigned tasks are refused when signing is required.
    pub async fn enqueue_presigned(&self, task: NewTask) -> Result<Enqueued, RuntimeError> {
        let mut out = self.enqueue_presigned_batch(vec![task]).await?;
        out.pop()
            .ok_or_else(|| RuntimeError::invalid("the store returned no result for the task"))
    }

    /// Enqueues many presigned tasks atomically, in order.
    pub async fn enqueue_presigned_batch(
        &self,
        tasks: Vec<NewTask>,
    ) -> Result<Vec<Enqueued>, RuntimeError> {
        for task in &tasks {
            validate(task)?;
            if self.required && task.signature.is_none() {
                return Err(RuntimeError::invalid(format!(
                    "task {:?} is unsigned and signing is required; sign it or enqueue through a producer with a key",
                    task.envelope.name
                )));
            }
        }
        self.store_batch(tasks, self.clock.now_ms()).await
    }

    /// The ring tasks (and messages) are signed with.
    pub(crate) fn ring(&self) -> &Arc<KeyRing> {
        &self.ring
    }

    /// Now, from the producer's clock.
    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Signs `task` with the active key, when there is one.
    pub(crate) fn sign_task(&self, task: &mut NewTask) -> Result<(), RuntimeError> {
        if self.ring.active().is_some() {
            let sig = task.envelope.sign(&self.ring)?;
            task.signature = Some(SignatureRecord {
                alg: sig.alg,
                key_id: sig.key_id.as_str().to_owned(),
                sig: sig.sig,
            });
        }
        Ok(())
    }

    pub(crate) async fn store_batch(
        &self,
        tasks: Vec<NewTask>,
        now: i64,
    ) -> Result<Vec<Enqueued>, RuntimeError> {
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        let out = self.store.enqueue_batch(tasks, now).await?;
        // One counter update per run of same (queue, task) rather than per task.
        let mut run: Option<(&str, &str, u64)> = None;
        for e in out.iter().filter(|e| e.created) {
            let (q, n) = (e.task.queue(), e.task.envelope.name.as_str());
            match &mut run {
                Some((rq, rn, count)) if *rq == q && *rn == n => *count += 1,
                _ => {
                    if let Some((rq, rn, count)) = run {
                        metrics::enqueued(rq, rn, count);
                    }
                    run = Some((q, n, 1));
                }
            }
        }
        if let Some((rq, rn, count)) = run {
            metrics::enqueued(rq, rn, count);
        }
        Ok(out)
    }

    /// Builds, validates and signs one task.
    fn prepare(&self, spec: TaskSpec, now: i64) -> Result<NewTask, RuntimeError> {
        let (envelope, priority, idempotency_key) = spec.into_parts(now)?;
        let mut task = NewTask {
            envelope,
            signature: None,
            priority,
            idempotency_key,
        };
        validate(&task)?;
        self.sign_task(&mut task)?;
        Ok(task)
    }
}
