//! The rotation walkthrough of docs/keys.md, step by step through the real
//! `signet` binary and the example worker, with work pending under both
//! keys: nothing is lost, and `keys status` and `keys retire` never let the
//! old key go while something needs it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::serve::worker_or_skip;
use super::support::Guard;
use crate::{signet, Run};

/// A SQLite database in a temporary directory, used with no `SIGNET_*`
/// variables at all: the key file beside it is the only key source.
struct Store {
    dir: tempfile::TempDir,
    url: String,
}

impl Store {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("signet.db").display());
        Self { dir, url }
    }

    fn run(&self, args: &[&str]) -> Run {
        let mut all = args.to_vec();
        all.extend(["--database-url", &self.url]);
        signet(&all, b"")
    }

    fn enqueue(&self, text: &str) -> Value {
        let run = self.run(&[
            "enqueue",
            "--queue",
            "rot",
            "--task",
            "text.stats",
            "--args",
            &format!("{{\"text\":\"{text}\"}}"),
            "--json",
        ]);
        serde_json::from_str(run.ok()).unwrap()
    }

    /// `keys status --json`, by key id.
    fn status(&self) -> Vec<Value> {
        let run = self.run(&["keys", "status", "--json"]);
        serde_json::from_str::<Value>(run.ok()).unwrap()["keys"]
            .as_array()
            .unwrap()
            .clone()
    }

    fn row(&self, id: &str) -> Value {
        let rows = self.status();
        rows.iter()
            .find(|r| r["key_id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} missing from {rows:?}"))
    }

    fn key_file(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("signet.keys")).unwrap()
    }
}

#[test]
fn rotation_walkthrough_loses_nothing() {
    let Some(worker_bin) = worker_or_skip("rotation_walkthrough_loses_nothing") else {
        return;
    };
    let s = Store::new();

    // Work signed with the first key: the key file is created on first use.
    let mut ids: Vec<String> = Vec::new();
    for i in 0..3 {
        ids.push(
            s.enqueue(&format!("old {i}"))["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let ls: Value = serde_json::from_str(s.run(&["keys", "ls", "--json"]).ok()).unwrap();
    let old = ls["keys"][0]["key_id"].as_str().unwrap().to_owned();
    assert_eq!(ls["keys"][0]["role"], "active", "{ls}");

    // 1. Add the new key. It is not active, and not "safe to retire" either.
    s.run(&["keys", "add", "--id", "k-next"]).ok();
    let next = s.row("k-next");
    assert_eq!(next["new"], true, "{next}");
    assert_eq!(next["safe_to_retire"], false, "{next}");
    assert_eq!(s.row(&old)["pending_tasks"], 3);

    // 2. Activate it with an overlap: new work is signed with it.
    s.run(&["keys", "activate", "k-next", "--overlap"]).ok();
    for i in 0..2 {
        let task = s.enqueue(&format!("new {i}"));
        assert_eq!(task["signature"]["key_id"], "k-next", "{task}");
        ids.push(task["id"].as_str().unwrap().to_owned());
    }
    let old_row = s.row(&old);
    assert_eq!(old_row["overlap"], true, "{old_row}");
    assert_eq!(old_row["safe_to_retire"], false, "{old_row}");
    assert_eq!(s.row("k-next")["pending_tasks"], 2);

    // Retiring the old key now is refused: it overlaps and 3 tasks need it.
    let refused = s.run(&["keys", "retire", &old]);
    assert_eq!(refused.code, 2, "{refused:#?}");
    assert!(
        refused.stderr.contains("3 pending task(s)") && refused.stderr.contains("overlap"),
        "{refused:#?}"
    );
    assert!(s.key_file().contains(&format!("{old}:")));

    // 3. End the overlap: still refused while work is pending.
    s.run(&["keys", "activate", "k-next"]).ok();
    assert!(!s.key_file().contains("SIGNET_SIGNING_OVERLAP_KEYS"));
    let refused = s.run(&["keys", "retire", &old]);
    assert_eq!(refused.code, 2, "{refused:#?}");
    assert_eq!(s.row(&old)["safe_to_retire"], false);

    // 4. Roll the workers: one started now reads both keys from the file
    // and runs the work of both.
    let worker = Command::new(&worker_bin)
        .args([
            "--database-url",
            &s.url,
            "--queue",
            "rot",
            "--poll-ms",
            "20",
        ])
        .arg("--outbox")
        .arg(s.dir.path().join("outbox"))
        .env_remove("SIGNET_SIGNING_KEYS")
        .env_remove("SIGNET_SIGNING_ACTIVE_KEY")
        .env_remove("SIGNET_KEYS_FILE")
        .env_remove("SIGNET_DEV")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the example worker");
    let mut worker = Guard(Some(worker));
    let started = Instant::now();
    loop {
        let states: Vec<String> = ids
            .iter()
            .map(|id| {
                let run = s.run(&["tasks", "show", id, "--json"]);
                let task: Value = serde_json::from_str(run.ok()).unwrap();
                task["state"].as_str().unwrap().to_owned()
            })
            .collect();
        if states.iter().all(|st| st == "succeeded") {
            break;
        }
        assert!(
            !states.iter().any(|st| st == "dead"),
            "a task died: {states:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "tasks did not finish: {states:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    worker.terminate(Duration::from_secs(20));

    // 5. Retire the old key once status says it is safe.
    let old_row = s.row(&old);
    assert_eq!(old_row["pending"], 0, "{old_row}");
    assert_eq!(old_row["safe_to_retire"], true, "{old_row}");
    s.run(&["keys", "retire", &old]).ok();
    let file = s.key_file();
    assert!(!file.contains(&format!("{old}:")), "{file}");
    let ls: Value = serde_json::from_str(s.run(&["keys", "ls", "--json"]).ok()).unwrap();
    assert_eq!(ls["keys"].as_array().unwrap().len(), 1, "{ls}");
    assert_eq!(ls["keys"][0]["key_id"], "k-next");
    // Nothing dead, nothing lost.
    let dead: Value = serde_json::from_str(s.run(&["dlq", "ls", "--json"]).ok()).unwrap();
    assert_eq!(dead["items"].as_array().map(Vec::len), Some(0), "{dead}");
}

#[test]
fn retire_force_and_the_active_key() {
    let s = Store::new();
    s.enqueue("pending");
    let old = serde_json::from_str::<Value>(s.run(&["keys", "ls", "--json"]).ok()).unwrap()["keys"]
        [0]["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The active key is never retired, even with --force.
    let refused = s.run(&["keys", "retire", &old, "--force"]);
    assert_eq!(refused.code, 2, "{refused:#?}");
    assert!(refused.stderr.contains("active key"), "{refused:#?}");
    s.run(&["keys", "add", "--id", "k2", "--algorithm", "ed25519"])
        .ok();
    s.run(&["keys", "activate", "k2"]).ok();
    // Pending work: refused, then retired loudly with --force.
    let refused = s.run(&["keys", "retire", &old]);
    assert_eq!(refused.code, 2, "{refused:#?}");
    assert!(refused.stderr.contains("--force"), "{refused:#?}");
    let forced = s.run(&["keys", "retire", &old, "--force"]);
    forced.ok();
    assert!(forced.stderr.contains("WARN retiring"), "{forced:#?}");
    // Status now names the work that will fail.
    let row = s.row(&old);
    assert_eq!(row["in_ring"], false, "{row}");
    let human = s.run(&["keys", "status"]);
    assert!(human.ok().contains("NOT IN THE RING"), "{human:#?}");
    // An ed25519 key signs from now on.
    let task = s.enqueue("ed");
    assert_eq!(task["signature"]["key_id"], "k2", "{task}");
}

#[test]
fn variable_configured_keys_get_the_lines_to_change() {
    let s = Store::new();
    let generated = signet(&["keys", "generate", "--id", "v1"], b"");
    let env: Vec<(String, String)> = generated
        .ok()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let add = crate::signet_env(
        &["keys", "add", "--id", "v2", "--database-url", &s.url],
        b"",
        &env_ref,
    );
    let lines = add.ok();
    assert!(
        lines.starts_with("SIGNET_SIGNING_KEYS=v1:") && lines.contains(",v2:"),
        "{add:#?}"
    );
    assert!(add.stderr.contains("nothing was written"), "{add:#?}");
    // Variables win: no key file was created beside the database.
    assert!(!s.dir.path().join("signet.keys").exists());
    let activate = crate::signet_env(
        &[
            "keys",
            "activate",
            "v1",
            "--overlap",
            "--database-url",
            &s.url,
        ],
        b"",
        &env_ref,
    );
    // v1 is already active: nothing to change but the overlap, which has
    // no previous key to hold.
    activate.ok();
}
