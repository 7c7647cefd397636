//! Transient store errors (`Busy`) are retried by the worker: no task is
//! lost, none runs an extra attempt because of them.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use signet_runtime::{HandlerError, TaskContext, TaskSpec, Worker, WorkerEventKind};
use signet_store::{
    ApiKeyRecord, ClaimRequest, DeadFilter, DeadReason, DeadSelector, Enqueued, FailOutcome,
    HistoryEvent, HttpExchange, KeyUsage, LeaderLease, LeaseToken, NewTask, Page, QueueCounts,
    ScheduleRecord, Settlement, SignatureRecord, Store, StoreError, StoreResult, TargetRecord,
    TaskFilter, TaskRow, TaskState,
};

use crate::support::*;

/// Fails every other worker-side write with `Busy`, before touching the
/// database (as the contract says: an error changed nothing).
struct Flaky {
    inner: Arc<dyn Store>,
    calls: AtomicU32,
    injected: AtomicU32,
}

impl Flaky {
    fn hiccup(&self) -> StoreResult<()> {
        if self.calls.fetch_add(1, Ordering::SeqCst) % 2 == 0 {
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::Busy {
                message: "injected by the test".into(),
                source: None,
            });
        }
        Ok(())
    }
}

#[async_trait]
impl Store for Flaky {
    async fn enqueue_batch(&self, tasks: Vec<NewTask>, now_ms: i64) -> StoreResult<Vec<Enqueued>> {
        self.inner.enqueue_batch(tasks, now_ms).await
    }
    async fn claim(&self, request: ClaimRequest, now_ms: i64) -> StoreResult<Vec<TaskRow>> {
        self.hiccup()?;
        self.inner.claim(request, now_ms).await
    }
    async fn heartbeat(&self, lease: &LeaseToken, lease_ms: i64, now_ms: i64) -> StoreResult<()> {
        self.hiccup()?;
        self.inner.heartbeat(lease, lease_ms, now_ms).await
    }
    async fn complete(
        &self,
        lease: &LeaseToken,
        result: Option<Vec<u8>>,
        now_ms: i64,
    ) -> StoreResult<()> {
        self.hiccup()?;
        self.inner.complete(lease, result, now_ms).await
    }
    async fn complete_batch(
        &self,
        items: Vec<(LeaseToken, Option<Vec<u8>>)>,
        now_ms: i64,
    ) -> StoreResult<Vec<StoreResult<()>>> {
        self.hiccup()?;
        self.inner.complete_batch(items, now_ms).await
    }
    async fn fail(
        &self,
        lease: &LeaseToken,
        error: &str,
        outcome: FailOutcome,
        now_ms: i64,
    ) -> StoreResult<()> {
        self.hiccup()?;
        self.inner.fail(lease, error, outcome, now_ms).await
    }
    async fn release(&self, lease: &LeaseToken, now_ms: i64) -> StoreResult<()> {
        self.hiccup()?;
        self.inner.release(lease, now_ms).await
    }
    async fn cancel(&self, id: &str, actor: &str, now_ms: i64) -> StoreResult<TaskRow> {
        self.inner.cancel(id, actor, now_ms).await
    }
    async fn kill(
        &self,
        id: &str,
        reason: DeadReason,
        detail: &str,
        now_ms: i64,
    ) -> StoreResult<TaskRow> {
        self.inner.kill(id, reason, detail, now_ms).await
    }
    async fn rescue_expired(&self, now_ms: i64, limit: usize) -> StoreResult<Vec<String>> {
        self.inner.rescue_expired(now_ms, limit).await
    }
    async fn task(&self, id: &str) -> StoreResult<Option<TaskRow>> {
        self.inner.task(id).await
    }
    async fn list_tasks(&self, filter: TaskFilter) -> StoreResult<Page<TaskRow>> {
        self.inner.list_tasks(filter).await
    }
    async fn list_dead(&self, filter: DeadFilter) -> StoreResult<Page<TaskRow>> {
        self.inner.list_dead(filter).await
    }
    async fn replay_dead(
        &self,
        selector: DeadSelector,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<Vec<String>> {
        self.inner.replay_dead(selector, actor, now_ms).await
    }
    async fn resign_dead(
        &self,
        id: &str,
        signature: SignatureRecord,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<TaskRow> {
        self.inner.resign_dead(id, signature, actor, now_ms).await
    }
    async fn purge_dead(&self, selector: DeadSelector) -> StoreResult<Vec<String>> {
        self.inner.purge_dead(selector).await
    }
    async fn counts(&self) -> StoreResult<Vec<QueueCounts>> {
        self.inner.counts().await
    }
    async fn pending_by_key(&self) -> StoreResult<Vec<KeyUsage>> {
        self.inner.pending_by_key().await
    }
    async fn prune(&self, finished_before_ms: i64, limit: usize) -> StoreResult<u64> {
        self.inner.prune(finished_before_ms, limit).await
    }
    async fn create_api_key(&self, key: ApiKeyRecord) -> StoreResult<()> {
        self.inner.create_api_key(key).await
    }
    async fn api_key_by_hash(&self, hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        self.inner.api_key_by_hash(hash).await
    }
    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKeyRecord>> {
        self.inner.list_api_keys().await
    }
    async fn revoke_api_key(&self, id: &str, now_ms: i64) -> StoreResult<ApiKeyRecord> {
        self.inner.revoke_api_key(id, now_ms).await
    }
    async fn settle_delivery(
        &self,
        lease: &LeaseToken,
        http: HttpExchange,
        settlement: Settlement,
        now_ms: i64,
    ) -> StoreResult<()> {
        self.hiccup()?;
        self.inner
            .settle_delivery(lease, http, settlement, now_ms)
            .await
    }
    async fn history(&self, task_id: &str) -> StoreResult<Vec<HistoryEvent>> {
        self.inner.history(task_id).await
    }
    async fn pending_callbacks(&self, limit: usize) -> StoreResult<Vec<TaskRow>> {
        self.inner.pending_callbacks(limit).await
    }
    async fn mark_callbacks_sent(&self, ids: &[String], now_ms: i64) -> StoreResult<()> {
        self.inner.mark_callbacks_sent(ids, now_ms).await
    }
    async fn create_target(&self, target: TargetRecord) -> StoreResult<()> {
        self.inner.create_target(target).await
    }
    async fn target(&self, id: &str) -> StoreResult<Option<TargetRecord>> {
        self.inner.target(id).await
    }
    async fn target_by_name(&self, name: &str) -> StoreResult<Option<TargetRecord>> {
        self.inner.target_by_name(name).await
    }
    async fn list_targets(&self) -> StoreResult<Vec<TargetRecord>> {
        self.inner.list_targets().await
    }
    async fn update_target(&self, target: TargetRecord) -> StoreResult<()> {
        self.inner.update_target(target).await
    }
    async fn delete_target(&self, id: &str) -> StoreResult<()> {
        self.inner.delete_target(id).await
    }
    async fn create_schedule(&self, schedule: ScheduleRecord) -> StoreResult<()> {
        self.inner.create_schedule(schedule).await
    }
    async fn schedule(&self, id: &str) -> StoreResult<Option<ScheduleRecord>> {
        self.inner.schedule(id).await
    }
    async fn schedule_by_name(&self, name: &str) -> StoreResult<Option<ScheduleRecord>> {
        self.inner.schedule_by_name(name).await
    }
    async fn list_schedules(&self) -> StoreResult<Vec<ScheduleRecord>> {
        self.inner.list_schedules().await
    }
    async fn update_schedule(&self, schedule: ScheduleRecord) -> StoreResult<()> {
        self.inner.update_schedule(schedule).await
    }
    async fn delete_schedule(&self, id: &str) -> StoreResult<()> {
        self.inner.delete_schedule(id).await
    }
    async fn due_schedules(&self, now_ms: i64, limit: usize) -> StoreResult<Vec<ScheduleRecord>> {
        self.inner.due_schedules(now_ms, limit).await
    }
    async fn advance_schedule(
        &self,
        id: &str,
        fired_at_ms: i64,
        next_ms: Option<i64>,
        now_ms: i64,
    ) -> StoreResult<bool> {
        self.inner
            .advance_schedule(id, fired_at_ms, next_ms, now_ms)
            .await
    }
    async fn try_lead(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
        now_ms: i64,
    ) -> StoreResult<Option<LeaderLease>> {
        self.inner.try_lead(name, holder, ttl_ms, now_ms).await
    }
    async fn resign(&self, name: &str, holder: &str) -> StoreResult<()> {
        self.inner.resign(name, holder).await
    }
    async fn leader(&self, name: &str) -> StoreResult<Option<LeaderLease>> {
        self.inner.leader(name).await
    }
    async fn wait_for_work(&self, queues: &[String], timeout: std::time::Duration) {
        self.inner.wait_for_work(queues, timeout).await
    }
    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }
    async fn check_writable(&self, now_ms: i64) -> StoreResult<()> {
        self.inner.check_writable(now_ms).await
    }
    async fn close(&self) -> StoreResult<()> {
        self.inner.close().await
    }
}

#[tokio::test]
async fn busy_store_writes_are_retried_and_nothing_is_lost() {
    let db = Db::new();
    let ring = hmac_ring();
    let q = "flaky";
    let flaky = Arc::new(Flaky {
        inner: Arc::clone(&db.store),
        calls: AtomicU32::new(0),
        injected: AtomicU32::new(0),
    });
    let w = Worker::builder(flaky.clone())
        .key_ring(&ring, true)
        .queues([q])
        .concurrency(16)
        .poll_interval(std::time::Duration::from_millis(5))
        .retry_policy(signet_runtime::RetryPolicy::exponential(
            std::time::Duration::ZERO,
            std::time::Duration::ZERO,
        ))
        .register(
            "once-flaky",
            |ctx: TaskContext, _a: serde_json::Value| async move {
                if ctx.attempt() == 1 {
                    Err(HandlerError::retry("first attempt fails"))
                } else {
                    Ok(Some(json!(ctx.attempt())))
                }
            },
        )
        .register("ok", |_ctx, _a: serde_json::Value| async {
            Ok(Some(json!("ok")))
        })
        .register("bad", |_ctx, _a: serde_json::Value| async {
            Err::<Option<serde_json::Value>, _>(HandlerError::reject("never valid"))
        })
        .build()
        .unwrap();
    let mut running = Running::start(w);
    let p = producer(&db, &ring);
    let mut ids = Vec::new();
    for i in 0..60 {
        let name = ["ok", "once-flaky", "bad"][i % 3];
        ids.push((
            name,
            p.enqueue(TaskSpec::new(name, &json!({ "i": i })).queue(q))
                .await
                .unwrap()
                .task
                .id()
                .to_owned(),
        ));
    }
    for (name, id) in &ids {
        let events = running.until_final(id).await;
        let row = db.task(id).await;
        match *name {
            "ok" => {
                assert_eq!(events.last().unwrap().kind, WorkerEventKind::Succeeded);
                assert_eq!((row.state, row.attempt), (TaskState::Succeeded, 1));
                assert_eq!(row.result.as_deref(), Some(&b"\"ok\""[..]));
            }
            "once-flaky" => {
                assert_eq!((row.state, row.attempt), (TaskState::Succeeded, 2));
            }
            _ => {
                assert_eq!((row.state, row.attempt), (TaskState::Dead, 1));
                assert_eq!(row.dead_reason, Some(DeadReason::PayloadInvalid));
            }
        }
    }
    assert!(flaky.injected.load(Ordering::SeqCst) > 10);
    running.stop().await;
}
