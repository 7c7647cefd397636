//! No response, log line or `Debug` output contains a secret: API keys
//! (valid or guessed), their hashes' inputs, or the HMAC signing secret.

use std::sync::Arc;

use axum::http::Method;
use base64::Engine;
use serde_json::json;
use signet_server::config::ServerConfig;
use signet_server::create_api_key;
use signet_server::serve::{detached_metrics_handle, Banner};
use signet_server::{app, AppState, Scope};
use signet_sqlite::{SqliteConfig, SqliteStore};
use signet_store::Store;
use tower::ServiceExt;

use crate::routes::{signing, HMAC_KEY_B64};

#[tokio::test]
async fn no_response_log_or_debug_output_holds_a_secret() {
    // A process-wide subscriber: a scoped one (`set_default`) misses events
    // whose callsites other test threads registered first. Other tests' log
    // lines land in the capture too, which only widens the check. The
    // subscriber writes to a file of its own, read back below.
    let logs = tempfile::NamedTempFile::new().unwrap();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.reopen().unwrap())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber)
        .expect("no other test in this binary installs a global subscriber");

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url, SqliteConfig::default()).unwrap());
    let admin = create_api_key(store.as_ref(), "admin", Scope::Admin, 1)
        .await
        .unwrap();
    let read = create_api_key(store.as_ref(), "read", Scope::Read, 1)
        .await
        .unwrap();
    let state = AppState::new(
        Arc::clone(&store),
        ServerConfig::default(),
        signing(),
        detached_metrics_handle(),
    );
    let router = app(state.clone());

    let guessed = "sk_guessedButWrongKeyThatLooksPlausible0123456789";
    let hmac_raw = base64::engine::general_purpose::STANDARD
        .decode(HMAC_KEY_B64)
        .unwrap();
    let secrets: Vec<String> = vec![
        admin.secret.expose_secret().to_owned(),
        read.secret.expose_secret().to_owned(),
        guessed.to_owned(),
        HMAC_KEY_B64.to_owned(),
        hex::encode(&hmac_raw),
        String::from_utf8_lossy(&hmac_raw).into_owned(),
    ];

    let mut seen = String::new();
    let requests: Vec<(Method, &str, &str, Option<String>)> = vec![
        (Method::POST, "/v1/tasks", admin.secret.expose_secret(), Some(json!({"queue":"q","task":"t"}).to_string())),
        (Method::POST, "/v1/tasks", read.secret.expose_secret(), Some(json!({"queue":"q","task":"t"}).to_string())),
        (Method::POST, "/v1/tasks", guessed, Some(json!({"queue":"q","task":"t"}).to_string())),
        (Method::POST, "/v1/tasks", admin.secret.expose_secret(), Some("{bad json".into())),
        (
            Method::POST,
            "/v1/tasks",
            admin.secret.expose_secret(),
            Some(
                json!({"id":"task_0190000000007000800000000000abce","queue":"q","task":"t","created_at":1,
                       "signature":{"alg":"hmac-sha256","key_id":"k1","sig":base64::engine::general_purpose::STANDARD.encode([0u8; 32])}})
                .to_string(),
            ),
        ),
        (Method::GET, "/v1/tasks", admin.secret.expose_secret(), None),
        (Method::GET, "/v1/keys/status", read.secret.expose_secret(), None),
        (Method::GET, "/openapi.json", "", None),
        (Method::GET, "/metrics", "", None),
    ];
    for (method, uri, key, body) in requests {
        let mut builder = axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {key}"));
        let body = match body {
            Some(b) => {
                builder = builder.header("content-type", "application/json");
                axum::body::Body::from(b)
            }
            None => axum::body::Body::empty(),
        };
        let response = router
            .clone()
            .oneshot(builder.body(body).unwrap())
            .await
            .unwrap();
        seen.push_str(&format!("{:?}\n", response.headers()));
        let bytes = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        seen.push_str(&String::from_utf8_lossy(&bytes));
        seen.push('\n');
    }

    let banner = Banner {
        addr: "127.0.0.1:1".parse().unwrap(),
        store: &url,
        signing: state.signing(),
        config: state.config(),
        new_admin_key: None,
    };
    let debug_outputs = [
        format!("{state:?}"),
        format!("{:?}", state.signing()),
        format!("{admin:?}"),
        format!("{:?}", admin.secret),
        banner.to_string(),
    ];
    let logged = String::from_utf8_lossy(&std::fs::read(logs.path()).unwrap()).into_owned();
    assert!(
        !logged.is_empty(),
        "the tracing capture saw nothing; the test would prove nothing"
    );
    for secret in &secrets {
        assert!(
            !seen.contains(secret.as_str()),
            "a response holds a secret: {seen}"
        );
        assert!(
            !logged.contains(secret.as_str()),
            "a log line holds a secret: {logged}"
        );
        for d in &debug_outputs {
            assert!(
                !d.contains(secret.as_str()),
                "Debug output holds a secret: {d}"
            );
        }
    }
}
