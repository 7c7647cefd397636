//! Wakes idle workers of this process when another process writes work to
//! the same database file.
//!
//! [`WorkSignal`] only hears this process's writes. While at least one
//! caller waits in [`Store::wait_for_work`](signet_store::Store::wait_for_work),
//! one thread per store reads `PRAGMA data_version` on a read-only
//! connection every [`POLL`]: the value changes when any other connection
//! (another process, or this process's writer) commits. On a change it
//! looks for claimable work on the queues being waited on (and those
//! recently marked for a claim, `signal.rs`), and signals those queues,
//! so a waiter wakes within a few milliseconds of another
//! process's enqueue, and writes that made no work due (heartbeats,
//! outcomes) wake nobody. With no waiter the thread sleeps on a condition
//! variable and reads nothing. The waiters' timeout stays the safety net
//! (for example for work that becomes due with time alone).

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OpenFlags};

use crate::pause::not_paused;
use crate::signal::WorkSignal;
use crate::tasks::CLAIMABLE;

/// Time between two reads of `PRAGMA data_version` while someone waits.
const POLL: Duration = Duration::from_millis(2);

/// The cross-process watcher of one store.
pub(crate) struct Watcher {
    shared: Arc<Shared>,
}

struct Shared {
    path: PathBuf,
    busy_timeout: Duration,
    signal: Arc<WorkSignal>,
    state: Mutex<State>,
    /// Signalled when the first waiter arrives and on stop.
    changed: Condvar,
}

#[derive(Default)]
struct State {
    waiters: usize,
    /// The thread runs (started on the first wait).
    running: bool,
    stopped: bool,
}

/// Counts one waiter while it lives.
pub(crate) struct Waiting<'a> {
    shared: &'a Shared,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.waiters = state.waiters.saturating_sub(1);
    }
}

impl Watcher {
    pub(crate) fn new(path: PathBuf, busy_timeout: Duration, signal: Arc<WorkSignal>) -> Self {
        Self {
            shared: Arc::new(Shared {
                path,
                busy_timeout,
                signal,
                state: Mutex::new(State::default()),
                changed: Condvar::new(),
            }),
        }
    }

    /// Counts a waiter until the returned guard is dropped, starting the
    /// watching thread if it does not run.
    pub(crate) fn waiting(&self) -> Waiting<'_> {
        let mut state = self.shared.lock();
        state.waiters += 1;
        if !state.running && !state.stopped {
            let shared = Arc::clone(&self.shared);
            let started = std::thread::Builder::new()
                .name("signet-sqlite-watch".into())
                .spawn(move || watch(&shared));
            match started {
                Ok(_) => state.running = true,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start the thread that watches for other processes' writes; idle workers poll")
                }
            }
        }
        self.shared.changed.notify_all();
        Waiting {
            shared: &self.shared,
        }
    }

    /// Stops the thread (on close).
    pub(crate) fn stop(&self) {
        self.shared.lock().stopped = true;
        self.shared.changed.notify_all();
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Blocks while nobody waits; `false` once stopped.
    fn until_needed(&self) -> bool {
        let mut state = self.lock();
        while state.waiters == 0 && !state.stopped {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if state.stopped {
            state.running = false;
            return false;
        }
        true
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(self.busy_timeout)?;
        Ok(conn)
    }
}

/// The thread: poll `data_version` while someone waits.
fn watch(shared: &Shared) {
    let conn = match shared.open() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, path = %shared.path.display(), "cannot open the database to watch for other processes' writes; idle workers poll");
            // Not tried again at every wait: the waiters' timeout remains.
            let mut state = shared.lock();
            state.running = false;
            state.stopped = true;
            return;
        }
    };
    let mut seen = data_version(&conn).ok();
    while shared.until_needed() {
        std::thread::sleep(POLL);
        match data_version(&conn) {
            Ok(v) if seen != Some(v) => {
                seen = Some(v);
                let queues = shared.signal.waited_queues();
                match due_queues(&conn, &queues) {
                    Ok(due) => shared.signal.notify(due.iter().map(String::as_str)),
                    // Cannot tell: wake them all, they claim and see.
                    Err(_) => shared.signal.notify(queues.iter().map(String::as_str)),
                }
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "reading data_version failed; trying again"),
        }
    }
}

fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA data_version", [], |r| r.get(0))
}

/// Which of `queues` hold work a claim would take now (not paused).
fn due_queues(conn: &Connection, queues: &[String]) -> rusqlite::Result<Vec<String>> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT EXISTS(SELECT 1 FROM tasks WHERE {CLAIMABLE} AND queue = ?1 AND run_at_ms <= ?2) \
         AND {}",
        not_paused("?1")
    ))?;
    let mut due = Vec::new();
    for q in queues {
        if stmt.query_row(params![q, now_ms], |r| r.get::<_, bool>(0))? {
            due.push(q.clone());
        }
    }
    Ok(due)
}
