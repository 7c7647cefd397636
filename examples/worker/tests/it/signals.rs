//! A SIGTERM during start-up stops the worker gracefully (exit 0), not by
//! the signal's default action: the handlers are installed first.

use std::time::Duration;

use crate::support::*;

#[test]
fn a_sigterm_during_start_up_stops_the_worker_gracefully() {
    let env = Env::new();
    let (child, rx) = spawn_logging_worker(&env, &["--queue", "signals"]);
    // Its first log line (where the keys came from) is printed while it
    // is still starting: the store is not open, the worker not built.
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the worker logs while it starts");
    assert!(first.contains("keys from"), "{first}");
    // SIGTERM now: before this fix the handler was installed only once the
    // node was built, so the signal killed the process (no exit code).
    terminate(child, Duration::from_secs(15));
}
