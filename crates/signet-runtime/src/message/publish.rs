//! Publishing: [`MessageProducer`] checks a message, resolves its target,
//! signs it at rest and enqueues it; [`MessagePublisher`] is how the
//! scheduler publishes the message a schedule fires.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::value::RawValue;
use signet_sign::TaskEnvelope;
use signet_store::rules::{self, excerpt};
use signet_store::{
    Enqueued, Fingerprint, IdempotencyScope, MessageId, NewTask, MESSAGE_QUEUE, MESSAGE_TASK_NAME,
};

use super::profile::SignatureProfile;
use super::retry::RetrySchedule;
use super::spec::{MessageSpec, NewMessage};
use crate::error::RuntimeError;
use crate::producer::{check_batch_len, Producer, MAX_BATCH_TASKS};
use crate::ssrf::SsrfPolicy;
use crate::targets::{check_url, CachedTarget, Lookup, TargetCache, TargetService};

/// Publishing options beside the spec.
#[derive(Clone, Debug, Default)]
pub struct PublishOptions {
    /// First attempt no sooner than this (unix ms).
    pub not_before_ms: Option<i64>,
    /// Attempts allowed (default: the schedule's steps + 1).
    pub max_attempts: Option<u32>,
    /// Where the callback goes when the message finishes.
    pub callback_url: Option<String>,
    /// Makes publishing exactly-once per key: the same message again
    /// returns the first one, a different one under the key is a
    /// [`RuntimeError::IdempotencyConflict`].
    pub idempotency_key: Option<String>,
    /// Whose key it is (default [`IdempotencyScope::Local`]).
    pub idempotency_scope: IdempotencyScope,
}

/// The first attempt's time as the publisher asked for it (before a delay
/// was resolved against now), for the fingerprint.
#[derive(Clone, Copy, Debug, Default)]
struct AskedTiming {
    delay_ms: Option<i64>,
    not_before_ms: Option<i64>,
}

/// How long a target looked up for publishing is reused. A change made on
/// another node (a new prefix, a deleted target) reaches publishing within
/// this time; the dispatcher checks the target again at every delivery.
pub const PUBLISH_TARGET_CACHE_TTL: Duration = Duration::from_secs(1);

/// Most messages in one [`MessageProducer::publish_batch_as`] (and one
/// `POST /v1/messages/batch`): the task batch's limit, since a message is
/// stored as a task.
pub const MAX_BATCH_MESSAGES: usize = MAX_BATCH_TASKS;

/// Signs and enqueues messages. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MessageProducer {
    producer: Producer,
    targets: TargetService,
    retry: RetrySchedule,
    /// Targets by the id or name messages give, with the profiles their
    /// current secret was checked against.
    cache: Arc<TargetCache>,
    /// The policy the dispatcher delivers under, to refuse IP literals it
    /// would refuse before they are stored; `None` leaves every check to
    /// delivery.
    ssrf: Option<SsrfPolicy>,
}

impl MessageProducer {
    /// Publishes with `producer` (its ring signs messages at rest and, for
    /// messages without a target, the requests too), resolving targets with
    /// `targets`.
    pub fn new(producer: Producer, targets: TargetService) -> Self {
        Self {
            producer,
            cache: Arc::new(TargetCache::new(
                targets.clone(),
                Lookup::IdOrName,
                PUBLISH_TARGET_CACHE_TTL,
            )),
            targets,
            retry: RetrySchedule::default(),
            ssrf: None,
        }
    }

    /// Refuses at publish a URL whose host is an IP literal `policy`
    /// refuses (give it the policy the dispatcher delivers under): the
    /// caller gets a `url` field error naming the address, the rule and
    /// the setting that allows it, instead of a message that can only be
    /// dead-lettered `target-refused`. Names are judged at delivery.
    pub fn ssrf_policy(mut self, policy: SsrfPolicy) -> Self {
        self.ssrf = Some(policy);
        self
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
    /// `idempotency_key` already used by the same message, returns that
    /// message and `created: false`; by a different one, fails with
    /// [`RuntimeError::IdempotencyConflict`]. The key is in the
    /// [`IdempotencyScope::Local`] scope; see [`MessageProducer::publish_as`].
    pub async fn publish(
        &self,
        message: NewMessage,
        idempotency_key: Option<String>,
    ) -> Result<Enqueued, RuntimeError> {
        self.publish_as(message, idempotency_key, IdempotencyScope::Local)
            .await
    }

    /// [`MessageProducer::publish`] with the key in `scope` (the server
    /// passes the caller's API key, the scheduler
    /// [`IdempotencyScope::System`]).
    pub async fn publish_as(
        &self,
        message: NewMessage,
        idempotency_key: Option<String>,
        idempotency_scope: IdempotencyScope,
    ) -> Result<Enqueued, RuntimeError> {
        let now = self.producer.now_ms();
        let task = self
            .prepare(message, idempotency_key, idempotency_scope, now)
            .await?;
        self.store_one(task, now).await
    }

    /// Publishes 1 to [`MAX_BATCH_MESSAGES`] messages at once, all or none,
    /// in order, each checked as [`MessageProducer::publish_as`] checks one
    /// and carrying its own [`NewMessage::idempotency_key`]: one store write
    /// (one commit) for the whole batch instead of one per message. A
    /// refused message refuses the batch with
    /// [`RuntimeError::BatchItem`] naming it, and nothing is stored. A
    /// message whose key was already used with the same request is the first
    /// message, `created: false`.
    pub async fn publish_batch_as(
        &self,
        messages: Vec<NewMessage>,
        idempotency_scope: IdempotencyScope,
    ) -> Result<Vec<Enqueued>, RuntimeError> {
        check_batch_len("messages", messages.len())?;
        let now = self.producer.now_ms();
        let mut tasks = Vec::with_capacity(messages.len());
        for (index, message) in messages.into_iter().enumerate() {
            let task = self
                .prepare(message, None, idempotency_scope.clone(), now)
                .await
                .map_err(|error| RuntimeError::BatchItem {
                    index,
                    error: Box::new(error),
                })?;
            tasks.push(task);
        }
        self.producer.store_items(tasks, now).await
    }

    /// Checks `message`, resolves its target and builds its signed task.
    /// `idempotency_key` (the header's) and the message's own key must
    /// agree when both are given.
    async fn prepare(
        &self,
        mut message: NewMessage,
        idempotency_key: Option<String>,
        idempotency_scope: IdempotencyScope,
        now: i64,
    ) -> Result<NewTask, RuntimeError> {
        let idempotency_key = match (idempotency_key, message.idempotency_key.take()) {
            (Some(header), Some(body)) if header != body => {
                return Err(RuntimeError::field(
                    "idempotency_key",
                    "differs from the Idempotency-Key header; send the key once",
                ))
            }
            (header, body) => header.or(body),
        };
        let (mut spec, url) = message.checked()?;
        let asked = AskedTiming {
            delay_ms: message.delay_ms,
            not_before_ms: message.not_before.map(|t| t.0),
        };
        // A target (and whether its secret signs the profile) is looked up
        // once per PUBLISH_TARGET_CACHE_TTL, not for every message.
        let target = match &message.target {
            Some(name) => Some(self.resolve_target(name).await?),
            None => None,
        };
        spec.target = target.as_ref().map(|t| t.record.id.clone());
        if let Some(policy) = &self.ssrf {
            policy.refuse_early("url", &url)?;
        }
        if let Some(target) = &target {
            check_url(&target.record, &url).map_err(|m| RuntimeError::field("url", m))?;
            let profile = spec.signature_profile;
            target.check_once(profile.profile(), || check_target_secret(target, profile))?;
        }
        let options = PublishOptions {
            not_before_ms: message.timing(now)?,
            max_attempts: message.max_attempts,
            callback_url: message.callback_url,
            idempotency_key,
            idempotency_scope,
        };
        self.task_of(spec, options, asked, now)
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
        let asked = AskedTiming {
            delay_ms: None,
            not_before_ms: options.not_before_ms,
        };
        let now = self.producer.now_ms();
        let task = self.task_of(spec, options, asked, now)?;
        self.store_one(task, now).await
    }

    /// Stores one message's task.
    async fn store_one(&self, task: NewTask, now: i64) -> Result<Enqueued, RuntimeError> {
        let mut out = self.producer.store_batch(vec![task], now).await?;
        // Keys are per kind: a task holding the same key is not this
        // message's business, and never comes back here.
        out.pop()
            .ok_or_else(|| RuntimeError::invalid("the store returned no result for the message"))
    }

    /// The signed task of a spec whose fields and callback URL were checked.
    fn task_of(
        &self,
        spec: MessageSpec,
        options: PublishOptions,
        asked: AskedTiming,
        now: i64,
    ) -> Result<NewTask, RuntimeError> {
        if spec.target.is_none() && !self.can_sign_without_target() {
            return Err(RuntimeError::field(
                "target",
                "this server has no signing key, and messages without a target are signed with the server's key ring; set SIGNET_SIGNING_KEYS (HMAC, which Standard Webhooks libraries verify) or name a target",
            ));
        }
        let schedule = spec.retry_schedule(&self.retry);
        let max_attempts = options
            .max_attempts
            .unwrap_or_else(|| schedule.default_max_attempts());
        rules::message_max_attempts(max_attempts)?;
        let args = serde_json::to_vec(&spec).map_err(RuntimeError::Args)?;
        rules::message_stored_len(args.len())?;
        let fingerprint = match options.idempotency_key {
            Some(_) => message_fingerprint(&spec, &options, asked)?,
            None => Fingerprint::new(),
        };
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
            idempotency_scope: options.idempotency_scope,
            fingerprint,
        };
        // The task rules, the idempotency key and the callback URL included.
        task.check_rules(now)?;
        self.producer.sign_task(&mut task)?;
        Ok(task)
    }

    /// A target by id (`tgt_…`) or name, with its secrets opened.
    async fn resolve_target(&self, name: &str) -> Result<Arc<CachedTarget>, RuntimeError> {
        self.cache.get(name).await?.ok_or_else(|| {
            RuntimeError::field(
                "target",
                format!(
                    "no target {:?}; register it with POST /v1/targets or give an existing id or name",
                    excerpt(name)
                ),
            )
        })
    }
}

/// The fields of a message request that make it "the same request", named
/// as `POST /v1/messages` names them: the request (`url`, `method`,
/// `headers`, `body`, `target`, `signature_profile`, `retry_schedule_ms`),
/// `callback_url`, `max_attempts`, and the first attempt's time as asked
/// (`delay_ms`, `not_before`). Not included: the message id, the creation
/// time, the signatures and the key itself.
fn message_fingerprint(
    spec: &MessageSpec,
    options: &PublishOptions,
    asked: AskedTiming,
) -> Result<Fingerprint, RuntimeError> {
    const REQUEST_FIELDS: [&str; 7] = [
        "url",
        "method",
        "headers",
        "body",
        "target",
        "signature_profile",
        "retry_schedule_ms",
    ];
    let request = serde_json::to_value(spec).map_err(RuntimeError::Args)?;
    let mut print = Fingerprint::new();
    for name in REQUEST_FIELDS {
        let value = match request.get(name) {
            Some(v) => Some(serde_json::to_vec(v).map_err(RuntimeError::Args)?),
            None => None,
        };
        print = print.optional(name, value);
    }
    Ok(print
        .optional("callback_url", options.callback_url.as_deref())
        .optional("max_attempts", options.max_attempts.map(|n| n.to_string()))
        .optional("delay_ms", asked.delay_ms.map(|d| d.to_string()))
        .optional("not_before", asked.not_before_ms.map(|t| t.to_string())))
}

/// The target's current secret must work with the profile (a Standard
/// Webhooks profile needs a `whsec_`/`whsk_` secret).
fn check_target_secret(
    target: &CachedTarget,
    profile: SignatureProfile,
) -> Result<(), RuntimeError> {
    let name = &target.record.name;
    let Some(current) = target.secrets.current() else {
        return Err(RuntimeError::field(
            "target",
            format!("target {name} has no secret"),
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
                    "the secret of target {name} cannot sign {profile}: {}",
                    e.message()
                ),
            )
        })
}

/// Publishes the message a message schedule fires. The HTTP dispatcher
/// implements it; the scheduler calls it with the idempotency key of the
/// due time, so a due time fired twice publishes one message.
#[async_trait::async_trait]
pub trait MessagePublisher: Send + Sync + 'static {
    /// Signs and enqueues the message described by `message` (a
    /// `POST /v1/messages` body) under `idempotency_key`, in the
    /// [`IdempotencyScope::System`] scope. Returns whether a new message was
    /// created (`false`: one with this key already exists).
    async fn publish(
        &self,
        message: &RawValue,
        idempotency_key: String,
    ) -> Result<bool, RuntimeError>;
}

#[async_trait::async_trait]
impl MessagePublisher for MessageProducer {
    async fn publish(
        &self,
        message: &RawValue,
        idempotency_key: String,
    ) -> Result<bool, RuntimeError> {
        let message = NewMessage::from_json(message.get())?;
        let out = self
            .publish_as(message, Some(idempotency_key), IdempotencyScope::System)
            .await?;
        Ok(out.created)
    }
}
