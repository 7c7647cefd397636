//! `standard` and `svix`: Standard Webhooks, through [`crate::standard`].
//!
//! Keys are `whsec_…` / `whsk_…` / `whpk_…` (prefix optional) and are named
//! by position, `secret 1`, `secret 2`, … (in the ring they are built into,
//! `secret-1`, `secret-2`, …, as key ids allow no spaces). When signing,
//! every key that can sign signs (a rotation overlap: one entry per key in
//! the signature header); `whpk_` public keys only verify.

use super::{Headers, KeySecret, Profile, ProfileKey, ProfileVerified, SignRequest, VerifyOptions};
use crate::error::{Error, Result};
use crate::key::{Key, KeyId};
use crate::keyring::KeyRing;
use crate::standard::{self, HeaderNames, STANDARD_HEADERS, SVIX_HEADERS};

pub(crate) fn parse_key(text: &str) -> Result<KeySecret> {
    standard::parse_secret(text).map(|m| KeySecret::Standard(Box::new(m)))
}

fn names(profile: Profile) -> &'static HeaderNames {
    match profile {
        Profile::Svix => &SVIX_HEADERS,
        _ => &STANDARD_HEADERS,
    }
}

/// The id of the key at `index` in the ring built from the keys.
fn key_id(index: usize) -> Result<KeyId> {
    KeyId::new(format!("secret-{}", index + 1))
}

/// A ring of all keys, ids `secret-N`, without an active key.
fn ring_keys(keys: &[ProfileKey]) -> Result<Vec<Key>> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| match k.secret() {
            KeySecret::Standard(material) => Ok(Key::new(key_id(i)?, material.duplicate())),
            _ => Err(Error::config(format!(
                "{} is not a Standard Webhooks secret (whsec_, whsk_ or whpk_)",
                super::position_label(i)
            ))),
        })
        .collect()
}

pub(crate) fn sign(
    profile: Profile,
    keys: &[ProfileKey],
    request: &SignRequest<'_>,
) -> Result<Vec<(String, String)>> {
    let signers: Vec<usize> = (0..keys.len()).filter(|&i| keys[i].can_sign()).collect();
    let Some(&first) = signers.first() else {
        return Err(Error::unsupported(
            "none of the keys can sign: whpk_ public keys only verify; pass a whsec_ or whsk_ secret",
        ));
    };
    let mut ring = KeyRing::new(ring_keys(keys)?, Some(key_id(first)?))?;
    for &i in &signers[1..] {
        ring.set_also_signs(key_id(i)?.as_str(), true)?;
    }
    let headers = standard::sign_headers(
        names(profile),
        &ring,
        request.id,
        request.timestamp,
        request.body,
    )?;
    Ok(headers
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v))
        .collect())
}

pub(crate) fn verify(
    profile: Profile,
    keys: &[ProfileKey],
    headers: Headers<'_>,
    body: &[u8],
    options: &VerifyOptions,
) -> Result<ProfileVerified> {
    let names = names(profile);
    let ring = KeyRing::new(ring_keys(keys)?, None)?;
    let id = headers.get(names.id)?.unwrap_or("");
    let ts = headers.get(names.timestamp)?.unwrap_or("");
    let signature = headers.get(names.signature)?.unwrap_or("");
    let verified = standard::verify_with_names(names, &ring, id, ts, signature, body, options)
        // The ring's words would name its internal ids; say it as every
        // profile does.
        .map_err(|e| {
            if e.is_mismatch() {
                super::no_match(keys.len(), body.len())
            } else {
                e
            }
        })?;
    let index = (0..keys.len()).find(|&i| key_id(i).is_ok_and(|k| k == verified.key_id));
    Ok(ProfileVerified {
        key_label: index.map_or_else(
            || verified.key_id.as_str().to_owned(),
            super::position_label,
        ),
        warnings: Vec::new(),
        response_key: index,
    })
}
