//! The task envelope `signet.task.v1`: the signed, immutable part of a task.
//!
//! Delivery state (attempt, state, lease, priority, errors) is deliberately
//! not part of it, so retries, lease extensions and replays never need
//! re-signing. The canonical byte layout is specified in
//! `docs/task-envelope.md`.

use std::collections::BTreeMap;

use base64::Engine as _;

use crate::b64;
use crate::batch::BatchItem;
use crate::error::{Error, Result};
use crate::key::{Algorithm, Ed25519PublicKey, Key, KeyId, KeyMaterial};
use crate::keyring::KeyRing;

/// The 14-byte domain-separation tag that starts the canonical bytes.
pub const ENVELOPE_TAG: &[u8; 14] = b"signet.task.v1";

/// The header that carries an envelope's signature: `v1,<b64>` or `v1a,<b64>`.
pub const SIGNATURE_HEADER: &str = "signet-signature";
/// The header that carries the id of the key that signed the envelope.
pub const SIGNATURE_KEY_HEADER: &str = "signet-signature-key";

/// Header names that carry signatures and so are never signed themselves.
pub const SIGNATURE_HEADERS: [&str; 2] = [SIGNATURE_HEADER, SIGNATURE_KEY_HEADER];

/// The marker written for an absent optional field.
const ABSENT: u32 = 0xFFFF_FFFF;

/// The signed fields of a task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskEnvelope {
    /// Task id (`task_…`).
    pub id: String,
    /// Queue name.
    pub queue: String,
    /// Task (handler) name.
    pub name: String,
    /// Arguments: the exact bytes the producer serialised. Never re-serialised.
    pub args: Vec<u8>,
    /// Headers, lower-case names, sorted by name bytes, signature headers excluded.
    /// Build with [`TaskEnvelope::normalise_headers`] to get these rules.
    pub headers: BTreeMap<String, String>,
    /// Creation time, unix milliseconds.
    pub created_at_ms: i64,
    /// Not to run before this time, unix milliseconds.
    pub not_before_ms: Option<i64>,
    /// Not to run after this time, unix milliseconds.
    pub expires_at_ms: Option<i64>,
    /// Attempts allowed, the first one included.
    pub max_attempts: u32,
    /// Where to send a signed callback when the task finishes.
    pub callback_url: Option<String>,
}

impl TaskEnvelope {
    /// Lower-cases header names, drops signature headers, and rejects
    /// duplicates (two names equal after lower-casing) and names or values
    /// that are not valid header text.
    pub fn normalise_headers<I, K, V>(headers: I) -> Result<BTreeMap<String, String>>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        let mut out = BTreeMap::new();
        for (name, value) in headers {
            let name = name.as_ref().to_ascii_lowercase();
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
            {
                return Err(Error::unsupported(format!(
                    "header name {name:?} is not a valid token; use letters, digits and - _ ."
                )));
            }
            let value = value.into();
            if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                return Err(Error::unsupported(format!(
                    "header {name:?} has a value with CR, LF or NUL; remove them"
                )));
            }
            if SIGNATURE_HEADERS.contains(&name.as_str()) {
                continue;
            }
            if out.insert(name.clone(), value).is_some() {
                return Err(Error::unsupported(format!(
                    "header {name:?} is given twice (names are case-insensitive); send it once"
                )));
            }
        }
        Ok(out)
    }

    /// The canonical bytes that are signed (see `docs/task-envelope.md`).
    ///
    /// Fails only when a field is longer than 4 GiB − 2 bytes, which cannot be
    /// length-prefixed.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.encoded_len_hint());
        out.extend_from_slice(ENVELOPE_TAG);
        field(&mut out, self.id.as_bytes())?;
        field(&mut out, self.queue.as_bytes())?;
        field(&mut out, self.name.as_bytes())?;
        field(&mut out, &self.args)?;
        let count = self
            .headers
            .keys()
            .filter(|k| !SIGNATURE_HEADERS.contains(&k.as_str()))
            .count();
        out.extend_from_slice(&u32_len(count)?.to_be_bytes());
        for (name, value) in &self.headers {
            if SIGNATURE_HEADERS.contains(&name.as_str()) {
                continue;
            }
            // Lower-casing here would break the sort order and could merge
            // two names into one (`A` and `a`), so two different envelopes
            // would share canonical bytes. Names must arrive lower-case.
            if name.bytes().any(|b| b.is_ascii_uppercase()) {
                return Err(Error::unsupported(format!(
                    "header name {name:?} is not lower-case; build headers with TaskEnvelope::normalise_headers"
                )));
            }
            field(&mut out, name.as_bytes())?;
            field(&mut out, value.as_bytes())?;
        }
        field(&mut out, self.created_at_ms.to_string().as_bytes())?;
        optional(
            &mut out,
            self.not_before_ms.map(|v| v.to_string()).as_deref(),
        )?;
        optional(
            &mut out,
            self.expires_at_ms.map(|v| v.to_string()).as_deref(),
        )?;
        field(&mut out, self.max_attempts.to_string().as_bytes())?;
        optional(&mut out, self.callback_url.as_deref())?;
        Ok(out)
    }

    fn encoded_len_hint(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| 8 + k.len() + v.len())
            .sum();
        14 + 4 * 9
            + self.id.len()
            + self.queue.len()
            + self.name.len()
            + self.args.len()
            + headers
            + 64
            + self.callback_url.as_ref().map_or(0, String::len)
    }
}

/// An envelope's signature as stored beside it: `{alg, key_id, sig}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvelopeSignature {
    /// The algorithm that made it.
    pub alg: Algorithm,
    /// The id of the key that made it.
    pub key_id: KeyId,
    /// The signature bytes: 32 (HMAC-SHA256) or 64 (Ed25519).
    pub sig: Vec<u8>,
}

impl EnvelopeSignature {
    /// The `signet-signature` header value: `v1,<base64>` (HMAC-SHA256) or
    /// `v1a,<base64>` (Ed25519). The key id goes in `signet-signature-key`.
    pub fn header_value(&self) -> String {
        let mut out = String::with_capacity(4 + self.sig.len().div_ceil(3) * 4);
        out.push_str(self.alg.version());
        out.push(',');
        b64::STANDARD.encode_string(&self.sig, &mut out);
        out
    }

    /// Parses the `signet-signature` and `signet-signature-key` header
    /// values. Absent (empty) values are [`Error::missing`]; an unknown
    /// version, bad base64, a signature of the wrong length or an invalid key
    /// id is [`Error::malformed`].
    pub fn from_headers(signature: &str, key_id: &str) -> Result<Self> {
        let signature = signature.trim();
        let key_id = key_id.trim();
        if signature.is_empty() {
            return Err(Error::missing(format!(
                "{SIGNATURE_HEADER} header is missing or empty; the task was not signed"
            )));
        }
        if key_id.is_empty() {
            return Err(Error::missing(format!(
                "{SIGNATURE_KEY_HEADER} header is missing or empty; it must name the key that signed the task"
            )));
        }
        let Some((version, value)) = signature.split_once(',') else {
            return Err(Error::malformed(format!(
                "{SIGNATURE_HEADER} has no ','; expected \"v1,<base64>\" or \"v1a,<base64>\""
            )));
        };
        let Some(alg) = Algorithm::from_version(version) else {
            let shown: String = version.chars().take(16).collect();
            return Err(Error::malformed(format!(
                "{SIGNATURE_HEADER} version {shown:?} is unknown; expected v1 (hmac-sha256) or v1a (ed25519)"
            )));
        };
        let sig = b64::SIGNATURE.decode(value).map_err(|e| {
            Error::malformed(format!(
                "{SIGNATURE_HEADER} is not valid base64: {}",
                b64::describe(&e)
            ))
        })?;
        if sig.len() != alg.signature_len() {
            return Err(Error::malformed(format!(
                "{SIGNATURE_HEADER} ({version}) is {} bytes; {alg} signatures are {}",
                sig.len(),
                alg.signature_len()
            )));
        }
        let key_id = KeyId::new(key_id).map_err(|e| {
            Error::malformed(format!("{SIGNATURE_KEY_HEADER} is not a valid key id: {e}"))
        })?;
        Ok(Self { alg, key_id, sig })
    }
}

impl TaskEnvelope {
    /// Signs the canonical bytes with the ring's active key.
    ///
    /// Fails with [`Error::config`] when the ring has no active key (a
    /// verify-only ring), and with [`Error::unsupported`] when the envelope
    /// cannot be encoded.
    pub fn sign(&self, ring: &KeyRing) -> Result<EnvelopeSignature> {
        let key = ring.active().ok_or_else(|| {
            Error::config(format!(
                "the key ring has no active key ({}); set one that can sign to enqueue signed tasks",
                ring.describe()
            ))
        })?;
        let bytes = self.canonical_bytes()?;
        let sig = key.sign(&bytes)?;
        Ok(EnvelopeSignature {
            alg: sig.algorithm(),
            key_id: key.id().clone(),
            sig: sig.as_bytes().to_vec(),
        })
    }

    /// Verifies a stored signature against the ring and returns the id of
    /// the key that made it.
    ///
    /// Errors: [`Error::unknown_key`] when `key_id` is not in the ring,
    /// [`Error::algorithm_mismatch`] when `alg` is not that key's algorithm,
    /// [`Error::malformed`] for a signature of the wrong length,
    /// [`Error::mismatch`] when it does not verify (Ed25519 strictly).
    pub fn verify(
        &self,
        alg: Algorithm,
        key_id: &str,
        sig: &[u8],
        ring: &KeyRing,
    ) -> Result<KeyId> {
        let key = resolve(alg, key_id, sig, ring)?;
        let bytes = self.canonical_bytes()?;
        check_with(key, &bytes, sig)
    }
}

/// Finds the key a signature names and checks algorithm and length.
fn resolve<'r>(alg: Algorithm, key_id: &str, sig: &[u8], ring: &'r KeyRing) -> Result<&'r Key> {
    let Some(key) = ring.get(key_id) else {
        let shown: String = key_id.chars().take(64).collect();
        return Err(Error::unknown_key(format!(
            "task is signed with key {shown:?}, which is not in the key ring ({}); add that key (its public key is enough for ed25519) or re-sign the task",
            ring.describe()
        )));
    };
    if key.algorithm() != alg {
        return Err(Error::algorithm_mismatch(format!(
            "task signature is {alg} but key {key_id:?} is a {} key; the signature cannot be from that key",
            key.algorithm()
        )));
    }
    if sig.len() != alg.signature_len() {
        return Err(Error::malformed(format!(
            "task signature is {} bytes; {alg} signatures are {}",
            sig.len(),
            alg.signature_len()
        )));
    }
    Ok(key)
}

/// Verifies `sig` over canonical `bytes` with `key`, with the message a
/// caller of [`TaskEnvelope::verify`] sees.
fn check_with(key: &Key, bytes: &[u8], sig: &[u8]) -> Result<KeyId> {
    match key.verify(bytes, sig) {
        Ok(()) => Ok(key.id().clone()),
        Err(e) if e.is_mismatch() => Err(mismatch(key, bytes.len())),
        Err(e) => Err(e),
    }
}

fn mismatch(key: &Key, len: usize) -> Error {
    Error::mismatch(format!(
        "task signature does not match key {:?} ({len} canonical bytes); was the task changed after it was signed?",
        key.id().as_str()
    ))
}

/// One envelope to check in [`verify_batch`], with its stored signature
/// `(alg, key_id, sig)` or `None` when it has none.
#[derive(Clone, Copy, Debug)]
pub struct EnvelopeCheck<'a> {
    /// The envelope.
    pub envelope: &'a TaskEnvelope,
    /// Its signature, if it has one.
    pub signature: Option<(Algorithm, &'a str, &'a [u8])>,
}

/// An Ed25519 item waiting for the batch: (index, key, public key,
/// canonical bytes, signature).
type Pending<'a> = (usize, &'a Key, Ed25519PublicKey, Vec<u8>, &'a [u8]);

/// Verifies many envelopes at once, one result per item in order, each the
/// same as [`TaskEnvelope::verify`] would give (`None` signature →
/// [`Error::missing`]).
///
/// HMAC items are checked one by one (HMAC is cheap). Ed25519 items are
/// checked together with `ed25519-dalek` batch verification
/// ([`crate::batch::verify_ed25519`]); when the batch fails, each is checked
/// on its own with strict verification so the bad ones are named.
pub fn verify_batch(items: &[EnvelopeCheck<'_>], ring: &KeyRing) -> Vec<Result<KeyId>> {
    let mut results: Vec<Result<KeyId>> = Vec::with_capacity(items.len());
    let mut pending: Vec<Pending<'_>> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Some((alg, key_id, sig)) = item.signature else {
            results.push(Err(Error::missing(format!(
                "task {:?} has no signature; it was enqueued without a signing key",
                item.envelope.id
            ))));
            continue;
        };
        let checked = resolve(alg, key_id, sig, ring)
            .and_then(|key| Ok((key, item.envelope.canonical_bytes()?)));
        let (key, bytes) = match checked {
            Ok(found) => found,
            Err(e) => {
                results.push(Err(e));
                continue;
            }
        };
        let public = match key.material() {
            KeyMaterial::Ed25519Private(k) => Some(k.public_key()),
            KeyMaterial::Ed25519Public(k) => Some(*k),
            KeyMaterial::Hmac(_) => None,
        };
        match public {
            Some(public) => {
                // Replaced below once the batch has decided.
                results.push(Ok(key.id().clone()));
                pending.push((index, key, public, bytes, sig));
            }
            None => results.push(check_with(key, &bytes, sig)),
        }
    }
    let batch: Vec<BatchItem<'_>> = pending
        .iter()
        .map(|(_, _, public, bytes, sig)| BatchItem {
            key: public,
            message: bytes,
            signature: sig,
        })
        .collect();
    let valid = crate::batch::verify_ed25519(&batch);
    for ((index, key, _, bytes, _), ok) in pending.iter().zip(valid) {
        if !ok {
            results[*index] = Err(mismatch(key, bytes.len()));
        }
    }
    results
}

fn u32_len(len: usize) -> Result<u32> {
    match u32::try_from(len) {
        Ok(n) if n != ABSENT => Ok(n),
        _ => Err(Error::unsupported(format!(
            "a field of {len} bytes is too long to sign; the limit is 4 GiB - 2"
        ))),
    }
}

fn field(out: &mut Vec<u8>, bytes: &[u8]) -> Result<()> {
    out.extend_from_slice(&u32_len(bytes.len())?.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

fn optional(out: &mut Vec<u8>, value: Option<&str>) -> Result<()> {
    match value {
        Some(v) => field(out, v.as_bytes()),
        None => {
            out.extend_from_slice(&ABSENT.to_be_bytes());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{Ed25519SecretKey, HmacSecret};

    fn sample() -> TaskEnvelope {
        TaskEnvelope {
            id: "task_1".into(),
            queue: "default".into(),
            name: "email.send".into(),
            args: br#"{"to":"a@example.com"}"#.to_vec(),
            headers: TaskEnvelope::normalise_headers([("Tenant", "acme")]).unwrap(),
            created_at_ms: 1_700_000_000_000,
            not_before_ms: None,
            expires_at_ms: Some(1_700_000_060_000),
            max_attempts: 5,
            callback_url: None,
        }
    }

    #[test]
    fn canonical_layout_is_as_documented() {
        let bytes = sample().canonical_bytes().unwrap();
        assert!(bytes.starts_with(b"signet.task.v1\x00\x00\x00\x06task_1"));
        assert!(bytes.ends_with(b"\x00\x00\x00\x015\xff\xff\xff\xff"));
    }

    fn hmac_ring() -> KeyRing {
        KeyRing::single(Key::new(
            KeyId::new("h1").unwrap(),
            KeyMaterial::Hmac(HmacSecret::new(vec![7u8; 32]).unwrap()),
        ))
    }

    fn ed_ring() -> KeyRing {
        KeyRing::single(Key::new(
            KeyId::new("e1").unwrap(),
            KeyMaterial::Ed25519Private(Ed25519SecretKey::from_seed(&[8u8; 32]).unwrap()),
        ))
    }

    #[test]
    fn sign_then_verify_with_each_algorithm_and_header_round_trip() {
        for ring in [hmac_ring(), ed_ring()] {
            let env = sample();
            let sig = env.sign(&ring).unwrap();
            let parsed =
                EnvelopeSignature::from_headers(&sig.header_value(), sig.key_id.as_str()).unwrap();
            assert_eq!(parsed, sig);
            let verify_only = ring.verify_only();
            let id = env
                .verify(sig.alg, sig.key_id.as_str(), &sig.sig, &verify_only)
                .unwrap();
            assert_eq!(id, sig.key_id);
            let mut changed = env.clone();
            changed.max_attempts += 1;
            let err = changed
                .verify(sig.alg, sig.key_id.as_str(), &sig.sig, &ring)
                .unwrap_err();
            assert!(
                err.is_mismatch() && err.to_string().contains("changed after"),
                "{err}"
            );
        }
    }

    #[test]
    fn verify_outcomes() {
        let ring = hmac_ring();
        let env = sample();
        let sig = env.sign(&ring).unwrap();
        let e = env.verify(sig.alg, "nope", &sig.sig, &ring).unwrap_err();
        assert!(
            e.is_unknown_key() && e.to_string().contains("(keys: h1)"),
            "{e}"
        );
        let e = env
            .verify(Algorithm::Ed25519, "h1", &sig.sig, &ring)
            .unwrap_err();
        assert!(e.is_algorithm_mismatch(), "{e}");
        let e = env
            .verify(sig.alg, "h1", &sig.sig[..31], &ring)
            .unwrap_err();
        assert!(e.is_malformed(), "{e}");
        assert!(env.sign(&ed_ring().verify_only()).unwrap_err().is_config());
        assert!(EnvelopeSignature::from_headers("", "h1")
            .unwrap_err()
            .is_missing());
        assert!(EnvelopeSignature::from_headers("v1,AAAA", "h1")
            .unwrap_err()
            .is_malformed());
        assert!(EnvelopeSignature::from_headers("v2,AAAA", "h1")
            .unwrap_err()
            .is_malformed());
    }

    #[test]
    fn upper_case_header_names_cannot_be_encoded() {
        let mut env = sample();
        env.headers.insert("Tenant".into(), "x".into());
        assert!(env.canonical_bytes().unwrap_err().is_unsupported());
    }

    #[test]
    fn batch_names_the_bad_items() {
        let ring = ed_ring();
        let envs: Vec<TaskEnvelope> = (0..5)
            .map(|i| {
                let mut e = sample();
                e.id = format!("task_{i}");
                e
            })
            .collect();
        let sigs: Vec<EnvelopeSignature> = envs.iter().map(|e| e.sign(&ring).unwrap()).collect();
        let mut items: Vec<EnvelopeCheck<'_>> = envs
            .iter()
            .zip(&sigs)
            .map(|(e, s)| EnvelopeCheck {
                envelope: e,
                signature: Some((s.alg, s.key_id.as_str(), s.sig.as_slice())),
            })
            .collect();
        assert!(verify_batch(&items, &ring).iter().all(Result::is_ok));
        // Swap two signatures and drop one: those three fail, the rest pass.
        items[1].signature = Some((sigs[2].alg, "e1", sigs[2].sig.as_slice()));
        items[2].signature = Some((sigs[1].alg, "e1", sigs[1].sig.as_slice()));
        items[4].signature = None;
        let out = verify_batch(&items, &ring);
        let reasons: Vec<&str> = out
            .iter()
            .map(|r| r.as_ref().map_or_else(|e| e.reason(), |_| "ok"))
            .collect();
        assert_eq!(reasons, ["ok", "mismatch", "mismatch", "ok", "missing"]);
    }

    #[test]
    fn duplicate_headers_are_rejected_and_signature_headers_dropped() {
        let err = TaskEnvelope::normalise_headers([("A", "1"), ("a", "2")]).unwrap_err();
        assert!(err.to_string().contains("given twice"));
        let h =
            TaskEnvelope::normalise_headers([("Signet-Signature", "v1,xx"), ("x", "y")]).unwrap();
        assert_eq!(h.len(), 1);
    }
}
