//! Keys: each signing key id with its pending tasks and messages, its
//! role and whether it is safe to retire (`GET /v1/keys/status`'s
//! report); the API keys (never their secrets), create (the secret shown
//! once) and revoke.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use signet_store::{ApiKeyId, ApiKeyRecord};

use super::page::{render, Chrome, Time, UiError};
use super::viewer::CsrfForm;
use super::viewer::{UiForm, UiQuery, Viewer};
use crate::auth::{create_api_key, NewApiKey, Scope};
use crate::error::AppError;
use crate::routes::keys::{report, KeysStatusResponse};
use crate::state::AppState;

struct ApiKeyRow {
    record: ApiKeyRecord,
    created: Time,
    revoked: Option<Time>,
    yours: bool,
}

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage {
    chrome: Option<Chrome>,
    status: KeysStatusResponse,
    api_keys: Vec<ApiKeyRow>,
    scopes: [&'static str; 4],
    notice: Option<String>,
}

/// What the page says after an action.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeysQuery {
    revoked: Option<String>,
}

/// `GET /ui/keys`.
pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    UiQuery(q): UiQuery<KeysQuery>,
) -> Result<Response, UiError> {
    let status = report(&state).await?;
    let mut keys = state
        .store()
        .list_api_keys()
        .await
        .map_err(AppError::from)?;
    keys.sort_by_key(|k| std::cmp::Reverse(k.created_at_ms));
    let api_keys = keys
        .into_iter()
        .map(|record| ApiKeyRow {
            created: Time::ms(record.created_at_ms),
            revoked: record.revoked_at_ms.map(Time::ms),
            yours: record.id == viewer.caller.key_id,
            record,
        })
        .collect();
    Ok(render(&KeysPage {
        chrome: Some(viewer.chrome("keys")),
        status,
        api_keys,
        scopes: [
            Scope::Read.as_str(),
            Scope::Publish.as_str(),
            Scope::Work.as_str(),
            Scope::Admin.as_str(),
        ],
        notice: q
            .revoked
            .map(|id| format!("Revoked {id}: it no longer opens the API or the console.")),
    }))
}

#[derive(Template)]
#[template(path = "api_key_created.html")]
struct CreatedPage<'a> {
    chrome: Option<Chrome>,
    created: &'a NewApiKey,
}

/// The create form.
#[derive(Debug, Deserialize)]
pub(crate) struct CreateForm {
    csrf: Option<String>,
    name: String,
    scope: String,
}

/// `POST /ui/keys`: creates an API key as `signet api-keys create` does;
/// the page shows the secret once.
pub(crate) async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    UiForm(form): UiForm<CreateForm>,
) -> Result<Response, UiError> {
    viewer.may_act(form.csrf.as_deref())?;
    let scope = form
        .scope
        .parse::<Scope>()
        .map_err(|e| UiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("scope: {e}")))?;
    let created = create_api_key(
        state.store().as_ref(),
        form.name.trim(),
        scope,
        state.now_ms(),
    )
    .await
    .map_err(|e| match e {
        signet_store::StoreError::Invalid(message) => {
            UiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("name: {message}"))
        }
        other => UiError::from(AppError::from(other)),
    })?;
    tracing::info!(key_id = %created.record.id, scope = %scope, by = %viewer.caller.key_id, "API key created from the console");
    let mut r = render(&CreatedPage {
        chrome: Some(viewer.chrome("keys")),
        created: &created,
    });
    *r.status_mut() = StatusCode::CREATED;
    Ok(r)
}

/// `POST /ui/keys/{id}/revoke`: revokes an API key as `signet api-keys
/// revoke` does. Its sessions end on their next request.
pub(crate) async fn revoke(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    UiForm(form): UiForm<CsrfForm>,
) -> Result<Response, UiError> {
    viewer.may_act(form.csrf.as_deref())?;
    ApiKeyId::parse(&id).map_err(|_| {
        UiError::new(
            StatusCode::NOT_FOUND,
            format!("No API key {id:?}: API key ids look like key_…; the keys page lists them."),
        )
    })?;
    let record = state
        .store()
        .revoke_api_key(&id, state.now_ms())
        .await
        .map_err(AppError::from)?;
    tracing::info!(key_id = %record.id, by = %viewer.caller.key_id, "API key revoked from the console");
    let query = super::viewer::next_link(&[("revoked", Some(&record.id))]);
    Ok(Redirect::to(&format!("/ui/keys?{query}")).into_response())
}
