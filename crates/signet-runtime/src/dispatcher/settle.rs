//! Writing a delivery's outcome and its attempt, with metrics and the event.

use std::time::Duration;

use signet_store::{DeadReason, FailOutcome, LeaseToken, Settlement, StoreError};

use super::events::{DeliveryEvent, DeliveryEventKind};
use super::judge::{AttemptRecord, Decision};
use super::shared::Shared;
use crate::claim::retry_store;
use crate::metrics;

/// Writes the outcome and the attempt, records metrics, publishes the event.
pub(super) async fn settle(
    shared: &Shared,
    lease: &LeaseToken,
    id: &str,
    attempt: u32,
    decision: Decision,
    label: &str,
) {
    let now = shared.clock.now_ms();
    // The outcome and the attempt's history event (with the HTTP exchange)
    // are one store write: a delivery costs one round trip, and the history
    // holds exactly the attempts whose outcome was written.
    let (written, kind) = match decision {
        Decision::Delivered { status, record } => {
            let result = serde_json::json!({ "status": status })
                .to_string()
                .into_bytes();
            let settlement = Settlement::Delivered {
                result: Some(result),
            };
            let r = write(shared, lease, &record, settlement, label, now).await;
            if r.is_ok() {
                metrics::delivered(label);
                tracing::debug!(message_id = %id, attempt, status, "message delivered");
            }
            (r, DeliveryEventKind::Delivered { status })
        }
        Decision::Retry {
            at_ms,
            error,
            record,
        } => {
            metrics::delivery_failed(label);
            let settlement = Settlement::Failed {
                error: error.clone(),
                outcome: FailOutcome::Retry { at_ms },
            };
            let r = write(shared, lease, &record, settlement, label, now).await;
            if r.is_ok() {
                tracing::info!(message_id = %id, attempt, retry_in_ms = at_ms.saturating_sub(now), %error, "delivery attempt failed; will retry");
            }
            (r, DeliveryEventKind::Retrying { at_ms, error })
        }
        Decision::Dead {
            reason,
            detail,
            record,
        } => {
            if reason == DeadReason::MaxAttempts {
                metrics::delivery_failed(label);
            }
            let settlement = Settlement::Failed {
                error: record.error.clone().unwrap_or_else(|| detail.clone()),
                outcome: FailOutcome::Dead {
                    reason,
                    detail: detail.clone(),
                },
            };
            let r = write(shared, lease, &record, settlement, label, now).await;
            if r.is_ok() {
                metrics::message_dead(label, reason);
                tracing::warn!(message_id = %id, attempt, %reason, %detail, "message dead-lettered");
            }
            (r, DeliveryEventKind::Dead { reason, detail })
        }
        Decision::Release => {
            let r = shared.leases.release(lease, now).await;
            (r, DeliveryEventKind::Released)
        }
        Decision::LeaseLost => {
            tracing::info!(message_id = %id, "lease lost during delivery; the outcome is dropped");
            (Ok(()), DeliveryEventKind::LeaseLost)
        }
    };
    let kind = match written {
        Ok(()) => kind,
        Err(StoreError::LeaseLost { .. }) => DeliveryEventKind::LeaseLost,
        Err(e) => {
            tracing::error!(message_id = %id, error = %e, "could not record the delivery outcome; the message will be rescued after its lease expires");
            DeliveryEventKind::StoreFailed {
                error: e.to_string(),
            }
        }
    };
    if shared.events.receiver_count() > 0 {
        let _ = shared.events.send(DeliveryEvent {
            message_id: id.to_owned(),
            attempt,
            kind,
        });
    }
}

/// Writes one settled attempt, retrying transient store errors.
async fn write(
    shared: &Shared,
    lease: &LeaseToken,
    record: &AttemptRecord,
    settlement: Settlement,
    label: &str,
    now: i64,
) -> Result<(), StoreError> {
    if record.http.status.is_some() {
        metrics::delivery_duration(
            label,
            Duration::from_millis(u64::try_from(record.http.latency_ms).unwrap_or(0)),
        );
    }
    retry_store(|| {
        shared
            .store
            .settle_delivery(lease, record.http.clone(), settlement.clone(), now)
    })
    .await
}
