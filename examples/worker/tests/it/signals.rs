//! A SIGTERM during start-up stops the worker gracefully (exit 0), not by
//! the signal's default action: the handlers are installed first.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::*;

#[test]
fn a_sigterm_during_start_up_stops_the_worker_gracefully() {
    let env = Env::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_signet-example-worker"))
        .args(["--database-url", &env.url, "--queue", "signals"])
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
    // Its first log line (where the keys came from) is printed while it
    // is still starting: the store is not open, the worker not built.
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line.clone());
            eprintln!("{line}");
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the worker logs while it starts");
    assert!(first.contains("keys from"), "{first}");
    // SIGTERM now: before this fix the handler was installed only once the
    // node was built, so the signal killed the process (no exit code).
    terminate(child, Duration::from_secs(15));
}
