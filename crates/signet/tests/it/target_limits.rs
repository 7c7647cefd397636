//! A target's limits hold for the deployment: three `signet serve` nodes on
//! one PostgreSQL schema (`SIGNET_TEST_DATABASE_URL`) deliver to targets
//! limited to 50/s and to 3 in flight, measured at receivers on
//! 127.0.0.1:0; and a SIGKILLed node's concurrency slot comes back after
//! its lease (docs/deploy.md).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use signet_runtime::dispatcher::{DEFAULT_HEARTBEAT, DEFAULT_LEASE};
use signet_store::testkit::most_within;
use signet_store::{Event, Store as _, TaskFilter, TaskState, MESSAGE_QUEUE};

use super::multinode::{fresh_schema, start_node_with, test_database_url, TestStore};
use super::support::Server;

const MASTER_KEY: &str = "c2lnbmV0LWxpbWl0cy10ZXN0LW1hc3Rlci1rZXktMzI=";

/// What a receiver saw: when each request arrived, and the most requests
/// in flight at once.
#[derive(Default)]
struct Seen {
    arrivals: Mutex<Vec<Instant>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl Seen {
    fn arrivals(&self) -> Vec<Instant> {
        let mut a = self.arrivals.lock().unwrap().clone();
        a.sort();
        a
    }
}

/// An HTTP/1.1 receiver on 127.0.0.1:0 (keep-alive, a thread per
/// connection) that answers 200 after `hold`; returns its port.
fn receiver(hold: Duration) -> (u16, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let shared = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let seen = Arc::clone(&shared);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0;
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 {
                            return;
                        }
                        let header = header.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':') {
                            if name.eq_ignore_ascii_case("content-length") {
                                length = value.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    seen.arrivals.lock().unwrap().push(Instant::now());
                    let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    seen.max_in_flight.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(hold);
                    // Counted out before the answer leaves, so the next
                    // request the answer lets through is never counted
                    // together with this one.
                    seen.in_flight.fetch_sub(1, Ordering::SeqCst);
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                    if reader.get_mut().write_all(answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, seen)
}

fn start_node(url: &str, schema: &str, node_id: &str, extra: &[&str]) -> (Server, Option<String>) {
    let env = [
        ("SIGNET_MASTER_KEY", MASTER_KEY),
        ("SIGNET_ALLOWED_TARGET_CIDRS", "127.0.0.0/8"),
    ];
    start_node_with(url, schema, node_id, &env, extra)
}

/// Starts `n` nodes sharing the first one's admin key.
fn start_nodes(url: &str, schema: &str, n: usize, extra: &[&str]) -> Vec<Server> {
    let (first, key) = start_node(url, schema, "node-0", extra);
    let key = key.expect("a new store prints an admin key");
    let mut nodes = vec![first];
    for i in 1..n {
        let (mut node, _) = start_node(url, schema, &format!("node-{i}"), extra);
        node.key.clone_from(&key);
        nodes.push(node);
    }
    nodes
}

fn create_target(node: &Server, name: &str, port: u16, limits: serde_json::Value) {
    let mut body = serde_json::json!({
        "name": name,
        "url_prefix": format!("http://127.0.0.1:{port}/"),
    });
    body.as_object_mut()
        .unwrap()
        .extend(limits.as_object().unwrap().clone());
    let (status, text) = node.http("POST", "/v1/targets", Some(&body.to_string()));
    assert_eq!(status, 201, "create target {name}: {text}");
}

/// Publishes `count` messages to `target`, spread over the nodes.
fn publish(nodes: &[Server], target: &str, port: u16, count: usize) {
    for i in 0..count {
        let body = serde_json::json!({
            "url": format!("http://127.0.0.1:{port}/m{i}"),
            "target": target,
            "body": format!("message {i}"),
        })
        .to_string();
        let (status, text) = nodes[i % nodes.len()].http("POST", "/v1/messages", Some(&body));
        assert_eq!(status, 201, "publish {i} to {target}: {text}");
    }
}

/// Waits until `seen` has `count` arrivals, within `within`.
fn wait_arrivals(seen: &Seen, count: usize, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    while seen.arrivals.lock().unwrap().len() < count {
        assert!(
            Instant::now() < deadline,
            "{what}: only {} of {count} requests arrived within {within:?}",
            seen.arrivals.lock().unwrap().len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The dispatchers whose attempts delivered the messages of the store.
fn delivering_workers(store: &TestStore) -> BTreeSet<String> {
    let page = store
        .block_on(store.store.list_tasks(TaskFilter {
            queue: Some(MESSAGE_QUEUE.to_owned()),
            state: Some(TaskState::Succeeded),
            include_internal: true,
            limit: 1000,
            cursor: None,
        }))
        .expect("list messages");
    let mut workers = BTreeSet::new();
    for row in &page.items {
        let history = store
            .block_on(store.store.history(row.id()))
            .expect("history");
        for e in history {
            if let Event::Attempt(a) = e.event {
                workers.extend(a.worker);
            }
        }
    }
    workers
}

#[test]
fn three_nodes_hold_a_targets_rate_and_concurrency() {
    const TEST: &str = "three_nodes_hold_a_targets_rate_and_concurrency";
    const RATE: usize = 50;
    const RATED: usize = 300;
    const NARROW: usize = 90;
    let Some(url) = test_database_url(TEST) else {
        return;
    };
    let schema = fresh_schema("it_limits");
    let store = TestStore::open(&url, &schema);
    let started = Instant::now();
    // Each node claims a few messages at a time, so all three deliver.
    let nodes = start_nodes(&url, &schema, 3, &["--delivery-concurrency", "16"]);

    let (rated_port, rated) = receiver(Duration::ZERO);
    let (narrow_port, narrow) = receiver(Duration::from_millis(50));
    create_target(
        &nodes[0],
        "rated",
        rated_port,
        serde_json::json!({ "rate_limit_per_s": RATE }),
    );
    create_target(
        &nodes[1],
        "narrow",
        narrow_port,
        serde_json::json!({ "max_concurrency": 3 }),
    );
    publish(&nodes, "rated", rated_port, RATED);
    publish(&nodes, "narrow", narrow_port, NARROW);

    wait_arrivals(&narrow, NARROW, Duration::from_secs(20), "narrow");
    wait_arrivals(&rated, RATED, Duration::from_secs(20), "rated");

    // At most 3 in flight, measured at the receiver.
    let most = narrow.max_in_flight.load(Ordering::SeqCst);
    assert!(
        most <= 3,
        "{most} requests in flight at once; the limit is 3"
    );
    // At most 50/s (+10 %) in any second, warm-up included.
    let arrivals = rated.arrivals();
    let most = most_within(&arrivals, Duration::from_secs(1));
    let took = *arrivals.last().unwrap() - arrivals[0];
    eprintln!(
        "{TEST}: {RATED} requests to a 50/s target in {took:?} ({:.1}/s), at most {most} in any second; \
         {NARROW} to a 3-at-once target, at most {} in flight; {:?} in all",
        (RATED - 1) as f64 / took.as_secs_f64(),
        narrow.max_in_flight.load(Ordering::SeqCst),
        started.elapsed()
    );
    assert!(
        most <= RATE * 11 / 10,
        "{most} requests within one second to a target limited to {RATE}/s"
    );
    // Every message was delivered, once, and by more than one node.
    let workers = delivering_workers(&store);
    assert_eq!(
        workers.len(),
        3,
        "every node should have delivered some messages: {workers:?}"
    );
    assert_eq!(rated.arrivals().len(), RATED, "a message was sent twice");
    assert_eq!(narrow.arrivals().len(), NARROW, "a message was sent twice");
    drop(nodes);
}

#[test]
fn a_killed_nodes_slot_comes_back_after_its_lease() {
    const TEST: &str = "a_killed_nodes_slot_comes_back_after_its_lease";
    let Some(url) = test_database_url(TEST) else {
        return;
    };
    let schema = fresh_schema("it_limits_kill");
    // Dropped last: drops the schema.
    let _store = TestStore::open(&url, &schema);
    // A receiver slow enough that the first request is still in flight
    // when its node dies.
    let (port, seen) = receiver(Duration::from_secs(3));
    // One message at a time on the first node: the others stay available.
    let mut first = start_nodes(&url, &schema, 1, &["--delivery-concurrency", "1"]);
    create_target(
        &first[0],
        "single",
        port,
        serde_json::json!({ "max_concurrency": 1 }),
    );
    publish(&first, "single", port, 3);
    wait_arrivals(&seen, 1, Duration::from_secs(10), "the first request");
    let killed = Instant::now();
    first[0].process.guard.kill();

    // Another node finds the slot held by the dead one until its lease
    // (the delivery lease) expires, then delivers the other messages.
    let (mut second, _) = start_node(&url, &schema, "node-1", &[]);
    second.key.clone_from(&first[0].key);
    wait_arrivals(
        &seen,
        2,
        Duration::from_secs(25),
        "a request after the kill",
    );
    let arrivals = seen.arrivals();
    let after = arrivals[1] - killed;
    eprintln!("{TEST}: the next request arrived {after:?} after the kill");
    // The slot's last renewal was at most one heartbeat before the kill.
    assert!(
        after >= DEFAULT_LEASE - DEFAULT_HEARTBEAT,
        "a request arrived {after:?} after the kill, while the dead node's slot was held"
    );
    assert!(
        after <= DEFAULT_LEASE + Duration::from_secs(3),
        "the dead node's slot came back only {after:?} after the kill"
    );
    drop(second);
}
