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
    DeadReason, FailOutcome, KeyUsage, LeaseToken, Store, TaskFilter, TaskState, MESSAGE_QUEUE,
};

/// Task listing filters and pages without duplicates or gaps.
pub(super) async fn list_tasks(store: Arc<dyn Store>) {
    let s = &*store;
    let mut all = Vec::new();
    for i in 0..23 {
        let q = if i % 3 == 0 { "beta" } else { "alpha" };
        all.push(put(s, new_task(q)).await);
    }
    // Make a few running.
    let running = claim_n(s, &["alpha"], 4, T0).await;
    let running_ids: BTreeSet<String> = ids(&running).into_iter().collect();

    let mut expect_all: Vec<String> = ids(&all);
    expect_all.sort();
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
        "all tasks, id order, no gaps or duplicates"
    );

    let mut expect_alpha: Vec<String> = all
        .iter()
        .filter(|r| r.queue() == "alpha")
        .map(|r| r.id().to_owned())
        .collect();
    expect_alpha.sort();
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

    assert_invalid(
        "garbage cursor",
        s.list_tasks(TaskFilter {
            cursor: Some("\u{1f600}not-a-cursor".into()),
            ..TaskFilter::default()
        })
        .await,
    );
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
