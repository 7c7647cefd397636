//! The task envelope `signet.task.v1`: the published vectors in
//! `docs/vectors/task-envelope.json` are recomputed from their fields and
//! compared, and the file must be exactly what the cases below generate.
//!
//! Regenerate it after a deliberate change with
//! `SIGNET_REGENERATE_VECTORS=1 cargo test -p signet-sign --test it envelope`.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use signet_sign::{
    verify_batch, Algorithm, Ed25519SecretKey, EnvelopeCheck, EnvelopeSignature, HmacSecret, Key,
    KeyId, KeyMaterial, KeyRing, TaskEnvelope,
};

const SOURCE: &str = "docs/vectors/task-envelope.json";

fn path() -> String {
    format!(
        "{}/../../docs/vectors/task-envelope.json",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The HMAC key of the vectors: bytes 0x00..0x1f.
fn hmac_secret() -> Vec<u8> {
    (0u8..32).collect()
}

/// The Ed25519 seed of the vectors: bytes 0x20..0x3f.
fn ed25519_seed() -> Vec<u8> {
    (32u8..64).collect()
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct File {
    #[serde(rename = "_about")]
    about: String,
    format: String,
    hmac_key: HmacKeyJson,
    ed25519_key: EdKeyJson,
    vectors: Vec<VectorJson>,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct HmacKeyJson {
    id: String,
    secret_hex: String,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct EdKeyJson {
    id: String,
    seed_hex: String,
    public_hex: String,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct VectorJson {
    name: String,
    description: String,
    envelope: EnvelopeJson,
    canonical_hex: String,
    hmac_sha256: SigJson,
    ed25519: SigJson,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct EnvelopeJson {
    id: String,
    queue: String,
    name: String,
    /// The args bytes in hex (they are bytes, not necessarily text).
    args_hex: String,
    /// The same args as text, when they are UTF-8 (for reading only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    args_text: Option<String>,
    headers: BTreeMap<String, String>,
    created_at_ms: i64,
    not_before_ms: Option<i64>,
    expires_at_ms: Option<i64>,
    max_attempts: u32,
    callback_url: Option<String>,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct SigJson {
    key_id: String,
    sig_hex: String,
    /// `signet-signature` header value.
    header: String,
}

fn envelope_json(e: &TaskEnvelope) -> EnvelopeJson {
    EnvelopeJson {
        id: e.id.clone(),
        queue: e.queue.clone(),
        name: e.name.clone(),
        args_hex: hex::encode(&e.args),
        args_text: String::from_utf8(e.args.clone()).ok(),
        headers: e.headers.clone(),
        created_at_ms: e.created_at_ms,
        not_before_ms: e.not_before_ms,
        expires_at_ms: e.expires_at_ms,
        max_attempts: e.max_attempts,
        callback_url: e.callback_url.clone(),
    }
}

fn envelope_from(j: &EnvelopeJson) -> TaskEnvelope {
    TaskEnvelope {
        id: j.id.clone(),
        queue: j.queue.clone(),
        name: j.name.clone(),
        args: hex::decode(&j.args_hex).unwrap(),
        headers: TaskEnvelope::normalise_headers(j.headers.clone()).unwrap(),
        created_at_ms: j.created_at_ms,
        not_before_ms: j.not_before_ms,
        expires_at_ms: j.expires_at_ms,
        max_attempts: j.max_attempts,
        callback_url: j.callback_url.clone(),
    }
}

fn rings() -> (KeyRing, KeyRing) {
    let hmac = KeyRing::single(Key::new(
        KeyId::new("vectors-hmac").unwrap(),
        KeyMaterial::Hmac(HmacSecret::new(hmac_secret()).unwrap()),
    ));
    let ed = KeyRing::single(Key::new(
        KeyId::new("vectors-ed25519").unwrap(),
        KeyMaterial::Ed25519Private(Ed25519SecretKey::from_seed(&ed25519_seed()).unwrap()),
    ));
    (hmac, ed)
}

/// The published cases: (name, description, envelope).
fn cases() -> Vec<(&'static str, &'static str, TaskEnvelope)> {
    let base = TaskEnvelope {
        id: "task_01JD8X3V9Q2M4N5P6R7S8T9V0W".into(),
        queue: "default".into(),
        name: "email.send".into(),
        args: br#"{"to":"ada@example.com","template":"welcome"}"#.to_vec(),
        headers: BTreeMap::new(),
        created_at_ms: 1_767_225_600_000,
        not_before_ms: None,
        expires_at_ms: None,
        max_attempts: 5,
        callback_url: None,
    };
    let mut full = base.clone();
    full.headers = TaskEnvelope::normalise_headers([
        ("Tenant", "acme"),
        (
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ),
        ("X-Request-Id", "req-42"),
    ])
    .unwrap();
    full.not_before_ms = Some(1_767_225_660_000);
    full.expires_at_ms = Some(1_767_312_000_000);
    full.max_attempts = 25;
    full.callback_url = Some("https://hooks.example.com/done?task=1".into());
    let mut empty = base.clone();
    empty.id = "task_0".into();
    empty.queue = String::new();
    empty.args = Vec::new();
    empty.callback_url = Some(String::new());
    empty.max_attempts = 0;
    empty.created_at_ms = 0;
    let mut unicode = base.clone();
    unicode.args = "{\"greeting\":\"grüß dich, 世界 🌍\"}".as_bytes().to_vec();
    unicode.headers = TaskEnvelope::normalise_headers([("x-note", "café")]).unwrap();
    let mut binary = base.clone();
    binary.name = "blob.store".into();
    binary.args = vec![0x00, 0xff, 0xfe, 0x80, 0x0a, 0x0d, 0x22];
    binary.created_at_ms = -1;
    binary.max_attempts = u32::MAX;
    binary.expires_at_ms = Some(i64::MAX);
    vec![
        (
            "minimal",
            "no headers; not_before, expires_at and callback_url absent",
            base,
        ),
        (
            "full",
            "three headers (names lower-cased and sorted), every optional field present",
            full,
        ),
        (
            "empty_fields",
            "empty queue and args, callback_url present but empty (differs from absent), zeros",
            empty,
        ),
        (
            "unicode",
            "non-ASCII args and header value, encoded as UTF-8 bytes",
            unicode,
        ),
        (
            "binary_and_extremes",
            "args that are not UTF-8, a negative created_at, max u32 attempts, max i64 expiry",
            binary,
        ),
    ]
}

fn generate() -> File {
    let (hmac, ed) = rings();
    let ed_key = Ed25519SecretKey::from_seed(&ed25519_seed()).unwrap();
    let vectors = cases()
        .into_iter()
        .map(|(name, description, env)| {
            let sig = |ring: &KeyRing| {
                let s = env.sign(ring).unwrap();
                SigJson {
                    key_id: s.key_id.to_string(),
                    sig_hex: hex::encode(&s.sig),
                    header: s.header_value(),
                }
            };
            VectorJson {
                name: name.into(),
                description: description.into(),
                canonical_hex: hex::encode(env.canonical_bytes().unwrap()),
                hmac_sha256: sig(&hmac),
                ed25519: sig(&ed),
                envelope: envelope_json(&env),
            }
        })
        .collect();
    File {
        about: "Vectors for the signet.task.v1 envelope (docs/task-envelope.md). Generated by signet-sign's test tests/it/envelope.rs; regenerate with SIGNET_REGENERATE_VECTORS=1. For each envelope: the canonical bytes in hex, and the signature of those bytes with the HMAC-SHA256 key and with the Ed25519 key below (Ed25519 is deterministic).".into(),
        format: "signet.task.v1".into(),
        hmac_key: HmacKeyJson {
            id: "vectors-hmac".into(),
            secret_hex: hex::encode(hmac_secret()),
        },
        ed25519_key: EdKeyJson {
            id: "vectors-ed25519".into(),
            seed_hex: hex::encode(ed25519_seed()),
            public_hex: hex::encode(ed_key.public_key().to_bytes()),
        },
        vectors,
    }
}

fn render(file: &File) -> String {
    let mut text = serde_json::to_string_pretty(file).unwrap();
    text.push('\n');
    text
}

#[test]
fn vectors_file_is_what_the_code_generates() {
    let generated = render(&generate());
    if std::env::var("SIGNET_REGENERATE_VECTORS").as_deref() == Ok("1") {
        std::fs::write(path(), &generated).unwrap();
    }
    let on_disk = std::fs::read_to_string(path())
        .unwrap_or_else(|e| panic!("{SOURCE}: {e}; regenerate with SIGNET_REGENERATE_VECTORS=1"));
    assert!(
        on_disk == generated,
        "{SOURCE} is stale; regenerate with SIGNET_REGENERATE_VECTORS=1 and review the diff"
    );
}

#[test]
fn every_published_vector_recomputes() {
    let file: File = serde_json::from_str(
        &std::fs::read_to_string(path()).unwrap_or_else(|e| panic!("{SOURCE}: {e}")),
    )
    .unwrap();
    assert_eq!(file.format, "signet.task.v1");
    let hmac = KeyRing::single(Key::new(
        KeyId::new(&file.hmac_key.id).unwrap(),
        KeyMaterial::Hmac(
            HmacSecret::new(hex::decode(&file.hmac_key.secret_hex).unwrap()).unwrap(),
        ),
    ));
    let seed = hex::decode(&file.ed25519_key.seed_hex).unwrap();
    let ed_secret = Ed25519SecretKey::from_seed(&seed).unwrap();
    assert_eq!(
        hex::encode(ed_secret.public_key().to_bytes()),
        file.ed25519_key.public_hex
    );
    let ed = KeyRing::single(Key::new(
        KeyId::new(&file.ed25519_key.id).unwrap(),
        KeyMaterial::Ed25519Private(ed_secret),
    ));
    assert!(!file.vectors.is_empty());
    for v in &file.vectors {
        let env = envelope_from(&v.envelope);
        let bytes = env.canonical_bytes().unwrap();
        assert_eq!(hex::encode(&bytes), v.canonical_hex, "{SOURCE} {}", v.name);
        for (ring, expected, alg) in [
            (&hmac, &v.hmac_sha256, Algorithm::HmacSha256),
            (&ed, &v.ed25519, Algorithm::Ed25519),
        ] {
            let sig = env.sign(ring).unwrap();
            assert_eq!(sig.alg, alg);
            assert_eq!(
                hex::encode(&sig.sig),
                expected.sig_hex,
                "{SOURCE} {}",
                v.name
            );
            assert_eq!(sig.header_value(), expected.header, "{SOURCE} {}", v.name);
            // A verify-only receiver accepts the published header.
            let parsed =
                EnvelopeSignature::from_headers(&expected.header, &expected.key_id).unwrap();
            let ok = env
                .verify(
                    parsed.alg,
                    parsed.key_id.as_str(),
                    &parsed.sig,
                    &ring.verify_only(),
                )
                .unwrap();
            assert_eq!(ok.as_str(), expected.key_id);
            assert_eq!(
                STANDARD.encode(&parsed.sig),
                expected.header.split_once(',').unwrap().1
            );
        }
    }
}

#[test]
fn delivery_state_is_not_signed_and_a_verify_only_worker_checks_batches() {
    let (_, ed) = rings();
    let receiver = ed.verify_only();
    let envelopes: Vec<TaskEnvelope> = cases().into_iter().map(|c| c.2).collect();
    let sigs: Vec<EnvelopeSignature> = envelopes.iter().map(|e| e.sign(&ed).unwrap()).collect();
    let items: Vec<EnvelopeCheck<'_>> = envelopes
        .iter()
        .zip(&sigs)
        .map(|(e, s)| EnvelopeCheck {
            envelope: e,
            signature: Some((s.alg, s.key_id.as_str(), &s.sig)),
        })
        .collect();
    let results = verify_batch(&items, &receiver);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    // A tampered envelope is named, the others still pass.
    let mut tampered = envelopes[1].clone();
    tampered.args = br#"{"to":"mallory@example.com"}"#.to_vec();
    let mut items = items;
    items[1].envelope = &tampered;
    let results = verify_batch(&items, &receiver);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.is_ok(), i != 1, "item {i}: {r:?}");
    }
    assert!(results[1].as_ref().unwrap_err().is_mismatch());
}
