//! What only the SQLite store has: files, locks, disk space, migrations,
//! the group-committing writer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use signet_sqlite::{is_sqlite_url, migration_status, SqliteConfig, SqliteStore, SCHEMA_VERSION};
use signet_store::testkit::{claim_one, claim_req, new_task, put, Check, T0};
use signet_store::{LeaseToken, Store, StoreError, TaskFilter, TaskState};

use crate::{fast, TempDb};

fn file_of(url: &str) -> &str {
    url.strip_prefix("sqlite://")
        .expect("test urls are sqlite://")
}

#[tokio::test]
async fn an_acknowledged_enqueue_survives_close_and_reopen() {
    let db = TempDb::new();
    let (store, url) = db.open(SqliteConfig::default());
    let mut task = new_task("durable");
    task.envelope.args = vec![0xff, 0x00, b'{', 0x80];
    let id = task.envelope.id.clone();
    store.enqueue(task.clone(), T0).await.expect("enqueue");
    claim_one(&store, "durable", "w", T0).await;
    store.close().await.expect("close");

    let reopened = SqliteStore::open(&url, SqliteConfig::default()).expect("reopen");
    let row = reopened
        .task(&id)
        .await
        .expect("task")
        .expect("still there");
    assert_eq!(row.envelope, task.envelope);
    assert_eq!(row.state, TaskState::Running);
    assert_eq!(row.attempt, 1);
    assert_eq!(reopened.schema().current, SCHEMA_VERSION);
    reopened.close().await.expect("close");
}

#[tokio::test]
async fn dropping_the_store_without_close_loses_nothing_acknowledged() {
    let db = TempDb::new();
    let (store, url) = db.open(SqliteConfig::default());
    let batch: Vec<_> = (0..50).map(|_| new_task("q")).collect();
    store.enqueue_batch(batch, T0).await.expect("enqueue");
    drop(store);
    // Open the file directly: the rows are committed, whatever the writer does next.
    let conn = Connection::open(file_of(&url)).expect("open");
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM tasks", [], |r| r.get(0))
        .expect("count");
    assert_eq!(n, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_gives_busy_with_a_clear_message_then_recovers() {
    let db = TempDb::new();
    let timeout = Duration::from_millis(200);
    let (store, url) = db.open(SqliteConfig {
        busy_timeout: timeout,
        ..fast()
    });
    let other = Connection::open(file_of(&url)).expect("second connection");
    other.execute_batch("BEGIN EXCLUSIVE").expect("lock");

    let task = new_task("locked");
    let id = task.envelope.id.clone();
    let started = Instant::now();
    let err = store
        .enqueue(task.clone(), T0)
        .await
        .expect_err("must fail");
    let waited = started.elapsed();
    match &err {
        StoreError::Busy { message, .. } => {
            assert!(message.contains("locked by another process"), "{message}");
            assert!(message.contains("busy timeout"), "{message}");
        }
        other => panic!("expected Busy, got {other:?}"),
    }
    assert!(err.is_retryable());
    assert!(
        waited >= timeout,
        "retried for the busy timeout first ({waited:?})"
    );

    other.execute_batch("COMMIT").expect("unlock");
    assert!(
        store.task(&id).await.expect("read").is_none(),
        "nothing written"
    );
    store
        .enqueue(task, T0)
        .await
        .expect("works once the lock is gone");
    assert!(store.task(&id).await.expect("read").is_some());
    store.close().await.expect("close");
}

#[tokio::test]
async fn a_full_disk_gives_full_and_no_half_written_task() {
    let db = TempDb::new();
    let (store, url) = db.open(fast());
    let mut first = new_task("disk");
    first.envelope.args = vec![b'a'; 100 * 1024];
    store.enqueue(first.clone(), T0).await.expect("first fits");
    store.close().await.expect("close");
    let pages: u64 = Connection::open(file_of(&url))
        .expect("open")
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .expect("page_count");
    // Room for updates (SQLite rewrites a row with its args when a state
    // changes), not for 200 KiB more (50 pages).
    let store = SqliteStore::open(
        &url,
        SqliteConfig {
            max_page_count: Some(pages + 35),
            ..fast()
        },
    )
    .expect("reopen with a size cap");

    let mut second = new_task("disk");
    second.envelope.args = vec![b'b'; 200 * 1024];
    let err = store
        .enqueue(second.clone(), T0)
        .await
        .expect_err("second does not fit");
    assert!(matches!(err, StoreError::Full { .. }), "{err:?}");
    assert!(err.to_string().contains("free disk space"), "{err}");
    assert!(!err.is_retryable());
    assert!(
        store
            .task(&second.envelope.id)
            .await
            .expect("read")
            .is_none(),
        "no half-written task"
    );

    // A batch that does not fit stores none of its tasks.
    let small = new_task("disk");
    let mut big = new_task("disk");
    big.envelope.args = vec![b'c'; 200 * 1024];
    let err = store
        .enqueue_batch(vec![small.clone(), big], T0)
        .await
        .expect_err("batch does not fit");
    assert!(matches!(err, StoreError::Full { .. }), "{err:?}");
    assert!(store
        .task(&small.envelope.id)
        .await
        .expect("read")
        .is_none());

    // The store keeps working, and space freed is reused.
    let c = store
        .cancel(&first.envelope.id, "test", T0)
        .await
        .expect("cancel");
    assert_eq!(c.state, TaskState::Cancelled);
    assert_eq!(store.prune(T0 + 1, 10).await.expect("prune"), 1);
    let mut third = new_task("disk");
    third.envelope.args = vec![b'd'; 100 * 1024];
    store
        .enqueue(third, T0)
        .await
        .expect("fits after freeing space");
    store.close().await.expect("close");
}

#[tokio::test]
async fn after_a_full_disk_the_wal_is_truncated_once_writes_succeed() {
    let db = TempDb::new();
    let (store, url) = db.open(SqliteConfig {
        max_page_count: Some(400),
        ..fast()
    });
    let wal = format!("{}-wal", file_of(&url));
    // Fill the database to its cap: the WAL holds every page written.
    let mut full = None;
    for i in 0..40 {
        let mut t = new_task("wal");
        t.envelope.args = vec![b'a' + (i % 26) as u8; 100 * 1024];
        if let Err(e) = store.enqueue(t, T0).await {
            full = Some(e);
            break;
        }
    }
    let full = full.expect("the cap is reached");
    assert!(matches!(full, StoreError::Full { .. }), "{full:?}");
    assert!(full.is_storage_unavailable());
    let before = std::fs::metadata(&wal).expect("wal").len();
    assert!(before > 512 * 1024, "the WAL grew: {before}");
    // A write that fits succeeds; the writer then checkpoints and
    // truncates the WAL by itself, without a restart.
    store.check_writable(T0).await.expect("a small write fits");
    // The writer replies before it checkpoints; its next operation (an
    // empty transaction, which adds nothing to the WAL) runs after.
    store.ping().await.expect("ping");
    let after = std::fs::metadata(&wal).expect("wal").len();
    assert_eq!(after, 0, "the WAL was truncated (was {before} bytes)");
    store.close().await.expect("close");
}

#[tokio::test]
async fn a_schema_newer_than_this_build_is_refused() {
    let db = TempDb::new();
    let (store, url) = db.open(fast());
    store.close().await.expect("close");
    let status = migration_status(&url).expect("status");
    assert_eq!(status.current, SCHEMA_VERSION);
    assert!(status.pending.is_empty());

    let conn = Connection::open(file_of(&url)).expect("open");
    conn.execute(
        "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (?1, 'future', 0)",
        [SCHEMA_VERSION + 41],
    )
    .expect("bump");
    drop(conn);

    match SqliteStore::open(&url, fast()) {
        Err(StoreError::SchemaTooNew { found, known }) => {
            assert_eq!(found, SCHEMA_VERSION + 41);
            assert_eq!(known, SCHEMA_VERSION);
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    let status = migration_status(&url).expect("status");
    assert!(status.is_too_new());
}

#[tokio::test]
async fn migration_status_of_a_new_file_lists_everything_pending() {
    let db = TempDb::new();
    let status = migration_status(&db.url()).expect("status");
    assert_eq!(status.current, 0);
    assert_eq!(status.known, SCHEMA_VERSION);
    assert_eq!(status.pending.len() as i64, SCHEMA_VERSION);
    assert!(migration_status("postgres://x/y").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_operations_share_commits() {
    const N: usize = 400;
    let db = TempDb::new();
    // Durable commits: while one fsyncs, the next operations queue up.
    let (store, _url) = db.open(SqliteConfig::default());
    let store = Arc::new(store);
    let before = store.writer_stats();
    let handles: Vec<_> = (0..N)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.enqueue(new_task("gc"), T0).await })
        })
        .collect();
    for h in handles {
        h.await.expect("join").expect("enqueue");
    }
    let after = store.writer_stats();
    let ops = after.operations - before.operations;
    let commits = after.commits - before.commits;
    assert_eq!(ops, N as u64);
    assert!(
        commits < ops,
        "group commit should batch concurrent writes: {commits} commits for {ops} operations"
    );
    let page = store
        .list_tasks(TaskFilter {
            queue: Some("gc".into()),
            limit: 1000,
            ..TaskFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(page.items.len(), N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claimers_on_threads_get_disjoint_tasks() {
    let db = TempDb::new();
    let (store, _url) = db.open(fast());
    Check::ConcurrentClaims.run(Arc::new(store)).await;
}

#[tokio::test]
async fn a_corrupt_row_is_an_error_naming_the_task_not_a_panic() {
    let db = TempDb::new();
    let (store, url) = db.open(fast());
    let t = put(&store, new_task("c")).await;
    let u = put(&store, new_task("c")).await;
    let conn = Connection::open(file_of(&url)).expect("open");
    conn.execute(
        "UPDATE tasks SET headers = 'not json' WHERE id = ?1",
        [t.id()],
    )
    .expect("corrupt headers");
    conn.execute(
        "UPDATE tasks SET sig_alg = 'rot13', sig_key_id = 'k', sig = x'00' WHERE id = ?1",
        [u.id()],
    )
    .expect("corrupt signature");
    drop(conn);
    for id in [t.id(), u.id()] {
        let err = store.task(id).await.expect_err("corrupt");
        assert!(err.to_string().contains(id), "{err}");
        assert!(matches!(err, StoreError::Backend { .. }), "{err:?}");
    }
    // A claim that meets the corrupt row fails cleanly and changes nothing.
    let err = store
        .claim(claim_req(&["c"], "w", 10), T0)
        .await
        .expect_err("claim meets a corrupt row");
    assert!(err.to_string().contains("corrupt"), "{err}");
    let counts = store.counts().await.expect("counts");
    assert_eq!(
        counts[0].count(TaskState::Available),
        2,
        "claim rolled back"
    );
}

#[tokio::test]
async fn an_operation_that_fails_rolls_back_only_itself() {
    let db = TempDb::new();
    let (store, _url) = db.open(fast());
    let store = Arc::new(store);
    let existing = put(&*store, new_task("q")).await;
    // Many writes in flight together; the duplicates fail, the rest commit.
    let mut handles = Vec::new();
    for i in 0..100 {
        let store = store.clone();
        let mut t = new_task("q");
        if i % 10 == 0 {
            t.envelope.id = existing.id().to_owned();
        }
        handles.push(tokio::spawn(async move { (i, store.enqueue(t, T0).await) }));
    }
    for h in handles {
        let (i, r) = h.await.expect("join");
        if i % 10 == 0 {
            assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
        } else {
            r.expect("enqueue");
        }
    }
    let counts = store.counts().await.expect("counts");
    assert_eq!(counts[0].count(TaskState::Available), 91);
}

#[tokio::test]
async fn urls_and_bad_paths() {
    assert!(is_sqlite_url("sqlite://./signet.db"));
    assert!(!is_sqlite_url("postgres://localhost/signet"));
    let err = SqliteStore::open("postgres://localhost/x", fast()).expect_err("not sqlite");
    assert!(matches!(err, StoreError::Invalid(_)));
    let err = SqliteStore::open("sqlite:///nonexistent-dir-signet/x/y.db", fast())
        .expect_err("no such directory");
    assert!(err.to_string().contains("nonexistent-dir-signet"), "{err}");
}

#[tokio::test]
async fn heartbeat_on_a_closed_store_is_closed_and_reads_are_too() {
    let db = TempDb::new();
    let (store, _url) = db.open(fast());
    let t = put(&store, new_task("q")).await;
    store.close().await.expect("close");
    let lease = LeaseToken {
        task_id: t.id().to_owned(),
        worker_id: "w".into(),
        attempt: 1,
    };
    assert!(matches!(
        store.heartbeat(&lease, 10, T0).await,
        Err(StoreError::Closed)
    ));
    assert!(matches!(
        store.list_api_keys().await,
        Err(StoreError::Closed)
    ));
}

/// Keys stored before idempotency scopes (schema 2) move to the legacy
/// scope: the operator's own scopes (CLI, scheduler) still find them, an
/// API key does not, and a message's key stays a message's.
#[tokio::test]
async fn keys_from_before_scopes_are_legacy_and_only_the_operator_finds_them() {
    use signet_store::{IdempotencyScope, MessageId, TaskId};
    let db = TempDb::new();
    let (store, url) = db.open(fast());
    store.close().await.expect("close");
    // A fresh database at schema 2: the global key index, no scope columns.
    let path = file_of(&url);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    let conn = Connection::open(path).expect("open");
    conn.execute_batch(
        "CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, \
         name TEXT NOT NULL, applied_at_ms INTEGER NOT NULL)",
    )
    .expect("migrations table");
    for (version, name, sql) in [
        (1, "init", include_str!("../../migrations/0001_init.sql")),
        (
            2,
            "delivery",
            include_str!("../../migrations/0002_delivery.sql"),
        ),
    ] {
        conn.execute_batch(sql).expect("old schema");
        conn.execute(
            "INSERT INTO schema_migrations VALUES (?1, ?2, 0)",
            rusqlite::params![version, name],
        )
        .expect("record version");
    }
    let task_id = TaskId::generate().to_string();
    let msg_id = MessageId::generate().to_string();
    for (id, key) in [(&task_id, "schedule:sch_1:1"), (&msg_id, "order-9")] {
        conn.execute(
            "INSERT INTO tasks (id, queue, name, args, headers, created_at_ms, max_attempts, \
             state, priority, run_at_ms, idempotency_key, updated_at_ms) \
             VALUES (?1, 'q', 't', x'7b7d', '{}', ?2, 3, 'available', 0, ?2, ?3, ?2)",
            rusqlite::params![id, T0, key],
        )
        .expect("old row");
    }
    drop(conn);

    let store = SqliteStore::open(&url, fast()).expect("migrate");
    let conn = Connection::open(file_of(&url)).expect("open");
    let scoped: Vec<(String, String)> = conn
        .prepare("SELECT idempotency_scope, idempotency_kind FROM tasks ORDER BY idempotency_key")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()
        })
        .expect("read");
    assert_eq!(
        scoped,
        vec![
            ("legacy".to_owned(), "message".to_owned()),
            ("legacy".to_owned(), "task".to_owned()),
        ]
    );
    let again = |scope: IdempotencyScope, key: &str| {
        let mut t = new_task("q");
        t.idempotency_key = Some(key.to_owned());
        t.idempotency_scope = scope;
        t
    };
    // The scheduler after the upgrade: the due time fired before it is found.
    let out = store
        .enqueue(again(IdempotencyScope::System, "schedule:sch_1:1"), T0)
        .await
        .expect("system");
    assert!(!out.created);
    assert_eq!(out.task.id(), task_id);
    // An API key never gets a legacy row (it may be anyone's).
    let out = store
        .enqueue(
            again(IdempotencyScope::ApiKey("key_x".into()), "schedule:sch_1:1"),
            T0,
        )
        .await
        .expect("api key");
    assert!(out.created);
    // A task never gets the legacy message.
    let out = store
        .enqueue(again(IdempotencyScope::Local, "order-9"), T0)
        .await
        .expect("local task");
    assert!(out.created, "a task request must not get a message back");
    store.close().await.expect("close");
}
