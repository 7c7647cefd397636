//! Leader election for the services that run on one node at a time
//! (documented on [`LeaderElector`]).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use signet_store::{LeaderLease, Store, StoreError};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::clock::{duration_ms, Clock, SystemClock};
use crate::shutdown::{Shutdown, ShutdownSignal};

/// Default time to live of the lease.
pub const DEFAULT_LEADER_TTL: Duration = Duration::from_secs(15);
/// Shortest time to live accepted (shorter ones are raised to it).
pub const MIN_LEADER_TTL: Duration = Duration::from_millis(30);
/// How long stopping services may take before they are aborted.
pub const SERVICE_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether this node leads, and in which term.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Leadership {
    /// This node holds the lease and runs the services.
    pub leading: bool,
    /// The lease's term while leading (it goes up each time the holder
    /// changes).
    pub term: Option<u64>,
    /// Why this node last stopped leading; `None` while leading and before
    /// it ever led.
    pub stepped_down: Option<StepDown>,
}

/// Why a node stopped leading: what a line about it may truthfully say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StepDown {
    /// Another node holds the lease now and runs the services.
    TakenOver,
    /// Renewals failed (the store) until the lease was about to run out;
    /// no other node is known to hold it.
    LeaseLapsed,
    /// This node gave the role up ([`LeaderElector::resign`]), as it does
    /// when its process shuts down.
    Resigned,
}

type ServiceFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;
type ServiceFn = Box<dyn Fn(ShutdownSignal) -> ServiceFuture + Send + Sync + 'static>;

/// A service run while leading: its name and how to start it.
struct Service {
    name: String,
    start: ServiceFn,
}

/// The services started for the current term.
struct Running {
    stop: Shutdown,
    tasks: JoinSet<()>,
    /// Which service each task runs, to restart one that ends on its own.
    by_task: HashMap<tokio::task::Id, usize>,
}

/// Runs services only while this node holds the lease on a role.
///
/// Leader election for the services that should run on one node at a time
/// (scheduler and callbacks under one role, the pruner under another: see
/// [`Node`](crate::Node), which builds the electors).
///
/// A [`LeaderElector`] holds a lease row in the store ([`Store::try_lead`])
/// for a role, renews it every third of its time to live, and runs its
/// services only while it holds the lease. When a renewal finds another
/// node holding the role, or renewals keep failing until the lease is about
/// to run out, it stops them. On graceful shutdown it stops them and
/// resigns, so another node takes over at once; a node that dies simply
/// stops renewing, and another takes over once the lease runs out, within
/// one time to live.
///
/// Leases are not fencing tokens: a leader paused longer than its lease
/// (a stopped VM, a long GC-like stall) may briefly overlap with the next
/// one. The services run under it are safe with that: the scheduler fires
/// each due time once through idempotency keys and a compare-and-set, and
/// rescuing or pruning twice changes nothing. The election is there to
/// avoid wasted work and duplicated log lines, not to guard correctness.
///
/// ```no_run
/// # async fn demo(store: std::sync::Arc<dyn signet_store::Store>) {
/// use signet_runtime::{LeaderElector, Pruner, Shutdown};
///
/// let pruner_store = store.clone();
/// let elector = LeaderElector::new(store, "maintenance", signet_runtime::default_node_id())
///     .service("pruner", move |stop| Pruner::new(pruner_store.clone()).run(stop));
/// let mut leading = elector.subscribe();
/// let shutdown = Shutdown::new();
/// tokio::spawn(elector.run(shutdown.signal()));
/// leading.wait_for(|l| l.leading).await.ok();
/// # }
/// ```
pub struct LeaderElector {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    role: String,
    node_id: String,
    ttl: Duration,
    renew_interval: Option<Duration>,
    services: Vec<Service>,
    status: watch::Sender<Leadership>,
    lease: Option<LeaderLease>,
    running: Option<Running>,
}

impl fmt::Debug for LeaderElector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaderElector")
            .field("role", &self.role)
            .field("node_id", &self.node_id)
            .field("ttl", &self.ttl)
            .field("renew_interval", &self.renew_every())
            .field(
                "services",
                &self.services.iter().map(|s| &s.name).collect::<Vec<_>>(),
            )
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

/// A node id unique enough to tell processes apart: the process id and 48
/// random bits (`node-<pid>-<hex>`).
pub fn default_node_id() -> String {
    let random: u64 = rand::random::<u64>() & 0xFFFF_FFFF_FFFF;
    format!("node-{}-{random:012x}", std::process::id())
}

impl LeaderElector {
    /// An elector for `role` as `node_id`, with the default time to live
    /// ([`DEFAULT_LEADER_TTL`]), renewing every third of it, on the system
    /// clock, with no services yet.
    pub fn new(store: Arc<dyn Store>, role: impl Into<String>, node_id: impl Into<String>) -> Self {
        let (status, _) = watch::channel(Leadership::default());
        Self {
            store,
            clock: Arc::new(SystemClock),
            role: role.into(),
            node_id: node_id.into(),
            ttl: DEFAULT_LEADER_TTL,
            renew_interval: None,
            services: Vec::new(),
            status,
            lease: None,
            running: None,
        }
    }

    /// How long the lease lasts without renewal: how long a dead leader
    /// holds the role at most.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl.max(MIN_LEADER_TTL);
        self
    }

    /// How often to renew (default a third of the time to live; capped at
    /// half of it so one failed renewal never loses the lease).
    pub fn renew_interval(mut self, interval: Duration) -> Self {
        self.renew_interval = Some(interval.max(Duration::from_millis(1)));
        self
    }

    /// The clock (tests pass a [`ManualClock`](crate::ManualClock)).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Adds a service, started with a fresh shutdown signal each time this
    /// node gains the lease and stopped through it when the lease is lost.
    /// It must return once its signal fires. One that ends on its own while
    /// this node leads is started again at the next renewal.
    pub fn service<F, Fut>(mut self, name: impl Into<String>, start: F) -> Self
    where
        F: Fn(ShutdownSignal) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.services.push(Service {
            name: name.into(),
            start: Box::new(move |signal| Box::pin(start(signal))),
        });
        self
    }

    /// The role.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The lease's time to live.
    pub fn lease_ttl(&self) -> Duration {
        self.ttl
    }

    /// The names of the services run while leading.
    pub fn service_names(&self) -> Vec<&str> {
        self.services.iter().map(|s| s.name.as_str()).collect()
    }

    /// The time between renewals.
    pub fn renew_every(&self) -> Duration {
        let default = self.ttl / 3;
        self.renew_interval
            .unwrap_or(default)
            .min(self.ttl / 2)
            .max(Duration::from_millis(1))
    }

    /// A receiver of this node's leadership: changes when it gains or loses
    /// the lease.
    pub fn subscribe(&self) -> watch::Receiver<Leadership> {
        self.status.subscribe()
    }

    /// Whether this node leads now.
    pub fn is_leader(&self) -> bool {
        self.status.borrow().leading
    }

    /// The lease held, while leading.
    pub fn lease(&self) -> Option<&LeaderLease> {
        self.lease.as_ref()
    }

    /// One round: takes or renews the lease, and starts or stops the
    /// services to match. Returns whether this node leads afterwards.
    ///
    /// On a store error this node keeps leading while its lease surely
    /// still runs past the next renewal, and steps down otherwise; the
    /// error is returned either way.
    pub async fn step(&mut self) -> Result<bool, StoreError> {
        let now = self.clock.now_ms();
        let ttl_ms = duration_ms(self.ttl);
        match self
            .store
            .try_lead(&self.role, &self.node_id, ttl_ms, now)
            .await
        {
            Ok(Some(lease)) => {
                let term_changed = self.lease.as_ref().is_some_and(|l| l.term != lease.term);
                if self.running.is_none() {
                    tracing::info!(role = %self.role, node = %self.node_id, term = lease.term, services = ?self.service_names(), "this node now leads; starting its services");
                    self.start_services();
                } else if term_changed {
                    // Held again after someone else held it in between
                    // (this node stalled past its lease). The services are
                    // safe to keep running; say so.
                    tracing::info!(role = %self.role, node = %self.node_id, term = lease.term, "leadership was lost and taken back in a new term");
                }
                self.restart_ended_services();
                let term = lease.term;
                self.lease = Some(lease);
                self.publish(Leadership {
                    leading: true,
                    term: Some(term),
                    stepped_down: None,
                });
                Ok(true)
            }
            Ok(None) => {
                let stepped_down = if self.running.is_some() {
                    let term = self.lease.as_ref().map(|l| l.term);
                    tracing::info!(role = %self.role, node = %self.node_id, term = ?term, "this node lost leadership to another; stopping its services");
                    self.stop_services().await;
                    Some(StepDown::TakenOver)
                } else {
                    self.status.borrow().stepped_down
                };
                self.lease = None;
                self.publish(Leadership {
                    stepped_down,
                    ..Leadership::default()
                });
                Ok(false)
            }
            Err(e) => {
                let renew_ms = duration_ms(self.renew_every());
                let lapses = self
                    .lease
                    .as_ref()
                    .is_none_or(|l| l.expires_at_ms <= now.saturating_add(renew_ms));
                if self.running.is_some() && lapses {
                    tracing::warn!(role = %self.role, node = %self.node_id, error = %e, "cannot renew the leader lease and it runs out before the next try; stopping services");
                    self.stop_services().await;
                    self.lease = None;
                    self.publish(Leadership {
                        stepped_down: Some(StepDown::LeaseLapsed),
                        ..Leadership::default()
                    });
                } else {
                    tracing::warn!(role = %self.role, node = %self.node_id, error = %e, "leader lease renewal failed; will retry");
                }
                Err(e)
            }
        }
    }

    /// Stops the services and gives up the lease if this node holds it, so
    /// another node takes over at once.
    pub async fn resign(&mut self) -> Result<(), StoreError> {
        let was_leading = self.running.is_some() || self.lease.is_some();
        if self.running.is_some() {
            self.stop_services().await;
        }
        let held = self.lease.take();
        self.publish(Leadership {
            stepped_down: if was_leading {
                Some(StepDown::Resigned)
            } else {
                self.status.borrow().stepped_down
            },
            ..Leadership::default()
        });
        if let Some(lease) = held {
            self.store.resign(&self.role, &self.node_id).await?;
            tracing::info!(role = %self.role, node = %self.node_id, term = lease.term, "resigned leadership");
        }
        Ok(())
    }

    /// Renews (or tries to take) the lease every renew interval until
    /// `shutdown` fires, running the services while leading; then stops
    /// them and resigns.
    pub async fn run(mut self, mut shutdown: ShutdownSignal) {
        tracing::info!(role = %self.role, node = %self.node_id, ttl_ms = duration_ms(self.ttl), "leader election started");
        loop {
            // Errors are logged by `step`.
            let _ = self.step().await;
            tokio::select! {
                _ = shutdown.triggered() => break,
                _ = tokio::time::sleep(self.renew_every()) => {}
            }
        }
        if let Err(e) = self.resign().await {
            tracing::warn!(role = %self.role, node = %self.node_id, error = %e, "could not resign; another node takes over when the lease runs out");
        }
    }

    fn publish(&self, leadership: Leadership) {
        self.status.send_if_modified(|current| {
            let changed = *current != leadership;
            *current = leadership;
            changed
        });
    }

    fn start_services(&mut self) {
        let stop = Shutdown::new();
        let mut running = Running {
            stop,
            tasks: JoinSet::new(),
            by_task: HashMap::new(),
        };
        for index in 0..self.services.len() {
            self.spawn_service(&mut running, index);
        }
        self.running = Some(running);
    }

    fn spawn_service(&self, running: &mut Running, index: usize) {
        let service = &self.services[index];
        let handle = running.tasks.spawn((service.start)(running.stop.signal()));
        running.by_task.insert(handle.id(), index);
    }

    /// Starts again any service that ended while this node leads.
    fn restart_ended_services(&mut self) {
        let Some(mut running) = self.running.take() else {
            return;
        };
        while let Some(ended) = running.tasks.try_join_next_with_id() {
            let (id, outcome) = match ended {
                Ok((id, ())) => (id, None),
                Err(e) => (e.id(), Some(e)),
            };
            if let Some(index) = running.by_task.remove(&id) {
                let name = &self.services[index].name;
                match outcome {
                    Some(e) => {
                        tracing::error!(service = %name, error = %e, "leader service ended abnormally; starting it again")
                    }
                    None => {
                        tracing::warn!(service = %name, "leader service returned while leading; starting it again")
                    }
                }
                self.spawn_service(&mut running, index);
            }
        }
        self.running = Some(running);
    }

    async fn stop_services(&mut self) {
        let Some(mut running) = self.running.take() else {
            return;
        };
        running.stop.trigger();
        let drained = tokio::time::timeout(SERVICE_STOP_TIMEOUT, async {
            while let Some(joined) = running.tasks.join_next().await {
                if let Err(e) = joined {
                    tracing::error!(error = %e, "a leader service ended abnormally while stopping");
                }
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                timeout_s = SERVICE_STOP_TIMEOUT.as_secs(),
                "leader services did not stop in time; aborting them"
            );
            running.tasks.abort_all();
            while running.tasks.join_next().await.is_some() {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_differ() {
        let a = default_node_id();
        assert!(a.starts_with(&format!("node-{}-", std::process::id())));
        assert_ne!(a, default_node_id());
    }
}
