//! The load generator behind `signet bench api`: N keep-alive HTTP/1.1
//! connections, each posting tasks back to back for a duration, measuring
//! each request's latency. A client of the HTTP API, so it lives with the
//! command, not in the server library.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::body::Bytes;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// What to load and how hard.
#[derive(Clone)]
pub(crate) struct LoadConfig {
    /// `host:port` of the server (plain HTTP).
    pub(crate) addr: String,
    /// The API key (publish or admin scope).
    pub(crate) api_key: String,
    /// Concurrent connections, one request in flight on each.
    pub(crate) connections: usize,
    /// How long to send.
    pub(crate) duration: Duration,
    /// Queue the tasks go to.
    pub(crate) queue: String,
}

impl std::fmt::Debug for LoadConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadConfig")
            .field("addr", &self.addr)
            .field("api_key", &"<redacted>")
            .field("connections", &self.connections)
            .field("duration", &self.duration)
            .field("queue", &self.queue)
            .finish()
    }
}

/// What the load did.
#[derive(Clone, Debug)]
pub(crate) struct LoadReport {
    /// Requests answered `201`.
    pub(crate) ok: u64,
    /// Requests answered `429` (the server's rate limit), not errors.
    pub(crate) rate_limited: u64,
    /// Requests that failed or got another status (not `201`, not `429`).
    pub(crate) errors: u64,
    /// Wall time of the run, seconds.
    pub(crate) elapsed_s: f64,
    /// Successful requests per second.
    pub(crate) requests_per_s: f64,
    /// Median latency, ms.
    pub(crate) p50_ms: f64,
    /// 99th percentile latency, ms.
    pub(crate) p99_ms: f64,
    /// Slowest request, ms.
    pub(crate) max_ms: f64,
    /// The first error seen, for the report.
    pub(crate) first_error: Option<String>,
}

#[derive(Default)]
struct ConnResult {
    ok: u64,
    rate_limited: u64,
    errors: u64,
    latencies_us: Vec<u32>,
    first_error: Option<String>,
}

/// How one request ended.
enum Answer {
    Created,
    RateLimited,
    Failed(String),
}

/// One connection's requests until `deadline`. Failing to connect or to
/// shake hands ends the whole run; a failed request is counted, a `429`
/// apart from the errors.
async fn one_connection(
    config: LoadConfig,
    index: usize,
    deadline: Instant,
) -> anyhow::Result<ConnResult> {
    let stream = TcpStream::connect(&config.addr)
        .await
        .with_context(|| format!("cannot connect to {}", config.addr))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
            .await
            .with_context(|| format!("HTTP handshake with {} failed", config.addr))?;
    let driver = tokio::spawn(conn);
    let auth = format!("Bearer {}", config.api_key);
    let mut out = ConnResult {
        latencies_us: Vec::with_capacity(16 * 1024),
        ..ConnResult::default()
    };
    let mut n: u64 = 0;
    while Instant::now() < deadline {
        n += 1;
        let body = format!(
            r#"{{"queue":"{}","task":"bench.noop","args":{{"conn":{index},"n":{n}}}}}"#,
            config.queue
        );
        let request = Request::builder()
            .method(Method::POST)
            .uri("/v1/tasks")
            .header(header::HOST, &config.addr)
            .header(header::AUTHORIZATION, &auth)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)));
        let Ok(request) = request else {
            out.errors += 1;
            continue;
        };
        if sender.ready().await.is_err() {
            out.errors += 1;
            out.first_error
                .get_or_insert_with(|| "connection closed".into());
            break;
        }
        let started = Instant::now();
        let result = async {
            let response = match sender.send_request(request).await {
                Ok(r) => r,
                Err(e) => return Answer::Failed(e.to_string()),
            };
            let status = response.status();
            let bytes = match response.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => return Answer::Failed(e.to_string()),
            };
            match status {
                StatusCode::CREATED => Answer::Created,
                StatusCode::TOO_MANY_REQUESTS => Answer::RateLimited,
                _ => Answer::Failed(format!("{status}: {}", String::from_utf8_lossy(&bytes))),
            }
        }
        .await;
        let us = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
        match result {
            Answer::Created => {
                out.ok += 1;
                out.latencies_us.push(us);
            }
            Answer::RateLimited => out.rate_limited += 1,
            Answer::Failed(e) => {
                out.errors += 1;
                out.first_error.get_or_insert(e);
            }
        }
    }
    drop(sender);
    driver.abort();
    Ok(out)
}

fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    // An index into a slice shorter than 2^52: exact in f64, non-negative.
    let i = ((sorted_us.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted_us[i.min(sorted_us.len() - 1)]) / 1000.0
}

/// Runs the load and reports.
pub(crate) async fn run_load(config: LoadConfig) -> anyhow::Result<LoadReport> {
    let started = Instant::now();
    let deadline = started + config.duration;
    let mut set = JoinSet::new();
    for i in 0..config.connections.max(1) {
        set.spawn(one_connection(config.clone(), i, deadline));
    }
    let mut all = ConnResult::default();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok(r)) => {
                all.ok += r.ok;
                all.rate_limited += r.rate_limited;
                all.errors += r.errors;
                all.latencies_us.extend(r.latencies_us);
                if all.first_error.is_none() {
                    all.first_error = r.first_error;
                }
            }
            Ok(Err(e)) => return Err(e),
            Err(e) => {
                all.errors += 1;
                all.first_error
                    .get_or_insert_with(|| format!("a connection task failed: {e}"));
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.latencies_us.sort_unstable();
    #[allow(clippy::cast_precision_loss)] // request counts far below 2^52
    let rate = all.ok as f64 / elapsed.max(f64::EPSILON);
    Ok(LoadReport {
        ok: all.ok,
        rate_limited: all.rate_limited,
        errors: all.errors,
        elapsed_s: elapsed,
        requests_per_s: rate,
        p50_ms: percentile_ms(&all.latencies_us, 0.50),
        p99_ms: percentile_ms(&all.latencies_us, 0.99),
        max_ms: all
            .latencies_us
            .last()
            .map_or(0.0, |&us| f64::from(us) / 1000.0),
        first_error: all.first_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_key_stays_out_of_debug_output() {
        let config = LoadConfig {
            addr: "127.0.0.1:1".into(),
            api_key: "sk_never-printed".into(),
            connections: 1,
            duration: Duration::from_secs(1),
            queue: "q".into(),
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("sk_never-printed"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let v: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile_ms(&v, 0.5), 51.0);
        assert_eq!(percentile_ms(&v, 0.99), 99.0);
        assert_eq!(percentile_ms(&[], 0.5), 0.0);
    }
}
