//! Rows for HTTP delivery and scheduling: how a delivery attempt ends, targets
//! (registered receivers with their sealed secrets), cron schedules, and the
//! leader leases that make node-wide services run once.
//!
//! Messages themselves are task rows: a message is a signed envelope on the
//! reserved queue [`MESSAGE_QUEUE`] whose args are the message's JSON spec,
//! so it gets the queue's durability, leases, retries, idempotency and dead
//! letters for free, and tampering with it at rest is caught by the same
//! signature check as a task.

use crate::error::StoreError;

pub use crate::rules::{MESSAGE_QUEUE, RESERVED_QUEUE_PREFIX};

/// The task name of a message envelope.
pub const MESSAGE_TASK_NAME: &str = "signet.http";
/// Bytes of a response body kept per attempt (4 KiB).
pub const MAX_ATTEMPT_BODY_BYTES: usize = 4096;
/// Longest error text kept per attempt.
pub const MAX_ATTEMPT_ERROR_LEN: usize = 1024;
pub use crate::rules::MAX_NAME_LEN;

/// How a message's delivery attempt ended, as the dispatcher writes it
/// with [`Store::settle_delivery`](crate::Store::settle_delivery): the
/// outcome of the lease (as [`complete`](crate::Store::complete) or
/// [`fail`](crate::Store::fail) would write it) and the HTTP exchange, in
/// one write and one history event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// Delivered: the message succeeds with this result.
    Delivered {
        /// The result stored on the row (JSON bytes).
        result: Option<Vec<u8>>,
    },
    /// Not delivered: retry or dead-letter, with the attempt's error.
    Failed {
        /// What went wrong.
        error: String,
        /// Retry or dead.
        outcome: crate::FailOutcome,
    },
}

/// One delivery attempt to settle, as
/// [`Store::settle_deliveries`](crate::Store::settle_deliveries) takes many
/// of them: the lease, the HTTP exchange and the outcome, as
/// [`Store::settle_delivery`](crate::Store::settle_delivery) takes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliverySettlement {
    /// The lease the attempt ran under.
    pub lease: crate::LeaseToken,
    /// The HTTP exchange.
    pub http: crate::history::HttpExchange,
    /// The outcome.
    pub settlement: Settlement,
}

/// Checks what every backend refuses with [`StoreError::Invalid`]: a
/// response body over [`MAX_ATTEMPT_BODY_BYTES`], an error over
/// [`MAX_ATTEMPT_ERROR_LEN`], a negative latency.
pub fn check_exchange(
    http: &crate::history::HttpExchange,
    settlement: &Settlement,
) -> Result<(), StoreError> {
    if http.response_body.len() > MAX_ATTEMPT_BODY_BYTES {
        return Err(StoreError::invalid(format!(
            "attempt response body is {} bytes; keep at most {MAX_ATTEMPT_BODY_BYTES}",
            http.response_body.len()
        )));
    }
    if let Settlement::Failed { error, .. } = settlement {
        if error.len() > MAX_ATTEMPT_ERROR_LEN {
            return Err(StoreError::invalid(format!(
                "attempt error text is longer than {MAX_ATTEMPT_ERROR_LEN} bytes"
            )));
        }
    }
    if http.latency_ms < 0 {
        return Err(StoreError::invalid("attempt latency is negative"));
    }
    Ok(())
}

/// A registered receiver: where messages for it may go and the secret(s)
/// they are signed with.
///
/// `sealed_secrets` is opaque to the store: the runtime seals the secret
/// list under the master key before it gets here, so the database never
/// holds a target secret in clear.
#[derive(Clone, PartialEq, Eq)]
pub struct TargetRecord {
    /// `tgt_…`.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Messages for this target must have a URL starting with this.
    pub url_prefix: Option<String>,
    /// The sealed secret list (XChaCha20-Poly1305 under the master key).
    pub sealed_secrets: Vec<u8>,
    /// A non-secret fingerprint of the current secret, for display.
    pub secret_fingerprint: String,
    /// Deliveries per second to this target, at most.
    pub rate_limit_per_s: Option<u32>,
    /// Deliveries in flight to this target, at most.
    pub max_concurrency: Option<u32>,
    /// Refuse `http://` URLs for this target.
    pub https_only: bool,
    /// Creation time, unix ms.
    pub created_at_ms: i64,
    /// Last change, unix ms.
    pub updated_at_ms: i64,
}

impl std::fmt::Debug for TargetRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("url_prefix", &self.url_prefix)
            .field(
                "sealed_secrets",
                &format_args!("<{} sealed bytes>", self.sealed_secrets.len()),
            )
            .field("secret_fingerprint", &self.secret_fingerprint)
            .field("rate_limit_per_s", &self.rate_limit_per_s)
            .field("max_concurrency", &self.max_concurrency)
            .field("https_only", &self.https_only)
            .finish_non_exhaustive()
    }
}

impl TargetRecord {
    /// The bytes by which a stored message names target `target_id`: the
    /// `target` field of its args (a compact JSON message spec), as
    /// [`Store::pending_messages_for_target`](crate::Store::pending_messages_for_target)
    /// looks for it in every backend. A target id needs no JSON escaping.
    pub fn message_marker(target_id: &str) -> Vec<u8> {
        format!("\"target\":\"{target_id}\"").into_bytes()
    }

    /// Checks the arguments of
    /// [`Store::swap_target_secrets`](crate::Store::swap_target_secrets):
    /// a target id and sealed secrets that are not empty.
    pub fn validate_secrets_swap(id: &str, sealed_secrets: &[u8]) -> Result<(), StoreError> {
        crate::TargetId::parse(id)?;
        if sealed_secrets.is_empty() {
            return Err(StoreError::invalid(format!(
                "target {id}: sealed secrets are empty"
            )));
        }
        Ok(())
    }

    /// Checks what every backend refuses with [`StoreError::Invalid`]: a bad
    /// id, an empty or over-long name, empty sealed secrets, a rate limit or
    /// concurrency of 0.
    pub fn validate(&self) -> Result<(), StoreError> {
        crate::TargetId::parse(&self.id)?;
        validate_name("target", &self.name)?;
        if self.sealed_secrets.is_empty() {
            return Err(StoreError::invalid(format!(
                "target {}: sealed secrets are empty",
                self.name
            )));
        }
        if self.rate_limit_per_s == Some(0) || self.max_concurrency == Some(0) {
            return Err(StoreError::invalid(format!(
                "target {}: rate_limit_per_s and max_concurrency must be at least 1 when set",
                self.name
            )));
        }
        Ok(())
    }
}

/// Shortest time a push endpoint gets to answer, in ms.
pub const MIN_PUSH_TIMEOUT_MS: u32 = 1_000;
/// Longest time a push endpoint gets to answer, in ms.
pub const MAX_PUSH_TIMEOUT_MS: u32 = 300_000;
/// Most pushes in flight per binding per node.
pub const MAX_PUSH_CONCURRENCY: u32 = 1_000;

/// A queue bound to an HTTP endpoint (a push queue): the dispatcher drains
/// it by POSTing each task to `url`, signed with the target's secret
/// (docs/push-queues.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushBinding {
    /// The bound queue (a user queue: never Signet's own).
    pub queue: String,
    /// Where each task is POSTed.
    pub url: String,
    /// The target (`tgt_…`) whose secret signs the request.
    pub target_id: String,
    /// Time the endpoint gets to answer, [`MIN_PUSH_TIMEOUT_MS`] to
    /// [`MAX_PUSH_TIMEOUT_MS`].
    pub timeout_ms: u32,
    /// Pushes in flight per node, 1 to [`MAX_PUSH_CONCURRENCY`].
    pub concurrency: u32,
    /// Answers must carry a valid `webhook-signature` over
    /// `{webhook-id}.{webhook-timestamp}.{body}`.
    pub require_signed_response: bool,
    /// Creation time, unix ms.
    pub created_at_ms: i64,
    /// Last change, unix ms.
    pub updated_at_ms: i64,
}

impl PushBinding {
    /// Checks the fields, each error naming its field (`queue`, `url`,
    /// `target`, `timeout_ms`, `concurrency`): the one rule of a binding,
    /// which the API, the CLI and every backend apply.
    pub fn check(&self) -> Result<(), crate::FieldError> {
        crate::rules::task_queue(&self.queue)?;
        crate::rules::http_url("url", &self.url)?;
        crate::TargetId::parse(&self.target_id)
            .map_err(|e| crate::FieldError::new("target", e.to_string()))?;
        if !(MIN_PUSH_TIMEOUT_MS..=MAX_PUSH_TIMEOUT_MS).contains(&self.timeout_ms) {
            return Err(crate::FieldError::new(
                "timeout_ms",
                format!(
                    "{} is out of range; give {MIN_PUSH_TIMEOUT_MS}..={MAX_PUSH_TIMEOUT_MS} ms",
                    self.timeout_ms
                ),
            ));
        }
        if !(1..=MAX_PUSH_CONCURRENCY).contains(&self.concurrency) {
            return Err(crate::FieldError::new(
                "concurrency",
                format!(
                    "{} is out of range; give 1..={MAX_PUSH_CONCURRENCY} (pushes in flight per node)",
                    self.concurrency
                ),
            ));
        }
        Ok(())
    }

    /// [`PushBinding::check`] as every backend refuses it:
    /// [`StoreError::Invalid`].
    pub fn validate(&self) -> Result<(), StoreError> {
        self.check().map_err(|e| {
            StoreError::invalid(format!("push binding: {}: {}", e.field(), e.message()))
        })
    }
}

/// What a schedule does about due times it missed while no scheduler ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Missed times are skipped; the next fire is the next due time after now.
    Skip,
    /// Missed times fire once (one run for all of them), then back to normal.
    Once,
}

impl CatchUp {
    /// `skip` or `once`.
    pub fn as_str(self) -> &'static str {
        match self {
            CatchUp::Skip => "skip",
            CatchUp::Once => "once",
        }
    }

    /// Parses `skip` or `once`.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "skip" => Ok(CatchUp::Skip),
            "once" => Ok(CatchUp::Once),
            other => Err(StoreError::invalid(format!(
                "catch_up {other:?} is not known; use \"skip\" or \"once\""
            ))),
        }
    }
}

/// A cron schedule that fires a task or a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleRecord {
    /// `sch_…`.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// The cron expression, 5 or 6 fields, as given.
    pub cron: String,
    /// IANA time zone name.
    pub timezone: String,
    /// What to fire, JSON: `{"task":{…}}` or `{"message":{…}}`, as the API
    /// accepted it. Opaque to the store.
    pub payload: Vec<u8>,
    /// What to do about missed due times.
    pub catch_up: CatchUp,
    /// A paused schedule is never due.
    pub paused: bool,
    /// The next due time, unix ms; `None` when the expression has no more.
    pub next_fire_at_ms: Option<i64>,
    /// The last due time that fired, unix ms.
    pub last_fired_at_ms: Option<i64>,
    /// Creation time, unix ms.
    pub created_at_ms: i64,
    /// Last change, unix ms.
    pub updated_at_ms: i64,
}

impl ScheduleRecord {
    /// Checks what every backend refuses with [`StoreError::Invalid`]: a bad
    /// id, an empty or over-long name, an empty cron, time zone or payload.
    pub fn validate(&self) -> Result<(), StoreError> {
        crate::ScheduleId::parse(&self.id)?;
        validate_name("schedule", &self.name)?;
        if self.cron.trim().is_empty() || self.timezone.is_empty() || self.payload.is_empty() {
            return Err(StoreError::invalid(format!(
                "schedule {}: cron, timezone and payload must not be empty",
                self.name
            )));
        }
        Ok(())
    }
}

/// A lease on a node-wide role (scheduler, rescuer, pruner, callbacks):
/// who holds it, until when, and its term (incremented each time the holder
/// changes, so a change of leader is observable).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderLease {
    /// The role.
    pub name: String,
    /// The node holding it.
    pub holder: String,
    /// Incremented whenever the holder changes.
    pub term: u64,
    /// When the lease runs out unless renewed, unix ms.
    pub expires_at_ms: i64,
}

/// Checks a target or schedule name (`what`) with the rule of
/// [`rules::target_name`](crate::rules::target_name), as a
/// [`StoreError::Invalid`].
pub fn validate_name(what: &str, name: &str) -> Result<(), StoreError> {
    crate::rules::plain_name("name", what, name, MAX_NAME_LEN)
        .map_err(|e| StoreError::invalid(e.message()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(validate_name("target", "billing-prod").is_ok());
        assert!(validate_name("target", "").is_err());
        assert!(validate_name("target", "a b").is_err());
        assert!(validate_name("target", &"x".repeat(129)).is_err());
    }

    #[test]
    fn target_debug_hides_sealed_bytes() {
        let t = TargetRecord {
            id: crate::TargetId::generate().to_string(),
            name: "t".into(),
            url_prefix: None,
            sealed_secrets: b"sealed-bytes-here".to_vec(),
            secret_fingerprint: "fp".into(),
            rate_limit_per_s: None,
            max_concurrency: None,
            https_only: false,
            created_at_ms: 0,
            updated_at_ms: 0,
        };
        let dbg = format!("{t:?}");
        assert!(!dbg.contains("sealed-bytes-here"), "{dbg}");
        assert!(t.validate().is_ok());
    }

    #[test]
    fn exchanges_are_checked() {
        let mut http = crate::history::HttpExchange {
            status: Some(200),
            latency_ms: 3,
            response_body: vec![0; MAX_ATTEMPT_BODY_BYTES],
        };
        let ok = Settlement::Delivered { result: None };
        assert!(check_exchange(&http, &ok).is_ok());
        http.response_body.push(0);
        assert!(check_exchange(&http, &ok).is_err());
        http.response_body.pop();
        http.latency_ms = -1;
        assert!(check_exchange(&http, &ok).is_err());
        http.latency_ms = 1;
        let long = Settlement::Failed {
            error: "x".repeat(MAX_ATTEMPT_ERROR_LEN + 1),
            outcome: crate::FailOutcome::Retry { at_ms: 0 },
        };
        assert!(check_exchange(&http, &long).is_err());
    }
}
