//! Messages (task rows on the message queue) and their delivery attempts.

use std::sync::Arc;

use super::dead_letters::walk_dead;
use super::listing::walk_tasks;
use super::{
    assert_invalid, assert_not_found, assert_same_signed, claim_n, get, ids, new_message, new_task,
    put, T0,
};
use crate::delivery::MAX_ATTEMPT_ERROR_LEN;
use crate::{
    AttemptRecord, DeadFilter, DeadReason, DeadSelector, FailOutcome, LeaseToken, MessageId, Store,
    TaskFilter, TaskState, MAX_ATTEMPT_BODY_BYTES, MESSAGE_QUEUE,
};

/// A successful attempt record (200, `ok`, 42 ms) of `task_id`.
fn attempt_of(task_id: &str, attempt: u32, started_at_ms: i64) -> AttemptRecord {
    AttemptRecord {
        task_id: task_id.to_owned(),
        attempt,
        started_at_ms,
        latency_ms: 42,
        status: Some(200),
        error: None,
        response_body: b"ok".to_vec(),
    }
}

/// The attempts the store holds for `id`.
async fn attempts_of(s: &dyn Store, id: &str) -> Vec<AttemptRecord> {
    s.attempts(id)
        .await
        .unwrap_or_else(|e| panic!("attempts({id}): {e}"))
}

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

    // Listing pages through `msg_` ids (cursors are message ids too).
    let mut want: Vec<String> = msgs.iter().map(|m| m.envelope.id.clone()).collect();
    want.sort();
    let got = walk_tasks(
        s,
        TaskFilter {
            queue: Some(MESSAGE_QUEUE.into()),
            limit: 2,
            ..TaskFilter::default()
        },
    )
    .await;
    assert_eq!(got, want, "messages listed in id order, paged");
    let all = s.list_tasks(TaskFilter::default()).await.expect("list all");
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

/// Delivery attempts: recorded, replaced, listed in order, deleted with
/// their task.
pub(super) async fn attempts(store: Arc<dyn Store>) {
    let s = &*store;
    let m = put(s, new_message()).await.id().to_owned();
    assert!(attempts_of(s, &m).await.is_empty(), "no attempts yet");

    let a1 = AttemptRecord {
        status: Some(503),
        response_body: b"busy, retry later".to_vec(),
        ..attempt_of(&m, 1, T0)
    };
    let a2 = AttemptRecord {
        status: None,
        error: Some("connect timeout after 10s \u{e9}".into()),
        response_body: Vec::new(),
        latency_ms: 10_000,
        ..attempt_of(&m, 2, T0 + 5_000)
    };
    let a3 = AttemptRecord {
        response_body: (0..MAX_ATTEMPT_BODY_BYTES)
            .map(|i| (i % 256) as u8)
            .collect(),
        latency_ms: 0,
        ..attempt_of(&m, 3, T0 + 305_000)
    };
    // Recorded out of order, listed by attempt.
    for a in [&a3, &a1, &a2] {
        s.record_attempt(a.clone())
            .await
            .unwrap_or_else(|e| panic!("record attempt {}: {e}", a.attempt));
    }
    assert_eq!(
        attempts_of(s, &m).await,
        vec![a1.clone(), a2.clone(), a3.clone()],
        "oldest first, byte for byte"
    );

    // The same attempt again replaces the first record.
    let a2b = AttemptRecord {
        status: Some(500),
        error: None,
        response_body: b"oops".to_vec(),
        latency_ms: 12,
        ..a2.clone()
    };
    s.record_attempt(a2b.clone()).await.expect("record again");
    assert_eq!(
        attempts_of(s, &m).await,
        vec![a1.clone(), a2b.clone(), a3.clone()]
    );

    // Other messages keep their own.
    let other = put(s, new_message()).await.id().to_owned();
    let o1 = attempt_of(&other, 1, T0 + 1);
    s.record_attempt(o1.clone()).await.expect("record other");
    assert_eq!(attempts_of(s, &other).await, vec![o1.clone()]);
    assert_eq!(attempts_of(s, &m).await.len(), 3);

    // Unknown tasks and invalid records store nothing.
    let unknown = MessageId::generate().to_string();
    assert_not_found(
        "attempt of an unknown message",
        s.record_attempt(attempt_of(&unknown, 1, T0)).await,
    );
    assert!(attempts_of(s, &unknown).await.is_empty());
    let bad = [
        (
            "attempt 0",
            AttemptRecord {
                attempt: 0,
                ..a1.clone()
            },
        ),
        (
            "body over the limit",
            AttemptRecord {
                attempt: 9,
                response_body: vec![b'x'; MAX_ATTEMPT_BODY_BYTES + 1],
                ..a1.clone()
            },
        ),
        (
            "error text over the limit",
            AttemptRecord {
                attempt: 9,
                error: Some("e".repeat(MAX_ATTEMPT_ERROR_LEN + 1)),
                ..a1.clone()
            },
        ),
        (
            "negative latency",
            AttemptRecord {
                attempt: 9,
                latency_ms: -1,
                ..a1.clone()
            },
        ),
    ];
    for (what, record) in bad {
        assert_invalid(what, s.record_attempt(record).await);
    }
    assert_eq!(
        attempts_of(s, &m).await,
        vec![a1, a2b, a3],
        "refused records change nothing"
    );

    // Pruned with their task; other messages keep theirs.
    let claimed = claim_n(s, &[MESSAGE_QUEUE], 10, T0).await;
    assert_eq!(claimed.len(), 2);
    let row = claimed
        .iter()
        .find(|r| r.id() == m)
        .expect("the first message was claimed");
    s.complete(&LeaseToken::of(row), None, T0 + 400_000)
        .await
        .expect("complete");
    assert_eq!(s.prune(T0 + 500_000, 10).await.expect("prune"), 1);
    assert!(s.task(&m).await.expect("task").is_none());
    assert!(
        attempts_of(s, &m).await.is_empty(),
        "prune deletes the attempts of the tasks it deletes"
    );
    assert_not_found(
        "attempt of a pruned message",
        s.record_attempt(attempt_of(&m, 4, T0 + 600_000)).await,
    );
    assert_eq!(attempts_of(s, &other).await, vec![o1.clone()]);

    // Purged with their dead letter.
    let d = put(s, new_message()).await.id().to_owned();
    s.record_attempt(attempt_of(&d, 1, T0))
        .await
        .expect("record");
    s.record_attempt(attempt_of(&d, 2, T0 + 1))
        .await
        .expect("record");
    s.kill(&d, DeadReason::TargetRefused, "refused", T0 + 2)
        .await
        .expect("kill");
    assert_eq!(
        attempts_of(s, &d).await.len(),
        2,
        "dead letters keep attempts"
    );
    let purged = s
        .purge_dead(DeadSelector::Ids(vec![d.clone()]))
        .await
        .expect("purge");
    assert_eq!(purged, vec![d.clone()]);
    assert!(
        attempts_of(s, &d).await.is_empty(),
        "purge deletes the attempts of the dead letters it deletes"
    );
    assert_eq!(attempts_of(s, &other).await, vec![o1]);
}
