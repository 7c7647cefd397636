//! `GET /v1/keys/status`: pending tasks per signing key id, beside the
//! server's ring, so an operator sees when an old key can be removed.

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use crate::error::{AppResult, ErrorBody};
use crate::state::AppState;

/// One key id's use.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct KeyStatus {
    /// The key id; `null` for unsigned tasks.
    pub key_id: Option<String>,
    /// Its algorithm; `null` for unsigned tasks.
    pub alg: Option<String>,
    /// Pending (not final) tasks signed with it.
    pub pending: u64,
    /// Whether the key is in this server's ring.
    pub in_ring: bool,
    /// Whether it is the active (signing) key.
    pub active: bool,
}

/// Response of `GET /v1/keys/status`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct KeysStatusResponse {
    /// Whether the server signs what it enqueues.
    pub signing: bool,
    /// The active key id, if any.
    pub active_key_id: Option<String>,
    /// Every key of the ring and every key id pending tasks were signed with.
    pub keys: Vec<KeyStatus>,
}

/// Pending tasks per signing key id.
#[utoipa::path(
    get, path = "/v1/keys/status", tag = "keys",
    responses((status = 200, body = KeysStatusResponse), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
pub(crate) async fn status(State(state): State<AppState>) -> AppResult<Json<KeysStatusResponse>> {
    let usage = state.store().pending_by_key().await?;
    let ring = &state.signing().ring;
    let active = ring.active().map(|k| k.id().as_str().to_owned());
    let mut keys: Vec<KeyStatus> = ring
        .keys()
        .iter()
        .map(|k| {
            let id = k.id().as_str();
            KeyStatus {
                key_id: Some(id.to_owned()),
                alg: Some(k.algorithm().as_str().to_owned()),
                pending: usage
                    .iter()
                    .filter(|u| u.key_id.as_deref() == Some(id))
                    .map(signet_store::KeyUsage::pending)
                    .sum(),
                in_ring: true,
                active: active.as_deref() == Some(id),
            }
        })
        .collect();
    for u in &usage {
        let known = u.key_id.as_deref().is_some_and(|id| ring.get(id).is_some());
        if !known {
            keys.push(KeyStatus {
                key_id: u.key_id.clone(),
                alg: u.alg.map(|a| a.as_str().to_owned()),
                pending: u.pending(),
                in_ring: false,
                active: false,
            });
        }
    }
    Ok(Json(KeysStatusResponse {
        signing: state.signing().signs(),
        active_key_id: active,
        keys,
    }))
}

/// This file's routes, declared once: one `routes!` a path, its methods and
/// path taken from the handlers' `#[utoipa::path]`, which also document them.
pub(crate) fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(status))
}
