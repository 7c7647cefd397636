//! Numbered schema migrations, embedded in the binary.
//!
//! `schema_migrations` records every version applied. Opening a database
//! whose schema is newer than this build knows fails with
//! [`StoreError::SchemaTooNew`] rather than risk misreading it.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use signet_store::migration::{check_not_too_new, latest_version, pending, Migration};
use signet_store::StoreError;

use crate::error_map::map_err;
use crate::url::{parse_url, Location};

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
];

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = latest_version(MIGRATIONS);

pub use signet_store::MigrationStatus;

/// Reports the schema version of the database at `url` without changing it.
pub fn migration_status(url: &str) -> Result<MigrationStatus, StoreError> {
    let current = match parse_url(url)? {
        Location::Memory => 0,
        Location::File(path) if !Path::new(&path).exists() => 0,
        Location::File(path) => {
            let conn = Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(|e| map_err(format!("opening {} to read its schema", path.display()), e))?;
            current_version(&conn)?
        }
    };
    Ok(status_for(current))
}

fn status_for(current: i64) -> MigrationStatus {
    MigrationStatus::of(current, MIGRATIONS)
}

fn current_version(conn: &Connection) -> Result<i64, StoreError> {
    let exists: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| map_err("reading the schema version", e))?;
    if exists.is_none() {
        return Ok(0);
    }
    conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )
    .map_err(|e| map_err("reading the schema version", e))
}

/// Applies every pending migration in one transaction.
pub(crate) fn migrate(conn: &mut Connection, now_ms: i64) -> Result<MigrationStatus, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| map_err("starting the schema migration", e))?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version       INTEGER NOT NULL PRIMARY KEY,
             name          TEXT    NOT NULL,
             applied_at_ms INTEGER NOT NULL
         )",
    )
    .map_err(|e| map_err("creating schema_migrations", e))?;
    let current = current_version(&tx)?;
    check_not_too_new(current, MIGRATIONS)?;
    for m in pending(MIGRATIONS, current) {
        tx.execute_batch(m.sql)
            .map_err(|e| map_err(format!("applying migration {:04}_{}", m.version, m.name), e))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (?1, ?2, ?3)",
            rusqlite::params![m.version, m.name, now_ms],
        )
        .map_err(|e| map_err("recording a migration", e))?;
    }
    tx.commit()
        .map_err(|e| map_err("committing the schema migration", e))?;
    Ok(status_for(SCHEMA_VERSION))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_2_attempts_become_history_events_in_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, \
             name TEXT NOT NULL, applied_at_ms INTEGER NOT NULL)",
        )
        .unwrap();
        for m in &MIGRATIONS[..2] {
            conn.execute_batch(m.sql).unwrap();
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?1, ?2, 0)",
                rusqlite::params![m.version, m.name],
            )
            .unwrap();
        }
        conn.execute_batch(
            "INSERT INTO tasks (id, queue, name, args, headers, created_at_ms, max_attempts, \
                 state, priority, attempt, run_at_ms, updated_at_ms, finished_at_ms) \
             VALUES ('msg_1', 'signet:messages', 'signet.http', X'7B7D', '{}', 1, 2, 'dead', \
                 0, 2, 1, 9, 9); \
             INSERT INTO attempts VALUES ('msg_1', 2, 500, 7, NULL, 'refused', X''); \
             INSERT INTO attempts VALUES ('msg_1', 1, 100, 5, 503, NULL, CAST('busy' AS BLOB));",
        )
        .unwrap();
        migrate(&mut conn, 10).unwrap();
        assert_eq!(current_version(&conn).unwrap(), SCHEMA_VERSION);
        let history = crate::history::list(&conn, "msg_1").unwrap();
        let got: Vec<(u32, &str, i64, Option<u16>)> = signet_store::history::attempts(&history)
            .map(|(e, a)| {
                (
                    a.number,
                    a.outcome.as_str(),
                    e.at_ms,
                    a.http.as_ref().and_then(|h| h.status),
                )
            })
            .collect();
        assert_eq!(got, [(1, "retry", 105, Some(503)), (2, "dead", 507, None)]);
        let task = crate::queries::task_by_id(&conn, "msg_1").unwrap().unwrap();
        assert_eq!((task.attempt, task.attempts_before), (2, 0));
        let old: Option<i64> = conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE name = 'attempts'",
                [],
                |r| r.get(0),
            )
            .optional()
            .unwrap();
        assert_eq!(old, None, "the attempts table is gone");
    }

    #[test]
    fn migrating_twice_is_a_no_op_and_too_new_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, 1).unwrap();
        migrate(&mut conn, 2).unwrap();
        assert_eq!(current_version(&conn).unwrap(), SCHEMA_VERSION);
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (?1, 'future', 3)",
            [SCHEMA_VERSION + 1],
        )
        .unwrap();
        assert!(matches!(
            migrate(&mut conn, 4),
            Err(StoreError::SchemaTooNew { found, known }) if found == SCHEMA_VERSION + 1 && known == SCHEMA_VERSION
        ));
    }
}
