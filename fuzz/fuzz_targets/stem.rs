//! Stem: the key parser (`id:base64`, `ed25519:…`, `ed25519-public:…`), the
//! envelope JSON canonicaliser, signature attachment, and verification with signature headers
//! from the HTTP headers or the envelope itself.
//!
//! Input: lines `key \n stem-signature \n stem-signature-key \n envelope…`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_sign::profiles::{stem, VerifyOptions};
use signet_sign::Profile;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(4, |b| *b == b'\n');
    let key = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let sig = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let key_id = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let envelope = parts.next().unwrap_or_default();

    if let Ok(canonical) = stem::canonical_bytes(envelope) {
        // The canonical form is itself valid JSON.
        assert!(signet_sign::profiles::jcs::parse(&canonical).is_ok());
    }
    let fixed = Profile::Stem
        .parse_key("primary:c3VwZXItc2VjcmV0LXN1cGVyLXNlY3JldA==")
        .expect("a valid fixed key");
    let opts = VerifyOptions::new(0);
    let _ = Profile::Stem.verify(std::slice::from_ref(&fixed), &[], envelope, &opts);
    let headers = vec![
        ("stem-signature".to_owned(), sig),
        ("stem-signature-key".to_owned(), key_id),
    ];
    let _ = Profile::Stem.verify(std::slice::from_ref(&fixed), &headers, envelope, &opts);
    if let (Ok(before), Ok(attached)) = (
        stem::canonical_bytes(envelope),
        stem::attach_signature(envelope, &headers),
    ) {
        // Attaching a signature never changes what is signed.
        assert_eq!(stem::canonical_bytes(&attached).ok(), Some(before));
    }
    if let Ok(k) = Profile::Stem.parse_key(&key) {
        let _ = Profile::Stem.verify(&[k], &headers, envelope, &opts);
    }
});
