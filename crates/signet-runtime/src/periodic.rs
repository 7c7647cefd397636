//! One runner for the services that work in passes (rescuer, pruner,
//! callbacks, queue-depth reporter, scheduler): a pass, a rest, until
//! shutdown.

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

use crate::shutdown::ShutdownSignal;

/// Shortest rest between passes, so a zero interval cannot spin.
const MIN_REST: Duration = Duration::from_millis(1);

/// Runs `pass` at once and then every `interval` (measured from the start
/// of each pass; a pass longer than the interval is followed at once by the
/// next) until `shutdown` fires. A failed pass is logged, naming
/// `service`, and the next one runs on time.
pub(crate) async fn run_every<F, Fut, T, E>(
    service: &'static str,
    interval: Duration,
    mut shutdown: ShutdownSignal,
    mut pass: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    while !shutdown.is_triggered() {
        let started = Instant::now();
        if let Err(e) = pass().await {
            tracing::warn!(service, error = %e, "periodic pass failed; will retry next interval");
        }
        if !rest(&mut shutdown, interval.saturating_sub(started.elapsed())).await {
            return;
        }
    }
}

/// Runs `pass` until `shutdown` fires, resting after each pass as long as
/// the pass says (at least [`MIN_REST`]).
pub(crate) async fn run_paced<F, Fut>(mut shutdown: ShutdownSignal, mut pass: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Duration>,
{
    while !shutdown.is_triggered() {
        let wait = pass().await;
        if !rest(&mut shutdown, wait).await {
            return;
        }
    }
}

/// Sleeps `wait` (at least [`MIN_REST`]); `false` when shutdown fired
/// first.
async fn rest(shutdown: &mut ShutdownSignal, wait: Duration) -> bool {
    tokio::select! {
        () = shutdown.triggered() => false,
        () = tokio::time::sleep(wait.max(MIN_REST)) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shutdown::Shutdown;

    #[tokio::test]
    async fn failed_passes_go_on_until_shutdown() {
        let shutdown = Shutdown::new();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let runner = tokio::spawn(run_every(
            "test",
            Duration::from_millis(5),
            shutdown.signal(),
            move || {
                let _ = tx.send(());
                async { Err::<(), _>("a failed pass does not stop the runner") }
            },
        ));
        for _ in 0..3 {
            tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await
                .expect("another pass")
                .expect("the runner runs");
        }
        shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(30), runner)
            .await
            .expect("the runner stops on shutdown")
            .expect("no panic");
    }
}
