//! `/v1/targets`: registered receivers with their own secrets and limits.
//!
//! A target's secret is returned once, by `POST /v1/targets` and by
//! `POST /v1/targets/{id}/rotate-secret`; every other answer shows only its
//! fingerprint. Secrets are sealed under `SIGNET_MASTER_KEY`; without one,
//! creating or rotating answers `503 not_configured`.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Deserializer, Serialize};
use signet_runtime::{
    NewTarget, SigningSecret, TargetDeletion, TargetPatch, TargetSecret, TargetUsage,
};
use signet_store::TargetRecord;

use crate::error::{AppError, AppResult, ErrorBody, ErrorDetail};
use crate::extract::{parse_json, JsonBody, OptionalJsonBody, QueryParams};
use crate::routes::messages::runtime_error;
use crate::state::AppState;
use crate::views::rfc3339;

/// `POST /v1/targets`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateTargetRequest {
    /// Unique name: 1–128 of `A-Z a-z 0-9 . _ : -`.
    pub name: String,
    /// Messages for this target must have a URL starting with this.
    pub url_prefix: Option<String>,
    /// The signing secret (16–256 visible ASCII characters); a `whsec_`
    /// secret is generated when absent. Returned once, in this response.
    pub secret: Option<String>,
    /// Deliveries per second to this target, at most.
    pub rate_limit_per_s: Option<u32>,
    /// Deliveries in flight to this target, at most.
    pub max_concurrency: Option<u32>,
    /// Refuse `http://` URLs (default false).
    pub https_only: Option<bool>,
}

/// `PATCH /v1/targets/{id}`: fields to change; `null` clears an optional
/// field. The secret changes only by rotation.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateTargetRequest {
    /// A new unique name.
    pub name: Option<String>,
    /// A new URL prefix, or `null` for none.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub url_prefix: Option<Option<String>>,
    /// A new rate limit, or `null` for none.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>)]
    pub rate_limit_per_s: Option<Option<u32>>,
    /// A new concurrency limit, or `null` for none.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>)]
    pub max_concurrency: Option<Option<u32>>,
    /// Refuse `http://` URLs, or not.
    pub https_only: Option<bool>,
}

/// A field given (even as `null`) becomes `Some`, so `null` can clear it.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// `POST /v1/targets/{id}/rotate-secret` (the body is optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateSecretRequest {
    /// The new secret; generated when absent.
    pub secret: Option<String>,
    /// How long the replaced secret keeps signing beside the new one, in
    /// seconds (default 86400, at most 30 days; 0 stops it at once).
    pub overlap_s: Option<u64>,
}

/// A target, as shown: never its secret, only fingerprints. The answer of
/// `GET /v1/targets/{id}`, and of `signet targets show --json`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TargetView {
    /// `tgt_…`.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Messages must have a URL starting with this.
    pub url_prefix: Option<String>,
    /// Fingerprint of the current secret (`hmac:…`, keyed by the master
    /// key and bound to the target).
    pub secret_fingerprint: String,
    /// The secrets that sign now: the current one, then those replaced by
    /// a rotation that still sign beside it until their `stops_at`.
    /// Absent when the secrets cannot be opened here (no master key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Vec<SigningSecretView>>,
    /// Deliveries per second, at most.
    pub rate_limit_per_s: Option<u32>,
    /// Deliveries in flight, at most.
    pub max_concurrency: Option<u32>,
    /// `http://` URLs are refused.
    pub https_only: bool,
    /// Created.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

/// One secret that still signs, by fingerprint; never the secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SigningSecretView {
    /// `hmac:…`, as `secret_fingerprint` shows the current one.
    pub fingerprint: String,
    /// The current secret (the one a rotation replaces).
    pub current: bool,
    /// When it stops signing: the end of its rotation overlap; `null` for
    /// the current secret.
    pub stops_at: Option<String>,
    /// `stops_at` in unix ms.
    pub stops_at_ms: Option<i64>,
}

impl TargetView {
    /// `t` with the secrets that sign now, when they could be opened.
    pub fn new(t: &TargetRecord, secrets: Option<&[SigningSecret]>) -> Self {
        Self {
            id: t.id.clone(),
            name: t.name.clone(),
            url_prefix: t.url_prefix.clone(),
            secret_fingerprint: t.secret_fingerprint.clone(),
            secrets: secrets.map(|list| {
                list.iter()
                    .map(|s| SigningSecretView {
                        fingerprint: s.fingerprint.clone(),
                        current: s.current,
                        stops_at: s.stops_at_ms.map(rfc3339),
                        stops_at_ms: s.stops_at_ms,
                    })
                    .collect()
            }),
            rate_limit_per_s: t.rate_limit_per_s,
            max_concurrency: t.max_concurrency,
            https_only: t.https_only,
            created_at: rfc3339(t.created_at_ms),
            updated_at: rfc3339(t.updated_at_ms),
        }
    }
}

/// A target with its secret: only in the answers to create and rotate.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct TargetWithSecret {
    /// The target.
    #[serde(flatten)]
    pub target: TargetView,
    /// The secret. Shown once: store it now.
    pub secret: String,
}

impl std::fmt::Debug for TargetWithSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetWithSecret")
            .field("target", &self.target)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl TargetWithSecret {
    fn new(state: &AppState, t: &TargetRecord, secret: &TargetSecret) -> AppResult<Self> {
        Ok(Self {
            target: view(state, t)?,
            secret: secret.expose_secret().to_owned(),
        })
    }
}

/// `t` as shown, with the secrets that sign now. A server without a master
/// key (which has no targets, or would not have started) shows none.
fn view(state: &AppState, t: &TargetRecord) -> AppResult<TargetView> {
    let targets = &state.delivery().targets;
    if !targets.has_master_key() {
        return Ok(TargetView::new(t, None));
    }
    // A secret that cannot be opened (another master key) must not cost the
    // answer: a create or rotate has stored a secret shown only here.
    match targets.signing_secrets(t) {
        Ok(secrets) => Ok(TargetView::new(t, Some(&secrets))),
        Err(e) => {
            tracing::warn!(target_id = %t.id, error = %e, "cannot list the secrets still signing for this target; answering without them");
            Ok(TargetView::new(t, None))
        }
    }
}

/// The targets.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TargetList {
    /// Every target, by name.
    pub items: Vec<TargetView>,
}

fn secret_of(text: Option<String>) -> AppResult<Option<TargetSecret>> {
    text.map(|t| TargetSecret::parse(&t))
        .transpose()
        .map_err(runtime_error)
}

/// Register a target. Its secret is in this answer and never again.
#[utoipa::path(
    post, path = "/v1/targets", tag = "targets",
    request_body = CreateTargetRequest,
    responses(
        (status = 201, description = "Registered; `secret` is shown only now", body = TargetWithSecret),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 422, description = "Invalid field (named)", body = ErrorBody),
        (status = 503, description = "SIGNET_MASTER_KEY is not set", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<CreateTargetRequest>,
) -> AppResult<(StatusCode, Json<TargetWithSecret>)> {
    Ok((StatusCode::CREATED, Json(create_target(&state, req).await?)))
}

/// Registers a target: what `POST /v1/targets` does, and the console's
/// create too. The answer holds the secret, to show once.
pub(crate) async fn create_target(
    state: &AppState,
    req: CreateTargetRequest,
) -> AppResult<TargetWithSecret> {
    let new = NewTarget {
        name: req.name,
        url_prefix: req.url_prefix,
        secret: secret_of(req.secret)?,
        rate_limit_per_s: req.rate_limit_per_s,
        max_concurrency: req.max_concurrency,
        https_only: req.https_only.unwrap_or(false),
    };
    let (target, secret) = state
        .delivery()
        .targets
        .create(new)
        .await
        .map_err(|e| match e {
            signet_runtime::RuntimeError::Store(signet_store::StoreError::Conflict(_)) => {
                AppError::Conflict("a target with this name exists; choose another name".into())
            }
            other => runtime_error(other),
        })?;
    TargetWithSecret::new(state, &target, &secret)
}

/// List targets.
#[utoipa::path(
    get, path = "/v1/targets", tag = "targets",
    responses((status = 200, body = TargetList)),
    security(("bearer" = []))
)]
pub(crate) async fn list(State(state): State<AppState>) -> AppResult<Json<TargetList>> {
    Ok(Json(TargetList {
        items: views(&state).await?,
    }))
}

/// Every target as shown, by name (the API's list and the console's).
pub(crate) async fn views(state: &AppState) -> AppResult<Vec<TargetView>> {
    let targets = state
        .delivery()
        .targets
        .list()
        .await
        .map_err(runtime_error)?;
    targets.iter().map(|t| view(state, t)).collect()
}

async fn find(state: &AppState, id: &str) -> AppResult<TargetRecord> {
    state
        .delivery()
        .targets
        .find(id)
        .await
        .map_err(runtime_error)?
        .ok_or_else(|| {
            AppError::NotFound(format!(
                "target {id:?} not found (give its tgt_… id or its name)"
            ))
        })
}

/// Show a target (by id or name): never its secret; the secrets that sign
/// now by fingerprint, each with the time it stops.
#[utoipa::path(
    get, path = "/v1/targets/{id}", tag = "targets",
    params(("id" = String, Path, description = "Target id (tgt_…) or name")),
    responses((status = 200, body = TargetView), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub(crate) async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> AppResult<Json<TargetView>> {
    Ok(Json(view(&state, &find(&state, &id).await?)?))
}

/// Change a target's name, URL prefix, limits or `https_only`.
#[utoipa::path(
    patch, path = "/v1/targets/{id}", tag = "targets",
    params(("id" = String, Path, description = "Target id (tgt_…) or name")),
    request_body = UpdateTargetRequest,
    responses(
        (status = 200, body = TargetView),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The new name is taken", body = ErrorBody),
        (status = 422, description = "Invalid field (named)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<UpdateTargetRequest>,
) -> AppResult<Json<TargetView>> {
    update_target(&state, &id, req).await.map(Json)
}

/// Changes target `id` (or name): what `PATCH /v1/targets/{id}` does, and
/// the console's limits form too.
pub(crate) async fn update_target(
    state: &AppState,
    id: &str,
    req: UpdateTargetRequest,
) -> AppResult<TargetView> {
    let target = find(state, id).await?;
    let patch = TargetPatch {
        name: req.name,
        url_prefix: req.url_prefix,
        rate_limit_per_s: req.rate_limit_per_s,
        max_concurrency: req.max_concurrency,
        https_only: req.https_only,
    };
    let updated = state
        .delivery()
        .targets
        .update(&target.id, patch)
        .await
        .map_err(|e| match e {
            signet_runtime::RuntimeError::Store(signet_store::StoreError::Conflict(_)) => {
                AppError::Conflict("another target has this name; choose another name".into())
            }
            other => runtime_error(other),
        })?;
    view(state, &updated)
}

/// Query of `DELETE /v1/targets/{id}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeleteTargetQuery {
    /// Delete even though pending messages or schedules still use the
    /// target (default false).
    pub force: Option<bool>,
}

/// What still uses a target: in a `409 target_in_use`, and in the answer
/// to a forced deletion (what it left behind).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TargetUsageView {
    /// Messages not finished (scheduled, available, running, retryable)
    /// that name the target.
    pub pending_messages: u64,
    /// Schedules whose message names the target.
    pub schedules: u64,
    /// Queues bound to a push endpoint with the target (deleted anyway,
    /// their pushes fail until the queue is bound again).
    pub push_queues: u64,
}

impl From<TargetUsage> for TargetUsageView {
    fn from(u: TargetUsage) -> Self {
        Self {
            pending_messages: u.pending_messages,
            schedules: u.schedules,
            push_queues: u.push_queues,
        }
    }
}

/// `409 target_in_use`: the error, and what uses the target.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TargetInUseBody {
    /// `code` is `target_in_use`; the message says what to do.
    pub error: ErrorDetail,
    /// What still uses the target.
    pub in_use: TargetUsageView,
}

/// The answer to a forced deletion that left messages or schedules
/// without their target.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TargetDeletedView {
    /// The target deleted.
    pub id: String,
    /// Its name.
    pub name: String,
    /// What still named it: each of those messages is dead-lettered
    /// `target-refused` when its turn comes, and each due time of those
    /// schedules is given up (their views show `target_missing`).
    pub left_behind: TargetUsageView,
}

/// Delete a target. While pending messages, schedules or push queues still use it, the
/// answer is `409 target_in_use` with the counts, unless `?force=true`:
/// then it is deleted, the answer (200) says what it left behind, and those
/// messages are dead-lettered (`target-refused`) when their turn comes.
#[utoipa::path(
    delete, path = "/v1/targets/{id}", tag = "targets",
    params(("id" = String, Path, description = "Target id (tgt_…) or name"), DeleteTargetQuery),
    responses(
        (status = 204, description = "Deleted; nothing used it"),
        (status = 200, description = "Deleted with `force`; what it left behind", body = TargetDeletedView),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Still in use; nothing deleted", body = TargetInUseBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<DeleteTargetQuery>,
) -> AppResult<Response> {
    let (target, deletion) = delete_target(&state, &id, q.force.unwrap_or(false)).await?;
    Ok(match deletion {
        TargetDeletion::Deleted(usage) if usage.is_empty() => StatusCode::NO_CONTENT.into_response(),
        TargetDeletion::Deleted(usage) => Json(TargetDeletedView {
            id: target.id,
            name: target.name,
            left_behind: usage.into(),
        })
        .into_response(),
        TargetDeletion::InUse(usage) => (
            StatusCode::CONFLICT,
            Json(TargetInUseBody {
                error: ErrorDetail {
                    code: "target_in_use".into(),
                    message: format!(
                        "target {} is still used by {usage}; point them at another target (or let the messages finish, delete the schedules, unbind the queues), or delete it anyway with ?force=true: its pending messages are then dead-lettered target-refused, its schedules fire nothing and pushes of its queues fail until they are bound again",
                        target.name
                    ),
                },
                in_use: usage.into(),
            }),
        )
            .into_response(),
    })
}

/// Deletes target `id` (or name) unless something still uses it, or
/// anyway with `force`: what `DELETE /v1/targets/{id}` does, and the
/// console's delete too.
pub(crate) async fn delete_target(
    state: &AppState,
    id: &str,
    force: bool,
) -> AppResult<(TargetRecord, TargetDeletion)> {
    let target = find(state, id).await?;
    let deletion = state
        .delivery()
        .targets
        .delete(&target.id, force)
        .await
        .map_err(runtime_error)?;
    Ok((target, deletion))
}

/// Replace the secret. The new one is in this answer and never again; the
/// old one keeps signing beside it for `overlap_s` (default 24 h).
#[utoipa::path(
    post, path = "/v1/targets/{id}/rotate-secret", tag = "targets",
    params(("id" = String, Path, description = "Target id (tgt_…) or name")),
    request_body(content = RotateSecretRequest, description = "Optional: send no body for a generated secret and the default overlap"),
    responses(
        (status = 200, description = "Rotated; `secret` is shown only now", body = TargetWithSecret),
        (status = 404, body = ErrorBody),
        (status = 422, description = "Invalid field (named)", body = ErrorBody),
        (status = 503, description = "SIGNET_MASTER_KEY is not set", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn rotate_secret(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Json<TargetWithSecret>> {
    let req: RotateSecretRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RotateSecretRequest::default()
    } else {
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
            });
        if !json {
            return Err(AppError::UnsupportedMediaType(
                "send the body as `Content-Type: application/json`, or no body".into(),
            ));
        }
        parse_json(&body)?
    };
    rotate(&state, &id, req).await.map(Json)
}

/// Rotates the secret of target `id` (or name): what
/// `POST /v1/targets/{id}/rotate-secret` does, and the console's rotate
/// too. The answer holds the new secret, to show once.
pub(crate) async fn rotate(
    state: &AppState,
    id: &str,
    req: RotateSecretRequest,
) -> AppResult<TargetWithSecret> {
    let target = find(state, id).await?;
    let secret = secret_of(req.secret)?;
    let (target, secret) = state
        .delivery()
        .targets
        .rotate(&target.id, secret, req.overlap_s.map(Duration::from_secs))
        .await
        .map_err(runtime_error)?;
    TargetWithSecret::new(state, &target, &secret)
}

/// `POST /v1/targets/reseal` (the body is optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResealRequest {
    /// Only count what would be re-sealed (every secret is opened); change
    /// nothing. Default `false`.
    pub dry_run: Option<bool>,
    /// Targets re-sealed by this request, 1 to 10000 (default 100).
    pub batch: Option<u32>,
    /// Continue after this target id: the `next_after` of the previous
    /// answer. Absent: from the first target.
    pub after: Option<String>,
}

/// A target a re-seal could not open.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ResealFailureView {
    /// The target's id.
    pub target_id: String,
    /// Why (never key material).
    pub reason: String,
}

/// The answer of `POST /v1/targets/reseal`: one batch.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ResealView {
    /// Only counted, nothing changed.
    pub dry_run: bool,
    /// The fingerprint of the master key the secrets are sealed under now.
    pub master_key: Option<String>,
    /// The fingerprints of `SIGNET_MASTER_KEY_PREVIOUS`, which open.
    pub previous_master_keys: Vec<String>,
    /// Targets there are, counted on the first batch (no `after`) only;
    /// `null` on the others.
    pub total: Option<u64>,
    /// Targets looked at in this batch.
    pub checked: u64,
    /// Re-sealed under the current key (dry run: would be).
    pub resealed: u64,
    /// Already under the current key.
    pub already_current: u64,
    /// Deleted meanwhile.
    pub gone: u64,
    /// Targets no configured master key opens: add the key that sealed
    /// them to `SIGNET_MASTER_KEY_PREVIOUS` and re-seal again.
    pub failed: Vec<ResealFailureView>,
    /// Send it as `after` for the next batch; `null` after the last.
    pub next_after: Option<String>,
}

/// Re-seal a batch of targets' secrets under the current master key
/// (`SIGNET_MASTER_KEY`), opening each with it or a key of
/// `SIGNET_MASTER_KEY_PREVIOUS`; each row is swapped only if unchanged, so
/// it is safe to interrupt and run again, and beside running nodes. Call
/// again with `after: next_after` until `next_after` is `null`
/// (`signet targets reseal` does, printing the progress).
#[utoipa::path(
    post, path = "/v1/targets/reseal", tag = "targets",
    request_body(content = Option<ResealRequest>, description = "Optional: send no body to re-seal the first batch of 100"),
    responses(
        (status = 200, description = "Done; `failed` names the targets no key opens", body = ResealView),
        (status = 422, description = "Invalid field (named)", body = ErrorBody),
        (status = 503, description = "SIGNET_MASTER_KEY is not set", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn reseal(
    State(state): State<AppState>,
    OptionalJsonBody(req): OptionalJsonBody<ResealRequest>,
) -> AppResult<Json<ResealView>> {
    let req = req.unwrap_or_default();
    let batch = req.batch.unwrap_or(signet_runtime::DEFAULT_RESEAL_BATCH);
    if !(1..=MAX_RESEAL_BATCH).contains(&batch) {
        return Err(AppError::invalid(
            "batch",
            format!("must be from 1 to {MAX_RESEAL_BATCH}"),
        ));
    }
    let dry_run = req.dry_run.unwrap_or(false);
    let targets = &state.delivery().targets;
    let options = signet_runtime::ResealOptions { batch, dry_run };
    let page = targets
        .reseal_page(req.after.as_deref(), options)
        .await
        .map_err(runtime_error)?;
    let total = match req.after {
        None => Some(targets.target_count(batch).await.map_err(runtime_error)?),
        Some(_) => None,
    };
    let report = page.report;
    Ok(Json(ResealView {
        dry_run,
        master_key: targets.master_key_fingerprint(),
        previous_master_keys: targets.previous_master_key_fingerprints(),
        total,
        checked: report.checked,
        resealed: report.resealed,
        already_current: report.already_current,
        gone: report.gone,
        failed: report
            .failed
            .into_iter()
            .map(|f| ResealFailureView {
                target_id: f.target_id,
                reason: f.reason,
            })
            .collect(),
        next_after: page.next,
    }))
}

/// The largest `batch` of a re-seal.
pub(crate) const MAX_RESEAL_BATCH: u32 = 10_000;

/// This file's routes, declared once: one `routes!` a path, its methods and
/// path taken from the handlers' `#[utoipa::path]`, which also document them.
pub(crate) fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(create, list))
        .routes(utoipa_axum::routes!(show, update, delete))
        .routes(utoipa_axum::routes!(rotate_secret))
        .routes(utoipa_axum::routes!(reseal))
}
