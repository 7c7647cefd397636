//! Paused queues: claims skip them, on every kind of claim, until resumed.

use std::sync::Arc;

use super::{assert_invalid, claim_n, claim_one, ids, new_message, new_task, put, ACTOR, T0};
use crate::{LeaseToken, Store, TaskState, MESSAGE_QUEUE};

/// A paused queue gives no task to any claim (one queue, several queues,
/// the message queue) while other queues still do; running work is not
/// touched; once resumed its tasks are claimed as before.
pub(super) async fn pause_skips_claims(store: Arc<dyn Store>) {
    let s = &*store;
    let running = put(s, new_task("held")).await.id().to_owned();
    let claimed = claim_one(s, "held", "w-before", T0).await;
    assert_eq!(claimed.id(), running);
    let waiting = put(s, new_task("held")).await.id().to_owned();
    let other = put(s, new_task("free")).await.id().to_owned();
    let message = put(s, new_message()).await.id().to_owned();

    let pause = s
        .pause_queue("held", ACTOR, Some("deploying the consumer"), T0 + 1)
        .await
        .expect("pause held");
    assert_eq!(pause.queue, "held");
    assert_eq!(pause.paused_at_ms, T0 + 1);
    assert_eq!(pause.paused_by, ACTOR);
    assert_eq!(pause.reason.as_deref(), Some("deploying the consumer"));
    s.pause_queue(MESSAGE_QUEUE, ACTOR, None, T0 + 1)
        .await
        .expect("pause the message queue");

    assert!(
        claim_n(s, &["held"], 10, T0 + 2).await.is_empty(),
        "a claim on a paused queue took a task"
    );
    assert!(
        claim_n(s, &[MESSAGE_QUEUE], 10, T0 + 2).await.is_empty(),
        "a claim on the paused message queue took a message"
    );
    let both = claim_n(s, &["held", "free", MESSAGE_QUEUE], 10, T0 + 2).await;
    assert_eq!(
        ids(&both),
        vec![other.clone()],
        "a claim on several queues takes only from those not paused"
    );

    // The task running when the queue was paused finishes as usual.
    s.complete(&LeaseToken::of(&claimed), None, T0 + 3)
        .await
        .expect("complete a task of a paused queue");
    assert_eq!(super::get(s, &running).await.state, TaskState::Succeeded);
    assert_eq!(super::get(s, &waiting).await.state, TaskState::Available);

    let ended = s.resume_queue("held").await.expect("resume held");
    assert_eq!(ended, Some(pause), "resume returns the pause it ended");
    let got = claim_n(s, &["held", MESSAGE_QUEUE], 10, T0 + 4).await;
    assert_eq!(
        ids(&got),
        vec![waiting],
        "resumed queue claimed again, message queue still paused"
    );
    s.resume_queue(MESSAGE_QUEUE)
        .await
        .expect("resume messages");
    assert_eq!(
        ids(&claim_n(s, &[MESSAGE_QUEUE], 10, T0 + 5).await),
        vec![message]
    );
}

/// Pausing a paused queue keeps the first pause; resuming one that runs
/// is not an error; pauses list by name, empty queues included; bad
/// queue names, actors and reasons are `Invalid` and pause nothing.
pub(super) async fn pause_idempotent(store: Arc<dyn Store>) {
    let s = &*store;
    assert!(s.paused_queues().await.expect("list").is_empty());
    let first = s
        .pause_queue("zeta", "alice", Some("first"), T0)
        .await
        .expect("pause");
    let again = s
        .pause_queue("zeta", "bob", Some("second"), T0 + 10)
        .await
        .expect("pause again");
    assert_eq!(again, first, "pausing twice keeps the first pause");
    s.pause_queue("alpha", "alice", None, T0 + 20)
        .await
        .expect("pause a queue that holds no task");
    let listed = s.paused_queues().await.expect("list");
    let names: Vec<&str> = listed.iter().map(|p| p.queue.as_str()).collect();
    assert_eq!(names, ["alpha", "zeta"], "paused queues by name");
    assert_eq!(listed[0].reason, None);

    assert_eq!(s.resume_queue("nothing-here").await.expect("resume"), None);
    assert!(s.resume_queue("zeta").await.expect("resume").is_some());
    assert_eq!(s.resume_queue("zeta").await.expect("resume twice"), None);

    assert_invalid(
        "bad queue name",
        s.pause_queue("bad queue", ACTOR, None, T0).await,
    );
    assert_invalid("empty actor", s.pause_queue("q", "", None, T0).await);
    assert_invalid(
        "reason with a newline",
        s.pause_queue("q", ACTOR, Some("a\nb"), T0).await,
    );
    assert_invalid(
        "reason too long",
        s.pause_queue(
            "q",
            ACTOR,
            Some(&"r".repeat(crate::rules::MAX_PAUSE_REASON_LEN + 1)),
            T0,
        )
        .await,
    );
    let names: Vec<String> = s
        .paused_queues()
        .await
        .expect("list")
        .into_iter()
        .map(|p| p.queue)
        .collect();
    assert_eq!(names, ["alpha"], "refused pauses stored nothing");
}
