//! The one writer thread and its group commit.
//!
//! A single thread owns the only write connection. Operations arrive over a
//! channel; the writer takes everything queued (up to `max_batch`), runs it
//! all in ONE transaction, each operation inside its own SAVEPOINT so a
//! failing operation rolls back only itself, then commits once and replies
//! to each. Under load many operations share one fsync. Two writer
//! connections would instead contend for SQLite's single write lock and
//! starve each other.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;

use rusqlite::Connection;
use signet_store::{StoreError, StoreResult};
use tokio::sync::oneshot;

use crate::error_map::{map_err, Failure};

/// Counters of the writer, for tests and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Transactions committed.
    pub commits: u64,
    /// Operations run (each in its own savepoint).
    pub operations: u64,
}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    operations: AtomicU64,
}

/// An operation queued for the writer.
trait Job: Send {
    /// Runs inside the open transaction; returns what to do after COMMIT.
    fn run(self: Box<Self>, conn: &Connection) -> Box<dyn Settle>;
    /// Never ran: reply with this failure.
    fn abort(self: Box<Self>, failure: &Failure);
}

/// A finished operation waiting for the commit's outcome.
trait Settle: Send {
    /// Replies: the operation's own result if the commit succeeded (or
    /// `failure` is `None`), else the commit's failure.
    fn settle(self: Box<Self>, failure: Option<&Failure>);
    /// The operation's error, if it failed.
    fn error(&self) -> Option<&StoreError>;
}

struct Op<F, T> {
    f: F,
    reply: oneshot::Sender<StoreResult<T>>,
}

struct Done<T> {
    result: StoreResult<T>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<F, T> Job for Op<F, T>
where
    F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> Box<dyn Settle> {
        let Op { f, reply } = *self;
        let result = in_savepoint(conn, f);
        Box::new(Done { result, reply })
    }

    fn abort(self: Box<Self>, failure: &Failure) {
        // The caller may have stopped waiting; nothing to do then.
        let _ = self.reply.send(Err(failure.to_error()));
    }
}

impl<T: Send + 'static> Settle for Done<T> {
    fn settle(self: Box<Self>, failure: Option<&Failure>) {
        let result = match (failure, self.result) {
            (Some(f), Ok(_)) => Err(f.to_error()),
            (_, r) => r,
        };
        let _ = self.reply.send(result);
    }

    fn error(&self) -> Option<&StoreError> {
        self.result.as_ref().err()
    }
}

/// Runs `f` inside a savepoint: released when it succeeds, rolled back to
/// when it fails or panics. On a connection outside any transaction the
/// savepoint is a transaction of its own, so `f`'s reads see one snapshot.
pub(crate) fn in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    exec(conn, "SAVEPOINT op").map_err(|e| map_err("opening a savepoint", e))?;
    let result = match catch_unwind(AssertUnwindSafe(|| f(conn))) {
        Ok(r) => r,
        Err(_) => Err(StoreError::backend(
            "internal error: a store operation panicked; it was rolled back",
            "panic in the SQLite writer",
        )),
    };
    if conn.is_autocommit() {
        // SQLite rolled the whole transaction back (disk full, I/O error):
        // the savepoint is gone with it.
        return result;
    }
    let end = match result {
        Ok(_) => exec(conn, "RELEASE op"),
        Err(_) => exec(conn, "ROLLBACK TO op").and_then(|()| exec(conn, "RELEASE op")),
    };
    match (end, result) {
        (Ok(()), r) => r,
        (Err(e), Ok(_)) => Err(map_err("releasing a savepoint", e)),
        (Err(_), Err(e)) => Err(e),
    }
}

fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

enum Msg {
    Job(Box<dyn Job>),
    Close(oneshot::Sender<StoreResult<()>>),
}

/// Handle to the writer thread.
pub(crate) struct Writer {
    tx: mpsc::Sender<Msg>,
    closed: AtomicBool,
    counters: Arc<Counters>,
}

impl Writer {
    /// Starts the writer thread, which owns `conn` from now on.
    pub(crate) fn start(conn: Connection, max_batch: usize) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel();
        let counters = Arc::new(Counters::default());
        let thread_counters = counters.clone();
        thread::Builder::new()
            .name("signet-sqlite-writer".into())
            .spawn(move || run(conn, rx, max_batch.max(1), &thread_counters))
            .map_err(|e| StoreError::backend("starting the SQLite writer thread", e))?;
        Ok(Self {
            tx,
            closed: AtomicBool::new(false),
            counters,
        })
    }

    /// Runs `f` on the write connection inside the next group commit and
    /// returns its result once committed.
    pub(crate) async fn submit<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Job(Box::new(Op { f, reply })))
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Whether [`Writer::close`] was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Drains queued operations, checkpoints the WAL and stops the thread.
    pub(crate) async fn close(&self) -> StoreResult<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Msg::Close(reply)).is_err() {
            return Ok(()); // the thread is already gone
        }
        rx.await.unwrap_or(Ok(()))
    }

    pub(crate) fn stats(&self) -> WriterStats {
        WriterStats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            operations: self.counters.operations.load(Ordering::Relaxed),
        }
    }
}

fn run(conn: Connection, rx: mpsc::Receiver<Msg>, max_batch: usize, counters: &Counters) {
    let mut close_reply = None;
    let mut recovery = Recovery::default();
    while let Ok(first) = rx.recv() {
        let mut jobs = Vec::new();
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Job(job) => jobs.push(job),
                Msg::Close(reply) => {
                    close_reply = Some(reply);
                    break;
                }
            }
            if jobs.len() < max_batch {
                next = rx.try_recv().ok();
            }
        }
        if !jobs.is_empty() {
            let storage_failed = run_batch(&conn, jobs, counters);
            recovery.after_batch(&conn, storage_failed);
        }
        if close_reply.is_some() {
            break;
        }
    }
    // Anything sent after Close: the callers get `Closed`.
    let closed = Failure::closed();
    while let Ok(msg) = rx.try_recv() {
        match msg {
            Msg::Job(job) => job.abort(&closed),
            Msg::Close(reply) => {
                let _ = reply.send(Ok(()));
            }
        }
    }
    let result = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(|e| map_err("checkpointing the WAL on close", e));
    let result = match conn.close() {
        Ok(()) => result,
        Err((_, e)) => result.and(Err(map_err("closing the database", e))),
    };
    if let Some(reply) = close_reply {
        let _ = reply.send(result);
    }
}

/// Getting the WAL back to a small size after storage failed. A full disk
/// leaves a WAL that automatic (passive) checkpoints may not be able to
/// reset; once a batch commits again, the writer checkpoints with
/// `TRUNCATE` until one completes, so the space comes back by itself
/// without a restart.
#[derive(Default)]
struct Recovery {
    /// A commit failed for lack of space or a read-only database and no
    /// truncating checkpoint has completed since.
    pending: bool,
}

impl Recovery {
    fn after_batch(&mut self, conn: &Connection, storage_failed: bool) {
        if storage_failed {
            self.pending = true;
            return;
        }
        if !self.pending {
            return;
        }
        // `busy` is 1 when readers kept the checkpoint from finishing.
        match conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            r.get::<_, i64>(0)
        }) {
            Ok(0) => {
                self.pending = false;
                tracing::info!("database writable again; the WAL was checkpointed and truncated");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %crate::error_map::cause(&e), "checkpointing the WAL after a storage failure failed; will retry after the next write");
            }
        }
    }
}

/// Runs `jobs` in group commits. Returns whether a commit failed because
/// storage could not be written (full, read-only, I/O).
fn run_batch(conn: &Connection, jobs: Vec<Box<dyn Job>>, counters: &Counters) -> bool {
    let mut storage_failed = false;
    let mut jobs = jobs.into_iter().peekable();
    while jobs.peek().is_some() {
        if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
            let failure = Failure::from_sqlite("starting a write transaction", &e);
            tracing::warn!(error = %failure.to_error(), "the database cannot be written");
            jobs.for_each(|job| job.abort(&failure));
            return failure.is_storage();
        }
        let mut done: Vec<Box<dyn Settle>> = Vec::new();
        let mut rolled_back = false;
        for job in jobs.by_ref() {
            let settle = job.run(conn);
            counters.operations.fetch_add(1, Ordering::Relaxed);
            storage_failed |= settle
                .error()
                .is_some_and(StoreError::is_storage_unavailable);
            if conn.is_autocommit() {
                // SQLite ended the transaction itself: everything before
                // this operation in the batch was lost with it.
                let failure = settle
                    .error()
                    .map(Failure::from_store_error)
                    .unwrap_or_else(Failure::rolled_back);
                done.drain(..).for_each(|d| d.settle(Some(&failure)));
                settle.settle(None);
                rolled_back = true;
                break;
            }
            done.push(settle);
        }
        if rolled_back {
            continue; // the rest of the batch gets a new transaction
        }
        match exec(conn, "COMMIT") {
            Ok(()) => {
                counters.commits.fetch_add(1, Ordering::Relaxed);
                done.into_iter().for_each(|d| d.settle(None));
            }
            Err(e) => {
                let failure = Failure::from_sqlite("committing", &e);
                tracing::warn!(error = %failure.to_error(), "a commit failed; its operations changed nothing");
                storage_failed |= failure.is_storage();
                if !conn.is_autocommit() {
                    let _ = exec(conn, "ROLLBACK");
                }
                done.into_iter().for_each(|d| d.settle(Some(&failure)));
            }
        }
    }
    storage_failed
}
