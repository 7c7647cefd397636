//! API keys: `sk_…` secrets, stored only as their SHA-256 hash, with a scope.
//!
//! Scopes are ordered: `read` may call every `GET` route but those of
//! targets; `publish` may also enqueue (`POST /v1/tasks`,
//! `POST /v1/tasks/batch`) and publish messages (`POST /v1/messages`,
//! `POST /v1/messages/batch`);
//! `work` is a worker's: it may also claim and report tasks over the pull
//! protocol (`POST /v1/work/…`) and, as a `publish` key, enqueue follow-up
//! work, but like every scope below `admin` it never sees what messages
//! carry; `admin` may do everything (cancel, replay, purge, targets). Which
//! scope a route needs is decided in one place,
//! [`required_scope`].
//!
//! A presented key is hashed and looked up by hash; the stored hash is then
//! compared with the computed one in constant time. Keys found are cached
//! for [`KEY_CACHE_TTL`], so a key revoked from another process stops
//! working within that time.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use axum::http::Method;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use signet_store::{ApiKeyId, ApiKeyRecord, Store, StoreError};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::AppError;

/// Prefix of every API key secret.
pub(crate) const SECRET_PREFIX: &str = "sk_";
/// Random bytes in a secret (256 bits).
const SECRET_BYTES: usize = 32;
/// Characters of the secret kept as its recognisable prefix (`sk_` + 8).
const PREFIX_LEN: usize = SECRET_PREFIX.len() + 8;
/// How long a looked-up key is trusted without asking the store again.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(5);
/// Most keys cached at once (the cache is cleared when full).
const KEY_CACHE_MAX: usize = 10_000;
/// Longest API key name.
pub(crate) const MAX_NAME_LEN: usize = 100;

/// What an API key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// `GET` routes.
    Read,
    /// `read` plus `POST /v1/tasks`, `POST /v1/tasks/batch`,
    /// `POST /v1/messages` and `POST /v1/messages/batch`.
    Publish,
    /// `publish` plus the worker protocol (`POST /v1/work/…`: claim,
    /// heartbeat, complete, fail). Sees no message payloads.
    Work,
    /// Everything.
    Admin,
}

impl Scope {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Publish => "publish",
            Scope::Work => "work",
            Scope::Admin => "admin",
        }
    }

    /// Whether a key with this scope may call a route that needs `needed`.
    pub fn allows(self, needed: Scope) -> bool {
        self >= needed
    }

    /// Whether a key with this scope sees what a message carries for its
    /// receiver: its headers, its body and the values of its URL's query,
    /// which hold the receiver's credentials. Only `admin` does; every
    /// route that shows a message asks this (through
    /// `views::MessageRequestView`).
    pub fn sees_message_payloads(self) -> bool {
        self == Scope::Admin
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "read" => Ok(Scope::Read),
            "publish" => Ok(Scope::Publish),
            "work" => Ok(Scope::Work),
            "admin" => Ok(Scope::Admin),
            other => Err(format!(
                "unknown scope {other:?}; use one of admin, work, publish, read"
            )),
        }
    }
}

/// The scope a `/v1` route needs: `GET` needs `read`, enqueueing needs
/// `publish`, the worker protocol needs `work`, every other change needs
/// `admin`.
pub(crate) fn required_scope(method: &Method, path: &str) -> Scope {
    if path == "/v1/targets" || path.starts_with("/v1/targets/") {
        // Targets hold secrets and limits: admin only, reads included.
        Scope::Admin
    } else if method == Method::GET || method == Method::HEAD {
        Scope::Read
    } else if method == Method::POST
        && matches!(
            path,
            "/v1/tasks" | "/v1/tasks/batch" | "/v1/messages" | "/v1/messages/batch"
        )
    {
        Scope::Publish
    } else if method == Method::POST && path.starts_with("/v1/work/") {
        Scope::Work
    } else {
        Scope::Admin
    }
}

/// An API key secret (`sk_…`). Shown to a person once, then only its hash is
/// kept. No `Clone`, redacted `Debug`, zeroized on drop.
pub struct ApiKeySecret(Zeroizing<String>);

impl ApiKeySecret {
    /// A fresh random secret.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; SECRET_BYTES]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        let mut text = Zeroizing::new(String::with_capacity(SECRET_PREFIX.len() + 43));
        text.push_str(SECRET_PREFIX);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(bytes.as_ref(), &mut text);
        Self(text)
    }

    /// The secret text, to print once. Named so reviewers see it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// SHA-256 of the secret, lower-case hex: what the store keeps.
    pub fn hash(&self) -> String {
        hash_key(&self.0)
    }

    /// The first characters, for recognising the key in listings.
    pub fn prefix(&self) -> String {
        self.0.chars().take(PREFIX_LEN).collect()
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeySecret({}…, redacted)", self.prefix())
    }
}

/// The bearer token that `/metrics` asks for when set (`signet serve
/// --metrics-token`, `SIGNET_METRICS_TOKEN`). No `Clone`, redacted `Debug`,
/// zeroized on drop, compared in constant time; it is never logged.
pub struct MetricsToken(Zeroizing<String>);

impl MetricsToken {
    /// A token from its text; `None` when it is empty (no token).
    pub fn new(text: impl Into<String>) -> Option<Self> {
        let text = Zeroizing::new(text.into());
        (!text.trim().is_empty()).then(|| Self(text))
    }

    /// Whether an `Authorization` header value presents this token as
    /// `Bearer <token>`. Both sides are hashed first, so the comparison
    /// takes the same time whatever the lengths.
    pub(crate) fn admits(&self, authorization: Option<&[u8]>) -> bool {
        let presented = authorization
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            });
        let Some(presented) = presented else {
            return false;
        };
        let want = Sha256::digest(self.0.as_bytes());
        let got = Sha256::digest(presented.as_bytes());
        bool::from(want.ct_eq(&got))
    }
}

impl fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MetricsToken(redacted)")
    }
}

/// SHA-256 of a presented key, lower-case hex.
pub(crate) fn hash_key(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A key just created: the record as stored and the secret to show once.
#[derive(Debug)]
pub struct NewApiKey {
    /// As stored (hash, not the secret).
    pub record: ApiKeyRecord,
    /// The secret, to print once.
    pub secret: ApiKeySecret,
}

/// Checks an API key name: 1 to `MAX_NAME_LEN` characters, no control characters.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("the key name is empty; give it a name people recognise".into());
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(format!(
            "the key name is longer than {MAX_NAME_LEN} characters"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("the key name contains control characters; remove them".into());
    }
    Ok(())
}

/// Creates and stores a new API key.
pub async fn create_api_key(
    store: &dyn Store,
    name: &str,
    scope: Scope,
    now_ms: i64,
) -> Result<NewApiKey, StoreError> {
    validate_name(name).map_err(StoreError::Invalid)?;
    let secret = ApiKeySecret::generate();
    let record = ApiKeyRecord {
        id: ApiKeyId::generate().to_string(),
        name: name.to_owned(),
        scope: scope.as_str().to_owned(),
        hash: secret.hash(),
        prefix: secret.prefix(),
        created_at_ms: now_ms,
        revoked_at_ms: None,
    };
    store.create_api_key(record.clone()).await?;
    Ok(NewApiKey { record, secret })
}

/// Who made a request: an authenticated API key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Caller {
    /// The key id (`key_…`), never the secret.
    pub(crate) key_id: String,
    /// The key's name.
    pub(crate) name: String,
    /// Its scope.
    pub(crate) scope: Scope,
    /// Whether this is the operator on the store itself (no API key): see
    /// [`Caller::operator`].
    pub(crate) operator: bool,
}

impl Caller {
    /// The operator working on the store directly (`signet` without
    /// `--url`, [`operator_app`](crate::operator_app)): whoever can open the
    /// database can do anything, so the scope is admin; acts are recorded
    /// as `actor` and idempotency keys are the store's own
    /// ([`IdempotencyScope::Local`](signet_store::IdempotencyScope::Local)),
    /// as when the CLI wrote to the store itself.
    pub(crate) fn operator(actor: String) -> Self {
        Self {
            key_id: String::new(),
            name: actor,
            scope: Scope::Admin,
            operator: true,
        }
    }

    /// The scope of the idempotency keys this caller sends: its own, so a
    /// key never returns another API key's task or message.
    pub(crate) fn idempotency_scope(&self) -> signet_store::IdempotencyScope {
        if self.operator {
            return signet_store::IdempotencyScope::Local;
        }
        signet_store::IdempotencyScope::ApiKey(self.key_id.clone())
    }

    /// How operator acts by this caller are recorded in a task's history:
    /// `api key <id> (<name>)`, never the secret; the operator's own actor
    /// as given.
    pub(crate) fn actor(&self) -> String {
        if self.operator {
            return self.name.clone();
        }
        let mut name: String = self.name.chars().take(128).collect();
        if name.len() < self.name.len() {
            name.push('…');
        }
        format!("api key {} ({name})", self.key_id)
    }
}

/// The caller of a `/v1` route, as the gate found it. Missing only if a
/// route were outside the gate; then the request is refused, never served
/// as if some key had made it.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, AppError> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            AppError::Unauthorized("missing API key; send `Authorization: Bearer sk_…`".into())
        })
    }
}

struct Cached {
    caller: Caller,
    hash: String,
    at: Instant,
}

/// Looks up presented keys, with a short cache.
#[derive(Default)]
pub(crate) struct Authenticator {
    cache: RwLock<HashMap<String, Cached>>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.cache.read().map_or(0, |c| c.len());
        f.debug_struct("Authenticator")
            .field("cached_keys", &n)
            .finish()
    }
}

impl Authenticator {
    /// The caller for an `Authorization` header value.
    pub(crate) async fn authenticate(
        &self,
        store: &dyn Store,
        authorization: Option<&[u8]>,
    ) -> Result<Caller, AppError> {
        let Some(value) = authorization else {
            return Err(AppError::Unauthorized(
                "missing API key; send `Authorization: Bearer sk_…` (create one with `signet api-keys create`)".into(),
            ));
        };
        let token = std::str::from_utf8(value)
            .ok()
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(|| {
                AppError::Unauthorized("the Authorization header is not `Bearer sk_…`".into())
            })?;
        if !token.starts_with(SECRET_PREFIX) {
            return Err(AppError::Unauthorized(
                "invalid API key: it does not start with sk_".into(),
            ));
        }
        self.caller_by_hash(store, &hash_key(token)).await
    }

    /// The caller whose key hashes to `hash` (what [`hash_key`] made of a
    /// presented key), from the cache when it is fresh, else [`Self::look_up`].
    async fn caller_by_hash(&self, store: &dyn Store, hash: &str) -> Result<Caller, AppError> {
        if let Some(caller) = self.cached(hash) {
            return Ok(caller);
        }
        self.look_up(store, hash).await
    }

    /// The caller whose key hashes to `hash`, asked of the store now: found,
    /// not revoked, with a known scope. The console asks this on every
    /// request of a session (which keeps the hash, never the key), so a
    /// revoked key ends its sessions at once.
    pub(crate) async fn look_up(&self, store: &dyn Store, hash: &str) -> Result<Caller, AppError> {
        let hash = hash.to_owned();
        let record = store.api_key_by_hash(&hash).await?;
        let record = match record {
            Some(r) if bool::from(r.hash.as_bytes().ct_eq(hash.as_bytes())) => r,
            _ => return Err(AppError::Unauthorized("invalid API key".into())),
        };
        if record.revoked_at_ms.is_some() {
            return Err(AppError::Unauthorized(
                "this API key was revoked; create a new one".into(),
            ));
        }
        let scope = record.scope.parse::<Scope>().map_err(|e| {
            AppError::Internal(format!("API key {} has a bad stored scope: {e}", record.id).into())
        })?;
        let caller = Caller {
            key_id: record.id,
            name: record.name,
            scope,
            operator: false,
        };
        self.remember(hash, caller.clone());
        Ok(caller)
    }

    fn cached(&self, hash: &str) -> Option<Caller> {
        let cache = self.cache.read().ok()?;
        let hit = cache.get(hash)?;
        (hit.at.elapsed() < KEY_CACHE_TTL && bool::from(hit.hash.as_bytes().ct_eq(hash.as_bytes())))
            .then(|| hit.caller.clone())
    }

    fn remember(&self, hash: String, caller: Caller) {
        if let Ok(mut cache) = self.cache.write() {
            if cache.len() >= KEY_CACHE_MAX {
                cache.clear();
            }
            cache.insert(
                hash.clone(),
                Cached {
                    caller,
                    hash,
                    at: Instant::now(),
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_prefixed_and_redacted() {
        let a = ApiKeySecret::generate();
        let b = ApiKeySecret::generate();
        assert!(a.expose_secret().starts_with("sk_"));
        assert_eq!(a.expose_secret().len(), 3 + 43);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(a.hash().len(), 64);
        assert_eq!(a.hash(), hash_key(a.expose_secret()));
        assert!(a.expose_secret().starts_with(&a.prefix()));
        let debug = format!("{a:?}");
        assert!(!debug.contains(a.expose_secret()), "{debug}");
    }

    #[test]
    fn scopes_are_ordered_and_routes_need_the_right_one() {
        assert!(Scope::Admin.allows(Scope::Publish));
        assert!(Scope::Admin.allows(Scope::Work));
        assert!(Scope::Work.allows(Scope::Publish));
        assert!(Scope::Publish.allows(Scope::Read));
        assert!(!Scope::Read.allows(Scope::Publish));
        assert!(!Scope::Publish.allows(Scope::Work));
        assert!(!Scope::Publish.allows(Scope::Admin));
        assert!(!Scope::Work.allows(Scope::Admin));
        assert!(!Scope::Work.sees_message_payloads());
        assert_eq!("work".parse::<Scope>(), Ok(Scope::Work));
        assert_eq!(Scope::Work.as_str(), "work");
        assert_eq!(required_scope(&Method::POST, "/v1/work/claim"), Scope::Work);
        assert_eq!(required_scope(&Method::GET, "/v1/tasks"), Scope::Read);
        assert_eq!(required_scope(&Method::POST, "/v1/tasks"), Scope::Publish);
        assert_eq!(
            required_scope(&Method::POST, "/v1/tasks/batch"),
            Scope::Publish
        );
        assert_eq!(
            required_scope(&Method::POST, "/v1/messages/batch"),
            Scope::Publish
        );
        assert_eq!(
            required_scope(&Method::POST, "/v1/messages/msg_x/resend"),
            Scope::Admin
        );
        assert_eq!(
            required_scope(&Method::POST, "/v1/tasks/{id}/cancel"),
            Scope::Admin
        );
        assert_eq!(
            required_scope(&Method::POST, "/v1/dead-letters/purge"),
            Scope::Admin
        );
        assert!("root".parse::<Scope>().is_err());
        for scope in [Scope::Read, Scope::Publish, Scope::Work, Scope::Admin] {
            assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
        }
    }

    #[test]
    fn the_metrics_token_admits_only_itself_and_never_shows() {
        assert!(MetricsToken::new("  ").is_none());
        let token = MetricsToken::new("m3trics-t0ken").unwrap();
        assert!(token.admits(Some(b"Bearer m3trics-t0ken")));
        assert!(token.admits(Some(b"bearer  m3trics-t0ken ")));
        for wrong in [
            &b"Bearer m3trics-t0ke"[..],
            b"Bearer m3trics-t0ken2",
            b"Basic m3trics-t0ken",
            b"m3trics-t0ken",
            b"Bearer \xff",
        ] {
            assert!(!token.admits(Some(wrong)), "{wrong:?}");
        }
        assert!(!token.admits(None));
        assert!(!format!("{token:?}").contains("t0ken"));
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("ci").is_ok());
        assert!(validate_name(" ").is_err());
        assert!(validate_name("a\nb").is_err());
        assert!(validate_name(&"x".repeat(101)).is_err());
    }
}
