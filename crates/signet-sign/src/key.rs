//! Key material as types: algorithms, key ids, HMAC secrets and Ed25519 keys.
//!
//! Secrets have a private field, no derived `Clone`/`Debug`/`Serialize`/
//! `PartialEq`, a redacted hand-written `Debug`, are zeroized on drop and are
//! compared in constant time. Their bytes are reached only through accessors
//! named so a reviewer notices (`secret_bytes()`).

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::mac::HmacKey;

/// A signature algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// HMAC with SHA-256 (symmetric).
    HmacSha256,
    /// Ed25519 (asymmetric; verifiers need only the public key).
    Ed25519,
}

impl Algorithm {
    /// The configuration and storage name: `hmac-sha256` or `ed25519`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::HmacSha256 => "hmac-sha256",
            Algorithm::Ed25519 => "ed25519",
        }
    }

    /// The Standard Webhooks signature version: `v1` (HMAC) or `v1a` (Ed25519).
    pub fn version(self) -> &'static str {
        match self {
            Algorithm::HmacSha256 => "v1",
            Algorithm::Ed25519 => "v1a",
        }
    }

    /// The algorithm for a Standard Webhooks version tag, if known.
    pub fn from_version(version: &str) -> Option<Self> {
        match version {
            "v1" => Some(Algorithm::HmacSha256),
            "v1a" => Some(Algorithm::Ed25519),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hmac-sha256" | "hmac_sha256" | "hmacsha256" => Ok(Algorithm::HmacSha256),
            "ed25519" => Ok(Algorithm::Ed25519),
            other => Err(Error::config(format!(
                "unknown signing algorithm {other:?}; use \"hmac-sha256\" or \"ed25519\""
            ))),
        }
    }
}

/// The longest key id accepted.
pub const MAX_KEY_ID_LEN: usize = 64;

/// A key id: 1 to 64 characters of `A-Z a-z 0-9 . _ -`.
///
/// Stored inline (at most 64 ASCII bytes), so copying one, as every
/// verification result does, allocates nothing. Compares, hashes and orders
/// like its text.
#[derive(Clone)]
pub struct KeyId {
    len: u8,
    bytes: [u8; MAX_KEY_ID_LEN],
}

impl KeyId {
    /// Validates and wraps a key id.
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        if id.is_empty() {
            return Err(Error::config(
                "key id is empty; use 1 to 64 characters of A-Z a-z 0-9 . _ -",
            ));
        }
        if id.len() > MAX_KEY_ID_LEN {
            return Err(Error::config(format!(
                "key id is {} characters long; the limit is {MAX_KEY_ID_LEN}",
                id.len()
            )));
        }
        if let Some(c) = id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(Error::config(format!(
                "key id {id:?} contains {c:?}; use only A-Z a-z 0-9 . _ -"
            )));
        }
        let mut bytes = [0u8; MAX_KEY_ID_LEN];
        bytes[..id.len()].copy_from_slice(id.as_bytes());
        Ok(Self {
            // At most MAX_KEY_ID_LEN (64), checked above.
            len: id.len() as u8,
            bytes,
        })
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (checked in `new`), so this cannot fail.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The id's bytes (ASCII).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl PartialEq for KeyId {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for KeyId {}

impl std::hash::Hash for KeyId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialOrd for KeyId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for KeyId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("KeyId").field(&self.as_str()).finish()
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        KeyId::new(s)
    }
}

/// A short, non-reversible fingerprint of key material, safe to log and show:
/// `sha256:` and the first 8 bytes of SHA-256 in hex.
pub fn fingerprint(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    format!("sha256:{}", hex::encode(&digest[..8]))
}

/// An HMAC-SHA256 secret.
pub struct HmacSecret {
    bytes: Zeroizing<Vec<u8>>,
}

impl HmacSecret {
    /// Wraps secret bytes. Only emptiness is refused here; length policies
    /// (Signet's own keys must be at least 16 bytes) live where keys are
    /// configured, because interoperability profiles use whatever secret the
    /// other system issued.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self> {
        let bytes = Zeroizing::new(bytes.into());
        if bytes.is_empty() {
            return Err(Error::config("HMAC secret is empty"));
        }
        Ok(Self { bytes })
    }

    /// Generates a fresh secret of `len` random bytes from the OS RNG.
    pub fn generate(len: usize) -> Self {
        let mut bytes = Zeroizing::new(vec![0u8; len.max(1)]);
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
        Self { bytes }
    }

    /// The raw secret bytes. Named so every use stands out in review.
    pub fn secret_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Length of the secret in bytes (not secret).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: empty secrets cannot be built.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// A loggable fingerprint of the secret.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.bytes)
    }

    /// An explicit copy. Secrets are not `Clone` so that copies are deliberate.
    pub fn duplicate(&self) -> Self {
        Self {
            bytes: Zeroizing::new(self.bytes.to_vec()),
        }
    }
}

impl ConstantTimeEq for HmacSecret {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.bytes.as_slice().ct_eq(other.bytes.as_slice())
    }
}

impl fmt::Debug for HmacSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HmacSecret({} bytes, redacted)", self.bytes.len())
    }
}

/// An Ed25519 public key, validated strictly: the encoding must decompress and
/// the point must not be of small order (a "weak" key accepts forged
/// signatures).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ed25519PublicKey {
    key: VerifyingKey,
}

impl Ed25519PublicKey {
    /// Parses 32 bytes of a compressed Edwards point.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| {
            Error::config(format!(
                "Ed25519 public key is {} bytes; it must be 32",
                bytes.len()
            ))
        })?;
        let key = VerifyingKey::from_bytes(&arr)
            .map_err(|_| Error::config("Ed25519 public key is not a valid curve point"))?;
        // `VerifyingKey` keeps the bytes it was given, so re-encode the
        // decompressed point: a y coordinate that is not reduced mod p (or a
        // sign bit set on x = 0) decodes to the same point as a different,
        // canonical encoding. Accepting both would give one key two ids.
        if VerifyingKey::from(key.to_edwards()).to_bytes() != arr {
            return Err(Error::config(
                "Ed25519 public key is not canonically encoded (the point has a shorter, canonical encoding); re-export the key",
            ));
        }
        if key.is_weak() {
            return Err(Error::config(
                "Ed25519 public key is of small order and would accept forged signatures",
            ));
        }
        Ok(Self { key })
    }

    /// The 32 encoded bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The underlying `ed25519-dalek` key.
    pub fn dalek(&self) -> &VerifyingKey {
        &self.key
    }

    /// A loggable fingerprint.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.key.as_bytes())
    }
}

impl fmt::Debug for Ed25519PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Ed25519PublicKey({})",
            STANDARD.encode(self.key.as_bytes())
        )
    }
}

/// An Ed25519 private key (the 32-byte seed; the public half is derived).
pub struct Ed25519SecretKey {
    key: SigningKey,
}

impl Ed25519SecretKey {
    /// From the 32-byte seed.
    pub fn from_seed(seed: &[u8]) -> Result<Self> {
        let arr: Zeroizing<[u8; 32]> = Zeroizing::new(seed.try_into().map_err(|_| {
            Error::config(format!(
                "Ed25519 private key is {} bytes; it must be the 32-byte seed (or 64 bytes seed‖public)",
                seed.len()
            ))
        })?);
        Ok(Self {
            key: SigningKey::from_bytes(&arr),
        })
    }

    /// From 64 bytes `seed ‖ public` (the `whsk_` form), checking that the
    /// public half belongs to the seed.
    pub fn from_keypair_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != 64 {
            return Err(Error::config(format!(
                "Ed25519 key pair is {} bytes; it must be 64 (seed ‖ public key)",
                bytes.len()
            )));
        }
        let key = Self::from_seed(&bytes[..32])?;
        if key.public_key().to_bytes().ct_eq(&bytes[32..]).unwrap_u8() != 1 {
            return Err(Error::config(
                "Ed25519 key pair's public half does not match its private seed",
            ));
        }
        Ok(key)
    }

    /// Either a 32-byte seed or 64 bytes seed‖public.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        match bytes.len() {
            32 => Self::from_seed(bytes),
            64 => Self::from_keypair_bytes(bytes),
            n => Err(Error::config(format!(
                "Ed25519 private key is {n} bytes; it must be 32 (seed) or 64 (seed ‖ public key)"
            ))),
        }
    }

    /// Generates a fresh key from the OS RNG.
    pub fn generate() -> Self {
        Self {
            key: SigningKey::generate(&mut rand_core::OsRng),
        }
    }

    /// The public half.
    pub fn public_key(&self) -> Ed25519PublicKey {
        Ed25519PublicKey {
            key: self.key.verifying_key(),
        }
    }

    /// The 32-byte seed. Named so every use stands out in review.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.key.to_bytes())
    }

    /// The underlying `ed25519-dalek` key.
    pub fn dalek(&self) -> &SigningKey {
        &self.key
    }

    /// An explicit copy.
    pub fn duplicate(&self) -> Self {
        Self {
            key: SigningKey::from_bytes(&self.key.to_bytes()),
        }
    }
}

impl fmt::Debug for Ed25519SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Ed25519SecretKey(public {}, private redacted)",
            STANDARD.encode(self.key.verifying_key().as_bytes())
        )
    }
}

/// Key material that can verify (and, for HMAC and Ed25519 private keys, sign).
#[derive(Debug)]
pub enum KeyMaterial {
    /// An HMAC-SHA256 secret: signs and verifies.
    Hmac(HmacSecret),
    /// An Ed25519 private key: signs and verifies.
    Ed25519Private(Ed25519SecretKey),
    /// An Ed25519 public key: verifies only.
    Ed25519Public(Ed25519PublicKey),
}

impl KeyMaterial {
    /// The algorithm of this material.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            KeyMaterial::Hmac(_) => Algorithm::HmacSha256,
            KeyMaterial::Ed25519Private(_) | KeyMaterial::Ed25519Public(_) => Algorithm::Ed25519,
        }
    }

    /// Whether this material can sign.
    pub fn can_sign(&self) -> bool {
        !matches!(self, KeyMaterial::Ed25519Public(_))
    }

    /// A loggable fingerprint (of the public key for Ed25519).
    pub fn fingerprint(&self) -> String {
        match self {
            KeyMaterial::Hmac(s) => s.fingerprint(),
            KeyMaterial::Ed25519Private(k) => k.public_key().fingerprint(),
            KeyMaterial::Ed25519Public(k) => k.fingerprint(),
        }
    }

    /// An explicit copy.
    pub fn duplicate(&self) -> Self {
        match self {
            KeyMaterial::Hmac(s) => KeyMaterial::Hmac(s.duplicate()),
            KeyMaterial::Ed25519Private(k) => KeyMaterial::Ed25519Private(k.duplicate()),
            KeyMaterial::Ed25519Public(k) => KeyMaterial::Ed25519Public(*k),
        }
    }

    /// The verify-only form: HMAC stays as is (symmetric), Ed25519 private
    /// becomes its public key.
    pub fn to_verifying(&self) -> Self {
        match self {
            KeyMaterial::Ed25519Private(k) => KeyMaterial::Ed25519Public(k.public_key()),
            other => other.duplicate(),
        }
    }
}

/// A key with its id.
///
/// For HMAC keys the keyed HMAC-SHA256 state (the hashed inner and outer
/// pads) is computed once when the key is built, so a signature costs only
/// the hashing of the message (see `mac.rs`). That state is as sensitive as
/// the secret: it is never printed and its chaining values are zeroized on
/// drop, except the copy inside the `hmac` crate's state used for long
/// messages, which that crate offers no way to wipe.
pub struct Key {
    id: KeyId,
    material: KeyMaterial,
    hmac: Option<HmacKey>,
}

/// A signature as raw bytes: 32 for HMAC-SHA256, 64 for Ed25519. Kept on
/// the stack so signing allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RawSignature {
    algorithm: Algorithm,
    bytes: [u8; 64],
}

impl RawSignature {
    /// The algorithm that made it.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The signature bytes (32 or 64).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.algorithm.signature_len()]
    }
}

impl fmt::Debug for RawSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RawSignature({}, {})",
            self.algorithm,
            STANDARD.encode(self.as_bytes())
        )
    }
}

impl Algorithm {
    /// Length of a signature of this algorithm in bytes: 32 or 64.
    pub fn signature_len(self) -> usize {
        match self {
            Algorithm::HmacSha256 => 32,
            Algorithm::Ed25519 => 64,
        }
    }
}

impl Key {
    /// A key from id and material.
    pub fn new(id: KeyId, material: KeyMaterial) -> Self {
        let hmac = match &material {
            KeyMaterial::Hmac(secret) => Some(HmacKey::new(secret.secret_bytes())),
            _ => None,
        };
        Self { id, material, hmac }
    }

    /// The key id.
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// The key material.
    pub fn material(&self) -> &KeyMaterial {
        &self.material
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.material.algorithm()
    }

    /// Whether this key can sign (everything but an Ed25519 public key).
    pub fn can_sign(&self) -> bool {
        self.material.can_sign()
    }

    /// A loggable fingerprint of the key (of the public key for Ed25519).
    pub fn fingerprint(&self) -> String {
        self.material.fingerprint()
    }

    /// An explicit copy.
    pub fn duplicate(&self) -> Self {
        Self {
            id: self.id.clone(),
            material: self.material.duplicate(),
            hmac: self.hmac.clone(),
        }
    }

    /// The verify-only form of this key (see [`KeyMaterial::to_verifying`]).
    pub fn to_verifying(&self) -> Self {
        Self::new(self.id.clone(), self.material.to_verifying())
    }

    /// Signs `message`.
    ///
    /// Fails with [`Error::unsupported`] for an Ed25519 public key.
    pub fn sign(&self, message: &[u8]) -> Result<RawSignature> {
        self.sign_parts(&[message])
    }

    /// Verifies `signature` over `message`: HMAC in constant time, Ed25519
    /// strictly (see `docs/ed25519-policy.md`). A signature of the wrong
    /// length is [`Error::malformed`]; one that does not verify is
    /// [`Error::mismatch`].
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<()> {
        self.verify_parts(&[message], signature)
    }

    /// Signs the concatenation of `parts` without building it (HMAC); Ed25519
    /// needs the whole message and joins the parts first.
    pub(crate) fn sign_parts(&self, parts: &[&[u8]]) -> Result<RawSignature> {
        let mut bytes = [0u8; 64];
        match (&self.material, &self.hmac) {
            (KeyMaterial::Hmac(_), Some(state)) => {
                let tag = state.mac_parts(parts);
                bytes[..32].copy_from_slice(&tag);
                Ok(RawSignature {
                    algorithm: Algorithm::HmacSha256,
                    bytes,
                })
            }
            (KeyMaterial::Hmac(secret), None) => {
                // Unreachable through `Key::new`, which always keys the state;
                // computed from the secret rather than panicking.
                let tag = HmacKey::new(secret.secret_bytes()).mac_parts(parts);
                bytes[..32].copy_from_slice(&tag);
                Ok(RawSignature {
                    algorithm: Algorithm::HmacSha256,
                    bytes,
                })
            }
            (KeyMaterial::Ed25519Private(key), _) => {
                let sig = with_joined(parts, |msg| key.dalek().sign(msg));
                bytes.copy_from_slice(&sig.to_bytes());
                Ok(RawSignature {
                    algorithm: Algorithm::Ed25519,
                    bytes,
                })
            }
            (KeyMaterial::Ed25519Public(_), _) => Err(Error::unsupported(format!(
                "key {:?} is an Ed25519 public key and cannot sign; configure its private key",
                self.id.as_str()
            ))),
        }
    }

    /// Verifies a signature over the concatenation of `parts`.
    pub(crate) fn verify_parts(&self, parts: &[&[u8]], signature: &[u8]) -> Result<()> {
        let expected = self.algorithm().signature_len();
        if signature.len() != expected {
            return Err(Error::malformed(format!(
                "signature is {} bytes; {} signatures are {expected}",
                signature.len(),
                self.algorithm()
            )));
        }
        let ok = match &self.material {
            KeyMaterial::Hmac(secret) => {
                let tag = match &self.hmac {
                    Some(state) => state.mac_parts(parts),
                    None => HmacKey::new(secret.secret_bytes()).mac_parts(parts),
                };
                tags_equal(&tag, signature)
            }
            KeyMaterial::Ed25519Private(key) => {
                let public = key.public_key();
                with_joined(parts, |msg| ed25519_verify_strict(&public, msg, signature))
            }
            KeyMaterial::Ed25519Public(public) => {
                with_joined(parts, |msg| ed25519_verify_strict(public, msg, signature))
            }
        };
        if ok {
            Ok(())
        } else {
            Err(Error::mismatch(format!(
                "signature does not match key {:?}",
                self.id.as_str()
            )))
        }
    }

    /// The keyed HMAC state of an HMAC key, ready to clone.
    pub(crate) fn hmac_state(&self) -> Option<&HmacKey> {
        self.hmac.as_ref()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id.as_str())
            .field("algorithm", &self.algorithm().as_str())
            .field("can_sign", &self.can_sign())
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

/// Compares a computed HMAC tag with a received one in constant time.
///
/// The bytes are folded into one word with XOR/OR (no data-dependent
/// branches) and only that word goes through `subtle`, which is several
/// times cheaper than `subtle`'s byte-by-byte slice comparison. A received
/// value of another length is unequal (lengths are public).
pub(crate) fn tags_equal(tag: &[u8; 32], received: &[u8]) -> bool {
    let Ok(received) = <&[u8; 32]>::try_from(received) else {
        return false;
    };
    let mut diff = 0u64;
    for (a, b) in tag.chunks_exact(8).zip(received.chunks_exact(8)) {
        let mut wa = [0u8; 8];
        let mut wb = [0u8; 8];
        wa.copy_from_slice(a);
        wb.copy_from_slice(b);
        diff |= u64::from_ne_bytes(wa) ^ u64::from_ne_bytes(wb);
    }
    bool::from(diff.ct_eq(&0))
}

/// Runs `f` on the concatenation of `parts`, joining only when there is
/// more than one part.
fn with_joined<T>(parts: &[&[u8]], f: impl FnOnce(&[u8]) -> T) -> T {
    match parts {
        [one] => f(one),
        _ => f(&parts.concat()),
    }
}

/// Strict Ed25519 verification: `verify_strict` rejects a non-canonical S
/// (S ≥ ℓ), a small-order R or public key, and any R whose encoding is not
/// the canonical encoding of the recomputed point. Public keys are already
/// checked for canonical encoding and small order when parsed.
pub(crate) fn ed25519_verify_strict(key: &Ed25519PublicKey, msg: &[u8], sig: &[u8]) -> bool {
    let Ok(bytes) = <[u8; 64]>::try_from(sig) else {
        return false;
    };
    key.dalek()
        .verify_strict(msg, &Signature::from_bytes(&bytes))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secret_bytes() {
        let s = HmacSecret::new(b"super-secret-value-1234".to_vec()).unwrap();
        let d = format!("{s:?}");
        assert!(!d.contains("super"), "{d}");
        let k = Ed25519SecretKey::from_seed(&[7u8; 32]).unwrap();
        let d = format!("{k:?}");
        assert!(!d.contains(&STANDARD.encode([7u8; 32])), "{d}");
        let m = KeyMaterial::Hmac(s);
        assert!(!format!("{m:?}").contains("super"));
    }

    #[test]
    fn tag_comparison_finds_any_differing_byte() {
        let tag: [u8; 32] = core::array::from_fn(|i| i as u8);
        assert!(tags_equal(&tag, &tag));
        for i in 0..32 {
            let mut other = tag;
            other[i] ^= 0x80;
            assert!(!tags_equal(&tag, &other), "byte {i}");
        }
        assert!(!tags_equal(&tag, &tag[..31]));
    }

    #[test]
    fn key_ids_are_validated() {
        let id = KeyId::new("primary-2024.v1_a").unwrap();
        assert_eq!(id.as_str(), "primary-2024.v1_a");
        assert_eq!(format!("{id:?}"), "KeyId(\"primary-2024.v1_a\")");
        let long = "x".repeat(64);
        assert_eq!(KeyId::new(long.clone()).unwrap().as_str(), long);
        assert!(KeyId::new("a").unwrap() < KeyId::new("aa").unwrap());
        assert!(KeyId::new("b").unwrap() > KeyId::new("aa").unwrap());
        assert!(KeyId::new("").unwrap_err().is_config());
        assert!(KeyId::new("has space").is_err());
        assert!(KeyId::new("x".repeat(65)).is_err());
    }

    #[test]
    fn keypair_public_half_must_match() {
        let k = Ed25519SecretKey::from_seed(&[1u8; 32]).unwrap();
        let mut bytes = [1u8; 32].to_vec();
        bytes.extend_from_slice(&k.public_key().to_bytes());
        assert!(Ed25519SecretKey::from_keypair_bytes(&bytes).is_ok());
        bytes[40] ^= 1;
        assert!(Ed25519SecretKey::from_keypair_bytes(&bytes)
            .unwrap_err()
            .to_string()
            .contains("does not match"));
    }

    #[test]
    fn small_order_public_keys_are_refused() {
        // The identity point (y = 1) has order 1.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(Ed25519PublicKey::from_bytes(&identity).is_err());
    }

    #[test]
    fn non_canonical_public_key_encodings_are_refused() {
        // y = p + k for small k encodes the same y as k: not canonical.
        let mut refused = 0;
        for k in 0u8..19 {
            let mut bytes = [0xffu8; 32];
            bytes[0] = 0xed + k; // p = 2^255 - 19 = ed ff … ff 7f (little-endian)
            bytes[31] = 0x7f;
            let Ok(point) = VerifyingKey::from_bytes(&bytes) else {
                continue; // not a point at all
            };
            if point.is_weak() {
                continue; // refused for small order anyway
            }
            let err = Ed25519PublicKey::from_bytes(&bytes).unwrap_err();
            assert!(err.to_string().contains("not canonically encoded"), "{err}");
            refused += 1;
        }
        assert!(
            refused > 0,
            "no non-canonical encoding of a large-order point was tried"
        );
    }

    #[test]
    fn algorithm_names_round_trip() {
        for a in [Algorithm::HmacSha256, Algorithm::Ed25519] {
            assert_eq!(a.as_str().parse::<Algorithm>().unwrap(), a);
            assert_eq!(Algorithm::from_version(a.version()), Some(a));
        }
        assert!("rsa".parse::<Algorithm>().unwrap_err().is_config());
    }
}
