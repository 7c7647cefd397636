//! The storage seam: every backend implements [`Store`] and passes the
//! conformance suite (`signet_store::testkit`, behind the `testkit` feature).
//!
//! Every method that depends on the time takes `now_ms` (unix milliseconds)
//! from the caller, so runtimes inject a clock and tests pin it.

use async_trait::async_trait;

use crate::delivery::{
    DeliverySettlement, LeaderLease, PushBinding, ScheduleRecord, Settlement, TargetRecord,
};
use crate::error::StoreError;
use crate::history::{HistoryEvent, HttpExchange};
use crate::task::{
    ApiKeyRecord, ClaimRequest, DeadFilter, DeadSelector, Enqueued, FailOutcome, KeyUsage,
    LeaseToken, NewTask, Page, QueueCounts, SignatureRecord, TaskFilter, TaskRow,
};
use crate::wakeups::WorkMark;

/// Result of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// A durable task store.
///
/// Contract shared by all backends (checked by the conformance suite, `testkit`):
/// - an operation that returns `Ok` is durable; one that returns `Err`
///   changed nothing;
/// - the signed envelope and signature are stored byte for byte and never
///   changed;
/// - a task is in exactly one [`TaskState`](crate::TaskState) at any time;
/// - a due `scheduled` or `retryable` task is claimable like an `available` one,
///   unless its queue is paused ([`Store::pause_queue`]);
/// - calls presenting a [`LeaseToken`] fail with [`StoreError::LeaseLost`]
///   once that lease is no longer the task's current one (the task left
///   `running`, or is running under another worker or attempt). A lease past
///   its expiry that nobody rescued yet is still current;
/// - every attempt that ends (complete, fail, rescue, a settled delivery)
///   and every operator act (cancel, replay, re-sign, retry now, resend)
///   and refusal (kill)
///   adds one [`HistoryEvent`] to the task's history in the same write as
///   the change it records (the last attempt of a succeeded task or of a
///   delivered message, with a delivery's HTTP exchange, is kept on its
///   row and read back as its last event, so `complete` and a delivered
///   message's settle write no event row; a resend, the only way out of
///   `succeeded`, writes it out first); nothing updates or replaces an
///   event, and only
///   deleting the task (prune, purge) deletes its events. Attempt numbers
///   go on across replays: a task's `attempts_before + attempt`;
/// - input that [`NewTask::validate`], [`ClaimRequest::validate`] or
///   [`ApiKeyRecord::validate`] refuses gives [`StoreError::Invalid`];
/// - a lease has expired when `lease_expires_at_ms <= now_ms`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Enqueues one task. With an idempotency key already present in the
    /// task's scope and kind, returns the first task and `created: false`
    /// when the request is the same, and fails with
    /// [`StoreError::IdempotencyConflict`] naming what differs when not (see
    /// [`idempotency`](crate::idempotency)).
    async fn enqueue(&self, task: NewTask, now_ms: i64) -> StoreResult<Enqueued> {
        let mut out = self.enqueue_batch(vec![task], now_ms).await?;
        out.pop()
            .ok_or_else(|| StoreError::invalid("enqueue_batch returned no result"))
    }

    /// Enqueues many tasks atomically (all or none), in order; an
    /// idempotency conflict on any of them stores none.
    async fn enqueue_batch(&self, tasks: Vec<NewTask>, now_ms: i64) -> StoreResult<Vec<Enqueued>>;

    /// Claims up to `limit` due tasks, highest priority first, then oldest
    /// `run_at`; each becomes `running` with `attempt + 1` and a lease until
    /// `now_ms + lease_ms`.
    async fn claim(&self, request: ClaimRequest, now_ms: i64) -> StoreResult<Vec<TaskRow>>;

    /// Extends a lease to `now_ms + lease_ms`.
    async fn heartbeat(&self, lease: &LeaseToken, lease_ms: i64, now_ms: i64) -> StoreResult<()>;

    /// Marks a running task succeeded, with an optional JSON result, and
    /// records the attempt (`succeeded`).
    async fn complete(
        &self,
        lease: &LeaseToken,
        result: Option<Vec<u8>>,
        now_ms: i64,
    ) -> StoreResult<()>;

    /// Completes many running tasks in one commit. Each entry succeeds or
    /// fails on its own (a lost lease fails only that entry).
    async fn complete_batch(
        &self,
        items: Vec<(LeaseToken, Option<Vec<u8>>)>,
        now_ms: i64,
    ) -> StoreResult<Vec<StoreResult<()>>> {
        let mut out = Vec::with_capacity(items.len());
        for (lease, result) in items {
            out.push(self.complete(&lease, result, now_ms).await);
        }
        Ok(out)
    }

    /// Records a failed attempt: retry later (`retryable`, due at `at_ms`),
    /// or dead-letter. The store follows `outcome` as given: deciding
    /// between retry and dead (attempts left, backoff) is the caller's job.
    /// The attempt goes in the history (`retry` or `dead`, with `error`).
    async fn fail(
        &self,
        lease: &LeaseToken,
        error: &str,
        outcome: FailOutcome,
        now_ms: i64,
    ) -> StoreResult<()>;

    /// Gives a running task back without counting the attempt (graceful
    /// shutdown): it becomes `available` again at once and its attempt
    /// count goes back to what it was before the claim.
    async fn release(&self, lease: &LeaseToken, now_ms: i64) -> StoreResult<()> {
        self.release_at(lease, now_ms, now_ms).await
    }

    /// [`Store::release`], the task due again at `run_at_ms`: `available`
    /// when that is not after `now_ms`, else `scheduled` until then.
    async fn release_at(&self, lease: &LeaseToken, run_at_ms: i64, now_ms: i64) -> StoreResult<()>;

    /// Cancels a task that has not started or is waiting to retry, and
    /// records who did (`actor`, 1 to 256 bytes). Running and final tasks
    /// give [`StoreError::Conflict`].
    async fn cancel(&self, id: &str, actor: &str, now_ms: i64) -> StoreResult<TaskRow>;

    /// Makes a `retryable` task (waiting for its backoff) due now:
    /// `available`, `run_at_ms = now_ms`, its attempts still counted, and
    /// records a `retried-now` event by `actor` (1 to 256 bytes); waiting
    /// claimers of its queue wake. Unknown id: [`StoreError::NotFound`];
    /// any other state: [`StoreError::Conflict`] naming it.
    async fn retry_now(&self, id: &str, actor: &str, now_ms: i64) -> StoreResult<TaskRow>;

    /// Sends a `succeeded` message (a row of
    /// [`MESSAGE_QUEUE`](crate::MESSAGE_QUEUE)) again: `available` now, its
    /// attempts moved to `attempts_before` (as a replay does, so the next
    /// attempt's number goes on and it has its whole attempt budget), a
    /// callback owed again when it finishes, and a `resent` event by
    /// `actor`. The envelope, signature and id are untouched. Unknown id:
    /// [`StoreError::NotFound`]; not a message, or not succeeded:
    /// [`StoreError::Conflict`].
    async fn resend(&self, id: &str, actor: &str, now_ms: i64) -> StoreResult<TaskRow>;

    /// Pauses `queue` (a [`queue_name`](crate::rules::queue_name)): from the
    /// next claim on, on every node, [`Store::claim`] takes nothing from it.
    /// Running tasks are not touched. Pausing a paused queue changes
    /// nothing and returns the first pause. `actor` is 1 to 256 bytes.
    async fn pause_queue(
        &self,
        queue: &str,
        actor: &str,
        reason: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<crate::PausedQueue>;

    /// Resumes `queue`: claims take from it again, and claimers waiting on
    /// it wake. Returns the pause it ended, `None` when it was not paused
    /// (not an error).
    async fn resume_queue(&self, queue: &str) -> StoreResult<Option<crate::PausedQueue>>;

    /// The paused queues, by name.
    async fn paused_queues(&self) -> StoreResult<Vec<crate::PausedQueue>>;

    /// Dead-letters a task that is not running and not final (used when a
    /// task is refused before it runs), recorded in its history. Returns the
    /// row.
    async fn kill(
        &self,
        id: &str,
        reason: crate::DeadReason,
        detail: &str,
        now_ms: i64,
    ) -> StoreResult<TaskRow>;

    /// Running tasks whose lease expired: each becomes `retryable` (due now)
    /// if it has attempts left, else `dead` with `max-attempts`; the attempt
    /// goes in the history (`lease-expired`, or `dead`). Returns the ids
    /// rescued.
    async fn rescue_expired(&self, now_ms: i64, limit: usize) -> StoreResult<Vec<String>>;

    /// One task by id.
    async fn task(&self, id: &str) -> StoreResult<Option<TaskRow>>;

    /// The tasks of these ids that exist, in one read, in no set order
    /// (an id not found is left out; one named twice may come once).
    async fn tasks_by_id(&self, ids: &[String]) -> StoreResult<Vec<TaskRow>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.extend(self.task(id).await?);
        }
        Ok(out)
    }

    /// Tasks by queue and state, newest first (by id, descending: UUIDv7
    /// ids, so creation order for the ids Signet makes),
    /// paged; Signet's own queue only when named or asked for
    /// ([`TaskFilter`]).
    async fn list_tasks(&self, filter: TaskFilter) -> StoreResult<Page<TaskRow>>;

    /// Dead letters, newest first, paged.
    async fn list_dead(&self, filter: DeadFilter) -> StoreResult<Page<TaskRow>>;

    /// Dead letters back to `available` with `attempt` reset to 0 (the
    /// envelope and signature are untouched); the attempts made so far move
    /// to `attempts_before`, so later attempts get higher numbers. Records
    /// a `replayed` event by `actor` (1 to 256 bytes) on each. Returns the
    /// ids replayed.
    async fn replay_dead(
        &self,
        selector: DeadSelector,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<Vec<String>>;

    /// Replaces the signature of a dead letter (re-signing it with another
    /// key: the envelope stays byte for byte, the new signature is over the
    /// same bytes) and records a `resigned` event (old key id, new key id,
    /// `actor`). Returns the row. Unknown id: [`StoreError::NotFound`]; a
    /// task that is not dead: [`StoreError::Conflict`].
    async fn resign_dead(
        &self,
        id: &str,
        signature: SignatureRecord,
        actor: &str,
        now_ms: i64,
    ) -> StoreResult<TaskRow>;

    /// Deletes dead letters and their history. Returns the ids purged.
    async fn purge_dead(&self, selector: DeadSelector) -> StoreResult<Vec<String>>;

    /// Tasks per queue and state.
    async fn counts(&self) -> StoreResult<Vec<QueueCounts>>;

    /// What happened in `window`, bucket by bucket: per queue the attempts
    /// that succeeded (tasks and messages that finished `succeeded`, by
    /// `finished_at_ms`) and those that failed (attempt events with outcome
    /// `retry`, `dead` or `lease-expired`, by `at_ms`), and the dead letters
    /// with reason `signature-invalid` by outcome (their detail up to its
    /// first `:`), by `finished_at_ms`. One query; a window
    /// [`ActivityWindow::validate`](crate::ActivityWindow::validate) refuses gives [`StoreError::Invalid`].
    async fn activity(&self, window: crate::ActivityWindow) -> StoreResult<crate::Activity>;

    /// Pending (non-final) tasks per signing key id.
    async fn pending_by_key(&self) -> StoreResult<Vec<KeyUsage>>;

    /// Deletes succeeded and cancelled tasks that finished before
    /// `finished_before_ms`, at most `limit`, with their history. Dead
    /// letters stay until purged. Returns how many were deleted.
    async fn prune(&self, finished_before_ms: i64, limit: usize) -> StoreResult<u64>;

    /// Stores a new API key.
    async fn create_api_key(&self, key: ApiKeyRecord) -> StoreResult<()>;

    /// The API key with this hash, revoked or not.
    async fn api_key_by_hash(&self, hash: &str) -> StoreResult<Option<ApiKeyRecord>>;

    /// All API keys, oldest first.
    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKeyRecord>>;

    /// Revokes an API key. Revoking twice is not an error.
    async fn revoke_api_key(&self, id: &str, now_ms: i64) -> StoreResult<ApiKeyRecord>;

    // --- Console sessions -------------------------------------------------

    /// Records that the console session `session_id` was signed out: it is
    /// refused from now on, on every node, until `expires_at_ms` (when it
    /// would have ended anyway). Ending a session twice is not an error.
    async fn end_session(&self, session_id: &str, expires_at_ms: i64) -> StoreResult<()>;

    /// Whether the console session `session_id` was signed out (and is not
    /// yet forgotten by [`prune_ended_sessions`](Store::prune_ended_sessions)).
    async fn session_ended(&self, session_id: &str) -> StoreResult<bool>;

    /// Forgets signed-out sessions whose expiry is before `now_ms`, at most
    /// `limit`. Returns how many.
    async fn prune_ended_sessions(&self, now_ms: i64, limit: usize) -> StoreResult<u64>;

    // --- Message delivery -------------------------------------------------

    /// Settles a running message's delivery attempt: the lease's outcome
    /// (as [`complete`](Store::complete) or [`fail`](Store::fail) write it)
    /// and the attempt with its HTTP exchange (status, latency, the first
    /// [`MAX_ATTEMPT_BODY_BYTES`](crate::MAX_ATTEMPT_BODY_BYTES) of the
    /// response), in one write; the history shows it as one `attempt`
    /// event (a delivered one is kept on the row, see
    /// [`complete_history`](crate::history::complete_history)). A lost lease gives
    /// [`StoreError::LeaseLost`] and records nothing.
    async fn settle_delivery(
        &self,
        lease: &LeaseToken,
        http: HttpExchange,
        settlement: Settlement,
        now_ms: i64,
    ) -> StoreResult<()>;

    /// Settles many delivery attempts in one commit (the dispatcher's group
    /// commit): each entry as [`settle_delivery`](Store::settle_delivery)
    /// would, answered in order. A lost lease or an invalid exchange fails
    /// only its entry (a message named twice is settled by its first entry
    /// only); any other error of any entry fails the whole call, and an
    /// `Err` for the whole call changed nothing (callers write such a batch
    /// again one entry at a time to find the entry at fault).
    async fn settle_deliveries(
        &self,
        items: Vec<DeliverySettlement>,
        now_ms: i64,
    ) -> StoreResult<Vec<StoreResult<()>>> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            out.push(
                self.settle_delivery(&item.lease, item.http, item.settlement, now_ms)
                    .await,
            );
        }
        Ok(out)
    }

    /// A task's (or message's) history, oldest first. Unknown ids give an
    /// empty list.
    async fn history(&self, task_id: &str) -> StoreResult<Vec<HistoryEvent>>;

    /// Tasks and messages that finished (`succeeded` or `dead`) with a
    /// `callback_url` whose callback has not been handed off yet, by
    /// `finished_at_ms`, at most `limit`. A task replayed from the dead
    /// letters owes a new callback when it finishes again.
    async fn pending_callbacks(&self, limit: usize) -> StoreResult<Vec<crate::TaskRow>>;

    /// Marks callbacks as handed off (the callback message was enqueued).
    /// Unknown ids are ignored. [`prune`](Store::prune) never deletes a
    /// task whose callback is still owed.
    async fn mark_callbacks_sent(&self, ids: &[String], now_ms: i64) -> StoreResult<()>;

    // --- Targets ----------------------------------------------------------

    /// Stores a new target. A name already in use gives
    /// [`StoreError::Conflict`].
    async fn create_target(&self, target: TargetRecord) -> StoreResult<()>;

    /// One target by id.
    async fn target(&self, id: &str) -> StoreResult<Option<TargetRecord>>;

    /// One target by name.
    async fn target_by_name(&self, name: &str) -> StoreResult<Option<TargetRecord>>;

    /// All targets, by name.
    async fn list_targets(&self) -> StoreResult<Vec<TargetRecord>>;

    /// Replaces a target's fields (all but `id` and `created_at_ms`).
    /// Unknown id: [`StoreError::NotFound`]; a name taken by another target:
    /// [`StoreError::Conflict`].
    async fn update_target(&self, target: TargetRecord) -> StoreResult<()>;

    /// Deletes a target. Unknown id: [`StoreError::NotFound`].
    async fn delete_target(&self, id: &str) -> StoreResult<()>;

    /// Up to `limit` targets whose id sorts after `after_id` (from the
    /// first when `None`), by id: a page of a walk over every target that
    /// rows created or deleted meanwhile cannot derail.
    async fn targets_after(
        &self,
        after_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<TargetRecord>>;

    /// Replaces target `id`'s sealed secrets and fingerprint, only if its
    /// sealed secrets are still `expected` (compare-and-swap, in one
    /// statement). Returns whether the row was changed: `false` when the
    /// target is gone or its secrets changed since they were read.
    async fn swap_target_secrets(
        &self,
        id: &str,
        expected: &[u8],
        sealed_secrets: &[u8],
        secret_fingerprint: &str,
    ) -> StoreResult<bool>;

    /// How many messages not finished yet (scheduled, available, running or
    /// retryable, on [`MESSAGE_QUEUE`](crate::MESSAGE_QUEUE)) name target
    /// `target_id`: their args (a message spec, compact JSON) hold
    /// `"target":"<target_id>"`. What deleting the target would leave
    /// without a target.
    async fn pending_messages_for_target(&self, target_id: &str) -> StoreResult<u64>;

    // --- Per-target limits (see [`limits`](crate::limits)) -----------------

    /// Hands out up to `take.want` send times of the target's rate bucket
    /// that fall before `now_ms + take.horizon_ms`, one
    /// [`RateTake::interval_us`](crate::RateTake::interval_us) apart, never
    /// before `now_ms` and never twice (across every process on the store),
    /// in one write. None free before the horizon: a grant of 0 whose
    /// `first_us` is when the next one is free. A take
    /// [`RateTake::validate`](crate::RateTake::validate) refuses gives
    /// [`StoreError::Invalid`].
    async fn take_rate(&self, take: crate::RateTake, now_ms: i64) -> StoreResult<crate::RateGrant>;

    /// Takes the lowest free concurrency slot `0 .. take.max` of the target
    /// (free: absent, or its lease expired, `expires_at_ms <= now_ms`) for
    /// `take.holder` until `now_ms + take.lease_ms`. `None` when every slot
    /// below `max` is held. Two callers never hold one slot at once.
    async fn take_slot(
        &self,
        take: crate::SlotTake,
        now_ms: i64,
    ) -> StoreResult<Option<crate::SlotLease>>;

    /// Extends a held slot to `now_ms + lease_ms`. Returns `false`, changing
    /// nothing, when the slot is no longer `lease`'s (it expired, or was
    /// released, or taken by another).
    async fn renew_slot(
        &self,
        lease: &crate::SlotLease,
        lease_ms: i64,
        now_ms: i64,
    ) -> StoreResult<bool>;

    /// Frees a held slot. A slot no longer `lease`'s is left alone (not an
    /// error).
    async fn release_slot(&self, lease: &crate::SlotLease) -> StoreResult<()>;

    /// The store's own clock (unix ms), when it runs on a machine of its
    /// own (PostgreSQL): slot leases, send times and task leases compare
    /// the `now_ms` each node passes in, so a node whose clock is off from
    /// the others' bends them; comparing with this shows how far it is off.
    /// `None` for a store read and written on this machine (SQLite), whose
    /// clock is this machine's.
    async fn store_time_ms(&self) -> StoreResult<Option<i64>> {
        Ok(None)
    }

    /// Whether no other process can use this store (an in-memory
    /// database): per-target limits can then be kept in this process alone.
    fn only_node(&self) -> bool {
        false
    }

    // --- Push queues ------------------------------------------------------

    /// Binds a queue to an endpoint, or replaces its binding (keeping the
    /// first `created_at_ms`). Returns the binding as stored. A binding
    /// [`PushBinding::validate`] refuses gives [`StoreError::Invalid`].
    async fn put_push_binding(&self, binding: PushBinding) -> StoreResult<PushBinding>;

    /// The binding of `queue`, if it has one.
    async fn push_binding(&self, queue: &str) -> StoreResult<Option<PushBinding>>;

    /// Every binding, by queue.
    async fn list_push_bindings(&self) -> StoreResult<Vec<PushBinding>>;

    /// Unbinds `queue` (its tasks stay where they are). No binding:
    /// [`StoreError::NotFound`].
    async fn delete_push_binding(&self, queue: &str) -> StoreResult<()>;

    // --- Schedules --------------------------------------------------------

    /// Stores a new schedule. A name already in use gives
    /// [`StoreError::Conflict`].
    async fn create_schedule(&self, schedule: ScheduleRecord) -> StoreResult<()>;

    /// One schedule by id.
    async fn schedule(&self, id: &str) -> StoreResult<Option<ScheduleRecord>>;

    /// One schedule by name.
    async fn schedule_by_name(&self, name: &str) -> StoreResult<Option<ScheduleRecord>>;

    /// All schedules, by name.
    async fn list_schedules(&self) -> StoreResult<Vec<ScheduleRecord>>;

    /// Replaces a schedule's fields (all but `id` and `created_at_ms`).
    /// Unknown id: [`StoreError::NotFound`]; a name taken by another
    /// schedule: [`StoreError::Conflict`].
    async fn update_schedule(&self, schedule: ScheduleRecord) -> StoreResult<()>;

    /// Deletes a schedule. Unknown id: [`StoreError::NotFound`].
    async fn delete_schedule(&self, id: &str) -> StoreResult<()>;

    /// Schedules not paused whose `next_fire_at_ms <= now_ms`, earliest
    /// first, at most `limit`.
    async fn due_schedules(&self, now_ms: i64, limit: usize) -> StoreResult<Vec<ScheduleRecord>>;

    /// Moves a schedule past a due time it fired: only if its
    /// `next_fire_at_ms` is still `fired_at_ms` (compare-and-set, so two
    /// nodes never both advance it), sets `last_fired_at_ms = fired_at_ms`
    /// and `next_fire_at_ms = next_ms`. Returns whether it moved.
    async fn advance_schedule(
        &self,
        id: &str,
        fired_at_ms: i64,
        next_ms: Option<i64>,
        now_ms: i64,
    ) -> StoreResult<bool>;

    // --- Leader leases ----------------------------------------------------

    /// Takes or renews the lease on role `name` for `holder` until
    /// `now_ms + ttl_ms`: succeeds when nobody holds it, when the lease
    /// expired (`expires_at_ms <= now_ms`), or when `holder` already holds
    /// it. Returns the lease when `holder` holds it afterwards, `None` when
    /// another node does. The term goes up by one whenever the holder
    /// changes.
    async fn try_lead(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
        now_ms: i64,
    ) -> StoreResult<Option<LeaderLease>>;

    /// Gives up the lease if `holder` holds it (graceful shutdown), so
    /// another node takes over at once.
    async fn resign(&self, name: &str, holder: &str) -> StoreResult<()>;

    /// The current lease on role `name`, expired or not.
    async fn leader(&self, name: &str) -> StoreResult<Option<LeaderLease>>;

    /// Where the signals of new work on `queues` stand now: take it before
    /// a claim, and wait from it when the claim finds nothing
    /// ([`Store::wait_for_work`]), so that work signalled in between is not
    /// missed. Backends without signals answer `WorkMark::default()`; a
    /// wrapper forwards it with `wait_for_work` (required, so that a
    /// wrapper cannot pair its inner store's waits with another mark).
    fn work_mark(&self, queues: &[String]) -> WorkMark;

    /// Waits until work may be available on one of `queues` or `timeout`
    /// passes, whichever comes first. Backends that can be told about new
    /// work (PostgreSQL `LISTEN/NOTIFY`, an in-process signal) wake early,
    /// and return at once when a signal for one of `queues` came after
    /// `since` (a [`Store::work_mark`] of the same queues); the default just
    /// sleeps. Callers treat a wake-up as a hint and claim as usual.
    async fn wait_for_work(
        &self,
        queues: &[String],
        since: WorkMark,
        timeout: std::time::Duration,
    ) {
        let _ = (queues, since);
        tokio::time::sleep(timeout).await;
    }

    /// Whether the store answers (for `/readyz`).
    async fn ping(&self) -> StoreResult<()>;

    /// Whether the store can write (for `/readyz`): commits a tiny change
    /// that leaves nothing behind. Fails with [`StoreError::Unavailable`]
    /// (read-only database, permissions, I/O) or [`StoreError::Full`] (no
    /// space) naming the cause, where [`Store::ping`] only proves that
    /// reads work.
    async fn check_writable(&self, now_ms: i64) -> StoreResult<()>;

    /// Flushes and closes. Later calls fail with [`StoreError::Closed`];
    /// closing twice is not an error.
    async fn close(&self) -> StoreResult<()>;
}
