//! The dispatcher: delivers messages over HTTP, signed, with retries.
//!
//! ```text
//! claim (batch) ─► verify at-rest signature ─► refuse (dead) ──────────────┐
//!                         └─► per message: target rules, SSRF literal check │
//!                              ─► target concurrency + rate limit (waiting) │
//!                              ─► sign afresh ─► send ─► judge ─────────────┤
//!                                  (the lease is heartbeated throughout)    ▼
//!                                 record_attempt, then complete / fail / release
//! ```
//!
//! Messages are tasks on [`MESSAGE_QUEUE`]: the dispatcher claims them like a
//! worker, verifies the envelope signature first (a message changed at rest
//! is dead-lettered `signature-invalid`), and records every attempt with
//! [`Store::record_attempt`] (status, latency, the first 4 KiB of the
//! response).
//!
//! Each attempt is signed afresh: `webhook-id` is the message id on every
//! attempt, `webhook-timestamp` is this attempt's time, so a retry hours
//! later still passes a receiver's freshness window. With a target, every
//! secret of the target that has not expired signs (during a rotation
//! overlap the request carries one signature per secret); without one, the
//! server's key ring signs (Standard Webhooks `v1`/`v1a`).
//!
//! How an attempt is judged:
//!
//! | answer | outcome |
//! |---|---|
//! | `2xx` | delivered (`succeeded`, result `{"status": …}`) |
//! | `410 Gone` | dead, `target-refused`: the receiver said it wants no more deliveries, so retrying cannot help |
//! | refused by the SSRF guard, `https_only` or `url_prefix`, target deleted | dead, `target-refused`, the detail names the rule |
//! | `429`, `503` with `Retry-After` | retry after the time asked for (capped) |
//! | anything else (other status, `3xx` — never followed — timeout, connect error) | retry on the schedule, or dead `max-attempts` with the last status once out of attempts |
//!
//! The schedule is 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h with ±20 %
//! jitter by default ([`RetrySchedule`]), per message overridable.

use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use signet_sign::profiles::SignRequest;
use signet_sign::standard::{self, STANDARD_HEADERS, SVIX_HEADERS};
use signet_sign::{KeyRing, SigningConfig};
use signet_store::{
    AttemptRecord, ClaimRequest, DeadReason, FailOutcome, LeaseToken, Store, StoreError,
    TargetRecord, TaskRow, MESSAGE_QUEUE,
};
use tokio::sync::{broadcast, watch, OwnedSemaphorePermit, Semaphore};

use crate::clock::{duration_ms, Clock, SystemClock};
use crate::delivery::{clip, AttemptOutcome, HttpClient, HttpConfig, OutgoingRequest};
use crate::error::RuntimeError;
use crate::message::{check_target_url, MessageSpec, RetrySchedule, SignatureProfile};
use crate::metrics;
use crate::shutdown::ShutdownSignal;
use crate::ssrf::SsrfPolicy;
use crate::targets::{TargetSecrets, TargetService};
use crate::verify::{Check, Verifier};
use crate::worker::{retry_store, store_backoff};

/// Default deliveries in flight at once (all targets together).
pub const DEFAULT_DELIVERY_CONCURRENCY: usize = 256;
/// Default lease on a message being delivered.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(90);
/// Default time between heartbeats while a delivery waits or runs.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(20);
/// Default longest wait for new messages before claiming again (backends
/// that can signal new work wake the dispatcher sooner).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Default time in-flight deliveries get to finish on shutdown.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Default time a target (and its opened secrets) is reused before it is
/// read again, so a rotation or a change of limits is seen within this.
pub const DEFAULT_TARGET_CACHE_TTL: Duration = Duration::from_secs(1);
/// Most messages asked for in one claim.
pub const MAX_CLAIM_BATCH: usize = 256;
/// The `target` metric label of messages without a target.
const NO_TARGET: &str = "none";

/// What happened to a delivery attempt, published on
/// [`Dispatcher::events`] after the store recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryEvent {
    /// The message id.
    pub message_id: String,
    /// The attempt that ended.
    pub attempt: u32,
    /// How it ended.
    pub kind: DeliveryEventKind,
}

/// How a delivery attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryEventKind {
    /// The receiver answered 2xx.
    Delivered {
        /// The status.
        status: u16,
    },
    /// The attempt failed; the message is tried again at `at_ms`.
    Retrying {
        /// When (unix ms).
        at_ms: i64,
        /// What went wrong.
        error: String,
    },
    /// The message was dead-lettered.
    Dead {
        /// Why.
        reason: DeadReason,
        /// Details.
        detail: String,
    },
    /// Given back on shutdown (the attempt is not counted).
    Released,
    /// The lease was lost; the outcome was dropped.
    LeaseLost,
    /// The outcome could not be written; the lease will expire and the
    /// message will be rescued.
    StoreFailed {
        /// The store's error.
        error: String,
    },
}

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
        if self.heartbeat.is_zero() || self.heartbeat >= self.lease {
            return Err(RuntimeError::Config(format!(
                "heartbeat interval ({:?}) must be above zero and shorter than the lease ({:?})",
                self.heartbeat, self.lease
            )));
        }
        match &verifier {
            Verifier::Dev => tracing::warn!(
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
            tracing::warn!("no signing key: messages without a target cannot be signed and will fail until one is configured");
        }
        let http = HttpClient::new(self.http, self.policy)?;
        let targets = self
            .targets
            .unwrap_or_else(|| TargetService::new(Arc::clone(&self.store), None));
        let worker_id = self.worker_id.unwrap_or_else(|| {
            format!(
                "dispatcher-{}-{:08x}",
                std::process::id(),
                rand::random::<u32>()
            )
        });
        let (events, _) = broadcast::channel(4096);
        let (hard_stop, _) = watch::channel(false);
        Ok(Dispatcher {
            shared: Arc::new(Shared {
                store: self.store,
                clock: self.clock,
                verifier: Arc::new(verifier),
                ring,
                targets,
                http,
                retry: self.retry,
                worker_id,
                lease_ms: duration_ms(self.lease),
                heartbeat: self.heartbeat,
                target_cache_ttl: self.target_cache_ttl,
                cache: Mutex::new(HashMap::new()),
                limits: Mutex::new(HashMap::new()),
                slots: Arc::new(Semaphore::new(self.concurrency)),
                events,
                hard_stop,
            }),
            concurrency: self.concurrency,
            poll_interval: self.poll_interval,
            grace: self.grace,
        })
    }
}

/// Delivers messages. Build with [`Dispatcher::builder`], start with
/// [`Dispatcher::run`].
pub struct Dispatcher {
    shared: Arc<Shared>,
    concurrency: usize,
    poll_interval: Duration,
    grace: Duration,
}

struct Shared {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    verifier: Arc<Verifier>,
    ring: Arc<KeyRing>,
    targets: TargetService,
    http: HttpClient,
    retry: RetrySchedule,
    worker_id: String,
    lease_ms: i64,
    heartbeat: Duration,
    target_cache_ttl: Duration,
    cache: Mutex<HashMap<String, CachedTarget>>,
    limits: Mutex<HashMap<String, Arc<TargetLimits>>>,
    /// One permit per delivery in flight.
    slots: Arc<Semaphore>,
    events: broadcast::Sender<DeliveryEvent>,
    hard_stop: watch::Sender<bool>,
}

struct CachedTarget {
    record: Arc<TargetRecord>,
    secrets: Arc<TargetSecrets>,
    fetched: Instant,
}

/// A target's concurrency and rate limits, kept across cache refreshes so
/// in-flight deliveries stay counted.
struct TargetLimits {
    max_concurrency: Option<u32>,
    rate_limit_per_s: Option<u32>,
    semaphore: Option<Arc<Semaphore>>,
    limiter: Option<DefaultDirectRateLimiter>,
}

/// What a delivery ends with, before it is written.
enum Decision {
    Delivered {
        status: u16,
        record: AttemptRecord,
    },
    Retry {
        at_ms: i64,
        error: String,
        record: AttemptRecord,
    },
    Dead {
        reason: DeadReason,
        detail: String,
        record: AttemptRecord,
    },
    Release,
    LeaseLost,
}

/// A delivery ready to send.
struct Prepared {
    spec: MessageSpec,
    url: url::Url,
    method: reqwest::Method,
    target: Option<(Arc<TargetRecord>, Arc<TargetSecrets>)>,
    schedule: RetrySchedule,
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

    /// The lease owner name.
    pub fn id(&self) -> &str {
        &self.shared.worker_id
    }

    /// Subscribes to delivery outcomes (after they are written). A slow
    /// subscriber misses events rather than slowing deliveries.
    pub fn events(&self) -> broadcast::Receiver<DeliveryEvent> {
        self.shared.events.subscribe()
    }

    /// Delivers until `shutdown` fires, then stops claiming, lets in-flight
    /// deliveries finish within the grace period, releases the rest and
    /// returns once every outcome is written.
    ///
    /// Returns an error only when the store is closed under it.
    pub async fn run(self, mut shutdown: ShutdownSignal) -> Result<(), RuntimeError> {
        let shared = self.shared;
        tracing::info!(
            worker_id = %shared.worker_id,
            concurrency = self.concurrency,
            allowed_cidrs = ?shared.http.policy().allowed(),
            "dispatcher started"
        );
        let queues = vec![MESSAGE_QUEUE.to_owned()];
        let mut failures = 0u32;
        let mut result = Ok(());
        while !shutdown.is_triggered() {
            let free = shared.slots.available_permits();
            if free == 0 {
                tokio::select! {
                    permit = shared.slots.acquire() => drop(permit),
                    _ = shutdown.triggered() => {}
                }
                continue;
            }
            let request = ClaimRequest {
                queues: queues.clone(),
                worker_id: shared.worker_id.clone(),
                limit: free.min(MAX_CLAIM_BATCH),
                lease_ms: shared.lease_ms,
            };
            let rows = match shared.store.claim(request, shared.clock.now_ms()).await {
                Ok(rows) => {
                    failures = 0;
                    rows
                }
                Err(StoreError::Closed) => {
                    tracing::error!("the store was closed; the dispatcher stops");
                    result = Err(RuntimeError::Store(StoreError::Closed));
                    break;
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let wait = store_backoff(failures);
                    tracing::warn!(error = %e, retry_in = ?wait, "claiming messages failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.triggered() => {}
                    }
                    continue;
                }
            };
            if rows.is_empty() {
                tokio::select! {
                    _ = shared.store.wait_for_work(&queues, self.poll_interval) => {}
                    _ = shutdown.triggered() => {}
                }
                continue;
            }
            let checks = verify(&shared, &rows).await;
            for (row, check) in rows.into_iter().zip(checks) {
                let permit = match Arc::clone(&shared.slots).try_acquire_owned() {
                    Ok(p) => p,
                    // Cannot happen: at most `free` rows were claimed and
                    // only this loop takes permits. Waiting is still correct.
                    Err(_) => match Arc::clone(&shared.slots).acquire_owned().await {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                };
                tokio::spawn(deliver(Arc::clone(&shared), row, check, permit));
            }
        }

        // Graceful shutdown: no more claims; let deliveries finish.
        let all = u32::try_from(self.concurrency).unwrap_or(u32::MAX);
        let drained = tokio::time::timeout(self.grace, shared.slots.acquire_many(all)).await;
        if drained.is_err() {
            tracing::warn!(grace = ?self.grace, "grace period over; releasing messages still being delivered");
            shared.hard_stop.send_replace(true);
            // Releases are quick store writes; wait for them.
            let _ = shared.slots.acquire_many(all).await;
        }
        tracing::info!(worker_id = %shared.worker_id, "dispatcher stopped");
        result
    }
}

/// Verifies a claimed batch at rest (off the async threads when heavy).
async fn verify(shared: &Arc<Shared>, rows: &[TaskRow]) -> Vec<Check> {
    if !shared.verifier.is_heavy(rows) {
        return shared.verifier.check(rows);
    }
    let verifier = Arc::clone(&shared.verifier);
    let owned: Vec<TaskRow> = rows.to_vec();
    let count = owned.len();
    match tokio::task::spawn_blocking(move || verifier.check(&owned)).await {
        Ok(checks) => checks,
        Err(e) => {
            tracing::error!(error = %e, "signature verification task failed");
            (0..count)
                .map(|_| {
                    Err(signet_sign::Error::malformed(
                        "the signature could not be checked",
                    ))
                })
                .collect()
        }
    }
}

/// One delivery attempt of one claimed message, from checks to the store.
async fn deliver(shared: Arc<Shared>, row: TaskRow, check: Check, _slot: OwnedSemaphorePermit) {
    let lease = LeaseToken::of(&row);
    let id = row.envelope.id.clone();
    let attempt = row.attempt;
    let (decision, label) = match prepare(&shared, &row, check).await {
        Err(Early::Dead(reason, detail)) => {
            let record = attempt_record(
                &id,
                attempt,
                shared.clock.now_ms(),
                Duration::ZERO,
                None,
                Some(&detail),
                Vec::new(),
            );
            (
                Decision::Dead {
                    reason,
                    detail,
                    record,
                },
                NO_TARGET.to_owned(),
            )
        }
        Err(Early::Fail(error, schedule)) => {
            let outcome = AttemptOutcome::Failed {
                error,
                latency: Duration::ZERO,
            };
            let now = shared.clock.now_ms();
            let decision = judge(
                outcome,
                &id,
                attempt,
                row.envelope.max_attempts,
                now,
                &schedule,
                &shared,
            );
            (decision, NO_TARGET.to_owned())
        }
        Ok(prepared) => {
            let label = prepared
                .target
                .as_ref()
                .map_or_else(|| NO_TARGET.to_owned(), |(t, _)| t.name.clone());
            let send = send(&shared, &id, attempt, row.envelope.max_attempts, prepared);
            (with_lease(&shared, &lease, send).await, label)
        }
    };
    settle(&shared, &lease, &id, attempt, decision, &label).await;
}

/// Why a message is not sent on this attempt.
enum Early {
    /// It never will be: dead-letter it.
    Dead(DeadReason, String),
    /// Not now (the target could not be read or opened): a failed attempt,
    /// retried on this schedule.
    Fail(String, RetrySchedule),
}

/// Everything that can refuse a message before any request: the at-rest
/// signature, expiry, the spec, the target and its rules, an IP literal.
async fn prepare(shared: &Shared, row: &TaskRow, check: Check) -> Result<Prepared, Early> {
    if let Err(e) = check {
        metrics::signature_invalid(e.reason());
        return Err(Early::Dead(
            DeadReason::SignatureInvalid,
            format!("{}: {}", e.reason(), e.message()),
        ));
    }
    let now = shared.clock.now_ms();
    if let Some(exp) = row.envelope.expires_at_ms.filter(|exp| *exp <= now) {
        return Err(Early::Dead(
            DeadReason::Expired,
            format!("expired at {exp} (unix ms) before it was delivered"),
        ));
    }
    let spec = MessageSpec::from_args(&row.envelope.args)
        .map_err(|e| Early::Dead(DeadReason::PayloadInvalid, e))?;
    let url = spec
        .validate()
        .map_err(|e| Early::Dead(DeadReason::PayloadInvalid, e.to_string()))?;
    let method = reqwest::Method::from_bytes(spec.method.as_bytes()).map_err(|_| {
        Early::Dead(
            DeadReason::PayloadInvalid,
            format!("method {:?} is not valid", spec.method),
        )
    })?;
    let schedule = spec.retry_schedule(&shared.retry);
    let target = match &spec.target {
        None => None,
        Some(id) => Some(match target(shared, id).await {
            Ok(Some(t)) => t,
            Ok(None) => {
                return Err(Early::Dead(
                    DeadReason::TargetRefused,
                    format!("target {id} does not exist (it was deleted)"),
                ))
            }
            Err(error) => return Err(Early::Fail(error, schedule)),
        }),
    };
    if let Some((t, _)) = &target {
        check_target_url(t, &url).map_err(|m| Early::Dead(DeadReason::TargetRefused, m))?;
    }
    if let Err(refusal) = shared.http.policy().check_url(&url) {
        return Err(Early::Dead(DeadReason::TargetRefused, refusal.to_string()));
    }
    Ok(Prepared {
        spec,
        url,
        method,
        target,
        schedule,
    })
}

type OpenedTarget = (Arc<TargetRecord>, Arc<TargetSecrets>);

/// A target and its opened secrets, from the cache or the store; `None`
/// when it does not exist. A store or master-key problem is an error (the
/// attempt fails and is retried: it is not the message's fault).
async fn target(shared: &Shared, id: &str) -> Result<Option<OpenedTarget>, String> {
    if let Ok(cache) = shared.cache.lock() {
        if let Some(c) = cache.get(id) {
            if c.fetched.elapsed() < shared.target_cache_ttl {
                return Ok(Some((Arc::clone(&c.record), Arc::clone(&c.secrets))));
            }
        }
    }
    let record = match shared.targets.get(id).await {
        Ok(Some(r)) => r,
        Ok(None) => return Ok(None),
        Err(e) => return Err(format!("target {id} could not be read: {e}")),
    };
    let secrets = shared.targets.open(&record).map_err(|e| e.to_string())?;
    let (record, secrets) = (Arc::new(record), Arc::new(secrets));
    if let Ok(mut cache) = shared.cache.lock() {
        cache.insert(
            id.to_owned(),
            CachedTarget {
                record: Arc::clone(&record),
                secrets: Arc::clone(&secrets),
                fetched: Instant::now(),
            },
        );
    }
    Ok(Some((record, secrets)))
}

impl Shared {
    /// The limits of `target`, rebuilt when its configured values changed.
    fn limits_for(&self, target: &TargetRecord) -> Option<Arc<TargetLimits>> {
        if target.max_concurrency.is_none() && target.rate_limit_per_s.is_none() {
            return None;
        }
        let mut map = match self.limits.lock() {
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
            max_concurrency: target.max_concurrency,
            rate_limit_per_s: target.rate_limit_per_s,
            semaphore: target
                .max_concurrency
                .map(|n| Arc::new(Semaphore::new(usize::try_from(n).unwrap_or(usize::MAX)))),
            limiter: target
                .rate_limit_per_s
                .and_then(NonZeroU32::new)
                .map(|n| RateLimiter::direct(Quota::per_second(n))),
        });
        map.insert(target.id.clone(), Arc::clone(&limits));
        Some(limits)
    }
}

/// Waits for the target's limits, signs, sends and judges one attempt.
async fn send(shared: &Shared, id: &str, attempt: u32, max_attempts: u32, p: Prepared) -> Decision {
    let limits = p.target.as_ref().and_then(|(t, _)| shared.limits_for(t));
    let _target_slot = match limits.as_ref().and_then(|l| l.semaphore.clone()) {
        Some(s) => s.acquire_owned().await.ok(),
        None => None,
    };
    if let Some(limiter) = limits.as_ref().and_then(|l| l.limiter.as_ref()) {
        limiter.until_ready().await;
    }
    let started_ms = shared.clock.now_ms();
    let body = p.spec.body.clone().unwrap_or_default().into_bytes();
    let signed = sign(shared, &p, id, started_ms, &body);
    let mut headers: Vec<(String, String)> = p
        .spec
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    match signed {
        Ok(sig) => headers.extend(sig),
        Err(error) => {
            return judge(
                AttemptOutcome::Failed {
                    error,
                    latency: Duration::ZERO,
                },
                id,
                attempt,
                max_attempts,
                started_ms,
                &p.schedule,
                shared,
            )
        }
    }
    let outcome = shared
        .http
        .send(OutgoingRequest {
            method: p.method,
            url: p.url,
            headers,
            body,
        })
        .await;
    judge(
        outcome,
        id,
        attempt,
        max_attempts,
        started_ms,
        &p.schedule,
        shared,
    )
}

/// The signature headers of this attempt, signed at `now_ms`.
fn sign(
    shared: &Shared,
    p: &Prepared,
    id: &str,
    now_ms: i64,
    body: &[u8],
) -> Result<Vec<(String, String)>, String> {
    let timestamp = now_ms.div_euclid(1000);
    let profile = p.spec.signature_profile;
    match &p.target {
        None => {
            let names = match profile {
                SignatureProfile::Svix => &SVIX_HEADERS,
                _ => &STANDARD_HEADERS,
            };
            let headers = standard::sign_headers(names, &shared.ring, id, timestamp, body)
                .map_err(|e| format!("cannot sign: {}", e.message()))?;
            Ok(headers
                .into_iter()
                .map(|(n, v)| (n.to_owned(), v))
                .collect())
        }
        Some((t, secrets)) => {
            let keys: Vec<_> = secrets
                .signing_at(now_ms)
                .filter_map(|s| profile.profile().parse_key(s.expose_secret()).ok())
                .collect();
            if keys.is_empty() {
                return Err(format!(
                    "no secret of target {} can sign the {profile} profile",
                    t.name
                ));
            }
            profile
                .profile()
                .sign(
                    &keys,
                    &SignRequest {
                        id,
                        timestamp,
                        body,
                    },
                )
                .map_err(|e| format!("cannot sign: {}", e.message()))
        }
    }
}

/// Turns an attempt's outcome into what to write.
fn judge(
    outcome: AttemptOutcome,
    id: &str,
    attempt: u32,
    max_attempts: u32,
    started_ms: i64,
    schedule: &RetrySchedule,
    shared: &Shared,
) -> Decision {
    let now = shared.clock.now_ms();
    let cap = shared.http.config().max_retry_after;
    decide(
        outcome,
        id,
        attempt,
        max_attempts,
        started_ms,
        now,
        schedule,
        cap,
    )
}

/// The pure part of [`judge`]: see the table in the module docs.
#[allow(clippy::too_many_arguments)] // reason: every input is independent; a struct would only rename them
fn decide(
    outcome: AttemptOutcome,
    id: &str,
    attempt: u32,
    max_attempts: u32,
    started_ms: i64,
    now_ms: i64,
    schedule: &RetrySchedule,
    retry_after_cap: Duration,
) -> Decision {
    let (failure, wait_hint, record) = match outcome {
        AttemptOutcome::Response {
            status,
            retry_after,
            location,
            body,
            latency,
        } => {
            let record = attempt_record(id, attempt, started_ms, latency, Some(status), None, body);
            if (200..300).contains(&status) {
                return Decision::Delivered { status, record };
            }
            if status == 410 {
                return Decision::Dead {
                    reason: DeadReason::TargetRefused,
                    detail: "the receiver answered 410 Gone: it wants no more deliveries, so this message is not retried".into(),
                    record,
                };
            }
            let failure = match (status, location) {
                (300..=399, Some(to)) => {
                    format!("HTTP {status} (redirect to {to} not followed)")
                }
                (300..=399, None) => format!("HTTP {status} (redirects are not followed)"),
                _ => format!("HTTP {status}"),
            };
            let hint = match status {
                429 | 503 => retry_after.map(|r| r.wait(now_ms, retry_after_cap)),
                _ => None,
            };
            (failure, hint, record)
        }
        AttemptOutcome::Refused(refusal) => {
            let detail = refusal.to_string();
            let record = attempt_record(
                id,
                attempt,
                started_ms,
                Duration::ZERO,
                None,
                Some(&detail),
                Vec::new(),
            );
            return Decision::Dead {
                reason: DeadReason::TargetRefused,
                detail,
                record,
            };
        }
        AttemptOutcome::Failed { error, latency } => {
            let record = attempt_record(
                id,
                attempt,
                started_ms,
                latency,
                None,
                Some(&error),
                Vec::new(),
            );
            (error, None, record)
        }
    };
    if attempt >= max_attempts {
        return Decision::Dead {
            reason: DeadReason::MaxAttempts,
            detail: clip(&format!(
                "all {max_attempts} attempts failed; last: {failure}"
            )),
            record,
        };
    }
    let wait = wait_hint.unwrap_or_else(|| schedule.delay_after(attempt, &mut rand::thread_rng()));
    Decision::Retry {
        at_ms: now_ms.saturating_add(duration_ms(wait)),
        error: clip(&failure),
        record,
    }
}

fn attempt_record(
    id: &str,
    attempt: u32,
    started_at_ms: i64,
    latency: Duration,
    status: Option<u16>,
    error: Option<&str>,
    response_body: Vec<u8>,
) -> AttemptRecord {
    AttemptRecord {
        task_id: id.to_owned(),
        attempt: attempt.max(1),
        started_at_ms,
        latency_ms: duration_ms(latency),
        status,
        error: error.map(clip),
        response_body,
    }
}

/// Runs `work` while heartbeating the lease; a lost lease or the hard stop
/// ends it early.
async fn with_lease(
    shared: &Shared,
    lease: &LeaseToken,
    work: impl Future<Output = Decision>,
) -> Decision {
    let mut stop = shared.hard_stop.subscribe();
    tokio::select! {
        biased;
        d = work => d,
        () = heartbeat_until_lost(shared, lease) => Decision::LeaseLost,
        () = hard_stopped(&mut stop) => Decision::Release,
    }
}

async fn heartbeat_until_lost(shared: &Shared, lease: &LeaseToken) {
    loop {
        tokio::time::sleep(shared.heartbeat).await;
        match shared
            .store
            .heartbeat(lease, shared.lease_ms, shared.clock.now_ms())
            .await
        {
            Ok(()) => {}
            Err(StoreError::LeaseLost { .. }) => return,
            Err(e) => {
                tracing::warn!(message_id = %lease.task_id, error = %e, "heartbeat failed; will try again");
            }
        }
    }
}

async fn hard_stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Writes the attempt and the outcome, records metrics, publishes the event.
async fn settle(
    shared: &Shared,
    lease: &LeaseToken,
    id: &str,
    attempt: u32,
    decision: Decision,
    label: &str,
) {
    let record = match &decision {
        Decision::Delivered { record, .. }
        | Decision::Retry { record, .. }
        | Decision::Dead { record, .. } => Some(record.clone()),
        Decision::Release | Decision::LeaseLost => None,
    };
    // The attempt and the outcome are written at once: sent to the store
    // together they usually share one commit (SQLite's group commit), so a
    // delivery costs one round trip to the store instead of two. The
    // attempt is queued first.
    let record_attempt = async {
        if let Some(record) = record {
            if record.status.is_some() {
                metrics::delivery_duration(
                    label,
                    Duration::from_millis(u64::try_from(record.latency_ms).unwrap_or(0)),
                );
            }
            if let Err(e) = retry_store(|| shared.store.record_attempt(record.clone())).await {
                tracing::warn!(message_id = %id, attempt, error = %e, "could not record the delivery attempt");
            }
        }
    };
    let now = shared.clock.now_ms();
    let outcome = async {
        match decision {
            Decision::Delivered { status, .. } => {
                let result = serde_json::json!({ "status": status })
                    .to_string()
                    .into_bytes();
                let r =
                    retry_store(|| shared.store.complete(lease, Some(result.clone()), now)).await;
                if r.is_ok() {
                    metrics::delivered(label);
                    tracing::debug!(message_id = %id, attempt, status, "message delivered");
                }
                (r, DeliveryEventKind::Delivered { status })
            }
            Decision::Retry { at_ms, error, .. } => {
                metrics::delivery_failed(label);
                let r = retry_store(|| {
                    shared
                        .store
                        .fail(lease, &error, FailOutcome::Retry { at_ms }, now)
                })
                .await;
                if r.is_ok() {
                    tracing::info!(message_id = %id, attempt, retry_in_ms = at_ms.saturating_sub(now), %error, "delivery attempt failed; will retry");
                }
                (r, DeliveryEventKind::Retrying { at_ms, error })
            }
            Decision::Dead { reason, detail, .. } => {
                if reason == DeadReason::MaxAttempts {
                    metrics::delivery_failed(label);
                }
                let r = retry_store(|| {
                    shared.store.fail(
                        lease,
                        &detail,
                        FailOutcome::Dead {
                            reason,
                            detail: detail.clone(),
                        },
                        now,
                    )
                })
                .await;
                if r.is_ok() {
                    metrics::message_dead(label, reason);
                    tracing::warn!(message_id = %id, attempt, %reason, %detail, "message dead-lettered");
                }
                (r, DeliveryEventKind::Dead { reason, detail })
            }
            Decision::Release => {
                let r = retry_store(|| shared.store.release(lease, now)).await;
                (r, DeliveryEventKind::Released)
            }
            Decision::LeaseLost => {
                tracing::info!(message_id = %id, "lease lost during delivery; the outcome is dropped");
                (Ok(()), DeliveryEventKind::LeaseLost)
            }
        }
    };
    let ((), (written, kind)) = tokio::join!(record_attempt, outcome);
    let kind = match written {
        Ok(()) => kind,
        Err(StoreError::LeaseLost { .. }) => DeliveryEventKind::LeaseLost,
        Err(e) => {
            tracing::error!(message_id = %id, error = %e, "could not record the delivery outcome; the message will be rescued after its lease expires");
            DeliveryEventKind::StoreFailed {
                error: e.to_string(),
            }
        }
    };
    if shared.events.receiver_count() > 0 {
        let _ = shared.events.send(DeliveryEvent {
            message_id: id.to_owned(),
            attempt,
            kind,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::RetryAfter;
    use crate::ssrf::Refusal;

    fn schedule() -> RetrySchedule {
        RetrySchedule::new(vec![Duration::from_secs(5), Duration::from_secs(60)])
            .unwrap()
            .with_jitter(0.0)
    }

    fn response(status: u16, retry_after: Option<RetryAfter>) -> AttemptOutcome {
        AttemptOutcome::Response {
            status,
            retry_after,
            location: None,
            body: b"ok".to_vec(),
            latency: Duration::from_millis(3),
        }
    }

    fn run(outcome: AttemptOutcome, attempt: u32, max: u32) -> Decision {
        decide(
            outcome,
            "msg_1",
            attempt,
            max,
            1_000,
            2_000,
            &schedule(),
            Duration::from_secs(600),
        )
    }

    #[test]
    fn two_hundreds_deliver_and_keep_the_body() {
        match run(response(204, None), 1, 3) {
            Decision::Delivered { status, record } => {
                assert_eq!(status, 204);
                assert_eq!(record.response_body, b"ok");
                assert_eq!(record.started_at_ms, 1_000);
                assert_eq!(record.latency_ms, 3);
            }
            _ => panic!("expected delivered"),
        }
    }

    #[test]
    fn failures_follow_the_schedule_then_die_with_the_last_status() {
        match run(response(500, None), 1, 3) {
            Decision::Retry { at_ms, error, .. } => {
                assert_eq!(at_ms, 7_000);
                assert_eq!(error, "HTTP 500");
            }
            _ => panic!("expected retry"),
        }
        match run(response(500, None), 2, 3) {
            Decision::Retry { at_ms, .. } => assert_eq!(at_ms, 62_000),
            _ => panic!("expected retry"),
        }
        match run(response(502, None), 3, 3) {
            Decision::Dead { reason, detail, .. } => {
                assert_eq!(reason, DeadReason::MaxAttempts);
                assert!(detail.contains("HTTP 502"), "{detail}");
            }
            _ => panic!("expected dead"),
        }
    }

    #[test]
    fn retry_after_is_honoured_on_429_and_503_only_and_capped() {
        let ra = Some(RetryAfter::Seconds(30));
        for status in [429, 503] {
            match run(response(status, ra), 1, 3) {
                Decision::Retry { at_ms, .. } => assert_eq!(at_ms, 32_000, "{status}"),
                _ => panic!("expected retry"),
            }
        }
        match run(response(500, ra), 1, 3) {
            Decision::Retry { at_ms, .. } => assert_eq!(at_ms, 7_000),
            _ => panic!("expected retry"),
        }
        match run(response(429, Some(RetryAfter::Seconds(1_000_000))), 1, 3) {
            Decision::Retry { at_ms, .. } => assert_eq!(at_ms, 602_000),
            _ => panic!("expected retry"),
        }
    }

    #[test]
    fn gone_and_refusals_stop_at_once() {
        match run(response(410, None), 1, 5) {
            Decision::Dead { reason, detail, .. } => {
                assert_eq!(reason, DeadReason::TargetRefused);
                assert!(detail.contains("410 Gone"));
            }
            _ => panic!("expected dead"),
        }
        let refusal = Refusal {
            host: "localhost".into(),
            ip: "127.0.0.1".parse().unwrap(),
            rule: "loopback",
            range: "127.0.0.0/8".into(),
        };
        match run(AttemptOutcome::Refused(refusal), 1, 5) {
            Decision::Dead {
                reason,
                detail,
                record,
            } => {
                assert_eq!(reason, DeadReason::TargetRefused);
                assert!(detail.contains("loopback"), "{detail}");
                assert_eq!(record.error.as_deref(), Some(detail.as_str()));
            }
            _ => panic!("expected dead"),
        }
    }

    #[test]
    fn redirects_are_failures_that_name_the_location() {
        let outcome = AttemptOutcome::Response {
            status: 302,
            retry_after: None,
            location: Some("http://169.254.169.254/".into()),
            body: Vec::new(),
            latency: Duration::ZERO,
        };
        match run(outcome, 1, 2) {
            Decision::Retry { error, .. } => {
                assert!(
                    error.contains("not followed") && error.contains("169.254.169.254"),
                    "{error}"
                )
            }
            _ => panic!("expected retry"),
        }
    }
}
