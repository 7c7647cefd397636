//! Stripe: the `Stripe-Signature` header parser and verification.
//!
//! Input: lines `header \n body…`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_sign::profiles::{stripe, VerifyOptions};
use signet_sign::Profile;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(2, |b| *b == b'\n');
    let header = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let body = parts.next().unwrap_or_default();

    let _ = stripe::parse_header(&header);
    let keys = Profile::Stripe
        .parse_keys(&["whsec_first", "whsec_second"])
        .expect("valid fixed secrets");
    let headers = vec![("Stripe-Signature".to_owned(), header)];
    let _ = Profile::Stripe.verify(&keys, &headers, body, &VerifyOptions::new(1_735_726_800));
});
