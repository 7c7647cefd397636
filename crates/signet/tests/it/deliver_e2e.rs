//! End to end through the real binary and real sockets: `signet serve`
//! delivers signed messages (published one by one and in a batch) to
//! three receivers — our own `signet receive`, a
//! Python receiver using the `standardwebhooks` package from PyPI and a Node
//! receiver using the `standardwebhooks` package from npm — and every
//! delivery is verified by the receiver, each id exactly once. Target secrets
//! never show up in API reads or in the database file. A queue bound to
//! `signet receive` is pushed by `signet serve`: each task verified by the
//! receiver, its answer the task's outcome.
//!
//! The Python and Node receivers live in `tests/receivers/` (`.ci/run`
//! installs their packages). On a machine without them the test skips with a
//! notice; in CI (`CI=true`) it fails instead.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::support::{json, must_not_skip, only_env, LineProcess, Server};

const HMAC_KEY: &str = "k1:ZTJlLXRlc3Qta2V5LXdpdGgtMzItYnl0ZXMtb2YtZW50cm9weQ==";
/// base64 of 32 bytes, the test master key.
const MASTER_KEY: &str = "c2lnbmV0LWUyZS1tYXN0ZXIta2V5LTMyLWJ5dGVzISE=";
const MESSAGES_PER_RECEIVER: usize = 10;
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(20);

/// `signet serve` on a new SQLite file `db`: signing with the test key,
/// sealing target secrets with the test master key, loopback targets
/// allowed.
pub(super) fn delivering_server(db: &Path) -> Server {
    let url = format!("sqlite://{}", db.display());
    let (server, key) = Server::start(
        &url,
        &[
            ("SIGNET_SIGNING_KEYS", HMAC_KEY),
            ("SIGNET_SIGNING_ACTIVE_KEY", "k1"),
            ("SIGNET_MASTER_KEY", MASTER_KEY),
            ("SIGNET_ALLOWED_TARGET_CIDRS", "127.0.0.0/8"),
        ],
        &[],
    );
    assert!(key.is_some(), "a new store prints an admin key");
    server
}

fn receivers_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/receivers"))
}

/// Skips (returns `None`) or, in CI, fails when a receiver cannot run.
fn unavailable(what: &str, why: &str) -> Option<LineProcess> {
    assert!(
        !must_not_skip(),
        "{what} receiver is required in CI but cannot run: {why}"
    );
    eprintln!("SKIPPED {what} receiver: {why}");
    None
}

fn python_receiver(secret: &str) -> Option<LineProcess> {
    let probe = Command::new("python3")
        .args(["-c", "import standardwebhooks"])
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(_) => {
            return unavailable(
                "Python",
                "the standardwebhooks package is missing (pip install -r crates/signet/tests/receivers/requirements.txt)",
            )
        }
        Err(e) => return unavailable("Python", &format!("python3 cannot run: {e}")),
    }
    let mut cmd = Command::new("python3");
    cmd.arg(receivers_dir().join("python_receiver.py"))
        .arg("0")
        .env("SIGNET_RECEIVER_SECRET", secret);
    Some(LineProcess::spawn(cmd).expect("start the Python receiver"))
}

fn node_receiver(secret: &str) -> Option<LineProcess> {
    if !receivers_dir()
        .join("node_modules/standardwebhooks")
        .is_dir()
    {
        return unavailable(
            "Node",
            "the standardwebhooks package is missing (cd crates/signet/tests/receivers && npm ci)",
        );
    }
    let mut cmd = Command::new("node");
    cmd.arg(receivers_dir().join("node_receiver.js"))
        .arg("0")
        .env("SIGNET_RECEIVER_SECRET", secret);
    match LineProcess::spawn(cmd) {
        Ok(p) => Some(p),
        Err(e) => unavailable("Node", &format!("node cannot run: {e}")),
    }
}

fn signet_receiver(secret: &str) -> LineProcess {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_signet"));
    cmd.args(["receive", "--listen", "127.0.0.1:0", "--secret", secret]);
    only_env(&mut cmd, &[]);
    LineProcess::spawn(cmd).expect("start signet receive")
}

/// The port in the first line that names one (`listening 1234`, or
/// `… 127.0.0.1:1234 …`).
fn port_of(process: &LineProcess, what: &str) -> u16 {
    process.wait_for(what, |line| {
        if let Some(rest) = line.strip_prefix("listening ") {
            if let Ok(port) = rest.trim().parse() {
                return Some(port);
            }
        }
        let (_, rest) = line.split_once("127.0.0.1:")?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })
}

/// What a receiver said about one delivery.
#[derive(Debug, Default)]
struct Seen {
    verified: usize,
    rejected: Vec<String>,
}

/// Reads JSON lines from a third-party receiver.
fn read_json_lines(process: &LineProcess, seen: &mut BTreeMap<String, Seen>) {
    for line in process.drain() {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
            // Not one JSON object per line: keep it, so a test failure shows it.
            if !line.starts_with("listening ") {
                seen.entry("?".into()).or_default().rejected.push(line);
            }
            continue;
        };
        let id = event["id"].as_str().unwrap_or("?").to_owned();
        let entry = seen.entry(id).or_default();
        if event["verified"] == true {
            entry.verified += 1;
        } else {
            entry.rejected.push(line.clone());
        }
    }
}

/// Reads `signet receive`'s human lines: a delivery line names the message
/// id; a rejection line says so.
fn read_signet_lines(process: &LineProcess, seen: &mut BTreeMap<String, Seen>) {
    for line in process.drain() {
        let lower = line.to_ascii_lowercase();
        let id = line
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .find(|w| w.starts_with("msg_"))
            .map(str::to_owned);
        if lower.starts_with("rejected") {
            seen.entry(id.unwrap_or_else(|| "?".into()))
                .or_default()
                .rejected
                .push(line.clone());
        } else if lower.starts_with("accepted") {
            if let Some(id) = id {
                seen.entry(id).or_default().verified += 1;
            }
        }
    }
}

struct Receiver {
    name: &'static str,
    process: LineProcess,
    port: u16,
    secret: String,
    json_lines: bool,
    seen: BTreeMap<String, Seen>,
    sent: BTreeSet<String>,
}

impl Receiver {
    fn poll(&mut self) {
        if self.json_lines {
            read_json_lines(&self.process, &mut self.seen);
        } else {
            read_signet_lines(&self.process, &mut self.seen);
        }
    }
}

#[test]
fn messages_reach_three_receivers_verified_by_libraries_we_did_not_write() {
    let secrets = [
        "whsec_c2lnbmV0LWUyZS1zaWduZXQtcmVjZWl2ZXItc2VjcmV0",
        "whsec_c2lnbmV0LWUyZS1weXRob24tcmVjZWl2ZXItc2VjcmV0",
        "whsec_c2lnbmV0LWUyZS1ub2RlLXJlY2VpdmVyLXNlY3JldCE=",
    ];
    let mut receivers = Vec::new();
    let process = signet_receiver(secrets[0]);
    let port = port_of(&process, "signet receive's address");
    receivers.push(Receiver {
        name: "signet",
        process,
        port,
        secret: secrets[0].into(),
        json_lines: false,
        seen: BTreeMap::new(),
        sent: BTreeSet::new(),
    });
    for (name, secret, start) in [
        (
            "python",
            secrets[1],
            python_receiver as fn(&str) -> Option<LineProcess>,
        ),
        ("node", secrets[2], node_receiver),
    ] {
        if let Some(process) = start(secret) {
            let port = port_of(&process, name);
            receivers.push(Receiver {
                name,
                process,
                port,
                secret: secret.into(),
                json_lines: true,
                seen: BTreeMap::new(),
                sent: BTreeSet::new(),
            });
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("deliver.db");
    let server = delivering_server(&db);

    // One target per receiver, with the receiver's secret.
    let mut target_ids = Vec::new();
    for r in &receivers {
        let body = serde_json::json!({
            "name": format!("e2e-{}", r.name),
            "url_prefix": format!("http://127.0.0.1:{}/", r.port),
            "secret": r.secret,
        })
        .to_string();
        let (status, text) = server.http("POST", "/v1/targets", Some(&body));
        assert_eq!(status, 201, "create target {}: {text}", r.name);
        let id = json(&text)["id"].as_str().unwrap().to_owned();
        let (status, text) = server.http("GET", &format!("/v1/targets/{id}"), None);
        assert_eq!(status, 200, "{text}");
        assert!(
            !text.contains(&r.secret) && !text.contains(&r.secret["whsec_".len()..]),
            "a read shows the target secret: {text}"
        );
        target_ids.push(id);
    }

    // Messages to every receiver, JSON and text bodies: the first half one
    // request each, the rest in one `POST /v1/messages/batch`.
    let mut all = Vec::new();
    for (r, target) in receivers.iter_mut().zip(&target_ids) {
        let mut batch = Vec::new();
        for n in 0..MESSAGES_PER_RECEIVER {
            let body = if n % 2 == 0 {
                serde_json::json!({ "n": n, "receiver": r.name, "text": "héllo, signed world" })
            } else {
                serde_json::Value::String(format!("plain text body {n} for {}", r.name))
            };
            let request = serde_json::json!({
                "url": format!("http://127.0.0.1:{}/hooks/e2e", r.port),
                "target": target,
                "body": body,
            });
            if n >= MESSAGES_PER_RECEIVER / 2 {
                batch.push(request);
                continue;
            }
            let (status, text) = server.http("POST", "/v1/messages", Some(&request.to_string()));
            assert_eq!(status, 201, "publish to {}: {text}", r.name);
            let id = json(&text)["id"].as_str().unwrap().to_owned();
            assert!(id.starts_with("msg_"), "{text}");
            r.sent.insert(id.clone());
            all.push(id);
        }
        let request = serde_json::json!({ "messages": batch }).to_string();
        let (status, text) = server.http("POST", "/v1/messages/batch", Some(&request));
        assert_eq!(status, 201, "publish a batch to {}: {text}", r.name);
        let published = json(&text)["messages"].as_array().unwrap().clone();
        assert_eq!(published.len(), batch.len(), "{text}");
        for m in published {
            let id = m["id"].as_str().unwrap().to_owned();
            assert!(id.starts_with("msg_"), "{text}");
            assert_eq!(m["existing"], false, "{text}");
            r.sent.insert(id.clone());
            all.push(id);
        }
    }

    // Every message succeeds.
    let started = Instant::now();
    for id in &all {
        loop {
            let (status, text) = server.http("GET", &format!("/v1/messages/{id}"), None);
            assert_eq!(status, 200, "{text}");
            let message = json(&text);
            match message["state"].as_str() {
                Some("succeeded") => break,
                Some("dead" | "cancelled") => panic!("message {id} ended: {text}"),
                _ => {}
            }
            if started.elapsed() > DELIVERY_TIMEOUT {
                for r in &mut receivers {
                    r.poll();
                    eprintln!("{} receiver saw {:?}", r.name, r.seen);
                }
                panic!("message {id} not delivered in time: {text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    // Each receiver verified each of its ids exactly once, rejected none.
    for r in &mut receivers {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            r.poll();
            let done = r.sent.iter().all(|id| r.seen.contains_key(id));
            if done || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for id in &r.sent {
            let seen = r
                .seen
                .get(id)
                .unwrap_or_else(|| panic!("{} never saw {id}: {:?}", r.name, r.seen));
            assert_eq!(seen.verified, 1, "{} verified {id} {seen:?}", r.name);
            assert!(
                seen.rejected.is_empty(),
                "{} rejected {id}: {seen:?}",
                r.name
            );
        }
        let foreign: Vec<_> = r.seen.keys().filter(|id| !r.sent.contains(*id)).collect();
        assert!(
            foreign.is_empty(),
            "{} saw unexpected ids {foreign:?}",
            r.name
        );
        eprintln!("{} receiver verified {} deliveries", r.name, r.sent.len());
    }

    // The database never holds a target secret in clear.
    drop(server);
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(file.unwrap().path()).unwrap();
        for secret in secrets {
            let raw = &secret["whsec_".len()..];
            let decoded = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, raw)
                .expect("test secrets are base64");
            assert!(
                !contains(&bytes, secret.as_bytes())
                    && !contains(&bytes, raw.as_bytes())
                    && !contains(&bytes, &decoded),
                "a database file holds a target secret in clear"
            );
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_wrong_or_missing_master_key_stops_serve_at_start_once_targets_exist() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("keys.db").display());
    let env = [
        ("SIGNET_SIGNING_KEYS", HMAC_KEY),
        ("SIGNET_MASTER_KEY", MASTER_KEY),
    ];
    {
        let (server, _) = Server::start(&url, &env, &[]);
        let (status, text) = server.http(
            "POST",
            "/v1/targets",
            Some(r#"{"name":"sealed","secret":"whsec_c2lnbmV0LWUyZS1zaWduZXQtcmVjZWl2ZXItc2VjcmV0"}"#),
        );
        assert_eq!(status, 201, "{text}");
    }
    let start = |master: Option<&str>| {
        let mut env = vec![("SIGNET_SIGNING_KEYS", HMAC_KEY)];
        if let Some(m) = master {
            env.push(("SIGNET_MASTER_KEY", m));
        }
        super::signet_env(
            &["serve", "--listen", "127.0.0.1:0", "--database-url", &url],
            b"",
            &env,
        )
    };
    // Another valid key: refused, naming the variable, never the keys.
    let other = "b3RoZXItbWFzdGVyLWtleS0zMi1ieXRlcy1sb25nISE=";
    let wrong = start(Some(other));
    assert_eq!(wrong.code, 2, "{wrong:#?}");
    assert!(wrong.stderr.contains("SIGNET_MASTER_KEY"), "{wrong:#?}");
    assert!(wrong.stderr.contains("not the key"), "{wrong:#?}");
    assert!(
        !wrong.stderr.contains(other) && !wrong.stderr.contains(MASTER_KEY),
        "{wrong:#?}"
    );
    assert!(!wrong.stdout.contains("listening on"), "{wrong:#?}");
    // No key at all: refused too.
    let missing = start(None);
    assert_eq!(missing.code, 2, "{missing:#?}");
    assert!(
        missing.stderr.contains("SIGNET_MASTER_KEY is not set"),
        "{missing:#?}"
    );
    // Not base64: refused before anything else.
    let junk = start(Some("not base64!"));
    assert_eq!(junk.code, 2, "{junk:#?}");
    assert!(junk.stderr.contains("SIGNET_MASTER_KEY"), "{junk:#?}");
    assert!(!junk.stderr.contains("not base64!"), "{junk:#?}");
}

#[test]
fn serve_pushes_a_bound_queue_to_a_verifying_receiver() {
    let secret = "whsec_c2lnbmV0LWUyZS1wdXNoLXJlY2VpdmVyLXNlY3JldCE=";
    let receiver = signet_receiver(secret);
    let port = port_of(&receiver, "signet receive's address");
    let dir = tempfile::tempdir().unwrap();
    let server = delivering_server(&dir.path().join("push.db"));
    let body = serde_json::json!({"name": "pushed", "secret": secret}).to_string();
    let (status, text) = server.http("POST", "/v1/targets", Some(&body));
    assert_eq!(status, 201, "{text}");
    let body = serde_json::json!({
        "url": format!("http://127.0.0.1:{port}/signet"),
        "target": "pushed",
    })
    .to_string();
    let (status, text) = server.http("PUT", "/v1/queues/reports/push", Some(&body));
    assert_eq!(status, 200, "{text}");

    let mut ids = BTreeSet::new();
    for n in 0..5 {
        let body =
            serde_json::json!({"queue": "reports", "task": "report.build", "args": {"n": n}})
                .to_string();
        let (status, text) = server.http("POST", "/v1/tasks", Some(&body));
        assert_eq!(status, 201, "{text}");
        ids.insert(json(&text)["id"].as_str().unwrap().to_owned());
    }
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    let mut accepted = BTreeSet::new();
    loop {
        for line in receiver.drain() {
            assert!(!line.starts_with("REJECTED"), "{line}");
            if line.starts_with("ACCEPTED") {
                if let Some(id) = ids.iter().find(|id| line.contains(id.as_str())) {
                    accepted.insert(id.clone());
                }
            }
        }
        let done = ids.iter().all(|id| {
            let (_, text) = server.http("GET", &format!("/v1/tasks/{id}"), None);
            json(&text)["state"] == "succeeded"
        });
        if done && accepted == ids {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not all pushed within {DELIVERY_TIMEOUT:?}: accepted {accepted:?} of {ids:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
