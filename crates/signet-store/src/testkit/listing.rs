//! Reading many tasks at once: listing pages, counts per queue and state,
//! pending tasks per signing key.

use std::collections::BTreeSet;
use std::sync::Arc;

use signet_sign::Algorithm;

use super::{
    all_pages, assert_invalid, claim_n, claim_one, ids, make_dead, new_message, new_task, put,
    signed, T0,
};
use crate::{
    DeadReason, FailOutcome, KeyUsage, LeaseToken, Store, TaskFilter, TaskRow, TaskState,
    MESSAGE_QUEUE,
};

/// Task listing filters and pages newest first without duplicates or gaps.
pub(super) async fn list_tasks(store: Arc<dyn Store>) {
    let s = &*store;
    let mut all = Vec::new();
    for i in 0..23 {
        let q = if i % 3 == 0 { "beta" } else { "alpha" };
        let mut t = new_task(q);
        // Creation times out of id order: the listing goes by id alone
        // (Signet's ids are UUIDv7, so by creation for the ids it makes).
        t.envelope.created_at_ms = T0 + (i * 7 % 10);
        all.push(put(s, t).await);
    }
    // Make a few running.
    let running = claim_n(s, &["alpha"], 4, T0).await;
    let running_ids: BTreeSet<String> = ids(&running).into_iter().collect();

    let expect_all = newest_first(&all);
    let got = walk_tasks(
        s,
        TaskFilter {
            limit: 5,
            ..TaskFilter::default()
        },
    )
    .await;
    assert_eq!(
        got, expect_all,
        "all tasks, newest first by id, no gaps or duplicates"
    );

    let alpha: Vec<TaskRow> = all
        .iter()
        .filter(|r| r.queue() == "alpha")
        .cloned()
        .collect();
    let expect_alpha = newest_first(&alpha);
    let got = walk_tasks(
        s,
        TaskFilter {
            queue: Some("alpha".into()),
            limit: 4,
            ..TaskFilter::default()
        },
    )
    .await;
    assert_eq!(got, expect_alpha);

    let got = walk_tasks(
        s,
        TaskFilter {
            queue: Some("alpha".into()),
            state: Some(TaskState::Running),
            limit: 3,
            ..TaskFilter::default()
        },
    )
    .await;
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), running_ids);

    let got = walk_tasks(
        s,
        TaskFilter {
            state: Some(TaskState::Succeeded),
            limit: 3,
            ..TaskFilter::default()
        },
    )
    .await;
    assert!(got.is_empty());

    let page = s
        .list_tasks(TaskFilter::default())
        .await
        .expect("default limit");
    assert_eq!(page.items.len(), 23, "limit 0 means the default page");
    assert!(page.next_cursor.is_none());

    for bad in ["\u{1f600}not-a-cursor", "12:task_1", "nope"] {
        assert_invalid(
            &format!("cursor {bad:?}"),
            s.list_tasks(TaskFilter {
                cursor: Some(bad.into()),
                ..TaskFilter::default()
            })
            .await,
        );
    }
}

/// The ids of `rows` newest first: by id, descending.
fn newest_first(rows: &[TaskRow]) -> Vec<String> {
    let mut ids: Vec<String> = rows.iter().map(|r| r.id().to_owned()).collect();
    ids.sort();
    ids.reverse();
    ids
}

/// Listings leave Signet's own queue out unless it is named or asked for;
/// asked for, its rows (`msg_…` ids) follow the tasks, each newest first.
pub(super) async fn list_own_queue(store: Arc<dyn Store>) {
    let s = &*store;
    let mut tasks = Vec::new();
    let mut messages = Vec::new();
    // Messages (`msg_…` ids sort before `task_…`) made before, between and
    // after the tasks, one at the same time as a task.
    for i in 0..12i64 {
        if i % 3 == 0 {
            let mut t = new_task(if i % 2 == 0 { "a" } else { "b" });
            t.envelope.created_at_ms = T0 + i;
            tasks.push(put(s, t).await);
        } else {
            let mut m = new_message();
            m.envelope.created_at_ms = T0 + if i == 4 { 3 } else { i };
            messages.push(put(s, m).await);
        }
    }

    let first = s
        .list_tasks(TaskFilter::default())
        .await
        .expect("default listing");
    assert_eq!(
        ids(&first.items),
        newest_first(&tasks),
        "the default listing: the tasks only, newest first"
    );
    let got = walk_tasks(
        s,
        TaskFilter {
            limit: 1,
            ..TaskFilter::default()
        },
    )
    .await;
    assert_eq!(got, newest_first(&tasks), "paged one by one");

    let got = walk_tasks(
        s,
        TaskFilter {
            queue: Some(MESSAGE_QUEUE.into()),
            limit: 3,
            ..TaskFilter::default()
        },
    )
    .await;
    assert_eq!(got, newest_first(&messages), "naming the queue lists it");

    let everything: Vec<TaskRow> = tasks.iter().chain(&messages).cloned().collect();
    for limit in [1, 2, 5, 50] {
        let got = walk_tasks(
            s,
            TaskFilter {
                include_internal: true,
                limit,
                ..TaskFilter::default()
            },
        )
        .await;
        assert_eq!(
            got,
            newest_first(&everything),
            "include_internal: tasks then messages, newest first, pages of {limit}"
        );
    }

    // With a state: one task and two messages running.
    claim_n(s, &["a"], 1, T0).await;
    let running_msgs = claim_n(s, &[MESSAGE_QUEUE], 2, T0).await;
    let got = walk_tasks(
        s,
        TaskFilter {
            state: Some(TaskState::Running),
            limit: 1,
            ..TaskFilter::default()
        },
    )
    .await;
    assert_eq!(got.len(), 1, "running tasks, messages left out: {got:?}");
    assert!(got[0].starts_with("task_"), "{got:?}");
    let got = walk_tasks(
        s,
        TaskFilter {
            state: Some(TaskState::Running),
            include_internal: true,
            limit: 2,
            ..TaskFilter::default()
        },
    )
    .await;
    assert_eq!(got.len(), 3, "running tasks and messages: {got:?}");
    for m in &running_msgs {
        assert!(got.contains(&m.id().to_owned()), "{got:?}");
    }
}

/// Counts per queue and state.
pub(super) async fn counts(store: Arc<dyn Store>) {
    let s = &*store;
    assert!(s.counts().await.expect("counts").is_empty(), "empty store");
    for _ in 0..3 {
        put(s, new_task("a")).await;
    }
    let mut t = new_task("a");
    t.envelope.not_before_ms = Some(T0 + 1_000);
    put(s, t).await;
    put(s, new_task("b")).await;
    let claimed = claim_one(s, "a", "w", T0).await;
    s.complete(&LeaseToken::of(&claimed), None, T0)
        .await
        .expect("complete");
    claim_one(s, "a", "w", T0).await;
    let b = claim_one(s, "b", "w", T0).await;
    s.fail(
        &LeaseToken::of(&b),
        "e",
        FailOutcome::Dead {
            reason: DeadReason::PayloadInvalid,
            detail: String::new(),
        },
        T0,
    )
    .await
    .expect("fail");

    let counts = s.counts().await.expect("counts");
    let queues: Vec<&str> = counts.iter().map(|c| c.queue.as_str()).collect();
    assert_eq!(queues, vec!["a", "b"], "sorted by queue");
    let a = &counts[0];
    assert_eq!(a.count(TaskState::Available), 1);
    assert_eq!(a.count(TaskState::Scheduled), 1);
    assert_eq!(a.count(TaskState::Running), 1);
    assert_eq!(a.count(TaskState::Succeeded), 1);
    assert_eq!(a.count(TaskState::Dead), 0);
    assert!(a.counts.iter().all(|(_, n)| *n > 0), "no zero entries");
    assert_eq!(counts[1].counts, vec![(TaskState::Dead, 1)]);
}

/// Pending work per signing key, tasks and messages apart, final rows
/// excluded.
pub(super) async fn pending_by_key(store: Arc<dyn Store>) {
    let s = &*store;
    // Messages signed with "k-old" (one of them running) and one unsigned.
    for _ in 0..3 {
        put(s, signed(new_message(), Algorithm::HmacSha256, "k-old")).await;
    }
    claim_one(s, MESSAGE_QUEUE, "d", T0).await;
    put(s, new_message()).await;
    // A dead message signed with another key does not count.
    let sent = put(s, signed(new_message(), Algorithm::HmacSha256, "k-sent")).await;
    s.kill(sent.id(), DeadReason::MaxAttempts, "gave up", T0)
        .await
        .expect("kill");
    for _ in 0..2 {
        put(s, signed(new_task("q"), Algorithm::HmacSha256, "k-old")).await;
    }
    put(s, signed(new_task("q2"), Algorithm::Ed25519, "k-new")).await;
    put(s, new_task("q")).await;
    // Final tasks signed with other keys do not count.
    let done = signed(new_task("done"), Algorithm::HmacSha256, "k-gone");
    put(s, done).await;
    let c = claim_one(s, "done", "w", T0).await;
    s.complete(&LeaseToken::of(&c), None, T0)
        .await
        .expect("complete");
    make_dead(s, "q", DeadReason::Expired, T0, Some("k-dead")).await;
    // A running one still counts.
    put(s, signed(new_task("run"), Algorithm::Ed25519, "k-new")).await;
    claim_one(s, "run", "w", T0).await;

    let mut got = s.pending_by_key().await.expect("pending_by_key");
    got.sort_by(|a, b| a.key_id.cmp(&b.key_id));
    let want = vec![
        KeyUsage {
            key_id: None,
            alg: None,
            tasks: 1,
            messages: 1,
        },
        KeyUsage {
            key_id: Some("k-new".into()),
            alg: Some(Algorithm::Ed25519),
            tasks: 2,
            messages: 0,
        },
        KeyUsage {
            key_id: Some("k-old".into()),
            alg: Some(Algorithm::HmacSha256),
            tasks: 2,
            messages: 3,
        },
    ];
    assert_eq!(got, want);
}

/// The ids of every task `filter` lists, following the cursor page by page.
pub(super) async fn walk_tasks(s: &dyn Store, filter: TaskFilter) -> Vec<String> {
    let rows = all_pages(filter.limit, |cursor| {
        let page = TaskFilter {
            cursor,
            ..filter.clone()
        };
        async move { s.list_tasks(page).await.expect("list_tasks") }
    })
    .await;
    ids(&rows)
}

/// Recent activity: succeeded and failed attempts per queue and bucket,
/// signature refusals per bucket and outcome, nothing outside the window.
pub(super) async fn activity(store: Arc<dyn Store>) {
    use crate::{ActivityWindow, QueueActivity, SignatureFailures};
    let s = &*store;
    const BUCKET: i64 = 300_000;
    let window = ActivityWindow {
        since_ms: T0,
        bucket_ms: BUCKET,
        buckets: 12,
    };
    let empty = s
        .activity(window)
        .await
        .expect("activity of an empty store");
    assert!(empty.queues.is_empty() && empty.signature_failures.is_empty());

    for _ in 0..4 {
        put(s, new_task("a")).await;
    }
    put(s, new_task("b")).await;
    let waiting = put(s, new_task("c")).await;
    // Bucket 0: one success on a.
    let done = claim_one(s, "a", "w", T0 + 1_000).await;
    s.complete(&LeaseToken::of(&done), None, T0 + 1_000)
        .await
        .expect("complete");
    // Bucket 1: a retry on a.
    let retried = claim_one(s, "a", "w", T0 + BUCKET + 10).await;
    s.fail(
        &LeaseToken::of(&retried),
        "boom",
        FailOutcome::Retry {
            at_ms: T0 + 10 * BUCKET,
        },
        T0 + BUCKET + 10,
    )
    .await
    .expect("retry");
    // Bucket 2: b dies for its signature (a failed attempt too).
    let b = claim_one(s, "b", "w", T0 + 2 * BUCKET).await;
    s.fail(
        &LeaseToken::of(&b),
        "refused",
        FailOutcome::Dead {
            reason: DeadReason::SignatureInvalid,
            detail: "mismatch: the signature does not match the envelope".into(),
        },
        T0 + 2 * BUCKET,
    )
    .await
    .expect("dead");
    // Bucket 0: c refused before it ran (no attempt, one signature refusal).
    s.kill(
        waiting.id(),
        DeadReason::SignatureInvalid,
        "unknown-key: no key k9 in the ring",
        T0 + 5_000,
    )
    .await
    .expect("kill");
    // At the window's end: left out.
    let late = claim_one(s, "a", "w", T0 + 12 * BUCKET).await;
    s.complete(&LeaseToken::of(&late), None, T0 + 12 * BUCKET)
        .await
        .expect("complete late");

    let got = s.activity(window).await.expect("activity");
    let row = |queue: &str, bucket, succeeded, failed| QueueActivity {
        queue: queue.into(),
        bucket,
        succeeded,
        failed,
    };
    assert_eq!(
        got.queues,
        vec![row("a", 0, 1, 0), row("a", 1, 0, 1), row("b", 2, 0, 1)]
    );
    let sig = |bucket, outcome: &str| SignatureFailures {
        bucket,
        outcome: outcome.into(),
        count: 1,
    };
    assert_eq!(
        got.signature_failures,
        vec![sig(0, "unknown-key"), sig(2, "mismatch")]
    );

    // A later window sees only the late success.
    let later = s
        .activity(ActivityWindow {
            since_ms: T0 + 12 * BUCKET,
            ..window
        })
        .await
        .expect("later activity");
    assert_eq!(later.queues, vec![row("a", 0, 1, 0)]);
    assert!(later.signature_failures.is_empty());

    for bad in [
        ActivityWindow {
            bucket_ms: 0,
            ..window
        },
        ActivityWindow {
            buckets: 0,
            ..window
        },
        ActivityWindow {
            bucket_ms: crate::MAX_ACTIVITY_WINDOW_MS,
            buckets: 2,
            ..window
        },
    ] {
        assert_invalid("activity window", s.activity(bad).await);
    }
}
