//! Commands that did nothing say so: named ids none of which was acted on
//! exit 1 with the reason for each (`dlq replay|purge --id`, `api-keys
//! revoke`, `schedules pause|resume`); `targets ls|show` list the secrets
//! still signing by fingerprint with the time each stops; `schedules ls`
//! flags a schedule whose target is gone; `queues bind|unbind` bind a queue
//! to a push endpoint (refusing what could never push) and unbinding a
//! queue that is not bound exits 1.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use signet_runtime::{NewTarget, TargetService};
use signet_sign::sealed::MasterKey;
use signet_sqlite::{SqliteConfig, SqliteStore};
use signet_store::{DeadReason, Store, TaskId};

use crate::{signet, signet_env, Run};

/// The master key of these tests, as `SIGNET_MASTER_KEY` takes it.
const MASTER_KEY_B64: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

/// A temporary database, a signing environment and the master key.
struct Fixture {
    _dir: tempfile::TempDir,
    url: String,
    env: Vec<(String, String)>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("signet.db").display());
        let mut env: Vec<(String, String)> = signet(&["keys", "generate", "--id", "k1"], b"")
            .ok()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        env.retain(|(k, _)| k != "SIGNET_MASTER_KEY");
        env.push(("SIGNET_MASTER_KEY".into(), MASTER_KEY_B64.into()));
        Self {
            _dir: dir,
            url,
            env,
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--database-url", &self.url]);
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        signet_env(&all, b"", &env)
    }

    fn json(&self, args: &[&str]) -> Value {
        let run = self.run(args);
        serde_json::from_str(run.ok()).unwrap_or_else(|e| panic!("not JSON ({e}): {run:#?}"))
    }

    /// Runs `f` on the store, as the library would.
    fn with_store<T>(&self, f: impl AsyncFnOnce(Arc<dyn Store>) -> T) -> T {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let store: Arc<dyn Store> =
                Arc::new(SqliteStore::open(&self.url, SqliteConfig::default()).expect("open"));
            let out = f(Arc::clone(&store)).await;
            store.close().await.expect("close");
            out
        })
    }

    fn enqueue(&self) -> String {
        let task = self.json(&[
            "enqueue", "--queue", "mail", "--task", "send", "--args", "{}", "--json",
        ]);
        task["id"].as_str().unwrap().to_owned()
    }
}

fn master() -> MasterKey {
    MasterKey::parse(MASTER_KEY_B64).unwrap()
}

#[test]
fn dlq_replay_and_purge_of_ids_none_dead_exit_1_with_each_reason() {
    let f = Fixture::new();
    let live = f.enqueue();
    let dead = f.enqueue();
    f.with_store(async |s| {
        s.kill(&dead, DeadReason::MaxAttempts, "smtp timeout", 1)
            .await
            .unwrap()
    });
    let missing = TaskId::generate().to_string();

    // It said "replayed 0" and exited 0.
    let run = f.run(&["dlq", "replay", "--id", &live, "--id", &missing]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(!run.stdout.contains("replayed 0"), "{run:#?}");
    assert!(
        run.stderr
            .contains(&format!("{live}: not a dead letter (it is available)")),
        "{run:#?}"
    );
    assert!(
        run.stderr.contains(&format!("{missing}: not found")),
        "{run:#?}"
    );
    // --json prints what happened, and still exits 1.
    let run = f.run(&["dlq", "replay", "--id", &live, "--json"]);
    assert_eq!(run.code, 1, "{run:#?}");
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["ids"], serde_json::json!([]));
    assert_eq!(v["skipped"][0]["id"], live.as_str());

    // Some acted on: exit 0, naming what was skipped and why.
    let run = f.run(&["dlq", "replay", "--id", &dead, "--id", &live]);
    let out = run.ok();
    assert!(out.contains("replayed 1 dead letter(s)"), "{out}");
    assert!(
        out.contains(&format!(
            "skipped {live}: not a dead letter (it is available)"
        )),
        "{out}"
    );

    // Purge: with and without --yes (no dead letter to confirm).
    for extra in [&["--yes"][..], &[]] {
        let mut args = vec!["dlq", "purge", "--id", live.as_str()];
        args.extend(extra);
        let run = f.run(&args);
        assert_eq!(run.code, 1, "{args:?}: {run:#?}");
        assert!(run.stderr.contains("nothing purged"), "{run:#?}");
        assert!(run.stderr.contains(&live), "{run:#?}");
    }
    assert_eq!(
        f.json(&["tasks", "show", &live, "--json"])["state"],
        "available"
    );
}

#[test]
fn revoking_a_revoked_key_and_pausing_a_paused_schedule_exit_1() {
    let f = Fixture::new();
    f.run(&["api-keys", "create", "--name", "ci", "--scope", "read"])
        .ok();
    let keys = f.json(&["api-keys", "ls", "--json"]);
    let id = keys[0]["id"].as_str().unwrap().to_owned();
    f.run(&["api-keys", "revoke", &id]).ok();
    let again = f.run(&["api-keys", "revoke", &id]);
    assert_eq!(again.code, 1, "{again:#?}");
    assert!(again.stderr.contains("already revoked"), "{again:#?}");

    f.run(&[
        "schedules",
        "add",
        "nightly",
        "--cron",
        "@daily",
        "--task",
        "report",
    ])
    .ok();
    let run = f.run(&["schedules", "resume", "nightly"]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr.contains("is not paused; nothing changed"),
        "{run:#?}"
    );
    let run = f.run(&["schedules", "resume", "nightly", "--json"]);
    assert_eq!(run.code, 1, "{run:#?}");
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["paused"], false);
    f.run(&["schedules", "pause", "nightly"]).ok();
    f.run(&["schedules", "resume", "nightly"]).ok();
    let run = f.run(&["schedules", "rm", "nope"]);
    assert_eq!(run.code, 1, "{run:#?}");
}

#[test]
fn targets_show_the_secrets_still_signing_and_schedules_flag_a_missing_target() {
    let f = Fixture::new();
    let first = "whsec_Zmlyc3QtdGFyZ2V0LXNlY3JldC1vZi0zMi1ieXRlcyEh";
    let second = "whsec_c2Vjb25kLXRhcmdldC1zZWNyZXQtb2YtMzItYnl0ZXMh";
    let (id, rotated_at) = f.with_store(async |s| {
        let targets = TargetService::new(s, Some(master()));
        let (t, _) = targets
            .create(NewTarget {
                name: "orders".into(),
                url_prefix: Some("https://orders.example/".into()),
                secret: Some(signet_runtime::TargetSecret::parse(first).unwrap()),
                rate_limit_per_s: None,
                max_concurrency: None,
                https_only: false,
            })
            .await
            .unwrap();
        let (t, _) = targets
            .rotate(
                &t.id,
                Some(signet_runtime::TargetSecret::parse(second).unwrap()),
                Some(Duration::from_secs(3600)),
            )
            .await
            .unwrap();
        (t.id, t.updated_at_ms)
    });

    let shown = f.json(&["targets", "show", "orders", "--json"]);
    assert_eq!(shown["id"], id.as_str());
    let secrets = shown["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 2, "{shown}");
    assert_eq!(secrets[0]["current"], true);
    assert_eq!(secrets[0]["fingerprint"], shown["secret_fingerprint"]);
    assert!(secrets[0]["stops_at"].is_null(), "{shown}");
    assert_eq!(secrets[1]["current"], false);
    assert_eq!(secrets[1]["stops_at_ms"], rotated_at + 3_600_000);
    let text = f.run(&["targets", "show", &id]);
    let out = text.ok();
    assert!(
        out.contains(secrets[1]["fingerprint"].as_str().unwrap()) && out.contains("stops "),
        "{out}"
    );
    for run in [
        &text,
        &f.run(&["targets", "ls"]),
        &f.run(&["targets", "ls", "--json"]),
    ] {
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(!all.contains(first) && !all.contains(second), "{run:#?}");
    }
    let listed = f.json(&["targets", "ls", "--json"]);
    assert_eq!(listed["items"][0], shown);
    let run = f.run(&["targets", "show", "nope"]);
    assert_eq!(run.code, 1, "{run:#?}");

    // A message schedule naming the target, which is then deleted.
    let message = r#"{"url":"https://orders.example/h","target":"orders"}"#;
    f.run(&[
        "schedules",
        "add",
        "ping",
        "--cron",
        "@hourly",
        "--message",
        message,
    ])
    .ok();
    assert_eq!(
        f.json(&["schedules", "ls", "--json"])["items"][0]["target_missing"],
        false
    );
    f.with_store(async |s| {
        TargetService::new(s, Some(master()))
            .delete(&id, true)
            .await
            .unwrap()
    });
    let run = f.run(&["schedules", "ls"]);
    assert!(run.ok().contains("active, target missing"), "{run:#?}");
    assert!(
        run.stderr
            .contains("1 schedule(s) name a target that does not exist"),
        "{run:#?}"
    );
    assert_eq!(
        f.json(&["schedules", "ls", "--json"])["items"][0]["target_missing"],
        true
    );
    assert_eq!(
        f.json(&["schedules", "show", "ping", "--json"])["target_missing"],
        true
    );
}

#[test]
fn queues_bind_and_unbind_push_endpoints_on_the_database() {
    let f = Fixture::new();
    f.with_store(async |s| {
        TargetService::new(s, Some(master()))
            .create(NewTarget {
                name: "hooks".into(),
                url_prefix: Some("https://hooks.example.com/".into()),
                secret: None,
                rate_limit_per_s: None,
                max_concurrency: None,
                https_only: false,
            })
            .await
            .unwrap()
    });
    let bound = f.json(&[
        "queues",
        "bind",
        "reports",
        "--url",
        "https://hooks.example.com/push",
        "--target",
        "hooks",
        "--timeout",
        "45s",
        "--concurrency",
        "4",
        "--signed-response",
        "--json",
    ]);
    assert_eq!(bound["queue"], "reports", "{bound}");
    assert_eq!(bound["url"], "https://hooks.example.com/push");
    assert_eq!(bound["target_name"], "hooks");
    assert_eq!(bound["timeout_ms"], 45_000);
    assert_eq!(bound["concurrency"], 4);
    assert_eq!(bound["require_signed_response"], true);

    // `queues` lists the bound queue with its URL, before it holds a task.
    let listed = f.run(&["queues"]);
    assert!(
        listed.ok().contains("reports") && listed.stdout.contains("https://hooks.example.com/push"),
        "{listed:#?}"
    );
    let listed = f.json(&["queues", "--json"]);
    assert_eq!(
        listed["queues"][0]["push"]["url"], "https://hooks.example.com/push",
        "{listed}"
    );

    for (args, says) in [
        (
            vec![
                "queues",
                "bind",
                "signet:messages",
                "--url",
                "https://hooks.example.com/",
                "--target",
                "hooks",
            ],
            "reserved",
        ),
        (
            vec![
                "queues",
                "bind",
                "r2",
                "--url",
                "https://other.example.com/",
                "--target",
                "hooks",
            ],
            "url_prefix",
        ),
        (
            vec![
                "queues",
                "bind",
                "r2",
                "--url",
                "http://10.0.0.7/",
                "--target",
                "hooks",
            ],
            "10.0.0.7",
        ),
        (
            vec![
                "queues",
                "bind",
                "r2",
                "--url",
                "https://hooks.example.com/",
                "--target",
                "nobody",
            ],
            "no target",
        ),
    ] {
        let run = f.run(&args);
        assert_ne!(run.code, 0, "{run:#?}");
        assert!(run.stderr.contains(says), "{says}: {run:#?}");
    }

    let run = f.run(&["queues", "unbind", "reports"]);
    assert!(run.ok().contains("unbound"), "{run:#?}");
    let again = f.run(&["queues", "unbind", "reports"]);
    assert_eq!(again.code, 1, "{again:#?}");
    assert!(again.stderr.contains("not bound"), "{again:#?}");
}
