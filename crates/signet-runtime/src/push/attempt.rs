//! One push: the checks before the request, a fresh signature with the
//! target's secret, the request (lease heartbeated throughout), the answer
//! judged (`answer`) and the outcome written through the worker's path
//! (`worker::record`, `worker::record_failure`), so retries, dead letters,
//! history, metrics and callbacks are a task's like any other.

use std::sync::Arc;
use std::time::Instant;

use signet_store::{DeadReason, LeaseToken, PushBinding, TaskRow};
use tokio::sync::OwnedSemaphorePermit;

use super::answer::{Answer, Judge, MAX_PUSH_RESULT_BYTES};
use super::drain::PushShared;
use crate::claim::{Held, Leases};
use crate::delivery::OutgoingRequest;
use crate::handler::TaskMeta;
use crate::message::SignatureProfile;
use crate::metrics;
use crate::targets::{check_url, CachedTarget};
use crate::worker::{record, record_failure, Outcome, RemoteFailure, WorkItem};
use crate::RetryPolicy;

/// The pushes of one binding's loop.
pub(super) struct Pushes {
    pub(super) shared: Arc<PushShared>,
    pub(super) binding: PushBinding,
    pub(super) leases: Leases,
    /// The loop's lease owner.
    pub(super) owner: Arc<str>,
}

/// What one attempt comes to before it is written.
enum Ended {
    Answer(Answer),
    LeaseLost,
    Release,
}

/// Pushes one claimed task and writes how it went.
pub(super) async fn push(pushes: Arc<Pushes>, row: TaskRow, _slot: OwnedSemaphorePermit) {
    let p = &*pushes;
    let meta = TaskMeta {
        id: row.envelope.id.clone(),
        queue: row.envelope.queue.clone(),
        name: row.envelope.name.clone(),
        headers: row.envelope.headers.clone(),
        attempt: row.attempt,
        max_attempts: row.envelope.max_attempts,
        worker_id: Arc::clone(&p.owner),
    };
    let started = Instant::now();
    let ended = attempt(p, &row).await;
    let ran = Some(started.elapsed());
    let now = p.shared.clock.now_ms();
    let retry = RetryPolicy::default();
    let written = match ended {
        Ended::Answer(Answer::Succeeded(result)) => {
            record(&p.leases, &retry, &meta, Outcome::Success(result), ran, now).await
        }
        Ended::Answer(Answer::Failed(failure)) => {
            record_failure(&p.leases, &retry, &meta, failure, now).await
        }
        Ended::Answer(Answer::BadSignature(detail)) => {
            let failure = RemoteFailure::Retry {
                error: format!("response-signature-invalid: {detail}"),
                retry_after: None,
            };
            let r = record_failure(&p.leases, &retry, &meta, failure, now).await;
            if r.is_ok() {
                metrics::push_response_signature_invalid(&meta.queue);
            }
            r
        }
        Ended::LeaseLost => record(&p.leases, &retry, &meta, Outcome::LeaseLost, ran, now).await,
        Ended::Release => record(&p.leases, &retry, &meta, Outcome::Release, ran, now).await,
    };
    match written {
        Ok(kind) => {
            tracing::debug!(task_id = %meta.id, queue = %meta.queue, attempt = meta.attempt, outcome = ?kind, "push attempt recorded")
        }
        // Logged where it was found.
        Err(signet_store::StoreError::LeaseLost { .. }) => {}
        Err(e) => {
            tracing::error!(task_id = %meta.id, error = %e, "could not record the push outcome; the task will be rescued after its lease expires")
        }
    }
}

/// Everything up to the judged answer.
async fn attempt(p: &Pushes, row: &TaskRow) -> Ended {
    let now = p.shared.clock.now_ms();
    if let Some(exp) = row.envelope.expires_at_ms.filter(|exp| *exp <= now) {
        return Ended::Answer(Answer::Failed(RemoteFailure::Dead {
            reason: DeadReason::Expired,
            detail: format!("expired at {exp} (unix ms) before it was pushed"),
        }));
    }
    let (target, url) = match prepare(p).await {
        Ok(ready) => ready,
        Err(error) => {
            return Ended::Answer(Answer::Failed(RemoteFailure::Retry {
                error,
                retry_after: None,
            }))
        }
    };
    let lease = LeaseToken::of(row);
    match p.leases.hold(&lease, send(p, row, &target, url)).await {
        Held::Done(answer) => Ended::Answer(answer),
        Held::LeaseLost => Ended::LeaseLost,
        Held::HardStopped => Ended::Release,
    }
}

/// The binding's target and URL, checked again (the target may have been
/// deleted, or its rules changed, since the queue was bound). A problem
/// here is the binding's, not the task's: a failed attempt, retried.
async fn prepare(p: &Pushes) -> Result<(Arc<CachedTarget>, url::Url), String> {
    let b = &p.binding;
    let target = match p.shared.targets.get(&b.target_id).await {
        Ok(Some(t)) => t,
        Ok(None) => {
            return Err(format!(
                "target {} of the push binding of {} does not exist (it was deleted); bind the queue again with another target",
                b.target_id, b.queue
            ))
        }
        Err(e) => return Err(format!("target {} could not be read: {e}", b.target_id)),
    };
    let url =
        url::Url::parse(&b.url).map_err(|e| format!("the push binding's URL is not a URL: {e}"))?;
    check_url(&target.record, &url)?;
    Ok((target, url))
}

/// Builds, signs, sends and judges one request.
async fn send(p: &Pushes, row: &TaskRow, target: &CachedTarget, url: url::Url) -> Answer {
    let id = row.envelope.id.as_str();
    // The claimed-task object of the pull protocol, without the lease.
    let body = match serde_json::to_vec(&WorkItem::from(row)) {
        Ok(b) => b,
        Err(e) => {
            return Answer::Failed(RemoteFailure::Retry {
                error: format!("cannot write the request body: {e}"),
                retry_after: None,
            })
        }
    };
    let now = p.shared.clock.now_ms();
    let signature = match target.sign(SignatureProfile::Standard, id, now, &body) {
        Ok(headers) => headers,
        Err(error) => {
            return Answer::Failed(RemoteFailure::Retry {
                error,
                retry_after: None,
            })
        }
    };
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    headers.extend(signature);
    let outcome = p
        .shared
        .http
        .send(OutgoingRequest {
            method: reqwest::Method::POST,
            url,
            headers,
            body,
            timeout: Some(std::time::Duration::from_millis(u64::from(
                p.binding.timeout_ms,
            ))),
            // One byte more than a result may be, to tell an oversize answer.
            keep_body: MAX_PUSH_RESULT_BYTES + 1,
        })
        .await;
    let keys = p
        .binding
        .require_signed_response
        .then(|| target.keys(SignatureProfile::Standard, p.shared.clock.now_ms()));
    Judge {
        task_id: id,
        answer_keys: keys.as_deref(),
        now_ms: p.shared.clock.now_ms(),
        retry_after_cap: p.shared.http.config().max_retry_after,
    }
    .answer(outcome)
}
