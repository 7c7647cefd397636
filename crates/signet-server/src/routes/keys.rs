//! `GET /v1/keys/status`: pending tasks and messages per signing key id,
//! beside the server's ring, so an operator sees when an old key can be
//! removed (the same rule as `signet keys status`).

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use signet_runtime::KeyRole;

use crate::error::{AppResult, ErrorBody};
use crate::state::AppState;

/// One key id's standing (the rule `signet keys status` follows too:
/// `signet_runtime::key_status`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct KeyStatus {
    /// The key id; `null` for unsigned work.
    pub key_id: Option<String>,
    /// Its algorithm; `null` for unsigned work.
    pub alg: Option<String>,
    /// Pending (not final) tasks and messages signed with it.
    pub pending: u64,
    /// Pending tasks signed with it.
    pub pending_tasks: u64,
    /// Pending messages signed with it (at rest).
    pub pending_messages: u64,
    /// Whether the key is in this server's ring.
    pub in_ring: bool,
    /// Whether it is the active (signing) key.
    pub active: bool,
    /// Whether it signs beside the active key (a rotation overlap).
    pub overlap: bool,
    /// Whether it was added after the active key and is not active yet.
    pub new: bool,
    /// Neither active, overlapping nor new, and nothing pending is signed
    /// with it: it can leave the ring.
    pub safe_to_retire: bool,
    /// What to do about it, in words.
    pub advice: &'static str,
}

/// Response of `GET /v1/keys/status`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct KeysStatusResponse {
    /// Whether the server signs what it enqueues.
    pub signing: bool,
    /// The active key id, if any.
    pub active_key_id: Option<String>,
    /// Every key of the ring, then every other key id pending work was
    /// signed with, unsigned work last.
    pub keys: Vec<KeyStatus>,
}

/// Pending work per signing key id, and which keys are safe to retire.
#[utoipa::path(
    get, path = "/v1/keys/status", tag = "keys",
    responses((status = 200, body = KeysStatusResponse), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
pub(crate) async fn status(State(state): State<AppState>) -> AppResult<Json<KeysStatusResponse>> {
    report(&state).await.map(Json)
}

/// Every signing key id's standing: what `GET /v1/keys/status` answers,
/// and the console's keys page shows.
pub(crate) async fn report(state: &AppState) -> AppResult<KeysStatusResponse> {
    let usage = state.store().pending_by_key().await?;
    let ring = &state.signing().ring;
    let keys = signet_runtime::key_status(usage, ring)
        .into_iter()
        .map(|k| KeyStatus {
            pending: k.tasks + k.messages,
            pending_tasks: k.tasks,
            pending_messages: k.messages,
            in_ring: k.role.is_some(),
            active: k.role == Some(KeyRole::Active),
            overlap: k.role == Some(KeyRole::Overlap),
            new: k.role == Some(KeyRole::New),
            safe_to_retire: k.safe_to_retire(),
            advice: k.advice(),
            alg: k.algorithm.map(|a| a.as_str().to_owned()),
            key_id: k.key_id,
        })
        .collect();
    Ok(KeysStatusResponse {
        signing: state.signing().signs(),
        active_key_id: ring.active().map(|k| k.id().as_str().to_owned()),
        keys,
    })
}

/// This file's routes, declared once: one `routes!` a path, its methods and
/// path taken from the handlers' `#[utoipa::path]`, which also document them.
pub(crate) fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(status))
}
