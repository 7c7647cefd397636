//! The gate in front of every `/v1` route: per-address rate limit, API key,
//! scope, per-key rate limit — in that order, so floods of bad keys are
//! throttled before they reach the store.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::required_scope;
use crate::error::AppError;
use crate::state::AppState;

pub(crate) async fn guard(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    // Without a socket (tests through `oneshot`) there is no peer address;
    // all such requests share the unspecified address's bucket.
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let client = state
        .config()
        .trusted_proxies
        .client_ip(peer, request.headers());
    let ip_info = match state.limits().check_ip(client) {
        Ok(info) => info,
        Err(refused) => return AppError::from(refused).into_response(),
    };
    let caller = match state
        .0
        .auth
        .authenticate(
            state.store().as_ref(),
            request
                .headers()
                .get(header::AUTHORIZATION)
                .map(|v| v.as_bytes()),
        )
        .await
    {
        Ok(caller) => caller,
        Err(e) => return with_info(e.into_response(), ip_info),
    };
    let path = request.extensions().get::<MatchedPath>().map_or_else(
        || request.uri().path().to_owned(),
        |p| p.as_str().to_owned(),
    );
    let needed = required_scope(request.method(), &path);
    if !caller.scope.allows(needed) {
        let e = AppError::Forbidden(format!(
            "API key {} has scope {}; {} {} needs {}",
            caller.key_id,
            caller.scope,
            request.method(),
            path,
            needed
        ));
        return with_info(e.into_response(), ip_info);
    }
    let key_info = match state.limits().check_key(&caller.key_id) {
        Ok(info) => info,
        Err(refused) => return AppError::from(refused).into_response(),
    };
    tracing::trace!(key_id = %caller.key_id, client = %client, "authenticated");
    request.extensions_mut().insert(caller);
    let response = next.run(request).await;
    with_info(response, key_info.or(ip_info))
}

fn with_info(mut response: Response, info: Option<crate::rate_limit::RateLimitInfo>) -> Response {
    if let Some(info) = info {
        if !response.headers().contains_key("x-ratelimit-limit") {
            info.apply(response.headers_mut());
        }
    }
    response
}
