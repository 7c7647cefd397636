//! Writing a delivery's attempt and outcome, with metrics and the event.

use std::time::Duration;

use signet_store::{DeadReason, LeaseToken, StoreError};

use super::events::{DeliveryEvent, DeliveryEventKind};
use super::judge::Decision;
use super::shared::Shared;
use crate::claim::retry_store;
use crate::metrics;

/// Writes the attempt and the outcome, records metrics, publishes the event.
pub(super) async fn settle(
    shared: &Shared,
    lease: &LeaseToken,
    id: &str,
    attempt: u32,
    decision: Decision,
    label: &str,
) {
    let record = match &decision {
        Decision::Delivered { record, .. }
        | Decision::Retry { record, .. }
        | Decision::Dead { record, .. } => Some(record.clone()),
        Decision::Release | Decision::LeaseLost => None,
    };
    // The attempt and the outcome are written at once: sent to the store
    // together they usually share one commit (SQLite's group commit), so a
    // delivery costs one round trip to the store instead of two. The
    // attempt is queued first.
    let record_attempt = async {
        if let Some(record) = record {
            if record.status.is_some() {
                metrics::delivery_duration(
                    label,
                    Duration::from_millis(u64::try_from(record.latency_ms).unwrap_or(0)),
                );
            }
            if let Err(e) = retry_store(|| shared.store.record_attempt(record.clone())).await {
                tracing::warn!(message_id = %id, attempt, error = %e, "could not record the delivery attempt");
            }
        }
    };
    let now = shared.clock.now_ms();
    let outcome = async {
        match decision {
            Decision::Delivered { status, .. } => {
                let result = serde_json::json!({ "status": status })
                    .to_string()
                    .into_bytes();
                let r = shared.leases.complete(lease, Some(result), now).await;
                if r.is_ok() {
                    metrics::delivered(label);
                    tracing::debug!(message_id = %id, attempt, status, "message delivered");
                }
                (r, DeliveryEventKind::Delivered { status })
            }
            Decision::Retry { at_ms, error, .. } => {
                metrics::delivery_failed(label);
                let r = shared.leases.retry_at(lease, &error, at_ms, now).await;
                if r.is_ok() {
                    tracing::info!(message_id = %id, attempt, retry_in_ms = at_ms.saturating_sub(now), %error, "delivery attempt failed; will retry");
                }
                (r, DeliveryEventKind::Retrying { at_ms, error })
            }
            Decision::Dead { reason, detail, .. } => {
                if reason == DeadReason::MaxAttempts {
                    metrics::delivery_failed(label);
                }
                let r = shared
                    .leases
                    .dead(lease, &detail, reason, &detail, now)
                    .await;
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
        }
    };
    let ((), (written, kind)) = tokio::join!(record_attempt, outcome);
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
