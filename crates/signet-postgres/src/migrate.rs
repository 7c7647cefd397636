//! Numbered schema migrations, embedded in the binary.
//!
//! `schema_migrations` records every version applied (the same table as on
//! SQLite). Migrating takes a transaction-scoped advisory lock keyed on the
//! schema, so any number of nodes may start (or run `signet migrate`) at
//! once: one applies the pending migrations, the others wait and then find
//! nothing to do. DDL is transactional in PostgreSQL, so a migration is
//! applied whole or not at all. A schema newer than this build knows is
//! refused with [`StoreError::SchemaTooNew`].

use signet_store::migration::{check_not_too_new, latest_version, pending, Migration};
use signet_store::StoreError;
use tokio_postgres::GenericClient;

use crate::error_map::map_err;

const MIGRATIONS: &[Migration] = &[
    Migration::new(1, "init", include_str!("../migrations/0001_init.sql")),
    Migration::new(
        2,
        "delivery",
        include_str!("../migrations/0002_delivery.sql"),
    ),
    Migration::new(3, "history", include_str!("../migrations/0003_history.sql")),
    Migration::new(
        4,
        "idempotency_scope",
        include_str!("../migrations/0004_idempotency_scope.sql"),
    ),
    Migration::new(
        5,
        "newest_first",
        include_str!("../migrations/0005_newest_first.sql"),
    ),
    Migration::new(
        6,
        "listing_by_id",
        include_str!("../migrations/0006_listing_by_id.sql"),
    ),
    Migration::new(
        7,
        "push_bindings",
        include_str!("../migrations/0007_push_bindings.sql"),
    ),
    Migration::new(
        8,
        "steering",
        include_str!("../migrations/0008_steering.sql"),
    ),
    Migration::new(
        9,
        "target_limits",
        include_str!("../migrations/0009_target_limits.sql"),
    ),
    Migration::new(
        10,
        "ended_sessions",
        include_str!("../migrations/0010_ended_sessions.sql"),
    ),
    Migration::new(
        11,
        "delivered_attempt_on_row",
        include_str!("../migrations/0011_delivered_attempt_on_row.sql"),
    ),
];

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = latest_version(MIGRATIONS);

pub use signet_store::MigrationStatus;

/// Where a database at `current` stands against this build.
pub(crate) fn status_for_version(current: i64) -> MigrationStatus {
    MigrationStatus::of(current, MIGRATIONS)
}

/// What one call to `migrate` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationReport {
    /// The version found before.
    pub from: i64,
    /// The version now.
    pub to: i64,
    /// Migrations this call applied, `(version, name)`; empty when the
    /// database was up to date (or another node migrated it first).
    pub applied: Vec<(i64, &'static str)>,
}

/// The schema version in the connection's `search_path` (0 when Signet's
/// tables are not there yet).
pub(crate) async fn current_version(client: &impl GenericClient) -> Result<i64, StoreError> {
    let row = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await
        .map_err(|e| map_err("reading the schema version", e))?;
    let exists: bool = row
        .try_get(0)
        .map_err(|e| map_err("reading the schema version", e))?;
    if !exists {
        return Ok(0);
    }
    let row = client
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations",
            &[],
        )
        .await
        .map_err(|e| map_err("reading the schema version", e))?;
    row.try_get(0)
        .map_err(|e| map_err("reading the schema version", e))
}

/// Applies every pending migration in one transaction, under the advisory
/// lock of `schema` (`None`: the connection's default schema).
pub(crate) async fn migrate(
    client: &mut tokio_postgres::Client,
    schema: Option<&str>,
    now_ms: i64,
) -> Result<MigrationReport, StoreError> {
    let tx = client
        .transaction()
        .await
        .map_err(|e| map_err("starting the schema migration", e))?;
    // Two-key advisory lock: (signet migrations, this schema). Released at
    // commit or rollback.
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('signet.migrate'), \
         hashtext(COALESCE($1::TEXT, current_schema(), '')))",
        &[&schema],
    )
    .await
    .map_err(|e| map_err("waiting for the schema migration lock", e))?;
    if let Some(schema) = schema {
        // The name was validated (a-z 0-9 _): it needs no quoting.
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await
            .map_err(|e| map_err(format!("creating schema {schema}"), e))?;
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version       BIGINT NOT NULL PRIMARY KEY,
             name          TEXT   NOT NULL,
             applied_at_ms BIGINT NOT NULL
         )",
    )
    .await
    .map_err(|e| map_err("creating schema_migrations", e))?;
    let from = current_version(&tx).await?;
    check_not_too_new(from, MIGRATIONS)?;
    let mut applied = Vec::new();
    for m in pending(MIGRATIONS, from) {
        tx.batch_execute(m.sql)
            .await
            .map_err(|e| map_err(format!("applying migration {:04}_{}", m.version, m.name), e))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &now_ms],
        )
        .await
        .map_err(|e| map_err("recording a migration", e))?;
        applied.push((m.version, m.name));
    }
    tx.commit()
        .await
        .map_err(|e| map_err("committing the schema migration", e))?;
    Ok(MigrationReport {
        from,
        to: SCHEMA_VERSION.max(from),
        applied,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_the_pending_migrations() {
        assert_eq!(
            status_for_version(1).pending,
            vec![
                (2, "delivery"),
                (3, "history"),
                (4, "idempotency_scope"),
                (5, "newest_first"),
                (6, "listing_by_id"),
                (7, "push_bindings"),
                (8, "steering"),
                (9, "target_limits"),
                (10, "ended_sessions"),
                (11, "delivered_attempt_on_row")
            ]
        );
        assert!(status_for_version(SCHEMA_VERSION + 1).is_too_new());
    }
}
