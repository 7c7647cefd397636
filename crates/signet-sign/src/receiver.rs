//! The receiving side, for axum endpoints (feature `axum`).
//!
//! A [`Verifier`] holds what a receiver checks requests with: the sender's
//! keys (a [`KeyRing`] for Standard Webhooks, or [`ProfileKey`]s for any
//! [`Profile`]), the freshness tolerance, a [`ReplayGuard`], the clock and
//! a body size cap. Put it in the router's state; a handler that takes a
//! [`VerifiedWebhook`] then runs only for authentic, fresh, first-seen
//! requests:
//!
//! ```no_run
//! use axum::{routing::post, Router};
//! use signet_sign::receiver::{VerifiedWebhook, Verifier};
//! use signet_sign::{standard::parse_secret, Key, KeyId, KeyRing};
//!
//! # fn main() -> Result<(), signet_sign::Error> {
//! let key = Key::new(KeyId::new("key-1")?, parse_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?);
//! let verifier = Verifier::standard(KeyRing::single(key))?;
//! let app: Router = Router::new()
//!     .route("/webhooks", post(receive))
//!     .with_state(verifier);
//! # Ok(()) }
//!
//! async fn receive(hook: VerifiedWebhook) -> &'static str {
//!     // hook.body is the raw body exactly as signed.
//!     "ok"
//! }
//! ```
//!
//! # What the extractor does, in order
//!
//! 1. Reads the raw body, at most [`Verifier::with_max_body_bytes`] bytes
//!    (a larger body is refused with `413` before it is read whole).
//! 2. Verifies the signature headers against every key, with the timestamp
//!    within the tolerance window in both directions. A failure answers `401`
//!    with `{"error":{"code":"signature-invalid","reason":"…","message":"…"}}`
//!    where `reason` is [`Error::reason`] (`missing`, `mismatch`,
//!    `too-old`, …) and `message` says what was wrong. A request with no
//!    signature headers at all is `401` `missing`: there is no unsigned mode.
//! 3. Only then asks the replay guard whether this message was seen before,
//!    so forged requests can never fill the guard or mark an id as seen.
//!
//! # Duplicates are acknowledged, not handed to the handler
//!
//! A duplicate of an authentic delivery is a sender's retry (its first
//! answer was lost or slow) or a replay inside the window. Either way the
//! message must not be processed twice, and the sender should stop
//! retrying. So the extractor rejects it with a **`200`** response
//! `{"duplicate":true,"id":"…"}`: the handler never runs, and the sender
//! records a success. The alternatives were worse: a `409` makes a Standard
//! Webhooks sender retry until it gives up and dead-letters a message that
//! was in fact delivered; a `duplicate: bool` field on [`VerifiedWebhook`]
//! processes the message twice in every handler that forgets to look at it.
//! A handler that wants to see duplicates (to log them, or to answer
//! differently) takes `Result<VerifiedWebhook, WebhookRejection>` and checks
//! [`WebhookRejection::is_duplicate`].
//!
//! The guard remembers an id as soon as the extractor accepts it. If your
//! handler then fails and answers non-2xx, the sender's retry is
//! acknowledged as a duplicate and not processed again: make the handler's
//! work durable (store the message, enqueue a task) before it answers, and
//! answer `2xx` only after that, or give the verifier a guard that knows
//! about your storage.
//!
//! # Replay keys per profile
//!
//! Standard Webhooks and Svix sign the message id, so the guard sees that id
//! (stable across a sender's retries). Stripe, Stromboli, Inngest and Stem
//! sign a timestamp or an envelope but no separate id: the guard sees a
//! digest of the signature header, which refuses an exact replay. Krafter
//! and GitHub sign neither an id nor a timestamp: a replay cannot be told
//! from a new delivery, the guard is not consulted, and
//! [`VerifiedWebhook::warnings`] says so.
//!
//! Nothing here logs, and no response or message contains key material.

use std::fmt;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRef, FromRequest, Request};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::keyring::KeyRing;
use crate::profiles::{self, Profile, ProfileKey, VerifyOptions};
use crate::replay::{InMemoryReplayGuard, ReplayGuard};
use crate::standard::{self, HeaderNames, DEFAULT_TOLERANCE_SECS, STANDARD_HEADERS};

/// Default cap on a request body: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// How many message ids the default in-memory replay guard remembers.
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;

/// The clock: unix seconds.
type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// What a receiver verifies requests with. Cheap to clone (shared parts are
/// reference-counted); put it in the router state, or implement
/// `FromRef<YourState> for Verifier`.
///
/// `Debug` shows the scheme, key ids and fingerprints, never key material.
#[derive(Clone)]
pub struct Verifier {
    scheme: Arc<Scheme>,
    tolerance_secs: i64,
    replay: Arc<dyn ReplayGuard>,
    /// Whether `replay` is the built-in guard (rebuilt when the tolerance
    /// changes, so its window follows the tolerance).
    default_replay: bool,
    clock: Clock,
    max_body_bytes: usize,
}

enum Scheme {
    /// Standard Webhooks with these header names, against a key ring.
    Ring { ring: KeyRing, names: HeaderNames },
    /// Any profile, against keys parsed for it.
    Profile {
        profile: Profile,
        keys: Vec<ProfileKey>,
    },
}

impl Verifier {
    /// Standard Webhooks (`webhook-id`, `webhook-timestamp`,
    /// `webhook-signature`) against every key of `ring`.
    ///
    /// Fails with [`Error::config`] when the ring is empty.
    pub fn standard(ring: KeyRing) -> Result<Self> {
        Self::with_header_names(STANDARD_HEADERS, ring)
    }

    /// Standard Webhooks under other header names, e.g.
    /// [`crate::standard::SVIX_HEADERS`].
    ///
    /// Fails with [`Error::config`] when the ring is empty.
    pub fn with_header_names(names: HeaderNames, ring: KeyRing) -> Result<Self> {
        if ring.is_empty() {
            return Err(Error::config(
                "the key ring has no keys to verify with; configure the sender's secret or public key",
            ));
        }
        Ok(Self::from_scheme(Scheme::Ring { ring, names }))
    }

    /// Any [`Profile`], with keys parsed by [`Profile::parse_key`] (several
    /// keys: every one is tried, for rotations). Key labels are the keys'
    /// own ids (Stem) or their position in `keys`, `secret 1`, `secret 2`, ….
    ///
    /// Fails with [`Error::config`] when `keys` is empty or holds a key
    /// parsed for another profile.
    pub fn profile(profile: Profile, keys: Vec<ProfileKey>) -> Result<Self> {
        // The profile checks its keys before it looks at a request, so a
        // request with nothing in it tells a configuration error apart.
        match profile.verify(&keys, &[], b"", &VerifyOptions::new(0)) {
            Err(e) if e.is_config() => return Err(e),
            _ => {}
        }
        Ok(Self::from_scheme(Scheme::Profile { profile, keys }))
    }

    fn from_scheme(scheme: Scheme) -> Self {
        Self {
            scheme: Arc::new(scheme),
            tolerance_secs: DEFAULT_TOLERANCE_SECS,
            replay: default_guard(DEFAULT_TOLERANCE_SECS),
            default_replay: true,
            clock: Arc::new(system_now),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// Accept timestamps at most this many seconds from the clock, in both
    /// directions (default [`DEFAULT_TOLERANCE_SECS`], 300 s; negative
    /// counts as zero). The built-in replay guard's window follows it.
    pub fn with_tolerance_secs(mut self, tolerance_secs: i64) -> Self {
        self.tolerance_secs = tolerance_secs.max(0);
        if self.default_replay {
            self.replay = default_guard(self.tolerance_secs);
        }
        self
    }

    /// Use this replay guard instead of the built-in one (an
    /// [`InMemoryReplayGuard`] of [`DEFAULT_REPLAY_CAPACITY`] ids over the
    /// tolerance window). With several receiver processes, give them one
    /// guard on shared storage. Its window must be at least the tolerance.
    pub fn with_replay_guard(mut self, guard: Arc<dyn ReplayGuard>) -> Self {
        self.replay = guard;
        self.default_replay = false;
        self
    }

    /// Read the time from `clock` (unix seconds) instead of the system
    /// clock; for tests.
    pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Refuse bodies larger than this with `413` (default
    /// [`DEFAULT_MAX_BODY_BYTES`], 1 MiB).
    pub fn with_max_body_bytes(mut self, max_body_bytes: usize) -> Self {
        self.max_body_bytes = max_body_bytes;
        self
    }

    /// The tolerance in seconds.
    pub fn tolerance_secs(&self) -> i64 {
        self.tolerance_secs
    }

    /// The body size cap in bytes.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// The profile requests are verified with ([`Profile::Standard`] or
    /// [`Profile::Svix`] for a key ring, by its header names).
    pub fn profile_name(&self) -> Profile {
        match &*self.scheme {
            Scheme::Ring { names, .. } if *names == STANDARD_HEADERS => Profile::Standard,
            Scheme::Ring { .. } => Profile::Svix,
            Scheme::Profile { profile, .. } => *profile,
        }
    }

    /// Verifies one request given as its headers and raw body, then consults
    /// the replay guard. This is what the extractor does after reading the
    /// body; use it directly outside axum.
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: Bytes,
    ) -> std::result::Result<VerifiedWebhook, WebhookRejection> {
        let now = (self.clock)();
        let checked = match &*self.scheme {
            Scheme::Ring { ring, names } => self.verify_ring(ring, names, headers, &body, now),
            Scheme::Profile { profile, keys } => {
                self.verify_profile(*profile, keys, headers, &body, now)
            }
        }
        .map_err(WebhookRejection::from_verify)?;
        if let Some(replay) = &checked.replay {
            if let Err(e) = self.replay.check(&replay.key, replay.timestamp, now) {
                return Err(if e.is_duplicate() {
                    WebhookRejection::duplicate(checked.id.clone(), e)
                } else {
                    WebhookRejection::misconfigured(e)
                });
            }
        }
        Ok(VerifiedWebhook {
            id: checked.id,
            timestamp: checked.timestamp,
            body,
            key_label: checked.key_label,
            warnings: checked.warnings,
        })
    }

    fn verify_ring(
        &self,
        ring: &KeyRing,
        names: &HeaderNames,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<Checked> {
        let id = single_header(headers, names.id)?;
        let ts = single_header(headers, names.timestamp)?;
        let signature = single_header(headers, names.signature)?;
        let verified = standard::verify_with_names(
            names,
            ring,
            id,
            ts,
            signature,
            body,
            &VerifyOptions::new(now).with_tolerance(self.tolerance_secs),
        )?;
        // Verification accepted it, so it is 1 to 19 digits that fit an i64.
        let timestamp = ts.trim().parse::<i64>().map_err(|_| {
            Error::malformed(format!(
                "{} header is not a whole number of unix seconds",
                names.timestamp
            ))
        })?;
        Ok(Checked {
            id: Some(id.to_owned()),
            timestamp: Some(timestamp),
            key_label: verified.key_id.as_str().to_owned(),
            warnings: Vec::new(),
            replay: Some(ReplayKey {
                key: id.to_owned(),
                timestamp,
            }),
        })
    }

    fn verify_profile(
        &self,
        profile: Profile,
        keys: &[ProfileKey],
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<Checked> {
        let pairs: Vec<(String, String)> = headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let options = VerifyOptions::new(now).with_tolerance(self.tolerance_secs);
        let verified = profile.verify(keys, &pairs, body, &options)?;
        // Verification accepted the headers, so the ones read below are
        // present once and well formed; a failure to read them only leaves
        // the field empty.
        let text = |name: &str| single_header(headers, name).ok().filter(|v| !v.is_empty());
        let (id, timestamp, signature_header) = match profile {
            Profile::Standard | Profile::Svix => {
                let names = if profile == Profile::Standard {
                    STANDARD_HEADERS
                } else {
                    standard::SVIX_HEADERS
                };
                let id = text(names.id).map(str::to_owned);
                let ts = text(names.timestamp).and_then(|t| t.trim().parse().ok());
                return Ok(Checked {
                    replay: id.clone().map(|key| ReplayKey {
                        key,
                        timestamp: ts.unwrap_or(now),
                    }),
                    id,
                    timestamp: ts,
                    key_label: verified.key_label,
                    warnings: verified.warnings,
                });
            }
            Profile::Stromboli => (
                None,
                text(profiles::stromboli::TIMESTAMP_HEADER).and_then(|t| t.trim().parse().ok()),
                Some(profiles::stromboli::SIGNATURE_HEADER),
            ),
            Profile::Stripe => (
                None,
                text(profiles::stripe::SIGNATURE_HEADER)
                    .and_then(|v| profiles::stripe::parse_header(v).ok())
                    .map(|h| h.timestamp),
                Some(profiles::stripe::SIGNATURE_HEADER),
            ),
            Profile::Inngest => (
                None,
                text(profiles::inngest::SIGNATURE_HEADER)
                    .and_then(|v| profiles::inngest::parse_header(v).ok())
                    .map(|h| h.timestamp),
                Some(profiles::inngest::SIGNATURE_HEADER),
            ),
            Profile::Stem => (None, None, Some(profiles::stem::SIGNATURE_HEADER)),
            // Neither an id nor a timestamp is signed: nothing to dedupe on.
            Profile::Krafter | Profile::Github => (None, None, None),
        };
        let replay = signature_header.and_then(text).map(|value| ReplayKey {
            key: format!("sig:{}", hex::encode(Sha256::digest(value.as_bytes()))),
            timestamp: timestamp.unwrap_or(now),
        });
        Ok(Checked {
            id,
            timestamp,
            key_label: verified.key_label,
            warnings: verified.warnings,
            replay,
        })
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Verifier");
        match &*self.scheme {
            Scheme::Ring { ring, names } => d
                .field("profile", &self.profile_name().as_str())
                .field("signature_header", &names.signature)
                .field("ring", ring),
            Scheme::Profile { profile, keys } => {
                d.field("profile", &profile.as_str()).field("keys", keys)
            }
        };
        d.field("tolerance_secs", &self.tolerance_secs)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

fn default_guard(window_secs: i64) -> Arc<dyn ReplayGuard> {
    Arc::new(InMemoryReplayGuard::new(
        DEFAULT_REPLAY_CAPACITY,
        window_secs,
    ))
}

fn system_now() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        // A clock before 1970 is wrong; every timestamp will look too new,
        // which is the right answer for a receiver that cannot tell time.
        Err(_) => 0,
    }
}

/// The value of a header sent at most once, `""` when absent. A header sent
/// twice is malformed (which copy was signed is ambiguous), as is one that
/// is not visible ASCII.
fn single_header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok("");
    };
    let extra = values.count();
    if extra > 0 {
        return Err(Error::malformed(format!(
            "{name} header appears {} times; send it once",
            extra + 1
        )));
    }
    first
        .to_str()
        .map_err(|_| Error::malformed(format!("{name} header is not visible ASCII")))
}

/// What verification found, before the replay guard.
struct Checked {
    id: Option<String>,
    timestamp: Option<i64>,
    key_label: String,
    warnings: Vec<String>,
    replay: Option<ReplayKey>,
}

/// What the replay guard is asked about.
struct ReplayKey {
    key: String,
    timestamp: i64,
}

/// An authentic, fresh, first-seen request. Extract it in a handler whose
/// state provides a [`Verifier`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedWebhook {
    /// The signed message id (Standard Webhooks `webhook-id`, Svix
    /// `svix-id`); `None` for profiles that sign no id.
    pub id: Option<String>,
    /// The signed timestamp, unix seconds; `None` for profiles that sign
    /// none (Krafter, GitHub, Stem).
    pub timestamp: Option<i64>,
    /// The raw body, exactly as received and signed. Parse it yourself
    /// (`serde_json::from_slice(&hook.body)`); never re-serialise it to
    /// check a signature.
    pub body: Bytes,
    /// The key that verified: its id in the key ring (the ids the caller
    /// gave), or for profile keys without ids their position, `secret 1`,
    /// `secret 2`, … (never an id nobody chose).
    pub key_label: String,
    /// What the format does not protect (e.g. "replays cannot be
    /// detected"), for the receiver to log.
    pub warnings: Vec<String>,
}

impl<S> FromRequest<S> for VerifiedWebhook
where
    S: Send + Sync,
    Verifier: FromRef<S>,
{
    type Rejection = WebhookRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = Verifier::from_ref(state);
        let (parts, body) = req.into_parts();
        let body = read_body(&parts.headers, body, verifier.max_body_bytes).await?;
        verifier.verify(&parts.headers, body)
    }
}

/// Reads at most `limit` bytes of body; a declared or actual larger body is
/// refused without reading the rest.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> std::result::Result<Bytes, WebhookRejection> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(WebhookRejection::too_large(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(WebhookRejection::too_large(limit))
        }
        Err(e) => Err(WebhookRejection::unreadable(format!(
            "cannot read the request body: {e}"
        ))),
    }
}

/// Why the extractor did not hand a request to the handler, and the
/// response it answers with.
///
/// | case | status | body |
/// |---|---|---|
/// | signature, timestamp or headers wrong | `401` | `{"error":{"code":"signature-invalid","reason":…,"message":…}}` |
/// | duplicate of an authentic message | `200` | `{"duplicate":true,"id":…}` |
/// | body over the cap | `413` | `{"error":{"code":"body-too-large",…}}` |
/// | body could not be read | `400` | `{"error":{"code":"body-unreadable",…}}` |
/// | the verifier or its replay guard failed | `500` | `{"error":{"code":"receiver-misconfigured",…}}` (no detail) |
#[derive(Clone)]
pub struct WebhookRejection {
    kind: RejectionKind,
}

#[derive(Clone)]
enum RejectionKind {
    Invalid(Error),
    Duplicate { id: Option<String>, error: Error },
    TooLarge { limit: usize },
    Unreadable(String),
    Misconfigured(Error),
}

impl WebhookRejection {
    fn from_verify(error: Error) -> Self {
        if error.is_config() {
            Self::misconfigured(error)
        } else {
            Self {
                kind: RejectionKind::Invalid(error),
            }
        }
    }

    fn duplicate(id: Option<String>, error: Error) -> Self {
        Self {
            kind: RejectionKind::Duplicate { id, error },
        }
    }

    fn misconfigured(error: Error) -> Self {
        Self {
            kind: RejectionKind::Misconfigured(error),
        }
    }

    fn too_large(limit: usize) -> Self {
        Self {
            kind: RejectionKind::TooLarge { limit },
        }
    }

    fn unreadable(message: String) -> Self {
        Self {
            kind: RejectionKind::Unreadable(message),
        }
    }

    /// The status this rejection answers with.
    pub fn status(&self) -> StatusCode {
        match &self.kind {
            RejectionKind::Invalid(_) => StatusCode::UNAUTHORIZED,
            RejectionKind::Duplicate { .. } => StatusCode::OK,
            RejectionKind::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            RejectionKind::Unreadable(_) => StatusCode::BAD_REQUEST,
            RejectionKind::Misconfigured(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether the request was an authentic message seen before (answered
    /// `200` without running the handler).
    pub fn is_duplicate(&self) -> bool {
        matches!(self.kind, RejectionKind::Duplicate { .. })
    }

    /// Whether the signature, timestamp or signature headers were wrong
    /// (answered `401`).
    pub fn is_invalid(&self) -> bool {
        matches!(self.kind, RejectionKind::Invalid(_))
    }

    /// A stable code: the [`Error::reason`] of a verification failure
    /// (`missing`, `mismatch`, `too-old`, …), `duplicate`, `body-too-large`,
    /// `body-unreadable`, or `receiver-misconfigured`.
    pub fn reason(&self) -> &'static str {
        match &self.kind {
            RejectionKind::Invalid(e) => e.reason(),
            RejectionKind::Duplicate { .. } => "duplicate",
            RejectionKind::TooLarge { .. } => "body-too-large",
            RejectionKind::Unreadable(_) => "body-unreadable",
            RejectionKind::Misconfigured(_) => "receiver-misconfigured",
        }
    }

    /// The message id of a duplicate, when the format signs one.
    pub fn duplicate_id(&self) -> Option<&str> {
        match &self.kind {
            RejectionKind::Duplicate { id, .. } => id.as_deref(),
            _ => None,
        }
    }

    /// The error from `signet-sign`, for verification failures, duplicates
    /// and configuration problems.
    pub fn error(&self) -> Option<&Error> {
        match &self.kind {
            RejectionKind::Invalid(e)
            | RejectionKind::Duplicate { error: e, .. }
            | RejectionKind::Misconfigured(e) => Some(e),
            RejectionKind::TooLarge { .. } | RejectionKind::Unreadable(_) => None,
        }
    }

    /// What was wrong, for the receiver's own log. For a misconfigured
    /// receiver this has the detail the response leaves out.
    pub fn message(&self) -> String {
        match &self.kind {
            RejectionKind::Invalid(e)
            | RejectionKind::Duplicate { error: e, .. }
            | RejectionKind::Misconfigured(e) => e.message().to_owned(),
            RejectionKind::TooLarge { limit } => too_large_message(*limit),
            RejectionKind::Unreadable(m) => m.clone(),
        }
    }

    /// The JSON body of the response.
    fn body(&self) -> serde_json::Value {
        let error = |code: &str, message: String| serde_json::json!({ "error": { "code": code, "message": message } });
        match &self.kind {
            RejectionKind::Invalid(e) => serde_json::json!({
                "error": {
                    "code": "signature-invalid",
                    "reason": e.reason(),
                    "message": e.message(),
                }
            }),
            RejectionKind::Duplicate { id, .. } => match id {
                Some(id) => serde_json::json!({ "duplicate": true, "id": id }),
                None => serde_json::json!({ "duplicate": true }),
            },
            RejectionKind::TooLarge { limit } => error("body-too-large", too_large_message(*limit)),
            RejectionKind::Unreadable(_) => error(
                "body-unreadable",
                "the request body could not be read; send it again".to_owned(),
            ),
            // The detail is for the receiver's operator (`message()`), not
            // for whoever sent the request.
            RejectionKind::Misconfigured(_) => error(
                "receiver-misconfigured",
                "this receiver cannot verify requests now; its operator must fix its configuration"
                    .to_owned(),
            ),
        }
    }
}

fn too_large_message(limit: usize) -> String {
    format!("request body is larger than {limit} bytes; this receiver accepts at most {limit}")
}

impl IntoResponse for WebhookRejection {
    fn into_response(self) -> Response {
        let body = self.body().to_string();
        let mut response = (self.status(), body).into_response();
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}

impl fmt::Display for WebhookRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl fmt::Debug for WebhookRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WebhookRejection({} {}: {})",
            self.status().as_u16(),
            self.reason(),
            self.message()
        )
    }
}

impl std::error::Error for WebhookRejection {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_answer_the_documented_status_and_json() {
        let invalid = WebhookRejection::from_verify(Error::too_old(
            "timestamp is 412 s old; tolerance is 300 s",
        ));
        assert_eq!(invalid.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            invalid.body(),
            serde_json::json!({"error":{"code":"signature-invalid","reason":"too-old","message":"timestamp is 412 s old; tolerance is 300 s"}})
        );
        let dup = WebhookRejection::duplicate(Some("msg_1".into()), Error::duplicate("seen"));
        assert_eq!(dup.status(), StatusCode::OK);
        assert_eq!(
            dup.body(),
            serde_json::json!({"duplicate":true,"id":"msg_1"})
        );
        assert!(dup.is_duplicate() && !dup.is_invalid());
        let config = WebhookRejection::from_verify(Error::config("key ring detail"));
        assert_eq!(config.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!config.body().to_string().contains("key ring detail"));
        assert_eq!(config.message(), "key ring detail");
        assert_eq!(
            WebhookRejection::too_large(10).status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }

    #[test]
    fn empty_keys_are_a_configuration_error() {
        assert!(Verifier::standard(KeyRing::empty())
            .unwrap_err()
            .is_config());
        assert!(Verifier::profile(Profile::Github, Vec::new())
            .unwrap_err()
            .is_config());
        let stripe_key = Profile::Stripe.parse_key("whsec_abc").unwrap();
        assert!(Verifier::profile(Profile::Inngest, vec![stripe_key])
            .unwrap_err()
            .is_config());
    }
}
