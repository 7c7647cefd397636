//! One module per subcommand. Each exposes `Args` (or `Command`) and
//! `run(..) -> ExitCode`: 0 success, 1 a negative answer (e.g. invalid
//! signature), 2 usage, configuration or key errors.

pub(crate) mod api_keys;
pub(crate) mod bench;
pub(crate) mod dlq;
pub(crate) mod enqueue;
pub(crate) mod keys;
pub(crate) mod queues;
pub(crate) mod serve;
pub(crate) mod sign;
pub(crate) mod tasks;
pub(crate) mod verify;
