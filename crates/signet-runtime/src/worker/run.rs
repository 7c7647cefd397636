//! The worker and its run: the shared claim loop feeding verify → run →
//! ack.

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};

use super::ack::{acker_loop, Finished};
use super::events::WorkerEvent;
use super::shared::Shared;
use super::start::start_batch;
use crate::claim::{ClaimLoop, Claimed, Consumer};
use crate::error::RuntimeError;
use crate::shutdown::ShutdownSignal;

/// Runs registered handlers for tasks claimed from the store. Build with
/// [`Worker::builder`], start with [`Worker::run`].
pub struct Worker {
    pub(super) shared: Arc<Shared>,
    pub(super) claims: ClaimLoop,
}

/// The worker's part of the claim loop.
struct Runs {
    shared: Arc<Shared>,
    done: mpsc::UnboundedSender<Finished>,
}

impl Consumer for Runs {
    async fn start(&self, batch: Vec<Claimed>) {
        start_batch(&self.shared, batch, &self.done).await;
    }
}

impl Worker {
    /// The lease owner name this worker claims under.
    pub fn id(&self) -> &str {
        &self.shared.worker_id
    }

    /// Subscribes to task outcomes (after they are written). A slow
    /// subscriber misses events rather than slowing the worker.
    pub fn events(&self) -> broadcast::Receiver<WorkerEvent> {
        self.shared.events.subscribe()
    }

    /// Runs until `shutdown` fires, then stops claiming, lets running
    /// handlers finish within the grace period, releases the rest and
    /// returns once every outcome is written.
    ///
    /// Idle, it waits for new work with
    /// [`Store::wait_for_work`](signet_store::Store::wait_for_work), the
    /// poll interval being the longest wait.
    ///
    /// Returns an error only when the store is closed under it.
    pub async fn run(self, shutdown: ShutdownSignal) -> Result<(), RuntimeError> {
        let Worker { shared, claims } = self;
        tracing::info!(
            worker_id = %shared.worker_id,
            queues = ?claims.queues(),
            concurrency = claims.concurrency(),
            handlers = shared.handlers.len(),
            "worker started"
        );
        let (done, done_rx) = mpsc::unbounded_channel();
        let acker = tokio::spawn(acker_loop(Arc::clone(&shared), done_rx));
        let runs = Runs {
            shared: Arc::clone(&shared),
            done,
        };
        let result = claims.run(&runs, &shared.leases, shutdown).await;
        drop(runs);
        if let Err(e) = acker.await {
            // The acker catches nothing itself; a panic there is a bug.
            tracing::error!(error = %e, "worker acknowledgement task failed");
        }
        tracing::info!(worker_id = %shared.worker_id, "worker stopped");
        result
    }
}
