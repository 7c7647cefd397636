//! The state one worker's tasks share.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use signet_store::{LeaseToken, Store};
use tokio::sync::broadcast;

use super::events::{WorkerEvent, WorkerEventKind};
use crate::backoff::RetryPolicy;
use crate::claim::Leases;
use crate::clock::Clock;
use crate::handler::{ErasedHandler, TaskMeta};
use crate::verify::Verifier;

pub(super) struct Shared {
    pub(super) store: Arc<dyn Store>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) verifier: Arc<Verifier>,
    pub(super) handlers: HashMap<String, Arc<dyn ErasedHandler>>,
    pub(super) worker_id: Arc<str>,
    pub(super) leases: Leases,
    pub(super) handler_timeout: Duration,
    pub(super) retry: RetryPolicy,
    pub(super) events: broadcast::Sender<WorkerEvent>,
}

impl Shared {
    /// Publishes an outcome to subscribers, if any.
    pub(super) fn publish(&self, meta: &TaskMeta, kind: WorkerEventKind) {
        if self.events.receiver_count() == 0 {
            return;
        }
        let _ = self.events.send(WorkerEvent {
            task_id: meta.id.clone(),
            queue: meta.queue.clone(),
            name: meta.name.clone(),
            attempt: meta.attempt,
            kind,
        });
    }
}

/// The lease a run holds.
pub(super) fn lease_of(meta: &TaskMeta) -> LeaseToken {
    LeaseToken {
        task_id: meta.id.clone(),
        worker_id: meta.worker_id.to_string(),
        attempt: meta.attempt,
    }
}
