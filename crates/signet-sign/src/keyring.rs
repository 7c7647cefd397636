//! The key ring: every key Signet signs or verifies with.
//!
//! One key is *active*: it signs. Every key verifies. During a rotation
//! overlap further keys can be marked to sign beside the active one, so a
//! Standard Webhooks header carries one signature per key and receivers that
//! know only the old or only the new key both accept it. A *verify-only*
//! ring holds Ed25519 public keys (and HMAC secrets, which are symmetric) and
//! has no active key.

use std::collections::HashSet;
use std::fmt;

use crate::error::{Error, Result};
use crate::key::{Algorithm, Key, KeyId};

/// Signing and verifying keys with one optional active key.
///
/// `Debug` shows ids, algorithms and fingerprints only.
pub struct KeyRing {
    keys: Vec<Key>,
    /// Index of the active key in `keys`; it can always sign.
    active: Option<usize>,
    /// `also_signs[i]`: key `i` signs beside the active key (rotation
    /// overlap). Only ever true for keys that can sign.
    also_signs: Vec<bool>,
}

impl KeyRing {
    /// A ring of `keys` with `active` as the signing key.
    ///
    /// Fails with [`Error::config`] naming the id when two keys share an id,
    /// when `active` is not in `keys`, or when `active` is a public key that
    /// cannot sign.
    pub fn new(keys: Vec<Key>, active: Option<KeyId>) -> Result<Self> {
        let mut seen = HashSet::with_capacity(keys.len());
        for key in &keys {
            if !seen.insert(key.id().as_str()) {
                return Err(Error::config(format!(
                    "key id {:?} appears twice in the key ring; give each key its own id",
                    key.id().as_str()
                )));
            }
        }
        let active = match active {
            None => None,
            Some(id) => {
                let index = keys.iter().position(|k| k.id() == &id).ok_or_else(|| {
                    Error::config(format!(
                        "active key {:?} is not in the key ring ({}); add it or pick one of those",
                        id.as_str(),
                        describe_ids(&keys)
                    ))
                })?;
                if !keys[index].can_sign() {
                    return Err(Error::config(format!(
                        "active key {:?} is an Ed25519 public key and cannot sign; give its private key or leave the active key unset for a verify-only ring",
                        id.as_str()
                    )));
                }
                Some(index)
            }
        };
        let also_signs = vec![false; keys.len()];
        Ok(Self {
            keys,
            active,
            also_signs,
        })
    }

    /// A ring of one key, active when it can sign.
    pub fn single(key: Key) -> Self {
        let active = key.can_sign().then_some(0);
        Self {
            keys: vec![key],
            active,
            also_signs: vec![false],
        }
    }

    /// A ring with no keys: signs nothing, verifies nothing.
    pub fn empty() -> Self {
        Self {
            keys: Vec::new(),
            active: None,
            also_signs: Vec::new(),
        }
    }

    /// Whether the ring holds no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The active (signing) key.
    pub fn active(&self) -> Option<&Key> {
        self.active.map(|i| &self.keys[i])
    }

    /// The key with this id.
    pub fn get(&self, id: &str) -> Option<&Key> {
        self.keys
            .iter()
            .find(|k| k.id().as_bytes() == id.as_bytes())
    }

    /// All keys, in the order given.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// The keys that sign now: the active key first, then the keys marked
    /// with [`KeyRing::set_also_signs`] in ring order. Empty for a
    /// verify-only ring.
    pub fn signers(&self) -> Vec<&Key> {
        self.signing_keys().collect()
    }

    /// [`KeyRing::signers`] without allocating.
    pub(crate) fn signing_keys(&self) -> impl Iterator<Item = &Key> {
        let active = self.active;
        self.active().into_iter().chain(
            self.keys
                .iter()
                .enumerate()
                .filter(move |(i, _)| self.also_signs[*i] && Some(*i) != active)
                .map(|(_, k)| k),
        )
    }

    /// Marks (or unmarks) key `id` to sign beside the active key, for a
    /// rotation overlap. Fails with [`Error::config`] when the key is not in
    /// the ring or cannot sign.
    pub fn set_also_signs(&mut self, id: &str, yes: bool) -> Result<()> {
        let index = self
            .keys
            .iter()
            .position(|k| k.id().as_bytes() == id.as_bytes())
            .ok_or_else(|| {
                Error::config(format!(
                    "key {id:?} is not in the key ring ({}); it cannot sign during the overlap",
                    describe_ids(&self.keys)
                ))
            })?;
        if yes && !self.keys[index].can_sign() {
            return Err(Error::config(format!(
                "key {id:?} is an Ed25519 public key and cannot sign during the overlap; give its private key"
            )));
        }
        self.also_signs[index] = yes;
        Ok(())
    }

    /// The ring a verifier needs: Ed25519 private keys become their public
    /// keys, HMAC secrets stay (they are symmetric). The result has no
    /// active key and no overlap signers, so it never signs, even with HMAC
    /// keys.
    pub fn verify_only(&self) -> KeyRing {
        let keys: Vec<Key> = self.keys.iter().map(Key::to_verifying).collect();
        let also_signs = vec![false; keys.len()];
        KeyRing {
            keys,
            active: None,
            also_signs,
        }
    }

    /// The algorithm of the active key, if there is one.
    pub fn algorithm(&self) -> Option<Algorithm> {
        self.active().map(Key::algorithm)
    }

    /// An explicit copy (keys are secrets and not `Clone`).
    pub fn duplicate(&self) -> KeyRing {
        KeyRing {
            keys: self.keys.iter().map(Key::duplicate).collect(),
            active: self.active,
            also_signs: self.also_signs.clone(),
        }
    }

    /// A short list of the ring's ids for messages: `keys: a, b, c`.
    pub(crate) fn describe(&self) -> String {
        describe_ids(&self.keys)
    }
}

/// `no keys` or `keys: a, b` (at most eight ids, then `and N more`).
fn describe_ids(keys: &[Key]) -> String {
    const SHOWN: usize = 8;
    if keys.is_empty() {
        return "the ring has no keys".to_owned();
    }
    let mut out = String::from("keys: ");
    for (i, key) in keys.iter().take(SHOWN).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(key.id().as_str());
    }
    if keys.len() > SHOWN {
        out.push_str(&format!(" and {} more", keys.len() - SHOWN));
    }
    out
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Entry<'a>(&'a Key, bool, bool);
        impl fmt::Debug for Entry<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let (key, active, also) = (self.0, self.1, self.2);
                write!(
                    f,
                    "{} ({}, {}{}{})",
                    key.id(),
                    key.algorithm(),
                    key.fingerprint(),
                    if active { ", active" } else { "" },
                    if also { ", also signs" } else { "" },
                )?;
                if !key.can_sign() {
                    f.write_str(" verify-only")?;
                }
                Ok(())
            }
        }
        f.debug_list()
            .entries(
                self.keys
                    .iter()
                    .enumerate()
                    .map(|(i, k)| Entry(k, Some(i) == self.active, self.also_signs[i])),
            )
            .finish()
    }
}

impl Default for KeyRing {
    fn default() -> Self {
        Self::empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{Ed25519SecretKey, HmacSecret, KeyMaterial};

    fn hmac(id: &str, byte: u8) -> Key {
        Key::new(
            KeyId::new(id).unwrap(),
            KeyMaterial::Hmac(HmacSecret::new(vec![byte; 32]).unwrap()),
        )
    }

    fn ed_public(id: &str) -> Key {
        let secret = Ed25519SecretKey::from_seed(&[9u8; 32]).unwrap();
        Key::new(
            KeyId::new(id).unwrap(),
            KeyMaterial::Ed25519Public(secret.public_key()),
        )
    }

    #[test]
    fn construction_errors_name_the_id() {
        let err = KeyRing::new(vec![hmac("a", 1), hmac("a", 2)], None).unwrap_err();
        assert!(err.is_config() && err.to_string().contains("\"a\" appears twice"));
        let err = KeyRing::new(vec![hmac("a", 1)], Some(KeyId::new("b").unwrap())).unwrap_err();
        assert!(err
            .to_string()
            .contains("\"b\" is not in the key ring (keys: a)"));
        let err = KeyRing::new(vec![ed_public("p")], Some(KeyId::new("p").unwrap())).unwrap_err();
        assert!(err.to_string().contains("cannot sign"), "{err}");
    }

    #[test]
    fn signers_are_active_first_then_overlap() {
        let mut ring = KeyRing::new(
            vec![hmac("old", 1), hmac("new", 2), ed_public("pub")],
            Some(KeyId::new("new").unwrap()),
        )
        .unwrap();
        assert_eq!(ring.signers().len(), 1);
        ring.set_also_signs("old", true).unwrap();
        ring.set_also_signs("new", true).unwrap();
        let ids: Vec<_> = ring.signers().iter().map(|k| k.id().as_str()).collect();
        assert_eq!(ids, ["new", "old"]);
        assert!(ring.set_also_signs("pub", true).unwrap_err().is_config());
        assert!(ring.set_also_signs("nope", true).unwrap_err().is_config());
        ring.set_also_signs("old", false).unwrap();
        assert_eq!(ring.signers().len(), 1);
    }

    #[test]
    fn single_and_verify_only() {
        let ring = KeyRing::single(hmac("a", 1));
        assert_eq!(ring.algorithm(), Some(Algorithm::HmacSha256));
        assert!(KeyRing::single(ed_public("p")).active().is_none());
        let ed = KeyRing::single(Key::new(
            KeyId::new("e").unwrap(),
            KeyMaterial::Ed25519Private(Ed25519SecretKey::from_seed(&[3u8; 32]).unwrap()),
        ));
        let vo = ed.verify_only();
        assert!(vo.active().is_none() && vo.signers().is_empty());
        assert!(!vo.get("e").unwrap().can_sign());
        assert!(KeyRing::empty().is_empty());
        assert_eq!(ed.duplicate().active().unwrap().id().as_str(), "e");
    }

    #[test]
    fn debug_shows_ids_not_secrets() {
        let ring = KeyRing::single(Key::new(
            KeyId::new("k1").unwrap(),
            KeyMaterial::Hmac(HmacSecret::new(b"super-secret-value-1234".to_vec()).unwrap()),
        ));
        let d = format!("{ring:?}");
        assert!(
            d.contains("k1 (hmac-sha256, sha256:") && d.contains("active"),
            "{d}"
        );
        assert!(!d.contains("super"), "{d}");
    }
}
