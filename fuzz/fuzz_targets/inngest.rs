//! Inngest: the `signkey-<env>-<hex>` parser, the `X-Inngest-Signature`
//! header, request verification (RFC 8785 body), response verification and
//! the bearer-token check.
//!
//! Input: lines `key \n header \n bearer \n body…`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_sign::profiles::{inngest, VerifyOptions};
use signet_sign::Profile;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(4, |b| *b == b'\n');
    let key = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let header = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let bearer = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let body = parts.next().unwrap_or_default();

    let _ = inngest::parse_header(&header);
    let _ = inngest::canonical_request_body(body);
    let mut keys = vec![Profile::Inngest
        .parse_key("signkey-test-f00f3005a3666b359a79c2bc3380ce2715e62727ac461ae1a2618f8766029c9f")
        .expect("a valid fixed key")];
    if let Ok(k) = Profile::Inngest.parse_key(&key) {
        let _ = inngest::bearer_token(&k);
        keys.push(k);
    }
    let opts = VerifyOptions::new(1_687_306_735);
    let headers = vec![("X-Inngest-Signature".to_owned(), header.clone())];
    let _ = Profile::Inngest.verify(&keys, &headers, body, &opts);
    let _ = inngest::verify_response(&keys, &header, body, &opts);
    let _ = inngest::verify_bearer(&keys, &bearer);
});
