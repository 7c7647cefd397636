//! `signet-runtime`: the producer that signs tasks, the worker that verifies
//! every task before running it, retries with backoff and full jitter, the
//! lease rescuer, the pruner and the metrics they record; and for HTTP
//! delivery, messages ([`message`]), the dispatcher that signs and sends
//! them ([`dispatcher`]) behind an SSRF guard ([`ssrf`]), targets with
//! sealed secrets ([`targets`]) and callbacks ([`callbacks`]). The worker
//! and the dispatcher share one claim loop (`claim/`); the [`node`]
//! composes a process's background services and says where each runs
//! (every node, or the leader of a role, with [`leader`] election).
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

pub mod backoff;
pub mod callbacks;
mod claim;
pub mod clock;
pub mod delivery;
pub mod dispatcher;
pub mod error;
pub mod handler;
pub mod leader;
pub mod message;
pub mod metrics;
pub mod node;
mod periodic;
pub mod producer;
pub mod pruner;
pub mod rescuer;
pub mod scheduler;
pub mod shutdown;
pub mod ssrf;
pub mod targets;
mod verify;
pub mod worker;

pub use backoff::RetryPolicy;
pub use callbacks::CallbackService;
pub use clock::{Clock, ManualClock, SystemClock};
pub use delivery::{HttpClient, HttpConfig};
pub use dispatcher::{DeliveryEvent, DeliveryEventKind, Dispatcher, DispatcherBuilder};
pub use error::RuntimeError;
pub use handler::{HandlerError, HandlerResult, TaskContext};
pub use leader::{LeaderElector, Leadership};
pub use message::{
    MessageProducer, MessagePublisher, MessageSpec, NewMessage, RetrySchedule, SignatureProfile,
};
pub use metrics::QueueDepthReporter;
pub use node::{Node, NodeBuilder, Placement};
pub use producer::{ClientSignature, Producer, TaskSpec};
pub use pruner::Pruner;
pub use rescuer::Rescuer;
pub use scheduler::{CronSchedule, Scheduler};
pub use shutdown::{Shutdown, ShutdownSignal};
pub use ssrf::SsrfPolicy;
pub use targets::{NewTarget, TargetPatch, TargetSecret, TargetService};
pub use worker::{Worker, WorkerBuilder, WorkerEvent, WorkerEventKind};
