//! Inngest: request and response signatures, and the hashed bearer token.
//!
//! - Header `X-Inngest-Signature: t=<unix s>&s=<hex>`.
//! - Request signature: HMAC-SHA256 over the RFC 8785 canonical form of the
//!   JSON body ([`super::jcs`]) immediately followed by the decimal
//!   timestamp. An empty body signs the empty string. A body that is not JSON
//!   cannot be canonicalised and is refused with an error (Inngest only ever
//!   sends JSON requests; signing raw bytes instead would produce signatures
//!   the SDKs reject).
//! - The HMAC key is the ASCII text of the hex after `signkey-<env>-` — the
//!   text itself, not hex-decoded.
//! - Verification: |now − t| ≤ tolerance, then the primary key, then the
//!   fallback key(s), each compared in constant time. [`ProfileVerified::response_key`]
//!   names the key that matched: sign the response with it
//!   ([`sign_response`]).
//! - Response signature: HMAC over the raw response body + timestamp (no
//!   canonicalisation).
//! - Bearer token for the Inngest API: `signkey-<env>-` +
//!   hex(SHA-256(hex-decoded key)); [`verify_bearer`] accepts it with or
//!   without the prefix.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{
    decode_hex_tag, excerpt, first_key, hmac_sha256, hmac_sha256_matches, jcs, no_match,
    parse_unix_seconds, position_label, unix_seconds_text, Headers, KeySecret, ProfileKey,
    ProfileVerified, SignRequest, VerifyOptions,
};
use crate::error::{Error, Result};
use crate::key::HmacSecret;

/// The signature header, for requests and responses.
pub const SIGNATURE_HEADER: &str = "X-Inngest-Signature";

/// An Inngest signing key: `signkey-<env>-` prefix (if given) and the hex text.
pub(crate) struct SigningKey {
    /// `signkey-<env>-`, or empty when the key was given as bare hex.
    prefix: String,
    /// The hex text, used as the HMAC key as-is.
    hmac: HmacSecret,
    /// hex(SHA-256(hex-decoded key)): the bearer token without prefix.
    hashed: String,
}

impl SigningKey {
    pub(crate) fn hmac_key(&self) -> &HmacSecret {
        &self.hmac
    }

    pub(crate) fn duplicate(&self) -> Self {
        Self {
            prefix: self.prefix.clone(),
            hmac: self.hmac.duplicate(),
            hashed: self.hashed.clone(),
        }
    }
}

/// Splits `signkey-<env>-rest` into (`signkey-<env>-`, rest). `env` is one or
/// more of `A-Z a-z 0-9 _`, as the SDKs' `^signkey-\w+-` pattern.
fn split_prefix(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix("signkey-")?;
    let dash = rest.find('-')?;
    let env = &rest[..dash];
    if env.is_empty() || !env.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    let cut = "signkey-".len() + dash + 1;
    Some((&text[..cut], &text[cut..]))
}

pub(crate) fn parse_key(text: &str) -> Result<KeySecret> {
    let text = text.trim();
    let (prefix, hex_text) = if text.starts_with("signkey-") {
        split_prefix(text).ok_or_else(|| {
            Error::config(
                "inngest signing key must look like signkey-<env>-<hex>, e.g. signkey-prod-…",
            )
        })?
    } else {
        ("", text)
    };
    if hex_text.is_empty() {
        return Err(Error::config(
            "inngest signing key has no hex after signkey-<env>-; copy the whole key from the Inngest dashboard",
        ));
    }
    let decoded = hex::decode(hex_text).map_err(|_| {
        Error::config(format!(
            "inngest signing key is not signkey-<env>- followed by hex ({} characters after the prefix; need an even number of 0-9 a-f)",
            hex_text.len()
        ))
    })?;
    let hashed = hex::encode(Sha256::digest(zeroize::Zeroizing::new(decoded).as_slice()));
    Ok(KeySecret::Inngest(SigningKey {
        prefix: prefix.to_owned(),
        hmac: HmacSecret::new(hex_text.as_bytes().to_vec())?,
        hashed,
    }))
}

fn signing_key(key: &ProfileKey) -> Result<&SigningKey> {
    match key.secret() {
        KeySecret::Inngest(k) => Ok(k),
        _ => Err(Error::config(format!(
            "key was parsed for the {} profile, not inngest",
            key.profile().as_str()
        ))),
    }
}

/// The parts of an `X-Inngest-Signature` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InngestHeader<'a> {
    /// `t` as sent (signed as text).
    pub timestamp_text: &'a str,
    /// `t` as unix seconds.
    pub timestamp: i64,
    /// `s`: the hex signature.
    pub signature: &'a str,
}

/// Parses `t=<unix s>&s=<hex>` (in either order; other parameters ignored).
pub fn parse_header(value: &str) -> Result<InngestHeader<'_>> {
    let mut t = None;
    let mut s = None;
    for pair in value.trim().split('&') {
        if pair.is_empty() {
            continue;
        }
        let (k, v) = pair.split_once('=').ok_or_else(|| {
            Error::malformed(format!(
                "{SIGNATURE_HEADER} part {:?} is not key=value; expected t=<unix>&s=<hex>",
                excerpt(pair)
            ))
        })?;
        let slot = match k {
            "t" => &mut t,
            "s" => &mut s,
            _ => continue,
        };
        if slot.replace(v).is_some() {
            return Err(Error::malformed(format!(
                "{SIGNATURE_HEADER} has {k}= more than once"
            )));
        }
    }
    let timestamp_text =
        t.ok_or_else(|| Error::missing(format!("{SIGNATURE_HEADER} has no t=<unix seconds>")))?;
    let signature =
        s.ok_or_else(|| Error::missing(format!("{SIGNATURE_HEADER} has no s=<hex signature>")))?;
    let timestamp = parse_unix_seconds(timestamp_text, &format!("{SIGNATURE_HEADER} t="))?;
    Ok(InngestHeader {
        timestamp_text,
        timestamp,
        signature,
    })
}

/// The bytes a request signature covers before the timestamp: the RFC 8785
/// form of the body, or nothing for an empty body.
pub fn canonical_request_body(body: &[u8]) -> Result<Vec<u8>> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    jcs::canonicalize(body).map_err(|e| {
        Error::malformed(format!(
            "inngest signs the RFC 8785 canonical form of a JSON body, and this body ({} bytes) is not JSON it can canonicalise: {}",
            body.len(),
            e.message()
        ))
    })
}

fn header_value(key: &SigningKey, signed: &[u8], timestamp: i64) -> Result<String> {
    let ts = unix_seconds_text("inngest", timestamp)?;
    let tag = hmac_sha256(key.hmac.secret_bytes(), &[signed, ts.as_bytes()]);
    Ok(format!("t={ts}&s={}", hex::encode(tag)))
}

pub(crate) fn sign(
    keys: &[ProfileKey],
    request: &SignRequest<'_>,
) -> Result<Vec<(String, String)>> {
    let key = signing_key(first_key(keys)?)?;
    let canonical =
        canonical_request_body(request.body).map_err(|e| Error::unsupported(e.message()))?;
    Ok(vec![(
        SIGNATURE_HEADER.to_owned(),
        header_value(key, &canonical, request.timestamp)?,
    )])
}

/// Checks a parsed header over `signed` against each key in order.
fn check(
    keys: &[ProfileKey],
    header: &InngestHeader<'_>,
    signed: &[u8],
    body_len: usize,
    options: &VerifyOptions,
) -> Result<ProfileVerified> {
    let tag = decode_hex_tag(header.signature, &format!("{SIGNATURE_HEADER} s="))?;
    options.check_fresh(header.timestamp)?;
    for (i, key) in keys.iter().enumerate() {
        let k = signing_key(key)?;
        if hmac_sha256_matches(
            k.hmac.secret_bytes(),
            &[signed, header.timestamp_text.as_bytes()],
            &tag,
        ) {
            return Ok(ProfileVerified::at(i));
        }
    }
    Err(no_match(keys.len(), body_len))
}

pub(crate) fn verify(
    keys: &[ProfileKey],
    headers: Headers<'_>,
    body: &[u8],
    options: &VerifyOptions,
) -> Result<ProfileVerified> {
    let header = parse_header(headers.require(SIGNATURE_HEADER)?)?;
    let canonical = canonical_request_body(body)?;
    check(keys, &header, &canonical, body.len(), options)
}

/// Signs a response body (raw bytes, not canonicalised) with `key` — the key
/// that verified the request ([`ProfileVerified::response_key`]). Returns the
/// `X-Inngest-Signature` value.
pub fn sign_response(key: &ProfileKey, body: &[u8], timestamp: i64) -> Result<String> {
    header_value(signing_key(key)?, body, timestamp)
}

/// Verifies a response's `X-Inngest-Signature` value over its raw body.
pub fn verify_response(
    keys: &[ProfileKey],
    header: &str,
    body: &[u8],
    options: &VerifyOptions,
) -> Result<ProfileVerified> {
    if keys.is_empty() {
        return Err(Error::config("no inngest signing key given"));
    }
    let header = parse_header(header)?;
    check(keys, &header, body, body.len(), options)
}

/// The bearer token for the Inngest API: `signkey-<env>-` +
/// hex(SHA-256(hex-decoded key)). A key given as bare hex gives a token
/// without prefix.
pub fn bearer_token(key: &ProfileKey) -> Result<String> {
    let k = signing_key(key)?;
    Ok(format!("{}{}", k.prefix, k.hashed))
}

/// Checks a bearer token (with or without `Bearer ` and with or without the
/// `signkey-<env>-` prefix) against the hashed keys, in constant time.
pub fn verify_bearer(keys: &[ProfileKey], token: &str) -> Result<ProfileVerified> {
    let mut token = token.trim();
    if let Some(rest) = token
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case("bearer "))
        .and_then(|_| token.get(7..))
    {
        token = rest.trim_start();
    }
    if token.is_empty() {
        return Err(Error::missing("bearer token is empty"));
    }
    let hashed = match split_prefix(token) {
        Some((_, rest)) => rest,
        None if token.starts_with("signkey-") => {
            return Err(Error::malformed(
                "bearer token must be signkey-<env>-<hex> or the bare hex",
            ))
        }
        None => token,
    };
    if hashed.len() != 64
        || !hashed
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(Error::malformed(format!(
            "bearer token hash is {} characters; it must be 64 lowercase hex digits (SHA-256 of the signing key)",
            hashed.len()
        )));
    }
    for (i, key) in keys.iter().enumerate() {
        let k = signing_key(key)?;
        if bool::from(k.hashed.as_bytes().ct_eq(hashed.as_bytes())) {
            return Ok(ProfileVerified {
                key_label: position_label(i),
                warnings: Vec::new(),
                response_key: Some(i),
            });
        }
    }
    Err(Error::mismatch(format!(
        "bearer token matched none of {} signing key(s)",
        keys.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::super::Profile;
    use super::*;

    #[test]
    fn keys_need_hex_after_the_prefix() {
        assert!(Profile::Inngest
            .parse_key("signkey-test-zz")
            .unwrap_err()
            .is_config());
        assert!(Profile::Inngest
            .parse_key("signkey-test-")
            .unwrap_err()
            .is_config());
        assert!(Profile::Inngest
            .parse_key("signkey-te st-ab")
            .unwrap_err()
            .is_config());
        assert!(Profile::Inngest.parse_key("abc").unwrap_err().is_config());
        let bare = Profile::Inngest.parse_key("12345678").unwrap();
        let prefixed = Profile::Inngest.parse_key("signkey-test-12345678").unwrap();
        assert_eq!(
            format!("signkey-test-{}", bearer_token(&bare).unwrap()),
            bearer_token(&prefixed).unwrap()
        );
    }

    #[test]
    fn header_parsing() {
        let h = parse_header("s=ab&t=12&x=1").unwrap();
        assert_eq!((h.timestamp, h.signature), (12, "ab"));
        assert!(parse_header("t=12").unwrap_err().is_missing());
        assert!(parse_header("s=ab").unwrap_err().is_missing());
        assert!(parse_header("t=1&t=2&s=ab").unwrap_err().is_malformed());
        assert!(parse_header("t=1&s").unwrap_err().is_malformed());
    }

    #[test]
    fn bearer_accepts_both_forms_and_refuses_junk() {
        let keys = [Profile::Inngest.parse_key("signkey-test-12345678").unwrap()];
        let token = bearer_token(&keys[0]).unwrap();
        assert!(verify_bearer(&keys, &token).is_ok());
        assert!(verify_bearer(&keys, &format!("Bearer {token}")).is_ok());
        assert!(verify_bearer(&keys, token.trim_start_matches("signkey-test-")).is_ok());
        assert!(verify_bearer(&keys, &"0".repeat(64))
            .unwrap_err()
            .is_mismatch());
        assert!(verify_bearer(&keys, "signkey-test-xyz")
            .unwrap_err()
            .is_malformed());
        assert!(verify_bearer(&keys, "").unwrap_err().is_missing());
        // Found by the `inngest` fuzz target: a multi-byte character across
        // the `Bearer ` cut must not panic.
        assert!(verify_bearer(&keys, "si\u{fffd}\u{fffd}\u{fffd}x")
            .unwrap_err()
            .is_malformed());
    }

    #[test]
    fn non_json_bodies_are_refused_with_the_reason() {
        let keys = [Profile::Inngest.parse_key("signkey-test-abab").unwrap()];
        let req = SignRequest {
            id: "",
            timestamp: 5,
            body: b"not json",
        };
        let err = Profile::Inngest.sign(&keys, &req).unwrap_err();
        assert!(
            err.is_unsupported() && err.to_string().contains("RFC 8785"),
            "{err}"
        );
    }
}
