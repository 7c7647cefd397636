//! Compatibility profiles: the wire formats of docs/architecture.md §3.3, each with sign and
//! verify, behind one dispatcher ([`Profile`]).
//!
//! | profile | signs | headers |
//! |---|---|---|
//! | `standard` | `id.ts.body` | `webhook-*` |
//! | `svix` | same | `svix-*` |
//! | `stromboli` | `ts + "." + body`, HMAC hex | `X-Stromboli-Timestamp`, `X-Stromboli-Signature` |
//! | `krafter` | body only (timestamp not covered) | `x-krafter-signature`, `x-krafter-job-id`, `x-krafter-timestamp` |
//! | `inngest` | RFC 8785 canonical body + ts | `X-Inngest-Signature: t=..&s=..` |
//! | `stem` | Stem's canonical envelope JSON | `stem-signature`, `stem-signature-key` |
//! | `github` | body | `X-Hub-Signature-256` |
//! | `stripe` | `ts.body` | `Stripe-Signature: t=..,v1=..` |
//!
//! Keys are given as text in the form the other system uses
//! ([`Profile::parse_key`]); several keys mean a rotation: every key is tried
//! when verifying. When signing, `standard`, `svix` and `stripe` sign with
//! every key (one entry per key in the signature header, as those formats
//! allow); the other profiles carry one signature and sign with the first key.
//!
//! Keys given without an id of their own are called `secret 1`, `secret 2`,
//! … by their position in the slice (as `--secret` gives them on the command
//! line), in messages and in [`ProfileVerified`]; keys with an id (Stem) by
//! that id.
//!
//! Every comparison of a signature is constant-time. No message ever
//! contains key material.

use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{Error, Result};
use crate::key::{fingerprint, Algorithm, HmacSecret, Key, KeyMaterial};

pub mod github;
pub mod inngest;
pub mod jcs;
pub mod krafter;
pub mod stem;
pub mod stripe;
pub mod stromboli;
mod webhooks;

/// The default freshness tolerance, in seconds, both directions (the same as
/// Standard Webhooks').
pub const DEFAULT_TOLERANCE_SECS: i64 = crate::standard::DEFAULT_TOLERANCE_SECS;

pub use crate::standard::VerifyOptions;

/// A wire format Signet can sign and verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Profile {
    /// Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
    Standard,
    /// Svix: Standard Webhooks with `svix-*` header names.
    Svix,
    /// Stromboli: `X-Stromboli-Signature: sha256=<hex HMAC(ts.body)>`.
    Stromboli,
    /// Krafter: `x-krafter-signature: sha256=<hex HMAC(body)>`; the timestamp
    /// and job id are not covered.
    Krafter,
    /// Inngest: `X-Inngest-Signature: t=<ts>&s=<hex>` over RFC 8785 JSON + ts.
    Inngest,
    /// Stem task envelopes: `stem-signature` over Stem's canonical JSON.
    Stem,
    /// GitHub: `X-Hub-Signature-256: sha256=<hex HMAC(body)>`.
    Github,
    /// Stripe: `Stripe-Signature: t=<ts>,v1=<hex HMAC(ts.body)>`.
    Stripe,
}

impl Profile {
    /// Every profile, in documentation order.
    pub const ALL: [Profile; 8] = [
        Profile::Standard,
        Profile::Svix,
        Profile::Stromboli,
        Profile::Krafter,
        Profile::Inngest,
        Profile::Stem,
        Profile::Github,
        Profile::Stripe,
    ];

    /// The name used on the command line: `standard`, `svix`, `stromboli`, …
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Standard => "standard",
            Profile::Svix => "svix",
            Profile::Stromboli => "stromboli",
            Profile::Krafter => "krafter",
            Profile::Inngest => "inngest",
            Profile::Stem => "stem",
            Profile::Github => "github",
            Profile::Stripe => "stripe",
        }
    }

    /// Parses one key in the form this profile uses:
    ///
    /// - `standard`, `svix`: `whsec_…` (HMAC), `whsk_…` (Ed25519 private),
    ///   `whpk_…` (Ed25519 public, verify only), prefix optional.
    /// - `stromboli`, `krafter`, `github`, `stripe`: the secret string, used
    ///   as-is (its UTF-8 bytes are the HMAC key; nothing is decoded).
    /// - `inngest`: `signkey-<env>-<hex>` (or the bare hex); the HMAC key is
    ///   the hex *text*, as the Inngest SDKs use it.
    /// - `stem`: `id:base64` (HMAC secret), `ed25519:id:base64` (Ed25519
    ///   private key: the 32-byte seed, as `STEM_SIGNING_PRIVATE_KEYS` holds
    ///   it, or 64 bytes seed ‖ public) or `ed25519-public:id:base64`
    ///   (Ed25519 public key, verify only, as `STEM_SIGNING_PUBLIC_KEYS`).
    pub fn parse_key(self, text: &str) -> Result<ProfileKey> {
        let secret = match self {
            Profile::Standard | Profile::Svix => webhooks::parse_key(text)?,
            Profile::Stromboli | Profile::Krafter | Profile::Github | Profile::Stripe => {
                if text.is_empty() {
                    return Err(Error::config(format!(
                        "{} secret is empty; pass the shared secret string",
                        self.as_str()
                    )));
                }
                KeySecret::Text(HmacSecret::new(text.as_bytes().to_vec())?)
            }
            Profile::Inngest => inngest::parse_key(text)?,
            Profile::Stem => stem::parse_key(text)?,
        };
        Ok(ProfileKey {
            profile: self,
            secret,
        })
    }

    /// Parses several keys (`--secret` given several times), naming the
    /// position of a bad one in the error (`secret 2: …`).
    pub fn parse_keys<S: AsRef<str>>(self, texts: &[S]) -> Result<Vec<ProfileKey>> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                self.parse_key(t.as_ref())
                    .map_err(|e| Error::config(format!("{}: {}", position_label(i), e.message())))
            })
            .collect()
    }

    /// Signs `request` and returns the headers to send, in order, as
    /// `(name, value)`.
    pub fn sign(
        self,
        keys: &[ProfileKey],
        request: &SignRequest<'_>,
    ) -> Result<Vec<(String, String)>> {
        self.check_keys(keys)?;
        match self {
            Profile::Standard | Profile::Svix => webhooks::sign(self, keys, request),
            Profile::Stromboli => stromboli::sign(keys, request),
            Profile::Krafter => krafter::sign(keys, request),
            Profile::Inngest => inngest::sign(keys, request),
            Profile::Stem => stem::sign(keys, request),
            Profile::Github => github::sign(keys, request),
            Profile::Stripe => stripe::sign(keys, request),
        }
    }

    /// Verifies a received request: its headers (names matched
    /// case-insensitively) and raw body, against every key.
    pub fn verify(
        self,
        keys: &[ProfileKey],
        headers: &[(String, String)],
        body: &[u8],
        options: &VerifyOptions,
    ) -> Result<ProfileVerified> {
        self.check_keys(keys)?;
        let headers = Headers(headers);
        match self {
            Profile::Standard | Profile::Svix => {
                webhooks::verify(self, keys, headers, body, options)
            }
            Profile::Stromboli => stromboli::verify(keys, headers, body, options),
            Profile::Krafter => krafter::verify(keys, headers, body),
            Profile::Inngest => inngest::verify(keys, headers, body, options),
            Profile::Stem => stem::verify(keys, headers, body),
            Profile::Github => github::verify(keys, headers, body),
            Profile::Stripe => stripe::verify(keys, headers, body, options),
        }
    }

    /// Every key must have been parsed for this profile, and there must be one.
    fn check_keys(self, keys: &[ProfileKey]) -> Result<()> {
        if keys.is_empty() {
            return Err(Error::config(format!(
                "no key given for the {} profile; pass at least one secret",
                self.as_str()
            )));
        }
        let same_family = |p: Profile| match self {
            Profile::Standard | Profile::Svix => matches!(p, Profile::Standard | Profile::Svix),
            Profile::Stromboli | Profile::Krafter | Profile::Github | Profile::Stripe => matches!(
                p,
                Profile::Stromboli | Profile::Krafter | Profile::Github | Profile::Stripe
            ),
            other => p == other,
        };
        if let Some((i, k)) = keys
            .iter()
            .enumerate()
            .find(|(_, k)| !same_family(k.profile))
        {
            return Err(Error::config(format!(
                "{} was parsed for the {} profile, not {}; parse it with Profile::{}.parse_key",
                position_label(i),
                k.profile.as_str(),
                self.as_str(),
                self.as_str()
            )));
        }
        Ok(())
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Profile {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let wanted = s.trim().to_ascii_lowercase();
        Profile::ALL
            .into_iter()
            .find(|p| p.as_str() == wanted)
            .ok_or_else(|| {
                let names: Vec<&str> = Profile::ALL.iter().map(|p| p.as_str()).collect();
                Error::config(format!(
                    "unknown profile {:?}; use one of: {}",
                    excerpt(s),
                    names.join(", ")
                ))
            })
    }
}

/// What a signature is computed over, besides the key.
#[derive(Clone, Copy, Debug)]
pub struct SignRequest<'a> {
    /// The message id (Standard Webhooks `webhook-id`, Krafter job id, GitHub
    /// delivery id). Profiles without an id ignore it; Stem takes the id from
    /// the envelope itself.
    pub id: &'a str,
    /// Unix seconds of this attempt. Profiles without a timestamp ignore it.
    pub timestamp: i64,
    /// The raw body (for Stem: the envelope JSON as Stem puts it on the wire).
    pub body: &'a [u8],
}

impl VerifyOptions {
    /// Checks a timestamp against the window; the error says by how much it
    /// is off.
    pub(crate) fn check_fresh(&self, timestamp: i64) -> Result<()> {
        crate::standard::check_fresh(timestamp, self.now, self.tolerance_secs).map_err(|e| {
            if e.is_too_old() {
                Error::too_old(format!(
                    "{} (a replay, or a retry sent without re-signing?)",
                    e.message()
                ))
            } else {
                Error::too_new(format!("{} (check the sender's clock)", e.message()))
            }
        })
    }
}

/// A successful verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileVerified {
    /// Which key matched: its own id (Stem) or its position, `secret 1`,
    /// `secret 2`, …
    pub key_label: String,
    /// What the format does not protect, for the caller to show (Krafter and
    /// GitHub do not sign a timestamp, so replays cannot be detected).
    pub warnings: Vec<String>,
    /// Index into the keys of the key that verified. For Inngest the response
    /// must be signed with this key.
    pub response_key: Option<usize>,
}

impl ProfileVerified {
    pub(crate) fn at(index: usize) -> Self {
        Self {
            key_label: position_label(index),
            warnings: Vec::new(),
            response_key: Some(index),
        }
    }
}

/// One key for a profile. Opaque: holds the key material and what form it
/// was given in; `Debug` shows only the form, the id and a fingerprint.
pub struct ProfileKey {
    profile: Profile,
    secret: KeySecret,
}

/// The material, by the form the profile uses. The large variants are boxed
/// so that the plain-string ones stay small.
pub(crate) enum KeySecret {
    /// A shared secret string used as-is.
    Text(HmacSecret),
    /// An Inngest signing key.
    Inngest(inngest::SigningKey),
    /// A key with an id (Stem).
    WithId(Box<Key>),
    /// Standard Webhooks material (`whsec_`/`whsk_`/`whpk_`).
    Standard(Box<KeyMaterial>),
}

impl ProfileKey {
    /// The profile this key was parsed for.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match &self.secret {
            KeySecret::Text(_) | KeySecret::Inngest(_) => Algorithm::HmacSha256,
            KeySecret::WithId(k) => k.algorithm(),
            KeySecret::Standard(m) => m.algorithm(),
        }
    }

    /// The key's own id, for forms that carry one (Stem).
    pub fn id(&self) -> Option<&str> {
        match &self.secret {
            KeySecret::WithId(k) => Some(k.id().as_str()),
            _ => None,
        }
    }

    /// The length in bytes of an HMAC key (`None` for Ed25519), for callers
    /// that hold keys to a minimum such as
    /// [`crate::config::MIN_HMAC_SECRET_LEN`].
    pub fn hmac_len(&self) -> Option<usize> {
        let material = match &self.secret {
            KeySecret::Text(s) => return Some(s.len()),
            KeySecret::Inngest(k) => return Some(k.hmac_key().len()),
            KeySecret::WithId(k) => k.material(),
            KeySecret::Standard(m) => m,
        };
        match material {
            KeyMaterial::Hmac(s) => Some(s.len()),
            _ => None,
        }
    }

    /// Whether this key can sign (an Ed25519 public key cannot).
    pub fn can_sign(&self) -> bool {
        match &self.secret {
            KeySecret::WithId(k) => k.material().can_sign(),
            KeySecret::Standard(m) => m.can_sign(),
            KeySecret::Text(_) | KeySecret::Inngest(_) => true,
        }
    }

    /// A loggable, non-reversible fingerprint of the key.
    pub fn fingerprint(&self) -> String {
        match &self.secret {
            KeySecret::Text(s) => s.fingerprint(),
            KeySecret::Inngest(k) => fingerprint(k.hmac_key().secret_bytes()),
            KeySecret::WithId(k) => k.material().fingerprint(),
            KeySecret::Standard(m) => m.fingerprint(),
        }
    }

    /// An explicit copy (keys are not `Clone` so copies are deliberate).
    pub fn duplicate(&self) -> Self {
        let secret = match &self.secret {
            KeySecret::Text(s) => KeySecret::Text(s.duplicate()),
            KeySecret::Inngest(k) => KeySecret::Inngest(k.duplicate()),
            KeySecret::WithId(k) => KeySecret::WithId(Box::new(k.duplicate())),
            KeySecret::Standard(m) => KeySecret::Standard(Box::new(m.duplicate())),
        };
        Self {
            profile: self.profile,
            secret,
        }
    }

    pub(crate) fn secret(&self) -> &KeySecret {
        &self.secret
    }

    /// HMAC key bytes for the profiles whose keys are plain strings.
    pub(crate) fn text_secret(&self) -> Result<&HmacSecret> {
        match &self.secret {
            KeySecret::Text(s) => Ok(s),
            _ => Err(Error::config(format!(
                "key was parsed for the {} profile and is not a plain shared secret",
                self.profile.as_str()
            ))),
        }
    }
}

impl fmt::Debug for ProfileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ProfileKey");
        d.field("profile", &self.profile.as_str())
            .field("algorithm", &self.algorithm().as_str());
        if let Some(id) = self.id() {
            d.field("id", &id);
        }
        d.field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// `secret 1`, `secret 2`, … for the key at `index`: the position the
/// caller gave it (`--secret` on the command line), not an id nobody chose.
pub(crate) fn position_label(index: usize) -> String {
    format!("secret {}", index + 1)
}

/// Received headers with case-insensitive lookup.
#[derive(Clone, Copy)]
pub(crate) struct Headers<'a>(&'a [(String, String)]);

impl<'a> Headers<'a> {
    /// The value of `name`, if present exactly once. A header sent twice is
    /// malformed: which one was signed is ambiguous.
    pub(crate) fn get(&self, name: &str) -> Result<Option<&'a str>> {
        let mut found = self
            .0
            .iter()
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim());
        let first = found.next();
        let extra = found.count();
        if extra > 0 {
            return Err(Error::malformed(format!(
                "{name} header appears {} times; send it once",
                extra + 1
            )));
        }
        Ok(first)
    }

    /// The value of `name`, or a `missing` error naming the header.
    pub(crate) fn require(&self, name: &str) -> Result<&'a str> {
        self.get(name)?
            .ok_or_else(|| Error::missing(format!("{name} header is missing")))
    }
}

/// Shortens untrusted text for an error message.
pub(crate) fn excerpt(text: &str) -> String {
    const MAX: usize = 40;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

/// Parses a decimal unix timestamp in seconds as a header carries it: ASCII
/// digits only, at most 18 of them.
pub(crate) fn parse_unix_seconds(text: &str, what: &str) -> Result<i64> {
    if text.is_empty() {
        return Err(Error::missing(format!("{what} is empty")));
    }
    if text.len() > 18 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::malformed(format!(
            "{what} is {:?}, not unix seconds (decimal digits only)",
            excerpt(text)
        )));
    }
    text.parse::<i64>()
        .map_err(|_| Error::malformed(format!("{what} is out of range")))
}

/// HMAC-SHA256 of the concatenation of `parts`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = new_mac(key);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Constant-time check of an HMAC-SHA256 tag over the concatenation of `parts`.
pub(crate) fn hmac_sha256_matches(key: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
    let mut mac = new_mac(key);
    for part in parts {
        mac.update(part);
    }
    mac.verify_slice(tag).is_ok()
}

fn new_mac(key: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length (long keys are hashed, short ones
    // padded), so `new_from_slice` cannot fail for `Hmac<Sha256>`.
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length")
}

/// Decodes a lowercase hex HMAC-SHA256 tag (64 characters).
pub(crate) fn decode_hex_tag(text: &str, what: &str) -> Result<[u8; 32]> {
    if text.len() != 64 {
        return Err(Error::malformed(format!(
            "{what} is {} characters; an HMAC-SHA256 in hex is 64",
            text.len()
        )));
    }
    if !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(Error::malformed(format!(
            "{what} is not lowercase hex: {:?}",
            excerpt(text)
        )));
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out)
        .map_err(|_| Error::malformed(format!("{what} is not hex")))?;
    Ok(out)
}

/// The error when no key matched.
pub(crate) fn no_match(keys: usize, body_len: usize) -> Error {
    if keys == 1 {
        Error::mismatch(format!(
            "the signature did not match the key (body {body_len} bytes; was the body re-serialised, or is the secret wrong?)"
        ))
    } else {
        Error::mismatch(format!(
            "no signature matched any of {keys} keys (body {body_len} bytes; was the body re-serialised?)"
        ))
    }
}

/// `timestamp` as the decimal text the timestamped profiles sign and send.
/// Their timestamps are unix seconds, so a negative one is refused
/// (`profile` names the format in the error).
pub(crate) fn unix_seconds_text(profile: &str, timestamp: i64) -> Result<String> {
    if timestamp < 0 {
        return Err(Error::unsupported(format!(
            "{profile} timestamps are unix seconds and cannot be negative"
        )));
    }
    Ok(timestamp.to_string())
}

/// The headers of the profiles that sign the body alone (GitHub, Krafter):
/// `signature_header: sha256=<hex HMAC-SHA256(first key, body)>`, then
/// `id_header` with the request id when there is one (it is not signed).
pub(crate) fn sign_body_only(
    keys: &[ProfileKey],
    request: &SignRequest<'_>,
    signature_header: &str,
    id_header: &str,
) -> Result<Vec<(String, String)>> {
    let key = first_key(keys)?.text_secret()?;
    let tag = hmac_sha256(key.secret_bytes(), &[request.body]);
    let mut out = vec![(
        signature_header.to_owned(),
        format!("sha256={}", hex::encode(tag)),
    )];
    if !request.id.is_empty() {
        out.push((id_header.to_owned(), request.id.to_owned()));
    }
    Ok(out)
}

/// Verifies a [`sign_body_only`] signature received in header `name`. A match carries
/// `warning`: such a signature covers no timestamp, so a replay passes.
pub(crate) fn verify_body_signature(
    keys: &[ProfileKey],
    name: &str,
    signature: &str,
    body: &[u8],
    warning: &str,
) -> Result<ProfileVerified> {
    let hex_part = signature.strip_prefix("sha256=").ok_or_else(|| {
        Error::malformed(format!(
            "{name} must be sha256=<hex>, got {:?}",
            excerpt(signature)
        ))
    })?;
    let tag = decode_hex_tag(hex_part, &format!("{name} header"))?;
    match match_text_keys(keys, &[body], &tag)? {
        Some(i) => {
            let mut verified = ProfileVerified::at(i);
            verified.warnings.push(warning.to_owned());
            Ok(verified)
        }
        None => Err(no_match(keys.len(), body.len())),
    }
}

/// The first key, which is the one that signs in single-signature profiles.
pub(crate) fn first_key(keys: &[ProfileKey]) -> Result<&ProfileKey> {
    keys.first()
        .ok_or_else(|| Error::config("no key given; pass at least one secret"))
}

/// Verifies a single hex HMAC tag against every key (each compared in
/// constant time); returns the index of the key that matched.
pub(crate) fn match_text_keys(
    keys: &[ProfileKey],
    parts: &[&[u8]],
    tag: &[u8],
) -> Result<Option<usize>> {
    for (i, key) in keys.iter().enumerate() {
        if hmac_sha256_matches(key.text_secret()?.secret_bytes(), parts, tag) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_valid_ones() {
        for p in Profile::ALL {
            assert_eq!(p.as_str().parse::<Profile>().unwrap(), p);
        }
        assert_eq!(" Stripe ".parse::<Profile>().unwrap(), Profile::Stripe);
        let err = "hookdeck".parse::<Profile>().unwrap_err();
        assert!(err.is_config());
        for p in Profile::ALL {
            assert!(err.to_string().contains(p.as_str()), "{err}");
        }
    }

    #[test]
    fn freshness_window_is_symmetric_and_says_by_how_much() {
        let o = VerifyOptions::new(1_000);
        assert!(o.check_fresh(700).is_ok());
        assert!(o.check_fresh(1_300).is_ok());
        let old = o.check_fresh(588).unwrap_err();
        assert!(old.is_too_old());
        assert_eq!(
            old.to_string().split(';').next().unwrap(),
            "timestamp is 412 s old"
        );
        assert!(o.check_fresh(1_301).unwrap_err().is_too_new());
        assert!(o
            .with_tolerance(0)
            .check_fresh(999)
            .unwrap_err()
            .is_too_old());
        // Extreme values never overflow.
        assert!(VerifyOptions::new(i64::MIN)
            .check_fresh(i64::MAX)
            .unwrap_err()
            .is_too_new());
    }

    #[test]
    fn duplicate_headers_are_refused_and_lookup_ignores_case() {
        let hs = vec![("X-A".to_owned(), " v ".to_owned())];
        assert_eq!(Headers(&hs).get("x-a").unwrap(), Some("v"));
        let hs = vec![
            ("x-a".to_owned(), "1".to_owned()),
            ("X-A".to_owned(), "2".to_owned()),
        ];
        assert!(Headers(&hs).get("x-a").unwrap_err().is_malformed());
        assert!(Headers(&hs).require("x-b").unwrap_err().is_missing());
    }

    #[test]
    fn timestamps_are_decimal_seconds_only() {
        assert_eq!(
            parse_unix_seconds("1735726800", "t").unwrap(),
            1_735_726_800
        );
        for bad in ["-1", "+1", "1.5", "0x10", "1 2", "9999999999999999999"] {
            assert!(
                parse_unix_seconds(bad, "t").unwrap_err().is_malformed(),
                "{bad}"
            );
        }
        assert!(parse_unix_seconds("", "t").unwrap_err().is_missing());
    }

    #[test]
    fn hex_tags_must_be_64_lowercase_digits() {
        let tag = "ab".repeat(32);
        assert_eq!(decode_hex_tag(&tag, "s").unwrap(), [0xab; 32]);
        assert!(decode_hex_tag(&tag.to_uppercase(), "s").is_err());
        assert!(decode_hex_tag(&tag[..62], "s").is_err());
    }

    #[test]
    fn debug_of_a_key_shows_no_secret() {
        let cases = [
            (Profile::Stripe, "whsec_top-secret-value", "top-secret"),
            (
                Profile::Inngest,
                "signkey-prod-abcdef0123456789",
                "abcdef0123456789",
            ),
            (
                Profile::Stem,
                "primary:c3VwZXItc2VjcmV0LXN1cGVyLXNlY3JldA==",
                "c3VwZXIt",
            ),
            (
                Profile::Standard,
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "MfKQ9r8G",
            ),
        ];
        for (profile, text, secret) in cases {
            let k = profile.parse_key(text).unwrap();
            let d = format!("{k:?} {:?}", k.duplicate());
            assert!(!d.contains(secret), "{d}");
            assert!(d.contains("sha256:"), "{d}");
        }
    }

    #[test]
    fn keys_from_another_profile_are_refused() {
        let k = Profile::Inngest.parse_key("signkey-test-abcd").unwrap();
        let req = SignRequest {
            id: "x",
            timestamp: 1,
            body: b"{}",
        };
        assert!(Profile::Stripe.sign(&[k], &req).unwrap_err().is_config());
        assert!(Profile::Stripe.sign(&[], &req).unwrap_err().is_config());
    }
}
