//! HMAC-SHA256 with the keyed state computed once per key.
//!
//! HMAC(k, m) = H((k ⊕ opad) ‖ H((k ⊕ ipad) ‖ m)). The two padded-key
//! blocks are hashed when the key is loaded, so a MAC costs only the blocks
//! of the message plus one outer block.
//!
//! Short messages (up to [`SHORT_MAX`] bytes, which covers webhook bodies
//! of a couple hundred bytes with their id and timestamp) are padded in a
//! stack buffer and compressed with `sha2::compress256` directly: no
//! partial-block bookkeeping, which otherwise costs about a fifth of a
//! small message's MAC. Longer messages go through the `hmac` crate's
//! state, cloned from the precomputed one. Both paths are checked against
//! the `hmac` crate by unit tests and against Wycheproof by the
//! integration tests.

use hmac::{Hmac, Mac};
use sha2::digest::consts::U64;
use sha2::digest::generic_array::GenericArray;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

type Block = GenericArray<u8, U64>;

/// The SHA-256 initial hash value (FIPS 180-4 §5.3.3).
const IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// Longest message on the short path: five blocks less the 9 bytes of
/// SHA-256 padding (0x80 and the 64-bit length).
pub(crate) const SHORT_MAX: usize = 5 * 64 - 9;

/// A keyed HMAC-SHA256 state. As sensitive as the key: never printed, and
/// the chaining values are zeroized on drop (the `hmac` crate's copy of the
/// state is not; it offers no way to).
#[derive(Clone)]
pub(crate) struct HmacKey {
    /// SHA-256 state after the block k ⊕ ipad.
    inner: [u32; 8],
    /// SHA-256 state after the block k ⊕ opad.
    outer: [u32; 8],
    /// The same key for the `hmac` crate (long messages).
    state: Hmac<Sha256>,
}

impl HmacKey {
    pub(crate) fn new(secret: &[u8]) -> Self {
        // Keys longer than a block are hashed first (RFC 2104).
        let mut key = Zeroizing::new([0u8; 64]);
        if secret.len() > 64 {
            key[..32].copy_from_slice(&Sha256::digest(secret));
        } else {
            key[..secret.len()].copy_from_slice(secret);
        }
        let pad = |byte: u8| {
            let mut block = Block::default();
            for (b, k) in block.iter_mut().zip(key.iter()) {
                *b = k ^ byte;
            }
            let mut state = IV;
            sha2::compress256(&mut state, std::slice::from_ref(&block));
            block.as_mut_slice().zeroize();
            state
        };
        // Invariant: HMAC takes keys of any length (longer ones are
        // hashed), so `new_from_slice` cannot fail for `Hmac<Sha256>`.
        let state =
            <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length");
        Self {
            inner: pad(0x36),
            outer: pad(0x5c),
            state,
        }
    }

    /// The MAC of the concatenation of `parts`.
    pub(crate) fn mac_parts(&self, parts: &[&[u8]]) -> [u8; 32] {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len <= SHORT_MAX {
            return self.mac_short(parts, len);
        }
        let mut mac = self.state.clone();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    fn mac_short(&self, parts: &[&[u8]], len: usize) -> [u8; 32] {
        // Most webhook messages fit two blocks; size the zeroed buffer to
        // what is needed.
        if len + 9 <= 2 * 64 {
            self.finish(&padded::<2>(parts, len))
        } else {
            self.finish(&padded::<5>(parts, len))
        }
    }

    /// Compresses the padded inner message and then the outer block.
    fn finish(&self, blocks: &[Block]) -> [u8; 32] {
        let mut inner = self.inner;
        sha2::compress256(&mut inner, blocks);

        // Outer: H(k ⊕ opad ‖ inner digest), 96 bytes = one more block.
        let mut block = Block::default();
        for (bytes, word) in block.chunks_exact_mut(4).zip(inner) {
            bytes.copy_from_slice(&word.to_be_bytes());
        }
        block[32] = 0x80;
        block[56..].copy_from_slice(&((64u64 + 32) * 8).to_be_bytes());
        let mut outer = self.outer;
        sha2::compress256(&mut outer, std::slice::from_ref(&block));
        let mut out = [0u8; 32];
        for (bytes, word) in out.chunks_exact_mut(4).zip(outer) {
            bytes.copy_from_slice(&word.to_be_bytes());
        }
        out
    }
}

/// `parts` (`len` bytes in all, at most `N * 64 - 9`) followed by SHA-256
/// padding for a message that starts after one key block: 0x80, zeros, and
/// the bit length. Returns only the blocks used.
fn padded<const N: usize>(parts: &[&[u8]], len: usize) -> PaddedBlocks<N> {
    let mut flat = [[0u8; 64]; N];
    let bytes = flat.as_flattened_mut();
    let mut at = 0;
    for part in parts {
        // The separators of signed content are single bytes: store them
        // directly rather than through a `memcpy` call.
        if let [byte] = part {
            bytes[at] = *byte;
        } else {
            bytes[at..at + part.len()].copy_from_slice(part);
        }
        at += part.len();
    }
    bytes[len] = 0x80;
    let used = (len + 9).div_ceil(64);
    let bits = ((64 + len) as u64) * 8;
    bytes[used * 64 - 8..used * 64].copy_from_slice(&bits.to_be_bytes());
    PaddedBlocks {
        blocks: flat.map(Block::from),
        used,
    }
}

struct PaddedBlocks<const N: usize> {
    blocks: [Block; N],
    used: usize,
}

impl<const N: usize> std::ops::Deref for PaddedBlocks<N> {
    type Target = [Block];
    fn deref(&self) -> &[Block] {
        &self.blocks[..self.used]
    }
}

impl Drop for HmacKey {
    fn drop(&mut self) {
        self.inner.zeroize();
        self.outer.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(key: &[u8], msg: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
        mac.update(msg);
        mac.finalize().into_bytes().into()
    }

    #[test]
    fn every_length_around_the_block_and_path_boundaries() {
        let msg: Vec<u8> = (0..400u32).map(|i| (i * 7) as u8).collect();
        for key_len in [1, 16, 32, 63, 64, 65, 100, 200] {
            let key: Vec<u8> = (0..key_len).map(|i| i as u8 ^ 0xa5).collect();
            let k = HmacKey::new(&key);
            for len in 0..=msg.len() {
                let m = &msg[..len];
                assert_eq!(
                    k.mac_parts(&[m]),
                    reference(&key, m),
                    "key {key_len} msg {len}"
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
        #[test]
        fn pieces_hash_like_the_whole(
            key in proptest::collection::vec(any::<u8>(), 1..150),
            msg in proptest::collection::vec(any::<u8>(), 0..700),
            cuts in proptest::collection::vec(any::<usize>(), 0..4),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (msg.len() + 1)).collect();
            cuts.sort_unstable();
            let mut parts = Vec::new();
            let mut start = 0;
            for c in cuts {
                parts.push(&msg[start..c]);
                start = c;
            }
            parts.push(&msg[start..]);
            prop_assert_eq!(HmacKey::new(&key).mac_parts(&parts), reference(&key, &msg));
        }
    }
}
