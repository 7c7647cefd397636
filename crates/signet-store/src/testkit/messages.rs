//! Messages (task rows on the message queue). Their delivery attempts are
//! in `history.rs`.

use std::sync::Arc;

use super::dead_letters::walk_dead;
use super::listing::walk_tasks;
use super::{assert_same_signed, claim_n, get, ids, new_message, new_task, put, T0};
use crate::{
    DeadFilter, DeadReason, FailOutcome, LeaseToken, Store, TaskFilter, TaskState, MESSAGE_QUEUE,
};

/// Messages are task rows with `msg_` ids on the message queue.
pub(super) async fn messages(store: Arc<dyn Store>) {
    let s = &*store;
    let mut msgs = Vec::new();
    for _ in 0..5 {
        let m = new_message();
        let row = put(s, m.clone()).await;
        assert_same_signed("message", &row, &m);
        assert_eq!(row.queue(), MESSAGE_QUEUE);
        assert_eq!(row.state, TaskState::Available);
        msgs.push(m);
    }
    let task = put(s, new_task("default")).await;
    let row = get(s, &msgs[0].envelope.id).await;
    assert_same_signed("message read back", &row, &msgs[0]);

    // Listing pages through `msg_` ids (cursors name message ids too);
    // all made at T0, so newest first is id order, descending.
    let mut want: Vec<String> = msgs.iter().map(|m| m.envelope.id.clone()).collect();
    want.sort();
    want.reverse();
    let got = walk_tasks(
        s,
        TaskFilter {
            queue: Some(MESSAGE_QUEUE.into()),
            limit: 2,
            ..TaskFilter::default()
        },
    )
    .await;
    assert_eq!(got, want, "messages listed newest first, paged");
    let all = s
        .list_tasks(TaskFilter {
            include_internal: true,
            ..TaskFilter::default()
        })
        .await
        .expect("list all");
    assert_eq!(all.items.len(), 6, "messages and tasks list together");
    assert!(ids(&all.items).contains(&task.id().to_owned()));

    // Claimed, dead-lettered and paged like tasks.
    let claimed = claim_n(s, &[MESSAGE_QUEUE], 10, T0).await;
    assert_eq!(claimed.len(), 5);
    for (i, r) in claimed.iter().enumerate() {
        s.fail(
            &LeaseToken::of(r),
            "502 Bad Gateway",
            FailOutcome::Dead {
                reason: DeadReason::MaxAttempts,
                detail: "3 of 3".into(),
            },
            T0 + i as i64,
        )
        .await
        .expect("fail message");
    }
    let dead = walk_dead(
        s,
        DeadFilter {
            queue: Some(MESSAGE_QUEUE.into()),
            limit: 2,
            ..DeadFilter::default()
        },
    )
    .await;
    let mut newest_first = ids(&claimed);
    newest_first.reverse();
    assert_eq!(dead, newest_first, "dead messages newest first, paged");
}
