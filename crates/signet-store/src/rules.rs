//! The input rules: every limit and charset that tasks, messages and
//! schedules are held to, and [`FieldError`], the one error that refuses a
//! field.
//!
//! Every entry point (the `Producer`, `POST /v1/tasks` server-signed and
//! client-signed, `signet enqueue`, schedules, callbacks, messages) calls
//! these functions, so the same input gets the same answer, in the same
//! words, wherever it comes from. Field names are spelled as the HTTP API
//! spells them (`queue`, `task`, `callback_url`, `headers.<name>`,
//! `Idempotency-Key`); a nested payload prefixes them with
//! [`FieldError::within`] (`task.queue`).
//!
//! The rules apply to new input only. Stored rows are never checked against
//! them when read, so a row written under an older, looser rule keeps
//! working. Stores check only what their rows must hold
//! ([`NewTask::validate`](crate::NewTask::validate) and friends).
//!
//! This module imports no other module of the crate but the ids: the types
//! it guards call it, never the other way round.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use signet_sign::TaskEnvelope;

use crate::ids::{MessageId, TaskId};

/// The reserved queue messages (and callbacks) are stored on. Queues that
/// start with [`RESERVED_QUEUE_PREFIX`] are not open to user tasks.
pub const MESSAGE_QUEUE: &str = "signet:messages";
/// Queue names with this prefix belong to Signet itself.
pub const RESERVED_QUEUE_PREFIX: &str = "signet:";

/// Longest queue name, in bytes.
pub const MAX_QUEUE_NAME_LEN: usize = 128;
/// Longest task (handler) name, in bytes.
pub const MAX_TASK_NAME_LEN: usize = 255;
/// Longest idempotency key, in bytes.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;
/// Largest `args` of a task (and stored form of a message), in bytes (1 MiB).
pub const MAX_ARGS_BYTES: usize = 1024 * 1024;
/// Default number of attempts of a task (the first one included).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 25;
/// Largest `max_attempts` of a task.
pub const MAX_ATTEMPTS_LIMIT: u32 = 1000;
/// Priorities allowed: `-PRIORITY_LIMIT..=PRIORITY_LIMIT`.
pub const PRIORITY_LIMIT: i32 = 1000;
/// Longest delay before a first run or attempt, and furthest `not_before`
/// from now: one year, in ms.
pub const MAX_DELAY_MS: i64 = 365 * 24 * 3600 * 1000;
/// Most headers on a task or a message.
pub const MAX_HEADERS: usize = 64;
/// Longest header name of a message.
pub const MAX_HEADER_NAME_LEN: usize = 256;
/// Longest header value of a task or a message.
pub const MAX_HEADER_VALUE_LEN: usize = 8 * 1024;
/// Longest URL: a message's, a callback's, a target's prefix.
pub const MAX_URL_LEN: usize = 2048;
/// Longest HTTP method name of a message.
pub const MAX_METHOD_LEN: usize = 32;
/// Largest message body, in bytes.
pub const MAX_MESSAGE_BODY_BYTES: usize = 256 * 1024;
/// Most steps in a message's retry schedule.
pub const MAX_RETRY_STEPS: usize = 50;
/// Longest single wait in a message's retry schedule (7 days).
pub const MAX_RETRY_STEP: Duration = Duration::from_secs(7 * 24 * 3600);
/// Most attempts of one message.
pub const MAX_MESSAGE_ATTEMPTS: u32 = 100;
/// Longest target or schedule name.
pub const MAX_NAME_LEN: usize = 128;
/// Shortest target secret a caller may choose.
pub const MIN_SECRET_LEN: usize = 16;
/// Longest target secret a caller may choose.
pub const MAX_SECRET_LEN: usize = 256;
/// Largest `rate_limit_per_s` and `max_concurrency` of a target.
pub const MAX_TARGET_LIMIT: u32 = 100_000;
/// Longest overlap of a target's secret rotation (30 days).
pub const MAX_ROTATION_OVERLAP: Duration = Duration::from_secs(30 * 24 * 3600);
/// Longest cron expression of a schedule.
pub const MAX_CRON_LEN: usize = 256;
/// Longest time zone name of a schedule.
pub const MAX_TIMEZONE_LEN: usize = 64;

/// Why a field of the input is refused: the field (as the HTTP API spells
/// it, dotted for nested fields) and what is wrong with it and allowed
/// instead. Displayed as `<field>: <message>`; the HTTP API answers it as a
/// `422` and the CLI prints it as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    field: String,
    message: String,
}

impl FieldError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The field at fault.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong with it and what is allowed.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error about a field nested in `parent` (`task` + `queue` →
    /// `task.queue`).
    pub fn within(mut self, parent: &str) -> Self {
        self.field = format!("{parent}.{}", self.field);
        self
    }

    /// The field and the message.
    pub fn into_parts(self) -> (String, String) {
        (self.field, self.message)
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

/// The result of a rule.
pub type RuleResult<T = ()> = Result<T, FieldError>;

/// Shortens untrusted text quoted in a message.
pub fn excerpt(text: &str) -> String {
    const MAX: usize = 60;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

/// The charset of queue, target and schedule names.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')
}

/// A name of 1 to `max` bytes of `A-Z a-z 0-9 . _ : -`; `what` says whose.
pub(crate) fn plain_name(field: &str, what: &str, name: &str, max: usize) -> RuleResult {
    if name.is_empty() || name.len() > max {
        return Err(FieldError::new(
            field,
            format!(
                "the {what} name must be 1 to {max} characters of A-Z a-z 0-9 . _ : -, got {} bytes",
                name.len()
            ),
        ));
    }
    if let Some(c) = name.chars().find(|c| !is_name_char(*c)) {
        return Err(FieldError::new(
            field,
            format!(
                "the {what} name {:?} contains {c:?}; use only A-Z a-z 0-9 . _ : -",
                excerpt(name)
            ),
        ));
    }
    Ok(())
}

/// Any queue name, Signet's own included (claims, filters): 1 to
/// [`MAX_QUEUE_NAME_LEN`] characters of `A-Z a-z 0-9 . _ : -`.
pub fn queue_name(name: &str) -> RuleResult {
    plain_name("queue", "queue", name, MAX_QUEUE_NAME_LEN)
}

/// Longest reason an operator may give for pausing a queue.
pub const MAX_PAUSE_REASON_LEN: usize = 1024;

/// Why an operator paused a queue: 1 to [`MAX_PAUSE_REASON_LEN`] bytes
/// without control characters.
pub fn pause_reason(reason: &str) -> RuleResult {
    if reason.is_empty() || reason.len() > MAX_PAUSE_REASON_LEN {
        return Err(FieldError::new(
            "reason",
            format!(
                "the pause reason must be 1 to {MAX_PAUSE_REASON_LEN} bytes, got {}; leave it out to give none",
                reason.len()
            ),
        ));
    }
    if reason.chars().any(char::is_control) {
        return Err(FieldError::new(
            "reason",
            "the pause reason contains a control character (newline, tab, …); write it on one line",
        ));
    }
    Ok(())
}

/// The queue of a user task: a [`queue_name`] that does not start with
/// [`RESERVED_QUEUE_PREFIX`] (Signet's messages live there).
pub fn task_queue(name: &str) -> RuleResult {
    queue_name(name)?;
    if name.starts_with(RESERVED_QUEUE_PREFIX) {
        return Err(FieldError::new(
            "queue",
            format!(
                "queue {name:?} is reserved: names starting with {RESERVED_QUEUE_PREFIX:?} belong to Signet (messages are delivered from there); choose another queue name, or send an HTTP message instead of a task"
            ),
        ));
    }
    Ok(())
}

/// A task (handler) name: 1 to [`MAX_TASK_NAME_LEN`] bytes without control
/// characters (spaces allowed).
pub fn task_name(name: &str) -> RuleResult {
    if name.is_empty() || name.len() > MAX_TASK_NAME_LEN || name.chars().any(char::is_control) {
        return Err(FieldError::new(
            "task",
            format!("the task name must be 1 to {MAX_TASK_NAME_LEN} bytes without control characters, got {} bytes", name.len()),
        ));
    }
    Ok(())
}

/// A task's args: JSON text of at most [`MAX_ARGS_BYTES`].
pub fn task_args(args: &[u8]) -> RuleResult {
    if args.len() > MAX_ARGS_BYTES {
        return Err(FieldError::new(
            "args",
            format!(
                "are {} bytes; the limit is {MAX_ARGS_BYTES} bytes (1 MiB); store large payloads elsewhere and pass a reference",
                args.len()
            ),
        ));
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(args)
        .map_err(|e| FieldError::new("args", format!("are not valid JSON: {e}")))?;
    Ok(())
}

/// A task's `max_attempts`: 1 to [`MAX_ATTEMPTS_LIMIT`] (the first attempt
/// counts).
pub fn max_attempts(n: u32) -> RuleResult {
    if !(1..=MAX_ATTEMPTS_LIMIT).contains(&n) {
        return Err(FieldError::new(
            "max_attempts",
            format!("must be 1 to {MAX_ATTEMPTS_LIMIT} (the first attempt counts), got {n}"),
        ));
    }
    Ok(())
}

/// A task's priority: `-PRIORITY_LIMIT..=PRIORITY_LIMIT`.
pub fn priority(p: i32) -> RuleResult {
    if !(-PRIORITY_LIMIT..=PRIORITY_LIMIT).contains(&p) {
        return Err(FieldError::new(
            "priority",
            format!("must be -{PRIORITY_LIMIT} to {PRIORITY_LIMIT}, got {p}"),
        ));
    }
    Ok(())
}

/// A delay before the first run or attempt: 0 to [`MAX_DELAY_MS`].
pub fn delay_ms(delay: i64) -> RuleResult {
    if !(0..=MAX_DELAY_MS).contains(&delay) {
        return Err(FieldError::new(
            "delay_ms",
            format!("must be 0 to {MAX_DELAY_MS} (one year), got {delay}"),
        ));
    }
    Ok(())
}

/// `not_before` at most a year from `now_ms`.
pub fn not_before(now_ms: i64, at_ms: i64) -> RuleResult {
    if at_ms > now_ms.saturating_add(MAX_DELAY_MS) {
        return Err(FieldError::new("not_before", "more than one year from now"));
    }
    Ok(())
}

/// When a task or message may first run: `delay_ms` after `now_ms`, or
/// at `not_before_ms`; at most one of the two ([`delay_ms`],
/// [`not_before`]). With `now_ms` of `None` (not known yet) everything but
/// how far ahead `not_before_ms` is gets checked.
pub fn first_run(
    now_ms: Option<i64>,
    delay: Option<i64>,
    not_before_ms: Option<i64>,
) -> RuleResult<Option<i64>> {
    match (delay, not_before_ms) {
        (Some(_), Some(_)) => Err(FieldError::new(
            "delay_ms",
            "give delay_ms or not_before, not both",
        )),
        (Some(d), None) => {
            delay_ms(d)?;
            Ok((d > 0).then(|| now_ms.unwrap_or(0).saturating_add(d)))
        }
        (None, Some(at)) => {
            if let Some(now) = now_ms {
                not_before(now, at)?;
            }
            Ok(Some(at))
        }
        (None, None) => Ok(None),
    }
}

/// A task's times: `not_before` at most a year ahead; `expires_at` in the
/// future and after `not_before`.
pub fn task_times(
    now_ms: i64,
    not_before_ms: Option<i64>,
    expires_at_ms: Option<i64>,
) -> RuleResult {
    if let Some(nb) = not_before_ms {
        not_before(now_ms, nb)?;
    }
    if let Some(exp) = expires_at_ms {
        if exp <= now_ms {
            return Err(FieldError::new(
                "expires_at",
                "is in the past; give a future time",
            ));
        }
        if not_before_ms.is_some_and(|nb| exp <= nb) {
            return Err(FieldError::new(
                "expires_at",
                "must be after not_before (the task would expire before it may run)",
            ));
        }
    }
    Ok(())
}

/// A task's headers: at most [`MAX_HEADERS`], values of at most
/// [`MAX_HEADER_VALUE_LEN`], token names, each name once
/// (case-insensitively). Returns them as signed: lower-case names, without
/// signature headers.
pub fn task_headers<I, K, V>(headers: I) -> RuleResult<BTreeMap<String, String>>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: Into<String>,
{
    let given: Vec<(K, String)> = headers.into_iter().map(|(k, v)| (k, v.into())).collect();
    if given.len() > MAX_HEADERS {
        return Err(FieldError::new(
            "headers",
            format!("at most {MAX_HEADERS} headers"),
        ));
    }
    if let Some((name, _)) = given.iter().find(|(_, v)| v.len() > MAX_HEADER_VALUE_LEN) {
        return Err(FieldError::new(
            format!("headers.{}", excerpt(name.as_ref())),
            format!("value longer than {MAX_HEADER_VALUE_LEN} bytes"),
        ));
    }
    TaskEnvelope::normalise_headers(given).map_err(|e| FieldError::new("headers", e.message()))
}

/// An idempotency key: 1 to [`MAX_IDEMPOTENCY_KEY_LEN`] visible ASCII
/// characters (it travels as an HTTP header).
pub fn idempotency_key(key: &str) -> RuleResult {
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY_LEN
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(FieldError::new(
            "Idempotency-Key",
            format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"),
        ));
    }
    Ok(())
}

/// An `http://` or `https://` URL of at most [`MAX_URL_LEN`] bytes, without
/// user info or a `#fragment`, with a host. Every URL Signet is given (a
/// message's, a callback's, a target's prefix) is held to this rule; the
/// error names `field`. Stored messages are checked with it again when
/// they are delivered, so it never gets stricter than what was stored.
pub fn http_url(field: &str, text: &str) -> RuleResult<url::Url> {
    if text.len() > MAX_URL_LEN {
        return Err(FieldError::new(
            field,
            format!("is {} bytes; the limit is {MAX_URL_LEN}", text.len()),
        ));
    }
    let url = url::Url::parse(text)
        .map_err(|e| FieldError::new(field, format!("{:?} is not a URL: {e}", excerpt(text))))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FieldError::new(
            field,
            format!(
                "scheme {:?} is not allowed; use http:// or https://",
                url.scheme()
            ),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FieldError::new(
            field,
            "must not contain user info (user:password@); send credentials in headers",
        ));
    }
    if url.host().is_none() {
        return Err(FieldError::new(field, "has no host"));
    }
    if url.fragment().is_some() {
        return Err(FieldError::new(
            field,
            "has a #fragment, which is never sent; remove it",
        ));
    }
    Ok(url)
}

/// Where a signed callback goes (of a task or a message): an [`http_url`]
/// named `callback_url`, without spaces or control characters.
pub fn callback_url(url: &str) -> RuleResult {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(FieldError::new(
            "callback_url",
            "contains spaces or control characters; percent-encode them",
        ));
    }
    http_url("callback_url", url).map(|_| ())
}

/// A task id a client chose (`task_…`).
pub fn task_id(id: &str) -> RuleResult {
    TaskId::parse(id)
        .map(|_| ())
        .map_err(|e| FieldError::new("id", e.to_string()))
}

/// Everything a new task is held to, as it will be stored, at `now_ms`:
/// its envelope's id (`task_…`, or `msg_…` on the message queue), queue,
/// name, args, attempts, times, headers and callback URL, its priority and
/// its idempotency key. [`NewTask::check_rules`](crate::NewTask::check_rules)
/// calls it with a task's parts.
pub fn new_task(
    env: &TaskEnvelope,
    task_priority: i32,
    task_idempotency_key: Option<&str>,
    now_ms: i64,
) -> RuleResult {
    if env.queue == MESSAGE_QUEUE && env.id.starts_with(MessageId::PREFIX) {
        MessageId::parse(&env.id).map_err(|e| FieldError::new("id", e.to_string()))?;
    } else {
        task_queue(&env.queue)?;
        task_id(&env.id)?;
    }
    task_name(&env.name)?;
    task_args(&env.args)?;
    max_attempts(env.max_attempts)?;
    priority(task_priority)?;
    task_times(now_ms, env.not_before_ms, env.expires_at_ms)?;
    let normalised = task_headers(env.headers.iter().map(|(k, v)| (k, v.clone())))?;
    if normalised != env.headers {
        return Err(FieldError::new(
            "headers",
            "names must be lower-case and signature headers cannot be carried",
        ));
    }
    if let Some(url) = &env.callback_url {
        callback_url(url)?;
    }
    if let Some(key) = task_idempotency_key {
        idempotency_key(key)?;
    }
    Ok(())
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A message's HTTP method: 1 to [`MAX_METHOD_LEN`] token characters, not
/// `CONNECT` or `TRACE`.
pub fn method(method: &str) -> RuleResult {
    if method.is_empty() || method.len() > MAX_METHOD_LEN || !method.bytes().all(is_tchar) {
        return Err(FieldError::new(
            "method",
            format!(
                "{:?} is not an HTTP method (1 to {MAX_METHOD_LEN} token characters, like POST)",
                excerpt(method)
            ),
        ));
    }
    if method.eq_ignore_ascii_case("CONNECT") || method.eq_ignore_ascii_case("TRACE") {
        return Err(FieldError::new(
            "method",
            format!("{method} cannot be used for deliveries"),
        ));
    }
    Ok(())
}

/// Header names a message may not set: hop-by-hop headers, the ones the
/// HTTP client computes, and every signature header Signet sets itself.
const FORBIDDEN_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "x-stromboli-timestamp",
    "x-stromboli-signature",
    "x-hub-signature",
    "x-hub-signature-256",
    "x-github-delivery",
    "stripe-signature",
];
/// Header name prefixes a message may not set (signature headers).
const FORBIDDEN_HEADER_PREFIXES: &[&str] = &["webhook-", "svix-", "x-krafter-", "signet-"];

/// How many headers a message may carry: at most [`MAX_HEADERS`].
pub fn message_header_count(n: usize) -> RuleResult {
    if n > MAX_HEADERS {
        return Err(FieldError::new(
            "headers",
            format!("at most {MAX_HEADERS} headers"),
        ));
    }
    Ok(())
}

/// One header of a message: a token name of at most
/// [`MAX_HEADER_NAME_LEN`] that is neither hop-by-hop nor a signature
/// header, a value of at most [`MAX_HEADER_VALUE_LEN`] without control
/// characters.
pub fn message_header(name: &str, value: &str) -> RuleResult {
    let field = || format!("headers.{}", excerpt(name));
    if name.is_empty() || name.len() > MAX_HEADER_NAME_LEN || !name.bytes().all(is_tchar) {
        return Err(FieldError::new(
            field(),
            "is not a valid header name (token characters only)",
        ));
    }
    let lower = name.to_ascii_lowercase();
    if FORBIDDEN_HEADERS.contains(&lower.as_str())
        || FORBIDDEN_HEADER_PREFIXES
            .iter()
            .any(|p| lower.starts_with(p))
    {
        return Err(FieldError::new(
            field(),
            "may not be set: hop-by-hop and length headers are the HTTP client's, and signature headers are Signet's",
        ));
    }
    if value.len() > MAX_HEADER_VALUE_LEN {
        return Err(FieldError::new(
            field(),
            format!("value is longer than {MAX_HEADER_VALUE_LEN} bytes"),
        ));
    }
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(FieldError::new(
            field(),
            "value contains control characters (line breaks are not allowed)",
        ));
    }
    Ok(())
}

/// A message body: at most [`MAX_MESSAGE_BODY_BYTES`].
pub fn message_body(body: &str) -> RuleResult {
    if body.len() > MAX_MESSAGE_BODY_BYTES {
        return Err(FieldError::new(
            "body",
            format!(
                "is {} bytes; the limit is {MAX_MESSAGE_BODY_BYTES} bytes",
                body.len()
            ),
        ));
    }
    Ok(())
}

/// A message's own retry schedule: 1 to [`MAX_RETRY_STEPS`] waits in ms,
/// each at most [`MAX_RETRY_STEP`].
pub fn retry_steps(steps: &[u64]) -> RuleResult<Vec<Duration>> {
    if steps.is_empty() || steps.len() > MAX_RETRY_STEPS {
        return Err(FieldError::new(
            "retry_schedule_ms",
            format!("give 1 to {MAX_RETRY_STEPS} waits in milliseconds"),
        ));
    }
    let max = u64::try_from(MAX_RETRY_STEP.as_millis()).unwrap_or(u64::MAX);
    if let Some(bad) = steps.iter().find(|s| **s > max) {
        return Err(FieldError::new(
            "retry_schedule_ms",
            format!("{bad} ms is longer than the limit of {max} ms (7 days)"),
        ));
    }
    Ok(steps.iter().map(|ms| Duration::from_millis(*ms)).collect())
}

/// A message's `max_attempts`: 1 to [`MAX_MESSAGE_ATTEMPTS`].
pub fn message_max_attempts(n: u32) -> RuleResult {
    if !(1..=MAX_MESSAGE_ATTEMPTS).contains(&n) {
        return Err(FieldError::new(
            "max_attempts",
            format!("must be 1 to {MAX_MESSAGE_ATTEMPTS}, got {n}"),
        ));
    }
    Ok(())
}

/// A message's stored form (the task args it becomes): at most
/// [`MAX_ARGS_BYTES`]; the error names `body`, the field that makes it big.
pub fn message_stored_len(len: usize) -> RuleResult {
    if len > MAX_ARGS_BYTES {
        return Err(FieldError::new(
            "body",
            format!("the message is {len} bytes stored; the limit is {MAX_ARGS_BYTES}"),
        ));
    }
    Ok(())
}

/// A target name: 1 to [`MAX_NAME_LEN`] characters of `A-Z a-z 0-9 . _ : -`.
pub fn target_name(name: &str) -> RuleResult {
    plain_name("name", "target", name, MAX_NAME_LEN)
}

/// A target secret a caller chose: [`MIN_SECRET_LEN`] to [`MAX_SECRET_LEN`]
/// visible ASCII characters. A secret in a Standard Webhooks form must also
/// decode to a key that can sign: `whsec_` + base64 of at least
/// [`signet_sign::config::MIN_HMAC_SECRET_LEN`] bytes, or a `whsk_` Ed25519
/// private key; a `whpk_` public key cannot sign. (A secret without a
/// prefix is another system's secret, used as-is by the profiles that
/// take one.) The error never quotes it.
pub fn target_secret(text: &str) -> RuleResult {
    use signet_sign::standard::{
        parse_secret, ED25519_PUBLIC_PREFIX, ED25519_SECRET_PREFIX, HMAC_SECRET_PREFIX,
    };
    let ok = (MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_graphic());
    if !ok {
        return Err(FieldError::new(
            "secret",
            format!("must be {MIN_SECRET_LEN} to {MAX_SECRET_LEN} visible ASCII characters without spaces (or leave it out to have one generated)"),
        ));
    }
    if text.starts_with(ED25519_PUBLIC_PREFIX) {
        return Err(FieldError::new(
            "secret",
            "is a whpk_ public key, which cannot sign; give the whsk_ private key or a whsec_ secret",
        ));
    }
    let min = signet_sign::config::MIN_HMAC_SECRET_LEN;
    let form = [HMAC_SECRET_PREFIX, ED25519_SECRET_PREFIX]
        .into_iter()
        .find(|p| text.starts_with(p));
    if let Some(form) = form {
        match parse_secret(text) {
            Ok(signet_sign::KeyMaterial::Hmac(key)) if key.len() < min => {
                return Err(FieldError::new(
                    "secret",
                    format!(
                        "decodes to {} bytes; a whsec_ secret must hold at least {min} (leave it out to have one of 32 generated)",
                        key.len()
                    ),
                ));
            }
            Ok(_) => {}
            Err(_) => {
                let what = if form == HMAC_SECRET_PREFIX {
                    format!("whsec_ followed by the standard base64 of at least {min} bytes")
                } else {
                    "whsk_ followed by the standard base64 of an Ed25519 seed and public key (64 bytes)".to_owned()
                };
                return Err(FieldError::new(
                    "secret",
                    format!("starts with {form} but does not decode; it must be {what} (leave it out to have one generated)"),
                ));
            }
        }
    }
    Ok(())
}

/// A target's `rate_limit_per_s` or `max_concurrency` (`field`), when set:
/// 1 to [`MAX_TARGET_LIMIT`].
pub fn target_limit(field: &str, value: Option<u32>) -> RuleResult {
    match value {
        Some(n) if n == 0 || n > MAX_TARGET_LIMIT => Err(FieldError::new(
            field,
            format!("must be 1 to {MAX_TARGET_LIMIT} (leave it out for no limit), got {n}"),
        )),
        _ => Ok(()),
    }
}

/// A target's `url_prefix`, when set: an [`http_url`] without a query,
/// `https://` when the target is `https_only`. It is compared as an origin
/// plus a path on segment boundaries (the runtime's `targets::check_url`),
/// so a query has no place in it.
pub fn target_url_prefix(prefix: Option<&str>, https_only: bool) -> RuleResult {
    let Some(prefix) = prefix else {
        return Ok(());
    };
    let url = http_url("url_prefix", prefix)?;
    if url.query().is_some() {
        return Err(FieldError::new(
            "url_prefix",
            "has a ?query; a prefix is a scheme, host, port and path (messages may add any query)",
        ));
    }
    if https_only && url.scheme() != "https" {
        return Err(FieldError::new(
            "url_prefix",
            "is http:// but https_only is set; use an https:// prefix",
        ));
    }
    Ok(())
}

/// How long a rotated target secret keeps signing: at most
/// [`MAX_ROTATION_OVERLAP`].
pub fn rotation_overlap(overlap: Duration) -> RuleResult {
    if overlap > MAX_ROTATION_OVERLAP {
        return Err(FieldError::new(
            "overlap_s",
            format!(
                "must be at most {} s (30 days)",
                MAX_ROTATION_OVERLAP.as_secs()
            ),
        ));
    }
    Ok(())
}

/// A schedule name: 1 to [`MAX_NAME_LEN`] characters of `A-Z a-z 0-9 . _ : -`.
pub fn schedule_name(name: &str) -> RuleResult {
    plain_name("name", "schedule", name, MAX_NAME_LEN)
}

/// A time zone name's length: not empty, at most [`MAX_TIMEZONE_LEN`] (the
/// runtime's scheduler looks the name up).
pub fn timezone_len(name: &str) -> RuleResult {
    if name.is_empty() {
        return Err(FieldError::new(
            "timezone",
            "is empty; give an IANA time zone name such as UTC or Europe/Paris, or leave it out for UTC",
        ));
    }
    if name.len() > MAX_TIMEZONE_LEN {
        return Err(FieldError::new(
            "timezone",
            format!("is longer than {MAX_TIMEZONE_LEN} characters; give an IANA time zone name such as Europe/Paris"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn field_errors_show_and_nest_the_field() {
        let e = FieldError::new("queue", "bad").within("task");
        assert_eq!(e.field(), "task.queue");
        assert_eq!(e.to_string(), "task.queue: bad");
    }

    #[test]
    fn names() {
        assert!(queue_name("mail.eu:1-x_y").is_ok());
        assert!(queue_name("a/b").is_err());
        assert!(queue_name("").is_err());
        assert!(queue_name(&"q".repeat(MAX_QUEUE_NAME_LEN + 1)).is_err());
        assert!(queue_name("signet:messages").is_ok());
        assert_eq!(task_queue("signet:x").unwrap_err().field(), "queue");
        assert!(task_name("send email").is_ok());
        assert!(task_name(&"t".repeat(MAX_TASK_NAME_LEN)).is_ok());
        assert!(task_name(&"t".repeat(MAX_TASK_NAME_LEN + 1)).is_err());
        assert!(task_name("a\nb").is_err());
        assert!(target_name("billing-prod").is_ok());
        assert!(target_name("a b").is_err());
        assert!(schedule_name(&"x".repeat(MAX_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn urls_have_one_rule() {
        assert!(callback_url("https://example.com/cb").is_ok());
        for bad in [
            "ftp://x",
            "https://",
            "https://exa mple.com/",
            "https://u:p@example.com/",
            "https://example.com/#f",
            "not a url",
        ] {
            assert_eq!(
                callback_url(bad).unwrap_err().field(),
                "callback_url",
                "{bad}"
            );
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(callback_url(&long).is_err());
    }

    #[test]
    fn target_prefixes_take_no_query() {
        assert!(target_url_prefix(Some("https://a.example/hooks"), true).is_ok());
        let e = target_url_prefix(Some("https://a.example/h?x=1"), false).unwrap_err();
        assert!(e.message().contains("?query"), "{e}");
    }

    #[test]
    fn target_secrets_in_a_standard_form_must_decode() {
        // Accepted before, then every publish to the target failed.
        for bad in [
            "whsec_!!!!!!!!!!!!!!!!",
            "whsec_c2hvcnQtc2VjcmV0", // 12 bytes
            "whsk_bm90LWFuLWVkMjU1MTkta2V5LWF0LWFsbA==",
            "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
        ] {
            let e = target_secret(bad).unwrap_err();
            assert_eq!(e.field(), "secret");
            assert!(!e.message().contains(&bad[6..]), "{e}");
        }
        for good in [
            "whsec_c2VydmVyLXRlc3QtdGFyZ2V0LXNlY3JldC0zMi1ieXRlcyE=",
            "not-base64-github-secret!!",
            "a-plain-shared-secret-1234",
        ] {
            assert_eq!(target_secret(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn headers_of_tasks() {
        let h = task_headers([("Tenant", "acme")]).unwrap();
        assert_eq!(h["tenant"], "acme");
        assert!(task_headers([("a", "1"), ("A", "2")]).is_err());
        assert!(task_headers([("bad header", "1")]).is_err());
        let e = task_headers([("big", "x".repeat(MAX_HEADER_VALUE_LEN + 1))]).unwrap_err();
        assert_eq!(e.field(), "headers.big");
        let many: Vec<(String, String)> = (0..=MAX_HEADERS)
            .map(|i| (format!("h{i}"), "v".into()))
            .collect();
        assert!(task_headers(many).is_err());
    }

    proptest! {
        #[test]
        fn queue_names_of_the_charset_within_the_limit_pass(name in "[A-Za-z0-9._:-]{1,128}") {
            prop_assert!(queue_name(&name).is_ok());
        }

        #[test]
        fn queue_names_with_another_character_fail(
            a in "[a-z]{0,10}", c in "[^A-Za-z0-9._:-]", b in "[a-z]{0,10}"
        ) {
            let name = format!("{a}{c}{b}");
            prop_assert!(queue_name(&name).is_err());
        }

        #[test]
        fn idempotency_keys_are_visible_ascii(key in "[!-~]{1,255}") {
            prop_assert!(idempotency_key(&key).is_ok());
            let spaced = format!("{key} ");
            prop_assert!(idempotency_key(&spaced).is_err());
        }

        #[test]
        fn priorities_and_attempts_hold_their_ranges(p in any::<i32>(), n in any::<u32>()) {
            prop_assert_eq!(priority(p).is_ok(), (-PRIORITY_LIMIT..=PRIORITY_LIMIT).contains(&p));
            prop_assert_eq!(max_attempts(n).is_ok(), (1..=MAX_ATTEMPTS_LIMIT).contains(&n));
        }

        #[test]
        fn task_names_refuse_only_control_characters_and_length(name in "\\PC{1,60}") {
            prop_assert!(task_name(&name).is_ok());
        }
    }
}
