//! Metric names and recording, with the `metrics` crate.
//!
//! Install a recorder with [`install_prometheus_recorder`](crate::metrics::install_prometheus_recorder) (what
//! `signet serve` and the example worker do; it describes every series, so
//! `/metrics` has `# HELP` and `# TYPE` for each) and these appear:
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `signet_tasks_enqueued_total` | counter | `queue`, `task` |
//! | `signet_tasks_succeeded_total` | counter | `queue`, `task` |
//! | `signet_tasks_failed_total` | counter (every failed attempt) | `queue`, `task` |
//! | `signet_tasks_retried_total` | counter (failed attempts scheduled again) | `queue`, `task` |
//! | `signet_tasks_dead_total` | counter | `queue`, `task`, `reason` |
//! | `signet_signature_invalid_total` | counter | `reason` |
//! | `signet_task_run_duration_seconds` | histogram | `queue`, `task` |
//! | `signet_queue_depth` | gauge | `queue`, `state` |
//! | `signet_messages_delivered_total` | counter | `target` |
//! | `signet_message_attempts_failed_total` | counter (every failed delivery attempt) | `target` |
//! | `signet_messages_dead_total` | counter | `target`, `reason` |
//! | `signet_delivery_duration_seconds` | histogram (request to end of response) | `target` |
//! | `signet_schedules_{fired,skipped,failed}_total` | counter | `schedule` |
//!
//! Their `# HELP` texts are [`SERIES`](crate::metrics::SERIES), the one list [`describe`](crate::metrics::describe) hands to
//! the recorder.
//!
//! The `target` label is `none` for messages signed with the server's key
//! ring; for a target it is `_hidden` unless target names are turned on
//! ([`MetricLabels::target_names`]), then the target's name, or its id
//! when the name is unknown (the target was deleted).
//!
//! Labels that come from what users name (queues, tasks, schedules,
//! targets) are bounded here, in one place ([`MetricLabels`]): each keeps
//! the first [`MetricLabels::max_values`] distinct values it sees and
//! records the rest as [`OTHER_LABEL`](crate::metrics::OTHER_LABEL). A task name is kept per queue (the
//! pair counts against the cap), so a metric labelled by queue and task has
//! at most `2 × max_values + 1` series whatever names arrive. Unbounded,
//! 20 000 distinct names took an unauthenticated `/metrics` from 1 KB to
//! 27 MB and the process from 30 MB to 127 MB for good.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, OnceLock, RwLock};
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use signet_store::{DeadReason, Store, StoreError, TaskState};

use crate::clock::{Clock, SystemClock};
use crate::periodic::run_every;
use crate::schedules::{SCHEDULES_FAILED, SCHEDULES_FIRED, SCHEDULES_SKIPPED};
use crate::shutdown::ShutdownSignal;

/// Tasks enqueued (new tasks only; idempotent repeats are not counted).
pub const TASKS_ENQUEUED: &str = "signet_tasks_enqueued_total";
/// Tasks whose handler succeeded.
pub const TASKS_SUCCEEDED: &str = "signet_tasks_succeeded_total";
/// Failed attempts (handler error, timeout or panic).
pub const TASKS_FAILED: &str = "signet_tasks_failed_total";
/// Failed attempts that were scheduled to run again.
pub const TASKS_RETRIED: &str = "signet_tasks_retried_total";
/// Tasks dead-lettered, by reason.
pub const TASKS_DEAD: &str = "signet_tasks_dead_total";
/// Deliveries refused because the signature did not verify, by reason.
pub const SIGNATURE_INVALID: &str = "signet_signature_invalid_total";
/// How long handlers ran.
pub const TASK_RUN_DURATION: &str = "signet_task_run_duration_seconds";
/// Tasks per queue and state, sampled on scrape and periodically.
pub const QUEUE_DEPTH: &str = "signet_queue_depth";

/// Messages delivered (a 2xx answer).
pub const MESSAGES_DELIVERED: &str = "signet_messages_delivered_total";
/// Delivery attempts that failed (no answer, or not 2xx).
pub const MESSAGE_ATTEMPTS_FAILED: &str = "signet_message_attempts_failed_total";
/// Messages dead-lettered, by reason.
pub const MESSAGES_DEAD: &str = "signet_messages_dead_total";
/// How long delivery requests took.
pub const DELIVERY_DURATION: &str = "signet_delivery_duration_seconds";
/// Push attempts whose answer had to be signed and was not (missing, wrong
/// or stale signature), by queue.
pub const PUSH_RESPONSE_SIGNATURE_INVALID: &str = "signet_push_response_signature_invalid_total";

/// Default time between two queue-depth samples.
pub const DEFAULT_DEPTH_INTERVAL: Duration = Duration::from_secs(15);
/// How old a queue-depth sample may be when `/metrics` is scraped: older,
/// the scrape samples again. Counting is one grouped count over the tasks
/// table (about half a second on a million SQLite rows), so however many
/// scrapers there are, a store counts at most once a second for them.
pub const DEPTH_MAX_AGE: Duration = Duration::from_secs(1);

/// What kind of series a metric is (its `# TYPE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Set to the current value.
    Gauge,
    /// A distribution (Prometheus renders a summary).
    Histogram,
}

/// One series: its name, its kind and what `# HELP` says of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Series {
    /// The metric name.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// The `# HELP` text.
    pub help: &'static str,
}

impl Series {
    const fn new(name: &'static str, kind: Kind, help: &'static str) -> Self {
        Self { name, kind, help }
    }
}

/// Every series the runtime records, described once, here.
pub const SERIES: &[Series] = &[
    Series::new(
        TASKS_ENQUEUED,
        Kind::Counter,
        "Tasks enqueued (new tasks only; idempotent repeats are not counted).",
    ),
    Series::new(
        TASKS_SUCCEEDED,
        Kind::Counter,
        "Tasks whose handler succeeded.",
    ),
    Series::new(
        TASKS_FAILED,
        Kind::Counter,
        "Failed task attempts (handler error, timeout or panic).",
    ),
    Series::new(
        TASKS_RETRIED,
        Kind::Counter,
        "Failed task attempts that were scheduled to run again.",
    ),
    Series::new(TASKS_DEAD, Kind::Counter, "Tasks dead-lettered, by reason."),
    Series::new(
        SIGNATURE_INVALID,
        Kind::Counter,
        "Tasks and messages refused because their signature did not verify, by reason.",
    ),
    Series::new(
        TASK_RUN_DURATION,
        Kind::Histogram,
        "How long task handlers ran, in seconds.",
    ),
    Series::new(
        QUEUE_DEPTH,
        Kind::Gauge,
        "Tasks per queue and state (messages are the signet:messages queue).",
    ),
    Series::new(
        MESSAGES_DELIVERED,
        Kind::Counter,
        "Messages delivered (a 2xx answer), by target.",
    ),
    Series::new(
        MESSAGE_ATTEMPTS_FAILED,
        Kind::Counter,
        "Delivery attempts that failed (no answer, or not 2xx), by target.",
    ),
    Series::new(
        MESSAGES_DEAD,
        Kind::Counter,
        "Messages dead-lettered, by target and reason.",
    ),
    Series::new(
        DELIVERY_DURATION,
        Kind::Histogram,
        "How long delivery requests took, request to end of response, in seconds.",
    ),
    Series::new(
        PUSH_RESPONSE_SIGNATURE_INVALID,
        Kind::Counter,
        "Push attempts failed because the binding requires signed answers and the answer's signature was missing, wrong or stale, by queue.",
    ),
    Series::new(
        SCHEDULES_FIRED,
        Kind::Counter,
        "Schedule due times fired (a task or message enqueued), by schedule.",
    ),
    Series::new(
        SCHEDULES_SKIPPED,
        Kind::Counter,
        "Scheduler passes that skipped missed due times (catch_up: skip), by schedule.",
    ),
    Series::new(
        SCHEDULES_FAILED,
        Kind::Counter,
        "Schedule due times that could not be fired, by schedule.",
    ),
];

/// Gives the current recorder each series' kind and help text (the
/// `# HELP` lines of `/metrics`). Describing a series again replaces its
/// text.
pub fn describe(series: &[Series]) {
    for s in series {
        match s.kind {
            Kind::Counter => metrics::describe_counter!(s.name, s.help),
            Kind::Gauge => metrics::describe_gauge!(s.name, s.help),
            Kind::Histogram => metrics::describe_histogram!(s.name, s.help),
        }
    }
}

/// The process-wide Prometheus recorder, with every runtime series
/// described ([`SERIES`]): installed on the first call, the same handle
/// afterwards. `signet serve` and the example worker both use it, so their
/// `/metrics` have the same series names. Fails only if another recorder
/// was installed first.
pub fn install_prometheus_recorder() -> Result<PrometheusHandle, String> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .install_recorder()
                .map_err(|e| format!("could not install the metrics recorder: {e}"))?;
            describe(SERIES);
            Ok(handle)
        })
        .clone()
}

/// A Prometheus handle whose recorder is not installed globally (tests
/// that need a handle but no metrics).
pub fn detached_prometheus_handle() -> PrometheusHandle {
    PrometheusBuilder::new().build_recorder().handle()
}

/// What a scrape of `/metrics` answers: the queue depth sampled again when
/// older than [`DEPTH_MAX_AGE`], then the recorder's text. A store that
/// cannot be counted is logged and the last sample served.
pub async fn render_prometheus(handle: &PrometheusHandle, depth: &QueueDepth) -> String {
    if let Err(e) = depth.refresh(DEPTH_MAX_AGE).await {
        tracing::warn!(error = %e, "could not count the queues for /metrics; serving the last sample");
    }
    handle.render()
}

/// The label value that stands for every value past a label's cap.
pub const OTHER_LABEL: &str = "_other";
/// The `target` label of a message signed by a target while target names
/// are not shown.
pub const HIDDEN_TARGET_LABEL: &str = "_hidden";
/// The `target` label of messages signed with the server's key ring.
pub const NO_TARGET_LABEL: &str = "none";
/// Default distinct values kept per user-named label.
pub const DEFAULT_MAX_LABEL_VALUES: usize = 100;

/// How labels that come from user input are bounded. Process-wide, like
/// the metrics recorder: set it once at start with [`set_metric_labels`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricLabels {
    /// Distinct values kept per label: queues; (queue, task) pairs;
    /// schedules; targets. The first seen are kept, later ones are
    /// recorded as [`OTHER_LABEL`]. Default [`DEFAULT_MAX_LABEL_VALUES`].
    pub max_values: usize,
    /// Whether a message's `target` label is its target's name (capped
    /// like the others). Off by default: target names can say who a
    /// deployment's customers are, and `/metrics` may be public; then a
    /// target reads [`HIDDEN_TARGET_LABEL`].
    pub target_names: bool,
}

impl Default for MetricLabels {
    fn default() -> Self {
        Self {
            max_values: DEFAULT_MAX_LABEL_VALUES,
            target_names: false,
        }
    }
}

/// Sets how this process bounds metric labels (see [`MetricLabels`]).
/// Values already kept stay kept; a lower cap only stops new ones.
pub fn set_metric_labels(labels: MetricLabels) {
    LABELS.max.store(labels.max_values, Ordering::Relaxed);
    LABELS
        .target_names
        .store(labels.target_names, Ordering::Relaxed);
}

/// The distinct values one label has kept.
#[derive(Default)]
struct Kept(RwLock<HashSet<String>>);

impl Kept {
    /// `value` if it is kept or there is room to keep it, else `_other`.
    fn label(&self, value: &str, max: usize) -> String {
        // A poisoned lock only means another thread panicked mid-insert;
        // the set is still a valid set.
        let known = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(value);
        if known {
            return value.to_owned();
        }
        let mut kept = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.contains(value) || kept.len() < max {
            kept.insert(value.to_owned());
            value.to_owned()
        } else {
            OTHER_LABEL.to_owned()
        }
    }
}

/// The bounded labels of a process (one instance, [`LABELS`]; tests make
/// their own).
struct Labels {
    max: AtomicUsize,
    target_names: AtomicBool,
    queues: Kept,
    /// `queue label` NUL `task`: a task name is kept per queue.
    tasks: Kept,
    schedules: Kept,
    targets: Kept,
}

impl Labels {
    fn new(policy: MetricLabels) -> Self {
        Self {
            max: AtomicUsize::new(policy.max_values),
            target_names: AtomicBool::new(policy.target_names),
            queues: Kept::default(),
            tasks: Kept::default(),
            schedules: Kept::default(),
            targets: Kept::default(),
        }
    }

    fn max(&self) -> usize {
        self.max.load(Ordering::Relaxed)
    }

    fn queue(&self, queue: &str) -> String {
        self.queues.label(queue, self.max())
    }

    /// The `queue` and `task` labels of a task.
    fn queue_task(&self, queue: &str, task: &str) -> (String, String) {
        let queue = self.queue(queue);
        let pair = format!("{queue}\0{task}");
        let task = if self.tasks.label(&pair, self.max()) == pair {
            task.to_owned()
        } else {
            OTHER_LABEL.to_owned()
        };
        (queue, task)
    }

    fn schedule(&self, name: &str) -> String {
        self.schedules.label(name, self.max())
    }

    /// The `target` label of a message: `none` when the key ring signed
    /// it, else its target's name, or the target's id when the name is
    /// unknown (the target was deleted); `_hidden` while names are off.
    fn target(&self, signer: Signer<'_>) -> String {
        match signer {
            Signer::KeyRing => NO_TARGET_LABEL.to_owned(),
            Signer::Target { .. } if !self.target_names.load(Ordering::Relaxed) => {
                HIDDEN_TARGET_LABEL.to_owned()
            }
            Signer::Target { id, name } => self.targets.label(name.unwrap_or(id), self.max()),
        }
    }
}

/// Who signs a message, as far as the dispatcher knows: for its `target`
/// label ([`target_label`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signer<'a> {
    /// The server's key ring (no target).
    KeyRing,
    /// A target: its id, and its name when the target still exists.
    Target { id: &'a str, name: Option<&'a str> },
}

impl<'a> Signer<'a> {
    /// The target `target_id` names (with its `name` when it exists), or
    /// the key ring when the message names no target.
    pub(crate) fn of(target_id: Option<&'a str>, name: Option<&'a str>) -> Self {
        match target_id {
            None => Self::KeyRing,
            Some(id) => Self::Target { id, name },
        }
    }
}

/// The process's bounded labels.
static LABELS: LazyLock<Labels> = LazyLock::new(|| Labels::new(MetricLabels::default()));

/// The `target` label of a message: see [`MetricLabels::target_names`].
pub(crate) fn target_label(signer: Signer<'_>) -> String {
    LABELS.target(signer)
}

pub(crate) fn enqueued(queue: &str, task: &str, n: u64) {
    let (queue, task) = LABELS.queue_task(queue, task);
    metrics::counter!(TASKS_ENQUEUED, "queue" => queue, "task" => task).increment(n);
}

pub(crate) fn succeeded(queue: &str, task: &str, n: u64) {
    let (queue, task) = LABELS.queue_task(queue, task);
    metrics::counter!(TASKS_SUCCEEDED, "queue" => queue, "task" => task).increment(n);
}

pub(crate) fn failed(queue: &str, task: &str) {
    let (queue, task) = LABELS.queue_task(queue, task);
    metrics::counter!(TASKS_FAILED, "queue" => queue, "task" => task).increment(1);
}

pub(crate) fn retried(queue: &str, task: &str) {
    let (queue, task) = LABELS.queue_task(queue, task);
    metrics::counter!(TASKS_RETRIED, "queue" => queue, "task" => task).increment(1);
}

pub(crate) fn dead(queue: &str, task: &str, reason: DeadReason) {
    let (queue, task) = LABELS.queue_task(queue, task);
    metrics::counter!(
        TASKS_DEAD,
        "queue" => queue,
        "task" => task,
        "reason" => reason.as_str()
    )
    .increment(1);
}

/// Counts one event of a schedule (`signet_schedules_*_total`), labelled by
/// its name within the cap.
pub(crate) fn schedule_event(metric: &'static str, schedule: &str) {
    metrics::counter!(metric, "schedule" => LABELS.schedule(schedule)).increment(1);
}

pub(crate) fn signature_invalid(reason: &'static str) {
    metrics::counter!(SIGNATURE_INVALID, "reason" => reason).increment(1);
}

pub(crate) fn run_duration(queue: &str, task: &str, d: Duration) {
    let (queue, task) = LABELS.queue_task(queue, task);
    metrics::histogram!(TASK_RUN_DURATION, "queue" => queue, "task" => task)
        .record(d.as_secs_f64());
}

pub(crate) fn delivered(target: &str) {
    metrics::counter!(MESSAGES_DELIVERED, "target" => target.to_owned()).increment(1);
}

pub(crate) fn delivery_failed(target: &str) {
    metrics::counter!(MESSAGE_ATTEMPTS_FAILED, "target" => target.to_owned()).increment(1);
}

pub(crate) fn message_dead(target: &str, reason: DeadReason) {
    metrics::counter!(MESSAGES_DEAD, "target" => target.to_owned(), "reason" => reason.as_str())
        .increment(1);
}

pub(crate) fn push_response_signature_invalid(queue: &str) {
    let queue = LABELS.queue(queue);
    metrics::counter!(PUSH_RESPONSE_SIGNATURE_INVALID, "queue" => queue).increment(1);
}

pub(crate) fn delivery_duration(target: &str, d: Duration) {
    metrics::histogram!(DELIVERY_DURATION, "target" => target.to_owned()).record(d.as_secs_f64());
}

/// The `signet_queue_depth{queue,state}` gauge of one store, sampled on
/// demand. Clones share one sample: callers that ask at the same moment
/// wait for one count of the store, so at most one is ever in flight.
#[derive(Clone)]
pub struct QueueDepth(Arc<DepthInner>);

struct DepthInner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// When the last sample was taken (unix ms); held while sampling.
    sampled_at_ms: tokio::sync::Mutex<Option<i64>>,
}

impl QueueDepth {
    /// The depth of `store`, with sample ages read from `clock`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self(Arc::new(DepthInner {
            store,
            clock,
            sampled_at_ms: tokio::sync::Mutex::new(None),
        }))
    }

    /// Samples unless the last sample is younger than `max_age`, or a
    /// count is already running (another scrape, the reporter: then the
    /// last sample is served rather than waiting on the store); says
    /// whether it sampled.
    pub async fn refresh(&self, max_age: Duration) -> Result<bool, StoreError> {
        let Ok(mut sampled_at) = self.0.sampled_at_ms.try_lock() else {
            return Ok(false);
        };
        let now = self.0.clock.now_ms();
        let max_age_ms = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
        // A clock that went back counts as old: sample.
        if sampled_at.is_some_and(|at| (0..max_age_ms).contains(&now.saturating_sub(at))) {
            return Ok(false);
        }
        self.count().await?;
        *sampled_at = Some(now);
        Ok(true)
    }

    /// Samples now: sets the gauge for every queue and every state (0 for
    /// states with no tasks, so drained queues read 0 rather than stale).
    /// Queues past the label cap are summed under [`OTHER_LABEL`].
    pub async fn sample(&self) -> Result<(), StoreError> {
        let mut sampled_at = self.0.sampled_at_ms.lock().await;
        let now = self.0.clock.now_ms();
        self.count().await?;
        *sampled_at = Some(now);
        Ok(())
    }

    async fn count(&self) -> Result<(), StoreError> {
        let mut depths: std::collections::BTreeMap<String, Vec<u64>> =
            std::collections::BTreeMap::new();
        for q in self.0.store.counts().await? {
            let row = depths
                .entry(LABELS.queue(&q.queue))
                .or_insert_with(|| vec![0; TaskState::ALL.len()]);
            for (i, state) in TaskState::ALL.into_iter().enumerate() {
                row[i] = row[i].saturating_add(q.count(state));
            }
        }
        for (queue, row) in depths {
            for (i, state) in TaskState::ALL.into_iter().enumerate() {
                #[allow(clippy::cast_precision_loss)] // counts far below 2^52
                let n = row[i] as f64;
                metrics::gauge!(QUEUE_DEPTH, "queue" => queue.clone(), "state" => state.as_str())
                    .set(n);
            }
        }
        Ok(())
    }
}

/// Samples the queue depth every interval until shut down, for recorders
/// nobody scrapes; a sample a scrape took within the interval counts (see
/// [`QueueDepth`]).
pub struct QueueDepthReporter {
    depth: QueueDepth,
    interval: Duration,
}

impl QueueDepthReporter {
    /// A reporter sampling `store` every [`DEFAULT_DEPTH_INTERVAL`].
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self::shared(QueueDepth::new(store, Arc::new(SystemClock)))
    }

    /// A reporter sharing its samples with `depth` (the one `/metrics`
    /// refreshes), so neither counts when the other just did.
    pub fn shared(depth: QueueDepth) -> Self {
        Self {
            depth,
            interval: DEFAULT_DEPTH_INTERVAL,
        }
    }

    /// Changes the sampling interval.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Samples once (see [`QueueDepth::sample`]).
    pub async fn sample(&self) -> Result<(), StoreError> {
        self.depth.sample().await
    }

    /// Samples every interval until `shutdown` fires. Store errors are logged
    /// and the next sample is tried on time.
    pub async fn run(self, shutdown: ShutdownSignal) {
        let interval = self.interval;
        run_every("queue-depth", interval, shutdown, || {
            self.depth.refresh(interval)
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_util::debugging::DebuggingRecorder;

    #[test]
    fn each_label_keeps_the_first_values_and_folds_the_rest_into_other() {
        let labels = Labels::new(MetricLabels {
            max_values: 3,
            target_names: true,
        });
        let queues: Vec<String> = (0..10).map(|i| labels.queue(&format!("q{i}"))).collect();
        assert_eq!(queues[..3], ["q0", "q1", "q2"]);
        assert!(queues[3..].iter().all(|q| q == OTHER_LABEL));
        // A kept value stays kept.
        assert_eq!(labels.queue("q1"), "q1");
        // Task names are kept per queue: three pairs, then `_other`.
        assert_eq!(labels.queue_task("q0", "a"), ("q0".into(), "a".into()));
        assert_eq!(labels.queue_task("q1", "a"), ("q1".into(), "a".into()));
        assert_eq!(labels.queue_task("q2", "b"), ("q2".into(), "b".into()));
        assert_eq!(
            labels.queue_task("q2", "c"),
            ("q2".into(), OTHER_LABEL.into())
        );
        assert_eq!(
            labels.queue_task("zz", "a"),
            (OTHER_LABEL.into(), OTHER_LABEL.into())
        );
        let t1 = Signer::Target {
            id: "tgt_1",
            name: Some("t1"),
        };
        assert_eq!(labels.target(t1), "t1");
        assert_eq!(labels.target(Signer::KeyRing), NO_TARGET_LABEL);
    }

    #[test]
    fn target_names_are_hidden_unless_turned_on() {
        let labels = Labels::new(MetricLabels::default());
        let acme = Signer::Target {
            id: "tgt_1",
            name: Some("acme-corp"),
        };
        let deleted = Signer::Target {
            id: "tgt_2",
            name: None,
        };
        assert_eq!(labels.target(acme), HIDDEN_TARGET_LABEL);
        assert_eq!(labels.target(deleted), HIDDEN_TARGET_LABEL);
        assert_eq!(labels.target(Signer::KeyRing), NO_TARGET_LABEL);
        labels.target_names.store(true, Ordering::Relaxed);
        assert_eq!(labels.target(acme), "acme-corp");
        // A deleted target's name is gone: counted under its id, not `none`.
        assert_eq!(labels.target(deleted), "tgt_2");
    }

    /// Each series is described once, and the deployment guide lists it.
    #[test]
    fn every_series_is_described_once_and_documented() {
        let deploy = include_str!("../../../docs/deploy.md");
        let mut names = HashSet::new();
        for s in SERIES {
            assert!(names.insert(s.name), "{} is described twice", s.name);
            assert!(!s.help.is_empty(), "{} has no help", s.name);
            assert!(
                deploy.contains(&format!("`{}`", s.name)),
                "docs/deploy.md does not list {}",
                s.name
            );
        }
    }

    /// The red-team case: 20 000 distinct queue and task names, each
    /// recorded by every task metric, stay within the cap.
    #[test]
    fn twenty_thousand_names_make_a_bounded_number_of_series() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            for i in 0..20_000 {
                let (queue, task) = (format!("flood-q-{i}"), format!("flood-t-{i}"));
                enqueued(&queue, &task, 1);
                failed(&queue, &task);
                dead(&queue, &task, DeadReason::MaxAttempts);
                run_duration(&queue, &task, Duration::from_millis(1));
                schedule_event("signet_test_schedule_events_total", &queue);
            }
        });
        let snapshot = snapshotter.snapshot().into_vec();
        // Queues: at most the cap plus `_other`; (queue, task) pairs: the
        // cap plus one `_other` task per queue label.
        let bound = DEFAULT_MAX_LABEL_VALUES + (DEFAULT_MAX_LABEL_VALUES + 1);
        for name in [TASKS_ENQUEUED, TASKS_FAILED, TASKS_DEAD, TASK_RUN_DURATION] {
            let series = snapshot
                .iter()
                .filter(|(key, ..)| key.key().name() == name)
                .count();
            assert!(series > 1 && series <= bound, "{name}: {series} series");
        }
        let schedules = snapshot
            .iter()
            .filter(|(key, ..)| key.key().name() == "signet_test_schedule_events_total")
            .count();
        assert!(schedules <= DEFAULT_MAX_LABEL_VALUES + 1, "{schedules}");
        assert!(snapshot
            .iter()
            .any(|(key, ..)| key.key().labels().any(|l| l.value() == OTHER_LABEL)));
    }
}
