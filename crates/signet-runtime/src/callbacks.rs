//! Callbacks: when a task or message with a `callback_url` finishes
//! (succeeded, or dead), Signet POSTs what happened to that URL as a signed
//! message, with the same retries and dead letters as any message.
//!
//! The body:
//!
//! ```json
//! {"id":"task_…","kind":"task","status":"succeeded","attempts":1,
//!  "result":{…},"created_at":"2030-01-02T03:04:05.000Z","finished_at":"…"}
//! {"id":"msg_…","kind":"message","status":"dead","attempts":8,
//!  "error":{"reason":"max-attempts","detail":"…"},"created_at":"…","finished_at":"…"}
//! ```
//!
//! The [`CallbackService`] takes what [`Store::pending_callbacks`] owes,
//! enqueues one message per finished task with the idempotency key
//! `callback:<id>:<finished_at_ms>` (so a crash between enqueue and marking
//! never sends twice, while a task replayed and finished again gets a new
//! callback), then marks them sent. Callback messages have no callback of
//! their own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::value::RawValue;
use signet_store::{IdempotencyScope, Store, TaskRow, TaskState, MESSAGE_QUEUE};

use crate::clock::{Clock, SystemClock};
use crate::error::RuntimeError;
use crate::message::{MessageProducer, MessageSpec, PublishOptions};
use crate::periodic::run_every;
use crate::shutdown::ShutdownSignal;

/// Default time between two passes.
pub const DEFAULT_CALLBACK_INTERVAL: Duration = Duration::from_secs(1);
/// Default most callbacks handed off per store call.
pub const DEFAULT_CALLBACK_BATCH: usize = 200;

/// Turns finished tasks and messages into callback messages.
pub struct CallbackService {
    store: Arc<dyn Store>,
    messages: MessageProducer,
    clock: Arc<dyn Clock>,
    interval: Duration,
    batch: usize,
    warned_unsigned: AtomicBool,
}

impl CallbackService {
    /// Callbacks for tasks on `store`, published with `messages` (whose key
    /// ring signs them).
    pub fn new(store: Arc<dyn Store>, messages: MessageProducer) -> Self {
        Self {
            store,
            messages,
            clock: Arc::new(SystemClock),
            interval: DEFAULT_CALLBACK_INTERVAL,
            batch: DEFAULT_CALLBACK_BATCH,
            warned_unsigned: AtomicBool::new(false),
        }
    }

    /// Time between passes.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Most callbacks per store call (a pass repeats calls until fewer come
    /// back).
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// The clock (tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// One pass: hands off every callback owed. Returns how many callback
    /// messages were enqueued (a repeat of an earlier hand-off counts too).
    ///
    /// Without a signing key nothing is handed off (callbacks are signed
    /// with the server's key ring) and they stay owed until one is
    /// configured: the first pass that finds some owed says so, once.
    pub async fn run_once(&self) -> Result<usize, RuntimeError> {
        let can_sign = self.messages.can_sign_without_target();
        let mut total = 0;
        loop {
            let rows = self.store.pending_callbacks(self.batch).await?;
            if !can_sign {
                if !rows.is_empty() && !self.warned_unsigned.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        "callbacks are owed but this server has no signing key to sign them; they wait until one is configured (SIGNET_SIGNING_KEYS, or the key file)"
                    );
                }
                return Ok(0);
            }
            let fetched = rows.len();
            let mut done = Vec::with_capacity(fetched);
            for row in &rows {
                match self.hand_off(row).await {
                    Ok(true) => {
                        total += 1;
                        done.push(row.id().to_owned());
                    }
                    Ok(false) => done.push(row.id().to_owned()),
                    Err(e) if matches!(e, RuntimeError::InvalidField(_)) => {
                        // The stored callback URL cannot be used: nothing
                        // will ever make it deliverable.
                        tracing::warn!(task_id = %row.id(), error = %e, "callback cannot be sent; dropping it");
                        done.push(row.id().to_owned());
                    }
                    Err(e) => {
                        self.store
                            .mark_callbacks_sent(&done, self.clock.now_ms())
                            .await?;
                        return Err(e);
                    }
                }
            }
            self.store
                .mark_callbacks_sent(&done, self.clock.now_ms())
                .await?;
            if fetched < self.batch || done.is_empty() {
                break;
            }
        }
        if total > 0 {
            tracing::debug!(callbacks = total, "callbacks enqueued");
        }
        Ok(total)
    }

    /// Enqueues the callback of `row`. `Ok(false)` when `row` owes none
    /// (not finished, or no URL).
    async fn hand_off(&self, row: &TaskRow) -> Result<bool, RuntimeError> {
        let Some(url) = row.envelope.callback_url.clone() else {
            return Ok(false);
        };
        let Some(body) = callback_body(row) else {
            return Ok(false);
        };
        let finished = row.finished_at_ms.unwrap_or(row.updated_at_ms);
        let mut spec = MessageSpec::post(url, Some(body));
        spec.headers
            .insert("content-type".into(), "application/json".into());
        let options = PublishOptions {
            idempotency_key: Some(format!("callback:{}:{finished}", row.id())),
            idempotency_scope: IdempotencyScope::System,
            ..PublishOptions::default()
        };
        self.messages.publish_spec(spec, options).await?;
        Ok(true)
    }

    /// Runs a pass every interval until `shutdown` fires. Errors are logged
    /// and the next pass is tried on time.
    pub async fn run(self, shutdown: ShutdownSignal) {
        run_every("callbacks", self.interval, shutdown, || self.run_once()).await;
    }
}

/// The callback body of a finished row (`None` unless succeeded or dead).
pub(crate) fn callback_body(row: &TaskRow) -> Option<String> {
    let status = match row.state {
        TaskState::Succeeded => "succeeded",
        TaskState::Dead => "dead",
        _ => return None,
    };
    let kind = if row.queue() == MESSAGE_QUEUE {
        "message"
    } else {
        "task"
    };
    let finished = row.finished_at_ms.unwrap_or(row.updated_at_ms);
    let mut body = serde_json::json!({
        "id": row.id(),
        "kind": kind,
        "status": status,
        "attempts": row.attempt,
        "created_at": rfc3339(row.envelope.created_at_ms),
        "finished_at": rfc3339(finished),
    });
    if row.state == TaskState::Succeeded {
        let result = row
            .result
            .as_deref()
            .and_then(|r| std::str::from_utf8(r).ok())
            .and_then(|t| serde_json::from_str::<Box<RawValue>>(t).ok())
            .and_then(|raw| serde_json::to_value(raw).ok())
            .unwrap_or(serde_json::Value::Null);
        body["result"] = result;
    } else {
        body["error"] = serde_json::json!({
            "reason": row.dead_reason.map(|r| r.as_str()),
            "detail": row.dead_detail.as_deref().or(row.last_error.as_deref()),
        });
    }
    Some(body.to_string())
}

/// Unix ms as RFC 3339, as the API prints times.
fn rfc3339(ms: i64) -> String {
    crate::times::format_time_ms(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use signet_sign::TaskEnvelope;
    use signet_store::DeadReason;

    fn row(queue: &str, state: TaskState) -> TaskRow {
        TaskRow {
            envelope: TaskEnvelope {
                id: "task_1".into(),
                queue: queue.into(),
                name: "n".into(),
                args: b"{}".to_vec(),
                headers: Default::default(),
                created_at_ms: 1_700_000_000_000,
                not_before_ms: None,
                expires_at_ms: None,
                max_attempts: 3,
                callback_url: Some("https://example.com/cb".into()),
            },
            signature: None,
            state,
            priority: 0,
            attempt: 2,
            attempts_before: 0,
            run_at_ms: 0,
            lease_owner: None,
            lease_expires_at_ms: None,
            last_error: Some("boom".into()),
            dead_reason: Some(DeadReason::MaxAttempts),
            dead_detail: Some("all 3 attempts failed".into()),
            result: Some(br#"{"ok":true}"#.to_vec()),
            idempotency_key: None,
            updated_at_ms: 1_700_000_001_000,
            finished_at_ms: Some(1_700_000_002_000),
        }
    }

    #[tokio::test]
    async fn without_a_key_only_owed_callbacks_are_reported() {
        use crate::clock::Clock as _;
        use crate::producer::{Producer, TaskSpec};
        use crate::targets::TargetService;
        use signet_sign::KeyRing;
        use signet_store::{ClaimRequest, LeaseToken};

        let store: Arc<dyn Store> = Arc::new(
            signet_sqlite::SqliteStore::open("sqlite::memory:", Default::default()).unwrap(),
        );
        let producer =
            Producer::with_ring(Arc::clone(&store), Arc::new(KeyRing::empty()), false).unwrap();
        let messages = MessageProducer::new(
            producer.clone(),
            TargetService::new(Arc::clone(&store), None),
        );
        let service = CallbackService::new(Arc::clone(&store), messages);
        // An empty store owes nothing: nothing to say.
        assert_eq!(service.run_once().await.unwrap(), 0);
        assert!(!service.warned_unsigned.load(Ordering::Relaxed));

        // A finished task with a callback URL: owed, and it cannot be signed.
        let spec = TaskSpec::new("t", &serde_json::json!({}))
            .queue("q")
            .callback_url("https://example.com/cb");
        producer.enqueue(spec).await.unwrap();
        let now = SystemClock.now_ms() + 1_000;
        let request = ClaimRequest {
            queues: vec!["q".into()],
            worker_id: "w".into(),
            limit: 1,
            lease_ms: 60_000,
        };
        let claimed = store.claim(request, now).await.unwrap();
        store
            .complete(&LeaseToken::of(&claimed[0]), None, now)
            .await
            .unwrap();
        assert_eq!(service.run_once().await.unwrap(), 0);
        assert!(service.warned_unsigned.load(Ordering::Relaxed));
        assert_eq!(
            store.pending_callbacks(10).await.unwrap().len(),
            1,
            "still owed"
        );
    }

    #[test]
    fn bodies_say_what_happened() {
        let ok: serde_json::Value =
            serde_json::from_str(&callback_body(&row("default", TaskState::Succeeded)).unwrap())
                .unwrap();
        assert_eq!(ok["kind"], "task");
        assert_eq!(ok["status"], "succeeded");
        assert_eq!(ok["attempts"], 2);
        assert_eq!(ok["result"], serde_json::json!({"ok": true}));
        assert!(ok.get("error").is_none());
        assert_eq!(ok["created_at"], "2023-11-14T22:13:20.000Z");
        assert_eq!(ok["finished_at"], "2023-11-14T22:13:22.000Z");
        let dead: serde_json::Value =
            serde_json::from_str(&callback_body(&row(MESSAGE_QUEUE, TaskState::Dead)).unwrap())
                .unwrap();
        assert_eq!(dead["kind"], "message");
        assert_eq!(dead["status"], "dead");
        assert_eq!(dead["error"]["reason"], "max-attempts");
        assert_eq!(dead["error"]["detail"], "all 3 attempts failed");
        assert!(dead.get("result").is_none());
        assert!(callback_body(&row("default", TaskState::Running)).is_none());
    }
}
