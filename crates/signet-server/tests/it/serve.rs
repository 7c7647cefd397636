//! `serve::run` on a real socket: requests are answered with the peer's
//! address known, the shutdown signal stops it cleanly and closes the store;
//! the first start creates one admin key; the banner says what it should.

use std::sync::Arc;
use std::time::Duration;

use signet_server::config::ServerConfig;
use signet_server::serve::{self, detached_metrics_handle, Banner};
use signet_server::{AppState, Signing};
use signet_sqlite::{SqliteConfig, SqliteStore};
use signet_store::{Store, StoreError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::routes::signing;

async fn get(addr: std::net::SocketAddr, path: &str, key: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn serves_then_shuts_down_gracefully_and_closes_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("serve.db").display());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url, SqliteConfig::default()).unwrap());

    let first = serve::ensure_admin_key(store.as_ref(), 1).await.unwrap();
    let admin = first.expect("an empty store gets an admin key");
    assert_eq!(admin.record.scope, "admin");
    assert!(serve::ensure_admin_key(store.as_ref(), 2)
        .await
        .unwrap()
        .is_none());
    assert_eq!(store.list_api_keys().await.unwrap().len(), 1);

    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        shutdown_grace: Duration::from_secs(2),
        ..ServerConfig::default()
    };
    let listener = serve::bind(config.listen).await.unwrap();
    let addr = listener.local_addr().unwrap();
    assert_ne!(addr.port(), 0);
    let state = AppState::new(
        Arc::clone(&store),
        config,
        signing(),
        detached_metrics_handle(),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve::run(state, listener, async move {
        let _ = stopped.await;
    }));

    let response = get(addr, "/v1/queues", admin.secret.expose_secret()).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("x-ratelimit-remaining"),
        "{response}"
    );

    stop.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server stopped within the grace period")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    assert!(matches!(store.ping().await, Err(StoreError::Closed)));
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}

#[test]
fn banner_says_where_what_and_how() {
    let on = signing();
    let text = Banner {
        addr: "127.0.0.1:4321".parse().unwrap(),
        store: "sqlite://./x.db",
        signing: &on,
        config: &ServerConfig::default(),
        new_admin_key: None,
    }
    .to_string();
    assert!(
        text.contains("listening on http://127.0.0.1:4321\n"),
        "{text}"
    );
    assert!(text.contains("store: sqlite://./x.db"), "{text}");
    assert!(
        text.contains("signing: on (hmac-sha256, active key k1)"),
        "{text}"
    );
    assert!(text.contains("signet api-keys create"), "{text}");
    assert!(text.contains("per key 20000/s (burst 40000)"), "{text}");
    assert!(text.contains("the direct peer"), "{text}");
    let off = Signing::off();
    let text = Banner {
        addr: "127.0.0.1:4321".parse().unwrap(),
        store: "sqlite://./x.db",
        signing: &off,
        config: &ServerConfig {
            trusted_proxies: "0.0.0.0/0".parse().unwrap(),
            rate_limit_per_key: None,
            ..ServerConfig::default()
        },
        new_admin_key: None,
    }
    .to_string();
    assert!(text.contains("WARN signing: OFF"), "{text}");
    assert!(text.contains("rate limits: per key off"), "{text}");
    assert!(
        text.contains("WARN trusted proxies include 0.0.0.0/0"),
        "{text}"
    );
}
