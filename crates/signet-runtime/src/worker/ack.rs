//! Writing outcomes: one acker task turns finished runs into store
//! writes, successes in one `complete_batch`, the rest concurrently, and
//! returns each run's capacity once its outcome is written.

use std::sync::Arc;
use std::time::Duration;

use signet_store::{DeadReason, LeaseToken, StoreError};
use tokio::sync::{mpsc, OwnedSemaphorePermit};

use super::events::WorkerEventKind;
use super::shared::{lease_of, Shared};
use crate::claim::retry_store;
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

pub(super) enum Outcome {
    Success(Option<Vec<u8>>),
    /// A failed attempt: retry or, out of attempts, dead with `max-attempts`.
    Failed(String),
    Dead(DeadReason, String),
    Release,
    LeaseLost,
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
                match shared.leases.complete(&lease, result, now).await {
                    Ok(()) => WorkerEventKind::Succeeded,
                    Err(e) => store_failed(&f.meta, &e),
                }
            }
            Err(e) => store_failed(&f.meta, &e),
        };
        shared.publish(&f.meta, kind);
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
            shared.publish(meta, WorkerEventKind::LeaseLost);
            return;
        }
        Outcome::Release => {
            let r = shared.leases.release(&lease, now).await;
            (r, WorkerEventKind::Released)
        }
        Outcome::Dead(reason, detail) => {
            let r = shared
                .leases
                .dead(&lease, &detail, reason, &detail, now)
                .await;
            if r.is_ok() {
                metrics::dead(&meta.queue, &meta.name, reason);
                tracing::warn!(task_id = %meta.id, queue = %meta.queue, task = %meta.name, attempt = meta.attempt, %reason, %detail, "task dead-lettered");
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
                let r = shared
                    .leases
                    .dead(&lease, &error, reason, &detail, now)
                    .await;
                if r.is_ok() {
                    metrics::dead(&meta.queue, &meta.name, reason);
                    tracing::warn!(task_id = %meta.id, queue = %meta.queue, task = %meta.name, attempt = meta.attempt, %reason, %detail, "task dead-lettered");
                }
                (r, WorkerEventKind::Dead { reason, detail })
            } else {
                let wait = shared.retry.delay(meta.attempt, &mut rand::thread_rng());
                let at_ms = now.saturating_add(duration_ms(wait));
                let r = shared.leases.retry_at(&lease, &error, at_ms, now).await;
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
    shared.publish(meta, kind);
}
