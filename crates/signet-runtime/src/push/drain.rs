//! Draining bound queues: one claim loop per binding on this node, started,
//! restarted and stopped as the bindings in the store change.
//!
//! ```text
//! every BINDINGS_REFRESH: list_push_bindings ─► new binding: start its loop
//!                                            ├► changed: stop the old loop, start anew
//!                                            └► gone: stop its loop (in-flight pushes finish)
//! loop of one binding = the shared claim loop (claim ≤ concurrency, woken by new work)
//!                       ─► attempt::push per task
//! ```
//!
//! A binding counts as changed when what it pushes changes (URL, target,
//! timeout, concurrency, signed answers), not when it is merely written
//! again. A loop stopped because its binding changed or went away claims
//! no more, and its pushes in flight run to their end: the binding's
//! `timeout_ms` bounds each request (see `retire_grace`). Only the
//! dispatcher's shutdown cuts them short, after its grace period.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use signet_store::{PushBinding, Store, StoreError};
use tokio::task::JoinSet;

use super::attempt::{push, Pushes};
use crate::claim::{ClaimLoop, ClaimSettings, Claimed, Consumer};
use crate::clock::Clock;
use crate::delivery::HttpClient;
use crate::error::RuntimeError;
use crate::shutdown::{Shutdown, ShutdownSignal};
use crate::targets::TargetCache;

/// How often a node reads the bindings again: a queue bound, changed or
/// unbound (on any node) is drained accordingly within this.
pub const BINDINGS_REFRESH: Duration = Duration::from_secs(2);
/// Lease on a task being pushed; heartbeats keep it while the request runs
/// (a binding's timeout may be far longer), and a node that dies mid-push
/// loses it within this, so the rescuer hands the task out again.
pub const PUSH_LEASE: Duration = Duration::from_secs(10);
/// Time between heartbeats of a push's lease.
pub const PUSH_HEARTBEAT: Duration = Duration::from_secs(3);
/// Time a stopped loop's push gets beyond its binding's `timeout_ms` to
/// write its outcome (store writes, retried on transient errors).
const RECORD_MARGIN: Duration = Duration::from_secs(10);

/// What every push of this node shares.
pub(crate) struct PushShared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) http: HttpClient,
    pub(crate) targets: TargetCache,
    /// The lease owner prefix (`<dispatcher id>`); each binding's loop
    /// owns its leases as `<prefix>/push:<queue>`.
    pub(crate) owner: Arc<str>,
    /// Longest wait for new work before claiming again.
    pub(crate) poll_interval: Duration,
    /// How long in-flight pushes may finish on shutdown (a loop stopped
    /// for a changed or removed binding waits for them: `retire_grace`).
    pub(crate) grace: Duration,
}

/// The push side of the dispatcher: drains every bound queue.
pub(crate) struct PushDrain {
    shared: Arc<PushShared>,
}

/// A running loop of one binding.
struct Running {
    binding: PushBinding,
    stop: Shutdown,
}

/// Whether two bindings push the same way: every field but the creation
/// and update times, so writing a binding again unchanged leaves its loop
/// (and the pushes in flight) alone. Destructured in full: a field added
/// to [`PushBinding`] must be placed here on one side or the other.
fn same_binding(a: &PushBinding, b: &PushBinding) -> bool {
    let PushBinding {
        queue,
        url,
        target_id,
        timeout_ms,
        concurrency,
        require_signed_response,
        created_at_ms: _,
        updated_at_ms: _,
    } = a;
    *queue == b.queue
        && *url == b.url
        && *target_id == b.target_id
        && *timeout_ms == b.timeout_ms
        && *concurrency == b.concurrency
        && *require_signed_response == b.require_signed_response
}

/// How long a stopped loop lets its pushes in flight run: each request
/// ends within the binding's `timeout_ms`, then its outcome is written.
/// Never less than the dispatcher's own grace.
pub(super) fn retire_grace(binding: &PushBinding, grace: Duration) -> Duration {
    (Duration::from_millis(u64::from(binding.timeout_ms)) + RECORD_MARGIN).max(grace)
}

/// Where a binding pushes, for the logs: scheme, host and port only. The
/// path and query may hold the endpoint's credentials (the API shows the
/// query to admin keys only).
pub(super) fn shown_endpoint(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => u.origin().ascii_serialization(),
        Err(_) => "(not a URL)".to_owned(),
    }
}

impl PushDrain {
    pub(crate) fn new(shared: PushShared) -> Self {
        Self {
            shared: Arc::new(shared),
        }
    }

    /// Drains bound queues until `shutdown` fires, then stops every loop
    /// (in-flight pushes get the grace period) and returns once all ended.
    pub(crate) async fn run(self, mut shutdown: ShutdownSignal) -> Result<(), RuntimeError> {
        let mut running: HashMap<String, Running> = HashMap::new();
        let mut loops: JoinSet<(String, Result<(), RuntimeError>)> = JoinSet::new();
        // The pushes of every loop started, running or stopping: cut short
        // at the end of the shutdown grace.
        let mut started: Vec<Weak<Pushes>> = Vec::new();
        let mut result = Ok(());
        while !shutdown.is_triggered() {
            started.retain(|p| p.strong_count() > 0);
            match self.shared.store.list_push_bindings().await {
                Ok(bindings) => self.apply(bindings, &mut running, &mut loops, &mut started),
                Err(StoreError::Closed) => {
                    tracing::error!("the store was closed; push queues are no longer drained");
                    result = Err(RuntimeError::Store(StoreError::Closed));
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the push bindings; trying again")
                }
            }
            // Reap loops that ended on their own (a closed store).
            while let Some(joined) = loops.try_join_next() {
                if let Ok((queue, Err(e))) = joined {
                    tracing::error!(%queue, error = %e, "a push loop stopped");
                    running.remove(&queue);
                    result = Err(e);
                }
            }
            if result.is_err() {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(BINDINGS_REFRESH) => {}
                () = shutdown.triggered() => {}
            }
        }
        for r in running.values() {
            r.stop.trigger();
        }
        // Every loop waits for its pushes as long as they may take; the
        // shutdown gives them the dispatcher's grace, then releases them.
        let all_ended = async { while loops.join_next().await.is_some() {} };
        if tokio::time::timeout(self.shared.grace, all_ended)
            .await
            .is_err()
        {
            tracing::warn!(grace = ?self.shared.grace, "grace period over; releasing pushes still running");
            for pushes in started.iter().filter_map(Weak::upgrade) {
                pushes.leases.hard_stop();
            }
            while loops.join_next().await.is_some() {}
        }
        result
    }

    /// Starts, restarts and stops loops to match `bindings`.
    fn apply(
        &self,
        bindings: Vec<PushBinding>,
        running: &mut HashMap<String, Running>,
        loops: &mut JoinSet<(String, Result<(), RuntimeError>)>,
        started: &mut Vec<Weak<Pushes>>,
    ) {
        let wanted: HashMap<String, PushBinding> =
            bindings.into_iter().map(|b| (b.queue.clone(), b)).collect();
        running.retain(|queue, r| {
            let keep = wanted
                .get(queue)
                .is_some_and(|b| same_binding(b, &r.binding));
            if !keep {
                tracing::info!(%queue, "push binding changed or removed; stopping its loop");
                r.stop.trigger();
            }
            keep
        });
        for (queue, binding) in wanted {
            if running.contains_key(&queue) {
                continue;
            }
            match self.start(&binding, loops) {
                Ok((stop, pushes)) => {
                    started.push(pushes);
                    running.insert(queue, Running { binding, stop });
                }
                Err(e) => {
                    tracing::error!(%queue, error = %e, "cannot drain this bound queue");
                }
            }
        }
    }

    /// Starts the loop of one binding.
    fn start(
        &self,
        binding: &PushBinding,
        loops: &mut JoinSet<(String, Result<(), RuntimeError>)>,
    ) -> Result<(Shutdown, Weak<Pushes>), RuntimeError> {
        let s = &self.shared;
        let owner: Arc<str> = Arc::from(format!("{}/push:{}", s.owner, binding.queue));
        let (claims, leases) = ClaimLoop::new(ClaimSettings {
            role: "push",
            store: Arc::clone(&s.store),
            clock: Arc::clone(&s.clock),
            queues: vec![binding.queue.clone()],
            owner: Arc::clone(&owner),
            // At most MAX_PUSH_CONCURRENCY (checked by every store).
            concurrency: usize::try_from(binding.concurrency).unwrap_or(1),
            max_batch: usize::try_from(binding.concurrency).unwrap_or(1),
            poll_interval: s.poll_interval,
            // Stopped for a changed or removed binding: pushes run to
            // their end. On shutdown `run` cuts this to the grace.
            grace: retire_grace(binding, s.grace),
            lease: PUSH_LEASE,
            heartbeat: PUSH_HEARTBEAT,
        })?;
        let stop = Shutdown::new();
        let signal = stop.signal();
        let drainer = Drainer {
            pushes: Arc::new(Pushes {
                shared: Arc::clone(s),
                binding: binding.clone(),
                leases,
                owner,
            }),
        };
        let pushes = Arc::downgrade(&drainer.pushes);
        let queue = binding.queue.clone();
        tracing::info!(%queue, endpoint = %shown_endpoint(&binding.url), concurrency = binding.concurrency, "draining a bound queue");
        loops.spawn(async move {
            let r = claims.run(&drainer, &drainer.pushes.leases, signal).await;
            (queue, r)
        });
        Ok((stop, pushes))
    }
}

/// The claim loop's consumer: one push per claimed task.
struct Drainer {
    pushes: Arc<Pushes>,
}

impl Consumer for Drainer {
    async fn start(&self, batch: Vec<Claimed>) {
        for Claimed { row, slot } in batch {
            tokio::spawn(push(Arc::clone(&self.pushes), row, slot));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding() -> PushBinding {
        PushBinding {
            queue: "reports".into(),
            url: "https://user.example:8443/hooks/T0/s3cret-path?token=s3cret-query".into(),
            target_id: "tgt_1".into(),
            timeout_ms: 30_000,
            concurrency: 10,
            require_signed_response: false,
            created_at_ms: 1_000,
            updated_at_ms: 1_000,
        }
    }

    #[test]
    fn writing_a_binding_again_unchanged_is_no_change() {
        let a = binding();
        let again = PushBinding {
            updated_at_ms: 9_000,
            created_at_ms: 2_000,
            ..binding()
        };
        assert!(same_binding(&a, &again));
        let changes: [fn(&mut PushBinding); 5] = [
            |b| b.url.push('x'),
            |b| b.target_id = "tgt_2".into(),
            |b| b.timeout_ms += 1,
            |b| b.concurrency += 1,
            |b| b.require_signed_response = true,
        ];
        for change in changes {
            let mut b = binding();
            change(&mut b);
            assert!(!same_binding(&a, &b), "{b:?}");
        }
    }

    #[test]
    fn a_stopped_loop_waits_for_the_bindings_timeout() {
        let b = binding();
        assert_eq!(
            retire_grace(&b, Duration::from_secs(10)),
            Duration::from_secs(30) + RECORD_MARGIN
        );
        // Never shorter than the dispatcher's grace.
        assert_eq!(
            retire_grace(&b, Duration::from_secs(600)),
            Duration::from_secs(600)
        );
    }

    #[test]
    fn logs_show_only_the_endpoints_origin() {
        let shown = shown_endpoint(&binding().url);
        assert_eq!(shown, "https://user.example:8443");
        assert_eq!(
            shown_endpoint("http://127.0.0.1/push?code=x"),
            "http://127.0.0.1"
        );
        assert_eq!(shown_endpoint("::"), "(not a URL)");
    }
}
