//! One input, one answer: the same task is accepted or refused, naming the
//! same field in the same words, by the `Producer`, `POST /v1/tasks`
//! (through `app().oneshot`), a schedule created with `POST /v1/schedules`
//! (the field nested under `task.`) and `signet enqueue`.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use signet_runtime::{Producer, RuntimeError, TaskSpec};
use signet_server::config::ServerConfig;
use signet_server::create_api_key;
use signet_server::serve::detached_metrics_handle;
use signet_server::{app, AppState, Scope, Signing};
use signet_sign::SigningConfig;
use signet_sqlite::{SqliteConfig, SqliteStore};
use signet_store::Store;
use tower::ServiceExt;

use crate::{signet, signet_env};

/// What an entry point answered: accepted, or the field and message of the
/// refusal.
type Answer = Result<(), (String, String)>;

/// One input: a `POST /v1/tasks` body and an optional idempotency key.
struct Case {
    body: Value,
    key: Option<String>,
}

fn case(body: Value) -> Case {
    Case { body, key: None }
}

fn keyed(key: &str) -> Case {
    Case {
        body: json!({"queue": "q", "task": "t"}),
        key: Some(key.to_owned()),
    }
}

/// The inputs: good ones, and bad ones where the copies of the rules once
/// disagreed (names with spaces or slashes, lengths, callback URLs).
fn cases() -> Vec<(Case, Option<&'static str>)> {
    vec![
        (case(json!({"queue": "q", "task": "send email"})), None),
        (
            case(json!({"queue": "mail.eu:1-x_y", "task": "email.send"})),
            None,
        ),
        (case(json!({"queue": "q", "task": "t".repeat(255)})), None),
        (
            case(json!({"queue": "q", "task": "t".repeat(256)})),
            Some("task"),
        ),
        (case(json!({"queue": "q", "task": ""})), Some("task")),
        (case(json!({"queue": "a/b", "task": "t"})), Some("queue")),
        (
            case(json!({"queue": "bad queue", "task": "t"})),
            Some("queue"),
        ),
        (
            case(json!({"queue": "signet:x", "task": "t"})),
            Some("queue"),
        ),
        (
            case(json!({"queue": "q".repeat(129), "task": "t"})),
            Some("queue"),
        ),
        (
            case(json!({"queue": "q", "task": "t", "max_attempts": 0})),
            Some("max_attempts"),
        ),
        (
            case(json!({"queue": "q", "task": "t", "max_attempts": 1001})),
            Some("max_attempts"),
        ),
        (
            case(json!({"queue": "q", "task": "t", "max_attempts": 1000})),
            None,
        ),
        (
            case(json!({"queue": "q", "task": "t", "priority": 5000})),
            Some("priority"),
        ),
        (
            case(json!({"queue": "q", "task": "t", "priority": -1000})),
            None,
        ),
        (
            case(json!({"queue": "q", "task": "t", "delay_ms": 60_000})),
            None,
        ),
        (
            case(json!({"queue": "q", "task": "t", "headers": {"bad header": "x"}})),
            Some("headers"),
        ),
        (
            case(json!({"queue": "q", "task": "t", "headers": {"tenant": "acme"}})),
            None,
        ),
        (
            case(json!({"queue": "q", "task": "t", "callback_url": "https://example.com/cb"})),
            None,
        ),
        (
            case(json!({"queue": "q", "task": "t", "callback_url": "ftp://x"})),
            Some("callback_url"),
        ),
        (
            case(json!({"queue": "q", "task": "t", "callback_url": "https://u:p@example.com/cb"})),
            Some("callback_url"),
        ),
        (
            case(json!({"queue": "q", "task": "t", "callback_url": "https://example.com/cb#x"})),
            Some("callback_url"),
        ),
        (
            case(json!({"queue": "q", "task": "t", "args": {"to": "a@example.com"}})),
            None,
        ),
        (keyed("order-42"), None),
        (keyed(&"k".repeat(255)), None),
        (keyed(&"k".repeat(256)), Some("Idempotency-Key")),
        (keyed("has space"), Some("Idempotency-Key")),
    ]
}

/// The spec the `Producer` gets for a body.
fn spec(c: &Case) -> TaskSpec {
    let b = &c.body;
    let args = b
        .get("args")
        .map_or_else(|| "{}".to_owned(), Value::to_string);
    let mut spec = TaskSpec::raw(b["task"].as_str().unwrap(), args.into_bytes())
        .queue(b["queue"].as_str().unwrap());
    if let Some(n) = b.get("max_attempts") {
        spec = spec.max_attempts(u32::try_from(n.as_u64().unwrap()).unwrap());
    }
    if let Some(p) = b.get("priority") {
        spec = spec.priority(i32::try_from(p.as_i64().unwrap()).unwrap());
    }
    if let Some(d) = b.get("delay_ms") {
        spec = spec.delay_ms(d.as_i64().unwrap());
    }
    for (k, v) in b
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        spec = spec.header(k.clone(), v.as_str().unwrap());
    }
    if let Some(url) = b.get("callback_url") {
        spec = spec.callback_url(url.as_str().unwrap());
    }
    if let Some(key) = &c.key {
        spec = spec.idempotency_key(key.clone());
    }
    spec
}

/// The `signet enqueue` flags for a body.
fn cli_args(c: &Case) -> Vec<String> {
    let b = &c.body;
    let mut args = vec![
        "enqueue".to_owned(),
        "--queue".to_owned(),
        b["queue"].as_str().unwrap().to_owned(),
        "--task".to_owned(),
        b["task"].as_str().unwrap().to_owned(),
    ];
    if let Some(a) = b.get("args") {
        args.extend(["--args".to_owned(), a.to_string()]);
    }
    if let Some(n) = b.get("max_attempts") {
        args.extend(["--max-attempts".to_owned(), n.to_string()]);
    }
    if let Some(p) = b.get("priority") {
        args.extend(["--priority".to_owned(), p.to_string()]);
    }
    if let Some(d) = b.get("delay_ms") {
        args.extend(["--delay".to_owned(), format!("{d}ms")]);
    }
    for (k, v) in b
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        args.extend([
            "--header".to_owned(),
            format!("{k}={}", v.as_str().unwrap()),
        ]);
    }
    if let Some(url) = b.get("callback_url") {
        args.extend([
            "--callback-url".to_owned(),
            url.as_str().unwrap().to_owned(),
        ]);
    }
    if let Some(key) = &c.key {
        args.extend(["--idempotency-key".to_owned(), key.clone()]);
    }
    args.push("--json".to_owned());
    args
}

/// Splits `field: message` at the first `: ` after the field.
fn split(text: &str, field: &str) -> (String, String) {
    let message = text
        .split_once(&format!("{field}: "))
        .map_or_else(|| text.to_owned(), |(_, m)| m.trim_end().to_owned());
    (field.to_owned(), message)
}

struct Setup {
    _dir: tempfile::TempDir,
    url: String,
    env: Vec<(String, String)>,
    store: Arc<dyn Store>,
    producer: Producer,
    app: axum::Router,
    admin: String,
}

impl Setup {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("signet.db").display());
        let keys = signet(&["keys", "generate", "--id", "k1"], b"");
        let env: Vec<(String, String)> = keys
            .ok()
            .lines()
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap();
                (k.to_owned(), v.to_owned())
            })
            .collect();
        let config = SigningConfig::from_vars(env.clone()).unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&url, SqliteConfig::default()).unwrap());
        let producer = Producer::new(Arc::clone(&store), &config).unwrap();
        let admin = create_api_key(store.as_ref(), "admin", Scope::Admin, 1_700_000_000_000)
            .await
            .unwrap()
            .secret
            .expose_secret()
            .to_owned();
        let state = AppState::new(
            Arc::clone(&store),
            ServerConfig::default(),
            Signing::from(config),
            detached_metrics_handle(),
        );
        Self {
            _dir: dir,
            url,
            env,
            store,
            producer,
            app: app(state),
            admin,
        }
    }

    async fn producer(&self, c: &Case) -> Answer {
        match self.producer.enqueue(spec(c)).await {
            Ok(_) => Ok(()),
            Err(RuntimeError::InvalidField(e)) => Err(e.into_parts()),
            Err(other) => panic!("{}: not a field error: {other}", c.body),
        }
    }

    async fn post(&self, uri: &str, body: &Value, key: Option<&str>) -> (StatusCode, Value) {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.admin))
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let request = request.body(Body::from(body.to_string())).unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A 201 or 200 is accepted; a 422 `invalid_value` is `field: message`.
    fn answer(status: StatusCode, reply: &Value, field: &str) -> Answer {
        if status.is_success() {
            return Ok(());
        }
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
        assert_eq!(reply["error"]["code"], "invalid_value", "{reply}");
        Err(split(reply["error"]["message"].as_str().unwrap(), field))
    }

    async fn http(&self, c: &Case, field: &str) -> Answer {
        let (status, reply) = self.post("/v1/tasks", &c.body, c.key.as_deref()).await;
        Self::answer(status, &reply, field)
    }

    async fn schedule(&self, c: &Case, n: usize, field: &str) -> Answer {
        let body = json!({"name": format!("rules-{n}"), "cron": "0 * * * *", "task": c.body});
        let (status, reply) = self.post("/v1/schedules", &body, None).await;
        Self::answer(status, &reply, &format!("task.{field}"))
            .map_err(|(f, m)| (f.trim_start_matches("task.").to_owned(), m))
    }

    fn cli(&self, c: &Case, field: &str) -> Answer {
        let mut args = cli_args(c);
        args.extend(["--database-url".to_owned(), self.url.clone()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let run = signet_env(&args, b"", &env);
        if run.code == 0 {
            return Ok(());
        }
        assert_eq!(run.code, 2, "{run:#?}");
        let text = run
            .stderr
            .strip_prefix("signet enqueue: ")
            .unwrap_or(&run.stderr);
        Err(split(text, field))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entry_point_gives_the_same_answer() {
    let s = Setup::new().await;
    for (n, (c, expected)) in cases().into_iter().enumerate() {
        let field = expected.unwrap_or("-");
        let producer = s.producer(&c).await;
        match (&producer, expected) {
            (Ok(()), None) => {}
            (Err((f, _)), Some(want)) => assert_eq!(f, want, "{}: {producer:?}", c.body),
            _ => panic!(
                "{} (key {:?}): expected {expected:?}, got {producer:?}",
                c.body, c.key
            ),
        }
        let http = s.http(&c, field).await;
        assert_eq!(http, producer, "POST /v1/tasks vs Producer for {}", c.body);
        if c.key.is_none() {
            let schedule = s.schedule(&c, n, field).await;
            assert_eq!(
                schedule, producer,
                "POST /v1/schedules vs Producer for {}",
                c.body
            );
        }
        let cli = tokio::task::block_in_place(|| s.cli(&c, field));
        assert_eq!(cli, producer, "signet enqueue vs Producer for {}", c.body);
    }
    // Refused input stored nothing; each accepted one was stored by the
    // producer and the CLI (the same idempotency key in the same local
    // scope: once) and by the API (its API key's own scope).
    let counts = s.store.counts().await.unwrap();
    assert!(!counts.is_empty());
}

/// A `whsec_` secret of 2 bytes (`whsec_` + base64 of "hi").
const TWO_BYTE_SECRET: &str = "whsec_aGk=";
/// A `whsec_` secret of 12 bytes: long enough as text, too short as a key.
const TWELVE_BYTE_SECRET: &str = "whsec_c2hvcnQtc2VjcmV0";

/// `signet sign`, `verify` and `receive` refuse a webhook secret the server
/// refuses as a target secret (`rules::target_secret`), in its words, never
/// echoing the secret. Before, a 2-byte secret was accepted here and every
/// delivery a server signed then failed as `mismatch`.
#[test]
fn sign_verify_and_receive_refuse_what_the_server_refuses() {
    let server_words = |secret: &str| {
        signet_store::rules::target_secret(secret)
            .unwrap_err()
            .message()
            .to_owned()
    };
    for secret in [TWO_BYTE_SECRET, TWELVE_BYTE_SECRET] {
        let words = server_words(secret);
        for args in [
            vec!["sign", "--secret", secret],
            vec![
                "verify",
                "--secret",
                secret,
                "--header",
                "webhook-id: msg_1",
            ],
            vec!["receive", "--listen", "127.0.0.1:0", "--secret", secret],
        ] {
            let run = signet(&args, b"{}");
            assert_eq!(run.code, 2, "{args:?}: {run:#?}");
            assert!(run.stderr.contains("--secret 1 of 1"), "{run:#?}");
            assert!(run.stderr.contains(&words), "{args:?}: {run:#?}");
            assert!(!run.stderr.contains(&secret[6..]), "echoed: {run:#?}");
            assert!(!run.stdout.contains("listening"), "{run:#?}");
        }
    }
    // A secret the server takes is taken here too, without a warning.
    let good = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let run = signet(&["sign", "--secret", good], b"{}");
    assert!(run.ok().contains("webhook-signature: v1,"), "{run:#?}");
    assert!(!run.stderr.contains("warning"), "{run:#?}");
}

/// Another system's short secret (GitHub lets a user pick any) still signs
/// and verifies, with a warning that names its length and the minimum.
#[test]
fn short_secrets_of_other_systems_are_warned_about() {
    let run = signet(
        &["sign", "--profile", "github", "--secret", "hunter2"],
        b"{}",
    );
    assert!(run.ok().contains("X-Hub-Signature-256"), "{run:#?}");
    assert!(
        run.stderr
            .contains("warning: --secret 1 of 1 is an HMAC key of 7 bytes")
            && run.stderr.contains("at least 16"),
        "{run:#?}"
    );
    assert!(!run.stderr.contains("hunter2"), "{run:#?}");
}
