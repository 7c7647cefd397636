//! A target's secrets: the secret type, the opened list (current first,
//! then earlier ones still in their overlap), and how the list is sealed
//! under the master key with the target id as associated data.

use std::fmt;

use base64::Engine as _;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use signet_sign::sealed::MasterKey;
use signet_store::rules;
use signet_store::TargetRecord;
use zeroize::{Zeroize, Zeroizing};

use crate::error::RuntimeError;

/// Random bytes in a generated secret.
pub const GENERATED_SECRET_BYTES: usize = 32;
/// Version of the sealed list layout.
const SEALED_LIST_VERSION: u8 = 1;

/// A target's signing secret. A secret type: no `Clone`, `Serialize` or
/// `PartialEq`, a redacted `Debug`, zeroized on drop.
pub struct TargetSecret(Zeroizing<String>);

impl TargetSecret {
    /// A fresh `whsec_` secret of 32 random bytes.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; GENERATED_SECRET_BYTES]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        let mut text = Zeroizing::new(String::with_capacity(52));
        text.push_str(signet_sign::standard::HMAC_SECRET_PREFIX);
        base64::engine::general_purpose::STANDARD.encode_string(bytes.as_ref(), &mut text);
        Self(text)
    }

    /// A secret chosen by the caller: 16 to 256 visible ASCII characters.
    /// The error never quotes it.
    pub fn parse(text: &str) -> Result<Self, RuntimeError> {
        rules::target_secret(text)?;
        Ok(Self(Zeroizing::new(text.to_owned())))
    }

    /// The secret text, to hand to a person once or to a signer. Named so
    /// reviewers see it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// A loggable, non-reversible fingerprint keyed by the master key and
    /// bound to the target (`hmac:` + 16 hex digits, see
    /// [`MasterKey::fingerprint_secret`]): it cannot confirm a guessed
    /// secret without the master key, and equal secrets of two targets
    /// print differently.
    pub fn fingerprint(&self, master: &MasterKey, target_id: &str) -> String {
        master.fingerprint_secret(target_id.as_bytes(), self.0.as_bytes())
    }

    fn duplicate(&self) -> Self {
        Self(self.0.clone())
    }
}

impl fmt::Debug for TargetSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TargetSecret(<redacted>)")
    }
}

/// A target's opened secrets: the current one first, then earlier ones with
/// the time they stop signing.
pub struct TargetSecrets {
    pub(super) entries: Vec<(TargetSecret, Option<i64>)>,
}

impl TargetSecrets {
    /// The current secret.
    pub fn current(&self) -> Option<&TargetSecret> {
        self.entries.first().map(|(s, _)| s)
    }

    /// The secrets that sign at `now_ms`: the current one and every earlier
    /// one whose overlap has not ended.
    pub fn signing_at(&self, now_ms: i64) -> impl Iterator<Item = &TargetSecret> {
        self.entries
            .iter()
            .filter(move |(_, expires)| signs_at(*expires, now_ms))
            .map(|(s, _)| s)
    }

    /// The positions of the secrets that still sign at `now_ms` (as
    /// [`TargetSecrets::signing_at`] gives them), to tell when that set
    /// changed.
    pub(crate) fn signing_positions(&self, now_ms: i64) -> impl Iterator<Item = usize> + '_ {
        self.entries
            .iter()
            .enumerate()
            .filter(move |(_, (_, expires))| signs_at(*expires, now_ms))
            .map(|(i, _)| i)
    }

    /// How many secrets there are, expired ones included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl fmt::Debug for TargetSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|(s, e)| (s, e)))
            .finish()
    }
}

/// One secret as sealed.
#[derive(Serialize, Deserialize)]
struct SealedEntry {
    secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at_ms: Option<i64>,
}

impl Drop for SealedEntry {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

#[derive(Serialize, Deserialize)]
struct SealedList {
    v: u8,
    secrets: Vec<SealedEntry>,
}

/// Seals `entries` (current first) for `target_id`.
pub(super) fn seal(
    master: &MasterKey,
    target_id: &str,
    entries: &[(&TargetSecret, Option<i64>)],
) -> Result<Vec<u8>, RuntimeError> {
    let list = SealedList {
        v: SEALED_LIST_VERSION,
        secrets: entries
            .iter()
            .map(|(s, expires_at_ms)| SealedEntry {
                secret: s.expose_secret().to_owned(),
                expires_at_ms: *expires_at_ms,
            })
            .collect(),
    };
    let plain = Zeroizing::new(serde_json::to_vec(&list).map_err(RuntimeError::Args)?);
    Ok(master.seal(&plain, target_id.as_bytes()))
}

/// Opens a target's sealed list.
pub(super) fn open(
    master: &MasterKey,
    target: &TargetRecord,
) -> Result<TargetSecrets, RuntimeError> {
    let plain = master
        .open(&target.sealed_secrets, target.id.as_bytes())
        .map_err(|e| {
            RuntimeError::MasterKey(format!(
                "the secrets of target {} do not open: {}",
                target.name,
                e.message()
            ))
        })?;
    let list: SealedList = serde_json::from_slice(&plain).map_err(|_| {
        RuntimeError::MasterKey(format!(
            "the secrets of target {} opened but are not a secret list; the row may be corrupt",
            target.name
        ))
    })?;
    if list.v != SEALED_LIST_VERSION {
        return Err(RuntimeError::MasterKey(format!(
            "the secrets of target {} have layout version {}, this build reads {SEALED_LIST_VERSION}",
            target.name, list.v
        )));
    }
    let entries = list
        .secrets
        .iter()
        .map(|e| {
            (
                TargetSecret(Zeroizing::new(e.secret.clone())),
                e.expires_at_ms,
            )
        })
        .collect();
    Ok(TargetSecrets { entries })
}

impl TargetSecrets {
    /// An explicit copy.
    pub fn duplicate(&self) -> Self {
        Self {
            entries: self
                .entries
                .iter()
                .map(|(s, e)| (s.duplicate(), *e))
                .collect(),
        }
    }
}

/// Whether a secret that stops signing at `expires` (never: `None`) still
/// signs at `now_ms`.
pub(super) fn signs_at(expires: Option<i64>, now_ms: i64) -> bool {
    expires.is_none_or(|at| at > now_ms)
}

#[cfg(test)]
mod tests {
    use signet_store::TargetId;

    use super::*;

    #[test]
    fn generated_secrets_are_standard_webhooks_secrets_of_32_bytes() {
        let s = TargetSecret::generate();
        assert!(s.expose_secret().starts_with("whsec_"));
        let material = signet_sign::standard::parse_secret(s.expose_secret()).unwrap();
        assert_eq!(material.algorithm(), signet_sign::Algorithm::HmacSha256);
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&s.expose_secret()["whsec_".len()..])
            .unwrap();
        assert_eq!(raw.len(), 32);
        assert_ne!(s.expose_secret(), TargetSecret::generate().expose_secret());
    }

    #[test]
    fn debug_shows_nothing_of_the_secret() {
        let s = TargetSecret::parse("my-very-secret-value-123").unwrap();
        let d = format!("{s:?}");
        assert!(!d.contains("my-very-secret"), "{d}");
        // Not even the unkeyed print, which would confirm a guess offline.
        let unkeyed = signet_sign::key::fingerprint(s.expose_secret().as_bytes());
        assert!(!d.contains(&unkeyed), "{d}");
        assert_eq!(d, "TargetSecret(<redacted>)");
    }

    #[test]
    fn fingerprints_are_keyed_and_per_target() {
        let key = MasterKey::from_bytes([3; 32]);
        let s = TargetSecret::parse("my-very-secret-value-123").unwrap();
        let fp = s.fingerprint(&key, "tgt_a");
        assert!(fp.starts_with("hmac:"), "{fp}");
        assert_ne!(fp, s.fingerprint(&key, "tgt_b"));
        assert_ne!(fp, s.fingerprint(&MasterKey::from_bytes([4; 32]), "tgt_a"));
        assert_ne!(
            fp,
            signet_sign::key::fingerprint(s.expose_secret().as_bytes())
        );
    }

    #[test]
    fn chosen_secrets_are_checked_without_being_quoted() {
        for bad in ["short", "has a space in it ok", &"x".repeat(300)] {
            let e = TargetSecret::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("secret:"), "{e}");
            assert!(!e.contains(bad), "{e}");
        }
    }

    #[test]
    fn sealed_lists_open_only_for_their_target_and_key() {
        let key = MasterKey::from_bytes([3; 32]);
        let a = TargetSecret::parse("first-secret-value-aaaa").unwrap();
        let b = TargetSecret::parse("second-secret-value-bbb").unwrap();
        let id = TargetId::generate().to_string();
        let sealed = seal(&key, &id, &[(&b, None), (&a, Some(1_000))]).unwrap();
        assert!(!sealed
            .windows(b"first-secret".len())
            .any(|w| w == b"first-secret"));
        let mut record = TargetRecord {
            id: id.clone(),
            name: "t".into(),
            url_prefix: None,
            sealed_secrets: sealed,
            secret_fingerprint: b.fingerprint(&key, &id),
            rate_limit_per_s: None,
            max_concurrency: None,
            https_only: false,
            created_at_ms: 0,
            updated_at_ms: 0,
        };
        let opened = open(&key, &record).unwrap();
        assert_eq!(opened.current().unwrap().expose_secret(), b.expose_secret());
        let at_500: Vec<&str> = opened.signing_at(500).map(|s| s.expose_secret()).collect();
        assert_eq!(at_500, [b.expose_secret(), a.expose_secret()]);
        assert_eq!(opened.signing_at(1_000).count(), 1);
        // Another key: refused with a message about the master key.
        let e = open(&MasterKey::from_bytes([4; 32]), &record).unwrap_err();
        assert!(matches!(e, RuntimeError::MasterKey(_)), "{e}");
        // Moved to another target: does not open.
        record.id = TargetId::generate().to_string();
        assert!(open(&key, &record).is_err());
    }
}
