//! `/metrics`: its own bearer token when one is set, and labels that stay
//! bounded whatever names clients choose (issue 12 red-team items: 20 000
//! distinct queue/task names took an unauthenticated `/metrics` from 1 KB
//! to 27 MB); `# HELP` and `# TYPE` for every series; a queue depth that is
//! current.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use metrics_exporter_prometheus::PrometheusBuilder;
use signet_runtime::{ManualClock, TaskSpec};
use signet_server::config::ServerConfig;
use signet_server::serve::install_metrics_recorder;
use signet_server::{app, AppState, MetricsToken};

use crate::routes::{harness_with, signing};
use crate::support::{request, send, TempStore};

#[tokio::test]
async fn metrics_ask_for_their_token_when_one_is_set() {
    let config = ServerConfig {
        metrics_token: MetricsToken::new("scrape-t0ken").map(Arc::new),
        ..ServerConfig::default()
    };
    let h = harness_with(config, signing()).await;
    let r = h.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    assert!(r.message().contains("--metrics-token"), "{}", r.text);
    let wrong = [("authorization", "Bearer scrape-t0kem")];
    let r = send(&h.app, request(Method::GET, "/metrics", None, &wrong, None)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(!r.text.contains("scrape-t0ken"), "{}", r.text);
    // An API key, even admin, is not the metrics token.
    let r = h.call(Method::GET, "/metrics", Some(&h.admin), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let right = [("authorization", "Bearer scrape-t0ken")];
    let r = send(&h.app, request(Method::GET, "/metrics", None, &right, None)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // Without a token it stays open, as before.
    let open = harness_with(ServerConfig::default(), signing()).await;
    let r = open.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
}

/// 20 000 distinct queue and task names enqueued: `/metrics` keeps a
/// bounded number of `signet_tasks_enqueued_total` series and stays small.
/// Uses the process-wide recorder (as `signet serve` does), so series of
/// other tests in this binary may appear too; the bounds hold regardless.
#[tokio::test]
async fn twenty_thousand_distinct_names_keep_metrics_small() {
    let handle = install_metrics_recorder().expect("the recorder installs");
    let temp = TempStore::new();
    let state = AppState::new(
        Arc::clone(&temp.store),
        ServerConfig::default(),
        signing(),
        handle,
    );
    for chunk in 0..20 {
        let specs: Vec<TaskSpec> = (chunk * 1000..(chunk + 1) * 1000)
            .map(|i| {
                TaskSpec::raw(format!("flood-task-{i}"), b"{}".to_vec()).queue(format!("flood-{i}"))
            })
            .collect();
        let out = state.producer().enqueue_batch(specs).await.unwrap();
        assert_eq!(out.len(), 1000);
    }
    let app = app(state);
    let r = send(&app, request(Method::GET, "/metrics", None, &[], None)).await;
    assert_eq!(r.status, StatusCode::OK);
    let enqueued = r
        .text
        .lines()
        .filter(|l| l.starts_with("signet_tasks_enqueued_total{"))
        .count();
    let cap = signet_runtime::metrics::DEFAULT_MAX_LABEL_VALUES;
    assert!(enqueued <= 2 * cap + 1, "{enqueued} enqueued series");
    assert!(r.text.contains("queue=\"_other\""), "no _other series");
    assert!(
        r.text.len() < 256 * 1024,
        "/metrics is {} bytes after 20 000 names",
        r.text.len()
    );
}

/// Per family name: whether it has `# HELP`, and its `# TYPE`.
type Declared = HashMap<String, (bool, Option<String>)>;

/// The families of a Prometheus text as declared, and every family a
/// sample line belongs to (a summary's `_sum` and `_count` belong to it).
fn families(text: &str) -> (Declared, BTreeSet<String>) {
    let mut declared = Declared::new();
    let mut sampled = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or_default();
            declared.entry(name.to_owned()).or_default().0 = true;
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split(' ');
            let (name, kind) = (words.next().unwrap_or_default(), words.next());
            declared.entry(name.to_owned()).or_default().1 = kind.map(str::to_owned);
        } else if !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            let family = ["_sum", "_count", "_bucket"]
                .iter()
                .filter_map(|s| name.strip_suffix(s))
                .find(|base| declared.contains_key(*base))
                .unwrap_or(name);
            sampled.insert(family.to_owned());
        }
    }
    (declared, sampled)
}

/// After some work (tasks enqueued, requests answered, the queue depth
/// sampled), every series on `/metrics` has `# HELP` and `# TYPE`.
/// Uses the process-wide recorder, as `signet serve` does: other tests'
/// series are checked too.
#[tokio::test]
async fn every_series_has_help_and_type() {
    let handle = install_metrics_recorder().expect("the recorder installs");
    let temp = TempStore::new();
    let state = AppState::new(
        Arc::clone(&temp.store),
        ServerConfig::default(),
        signing(),
        handle,
    );
    let spec = TaskSpec::raw("help.check", b"{}".to_vec()).queue("help-and-type");
    state.producer().enqueue(spec).await.unwrap();
    let app = app(state);
    // The first scrape is a request the second one shows.
    send(&app, request(Method::GET, "/metrics", None, &[], None)).await;
    let r = send(&app, request(Method::GET, "/metrics", None, &[], None)).await;
    assert_eq!(r.status, StatusCode::OK);
    let (declared, sampled) = families(&r.text);
    for name in [
        "signet_tasks_enqueued_total",
        "signet_queue_depth",
        "signet_http_requests_total",
        "signet_http_request_duration_seconds",
    ] {
        assert!(sampled.contains(name), "{name} is not on /metrics");
    }
    for name in &sampled {
        let (help, kind) = declared.get(name).cloned().unwrap_or_default();
        assert!(help, "{name} has no # HELP:\n{}", r.text);
        assert!(kind.is_some(), "{name} has no # TYPE:\n{}", r.text);
    }
}

/// The `available` depth on one `/metrics` text, summed over queue labels
/// (a queue past the label cap reads `_other`).
fn available(text: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with("signet_queue_depth{") && l.contains("state=\"available\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `/metrics` counts the queues when its sample is older than
/// `DEPTH_MAX_AGE`, so it agrees with `signet queues` at once instead of
/// up to 15 s later; within that age scrapes share one count. A recorder
/// local to this (single) test thread holds only this store's depth.
#[tokio::test]
async fn queue_depth_is_counted_when_scraped() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let _local = metrics::set_default_local_recorder(&recorder);
    let temp = TempStore::new();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let state = AppState::with_clock(
        Arc::clone(&temp.store),
        ServerConfig::default(),
        signing(),
        handle,
        clock.clone(),
    );
    let enqueue = |n: usize| {
        let state = state.clone();
        async move {
            for _ in 0..n {
                let spec = TaskSpec::raw("depth.check", b"{}".to_vec()).queue("depth-now");
                state.producer().enqueue(spec).await.unwrap();
            }
        }
    };
    let app = app(state.clone());
    let scrape = || async { send(&app, request(Method::GET, "/metrics", None, &[], None)).await };
    enqueue(2).await;
    assert_eq!(available(&scrape().await.text), 2.0);
    // Within DEPTH_MAX_AGE the last count is served: one count a second
    // at most, however often scrapers ask.
    enqueue(1).await;
    assert_eq!(available(&scrape().await.text), 2.0);
    clock.advance(signet_runtime::metrics::DEPTH_MAX_AGE);
    assert_eq!(available(&scrape().await.text), 3.0);
}
