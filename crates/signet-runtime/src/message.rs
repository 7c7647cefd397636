//! Messages: HTTP requests Signet delivers, signed, with retries.
//!
//! A message is stored as a task on the reserved queue
//! [`MESSAGE_QUEUE`](signet_store::MESSAGE_QUEUE) with the task name
//! [`MESSAGE_TASK_NAME`](signet_store::MESSAGE_TASK_NAME) and a `msg_…` id.
//! Its args are the [`MessageSpec`] as JSON, signed at rest with the
//! server's key ring like any task, so durability, leases, idempotency, dead
//! letters and replay are the task queue's, and a message changed in the
//! database is refused by the dispatcher (`signature-invalid`).
//!
//! [`NewMessage`] is what a caller asks for (the body of
//! `POST /v1/messages`); [`MessageProducer::publish`] checks it, turns it
//! into a [`MessageSpec`], signs and enqueues it.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use signet_sign::TaskEnvelope;
use signet_store::rules::{self, excerpt};
use signet_store::{
    Enqueued, MessageId, NewTask, StoreError, TargetId, TargetRecord, MESSAGE_QUEUE,
    MESSAGE_TASK_NAME,
};

use crate::error::RuntimeError;
use crate::producer::Producer;
use crate::targets::TargetService;

/// The default retry schedule: the waits after the 1st, 2nd, … failed
/// attempt. A message gets one attempt more than there are steps.
pub const DEFAULT_RETRY_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];
/// Default jitter: each wait is moved by up to ±20 %.
pub const DEFAULT_JITTER: f64 = 0.2;
/// How a message's requests are signed: the wire format of receivers that
/// already exist. Only `standard` and `svix` work without a target (they
/// sign with the server's key ring); the others need a target's secret.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureProfile {
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    #[default]
    Standard,
    /// Svix: the same scheme with `svix-*` header names.
    Svix,
    /// Stromboli: `X-Stromboli-Timestamp`, `X-Stromboli-Signature`.
    Stromboli,
    /// Krafter: `x-krafter-signature` over the body only.
    Krafter,
    /// GitHub: `X-Hub-Signature-256` over the body only.
    Github,
    /// Stripe: `Stripe-Signature: t=…,v1=…`.
    Stripe,
}

impl SignatureProfile {
    /// Every profile.
    pub const ALL: [SignatureProfile; 6] = [
        SignatureProfile::Standard,
        SignatureProfile::Svix,
        SignatureProfile::Stromboli,
        SignatureProfile::Krafter,
        SignatureProfile::Github,
        SignatureProfile::Stripe,
    ];

    /// The name in the API.
    pub fn as_str(self) -> &'static str {
        self.profile().as_str()
    }

    /// The `signet-sign` profile that signs.
    pub fn profile(self) -> signet_sign::Profile {
        match self {
            SignatureProfile::Standard => signet_sign::Profile::Standard,
            SignatureProfile::Svix => signet_sign::Profile::Svix,
            SignatureProfile::Stromboli => signet_sign::Profile::Stromboli,
            SignatureProfile::Krafter => signet_sign::Profile::Krafter,
            SignatureProfile::Github => signet_sign::Profile::Github,
            SignatureProfile::Stripe => signet_sign::Profile::Stripe,
        }
    }

    /// Whether the server's key ring can sign this profile (no target needed).
    pub fn signs_with_key_ring(self) -> bool {
        matches!(self, SignatureProfile::Standard | SignatureProfile::Svix)
    }

    /// Parses a name; the error lists the valid ones.
    pub fn parse(name: &str) -> Result<Self, RuntimeError> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|p| p.as_str()).collect();
                RuntimeError::field(
                    "signature_profile",
                    format!(
                        "{:?} is not a profile; use one of {}",
                        excerpt(name),
                        names.join(", ")
                    ),
                )
            })
    }
}

impl fmt::Display for SignatureProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When to retry a failed delivery: a wait after each failed attempt,
/// moved by a random jitter so receivers recovering from an outage are not
/// hit by every retry at once.
#[derive(Clone, Debug, PartialEq)]
pub struct RetrySchedule {
    steps: Vec<Duration>,
    jitter: f64,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self {
            steps: DEFAULT_RETRY_SCHEDULE.to_vec(),
            jitter: DEFAULT_JITTER,
        }
    }
}

impl RetrySchedule {
    /// A schedule of these waits with the default jitter. At least one step.
    pub fn new(steps: Vec<Duration>) -> Result<Self, RuntimeError> {
        if steps.is_empty() {
            return Err(RuntimeError::Config(
                "a retry schedule needs at least one step".into(),
            ));
        }
        Ok(Self {
            steps,
            jitter: DEFAULT_JITTER,
        })
    }

    /// The same waits moved by up to `±fraction` (0 for an exact schedule;
    /// clamped to `0..=1`).
    pub fn with_jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// The waits.
    pub fn steps(&self) -> &[Duration] {
        &self.steps
    }

    /// The jitter fraction.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// Attempts a message gets by default: one more than the steps.
    pub fn default_max_attempts(&self) -> u32 {
        u32::try_from(self.steps.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }

    /// The wait after attempt `attempt` (1-based) failed: its step (the last
    /// step repeats), moved by the jitter.
    pub fn delay_after<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
        let index = usize::try_from(attempt.saturating_sub(1))
            .unwrap_or(usize::MAX)
            .min(self.steps.len().saturating_sub(1));
        let Some(step) = self.steps.get(index) else {
            return Duration::ZERO;
        };
        if self.jitter == 0.0 {
            return *step;
        }
        let factor = 1.0 + rng.gen_range(-self.jitter..=self.jitter);
        step.mul_f64(factor.max(0.0))
    }
}

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
            Some(steps) => RetrySchedule {
                steps,
                jitter: default.jitter,
            },
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
                let t = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| E::custom(format!("{:?} is not an RFC 3339 time like 2030-01-02T03:04:05Z; unix milliseconds also work", excerpt(v))))?;
                i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
                    .map(UnixMs)
                    .map_err(|_| E::custom("time out of range"))
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
        let spec = self.to_spec(None)?;
        spec.validate_fields(self.target.is_some())?;
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
        Ok(())
    }

    /// The spec, with the target resolved to `target_id`.
    fn to_spec(&self, target_id: Option<String>) -> Result<MessageSpec, RuntimeError> {
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
            target: target_id,
            signature_profile,
            retry_schedule_ms: self.retry_schedule_ms.clone(),
        })
    }

    /// `not_before` from `delay_ms` or `not_before`, checked against `now_ms`
    /// (`validate` passes 0: the absolute time is checked when publishing).
    fn timing(&self, now_ms: i64) -> Result<Option<i64>, RuntimeError> {
        let now = (now_ms > 0).then_some(now_ms);
        Ok(rules::first_run(
            now,
            self.delay_ms,
            self.not_before.map(|t| t.0),
        )?)
    }
}

/// Publishing options beside the spec.
#[derive(Clone, Debug, Default)]
pub struct PublishOptions {
    /// First attempt no sooner than this (unix ms).
    pub not_before_ms: Option<i64>,
    /// Attempts allowed (default: the schedule's steps + 1).
    pub max_attempts: Option<u32>,
    /// Where the callback goes when the message finishes.
    pub callback_url: Option<String>,
    /// Makes publishing exactly-once per key.
    pub idempotency_key: Option<String>,
}

/// How long a target looked up for publishing is reused. A change made on
/// another node (a new prefix, a deleted target) reaches publishing within
/// this time; the dispatcher checks the target again at every delivery.
pub const PUBLISH_TARGET_CACHE_TTL: Duration = Duration::from_secs(1);

/// A target found for publishing, and the profiles its secret was checked
/// against.
#[derive(Clone)]
struct CachedTarget {
    at: std::time::Instant,
    generation: u64,
    record: TargetRecord,
    profiles_ok: Vec<SignatureProfile>,
}

/// Recent target lookups by the id or name a message gave.
#[derive(Clone, Default)]
struct PublishCache(Arc<std::sync::Mutex<HashMap<String, CachedTarget>>>);

impl std::fmt::Debug for PublishCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PublishCache")
    }
}

impl PublishCache {
    fn get(&self, key: &str, generation: u64) -> Option<CachedTarget> {
        let cache = self.0.lock().ok()?;
        cache
            .get(key)
            .filter(|c| c.generation == generation && c.at.elapsed() < PUBLISH_TARGET_CACHE_TTL)
            .cloned()
    }

    fn put(&self, key: &str, record: TargetRecord, profile: SignatureProfile, generation: u64) {
        let Ok(mut cache) = self.0.lock() else {
            return;
        };
        if cache.len() >= 4096 {
            cache.retain(|_, c| c.at.elapsed() < PUBLISH_TARGET_CACHE_TTL);
        }
        let now = std::time::Instant::now();
        match cache.get_mut(key) {
            Some(c)
                if c.record.id == record.id && c.record.updated_at_ms == record.updated_at_ms =>
            {
                if !c.profiles_ok.contains(&profile) {
                    c.profiles_ok.push(profile);
                }
            }
            _ => {
                cache.insert(
                    key.to_owned(),
                    CachedTarget {
                        at: now,
                        generation,
                        record,
                        profiles_ok: vec![profile],
                    },
                );
            }
        }
    }
}

/// Signs and enqueues messages. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MessageProducer {
    producer: Producer,
    targets: TargetService,
    retry: RetrySchedule,
    cache: PublishCache,
}

impl MessageProducer {
    /// Publishes with `producer` (its ring signs messages at rest and, for
    /// messages without a target, the requests too), resolving targets with
    /// `targets`.
    pub fn new(producer: Producer, targets: TargetService) -> Self {
        Self {
            producer,
            targets,
            retry: RetrySchedule::default(),
            cache: PublishCache::default(),
        }
    }

    /// The dispatcher's default schedule, which sets the default number of
    /// attempts.
    pub fn retry_schedule(mut self, schedule: RetrySchedule) -> Self {
        self.retry = schedule;
        self
    }

    /// The target service.
    pub fn targets(&self) -> &TargetService {
        &self.targets
    }

    /// Whether messages without a target can be signed (the ring has a key
    /// that signs).
    pub fn can_sign_without_target(&self) -> bool {
        self.producer.ring().active().is_some_and(|k| k.can_sign())
    }

    /// Checks `message`, resolves its target, signs and enqueues it. With an
    /// `idempotency_key` already used by a message, returns that message and
    /// `created: false`.
    pub async fn publish(
        &self,
        message: NewMessage,
        idempotency_key: Option<String>,
    ) -> Result<Enqueued, RuntimeError> {
        message.validate()?;
        let now = self.producer.now_ms();
        // A target (and whether its secret signs the profile) is looked up
        // once per PUBLISH_TARGET_CACHE_TTL, not for every message.
        // Read the generation before the target: a change that lands in
        // between leaves the entry stale, never the other way round.
        let generation = self.targets.generation();
        let cached = message
            .target
            .as_deref()
            .and_then(|name| self.cache.get(name, generation));
        let target = match (&message.target, &cached) {
            (Some(_), Some(c)) => Some(c.record.clone()),
            (Some(name), None) => Some(self.resolve_target(name).await?),
            (None, _) => None,
        };
        let spec = message.to_spec(target.as_ref().map(|t| t.id.clone()))?;
        if let (Some(target), Some(name)) = (&target, &message.target) {
            // Every field was checked by `message.validate()`; only the URL
            // is needed again, for the target's prefix.
            let url = rules::http_url("url", &spec.url)?;
            check_target_url(target, &url).map_err(|m| RuntimeError::field("url", m))?;
            let checked = cached
                .as_ref()
                .is_some_and(|c| c.profiles_ok.contains(&spec.signature_profile));
            if !checked {
                self.check_target_secret(target, spec.signature_profile)
                    .await?;
                self.cache
                    .put(name, target.clone(), spec.signature_profile, generation);
            }
        }
        let options = PublishOptions {
            not_before_ms: message.timing(now)?,
            max_attempts: message.max_attempts,
            callback_url: message.callback_url,
            idempotency_key,
        };
        self.enqueue_spec(spec, options).await
    }

    /// Enqueues a checked spec (callbacks, schedules). The spec is validated
    /// again; a target is not looked up.
    pub async fn publish_spec(
        &self,
        spec: MessageSpec,
        options: PublishOptions,
    ) -> Result<Enqueued, RuntimeError> {
        spec.validate()?;
        if let Some(url) = &options.callback_url {
            rules::callback_url(url)?;
        }
        self.enqueue_spec(spec, options).await
    }

    /// Signs and enqueues a spec whose fields and callback URL were checked.
    async fn enqueue_spec(
        &self,
        spec: MessageSpec,
        options: PublishOptions,
    ) -> Result<Enqueued, RuntimeError> {
        if spec.target.is_none() && !self.can_sign_without_target() {
            return Err(RuntimeError::field(
                "target",
                "this server has no signing key, and messages without a target are signed with the server's key ring; set SIGNET_SIGNING_KEYS (HMAC, which Standard Webhooks libraries verify) or name a target",
            ));
        }
        if let Some(key) = &options.idempotency_key {
            rules::idempotency_key(key)?;
        }
        let schedule = spec.retry_schedule(&self.retry);
        let max_attempts = options
            .max_attempts
            .unwrap_or_else(|| schedule.default_max_attempts());
        rules::message_max_attempts(max_attempts)?;
        let args = serde_json::to_vec(&spec).map_err(RuntimeError::Args)?;
        rules::message_stored_len(args.len())?;
        let now = self.producer.now_ms();
        let mut task = NewTask {
            envelope: TaskEnvelope {
                id: MessageId::generate().into(),
                queue: MESSAGE_QUEUE.to_owned(),
                name: MESSAGE_TASK_NAME.to_owned(),
                args,
                headers: BTreeMap::new(),
                created_at_ms: now,
                not_before_ms: options.not_before_ms.filter(|at| *at > now),
                expires_at_ms: None,
                max_attempts,
                callback_url: options.callback_url,
            },
            signature: None,
            priority: 0,
            idempotency_key: options.idempotency_key,
        };
        rules::new_task(&task, now)?;
        self.producer.sign_task(&mut task)?;
        let mut out = self.producer.store_batch(vec![task], now).await?;
        let out = out
            .pop()
            .ok_or_else(|| RuntimeError::invalid("the store returned no result for the message"))?;
        if !out.created && out.task.queue() != MESSAGE_QUEUE {
            return Err(RuntimeError::Store(StoreError::Conflict(format!(
                "the idempotency key is already used by task {}; use another key for this message",
                out.task.id()
            ))));
        }
        Ok(out)
    }

    /// A target by id (`tgt_…`) or name.
    async fn resolve_target(&self, name: &str) -> Result<TargetRecord, RuntimeError> {
        self.targets.find(name).await?.ok_or_else(|| {
            RuntimeError::field(
                "target",
                format!(
                    "no target {:?}; register it with POST /v1/targets or give an existing id or name",
                    excerpt(name)
                ),
            )
        })
    }

    /// The target's current secret must work with the profile (a
    /// Standard Webhooks profile needs a `whsec_`/`whsk_` secret).
    async fn check_target_secret(
        &self,
        target: &TargetRecord,
        profile: SignatureProfile,
    ) -> Result<(), RuntimeError> {
        let secrets = self.targets.open(target)?;
        let Some(current) = secrets.current() else {
            return Err(RuntimeError::field(
                "target",
                format!("target {} has no secret", target.name),
            ));
        };
        profile
            .profile()
            .parse_key(current.expose_secret())
            .map(|_| ())
            .map_err(|e| {
                RuntimeError::field(
                    "signature_profile",
                    format!(
                        "the secret of target {} cannot sign {profile}: {}",
                        target.name,
                        e.message()
                    ),
                )
            })
    }
}

#[async_trait::async_trait]
impl crate::scheduler::MessagePublisher for MessageProducer {
    async fn publish(
        &self,
        message: &RawValue,
        idempotency_key: String,
    ) -> Result<bool, RuntimeError> {
        let message = NewMessage::from_json(message.get())?;
        let out = MessageProducer::publish(self, message, Some(idempotency_key)).await?;
        Ok(out.created)
    }
}

/// Whether `url` may be used with `target` (its `url_prefix` and
/// `https_only`); the error names the rule.
pub fn check_target_url(target: &TargetRecord, url: &url::Url) -> Result<(), String> {
    if target.https_only && url.scheme() != "https" {
        return Err(format!(
            "target {} accepts https:// URLs only, got {}://",
            target.name,
            url.scheme()
        ));
    }
    if let Some(prefix) = &target.url_prefix {
        if !url.as_str().starts_with(prefix.as_str()) {
            return Err(format!(
                "the URL does not start with target {}'s url_prefix {prefix}",
                target.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn msg(json: &str) -> Result<MessageSpec, RuntimeError> {
        let m = NewMessage::from_json(json)?;
        m.validate()?;
        m.to_spec(None)
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
    fn the_schedule_repeats_its_last_step_and_jitters_within_bounds() {
        let s = RetrySchedule::default();
        assert_eq!(s.default_max_attempts(), 8);
        let mut rng = StdRng::seed_from_u64(3);
        for attempt in 1..=20u32 {
            let step = DEFAULT_RETRY_SCHEDULE[(attempt as usize - 1).min(6)];
            let d = s.delay_after(attempt, &mut rng);
            assert!(
                d >= step.mul_f64(0.8) && d <= step.mul_f64(1.2),
                "{attempt}: {d:?}"
            );
        }
        let exact = RetrySchedule::new(vec![Duration::from_millis(10), Duration::from_millis(30)])
            .unwrap()
            .with_jitter(0.0);
        let got: Vec<_> = (1..=4)
            .map(|a| exact.delay_after(a, &mut rng).as_millis())
            .collect();
        assert_eq!(got, [10, 30, 30, 30]);
        assert!(RetrySchedule::new(Vec::new()).is_err());
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
