//! Stem task envelopes: `stem-signature` (standard base64 of HMAC-SHA256 or
//! Ed25519 over Stem's canonical envelope JSON) and `stem-signature-key` (the
//! key id).
//!
//! The body given to sign and verify is the envelope JSON as Stem puts it on
//! the wire (`Envelope.toJson`). The signed bytes are rebuilt from it the way
//! Stem's `PayloadSigner` does: compact JSON of a map with exactly the keys
//! `args, attempt, enqueuedAt, headers, id, maxRetries, meta, name,
//! notBefore, priority, queue, visibilityTimeoutMs`, sorted (by UTF-16 code
//! units, like Dart's `SplayTreeMap`), nested maps sorted, nulls kept,
//! `headers` without `stem-signature`/`stem-signature-key`, times as UTC ISO
//! 8601 with 3 millisecond digits plus 3 microsecond digits only when they are
//! not zero, the wire field `visibilityTimeout` signed as
//! `visibilityTimeoutMs`, non-ASCII written raw. Missing optional fields get
//! Stem's defaults (`priority`/`attempt`/`maxRetries` 0, `queue`
//! `"default"`, `headers`/`meta` empty, `notBefore`/`visibilityTimeout`
//! null).
//!
//! **Doubles are refused.** A JSON number with a fraction or exponent (or an
//! integer outside 64 bits) anywhere in the signed fields is an
//! [`Error::unsupported`] error: Dart prints doubles in its own form
//! (`1.0`, `1e+21`) which Signet does not reproduce, and guessing would give
//! signatures that fail on the other side.
//!
//! On verify the signature is read from the HTTP headers if present there,
//! otherwise from the envelope's own `headers` map (where Stem keeps it).
//! Stem signs no freshness window and has no replay protection; a verified
//! envelope carries a warning saying so.
//!
//! Keys (`--secret`): `id:base64` (HMAC secret), `ed25519:id:base64` (Ed25519
//! private key: the 32-byte seed, or 64 bytes seed ‖ public) and
//! `ed25519-public:id:base64` (Ed25519 public key, verify only).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::Signer as _;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::jcs::{self, JsonValue};
use super::{
    excerpt, hmac_sha256, hmac_sha256_matches, Headers, KeySecret, ProfileKey, ProfileVerified,
    SignRequest,
};
use crate::error::{Error, Result};
use crate::key::{
    Algorithm, Ed25519PublicKey, Ed25519SecretKey, HmacSecret, Key, KeyId, KeyMaterial,
};

/// The signature header (base64).
pub const SIGNATURE_HEADER: &str = "stem-signature";
/// The key id header.
pub const KEY_HEADER: &str = "stem-signature-key";

/// The warning every successful Stem verification carries.
pub const NO_FRESHNESS_WARNING: &str = "stem signs no timestamp window: a captured envelope can be replayed; deduplicate on the envelope id";

pub(crate) fn parse_key(text: &str) -> Result<KeySecret> {
    let text = text.trim();
    let parts: Vec<&str> = text.split(':').collect();
    let (kind, id, b64) = match parts.as_slice() {
        [id, b64] => ("hmac", *id, *b64),
        [kind, id, b64] => (*kind, *id, *b64),
        _ => {
            return Err(Error::config(
                "stem key must be id:base64 (HMAC), ed25519:id:base64 (private seed) or ed25519-public:id:base64",
            ))
        }
    };
    let id = KeyId::new(id.trim())?;
    let bytes =
        zeroize::Zeroizing::new(decode_key_base64(b64.trim()).map_err(|_| {
            Error::config(format!("stem key {:?} is not valid base64", id.as_str()))
        })?);
    let material = match kind.trim().to_ascii_lowercase().as_str() {
        "hmac" | "hmac-sha256" => KeyMaterial::Hmac(HmacSecret::new(bytes.to_vec())?),
        "ed25519" => KeyMaterial::Ed25519Private(Ed25519SecretKey::from_bytes(&bytes)?),
        "ed25519-public" => KeyMaterial::Ed25519Public(Ed25519PublicKey::from_bytes(&bytes)?),
        other => {
            return Err(Error::config(format!(
                "stem key kind {:?} is unknown; use id:base64, ed25519:id:base64 or ed25519-public:id:base64",
                excerpt(other)
            )))
        }
    };
    Ok(KeySecret::WithId(Box::new(Key::new(id, material))))
}

/// Dart's `base64.decode` accepts padded and unpadded standard or URL-safe
/// text; so do we, for keys.
fn decode_key_base64(text: &str) -> std::result::Result<Vec<u8>, base64::DecodeError> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    STANDARD
        .decode(text)
        .or_else(|_| STANDARD_NO_PAD.decode(text))
        .or_else(|_| URL_SAFE.decode(text))
        .or_else(|_| URL_SAFE_NO_PAD.decode(text))
}

fn stem_key(key: &ProfileKey) -> Result<&Key> {
    match key.secret() {
        KeySecret::WithId(k) => Ok(k),
        _ => Err(Error::config(format!(
            "key was parsed for the {} profile, not stem",
            key.profile().as_str()
        ))),
    }
}

/// The bytes Stem signs for an envelope given as wire JSON.
pub fn canonical_bytes(envelope_json: &[u8]) -> Result<Vec<u8>> {
    let envelope = parse_envelope(envelope_json)?;
    canonical_from(&envelope)
}

fn parse_envelope(envelope_json: &[u8]) -> Result<JsonValue> {
    let envelope = jcs::parse(envelope_json).map_err(|e| {
        Error::malformed(format!("stem envelope is not valid JSON: {}", e.message()))
    })?;
    if !matches!(envelope, JsonValue::Object(_)) {
        return Err(Error::malformed(format!(
            "stem envelope must be a JSON object, not {}",
            envelope.kind()
        )));
    }
    Ok(envelope)
}

/// Writes integers as Dart prints them; refuses doubles.
fn integer_only(field: &'static str) -> impl Fn(&str) -> Result<String> {
    move |lexeme: &str| {
        let integral = !lexeme.contains(['.', 'e', 'E']);
        match lexeme.parse::<i64>() {
            Ok(n) if integral => Ok(n.to_string()),
            _ => Err(Error::unsupported(format!(
                "stem envelope field {field} holds the number {}, which is not a 64-bit integer; Signet refuses JSON doubles in Stem envelopes rather than guess Dart's double formatting",
                excerpt(lexeme)
            ))),
        }
    }
}

fn field<'a>(envelope: &'a JsonValue, name: &str) -> Option<&'a JsonValue> {
    match envelope.member(name) {
        None | Some(JsonValue::Null) => None,
        Some(v) => Some(v),
    }
}

fn string_field<'a>(envelope: &'a JsonValue, name: &'static str) -> Result<Option<&'a str>> {
    match field(envelope, name) {
        None => Ok(None),
        Some(JsonValue::String(s)) => Ok(Some(s)),
        Some(v) => Err(Error::malformed(format!(
            "stem envelope field {name} must be a string, not {}",
            v.kind()
        ))),
    }
}

fn required_string<'a>(envelope: &'a JsonValue, name: &'static str) -> Result<&'a str> {
    string_field(envelope, name)?.ok_or_else(|| {
        Error::malformed(format!(
            "stem envelope has no {name}; Stem cannot have signed it without one"
        ))
    })
}

fn object_field<'a>(envelope: &'a JsonValue, name: &'static str) -> Result<Option<&'a JsonValue>> {
    match field(envelope, name) {
        None => Ok(None),
        Some(v @ JsonValue::Object(_)) => Ok(Some(v)),
        Some(v) => Err(Error::malformed(format!(
            "stem envelope field {name} must be an object, not {}",
            v.kind()
        ))),
    }
}

fn int_field(envelope: &JsonValue, name: &'static str) -> Result<Option<String>> {
    match field(envelope, name) {
        None => Ok(None),
        Some(JsonValue::Number(lexeme)) => integer_only(name)(lexeme).map(Some),
        Some(v) => Err(Error::malformed(format!(
            "stem envelope field {name} must be an integer, not {}",
            v.kind()
        ))),
    }
}

/// A wire time as Dart's `DateTime.toUtc().toIso8601String()` prints it.
fn canonical_time(text: &str, name: &'static str) -> Result<String> {
    let t = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
        Error::malformed(format!(
            "stem envelope field {name} is {:?}, not an RFC 3339 time with an offset (like 2025-01-01T00:00:00.000Z)",
            excerpt(text)
        ))
    })?;
    let t = t.to_offset(time::UtcOffset::UTC);
    if t.nanosecond() % 1_000 != 0 {
        return Err(Error::unsupported(format!(
            "stem envelope field {name} has sub-microsecond digits, which Dart's DateTime cannot hold"
        )));
    }
    if !(0..=9999).contains(&t.year()) {
        return Err(Error::unsupported(format!(
            "stem envelope field {name} has a year outside 0000-9999"
        )));
    }
    let micros = t.nanosecond() / 1_000;
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        micros / 1_000
    );
    if micros % 1_000 != 0 {
        out.push_str(&format!("{:03}", micros % 1_000));
    }
    out.push('Z');
    Ok(out)
}

fn canonical_from(envelope: &JsonValue) -> Result<Vec<u8>> {
    let id = required_string(envelope, "id")?;
    let name = required_string(envelope, "name")?;
    let args = object_field(envelope, "args")?
        .ok_or_else(|| Error::malformed("stem envelope has no args object; Stem requires one"))?;
    let headers = match object_field(envelope, "headers")? {
        Some(JsonValue::Object(members)) => {
            let mut out = Vec::with_capacity(members.len());
            for (k, v) in members {
                if k == SIGNATURE_HEADER || k == KEY_HEADER {
                    continue;
                }
                match v {
                    JsonValue::String(_) => out.push((k.clone(), v.clone())),
                    other => {
                        return Err(Error::malformed(format!(
                            "stem envelope header {:?} must be a string, not {}",
                            excerpt(k),
                            other.kind()
                        )))
                    }
                }
            }
            out
        }
        // Absent or null: Stem's default, no headers.
        _ => Vec::new(),
    };
    let enqueued_at = canonical_time(required_string(envelope, "enqueuedAt")?, "enqueuedAt")?;
    let not_before = string_field(envelope, "notBefore")?
        .map(|t| canonical_time(t, "notBefore"))
        .transpose()?;
    let priority = int_field(envelope, "priority")?.unwrap_or_else(|| "0".to_owned());
    let attempt = int_field(envelope, "attempt")?.unwrap_or_else(|| "0".to_owned());
    let max_retries = int_field(envelope, "maxRetries")?.unwrap_or_else(|| "0".to_owned());
    let visibility = int_field(envelope, "visibilityTimeout")?;
    let queue = string_field(envelope, "queue")?.unwrap_or("default");
    let meta = object_field(envelope, "meta")?;

    // Written in sorted key order by hand: the field set is fixed.
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"args\":");
    jcs::write_sorted(args, &mut out, &integer_only("args"))?;
    out.extend_from_slice(b",\"attempt\":");
    out.extend_from_slice(attempt.as_bytes());
    out.extend_from_slice(b",\"enqueuedAt\":");
    jcs::write_string(&enqueued_at, &mut out);
    out.extend_from_slice(b",\"headers\":");
    jcs::write_sorted(
        &JsonValue::Object(headers),
        &mut out,
        &integer_only("headers"),
    )?;
    out.extend_from_slice(b",\"id\":");
    jcs::write_string(id, &mut out);
    out.extend_from_slice(b",\"maxRetries\":");
    out.extend_from_slice(max_retries.as_bytes());
    out.extend_from_slice(b",\"meta\":");
    match meta {
        Some(m) => jcs::write_sorted(m, &mut out, &integer_only("meta"))?,
        None => out.extend_from_slice(b"{}"),
    }
    out.extend_from_slice(b",\"name\":");
    jcs::write_string(name, &mut out);
    out.extend_from_slice(b",\"notBefore\":");
    match &not_before {
        Some(t) => jcs::write_string(t, &mut out),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"priority\":");
    out.extend_from_slice(priority.as_bytes());
    out.extend_from_slice(b",\"queue\":");
    jcs::write_string(queue, &mut out);
    out.extend_from_slice(b",\"visibilityTimeoutMs\":");
    match &visibility {
        Some(v) => out.extend_from_slice(v.as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    Ok(out)
}

/// Signs the canonical bytes with `key`; returns the base64 signature.
fn sign_with(key: &Key, canonical: &[u8]) -> Result<String> {
    match key.material() {
        KeyMaterial::Hmac(secret) => {
            Ok(STANDARD.encode(hmac_sha256(secret.secret_bytes(), &[canonical])))
        }
        KeyMaterial::Ed25519Private(private) => {
            Ok(STANDARD.encode(private.dalek().sign(canonical).to_bytes()))
        }
        KeyMaterial::Ed25519Public(_) => Err(Error::unsupported(format!(
            "stem key {:?} is an Ed25519 public key and cannot sign; pass ed25519:{}:<base64 seed>",
            key.id().as_str(),
            key.id().as_str()
        ))),
    }
}

pub(crate) fn sign(
    keys: &[ProfileKey],
    request: &SignRequest<'_>,
) -> Result<Vec<(String, String)>> {
    let key = stem_key(super::first_key(keys)?)?;
    let canonical = canonical_bytes(request.body)?;
    let signature = sign_with(key, &canonical)?;
    Ok(vec![
        (SIGNATURE_HEADER.to_owned(), signature),
        (KEY_HEADER.to_owned(), key.id().as_str().to_owned()),
    ])
}

/// Puts a signature into the envelope's own `headers` map, where Stem keeps
/// it: `headers` is what [`Profile::sign`](super::Profile::sign) returned for
/// the `stem` profile (`stem-signature` and `stem-signature-key`). Returns
/// the envelope JSON, compact, other members unchanged and in their order.
/// A missing or null `headers` member is created.
pub fn attach_signature(envelope_json: &[u8], headers: &[(String, String)]) -> Result<Vec<u8>> {
    let mut envelope = parse_envelope(envelope_json)?;
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .ok_or_else(|| Error::missing(format!("no {name} among the headers to attach")))
    };
    let (signature, key_id) = (find(SIGNATURE_HEADER)?, find(KEY_HEADER)?);
    let JsonValue::Object(members) = &mut envelope else {
        return Err(Error::malformed("stem envelope must be a JSON object"));
    };
    let position = match members.iter().position(|(k, _)| k == "headers") {
        Some(i) => i,
        None => {
            members.push(("headers".to_owned(), JsonValue::Null));
            members.len() - 1
        }
    };
    let slot = &mut members[position].1;
    if matches!(slot, JsonValue::Null) {
        *slot = JsonValue::Object(Vec::new());
    }
    let JsonValue::Object(map) = slot else {
        return Err(Error::malformed(format!(
            "stem envelope field headers must be an object, not {}",
            slot.kind()
        )));
    };
    for (name, value) in [(SIGNATURE_HEADER, signature), (KEY_HEADER, key_id)] {
        match map.iter_mut().find(|(k, _)| k == name) {
            Some((_, v)) => *v = JsonValue::String(value),
            None => map.push((name.to_owned(), JsonValue::String(value))),
        }
    }
    let mut out = Vec::with_capacity(envelope_json.len() + 160);
    jcs::write_compact(&envelope, &mut out);
    Ok(out)
}

/// Finds the signature and key id: HTTP headers first, then the envelope's
/// `headers` map.
fn find_signature<'a>(headers: Headers<'a>, envelope: &'a JsonValue) -> Result<(&'a str, &'a str)> {
    let sig = headers.get(SIGNATURE_HEADER)?;
    let key = headers.get(KEY_HEADER)?;
    match (sig, key) {
        (Some(s), Some(k)) => return Ok((s, k)),
        (Some(_), None) => {
            return Err(Error::missing(format!(
                "{KEY_HEADER} header is missing (the {SIGNATURE_HEADER} header is there)"
            )))
        }
        (None, Some(_)) => {
            return Err(Error::missing(format!(
                "{SIGNATURE_HEADER} header is missing (the {KEY_HEADER} header is there)"
            )))
        }
        (None, None) => {}
    }
    let inner = |name: &str| match envelope.member("headers").and_then(|h| h.member(name)) {
        Some(JsonValue::String(s)) => Ok(Some(s.as_str())),
        Some(v) => Err(Error::malformed(format!(
            "envelope header {name} must be a string, not {}",
            v.kind()
        ))),
        None => Ok(None),
    };
    match (inner(SIGNATURE_HEADER)?, inner(KEY_HEADER)?) {
        (Some(s), Some(k)) => Ok((s.trim(), k.trim())),
        (None, None) => Err(Error::missing(format!(
            "no {SIGNATURE_HEADER} in the HTTP headers or in the envelope's headers; the envelope is unsigned"
        ))),
        (None, Some(_)) => Err(Error::missing(format!("envelope has {KEY_HEADER} but no {SIGNATURE_HEADER}"))),
        (Some(_), None) => Err(Error::missing(format!("envelope has {SIGNATURE_HEADER} but no {KEY_HEADER}"))),
    }
}

pub(crate) fn verify(
    keys: &[ProfileKey],
    headers: Headers<'_>,
    body: &[u8],
) -> Result<ProfileVerified> {
    let envelope = parse_envelope(body)?;
    let (signature_b64, key_id) = find_signature(headers, &envelope)?;
    let candidates: Vec<(usize, &Key)> = keys
        .iter()
        .enumerate()
        .filter_map(|(i, k)| stem_key(k).ok().map(|k| (i, k)))
        .filter(|(_, k)| k.id().as_str() == key_id)
        .collect();
    if candidates.is_empty() {
        let ids: Vec<&str> = keys.iter().filter_map(|k| k.id()).collect();
        return Err(Error::unknown_key(format!(
            "signature names key {:?}, which is not among the keys given ({}); add it as {}:<base64>",
            excerpt(key_id),
            ids.join(", "),
            excerpt(key_id)
        )));
    }
    let signature = STANDARD
        .decode(signature_b64)
        .map_err(|_| Error::malformed(format!("{SIGNATURE_HEADER} is not standard base64")))?;
    let canonical = canonical_from(&envelope)?;
    let mut length_error = None;
    for (i, key) in &candidates {
        let expected = match key.algorithm() {
            Algorithm::HmacSha256 => 32,
            Algorithm::Ed25519 => 64,
        };
        if signature.len() != expected {
            length_error = Some(Error::algorithm_mismatch(format!(
                "{SIGNATURE_HEADER} is {} bytes but key {:?} is {}, whose signatures are {expected} bytes",
                signature.len(),
                key.id().as_str(),
                key.algorithm()
            )));
            continue;
        }
        let ok = match key.material() {
            KeyMaterial::Hmac(secret) => {
                hmac_sha256_matches(secret.secret_bytes(), &[&canonical], &signature)
            }
            KeyMaterial::Ed25519Private(private) => {
                ed25519_ok(&private.public_key(), &canonical, &signature)
            }
            KeyMaterial::Ed25519Public(public) => ed25519_ok(public, &canonical, &signature),
        };
        if ok {
            return Ok(ProfileVerified {
                key_label: key.id().as_str().to_owned(),
                warnings: vec![NO_FRESHNESS_WARNING.to_owned()],
                response_key: Some(*i),
            });
        }
    }
    if let Some(e) = length_error.filter(|_| candidates.len() == 1) {
        return Err(e);
    }
    Err(Error::mismatch(format!(
        "signature does not match key {:?} (envelope {} bytes; was a signed field such as attempt changed without re-signing?)",
        excerpt(key_id),
        body.len()
    )))
}

/// Strict Ed25519 verification: canonical `S`, no small-order keys or `R`.
fn ed25519_ok(public: &Ed25519PublicKey, message: &[u8], signature: &[u8]) -> bool {
    let Ok(bytes) = <[u8; 64]>::try_from(signature) else {
        return false;
    };
    let sig = ed25519_dalek::Signature::from_bytes(&bytes);
    public.dalek().verify_strict(message, &sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_like_dart() {
        assert_eq!(
            canonical_time("2025-01-01T00:00:00Z", "t").unwrap(),
            "2025-01-01T00:00:00.000Z"
        );
        assert_eq!(
            canonical_time("2025-07-01T02:00:05.5+02:00", "t").unwrap(),
            "2025-07-01T00:00:05.500Z"
        );
        assert_eq!(
            canonical_time("2025-06-30T23:59:59.123456Z", "t").unwrap(),
            "2025-06-30T23:59:59.123456Z"
        );
        assert_eq!(
            canonical_time("2025-06-30T23:59:59.123000Z", "t").unwrap(),
            "2025-06-30T23:59:59.123Z"
        );
        assert!(canonical_time("2025-06-30T23:59:59.1234567Z", "t")
            .unwrap_err()
            .is_unsupported());
        assert!(canonical_time("2025-06-30 23:59:59", "t")
            .unwrap_err()
            .is_malformed());
    }

    #[test]
    fn doubles_are_refused_wherever_they_are() {
        let base = |args: &str| {
            format!(
                r#"{{"id":"1","name":"n","args":{args},"enqueuedAt":"2025-01-01T00:00:00.000Z"}}"#
            )
        };
        assert!(canonical_bytes(base(r#"{"a":1}"#).as_bytes()).is_ok());
        for args in [
            r#"{"a":1.5}"#,
            r#"{"a":[1e3]}"#,
            r#"{"a":1.0}"#,
            r#"{"a":9223372036854775808}"#,
        ] {
            let err = canonical_bytes(base(args).as_bytes()).unwrap_err();
            assert!(
                err.is_unsupported() && err.to_string().contains("doubles"),
                "{args}: {err}"
            );
        }
        let err = canonical_bytes(
            br#"{"id":"1","name":"n","args":{},"enqueuedAt":"2025-01-01T00:00:00.000Z","priority":2.5}"#,
        )
        .unwrap_err();
        assert!(err.is_unsupported(), "{err}");
    }

    #[test]
    fn defaults_follow_stem() {
        let c = canonical_bytes(br#"{"id":"x","name":"n","args":{},"enqueuedAt":"2025-01-01T00:00:00Z","headers":null}"#).unwrap();
        assert_eq!(
            String::from_utf8(c).unwrap(),
            r#"{"args":{},"attempt":0,"enqueuedAt":"2025-01-01T00:00:00.000Z","headers":{},"id":"x","maxRetries":0,"meta":{},"name":"n","notBefore":null,"priority":0,"queue":"default","visibilityTimeoutMs":null}"#
        );
        assert!(
            canonical_bytes(br#"{"name":"n","args":{},"enqueuedAt":"2025-01-01T00:00:00Z"}"#)
                .unwrap_err()
                .is_malformed()
        );
        assert!(canonical_bytes(b"[1]").unwrap_err().is_malformed());
    }

    #[test]
    fn attached_signatures_verify_from_inside_the_envelope() {
        use super::super::{Profile, VerifyOptions};
        let keys = [Profile::Stem
            .parse_key("primary:c2VjcmV0LXNlY3JldA==")
            .unwrap()];
        let body =
            br#"{"id":"1","name":"n","args":{"x":1.5e0},"enqueuedAt":"2025-01-01T00:00:00Z"}"#;
        // Doubles are refused for signing …
        let req = SignRequest {
            id: "",
            timestamp: 0,
            body,
        };
        assert!(Profile::Stem
            .sign(&keys, &req)
            .unwrap_err()
            .is_unsupported());
        let body = br#"{"id":"1","name":"n","args":{"x":15},"enqueuedAt":"2025-01-01T00:00:00Z","headers":null}"#;
        let req = SignRequest {
            id: "",
            timestamp: 0,
            body,
        };
        let headers = Profile::Stem.sign(&keys, &req).unwrap();
        let signed = attach_signature(body, &headers).unwrap();
        let text = String::from_utf8(signed.clone()).unwrap();
        assert!(
            text.starts_with(r#"{"id":"1","name":"n","args":{"x":15},"#),
            "{text}"
        );
        let ok = Profile::Stem
            .verify(&keys, &[], &signed, &VerifyOptions::new(0))
            .unwrap();
        assert_eq!(ok.key_label, "primary");
        // Re-signing replaces the old signature rather than adding one.
        let again = attach_signature(&signed, &headers).unwrap();
        assert_eq!(again, signed);
        assert!(attach_signature(body, &[]).unwrap_err().is_missing());
    }

    #[test]
    fn key_forms() {
        use super::super::Profile;
        let hmac = Profile::Stem.parse_key("primary:c2VjcmV0").unwrap();
        assert_eq!(
            (hmac.algorithm(), hmac.id()),
            (Algorithm::HmacSha256, Some("primary"))
        );
        let seed = STANDARD.encode([7u8; 32]);
        let private = Profile::Stem
            .parse_key(&format!("ed25519:p:{seed}"))
            .unwrap();
        assert!(private.algorithm() == Algorithm::Ed25519 && private.can_sign());
        let public = STANDARD.encode(
            Ed25519SecretKey::from_seed(&[7u8; 32])
                .unwrap()
                .public_key()
                .to_bytes(),
        );
        let public = Profile::Stem
            .parse_key(&format!("ed25519-public:p:{public}"))
            .unwrap();
        assert!(public.algorithm() == Algorithm::Ed25519 && !public.can_sign());
        for bad in [
            "p",
            "rsa:p:c2VjcmV0",
            "p:!!!",
            "ed25519:p:c2VjcmV0",
            "a:b:c:d",
            "bad id:c2VjcmV0",
        ] {
            assert!(
                Profile::Stem.parse_key(bad).unwrap_err().is_config(),
                "{bad}"
            );
        }
    }
}
