//! The console: `/ui`, server-rendered pages over the same services as the
//! API (DESIGN §12).
//!
//! Templates (askama, checked at build time), the style sheet and the one
//! script are compiled into the binary; pages make no external request.
//! Every answer carries a strict Content-Security-Policy (no inline script
//! or style), `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer` and
//! `X-Content-Type-Options: nosniff`.
//!
//! Sign-in takes an API key and opens a session ([`session`]): a cookie
//! sealed under a key derived from the master key, so every node behind a
//! load balancer accepts it and checks its CSRF token. The session keeps
//! the key's hash, and every request asks the store again whether the key
//! is still valid, so revoking a key ends its sessions; sign-out records
//! the session as ended in the store, which every request asks too. `read` keys see
//! every page and get no action buttons; the server refuses their actions
//! too (targets, admin-only on the API even to read, are admin-only here).
//! Every state-changing form carries the session's CSRF token. Actions and
//! listings call the functions the API routes call (`replay_selected`,
//! `purge_selected`, `cancel_as`, `retry_as`, `resend_as`, `pause_as`,
//! `resume_as`, `create_target`, `rotate`, `delete_target`,
//! `pause_or_resume`, the schedule service, each route module's
//! `list_filter` and views), never a second copy.
//!
//! Not built yet: renaming targets, and live updates beyond the overview's
//! redraw.

mod assets;
mod dead_letters;
mod keys;
mod messages;
mod overview;
mod page;
mod scan;
mod schedules;
pub(crate) mod session;
mod sign_in;
mod targets;
mod tasks;
mod viewer;

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

pub(crate) use session::Sessions;

/// The Content-Security-Policy of every console answer.
pub(crate) const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// The console's routes, all under `/ui`, with the security headers and
/// the session layer.
pub(crate) fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/ui", get(overview::page))
        .route("/ui/", get(overview::page))
        .route("/ui/sign-in", get(sign_in::form).post(sign_in::submit))
        .route("/ui/sign-out", post(sign_in::sign_out))
        .route("/ui/assets/{name}", get(assets::serve))
        .route("/ui/tasks", get(tasks::list))
        .route("/ui/tasks/{id}", get(tasks::show))
        .route("/ui/tasks/{id}/cancel", post(tasks::cancel))
        .route("/ui/tasks/{id}/retry", post(tasks::retry))
        .route("/ui/messages", get(messages::list))
        .route("/ui/messages/{id}", get(messages::show))
        .route("/ui/messages/{id}/retry", post(messages::retry))
        .route("/ui/messages/{id}/resend", post(messages::resend))
        .route("/ui/queues/{queue}/pause", post(overview::pause))
        .route("/ui/queues/{queue}/resume", post(overview::resume))
        .route("/ui/targets", get(targets::list).post(targets::create))
        .route("/ui/targets/{id}/rotate", post(targets::rotate_secret))
        .route("/ui/targets/{id}/delete", post(targets::delete))
        .route("/ui/targets/{id}/limits", post(targets::limits))
        .route("/ui/schedules", get(schedules::list))
        .route("/ui/schedules/check", get(schedules::check))
        .route(
            "/ui/schedules/new",
            get(schedules::new_form).post(schedules::create),
        )
        .route(
            "/ui/schedules/{id}/edit",
            get(schedules::edit_form).post(schedules::update),
        )
        .route("/ui/schedules/{id}/pause", post(schedules::pause))
        .route("/ui/schedules/{id}/resume", post(schedules::resume))
        .route("/ui/keys", get(keys::page).post(keys::create))
        .route("/ui/keys/{id}/revoke", post(keys::revoke))
        .route("/ui/dead-letters", get(dead_letters::list))
        .route("/ui/dead-letters/confirm", get(dead_letters::confirm))
        .route("/ui/dead-letters/replay", post(dead_letters::replay))
        .route("/ui/dead-letters/purge", post(dead_letters::purge))
        .route("/ui/{*rest}", get(page::not_found))
        .layer(middleware::from_fn_with_state(state, viewer::sessions))
        .layer(middleware::from_fn(security_headers))
}

/// Adds the console's security headers to every answer; pages (not the
/// compiled-in assets) are also marked `no-store`, as they show live data
/// and a CSRF token.
async fn security_headers(request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/ui/assets/");
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !is_asset {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
