//! `signet-server`: Signet's HTTP API (docs/architecture.md §7).
//!
//! [`app`] builds the axum [`Router`](axum::Router): JSON routes under
//! `/v1` for tasks, messages, targets, schedules, queues, key status and
//! dead letters, each behind a bearer API key with a scope and rate limits
//! per key and per client address; `/healthz`, `/readyz`, `/metrics`
//! (Prometheus) and `/openapi.json` outside it. Each route is declared once,
//! beside its handler, and `/openapi.json` is derived from those
//! declarations.
//! The console, `/ui`, is server-rendered HTML over the same services,
//! signed in with an API key (`ui` module; DESIGN §12).
//! [`serve`] runs it on a socket beside the runtime's background services,
//! with graceful shutdown.
//!
//! Decisions worth knowing:
//! - Malformed ids in paths (`/v1/tasks/nonsense`) answer `404`: no task has
//!   that id, and the message says what ids look like.
//! - Errors are always `{"error":{"code","message"}}`: `400` malformed JSON
//!   (with line and column) or unknown field, `401`, `403`, `404`, `405`,
//!   `409` (cancel a running or final task, reuse a task id), `413`, `415`,
//!   `422` naming the field, `429`, `503` (store unavailable, request timeout).
//! - A client may sign the envelope itself: it sends `id`, `created_at` and
//!   `signature: {alg, key_id, sig}` beside the usual fields, with `args`
//!   signed as the exact JSON text in the body. The server verifies it with
//!   its ring (a public key is enough for Ed25519) and stores it unchanged.
//! - Forwarding headers count only from `SIGNET_TRUSTED_PROXIES` peers
//!   ([`TrustedProxies`]), walked from the right; `X-Real-IP` only when the
//!   operator says the proxy sets it, and then alone. IPv6 clients share a
//!   rate-limit bucket per /64 (configurable).
//! - A message's headers, body and URL query values are shown to admin keys
//!   only, on every route that shows a message (the tasks, dead-letter,
//!   message and schedule routes).
//! - `/metrics` can ask for a bearer token of its own
//!   ([`ServerConfig::metrics_token`]); its labels are bounded by
//!   [`signet_runtime::MetricLabels`].
//! - A client gets [`ServerConfig::header_read_timeout`] to send a request's
//!   headers, and a declared `Content-Length` over the body limit is
//!   answered `413` at once.
//! - Presented API keys are hashed and found keys cached for
//!   [`KEY_CACHE_TTL`], so a key revoked by another process stops working
//!   within that time.
//!
//! The public surface is the list of re-exports below plus two modules:
//! [`config`] (a server's settings) and [`serve`] (what `signet serve` runs
//! it with). Every other module is private.
#![warn(missing_docs)]

mod app;
mod auth;
mod client_ip;
pub mod config;
mod connections;
mod error;
mod extract;
mod guard;
mod rate_limit;
mod routes;
pub mod serve;
mod state;
mod ui;
mod views;

// The router.
pub use app::{app, operator_app};
// What a server is built from.
pub use config::ServerConfig;
pub use rate_limit::Limit;
pub use state::{AppState, Delivery, Signing};
// Forwarding headers: which peers may set them.
pub use client_ip::{TrustedProxies, TrustedProxyError};
// API keys: creating them (`signet api-keys`, `signet serve`'s first admin
// key), their scopes, and how long a looked-up key is trusted.
pub use auth::{
    create_api_key, validate_name, ApiKeySecret, MetricsToken, NewApiKey, Scope, KEY_CACHE_TTL,
};
// The error of every handler, and the limiter state a `429` carries.
pub use error::AppError;
pub use rate_limit::RateLimitInfo;
// Most ids one replay or purge of dead letters takes (`signet dlq purge`
// splits a longer list).
pub use routes::dead_letters::MAX_IDS as MAX_DEAD_LETTER_IDS;
// A target as `GET /v1/targets/{id}` shows it (`signet targets show --json`
// prints the same).
pub use routes::queues::PushView;
pub use routes::targets::{SigningSecretView, TargetView};
