//! [`PostgresStore`]: the [`Store`] on PostgreSQL.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use signet_store::delivery::check_exchange;
use signet_store::history::check_actor;
use signet_store::migration::wall_clock_ms;
use signet_store::{
    ApiKeyRecord, ClaimRequest, DeadFilter, DeadReason, DeadSelector, DeliverySettlement, Enqueued,
    FailOutcome, HistoryEvent, HttpExchange, KeyUsage, LeaderLease, LeaseToken, NewTask, Page,
    PausedQueue, PushBinding, QueueCounts, ScheduleRecord, Settlement, SignatureRecord, Store,
    StoreError, StoreResult, TargetRecord, TaskFilter, TaskRow, WorkMark,
};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error_map::{map_err, map_pool_err};
use crate::migrate::{current_version, migrate, MigrationReport, MigrationStatus, SCHEMA_VERSION};
use crate::notify::{channel_for, Listener};
use crate::options::{PostgresOptions, APPLICATION_NAME};
use crate::targets::By;
use crate::url::parse_url;
use crate::{
    api_keys, delivery, history, leader, limits, pause, push, queries, schedules, targets, tasks,
};

/// The multi-node store on PostgreSQL. Cheap to clone: clones share one
/// pool and one listener.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    closed: AtomicBool,
    /// `None`: the server's default `search_path`.
    schema: Option<String>,
    /// The schema the tables are in, as the server resolved it.
    resolved_schema: String,
    channel: String,
    listener: Listener,
    status: MigrationStatus,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The pool's configuration holds the password: never print it.
        f.debug_struct("PostgresStore")
            .field("schema", &self.inner.resolved_schema)
            .field("schema_version", &self.inner.status.current)
            .finish_non_exhaustive()
    }
}

/// The driver configuration for `url` and `options` (the schema becomes
/// the `search_path` of every connection), and the TLS connector every
/// connection uses: the pool's, the listener's, and migrations'.
fn driver_config(
    url: &str,
    options: &PostgresOptions,
) -> StoreResult<(tokio_postgres::Config, MakeRustlsConnect)> {
    options.validate()?;
    let (mut config, tls) = parse_url(url)?.into_parts();
    let connector = tls.connector()?;
    if config.get_application_name().is_none() {
        config.application_name(APPLICATION_NAME);
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(options.connect_timeout);
    }
    // Notice a dead peer within about a minute, not the kernel's two hours.
    config.keepalives(true);
    config.keepalives_idle(Duration::from_secs(30));
    if let Some(schema) = &options.schema {
        let mut opts = config.get_options().unwrap_or_default().to_owned();
        if !opts.is_empty() {
            opts.push(' ');
        }
        // The name was validated (a-z 0-9 _): no quoting or escaping needed.
        opts.push_str(&format!("-c search_path={schema}"));
        config.options(&opts);
    }
    Ok((config, connector))
}

fn pool_for(
    config: tokio_postgres::Config,
    connector: MakeRustlsConnect,
    options: &PostgresOptions,
) -> StoreResult<Pool> {
    let manager = Manager::from_config(
        config,
        connector,
        ManagerConfig {
            // A broken connection (server restart, terminated backend) is
            // noticed by its driver task and replaced on the next checkout.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(options.pool_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(options.pool_timeout))
        .create_timeout(Some(options.connect_timeout))
        .recycle_timeout(Some(options.connect_timeout))
        .build()
        .map_err(|e| StoreError::backend("building the PostgreSQL connection pool", e))
}

/// Reports the schema version at `url` (in `options.schema`) without
/// changing anything.
pub async fn migration_status(
    url: &str,
    options: &PostgresOptions,
) -> StoreResult<MigrationStatus> {
    let (config, connector) = driver_config(url, options)?;
    let (client, connection) = config
        .connect(connector)
        .await
        .map_err(|e| map_err("connecting to PostgreSQL", e))?;
    let driver = tokio::spawn(connection);
    let current = current_version(&client).await;
    drop(client);
    let _ = driver.await;
    Ok(crate::migrate::status_for_version(current?))
}

/// Applies pending migrations at `url` (in `options.schema`, created if
/// needed) over one connection, and says which. Safe to run from many
/// nodes at once; a schema newer than this build is refused.
pub async fn migrate_database(
    url: &str,
    options: &PostgresOptions,
) -> StoreResult<MigrationReport> {
    let (config, connector) = driver_config(url, options)?;
    let (mut client, connection) = config
        .connect(connector)
        .await
        .map_err(|e| map_err("connecting to PostgreSQL", e))?;
    let driver = tokio::spawn(connection);
    let report = migrate(&mut client, options.schema.as_deref(), wall_clock_ms()).await;
    drop(client);
    let _ = driver.await;
    report
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:5432/db`),
    /// applies pending migrations if `options.migrate` (under an advisory
    /// lock, so nodes may start together), and refuses a schema newer than
    /// this build ([`StoreError::SchemaTooNew`]) or, without `migrate`, one
    /// that is behind.
    pub async fn connect(url: &str, options: PostgresOptions) -> StoreResult<PostgresStore> {
        let (config, connector) = driver_config(url, &options)?;
        let pool = pool_for(config.clone(), connector.clone(), &options)?;
        let mut client = pool.get().await.map_err(map_pool_err)?;
        let mut current = current_version(&**client).await?;
        if current > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                found: current,
                known: SCHEMA_VERSION,
            });
        }
        if current < SCHEMA_VERSION {
            if !options.migrate {
                return Err(StoreError::invalid(format!(
                    "the database schema is at version {current} and this build needs {SCHEMA_VERSION}; run `signet migrate` first"
                )));
            }
            let report = migrate(&mut client, options.schema.as_deref(), wall_clock_ms()).await?;
            for (version, name) in &report.applied {
                tracing::info!(version, name, "applied PostgreSQL migration");
            }
            current = report.to;
        }
        let resolved: Option<String> = client
            .query_one("SELECT current_schema()::TEXT", &[])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(|e| map_err("reading the current schema", e))?;
        let resolved_schema = resolved.unwrap_or_else(|| "public".to_owned());
        drop(client);
        let channel = channel_for(&resolved_schema);
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                listener: Listener::new(config, connector, channel.clone()),
                pool,
                closed: AtomicBool::new(false),
                schema: options.schema,
                resolved_schema,
                channel,
                status: crate::migrate::status_for_version(current),
            }),
        })
    }

    /// Applies pending migrations now and says which (none when the
    /// database is up to date or another node migrated it first).
    pub async fn migrate(&self) -> StoreResult<MigrationReport> {
        let mut client = self.conn().await?;
        migrate(&mut client, self.inner.schema.as_deref(), wall_clock_ms()).await
    }

    /// The schema status reached at connect.
    pub fn schema_status(&self) -> &MigrationStatus {
        &self.inner.status
    }

    /// The schema the tables are in.
    pub fn schema_name(&self) -> &str {
        &self.inner.resolved_schema
    }

    /// Whether the store's LISTEN connection is up, so that
    /// [`wait_for_work`](Store::wait_for_work) wakes on new work rather
    /// than at its timeout. It starts with the first wait and reconnects by
    /// itself.
    pub fn is_listening(&self) -> bool {
        self.inner.listener.is_listening()
    }

    /// Starts the LISTEN connection if needed and waits until it is up or
    /// `timeout` passes; returns whether it is up. Workers need not call
    /// it (waits start it); it makes the first wake-up prompt.
    pub async fn until_listening(&self, timeout: Duration) -> bool {
        if self.inner.closed.load(Ordering::Acquire) {
            return false;
        }
        self.inner.listener.until_listening(timeout).await
    }

    /// The pool: connections open, idle, and callers waiting for one.
    pub fn pool_status(&self) -> deadpool_postgres::Status {
        self.inner.pool.status()
    }

    /// Drops the store's schema with every table in it, then closes the
    /// store. Only for a store connected with its own
    /// [`PostgresOptions::schema`] (tests, benchmarks); refused otherwise.
    pub async fn danger_drop_schema(&self) -> StoreResult<()> {
        let Some(schema) = self.inner.schema.clone() else {
            return Err(StoreError::invalid(
                "refusing to drop the default schema; only a store with its own schema can drop it",
            ));
        };
        self.inner.listener.stop();
        let client = self.conn().await?;
        // The name was validated (a-z 0-9 _): no quoting needed.
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .await
            .map_err(|e| map_err(format!("dropping schema {schema}"), e))?;
        drop(client);
        self.close().await
    }

    async fn conn(&self) -> StoreResult<Object> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        self.inner.pool.get().await.map_err(map_pool_err)
    }

    fn channel(&self) -> &str {
        &self.inner.channel
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn enqueue_batch(&self, tasks: Vec<NewTask>, now_ms: i64) -> StoreResult<Vec<Enqueued>> {
        NewTask::validate_batch(&tasks)?;
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        let mut client = self.conn().await?;
        if tasks.iter().all(|t| t.idempotency_key.is_none()) {
            // One statement: atomic on its own.
            return tasks::enqueue_batch(&client, self.channel(), tasks, now_ms).await;
        }
        // Keys are looked up, then inserted: a transaction keeps a conflict
        // found after the insert from storing part of the batch.
        let tx = client
            .transaction()
            .await
            .map_err(|e| map_err("starting an enqueue", e))?;
        let out = tasks::enqueue_batch(&tx, self.channel(), tasks, now_ms).await?;
        tx.commit()
            .await
            .map_err(|e| map_err("committing an enqueue", e))?;
        Ok(out)
    }

    async fn claim(&self, request: ClaimRequest, now_ms: i64) -> StoreResult<Vec<TaskRow>> {
        request.validate()?;
        let client = self.conn().await?;
        tasks::claim(&client, &request, now_ms).await
    }

    async fn heartbeat(&self, lease: &LeaseToken, lease_ms: i64, now_ms: i64) -> StoreResult<()> {
        signet_store::check_lease_ms(lease_ms)?;
        let client = self.conn().await?;
        tasks::heartbeat(&client, lease, lease_ms, now_ms).await
    }

    async fn complete(
        &self,
        lease: &LeaseToken,
        result: Option<Vec<u8>>,
        now_ms: i64,
    ) -> StoreResult<()> {
        let client = self.conn().await?;
        tasks::complete(&client, lease, result.as_deref(), None, now_ms).await
    }

    async fn complete_batch(
        &self,
        items: Vec<(LeaseToken, Option<Vec<u8>>)>,
        now_ms: i64,
    ) -> StoreResult<Vec<StoreResult<()>>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.conn().await?;
        tasks::complete_batch(&client, &items, now_ms).await
    }

    async fn fail(
        &self,
        lease: &LeaseToken,
        error: &str,
        outcome: FailOutcome,
        now_ms: i64,
    ) -> StoreResult<()> {
        let client = self.conn().await?;
        tasks::fail(
            &client,
            self.channel(),
            lease,
            error,
            &outcome,
            None,
            now_ms,
        )
        .await
    }

    async fn release_at(&self, lease: &LeaseToken, run_at_ms: i64, now_ms: i64) -> StoreResult<()> {
        let client = self.conn().await?;
        tasks::release(&client, self.channel(), lease, run_at_ms, now_ms).await
    }

    async fn cancel(&self, id: &str, actor: &str, now_ms: i64) -> StoreResult<TaskRow> {
        check_actor(actor)?;
        let client = self.conn().await?;
        tasks::cancel(&client, id, actor, now_ms).await
    }

    async fn retry_now(&self, id: &str, actor: &str, now_ms: i64) -> StoreResult<TaskRow> {
        check_actor(actor)?;
        let client = self.conn().await?;
        tasks::retry_now(&client, self.channel(), id, actor, now_ms).await
    }

    async fn resend(&self, id: &str, actor: &str, now_ms: i64) -> StoreResult<TaskRow> {
        check_actor(actor)?;
        let client = self.conn().await?;
        tasks::resend(&client, self.channel(), id, actor, now_ms).await
    }

    async fn pause_queue(
        &self,
        queue: &str,
        actor: &str,
        reason: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<PausedQueue> {
        PausedQueue::validate(queue, actor, reason)?;
        let client = self.conn().await?;
        pause::pause(&client, queue, actor, reason, now_ms).await
    }

    async fn resume_queue(&self, queue: &str) -> StoreResult<Option<PausedQueue>> {
        let client = self.conn().await?;
        pause::resume(&client, self.channel(), queue).await
    }

    async fn paused_queues(&self) -> StoreResult<Vec<PausedQueue>> {
        let client = self.conn().await?;
        pause::list(&client).await
    }

    async fn kill(
        &self,
        id: &str,
        reason: DeadReason,
        detail: &str,
        now_ms: i64,
    ) -> StoreResult<TaskRow> {
        let client = self.conn().await?;
        tasks::kill(&client, id, reason, detail, now_ms).await
    }

    async fn rescue_expired(&self, now_ms: i64, limit: usize) -> StoreResult<Vec<String>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let client = self.conn().await?;
        tasks::rescue_expired(&client, self.channel(), now_ms, limit).await
    }

    async fn task(&self, id: &str) -> StoreResult<Option<TaskRow>> {
        let client = self.conn().await?;
        queries::task_by_id(&client, id).await
    }

    async fn tasks_by_id(&self, ids: &[String]) -> StoreResult<Vec<TaskRow>> {
        let client = self.conn().await?;
        queries::tasks_by_id(&client, ids).await
    }

    async fn list_tasks(&self, filter: TaskFilter) -> StoreResult<Page<TaskRow>> {
        let client = self.conn().await?;
        queries::list_tasks(&client, &filter).await
    }

    async fn list_dead(&self, filter: DeadFilter) -> StoreResult<Page<TaskRow>> {
        let client = self.conn().await?;
        queries::list_dead(&client, &filter).await
    }

    async fn replay_dead(
        &self,
        selector: DeadSelector,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<Vec<String>> {
        check_actor(actor)?;
        let client = self.conn().await?;
        let ids = match selector {
            DeadSelector::Ids(ids) => ids,
            DeadSelector::Filter(f) => queries::dead_ids(&client, &f).await?,
        };
        tasks::replay(&client, self.channel(), &ids, actor, now_ms).await
    }

    async fn resign_dead(
        &self,
        id: &str,
        signature: SignatureRecord,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<TaskRow> {
        check_actor(actor)?;
        let client = self.conn().await?;
        tasks::resign(&client, id, &signature, actor, now_ms).await
    }

    async fn purge_dead(&self, selector: DeadSelector) -> StoreResult<Vec<String>> {
        let client = self.conn().await?;
        let ids = match selector {
            DeadSelector::Ids(ids) => ids,
            DeadSelector::Filter(f) => queries::dead_ids(&client, &f).await?,
        };
        tasks::purge(&client, &ids).await
    }

    async fn counts(&self) -> StoreResult<Vec<QueueCounts>> {
        let client = self.conn().await?;
        queries::counts(&client).await
    }

    async fn activity(
        &self,
        window: signet_store::ActivityWindow,
    ) -> StoreResult<signet_store::Activity> {
        let client = self.conn().await?;
        queries::activity(&client, &window).await
    }

    async fn pending_by_key(&self) -> StoreResult<Vec<KeyUsage>> {
        let client = self.conn().await?;
        queries::pending_by_key(&client).await
    }

    async fn prune(&self, finished_before_ms: i64, limit: usize) -> StoreResult<u64> {
        if limit == 0 {
            return Ok(0);
        }
        let client = self.conn().await?;
        tasks::prune(&client, finished_before_ms, limit).await
    }

    async fn create_api_key(&self, key: ApiKeyRecord) -> StoreResult<()> {
        key.validate()?;
        let client = self.conn().await?;
        api_keys::create(&client, &key).await
    }

    async fn api_key_by_hash(&self, hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        let client = self.conn().await?;
        api_keys::by_hash(&client, hash).await
    }

    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKeyRecord>> {
        let client = self.conn().await?;
        api_keys::list(&client).await
    }

    async fn revoke_api_key(&self, id: &str, now_ms: i64) -> StoreResult<ApiKeyRecord> {
        let client = self.conn().await?;
        api_keys::revoke(&client, id, now_ms).await
    }

    async fn end_session(&self, session_id: &str, expires_at_ms: i64) -> StoreResult<()> {
        signet_store::check_session_id(session_id)?;
        let client = self.conn().await?;
        api_keys::end_session(&client, session_id, expires_at_ms).await
    }

    async fn session_ended(&self, session_id: &str) -> StoreResult<bool> {
        let client = self.conn().await?;
        api_keys::session_ended(&client, session_id).await
    }

    async fn prune_ended_sessions(&self, now_ms: i64, limit: usize) -> StoreResult<u64> {
        if limit == 0 {
            return Ok(0);
        }
        let client = self.conn().await?;
        api_keys::prune_ended_sessions(&client, now_ms, limit).await
    }

    async fn settle_delivery(
        &self,
        lease: &LeaseToken,
        http: HttpExchange,
        settlement: Settlement,
        now_ms: i64,
    ) -> StoreResult<()> {
        check_exchange(&http, &settlement)?;
        let client = self.conn().await?;
        match &settlement {
            Settlement::Delivered { result } => {
                tasks::complete(&client, lease, result.as_deref(), Some(&http), now_ms).await
            }
            Settlement::Failed { error, outcome } => {
                let channel = self.channel();
                tasks::fail(&client, channel, lease, error, outcome, Some(&http), now_ms).await
            }
        }
    }

    async fn settle_deliveries(
        &self,
        items: Vec<DeliverySettlement>,
        now_ms: i64,
    ) -> StoreResult<Vec<StoreResult<()>>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut client = self.conn().await?;
        tasks::settle_deliveries(&mut client, self.channel(), &items, now_ms).await
    }

    async fn history(&self, task_id: &str) -> StoreResult<Vec<HistoryEvent>> {
        let mut client = self.conn().await?;
        history::list(&mut client, task_id).await
    }

    async fn pending_callbacks(&self, limit: usize) -> StoreResult<Vec<TaskRow>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let client = self.conn().await?;
        delivery::pending_callbacks(&client, limit).await
    }

    async fn mark_callbacks_sent(&self, ids: &[String], now_ms: i64) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let client = self.conn().await?;
        delivery::mark_callbacks_sent(&client, ids, now_ms).await
    }

    async fn create_target(&self, target: TargetRecord) -> StoreResult<()> {
        target.validate()?;
        let client = self.conn().await?;
        targets::create(&client, &target).await
    }

    async fn target(&self, id: &str) -> StoreResult<Option<TargetRecord>> {
        let client = self.conn().await?;
        targets::by(&client, By::Id, id).await
    }

    async fn target_by_name(&self, name: &str) -> StoreResult<Option<TargetRecord>> {
        let client = self.conn().await?;
        targets::by(&client, By::Name, name).await
    }

    async fn list_targets(&self) -> StoreResult<Vec<TargetRecord>> {
        let client = self.conn().await?;
        targets::list(&client).await
    }

    async fn targets_after(
        &self,
        after_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<TargetRecord>> {
        let client = self.conn().await?;
        targets::after(&client, after_id, limit).await
    }

    async fn swap_target_secrets(
        &self,
        id: &str,
        expected: &[u8],
        sealed_secrets: &[u8],
        secret_fingerprint: &str,
    ) -> StoreResult<bool> {
        TargetRecord::validate_secrets_swap(id, sealed_secrets)?;
        let client = self.conn().await?;
        targets::swap_secrets(&client, id, expected, sealed_secrets, secret_fingerprint).await
    }

    async fn update_target(&self, target: TargetRecord) -> StoreResult<()> {
        target.validate()?;
        let client = self.conn().await?;
        targets::update(&client, &target).await
    }

    async fn delete_target(&self, id: &str) -> StoreResult<()> {
        let client = self.conn().await?;
        targets::delete(&client, id).await
    }

    async fn take_rate(
        &self,
        take: signet_store::RateTake,
        now_ms: i64,
    ) -> StoreResult<signet_store::RateGrant> {
        take.validate()?;
        let client = self.conn().await?;
        limits::take_rate(&client, &take, now_ms).await
    }

    async fn take_slot(
        &self,
        take: signet_store::SlotTake,
        now_ms: i64,
    ) -> StoreResult<Option<signet_store::SlotLease>> {
        take.validate()?;
        let client = self.conn().await?;
        limits::take_slot(&client, &take, now_ms).await
    }

    async fn renew_slot(
        &self,
        lease: &signet_store::SlotLease,
        lease_ms: i64,
        now_ms: i64,
    ) -> StoreResult<bool> {
        signet_store::limits::check_slot_lease_ms(lease_ms)?;
        let client = self.conn().await?;
        limits::renew_slot(&client, lease, lease_ms, now_ms).await
    }

    async fn release_slot(&self, lease: &signet_store::SlotLease) -> StoreResult<()> {
        let client = self.conn().await?;
        limits::release_slot(&client, lease).await
    }

    async fn store_time_ms(&self) -> StoreResult<Option<i64>> {
        let client = self.conn().await?;
        limits::store_time_ms(&client).await.map(Some)
    }

    async fn put_push_binding(&self, binding: PushBinding) -> StoreResult<PushBinding> {
        binding.validate()?;
        let client = self.conn().await?;
        push::put(&client, &binding).await
    }

    async fn push_binding(&self, queue: &str) -> StoreResult<Option<PushBinding>> {
        let client = self.conn().await?;
        push::by_queue(&client, queue).await
    }

    async fn list_push_bindings(&self) -> StoreResult<Vec<PushBinding>> {
        let client = self.conn().await?;
        push::list(&client).await
    }

    async fn delete_push_binding(&self, queue: &str) -> StoreResult<()> {
        let client = self.conn().await?;
        push::delete(&client, queue).await
    }

    async fn pending_messages_for_target(&self, target_id: &str) -> StoreResult<u64> {
        let client = self.conn().await?;
        targets::pending_messages(&client, target_id).await
    }

    async fn create_schedule(&self, schedule: ScheduleRecord) -> StoreResult<()> {
        schedule.validate()?;
        let client = self.conn().await?;
        schedules::create(&client, &schedule).await
    }

    async fn schedule(&self, id: &str) -> StoreResult<Option<ScheduleRecord>> {
        let client = self.conn().await?;
        schedules::by(&client, By::Id, id).await
    }

    async fn schedule_by_name(&self, name: &str) -> StoreResult<Option<ScheduleRecord>> {
        let client = self.conn().await?;
        schedules::by(&client, By::Name, name).await
    }

    async fn list_schedules(&self) -> StoreResult<Vec<ScheduleRecord>> {
        let client = self.conn().await?;
        schedules::list(&client).await
    }

    async fn update_schedule(&self, schedule: ScheduleRecord) -> StoreResult<()> {
        schedule.validate()?;
        let client = self.conn().await?;
        schedules::update(&client, &schedule).await
    }

    async fn delete_schedule(&self, id: &str) -> StoreResult<()> {
        let client = self.conn().await?;
        schedules::delete(&client, id).await
    }

    async fn due_schedules(&self, now_ms: i64, limit: usize) -> StoreResult<Vec<ScheduleRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let client = self.conn().await?;
        schedules::due(&client, now_ms, limit).await
    }

    async fn advance_schedule(
        &self,
        id: &str,
        fired_at_ms: i64,
        next_ms: Option<i64>,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let client = self.conn().await?;
        schedules::advance(&client, id, fired_at_ms, next_ms, now_ms).await
    }

    async fn try_lead(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
        now_ms: i64,
    ) -> StoreResult<Option<LeaderLease>> {
        let client = self.conn().await?;
        leader::try_lead(&client, name, holder, ttl_ms, now_ms).await
    }

    async fn resign(&self, name: &str, holder: &str) -> StoreResult<()> {
        let client = self.conn().await?;
        leader::resign(&client, name, holder).await
    }

    async fn leader(&self, name: &str) -> StoreResult<Option<LeaderLease>> {
        let client = self.conn().await?;
        leader::leader(&client, name).await
    }

    fn work_mark(&self, queues: &[String]) -> WorkMark {
        self.inner.listener.mark(queues)
    }

    async fn wait_for_work(&self, queues: &[String], since: WorkMark, timeout: Duration) {
        if self.inner.closed.load(Ordering::Acquire) {
            tokio::time::sleep(timeout).await;
            return;
        }
        self.inner.listener.wait(queues, since, timeout).await;
    }

    async fn ping(&self) -> StoreResult<()> {
        let client = self.conn().await?;
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|e| map_err("pinging PostgreSQL", e))?;
        Ok(())
    }

    async fn check_writable(&self, now_ms: i64) -> StoreResult<()> {
        // A row written and deleted in one committed transaction: a
        // read-only server (a standby, `default_transaction_read_only`)
        // refuses the insert, a full disk the WAL write; nothing is left.
        let mut client = self.conn().await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| map_err("checking that PostgreSQL can be written", e))?;
        tx.execute(
            "INSERT INTO leader_leases (name, holder, term, expires_at_ms) \
             VALUES ('signet:write-check', 'readyz', 1, $1) \
             ON CONFLICT (name) DO UPDATE SET expires_at_ms = EXCLUDED.expires_at_ms",
            &[&now_ms],
        )
        .await
        .map_err(|e| map_err("checking that PostgreSQL can be written", e))?;
        tx.execute(
            "DELETE FROM leader_leases WHERE name = 'signet:write-check'",
            &[],
        )
        .await
        .map_err(|e| map_err("checking that PostgreSQL can be written", e))?;
        tx.commit()
            .await
            .map_err(|e| map_err("checking that PostgreSQL can be written", e))
    }

    async fn close(&self) -> StoreResult<()> {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.listener.stop();
        self.inner.pool.close();
        Ok(())
    }
}
