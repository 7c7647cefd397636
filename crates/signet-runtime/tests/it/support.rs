//! Shared fixtures: a store on a temp file, key rings, a running worker, and
//! waiting for worker events (never sleeping to wait for an effect).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use signet_runtime::{
    Clock, Producer, RetryPolicy, Shutdown, TaskSpec, Worker, WorkerBuilder, WorkerEvent,
    WorkerEventKind,
};
use signet_sign::{Ed25519SecretKey, HmacSecret, Key, KeyId, KeyMaterial, KeyRing};
use signet_sqlite::{SqliteConfig, SqliteStore};
use signet_store::{Store, TaskRow};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// How long any wait in these tests may take before the test fails.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

pub(crate) struct Db {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Db {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signet.db");
        let store = SqliteStore::open(
            &format!("sqlite://{}", path.display()),
            SqliteConfig::default(),
        )
        .unwrap();
        Self {
            store: Arc::new(store),
            path,
            _dir: dir,
        }
    }

    /// A direct connection to the database file, for tampering.
    pub(crate) fn raw(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(&self.path).unwrap();
        c.busy_timeout(Duration::from_secs(10)).unwrap();
        c
    }

    pub(crate) async fn task(&self, id: &str) -> TaskRow {
        self.store.task(id).await.unwrap().expect("task exists")
    }

    /// The attempts in a message's history, oldest first.
    pub(crate) async fn attempts(&self, id: &str) -> Vec<Attempt> {
        let history = self.store.history(id).await.unwrap();
        signet_store::history::attempts(&history)
            .map(|(_, a)| {
                let http = a.http.clone().expect("a delivery attempt has its exchange");
                Attempt {
                    number: a.number,
                    started_at_ms: a.started_at_ms.expect("a start"),
                    status: http.status,
                    error: a.error.clone(),
                    response_body: http.response_body,
                }
            })
            .collect()
    }
}

/// A delivery attempt as the tests read it from a message's history.
#[derive(Debug)]
pub(crate) struct Attempt {
    pub(crate) number: u32,
    pub(crate) started_at_ms: i64,
    pub(crate) status: Option<u16>,
    pub(crate) error: Option<String>,
    pub(crate) response_body: Vec<u8>,
}

pub(crate) fn hmac_key(id: &str, byte: u8) -> Key {
    Key::new(
        KeyId::new(id).unwrap(),
        KeyMaterial::Hmac(HmacSecret::new(vec![byte; 32]).unwrap()),
    )
}

pub(crate) fn hmac_ring() -> KeyRing {
    KeyRing::single(hmac_key("k1", 7))
}

pub(crate) fn ed25519_ring(seed: u8) -> KeyRing {
    KeyRing::single(Key::new(
        KeyId::new("ed1").unwrap(),
        KeyMaterial::Ed25519Private(Ed25519SecretKey::from_seed(&[seed; 32]).unwrap()),
    ))
}

/// Enqueues `spec` with `producer` and returns the new task's id.
pub(crate) async fn enqueue_id(producer: &Producer, spec: TaskSpec) -> String {
    producer.enqueue(spec).await.unwrap().task.id().to_owned()
}

pub(crate) fn producer(db: &Db, ring: &KeyRing) -> Producer {
    Producer::with_ring(Arc::clone(&db.store), Arc::new(ring.duplicate()), true).unwrap()
}

/// A worker builder with short intervals, verifying with `ring`.
pub(crate) fn worker(db: &Db, ring: &KeyRing, queue: &str) -> WorkerBuilder {
    Worker::builder(Arc::clone(&db.store))
        .key_ring(ring, true)
        .queues([queue])
        .concurrency(8)
        .poll_interval(Duration::from_millis(5))
        .retry_policy(RetryPolicy::exponential(Duration::ZERO, Duration::ZERO))
        .shutdown_grace(Duration::from_secs(5))
}

pub(crate) struct Running {
    pub(crate) shutdown: Shutdown,
    pub(crate) events: broadcast::Receiver<WorkerEvent>,
    pub(crate) handle: JoinHandle<Result<(), signet_runtime::RuntimeError>>,
    /// Events seen while waiting for another task, kept for later.
    pub(crate) pending: Vec<WorkerEvent>,
}

impl Running {
    pub(crate) fn start(worker: Worker) -> Self {
        let shutdown = Shutdown::new();
        let events = worker.events();
        let handle = tokio::spawn(worker.run(shutdown.signal()));
        Self {
            shutdown,
            events,
            handle,
            pending: Vec::new(),
        }
    }

    /// The next event about task `id`.
    pub(crate) async fn next_for(&mut self, id: &str) -> WorkerEvent {
        if let Some(i) = self.pending.iter().position(|e| e.task_id == id) {
            return self.pending.remove(i);
        }
        let (events, pending) = (&mut self.events, &mut self.pending);
        tokio::time::timeout(WAIT, async {
            loop {
                let e = events.recv().await.expect("worker events");
                if e.task_id == id {
                    return e;
                }
                pending.push(e);
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no event for task {id} within {WAIT:?}"))
    }

    /// Waits for the final outcome (succeeded or dead) of task `id`,
    /// returning every event seen for it.
    pub(crate) async fn until_final(&mut self, id: &str) -> Vec<WorkerEvent> {
        let mut seen = Vec::new();
        loop {
            let e = self.next_for(id).await;
            let last = matches!(
                e.kind,
                WorkerEventKind::Succeeded | WorkerEventKind::Dead { .. }
            );
            seen.push(e);
            if last {
                return seen;
            }
        }
    }

    pub(crate) async fn stop(self) {
        self.shutdown.trigger();
        tokio::time::timeout(WAIT, self.handle)
            .await
            .expect("worker stops in time")
            .expect("worker task")
            .expect("worker run");
    }
}

/// A clock for tests that want time to move only when told.
pub(crate) fn manual_clock(start_ms: i64) -> (Arc<signet_runtime::ManualClock>, Arc<dyn Clock>) {
    let c = Arc::new(signet_runtime::ManualClock::new(start_ms));
    let d: Arc<dyn Clock> = c.clone();
    (c, d)
}

/// Dead reason and detail of an event, or panics.
pub(crate) fn dead(e: &WorkerEvent) -> (signet_store::DeadReason, &str) {
    match &e.kind {
        WorkerEventKind::Dead { reason, detail } => (*reason, detail.as_str()),
        other => panic!("expected a dead letter, got {other:?}"),
    }
}
