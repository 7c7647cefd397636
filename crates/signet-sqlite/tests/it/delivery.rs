//! What the SQLite store adds to the delivery seam: the upgrade from schema
//! 1, and waking this process's idle workers when work arrives.

use std::pin::pin;
use std::time::Duration;

use rusqlite::{params, Connection};
use signet_sqlite::{SqliteStore, SCHEMA_VERSION};
use signet_store::testkit::{assert_wakes, assert_wakes_from_mark, claim_one, new_task, T0};
use signet_store::{DeadReason, DeadSelector, FailOutcome, LeaseToken, Store, MESSAGE_QUEUE};

use crate::{fast, TempDb};

#[tokio::test]
async fn upgrading_from_schema_1_owes_no_callbacks_for_tasks_finished_before() {
    let db = TempDb::new();
    let url = db.url();
    let path = url.strip_prefix("sqlite://").expect("sqlite url");
    {
        let conn = Connection::open(path).expect("open");
        conn.execute_batch(include_str!("../../migrations/0001_init.sql"))
            .expect("schema 1");
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, \
             name TEXT NOT NULL, applied_at_ms INTEGER NOT NULL); \
             INSERT INTO schema_migrations VALUES (1, 'init', 0);",
        )
        .expect("version 1");
        for (id, state, finished) in [
            ("task_old1", "succeeded", Some(T0)),
            ("task_old2", "dead", Some(T0 + 1)),
            ("task_waiting", "available", None),
        ] {
            conn.execute(
                "INSERT INTO tasks (id, queue, name, args, headers, created_at_ms, max_attempts, \
                 callback_url, state, priority, run_at_ms, updated_at_ms, finished_at_ms) \
                 VALUES (?1, 'q', 'n', x'7b7d', '{}', ?2, 3, 'https://example.com/cb', ?3, 0, ?2, ?2, ?4)",
                params![id, T0, state, finished],
            )
            .expect("insert a schema-1 task");
        }
    }
    let store = SqliteStore::open(&url, fast()).expect("open and migrate");
    assert_eq!(store.schema().current, SCHEMA_VERSION);
    assert!(
        store
            .pending_callbacks(10)
            .await
            .expect("pending")
            .is_empty(),
        "tasks finished before the upgrade never owed a callback"
    );
    assert_eq!(store.prune(T0 + 10, 10).await.expect("prune"), 1);
    // A task still waiting at the upgrade owes its callback when it finishes.
    let row = claim_one(&store, "q", "w", T0).await;
    assert_eq!(row.id(), "task_waiting");
    store
        .complete(&LeaseToken::of(&row), None, T0 + 20)
        .await
        .expect("complete");
    let pending = store.pending_callbacks(10).await.expect("pending");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id(), "task_waiting");
    store.close().await.expect("close");
}

/// Work that arrives while a claim runs (after the consumer's mark, before
/// its wait) ends the wait at once. In memory, where no watcher of the
/// file could wake the wait later and hide a lost signal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_signalled_between_the_mark_and_the_wait_is_not_missed() {
    let store = SqliteStore::open("sqlite::memory:", fast()).expect("open");
    assert_wakes_from_mark(&store, &["q"], "an enqueue", async {
        store.enqueue(new_task("q"), T0).await.expect("enqueue");
    })
    .await;
    store.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_retry_release_rescue_and_replay_wake_waiting_workers() {
    let db = TempDb::new();
    let (store, _url) = db.open(fast());
    let s = &store;

    assert_wakes(s, &["other", "q"], "enqueue", async {
        s.enqueue(new_task("q"), T0).await.expect("enqueue");
    })
    .await;

    let row = claim_one(s, "q", "w", T0).await;
    assert_wakes(s, &["q"], "release", async {
        s.release(&LeaseToken::of(&row), T0).await.expect("release");
    })
    .await;

    let row = claim_one(s, "q", "w", T0).await;
    assert_wakes(s, &["q"], "retry due now", async {
        s.fail(
            &LeaseToken::of(&row),
            "try again",
            FailOutcome::Retry { at_ms: T0 },
            T0,
        )
        .await
        .expect("fail");
    })
    .await;

    let row = claim_one(s, "q", "w", T0).await;
    assert_wakes(s, &["q"], "rescue", async {
        let rescued = s.rescue_expired(T0 + 30_000, 10).await.expect("rescue");
        assert_eq!(rescued, vec![row.id().to_owned()]);
    })
    .await;

    let row = claim_one(s, "q", "w", T0 + 30_000).await;
    s.fail(
        &LeaseToken::of(&row),
        "bad",
        FailOutcome::Dead {
            reason: DeadReason::PayloadInvalid,
            detail: "bad".into(),
        },
        T0 + 30_000,
    )
    .await
    .expect("dead");
    assert_wakes(s, &["q"], "replay", async {
        let ids = s
            .replay_dead(
                DeadSelector::Ids(vec![row.id().to_owned()]),
                "test",
                T0 + 40_000,
            )
            .await
            .expect("replay");
        assert_eq!(ids.len(), 1);
    })
    .await;

    // A resume, a retry now and a resend make work due too.
    s.pause_queue("q", "test", None, T0 + 40_000)
        .await
        .expect("pause");
    assert_wakes(s, &["q"], "resume", async {
        s.resume_queue("q").await.expect("resume");
    })
    .await;
    let row = claim_one(s, "q", "w", T0 + 40_000).await;
    s.fail(
        &LeaseToken::of(&row),
        "later",
        FailOutcome::Retry {
            at_ms: T0 + 3_600_000,
        },
        T0 + 40_000,
    )
    .await
    .expect("fail");
    assert_wakes(s, &["q"], "retry now", async {
        s.retry_now(row.id(), "test", T0 + 40_001)
            .await
            .expect("retry now");
    })
    .await;
    let m = signet_store::testkit::new_message();
    s.enqueue(m, T0).await.expect("message");
    let row = claim_one(s, MESSAGE_QUEUE, "d", T0 + 40_001).await;
    s.complete(&LeaseToken::of(&row), None, T0 + 40_002)
        .await
        .expect("complete");
    assert_wakes(s, &[MESSAGE_QUEUE], "resend", async {
        s.resend(row.id(), "test", T0 + 40_003)
            .await
            .expect("resend");
    })
    .await;
    store.close().await.expect("close");
}

/// A resume through one handle on the file wakes a waiter on another (the
/// data_version watch), as a resume on another process would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_by_another_handle_wakes_waiters_of_its_queue() {
    let db = TempDb::new();
    let (waiter, url) = db.open(fast());
    let writer = SqliteStore::open(&url, fast()).expect("a second handle on the file");
    // A first wait starts the waiter's watch of the file, which takes its
    // baseline before the writes below (a watch started by the wait of
    // `assert_wakes` could take it after the resume and miss it).
    let queues = ["q".to_owned()];
    waiter
        .wait_for_work(
            &queues,
            waiter.work_mark(&queues),
            Duration::from_millis(400),
        )
        .await;
    writer
        .pause_queue("q", "test", None, T0)
        .await
        .expect("pause");
    writer.enqueue(new_task("q"), T0).await.expect("enqueue");
    assert!(
        waiter
            .claim(signet_store::testkit::claim_req(&["q"], "w", 1), T0)
            .await
            .expect("claim")
            .is_empty(),
        "the pause holds for the other handle"
    );
    assert_wakes(&waiter, &["q"], "a resume by another handle", async {
        writer.resume_queue("q").await.expect("resume");
    })
    .await;
    let row = claim_one(&waiter, "q", "w", T0).await;
    assert_eq!(row.queue(), "q");
    writer.close().await.expect("close writer");
    waiter.close().await.expect("close waiter");
}

/// A write by another process while a claim runs (between the mark and
/// the wait) is seen: the mark puts its queue under the file's watch, even
/// a queue never waited on before among many others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_by_another_handle_between_the_mark_and_the_wait_is_not_missed() {
    let db = TempDb::new();
    let (waiter, url) = db.open(fast());
    let writer = SqliteStore::open(&url, fast()).expect("a second handle on the file");
    // Another wait keeps the watch of the file running throughout.
    let busy = ["busy".to_owned()];
    let mut keeper =
        pin!(waiter.wait_for_work(&busy, waiter.work_mark(&busy), Duration::from_secs(3600)));
    tokio::select! {
        biased;
        () = &mut keeper => panic!("the keeper's wait returned with nothing to do"),
        () = tokio::time::sleep(Duration::from_millis(50)) => {}
    }
    // Queue names from many claims, more than the store keeps watching.
    for n in 0..3000 {
        let _ = waiter.work_mark(&[format!("junk-{n}")]);
    }
    let queues = ["q".to_owned()];
    let mark = waiter.work_mark(&queues);
    assert!(waiter
        .claim(signet_store::testkit::claim_req(&["q"], "w", 1), T0)
        .await
        .expect("claim")
        .is_empty());
    writer.enqueue(new_task("q"), T0).await.expect("enqueue");
    // The watch polls every few milliseconds: let it see the write before
    // the wait starts, as it would during a slow claim.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    tokio::select! {
        () = waiter.wait_for_work(&queues, mark, Duration::from_secs(3600)) => {}
        () = &mut keeper => panic!("the keeper's wait returned with nothing to do"),
        () = tokio::time::sleep(Duration::from_secs(20)) => {
            panic!("the write between the mark and the wait was missed")
        }
    }
    assert!(started.elapsed() < Duration::from_secs(20));
    claim_one(&waiter, "q", "w", T0).await;
    writer.close().await.expect("close writer");
    waiter.close().await.expect("close waiter");
}

/// Two handles on one file share no in-process signal, like two processes:
/// a write through one wakes a waiter on the other (through `PRAGMA
/// data_version`), and only for queues with work due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_by_another_handle_on_the_file_wakes_waiters_of_its_queue() {
    let db = TempDb::new();
    let (waiter, url) = db.open(fast());
    let writer = SqliteStore::open(&url, fast()).expect("a second handle on the file");

    // Work for another queue wakes nobody waiting on "q": the wait runs to
    // its timeout.
    let queues = vec!["q".to_owned()];
    let short = Duration::from_millis(400);
    let started = std::time::Instant::now();
    let mut wait = pin!(waiter.wait_for_work(&queues, waiter.work_mark(&queues), short));
    tokio::select! {
        biased;
        () = &mut wait => panic!("wait_for_work returned before any work arrived"),
        () = std::future::ready(()) => {}
    }
    writer
        .enqueue(new_task("other"), T0)
        .await
        .expect("enqueue elsewhere");
    wait.await;
    assert!(
        started.elapsed() >= short,
        "woken by work on another queue after {:?}",
        started.elapsed()
    );

    // Work on "q" written through the other handle wakes the waiter long
    // before its (hour-long) timeout.
    assert_wakes(&waiter, &["q"], "a write by another handle", async {
        writer.enqueue(new_task("q"), T0).await.expect("enqueue");
    })
    .await;
    let row = claim_one(&waiter, "q", "w", T0).await;
    assert_eq!(row.queue(), "q");
    writer.close().await.expect("close writer");
    waiter.close().await.expect("close waiter");
}
