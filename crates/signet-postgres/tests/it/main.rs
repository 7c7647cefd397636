//! Integration tests of `signet-postgres` against a real PostgreSQL.
//!
//! They read `SIGNET_TEST_DATABASE_URL` (CI:
//! `postgres://postgres@127.0.0.1:5432/test`) and skip, with a printed
//! notice, when it is unset. Every store gets its own schema, so the tests
//! run in parallel; schemas are dropped at the end of a passing test.

mod conformance;
mod migrations;
mod reconnect;
mod wakeups;

use std::sync::atomic::{AtomicU64, Ordering};

use signet_postgres::PostgresOptions;

/// The test database, or `None` (with a notice) when tests should skip.
pub(crate) fn database_url(test: &str) -> Option<String> {
    match std::env::var("SIGNET_TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            println!(
                "SKIP {test}: SIGNET_TEST_DATABASE_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/test)"
            );
            None
        }
    }
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

/// Drops a schema left by a test.
pub(crate) async fn drop_schema(url: &str, schema: &str) {
    let config: tokio_postgres::Config = url.parse().expect("test URL parses");
    let (client, conn) = config
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect to drop a schema");
    let driver = tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await
        .expect("drop schema");
    drop(client);
    let _ = driver.await;
}
