//! What a schedule fires: a task template ([`TaskTemplate`]) or a message,
//! checked with the same rules (and words) as a task or message enqueued
//! directly, plus what only a schedule refuses; their stored form
//! ([`SchedulePayload`]); and what each run carries (its signed headers and
//! its idempotency key, [`fire_key`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use signet_store::rules::{self, FieldError};

use crate::error::RuntimeError;
use crate::message::NewMessage;
use crate::producer::TaskSpec;

/// Signed header on fired tasks: the schedule id.
pub const HEADER_SCHEDULE_ID: &str = "signet-schedule-id";
/// Signed header on fired tasks: the due time fired for, unix ms.
pub const HEADER_FIRE_AT: &str = "signet-fire-at";

/// The task a schedule fires: the fields of `POST /v1/tasks` that make
/// sense for a task enqueued again and again.
///
/// Refused, with a reason: `not_before` and `expires_at` (an absolute time
/// would be the same for every run; use `delay_ms`), and `id`,
/// `created_at` and `signature` (each run is a new task, signed when it is
/// enqueued).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TaskTemplate {
    /// Queue: 1–128 of `A-Z a-z 0-9 . _ : -`.
    pub queue: String,
    /// Task (handler) name.
    pub task: String,
    /// Arguments (any JSON; default `{}`), stored and signed byte for byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Box<RawValue>>,
    /// Each run is due this many ms after it is enqueued (0 to one year).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<i64>,
    /// Attempts allowed per run, 1–1000 (default 25).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// -1000–1000, higher first (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// Headers carried (and signed) with each run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// `http(s)://` URL for a signed callback when a run finishes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// Refused (see the type's documentation).
    #[serde(default, skip_serializing)]
    pub not_before: Option<serde::de::IgnoredAny>,
    /// Refused.
    #[serde(default, skip_serializing)]
    pub expires_at: Option<serde::de::IgnoredAny>,
    /// Refused.
    #[serde(default, skip_serializing)]
    pub id: Option<serde::de::IgnoredAny>,
    /// Refused.
    #[serde(default, skip_serializing)]
    pub created_at: Option<serde::de::IgnoredAny>,
    /// Refused.
    #[serde(default, skip_serializing)]
    pub signature: Option<serde::de::IgnoredAny>,
}

impl TaskTemplate {
    /// Checks every field; errors name the field as `task.<field>`. A run
    /// is checked as the [`Producer`](crate::Producer) checks it (the same
    /// rules, the same words), plus what only a schedule refuses.
    pub fn validate(&self) -> Result<(), FieldError> {
        let refused = [
            ("not_before", self.not_before.is_some(), "an absolute time would be the same for every run; use delay_ms"),
            ("expires_at", self.expires_at.is_some(), "an absolute time would be the same for every run"),
            ("id", self.id.is_some(), "each run is a new task with its own id"),
            ("created_at", self.created_at.is_some(), "each run is created when it fires"),
            ("signature", self.signature.is_some(), "each run is signed by the server when it fires; a client signature cannot cover a task that does not exist yet"),
        ];
        if let Some((field, _, why)) = refused.iter().find(|(_, present, _)| *present) {
            return Err(
                FieldError::new(*field, format!("not allowed in a schedule: {why}")).within("task"),
            );
        }
        let reserved = self.headers.iter().flatten().find(|(name, _)| {
            [HEADER_SCHEDULE_ID, HEADER_FIRE_AT]
                .iter()
                .any(|r| name.eq_ignore_ascii_case(r))
        });
        if let Some((name, _)) = reserved {
            return Err(FieldError::new(
                format!("headers.{}", rules::excerpt(&name.to_ascii_lowercase())),
                "is set by the scheduler on every run; choose another name",
            )
            .within("task"));
        }
        // A run as the scheduler would enqueue it (any id and due time).
        let run = self.spec("sch_0", 0, fire_key("sch_0", 0));
        match run.check(0) {
            Ok(()) => Ok(()),
            Err(RuntimeError::InvalidField(e)) => Err(e.within("task")),
            Err(other) => Err(FieldError::new("task", other.to_string())),
        }
    }

    /// The task spec of one run, due at `fire_ms`, for schedule `schedule_id`.
    pub(super) fn spec(
        &self,
        schedule_id: &str,
        fire_ms: i64,
        idempotency_key: String,
    ) -> TaskSpec {
        let args = self
            .args
            .as_ref()
            .map_or_else(|| b"{}".to_vec(), |a| a.get().as_bytes().to_vec());
        let mut spec = TaskSpec::raw(self.task.clone(), args)
            .queue(self.queue.clone())
            .idempotency_key(idempotency_key)
            .header(HEADER_SCHEDULE_ID, schedule_id)
            .header(HEADER_FIRE_AT, fire_ms.to_string())
            .with(self.priority, TaskSpec::priority)
            .with(self.max_attempts, TaskSpec::max_attempts)
            .with(self.delay_ms, TaskSpec::delay_ms)
            .with(self.callback_url.clone(), TaskSpec::callback_url);
        for (name, value) in self.headers.iter().flatten() {
            spec = spec.header(name.clone(), value.clone());
        }
        spec
    }
}

/// What a schedule fires: a task or a message. Stored as `{"task":{…}}` or
/// `{"message":{…}}` ([`SchedulePayload::to_json`]); the task's `args` and
/// the message are kept as the exact JSON text given.
#[derive(Debug)]
pub enum SchedulePayload {
    /// A signed task, through the [`Producer`](crate::Producer).
    Task(TaskTemplate),
    /// An HTTP message: the `POST /v1/messages` body, as given.
    Message(Box<RawValue>),
}

/// The stored JSON, with exactly one of the two set.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PayloadRepr {
    #[serde(default)]
    task: Option<Box<RawValue>>,
    #[serde(default)]
    message: Option<Box<RawValue>>,
}

impl SchedulePayload {
    /// The stored form of a task payload given as JSON text (kept as given).
    pub fn task_json(task: &RawValue) -> Vec<u8> {
        format!("{{\"task\":{}}}", task.get()).into_bytes()
    }

    /// The stored form of a message payload given as JSON text.
    pub fn message_json(message: &RawValue) -> Vec<u8> {
        format!("{{\"message\":{}}}", message.get()).into_bytes()
    }

    /// The stored form: [`SchedulePayload::task_json`] of the template (its
    /// `args` byte for byte) or [`SchedulePayload::message_json`].
    pub fn to_json(&self) -> Result<Vec<u8>, RuntimeError> {
        Ok(match self {
            SchedulePayload::Task(template) => Self::task_json(
                &serde_json::value::to_raw_value(template).map_err(RuntimeError::Args)?,
            ),
            SchedulePayload::Message(message) => Self::message_json(message),
        })
    }

    /// The payload of a definition that gives a `task`, a `message`, or
    /// (refused, naming the field `task`) both or neither. Not yet checked:
    /// see [`SchedulePayload::validate`].
    pub fn from_parts(
        task: Option<TaskTemplate>,
        message: Option<Box<RawValue>>,
    ) -> Result<Self, FieldError> {
        match (task, message) {
            (Some(task), None) => Ok(SchedulePayload::Task(task)),
            (None, Some(message)) => Ok(SchedulePayload::Message(message)),
            (Some(_), Some(_)) => Err(FieldError::new(
                "task",
                "give \"task\" or \"message\", not both",
            )),
            (None, None) => Err(FieldError::new(
                "task",
                "give what the schedule fires: \"task\" (a body like POST /v1/tasks) or \"message\" (a body like POST /v1/messages)",
            )),
        }
    }

    /// Checks the task ([`TaskTemplate::validate`]) or the message (a
    /// `POST /v1/messages` body, checked as one, without `not_before`: an
    /// absolute time would be the same for every run). Errors name the
    /// field under `task.` or `message.`. Whether a message's target exists
    /// needs the store: [`ScheduleService`](super::ScheduleService) checks
    /// it when the schedule is written, the publisher at every run.
    pub fn validate(&self) -> Result<(), FieldError> {
        match self {
            SchedulePayload::Task(template) => template.validate(),
            SchedulePayload::Message(message) => validate_message(message),
        }
    }

    /// Parses and checks the stored form. Errors name the field.
    pub fn from_json(bytes: &[u8]) -> Result<Self, FieldError> {
        let payload = Self::parse(bytes)?;
        payload.validate()?;
        Ok(payload)
    }

    /// Parses and checks a stored row for firing. A row written under an
    /// older, looser rule keeps firing: a task callback URL that today's
    /// rule refuses (user info, a `#fragment`) could never be called back
    /// (the callback service drops such URLs), so it is left out of the
    /// run, with a warning naming `schedule`, instead of stopping the
    /// schedule. Anything else the rules refuse stops it, as before.
    pub(super) fn from_stored(bytes: &[u8], schedule: &str) -> Result<Self, FieldError> {
        let mut payload = Self::parse(bytes)?;
        if let SchedulePayload::Task(template) = &mut payload {
            if let Some(refused) = template
                .callback_url
                .as_deref()
                .and_then(|url| rules::callback_url(url).err())
            {
                tracing::warn!(%schedule, error = %refused, "the stored callback URL of this schedule's task cannot be called back; runs fire without it (PATCH the schedule to set a usable one)");
                template.callback_url = None;
            }
        }
        payload.validate()?;
        Ok(payload)
    }

    /// The stored form, parsed but not checked.
    fn parse(bytes: &[u8]) -> Result<Self, FieldError> {
        let repr: PayloadRepr = serde_json::from_slice(bytes)
            .map_err(|e| FieldError::new("payload", format!("is not a schedule payload: {e}")))?;
        let task = repr
            .task
            .map(|task| serde_json::from_str::<TaskTemplate>(task.get()))
            .transpose()
            .map_err(|e| FieldError::new("task", e.to_string()))?;
        Self::from_parts(task, repr.message)
    }

    /// The task and the message JSON of a stored payload, as stored, for
    /// showing it. Nothing is checked, so a row the scheduler refuses still
    /// shows what it holds.
    pub fn stored_parts(bytes: &[u8]) -> (Option<Box<RawValue>>, Option<Box<RawValue>>) {
        let mut parts: BTreeMap<String, Box<RawValue>> =
            serde_json::from_slice(bytes).unwrap_or_default();
        (parts.remove("task"), parts.remove("message"))
    }

    /// `task` or `message`.
    pub fn kind(&self) -> &'static str {
        match self {
            SchedulePayload::Task(_) => "task",
            SchedulePayload::Message(_) => "message",
        }
    }
}

/// Checks the message of a message schedule (see
/// [`SchedulePayload::validate`]).
fn validate_message(message: &RawValue) -> Result<(), FieldError> {
    let parsed = NewMessage::from_json(message.get()).map_err(message_error)?;
    if parsed.not_before.is_some() {
        return Err(FieldError::new(
            "message.not_before",
            "not allowed in a schedule: an absolute time would be the same for every run; use delay_ms",
        ));
    }
    if parsed.idempotency_key.is_some() {
        return Err(FieldError::new(
            "message.idempotency_key",
            "not allowed in a schedule: each due time is published once under a key of its own",
        ));
    }
    parsed.validate().map_err(message_error)
}

fn message_error(e: RuntimeError) -> FieldError {
    match e {
        RuntimeError::InvalidField(e) if e.field() == "message" => {
            FieldError::new("message", e.message())
        }
        RuntimeError::InvalidField(e) => e.within("message"),
        other => FieldError::new("message", other.to_string()),
    }
}

/// The idempotency key of one due time of one schedule.
pub fn fire_key(schedule_id: &str, fire_ms: i64) -> String {
    format!("schedule:{schedule_id}:{fire_ms}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(json: &str) -> Result<TaskTemplate, FieldError> {
        let t: TaskTemplate =
            serde_json::from_str(json).map_err(|e| FieldError::new("task", e.to_string()))?;
        t.validate()?;
        Ok(t)
    }

    #[test]
    fn task_templates_are_checked_field_by_field() {
        assert!(template(r#"{"queue":"q","task":"report.daily","args":{"a":1}}"#).is_ok());
        let e = template(r#"{"queue":"q","task":"t","not_before":1}"#).unwrap_err();
        assert_eq!(e.field(), "task.not_before");
        let e = template(r#"{"queue":"q","task":"t","signature":{"alg":"x"}}"#).unwrap_err();
        assert_eq!(e.field(), "task.signature");
        let e = template(r#"{"queue":"signet:messages","task":"t"}"#).unwrap_err();
        assert_eq!(e.field(), "task.queue");
        let e = template(r#"{"queue":"a b","task":"t"}"#).unwrap_err();
        assert_eq!(e.field(), "task.queue");
        let e = template(r#"{"queue":"q","task":""}"#).unwrap_err();
        assert_eq!(e.field(), "task.task");
        let e = template(r#"{"queue":"q","task":"t","max_attempts":0}"#).unwrap_err();
        assert_eq!(e.field(), "task.max_attempts");
        let e = template(r#"{"queue":"q","task":"t","priority":5000}"#).unwrap_err();
        assert_eq!(e.field(), "task.priority");
        let e = template(r#"{"queue":"q","task":"t","delay_ms":-1}"#).unwrap_err();
        assert_eq!(e.field(), "task.delay_ms");
        let e =
            template(r#"{"queue":"q","task":"t","headers":{"Signet-Fire-At":"1"}}"#).unwrap_err();
        assert_eq!(e.field(), "task.headers.signet-fire-at");
        let e = template(r#"{"queue":"q","task":"t","callback_url":"ftp://x"}"#).unwrap_err();
        assert_eq!(e.field(), "task.callback_url");
        assert!(template(r#"{"queue":"q","task":"t","bogus":1}"#).is_err());
    }

    #[test]
    fn payloads_need_exactly_one_kind() {
        let raw =
            serde_json::value::RawValue::from_string(r#"{"queue":"q","task":"t"}"#.into()).unwrap();
        let stored = SchedulePayload::task_json(&raw);
        assert!(matches!(
            SchedulePayload::from_json(&stored),
            Ok(SchedulePayload::Task(_))
        ));
        assert!(SchedulePayload::from_json(b"{}").is_err());
        // A row stored before callback URLs lost user info and fragments:
        // refused when written today, but it keeps firing, without them.
        let old_row =
            br#"{"task":{"queue":"q","task":"t","callback_url":"https://u:p@example.com/cb#x"}}"#;
        assert_eq!(
            SchedulePayload::from_json(old_row).unwrap_err().field(),
            "task.callback_url"
        );
        match SchedulePayload::from_stored(old_row, "sch_old").unwrap() {
            SchedulePayload::Task(t) => {
                assert_eq!(t.task, "t");
                assert_eq!(t.callback_url, None);
            }
            SchedulePayload::Message(_) => panic!("a task row read as a message"),
        }
        // Other refusals still stop a stored row.
        assert!(
            SchedulePayload::from_stored(br#"{"task":{"queue":"signet:x","task":"t"}}"#, "s")
                .is_err()
        );
        assert!(SchedulePayload::from_json(b"not json").is_err());
        assert!(
            SchedulePayload::from_json(br#"{"task":{"queue":"q","task":"t"},"message":{}}"#)
                .is_err()
        );
    }

    #[test]
    fn a_message_schedule_takes_no_absolute_time_and_no_key_of_its_own() {
        let message = |extra: &str| {
            SchedulePayload::from_json(
                format!(r#"{{"message":{{"url":"https://example.com/h"{extra}}}}}"#).as_bytes(),
            )
            .and_then(|p| p.validate().map(|()| p))
        };
        assert!(message("").is_ok());
        let e = message(r#","not_before":1"#).unwrap_err();
        assert_eq!(e.field(), "message.not_before");
        let e = message(r#","idempotency_key":"k""#).unwrap_err();
        assert_eq!(e.field(), "message.idempotency_key", "{e}");
        assert!(e.message().contains("each due time"), "{e}");
    }

    #[test]
    fn fire_keys_name_the_schedule_and_due_time() {
        assert_eq!(
            fire_key("sch_1", 1_900_000_000_000),
            "schedule:sch_1:1900000000000"
        );
    }
}
