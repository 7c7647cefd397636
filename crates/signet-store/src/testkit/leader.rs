//! Leader leases: one holder per role, terms, renewal, resignation.

use std::sync::Arc;

use super::T0;
use crate::Store;

/// Leader leases: taken when free or expired, renewed by the holder, terms
/// count holders, resign frees at once.
pub(super) async fn leader_leases(store: Arc<dyn Store>) {
    const TTL: i64 = 10_000;
    const ROLE: &str = "scheduler";
    let s = &*store;
    let lead = |holder: &'static str, now: i64| async move {
        s.try_lead(ROLE, holder, TTL, now)
            .await
            .unwrap_or_else(|e| panic!("try_lead({holder}, {now}): {e}"))
    };
    let leader = || async { s.leader(ROLE).await.expect("leader") };
    assert_eq!(leader().await, None, "nobody leads yet");

    let a1 = lead("node-a", T0).await.expect("a free lease is taken");
    assert_eq!(
        (a1.name.as_str(), a1.holder.as_str(), a1.expires_at_ms),
        (ROLE, "node-a", T0 + TTL)
    );
    assert_eq!(leader().await, Some(a1.clone()));

    // Renewed by its holder: same term, later expiry.
    let a2 = lead("node-a", T0 + 5_000).await.expect("renewed");
    assert_eq!(a2.term, a1.term, "renewal keeps the term");
    assert_eq!(a2.expires_at_ms, T0 + 5_000 + TTL);

    // Refused to another node while valid, up to the last millisecond.
    assert_eq!(lead("node-b", T0 + 5_000).await, None);
    assert_eq!(lead("node-b", a2.expires_at_ms - 1).await, None);
    assert_eq!(leader().await, Some(a2.clone()));

    // Roles are independent.
    let p = s
        .try_lead("pruner", "node-b", TTL, T0 + 5_000)
        .await
        .expect("try_lead")
        .expect("another role is free");
    assert_eq!(p.holder, "node-b");
    assert_eq!(leader().await, Some(a2.clone()));

    // Expired (expires_at <= now): taken over with the next term.
    let b1 = lead("node-b", a2.expires_at_ms).await.expect("taken over");
    assert_eq!(b1.holder, "node-b");
    assert_eq!(b1.term, a2.term + 1, "a new holder gets the next term");
    assert_eq!(b1.expires_at_ms, a2.expires_at_ms + TTL);
    assert_eq!(
        lead("node-a", a2.expires_at_ms).await,
        None,
        "the old leader cannot come back while the new lease is valid"
    );
    assert_eq!(leader().await, Some(b1.clone()));

    // The holder renewing after its own lease ran out, nobody having taken
    // it: the holder did not change, neither does the term.
    let late = b1.expires_at_ms + 500;
    let b2 = lead("node-b", late).await.expect("renewed late");
    assert_eq!(b2.term, b1.term);
    assert_eq!(b2.expires_at_ms, late + TTL);

    // Resigning a lease one does not hold changes nothing.
    s.resign(ROLE, "node-a")
        .await
        .expect("resign by non-holder");
    assert_eq!(leader().await, Some(b2.clone()));
    assert_eq!(lead("node-a", late + 1).await, None);
    s.resign("no-such-role", "node-a")
        .await
        .expect("resign an unknown role");

    // Resigning frees it at once, and the next holder gets the next term.
    s.resign(ROLE, "node-b").await.expect("resign");
    if let Some(l) = leader().await {
        assert!(
            l.expires_at_ms <= late + 1,
            "a resigned lease must be expired: {l:?}"
        );
    }
    let a3 = lead("node-a", late + 1).await.expect("taken after resign");
    assert_eq!(a3.holder, "node-a");
    assert_eq!(a3.term, b2.term + 1);
    assert_eq!(leader().await, Some(a3));

    // Nodes racing for a free role: exactly one wins.
    let mut handles = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let holder = format!("racer-{i}");
            let got = store
                .try_lead("rescuer", &holder, TTL, T0)
                .await
                .expect("try_lead");
            got.map(|l| (holder, l))
        }));
    }
    let mut winners = Vec::new();
    for h in handles {
        if let Some(w) = h.await.expect("try_lead panicked") {
            winners.push(w);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one racer leads: {winners:?}");
    let (holder, lease) = winners.remove(0);
    assert_eq!(lease.holder, holder);
    assert_eq!(s.leader("rescuer").await.expect("leader"), Some(lease));
}
