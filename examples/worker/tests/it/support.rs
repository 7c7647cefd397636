//! Starting the worker binary over a temp database.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use signet_runtime::Producer;
use signet_sign::SigningConfig;
use signet_sqlite::{SqliteConfig, SqliteStore};
use signet_store::Store;

/// 32 bytes 0..31, base64: the HMAC key both sides use.
const KEY: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

pub(crate) fn signing_vars() -> Vec<(&'static str, &'static str)> {
    vec![
        ("SIGNET_SIGNING_KEYS", KEY),
        ("SIGNET_SIGNING_ACTIVE_KEY", "k1"),
    ]
}

pub(crate) struct Env {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) url: String,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) producer: Producer,
}

impl Env {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("signet.db").display());
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&url, SqliteConfig::default()).unwrap());
        let signing = SigningConfig::from_vars(signing_vars()).unwrap();
        let producer = Producer::new(Arc::clone(&store), &signing).unwrap();
        Self {
            dir,
            url,
            store,
            producer,
        }
    }

    pub(crate) fn db_path(&self) -> PathBuf {
        self.dir.path().join("signet.db")
    }

    pub(crate) fn outbox(&self) -> PathBuf {
        self.dir.path().join("outbox")
    }

    /// Starts the worker binary with a short lease.
    pub(crate) fn spawn_worker(&self, queue: &str, concurrency: usize) -> Child {
        let concurrency = concurrency.to_string();
        spawn_worker(
            &self.url,
            &self.outbox(),
            &[
                "--queue",
                queue,
                "--concurrency",
                &concurrency,
                "--lease-ms",
                "600",
                "--poll-ms",
                "5",
            ],
        )
    }
}

/// Starts the worker binary on `database_url` with `args`, the shared
/// signing keys and `outbox`; its stderr shows in the test output.
pub(crate) fn spawn_worker(database_url: &str, outbox: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_signet-example-worker"))
        .args(["--database-url", database_url])
        .args(args)
        .arg("--outbox")
        .arg(outbox)
        .envs(signing_vars())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the worker binary starts")
}

/// Counts of tasks per state in one queue, read straight from the file.
pub(crate) fn states(db: &Path, queue: &str) -> Vec<(String, i64)> {
    let c = rusqlite::Connection::open(db).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    let mut stmt = c
        .prepare("SELECT state, COUNT(*) FROM tasks WHERE queue = ?1 GROUP BY state ORDER BY state")
        .unwrap();
    let rows = stmt
        .query_map([queue], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<Vec<(String, i64)>, _>>()
        .unwrap();
    rows
}

/// Asks the worker to stop with SIGTERM and waits for a clean exit. A
/// worker spawned a moment ago may not handle SIGTERM yet (the default
/// action kills it): the signal goes once it does, as a service manager's
/// stop would reach a worker that is up.
pub(crate) fn terminate(mut child: Child, within: Duration) {
    let deadline = Instant::now() + within;
    while !catches_sigterm(child.id()) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the worker exited before it was asked to stop: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "the worker did not install its SIGTERM handler within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "worker exited with {status}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "worker did not stop within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts the worker binary on `env`'s store with `args`, logging at INFO
/// without colour; each line of its log is passed on to the test output
/// and sent to the receiver, so a test can wait for one.
pub(crate) fn spawn_logging_worker(env: &Env, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_signet-example-worker"))
        .args(["--database-url", &env.url])
        .args(args)
        .arg("--outbox")
        .arg(env.outbox())
        .envs(signing_vars())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the worker binary starts");
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            eprintln!("{line}");
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// Whether process `pid` handles SIGTERM: its bit in the `SigCgt` mask of
/// `/proc/<pid>/status`. Where there is no such file, assumed so.
fn catches_sigterm(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        // Signal n is bit n - 1; SIGTERM is 15.
        .is_none_or(|mask| mask & (1 << 14) != 0)
}
