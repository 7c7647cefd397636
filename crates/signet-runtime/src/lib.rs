//! `signet-runtime`: the producer that signs tasks, the worker that verifies
//! every task before running it, retries with backoff and full jitter, the
//! lease rescuer, the pruner and the metrics they record; and for HTTP
//! delivery, messages ([`MessageProducer`]), the [`dispatcher`] that signs
//! and sends them behind an SSRF guard ([`SsrfPolicy`]), targets with sealed
//! secrets ([`TargetService`]) and callbacks ([`CallbackService`]). The
//! worker and the dispatcher share one claim loop (`claim/`); the [`Node`]
//! composes a process's background services and says where each runs
//! (every node, or the leader of a role, with [`LeaderElector`] election).
//!
//! The modules are private and the public surface is the list of
//! re-exports below, grouped by concern; a module is public only where it
//! is a namespace worth its name (said beside it).
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn signet_store::Store>, signing: signet_sign::SigningConfig) -> Result<(), signet_runtime::RuntimeError> {
//! use signet_runtime::{HandlerResult, Producer, Shutdown, TaskContext, TaskSpec, Worker};
//!
//! #[derive(serde::Deserialize)]
//! struct Greet { name: String }
//!
//! async fn greet(_ctx: TaskContext, args: Greet) -> HandlerResult {
//!     Ok(Some(serde_json::json!({ "greeting": format!("hello {}", args.name) })))
//! }
//!
//! let producer = Producer::new(store.clone(), &signing)?;
//! producer.enqueue(TaskSpec::new("greet", &serde_json::json!({ "name": "ada" }))).await?;
//!
//! let worker = Worker::builder(store).signing(&signing).register("greet", greet).build()?;
//! let shutdown = Shutdown::new();
//! worker.run(shutdown.signal()).await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod backoff;
mod callbacks;
mod claim;
mod clock;
mod delivery;
/// Public as a namespace: its defaults (`DEFAULT_LEASE`, …) share their
/// names with the worker's.
pub mod dispatcher;
mod error;
mod handler;
mod key_status;
mod keys;
mod leader;
mod message;
/// Public as a namespace: the metric names dashboards and alerts use.
pub mod metrics;
mod node;
mod operator;
mod periodic;
mod producer;
mod pruner;
mod push;
mod queues;
mod rescuer;
mod resign;
mod skipped;
// Public as a namespace: its defaults (`DEFAULT_POLL_INTERVAL`, …) share
// their names with the worker's and the dispatcher's.
pub mod schedules;
mod shutdown;
mod ssrf;
mod targets;
mod times;
mod verify;
/// Public as a namespace: its defaults (`DEFAULT_LEASE`, …) share their
/// names with the dispatcher's.
pub mod worker;

// Errors.
pub use error::RuntimeError;

// Times as printed and as given (API, CLI, callbacks).
pub use times::{format_time_ms, parse_time_ms, TIME_HELP};

// Tasks: producing, handling, working, retrying.
pub use backoff::{RetryPolicy, DEFAULT_RETRY_BASE, DEFAULT_RETRY_CAP, DEFAULT_RETRY_FLOOR};
pub use handler::{HandlerError, HandlerResult, TaskContext};
pub use producer::{
    BatchItem, ClientSignature, Producer, TaskSpec, DEFAULT_QUEUE, MAX_BATCH_TASKS,
};
pub use worker::{Worker, WorkerBuilder, WorkerEvent, WorkerEventKind};
// Workers in other processes and languages (the HTTP pull protocol).
pub use worker::{RemoteClaim, RemoteFailure, RemoteTask, RemoteWorker, WorkItem};

// Keys: where a process's signing keys and master key come from, and where
// each stands in a rotation.
pub use key_status::{key_roles, key_status, KeyRole, KeyStatus};
pub use keys::{
    default_key_id, key_file_beside, load_keys, missing_keys, read_key_file, save_key_file,
    shared_secret_file, KeyRequest, KeySource, LoadedKeys, MissingKey, KEYS_FILE_VAR,
    KEY_FILE_EXTENSION,
};

// Messages: publishing and delivering over HTTP.
pub use delivery::{
    HttpConfig, TrustedRoots, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_RETRY_AFTER, DEFAULT_REQUEST_TIMEOUT, USER_AGENT,
};
pub use dispatcher::{DeliveryEvent, DeliveryEventKind, Dispatcher, DispatcherBuilder};
pub use message::{
    MessageProducer, MessagePublisher, MessageSpec, NewMessage, PublishOptions, RetrySchedule,
    SignatureProfile, UnixMs, DEFAULT_JITTER, DEFAULT_RETRY_SCHEDULE, MAX_BATCH_MESSAGES,
    PUBLISH_TARGET_CACHE_TTL,
};
pub use ssrf::{Refusal, SsrfPolicy, ALLOWED_TARGET_CIDRS_VAR};

// Push queues: queues drained by POSTing each task to an endpoint.
pub use push::{
    NewBinding, PushService, BINDINGS_REFRESH, DEFAULT_PUSH_CONCURRENCY, DEFAULT_PUSH_TIMEOUT,
    MAX_PUSH_RESULT_BYTES, PUSH_HEARTBEAT, PUSH_LEASE,
};

// Targets and callbacks.
pub use callbacks::{CallbackService, DEFAULT_CALLBACK_BATCH, DEFAULT_CALLBACK_INTERVAL};
pub use targets::{
    NewTarget, ResealFailure, ResealOptions, ResealPage, ResealReport, SigningSecret,
    TargetDeletion, TargetPatch, TargetSecret, TargetSecrets, TargetService, TargetUsage,
    DEFAULT_RESEAL_BATCH, DEFAULT_ROTATION_OVERLAP, GENERATED_SECRET_BYTES,
};

// Schedules.
pub use schedules::{
    CronSchedule, NewSchedule, SchedulePatch, SchedulePayload, ScheduleService, Scheduler,
    TaskTemplate,
};

// Background services and the node that composes them.
pub use leader::{
    default_node_id, LeaderElector, Leadership, StepDown, DEFAULT_LEADER_TTL, MIN_LEADER_TTL,
    SERVICE_STOP_TIMEOUT,
};
pub use metrics::{set_metric_labels, MetricLabels, QueueDepthReporter};
pub use node::{Node, NodeBuilder, Placement, MAINTENANCE_ROLE, SERVICES_ROLE};
pub use pruner::{Pruner, DEFAULT_PRUNE_BATCH, DEFAULT_PRUNE_INTERVAL, DEFAULT_RETENTION};
pub use rescuer::{Rescuer, DEFAULT_RESCUE_BATCH, DEFAULT_RESCUE_INTERVAL};

// Dead letters whose key left the ring.
pub use resign::{
    replay_warnings, resign_and_replay, ResignRefusal, ResignReport, Resigned, MAX_RESIGN,
};
// Operator acts that steer work: pause and resume a queue, retry now,
// resend a delivered message.
pub use operator::{resend_message, retry_now};
pub use queues::{pause_queue, queue_overview, queue_overview_of, resume_queue, QueueOverview};
// Named dead letters a replay or purge left alone, and why.
pub use skipped::{skipped_dead_letters, Skipped};

// Time and shutdown.
pub use clock::{Clock, ManualClock, SystemClock};
pub use shutdown::{os_signal, Shutdown, ShutdownSignal};
