//! The `sha256=<hex>` signature headers: Stromboli (with its timestamp
//! header), Krafter and GitHub; and the plain-string secret parser.
//!
//! Input: lines `secret \n timestamp \n signature \n body…`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_sign::profiles::VerifyOptions;
use signet_sign::Profile;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(4, |b| *b == b'\n');
    let secret = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let ts = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let sig = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let body = parts.next().unwrap_or_default();

    let opts = VerifyOptions::new(1_735_726_800);
    for (profile, sig_name, ts_name) in [
        (
            Profile::Stromboli,
            "X-Stromboli-Signature",
            "X-Stromboli-Timestamp",
        ),
        (
            Profile::Krafter,
            "x-krafter-signature",
            "x-krafter-timestamp",
        ),
        (Profile::Github, "X-Hub-Signature-256", "X-GitHub-Delivery"),
    ] {
        let Ok(key) = profile.parse_key(&secret) else {
            continue;
        };
        let headers = vec![
            (sig_name.to_owned(), sig.clone()),
            (ts_name.to_owned(), ts.clone()),
        ];
        let _ = profile.verify(&[key], &headers, body, &opts);
    }
});
