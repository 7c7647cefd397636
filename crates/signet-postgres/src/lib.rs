//! `signet-postgres`: Signet's multi-node store, on PostgreSQL.
//!
//! Every Signet process (API nodes, workers, the CLI) can point at one
//! database; the [`Store`](signet_store::Store) contract and the conformance
//! suite are the same as on SQLite.
//!
//! - **Claims** are one statement: `UPDATE … WHERE id IN (SELECT … FOR
//!   UPDATE SKIP LOCKED LIMIT n) RETURNING …`. Concurrent workers pass each
//!   other instead of waiting, and no transaction or connection is held
//!   while a task runs: the lease columns carry the claim.
//! - **Batches** are one statement each: enqueue inserts from `UNNEST`
//!   arrays (all or none; a batch carrying idempotency keys runs in a
//!   transaction that looks the keys up first), `complete_batch` updates
//!   from `UNNEST` in one round trip. Hot statements are prepared once per connection.
//! - **Wake-ups**: statements that make work due call `pg_notify` with the
//!   queue name; [`wait_for_work`](signet_store::Store::wait_for_work)
//!   listens on a dedicated connection that reconnects by itself.
//! - **Leader leases** are one upsert whose `WHERE` lets the holder renew
//!   and anyone take an expired lease; the term goes up when the holder
//!   changes. Schedules advance with a compare-and-set.
//! - **Numbered migrations** embedded in the binary, applied under an
//!   advisory lock (nodes may start together); a schema newer than this
//!   build is refused ([`StoreError::SchemaTooNew`](signet_store::StoreError::SchemaTooNew)).
//! - **Errors**: serialization failures and deadlocks → `Busy`, disk full →
//!   `Full`, a lost connection → `Backend` saying the store reconnects; the
//!   pool drops broken connections, so a restarted server is picked up on
//!   the next call.
//! - **TLS** with rustls, configured by libpq's URL parameters (`sslmode`,
//!   `sslrootcert`, `sslcert`, `sslkey`; see [`tls`]), on every
//!   connection: the pool, the LISTEN connection and migrations.
//!
//! ```no_run
//! # async fn f() -> Result<(), signet_store::StoreError> {
//! use signet_postgres::{PostgresOptions, PostgresStore};
//! let store = PostgresStore::connect(
//!     "postgres://signet@db.internal:5432/signet",
//!     PostgresOptions::default(),
//! )
//! .await?;
//! # let _ = store; Ok(()) }
//! ```
#![warn(missing_docs)]

mod api_keys;
mod delivery;
mod error_map;
mod history;
mod leader;
mod limits;
pub mod migrate;
mod notify;
pub mod options;
mod pause;
mod push;
mod queries;
mod row;
mod schedules;
mod store;
mod targets;
mod tasks;
pub mod tls;
pub mod url;

pub use migrate::{MigrationReport, MigrationStatus, SCHEMA_VERSION};
pub use options::{
    validate_schema, PostgresOptions, DEFAULT_CONNECT_TIMEOUT, DEFAULT_POOL_SIZE,
    DEFAULT_POOL_TIMEOUT,
};
pub use store::{migrate_database, migration_status, PostgresStore};
pub use tls::{RootCerts, SslMode, TlsSettings};
pub use url::{is_postgres_url, parse_url, PostgresUrl};
