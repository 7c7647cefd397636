//! Krafter: `x-krafter-signature: sha256=<lowercase hex HMAC-SHA256(secret,
//! body)>` with `x-krafter-job-id` and `x-krafter-timestamp` sent beside it.
//!
//! Only the body is signed: the job id and timestamp are **not** covered, so
//! a captured request can be replayed at any time and its job id or
//! timestamp changed without detection. Verification therefore succeeds with
//! a warning saying so; do not rely on those headers for freshness or
//! deduplication.

use super::{
    decode_hex_tag, first_key, hmac_sha256, match_text_keys, no_match, Headers, ProfileKey,
    ProfileVerified, SignRequest,
};
use crate::error::{Error, Result};

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-krafter-signature";
/// The job id header (not signed).
pub const JOB_ID_HEADER: &str = "x-krafter-job-id";
/// The timestamp header (not signed).
pub const TIMESTAMP_HEADER: &str = "x-krafter-timestamp";

/// The warning every successful Krafter verification carries.
pub const UNCOVERED_WARNING: &str = "krafter signs the body only: x-krafter-timestamp and x-krafter-job-id are not covered by the signature, so there is no replay protection; do not trust them";

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
    // Informational only: neither is covered by the signature.
    if !request.id.is_empty() {
        out.push((JOB_ID_HEADER.to_owned(), request.id.to_owned()));
    }
    out.push((TIMESTAMP_HEADER.to_owned(), request.timestamp.to_string()));
    Ok(out)
}

pub(crate) fn verify(
    keys: &[ProfileKey],
    headers: Headers<'_>,
    body: &[u8],
) -> Result<ProfileVerified> {
    let signature = headers.require(SIGNATURE_HEADER)?;
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
