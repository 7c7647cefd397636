//! Stripe: `Stripe-Signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, t + "." +
//! body)>[,v1=…]`.
//!
//! The secret string (`whsec_…` as Stripe issues it) is used as-is, prefix
//! included. Signing with several keys puts one `v1` entry per key, as Stripe
//! does while a secret is being rolled. Verifying accepts any `v1` entry that
//! matches any key and ignores other schemes (`v0`, future ones). The
//! timestamp must appear exactly once and within the tolerance window.

use super::{
    decode_hex_tag, hmac_sha256, hmac_sha256_matches, no_match, parse_unix_seconds,
    unix_seconds_text, Headers, ProfileKey, ProfileVerified, SignRequest, VerifyOptions,
};
use crate::error::{Error, Result};

/// The signature header.
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";

/// The parts of a `Stripe-Signature` header that Signet uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeHeader<'a> {
    /// The `t` value as sent (it is signed as text).
    pub timestamp_text: &'a str,
    /// `t` as unix seconds.
    pub timestamp: i64,
    /// Every `v1` entry, in order (hex text, not yet decoded).
    pub v1: Vec<&'a str>,
}

/// Parses a `Stripe-Signature` header value. Unknown schemes are skipped.
pub fn parse_header(value: &str) -> Result<StripeHeader<'_>> {
    let mut timestamp_text = None;
    let mut v1 = Vec::new();
    let mut repeated_t = false;
    for item in value.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (k, v) = item.split_once('=').ok_or_else(|| {
            Error::malformed(format!(
                "{SIGNATURE_HEADER} item {:?} is not key=value; expected t=<unix>,v1=<hex>",
                super::excerpt(item)
            ))
        })?;
        match k.trim() {
            "t" => repeated_t |= timestamp_text.replace(v.trim()).is_some(),
            "v1" => v1.push(v.trim()),
            _ => {}
        }
    }
    if repeated_t {
        return Err(Error::malformed(format!(
            "{SIGNATURE_HEADER} has more than one t= timestamp"
        )));
    }
    let timestamp_text = timestamp_text.ok_or_else(|| {
        Error::missing(format!(
            "{SIGNATURE_HEADER} has no t=<unix seconds> timestamp"
        ))
    })?;
    let timestamp = parse_unix_seconds(timestamp_text, &format!("{SIGNATURE_HEADER} t="))?;
    if v1.is_empty() {
        return Err(Error::missing(format!(
            "{SIGNATURE_HEADER} has no v1= signature (other schemes such as v0 are not accepted)"
        )));
    }
    Ok(StripeHeader {
        timestamp_text,
        timestamp,
        v1,
    })
}

pub(crate) fn sign(
    keys: &[ProfileKey],
    request: &SignRequest<'_>,
) -> Result<Vec<(String, String)>> {
    let ts = unix_seconds_text("stripe", request.timestamp)?;
    let mut value = format!("t={ts}");
    for key in keys {
        let tag = hmac_sha256(
            key.text_secret()?.secret_bytes(),
            &[ts.as_bytes(), b".", request.body],
        );
        value.push_str(",v1=");
        value.push_str(&hex::encode(tag));
    }
    Ok(vec![(SIGNATURE_HEADER.to_owned(), value)])
}

pub(crate) fn verify(
    keys: &[ProfileKey],
    headers: Headers<'_>,
    body: &[u8],
    options: &VerifyOptions,
) -> Result<ProfileVerified> {
    let header = parse_header(headers.require(SIGNATURE_HEADER)?)?;
    let mut tags = Vec::with_capacity(header.v1.len());
    for v in &header.v1 {
        tags.push(decode_hex_tag(v, &format!("{SIGNATURE_HEADER} v1"))?);
    }
    options.check_fresh(header.timestamp)?;
    let parts: [&[u8]; 3] = [header.timestamp_text.as_bytes(), b".", body];
    for (i, key) in keys.iter().enumerate() {
        let secret = key.text_secret()?;
        for tag in &tags {
            if hmac_sha256_matches(secret.secret_bytes(), &parts, tag) {
                return Ok(ProfileVerified::at(i));
            }
        }
    }
    Err(no_match(keys.len(), body.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parsing_skips_unknown_schemes_and_needs_t_and_v1() {
        let h = parse_header("t=12,v0=zz,v1=aa, v1=bb ,x=1").unwrap();
        assert_eq!(h.timestamp, 12);
        assert_eq!(h.v1, ["aa", "bb"]);
        assert!(parse_header("v1=aa").unwrap_err().is_missing());
        assert!(parse_header("t=1,v0=aa").unwrap_err().is_missing());
        assert!(parse_header("t=1,t=2,v1=aa").unwrap_err().is_malformed());
        assert!(parse_header("t=1,v1").unwrap_err().is_malformed());
        assert!(parse_header("t=abc,v1=aa").unwrap_err().is_malformed());
    }
}
