//! Wiring: store, signing configuration, the node (the worker on this
//! process, the rescuer; the pruner while it leads the maintenance role),
//! signals.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use signet_postgres::{PostgresOptions, PostgresStore};
use signet_runtime::default_node_id;
use signet_runtime::metrics::{install_prometheus_recorder, render_prometheus, QueueDepth};
use signet_runtime::{load_keys, missing_keys, KeyRequest};
use signet_runtime::{os_signal, ShutdownSignal, SystemClock};
use signet_runtime::{Node, Pruner, Rescuer, Shutdown, Worker, WorkerEventKind};
use signet_sqlite::{SqliteConfig, SqliteStore};
use signet_store::Store;

use crate::args::Args;
use crate::handlers::{text_stats, Outbox};

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    // Signal handlers first: a SIGTERM during start-up (keys, store,
    // migrations, which may wait on an unreachable database) stops the
    // worker at once and cleanly, instead of killing it or going unheard.
    let mut signal = Box::pin(os_signal());
    let (store, worker) = tokio::select! {
        started = start(&args) => started?,
        name = &mut signal => {
            tracing::info!(signal = name, "stopped while starting");
            return Ok(());
        }
    };

    let shutdown = Shutdown::new();
    if let Some(addr) = args.metrics_listen {
        serve_metrics(addr, Arc::clone(&store), shutdown.signal()).await?;
    }
    let mut events = worker.events();
    let logger = tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match events.recv().await {
                Ok(e) => match &e.kind {
                    WorkerEventKind::Succeeded => {
                        tracing::info!(task_id = %e.task_id, task = %e.name, attempt = e.attempt, "succeeded")
                    }
                    // The runtime logs retries and dead letters itself.
                    WorkerEventKind::Retrying { .. } | WorkerEventKind::Dead { .. } => {}
                    other => {
                        tracing::info!(task_id = %e.task_id, task = %e.name, outcome = ?other, "ended")
                    }
                },
                Err(RecvError::Lagged(n)) => {
                    tracing::info!(skipped = n, "busy: some task log lines were skipped")
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
    // The worker and the rescuer run here; the pruner runs on whichever
    // process leads the maintenance role (this one, another worker, or a
    // `signet serve` on the same store), so one runs per store.
    let rescue_interval = args.rescue_interval();
    let (rescue_store, prune_store) = (Arc::clone(&store), Arc::clone(&store));
    let node = Node::builder(
        Arc::clone(&store),
        args.node_id.clone().unwrap_or_else(default_node_id),
    )
    .leader_ttl(args.leader_ttl())
    .worker(worker)
    .rescuer(move || Rescuer::new(Arc::clone(&rescue_store)).interval(rescue_interval))
    .pruner(move || Pruner::new(Arc::clone(&prune_store)))
    .build();

    let trigger = shutdown.clone();
    tokio::spawn(async move {
        let name = signal.await;
        tracing::info!(signal = name, "shutting down: finishing running tasks");
        trigger.trigger();
    });

    let result = node.run(shutdown.signal()).await;
    shutdown.trigger();
    let _ = logger.await;
    store.close().await.context("closing the store")?;
    result.context("the worker stopped with an error")
}

/// Everything before the worker runs: keys, store, outbox, handlers.
async fn start(args: &Args) -> anyhow::Result<(Arc<dyn Store>, Worker)> {
    // The keys as every signet command on this store finds them: the
    // variables, SIGNET_KEYS_FILE, or the key file beside a SQLite database
    // (created on first use).
    let env: Vec<(String, String)> = std::env::vars().collect();
    let database_file = match signet_sqlite::parse_url(&args.database_url) {
        // PostgreSQL URLs are not SQLite URLs: no key file of their own.
        Ok(signet_sqlite::Location::File(path)) => Some(path),
        _ => None,
    };
    let keys = load_keys(&KeyRequest {
        env: &env,
        database_file: database_file.as_deref(),
        unsigned: false,
    })
    .context("the signing keys")?;
    for warning in keys.warnings.iter().chain(&keys.signing.warnings) {
        tracing::warn!("{warning}");
    }
    tracing::info!("{}", keys.describe());
    let signing = keys.signing;
    let store = open_store(args).await?;
    for missing in missing_keys(store.as_ref(), &signing).await? {
        tracing::warn!("{missing}");
    }
    std::fs::create_dir_all(&args.outbox)
        .with_context(|| format!("could not create the outbox directory {:?}", args.outbox))?;
    let outbox = Outbox::new(args.outbox.clone());

    let worker = Worker::builder(Arc::clone(&store))
        .signing(&signing)
        .queues(args.queues.iter().cloned())
        .concurrency(args.concurrency)
        .lease(args.lease(), args.heartbeat())
        .handler_timeout(Duration::from_millis(args.handler_timeout_ms))
        .shutdown_grace(Duration::from_millis(args.shutdown_grace_ms))
        .poll_interval(Duration::from_millis(args.poll_ms))
        .register("text.stats", text_stats)
        .register("files.write", move |ctx, a| {
            let outbox = outbox.clone();
            async move { outbox.write(ctx, a).await }
        })
        .build()
        .context("the worker configuration is invalid")?;
    Ok((store, worker))
}

/// Serves `GET /metrics` on `addr` until `shutdown`: the runtime's
/// Prometheus recorder (the one `signet serve` installs, so the same
/// series), with the queue depth counted on scrape as the server does.
async fn serve_metrics(
    addr: SocketAddr,
    store: Arc<dyn Store>,
    mut shutdown: ShutdownSignal,
) -> anyhow::Result<()> {
    let handle = install_prometheus_recorder().map_err(anyhow::Error::msg)?;
    let depth = QueueDepth::new(store, Arc::new(SystemClock));
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} for metrics; choose another address with --metrics-listen")
    })?;
    let bound = listener
        .local_addr()
        .context("the metrics listener's address")?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let (handle, depth) = (handle.clone(), depth.clone());
            async move {
                let text = render_prometheus(&handle, &depth).await;
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    text,
                )
            }
        }),
    );
    tracing::info!("metrics at http://{bound}/metrics");
    tokio::spawn(async move {
        let stop = async move { shutdown.triggered().await };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %e, "the metrics listener failed; metrics are no longer served");
        }
    });
    Ok(())
}

/// Opens the store `--database-url` names: PostgreSQL for `postgres://` and
/// `postgresql://` URLs (in `--database-schema`), SQLite otherwise. Errors
/// never repeat a PostgreSQL URL, which may hold a password.
async fn open_store(args: &Args) -> anyhow::Result<Arc<dyn Store>> {
    let url = &args.database_url;
    if signet_postgres::is_postgres_url(url) {
        let options = PostgresOptions {
            schema: args.database_schema.clone(),
            ..PostgresOptions::default()
        };
        let store = PostgresStore::connect(url, options)
            .await
            .context("could not open the PostgreSQL store at --database-url")?;
        return Ok(Arc::new(store));
    }
    if !signet_sqlite::is_sqlite_url(url) {
        // Only the scheme is shown: the rest may hold a password.
        let scheme = url.split_once("://").map_or("", |(s, _)| s);
        anyhow::bail!(
            "--database-url with the scheme {scheme:?} is neither a SQLite URL (sqlite://path/to/file.db) nor a \
             PostgreSQL URL (postgres://user@host:5432/database)"
        );
    }
    if args.database_schema.is_some() {
        anyhow::bail!(
            "--database-schema applies to PostgreSQL only; the SQLite store has no schemas"
        );
    }
    let store = SqliteStore::open(url, SqliteConfig::default())
        .with_context(|| format!("could not open the store at {url:?}"))?;
    Ok(Arc::new(store))
}
