//! The queue commands against a temporary SQLite file: enqueue, tasks,
//! queues, keys status and the dead-letter queue.

use std::collections::BTreeMap;

use serde_json::Value;
use signet_runtime::MessageSpec;
use signet_sign::TaskEnvelope;
use signet_sqlite::{SqliteConfig, SqliteStore};
use signet_store::{
    DeadReason, Fingerprint, IdempotencyScope, MessageId, NewTask, Store, MESSAGE_QUEUE,
    MESSAGE_TASK_NAME,
};

use crate::{signet, signet_env, Run};

/// A temporary database and the signing environment of one test.
struct Fixture {
    _dir: tempfile::TempDir,
    url: String,
    env: Vec<(String, String)>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("signet.db").display());
        let keys = signet(&["keys", "generate", "--id", "k1"], b"");
        let env = keys
            .ok()
            .lines()
            .map(|l| {
                let (k, v) = l.split_once('=').expect("NAME=value");
                (k.to_owned(), v.to_owned())
            })
            .collect();
        Self {
            _dir: dir,
            url,
            env,
        }
    }

    /// Runs a command with `--database-url` and the signing environment.
    fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &self.env)
    }

    /// Runs a command with `--database-url` and the signing environment `env`.
    fn run_with(&self, args: &[&str], env: &[(String, String)]) -> Run {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--database-url", &self.url]);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        signet_env(&all, b"", &env)
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let run = self.run(&all);
        serde_json::from_str(run.ok()).unwrap_or_else(|e| panic!("not JSON ({e}): {run:#?}"))
    }

    fn enqueue(&self, queue: &str, name: &str, args: &str, extra: &[&str]) -> Value {
        let mut all = vec!["enqueue", "--queue", queue, "--task", name, "--args", args];
        all.extend(extra);
        self.json(&all)
    }

    /// Stores a message created at `created_at_ms` through the library, as
    /// `POST /v1/messages` would (unsigned: nothing here delivers it);
    /// returns its id.
    fn store_message(&self, created_at_ms: i64) -> String {
        let url = self.url.clone();
        let spec = MessageSpec::post("https://hooks.example.com/in", Some("hi".into()));
        let task = NewTask {
            envelope: TaskEnvelope {
                id: MessageId::generate().to_string(),
                queue: MESSAGE_QUEUE.to_owned(),
                name: MESSAGE_TASK_NAME.to_owned(),
                args: serde_json::to_vec(&spec).expect("message spec"),
                headers: BTreeMap::new(),
                created_at_ms,
                not_before_ms: None,
                expires_at_ms: None,
                max_attempts: 3,
                callback_url: None,
            },
            signature: None,
            priority: 0,
            idempotency_key: None,
            idempotency_scope: IdempotencyScope::Local,
            fingerprint: Fingerprint::new(),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let store = SqliteStore::open(&url, SqliteConfig::default()).expect("open store");
            let id = store
                .enqueue(task, created_at_ms)
                .await
                .expect("store message")
                .task
                .id()
                .to_owned();
            store.close().await.expect("close store");
            id
        })
    }

    /// Pauses `queue` through the library, as the API does.
    fn pause(&self, queue: &str) {
        let url = self.url.clone();
        let queue = queue.to_owned();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let store = SqliteStore::open(&url, SqliteConfig::default()).expect("open store");
            store
                .pause_queue(&queue, "cli-test", None, now_ms())
                .await
                .expect("pause queue");
            store.close().await.expect("close store");
        });
    }

    /// Dead-letters a task through the library, as a worker would.
    fn kill(&self, id: &str, reason: DeadReason, detail: &str) {
        let url = self.url.clone();
        let id = id.to_owned();
        let detail = detail.to_owned();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let store = SqliteStore::open(&url, SqliteConfig::default()).expect("open store");
            store
                .kill(&id, reason, &detail, now_ms())
                .await
                .expect("kill task");
            store.close().await.expect("close store");
        });
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn enqueue_list_show_and_count() {
    let f = Fixture::new();
    let a = f.enqueue("mail", "email.send", r#"{"to": "a@example.com"}"#, &[]);
    assert_eq!(a["signature"]["key_id"], "k1", "{a}");
    assert_eq!(a["state"], "available", "{a}");
    let id = a["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("task_"), "{id}");

    // Human output: the id alone on stdout.
    let plain = f.run(&[
        "enqueue",
        "--queue",
        "mail",
        "--task",
        "email.send",
        "--args",
        "{}",
    ]);
    assert!(plain.ok().trim().starts_with("task_"), "{plain:#?}");

    // Delayed, with options.
    let later = f.enqueue(
        "reports",
        "report.build",
        "[1, 2]",
        &[
            "--delay",
            "1h",
            "--max-attempts",
            "3",
            "--priority",
            "-2",
            "--header",
            "tenant=acme",
        ],
    );
    assert_eq!(later["state"], "scheduled", "{later}");

    // Idempotency: the second enqueue returns the first task.
    let first = f.enqueue(
        "mail",
        "email.send",
        "{}",
        &["--idempotency-key", "welcome-1"],
    );
    let again = f.enqueue(
        "mail",
        "email.send",
        "{}",
        &["--idempotency-key", "welcome-1"],
    );
    assert_eq!(first["id"], again["id"]);
    let repeat = f.run(&[
        "enqueue",
        "--queue",
        "mail",
        "--task",
        "email.send",
        "--idempotency-key",
        "welcome-1",
    ]);
    assert!(
        repeat.ok().contains(first["id"].as_str().unwrap())
            && repeat.stderr.contains("already enqueued"),
        "{repeat:#?}"
    );
    // The same key with other args: refused with the server's words, non-zero.
    let conflict = f.run(&[
        "enqueue",
        "--queue",
        "mail",
        "--task",
        "email.send",
        "--args",
        "{\"to\":\"b@example.com\"}",
        "--idempotency-key",
        "welcome-1",
    ]);
    assert_ne!(conflict.code, 0, "{conflict:#?}");
    assert!(
        conflict.stderr.contains(
            "Idempotency-Key \"welcome-1\" was first used with a different request (args differs); use a new key for a new request"
        ),
        "{conflict:#?}"
    );

    // tasks ls, human and JSON, with filters.
    let ls = f.run(&["tasks", "ls"]);
    assert!(
        ls.ok().contains(&id) && ls.stdout.contains("email.send"),
        "{ls:#?}"
    );
    assert!(
        ls.stdout.lines().next().unwrap().starts_with("ID"),
        "{ls:#?}"
    );
    let all = f.json(&["tasks", "ls"]);
    assert_eq!(all["items"].as_array().unwrap().len(), 4, "{all}");
    let mail = f.json(&["tasks", "ls", "--queue", "mail", "--state", "available"]);
    assert_eq!(mail["items"].as_array().unwrap().len(), 3, "{mail}");
    let scheduled = f.json(&["tasks", "ls", "--state", "scheduled"]);
    assert_eq!(scheduled["items"][0]["id"], later["id"], "{scheduled}");
    // Paging: a cursor continues where the page ended.
    let page = f.json(&["tasks", "ls", "--limit", "3"]);
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a next cursor")
        .to_owned();
    let rest = f.json(&["tasks", "ls", "--limit", "3", "--cursor", &cursor]);
    assert_eq!(rest["items"].as_array().unwrap().len(), 1, "{rest}");
    let bad_state = f.run(&["tasks", "ls", "--state", "sleeping"]);
    assert_eq!(bad_state.code, 2, "{bad_state:#?}");

    // tasks show.
    let show = f.run(&["tasks", "show", &id]);
    assert!(
        show.ok().contains("email.send") && show.stdout.contains("k1"),
        "{show:#?}"
    );
    let shown = f.json(&["tasks", "show", &id]);
    assert_eq!(shown["args"]["to"], "a@example.com", "{shown}");
    assert_eq!(shown["signature"]["alg"], "hmac-sha256", "{shown}");
    let detail = f.json(&["tasks", "show", later["id"].as_str().unwrap()]);
    assert_eq!(detail["max_attempts"], 3);
    assert_eq!(detail["priority"], -2);
    assert_eq!(detail["headers"]["tenant"], "acme");
    let missing = f.run(&["tasks", "show", "task_doesnotexist"]);
    assert_eq!(missing.code, 1, "{missing:#?}");
    assert!(missing.stderr.contains("not found"), "{missing:#?}");

    // queues.
    let queues = f.run(&["queues"]);
    assert!(
        queues.ok().contains("mail") && queues.stdout.contains("reports"),
        "{queues:#?}"
    );
    let counts = f.json(&["queues"]);
    let mail = counts["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue"] == "mail")
        .expect("mail queue");
    assert_eq!(mail["counts"]["available"], 3, "{counts}");
    assert_eq!(mail["total"], 3, "{counts}");
    assert_eq!(mail["paused"], false, "{counts}");
    assert_eq!(mail["paused_at"], Value::Null, "{counts}");

    // A paused queue is marked, with the time it was paused; a queue
    // paused before it holds a task is listed too.
    f.pause("mail");
    f.pause("idle");
    let paused = f.run(&["queues"]);
    let line = |name: &str| {
        paused
            .stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line: {paused:#?}"))
            .to_owned()
    };
    assert!(
        paused.ok().lines().next().unwrap().contains("PAUSED"),
        "{paused:#?}"
    );
    assert!(line("mail").contains("since "), "{paused:#?}");
    assert!(line("idle").contains("since "), "{paused:#?}");
    assert!(!line("reports").contains("since "), "{paused:#?}");
    let counts = f.json(&["queues"]);
    let mail = counts["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue"] == "mail")
        .expect("mail queue");
    assert_eq!(mail["paused"], true, "{counts}");
    assert!(mail["paused_at"].is_string(), "{counts}");
    assert_eq!(mail["paused_by"], "cli-test", "{counts}");

    // keys status: every pending task was signed with k1.
    let status = f.json(&["keys", "status"])["keys"].clone();
    assert_eq!(status[0]["key_id"], "k1", "{status}");
    assert_eq!(status[0]["pending"], 4, "{status}");
    assert_eq!(status[0]["active"], true, "{status}");
    assert_eq!(status[0]["safe_to_retire"], false, "{status}");
    let human = f.run(&["keys", "status"]);
    assert!(
        human.ok().contains("k1") && human.stdout.contains("retire"),
        "{human:#?}"
    );
}

/// The ids of a `--json` page.
fn page_ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {page}"))
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A message stored before any task (messages and callbacks are rows of
/// `signet:messages`) does not bury the user's tasks: `tasks ls` and
/// `queues` show the tasks, newest first, and the message only when asked.
#[test]
fn tasks_ls_shows_the_users_tasks_newest_first_and_messages_when_asked() {
    let f = Fixture::new();
    let msg = f.store_message(now_ms() - 60_000);
    let quiet = f.run(&["queues"]);
    assert!(
        quiet.ok().contains("signet queues --all") && !quiet.stdout.contains(MESSAGE_QUEUE),
        "{quiet:#?}"
    );
    let first = f.enqueue("mail", "email.send", "{}", &[]);
    let second = f.enqueue("reports", "report.build", "{}", &[]);
    let tasks = [&second, &first].map(|t| t["id"].as_str().unwrap().to_owned());

    let ls = f.run(&["tasks", "ls"]);
    let rows: Vec<&str> = ls.ok().lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{ls:#?}");
    assert!(rows[0].starts_with(&tasks[0]), "newest first: {ls:#?}");
    assert!(!ls.stdout.contains("msg_"), "{ls:#?}");
    assert_eq!(page_ids(&f.json(&["tasks", "ls"])), tasks);

    let all = f.json(&["tasks", "ls", "--all"]);
    assert_eq!(
        page_ids(&all),
        [tasks[0].as_str(), &tasks[1], &msg],
        "{all}"
    );
    let own = f.json(&["tasks", "ls", "--queue", MESSAGE_QUEUE]);
    assert_eq!(page_ids(&own), [msg.as_str()], "{own}");
    let both = f.run(&["tasks", "ls", "--all", "--queue", "mail"]);
    assert_eq!(both.code, 2, "{both:#?}");

    let names = |v: &Value| -> Vec<String> {
        v["queues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["queue"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&f.json(&["queues"])), ["mail", "reports"]);
    assert_eq!(
        names(&f.json(&["queues", "--all"])),
        ["mail", "reports", MESSAGE_QUEUE]
    );
    let own = f.json(&["queues", "--queue", MESSAGE_QUEUE]);
    assert_eq!(names(&own), [MESSAGE_QUEUE]);
    assert_eq!(own["queues"][0]["counts"]["available"], 1, "{own}");
}

#[test]
fn enqueue_refuses_bad_input_with_exit_2() {
    let f = Fixture::new();
    let bad = f.run(&[
        "enqueue",
        "--queue",
        "q",
        "--task",
        "t",
        "--args",
        "{\"a\": 1,,}",
    ]);
    assert_eq!(bad.code, 2, "{bad:#?}");
    assert!(bad.stderr.contains("line 1, column 9"), "{bad:#?}");
    let bad = f.run(&["enqueue", "--queue", "bad queue", "--task", "t"]);
    assert_eq!(bad.code, 2, "{bad:#?}");
    assert!(bad.stderr.contains("queue"), "{bad:#?}");
    let bad = f.run(&["enqueue", "--task", "t", "--delay", "soon"]);
    assert_eq!(bad.code, 2, "{bad:#?}");
    // A broken signing configuration stops it, naming the variable only.
    let broken = signet_env(
        &["enqueue", "--task", "t", "--database-url", &f.url],
        b"",
        &[("SIGNET_SIGNING_KEYS", "k1:%%%secretish%%%")],
    );
    assert_eq!(broken.code, 2, "{broken:#?}");
    assert!(broken.stderr.contains("SIGNET_SIGNING_KEYS"), "{broken:#?}");
    assert!(!broken.stderr.contains("secretish"), "{broken:#?}");
    // Nothing was enqueued by any of these.
    let all = f.json(&["tasks", "ls"]);
    assert!(all["items"].as_array().unwrap().is_empty(), "{all}");
}

#[test]
fn unknown_or_unreachable_store_urls_get_a_clear_error_without_the_password() {
    // Port 1 has no PostgreSQL: the error names the store, not the password.
    let pg = signet(
        &[
            "queues",
            "--database-url",
            "postgres://me:hunter2@127.0.0.1:1/signet?connect_timeout=2",
        ],
        b"",
    );
    assert_eq!(pg.code, 2, "{pg:#?}");
    assert!(pg.stderr.contains("cannot open the store"), "{pg:#?}");
    assert!(pg.stderr.contains("me:***@127.0.0.1:1"), "{pg:#?}");
    assert!(!pg.stderr.contains("hunter2"), "{pg:#?}");
    let junk = signet(
        &["queues", "--database-url", "mysql://localhost/signet"],
        b"",
    );
    assert_eq!(junk.code, 2, "{junk:#?}");
    assert!(junk.stderr.contains("sqlite://"), "{junk:#?}");
}

#[test]
fn dead_letters_list_show_replay_and_purge() {
    let f = Fixture::new();
    let a = f.enqueue("mail", "email.send", "{}", &[])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = f.enqueue("mail", "email.send", "{}", &[])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let c = f.enqueue("billing", "invoice.pay", "{}", &[])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let empty = f.run(&["dlq", "ls"]);
    assert!(empty.ok().contains("no dead letters"), "{empty:#?}");
    f.kill(
        &a,
        DeadReason::SignatureInvalid,
        "mismatch: args were changed",
    );
    f.kill(&b, DeadReason::MaxAttempts, "smtp timeout");
    f.kill(&c, DeadReason::MaxAttempts, "card declined");

    let ls = f.run(&["dlq", "ls"]);
    for id in [&a, &b, &c] {
        assert!(ls.ok().contains(id.as_str()), "{ls:#?}");
    }
    assert!(ls.stdout.contains("signature-invalid"), "{ls:#?}");
    let sig = f.json(&["dlq", "ls", "--reason", "signature-invalid"]);
    assert_eq!(sig["items"].as_array().unwrap().len(), 1, "{sig}");
    assert_eq!(
        sig["items"][0]["dead_detail"],
        "mismatch: args were changed"
    );
    let mail = f.json(&["dlq", "ls", "--queue", "mail"]);
    assert_eq!(mail["items"].as_array().unwrap().len(), 2, "{mail}");
    let future = f.json(&["dlq", "ls", "--since", "2999-01-01T00:00:00Z"]);
    assert!(future["items"].as_array().unwrap().is_empty(), "{future}");
    let past = f.json(&["dlq", "ls", "--until", "1000000000000"]);
    assert!(past["items"].as_array().unwrap().is_empty(), "{past}");
    let bad = f.run(&["dlq", "ls", "--reason", "bored"]);
    assert_eq!(bad.code, 2, "{bad:#?}");

    let show = f.run(&["dlq", "show", &a]);
    assert!(show.ok().contains("signature-invalid"), "{show:#?}");
    assert!(show.stdout.contains("args were changed"), "{show:#?}");
    let shown = f.json(&["dlq", "show", &b]);
    assert_eq!(shown["dead_reason"], "max-attempts");

    // Selection rules: exactly one of --id and --all-matching.
    let both = f.run(&["dlq", "replay", "--id", &a, "--all-matching"]);
    assert_eq!(both.code, 2, "{both:#?}");
    let neither = f.run(&["dlq", "replay"]);
    assert_eq!(neither.code, 2, "{neither:#?}");
    let loose = f.run(&["dlq", "replay", "--queue", "mail"]);
    assert_eq!(loose.code, 2, "{loose:#?}");
    assert!(loose.stderr.contains("--all-matching"), "{loose:#?}");

    // Replay one by id: it is available again, signature untouched.
    let before = f.json(&["tasks", "show", &a]);
    let replayed = f.json(&["dlq", "replay", "--id", &a]);
    assert_eq!(replayed["ids"], serde_json::json!([a]), "{replayed}");
    let after = f.json(&["tasks", "show", &a]);
    assert_eq!(after["state"], "available", "{after}");
    assert_eq!(after["signature"], before["signature"]);
    let not_dead = f.run(&["dlq", "show", &a]);
    assert_eq!(not_dead.code, 1, "{not_dead:#?}");

    // Replay by filter.
    let by_filter = f.json(&["dlq", "replay", "--all-matching", "--queue", "billing"]);
    assert_eq!(by_filter["ids"], serde_json::json!([c]), "{by_filter}");

    // Purge needs --yes without a terminal, and then deletes.
    let refused = f.run(&["dlq", "purge", "--id", &b]);
    assert_eq!(refused.code, 2, "{refused:#?}");
    assert!(refused.stderr.contains("--yes"), "{refused:#?}");
    assert_eq!(f.json(&["dlq", "show", &b])["state"], "dead");
    let purged = f.run(&["dlq", "purge", "--id", &b, "--yes"]);
    assert!(purged.ok().contains("purged 1"), "{purged:#?}");
    let gone = f.run(&["tasks", "show", &b]);
    assert_eq!(gone.code, 1, "{gone:#?}");
    // Nothing left to purge: not an error.
    let none = f.json(&["dlq", "purge", "--all-matching", "--yes"]);
    assert_eq!(none["ids"], serde_json::json!([]), "{none}");
}

#[test]
fn a_task_whose_key_left_the_ring_is_re_signed_and_its_history_says_so() {
    let f = Fixture::new();
    let a = f.enqueue("mail", "email.send", "{}", &[])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = f.enqueue("mail", "email.send", "{}", &[])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    f.kill(&a, DeadReason::SignatureInvalid, "unknown-key: k1 is gone");
    f.kill(&b, DeadReason::MaxAttempts, "smtp timeout");
    // The ring now holds only k2: k1 was removed.
    let rotated: Vec<(String, String)> = signet(&["keys", "generate", "--id", "k2"], b"")
        .ok()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('=').expect("NAME=value");
            (k.to_owned(), v.to_owned())
        })
        .collect();

    // A plain replay warns that it will die again and names --resign.
    let plain = f.run_with(&["dlq", "replay", "--id", &a], &rotated);
    assert!(plain.ok().contains("replayed 1"), "{plain:#?}");
    assert!(
        plain.stderr.contains("\"k1\"") && plain.stderr.contains("--resign"),
        "{plain:#?}"
    );
    f.kill(&a, DeadReason::SignatureInvalid, "unknown-key: k1 is gone");

    // --resign re-signs the one whose key left, refuses the other.
    let run = f.run_with(
        &[
            "dlq", "replay", "--id", &a, "--id", &b, "--resign", "--json",
        ],
        &rotated,
    );
    let out: Value = serde_json::from_str(run.ok()).expect("JSON");
    assert_eq!(out["ids"], serde_json::json!([a]), "{out}");
    assert_eq!(out["resigned"][0]["from_key_id"], "k1", "{out}");
    assert_eq!(out["resigned"][0]["to_key_id"], "k2", "{out}");
    assert_eq!(out["refused"][0]["id"], b.as_str(), "{out}");
    assert!(out["refused"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("max-attempts"));

    // The history shows it, for people and as JSON.
    let shown = f.run_with(&["tasks", "show", &a], &rotated);
    assert!(shown.ok().contains("re-signed"), "{shown:#?}");
    assert!(shown.stdout.contains("k1 -> k2"), "{shown:#?}");
    assert!(shown.stdout.contains("cli ("), "{shown:#?}");
    let json = f.json(&["tasks", "show", &a]);
    assert_eq!(json["signature"]["key_id"], "k2");
    let kinds: Vec<&str> = json["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "dead-lettered",
            "replayed",
            "dead-lettered",
            "resigned",
            "replayed"
        ]
    );
    let dead = f.run(&["dlq", "show", &b]);
    assert!(
        dead.ok().contains("dead-lettered max-attempts"),
        "{dead:#?}"
    );

    // Asked to re-sign only what it must refuse, it did nothing: non-zero,
    // with --json as without.
    for extra in [&[][..], &["--json"][..]] {
        let mut args = vec!["dlq", "replay", "--id", &b, "--resign"];
        args.extend_from_slice(extra);
        let run = f.run_with(&args, &rotated);
        assert_ne!(run.code, 0, "{extra:?}: {run:#?}");
        assert!(run.stdout.contains(b.as_str()), "{extra:?}: {run:#?}");
    }
}

#[test]
fn bench_queue_ends_with_one_json_line() {
    for algorithm in ["hmac-sha256", "ed25519"] {
        let run = signet(
            &[
                "bench",
                "queue",
                "--tasks",
                "300",
                "--algorithm",
                algorithm,
                "--batch",
                "50",
            ],
            b"",
        );
        let out = run.ok();
        assert!(out.contains("end to end"), "{run:#?}");
        let figures = bench_figures(
            out,
            &["enqueue_per_s", "e2e_per_s", "p50_ms", "p99_ms"],
            &[],
        );
        assert_eq!(figures["tasks"], 300, "{figures}");
        assert_eq!(figures["algorithm"], algorithm, "{figures}");
    }
    // Paced: the enqueue rate follows --rate.
    let paced = signet(&["bench", "queue", "--tasks", "200", "--rate", "1000"], b"");
    let last: Value = serde_json::from_str(paced.ok().lines().last().unwrap()).unwrap();
    let rate = last["enqueue_per_s"].as_f64().unwrap();
    assert!(rate <= 1100.0, "paced enqueue ran at {rate}/s: {last}");
    let bad = signet(&["bench", "queue", "--tasks", "0"], b"");
    assert_eq!(bad.code, 2, "{bad:#?}");
}

/// The last line of a bench's output, one JSON object, in which every
/// figure named in `nonnegative` is at least zero, every one named in
/// `positive` is above zero, and `p99_ms` is at least `p50_ms`.
fn bench_figures(out: &str, nonnegative: &[&str], positive: &[&str]) -> Value {
    let last = out.lines().last().expect("output");
    let figures: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {last}"));
    for key in nonnegative {
        assert!(
            figures[key].as_f64().is_some_and(|v| v >= 0.0),
            "{key}: {figures}"
        );
    }
    for key in positive {
        assert!(
            figures[key].as_f64().is_some_and(|v| v > 0.0),
            "{key}: {figures}"
        );
    }
    assert!(
        figures["p99_ms"].as_f64() >= figures["p50_ms"].as_f64(),
        "{figures}"
    );
    figures
}

#[test]
fn bench_api_ends_with_one_json_line() {
    let run = signet(
        &["bench", "api", "--duration", "1s", "--connections", "2"],
        b"",
    );
    let out = run.ok();
    assert!(out.contains("against an in-process server"), "{run:#?}");
    assert!(out.contains("rate limits off"), "{run:#?}");
    let figures = bench_figures(out, &[], &["requests_per_s", "p50_ms", "p99_ms"]);
    assert_eq!(figures["errors"], 0, "{figures}");
    assert_eq!(figures["rate_limited"], 0, "{figures}");
    // The same with serve's default limits, said as such.
    let limited = signet(
        &[
            "bench",
            "api",
            "--duration",
            "1s",
            "--connections",
            "2",
            "--default-limits",
        ],
        b"",
    );
    let out = limited.ok();
    assert!(
        out.contains("default rate limits: per key 20000/s"),
        "{limited:#?}"
    );
    let figures = bench_figures(out, &["rate_limited"], &["requests_per_s"]);
    assert_eq!(figures["errors"], 0, "{figures}");
    // Nothing listens on port 1: the run fails and says where it tried.
    let refused = signet(
        &[
            "bench",
            "api",
            "--duration",
            "1s",
            "--url",
            "http://127.0.0.1:1",
            "--api-key",
            "sk_unused",
        ],
        b"",
    );
    assert_eq!(refused.code, 2, "{refused:#?}");
    assert!(
        refused.stderr.contains("cannot connect to 127.0.0.1:1"),
        "{refused:#?}"
    );
}

#[test]
fn bench_work_runs_serve_and_each_worker_in_other_processes() {
    let run = signet(
        &[
            "bench",
            "work",
            "--tasks",
            "120",
            "--batch",
            "50",
            "--claimers",
            "2",
        ],
        b"",
    );
    let out = run.ok();
    assert!(out.contains("the pull protocol over HTTP"), "{run:#?}");
    assert!(out.contains("the runtime Worker on the store"), "{run:#?}");
    let last: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let runs = last["runs"].as_array().expect("runs");
    let workers: Vec<&str> = runs.iter().map(|r| r["worker"].as_str().unwrap()).collect();
    assert_eq!(workers, ["http", "store"], "{last}");
    for r in runs {
        assert_eq!(r["tasks"], 120, "{r}");
        assert_eq!(r["store"], "sqlite", "{r}");
        for key in ["enqueue_per_s", "end_to_end_per_s"] {
            assert!(r[key].as_f64().is_some_and(|v| v > 0.0), "{key}: {r}");
        }
        assert!(r["p99_ms"].as_f64() >= r["p50_ms"].as_f64(), "{r}");
    }
    let bad = signet(&["bench", "work", "--batch", "1001"], b"");
    assert_eq!(bad.code, 2, "{bad:#?}");
}

#[test]
fn bench_pickup_runs_a_worker_in_another_process_and_ends_with_one_json_line() {
    let run = signet(&["bench", "pickup", "--tasks", "10", "--rate", "50"], b"");
    let out = run.ok();
    assert!(out.contains("enqueue→start latency"), "{run:#?}");
    let figures = bench_figures(
        out,
        &["p50_ms", "p90_ms", "p99_ms", "max_ms", "enqueue_p50_ms"],
        &[],
    );
    assert_eq!(figures["tasks"], 10, "{figures}");
    assert_eq!(figures["store"], "sqlite", "{figures}");
    let bad = signet(&["bench", "pickup", "--rate", "0"], b"");
    assert_eq!(bad.code, 2, "{bad:#?}");
}

#[test]
fn bench_deliver_verifies_every_delivery_and_ends_with_one_json_line() {
    let run = signet(
        &[
            "bench",
            "deliver",
            "--messages",
            "200",
            "--concurrency",
            "8",
            "--batch",
            "7",
            "--warmup",
            "30",
        ],
        b"",
    );
    let out = run.ok();
    // The warm-up's messages are delivered but not counted.
    assert!(
        out.contains("warmed up with 30 delivered messages"),
        "{run:#?}"
    );
    assert!(out.contains("200 of 200 messages succeeded"), "{run:#?}");
    assert!(out.contains("7 message(s) per call"), "{run:#?}");
    let figures = bench_figures(out, &[], &["deliveries_per_s", "p50_ms", "p99_ms"]);
    assert_eq!(figures["verified"], 200, "{figures}");
    assert_eq!(figures["failed"], 0, "{figures}");
    // One message per call, as POST /v1/messages.
    let run = signet(
        &[
            "bench",
            "deliver",
            "--messages",
            "20",
            "--batch",
            "1",
            "--warmup",
            "0",
        ],
        b"",
    );
    let out = run.ok();
    assert!(!out.contains("warmed up"), "{run:#?}");
    assert!(out.contains("20 of 20 messages succeeded"), "{run:#?}");
    assert!(out.contains("1 message(s) per call"), "{run:#?}");
    let bad = signet(&["bench", "deliver", "--body-bytes", "3"], b"");
    assert_eq!(bad.code, 2, "{bad:#?}");
    assert!(bad.stderr.contains("--body-bytes"), "{bad:#?}");
    let bad = signet(&["bench", "deliver", "--batch", "1001"], b"");
    assert_eq!(bad.code, 2, "{bad:#?}");
    assert!(bad.stderr.contains("1 to 1000"), "{bad:#?}");
}

#[test]
fn keys_status_during_a_rotation() {
    let f = Fixture::new();
    let id = f.enqueue("mail", "email.send", "{}", &[])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let k1 = f
        .env
        .iter()
        .find(|(k, _)| k == "SIGNET_SIGNING_KEYS")
        .unwrap()
        .1
        .clone();
    let new = signet(&["keys", "generate", "--id", "k2"], b"");
    let k2 = new
        .ok()
        .lines()
        .find_map(|l| l.strip_prefix("SIGNET_SIGNING_KEYS="))
        .unwrap()
        .to_owned();
    let ring = format!("{k1},{k2}");
    let env = [
        ("SIGNET_SIGNING_KEYS", ring.as_str()),
        ("SIGNET_SIGNING_ACTIVE_KEY", "k2"),
    ];
    let status = |expect_k1_pending: u64| {
        let run = signet_env(
            &["keys", "status", "--json", "--database-url", &f.url],
            b"",
            &env,
        );
        let rows: Value = serde_json::from_str::<Value>(run.ok()).unwrap()["keys"].clone();
        let row = |id: &str| {
            rows.as_array()
                .unwrap()
                .iter()
                .find(|r| r["key_id"] == id)
                .cloned()
                .unwrap_or_else(|| panic!("{id} missing: {rows}"))
        };
        let (old, active) = (row("k1"), row("k2"));
        assert_eq!(old["pending"], expect_k1_pending, "{rows}");
        assert_eq!(old["active"], false, "{rows}");
        assert_eq!(old["safe_to_retire"], expect_k1_pending == 0, "{rows}");
        assert_eq!(active["pending"], 0, "{rows}");
        assert_eq!(active["active"], true, "{rows}");
        assert_eq!(active["safe_to_retire"], false, "{rows}");
    };
    // The old key still has pending work: keep it.
    status(1);
    let human = signet_env(&["keys", "status", "--database-url", &f.url], b"", &env);
    assert!(
        human.ok().contains("keep: pending work is signed with it"),
        "{human:#?}"
    );
    // Once its task is gone, it is safe to retire.
    f.kill(&id, DeadReason::MaxAttempts, "gave up");
    f.run(&["dlq", "purge", "--id", &id, "--yes"]).ok();
    status(0);
    let human = signet_env(&["keys", "status", "--database-url", &f.url], b"", &env);
    assert!(human.ok().contains("safe to retire"), "{human:#?}");
}

/// Item 7 of "The first hour": times print with three fractional digits,
/// `--since`/`--until` read RFC 3339 or unix milliseconds as the API does,
/// and durations take the units people type.
#[test]
fn times_and_durations_read_and_print_one_way() {
    let f = Fixture::new();
    let id = f.enqueue("mail", "email.send", "{}", &[])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Dead at a whole second: 2023-11-14T22:13:20Z.
    let dead_at_ms: i64 = 1_700_000_000_000;
    let url = f.url.clone();
    let killed = id.clone();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let store = SqliteStore::open(&url, SqliteConfig::default()).expect("open store");
            store
                .kill(&killed, DeadReason::MaxAttempts, "gave up", dead_at_ms)
                .await
                .expect("kill task");
            store.close().await.expect("close store");
        });

    let ls = f.run(&["dlq", "ls"]);
    assert!(ls.ok().contains("2023-11-14T22:13:20.000Z"), "{ls:#?}");
    let show = f.run(&["dlq", "show", &id]);
    assert!(show.ok().contains("2023-11-14T22:13:20.000Z"), "{show:#?}");
    assert!(!show.stdout.contains(":20Z"), "{show:#?}");

    let count = |args: &[&str]| {
        let mut all = vec!["dlq", "ls"];
        all.extend(args);
        f.json(&all)["items"].as_array().unwrap().len()
    };
    // A bare number is unix milliseconds, as in `GET /v1/dead-letters?since=`.
    assert_eq!(count(&["--since", "1700000000000"]), 1);
    assert_eq!(count(&["--since", "1700000000001"]), 0);
    assert_eq!(count(&["--until", "1700000000000"]), 0);
    assert_eq!(count(&["--until", "1700000000001"]), 1);
    assert_eq!(count(&["--since", "2023-11-14T22:13:20Z"]), 1);
    assert_eq!(count(&["--since", "2023-11-14T23:13:20.001+01:00"]), 0);
    let bad = f.run(&["dlq", "ls", "--since", "yesterday"]);
    assert_eq!(bad.code, 2, "{bad:#?}");
    assert!(bad.stderr.contains("unix milliseconds"), "{bad:#?}");
    let help = f.run(&["dlq", "ls", "--help"]);
    assert!(help.ok().contains("unix milliseconds"), "{help:#?}");

    // Durations as people type them.
    for (delay, ms) in [
        ("5min", 300_000),
        ("2h30m", 9_000_000),
        ("1 hour", 3_600_000),
    ] {
        let task = f.enqueue("later", "email.send", "{}", &["--delay", delay]);
        let id = task["id"].as_str().unwrap();
        let shown = f.json(&["tasks", "show", id]);
        let at = |key: &str| signet_runtime::parse_time_ms(shown[key].as_str().unwrap()).unwrap();
        assert_eq!(at("run_at") - at("created_at"), ms, "{delay}: {shown}");
    }
    let bad = f.run(&["enqueue", "--task", "t", "--delay", "5 parsecs"]);
    assert_eq!(bad.code, 2, "{bad:#?}");
    assert!(bad.stderr.contains("write a duration like"), "{bad:#?}");
}
