//! A claimed task as the wire protocols hand it out: the pull protocol's
//! claim answer (with a lease beside it) and the body of a push request
//! (docs/worker-protocol.md, docs/push-queues.md) are this one object, so
//! one parser serves both and the two can never drift.
//!
//! The envelope is exactly as stored: `args_b64` is the producer's bytes
//! (what the signature covers), and `args` the same bytes as JSON text,
//! written verbatim (a `RawValue`, never re-serialised) when they are
//! JSON. Verify with `args_b64`: a JSON parser on the worker's side may not
//! keep `args` byte for byte.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Serialize;
use serde_json::value::RawValue;
use signet_store::{SignatureRecord, TaskRow};

/// A claimed task: its attempt, the envelope and signature as the producer
/// made them.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkItem {
    /// This attempt (1-based, since the last replay).
    pub attempt: u32,
    /// Attempts allowed (signed, also in the envelope).
    pub max_attempts: u32,
    /// The signed fields, exactly as stored.
    pub envelope: WorkEnvelope,
    /// The signature over the canonical bytes of `envelope`; `null` for
    /// an unsigned task (a verifying worker refuses it: `missing`).
    pub signature: Option<WorkSignature>,
}

/// The signed fields of a `signet.task.v1` envelope, as stored. Times are
/// unix ms, as signed.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkEnvelope {
    /// `task_…`.
    pub id: String,
    /// Queue.
    pub queue: String,
    /// Task (handler) name.
    pub name: String,
    /// The args: the producer's exact bytes, standard base64. Verify with these.
    pub args_b64: String,
    /// The same bytes as JSON text, written verbatim; `null` when they are
    /// not JSON.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<serde_json::Value>))]
    pub args: Option<Box<RawValue>>,
    /// Headers (lower-case names).
    pub headers: BTreeMap<String, String>,
    /// Creation time, unix ms.
    pub created_at_ms: i64,
    /// Not before, unix ms.
    pub not_before_ms: Option<i64>,
    /// Expiry, unix ms.
    pub expires_at_ms: Option<i64>,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Callback URL.
    pub callback_url: Option<String>,
}

/// A stored signature, as shown.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkSignature {
    /// `hmac-sha256` or `ed25519`.
    pub alg: String,
    /// The key id that signed.
    pub key_id: String,
    /// The signature, standard base64.
    pub sig: String,
}

impl From<&SignatureRecord> for WorkSignature {
    fn from(s: &SignatureRecord) -> Self {
        Self {
            alg: s.alg.as_str().to_owned(),
            key_id: s.key_id.clone(),
            sig: base64::engine::general_purpose::STANDARD.encode(&s.sig),
        }
    }
}

impl From<&TaskRow> for WorkItem {
    fn from(row: &TaskRow) -> Self {
        let env = &row.envelope;
        let args = std::str::from_utf8(&env.args)
            .ok()
            .and_then(|text| RawValue::from_string(text.to_owned()).ok());
        Self {
            attempt: row.attempt,
            max_attempts: env.max_attempts,
            envelope: WorkEnvelope {
                id: env.id.clone(),
                queue: env.queue.clone(),
                name: env.name.clone(),
                args_b64: base64::engine::general_purpose::STANDARD.encode(&env.args),
                args,
                headers: env.headers.clone(),
                created_at_ms: env.created_at_ms,
                not_before_ms: env.not_before_ms,
                expires_at_ms: env.expires_at_ms,
                max_attempts: env.max_attempts,
                callback_url: env.callback_url.clone(),
            },
            signature: row.signature.as_ref().map(WorkSignature::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_are_written_verbatim_and_as_base64() {
        let envelope = signet_sign::TaskEnvelope {
            id: "task_1".into(),
            queue: "q".into(),
            name: "n".into(),
            args: br#"{"b": 1,  "a":2.50}"#.to_vec(),
            headers: BTreeMap::new(),
            created_at_ms: 5,
            not_before_ms: None,
            expires_at_ms: None,
            max_attempts: 3,
            callback_url: None,
        };
        let row = TaskRow {
            envelope,
            signature: None,
            state: signet_store::TaskState::Running,
            priority: 0,
            attempt: 2,
            attempts_before: 0,
            run_at_ms: 5,
            lease_owner: Some("w".into()),
            lease_expires_at_ms: Some(10),
            last_error: None,
            dead_reason: None,
            dead_detail: None,
            result: None,
            idempotency_key: None,
            updated_at_ms: 5,
            finished_at_ms: None,
        };
        let json = serde_json::to_string(&WorkItem::from(&row)).unwrap();
        assert!(json.contains(r#""args":{"b": 1,  "a":2.50}"#), "{json}");
        assert!(json.contains(r#""attempt":2"#), "{json}");
        assert!(json.contains(r#""signature":null"#), "{json}");
        let mut binary = row;
        binary.envelope.args = vec![0xff, 0x00];
        let json = serde_json::to_string(&WorkItem::from(&binary)).unwrap();
        assert!(json.contains(r#""args":null"#), "{json}");
        assert!(json.contains(r#""args_b64":"/wA=""#), "{json}");
    }
}
