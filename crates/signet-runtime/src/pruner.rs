//! The pruner: deletes succeeded and cancelled tasks once they are older
//! than the retention period, and forgets signed-out console sessions once
//! they are past their expiry. Dead letters stay until purged by a person.

use std::sync::Arc;
use std::time::Duration;

use signet_store::{Store, StoreError};

use crate::clock::{duration_ms, Clock, SystemClock};
use crate::periodic::run_every;
use crate::shutdown::ShutdownSignal;

/// Default retention of finished tasks.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// Default time between two prune passes.
pub const DEFAULT_PRUNE_INTERVAL: Duration = Duration::from_secs(60);
/// Default most tasks deleted per store call.
pub const DEFAULT_PRUNE_BATCH: usize = 5000;

/// Periodically calls [`Store::prune`].
pub struct Pruner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    retention: Duration,
    interval: Duration,
    batch: usize,
}

impl Pruner {
    /// A pruner with the default retention, interval and batch.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            clock: Arc::new(SystemClock),
            retention: DEFAULT_RETENTION,
            interval: DEFAULT_PRUNE_INTERVAL,
            batch: DEFAULT_PRUNE_BATCH,
        }
    }

    /// How long finished tasks are kept.
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// Time between passes.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Most tasks per store call (short calls keep the writer responsive).
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// The clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// One pass: deletes every finished task older than the retention, and
    /// every signed-out session past its expiry, in batches. Returns how
    /// many tasks.
    pub async fn run_once(&self) -> Result<u64, StoreError> {
        let now = self.clock.now_ms();
        let cutoff = now.saturating_sub(duration_ms(self.retention));
        let tasks = self
            .in_batches(|batch| self.store.prune(cutoff, batch))
            .await?;
        if tasks > 0 {
            tracing::info!(tasks, "pruned finished tasks past retention");
        }
        // Past their expiry their cookies no longer open anyway.
        let sessions = self
            .in_batches(|batch| self.store.prune_ended_sessions(now, batch))
            .await?;
        if sessions > 0 {
            tracing::info!(sessions, "pruned expired signed-out sessions");
        }
        Ok(tasks)
    }

    /// Calls `delete` with the batch size until it deletes less than a
    /// batch; returns the total.
    async fn in_batches<F, Fut>(&self, mut delete: F) -> Result<u64, StoreError>
    where
        F: FnMut(usize) -> Fut,
        Fut: std::future::Future<Output = Result<u64, StoreError>>,
    {
        let mut total = 0;
        loop {
            let n = delete(self.batch).await?;
            total += n;
            if n < self.batch as u64 {
                return Ok(total);
            }
            // Let other writers in between large batches.
            tokio::task::yield_now().await;
        }
    }

    /// Runs a pass every interval until `shutdown` fires.
    pub async fn run(self, shutdown: ShutdownSignal) {
        run_every("pruner", self.interval, shutdown, || self.run_once()).await;
    }
}
