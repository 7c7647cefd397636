//! Every case of `vectors/standard_webhooks.json` (Standard Webhooks v1 and
//! v1a, from the spec repository's and svix-server's tests), with the clock
//! pinned to each vector's timestamp.

use serde::Deserialize;
use signet_sign::standard::{
    self, format_secret, parse_secret, sign, verify, Verified, SVIX_HEADERS,
};
use signet_sign::{Error, Key, KeyId, KeyMaterial, KeyRing, DEFAULT_TOLERANCE_SECS};

const SOURCE: &str = "vectors/standard_webhooks.json";

#[derive(Deserialize)]
struct File {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    name: String,
    kind: String,
    secret: Option<String>,
    secret_key: Option<String>,
    public_key: Option<String>,
    msg_id: Option<String>,
    timestamp: Option<i64>,
    payload: Option<String>,
    signed_content: Option<String>,
    expected_signature: Option<String>,
    signature_header: Option<String>,
    signature_header_cases_all_invalid: Option<Vec<String>>,
    valid: Option<bool>,
    note: Option<String>,
    rule: Option<String>,
}

fn load() -> Vec<Vector> {
    let file: File = serde_json::from_str(&crate::vector_file("standard_webhooks.json"))
        .unwrap_or_else(|e| panic!("{SOURCE}: {e}"));
    assert!(!file.vectors.is_empty(), "{SOURCE} has no vectors");
    file.vectors
}

fn ring_of(material: KeyMaterial) -> KeyRing {
    KeyRing::single(Key::new(KeyId::new("vector").unwrap(), material))
}

fn ring(secret: &str) -> KeyRing {
    ring_of(parse_secret(secret).unwrap())
}

/// Verifies `header` as the signature of vector `v`'s message, with its
/// secret and the clock at its timestamp.
fn verify_received(v: &Vector, header: &str) -> Result<Verified, Error> {
    let ts = v.timestamp.unwrap();
    verify(
        &ring(v.secret.as_deref().unwrap()),
        v.msg_id.as_deref().unwrap(),
        &ts.to_string(),
        header,
        v.payload.as_deref().unwrap().as_bytes(),
        ts,
        DEFAULT_TOLERANCE_SECS,
    )
}

/// The first vector with an expected HMAC signature, the base for the
/// freshness rules.
fn base(vectors: &[Vector]) -> &Vector {
    vectors
        .iter()
        .find(|v| v.kind == "v1" && v.expected_signature.is_some())
        .expect("a signing vector")
}

#[test]
fn every_vector_passes() {
    let vectors = load();
    let mut ran = 0;
    for v in &vectors {
        let name = &v.name;
        if let (Some(sig), Some(ts)) = (&v.expected_signature, v.timestamp) {
            let id = v.msg_id.as_deref().unwrap();
            let body = v.payload.as_deref().unwrap().as_bytes();
            if let Some(content) = &v.signed_content {
                assert_eq!(
                    content.as_bytes(),
                    [id.as_bytes(), b".", ts.to_string().as_bytes(), b".", body].concat(),
                    "{SOURCE} {name}: signed content"
                );
            }
            let (signer, verifier) = match v.kind.as_str() {
                "v1" => (
                    ring(v.secret.as_deref().unwrap()),
                    ring(v.secret.as_deref().unwrap()),
                ),
                "v1a" => {
                    let public = v.public_key.as_deref().unwrap();
                    let signer = ring(v.secret_key.as_deref().unwrap());
                    // The whsk_ public half must be the whpk_ key.
                    assert_eq!(
                        format_secret(&signer.keys()[0].material().to_verifying()),
                        public,
                        "{SOURCE} {name}"
                    );
                    (signer, ring(public))
                }
                other => panic!("{SOURCE} {name}: unknown kind {other}"),
            };
            assert_eq!(
                &sign(&signer, id, ts, body).unwrap(),
                sig,
                "{SOURCE} {name}: signature"
            );
            let ts_text = ts.to_string();
            let check = |now: i64| verify(&verifier, id, &ts_text, sig, body, now, 300);
            let ok = check(ts).unwrap_or_else(|e| panic!("{SOURCE} {name}: {e}"));
            assert_eq!(ok.key_id.as_str(), "vector");
            assert_eq!(v.valid, Some(true), "{SOURCE} {name}");
            ran += 1;
        } else if let Some(header) = &v.signature_header {
            let result = verify_received(v, header);
            assert_eq!(
                result.is_ok(),
                v.valid.unwrap(),
                "{SOURCE} {name}: {result:?}"
            );
            if let Err(e) = result {
                assert!(e.is_mismatch(), "{SOURCE} {name}: {e}");
            }
            ran += 1;
        } else if let Some(cases) = &v.signature_header_cases_all_invalid {
            for header in cases {
                let err = verify_received(v, header).expect_err(header);
                // Truncated or empty entries are unreadable, not mismatches.
                assert!(err.is_malformed(), "{SOURCE} {name} {header:?}: {err}");
            }
            assert_eq!(v.valid, Some(false));
            ran += 1;
        } else if let Some(note) = &v.note {
            secret_equivalences(&vectors, name, note);
            ran += 1;
        } else if let Some(rule) = &v.rule {
            freshness_rules(&vectors, name, rule);
            ran += 1;
        } else {
            panic!("{SOURCE} {name}: a vector of a shape this test does not know");
        }
    }
    assert_eq!(ran, vectors.len(), "every vector ran");
}

/// `sw_secret_prefix_and_padding`: every `'a' == 'b'` pair in the note
/// parses to the same key, and signs the same.
fn secret_equivalences(vectors: &[Vector], name: &str, note: &str) {
    let (_, list) = note
        .split_once("Equivalent secrets:")
        .unwrap_or_else(|| panic!("{SOURCE} {name}: note lists no equivalences"));
    let pairs: Vec<(&str, &str)> = list
        .split(';')
        .filter_map(|part| {
            let (a, b) = part.split_once("==")?;
            Some((unquote(a)?, unquote(b)?))
        })
        .collect();
    assert_eq!(pairs.len(), 3, "{SOURCE} {name}: equivalences in the note");
    let b = base(vectors);
    let (id, ts, body) = (
        b.msg_id.as_deref().unwrap(),
        b.timestamp.unwrap(),
        b.payload.as_deref().unwrap().as_bytes(),
    );
    for (a, c) in pairs {
        let ka = parse_secret(a).unwrap_or_else(|e| panic!("{SOURCE} {name} {a:?}: {e}"));
        let kc = parse_secret(c).unwrap_or_else(|e| panic!("{SOURCE} {name} {c:?}: {e}"));
        assert_eq!(format_secret(&ka), format_secret(&kc), "{SOURCE} {name}");
        let sa = sign(&ring_of(ka), id, ts, body).unwrap();
        let sc = sign(&ring_of(kc), id, ts, body).unwrap();
        assert_eq!(sa, sc, "{SOURCE} {name}: {a:?} vs {c:?}");
    }
    // The prefixed form of the base vector signs like the official vector.
    let bare = b.secret.as_deref().unwrap().trim_start_matches("whsec_");
    assert_eq!(
        Some(sign(&ring(bare), id, ts, body).unwrap()),
        b.expected_signature
    );
}

/// `s` without surrounding whitespace and single quotes.
fn unquote(s: &str) -> Option<&str> {
    s.trim().strip_prefix('\'')?.strip_suffix('\'')
}

/// `sw_timestamp_tolerance`: now±301 fails, ±300 passes, a non-integer
/// timestamp fails, each missing header fails, an empty secret is a
/// construction error.
fn freshness_rules(vectors: &[Vector], name: &str, rule: &str) {
    assert!(
        rule.contains("300"),
        "{SOURCE} {name}: rule changed: {rule}"
    );
    let b = base(vectors);
    let r = ring(b.secret.as_deref().unwrap());
    let (id, ts, body, sig) = (
        b.msg_id.as_deref().unwrap(),
        b.timestamp.unwrap(),
        b.payload.as_deref().unwrap().as_bytes(),
        b.expected_signature.as_deref().unwrap(),
    );
    let ts_text = ts.to_string();
    let at = |now: i64| verify(&r, id, &ts_text, sig, body, now, DEFAULT_TOLERANCE_SECS);
    assert!(
        at(ts + 300).is_ok() && at(ts - 300).is_ok(),
        "{SOURCE} {name}"
    );
    let old = at(ts + 301).unwrap_err();
    assert!(old.is_too_old(), "{old}");
    assert_eq!(
        old.to_string(),
        "timestamp is 301 s old; tolerance is 300 s"
    );
    let new = at(ts - 301).unwrap_err();
    assert!(new.is_too_new(), "{new}");
    assert_eq!(
        new.to_string(),
        "timestamp is 301 s in the future; tolerance is 300 s"
    );
    for bad in ["hello", "1614265330.5", "-1614265330", " ", "1e9"] {
        let e = verify(&r, id, bad, sig, body, ts, 300).unwrap_err();
        assert!(e.is_malformed() || e.is_missing(), "{bad:?}: {e}");
    }
    assert!(verify(&r, "", &ts_text, sig, body, ts, 300)
        .unwrap_err()
        .is_missing());
    assert!(verify(&r, id, "", sig, body, ts, 300)
        .unwrap_err()
        .is_missing());
    assert!(verify(&r, id, &ts_text, "", body, ts, 300)
        .unwrap_err()
        .is_missing());
    for empty in ["", "whsec_"] {
        assert!(parse_secret(empty).unwrap_err().is_config(), "{empty:?}");
    }
    // The same message under Svix header names verifies the same way.
    let opts = standard::VerifyOptions::new(ts);
    let e = standard::verify_with_names(&SVIX_HEADERS, &r, id, "", sig, body, &opts).unwrap_err();
    assert_eq!(e.to_string(), "svix-timestamp header is missing or empty");
}

#[test]
fn rotation_overlap_puts_one_signature_per_key_and_either_verifies() {
    let vectors = load();
    let b = base(&vectors);
    let (id, ts, body) = (
        b.msg_id.as_deref().unwrap(),
        b.timestamp.unwrap(),
        b.payload.as_deref().unwrap().as_bytes(),
    );
    let old = Key::new(
        KeyId::new("old").unwrap(),
        parse_secret(b.secret.as_deref().unwrap()).unwrap(),
    );
    let new = Key::new(
        KeyId::new("new").unwrap(),
        KeyMaterial::Ed25519Private(signet_sign::Ed25519SecretKey::from_seed(&[4; 32]).unwrap()),
    );
    let mut ring = KeyRing::new(
        vec![old.duplicate(), new.duplicate()],
        Some(KeyId::new("new").unwrap()),
    )
    .unwrap();
    ring.set_also_signs("old", true).unwrap();
    let header = sign(&ring, id, ts, body).unwrap();
    let entries: Vec<&str> = header.split(' ').collect();
    assert_eq!(entries.len(), 2);
    assert!(entries[0].starts_with("v1a,"));
    // The HMAC entry is the official vector's signature.
    assert_eq!(Some(entries[1]), b.expected_signature.as_deref());
    let ts_text = ts.to_string();
    for (key, expect) in [(old, "old"), (new, "new")] {
        let receiver = KeyRing::single(key).verify_only();
        let ok = verify(&receiver, id, &ts_text, &header, body, ts, 300).unwrap();
        assert_eq!(ok.key_id.as_str(), expect);
    }
    let both = ring.verify_only();
    let e = verify(&both, id, &ts_text, &header, b"other", ts, 300).unwrap_err();
    assert_eq!(
        e.to_string(),
        "no signature matched any of 2 keys (body 5 bytes; was the body re-serialised?)"
    );
}
