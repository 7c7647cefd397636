//! One module per subcommand. Each exposes `Args` (or `Command`) and
//! `run(..) -> ExitCode`: 0 success, 1 a negative answer (e.g. invalid
//! signature, no such task), 2 usage, configuration or key errors.

use std::fmt;
use std::process::ExitCode;

pub(crate) mod api_keys;
pub(crate) mod bench;
pub(crate) mod bench_api;
pub(crate) mod bench_deliver;
pub(crate) mod bench_pickup;
pub(crate) mod bench_queue;
pub(crate) mod bench_work;
pub(crate) mod completions;
pub(crate) mod dlq;
pub(crate) mod enqueue;
pub(crate) mod keys;
pub(crate) mod messages;
pub(crate) mod migrate;
pub(crate) mod queues;
pub(crate) mod receive;
pub(crate) mod schedules;
pub(crate) mod serve;
pub(crate) mod sign;
pub(crate) mod targets;
pub(crate) mod tasks;
pub(crate) mod verify;

/// A negative answer: the command worked, and the answer is "no" (exit 1).
/// Every other error is a usage, configuration or environment problem (exit 2).
#[derive(Debug)]
pub(crate) struct Negative(pub(crate) String);

impl fmt::Display for Negative {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Negative {}

/// What a runtime error says, without the `configuration:` prefix of
/// [`RuntimeError::Config`](signet_runtime::RuntimeError::Config): its
/// message already names the setting and what to do.
pub(crate) fn config_message(e: signet_runtime::RuntimeError) -> String {
    match e {
        signet_runtime::RuntimeError::Config(message) => message,
        other => other.to_string(),
    }
}

/// Turns a command's result into its exit code, printing the error (with its
/// chain of causes, on one line) to stderr.
pub(crate) fn finish(command: &str, result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let code = if err.downcast_ref::<Negative>().is_some() {
                1
            } else {
                2
            };
            eprintln!("signet {command}: {err:#}");
            ExitCode::from(code)
        }
    }
}

/// A runtime for one command's async work: current-thread is enough for a
/// handful of store calls and keeps start-up cheap.
pub(crate) fn block_on<T>(
    future: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    runtime.block_on(future)
}

/// The wall clock in unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
