//! End to end through the real binaries: `signet serve` on `127.0.0.1:0`
//! with a temp SQLite file and HMAC keys, a task enqueued over HTTP, the
//! example worker (`signet-example-worker`) running it from the same store,
//! the task seen `succeeded` over HTTP, then SIGTERM and a clean exit.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::support::{http, json, Guard, Server};

const HMAC_KEY: &str = "k1:ZTJlLXRlc3Qta2V5LXdpdGgtMzItYnl0ZXMtb2YtZW50cm9weQ==";
const TASK_TIMEOUT: Duration = Duration::from_secs(60);

/// The example worker binary next to the `signet` binary, built once per
/// test run so a binary left by an older checkout (which may refuse a newer
/// schema) is never used; the build is a no-op when it is up to date.
pub(crate) fn worker_binary() -> Result<PathBuf, String> {
    static BUILT: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    BUILT.get_or_init(build_worker).clone()
}

/// The example worker binary, or `None` after printing why `test` is
/// skipped (failing instead under CI, where it must build).
pub(crate) fn worker_or_skip(test: &str) -> Option<PathBuf> {
    match worker_binary() {
        Ok(path) => Some(path),
        Err(why) => {
            assert!(
                !super::support::must_not_skip(),
                "{test}: the example worker cannot be built: {why}"
            );
            eprintln!("SKIPPED {test}: the example worker cannot be built: {why}");
            None
        }
    }
}

fn build_worker() -> Result<PathBuf, String> {
    let signet = Path::new(env!("CARGO_BIN_EXE_signet"));
    let profile_dir = signet.parent().ok_or("signet binary has no directory")?;
    let worker = profile_dir.join(format!(
        "signet-example-worker{}",
        std::env::consts::EXE_SUFFIX
    ));
    let target_dir = profile_dir.parent().ok_or("target directory not found")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
    let mut build = Command::new(cargo);
    build
        .args(["build", "-p", "signet-example-worker"])
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() || !worker.exists() {
        return Err(format!(
            "cargo build -p signet-example-worker failed ({status})"
        ));
    }
    Ok(worker)
}

#[test]
fn serve_enqueue_work_and_shut_down() {
    let Some(worker_bin) = worker_or_skip("serve_enqueue_work_and_shut_down") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("e2e.db").display());

    let (mut server, key) = Server::start(
        &url,
        &[
            ("SIGNET_SIGNING_KEYS", HMAC_KEY),
            ("SIGNET_SIGNING_ACTIVE_KEY", "k1"),
        ],
        &["--shutdown-grace", "5s"],
    );
    let key = key.expect("a new store prints an admin key");
    let addr = server.addr.clone();
    assert!(key.starts_with("sk_"));

    let (status, body) = http(&addr, "GET", "/readyz", &key, None);
    assert_eq!(status, 200, "{body}");
    let (status, body) = http(
        &addr,
        "POST",
        "/v1/tasks",
        &key,
        Some(r#"{"queue":"e2e","task":"text.stats","args":{"text":"hello signed world"}}"#),
    );
    assert_eq!(status, 201, "{body}");
    let task = json(&body);
    let id = task["id"].as_str().unwrap().to_owned();
    assert_eq!(task["signature"]["key_id"], "k1");

    let worker = Command::new(&worker_bin)
        .args(["--database-url", &url, "--queue", "e2e", "--poll-ms", "20"])
        .arg("--outbox")
        .arg(dir.path().join("outbox"))
        .env("SIGNET_SIGNING_KEYS", HMAC_KEY)
        .env("SIGNET_SIGNING_ACTIVE_KEY", "k1")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the example worker");
    let _worker = Guard(Some(worker));

    let started = Instant::now();
    let task = loop {
        let (status, body) = http(&addr, "GET", &format!("/v1/tasks/{id}"), &key, None);
        assert_eq!(status, 200, "{body}");
        let task = json(&body);
        match task["state"].as_str() {
            Some("succeeded") => break task,
            Some("dead" | "cancelled") => panic!("task ended {}: {body}", task["state"]),
            _ => {}
        }
        assert!(
            started.elapsed() < TASK_TIMEOUT,
            "task did not succeed in time: {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(task["result"]["words"], 3, "{task}");
    assert_eq!(task["attempt"], 1);

    // SIGTERM: the server finishes, closes the store and exits 0.
    let status = server.process.guard.terminate(Duration::from_secs(20));
    assert!(status.success(), "signet serve exited with {status}");
}

fn signet(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_signet"))
        .args(args)
        .output()
        .expect("run signet")
}

#[test]
fn api_keys_create_ls_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("keys.db").display());

    let out = signet(&[
        "api-keys",
        "create",
        "--name",
        "ci deploy",
        "--scope",
        "publish",
        "--database-url",
        &url,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let secret = stdout.trim_end_matches('\n');
    assert!(
        secret.starts_with("sk_") && !secret.contains('\n'),
        "stdout is the key alone: {stdout:?}"
    );

    let out = signet(&["api-keys", "ls", "--json", "--database-url", &url]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains(secret), "ls shows the secret: {text}");
    let keys = json(&text);
    let key = &keys[0];
    assert_eq!(key["name"], "ci deploy");
    assert_eq!(key["scope"], "publish");
    assert!(secret.starts_with(key["prefix"].as_str().unwrap()));
    assert!(key.get("hash").is_none(), "ls shows the hash: {text}");
    assert!(key["revoked_at_ms"].is_null());
    let id = key["id"].as_str().unwrap().to_owned();

    let out = signet(&["api-keys", "ls", "--database-url", &url]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains(&id) && !table.contains(secret), "{table}");

    let out = signet(&["api-keys", "revoke", &id, "--database-url", &url]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys = json(
        &String::from_utf8(signet(&["api-keys", "ls", "--json", "--database-url", &url]).stdout)
            .unwrap(),
    );
    assert!(keys[0]["revoked_at_ms"].is_i64());

    // Unknown id: a negative answer (1); bad scope or id form: usage (2).
    let out = signet(&[
        "api-keys",
        "revoke",
        "key_0190000000007000800000000000dead",
        "--database-url",
        &url,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let out = signet(&["api-keys", "revoke", "nonsense", "--database-url", &url]);
    assert_eq!(out.status.code(), Some(2));
    let out = signet(&[
        "api-keys",
        "create",
        "--name",
        "x",
        "--scope",
        "root",
        "--database-url",
        &url,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = signet(&[
        "api-keys",
        "create",
        "--name",
        " ",
        "--scope",
        "read",
        "--database-url",
        &url,
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn serve_refuses_bad_configuration_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bad.db").display());
    for (var, value, expect) in [
        (
            "SIGNET_TRUSTED_PROXIES",
            "10.0.0.0/8,bogus",
            "SIGNET_TRUSTED_PROXIES",
        ),
        (
            "SIGNET_SIGNING_KEYS",
            "k1:not-base64!",
            "SIGNET_SIGNING_KEYS",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_signet"))
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &url])
            .env(var, value)
            .output()
            .expect("run signet serve");
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expect), "{stderr}");
        assert!(
            !stderr.contains("not-base64!"),
            "the secret was echoed: {stderr}"
        );
    }
}

#[test]
fn serve_puts_metrics_behind_the_metrics_token_without_printing_it() {
    const TOKEN: &str = "scrape-t0ken-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("metrics.db").display());
    let (mut server, key) = Server::start(
        &url,
        &[
            ("SIGNET_SIGNING_KEYS", HMAC_KEY),
            ("SIGNET_SIGNING_ACTIVE_KEY", "k1"),
            ("SIGNET_METRICS_TOKEN", TOKEN),
        ],
        &[],
    );
    let key = key.expect("a new store prints an admin key");
    let addr = server.addr.clone();
    let (status, body) = http(&addr, "GET", "/metrics", &key, None);
    assert_eq!(status, 401, "an API key is not the metrics token: {body}");
    assert!(!body.contains(TOKEN), "{body}");
    let (status, body) = http(&addr, "GET", "/metrics", TOKEN, None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("signet_http_requests_total"), "{body}");
    let status = server.process.guard.terminate(Duration::from_secs(20));
    assert!(status.success(), "signet serve exited with {status}");
    for line in server.process.drain() {
        assert!(!line.contains(TOKEN), "the token was printed: {line}");
    }
}
