//! The producer: builds task envelopes, signs them with the active key and
//! enqueues them.
//!
//! Args are serialised once; those exact bytes are signed and stored, and a
//! worker verifies the same bytes before decoding them.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde::Serialize;
use signet_sign::{Algorithm, KeyRing, SigningConfig, TaskEnvelope};
use signet_store::rules::{self, FieldError};
use signet_store::{
    Enqueued, Fingerprint, IdempotencyScope, NewTask, SignatureRecord, Store, TaskId,
    DEFAULT_MAX_ATTEMPTS,
};

use crate::clock::{duration_ms, Clock, SystemClock};
use crate::error::RuntimeError;
use crate::metrics;

/// The queue used when a spec names none.
pub const DEFAULT_QUEUE: &str = "default";

/// Most tasks one [`Producer::enqueue_items`] call (`POST /v1/tasks/batch`)
/// takes: enough to amortise a round trip and a commit, few enough that one
/// batch stays one short write.
pub const MAX_BATCH_TASKS: usize = 1000;

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
///
/// Every field is checked against [`signet_store::rules`] when the task is
/// enqueued; a refusal is a [`RuntimeError::InvalidField`] naming the field.
#[derive(Debug)]
pub struct TaskSpec {
    name: String,
    args: Result<Vec<u8>, serde_json::Error>,
    queue: String,
    priority: i32,
    delay_ms: Option<i64>,
    not_before_ms: Option<i64>,
    expires_at: Option<When>,
    max_attempts: u32,
    headers: Vec<(String, String)>,
    idempotency_key: Option<String>,
    idempotency_scope: IdempotencyScope,
    callback_url: Option<String>,
    id: Option<String>,
    created_at_ms: Option<i64>,
}

impl TaskSpec {
    /// A task `name` whose args are `args` serialised to JSON (once; those
    /// bytes are what is signed). A serialisation error is reported by
    /// `enqueue`.
    pub fn new<A: Serialize + ?Sized>(name: impl Into<String>, args: &A) -> Self {
        Self::with_args(name.into(), serde_json::to_vec(args))
    }

    /// A task whose args are the given JSON bytes, stored and signed as they
    /// are. `enqueue` checks that they are JSON.
    pub fn raw(name: impl Into<String>, json: impl Into<Vec<u8>>) -> Self {
        Self::with_args(name.into(), Ok(json.into()))
    }

    fn with_args(name: String, args: Result<Vec<u8>, serde_json::Error>) -> Self {
        Self {
            name,
            args,
            queue: DEFAULT_QUEUE.to_owned(),
            priority: 0,
            delay_ms: None,
            not_before_ms: None,
            expires_at: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            headers: Vec::new(),
            idempotency_key: None,
            idempotency_scope: IdempotencyScope::Local,
            callback_url: None,
            id: None,
            created_at_ms: None,
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

    /// Not to run until `delay` after enqueue (at most a year; give this
    /// or a `not_before` time, not both).
    pub fn delay(self, delay: Duration) -> Self {
        self.delay_ms(duration_ms(delay))
    }

    /// Not to run until `delay_ms` after enqueue (0 to a year; give this
    /// or a `not_before` time, not both).
    pub fn delay_ms(mut self, delay_ms: i64) -> Self {
        self.delay_ms = Some(delay_ms);
        self
    }

    /// Not to run before this time (unix ms, at most a year ahead).
    pub fn not_before_ms(mut self, at_ms: i64) -> Self {
        self.not_before_ms = Some(at_ms);
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

    /// Makes enqueue exactly-once per key while the first task is retained:
    /// enqueued again with the same request, the first task comes back
    /// (`created: false`); with a different one, the enqueue fails with
    /// [`RuntimeError::IdempotencyConflict`] naming what differs.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Whose idempotency key it is (default [`IdempotencyScope::Local`]):
    /// the server gives each API key its own scope, Signet's own keys use
    /// [`IdempotencyScope::System`].
    pub fn idempotency_scope(mut self, scope: IdempotencyScope) -> Self {
        self.idempotency_scope = scope;
        self
    }

    /// Where a signed callback goes when the task finishes.
    pub fn callback_url(mut self, url: impl Into<String>) -> Self {
        self.callback_url = Some(url.into());
        self
    }

    /// The task id a client chose and signed (`task_…`); only for
    /// [`Producer::enqueue_signed`].
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// The creation time a client signed (unix ms); only for
    /// [`Producer::enqueue_signed`].
    pub fn created_at_ms(mut self, at_ms: i64) -> Self {
        self.created_at_ms = Some(at_ms);
        self
    }

    /// Applies `set` when `value` is given: optional request fields map
    /// onto the setters in one chain (`.with(req.priority, TaskSpec::priority)`).
    pub fn with<T>(self, value: Option<T>, set: impl FnOnce(Self, T) -> Self) -> Self {
        match value {
            Some(v) => set(self, v),
            None => self,
        }
    }

    /// The task name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks the task this spec makes at `now_ms` as [`Producer::enqueue`]
    /// would, without signing or storing it.
    pub(crate) fn check(self, now_ms: i64) -> Result<(), RuntimeError> {
        self.into_task(now_ms, false).map(|_| ())
    }

    /// Builds the task (times resolved against `now_ms`) and checks it
    /// against the input rules. `client_signed`: the id and creation time
    /// are the client's (required), and a relative delay cannot be signed.
    fn into_task(self, now_ms: i64, client_signed: bool) -> Result<NewTask, RuntimeError> {
        let args = self.args.map_err(RuntimeError::Args)?;
        if client_signed && self.delay_ms.is_some() {
            return Err(FieldError::new(
                "delay_ms",
                "not allowed with a client signature (the run time must be signed); use not_before",
            )
            .into());
        }
        let not_before_ms = rules::first_run(Some(now_ms), self.delay_ms, self.not_before_ms)?;
        let (id, created_at_ms) = if client_signed {
            let id = self
                .id
                .ok_or_else(|| FieldError::new("id", "required with a client signature"))?;
            let created = self
                .created_at_ms
                .ok_or_else(|| FieldError::new("created_at", "required with a client signature"))?;
            (id, created)
        } else {
            if self.id.is_some() {
                return Err(FieldError::new("id", "only allowed with a client signature").into());
            }
            if self.created_at_ms.is_some() {
                return Err(
                    FieldError::new("created_at", "only allowed with a client signature").into(),
                );
            }
            (TaskId::generate().into(), now_ms)
        };
        let headers = rules::task_headers(self.headers)?;
        let asked = AskedTiming {
            delay_ms: self.delay_ms,
            not_before_ms: self.not_before_ms,
            expires_at: self.expires_at,
        };
        let mut task = NewTask {
            envelope: TaskEnvelope {
                id,
                queue: self.queue,
                name: self.name,
                args,
                headers,
                created_at_ms,
                not_before_ms,
                expires_at_ms: self.expires_at.map(|w| w.resolve(now_ms)),
                max_attempts: self.max_attempts,
                callback_url: self.callback_url,
            },
            signature: None,
            priority: self.priority,
            idempotency_key: self.idempotency_key,
            idempotency_scope: self.idempotency_scope,
            fingerprint: Fingerprint::new(),
        };
        if task.idempotency_key.is_some() {
            task.fingerprint = task_fingerprint(&task.envelope, task.priority, &asked);
        }
        task.check_rules(now_ms)?;
        Ok(task)
    }
}

/// The times of a task as the caller asked for them, before they were
/// resolved against the time of enqueue.
struct AskedTiming {
    delay_ms: Option<i64>,
    not_before_ms: Option<i64>,
    expires_at: Option<When>,
}

/// The fingerprint of a task request: every field the caller chose, named
/// as `POST /v1/tasks` names them. Not included: the id and creation time
/// (the server's, or new with each client signature), the signature, and
/// the idempotency key itself. Times are compared as asked (`delay_ms`
/// 30 000 stays the same request a second later).
fn task_fingerprint(env: &TaskEnvelope, priority: i32, asked: &AskedTiming) -> Fingerprint {
    let mut headers = Vec::new();
    for (name, value) in &env.headers {
        headers.extend_from_slice(name.as_bytes());
        headers.push(0);
        headers.extend_from_slice(value.as_bytes());
        headers.push(0);
    }
    let expires = asked.expires_at.map(|w| match w {
        When::At(ms) => format!("at:{ms}"),
        When::In(d) => format!("in:{}", duration_ms(d)),
    });
    Fingerprint::new()
        .field("queue", &env.queue)
        .field("task", &env.name)
        .field("args", &env.args)
        .field("headers", headers)
        .optional("delay_ms", asked.delay_ms.map(|d| d.to_string()))
        .optional("not_before", asked.not_before_ms.map(|t| t.to_string()))
        .optional("expires_at", expires)
        .field("max_attempts", env.max_attempts.to_string())
        .field("priority", priority.to_string())
        .optional("callback_url", env.callback_url.as_deref())
}

/// Refuses a batch of `len` items that is empty or larger than
/// [`MAX_BATCH_TASKS`], naming the list `items` (`tasks`, `messages`).
pub(crate) fn check_batch_len(items: &str, len: usize) -> Result<(), RuntimeError> {
    if len == 0 || len > MAX_BATCH_TASKS {
        return Err(RuntimeError::field(
            items,
            format!(
                "a batch holds 1 to {MAX_BATCH_TASKS} {items}, got {len}; split it into several batches"
            ),
        ));
    }
    Ok(())
}

/// Refuses a batch in which an idempotency key (in its scope and kind)
/// comes back with a different request than the first task of the batch
/// that holds it, naming the later task: the store would only say which
/// key.
fn check_keys_within_batch(tasks: &[NewTask]) -> Result<(), RuntimeError> {
    let mut first: std::collections::HashMap<(&str, &str, &str), usize> =
        std::collections::HashMap::new();
    for (index, task) in tasks.iter().enumerate() {
        let Some(claim) = task.idempotency() else {
            continue;
        };
        let id = (claim.scope.as_str(), claim.kind.as_str(), claim.key);
        match first.get(&id) {
            Some(&earlier) => claim
                .check_same_request(tasks[earlier].fingerprint.encode().as_deref())
                .map_err(|e| RuntimeError::BatchItem {
                    index,
                    error: Box::new(e.into()),
                })?,
            None => {
                first.insert(id, index);
            }
        }
    }
    Ok(())
}

/// A signature a client made over its own envelope, as it was sent: the
/// algorithm's name, the key id and the signature in standard base64.
#[derive(Clone, Debug)]
pub struct ClientSignature {
    /// `hmac-sha256` or `ed25519`.
    pub alg: String,
    /// The key id (must be in the producer's ring).
    pub key_id: String,
    /// The signature over the canonical envelope bytes, standard base64.
    pub sig_base64: String,
}

/// One task of a batch for [`Producer::enqueue_items`]: signed by the
/// producer (`signature: None`) or by the client, as
/// [`Producer::enqueue`] and [`Producer::enqueue_signed`] take them.
#[derive(Debug)]
pub struct BatchItem {
    /// The task.
    pub spec: TaskSpec,
    /// The client's signature over its own envelope, if the client signed.
    pub signature: Option<ClientSignature>,
}

/// Signs and enqueues tasks.
///
/// Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Producer {
    store: Arc<dyn Store>,
    ring: Arc<KeyRing>,
    required: bool,
    dev: bool,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("ring", &self.ring)
            .field("required", &self.required)
            .field("dev", &self.dev)
            .finish_non_exhaustive()
    }
}

impl Producer {
    /// A producer signing with the active key of `signing.ring`.
    ///
    /// Fails when signing is required but no key can sign. With no signing
    /// key and signing not required, tasks are enqueued unsigned and a
    /// warning is logged once, here.
    /// With `signing.dev` (`SIGNET_DEV`), [`Producer::enqueue_signed`]
    /// stores client signatures without verifying them.
    pub fn new(store: Arc<dyn Store>, signing: &SigningConfig) -> Result<Self, RuntimeError> {
        let mut producer =
            Self::with_ring(store, Arc::new(signing.ring.duplicate()), signing.required)?;
        producer.dev = signing.dev;
        Ok(producer)
    }

    /// A producer for a server, which may hold no signing key (verify-only):
    /// it never refuses to start; [`Producer::enqueue_signed`] stores
    /// envelopes whose client signature verifies with `ring`, and
    /// [`Producer::enqueue`] refuses (naming `signature`) when no key here
    /// can sign and unsigned tasks are not allowed. `dev` (`SIGNET_DEV`)
    /// stores client signatures without verifying them, with a warning.
    pub fn for_server(
        store: Arc<dyn Store>,
        ring: Arc<KeyRing>,
        required: bool,
        dev: bool,
    ) -> Self {
        Self {
            store,
            ring,
            required,
            dev,
            clock: Arc::new(SystemClock),
        }
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
            // The process states this once (`signet serve`'s banner); one
            // server builds several producers.
            None => tracing::info!(
                "no signing key is configured: tasks are enqueued UNSIGNED and workers that require signatures will dead-letter them"
            ),
        }
        Ok(Self::for_server(store, ring, required, false))
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
        self.store_one(task, now).await
    }

    /// Checks and enqueues a task a client signed itself (`POST /v1/tasks`
    /// with `signature`): the spec gives the client's id and creation time
    /// ([`TaskSpec::id`], [`TaskSpec::created_at_ms`]); the signature must
    /// verify over the envelope with a key of the ring, and the envelope and
    /// signature are stored unchanged. A signature that does not verify is
    /// [`RuntimeError::SignatureRejected`].
    pub async fn enqueue_signed(
        &self,
        spec: TaskSpec,
        signature: ClientSignature,
    ) -> Result<Enqueued, RuntimeError> {
        let now = self.clock.now_ms();
        let task = self.prepare_signed(spec, signature, now)?;
        self.store_one(task, now).await
    }

    /// Enqueues 1 to [`MAX_BATCH_TASKS`] tasks, each signed here or by its
    /// client exactly as [`Producer::enqueue`] and
    /// [`Producer::enqueue_signed`] would, in one store write: all or none,
    /// in order (`POST /v1/tasks/batch`).
    ///
    /// Each task keeps its own idempotency key: a key already used with
    /// the same request answers that task with the first one (`created:
    /// false`). A refused task is [`RuntimeError::BatchItem`] naming its
    /// index, wrapping the error the single enqueue would give, and
    /// nothing is stored; that includes a key reused with a different
    /// request, whether first used before the batch or earlier in it.
    pub async fn enqueue_items(
        &self,
        items: Vec<BatchItem>,
    ) -> Result<Vec<Enqueued>, RuntimeError> {
        check_batch_len("tasks", items.len())?;
        let now = self.clock.now_ms();
        let mut tasks = Vec::with_capacity(items.len());
        for (index, item) in items.into_iter().enumerate() {
            let task = match item.signature {
                None => self.prepare(item.spec, now),
                Some(signature) => self.prepare_signed(item.spec, signature, now),
            }
            .map_err(|error| RuntimeError::BatchItem {
                index,
                error: Box::new(error),
            })?;
            tasks.push(task);
        }
        self.store_items(tasks, now).await
    }

    /// Stores the prepared tasks of a batch, all or none: a key that comes
    /// back within the batch with another request, or that the store
    /// already holds for another request, refuses the batch with
    /// [`RuntimeError::BatchItem`] naming the task at fault.
    pub(crate) async fn store_items(
        &self,
        tasks: Vec<NewTask>,
        now: i64,
    ) -> Result<Vec<Enqueued>, RuntimeError> {
        check_keys_within_batch(&tasks)?;
        // The store's conflict names the key; each key's tasks ask for the
        // same request (checked above), so the first task holding it is the
        // one at fault.
        let keys: Vec<Option<String>> = tasks.iter().map(|t| t.idempotency_key.clone()).collect();
        self.store_batch(tasks, now).await.map_err(|e| match e {
            RuntimeError::IdempotencyConflict(c) => {
                match keys
                    .iter()
                    .position(|k| k.as_deref() == Some(c.key.as_str()))
                {
                    Some(index) => RuntimeError::BatchItem {
                        index,
                        error: Box::new(RuntimeError::IdempotencyConflict(c)),
                    },
                    None => RuntimeError::IdempotencyConflict(c),
                }
            }
            e => e,
        })
    }

    /// Builds and checks a task its client signed, and verifies the
    /// client's signature over it.
    fn prepare_signed(
        &self,
        spec: TaskSpec,
        signature: ClientSignature,
        now: i64,
    ) -> Result<NewTask, RuntimeError> {
        let mut task = spec.into_task(now, true)?;
        task.signature = Some(self.verify_client(&task.envelope, signature)?);
        Ok(task)
    }

    /// Verifies a client's signature over `envelope` (in dev mode only its
    /// form), giving the record to store.
    fn verify_client(
        &self,
        envelope: &TaskEnvelope,
        sig: ClientSignature,
    ) -> Result<SignatureRecord, RuntimeError> {
        let refuse = |message: String| {
            RuntimeError::SignatureRejected(signet_sign::Error::malformed(message))
        };
        let alg: Algorithm = sig.alg.parse().map_err(|_| {
            refuse(format!(
                "alg {:?} is not hmac-sha256 or ed25519",
                rules::excerpt(&sig.alg)
            ))
        })?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sig.sig_base64.as_bytes())
            .map_err(|_| refuse("sig is not standard base64".into()))?;
        if self.dev {
            tracing::warn!(task_id = %envelope.id, "SIGNET_DEV is on: storing a client signature without verifying it");
            if bytes.len() != alg.signature_len() {
                return Err(refuse(format!(
                    "a {alg} signature is {} bytes, got {}",
                    alg.signature_len(),
                    bytes.len()
                )));
            }
        } else {
            envelope
                .verify(alg, &sig.key_id, &bytes, &self.ring)
                .map_err(RuntimeError::SignatureRejected)?;
        }
        Ok(SignatureRecord {
            alg,
            key_id: sig.key_id,
            sig: bytes,
        })
    }

    async fn store_one(&self, task: NewTask, now: i64) -> Result<Enqueued, RuntimeError> {
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

    /// Enqueues a task signed (and verified) elsewhere. The envelope and
    /// signature are stored as given, after the input rules. Unsigned tasks
    /// are refused when signing is required. A keyed task without a
    /// fingerprint is fingerprinted from its envelope and priority.
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
        let now = self.clock.now_ms();
        let mut tasks = tasks;
        for task in &mut tasks {
            if task.idempotency_key.is_some() && task.fingerprint.is_empty() {
                let asked = AskedTiming {
                    delay_ms: None,
                    not_before_ms: task.envelope.not_before_ms,
                    expires_at: task.envelope.expires_at_ms.map(When::At),
                };
                task.fingerprint = task_fingerprint(&task.envelope, task.priority, &asked);
            }
            task.check_rules(now)?;
            if self.required && task.signature.is_none() {
                return Err(FieldError::new(
                    "signature",
                    format!(
                        "task {:?} is unsigned and signing is required; sign it or enqueue through a producer with a key",
                        task.envelope.name
                    ),
                )
                .into());
            }
        }
        self.store_batch(tasks, now).await
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

    /// Builds, validates and signs one task. A task is stored unsigned
    /// only when no key here can sign, signing is not required and the ring
    /// is empty (a ring of verify-only keys means unsigned work is not
    /// wanted).
    fn prepare(&self, spec: TaskSpec, now: i64) -> Result<NewTask, RuntimeError> {
        let mut task = spec.into_task(now, false)?;
        if self.ring.active().is_some_and(|k| k.can_sign()) {
            self.sign_task(&mut task)?;
        } else if self.required || !self.ring.is_empty() {
            return Err(FieldError::new(
                "signature",
                "no key here can sign (the key ring is verify-only); sign the envelope yourself and send it with its signature",
            )
            .into());
        }
        Ok(task)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use signet_store::{IdempotencyScope, TaskFilter};

    use super::*;

    fn producer(dir: &tempfile::TempDir) -> Producer {
        let url = format!("sqlite://{}", dir.path().join("signet.db").display());
        let store: Arc<dyn Store> = Arc::new(
            signet_sqlite::SqliteStore::open(&url, signet_sqlite::SqliteConfig::default()).unwrap(),
        );
        let signing = SigningConfig::from_vars([
            (
                "SIGNET_SIGNING_KEYS",
                "k1:c2lnbmV0LXRlc3Qta2V5LTMyLWJ5dGVzLWxvbmchISE=",
            ),
            ("SIGNET_SIGNING_ACTIVE_KEY", "k1"),
        ])
        .unwrap();
        Producer::new(store, &signing).unwrap()
    }

    fn item(n: u32, key: Option<&str>) -> BatchItem {
        let spec = TaskSpec::new("t", &json!({ "n": n }))
            .idempotency_scope(IdempotencyScope::ApiKey("key_a".into()));
        BatchItem {
            spec: spec.with(key, TaskSpec::idempotency_key),
            signature: None,
        }
    }

    async fn stored(p: &Producer) -> usize {
        let filter = TaskFilter {
            limit: signet_store::MAX_PAGE,
            ..TaskFilter::default()
        };
        p.store().list_tasks(filter).await.unwrap().items.len()
    }

    fn index_of(err: &RuntimeError) -> (usize, &RuntimeError) {
        match err {
            RuntimeError::BatchItem { index, error } => (*index, error),
            other => panic!("not an item's error: {other}"),
        }
    }

    #[tokio::test]
    async fn a_batch_names_the_refused_item_and_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = producer(&dir);
        let mut items: Vec<BatchItem> = (0..5).map(|n| item(n, None)).collect();
        items[3].spec = TaskSpec::new("t", &json!({})).priority(5000);
        let err = p.enqueue_items(items).await.unwrap_err();
        let (index, inner) = index_of(&err);
        assert_eq!(index, 3);
        assert!(
            matches!(inner, RuntimeError::InvalidField(f) if f.field() == "priority"),
            "{inner}"
        );
        assert_eq!(stored(&p).await, 0);

        let too_many = (0..=MAX_BATCH_TASKS as u32)
            .map(|n| item(n, None))
            .collect();
        let err = p.enqueue_items(too_many).await.unwrap_err();
        assert!(
            matches!(&err, RuntimeError::InvalidField(f) if f.field() == "tasks"),
            "{err}"
        );
        assert!(p.enqueue_items(Vec::new()).await.is_err());
    }

    #[tokio::test]
    async fn a_reused_key_is_the_first_task_and_a_conflict_names_its_item() {
        let dir = tempfile::tempdir().unwrap();
        let p = producer(&dir);
        let out = p
            .enqueue_items(vec![item(1, Some("a")), item(1, Some("a"))])
            .await
            .unwrap();
        assert!(out[0].created && !out[1].created);
        assert_eq!(out[0].task.id(), out[1].task.id());

        // Against a stored key: the first item holding it is named.
        let err = p
            .enqueue_items(vec![item(2, Some("b")), item(9, Some("a"))])
            .await
            .unwrap_err();
        let (index, inner) = index_of(&err);
        assert_eq!(index, 1);
        assert!(matches!(inner, RuntimeError::IdempotencyConflict(c) if c.fields == ["args"]));

        // Within the batch: the later item is named.
        let err = p
            .enqueue_items(vec![item(3, Some("c")), item(4, Some("c"))])
            .await
            .unwrap_err();
        assert_eq!(index_of(&err).0, 1);
        assert_eq!(stored(&p).await, 1);
    }
}
