//! Standard Webhooks, Signet's native HTTP format (docs/architecture.md §3.1).
//!
//! Signed content is `{webhook-id}.{webhook-timestamp}.{raw body}`. The
//! `webhook-signature` header is a space-separated list of
//! `v1,<base64 HMAC-SHA256>` and `v1a,<base64 Ed25519>` entries, one per
//! signing key; a verifier accepts when any entry matches any key, ignores
//! versions it does not know, and refuses timestamps more than the tolerance
//! (300 s by default) away from its clock in either direction.
//!
//! Hot paths allocate only the returned header string: the keyed HMAC state
//! is precomputed per key, id, timestamp and body are fed to it in pieces,
//! and base64 is decoded into stack buffers.

use crate::b64;
use crate::error::{Error, Result};
use crate::key::{
    tags_equal, Algorithm, Ed25519PublicKey, Ed25519SecretKey, HmacSecret, KeyId, KeyMaterial,
};
use crate::keyring::KeyRing;
use base64::Engine as _;

/// Default freshness tolerance, in seconds, in both directions.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// Prefix of a Standard Webhooks HMAC secret.
pub const HMAC_SECRET_PREFIX: &str = "whsec_";
/// Prefix of a Standard Webhooks Ed25519 private key (seed ‖ public).
pub const ED25519_SECRET_PREFIX: &str = "whsk_";
/// Prefix of a Standard Webhooks Ed25519 public key.
pub const ED25519_PUBLIC_PREFIX: &str = "whpk_";

/// The three header names of a Standard Webhooks message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderNames {
    /// The message id header (stable across retries).
    pub id: &'static str,
    /// The timestamp header (unix seconds of this attempt).
    pub timestamp: &'static str,
    /// The signature list header.
    pub signature: &'static str,
}

/// `webhook-id`, `webhook-timestamp`, `webhook-signature`.
pub const STANDARD_HEADERS: HeaderNames = HeaderNames {
    id: "webhook-id",
    timestamp: "webhook-timestamp",
    signature: "webhook-signature",
};

/// `svix-id`, `svix-timestamp`, `svix-signature` (same scheme, Svix branding).
pub const SVIX_HEADERS: HeaderNames = HeaderNames {
    id: "svix-id",
    timestamp: "svix-timestamp",
    signature: "svix-signature",
};

/// Parses a secret in any Standard Webhooks form: `whsec_` + base64 (HMAC),
/// `whsk_` + base64(seed ‖ public) (Ed25519 private; the public half is
/// checked against the seed), `whpk_` + base64(public) (Ed25519 public), or
/// base64 without a prefix (HMAC). Padding is optional.
///
/// Length policies for Signet's own keys (16 bytes at least) are applied by
/// [`crate::SigningConfig`], not here: a receiver uses the secret the sender
/// issued. An empty secret is an [`Error::config`].
pub fn parse_secret(text: &str) -> Result<KeyMaterial> {
    let text = text.trim();
    let (form, payload) = if let Some(rest) = text.strip_prefix(HMAC_SECRET_PREFIX) {
        (HMAC_SECRET_PREFIX, rest)
    } else if let Some(rest) = text.strip_prefix(ED25519_SECRET_PREFIX) {
        (ED25519_SECRET_PREFIX, rest)
    } else if let Some(rest) = text.strip_prefix(ED25519_PUBLIC_PREFIX) {
        (ED25519_PUBLIC_PREFIX, rest)
    } else {
        ("", text)
    };
    let what = match form {
        ED25519_SECRET_PREFIX => "Ed25519 private key (whsk_)",
        ED25519_PUBLIC_PREFIX => "Ed25519 public key (whpk_)",
        HMAC_SECRET_PREFIX => "secret (whsec_)",
        _ => "secret",
    };
    if payload.is_empty() {
        return Err(Error::config(format!(
            "{what} is empty; give the whsec_, whsk_ or whpk_ value issued for this endpoint"
        )));
    }
    let bytes = zeroize::Zeroizing::new(
        b64::decode_key(payload)
            .map_err(|why| Error::config(format!("{what} is not valid base64: {why}")))?,
    );
    match form {
        ED25519_SECRET_PREFIX => Ok(KeyMaterial::Ed25519Private(Ed25519SecretKey::from_bytes(
            &bytes,
        )?)),
        ED25519_PUBLIC_PREFIX => Ok(KeyMaterial::Ed25519Public(Ed25519PublicKey::from_bytes(
            &bytes,
        )?)),
        _ => Ok(KeyMaterial::Hmac(HmacSecret::new(bytes.to_vec())?)),
    }
}

/// Formats key material in its Standard Webhooks form: `whsec_…` (HMAC),
/// `whsk_…` (Ed25519 seed ‖ public) or `whpk_…` (Ed25519 public), padded
/// standard base64.
pub fn format_secret(material: &KeyMaterial) -> String {
    match material {
        KeyMaterial::Hmac(secret) => {
            let mut out = String::from(HMAC_SECRET_PREFIX);
            b64::STANDARD.encode_string(secret.secret_bytes(), &mut out);
            out
        }
        KeyMaterial::Ed25519Private(key) => {
            let mut pair = zeroize::Zeroizing::new([0u8; 64]);
            pair[..32].copy_from_slice(&*key.secret_bytes());
            pair[32..].copy_from_slice(&key.public_key().to_bytes());
            let mut out = String::from(ED25519_SECRET_PREFIX);
            b64::STANDARD.encode_string(&pair[..], &mut out);
            out
        }
        KeyMaterial::Ed25519Public(key) => {
            let mut out = String::from(ED25519_PUBLIC_PREFIX);
            b64::STANDARD.encode_string(key.to_bytes(), &mut out);
            out
        }
    }
}

/// Signs a message: the `webhook-signature` value, one `v1,…`/`v1a,…` entry
/// per signing key of the ring (the active key first, then rotation-overlap
/// keys), space-separated.
///
/// Fails with [`Error::config`] when the ring has no signing key and with
/// [`Error::unsupported`] for an empty id or a negative timestamp.
pub fn sign(ring: &KeyRing, msg_id: &str, timestamp: i64, body: &[u8]) -> Result<String> {
    if ring.active().is_none() {
        return Err(Error::config(format!(
            "the key ring has no signing key ({}); set an active key that can sign",
            ring.describe()
        )));
    }
    check_id(msg_id)?;
    if timestamp < 0 {
        return Err(Error::unsupported(format!(
            "timestamp {timestamp} is negative; use unix seconds"
        )));
    }
    let mut ts = [0u8; 20];
    let ts = b64::decimal(timestamp, &mut ts);
    let mut prefix = Prefix::new();
    let parts = prefix.parts(msg_id, ts, body);
    let parts = parts.as_slice();
    // `v1a,` + 88 base64 characters + a space.
    let mut out = String::with_capacity(96);
    for key in ring.signing_keys() {
        if !out.is_empty() {
            out.push(' ');
        }
        match key.hmac_state() {
            Some(state) => {
                out.push_str("v1,");
                b64::encode_append(&state.mac_parts(parts), &mut out);
            }
            None => {
                let sig = key.sign_parts(parts)?;
                out.push_str(sig.algorithm().version());
                out.push(',');
                b64::encode_append(sig.as_bytes(), &mut out);
            }
        }
    }
    Ok(out)
}

/// Signs a message and returns the three headers to send, named by `names`
/// ([`STANDARD_HEADERS`] or [`SVIX_HEADERS`]), in id, timestamp, signature
/// order.
pub fn sign_headers(
    names: &HeaderNames,
    ring: &KeyRing,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<[(&'static str, String); 3]> {
    let signature = sign(ring, msg_id, timestamp, body)?;
    Ok([
        (names.id, msg_id.to_owned()),
        (names.timestamp, timestamp.to_string()),
        (names.signature, signature),
    ])
}

/// Clock and freshness window for verifying. There is deliberately no
/// `Default`: a verifier must say what time it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Current time, unix seconds.
    pub now: i64,
    /// Largest accepted |now − timestamp|, seconds, both directions.
    pub tolerance_secs: i64,
}

impl VerifyOptions {
    /// Options at `now` with the default tolerance of
    /// [`DEFAULT_TOLERANCE_SECS`] (300 s).
    pub fn new(now: i64) -> Self {
        Self {
            now,
            tolerance_secs: DEFAULT_TOLERANCE_SECS,
        }
    }

    /// The same options with another tolerance.
    pub fn with_tolerance(self, tolerance_secs: i64) -> Self {
        Self {
            tolerance_secs,
            ..self
        }
    }
}

/// Which key verified a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The id of the key whose signature matched.
    pub key_id: KeyId,
    /// Its algorithm (`v1` → HMAC-SHA256, `v1a` → Ed25519).
    pub algorithm: Algorithm,
}

/// Verifies a Standard Webhooks message with the `webhook-*` header names
/// in messages. See [`verify_with_names`].
#[inline]
pub fn verify(
    ring: &KeyRing,
    msg_id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<Verified> {
    verify_with_names(
        &STANDARD_HEADERS,
        ring,
        msg_id,
        timestamp,
        signature_header,
        body,
        &VerifyOptions {
            now,
            tolerance_secs,
        },
    )
}

/// Verifies a message: `msg_id`, `timestamp` and `signature_header` are the
/// header values as received (empty when absent), `options` the verifier's
/// clock and window. Error messages name headers by `names`.
///
/// Checks, in order: ids and headers present ([`Error::missing`]); the
/// timestamp is a whole number of seconds ([`Error::malformed`]) within the
/// window ([`Error::too_old`], [`Error::too_new`]); the
/// header has a `v1` or `v1a` entry ([`Error::malformed`]) the ring has keys
/// for ([`Error::algorithm_mismatch`]); then any entry matching any key of
/// its algorithm is accepted, in constant time per comparison. When none
/// does: [`Error::malformed`] if every entry was unreadable, else
/// [`Error::mismatch`]. An empty ring is an [`Error::config`].
pub fn verify_with_names(
    names: &HeaderNames,
    ring: &KeyRing,
    msg_id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    options: &VerifyOptions,
) -> Result<Verified> {
    if ring.is_empty() {
        return Err(Error::config(
            "the key ring has no keys to verify with; configure the sender's secret or public key",
        ));
    }
    if msg_id.is_empty() {
        return Err(Error::missing(format!(
            "{} header is missing or empty",
            names.id
        )));
    }
    let timestamp = timestamp.trim();
    if timestamp.is_empty() {
        return Err(Error::missing(format!(
            "{} header is missing or empty",
            names.timestamp
        )));
    }
    let ts = parse_timestamp(names, timestamp)?;
    check_fresh(ts, options.now, options.tolerance_secs)?;

    // The timestamp is signed as the sender wrote it (digits only, checked above).
    let mut prefix = Prefix::new();
    let parts = prefix.parts(msg_id, timestamp.as_bytes(), body);
    let parts = parts.as_slice();

    // Fast path: try every readable entry against every key of its
    // algorithm. Everything needed to explain a failure is worked out
    // afterwards, only when nothing matched.
    let mut has_hmac_key = false;
    let mut has_ed_key = false;
    for key in ring.keys() {
        match key.algorithm() {
            Algorithm::HmacSha256 => has_hmac_key = true,
            Algorithm::Ed25519 => has_ed_key = true,
        }
    }
    if has_hmac_key {
        for key in ring.keys() {
            let Some(state) = key.hmac_state() else {
                continue;
            };
            let tag = state.mac_parts(parts);
            for (_, value) in entries(signature_header, "v1") {
                let mut sig = [0u8; 33];
                if b64::decode_signature(value, &mut sig) == Some(32)
                    && tags_equal(&tag, &sig[..32])
                {
                    return Ok(Verified {
                        key_id: key.id().clone(),
                        algorithm: Algorithm::HmacSha256,
                    });
                }
            }
        }
    }
    let has_v1a = has_ed_key && entries(signature_header, "v1a").next().is_some();
    if has_v1a {
        let message = parts.concat();
        for key in ring
            .keys()
            .iter()
            .filter(|k| k.algorithm() == Algorithm::Ed25519)
        {
            for (_, value) in entries(signature_header, "v1a") {
                let mut sig = [0u8; 65];
                if b64::decode_signature(value, &mut sig) == Some(64)
                    && key.verify(&message, &sig[..64]).is_ok()
                {
                    return Ok(Verified {
                        key_id: key.id().clone(),
                        algorithm: Algorithm::Ed25519,
                    });
                }
            }
        }
    }
    Err(explain_failure(names, ring, signature_header, body.len()))
}

/// Why no entry of `header` matched any key of `ring`: no usable entry
/// (malformed), entries only for algorithms the ring lacks (algorithm
/// mismatch), every usable entry unreadable (malformed), or a plain
/// mismatch.
fn explain_failure(names: &HeaderNames, ring: &KeyRing, header: &str, body_len: usize) -> Error {
    if header.trim().is_empty() {
        return Error::missing(format!("{} header is missing or empty", names.signature));
    }
    let mut hmac_entries = 0usize;
    let mut ed_entries = 0usize;
    let mut first_unknown: Option<&str> = None;
    for entry in split_entries(header) {
        match entry.split_once(',').map(|(v, _)| v) {
            Some("v1") => hmac_entries += 1,
            Some("v1a") => ed_entries += 1,
            other => {
                if first_unknown.is_none() {
                    first_unknown = Some(other.unwrap_or(entry));
                }
            }
        }
    }
    if hmac_entries + ed_entries == 0 {
        let found = match first_unknown {
            Some(v) if v.len() <= 16 && !v.contains(',') => format!(" (found {v:?})"),
            _ => String::new(),
        };
        return Error::malformed(format!(
            "{} header has no v1 or v1a entry{found}; expected \"v1,<base64>\" or \"v1a,<base64>\"",
            names.signature
        ));
    }
    let hmac_keys = ring
        .keys()
        .iter()
        .filter(|k| k.algorithm() == Algorithm::HmacSha256)
        .count();
    let ed_keys = ring.len() - hmac_keys;
    let use_hmac = hmac_keys > 0 && hmac_entries > 0;
    let use_ed = ed_keys > 0 && ed_entries > 0;
    if !use_hmac && !use_ed {
        let (have, need) = if hmac_entries > 0 {
            ("v1 (HMAC-SHA256)", "hmac-sha256")
        } else {
            ("v1a (Ed25519)", "ed25519")
        };
        return Error::algorithm_mismatch(format!(
            "{} header has only {have} signatures but the key ring has no {need} key ({})",
            names.signature,
            ring.describe()
        ));
    }
    // Were all the entries we could use unreadable?
    let mut readable = 0usize;
    let mut first_problem: Option<String> = None;
    for (version, want, alg_name, usable) in [
        ("v1", 32, "HMAC-SHA256", use_hmac),
        ("v1a", 64, "Ed25519", use_ed),
    ] {
        if !usable {
            continue;
        }
        for (index, value) in entries(header, version) {
            let mut sig = [0u8; 65];
            let problem = match b64::decode_signature(value, &mut sig) {
                Some(n) if n == want => {
                    readable += 1;
                    continue;
                }
                Some(n) => format!("decodes to {n} bytes; {alg_name} signatures are {want}"),
                None if value.is_empty() => "is empty".to_owned(),
                None => format!("is not valid base64 of a {want}-byte {alg_name} signature"),
            };
            if first_problem.is_none() {
                first_problem = Some(format!(
                    "{} entry {index} ({version}) {problem}",
                    names.signature
                ));
            }
        }
    }
    if readable == 0 {
        if let Some(problem) = first_problem {
            return Error::malformed(problem);
        }
    }
    let tried: Vec<&str> = ring
        .keys()
        .iter()
        .filter(|k| match k.algorithm() {
            Algorithm::HmacSha256 => use_hmac,
            Algorithm::Ed25519 => use_ed,
        })
        .map(|k| k.id().as_str())
        .collect();
    let which = match tried.as_slice() {
        [one] => format!("key {one:?}"),
        many => format!("any of {} keys", many.len()),
    };
    Error::mismatch(format!(
        "no signature matched {which} (body {body_len} bytes; was the body re-serialised?)"
    ))
}

/// The signed content `{id}.{timestamp}.{body}` as pieces for incremental
/// hashing, arranged so the hash sees whole 64-byte blocks.
///
/// SHA-256 buffers partial blocks, and a partial block carried from one
/// update to the next costs about a fifth of a small message's HMAC. Short
/// content goes to the MAC's own stack-buffer path as five pieces; for
/// longer content `{id}.{timestamp}.` and the start of the body are copied
/// here up to a block boundary, and the rest of the body is hashed in
/// place, never copied.
struct Prefix {
    /// Filled only for long content; short content never touches it.
    buf: Option<[u8; 256]>,
}

/// Up to five slices, the signed content in order.
struct Parts<'a> {
    slices: [&'a [u8]; 5],
    len: usize,
}

impl<'a> Parts<'a> {
    fn as_slice(&self) -> &[&'a [u8]] {
        &self.slices[..self.len]
    }
}

impl Prefix {
    fn new() -> Self {
        Self { buf: None }
    }

    fn parts<'a>(&'a mut self, id: &'a str, ts: &'a [u8], body: &'a [u8]) -> Parts<'a> {
        let id = id.as_bytes();
        let n = id.len() + ts.len() + 2;
        // Short content is assembled by the MAC itself (one copy); longer
        // content gets the prefix and the start of the body up to the
        // first block boundary here.
        let end = n.div_ceil(64) * 64;
        if n + body.len() <= crate::mac::SHORT_MAX || end > 256 {
            // An id too long for the buffer: hash the pieces as they are.
            return Parts {
                slices: [id, b".", ts, b".", body],
                len: 5,
            };
        }
        let (head, rest) = body.split_at(end - n);
        let buf = self.buf.insert([0u8; 256]);
        buf[..id.len()].copy_from_slice(id);
        buf[id.len()] = b'.';
        buf[id.len() + 1..n - 1].copy_from_slice(ts);
        buf[n - 1] = b'.';
        buf[n..end].copy_from_slice(head);
        Parts {
            slices: [&buf[..end], rest, &[], &[], &[]],
            len: if rest.is_empty() { 1 } else { 2 },
        }
    }
}

/// The space-separated entries of a signature header (runs of spaces count
/// as one separator). Splitting on the one byte lets the search use
/// `memchr`.
fn split_entries(header: &str) -> impl Iterator<Item = &str> {
    header.split(' ').filter(|e| !e.is_empty())
}

/// The entries of one version, numbered from 1 by position in the header.
fn entries<'a>(header: &'a str, version: &'a str) -> impl Iterator<Item = (usize, &'a str)> + 'a {
    split_entries(header)
        .enumerate()
        .filter_map(move |(i, entry)| {
            let value = entry.strip_prefix(version)?.strip_prefix(',')?;
            Some((i + 1, value))
        })
}

fn check_id(msg_id: &str) -> Result<()> {
    if msg_id.is_empty() {
        return Err(Error::unsupported(
            "message id is empty; every Standard Webhooks message needs a webhook-id",
        ));
    }
    if msg_id.bytes().any(|b| b.is_ascii_control()) {
        return Err(Error::unsupported(
            "message id contains control characters and cannot be sent as a header",
        ));
    }
    Ok(())
}

/// A timestamp header: 1 to 19 ASCII digits.
fn parse_timestamp(names: &HeaderNames, text: &str) -> Result<i64> {
    let bad = || {
        let shown: String = text.chars().take(24).collect();
        Error::malformed(format!(
            "{} header {shown:?} is not a whole number of unix seconds",
            names.timestamp
        ))
    };
    if text.is_empty() || text.len() > 19 {
        return Err(bad());
    }
    // At most 19 digits, so the value fits a u64 without overflow checks.
    let mut value: u64 = 0;
    for b in text.bytes() {
        if !b.is_ascii_digit() {
            return Err(bad());
        }
        value = value * 10 + u64::from(b - b'0');
    }
    i64::try_from(value).map_err(|_| bad())
}

/// Refuses a timestamp more than `tolerance_secs` from `now` either way.
/// A negative tolerance counts as zero.
pub fn check_fresh(timestamp: i64, now: i64, tolerance_secs: i64) -> Result<()> {
    let tolerance = i128::from(tolerance_secs.max(0));
    let age = i128::from(now) - i128::from(timestamp);
    if age > tolerance {
        return Err(Error::too_old(format!(
            "timestamp is {age} s old; tolerance is {tolerance} s"
        )));
    }
    if -age > tolerance {
        return Err(Error::too_new(format!(
            "timestamp is {} s in the future; tolerance is {tolerance} s",
            -age
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Key;

    fn ring() -> KeyRing {
        KeyRing::single(Key::new(
            KeyId::new("k1").unwrap(),
            parse_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(),
        ))
    }

    #[test]
    fn signed_content_pieces_join_to_id_ts_body() {
        let body: Vec<u8> = (0..700u32).map(|i| i as u8).collect();
        for id_len in [1, 20, 50, 63, 64, 200, 260] {
            let id = "i".repeat(id_len);
            for body_len in [0, 1, 21, 64, 150, 213, 214, 600, 700] {
                let body = &body[..body_len];
                let mut prefix = Prefix::new();
                let parts = prefix.parts(&id, b"1700000000", body);
                let parts = parts.as_slice();
                let expected = [id.as_bytes(), b".1700000000.", body].concat();
                assert_eq!(parts.concat(), expected, "id {id_len} body {body_len}");
                if parts.len() <= 2 {
                    assert_eq!(parts[0].len() % 64, 0, "first piece is whole blocks");
                }
            }
        }
    }

    #[test]
    fn sign_then_verify() {
        let ring = ring();
        let header = sign(&ring, "msg_1", 1_700_000_000, b"{}").unwrap();
        assert!(header.starts_with("v1,") && header.len() == 47, "{header}");
        let ok = verify(
            &ring,
            "msg_1",
            "1700000000",
            &header,
            b"{}",
            1_700_000_000,
            300,
        )
        .unwrap();
        assert_eq!(ok.key_id.as_str(), "k1");
    }

    #[test]
    fn messages_say_what_to_fix() {
        let ring = ring();
        let h = sign(&ring, "msg_1", 1000, b"body").unwrap();
        let msg = |r: Result<Verified>| r.unwrap_err().to_string();
        assert_eq!(
            msg(verify(&ring, "msg_1", "1000", &h, b"body", 1412, 300)),
            "timestamp is 412 s old; tolerance is 300 s"
        );
        assert_eq!(
            msg(verify(&ring, "msg_1", "1000", &h, b"body", 600, 300)),
            "timestamp is 400 s in the future; tolerance is 300 s"
        );
        assert_eq!(
            msg(verify(&ring, "msg_1", "1000", &h, b"bodx", 1000, 300)),
            "no signature matched key \"k1\" (body 4 bytes; was the body re-serialised?)"
        );
        assert_eq!(
            msg(verify(&ring, "msg_1", "1000", "v2,abc", b"body", 1000, 300)),
            "webhook-signature header has no v1 or v1a entry (found \"v2\"); expected \"v1,<base64>\" or \"v1a,<base64>\""
        );
        assert_eq!(
            msg(verify(&ring, "msg_1", "1000", "v1,abc", b"body", 1000, 300)),
            "webhook-signature entry 1 (v1) decodes to 2 bytes; HMAC-SHA256 signatures are 32"
        );
        assert_eq!(
            msg(verify(
                &ring,
                "msg_1",
                "1000",
                "v9,x v1,a*c",
                b"body",
                1000,
                300
            )),
            "webhook-signature entry 2 (v1) is not valid base64 of a 32-byte HMAC-SHA256 signature"
        );
        let e = verify(&ring, "msg_1", "1000", "v1a,abc", b"body", 1000, 300).unwrap_err();
        assert!(e.is_algorithm_mismatch(), "{e}");
        let opts = VerifyOptions::new(1000);
        let e =
            verify_with_names(&SVIX_HEADERS, &ring, "", "1000", &h, b"body", &opts).unwrap_err();
        assert!(e.is_missing() && e.to_string().starts_with("svix-id header"));
    }

    #[test]
    fn secrets_round_trip_through_their_forms() {
        for text in [
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whpk_1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4=",
        ] {
            assert_eq!(format_secret(&parse_secret(text).unwrap()), text);
        }
        let sk = Ed25519SecretKey::from_seed(&[5u8; 32]).unwrap();
        let text = format_secret(&KeyMaterial::Ed25519Private(sk));
        assert!(text.starts_with("whsk_"));
        assert_eq!(format_secret(&parse_secret(&text).unwrap()), text);
        for empty in ["", "whsec_", "whsk_", "whpk_"] {
            assert!(parse_secret(empty).unwrap_err().is_config(), "{empty:?}");
        }
    }
}
