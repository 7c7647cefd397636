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
    Migration::new(
        11,
        "checks_as_comparisons",
        include_str!("../migrations/0011_checks_as_comparisons.sql"),
    ),
    Migration::new(
        12,
        "delivered_attempt_on_row",
        include_str!("../migrations/0012_delivered_attempt_on_row.sql"),
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
        let mut conn = at_version(2);
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

    /// A database at `version` (migrations up to it applied and recorded).
    fn at_version(version: usize) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, \
             name TEXT NOT NULL, applied_at_ms INTEGER NOT NULL)",
        )
        .unwrap();
        for m in &MIGRATIONS[..version] {
            conn.execute_batch(m.sql).unwrap();
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?1, ?2, 0)",
                rusqlite::params![m.version, m.name],
            )
            .unwrap();
        }
        conn
    }

    /// Every row `select` gives, each column as text.
    fn dump(conn: &Connection, select: &str) -> Vec<Vec<String>> {
        let mut stmt = conn.prepare(select).unwrap();
        let n = stmt.column_count();
        stmt.query_map([], |r| {
            (0..n)
                .map(|i| {
                    r.get::<_, rusqlite::types::Value>(i)
                        .map(|v| format!("{v:?}"))
                })
                .collect()
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }

    #[test]
    fn version_11_keeps_every_row_index_and_rule() {
        let mut conn = at_version(10);
        // t1 and its first event fill every column with a value of its
        // own, so a column left out of the copy or swapped shows.
        conn.execute_batch(
            "INSERT INTO tasks (id, queue, name, args, headers, created_at_ms, not_before_ms, \
                 expires_at_ms, max_attempts, callback_url, sig_alg, sig_key_id, sig, state, \
                 priority, attempt, run_at_ms, lease_owner, lease_expires_at_ms, last_error, \
                 dead_reason, dead_detail, result, idempotency_key, updated_at_ms, \
                 finished_at_ms, callback_sent_at_ms, attempt_offset, attempt_started_at_ms, \
                 attempt_worker, event_seq, idempotency_scope, idempotency_kind, \
                 idempotency_fingerprint) \
             VALUES ('t1', 'q1', 'n1', X'01', '{\"a\":\"b\"}', 101, 102, 103, 4, 'http://cb', \
                 'hmac-sha256', 'k1', X'AA', 'dead', 5, 6, 107, 'w1', 108, 'e1', 'expired', \
                 'd1', X'0B', 'key-1', 109, 110, 111, 12, 113, 'w2', 14, 'api:k', 'task', 'fp'), \
                    ('t2', 'q', 'n', X'02', '{}', 1, NULL, NULL, 3, NULL, NULL, NULL, NULL, \
                 'retryable', 0, 2, 9, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 3, NULL, NULL, \
                 0, NULL, NULL, 2, NULL, NULL, NULL); \
             DELETE FROM tasks WHERE id = 't2'; \
             INSERT INTO tasks (id, queue, name, args, headers, created_at_ms, max_attempts, \
                 state, priority, run_at_ms, updated_at_ms) \
             VALUES ('t4', 'q', 'n', X'04', '{}', 1, 1, 'available', 0, 1, 1); \
             INSERT INTO task_events (task_id, seq, kind, at_ms, attempt, worker, started_at_ms, \
                 outcome, error, status, latency_ms, response_body, actor, reason, detail, \
                 from_key_id, to_key_id) \
             VALUES ('t1', 1, 'attempt', 201, 2, 'w3', 203, 'dead', 'e2', 500, 7, X'00', 'a1', \
                 'r1', 'd2', 'k2', 'k3'); \
             INSERT INTO task_events (task_id, seq, kind, at_ms, actor) \
             VALUES ('t1', 2, 'replayed', 5, 'cli');",
        )
        .unwrap();
        let tasks = dump(&conn, "SELECT rowid, * FROM tasks ORDER BY rowid");
        let events = dump(&conn, "SELECT * FROM task_events ORDER BY task_id, seq");
        // Every index but the claim index's, as SQL (an autoindex has none).
        let indexes = "SELECT name, sql FROM sqlite_master WHERE type = 'index' \
                       AND tbl_name IN ('tasks', 'task_events') AND name != 'tasks_claim' \
                       ORDER BY name";
        let before = dump(&conn, indexes);
        assert_eq!(before.len(), 5, "{before:?}");
        migrate(&mut conn, 11).unwrap();
        assert_eq!(current_version(&conn).unwrap(), SCHEMA_VERSION);
        // Version 12 adds three columns at the end, NULL on every row kept.
        let with_v12: Vec<Vec<String>> = tasks
            .iter()
            .map(|row| {
                let mut row = row.clone();
                row.extend(["Null".to_owned(), "Null".to_owned(), "Null".to_owned()]);
                row
            })
            .collect();
        assert_eq!(
            dump(&conn, "SELECT rowid, * FROM tasks ORDER BY rowid"),
            with_v12,
            "rows, rowids and columns are kept"
        );
        assert_eq!(tasks.len(), 2);
        assert_eq!(
            dump(&conn, "SELECT * FROM task_events ORDER BY task_id, seq"),
            events
        );
        assert_eq!(dump(&conn, indexes), before);
        let claim: String = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'tasks_claim'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        // Spelled as the claim statement spells it, or the planner would
        // not use the index.
        let predicate = crate::tasks::CLAIMABLE
            .trim_start_matches('(')
            .trim_end_matches(')');
        assert!(claim.ends_with(&format!("WHERE {predicate}")), "{claim}");
        // The rules still hold.
        for bad in [
            "UPDATE tasks SET state = 'paused' WHERE id = 't4'",
            "UPDATE tasks SET state = 'Available' WHERE id = 't4'",
            "INSERT INTO task_events (task_id, seq, kind, at_ms) VALUES ('t4', 1, 'moved', 1)",
            "INSERT INTO task_events (task_id, seq, kind, at_ms, attempt, outcome) \
             VALUES ('t4', 1, 'attempt', 1, 1, 'maybe')",
            "INSERT INTO tasks (id, queue, name, args, headers, created_at_ms, max_attempts, \
             state, priority, run_at_ms, updated_at_ms) \
             VALUES ('t4', 'q', 'n', X'', '{}', 1, 1, 'available', 0, 1, 1)",
        ] {
            let refused = conn.execute(bad, []).unwrap_err();
            assert_eq!(
                refused.sqlite_error_code(),
                Some(rusqlite::ErrorCode::ConstraintViolation),
                "{bad}"
            );
        }
        for good in [
            "UPDATE tasks SET state = 'cancelled' WHERE id = 't4'",
            "INSERT INTO task_events (task_id, seq, kind, at_ms, actor) \
             VALUES ('t4', 1, 'retried-now', 1, 'cli')",
            "INSERT INTO task_events (task_id, seq, kind, at_ms, attempt, outcome) \
             VALUES ('t4', 2, 'attempt', 1, 1, 'lease-expired')",
        ] {
            conn.execute(good, []).unwrap();
        }
    }

    /// A message delivered before version 12 has its attempt as an event
    /// row; after the upgrade its history reads that attempt once, and a
    /// message delivered after it keeps its attempt on the row, with the
    /// same history.
    #[test]
    fn version_12_reads_earlier_deliveries_once_and_keeps_new_ones_on_the_row() {
        let mut conn = at_version(11);
        // As version 11 wrote a delivered message: the row, then its event.
        conn.execute_batch(
            "INSERT INTO tasks (id, queue, name, args, headers, created_at_ms, max_attempts, \
                 state, priority, attempt, run_at_ms, updated_at_ms, finished_at_ms, \
                 attempt_started_at_ms, event_seq) \
             VALUES ('m1', 'signet:messages', 'n', X'01', '{}', 1, 3, 'succeeded', 0, 1, 1, 9, 9, \
                 5, 1); \
             INSERT INTO task_events (task_id, seq, kind, at_ms, attempt, worker, started_at_ms, \
                 outcome, status, latency_ms, response_body) \
             VALUES ('m1', 1, 'attempt', 9, 1, 'd1', 5, 'succeeded', 204, 4, X'6F6B');",
        )
        .unwrap();
        migrate(&mut conn, 20).unwrap();
        assert_eq!(current_version(&conn).unwrap(), SCHEMA_VERSION);
        let before = crate::history::list(&conn, "m1").unwrap();
        let http = signet_store::HttpExchange {
            status: Some(204),
            latency_ms: 4,
            response_body: b"ok".to_vec(),
        };
        let attempt = signet_store::Event::Attempt(signet_store::AttemptEvent {
            number: 1,
            worker: Some("d1".into()),
            started_at_ms: Some(5),
            outcome: signet_store::AttemptOutcome::Succeeded,
            error: None,
            http: Some(http.clone()),
        });
        assert_eq!(before.len(), 1, "read once: {before:#?}");
        assert_eq!((before[0].seq, before[0].at_ms), (1, 9));
        assert_eq!(before[0].event, attempt);

        // Delivered under version 12: no event row, the same history.
        conn.execute_batch(
            "INSERT INTO tasks (id, queue, name, args, headers, created_at_ms, max_attempts, \
                 state, priority, attempt, run_at_ms, updated_at_ms, lease_owner, \
                 lease_expires_at_ms, attempt_started_at_ms) \
             VALUES ('m2', 'signet:messages', 'n', X'01', '{}', 1, 3, 'running', 0, 1, 1, 5, 'd1', \
                 99, 5);",
        )
        .unwrap();
        let lease = signet_store::LeaseToken {
            task_id: "m2".into(),
            worker_id: "d1".into(),
            attempt: 1,
        };
        crate::tasks::complete(&conn, &lease, None, Some(&http), 9).unwrap();
        let events: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM task_events WHERE task_id = 'm2'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(events, 0, "the attempt is kept on the row");
        let after = crate::history::list(&conn, "m2").unwrap();
        assert_eq!(after.len(), 1, "{after:#?}");
        assert_eq!(
            after[0].event, before[0].event,
            "the same attempt, read back"
        );
        assert_eq!(
            (after[0].seq, after[0].at_ms),
            (before[0].seq, before[0].at_ms)
        );
    }

    /// What a write evaluates on every row (CHECKs, partial index
    /// predicates) must not build a temporary b-tree per statement, as
    /// SQLite does for an IN list of three or more constants.
    #[test]
    fn writes_on_the_hot_path_build_no_temporary_btrees() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, 0).unwrap();
        for sql in [
            "INSERT INTO tasks (id, queue, name, args, headers, created_at_ms, max_attempts, \
             state, priority, run_at_ms, updated_at_ms) \
             VALUES ('t', 'q', 'n', X'', '{}', 1, 1, 'available', 0, 1, 1)",
            "UPDATE tasks SET state = 'running', attempt = attempt + 1 WHERE rowid = 1",
            "UPDATE tasks SET state = 'succeeded', finished_at_ms = 2 WHERE rowid = 1",
            "UPDATE tasks SET state = 'retryable', run_at_ms = 3 WHERE rowid = 1",
            "INSERT INTO task_events (task_id, seq, kind, at_ms, attempt, worker, outcome) \
             VALUES ('t', 1, 'attempt', 1, 1, 'w', 'succeeded')",
        ] {
            let ops: Vec<String> = conn
                .prepare(&format!("EXPLAIN {sql}"))
                .unwrap()
                .query_map([], |r| r.get(1))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert!(!ops.iter().any(|op| op == "OpenEphemeral"), "{sql}");
        }
    }
}
