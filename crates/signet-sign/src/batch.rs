//! Ed25519 batch verification that keeps the strict encoding rules.
//!
//! `ed25519-dalek`'s batch equation checks many signatures with one
//! multi-scalar multiplication, about twice as fast per signature as
//! verifying them one by one. It decodes R leniently and does not reject
//! small-order points, so before a signature joins the batch it must pass
//! the encoding checks of strict verification: S reduced (S < ℓ), R the
//! canonical encoding of a point that is not of small order. Signatures that
//! fail them are rejected without entering the batch (strict verification
//! would reject them too). When the batch equation fails, every member is
//! verified on its own, strictly, so the bad ones are named.
//!
//! One difference remains and is documented in `docs/ed25519-policy.md`: a
//! signature whose R carries a small torsion component fails strict
//! verification but can pass the batch, whose per-signature weights
//! (derived from the signed data) may cancel the torsion term. Only the
//! holder of the private key can make such a signature.

use ed25519_dalek::{Signature, VerifyingKey};

use crate::key::{ed25519_verify_strict, Ed25519PublicKey};

/// One signature to check.
#[derive(Clone, Copy, Debug)]
pub struct BatchItem<'a> {
    /// The key that should have signed.
    pub key: &'a Ed25519PublicKey,
    /// The signed message.
    pub message: &'a [u8],
    /// The signature (anything but 64 bytes is rejected).
    pub signature: &'a [u8],
}

/// Verifies every item; `result[i]` says whether item `i` is valid.
pub fn verify_ed25519(items: &[BatchItem<'_>]) -> Vec<bool> {
    let mut results = vec![false; items.len()];
    let mut pending: Vec<(usize, Signature)> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if let Ok(bytes) = <[u8; 64]>::try_from(item.signature) {
            if strict_encoding(&bytes) {
                pending.push((i, Signature::from_bytes(&bytes)));
            }
        }
    }
    if pending.len() >= 2 {
        let messages: Vec<&[u8]> = pending.iter().map(|(i, _)| items[*i].message).collect();
        let signatures: Vec<Signature> = pending.iter().map(|(_, s)| *s).collect();
        let keys: Vec<VerifyingKey> = pending
            .iter()
            .map(|(i, _)| *items[*i].key.dalek())
            .collect();
        if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
            for (i, _) in pending {
                results[i] = true;
            }
            return results;
        }
    }
    for (i, _) in pending {
        let item = &items[i];
        results[i] = ed25519_verify_strict(item.key, item.message, item.signature);
    }
    results
}

/// The encoding checks strict verification applies before its equation:
/// S < ℓ, and R a canonical encoding of a point that is not of small order.
pub(crate) fn strict_encoding(sig: &[u8; 64]) -> bool {
    let mut r = [0u8; 32];
    r.copy_from_slice(&sig[..32]);
    let mut s = [0u8; 32];
    s.copy_from_slice(&sig[32..]);
    if !scalar_is_reduced(&s) {
        return false;
    }
    // `VerifyingKey` serves as a point decoder here: it decompresses the
    // bytes and reports small order; re-encoding the point shows whether
    // the given bytes were its canonical encoding.
    let Ok(point) = VerifyingKey::from_bytes(&r) else {
        return false;
    };
    !point.is_weak() && VerifyingKey::from(point.to_edwards()).to_bytes() == r
}

/// Whether 32 little-endian bytes are a scalar below the group order ℓ.
fn scalar_is_reduced(s: &[u8; 32]) -> bool {
    // ℓ = 2^252 + 27742317777372353535851937790883648493, little-endian.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x10,
    ];
    // Most significant byte first. Signatures are public: no need for
    // constant time.
    for i in (0..32).rev() {
        if s[i] != L[i] {
            return s[i] < L[i];
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Ed25519SecretKey;
    use ed25519_dalek::Signer as _;

    #[test]
    fn batch_agrees_with_single_checks_and_names_bad_items() {
        let keys: Vec<Ed25519SecretKey> = (1..=4u8)
            .map(|b| Ed25519SecretKey::from_seed(&[b; 32]).unwrap())
            .collect();
        let publics: Vec<Ed25519PublicKey> = keys.iter().map(|k| k.public_key()).collect();
        let msgs: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 10 + usize::from(i)]).collect();
        let mut sigs: Vec<[u8; 64]> = keys
            .iter()
            .zip(&msgs)
            .map(|(k, m)| k.dalek().sign(m).to_bytes())
            .collect();
        let items = |sigs: &[[u8; 64]]| -> Vec<bool> {
            let items: Vec<BatchItem<'_>> = (0..4)
                .map(|i| BatchItem {
                    key: &publics[i],
                    message: &msgs[i],
                    signature: &sigs[i],
                })
                .collect();
            verify_ed25519(&items)
        };
        assert_eq!(items(&sigs), [true; 4]);
        sigs[2][5] ^= 1;
        // S = ℓ exactly: not reduced, refused before the batch.
        sigs[3][32..].copy_from_slice(&[
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ]);
        assert_eq!(items(&sigs), [true, true, false, false]);
    }
}
