//! Signing in with an API key, and out.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use askama::Template;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::page::{render, Chrome, UiError};
use super::session;
use super::viewer::{came_over_tls, UiForm, UiQuery};
use crate::auth::{hash_key, SECRET_PREFIX};
use crate::error::AppError;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    chrome: Option<Chrome>,
    notice: Option<&'static str>,
    error: Option<String>,
    token: String,
}

/// The sign-in page with a fresh form token, set in its cookie too.
fn page(
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
    secure: bool,
) -> Response {
    let token = session::token();
    let mut r = render(&SignInPage {
        chrome: None,
        notice,
        error,
        token: token.clone(),
    });
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::SET_COOKIE, session::sign_in_cookie(&token, secure));
    r
}

/// Why the viewer was sent to sign in.
#[derive(Deserialize)]
pub(crate) struct SignInQuery {
    why: Option<String>,
}

/// `GET /ui/sign-in`.
pub(crate) async fn form(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, UiError> {
    let (mut parts, _) = request.into_parts();
    let UiQuery(q) = UiQuery::<SignInQuery>::from_request_parts(&mut parts, &state).await?;
    let notice = match q.why.as_deref() {
        Some("expired") => Some("Your session ended (unused for 12 hours, 24 hours after sign-in, or not opened by this deployment). Sign in again."),
        Some("revoked") => Some("The API key of your session is no longer valid (revoked or deleted). Sign in with another key."),
        Some("signed-out") => Some("You are signed out."),
        _ => None,
    };
    Ok(page(
        StatusCode::OK,
        notice,
        None,
        came_over_tls(&state, &parts),
    ))
}

/// The sign-in form. The key is never shown again, and zeroized once
/// checked.
#[derive(Deserialize)]
pub(crate) struct SignInForm {
    key: String,
    /// The form's token, which must match its cookie.
    token: Option<String>,
}

/// `POST /ui/sign-in`: counts against the per-address rate limit, checks
/// the key as the API's gate does, opens a session.
pub(crate) async fn submit(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let client = state
        .config()
        .trusted_proxies
        .client_ip(peer, &parts.headers);
    if let Err(refused) = state.limits().check_ip(client) {
        return UiError::from(AppError::from(refused)).into_response();
    }
    let secure = came_over_tls(&state, &parts);
    let expected = session::cookie(&parts.headers, session::SIGN_IN_COOKIE).map(str::to_owned);
    let form =
        match UiForm::<SignInForm>::from_request(Request::from_parts(parts, body), &state).await {
            Ok(UiForm(f)) => f,
            Err(e) => return e.into_response(),
        };
    let key = Zeroizing::new(form.key);
    if !session::tokens_match(expected.as_deref(), form.token.as_deref()) {
        return page(
            StatusCode::FORBIDDEN,
            None,
            Some("This sign-in form expired or was not opened here (its security token does not match); enter the key again.".into()),
            secure,
        );
    }
    let key = key.trim();
    if key.is_empty() {
        return page(
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some("Enter an API key (it starts with sk_).".into()),
            secure,
        );
    }
    if !key.starts_with(SECRET_PREFIX) {
        return page(
            StatusCode::UNAUTHORIZED,
            None,
            Some("That is not an API key: API keys start with sk_.".into()),
            secure,
        );
    }
    let hash = hash_key(key);
    match state.0.auth.look_up(state.store().as_ref(), &hash).await {
        Ok(caller) => {
            tracing::info!(key_id = %caller.key_id, "console sign-in");
            let id = state.0.console.open(hash, state.now_ms());
            let mut r = Redirect::to("/ui").into_response();
            r.headers_mut()
                .insert(header::SET_COOKIE, session::set_cookie(&id, secure));
            // The form's token is spent.
            r.headers_mut()
                .append(header::SET_COOKIE, session::sign_in_cookie("", secure));
            r
        }
        Err(AppError::Unauthorized(why)) => page(
            StatusCode::UNAUTHORIZED,
            None,
            Some(format!(
                "Sign-in refused: {why}. Check the key, or create one with `signet api-keys create`."
            )),
            secure,
        ),
        Err(e) => UiError::from(e).into_response(),
    }
}

/// The sign-out form: only the CSRF token.
#[derive(Deserialize)]
pub(crate) struct SignOutForm {
    csrf: Option<String>,
}

/// `POST /ui/sign-out`: ends the session (the form's CSRF token must match
/// it, so another site cannot sign a viewer out).
pub(crate) async fn sign_out(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let secure = came_over_tls(&state, &parts);
    let opened = parts
        .extensions
        .get::<super::viewer::CookieSession>()
        .and_then(|s| s.0.clone());
    let form =
        match UiForm::<SignOutForm>::from_request(Request::from_parts(parts, body), &state).await {
            Ok(UiForm(f)) => f,
            Err(e) => return e.into_response(),
        };
    if let Some(session) = opened {
        if !session.csrf_matches(form.csrf.as_deref()) {
            return UiError::new(
                StatusCode::FORBIDDEN,
                "Sign-out was refused: its security token is missing or out of date. Reload the page and try again.",
            )
            .into_response();
        }
        // Recorded in the store, so a copy of the cookie is refused on
        // every node (see `session`); the browser's cookie goes below.
        if let Err(e) = state
            .store()
            .end_session(&session.id, session.expires_at_ms())
            .await
        {
            return UiError::from(AppError::from(e)).into_response();
        }
    }
    let mut r = Redirect::to("/ui/sign-in?why=signed-out").into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, session::clear_cookie(secure));
    r
}
