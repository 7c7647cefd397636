//! Workers that are not linked against this crate: the service behind the
//! HTTP pull protocol (`POST /v1/work/*`, docs/worker-protocol.md).
//!
//! A remote worker claims with a long poll, runs the task where it lives,
//! and reports back with the lease token it was given. Every outcome goes
//! through the same writes as the Rust worker's (`ack::record`,
//! `ack::record_successes`): attempts left → retry after the worker's
//! `retry_after` or the retry policy's backoff, none left → dead with
//! `max-attempts`; the same metrics and history.
//!
//! Lease tokens: each claim gets a fresh lease owner
//! `http:<api key id>:<128-bit random nonce, hex>`, which the store records
//! as the attempt's worker in the history. The token handed out is
//! `lt_` + base64url(`<task id>.<attempt>.<nonce>`): it names no secret, and
//! the owner is rebuilt from the caller's own key id when it comes back, so
//! a token works only for the API key that claimed it and cannot be guessed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use signet_store::{
    ClaimRequest, DeadReason, FieldError, LeaseToken, Store, StoreError, TaskRow,
    RESERVED_QUEUE_PREFIX,
};

use super::ack::{record, record_successes, Outcome, Success};
use super::events::WorkerEventKind;
use crate::backoff::RetryPolicy;
use crate::claim::Leases;
use crate::clock::{duration_ms, Clock};
use crate::delivery::clip;
use crate::handler::TaskMeta;
use crate::metrics;

/// Prefix of every lease token.
const TOKEN_PREFIX: &str = "lt_";

/// The verification outcomes a worker may name when it reports
/// `signature-invalid` (DESIGN §5): the detail starts with one of them.
pub const SIGNATURE_INVALID_DETAILS: [&str; 5] = [
    "missing",
    "unknown-key",
    "mismatch",
    "malformed",
    "algorithm-mismatch",
];

/// Most tasks one claim hands out.
pub const MAX_CLAIM: u64 = 100;
/// Longest a claim waits for work.
pub const MAX_CLAIM_WAIT: Duration = Duration::from_secs(30);
/// Shortest lease a remote worker may ask for.
pub const MIN_REMOTE_LEASE: Duration = Duration::from_secs(1);
/// Longest lease a remote worker may ask for.
pub const MAX_REMOTE_LEASE: Duration = Duration::from_secs(300);
/// The lease of a claim or heartbeat that names none (the Rust worker's).
pub const DEFAULT_REMOTE_LEASE: Duration = super::DEFAULT_LEASE;
/// Longest a waiting claim sleeps between claims. New work wakes it at once
/// (`Store::wait_for_work`); this bounds how late it sees a task that
/// becomes due by time alone (a retry, a `not_before`), which nothing
/// signals.
pub const REMOTE_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Most leases one report (heartbeat, complete, fail) names.
pub const MAX_REPORT_BATCH: usize = 1000;
/// Longest `retry_after` a worker may ask for (one year).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(366 * 24 * 3600);

/// A lease length a remote worker asked for, in ms, checked against
/// [`MIN_REMOTE_LEASE`]..=[`MAX_REMOTE_LEASE`] (`field` names it in the error).
pub fn remote_lease(field: &str, lease_ms: u64) -> Result<Duration, FieldError> {
    let lease = Duration::from_millis(lease_ms);
    if lease < MIN_REMOTE_LEASE || lease > MAX_REMOTE_LEASE {
        return Err(FieldError::new(
            field,
            format!(
                "{lease_ms} is out of range; give {}..={} ms, longer than the time between your heartbeats",
                MIN_REMOTE_LEASE.as_millis(),
                MAX_REMOTE_LEASE.as_millis()
            ),
        ));
    }
    Ok(lease)
}

/// A `retry_after` a worker asked for, in ms, at most [`MAX_RETRY_AFTER`].
pub fn retry_after(field: &str, ms: u64) -> Result<Duration, FieldError> {
    let after = Duration::from_millis(ms);
    if after > MAX_RETRY_AFTER {
        return Err(FieldError::new(
            field,
            format!(
                "{ms} is more than a year; give 0..={} ms",
                MAX_RETRY_AFTER.as_millis()
            ),
        ));
    }
    Ok(after)
}

/// What a remote worker asks for in one claim. Build with
/// [`RemoteClaim::new`], which checks the limits.
#[derive(Clone, Debug)]
pub struct RemoteClaim {
    queues: Vec<String>,
    max: usize,
    wait: Duration,
    lease: Duration,
}

/// A task claimed by a remote worker: the row as stored (envelope and
/// signature exactly as the producer made them) and its lease.
#[derive(Debug)]
pub struct RemoteTask {
    /// The row, as the store handed it out.
    pub row: TaskRow,
    /// The opaque lease token to report with.
    pub lease: String,
    /// When the lease expires unless extended, unix ms.
    pub lease_expires_at_ms: i64,
}

/// How a remote worker says an attempt failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteFailure {
    /// The attempt failed. With attempts left the task runs again after
    /// `retry_after` (or the retry policy's backoff); otherwise it is dead
    /// with `max-attempts`.
    Retry {
        /// The attempt's error, as the worker words it.
        error: String,
        /// When to run again; `None`: the retry policy's backoff.
        retry_after: Option<Duration>,
    },
    /// The task must not run again.
    Dead {
        /// Why: `signature-invalid`, `payload-invalid`, `unknown-task` or
        /// `expired` (`max-attempts` is the server's to decide).
        reason: DeadReason,
        /// More about why; for `signature-invalid` it starts with one of
        /// [`SIGNATURE_INVALID_DETAILS`].
        detail: String,
    },
}

impl RemoteClaim {
    /// A claim of up to `max` tasks (1..=[`MAX_CLAIM`]) from `queues`,
    /// waiting up to `wait_ms` (0..=[`MAX_CLAIM_WAIT`]) for work, leased for
    /// `lease_ms` (see [`remote_lease`]). Signet's own queues
    /// ([`RESERVED_QUEUE_PREFIX`]) are refused. Each error
    /// names its field (`queues`, `max`, `wait_ms`, `lease_ms`).
    pub fn new(
        queues: Vec<String>,
        max: u64,
        wait_ms: u64,
        lease_ms: u64,
    ) -> Result<Self, FieldError> {
        if queues.is_empty() {
            return Err(FieldError::new("queues", "name at least one queue"));
        }
        if let Some(q) = queues.iter().find(|q| q.starts_with(RESERVED_QUEUE_PREFIX)) {
            return Err(FieldError::new(
                "queues",
                format!("{q} is Signet's own queue ({RESERVED_QUEUE_PREFIX}…), drained by Signet itself; workers cannot claim from it"),
            ));
        }
        if !(1..=MAX_CLAIM).contains(&max) {
            return Err(FieldError::new(
                "max",
                format!("{max} is out of range; give 1..={MAX_CLAIM}"),
            ));
        }
        let wait = Duration::from_millis(wait_ms);
        if wait > MAX_CLAIM_WAIT {
            return Err(FieldError::new(
                "wait_ms",
                format!(
                    "{wait_ms} is out of range; give 0..={} ms",
                    MAX_CLAIM_WAIT.as_millis()
                ),
            ));
        }
        Ok(Self {
            queues,
            // At most MAX_CLAIM: fits.
            max: usize::try_from(max).unwrap_or(1),
            wait,
            lease: remote_lease("lease_ms", lease_ms)?,
        })
    }
}

impl RemoteFailure {
    /// A dead letter a worker reports, checked: the reasons a worker may
    /// give, and for `signature-invalid` a detail naming the verification
    /// outcome. The error says what is allowed.
    pub fn dead(reason: &str, detail: String) -> Result<Self, String> {
        let reason: DeadReason = reason.parse().map_err(|e: StoreError| e.to_string())?;
        match reason {
            DeadReason::SignatureInvalid
            | DeadReason::PayloadInvalid
            | DeadReason::UnknownTask
            | DeadReason::Expired => {}
            DeadReason::MaxAttempts | DeadReason::TargetRefused => {
                return Err(format!(
                    "a worker cannot report {reason}; use one of signature-invalid, payload-invalid, unknown-task, expired (max-attempts follows from failed attempts)"
                ))
            }
        }
        if reason == DeadReason::SignatureInvalid && signature_outcome(&detail).is_none() {
            return Err(format!(
                "a signature-invalid detail starts with the verification outcome, one of {}; e.g. \"mismatch: …\"",
                SIGNATURE_INVALID_DETAILS.join(", ")
            ));
        }
        Ok(RemoteFailure::Dead { reason, detail })
    }
}

/// The verification outcome a `signature-invalid` detail starts with.
fn signature_outcome(detail: &str) -> Option<&'static str> {
    let word = detail
        .split(|c: char| c == ':' || c.is_whitespace())
        .next()
        .unwrap_or_default();
    SIGNATURE_INVALID_DETAILS
        .into_iter()
        .find(|known| *known == word)
}

/// The service behind the HTTP pull protocol: claim with a long poll,
/// heartbeat, complete and fail by lease token, for workers in any
/// language. Cheap to build; holds no state between requests.
pub struct RemoteWorker {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    leases: Leases,
    retry: RetryPolicy,
}

impl std::fmt::Debug for RemoteWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteWorker")
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl RemoteWorker {
    /// The service on `store`, with the default retry policy (the Rust
    /// worker's).
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        // The lease and heartbeat here are unused: remote workers give
        // their lease with each claim and heartbeat themselves.
        let leases = Leases::new(
            Arc::clone(&store),
            Arc::clone(&clock),
            duration_ms(super::DEFAULT_LEASE),
            super::DEFAULT_HEARTBEAT,
        );
        Self {
            store,
            clock,
            leases,
            retry: RetryPolicy::default(),
        }
    }

    /// Sets the backoff of failed attempts reported without `retry_after`.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Claims up to the claim's `max` due tasks for the API key `key_id`.
    /// When none is due, waits for new work (woken by
    /// [`Store::wait_for_work`], claiming again at least every
    /// [`REMOTE_POLL_INTERVAL`] for work that became due by time) up to
    /// the claim's wait, cut
    /// to `wait_limit` (the caller's own deadline), and answers an empty list
    /// if none came.
    pub async fn claim(
        &self,
        key_id: &str,
        claim: RemoteClaim,
        wait_limit: Duration,
    ) -> Result<Vec<RemoteTask>, StoreError> {
        let nonce = format!("{:032x}", rand::random::<u128>());
        let owner = owner(key_id, &nonce);
        let lease_ms = duration_ms(claim.lease);
        let deadline = Instant::now() + claim.wait.min(wait_limit);
        loop {
            let request = ClaimRequest {
                queues: claim.queues.clone(),
                worker_id: owner.clone(),
                limit: claim.max,
                lease_ms,
            };
            // Before the claim: work signalled while it runs ends the wait.
            let mark = self.store.work_mark(&claim.queues);
            let now = self.clock.now_ms();
            let rows = self.store.claim(request, now).await?;
            let left = deadline.saturating_duration_since(Instant::now());
            if !rows.is_empty() || left.is_zero() {
                return Ok(rows
                    .into_iter()
                    .map(|row| {
                        let lease = token(&row.envelope.id, row.attempt, &nonce);
                        let lease_expires_at_ms = row
                            .lease_expires_at_ms
                            .unwrap_or(now.saturating_add(lease_ms));
                        RemoteTask {
                            row,
                            lease,
                            lease_expires_at_ms,
                        }
                    })
                    .collect());
            }
            self.store
                .wait_for_work(&claim.queues, mark, left.min(REMOTE_POLL_INTERVAL))
                .await;
        }
    }

    /// The store's lease behind a token, for the API key `key_id`; `None`
    /// when the text is not a lease token.
    pub fn lease(key_id: &str, token: &str) -> Option<LeaseToken> {
        let text = token.strip_prefix(TOKEN_PREFIX)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let mut parts = text.rsplitn(3, '.');
        let nonce = parts.next()?;
        let attempt = parts.next()?.parse().ok()?;
        let task_id = parts.next()?;
        if task_id.is_empty() || nonce.len() != 32 || !nonce.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return None;
        }
        Some(LeaseToken {
            task_id: task_id.to_owned(),
            worker_id: owner(key_id, nonce),
            attempt,
        })
    }

    /// Extends each lease to its length from now; answers each one's new
    /// expiry (unix ms) or why not (`StoreError::LeaseLost` once it was
    /// lost), in order.
    pub async fn heartbeat(
        &self,
        leases: &[(LeaseToken, Duration)],
    ) -> Vec<Result<i64, StoreError>> {
        let now = self.clock.now_ms();
        futures::future::join_all(leases.iter().map(|(l, length)| async move {
            let lease_ms = duration_ms(*length);
            self.store
                .heartbeat(l, lease_ms, now)
                .await
                .map(|()| now.saturating_add(lease_ms))
        }))
        .await
    }

    /// Records successes (with their JSON results) in one batch, with the
    /// Rust worker's metrics; answers each one's write, in order, or the
    /// store error that stopped the whole batch (nothing was recorded by
    /// it; the leases expire as usual).
    pub async fn complete(
        &self,
        items: Vec<(LeaseToken, Option<Vec<u8>>)>,
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let leases: Vec<LeaseToken> = items.iter().map(|(l, _)| l.clone()).collect();
        let metas = self.metas(&leases).await?;
        let mut out: Vec<Option<Result<(), StoreError>>> = Vec::with_capacity(items.len());
        let mut found = Vec::new();
        for ((_, result), meta) in items.into_iter().zip(metas) {
            match meta {
                Ok(meta) => {
                    out.push(None);
                    found.push((meta, result));
                }
                Err(e) => out.push(Some(Err(e))),
            }
        }
        let successes: Vec<Success<'_>> = found
            .iter_mut()
            .map(|(meta, result)| Success {
                meta: &*meta,
                result: result.take(),
                ran: None,
            })
            .collect();
        let now = self.clock.now_ms();
        let mut written = record_successes(&self.store, &self.leases, &successes, now)
            .await?
            .into_iter();
        Ok(out
            .into_iter()
            .map(|slot| match slot {
                Some(r) => r,
                // `record_successes` answers one result per success.
                None => written.next().unwrap_or_else(|| {
                    Err(StoreError::backend(
                        "completing a batch",
                        "the store answered fewer results than tasks",
                    ))
                }),
            })
            .collect())
    }

    /// Records a failed attempt: retry or dead by the Rust worker's rule
    /// (see [`RemoteFailure`]); a `signature-invalid` report also counts in
    /// `signet_signature_invalid_total`. Answers how the attempt ended.
    pub async fn fail(
        &self,
        lease: &LeaseToken,
        failure: RemoteFailure,
    ) -> Result<WorkerEventKind, StoreError> {
        let meta = self.metas(std::slice::from_ref(lease)).await?.pop();
        let meta = meta.unwrap_or_else(|| Err(lost(lease)))?;
        self.fail_leased(meta, failure).await
    }

    /// [`RemoteWorker::fail`] for a task whose lease was checked.
    async fn fail_leased(
        &self,
        meta: TaskMeta,
        failure: RemoteFailure,
    ) -> Result<WorkerEventKind, StoreError> {
        record_failure(
            &self.leases,
            &self.retry,
            &meta,
            failure,
            self.clock.now_ms(),
        )
        .await
    }

    /// [`RemoteWorker::fail`] for each report (the tasks read in one
    /// store call, the outcomes written concurrently); answers in order, or
    /// the store error of that read, which stopped the whole batch (nothing
    /// was recorded).
    pub async fn fail_all(
        &self,
        reports: Vec<(LeaseToken, RemoteFailure)>,
    ) -> Result<Vec<Result<WorkerEventKind, StoreError>>, StoreError> {
        let leases: Vec<LeaseToken> = reports.iter().map(|(l, _)| l.clone()).collect();
        let metas = self.metas(&leases).await?;
        Ok(futures::future::join_all(
            reports
                .into_iter()
                .zip(metas)
                .map(|((_, failure), meta)| async move { self.fail_leased(meta?, failure).await }),
        )
        .await)
    }

    /// Gives claimed tasks back without spending their attempts (a worker
    /// shutting down with tasks it has not started): each is due again
    /// after its delay (`None`: at once). The attempt is not an attempt:
    /// it is not counted and not in the history (its number is used
    /// again), as when a Rust worker shuts down. Answers when each one is
    /// due again (unix ms) and whether that is later than now (the task is
    /// `scheduled`, else `available`), in order, or why not
    /// (`StoreError::LeaseLost` for a lease that was lost).
    pub async fn release(
        &self,
        items: &[(LeaseToken, Option<Duration>)],
    ) -> Vec<Result<(i64, bool), StoreError>> {
        let now = self.clock.now_ms();
        futures::future::join_all(items.iter().map(|(lease, after)| async move {
            let at = now.saturating_add(after.map_or(0, duration_ms));
            self.store.release_at(lease, at, now).await?;
            tracing::info!(task_id = %lease.task_id, attempt = lease.attempt, worker = %lease.worker_id, due_at_ms = at, "task released by its worker; the attempt does not count");
            Ok((at, at > now))
        }))
        .await
    }

    /// What the worker's records need to know about each leased task, in
    /// the order of `leases`, read in one store call: `LeaseLost` for a task
    /// that is gone or held by another owner or attempt.
    async fn metas(
        &self,
        leases: &[LeaseToken],
    ) -> Result<Vec<Result<TaskMeta, StoreError>>, StoreError> {
        let ids: Vec<String> = leases.iter().map(|l| l.task_id.clone()).collect();
        let rows = self.store.tasks_by_id(&ids).await?;
        let mut by_id: HashMap<String, TaskRow> = rows
            .into_iter()
            .map(|row| (row.envelope.id.clone(), row))
            .collect();
        Ok(leases
            .iter()
            .map(|lease| {
                let held = by_id.get(&lease.task_id).is_some_and(|row| {
                    row.lease_owner.as_deref() == Some(lease.worker_id.as_str())
                        && row.attempt == lease.attempt
                });
                // The row goes to the first lease that holds it: a second
                // report of the same lease in one batch is lost, as a
                // second report in another request would be.
                let row = match by_id.remove(&lease.task_id) {
                    Some(row) if held => row,
                    Some(row) => {
                        by_id.insert(row.envelope.id.clone(), row);
                        return Err(lost(lease));
                    }
                    None => return Err(lost(lease)),
                };
                Ok(TaskMeta {
                    id: row.envelope.id,
                    queue: row.envelope.queue,
                    name: row.envelope.name,
                    headers: row.envelope.headers,
                    attempt: lease.attempt,
                    max_attempts: row.envelope.max_attempts,
                    worker_id: Arc::from(lease.worker_id.as_str()),
                })
            })
            .collect())
    }
}

/// Records a worker's failure report on `meta`'s attempt: retry or dead by
/// the Rust worker's rule (`ack::record`), the worker's words clipped as an
/// attempt record keeps text; a `signature-invalid` report also counts in
/// `signet_signature_invalid_total` once the store took it. The HTTP pull
/// protocol and the push loop (a dead answer) both report through here.
pub(crate) async fn record_failure(
    leases: &Leases,
    retry: &RetryPolicy,
    meta: &TaskMeta,
    failure: RemoteFailure,
    now: i64,
) -> Result<WorkerEventKind, StoreError> {
    let mut signature_failure = None;
    let outcome = match failure {
        RemoteFailure::Retry { error, retry_after } => Outcome::Failed {
            error: clip(&error),
            retry_after,
        },
        RemoteFailure::Dead { reason, detail } => {
            let detail = clip(&detail);
            if reason == DeadReason::SignatureInvalid {
                signature_failure = signature_outcome(&detail);
            }
            Outcome::Dead(reason, detail)
        }
    };
    let ended = record(leases, retry, meta, outcome, None, now).await?;
    // Counted once the store took it: a lost lease changed nothing.
    if let Some(outcome) = signature_failure {
        metrics::signature_invalid(outcome);
    }
    Ok(ended)
}

/// The lease owner of one claim.
fn owner(key_id: &str, nonce: &str) -> String {
    format!("http:{key_id}:{nonce}")
}

/// The token of a claimed row.
fn token(task_id: &str, attempt: u32, nonce: &str) -> String {
    let text = format!("{task_id}.{attempt}.{nonce}");
    let mut out = String::from(TOKEN_PREFIX);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(text, &mut out);
    out
}

fn lost(lease: &LeaseToken) -> StoreError {
    StoreError::LeaseLost {
        task_id: lease.task_id.clone(),
        attempt: lease.attempt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_only_for_the_key_that_claimed() {
        let t = token("task_01abc", 3, &format!("{:032x}", 7u128));
        let lease = RemoteWorker::lease("key_a", &t).expect("a token");
        assert_eq!(lease.task_id, "task_01abc");
        assert_eq!(lease.attempt, 3);
        assert!(lease.worker_id.starts_with("http:key_a:"));
        let other = RemoteWorker::lease("key_b", &t).expect("a token");
        assert_ne!(other.worker_id, lease.worker_id);
        for bad in ["", "lt_", "lt_!!", "task_01abc.3.00", "lt_dGFza18xLjMuenp6"] {
            assert!(RemoteWorker::lease("key_a", bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn workers_report_only_their_reasons_and_name_the_outcome() {
        assert!(RemoteFailure::dead("signature-invalid", "mismatch: args changed".into()).is_ok());
        assert!(RemoteFailure::dead("signature-invalid", "unknown-key".into()).is_ok());
        let e = RemoteFailure::dead("signature-invalid", "bad".into()).unwrap_err();
        assert!(e.contains("algorithm-mismatch"), "{e}");
        assert!(RemoteFailure::dead("max-attempts", String::new()).is_err());
        assert!(RemoteFailure::dead("nope", String::new()).is_err());
        assert!(RemoteFailure::dead("payload-invalid", "not an object".into()).is_ok());
    }
}
