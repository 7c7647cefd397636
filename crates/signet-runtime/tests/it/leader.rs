//! Leader election over the real SQLite store on a manual clock: one of two
//! nodes leads, a dead leader hands over within one lease, resigning hands
//! over at once, and services run only while leading.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use signet_runtime::{Clock, LeaderElector, Leadership, Shutdown, StepDown};

use crate::support::*;

const TTL: Duration = Duration::from_secs(15);
const ROLE: &str = "services";

/// Counts starts and ends (a normal stop or an abort) of a service.
#[derive(Default)]
struct Probe {
    started: AtomicUsize,
    ended: AtomicUsize,
}

impl Probe {
    fn running(&self) -> usize {
        self.started.load(Ordering::SeqCst) - self.ended.load(Ordering::SeqCst)
    }
}

struct EndGuard(Arc<Probe>);

impl Drop for EndGuard {
    fn drop(&mut self) {
        self.0.ended.fetch_add(1, Ordering::SeqCst);
    }
}

fn elector(db: &Db, node: &str, clock: &Arc<dyn Clock>, probe: &Arc<Probe>) -> LeaderElector {
    let probe = Arc::clone(probe);
    LeaderElector::new(Arc::clone(&db.store), ROLE, node)
        .ttl(TTL)
        .clock(Arc::clone(clock))
        .service("probe", move |mut stop| {
            let probe = Arc::clone(&probe);
            async move {
                probe.started.fetch_add(1, Ordering::SeqCst);
                let _guard = EndGuard(probe);
                stop.triggered().await;
            }
        })
}

/// Waits until `probe` has `n` services running (they start on spawned
/// tasks), failing after [`WAIT`].
async fn running(probe: &Probe, n: usize) {
    tokio::time::timeout(WAIT, async {
        while probe.running() != n {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("expected {n} running, have {}", probe.running()));
}

#[tokio::test]
async fn one_leads_and_a_dead_leader_hands_over_within_one_lease() {
    let db = Db::new();
    let (clock, dyn_clock) = manual_clock(1_900_000_000_000);
    let (pa, pb) = (Arc::new(Probe::default()), Arc::new(Probe::default()));
    let mut a = elector(&db, "node-a", &dyn_clock, &pa);
    let mut b = elector(&db, "node-b", &dyn_clock, &pb);
    let watch_a = a.subscribe();

    assert!(a.step().await.unwrap());
    assert!(!b.step().await.unwrap());
    assert!(a.is_leader() && !b.is_leader());
    assert_eq!(
        *watch_a.borrow(),
        Leadership {
            leading: true,
            term: Some(a.lease().unwrap().term),
            stepped_down: None,
        }
    );
    let first_term = a.lease().unwrap().term;
    running(&pa, 1).await;
    assert_eq!(pb.running(), 0);

    // Renewals keep the lease; the other node stays out.
    let last_renewal = clock.advance(TTL / 3);
    assert!(a.step().await.unwrap());
    assert_eq!(
        a.lease().unwrap().term,
        first_term,
        "renewing keeps the term"
    );
    clock.advance(TTL / 3);
    assert!(!b.step().await.unwrap());

    // Node A dies: dropped without resigning. Its services go with it.
    drop(a);
    running(&pa, 0).await;
    // Just before its lease runs out, B still waits; at the end it leads.
    let lease = db.store.leader(ROLE).await.unwrap().unwrap();
    assert_eq!(lease.holder, "node-a");
    clock.set(lease.expires_at_ms - 1);
    assert!(!b.step().await.unwrap());
    clock.set(lease.expires_at_ms);
    assert!(b.step().await.unwrap());
    assert_eq!(
        lease.expires_at_ms - last_renewal,
        i64::try_from(TTL.as_millis()).unwrap(),
        "handed over one lease period after A's last renewal"
    );
    let taken = b.lease().unwrap();
    assert_eq!(taken.holder, "node-b");
    assert!(taken.term > first_term, "a new holder gets a new term");
    running(&pb, 1).await;
}

#[tokio::test]
async fn resigning_hands_over_at_once() {
    let db = Db::new();
    let (_clock, dyn_clock) = manual_clock(1_900_000_000_000);
    let (pa, pb) = (Arc::new(Probe::default()), Arc::new(Probe::default()));
    let mut a = elector(&db, "node-a", &dyn_clock, &pa);
    let mut b = elector(&db, "node-b", &dyn_clock, &pb);
    assert!(a.step().await.unwrap());
    running(&pa, 1).await;

    a.resign().await.unwrap();
    assert!(!a.is_leader());
    // Stopped through its signal, not aborted: it ran to its end.
    assert_eq!(pa.running(), 0);
    // Same instant: no need to wait for the lease to run out.
    assert!(b.step().await.unwrap());
    running(&pb, 1).await;
}

#[tokio::test]
async fn a_leader_that_finds_another_holder_stops_its_services() {
    let db = Db::new();
    let (clock, dyn_clock) = manual_clock(1_900_000_000_000);
    let (pa, pb) = (Arc::new(Probe::default()), Arc::new(Probe::default()));
    let mut a = elector(&db, "node-a", &dyn_clock, &pa);
    let mut b = elector(&db, "node-b", &dyn_clock, &pb);
    let mut watch_a = a.subscribe();
    assert!(a.step().await.unwrap());
    running(&pa, 1).await;

    // A stalls past its lease (no renewal); B takes over.
    clock.advance(TTL);
    assert!(b.step().await.unwrap());
    // A wakes up, finds B holding the lease, and stops.
    assert!(!a.step().await.unwrap());
    assert_eq!(pa.running(), 0);
    watch_a.changed().await.unwrap();
    assert!(!watch_a.borrow().leading);
    assert_eq!(watch_a.borrow().stepped_down, Some(StepDown::TakenOver));
    running(&pb, 1).await;
}

#[tokio::test]
async fn run_leads_until_shutdown_then_resigns() {
    let db = Db::new();
    let (_clock, dyn_clock) = manual_clock(1_900_000_000_000);
    let (pa, pb) = (Arc::new(Probe::default()), Arc::new(Probe::default()));
    let a = elector(&db, "node-a", &dyn_clock, &pa).renew_interval(Duration::from_millis(5));
    let mut leading = a.subscribe();
    let shutdown = Shutdown::new();
    let handle = tokio::spawn(a.run(shutdown.signal()));
    tokio::time::timeout(WAIT, leading.wait_for(|l| l.leading))
        .await
        .expect("leads")
        .unwrap();
    running(&pa, 1).await;

    shutdown.trigger();
    tokio::time::timeout(WAIT, handle)
        .await
        .expect("stops")
        .unwrap();
    assert_eq!(pa.running(), 0);
    assert_eq!(
        *leading.borrow(),
        Leadership {
            leading: false,
            term: None,
            stepped_down: Some(StepDown::Resigned),
        },
        "a node that shuts down says so, not that another node took over"
    );
    let mut b = elector(&db, "node-b", &dyn_clock, &pb);
    assert!(
        b.step().await.unwrap(),
        "resigned on shutdown, so B leads at once"
    );
}

#[tokio::test]
async fn a_service_that_ends_while_leading_is_started_again() {
    let db = Db::new();
    let (_clock, dyn_clock) = manual_clock(1_900_000_000_000);
    let starts = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&starts);
    let mut a = LeaderElector::new(Arc::clone(&db.store), ROLE, "node-a")
        .clock(dyn_clock)
        .service("short-lived", move |_stop| {
            let counted = Arc::clone(&counted);
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
            }
        });
    assert!(a.step().await.unwrap());
    tokio::time::timeout(WAIT, async {
        while starts.load(Ordering::SeqCst) < 1 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .unwrap();
    // Once it has ended, a renewal starts it again.
    tokio::time::timeout(WAIT, async {
        while starts.load(Ordering::SeqCst) < 2 {
            assert!(a.step().await.unwrap());
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("restarted at a renewal");
}
