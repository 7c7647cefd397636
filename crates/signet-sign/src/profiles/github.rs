//! GitHub webhooks: `X-Hub-Signature-256: sha256=<lowercase hex
//! HMAC-SHA256(secret, body)>`.
//!
//! The secret string is used as-is. GitHub signs no timestamp, so a captured
//! delivery can be replayed; verification succeeds with a warning saying so.
//! Signing also sends `X-GitHub-Delivery` with the request id, which
//! receivers can deduplicate on (it is not signed either).

use super::{
    sign_body_only, verify_body_signature, Headers, ProfileKey, ProfileVerified, SignRequest,
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
    sign_body_only(keys, request, SIGNATURE_HEADER, DELIVERY_HEADER)
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
    verify_body_signature(keys, SIGNATURE_HEADER, signature, body, UNCOVERED_WARNING)
}
