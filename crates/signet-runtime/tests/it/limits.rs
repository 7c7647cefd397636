//! Per-target limits held across dispatchers: two dispatchers on one
//! database file (as two `signet serve` processes on it would be) share a
//! target's rate and concurrency, and a dead dispatcher's concurrency
//! slots come back once their lease expires.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use signet_runtime::NewTarget;
use signet_store::testkit::most_within;
use signet_store::{SlotTake, TargetRecord};

use super::dispatcher::{Answer, Receiver, RunningDispatcher, Setup};

async fn limited(
    s: &Setup,
    name: &str,
    rx: &Receiver,
    rate: Option<u32>,
    max: Option<u32>,
) -> TargetRecord {
    let (target, _secret) = s
        .targets
        .create(NewTarget {
            name: name.into(),
            url_prefix: Some(rx.url("/")),
            secret: None,
            rate_limit_per_s: rate,
            max_concurrency: max,
            https_only: false,
        })
        .await
        .unwrap();
    target
}

#[tokio::test]
async fn two_dispatchers_share_a_targets_rate() {
    const RATE: u32 = 40;
    const MESSAGES: usize = 100;
    let s = Setup::new();
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&arrivals);
    let rx = Receiver::start(move |_, _| {
        log.lock().unwrap().push(Instant::now());
        Answer::status(200)
    })
    .await;
    limited(&s, "rated", &rx, Some(RATE), None).await;
    for i in 0..MESSAGES {
        s.publish(json!({"url": rx.url(&format!("/r{i}")), "target": "rated"}))
            .await;
    }
    let a = RunningDispatcher::start(s.dispatcher().worker_id("a").build().unwrap());
    let b = RunningDispatcher::start(s.dispatcher().worker_id("b").build().unwrap());
    rx.wait_for(MESSAGES).await;
    a.stop().await;
    b.stop().await;
    let mut arrivals = arrivals.lock().unwrap().clone();
    arrivals.sort();
    // Send times are one interval (25 ms) apart across both dispatchers;
    // 10 % covers the jitter of scheduling.
    let most = most_within(&arrivals, Duration::from_secs(1));
    assert!(
        most <= (RATE as usize) * 11 / 10,
        "{most} requests within one second at {RATE}/s"
    );
    let took = *arrivals.last().unwrap() - arrivals[0];
    assert!(
        took >= Duration::from_millis(25 * (MESSAGES as u64 - 1) * 9 / 10),
        "{MESSAGES} requests at {RATE}/s took only {took:?}"
    );
}

#[tokio::test]
async fn two_dispatchers_share_a_targets_concurrency() {
    let s = Setup::new();
    let rx = Receiver::start(|_, _| Answer::status(200).hold(Duration::from_millis(60))).await;
    limited(&s, "narrow", &rx, None, Some(2)).await;
    for i in 0..16 {
        s.publish(json!({"url": rx.url(&format!("/c{i}")), "target": "narrow"}))
            .await;
    }
    // Each claims a few at a time, so both deliver.
    let a = RunningDispatcher::start(
        s.dispatcher()
            .worker_id("a")
            .concurrency(4)
            .build()
            .unwrap(),
    );
    let b = RunningDispatcher::start(
        s.dispatcher()
            .worker_id("b")
            .concurrency(4)
            .build()
            .unwrap(),
    );
    rx.wait_for(16).await;
    a.stop().await;
    b.stop().await;
    assert_eq!(rx.max_in_flight(), 2, "the target allows 2 at once");
}

fn wall_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_dead_dispatchers_slots_come_back_after_their_lease() {
    const DEAD_LEASE_MS: i64 = 800;
    let s = Setup::new();
    let arrived = Arc::new(Mutex::new(None));
    let log = Arc::clone(&arrived);
    let rx = Receiver::start(move |_, _| {
        log.lock().unwrap().get_or_insert_with(wall_ms);
        Answer::status(200)
    })
    .await;
    let target = limited(&s, "single", &rx, None, Some(1)).await;
    // A dispatcher that died while delivering: it holds the only slot and
    // never renews or releases it.
    let held =
        s.db.store
            .take_slot(
                SlotTake {
                    target_id: target.id.clone(),
                    max: 1,
                    holder: "dead-dispatcher/0".into(),
                    lease_ms: DEAD_LEASE_MS,
                },
                wall_ms(),
            )
            .await
            .unwrap()
            .expect("the slot is free");
    let id = s
        .publish(json!({"url": rx.url("/after"), "target": "single"}))
        .await;
    let mut d = RunningDispatcher::start(
        s.dispatcher()
            .lease(Duration::from_millis(300), Duration::from_millis(100))
            .build()
            .unwrap(),
    );
    let event = d.next_for(&id).await;
    assert_eq!(super::dispatcher::delivered(&event), 200);
    let at = arrived.lock().unwrap().expect("the request arrived");
    assert!(
        at >= held.expires_at_ms,
        "sent at {at}, while the dead dispatcher's slot was held until {}",
        held.expires_at_ms
    );
    assert!(
        at < held.expires_at_ms + 1000,
        "the slot came back only {} ms after its lease",
        at - held.expires_at_ms
    );
    d.stop().await;
}
