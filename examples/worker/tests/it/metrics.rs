//! `--metrics-listen`: the worker serves its own `/metrics`, with the
//! series names `signet serve` uses.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;
use signet_runtime::TaskSpec;

use crate::support::*;

/// `GET /metrics` over a plain socket: the status line and the body.
fn scrape(addr: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_serves_its_metrics() {
    let env = Env::new();
    let q = "worker-metrics";
    let id = env
        .producer
        .enqueue(TaskSpec::new("text.stats", &json!({ "text": "one two" })).queue(q))
        .await
        .unwrap()
        .task
        .id()
        .to_owned();
    let (child, log) = spawn_logging_worker(
        &env,
        &[
            "--queue",
            q,
            "--poll-ms",
            "5",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    // The address it bound is in its log.
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = std::iter::from_fn(|| {
        log.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .ok()
    })
    .find_map(|line| {
        line.split_once("metrics at http://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or_default().to_owned())
    })
    .expect("the worker logs where its metrics are");

    let deadline = Instant::now() + Duration::from_secs(20);
    while !env.store.task(&id).await.unwrap().unwrap().state.is_final() {
        assert!(Instant::now() < deadline, "the task did not finish in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, text) = scrape(&addr);
    terminate(child, Duration::from_secs(15));

    assert!(status.contains(" 200 "), "{status}");
    let succeeded = format!("signet_tasks_succeeded_total{{queue=\"{q}\",task=\"text.stats\"}} 1");
    assert!(text.contains(&succeeded), "{text}");
    assert!(
        text.contains("# HELP signet_tasks_succeeded_total "),
        "{text}"
    );
    // Counted when scraped, as on `signet serve`.
    let depth = format!("signet_queue_depth{{queue=\"{q}\",state=\"succeeded\"}} 1");
    assert!(text.contains(&depth), "{text}");
}
