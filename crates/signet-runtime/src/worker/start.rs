//! Starting a claimed batch: verify every signature, refuse what must not
//! run, and run a handler for the rest (timeout, panic capture, lease).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt as _;
use signet_store::DeadReason;
use tokio::sync::mpsc;

use super::ack::{Finished, Outcome};
use super::shared::{lease_of, Shared};
use crate::claim::{Claimed, Held};
use crate::handler::{ErasedHandler, RunFailure, TaskContext, TaskMeta};
use crate::metrics;

/// Verifies a claimed batch, refuses what must not run, starts the rest.
pub(super) async fn start_batch(
    shared: &Arc<Shared>,
    batch: Vec<Claimed>,
    done: &mpsc::UnboundedSender<Finished>,
) {
    // A failed verification task drops the batch with its permits; the
    // leases expire and the rescuer hands the rows out again.
    let Some(checked) = shared.verifier.check_claimed(batch).await else {
        return;
    };
    let now = shared.clock.now_ms();
    for (Claimed { row, slot }, check) in checked {
        let envelope = row.envelope;
        let meta = Arc::new(TaskMeta {
            id: envelope.id,
            queue: envelope.queue,
            name: envelope.name,
            headers: envelope.headers,
            attempt: row.attempt,
            max_attempts: envelope.max_attempts,
            worker_id: Arc::clone(&shared.worker_id),
        });
        let refused = match check {
            Err(e) => {
                metrics::signature_invalid(e.reason());
                Some((
                    DeadReason::SignatureInvalid,
                    format!("{}: {}", e.reason(), e.message()),
                ))
            }
            Ok(()) => envelope.expires_at_ms.filter(|exp| *exp <= now).map(|exp| {
                (
                    DeadReason::Expired,
                    format!(
                        "expired at {exp} (unix ms), {} ms before a worker got to it",
                        now.saturating_sub(exp)
                    ),
                )
            }),
        };
        let handler = match (refused, shared.handlers.get(&meta.name)) {
            (Some(refusal), _) => Err(refusal),
            (None, None) => Err((
                DeadReason::UnknownTask,
                format!(
                    "no handler is registered for task {:?} on worker {}",
                    meta.name, shared.worker_id
                ),
            )),
            (None, Some(handler)) => Ok(Arc::clone(handler)),
        };
        match handler {
            Err((reason, detail)) => {
                let _ = done.send(Finished {
                    meta,
                    outcome: Outcome::Dead(reason, detail),
                    ran: None,
                    _slot: slot,
                });
            }
            Ok(handler) => {
                let fut = run_one(
                    Arc::clone(shared),
                    meta,
                    handler,
                    envelope.args,
                    slot,
                    done.clone(),
                );
                tokio::spawn(fut);
            }
        }
    }
}

/// Runs one handler: timeout, panic capture, heartbeats, hard stop.
async fn run_one(
    shared: Arc<Shared>,
    meta: Arc<TaskMeta>,
    handler: Arc<dyn ErasedHandler>,
    args: Vec<u8>,
    slot: tokio::sync::OwnedSemaphorePermit,
    done: mpsc::UnboundedSender<Finished>,
) {
    let started = Instant::now();
    let run = handler.call(TaskContext::new(Arc::clone(&meta)), args);
    let guarded =
        tokio::time::timeout(shared.handler_timeout, AssertUnwindSafe(run).catch_unwind());
    let lease = lease_of(&meta);
    let outcome = match shared.leases.hold(&lease, guarded).await {
        Held::Done(result) => match result {
            Ok(Ok(Ok(value))) => Outcome::Success(value),
            Ok(Ok(Err(RunFailure::PayloadInvalid(msg)))) => {
                Outcome::Dead(DeadReason::PayloadInvalid, msg)
            }
            Ok(Ok(Err(RunFailure::Handler(e)))) if e.is_reject() => {
                Outcome::Dead(DeadReason::PayloadInvalid, e.message_chain())
            }
            Ok(Ok(Err(RunFailure::Handler(e)))) => Outcome::failed(e.message_chain()),
            Ok(Err(panic)) => Outcome::failed(format!(
                "handler panicked: {}",
                panic_message(panic.as_ref())
            )),
            Err(_elapsed) => Outcome::failed(format!(
                "handler timed out after {:?}",
                shared.handler_timeout
            )),
        },
        Held::LeaseLost => Outcome::LeaseLost,
        Held::HardStopped => Outcome::Release,
    };
    let _ = done.send(Finished {
        meta,
        outcome,
        ran: Some(started.elapsed()),
        _slot: slot,
    });
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = panic.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s
    } else {
        "(non-string panic payload)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_extracted() {
        let p: Box<dyn std::any::Any + Send> = Box::new("boom");
        assert_eq!(panic_message(p.as_ref()), "boom");
        let p: Box<dyn std::any::Any + Send> = Box::new(String::from("bang"));
        assert_eq!(panic_message(p.as_ref()), "bang");
        let p: Box<dyn std::any::Any + Send> = Box::new(3u8);
        assert!(panic_message(p.as_ref()).contains("non-string"));
    }
}
