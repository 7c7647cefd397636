//! The README's quick start, from a fresh directory with no `SIGNET_*`
//! variables: `signet serve` creates the key file beside the database, a
//! task enqueued over HTTP and one enqueued with `signet enqueue` are both
//! signed with its key, and the example worker (reading the same file)
//! runs both. Nobody generated or exported a key.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::serve::worker_or_skip;
use super::support::{json, Guard, Server};
use crate::{signet, signet_env};

#[test]
fn quick_start_from_a_fresh_directory_signs_everything() {
    let Some(worker_bin) = worker_or_skip("quick_start_from_a_fresh_directory_signs_everything")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("signet.db").display());
    let key_file = dir.path().join("signet.keys");

    let (mut server, admin) = Server::start(&url, &[], &[]);
    let admin = admin.expect("a new store prints an admin key");
    let banner = server.process.drain().join("\n");
    assert!(key_file.exists(), "serve created no key file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "key file mode {mode:o}");
    }
    let text = std::fs::read_to_string(&key_file).unwrap();
    let active = text
        .lines()
        .find_map(|l| l.strip_prefix("SIGNET_SIGNING_ACTIVE_KEY="))
        .expect("an active key")
        .to_owned();
    assert!(
        text.contains("SIGNET_MASTER_KEY="),
        "no master key in the file"
    );
    // The banner said where the keys are; the rest of it may come later.
    let _ = banner;

    // Over HTTP: the server signs with the file's key.
    let (status, body) = server.http(
        "POST",
        "/v1/tasks",
        Some(r#"{"queue":"qs","task":"text.stats","args":{"text":"hello signed world"}}"#),
    );
    assert_eq!(status, 201, "{body}");
    let http_task = json(&body);
    assert_eq!(http_task["signature"]["key_id"], active.as_str(), "{body}");
    let _ = admin;

    // From the CLI, with no variables: the same key.
    let run = signet(
        &[
            "enqueue",
            "--database-url",
            &url,
            "--queue",
            "qs",
            "--task",
            "text.stats",
            "--args",
            r#"{"text":"from the cli"}"#,
            "--json",
        ],
        b"",
    );
    let cli_task = json(run.ok());
    assert_eq!(cli_task["signature"]["key_id"], active.as_str(), "{run:#?}");

    // The worker reads the same file and runs both.
    let worker = Command::new(&worker_bin)
        .args(["--database-url", &url, "--queue", "qs", "--poll-ms", "20"])
        .arg("--outbox")
        .arg(dir.path().join("outbox"))
        .env_remove("SIGNET_SIGNING_KEYS")
        .env_remove("SIGNET_SIGNING_ACTIVE_KEY")
        .env_remove("SIGNET_KEYS_FILE")
        .env_remove("SIGNET_DEV")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the example worker");
    let _worker = Guard(Some(worker));
    for id in [&http_task["id"], &cli_task["id"]] {
        let id = id.as_str().unwrap();
        let started = Instant::now();
        loop {
            let (status, body) = server.http("GET", &format!("/v1/tasks/{id}"), None);
            assert_eq!(status, 200, "{body}");
            let task = json(&body);
            match task["state"].as_str() {
                Some("succeeded") => break,
                Some("dead" | "cancelled") => panic!("task ended {}: {body}", task["state"]),
                _ => {}
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "task did not succeed in time: {body}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let status = server.process.guard.terminate(Duration::from_secs(20));
    assert!(status.success(), "signet serve exited with {status}");

    // A second start reads the file instead of making another.
    let before = std::fs::read_to_string(&key_file).unwrap();
    let (server, _) = Server::start(&url, &[], &[]);
    drop(server);
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), before);
}

#[test]
fn the_serve_banner_says_a_key_file_was_created() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("b.db").display());
    let (server, _) = Server::start(&url, &[], &[]);
    let key_file = dir.path().join("b.keys");
    let shown = key_file.display().to_string();
    let line = server.process.wait_for("the keys line", |l| {
        l.starts_with("keys:").then(|| l.to_owned())
    });
    assert!(
        line.contains(&shown) && line.contains("created now"),
        "{line}"
    );
    assert!(line.contains(&format!("master key from {shown}")), "{line}");
}

#[test]
fn unsigned_enqueue_needs_unsigned_and_is_loud() {
    // An in-memory database has no key file, like PostgreSQL: no keys.
    let refused = signet(
        &[
            "enqueue",
            "--database-url",
            "sqlite::memory:",
            "--task",
            "t",
        ],
        b"",
    );
    assert_eq!(refused.code, 2, "{refused:#?}");
    assert!(
        refused.stderr.contains("no signing keys") && refused.stderr.contains("--unsigned"),
        "{refused:#?}"
    );
    let unsigned = signet(
        &[
            "enqueue",
            "--database-url",
            "sqlite::memory:",
            "--task",
            "t",
            "--unsigned",
        ],
        b"",
    );
    unsigned.ok();
    assert!(unsigned.stderr.contains("WARN --unsigned"), "{unsigned:#?}");
    assert!(unsigned.stderr.contains("UNSIGNED"), "{unsigned:#?}");
    // On a file database --unsigned creates no key file.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("u.db").display());
    signet(
        &[
            "enqueue",
            "--database-url",
            &url,
            "--task",
            "t",
            "--unsigned",
        ],
        b"",
    )
    .ok();
    assert!(!dir.path().join("u.keys").exists());
    // A server on a store without a key file of its own refuses to start.
    let serve = signet_env(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            "sqlite::memory:",
        ],
        b"",
        &[],
    );
    assert_eq!(serve.code, 2, "{serve:#?}");
    assert!(serve.stderr.contains("SIGNET_KEYS_FILE"), "{serve:#?}");
}
