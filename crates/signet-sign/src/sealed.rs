//! Secrets sealed at rest under the master key (`SIGNET_MASTER_KEY`).
//!
//! A [`MasterKey`] is 32 random bytes, given to the server as base64 text.
//! [`MasterKey::seal`] encrypts a secret (a target's `whsec_…` signing
//! secret, say) with XChaCha20-Poly1305 and a fresh random 24-byte nonce from
//! the operating system; [`MasterKey::open`] reverses it. The associated data
//! (`aad`) binds a sealed secret to its owner — pass the owning row's id — so
//! a ciphertext copied into another row does not open.
//!
//! # Sealed layout (version 1)
//!
//! ```text
//! offset  len  field
//! 0       1    version, 0x01
//! 1       4    key check: the first 4 bytes of HMAC-SHA256(master key,
//!              "signet master key check") — see MasterKey::fingerprint
//! 5       24   XChaCha20 nonce (random, from the OS RNG)
//! 29      n    ciphertext (same length as the plaintext)
//! 29+n    16   Poly1305 tag
//! ```
//!
//! The AEAD's associated data is exactly the caller's `aad`, so the AEAD part
//! is plain XChaCha20-Poly1305 and is tested against Wycheproof through
//! [`MasterKey::open`]. The header needs no authentication of its own: the
//! version is checked against the one layout this build reads, an edited key
//! check is refused as "a different master key" before decrypting, and an
//! edited nonce fails the tag. The key check lets [`MasterKey::open`] say
//! "sealed under a different master key" instead of a bare "does not
//! authenticate"; being 4 bytes of an HMAC of the key, it reveals nothing
//! usable about the key.
//!
//! # Detecting a wrong master key at start-up
//!
//! The server stores [`MasterKey::seal_check`]'s blob once (on first start)
//! and calls [`MasterKey::verify_check`] on every later start: a different
//! key fails with a clear error naming both fingerprints, so a wrong
//! `SIGNET_MASTER_KEY` stops the server instead of producing garbage.
//!
//! # Rotating the master key
//!
//! A [`MasterKey`] may carry earlier keys ([`MasterKey::with_previous`],
//! from `SIGNET_MASTER_KEY_PREVIOUS`): [`MasterKey::open`] opens a blob
//! sealed under any of them, picked by the blob's key check, while
//! [`MasterKey::seal`] and the fingerprints always use the current key.
//! [`MasterKey::is_current`] tells a blob still to re-seal from one done.

use std::fmt;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

/// The environment variable that carries the master key (base64 of 32 bytes).
pub const MASTER_KEY_VAR: &str = "SIGNET_MASTER_KEY";

/// The environment variable (or key file line) that carries earlier master
/// keys, comma-separated, each in `SIGNET_MASTER_KEY`'s format: secrets
/// sealed under them still open, nothing new is sealed under them.
pub const MASTER_KEY_PREVIOUS_VAR: &str = "SIGNET_MASTER_KEY_PREVIOUS";

/// Length of a master key in bytes.
pub const MASTER_KEY_LEN: usize = 32;

/// The version byte that starts every sealed blob of the current layout.
pub const SEALED_VERSION: u8 = 1;

/// Length of the key-check field in a sealed blob.
pub const KEY_CHECK_LEN: usize = 4;

/// Length of the XChaCha20 nonce.
pub const NONCE_LEN: usize = 24;

/// Length of the Poly1305 tag.
pub const TAG_LEN: usize = 16;

/// Length of the header (version, key check, nonce) before the ciphertext.
pub const HEADER_LEN: usize = 1 + KEY_CHECK_LEN + NONCE_LEN;

/// Shortest possible sealed blob: header and tag around an empty plaintext.
pub const MIN_SEALED_LEN: usize = HEADER_LEN + TAG_LEN;

/// The HMAC message whose output is the master key's fingerprint.
const FINGERPRINT_LABEL: &[u8] = b"signet master key check";

/// The HMAC message that derives, from the master key, the key of secret
/// fingerprints ([`MasterKey::fingerprint_secret`]).
const SECRET_FINGERPRINT_LABEL: &[u8] = b"signet secret fingerprint v1";

/// How a keyed secret fingerprint starts ([`MasterKey::fingerprint_secret`]);
/// a stored fingerprint without it is a legacy unkeyed one.
pub const KEYED_FINGERPRINT_PREFIX: &str = "hmac:";

/// What starts the HMAC message of a derived key ([`MasterKey::derive`]),
/// so no derived key equals a fingerprint or another label's key.
const DERIVE_LABEL: &[u8] = b"signet derived key v1:";

/// The associated data and plaintext of the start-up check blob.
const CHECK_AAD: &[u8] = b"signet master key check blob";
const CHECK_PLAINTEXT: &[u8] = b"signet master key ok";

/// The master key that seals secrets at rest.
///
/// A secret type: the bytes are private, it has no `Clone`, `PartialEq` or
/// `Serialize`, its `Debug` shows only the fingerprint, and it is zeroized on
/// drop. Earlier keys it carries ([`MasterKey::with_previous`]) only open.
pub struct MasterKey {
    bytes: [u8; MASTER_KEY_LEN],
    previous: Vec<MasterKey>,
}

impl MasterKey {
    /// Parses the text of `SIGNET_MASTER_KEY`: standard base64 (padding
    /// optional, surrounding whitespace ignored) of exactly 32 bytes.
    ///
    /// Errors name the variable and what is wrong, never the value.
    pub fn parse(text: &str) -> Result<Self> {
        Self::parse_named(text, MASTER_KEY_VAR)
    }

    /// Parses the text of `SIGNET_MASTER_KEY_PREVIOUS`: one or more keys in
    /// [`MasterKey::parse`]'s format, separated by commas (empty entries
    /// skipped). Errors say which entry is wrong, never a value.
    pub fn parse_previous(text: &str) -> Result<Vec<Self>> {
        let entries: Vec<&str> = text
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        if entries.is_empty() {
            return Err(Error::config(format!(
                "{MASTER_KEY_PREVIOUS_VAR} is empty; set it to the earlier master key(s), \
                 comma-separated, or unset it"
            )));
        }
        let several = entries.len() > 1;
        entries
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                if several {
                    Self::parse_named(
                        entry,
                        &format!("{MASTER_KEY_PREVIOUS_VAR} (entry {})", i + 1),
                    )
                } else {
                    Self::parse_named(entry, MASTER_KEY_PREVIOUS_VAR)
                }
            })
            .collect()
    }

    fn parse_named(text: &str, var: &str) -> Result<Self> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::config(format!(
                "{var} is empty; set it to the base64 of 32 random bytes \
                 (for example `head -c 32 /dev/urandom | base64`)"
            )));
        }
        let engine = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        let mut decoded = Zeroizing::new(engine.decode(text).map_err(|_| {
            Error::config(format!(
                "{var} is not valid base64; set it to the base64 of 32 random bytes"
            ))
        })?);
        if decoded.len() != MASTER_KEY_LEN {
            let len = decoded.len();
            decoded.zeroize();
            return Err(Error::config(format!(
                "{var} decodes to {len} bytes, expected exactly {MASTER_KEY_LEN}"
            )));
        }
        let mut bytes = [0u8; MASTER_KEY_LEN];
        bytes.copy_from_slice(&decoded);
        Ok(Self::from_bytes(bytes))
    }

    /// Wraps 32 key bytes (from a KMS, say). The caller should zeroize its copy.
    pub fn from_bytes(bytes: [u8; MASTER_KEY_LEN]) -> Self {
        Self {
            bytes,
            previous: Vec::new(),
        }
    }

    /// This key, opening also what `previous` keys sealed (a master key
    /// rotation: `SIGNET_MASTER_KEY_PREVIOUS`). Sealing and fingerprints
    /// keep using this key; an earlier key equal to it is dropped.
    pub fn with_previous(mut self, previous: Vec<MasterKey>) -> Self {
        for mut key in previous {
            key.previous.clear();
            let known = bool::from(key.bytes.ct_eq(&self.bytes))
                || self
                    .previous
                    .iter()
                    .any(|p| bool::from(p.bytes.ct_eq(&key.bytes)));
            if !known {
                self.previous.push(key);
            }
        }
        self
    }

    /// The fingerprints of the earlier keys this key also opens with.
    pub fn previous_fingerprints(&self) -> Vec<String> {
        self.previous.iter().map(MasterKey::fingerprint).collect()
    }

    /// Whether `sealed` is a blob of the current layout sealed under this
    /// (current) key, judged by its header only: what a re-seal skips.
    pub fn is_current(&self, sealed: &[u8]) -> bool {
        sealed.len() >= MIN_SEALED_LEN
            && sealed[0] == SEALED_VERSION
            && bool::from(sealed[1..1 + KEY_CHECK_LEN].ct_eq(&self.key_check()))
    }

    /// A key for one other use (console session cookies, say), derived
    /// from this one as HMAC-SHA256(key, "signet derived key v1:" ‖
    /// `purpose`): every node with the same master key derives the same key,
    /// and nothing sealed under it opens with the master key or with a key
    /// of another purpose. Earlier keys are derived too, so what was sealed
    /// before a master key rotation still opens.
    pub fn derive(&self, purpose: &[u8]) -> MasterKey {
        let mut bytes = self.hmac(&[DERIVE_LABEL, purpose]);
        let derived = MasterKey {
            bytes,
            previous: self.previous.iter().map(|p| p.derive(purpose)).collect(),
        };
        bytes.zeroize();
        derived
    }

    /// Generates a fresh random master key from the operating system's RNG.
    pub fn generate() -> Self {
        let mut bytes = [0u8; MASTER_KEY_LEN];
        OsRng.fill_bytes(&mut bytes);
        Self::from_bytes(bytes)
    }

    /// The key as base64 text, for showing an operator once (after
    /// [`MasterKey::generate`]). This is the secret itself: never log it.
    pub fn to_base64_for_display(&self) -> Zeroizing<String> {
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(self.bytes))
    }

    /// A non-reversible fingerprint: the first 8 bytes of
    /// HMAC-SHA256(key, "signet master key check"), as 16 lowercase hex
    /// characters. Safe to log and to store.
    pub fn fingerprint(&self) -> String {
        hex::encode(&self.fingerprint_bytes()[..8])
    }

    fn fingerprint_bytes(&self) -> [u8; 32] {
        self.hmac(&[FINGERPRINT_LABEL])
    }

    /// A keyed fingerprint of a secret sealed for `owner` (the owning row's
    /// id), safe to log, store and show: `hmac:` + the first 8 bytes, in
    /// hex, of HMAC-SHA256(k, u32be(len(owner)) ‖ owner ‖ secret), where
    /// k = HMAC-SHA256(master key, "signet secret fingerprint v1").
    ///
    /// Keyed, so a fingerprint read from the database or an API response
    /// cannot confirm a guessed secret offline without the master key; and
    /// bound to the owner, so two targets sharing a secret do not show it
    /// by sharing a fingerprint.
    pub fn fingerprint_secret(&self, owner: &[u8], secret: &[u8]) -> String {
        let key = Zeroizing::new(self.hmac(&[SECRET_FINGERPRINT_LABEL]));
        let owner_len = u32::try_from(owner.len()).unwrap_or(u32::MAX).to_be_bytes();
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key.as_slice()) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC-SHA256 accepts a key of any length"),
        };
        mac.update(&owner_len);
        mac.update(owner);
        mac.update(secret);
        let out: [u8; 32] = mac.finalize().into_bytes().into();
        format!("{KEYED_FINGERPRINT_PREFIX}{}", hex::encode(&out[..8]))
    }

    fn hmac(&self, parts: &[&[u8]]) -> [u8; 32] {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&self.bytes) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC-SHA256 accepts a key of any length"),
        };
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    fn key_check(&self) -> [u8; KEY_CHECK_LEN] {
        let full = self.fingerprint_bytes();
        let mut check = [0u8; KEY_CHECK_LEN];
        check.copy_from_slice(&full[..KEY_CHECK_LEN]);
        check
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.bytes).into())
    }

    /// Encrypts `plaintext`, bound to `aad` (the owner's id), under a fresh
    /// random nonce. See the module docs for the layout.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        self.seal_with_nonce(plaintext, aad, &nonce)
    }

    fn seal_with_nonce(&self, plaintext: &[u8], aad: &[u8], nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
        let mut header = [0u8; HEADER_LEN];
        header[0] = SEALED_VERSION;
        header[1..1 + KEY_CHECK_LEN].copy_from_slice(&self.key_check());
        header[1 + KEY_CHECK_LEN..].copy_from_slice(nonce);
        let ciphertext = match self.cipher().encrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        ) {
            Ok(ciphertext) => ciphertext,
            // XChaCha20-Poly1305 encryption fails only past 2^38 bytes of
            // plaintext (256 GiB); secrets are a few dozen bytes.
            Err(_) => unreachable!("XChaCha20-Poly1305 refused a plaintext under 256 GiB"),
        };
        let mut out = Vec::with_capacity(HEADER_LEN + ciphertext.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Decrypts a blob made by [`MasterKey::seal`] with the same `aad`,
    /// under this key or, when the blob's key check names one, an earlier
    /// key it carries ([`MasterKey::with_previous`]).
    ///
    /// Errors (never panics, whatever the input): `is_malformed()` for a blob
    /// too short or of an unknown version, `is_unknown_key()` when it was
    /// sealed under a different master key, `is_mismatch()` when it was
    /// tampered with or `aad` differs (moved to another owner).
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        match self.open_one(sealed, aad) {
            Err(e) if e.is_unknown_key() => {
                for key in &self.previous {
                    match key.open_one(sealed, aad) {
                        Err(other) if other.is_unknown_key() => continue,
                        opened => return opened,
                    }
                }
                Err(e)
            }
            opened => opened,
        }
    }

    fn open_one(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if sealed.len() < MIN_SEALED_LEN {
            return Err(Error::malformed(format!(
                "sealed secret is {} bytes, shorter than the minimum {MIN_SEALED_LEN}",
                sealed.len()
            )));
        }
        let (header, body) = sealed.split_at(HEADER_LEN);
        let (prefix, nonce) = header.split_at(1 + KEY_CHECK_LEN);
        if prefix[0] != SEALED_VERSION {
            return Err(Error::malformed(format!(
                "sealed secret has version {}, this build reads version {SEALED_VERSION}",
                prefix[0]
            )));
        }
        let check = &prefix[1..];
        if !bool::from(check.ct_eq(&self.key_check())) {
            return Err(Error::unknown_key(format!(
                "sealed secret was sealed under a different master key (key check {}, \
                 this {MASTER_KEY_VAR} has {}); start with the key that sealed it",
                hex::encode(check),
                hex::encode(self.key_check())
            )));
        }
        self.cipher()
            .decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad })
            .map(Zeroizing::new)
            .map_err(|_| {
                Error::mismatch(
                    "sealed secret does not authenticate: it was altered, or it belongs \
                     to a different owner (associated data differs)",
                )
            })
    }

    /// A blob to store once when the server first starts with this key;
    /// [`MasterKey::verify_check`] checks it on every later start.
    pub fn seal_check(&self) -> Vec<u8> {
        self.seal(CHECK_PLAINTEXT, CHECK_AAD)
    }

    /// Checks a blob from [`MasterKey::seal_check`]: `Ok` when this is the
    /// key that made it; otherwise a start-up error (`is_config()`) that says
    /// `SIGNET_MASTER_KEY` is wrong and names this key's fingerprint.
    pub fn verify_check(&self, blob: &[u8]) -> Result<()> {
        match self.open(blob, CHECK_AAD) {
            Ok(plain) if plain.as_slice() == CHECK_PLAINTEXT => Ok(()),
            Ok(_) => Err(Error::config(
                "the stored master key check blob holds unexpected content; \
                 the database may be corrupt",
            )),
            Err(e) if e.is_unknown_key() => Err(Error::config(format!(
                "{MASTER_KEY_VAR} is not the key this database was sealed with \
                 (this key's fingerprint is {}); start with the original key",
                self.fingerprint()
            ))),
            Err(e) => Err(Error::config(format!(
                "the stored master key check does not open under {MASTER_KEY_VAR} \
                 (fingerprint {}): {}",
                self.fingerprint(),
                e.message()
            ))),
        }
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("MasterKey");
        d.field("fingerprint", &self.fingerprint());
        if !self.previous.is_empty() {
            d.field("previous", &self.previous_fingerprints());
        }
        d.field("bytes", &"<redacted>").finish()
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_are_per_purpose_and_survive_a_rotation() {
        let old = MasterKey::from_bytes([1; 32]);
        let session = old.derive(b"console session");
        assert_eq!(
            session.fingerprint(),
            MasterKey::from_bytes([1; 32])
                .derive(b"console session")
                .fingerprint(),
            "every node derives the same key"
        );
        let sealed = session.seal(b"hello", b"aad");
        assert!(old.open(&sealed, b"aad").is_err(), "not the master key");
        assert!(old.derive(b"other").open(&sealed, b"aad").is_err());
        assert_ne!(session.fingerprint(), old.fingerprint());
        // After a rotation the derived key still opens what the old one sealed,
        // and seals under the new one.
        let rotated = MasterKey::from_bytes([2; 32])
            .with_previous(vec![MasterKey::from_bytes([1; 32])])
            .derive(b"console session");
        assert_eq!(&*rotated.open(&sealed, b"aad").unwrap(), b"hello");
        assert!(session.open(&rotated.seal(b"x", b"aad"), b"aad").is_err());
    }

    #[test]
    fn secret_fingerprints_are_keyed_and_bound_to_the_owner() {
        let a = MasterKey::from_bytes([1; 32]);
        let b = MasterKey::from_bytes([2; 32]);
        let fp = a.fingerprint_secret(b"tgt_1", b"a-human-chosen-secret");
        assert!(fp.starts_with(KEYED_FINGERPRINT_PREFIX), "{fp}");
        assert_eq!(fp.len(), KEYED_FINGERPRINT_PREFIX.len() + 16);
        assert_eq!(fp, a.fingerprint_secret(b"tgt_1", b"a-human-chosen-secret"));
        // Another master key, another owner, another secret: another print.
        assert_ne!(fp, b.fingerprint_secret(b"tgt_1", b"a-human-chosen-secret"));
        assert_ne!(fp, a.fingerprint_secret(b"tgt_2", b"a-human-chosen-secret"));
        assert_ne!(fp, a.fingerprint_secret(b"tgt_1", b"another-secret"));
        // Not the unkeyed SHA-256 print a guess could be checked against.
        let unkeyed = crate::key::fingerprint(b"a-human-chosen-secret");
        assert!(!unkeyed.ends_with(&fp[KEYED_FINGERPRINT_PREFIX.len()..]));
    }

    #[test]
    fn layout_is_as_documented() {
        let key = MasterKey::from_bytes([7; 32]);
        let nonce = [9u8; NONCE_LEN];
        let blob = key.seal_with_nonce(b"abc", b"tgt_1", &nonce);
        assert_eq!(blob.len(), HEADER_LEN + 3 + TAG_LEN);
        assert_eq!(blob[0], SEALED_VERSION);
        assert_eq!(&blob[1..5], &key.key_check());
        assert_eq!(hex::encode(&blob[1..5]), key.fingerprint()[..8].to_string());
        assert_eq!(&blob[5..29], &nonce);
        assert_eq!(key.open(&blob, b"tgt_1").unwrap().as_slice(), b"abc");
    }

    #[test]
    fn nonces_differ_between_seals() {
        let key = MasterKey::generate();
        let a = key.seal(b"x", b"");
        let b = key.seal(b"x", b"");
        assert_ne!(a[5..29], b[5..29]);
    }
}
