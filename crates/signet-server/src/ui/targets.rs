//! Targets (admin keys only, as on the API: they hold secrets and limits):
//! the list with the secrets that sign now by fingerprint, create (the
//! secret shown once), rotate (the new secret shown once, the old one's
//! overlap end), delete (what still uses it first).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use signet_runtime::TargetDeletion;

use super::page::{render, Chrome, UiError};
use super::viewer::{given, UiForm, UiQuery, Viewer};
use crate::routes::targets::{
    create_target, delete_target, rotate, update_target, views, CreateTargetRequest,
    RotateSecretRequest, TargetView, TargetWithSecret, UpdateTargetRequest,
};
use crate::state::AppState;

/// Refuses keys below admin: a target's page shows what only admin keys
/// may read on the API.
fn admin_only(viewer: &Viewer) -> Result<(), UiError> {
    if viewer.can_act() {
        Ok(())
    } else {
        Err(UiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "Targets hold secrets and limits: only admin keys see them, as on the API. API key {} has scope {}.",
                viewer.caller.key_id, viewer.caller.scope
            ),
        ))
    }
}

#[derive(Template)]
#[template(path = "targets.html")]
struct TargetsPage {
    chrome: Option<Chrome>,
    targets: Vec<TargetView>,
    notice: Option<&'static str>,
}

/// What the list says after an action.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    done: Option<String>,
}

/// `GET /ui/targets`.
pub(crate) async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    UiQuery(q): UiQuery<ListQuery>,
) -> Result<Response, UiError> {
    admin_only(&viewer)?;
    Ok(render(&TargetsPage {
        chrome: Some(viewer.chrome("targets")),
        targets: views(&state).await?,
        notice: match q.done.as_deref() {
            Some("deleted") => Some("Target deleted."),
            Some("updated") => Some("Target limits saved."),
            _ => None,
        },
    }))
}

#[derive(Template)]
#[template(path = "target_secret.html")]
struct SecretPage {
    chrome: Option<Chrome>,
    what: &'static str,
    shown: TargetWithSecret,
}

/// A number field of a form: blank is none.
fn number(field: &str, value: Option<String>) -> Result<Option<u32>, UiError> {
    given(value)
        .map(|v| {
            v.parse::<u32>().map_err(|_| {
                UiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("{field}: {v:?} is not a whole number; leave it blank for no limit"),
                )
            })
        })
        .transpose()
}

/// The create form.
#[derive(Debug, Deserialize)]
pub(crate) struct CreateForm {
    csrf: Option<String>,
    name: String,
    url_prefix: Option<String>,
    rate_limit_per_s: Option<String>,
    max_concurrency: Option<String>,
    https_only: Option<String>,
}

/// `POST /ui/targets`: the API's create; the page shows the secret once.
pub(crate) async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    UiForm(form): UiForm<CreateForm>,
) -> Result<Response, UiError> {
    viewer.may_act(form.csrf.as_deref())?;
    let shown = create_target(
        &state,
        CreateTargetRequest {
            name: form.name.trim().to_owned(),
            url_prefix: given(form.url_prefix),
            secret: None,
            rate_limit_per_s: number("rate_limit_per_s", form.rate_limit_per_s)?,
            max_concurrency: number("max_concurrency", form.max_concurrency)?,
            https_only: Some(form.https_only.is_some()),
        },
    )
    .await?;
    tracing::info!(target_id = %shown.target.id, key_id = %viewer.caller.key_id, "target created from the console");
    let mut r = render(&SecretPage {
        chrome: Some(viewer.chrome("targets")),
        what: "created",
        shown,
    });
    *r.status_mut() = StatusCode::CREATED;
    Ok(r)
}

/// The rotate form.
#[derive(Debug, Deserialize)]
pub(crate) struct RotateForm {
    csrf: Option<String>,
    overlap_s: Option<String>,
}

/// `POST /ui/targets/{id}/rotate`: the API's rotation; the page shows the
/// new secret once and when the old one stops signing.
pub(crate) async fn rotate_secret(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    UiForm(form): UiForm<RotateForm>,
) -> Result<Response, UiError> {
    viewer.may_act(form.csrf.as_deref())?;
    let overlap_s = given(form.overlap_s)
        .map(|v| {
            v.parse::<u64>().map_err(|_| {
                UiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("overlap_s: {v:?} is not a whole number of seconds"),
                )
            })
        })
        .transpose()?;
    let shown = rotate(
        &state,
        &id,
        RotateSecretRequest {
            secret: None,
            overlap_s,
        },
    )
    .await?;
    tracing::info!(target_id = %shown.target.id, key_id = %viewer.caller.key_id, "target secret rotated from the console");
    Ok(render(&SecretPage {
        chrome: Some(viewer.chrome("targets")),
        what: "rotated",
        shown,
    }))
}

/// The delete form.
#[derive(Debug, Deserialize)]
pub(crate) struct DeleteForm {
    csrf: Option<String>,
    force: Option<String>,
}

#[derive(Template)]
#[template(path = "target_in_use.html")]
struct InUsePage {
    chrome: Option<Chrome>,
    id: String,
    name: String,
    pending_messages: u64,
    schedules: u64,
}

/// `POST /ui/targets/{id}/delete`: the API's delete. While something uses
/// the target, nothing is deleted and the page says what, with a forced
/// delete to confirm.
pub(crate) async fn delete(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    UiForm(form): UiForm<DeleteForm>,
) -> Result<Response, UiError> {
    viewer.may_act(form.csrf.as_deref())?;
    let (target, deletion) = delete_target(&state, &id, form.force.is_some()).await?;
    match deletion {
        TargetDeletion::Deleted(_) => {
            tracing::info!(target_id = %target.id, key_id = %viewer.caller.key_id, "target deleted from the console");
            Ok(Redirect::to("/ui/targets?done=deleted").into_response())
        }
        TargetDeletion::InUse(usage) => {
            let mut r = render(&InUsePage {
                chrome: Some(viewer.chrome("targets")),
                id: target.id,
                name: target.name,
                pending_messages: usage.pending_messages,
                schedules: usage.schedules,
            });
            *r.status_mut() = StatusCode::CONFLICT;
            Ok(r)
        }
    }
}

/// The limits form: every field sent, a blank one clearing its limit.
#[derive(Debug, Deserialize)]
pub(crate) struct LimitsForm {
    csrf: Option<String>,
    url_prefix: Option<String>,
    rate_limit_per_s: Option<String>,
    max_concurrency: Option<String>,
    https_only: Option<String>,
}

/// `POST /ui/targets/{id}/limits`: the API's update of the URL prefix,
/// limits and https-only (blank clears a limit).
pub(crate) async fn limits(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    UiForm(form): UiForm<LimitsForm>,
) -> Result<Response, UiError> {
    viewer.may_act(form.csrf.as_deref())?;
    let updated = update_target(
        &state,
        &id,
        UpdateTargetRequest {
            name: None,
            url_prefix: Some(given(form.url_prefix)),
            rate_limit_per_s: Some(number("rate_limit_per_s", form.rate_limit_per_s)?),
            max_concurrency: Some(number("max_concurrency", form.max_concurrency)?),
            https_only: Some(form.https_only.is_some()),
        },
    )
    .await?;
    tracing::info!(target_id = %updated.id, key_id = %viewer.caller.key_id, "target limits changed from the console");
    Ok(Redirect::to("/ui/targets?done=updated").into_response())
}
