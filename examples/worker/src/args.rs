//! Command-line flags (each also readable from the environment).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// A Signet worker running two example handlers, `text.stats` and
/// `files.write`. Signing keys come from the `SIGNET_SIGNING_*` variables,
/// `SIGNET_KEYS_FILE`, or the key file beside a SQLite database, as for
/// every `signet` command.
#[derive(Debug, Parser)]
#[command(name = "signet-example-worker", version)]
pub(crate) struct Args {
    /// The store to work from: sqlite://path/to/file.db or
    /// postgres://user:password@host:5432/database.
    #[arg(
        long,
        env = "SIGNET_DATABASE_URL",
        default_value = "sqlite://./signet.db",
        hide_env_values = true
    )]
    pub(crate) database_url: String,

    /// PostgreSQL only: the schema Signet's tables live in (the one
    /// `signet serve --database-schema` uses). Default: the server's
    /// search_path, normally public.
    #[arg(long, env = "SIGNET_DATABASE_SCHEMA")]
    pub(crate) database_schema: Option<String>,

    /// Queues to take tasks from (repeat the flag or separate with commas).
    #[arg(
        long = "queue",
        env = "SIGNET_WORKER_QUEUES",
        default_value = "default",
        value_delimiter = ','
    )]
    pub(crate) queues: Vec<String>,

    /// Tasks run at once.
    #[arg(long, env = "SIGNET_WORKER_CONCURRENCY", default_value_t = 16)]
    pub(crate) concurrency: usize,

    /// Directory `files.write` writes into.
    #[arg(long, env = "SIGNET_WORKER_OUTBOX", default_value = "./outbox")]
    pub(crate) outbox: PathBuf,

    /// Lease length in milliseconds: a task whose worker dies is handed out
    /// again this long after its last heartbeat. Heartbeats run every third
    /// of it.
    #[arg(long, env = "SIGNET_WORKER_LEASE_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(300..))]
    pub(crate) lease_ms: u64,

    /// Longest run of one handler, in milliseconds.
    #[arg(
        long,
        env = "SIGNET_WORKER_HANDLER_TIMEOUT_MS",
        default_value_t = 60_000
    )]
    pub(crate) handler_timeout_ms: u64,

    /// How long running tasks may finish after SIGINT/SIGTERM, in
    /// milliseconds; the rest go back to the queue.
    #[arg(
        long,
        env = "SIGNET_WORKER_SHUTDOWN_GRACE_MS",
        default_value_t = 10_000
    )]
    pub(crate) shutdown_grace_ms: u64,

    /// Longest wait for new work when the queues are empty, in
    /// milliseconds. New work wakes the worker sooner (PostgreSQL
    /// LISTEN/NOTIFY; on SQLite an in-process signal and a 2 ms check for
    /// other processes' writes); this is the safety net.
    #[arg(long, env = "SIGNET_WORKER_POLL_MS", default_value_t = 50)]
    pub(crate) poll_ms: u64,

    /// This process's name in the maintenance role's election (default:
    /// node-<pid>-<random>).
    #[arg(long, env = "SIGNET_NODE_ID")]
    pub(crate) node_id: Option<String>,

    /// How long the maintenance leader's lease lasts without renewal, in
    /// milliseconds: when the process running the pruner dies,
    /// another takes it over within this. Default: the task lease, at
    /// most 15 s.
    #[arg(long, env = "SIGNET_WORKER_LEADER_TTL_MS", value_parser = clap::value_parser!(u64).range(30..))]
    pub(crate) leader_ttl_ms: Option<u64>,

    /// Serve this process's metrics (Prometheus text, the same series as
    /// `signet serve`'s /metrics) at http://ADDR/metrics, e.g.
    /// 127.0.0.1:9091; port 0 picks a free one. Off unless given.
    #[arg(long, env = "SIGNET_WORKER_METRICS_LISTEN", value_name = "ADDR")]
    pub(crate) metrics_listen: Option<SocketAddr>,
}

impl Args {
    pub(crate) fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }

    pub(crate) fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.lease_ms / 3)
    }

    /// The maintenance lease: as given, or the task lease up to the
    /// default leader lease.
    pub(crate) fn leader_ttl(&self) -> Duration {
        self.leader_ttl_ms.map_or_else(
            || self.lease().min(signet_runtime::DEFAULT_LEADER_TTL),
            Duration::from_millis,
        )
    }

    /// Expired leases are looked for twice per lease length.
    pub(crate) fn rescue_interval(&self) -> Duration {
        Duration::from_millis((self.lease_ms / 2).max(100))
    }
}
