//! The axum extractor (`receiver`), through a real `Router` with
//! `oneshot`: no socket, a pinned clock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::FromRef;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use axum::Router;
use signet_sign::receiver::{VerifiedWebhook, Verifier, WebhookRejection};
use signet_sign::standard::{parse_secret, sign_headers, STANDARD_HEADERS, SVIX_HEADERS};
use signet_sign::{HeaderNames, InMemoryReplayGuard, Key, KeyId, KeyRing, Profile};
use tower::ServiceExt as _;

const NOW: i64 = 1_700_000_000;
const OLD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NEW_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

fn key(id: &str, secret: &str) -> Key {
    Key::new(KeyId::new(id).unwrap(), parse_secret(secret).unwrap())
}

fn one_key_ring(id: &str, secret: &str) -> KeyRing {
    KeyRing::single(key(id, secret))
}

/// Router state: the verifier plus a count of handler runs.
#[derive(Clone)]
struct App {
    verifier: Verifier,
    calls: Arc<AtomicUsize>,
}

impl FromRef<App> for Verifier {
    fn from_ref(app: &App) -> Verifier {
        app.verifier.clone()
    }
}

async fn handler(
    axum::extract::State(app): axum::extract::State<App>,
    hook: VerifiedWebhook,
) -> String {
    app.calls.fetch_add(1, Ordering::SeqCst);
    format!(
        "{}|{}|{}|{}|{}",
        hook.id.as_deref().unwrap_or("-"),
        hook.timestamp.map_or("-".to_owned(), |t| t.to_string()),
        hook.key_label,
        String::from_utf8_lossy(&hook.body),
        hook.warnings.len()
    )
}

struct Harness {
    router: Router,
    calls: Arc<AtomicUsize>,
}

impl Harness {
    fn new(verifier: Verifier) -> Self {
        let calls = Arc::new(AtomicUsize::new(0));
        let app = App {
            verifier: verifier.with_clock(|| NOW),
            calls: calls.clone(),
        };
        let router = Router::new().route("/hook", post(handler)).with_state(app);
        Self { router, calls }
    }

    async fn send(
        &self,
        headers: &[(&str, String)],
        body: impl Into<Body>,
    ) -> (StatusCode, String) {
        let mut request = Request::post("/hook");
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(body.into()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

fn signed(
    names: &HeaderNames,
    ring: &KeyRing,
    id: &str,
    ts: i64,
    body: &str,
) -> Vec<(&'static str, String)> {
    sign_headers(names, ring, id, ts, body.as_bytes())
        .unwrap()
        .to_vec()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts a 401 with the given reason and returns the message.
fn assert_invalid((status, body): (StatusCode, String), reason: &str) -> String {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let v = json(&body);
    assert_eq!(v["error"]["code"], "signature-invalid", "{body}");
    assert_eq!(v["error"]["reason"], reason, "{body}");
    v["error"]["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_valid_request_reaches_the_handler_with_its_raw_body() {
    let ring = one_key_ring("key-1", OLD_SECRET);
    let h = Harness::new(Verifier::standard(ring.duplicate()).unwrap());
    let body = r#"{"type":"user.created",  "n": 1}"#;
    let (status, text) = h
        .send(
            &signed(&STANDARD_HEADERS, &ring, "msg_1", NOW - 10, body),
            body,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(text, format!("msg_1|{}|key-1|{body}|0", NOW - 10));
    assert_eq!(h.calls(), 1);
}

#[tokio::test]
async fn a_tampered_body_is_refused_with_the_reason() {
    let ring = one_key_ring("key-1", OLD_SECRET);
    let h = Harness::new(Verifier::standard(ring.duplicate()).unwrap());
    let headers = signed(&STANDARD_HEADERS, &ring, "msg_1", NOW, r#"{"amount":1}"#);
    let message = assert_invalid(h.send(&headers, r#"{"amount":9}"#).await, "mismatch");
    assert!(
        message.starts_with("no signature matched key \"key-1\""),
        "{message}"
    );
    assert_eq!(h.calls(), 0);
}

#[tokio::test]
async fn timestamps_outside_the_window_are_refused_both_ways() {
    let ring = one_key_ring("key-1", OLD_SECRET);
    let h = Harness::new(Verifier::standard(ring.duplicate()).unwrap());
    let old = signed(&STANDARD_HEADERS, &ring, "msg_old", NOW - 412, "{}");
    assert_eq!(
        assert_invalid(h.send(&old, "{}").await, "too-old"),
        "timestamp is 412 s old; tolerance is 300 s"
    );
    let new = signed(&STANDARD_HEADERS, &ring, "msg_new", NOW + 301, "{}");
    assert_eq!(
        assert_invalid(h.send(&new, "{}").await, "too-new"),
        "timestamp is 301 s in the future; tolerance is 300 s"
    );
    // The edges of the window are inside it.
    for (id, ts) in [("msg_edge_old", NOW - 300), ("msg_edge_new", NOW + 300)] {
        let edge = signed(&STANDARD_HEADERS, &ring, id, ts, "{}");
        assert_eq!(h.send(&edge, "{}").await.0, StatusCode::OK);
    }
    // A narrower tolerance is honoured.
    let narrow = Harness::new(
        Verifier::standard(ring.duplicate())
            .unwrap()
            .with_tolerance_secs(5),
    );
    let six = signed(&STANDARD_HEADERS, &ring, "msg_6", NOW - 6, "{}");
    assert_eq!(
        assert_invalid(narrow.send(&six, "{}").await, "too-old"),
        "timestamp is 6 s old; tolerance is 5 s"
    );
    assert_eq!(h.calls(), 2);
}

#[tokio::test]
async fn missing_and_unknown_headers_are_refused() {
    let ring = one_key_ring("key-1", OLD_SECRET);
    let h = Harness::new(Verifier::standard(ring.duplicate()).unwrap());
    // No signature headers at all: strict, there is no unsigned mode.
    let message = assert_invalid(h.send(&[], "{}").await, "missing");
    assert_eq!(message, "webhook-id header is missing or empty");
    // Each header on its own missing.
    let full = signed(&STANDARD_HEADERS, &ring, "msg_1", NOW, "{}");
    for skip in 0..3 {
        let partial: Vec<_> = full
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, h)| h.clone())
            .collect();
        let message = assert_invalid(h.send(&partial, "{}").await, "missing");
        assert!(message.starts_with(full[skip].0), "{message}");
    }
    // Signed by a key the receiver does not have.
    let stranger = one_key_ring("other", NEW_SECRET);
    let foreign = signed(&STANDARD_HEADERS, &stranger, "msg_2", NOW, "{}");
    assert_invalid(h.send(&foreign, "{}").await, "mismatch");
    // An unknown signature version only.
    let mut unknown = full.clone();
    unknown[2].1 = "v9,c2lnbmF0dXJl".to_owned();
    assert_invalid(h.send(&unknown, "{}").await, "malformed");
    // The header sent twice is ambiguous.
    let mut twice = full.clone();
    twice.push(full[2].clone());
    let message = assert_invalid(h.send(&twice, "{}").await, "malformed");
    assert_eq!(
        message,
        "webhook-signature header appears 2 times; send it once"
    );
    // Svix names are not Standard Webhooks names.
    let svix = signed(&SVIX_HEADERS, &ring, "msg_3", NOW, "{}");
    assert_invalid(h.send(&svix, "{}").await, "missing");
    assert_eq!(h.calls(), 0);
}

#[tokio::test]
async fn a_duplicate_is_acknowledged_without_running_the_handler() {
    let ring = one_key_ring("key-1", OLD_SECRET);
    let h = Harness::new(Verifier::standard(ring.duplicate()).unwrap());
    let first = signed(&STANDARD_HEADERS, &ring, "msg_dup", NOW - 20, "{}");
    assert_eq!(h.send(&first, "{}").await.0, StatusCode::OK);
    // The same message again, and a sender's retry re-signed with a new
    // timestamp: both acknowledged, neither processed.
    let retry = signed(&STANDARD_HEADERS, &ring, "msg_dup", NOW, "{}");
    for headers in [&first, &retry] {
        let (status, body) = h.send(headers, "{}").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            json(&body),
            serde_json::json!({"duplicate": true, "id": "msg_dup"})
        );
    }
    assert_eq!(h.calls(), 1);
}

#[tokio::test]
async fn forged_requests_never_mark_an_id_as_seen() {
    let ring = one_key_ring("key-1", OLD_SECRET);
    let guard = Arc::new(InMemoryReplayGuard::new(100, 300));
    let h = Harness::new(
        Verifier::standard(ring.duplicate())
            .unwrap()
            .with_replay_guard(guard.clone()),
    );
    let mut forged = signed(&STANDARD_HEADERS, &ring, "msg_target", NOW, "{}");
    forged[2].1 = format!("v1,{}", "A".repeat(43) + "=");
    assert_invalid(h.send(&forged, "{}").await, "mismatch");
    assert!(guard.is_empty(), "an unauthenticated id was remembered");
    let authentic = signed(&STANDARD_HEADERS, &ring, "msg_target", NOW, "{}");
    assert_eq!(h.send(&authentic, "{}").await.0, StatusCode::OK);
    assert_eq!(guard.len(), 1);
}

#[tokio::test]
async fn bodies_over_the_cap_get_413() {
    let ring = one_key_ring("key-1", OLD_SECRET);
    let h = Harness::new(
        Verifier::standard(ring.duplicate())
            .unwrap()
            .with_max_body_bytes(16),
    );
    let body = "x".repeat(17);
    let headers = signed(&STANDARD_HEADERS, &ring, "msg_big", NOW, &body);
    let (status, text) = h.send(&headers, body.clone()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
    assert_eq!(json(&text)["error"]["code"], "body-too-large");
    // Without a Content-Length (a streamed body), the cap still holds.
    let chunks: Vec<Result<String, std::io::Error>> = vec![Ok("x".repeat(10)), Ok("x".repeat(7))];
    let stream = Body::from_stream(futures::stream::iter(chunks));
    let (status, _) = h.send(&headers, stream).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Exactly at the cap is fine.
    let body = "x".repeat(16);
    let headers = signed(&STANDARD_HEADERS, &ring, "msg_fits", NOW, &body);
    assert_eq!(h.send(&headers, body).await.0, StatusCode::OK);
    assert_eq!(h.calls(), 1);
}

#[tokio::test]
async fn svix_header_names() {
    let ring = one_key_ring("key-1", OLD_SECRET);
    let h = Harness::new(Verifier::with_header_names(SVIX_HEADERS, ring.duplicate()).unwrap());
    let headers = signed(&SVIX_HEADERS, &ring, "msg_svix", NOW, "{}");
    let (status, text) = h.send(&headers, "{}").await;
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::OK, &*format!("msg_svix|{NOW}|key-1|{{}}|0"))
    );
    let message = assert_invalid(
        h.send(&signed(&STANDARD_HEADERS, &ring, "m", NOW, "{}"), "{}")
            .await,
        "missing",
    );
    assert_eq!(message, "svix-id header is missing or empty");
}

#[tokio::test]
async fn a_rotation_accepts_either_key_and_says_which() {
    let both = KeyRing::new(
        vec![key("key-old", OLD_SECRET), key("key-new", NEW_SECRET)],
        None,
    )
    .unwrap();
    let h = Harness::new(Verifier::standard(both).unwrap());
    // A sender still on the old key, one moved to the new key, and one
    // signing with both during its own overlap.
    let old_only = one_key_ring("key-old", OLD_SECRET);
    let new_only = one_key_ring("key-new", NEW_SECRET);
    let (status, text) = h
        .send(
            &signed(&STANDARD_HEADERS, &old_only, "msg_a", NOW, "a"),
            "a",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("|key-old|"), "{text}");
    let (status, text) = h
        .send(
            &signed(&STANDARD_HEADERS, &new_only, "msg_b", NOW, "b"),
            "b",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("|key-new|"), "{text}");
    let mut headers = signed(&STANDARD_HEADERS, &new_only, "msg_c", NOW, "c");
    let old_sig = signed(&STANDARD_HEADERS, &old_only, "msg_c", NOW, "c")[2]
        .1
        .clone();
    headers[2].1 = format!("{} {old_sig}", headers[2].1);
    assert_eq!(h.send(&headers, "c").await.0, StatusCode::OK);
    assert_eq!(h.calls(), 3);
}

#[tokio::test]
async fn profiles_verify_and_dedupe_on_what_they_sign() {
    let body = r#"{"id":"evt_1"}"#;
    let sign = |profile: Profile, secret: &str, id: &str, ts: i64| {
        let keys = vec![profile.parse_key(secret).unwrap()];
        profile
            .sign(
                &keys,
                &signet_sign::profiles::SignRequest {
                    id,
                    timestamp: ts,
                    body: body.as_bytes(),
                },
            )
            .unwrap()
    };
    let as_pairs = |headers: Vec<(String, String)>| -> Vec<(&'static str, String)> {
        headers
            .into_iter()
            .map(|(n, v)| (&*Box::leak(n.into_boxed_str()), v))
            .collect()
    };

    // Stripe signs a timestamp: an exact replay is a duplicate, a new
    // signature of the same body is a new delivery.
    let stripe = Harness::new(
        Verifier::profile(
            Profile::Stripe,
            vec![Profile::Stripe.parse_key("whsec_stripe").unwrap()],
        )
        .unwrap(),
    );
    let first = as_pairs(sign(Profile::Stripe, "whsec_stripe", "", NOW - 5));
    let (status, text) = stripe.send(&first, body).await;
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::OK, &*format!("-|{}|secret 1|{body}|0", NOW - 5))
    );
    let (status, text) = stripe.send(&first, body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&text), serde_json::json!({"duplicate": true}));
    let later = as_pairs(sign(Profile::Stripe, "whsec_stripe", "", NOW));
    assert_eq!(stripe.send(&later, body).await.0, StatusCode::OK);
    assert_eq!(stripe.calls(), 2);
    let old = as_pairs(sign(Profile::Stripe, "whsec_stripe", "", NOW - 400));
    assert_invalid(stripe.send(&old, body).await, "too-old");
    let wrong = as_pairs(sign(Profile::Stripe, "whsec_other", "", NOW));
    assert_invalid(stripe.send(&wrong, body).await, "mismatch");

    // GitHub signs the body only: every copy is accepted, with a warning.
    let github = Harness::new(
        Verifier::profile(
            Profile::Github,
            vec![Profile::Github.parse_key("gh-secret").unwrap()],
        )
        .unwrap(),
    );
    let headers = as_pairs(sign(Profile::Github, "gh-secret", "", NOW));
    for _ in 0..2 {
        let (status, text) = github.send(&headers, body).await;
        assert_eq!(
            (status, text.as_str()),
            (StatusCode::OK, &*format!("-|-|secret 1|{body}|1"))
        );
    }
    assert_invalid(github.send(&[], body).await, "missing");

    // The standard profile through profile keys dedupes on the signed id.
    let standard = Harness::new(
        Verifier::profile(
            Profile::Standard,
            vec![Profile::Standard.parse_key(OLD_SECRET).unwrap()],
        )
        .unwrap(),
    );
    let headers = as_pairs(sign(Profile::Standard, OLD_SECRET, "msg_p", NOW));
    assert_eq!(
        standard.send(&headers, body).await.1,
        format!("msg_p|{NOW}|secret 1|{body}|0")
    );
    let (_, text) = standard.send(&headers, body).await;
    assert_eq!(
        json(&text),
        serde_json::json!({"duplicate": true, "id": "msg_p"})
    );
}

#[tokio::test]
async fn a_handler_can_see_rejections_itself() {
    async fn lenient(result: Result<VerifiedWebhook, WebhookRejection>) -> String {
        match result {
            Ok(hook) => format!("ok {}", hook.id.unwrap_or_default()),
            Err(r) if r.is_duplicate() => format!("seen {}", r.duplicate_id().unwrap_or("")),
            Err(r) => format!("no {} {}", r.status().as_u16(), r.reason()),
        }
    }
    let ring = one_key_ring("key-1", OLD_SECRET);
    let router = Router::new().route("/", post(lenient)).with_state(
        Verifier::standard(ring.duplicate())
            .unwrap()
            .with_clock(|| NOW),
    );
    let call = |headers: Vec<(&'static str, String)>| {
        let router = router.clone();
        async move {
            let mut request = Request::post("/");
            for (n, v) in headers {
                request = request.header(n, v);
            }
            let response = router
                .oneshot(request.body(Body::from("{}")).unwrap())
                .await
                .unwrap();
            let bytes = axum::body::to_bytes(response.into_body(), 1024)
                .await
                .unwrap();
            String::from_utf8(bytes.to_vec()).unwrap()
        }
    };
    let headers = signed(&STANDARD_HEADERS, &ring, "msg_r", NOW, "{}");
    assert_eq!(call(headers.clone()).await, "ok msg_r");
    assert_eq!(call(headers).await, "seen msg_r");
    assert_eq!(call(Vec::new()).await, "no 401 missing");
}

#[test]
fn debug_output_never_shows_key_material() {
    let verifier = Verifier::standard(one_key_ring("key-1", OLD_SECRET)).unwrap();
    let shown = format!("{verifier:?}");
    assert!(
        shown.contains("key-1") && shown.contains("standard"),
        "{shown}"
    );
    assert!(
        !shown.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        "{shown}"
    );
    let verifier = Verifier::profile(
        Profile::Github,
        vec![Profile::Github.parse_key("gh-secret-text").unwrap()],
    )
    .unwrap();
    assert!(!format!("{verifier:?}").contains("gh-secret-text"));
}
