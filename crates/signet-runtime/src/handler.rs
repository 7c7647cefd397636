//! Task handlers: typed async functions registered by task name.
//!
//! A handler is `async fn(TaskContext, Args) -> Result<Option<serde_json::Value>, HandlerError>`
//! where `Args: DeserializeOwned`. The worker decodes the task's args (the
//! exact bytes the producer signed) into `Args`; args that do not decode
//! dead-letter the task with `payload-invalid` without calling the handler.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;

/// What a handler sees about the task it runs.
#[derive(Clone, Debug)]
pub struct TaskContext {
    meta: Arc<TaskMeta>,
}

/// The per-task facts shared by the handler's context and the worker's
/// bookkeeping (one allocation per task).
#[derive(Debug)]
pub(crate) struct TaskMeta {
    pub(crate) id: String,
    pub(crate) queue: String,
    pub(crate) name: String,
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) attempt: u32,
    pub(crate) max_attempts: u32,
    pub(crate) worker_id: Arc<str>,
}

impl TaskContext {
    pub(crate) fn new(meta: Arc<TaskMeta>) -> Self {
        Self { meta }
    }

    /// The task id (`task_…`).
    pub fn id(&self) -> &str {
        &self.meta.id
    }

    /// The queue it came from.
    pub fn queue(&self) -> &str {
        &self.meta.queue
    }

    /// The task name it was registered under.
    pub fn name(&self) -> &str {
        &self.meta.name
    }

    /// This attempt's number (1 for the first run).
    pub fn attempt(&self) -> u32 {
        self.meta.attempt
    }

    /// Attempts allowed in total.
    pub fn max_attempts(&self) -> u32 {
        self.meta.max_attempts
    }

    /// Whether this is the last allowed attempt.
    pub fn is_last_attempt(&self) -> bool {
        self.meta.attempt >= self.meta.max_attempts
    }

    /// The signed headers (lower-case names).
    pub fn headers(&self) -> &BTreeMap<String, String> {
        &self.meta.headers
    }

    /// One signed header by (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.meta.headers.get(name).map(String::as_str)
    }
}

/// Why a handler failed.
///
/// A *retryable* error (the default, and what `?` on any error gives) makes
/// the attempt fail and the task retry with backoff until its attempts are
/// used up. A *rejected* error ([`HandlerError::reject`]) says the input can
/// never succeed: the task is dead-lettered at once with `payload-invalid`.
pub struct HandlerError {
    message: String,
    reject: bool,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl HandlerError {
    /// A failed attempt that may succeed if retried.
    pub fn retry(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            reject: false,
            source: None,
        }
    }

    /// The input is unacceptable: dead-letter with `payload-invalid`, no retry.
    pub fn reject(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            reject: true,
            source: None,
        }
    }

    /// Whether this error dead-letters the task at once.
    pub fn is_reject(&self) -> bool {
        self.reject
    }

    /// The message, with the chain of causes appended (`msg: cause: cause`).
    pub fn message_chain(&self) -> String {
        let mut out = self.message.clone();
        let mut next: Option<&(dyn StdError + 'static)> = match &self.source {
            Some(s) => Some(s.as_ref()),
            None => None,
        };
        while let Some(e) = next {
            let text = e.to_string();
            if !out.ends_with(&text) {
                out.push_str(": ");
                out.push_str(&text);
            }
            next = e.source();
        }
        out
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerError")
            .field("message", &self.message)
            .field("reject", &self.reject)
            .field("source", &self.source)
            .finish()
    }
}

/// Any error converts into a retryable [`HandlerError`], so handlers can use
/// `?`. (`HandlerError` itself does not implement `std::error::Error`, which
/// is what makes this blanket conversion possible, as with `anyhow::Error`.)
impl<E> From<E> for HandlerError
where
    E: StdError + Send + Sync + 'static,
{
    fn from(e: E) -> Self {
        Self {
            message: e.to_string(),
            reject: false,
            source: Some(Box::new(e)),
        }
    }
}

/// What a handler returns.
pub type HandlerResult = Result<Option<serde_json::Value>, HandlerError>;

/// How one run of a handler ended, before the worker decides what that means.
pub(crate) enum RunFailure {
    /// The args did not decode into the handler's type.
    PayloadInvalid(String),
    /// The handler returned an error.
    Handler(HandlerError),
}

pub(crate) type RunFuture =
    Pin<Box<dyn Future<Output = Result<Option<Vec<u8>>, RunFailure>> + Send + 'static>>;

/// A handler with its argument type erased.
pub(crate) trait ErasedHandler: Send + Sync + 'static {
    /// Builds the future that decodes `args` and runs the handler. Nothing
    /// runs until the future is polled (so a panic happens inside the poll,
    /// where the worker catches it).
    fn call(&self, ctx: TaskContext, args: Vec<u8>) -> RunFuture;
}

pub(crate) struct TypedHandler<Args, F> {
    f: Arc<F>,
    _args: std::marker::PhantomData<fn() -> Args>,
}

impl<Args, F> TypedHandler<Args, F> {
    pub(crate) fn new(f: F) -> Self {
        Self {
            f: Arc::new(f),
            _args: std::marker::PhantomData,
        }
    }
}

impl<Args, F, Fut> ErasedHandler for TypedHandler<Args, F>
where
    Args: DeserializeOwned + Send + 'static,
    F: Fn(TaskContext, Args) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    fn call(&self, ctx: TaskContext, args: Vec<u8>) -> RunFuture {
        let f = Arc::clone(&self.f);
        Box::pin(async move {
            let args: Args = serde_json::from_slice(&args).map_err(|e| {
                RunFailure::PayloadInvalid(format!(
                    "args do not match what handler {:?} expects: {e}",
                    ctx.name()
                ))
            })?;
            match f(ctx, args).await {
                Ok(None) => Ok(None),
                Ok(Some(value)) => serde_json::to_vec(&value).map(Some).map_err(|e| {
                    RunFailure::Handler(HandlerError::retry(format!(
                        "handler result could not be serialised: {e}"
                    )))
                }),
                Err(e) => Err(RunFailure::Handler(e)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> TaskContext {
        TaskContext::new(Arc::new(TaskMeta {
            id: "task_1".into(),
            queue: "q".into(),
            name: "add".into(),
            headers: BTreeMap::from([("tenant".to_owned(), "acme".to_owned())]),
            attempt: 2,
            max_attempts: 2,
            worker_id: Arc::from("w"),
        }))
    }

    #[derive(serde::Deserialize)]
    struct Add {
        a: i64,
        b: i64,
    }

    async fn add(_ctx: TaskContext, args: Add) -> HandlerResult {
        Ok(Some(serde_json::json!({ "sum": args.a + args.b })))
    }

    #[tokio::test]
    async fn typed_handlers_decode_args_and_encode_results() {
        let h = TypedHandler::new(add);
        let out = h.call(ctx(), br#"{"a":2,"b":3}"#.to_vec()).await;
        assert_eq!(out.ok().flatten().unwrap(), br#"{"sum":5}"#.to_vec());
        match h.call(ctx(), br#"{"a":"x"}"#.to_vec()).await {
            Err(RunFailure::PayloadInvalid(m)) => assert!(m.contains("add"), "{m}"),
            _ => panic!("expected payload-invalid"),
        }
    }

    #[test]
    fn context_exposes_the_task() {
        let c = ctx();
        assert_eq!((c.id(), c.queue(), c.name()), ("task_1", "q", "add"));
        assert_eq!(c.header("tenant"), Some("acme"));
        assert!(c.is_last_attempt());
    }

    #[test]
    fn errors_convert_and_keep_their_chain() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e: HandlerError = io.into();
        assert!(!e.is_reject());
        assert_eq!(e.to_string(), "gone");
        assert!(HandlerError::reject("bad path").is_reject());
    }
}
