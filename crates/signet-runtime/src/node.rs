//! The node: the background services of one process, and where each runs
//! (documented on [`Node`]).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use signet_store::Store;
use tokio::task::JoinSet;

use crate::callbacks::CallbackService;
use crate::clock::{Clock, SystemClock};
use crate::dispatcher::Dispatcher;
use crate::error::RuntimeError;
use crate::leader::{LeaderElector, DEFAULT_LEADER_TTL};
use crate::metrics::QueueDepthReporter;
use crate::pruner::Pruner;
use crate::rescuer::Rescuer;
use crate::schedules::Scheduler;
use crate::shutdown::{Shutdown, ShutdownSignal};
use crate::worker::Worker;

/// The role whose leader runs the scheduler and the callbacks.
pub const SERVICES_ROLE: &str = "services";
/// The role whose leader runs the pruner.
pub const MAINTENANCE_ROLE: &str = "maintenance";

/// Where a service runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Placement {
    /// On every node that has it.
    EveryNode,
    /// Only on the node that holds the lease on this role.
    Leader(&'static str),
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Placement::EveryNode => f.write_str("every node"),
            Placement::Leader(role) => write!(f, "the leader of {role:?}"),
        }
    }
}

type NodeFuture = Pin<Box<dyn Future<Output = Result<(), RuntimeError>> + Send + 'static>>;
type EveryNodeStart = Box<dyn FnOnce(ShutdownSignal) -> NodeFuture + Send + 'static>;
type LeaderFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;
type LeaderStart = Box<dyn Fn(ShutdownSignal) -> LeaderFuture + Send + Sync + 'static>;

/// Builds a [`Node`].
pub struct NodeBuilder {
    store: Arc<dyn Store>,
    node_id: String,
    clock: Arc<dyn Clock>,
    leader_ttl: Duration,
    every_node: Vec<(String, EveryNodeStart)>,
    leader_only: Vec<(&'static str, String, LeaderStart)>,
}

impl NodeBuilder {
    /// How long a leader's lease lasts without renewal: a dead leader's
    /// services move to another node within it (default
    /// [`DEFAULT_LEADER_TTL`]).
    pub fn leader_ttl(mut self, ttl: Duration) -> Self {
        self.leader_ttl = ttl;
        self
    }

    /// The clock of the elections (tests pass a [`ManualClock`](crate::ManualClock)).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// A worker: on every node.
    pub fn worker(self, worker: Worker) -> Self {
        self.every_node("worker", move |stop| worker.run(stop))
    }

    /// The dispatcher: on every node.
    pub fn dispatcher(self, dispatcher: Dispatcher) -> Self {
        self.every_node("dispatcher", move |stop| dispatcher.run(stop))
    }

    /// The queue-depth reporter: on every node.
    pub fn queue_depth(self, reporter: QueueDepthReporter) -> Self {
        self.every_node("queue-depth", move |stop| async move {
            reporter.run(stop).await;
            Ok(())
        })
    }

    /// The scheduler, made afresh each time this node gains
    /// [`SERVICES_ROLE`].
    pub fn scheduler<F>(self, make: F) -> Self
    where
        F: Fn() -> Scheduler + Send + Sync + 'static,
    {
        self.leader_only(SERVICES_ROLE, "scheduler", move |stop| make().run(stop))
    }

    /// The callback service, on the leader of [`SERVICES_ROLE`].
    pub fn callbacks<F>(self, make: F) -> Self
    where
        F: Fn() -> CallbackService + Send + Sync + 'static,
    {
        self.leader_only(SERVICES_ROLE, "callbacks", move |stop| make().run(stop))
    }

    /// The rescuer: on every node. A rescue is one conditional update per
    /// expired lease, so passes on several nodes never rescue a row twice;
    /// running it everywhere means a killed node's work comes back one lease
    /// after the kill, without waiting for a `maintenance` hand-over too
    /// (a restarted `signet serve` waits out its own old leader lease).
    pub fn rescuer<F>(self, make: F) -> Self
    where
        F: FnOnce() -> Rescuer + Send + 'static,
    {
        self.every_node("rescuer", move |stop| async move {
            make().run(stop).await;
            Ok(())
        })
    }

    /// The pruner, on the leader of [`MAINTENANCE_ROLE`].
    pub fn pruner<F>(self, make: F) -> Self
    where
        F: Fn() -> Pruner + Send + Sync + 'static,
    {
        self.leader_only(MAINTENANCE_ROLE, "pruner", move |stop| make().run(stop))
    }

    /// Any other service on every node: started once, it must return once
    /// its signal fires. An error stops the node.
    pub fn every_node<F, Fut>(mut self, name: impl Into<String>, start: F) -> Self
    where
        F: FnOnce(ShutdownSignal) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), RuntimeError>> + Send + 'static,
    {
        self.every_node
            .push((name.into(), Box::new(move |stop| Box::pin(start(stop)))));
        self
    }

    /// Any other service on the leader of `role` only: started each time
    /// this node gains the role, stopped through its signal when it loses
    /// it (see [`LeaderElector::service`]).
    pub fn leader_only<F, Fut>(
        mut self,
        role: &'static str,
        name: impl Into<String>,
        start: F,
    ) -> Self
    where
        F: Fn(ShutdownSignal) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.leader_only.push((
            role,
            name.into(),
            Box::new(move |stop| Box::pin(start(stop))),
        ));
        self
    }

    /// The node: one elector per role that has services.
    pub fn build(self) -> Node {
        let mut placement: Vec<(String, Placement)> = self
            .every_node
            .iter()
            .map(|(name, _)| (name.clone(), Placement::EveryNode))
            .collect();
        let mut roles: Vec<(&'static str, Vec<(String, LeaderStart)>)> = Vec::new();
        for (role, name, start) in self.leader_only {
            placement.push((name.clone(), Placement::Leader(role)));
            match roles.iter_mut().find(|(r, _)| *r == role) {
                Some((_, services)) => services.push((name, start)),
                None => roles.push((role, vec![(name, start)])),
            }
        }
        let electors = roles
            .into_iter()
            .map(|(role, services)| {
                let elector =
                    LeaderElector::new(Arc::clone(&self.store), role, self.node_id.clone())
                        .ttl(self.leader_ttl)
                        .clock(Arc::clone(&self.clock));
                services
                    .into_iter()
                    .fold(elector, |e, (name, start)| e.service(name, start))
            })
            .collect();
        Node {
            node_id: self.node_id,
            every_node: self.every_node,
            electors,
            placement,
        }
    }
}

/// The background services of one process, each where it belongs. Build
/// with [`Node::builder`], start with [`Node::run`].
///
/// | service | runs on | why |
/// |---|---|---|
/// | workers | every node that has them | claims hand each task to one worker; more nodes, more capacity |
/// | dispatcher (messages and push queues) | every node that has one | claims hand each delivery and each push to one node |
/// | queue-depth reporter | every node | each node's `/metrics` shows the gauge |
/// | scheduler | the leader of [`SERVICES_ROLE`] | one node fires each due time (and it must be able to sign) |
/// | callbacks | the leader of [`SERVICES_ROLE`] | one node hands each callback off (signed with its key ring) |
/// | rescuer | every node | a dead node's leases come back one lease after its death, not after a leader hand-over; each row is rescued once however many pass |
/// | pruner | the leader of [`MAINTENANCE_ROLE`] | one pass at a time is enough; any node can run it |
///
/// Two roles, because the leader-only services need different things: the
/// scheduler and the callbacks sign and publish, so only nodes configured
/// for that (`signet serve`) stand for [`SERVICES_ROLE`]; the pruner needs
/// only the store, so every node, a worker-only process included, stands
/// for [`MAINTENANCE_ROLE`]. A deployment of workers alone (say on one
/// SQLite file) still rescues and prunes.
///
/// ```no_run
/// # async fn demo(store: std::sync::Arc<dyn signet_store::Store>, worker: signet_runtime::Worker) -> Result<(), signet_runtime::RuntimeError> {
/// use signet_runtime::{Node, Pruner, Rescuer, Shutdown};
///
/// let (rescue, prune) = (store.clone(), store.clone());
/// let node = Node::builder(store, signet_runtime::default_node_id())
///     .worker(worker)
///     .rescuer(move || Rescuer::new(rescue.clone()))
///     .pruner(move || Pruner::new(prune.clone()))
///     .build();
/// let shutdown = Shutdown::new();
/// node.run(shutdown.signal()).await?;
/// # Ok(()) }
/// ```
pub struct Node {
    node_id: String,
    every_node: Vec<(String, EveryNodeStart)>,
    electors: Vec<LeaderElector>,
    placement: Vec<(String, Placement)>,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("node_id", &self.node_id)
            .field("placement", &self.placement)
            .field("electors", &self.electors)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// A builder for the node `node_id` on `store` (see
    /// [`default_node_id`](crate::leader::default_node_id)).
    pub fn builder(store: Arc<dyn Store>, node_id: impl Into<String>) -> NodeBuilder {
        NodeBuilder {
            store,
            node_id: node_id.into(),
            clock: Arc::new(SystemClock),
            leader_ttl: DEFAULT_LEADER_TTL,
            every_node: Vec::new(),
            leader_only: Vec::new(),
        }
    }

    /// This node's id in the elections.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Each service and where it runs, in the order added.
    pub fn placement(&self) -> &[(String, Placement)] {
        &self.placement
    }

    /// The electors, one per role with services.
    pub fn electors(&self) -> &[LeaderElector] {
        &self.electors
    }

    /// The elector of `role`, if this node has services for it.
    pub fn elector(&self, role: &str) -> Option<&LeaderElector> {
        self.electors.iter().find(|e| e.role() == role)
    }

    /// Takes the elector of `role` out of the node (to step it by hand in
    /// tests); the node then no longer runs it.
    pub fn take_elector(&mut self, role: &str) -> Option<LeaderElector> {
        let index = self.electors.iter().position(|e| e.role() == role)?;
        self.placement
            .retain(|(_, p)| !matches!(p, Placement::Leader(r) if *r == role));
        Some(self.electors.remove(index))
    }

    /// Runs every service until `shutdown` fires (or a node-wide service
    /// ends with an error, which stops the others too); the electors stop
    /// their services and resign. Returns once everything stopped, with
    /// the first error.
    pub async fn run(self, mut shutdown: ShutdownSignal) -> Result<(), RuntimeError> {
        let stop = Shutdown::new();
        let mut tasks: JoinSet<(String, Result<(), RuntimeError>)> = JoinSet::new();
        for (name, start) in self.every_node {
            let signal = stop.signal();
            tasks.spawn(async move { (name, start(signal).await) });
        }
        for elector in self.electors {
            let signal = stop.signal();
            let name = format!("leader election ({})", elector.role());
            tasks.spawn(async move {
                elector.run(signal).await;
                (name, Ok(()))
            });
        }
        let mut result = Ok(());
        loop {
            tokio::select! {
                () = shutdown.triggered(), if !stop.is_triggered() => stop.trigger(),
                joined = tasks.join_next() => match joined {
                    None => break,
                    Some(Ok((_, Ok(())))) => {}
                    Some(Ok((name, Err(e)))) => {
                        tracing::error!(service = %name, error = %e, "a service of this node stopped with an error; stopping the node");
                        stop.trigger();
                        if result.is_ok() {
                            result = Err(e);
                        }
                    }
                    Some(Err(e)) => {
                        tracing::error!(error = %e, "a background service ended abnormally");
                    }
                },
            }
        }
        result
    }
}
