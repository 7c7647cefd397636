//! Targets: the named-record walk of [`named`], with what a target holds.

use std::sync::Arc;

use super::named::{self, Plan};
use super::{claim_n, new_message, new_target, new_task, put, T0};
use crate::{
    DeadReason, FailOutcome, LeaseToken, ScheduleId, Store, TargetId, TargetRecord, MESSAGE_QUEUE,
};

named::named_record!(
    TargetRecord, "target",
    fresh(name) => new_target(name),
    id: TargetId,
    calls: create_target, target, target_by_name, list_targets, update_target, delete_target,
);

/// Targets: create, read by id and name, list by name, update, delete;
/// names are unique.
pub(super) async fn targets(store: Arc<dyn Store>) {
    let mut a = new_target("zeta-billing");
    a.url_prefix = Some("https://billing.example.com/hooks/".into());
    a.sealed_secrets = (0..=255u8).collect();
    a.secret_fingerprint = "whsec_ab12".into();
    a.rate_limit_per_s = Some(50);
    a.max_concurrency = Some(4);
    a.https_only = true;
    let mut b = new_target("alpha.orders:v2");
    b.created_at_ms = T0 + 1;
    b.updated_at_ms = T0 + 1;
    let refused = vec![
        ("schedule id", {
            let mut t = new_target("x1");
            t.id = ScheduleId::generate().to_string();
            t
        }),
        ("empty name", new_target("")),
        ("name with a space", new_target("two words")),
        ("empty sealed secrets", {
            let mut t = new_target("x2");
            t.sealed_secrets.clear();
            t
        }),
        ("rate limit 0", {
            let mut t = new_target("x3");
            t.rate_limit_per_s = Some(0);
            t
        }),
        ("concurrency 0", {
            let mut t = new_target("x4");
            t.max_concurrency = Some(0);
            t
        }),
    ];
    let changed = TargetRecord {
        name: "zeta-billing-eu".into(),
        url_prefix: None,
        sealed_secrets: vec![9; 48],
        secret_fingerprint: "whsec_cd34".into(),
        rate_limit_per_s: None,
        max_concurrency: Some(1),
        https_only: false,
        updated_at_ms: T0 + 100,
        ..a.clone()
    };
    let plan = Plan {
        a,
        b,
        refused,
        changed,
        same_name: |stored| TargetRecord {
            https_only: true,
            updated_at_ms: T0 + 300,
            ..stored.clone()
        },
        bad_update: ("update with empty sealed secrets", |stored| TargetRecord {
            sealed_secrets: Vec::new(),
            ..stored.clone()
        }),
    };
    named::walk(&*store, plan).await;
}

/// Messages not finished that name a target are counted for it: waiting,
/// scheduled, running and retryable ones; not finished ones, not those
/// naming another target, not tasks on other queues.
pub(super) async fn pending_messages_for_target(store: Arc<dyn Store>) {
    let s = &*store;
    let t = new_target("orders");
    let other = new_target("billing");
    s.create_target(t.clone()).await.expect("create target");
    s.create_target(other.clone()).await.expect("create target");
    let count = |id: String| async move {
        s.pending_messages_for_target(&id)
            .await
            .unwrap_or_else(|e| panic!("pending_messages_for_target({id}): {e}"))
    };
    assert_eq!(count(t.id.clone()).await, 0, "no messages yet");

    let for_target = |target: &TargetRecord| {
        let mut m = new_message();
        m.envelope.args = format!(
            r#"{{"url":"https://example.com/h","method":"POST","target":"{}"}}"#,
            target.id
        )
        .into_bytes();
        m
    };
    // Four that count: available, scheduled, running, retryable.
    let available = for_target(&t);
    put(s, available.clone()).await;
    let mut scheduled = for_target(&t);
    scheduled.envelope.not_before_ms = Some(T0 + 3_600_000);
    put(s, scheduled).await;
    let running = for_target(&t);
    let retryable = for_target(&t);
    // Three that do not: a dead one, one for the other target, a task
    // whose args look the same on another queue.
    let dead = for_target(&t);
    put(s, for_target(&other)).await;
    let mut task = new_task("default");
    task.envelope.args = format!(r#"{{"target":"{}"}}"#, t.id).into_bytes();
    put(s, task).await;
    assert_eq!(count(t.id.clone()).await, 2);

    for m in [&running, &retryable, &dead] {
        put(s, (*m).clone()).await;
    }
    let claimed = claim_n(s, &[MESSAGE_QUEUE], 10, T0).await;
    for row in &claimed {
        let id = row.id();
        if id == retryable.envelope.id {
            s.fail(
                &LeaseToken::of(row),
                "503",
                FailOutcome::Retry { at_ms: T0 + 60_000 },
                T0,
            )
            .await
            .expect("retry");
        } else if id == dead.envelope.id {
            s.fail(
                &LeaseToken::of(row),
                "410",
                FailOutcome::Dead {
                    reason: DeadReason::TargetRefused,
                    detail: "gone".into(),
                },
                T0,
            )
            .await
            .expect("dead");
        } else if id == available.envelope.id {
            s.complete(&LeaseToken::of(row), None, T0)
                .await
                .expect("complete");
        }
    }
    // Running, retryable and scheduled remain; available was delivered.
    assert_eq!(count(t.id.clone()).await, 3);
    assert_eq!(count(other.id.clone()).await, 1);
    assert_eq!(count(TargetId::generate().to_string()).await, 0);
}

/// Targets page by id without gaps or repeats; swapping sealed secrets is
/// a compare-and-swap on the bytes read, changing nothing else.
pub(super) async fn target_secrets_swap(store: Arc<dyn Store>) {
    let mut made = Vec::new();
    for i in 0..7 {
        let mut t = new_target(&format!("page-{i}"));
        t.sealed_secrets = vec![1, 2, 3, i];
        store.create_target(t.clone()).await.unwrap();
        made.push(t);
    }
    made.sort_by(|a, b| a.id.cmp(&b.id));
    let mut walked = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.targets_after(after.as_deref(), 3).await.unwrap();
        assert!(
            page.len() <= 3,
            "a page of {} targets, asked for 3",
            page.len()
        );
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        walked.extend(page);
    }
    assert_eq!(
        walked, made,
        "the walk by id saw every target once, in id order"
    );
    assert!(store
        .targets_after(Some(&made[6].id), 3)
        .await
        .unwrap()
        .is_empty());

    let t = &made[2];
    // The bytes read: swapped, with the fingerprint, and nothing else.
    assert!(store
        .swap_target_secrets(&t.id, &t.sealed_secrets, &[9, 9, 9], "hmac:0123")
        .await
        .unwrap());
    let after_swap = store.target(&t.id).await.unwrap().unwrap();
    assert_eq!(after_swap.sealed_secrets, [9, 9, 9]);
    assert_eq!(after_swap.secret_fingerprint, "hmac:0123");
    let mut rest = after_swap.clone();
    rest.sealed_secrets = t.sealed_secrets.clone();
    rest.secret_fingerprint = t.secret_fingerprint.clone();
    assert_eq!(&rest, t, "a swap changes the secrets and fingerprint only");
    // Stale bytes (changed since they were read): refused, nothing written.
    assert!(!store
        .swap_target_secrets(&t.id, &t.sealed_secrets, &[7, 7], "hmac:4567")
        .await
        .unwrap());
    assert_eq!(store.target(&t.id).await.unwrap().unwrap(), after_swap);
    // A target that is gone: refused.
    store.delete_target(&made[3].id).await.unwrap();
    assert!(!store
        .swap_target_secrets(&made[3].id, &made[3].sealed_secrets, &[7], "x")
        .await
        .unwrap());
    // Bad arguments are invalid, never a panic.
    assert!(store
        .swap_target_secrets(&made[4].id, &made[4].sealed_secrets, &[], "x")
        .await
        .is_err());
    assert!(store
        .swap_target_secrets("sch_nope", &[1], &[2], "x")
        .await
        .is_err());
    assert_eq!(store.target(&made[4].id).await.unwrap().unwrap(), made[4]);
}
