//! The queue overview and pausing through the runtime's functions: which
//! queues are listed (with tasks, bound or paused; Signet's own only when
//! asked), what a pause shows, and the refusals of bad names and reasons.

use signet_runtime::{pause_queue, queue_overview, queue_overview_of, resume_queue};
use signet_store::testkit::{new_message, new_task, put};
use signet_store::{PushBinding, TaskState, MESSAGE_QUEUE};

use crate::support::Db;

const T0: i64 = 1_700_000_000_000;

fn names(o: &[signet_runtime::QueueOverview]) -> Vec<&str> {
    o.iter().map(|q| q.queue()).collect()
}

#[tokio::test]
async fn the_overview_lists_queues_with_tasks_bound_or_paused() {
    let db = Db::new();
    let s = db.store.as_ref();
    put(s, new_task("mail")).await;
    put(s, new_task("mail")).await;
    put(s, new_message()).await;
    s.put_push_binding(PushBinding {
        queue: "pushed".into(),
        url: "https://example.com/push".into(),
        target_id: signet_store::TargetId::generate().to_string(),
        timeout_ms: 30_000,
        concurrency: 10,
        require_signed_response: false,
        created_at_ms: T0,
        updated_at_ms: T0,
    })
    .await
    .expect("bind");
    let pause = pause_queue(s, "idle", "ops", Some("maintenance"), T0)
        .await
        .expect("pause");
    assert_eq!(pause.reason.as_deref(), Some("maintenance"));
    pause_queue(s, MESSAGE_QUEUE, "ops", None, T0)
        .await
        .expect("pause messages");

    let all = queue_overview(s, None, false).await.expect("overview");
    assert_eq!(names(&all), ["idle", "mail", "pushed"]);
    assert_eq!(all[1].counts.count(TaskState::Available), 2);
    assert!(all[0].pause.is_some() && all[1].pause.is_none());
    assert!(all[2].push.is_some());
    let with_own = queue_overview(s, None, true).await.expect("overview");
    assert_eq!(names(&with_own), ["idle", "mail", "pushed", MESSAGE_QUEUE]);
    assert!(with_own[3].pause.is_some(), "the message queue is paused");
    let only = queue_overview(s, Some("mail"), false).await.expect("only");
    assert_eq!(names(&only), ["mail"]);

    let none = queue_overview_of(s, "never-used").await.expect("of");
    assert_eq!(none.queue(), "never-used");
    assert!(none.pause.is_none() && none.push.is_none());
    assert_eq!(none.counts.counts, vec![]);

    let ended = resume_queue(s, "idle", "ops").await.expect("resume");
    assert_eq!(ended, Some(pause));
    assert_eq!(resume_queue(s, "idle", "ops").await.expect("again"), None);
    let all = queue_overview(s, None, false).await.expect("overview");
    assert_eq!(
        names(&all),
        ["mail", "pushed"],
        "a resumed empty queue leaves"
    );
}

#[tokio::test]
async fn pausing_refuses_bad_names_and_reasons_naming_the_field() {
    let db = Db::new();
    let s = db.store.as_ref();
    let e = pause_queue(s, "no spaces", "ops", None, T0)
        .await
        .expect_err("bad name");
    assert!(e.to_string().starts_with("queue:"), "{e}");
    let e = pause_queue(s, "q", "ops", Some(""), T0)
        .await
        .expect_err("empty reason");
    assert!(e.to_string().starts_with("reason:"), "{e}");
    let e = resume_queue(s, "", "ops").await.expect_err("empty name");
    assert!(e.to_string().starts_with("queue:"), "{e}");
    let e = queue_overview(s, Some("a/b"), false)
        .await
        .expect_err("bad filter");
    assert!(e.to_string().starts_with("queue:"), "{e}");
    assert!(s.paused_queues().await.expect("list").is_empty());
}
