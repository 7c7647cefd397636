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

use std::collections::HashMap;
use std::sync::Arc;
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
    /// How long in-flight pushes may finish on shutdown or unbinding.
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
        let mut result = Ok(());
        while !shutdown.is_triggered() {
            match self.shared.store.list_push_bindings().await {
                Ok(bindings) => self.apply(bindings, &mut running, &mut loops),
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
        while loops.join_next().await.is_some() {}
        result
    }

    /// Starts, restarts and stops loops to match `bindings`.
    fn apply(
        &self,
        bindings: Vec<PushBinding>,
        running: &mut HashMap<String, Running>,
        loops: &mut JoinSet<(String, Result<(), RuntimeError>)>,
    ) {
        let wanted: HashMap<String, PushBinding> =
            bindings.into_iter().map(|b| (b.queue.clone(), b)).collect();
        running.retain(|queue, r| {
            let keep = wanted.get(queue) == Some(&r.binding);
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
                Ok(stop) => {
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
    ) -> Result<Shutdown, RuntimeError> {
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
            grace: s.grace,
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
        let queue = binding.queue.clone();
        tracing::info!(%queue, endpoint = %shown_endpoint(&binding.url), concurrency = binding.concurrency, "draining a bound queue");
        loops.spawn(async move {
            let r = claims.run(&drainer, &drainer.pushes.leases, signal).await;
            (queue, r)
        });
        Ok(stop)
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
