//! `signet-sqlite`: Signet's embedded default store, on SQLite.
//!
//! - **Durable by default**: WAL with `synchronous=FULL`, so an acknowledged
//!   enqueue survives power loss. `NORMAL` only by explicit
//!   [`SqliteConfig::synchronous`].
//! - **One writer thread** owns the only write connection and commits every
//!   queued operation in one transaction (group commit), each in its own
//!   savepoint so a failing operation rolls back only itself. Reads use a
//!   small pool of read-only WAL connections.
//! - **Numbered migrations** embedded in the binary; a database newer than
//!   this build is refused ([`StoreError::SchemaTooNew`](signet_store::StoreError::SchemaTooNew)).
//! - **Idle workers wake at once** when this process enqueues, retries,
//!   releases, rescues or replays work on their queues
//!   ([`Store::wait_for_work`](signet_store::Store::wait_for_work)), and
//!   within a few milliseconds when another process on the same file does:
//!   while anyone waits, one thread per store polls `PRAGMA data_version`
//!   every 2 ms and signals the waited queues that have work due. The
//!   waiters' timeout is only a safety net.
//! - Locked database → retried up to the busy timeout, then
//!   `StoreError::Busy`; full disk → `StoreError::Full`, nothing half-written.
//!
//! ```no_run
//! # fn main() -> Result<(), signet_store::StoreError> {
//! use signet_sqlite::{SqliteConfig, SqliteStore};
//! let store = SqliteStore::open("sqlite://./signet.db", SqliteConfig::default())?;
//! # let _ = store; Ok(()) }
//! ```
#![warn(missing_docs)]

mod api_keys;
mod callbacks;
pub mod config;
mod error_map;
mod history;
mod leases;
mod limits;
pub mod migrate;
mod pause;
mod push;
mod queries;
mod readers;
mod row;
mod schedules;
mod signal;
mod store;
mod targets;
mod tasks;
pub mod url;
mod watch;
mod writer;

pub use config::{
    SqliteConfig, Synchronous, DEFAULT_BUSY_TIMEOUT, DEFAULT_CACHE_KIB, DEFAULT_MAX_BATCH,
    DEFAULT_READ_CONNECTIONS,
};
pub use migrate::{migration_status, MigrationStatus, SCHEMA_VERSION};
pub use store::SqliteStore;
pub use url::{is_sqlite_url, parse_url, Location};
pub use writer::WriterStats;
