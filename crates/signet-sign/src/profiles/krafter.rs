//! Krafter: `x-krafter-signature: sha256=<lowercase hex HMAC-SHA256(secret,
//! body)>` with `x-krafter-job-id` and `x-krafter-timestamp` sent beside it.
//!
//! Only the body is signed: the job id and timestamp are **not** covered, so
//! a captured request can be replayed at any time and its job id or
//! timestamp changed without detection. Verification therefore succeeds with
//! a warning saying so; do not rely on those headers for freshness or
//! deduplication.

use super::{
    sign_body_only, verify_body_signature, Headers, ProfileKey, ProfileVerified, SignRequest,
};
use crate::error::Result;

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
    let mut out = sign_body_only(keys, request, SIGNATURE_HEADER, JOB_ID_HEADER)?;
    // Informational only, like the job id: not covered by the signature.
    out.push((TIMESTAMP_HEADER.to_owned(), request.timestamp.to_string()));
    Ok(out)
}

pub(crate) fn verify(
    keys: &[ProfileKey],
    headers: Headers<'_>,
    body: &[u8],
) -> Result<ProfileVerified> {
    let signature = headers.require(SIGNATURE_HEADER)?;
    verify_body_signature(keys, SIGNATURE_HEADER, signature, body, UNCOVERED_WARNING)
}
