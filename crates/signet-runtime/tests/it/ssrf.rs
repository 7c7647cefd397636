//! The SSRF guard in the dispatcher: the metadata address, a private
//! address and a name resolving to 127.0.0.1 are dead-lettered
//! `target-refused` naming the rule, and nothing is sent; allowed ranges
//! open them.

use serde_json::json;
use signet_runtime::SsrfPolicy;
use signet_store::{DeadReason, TaskState};

use crate::dispatcher::*;

#[tokio::test]
async fn metadata_private_and_loopback_names_are_refused_by_default() {
    let s = Setup::new();
    let rx = Receiver::ok().await;
    let port = rx.addr.port();
    let mut d = RunningDispatcher::start(
        s.dispatcher()
            .ssrf_policy(SsrfPolicy::new())
            .build()
            .unwrap(),
    );
    let cases = [
        (
            "http://169.254.169.254/latest/meta-data/".to_owned(),
            "cloud-metadata",
        ),
        ("http://10.0.0.1/hook".to_owned(), "private"),
        (format!("http://localhost:{port}/hook"), "loopback"),
        (format!("http://127.0.0.1:{port}/hook"), "loopback"),
        (format!("http://[::ffff:127.0.0.1]:{port}/hook"), "loopback"),
    ];
    for (url, rule) in cases {
        let id = s.publish(json!({"url": url, "max_attempts": 5})).await;
        let (reason, detail) = dead_of(&d.next_for(&id).await);
        assert_eq!(reason, DeadReason::TargetRefused, "{url}");
        assert!(detail.contains(rule), "{url}: {detail}");
        assert!(detail.contains("SIGNET_ALLOWED_TARGET_CIDRS"), "{detail}");
        let row = s.db.task(&id).await;
        assert_eq!((row.state, row.attempt), (TaskState::Dead, 1), "{url}");
        let attempts = s.db.attempts(&id).await;
        assert_eq!(attempts.len(), 1);
        assert!(attempts[0].error.as_deref().unwrap().contains(rule));
    }
    // A name is judged by what it resolves to.
    let id = s
        .publish(json!({"url": format!("http://localhost:{port}/x")}))
        .await;
    let (_, detail) = dead_of(&d.next_for(&id).await);
    assert!(detail.contains("localhost resolves to"), "{detail}");
    assert!(rx.requests().is_empty(), "nothing reached the receiver");
    d.stop().await;
}

#[tokio::test]
async fn allowed_ranges_open_loopback_names_and_literals() {
    let s = Setup::new();
    let rx = Receiver::ok().await;
    let port = rx.addr.port();
    let mut d = RunningDispatcher::start(
        s.dispatcher()
            .ssrf_policy(SsrfPolicy::parse_allowed("127.0.0.0/8, ::1").unwrap())
            .build()
            .unwrap(),
    );
    for url in [
        format!("http://localhost:{port}/a"),
        format!("http://127.0.0.1:{port}/b"),
    ] {
        let id = s.publish(json!({"url": url})).await;
        assert_eq!(delivered(&d.next_for(&id).await), 200, "{url}");
    }
    // Other ranges stay closed.
    let id = s.publish(json!({"url": "http://169.254.169.254/"})).await;
    assert_eq!(dead_of(&d.next_for(&id).await).0, DeadReason::TargetRefused);
    assert_eq!(rx.wait_for(2).await.len(), 2);
    d.stop().await;
}

#[tokio::test]
async fn a_redirect_to_the_metadata_service_is_not_followed() {
    let s = Setup::new();
    let rx = Receiver::start(|_, _| {
        Answer::status(302).header("location", "http://169.254.169.254/latest/meta-data/")
    })
    .await;
    let mut d = RunningDispatcher::start(s.dispatcher().build().unwrap());
    let id = s
        .publish(json!({"url": rx.url("/r"), "max_attempts": 1}))
        .await;
    let (reason, detail) = dead_of(&d.next_for(&id).await);
    assert_eq!(reason, DeadReason::MaxAttempts);
    assert!(
        detail.contains("HTTP 302") && detail.contains("not followed"),
        "{detail}"
    );
    assert_eq!(rx.requests().len(), 1);
    let attempts = s.db.attempts(&id).await;
    assert_eq!(attempts[0].status, Some(302));
    d.stop().await;
}
