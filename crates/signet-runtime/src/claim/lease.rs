//! Holding a claimed row's lease while its work runs: heartbeats, a lost
//! lease, and the hard stop at the end of the shutdown grace period.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use signet_store::{DeadReason, FailOutcome, LeaseToken, Store, StoreError};
use tokio::sync::watch;

use super::store_retry::retry_store;
use crate::clock::Clock;

/// How the work under a lease ended.
pub(crate) enum Held<T> {
    /// It finished.
    Done(T),
    /// The lease was lost (expired and rescued): the result must be dropped.
    LeaseLost,
    /// The grace period is over: give the row back.
    HardStopped,
}

/// Leases of one consumer: their length, heartbeat and the hard stop.
pub(crate) struct Leases {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    lease_ms: i64,
    heartbeat: Duration,
    /// Set when the grace period is over: work still running stops and its
    /// row is released.
    hard_stop: watch::Sender<bool>,
}

impl Leases {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        lease_ms: i64,
        heartbeat: Duration,
    ) -> Self {
        let (hard_stop, _) = watch::channel(false);
        Self {
            store,
            clock,
            lease_ms,
            heartbeat,
            hard_stop,
        }
    }

    /// The lease length asked for in claims and heartbeats.
    pub(crate) fn lease_ms(&self) -> i64 {
        self.lease_ms
    }

    /// Stops every [`Leases::hold`] still running (their rows are released).
    pub(crate) fn hard_stop(&self) {
        self.hard_stop.send_replace(true);
    }

    /// Runs `work` while extending `lease` every heartbeat interval. Ends
    /// early when the lease is lost or on the hard stop. The heartbeats run
    /// beside the work in the same task (the work keeps running while a
    /// heartbeat is in flight); nothing is registered with the timer until
    /// first polled, so work that finishes at once costs no timer.
    pub(crate) async fn hold<T>(
        &self,
        lease: &LeaseToken,
        work: impl Future<Output = T>,
    ) -> Held<T> {
        let mut stop = self.hard_stop.subscribe();
        tokio::select! {
            biased;
            done = work => Held::Done(done),
            () = self.heartbeat_until_lost(lease) => Held::LeaseLost,
            () = hard_stopped(&mut stop) => Held::HardStopped,
        }
    }

    /// Records a success, retrying transient store errors.
    pub(crate) async fn complete(
        &self,
        lease: &LeaseToken,
        result: Option<Vec<u8>>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        retry_store(|| self.store.complete(lease, result.clone(), now_ms)).await
    }

    /// Gives the row back (the attempt does not count), retrying transient
    /// store errors.
    pub(crate) async fn release(&self, lease: &LeaseToken, now_ms: i64) -> Result<(), StoreError> {
        retry_store(|| self.store.release(lease, now_ms)).await
    }

    /// Records a failed attempt to run again at `at_ms`, retrying transient
    /// store errors.
    pub(crate) async fn retry_at(
        &self,
        lease: &LeaseToken,
        error: &str,
        at_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        retry_store(|| {
            self.store
                .fail(lease, error, FailOutcome::Retry { at_ms }, now_ms)
        })
        .await
    }

    /// Dead-letters the row (`error` is the attempt's, `detail` the dead
    /// letter's), retrying transient store errors.
    pub(crate) async fn dead(
        &self,
        lease: &LeaseToken,
        error: &str,
        reason: DeadReason,
        detail: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        retry_store(|| {
            let dead = FailOutcome::Dead {
                reason,
                detail: detail.to_owned(),
            };
            self.store.fail(lease, error, dead, now_ms)
        })
        .await
    }

    /// Runs `work` while extending every lease of `leases` each heartbeat
    /// interval, for rows whose outcome is decided and waits to be written
    /// (a lease lost meanwhile is left for the write to find).
    pub(crate) async fn keep<T>(&self, leases: &[LeaseToken], work: impl Future<Output = T>) -> T {
        tokio::select! {
            biased;
            done = work => done,
            never = self.keep_forever(leases) => match never {},
        }
    }

    /// Extends every lease of `leases` once, all at once.
    pub(crate) async fn extend_all(&self, leases: &[LeaseToken]) {
        futures::future::join_all(leases.iter().map(|lease| self.extend(lease))).await;
    }

    /// The time between heartbeats.
    pub(crate) fn heartbeat(&self) -> Duration {
        self.heartbeat
    }

    async fn keep_forever(&self, leases: &[LeaseToken]) -> Infallible {
        loop {
            tokio::time::sleep(self.heartbeat).await;
            self.extend_all(leases).await;
        }
    }

    /// Extends the lease every heartbeat interval; returns once it is lost.
    async fn heartbeat_until_lost(&self, lease: &LeaseToken) {
        loop {
            tokio::time::sleep(self.heartbeat).await;
            if !self.extend(lease).await {
                return;
            }
        }
    }

    /// One heartbeat: false once the lease is lost. Other heartbeat errors
    /// are logged and the next heartbeat is tried on time.
    async fn extend(&self, lease: &LeaseToken) -> bool {
        match self
            .store
            .heartbeat(lease, self.lease_ms, self.clock.now_ms())
            .await
        {
            Ok(()) => true,
            Err(StoreError::LeaseLost { .. }) => false,
            Err(e) => {
                tracing::warn!(task_id = %lease.task_id, error = %e, "heartbeat failed; will try again");
                true
            }
        }
    }
}

async fn hard_stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        // The consumer is gone; nothing will ever ask this work to stop.
        std::future::pending::<()>().await;
    }
}
