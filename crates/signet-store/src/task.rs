//! Task rows: the signed envelope plus delivery state, and what goes in and
//! out of a [`Store`](crate::Store).

use signet_sign::{Algorithm, TaskEnvelope};

use crate::error::StoreError;
use crate::idempotency::{Fingerprint, IdempotencyClaim, IdempotencyKind, IdempotencyScope};
use crate::rules;
// The limits lived here first; their paths keep working.
use crate::ids::{ApiKeyId, TaskId};
pub use crate::rules::{
    DEFAULT_MAX_ATTEMPTS, MAX_ARGS_BYTES, MAX_IDEMPOTENCY_KEY_LEN, MAX_QUEUE_NAME_LEN,
    MAX_TASK_NAME_LEN,
};
use crate::state::{DeadReason, TaskState};

/// Checks a queue name (any queue, Signet's own included) with the rule
/// [`rules::queue_name`], as a [`StoreError::Invalid`].
pub fn validate_queue_name(name: &str) -> Result<(), StoreError> {
    rules::queue_name(name).map_err(|e| StoreError::invalid(e.message()))
}

/// A signature stored beside the envelope, as `{alg, key_id, sig}`.
///
/// `key_id` is kept as text: what the database holds is not trusted, and the
/// verifier reports an unknown or malformed id as a verification outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureRecord {
    /// The algorithm the signer claims.
    pub alg: Algorithm,
    /// The key id the signer claims.
    pub key_id: String,
    /// The raw signature bytes.
    pub sig: Vec<u8>,
}

/// A task to enqueue.
#[derive(Clone, Debug)]
pub struct NewTask {
    /// The signed part. `envelope.id` must be a fresh [`TaskId`]
    /// (or [`MessageId`](crate::MessageId) for a message).
    pub envelope: TaskEnvelope,
    /// The signature over `envelope.canonical_bytes()`, or `None` if unsigned.
    pub signature: Option<SignatureRecord>,
    /// Higher runs first among due tasks of a queue. Not signed.
    pub priority: i32,
    /// Makes enqueue exactly-once per key (within `idempotency_scope` and
    /// the task's kind) while the first task is retained.
    pub idempotency_key: Option<String>,
    /// Whose key `idempotency_key` is (ignored without a key).
    pub idempotency_scope: IdempotencyScope,
    /// The request as the caller meant it, to tell a retry from a different
    /// request under the same key (ignored without a key).
    pub fingerprint: Fingerprint,
}

impl NewTask {
    /// Checks the task against every input rule of [`rules`] at `now_ms`
    /// (what the producer refuses before it stores; stores check less).
    pub fn check_rules(&self, now_ms: i64) -> Result<(), rules::FieldError> {
        rules::new_task(
            &self.envelope,
            self.priority,
            self.idempotency_key.as_deref(),
            now_ms,
        )
    }

    /// The idempotency key with its scope, kind and fingerprint, when the
    /// task has a key.
    pub fn idempotency(&self) -> Option<IdempotencyClaim<'_>> {
        self.idempotency_key.as_deref().map(|key| IdempotencyClaim {
            key,
            scope: &self.idempotency_scope,
            kind: IdempotencyKind::of_id(&self.envelope.id),
            fingerprint: &self.fingerprint,
        })
    }

    /// [`NewTask::validate`] for each task of a batch; an error names the
    /// task's place in a batch of more than one.
    pub fn validate_batch(tasks: &[NewTask]) -> Result<(), StoreError> {
        let n = tasks.len();
        for (i, task) in tasks.iter().enumerate() {
            task.validate().map_err(|e| match e {
                StoreError::Invalid(msg) if n > 1 => {
                    StoreError::Invalid(format!("task {} of {n} in the batch: {msg}", i + 1))
                }
                e => e,
            })?;
        }
        Ok(())
    }

    /// Checks what every backend refuses with [`StoreError::Invalid`]: a
    /// malformed task id, a bad queue name, an empty or over-long task name,
    /// args over [`MAX_ARGS_BYTES`], `max_attempts` of 0, an empty or
    /// over-long idempotency key, an empty signature or key id.
    pub fn validate(&self) -> Result<(), StoreError> {
        let env = &self.envelope;
        if env.id.starts_with(crate::MessageId::PREFIX) {
            crate::MessageId::parse(&env.id)?;
        } else {
            TaskId::parse(&env.id)?;
        }
        validate_queue_name(&env.queue)?;
        if env.name.is_empty() || env.name.len() > MAX_TASK_NAME_LEN {
            return Err(StoreError::invalid(format!(
                "task {}: the task name must be 1 to {MAX_TASK_NAME_LEN} bytes, got {}",
                env.id,
                env.name.len()
            )));
        }
        if env.args.len() > MAX_ARGS_BYTES {
            return Err(StoreError::invalid(format!(
                "task {}: args are {} bytes; the limit is {MAX_ARGS_BYTES} bytes (1 MiB); store large payloads elsewhere and pass a reference",
                env.id,
                env.args.len()
            )));
        }
        if env.max_attempts == 0 {
            return Err(StoreError::invalid(format!(
                "task {}: max_attempts is 0; it counts the first attempt, so use 1 or more",
                env.id
            )));
        }
        if let Some(key) = &self.idempotency_key {
            if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN {
                return Err(StoreError::invalid(format!(
                    "task {}: the idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} bytes, got {}",
                    env.id,
                    key.len()
                )));
            }
            let scope = self.idempotency_scope.as_str();
            if scope.is_empty() || scope.len() > MAX_IDEMPOTENCY_KEY_LEN {
                return Err(StoreError::invalid(format!(
                    "task {}: the idempotency scope must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} bytes, got {}",
                    env.id,
                    scope.len()
                )));
            }
        }
        if let Some(sig) = &self.signature {
            if sig.key_id.is_empty() || sig.sig.is_empty() {
                return Err(StoreError::invalid(format!(
                    "task {}: the signature has an empty key id or empty bytes; sign the task or enqueue it unsigned",
                    env.id
                )));
            }
        }
        Ok(())
    }
}

/// What enqueue did.
#[derive(Clone, Debug)]
pub struct Enqueued {
    /// The stored task: the new one, or the first one with the same
    /// idempotency key (in the same scope and kind, for the same request).
    pub task: TaskRow,
    /// `false` when an earlier task with the same idempotency key was returned.
    pub created: bool,
}

/// A stored task.
#[derive(Clone, Debug)]
pub struct TaskRow {
    /// The signed fields, as enqueued. The store never changes them.
    pub envelope: TaskEnvelope,
    /// The stored signature, if any.
    pub signature: Option<SignatureRecord>,
    /// Current state.
    pub state: TaskState,
    /// Priority (higher first).
    pub priority: i32,
    /// Attempts started so far (0 before the first claim) since the last
    /// replay.
    pub attempt: u32,
    /// Attempts made before the last replay (0 if never replayed): attempt
    /// numbers in the history go on from here.
    pub attempts_before: u32,
    /// Earliest time the task may (next) run, unix ms.
    pub run_at_ms: i64,
    /// Worker holding the lease, while running.
    pub lease_owner: Option<String>,
    /// When the lease expires, while running.
    pub lease_expires_at_ms: Option<i64>,
    /// The last attempt's error message.
    pub last_error: Option<String>,
    /// Why the task is dead, when it is.
    pub dead_reason: Option<DeadReason>,
    /// More about why it is dead.
    pub dead_detail: Option<String>,
    /// The handler's result (JSON bytes), when succeeded.
    pub result: Option<Vec<u8>>,
    /// The idempotency key it was enqueued with.
    pub idempotency_key: Option<String>,
    /// Last state change, unix ms.
    pub updated_at_ms: i64,
    /// When it reached a final state, unix ms.
    pub finished_at_ms: Option<i64>,
}

impl TaskRow {
    /// The task id.
    pub fn id(&self) -> &str {
        &self.envelope.id
    }

    /// The queue.
    pub fn queue(&self) -> &str {
        &self.envelope.queue
    }

    /// Attempts made in the task's whole life, replays included (the
    /// number of the current or last attempt in its history).
    pub fn attempts_made(&self) -> u32 {
        self.attempts_before.saturating_add(self.attempt)
    }
}

/// Ask for tasks to run.
#[derive(Clone, Debug)]
pub struct ClaimRequest {
    /// Queues to take from (at least one).
    pub queues: Vec<String>,
    /// Who claims: recorded as the lease owner.
    pub worker_id: String,
    /// At most this many tasks.
    pub limit: usize,
    /// Lease length from `now_ms`.
    pub lease_ms: i64,
}

impl ClaimRequest {
    /// Checks what every backend refuses with [`StoreError::Invalid`]: no
    /// queues, a bad queue name, an empty worker id, a lease of 0 ms or less.
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.queues.is_empty() {
            return Err(StoreError::invalid(
                "claim names no queue; give at least one queue",
            ));
        }
        for q in &self.queues {
            validate_queue_name(q)?;
        }
        if self.worker_id.is_empty() {
            return Err(StoreError::invalid("claim has an empty worker id"));
        }
        check_lease_ms(self.lease_ms)
    }
}

/// Refuses a lease of 0 ms or less (claims and heartbeats), with
/// [`StoreError::Invalid`].
pub fn check_lease_ms(lease_ms: i64) -> Result<(), StoreError> {
    if lease_ms <= 0 {
        return Err(StoreError::invalid(format!(
            "lease of {lease_ms} ms is not positive; use a lease longer than the heartbeat interval"
        )));
    }
    Ok(())
}

/// A lease the caller holds on a running task: every later call about the
/// task presents it, and the store refuses it once the lease was lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseToken {
    /// The task.
    pub task_id: String,
    /// Who holds it.
    pub worker_id: String,
    /// The attempt it was issued for (1-based).
    pub attempt: u32,
}

impl LeaseToken {
    /// The lease of a freshly claimed row.
    pub fn of(row: &TaskRow) -> Self {
        Self {
            task_id: row.envelope.id.clone(),
            worker_id: row.lease_owner.clone().unwrap_or_default(),
            attempt: row.attempt,
        }
    }
}

/// How a failed attempt ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailOutcome {
    /// Try again at this time (unix ms).
    Retry {
        /// When.
        at_ms: i64,
    },
    /// Do not try again: dead-letter it.
    Dead {
        /// Why.
        reason: DeadReason,
        /// Details for a person.
        detail: String,
    },
}

/// Whether `queue` is Signet's own ([`MESSAGE_QUEUE`](crate::MESSAGE_QUEUE):
/// messages and callbacks), which listings of tasks and queues leave out
/// unless asked.
pub fn is_internal_queue(queue: &str) -> bool {
    queue == crate::MESSAGE_QUEUE
}

/// Whether a listing of queues shows queue `name`: only `only` when
/// named, else every queue but Signet's own unless `include_internal` (the
/// rule of [`TaskFilter`], for `signet queues` and `GET /v1/queues`).
pub fn is_listed_queue(name: &str, only: Option<&str>, include_internal: bool) -> bool {
    match only {
        Some(q) => name == q,
        None => include_internal || !is_internal_queue(name),
    }
}

/// Filter for task listings, newest first: by id, descending (Signet's ids
/// are UUIDv7, so that is creation order for every id it makes; an id a
/// producer chose sorts by its text). `task_…` rows come before `msg_…`.
///
/// Signet's own queue ([`MESSAGE_QUEUE`](crate::MESSAGE_QUEUE): messages
/// and callbacks) is left out unless `include_internal` is set or `queue`
/// names it: a listing shows the user's work first.
#[derive(Clone, Debug, Default)]
pub struct TaskFilter {
    /// Only this queue (any queue, Signet's own included).
    pub queue: Option<String>,
    /// Only this state.
    pub state: Option<TaskState>,
    /// Without `queue`: list the rows of Signet's own queue too.
    pub include_internal: bool,
    /// Page size (the store caps it at [`MAX_PAGE`]; 0 means [`DEFAULT_PAGE`]).
    pub limit: usize,
    /// Continue after this cursor (from [`Page::next_cursor`]).
    pub cursor: Option<String>,
}

/// Filter for dead letters.
#[derive(Clone, Debug, Default)]
pub struct DeadFilter {
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this reason.
    pub reason: Option<DeadReason>,
    /// Only dead since this time (unix ms, inclusive).
    pub since_ms: Option<i64>,
    /// Only dead before this time (unix ms, exclusive).
    pub until_ms: Option<i64>,
    /// Page size (capped at [`MAX_PAGE`]; 0 means [`DEFAULT_PAGE`]).
    pub limit: usize,
    /// Continue after this cursor.
    pub cursor: Option<String>,
}

/// Which dead letters a replay or purge acts on.
#[derive(Clone, Debug)]
pub enum DeadSelector {
    /// These ids (ids that are not dead letters are skipped).
    Ids(Vec<String>),
    /// Every dead letter matching the filter (its limit and cursor are ignored).
    Filter(DeadFilter),
}

impl ApiKeyRecord {
    /// Checks what every backend refuses with [`StoreError::Invalid`]: an id
    /// that is not a `key_…` id, an empty hash, name or scope.
    pub fn validate(&self) -> Result<(), StoreError> {
        ApiKeyId::parse(&self.id)?;
        if self.hash.is_empty() || self.name.is_empty() || self.scope.is_empty() {
            return Err(StoreError::invalid(format!(
                "api key {}: name, scope and hash must not be empty",
                self.id
            )));
        }
        Ok(())
    }
}

/// Longest console session id a store records (the console's are 43
/// characters).
pub const MAX_SESSION_ID_LEN: usize = 128;

/// Checks what every backend refuses in [`Store::end_session`](crate::Store::end_session)
/// with [`StoreError::Invalid`]: an empty session id, or one longer than
/// [`MAX_SESSION_ID_LEN`].
pub fn check_session_id(session_id: &str) -> Result<(), StoreError> {
    if session_id.is_empty() || session_id.len() > MAX_SESSION_ID_LEN {
        return Err(StoreError::invalid(format!(
            "session id must be 1 to {MAX_SESSION_ID_LEN} characters"
        )));
    }
    Ok(())
}

/// The page size a store uses for a requested `limit`: [`DEFAULT_PAGE`] for
/// 0, at most [`MAX_PAGE`].
pub fn page_size(limit: usize) -> usize {
    match limit {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    }
}

/// Default page size.
pub const DEFAULT_PAGE: usize = 50;
/// Largest page size.
pub const MAX_PAGE: usize = 1000;

/// A page of results.
#[derive(Clone, Debug)]
pub struct Page<T> {
    /// The items, newest first: dead letters by `(finished_at_ms, id)`,
    /// tasks by id.
    pub items: Vec<T>,
    /// Pass back to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Number of tasks in each state of one queue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// The queue.
    pub queue: String,
    /// `(state, count)` for every state with at least one task.
    pub counts: Vec<(TaskState, u64)>,
}

impl QueueCounts {
    /// Whether this is Signet's own queue ([`MESSAGE_QUEUE`](crate::MESSAGE_QUEUE)),
    /// which queue listings leave out unless asked (as [`TaskFilter`] does).
    pub fn is_internal(&self) -> bool {
        is_internal_queue(&self.queue)
    }

    /// Whether a listing of queues shows this one: only `queue` when it is
    /// named, else every queue but Signet's own unless `include_internal`
    /// (the rule of [`TaskFilter`], for `signet queues` and
    /// `GET /v1/queues`).
    pub fn is_listed(&self, queue: Option<&str>, include_internal: bool) -> bool {
        is_listed_queue(&self.queue, queue, include_internal)
    }

    /// Count of one state (0 when absent).
    pub fn count(&self, state: TaskState) -> u64 {
        self.counts
            .iter()
            .find(|(s, _)| *s == state)
            .map_or(0, |(_, n)| *n)
    }
}

/// Pending (non-final) work signed with one key id: tasks, and messages
/// (the task rows of the queue [`MESSAGE_QUEUE`](crate::MESSAGE_QUEUE))
/// counted apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyUsage {
    /// The key id; `None` for unsigned work.
    pub key_id: Option<String>,
    /// The algorithm; `None` for unsigned work.
    pub alg: Option<Algorithm>,
    /// Pending tasks (every queue but the message queue).
    pub tasks: u64,
    /// Pending messages (the message queue).
    pub messages: u64,
}

impl KeyUsage {
    /// Pending tasks and messages together.
    pub fn pending(&self) -> u64 {
        self.tasks.saturating_add(self.messages)
    }
}

/// An API key as stored: the secret is kept only as its SHA-256 hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// The key's id (`key_…`).
    pub id: String,
    /// A name for people.
    pub name: String,
    /// `admin`, `publish` or `read`.
    pub scope: String,
    /// SHA-256 of the secret `sk_…` text, hex.
    pub hash: String,
    /// The first characters of the secret, for recognising it (`sk_abcd`).
    pub prefix: String,
    /// Created, unix ms.
    pub created_at_ms: i64,
    /// Revoked, unix ms.
    pub revoked_at_ms: Option<i64>,
}

/// Where a database's schema stands against a build's migrations (every
/// backend reports it the same way).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Version applied in the database (0: none yet).
    pub current: i64,
    /// Newest version the build knows.
    pub known: i64,
    /// Migrations the build would apply: `(version, name)`.
    pub pending: Vec<(i64, &'static str)>,
}

impl MigrationStatus {
    /// Whether the database is newer than the build.
    pub fn is_too_new(&self) -> bool {
        self.current > self.known
    }
}
