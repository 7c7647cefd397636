//! `signet schedules add|ls|show|pause|resume|rm` through the real binary,
//! on a temp-file store.

use serde_json::Value;

use crate::{signet, Run};

struct Db {
    url: String,
    _dir: tempfile::TempDir,
}

impl Db {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("signet.db").display());
        Self { url, _dir: dir }
    }

    fn run(&self, args: &[&str]) -> Run {
        let mut all = vec!["schedules"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--database-url", &self.url]);
        signet(&all, b"")
    }

    fn json(&self, args: &[&str]) -> Value {
        let run = self.run(args);
        serde_json::from_str(run.ok()).unwrap_or_else(|e| panic!("not JSON ({e}): {run:#?}"))
    }
}

#[test]
fn add_list_show_pause_resume_and_remove() {
    let db = Db::new();
    let run = db.run(&[
        "add",
        "nightly",
        "--cron",
        "0 3 * * *",
        "--timezone",
        "Europe/Paris",
        "--task",
        "report.nightly",
        "--queue",
        "reports",
        "--args",
        r#"{"format": "pdf"}"#,
        "--header",
        "tenant=acme",
        "--catch-up",
        "once",
    ]);
    let out = run.ok();
    assert!(out.starts_with("created schedule nightly (sch_"), "{out}");
    assert!(out.contains("task report.nightly on reports"), "{out}");
    assert!(out.contains("next due times (UTC):"), "{out}");
    // 03:00 in Paris is 01:00 or 02:00 UTC: five lines, each at that hour.
    let due: Vec<&str> = out.lines().filter(|l| l.starts_with("  20")).collect();
    assert_eq!(due.len(), 5, "{out}");
    assert!(
        due.iter()
            .all(|l| l.contains("T01:00:00.000Z") || l.contains("T02:00:00.000Z")),
        "{due:?}"
    );

    let ping = db.json(&[
        "add",
        "ping",
        "--cron",
        "*/30 * * * * *",
        "--message",
        r#"{"url":"https://example.com/hook","body":{"ping":true}}"#,
        "--json",
    ]);
    assert_eq!(ping["kind"], "message");
    assert_eq!(ping["cron"], "*/30 * * * * *");
    assert_eq!(ping["upcoming"].as_array().unwrap().len(), 5);
    let ping_id = ping["id"].as_str().unwrap().to_owned();

    let table = db.run(&["ls"]);
    let lines = table.lines();
    assert!(lines[0].starts_with("NAME"), "{table:#?}");
    assert_eq!(lines.len(), 3, "{table:#?}");
    assert!(
        lines[1].starts_with("nightly") && lines[1].contains("active"),
        "{table:#?}"
    );
    assert!(
        lines[2].starts_with("ping") && lines[2].contains("message POST https://example.com/hook"),
        "{table:#?}"
    );
    let listed = db.json(&["ls", "--json"])["items"].clone();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(
        listed[0]["task"]["args"],
        serde_json::json!({"format": "pdf"})
    );
    assert_eq!(listed[0]["catch_up"], "once");

    let out = db.run(&["pause", "nightly"]);
    assert!(out.ok().starts_with("paused schedule nightly"), "{out:#?}");
    assert!(db
        .run(&["ls"])
        .ok()
        .lines()
        .nth(1)
        .unwrap()
        .contains("paused"));
    // Pausing it again changes nothing: exit 1, saying so.
    let again = db.run(&["pause", "nightly"]);
    assert_eq!(again.code, 1, "{again:#?}");
    assert!(again.stderr.contains("is already paused"), "{again:#?}");
    let resumed = db.json(&["resume", "nightly", "--json"]);
    assert_eq!(resumed["paused"], false);
    assert_eq!(resumed["upcoming"].as_array().unwrap().len(), 5);

    // By id as well as by name.
    let shown = db.json(&["show", &ping_id, "--json"]);
    assert_eq!(shown["name"], "ping");
    let out = db.run(&["rm", &ping_id]);
    assert!(out.ok().starts_with("deleted schedule ping"), "{out:#?}");
    let gone = db.run(&["show", "ping"]);
    assert_eq!(gone.code, 1, "{gone:#?}");
    assert!(gone.stderr.contains("no schedule \"ping\""), "{gone:#?}");
    assert_eq!(
        db.json(&["ls", "--json"])["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn bad_definitions_are_refused_with_the_apis_words() {
    let db = Db::new();
    let refused = |args: &[&str], expect: &str| {
        let mut all = vec!["add", "s"];
        all.extend_from_slice(args);
        let run = db.run(&all);
        assert_eq!(run.code, 2, "{args:?}: {run:#?}");
        assert!(
            run.stderr.contains(expect),
            "{args:?}: expected {expect:?} in {run:#?}"
        );
    };
    refused(
        &["--cron", "61 * * * *", "--task", "t"],
        "cron: the minute field \"61\" is invalid",
    );
    refused(
        &["--cron", "* * *", "--task", "t"],
        "cron: \"* * *\" has 3 fields",
    );
    refused(
        &[
            "--cron",
            "* * * * *",
            "--timezone",
            "Mars/Olympus",
            "--task",
            "t",
        ],
        "timezone: \"Mars/Olympus\" is not an IANA time zone name",
    );
    refused(
        &["--cron", "* * * * *", "--task", "t", "--queue", "a b"],
        "task.queue:",
    );
    refused(
        &["--cron", "* * * * *", "--task", "t", "--max-attempts", "0"],
        "task.max_attempts: must be 1 to 1000",
    );
    refused(
        &["--cron", "* * * * *", "--task", "t", "--args", "{nope"],
        "--args is not valid JSON",
    );
    refused(
        &["--cron", "* * * * *", "--message", r#"{"body":"x"}"#],
        "message",
    );
    refused(
        &["--cron", "* * * * *", "--task", "t", "--catch-up", "always"],
        "catch_up:",
    );
    // Usage errors from clap: both or neither of --task and --message.
    refused(
        &["--cron", "* * * * *", "--task", "t", "--message", "{}"],
        "cannot be used with",
    );
    refused(&["--cron", "* * * * *"], "--task");
    assert_eq!(
        db.json(&["ls", "--json"]),
        serde_json::json!({"items": []}),
        "nothing stored"
    );

    // A name in use.
    db.run(&["add", "s", "--cron", "* * * * *", "--task", "t"])
        .ok();
    let dup = db.run(&["add", "s", "--cron", "* * * * *", "--task", "t"]);
    assert_eq!(dup.code, 2, "{dup:#?}");
    assert!(
        dup.stderr.contains("cannot create schedule \"s\""),
        "{dup:#?}"
    );
}
