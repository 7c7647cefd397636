//! `signet migrate` and `signet migrate --status` through the real binary:
//! on PostgreSQL (a fresh schema of `SIGNET_TEST_DATABASE_URL`) and on a
//! SQLite file. Exit codes of `--status`: 0 up to date, 1 pending.

use super::support::must_not_skip;
use super::{signet, signet_env, Run};

/// The test database, or `None` (with a notice) when it is not configured.
fn database_url() -> Option<String> {
    match std::env::var("SIGNET_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                !must_not_skip(),
                "SIGNET_TEST_DATABASE_URL must be set in CI"
            );
            eprintln!("SKIPPED: set SIGNET_TEST_DATABASE_URL=postgres://… to run the PostgreSQL migrate test");
            None
        }
    }
}

/// Drops the schema when the test ends, passing or failing (best effort:
/// with `psql` on the PATH).
struct DropSchema {
    url: String,
    schema: String,
}

impl Drop for DropSchema {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args([
                &self.url,
                "-q",
                "-c",
                &format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema),
            ])
            .output();
    }
}

fn migrate(url: &str, schema: Option<&str>, extra: &[&str]) -> Run {
    let mut args = vec!["migrate", "--database-url", url];
    if let Some(schema) = schema {
        args.extend(["--database-schema", schema]);
    }
    args.extend(extra);
    signet(&args, b"")
}

#[test]
fn migrate_applies_once_and_status_tells_where_the_schema_stands_on_postgres() {
    let Some(url) = database_url() else { return };
    let schema = format!("signet_cli_migrate_{:08x}", std::process::id() ^ 0x5eed);
    let _drop = DropSchema {
        url: url.clone(),
        schema: schema.clone(),
    };

    // A fresh schema: everything pending, exit 1.
    let before = migrate(&url, Some(&schema), &["--status"]);
    assert_eq!(before.code, 1, "{before:#?}");
    assert!(before.stdout.contains("schema version 0"), "{before:#?}");
    assert!(before.stdout.contains("pending: 0001_"), "{before:#?}");
    assert!(
        before.stderr.contains("run `signet migrate`"),
        "{before:#?}"
    );

    let first = migrate(&url, Some(&schema), &[]);
    let out = first.ok();
    assert!(out.contains("schema version 0 -> "), "{first:#?}");
    assert!(out.contains("applied 0001_"), "{first:#?}");

    // Idempotent: nothing left to apply.
    let again = migrate(&url, Some(&schema), &[]);
    assert!(again.ok().contains("nothing to apply"), "{again:#?}");
    let after = migrate(&url, Some(&schema), &["--status"]);
    assert!(after.ok().contains("up to date"), "{after:#?}");

    // Other commands use the migrated schema through the same options.
    let queues = signet_env(
        &["queues", "--database-url", &url],
        b"",
        &[("SIGNET_DATABASE_SCHEMA", &schema)],
    );
    queues.ok();
}

#[test]
fn migrate_on_sqlite_creates_and_then_finds_nothing_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("m.db").display());
    let first = migrate(&url, None, &[]);
    assert!(first.ok().contains("applied 0001_"), "{first:#?}");
    let status = migrate(&url, None, &["--status"]);
    assert!(status.ok().contains("up to date"), "{status:#?}");
    let again = migrate(&url, None, &[]);
    assert!(again.ok().contains("nothing to apply"), "{again:#?}");
    let junk = migrate("mysql://localhost/x", None, &["--status"]);
    assert_eq!(junk.code, 2, "{junk:#?}");
}
