//! `signet receive`: a development receiver that verifies every request
//! with `signet_sign::receiver` (the same extractor a Rust endpoint uses)
//! and prints what it accepted and what it refused, and why.
//!
//! It answers like a real receiver would: `200` for a verified delivery,
//! `200 {"duplicate":true}` for a replay of one already accepted (the
//! replay guard is on), `401` with the reason for a bad signature or stale
//! timestamp, `413` for an oversize body. The first line on stdout is
//! `listening on http://ADDR`, so `--listen 127.0.0.1:0` works in scripts.
//! Then one line per request, on stdout, flushed at once.

use axum::serve::ListenerExt as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::json;
use signet_sign::receiver::{VerifiedWebhook, Verifier, WebhookRejection, DEFAULT_MAX_BODY_BYTES};

use crate::commands::finish;
use crate::commands::sign::KeyArgs;
use crate::output::{printable, truncate};
use crate::timearg::parse_duration;

/// Most characters of a body printed in text mode (the rest is cut, and
/// the line says how long the body was).
const MAX_PRINTED_BODY: usize = 4096;

/// Arguments of `signet receive`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Address to listen on (`127.0.0.1:0` picks a free port; the first
    /// line printed says which).
    #[arg(long, default_value = "127.0.0.1:8788")]
    listen: SocketAddr,
    #[command(flatten)]
    keys: KeyArgs,
    /// Accept timestamps at most this far from now, either way.
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    tolerance: Duration,
    /// Refuse larger bodies with 413.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Print one JSON object per request instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return finish(
                "receive",
                Err(anyhow!("cannot start the async runtime: {e}")),
            )
        }
    };
    finish("receive", runtime.block_on(receive(args)))
}

#[derive(Clone)]
struct Receiver {
    verifier: Verifier,
    json: bool,
}

impl axum::extract::FromRef<Receiver> for Verifier {
    fn from_ref(state: &Receiver) -> Self {
        state.verifier.clone()
    }
}

async fn receive(args: Args) -> anyhow::Result<()> {
    let keys = args.keys.parse()?;
    let key_count = keys.len();
    let tolerance = i64::try_from(args.tolerance.as_secs()).unwrap_or(i64::MAX);
    let verifier = Verifier::profile(args.keys.profile, keys)
        .map_err(|e| anyhow!("--secret: {}", e.message()))?
        .with_tolerance_secs(tolerance)
        .with_max_body_bytes(args.max_body_bytes);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; choose another address with --listen",
                args.listen
            )
        })?;
    let addr = listener.local_addr()?;
    emit(
        args.json,
        &json!({
            "event": "listening",
            "addr": addr.to_string(),
            "profile": args.keys.profile.as_str(),
            "keys": key_count,
            "tolerance_s": tolerance,
        }),
        &format!(
            "listening on http://{addr}\n  profile {}, {key_count} key{}, tolerance {tolerance} s, replay guard on; Ctrl-C stops",
            args.keys.profile.as_str(),
            if key_count == 1 { "" } else { "s" }
        ),
    );
    let app = Router::new().fallback(handle).with_state(Receiver {
        verifier,
        json: args.json,
    });
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(signet_server::serve::shutdown_signal())
        .await
        .context("the receiver's listener failed")?;
    Ok(())
}

/// Prints one line (JSON or text) and flushes, so a reader sees it at once.
fn emit(json: bool, value: &serde_json::Value, text: &str) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (the reader went away) is no reason to stop serving.
    let _ = if json {
        writeln!(out, "{value}")
    } else {
        writeln!(out, "{text}")
    };
    let _ = out.flush();
}

async fn handle(
    State(receiver): State<Receiver>,
    method: Method,
    uri: Uri,
    hook: Result<VerifiedWebhook, WebhookRejection>,
) -> Response {
    let path = printable(uri.path());
    match hook {
        Ok(hook) => {
            let body = String::from_utf8_lossy(&hook.body);
            let id = hook.id.as_deref().unwrap_or("-");
            let timestamp = hook
                .timestamp
                .map_or_else(|| "-".to_owned(), |t| t.to_string());
            let mut text = format!(
                "ACCEPTED {method} {path} id={} timestamp={timestamp} key={:?} body={}",
                printable(id),
                // Quoted: a position label ("secret 1") has a space.
                printable(&hook.key_label),
                printable(&truncate(&body, MAX_PRINTED_BODY)),
            );
            if body.chars().count() > MAX_PRINTED_BODY {
                text.push_str(&format!(" ({} bytes in all)", hook.body.len()));
            }
            for warning in &hook.warnings {
                text.push_str(&format!("\n  WARN {}", printable(warning)));
            }
            emit(
                receiver.json,
                &json!({
                    "event": "accepted",
                    "method": method.as_str(),
                    "path": uri.path(),
                    "id": hook.id,
                    "timestamp": hook.timestamp,
                    "key": hook.key_label,
                    "body": body,
                    "warnings": hook.warnings,
                }),
                &text,
            );
            (
                StatusCode::OK,
                axum::Json(json!({ "received": true, "id": hook.id })),
            )
                .into_response()
        }
        Err(rejection) => {
            let status = rejection.status().as_u16();
            if rejection.is_duplicate() {
                let id = rejection.duplicate_id().unwrap_or("-");
                emit(
                    receiver.json,
                    &json!({
                        "event": "duplicate",
                        "method": method.as_str(),
                        "path": uri.path(),
                        "id": rejection.duplicate_id(),
                        "status": status,
                    }),
                    &format!(
                        "DUPLICATE {method} {path} id={} (seen before; answered {status}, not processed again)",
                        printable(id)
                    ),
                );
            } else {
                emit(
                    receiver.json,
                    &json!({
                        "event": "rejected",
                        "method": method.as_str(),
                        "path": uri.path(),
                        "reason": rejection.reason(),
                        "status": status,
                        "message": rejection.message(),
                    }),
                    &format!(
                        "REJECTED {method} {path} reason={} status={status}: {}",
                        rejection.reason(),
                        printable(&rejection.message())
                    ),
                );
            }
            rejection.into_response()
        }
    }
}
