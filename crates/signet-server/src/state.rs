//! What every handler shares: the store, the signing keys, the limiters.

use std::fmt;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use signet_runtime::metrics::QueueDepth;
use signet_runtime::HttpConfig;
use signet_runtime::{
    Clock, MessageProducer, Producer, RetrySchedule, SsrfPolicy, SystemClock, TargetService,
};
use signet_sign::{KeyRing, SigningConfig};
use signet_store::Store;

use crate::auth::Authenticator;
use crate::config::{DeliveryConfig, ServerConfig};
use crate::rate_limit::RateLimits;

/// The server's signing keys and policy.
pub struct Signing {
    /// The key ring: the active key signs tasks enqueued over HTTP, every key
    /// verifies client-signed envelopes.
    pub ring: KeyRing,
    /// Reject tasks that would be stored unsigned.
    pub required: bool,
    /// Dev mode: client signatures are not verified (loudly warned about).
    pub dev: bool,
}

impl Signing {
    /// Signing off: tasks are stored unsigned.
    pub fn off() -> Self {
        Self {
            ring: KeyRing::empty(),
            required: false,
            dev: false,
        }
    }

    /// Whether the server signs what it enqueues.
    pub fn signs(&self) -> bool {
        self.ring.active().is_some_and(|k| k.can_sign())
    }
}

impl From<SigningConfig> for Signing {
    fn from(config: SigningConfig) -> Self {
        Self {
            ring: config.ring,
            required: config.required,
            dev: config.dev,
        }
    }
}

impl fmt::Debug for Signing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The ring's own `Debug` is redacted; ids and algorithms only.
        f.debug_struct("Signing")
            .field("ring", &self.ring)
            .field("required", &self.required)
            .field("dev", &self.dev)
            .finish()
    }
}

pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: ServerConfig,
    pub(crate) signing: Signing,
    pub(crate) limits: RateLimits,
    pub(crate) auth: Authenticator,
    /// Seals and opens the console's session cookies.
    pub(crate) console: crate::ui::Sessions,
    pub(crate) metrics: PrometheusHandle,
    pub(crate) depth: QueueDepth,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) delivery: Delivery,
    pub(crate) producer: Producer,
}

/// What message publishing and delivery share: the message producer, the
/// targets and the dispatcher's settings.
pub struct Delivery {
    /// Publishes messages; `None` when this server cannot sign what it
    /// enqueues (signing required but no signing key).
    pub messages: Option<MessageProducer>,
    /// Targets and the master key that opens their secrets.
    pub targets: TargetService,
    /// Which addresses deliveries may reach.
    pub ssrf: SsrfPolicy,
    /// Timeouts and caps of delivery requests.
    pub http: HttpConfig,
    /// The default retry schedule.
    pub retry: RetrySchedule,
    /// Deliveries in flight at once.
    pub concurrency: usize,
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("messages", &self.messages.is_some())
            .field("targets", &self.targets)
            .field("ssrf", &self.ssrf)
            .field("http", &self.http)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

/// The state behind [`app`](crate::app). Cheap to clone.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Shared>);

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.0.config)
            .field("signing", &self.0.signing)
            .field("limits", &self.0.limits)
            .field("auth", &self.0.auth)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The state for a server on `store`. `metrics` renders `/metrics`: the
    /// binary installs a global recorder once and passes its handle; tests
    /// build a recorder without installing it and pass its handle.
    pub fn new(
        store: Arc<dyn Store>,
        config: ServerConfig,
        signing: Signing,
        metrics: PrometheusHandle,
    ) -> Self {
        Self::with_clock(store, config, signing, metrics, Arc::new(SystemClock))
    }

    /// Like [`AppState::new`] with a given clock (tests pin time).
    pub fn with_clock(
        store: Arc<dyn Store>,
        config: ServerConfig,
        signing: Signing,
        metrics: PrometheusHandle,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self::with_delivery(
            store,
            config,
            signing,
            metrics,
            clock,
            DeliveryConfig::default(),
        )
    }

    /// Like [`AppState::with_clock`] with message delivery configured
    /// (master key, SSRF allow-list, HTTP client, retry schedule).
    pub fn with_delivery(
        store: Arc<dyn Store>,
        config: ServerConfig,
        signing: Signing,
        metrics: PrometheusHandle,
        clock: Arc<dyn Clock>,
        delivery: DeliveryConfig,
    ) -> Self {
        let limits = RateLimits::new(
            config.rate_limit_per_key,
            config.rate_limit_per_ip,
            config.ipv6_bucket_prefix,
        );
        // Sessions are sealed under a key derived from the master key, so
        // every node with it opens them.
        let console = crate::ui::Sessions::new(delivery.master_key.as_ref());
        // Publishing and targets refuse early, under the dispatcher's own
        // SSRF policy, the IP literals it would refuse at delivery.
        let targets =
            TargetService::with_clock(Arc::clone(&store), delivery.master_key, Arc::clone(&clock))
                .ssrf_policy(delivery.ssrf.clone());
        let messages = Producer::with_ring(
            Arc::clone(&store),
            Arc::new(signing.ring.duplicate()),
            signing.required,
        )
        .map(|p| {
            MessageProducer::new(p.clock(Arc::clone(&clock)), targets.clone())
                .retry_schedule(delivery.retry.clone())
                .ssrf_policy(delivery.ssrf.clone())
        })
        .ok();
        // Tasks over HTTP, server-signed and client-signed, go through one
        // producer; a verify-only server still takes client-signed ones.
        let producer = Producer::for_server(
            Arc::clone(&store),
            Arc::new(signing.ring.duplicate()),
            signing.required,
            signing.dev,
        )
        .clock(Arc::clone(&clock));
        let delivery = Delivery {
            messages,
            targets,
            ssrf: delivery.ssrf,
            http: delivery.http,
            retry: delivery.retry,
            concurrency: delivery.concurrency,
        };
        let depth = QueueDepth::new(Arc::clone(&store), Arc::clone(&clock));
        Self(Arc::new(Shared {
            store,
            config,
            signing,
            limits,
            auth: Authenticator::default(),
            console,
            metrics,
            depth,
            clock,
            delivery,
            producer,
        }))
    }

    /// Enqueues tasks (`POST /v1/tasks`).
    pub fn producer(&self) -> &Producer {
        &self.0.producer
    }

    /// Message publishing and delivery.
    pub fn delivery(&self) -> &Delivery {
        &self.0.delivery
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.0.store
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.0.config
    }

    /// The signing keys and policy.
    pub fn signing(&self) -> &Signing {
        &self.0.signing
    }

    /// The rate limiters.
    pub(crate) fn limits(&self) -> &RateLimits {
        &self.0.limits
    }

    /// Now, unix milliseconds, from the state's clock.
    pub fn now_ms(&self) -> i64 {
        self.0.clock.now_ms()
    }

    /// The queue-depth gauge of this server's store, refreshed by
    /// `/metrics` and sampled by the node's reporter.
    pub fn queue_depth(&self) -> &QueueDepth {
        &self.0.depth
    }

    /// The state's clock (the scheduler and leader election use it too).
    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.0.clock)
    }
}
