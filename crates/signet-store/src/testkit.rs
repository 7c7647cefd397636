//! The conformance suite every backend must pass: [`exercise`].
//!
//! A backend implements [`Harness`] (how to make a fresh, empty store) and
//! either calls [`exercise`], which runs every [`Check`] on its own fresh
//! store, or runs checks one by one (for example one `#[tokio::test]` each,
//! so they run in parallel) with [`Check::run`] or the `check_*` functions.
//!
//! A backend that lacks a feature answers [`Harness::skip`] with a reason;
//! the suite prints the reason and moves on. It never needs editing to
//! accommodate a backend.
//!
//! Time is fixed: every call passes `now_ms` derived from [`T0`], nothing
//! sleeps. A failed check panics with a message naming the check and what
//! differed, as test assertions do.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use signet_sign::{Algorithm, TaskEnvelope};

use crate::delivery::{
    AttemptRecord, CatchUp, ScheduleRecord, TargetRecord, MAX_ATTEMPT_BODY_BYTES,
    MAX_ATTEMPT_ERROR_LEN, MESSAGE_QUEUE, MESSAGE_TASK_NAME,
};
use crate::error::StoreError;
use crate::ids::{ApiKeyId, MessageId, ScheduleId, TargetId, TaskId};
use crate::state::{DeadReason, TaskState};
use crate::store::Store;
use crate::task::{
    ApiKeyRecord, ClaimRequest, DeadFilter, DeadSelector, FailOutcome, LeaseToken, NewTask,
    SignatureRecord, TaskFilter, TaskRow, MAX_ARGS_BYTES, MAX_QUEUE_NAME_LEN,
};

/// The fixed "now" of the suite (2023-11-14T22:13:20Z), unix ms.
pub const T0: i64 = 1_700_000_000_000;

/// Lease length the suite claims with.
pub const LEASE_MS: i64 = 30_000;

/// Makes stores for the suite.
#[async_trait]
pub trait Harness: Send + Sync {
    /// A new, empty, open store. Every check gets its own.
    async fn fresh(&self) -> Arc<dyn Store>;

    /// `Some(reason)` to skip a check this backend cannot support. The
    /// reason is printed.
    fn skip(&self, check: Check) -> Option<&'static str> {
        let _ = check;
        None
    }
}

macro_rules! checks {
    ($($variant:ident => $func:ident : $doc:literal,)*) => {
        /// One conformance check.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Check {
            $(#[doc = $doc] $variant,)*
        }

        impl Check {
            /// Every check, in the order [`exercise`] runs them.
            pub const ALL: &'static [Check] = &[$(Check::$variant,)*];

            /// The check's name (the `check_*` function without its prefix).
            pub fn name(self) -> &'static str {
                match self {
                    $(Check::$variant => stringify!($func).trim_start_matches("check_"),)*
                }
            }

            /// Runs the check on `store`, which must be fresh and empty.
            pub async fn run(self, store: Arc<dyn Store>) {
                match self {
                    $(Check::$variant => $func(store).await,)*
                }
            }
        }
    };
}

checks! {
    RoundTrip => check_round_trip: "Enqueue then read back: envelope, signature and options byte for byte.",
    InvalidInput => check_invalid_input: "Oversize args, bad queue names, bad ids and options are `Invalid` and store nothing.",
    BatchAtomic => check_batch_atomic: "A batch with one bad task stores none of them.",
    Idempotency => check_idempotency: "An idempotency key returns the first task, across calls and inside a batch.",
    Scheduled => check_scheduled: "A task with `not_before` in the future is not claimable until due.",
    ClaimOrder => check_claim_order: "Claims take higher priority first, then earlier `run_at`, then id.",
    ClaimLimitAndQueues => check_claim_limit_and_queues: "Claims respect the limit and the queue filter and set the lease.",
    ConcurrentClaims => check_concurrent_claims: "Concurrent claimers never get the same task.",
    Heartbeat => check_heartbeat: "A heartbeat extends the lease.",
    LeaseLost => check_lease_lost: "A lost lease gives `LeaseLost` on every lease call.",
    Complete => check_complete: "Complete stores the result; `complete_batch` settles each entry on its own.",
    FailRetry => check_fail_retry: "A retried task is not claimable before its time, and attempts count up.",
    FailDead => check_fail_dead: "A dead-lettered task keeps its reason and detail.",
    Release => check_release: "Release gives a task back without counting the attempt.",
    Cancel => check_cancel: "Cancel works before a task runs and is a `Conflict` once running or final.",
    Kill => check_kill: "Kill dead-letters a waiting task.",
    Rescue => check_rescue: "Expired leases become retryable, or dead once attempts are used up.",
    ListTasks => check_list_tasks: "Task listing filters and pages without duplicates or gaps.",
    ListDead => check_list_dead: "Dead letters list newest first, filtered and paged.",
    Replay => check_replay: "Replay resets attempts and keeps the envelope and signature identical.",
    Purge => check_purge: "Purge deletes dead letters only.",
    Counts => check_counts: "Counts per queue and state.",
    PendingByKey => check_pending_by_key: "Pending tasks per signing key, final tasks excluded.",
    Prune => check_prune: "Prune deletes only old succeeded and cancelled tasks, never dead letters.",
    ApiKeys => check_api_keys: "API keys: create, look up by hash, list, revoke.",
    Messages => check_messages: "Messages are task rows with `msg_` ids on the message queue.",
    Attempts => check_attempts: "Delivery attempts: recorded, replaced, listed in order, deleted with their task.",
    PendingCallbacks => check_pending_callbacks: "Finished tasks with a callback URL owe a callback until marked sent; a replay owes a new one.",
    PruneKeepsOwedCallbacks => check_prune_keeps_owed_callbacks: "Prune never deletes a task whose callback is still owed.",
    Targets => check_targets: "Targets: create, read by id and name, list by name, update, delete; names are unique.",
    Schedules => check_schedules: "Schedules: create, read by id and name, list by name, update, delete; names are unique.",
    DueSchedules => check_due_schedules: "Due schedules: not paused, due by now, earliest first, limited.",
    AdvanceSchedule => check_advance_schedule: "Advancing a schedule is a compare-and-set on its due time.",
    LeaderLeases => check_leader_leases: "Leader leases: taken when free or expired, renewed by the holder, terms count holders, resign frees at once.",
    WaitForWork => check_wait_for_work: "`wait_for_work` returns by its timeout.",
    Close => check_close: "Ping answers; after close every call is `Closed`.",
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Runs every check, each on a fresh store from `harness`, printing skipped
/// checks with their reason. Panics on the first failure.
pub async fn exercise(harness: &dyn Harness) {
    for &check in Check::ALL {
        if let Some(reason) = harness.skip(check) {
            println!("signet-store conformance: SKIP {check}: {reason}");
            continue;
        }
        let store = harness.fresh().await;
        check.run(store.clone()).await;
        // Best effort: the check may have closed it already (`close`).
        let _ = store.close().await;
    }
}

// ---------------------------------------------------------------------------
// Builders

/// A valid unsigned task for `queue` with fresh id, args `{}`, created at
/// [`T0`], 3 attempts.
pub fn new_task(queue: &str) -> NewTask {
    NewTask {
        envelope: TaskEnvelope {
            id: TaskId::generate().to_string(),
            queue: queue.to_owned(),
            name: "test.noop".to_owned(),
            args: b"{}".to_vec(),
            headers: BTreeMap::new(),
            created_at_ms: T0,
            not_before_ms: None,
            expires_at_ms: None,
            max_attempts: 3,
            callback_url: None,
        },
        signature: None,
        priority: 0,
        idempotency_key: None,
    }
}

fn signed(mut task: NewTask, alg: Algorithm, key_id: &str) -> NewTask {
    let len = match alg {
        Algorithm::HmacSha256 => 32,
        Algorithm::Ed25519 => 64,
    };
    task.signature = Some(SignatureRecord {
        alg,
        key_id: key_id.to_owned(),
        sig: (0..len).map(|i| (i * 7 + 3) as u8).collect(),
    });
    task
}

fn claim_req(queues: &[&str], worker: &str, limit: usize) -> ClaimRequest {
    ClaimRequest {
        queues: queues.iter().map(|q| (*q).to_owned()).collect(),
        worker_id: worker.to_owned(),
        limit,
        lease_ms: LEASE_MS,
    }
}

async fn put(store: &dyn Store, task: NewTask) -> TaskRow {
    let id = task.envelope.id.clone();
    let out = store
        .enqueue(task, T0)
        .await
        .unwrap_or_else(|e| panic!("enqueue {id}: {e}"));
    assert!(out.created, "enqueue {id}: created should be true");
    out.task
}

async fn get(store: &dyn Store, id: &str) -> TaskRow {
    store
        .task(id)
        .await
        .unwrap_or_else(|e| panic!("task({id}): {e}"))
        .unwrap_or_else(|| panic!("task({id}) is missing"))
}

async fn claim_one(store: &dyn Store, queue: &str, worker: &str, now: i64) -> TaskRow {
    let mut rows = store
        .claim(claim_req(&[queue], worker, 1), now)
        .await
        .unwrap_or_else(|e| panic!("claim on {queue}: {e}"));
    assert_eq!(
        rows.len(),
        1,
        "claim on {queue} at {now} should give one task"
    );
    rows.remove(0)
}

async fn claim_n(store: &dyn Store, queues: &[&str], limit: usize, now: i64) -> Vec<TaskRow> {
    store
        .claim(claim_req(queues, "w-test", limit), now)
        .await
        .unwrap_or_else(|e| panic!("claim on {queues:?}: {e}"))
}

fn ids(rows: &[TaskRow]) -> Vec<String> {
    rows.iter().map(|r| r.id().to_owned()).collect()
}

fn assert_invalid<T: fmt::Debug>(what: &str, r: Result<T, StoreError>) {
    match r {
        Err(StoreError::Invalid(msg)) => {
            assert!(!msg.is_empty(), "{what}: Invalid needs a message")
        }
        other => panic!("{what}: expected Invalid, got {other:?}"),
    }
}

fn assert_lease_lost<T: fmt::Debug>(what: &str, r: Result<T, StoreError>) {
    match r {
        Err(StoreError::LeaseLost { .. }) => {}
        other => panic!("{what}: expected LeaseLost, got {other:?}"),
    }
}

fn assert_conflict<T: fmt::Debug>(what: &str, r: Result<T, StoreError>) {
    match r {
        Err(StoreError::Conflict(msg)) => {
            assert!(!msg.is_empty(), "{what}: Conflict needs a message")
        }
        other => panic!("{what}: expected Conflict, got {other:?}"),
    }
}

fn assert_not_found<T: fmt::Debug>(what: &str, r: Result<T, StoreError>) {
    match r {
        Err(e) if e.is_not_found() => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

async fn total(store: &dyn Store) -> u64 {
    store
        .counts()
        .await
        .expect("counts")
        .iter()
        .flat_map(|q| q.counts.iter().map(|(_, n)| *n))
        .sum()
}

fn assert_same_signed(what: &str, row: &TaskRow, task: &NewTask) {
    assert_eq!(row.envelope, task.envelope, "{what}: envelope changed");
    assert_eq!(row.signature, task.signature, "{what}: signature changed");
    assert_eq!(
        row.envelope.canonical_bytes().expect("canonical bytes"),
        task.envelope.canonical_bytes().expect("canonical bytes"),
        "{what}: canonical bytes changed"
    );
}

// ---------------------------------------------------------------------------
// Checks

/// Enqueue then read back: envelope, signature and options byte for byte.
pub async fn check_round_trip(store: Arc<dyn Store>) {
    let s = &*store;
    // Everything optional absent.
    let plain = new_task("default");
    // Everything present, args that are not valid UTF-8, odd header text.
    let mut full = signed(new_task("q.full:1-x_y"), Algorithm::Ed25519, "ed-key-1");
    full.envelope.name = "email.send".into();
    full.envelope.args = vec![b'{', 0xff, 0x00, 0xfe, b'"', b'\\', 0x80, b'}', 0x00];
    full.envelope.headers = TaskEnvelope::normalise_headers([
        ("tenant", "acme"),
        ("x-unicode", "h\u{e9}llo \u{1f600} \"q\" \\"),
        ("x-empty", ""),
    ])
    .expect("headers");
    full.envelope.not_before_ms = Some(T0 - 5_000);
    full.envelope.expires_at_ms = Some(T0 + 3_600_000);
    full.envelope.max_attempts = 7;
    full.envelope.callback_url = Some("https://example.com/cb?a=1&b=\u{e9}".into());
    full.priority = -5;
    full.idempotency_key = Some("idem-\u{e9}-1".into());
    // Args exactly at the limit.
    let mut big = signed(new_task("big"), Algorithm::HmacSha256, "hmac-1");
    big.envelope.args = (0..MAX_ARGS_BYTES).map(|i| (i % 251) as u8).collect();

    let out = s
        .enqueue_batch(vec![plain.clone(), full.clone(), big.clone()], T0)
        .await
        .expect("enqueue_batch");
    assert_eq!(out.len(), 3, "one result per task");
    for (res, task) in out.iter().zip([&plain, &full, &big]) {
        assert!(res.created);
        assert_same_signed("enqueue result", &res.task, task);
    }
    for task in [&plain, &full, &big] {
        let row = get(s, &task.envelope.id).await;
        assert_same_signed("task()", &row, task);
        assert_eq!(row.priority, task.priority);
        assert_eq!(row.idempotency_key, task.idempotency_key);
        assert_eq!(row.state, TaskState::Available, "due task is available");
        assert_eq!(row.attempt, 0);
        assert!(row.run_at_ms <= T0, "a due task has run_at <= now");
        assert_eq!(row.lease_owner, None);
        assert_eq!(row.lease_expires_at_ms, None);
        assert_eq!(row.last_error, None);
        assert_eq!(row.dead_reason, None);
        assert_eq!(row.dead_detail, None);
        assert_eq!(row.result, None);
        assert_eq!(row.finished_at_ms, None);
    }
    assert!(s
        .task("task_0000doesnotexist")
        .await
        .expect("task")
        .is_none());

    // A claimed row carries the same envelope and signature.
    let claimed = claim_one(s, "q.full:1-x_y", "w1", T0).await;
    assert_same_signed("claimed row", &claimed, &full);
}

/// Oversize args, bad queue names, bad ids and options are `Invalid` and
/// store nothing.
pub async fn check_invalid_input(store: Arc<dyn Store>) {
    let s = &*store;
    let mut t = new_task("default");
    t.envelope.args = vec![b'x'; MAX_ARGS_BYTES + 1];
    assert_invalid("args over the limit", s.enqueue(t, T0).await);

    let long = "q".repeat(MAX_QUEUE_NAME_LEN + 1);
    for bad in [
        "",
        long.as_str(),
        "has space",
        "caf\u{e9}",
        "a/b",
        "q\n",
        "*",
    ] {
        assert_invalid(
            &format!("queue name {bad:?}"),
            s.enqueue(new_task(bad), T0).await,
        );
    }
    let max = "q".repeat(MAX_QUEUE_NAME_LEN);
    put(s, new_task(&max)).await;

    for bad in ["job_123", "msg_", "task_a b", "123"] {
        let mut t = new_task("default");
        t.envelope.id = bad.into();
        assert_invalid(&format!("task id {bad:?}"), s.enqueue(t, T0).await);
    }
    let mut t = new_task("default");
    t.envelope.name = String::new();
    assert_invalid("empty task name", s.enqueue(t, T0).await);
    let mut t = new_task("default");
    t.envelope.max_attempts = 0;
    assert_invalid("max_attempts 0", s.enqueue(t, T0).await);
    let mut t = new_task("default");
    t.idempotency_key = Some(String::new());
    assert_invalid("empty idempotency key", s.enqueue(t, T0).await);

    assert_invalid(
        "claim without queues",
        s.claim(claim_req(&[], "w", 1), T0).await,
    );
    assert_invalid(
        "claim on a bad queue name",
        s.claim(claim_req(&["bad queue"], "w", 1), T0).await,
    );
    let mut req = claim_req(&["default"], "w", 1);
    req.lease_ms = 0;
    assert_invalid("claim with a zero lease", s.claim(req, T0).await);

    assert_eq!(total(s).await, 1, "only the valid task is stored");
    assert!(claim_n(s, &["default"], 10, T0).await.is_empty());
}

/// A batch with one bad task stores none of them.
pub async fn check_batch_atomic(store: Arc<dyn Store>) {
    let s = &*store;
    let mut bad = new_task("default");
    bad.envelope.args = vec![0; MAX_ARGS_BYTES + 1];
    let batch = vec![new_task("default"), bad, new_task("default")];
    assert_invalid("batch with oversize args", s.enqueue_batch(batch, T0).await);
    assert_eq!(total(s).await, 0, "a refused batch stores nothing");

    // A duplicate id is found only by the store: the whole batch fails.
    let existing = put(s, new_task("default")).await;
    let mut dup = new_task("default");
    dup.envelope.id = existing.id().to_owned();
    let first = new_task("default");
    let r = s
        .enqueue_batch(vec![first.clone(), dup, new_task("default")], T0)
        .await;
    assert_conflict("batch reusing an existing task id", r);
    assert!(
        s.task(&first.envelope.id).await.expect("task").is_none(),
        "the good task before the duplicate must not be stored"
    );
    assert_eq!(total(s).await, 1);

    // Empty batch is a no-op.
    assert!(s.enqueue_batch(vec![], T0).await.expect("empty").is_empty());
}

/// An idempotency key returns the first task, across calls and inside a batch.
pub async fn check_idempotency(store: Arc<dyn Store>) {
    let s = &*store;
    let mut a = new_task("default");
    a.idempotency_key = Some("order-42".into());
    let first = s.enqueue(a.clone(), T0).await.expect("enqueue");
    assert!(first.created);

    let mut b = new_task("other");
    b.idempotency_key = Some("order-42".into());
    b.envelope.args = b"{\"different\":true}".to_vec();
    let again = s.enqueue(b.clone(), T0 + 1).await.expect("enqueue again");
    assert!(!again.created, "same key: created must be false");
    assert_eq!(
        again.task.id(),
        a.envelope.id,
        "same key returns the first task"
    );
    assert_same_signed("idempotent result", &again.task, &a);
    assert!(s.task(&b.envelope.id).await.expect("task").is_none());

    // Inside one batch.
    let mut c = new_task("default");
    c.idempotency_key = Some("batch-key".into());
    let mut d = new_task("default");
    d.idempotency_key = Some("batch-key".into());
    let plain = new_task("default");
    let out = s
        .enqueue_batch(vec![c.clone(), plain, d.clone()], T0)
        .await
        .expect("batch");
    assert!(out[0].created && out[1].created);
    assert!(!out[2].created, "second use of a key in one batch");
    assert_eq!(out[2].task.id(), c.envelope.id);
    assert!(s.task(&d.envelope.id).await.expect("task").is_none());
    assert_eq!(total(s).await, 3);
}

/// A task with `not_before` in the future is not claimable until due.
pub async fn check_scheduled(store: Arc<dyn Store>) {
    let s = &*store;
    let mut t = new_task("default");
    t.envelope.not_before_ms = Some(T0 + 10_000);
    let row = put(s, t).await;
    assert_eq!(row.state, TaskState::Scheduled);
    assert_eq!(row.run_at_ms, T0 + 10_000);
    assert!(claim_n(s, &["default"], 10, T0).await.is_empty());
    assert!(claim_n(s, &["default"], 10, T0 + 9_999).await.is_empty());
    let got = claim_n(s, &["default"], 10, T0 + 10_000).await;
    assert_eq!(ids(&got), vec![row.id().to_owned()]);
    assert_eq!(got[0].state, TaskState::Running);
    assert_eq!(got[0].attempt, 1);
}

/// Claims take higher priority first, then earlier `run_at`, then id.
pub async fn check_claim_order(store: Arc<dyn Store>) {
    let s = &*store;
    // (priority, not_before offset)
    let plan = [(0, 0), (5, 300), (5, 100), (-1, 0), (5, 100), (0, 50)];
    let mut rows = Vec::new();
    for (prio, offset) in plan {
        let mut t = new_task("default");
        t.priority = prio;
        t.envelope.not_before_ms = Some(T0 - 1_000 + offset);
        rows.push(put(s, t).await);
    }
    let mut expected = rows.clone();
    expected.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(a.run_at_ms.cmp(&b.run_at_ms))
            .then(a.id().cmp(b.id()))
    });
    let mut got = Vec::new();
    for _ in 0..rows.len() {
        got.push(claim_one(s, "default", "w", T0).await);
    }
    assert_eq!(ids(&got), ids(&expected), "claim order");

    // A single claim of several returns them in the same order.
    for (prio, offset) in plan {
        let mut t = new_task("second");
        t.priority = prio;
        t.envelope.not_before_ms = Some(T0 - 1_000 + offset);
        put(s, t).await;
    }
    let batch = claim_n(s, &["second"], 3, T0).await;
    let prios: Vec<i32> = batch.iter().map(|r| r.priority).collect();
    assert_eq!(prios, vec![5, 5, 5], "one claim takes the highest first");
    assert!(batch.windows(2).all(|w| w[0].run_at_ms <= w[1].run_at_ms));
}

/// Claims respect the limit and the queue filter and set the lease.
pub async fn check_claim_limit_and_queues(store: Arc<dyn Store>) {
    let s = &*store;
    for _ in 0..5 {
        put(s, new_task("q1")).await;
    }
    for _ in 0..3 {
        put(s, new_task("q2")).await;
    }
    put(s, new_task("q3")).await;

    let got = s
        .claim(claim_req(&["q1"], "worker-a", 2), T0)
        .await
        .expect("claim");
    assert_eq!(got.len(), 2);
    for r in &got {
        assert_eq!(r.queue(), "q1");
        assert_eq!(r.state, TaskState::Running);
        assert_eq!(r.attempt, 1);
        assert_eq!(r.lease_owner.as_deref(), Some("worker-a"));
        assert_eq!(r.lease_expires_at_ms, Some(T0 + LEASE_MS));
        let stored = get(s, r.id()).await;
        assert_eq!(stored.state, TaskState::Running);
        assert_eq!(stored.lease_owner.as_deref(), Some("worker-a"));
        assert_eq!(stored.lease_expires_at_ms, Some(T0 + LEASE_MS));
        assert_eq!(LeaseToken::of(r).worker_id, "worker-a");
    }
    let got = claim_n(s, &["q2"], 10, T0).await;
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.queue() == "q2"));
    let got = claim_n(s, &["q1", "q2", "nothing-here"], 10, T0).await;
    assert_eq!(got.len(), 3, "the rest of q1");
    assert!(got.iter().all(|r| r.queue() == "q1"));
    assert!(claim_n(s, &["q1", "q2"], 10, T0).await.is_empty());
    assert!(claim_n(s, &["q3"], 0, T0).await.is_empty(), "limit 0");
    assert_eq!(claim_n(s, &["q3"], 10, T0).await.len(), 1);
}

/// Concurrent claimers never get the same task.
pub async fn check_concurrent_claims(store: Arc<dyn Store>) {
    const TASKS: usize = 300;
    const CLAIMERS: usize = 8;
    let batch: Vec<NewTask> = (0..TASKS).map(|_| new_task("busy")).collect();
    let all: BTreeSet<String> = batch.iter().map(|t| t.envelope.id.clone()).collect();
    store.enqueue_batch(batch, T0).await.expect("enqueue");

    let mut handles = Vec::new();
    for w in 0..CLAIMERS {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = store
                    .claim(claim_req(&["busy"], &format!("w{w}"), 7), T0)
                    .await
                    .expect("claim");
                if got.is_empty() {
                    break;
                }
                for r in &got {
                    assert_eq!(r.lease_owner.as_deref(), Some(format!("w{w}").as_str()));
                }
                mine.extend(ids(&got));
                tokio::task::yield_now().await;
            }
            mine
        }));
    }
    let mut seen = BTreeSet::new();
    let mut n = 0;
    for h in handles {
        for id in h.await.expect("claimer panicked") {
            n += 1;
            assert!(seen.insert(id.clone()), "task {id} was claimed twice");
        }
    }
    assert_eq!(n, TASKS);
    assert_eq!(seen, all, "every task claimed exactly once");
}

/// A heartbeat extends the lease.
pub async fn check_heartbeat(store: Arc<dyn Store>) {
    let s = &*store;
    put(s, new_task("default")).await;
    let row = claim_one(s, "default", "w", T0).await;
    let lease = LeaseToken::of(&row);
    s.heartbeat(&lease, 60_000, T0 + 20_000)
        .await
        .expect("heartbeat");
    let stored = get(s, row.id()).await;
    assert_eq!(stored.lease_expires_at_ms, Some(T0 + 80_000));
    assert_eq!(stored.state, TaskState::Running);
    assert_eq!(stored.attempt, 1);
    // The old expiry passed but the extended one did not: nothing rescued.
    let rescued = s
        .rescue_expired(T0 + LEASE_MS + 1, 10)
        .await
        .expect("rescue");
    assert!(rescued.is_empty(), "heartbeat must protect the task");
    // Past its expiry but not rescued: the lease is still current.
    s.heartbeat(&lease, 1_000, T0 + 90_000)
        .await
        .expect("late heartbeat of an unrescued lease");
    assert_eq!(
        get(s, row.id()).await.lease_expires_at_ms,
        Some(T0 + 91_000)
    );
    assert_invalid(
        "heartbeat with zero lease",
        s.heartbeat(&lease, 0, T0).await,
    );
}

/// A lost lease gives `LeaseLost` on every lease call.
pub async fn check_lease_lost(store: Arc<dyn Store>) {
    let s = &*store;
    let mut t = new_task("default");
    t.envelope.max_attempts = 5;
    put(s, t).await;
    let row = claim_one(s, "default", "wa", T0).await;
    let a = LeaseToken::of(&row);

    // Rescued.
    let rescued = s
        .rescue_expired(T0 + LEASE_MS, 10)
        .await
        .expect("rescue at expiry");
    assert_eq!(rescued, vec![row.id().to_owned()]);
    assert_lease_lost("heartbeat", s.heartbeat(&a, 1_000, T0 + LEASE_MS).await);
    assert_lease_lost("complete", s.complete(&a, None, T0 + LEASE_MS).await);
    assert_lease_lost(
        "fail",
        s.fail(&a, "boom", FailOutcome::Retry { at_ms: T0 }, T0 + LEASE_MS)
            .await,
    );
    assert_lease_lost("release", s.release(&a, T0 + LEASE_MS).await);

    // Re-claimed by another worker.
    let now = T0 + LEASE_MS + 1;
    let row_b = claim_one(s, "default", "wb", now).await;
    assert_eq!(row_b.attempt, 2);
    let b = LeaseToken::of(&row_b);
    assert_lease_lost("heartbeat, old", s.heartbeat(&a, 1_000, now).await);
    assert_lease_lost("complete, old", s.complete(&a, None, now).await);
    // Same worker and task, wrong attempt; right attempt, wrong worker.
    let wrong_attempt = LeaseToken {
        attempt: 1,
        ..b.clone()
    };
    assert_lease_lost("stale attempt", s.complete(&wrong_attempt, None, now).await);
    let wrong_worker = LeaseToken {
        worker_id: "wa".into(),
        ..b.clone()
    };
    assert_lease_lost("wrong worker", s.complete(&wrong_worker, None, now).await);
    let unknown = LeaseToken {
        task_id: TaskId::generate().to_string(),
        ..b.clone()
    };
    assert_lease_lost("unknown task", s.complete(&unknown, None, now).await);
    // The real holder is unaffected.
    s.heartbeat(&b, 1_000, now).await.expect("heartbeat b");
    s.complete(&b, None, now).await.expect("complete b");
    assert_eq!(get(s, row.id()).await.state, TaskState::Succeeded);
}

/// Complete stores the result; `complete_batch` settles each entry on its own.
pub async fn check_complete(store: Arc<dyn Store>) {
    let s = &*store;
    put(s, new_task("default")).await;
    let row = claim_one(s, "default", "w", T0).await;
    let lease = LeaseToken::of(&row);
    let result = br#"{"ok":true,"n":[1,2,3]}"#.to_vec();
    s.complete(&lease, Some(result.clone()), T0 + 5)
        .await
        .expect("complete");
    let done = get(s, row.id()).await;
    assert_eq!(done.state, TaskState::Succeeded);
    assert_eq!(done.result, Some(result));
    assert_eq!(done.finished_at_ms, Some(T0 + 5));
    assert_eq!(done.attempt, 1);
    assert_eq!(done.lease_owner, None);
    assert_eq!(done.lease_expires_at_ms, None);
    assert_lease_lost("complete twice", s.complete(&lease, None, T0 + 6).await);

    for _ in 0..3 {
        put(s, new_task("batch")).await;
    }
    let rows = claim_n(s, &["batch"], 3, T0).await;
    assert_eq!(rows.len(), 3);
    let stale = LeaseToken {
        attempt: 9,
        ..LeaseToken::of(&rows[1])
    };
    let items = vec![
        (LeaseToken::of(&rows[0]), Some(b"1".to_vec())),
        (stale, None),
        (LeaseToken::of(&rows[2]), None),
    ];
    let out = s.complete_batch(items, T0 + 10).await.expect("batch");
    assert_eq!(out.len(), 3);
    assert!(out[0].is_ok(), "{:?}", out[0]);
    assert!(
        matches!(out[1], Err(StoreError::LeaseLost { .. })),
        "{:?}",
        out[1]
    );
    assert!(out[2].is_ok(), "{:?}", out[2]);
    assert_eq!(get(s, rows[0].id()).await.result, Some(b"1".to_vec()));
    assert_eq!(get(s, rows[0].id()).await.state, TaskState::Succeeded);
    assert_eq!(get(s, rows[1].id()).await.state, TaskState::Running);
    assert_eq!(get(s, rows[2].id()).await.state, TaskState::Succeeded);
    assert!(s
        .complete_batch(vec![], T0)
        .await
        .expect("empty batch")
        .is_empty());
}

/// A retried task is not claimable before its time, and attempts count up.
pub async fn check_fail_retry(store: Arc<dyn Store>) {
    let s = &*store;
    put(s, new_task("default")).await;
    let row = claim_one(s, "default", "w", T0).await;
    s.fail(
        &LeaseToken::of(&row),
        "connection refused",
        FailOutcome::Retry { at_ms: T0 + 5_000 },
        T0 + 10,
    )
    .await
    .expect("fail");
    let r = get(s, row.id()).await;
    assert_eq!(r.state, TaskState::Retryable);
    assert_eq!(r.run_at_ms, T0 + 5_000);
    assert_eq!(r.last_error.as_deref(), Some("connection refused"));
    assert_eq!(r.attempt, 1);
    assert_eq!(r.lease_owner, None);
    assert_eq!(r.finished_at_ms, None);
    assert!(claim_n(s, &["default"], 10, T0 + 4_999).await.is_empty());
    let again = claim_one(s, "default", "w", T0 + 5_000).await;
    assert_eq!(again.attempt, 2, "attempts are counted");
    s.fail(
        &LeaseToken::of(&again),
        "second",
        FailOutcome::Retry { at_ms: T0 + 5_000 },
        T0 + 5_001,
    )
    .await
    .expect("fail 2");
    let third = claim_one(s, "default", "w", T0 + 5_001).await;
    assert_eq!(third.attempt, 3);
    assert_eq!(third.last_error.as_deref(), Some("second"));
}

/// A dead-lettered task keeps its reason and detail.
pub async fn check_fail_dead(store: Arc<dyn Store>) {
    let s = &*store;
    let task = signed(new_task("default"), Algorithm::HmacSha256, "k1");
    put(s, task.clone()).await;
    let row = claim_one(s, "default", "w", T0).await;
    s.fail(
        &LeaseToken::of(&row),
        "signature does not match",
        FailOutcome::Dead {
            reason: DeadReason::SignatureInvalid,
            detail: "mismatch".into(),
        },
        T0 + 7,
    )
    .await
    .expect("fail dead");
    let r = get(s, row.id()).await;
    assert_eq!(r.state, TaskState::Dead);
    assert_eq!(r.dead_reason, Some(DeadReason::SignatureInvalid));
    assert_eq!(r.dead_detail.as_deref(), Some("mismatch"));
    assert_eq!(r.last_error.as_deref(), Some("signature does not match"));
    assert_eq!(r.finished_at_ms, Some(T0 + 7));
    assert_eq!(r.lease_owner, None);
    assert_same_signed("dead letter", &r, &task);
    assert!(claim_n(s, &["default"], 10, T0 + 1_000_000)
        .await
        .is_empty());
}

/// Release gives a task back without counting the attempt.
pub async fn check_release(store: Arc<dyn Store>) {
    let s = &*store;
    let mut t = new_task("default");
    t.envelope.not_before_ms = Some(T0 + 100);
    put(s, t).await;
    let row = claim_one(s, "default", "w", T0 + 100).await;
    assert_eq!(row.attempt, 1);
    s.release(&LeaseToken::of(&row), T0 + 200)
        .await
        .expect("release");
    let r = get(s, row.id()).await;
    assert_eq!(r.state, TaskState::Available);
    assert_eq!(r.attempt, 0, "release does not count the attempt");
    assert_eq!(r.lease_owner, None);
    assert_eq!(r.lease_expires_at_ms, None);
    assert!(r.run_at_ms <= T0 + 200);
    let again = claim_one(s, "default", "w2", T0 + 200).await;
    assert_eq!(again.attempt, 1);
    assert_lease_lost("release twice", s.release(&LeaseToken::of(&row), T0).await);
}

/// Cancel works before a task runs and is a `Conflict` once running or final.
pub async fn check_cancel(store: Arc<dyn Store>) {
    let s = &*store;
    let avail = put(s, new_task("default")).await;
    let r = s
        .cancel(avail.id(), T0 + 1)
        .await
        .expect("cancel available");
    assert_eq!(r.state, TaskState::Cancelled);
    assert_eq!(r.finished_at_ms, Some(T0 + 1));
    assert_eq!(get(s, avail.id()).await.state, TaskState::Cancelled);
    assert_conflict("cancel twice", s.cancel(avail.id(), T0 + 2).await);

    let mut t = new_task("default");
    t.envelope.not_before_ms = Some(T0 + 60_000);
    let sched = put(s, t).await;
    assert_eq!(
        s.cancel(sched.id(), T0)
            .await
            .expect("cancel scheduled")
            .state,
        TaskState::Cancelled
    );

    let run = put(s, new_task("default")).await;
    let claimed = claim_one(s, "default", "w", T0).await;
    assert_eq!(claimed.id(), run.id());
    assert_conflict("cancel running", s.cancel(run.id(), T0).await);
    s.fail(
        &LeaseToken::of(&claimed),
        "x",
        FailOutcome::Retry { at_ms: T0 + 1_000 },
        T0,
    )
    .await
    .expect("fail");
    assert_eq!(
        s.cancel(run.id(), T0)
            .await
            .expect("cancel retryable")
            .state,
        TaskState::Cancelled
    );

    put(s, new_task("default")).await;
    let c = claim_one(s, "default", "w", T0).await;
    s.complete(&LeaseToken::of(&c), None, T0)
        .await
        .expect("complete");
    assert_conflict("cancel succeeded", s.cancel(c.id(), T0).await);
    let dead = put(s, new_task("default")).await;
    s.kill(dead.id(), DeadReason::Expired, "past expires_at", T0)
        .await
        .expect("kill");
    assert_conflict("cancel dead", s.cancel(dead.id(), T0).await);
    assert_not_found(
        "cancel unknown",
        s.cancel(&TaskId::generate().to_string(), T0).await,
    );
    assert!(claim_n(s, &["default"], 10, T0 + 100_000).await.is_empty());
}

/// Kill dead-letters a waiting task.
pub async fn check_kill(store: Arc<dyn Store>) {
    let s = &*store;
    let t = put(s, new_task("default")).await;
    let r = s
        .kill(
            t.id(),
            DeadReason::UnknownTask,
            "no handler for test.noop",
            T0 + 3,
        )
        .await
        .expect("kill");
    assert_eq!(r.state, TaskState::Dead);
    assert_eq!(r.dead_reason, Some(DeadReason::UnknownTask));
    assert_eq!(r.dead_detail.as_deref(), Some("no handler for test.noop"));
    assert_eq!(r.finished_at_ms, Some(T0 + 3));
    let stored = get(s, t.id()).await;
    assert_eq!(stored.state, TaskState::Dead);
    assert_eq!(stored.dead_reason, Some(DeadReason::UnknownTask));
    assert_conflict(
        "kill dead",
        s.kill(t.id(), DeadReason::Expired, "", T0).await,
    );
    put(s, new_task("default")).await;
    let running = claim_one(s, "default", "w", T0).await;
    assert_conflict(
        "kill running",
        s.kill(running.id(), DeadReason::Expired, "", T0).await,
    );
    assert_not_found(
        "kill unknown",
        s.kill(&TaskId::generate().to_string(), DeadReason::Expired, "", T0)
            .await,
    );
}

/// Expired leases become retryable, or dead once attempts are used up.
pub async fn check_rescue(store: Arc<dyn Store>) {
    let s = &*store;
    let mut t = new_task("default");
    t.envelope.max_attempts = 2;
    let id = put(s, t).await.id().to_owned();
    let first = claim_one(s, "default", "w", T0).await;
    assert_eq!(first.attempt, 1);
    assert!(s
        .rescue_expired(T0 + LEASE_MS - 1, 10)
        .await
        .expect("rescue early")
        .is_empty());
    let now = T0 + LEASE_MS;
    assert_eq!(
        s.rescue_expired(now, 10).await.expect("rescue"),
        vec![id.clone()]
    );
    let r = get(s, &id).await;
    assert_eq!(r.state, TaskState::Retryable);
    assert!(r.run_at_ms <= now, "rescued task is due at once");
    assert_eq!(r.lease_owner, None);
    assert_eq!(r.attempt, 1);
    let second = claim_one(s, "default", "w", now).await;
    assert_eq!(second.attempt, 2);
    let later = now + LEASE_MS;
    assert_eq!(
        s.rescue_expired(later, 10).await.expect("rescue 2"),
        vec![id.clone()]
    );
    let r = get(s, &id).await;
    assert_eq!(r.state, TaskState::Dead, "attempts used up");
    assert_eq!(r.dead_reason, Some(DeadReason::MaxAttempts));
    assert_eq!(r.finished_at_ms, Some(later));

    // The limit is respected.
    for _ in 0..5 {
        put(s, new_task("many")).await;
    }
    assert_eq!(claim_n(s, &["many"], 5, T0).await.len(), 5);
    let a = s.rescue_expired(T0 + LEASE_MS, 3).await.expect("rescue 3");
    assert_eq!(a.len(), 3);
    let b = s
        .rescue_expired(T0 + LEASE_MS, 3)
        .await
        .expect("rescue rest");
    assert_eq!(b.len(), 2);
    assert!(a.iter().all(|x| !b.contains(x)));
}

/// Task listing filters and pages without duplicates or gaps.
pub async fn check_list_tasks(store: Arc<dyn Store>) {
    let s = &*store;
    let mut all = Vec::new();
    for i in 0..23 {
        let q = if i % 3 == 0 { "beta" } else { "alpha" };
        all.push(put(s, new_task(q)).await);
    }
    // Make a few running.
    let running = claim_n(s, &["alpha"], 4, T0).await;
    let running_ids: BTreeSet<String> = ids(&running).into_iter().collect();

    let walk = |filter: TaskFilter| async move {
        let mut out = Vec::new();
        let mut f = filter;
        let mut pages = 0;
        loop {
            let page = s.list_tasks(f.clone()).await.expect("list_tasks");
            assert!(page.items.len() <= f.limit.max(1));
            out.extend(ids(&page.items));
            pages += 1;
            assert!(pages < 100, "pagination does not end");
            match page.next_cursor {
                Some(c) => f.cursor = Some(c),
                None => break,
            }
        }
        out
    };
    let mut expect_all: Vec<String> = ids(&all);
    expect_all.sort();
    let got = walk(TaskFilter {
        limit: 5,
        ..TaskFilter::default()
    })
    .await;
    assert_eq!(
        got, expect_all,
        "all tasks, id order, no gaps or duplicates"
    );

    let mut expect_alpha: Vec<String> = all
        .iter()
        .filter(|r| r.queue() == "alpha")
        .map(|r| r.id().to_owned())
        .collect();
    expect_alpha.sort();
    let got = walk(TaskFilter {
        queue: Some("alpha".into()),
        limit: 4,
        ..TaskFilter::default()
    })
    .await;
    assert_eq!(got, expect_alpha);

    let got = walk(TaskFilter {
        queue: Some("alpha".into()),
        state: Some(TaskState::Running),
        limit: 3,
        ..TaskFilter::default()
    })
    .await;
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), running_ids);

    let got = walk(TaskFilter {
        state: Some(TaskState::Succeeded),
        limit: 3,
        ..TaskFilter::default()
    })
    .await;
    assert!(got.is_empty());

    let page = s
        .list_tasks(TaskFilter::default())
        .await
        .expect("default limit");
    assert_eq!(page.items.len(), 23, "limit 0 means the default page");
    assert!(page.next_cursor.is_none());

    assert_invalid(
        "garbage cursor",
        s.list_tasks(TaskFilter {
            cursor: Some("\u{1f600}not-a-cursor".into()),
            ..TaskFilter::default()
        })
        .await,
    );
}

async fn make_dead(
    s: &dyn Store,
    queue: &str,
    reason: DeadReason,
    at: i64,
    signed_with: Option<&str>,
) -> NewTask {
    let mut t = new_task(queue);
    if let Some(k) = signed_with {
        t = signed(t, Algorithm::HmacSha256, k);
    }
    put(s, t.clone()).await;
    s.kill(&t.envelope.id, reason, &format!("detail {at}"), at)
        .await
        .expect("kill");
    t
}

/// Dead letters list newest first, filtered and paged.
pub async fn check_list_dead(store: Arc<dyn Store>) {
    let s = &*store;
    let mut dead = Vec::new();
    for i in 0..12i64 {
        let q = if i % 2 == 0 { "even" } else { "odd" };
        let reason = if i % 3 == 0 {
            DeadReason::Expired
        } else {
            DeadReason::PayloadInvalid
        };
        // Two letters share each timestamp to exercise tie-breaking.
        let at = T0 + 1_000 * (i / 2);
        let t = make_dead(s, q, reason, at, None).await;
        dead.push((t.envelope.id, q, reason, at));
    }
    put(s, new_task("even")).await; // not dead

    let newest_first = |mut v: Vec<(String, &str, DeadReason, i64)>| {
        v.sort_by(|a, b| b.3.cmp(&a.3).then(b.0.cmp(&a.0)));
        v.into_iter().map(|x| x.0).collect::<Vec<_>>()
    };
    let walk = |filter: DeadFilter| async move {
        let mut out = Vec::new();
        let mut f = filter;
        let mut pages = 0;
        loop {
            let page = s.list_dead(f.clone()).await.expect("list_dead");
            for r in &page.items {
                assert_eq!(r.state, TaskState::Dead);
            }
            out.extend(ids(&page.items));
            pages += 1;
            assert!(pages < 100, "pagination does not end");
            match page.next_cursor {
                Some(c) => f.cursor = Some(c),
                None => break,
            }
        }
        out
    };

    let got = walk(DeadFilter {
        limit: 5,
        ..DeadFilter::default()
    })
    .await;
    assert_eq!(got, newest_first(dead.clone()), "newest first, paged");

    let got = walk(DeadFilter {
        queue: Some("odd".into()),
        limit: 2,
        ..DeadFilter::default()
    })
    .await;
    assert_eq!(
        got,
        newest_first(dead.iter().filter(|d| d.1 == "odd").cloned().collect())
    );

    let got = walk(DeadFilter {
        reason: Some(DeadReason::Expired),
        limit: 1,
        ..DeadFilter::default()
    })
    .await;
    assert_eq!(
        got,
        newest_first(
            dead.iter()
                .filter(|d| d.2 == DeadReason::Expired)
                .cloned()
                .collect()
        )
    );

    let (since, until) = (T0 + 1_000, T0 + 4_000);
    let got = walk(DeadFilter {
        since_ms: Some(since),
        until_ms: Some(until),
        queue: Some("even".into()),
        limit: 2,
        ..DeadFilter::default()
    })
    .await;
    assert_eq!(
        got,
        newest_first(
            dead.iter()
                .filter(|d| d.1 == "even" && d.3 >= since && d.3 < until)
                .cloned()
                .collect()
        ),
        "since is inclusive, until exclusive"
    );

    let first = s.list_dead(DeadFilter::default()).await.expect("list_dead");
    let top = &first.items[0];
    assert!(top.dead_reason.is_some());
    assert!(top.dead_detail.is_some());
    assert_invalid(
        "garbage cursor",
        s.list_dead(DeadFilter {
            cursor: Some("nope".into()),
            ..DeadFilter::default()
        })
        .await,
    );
}

/// Replay resets attempts and keeps the envelope and signature identical.
pub async fn check_replay(store: Arc<dyn Store>) {
    let s = &*store;
    let mut t = signed(new_task("default"), Algorithm::Ed25519, "ed-1");
    t.envelope.args = vec![0xde, 0xad, 0xbe, 0xef];
    t.envelope.max_attempts = 1;
    put(s, t.clone()).await;
    let row = claim_one(s, "default", "w", T0).await;
    s.fail(
        &LeaseToken::of(&row),
        "boom",
        FailOutcome::Dead {
            reason: DeadReason::MaxAttempts,
            detail: "1 of 1".into(),
        },
        T0 + 1,
    )
    .await
    .expect("fail");
    let other_dead = make_dead(s, "default", DeadReason::Expired, T0 + 2, Some("k")).await;
    let alive = put(s, new_task("default")).await;

    let replayed = s
        .replay_dead(
            DeadSelector::Ids(vec![
                t.envelope.id.clone(),
                alive.id().to_owned(),
                TaskId::generate().to_string(),
            ]),
            T0 + 100,
        )
        .await
        .expect("replay by id");
    assert_eq!(
        replayed,
        vec![t.envelope.id.clone()],
        "only dead letters are replayed"
    );
    let r = get(s, &t.envelope.id).await;
    assert_eq!(r.state, TaskState::Available);
    assert_eq!(r.attempt, 0);
    assert_eq!(r.dead_reason, None);
    assert_eq!(r.dead_detail, None);
    assert_eq!(r.finished_at_ms, None);
    assert!(r.run_at_ms <= T0 + 100);
    assert_same_signed("replayed", &r, &t);
    assert_eq!(get(s, &other_dead.envelope.id).await.state, TaskState::Dead);

    // It runs again with attempt 1.
    let again = claim_n(s, &["default"], 10, T0 + 100).await;
    let again: Vec<&TaskRow> = again.iter().filter(|r| r.id() == t.envelope.id).collect();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 1);
    assert_same_signed("claimed after replay", again[0], &t);

    // By filter.
    make_dead(s, "q2", DeadReason::PayloadInvalid, T0 + 3, None).await;
    let n = s
        .replay_dead(
            DeadSelector::Filter(DeadFilter {
                reason: Some(DeadReason::Expired),
                limit: 1,
                ..DeadFilter::default()
            }),
            T0 + 200,
        )
        .await
        .expect("replay by filter");
    assert_eq!(n, vec![other_dead.envelope.id.clone()]);
    let r = get(s, &other_dead.envelope.id).await;
    assert_eq!(r.state, TaskState::Available);
    assert_same_signed("replayed by filter", &r, &other_dead);
    let left = s.list_dead(DeadFilter::default()).await.expect("list");
    assert_eq!(left.items.len(), 1, "the payload-invalid letter stays dead");
}

/// Purge deletes dead letters only.
pub async fn check_purge(store: Arc<dyn Store>) {
    let s = &*store;
    let a = make_dead(s, "default", DeadReason::Expired, T0, None).await;
    let b = make_dead(s, "default", DeadReason::UnknownTask, T0, None).await;
    let c = make_dead(s, "other", DeadReason::UnknownTask, T0, None).await;
    let alive = put(s, new_task("default")).await;
    let purged = s
        .purge_dead(DeadSelector::Ids(vec![
            a.envelope.id.clone(),
            alive.id().to_owned(),
        ]))
        .await
        .expect("purge ids");
    assert_eq!(purged, vec![a.envelope.id.clone()]);
    assert!(s.task(&a.envelope.id).await.expect("task").is_none());
    assert!(s.task(alive.id()).await.expect("task").is_some());
    let purged = s
        .purge_dead(DeadSelector::Filter(DeadFilter {
            queue: Some("other".into()),
            ..DeadFilter::default()
        }))
        .await
        .expect("purge filter");
    assert_eq!(purged, vec![c.envelope.id.clone()]);
    assert!(s.task(&b.envelope.id).await.expect("task").is_some());
    let purged = s
        .purge_dead(DeadSelector::Filter(DeadFilter::default()))
        .await
        .expect("purge all");
    assert_eq!(purged, vec![b.envelope.id.clone()]);
    assert_eq!(total(s).await, 1);
}

/// Counts per queue and state.
pub async fn check_counts(store: Arc<dyn Store>) {
    let s = &*store;
    assert!(s.counts().await.expect("counts").is_empty(), "empty store");
    for _ in 0..3 {
        put(s, new_task("a")).await;
    }
    let mut t = new_task("a");
    t.envelope.not_before_ms = Some(T0 + 1_000);
    put(s, t).await;
    put(s, new_task("b")).await;
    let claimed = claim_one(s, "a", "w", T0).await;
    s.complete(&LeaseToken::of(&claimed), None, T0)
        .await
        .expect("complete");
    claim_one(s, "a", "w", T0).await;
    let b = claim_one(s, "b", "w", T0).await;
    s.fail(
        &LeaseToken::of(&b),
        "e",
        FailOutcome::Dead {
            reason: DeadReason::PayloadInvalid,
            detail: String::new(),
        },
        T0,
    )
    .await
    .expect("fail");

    let counts = s.counts().await.expect("counts");
    let queues: Vec<&str> = counts.iter().map(|c| c.queue.as_str()).collect();
    assert_eq!(queues, vec!["a", "b"], "sorted by queue");
    let a = &counts[0];
    assert_eq!(a.count(TaskState::Available), 1);
    assert_eq!(a.count(TaskState::Scheduled), 1);
    assert_eq!(a.count(TaskState::Running), 1);
    assert_eq!(a.count(TaskState::Succeeded), 1);
    assert_eq!(a.count(TaskState::Dead), 0);
    assert!(a.counts.iter().all(|(_, n)| *n > 0), "no zero entries");
    assert_eq!(counts[1].counts, vec![(TaskState::Dead, 1)]);
}

/// Pending tasks per signing key, final tasks excluded.
pub async fn check_pending_by_key(store: Arc<dyn Store>) {
    let s = &*store;
    for _ in 0..2 {
        put(s, signed(new_task("q"), Algorithm::HmacSha256, "k-old")).await;
    }
    put(s, signed(new_task("q2"), Algorithm::Ed25519, "k-new")).await;
    put(s, new_task("q")).await;
    // Final tasks signed with other keys do not count.
    let done = signed(new_task("done"), Algorithm::HmacSha256, "k-gone");
    put(s, done).await;
    let c = claim_one(s, "done", "w", T0).await;
    s.complete(&LeaseToken::of(&c), None, T0)
        .await
        .expect("complete");
    make_dead(s, "q", DeadReason::Expired, T0, Some("k-dead")).await;
    // A running one still counts.
    put(s, signed(new_task("run"), Algorithm::Ed25519, "k-new")).await;
    claim_one(s, "run", "w", T0).await;

    let mut got = s.pending_by_key().await.expect("pending_by_key");
    got.sort_by(|a, b| a.key_id.cmp(&b.key_id));
    let want = vec![
        crate::task::KeyUsage {
            key_id: None,
            alg: None,
            pending: 1,
        },
        crate::task::KeyUsage {
            key_id: Some("k-new".into()),
            alg: Some(Algorithm::Ed25519),
            pending: 2,
        },
        crate::task::KeyUsage {
            key_id: Some("k-old".into()),
            alg: Some(Algorithm::HmacSha256),
            pending: 2,
        },
    ];
    assert_eq!(got, want);
}

/// Prune deletes only old succeeded and cancelled tasks, never dead letters.
pub async fn check_prune(store: Arc<dyn Store>) {
    let s = &*store;
    let finish = |at: i64| async move {
        put(s, new_task("p")).await;
        let r = claim_one(s, "p", "w", T0).await;
        s.complete(&LeaseToken::of(&r), None, at)
            .await
            .expect("complete");
        r.id().to_owned()
    };
    let old1 = finish(T0 + 10).await;
    let old2 = finish(T0 + 20).await;
    let fresh = finish(T0 + 1_000).await;
    let cancelled = put(s, new_task("c")).await;
    s.cancel(cancelled.id(), T0 + 30).await.expect("cancel");
    let dead = make_dead(s, "p", DeadReason::Expired, T0 + 5, None).await;
    let waiting = put(s, new_task("w")).await;
    let mut t = new_task("w");
    t.envelope.not_before_ms = Some(T0 + 100_000);
    let scheduled = put(s, t).await;

    let cutoff = T0 + 500;
    assert_eq!(s.prune(cutoff, 2).await.expect("prune"), 2, "limit");
    assert_eq!(s.prune(cutoff, 100).await.expect("prune"), 1);
    assert_eq!(s.prune(cutoff, 100).await.expect("prune"), 0);
    for gone in [&old1, &old2, &cancelled.envelope.id] {
        assert!(s.task(gone).await.expect("task").is_none(), "{gone} pruned");
    }
    for kept in [
        &fresh,
        &dead.envelope.id,
        &waiting.envelope.id,
        &scheduled.envelope.id,
    ] {
        assert!(s.task(kept).await.expect("task").is_some(), "{kept} kept");
    }
    // The finish time is exclusive.
    assert_eq!(s.prune(T0 + 1_000, 10).await.expect("prune"), 0);
    assert_eq!(s.prune(T0 + 1_001, 10).await.expect("prune"), 1);
}

/// API keys: create, look up by hash, list, revoke.
pub async fn check_api_keys(store: Arc<dyn Store>) {
    let s = &*store;
    let key = |name: &str, hash: &str, at: i64| ApiKeyRecord {
        id: ApiKeyId::generate().to_string(),
        name: name.into(),
        scope: "publish".into(),
        hash: hash.into(),
        prefix: "sk_abcd".into(),
        created_at_ms: at,
        revoked_at_ms: None,
    };
    let a = key("ci", &"a".repeat(64), T0);
    let b = key("ops", &"b".repeat(64), T0 + 1);
    s.create_api_key(a.clone()).await.expect("create a");
    s.create_api_key(b.clone()).await.expect("create b");
    assert_eq!(
        s.api_key_by_hash(&a.hash).await.expect("by hash"),
        Some(a.clone())
    );
    assert_eq!(s.api_key_by_hash("ffff").await.expect("by hash"), None);
    assert_eq!(
        s.list_api_keys().await.expect("list"),
        vec![a.clone(), b.clone()]
    );
    let mut dup_hash = key("dup", &a.hash, T0 + 2);
    dup_hash.name = "dup".into();
    assert!(
        matches!(
            s.create_api_key(dup_hash).await,
            Err(StoreError::Conflict(_))
        ),
        "a second key with the same hash is a conflict"
    );
    let mut bad = key("bad", "c", T0);
    bad.id = "sk_oops".into();
    assert_invalid("api key id without key_", s.create_api_key(bad).await);

    let revoked = s.revoke_api_key(&a.id, T0 + 50).await.expect("revoke");
    assert_eq!(revoked.revoked_at_ms, Some(T0 + 50));
    let again = s
        .revoke_api_key(&a.id, T0 + 60)
        .await
        .expect("revoke twice");
    assert_eq!(
        again.revoked_at_ms,
        Some(T0 + 50),
        "first revocation time stays"
    );
    let found = s
        .api_key_by_hash(&a.hash)
        .await
        .expect("by hash")
        .expect("revoked keys are still found");
    assert_eq!(found.revoked_at_ms, Some(T0 + 50));
    assert_not_found(
        "revoke unknown",
        s.revoke_api_key(&ApiKeyId::generate().to_string(), T0)
            .await,
    );
}

// ---------------------------------------------------------------------------
// Builders for delivery and scheduling

/// A valid unsigned message: a fresh `msg_` id on [`MESSAGE_QUEUE`], named
/// [`MESSAGE_TASK_NAME`], created at [`T0`], 3 attempts.
pub fn new_message() -> NewTask {
    let mut t = new_task(MESSAGE_QUEUE);
    t.envelope.id = MessageId::generate().to_string();
    t.envelope.name = MESSAGE_TASK_NAME.to_owned();
    t.envelope.args =
        br#"{"method":"POST","url":"https://example.com/hooks/1","body":"e30="}"#.to_vec();
    t
}

/// A valid target named `name` with a fresh id, created at [`T0`].
pub fn new_target(name: &str) -> TargetRecord {
    TargetRecord {
        id: TargetId::generate().to_string(),
        name: name.to_owned(),
        url_prefix: None,
        sealed_secrets: vec![0x00, 0xff, 0x10, 0x80, 0x7f],
        secret_fingerprint: "fp-0001".into(),
        rate_limit_per_s: None,
        max_concurrency: None,
        https_only: false,
        created_at_ms: T0,
        updated_at_ms: T0,
    }
}

/// A valid schedule named `name` with a fresh id, next due at
/// `next_fire_at_ms`, created at [`T0`].
pub fn new_schedule(name: &str, next_fire_at_ms: Option<i64>) -> ScheduleRecord {
    ScheduleRecord {
        id: ScheduleId::generate().to_string(),
        name: name.to_owned(),
        cron: "*/5 * * * *".into(),
        timezone: "UTC".into(),
        payload: br#"{"task":{"name":"report.daily","queue":"default","args":{}}}"#.to_vec(),
        catch_up: CatchUp::Skip,
        paused: false,
        next_fire_at_ms,
        last_fired_at_ms: None,
        created_at_ms: T0,
        updated_at_ms: T0,
    }
}

fn attempt_of(task_id: &str, attempt: u32, started_at_ms: i64) -> AttemptRecord {
    AttemptRecord {
        task_id: task_id.to_owned(),
        attempt,
        started_at_ms,
        latency_ms: 42,
        status: Some(200),
        error: None,
        response_body: b"ok".to_vec(),
    }
}

fn with_callback(mut task: NewTask) -> NewTask {
    task.envelope.callback_url = Some(format!(
        "https://example.com/callbacks/{}",
        task.envelope.id
    ));
    task
}

/// Enqueues `task`, claims it (it must be the only due task of its queue)
/// and completes it at `at`.
async fn finish(s: &dyn Store, task: NewTask, at: i64) -> String {
    let queue = task.envelope.queue.clone();
    let id = put(s, task).await.id().to_owned();
    let row = claim_one(s, &queue, "w-finish", T0).await;
    assert_eq!(row.id(), id, "{queue} should hold only {id}");
    s.complete(&LeaseToken::of(&row), None, at)
        .await
        .unwrap_or_else(|e| panic!("complete {id}: {e}"));
    id
}

async fn attempts_of(s: &dyn Store, id: &str) -> Vec<AttemptRecord> {
    s.attempts(id)
        .await
        .unwrap_or_else(|e| panic!("attempts({id}): {e}"))
}

async fn pending(s: &dyn Store, limit: usize) -> Vec<String> {
    ids(&s
        .pending_callbacks(limit)
        .await
        .unwrap_or_else(|e| panic!("pending_callbacks({limit}): {e}")))
}

async fn mark_sent(s: &dyn Store, ids: &[&str], now: i64) {
    let ids: Vec<String> = ids.iter().map(|i| (*i).to_owned()).collect();
    s.mark_callbacks_sent(&ids, now)
        .await
        .unwrap_or_else(|e| panic!("mark_callbacks_sent({ids:?}): {e}"));
}

// ---------------------------------------------------------------------------
// Checks: delivery and scheduling

/// Messages are task rows with `msg_` ids on the message queue.
pub async fn check_messages(store: Arc<dyn Store>) {
    let s = &*store;
    let mut msgs = Vec::new();
    for _ in 0..5 {
        let m = new_message();
        let row = put(s, m.clone()).await;
        assert_same_signed("message", &row, &m);
        assert_eq!(row.queue(), MESSAGE_QUEUE);
        assert_eq!(row.state, TaskState::Available);
        msgs.push(m);
    }
    let task = put(s, new_task("default")).await;
    let row = get(s, &msgs[0].envelope.id).await;
    assert_same_signed("message read back", &row, &msgs[0]);

    // Listing pages through `msg_` ids (cursors are message ids too).
    let mut want: Vec<String> = msgs.iter().map(|m| m.envelope.id.clone()).collect();
    want.sort();
    let mut got = Vec::new();
    let mut filter = TaskFilter {
        queue: Some(MESSAGE_QUEUE.into()),
        limit: 2,
        ..TaskFilter::default()
    };
    for _ in 0..10 {
        let page = s.list_tasks(filter.clone()).await.expect("list messages");
        got.extend(ids(&page.items));
        match page.next_cursor {
            Some(c) => filter.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(got, want, "messages listed in id order, paged");
    let all = s.list_tasks(TaskFilter::default()).await.expect("list all");
    assert_eq!(all.items.len(), 6, "messages and tasks list together");
    assert!(ids(&all.items).contains(&task.id().to_owned()));

    // Claimed, dead-lettered and paged like tasks.
    let claimed = claim_n(s, &[MESSAGE_QUEUE], 10, T0).await;
    assert_eq!(claimed.len(), 5);
    for (i, r) in claimed.iter().enumerate() {
        s.fail(
            &LeaseToken::of(r),
            "502 Bad Gateway",
            FailOutcome::Dead {
                reason: DeadReason::MaxAttempts,
                detail: "3 of 3".into(),
            },
            T0 + i as i64,
        )
        .await
        .expect("fail message");
    }
    let mut dead = Vec::new();
    let mut filter = DeadFilter {
        queue: Some(MESSAGE_QUEUE.into()),
        limit: 2,
        ..DeadFilter::default()
    };
    for _ in 0..10 {
        let page = s
            .list_dead(filter.clone())
            .await
            .expect("list dead messages");
        dead.extend(ids(&page.items));
        match page.next_cursor {
            Some(c) => filter.cursor = Some(c),
            None => break,
        }
    }
    let mut newest_first = ids(&claimed);
    newest_first.reverse();
    assert_eq!(dead, newest_first, "dead messages newest first, paged");
}

/// Delivery attempts: recorded, replaced, listed in order, deleted with
/// their task.
pub async fn check_attempts(store: Arc<dyn Store>) {
    let s = &*store;
    let m = put(s, new_message()).await.id().to_owned();
    assert!(attempts_of(s, &m).await.is_empty(), "no attempts yet");

    let a1 = AttemptRecord {
        status: Some(503),
        response_body: b"busy, retry later".to_vec(),
        ..attempt_of(&m, 1, T0)
    };
    let a2 = AttemptRecord {
        status: None,
        error: Some("connect timeout after 10s \u{e9}".into()),
        response_body: Vec::new(),
        latency_ms: 10_000,
        ..attempt_of(&m, 2, T0 + 5_000)
    };
    let a3 = AttemptRecord {
        response_body: (0..MAX_ATTEMPT_BODY_BYTES)
            .map(|i| (i % 256) as u8)
            .collect(),
        latency_ms: 0,
        ..attempt_of(&m, 3, T0 + 305_000)
    };
    // Recorded out of order, listed by attempt.
    for a in [&a3, &a1, &a2] {
        s.record_attempt(a.clone())
            .await
            .unwrap_or_else(|e| panic!("record attempt {}: {e}", a.attempt));
    }
    assert_eq!(
        attempts_of(s, &m).await,
        vec![a1.clone(), a2.clone(), a3.clone()],
        "oldest first, byte for byte"
    );

    // The same attempt again replaces the first record.
    let a2b = AttemptRecord {
        status: Some(500),
        error: None,
        response_body: b"oops".to_vec(),
        latency_ms: 12,
        ..a2.clone()
    };
    s.record_attempt(a2b.clone()).await.expect("record again");
    assert_eq!(
        attempts_of(s, &m).await,
        vec![a1.clone(), a2b.clone(), a3.clone()]
    );

    // Other messages keep their own.
    let other = put(s, new_message()).await.id().to_owned();
    let o1 = attempt_of(&other, 1, T0 + 1);
    s.record_attempt(o1.clone()).await.expect("record other");
    assert_eq!(attempts_of(s, &other).await, vec![o1.clone()]);
    assert_eq!(attempts_of(s, &m).await.len(), 3);

    // Unknown tasks and invalid records store nothing.
    let unknown = MessageId::generate().to_string();
    assert_not_found(
        "attempt of an unknown message",
        s.record_attempt(attempt_of(&unknown, 1, T0)).await,
    );
    assert!(attempts_of(s, &unknown).await.is_empty());
    let bad = [
        (
            "attempt 0",
            AttemptRecord {
                attempt: 0,
                ..a1.clone()
            },
        ),
        (
            "body over the limit",
            AttemptRecord {
                attempt: 9,
                response_body: vec![b'x'; MAX_ATTEMPT_BODY_BYTES + 1],
                ..a1.clone()
            },
        ),
        (
            "error text over the limit",
            AttemptRecord {
                attempt: 9,
                error: Some("e".repeat(MAX_ATTEMPT_ERROR_LEN + 1)),
                ..a1.clone()
            },
        ),
        (
            "negative latency",
            AttemptRecord {
                attempt: 9,
                latency_ms: -1,
                ..a1.clone()
            },
        ),
    ];
    for (what, record) in bad {
        assert_invalid(what, s.record_attempt(record).await);
    }
    assert_eq!(
        attempts_of(s, &m).await,
        vec![a1, a2b, a3],
        "refused records change nothing"
    );

    // Pruned with their task; other messages keep theirs.
    let claimed = claim_n(s, &[MESSAGE_QUEUE], 10, T0).await;
    assert_eq!(claimed.len(), 2);
    let row = claimed
        .iter()
        .find(|r| r.id() == m)
        .expect("the first message was claimed");
    s.complete(&LeaseToken::of(row), None, T0 + 400_000)
        .await
        .expect("complete");
    assert_eq!(s.prune(T0 + 500_000, 10).await.expect("prune"), 1);
    assert!(s.task(&m).await.expect("task").is_none());
    assert!(
        attempts_of(s, &m).await.is_empty(),
        "prune deletes the attempts of the tasks it deletes"
    );
    assert_not_found(
        "attempt of a pruned message",
        s.record_attempt(attempt_of(&m, 4, T0 + 600_000)).await,
    );
    assert_eq!(attempts_of(s, &other).await, vec![o1.clone()]);

    // Purged with their dead letter.
    let d = put(s, new_message()).await.id().to_owned();
    s.record_attempt(attempt_of(&d, 1, T0))
        .await
        .expect("record");
    s.record_attempt(attempt_of(&d, 2, T0 + 1))
        .await
        .expect("record");
    s.kill(&d, DeadReason::TargetRefused, "refused", T0 + 2)
        .await
        .expect("kill");
    assert_eq!(
        attempts_of(s, &d).await.len(),
        2,
        "dead letters keep attempts"
    );
    let purged = s
        .purge_dead(DeadSelector::Ids(vec![d.clone()]))
        .await
        .expect("purge");
    assert_eq!(purged, vec![d.clone()]);
    assert!(
        attempts_of(s, &d).await.is_empty(),
        "purge deletes the attempts of the dead letters it deletes"
    );
    assert_eq!(attempts_of(s, &other).await, vec![o1]);
}

/// Finished tasks with a callback URL owe a callback until marked sent; a
/// replay owes a new one.
pub async fn check_pending_callbacks(store: Arc<dyn Store>) {
    let s = &*store;
    assert!(pending(s, 10).await.is_empty(), "empty store owes nothing");

    // Owed: succeeded (T0+30), killed (T0+10), a message dead after an attempt (T0+20).
    let a = finish(s, with_callback(new_task("a")), T0 + 30).await;
    let b = put(s, with_callback(new_task("b"))).await.id().to_owned();
    s.kill(&b, DeadReason::Expired, "past expires_at", T0 + 10)
        .await
        .expect("kill");
    let c = put(s, with_callback(new_message())).await.id().to_owned();
    let row = claim_one(s, MESSAGE_QUEUE, "w", T0).await;
    let dead = FailOutcome::Dead {
        reason: DeadReason::MaxAttempts,
        detail: "1 of 1".into(),
    };
    s.fail(&LeaseToken::of(&row), "410 Gone", dead.clone(), T0 + 20)
        .await
        .expect("fail");

    // Owe nothing: cancelled, no callback URL, not finished.
    let d = put(s, with_callback(new_task("d"))).await;
    s.cancel(d.id(), T0 + 5).await.expect("cancel");
    finish(s, new_task("e"), T0 + 1).await;
    put(s, with_callback(new_task("f"))).await;
    claim_one(s, "f", "w", T0).await;
    put(s, with_callback(new_task("g"))).await;
    let g = claim_one(s, "g", "w", T0).await;
    s.fail(
        &LeaseToken::of(&g),
        "later",
        FailOutcome::Retry { at_ms: T0 + 60_000 },
        T0 + 2,
    )
    .await
    .expect("fail retry");
    put(s, with_callback(new_task("h"))).await;
    let mut later = with_callback(new_task("h"));
    later.envelope.not_before_ms = Some(T0 + 3_600_000);
    put(s, later).await;

    let rows = s.pending_callbacks(10).await.expect("pending_callbacks");
    assert_eq!(
        ids(&rows),
        vec![b.clone(), c.clone(), a.clone()],
        "succeeded and dead tasks with a callback URL, by finish time"
    );
    for r in &rows {
        assert!(r.state.is_final(), "{}: {:?}", r.id(), r.state);
        assert!(r.envelope.callback_url.is_some());
        assert!(r.finished_at_ms.is_some());
    }
    assert_eq!(rows[1].dead_reason, Some(DeadReason::MaxAttempts));
    assert_eq!(pending(s, 2).await, vec![b.clone(), c.clone()], "limit");
    assert!(pending(s, 0).await.is_empty(), "limit 0");

    // Marked sent: no longer owed. Unknown ids and repeats are fine.
    let unknown = TaskId::generate().to_string();
    mark_sent(s, &[&b, &unknown], T0 + 100).await;
    assert_eq!(pending(s, 10).await, vec![c.clone(), a.clone()]);
    mark_sent(s, &[&b], T0 + 101).await;
    mark_sent(s, &[], T0 + 101).await;
    assert_eq!(pending(s, 10).await, vec![c.clone(), a.clone()]);

    // A replayed dead letter owes nothing while it runs again, then owes a
    // new callback when it finishes again, however it finishes.
    let replayed = s
        .replay_dead(DeadSelector::Ids(vec![b.clone(), c.clone()]), T0 + 200)
        .await
        .expect("replay");
    assert_eq!(replayed.len(), 2);
    assert_eq!(pending(s, 10).await, vec![a.clone()]);
    let rb = claim_one(s, "b", "w", T0 + 200).await;
    s.complete(&LeaseToken::of(&rb), None, T0 + 300)
        .await
        .expect("complete replayed");
    let rc = claim_one(s, MESSAGE_QUEUE, "w", T0 + 200).await;
    s.fail(&LeaseToken::of(&rc), "410 Gone", dead, T0 + 400)
        .await
        .expect("fail replayed");
    assert_eq!(
        pending(s, 10).await,
        vec![a.clone(), b.clone(), c.clone()],
        "the replayed letter that was already sent owes a new callback"
    );

    mark_sent(s, &[&a, &b, &c], T0 + 500).await;
    assert!(pending(s, 10).await.is_empty());
}

/// Prune never deletes a task whose callback is still owed.
pub async fn check_prune_keeps_owed_callbacks(store: Arc<dyn Store>) {
    let s = &*store;
    // Oldest first, so a prune that took the oldest rows before checking
    // the callback would delete nothing or the wrong task.
    let owed = finish(s, with_callback(new_task("p")), T0 + 10).await;
    let sent = finish(s, with_callback(new_task("p")), T0 + 20).await;
    mark_sent(s, &[&sent], T0 + 21).await;
    let plain = finish(s, new_task("p"), T0 + 30).await;
    let cancelled = put(s, with_callback(new_task("c"))).await.id().to_owned();
    s.cancel(&cancelled, T0 + 40).await.expect("cancel");
    let dead = put(s, with_callback(new_task("d"))).await.id().to_owned();
    s.kill(&dead, DeadReason::Expired, "", T0 + 50)
        .await
        .expect("kill");

    let cutoff = T0 + 1_000;
    for round in 0..3 {
        assert_eq!(
            s.prune(cutoff, 1).await.expect("prune"),
            1,
            "round {round}: an owed callback does not use up the limit"
        );
    }
    assert_eq!(s.prune(cutoff, 10).await.expect("prune"), 0);
    for gone in [&sent, &plain, &cancelled] {
        assert!(s.task(gone).await.expect("task").is_none(), "{gone} pruned");
    }
    assert!(
        s.task(&owed).await.expect("task").is_some(),
        "a task whose callback is owed is kept"
    );
    assert!(s.task(&dead).await.expect("task").is_some());
    assert_eq!(pending(s, 10).await, vec![owed.clone(), dead.clone()]);

    mark_sent(s, &[&owed], T0 + 2_000).await;
    assert_eq!(s.prune(cutoff, 10).await.expect("prune"), 1);
    assert!(s.task(&owed).await.expect("task").is_none());
}

/// Targets: create, read by id and name, list by name, update, delete;
/// names are unique.
pub async fn check_targets(store: Arc<dyn Store>) {
    let s = &*store;
    assert!(s.list_targets().await.expect("list").is_empty());
    let mut a = new_target("zeta-billing");
    a.url_prefix = Some("https://billing.example.com/hooks/".into());
    a.sealed_secrets = (0..=255u8).collect();
    a.secret_fingerprint = "whsec_ab12".into();
    a.rate_limit_per_s = Some(50);
    a.max_concurrency = Some(4);
    a.https_only = true;
    let mut b = new_target("alpha.orders:v2");
    b.created_at_ms = T0 + 1;
    b.updated_at_ms = T0 + 1;
    s.create_target(a.clone()).await.expect("create a");
    s.create_target(b.clone()).await.expect("create b");

    assert_eq!(s.target(&a.id).await.expect("target"), Some(a.clone()));
    assert_eq!(
        s.target_by_name(&b.name).await.expect("by name"),
        Some(b.clone())
    );
    assert_eq!(
        s.target(&TargetId::generate().to_string())
            .await
            .expect("unknown"),
        None
    );
    assert_eq!(s.target_by_name("nobody").await.expect("unknown"), None);
    assert_eq!(
        s.list_targets().await.expect("list"),
        vec![b.clone(), a.clone()],
        "by name"
    );

    // Conflicts and refusals store nothing.
    let dup = new_target(&a.name);
    assert_conflict(
        "a second target with the same name",
        s.create_target(dup.clone()).await,
    );
    assert_eq!(s.target(&dup.id).await.expect("target"), None);
    let mut dup_id = new_target("another");
    dup_id.id = a.id.clone();
    assert_conflict(
        "a second target with the same id",
        s.create_target(dup_id).await,
    );
    assert_eq!(s.target_by_name("another").await.expect("by name"), None);
    let refused = [
        ("schedule id", {
            let mut t = new_target("x1");
            t.id = ScheduleId::generate().to_string();
            t
        }),
        ("empty name", new_target("")),
        ("name with a space", new_target("two words")),
        ("empty sealed secrets", {
            let mut t = new_target("x2");
            t.sealed_secrets.clear();
            t
        }),
        ("rate limit 0", {
            let mut t = new_target("x3");
            t.rate_limit_per_s = Some(0);
            t
        }),
        ("concurrency 0", {
            let mut t = new_target("x4");
            t.max_concurrency = Some(0);
            t
        }),
    ];
    for (what, t) in refused {
        assert_invalid(what, s.create_target(t).await);
    }
    assert_eq!(s.list_targets().await.expect("list").len(), 2);

    // Update replaces everything but id and created_at_ms.
    let a2 = TargetRecord {
        name: "zeta-billing-eu".into(),
        url_prefix: None,
        sealed_secrets: vec![9; 48],
        secret_fingerprint: "whsec_cd34".into(),
        rate_limit_per_s: None,
        max_concurrency: Some(1),
        https_only: false,
        created_at_ms: T0 + 999,
        updated_at_ms: T0 + 100,
        ..a.clone()
    };
    s.update_target(a2.clone()).await.expect("update");
    let want = TargetRecord {
        created_at_ms: a.created_at_ms,
        ..a2
    };
    assert_eq!(s.target(&a.id).await.expect("target"), Some(want.clone()));
    assert_eq!(s.target_by_name(&a.name).await.expect("old name"), None);
    assert_eq!(
        s.target_by_name(&want.name).await.expect("new name"),
        Some(want.clone())
    );
    let clash = TargetRecord {
        name: b.name.clone(),
        updated_at_ms: T0 + 200,
        ..want.clone()
    };
    assert_conflict(
        "renaming onto another target's name",
        s.update_target(clash).await,
    );
    assert_eq!(s.target(&a.id).await.expect("target"), Some(want.clone()));
    let same_name = TargetRecord {
        https_only: true,
        updated_at_ms: T0 + 300,
        ..want.clone()
    };
    s.update_target(same_name.clone())
        .await
        .expect("update keeping its own name");
    assert_eq!(
        s.target(&a.id).await.expect("target"),
        Some(same_name.clone())
    );
    assert_not_found(
        "update an unknown target",
        s.update_target(new_target("ghost")).await,
    );
    assert_eq!(s.target_by_name("ghost").await.expect("by name"), None);
    assert_invalid(
        "update with empty sealed secrets",
        s.update_target(TargetRecord {
            sealed_secrets: Vec::new(),
            ..same_name.clone()
        })
        .await,
    );
    assert_eq!(
        s.target(&a.id).await.expect("target"),
        Some(same_name.clone())
    );

    // Delete.
    s.delete_target(&b.id).await.expect("delete");
    assert_eq!(s.target(&b.id).await.expect("target"), None);
    assert_eq!(s.target_by_name(&b.name).await.expect("by name"), None);
    assert_not_found("delete twice", s.delete_target(&b.id).await);
    assert_eq!(s.list_targets().await.expect("list"), vec![same_name]);
    s.create_target(new_target(&b.name))
        .await
        .expect("a deleted target's name is free again");
}

/// Schedules: create, read by id and name, list by name, update, delete;
/// names are unique.
pub async fn check_schedules(store: Arc<dyn Store>) {
    let s = &*store;
    assert!(s.list_schedules().await.expect("list").is_empty());
    let mut a = new_schedule("nightly-report", Some(T0 + 3_600_000));
    a.cron = "0 0 3 * * Mon-Fri".into();
    a.timezone = "Europe/Berlin".into();
    a.payload = br#"{"message":{"url":"https://example.com/h","body":"\u00e9"}}"#.to_vec();
    a.catch_up = CatchUp::Once;
    a.last_fired_at_ms = Some(T0 - 86_400_000);
    let mut b = new_schedule("cleanup", None);
    b.paused = true;
    b.created_at_ms = T0 + 1;
    b.updated_at_ms = T0 + 2;
    s.create_schedule(a.clone()).await.expect("create a");
    s.create_schedule(b.clone()).await.expect("create b");

    assert_eq!(s.schedule(&a.id).await.expect("schedule"), Some(a.clone()));
    assert_eq!(
        s.schedule_by_name(&b.name).await.expect("by name"),
        Some(b.clone())
    );
    assert_eq!(
        s.schedule(&ScheduleId::generate().to_string())
            .await
            .expect("unknown"),
        None
    );
    assert_eq!(s.schedule_by_name("nobody").await.expect("unknown"), None);
    assert_eq!(
        s.list_schedules().await.expect("list"),
        vec![b.clone(), a.clone()],
        "by name"
    );

    let dup = new_schedule(&a.name, Some(T0));
    assert_conflict(
        "a second schedule with the same name",
        s.create_schedule(dup.clone()).await,
    );
    assert_eq!(s.schedule(&dup.id).await.expect("schedule"), None);
    let mut dup_id = new_schedule("another", Some(T0));
    dup_id.id = a.id.clone();
    assert_conflict(
        "a second schedule with the same id",
        s.create_schedule(dup_id).await,
    );
    assert_eq!(s.schedule_by_name("another").await.expect("by name"), None);
    let refused = [
        ("target id", {
            let mut x = new_schedule("x1", Some(T0));
            x.id = TargetId::generate().to_string();
            x
        }),
        ("empty name", new_schedule("", Some(T0))),
        ("name with a slash", new_schedule("a/b", Some(T0))),
        ("blank cron", {
            let mut x = new_schedule("x2", Some(T0));
            x.cron = "  ".into();
            x
        }),
        ("empty time zone", {
            let mut x = new_schedule("x3", Some(T0));
            x.timezone.clear();
            x
        }),
        ("empty payload", {
            let mut x = new_schedule("x4", Some(T0));
            x.payload.clear();
            x
        }),
    ];
    for (what, x) in refused {
        assert_invalid(what, s.create_schedule(x).await);
    }
    assert_eq!(s.list_schedules().await.expect("list").len(), 2);

    // Update replaces everything but id and created_at_ms.
    let a2 = ScheduleRecord {
        name: "nightly-report-v2".into(),
        cron: "@hourly".into(),
        timezone: "America/New_York".into(),
        payload: br#"{"task":{"name":"x"}}"#.to_vec(),
        catch_up: CatchUp::Skip,
        paused: true,
        next_fire_at_ms: None,
        last_fired_at_ms: None,
        created_at_ms: T0 + 999,
        updated_at_ms: T0 + 100,
        ..a.clone()
    };
    s.update_schedule(a2.clone()).await.expect("update");
    let want = ScheduleRecord {
        created_at_ms: a.created_at_ms,
        ..a2
    };
    assert_eq!(
        s.schedule(&a.id).await.expect("schedule"),
        Some(want.clone())
    );
    assert_eq!(s.schedule_by_name(&a.name).await.expect("old name"), None);
    let clash = ScheduleRecord {
        name: b.name.clone(),
        ..want.clone()
    };
    assert_conflict(
        "renaming onto another schedule's name",
        s.update_schedule(clash).await,
    );
    assert_eq!(
        s.schedule(&a.id).await.expect("schedule"),
        Some(want.clone())
    );
    let resumed = ScheduleRecord {
        paused: false,
        next_fire_at_ms: Some(T0 + 60_000),
        last_fired_at_ms: Some(T0),
        updated_at_ms: T0 + 300,
        ..want.clone()
    };
    s.update_schedule(resumed.clone())
        .await
        .expect("update keeping its own name");
    assert_eq!(
        s.schedule(&a.id).await.expect("schedule"),
        Some(resumed.clone())
    );
    assert_not_found(
        "update an unknown schedule",
        s.update_schedule(new_schedule("ghost", Some(T0))).await,
    );
    assert_invalid(
        "update with an empty payload",
        s.update_schedule(ScheduleRecord {
            payload: Vec::new(),
            ..resumed.clone()
        })
        .await,
    );
    assert_eq!(
        s.schedule(&a.id).await.expect("schedule"),
        Some(resumed.clone())
    );

    s.delete_schedule(&b.id).await.expect("delete");
    assert_eq!(s.schedule(&b.id).await.expect("schedule"), None);
    assert_eq!(s.schedule_by_name(&b.name).await.expect("by name"), None);
    assert_not_found("delete twice", s.delete_schedule(&b.id).await);
    assert_eq!(s.list_schedules().await.expect("list"), vec![resumed]);
    s.create_schedule(new_schedule(&b.name, None))
        .await
        .expect("a deleted schedule's name is free again");
}

/// Due schedules: not paused, due by now, earliest first, limited.
pub async fn check_due_schedules(store: Arc<dyn Store>) {
    let s = &*store;
    let due = |now: i64, limit: usize| async move {
        s.due_schedules(now, limit)
            .await
            .unwrap_or_else(|e| panic!("due_schedules({now}, {limit}): {e}"))
            .into_iter()
            .map(|x| x.name)
            .collect::<Vec<_>>()
    };
    assert!(due(T0, 10).await.is_empty(), "no schedules");
    let plan = [
        ("s1", Some(T0 - 100), false),
        ("s2", Some(T0), false),
        ("s3", Some(T0 + 1), false),
        ("s4-paused", Some(T0 - 500), true),
        ("s5-done", None, false),
        ("s6", Some(T0 - 300), false),
    ];
    let mut by_name = BTreeMap::new();
    for (name, next, paused) in plan {
        let mut x = new_schedule(name, next);
        x.paused = paused;
        s.create_schedule(x.clone()).await.expect("create");
        by_name.insert(name, x);
    }
    assert_eq!(
        due(T0, 10).await,
        vec!["s6", "s1", "s2"],
        "earliest first, due time inclusive"
    );
    assert_eq!(due(T0, 2).await, vec!["s6", "s1"], "limit");
    assert!(due(T0, 0).await.is_empty(), "limit 0");
    assert_eq!(due(T0 - 300, 10).await, vec!["s6"]);
    assert_eq!(due(T0 + 1, 10).await, vec!["s6", "s1", "s2", "s3"]);
    let full = s.due_schedules(T0, 1).await.expect("due");
    assert_eq!(full, vec![by_name["s6"].clone()], "whole records");

    // Pausing and resuming through update.
    let mut s6 = by_name["s6"].clone();
    s6.paused = true;
    s.update_schedule(s6.clone()).await.expect("pause");
    assert_eq!(due(T0, 10).await, vec!["s1", "s2"]);
    let mut s4 = by_name["s4-paused"].clone();
    s4.paused = false;
    s.update_schedule(s4).await.expect("resume");
    assert_eq!(due(T0, 10).await, vec!["s4-paused", "s1", "s2"]);
}

/// Advancing a schedule is a compare-and-set on its due time.
pub async fn check_advance_schedule(store: Arc<dyn Store>) {
    let s = &*store;
    let x = new_schedule("every-minute", Some(T0));
    s.create_schedule(x.clone()).await.expect("create");
    let read = |id: String| async move {
        s.schedule(&id)
            .await
            .expect("schedule")
            .expect("schedule exists")
    };

    assert!(
        s.advance_schedule(&x.id, T0, Some(T0 + 60_000), T0 + 5)
            .await
            .expect("advance"),
        "the due time it holds moves"
    );
    let r = read(x.id.clone()).await;
    assert_eq!(r.next_fire_at_ms, Some(T0 + 60_000));
    assert_eq!(r.last_fired_at_ms, Some(T0));
    assert_eq!(
        (
            &r.name,
            &r.cron,
            &r.timezone,
            &r.payload,
            r.paused,
            r.catch_up,
            r.created_at_ms
        ),
        (
            &x.name,
            &x.cron,
            &x.timezone,
            &x.payload,
            x.paused,
            x.catch_up,
            x.created_at_ms
        ),
        "advance changes only the fire times"
    );

    // Another node that fired the same due time does not move it again.
    assert!(!s
        .advance_schedule(&x.id, T0, Some(T0 + 120_000), T0 + 6)
        .await
        .expect("advance again"));
    let r = read(x.id.clone()).await;
    assert_eq!(r.next_fire_at_ms, Some(T0 + 60_000));
    assert_eq!(r.last_fired_at_ms, Some(T0));
    assert!(!s
        .advance_schedule(&x.id, T0 + 30_000, Some(T0 + 90_000), T0 + 7)
        .await
        .expect("advance from a time it does not hold"));
    assert!(s
        .due_schedules(T0 + 59_999, 10)
        .await
        .expect("due")
        .is_empty());
    assert_eq!(
        s.due_schedules(T0 + 60_000, 10).await.expect("due").len(),
        1
    );

    // Many nodes at once: exactly one moves it.
    let mut handles = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        let id = x.id.clone();
        handles.push(tokio::spawn(async move {
            store
                .advance_schedule(&id, T0 + 60_000, Some(T0 + 120_000), T0 + 60_000 + i)
                .await
                .expect("advance")
        }));
    }
    let mut moved = 0;
    for h in handles {
        if h.await.expect("advance panicked") {
            moved += 1;
        }
    }
    assert_eq!(moved, 1, "exactly one concurrent advance wins");
    assert_eq!(read(x.id.clone()).await.next_fire_at_ms, Some(T0 + 120_000));

    // No next time: the schedule is never due again.
    assert!(s
        .advance_schedule(&x.id, T0 + 120_000, None, T0 + 120_001)
        .await
        .expect("advance to the end"));
    let r = read(x.id.clone()).await;
    assert_eq!(r.next_fire_at_ms, None);
    assert_eq!(r.last_fired_at_ms, Some(T0 + 120_000));
    assert!(s.due_schedules(i64::MAX, 10).await.expect("due").is_empty());
    assert!(!s
        .advance_schedule(&x.id, T0 + 120_000, Some(T0 + 180_000), T0 + 120_002)
        .await
        .expect("advance a finished schedule"));
    assert_eq!(read(x.id.clone()).await.next_fire_at_ms, None);
}

/// Leader leases: taken when free or expired, renewed by the holder, terms
/// count holders, resign frees at once.
pub async fn check_leader_leases(store: Arc<dyn Store>) {
    const TTL: i64 = 10_000;
    const ROLE: &str = "scheduler";
    let s = &*store;
    let lead = |holder: &'static str, now: i64| async move {
        s.try_lead(ROLE, holder, TTL, now)
            .await
            .unwrap_or_else(|e| panic!("try_lead({holder}, {now}): {e}"))
    };
    let leader = || async { s.leader(ROLE).await.expect("leader") };
    assert_eq!(leader().await, None, "nobody leads yet");

    let a1 = lead("node-a", T0).await.expect("a free lease is taken");
    assert_eq!(
        (a1.name.as_str(), a1.holder.as_str(), a1.expires_at_ms),
        (ROLE, "node-a", T0 + TTL)
    );
    assert_eq!(leader().await, Some(a1.clone()));

    // Renewed by its holder: same term, later expiry.
    let a2 = lead("node-a", T0 + 5_000).await.expect("renewed");
    assert_eq!(a2.term, a1.term, "renewal keeps the term");
    assert_eq!(a2.expires_at_ms, T0 + 5_000 + TTL);

    // Refused to another node while valid, up to the last millisecond.
    assert_eq!(lead("node-b", T0 + 5_000).await, None);
    assert_eq!(lead("node-b", a2.expires_at_ms - 1).await, None);
    assert_eq!(leader().await, Some(a2.clone()));

    // Roles are independent.
    let p = s
        .try_lead("pruner", "node-b", TTL, T0 + 5_000)
        .await
        .expect("try_lead")
        .expect("another role is free");
    assert_eq!(p.holder, "node-b");
    assert_eq!(leader().await, Some(a2.clone()));

    // Expired (expires_at <= now): taken over with the next term.
    let b1 = lead("node-b", a2.expires_at_ms).await.expect("taken over");
    assert_eq!(b1.holder, "node-b");
    assert_eq!(b1.term, a2.term + 1, "a new holder gets the next term");
    assert_eq!(b1.expires_at_ms, a2.expires_at_ms + TTL);
    assert_eq!(
        lead("node-a", a2.expires_at_ms).await,
        None,
        "the old leader cannot come back while the new lease is valid"
    );
    assert_eq!(leader().await, Some(b1.clone()));

    // The holder renewing after its own lease ran out, nobody having taken
    // it: the holder did not change, neither does the term.
    let late = b1.expires_at_ms + 500;
    let b2 = lead("node-b", late).await.expect("renewed late");
    assert_eq!(b2.term, b1.term);
    assert_eq!(b2.expires_at_ms, late + TTL);

    // Resigning a lease one does not hold changes nothing.
    s.resign(ROLE, "node-a")
        .await
        .expect("resign by non-holder");
    assert_eq!(leader().await, Some(b2.clone()));
    assert_eq!(lead("node-a", late + 1).await, None);
    s.resign("no-such-role", "node-a")
        .await
        .expect("resign an unknown role");

    // Resigning frees it at once, and the next holder gets the next term.
    s.resign(ROLE, "node-b").await.expect("resign");
    if let Some(l) = leader().await {
        assert!(
            l.expires_at_ms <= late + 1,
            "a resigned lease must be expired: {l:?}"
        );
    }
    let a3 = lead("node-a", late + 1).await.expect("taken after resign");
    assert_eq!(a3.holder, "node-a");
    assert_eq!(a3.term, b2.term + 1);
    assert_eq!(leader().await, Some(a3));

    // Nodes racing for a free role: exactly one wins.
    let mut handles = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let holder = format!("racer-{i}");
            let got = store
                .try_lead("rescuer", &holder, TTL, T0)
                .await
                .expect("try_lead");
            got.map(|l| (holder, l))
        }));
    }
    let mut winners = Vec::new();
    for h in handles {
        if let Some(w) = h.await.expect("try_lead panicked") {
            winners.push(w);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one racer leads: {winners:?}");
    let (holder, lease) = winners.remove(0);
    assert_eq!(lease.holder, holder);
    assert_eq!(s.leader("rescuer").await.expect("leader"), Some(lease));
}

/// `wait_for_work` returns by its timeout.
pub async fn check_wait_for_work(store: Arc<dyn Store>) {
    let s = &*store;
    // Generous: this checks that the wait ends, not how fast.
    let bound = Duration::from_secs(60);
    let short = Duration::from_millis(20);
    let queues = vec!["default".to_owned(), MESSAGE_QUEUE.to_owned()];
    tokio::time::timeout(bound, s.wait_for_work(&queues, short))
        .await
        .expect("wait_for_work on idle queues did not return after its 20 ms timeout");
    put(s, new_task("default")).await;
    tokio::time::timeout(bound, s.wait_for_work(&queues, short))
        .await
        .expect("wait_for_work with work waiting did not return");
    tokio::time::timeout(bound, s.wait_for_work(&[], short))
        .await
        .expect("wait_for_work on no queue did not return after its timeout");
    tokio::time::timeout(bound, s.wait_for_work(&queues, Duration::ZERO))
        .await
        .expect("wait_for_work with a zero timeout did not return");
}

/// Ping answers; after close every call is `Closed`.
pub async fn check_close(store: Arc<dyn Store>) {
    let s = &*store;
    s.ping().await.expect("ping");
    let t = put(s, new_task("default")).await;
    s.close().await.expect("close");
    s.close().await.expect("close twice");
    let closed = |what: &str, r: Result<(), StoreError>| match r {
        Err(StoreError::Closed) => {}
        other => panic!("{what} after close: expected Closed, got {other:?}"),
    };
    closed("ping", s.ping().await);
    closed(
        "enqueue",
        s.enqueue(new_task("default"), T0).await.map(|_| ()),
    );
    closed("task", s.task(t.id()).await.map(|_| ()));
    closed(
        "claim",
        s.claim(claim_req(&["default"], "w", 1), T0)
            .await
            .map(|_| ()),
    );
    closed("counts", s.counts().await.map(|_| ()));
}
