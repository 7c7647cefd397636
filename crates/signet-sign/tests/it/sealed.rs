//! Sealed secrets (`signet_sign::sealed`): round trips, tampering, wrong key
//! and owner, truncation, redaction, and Wycheproof XChaCha20-Poly1305
//! (`vectors/wycheproof/xchacha20_poly1305_test.json`, from C2SP/wycheproof,
//! Apache-2.0) run both through the `chacha20poly1305` crate and through
//! [`MasterKey::open`] with the vector's nonce placed in the sealed layout.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use proptest::prelude::*;
use serde::Deserialize;
use signet_sign::sealed::{MasterKey, HEADER_LEN, KEY_CHECK_LEN, MIN_SEALED_LEN, SEALED_VERSION};

use crate::vector_file;

#[test]
fn round_trip() {
    let key = MasterKey::generate();
    let blob = key.seal(b"whsec_abc", b"tgt_1");
    assert_eq!(key.open(&blob, b"tgt_1").unwrap().as_slice(), b"whsec_abc");
    let empty = key.seal(b"", b"tgt_1");
    assert_eq!(empty.len(), MIN_SEALED_LEN);
    assert!(key.open(&empty, b"tgt_1").unwrap().is_empty());
}

#[test]
fn tampering_any_byte_is_refused() {
    let key = MasterKey::generate();
    let blob = key.seal(b"whsec_abc", b"tgt_1");
    for i in 0..blob.len() {
        for flip in [0x01u8, 0x80] {
            let mut bad = blob.clone();
            bad[i] ^= flip;
            let err = key.open(&bad, b"tgt_1").expect_err("tampered blob opened");
            assert!(
                err.is_mismatch() || err.is_malformed() || err.is_unknown_key(),
                "byte {i}: {err:?}"
            );
        }
    }
}

#[test]
fn wrong_key_is_a_clear_error() {
    let a = MasterKey::generate();
    let b = MasterKey::generate();
    let blob = a.seal(b"whsec_abc", b"tgt_1");
    let err = b.open(&blob, b"tgt_1").unwrap_err();
    assert!(err.is_unknown_key(), "{err:?}");
    assert!(err.message().contains("different master key"), "{err}");
}

#[test]
fn moved_to_another_owner_is_refused() {
    let key = MasterKey::generate();
    let blob = key.seal(b"whsec_abc", b"tgt_1");
    let err = key.open(&blob, b"tgt_2").unwrap_err();
    assert!(err.is_mismatch(), "{err:?}");
}

#[test]
fn truncated_or_garbage_input_is_refused_without_panic() {
    let key = MasterKey::generate();
    let blob = key.seal(b"whsec_abcdefgh", b"tgt_1");
    for len in 0..blob.len() {
        assert!(
            key.open(&blob[..len], b"tgt_1").is_err(),
            "prefix of {len} bytes opened"
        );
        assert!(
            key.open(&blob[blob.len() - len..], b"tgt_1").is_err(),
            "suffix of {len} bytes opened"
        );
    }
    let mut wrong_version = blob.clone();
    wrong_version[0] = SEALED_VERSION + 1;
    assert!(key
        .open(&wrong_version, b"tgt_1")
        .unwrap_err()
        .is_malformed());
    for len in 0..100 {
        assert!(key.open(&vec![0xAB; len], b"").is_err());
    }
}

#[test]
fn previous_keys_open_but_never_seal() {
    let old_bytes = [1u8; 32];
    let new_bytes = [2u8; 32];
    let old = MasterKey::from_bytes(old_bytes);
    let under_old = old.seal(b"whsec_abc", b"tgt_1");
    let other = MasterKey::from_bytes([3; 32]).seal(b"whsec_abc", b"tgt_1");

    let rotated = MasterKey::from_bytes(new_bytes).with_previous(vec![
        MasterKey::from_bytes(old_bytes),
        // The current key again, and a duplicate: dropped.
        MasterKey::from_bytes(new_bytes),
        MasterKey::from_bytes(old_bytes),
    ]);
    assert_eq!(rotated.previous_fingerprints(), [old.fingerprint()]);
    // Opens under either key; the owner still binds.
    assert_eq!(
        rotated.open(&under_old, b"tgt_1").unwrap().as_slice(),
        b"whsec_abc"
    );
    assert!(rotated
        .open(&under_old, b"tgt_2")
        .unwrap_err()
        .is_mismatch());
    let under_new = rotated.seal(b"whsec_abc", b"tgt_1");
    assert!(rotated.is_current(&under_new) && !rotated.is_current(&under_old));
    // New seals are under the current key only: the old key cannot open them.
    assert!(old.open(&under_new, b"tgt_1").unwrap_err().is_unknown_key());
    assert_eq!(
        MasterKey::from_bytes(new_bytes)
            .open(&under_new, b"tgt_1")
            .unwrap()
            .as_slice(),
        b"whsec_abc"
    );
    // A third key's blob: refused as a different key.
    assert!(rotated.open(&other, b"tgt_1").unwrap_err().is_unknown_key());
    assert!(!rotated.is_current(b"short"));
    // Fingerprints are the current key's.
    assert_eq!(
        rotated.fingerprint(),
        MasterKey::from_bytes(new_bytes).fingerprint()
    );
    let debug = format!("{rotated:?}");
    assert!(debug.contains(&old.fingerprint()), "{debug}");
}

#[test]
fn previous_keys_parse_as_a_list_without_quoting_values() {
    use base64::Engine as _;
    let b64 = |b: u8| base64::engine::general_purpose::STANDARD.encode([b; 32]);
    let keys = MasterKey::parse_previous(&format!(" {} , {},", b64(1), b64(2))).unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(
        keys[1].fingerprint(),
        MasterKey::from_bytes([2; 32]).fingerprint()
    );
    for (text, says) in [
        (" , ".to_owned(), "SIGNET_MASTER_KEY_PREVIOUS is empty"),
        (
            "not-base64!".to_owned(),
            "SIGNET_MASTER_KEY_PREVIOUS is not valid base64",
        ),
        (
            format!("{},c2hvcnQ=", b64(1)),
            "SIGNET_MASTER_KEY_PREVIOUS (entry 2) decodes to 5 bytes",
        ),
    ] {
        let err = MasterKey::parse_previous(&text).unwrap_err();
        assert!(err.is_config() && err.message().contains(says), "{err}");
        assert!(!err.message().contains("c2hvcnQ"), "{err}");
    }
}

#[test]
fn start_up_check_detects_a_wrong_key() {
    let a = MasterKey::generate();
    let b = MasterKey::generate();
    let check = a.seal_check();
    a.verify_check(&check).unwrap();
    let err = b.verify_check(&check).unwrap_err();
    assert!(err.is_config(), "{err:?}");
    assert!(err.message().contains("SIGNET_MASTER_KEY"), "{err}");
    assert!(err.message().contains(&b.fingerprint()), "{err}");
    assert!(b.verify_check(b"garbage").unwrap_err().is_config());
    // A secret sealed for an owner is not accepted as the check blob.
    assert!(a.verify_check(&a.seal(b"x", b"tgt_1")).is_err());
}

#[test]
fn debug_is_redacted_and_fingerprint_is_stable() {
    let text = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let key = MasterKey::parse(text).unwrap();
    let again = MasterKey::parse(&format!("  {}\n", text.trim_end_matches('='))).unwrap();
    assert_eq!(key.fingerprint(), again.fingerprint());
    assert_eq!(key.fingerprint().len(), 16);
    assert_eq!(key.to_base64_for_display().as_str(), text);
    let debug = format!("{key:?}");
    assert!(debug.contains("redacted"), "{debug}");
    assert!(
        !debug.contains(text) && !debug.contains("AAECAwQF"),
        "{debug}"
    );
    assert_ne!(key.fingerprint(), MasterKey::generate().fingerprint());
}

#[test]
fn parse_errors_name_the_variable_not_the_value() {
    let short = "c2VjcmV0LXZhbHVlLXNob3J0"; // 18 bytes
    for bad in ["", "   ", "not base64 !!! secretvalue", short] {
        let err = MasterKey::parse(bad).unwrap_err();
        assert!(err.is_config(), "{err:?}");
        let message = err.message();
        assert!(message.contains("SIGNET_MASTER_KEY"), "{message}");
        if !bad.trim().is_empty() {
            assert!(!message.contains(bad.trim()), "{message}");
        }
        assert!(!message.contains("secretvalue"), "{message}");
    }
    let long = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gIQ==";
    assert!(MasterKey::parse(long)
        .unwrap_err()
        .message()
        .contains("34 bytes"));
}

#[derive(Deserialize)]
struct File {
    #[serde(rename = "testGroups")]
    groups: Vec<Group>,
}

#[derive(Deserialize)]
struct Group {
    tests: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    #[serde(rename = "tcId")]
    id: u32,
    key: String,
    iv: String,
    aad: String,
    msg: String,
    ct: String,
    tag: String,
    result: String,
}

#[test]
fn wycheproof_xchacha20_poly1305() {
    let file: File =
        serde_json::from_str(&vector_file("wycheproof/xchacha20_poly1305_test.json")).unwrap();
    let (mut valid, mut invalid) = (0, 0);
    for case in file.groups.iter().flat_map(|g| &g.tests) {
        let h = |s: &str| hex::decode(s).unwrap();
        let (key_bytes, iv, aad, msg) = (h(&case.key), h(&case.iv), h(&case.aad), h(&case.msg));
        let mut ct_tag = h(&case.ct);
        ct_tag.extend(h(&case.tag));
        let key_bytes: [u8; 32] = key_bytes.try_into().unwrap();

        // The primitive, directly. A nonce of the wrong length is refused
        // before it reaches the cipher (XNonce::from_slice would panic).
        let direct = (iv.len() == 24).then(|| {
            let cipher = XChaCha20Poly1305::new((&key_bytes).into());
            let nonce = XNonce::from_slice(&iv);
            let sealed = cipher
                .encrypt(
                    nonce,
                    Payload {
                        msg: &msg,
                        aad: &aad,
                    },
                )
                .unwrap();
            let opened = cipher.decrypt(
                nonce,
                Payload {
                    msg: &ct_tag,
                    aad: &aad,
                },
            );
            (sealed, opened)
        });

        // Through MasterKey::open, with the vector's nonce and ciphertext in
        // the sealed layout (the AEAD's associated data is the caller's aad).
        let master = MasterKey::from_bytes(key_bytes);
        let mut blob = vec![SEALED_VERSION];
        blob.extend_from_slice(&hex::decode(&master.fingerprint()[..2 * KEY_CHECK_LEN]).unwrap());
        blob.extend_from_slice(&iv);
        blob.extend_from_slice(&ct_tag);

        match case.result.as_str() {
            "valid" => {
                valid += 1;
                let (sealed, opened) = direct.expect("valid case with a 24-byte nonce");
                assert_eq!(sealed, ct_tag, "tcId {}: ciphertext differs", case.id);
                assert_eq!(opened.unwrap(), msg, "tcId {}: plaintext differs", case.id);
                let opened = master.open(&blob, &aad).unwrap_or_else(|e| {
                    panic!(
                        "tcId {}: valid case refused by MasterKey::open: {e}",
                        case.id
                    )
                });
                assert_eq!(opened.as_slice(), msg, "tcId {}", case.id);
                assert_eq!(blob.len(), HEADER_LEN + ct_tag.len());
            }
            "invalid" => {
                invalid += 1;
                if let Some((_, opened)) = direct {
                    assert!(opened.is_err(), "tcId {}: invalid case decrypted", case.id);
                }
                assert!(master.open(&blob, &aad).is_err(), "tcId {}", case.id);
            }
            other => panic!("tcId {}: unexpected result {other}", case.id),
        }
    }
    assert!(
        valid > 0 && invalid > 0,
        "ran {valid} valid and {invalid} invalid cases"
    );
    assert_eq!(valid + invalid, 315, "the file declares 315 cases");
}

proptest! {
    #[test]
    fn sealed_round_trip(plain in proptest::collection::vec(any::<u8>(), 0..512),
                         aad in proptest::collection::vec(any::<u8>(), 0..64),
                         key in any::<[u8; 32]>()) {
        let key = MasterKey::from_bytes(key);
        let blob = key.seal(&plain, &aad);
        prop_assert_eq!(blob.len(), MIN_SEALED_LEN + plain.len());
        let opened = key.open(&blob, &aad).unwrap();
        prop_assert_eq!(opened.as_slice(), plain.as_slice());
    }
}
