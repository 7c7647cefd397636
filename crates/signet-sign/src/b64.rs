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

/// Decodes a signature into `out`, returning the length, or `None` when the
/// text is not canonical base64 or does not fit.
pub(crate) fn decode_signature(text: &str, out: &mut [u8]) -> Option<usize> {
    SIGNATURE.decode_slice(text, out).ok()
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
pub(crate) fn decimal(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let negative = n < 0;
    let mut v = n.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        // `v % 10` is below 10, so the cast cannot truncate.
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
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
        for n in [0, 7, 10, 1_614_265_330, -1, i64::MAX, i64::MIN] {
            assert_eq!(decimal(n, &mut buf), n.to_string().as_bytes());
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
