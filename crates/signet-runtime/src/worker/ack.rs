//! Writing outcomes: one acker task turns finished runs into store
//! writes, successes in one `complete_batch`, the rest concurrently, and
//! returns each run's capacity once its outcome is written.
//!
//! What an outcome means for the task (retry with the backoff or dead with
//! `max-attempts` when no attempt is left, the metrics, the logs) is decided
//! in [`record`] and [`record_successes`] alone; the HTTP worker service
//! (`remote`) calls them too.

use std::sync::Arc;
use std::time::Duration;

use signet_store::{DeadReason, LeaseToken, Store, StoreError};
use tokio::sync::{mpsc, OwnedSemaphorePermit};

use super::events::WorkerEventKind;
use super::shared::{lease_of, Shared};
use crate::backoff::RetryPolicy;
use crate::claim::{retry_store, Leases};
use crate::clock::duration_ms;
use crate::handler::TaskMeta;
use crate::metrics;

/// A run that ended, on its way to the acker.
pub(super) struct Finished {
    pub(super) meta: Arc<TaskMeta>,
    pub(super) outcome: Outcome,
    pub(super) ran: Option<Duration>,
    /// The run's share of the worker's capacity: never read, dropped (and
    /// so returned to the claim loop) once the outcome is written.
    pub(super) _slot: OwnedSemaphorePermit,
}

pub(crate) enum Outcome {
    Success(Option<Vec<u8>>),
    /// A failed attempt: retry (after `retry_after` when given, else after
    /// the retry policy's backoff) or, out of attempts, dead with
    /// `max-attempts`.
    Failed {
        error: String,
        retry_after: Option<Duration>,
    },
    Dead(DeadReason, String),
    Release,
    LeaseLost,
}

impl Outcome {
    /// A failed attempt retried after the retry policy's backoff.
    pub(super) fn failed(error: String) -> Self {
        Outcome::Failed {
            error,
            retry_after: None,
        }
    }
}

/// Turns finished runs into store writes, batching successes.
pub(super) async fn acker_loop(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Finished>) {
    const ACK_BATCH: usize = 2048;
    let mut buf = Vec::with_capacity(ACK_BATCH);
    loop {
        if rx.recv_many(&mut buf, ACK_BATCH).await == 0 {
            return;
        }
        // Each run's permit goes back with its Finished, once written.
        ack(&shared, &mut buf).await;
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
    let items: Vec<Success<'_>> = successes
        .iter()
        .map(|f| Success {
            meta: &f.meta,
            result: success_result(f),
            ran: f.ran,
        })
        .collect();
    let results = match record_successes(&shared.store, &shared.leases, &items, now).await {
        Ok(r) => r,
        Err(e) => {
            for f in &successes {
                shared.publish(
                    &f.meta,
                    WorkerEventKind::StoreFailed {
                        error: e.to_string(),
                    },
                );
            }
            return;
        }
    };
    for (f, r) in successes.iter().zip(results) {
        let kind = match r {
            Ok(()) => WorkerEventKind::Succeeded,
            Err(StoreError::LeaseLost { .. }) => WorkerEventKind::LeaseLost,
            Err(e) => WorkerEventKind::StoreFailed {
                error: e.to_string(),
            },
        };
        shared.publish(&f.meta, kind);
    }
}

/// A successful run to record.
pub(super) struct Success<'a> {
    pub(super) meta: &'a TaskMeta,
    pub(super) result: Option<Vec<u8>>,
    pub(super) ran: Option<Duration>,
}

/// Records successes in one `complete_batch` (an entry that failed for a
/// passing reason is retried alone) and counts them; answers each entry's
/// write, in order, or the error that stopped the whole batch. A lost
/// lease is `StoreError::LeaseLost` (logged here).
pub(super) async fn record_successes(
    store: &Arc<dyn Store>,
    leases: &Leases,
    successes: &[Success<'_>],
    now: i64,
) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    if successes.is_empty() {
        return Ok(Vec::new());
    }
    // Built afresh for each try: the store takes the items by value.
    let items = || -> Vec<(LeaseToken, Option<Vec<u8>>)> {
        successes
            .iter()
            .map(|f| (lease_of(f.meta), f.result.clone()))
            .collect()
    };
    let results = match retry_store(|| store.complete_batch(items(), now)).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, tasks = successes.len(), "could not record successes; the tasks will run again after their leases expire");
            return Err(e);
        }
    };
    let mut out = Vec::with_capacity(successes.len());
    let mut run: Option<(&str, &str, u64)> = None;
    for (f, r) in successes.iter().zip(results) {
        let r = match r {
            Err(e) if e.is_retryable() => {
                let lease = lease_of(f.meta);
                leases.complete(&lease, f.result.clone(), now).await
            }
            other => other,
        };
        match &r {
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
            }
            Err(StoreError::LeaseLost { .. }) => {
                tracing::info!(task_id = %f.meta.id, "lease lost before the success was recorded; the result is dropped");
            }
            Err(e) => {
                tracing::error!(task_id = %f.meta.id, error = %e, "could not record the outcome; the task will be rescued after its lease expires");
            }
        }
        out.push(r);
    }
    if let Some((q, n, c)) = run {
        metrics::succeeded(q, n, c);
    }
    Ok(out)
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
    let kind = match record(
        &shared.leases,
        &shared.retry,
        &f.meta,
        f.outcome,
        f.ran,
        now,
    )
    .await
    {
        Ok(kind) => kind,
        Err(StoreError::LeaseLost { .. }) => WorkerEventKind::LeaseLost,
        Err(e) => store_failed(&f.meta, &e),
    };
    shared.publish(&f.meta, kind);
}

/// Writes one outcome of `meta`'s attempt and says how it ended: the one
/// decision between a retry (after `retry_after`, else `retry`'s backoff)
/// and a dead letter with `max-attempts` once no attempt is left, with its
/// metrics and logs. A lost lease is `StoreError::LeaseLost` (logged here);
/// an `Outcome::LeaseLost` writes nothing.
pub(crate) async fn record(
    leases: &Leases,
    retry: &RetryPolicy,
    meta: &TaskMeta,
    outcome: Outcome,
    ran: Option<Duration>,
    now: i64,
) -> Result<WorkerEventKind, StoreError> {
    let lease = lease_of(meta);
    let (write, kind) = match outcome {
        Outcome::Success(result) => {
            let r = leases.complete(&lease, result, now).await;
            if r.is_ok() {
                if let Some(d) = ran {
                    metrics::run_duration(&meta.queue, &meta.name, d);
                }
                metrics::succeeded(&meta.queue, &meta.name, 1);
            }
            (r, WorkerEventKind::Succeeded)
        }
        Outcome::LeaseLost => {
            tracing::info!(task_id = %meta.id, "lease lost while running; the run was abandoned");
            return Ok(WorkerEventKind::LeaseLost);
        }
        Outcome::Release => {
            let r = leases.release(&lease, now).await;
            (r, WorkerEventKind::Released)
        }
        Outcome::Dead(reason, detail) => {
            let r = leases.dead(&lease, &detail, reason, &detail, now).await;
            if r.is_ok() {
                metrics::dead(&meta.queue, &meta.name, reason);
                tracing::warn!(task_id = %meta.id, queue = %meta.queue, task = %meta.name, attempt = meta.attempt, %reason, %detail, "task dead-lettered");
            }
            (r, WorkerEventKind::Dead { reason, detail })
        }
        Outcome::Failed { error, retry_after } => {
            metrics::failed(&meta.queue, &meta.name);
            if let Some(d) = ran {
                metrics::run_duration(&meta.queue, &meta.name, d);
            }
            if meta.attempt >= meta.max_attempts {
                let detail = format!(
                    "all {} attempts failed; last error: {error}",
                    meta.max_attempts
                );
                let reason = DeadReason::MaxAttempts;
                let r = leases.dead(&lease, &error, reason, &detail, now).await;
                if r.is_ok() {
                    metrics::dead(&meta.queue, &meta.name, reason);
                    tracing::warn!(task_id = %meta.id, queue = %meta.queue, task = %meta.name, attempt = meta.attempt, %reason, %detail, "task dead-lettered");
                }
                (r, WorkerEventKind::Dead { reason, detail })
            } else {
                let wait = retry_after
                    .unwrap_or_else(|| retry.delay(meta.attempt, &mut rand::thread_rng()));
                let at_ms = now.saturating_add(duration_ms(wait));
                let r = leases.retry_at(&lease, &error, at_ms, now).await;
                if r.is_ok() {
                    metrics::retried(&meta.queue, &meta.name);
                    tracing::info!(task_id = %meta.id, task = %meta.name, attempt = meta.attempt, retry_in = ?wait, %error, "task attempt failed; will retry");
                }
                (r, WorkerEventKind::Retrying { at_ms, error })
            }
        }
    };
    match write {
        Ok(()) => Ok(kind),
        Err(e @ StoreError::LeaseLost { .. }) => {
            tracing::info!(task_id = %meta.id, "lease lost before the outcome was recorded; dropped");
            Err(e)
        }
        Err(e) => Err(e),
    }
}
