//! [`SqliteStore`]: the [`Store`] on SQLite.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags};
use signet_store::delivery::check_exchange;
use signet_store::history::check_actor;
use signet_store::migration::wall_clock_ms;
use signet_store::{
    ApiKeyRecord, ClaimRequest, DeadFilter, DeadReason, DeadSelector, DeliverySettlement, Enqueued,
    FailOutcome, HistoryEvent, HttpExchange, KeyUsage, LeaderLease, LeaseToken, NewTask, Page,
    PausedQueue, PushBinding, QueueCounts, RateGrant, RateTake, ScheduleRecord, Settlement,
    SignatureRecord, SlotLease, SlotTake, Store, StoreError, StoreResult, TargetRecord, TaskFilter,
    TaskRow, TaskState, WorkMark,
};

use crate::config::SqliteConfig;
use crate::error_map::map_err;
use crate::migrate::{migrate, MigrationStatus};
use crate::readers::Readers;
use crate::signal::WorkSignal;
use crate::url::{parse_url, Location};
use crate::watch::Watcher;
use crate::writer::{Writer, WriterStats};
use crate::{
    api_keys, callbacks, history, leases, limits, pause, push, queries, schedules, targets, tasks,
};

/// Size of the writer's prepared statement cache.
const STATEMENT_CACHE: usize = 128;

/// The embedded SQLite store. Cheap to clone: clones share one writer.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    location: Location,
    writer: Writer,
    readers: Option<Readers>,
    schema: MigrationStatus,
    /// Wakes this process's workers waiting for work.
    work: Arc<WorkSignal>,
    /// Signals `work` on other processes' writes (files only).
    watcher: Option<Watcher>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("location", &self.inner.location)
            .field("schema_version", &self.inner.schema.current)
            .finish_non_exhaustive()
    }
}

fn pragma(conn: &Connection, name: &str, value: &str) -> StoreResult<()> {
    // Some pragmas answer with a row, some do not: read and ignore it.
    conn.query_row(&format!("PRAGMA {name} = {value}"), [], |_| Ok(()))
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(()),
            e => Err(e),
        })
        .map_err(|e| map_err(format!("setting PRAGMA {name}"), e))
}

/// Creates the database file, when it does not exist yet, readable and
/// writable by its owner only (0600), before SQLite opens it: SQLite's unix
/// VFS gives the `-wal` and `-shm` files it creates later the database
/// file's permissions, so all three are private. (SQLite creating the file
/// itself made them 0644 under the usual umask: task args, message bodies
/// and sealed secrets readable by every local user.) An existing file keeps
/// the permissions it has, so an operator's deliberate choice stands.
fn create_private(path: &Path) -> StoreResult<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(StoreError::unavailable(format!(
                "cannot create database file {}: {e}; check that its directory exists and is writable",
                path.display()
            ))),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` and migrates it.
    ///
    /// URL forms: `sqlite://./signet.db`, `sqlite:///abs/path.db`,
    /// `sqlite:relative.db`, a plain path, or `sqlite::memory:` (a private
    /// database for tests; no WAL, reads go through the writer).
    ///
    /// Blocks while it opens and migrates; call it before serving, or from
    /// `spawn_blocking`.
    pub fn open(url: &str, config: SqliteConfig) -> Result<SqliteStore, StoreError> {
        let location = parse_url(url)?;
        if let Location::File(path) = &location {
            create_private(path)?;
        }
        let mut conn = match &location {
            Location::File(path) => Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_CREATE
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(|e| map_err(format!("opening database {}", path.display()), e))?,
            Location::Memory => Connection::open_in_memory()
                .map_err(|e| map_err("opening an in-memory database", e))?,
        };
        conn.busy_timeout(config.busy_timeout)
            .map_err(|e| map_err("setting the busy timeout", e))?;
        if let Location::File(path) = &location {
            let mode: String = conn
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                .map_err(|e| map_err(format!("switching {} to WAL", path.display()), e))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::invalid(format!(
                    "database {} cannot use WAL (journal mode stayed {mode:?}); put it on a local file system",
                    path.display()
                )));
            }
        }
        pragma(&conn, "synchronous", config.synchronous.pragma_value())?;
        pragma(&conn, "foreign_keys", "ON")?;
        pragma(&conn, "temp_store", "MEMORY")?;
        pragma(&conn, "cache_size", &format!("-{}", config.cache_kib))?;
        pragma(
            &conn,
            "journal_size_limit",
            &crate::config::JOURNAL_SIZE_LIMIT_BYTES.to_string(),
        )?;
        if let Some(pages) = config.max_page_count {
            pragma(&conn, "max_page_count", &pages.to_string())?;
        }
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let schema = migrate(&mut conn, wall_clock_ms())?;
        let readers = match &location {
            Location::File(path) if config.read_connections > 0 => Some(Readers::new(
                path.clone(),
                config.busy_timeout,
                config.read_connections,
            )),
            _ => None,
        };
        let writer = Writer::start(conn, config.max_batch)?;
        let work = Arc::new(WorkSignal::default());
        let watcher = match &location {
            Location::File(path) => Some(Watcher::new(
                path.clone(),
                config.busy_timeout,
                Arc::clone(&work),
            )),
            Location::Memory => None,
        };
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                location,
                writer,
                readers,
                schema,
                work,
                watcher,
            }),
        })
    }

    /// The database file, or `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        match &self.inner.location {
            Location::File(p) => Some(p),
            Location::Memory => None,
        }
    }

    /// The schema status found and reached at open.
    pub fn schema(&self) -> &MigrationStatus {
        &self.inner.schema
    }

    /// Writer counters: commits and operations. Under concurrent load
    /// `operations / commits` shows how many operations share a commit.
    pub fn writer_stats(&self) -> WriterStats {
        self.inner.writer.stats()
    }

    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.inner.writer.submit(f).await
    }

    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        if self.inner.writer.is_closed() {
            return Err(StoreError::Closed);
        }
        match &self.inner.readers {
            Some(readers) => readers.read(f).await,
            None => self.inner.writer.submit(f).await,
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn enqueue_batch(&self, tasks: Vec<NewTask>, now_ms: i64) -> StoreResult<Vec<Enqueued>> {
        NewTask::validate_batch(&tasks)?;
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        let out = self
            .write(move |c| tasks::enqueue_batch(c, tasks, now_ms))
            .await?;
        self.inner.work.notify(
            out.iter()
                .filter(|e| e.created && e.task.state == TaskState::Available)
                .map(|e| e.task.queue()),
        );
        Ok(out)
    }

    async fn claim(&self, request: ClaimRequest, now_ms: i64) -> StoreResult<Vec<TaskRow>> {
        request.validate()?;
        self.write(move |c| tasks::claim(c, &request, now_ms)).await
    }

    async fn heartbeat(&self, lease: &LeaseToken, lease_ms: i64, now_ms: i64) -> StoreResult<()> {
        signet_store::check_lease_ms(lease_ms)?;
        let lease = lease.clone();
        self.write(move |c| tasks::heartbeat(c, &lease, lease_ms, now_ms))
            .await
    }

    async fn complete(
        &self,
        lease: &LeaseToken,
        result: Option<Vec<u8>>,
        now_ms: i64,
    ) -> StoreResult<()> {
        let lease = lease.clone();
        self.write(move |c| tasks::complete(c, &lease, result.as_deref(), None, now_ms))
            .await
    }

    async fn complete_batch(
        &self,
        items: Vec<(LeaseToken, Option<Vec<u8>>)>,
        now_ms: i64,
    ) -> StoreResult<Vec<StoreResult<()>>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        self.write(move |c| {
            let mut out = Vec::with_capacity(items.len());
            for (lease, result) in &items {
                let r = tasks::complete(c, lease, result.as_deref(), None, now_ms);
                if let Err(e) = &r {
                    if c.is_autocommit() {
                        // SQLite rolled the transaction back (disk full):
                        // the earlier entries are gone too; fail them all.
                        return Err(map_lost(e));
                    }
                }
                out.push(r);
            }
            Ok(out)
        })
        .await
    }

    async fn fail(
        &self,
        lease: &LeaseToken,
        error: &str,
        outcome: FailOutcome,
        now_ms: i64,
    ) -> StoreResult<()> {
        let lease = lease.clone();
        let error = error.to_owned();
        let due_now = matches!(outcome, FailOutcome::Retry { at_ms } if at_ms <= now_ms);
        let queue = self
            .write(move |c| tasks::fail(c, &lease, &error, &outcome, None, now_ms))
            .await?;
        if due_now {
            self.inner.work.notify(queue.as_deref());
        }
        Ok(())
    }

    async fn release_at(&self, lease: &LeaseToken, run_at_ms: i64, now_ms: i64) -> StoreResult<()> {
        let lease = lease.clone();
        let queue = self
            .write(move |c| tasks::release(c, &lease, run_at_ms, now_ms))
            .await?;
        if run_at_ms <= now_ms {
            self.inner.work.notify([queue.as_str()]);
        }
        Ok(())
    }

    async fn cancel(&self, id: &str, actor: &str, now_ms: i64) -> StoreResult<TaskRow> {
        check_actor(actor)?;
        let (id, actor) = (id.to_owned(), actor.to_owned());
        self.write(move |c| tasks::cancel(c, &id, &actor, now_ms))
            .await
    }

    async fn retry_now(&self, id: &str, actor: &str, now_ms: i64) -> StoreResult<TaskRow> {
        check_actor(actor)?;
        let (id, actor) = (id.to_owned(), actor.to_owned());
        let row = self
            .write(move |c| tasks::retry_now(c, &id, &actor, now_ms))
            .await?;
        self.inner.work.notify([row.queue()]);
        Ok(row)
    }

    async fn resend(&self, id: &str, actor: &str, now_ms: i64) -> StoreResult<TaskRow> {
        check_actor(actor)?;
        let (id, actor) = (id.to_owned(), actor.to_owned());
        let row = self
            .write(move |c| tasks::resend(c, &id, &actor, now_ms))
            .await?;
        self.inner.work.notify([row.queue()]);
        Ok(row)
    }

    async fn pause_queue(
        &self,
        queue: &str,
        actor: &str,
        reason: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<PausedQueue> {
        PausedQueue::validate(queue, actor, reason)?;
        let (queue, actor) = (queue.to_owned(), actor.to_owned());
        let reason = reason.map(str::to_owned);
        self.write(move |c| pause::pause(c, &queue, &actor, reason.as_deref(), now_ms))
            .await
    }

    async fn resume_queue(&self, queue: &str) -> StoreResult<Option<PausedQueue>> {
        let owned = queue.to_owned();
        let ended = self.write(move |c| pause::resume(c, &owned)).await?;
        if ended.is_some() {
            self.inner.work.notify([queue]);
        }
        Ok(ended)
    }

    async fn paused_queues(&self) -> StoreResult<Vec<PausedQueue>> {
        self.read(pause::list).await
    }

    async fn kill(
        &self,
        id: &str,
        reason: DeadReason,
        detail: &str,
        now_ms: i64,
    ) -> StoreResult<TaskRow> {
        let id = id.to_owned();
        let detail = detail.to_owned();
        self.write(move |c| tasks::kill(c, &id, reason, &detail, now_ms))
            .await
    }

    async fn rescue_expired(&self, now_ms: i64, limit: usize) -> StoreResult<Vec<String>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rescued = self
            .write(move |c| tasks::rescue_expired(c, now_ms, limit))
            .await?;
        self.inner
            .work
            .notify(rescued.iter().filter(|r| r.retry).map(|r| r.queue.as_str()));
        Ok(rescued.into_iter().map(|r| r.id).collect())
    }

    async fn task(&self, id: &str) -> StoreResult<Option<TaskRow>> {
        let id = id.to_owned();
        self.read(move |c| queries::task_by_id(c, &id)).await
    }

    async fn tasks_by_id(&self, ids: &[String]) -> StoreResult<Vec<TaskRow>> {
        let ids = ids.to_vec();
        self.read(move |c| queries::tasks_by_id(c, &ids)).await
    }

    async fn list_tasks(&self, filter: TaskFilter) -> StoreResult<Page<TaskRow>> {
        self.read(move |c| queries::list_tasks(c, &filter)).await
    }

    async fn list_dead(&self, filter: DeadFilter) -> StoreResult<Page<TaskRow>> {
        self.read(move |c| queries::list_dead(c, &filter)).await
    }

    async fn replay_dead(
        &self,
        selector: DeadSelector,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<Vec<String>> {
        check_actor(actor)?;
        let actor = actor.to_owned();
        let replayed = self
            .write(move |c| {
                let ids = match selector {
                    DeadSelector::Ids(ids) => ids,
                    DeadSelector::Filter(f) => queries::dead_ids(c, &f)?,
                };
                tasks::replay(c, &ids, &actor, now_ms)
            })
            .await?;
        self.inner
            .work
            .notify(replayed.iter().map(|(_, queue)| queue.as_str()));
        Ok(replayed.into_iter().map(|(id, _)| id).collect())
    }

    async fn resign_dead(
        &self,
        id: &str,
        signature: SignatureRecord,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<TaskRow> {
        check_actor(actor)?;
        let (id, actor) = (id.to_owned(), actor.to_owned());
        self.write(move |c| tasks::resign(c, &id, &signature, &actor, now_ms))
            .await
    }

    async fn purge_dead(&self, selector: DeadSelector) -> StoreResult<Vec<String>> {
        self.write(move |c| {
            let ids = match selector {
                DeadSelector::Ids(ids) => ids,
                DeadSelector::Filter(f) => queries::dead_ids(c, &f)?,
            };
            tasks::purge(c, &ids)
        })
        .await
    }

    async fn counts(&self) -> StoreResult<Vec<QueueCounts>> {
        self.read(queries::counts).await
    }

    async fn activity(
        &self,
        window: signet_store::ActivityWindow,
    ) -> StoreResult<signet_store::Activity> {
        self.read(move |c| queries::activity(c, &window)).await
    }

    async fn pending_by_key(&self) -> StoreResult<Vec<KeyUsage>> {
        self.read(queries::pending_by_key).await
    }

    async fn prune(&self, finished_before_ms: i64, limit: usize) -> StoreResult<u64> {
        if limit == 0 {
            return Ok(0);
        }
        self.write(move |c| tasks::prune(c, finished_before_ms, limit))
            .await
    }

    async fn create_api_key(&self, key: ApiKeyRecord) -> StoreResult<()> {
        key.validate()?;
        self.write(move |c| api_keys::create(c, &key)).await
    }

    async fn api_key_by_hash(&self, hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        let hash = hash.to_owned();
        self.read(move |c| api_keys::by_hash(c, &hash)).await
    }

    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKeyRecord>> {
        self.read(api_keys::list).await
    }

    async fn revoke_api_key(&self, id: &str, now_ms: i64) -> StoreResult<ApiKeyRecord> {
        let id = id.to_owned();
        self.write(move |c| api_keys::revoke(c, &id, now_ms)).await
    }

    async fn end_session(&self, session_id: &str, expires_at_ms: i64) -> StoreResult<()> {
        signet_store::check_session_id(session_id)?;
        let id = session_id.to_owned();
        self.write(move |c| api_keys::end_session(c, &id, expires_at_ms))
            .await
    }

    async fn session_ended(&self, session_id: &str) -> StoreResult<bool> {
        let id = session_id.to_owned();
        self.read(move |c| api_keys::session_ended(c, &id)).await
    }

    async fn prune_ended_sessions(&self, now_ms: i64, limit: usize) -> StoreResult<u64> {
        if limit == 0 {
            return Ok(0);
        }
        self.write(move |c| api_keys::prune_ended_sessions(c, now_ms, limit))
            .await
    }

    async fn settle_delivery(
        &self,
        lease: &LeaseToken,
        http: HttpExchange,
        settlement: Settlement,
        now_ms: i64,
    ) -> StoreResult<()> {
        check_exchange(&http, &settlement)?;
        let lease = lease.clone();
        let queue = self
            .write(move |c| tasks::settle_delivery(c, &lease, &http, &settlement, now_ms))
            .await?;
        self.inner.work.notify(queue.as_deref());
        Ok(())
    }

    async fn settle_deliveries(
        &self,
        items: Vec<DeliverySettlement>,
        now_ms: i64,
    ) -> StoreResult<Vec<StoreResult<()>>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        // One operation of the writer for the whole batch. No savepoint per
        // entry (each would copy every page it touches into the statement
        // journal): an entry refused for its exchange or its lease wrote
        // nothing, and any other error fails the whole batch, which the
        // writer's savepoint then rolls back.
        let (out, mut wake) = self
            .write(move |c| {
                let mut out = Vec::with_capacity(items.len());
                let mut wake = Vec::new();
                for item in &items {
                    if let Err(e) = check_exchange(&item.http, &item.settlement) {
                        out.push(Err(e));
                        continue;
                    }
                    let lease = &item.lease;
                    match tasks::settle_delivery(c, lease, &item.http, &item.settlement, now_ms) {
                        Ok(queue) => {
                            wake.extend(queue);
                            out.push(Ok(()));
                        }
                        Err(e @ StoreError::LeaseLost { .. }) => out.push(Err(e)),
                        Err(e) => return Err(e),
                    }
                }
                Ok((out, wake))
            })
            .await?;
        wake.sort_unstable();
        wake.dedup();
        self.inner.work.notify(wake.iter().map(String::as_str));
        Ok(out)
    }

    async fn history(&self, task_id: &str) -> StoreResult<Vec<HistoryEvent>> {
        let task_id = task_id.to_owned();
        self.read(move |c| history::list(c, &task_id)).await
    }

    async fn pending_callbacks(&self, limit: usize) -> StoreResult<Vec<TaskRow>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.read(move |c| callbacks::pending(c, limit)).await
    }

    async fn mark_callbacks_sent(&self, ids: &[String], now_ms: i64) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids = ids.to_vec();
        self.write(move |c| callbacks::mark_sent(c, &ids, now_ms))
            .await
    }

    async fn create_target(&self, target: TargetRecord) -> StoreResult<()> {
        target.validate()?;
        self.write(move |c| targets::create(c, &target)).await
    }

    async fn target(&self, id: &str) -> StoreResult<Option<TargetRecord>> {
        let id = id.to_owned();
        self.read(move |c| targets::by_id(c, &id)).await
    }

    async fn target_by_name(&self, name: &str) -> StoreResult<Option<TargetRecord>> {
        let name = name.to_owned();
        self.read(move |c| targets::by_name(c, &name)).await
    }

    async fn list_targets(&self) -> StoreResult<Vec<TargetRecord>> {
        self.read(targets::list).await
    }

    async fn targets_after(
        &self,
        after_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<TargetRecord>> {
        let after = after_id.map(str::to_owned);
        self.read(move |c| targets::after(c, after.as_deref(), limit))
            .await
    }

    async fn swap_target_secrets(
        &self,
        id: &str,
        expected: &[u8],
        sealed_secrets: &[u8],
        secret_fingerprint: &str,
    ) -> StoreResult<bool> {
        TargetRecord::validate_secrets_swap(id, sealed_secrets)?;
        let (id, expected, sealed, fingerprint) = (
            id.to_owned(),
            expected.to_vec(),
            sealed_secrets.to_vec(),
            secret_fingerprint.to_owned(),
        );
        self.write(move |c| targets::swap_secrets(c, &id, &expected, &sealed, &fingerprint))
            .await
    }

    async fn update_target(&self, target: TargetRecord) -> StoreResult<()> {
        target.validate()?;
        self.write(move |c| targets::update(c, &target)).await
    }

    async fn delete_target(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |c| targets::delete(c, &id)).await
    }

    async fn take_rate(&self, take: RateTake, now_ms: i64) -> StoreResult<RateGrant> {
        take.validate()?;
        self.write(move |c| limits::take_rate(c, &take, now_ms))
            .await
    }

    async fn take_slot(&self, take: SlotTake, now_ms: i64) -> StoreResult<Option<SlotLease>> {
        take.validate()?;
        self.write(move |c| limits::take_slot(c, &take, now_ms))
            .await
    }

    async fn renew_slot(&self, lease: &SlotLease, lease_ms: i64, now_ms: i64) -> StoreResult<bool> {
        signet_store::limits::check_slot_lease_ms(lease_ms)?;
        let lease = lease.clone();
        self.write(move |c| limits::renew_slot(c, &lease, lease_ms, now_ms))
            .await
    }

    async fn release_slot(&self, lease: &SlotLease) -> StoreResult<()> {
        let lease = lease.clone();
        self.write(move |c| limits::release_slot(c, &lease)).await
    }

    /// An in-memory database is private to this process; a file may be
    /// shared with other processes (another `signet serve`, the CLI), so
    /// limits on a file go through it.
    fn only_node(&self) -> bool {
        matches!(self.inner.location, Location::Memory)
    }

    async fn put_push_binding(&self, binding: PushBinding) -> StoreResult<PushBinding> {
        binding.validate()?;
        self.write(move |c| push::put(c, &binding)).await
    }

    async fn push_binding(&self, queue: &str) -> StoreResult<Option<PushBinding>> {
        let queue = queue.to_owned();
        self.read(move |c| push::by_queue(c, &queue)).await
    }

    async fn list_push_bindings(&self) -> StoreResult<Vec<PushBinding>> {
        self.read(push::list).await
    }

    async fn delete_push_binding(&self, queue: &str) -> StoreResult<()> {
        let queue = queue.to_owned();
        self.write(move |c| push::delete(c, &queue)).await
    }

    async fn pending_messages_for_target(&self, target_id: &str) -> StoreResult<u64> {
        let id = target_id.to_owned();
        self.read(move |c| targets::pending_messages(c, &id)).await
    }

    async fn create_schedule(&self, schedule: ScheduleRecord) -> StoreResult<()> {
        schedule.validate()?;
        self.write(move |c| schedules::create(c, &schedule)).await
    }

    async fn schedule(&self, id: &str) -> StoreResult<Option<ScheduleRecord>> {
        let id = id.to_owned();
        self.read(move |c| schedules::by_id(c, &id)).await
    }

    async fn schedule_by_name(&self, name: &str) -> StoreResult<Option<ScheduleRecord>> {
        let name = name.to_owned();
        self.read(move |c| schedules::by_name(c, &name)).await
    }

    async fn list_schedules(&self) -> StoreResult<Vec<ScheduleRecord>> {
        self.read(schedules::list).await
    }

    async fn update_schedule(&self, schedule: ScheduleRecord) -> StoreResult<()> {
        schedule.validate()?;
        self.write(move |c| schedules::update(c, &schedule)).await
    }

    async fn delete_schedule(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |c| schedules::delete(c, &id)).await
    }

    async fn due_schedules(&self, now_ms: i64, limit: usize) -> StoreResult<Vec<ScheduleRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.read(move |c| schedules::due(c, now_ms, limit)).await
    }

    async fn advance_schedule(
        &self,
        id: &str,
        fired_at_ms: i64,
        next_ms: Option<i64>,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |c| schedules::advance(c, &id, fired_at_ms, next_ms, now_ms))
            .await
    }

    async fn try_lead(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
        now_ms: i64,
    ) -> StoreResult<Option<LeaderLease>> {
        leases::validate(name, holder, ttl_ms)?;
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.write(move |c| leases::try_lead(c, &name, &holder, ttl_ms, now_ms))
            .await
    }

    async fn resign(&self, name: &str, holder: &str) -> StoreResult<()> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.write(move |c| leases::resign(c, &name, &holder)).await
    }

    async fn leader(&self, name: &str) -> StoreResult<Option<LeaderLease>> {
        let name = name.to_owned();
        self.read(move |c| leases::current(c, &name)).await
    }

    /// Wakes early when this process enqueues, retries (due now), releases,
    /// rescues or replays work on one of `queues` (at once), and when
    /// another process on the same file commits while work is due on one of
    /// them (within a few milliseconds: `watch.rs` polls `PRAGMA
    /// data_version` while anyone waits). The timeout is the safety net.
    fn work_mark(&self, queues: &[String]) -> WorkMark {
        self.inner.work.mark(queues)
    }

    async fn wait_for_work(
        &self,
        queues: &[String],
        since: WorkMark,
        timeout: std::time::Duration,
    ) {
        let _counted = self.inner.watcher.as_ref().map(Watcher::waiting);
        self.inner.work.wait(queues, since, timeout).await;
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(|c| {
            c.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(|e| map_err("pinging the database", e))
        })
        .await?;
        // The writer answers too (it may be wedged behind a lock).
        self.write(|_| Ok(())).await
    }

    async fn check_writable(&self, now_ms: i64) -> StoreResult<()> {
        // A row inserted and deleted in the same committed transaction:
        // the page it touched is written to the WAL at commit, so a
        // read-only database fails at the insert and a full disk at the
        // commit, and nothing is left behind. The name cannot be a role's.
        self.write(move |c| {
            c.execute(
                "INSERT INTO leader_leases (name, holder, term, expires_at_ms) \
                 VALUES ('signet:write-check', 'readyz', 1, ?1)",
                [now_ms],
            )
            .map_err(|e| map_err("checking that the database can be written", e))?;
            c.execute(
                "DELETE FROM leader_leases WHERE name = 'signet:write-check'",
                [],
            )
            .map_err(|e| map_err("checking that the database can be written", e))?;
            Ok(())
        })
        .await
    }

    async fn close(&self) -> StoreResult<()> {
        if let Some(watcher) = &self.inner.watcher {
            watcher.stop();
        }
        if let Some(readers) = &self.inner.readers {
            readers.close();
        }
        self.inner.writer.close().await
    }
}

/// A fresh copy of an error that ended a whole transaction.
fn map_lost(e: &StoreError) -> StoreError {
    crate::error_map::Failure::from_store_error(e).to_error()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_store(dir: &tempfile::TempDir) -> SqliteStore {
        let url = format!("sqlite://{}", dir.path().join("w.db").display());
        SqliteStore::open(&url, SqliteConfig::default()).unwrap()
    }

    #[tokio::test]
    async fn a_read_only_database_fails_check_writable_with_the_cause() {
        let dir = tempfile::tempdir().unwrap();
        let store = temp_store(&dir);
        // The writer's connection may no longer write (what a read-only
        // file or mount does to SQLite: SQLITE_READONLY).
        store
            .write(|c| pragma(c, "query_only", "ON"))
            .await
            .unwrap();
        let e = store.check_writable(1).await.unwrap_err();
        assert!(matches!(e, StoreError::Unavailable { .. }), "{e:?}");
        assert!(e.is_storage_unavailable());
        let text = e.to_string();
        assert!(
            text.contains("readonly") || text.contains("read-only") || text.contains("query_only"),
            "{text}"
        );
        assert!(text.contains("SQLite code"), "{text}");
        // An ordinary write is classified the same way (the API's 503).
        let e = store
            .enqueue(signet_store::testkit::new_task("ro"), 1)
            .await
            .unwrap_err();
        assert!(e.is_storage_unavailable(), "{e:?}");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn database_wal_and_shm_files_are_created_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let store = temp_store(&dir);
        store
            .enqueue(signet_store::testkit::new_task("perm"), 1)
            .await
            .unwrap();
        for name in ["w.db", "w.db-wal", "w.db-shm"] {
            let mode = std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}: {mode:o}");
        }
        store.close().await.unwrap();
    }
}
