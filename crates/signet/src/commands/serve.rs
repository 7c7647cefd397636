//! `signet serve`: the HTTP API and the runtime's background services on
//! one store, in one process. The scheduler and callbacks run only on the
//! node that leads the `services` role (one of the `signet serve` processes
//! sharing the store), the rescuer and pruner on the leader of the
//! `maintenance` role (workers stand for it too); the banner names this
//! node, and a line on stdout says each time it gains or loses a role.
//!
//! Configuration errors (signing variables, trusted proxies, flags) stop it
//! before it binds, with exit code 2 and a message naming the setting.
//!
//! Its keys and master key come from the one loader (`keys::load`): on an
//! embedded database with no `SIGNET_SIGNING_*` variables, the first start
//! creates the key file beside the database, and the banner says so. On
//! PostgreSQL a node without keys refuses to start unless `SIGNET_DEV=1` or
//! `--unsigned`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use std::sync::Arc;

use signet_runtime::default_node_id;
use signet_runtime::dispatcher::DEFAULT_DELIVERY_CONCURRENCY;
use signet_runtime::metrics::DEFAULT_MAX_LABEL_VALUES;
use signet_runtime::MetricLabels;
use signet_runtime::{missing_keys, KeySource, LoadedKeys};
use signet_runtime::{HttpConfig, TrustedRoots};
use signet_runtime::{
    Leadership, MessagePublisher, RetrySchedule, SsrfPolicy, StepDown, SystemClock,
};
use signet_server::config::{
    limit_from_rate, DeliveryConfig, ServerConfig, DEFAULT_IPV6_BUCKET_PREFIX,
    DEFAULT_MAX_BODY_BYTES, DEFAULT_RATE_LIMIT_PER_IP, DEFAULT_RATE_LIMIT_PER_KEY,
};
use signet_server::serve::{self, Banner, ElectionBanner, LeaderConfig, SERVICES_ROLE};
use signet_server::{AppState, MetricsToken, Signing, TrustedProxies};
use signet_sign::sealed::{MasterKey, MASTER_KEY_PREVIOUS_VAR, MASTER_KEY_VAR};
use signet_sign::SigningConfig;
use signet_store::Store;

use crate::commands::{finish, keys, now_ms};
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
    #[arg(long, env = "SIGNET_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Requests per second per API key (burst twice that); 0 turns it off.
    /// The default is high so one producer key can push 10 000 enqueues/s.
    #[arg(long, env = "SIGNET_RATE_LIMIT_PER_KEY", default_value_t = DEFAULT_RATE_LIMIT_PER_KEY)]
    rate_limit_per_key: u32,
    /// Requests per second per client address (burst twice that); 0 turns it
    /// off. Lower it when many untrusted clients reach the API.
    #[arg(long, env = "SIGNET_RATE_LIMIT_PER_IP", default_value_t = DEFAULT_RATE_LIMIT_PER_IP)]
    rate_limit_per_ip: u32,
    /// Proxies whose X-Forwarded-For / Forwarded are believed (walked from
    /// the right): comma-separated CIDRs or IPs. Empty trusts nobody.
    #[arg(long, env = "SIGNET_TRUSTED_PROXIES", default_value = "")]
    trusted_proxies: String,
    /// Longest a request may take before it is answered 503.
    #[arg(long, env = "SIGNET_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    request_timeout: Duration,
    /// Time in-flight requests get to finish after SIGINT/SIGTERM.
    #[arg(long, env = "SIGNET_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    shutdown_grace: Duration,
    /// This node's name in leader election (default: node-<pid>-<random>).
    #[arg(long, env = "SIGNET_NODE_ID")]
    node_id: Option<String>,
    /// How long the leader's lease lasts without renewal: when the leader
    /// dies, another node runs the scheduler, rescuer and pruner within this.
    #[arg(long, env = "SIGNET_LEADER_TTL", default_value = "15s", value_parser = parse_duration)]
    leader_ttl: Duration,
    /// Private or loopback ranges messages may be delivered to, comma
    /// separated (for example 10.0.0.0/8,127.0.0.1). Everything else that
    /// is not public is refused by the SSRF guard.
    #[arg(long, env = "SIGNET_ALLOWED_TARGET_CIDRS", default_value = "")]
    allowed_target_cidrs: String,
    /// Waits between delivery attempts of messages that bring no schedule
    /// of their own, comma separated; each is moved by up to ±20 %.
    #[arg(
        long,
        env = "SIGNET_RETRY_SCHEDULE",
        default_value = "5s,5m,30m,2h,5h,10h,10h"
    )]
    retry_schedule: String,
    /// Message deliveries in flight at once on this node.
    #[arg(long, env = "SIGNET_DELIVERY_CONCURRENCY", default_value_t = DEFAULT_DELIVERY_CONCURRENCY)]
    delivery_concurrency: usize,
    /// Total time one delivery attempt may take (connect, send, read the
    /// response).
    #[arg(long, env = "SIGNET_DELIVERY_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    delivery_timeout: Duration,
    /// PEM file of certificate authorities trusted for HTTPS deliveries,
    /// callbacks and push endpoints besides the public web roots (receivers
    /// whose certificates a private CA signed).
    #[arg(long, env = "SIGNET_DELIVERY_CA_FILE", value_name = "PATH")]
    delivery_ca_file: Option<std::path::PathBuf>,
    /// Run without signing keys: none are loaded or created, tasks enqueued
    /// over HTTP are stored unsigned and nothing is verified at rest.
    #[arg(long, env = "SIGNET_UNSIGNED", value_parser = clap::builder::BoolishValueParser::new(), default_value = "false", num_args = 0..=1, default_missing_value = "true")]
    unsigned: bool,
    /// The trusted proxies set X-Real-IP to the client's address: then it
    /// alone names the client (X-Forwarded-For, which such a proxy may pass
    /// through from the client, is not read). Off: X-Real-IP is ignored.
    #[arg(long, env = "SIGNET_TRUST_X_REAL_IP", value_parser = clap::builder::BoolishValueParser::new(), default_value = "false", num_args = 0..=1, default_missing_value = "true")]
    trust_x_real_ip: bool,
    /// Leading bits of an IPv6 client address that name its rate-limit
    /// bucket (one host usually holds a whole /64).
    #[arg(long, env = "SIGNET_IPV6_BUCKET_PREFIX", default_value_t = DEFAULT_IPV6_BUCKET_PREFIX, value_parser = clap::value_parser!(u8).range(1..=128))]
    ipv6_bucket_prefix: u8,
    /// Time a client has to send a request's headers (also the longest a
    /// kept-alive connection may idle); slower connections are closed.
    #[arg(long, env = "SIGNET_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    header_read_timeout: Duration,
    /// A bearer token /metrics asks for (`Authorization: Bearer <token>`).
    /// Prefer the variable: a flag shows in the process list. Unset,
    /// /metrics is open.
    #[arg(long, env = "SIGNET_METRICS_TOKEN", hide_env_values = true, value_parser = metrics_token)]
    metrics_token: Option<Arc<MetricsToken>>,
    /// Distinct values kept per metric label that users name (queues,
    /// queue/task pairs, schedules, targets); later ones are counted as
    /// `_other`.
    #[arg(long, env = "SIGNET_METRICS_MAX_LABEL_VALUES", default_value_t = DEFAULT_MAX_LABEL_VALUES)]
    metrics_max_label_values: usize,
    /// Label message metrics with target names (off: every target reads
    /// `_hidden`; names can say who your customers are).
    #[arg(long, env = "SIGNET_METRICS_TARGET_NAMES", value_parser = clap::builder::BoolishValueParser::new(), default_value = "false", num_args = 0..=1, default_missing_value = "true")]
    metrics_target_names: bool,
}

/// The end of `signet serve --help`: the variables that configure keys and
/// signing, which have no flag (secrets do not belong in the process list).
pub(crate) fn variables_help() -> String {
    use signet_sign::config::{
        VAR_ACTIVE_KEY, VAR_ALGORITHM, VAR_DEV, VAR_KEYS, VAR_OVERLAP_KEYS, VAR_PRIVATE_KEYS,
        VAR_PUBLIC_KEYS, VAR_REQUIRED,
    };
    let rows = [
        (
            VAR_KEYS,
            "HMAC signing keys, id:base64,… (`signet keys generate`)",
        ),
        (VAR_PRIVATE_KEYS, "Ed25519 private keys, id:base64,…"),
        (
            VAR_PUBLIC_KEYS,
            "Ed25519 public keys (verify only), id:base64,…",
        ),
        (VAR_ACTIVE_KEY, "the id of the key that signs"),
        (VAR_OVERLAP_KEYS, "ids that also sign during a rotation"),
        (VAR_ALGORITHM, "hmac-sha256 or ed25519: the active key's"),
        (
            VAR_REQUIRED,
            "true or false: reject unsigned work (default: on with keys)",
        ),
        (
            MASTER_KEY_VAR,
            "seals target secrets (default: the key file's)",
        ),
        (
            signet_runtime::KEYS_FILE_VAR,
            "a key file to read instead of the one beside the database",
        ),
        (VAR_DEV, "1 or true: dev mode, signatures are NOT verified"),
    ];
    let mut text = String::from(
        "Keys and signing (variables only; with none, an embedded database gets a key file beside it, see docs/keys.md):\n",
    );
    for (name, meaning) in rows {
        text.push_str(&format!("  {name:<28} {meaning}\n"));
    }
    text.push_str("A SIGNET_… variable Signet does not read is reported at start, with the closest known name.");
    text
}

/// `--metrics-token`: a non-empty token.
fn metrics_token(text: &str) -> Result<Arc<MetricsToken>, String> {
    MetricsToken::new(text)
        .map(Arc::new)
        .ok_or_else(|| "the metrics token is empty; give a long random value, or leave it unset for an open /metrics".to_owned())
}

pub(crate) fn run(args: Args) -> ExitCode {
    if crate::api::metrics_token_on_argv() {
        eprintln!(
            "{}",
            crate::api::secret_on_argv_warning("--metrics-token", "SIGNET_METRICS_TOKEN")
        );
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return finish("serve", Err(anyhow!("cannot start the async runtime: {e}"))),
    };
    finish("serve", runtime.block_on(serve_main(args)))
}

/// The delivery settings from flags and the environment: the master key
/// (`SIGNET_MASTER_KEY` or the key file's, found by the key loader), the
/// SSRF allow-list, the retry schedule and the HTTP client's limits.
fn delivery_config(args: &Args, master_key: Option<MasterKey>) -> anyhow::Result<DeliveryConfig> {
    let ssrf = SsrfPolicy::parse_allowed(&args.allowed_target_cidrs)?;
    let steps = args
        .retry_schedule
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            parse_duration(s).map_err(|e| anyhow!("--retry-schedule (SIGNET_RETRY_SCHEDULE): {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let retry = RetrySchedule::new(steps)
        .map_err(|e| anyhow!("--retry-schedule (SIGNET_RETRY_SCHEDULE): {e}"))?;
    let trusted_roots = match &args.delivery_ca_file {
        Some(path) => TrustedRoots::from_pem_file(path).map_err(|e| {
            anyhow!(
                "--delivery-ca-file (SIGNET_DELIVERY_CA_FILE): {}",
                crate::commands::config_message(e)
            )
        })?,
        None => TrustedRoots::default(),
    };
    let http = HttpConfig {
        request_timeout: args.delivery_timeout,
        connect_timeout: HttpConfig::default()
            .connect_timeout
            .min(args.delivery_timeout),
        trusted_roots,
        ..HttpConfig::default()
    };
    Ok(DeliveryConfig {
        master_key,
        ssrf,
        http,
        retry,
        concurrency: args.delivery_concurrency,
    })
}

/// Builds the configuration from flags and the loaded signing keys,
/// refusing bad values.
fn config(args: &Args, signing: SigningConfig) -> anyhow::Result<(ServerConfig, Signing)> {
    let trusted_proxies = args
        .trusted_proxies
        .parse::<TrustedProxies>()?
        .with_x_real_ip(args.trust_x_real_ip);
    if args.trust_x_real_ip && trusted_proxies.is_empty() {
        eprintln!(
            "WARN SIGNET_TRUST_X_REAL_IP is on but SIGNET_TRUSTED_PROXIES is empty: X-Real-IP is read only from trusted proxies, so it is ignored"
        );
    }
    if args.request_timeout.is_zero() {
        return Err(anyhow!("--request-timeout must be longer than 0"));
    }
    if args.max_body_bytes == 0 {
        return Err(anyhow!("--max-body-bytes must be at least 1"));
    }
    if args.leader_ttl < Duration::from_secs(1) {
        return Err(anyhow!("--leader-ttl must be at least 1s"));
    }
    if let Some(id) = &args.node_id {
        if id.is_empty()
            || id.len() > 128
            || id.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(anyhow!(
                "--node-id must be 1 to 128 characters without spaces or control characters"
            ));
        }
    }
    if args.delivery_concurrency == 0 {
        return Err(anyhow!("--delivery-concurrency must be at least 1"));
    }
    if args.delivery_timeout.is_zero() {
        return Err(anyhow!("--delivery-timeout must be longer than 0"));
    }
    if args.header_read_timeout.is_zero() {
        return Err(anyhow!("--header-read-timeout must be longer than 0"));
    }
    if args.metrics_max_label_values == 0 {
        return Err(anyhow!(
            "--metrics-max-label-values must be at least 1 (every value past it is counted as _other)"
        ));
    }
    let config = ServerConfig {
        listen: args.listen,
        max_body_bytes: args.max_body_bytes,
        rate_limit_per_key: limit_from_rate(args.rate_limit_per_key),
        rate_limit_per_ip: limit_from_rate(args.rate_limit_per_ip),
        trusted_proxies,
        shutdown_grace: args.shutdown_grace,
        request_timeout: args.request_timeout,
        ipv6_bucket_prefix: args.ipv6_bucket_prefix,
        header_read_timeout: args.header_read_timeout,
        metrics_token: args.metrics_token.clone(),
    };
    Ok((config, Signing::from(signing)))
}

/// The banner's line on the keys: where they came from (and that the key
/// file was just created), and where the master key came from. `None`
/// with `--unsigned` (the signing line says it).
fn keys_line(keys: &LoadedKeys) -> Option<String> {
    if keys.source == KeySource::Unsigned {
        return None;
    }
    let master = keys
        .master_key_source
        .as_deref()
        .map_or_else(String::new, |s| format!("; master key from {s}"));
    let mut line = format!("  keys: from {}{master}", keys.source);
    if let KeySource::File {
        created: true,
        path,
        ..
    } = &keys.source
    {
        line.push_str(&format!(
            "\n  keep {} secret and back it up: every signet command and worker on this database reads it",
            path.display()
        ));
    }
    Some(line)
}

async fn serve_main(args: Args) -> anyhow::Result<()> {
    let mut keys = keys::load_for_banner(&args.db, args.unsigned)?;
    let master_key = keys.master_key.take();
    let keys_banner = keys_line(&keys);
    let signing_for_check = SigningConfig {
        ring: keys.signing.ring.duplicate(),
        required: keys.signing.required,
        dev: keys.signing.dev,
        warnings: Vec::new(),
    };
    let (config, signing) = config(&args, keys.signing)?;
    let delivery = delivery_config(&args, master_key)?;
    let metrics = serve::install_metrics_recorder().map_err(anyhow::Error::msg)?;
    signet_runtime::set_metric_labels(MetricLabels {
        max_values: args.metrics_max_label_values,
        target_names: args.metrics_target_names,
    });
    let store = args.db.open().await?;
    // Pending work this ring cannot verify is named before anything runs.
    for missing in missing_keys(store.as_ref(), &signing_for_check).await? {
        eprintln!("WARN {missing}");
    }
    let state = AppState::with_delivery(
        store,
        config,
        signing,
        metrics,
        Arc::new(SystemClock),
        delivery,
    );
    // A wrong master key is a start-up error, before anything listens,
    // never garbage later.
    let targets = state.delivery().targets.verify_master_key().await?;
    // Bind before creating the first admin key, so a key is never created
    // and then lost because the address was taken.
    let listener = serve::bind(state.config().listen).await?;
    let admin = serve::ensure_admin_key(state.store().as_ref(), now_ms())
        .await
        .context("cannot create the first admin API key")?;
    let addr = listener.local_addr()?;
    let store_text = redact(&args.db.database_url);
    let banner = Banner {
        addr,
        store: &store_text,
        signing: state.signing(),
        config: state.config(),
        new_admin_key: admin.as_ref(),
    }
    .to_string();
    {
        let d = state.delivery();
        let mut out = std::io::stdout().lock();
        out.write_all(banner.as_bytes())?;
        if let Some(line) = keys_banner {
            writeln!(out, "{line}")?;
        }
        writeln!(
            out,
            "  delivery: {} target(s); master key {}; SSRF guard allows {}",
            targets,
            d.targets.master_key_fingerprint().map_or_else(
                || format!("not set ({MASTER_KEY_VAR}; targets cannot be created)"),
                |f| {
                    let previous = d.targets.previous_master_key_fingerprints();
                    if previous.is_empty() {
                        format!("fingerprint {f}")
                    } else {
                        format!(
                            "fingerprint {f}, also opening {} ({MASTER_KEY_PREVIOUS_VAR}: run `signet targets reseal`, then remove it)",
                            previous.join(", ")
                        )
                    }
                }
            ),
            if d.ssrf.allowed().is_empty() {
                "public addresses only".to_owned()
            } else {
                format!(
                    "public addresses and {}",
                    d.ssrf
                        .allowed()
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        )?;
        if let Some(from) = d.http.trusted_roots.source() {
            writeln!(
                out,
                "  HTTPS deliveries trust {} CA certificate(s) from {from} besides the public web roots",
                d.http.trusted_roots.len()
            )?;
        }
        out.flush()?;
    }
    drop(admin);
    let leader = LeaderConfig {
        node_id: args.node_id.clone().unwrap_or_else(default_node_id),
        ttl: args.leader_ttl,
    };
    // Message schedules publish through the same producer as the API.
    let messages = state
        .delivery()
        .messages
        .clone()
        .map(|m| Arc::new(m) as Arc<dyn MessagePublisher>);
    let node = serve::node(&state, &leader, messages);
    {
        let mut out = std::io::stdout().lock();
        write!(out, "{}", ElectionBanner { node: &node })?;
        out.flush()?;
    }
    let mut reporters = Vec::new();
    for elector in node.electors() {
        // `leadership:` for the services role, as before the roles split;
        // `leadership (<role>):` for the others.
        let prefix = if elector.role() == SERVICES_ROLE {
            "leadership".to_owned()
        } else {
            format!("leadership ({})", elector.role())
        };
        reporters.push(tokio::spawn(report_leadership(
            Role {
                name: elector.role().to_owned(),
                prefix,
                services: elector.service_names().join(", "),
            },
            elector.subscribe(),
            Arc::clone(state.store()),
            elector.renew_every(),
        )));
    }
    serve::run_with(state, listener, serve::shutdown_signal(), node).await?;
    // The electors are gone: each reporter prints its last change (this
    // node resigned) and ends.
    for reporter in reporters {
        let _ = reporter.await;
    }
    Ok(())
}

/// A role this node stands for, as its leadership lines name it.
struct Role {
    name: String,
    prefix: String,
    services: String,
}

/// Prints a line on stdout whenever this node gains or loses a role, and
/// once, shortly after start, which node leads when it is not this one.
async fn report_leadership(
    role: Role,
    mut leadership: tokio::sync::watch::Receiver<Leadership>,
    store: Arc<dyn Store>,
    renew_every: Duration,
) {
    let Role {
        name,
        prefix,
        services,
    } = role;
    let print = |line: String| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    // The first election round runs at once; give it a renewal to settle.
    let led = tokio::time::timeout(renew_every, leadership.wait_for(|l| l.leading))
        .await
        .is_ok();
    if !led {
        let holder = match store.leader(&name).await {
            Ok(Some(lease)) => format!("node {} leads (term {})", lease.holder, lease.term),
            Ok(None) => "no node leads yet".to_owned(),
            Err(e) => format!("the leader is unknown ({e})"),
        };
        print(format!(
            "{prefix}: {holder}; this node serves the API and takes over if the leader stops"
        ));
    }
    let run = if services.contains(',') {
        "run"
    } else {
        "runs"
    };
    let mut was_leading = false;
    loop {
        let now = *leadership.borrow_and_update();
        if now.leading != was_leading {
            let term = now
                .term
                .map_or_else(String::new, |t| format!(" (term {t})"));
            print(match (now.leading, now.stepped_down) {
                (true, _) => format!("{prefix}: this node leads{term}; {services} {run} here"),
                (false, Some(StepDown::Resigned)) => {
                    format!("{prefix}: shutting down; {services} stopped here")
                }
                (false, Some(StepDown::LeaseLapsed)) => format!(
                    "{prefix}: this node stopped {services}: it could not renew its lease in the store; they run again on whichever node leads next"
                ),
                (false, _) => {
                    format!("{prefix}: this node no longer leads; another node runs {services}")
                }
            });
            was_leading = now.leading;
        }
        if leadership.changed().await.is_err() {
            return;
        }
    }
}
