//! Every command that reads or changes state, run on the database
//! (`--database-url`) and against `signet serve` on that same database
//! (`--url` with `--api-key`): the `--json` outputs are the same text.
//! Where two runs must differ (a second run acts on other rows, a change
//! moves `updated_at`), the difference is normalised explicitly and said.
//! Then the refusals that come from the flags: a wrong key, a read key on
//! an admin act, a server that is down, no key.

use std::time::{Duration, Instant};

use std::io::{Read as _, Write as _};
use std::sync::Arc;

use serde_json::Value;
use signet_postgres::{PostgresOptions, PostgresStore};
use signet_sqlite::{SqliteConfig, SqliteStore};
use signet_store::{ClaimRequest, DeadReason, FailOutcome, LeaseToken, Store};

use super::support::{json, must_not_skip, on_terminal, Server};
use crate::{signet_env, Run};

/// Where the store is: a SQLite file, or a schema of the PostgreSQL
/// server `SIGNET_TEST_DATABASE_URL` names (dropped at the end).
enum Backend {
    Sqlite,
    Postgres(String),
}

/// The keys of the PostgreSQL runs: nodes get theirs explicitly.
const PG_ENV: [(&str, &str); 3] = [
    (
        "SIGNET_SIGNING_KEYS",
        "k1:cmVtb3RlLXRlc3QtaG1hYy1rZXktMzItYnl0ZXMhISE=",
    ),
    ("SIGNET_SIGNING_ACTIVE_KEY", "k1"),
    (
        "SIGNET_MASTER_KEY",
        "bWFzdGVyLWtleS1mb3ItdGhlLXJlbW90ZS10ZXN0cyE=",
    ),
];

/// A `signet serve` on a store, and the CLI on the same store.
struct Both {
    _dir: tempfile::TempDir,
    db: String,
    schema: Option<String>,
    env: Vec<(&'static str, &'static str)>,
    server: Server,
    base: String,
}

impl Drop for Both {
    fn drop(&mut self) {
        let Some(schema) = self.schema.clone() else {
            return;
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dropped = rt.block_on(async {
            let store = PostgresStore::connect(&self.db, pg_options(&schema)).await?;
            store.danger_drop_schema().await
        });
        if let Err(e) = dropped {
            eprintln!("could not drop the test schema {schema}: {e}");
        }
    }
}

fn pg_options(schema: &str) -> PostgresOptions {
    PostgresOptions {
        schema: Some(schema.to_owned()),
        pool_size: 1,
        ..PostgresOptions::default()
    }
}

impl Both {
    fn start(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (db, schema, env) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("remote.db").display()),
                None,
                Vec::new(),
            ),
            Backend::Postgres(url) => {
                let schema = format!(
                    "it_remote_{}_{}",
                    std::process::id(),
                    rand::random::<u32>() & 0x0fff_ffff
                );
                (url, Some(schema), PG_ENV.to_vec())
            }
        };
        let extra: Vec<&str> = match &schema {
            Some(s) => vec!["--database-schema", s],
            None => Vec::new(),
        };
        // The server may deliver to this machine (the test's receiver).
        let mut server_env = env.clone();
        server_env.push(("SIGNET_ALLOWED_TARGET_CIDRS", "127.0.0.0/8"));
        let (server, key) = Server::start(&db, &server_env, &extra);
        assert!(key.is_some(), "a fresh store prints its first admin key");
        let base = format!("http://{}", server.addr);
        Self {
            _dir: dir,
            db,
            schema,
            env,
            server,
            base,
        }
    }

    /// `signet ARGS` on the database.
    fn local(&self, args: &[&str]) -> Run {
        let mut all = args.to_vec();
        all.extend(["--database-url", &self.db]);
        if let Some(schema) = &self.schema {
            all.extend(["--database-schema", schema]);
        }
        signet_env(&all, b"", &self.env)
    }

    /// `signet ARGS --url …` with `SIGNET_API_KEY=KEY` (the recommended
    /// way: a key on the command line shows in `ps`, and is warned about).
    fn remote_as(&self, key: &str, args: &[&str]) -> Run {
        let mut all = args.to_vec();
        all.extend(["--url", &self.base]);
        signet_env(&all, b"", &[("SIGNET_API_KEY", key)])
    }

    /// `signet ARGS` against the server with its admin key.
    fn remote(&self, args: &[&str]) -> Run {
        self.remote_as(&self.server.key, args)
    }

    /// Runs `args` both ways, asserts both succeed with the same stdout,
    /// and returns it as JSON.
    fn same(&self, args: &[&str]) -> Value {
        let local = self.local(args);
        let remote = self.remote(args);
        assert_eq!(local.ok(), remote.ok(), "{args:?}: {local:#?} {remote:#?}");
        json(&local.stdout)
    }

    /// Runs `args` (without `--json`) both ways and asserts both print the
    /// same text for people.
    fn same_text(&self, args: &[&str]) {
        let local = self.local(args);
        let remote = self.remote(args);
        assert_eq!(local.ok(), remote.ok(), "{args:?}: {local:#?} {remote:#?}");
        assert!(!local.stdout.trim().is_empty(), "{args:?} printed nothing");
    }

    /// Runs `args` both ways, asserts both fail with `code` and the same
    /// message (the server's, which a remote run follows with the status
    /// and the server's address), and returns the local message.
    fn same_refusal(&self, args: &[&str], code: i32) -> String {
        let local = self.local(args);
        let remote = self.remote(args);
        assert_eq!(local.code, code, "{args:?}: {local:#?}");
        assert_eq!(remote.code, code, "{args:?}: {remote:#?}");
        let local_says = local.stderr.trim().to_owned();
        assert!(
            remote.stderr.trim().starts_with(&local_says),
            "{args:?}: {local:#?} {remote:#?}"
        );
        local_says
    }

    /// An API key of `scope`, made on the database.
    fn key(&self, scope: &str) -> String {
        let run = self.local(&["api-keys", "create", "--name", scope, "--scope", scope]);
        run.ok().trim().to_owned()
    }

    /// Dead-letters task `id` as a worker would (`max-attempts`).
    fn kill(&self, id: &str) {
        self.kill_at(id, now_ms());
    }

    /// Dead-letters task `id` stamped `at_ms`, as a node whose clock is
    /// behind would.
    fn kill_at(&self, id: &str, at_ms: i64) {
        let id = id.to_owned();
        self.with_store(|store| async move {
            store
                .kill(&id, DeadReason::MaxAttempts, "handler failed", at_ms)
                .await
                .map(|_| ())
        });
    }

    /// Claims task `id` (alone on its queue) and fails it to retry in an
    /// hour, as a worker would: it is `retryable`.
    fn make_retryable(&self, queue: &str) {
        let queue = queue.to_owned();
        self.with_store(|store| async move {
            let claim = ClaimRequest {
                queues: vec![queue],
                worker_id: "w".into(),
                limit: 1,
                lease_ms: 30_000,
            };
            let row = store.claim(claim, now_ms()).await?.remove(0);
            let retry = FailOutcome::Retry {
                at_ms: now_ms() + 3_600_000,
            };
            store
                .fail(&LeaseToken::of(&row), "boom", retry, now_ms())
                .await
        });
    }

    /// Runs `act` on the test's own connection to the store.
    fn with_store<F, Fut>(&self, act: F)
    where
        F: FnOnce(Arc<dyn Store>) -> Fut,
        Fut: std::future::Future<Output = Result<(), signet_store::StoreError>>,
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let store: Arc<dyn Store> = match &self.schema {
                None => Arc::new(SqliteStore::open(&self.db, SqliteConfig::default()).unwrap()),
                Some(schema) => Arc::new(
                    PostgresStore::connect(&self.db, pg_options(schema))
                        .await
                        .unwrap(),
                ),
            };
            act(Arc::clone(&store)).await.unwrap();
            store.close().await.unwrap();
        });
    }
}

/// The PostgreSQL server of the tests, or `None` (the test is skipped,
/// and says so) where there is none.
fn postgres(test: &str) -> Option<Backend> {
    match std::env::var("SIGNET_TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Some(Backend::Postgres(url)),
        _ => {
            assert!(
                !must_not_skip(),
                "{test}: SIGNET_TEST_DATABASE_URL is not set, and CI requires the PostgreSQL tests"
            );
            eprintln!("SKIPPED {test}: SIGNET_TEST_DATABASE_URL is not set");
            None
        }
    }
}

/// A receiver on 127.0.0.1 that answers every request `200 ok`; its URL.
fn receiver() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // The headers, then as many body bytes as they announce.
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    url
}

/// Waits until `messages show ID` says `state`, with `attempts` attempts.
fn wait_for_message(b: &Both, msg: &str, state: &str, attempts: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let shown = json(b.remote(&["messages", "show", msg, "--json"]).ok());
        if shown["state"] == state && shown["attempts"].as_array().map(Vec::len) == Some(attempts) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never {state} after {attempts}: {shown}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The keys of a JSON object, sorted.
fn keys(v: &Value) -> Vec<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

fn id(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id: {v}"))
        .to_owned()
}

#[test]
fn tasks_queues_dead_letters_and_keys_answer_alike_on_sqlite_and_a_server() {
    tasks_queues_dead_letters_and_keys(&Both::start(Backend::Sqlite));
}

#[test]
fn tasks_queues_dead_letters_and_keys_answer_alike_on_postgres_and_a_server() {
    if let Some(pg) = postgres("remote tasks on PostgreSQL") {
        tasks_queues_dead_letters_and_keys(&Both::start(pg));
    }
}

fn tasks_queues_dead_letters_and_keys(b: &Both) {
    let enqueue = ["enqueue", "--queue", "mail", "--task", "send", "--json"];
    let mut args = enqueue.to_vec();
    args.extend(["--args", r#"{"to": "a@example.com"}"#]);
    // Two enqueues make two tasks: compared by shape, and both signed with
    // the key the server and the CLI share (the key file beside the store).
    let local = json(b.local(&args).ok());
    let remote = json(b.remote(&args).ok());
    assert_eq!(keys(&local), keys(&remote), "{local} {remote}");
    assert_eq!(local["signature"]["key_id"], remote["signature"]["key_id"]);
    assert_eq!(local["args"], remote["args"]);
    let (a, c) = (id(&local), id(&remote));
    let d = id(&json(b.local(&enqueue).ok()));

    let listed = b.same(&["tasks", "ls", "--json"]);
    assert_eq!(listed["items"].as_array().unwrap().len(), 3, "{listed}");
    b.same(&[
        "tasks",
        "ls",
        "--queue",
        "mail",
        "--state",
        "available",
        "--limit",
        "2",
        "--json",
    ]);
    let shown = b.same(&["tasks", "show", &a, "--json"]);
    assert_eq!(shown["history"], serde_json::json!([]), "{shown}");
    b.same(&["queues", "--json"]);
    b.same(&["queues", "--all", "--json"]);
    for args in [
        &["tasks", "ls"][..],
        &["tasks", "show", &a],
        &["queues"],
        &["keys", "status"],
    ] {
        b.same_text(args);
    }
    let status = b.same(&["keys", "status", "--json"]);
    assert_eq!(status["keys"][0]["pending"], 3, "{status}");

    // Cancel: on a server, then the same task shows alike both ways (the
    // answer is the task as `tasks show` shows it, without its history);
    // cancelling it again is refused alike.
    let cancelled = json(b.remote(&["tasks", "cancel", &a, "--json"]).ok());
    let mut shown = b.same(&["tasks", "show", &a, "--json"]);
    assert_eq!(shown["history"][0]["kind"], "cancelled", "{shown}");
    assert!(
        shown["history"][0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("api key key_"),
        "{shown}"
    );
    shown.as_object_mut().unwrap().remove("history");
    assert_eq!(cancelled, shown);
    let says = b.same_refusal(&["tasks", "cancel", &a, "--json"], 2);
    assert!(says.contains("cancelled"), "{says}");
    b.same_refusal(
        &["tasks", "show", "task_01a24f70315970d6b102017089014acc"],
        1,
    );

    // Dead letters.
    b.kill(&c);
    let dead = b.same(&["dlq", "ls", "--json"]);
    assert_eq!(dead["items"][0]["id"], c.as_str(), "{dead}");
    b.same(&[
        "dlq",
        "ls",
        "--reason",
        "max-attempts",
        "--until",
        "2999-01-01T00:00:00Z",
        "--json",
    ]);
    b.same(&["dlq", "show", &c, "--json"]);
    b.same_text(&["dlq", "ls"]);
    b.same_text(&["dlq", "show", &c]);
    // Replay on the database; killed again, the same replay against the
    // server answers the same.
    let replay = ["dlq", "replay", "--id", &c, "--json"];
    let first = b.local(&replay);
    b.kill(&c);
    let second = b.remote(&replay);
    assert_eq!(first.ok(), second.ok());
    assert_eq!(json(&first.stdout)["ids"], serde_json::json!([c]));
    // Purge: each way kills and purges its own task; the answers differ
    // only by that id.
    b.kill(&c);
    b.kill(&d);
    let local = b.local(&["dlq", "purge", "--id", &c, "--yes", "--json"]);
    let remote = b.remote(&["dlq", "purge", "--id", &d, "--yes", "--json"]);
    assert_eq!(local.ok(), remote.ok().replace(&d, &c));
    b.same(&[
        "dlq",
        "purge",
        "--all-matching",
        "--queue",
        "mail",
        "--yes",
        "--json",
    ]);

    // Queues: paused against the server; pausing again on the database
    // changes nothing and answers the same; resumed alike.
    let pause = [
        "queues",
        "pause",
        "mail",
        "--reason",
        "maintenance",
        "--json",
    ];
    let paused = b.remote(&pause);
    assert_eq!(paused.ok(), b.local(&pause).ok());
    assert_eq!(json(&paused.stdout)["paused"], true);
    let listed = b.same(&["queues", "--json"]);
    assert_eq!(
        listed["queues"][0]["pause_reason"], "maintenance",
        "{listed}"
    );
    b.same_text(&["queues"]);
    let resume = ["queues", "resume", "mail", "--json"];
    let resumed = b.local(&resume);
    assert_eq!(resumed.ok(), b.remote(&resume).ok());
    assert_eq!(json(&resumed.stdout)["paused"], false);

    // Retry now: refused alike for a task that is not waiting to retry;
    // a retryable one retried against the server shows alike.
    let e = id(&json(
        b.local(&["enqueue", "--queue", "later", "--task", "t", "--json"])
            .ok(),
    ));
    let says = b.same_refusal(&["tasks", "retry", &e], 2);
    assert!(says.contains("retryable"), "{says}");
    b.make_retryable("later");
    assert_eq!(
        b.same(&["tasks", "show", &e, "--json"])["state"],
        "retryable"
    );
    let retried = json(b.remote(&["tasks", "retry", &e, "--json"]).ok());
    assert_eq!(retried["state"], "available", "{retried}");
    let shown = b.same(&["tasks", "show", &e, "--json"]);
    let kinds: Vec<&str> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["attempt", "retried-now"], "{shown}");
    b.same_text(&["tasks", "show", &e]);

    // Schedules, named by name: created on the database, paused against
    // the server; pausing again changes nothing, a negative answer alike.
    let add = [
        "schedules",
        "add",
        "nightly",
        "--cron",
        "0 3 * * *",
        "--task",
        "report",
    ];
    b.local(&add).ok();
    b.same(&["schedules", "ls", "--json"]);
    b.same(&["schedules", "show", "nightly", "--json"]);
    b.same_text(&["schedules", "ls"]);
    b.same_text(&["schedules", "show", "nightly"]);
    let paused = json(b.remote(&["schedules", "pause", "nightly", "--json"]).ok());
    assert_eq!(paused["paused"], true, "{paused}");
    let again = ["schedules", "pause", "nightly", "--json"];
    let (local, remote) = (b.local(&again), b.remote(&again));
    assert_eq!((local.code, remote.code), (1, 1), "{local:#?} {remote:#?}");
    assert_eq!(local.stdout, remote.stdout);
    assert_eq!(local.stderr, remote.stderr);
    b.local(&["schedules", "resume", "nightly"]).ok();
    assert_eq!(
        b.same(&["schedules", "show", "nightly", "--json"])["paused"],
        false
    );
}

#[test]
fn targets_and_messages_answer_alike_on_sqlite_and_a_server() {
    targets_and_messages(&Both::start(Backend::Sqlite));
}

#[test]
fn targets_and_messages_answer_alike_on_postgres_and_a_server() {
    if let Some(pg) = postgres("remote targets on PostgreSQL") {
        targets_and_messages(&Both::start(pg));
    }
}

fn targets_and_messages(b: &Both) {
    // Two creates make two targets with their own secrets: compared by
    // shape.
    let local = json(
        b.local(&["targets", "create", "orders", "--rate-limit", "5", "--json"])
            .ok(),
    );
    let remote = json(
        b.remote(&[
            "targets",
            "create",
            "billing",
            "--rate-limit",
            "5",
            "--json",
        ])
        .ok(),
    );
    assert_eq!(keys(&local), keys(&remote), "{local} {remote}");
    assert!(local["secret"].as_str().unwrap().starts_with("whsec_"));
    let target_id = id(&local);
    b.same(&["targets", "ls", "--json"]);
    b.same(&["targets", "show", "orders", "--json"]);

    // The same change both ways: the answers differ only in `updated_at`
    // (each run changes the target again).
    let update = [
        "targets",
        "update",
        "orders",
        "--max-concurrency",
        "3",
        "--no-rate-limit",
        "--json",
    ];
    let mut local = json(b.local(&update).ok());
    let mut remote = json(b.remote(&update).ok());
    for v in [&mut local, &mut remote] {
        v.as_object_mut().unwrap().remove("updated_at");
    }
    assert_eq!(local, remote);
    assert_eq!(local["max_concurrency"], 3);
    assert_eq!(local["rate_limit_per_s"], Value::Null);

    // Rotate on a server, then both see the two secrets signing.
    let rotated = json(
        b.remote(&["targets", "rotate", "orders", "--overlap", "1h", "--json"])
            .ok(),
    );
    assert_eq!(rotated["secrets"].as_array().unwrap().len(), 2, "{rotated}");
    b.same(&["targets", "show", "orders", "--json"]);

    // Re-seal: nothing to do under one master key, reported alike, in
    // batches of one.
    let dry = b.same(&["targets", "reseal", "--dry-run", "--batch", "1", "--json"]);
    assert_eq!(dry["total"], 2, "{dry}");
    assert_eq!(dry["already_current"], 2, "{dry}");
    b.same(&["targets", "reseal", "--json"]);

    // A message whose one attempt fails (nothing listens on port 9) ends
    // dead; then it shows alike.
    let body =
        r#"{"url":"http://localhost:9/hook","target":"orders","body":{"n":1},"max_attempts":1}"#;
    let (status, answer) = b.server.http("POST", "/v1/messages", Some(body));
    assert_eq!(status, 201, "{answer}");
    let msg = id(&json(&answer));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let shown = json(b.remote(&["messages", "show", &msg, "--json"]).ok());
        if shown["state"] == "dead" {
            break;
        }
        assert!(Instant::now() < deadline, "never dead: {shown}");
        std::thread::sleep(Duration::from_millis(100));
    }
    b.same(&["messages", "ls", "--json"]);
    b.same(&["messages", "ls", "--state", "dead", "--json"]);
    let shown = b.same(&["messages", "show", &msg, "--json"]);
    for args in [
        &["messages", "ls"][..],
        &["messages", "show", &msg],
        &["targets", "ls"],
        &["targets", "show", "orders"],
    ] {
        b.same_text(args);
    }
    assert_eq!(
        shown["attempts"].as_array().map(Vec::len),
        Some(1),
        "{shown}"
    );
    b.same(&["tasks", "ls", "--all", "--json"]);
    b.same(&["dlq", "show", &msg, "--json"]);
    // A dead message is neither retried nor resent: refused alike, saying
    // what to do.
    let says = b.same_refusal(&["messages", "resend", &msg], 2);
    assert!(says.contains("dlq") || says.contains("dead"), "{says}");
    b.same_refusal(&["messages", "retry", &msg], 2);
    // A delivered message, resent against the server: a second attempt,
    // the same message; then it shows alike, the resend in its history.
    let body = format!(r#"{{"url":"{}","body":{{"n":2}}}}"#, receiver());
    let (status, answer) = b.server.http("POST", "/v1/messages", Some(&body));
    assert_eq!(status, 201, "{answer}");
    let sent = id(&json(&answer));
    wait_for_message(b, &sent, "succeeded", 1);
    b.same_refusal(&["messages", "retry", &sent], 2);
    let resent = json(b.remote(&["messages", "resend", &sent, "--json"]).ok());
    assert_eq!(resent["id"], sent.as_str(), "{resent}");
    wait_for_message(b, &sent, "succeeded", 2);
    let shown = b.same(&["messages", "show", &sent, "--json"]);
    assert_eq!(shown["history"][0]["kind"], "resent", "{shown}");
    b.same_text(&["messages", "show", &sent]);

    // Publish from the CLI: one message, held an hour. Idempotency keys are
    // per caller (the operator on the database, the API key on a server),
    // so each way publishes its own message and a second run of the same
    // way answers its first one.
    let publish = [
        "messages",
        "publish",
        "https://hooks.example.com/orders",
        "--target",
        "orders",
        "--json-body",
        r#"{"order":42}"#,
        "--header",
        "X-Tenant=acme",
        "--delay",
        "1h",
        "--idempotency-key",
        "cli-order-42",
        "--json",
    ];
    let local = json(b.local(&publish).ok());
    let remote = json(b.remote(&publish).ok());
    assert_eq!(keys(&local), keys(&remote), "{local} {remote}");
    for (first, run) in [(&local, b.local(&publish)), (&remote, b.remote(&publish))] {
        assert!(id(first).starts_with("msg_"), "{first}");
        assert_eq!(first["state"], "scheduled", "{first}");
        assert_eq!(first["target"], target_id.as_str(), "{first}");
        assert_eq!(id(&json(run.ok())), id(first), "the key answers the first");
    }
    // The text: the id on stdout, what happened on stderr.
    let run = b.local(&publish[..publish.len() - 1]);
    assert_eq!(run.ok().trim(), id(&local));
    assert!(run.stderr.contains("already published"), "{run:#?}");
    // A file of messages, one per line, published in batches of up to
    // 1000, in order; run again, the same messages, marked existing.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("messages.jsonl");
    let lines: Vec<String> = (0..3)
        .map(|n| {
            format!(
                r#"{{"url":"https://hooks.example.com/orders/{n}","target":"orders","delay_ms":3600000,"idempotency_key":"cli-file-{n}","body":{{"n":{n}}}}}"#
            )
        })
        .collect();
    std::fs::write(&file, format!("{}\n\n", lines.join("\n"))).unwrap();
    let path = file.to_str().unwrap();
    let batch = ["messages", "publish", "--file", path, "--json"];
    for run in [
        |b: &Both, args: &[&str]| b.local(args),
        |b: &Both, args: &[&str]| b.remote(args),
    ] {
        let first = json(run(b, &batch).ok());
        let again = json(run(b, &batch).ok());
        let items = |v: &Value, existing: bool| -> Vec<(String, String)> {
            v["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    assert_eq!(m["existing"], existing, "{m}");
                    (id(m), m["url"].as_str().unwrap().to_owned())
                })
                .collect()
        };
        let published = items(&first, false);
        assert_eq!(published, items(&again, true));
        let urls: Vec<&str> = published.iter().map(|(_, u)| u.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://hooks.example.com/orders/0",
                "https://hooks.example.com/orders/1",
                "https://hooks.example.com/orders/2"
            ]
        );
    }
    // A refused line refuses its batch alike, naming the lines and the
    // item; nothing of it is published.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"url\":\"https://hooks.example.com/x\",\"target\":\"orders\"}\n{\"url\":\"ftp://example.com/\"}\n",
    )
    .unwrap();
    let says = b.same_refusal(&["messages", "publish", "--file", bad.to_str().unwrap()], 2);
    assert!(
        says.contains("lines 1–2") && says.contains("messages[1].url"),
        "{says}"
    );
    let listed = b.same(&["messages", "ls", "--limit", "1000", "--json"]);
    assert!(
        !listed.to_string().contains("https://hooks.example.com/x"),
        "a refused batch stored a message: {listed}"
    );

    // Delete: in use by nothing, each way deletes its own target and says
    // nothing (the API answers 204); a missing one is refused alike.
    assert_eq!(
        b.local(&["targets", "rm", "orders", "--force", "--json"])
            .code,
        0
    );
    assert_eq!(b.remote(&["targets", "rm", "billing", "--json"]).ok(), "");
    b.same_refusal(&["targets", "rm", "billing"], 1);
    assert_eq!(
        b.same(&["targets", "ls", "--json"])["items"],
        serde_json::json!([])
    );
}

#[test]
fn the_flags_and_the_server_refuse_with_what_to_do() {
    let b = Both::start(Backend::Sqlite);
    // A wrong key: 401, and the key is never printed.
    let run = b.remote_as("sk_not_a_key_at_all", &["tasks", "ls"]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr.contains("refused the API key (401") && run.stderr.contains(&b.base),
        "{run:#?}"
    );
    assert!(!run.stderr.contains("sk_not_a_key_at_all"), "{run:#?}");

    // A read key reads, and is refused an admin act, saying so.
    let read = b.key("read");
    let task = json(
        b.local(&["enqueue", "--queue", "q", "--task", "t", "--json"])
            .ok(),
    );
    assert_eq!(b.remote_as(&read, &["tasks", "ls", "--json"]).code, 0);
    for args in [
        &["tasks", "cancel", task["id"].as_str().unwrap()][..],
        &["targets", "ls"][..],
        &["targets", "reseal"][..],
    ] {
        let run = b.remote_as(&read, args);
        assert_eq!(run.code, 2, "{args:?}: {run:#?}");
        assert!(
            run.stderr.contains("(403") && run.stderr.contains("use an admin key"),
            "{args:?}: {run:#?}"
        );
    }

    // A server that is not there: the URL it tried, and what to check.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let url = format!("http://{closed}");
    let run = signet_env(
        &["tasks", "ls", "--url", &url, "--api-key", "sk_x"],
        b"",
        &[],
    );
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr
            .contains(&format!("cannot reach the Signet server at {url}"))
            && run.stderr.contains("refused"),
        "{run:#?}"
    );

    // A URL without a key, a key without a URL (from the environment too).
    let run = signet_env(&["queues", "--url", &b.base], b"", &[]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("needs an API key"), "{run:#?}");
    let run = signet_env(&["queues"], b"", &[("SIGNET_URL", &b.base)]);
    assert!(run.stderr.contains("needs an API key"), "{run:#?}");
    let run = signet_env(
        &["queues", "--database-url", &b.db],
        b"",
        &[("SIGNET_API_KEY", &b.server.key)],
    );
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("no server"), "{run:#?}");
    assert!(!run.stderr.contains(&b.server.key), "{run:#?}");
    // The variables work like the flags.
    let run = signet_env(
        &["queues", "--json"],
        b"",
        &[("SIGNET_URL", &b.base), ("SIGNET_API_KEY", &b.server.key)],
    );
    assert_eq!(json(run.ok())["queues"][0]["queue"], "q");
    // --unsigned is the database's: a server signs with its own keys.
    let run = b.remote(&["enqueue", "--task", "t", "--unsigned"]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("database only"), "{run:#?}");
}

#[test]
fn the_key_goes_only_where_the_user_meant_and_is_never_echoed() {
    let b = Both::start(Backend::Sqlite);
    let key = b.server.key.clone();

    // --url and an explicit database: refused, naming both (the flag or
    // the variable) and what to do; the database URL's default is no
    // conflict (every remote run above relies on it).
    let run = signet_env(
        &["queues", "--url", &b.base, "--database-url", &b.db],
        b"",
        &[("SIGNET_API_KEY", &key)],
    );
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr.contains("--database-url") && run.stderr.contains(&b.base),
        "{run:#?}"
    );
    assert!(run.stderr.contains("drop --database-url"), "{run:#?}");
    let run = signet_env(
        &["queues"],
        b"",
        &[
            ("SIGNET_URL", &b.base),
            ("SIGNET_API_KEY", &key),
            ("SIGNET_DATABASE_URL", &b.db),
        ],
    );
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("drop SIGNET_DATABASE_URL"), "{run:#?}");

    // A key on the command line works, with a warning; the variable, a
    // file and stdin work without one.
    let argv = signet_env(&["queues", "--url", &b.base, "--api-key", &key], b"", &[]);
    argv.ok();
    assert!(
        argv.stderr
            .contains("--api-key on the command line shows in the process list"),
        "{argv:#?}"
    );
    assert!(!argv.stderr.contains(&key), "{argv:#?}");
    let quiet = b.remote(&["queues"]);
    quiet.ok();
    assert_eq!(quiet.stderr, "", "{quiet:#?}");
    let stdin = signet_env(
        &["queues", "--url", &b.base, "--api-key", "-"],
        format!("{key}\n").as_bytes(),
        &[],
    );
    stdin.ok();
    assert_eq!(stdin.stderr, "", "{stdin:#?}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key");
    std::fs::write(&file, format!("  {key}\n")).unwrap();
    let path = file.to_str().unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let private = signet_env(
            &["queues", "--url", &b.base, "--api-key-file", path],
            b"",
            &[],
        );
        private.ok();
        assert_eq!(private.stderr, "", "{private:#?}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let shared = signet_env(
        &["queues", "--url", &b.base, "--api-key-file", path],
        b"",
        &[],
    );
    shared.ok();
    #[cfg(unix)]
    assert!(shared.stderr.contains("chmod 600"), "{shared:#?}");
    let both = signet_env(
        &["queues", "--url", &b.base, "--api-key-file", path],
        b"",
        &[("SIGNET_API_KEY", &key)],
    );
    assert_eq!(both.code, 2, "{both:#?}");
    assert!(both.stderr.contains("SIGNET_API_KEY"), "{both:#?}");

    // Plain http:// to another machine: refused before anything is sent,
    // unless --insecure-http, which says so loudly.
    let away = signet_env(
        &["queues", "--url", "http://signet.invalid:8787"],
        b"",
        &[("SIGNET_API_KEY", &key)],
    );
    assert_eq!(away.code, 2, "{away:#?}");
    assert!(
        away.stderr.contains("plain http://") && away.stderr.contains("--insecure-http"),
        "{away:#?}"
    );
    assert!(!away.stderr.contains("cannot reach"), "{away:#?}");
    let insecure = signet_env(
        &[
            "queues",
            "--url",
            "http://signet.invalid:8787",
            "--insecure-http",
        ],
        b"",
        &[("SIGNET_API_KEY", &key)],
    );
    assert_eq!(insecure.code, 2, "{insecure:#?}");
    assert!(
        insecure.stderr.contains("WARN --insecure-http")
            && insecure.stderr.contains("cannot reach"),
        "{insecure:#?}"
    );

    // Credentials in the URL: refused, and never echoed.
    let with_password = b.base.replacen("http://", "http://admin:hunter2@", 1);
    for run in [
        signet_env(
            &["queues", "--url", &with_password],
            b"",
            &[("SIGNET_API_KEY", &key)],
        ),
        signet_env(&["queues", "--url", &with_password], b"", &[]),
    ] {
        assert_eq!(run.code, 2, "{run:#?}");
        assert!(!run.stderr.contains("hunter2"), "{run:#?}");
        assert!(!run.stderr.contains("admin"), "{run:#?}");
    }

    // A purge by filter asks, naming where the dead letters are.
    let task = json(
        b.local(&["enqueue", "--queue", "q", "--task", "t", "--json"])
            .ok(),
    );
    b.kill(&id(&task));
    let remote = b.remote(&["dlq", "purge", "--all-matching"]);
    assert_eq!(remote.code, 2, "{remote:#?}");
    assert!(
        remote.stderr.contains(&format!(
            "delete 1 dead letter(s) for good on the server at {}",
            b.base
        )),
        "{remote:#?}"
    );
    let local = b.local(&["dlq", "purge", "--all-matching"]);
    assert_eq!(local.code, 2, "{local:#?}");
    assert!(
        local.stderr.contains(&format!(
            "delete 1 dead letter(s) for good in the database {}",
            b.db
        )),
        "{local:#?}"
    );
}

#[test]
fn a_confirmed_purge_deletes_what_was_counted_not_what_died_since() {
    let b = Both::start(Backend::Sqlite);
    let enqueue = || {
        id(&json(
            b.local(&["enqueue", "--queue", "old", "--task", "t", "--json"])
                .ok(),
        ))
    };
    for remote in [false, true] {
        let counted = enqueue();
        b.kill(&counted);
        let late = enqueue();
        let mut args = vec!["dlq", "purge", "--all-matching", "--queue", "old"];
        let key = b.server.key.clone();
        let env: Vec<(&str, &str)> = if remote {
            args.extend(["--url", &b.base]);
            vec![("SIGNET_API_KEY", &key)]
        } else {
            args.extend(["--database-url", &b.db]);
            Vec::new()
        };
        // While the prompt waits, another dead letter of the filter
        // arrives, stamped an hour back (a node whose clock is behind):
        // it was not counted, so it is not deleted.
        let Some((shown, code)) = on_terminal(
            &args,
            &env,
            "Delete 1 dead letter(s) for good",
            || b.kill_at(&late, now_ms() - 3_600_000),
            "y",
        ) else {
            return;
        };
        assert_eq!(code, 0, "remote {remote}: {shown}");
        assert!(
            shown.contains("purged 1 dead letter(s)") && shown.contains(&counted),
            "remote {remote}: {shown}"
        );
        assert_eq!(b.local(&["tasks", "show", &counted]).code, 1);
        let left = json(b.local(&["dlq", "show", &late, "--json"]).ok());
        assert_eq!(left["state"], "dead", "remote {remote}: {left}");
        b.local(&["dlq", "purge", "--id", &late, "--yes"]).ok();
    }
    // Nothing to confirm: no question, nothing purged, not an error.
    let none = b.local(&["dlq", "purge", "--all-matching", "--queue", "old"]);
    assert!(none.ok().contains("purged 0 dead letter(s)"), "{none:#?}");
    // A range the purge would refuse is refused by the count too.
    let backwards = b.local(&[
        "dlq",
        "purge",
        "--all-matching",
        "--since",
        "2026-01-02T00:00:00Z",
        "--until",
        "2026-01-01T00:00:00Z",
    ]);
    assert_eq!(backwards.code, 2, "{backwards:#?}");
    assert!(
        backwards.stderr.contains("must be after since"),
        "{backwards:#?}"
    );
}
