//! The dispatcher against real receivers on 127.0.0.1 (axum servers in the
//! test): signed deliveries verified with signet-sign, retries on a shrunken
//! schedule with an injected clock, Retry-After, 410, dead letters, a
//! message changed at rest, and per-target concurrency.
//!
//! The fixtures here (receiver, dispatcher setup) are shared by the
//! `ssrf`, `targets` and `callbacks` modules.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use signet_runtime::NewMessage;
use signet_runtime::{
    Clock, DeliveryEvent, DeliveryEventKind, Dispatcher, DispatcherBuilder, ManualClock,
    MessageProducer, Producer, RetrySchedule, Shutdown, SsrfPolicy, SystemClock, TargetService,
};
use signet_sign::sealed::MasterKey;
use signet_sign::KeyRing;
use signet_store::{DeadReason, TaskState};
use tokio::sync::{broadcast, Notify};
use tokio::task::JoinHandle;

use crate::support::*;

/// One request a receiver got.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub(crate) version: String,
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: HashMap<String, String>,
    pub(crate) body: Vec<u8>,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    /// The body as a number (see [`Setup::publish_numbered`]).
    pub(crate) fn number(&self) -> u32 {
        std::str::from_utf8(&self.body).unwrap().parse().unwrap()
    }

    pub(crate) fn header_list(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// What a receiver answers.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: String,
    pub(crate) hold: Duration,
}

impl Answer {
    pub(crate) fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: String::new(),
            hold: Duration::ZERO,
        }
    }

    pub(crate) fn body(mut self, body: &str) -> Self {
        self.body = body.to_owned();
        self
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub(crate) fn hold(mut self, d: Duration) -> Self {
        self.hold = d;
        self
    }
}

/// Decides the answer from the request and how many requests with the
/// same `webhook-id` came before it (0 for the first).
pub(crate) type Script = Arc<dyn Fn(&Received, usize) -> Answer + Send + Sync>;

pub(crate) struct ReceiverState {
    log: Mutex<Vec<Received>>,
    seen: Mutex<HashMap<String, usize>>,
    arrived: Notify,
    script: Script,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl ReceiverState {
    pub(crate) fn new(
        script: impl Fn(&Received, usize) -> Answer + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            log: Mutex::new(Vec::new()),
            seen: Mutex::new(HashMap::new()),
            arrived: Notify::new(),
            script: Arc::new(script),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        })
    }
}

/// An HTTP receiver on 127.0.0.1 that logs every request and answers by
/// script.
pub(crate) struct Receiver {
    pub(crate) addr: SocketAddr,
    state: Arc<ReceiverState>,
    task: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(
    axum::extract::State(state): axum::extract::State<Arc<ReceiverState>>,
    version: axum::http::Version,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let received = Received {
        version: format!("{version:?}"),
        method: method.to_string(),
        path: uri.path().to_owned(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    let key = received.header("webhook-id").to_owned();
    let nth = {
        let mut seen = state.seen.lock().unwrap();
        let n = seen.entry(key).or_insert(0);
        *n += 1;
        *n - 1
    };
    let answer = (state.script)(&received, nth);
    if !answer.hold.is_zero() {
        tokio::time::sleep(answer.hold).await;
    }
    state.log.lock().unwrap().push(received);
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    state.arrived.notify_waiters();
    let mut response = (StatusCode::from_u16(answer.status).unwrap(), answer.body).into_response();
    for (name, value) in answer.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

impl Receiver {
    pub(crate) async fn start(
        script: impl Fn(&Received, usize) -> Answer + Send + Sync + 'static,
    ) -> Self {
        let state = ReceiverState::new(script);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, state)
    }

    /// A receiver like [`Receiver::start`] on `listener`.
    pub(crate) fn serve<L>(listener: L, state: Arc<ReceiverState>) -> Self
    where
        L: axum::serve::Listener<Addr = SocketAddr>,
    {
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(Arc::clone(&state));
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, state, task }
    }

    /// Answers 200 to everything.
    pub(crate) async fn ok() -> Self {
        Self::start(|_, _| Answer::status(200).body("thanks")).await
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) fn requests(&self) -> Vec<Received> {
        self.state.log.lock().unwrap().clone()
    }

    pub(crate) fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` requests were answered.
    pub(crate) async fn wait_for(&self, n: usize) -> Vec<Received> {
        tokio::time::timeout(WAIT, async {
            loop {
                let arrived = self.state.arrived.notified();
                let log = self.requests();
                if log.len() >= n {
                    return log;
                }
                arrived.await;
            }
        })
        .await
        .unwrap_or_else(|_| {
            panic!(
                "fewer than {n} requests within {WAIT:?}: {:?}",
                self.requests().len()
            )
        })
    }
}

/// A store, keys, a manual clock at the real time, targets under a master
/// key, and a message producer.
pub(crate) struct Setup {
    pub(crate) db: Db,
    pub(crate) ring: KeyRing,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) dyn_clock: Arc<dyn Clock>,
    pub(crate) targets: TargetService,
    pub(crate) messages: MessageProducer,
}

/// The schedule the tests use: exact (no jitter), 1 s then 3 s.
pub(crate) fn test_schedule() -> RetrySchedule {
    RetrySchedule::new(vec![Duration::from_secs(1), Duration::from_secs(3)])
        .unwrap()
        .with_jitter(0.0)
}

impl Setup {
    pub(crate) fn new() -> Self {
        Self::with_master_key(Some(MasterKey::from_bytes([42; 32])))
    }

    pub(crate) fn with_master_key(key: Option<MasterKey>) -> Self {
        let db = Db::new();
        let ring = hmac_ring();
        let (clock, dyn_clock) = manual_clock(SystemClock.now_ms());
        let targets = TargetService::with_clock(Arc::clone(&db.store), key, Arc::clone(&dyn_clock));
        let producer = Producer::with_ring(Arc::clone(&db.store), Arc::new(ring.duplicate()), true)
            .unwrap()
            .clock(Arc::clone(&dyn_clock));
        let messages =
            MessageProducer::new(producer, targets.clone()).retry_schedule(test_schedule());
        Self {
            db,
            ring,
            clock,
            dyn_clock,
            targets,
            messages,
        }
    }

    /// A dispatcher allowed to reach 127.0.0.0/8, with short intervals.
    pub(crate) fn dispatcher(&self) -> DispatcherBuilder {
        self.dispatcher_on(Arc::clone(&self.db.store))
    }

    /// [`Setup::dispatcher`] on `store` (a wrapper of the setup's store).
    pub(crate) fn dispatcher_on(&self, store: Arc<dyn signet_store::Store>) -> DispatcherBuilder {
        Dispatcher::builder(store)
            .key_ring(&self.ring, true)
            .targets(self.targets.clone())
            .ssrf_policy(SsrfPolicy::parse_allowed("127.0.0.0/8").unwrap())
            .retry_schedule(test_schedule())
            .poll_interval(Duration::from_millis(5))
            .target_cache_ttl(Duration::ZERO)
            .shutdown_grace(Duration::from_secs(5))
            .clock(Arc::clone(&self.dyn_clock))
    }

    /// The setup's store behind a [`FaultyStore`](signet_store::testkit::FaultyStore)
    /// that counts the calls of each method: `fault` gets the method and
    /// which call of it this is (1 for the first) and picks the calls that
    /// fail.
    #[allow(clippy::type_complexity)]
    pub(crate) fn counting_store(
        &self,
        fault: impl Fn(&'static str, usize) -> Option<signet_store::StoreError> + Send + Sync + 'static,
    ) -> (
        Arc<dyn signet_store::Store>,
        Arc<Mutex<HashMap<&'static str, usize>>>,
    ) {
        let calls: Arc<Mutex<HashMap<&'static str, usize>>> = Arc::default();
        let counted = Arc::clone(&calls);
        let store =
            signet_store::testkit::FaultyStore::new(Arc::clone(&self.db.store), move |method| {
                let nth = {
                    let mut calls = counted.lock().unwrap();
                    let nth = calls.entry(method).or_insert(0);
                    *nth += 1;
                    *nth
                };
                fault(method, nth)
            });
        (Arc::new(store), calls)
    }

    /// The setup's store, answering `Busy` to every
    /// `settle_deliveries` while `busy()` says so (the other calls pass).
    pub(crate) fn settles_busy_while(
        &self,
        busy: impl Fn() -> bool + Send + Sync + 'static,
    ) -> Arc<dyn signet_store::Store> {
        Arc::new(signet_store::testkit::FaultyStore::new(
            Arc::clone(&self.db.store),
            move |method| {
                (method == "settle_deliveries" && busy()).then(|| signet_store::StoreError::Busy {
                    message: "injected: busy".into(),
                    source: None,
                })
            },
        ))
    }

    /// Publishes `n` messages to `rx`'s `/h`, the body of each its number
    /// (`0` to `n - 1`); answers their ids in that order.
    pub(crate) async fn publish_numbered(&self, rx: &Receiver, n: usize) -> Vec<String> {
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            ids.push(
                self.publish(json!({"url": rx.url("/h"), "body": i.to_string()}))
                    .await,
            );
        }
        ids
    }

    pub(crate) async fn publish(&self, json: serde_json::Value) -> String {
        let m = NewMessage::from_json(&json.to_string()).unwrap();
        let out = self.messages.publish(m, None).await.unwrap();
        assert!(out.created);
        out.task.id().to_owned()
    }

    /// The current time in unix seconds, as a receiver checks freshness.
    pub(crate) fn now_s(&self) -> i64 {
        self.clock.now_ms() / 1000
    }
}

/// A running dispatcher and its events.
pub(crate) struct RunningDispatcher {
    shutdown: Shutdown,
    events: broadcast::Receiver<DeliveryEvent>,
    handle: JoinHandle<Result<(), signet_runtime::RuntimeError>>,
    pending: Vec<DeliveryEvent>,
}

impl RunningDispatcher {
    pub(crate) fn start(d: Dispatcher) -> Self {
        let shutdown = Shutdown::new();
        let events = d.events();
        let handle = tokio::spawn(d.run(shutdown.signal()));
        Self {
            shutdown,
            events,
            handle,
            pending: Vec::new(),
        }
    }

    /// The next event about message `id`.
    pub(crate) async fn next_for(&mut self, id: &str) -> DeliveryEvent {
        if let Some(i) = self.pending.iter().position(|e| e.message_id == id) {
            return self.pending.remove(i);
        }
        let (events, pending) = (&mut self.events, &mut self.pending);
        tokio::time::timeout(WAIT, async {
            loop {
                let e = events.recv().await.expect("dispatcher events");
                if e.message_id == id {
                    return e;
                }
                pending.push(e);
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no event for message {id} within {WAIT:?}"))
    }

    pub(crate) async fn stop(self) {
        self.shutdown.trigger();
        tokio::time::timeout(WAIT, self.handle)
            .await
            .expect("dispatcher stops in time")
            .expect("dispatcher task")
            .expect("dispatcher run");
    }
}

pub(crate) fn retry_at(e: &DeliveryEvent) -> i64 {
    match &e.kind {
        DeliveryEventKind::Retrying { at_ms, .. } => *at_ms,
        other => panic!("expected a retry, got {other:?}"),
    }
}

pub(crate) fn dead_of(e: &DeliveryEvent) -> (DeadReason, String) {
    match &e.kind {
        DeliveryEventKind::Dead { reason, detail } => (*reason, detail.clone()),
        other => panic!("expected a dead letter, got {other:?}"),
    }
}

pub(crate) fn delivered(e: &DeliveryEvent) -> u16 {
    match &e.kind {
        DeliveryEventKind::Delivered { status } => *status,
        other => panic!("expected a delivery, got {other:?}"),
    }
}

/// Verifies a request as a Standard Webhooks receiver holding `ring`, at
/// unix second `now`.
pub(crate) fn verify_standard(
    ring: &KeyRing,
    r: &Received,
    now: i64,
) -> signet_sign::Result<signet_sign::Verified> {
    signet_sign::standard::verify(
        ring,
        r.header("webhook-id"),
        r.header("webhook-timestamp"),
        r.header("webhook-signature"),
        &r.body,
        now,
        signet_sign::DEFAULT_TOLERANCE_SECS,
    )
}

#[tokio::test]
async fn a_message_is_delivered_signed_and_every_attempt_is_recorded() {
    let s = Setup::new();
    let rx = Receiver::ok().await;
    let d = RunningDispatcher::start(s.dispatcher().build().unwrap());
    let mut d = d;
    let id = s
        .publish(json!({
            "url": rx.url("/hooks/orders?x=1"),
            "headers": {"X-Tenant": "acme"},
            "body": {"order": 42, "items": [1, 2]},
        }))
        .await;
    assert!(id.starts_with("msg_"), "{id}");
    assert_eq!(delivered(&d.next_for(&id).await), 200);
    let got = rx.wait_for(1).await;
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/hooks/orders");
    assert_eq!(r.header("webhook-id"), id);
    assert_eq!(r.header("x-tenant"), "acme");
    assert_eq!(r.header("content-type"), "application/json");
    // The body goes out byte for byte as published (json! serialises compactly).
    assert_eq!(r.body, br#"{"items":[1,2],"order":42}"#);
    assert!(r.header("user-agent").starts_with("Signet/"));
    let v = verify_standard(&s.ring, r, s.now_s()).expect("the signature verifies");
    assert_eq!(v.key_id.as_str(), "k1");
    // Another key does not verify it.
    let other = KeyRing::single(hmac_key("k1", 8));
    assert!(verify_standard(&other, r, s.now_s())
        .unwrap_err()
        .is_mismatch());

    let row = s.db.task(&id).await;
    assert_eq!(row.state, TaskState::Succeeded);
    assert_eq!(row.result.as_deref(), Some(&br#"{"status":200}"#[..]));
    let attempts = s.db.attempts(&id).await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].number, 1);
    assert_eq!(attempts[0].status, Some(200));
    assert_eq!(attempts[0].response_body, b"thanks");
    assert_eq!(attempts[0].started_at_ms, s.clock.now_ms());
    d.stop().await;
}

/// Outcomes are group-committed: deliveries that end together (some
/// delivered, some retried) are written with `settle_deliveries` alone, in
/// fewer writes than deliveries, and each message keeps exactly its one
/// attempt and outcome.
#[tokio::test]
async fn outcomes_that_end_together_are_group_committed() {
    const N: usize = 48;
    let s = Setup::new();
    // Every answer is held 200 ms, so the outcomes of the claimed batch
    // end within moments of one another and wait for the write in flight.
    let rx = Receiver::start(|r, _| {
        let status = if r.number() % 2 == 0 { 200 } else { 500 };
        Answer::status(status).hold(Duration::from_millis(200))
    })
    .await;
    let ids = s.publish_numbered(&rx, N).await;
    let (store, calls) = s.counting_store(|_, _| None);
    let mut d = RunningDispatcher::start(s.dispatcher_on(store).build().unwrap());
    for (n, id) in ids.iter().enumerate() {
        let e = d.next_for(id).await;
        if n % 2 == 0 {
            assert_eq!(delivered(&e), 200, "{e:?}");
        } else {
            assert!(retry_at(&e) > 0, "{e:?}");
        }
    }
    d.stop().await;
    let calls = calls.lock().unwrap().clone();
    let batches = calls.get("settle_deliveries").copied().unwrap_or(0);
    assert_eq!(calls.get("settle_delivery"), None, "{calls:?}");
    assert!(
        (1..N / 2).contains(&batches),
        "{N} outcomes in {batches} writes: {calls:?}"
    );
    for (n, id) in ids.iter().enumerate() {
        let want = if n % 2 == 0 {
            TaskState::Succeeded
        } else {
            TaskState::Retryable
        };
        assert_eq!(s.db.task(id).await.state, want, "message {n}");
        let attempts = s.db.attempts(id).await;
        assert_eq!(attempts.len(), 1, "message {n}: {attempts:?}");
        assert_eq!(attempts[0].status, Some(if n % 2 == 0 { 200 } else { 500 }));
    }
}

/// A batch the store refuses as a whole (one entry it cannot write) is
/// written again one outcome at a time: only the entry at fault is left
/// unwritten, every other outcome is written once.
#[tokio::test]
async fn a_batch_refused_whole_is_written_one_outcome_at_a_time() {
    const N: usize = 16;
    let s = Setup::new();
    let rx = Receiver::start(|_, _| Answer::status(200).hold(Duration::from_millis(200))).await;
    let ids = s.publish_numbered(&rx, N).await;
    let (store, calls) = s.counting_store(|method, nth| {
        let refused = match method {
            "settle_deliveries" => true,
            // The first outcome written alone is the one at fault.
            "settle_delivery" => nth == 1,
            _ => false,
        };
        refused.then(|| signet_store::StoreError::Invalid("injected: cannot write".into()))
    });
    let mut d = RunningDispatcher::start(s.dispatcher_on(store).build().unwrap());
    let mut failed = Vec::new();
    for id in &ids {
        let e = d.next_for(id).await;
        match e.kind {
            DeliveryEventKind::StoreFailed { .. } => failed.push(id.clone()),
            _ => assert_eq!(delivered(&e), 200, "{e:?}"),
        }
    }
    d.stop().await;
    let calls = calls.lock().unwrap().clone();
    assert!(
        calls.get("settle_deliveries").copied().unwrap_or(0) < N,
        "outcomes were batched: {calls:?}"
    );
    assert_eq!(failed.len(), 1, "only the entry at fault fails: {failed:?}");
    assert_eq!(rx.requests().len(), N, "each message sent once");
    for id in &ids {
        let attempts = s.db.attempts(id).await;
        if failed.contains(id) {
            assert_eq!(s.db.task(id).await.state, TaskState::Running);
            assert!(attempts.is_empty(), "{attempts:?}");
        } else {
            assert_eq!(s.db.task(id).await.state, TaskState::Succeeded);
            assert_eq!(attempts.len(), 1, "message {id}: {attempts:?}");
        }
    }
}

/// A rescuer of `s`'s store running every 20 ms.
struct FastRescuer {
    shutdown: Shutdown,
    task: JoinHandle<()>,
}

impl FastRescuer {
    async fn stop(self) {
        self.shutdown.trigger();
        self.task.await.unwrap();
    }
}

/// A dispatcher on `store` with 300 ms leases heartbeated every 100 ms
/// (system clock), and a fast rescuer: a lease not kept alive is rescued,
/// and its message claimed again, within moments.
fn short_leases(
    s: &Setup,
    store: Arc<dyn signet_store::Store>,
) -> (RunningDispatcher, FastRescuer) {
    short_leases_with(s, s.dispatcher_on(store))
}

/// [`short_leases`] for a dispatcher built from `builder`.
fn short_leases_with(s: &Setup, builder: DispatcherBuilder) -> (RunningDispatcher, FastRescuer) {
    use signet_runtime::Rescuer;
    let system: Arc<dyn Clock> = Arc::new(SystemClock);
    let d = RunningDispatcher::start(
        builder
            .clock(system)
            .lease(Duration::from_millis(300), Duration::from_millis(100))
            .build()
            .unwrap(),
    );
    let shutdown = Shutdown::new();
    let task = tokio::spawn(
        Rescuer::new(Arc::clone(&s.db.store))
            .interval(Duration::from_millis(20))
            .run(shutdown.signal()),
    );
    (d, FastRescuer { shutdown, task })
}

/// Outcomes whose write is stuck on a busy store (retried far longer than
/// a lease), and those queued behind it, keep their leases: no message is
/// rescued and sent again.
#[tokio::test]
async fn outcomes_waiting_on_a_busy_store_keep_their_leases() {
    const N: usize = 6;
    let s = Setup::new();
    // Answers 80 ms apart: the first outcomes each start a write (up to
    // four at once), the later ones wait for one.
    let rx =
        Receiver::start(|r, _| Answer::status(200).hold(Duration::from_millis(80) * r.number()))
            .await;
    let ids = s.publish_numbered(&rx, N).await;
    each_sent_once_while_settles_are_busy(&s, &rx, &ids, |b| b).await;
    for id in &ids {
        assert_eq!(s.db.attempts(id).await.len(), 1);
    }
}

/// Runs a dispatcher (built by `tune` from the setup's, with leases far
/// shorter than the 2 s its outcome writes are refused `Busy`) until every
/// one of `ids` is delivered, beside a fast rescuer; then asserts each
/// message was sent once and succeeded on its first attempt.
async fn each_sent_once_while_settles_are_busy(
    s: &Setup,
    rx: &Receiver,
    ids: &[String],
    tune: impl FnOnce(DispatcherBuilder) -> DispatcherBuilder,
) {
    let busy_until = std::time::Instant::now() + Duration::from_secs(2);
    let store = s.settles_busy_while(move || std::time::Instant::now() < busy_until);
    let (mut d, rescuer) = short_leases_with(s, tune(s.dispatcher_on(store)));
    for id in ids {
        assert_eq!(delivered(&d.next_for(id).await), 200);
    }
    rescuer.stop().await;
    d.stop().await;
    assert_eq!(rx.requests().len(), ids.len(), "each message sent once");
    for id in ids {
        let task = s.db.task(id).await;
        assert_eq!(task.state, TaskState::Succeeded);
        assert_eq!(task.attempt, 1, "{task:?}");
    }
}

/// Deliveries that wait for room among the outcomes to write (the store
/// busy far longer than a lease, one slot, so four outcomes fill the
/// room) keep their leases too: no message is rescued and sent again.
#[tokio::test]
async fn deliveries_waiting_for_room_to_write_keep_their_leases() {
    const N: usize = 6;
    let s = Setup::new();
    let rx = Receiver::ok().await;
    let ids = s.publish_numbered(&rx, N).await;
    each_sent_once_while_settles_are_busy(&s, &rx, &ids, |b| b.concurrency(1)).await;
}

/// A delivery gives its slot back once its outcome is queued for writing,
/// not once it is written: while the store takes no outcomes, deliveries
/// go on until four outcomes per slot wait (one more delivery waits for
/// room, holding its slot), then stop. A stop waits until every queued
/// outcome is written.
#[tokio::test]
async fn outcomes_waiting_for_the_store_free_their_slots_up_to_a_bound() {
    const N: usize = 10;
    let s = Setup::new();
    let rx = Receiver::ok().await;
    let ids = s.publish_numbered(&rx, N).await;
    let busy = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let gate = Arc::clone(&busy);
    let store = s.settles_busy_while(move || gate.load(Ordering::SeqCst));
    let d = RunningDispatcher::start(s.dispatcher_on(store).concurrency(1).build().unwrap());
    rx.wait_for(5).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        rx.requests().len(),
        5,
        "one slot: four outcomes wait for the store, a fifth delivery for room"
    );
    for id in &ids {
        assert_ne!(s.db.task(id).await.state, TaskState::Succeeded);
    }
    let stopping = tokio::spawn(d.stop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !stopping.is_finished(),
        "a stop waits for the outcomes still to write"
    );
    busy.store(false, Ordering::SeqCst);
    stopping.await.unwrap();
    let mut succeeded = 0;
    for id in &ids {
        let task = s.db.task(id).await;
        if task.state == TaskState::Succeeded {
            succeeded += 1;
            assert_eq!(task.attempt, 1, "{task:?}");
            assert_eq!(s.db.attempts(id).await.len(), 1);
        } else {
            assert_eq!(task.state, TaskState::Available, "{task:?}");
        }
    }
    assert_eq!(succeeded, 5, "every delivery sent was written");
    assert_eq!(rx.requests().len(), 5, "each sent once");
}

#[tokio::test]
async fn failures_are_retried_on_the_schedule_with_a_fresh_signature_each_time() {
    let s = Setup::new();
    let rx = Receiver::start(|_, nth| match nth {
        0 | 1 => Answer::status(500).body("down"),
        _ => Answer::status(200),
    })
    .await;
    let mut d = RunningDispatcher::start(s.dispatcher().build().unwrap());
    let id = s
        .publish(json!({"url": rx.url("/h"), "body": "hello"}))
        .await;
    let t0 = s.clock.now_ms();

    let e = d.next_for(&id).await;
    assert_eq!(retry_at(&e), t0 + 1_000);
    let row = s.db.task(&id).await;
    assert_eq!(
        (row.state, row.run_at_ms),
        (TaskState::Retryable, t0 + 1_000)
    );
    assert_eq!(row.last_error.as_deref(), Some("HTTP 500"));
    // Not due yet: nothing happens until the clock moves.
    let t1 = s.clock.advance(Duration::from_secs(1));
    let e = d.next_for(&id).await;
    assert_eq!(retry_at(&e), t1 + 3_000);
    let t2 = s.clock.advance(Duration::from_secs(3));
    assert_eq!(delivered(&d.next_for(&id).await), 200);

    let got = rx.wait_for(3).await;
    assert_eq!(got.len(), 3);
    let stamps: Vec<i64> = got
        .iter()
        .map(|r| r.header("webhook-timestamp").parse().unwrap())
        .collect();
    assert_eq!(stamps, [t0 / 1000, t1 / 1000, t2 / 1000]);
    for (r, at) in got.iter().zip([t0, t1, t2]) {
        assert_eq!(
            r.header("webhook-id"),
            id,
            "the id is stable across attempts"
        );
        verify_standard(&s.ring, r, at / 1000).expect("each attempt verifies at its time");
    }
    let attempts = s.db.attempts(&id).await;
    let started: Vec<i64> = attempts.iter().map(|a| a.started_at_ms).collect();
    assert_eq!(started, [t0, t1, t2]);
    let gaps: Vec<i64> = started.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps[1] > gaps[0], "gaps grow: {gaps:?}");
    let statuses: Vec<_> = attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [Some(500), Some(500), Some(200)]);
    assert_eq!(attempts[0].response_body, b"down");
    d.stop().await;
}

#[tokio::test]
async fn retry_after_is_honoured_in_seconds_and_as_a_date() {
    let s = Setup::new();
    let date_clock = Arc::clone(&s.clock);
    let rx = Receiver::start(move |_, nth| match nth {
        0 => Answer::status(503).header("retry-after", "7"),
        1 => {
            let at = std::time::UNIX_EPOCH
                + Duration::from_secs(u64::try_from(date_clock.now_ms() / 1000 + 20).unwrap());
            Answer::status(429).header("retry-after", httpdate::fmt_http_date(at))
        }
        _ => Answer::status(204),
    })
    .await;
    let mut d = RunningDispatcher::start(s.dispatcher().build().unwrap());
    let id = s.publish(json!({"url": rx.url("/ra")})).await;
    let t0 = s.clock.now_ms();
    assert_eq!(retry_at(&d.next_for(&id).await), t0 + 7_000);
    let t1 = s.clock.advance(Duration::from_secs(7));
    // The date has second precision: the wait ends at that whole second.
    assert_eq!(retry_at(&d.next_for(&id).await), (t1 / 1000 + 20) * 1000);
    s.clock.advance(Duration::from_secs(20));
    assert_eq!(delivered(&d.next_for(&id).await), 204);
    assert_eq!(rx.wait_for(3).await.len(), 3);
    d.stop().await;
}

#[tokio::test]
async fn gone_stops_retrying_at_once() {
    let s = Setup::new();
    let rx = Receiver::start(|_, _| Answer::status(410).body("unsubscribed")).await;
    let mut d = RunningDispatcher::start(s.dispatcher().build().unwrap());
    let id = s
        .publish(json!({"url": rx.url("/gone"), "max_attempts": 5}))
        .await;
    let (reason, detail) = dead_of(&d.next_for(&id).await);
    assert_eq!(reason, DeadReason::TargetRefused);
    assert!(detail.contains("410 Gone"), "{detail}");
    let row = s.db.task(&id).await;
    assert_eq!((row.state, row.attempt), (TaskState::Dead, 1));
    assert_eq!(row.dead_reason, Some(DeadReason::TargetRefused));
    assert_eq!(rx.requests().len(), 1);
    d.stop().await;
}

#[tokio::test]
async fn out_of_attempts_a_message_is_dead_with_the_last_status() {
    let s = Setup::new();
    let rx = Receiver::start(|_, nth| Answer::status(if nth == 0 { 500 } else { 502 })).await;
    let mut d = RunningDispatcher::start(s.dispatcher().build().unwrap());
    let id = s
        .publish(json!({"url": rx.url("/x"), "max_attempts": 2}))
        .await;
    retry_at(&d.next_for(&id).await);
    s.clock.advance(Duration::from_secs(1));
    let (reason, detail) = dead_of(&d.next_for(&id).await);
    assert_eq!(reason, DeadReason::MaxAttempts);
    assert!(detail.contains("all 2 attempts failed"), "{detail}");
    assert!(detail.contains("HTTP 502"), "{detail}");
    let row = s.db.task(&id).await;
    assert_eq!(row.dead_detail.as_deref(), Some(detail.as_str()));
    assert_eq!(s.db.attempts(&id).await.len(), 2);
    d.stop().await;
}

#[tokio::test]
async fn the_default_attempts_are_the_schedule_plus_one_and_connect_errors_retry() {
    let s = Setup::new();
    // Nothing listens on this port any more.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut d = RunningDispatcher::start(s.dispatcher().build().unwrap());
    let id = s
        .publish(json!({"url": format!("http://{closed}/nobody")}))
        .await;
    assert_eq!(s.db.task(&id).await.envelope.max_attempts, 3);
    retry_at(&d.next_for(&id).await);
    s.clock.advance(Duration::from_secs(1));
    retry_at(&d.next_for(&id).await);
    s.clock.advance(Duration::from_secs(3));
    let (reason, detail) = dead_of(&d.next_for(&id).await);
    assert_eq!(reason, DeadReason::MaxAttempts);
    assert!(detail.contains("could not connect"), "{detail}");
    let attempts = s.db.attempts(&id).await;
    assert!(attempts
        .iter()
        .all(|a| a.status.is_none() && a.error.is_some()));
    d.stop().await;
}

#[tokio::test]
async fn a_message_changed_at_rest_is_dead_lettered_and_never_sent() {
    let s = Setup::new();
    let rx = Receiver::ok().await;
    let id = s
        .publish(json!({"url": rx.url("/pay"), "body": "amount=10"}))
        .await;
    let untouched = s
        .publish(json!({"url": rx.url("/pay"), "body": "amount=11"}))
        .await;
    {
        let evil = serde_json::to_string(&json!({
            "url": rx.url("/steal"), "method": "POST", "body": "amount=10000"
        }))
        .unwrap();
        let c = s.db.raw();
        let n = c
            .execute(
                "UPDATE tasks SET args = CAST(?1 AS BLOB) WHERE id = ?2",
                rusqlite::params![evil, id],
            )
            .unwrap();
        assert_eq!(n, 1);
    }
    let mut d = RunningDispatcher::start(s.dispatcher().build().unwrap());
    let (reason, detail) = dead_of(&d.next_for(&id).await);
    assert_eq!(reason, DeadReason::SignatureInvalid);
    assert!(detail.starts_with("mismatch"), "{detail}");
    assert_eq!(delivered(&d.next_for(&untouched).await), 200);
    let got = rx.wait_for(1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, b"amount=11");
    assert!(got.iter().all(|r| r.path != "/steal"));
    d.stop().await;
}

#[tokio::test]
async fn an_unsigned_message_is_refused_when_signatures_are_required() {
    let s = Setup::new();
    let rx = Receiver::ok().await;
    let id = s.publish(json!({"url": rx.url("/u")})).await;
    {
        let c = s.db.raw();
        c.execute(
            "UPDATE tasks SET sig = NULL, sig_alg = NULL, sig_key_id = NULL WHERE id = ?1",
            [&id],
        )
        .unwrap();
    }
    let mut d = RunningDispatcher::start(s.dispatcher().build().unwrap());
    let (reason, detail) = dead_of(&d.next_for(&id).await);
    assert_eq!(reason, DeadReason::SignatureInvalid);
    assert!(detail.starts_with("missing"), "{detail}");
    assert!(rx.requests().is_empty());
    d.stop().await;
}

#[tokio::test]
async fn per_target_concurrency_is_respected() {
    let s = Setup::new();
    let rx = Receiver::start(|_, _| Answer::status(200).hold(Duration::from_millis(150))).await;
    let (target, _secret) = s
        .targets
        .create(signet_runtime::NewTarget {
            name: "slow".into(),
            url_prefix: Some(rx.url("/")),
            secret: None,
            rate_limit_per_s: None,
            max_concurrency: Some(2),
            https_only: false,
        })
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(
            s.publish(json!({"url": rx.url(&format!("/n{i}")), "target": "slow"}))
                .await,
        );
    }
    let mut d = RunningDispatcher::start(s.dispatcher().concurrency(32).build().unwrap());
    for id in &ids {
        assert_eq!(delivered(&d.next_for(id).await), 200);
    }
    assert_eq!(rx.requests().len(), 8);
    assert_eq!(
        rx.max_in_flight(),
        2,
        "target {} allows 2 deliveries at once",
        target.name
    );
    d.stop().await;
}

#[tokio::test]
async fn shutdown_releases_deliveries_still_waiting_after_the_grace_period() {
    let s = Setup::new();
    let rx = Receiver::start(|_, _| Answer::status(200).hold(Duration::from_secs(30))).await;
    let id = s.publish(json!({"url": rx.url("/slow")})).await;
    let d = s
        .dispatcher()
        .shutdown_grace(Duration::from_millis(100))
        .build()
        .unwrap();
    let mut d = RunningDispatcher::start(d);
    // Wait until the request is being answered (held by the receiver).
    tokio::time::timeout(WAIT, async {
        while s.db.task(&id).await.state != TaskState::Running
            || rx.state.in_flight.load(Ordering::SeqCst) == 0
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    let events = {
        d.shutdown.trigger();
        d.next_for(&id).await
    };
    assert_eq!(events.kind, DeliveryEventKind::Released);
    d.stop().await;
    let row = s.db.task(&id).await;
    assert_eq!((row.state, row.attempt), (TaskState::Available, 0));
}

/// The bound on how long a killed dispatcher's deliveries stay leased.
const DEAD_DISPATCHER_BOUND: Duration = Duration::from_secs(15);

#[tokio::test]
async fn a_dead_dispatchers_deliveries_are_available_again_within_15_s() {
    use signet_runtime::dispatcher::DEFAULT_LEASE;
    use signet_runtime::{Rescuer, DEFAULT_RESCUE_INTERVAL};
    let s = Setup::new();
    // The receiver never answers in time: deliveries stay in flight.
    let rx = Receiver::start(|_, _| Answer::status(200).hold(Duration::from_secs(60))).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(s.publish(json!({"url": rx.url(&format!("/d{i}"))})).await);
    }
    // Default lease and heartbeat (the dispatcher `serve` runs).
    let d = RunningDispatcher::start(s.dispatcher().build().unwrap());
    // Wait (polling, bounded) until all three requests are being answered.
    tokio::time::timeout(WAIT, async {
        while rx.max_in_flight() < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("three deliveries in flight");
    for id in &ids {
        assert_eq!(s.db.task(id).await.state, TaskState::Running);
    }
    // SIGKILL: the dispatcher's futures are dropped; nothing is released
    // and no heartbeat is sent again.
    d.handle.abort();
    let _ = d.handle.await;
    let rescuer = Rescuer::new(Arc::clone(&s.db.store)).clock(Arc::clone(&s.dyn_clock));
    s.clock.advance(Duration::from_secs(1));
    assert_eq!(rescuer.run_once().await.unwrap(), 0, "still leased at 1 s");
    // The last rescue pass that can come before the bound runs one
    // interval before it; by then every lease has expired.
    assert!(DEFAULT_LEASE + DEFAULT_RESCUE_INTERVAL <= DEAD_DISPATCHER_BOUND);
    s.clock
        .advance(DEAD_DISPATCHER_BOUND - DEFAULT_RESCUE_INTERVAL - Duration::from_secs(1));
    assert_eq!(rescuer.run_once().await.unwrap(), 3);
    for id in &ids {
        // Claimable again at once.
        let row = s.db.task(id).await;
        assert_eq!(row.state, TaskState::Retryable);
        assert!(row.run_at_ms <= s.clock.now_ms(), "{row:?}");
        assert_eq!(row.lease_owner, None);
    }
}

#[tokio::test]
async fn a_live_slow_delivery_keeps_its_lease() {
    let s = Setup::new();
    // Answers after 5 leases: only heartbeats keep the delivery leased.
    let rx = Receiver::start(|_, _| Answer::status(200).hold(Duration::from_millis(1500))).await;
    let id = s.publish(json!({"url": rx.url("/slow")})).await;
    let (mut d, rescuer) = short_leases(&s, Arc::clone(&s.db.store));
    assert_eq!(delivered(&d.next_for(&id).await), 200);
    rescuer.stop().await;
    assert_eq!(rx.requests().len(), 1, "sent once");
    let task = s.db.task(&id).await;
    assert_eq!(task.state, TaskState::Succeeded);
    assert_eq!(task.attempt, 1);
    d.stop().await;
}
