//! The rescuer: gives tasks whose lease expired (their worker crashed or
//! stalled) back to the queue, or dead-letters them when their attempts are
//! used up. Any number of rescuers may run; the store makes each rescue
//! happen once.

use std::sync::Arc;
use std::time::Duration;

use signet_store::{Store, StoreError};

use crate::clock::{Clock, SystemClock};
use crate::periodic::run_every;
use crate::shutdown::ShutdownSignal;

/// Default time between two rescue passes. With the dispatcher's 10 s lease
/// it bounds how long a dead dispatcher's deliveries stay stuck (14 s); a
/// pass is one indexed update.
pub const DEFAULT_RESCUE_INTERVAL: Duration = Duration::from_secs(4);
/// Default most tasks rescued per store call.
pub const DEFAULT_RESCUE_BATCH: usize = 1000;

/// Periodically calls [`Store::rescue_expired`].
pub struct Rescuer {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    interval: Duration,
    batch: usize,
}

impl Rescuer {
    /// A rescuer with the default interval and batch, on the system clock.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            clock: Arc::new(SystemClock),
            interval: DEFAULT_RESCUE_INTERVAL,
            batch: DEFAULT_RESCUE_BATCH,
        }
    }

    /// Time between passes.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Most tasks per store call (a pass repeats calls until fewer come back).
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// The clock (tests pass a [`ManualClock`](crate::ManualClock)).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// One pass: rescues every expired lease. Returns how many tasks.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let ids = self
                .store
                .rescue_expired(self.clock.now_ms(), self.batch)
                .await?;
            total += ids.len();
            if ids.len() < self.batch {
                break;
            }
        }
        if total > 0 {
            tracing::info!(tasks = total, "rescued tasks whose lease expired");
        }
        Ok(total)
    }

    /// Runs a pass every interval until `shutdown` fires. Errors are logged
    /// and the next pass is tried on time.
    pub async fn run(self, shutdown: ShutdownSignal) {
        run_every("rescuer", self.interval, shutdown, || self.run_once()).await;
    }
}
