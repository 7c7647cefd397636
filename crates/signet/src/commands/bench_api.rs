//! `signet bench api`: N connections posting tasks to the HTTP API for a
//! duration; prints requests/s and p50/p99 latency, then, as the last line,
//! one JSON object `{"requests_per_s","p50_ms","p99_ms","rate_limited","errors"}`.
//! A `429` (the server's rate limit) is counted apart from the errors.
//!
//! Without `--url` it starts its own server in this process on a temporary,
//! durable SQLite store (synchronous commits), with an HMAC signing key and
//! a fresh publish key, and removes it afterwards. That server's rate limits
//! are off, so they cannot bind and the figure is the server's own;
//! `--default-limits` runs it with `signet serve`'s default limits instead,
//! to set the two figures side by side.

mod load;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use base64::Engine as _;
use serde_json::json;
use signet_server::config::ServerConfig;
use signet_server::create_api_key;
use signet_server::serve;
use signet_server::{AppState, Scope, Signing};
use signet_sign::SigningConfig;

use crate::commands::{finish, now_ms};
use crate::timearg::parse_duration;
use load::{run_load, LoadConfig, LoadReport};

/// Arguments of `signet bench api`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Concurrent connections (one request in flight on each).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// How long to send (`10s`, `1m`).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// A running server (`http://127.0.0.1:8787`); needs --api-key.
    #[arg(long, requires = "api_key")]
    url: Option<String>,
    /// A publish or admin API key for --url.
    #[arg(long, env = "SIGNET_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Queue the tasks go to.
    #[arg(long, default_value = "bench")]
    queue: String,
    /// In-process server only: keep `signet serve`'s default rate limits
    /// (per key and per address) instead of turning them off.
    #[arg(long, conflicts_with = "url")]
    default_limits: bool,
}

pub(crate) fn run(args: Args) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return finish(
                "bench api",
                Err(anyhow!("cannot start the async runtime: {e}")),
            )
        }
    };
    finish("bench api", runtime.block_on(bench(args)))
}

/// `http://host:port[/]` → `host:port`.
fn host_port(url: &str) -> anyhow::Result<String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        anyhow!("--url {url:?} must start with http:// (the load generator speaks plain HTTP/1.1)")
    })?;
    let host = rest.trim_end_matches('/');
    if host.is_empty() || host.contains('/') {
        bail!("--url {url:?} must be just http://HOST:PORT");
    }
    Ok(if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:80")
    })
}

async fn bench(args: Args) -> anyhow::Result<()> {
    if args.connections == 0 || args.connections > 10_000 {
        bail!("--connections must be 1 to 10000");
    }
    if args.duration.is_zero() {
        bail!("--duration must be longer than 0");
    }
    let report = match (&args.url, &args.api_key) {
        (Some(url), Some(key)) => {
            let config = LoadConfig {
                addr: host_port(url)?,
                api_key: key.clone(),
                connections: args.connections,
                duration: args.duration,
                queue: args.queue.clone(),
            };
            println!(
                "bench api: {} connections for {:?} against {url}",
                args.connections, args.duration
            );
            run_load(config).await?
        }
        _ => in_process(&args).await?,
    };
    print_report(&report);
    Ok(())
}

async fn in_process(args: &Args) -> anyhow::Result<LoadReport> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = crate::store_url::open(&url).await?;
    let mut secret = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
    let key_b64 = base64::engine::general_purpose::STANDARD.encode(secret);
    let signing = SigningConfig::from_vars([("SIGNET_SIGNING_KEYS", format!("bench:{key_b64}"))])
        .map_err(|e| anyhow!("bench signing key: {e}"))?;
    let publish = create_api_key(store.as_ref(), "bench", Scope::Publish, now_ms()).await?;
    let metrics = serve::install_metrics_recorder().map_err(anyhow::Error::msg)?;
    let mut config = ServerConfig {
        listen: "127.0.0.1:0".parse()?,
        ..ServerConfig::default()
    };
    if !args.default_limits {
        config.rate_limit_per_key = None;
        config.rate_limit_per_ip = None;
    }
    let limits = describe_limits(&config);
    let listener = serve::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let state = AppState::new(Arc::clone(&store), config, Signing::from(signing), metrics);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve::run(state, listener, async move {
        let _ = stop_rx.await;
    }));
    println!(
        "bench api: {} connections for {:?} against an in-process server on http://{addr} (durable SQLite in {}, HMAC signing on, {limits})",
        args.connections,
        args.duration,
        dir.path().display()
    );
    let report = run_load(LoadConfig {
        addr: addr.to_string(),
        api_key: publish.secret.expose_secret().to_owned(),
        connections: args.connections,
        duration: args.duration,
        queue: args.queue.clone(),
    })
    .await;
    let _ = stop_tx.send(());
    server
        .await
        .map_err(|e| anyhow!("the in-process server task failed: {e}"))??;
    let report = report?;
    let stored = store_count(&url).await.unwrap_or(0);
    if stored < report.ok {
        bail!(
            "the store holds {stored} tasks but {} enqueues were acknowledged",
            report.ok
        );
    }
    Ok(report)
}

/// The in-process server's rate limits, as the run's first line says them.
fn describe_limits(config: &ServerConfig) -> String {
    let one = |limit: Option<&signet_server::Limit>| {
        limit.map_or_else(
            || "off".to_owned(),
            |l| format!("{}/s burst {}", l.per_second, l.burst),
        )
    };
    match (&config.rate_limit_per_key, &config.rate_limit_per_ip) {
        (None, None) => {
            "rate limits off so they cannot bind; --default-limits keeps serve's defaults"
                .to_owned()
        }
        (key, ip) => format!(
            "serve's default rate limits: per key {}, per address {}",
            one(key.as_ref()),
            one(ip.as_ref())
        ),
    }
}

/// Tasks in the store after the run (reopened: the server closed it).
async fn store_count(url: &str) -> anyhow::Result<u64> {
    let store = crate::store_url::open(url).await?;
    let total = store
        .counts()
        .await?
        .iter()
        .map(|q| {
            signet_store::TaskState::ALL
                .iter()
                .map(|s| q.count(*s))
                .sum::<u64>()
        })
        .sum();
    store.close().await?;
    Ok(total)
}

fn print_report(r: &LoadReport) {
    println!(
        "requests:     {} ok, {} rate-limited (429), {} errors in {:.2} s",
        r.ok, r.rate_limited, r.errors, r.elapsed_s
    );
    println!("throughput:   {:.0} requests/s", r.requests_per_s);
    println!(
        "latency:      p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        r.p50_ms, r.p99_ms, r.max_ms
    );
    if let Some(e) = &r.first_error {
        println!("first error:  {e}");
    }
    println!(
        "{}",
        json!({
            "requests_per_s": (r.requests_per_s * 10.0).round() / 10.0,
            "p50_ms": (r.p50_ms * 1000.0).round() / 1000.0,
            "p99_ms": (r.p99_ms * 1000.0).round() / 1000.0,
            "rate_limited": r.rate_limited,
            "errors": r.errors,
        })
    );
}
