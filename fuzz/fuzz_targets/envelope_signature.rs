//! The task envelope's `signet-signature` / `signet-signature-key` headers.
//!
//! Input: lines `signature \n key id`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_sign::envelope::EnvelopeSignature;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (sig, key_id) = text.split_once('\n').unwrap_or((&text, ""));
    if let Ok(parsed) = EnvelopeSignature::from_headers(sig, key_id) {
        // What parses formats back to a header that parses to the same thing.
        let again = EnvelopeSignature::from_headers(&parsed.header_value(), parsed.key_id.as_str())
            .expect("a formatted signature parses");
        assert_eq!(parsed, again);
    }
});
