//! The one error type of the HTTP edge.
//!
//! Every failure becomes `{"error":{"code":"…","message":"…"}}` with the
//! right status. Messages say what was wrong and what to do; internal causes
//! (store and driver errors) are logged inside the request span and never
//! sent to the client.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use signet_store::{FieldError, StoreError};

use crate::rate_limit::{RateLimitInfo, Refused};

/// What a handler can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// No or an invalid API key (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The API key lacks the scope this route needs (403).
    #[error("{0}")]
    Forbidden(String),
    /// The thing asked for does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The route exists but not with this method (405).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// Malformed request: bad JSON, unknown field, bad query (400).
    #[error("{message}")]
    BadRequest {
        /// Stable machine-readable code (`malformed_json`, `unknown_field`, …).
        code: &'static str,
        /// What was wrong.
        message: String,
    },
    /// Well-formed but invalid values (422).
    #[error("{field}: {message}")]
    Invalid {
        /// The field at fault (dotted path).
        field: String,
        /// What is wrong with it and what is allowed.
        message: String,
    },
    /// A client-signed envelope did not verify (422).
    #[error("signature {reason}: {message}")]
    SignatureInvalid {
        /// The verification outcome (`mismatch`, `unknown-key`, …).
        reason: &'static str,
        /// Details.
        message: String,
    },
    /// The operation is not allowed in the task's current state (409).
    #[error("{0}")]
    Conflict(String),
    /// The caller no longer holds the lease it reports on (409,
    /// `lease_lost`): it expired and the task was rescued, or it finished.
    #[error("{0}")]
    LeaseLost(String),
    /// An `Idempotency-Key` reused with a different request (409,
    /// `idempotency_conflict`); the message names the key and the fields.
    #[error("{0}")]
    IdempotencyConflict(String),
    /// The body is larger than the limit (413).
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body is not `application/json` (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Too many requests (429).
    #[error("rate limit exceeded for this {scope}; retry after {} s", retry_after.as_secs().max(1))]
    RateLimited {
        /// `api key` or `client address`.
        scope: &'static str,
        /// How long until the next request is allowed.
        retry_after: Duration,
        /// The limiter's state, for the `X-RateLimit-*` headers.
        info: RateLimitInfo,
    },
    /// The store is busy, full, read-only or closed; retry later (503).
    /// When storage cannot be written (full, read-only), the message
    /// carries the cause and what to do, under the code
    /// `store_unavailable`.
    #[error("{}", unavailable_message(.0))]
    Unavailable(#[source] StoreError),
    /// A feature this request needs is not configured on the server (503),
    /// e.g. targets without `SIGNET_MASTER_KEY`. The message names the
    /// setting.
    #[error("{0}")]
    NotConfigured(String),
    /// The request took longer than the server allows (503).
    #[error("the request took longer than {0:?}; retry (with an Idempotency-Key, an enqueue cannot happen twice)")]
    Timeout(std::time::Duration),
    /// Anything else (500). The cause is logged, not sent.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl AppError {
    /// Shorthand for [`AppError::Invalid`].
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`AppError::BadRequest`].
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        AppError::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            AppError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            AppError::Invalid { .. } | AppError::SignatureInvalid { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            AppError::Conflict(_) | AppError::IdempotencyConflict(_) | AppError::LeaseLost(_) => {
                StatusCode::CONFLICT
            }
            AppError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) | AppError::Timeout(_) | AppError::NotConfigured(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthorized(_) => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::MethodNotAllowed(_) => "method_not_allowed",
            AppError::BadRequest { code, .. } => code,
            AppError::Invalid { .. } => "invalid_value",
            AppError::SignatureInvalid { .. } => "signature_invalid",
            AppError::Conflict(_) => "conflict",
            AppError::IdempotencyConflict(_) => "idempotency_conflict",
            AppError::LeaseLost(_) => "lease_lost",
            AppError::PayloadTooLarge { .. } => "payload_too_large",
            AppError::UnsupportedMediaType(_) => "unsupported_media_type",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::Unavailable(e) if e.is_storage_unavailable() => "store_unavailable",
            AppError::Unavailable(_) => "unavailable",
            AppError::Timeout(_) => "timeout",
            AppError::NotConfigured(_) => "not_configured",
            AppError::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound { what, id } => {
                AppError::NotFound(format!("{what} {id} not found"))
            }
            StoreError::Conflict(message) => AppError::Conflict(message),
            StoreError::IdempotencyConflict(c) => AppError::IdempotencyConflict(c.to_string()),
            e @ StoreError::LeaseLost { .. } => AppError::LeaseLost(format!(
                "{e}: it expired and the task was handed out again, or it already finished; drop the work"
            )),
            StoreError::Invalid(message) => AppError::invalid("request", message),
            e @ (StoreError::Busy { .. }
            | StoreError::Full { .. }
            | StoreError::Unavailable { .. }
            | StoreError::Closed) => AppError::Unavailable(e),
            other => AppError::Internal(Box::new(other)),
        }
    }
}

/// What a `503` says: the cause and what to do when storage cannot be
/// written (it names no secret: the store's own words and a file or
/// server role at most); a bare "retry later" for a busy moment.
fn unavailable_message(e: &StoreError) -> String {
    if e.is_storage_unavailable() {
        format!("the store cannot write: {e}")
    } else {
        "the store is unavailable; retry later".to_owned()
    }
}

impl From<Refused> for AppError {
    fn from(refused: Refused) -> Self {
        AppError::RateLimited {
            scope: refused.scope,
            retry_after: refused.retry_after,
            info: refused.info,
        }
    }
}

impl From<FieldError> for AppError {
    fn from(e: FieldError) -> Self {
        let (field, message) = e.into_parts();
        AppError::Invalid { field, message }
    }
}

/// The JSON body of every error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// `code` and `message` of an error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: String,
    /// What went wrong and what to do, for people.
    pub message: String,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            AppError::Internal(cause) => {
                tracing::error!(error = %cause, source = ?std::error::Error::source(cause.as_ref()).map(ToString::to_string), "request failed");
            }
            AppError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "store unavailable");
            }
            _ => tracing::debug!(status = status.as_u16(), error = %self, "request refused"),
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.to_string(),
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let AppError::RateLimited {
            retry_after, info, ..
        } = &self
        {
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            let headers = response.headers_mut();
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
            info.apply(headers);
        }
        if let AppError::Unauthorized(_) = &self {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"signet\""),
            );
        }
        response
    }
}

/// Result of handlers.
pub(crate) type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_map_to_statuses_without_leaking_causes() {
        let e: AppError = StoreError::not_found("task", "task_x").into();
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
        let e: AppError = StoreError::Conflict("already succeeded".into()).into();
        assert_eq!(e.status(), StatusCode::CONFLICT);
        let e: AppError = StoreError::Closed.into();
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        let e: AppError =
            StoreError::backend("insert", std::io::Error::other("disk /secret/path")).into();
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.to_string().contains("/secret/path"));
    }

    #[test]
    fn storage_that_cannot_write_is_a_503_with_the_cause() {
        // A read-only database gave 500 `internal` with no cause.
        let e: AppError = StoreError::unavailable(
            "enqueueing: attempt to write a readonly database (SQLite code 8); check permissions",
        )
        .into();
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.code(), "store_unavailable");
        assert!(e.to_string().contains("readonly database"), "{e}");
        assert!(e.to_string().contains("check permissions"), "{e}");
        let e: AppError = StoreError::Full {
            message: "committing: the disk is full; free disk space".into(),
            source: None,
        }
        .into();
        assert_eq!(e.code(), "store_unavailable");
        assert!(e.to_string().contains("disk is full"), "{e}");
        // A busy moment stays a plain retry-later.
        let e: AppError = StoreError::Closed.into();
        assert_eq!(e.code(), "unavailable");
    }

    #[test]
    fn an_idempotency_conflict_is_409_idempotency_conflict_naming_key_and_fields() {
        let e: AppError = StoreError::IdempotencyConflict(signet_store::IdempotencyConflict {
            key: "abc".into(),
            fields: vec!["args".into(), "priority".into()],
        })
        .into();
        assert_eq!(e.status(), StatusCode::CONFLICT);
        assert_eq!(e.code(), "idempotency_conflict");
        assert_eq!(
            e.to_string(),
            "Idempotency-Key \"abc\" was first used with a different request (args, priority differ); use a new key for a new request"
        );
    }
}
