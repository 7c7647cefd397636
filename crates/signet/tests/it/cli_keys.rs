//! `signet keys generate`, `signet sign` and `signet verify`, run as a user
//! would run them.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;
use signet_sign::{Algorithm, SigningConfig};

use crate::{signet, Run};

const STANDARD_WEBHOOKS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../vectors/standard_webhooks.json"
);
const SEED_SCHEMES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../vectors/seed_schemes.json"
);

fn load(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {path}: {e}"))
}

/// `NAME=value` lines as pairs.
fn env_lines(run: &Run) -> Vec<(String, String)> {
    run.ok()
        .lines()
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not NAME=value: {l}"));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn var<'a>(vars: &'a [(String, String)], name: &str) -> &'a str {
    &vars
        .iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("{name} missing from {vars:?}"))
        .1
}

#[test]
fn generate_env_hmac_is_a_valid_signing_config() {
    let run = signet(
        &[
            "keys",
            "generate",
            "--algorithm",
            "hmac-sha256",
            "--id",
            "k1",
            "--format",
            "env",
        ],
        b"",
    );
    let vars = env_lines(&run);
    assert_eq!(var(&vars, "SIGNET_SIGNING_ALGORITHM"), "hmac-sha256");
    assert_eq!(var(&vars, "SIGNET_SIGNING_ACTIVE_KEY"), "k1");
    let (id, b64) = var(&vars, "SIGNET_SIGNING_KEYS").split_once(':').unwrap();
    assert_eq!(id, "k1");
    assert_eq!(STANDARD.decode(b64).unwrap().len(), 32);
    let config = SigningConfig::from_vars(vars.clone()).expect("generated env parses");
    let active = config.ring.active().expect("an active key");
    assert_eq!(active.id().as_str(), "k1");
    assert_eq!(active.algorithm(), Algorithm::HmacSha256);

    // A second key is different, and the default id is usable.
    let again = env_lines(&signet(&["keys", "generate"], b""));
    assert_ne!(
        var(&again, "SIGNET_SIGNING_KEYS"),
        var(&vars, "SIGNET_SIGNING_KEYS")
    );
    SigningConfig::from_vars(again).expect("default id is a valid key id");
}

#[test]
fn generate_env_ed25519_has_private_and_public_keys() {
    let run = signet(
        &["keys", "generate", "--algorithm", "ed25519", "--id", "ed-1"],
        b"",
    );
    let vars = env_lines(&run);
    assert_eq!(var(&vars, "SIGNET_SIGNING_ALGORITHM"), "ed25519");
    assert_eq!(var(&vars, "SIGNET_SIGNING_ACTIVE_KEY"), "ed-1");
    assert!(var(&vars, "SIGNET_SIGNING_PRIVATE_KEYS").starts_with("ed-1:"));
    assert!(var(&vars, "SIGNET_SIGNING_PUBLIC_KEYS").starts_with("ed-1:"));
    let config = SigningConfig::from_vars(vars.clone()).expect("generated env parses");
    assert_eq!(config.ring.algorithm(), Some(Algorithm::Ed25519));
    assert!(config.ring.active().is_some());

    // The public line alone is a verify-only configuration.
    let public: Vec<_> = vars
        .iter()
        .filter(|(k, _)| k != "SIGNET_SIGNING_PRIVATE_KEYS" && k != "SIGNET_SIGNING_ACTIVE_KEY")
        .cloned()
        .collect();
    let verify_only = SigningConfig::from_vars(public).expect("public keys alone parse");
    assert!(verify_only.ring.active().is_none());
}

#[test]
fn generate_rejects_bad_ids_and_algorithms() {
    let run = signet(&["keys", "generate", "--id", "bad id!"], b"");
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("--id"), "{}", run.stderr);
    let run = signet(&["keys", "generate", "--algorithm", "rsa"], b"");
    assert_eq!(run.code, 2, "{run:#?}");
}

/// Standard Webhooks keys: whsec_ for HMAC, whsk_/whpk_ for Ed25519.
fn standard_keys() -> Vec<(String, String)> {
    let hmac = signet(&["keys", "generate", "--format", "standard"], b"");
    let whsec = hmac.ok().trim().to_owned();
    assert!(whsec.starts_with("whsec_"), "{whsec}");
    let ed = signet(
        &[
            "keys",
            "generate",
            "--algorithm",
            "ed25519",
            "--format",
            "standard",
        ],
        b"",
    );
    let lines = ed.lines();
    assert_eq!(lines.len(), 2, "{ed:#?}");
    assert!(lines[0].starts_with("whsk_") && lines[1].starts_with("whpk_"));
    vec![
        (whsec.clone(), whsec),
        (lines[0].to_owned(), lines[1].to_owned()),
    ]
}

/// Signs `body` and returns the header lines.
fn sign(profile: &str, secrets: &[&str], extra: &[&str], body: &[u8]) -> Vec<String> {
    let mut args = vec!["sign", "--profile", profile];
    for s in secrets {
        args.extend(["--secret", s]);
    }
    args.extend(extra);
    let run = signet(&args, body);
    run.ok().lines().map(str::to_owned).collect()
}

fn verify(profile: &str, secrets: &[&str], headers: &[String], extra: &[&str], body: &[u8]) -> Run {
    let mut args = vec!["verify", "--profile", profile];
    for s in secrets {
        args.extend(["--secret", s]);
    }
    for h in headers {
        args.extend(["--header", h.as_str()]);
    }
    args.extend(extra);
    signet(&args, body)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn generate_sign_verify_round_trip_for_every_profile() {
    let body = br#"{"type":"invoice.paid","amount":4200}"#;
    // Signing keys and their verifying counterparts, per profile.
    let mut cases: Vec<(&str, String, String, Vec<u8>)> = Vec::new();
    for (signing, verifying) in standard_keys() {
        for profile in ["standard", "svix"] {
            cases.push((profile, signing.clone(), verifying.clone(), body.to_vec()));
        }
    }
    // Plain-string profiles take any secret text as-is.
    let plain = signet(&["keys", "generate", "--format", "standard"], b"")
        .ok()
        .trim()
        .to_owned();
    for profile in ["stromboli", "krafter", "github", "stripe"] {
        cases.push((profile, plain.clone(), plain.clone(), body.to_vec()));
    }
    // Inngest: signkey-<env>-<hex>; Stem: id:base64, exactly the env form.
    let env = env_lines(&signet(&["keys", "generate", "--id", "primary"], b""));
    let stem_key = var(&env, "SIGNET_SIGNING_KEYS").to_owned();
    let raw = STANDARD
        .decode(stem_key.split_once(':').unwrap().1)
        .unwrap();
    let inngest_key = format!("signkey-test-{}", hex(&raw));
    cases.push(("inngest", inngest_key.clone(), inngest_key, body.to_vec()));
    let stem_body = serde_json::to_vec(&load(SEED_SCHEMES)["stem"][0]["envelope_wire"]).unwrap();
    cases.push(("stem", stem_key.clone(), stem_key, stem_body));

    let now = "1795000000";
    for (profile, signing, verifying, body) in &cases {
        let headers = sign(
            profile,
            &[signing],
            &["--id", "msg_round", "--timestamp", now],
            body,
        );
        assert!(!headers.is_empty(), "{profile}: no headers");
        for h in &headers {
            assert!(
                h.contains(": "),
                "{profile}: header line {h:?} is not `Name: value`"
            );
        }
        let ok = verify(profile, &[verifying], &headers, &["--now", now], body);
        assert_eq!(ok.code, 0, "{profile}: {ok:#?}");
        assert!(ok.stdout.starts_with("valid"), "{profile}: {ok:#?}");

        // Change one digit: a semantic change that survives any canonical
        // re-encoding (Inngest signs RFC 8785 JSON, so whitespace would not count).
        let mut tampered = body.clone();
        let digit = tampered
            .iter()
            .position(u8::is_ascii_digit)
            .expect("the body has a digit");
        tampered[digit] = b'0' + (tampered[digit] - b'0' + 1) % 10;
        let bad = verify(profile, &[verifying], &headers, &["--now", now], &tampered);
        assert_eq!(bad.code, 1, "{profile}: tampered body accepted: {bad:#?}");
        assert_eq!(bad.stdout.lines().count(), 1, "{profile}: {bad:#?}");
    }
}

#[test]
fn sign_reproduces_the_standard_webhooks_vectors() {
    let vectors = load(STANDARD_WEBHOOKS);
    let mut checked = 0;
    for v in vectors["vectors"].as_array().unwrap() {
        let Some(expected) = v["expected_signature"].as_str() else {
            continue;
        };
        if v["kind"] != "v1" {
            // Ed25519 signatures are deterministic too, but the vector's
            // secret form is checked by signet-sign's own tests.
            continue;
        }
        let ts = v["timestamp"].as_i64().unwrap().to_string();
        let headers = sign(
            "standard",
            &[v["secret"].as_str().unwrap()],
            &["--id", v["msg_id"].as_str().unwrap(), "--timestamp", &ts],
            v["payload"].as_str().unwrap().as_bytes(),
        );
        assert!(headers.contains(&format!("webhook-id: {}", v["msg_id"].as_str().unwrap())));
        assert!(headers.contains(&format!("webhook-timestamp: {ts}")));
        assert!(
            headers.contains(&format!("webhook-signature: {expected}")),
            "{}: {headers:?}",
            v["name"]
        );
        checked += 1;
    }
    assert!(
        checked >= 2,
        "expected at least two signing vectors, ran {checked}"
    );
}

#[test]
fn verify_exit_codes_and_reasons() {
    let vectors = load(STANDARD_WEBHOOKS);
    let v = &vectors["vectors"][0];
    let secret = v["secret"].as_str().unwrap();
    let payload = v["payload"].as_str().unwrap().as_bytes();
    let ts = v["timestamp"].as_i64().unwrap();
    let headers = sign(
        "standard",
        &[secret],
        &[
            "--id",
            v["msg_id"].as_str().unwrap(),
            "--timestamp",
            &ts.to_string(),
        ],
        payload,
    );

    // 0: valid, naming the key.
    let ok = verify(
        "standard",
        &[secret],
        &headers,
        &["--now", &ts.to_string()],
        payload,
    );
    assert_eq!(ok.code, 0, "{ok:#?}");
    assert!(
        ok.stdout.starts_with("valid") && ok.stdout.contains("signed with secret 1"),
        "{ok:#?}"
    );

    // 1: too old, with the age and the tolerance.
    let later = (ts + 412).to_string();
    let old = verify("standard", &[secret], &headers, &["--now", &later], payload);
    assert_eq!(old.code, 1, "{old:#?}");
    assert_eq!(old.lines().len(), 1);
    assert!(
        old.stdout
            .contains("timestamp is 412 s old; tolerance is 300 s"),
        "{old:#?}"
    );
    // A wider --tolerance accepts it.
    let wide = verify(
        "standard",
        &[secret],
        &headers,
        &["--now", &later, "--tolerance", "600"],
        payload,
    );
    assert_eq!(wide.code, 0, "{wide:#?}");

    // 1: the body changed (re-serialised).
    let other = verify(
        "standard",
        &[secret],
        &headers,
        &["--now", &ts.to_string()],
        b"{\"test\":2432232314}",
    );
    assert_eq!(other.code, 1, "{other:#?}");
    assert!(other.stdout.contains("did not match the key"), "{other:#?}");

    // 2: a bad secret, never echoed.
    let bogus = "whsec_%%%not-base64-at-all%%%";
    let bad = verify(
        "standard",
        &[bogus],
        &headers,
        &["--now", &ts.to_string()],
        payload,
    );
    assert_eq!(bad.code, 2, "{bad:#?}");
    assert!(bad.stderr.contains("--secret 1"), "{bad:#?}");
    assert!(!bad.stderr.contains("not-base64-at-all") && !bad.stdout.contains("not-base64-at-all"));

    // 2: a malformed header.
    let mut broken = headers.clone();
    broken.push("no colon here".to_owned());
    let bad = verify(
        "standard",
        &[secret],
        &broken,
        &["--now", &ts.to_string()],
        payload,
    );
    assert_eq!(bad.code, 2, "{bad:#?}");
    assert!(bad.stderr.contains("Name: value"), "{bad:#?}");

    // 2: missing required arguments is a usage error.
    let usage = signet(&["verify", "--secret", secret], payload);
    assert_eq!(usage.code, 2, "{usage:#?}");
}

#[test]
fn several_secrets_make_several_signatures_and_either_verifies() {
    let keys = standard_keys();
    let (a, b) = (&keys[0].0, &keys[1].0);
    let body = b"rotation";
    let headers = sign("standard", &[a, b], &["--timestamp", "1795000000"], body);
    let sig = headers
        .iter()
        .find_map(|h| h.strip_prefix("webhook-signature: "))
        .expect("a signature header");
    let entries: Vec<&str> = sig.split(' ').collect();
    assert_eq!(entries.len(), 2, "{sig}");
    assert!(
        entries[0].starts_with("v1,") && entries[1].starts_with("v1a,"),
        "{sig}"
    );
    // A fresh id was made.
    assert!(
        headers.iter().any(|h| h.starts_with("webhook-id: msg_")),
        "{headers:?}"
    );

    for verifying in [&keys[0].1, &keys[1].1] {
        let ok = verify(
            "standard",
            &[verifying],
            &headers,
            &["--now", "1795000000"],
            body,
        );
        assert_eq!(ok.code, 0, "{ok:#?}");
    }
    // With keys that do not match: says how many keys were tried.
    let stranger = standard_keys();
    let no = verify(
        "standard",
        &[&stranger[0].1, &stranger[1].1],
        &headers,
        &["--now", "1795000000"],
        body,
    );
    assert_eq!(no.code, 1, "{no:#?}");
    assert!(no.stdout.contains("2 keys"), "{no:#?}");
}

#[test]
fn krafter_verify_warns_that_timestamp_and_id_are_not_covered() {
    let body = b"{\"report\":\"nightly\"}";
    let headers = sign("krafter", &["kr-secret"], &[], body);
    let ok = verify("krafter", &["kr-secret"], &headers, &[], body);
    assert_eq!(ok.code, 0, "{ok:#?}");
    assert!(ok.stdout.contains("warning:"), "{ok:#?}");
    assert!(ok.stdout.contains("not covered"), "{ok:#?}");
}

#[test]
fn sign_reads_the_body_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("body.json");
    std::fs::write(&path, b"{\"a\":1}").unwrap();
    let path = path.to_str().unwrap();
    let from_file = sign(
        "github",
        &["gh-secret"],
        &["--id", "delivery-1", "--body-file", path],
        b"ignored stdin",
    );
    let from_stdin = sign(
        "github",
        &["gh-secret"],
        &["--id", "delivery-1"],
        b"{\"a\":1}",
    );
    assert_eq!(from_file, from_stdin);
    let missing = signet(
        &[
            "sign",
            "--profile",
            "github",
            "--secret",
            "s",
            "--body-file",
            "/nonexistent/x",
        ],
        b"",
    );
    assert_eq!(missing.code, 2, "{missing:#?}");
    assert!(missing.stderr.contains("--body-file"), "{missing:#?}");
}
