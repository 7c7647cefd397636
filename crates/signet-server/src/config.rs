//! The server's typed configuration. The binary fills it from flags and the
//! environment; this crate never reads the environment itself.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use signet_runtime::dispatcher::DEFAULT_DELIVERY_CONCURRENCY;
use signet_runtime::HttpConfig;
use signet_runtime::{RetrySchedule, SsrfPolicy};
use signet_sign::sealed::MasterKey;

use crate::auth::MetricsToken;
use crate::client_ip::TrustedProxies;
use crate::rate_limit::Limit;

/// Default listen address: loopback only, port 8787.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8787));
/// Default largest request body: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Default requests per second per API key (burst twice that). High on
/// purpose: one producer key pushing 10 000 enqueues/s must not be throttled.
pub const DEFAULT_RATE_LIMIT_PER_KEY: u32 = 20_000;
/// Default requests per second per client address (burst twice that). Also
/// high, because a benchmark or a busy producer usually runs from one host;
/// lower it when the API faces many untrusted clients.
pub const DEFAULT_RATE_LIMIT_PER_IP: u32 = 20_000;
/// Default time a request may take before it is answered `503`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default leading bits of an IPv6 client address that name its rate-limit
/// bucket: a /64, the smallest network one host is usually given.
pub const DEFAULT_IPV6_BUCKET_PREFIX: u8 = 64;
/// Default time a client has to send a request's headers; a connection
/// that trickles them is closed.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time in-flight requests get to finish after a shutdown signal.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How the HTTP API behaves.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Where to listen (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// Largest request body in bytes; larger ones get `413`.
    pub max_body_bytes: usize,
    /// Per API key limit; `None` turns it off.
    pub rate_limit_per_key: Option<Limit>,
    /// Per client address limit; `None` turns it off.
    pub rate_limit_per_ip: Option<Limit>,
    /// Proxies whose forwarding headers are believed.
    pub trusted_proxies: TrustedProxies,
    /// Leading bits of an IPv6 client address that name its rate-limit
    /// bucket (0–128; default [`DEFAULT_IPV6_BUCKET_PREFIX`]).
    pub ipv6_bucket_prefix: u8,
    /// Longest a client may take to send a request's headers before its
    /// connection is closed (default [`DEFAULT_HEADER_READ_TIMEOUT`]).
    pub header_read_timeout: Duration,
    /// Longest a request may take.
    pub request_timeout: Duration,
    /// How long in-flight requests get to finish on shutdown.
    pub shutdown_grace: Duration,
    /// The bearer token `/metrics` asks for; `None` leaves it open.
    pub metrics_token: Option<Arc<MetricsToken>>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            rate_limit_per_key: NonZeroU32::new(DEFAULT_RATE_LIMIT_PER_KEY).map(Limit::per_second),
            rate_limit_per_ip: NonZeroU32::new(DEFAULT_RATE_LIMIT_PER_IP).map(Limit::per_second),
            trusted_proxies: TrustedProxies::none(),
            ipv6_bucket_prefix: DEFAULT_IPV6_BUCKET_PREFIX,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            metrics_token: None,
        }
    }
}

/// A rate given on the command line: requests per second, `0` for off.
pub fn limit_from_rate(per_second: u32) -> Option<Limit> {
    NonZeroU32::new(per_second).map(Limit::per_second)
}

/// How messages are published and delivered: the master key that seals
/// target secrets, the SSRF guard, the HTTP client, the retry schedule and
/// the dispatcher's concurrency.
#[derive(Debug)]
pub struct DeliveryConfig {
    /// Seals target secrets (`SIGNET_MASTER_KEY`). Without it targets cannot
    /// be created and `POST /v1/targets` answers `503 not_configured`.
    pub master_key: Option<MasterKey>,
    /// Which addresses deliveries may reach (`SIGNET_ALLOWED_TARGET_CIDRS`).
    pub ssrf: SsrfPolicy,
    /// Timeouts and caps of delivery requests.
    pub http: HttpConfig,
    /// The retry schedule of messages that bring none.
    pub retry: RetrySchedule,
    /// Deliveries in flight at once.
    pub concurrency: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            master_key: None,
            ssrf: SsrfPolicy::new(),
            http: HttpConfig::default(),
            retry: RetrySchedule::default(),
            concurrency: DEFAULT_DELIVERY_CONCURRENCY,
        }
    }
}
