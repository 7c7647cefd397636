//! RFC 8785 canonicalisation: never panics, and the canonical form is a
//! fixed point (canonicalising it again changes nothing).
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_sign::profiles::jcs;

fuzz_target!(|data: &[u8]| {
    if let Ok(once) = jcs::canonicalize(data) {
        let twice = jcs::canonicalize(&once).expect("canonical output parses");
        assert_eq!(once, twice, "canonical form is not a fixed point");
    }
});
