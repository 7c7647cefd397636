//! Running the API on a socket: bind, banner, background services and
//! graceful shutdown.
//!
//! Background services: the runtime's [`Node`] composes them and decides
//! where each runs (see [`signet_runtime::Node`]): on every node the
//! dispatcher, the queue-depth sampler, the limiter upkeep and the rescuer;
//! on the leader of [`SERVICES_ROLE`] the scheduler and the callbacks; on
//! the leader of [`MAINTENANCE_ROLE`] (which workers stand for too) the
//! pruner. [`node`] builds it from the server's state.
//!
//! On the shutdown signal the listener stops accepting, in-flight requests
//! get [`ServerConfig::shutdown_grace`](crate::ServerConfig) to finish, the
//! background services stop, and the store is closed.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use signet_runtime::{default_node_id, DEFAULT_LEADER_TTL};
use signet_runtime::{
    CallbackService, Dispatcher, MessagePublisher, Node, Producer, Pruner, QueueDepthReporter,
    Rescuer, RuntimeError, Scheduler, Shutdown,
};
pub use signet_runtime::{MAINTENANCE_ROLE, SERVICES_ROLE};
use signet_store::{Store, StoreError};
use tokio::net::TcpListener;

use crate::auth::{create_api_key, NewApiKey, Scope};
use crate::config::ServerConfig;
use crate::connections::serve_connections;
use crate::state::{AppState, Signing};

/// How often idle rate-limit buckets are forgotten and histograms drained.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(10);
/// Name of the admin key `serve` creates on an empty store.
pub const FIRST_ADMIN_KEY_NAME: &str = "admin (created by signet serve)";

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The listener failed.
    #[error("the HTTP listener failed: {0}")]
    Io(#[from] io::Error),
    /// Closing the store failed.
    #[error("closing the store failed: {0}")]
    Store(#[from] StoreError),
}

/// The process-wide Prometheus recorder, the runtime's
/// ([`signet_runtime::metrics::install_prometheus_recorder`]), with the
/// server's HTTP series described too: installed on first call, the same
/// handle afterwards. Fails only if another recorder was installed first.
pub fn install_metrics_recorder() -> Result<PrometheusHandle, String> {
    let handle = signet_runtime::metrics::install_prometheus_recorder()?;
    signet_runtime::metrics::describe(crate::app::HTTP_SERIES);
    Ok(handle)
}

/// A Prometheus handle whose recorder is NOT installed globally (tests).
pub fn detached_metrics_handle() -> PrometheusHandle {
    signet_runtime::metrics::detached_prometheus_handle()
}

/// Binds the listener. `127.0.0.1:0` picks a free port; see
/// [`TcpListener::local_addr`] for the real one.
pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot listen on {addr}: {e}; choose another address with --listen"),
        )
    })
}

/// Creates one admin key when the store has no API key at all (first start).
pub async fn ensure_admin_key(
    store: &dyn Store,
    now_ms: i64,
) -> Result<Option<NewApiKey>, StoreError> {
    if !store.list_api_keys().await?.is_empty() {
        return Ok(None);
    }
    create_api_key(store, FIRST_ADMIN_KEY_NAME, Scope::Admin, now_ms)
        .await
        .map(Some)
}

/// The start-up banner.
pub struct Banner<'a> {
    /// The address really bound.
    pub addr: SocketAddr,
    /// The store, as safe-to-print text.
    pub store: &'a str,
    /// Signing keys and policy.
    pub signing: &'a Signing,
    /// Limits and trusted proxies.
    pub config: &'a ServerConfig,
    /// The admin key created on this start, printed once.
    pub new_admin_key: Option<&'a NewApiKey>,
}

impl fmt::Display for Banner<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "signet {} serving the HTTP API",
            env!("CARGO_PKG_VERSION")
        )?;
        writeln!(f, "  listening on http://{}", self.addr)?;
        writeln!(
            f,
            "  console: http://{}/ui (sign in with an API key)",
            self.addr
        )?;
        writeln!(f, "  store: {}", self.store)?;
        match self.signing.ring.active() {
            Some(key) if key.can_sign() => writeln!(
                f,
                "  signing: on ({}, active key {})",
                key.algorithm(),
                key.id()
            )?,
            _ if !self.signing.ring.is_empty() => writeln!(
                f,
                "  signing: verify-only ({} keys); clients must send signed envelopes",
                self.signing.ring.len()
            )?,
            _ => writeln!(
                f,
                "  WARN signing: OFF; tasks are stored unsigned, and messages without a target and callbacks cannot be sent. Set SIGNET_SIGNING_KEYS (see `signet keys generate`)"
            )?,
        }
        if self.signing.dev {
            writeln!(
                f,
                "  WARN SIGNET_DEV is on: signatures (clients', and messages' at rest) are NOT verified; never run like this in production"
            )?;
        }
        let limit = |l: Option<crate::rate_limit::Limit>| {
            l.map_or_else(
                || "off".to_owned(),
                |l| format!("{}/s (burst {})", l.per_second, l.burst),
            )
        };
        writeln!(
            f,
            "  rate limits: per key {}, per client address {}; body limit {} bytes",
            limit(self.config.rate_limit_per_key),
            limit(self.config.rate_limit_per_ip),
            self.config.max_body_bytes
        )?;
        if self.config.trusted_proxies.is_empty() {
            writeln!(f, "  client address: the direct peer (no trusted proxies)")?;
        } else {
            let how = if self.config.trusted_proxies.trusts_x_real_ip() {
                "X-Real-IP set"
            } else {
                "forwarded"
            };
            writeln!(
                f,
                "  client address: {how} by trusted proxies {:?}",
                self.config.trusted_proxies
            )?;
            if self.config.trusted_proxies.trusts_everyone() {
                writeln!(f, "  WARN trusted proxies include 0.0.0.0/0 or ::/0: EVERY peer is trusted, so any client can choose its rate-limit address; list only your proxies (SIGNET_TRUSTED_PROXIES)")?;
            }
        }
        writeln!(
            f,
            "  IPv6 clients share a rate-limit bucket per /{}; headers must arrive within {} ms",
            self.config.ipv6_bucket_prefix,
            self.config.header_read_timeout.as_millis()
        )?;
        let metrics_access = if self.config.metrics_token.is_some() {
            "needs the metrics token"
        } else {
            "open"
        };
        writeln!(
            f,
            "  docs: http://{}/openapi.json  metrics: http://{}/metrics ({metrics_access})",
            self.addr, self.addr
        )?;
        match self.new_admin_key {
            Some(key) => {
                writeln!(f, "  first start: created admin API key {} (shown once, store it now):", key.record.id)?;
                writeln!(f, "  api key: {}", key.secret.expose_secret())?;
            }
            None => writeln!(
                f,
                "  API keys: create one with `signet api-keys create --name NAME --scope admin|work|publish|read`"
            )?,
        }
        Ok(())
    }
}

/// How this process takes part in leader election.
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    /// This node's id in the lease (default [`default_node_id`]).
    pub node_id: String,
    /// How long the lease lasts without renewal: a dead leader's services
    /// move to another node within this time (default 15 s).
    pub ttl: Duration,
}

impl Default for LeaderConfig {
    fn default() -> Self {
        Self {
            node_id: default_node_id(),
            ttl: DEFAULT_LEADER_TTL,
        }
    }
}

/// The node `serve` runs: on every node the dispatcher, the queue-depth
/// reporter, the limiter upkeep and the rescuer; on the leader of
/// [`SERVICES_ROLE`] the scheduler (when this server can sign tasks, or
/// signing is off) and the callbacks (when it can publish messages); on the
/// leader of [`MAINTENANCE_ROLE`] the pruner. Message schedules
/// publish through `messages`; without it they wait for a node that has
/// one.
pub fn node(
    state: &AppState,
    config: &LeaderConfig,
    messages: Option<Arc<dyn MessagePublisher>>,
) -> Node {
    let store = Arc::clone(state.store());
    let clock = state.clock();
    let mut node = Node::builder(Arc::clone(&store), config.node_id.clone())
        .leader_ttl(config.ttl)
        .clock(Arc::clone(&clock));
    // Every node delivers messages (claims make each delivery happen once).
    match dispatcher(state) {
        Ok(d) => node = node.dispatcher(d),
        Err(e) => tracing::error!(error = %e, "messages are not delivered by this node"),
    }
    node = node.queue_depth(QueueDepthReporter::shared(state.queue_depth().clone()));
    {
        let state = state.clone();
        node = node.every_node("upkeep", move |mut stop| async move {
            let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
            loop {
                tokio::select! {
                    () = stop.triggered() => return Ok(()),
                    _ = tick.tick() => {
                        state.limits().retain_recent();
                        state.0.metrics.run_upkeep();
                    }
                }
            }
        });
    }
    let signing = state.signing();
    match Producer::with_ring(
        Arc::clone(&store),
        Arc::new(signing.ring.duplicate()),
        signing.required,
    ) {
        Ok(producer) => {
            let clock = Arc::clone(&clock);
            node = node.scheduler(move || {
                let scheduler = Scheduler::new(producer.clone()).clock(Arc::clone(&clock));
                match &messages {
                    Some(messages) => scheduler.messages(Arc::clone(messages)),
                    None => scheduler,
                }
            });
        }
        Err(e) => tracing::warn!(
            error = %e,
            "the scheduler does not run on this node: it cannot sign the tasks schedules fire; give it a signing key"
        ),
    }
    if let Some(messages) = state.delivery().messages.clone() {
        let store = Arc::clone(&store);
        let clock = Arc::clone(&clock);
        node = node.callbacks(move || {
            CallbackService::new(Arc::clone(&store), messages.clone()).clock(Arc::clone(&clock))
        });
    }
    let rescuer_store = Arc::clone(&store);
    let rescuer_clock = Arc::clone(&clock);
    node.rescuer(move || Rescuer::new(Arc::clone(&rescuer_store)).clock(Arc::clone(&rescuer_clock)))
        .pruner(move || Pruner::new(Arc::clone(&store)).clock(Arc::clone(&clock)))
        .build()
}

/// The dispatcher that delivers messages, configured from `state` (its
/// signing keys, targets, SSRF policy, HTTP client, retry schedule and
/// clock).
pub fn dispatcher(state: &AppState) -> Result<Dispatcher, RuntimeError> {
    let delivery = state.delivery();
    let signing = state.signing();
    let builder = Dispatcher::builder(Arc::clone(state.store()));
    let builder = if signing.dev {
        builder.danger_skip_verification(&signing.ring)
    } else {
        builder.key_ring(&signing.ring, signing.required)
    };
    builder
        .targets(delivery.targets.clone())
        .ssrf_policy(delivery.ssrf.clone())
        .http(delivery.http.clone())
        .retry_schedule(delivery.retry.clone())
        .concurrency(delivery.concurrency)
        .clock(state.clock())
        .build()
}

/// What the banner says about leader election: one line per role.
pub struct ElectionBanner<'a> {
    /// The node about to run.
    pub node: &'a Node,
}

impl fmt::Display for ElectionBanner<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in self.node.electors() {
            writeln!(
                f,
                "  leader election: node {}, role {:?}, lease {} ms; on the leader only: {}",
                e.node_id(),
                e.role(),
                e.lease_ttl().as_millis(),
                e.service_names().join(", ")
            )?;
        }
        Ok(())
    }
}

/// Runs the API on `listener` with the background services until `signal`
/// completes, then shuts down gracefully and closes the store. Leader
/// election uses a fresh node id and the default lease; see [`run_with`].
pub async fn run(
    state: AppState,
    listener: TcpListener,
    signal: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let messages = state
        .delivery()
        .messages
        .clone()
        .map(|m| Arc::new(m) as Arc<dyn MessagePublisher>);
    let node = node(&state, &LeaderConfig::default(), messages);
    run_with(state, listener, signal, node).await
}

/// Like [`run`], with a given node (see [`node`]). On shutdown the node's
/// electors stop their services and resign before the store is closed, so
/// another node takes over at once.
pub async fn run_with(
    state: AppState,
    listener: TcpListener,
    signal: impl Future<Output = ()> + Send + 'static,
    node: Node,
) -> Result<(), ServeError> {
    let store = Arc::clone(state.store());
    let grace = state.config().shutdown_grace;
    let services = Shutdown::new();
    let background = tokio::spawn(node.run(services.signal()));

    let stopping = Shutdown::new();
    let mut stopping_signal = stopping.signal();
    let trigger = stopping.clone();
    let header_read_timeout = state.config().header_read_timeout;
    let app = crate::app(state);
    let server = serve_connections(listener, app, header_read_timeout, async move {
        signal.await;
        tracing::info!(
            "shutdown signal received; no new connections, finishing in-flight requests"
        );
        trigger.trigger();
    });
    let outcome: Result<(), ServeError> = tokio::select! {
        () = server => Ok(()),
        () = async move {
            stopping_signal.triggered().await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(grace_s = grace.as_secs(), "grace period over; dropping requests still in flight");
            Ok(())
        }
    };

    services.trigger();
    match background.await {
        Ok(Ok(())) => {}
        // Already logged by the node.
        Ok(Err(_)) => {}
        Err(e) => tracing::error!(error = %e, "the background services ended abnormally"),
    }
    store.close().await?;
    tracing::info!("stopped; store closed");
    outcome
}

/// Completes on SIGINT or SIGTERM (Ctrl-C elsewhere): the handlers are
/// installed when this is called ([`signet_runtime::os_signal`]), so a
/// signal that arrives right after start still shuts down gracefully.
/// Call it inside the Tokio runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    let signal = signet_runtime::os_signal();
    async move {
        signal.await;
    }
}
