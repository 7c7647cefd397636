//! The base64 forms this crate reads and writes.
//!
//! Keys are read leniently (padding optional, the URL-safe alphabet
//! accepted, stray low bits in the last character ignored) because they come
//! from many generators. Signatures are read strictly except for padding: a
//! signature has exactly one accepted encoding besides its padding, so a
//! changed character is never silently decoded to the same bytes.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{DecodeError, Engine as _};

/// Standard alphabet, padded output (what we write).
pub(crate) use base64::engine::general_purpose::STANDARD;

const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);

const STRICT_BITS: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);

/// Lenient decoding of keys in the standard alphabet.
const KEY_STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
/// Lenient decoding of keys in the URL-safe alphabet.
const KEY_URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);
/// Signatures: standard alphabet, padding optional, canonical last character.
pub(crate) const SIGNATURE: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, STRICT_BITS);

/// Decodes key material. The error text says what is wrong without quoting
/// any of the input (it is a secret).
pub(crate) fn decode_key(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    let engine = if text.contains(['-', '_']) {
        &KEY_URL_SAFE
    } else {
        &KEY_STANDARD
    };
    engine.decode(text).map_err(|e| describe(&e))
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Character → 6-bit value, `INVALID` for characters outside the alphabet.
const INVALID: u8 = 0xff;
const DECODE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Appends the padded standard base64 of `input` to `out`.
///
/// Signatures are encoded on every signing, so this is a small
/// straight-line encoder rather than the general `base64` engine (which
/// goes through a chunked sink and re-validates UTF-8); a unit test checks
/// it against that engine.
pub(crate) fn encode_append(input: &[u8], out: &mut String) {
    // Signatures (32 or 64 bytes) go through a stack buffer; 48-byte
    // pieces keep longer inputs on the same path.
    let mut buf = [0u8; 64];
    let mut chunks = input.chunks(48);
    for chunk in &mut chunks {
        let n = encode_chunk(chunk, &mut buf);
        // Always ASCII (the alphabet and '='), so this never fails.
        if let Ok(text) = std::str::from_utf8(&buf[..n]) {
            out.push_str(text);
        }
    }
}

/// Encodes at most 48 bytes into `buf`, returning the number of characters.
fn encode_chunk(input: &[u8], buf: &mut [u8; 64]) -> usize {
    let at = |v: u32| ALPHABET[(v & 63) as usize];
    let mut n = 0;
    let mut triples = input.chunks_exact(3);
    for c in &mut triples {
        let v = (u32::from(c[0]) << 16) | (u32::from(c[1]) << 8) | u32::from(c[2]);
        buf[n..n + 4].copy_from_slice(&[at(v >> 18), at(v >> 12), at(v >> 6), at(v)]);
        n += 4;
    }
    match *triples.remainder() {
        [a] => {
            let v = u32::from(a) << 16;
            buf[n..n + 4].copy_from_slice(&[at(v >> 18), at(v >> 12), b'=', b'=']);
            n += 4;
        }
        [a, b] => {
            let v = (u32::from(a) << 16) | (u32::from(b) << 8);
            buf[n..n + 4].copy_from_slice(&[at(v >> 18), at(v >> 12), at(v >> 6), b'=']);
            n += 4;
        }
        _ => {}
    }
    n
}

/// Decodes a signature into `out`, returning the length, or `None` when the
/// text is not canonical standard base64 (padding optional, but correct when
/// present; unused low bits of the last character zero) or does not fit.
/// Accepts a subset of what [`SIGNATURE`] accepts (that engine also takes
/// incomplete padding) and every canonical encoding; a unit test checks both.
pub(crate) fn decode_signature(text: &str, out: &mut [u8]) -> Option<usize> {
    let bytes = text.as_bytes();
    let unpadded = match bytes {
        [rest @ .., b'=', b'='] | [rest @ .., b'='] => {
            if bytes.len() % 4 != 0 {
                return None;
            }
            rest
        }
        _ => bytes,
    };
    let rem = unpadded.len() % 4;
    let len = unpadded.len() / 4 * 3
        + match rem {
            0 => 0,
            2 => 1,
            3 => 2,
            _ => return None,
        };
    // Padding must be exactly what the remainder needs.
    if unpadded.len() != bytes.len() && (bytes.len() - unpadded.len()) != (4 - rem) % 4 {
        return None;
    }
    if len > out.len() {
        return None;
    }
    // Invalid characters map to 0xff; OR-ing every looked-up value and
    // testing the top bit once keeps the loop free of per-character branches.
    let value = |c: u8| DECODE[usize::from(c)];
    let mut seen = 0u8;
    let mut quads = unpadded.chunks_exact(4);
    let mut at = 0;
    for q in &mut quads {
        let (a, b, c, d) = (value(q[0]), value(q[1]), value(q[2]), value(q[3]));
        seen |= a | b | c | d;
        let v = (u32::from(a) << 18) | (u32::from(b) << 12) | (u32::from(c) << 6) | u32::from(d);
        out[at..at + 3].copy_from_slice(&v.to_be_bytes()[1..]);
        at += 3;
    }
    match *quads.remainder() {
        [a, b] => {
            let (a, b) = (value(a), value(b));
            seen |= a | b;
            let v = (u32::from(a) << 18) | (u32::from(b) << 12);
            if v & 0xffff != 0 {
                return None;
            }
            out[at] = (v >> 16) as u8;
        }
        [a, b, c] => {
            let (a, b, c) = (value(a), value(b), value(c));
            seen |= a | b | c;
            let v = (u32::from(a) << 18) | (u32::from(b) << 12) | (u32::from(c) << 6);
            if v & 0xff != 0 {
                return None;
            }
            out[at..at + 2].copy_from_slice(&v.to_be_bytes()[1..3]);
        }
        _ => {}
    }
    if seen & 0x80 != 0 {
        return None;
    }
    Some(len)
}

/// Describes a decode error by position only.
pub(crate) fn describe(e: &DecodeError) -> String {
    match e {
        DecodeError::InvalidByte(offset, _) => {
            format!(
                "character {} is not in the base64 alphabet",
                offset.saturating_add(1)
            )
        }
        DecodeError::InvalidLength(_) => "its length is not a possible base64 length".to_owned(),
        DecodeError::InvalidLastSymbol(offset, _) => format!(
            "character {} has bits set past the end of the data",
            offset.saturating_add(1)
        ),
        DecodeError::InvalidPadding => "its '=' padding is wrong".to_owned(),
    }
}

/// Writes the decimal form of `n` into `buf`, returning the used tail.
/// Two digits per step from a table: timestamps are formatted on every
/// signature.
pub(crate) fn decimal(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
                                2021222324252627282930313233343536373839\
                                4041424344454647484950515253545556575859\
                                6061626364656667686970717273747576777879\
                                8081828384858687888990919293949596979899";
    let negative = n < 0;
    let mut v = n.unsigned_abs();
    let mut i = buf.len();
    while v >= 100 {
        // `v % 100` is below 100, so the index is within the table.
        let pair = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if v >= 10 {
        let pair = v as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + v as u8;
    }
    if negative {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_matches_to_string() {
        let mut buf = [0u8; 20];
        for n in [
            0,
            7,
            10,
            99,
            100,
            101,
            1_614_265_330,
            -1,
            -10,
            i64::MAX,
            i64::MIN,
        ] {
            assert_eq!(decimal(n, &mut buf), n.to_string().as_bytes());
        }
    }

    proptest::proptest! {
        #[test]
        fn decimal_matches_to_string_everywhere(n in proptest::prelude::any::<i64>()) {
            let mut buf = [0u8; 20];
            let expected = n.to_string();
            proptest::prop_assert_eq!(decimal(n, &mut buf), expected.as_bytes());
        }

        #[test]
        fn encoder_matches_the_base64_crate(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let mut ours = String::from("x");
            encode_append(&input, &mut ours);
            proptest::prop_assert_eq!(&ours[1..], STANDARD.encode(&input));
        }

        #[test]
        fn decoder_accepts_canonical_forms_and_nothing_the_engine_refuses(
            input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..=64),
            cut in 0usize..3,
            noise in "[A-Za-z0-9+/=*]{0,8}",
            at in proptest::prelude::any::<usize>(),
        ) {
            let encoded = STANDARD.encode(&input);
            let unpadded = encoded.trim_end_matches('=').to_owned();
            let mut changed = unpadded.clone().into_bytes();
            if !changed.is_empty() && !noise.is_empty() {
                let i = at % changed.len();
                changed[i] = noise.as_bytes()[at % noise.len()];
            }
            let changed = String::from_utf8(changed).unwrap();
            let extra = format!("{unpadded}{}", &"=="[..cut.min(2)]);
            for text in [encoded.as_str(), unpadded.as_str(), changed.as_str(), noise.as_str(), extra.as_str()] {
                let mut a = [0u8; 64];
                let mut b = [0u8; 64];
                let ours = decode_signature(text, &mut a);
                let theirs = SIGNATURE.decode_slice(text, &mut b).ok();
                // Ours is the stricter one: the engine also takes a partial
                // padding ("AAA" + "=" where "==" is due); we do not.
                if let Some(n) = ours {
                    proptest::prop_assert_eq!(Some(n), theirs, "{:?}", text);
                    proptest::prop_assert_eq!(&a[..n], &b[..n]);
                }
            }
            // Canonical forms, padded or not, are always accepted.
            for text in [encoded.as_str(), unpadded.as_str()] {
                let mut a = [0u8; 64];
                proptest::prop_assert_eq!(decode_signature(text, &mut a), Some(input.len()));
                proptest::prop_assert_eq!(&a[..input.len()], input.as_slice());
            }
        }
    }

    #[test]
    fn keys_are_lenient_signatures_are_not() {
        assert_eq!(decode_key("AAE").unwrap(), [0, 1]);
        assert_eq!(decode_key("AAE=").unwrap(), [0, 1]);
        assert_eq!(decode_key("AAF").unwrap(), [0, 1]); // stray low bits ignored
        assert_eq!(decode_key("-_8").unwrap(), [0xfb, 0xff]);
        let mut out = [0u8; 4];
        assert_eq!(decode_signature("AAE", &mut out), Some(2));
        assert_eq!(decode_signature("AAF", &mut out), None);
        let err = decode_key("AA*A").unwrap_err();
        assert_eq!(err, "character 3 is not in the base64 alphabet");
    }
}
