//! `signet serve`: the HTTP API and the runtime's background services
//! (rescuer, pruner, queue-depth sampler) on one store, in one process.
//!
//! Configuration errors (signing variables, trusted proxies, flags) stop it
//! before it binds, with exit code 2 and a message naming the setting.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use signet_server::config::{
    limit_from_rate, ServerConfig, DEFAULT_MAX_BODY_BYTES, DEFAULT_RATE_LIMIT_PER_IP,
    DEFAULT_RATE_LIMIT_PER_KEY,
};
use signet_server::serve::{self, Banner};
use signet_server::{AppState, Signing, TrustedProxies};
use signet_sign::SigningConfig;

use crate::commands::{finish, now_ms};
use crate::store_url::{redact, DatabaseArgs};
use crate::timearg::parse_duration;

/// Arguments of `signet serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Address to listen on (`127.0.0.1:0` picks a free port; the banner
    /// prints the real one).
    #[arg(long, env = "SIGNET_LISTEN", default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    #[command(flatten)]
    db: DatabaseArgs,
    /// Largest request body in bytes (larger ones get 413).
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Requests per second per API key (burst twice that); 0 turns it off.
    /// The default is high so one producer key can push 10 000 enqueues/s.
    #[arg(long, default_value_t = DEFAULT_RATE_LIMIT_PER_KEY)]
    rate_limit_per_key: u32,
    /// Requests per second per client address (burst twice that); 0 turns it
    /// off. Lower it when many untrusted clients reach the API.
    #[arg(long, default_value_t = DEFAULT_RATE_LIMIT_PER_IP)]
    rate_limit_per_ip: u32,
    /// Proxies whose X-Forwarded-For / Forwarded / X-Real-IP are believed:
    /// comma-separated CIDRs or IPs. Empty trusts nobody.
    #[arg(long, env = "SIGNET_TRUSTED_PROXIES", default_value = "")]
    trusted_proxies: String,
    /// Longest a request may take before it is answered 503.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    request_timeout: Duration,
    /// Time in-flight requests get to finish after SIGINT/SIGTERM.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    shutdown_grace: Duration,
}

pub(crate) fn run(args: Args) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return finish("serve", Err(anyhow!("cannot start the async runtime: {e}"))),
    };
    finish("serve", runtime.block_on(serve_main(args)))
}

/// Builds the configuration from flags and the environment, refusing bad values.
fn config(args: &Args) -> anyhow::Result<(ServerConfig, Signing, Vec<String>)> {
    let trusted_proxies: TrustedProxies = args.trusted_proxies.parse()?;
    if trusted_proxies.trusts_everyone() {
        eprintln!(
            "WARN SIGNET_TRUSTED_PROXIES contains 0.0.0.0/0 or ::/0: EVERY peer is trusted, so any client can choose the address it is rate-limited as. List only your proxies' addresses."
        );
    }
    if args.request_timeout.is_zero() {
        return Err(anyhow!("--request-timeout must be longer than 0"));
    }
    if args.max_body_bytes == 0 {
        return Err(anyhow!("--max-body-bytes must be at least 1"));
    }
    let signing = SigningConfig::from_vars(std::env::vars())
        .map_err(|e| anyhow!("signing configuration: {e}"))?;
    let warnings = signing.warnings.clone();
    let config = ServerConfig {
        listen: args.listen,
        max_body_bytes: args.max_body_bytes,
        rate_limit_per_key: limit_from_rate(args.rate_limit_per_key),
        rate_limit_per_ip: limit_from_rate(args.rate_limit_per_ip),
        trusted_proxies,
        shutdown_grace: args.shutdown_grace,
        request_timeout: args.request_timeout,
    };
    Ok((config, Signing::from(signing), warnings))
}

async fn serve_main(args: Args) -> anyhow::Result<()> {
    let (config, signing, warnings) = config(&args)?;
    for w in &warnings {
        eprintln!("WARN {w}");
    }
    let metrics = serve::install_metrics_recorder().map_err(anyhow::Error::msg)?;
    let store = args.db.open().await?;
    // Bind before creating the first admin key, so a key is never created
    // and then lost because the address was taken.
    let listener = serve::bind(config.listen).await?;
    let admin = serve::ensure_admin_key(store.as_ref(), now_ms())
        .await
        .context("cannot create the first admin API key")?;
    let addr = listener.local_addr()?;
    let store_text = redact(&args.db.database_url);
    let banner = Banner {
        addr,
        store: &store_text,
        signing: &signing,
        config: &config,
        new_admin_key: admin.as_ref(),
    }
    .to_string();
    {
        let mut out = std::io::stdout().lock();
        out.write_all(banner.as_bytes())?;
        out.flush()?;
    }
    drop(admin);
    match signing.ring.active() {
        Some(key) => tracing::info!(algorithm = %key.algorithm(), key_id = %key.id(), "signing on"),
        None => tracing::warn!("signing off: tasks enqueued over HTTP are stored unsigned"),
    }
    let state = AppState::new(store, config, signing, metrics);
    serve::run(state, listener, serve::shutdown_signal()).await?;
    Ok(())
}
