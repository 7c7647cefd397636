//! The conformance suite every backend must pass.
//!
//! A backend implements [`Harness`] (how to make a fresh, empty store) and
//! generates one test per [`Check`] with
//! [`conformance_tests!`](crate::conformance_tests), so that each check
//! passes, fails or skips under its own name; [`run_check`] runs one.
//!
//! This file is the index: the harness, the list of checks, and the
//! fixtures several concerns share. The checks themselves live one file per
//! concern (`enqueue.rs`, `claim.rs`, `lease.rs`, `outcome.rs`, ...; River's
//! `riverdrivertest` is the model), and each entry of the list of checks
//! names the file and function of its check.
//!
//! A backend that lacks a feature answers [`Harness::skip`] with a reason;
//! the suite prints the reason and moves on. It never needs editing to
//! accommodate a backend.
//!
//! Time is fixed: every call passes `now_ms` derived from [`T0`], nothing
//! sleeps. A failed check panics with a message naming what differed, as
//! test assertions do.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use signet_sign::{Algorithm, TaskEnvelope};

use crate::{
    CatchUp, ClaimRequest, DeadReason, LeaseToken, MessageId, NewTask, Page, ScheduleId,
    ScheduleRecord, SignatureRecord, Store, StoreError, TargetId, TargetRecord, TaskId, TaskRow,
    MESSAGE_QUEUE, MESSAGE_TASK_NAME,
};

mod api_keys;
mod callbacks;
mod claim;
mod dead_letters;
mod enqueue;
mod faulty;
mod history;
mod idempotency;
mod leader;
mod lease;
mod lifecycle;
mod limits;
mod listing;
mod messages;
mod named;
mod operator;
mod outcome;
mod pause;
mod prune;
mod push;
mod schedules;
mod targets;
mod wakeups;

pub use faulty::{Fault, FaultyStore};
pub use limits::most_within;
pub use wakeups::{assert_wakes, assert_wakes_from_mark};

/// The fixed "now" of the suite (2023-11-14T22:13:20Z), unix ms.
pub const T0: i64 = 1_700_000_000_000;

/// The actor of the suite's operator acts (cancel, replay, re-sign).
pub const ACTOR: &str = "conformance-suite";

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

    /// Called once a check has passed and its store is closed: releases
    /// what [`fresh`](Harness::fresh) made outside the store (a database
    /// schema, say). A failed check does not call it, which leaves its data
    /// to look at.
    async fn cleanup(&self) {}
}

/// The one list of checks: each entry
/// is `Variant => concern_file::function: "what it checks",`; the function
/// name is the check's name and the name of its test.
///
/// Calls `$callback! { { $($args)* } entries... }`, so that the enum below
/// and [`conformance_tests!`](crate::conformance_tests) expand from the
/// same list.
#[doc(hidden)]
#[macro_export]
macro_rules! __signet_store_checks {
    ($callback:path { $($args:tt)* }) => {
        $callback! {
            { $($args)* }
            RoundTrip => enqueue::round_trip: "Enqueue then read back: envelope, signature and options byte for byte.",
            InvalidInput => enqueue::invalid_input: "Oversize args, bad queue names, bad ids and options are `Invalid` and store nothing.",
            BatchAtomic => enqueue::batch_atomic: "A batch with one bad task stores none of them.",
            Idempotency => enqueue::idempotency: "An idempotency key without a fingerprint returns the first task, across calls and inside a batch.",
            IdempotencyScopes => idempotency::idempotency_scopes: "The same idempotency key in two scopes makes two tasks; each scope gets back its own.",
            IdempotencyKinds => idempotency::idempotency_kinds: "The same idempotency key for a task and a message makes two rows.",
            IdempotencySameRequest => idempotency::idempotency_same_request: "A reused key with the same fingerprint returns the original, across calls and in a batch; system keys never compare.",
            IdempotencyConflict => idempotency::idempotency_conflict: "A reused key with a different fingerprint is a conflict naming the key and fields, and stores nothing.",
            Scheduled => enqueue::scheduled: "A task with `not_before` in the future is not claimable until due.",
            ClaimOrder => claim::claim_order: "Claims take higher priority first, then earlier `run_at`, then id.",
            ClaimLimitAndQueues => claim::claim_limit_and_queues: "Claims respect the limit and the queue filter and set the lease.",
            ConcurrentClaims => claim::concurrent_claims: "Concurrent claimers never get the same task.",
            Heartbeat => lease::heartbeat: "A heartbeat extends the lease.",
            LeaseLost => lease::lease_lost: "A lost lease gives `LeaseLost` on every lease call.",
            Complete => outcome::complete: "Complete stores the result; `complete_batch` settles each entry on its own.",
            FailRetry => outcome::fail_retry: "A retried task is not claimable before its time, and attempts count up.",
            FailDead => outcome::fail_dead: "A dead-lettered task keeps its reason and detail.",
            Release => outcome::release: "Release gives a task back without counting the attempt.",
            ReleaseLater => outcome::release_later: "A release with a later `run_at` leaves the task scheduled, not claimable before then, the attempt not counted.",
            TasksById => outcome::tasks_by_id: "`tasks_by_id` reads the rows of the ids that exist, each once.",
            Cancel => outcome::cancel: "Cancel works before a task runs and is a `Conflict` once running or final.",
            Kill => outcome::kill: "Kill dead-letters a waiting task.",
            PauseSkipsClaims => pause::pause_skips_claims: "A paused queue gives no task to any claim (one queue, several, the message queue); running work finishes; resumed, its tasks are claimed again.",
            PauseIdempotent => pause::pause_idempotent: "Pausing twice keeps the first pause, resuming twice is no error, pauses list by name; bad names, actors and reasons are `Invalid`.",
            RetryNow => operator::retry_now: "Retry now makes a retryable task available at once, attempts kept, with a `retried-now` event; other states are `Conflict`.",
            Resend => operator::resend: "Resend makes a succeeded message available with attempts moved behind and a `resent` event, owing its callback again; tasks and undelivered messages are `Conflict`.",
            ResendKeepsRowAttempt => operator::resend_keeps_row_attempt: "A message whose success is kept on its row (with a delivery's HTTP exchange) keeps that attempt in its history once resent.",
            Rescue => lease::rescue: "Expired leases become retryable, or dead once attempts are used up.",
            ListTasks => listing::list_tasks: "Task listing filters and pages newest first without duplicates or gaps.",
            ListOwnQueue => listing::list_own_queue: "Listings leave Signet's own queue out unless it is named or asked for; asked for, its rows (msg_ ids) follow the tasks, each newest first.",
            ListDead => dead_letters::list_dead: "Dead letters list newest first, filtered and paged.",
            Replay => dead_letters::replay: "Replay resets attempts and keeps the envelope and signature identical.",
            Purge => dead_letters::purge: "Purge deletes dead letters only.",
            Counts => listing::counts: "Counts per queue and state.",
            Activity => listing::activity: "Activity counts succeeded and failed attempts per queue and bucket and signature refusals per outcome, inside the window only.",
            PendingByKey => listing::pending_by_key: "Pending tasks per signing key, final tasks excluded.",
            Prune => prune::prune: "Prune deletes only old succeeded and cancelled tasks, never dead letters.",
            ApiKeys => api_keys::api_keys: "API keys: create, look up by hash, list, revoke.",
            EndedSessions => api_keys::ended_sessions: "Signed-out console sessions: recorded once, kept until their expiry, then pruned.",
            Messages => messages::messages: "Messages are task rows with `msg_` ids on the message queue.",
            HistoryAttempts => history::history_attempts: "Every attempt that ends (complete, batch, retry, dead, rescue) is in the history with its number, worker, start and outcome; a release is not.",
            HistoryReplay => history::history_replay: "A replay keeps the earlier attempts, records itself, and later attempts get higher numbers; nothing earlier is rewritten.",
            HistoryDelivery => history::history_delivery: "A settled delivery is one attempt event with its HTTP exchange; a lost lease or invalid exchange records nothing.",
            HistoryDeliveryBatch => history::history_delivery_batch: "`settle_deliveries` settles each entry on its own: delivered, retry and dead with their events; a lost lease, an invalid exchange or a message named twice fails only that entry.",
            HistoryOperatorActs => history::history_operator_acts: "Cancel and kill are events in order; an empty actor is refused.",
            HistoryDeleted => history::history_deleted: "Prune and purge delete the history of the tasks they delete, and only theirs.",
            ResignDead => history::resign_dead: "Re-signing replaces a dead letter's signature only, records old and new key ids, and refuses other states.",
            PendingCallbacks => callbacks::pending_callbacks: "Finished tasks with a callback URL owe a callback until marked sent; a replay owes a new one.",
            PruneKeepsOwedCallbacks => prune::prune_keeps_owed_callbacks: "Prune never deletes a task whose callback is still owed.",
            Targets => targets::targets: "Targets: create, read by id and name, list by name, update, delete; names are unique.",
            TargetSecretsSwap => targets::target_secrets_swap: "Targets page by id without gaps or repeats; swapping sealed secrets is a compare-and-swap on the bytes read, changing nothing else.",
            PendingMessagesForTarget => targets::pending_messages_for_target: "Messages not finished that name a target are counted for it; finished ones, other targets and other queues are not.",
            PushBindings => push::push_bindings: "Push bindings: bind, read, list by queue, rebind keeps the creation time, unbind; invalid bindings are refused and store nothing.",
            Schedules => schedules::schedules: "Schedules: create, read by id and name, list by name, update, delete; names are unique.",
            DueSchedules => schedules::due_schedules: "Due schedules: not paused, due by now, earliest first, limited.",
            AdvanceSchedule => schedules::advance_schedule: "Advancing a schedule is a compare-and-set on its due time.",
            RateTake => limits::rate_take: "Rate buckets hand out send times one interval apart from now, before the horizon only, never twice (also to concurrent takers), with no credit for idle time.",
            SlotLeases => limits::slot_leases: "Concurrency slots: lowest free below the limit, freed by release or expiry, renewed and released only by their holder, never shared, gone with their target.",
            StoreClock => limits::store_clock: "A store with a clock of its own tells its time, within a second of this machine's (a test machine's clocks agree); a store on this machine has none.",
            LeaderLeases => leader::leader_leases: "Leader leases: taken when free or expired, renewed by the holder, terms count holders, resign frees at once.",
            WaitForWork => wakeups::wait_for_work: "`wait_for_work` returns by its timeout.",
            Close => lifecycle::close: "Ping answers; after close every call is `Closed`.",
            CheckWritable => lifecycle::check_writable: "`check_writable` passes on a writable store, repeatably, and leaves no row behind.",
        }
    };
}

macro_rules! define_checks {
    ({} $($variant:ident => $module:ident :: $func:ident : $doc:literal,)*) => {
        /// One conformance check.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Check {
            $(#[doc = $doc] $variant,)*
        }

        impl Check {
            /// Every check, in the order they are listed.
            pub const ALL: &'static [Check] = &[$(Check::$variant,)*];

            /// The check's name, which is also the name of its test.
            pub fn name(self) -> &'static str {
                match self {
                    $(Check::$variant => stringify!($func),)*
                }
            }

            /// Runs the check on `store`, which must be fresh and empty.
            pub async fn run(self, store: Arc<dyn Store>) {
                match self {
                    $(Check::$variant => $module::$func(store).await,)*
                }
            }
        }
    };
}

crate::__signet_store_checks!(define_checks {});

/// Generates one `#[tokio::test]` per [`Check`], named after the check,
/// in a module `$name`: `conformance_tests!(memory, MemoryHarness)` gives
/// tests such as `memory::claim_order`, so `cargo test` lists and reports
/// every check by name and a failure hides no other check.
///
/// Each test evaluates `$harness` (an expression of a type implementing
/// [`Harness`](crate::testkit::Harness); it may `.await`, and names items of
/// the module the macro is called in) and hands it to
/// [`run_check`](crate::testkit::run_check): a fresh store per check, and a
/// skip printed with its reason. The tests run on tokio's multi-thread
/// runtime with two workers, as the concurrent checks need; the calling
/// crate must depend on `tokio` (features `macros`, `rt-multi-thread`).
///
/// ```no_run
/// use std::sync::Arc;
/// use signet_store::testkit::Harness;
/// use signet_store::Store;
///
/// struct MyHarness;
///
/// #[async_trait::async_trait]
/// impl Harness for MyHarness {
///     async fn fresh(&self) -> Arc<dyn Store> {
///         unimplemented!("open a new, empty store of the backend")
///     }
/// }
///
/// signet_store::conformance_tests!(my_backend, MyHarness);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($name:ident, $harness:expr $(,)?) => {
        $crate::__signet_store_checks!($crate::__conformance_tests { $name, $harness });
    };
}

/// The body of [`conformance_tests!`](crate::conformance_tests), called
/// with the list of checks.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ({ $name:ident, $harness:expr } $($variant:ident => $module:ident :: $func:ident : $doc:literal,)*) => {
        mod $name {
            // The harness expression may name items of the calling module.
            #[allow(unused_imports)]
            use super::*;
            $(
                #[doc = $doc]
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $func() {
                    $crate::testkit::run_check(&$harness, $crate::testkit::Check::$variant).await;
                }
            )*
        }
    };
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Runs `check` on a fresh store from `harness`, or prints why the harness
/// skips it. Panics when the check fails; once it passed, closes the store
/// and calls [`Harness::cleanup`].
pub async fn run_check(harness: &dyn Harness, check: Check) {
    if let Some(reason) = harness.skip(check) {
        println!("signet-store conformance: SKIP {check}: {reason}");
        return;
    }
    let store = harness.fresh().await;
    check.run(store.clone()).await;
    // Best effort: the check may have closed it already (`close`).
    let _ = store.close().await;
    harness.cleanup().await;
}

// ---------------------------------------------------------------------------
// Fixtures several concerns share

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
        idempotency_scope: crate::IdempotencyScope::Local,
        fingerprint: crate::Fingerprint::new(),
    }
}

/// `task` with a signature record of the right length for `alg` (the bytes
/// are not a real signature: stores never verify).
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

/// A claim of up to `limit` tasks on `queues` by `worker`, leased for
/// [`LEASE_MS`].
pub fn claim_req(queues: &[&str], worker: &str, limit: usize) -> ClaimRequest {
    ClaimRequest {
        queues: queues.iter().map(|q| (*q).to_owned()).collect(),
        worker_id: worker.to_owned(),
        limit,
        lease_ms: LEASE_MS,
    }
}

/// Enqueues `task` at [`T0`]; panics unless the store created it.
pub async fn put(store: &dyn Store, task: NewTask) -> TaskRow {
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

/// Claims the one task due on `queue` at `now` for `worker` (see
/// [`claim_req`]); panics unless exactly one is claimed.
pub async fn claim_one(store: &dyn Store, queue: &str, worker: &str, now: i64) -> TaskRow {
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

/// Every row of a listing, following `next_cursor` from the first page to
/// the last: `list` reads the page at a cursor (`None`: the first). Each
/// page holds at most `limit` rows.
async fn all_pages<F, Fut>(limit: usize, mut list: F) -> Vec<TaskRow>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Page<TaskRow>>,
{
    let mut rows = Vec::new();
    let mut cursor = None;
    for _ in 0..100 {
        let page = list(cursor.take()).await;
        assert!(page.items.len() <= limit.max(1), "a page over its limit");
        rows.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return rows,
        }
    }
    panic!("pagination does not end");
}

/// Enqueues a task on `queue` (signed with HMAC key `signed_with` if any)
/// and dead-letters it at `at` with `reason`.
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
