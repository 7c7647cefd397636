//! Compatibility profiles against `vectors/seed_schemes.json` (Stem, Inngest,
//! Krafter, Stromboli), independently computed values (GitHub, Stripe), and
//! property tests for every profile.
//!
//! `seed_schemes.json` → `stromboli.rate_limit_client_ip` is not about
//! signatures: it belongs to the client-IP / rate-limit work in
//! `signet-server` (a different issue), whose tests load it. It is
//! deliberately not read here.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use proptest::prelude::*;
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;
use signet_sign::profiles::{inngest, stem, ProfileKey, SignRequest, VerifyOptions};
use signet_sign::{Error, Profile};

const SEED_SCHEMES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../vectors/seed_schemes.json"
);
const STANDARD_WEBHOOKS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../vectors/standard_webhooks.json"
);

#[derive(Deserialize)]
struct SeedSchemes {
    stem: Vec<StemCase>,
    inngest: Vec<InngestCase>,
    krafter: Vec<KrafterCase>,
    stromboli: Stromboli,
}

#[derive(Deserialize)]
struct StemCase {
    name: String,
    algorithm: String,
    env: BTreeMap<String, String>,
    envelope_wire: Value,
    canonical_string: Option<String>,
    expected_headers: Option<BTreeMap<String, String>>,
    expected_result: Option<String>,
}

#[derive(Deserialize)]
struct InngestCase {
    name: String,
    kind: String,
    signing_key: Option<String>,
    signing_key_primary: Option<String>,
    signing_key_fallback: Option<String>,
    body_json: Option<Value>,
    body_raw: Option<String>,
    canonical_body: Option<String>,
    timestamp: Option<i64>,
    expected_header: Option<String>,
    expected_header_if_raw_bytes_signed: Option<String>,
    expected_bearer_go_js: Option<String>,
    expected_bearer_python: Option<String>,
    expected_bearer_primary: Option<String>,
    expected_bearer_fallback: Option<String>,
}

#[derive(Deserialize)]
struct KrafterCase {
    name: String,
    secret: String,
    body: String,
    job_id: Option<String>,
    timestamp: Option<String>,
    expected_signature: String,
}

#[derive(Deserialize)]
struct Stromboli {
    signatures: Vec<StromboliCase>,
    // `rate_limit_client_ip` is left unread on purpose (see the module docs).
}

#[derive(Deserialize)]
struct StromboliCase {
    name: String,
    secret: String,
    timestamp: String,
    body: String,
    signed_bytes: Option<String>,
    expected_signature: String,
}

fn vectors() -> SeedSchemes {
    let text = std::fs::read_to_string(SEED_SCHEMES).expect("read vectors/seed_schemes.json");
    serde_json::from_str(&text).expect("parse vectors/seed_schemes.json")
}

fn owned(headers: &[(&str, &str)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
}

// ---------------------------------------------------------------- Stem

/// The keys of a Stem case from its `STEM_SIGNING_*` variables, the active
/// key first (the first key is the one that signs).
fn stem_keys(case: &StemCase, public_only: bool) -> Vec<ProfileKey> {
    let active = case
        .env
        .get("STEM_SIGNING_ACTIVE_KEY")
        .cloned()
        .unwrap_or_default();
    let mut texts: Vec<(bool, String)> = Vec::new();
    let mut add = |var: &str, prefix: &str| {
        if let Some(list) = case.env.get(var) {
            for entry in list.split(',') {
                let is_active = entry.split(':').next() == Some(active.as_str());
                texts.push((is_active, format!("{prefix}{entry}")));
            }
        }
    };
    match case.algorithm.as_str() {
        "hmac-sha256" => add("STEM_SIGNING_KEYS", ""),
        "ed25519" if public_only => add("STEM_SIGNING_PUBLIC_KEYS", "ed25519-public:"),
        "ed25519" => add("STEM_SIGNING_PRIVATE_KEYS", "ed25519:"),
        other => panic!("{}: unknown algorithm {other}", case.name),
    }
    texts.sort_by_key(|(is_active, _)| !is_active);
    texts
        .iter()
        .map(|(_, t)| Profile::Stem.parse_key(t).expect("stem key"))
        .collect()
}

#[test]
fn stem_vectors() {
    let cases = vectors().stem;
    assert_eq!(cases.len(), 6, "every stem case runs");
    for case in &cases {
        let body = serde_json::to_vec(&case.envelope_wire).unwrap();
        if let Some(canonical) = &case.canonical_string {
            let ours = stem::canonical_bytes(&body).unwrap();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                *canonical,
                "{}",
                case.name
            );
        }
        let keys = stem_keys(case, false);
        // Stem carries no timestamp; the clock is irrelevant but must be given.
        let opts = VerifyOptions::new(0);
        if let Some(expected) = &case.expected_headers {
            let req = SignRequest {
                id: "",
                timestamp: 0,
                body: &body,
            };
            let signed = Profile::Stem.sign(&keys, &req).unwrap();
            let signed_map: BTreeMap<String, String> = signed.iter().cloned().collect();
            assert_eq!(&signed_map, expected, "{}", case.name);

            // From HTTP headers …
            let ok = Profile::Stem.verify(&keys, &signed, &body, &opts).unwrap();
            assert_eq!(
                ok.key_label, expected["stem-signature-key"],
                "{}",
                case.name
            );
            assert!(ok.warnings.iter().any(|w| w.contains("replay")));
            // … and from the envelope's own headers map, as Stem stores it.
            let mut envelope = case.envelope_wire.clone();
            for (k, v) in expected {
                envelope["headers"][k] = Value::String(v.clone());
            }
            let inner = serde_json::to_vec(&envelope).unwrap();
            assert!(
                Profile::Stem.verify(&keys, &[], &inner, &opts).is_ok(),
                "{}",
                case.name
            );
            // Ed25519: a verify-only ring of public keys works too.
            if case.algorithm == "ed25519" {
                let public = stem_keys(case, true);
                assert!(Profile::Stem.verify(&public, &[], &inner, &opts).is_ok());
                assert!(Profile::Stem
                    .sign(&public, &req)
                    .unwrap_err()
                    .is_unsupported());
            }
        }
        if let Some(expected) = &case.expected_result {
            // Negative: the signature sits in the envelope's headers.
            let err = Profile::Stem.verify(&keys, &[], &body, &opts).unwrap_err();
            if expected.contains("signature mismatch") {
                assert!(err.is_mismatch(), "{}: {err}", case.name);
            } else if expected.contains("unknown signing key") {
                assert!(err.is_unknown_key(), "{}: {err}", case.name);
                assert!(err.to_string().contains("rotated"), "{err}");
            } else {
                panic!("{}: unrecognised expected_result {expected}", case.name);
            }
        }
    }
}

// ------------------------------------------------------------- Inngest

fn inngest_body(case: &InngestCase) -> Vec<u8> {
    match (&case.body_json, &case.body_raw) {
        (Some(json), None) => serde_json::to_vec(json).unwrap(),
        (None, Some(raw)) => raw.as_bytes().to_vec(),
        _ => panic!("{}: needs exactly one of body_json, body_raw", case.name),
    }
}

fn inngest_key(text: &str) -> ProfileKey {
    Profile::Inngest.parse_key(text).expect("inngest key")
}

#[test]
fn inngest_vectors() {
    let cases = vectors().inngest;
    assert_eq!(cases.len(), 8, "every inngest case runs");
    for case in &cases {
        match case.kind.as_str() {
            "request" => inngest_request(case),
            "response" => {
                let key = inngest_key(case.signing_key.as_deref().unwrap());
                let body = inngest_body(case);
                let ts = case.timestamp.unwrap();
                let expected = case.expected_header.as_deref().unwrap();
                assert_eq!(inngest::sign_response(&key, &body, ts).unwrap(), expected);
                let keys = [key];
                let opts = VerifyOptions::new(ts);
                assert!(inngest::verify_response(&keys, expected, &body, &opts).is_ok());
                let late = VerifyOptions::new(ts + 301);
                assert!(inngest::verify_response(&keys, expected, &body, &late)
                    .unwrap_err()
                    .is_too_old());
            }
            "hashed_key" => {
                let key = inngest_key(case.signing_key.as_deref().unwrap());
                let prefixed = case.expected_bearer_go_js.as_deref().unwrap();
                let bare = case.expected_bearer_python.as_deref().unwrap();
                assert_eq!(
                    inngest::bearer_token(&key).unwrap(),
                    prefixed,
                    "{}",
                    case.name
                );
                let keys = [key];
                assert!(inngest::verify_bearer(&keys, prefixed).is_ok());
                assert!(inngest::verify_bearer(&keys, bare).is_ok());
            }
            other => panic!("{}: unknown kind {other}", case.name),
        }
    }
}

fn inngest_request(case: &InngestCase) {
    let body = inngest_body(case);
    let ts = case.timestamp.unwrap();
    let expected = case.expected_header.as_deref().unwrap();
    if let Some(canonical) = &case.canonical_body {
        let ours = inngest::canonical_request_body(&body).unwrap();
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            *canonical,
            "{}",
            case.name
        );
    }
    let opts = VerifyOptions::new(ts);
    let received = owned(&[("x-inngest-signature", expected)]);
    let req = SignRequest {
        id: "",
        timestamp: ts,
        body: &body,
    };
    // `signers` sign the vector's header, and `keys` verify it.
    let sign_then_verify = |signers: &[ProfileKey], keys: &[ProfileKey]| {
        let signed = Profile::Inngest.sign(signers, &req).unwrap();
        assert_eq!(
            header(&signed, "X-Inngest-Signature"),
            expected,
            "{}",
            case.name
        );
        Profile::Inngest
            .verify(keys, &received, &body, &opts)
            .unwrap()
    };

    if let (Some(primary), Some(fallback)) = (&case.signing_key_primary, &case.signing_key_fallback)
    {
        // Primary fails, fallback verifies; the response is signed with the fallback.
        let keys = [inngest_key(primary), inngest_key(fallback)];
        let ok = sign_then_verify(&keys[1..], &keys);
        assert_eq!(ok.response_key, Some(1), "{}", case.name);
        assert_eq!(ok.key_label, "secret 2");
        let response = inngest::sign_response(&keys[1], b"ok", ts).unwrap();
        assert!(inngest::verify_response(&keys[1..], &response, b"ok", &opts).is_ok());
        assert!(
            inngest::verify_response(&keys[..1], &response, b"ok", &opts)
                .unwrap_err()
                .is_mismatch()
        );
        assert!(Profile::Inngest
            .verify(&keys[..1], &received, &body, &opts)
            .unwrap_err()
            .is_mismatch());
        assert_eq!(
            inngest::bearer_token(&keys[0]).unwrap(),
            case.expected_bearer_primary.as_deref().unwrap()
        );
        assert_eq!(
            inngest::bearer_token(&keys[1]).unwrap(),
            case.expected_bearer_fallback.as_deref().unwrap()
        );
        return;
    }

    let keys = [inngest_key(case.signing_key.as_deref().unwrap())];
    let ok = sign_then_verify(&keys, &keys);
    assert_eq!(ok.response_key, Some(0));

    // The same key as fallback behind another primary (the JS SDK's test).
    let other = inngest_key(
        "signkey-test-0000000000000000000000000000000000000000000000000000000000000000",
    );
    let both = [other, keys[0].duplicate()];
    let ok = Profile::Inngest
        .verify(&both, &received, &body, &opts)
        .unwrap();
    assert_eq!(ok.response_key, Some(1), "{}", case.name);

    // Clock pinned to the vector: 300 s either way passes, 301 s does not.
    let at = |now| VerifyOptions::new(now);
    assert!(Profile::Inngest
        .verify(&keys, &received, &body, &at(ts + 300))
        .is_ok());
    assert!(Profile::Inngest
        .verify(&keys, &received, &body, &at(ts - 300))
        .is_ok());
    assert!(Profile::Inngest
        .verify(&keys, &received, &body, &at(ts + 301))
        .unwrap_err()
        .is_too_old());
    assert!(Profile::Inngest
        .verify(&keys, &received, &body, &at(ts - 301))
        .unwrap_err()
        .is_too_new());

    if let Some(raw_signed) = &case.expected_header_if_raw_bytes_signed {
        // A sender that signed the raw bytes (the Rust SDK) is not accepted:
        // Inngest's other SDKs and Signet canonicalise first.
        let received = owned(&[("X-Inngest-Signature", raw_signed)]);
        assert!(Profile::Inngest
            .verify(&keys, &received, &body, &opts)
            .unwrap_err()
            .is_mismatch());
    }
}

// ------------------------------------------------------------- Krafter

#[test]
fn krafter_vectors() {
    let cases = vectors().krafter;
    assert_eq!(cases.len(), 3, "every krafter case runs");
    for case in &cases {
        let keys = [Profile::Krafter.parse_key(&case.secret).unwrap()];
        let ts: i64 = case.timestamp.as_deref().map_or(0, |t| t.parse().unwrap());
        let job_id = case.job_id.as_deref().unwrap_or("job-1");
        let req = SignRequest {
            id: job_id,
            timestamp: ts,
            body: case.body.as_bytes(),
        };
        let signed = Profile::Krafter.sign(&keys, &req).unwrap();
        assert_eq!(
            header(&signed, "x-krafter-signature"),
            case.expected_signature,
            "{}",
            case.name
        );
        assert_eq!(header(&signed, "x-krafter-job-id"), job_id);

        // Verification succeeds with a warning, whatever the clock says …
        let opts = VerifyOptions::new(ts);
        let ok = Profile::Krafter
            .verify(&keys, &signed, case.body.as_bytes(), &opts)
            .unwrap();
        assert!(
            ok.warnings.iter().any(|w| w.contains("not covered")),
            "{}",
            case.name
        );
        // … and changing the job id or timestamp changes nothing: not covered.
        let tampered = owned(&[
            ("X-Krafter-Signature", case.expected_signature.as_str()),
            ("x-krafter-job-id", "someone-else"),
            ("x-krafter-timestamp", "1"),
        ]);
        let far = VerifyOptions::new(ts + 10_000_000);
        let ok = Profile::Krafter
            .verify(&keys, &tampered, case.body.as_bytes(), &far)
            .unwrap();
        assert_eq!(ok.warnings.len(), 1);
        let mut body = case.body.clone().into_bytes();
        body.push(b' ');
        assert!(Profile::Krafter
            .verify(&keys, &tampered, &body, &far)
            .unwrap_err()
            .is_mismatch());
    }
}

// ----------------------------------------------------------- Stromboli

#[test]
fn stromboli_vectors() {
    let cases = vectors().stromboli.signatures;
    assert_eq!(cases.len(), 3, "every stromboli signature case runs");
    for case in &cases {
        let keys = [Profile::Stromboli.parse_key(&case.secret).unwrap()];
        let ts: i64 = case.timestamp.parse().unwrap();
        if let Some(signed_bytes) = &case.signed_bytes {
            assert_eq!(*signed_bytes, format!("{}.{}", case.timestamp, case.body));
        }
        let req = SignRequest {
            id: "",
            timestamp: ts,
            body: case.body.as_bytes(),
        };
        let signed = Profile::Stromboli.sign(&keys, &req).unwrap();
        assert_eq!(
            header(&signed, "X-Stromboli-Signature"),
            case.expected_signature,
            "{}",
            case.name
        );
        assert_eq!(header(&signed, "X-Stromboli-Timestamp"), case.timestamp);

        let body = case.body.as_bytes();
        assert!(Profile::Stromboli
            .verify(&keys, &signed, body, &VerifyOptions::new(ts))
            .is_ok());
        let bare = owned(&[
            ("x-stromboli-timestamp", case.timestamp.as_str()),
            (
                "x-stromboli-signature",
                case.expected_signature.trim_start_matches("sha256="),
            ),
        ]);
        assert!(Profile::Stromboli
            .verify(&keys, &bare, body, &VerifyOptions::new(ts))
            .is_ok());
        let err = Profile::Stromboli
            .verify(&keys, &signed, body, &VerifyOptions::new(ts + 412))
            .unwrap_err();
        assert!(err.is_too_old());
        assert!(
            err.to_string()
                .starts_with("timestamp is 412 s old; tolerance is 300 s"),
            "{err}"
        );
        assert!(Profile::Stromboli
            .verify(&keys, &signed, body, &VerifyOptions::new(ts - 301))
            .unwrap_err()
            .is_too_new());
    }
}

// ------------------------------------------- GitHub and Stripe (no vectors)

// No vectors for these two are in the repository; the expected values are
// computed here with the `hmac` crate directly, not through the profile code.

fn reference_hmac_hex(secret: &str, parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    for p in parts {
        mac.update(p);
    }
    hex::encode(mac.finalize().into_bytes())
}

#[test]
fn github_matches_an_independent_hmac() {
    let secret = "It's a Secret to Everybody";
    let body = b"Hello, World!";
    let keys = [Profile::Github.parse_key(secret).unwrap()];
    let req = SignRequest {
        id: "d-1",
        timestamp: 0,
        body,
    };
    let signed = Profile::Github.sign(&keys, &req).unwrap();
    let expected = format!("sha256={}", reference_hmac_hex(secret, &[body]));
    assert_eq!(header(&signed, "X-Hub-Signature-256"), expected);
    assert_eq!(header(&signed, "X-GitHub-Delivery"), "d-1");
    let received = owned(&[("x-hub-signature-256", &expected)]);
    let ok = Profile::Github
        .verify(&keys, &received, body, &VerifyOptions::new(0))
        .unwrap();
    assert!(ok.warnings.iter().any(|w| w.contains("replay")));
    let sha1_only = owned(&[("X-Hub-Signature", "sha1=00")]);
    let err = Profile::Github
        .verify(&keys, &sha1_only, body, &VerifyOptions::new(0))
        .unwrap_err();
    assert!(
        err.is_missing() && err.to_string().contains("SHA-1"),
        "{err}"
    );
}

#[test]
fn stripe_matches_an_independent_hmac() {
    let secrets = ["whsec_first_secret_value", "whsec_second_secret_value"];
    let body = br#"{"id":"evt_1","object":"event"}"#;
    let ts = 1_735_726_800_i64;
    let keys = Profile::Stripe.parse_keys(&secrets).unwrap();
    let req = SignRequest {
        id: "",
        timestamp: ts,
        body,
    };
    let signed = Profile::Stripe.sign(&keys, &req).unwrap();
    let t = ts.to_string();
    let v1a = reference_hmac_hex(secrets[0], &[t.as_bytes(), b".", body]);
    let v1b = reference_hmac_hex(secrets[1], &[t.as_bytes(), b".", body]);
    assert_eq!(
        header(&signed, "Stripe-Signature"),
        format!("t={ts},v1={v1a},v1={v1b}")
    );

    let opts = VerifyOptions::new(ts);
    // Unknown schemes are ignored; any v1 may match; the second key matches.
    let value = format!("t={ts},v0=ffff,v1={},v1={v1b}", "0".repeat(64));
    let received = owned(&[("stripe-signature", &value)]);
    let ok = Profile::Stripe
        .verify(&keys, &received, body, &opts)
        .unwrap();
    assert_eq!(ok.key_label, "secret 2");
    assert!(Profile::Stripe
        .verify(&keys[..1], &received, body, &opts)
        .unwrap_err()
        .is_mismatch());
    let err = Profile::Stripe
        .verify(&keys, &received, body, &VerifyOptions::new(ts + 412))
        .unwrap_err();
    assert!(
        err.is_too_old() && err.to_string().contains("412 s old"),
        "{err}"
    );
    let err = Profile::Stripe.verify(&keys, &[], body, &opts).unwrap_err();
    assert_eq!(err.to_string(), "Stripe-Signature header is missing");
}

#[test]
fn mismatch_messages_say_what_to_check() {
    let keys = Profile::Github.parse_keys(&["one", "two"]).unwrap();
    let received = owned(&[("X-Hub-Signature-256", &format!("sha256={}", "0".repeat(64)))]);
    let body = vec![b'x'; 57];
    let err = Profile::Github
        .verify(&keys, &received, &body, &VerifyOptions::new(0))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no signature matched any of 2 keys (body 57 bytes; was the body re-serialised?)"
    );
}

// ------------------------------------------------- standard and svix

/// The signing vectors of `standard_webhooks.json` through the dispatcher,
/// with both header namings. (Every case of that file, negative ones
/// included, runs against `signet_sign::standard` in `standard_webhooks.rs`.)
#[test]
fn standard_and_svix_sign_the_standard_webhooks_vectors() {
    let text = std::fs::read_to_string(STANDARD_WEBHOOKS).unwrap();
    let file: Value = serde_json::from_str(&text).unwrap();
    let mut ran = 0;
    for v in file["vectors"].as_array().unwrap() {
        let Some(expected) = v["expected_signature"].as_str() else {
            continue;
        };
        let secret = v["secret"].as_str().or(v["secret_key"].as_str()).unwrap();
        let ts = v["timestamp"].as_i64().unwrap();
        let id = v["msg_id"].as_str().unwrap();
        let body = v["payload"].as_str().unwrap().as_bytes();
        for (profile, prefix) in [(Profile::Standard, "webhook"), (Profile::Svix, "svix")] {
            let keys = [profile.parse_key(secret).unwrap()];
            let req = SignRequest {
                id,
                timestamp: ts,
                body,
            };
            let signed = profile.sign(&keys, &req).unwrap();
            assert_eq!(header(&signed, &format!("{prefix}-signature")), expected);
            assert_eq!(header(&signed, &format!("{prefix}-id")), id);
            let ok = profile
                .verify(&keys, &signed, body, &VerifyOptions::new(ts))
                .unwrap();
            assert_eq!(
                (ok.key_label.as_str(), ok.response_key),
                ("secret 1", Some(0))
            );
            if let Some(public) = v["public_key"].as_str() {
                let verify_only = [profile.parse_key(public).unwrap()];
                assert!(profile
                    .verify(&verify_only, &signed, body, &VerifyOptions::new(ts))
                    .is_ok());
                assert!(profile
                    .sign(&verify_only, &req)
                    .unwrap_err()
                    .is_unsupported());
            }
            ran += 1;
        }
    }
    assert!(ran >= 6, "ran {ran}");
}

#[test]
fn standard_signs_with_every_key_during_a_rotation() {
    let keys = Profile::Standard
        .parse_keys(&[
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        ])
        .unwrap();
    let req = SignRequest {
        id: "msg_1",
        timestamp: 1_700_000_000,
        body: b"{}",
    };
    let signed = Profile::Standard.sign(&keys, &req).unwrap();
    assert_eq!(header(&signed, "webhook-signature").split(' ').count(), 2);
    let opts = VerifyOptions::new(1_700_000_000);
    for (i, key) in keys.iter().enumerate() {
        let ok = Profile::Standard
            .verify(std::slice::from_ref(key), &signed, b"{}", &opts)
            .unwrap();
        assert_eq!(ok.key_label, "secret 1", "key {i} alone");
    }
    // svix-* headers are not webhook-* headers.
    let err = Profile::Svix
        .verify(&keys, &signed, b"{}", &opts)
        .unwrap_err();
    assert!(
        err.is_missing() && err.to_string().contains("svix-"),
        "{err}"
    );
}

// ------------------------------------------------------ property tests

fn mutate_byte(text: &str, index: usize, replacement: u8) -> Option<String> {
    let mut bytes = text.as_bytes().to_vec();
    let i = index % bytes.len().max(1);
    if bytes.is_empty() || bytes[i] == replacement {
        return None;
    }
    bytes[i] = replacement;
    String::from_utf8(bytes).ok()
}

fn with_header(headers: &[(String, String)], name: &str, value: String) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| {
            if n.eq_ignore_ascii_case(name) {
                (n.clone(), value.clone())
            } else {
                (n.clone(), v.clone())
            }
        })
        .collect()
}

/// How a property test tampers with a signed request: which byte (`index`,
/// taken modulo the length), the XOR mask for a body byte, and the
/// printable replacement for a header byte.
#[derive(Clone, Copy, Debug)]
struct Tamper {
    index: usize,
    xor: u8,
    replacement: u8,
}

fn arb_tamper() -> impl Strategy<Value = Tamper> {
    (any::<usize>(), 1u8..=255, 0x21u8..0x7f).prop_map(|(index, xor, replacement)| Tamper {
        index,
        xor,
        replacement,
    })
}

fn flip(body: &[u8], index: usize, xor: u8) -> Vec<u8> {
    let mut b = body.to_vec();
    let i = index % b.len();
    b[i] ^= xor;
    b
}

/// Round trip and single-byte tampering (body, signature header, covered
/// timestamp header) for the profiles whose keys are plain strings.
fn check_text_profile(
    profile: Profile,
    secret: &str,
    id: &str,
    ts: i64,
    body: &[u8],
    tamper: Tamper,
) -> Result<(), TestCaseError> {
    let Tamper {
        index,
        xor,
        replacement,
    } = tamper;
    let keys = [profile.parse_key(secret).unwrap()];
    let req = SignRequest {
        id,
        timestamp: ts,
        body,
    };
    let headers = profile.sign(&keys, &req).unwrap();
    let opts = VerifyOptions::new(ts);
    let ok = profile.verify(&keys, &headers, body, &opts).unwrap();
    prop_assert_eq!(ok.key_label, "secret 1");

    if !body.is_empty() {
        let tampered_body = flip(body, index, xor);
        prop_assert!(rejected(
            profile.verify(&keys, &headers, &tampered_body, &opts),
            secret
        ));
    }
    let (sig_name, ts_name) = match profile {
        Profile::Stromboli => ("X-Stromboli-Signature", Some("X-Stromboli-Timestamp")),
        Profile::Stripe => ("Stripe-Signature", None), // t= is inside the signature header
        Profile::Krafter => ("x-krafter-signature", None),
        Profile::Github => ("X-Hub-Signature-256", None),
        _ => unreachable!(),
    };
    if let Some(value) = mutate_byte(header(&headers, sig_name), index, replacement) {
        let tampered = with_header(&headers, sig_name, value);
        prop_assert!(rejected(
            profile.verify(&keys, &tampered, body, &opts),
            secret
        ));
    }
    if let Some(ts_name) = ts_name {
        if let Some(value) = mutate_byte(header(&headers, ts_name), index, replacement) {
            let tampered = with_header(&headers, ts_name, value);
            prop_assert!(rejected(
                profile.verify(&keys, &tampered, body, &opts),
                secret
            ));
        }
    }
    match profile {
        Profile::Krafter => {
            // Not covered: a changed timestamp or job id still verifies, with the warning.
            let tampered = with_header(&headers, "x-krafter-timestamp", (ts + 1).to_string());
            let tampered = with_header(&tampered, "x-krafter-job-id", format!("{id}x"));
            let ok = profile.verify(&keys, &tampered, body, &opts).unwrap();
            prop_assert!(ok.warnings.iter().any(|w| w.contains("not covered")));
        }
        Profile::Github => {
            // No timestamp at all: signing at another time gives the same signature.
            let later = profile
                .sign(
                    &keys,
                    &SignRequest {
                        timestamp: ts + 1,
                        ..req
                    },
                )
                .unwrap();
            prop_assert_eq!(header(&later, sig_name), header(&headers, sig_name));
            prop_assert!(!ok.warnings.is_empty());
        }
        _ => prop_assert!(ok.warnings.is_empty()),
    }
    Ok(())
}

/// Whether verification failed with a message that does not contain the
/// secret (checked when the secret is long enough not to appear by chance).
fn rejected<T>(result: Result<T, Error>, secret: &str) -> bool {
    match result {
        Ok(_) => false,
        Err(e) => secret.len() < 8 || !e.to_string().contains(secret),
    }
}

fn arb_text_profile() -> impl Strategy<Value = Profile> {
    prop_oneof![
        Just(Profile::Stromboli),
        Just(Profile::Krafter),
        Just(Profile::Github),
        Just(Profile::Stripe),
    ]
}

fn arb_args() -> impl Strategy<Value = BTreeMap<String, Value>> {
    prop::collection::btree_map(
        "[a-zé_]{1,8}",
        prop_oneof![
            any::<i64>().prop_map(Value::from),
            "[ -~é\n\"]{0,12}".prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            Just(Value::Null),
        ],
        0..5,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn text_profiles_round_trip_and_reject_tampering(
        profile in arb_text_profile(),
        secret in "[!-~]{1,40}",
        id in "[a-z0-9_]{1,20}",
        ts in 1_000_000_000i64..2_000_000_000,
        body in prop::collection::vec(any::<u8>(), 0..200),
        tamper in arb_tamper(),
    ) {
        check_text_profile(profile, &secret, &id, ts, &body, tamper)?;
    }

    #[test]
    fn inngest_round_trips_and_rejects_tampering(
        env in "[a-z]{1,6}",
        key_hex in "([0-9a-f]{2}){1,32}",
        args in arb_args(),
        ts in 1_000_000_000i64..2_000_000_000,
        tamper in arb_tamper(),
    ) {
        let Tamper { index, xor, replacement } = tamper;
        let keys = [Profile::Inngest.parse_key(&format!("signkey-{env}-{key_hex}")).unwrap()];
        let body = serde_json::to_vec(&args).unwrap();
        let req = SignRequest { id: "", timestamp: ts, body: &body };
        let headers = Profile::Inngest.sign(&keys, &req).unwrap();
        let opts = VerifyOptions::new(ts);
        prop_assert!(Profile::Inngest.verify(&keys, &headers, &body, &opts).is_ok());
        // A changed body verifies only if it canonicalises to the same bytes.
        let tampered = flip(&body, index, xor);
        if Profile::Inngest.verify(&keys, &headers, &tampered, &opts).is_ok() {
            prop_assert_eq!(
                inngest::canonical_request_body(&tampered).unwrap(),
                inngest::canonical_request_body(&body).unwrap()
            );
        }
        // The header holds both t= and s=: any changed byte is rejected.
        if let Some(value) = mutate_byte(header(&headers, "X-Inngest-Signature"), index, replacement) {
            let tampered = with_header(&headers, "X-Inngest-Signature", value);
            prop_assert!(Profile::Inngest.verify(&keys, &tampered, &body, &opts).is_err());
        }
        // A response signed with the key verifies and is bound to its body.
        let response = inngest::sign_response(&keys[0], &body, ts).unwrap();
        prop_assert!(inngest::verify_response(&keys, &response, &body, &opts).is_ok());
        let mut other = body.clone();
        other.push(b' ');
        prop_assert!(inngest::verify_response(&keys, &response, &other, &opts).is_err());
    }

    #[test]
    fn stem_round_trips_and_rejects_tampering(
        ed25519 in any::<bool>(),
        key_id in "[a-z][a-z0-9_-]{0,10}",
        secret in prop::collection::vec(any::<u8>(), 32..=32),
        hmac_len in 1usize..=32,
        args in arb_args(),
        name in "[a-z.]{1,12}",
        attempt in 0i64..10,
        micros in 0i64..1_000_000,
        tamper in arb_tamper(),
    ) {
        let Tamper { index, xor, replacement } = tamper;
        let text = if ed25519 {
            format!("ed25519:{key_id}:{}", STANDARD.encode(&secret))
        } else {
            format!("{key_id}:{}", STANDARD.encode(&secret[..hmac_len]))
        };
        let keys = [Profile::Stem.parse_key(&text).unwrap()];
        let envelope = serde_json::json!({
            "id": format!("id-{index}"),
            "name": name,
            "args": args,
            "headers": {"tenant": "acme"},
            "enqueuedAt": format!("2025-01-01T00:00:00.{micros:06}Z"),
            "notBefore": null,
            "priority": 0,
            "attempt": attempt,
            "maxRetries": 3,
            "visibilityTimeout": 30000,
            "queue": "default",
            "meta": {},
        });
        let body = serde_json::to_vec(&envelope).unwrap();
        let req = SignRequest { id: "", timestamp: 0, body: &body };
        let headers = Profile::Stem.sign(&keys, &req).unwrap();
        let opts = VerifyOptions::new(0);
        prop_assert!(Profile::Stem.verify(&keys, &headers, &body, &opts).is_ok());

        let tampered = flip(&body, index, xor);
        if Profile::Stem.verify(&keys, &headers, &tampered, &opts).is_ok() {
            prop_assert_eq!(
                stem::canonical_bytes(&tampered).unwrap(),
                stem::canonical_bytes(&body).unwrap()
            );
        }
        for name in ["stem-signature", "stem-signature-key"] {
            if let Some(value) = mutate_byte(header(&headers, name), index, replacement) {
                let tampered = with_header(&headers, name, value);
                prop_assert!(Profile::Stem.verify(&keys, &tampered, &body, &opts).is_err());
            }
        }
    }
}

proptest! {
    // Fewer cases: Ed25519 in an unoptimised test build is slow, and each
    // case signs with up to three keys.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn standard_and_svix_round_trip_and_reject_tampering(
        svix in any::<bool>(),
        kinds in prop::collection::vec(any::<bool>(), 1..4),
        seed in prop::collection::vec(any::<u8>(), 32..=32),
        id in "msg_[A-Za-z0-9]{1,24}",
        ts in 1_000_000_000i64..2_000_000_000,
        body in prop::collection::vec(any::<u8>(), 0..200),
        tamper in arb_tamper(),
    ) {
        let Tamper { index, xor, replacement } = tamper;
        let profile = if svix { Profile::Svix } else { Profile::Standard };
        let prefix = if svix { "svix" } else { "webhook" };
        // Each key HMAC (whsec_) or Ed25519 (whsk_), derived from the seed and its position.
        let texts: Vec<String> = kinds
            .iter()
            .enumerate()
            .map(|(i, &ed)| {
                let mut s = seed.clone();
                s[0] ^= i as u8;
                if ed {
                    let k = signet_sign::Ed25519SecretKey::from_seed(&s).unwrap();
                    let mut pair = s.clone();
                    pair.extend_from_slice(&k.public_key().to_bytes());
                    format!("whsk_{}", STANDARD.encode(pair))
                } else {
                    format!("whsec_{}", STANDARD.encode(&s))
                }
            })
            .collect();
        let keys = profile.parse_keys(&texts).unwrap();
        let req = SignRequest { id: &id, timestamp: ts, body: &body };
        let headers = profile.sign(&keys, &req).unwrap();
        let sig_name = format!("{prefix}-signature");
        prop_assert_eq!(header(&headers, &sig_name).split(' ').count(), keys.len());
        let opts = VerifyOptions::new(ts);
        prop_assert!(profile.verify(&keys, &headers, &body, &opts).is_ok());
        if !body.is_empty() {
            prop_assert!(profile.verify(&keys, &headers, &flip(&body, index, xor), &opts).is_err());
        }
        for name in ["id", "timestamp"] {
            let name = format!("{prefix}-{name}");
            if let Some(value) = mutate_byte(header(&headers, &name), index, replacement) {
                let tampered = with_header(&headers, &name, value);
                prop_assert!(profile.verify(&keys, &tampered, &body, &opts).is_err(), "{}", name);
            }
        }
        // One entry per key, in key order: a changed byte in entry `e` must
        // fail for key `e` (the other entries still match their own keys,
        // as a rotation overlap requires).
        let signature = header(&headers, &sig_name);
        let at = index % signature.len();
        if let Some(value) = mutate_byte(signature, at, replacement) {
            let entry = signature[..at].matches(' ').count();
            let tampered = with_header(&headers, &sig_name, value);
            prop_assert!(profile
                .verify(std::slice::from_ref(&keys[entry]), &tampered, &body, &opts)
                .is_err());
        }
    }
}

#[test]
fn errors_name_what_is_missing_or_wrong() {
    let cases: [(Profile, &str, &str); 4] = [
        (
            Profile::Stromboli,
            "s3cret",
            "X-Stromboli-Signature header is missing",
        ),
        (
            Profile::Krafter,
            "s3cret",
            "x-krafter-signature header is missing",
        ),
        (
            Profile::Github,
            "s3cret",
            "X-Hub-Signature-256 header is missing",
        ),
        (
            Profile::Inngest,
            "signkey-test-abab",
            "X-Inngest-Signature header is missing",
        ),
    ];
    for (profile, secret, message) in cases {
        let keys = [profile.parse_key(secret).unwrap()];
        let err: Error = profile
            .verify(&keys, &[], b"{}", &VerifyOptions::new(0))
            .unwrap_err();
        assert!(err.is_missing(), "{profile}: {err}");
        assert_eq!(err.to_string(), message);
    }
    let keys = [Profile::Stem
        .parse_key("primary:c2VjcmV0LXNlY3JldA==")
        .unwrap()];
    let err = Profile::Stem
        .verify(
            &keys,
            &[],
            br#"{"id":"1","name":"n","args":{},"enqueuedAt":"2025-01-01T00:00:00Z"}"#,
            &VerifyOptions::new(0),
        )
        .unwrap_err();
    assert!(
        err.is_missing() && err.to_string().contains("unsigned"),
        "{err}"
    );
}
