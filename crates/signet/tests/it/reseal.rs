//! A master key rotation through the real binary: targets sealed under the
//! old key, `signet targets reseal` (dry run, batches, rerun) with the new
//! key and `SIGNET_MASTER_KEY_PREVIOUS`, then `signet serve` with only the
//! old key refuses to start and the new key alone opens every secret. On a
//! SQLite file and, with `SIGNET_TEST_DATABASE_URL`, on PostgreSQL (a fresh
//! schema, dropped at the end).

use std::sync::Arc;
use std::time::Duration;

use signet_postgres::{PostgresOptions, PostgresStore};
use signet_runtime::{NewTarget, TargetSecret, TargetService};
use signet_sign::sealed::MasterKey;
use signet_sqlite::{SqliteConfig, SqliteStore};
use signet_store::Store;

use super::support::must_not_skip;
use super::{signet_env, Run};

/// Base64 of 32 bytes of 1 (the old key), 2 (the new one) and 3 (a key
/// no node has).
const OLD: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const NEW: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
const LOST: &str = "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=";
const SIGNING: &str = "k1:c2lnbmV0LXJlc2VhbC10ZXN0LWhtYWMta2V5LTMyYnk=";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Creates `names` under `master` (the last one rotated, so it holds two
/// secrets) and returns their ids.
async fn seed(store: Arc<dyn Store>, master: &str, names: &[&str]) -> Vec<String> {
    let targets = TargetService::new(store, Some(MasterKey::parse(master).unwrap()));
    let mut ids = Vec::new();
    for name in names {
        let (t, _) = targets
            .create(NewTarget {
                name: (*name).into(),
                url_prefix: None,
                secret: None,
                rate_limit_per_s: None,
                max_concurrency: None,
                https_only: false,
            })
            .await
            .unwrap();
        ids.push(t.id);
    }
    if let Some(last) = ids.last() {
        targets
            .rotate(
                last,
                Some(TargetSecret::generate()),
                Some(Duration::from_secs(3600)),
            )
            .await
            .unwrap();
    }
    ids
}

/// Runs [`seed`] on the test's database, in a store of its own.
type Seeder<'a> = &'a dyn Fn(&str, &[&str]) -> Vec<String>;

/// The walk, on a database `seeder` seeds and the binary reaches with `db`
/// (flags) and `base` (extra variables).
fn rotate_the_master_key(seeder: Seeder<'_>, db: &[&str], base: &[(&str, &str)]) {
    let ids = seeder(OLD, &["t1", "t2", "t3", "t4", "t5"]);
    let run = |args: &[&str], keys: &[(&str, &str)]| -> Run {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(db);
        let mut env = vec![("SIGNET_SIGNING_KEYS", SIGNING)];
        env.extend(base);
        env.extend(keys);
        let run = signet_env(&all, b"", &env);
        let text = format!("{}{}", run.stdout, run.stderr);
        for key in [OLD, NEW, LOST] {
            assert!(!text.contains(key), "a master key in the output: {run:#?}");
        }
        run
    };
    let rotating = [
        ("SIGNET_MASTER_KEY", NEW),
        ("SIGNET_MASTER_KEY_PREVIOUS", OLD),
    ];

    let dry = run(
        &["targets", "reseal", "--dry-run", "--batch", "2"],
        &rotating,
    );
    let out = dry.ok();
    assert!(
        out.contains("5 target(s): 5 would be re-sealed, 0 already"),
        "{dry:#?}"
    );
    let done = run(&["targets", "reseal", "--batch", "2"], &rotating);
    let lines = done.lines();
    for progress in ["resealed 2/5", "resealed 4/5", "resealed 5/5"] {
        assert!(lines.iter().any(|l| l.starts_with(progress)), "{done:#?}");
    }
    assert!(
        done.ok().contains("5 target(s): 5 re-sealed, 0 already"),
        "{done:#?}"
    );
    assert!(
        done.stdout.contains("remove SIGNET_MASTER_KEY_PREVIOUS"),
        "{done:#?}"
    );
    let again = run(&["targets", "reseal"], &rotating);
    assert!(
        again.ok().contains("5 target(s): 0 re-sealed, 5 already"),
        "{again:#?}"
    );

    // The new key alone opens every secret, the rotated target's two too.
    let new_only = [("SIGNET_MASTER_KEY", NEW)];
    let shown = super::support::json(run(&["targets", "show", "t5", "--json"], &new_only).ok());
    assert_eq!(
        shown["secrets"].as_array().map(Vec::len),
        Some(2),
        "{shown}"
    );
    let listed = run(&["targets", "ls"], &new_only);
    assert!(
        !listed.ok().contains('?'),
        "every secret opens: {listed:#?}"
    );

    // A node with only the old key refuses to start, with the usual message.
    let old_only = run(
        &["serve", "--listen", "127.0.0.1:0"],
        &[("SIGNET_MASTER_KEY", OLD)],
    );
    assert_eq!(old_only.code, 2, "{old_only:#?}");
    assert!(old_only.stderr.contains("not the key"), "{old_only:#?}");
    assert!(!old_only.stdout.contains("listening on"), "{old_only:#?}");

    // A target no configured key opens: named by id, the rest still done,
    // exit 1.
    let lost = seeder(LOST, &["lost"]);
    let failed = run(&["targets", "reseal"], &rotating);
    assert_eq!(failed.code, 1, "{failed:#?}");
    assert!(
        failed.stderr.contains(&format!("target {}:", lost[0])),
        "{failed:#?}"
    );
    assert!(
        failed.stdout.contains("0 re-sealed, 5 already"),
        "{failed:#?}"
    );
    assert!(failed.stdout.contains("1 failed"), "{failed:#?}");
    assert_eq!(ids.len(), 5);
}

#[test]
fn a_master_key_rotation_through_the_binary_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("signet.db").display());
    let seeder = |master: &str, names: &[&str]| {
        runtime().block_on(async {
            let store: Arc<dyn Store> =
                Arc::new(SqliteStore::open(&url, SqliteConfig::default()).unwrap());
            let ids = seed(Arc::clone(&store), master, names).await;
            store.close().await.unwrap();
            ids
        })
    };
    rotate_the_master_key(&seeder, &["--database-url", &url], &[]);
}

#[test]
fn a_master_key_rotation_through_the_binary_on_postgres() {
    let url = match std::env::var("SIGNET_TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => {
            assert!(
                !must_not_skip(),
                "SIGNET_TEST_DATABASE_URL must be set in CI"
            );
            eprintln!("SKIPPED: set SIGNET_TEST_DATABASE_URL=postgres://… to run the PostgreSQL reseal test");
            return;
        }
    };
    let schema = format!(
        "it_reseal_{}_{}",
        std::process::id(),
        rand::random::<u32>() & 0x0fff_ffff
    );
    let options = || PostgresOptions {
        schema: Some(schema.clone()),
        pool_size: 2,
        ..PostgresOptions::default()
    };
    let rt = runtime();
    let admin = rt
        .block_on(PostgresStore::connect(&url, options()))
        .unwrap_or_else(|e| panic!("cannot open the test schema {schema}: {e}"));
    let admin: Arc<dyn Store> = Arc::new(admin);
    let seeder =
        |master: &str, names: &[&str]| rt.block_on(seed(Arc::clone(&admin), master, names));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rotate_the_master_key(
            &seeder,
            &["--database-url", &url],
            &[("SIGNET_DATABASE_SCHEMA", &schema)],
        )
    }));
    let dropped = rt.block_on(async {
        let store = PostgresStore::connect(&url, options()).await?;
        store.danger_drop_schema().await
    });
    if let Err(e) = dropped {
        eprintln!("could not drop the test schema {schema}: {e}");
    }
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
