//! The console (`/ui`) through `app(state).oneshot(request)`: every page
//! signed out and signed in with a read and an admin key, each form with
//! and without its CSRF token, and the headers of every answer.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use signet_runtime::ManualClock;
use signet_server::config::ServerConfig;
use signet_server::{Limit, TrustedProxies};
use signet_store::testkit::FaultyStore;
use signet_store::{
    ClaimRequest, DeadReason, DeadSelector, FailOutcome, LeaseToken, Store, StoreError, TaskRow,
    TaskState, MESSAGE_QUEUE,
};

use crate::routes::{harness, harness_over, harness_with, signing, Harness};
use crate::support::{send, Reply, TempStore};

/// A browser: its session cookie, which every answer may set or clear.
struct Browser<'h> {
    app: &'h Router,
    cookie: RefCell<Option<String>>,
    /// The sign-in form's cookie, once the form was fetched.
    sign_in_cookie: Option<String>,
}

/// What a browser talks to.
trait Server {
    fn router(&self) -> &Router;
}

impl Server for Harness {
    fn router(&self) -> &Router {
        &self.app
    }
}

impl Server for Router {
    fn router(&self) -> &Router {
        self
    }
}

impl<'h> Browser<'h> {
    fn new(h: &'h impl Server) -> Self {
        Self {
            app: h.router(),
            cookie: RefCell::new(None),
            sign_in_cookie: None,
        }
    }

    async fn signed_in(h: &'h impl Server, key: &str) -> Self {
        let mut b = Self::new(h);
        let r = b.sign_in(key).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
        assert_eq!(r.headers[header::LOCATION], "/ui");
        b
    }

    fn build(&self, method: Method, uri: &str, form: Option<String>) -> Request<Body> {
        let mut b = Request::builder().method(method).uri(uri);
        let mut cookies = Vec::new();
        if let Some(c) = &*self.cookie.borrow() {
            cookies.push(format!("signet_session={c}"));
        }
        if let Some(c) = &self.sign_in_cookie {
            cookies.push(format!("signet_sign_in={c}"));
        }
        if !cookies.is_empty() {
            b = b.header(header::COOKIE, cookies.join("; "));
        }
        match form {
            Some(f) => b
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(f))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        }
    }

    async fn get(&self, uri: &str) -> Reply {
        let r = send(self.app, self.build(Method::GET, uri, None)).await;
        assert_console_headers(&r);
        self.keep_cookie(&r);
        r
    }

    async fn post(&self, uri: &str, pairs: &[(&str, &str)]) -> Reply {
        let form = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        let r = send(self.app, self.build(Method::POST, uri, Some(form))).await;
        assert_console_headers(&r);
        self.keep_cookie(&r);
        r
    }

    /// Keeps the session cookie an answer sets (re-issued, or cleared).
    fn keep_cookie(&self, r: &Reply) {
        if let Some(value) = cookie_in(r, "signet_session") {
            *self.cookie.borrow_mut() = Some(value).filter(|v| !v.is_empty());
        }
    }

    /// Opens the sign-in form, keeping its cookie; returns the form's
    /// token.
    async fn sign_in_form(&mut self) -> String {
        let form = self.get("/ui/sign-in").await;
        assert_eq!(form.status, StatusCode::OK);
        self.sign_in_cookie = cookie_in(&form, "signet_sign_in");
        assert!(self.sign_in_cookie.is_some(), "the form sets its cookie");
        field_in(&form.text, "token")
    }

    /// Signs in through the form, as a browser does.
    async fn sign_in(&mut self, key: &str) -> Reply {
        let token = self.sign_in_form().await;
        let r = self
            .post("/ui/sign-in", &[("key", key), ("token", &token)])
            .await;
        r
    }

    /// The CSRF token on the overview page.
    async fn csrf(&self) -> String {
        let page = self.get("/ui").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        csrf_in(&page.text)
    }
}

/// HTML text with the entities askama writes turned back into characters.
fn unescape(html: &str) -> String {
    html.replace("&#38;", "&")
        .replace("&amp;", "&")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
}

fn csrf_in(html: &str) -> String {
    field_in(html, "csrf")
}

/// The value of the first hidden field `name` in a page.
fn field_in(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field"))
        + marker.len();
    html[at..].split('"').next().unwrap().to_owned()
}

/// The value a `Set-Cookie` of an answer gives cookie `name`.
fn cookie_in(r: &Reply, name: &str) -> Option<String> {
    r.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

fn assert_console_headers(r: &Reply) {
    let h = &r.headers;
    let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    for part in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
    assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
}

/// No inline script or style in a page: the CSP would block them.
fn assert_no_inline(html: &str) {
    assert!(!html.contains("<script>"), "inline script");
    assert!(!html.contains("style="), "inline style");
    assert!(!html.contains("<style"), "inline style sheet");
    assert!(!html.contains(" onclick="), "inline handler");
}

/// Enqueues one task per queue and kills it with `reason`; returns the ids.
async fn dead_letters(h: &Harness, queue: &str, reason: DeadReason, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let task = h
            .enqueue(json!({"queue": queue, "task": "send-email"}))
            .await;
        let id = task["id"].as_str().unwrap().to_owned();
        h.store.kill(&id, reason, "it broke", 1).await.unwrap();
        ids.push(id);
    }
    ids
}

async fn state_of(h: &Harness, id: &str) -> TaskState {
    h.store.task(id).await.unwrap().unwrap().state
}

const PAGES: &[&str] = &[
    "/ui",
    "/ui/tasks",
    "/ui/tasks?queue=emails&state=dead",
    "/ui/dead-letters",
    "/ui/dead-letters?reason=max-attempts",
    "/ui/dead-letters/confirm?action=replay",
    "/ui/dead-letters/confirm?action=purge&queue=emails",
    "/ui/messages",
    "/ui/messages?state=available",
    "/ui/schedules",
    "/ui/keys",
];

#[tokio::test]
async fn signed_out_every_page_redirects_to_sign_in_and_every_form_too() {
    let h = harness().await;
    let b = Browser::new(&h);
    for page in PAGES.iter().chain(&["/ui/targets"]) {
        let r = b.get(page).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{page}");
        assert_eq!(r.headers[header::LOCATION], "/ui/sign-in", "{page}");
    }
    let ids = dead_letters(&h, "emails", DeadReason::MaxAttempts, 1).await;
    for form in [
        "/ui/dead-letters/replay",
        "/ui/dead-letters/purge",
        &format!("/ui/tasks/{}/cancel", ids[0]),
        "/ui/targets",
        "/ui/targets/any/rotate",
        "/ui/targets/any/delete",
        "/ui/targets/any/limits",
        "/ui/schedules/any/pause",
        "/ui/schedules/any/resume",
        "/ui/schedules/new",
        "/ui/schedules/any/edit",
        "/ui/keys",
        "/ui/keys/any/revoke",
    ] {
        let r = b.post(form, &[("csrf", "x"), ("id", &ids[0])]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{form}");
    }
    assert_eq!(state_of(&h, &ids[0]).await, TaskState::Dead);
    // A made-up session is no session.
    let b = Browser::new(&h);
    *b.cookie.borrow_mut() = Some("made-up".into());
    let r = b.get("/ui").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
}

#[tokio::test]
async fn the_sign_in_page_assets_and_unknown_paths_carry_the_headers() {
    let h = harness().await;
    let b = Browser::new(&h);
    let r = b.get("/ui/sign-in").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("name=\"key\""), "{}", r.text);
    assert!(r.text.contains("<label"), "{}", r.text);
    assert_no_inline(&r.text);
    let css = b.get("/ui/assets/console.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    let js = b.get("/ui/assets/console.js").await;
    assert!(js.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(js.text.contains("time[datetime]"));
    let missing = b.get("/ui/assets/nope.js").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let missing = b.get("/ui/no/such/page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.text.contains("/ui"), "{}", missing.text);
    // Pages are not cached; the assets are.
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    assert_ne!(css.headers[header::CACHE_CONTROL], "no-store");
}

#[tokio::test]
async fn sign_in_refuses_bad_keys_without_echoing_them_and_sets_a_strict_cookie() {
    let h = harness().await;
    let mut b = Browser::new(&h);
    for (key, status) in [
        ("", StatusCode::UNPROCESSABLE_ENTITY),
        ("hunter2-not-a-key", StatusCode::UNAUTHORIZED),
        (
            "sk_madeUpButWellFormed0000000000000000000000",
            StatusCode::UNAUTHORIZED,
        ),
    ] {
        let r = b.sign_in(key).await;
        assert_eq!(r.status, status, "{key}: {}", r.text);
        assert!(cookie_in(&r, "signet_session").is_none());
        if !key.is_empty() {
            assert!(!r.text.contains(key), "the key was echoed: {}", r.text);
        }
        assert!(r.text.contains("notice bad"), "{}", r.text);
    }
    let r = b.sign_in(&h.read).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let set = r
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("signet_session="))
        .unwrap();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age="] {
        assert!(set.contains(part), "{set}");
    }
    // Plain HTTP from an untrusted peer: not Secure.
    assert!(!set.contains("Secure"), "{set}");
    assert!(!set.contains(&h.read));
    let page = b.get("/ui").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.text.contains(&h.read), "the key is shown");
}

#[tokio::test]
async fn behind_a_trusted_tls_proxy_the_cookie_is_secure() {
    let config = ServerConfig {
        trusted_proxies: TrustedProxies::parse("10.0.0.0/8").unwrap(),
        ..ServerConfig::default()
    };
    let h = harness_with(config, signing()).await;
    let mut b = Browser::new(&h);
    let token = b.sign_in_form().await;
    let cookie = b.sign_in_cookie.clone().unwrap();
    let sign_in = |peer: &str, proto: &str| {
        let mut r = Request::builder()
            .method(Method::POST)
            .uri("/ui/sign-in")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, format!("signet_sign_in={cookie}"))
            .header("x-forwarded-proto", proto)
            .body(Body::from(format!("key={}&token={token}", h.admin)))
            .unwrap();
        r.extensions_mut()
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        r
    };
    let session_cookie = |r: &Reply| {
        r.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|v| v.starts_with("signet_session="))
            .unwrap()
    };
    let r = h.send(sign_in("10.1.2.3:5000", "https")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert!(session_cookie(&r).contains("; Secure"));
    // An untrusted peer cannot claim TLS.
    let r = h.send(sign_in("192.0.2.9:5000", "https")).await;
    assert!(!session_cookie(&r).contains("Secure"));
}

#[tokio::test]
async fn sign_in_attempts_count_against_the_per_address_limit() {
    let config = ServerConfig {
        rate_limit_per_ip: Some(Limit {
            per_second: NonZeroU32::new(1).unwrap(),
            burst: NonZeroU32::new(2).unwrap(),
        }),
        ..ServerConfig::default()
    };
    let h = harness_with(config, signing()).await;
    let mut b = Browser::new(&h);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(b.sign_in("sk_wrongwrongwrong").await.status);
    }
    assert_eq!(statuses[0], StatusCode::UNAUTHORIZED);
    let limited = b.sign_in("sk_wrongwrongwrong").await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{statuses:?}"
    );
    assert!(limited.headers.contains_key(header::RETRY_AFTER));
    assert!(limited.text.contains("notice bad"), "{}", limited.text);
}

#[tokio::test]
async fn a_read_key_sees_every_page_without_action_buttons_and_cannot_act() {
    let h = harness().await;
    let ids = dead_letters(&h, "emails", DeadReason::MaxAttempts, 2).await;
    let waiting = h
        .enqueue(json!({"queue": "emails", "task": "later", "delay_ms": 60000}))
        .await;
    let waiting = waiting["id"].as_str().unwrap().to_owned();
    let b = Browser::signed_in(&h, &h.read).await;
    for page in PAGES.iter().map(|p| (*p).to_owned()).chain([
        format!("/ui/tasks/{}", ids[0]),
        format!("/ui/tasks/{waiting}"),
    ]) {
        let r = b.get(&page).await;
        assert_eq!(r.status, StatusCode::OK, "{page}: {}", r.text);
        assert_no_inline(&r.text);
        for action in [
            "action=\"/ui/dead-letters/replay\"",
            "action=\"/ui/dead-letters/purge\"",
            "/cancel\"",
            "Replay all matching",
        ] {
            assert!(!r.text.contains(action), "{page} shows {action}");
        }
        assert!(r.text.contains("scope-read"), "{page}");
    }
    let csrf = b.csrf().await;
    // The server refuses too, with a valid token.
    for (form, pairs) in [
        (
            "/ui/dead-letters/replay",
            vec![("csrf", csrf.as_str()), ("reason", "max-attempts")],
        ),
        (
            "/ui/dead-letters/replay",
            vec![("csrf", csrf.as_str()), ("id", ids[0].as_str())],
        ),
        (
            "/ui/dead-letters/purge",
            vec![("csrf", csrf.as_str()), ("queue", "emails")],
        ),
    ] {
        let r = b.post(form, &pairs).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{form}: {}", r.text);
        assert!(r.text.contains("needs an admin key"), "{}", r.text);
    }
    let r = b
        .post(&format!("/ui/tasks/{waiting}/cancel"), &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    for id in &ids {
        assert_eq!(state_of(&h, id).await, TaskState::Dead);
    }
    assert_eq!(state_of(&h, &waiting).await, TaskState::Scheduled);
}

#[tokio::test]
async fn every_form_without_its_csrf_token_is_refused() {
    let h = harness().await;
    let ids = dead_letters(&h, "emails", DeadReason::MaxAttempts, 1).await;
    let waiting = h
        .enqueue(json!({"queue": "emails", "task": "later", "delay_ms": 60000}))
        .await;
    let waiting = waiting["id"].as_str().unwrap().to_owned();
    let b = Browser::signed_in(&h, &h.admin).await;
    let other = Browser::signed_in(&h, &h.admin).await;
    let others_token = other.csrf().await;
    let cancel = format!("/ui/tasks/{waiting}/cancel");
    for form in [
        "/ui/dead-letters/replay",
        "/ui/dead-letters/purge",
        cancel.as_str(),
        "/ui/sign-out",
    ] {
        for token in [None, Some(""), Some("forged"), Some(others_token.as_str())] {
            let mut pairs = vec![("id", ids[0].as_str())];
            if let Some(t) = token {
                pairs.push(("csrf", t));
            }
            let r = b.post(form, &pairs).await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "{form} {token:?}: {}",
                r.text
            );
            assert!(r.text.contains("security token"), "{}", r.text);
        }
    }
    assert_eq!(state_of(&h, &ids[0]).await, TaskState::Dead);
    assert_eq!(state_of(&h, &waiting).await, TaskState::Scheduled);
    // Still signed in: the refused sign-out did nothing.
    assert_eq!(b.get("/ui").await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_admin_replays_dead_letters_by_filter_after_the_count() {
    let h = harness().await;
    let failed = dead_letters(&h, "emails", DeadReason::MaxAttempts, 3).await;
    let other_reason = dead_letters(&h, "emails", DeadReason::PayloadInvalid, 1).await;
    let other_queue = dead_letters(&h, "sms", DeadReason::MaxAttempts, 1).await;
    let b = Browser::signed_in(&h, &h.admin).await;

    let list = b
        .get("/ui/dead-letters?queue=emails&reason=max-attempts")
        .await;
    assert_eq!(list.status, StatusCode::OK);
    for id in &failed {
        assert!(list.text.contains(id.as_str()), "{}", list.text);
    }
    assert!(!list.text.contains(other_reason[0].as_str()));
    assert!(!list.text.contains(other_queue[0].as_str()));
    assert!(
        unescape(&list.text)
            .contains("/ui/dead-letters/confirm?action=replay&queue=emails&reason=max-attempts"),
        "{}",
        list.text
    );

    let confirm = b
        .get("/ui/dead-letters/confirm?action=replay&queue=emails&reason=max-attempts")
        .await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.text);
    assert!(
        confirm.text.contains("data-count=\"3\""),
        "{}",
        confirm.text
    );
    assert!(
        confirm.text.contains("Replay 3 dead letters"),
        "{}",
        confirm.text
    );
    // The confirm page changed nothing.
    assert_eq!(state_of(&h, &failed[0]).await, TaskState::Dead);

    let csrf = csrf_in(&confirm.text);
    let done = b
        .post(
            "/ui/dead-letters/replay",
            &[
                ("csrf", &csrf),
                ("queue", "emails"),
                ("reason", "max-attempts"),
                ("since", ""),
                ("until", &field_in(&confirm.text, "until")),
                ("confirmed", &field_in(&confirm.text, "confirmed")),
                ("matched", &field_in(&confirm.text, "matched")),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert!(done.text.contains("data-count=\"3\""), "{}", done.text);
    for id in &failed {
        assert_eq!(state_of(&h, id).await, TaskState::Available);
        // Recorded as the API records it: the key, never its secret.
        let history = h.store.history(id).await.unwrap();
        let act = format!("{:?}", history.last().unwrap());
        assert!(
            act.contains("Replayed") && act.contains("api key key_"),
            "{act}"
        );
    }
    assert_eq!(state_of(&h, &other_reason[0]).await, TaskState::Dead);
    assert_eq!(state_of(&h, &other_queue[0]).await, TaskState::Dead);
}

/// Enqueues a task on `queue` and kills it as of `at_ms`; returns its id.
async fn dead_at(h: &Harness, queue: &str, at_ms: i64) -> String {
    let task = h
        .enqueue(json!({"queue": queue, "task": "send-email"}))
        .await;
    let id = task["id"].as_str().unwrap().to_owned();
    h.store
        .kill(&id, DeadReason::MaxAttempts, "it broke", at_ms)
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn an_action_by_filter_touches_exactly_the_dead_letters_confirmed() {
    let h = harness().await;
    let counted = dead_letters(&h, "emails", DeadReason::MaxAttempts, 1).await;
    let b = Browser::signed_in(&h, &h.admin).await;
    let confirm = b
        .get("/ui/dead-letters/confirm?action=purge&queue=emails")
        .await;
    assert!(
        confirm.text.contains("data-count=\"1\""),
        "{}",
        confirm.text
    );
    assert_eq!(field_in(&confirm.text, "confirmed"), "1");
    let csrf = csrf_in(&confirm.text);
    // What a confirm page sends: its time, its count and its ids' digest.
    let form = |confirm: &Reply| {
        vec![
            ("csrf", csrf.clone()),
            ("queue", "emails".to_owned()),
            ("reason", String::new()),
            ("since", String::new()),
            ("until", field_in(&confirm.text, "until")),
            ("confirmed", field_in(&confirm.text, "confirmed")),
            ("matched", field_in(&confirm.text, "matched")),
        ]
    };
    let post = |path: &'static str, form: Vec<(&'static str, String)>| {
        let b = &b;
        async move {
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            b.post(path, &pairs).await
        }
    };
    let counted_form = form(&confirm);
    // Three more die after the count: the purge leaves them alone.
    let mut later = Vec::new();
    for _ in 0..3 {
        later.push(dead_at(&h, "emails", now_ms() + 60_000).await);
    }
    let r = post("/ui/dead-letters/purge", counted_form).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("data-count=\"1\""), "{}", r.text);
    assert!(h.store.task(&counted[0]).await.unwrap().is_none());
    for id in &later {
        assert_eq!(
            state_of(&h, id).await,
            TaskState::Dead,
            "died after the count"
        );
    }

    // Dead letters stamped before the count's time but written after it
    // (a node whose clock is behind): refused, nothing touched, for
    // replay and purge alike.
    let early = dead_letters(&h, "emails", DeadReason::MaxAttempts, 1).await;
    let confirm = b
        .get("/ui/dead-letters/confirm?action=replay&queue=emails")
        .await;
    assert_eq!(
        field_in(&confirm.text, "confirmed"),
        "1",
        "{}",
        confirm.text
    );
    let behind = dead_letters(&h, "emails", DeadReason::MaxAttempts, 2).await;
    for path in ["/ui/dead-letters/replay", "/ui/dead-letters/purge"] {
        let r = post(path, form(&confirm)).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
        assert!(
            r.text.contains("3 match now, 1 were confirmed") && r.text.contains("count again"),
            "{}",
            r.text
        );
    }
    for id in early.iter().chain(&behind) {
        assert_eq!(state_of(&h, id).await, TaskState::Dead);
    }

    // As many as confirmed, but not the ones: someone replayed the counted
    // dead letter meanwhile and another was written behind the count. The
    // purge does not take the stranger in its place.
    let confirm = b
        .get("/ui/dead-letters/confirm?action=purge&queue=emails&reason=max-attempts")
        .await;
    assert_eq!(field_in(&confirm.text, "confirmed"), "3");
    let swapped = form(&confirm)
        .into_iter()
        .map(|(k, v)| match k {
            "reason" => (k, "max-attempts".to_owned()),
            _ => (k, v),
        })
        .collect::<Vec<_>>();
    h.store
        .replay_dead(
            DeadSelector::Ids(vec![early[0].clone()]),
            "someone",
            now_ms(),
        )
        .await
        .unwrap();
    let stranger = dead_letters(&h, "emails", DeadReason::MaxAttempts, 1).await;
    let r = post("/ui/dead-letters/purge", swapped.clone()).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(
        r.text.contains("changed since you counted")
            && r.text
                .contains("as many match now (3), but not the same ones"),
        "{}",
        r.text
    );
    assert_eq!(state_of(&h, &stranger[0]).await, TaskState::Dead);
    for id in &behind {
        assert_eq!(state_of(&h, id).await, TaskState::Dead);
    }
    // Fewer than confirmed is refused too: the page counts again.
    h.store
        .replay_dead(
            DeadSelector::Ids(vec![stranger[0].clone()]),
            "someone",
            now_ms(),
        )
        .await
        .unwrap();
    let r = post("/ui/dead-letters/purge", swapped).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(
        r.text.contains("2 match now, 3 were confirmed"),
        "{}",
        r.text
    );

    // A form without the confirm page's count, digest or time is refused.
    let confirm = b
        .get("/ui/dead-letters/confirm?action=purge&queue=emails")
        .await;
    for (field, status) in [
        ("confirmed", StatusCode::CONFLICT),
        ("matched", StatusCode::CONFLICT),
        ("until", StatusCode::CONFLICT),
    ] {
        let mut missing = form(&confirm);
        missing.retain(|(k, _)| *k != field);
        let r = post("/ui/dead-letters/purge", missing).await;
        assert_eq!(r.status, status, "without {field}: {}", r.text);
    }
    let mut many = form(&confirm);
    for (k, v) in &mut many {
        if *k == "confirmed" {
            *v = "many".to_owned();
        }
    }
    let r = post("/ui/dead-letters/purge", many).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    for id in later.iter().chain(&behind) {
        assert_eq!(state_of(&h, id).await, TaskState::Dead);
    }

    // A `since` ahead of the clock (one dead letter stamped there by a
    // node whose clock is ahead): the count's time is pinned just after it,
    // as the API requires, instead of being refused.
    let ahead = now_ms() + 30_000;
    dead_at(&h, "emails", ahead).await;
    let confirm = b
        .get(&format!(
            "/ui/dead-letters/confirm?action=purge&queue=emails&since={ahead}"
        ))
        .await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.text);
    assert_eq!(field_in(&confirm.text, "until"), (ahead + 1).to_string());
    assert_eq!(
        field_in(&confirm.text, "confirmed"),
        "1",
        "{}",
        confirm.text
    );
}

#[tokio::test]
async fn a_purge_by_filter_of_more_than_one_call_goes_in_parts_and_says_what_it_did() {
    // The second purge call fails once: the first part is done, and the
    // page says so; counting again shows the one left, which then goes.
    let calls = Arc::new(AtomicUsize::new(0));
    let h = {
        let calls = Arc::clone(&calls);
        harness_over(ServerConfig::default(), signing(), move |inner| {
            Arc::new(FaultyStore::new(inner, move |method| {
                (method == "purge_dead" && calls.fetch_add(1, Ordering::SeqCst) == 1)
                    .then(|| StoreError::unavailable("the disk went away"))
            }))
        })
        .await
    };
    let n = signet_server::MAX_DEAD_LETTER_IDS + 1;
    let mut ids = dead_letters(&h, "bulk", DeadReason::MaxAttempts, n).await;
    ids.sort();
    let b = Browser::signed_in(&h, &h.admin).await;
    let purge = |confirm: Reply| {
        let b = &b;
        async move {
            let field = |name| field_in(&confirm.text, name);
            let (csrf, until, confirmed, matched) = (
                csrf_in(&confirm.text),
                field("until"),
                field("confirmed"),
                field("matched"),
            );
            b.post(
                "/ui/dead-letters/purge",
                &[
                    ("csrf", &csrf),
                    ("queue", "bulk"),
                    ("until", &until),
                    ("confirmed", &confirmed),
                    ("matched", &matched),
                ],
            )
            .await
        }
    };
    let confirm = b
        .get("/ui/dead-letters/confirm?action=purge&queue=bulk")
        .await;
    assert_eq!(field_in(&confirm.text, "confirmed"), n.to_string());
    let r = purge(confirm).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert!(
        r.text.contains(&format!(
            "At least {} of the confirmed dead letters were purged before this error",
            n - 1
        )),
        "{}",
        r.text
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one call per part");
    for id in &ids[..n - 1] {
        assert!(h.store.task(id).await.unwrap().is_none(), "{id} is left");
    }
    assert_eq!(state_of(&h, &ids[n - 1]).await, TaskState::Dead);

    let confirm = b
        .get("/ui/dead-letters/confirm?action=purge&queue=bulk")
        .await;
    assert_eq!(field_in(&confirm.text, "confirmed"), "1");
    let r = purge(confirm).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("data-count=\"1\""), "{}", r.text);
    assert!(h.store.task(&ids[n - 1]).await.unwrap().is_none());
}

#[tokio::test]
async fn an_admin_replays_one_dead_letter_and_purges_by_filter() {
    let h = harness().await;
    let ids = dead_letters(&h, "emails", DeadReason::MaxAttempts, 3).await;
    let b = Browser::signed_in(&h, &h.admin).await;
    let task = b.get(&format!("/ui/tasks/{}", ids[0])).await;
    assert!(
        task.text.contains("action=\"/ui/dead-letters/replay\""),
        "{}",
        task.text
    );
    let csrf = csrf_in(&task.text);
    let r = b
        .post(
            "/ui/dead-letters/replay",
            &[("csrf", &csrf), ("id", &ids[0])],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(
        r.headers[header::LOCATION],
        format!("/ui/tasks/{}?done=replayed", ids[0]).as_str()
    );
    assert_eq!(state_of(&h, &ids[0]).await, TaskState::Available);

    let confirm = b
        .get("/ui/dead-letters/confirm?action=purge&queue=emails")
        .await;
    assert!(
        confirm.text.contains("data-count=\"2\""),
        "{}",
        confirm.text
    );
    let r = b
        .post(
            "/ui/dead-letters/purge",
            &[
                ("csrf", &csrf),
                ("queue", "emails"),
                ("until", &field_in(&confirm.text, "until")),
                ("confirmed", "2"),
                ("matched", &field_in(&confirm.text, "matched")),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("Purged"), "{}", r.text);
    assert!(h.store.task(&ids[1]).await.unwrap().is_none());
    assert!(h.store.task(&ids[2]).await.unwrap().is_none());
    assert!(h.store.task(&ids[0]).await.unwrap().is_some());
    let empty = b.get("/ui/dead-letters").await;
    assert!(empty.text.contains("No dead letters"), "{}", empty.text);
}

#[tokio::test]
async fn the_task_page_shows_the_envelope_signature_history_and_cancel() {
    let h = harness().await;
    let task = h
        .enqueue(json!({"queue": "emails", "task": "send-email", "args": {"to": "a@example.com", "n": [1, 2]}, "delay_ms": 60000}))
        .await;
    let id = task["id"].as_str().unwrap().to_owned();
    let b = Browser::signed_in(&h, &h.admin).await;
    let page = b.get(&format!("/ui/tasks/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    // Pretty-printed, escaped args.
    assert!(
        page.text.contains("&#34;to&#34;: &#34;a@example.com&#34;"),
        "{}",
        page.text
    );
    assert!(page.text.contains("hmac-sha256") && page.text.contains("<code>k1</code>"));
    assert!(page.text.contains("yes, by this server"), "{}", page.text);
    assert!(page.text.contains("<time datetime=\""), "{}", page.text);
    let csrf = csrf_in(&page.text);
    let r = b
        .post(&format!("/ui/tasks/{id}/cancel"), &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(state_of(&h, &id).await, TaskState::Cancelled);
    let page = b.get(&format!("/ui/tasks/{id}?done=cancelled")).await;
    assert!(page.text.contains("Cancelled."));
    assert!(page.text.contains("cancelled"));
    // Cancelling again is the API's 409, as a page.
    let r = b
        .post(&format!("/ui/tasks/{id}/cancel"), &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    let missing = b.get("/ui/tasks/task_nope").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_filters_are_refused_with_a_page_saying_why() {
    let h = harness().await;
    let b = Browser::signed_in(&h, &h.admin).await;
    for (page, why) in [
        ("/ui/dead-letters?reason=nope", "reason"),
        ("/ui/dead-letters?since=yesterday", "since"),
        (
            "/ui/dead-letters?since=2000&until=1000",
            "must be after since",
        ),
        ("/ui/tasks?state=stuck", "state"),
        ("/ui/tasks?queue=bad%20queue", "queue"),
        ("/ui/dead-letters/confirm?action=explode", "action"),
        ("/ui/dead-letters?unknown=1", "unknown"),
    ] {
        let r = b.get(page).await;
        assert!(r.status.is_client_error(), "{page}: {}", r.status);
        assert!(r.text.contains(why), "{page}: {}", r.text);
        assert!(r.text.contains("<html"), "{page}");
    }
}

#[tokio::test]
async fn pages_are_cursor_paged_and_show_empty_states() {
    let h = harness().await;
    let b = Browser::signed_in(&h, &h.read).await;
    let empty = b.get("/ui/tasks").await;
    assert!(empty.text.contains("No tasks yet"), "{}", empty.text);
    let overview = b.get("/ui").await;
    assert!(overview.text.contains("No tasks yet"));
    assert!(
        overview
            .text
            .contains("<main id=\"main\" data-refresh=\"10\">"),
        "{}",
        overview.text
    );
    assert!(overview.text.contains("No dead letters"));
    for _ in 0..3 {
        h.enqueue(json!({"queue": "paged", "task": "t"})).await;
    }
    let first = b.get("/ui/tasks?queue=paged&limit=2").await;
    let at = first
        .text
        .find("rel=\"next\" href=\"")
        .expect("a next link")
        + 17;
    let next = unescape(first.text[at..].split('"').next().unwrap());
    assert!(
        next.contains("queue=paged") && next.contains("cursor="),
        "{next}"
    );
    let second = b.get(&next).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(
        second.text.matches("<td><a href=\"/ui/tasks/task_").count(),
        1
    );
    let overview = b.get("/ui").await;
    assert!(
        overview.text.contains("/ui/tasks?queue=paged"),
        "{}",
        overview.text
    );
}

#[tokio::test]
async fn a_revoked_key_ends_its_sessions_and_sign_out_ends_one() {
    let h = harness().await;
    let b = Browser::signed_in(&h, &h.read).await;
    assert_eq!(b.get("/ui").await.status, StatusCode::OK);
    let keys = h.store.list_api_keys().await.unwrap();
    let read = keys.iter().find(|k| k.scope == "read").unwrap();
    h.store.revoke_api_key(&read.id, 2).await.unwrap();
    let r = b.get("/ui/tasks").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers[header::LOCATION], "/ui/sign-in?why=revoked");
    // The refusal cleared the cookie; a copy of it is refused the same way.
    assert_eq!(b.get("/ui").await.headers[header::LOCATION], "/ui/sign-in");
    let notice = Browser::new(&h).get("/ui/sign-in?why=revoked").await;
    assert!(notice.text.contains("no longer valid"));

    let b = Browser::signed_in(&h, &h.admin).await;
    let csrf = b.csrf().await;
    let r = b.post("/ui/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers[header::LOCATION], "/ui/sign-in?why=signed-out");
    assert!(r.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(b.get("/ui").await.status, StatusCode::SEE_OTHER);
}

/// A node of a deployment: its own app (own caches, own process state) on
/// the shared store, with the deployment's master key, or another.
fn node(temp: &TempStore, master: [u8; 32], clock: Arc<ManualClock>) -> Router {
    signet_server::app(signet_server::AppState::with_delivery(
        Arc::clone(&temp.store),
        ServerConfig::default(),
        signing(),
        signet_server::serve::detached_metrics_handle(),
        clock as Arc<dyn signet_runtime::Clock>,
        signet_server::config::DeliveryConfig {
            master_key: Some(signet_sign::sealed::MasterKey::from_bytes(master)),
            ..signet_server::config::DeliveryConfig::default()
        },
    ))
}

#[tokio::test]
async fn a_session_opened_on_one_node_works_on_another() {
    let temp = TempStore::new();
    let keys = temp.keys(1).await;
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let a = node(&temp, [7; 32], Arc::clone(&clock));
    let b = node(&temp, [7; 32], Arc::clone(&clock));
    let stranger = node(&temp, [8; 32], Arc::clone(&clock));
    let on_a = Browser::signed_in(&a, &keys.admin).await;
    let cookie = on_a.cookie.borrow().clone();
    let on_b = Browser::new(&b);
    *on_b.cookie.borrow_mut() = cookie.clone();
    let page = on_b.get("/ui/keys").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    // A form shown by node A is accepted by node B: the CSRF token travels
    // in the sealed cookie.
    let csrf = on_a.csrf().await;
    let created = on_b
        .post(
            "/ui/keys",
            &[("csrf", &csrf), ("name", "made-on-b"), ("scope", "read")],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert!(temp
        .store
        .list_api_keys()
        .await
        .unwrap()
        .iter()
        .any(|k| k.name == "made-on-b"));
    let forged = on_b
        .post(
            "/ui/keys",
            &[("csrf", "forged"), ("name", "forged"), ("scope", "read")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    // A node with another master key does not take it.
    let elsewhere = Browser::new(&stranger);
    *elsewhere.cookie.borrow_mut() = cookie.clone();
    let r = elsewhere.get("/ui").await;
    assert_eq!(r.headers[header::LOCATION], "/ui/sign-in?why=expired");

    // Idle expiry holds across nodes: used on B within the idle period, the
    // cookie is re-issued and lives on; left alone it ends everywhere. The
    // assets, cacheable by anyone, never carry it.
    clock.advance(std::time::Duration::from_secs(120));
    let asset = on_b.get("/ui/assets/console.css").await;
    assert_eq!(asset.status, StatusCode::OK);
    assert!(asset.headers.get(header::SET_COOKIE).is_none());
    assert!(cookie_in(&on_b.get("/ui").await, "signet_session").is_some());
    clock.advance(std::time::Duration::from_millis(IDLE_MS as u64 - 1));
    let renewed = on_b.get("/ui").await;
    assert_eq!(renewed.status, StatusCode::OK);
    assert!(cookie_in(&renewed, "signet_session").is_some(), "re-issued");
    // Still inside the 24-hour lifetime, past the first cookie's idle end.
    clock.advance(std::time::Duration::from_millis(IDLE_MS as u64 - 200_000));
    *on_a.cookie.borrow_mut() = on_b.cookie.borrow().clone();
    assert_eq!(on_a.get("/ui").await.status, StatusCode::OK);
    let stale = Browser::new(&a);
    *stale.cookie.borrow_mut() = cookie;
    assert_eq!(
        stale.get("/ui").await.headers[header::LOCATION],
        "/ui/sign-in?why=expired"
    );
    // Revoking the key on one node ends the session on the others.
    let admin_key = temp
        .store
        .list_api_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.scope == "admin")
        .unwrap();
    temp.store.revoke_api_key(&admin_key.id, 2).await.unwrap();
    let r = on_b.get("/ui").await;
    assert_eq!(r.headers[header::LOCATION], "/ui/sign-in?why=revoked");
}

#[tokio::test]
async fn sign_out_ends_the_session_on_every_node_even_for_a_copied_cookie() {
    let temp = TempStore::new();
    let keys = temp.keys(1).await;
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let a = node(&temp, [7; 32], Arc::clone(&clock));
    let b = node(&temp, [7; 32], Arc::clone(&clock));
    let browser = Browser::signed_in(&a, &keys.admin).await;
    let copied = browser.cookie.borrow().clone();
    let csrf = browser.csrf().await;
    let elsewhere = Browser::signed_in(&b, &keys.admin).await;
    let r = browser.post("/ui/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(r.headers[header::LOCATION], "/ui/sign-in?why=signed-out");
    // A copy of the cookie taken before, with its CSRF token, is refused
    // on the node that signed out and on the other.
    for node in [&a, &b] {
        let thief = Browser::new(node);
        *thief.cookie.borrow_mut() = copied.clone();
        let r = thief.get("/ui").await;
        assert_eq!(r.headers[header::LOCATION], "/ui/sign-in?why=signed-out");
        *thief.cookie.borrow_mut() = copied.clone();
        let r = thief
            .post("/ui/queues/mail/pause", &[("csrf", &csrf)])
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
        assert_eq!(r.headers[header::LOCATION], "/ui/sign-in?why=signed-out");
    }
    assert!(temp.store.paused_queues().await.unwrap().is_empty());
    // Another session of the same key carries on.
    assert_eq!(elsewhere.get("/ui").await.status, StatusCode::OK);
    // Remembered until the session would have ended anyway (its lifetime,
    // when the cookie no longer opens), then pruned.
    let pruner = signet_runtime::Pruner::new(Arc::clone(&temp.store))
        .clock(Arc::clone(&clock) as Arc<dyn signet_runtime::Clock>);
    pruner.run_once().await.unwrap();
    let thief = Browser::new(&a);
    *thief.cookie.borrow_mut() = copied.clone();
    assert_eq!(
        thief.get("/ui").await.headers[header::LOCATION],
        "/ui/sign-in?why=signed-out"
    );
    clock.advance(std::time::Duration::from_millis(24 * 60 * 60 * 1000 + 1));
    pruner.run_once().await.unwrap();
    *thief.cookie.borrow_mut() = copied;
    assert_eq!(
        thief.get("/ui").await.headers[header::LOCATION],
        "/ui/sign-in?why=expired"
    );
}

/// A session's idle period (12 hours).
const IDLE_MS: i64 = 12 * 60 * 60 * 1000;

#[tokio::test]
async fn messages_list_and_page_show_attempts_and_hide_payloads_from_read_keys() {
    let h = harness().await;
    let published = h
        .call(
            Method::POST,
            "/v1/messages",
            Some(&h.admin),
            Some(r#"{"url":"https://hooks.example.com/in","headers":{"authorization":"Bearer receiver-secret"},"body":"secret body"}"#),
        )
        .await;
    assert_eq!(published.status, StatusCode::CREATED, "{}", published.text);
    let id = published.json()["id"].as_str().unwrap().to_owned();

    let read = Browser::signed_in(&h, &h.read).await;
    let list = read.get("/ui/messages").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert!(list.text.contains(&id), "{}", list.text);
    assert_no_inline(&list.text);
    let page = read.get(&format!("/ui/messages/{id}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("hooks.example.com"), "{}", page.text);
    assert!(!page.text.contains("secret body"), "{}", page.text);
    assert!(!page.text.contains("receiver-secret"), "{}", page.text);
    assert!(
        page.text.contains("only admin keys see them"),
        "{}",
        page.text
    );
    assert!(page.text.contains("No attempt yet"), "{}", page.text);
    // The task page of the same row hides the same things.
    let as_task = read.get(&format!("/ui/tasks/{id}")).await;
    assert!(!as_task.text.contains("secret body"), "{}", as_task.text);

    let admin = Browser::signed_in(&h, &h.admin).await;
    let page = admin.get(&format!("/ui/messages/{id}")).await;
    assert!(page.text.contains("secret body"), "{}", page.text);

    let filtered = admin.get("/ui/messages?state=dead").await;
    assert!(
        filtered.text.contains("No message is dead"),
        "{}",
        filtered.text
    );
    let bad = admin.get("/ui/messages?state=lost").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let missing = admin.get("/ui/messages/msg_nope").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    // Signed out: to sign-in.
    let r = Browser::new(&h).get(&format!("/ui/messages/{id}")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

/// A console with a master key (targets need one), and its admin and read
/// keys.
async fn with_targets() -> (Router, String, String, TempStore) {
    let temp = TempStore::new();
    let keys = temp.keys(1).await;
    let state = signet_server::AppState::with_delivery(
        std::sync::Arc::clone(&temp.store),
        ServerConfig::default(),
        signing(),
        signet_server::serve::detached_metrics_handle(),
        std::sync::Arc::new(signet_runtime::SystemClock)
            as std::sync::Arc<dyn signet_runtime::Clock>,
        signet_server::config::DeliveryConfig {
            master_key: Some(signet_sign::sealed::MasterKey::from_bytes([7; 32])),
            ..signet_server::config::DeliveryConfig::default()
        },
    );
    (signet_server::app(state), keys.admin, keys.read, temp)
}

fn secret_in(html: &str) -> String {
    let at = html.find("data-secret>").expect("a secret") + 12;
    html[at..].split('<').next().unwrap().to_owned()
}

#[tokio::test]
async fn targets_are_admin_only_and_show_each_secret_once() {
    let (app, admin, read, _temp) = with_targets().await;
    let r = Browser::signed_in(&app, &read).await;
    let page = r.get("/ui/targets").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.text);
    assert!(page.text.contains("only admin keys"), "{}", page.text);
    assert!(
        !r.get("/ui").await.text.contains("/ui/targets"),
        "read keys get no Targets link"
    );

    let b = Browser::signed_in(&app, &admin).await;
    let page = b.get("/ui/targets").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("No targets yet"), "{}", page.text);
    assert_no_inline(&page.text);
    let csrf = csrf_in(&page.text);
    let form = [
        ("name", "billing"),
        ("url_prefix", "https://billing.example.com/"),
        ("rate_limit_per_s", "50"),
        ("max_concurrency", ""),
        ("https_only", "on"),
    ];
    // Without the token, nothing is created.
    let refused = b.post("/ui/targets", &form).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let mut with_token = form.to_vec();
    with_token.push(("csrf", &csrf));
    let created = b.post("/ui/targets", &with_token).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let secret = secret_in(&created.text);
    assert!(secret.starts_with("whsec_"), "{secret}");
    // Shown once: never on the list.
    let list = b.get("/ui/targets").await;
    assert!(
        list.text.contains("billing") && list.text.contains("50/s"),
        "{}",
        list.text
    );
    assert!(!list.text.contains(&secret));
    let id = {
        let at = list.text.find("<code>tgt_").unwrap() + 6;
        list.text[at..].split('<').next().unwrap().to_owned()
    };
    // A taken name is the API's 409, as a page.
    let again = b.post("/ui/targets", &with_token).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
    let bad = b
        .post(
            "/ui/targets",
            &[("csrf", &csrf), ("name", "x"), ("rate_limit_per_s", "lots")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text.contains("rate_limit_per_s"), "{}", bad.text);

    // Read keys cannot rotate, edit or delete, even with a token.
    let read_csrf = r.csrf().await;
    for action in ["rotate", "limits", "delete"] {
        let refused = r
            .post(
                &format!("/ui/targets/{id}/{action}"),
                &[("csrf", &read_csrf)],
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{action}");
    }

    // Limits: set, and a blank field clears its limit.
    let no_token = b
        .post(
            &format!("/ui/targets/{id}/limits"),
            &[("rate_limit_per_s", "1")],
        )
        .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    let saved = b
        .post(
            &format!("/ui/targets/{id}/limits"),
            &[
                ("csrf", &csrf),
                ("url_prefix", ""),
                ("rate_limit_per_s", ""),
                ("max_concurrency", "3"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    let list = b.get("/ui/targets?done=updated").await;
    assert!(list.text.contains("Target limits saved."), "{}", list.text);
    assert!(
        list.text.contains("no rate limit") && list.text.contains("3 at once"),
        "{}",
        list.text
    );
    assert!(
        list.text.contains("<td>any URL</td>") && !list.text.contains("<br>https only"),
        "{}",
        list.text
    );
    let bad = b
        .post(
            &format!("/ui/targets/{id}/limits"),
            &[("csrf", &csrf), ("max_concurrency", "-1")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);

    let rotated = b
        .post(
            &format!("/ui/targets/{id}/rotate"),
            &[("csrf", &csrf), ("overlap_s", "3600")],
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let new_secret = secret_in(&rotated.text);
    assert_ne!(new_secret, secret);
    assert!(
        rotated
            .text
            .contains("keeps signing beside the new one until"),
        "{}",
        rotated.text
    );
    let list = b.get("/ui/targets").await;
    assert!(!list.text.contains(&new_secret));
    assert!(
        list.text.contains("(current)") && list.text.contains(", stops"),
        "{}",
        list.text
    );

    let deleted = b
        .post(&format!("/ui/targets/{id}/delete"), &[("csrf", &csrf)])
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER, "{}", deleted.text);
    let list = b.get("/ui/targets?done=deleted").await;
    assert!(list.text.contains("Target deleted.") && list.text.contains("No targets yet"));
    let missing = b
        .post(&format!("/ui/targets/{id}/delete"), &[("csrf", &csrf)])
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_target_in_use_is_kept_until_the_forced_delete() {
    let (app, admin, _read, _temp) = with_targets().await;
    let b = Browser::signed_in(&app, &admin).await;
    let csrf = b.csrf().await;
    let created = b
        .post("/ui/targets", &[("csrf", &csrf), ("name", "busy")])
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let published = send(
        &app,
        crate::support::request(
            Method::POST,
            "/v1/messages",
            Some(&admin),
            &[],
            Some(r#"{"target":"busy","url":"https://hooks.example.com/in","body":"x"}"#.into()),
        ),
    )
    .await;
    assert_eq!(published.status, StatusCode::CREATED, "{}", published.text);
    let kept = b.post("/ui/targets/busy/delete", &[("csrf", &csrf)]).await;
    assert_eq!(kept.status, StatusCode::CONFLICT, "{}", kept.text);
    assert!(kept.text.contains("1 pending message(s)"), "{}", kept.text);
    assert!(b.get("/ui/targets").await.text.contains("busy"));
    let gone = b
        .post(
            "/ui/targets/busy/delete",
            &[("csrf", &csrf), ("force", "on")],
        )
        .await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER, "{}", gone.text);
    assert!(b.get("/ui/targets").await.text.contains("No targets yet"));
}

#[tokio::test]
async fn schedules_show_next_due_times_and_pause_and_resume() {
    let h = harness().await;
    let b = Browser::signed_in(&h, &h.read).await;
    let empty = b.get("/ui/schedules").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.text.contains("No schedules yet"), "{}", empty.text);
    let created = h
        .call(
            Method::POST,
            "/v1/schedules",
            Some(&h.admin),
            Some(r#"{"name":"daily-report","cron":"0 9 * * MON-FRI","timezone":"Europe/Paris","task":{"queue":"reports","task":"report.daily"}}"#),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json()["id"].as_str().unwrap().to_owned();

    let page = b.get("/ui/schedules").await;
    assert!(page.text.contains("daily-report") && page.text.contains("0 9 * * MON-FRI"));
    assert_eq!(
        page.text.matches("<li><time datetime=").count(),
        5,
        "{}",
        page.text
    );
    assert!(!page.text.contains("/pause\""), "read keys get no buttons");
    let read_csrf = b.csrf().await;
    let refused = b
        .post(
            &format!("/ui/schedules/{id}/pause"),
            &[("csrf", &read_csrf)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let admin = Browser::signed_in(&h, &h.admin).await;
    let csrf = admin.csrf().await;
    let no_token = admin.post(&format!("/ui/schedules/{id}/pause"), &[]).await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    assert!(!h.store.schedule(&id).await.unwrap().unwrap().paused);
    let paused = admin
        .post(&format!("/ui/schedules/{id}/pause"), &[("csrf", &csrf)])
        .await;
    assert_eq!(paused.status, StatusCode::SEE_OTHER, "{}", paused.text);
    assert!(h.store.schedule(&id).await.unwrap().unwrap().paused);
    let page = admin
        .get(paused.headers[header::LOCATION].to_str().unwrap())
        .await;
    assert!(page.text.contains("Paused daily-report"), "{}", page.text);
    assert!(page.text.contains("none while paused"), "{}", page.text);
    assert!(page.text.contains("Resume daily-report"), "{}", page.text);
    let resumed = admin
        .post(&format!("/ui/schedules/{id}/resume"), &[("csrf", &csrf)])
        .await;
    assert_eq!(resumed.status, StatusCode::SEE_OTHER);
    assert!(!h.store.schedule(&id).await.unwrap().unwrap().paused);
    let missing = admin
        .post("/ui/schedules/sch_nope/pause", &[("csrf", &csrf)])
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_cron_check_answers_the_next_due_times_or_what_is_wrong() {
    let h = harness().await;
    let signed_out = Browser::new(&h)
        .get("/ui/schedules/check?cron=0+3+*+*+*")
        .await;
    assert_eq!(signed_out.status, StatusCode::SEE_OTHER);
    // Any signed-in key may ask: it changes nothing.
    let b = Browser::signed_in(&h, &h.read).await;
    let ok = b
        .get("/ui/schedules/check?cron=0+3+*+*+*&timezone=Europe%2FParis")
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let body = ok.json();
    assert_eq!(body["ok"], true);
    let next = body["next"].as_array().unwrap();
    assert_eq!(next.len(), 5);
    assert!(next
        .iter()
        .all(|t| t.as_str().unwrap().ends_with(":00:00.000Z")));
    // A blank zone is UTC, as on the API.
    let utc = b
        .get("/ui/schedules/check?cron=0+3+*+*+*&timezone=")
        .await
        .json();
    assert!(
        utc["next"][0].as_str().unwrap().contains("T03:00:00"),
        "{utc}"
    );
    for (query, field, words) in [
        ("cron=0+3+*+*", "cron", "cron"),
        (
            "cron=0+3+*+*+*&timezone=Mars%2FOlympus",
            "timezone",
            "Mars/Olympus",
        ),
        ("cron=0+0+30+2+*", "cron", "never comes due"),
        ("cron=", "cron", "cron"),
    ] {
        let r = b.get(&format!("/ui/schedules/check?{query}")).await;
        assert_eq!(r.status, StatusCode::OK, "{query}");
        let body = r.json();
        assert_eq!(body["ok"], false, "{query}");
        assert_eq!(body["field"], field, "{query}");
        assert!(
            body["message"].as_str().unwrap().contains(words),
            "{query}: {body}"
        );
    }
    // The API refuses the same expression with the same words.
    let api = h
        .call(
            Method::POST,
            "/v1/schedules",
            Some(&h.admin),
            Some(r#"{"name":"x","cron":"0 0 30 2 *","task":{"queue":"q","task":"t"}}"#),
        )
        .await;
    assert_eq!(api.status, StatusCode::UNPROCESSABLE_ENTITY);
    let console = b.get("/ui/schedules/check?cron=0+0+30+2+*").await.json();
    assert_eq!(api.json()["error"]["message"], console["message"]);
    let unknown = b.get("/ui/schedules/check?cron=*&surprise=1").await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
}

/// A form's fields as `post` takes them.
fn pairs(f: &[(String, String)]) -> Vec<(&str, &str)> {
    f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[tokio::test]
async fn an_admin_creates_and_edits_a_schedule_and_a_read_key_cannot() {
    let h = harness().await;
    let read = Browser::signed_in(&h, &h.read).await;
    let list = read.get("/ui/schedules").await;
    assert!(
        !list.text.contains("/ui/schedules/new\""),
        "no link for read keys"
    );
    assert!(
        list.text.contains("An admin key can create one"),
        "{}",
        list.text
    );
    assert_eq!(
        read.get("/ui/schedules/new").await.status,
        StatusCode::FORBIDDEN
    );
    let read_csrf = read.csrf().await;
    let form = |csrf: &str, name: &str, cron: &str| {
        vec![
            ("csrf".to_owned(), csrf.to_owned()),
            ("name".to_owned(), name.to_owned()),
            ("cron".to_owned(), cron.to_owned()),
            ("timezone".to_owned(), "Europe/Paris".to_owned()),
            ("catch_up".to_owned(), "once".to_owned()),
            ("kind".to_owned(), "task".to_owned()),
            (
                "payload".to_owned(),
                r#"{"queue":"reports","task":"report.nightly","args":{"to":"ops"},"max_attempts":3}"#
                    .to_owned(),
            ),
        ]
    };
    let refused = read
        .post(
            "/ui/schedules/new",
            &pairs(&form(&read_csrf, "r", "0 3 * * *")),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.text.contains("needs an admin key"));

    let admin = Browser::signed_in(&h, &h.admin).await;
    let list = admin.get("/ui/schedules").await;
    assert!(
        list.text.contains("href=\"/ui/schedules/new\""),
        "{}",
        list.text
    );
    let page = admin.get("/ui/schedules/new").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page
        .text
        .contains("data-cron-check=\"/ui/schedules/check\""));
    assert_no_inline(&page.text);
    let csrf = csrf_in(&page.text);
    let no_token = admin
        .post(
            "/ui/schedules/new",
            &pairs(&form("", "nightly", "0 3 * * *")),
        )
        .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    // A bad expression: the form again, saying why, with what was typed.
    let bad = admin
        .post(
            "/ui/schedules/new",
            &pairs(&form(&csrf, "nightly", "0 3 * *")),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    assert!(bad.text.contains("role=\"alert\">cron:"), "{}", bad.text);
    assert!(bad.text.contains("value=\"0 3 * *\""), "{}", bad.text);
    let mut not_json = form(&csrf, "nightly", "0 3 * * *");
    not_json[6].1 = "{oops".into();
    let bad = admin.post("/ui/schedules/new", &pairs(&not_json)).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text.contains("task: is not JSON"), "{}", bad.text);
    assert!(h.store.list_schedules().await.unwrap().is_empty());

    let created = admin
        .post(
            "/ui/schedules/new",
            &pairs(&form(&csrf, "nightly", "0 3 * * *")),
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.text);
    assert_eq!(
        created.headers[header::LOCATION],
        "/ui/schedules?created=nightly"
    );
    let stored = h.store.list_schedules().await.unwrap().pop().unwrap();
    assert_eq!(
        (stored.cron.as_str(), stored.timezone.as_str()),
        ("0 3 * * *", "Europe/Paris")
    );
    assert_eq!(stored.catch_up.as_str(), "once");
    let dup = admin
        .post(
            "/ui/schedules/new",
            &pairs(&form(&csrf, "nightly", "0 4 * * *")),
        )
        .await;
    assert_eq!(dup.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", dup.text);

    // Edit: the form shows what is stored; renaming keeps the due time, a
    // new expression moves it; fields the form does not show are kept.
    let edit = admin
        .get(&format!("/ui/schedules/{}/edit", stored.id))
        .await;
    assert_eq!(edit.status, StatusCode::OK, "{}", edit.text);
    assert!(edit.text.contains("value=\"0 3 * * *\""));
    assert!(
        unescape(&edit.text).contains("\"max_attempts\": 3"),
        "{}",
        edit.text
    );
    let payload = unescape(&edit.text)
        .split("name=\"payload\" rows=\"6\" required spellcheck=\"false\">")
        .nth(1)
        .unwrap()
        .split("</textarea>")
        .next()
        .unwrap()
        .to_owned();
    let mut renamed = form(&csrf, "nightly-2", "0 3 * * *");
    renamed[6].1 = payload.clone();
    let saved = admin
        .post(
            &format!("/ui/schedules/{}/edit", stored.id),
            &pairs(&renamed),
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    let after = h.store.schedule(&stored.id).await.unwrap().unwrap();
    assert_eq!(after.name, "nightly-2");
    assert_eq!(after.next_fire_at_ms, stored.next_fire_at_ms);
    assert!(String::from_utf8_lossy(&after.payload).contains("max_attempts"));
    let mut moved = form(&csrf, "nightly-2", "30 4 * * *");
    moved[6].1 = payload;
    let saved = admin
        .post(&format!("/ui/schedules/{}/edit", stored.id), &pairs(&moved))
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    let after = h.store.schedule(&stored.id).await.unwrap().unwrap();
    assert_eq!(after.cron, "30 4 * * *");
    assert_ne!(after.next_fire_at_ms, stored.next_fire_at_ms);
    let bad = admin
        .post(
            &format!("/ui/schedules/{}/edit", stored.id),
            &pairs(&form(&csrf, "nightly-2", "61 * * * *")),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        h.store.schedule(&stored.id).await.unwrap().unwrap().cron,
        "30 4 * * *"
    );
    assert_eq!(
        admin.get("/ui/schedules/sch_nope/edit").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        read.get(&format!("/ui/schedules/{}/edit", stored.id))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn keys_show_signing_status_and_api_keys_created_once_and_revoked() {
    let h = harness().await;
    h.enqueue(json!({"queue": "q", "task": "t"})).await;
    let read = Browser::signed_in(&h, &h.read).await;
    let page = read.get("/ui/keys").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_no_inline(&page.text);
    // The signing key k1 is active and signs the pending task.
    assert!(
        page.text.contains("<code>k1</code>") && page.text.contains(">active<"),
        "{}",
        page.text
    );
    // Every API key, by id and prefix, never a secret; no buttons for read.
    for secret in [&h.admin, &h.read, &h.publish] {
        assert!(!page.text.contains(secret.as_str()));
        assert!(page.text.contains(&secret[..11]), "the prefix of each key");
    }
    assert!(page.text.contains("(this session)"));
    assert!(!page.text.contains("/revoke\"") && !page.text.contains("action=\"/ui/keys\""));
    let read_csrf = read.csrf().await;
    let refused = read
        .post(
            "/ui/keys",
            &[("csrf", &read_csrf), ("name", "sneaky"), ("scope", "admin")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(h
        .store
        .list_api_keys()
        .await
        .unwrap()
        .iter()
        .all(|k| k.name != "sneaky"));

    let admin = Browser::signed_in(&h, &h.admin).await;
    let csrf = admin.csrf().await;
    let no_token = admin
        .post("/ui/keys", &[("name", "oncall"), ("scope", "read")])
        .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    let created = admin
        .post(
            "/ui/keys",
            &[("csrf", &csrf), ("name", "oncall"), ("scope", "read")],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let secret = secret_in(&created.text);
    assert!(secret.starts_with("sk_"), "{secret}");
    assert!(
        !admin.get("/ui/keys").await.text.contains(&secret),
        "shown once"
    );
    // The new key signs in.
    let oncall = Browser::signed_in(&h, &secret).await;
    assert_eq!(oncall.get("/ui").await.status, StatusCode::OK);
    for (name, scope, field) in [("x", "root", "scope"), ("", "read", "name")] {
        let bad = admin
            .post(
                "/ui/keys",
                &[("csrf", &csrf), ("name", name), ("scope", scope)],
            )
            .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
        assert!(bad.text.contains(field), "{}", bad.text);
    }

    let id = h
        .store
        .list_api_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.name == "oncall")
        .unwrap()
        .id;
    let revoked = admin
        .post(&format!("/ui/keys/{id}/revoke"), &[("csrf", &csrf)])
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER, "{}", revoked.text);
    let page = admin
        .get(revoked.headers[header::LOCATION].to_str().unwrap())
        .await;
    assert!(
        page.text.contains(&format!("Revoked {id}")),
        "{}",
        page.text
    );
    // Its session ends at once.
    let r = oncall.get("/ui").await;
    assert_eq!(r.headers[header::LOCATION], "/ui/sign-in?why=revoked");
    let missing = admin
        .post("/ui/keys/nonsense/revoke", &[("csrf", &csrf)])
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_sign_in_form_not_opened_in_this_browser_is_refused() {
    let h = harness().await;
    // Posted from elsewhere: no form cookie, or a token that is not its own.
    let mut b = Browser::new(&h);
    for pairs in [
        vec![("key", h.admin.as_str())],
        vec![("key", h.admin.as_str()), ("token", "forged")],
    ] {
        let r = b.post("/ui/sign-in", &pairs).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
        assert!(cookie_in(&r, "signet_session").is_none());
        assert!(r.text.contains("security token"), "{}", r.text);
        assert!(!r.text.contains(&h.admin));
    }
    let token = b.sign_in_form().await;
    let mut other = Browser::new(&h);
    let other_token = other.sign_in_form().await;
    assert_ne!(token, other_token);
    let r = b
        .post("/ui/sign-in", &[("key", &h.admin), ("token", &other_token)])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = b
        .post("/ui/sign-in", &[("key", &h.admin), ("token", &token)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
}

#[test]
fn the_banner_prints_the_console_url() {
    let on = signing();
    let text = signet_server::serve::Banner {
        addr: "127.0.0.1:4321".parse().unwrap(),
        store: "sqlite://./x.db",
        signing: &on,
        config: &ServerConfig::default(),
        new_admin_key: None,
    }
    .to_string();
    assert!(
        text.contains("console: http://127.0.0.1:4321/ui (sign in with an API key)\n"),
        "{text}"
    );
}

#[tokio::test]
async fn the_overview_charts_the_last_hour_and_says_so_when_empty() {
    use signet_store::testkit::{claim_one, new_task, put};
    use signet_store::{FailOutcome, LeaseToken};
    let h = harness().await;
    let b = Browser::signed_in(&h, &h.read).await;
    let empty = b.get("/ui").await;
    assert!(
        empty.text.contains("No attempt ended in the last hour"),
        "{}",
        empty.text
    );
    assert!(empty.text.contains("No task or message was refused"));
    assert!(!empty.text.contains("<svg"), "no chart without data");

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let s = &*h.store;
    for _ in 0..3 {
        put(s, new_task("charted")).await;
    }
    let done = claim_one(s, "charted", "w", now).await;
    s.complete(&LeaseToken::of(&done), None, now).await.unwrap();
    let failed = claim_one(s, "charted", "w", now).await;
    s.fail(
        &LeaseToken::of(&failed),
        "boom",
        FailOutcome::Retry {
            at_ms: now + 60_000,
        },
        now,
    )
    .await
    .unwrap();
    let refused = claim_one(s, "charted", "w", now).await;
    s.fail(
        &LeaseToken::of(&refused),
        "refused",
        FailOutcome::Dead {
            reason: DeadReason::SignatureInvalid,
            detail: "mismatch: the signature does not match".into(),
        },
        now,
    )
    .await
    .unwrap();

    let page = b.get("/ui").await;
    let html = &page.text;
    assert_no_inline(html);
    assert!(
        html.contains("charted</a>: 1 succeeded, 2 failed"),
        "{html}"
    );
    assert!(
        html.contains("<title id=\"chart-1-title\">Attempts on charted in the last hour</title>")
    );
    assert_eq!(html.matches("class=\"bar-ok\"").count(), 1, "{html}");
    // One failed bar on the queue, one on the signature chart.
    assert_eq!(html.matches("class=\"bar-bad\"").count(), 2, "{html}");
    assert!(html.contains("<title>2 failed</title>"), "{html}");
    assert!(html.contains("1 refused</a> per 5-minute bucket"), "{html}");
    assert!(html.contains("<tr><th scope=\"row\">mismatch</th><td class=\"num\">1</td></tr>"));
    assert!(!html.contains("No attempt ended in the last hour"));
    // The text alternative: each bucket of the hour in a table.
    assert!(html.contains("<caption>Attempts on charted per 5-minute bucket</caption>"));
}

#[tokio::test]
async fn tasks_are_filtered_by_name_in_bounded_scans_that_continue() {
    let h = harness().await;
    let rare = h
        .enqueue(json!({"queue": "named", "task": "rare.job"}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // More common tasks after it than one page looks at (5 000).
    for _ in 0..6 {
        let batch: Vec<Value> = (0..1000)
            .map(|_| json!({"queue": "named", "task": "common.job"}))
            .collect();
        let r = h
            .call(
                Method::POST,
                "/v1/tasks/batch",
                Some(&h.admin),
                Some(&json!({ "tasks": batch }).to_string()),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let b = Browser::signed_in(&h, &h.read).await;
    let page = b.get("/ui/tasks?task=common.job&limit=3").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_eq!(
        page.text.matches("common.job</td>").count(),
        3,
        "{}",
        page.text
    );
    assert!(page.text.contains("Next page"), "a full page pages on");
    assert!(
        page.text.contains("value=\"common.job\""),
        "the filter stays in the form"
    );
    // The rare one is older than the budget reaches: the page says how many
    // rows it looked at and continues where it stopped.
    let first = b.get("/ui/tasks?task=rare.job").await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(
        first.text.contains("Looked at 5000 tasks"),
        "{}",
        first.text
    );
    assert!(!first.text.contains(&rare));
    let at = first.text.find("href=\"/ui/tasks?").expect("continue link") + 6;
    let link = unescape(first.text[at..].split('"').next().unwrap());
    assert!(
        link.contains("task=rare.job") && link.contains("cursor="),
        "{link}"
    );
    let second = b.get(&link).await;
    assert!(second.text.contains(&rare), "{}", second.text);
    assert!(!second.text.contains("Looked at"), "the listing ended");
    // A name filter with the others, and a bad name, refused with why.
    let none = b.get("/ui/tasks?task=rare.job&state=dead").await;
    assert!(
        none.text.contains("No task matches these filters"),
        "{}",
        none.text
    );
    let bad = b.get("/ui/tasks?task=%01").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text.contains("control characters"), "{}", bad.text);
}

#[tokio::test]
async fn messages_are_filtered_by_target_name_or_id() {
    let (app, admin, read, _temp) = with_targets().await;
    let call = |uri: &'static str, body: String| {
        let app = app.clone();
        let admin = admin.clone();
        async move {
            let r = send(
                &app,
                crate::support::request(Method::POST, uri, Some(&admin), &[], Some(body)),
            )
            .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
            r.json()
        }
    };
    let mut targets = Vec::new();
    for name in ["billing", "shipping"] {
        let t = call(
            "/v1/targets",
            json!({"name": name, "url_prefix": format!("https://{name}.example.com/")}).to_string(),
        )
        .await;
        targets.push(t["id"].as_str().unwrap().to_owned());
    }
    let mut ids = Vec::new();
    for name in ["billing", "shipping", "billing"] {
        let m = call(
            "/v1/messages",
            json!({"url": format!("https://{name}.example.com/in"), "target": name, "body": "{}"})
                .to_string(),
        )
        .await;
        ids.push(m["id"].as_str().unwrap().to_owned());
    }
    let shows_billing = |page: &Reply, filter: &str| {
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        assert!(page.text.contains(&ids[0]) && page.text.contains(&ids[2]));
        assert!(!page.text.contains(&ids[1]), "{}", page.text);
        assert!(page.text.contains(&format!("value=\"{filter}\"")));
    };
    let by_admin = Browser::signed_in(&app, &admin).await;
    for filter in ["billing", targets[0].as_str()] {
        let page = by_admin.get(&format!("/ui/messages?target={filter}")).await;
        shows_billing(&page, filter);
    }
    let none = by_admin
        .get("/ui/messages?target=shipping&state=dead")
        .await;
    assert!(
        none.text.contains("No message is dead and for target"),
        "{}",
        none.text
    );
    let unknown = by_admin.get("/ui/messages?target=nowhere").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(
        unknown.text.contains("There is no target"),
        "{}",
        unknown.text
    );

    // Targets are admin-only: a read key filters by id only, and cannot
    // tell a target that exists from one that does not.
    let b = Browser::signed_in(&app, &read).await;
    shows_billing(
        &b.get(&format!("/ui/messages?target={}", targets[0])).await,
        &targets[0],
    );
    let known = b.get("/ui/messages?target=billing").await;
    let unknown = b.get("/ui/messages?target=nowhere").await;
    for r in [&known, &unknown] {
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
        assert!(
            r.text
                .contains("Filtering by target name needs an admin key"),
            "{}",
            r.text
        );
    }
    assert_eq!(
        known.text.replace("billing", "nowhere"),
        unknown.text,
        "the same answer"
    );
    let unknown_id = b.get("/ui/messages?target=tgt_0000").await;
    let no_messages = b
        .get(&format!("/ui/messages?target={}&state=dead", targets[1]))
        .await;
    for r in [&unknown_id, &no_messages] {
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(r.text.contains("No message"), "{}", r.text);
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Claims the one task of `queue` as a worker would.
async fn claim_one(store: &dyn Store, queue: &str) -> TaskRow {
    let request = ClaimRequest {
        queues: vec![queue.to_owned()],
        worker_id: "ui-test".to_owned(),
        limit: 1,
        lease_ms: 60_000,
    };
    store
        .claim(request, now_ms())
        .await
        .unwrap()
        .pop()
        .expect("a task to claim")
}

/// Claims the one task of `queue` and fails it, to be retried in an hour.
async fn make_retryable(store: &dyn Store, queue: &str) {
    let row = claim_one(store, queue).await;
    let later = FailOutcome::Retry {
        at_ms: now_ms() + 3_600_000,
    };
    store
        .fail(&LeaseToken::of(&row), "receiver said 503", later, now_ms())
        .await
        .unwrap();
}

#[tokio::test]
async fn an_admin_pauses_and_resumes_a_queue_from_the_overview() {
    let h = harness().await;
    h.enqueue(json!({"queue": "mail", "task": "send"})).await;
    let read = Browser::signed_in(&h, &h.read).await;
    let page = read.get("/ui").await;
    assert!(page.text.contains("running"), "{}", page.text);
    assert!(
        !page.text.contains("/ui/queues/"),
        "read keys get no buttons"
    );
    let read_csrf = read.csrf().await;
    let refused = read
        .post("/ui/queues/mail/pause", &[("csrf", &read_csrf)])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(h.store.paused_queues().await.unwrap().is_empty());

    let admin = Browser::signed_in(&h, &h.admin).await;
    let page = admin.get("/ui").await;
    assert!(page.text.contains("Pause mail"), "{}", page.text);
    let csrf = csrf_in(&page.text);
    let no_token = admin.post("/ui/queues/mail/pause", &[]).await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    let paused = admin
        .post("/ui/queues/mail/pause", &[("csrf", &csrf)])
        .await;
    assert_eq!(paused.status, StatusCode::SEE_OTHER, "{}", paused.text);
    assert_eq!(paused.headers[header::LOCATION], "/ui?paused=mail");
    let pauses = h.store.paused_queues().await.unwrap();
    assert_eq!(pauses.len(), 1);
    assert!(pauses[0].paused_by.contains("key_"), "{:?}", pauses[0]);
    let page = admin.get("/ui?paused=mail").await;
    assert!(page.text.contains("Paused mail"), "{}", page.text);
    assert!(
        page.text.contains(">paused</span> since <time"),
        "{}",
        page.text
    );
    assert!(page.text.contains("Resume mail"), "{}", page.text);
    // Read keys see it paused too.
    assert!(read.get("/ui").await.text.contains(">paused</span>"));
    // A paused queue with no task still shows, so it can be resumed.
    let empty = admin
        .post("/ui/queues/later/pause", &[("csrf", &csrf)])
        .await;
    assert_eq!(empty.status, StatusCode::SEE_OTHER);
    assert!(admin.get("/ui").await.text.contains("Resume later"));
    let resumed = admin
        .post("/ui/queues/mail/resume", &[("csrf", &csrf)])
        .await;
    assert_eq!(resumed.status, StatusCode::SEE_OTHER);
    assert_eq!(h.store.paused_queues().await.unwrap().len(), 1);
    assert!(admin
        .get("/ui?resumed=mail")
        .await
        .text
        .contains("Resumed mail"));
    let bad = admin
        .post("/ui/queues/bad%20name/pause", &[("csrf", &csrf)])
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
}

#[tokio::test]
async fn retry_now_and_resend_act_from_the_task_and_message_pages() {
    let h = harness().await;
    let task = h
        .enqueue(json!({"queue": "flaky", "task": "t", "max_attempts": 5}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    make_retryable(h.store.as_ref(), "flaky").await;
    let read = Browser::signed_in(&h, &h.read).await;
    let page = read.get(&format!("/ui/tasks/{task}")).await;
    assert!(!page.text.contains("Retry now"), "read keys get no button");
    let read_csrf = read.csrf().await;
    let refused = read
        .post(&format!("/ui/tasks/{task}/retry"), &[("csrf", &read_csrf)])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(state_of(&h, &task).await, TaskState::Retryable);

    let admin = Browser::signed_in(&h, &h.admin).await;
    let page = admin.get(&format!("/ui/tasks/{task}")).await;
    assert!(page.text.contains("Retry now"), "{}", page.text);
    let csrf = csrf_in(&page.text);
    let no_token = admin.post(&format!("/ui/tasks/{task}/retry"), &[]).await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    let retried = admin
        .post(&format!("/ui/tasks/{task}/retry"), &[("csrf", &csrf)])
        .await;
    assert_eq!(retried.status, StatusCode::SEE_OTHER, "{}", retried.text);
    assert_eq!(state_of(&h, &task).await, TaskState::Available);
    let page = admin
        .get(retried.headers[header::LOCATION].to_str().unwrap())
        .await;
    assert!(page.text.contains("Retried now"), "{}", page.text);
    assert!(!page.text.contains(">Retry now<"), "not retryable any more");
    assert!(
        page.text.contains("retried-now"),
        "in the history: {}",
        page.text
    );
    // Again: the API's refusal, as a page.
    let again = admin
        .post(&format!("/ui/tasks/{task}/retry"), &[("csrf", &csrf)])
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);

    // A delivered message: resend.
    let publish = |url: &'static str| {
        let h = &h;
        async move {
            let r = h
                .call(
                    Method::POST,
                    "/v1/messages",
                    Some(&h.admin),
                    Some(&json!({ "url": url, "body": "{}" }).to_string()),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
            r.json()["id"].as_str().unwrap().to_owned()
        }
    };
    let delivered = publish("https://hooks.example.com/a").await;
    let waiting = publish("https://hooks.example.com/b").await;
    let request = ClaimRequest {
        queues: vec![MESSAGE_QUEUE.to_owned()],
        worker_id: "ui-test".to_owned(),
        limit: 2,
        lease_ms: 60_000,
    };
    for row in h.store.claim(request, now_ms()).await.unwrap() {
        let lease = LeaseToken::of(&row);
        if row.envelope.id == delivered {
            h.store.complete(&lease, None, now_ms()).await.unwrap();
        } else {
            let later = FailOutcome::Retry {
                at_ms: now_ms() + 3_600_000,
            };
            h.store.fail(&lease, "503", later, now_ms()).await.unwrap();
        }
    }
    assert_eq!(state_of(&h, &waiting).await, TaskState::Retryable);
    let page = admin.get(&format!("/ui/messages/{delivered}")).await;
    assert!(page.text.contains(">Resend<"), "{}", page.text);
    assert!(!read
        .get(&format!("/ui/messages/{delivered}"))
        .await
        .text
        .contains(">Resend<"));
    let refused = read
        .post(
            &format!("/ui/messages/{delivered}/resend"),
            &[("csrf", &read_csrf)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let resent = admin
        .post(
            &format!("/ui/messages/{delivered}/resend"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(resent.status, StatusCode::SEE_OTHER, "{}", resent.text);
    assert_eq!(state_of(&h, &delivered).await, TaskState::Available);
    let page = admin
        .get(resent.headers[header::LOCATION].to_str().unwrap())
        .await;
    assert!(
        page.text.contains("Resent: the dispatcher"),
        "{}",
        page.text
    );
    // Not delivered (again) yet: resend is refused with the API's words.
    let again = admin
        .post(
            &format!("/ui/messages/{delivered}/resend"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);

    // A message waiting for its next attempt: retry now.
    let page = admin.get(&format!("/ui/messages/{waiting}")).await;
    assert!(page.text.contains(">Retry now<"), "{}", page.text);
    let retried = admin
        .post(&format!("/ui/messages/{waiting}/retry"), &[("csrf", &csrf)])
        .await;
    assert_eq!(retried.status, StatusCode::SEE_OTHER, "{}", retried.text);
    assert_eq!(state_of(&h, &waiting).await, TaskState::Available);
    let missing = admin
        .post("/ui/messages/msg_nope/retry", &[("csrf", &csrf)])
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}
