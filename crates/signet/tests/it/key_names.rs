//! Keys are called what the user called them: `signet keys generate
//! --format standard` says it printed a webhook secret (a target's and its
//! receiver's, not a task-signing key), and `signet verify` names the key
//! that matched by the id the user gave or by its `--secret` position,
//! never an invented `key-1`.

use crate::signet;

#[test]
fn generate_standard_says_it_is_a_webhook_secret() {
    for algorithm in ["hmac-sha256", "ed25519"] {
        let run = signet(
            &[
                "keys",
                "generate",
                "--format",
                "standard",
                "--algorithm",
                algorithm,
            ],
            b"",
        );
        let printed = run.ok();
        assert!(printed.starts_with("whs"), "{run:#?}");
        assert!(run.stderr.contains("webhook"), "{algorithm}: {run:#?}");
        assert!(run.stderr.contains("/v1/targets"), "{algorithm}: {run:#?}");
        assert!(
            run.stderr.contains("does not sign tasks"),
            "{algorithm}: {run:#?}"
        );
        // Before, the HMAC secret was labelled a signing key that
        // "producers and workers both need".
        assert!(!run.stderr.contains("producers"), "{algorithm}: {run:#?}");
    }
}

/// Signs `body` with `secret` at a fixed time; the header lines.
fn sign(profile: &str, secret: &str, body: &[u8]) -> Vec<String> {
    let run = signet(
        &[
            "sign",
            "--profile",
            profile,
            "--secret",
            secret,
            "--id",
            "msg_names",
            "--timestamp",
            "1795000000",
        ],
        body,
    );
    run.ok().lines().map(str::to_owned).collect()
}

fn verify(profile: &str, secrets: &[&str], headers: &[String], body: &[u8]) -> String {
    let mut args = vec!["verify", "--profile", profile, "--now", "1795000000"];
    for s in secrets {
        args.extend(["--secret", s]);
    }
    for h in headers {
        args.extend(["--header", h]);
    }
    // The first line names the key; warnings follow.
    let run = signet(&args, body);
    run.ok().lines().next().unwrap_or_default().to_owned()
}

#[test]
fn verify_names_the_key_by_position_or_by_its_own_id() {
    let body = br#"{"order":42}"#;
    let old = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let new = "whsec_c2lnbmV0LW5leHQtc2VjcmV0LTMyLWJ5dGVzLWxvbmc=";
    let headers = sign("standard", new, body);
    assert_eq!(
        verify("standard", &[old, new], &headers, body),
        "valid: signed with secret 2"
    );
    let headers = sign("github", "a-github-secret-of-some-length", body);
    assert_eq!(
        verify(
            "github",
            &["a-github-secret-of-some-length"],
            &headers,
            body
        ),
        "valid: signed with secret 1"
    );
    // A Stem key carries its own id (`id:base64`): that id is its name.
    let env = signet(&["keys", "generate", "--id", "primary"], b"");
    let stem_key = env
        .ok()
        .lines()
        .find_map(|l| l.strip_prefix("SIGNET_SIGNING_KEYS="))
        .expect("an HMAC key line")
        .to_owned();
    let vectors: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../vectors/seed_schemes.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let envelope = serde_json::to_vec(&vectors["stem"][0]["envelope_wire"]).unwrap();
    let headers = sign("stem", &stem_key, &envelope);
    assert_eq!(
        verify("stem", &[&stem_key], &headers, &envelope),
        "valid: signed with primary"
    );
}
