//! Integration tests of `signet-postgres` against a real PostgreSQL.
//!
//! They read `SIGNET_TEST_DATABASE_URL` (CI:
//! `postgres://postgres@127.0.0.1:5432/test`) and skip, with a printed
//! notice, when it is unset. Every store gets its own schema, so the tests
//! run in parallel; schemas are dropped at the end of a passing test.

mod conformance;
mod migrations;
mod reconnect;
mod tls;
mod wakeups;

use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};

use signet_postgres::PostgresOptions;
use tokio::task::JoinHandle;

/// Why a test skips without a test database.
pub(crate) const NO_DATABASE: &str =
    "SIGNET_TEST_DATABASE_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/test)";

/// `SIGNET_TEST_DATABASE_URL`, or `None` when it is unset or blank.
pub(crate) fn test_database_url() -> Option<String> {
    std::env::var("SIGNET_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
}

/// The test database, or `None` (with a notice) when tests should skip.
pub(crate) fn database_url(test: &str) -> Option<String> {
    let url = test_database_url();
    if url.is_none() {
        println!("SKIP {test}: {NO_DATABASE}");
    }
    url
}

/// A schema name no other test (or test run) uses.
pub(crate) fn fresh_schema(tag: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "signet_test_{tag}_{}_{}_{:08x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    )
}

/// Options for a test store in its own schema, with a small pool.
pub(crate) fn test_options(schema: &str) -> PostgresOptions {
    PostgresOptions {
        pool_size: 8,
        ..PostgresOptions::default().with_schema(schema)
    }
}

/// A connection of its own to the test database, beside any store's pool,
/// for what a test does behind the store's back.
pub(crate) struct Admin {
    client: tokio_postgres::Client,
    driver: JoinHandle<Result<(), tokio_postgres::Error>>,
}

impl Admin {
    pub(crate) async fn connect(url: &str) -> Self {
        let config: tokio_postgres::Config = url.parse().expect("test URL parses");
        let (client, conn) = config
            .connect(tokio_postgres::NoTls)
            .await
            .expect("admin connection to the test database");
        Self {
            client,
            driver: tokio::spawn(conn),
        }
    }

    /// Closes the connection and waits for its driver to end.
    pub(crate) async fn close(self) {
        drop(self.client);
        let _ = self.driver.await;
    }
}

impl Deref for Admin {
    type Target = tokio_postgres::Client;

    fn deref(&self) -> &Self::Target {
        &self.client
    }
}

/// Drops a schema left by a test.
pub(crate) async fn drop_schema(url: &str, schema: &str) {
    let admin = Admin::connect(url).await;
    admin
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await
        .expect("drop schema");
    admin.close().await;
}
