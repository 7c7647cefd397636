//! `standard` and `svix`: Standard Webhooks, through [`crate::standard`].
//!
//! Keys are `whsec_…` / `whsk_…` / `whpk_…` (prefix optional) and get the ids
//! `key-1`, `key-2`, … by position. When signing, every key that can sign
//! signs (a rotation overlap: one entry per key in the signature header);
//! `whpk_` public keys only verify.

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

fn key_id(index: usize) -> Result<KeyId> {
    KeyId::new(super::position_label(index))
}

/// A ring of all keys, ids `key-N`, without an active key.
fn ring_keys(keys: &[ProfileKey]) -> Result<Vec<Key>> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| match k.secret() {
            KeySecret::Standard(material) => Ok(Key::new(key_id(i)?, material.duplicate())),
            _ => Err(Error::config(format!(
                "key-{} is not a Standard Webhooks secret (whsec_, whsk_ or whpk_)",
                i + 1
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
        ring.set_also_signs(&super::position_label(i), true)?;
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
    let verified = standard::verify_with_names(names, &ring, id, ts, signature, body, options)?;
    let label = verified.key_id.as_str().to_owned();
    let index = (0..keys.len()).find(|&i| super::position_label(i) == label);
    Ok(ProfileVerified {
        key_label: label,
        warnings: Vec::new(),
        response_key: index,
    })
}
