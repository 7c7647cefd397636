//! A message: what a caller asks for ([`NewMessage`], the body of
//! `POST /v1/messages`, parsed and checked) and what is stored
//! ([`MessageSpec`], the envelope's args).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use signet_store::rules;
use signet_store::TargetId;

use super::profile::SignatureProfile;
use super::retry::RetrySchedule;
use crate::error::RuntimeError;

/// A message as stored: the envelope's args. Everything needed to build each
/// attempt's request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageSpec {
    /// Where to deliver: an `http://` or `https://` URL.
    pub url: String,
    /// The HTTP method (default `POST`).
    pub method: String,
    /// Headers to send, lower-case names.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The body, sent byte for byte on every attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The target (`tgt_…`) whose secret signs and whose limits apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The wire format of the signature.
    #[serde(default)]
    pub signature_profile: SignatureProfile,
    /// Waits between attempts, ms, instead of the dispatcher's schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_schedule_ms: Option<Vec<u64>>,
}

impl MessageSpec {
    /// A `POST` of `body` to `url`, signed with the server's key ring.
    pub fn post(url: impl Into<String>, body: Option<String>) -> Self {
        Self {
            url: url.into(),
            method: "POST".into(),
            headers: BTreeMap::new(),
            body,
            target: None,
            signature_profile: SignatureProfile::Standard,
            retry_schedule_ms: None,
        }
    }

    /// Reads a stored spec (the args of a message envelope).
    pub fn from_args(args: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(args)
            .map_err(|e| format!("the stored message is not a valid message spec: {e}"))
    }

    /// Checks every field and returns the parsed URL. Errors name the field.
    pub fn validate(&self) -> Result<url::Url, RuntimeError> {
        if let Some(target) = &self.target {
            TargetId::parse(target).map_err(|e| RuntimeError::field("target", e.to_string()))?;
        }
        self.validate_fields(self.target.is_some())
    }

    /// Every check but the target id's form; `has_target` says whether a
    /// target will sign.
    fn validate_fields(&self, has_target: bool) -> Result<url::Url, RuntimeError> {
        let url = rules::http_url("url", &self.url)?;
        rules::method(&self.method)?;
        rules::message_header_count(self.headers.len())?;
        for (name, value) in &self.headers {
            rules::message_header(name, value)?;
        }
        if let Some(body) = &self.body {
            rules::message_body(body)?;
        }
        if !has_target && !self.signature_profile.signs_with_key_ring() {
            return Err(RuntimeError::field(
                "signature_profile",
                format!(
                    "{} signs with a shared secret: register a target (POST /v1/targets) and name it in `target`; without a target only standard and svix can be used",
                    self.signature_profile
                ),
            ));
        }
        if let Some(steps) = &self.retry_schedule_ms {
            self.retry_schedule_with(steps)?;
        }
        Ok(url)
    }

    fn retry_schedule_with(&self, steps: &[u64]) -> Result<Vec<Duration>, RuntimeError> {
        Ok(rules::retry_steps(steps)?)
    }

    /// The schedule for this message: its own steps with `default`'s
    /// jitter, or `default`.
    pub fn retry_schedule(&self, default: &RetrySchedule) -> RetrySchedule {
        match self
            .retry_schedule_ms
            .as_deref()
            .and_then(|s| self.retry_schedule_with(s).ok())
        {
            Some(steps) => default.with_steps(steps),
            None => default.clone(),
        }
    }
}

/// A time given as integer unix milliseconds or RFC 3339 text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct UnixMs(pub i64);

impl<'de> Deserialize<'de> for UnixMs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = UnixMs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 time string or integer unix milliseconds")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<UnixMs, E> {
                Ok(UnixMs(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<UnixMs, E> {
                i64::try_from(v)
                    .map(UnixMs)
                    .map_err(|_| E::custom("unix milliseconds out of range"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<UnixMs, E> {
                crate::times::parse_time_ms(v)
                    .map(UnixMs)
                    .map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A message to publish: the body of `POST /v1/messages`.
///
/// `body` may be a JSON string (sent as it is) or any other JSON value
/// (sent as the JSON text given, with `content-type: application/json`
/// unless a content type is set in `headers`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    /// Where to deliver: `http://` or `https://`, no user info.
    pub url: String,
    /// HTTP method (default `POST`).
    #[serde(default)]
    pub method: Option<String>,
    /// Headers to send.
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    /// The body: a string, or JSON.
    #[serde(default)]
    pub body: Option<Box<RawValue>>,
    /// A target's id (`tgt_…`) or name: its secret signs, its limits apply.
    #[serde(default)]
    pub target: Option<String>,
    /// `standard` (default), `svix`, `stromboli`, `krafter`, `github`, `stripe`.
    #[serde(default)]
    pub signature_profile: Option<String>,
    /// Where a signed callback goes when the message is delivered or dead.
    #[serde(default)]
    pub callback_url: Option<String>,
    /// First attempt no sooner than this many ms from now.
    #[serde(default)]
    pub delay_ms: Option<i64>,
    /// First attempt no sooner than this time.
    #[serde(default)]
    pub not_before: Option<UnixMs>,
    /// Attempts allowed (default: the retry schedule's steps + 1).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Waits between attempts in ms (default: the server's schedule).
    #[serde(default)]
    pub retry_schedule_ms: Option<Vec<u64>>,
    /// Makes publishing exactly-once per key, like the `Idempotency-Key`
    /// header (both may be given only if they agree). How an item of
    /// `POST /v1/messages/batch` carries its key. Not part of the request
    /// the key identifies.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

impl NewMessage {
    /// A `POST` to `url` with no body; set the other fields directly.
    pub fn to_url(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            method: None,
            headers: None,
            body: None,
            target: None,
            signature_profile: None,
            callback_url: None,
            delay_ms: None,
            not_before: None,
            max_attempts: None,
            retry_schedule_ms: None,
            idempotency_key: None,
        }
    }

    /// Parses the JSON of a message (a `POST /v1/messages` body, or the
    /// `message` of a schedule). Errors name the field.
    pub fn from_json(json: &str) -> Result<Self, RuntimeError> {
        serde_json::from_str(json).map_err(|e| RuntimeError::field("message", e.to_string()))
    }

    /// Checks what can be checked without the store: everything but the
    /// target's existence. Errors name the field.
    pub fn validate(&self) -> Result<(), RuntimeError> {
        self.checked().map(|_| ())
    }

    /// [`NewMessage::validate`], returning the spec (without a target id:
    /// the caller resolves `target`) and its parsed URL, so that a
    /// publisher builds and parses them once.
    pub(super) fn checked(&self) -> Result<(MessageSpec, url::Url), RuntimeError> {
        let spec = self.to_spec()?;
        let url = spec.validate_fields(self.target.is_some())?;
        if self.target.as_deref().is_some_and(str::is_empty) {
            return Err(RuntimeError::field(
                "target",
                "is empty; give a target id or name",
            ));
        }
        self.timing(0)?;
        if let Some(url) = &self.callback_url {
            rules::callback_url(url)?;
        }
        if let Some(n) = self.max_attempts {
            rules::message_max_attempts(n)?;
        }
        Ok((spec, url))
    }

    /// The spec, without a target id (the publisher resolves `target`).
    fn to_spec(&self) -> Result<MessageSpec, RuntimeError> {
        let method = match &self.method {
            Some(m) => {
                rules::method(m)?;
                m.clone()
            }
            None => "POST".to_owned(),
        };
        let mut headers = BTreeMap::new();
        let given = self.headers.as_ref();
        rules::message_header_count(given.map_or(0, BTreeMap::len))?;
        for (name, value) in given.into_iter().flatten() {
            let lower = name.to_ascii_lowercase();
            rules::message_header(name, value)?;
            if headers.insert(lower.clone(), value.clone()).is_some() {
                return Err(RuntimeError::field(
                    format!("headers.{name}"),
                    format!("{lower} is given twice (header names are case-insensitive)"),
                ));
            }
        }
        let (body, json) = match &self.body {
            None => (None, false),
            Some(raw) => match serde_json::from_str::<String>(raw.get()) {
                Ok(text) => (Some(text), false),
                Err(_) => (Some(raw.get().to_owned()), true),
            },
        };
        if json && !headers.contains_key("content-type") {
            headers.insert("content-type".into(), "application/json".into());
        }
        let signature_profile = match &self.signature_profile {
            Some(name) => SignatureProfile::parse(name)?,
            None => SignatureProfile::Standard,
        };
        Ok(MessageSpec {
            url: self.url.clone(),
            method,
            headers,
            body,
            target: None,
            signature_profile,
            retry_schedule_ms: self.retry_schedule_ms.clone(),
        })
    }

    /// `not_before` from `delay_ms` or `not_before`, checked against `now_ms`
    /// (`validate` passes 0: the absolute time is checked when publishing).
    pub(super) fn timing(&self, now_ms: i64) -> Result<Option<i64>, RuntimeError> {
        let now = (now_ms > 0).then_some(now_ms);
        Ok(rules::first_run(
            now,
            self.delay_ms,
            self.not_before.map(|t| t.0),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(json: &str) -> Result<MessageSpec, RuntimeError> {
        NewMessage::from_json(json)?.checked().map(|(spec, _)| spec)
    }

    fn field_of(e: RuntimeError) -> String {
        match e {
            RuntimeError::InvalidField(e) => e.field().to_owned(),
            other => panic!("expected a field error, got {other}"),
        }
    }

    #[test]
    fn a_json_body_is_kept_as_given_and_typed() {
        let s = msg(r#"{"url":"https://example.com/hook","body":{"a": [1, 2]}}"#).unwrap();
        assert_eq!(s.body.as_deref(), Some(r#"{"a": [1, 2]}"#));
        assert_eq!(s.headers["content-type"], "application/json");
        assert_eq!(s.method, "POST");
        let s = msg(r#"{"url":"https://example.com/","body":"plain text","headers":{"Content-Type":"text/plain"}}"#).unwrap();
        assert_eq!(s.body.as_deref(), Some("plain text"));
        assert_eq!(s.headers["content-type"], "text/plain");
        let s = msg(r#"{"url":"https://example.com/","body":{"x":1},"headers":{"Content-Type":"application/cloudevents+json"}}"#).unwrap();
        assert_eq!(s.headers["content-type"], "application/cloudevents+json");
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            (r#"{"url":"ftp://example.com/"}"#, "url"),
            (r#"{"url":"not a url"}"#, "url"),
            (r#"{"url":"https://user:pw@example.com/"}"#, "url"),
            (r#"{"url":"https://example.com/#frag"}"#, "url"),
            (
                r#"{"url":"https://example.com/","method":"GE T"}"#,
                "method",
            ),
            (
                r#"{"url":"https://example.com/","method":"CONNECT"}"#,
                "method",
            ),
            (
                r#"{"url":"https://example.com/","headers":{"Host":"evil"}}"#,
                "headers.Host",
            ),
            (
                r#"{"url":"https://example.com/","headers":{"webhook-signature":"v1,x"}}"#,
                "headers.webhook-signature",
            ),
            (
                r#"{"url":"https://example.com/","headers":{"Transfer-Encoding":"chunked"}}"#,
                "headers.Transfer-Encoding",
            ),
            (
                r#"{"url":"https://example.com/","headers":{"X-Ok":"a\nb"}}"#,
                "headers.X-Ok",
            ),
            (
                r#"{"url":"https://example.com/","headers":{"bad name":"v"}}"#,
                "headers.bad name",
            ),
            (
                r#"{"url":"https://example.com/","headers":{"X-A":"1","x-a":"2"}}"#,
                "headers.x-a",
            ),
            (
                r#"{"url":"https://example.com/","signature_profile":"hookdeck"}"#,
                "signature_profile",
            ),
            (
                r#"{"url":"https://example.com/","signature_profile":"github"}"#,
                "signature_profile",
            ),
            (
                r#"{"url":"https://example.com/","delay_ms":-1}"#,
                "delay_ms",
            ),
            (
                r#"{"url":"https://example.com/","delay_ms":1,"not_before":5}"#,
                "delay_ms",
            ),
            (
                r#"{"url":"https://example.com/","max_attempts":0}"#,
                "max_attempts",
            ),
            (
                r#"{"url":"https://example.com/","retry_schedule_ms":[]}"#,
                "retry_schedule_ms",
            ),
            (
                r#"{"url":"https://example.com/","retry_schedule_ms":[999999999999]}"#,
                "retry_schedule_ms",
            ),
            (
                r#"{"url":"https://example.com/","callback_url":"file:///etc/passwd"}"#,
                "callback_url",
            ),
            (r#"{"url":"https://example.com/","nope":1}"#, "message"),
        ];
        for (json, field) in cases {
            let e = msg(json).expect_err(json);
            assert_eq!(field_of(e), field, "{json}");
        }
        let big = format!(
            r#"{{"url":"https://example.com/","body":"{}"}}"#,
            "x".repeat(rules::MAX_MESSAGE_BODY_BYTES + 1)
        );
        assert_eq!(field_of(msg(&big).unwrap_err()), "body");
        // A profile with a shared secret is fine once a target is named.
        assert!(msg(
            r#"{"url":"https://example.com/","signature_profile":"github","target":"billing"}"#
        )
        .is_ok());
    }

    #[test]
    fn specs_round_trip_through_args() {
        let s = msg(r#"{"url":"https://example.com/a?b=c","method":"PUT","headers":{"X-Tenant":"acme"},"body":"hi","retry_schedule_ms":[10,20]}"#).unwrap();
        let args = serde_json::to_vec(&s).unwrap();
        assert_eq!(MessageSpec::from_args(&args).unwrap(), s);
        assert_eq!(s.headers["x-tenant"], "acme");
        assert!(MessageSpec::from_args(b"{\"url\":1}").is_err());
    }

    #[test]
    fn a_message_schedule_overrides_the_default_keeping_its_jitter() {
        let mut s = MessageSpec::post("https://example.com/", None);
        s.retry_schedule_ms = Some(vec![1, 2]);
        let d = RetrySchedule::default().with_jitter(0.0);
        let r = s.retry_schedule(&d);
        assert_eq!(
            r.steps(),
            [Duration::from_millis(1), Duration::from_millis(2)]
        );
        assert_eq!(r.default_max_attempts(), 3);
        assert_eq!(r.jitter(), 0.0);
    }

    #[test]
    fn times_are_rfc3339_or_unix_ms() {
        let m = NewMessage::from_json(
            r#"{"url":"https://e.com/","not_before":"2030-01-02T03:04:05Z"}"#,
        )
        .unwrap();
        assert_eq!(m.not_before, Some(UnixMs(1_893_553_445_000)));
        let m = NewMessage::from_json(r#"{"url":"https://e.com/","not_before":1893553445000}"#)
            .unwrap();
        assert_eq!(m.not_before, Some(UnixMs(1_893_553_445_000)));
        assert!(
            NewMessage::from_json(r#"{"url":"https://e.com/","not_before":"tomorrow"}"#).is_err()
        );
    }
}
