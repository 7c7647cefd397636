//! Writing outcomes: one settler task turns ended attempts into store
//! writes, with metrics and events. Every outcome that arrives while the
//! settler's writes are in flight goes into its next
//! [`Store::settle_deliveries`](signet_store::Store::settle_deliveries):
//! under load many deliveries share one round trip and one commit, and an
//! idle dispatcher writes each outcome at once (no timer to wait for). A
//! delivery's capacity goes back to the claim loop once its attempt has
//! ended and its outcome is queued here, so the time a commit takes is not
//! taken from the deliveries in flight; the outcomes queued or being
//! written are bounded by [`UNSETTLED_PER_SLOT`] times the concurrency (a
//! slow store holds back deliveries, and so claims). The dispatcher waits
//! for this task after the claim loop, so every outcome is written before
//! it stops.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt as _};
use signet_store::{
    DeadReason, DeliverySettlement, FailOutcome, LeaseToken, Settlement, StoreError, StoreResult,
};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::time::Instant;

use super::events::{DeliveryEvent, DeliveryEventKind};
use super::judge::Decision;
use super::shared::Shared;
use crate::claim::retry_store;
use crate::metrics;

/// Most outcomes written in one batch.
const SETTLE_BATCH: usize = 1024;
/// Most batches being written at once.
const SETTLES_IN_FLIGHT: usize = 4;
/// Outcomes queued or being written, per delivery the dispatcher may have
/// in flight: room for the outcomes of a few rounds of deliveries while a
/// commit is under way, and a bound when the store falls behind.
pub(super) const UNSETTLED_PER_SLOT: usize = 4;

/// An attempt that ended, on its way to the settler.
pub(super) struct Ended {
    pub(super) lease: LeaseToken,
    pub(super) decision: Decision,
    /// The metrics label of the message's target.
    pub(super) label: String,
    /// The outcome's place among those waiting to be written
    /// ([`UNSETTLED_PER_SLOT`]): never read, dropped once it is written.
    pub(super) _unsettled: OwnedSemaphorePermit,
}

/// An outcome being written, and what to say once it is.
struct Pending {
    ended: Ended,
    kind: DeliveryEventKind,
}

/// Writes the outcomes sent on `rx` until every sender is gone, with up to
/// [`SETTLES_IN_FLIGHT`] batches written at once (so an outcome does not
/// wait for a whole commit before its own starts), and waits for the last.
/// Outcomes that wait for a free write keep their leases by heartbeats
/// (a write stuck on a busy store must not let them expire and be sent
/// again), as do those being written.
pub(super) async fn settler_loop(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Ended>) {
    let mut writing = FuturesUnordered::new();
    let mut beats = FuturesUnordered::new();
    let mut queued: Vec<Ended> = Vec::new();
    let mut open = true;
    // Armed only while outcomes wait: an idle dispatcher writes each
    // outcome at once and touches no timer here.
    let beat = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(beat);
    let mut armed = false;
    loop {
        while writing.len() < SETTLES_IN_FLIGHT && !queued.is_empty() {
            let rest = queued.split_off(queued.len().min(SETTLE_BATCH));
            // Each outcome's place is freed once it is written.
            writing.push(settle_batch(&shared, std::mem::replace(&mut queued, rest)));
        }
        if queued.is_empty() {
            armed = false;
        } else if !armed {
            beat.as_mut()
                .reset(Instant::now() + shared.leases.heartbeat());
            armed = true;
        }
        if !open && queued.is_empty() && writing.is_empty() {
            break;
        }
        tokio::select! {
            n = rx.recv_many(&mut queued, SETTLE_BATCH), if open => {
                open = n > 0;
            }
            Some(()) = writing.next(), if !writing.is_empty() => {}
            () = &mut beat, if armed => {
                let leases: Vec<LeaseToken> = queued.iter().map(|e| e.lease.clone()).collect();
                let keeper = Arc::clone(&shared);
                beats.push(async move { keeper.leases.extend_all(&leases).await });
                beat.as_mut().reset(Instant::now() + shared.leases.heartbeat());
            }
            Some(()) = beats.next(), if !beats.is_empty() => {}
        }
    }
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
    let leases: Vec<LeaseToken> = (items.iter().map(|i| i.lease.clone()))
        .chain(releases.iter().map(|e| e.lease.clone()))
        .collect();
    let (written, ()) = shared
        .leases
        .keep(&leases, async {
            futures::join!(
                write_all(shared, items, now),
                release_all(shared, releases, now)
            )
        })
        .await;
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
/// errors; an entry that failed for a passing reason is retried alone. A
/// batch refused as a whole for another reason (one entry the store cannot
/// write fails the call, see
/// [`Store::settle_deliveries`](signet_store::Store::settle_deliveries))
/// is written again one entry at a time, so only the entries at fault fail
/// and the others are not sent again after their leases.
async fn write_all(
    shared: &Shared,
    items: Vec<DeliverySettlement>,
    now: i64,
) -> StoreResult<Vec<StoreResult<()>>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let answers: Vec<Option<StoreResult<()>>> = match retry_store(|| {
        shared.store.settle_deliveries(items.clone(), now)
    })
    .await
    {
        Ok(results) => results
            .into_iter()
            .map(|r| match r {
                Err(e) if e.is_retryable() => None,
                r => Some(r),
            })
            .collect(),
        Err(e) if e.is_retryable() => return Err(e),
        Err(e) => {
            tracing::warn!(error = %e, deliveries = items.len(), "a batch of delivery outcomes was refused; writing them one at a time");
            items.iter().map(|_| None).collect()
        }
    };
    let mut results = Vec::with_capacity(items.len());
    for (item, answer) in items.into_iter().zip(answers) {
        results.push(match answer {
            Some(r) => r,
            None => {
                retry_store(|| {
                    shared.store.settle_delivery(
                        &item.lease,
                        item.http.clone(),
                        item.settlement.clone(),
                        now,
                    )
                })
                .await
            }
        });
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
