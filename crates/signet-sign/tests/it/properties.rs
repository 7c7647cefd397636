//! Property tests: sign → verify round trips (HMAC and Ed25519, Standard
//! Webhooks and task envelopes); a change to any single byte of body, id,
//! timestamp, signature or key id is rejected; the envelope encoding is
//! injective (a decoder written from `docs/task-envelope.md` recovers every
//! envelope from its canonical bytes).

use std::collections::BTreeMap;

use proptest::prelude::*;
use signet_sign::standard::{sign, verify};
use signet_sign::{Ed25519SecretKey, HmacSecret, Key, KeyId, KeyMaterial, KeyRing, TaskEnvelope};

/// A tolerance so wide that only the signature decides.
const ANY_TIME: i64 = i64::MAX;

fn ring(ed25519: bool, seed: u8) -> KeyRing {
    let material = if ed25519 {
        KeyMaterial::Ed25519Private(Ed25519SecretKey::from_seed(&[seed; 32]).unwrap())
    } else {
        KeyMaterial::Hmac(HmacSecret::new(vec![seed; 32]).unwrap())
    };
    KeyRing::single(Key::new(KeyId::new("prop-key").unwrap(), material))
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    }
}

/// Replaces byte `at` of ASCII text with a different printable ASCII byte.
fn change_ascii(text: &str, at: usize, to: u8) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let i = at % bytes.len();
    let mut new = b' ' + (to % 95);
    if new == bytes[i] {
        new = if new == b'~' { b' ' } else { new + 1 };
    }
    bytes[i] = new;
    String::from_utf8(bytes).unwrap()
}

/// Like [`change_ascii`] for a `webhook-signature` header, never writing a
/// space. A space separates signatures in that header, so replacing the
/// first `=` of the padding with one leaves the same signature (unpadded)
/// followed by a token that is ignored: the format allows it, and it is not
/// a different signature. Every other single change must be refused.
fn change_header(header: &str, at: usize, to: u8) -> String {
    let changed = change_ascii(header, at, to);
    if changed.contains(' ') {
        change_ascii(header, at, to.wrapping_add(1))
    } else {
        changed
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn standard_round_trip_and_single_byte_changes_fail(
        ed25519 in any::<bool>(),
        seed in any::<u8>(),
        id in "[A-Za-z0-9_]{1,32}",
        ts in 0i64..4_000_000_000,
        body in proptest::collection::vec(any::<u8>(), 0..200),
        at in any::<usize>(),
        to in any::<u8>(),
    ) {
        let r = ring(ed25519, seed);
        let receiver = r.verify_only();
        let header = sign(&r, &id, ts, &body).unwrap();
        let ts_text = ts.to_string();
        prop_assert!(verify(&receiver, &id, &ts_text, &header, &body, ts, 300).is_ok());

        if !body.is_empty() {
            let mut changed = body.clone();
            let i = at % changed.len();
            changed[i] ^= to | 1;
            let e = verify(&receiver, &id, &ts_text, &header, &changed, ts, 300).unwrap_err();
            prop_assert!(e.is_mismatch(), "{}", e);
        }
        let other_id = change_ascii(&id, at, to);
        prop_assert!(verify(&receiver, &other_id, &ts_text, &header, &body, ts, 300).is_err());
        // Any other digit string: wide tolerance, so the signature decides.
        let other_ts = {
            let mut digits = ts_text.clone().into_bytes();
            let i = at % digits.len();
            digits[i] = b'0' + (digits[i] - b'0' + 1 + to % 9) % 10;
            String::from_utf8(digits).unwrap()
        };
        let e = verify(&receiver, &id, &other_ts, &header, &body, ts, ANY_TIME).unwrap_err();
        prop_assert!(e.is_mismatch() || e.is_malformed(), "{}", e);
        let other_header = change_header(&header, at, to);
        prop_assert!(verify(&receiver, &id, &ts_text, &other_header, &body, ts, 300).is_err(),
            "{} accepted", other_header);
        // The same message under a different key is refused.
        let stranger = ring(ed25519, seed.wrapping_add(1)).verify_only();
        prop_assert!(verify(&stranger, &id, &ts_text, &header, &body, ts, 300).is_err());
    }

    #[test]
    fn envelope_round_trip_and_single_byte_changes_fail(
        ed25519 in any::<bool>(),
        seed in any::<u8>(),
        env in envelope(),
        at in any::<usize>(),
        to in any::<u8>(),
    ) {
        let r = ring(ed25519, seed);
        let receiver = r.verify_only();
        let sig = env.sign(&r).unwrap();
        let key_id = sig.key_id.as_str();
        let verified = env.verify(sig.alg, key_id, &sig.sig, &receiver).unwrap();
        prop_assert_eq!(verified.as_str(), key_id);

        let mut bad_sig = sig.sig.clone();
        let i = at % bad_sig.len();
        bad_sig[i] ^= to | 1;
        let e = env.verify(sig.alg, key_id, &bad_sig, &receiver).unwrap_err();
        prop_assert!(e.is_mismatch(), "{}", e);

        let other_key = change_ascii(key_id, at, to);
        let e = env.verify(sig.alg, &other_key, &sig.sig, &receiver).unwrap_err();
        prop_assert!(e.is_unknown_key(), "{}", e);

        // Change one byte of the canonical bytes' content: id, args, a header.
        let mut changed = env.clone();
        if !changed.args.is_empty() {
            let i = at % changed.args.len();
            changed.args[i] ^= to | 1;
        } else {
            changed.id = change_ascii(&changed.id, at, to);
        }
        let e = changed.verify(sig.alg, key_id, &sig.sig, &receiver).unwrap_err();
        prop_assert!(e.is_mismatch(), "{}", e);
    }

    #[test]
    fn envelope_encoding_is_injective(a in envelope(), b in envelope()) {
        let (ba, bb) = (a.canonical_bytes().unwrap(), b.canonical_bytes().unwrap());
        prop_assert_eq!(&decode(&ba), &a);
        prop_assert_eq!(a == b, ba == bb);
    }
}

proptest! {
    #![proptest_config(config())]

    /// Bad configuration never panics and no error quotes key material.
    #[test]
    fn config_errors_never_echo_secrets(
        secret in proptest::collection::vec(any::<u8>(), 1..70),
        junk in "[ -~]{0,6}",
        var in 0usize..3,
        id in "[a-z0-9:]{0,6}",
        extra in proptest::collection::vec(("[A-Z_]{0,24}", "[ -~]{0,40}"), 0..3),
    ) {
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(&secret);
        let name = [
            "SIGNET_SIGNING_KEYS",
            "SIGNET_SIGNING_PRIVATE_KEYS",
            "SIGNET_SIGNING_PUBLIC_KEYS",
        ][var];
        let mut vars = vec![(name.to_owned(), format!("{id}:{encoded}{junk}"))];
        vars.extend(extra.into_iter().map(|(k, v)| (format!("SIGNET_SIGNING_{k}"), v)));
        if let Err(e) = signet_sign::SigningConfig::from_vars(vars) {
            prop_assert!(e.is_config());
            if encoded.len() >= 8 {
                prop_assert!(!e.to_string().contains(&encoded[..8]), "{}", e);
            }
        }
        if let Err(e) = signet_sign::standard::parse_secret(&format!("{junk}{encoded}")) {
            if encoded.len() >= 8 {
                prop_assert!(!e.to_string().contains(&encoded[..8]), "{}", e);
            }
        }
    }

    /// Arbitrary header values never panic a verifier and always get a
    /// verification error (never a config or usage error).
    #[test]
    fn arbitrary_headers_are_refused_cleanly(
        id in "[ -~]{0,40}",
        ts in "[ -~]{0,24}",
        sig in "(v1a?,)?[ -~]{0,100}",
        key_id in "[ -~]{0,80}",
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let r = ring(false, 1);
        if let Err(e) = verify(&r, &id, &ts, &sig, &body, 1_700_000_000, 300) {
            prop_assert!(e.is_verification(), "{}", e);
        }
        if let Err(e) = signet_sign::EnvelopeSignature::from_headers(&sig, &key_id) {
            prop_assert!(e.is_verification(), "{}", e);
        }
    }
}

/// Envelopes over tiny alphabets, so that fields often shift into one
/// another (`id="ab", queue=""` against `id="a", queue="b"`) and optional
/// fields are absent, empty or present.
fn envelope() -> impl Strategy<Value = TaskEnvelope> {
    let small = || "[ab]{0,3}";
    let opt_text = || proptest::option::of("[ab]{0,2}");
    let opt_num = || proptest::option::of(-2i64..3);
    (
        "[ab]{1,3}",
        small(),
        small(),
        proptest::collection::vec(prop_oneof![Just(b'a'), Just(0u8), Just(0xff)], 0..4),
        proptest::collection::btree_map("[ab]{1,2}", "[ab]{0,2}", 0..3),
        -2i64..3,
        opt_num(),
        opt_num(),
        0u32..3,
        opt_text(),
    )
        .prop_map(
            |(id, queue, name, args, headers, created, nb, exp, max, cb)| TaskEnvelope {
                id,
                queue,
                name,
                args,
                headers,
                created_at_ms: created,
                not_before_ms: nb,
                expires_at_ms: exp,
                max_attempts: max,
                callback_url: cb,
            },
        )
}

/// A decoder for `signet.task.v1`, written from `docs/task-envelope.md`.
/// That it recovers every envelope proves the encoding is injective.
fn decode(bytes: &[u8]) -> TaskEnvelope {
    struct Reader<'a>(&'a [u8]);
    impl Reader<'_> {
        fn u32(&mut self) -> u32 {
            let (head, rest) = self.0.split_at(4);
            self.0 = rest;
            u32::from_be_bytes(head.try_into().unwrap())
        }
        fn field(&mut self) -> Option<Vec<u8>> {
            let len = self.u32();
            if len == u32::MAX {
                return None;
            }
            let (head, rest) = self.0.split_at(len as usize);
            self.0 = rest;
            Some(head.to_vec())
        }
        fn text(&mut self) -> String {
            String::from_utf8(self.field().expect("present")).unwrap()
        }
        fn opt_text(&mut self) -> Option<String> {
            self.field().map(|f| String::from_utf8(f).unwrap())
        }
    }
    let (tag, rest) = bytes.split_at(14);
    assert_eq!(tag, b"signet.task.v1");
    let mut r = Reader(rest);
    let id = r.text();
    let queue = r.text();
    let name = r.text();
    let args = r.field().expect("args");
    let count = r.u32();
    let mut headers = BTreeMap::new();
    let mut last: Option<String> = None;
    for _ in 0..count {
        let k = r.text();
        assert!(
            last.as_ref().is_none_or(|l| *l < k),
            "sorted, no duplicates"
        );
        last = Some(k.clone());
        headers.insert(k, r.text());
    }
    let created_at_ms = r.text().parse().unwrap();
    let not_before_ms = r.opt_text().map(|t| t.parse().unwrap());
    let expires_at_ms = r.opt_text().map(|t| t.parse().unwrap());
    let max_attempts = r.text().parse().unwrap();
    let callback_url = r.opt_text();
    assert!(r.0.is_empty(), "trailing bytes");
    TaskEnvelope {
        id,
        queue,
        name,
        args,
        headers,
        created_at_ms,
        not_before_ms,
        expires_at_ms,
        max_attempts,
        callback_url,
    }
}
