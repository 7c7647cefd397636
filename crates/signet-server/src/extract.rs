//! Request extractors that fail with [`AppError`] instead of axum's plain
//! text rejections: `415` for a wrong content type, `413` over the body
//! limit, `400` for malformed JSON (with line and column) or unknown fields,
//! `422` naming the field for values of the wrong type.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::AppError;
use crate::state::AppState;

/// A JSON body, parsed strictly.
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, AppError> {
        check_content_type(req.headers())?;
        let limit = state.config().max_body_bytes;
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| body_error(e, limit))?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// An optional JSON body: none at all (no bytes) gives `None`; anything
/// else is parsed as strictly as [`JsonBody`].
#[derive(Debug)]
pub(crate) struct OptionalJsonBody<T>(pub(crate) Option<T>);

impl<T: DeserializeOwned> FromRequest<AppState> for OptionalJsonBody<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, AppError> {
        let limit = state.config().max_body_bytes;
        let headers = req.headers().clone();
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| body_error(e, limit))?;
        if bytes.is_empty() {
            return Ok(OptionalJsonBody(None));
        }
        check_content_type(&headers)?;
        parse_json(&bytes).map(|v| OptionalJsonBody(Some(v)))
    }
}

fn check_content_type(headers: &axum::http::HeaderMap) -> Result<(), AppError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(AppError::UnsupportedMediaType(
            "missing Content-Type; send `Content-Type: application/json`".into(),
        ));
    };
    let mime = value
        .to_str()
        .ok()
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let json =
        mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"));
    if json {
        Ok(())
    } else {
        Err(AppError::UnsupportedMediaType(format!(
            "Content-Type {mime:?} is not JSON; send `Content-Type: application/json`"
        )))
    }
}

fn body_error(rejection: BytesRejection, limit: usize) -> AppError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::PayloadTooLarge { limit }
    } else {
        AppError::bad_request(
            "bad_body",
            format!("could not read the request body: {rejection}"),
        )
    }
}

/// Parses JSON, classifying errors: syntax → `400 malformed_json` with the
/// position; unknown field → `400 unknown_field`; wrong type or value →
/// `422` naming the field.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed: Result<T, serde_path_to_error::Error<serde_json::Error>> =
        serde_path_to_error::deserialize(&mut de);
    let (path, inner) = match parsed {
        Ok(value) => match de.end() {
            Ok(()) => return Ok(value),
            Err(e) => (String::new(), e),
        },
        Err(err) => (err.path().to_string(), err.into_inner()),
    };
    Err({
        match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                AppError::bad_request(
                    "malformed_json",
                    format!(
                        "malformed JSON at line {} column {}: {}",
                        inner.line(),
                        inner.column(),
                        strip_position(&inner.to_string())
                    ),
                )
            }
            serde_json::error::Category::Io => {
                AppError::bad_request("bad_body", format!("could not read the body: {inner}"))
            }
            serde_json::error::Category::Data => {
                let message = strip_position(&inner.to_string());
                if message.starts_with("unknown field") {
                    let at = if path == "." || path.is_empty() {
                        String::new()
                    } else {
                        format!(" in {path}")
                    };
                    AppError::bad_request("unknown_field", format!("{message}{at}"))
                } else if path == "." || path.is_empty() {
                    AppError::invalid("body", message)
                } else {
                    AppError::invalid(path, message)
                }
            }
        }
    })
}

/// serde_json appends " at line L column C"; the JSON error says it once.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// A query string, parsed with errors as `400 bad_query`.
#[derive(Debug)]
pub(crate) struct QueryParams<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AppError> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded_parse(query).map(QueryParams)
    }
}

fn serde_urlencoded_parse<T: DeserializeOwned>(query: &str) -> Result<T, AppError> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{query}")
            .parse()
            .map_err(|_| AppError::bad_request("bad_query", "the query string is not valid"))?,
    )
    .map(|q| q.0)
    .map_err(|e| AppError::bad_request("bad_query", e.body_text()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // Fields exist to be parsed.
    struct T {
        a: u32,
        raw: Option<Box<serde_json::value::RawValue>>,
    }

    #[test]
    fn json_errors_are_classified() {
        let e = parse_json::<T>(b"{\"a\":1,\n\"b\":2}").unwrap_err();
        assert_eq!(e.code(), "unknown_field", "{e}");
        let e = parse_json::<T>(b"{\"a\":\n 1,,}").unwrap_err();
        assert_eq!(e.code(), "malformed_json");
        assert!(e.to_string().contains("line 2 column"), "{e}");
        let e = parse_json::<T>(b"{\"a\":\"x\"}").unwrap_err();
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.to_string().starts_with("a:"), "{e}");
        let e = parse_json::<T>(b"{\"a\":1} x").unwrap_err();
        assert_eq!(e.code(), "malformed_json");
    }

    #[test]
    fn raw_values_keep_their_bytes_through_path_tracking() {
        let t = parse_json::<T>(br#"{"a":1,"raw":{"z": [1, 2]}}"#).unwrap();
        assert_eq!(t.raw.unwrap().get(), r#"{"z": [1, 2]}"#);
    }
}
