//! Standard Webhooks and Svix: the secret parser (`whsec_`/`whsk_`/`whpk_`)
//! and verification of arbitrary `webhook-*` / `svix-*` headers and body.
//!
//! Input: lines `secret \n id \n timestamp \n signature \n body…`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_sign::profiles::VerifyOptions;
use signet_sign::Profile;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(5, |b| *b == b'\n');
    let secret = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let id = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let ts = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let sig = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let body = parts.next().unwrap_or_default();

    let _ = signet_sign::standard::parse_secret(&secret);
    let fixed = Profile::Standard
        .parse_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        .expect("a valid fixed secret");
    for (profile, prefix) in [(Profile::Standard, "webhook"), (Profile::Svix, "svix")] {
        let headers = vec![
            (format!("{prefix}-id"), id.clone()),
            (format!("{prefix}-timestamp"), ts.clone()),
            (format!("{prefix}-signature"), sig.clone()),
        ];
        let opts = VerifyOptions::new(1_614_265_330);
        let _ = profile.verify(std::slice::from_ref(&fixed), &headers, body, &opts);
        if let Ok(key) = profile.parse_key(&secret) {
            let _ = profile.verify(&[key], &headers, body, &opts);
        }
    }
});
