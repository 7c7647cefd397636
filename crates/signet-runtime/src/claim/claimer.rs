//! The loop itself: claim up to free capacity, hand the rows to the
//! consumer, wait for new work when there is none, back off on store
//! errors, and shut down gracefully.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt as _};
use signet_store::{ClaimRequest, Store, StoreError, TaskRow, WorkMark};
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

/// Claims running at once. One claim at a time left the slots freed
/// while it ran idle until it returned; three cut that wait (11–17 %
/// more deliveries per second in `signet bench deliver` on SQLite,
/// docs/benchmarks.md). SQLite's writer commits claims that meet in its
/// queue together; PostgreSQL runs them on connections of the pool.
const CLAIMS_IN_FLIGHT: usize = 3;

/// A claim that returned, with the permits it held.
struct EndedClaim {
    result: Result<Vec<TaskRow>, StoreError>,
    permits: OwnedSemaphorePermit,
    /// Taken before the claim.
    mark: WorkMark,
    asked: usize,
}

/// Why the loop does not claim now.
#[derive(Clone, Copy, Default)]
enum Pause {
    #[default]
    None,
    /// A claim found fewer rows than it asked for: wait for work signalled
    /// since this mark (taken before that claim) or the poll interval.
    Starved(WorkMark),
    /// A claim failed: not before this time.
    Backoff(tokio::time::Instant),
}

impl Pause {
    fn is_none(self) -> bool {
        matches!(self, Pause::None)
    }
}

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
        // A claim of nothing would never end a wait for a free slot.
        settings.max_batch = settings.max_batch.max(1);
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
    /// Up to [`CLAIMS_IN_FLIGHT`] claims run at once, each for the slots
    /// free when it starts (it holds their permits, so no two claims count
    /// one slot): a slot freed while a claim runs does not wait for that
    /// claim to return before its own starts.
    ///
    /// Returns an error only when the store is closed under it.
    pub(crate) async fn run(
        &self,
        consumer: &impl Consumer,
        leases: &Leases,
        mut shutdown: ShutdownSignal,
    ) -> Result<(), RuntimeError> {
        let s = &self.settings;
        let mut claims = FuturesUnordered::new();
        let mut pause = Pause::default();
        let mut failures = 0u32;
        let mut result = Ok(());
        while !shutdown.is_triggered() {
            let may_claim = claims.len() < CLAIMS_IN_FLIGHT && pause.is_none();
            if may_claim {
                if let Some(claim) = self.start_claim(leases) {
                    claims.push(claim);
                    continue;
                }
            }
            // Waits only once no claim runs: one that does may still
            // bring rows, or more reasons to wait.
            let idle = claims.is_empty();
            let paused = async {
                match (pause, idle) {
                    (Pause::Starved(mark), true) => {
                        s.store
                            .wait_for_work(&s.queues, mark, s.poll_interval)
                            .await;
                    }
                    (Pause::Backoff(until), true) => tokio::time::sleep_until(until).await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                Some(ended) = claims.next() => {
                    match ended.result {
                        Ok(rows) => {
                            failures = 0;
                            if let Pause::Backoff(_) = pause {
                                pause = Pause::None;
                            }
                            if rows.len() < ended.asked {
                                // Nothing more due now: wait for a signal
                                // since the earliest such claim began.
                                if !matches!(pause, Pause::Starved(_)) {
                                    pause = Pause::Starved(ended.mark);
                                }
                            } else {
                                pause = Pause::None;
                            }
                            self.start(consumer, rows, ended.permits).await;
                        }
                        Err(StoreError::Closed) => {
                            tracing::error!(role = s.role, "the store was closed; the {} stops", s.role);
                            result = Err(RuntimeError::Store(StoreError::Closed));
                            break;
                        }
                        // Claims that ran together failed together: one
                        // step of backoff, one line.
                        Err(_) if matches!(pause, Pause::Backoff(_)) => {}
                        Err(e) => {
                            failures = failures.saturating_add(1);
                            let wait = store_backoff(failures);
                            if e.is_retryable() {
                                tracing::warn!(role = s.role, error = %e, retry_in = ?wait, "claim failed; retrying");
                            } else {
                                tracing::error!(role = s.role, error = %e, retry_in = ?wait, "claim failed; retrying");
                            }
                            pause = Pause::Backoff(tokio::time::Instant::now() + wait);
                        }
                    }
                }
                // A slot came free: claim for it (the permit goes straight
                // back; the next claim takes every free one).
                permit = self.slots.acquire(), if may_claim => drop(permit),
                () = paused => pause = Pause::None,
                () = shutdown.triggered() => {}
            }
        }
        // Claims under way still end: their rows start (and get the grace
        // period like the others) rather than wait out their leases; on a
        // closed store nothing starts (no outcome could be written), and
        // the rows go back when their leases expire.
        while let Some(ended) = claims.next().await {
            match ended.result {
                Ok(rows) if result.is_ok() => self.start(consumer, rows, ended.permits).await,
                _ => {}
            }
        }
        self.drain(leases).await;
        result
    }

    /// A claim for every free slot (at most the batch size), holding their
    /// permits; `None` when no slot is free.
    fn start_claim(&self, leases: &Leases) -> Option<BoxFuture<'static, EndedClaim>> {
        let s = &self.settings;
        let free = self.slots.available_permits().min(s.max_batch);
        // Only this loop takes permits, so the free ones are there.
        let permits = Arc::clone(&self.slots)
            .try_acquire_many_owned(u32::try_from(free).ok().filter(|n| *n > 0)?)
            .ok()?;
        let request = ClaimRequest {
            queues: s.queues.clone(),
            worker_id: s.owner.to_string(),
            limit: free,
            lease_ms: leases.lease_ms(),
        };
        // Taken before the claim: work signalled while it runs ends the
        // wait after it at once.
        let mark = s.store.work_mark(&s.queues);
        let store = Arc::clone(&s.store);
        let now = s.clock.now_ms();
        Some(Box::pin(async move {
            EndedClaim {
                result: store.claim(request, now).await,
                permits,
                mark,
                asked: free,
            }
        }))
    }

    /// Hands claimed rows to the consumer, each with one of the claim's
    /// permits; the permits of slots left unfilled go back.
    async fn start(
        &self,
        consumer: &impl Consumer,
        rows: Vec<TaskRow>,
        mut permits: OwnedSemaphorePermit,
    ) {
        let mut batch = Vec::with_capacity(rows.len());
        for row in rows {
            // A claim answers at most the rows it asked for, one per
            // permit; a store that answered more gets its extra rows back
            // after their leases (never run beyond the concurrency).
            let Some(slot) = permits.split(1) else {
                tracing::error!(role = self.settings.role, task_id = %row.envelope.id, "the store answered more rows than the claim asked for; the extra row is left to its lease");
                continue;
            };
            batch.push(Claimed { row, slot });
        }
        drop(permits);
        if !batch.is_empty() {
            consumer.start(batch).await;
        }
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
