//! A store that fails the calls a test chooses and passes the rest to a
//! real store: for tests of what the runtime and the server do when the
//! store refuses (busy, read-only, unavailable).

use std::sync::Arc;

use async_trait::async_trait;

use crate::{
    ApiKeyRecord, ClaimRequest, DeadFilter, DeadReason, DeadSelector, DeliverySettlement, Enqueued,
    FailOutcome, HistoryEvent, HttpExchange, KeyUsage, LeaderLease, LeaseToken, NewTask, Page,
    PushBinding, QueueCounts, ScheduleRecord, Settlement, SignatureRecord, Store, StoreError,
    StoreResult, TargetRecord, TaskFilter, TaskRow,
};

/// What decides, per call, whether it fails: given the name of the
/// [`Store`] method (`"claim"`, `"enqueue_batch"`, …), an error to answer
/// instead of calling the inner store, or `None` to pass the call on. A
/// failed call reaches the inner store not at all, as the trait's contract
/// says of errors.
pub type Fault = dyn Fn(&'static str) -> Option<StoreError> + Send + Sync;

/// A [`Store`] that asks its [`Fault`] before every call (except
/// `wait_for_work`, which cannot fail) and otherwise forwards it.
pub struct FaultyStore {
    inner: Arc<dyn Store>,
    fault: Box<Fault>,
}

impl FaultyStore {
    /// Wraps `inner`; `fault` picks the calls that fail.
    pub fn new(
        inner: Arc<dyn Store>,
        fault: impl Fn(&'static str) -> Option<StoreError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            inner,
            fault: Box::new(fault),
        }
    }

    fn check(&self, method: &'static str) -> StoreResult<()> {
        match (self.fault)(method) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl Store for FaultyStore {
    async fn enqueue_batch(&self, tasks: Vec<NewTask>, now_ms: i64) -> StoreResult<Vec<Enqueued>> {
        self.check("enqueue_batch")?;
        self.inner.enqueue_batch(tasks, now_ms).await
    }
    async fn claim(&self, request: ClaimRequest, now_ms: i64) -> StoreResult<Vec<TaskRow>> {
        self.check("claim")?;
        self.inner.claim(request, now_ms).await
    }
    async fn heartbeat(&self, lease: &LeaseToken, lease_ms: i64, now_ms: i64) -> StoreResult<()> {
        self.check("heartbeat")?;
        self.inner.heartbeat(lease, lease_ms, now_ms).await
    }
    async fn complete(
        &self,
        lease: &LeaseToken,
        result: Option<Vec<u8>>,
        now_ms: i64,
    ) -> StoreResult<()> {
        self.check("complete")?;
        self.inner.complete(lease, result, now_ms).await
    }
    async fn complete_batch(
        &self,
        items: Vec<(LeaseToken, Option<Vec<u8>>)>,
        now_ms: i64,
    ) -> StoreResult<Vec<StoreResult<()>>> {
        self.check("complete_batch")?;
        self.inner.complete_batch(items, now_ms).await
    }
    async fn fail(
        &self,
        lease: &LeaseToken,
        error: &str,
        outcome: FailOutcome,
        now_ms: i64,
    ) -> StoreResult<()> {
        self.check("fail")?;
        self.inner.fail(lease, error, outcome, now_ms).await
    }
    async fn release_at(&self, lease: &LeaseToken, run_at_ms: i64, now_ms: i64) -> StoreResult<()> {
        self.check("release")?;
        self.inner.release_at(lease, run_at_ms, now_ms).await
    }
    async fn cancel(&self, id: &str, actor: &str, now_ms: i64) -> StoreResult<TaskRow> {
        self.check("cancel")?;
        self.inner.cancel(id, actor, now_ms).await
    }
    async fn retry_now(&self, id: &str, actor: &str, now_ms: i64) -> StoreResult<TaskRow> {
        self.check("retry_now")?;
        self.inner.retry_now(id, actor, now_ms).await
    }
    async fn resend(&self, id: &str, actor: &str, now_ms: i64) -> StoreResult<TaskRow> {
        self.check("resend")?;
        self.inner.resend(id, actor, now_ms).await
    }
    async fn pause_queue(
        &self,
        queue: &str,
        actor: &str,
        reason: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<crate::PausedQueue> {
        self.check("pause_queue")?;
        self.inner.pause_queue(queue, actor, reason, now_ms).await
    }
    async fn resume_queue(&self, queue: &str) -> StoreResult<Option<crate::PausedQueue>> {
        self.check("resume_queue")?;
        self.inner.resume_queue(queue).await
    }
    async fn paused_queues(&self) -> StoreResult<Vec<crate::PausedQueue>> {
        self.check("paused_queues")?;
        self.inner.paused_queues().await
    }
    async fn kill(
        &self,
        id: &str,
        reason: DeadReason,
        detail: &str,
        now_ms: i64,
    ) -> StoreResult<TaskRow> {
        self.check("kill")?;
        self.inner.kill(id, reason, detail, now_ms).await
    }
    async fn rescue_expired(&self, now_ms: i64, limit: usize) -> StoreResult<Vec<String>> {
        self.check("rescue_expired")?;
        self.inner.rescue_expired(now_ms, limit).await
    }
    async fn task(&self, id: &str) -> StoreResult<Option<TaskRow>> {
        self.check("task")?;
        self.inner.task(id).await
    }
    async fn tasks_by_id(&self, ids: &[String]) -> StoreResult<Vec<TaskRow>> {
        self.check("tasks_by_id")?;
        self.inner.tasks_by_id(ids).await
    }
    async fn list_tasks(&self, filter: TaskFilter) -> StoreResult<Page<TaskRow>> {
        self.check("list_tasks")?;
        self.inner.list_tasks(filter).await
    }
    async fn list_dead(&self, filter: DeadFilter) -> StoreResult<Page<TaskRow>> {
        self.check("list_dead")?;
        self.inner.list_dead(filter).await
    }
    async fn replay_dead(
        &self,
        selector: DeadSelector,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<Vec<String>> {
        self.check("replay_dead")?;
        self.inner.replay_dead(selector, actor, now_ms).await
    }
    async fn resign_dead(
        &self,
        id: &str,
        signature: SignatureRecord,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<TaskRow> {
        self.check("resign_dead")?;
        self.inner.resign_dead(id, signature, actor, now_ms).await
    }
    async fn purge_dead(&self, selector: DeadSelector) -> StoreResult<Vec<String>> {
        self.check("purge_dead")?;
        self.inner.purge_dead(selector).await
    }
    async fn counts(&self) -> StoreResult<Vec<QueueCounts>> {
        self.check("counts")?;
        self.inner.counts().await
    }
    async fn activity(&self, window: crate::ActivityWindow) -> StoreResult<crate::Activity> {
        self.check("activity")?;
        self.inner.activity(window).await
    }
    async fn pending_by_key(&self) -> StoreResult<Vec<KeyUsage>> {
        self.check("pending_by_key")?;
        self.inner.pending_by_key().await
    }
    async fn prune(&self, finished_before_ms: i64, limit: usize) -> StoreResult<u64> {
        self.check("prune")?;
        self.inner.prune(finished_before_ms, limit).await
    }
    async fn create_api_key(&self, key: ApiKeyRecord) -> StoreResult<()> {
        self.check("create_api_key")?;
        self.inner.create_api_key(key).await
    }
    async fn api_key_by_hash(&self, hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        self.check("api_key_by_hash")?;
        self.inner.api_key_by_hash(hash).await
    }
    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKeyRecord>> {
        self.check("list_api_keys")?;
        self.inner.list_api_keys().await
    }
    async fn revoke_api_key(&self, id: &str, now_ms: i64) -> StoreResult<ApiKeyRecord> {
        self.check("revoke_api_key")?;
        self.inner.revoke_api_key(id, now_ms).await
    }
    async fn end_session(&self, session_id: &str, expires_at_ms: i64) -> StoreResult<()> {
        self.check("end_session")?;
        self.inner.end_session(session_id, expires_at_ms).await
    }
    async fn session_ended(&self, session_id: &str) -> StoreResult<bool> {
        self.check("session_ended")?;
        self.inner.session_ended(session_id).await
    }
    async fn prune_ended_sessions(&self, now_ms: i64, limit: usize) -> StoreResult<u64> {
        self.check("prune_ended_sessions")?;
        self.inner.prune_ended_sessions(now_ms, limit).await
    }
    async fn settle_delivery(
        &self,
        lease: &LeaseToken,
        http: HttpExchange,
        settlement: Settlement,
        now_ms: i64,
    ) -> StoreResult<()> {
        self.check("settle_delivery")?;
        self.inner
            .settle_delivery(lease, http, settlement, now_ms)
            .await
    }
    async fn settle_deliveries(
        &self,
        items: Vec<DeliverySettlement>,
        now_ms: i64,
    ) -> StoreResult<Vec<StoreResult<()>>> {
        self.check("settle_deliveries")?;
        self.inner.settle_deliveries(items, now_ms).await
    }
    async fn history(&self, task_id: &str) -> StoreResult<Vec<HistoryEvent>> {
        self.check("history")?;
        self.inner.history(task_id).await
    }
    async fn pending_callbacks(&self, limit: usize) -> StoreResult<Vec<TaskRow>> {
        self.check("pending_callbacks")?;
        self.inner.pending_callbacks(limit).await
    }
    async fn mark_callbacks_sent(&self, ids: &[String], now_ms: i64) -> StoreResult<()> {
        self.check("mark_callbacks_sent")?;
        self.inner.mark_callbacks_sent(ids, now_ms).await
    }
    async fn create_target(&self, target: TargetRecord) -> StoreResult<()> {
        self.check("create_target")?;
        self.inner.create_target(target).await
    }
    async fn target(&self, id: &str) -> StoreResult<Option<TargetRecord>> {
        self.check("target")?;
        self.inner.target(id).await
    }
    async fn target_by_name(&self, name: &str) -> StoreResult<Option<TargetRecord>> {
        self.check("target_by_name")?;
        self.inner.target_by_name(name).await
    }
    async fn targets_after(
        &self,
        after_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<TargetRecord>> {
        self.check("targets_after")?;
        self.inner.targets_after(after_id, limit).await
    }
    async fn swap_target_secrets(
        &self,
        id: &str,
        expected: &[u8],
        sealed_secrets: &[u8],
        secret_fingerprint: &str,
    ) -> StoreResult<bool> {
        self.check("swap_target_secrets")?;
        self.inner
            .swap_target_secrets(id, expected, sealed_secrets, secret_fingerprint)
            .await
    }
    async fn list_targets(&self) -> StoreResult<Vec<TargetRecord>> {
        self.check("list_targets")?;
        self.inner.list_targets().await
    }
    async fn update_target(&self, target: TargetRecord) -> StoreResult<()> {
        self.check("update_target")?;
        self.inner.update_target(target).await
    }
    async fn delete_target(&self, id: &str) -> StoreResult<()> {
        self.check("delete_target")?;
        self.inner.delete_target(id).await
    }
    async fn take_rate(&self, take: crate::RateTake, now_ms: i64) -> StoreResult<crate::RateGrant> {
        self.check("take_rate")?;
        self.inner.take_rate(take, now_ms).await
    }
    async fn take_slot(
        &self,
        take: crate::SlotTake,
        now_ms: i64,
    ) -> StoreResult<Option<crate::SlotLease>> {
        self.check("take_slot")?;
        self.inner.take_slot(take, now_ms).await
    }
    async fn renew_slot(
        &self,
        lease: &crate::SlotLease,
        lease_ms: i64,
        now_ms: i64,
    ) -> StoreResult<bool> {
        self.check("renew_slot")?;
        self.inner.renew_slot(lease, lease_ms, now_ms).await
    }
    async fn release_slot(&self, lease: &crate::SlotLease) -> StoreResult<()> {
        self.check("release_slot")?;
        self.inner.release_slot(lease).await
    }
    async fn store_time_ms(&self) -> StoreResult<Option<i64>> {
        self.check("store_time_ms")?;
        self.inner.store_time_ms().await
    }
    fn only_node(&self) -> bool {
        self.inner.only_node()
    }
    async fn put_push_binding(&self, binding: PushBinding) -> StoreResult<PushBinding> {
        self.check("put_push_binding")?;
        self.inner.put_push_binding(binding).await
    }
    async fn push_binding(&self, queue: &str) -> StoreResult<Option<PushBinding>> {
        self.check("push_binding")?;
        self.inner.push_binding(queue).await
    }
    async fn list_push_bindings(&self) -> StoreResult<Vec<PushBinding>> {
        self.check("list_push_bindings")?;
        self.inner.list_push_bindings().await
    }
    async fn delete_push_binding(&self, queue: &str) -> StoreResult<()> {
        self.check("delete_push_binding")?;
        self.inner.delete_push_binding(queue).await
    }
    async fn pending_messages_for_target(&self, target_id: &str) -> StoreResult<u64> {
        self.check("pending_messages_for_target")?;
        self.inner.pending_messages_for_target(target_id).await
    }
    async fn create_schedule(&self, schedule: ScheduleRecord) -> StoreResult<()> {
        self.check("create_schedule")?;
        self.inner.create_schedule(schedule).await
    }
    async fn schedule(&self, id: &str) -> StoreResult<Option<ScheduleRecord>> {
        self.check("schedule")?;
        self.inner.schedule(id).await
    }
    async fn schedule_by_name(&self, name: &str) -> StoreResult<Option<ScheduleRecord>> {
        self.check("schedule_by_name")?;
        self.inner.schedule_by_name(name).await
    }
    async fn list_schedules(&self) -> StoreResult<Vec<ScheduleRecord>> {
        self.check("list_schedules")?;
        self.inner.list_schedules().await
    }
    async fn update_schedule(&self, schedule: ScheduleRecord) -> StoreResult<()> {
        self.check("update_schedule")?;
        self.inner.update_schedule(schedule).await
    }
    async fn delete_schedule(&self, id: &str) -> StoreResult<()> {
        self.check("delete_schedule")?;
        self.inner.delete_schedule(id).await
    }
    async fn due_schedules(&self, now_ms: i64, limit: usize) -> StoreResult<Vec<ScheduleRecord>> {
        self.check("due_schedules")?;
        self.inner.due_schedules(now_ms, limit).await
    }
    async fn advance_schedule(
        &self,
        id: &str,
        fired_at_ms: i64,
        next_ms: Option<i64>,
        now_ms: i64,
    ) -> StoreResult<bool> {
        self.check("advance_schedule")?;
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
        self.check("try_lead")?;
        self.inner.try_lead(name, holder, ttl_ms, now_ms).await
    }
    async fn resign(&self, name: &str, holder: &str) -> StoreResult<()> {
        self.check("resign")?;
        self.inner.resign(name, holder).await
    }
    async fn leader(&self, name: &str) -> StoreResult<Option<LeaderLease>> {
        self.check("leader")?;
        self.inner.leader(name).await
    }
    fn work_mark(&self, queues: &[String]) -> crate::WorkMark {
        self.inner.work_mark(queues)
    }
    async fn wait_for_work(
        &self,
        queues: &[String],
        since: crate::WorkMark,
        timeout: std::time::Duration,
    ) {
        self.inner.wait_for_work(queues, since, timeout).await
    }
    async fn ping(&self) -> StoreResult<()> {
        self.check("ping")?;
        self.inner.ping().await
    }
    async fn check_writable(&self, now_ms: i64) -> StoreResult<()> {
        self.check("check_writable")?;
        self.inner.check_writable(now_ms).await
    }
    async fn close(&self) -> StoreResult<()> {
        self.check("close")?;
        self.inner.close().await
    }
}
