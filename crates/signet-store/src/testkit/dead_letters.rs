//! Dead letters: listed newest first, replayed unchanged, purged.

use std::sync::Arc;

use signet_sign::Algorithm;

use super::{
    all_pages, assert_invalid, assert_same_signed, claim_n, claim_one, get, ids, make_dead,
    new_task, put, signed, total, ACTOR, T0,
};
use crate::{
    DeadFilter, DeadReason, DeadSelector, FailOutcome, LeaseToken, Store, TaskId, TaskRow,
    TaskState,
};

/// Dead letters list newest first, filtered and paged.
pub(super) async fn list_dead(store: Arc<dyn Store>) {
    let s = &*store;
    let mut dead = Vec::new();
    for i in 0..12i64 {
        let q = if i % 2 == 0 { "even" } else { "odd" };
        let reason = if i % 3 == 0 {
            DeadReason::Expired
        } else {
            DeadReason::PayloadInvalid
        };
        // Two letters share each timestamp to exercise tie-breaking.
        let at = T0 + 1_000 * (i / 2);
        let t = make_dead(s, q, reason, at, None).await;
        dead.push((t.envelope.id, q, reason, at));
    }
    put(s, new_task("even")).await; // not dead

    // What each filter lists: the letters it keeps, newest first.
    let (since, until) = (T0 + 1_000, T0 + 4_000);
    type Keeps = Box<dyn Fn(&(String, &str, DeadReason, i64)) -> bool>;
    let cases: [(&str, DeadFilter, Keeps); 4] = [
        (
            "newest first, paged",
            DeadFilter {
                limit: 5,
                ..DeadFilter::default()
            },
            Box::new(|_| true),
        ),
        (
            "by queue",
            DeadFilter {
                queue: Some("odd".into()),
                limit: 2,
                ..DeadFilter::default()
            },
            Box::new(|d| d.1 == "odd"),
        ),
        (
            "by reason",
            DeadFilter {
                reason: Some(DeadReason::Expired),
                limit: 1,
                ..DeadFilter::default()
            },
            Box::new(|d| d.2 == DeadReason::Expired),
        ),
        (
            "since is inclusive, until exclusive",
            DeadFilter {
                since_ms: Some(since),
                until_ms: Some(until),
                queue: Some("even".into()),
                limit: 2,
                ..DeadFilter::default()
            },
            Box::new(move |d| d.1 == "even" && d.3 >= since && d.3 < until),
        ),
    ];
    for (what, filter, keeps) in cases {
        let mut want: Vec<_> = dead.iter().filter(|d| keeps(d)).collect();
        want.sort_by(|a, b| b.3.cmp(&a.3).then(b.0.cmp(&a.0)));
        let want: Vec<String> = want.into_iter().map(|d| d.0.clone()).collect();
        assert_eq!(walk_dead(s, filter).await, want, "{what}");
    }

    let first = s.list_dead(DeadFilter::default()).await.expect("list_dead");
    let top = &first.items[0];
    assert!(top.dead_reason.is_some());
    assert!(top.dead_detail.is_some());
    assert_invalid(
        "garbage cursor",
        s.list_dead(DeadFilter {
            cursor: Some("nope".into()),
            ..DeadFilter::default()
        })
        .await,
    );
}

/// Replay resets attempts and keeps the envelope and signature identical.
pub(super) async fn replay(store: Arc<dyn Store>) {
    let s = &*store;
    let mut t = signed(new_task("default"), Algorithm::Ed25519, "ed-1");
    t.envelope.args = vec![0xde, 0xad, 0xbe, 0xef];
    t.envelope.max_attempts = 1;
    put(s, t.clone()).await;
    let row = claim_one(s, "default", "w", T0).await;
    s.fail(
        &LeaseToken::of(&row),
        "boom",
        FailOutcome::Dead {
            reason: DeadReason::MaxAttempts,
            detail: "1 of 1".into(),
        },
        T0 + 1,
    )
    .await
    .expect("fail");
    let other_dead = make_dead(s, "default", DeadReason::Expired, T0 + 2, Some("k")).await;
    let alive = put(s, new_task("default")).await;

    let replayed = s
        .replay_dead(
            DeadSelector::Ids(vec![
                t.envelope.id.clone(),
                alive.id().to_owned(),
                TaskId::generate().to_string(),
            ]),
            ACTOR,
            T0 + 100,
        )
        .await
        .expect("replay by id");
    assert_eq!(
        replayed,
        vec![t.envelope.id.clone()],
        "only dead letters are replayed"
    );
    let r = get(s, &t.envelope.id).await;
    assert_eq!(r.state, TaskState::Available);
    assert_eq!(r.attempt, 0);
    assert_eq!(r.dead_reason, None);
    assert_eq!(r.dead_detail, None);
    assert_eq!(r.finished_at_ms, None);
    assert!(r.run_at_ms <= T0 + 100);
    assert_same_signed("replayed", &r, &t);
    assert_eq!(get(s, &other_dead.envelope.id).await.state, TaskState::Dead);

    // It runs again with attempt 1.
    let again = claim_n(s, &["default"], 10, T0 + 100).await;
    let again: Vec<&TaskRow> = again.iter().filter(|r| r.id() == t.envelope.id).collect();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 1);
    assert_same_signed("claimed after replay", again[0], &t);

    // By filter.
    make_dead(s, "q2", DeadReason::PayloadInvalid, T0 + 3, None).await;
    let n = s
        .replay_dead(
            DeadSelector::Filter(DeadFilter {
                reason: Some(DeadReason::Expired),
                limit: 1,
                ..DeadFilter::default()
            }),
            ACTOR,
            T0 + 200,
        )
        .await
        .expect("replay by filter");
    assert_eq!(n, vec![other_dead.envelope.id.clone()]);
    let r = get(s, &other_dead.envelope.id).await;
    assert_eq!(r.state, TaskState::Available);
    assert_same_signed("replayed by filter", &r, &other_dead);
    let left = s.list_dead(DeadFilter::default()).await.expect("list");
    assert_eq!(left.items.len(), 1, "the payload-invalid letter stays dead");
}

/// Purge deletes dead letters only.
pub(super) async fn purge(store: Arc<dyn Store>) {
    let s = &*store;
    let a = make_dead(s, "default", DeadReason::Expired, T0, None).await;
    let b = make_dead(s, "default", DeadReason::UnknownTask, T0, None).await;
    let c = make_dead(s, "other", DeadReason::UnknownTask, T0, None).await;
    let alive = put(s, new_task("default")).await;
    let purged = s
        .purge_dead(DeadSelector::Ids(vec![
            a.envelope.id.clone(),
            alive.id().to_owned(),
        ]))
        .await
        .expect("purge ids");
    assert_eq!(purged, vec![a.envelope.id.clone()]);
    assert!(s.task(&a.envelope.id).await.expect("task").is_none());
    assert!(s.task(alive.id()).await.expect("task").is_some());
    let purged = s
        .purge_dead(DeadSelector::Filter(DeadFilter {
            queue: Some("other".into()),
            ..DeadFilter::default()
        }))
        .await
        .expect("purge filter");
    assert_eq!(purged, vec![c.envelope.id.clone()]);
    assert!(s.task(&b.envelope.id).await.expect("task").is_some());
    let purged = s
        .purge_dead(DeadSelector::Filter(DeadFilter::default()))
        .await
        .expect("purge all");
    assert_eq!(purged, vec![b.envelope.id.clone()]);
    assert_eq!(total(s).await, 1);
}

/// The ids of every dead letter `filter` lists, following the cursor page
/// by page; each row must be dead.
pub(super) async fn walk_dead(s: &dyn Store, filter: DeadFilter) -> Vec<String> {
    let rows = all_pages(filter.limit, |cursor| {
        let page = DeadFilter {
            cursor,
            ..filter.clone()
        };
        async move { s.list_dead(page).await.expect("list_dead") }
    })
    .await;
    for r in &rows {
        assert_eq!(r.state, TaskState::Dead, "{} listed as dead", r.id());
    }
    ids(&rows)
}
