//! Accepting connections and serving the API on them: what `axum::serve`
//! does, plus a header-read timeout.
//!
//! Each connection is HTTP/1.1 (hyper) with a timer, so a client that does
//! not send a request's headers within
//! [`ServerConfig::header_read_timeout`](crate::ServerConfig) — trickling
//! them byte by byte, or idling on a kept-alive connection — is
//! disconnected instead of holding a socket and a task for as long as it
//! likes. Each request carries the peer's address
//! ([`ConnectInfo<SocketAddr>`]) for the per-client rate limit; `TCP_NODELAY`
//! is set so small responses go out at once. On the shutdown signal the
//! listener closes and every connection finishes its request in flight and
//! closes; [`serve_connections`] returns when they all have.

use std::future::Future;
use std::io;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt as _;

/// How long to wait before accepting again after an error such as "too many
/// open files", which would otherwise spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Serves `app` on `listener` until `signal` completes, then lets every
/// open connection finish its request in flight and returns.
pub(crate) async fn serve_connections(
    listener: TcpListener,
    app: Router,
    header_read_timeout: Duration,
    signal: impl Future<Output = ()>,
) {
    let (closing_tx, closing_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(signal);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "accepting a connection failed; retrying in 1 s");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY on a connection");
        }
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request)
        });
        let mut closing = closing_rx.clone();
        connections.spawn(async move {
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout);
            let connection = builder.serve_connection(TokioIo::new(tcp), service);
            tokio::pin!(connection);
            let outcome = tokio::select! {
                outcome = connection.as_mut() => outcome,
                () = async {
                    // The borrow `wait_for` returns is dropped here, not
                    // held while the connection finishes.
                    let _ = closing.wait_for(|closing| *closing).await;
                } => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = outcome {
                // Timeouts, resets and malformed requests: the client's
                // business, not an operator's.
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
        // Reap finished connections so the set holds only open ones.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    // Nobody may be listening any more; that is fine.
    let _ = closing_tx.send(true);
    while connections.join_next().await.is_some() {}
}

/// Errors of one connection that say nothing about the listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
