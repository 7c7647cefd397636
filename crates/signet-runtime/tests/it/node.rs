//! The node: every-node services run for the node's life, leader-only
//! services on the leader of their role, each role elected on its own; an
//! error of an every-node service stops the node and is returned.

use std::sync::Arc;
use std::time::Duration;

use signet_runtime::{Clock, Node, Placement, RuntimeError, Shutdown};
use signet_runtime::{MAINTENANCE_ROLE, SERVICES_ROLE};
use signet_store::StoreError;
use tokio::sync::mpsc;

use crate::support::*;

/// A service that says it started, then waits for its signal.
fn announcing(
    tx: &mpsc::UnboundedSender<&'static str>,
    name: &'static str,
) -> impl Fn(
    signet_runtime::ShutdownSignal,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
       + Send
       + Sync
       + 'static {
    let tx = tx.clone();
    move |mut stop| {
        let tx = tx.clone();
        Box::pin(async move {
            let _ = tx.send(name);
            stop.triggered().await;
        })
    }
}

#[tokio::test]
async fn services_run_where_they_are_placed_and_stop_with_the_node() {
    let db = Db::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let every = tx.clone();
    let node = Node::builder(Arc::clone(&db.store), "node-a")
        .leader_ttl(Duration::from_secs(15))
        .every_node("everywhere", move |mut stop| async move {
            let _ = every.send("everywhere");
            stop.triggered().await;
            Ok(())
        })
        .leader_only(SERVICES_ROLE, "publishing", announcing(&tx, "publishing"))
        .leader_only(MAINTENANCE_ROLE, "upkeep", announcing(&tx, "upkeep"))
        .build();
    assert_eq!(
        node.placement(),
        [
            ("everywhere".to_owned(), Placement::EveryNode),
            ("publishing".to_owned(), Placement::Leader(SERVICES_ROLE)),
            ("upkeep".to_owned(), Placement::Leader(MAINTENANCE_ROLE)),
        ]
    );
    let roles: Vec<&str> = node.electors().iter().map(|e| e.role()).collect();
    assert_eq!(roles, [SERVICES_ROLE, MAINTENANCE_ROLE]);

    let shutdown = Shutdown::new();
    let running = tokio::spawn(node.run(shutdown.signal()));
    let mut started = Vec::new();
    while started.len() < 3 {
        let name = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("every service starts on the only node")
            .expect("services announce");
        started.push(name);
    }
    started.sort_unstable();
    assert_eq!(started, ["everywhere", "publishing", "upkeep"]);
    for role in [SERVICES_ROLE, MAINTENANCE_ROLE] {
        let lease = db.store.leader(role).await.unwrap().expect("a lease");
        assert_eq!(lease.holder, "node-a", "{role}");
    }
    shutdown.trigger();
    tokio::time::timeout(WAIT, running)
        .await
        .expect("the node stops")
        .expect("no panic")
        .expect("no error");
    // Resigned on the way out, so another node takes over at once.
    for role in [SERVICES_ROLE, MAINTENANCE_ROLE] {
        let lease = db.store.leader(role).await.unwrap();
        let now = signet_runtime::SystemClock.now_ms();
        assert!(
            lease.as_ref().is_none_or(|l| l.expires_at_ms <= now),
            "{role}: {lease:?}"
        );
    }
}

#[tokio::test]
async fn an_every_node_error_stops_the_node_and_is_returned() {
    let db = Db::new();
    let node = Node::builder(Arc::clone(&db.store), "node-b")
        .every_node("patient", |mut stop| async move {
            stop.triggered().await;
            Ok(())
        })
        .every_node("failing", |_stop| async {
            Err(RuntimeError::Store(StoreError::Closed))
        })
        .build();
    let never = Shutdown::new();
    let result = tokio::time::timeout(WAIT, node.run(never.signal()))
        .await
        .expect("the error stops the node without a shutdown");
    assert!(
        matches!(result, Err(RuntimeError::Store(StoreError::Closed))),
        "{result:?}"
    );
}

/// A node killed while it led `maintenance` (its lease still held, its
/// claims still leased): a restarted or second node rescues the dead
/// node's work as soon as the claims' leases run out, without waiting for
/// the dead leader's lease, because every node runs the rescuer.
#[tokio::test]
async fn a_dead_maintenance_leaders_work_is_rescued_before_its_lease_ends() {
    use serde_json::json;
    use signet_runtime::{Rescuer, TaskSpec};
    use signet_store::{ClaimRequest, TaskState};

    let db = Db::new();
    let id = producer(&db, &hmac_ring())
        .enqueue(TaskSpec::new("t", &json!({})).queue("dead-node"))
        .await
        .unwrap()
        .task
        .id()
        .to_owned();
    let now = signet_runtime::SystemClock.now_ms();
    // The dead node: it leads maintenance for an hour yet, and holds the
    // task on a lease that ends a millisecond from now.
    assert!(db
        .store
        .try_lead(MAINTENANCE_ROLE, "node-dead", 3_600_000, now)
        .await
        .unwrap()
        .is_some());
    let claimed = db
        .store
        .claim(
            ClaimRequest {
                queues: vec!["dead-node".into()],
                worker_id: "node-dead-worker".into(),
                limit: 1,
                lease_ms: 1,
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);

    let store = Arc::clone(&db.store);
    let node = Node::builder(Arc::clone(&db.store), "node-b")
        .rescuer(move || Rescuer::new(store).interval(Duration::from_millis(20)))
        .build();
    let shutdown = Shutdown::new();
    let running = tokio::spawn(node.run(shutdown.signal()));
    let rescued = tokio::time::timeout(WAIT, async {
        loop {
            if db.task(&id).await.state != TaskState::Running {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    shutdown.trigger();
    running.await.unwrap().unwrap();
    assert!(
        rescued.is_ok(),
        "the rescuer ran without leading maintenance"
    );
    assert_eq!(
        db.store
            .leader(MAINTENANCE_ROLE)
            .await
            .unwrap()
            .unwrap()
            .holder,
        "node-dead",
        "the dead node still holds the role"
    );
}
