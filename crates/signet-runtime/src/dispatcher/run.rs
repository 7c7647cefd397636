//! The dispatcher and its run: the shared claim loop feeding deliveries.

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};

use super::deliver::deliver;
use super::events::DeliveryEvent;
use super::settle::{settler_loop, Ended};
use super::shared::Shared;
use crate::claim::{ClaimLoop, Claimed, Consumer};
use crate::error::RuntimeError;
use crate::push::PushDrain;
use crate::shutdown::ShutdownSignal;

/// Delivers messages. Build with [`Dispatcher::builder`], start with
/// [`Dispatcher::run`].
pub struct Dispatcher {
    pub(super) shared: Arc<Shared>,
    pub(super) claims: ClaimLoop,
    /// Drains the queues bound to push endpoints (docs/push-queues.md).
    pub(super) push: PushDrain,
}

/// The dispatcher's part of the claim loop.
struct Deliveries {
    shared: Arc<Shared>,
    settler: mpsc::UnboundedSender<Ended>,
}

impl Consumer for Deliveries {
    async fn start(&self, batch: Vec<Claimed>) {
        // A failed verification task drops the batch with its permits; the
        // leases expire and the rescuer hands the messages out again.
        let Some(checked) = self.shared.verifier.check_claimed(batch).await else {
            return;
        };
        for (Claimed { row, slot }, check) in checked {
            let settler = self.settler.clone();
            tokio::spawn(deliver(Arc::clone(&self.shared), row, check, slot, settler));
        }
    }
}

impl Dispatcher {
    /// The lease owner name.
    pub fn id(&self) -> &str {
        &self.shared.worker_id
    }

    /// Subscribes to delivery outcomes (after they are written). A slow
    /// subscriber misses events rather than slowing deliveries.
    pub fn events(&self) -> broadcast::Receiver<DeliveryEvent> {
        self.shared.events.subscribe()
    }

    /// Delivers messages and drains push queues until `shutdown` fires,
    /// then stops claiming, lets in-flight deliveries and pushes finish
    /// within the grace period, releases the rest and returns once every
    /// outcome is written.
    ///
    /// Returns an error only when the store is closed under it.
    pub async fn run(self, shutdown: ShutdownSignal) -> Result<(), RuntimeError> {
        let Dispatcher {
            shared,
            claims,
            push,
        } = self;
        tracing::info!(
            worker_id = %shared.worker_id,
            concurrency = claims.concurrency(),
            allowed_cidrs = ?shared.http.policy().allowed(),
            "dispatcher started"
        );
        // In the background: a slow database does not hold up the start.
        let checked = Arc::clone(&shared);
        tokio::spawn(async move { checked.limits.check_clock().await });
        let (settler, settler_rx) = mpsc::unbounded_channel();
        let settling = tokio::spawn(settler_loop(Arc::clone(&shared), settler_rx));
        let deliveries = Deliveries {
            shared: Arc::clone(&shared),
            settler,
        };
        let (result, pushed) = tokio::join!(
            claims.run(&deliveries, &shared.leases, shutdown.clone()),
            push.run(shutdown),
        );
        // Every permit is back, so every outcome is queued (a delivery
        // queues its outcome before it gives its permit back); the settler
        // writes them all and ends once the last sender is gone.
        drop(deliveries);
        if let Err(e) = settling.await {
            // The settler catches nothing itself; a panic there is a bug.
            tracing::error!(error = %e, "dispatcher settler task failed");
        }
        // The last permits dropped as their deliveries ended: free their
        // slots now, not a lease later.
        shared.limits.released().await;
        let result = result.and(pushed);
        tracing::info!(worker_id = %shared.worker_id, "dispatcher stopped");
        result
    }
}
