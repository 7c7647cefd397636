//! Migrations: idempotent under concurrent callers, status without
//! changes, schemas newer than this build refused.

use signet_postgres::{migration_status, PostgresOptions, PostgresStore, SCHEMA_VERSION};
use signet_store::{Store, StoreError};

use crate::{database_url, drop_schema, fresh_schema, test_options, Admin};

async fn applied_versions(store: &PostgresStore, url: &str) -> Vec<i64> {
    let admin = Admin::connect(url).await;
    let rows = admin
        .query(
            &format!(
                "SELECT version FROM {}.schema_migrations ORDER BY version",
                store.schema_name()
            ),
            &[],
        )
        .await
        .expect("read schema_migrations");
    admin.close().await;
    rows.iter().map(|r| r.get(0)).collect()
}

/// The migrations of versions 1 to 10, `(name, sql)`, to build a schema
/// as an earlier build left it.
const EARLIER: [(&str, &str); 10] = [
    ("init", include_str!("../../migrations/0001_init.sql")),
    (
        "delivery",
        include_str!("../../migrations/0002_delivery.sql"),
    ),
    ("history", include_str!("../../migrations/0003_history.sql")),
    (
        "idempotency_scope",
        include_str!("../../migrations/0004_idempotency_scope.sql"),
    ),
    (
        "newest_first",
        include_str!("../../migrations/0005_newest_first.sql"),
    ),
    (
        "listing_by_id",
        include_str!("../../migrations/0006_listing_by_id.sql"),
    ),
    (
        "push_bindings",
        include_str!("../../migrations/0007_push_bindings.sql"),
    ),
    (
        "steering",
        include_str!("../../migrations/0008_steering.sql"),
    ),
    (
        "target_limits",
        include_str!("../../migrations/0009_target_limits.sql"),
    ),
    (
        "ended_sessions",
        include_str!("../../migrations/0010_ended_sessions.sql"),
    ),
];

/// Creates `schema` on `admin`'s connection (and makes it the search path)
/// as the migrations `(name, sql)` numbered 1, 2, … left it.
async fn schema_at(admin: &Admin, schema: &str, migrations: &[(&str, &str)]) {
    admin
        .batch_execute(&format!(
            "CREATE SCHEMA {schema}; SET search_path TO {schema};
             CREATE TABLE schema_migrations (version BIGINT NOT NULL PRIMARY KEY,
                 name TEXT NOT NULL, applied_at_ms BIGINT NOT NULL);"
        ))
        .await
        .expect("schema");
    for (version, (name, sql)) in (1_i64..).zip(migrations) {
        admin.batch_execute(sql).await.expect("old migration");
        admin
            .execute(
                "INSERT INTO schema_migrations VALUES ($1, $2, 0)",
                &[&version, name],
            )
            .await
            .expect("record version");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_apply_each_version_once() {
    let Some(url) = database_url("concurrent_migrations_apply_each_version_once") else {
        return;
    };
    let schema = fresh_schema("mig");
    let before = migration_status(&url, &test_options(&schema))
        .await
        .expect("status of a schema that does not exist yet");
    assert_eq!(before.current, 0);
    assert_eq!(before.known, SCHEMA_VERSION);
    assert_eq!(before.pending.len() as i64, SCHEMA_VERSION);

    // Six nodes start at once on an empty schema.
    let mut handles = Vec::new();
    for _ in 0..6 {
        let url = url.clone();
        let options = test_options(&schema);
        handles.push(tokio::spawn(async move {
            PostgresStore::connect(&url, options).await
        }));
    }
    let mut stores = Vec::new();
    for h in handles {
        stores.push(h.await.expect("connect task").expect("connect migrates"));
    }
    let versions = applied_versions(&stores[0], &url).await;
    assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());

    let after = migration_status(&url, &test_options(&schema))
        .await
        .expect("status");
    assert_eq!(after.current, SCHEMA_VERSION);
    assert!(after.pending.is_empty());
    let again = stores[0].migrate().await.expect("migrate again");
    assert!(again.applied.is_empty(), "{again:?}");
    assert_eq!((again.from, again.to), (SCHEMA_VERSION, SCHEMA_VERSION));
    stores[1].ping().await.expect("the store works");
    for s in &stores {
        s.close().await.expect("close");
    }
    drop_schema(&url, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_migrate_a_schema_behind_is_refused() {
    let Some(url) = database_url("without_migrate_a_schema_behind_is_refused") else {
        return;
    };
    let schema = fresh_schema("behind");
    let options = PostgresOptions {
        migrate: false,
        ..test_options(&schema)
    };
    match PostgresStore::connect(&url, options).await {
        Err(StoreError::Invalid(msg)) => assert!(msg.contains("signet migrate"), "{msg}"),
        other => panic!("expected Invalid asking for a migration, got {other:?}"),
    }
    let store = PostgresStore::connect(&url, test_options(&schema))
        .await
        .expect("connect and migrate");
    let report = store.migrate().await.expect("migrate");
    assert!(report.applied.is_empty());
    store.close().await.expect("close");
    let options = PostgresOptions {
        migrate: false,
        ..test_options(&schema)
    };
    let store = PostgresStore::connect(&url, options)
        .await
        .expect("an up-to-date schema opens without migrating");
    store.danger_drop_schema().await.expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_newer_than_this_build_is_refused() {
    let Some(url) = database_url("a_schema_newer_than_this_build_is_refused") else {
        return;
    };
    let schema = fresh_schema("new");
    let store = PostgresStore::connect(&url, test_options(&schema))
        .await
        .expect("connect");
    let admin = Admin::connect(&url).await;
    admin
        .execute(
            &format!(
                "INSERT INTO {schema}.schema_migrations (version, name, applied_at_ms) \
                 VALUES ($1, 'from-the-future', 0)"
            ),
            &[&(SCHEMA_VERSION + 1)],
        )
        .await
        .expect("pretend a newer build migrated");
    admin.close().await;

    let too_new = |r: Result<_, StoreError>| match r {
        Err(StoreError::SchemaTooNew { found, known }) => {
            assert_eq!((found, known), (SCHEMA_VERSION + 1, SCHEMA_VERSION))
        }
        Err(e) => panic!("expected SchemaTooNew, got {e}"),
        Ok(_) => panic!("expected SchemaTooNew, got Ok"),
    };
    too_new(
        PostgresStore::connect(&url, test_options(&schema))
            .await
            .map(drop),
    );
    too_new(store.migrate().await.map(drop));
    let status = migration_status(&url, &test_options(&schema))
        .await
        .expect("status still reads");
    assert!(status.is_too_new());
    assert!(status.pending.is_empty());
    store.danger_drop_schema().await.expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_urls_and_options_are_refused_without_leaking_the_password() {
    for url in [
        "postgres://me:hunter2@127.0.0.1:notaport/db",
        "mysql://me:hunter2@h/db",
        "postgres://me:hunter2@h/db?sslmode=verify-full",
        "postgres://me:hunter2@h/db?sslmode=require&sslrootcert=/nonexistent/ca.pem",
    ] {
        let e = PostgresStore::connect(url, PostgresOptions::default())
            .await
            .expect_err(url);
        assert!(matches!(e, StoreError::Invalid(_)), "{url}: {e:?}");
        assert!(!format!("{e} {e:?}").contains("hunter2"), "{e:?}");
    }
    let e = PostgresStore::connect(
        "postgres://me@127.0.0.1/db",
        PostgresOptions::default().with_schema("Bad Schema"),
    )
    .await
    .expect_err("bad schema");
    assert!(matches!(e, StoreError::Invalid(_)), "{e:?}");
    // Nothing listens on port 1: a connection error, retryable, no password.
    let e = PostgresStore::connect(
        "postgres://me:hunter2@127.0.0.1:1/db?connect_timeout=2",
        PostgresOptions::default(),
    )
    .await
    .expect_err("nothing listens there");
    assert!(e.is_retryable(), "{e:?}");
    assert!(!format!("{e} {e:?}").contains("hunter2"), "{e:?}");
}

/// A schema left at version 2 by an older build: its delivery attempts
/// become history events in order (version 3), and its idempotency keys
/// move to the `legacy` scope (version 4), where the scheduler and the CLI
/// still find them and an API key never does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_2_schema_keeps_its_attempts_and_keys() {
    use signet_store::testkit::new_task;
    use signet_store::{IdempotencyScope, MessageId, TaskId};

    let Some(url) = database_url("a_version_2_schema_keeps_its_attempts_and_keys") else {
        return;
    };
    let schema = fresh_schema("v2");
    let msg = MessageId::generate().to_string();
    let task = TaskId::generate().to_string();
    let admin = Admin::connect(&url).await;
    schema_at(&admin, &schema, &EARLIER[..2]).await;
    admin
        .batch_execute(&format!(
            "INSERT INTO tasks (id, queue, name, args, headers, created_at_ms, max_attempts,
                 state, priority, attempt, run_at_ms, updated_at_ms, finished_at_ms)
             VALUES ('{msg}', 'signet:messages', 'signet.http', '\\x7b7d', '{{}}', 1, 2,
                 'dead', 0, 2, 1, 9, 9);
             INSERT INTO attempts VALUES ('{msg}', 2, 500, 7, NULL, 'refused', ''::bytea);
             INSERT INTO attempts VALUES ('{msg}', 1, 100, 5, 503, NULL, 'busy'::bytea);
             INSERT INTO tasks (id, queue, name, args, headers, created_at_ms, max_attempts,
                 state, priority, run_at_ms, idempotency_key, updated_at_ms)
             VALUES ('{task}', 'q', 't', '\\x7b7d', '{{}}', 1, 3, 'available', 0, 1,
                 'schedule:sch_1:1', 1);"
        ))
        .await
        .expect("version 2 rows");
    admin.close().await;

    let store = PostgresStore::connect(&url, test_options(&schema))
        .await
        .expect("connect migrates from version 2");
    assert_eq!(
        applied_versions(&store, &url).await,
        (1..=SCHEMA_VERSION).collect::<Vec<_>>()
    );
    let history = store.history(&msg).await.expect("history");
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

    let again = |scope: IdempotencyScope| {
        let mut t = new_task("q");
        t.idempotency_key = Some("schedule:sch_1:1".to_owned());
        t.idempotency_scope = scope;
        t
    };
    let found = store
        .enqueue(again(IdempotencyScope::System), 10)
        .await
        .expect("the scheduler after the upgrade");
    assert!(!found.created);
    assert_eq!(found.task.id(), task);
    let other = store
        .enqueue(again(IdempotencyScope::ApiKey("key_x".into())), 10)
        .await
        .expect("an API key");
    assert!(other.created, "an API key never gets a legacy row");
    assert_ne!(other.task.id(), task);
    store.close().await.expect("close");
    drop_schema(&url, &schema).await;
}

/// A message delivered under version 10 has its attempt as an event row;
/// after version 11 its history reads that attempt once, a resend keeps
/// it, and a message delivered after the upgrade keeps its attempt on its
/// row (no event row) with the same history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_11_reads_earlier_deliveries_once_and_keeps_new_ones_on_the_row() {
    use signet_store::testkit::{claim_one, new_message, put, T0};
    use signet_store::{Event, HttpExchange, LeaseToken, MessageId, Settlement, MESSAGE_QUEUE};

    let Some(url) = database_url("version_11_reads_earlier_deliveries_once") else {
        return;
    };
    let schema = fresh_schema("v10");
    let msg = MessageId::generate().to_string();
    let admin = Admin::connect(&url).await;
    schema_at(&admin, &schema, &EARLIER[..10]).await;
    // As version 10 wrote a delivered message: the row, then its event.
    admin
        .batch_execute(&format!(
            "INSERT INTO tasks (id, queue, name, args, headers, created_at_ms, max_attempts,
                 state, priority, attempt, run_at_ms, updated_at_ms, finished_at_ms,
                 attempt_started_at_ms, event_seq)
             VALUES ('{msg}', 'signet:messages', 'signet.http', '\\x7b7d', '{{}}', 1, 3,
                 'succeeded', 0, 1, 1, 9, 9, 5, 1);
             INSERT INTO task_events (task_id, seq, kind, at_ms, attempt, worker,
                 started_at_ms, outcome, status, latency_ms, response_body)
             VALUES ('{msg}', 1, 'attempt', 9, 1, 'd1', 5, 'succeeded', 204, 4, 'ok'::bytea);"
        ))
        .await
        .expect("version 10 rows");

    let store = PostgresStore::connect(&url, test_options(&schema))
        .await
        .expect("connect migrates from version 10");
    assert_eq!(
        applied_versions(&store, &url).await,
        (1..=SCHEMA_VERSION).collect::<Vec<_>>()
    );
    let exchange = HttpExchange {
        status: Some(204),
        latency_ms: 4,
        response_body: b"ok".to_vec(),
    };
    let before = store.history(&msg).await.expect("history");
    assert_eq!(before.len(), 1, "read once: {before:#?}");
    let Event::Attempt(a) = &before[0].event else {
        panic!("an attempt: {before:#?}");
    };
    assert_eq!((a.number, &a.http), (1, &Some(exchange.clone())));

    // Delivered under version 11: no event row, the same history.
    let s: &dyn Store = &store;
    let id = put(s, new_message()).await.id().to_owned();
    let r = claim_one(s, MESSAGE_QUEUE, "d2", T0 + 1).await;
    assert_eq!(r.id(), id);
    s.settle_delivery(
        &LeaseToken::of(&r),
        exchange.clone(),
        Settlement::Delivered { result: None },
        T0 + 2,
    )
    .await
    .expect("settle delivered");
    let admin = Admin::connect(&url).await;
    let events: i64 = admin
        .query_one(
            &format!("SELECT COUNT(*) FROM {schema}.task_events WHERE task_id = $1"),
            &[&id],
        )
        .await
        .expect("count events")
        .get(0);
    admin.close().await;
    assert_eq!(events, 0, "the attempt is kept on the row");
    let after = store.history(&id).await.expect("history");
    assert_eq!(after.len(), 1, "{after:#?}");
    let Event::Attempt(a) = &after[0].event else {
        panic!("an attempt: {after:#?}");
    };
    assert_eq!((a.number, &a.http), (1, &Some(exchange)));

    // A resend of the earlier delivery keeps its one event.
    store.resend(&msg, "cli", T0 + 3).await.expect("resend");
    let resent = store.history(&msg).await.expect("history");
    assert_eq!(
        resent.len(),
        2,
        "the attempt is not written twice: {resent:#?}"
    );
    assert_eq!(resent[0], before[0]);
    store.close().await.expect("close");
    drop_schema(&url, &schema).await;
}
