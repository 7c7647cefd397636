//! JSON representations of stored things, and time conversions.

use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use signet_runtime::MessageSpec;
use signet_store::{Event, HistoryEvent, HttpExchange, SignatureRecord, TaskRow, MESSAGE_QUEUE};

use crate::auth::Scope;

/// Unix milliseconds as RFC 3339 UTC with three fractional digits: the
/// one formatter ([`signet_runtime::format_time_ms`]) the CLI also prints with.
pub(crate) fn rfc3339(ms: i64) -> String {
    signet_runtime::format_time_ms(ms)
}

/// A time given by a client: an RFC 3339 string or integer unix
/// milliseconds (a JSON number, or digits in text such as a query string).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimeInput(pub(crate) i64);

impl TimeInput {
    /// Parses RFC 3339 or unix-millisecond text, by the one parser the CLI's
    /// `--since`/`--until` also use ([`signet_runtime::parse_time_ms`]).
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        signet_runtime::parse_time_ms(text).map(TimeInput)
    }
}

impl<'de> Deserialize<'de> for TimeInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = TimeInput;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an RFC 3339 time string or integer unix milliseconds")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<TimeInput, E> {
                Ok(TimeInput(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<TimeInput, E> {
                i64::try_from(v)
                    .map(TimeInput)
                    .map_err(|_| E::custom("unix milliseconds out of range"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TimeInput, E> {
                TimeInput::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A stored signature, as shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SignatureView {
    /// `hmac-sha256` or `ed25519`.
    pub alg: String,
    /// The key id that signed.
    pub key_id: String,
    /// The signature, standard base64.
    pub sig: String,
}

impl From<&SignatureRecord> for SignatureView {
    fn from(s: &SignatureRecord) -> Self {
        Self {
            alg: s.alg.as_str().to_owned(),
            key_id: s.key_id.clone(),
            sig: base64::engine::general_purpose::STANDARD.encode(&s.sig),
        }
    }
}

/// A task, as the API shows it. Times are RFC 3339.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TaskView {
    /// `task_…`.
    pub id: String,
    /// Queue.
    pub queue: String,
    /// Task (handler) name.
    pub task: String,
    /// Arguments as JSON (exactly the bytes stored). `null` when they are
    /// not JSON; then `args_base64` has them.
    #[schema(value_type = Object)]
    pub args: Option<Box<RawValue>>,
    /// The args as base64, only when they are not JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args_base64: Option<String>,
    /// Headers (lower-case names).
    pub headers: BTreeMap<String, String>,
    /// `scheduled`, `available`, `running`, `retryable`, `succeeded`, `dead`, `cancelled`.
    pub state: String,
    /// Attempts started since the last replay (counts against
    /// `max_attempts`).
    pub attempt: u32,
    /// Attempts made in the task's whole life, replays included.
    pub attempts_made: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Higher runs first.
    pub priority: i32,
    /// Earliest time it may (next) run.
    pub run_at: String,
    /// Created.
    pub created_at: String,
    /// Last state change.
    pub updated_at: String,
    /// Finished, when final.
    pub finished_at: Option<String>,
    /// Not to run before.
    pub not_before: Option<String>,
    /// Not to run after.
    pub expires_at: Option<String>,
    /// Where the signed callback goes (query values read `redacted` for
    /// keys that are not admin, like a message's URL).
    pub callback_url: Option<String>,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// Why it is dead.
    pub dead_reason: Option<String>,
    /// More about why it is dead.
    pub dead_detail: Option<String>,
    /// The handler's result, when succeeded and JSON.
    #[schema(value_type = Option<Object>)]
    pub result: Option<Box<RawValue>>,
    /// The signature over the envelope, when signed.
    pub signature: Option<SignatureView>,
    /// Present when part of the task is hidden from this API key, saying
    /// what and why: a message's headers, body and URL query are shown to
    /// admin keys only (then `args` holds what `/v1/messages` shows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redacted: Option<&'static str>,
    /// Every attempt and operator act, oldest first (`GET /v1/tasks/{id}`
    /// and `GET /v1/dead-letters/{id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryEventView>>,
}

fn raw_json(bytes: &[u8]) -> Option<Box<RawValue>> {
    let text = std::str::from_utf8(bytes).ok()?;
    serde_json::from_str::<Box<RawValue>>(text).ok()
}

impl TaskView {
    /// `row` as a key of `scope` may see it. The row of a message (a task of
    /// [`MESSAGE_QUEUE`] whose args are the request, callbacks included)
    /// shows a key without [`Scope::sees_message_payloads`] only what
    /// [`MessageRequestView`] shows, as every route that shows a message does.
    pub(crate) fn shown_to(row: &TaskRow, scope: Scope) -> Self {
        let env = &row.envelope;
        let hidden = row.queue() == MESSAGE_QUEUE && !scope.sees_message_payloads();
        let (args, args_base64, redacted) = if hidden {
            // A stored message that is not a message spec shows nothing.
            let summary = MessageSpec::from_args(&env.args)
                .ok()
                .map(|spec| MessageRequestView::new(&spec, scope))
                .and_then(|view| serde_json::to_string(&view).ok())
                .and_then(|text| RawValue::from_string(text).ok());
            (summary, None, Some(REDACTED_MESSAGE))
        } else {
            let args = raw_json(&env.args);
            let args_base64 = args
                .is_none()
                .then(|| base64::engine::general_purpose::STANDARD.encode(&env.args));
            (args, args_base64, None)
        };
        Self {
            id: env.id.clone(),
            queue: env.queue.clone(),
            task: env.name.clone(),
            args,
            args_base64,
            headers: env.headers.clone(),
            state: row.state.as_str().to_owned(),
            attempt: row.attempt,
            attempts_made: row.attempts_made(),
            max_attempts: env.max_attempts,
            priority: row.priority,
            run_at: rfc3339(row.run_at_ms),
            created_at: rfc3339(env.created_at_ms),
            updated_at: rfc3339(row.updated_at_ms),
            finished_at: row.finished_at_ms.map(rfc3339),
            not_before: env.not_before_ms.map(rfc3339),
            expires_at: env.expires_at_ms.map(rfc3339),
            callback_url: env.callback_url.as_deref().map(|u| shown_url(u, scope)),
            last_error: row.last_error.clone(),
            dead_reason: row.dead_reason.map(|r| r.as_str().to_owned()),
            dead_detail: row.dead_detail.clone(),
            result: row.result.as_deref().and_then(raw_json),
            signature: row.signature.as_ref().map(SignatureView::from),
            redacted,
            history: None,
        }
    }
}

/// What `redacted` says on a message shown to a key that is not admin.
pub(crate) const REDACTED_MESSAGE: &str =
    "a message's headers, body and URL query carry the receiver's credentials: only admin keys see them; args shows what /v1/messages shows";

/// What a key may see of a message's request: the one rule every route that
/// shows a message follows (`/v1/messages`, `/v1/tasks`, `/v1/dead-letters`,
/// `/v1/schedules`). Where it goes and how it is signed are shown to every
/// key; the headers and the body, and the values of the URL's query, only
/// to keys that [`Scope::sees_message_payloads`], because they carry the
/// receiver's credentials (tokens, `Authorization`, `?code=`).
#[derive(Debug, Serialize)]
pub(crate) struct MessageRequestView {
    /// The URL; without payload access its query values read `redacted`.
    pub url: String,
    /// The HTTP method.
    pub method: String,
    /// The target id, when a target signs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The signature profile.
    pub signature_profile: String,
    /// The headers sent (payload access only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// The body sent (payload access only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl MessageRequestView {
    /// `spec` as a key of `scope` may see it.
    pub(crate) fn new(spec: &MessageSpec, scope: Scope) -> Self {
        let full = scope.sees_message_payloads();
        Self {
            url: shown_url(&spec.url, scope),
            method: spec.method.clone(),
            target: spec.target.clone(),
            signature_profile: spec.signature_profile.as_str().to_owned(),
            headers: full.then(|| spec.headers.clone()),
            body: if full { spec.body.clone() } else { None },
        }
    }

    /// A message given as JSON (a schedule's `message`, the body of
    /// `POST /v1/messages`) as a key of `scope` may see it: the same fields
    /// hidden as [`MessageRequestView::new`] hides.
    pub(crate) fn redact_json(
        message: &mut serde_json::Map<String, serde_json::Value>,
        scope: Scope,
    ) {
        if scope.sees_message_payloads() {
            return;
        }
        message.remove("headers");
        message.remove("body");
        redact_urls(message, scope);
    }
}

/// The URLs Signet calls that a JSON object names (`url`, `callback_url`),
/// as a key of `scope` may see them ([`shown_url`]). A schedule's task
/// template goes through this; a message through
/// [`MessageRequestView::redact_json`].
pub(crate) fn redact_urls(object: &mut serde_json::Map<String, serde_json::Value>, scope: Scope) {
    for key in ["url", "callback_url"] {
        if let Some(serde_json::Value::String(url)) = object.get_mut(key) {
            *url = shown_url(url, scope);
        }
    }
}

/// A URL Signet calls (a message's, a callback's) as a key of `scope` may
/// see it: without payload access every query value reads `redacted`
/// (names are kept, so the URL still says what it calls).
pub(crate) fn shown_url(url: &str, scope: Scope) -> String {
    if scope.sees_message_payloads() {
        return url.to_owned();
    }
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) => format!("{name}=redacted"),
            // A bare item (`?s3cr3t`) may be the secret itself.
            None if pair.is_empty() => String::new(),
            None => "redacted".to_owned(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

impl TaskView {
    /// The view of `row` with its history, as a key of `scope` may see it.
    pub(crate) fn with_history(row: &TaskRow, history: &[HistoryEvent], scope: Scope) -> Self {
        Self {
            history: Some(history.iter().map(HistoryEventView::from).collect()),
            ..Self::shown_to(row, scope)
        }
    }
}

/// One entry of a task's or message's history. Which fields are present
/// depends on `kind`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct HistoryEventView {
    /// `attempt`, `replayed`, `resigned`, `cancelled`, `retried-now`, `resent`
    /// or `dead-lettered`.
    pub kind: String,
    /// When it happened (an attempt: when it ended).
    pub at: String,
    /// Attempt: its number, from 1, going on across replays.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// Attempt: `succeeded`, `retry`, `dead` or `lease-expired`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Attempt: the worker (or dispatcher) that ran it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// Attempt: when it was claimed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// Attempt: what went wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Attempt of a message: the HTTP exchange.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpExchangeView>,
    /// Replayed, re-signed, cancelled: who (an API key, the CLI).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Dead-lettered before it ran: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Dead-lettered before it ran: more about why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Re-signed: the key id of the signature replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_key_id: Option<String>,
    /// Re-signed: the key id of the new signature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_key_id: Option<String>,
}

/// The HTTP exchange of one delivery attempt.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct HttpExchangeView {
    /// The HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// Time to the end of the response (or the failure), ms.
    pub latency_ms: i64,
    /// The first 4 KiB of the response body, as text (invalid UTF-8
    /// replaced).
    pub response_body: String,
    /// The same bytes as base64, only when they are not UTF-8 text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_body_base64: Option<String>,
}

impl From<&HttpExchange> for HttpExchangeView {
    fn from(h: &HttpExchange) -> Self {
        let text = match std::str::from_utf8(&h.response_body) {
            Ok(_) => true,
            // A multi-byte character cut at the 4 KiB mark is still text.
            Err(e) => e.error_len().is_none(),
        };
        Self {
            status: h.status,
            latency_ms: h.latency_ms,
            response_body: String::from_utf8_lossy(&h.response_body).into_owned(),
            response_body_base64: (!text)
                .then(|| base64::engine::general_purpose::STANDARD.encode(&h.response_body)),
        }
    }
}

impl From<&HistoryEvent> for HistoryEventView {
    fn from(e: &HistoryEvent) -> Self {
        let mut view = HistoryEventView {
            kind: e.event.kind().to_owned(),
            at: rfc3339(e.at_ms),
            attempt: None,
            outcome: None,
            worker: None,
            started_at: None,
            error: None,
            http: None,
            actor: None,
            reason: None,
            detail: None,
            from_key_id: None,
            to_key_id: None,
        };
        match &e.event {
            Event::Attempt(a) => {
                view.attempt = Some(a.number);
                view.outcome = Some(a.outcome.as_str().to_owned());
                view.worker.clone_from(&a.worker);
                view.started_at = a.started_at_ms.map(rfc3339);
                view.error.clone_from(&a.error);
                view.http = a.http.as_ref().map(HttpExchangeView::from);
            }
            Event::Replayed { actor }
            | Event::Cancelled { actor }
            | Event::RetriedNow { actor }
            | Event::Resent { actor } => {
                view.actor = Some(actor.clone());
            }
            Event::Resigned {
                actor,
                from_key_id,
                to_key_id,
            } => {
                view.actor = Some(actor.clone());
                view.from_key_id.clone_from(from_key_id);
                view.to_key_id = Some(to_key_id.clone());
            }
            Event::DeadLettered { reason, detail } => {
                view.reason = Some(reason.as_str().to_owned());
                view.detail = Some(detail.clone());
            }
            // A kind added later: shown by its name.
            _ => {}
        }
        view
    }
}

/// A page of tasks.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TaskPage {
    /// The tasks.
    pub items: Vec<TaskView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl TaskPage {
    /// `page` as a key of `scope` may see it (see [`TaskView::shown_to`]).
    pub(crate) fn shown_to(page: signet_store::Page<TaskRow>, scope: Scope) -> Self {
        TaskPage {
            items: page
                .items
                .iter()
                .map(|row| TaskView::shown_to(row, scope))
                .collect(),
            next_cursor: page.next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
        assert_eq!(rfc3339(1_700_000_000_500), "2023-11-14T22:13:20.500Z");
        assert_eq!(
            TimeInput::parse("1700000000000").unwrap().0,
            1_700_000_000_000
        );
        assert_eq!(
            TimeInput::parse("2023-11-14T22:13:20.123Z").unwrap().0,
            1_700_000_000_123
        );
        assert_eq!(
            TimeInput::parse("2023-11-14T23:13:20+01:00").unwrap().0,
            1_700_000_000_000
        );
        assert!(TimeInput::parse("yesterday").is_err());
        let t: TimeInput = serde_json::from_str("1700000000000").unwrap();
        assert_eq!(t.0, 1_700_000_000_000);
    }

    #[test]
    fn message_urls_hide_query_values_from_keys_without_payload_access() {
        let url = "https://r.example/a/b?code=s3cret&flag&=x&&v=1";
        assert_eq!(shown_url(url, Scope::Admin), url);
        for scope in [Scope::Read, Scope::Publish] {
            let shown = shown_url(url, scope);
            assert_eq!(
                shown,
                "https://r.example/a/b?code=redacted&redacted&=redacted&&v=redacted"
            );
        }
        assert_eq!(
            shown_url("https://r.example/a", Scope::Read),
            "https://r.example/a"
        );
    }

    #[test]
    fn message_json_loses_headers_and_body_for_keys_without_payload_access() {
        let message = serde_json::json!({
            "url": "https://r.example/?k=s3cret", "method": "PUT",
            "headers": {"authorization": "s3cret"}, "body": "s3cret",
        });
        let serde_json::Value::Object(mut map) = message else {
            unreachable!()
        };
        let untouched = map.clone();
        MessageRequestView::redact_json(&mut map, Scope::Admin);
        assert_eq!(map, untouched);
        MessageRequestView::redact_json(&mut map, Scope::Read);
        let text = serde_json::Value::Object(map).to_string();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("PUT"), "{text}");
    }
}
