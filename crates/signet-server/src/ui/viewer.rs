//! Who is looking and what they sent: the signed-in session and its API
//! key, checked on every request; the checks an action makes (CSRF token,
//! then scope); query strings and forms read with errors as pages.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::page::{Chrome, UiError};
use super::session::{self, Session};
use crate::auth::{Caller, Scope};
use crate::error::AppError;
use crate::state::AppState;

/// A signed-in viewer. Extracting it answers a request without a live
/// session (signed out, or whose key is no longer valid) with a redirect
/// to sign-in.
pub(crate) struct Viewer {
    /// The API key of the session, as the API's handlers see a caller.
    pub(crate) caller: Caller,
    session: Session,
}

impl Viewer {
    /// Whether this viewer may act (the console's actions need `admin`,
    /// as the API routes they call do).
    pub(crate) fn can_act(&self) -> bool {
        self.caller.scope.allows(Scope::Admin)
    }

    /// The page frame: who is signed in, the CSRF token, the current page.
    pub(crate) fn chrome(&self, nav: &'static str) -> Chrome {
        Chrome {
            key_id: self.caller.key_id.clone(),
            key_name: self.caller.name.clone(),
            scope: self.caller.scope.as_str(),
            can_act: self.can_act(),
            csrf: self.session.csrf.clone(),
            nav,
        }
    }

    /// Checks a state-changing form: its CSRF token first, then the
    /// viewer's scope.
    pub(crate) fn may_act(&self, csrf: Option<&str>) -> Result<(), UiError> {
        if !self.session.csrf_matches(csrf) {
            return Err(UiError::new(
                StatusCode::FORBIDDEN,
                "This form was refused: its security token is missing or out of date. Go back, reload the page and try again.",
            ));
        }
        self.admin_only()
    }

    /// Refuses a viewer who may not act (a form only an admin can send is
    /// not shown to others either).
    pub(crate) fn admin_only(&self) -> Result<(), UiError> {
        if self.can_act() {
            return Ok(());
        }
        Err(UiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "API key {} has scope {}; acting from the console needs an admin key. Sign in with one.",
                self.caller.key_id, self.caller.scope
            ),
        ))
    }
}

/// The session a request's cookie carries, as the session layer read it.
#[derive(Clone, Debug)]
pub(crate) struct CookieSession(pub(crate) Option<Session>);

/// The session layer of every `/ui` request but the assets: opens the
/// session cookie
/// once (a request carrying none, or one that no longer opens, gets no
/// session) for [`Viewer`] and sign-out to read, and re-issues the cookie
/// when the session's last-used mark is older than
/// [`session::RENEW_MS`], unless the answer sets the cookie itself
/// (sign-out, a revoked key).
pub(crate) async fn sessions(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    // The compiled-in assets are cacheable by anyone (`public`): they
    // never carry a session cookie, so no shared cache keeps one.
    if request.uri().path().starts_with("/ui/assets/") {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let now_ms = state.now_ms();
    let opened =
        session::cookie(&parts.headers, session::COOKIE).map(|c| state.0.console.read(c, now_ms));
    let Some(opened) = opened else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    let renewed = opened
        .as_ref()
        .and_then(|s| state.0.console.renewed(s, now_ms));
    let secure = came_over_tls(&state, &parts);
    parts.extensions.insert(CookieSession(opened));
    let mut response = next.run(Request::from_parts(parts, body)).await;
    let sets_session = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.as_bytes().starts_with(session::COOKIE.as_bytes()));
    if let (Some(value), false) = (renewed, sets_session) {
        response
            .headers_mut()
            .append(header::SET_COOKIE, session::set_cookie(&value, secure));
    }
    response
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let to_sign_in = |why: &str| {
            let mut r = Redirect::to(&format!("/ui/sign-in?why={why}")).into_response();
            r.headers_mut().insert(
                header::SET_COOKIE,
                session::clear_cookie(came_over_tls(state, parts)),
            );
            r
        };
        let session = match parts.extensions.get::<CookieSession>() {
            None => return Err(Redirect::to("/ui/sign-in").into_response()),
            Some(CookieSession(None)) => return Err(to_sign_in("expired")),
            Some(CookieSession(Some(session))) => session.clone(),
        };
        // Signed out (on any node): a copy of the cookie is refused.
        match state.store().session_ended(&session.id).await {
            Ok(false) => {}
            Ok(true) => return Err(to_sign_in("signed-out")),
            Err(e) => return Err(UiError::from(AppError::from(e)).into_response()),
        }
        match state
            .0
            .auth
            .look_up(state.store().as_ref(), &session.key_hash)
            .await
        {
            Ok(caller) => Ok(Viewer { caller, session }),
            Err(AppError::Unauthorized(_)) => Err(to_sign_in("revoked")),
            Err(e) => Err(UiError::from(e).into_response()),
        }
    }
}

/// Whether the browser reached the server over TLS: only a trusted proxy's
/// `X-Forwarded-Proto: https` says so (`signet serve` speaks plain HTTP).
pub(crate) fn came_over_tls(state: &AppState, parts: &Parts) -> bool {
    let Some(peer) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
        return false;
    };
    state.config().trusted_proxies.is_trusted(peer.0.ip()) && forwarded_https(&parts.headers)
}

fn forwarded_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// A blank form field is no filter.
pub(crate) fn given(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// A query string of the given (present) pairs, encoded.
pub(crate) fn next_link(pairs: &[(&str, Option<&str>)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if let Some(v) = v {
            query.append_pair(k, v);
        }
    }
    query.finish()
}

/// A query string, its errors as console pages.
pub(crate) struct UiQuery<T>(pub(crate) T);

impl<T: DeserializeOwned> FromRequestParts<AppState> for UiQuery<T> {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, UiError> {
        crate::extract::QueryParams::<T>::from_request_parts(parts, state)
            .await
            .map(|q| UiQuery(q.0))
            .map_err(UiError::from)
    }
}

/// A urlencoded form body, its errors as console pages.
pub(crate) struct UiForm<T>(pub(crate) T);

impl<T: DeserializeOwned> FromRequest<AppState> for UiForm<T> {
    type Rejection = UiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, UiError> {
        axum::Form::<T>::from_request(req, state)
            .await
            .map(|f| UiForm(f.0))
            .map_err(|e| {
                UiError::new(
                    e.status(),
                    format!("The form could not be read: {}", e.body_text()),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn only_https_as_the_last_forwarded_proto_counts() {
        let mut h = HeaderMap::new();
        assert!(!forwarded_https(&h));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(forwarded_https(&h));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https, http"));
        assert!(!forwarded_https(&h));
        h.insert("x-forwarded-proto", HeaderValue::from_static("HTTPS"));
        assert!(forwarded_https(&h));
    }
}

/// A form that carries only the CSRF token: the console's one-button
/// actions (cancel, revoke, pause, resume).
#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    pub(crate) csrf: Option<String>,
}
