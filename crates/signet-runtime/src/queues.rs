//! Queues as an operator sees and steers them: the overview (tasks per
//! state, push binding, pause) that `GET /v1/queues`, the console and
//! `signet queues` show, and pausing and resuming a queue. Each is one
//! function here, called by the HTTP API, the console and the CLI alike.

use signet_store::{is_listed_queue, rules, PausedQueue, PushBinding, QueueCounts, Store};

use crate::error::RuntimeError;

/// One queue as listed: its tasks per state, its push binding and its
/// pause.
#[derive(Clone, Debug)]
pub struct QueueOverview {
    /// Tasks per state (`queue` names the queue; no counts for a queue
    /// listed only because it is bound or paused).
    pub counts: QueueCounts,
    /// The push endpoint it is bound to, if any.
    pub push: Option<PushBinding>,
    /// Its pause, while it is paused.
    pub pause: Option<PausedQueue>,
}

impl QueueOverview {
    /// The queue's name.
    pub fn queue(&self) -> &str {
        &self.counts.queue
    }
}

/// Every queue that holds a task, is bound to a push endpoint or is
/// paused, by name: only `only` when given (any queue, Signet's own
/// included), else every queue but Signet's own `signet:messages` unless
/// `include_internal` (the listing rule of [`is_listed_queue`]).
pub async fn queue_overview(
    store: &dyn Store,
    only: Option<&str>,
    include_internal: bool,
) -> Result<Vec<QueueOverview>, RuntimeError> {
    if let Some(queue) = only {
        rules::queue_name(queue)?;
    }
    let listed = |queue: &str| is_listed_queue(queue, only, include_internal);
    let mut out: Vec<QueueOverview> = store
        .counts()
        .await?
        .into_iter()
        .filter(|c| listed(&c.queue))
        .map(|counts| QueueOverview {
            counts,
            push: None,
            pause: None,
        })
        .collect();
    fn entry<'a>(out: &'a mut Vec<QueueOverview>, queue: &str) -> &'a mut QueueOverview {
        let at = match out.iter().position(|o| o.queue() == queue) {
            Some(at) => at,
            None => {
                out.push(QueueOverview {
                    counts: QueueCounts {
                        queue: queue.to_owned(),
                        ..QueueCounts::default()
                    },
                    push: None,
                    pause: None,
                });
                out.len() - 1
            }
        };
        &mut out[at]
    }
    // A bound or paused queue is listed even before it holds a task.
    for b in store.list_push_bindings().await? {
        if listed(&b.queue) {
            let queue = b.queue.clone();
            entry(&mut out, &queue).push = Some(b);
        }
    }
    for p in store.paused_queues().await? {
        if listed(&p.queue) {
            let queue = p.queue.clone();
            entry(&mut out, &queue).pause = Some(p);
        }
    }
    out.sort_by(|a, b| a.queue().cmp(b.queue()));
    Ok(out)
}

/// `queue` as [`queue_overview`] lists it, with no counts when it holds
/// no task and is neither bound nor paused.
pub async fn queue_overview_of(
    store: &dyn Store,
    queue: &str,
) -> Result<QueueOverview, RuntimeError> {
    let found = queue_overview(store, Some(queue), true).await?.pop();
    Ok(found.unwrap_or_else(|| QueueOverview {
        counts: QueueCounts {
            queue: queue.to_owned(),
            ..QueueCounts::default()
        },
        push: None,
        pause: None,
    }))
}

/// Pauses `queue` for every node: from the next claim on, no worker (on
/// the store or over HTTP), push-queue drain or, for `signet:messages`,
/// message delivery takes work from it. Running work finishes as usual.
/// Pausing a paused queue changes nothing and returns the first pause.
/// `reason` is optional ([`rules::pause_reason`]).
pub async fn pause_queue(
    store: &dyn Store,
    queue: &str,
    actor: &str,
    reason: Option<&str>,
    now_ms: i64,
) -> Result<PausedQueue, RuntimeError> {
    rules::queue_name(queue)?;
    if let Some(reason) = reason {
        rules::pause_reason(reason)?;
    }
    let pause = store.pause_queue(queue, actor, reason, now_ms).await?;
    tracing::info!(
        queue,
        actor,
        paused_by = %pause.paused_by,
        paused_at_ms = pause.paused_at_ms,
        "queue paused"
    );
    Ok(pause)
}

/// Resumes `queue`: claims take from it again at once, and workers waiting
/// on it wake. Returns the pause it ended, `None` when the queue was not
/// paused (not an error: resuming is idempotent).
pub async fn resume_queue(
    store: &dyn Store,
    queue: &str,
    actor: &str,
) -> Result<Option<PausedQueue>, RuntimeError> {
    rules::queue_name(queue)?;
    let ended = store.resume_queue(queue).await?;
    match &ended {
        Some(p) => tracing::info!(
            queue,
            actor,
            paused_by = %p.paused_by,
            paused_at_ms = p.paused_at_ms,
            "queue resumed"
        ),
        None => tracing::debug!(queue, actor, "resume of a queue that was not paused"),
    }
    Ok(ended)
}
