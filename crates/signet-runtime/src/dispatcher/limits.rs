//! Per-target concurrency and rate limits, held for the deployment: every
//! dispatcher on the store shares them (docs/deploy.md).
//!
//! A delivery to a limited target asks for a [`Permit`] before it is sent:
//!
//! 1. a local semaphore of `max_concurrency` permits, so this process never
//!    waits on more store slots than the target can have;
//! 2. a concurrency slot from the store ([`Store::take_slot`]), leased for
//!    the dispatcher's lease and renewed at its heartbeat while the request
//!    runs, released when the permit drops. One waiter per target and
//!    process asks the store at a time, woken by a local release or a short
//!    poll (another node's release);
//! 3. a send time from the target's rate bucket ([`Store::take_rate`]):
//!    times are taken in batches (as many as this process has waiters, up
//!    to [`RATE_HORIZON`] ahead) and waited for; a time not used within
//!    [`STALE_SEND_TIME`] is dropped, never sent late.
//!
//! Targets without limits ask nothing: no lock, no store call.
//!
//! On a store no other process can use ([`Store::only_node`]: an in-memory
//! database) steps 2 and 3 are the in-process semaphore and a `governor`
//! rate limiter: the same limits without a write per delivery. A database
//! file takes the store path like PostgreSQL does, since another
//! `signet serve` may share the file and the limits must hold across both.
//!
//! Times are the wall clock's, not the injected [`Clock`](crate::Clock):
//! the limit is what a receiver sees per real second, and nodes compare
//! times through the store (as leases do), so their clocks must agree:
//! [`Limits::check_clock`] warns at start when this node's clock is more
//! than [`MAX_CLOCK_OFFSET`] off the database's.
//!
//! A slot is never left held by a delivery that is gone: the take runs in
//! a task of its own that hands the slot over or, when the delivery was
//! dropped meanwhile (a lost lease, the shutdown's hard stop), releases
//! it; and a graceful shutdown waits for the releases
//! ([`Limits::released`]), so a stopped node frees its slots at once.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use signet_store::{
    RateTake, SlotLease, SlotTake, Store, StoreError, StoreResult, TargetRecord, MAX_RATE_TAKE,
};
use tokio::sync::{oneshot, watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::claim::{retry_store, store_backoff};

/// How far ahead send times are taken from the store: a process holds at
/// most this much of a target's rate at once, so a dead process loses at
/// most this much.
pub(super) const RATE_HORIZON: Duration = Duration::from_millis(100);

/// How late a send time may be used. A time older than this is dropped
/// (the limit errs on the safe side): sending late would bunch requests
/// with the times other nodes send on.
pub(super) const STALE_SEND_TIME: Duration = Duration::from_millis(10);

/// First wait before asking the store again for a slot when all were held
/// (doubling up to [`SLOT_POLL_MAX`]); a release in this process wakes the
/// waiter at once.
const SLOT_POLL_MIN: Duration = Duration::from_millis(2);

/// Longest wait before asking the store again for a slot: how long a slot
/// freed by another node may stay unused.
const SLOT_POLL_MAX: Duration = Duration::from_millis(20);

/// How far this node's clock may be off the database's before
/// [`Limits::check_clock`] warns: a tenth of a second bends a rate's
/// send times by that much and a slot's lease by that much.
pub(super) const MAX_CLOCK_OFFSET: Duration = Duration::from_millis(100);

/// The limits of every target seen, by target id.
pub(super) struct Limits {
    store: Arc<dyn Store>,
    /// Whether limits go through the store (not [`Store::only_node`]).
    shared: bool,
    /// This dispatcher's name: slot holders are `<owner>/<n>`.
    owner: Arc<str>,
    next_holder: AtomicU64,
    /// How long a slot is held without renewal, and how often it is renewed.
    slot_lease: Duration,
    slot_renewal: Duration,
    /// How long a graceful stop waits for its slots' releases.
    release_grace: Duration,
    /// Slot takes and releases still running.
    slot_calls: SlotCalls,
    by_target: Mutex<HashMap<String, Arc<TargetLimits>>>,
}

/// Counts the store calls on slots still running in this process (takes
/// whose delivery may be gone, releases of dropped permits), so shutdown
/// can wait for them.
#[derive(Clone)]
struct SlotCalls(Arc<watch::Sender<usize>>);

impl Default for SlotCalls {
    fn default() -> Self {
        Self(Arc::new(watch::channel(0).0))
    }
}

impl SlotCalls {
    /// Counts one call until the returned guard drops.
    fn start(&self) -> SlotCall {
        self.0.send_modify(|n| *n += 1);
        SlotCall(self.clone())
    }

    /// Waits until no call runs.
    async fn none_running(&self) {
        // The sender lives in `self`, so the wait ends only with a count of 0.
        let _ = self.0.subscribe().wait_for(|n| *n == 0).await;
    }

    fn running(&self) -> usize {
        *self.0.borrow()
    }
}

/// One slot call running, counted until dropped.
struct SlotCall(SlotCalls);

impl Drop for SlotCall {
    fn drop(&mut self) {
        self.0 .0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// A target's concurrency and rate limits, kept across cache refreshes so
/// in-flight deliveries stay counted.
pub(super) struct TargetLimits {
    target_id: String,
    max_concurrency: Option<u32>,
    rate_limit_per_s: Option<u32>,
    /// This process's share of the concurrency (all of it at most).
    semaphore: Option<Arc<Semaphore>>,
    /// The rate, when this process is the only one.
    limiter: Option<DefaultDirectRateLimiter>,
    /// Send times taken from the store and not used yet (unix µs), in order.
    send_times: tokio::sync::Mutex<VecDeque<i64>>,
    /// Deliveries waiting for a send time.
    rate_waiters: AtomicU32,
    /// One waiter at a time asks the store for a slot.
    slot_turn: tokio::sync::Mutex<()>,
    /// A slot of this process was released in the store.
    slot_released: Notify,
}

/// What a delivery holds while it is sent: its share of the target's
/// concurrency. Dropping it frees the slot.
pub(super) struct Permit {
    _local: Option<OwnedSemaphorePermit>,
    _slot: Option<HeldSlot>,
}

/// A store slot held, renewed until dropped, then released.
struct HeldSlot {
    lease: SlotLease,
    store: Arc<dyn Store>,
    target: Arc<TargetLimits>,
    renewal: JoinHandle<()>,
    calls: SlotCalls,
}

impl Drop for HeldSlot {
    fn drop(&mut self) {
        self.renewal.abort();
        let store = Arc::clone(&self.store);
        let target = Arc::clone(&self.target);
        let lease = self.lease.clone();
        let call = self.calls.start();
        // No runtime (the process is ending): the slot comes back when its
        // lease expires.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _call = call;
                if let Err(e) = retry_store(|| store.release_slot(&lease)).await {
                    tracing::warn!(target_id = %lease.target_id, slot = lease.slot, error = %e, "could not release a concurrency slot; it comes back when its lease expires");
                }
                target.slot_released.notify_one();
            });
        }
    }
}

/// Wall-clock time in unix µs.
fn wall_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Waits until wall-clock time `at_us`.
async fn sleep_until_us(at_us: i64) {
    let wait = at_us.saturating_sub(wall_us());
    if let Ok(us) = u64::try_from(wait) {
        tokio::time::sleep(Duration::from_micros(us)).await;
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Limits {
    /// Limits on `store` for dispatcher `owner`; slots are leased for
    /// `slot_lease` and renewed every `slot_renewal`; a graceful stop waits
    /// up to `release_grace` for the slots' releases.
    pub(super) fn new(
        store: Arc<dyn Store>,
        owner: Arc<str>,
        slot_lease: Duration,
        slot_renewal: Duration,
        release_grace: Duration,
    ) -> Self {
        Self {
            shared: !store.only_node(),
            store,
            owner,
            next_holder: AtomicU64::new(0),
            slot_lease,
            slot_renewal,
            release_grace,
            slot_calls: SlotCalls::default(),
            by_target: Mutex::default(),
        }
    }

    /// Waits (at most the release grace) until the slot takes and releases
    /// still running are done, so a graceful stop leaves no slot held; logs
    /// what is left then (it comes back when its lease expires).
    pub(super) async fn released(&self) {
        if tokio::time::timeout(self.release_grace, self.slot_calls.none_running())
            .await
            .is_err()
        {
            tracing::warn!(
                running = self.slot_calls.running(),
                "concurrency slots were still being released at shutdown; they come back when their lease expires"
            );
        }
    }

    /// Compares this node's clock with the database's (when it has its
    /// own) and warns when they are more than [`MAX_CLOCK_OFFSET`] apart:
    /// slot leases and send times are compared across nodes with each
    /// node's clock. A store that cannot tell is let be (debug log).
    pub(super) async fn check_clock(&self) {
        if !self.shared {
            return;
        }
        let before = wall_us();
        let store_ms = match self.store.store_time_ms().await {
            Ok(Some(ms)) => ms,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(error = %e, "could not read the database's clock");
                return;
            }
        };
        if let Some(offset_ms) = clock_offset_ms(before, store_ms, wall_us()) {
            tracing::warn!(
                offset_ms,
                "this node's clock is off the database's by more than {} ms: per-target rate and concurrency limits (and leases) compare times across nodes, so keep every node's clock in sync (NTP)",
                MAX_CLOCK_OFFSET.as_millis()
            );
        }
    }

    /// Waits until a delivery to `target` may be sent: a concurrency slot
    /// and a send time, as its limits say. `None` (at once) for a target
    /// without limits. Store errors are retried (logged): a delivery is
    /// never sent around its target's limits.
    pub(super) async fn permit(&self, target: &TargetRecord) -> Option<Permit> {
        let limits = self.for_target(target)?;
        let local = match &limits.semaphore {
            Some(s) => Arc::clone(s).acquire_owned().await.ok(),
            None => None,
        };
        let slot = match limits.max_concurrency {
            Some(max) if self.shared => Some(self.slot(&limits, max).await),
            _ => None,
        };
        if let Some(limiter) = &limits.limiter {
            limiter.until_ready().await;
        } else if let Some(rate) = limits.rate_limit_per_s.filter(|_| self.shared) {
            self.send_time(&limits, rate).await;
        }
        Some(Permit {
            _local: local,
            _slot: slot,
        })
    }

    /// The limits of `target`, rebuilt when its configured values changed.
    fn for_target(&self, target: &TargetRecord) -> Option<Arc<TargetLimits>> {
        if target.max_concurrency.is_none() && target.rate_limit_per_s.is_none() {
            return None;
        }
        let mut map = match self.by_target.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(l) = map.get(&target.id) {
            if l.max_concurrency == target.max_concurrency
                && l.rate_limit_per_s == target.rate_limit_per_s
            {
                return Some(Arc::clone(l));
            }
        }
        let limits = Arc::new(TargetLimits {
            target_id: target.id.clone(),
            max_concurrency: target.max_concurrency,
            rate_limit_per_s: target.rate_limit_per_s,
            semaphore: target
                .max_concurrency
                .map(|n| Arc::new(Semaphore::new(usize::try_from(n).unwrap_or(usize::MAX)))),
            limiter: target
                .rate_limit_per_s
                .filter(|_| !self.shared)
                .and_then(NonZeroU32::new)
                .map(|n| RateLimiter::direct(Quota::per_second(n))),
            send_times: tokio::sync::Mutex::default(),
            rate_waiters: AtomicU32::new(0),
            slot_turn: tokio::sync::Mutex::default(),
            slot_released: Notify::new(),
        });
        map.insert(target.id.clone(), Arc::clone(&limits));
        Some(limits)
    }

    /// Takes one of the target's `max` slots in the store, waiting while
    /// all are held, and keeps it renewed.
    async fn slot(&self, limits: &Arc<TargetLimits>, max: u32) -> HeldSlot {
        let _turn = limits.slot_turn.lock().await;
        let mut wait = SLOT_POLL_MIN;
        let mut failures = 0;
        loop {
            let n = self.next_holder.fetch_add(1, Ordering::Relaxed);
            let take = SlotTake {
                target_id: limits.target_id.clone(),
                max,
                holder: format!("{}/{n}", self.owner),
                lease_ms: millis(self.slot_lease),
            };
            match self.take_slot(limits, take).await {
                Ok(Some(held)) => return held,
                Ok(None) => {
                    tokio::select! {
                        () = limits.slot_released.notified() => {}
                        () = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(SLOT_POLL_MAX);
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(target_id = %limits.target_id, error = %e, "could not take a concurrency slot; retrying");
                    tokio::time::sleep(store_backoff(failures)).await;
                }
            }
        }
    }

    /// Takes a slot in a task of its own, which hands it over held (and
    /// renewed). When the delivery asking is dropped before it gets the
    /// slot (a lost lease, the shutdown's hard stop), the slot is dropped
    /// with the answer and so released at once, never left held a lease.
    async fn take_slot(
        &self,
        limits: &Arc<TargetLimits>,
        take: SlotTake,
    ) -> StoreResult<Option<HeldSlot>> {
        let (answer, taken) = oneshot::channel();
        let store = Arc::clone(&self.store);
        let target = Arc::clone(limits);
        let calls = self.slot_calls.clone();
        let call = calls.start();
        let (lease_for, every) = (self.slot_lease, self.slot_renewal);
        tokio::spawn(async move {
            let _call = call;
            let held = store.take_slot(take, wall_us() / 1000).await.map(|lease| {
                lease.map(|lease| HeldSlot {
                    renewal: tokio::spawn(renew(
                        Arc::clone(&store),
                        lease.clone(),
                        lease_for,
                        every,
                    )),
                    lease,
                    store,
                    target,
                    calls,
                })
            });
            // The delivery is gone: the slot drops here, released.
            drop(answer.send(held));
        });
        taken.await.unwrap_or_else(|_| {
            Err(StoreError::unavailable(
                "a slot take stopped before answering",
            ))
        })
    }

    /// Waits for a send time of the target's rate bucket.
    async fn send_time(&self, limits: &TargetLimits, rate: u32) {
        let _waiting = Waiting::new(&limits.rate_waiters);
        let mut failures = 0;
        let at = loop {
            let mut times = limits.send_times.lock().await;
            let stale = wall_us().saturating_sub(micros(STALE_SEND_TIME));
            while times.front().is_some_and(|t| *t < stale) {
                times.pop_front();
            }
            if let Some(at) = times.pop_front() {
                break at;
            }
            // Ask for as many times as deliveries wait here; the store
            // hands out no more than the horizon holds.
            let want = limits
                .rate_waiters
                .load(Ordering::Relaxed)
                .clamp(1, MAX_RATE_TAKE);
            let take = RateTake {
                target_id: limits.target_id.clone(),
                rate_per_s: rate,
                want,
                horizon_ms: millis(RATE_HORIZON),
            };
            // The lock is held while waiting: the other waiters queue
            // behind this one rather than asking the store too.
            match self.store.take_rate(take, wall_us() / 1000).await {
                Ok(g) if g.count > 0 => times.extend((0..g.count).map(|i| g.at_us(i))),
                Ok(g) => {
                    // None free before the horizon (so the next is at least
                    // a horizon away): ask again when half a horizon of
                    // times is free, so that one write brings several.
                    sleep_until_us(g.first_us.saturating_sub(micros(RATE_HORIZON) / 2)).await;
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(target_id = %limits.target_id, error = %e, "could not take send times; retrying");
                    tokio::time::sleep(store_backoff(failures)).await;
                }
            }
        };
        sleep_until_us(at).await;
    }
}

/// Counts a delivery waiting for a send time while it waits (also when
/// its wait is dropped: a lost lease, a shutdown).
struct Waiting<'a>(&'a AtomicU32);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicU32) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How far the store's clock (`store_ms`, read between this node's
/// `before_us` and `after_us`) is off this node's, in ms, when more than
/// [`MAX_CLOCK_OFFSET`] plus the uncertainty of the reading (half the
/// round trip); `None` when within it.
fn clock_offset_ms(before_us: i64, store_ms: i64, after_us: i64) -> Option<i64> {
    let half_trip_us = after_us.saturating_sub(before_us).max(0) / 2;
    let mid_us = before_us.saturating_add(half_trip_us);
    let offset_us = store_ms.saturating_mul(1000).saturating_sub(mid_us);
    (offset_us.unsigned_abs()
        > (micros(MAX_CLOCK_OFFSET).saturating_add(half_trip_us)).unsigned_abs())
    .then_some(offset_us / 1000)
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Renews a slot every `every` until aborted (the permit dropped) or lost.
async fn renew(store: Arc<dyn Store>, lease: SlotLease, lease_for: Duration, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        match store
            .renew_slot(&lease, millis(lease_for), wall_us() / 1000)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(target_id = %lease.target_id, slot = lease.slot, "a concurrency slot expired while its request ran (the store was unreachable longer than the lease); the target may see one request more than its limit");
                return;
            }
            Err(e) => {
                tracing::warn!(target_id = %lease.target_id, slot = lease.slot, error = %e, "could not renew a concurrency slot; retrying at the next renewal");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use signet_sqlite::{SqliteConfig, SqliteStore};
    use signet_store::testkit::FaultyStore;
    use signet_store::{StoreError, TargetId};

    use super::*;

    const LEASE: Duration = Duration::from_secs(10);

    fn target(rate: Option<u32>, max: Option<u32>) -> TargetRecord {
        TargetRecord {
            id: TargetId::generate().to_string(),
            name: "limited".into(),
            url_prefix: None,
            sealed_secrets: vec![1],
            secret_fingerprint: "whsec_ab12".into(),
            rate_limit_per_s: rate,
            max_concurrency: max,
            https_only: false,
            created_at_ms: 0,
            updated_at_ms: 0,
        }
    }

    fn limits(store: Arc<dyn Store>) -> Limits {
        Limits::new(
            store,
            Arc::from("test"),
            LEASE,
            Duration::from_secs(3),
            Duration::from_secs(5),
        )
    }

    /// Whether the store still has one of the target's `max` slots free.
    async fn store_slot_free(store: &dyn Store, t: &TargetRecord, max: u32) -> bool {
        let take = SlotTake {
            target_id: t.id.clone(),
            max,
            holder: "probe".into(),
            lease_ms: 1,
        };
        let now = wall_us() / 1000;
        match store.take_slot(take, now).await.unwrap() {
            Some(lease) => {
                store.release_slot(&lease).await.unwrap();
                true
            }
            None => false,
        }
    }

    #[tokio::test]
    async fn a_target_without_limits_never_asks_the_store() {
        let inner: Arc<dyn Store> =
            Arc::new(SqliteStore::open("sqlite::memory:", SqliteConfig::default()).unwrap());
        let store: Arc<dyn Store> = Arc::new(FaultyStore::new(inner, |_| {
            Some(StoreError::unavailable("the store was asked"))
        }));
        let l = limits(store);
        assert!(l.permit(&target(None, None)).await.is_none());
    }

    #[tokio::test]
    async fn on_a_file_a_permit_holds_a_slot_in_the_store_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("signet.db").display());
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&url, SqliteConfig::default()).unwrap());
        let l = limits(Arc::clone(&store));
        let t = target(Some(1000), Some(1));
        let permit = l.permit(&t).await.expect("a limited target");
        assert!(!store_slot_free(&*store, &t, 1).await, "the slot is held");
        drop(permit);
        tokio::time::timeout(Duration::from_secs(5), async {
            while !store_slot_free(&*store, &t, 1).await {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the slot is released after the permit drops");
    }

    fn file_store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
        let url = format!("sqlite://{}", dir.path().join("signet.db").display());
        Arc::new(SqliteStore::open(&url, SqliteConfig::default()).unwrap())
    }

    #[tokio::test]
    async fn a_slot_taken_for_a_delivery_dropped_meanwhile_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir);
        let l = limits(Arc::clone(&store));
        let t = target(None, Some(1));
        {
            // The delivery asks for its slot and is dropped (a lost lease,
            // the hard stop) while the store takes it.
            let mut permit = std::pin::pin!(l.permit(&t));
            assert!(futures::poll!(permit.as_mut()).is_pending());
        }
        l.released().await;
        assert!(
            store_slot_free(&*store, &t, 1).await,
            "the slot taken for the dropped delivery is released, not held a lease"
        );
    }

    #[tokio::test]
    async fn a_graceful_stop_waits_for_its_slots_to_be_released() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir);
        let l = limits(Arc::clone(&store));
        let t = target(None, Some(1));
        let permit = l.permit(&t).await.expect("a limited target");
        drop(permit);
        l.released().await;
        assert!(
            store_slot_free(&*store, &t, 1).await,
            "the slot is free once the stop returns"
        );
    }

    #[test]
    fn a_clock_more_than_the_allowed_offset_off_the_databases_is_told() {
        // Read in 2 ms: the store's time is compared with the middle.
        let (before, after) = (1_000_000_000, 1_000_002_000);
        assert_eq!(clock_offset_ms(before, 1_000_001, after), None);
        assert_eq!(clock_offset_ms(before, 1_000_100, after), None);
        assert_eq!(clock_offset_ms(before, 1_000_250, after), Some(249));
        assert_eq!(clock_offset_ms(before, 999_700, after), Some(-301));
        // A slow reading widens what is allowed by half its round trip.
        assert_eq!(clock_offset_ms(0, 350, 600_000), None);
    }

    #[tokio::test]
    async fn in_memory_the_limits_stay_in_the_process() {
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open("sqlite::memory:", SqliteConfig::default()).unwrap());
        assert!(store.only_node());
        let l = limits(Arc::clone(&store));
        let t = target(Some(1000), Some(1));
        let _permit = l.permit(&t).await.expect("a limited target");
        assert!(
            store_slot_free(&*store, &t, 1).await,
            "no store slot is taken in memory"
        );
        let second = tokio::time::timeout(Duration::from_millis(50), l.permit(&t)).await;
        assert!(second.is_err(), "the process still allows one at a time");
    }
}
