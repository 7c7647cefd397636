//! Stromboli: `X-Stromboli-Timestamp: <unix s>` and
//! `X-Stromboli-Signature: sha256=<hex HMAC-SHA256(secret, ts + "." + body)>`.
//!
//! The secret string is used as-is (a base64-looking secret is *not*
//! decoded). Verification accepts the signature with or without the
//! `sha256=` prefix and applies a symmetric freshness window. The timestamp is
//! signed exactly as the header carries it.

use super::{
    decode_hex_tag, first_key, hmac_sha256, match_text_keys, no_match, parse_unix_seconds,
    unix_seconds_text, Headers, ProfileKey, ProfileVerified, SignRequest, VerifyOptions,
};
use crate::error::{Error, Result};

/// The timestamp header.
pub const TIMESTAMP_HEADER: &str = "X-Stromboli-Timestamp";
/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Stromboli-Signature";

pub(crate) fn sign(
    keys: &[ProfileKey],
    request: &SignRequest<'_>,
) -> Result<Vec<(String, String)>> {
    let ts = unix_seconds_text("stromboli", request.timestamp)?;
    let key = first_key(keys)?.text_secret()?;
    let tag = hmac_sha256(key.secret_bytes(), &[ts.as_bytes(), b".", request.body]);
    Ok(vec![
        (TIMESTAMP_HEADER.to_owned(), ts),
        (
            SIGNATURE_HEADER.to_owned(),
            format!("sha256={}", hex::encode(tag)),
        ),
    ])
}

pub(crate) fn verify(
    keys: &[ProfileKey],
    headers: Headers<'_>,
    body: &[u8],
    options: &VerifyOptions,
) -> Result<ProfileVerified> {
    let signature = headers.require(SIGNATURE_HEADER)?;
    let ts_text = headers.require(TIMESTAMP_HEADER)?;
    let ts = parse_unix_seconds(ts_text, &format!("{TIMESTAMP_HEADER} header"))?;
    let hex_part = match signature.split_once('=') {
        Some(("sha256", rest)) => rest,
        Some((scheme, _)) => {
            return Err(Error::malformed(format!(
                "{SIGNATURE_HEADER} uses {:?}; only sha256=<hex> is supported",
                super::excerpt(scheme)
            )))
        }
        None => signature,
    };
    let tag = decode_hex_tag(hex_part, &format!("{SIGNATURE_HEADER} header"))?;
    options.check_fresh(ts)?;
    match match_text_keys(keys, &[ts_text.as_bytes(), b".", body], &tag)? {
        Some(i) => Ok(ProfileVerified::at(i)),
        None => Err(no_match(keys.len(), body.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Profile;
    use super::*;

    fn headers(ts: &str, sig: &str) -> Vec<(String, String)> {
        vec![
            (TIMESTAMP_HEADER.to_owned(), ts.to_owned()),
            (SIGNATURE_HEADER.to_owned(), sig.to_owned()),
        ]
    }

    #[test]
    fn bare_hex_is_accepted_and_other_schemes_are_not() {
        let keys = [Profile::Stromboli.parse_key("s3cret").unwrap()];
        let req = SignRequest {
            id: "",
            timestamp: 100,
            body: b"{}",
        };
        let signed = Profile::Stromboli.sign(&keys, &req).unwrap();
        let sig = signed[1].1.clone();
        let bare = sig.trim_start_matches("sha256=");
        let opts = VerifyOptions::new(100);
        assert!(Profile::Stromboli
            .verify(&keys, &headers("100", bare), b"{}", &opts)
            .is_ok());
        let sha1 = format!("sha1={bare}");
        let err = Profile::Stromboli
            .verify(&keys, &headers("100", &sha1), b"{}", &opts)
            .unwrap_err();
        assert!(
            err.is_malformed() && err.to_string().contains("sha1"),
            "{err}"
        );
    }

    #[test]
    fn missing_headers_are_named() {
        let keys = [Profile::Stromboli.parse_key("s3cret").unwrap()];
        let opts = VerifyOptions::new(100);
        let err = Profile::Stromboli
            .verify(&keys, &[], b"", &opts)
            .unwrap_err();
        assert!(err.is_missing());
        assert_eq!(err.to_string(), "X-Stromboli-Signature header is missing");
    }
}
