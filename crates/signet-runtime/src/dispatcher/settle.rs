//! Writing outcomes: one settler task turns ended attempts into store
//! writes, with metrics and events. Every outcome that arrives while the
//! settler's writes are in flight goes into its next
//! [`Store::settle_deliveries`](signet_store::Store::settle_deliveries):
//! under load many deliveries share one round trip and one commit, and an
//! idle dispatcher writes each outcome at once (no timer to wait for). A
//! delivery's capacity goes back to the claim loop once its outcome is
//! written, so the loop's drain on shutdown waits for every write.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt as _};
use signet_store::{
    DeadReason, DeliverySettlement, FailOutcome, LeaseToken, Settlement, StoreError, StoreResult,
};
use tokio::sync::{mpsc, OwnedSemaphorePermit};

use super::events::{DeliveryEvent, DeliveryEventKind};
use super::judge::Decision;
use super::shared::Shared;
use crate::claim::retry_store;
use crate::metrics;

/// Most outcomes written in one batch.
const SETTLE_BATCH: usize = 1024;
/// Most batches being written at once.
const SETTLES_IN_FLIGHT: usize = 4;

/// An attempt that ended, on its way to the settler.
pub(super) struct Ended {
    pub(super) lease: LeaseToken,
    pub(super) decision: Decision,
    /// The metrics label of the message's target.
    pub(super) label: String,
    /// The delivery's share of the dispatcher's capacity: never read,
    /// dropped (and so returned to the claim loop) once the outcome is
    /// written.
    pub(super) _slot: OwnedSemaphorePermit,
}

/// An outcome being written, and what to say once it is.
struct Pending {
    ended: Ended,
    kind: DeliveryEventKind,
}

/// Writes the outcomes sent on `rx` until every sender is gone, with up to
/// [`SETTLES_IN_FLIGHT`] batches written at once (so an outcome does not
/// wait for a whole commit before its own starts), and waits for the last.
pub(super) async fn settler_loop(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Ended>) {
    let mut writing = FuturesUnordered::new();
    loop {
        let mut buf = Vec::new();
        tokio::select! {
            n = rx.recv_many(&mut buf, SETTLE_BATCH), if writing.len() < SETTLES_IN_FLIGHT => {
                if n == 0 {
                    break;
                }
                // Each delivery's permit goes back with its outcome, once
                // written.
                writing.push(settle_batch(&shared, buf));
            }
            Some(()) = writing.next(), if !writing.is_empty() => {}
        }
    }
    while writing.next().await.is_some() {}
}

/// Writes a batch: settled attempts in one `settle_deliveries`, releases
/// beside it; then metrics, logs and events.
async fn settle_batch(shared: &Shared, batch: Vec<Ended>) {
    let now = shared.clock.now_ms();
    let mut items = Vec::with_capacity(batch.len());
    let mut pending = Vec::with_capacity(batch.len());
    let mut releases = Vec::new();
    for ended in batch {
        let (item, kind) = match &ended.decision {
            Decision::Delivered { status, record } => {
                let result = format!("{{\"status\":{status}}}").into_bytes();
                let settlement = Settlement::Delivered {
                    result: Some(result),
                };
                let kind = DeliveryEventKind::Delivered { status: *status };
                (item(&ended, &record.http, settlement), kind)
            }
            Decision::Retry {
                at_ms,
                error,
                record,
            } => {
                metrics::delivery_failed(&ended.label);
                let settlement = Settlement::Failed {
                    error: error.clone(),
                    outcome: FailOutcome::Retry { at_ms: *at_ms },
                };
                let kind = DeliveryEventKind::Retrying {
                    at_ms: *at_ms,
                    error: error.clone(),
                };
                (item(&ended, &record.http, settlement), kind)
            }
            Decision::Dead {
                reason,
                detail,
                record,
            } => {
                if *reason == DeadReason::MaxAttempts {
                    metrics::delivery_failed(&ended.label);
                }
                let settlement = Settlement::Failed {
                    error: record.error.clone().unwrap_or_else(|| detail.clone()),
                    outcome: FailOutcome::Dead {
                        reason: *reason,
                        detail: detail.clone(),
                    },
                };
                let kind = DeliveryEventKind::Dead {
                    reason: *reason,
                    detail: detail.clone(),
                };
                (item(&ended, &record.http, settlement), kind)
            }
            Decision::Release => {
                releases.push(ended);
                continue;
            }
            Decision::LeaseLost => {
                tracing::info!(message_id = %ended.lease.task_id, "lease lost during delivery; the outcome is dropped");
                publish(shared, &ended, DeliveryEventKind::LeaseLost);
                continue;
            }
        };
        if let Some(latency) = item.http.status.map(|_| item.http.latency_ms) {
            metrics::delivery_duration(
                &ended.label,
                Duration::from_millis(u64::try_from(latency).unwrap_or(0)),
            );
        }
        items.push(item);
        pending.push(Pending { ended, kind });
    }
    let (written, ()) = futures::join!(
        write_all(shared, items, now),
        release_all(shared, releases, now)
    );
    match written {
        Ok(results) => {
            for (p, r) in pending.into_iter().zip(results) {
                finish(shared, p, r, now);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, deliveries = pending.len(), "could not record delivery outcomes; the messages will be rescued after their leases expire");
            for p in pending {
                let kind = DeliveryEventKind::StoreFailed {
                    error: e.to_string(),
                };
                publish(shared, &p.ended, kind);
            }
        }
    }
}

fn item(
    ended: &Ended,
    http: &signet_store::HttpExchange,
    settlement: Settlement,
) -> DeliverySettlement {
    DeliverySettlement {
        lease: ended.lease.clone(),
        http: http.clone(),
        settlement,
    }
}

/// Writes the settled attempts in one call, retrying transient store
/// errors; an entry that failed for a passing reason is retried alone.
async fn write_all(
    shared: &Shared,
    items: Vec<DeliverySettlement>,
    now: i64,
) -> StoreResult<Vec<StoreResult<()>>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let mut results = retry_store(|| shared.store.settle_deliveries(items.clone(), now)).await?;
    for (item, r) in items.into_iter().zip(results.iter_mut()) {
        if matches!(r, Err(e) if e.is_retryable()) {
            *r = retry_store(|| {
                shared.store.settle_delivery(
                    &item.lease,
                    item.http.clone(),
                    item.settlement.clone(),
                    now,
                )
            })
            .await;
        }
    }
    Ok(results)
}

/// Gives back the deliveries stopped by the end of the shutdown grace
/// period (their attempt does not count).
async fn release_all(shared: &Shared, releases: Vec<Ended>, now: i64) {
    futures::future::join_all(releases.into_iter().map(|ended| async move {
        let kind = match shared.leases.release(&ended.lease, now).await {
            Ok(()) => DeliveryEventKind::Released,
            Err(e) => failed_write(&ended, &e),
        };
        publish(shared, &ended, kind);
    }))
    .await;
}

/// After one outcome's write: metrics, log and event.
fn finish(shared: &Shared, p: Pending, written: StoreResult<()>, now: i64) {
    let Pending { ended, kind } = p;
    let id = &ended.lease.task_id;
    let attempt = ended.lease.attempt;
    let kind = match written {
        Ok(()) => {
            match &kind {
                DeliveryEventKind::Delivered { status } => {
                    metrics::delivered(&ended.label);
                    tracing::debug!(message_id = %id, attempt, status, "message delivered");
                }
                DeliveryEventKind::Retrying { at_ms, error } => {
                    tracing::info!(message_id = %id, attempt, retry_in_ms = at_ms.saturating_sub(now), %error, "delivery attempt failed; will retry");
                }
                DeliveryEventKind::Dead { reason, detail } => {
                    metrics::message_dead(&ended.label, *reason);
                    tracing::warn!(message_id = %id, attempt, %reason, %detail, "message dead-lettered");
                }
                _ => {}
            }
            kind
        }
        Err(e) => failed_write(&ended, &e),
    };
    publish(shared, &ended, kind);
}

/// The event of an outcome that could not be written.
fn failed_write(ended: &Ended, e: &StoreError) -> DeliveryEventKind {
    match e {
        StoreError::LeaseLost { .. } => DeliveryEventKind::LeaseLost,
        e => {
            tracing::error!(message_id = %ended.lease.task_id, error = %e, "could not record the delivery outcome; the message will be rescued after its lease expires");
            DeliveryEventKind::StoreFailed {
                error: e.to_string(),
            }
        }
    }
}

/// Publishes an outcome to subscribers, if any.
fn publish(shared: &Shared, ended: &Ended, kind: DeliveryEventKind) {
    if shared.events.receiver_count() > 0 {
        let _ = shared.events.send(DeliveryEvent {
            message_id: ended.lease.task_id.clone(),
            attempt: ended.lease.attempt,
            kind,
        });
    }
}
