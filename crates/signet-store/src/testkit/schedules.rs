//! Schedules: the named-record walk, which schedules are due, and the
//! compare-and-set that fires each due time once.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::named::{self, Plan};
use super::{new_schedule, T0};
use crate::{CatchUp, ScheduleId, ScheduleRecord, Store, TargetId};

named::named_record!(
    ScheduleRecord, "schedule",
    fresh(name) => new_schedule(name, Some(T0)),
    id: ScheduleId,
    calls: create_schedule, schedule, schedule_by_name, list_schedules, update_schedule,
        delete_schedule,
);

/// Schedules: create, read by id and name, list by name, update, delete;
/// names are unique.
pub(super) async fn schedules(store: Arc<dyn Store>) {
    let mut a = new_schedule("nightly-report", Some(T0 + 3_600_000));
    a.cron = "0 0 3 * * Mon-Fri".into();
    a.timezone = "Europe/Berlin".into();
    a.payload = br#"{"message":{"url":"https://example.com/h","body":"\u00e9"}}"#.to_vec();
    a.catch_up = CatchUp::Once;
    a.last_fired_at_ms = Some(T0 - 86_400_000);
    let mut b = new_schedule("cleanup", None);
    b.paused = true;
    b.created_at_ms = T0 + 1;
    b.updated_at_ms = T0 + 2;
    let refused = vec![
        ("target id", {
            let mut x = new_schedule("x1", Some(T0));
            x.id = TargetId::generate().to_string();
            x
        }),
        ("empty name", new_schedule("", Some(T0))),
        ("name with a slash", new_schedule("a/b", Some(T0))),
        ("blank cron", {
            let mut x = new_schedule("x2", Some(T0));
            x.cron = "  ".into();
            x
        }),
        ("empty time zone", {
            let mut x = new_schedule("x3", Some(T0));
            x.timezone.clear();
            x
        }),
        ("empty payload", {
            let mut x = new_schedule("x4", Some(T0));
            x.payload.clear();
            x
        }),
    ];
    let changed = ScheduleRecord {
        name: "nightly-report-v2".into(),
        cron: "@hourly".into(),
        timezone: "America/New_York".into(),
        payload: br#"{"task":{"name":"x"}}"#.to_vec(),
        catch_up: CatchUp::Skip,
        paused: true,
        next_fire_at_ms: None,
        last_fired_at_ms: None,
        updated_at_ms: T0 + 100,
        ..a.clone()
    };
    let plan = Plan {
        a,
        b,
        refused,
        changed,
        same_name: |stored| ScheduleRecord {
            paused: false,
            next_fire_at_ms: Some(T0 + 60_000),
            last_fired_at_ms: Some(T0),
            updated_at_ms: T0 + 300,
            ..stored.clone()
        },
        bad_update: ("update with an empty payload", |stored| ScheduleRecord {
            payload: Vec::new(),
            ..stored.clone()
        }),
    };
    named::walk(&*store, plan).await;
}

/// Due schedules: not paused, due by now, earliest first, limited.
pub(super) async fn due_schedules(store: Arc<dyn Store>) {
    let s = &*store;
    let due = |now: i64, limit: usize| async move {
        s.due_schedules(now, limit)
            .await
            .unwrap_or_else(|e| panic!("due_schedules({now}, {limit}): {e}"))
            .into_iter()
            .map(|x| x.name)
            .collect::<Vec<_>>()
    };
    assert!(due(T0, 10).await.is_empty(), "no schedules");
    let plan = [
        ("s1", Some(T0 - 100), false),
        ("s2", Some(T0), false),
        ("s3", Some(T0 + 1), false),
        ("s4-paused", Some(T0 - 500), true),
        ("s5-done", None, false),
        ("s6", Some(T0 - 300), false),
    ];
    let mut by_name = BTreeMap::new();
    for (name, next, paused) in plan {
        let mut x = new_schedule(name, next);
        x.paused = paused;
        s.create_schedule(x.clone()).await.expect("create");
        by_name.insert(name, x);
    }
    assert_eq!(
        due(T0, 10).await,
        vec!["s6", "s1", "s2"],
        "earliest first, due time inclusive"
    );
    assert_eq!(due(T0, 2).await, vec!["s6", "s1"], "limit");
    assert!(due(T0, 0).await.is_empty(), "limit 0");
    assert_eq!(due(T0 - 300, 10).await, vec!["s6"]);
    assert_eq!(due(T0 + 1, 10).await, vec!["s6", "s1", "s2", "s3"]);
    let full = s.due_schedules(T0, 1).await.expect("due");
    assert_eq!(full, vec![by_name["s6"].clone()], "whole records");

    // Pausing and resuming through update.
    let mut s6 = by_name["s6"].clone();
    s6.paused = true;
    s.update_schedule(s6.clone()).await.expect("pause");
    assert_eq!(due(T0, 10).await, vec!["s1", "s2"]);
    let mut s4 = by_name["s4-paused"].clone();
    s4.paused = false;
    s.update_schedule(s4).await.expect("resume");
    assert_eq!(due(T0, 10).await, vec!["s4-paused", "s1", "s2"]);
}

/// Advancing a schedule is a compare-and-set on its due time.
pub(super) async fn advance_schedule(store: Arc<dyn Store>) {
    let s = &*store;
    let x = new_schedule("every-minute", Some(T0));
    s.create_schedule(x.clone()).await.expect("create");
    let read = |id: String| async move {
        s.schedule(&id)
            .await
            .expect("schedule")
            .expect("schedule exists")
    };

    assert!(
        s.advance_schedule(&x.id, T0, Some(T0 + 60_000), T0 + 5)
            .await
            .expect("advance"),
        "the due time it holds moves"
    );
    let r = read(x.id.clone()).await;
    assert_eq!(r.next_fire_at_ms, Some(T0 + 60_000));
    assert_eq!(r.last_fired_at_ms, Some(T0));
    assert_eq!(
        (
            &r.name,
            &r.cron,
            &r.timezone,
            &r.payload,
            r.paused,
            r.catch_up,
            r.created_at_ms
        ),
        (
            &x.name,
            &x.cron,
            &x.timezone,
            &x.payload,
            x.paused,
            x.catch_up,
            x.created_at_ms
        ),
        "advance changes only the fire times"
    );

    // Another node that fired the same due time does not move it again.
    assert!(!s
        .advance_schedule(&x.id, T0, Some(T0 + 120_000), T0 + 6)
        .await
        .expect("advance again"));
    let r = read(x.id.clone()).await;
    assert_eq!(r.next_fire_at_ms, Some(T0 + 60_000));
    assert_eq!(r.last_fired_at_ms, Some(T0));
    assert!(!s
        .advance_schedule(&x.id, T0 + 30_000, Some(T0 + 90_000), T0 + 7)
        .await
        .expect("advance from a time it does not hold"));
    assert!(s
        .due_schedules(T0 + 59_999, 10)
        .await
        .expect("due")
        .is_empty());
    assert_eq!(
        s.due_schedules(T0 + 60_000, 10).await.expect("due").len(),
        1
    );

    // Many nodes at once: exactly one moves it.
    let mut handles = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        let id = x.id.clone();
        handles.push(tokio::spawn(async move {
            store
                .advance_schedule(&id, T0 + 60_000, Some(T0 + 120_000), T0 + 60_000 + i)
                .await
                .expect("advance")
        }));
    }
    let mut moved = 0;
    for h in handles {
        if h.await.expect("advance panicked") {
            moved += 1;
        }
    }
    assert_eq!(moved, 1, "exactly one concurrent advance wins");
    assert_eq!(read(x.id.clone()).await.next_fire_at_ms, Some(T0 + 120_000));

    // No next time: the schedule is never due again.
    assert!(s
        .advance_schedule(&x.id, T0 + 120_000, None, T0 + 120_001)
        .await
        .expect("advance to the end"));
    let r = read(x.id.clone()).await;
    assert_eq!(r.next_fire_at_ms, None);
    assert_eq!(r.last_fired_at_ms, Some(T0 + 120_000));
    assert!(s.due_schedules(i64::MAX, 10).await.expect("due").is_empty());
    assert!(!s
        .advance_schedule(&x.id, T0 + 120_000, Some(T0 + 180_000), T0 + 120_002)
        .await
        .expect("advance a finished schedule"));
    assert_eq!(read(x.id.clone()).await.next_fire_at_ms, None);
}
