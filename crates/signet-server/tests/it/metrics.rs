//! `/metrics`: its own bearer token when one is set, and labels that stay
//! bounded whatever names clients choose (issue 12 red-team items: 20 000
//! distinct queue/task names took an unauthenticated `/metrics` from 1 KB
//! to 27 MB).

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use signet_runtime::TaskSpec;
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
