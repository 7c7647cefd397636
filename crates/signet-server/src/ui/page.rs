//! What every console page shares: the frame ([`Chrome`]), rendering a
//! template, times, and error pages.

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use crate::error::AppError;
use crate::views::rfc3339;

/// The frame around a signed-in page.
pub(crate) struct Chrome {
    /// The signed-in key's id (`key_…`).
    pub(crate) key_id: String,
    /// Its name.
    pub(crate) key_name: String,
    /// Its scope.
    pub(crate) scope: &'static str,
    /// Whether action buttons are shown (`admin`).
    pub(crate) can_act: bool,
    /// The session's CSRF token, for forms.
    pub(crate) csrf: String,
    /// Which navigation entry is current.
    pub(crate) nav: &'static str,
}

/// A time as the console shows it: UTC text in a `<time>` the script turns
/// into the viewer's zone (the UTC text stays as its `title`).
pub(crate) struct Time {
    /// RFC 3339 UTC.
    pub(crate) utc: String,
}

impl Time {
    pub(crate) fn ms(ms: i64) -> Self {
        Self { utc: rfc3339(ms) }
    }

    /// A time the API already formatted (RFC 3339 UTC).
    pub(crate) fn text(utc: &str) -> Self {
        Self {
            utc: utc.to_owned(),
        }
    }
}

impl std::fmt::Display for Time {
    /// The `<time>` element, which templates mark `safe`: the text is the
    /// RFC 3339 formatter's (digits, letters, `-`, `:`, `.`, `+`), and
    /// anything else is written as an escaped `?`, never as markup.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self
            .utc
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-:.+".contains(c))
        {
            return f.write_str("?");
        }
        write!(
            f,
            "<time datetime=\"{0}\" title=\"{0} (UTC)\">{0}</time>",
            self.utc
        )
    }
}

/// Pretty JSON of stored JSON text (or the text itself).
pub(crate) fn pretty(raw: &str) -> String {
    serde_json::from_str::<serde_json::Value>(raw)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| raw.to_owned())
}

/// Renders a page, or the error page when the template fails (which a
/// checked template only does when a value's `Display` fails).
pub(crate) fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console page failed to render");
            UiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "This page could not be drawn; the server log has the cause.",
            )
            .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: Option<Chrome>,
    status: u16,
    title: &'a str,
    message: &'a str,
}

/// A refused or failed console request, answered with a page saying what
/// was wrong and what to do.
#[derive(Debug)]
pub(crate) struct UiError {
    status: StatusCode,
    message: String,
    retry_after: Option<HeaderValue>,
}

impl UiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// This error, saying what was done before it.
    pub(crate) fn after(mut self, done: &str) -> Self {
        self.message = format!("{} {done}", self.message);
        self
    }
}

impl From<AppError> for UiError {
    /// The API's error, with its status and message (which never leak
    /// internals); it is logged the way the API logs it.
    fn from(e: AppError) -> Self {
        let message = e.to_string();
        let answer = e.into_response();
        Self {
            status: answer.status(),
            message,
            retry_after: answer.headers().get(header::RETRY_AFTER).cloned(),
        }
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let mut r = render(&ErrorPage {
            chrome: None,
            status: self.status.as_u16(),
            title,
            message: &self.message,
        });
        *r.status_mut() = self.status;
        if let Some(v) = self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}

/// Any `/ui/…` path with no page.
pub(crate) async fn not_found() -> UiError {
    UiError::new(
        StatusCode::NOT_FOUND,
        "There is no console page here. Start again from the overview at /ui.",
    )
}
