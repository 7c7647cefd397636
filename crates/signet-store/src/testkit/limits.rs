//! Per-target limits shared by every process: send times from a rate
//! bucket, leased concurrency slots.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{assert_invalid, new_target, T0};
use crate::{RateTake, SlotLease, SlotTake, Store, TargetId};

/// Microseconds in a millisecond.
const US: i64 = 1000;

fn rate(target: &str, rate_per_s: u32, want: u32, horizon_ms: i64) -> RateTake {
    RateTake {
        target_id: target.to_owned(),
        rate_per_s,
        want,
        horizon_ms,
    }
}

/// Send times: spaced one interval apart from now, only before the
/// horizon, never twice (also to concurrent takers), no credit for idle
/// time, targets apart; bad takes refused.
pub(super) async fn rate_take(store: Arc<dyn Store>) {
    let s = &*store;
    let t = TargetId::generate().to_string();
    let other = TargetId::generate().to_string();
    let take = |r: RateTake, now: i64| async move {
        s.take_rate(r.clone(), now)
            .await
            .unwrap_or_else(|e| panic!("take_rate({r:?}, {now}): {e}"))
    };

    // 50/s: every 20 ms; a 100 ms horizon holds five send times.
    let g = take(rate(&t, 50, 10, 100), T0).await;
    assert_eq!((g.first_us, g.count, g.interval_us), (T0 * US, 5, 20_000));
    assert_eq!(g.at_us(4), (T0 + 80) * US);

    // Nothing free before the horizon: none, and when the next one is.
    let g = take(rate(&t, 50, 10, 100), T0).await;
    assert_eq!((g.first_us, g.count), ((T0 + 100) * US, 0));

    // 50 ms later, the three times before T0 + 150 ms follow on.
    let g = take(rate(&t, 50, 10, 100), T0 + 50).await;
    assert_eq!((g.first_us, g.count), ((T0 + 100) * US, 3));

    // At most `want`; another target has its own bucket.
    let g = take(rate(&other, 50, 2, 100), T0 + 50).await;
    assert_eq!((g.first_us, g.count), ((T0 + 50) * US, 2));

    // Idle time is not saved up: a second later the times start at now.
    let g = take(rate(&t, 50, 100, 1000), T0 + 1150).await;
    assert_eq!((g.first_us, g.count), ((T0 + 1150) * US, 50));

    // Concurrent takers never get the same time, and together get no more
    // than the horizon holds, one interval apart.
    let late = T0 + 10_000;
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let store = Arc::clone(&store);
            let r = rate(&t, 50, 3, 1000);
            tokio::spawn(async move { store.take_rate(r, late).await })
        })
        .collect();
    let mut times = Vec::new();
    for h in handles {
        let g = h.await.expect("a take task").expect("a concurrent take");
        times.extend((0..g.count).map(|i| g.at_us(i)));
    }
    let unique: BTreeSet<i64> = times.iter().copied().collect();
    assert_eq!(unique.len(), times.len(), "a send time handed out twice");
    assert_eq!(
        times.len(),
        50,
        "20 takes of 3 within a 1 s horizon at 50/s"
    );
    let sorted: Vec<i64> = unique.into_iter().collect();
    assert_eq!(sorted[0], late * US);
    assert!(
        sorted.windows(2).all(|w| w[1] - w[0] == 20_000),
        "send times not 20 ms apart: {sorted:?}"
    );
    assert_eq!(most_within(&sorted, 1_000_000), 50, "50 in the second");
    assert_eq!(most_within(&sorted, 20_000), 1, "one each 20 ms");

    // A rate that is not a whole number of µs rounds the interval up.
    let g = take(rate(&other, 3, 5, 1000), T0 + 50).await;
    assert_eq!((g.count, g.interval_us), (3, 333_334));

    for (what, bad) in [
        ("rate 0", rate(&t, 0, 1, 100)),
        ("want 0", rate(&t, 50, 0, 100)),
        ("horizon 0", rate(&t, 50, 1, 0)),
        ("not a target id", rate("task_x", 50, 1, 100)),
    ] {
        assert_invalid(what, s.take_rate(bad, T0).await);
    }
}

/// The most of `times` (sorted: µs, `Instant`s, …) that fall within any
/// window of length `window` (`i64` µs, a `Duration`, …): what a receiver
/// measures of a rate.
pub fn most_within<T, D>(times: &[T], window: D) -> usize
where
    T: Copy + std::ops::Sub<Output = D>,
    D: PartialOrd,
{
    let mut best = 0;
    let mut start = 0;
    for (end, t) in times.iter().enumerate() {
        while *t - times[start] >= window {
            start += 1;
        }
        best = best.max(end + 1 - start);
    }
    best
}

fn slot(target: &str, max: u32, holder: &str, lease_ms: i64) -> SlotTake {
    SlotTake {
        target_id: target.to_owned(),
        max,
        holder: holder.to_owned(),
        lease_ms,
    }
}

/// Concurrency slots: the lowest free one below the limit, none when all
/// are held, freed by release or expiry, renewed and released only by
/// their holder, never held twice (also under concurrent takers), gone
/// with their target; bad takes refused.
pub(super) async fn slot_leases(store: Arc<dyn Store>) {
    const LEASE: i64 = 10_000;
    let s = &*store;
    let t = TargetId::generate().to_string();
    let take = |r: SlotTake, now: i64| async move {
        s.take_slot(r.clone(), now)
            .await
            .unwrap_or_else(|e| panic!("take_slot({r:?}, {now}): {e}"))
    };
    let number = |l: &Option<SlotLease>| l.as_ref().map(|l| l.slot);

    let a = take(slot(&t, 2, "a", LEASE), T0).await;
    assert_eq!(number(&a), Some(0));
    let a = a.unwrap();
    assert_eq!((a.holder.as_str(), a.expires_at_ms), ("a", T0 + LEASE));
    let b = take(slot(&t, 2, "b", LEASE), T0)
        .await
        .expect("slot 1 is free");
    assert_eq!(b.slot, 1);
    assert_eq!(
        number(&take(slot(&t, 2, "c", LEASE), T0).await),
        None,
        "both held"
    );
    assert_eq!(
        number(&take(slot(&TargetId::generate().to_string(), 2, "c", LEASE), T0).await),
        Some(0),
        "another target has its own slots"
    );

    // Released: free again, the lowest first.
    s.release_slot(&a).await.expect("release");
    let c = take(slot(&t, 2, "c", LEASE), T0)
        .await
        .expect("slot 0 was released");
    assert_eq!(c.slot, 0);

    // Renewed only by its holder.
    assert!(s.renew_slot(&b, LEASE, T0 + 5_000).await.expect("renew"));
    let stranger = SlotLease {
        holder: "stranger".into(),
        ..b.clone()
    };
    assert!(!s
        .renew_slot(&stranger, LEASE, T0 + 5_000)
        .await
        .expect("renew"));
    s.release_slot(&stranger)
        .await
        .expect("release by a stranger");
    assert_eq!(
        number(&take(slot(&t, 2, "d", LEASE), T0 + 5_000).await),
        None,
        "a stranger's release freed nothing; the renewal held slot 1"
    );

    // Expired (`expires_at_ms <= now`): taken by another; the old holder
    // can neither renew nor release it any more.
    let d = take(slot(&t, 2, "d", LEASE), T0 + 5_000 + LEASE).await;
    assert_eq!(number(&d), Some(0), "slot 0 (c) expired first");
    assert!(!s
        .renew_slot(&c, LEASE, T0 + 5_000 + LEASE)
        .await
        .expect("renew"));
    s.release_slot(&c).await.expect("a stale release");
    let e = take(slot(&t, 2, "e", LEASE), T0 + 5_000 + LEASE).await;
    assert_eq!(
        number(&e),
        Some(1),
        "slot 1 (b, renewed to T0 + 15 s) expired now"
    );
    assert_eq!(
        number(&take(slot(&t, 2, "f", LEASE), T0 + 5_000 + LEASE).await),
        None
    );
    // A lower limit: held slots at or above it are not handed out again.
    assert_eq!(
        number(&take(slot(&t, 1, "f", LEASE), T0 + 5_000 + LEASE).await),
        None
    );

    // Concurrent takers never share a slot and never pass the limit.
    let u = TargetId::generate().to_string();
    let handles: Vec<_> = (0..10)
        .map(|i| {
            let store = Arc::clone(&store);
            let r = slot(&u, 3, &format!("h{i}"), LEASE);
            tokio::spawn(async move { store.take_slot(r, T0).await })
        })
        .collect();
    let mut held = BTreeSet::new();
    for h in handles {
        if let Some(l) = h.await.expect("a take task").expect("a concurrent take") {
            assert!(held.insert(l.slot), "slot {} held twice", l.slot);
        }
    }
    assert!(held.len() <= 3, "more than 3 slots held: {held:?}");
    while held.len() < 3 {
        let l = take(slot(&u, 3, "late", LEASE), T0)
            .await
            .expect("a slot is free");
        assert!(held.insert(l.slot), "slot {} held twice", l.slot);
    }
    assert_eq!(number(&take(slot(&u, 3, "late", LEASE), T0).await), None);

    // A deleted target's slots go with it.
    let target = new_target("limited");
    s.create_target(target.clone())
        .await
        .expect("create target");
    let l = take(slot(&target.id, 1, "x", LEASE), T0)
        .await
        .expect("a slot");
    s.delete_target(&target.id).await.expect("delete target");
    s.create_target(target.clone())
        .await
        .expect("create it again");
    assert_eq!(
        number(&take(slot(&target.id, 1, "y", LEASE), T0).await),
        Some(l.slot),
        "the deleted target's slot was left behind"
    );

    for (what, bad) in [
        ("max 0", slot(&t, 0, "z", LEASE)),
        ("empty holder", slot(&t, 1, "", LEASE)),
        ("lease 0", slot(&t, 1, "z", 0)),
        ("not a target id", slot("task_x", 1, "z", LEASE)),
    ] {
        assert_invalid(what, s.take_slot(bad, T0).await);
    }
    assert_invalid("renew for 0 ms", s.renew_slot(&b, 0, T0).await);
}

/// The store's clock: within a second of this machine's when it has one
/// (the test's database runs beside it, on a synced clock), in unix ms.
pub(super) async fn store_clock(store: Arc<dyn Store>) {
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    };
    let before = now_ms();
    let Some(at) = store.store_time_ms().await.expect("the store's clock") else {
        return;
    };
    let after = now_ms();
    assert!(
        (before - 1_000..=after + 1_000).contains(&at),
        "the store's clock says {at} ms, this machine's {before}..{after} ms"
    );
}
