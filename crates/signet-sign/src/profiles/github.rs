//! GitHub webhooks: `X-Hub-Signature-256: sha256=<lowercase hex
//! HMAC-SHA256(secret, body)>`.
//!
//! The secret string is used as-is. GitHub signs no timestamp, so a captured
//! delivery can be replayed; verification succeeds with a warning saying so.
//! Signing also sends `X-GitHub-Delivery` with the request id, which
//! receivers can deduplicate on (it is not signed either).

use super::{
    decode_hex_tag, first_key, hmac_sha256, match_text_keys, no_match, Headers, ProfileKey,
    ProfileVerified, SignRequest,
};
use crate::error::{Error, Result};

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";
/// The delivery id header (not signed).
pub const DELIVERY_HEADER: &str = "X-GitHub-Delivery";

/// The warning every successful GitHub verification carries.
pub const UNCOVERED_WARNING: &str = "github signs the body only: no timestamp is covered, so there is no replay protection; deduplicate on X-GitHub-Delivery";

pub(crate) fn sign(
    keys: &[ProfileKey],
    request: &SignRequest<'_>,
) -> Result<Vec<(String, String)>> {
    let key = first_key(keys)?.text_secret()?;
    let tag = hmac_sha256(key.secret_bytes(), &[request.body]);
    let mut out = vec![(
        SIGNATURE_HEADER.to_owned(),
        format!("sha256={}", hex::encode(tag)),
    )];
    if !request.id.is_empty() {
        out.push((DELIVERY_HEADER.to_owned(), request.id.to_owned()));
    }
    Ok(out)
}

pub(crate) fn verify(
    keys: &[ProfileKey],
    headers: Headers<'_>,
    body: &[u8],
) -> Result<ProfileVerified> {
    let signature = match headers.get(SIGNATURE_HEADER)? {
        Some(s) => s,
        None if headers.get("X-Hub-Signature")?.is_some() => {
            return Err(Error::missing(format!(
                "{SIGNATURE_HEADER} header is missing; only the SHA-1 X-Hub-Signature was sent, which Signet does not accept"
            )))
        }
        None => return Err(Error::missing(format!("{SIGNATURE_HEADER} header is missing"))),
    };
    let hex_part = signature.strip_prefix("sha256=").ok_or_else(|| {
        Error::malformed(format!(
            "{SIGNATURE_HEADER} must be sha256=<hex>, got {:?}",
            super::excerpt(signature)
        ))
    })?;
    let tag = decode_hex_tag(hex_part, &format!("{SIGNATURE_HEADER} header"))?;
    match match_text_keys(keys, &[body], &tag)? {
        Some(i) => {
            let mut verified = ProfileVerified::at(i);
            verified.warnings.push(UNCOVERED_WARNING.to_owned());
            Ok(verified)
        }
        None => Err(no_match(keys.len(), body.len())),
    }
}
