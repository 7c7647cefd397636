//! One delivery attempt: the checks before any request (at-rest
//! signature, expiry, the spec, the target and its rules, an IP literal),
//! the target's limits, a fresh signature, the request and its judgement.

use std::sync::Arc;
use std::time::Duration;

use signet_sign::standard::{self, STANDARD_HEADERS, SVIX_HEADERS};
use signet_store::{DeadReason, LeaseToken, TaskRow, MAX_ATTEMPT_BODY_BYTES};
use tokio::sync::{mpsc, OwnedSemaphorePermit};

use super::judge::{attempt_record, decide, Decision};
use super::settle::Ended;
use super::shared::Shared;
use crate::claim::Held;
use crate::delivery::{AttemptOutcome, OutgoingRequest};
use crate::error::RuntimeError;
use crate::message::{MessageSpec, RetrySchedule, SignatureProfile};
use crate::metrics;
use crate::targets::{check_url, CachedTarget};
use crate::verify::Check;

/// A delivery ready to send.
struct Prepared {
    spec: MessageSpec,
    url: url::Url,
    method: reqwest::Method,
    target: Option<Arc<CachedTarget>>,
    schedule: RetrySchedule,
}

/// One delivery attempt of one claimed message, from checks to the store.
pub(super) async fn deliver(
    shared: Arc<Shared>,
    row: TaskRow,
    check: Check,
    slot: OwnedSemaphorePermit,
    settler: mpsc::UnboundedSender<Ended>,
) {
    let lease = LeaseToken::of(&row);
    let id = row.envelope.id.clone();
    let attempt = row.attempt;
    // The target the message names, once its spec is read: a message whose
    // target is gone is still counted under that target.
    let mut target_id = None;
    let prepared = prepare(&shared, &row, check, &mut target_id).await;
    let signer = |name| metrics::Signer::of(target_id.as_deref(), name);
    let (decision, label) = match prepared {
        Err(Early::Dead(reason, detail)) => {
            let record = attempt_record(Duration::ZERO, None, Some(&detail), Vec::new());
            (
                Decision::Dead {
                    reason,
                    detail,
                    record,
                },
                metrics::target_label(signer(None)),
            )
        }
        Err(Early::Fail(error, schedule)) => {
            let outcome = AttemptOutcome::Failed {
                error,
                latency: Duration::ZERO,
            };
            let decision = judge(
                outcome,
                attempt,
                row.envelope.max_attempts,
                &schedule,
                &shared,
            );
            (decision, metrics::target_label(signer(None)))
        }
        Ok(prepared) => {
            let name = prepared.target.as_ref().map(|t| t.record.name.as_str());
            let label = metrics::target_label(signer(name));
            let send = send(&shared, &id, attempt, row.envelope.max_attempts, prepared);
            let decision = match shared.leases.hold(&lease, send).await {
                Held::Done(d) => d,
                Held::LeaseLost => Decision::LeaseLost,
                Held::HardStopped => Decision::Release,
            };
            (decision, label)
        }
    };
    // Wait for room among the outcomes being written (a slow store holds
    // the delivery's slot here, and so holds back claims), keeping the
    // lease meanwhile: the outcome is decided and must still be written.
    // The semaphore is never closed.
    let room = Arc::clone(&shared.unsettled).acquire_owned();
    let Ok(unsettled) = shared.leases.keep(std::slice::from_ref(&lease), room).await else {
        tracing::error!(message_id = %id, "the dispatcher's outcome bound is closed; the message will be rescued after its lease expires");
        return;
    };
    let ended = Ended {
        lease,
        decision,
        label,
        _unsettled: unsettled,
    };
    let sent = settler.send(ended);
    // The outcome is queued: the slot goes back to the claim loop now, not
    // after the commit.
    drop(slot);
    if sent.is_err() {
        // The settler outlives every delivery (the dispatcher awaits it
        // after the claim loop); were it gone, the lease expires and the
        // message is rescued.
        tracing::error!(message_id = %id, "the dispatcher's settler is gone; the message will be rescued after its lease expires");
    }
}

/// Why a message is not sent on this attempt.
enum Early {
    /// It never will be: dead-letter it.
    Dead(DeadReason, String),
    /// Not now (the target could not be read or opened): a failed attempt,
    /// retried on this schedule.
    Fail(String, RetrySchedule),
}

/// Everything that can refuse a message before any request: the at-rest
/// signature, expiry, the spec, the target and its rules, an IP literal.
/// Sets `target_id` to the target the spec names once it is read.
async fn prepare(
    shared: &Shared,
    row: &TaskRow,
    check: Check,
    target_id: &mut Option<String>,
) -> Result<Prepared, Early> {
    if let Err(e) = check {
        metrics::signature_invalid(e.reason());
        return Err(Early::Dead(
            DeadReason::SignatureInvalid,
            format!("{}: {}", e.reason(), e.message()),
        ));
    }
    let spec = MessageSpec::from_args(&row.envelope.args);
    if let Ok(spec) = &spec {
        target_id.clone_from(&spec.target);
    }
    let now = shared.clock.now_ms();
    if let Some(exp) = row.envelope.expires_at_ms.filter(|exp| *exp <= now) {
        return Err(Early::Dead(
            DeadReason::Expired,
            format!("expired at {exp} (unix ms) before it was delivered"),
        ));
    }
    let spec = spec.map_err(|e| Early::Dead(DeadReason::PayloadInvalid, e))?;
    let url = spec
        .validate()
        .map_err(|e| Early::Dead(DeadReason::PayloadInvalid, e.to_string()))?;
    let method = reqwest::Method::from_bytes(spec.method.as_bytes()).map_err(|_| {
        Early::Dead(
            DeadReason::PayloadInvalid,
            format!("method {:?} is not valid", spec.method),
        )
    })?;
    let schedule = spec.retry_schedule(&shared.retry);
    let target = match &spec.target {
        None => None,
        Some(id) => Some(match shared.targets.get(id).await {
            Ok(Some(t)) => t,
            Ok(None) => {
                return Err(Early::Dead(
                    DeadReason::TargetRefused,
                    format!("target {id} does not exist (it was deleted)"),
                ))
            }
            // A store or master-key problem: not the message's fault, so
            // the attempt fails and is retried.
            Err(e @ RuntimeError::MasterKey(_)) => {
                return Err(Early::Fail(e.to_string(), schedule))
            }
            Err(e) => {
                return Err(Early::Fail(
                    format!("target {id} could not be read: {e}"),
                    schedule,
                ))
            }
        }),
    };
    if let Some(t) = &target {
        check_url(&t.record, &url).map_err(|m| Early::Dead(DeadReason::TargetRefused, m))?;
    }
    if let Err(refusal) = shared.http.policy().check_url(&url) {
        return Err(Early::Dead(DeadReason::TargetRefused, refusal.to_string()));
    }
    Ok(Prepared {
        spec,
        url,
        method,
        target,
        schedule,
    })
}

/// Waits for the target's limits, signs, sends and judges one attempt.
async fn send(
    shared: &Shared,
    id: &str,
    attempt: u32,
    max_attempts: u32,
    mut p: Prepared,
) -> Decision {
    // The target's limits, held for the deployment (nothing to wait for
    // without any).
    let _permit = match &p.target {
        Some(t) => shared.limits.permit(&t.record).await,
        None => None,
    };
    let started_ms = shared.clock.now_ms();
    // Moved out of the spec, not copied: the request owns them.
    let body = p.spec.body.take().unwrap_or_default().into_bytes();
    let signed = sign(shared, &p, id, started_ms, &body);
    let mut headers: Vec<(String, String)> =
        std::mem::take(&mut p.spec.headers).into_iter().collect();
    // A request that cannot be signed is not sent: a failed attempt.
    let outcome = match signed {
        Ok(sig) => {
            headers.extend(sig);
            shared
                .http
                .send(OutgoingRequest {
                    method: p.method,
                    url: p.url,
                    headers,
                    body,
                    timeout: None,
                    keep_body: MAX_ATTEMPT_BODY_BYTES,
                })
                .await
        }
        Err(error) => AttemptOutcome::Failed {
            error,
            latency: Duration::ZERO,
        },
    };
    judge(outcome, attempt, max_attempts, &p.schedule, shared)
}

/// The signature headers of this attempt, signed at `now_ms`.
fn sign(
    shared: &Shared,
    p: &Prepared,
    id: &str,
    now_ms: i64,
    body: &[u8],
) -> Result<Vec<(String, String)>, String> {
    let timestamp = now_ms.div_euclid(1000);
    let profile = p.spec.signature_profile;
    match &p.target {
        None => {
            let names = match profile {
                SignatureProfile::Svix => &SVIX_HEADERS,
                _ => &STANDARD_HEADERS,
            };
            let headers = standard::sign_headers(names, &shared.ring, id, timestamp, body)
                .map_err(|e| format!("cannot sign: {}", e.message()))?;
            Ok(headers
                .into_iter()
                .map(|(n, v)| (n.to_owned(), v))
                .collect())
        }
        Some(t) => t.sign(profile, id, now_ms, body),
    }
}

/// Turns an attempt's outcome into what to write.
fn judge(
    outcome: AttemptOutcome,
    attempt: u32,
    max_attempts: u32,
    schedule: &RetrySchedule,
    shared: &Shared,
) -> Decision {
    let now = shared.clock.now_ms();
    let cap = shared.http.config().max_retry_after;
    decide(outcome, attempt, max_attempts, now, schedule, cap)
}
