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

/// A server on a free port with `config`; the sender stops it.
async fn running(
    config: ServerConfig,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("serve.db").display());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url, SqliteConfig::default()).unwrap());
    let listener = serve::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = AppState::new(store, config, signing(), detached_metrics_handle());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve::run(state, listener, async move {
        let _ = stopped.await;
    }));
    (addr, stop, dir)
}

/// Reads until the peer closes (or `limit` passes): what arrived, and
/// whether the connection was closed in time.
async fn read_until_closed(stream: &mut tokio::net::TcpStream, limit: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let closed = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&got).into_owned(), closed)
}

#[tokio::test]
async fn a_connection_trickling_its_headers_is_closed_after_the_header_timeout() {
    let (addr, stop, _dir) = running(ServerConfig {
        header_read_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    })
    .await;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // A byte now and then, never the end of the headers.
    let trickle = async {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if stream.write_all(b"X").await.is_err() {
                return;
            }
        }
    };
    trickle.await;
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(closed, "the trickling connection is still open");

    // A well-behaved client on another connection is served.
    let mut ok = tokio::net::TcpStream::connect(addr).await.unwrap();
    ok.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (response, _) = read_until_closed(&mut ok, Duration::from_secs(5)).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    stop.send(()).unwrap();
}

#[tokio::test]
async fn a_declared_content_length_over_the_limit_gets_413_at_once() {
    let (addr, stop, _dir) = running(ServerConfig {
        max_body_bytes: 1024,
        ..ServerConfig::default()
    })
    .await;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    // 2 MB declared, 2 bytes sent, the connection left open.
    stream
        .write_all(
            b"POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n{}",
        )
        .await
        .unwrap();
    // Well under the 30 s request timeout that answered 503 before.
    let (response, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("payload_too_large"), "{response}");
    assert!(closed, "the connection stays open after the 413");
    // A declared length within the limit still reaches the route (401: no key).
    let mut small = tokio::net::TcpStream::connect(addr).await.unwrap();
    small
        .write_all(
            b"POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        )
        .await
        .unwrap();
    let (response, _) = read_until_closed(&mut small, Duration::from_secs(5)).await;
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    stop.send(()).unwrap();
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
    assert!(
        text.contains("metrics: http://127.0.0.1:4321/metrics (open)"),
        "{text}"
    );
    assert!(text.contains("bucket per /64"), "{text}");
    let closed = Banner {
        addr: "127.0.0.1:4321".parse().unwrap(),
        store: "sqlite://./x.db",
        signing: &on,
        config: &ServerConfig {
            metrics_token: signet_server::MetricsToken::new("t0ken-in-banner").map(Arc::new),
            trusted_proxies: "10.0.0.0/8"
                .parse::<signet_server::TrustedProxies>()
                .unwrap()
                .with_x_real_ip(true),
            ..ServerConfig::default()
        },
        new_admin_key: None,
    }
    .to_string();
    assert!(closed.contains("(needs the metrics token)"), "{closed}");
    assert!(!closed.contains("t0ken-in-banner"), "{closed}");
    assert!(
        closed.contains("X-Real-IP set by trusted proxies"),
        "{closed}"
    );
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
