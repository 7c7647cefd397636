//! The loop itself: claim up to free capacity, hand the rows to the
//! consumer, wait for new work when there is none, back off on store
//! errors, and shut down gracefully.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use signet_store::{ClaimRequest, Store, StoreError, TaskRow};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::check_lease;
use super::lease::Leases;
use super::store_retry::store_backoff;
use crate::clock::{duration_ms, Clock};
use crate::error::RuntimeError;
use crate::shutdown::ShutdownSignal;

/// Most permits a semaphore holds (tokio's limit is higher; `acquire_many`
/// counts in `u32`). A larger concurrency is lowered to it.
const MAX_CONCURRENCY: usize = u32::MAX as usize;

/// A claimed row and its share of the capacity. Drop the permit once the
/// row's outcome is written, or queued for a writer the consumer's owner
/// waits for before it stops (the dispatcher's settler).
pub(crate) struct Claimed {
    pub(crate) row: TaskRow,
    pub(crate) slot: OwnedSemaphorePermit,
}

/// What is done with claimed rows: the worker runs handlers, the
/// dispatcher sends requests.
pub(crate) trait Consumer {
    /// Starts work on a claimed batch and returns once it is under way
    /// (the work itself runs in tasks of its own).
    fn start(&self, batch: Vec<Claimed>) -> impl Future<Output = ()> + Send;
}

/// How a consumer claims.
pub(crate) struct ClaimSettings {
    /// What the logs call the consumer (`worker`, `dispatcher`).
    pub(crate) role: &'static str,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) queues: Vec<String>,
    /// The lease owner.
    pub(crate) owner: Arc<str>,
    /// Rows in flight at once.
    pub(crate) concurrency: usize,
    /// Most rows asked for in one claim.
    pub(crate) max_batch: usize,
    /// Longest wait for new work before claiming again (stores that can
    /// signal new work end the wait sooner).
    pub(crate) poll_interval: Duration,
    /// How long running work may finish after shutdown is asked.
    pub(crate) grace: Duration,
    /// Lease length and heartbeat interval (the heartbeat must be shorter).
    pub(crate) lease: Duration,
    pub(crate) heartbeat: Duration,
}

/// The claim loop of one consumer.
pub(crate) struct ClaimLoop {
    settings: ClaimSettings,
    /// One permit per row in flight.
    slots: Arc<Semaphore>,
}

impl ClaimLoop {
    /// The loop and the leases it claims with; refuses a heartbeat that is
    /// zero or not shorter than the lease.
    pub(crate) fn new(mut settings: ClaimSettings) -> Result<(Self, Leases), RuntimeError> {
        check_lease(settings.lease, settings.heartbeat)?;
        settings.concurrency = settings.concurrency.clamp(1, MAX_CONCURRENCY);
        let leases = Leases::new(
            Arc::clone(&settings.store),
            Arc::clone(&settings.clock),
            duration_ms(settings.lease),
            settings.heartbeat,
        );
        let slots = Arc::new(Semaphore::new(settings.concurrency));
        Ok((Self { settings, slots }, leases))
    }

    /// The queues claimed from.
    pub(crate) fn queues(&self) -> &[String] {
        &self.settings.queues
    }

    /// Rows in flight at most.
    pub(crate) fn concurrency(&self) -> usize {
        self.settings.concurrency
    }

    /// Claims and hands rows to `consumer` until `shutdown` fires; then
    /// stops claiming, gives running work the grace period, hard-stops the
    /// rest through `leases` and returns once every permit is back (every
    /// outcome written or queued for writing, see [`Claimed`]).
    ///
    /// Returns an error only when the store is closed under it.
    pub(crate) async fn run(
        &self,
        consumer: &impl Consumer,
        leases: &Leases,
        mut shutdown: ShutdownSignal,
    ) -> Result<(), RuntimeError> {
        let s = &self.settings;
        let mut failures = 0u32;
        let mut result = Ok(());
        while !shutdown.is_triggered() {
            let free = self.slots.available_permits();
            if free == 0 {
                tokio::select! {
                    permit = self.slots.acquire() => drop(permit),
                    () = shutdown.triggered() => {}
                }
                continue;
            }
            let request = ClaimRequest {
                queues: s.queues.clone(),
                worker_id: s.owner.to_string(),
                limit: free.min(s.max_batch),
                lease_ms: leases.lease_ms(),
            };
            // Taken before the claim: work signalled while it runs ends
            // the wait below at once.
            let mark = s.store.work_mark(&s.queues);
            let rows = match s.store.claim(request, s.clock.now_ms()).await {
                Ok(rows) => {
                    failures = 0;
                    rows
                }
                Err(StoreError::Closed) => {
                    tracing::error!(role = s.role, "the store was closed; the {} stops", s.role);
                    result = Err(RuntimeError::Store(StoreError::Closed));
                    break;
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let wait = store_backoff(failures);
                    if e.is_retryable() {
                        tracing::warn!(role = s.role, error = %e, retry_in = ?wait, "claim failed; retrying");
                    } else {
                        tracing::error!(role = s.role, error = %e, retry_in = ?wait, "claim failed; retrying");
                    }
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = shutdown.triggered() => {}
                    }
                    continue;
                }
            };
            if rows.is_empty() {
                tokio::select! {
                    () = s.store.wait_for_work(&s.queues, mark, s.poll_interval) => {}
                    () = shutdown.triggered() => {}
                }
                continue;
            }
            let mut batch = Vec::with_capacity(rows.len());
            for row in rows {
                // At most `free` rows were claimed and only this loop takes
                // permits, so one is there; waiting would still be correct.
                let slot = match Arc::clone(&self.slots).try_acquire_owned() {
                    Ok(p) => p,
                    Err(_) => match Arc::clone(&self.slots).acquire_owned().await {
                        Ok(p) => p,
                        // The semaphore is never closed.
                        Err(_) => break,
                    },
                };
                batch.push(Claimed { row, slot });
            }
            consumer.start(batch).await;
        }
        self.drain(leases).await;
        result
    }

    /// Graceful shutdown: no more claims; let running work finish within
    /// the grace period, then hard-stop it and wait for the releases.
    async fn drain(&self, leases: &Leases) {
        let s = &self.settings;
        // At most MAX_CONCURRENCY, so it fits.
        let all = u32::try_from(s.concurrency).unwrap_or(u32::MAX);
        if tokio::time::timeout(s.grace, self.slots.acquire_many(all))
            .await
            .is_err()
        {
            let left = s.concurrency.saturating_sub(self.slots.available_permits());
            tracing::warn!(
                role = s.role,
                in_flight = left,
                grace = ?s.grace,
                "grace period over; releasing work still running"
            );
            leases.hard_stop();
            // Releases are quick store writes; wait for them.
            let _ = self.slots.acquire_many(all).await;
        }
    }
}
