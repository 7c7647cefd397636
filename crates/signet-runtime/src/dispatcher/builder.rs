//! Configuring a dispatcher: keys, targets, SSRF policy, HTTP client,
//! retries, capacity, leases.

use std::sync::Arc;
use std::time::Duration;

use signet_sign::{KeyRing, SigningConfig};
use signet_store::{Store, MESSAGE_QUEUE};
use tokio::sync::{broadcast, Semaphore};

use super::limits::Limits;
use super::run::Dispatcher;
use super::shared::Shared;
use crate::claim::{default_owner, ClaimLoop, ClaimSettings};
use crate::clock::{Clock, SystemClock};
use crate::delivery::{HttpClient, HttpConfig};
use crate::error::RuntimeError;
use crate::message::RetrySchedule;
use crate::push::{PushDrain, PushShared};
use crate::ssrf::SsrfPolicy;
use crate::targets::{Lookup, TargetCache, TargetService};
use crate::verify::Verifier;

/// Default deliveries in flight at once (all targets together).
pub const DEFAULT_DELIVERY_CONCURRENCY: usize = 256;
/// Default lease on a message being delivered. Short, so the deliveries of
/// a dispatcher that died (a `serve` killed mid-delivery) are rescued and
/// sent by another within [`DEFAULT_LEASE`] +
/// [`DEFAULT_RESCUE_INTERVAL`](crate::DEFAULT_RESCUE_INTERVAL) = 14 s; a
/// delivery that runs longer keeps its lease by heartbeats. (It was 90 s:
/// one kill left up to 256 deliveries stuck for 90 s, then sent again.)
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);
/// Default time between heartbeats while a delivery waits or runs: three
/// heartbeats per lease, so a store stalled for a heartbeat or two does not
/// lose a live delivery's lease.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(3);
/// Default longest wait for new messages before claiming again (backends
/// that can signal new work wake the dispatcher sooner).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Default time in-flight deliveries get to finish on shutdown.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Default time a target (and its opened secrets) is reused before it is
/// read again, so a rotation or a change of limits made on another node is
/// seen within this (one made through the same
/// [`TargetService`] is seen at once).
pub const DEFAULT_TARGET_CACHE_TTL: Duration = Duration::from_secs(1);
/// Most messages asked for in one claim.
pub const MAX_CLAIM_BATCH: usize = 256;

/// Builds a [`Dispatcher`].
pub struct DispatcherBuilder {
    store: Arc<dyn Store>,
    signing: Option<(Arc<KeyRing>, Verifier)>,
    targets: Option<TargetService>,
    policy: SsrfPolicy,
    http: HttpConfig,
    retry: RetrySchedule,
    concurrency: usize,
    lease: Duration,
    heartbeat: Duration,
    poll_interval: Duration,
    grace: Duration,
    target_cache_ttl: Duration,
    clock: Arc<dyn Clock>,
    worker_id: Option<String>,
}

impl DispatcherBuilder {
    /// The server's keys: the ring signs requests of messages without a
    /// target; its verifying half checks every message at rest. Dev mode
    /// skips the at-rest check (loudly).
    pub fn signing(mut self, config: &SigningConfig) -> Self {
        self.signing = Some((
            Arc::new(config.ring.duplicate()),
            Verifier::from_config(config),
        ));
        self
    }

    /// Like [`DispatcherBuilder::signing`] with a ring; `required` refuses
    /// unsigned messages.
    pub fn key_ring(mut self, ring: &KeyRing, required: bool) -> Self {
        self.signing = Some((Arc::new(ring.duplicate()), Verifier::keys(ring, required)));
        self
    }

    /// Dev mode (`SIGNET_DEV`): messages are NOT verified at rest (a loud
    /// warning at start); `ring` still signs requests.
    pub fn danger_skip_verification(mut self, ring: &KeyRing) -> Self {
        self.signing = Some((Arc::new(ring.duplicate()), Verifier::Dev));
        self
    }

    /// Targets (and the master key that opens their secrets). Without it,
    /// messages for a target fail.
    pub fn targets(mut self, targets: TargetService) -> Self {
        self.targets = Some(targets);
        self
    }

    /// Which addresses deliveries may reach (default: public addresses only).
    pub fn ssrf_policy(mut self, policy: SsrfPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Timeouts and caps of the HTTP client.
    pub fn http(mut self, config: HttpConfig) -> Self {
        self.http = config;
        self
    }

    /// The retry schedule of messages that do not bring their own.
    pub fn retry_schedule(mut self, schedule: RetrySchedule) -> Self {
        self.retry = schedule;
        self
    }

    /// Deliveries in flight at once (default [`DEFAULT_DELIVERY_CONCURRENCY`]).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }

    /// Lease length and heartbeat interval.
    pub fn lease(mut self, lease: Duration, heartbeat: Duration) -> Self {
        self.lease = lease;
        self.heartbeat = heartbeat;
        self
    }

    /// Longest wait before claiming again when nothing was due.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// How long in-flight deliveries may finish after shutdown is asked.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// How long a target read from the store is reused.
    pub fn target_cache_ttl(mut self, ttl: Duration) -> Self {
        self.target_cache_ttl = ttl;
        self
    }

    /// The clock (tests pass a [`ManualClock`](crate::ManualClock)).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The lease owner name (default `dispatcher-<pid>-<random>`).
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.worker_id = Some(id.into());
        self
    }

    /// Checks the configuration and builds the dispatcher.
    pub fn build(self) -> Result<Dispatcher, RuntimeError> {
        let (ring, verifier) = self.signing.ok_or_else(|| {
            RuntimeError::Config(
                "the dispatcher has no signing configuration; call .signing(&config) or .key_ring(..)".into(),
            )
        })?;
        if self.concurrency == 0 {
            return Err(RuntimeError::Config(
                "delivery concurrency is 0; use at least 1".into(),
            ));
        }
        // Dev mode and a missing key are states the process states once
        // (`signet serve`'s banner); here they are only logged at INFO.
        match &verifier {
            Verifier::Dev => tracing::info!(
                "DEV MODE: message signatures at rest are NOT verified; anyone who can write to the store can make this server send requests"
            ),
            Verifier::Keys { ring, required } if ring.is_empty() && *required => {
                return Err(RuntimeError::Config(
                    "signing is required but no keys are configured to verify messages with; set SIGNET_SIGNING_KEYS".into(),
                ))
            }
            Verifier::Keys { .. } => {}
        }
        if !ring.active().is_some_and(|k| k.can_sign()) {
            tracing::info!("no signing key: messages without a target cannot be signed and will fail until one is configured");
        }
        let http = HttpClient::new(self.http, self.policy)?;
        let targets = self
            .targets
            .unwrap_or_else(|| TargetService::new(Arc::clone(&self.store), None));
        let push_targets = TargetCache::new(targets.clone(), Lookup::Id, self.target_cache_ttl);
        let worker_id: Arc<str> = Arc::from(
            self.worker_id
                .unwrap_or_else(|| default_owner("dispatcher")),
        );
        let (events, _) = broadcast::channel(4096);
        let (claims, leases) = ClaimLoop::new(ClaimSettings {
            role: "dispatcher",
            store: Arc::clone(&self.store),
            clock: Arc::clone(&self.clock),
            queues: vec![MESSAGE_QUEUE.to_owned()],
            owner: Arc::clone(&worker_id),
            concurrency: self.concurrency,
            max_batch: MAX_CLAIM_BATCH,
            poll_interval: self.poll_interval,
            grace: self.grace,
            lease: self.lease,
            heartbeat: self.heartbeat,
        })?;
        let push = PushDrain::new(PushShared {
            store: Arc::clone(&self.store),
            clock: Arc::clone(&self.clock),
            http: http.clone(),
            targets: push_targets,
            owner: Arc::clone(&worker_id),
            poll_interval: self.poll_interval,
            grace: self.grace,
        });
        // Concurrency slots are leased like the deliveries holding them:
        // a dead dispatcher's slots come back one lease after its death.
        let limits = Limits::new(
            Arc::clone(&self.store),
            Arc::clone(&worker_id),
            self.lease,
            self.heartbeat,
            self.grace,
        );
        let unsettled = Arc::new(Semaphore::new(
            claims
                .concurrency()
                .saturating_mul(super::settle::UNSETTLED_PER_SLOT)
                .min(Semaphore::MAX_PERMITS),
        ));
        Ok(Dispatcher {
            push,
            shared: Arc::new(Shared {
                store: self.store,
                clock: self.clock,
                verifier: Arc::new(verifier),
                ring,
                targets: TargetCache::new(targets, Lookup::Id, self.target_cache_ttl),
                http,
                retry: self.retry,
                worker_id,
                leases,
                limits,
                events,
                unsettled,
            }),
            claims,
        })
    }
}

impl Dispatcher {
    /// A builder over `store`. Call `.signing(..)`, then `.build()`.
    pub fn builder(store: Arc<dyn Store>) -> DispatcherBuilder {
        DispatcherBuilder {
            store,
            signing: None,
            targets: None,
            policy: SsrfPolicy::new(),
            http: HttpConfig::default(),
            retry: RetrySchedule::default(),
            concurrency: DEFAULT_DELIVERY_CONCURRENCY,
            lease: DEFAULT_LEASE,
            heartbeat: DEFAULT_HEARTBEAT,
            poll_interval: DEFAULT_POLL_INTERVAL,
            grace: DEFAULT_SHUTDOWN_GRACE,
            target_cache_ttl: DEFAULT_TARGET_CACHE_TTL,
            clock: Arc::new(SystemClock),
            worker_id: None,
        }
    }
}
