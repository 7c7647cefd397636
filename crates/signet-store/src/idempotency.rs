//! Idempotency keys: whose they are ([`IdempotencyScope`]), what they key
//! ([`IdempotencyKind`]), and the request they were first used with
//! ([`Fingerprint`]).
//!
//! A key is unique per `(scope, kind, key)`: the same text used by two API
//! keys, or by a task and a message, makes two rows. Reused within its
//! scope and kind, a key returns the first row when the request is the
//! same, and fails with [`IdempotencyConflict`] naming the fields that
//! differ when it is not. Only a digest per field is stored, never the
//! request itself.
//!
//! Rows stored before scopes existed are in the scope `legacy`; the scopes
//! that stand for the operator itself ([`IdempotencyScope::Local`] and
//! [`IdempotencyScope::System`]) still find them, so a schedule's due time
//! or a CLI key used before the upgrade is not enqueued twice. API keys
//! never see them (a legacy row may be anyone's).

use std::fmt;

use sha2::{Digest, Sha256};

use crate::error::StoreError;

/// The stored scope of rows keyed before scopes existed.
pub const LEGACY_SCOPE: &str = "legacy";

/// Bytes of SHA-256 kept per field of a [`Fingerprint`].
const FIELD_DIGEST_BYTES: usize = 8;

/// Whose idempotency key it is: keys of different scopes never meet.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum IdempotencyScope {
    /// Code using the store directly: the CLI and a Rust `Producer` or
    /// `MessageProducer` built by the application (the default).
    #[default]
    Local,
    /// Signet's own keys (a schedule's due time, a finished task's
    /// callback). Such a key names one event, so it carries no fingerprint:
    /// the first enqueue for the event wins.
    System,
    /// An HTTP caller: the id (`key_…`) of the API key it authenticated
    /// with (an id, so never one of the words `local`, `system`, `legacy`).
    ApiKey(String),
}

impl IdempotencyScope {
    /// The stored form: `local`, `system`, or the API key id.
    pub fn as_str(&self) -> &str {
        match self {
            IdempotencyScope::Local => "local",
            IdempotencyScope::System => "system",
            IdempotencyScope::ApiKey(id) => id,
        }
    }

    /// Whether this scope also finds keys stored before scopes existed
    /// ([`LEGACY_SCOPE`]): only the operator's own scopes do.
    pub fn reads_legacy(&self) -> bool {
        matches!(self, IdempotencyScope::Local | IdempotencyScope::System)
    }

    /// Whether a reused key is checked against the request it was first
    /// used with (every scope but [`IdempotencyScope::System`]).
    pub fn compares_requests(&self) -> bool {
        !matches!(self, IdempotencyScope::System)
    }
}

impl fmt::Display for IdempotencyScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a key is for: a task and a message may use the same key text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdempotencyKind {
    /// A task (`task_…` id).
    Task,
    /// A message (`msg_…` id).
    Message,
}

impl IdempotencyKind {
    /// The kind of the row with this id.
    pub fn of_id(id: &str) -> Self {
        if id.starts_with(crate::MessageId::PREFIX) {
            IdempotencyKind::Message
        } else {
            IdempotencyKind::Task
        }
    }

    /// The stored form: `task` or `message`.
    pub fn as_str(self) -> &'static str {
        match self {
            IdempotencyKind::Task => "task",
            IdempotencyKind::Message => "message",
        }
    }
}

/// A digest per field of a request, in the order the fields were added.
///
/// Built by whoever knows what the caller asked for (the producer from a
/// task spec, publishing from a message request), so that a relative delay
/// is compared as the delay and not as the instant it resolved to. Stored
/// as `name=hex;name=hex` (16 hex digits of SHA-256 per field); fields
/// present in only one of two fingerprints are not compared, so a field
/// added later does not turn every earlier key into a conflict, and an
/// empty fingerprint (a legacy row, a [`IdempotencyScope::System`] key)
/// matches any request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fingerprint {
    fields: Vec<(&'static str, String)>,
}

impl Fingerprint {
    /// An empty fingerprint: matches any request.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds field `name` with value `bytes` (hashed here; the value is not
    /// kept).
    pub fn field(mut self, name: &'static str, bytes: impl AsRef<[u8]>) -> Self {
        let digest = Sha256::new()
            .chain_update(name.as_bytes())
            .chain_update([0])
            .chain_update(bytes.as_ref())
            .finalize();
        self.fields
            .push((name, hex::encode(&digest[..FIELD_DIGEST_BYTES])));
        self
    }

    /// Adds an optional field: absent and present (even empty) differ.
    pub fn optional(self, name: &'static str, value: Option<impl AsRef<[u8]>>) -> Self {
        match value {
            Some(v) => {
                let mut bytes = vec![1];
                bytes.extend_from_slice(v.as_ref());
                self.field(name, bytes)
            }
            None => self.field(name, [0]),
        }
    }

    /// Whether no field was added.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The stored form (`None` when empty).
    pub fn encode(&self) -> Option<String> {
        if self.fields.is_empty() {
            return None;
        }
        let parts: Vec<String> = self
            .fields
            .iter()
            .map(|(name, digest)| format!("{name}={digest}"))
            .collect();
        Some(parts.join(";"))
    }

    /// The fields of `self` whose digests differ from those in `stored` (a
    /// stored form from [`Fingerprint::encode`]), in `self`'s order. A field
    /// missing from either side is not compared; a stored part that does not
    /// read as `name=digest` is skipped (it cannot match any field).
    pub fn differing_from(&self, stored: Option<&str>) -> Vec<&'static str> {
        let Some(stored) = stored else {
            return Vec::new();
        };
        let old: Vec<(&str, &str)> = stored
            .split(';')
            .filter_map(|part| part.split_once('='))
            .collect();
        self.fields
            .iter()
            .filter(|(name, digest)| {
                old.iter()
                    .find(|(n, _)| n == name)
                    .is_some_and(|(_, d)| d != digest)
            })
            .map(|(name, _)| *name)
            .collect()
    }
}

/// The idempotency fields of a [`NewTask`](crate::NewTask), as a store
/// writes and looks them up.
#[derive(Clone, Debug)]
pub struct IdempotencyClaim<'a> {
    /// The key.
    pub key: &'a str,
    /// Its scope.
    pub scope: &'a IdempotencyScope,
    /// The kind of the task carrying it.
    pub kind: IdempotencyKind,
    /// The request's fingerprint (stored for every scope; compared only
    /// where the scope compares requests, never for
    /// [`IdempotencyScope::System`]).
    pub fingerprint: &'a Fingerprint,
}

impl<'a> IdempotencyClaim<'a> {
    /// The scopes to look the key up in, in order: its own, then
    /// [`LEGACY_SCOPE`] when the scope [reads legacy
    /// keys](IdempotencyScope::reads_legacy).
    pub fn lookup_scopes(&self) -> Vec<&'a str> {
        let mut scopes = vec![self.scope.as_str()];
        if self.scope.reads_legacy() {
            scopes.push(LEGACY_SCOPE);
        }
        scopes
    }

    /// Whether this key, found on a row whose stored fingerprint is
    /// `stored`, asks for the same request: `Ok` to return that row,
    /// [`StoreError::IdempotencyConflict`] naming what differs otherwise.
    pub fn check_same_request(&self, stored: Option<&str>) -> Result<(), StoreError> {
        if !self.scope.compares_requests() {
            return Ok(());
        }
        let differing = self.fingerprint.differing_from(stored);
        if differing.is_empty() {
            return Ok(());
        }
        Err(StoreError::IdempotencyConflict(IdempotencyConflict {
            key: self.key.to_owned(),
            fields: differing.into_iter().map(str::to_owned).collect(),
        }))
    }

    /// The stored fingerprint column (`None` for an empty one).
    pub fn stored_fingerprint(&self) -> Option<String> {
        self.fingerprint.encode()
    }
}

/// An idempotency key reused, in its scope and kind, with a request that
/// differs from the one it was first used with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyConflict {
    /// The key.
    pub key: String,
    /// The fields that differ, as the request names them.
    pub fields: Vec<String>,
}

impl fmt::Display for IdempotencyConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.fields.len() == 1 {
            "differs"
        } else {
            "differ"
        };
        write!(
            f,
            "Idempotency-Key {:?} was first used with a different request ({} {verb}); use a new key for a new request",
            self.key,
            self.fields.join(", ")
        )
    }
}

impl std::error::Error for IdempotencyConflict {}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(args: &str, priority: i32) -> Fingerprint {
        Fingerprint::new()
            .field("args", args)
            .field("priority", priority.to_string())
            .optional("callback_url", None::<&str>)
    }

    #[test]
    fn same_fields_match_and_differing_ones_are_named() {
        let first = fp("{}", 0).encode();
        assert!(fp("{}", 0).differing_from(first.as_deref()).is_empty());
        assert_eq!(
            fp("{\"n\":1}", 5).differing_from(first.as_deref()),
            vec!["args", "priority"]
        );
        // Absent and empty differ.
        let empty_url = Fingerprint::new().optional("callback_url", Some(""));
        let no_url = Fingerprint::new().optional("callback_url", None::<&str>);
        assert_eq!(
            empty_url.differing_from(no_url.encode().as_deref()),
            vec!["callback_url"]
        );
    }

    #[test]
    fn empty_legacy_and_unknown_fields_are_not_compared() {
        assert!(fp("{}", 0).differing_from(None).is_empty());
        assert!(Fingerprint::new().encode().is_none());
        assert!(fp("{}", 0)
            .differing_from(Some("other=00;garbage;args"))
            .is_empty());
    }

    #[test]
    fn the_conflict_names_the_key_and_the_fields_and_system_keys_never_conflict() {
        let scope = IdempotencyScope::ApiKey("key_a".into());
        let print = fp("{\"n\":2}", 0);
        let claim = IdempotencyClaim {
            key: "abc",
            scope: &scope,
            kind: IdempotencyKind::Task,
            fingerprint: &print,
        };
        let stored = fp("{\"n\":1}", 0).encode();
        let err = claim.check_same_request(stored.as_deref()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Idempotency-Key \"abc\" was first used with a different request (args differs); use a new key for a new request"
        );
        let system = IdempotencyScope::System;
        let claim = IdempotencyClaim {
            scope: &system,
            ..claim
        };
        assert!(claim.check_same_request(stored.as_deref()).is_ok());
        assert_eq!(claim.lookup_scopes(), vec!["system", LEGACY_SCOPE]);
        assert_eq!(
            IdempotencyClaim {
                scope: &scope,
                ..claim
            }
            .lookup_scopes(),
            vec!["key_a"]
        );
    }

    #[test]
    fn kinds_follow_the_id_prefix() {
        assert_eq!(IdempotencyKind::of_id("msg_x"), IdempotencyKind::Message);
        assert_eq!(IdempotencyKind::of_id("task_x"), IdempotencyKind::Task);
    }
}
