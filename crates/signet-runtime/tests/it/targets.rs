//! Targets: secrets sealed under the master key, rotation with deliveries
//! in flight, profiles signed with the target's secret, URL rules, and the
//! secret never in clear in the database file, in logs or in `Debug`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use signet_runtime::{
    NewMessage, NewTarget, RuntimeError, TargetDeletion, TargetPatch, TargetSecret, TargetUsage,
};
use signet_sign::profiles::{Profile, VerifyOptions};
use signet_sign::sealed::MasterKey;
use signet_sign::KeyRing;
use signet_store::{DeadReason, TargetRecord};

use crate::dispatcher::*;

fn target(name: &str, secret: Option<&str>) -> NewTarget {
    NewTarget {
        name: name.into(),
        url_prefix: None,
        secret: secret.map(|s| TargetSecret::parse(s).unwrap()),
        rate_limit_per_s: None,
        max_concurrency: None,
        https_only: false,
    }
}

/// A Standard Webhooks ring holding one target secret.
fn ring_of(secret: &str) -> KeyRing {
    let material = signet_sign::standard::parse_secret(secret).unwrap();
    KeyRing::single(signet_sign::Key::new(
        signet_sign::KeyId::new("t").unwrap(),
        material,
    ))
}

#[tokio::test]
async fn a_rotation_with_deliveries_in_flight_loses_none() {
    let s = Setup::new();
    // First attempt of every message fails, so each is still in flight
    // (waiting to retry) when the secret is rotated.
    let rx = Receiver::start(|_, nth| Answer::status(if nth == 0 { 503 } else { 200 })).await;
    let (t, old) = s.targets.create(target("billing", None)).await.unwrap();
    let old_ring = ring_of(old.expose_secret());
    let mut d = RunningDispatcher::start(s.dispatcher().build().unwrap());
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            s.publish(
                json!({"url": rx.url(&format!("/m{i}")), "target": "billing", "body": {"n": i}}),
            )
            .await,
        );
    }
    for id in &ids {
        retry_at(&d.next_for(id).await);
    }
    let before = rx.wait_for(5).await;
    for r in &before {
        verify_standard(&old_ring, r, s.now_s()).expect("signed with the old secret");
        assert_eq!(r.header("webhook-signature").split(' ').count(), 1);
    }

    let (rotated, new) = s
        .targets
        .rotate(&t.id, None, Some(Duration::from_secs(3600)))
        .await
        .unwrap();
    assert_ne!(new.expose_secret(), old.expose_secret());
    assert_eq!(
        rotated.secret_fingerprint,
        s.targets.fingerprint(&t.id, &new).unwrap()
    );
    assert!(rotated.secret_fingerprint.starts_with("hmac:"));
    let new_ring = ring_of(new.expose_secret());

    s.clock.advance(Duration::from_secs(1));
    for id in &ids {
        assert_eq!(delivered(&d.next_for(id).await), 200);
    }
    let after: Vec<_> = rx.wait_for(10).await.split_off(5);
    assert_eq!(after.len(), 5);
    let mut got: Vec<&str> = after.iter().map(|r| r.header("webhook-id")).collect();
    got.sort_unstable();
    let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(got, want, "every message delivered once after the rotation");
    for r in &after {
        // During the overlap both secrets sign: a receiver that knows
        // either one verifies.
        assert_eq!(r.header("webhook-signature").split(' ').count(), 2);
        verify_standard(&old_ring, r, s.now_s()).expect("the old secret still verifies");
        verify_standard(&new_ring, r, s.now_s()).expect("the new secret verifies");
    }

    // Once the overlap is over, only the new secret signs.
    s.clock.advance(Duration::from_secs(3600));
    let id = s
        .publish(json!({"url": rx.url("/late"), "target": t.id}))
        .await;
    retry_at(&d.next_for(&id).await);
    let r = rx.wait_for(11).await.pop().unwrap();
    assert_eq!(r.header("webhook-signature").split(' ').count(), 1);
    verify_standard(&new_ring, &r, s.now_s()).expect("the new secret verifies");
    assert!(verify_standard(&old_ring, &r, s.now_s())
        .unwrap_err()
        .is_mismatch());
    d.stop().await;
}

#[tokio::test]
async fn profiles_sign_with_the_targets_secret() {
    let s = Setup::new();
    let rx = Receiver::ok().await;
    let secret = "whsec_c2hhcmVkLXNlY3JldC1mb3ItcHJvZmlsZXMtMTIzNDU2Nzg=";
    s.targets
        .create(target("legacy", Some(secret)))
        .await
        .unwrap();
    let mut d = RunningDispatcher::start(s.dispatcher().build().unwrap());
    let profiles = [
        ("standard", Profile::Standard),
        ("svix", Profile::Svix),
        ("stromboli", Profile::Stromboli),
        ("krafter", Profile::Krafter),
        ("github", Profile::Github),
        ("stripe", Profile::Stripe),
    ];
    for (name, profile) in profiles {
        let id = s
            .publish(json!({
                "url": rx.url(&format!("/{name}")),
                "target": "legacy",
                "signature_profile": name,
                "body": {"profile": name},
            }))
            .await;
        assert_eq!(delivered(&d.next_for(&id).await), 200, "{name}");
        let r = rx
            .requests()
            .into_iter()
            .find(|r| r.path == format!("/{name}"))
            .unwrap();
        let keys = profile.parse_keys(&[secret]).unwrap();
        profile
            .verify(
                &keys,
                &r.header_list(),
                &r.body,
                &VerifyOptions::new(s.now_s()),
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // A wrong secret does not verify.
        let wrong = profile
            .parse_keys(&["whsec_d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC0xMjM0NTY3OA=="])
            .unwrap();
        assert!(
            profile
                .verify(
                    &wrong,
                    &r.header_list(),
                    &r.body,
                    &VerifyOptions::new(s.now_s())
                )
                .is_err(),
            "{name}"
        );
    }
    d.stop().await;
}

#[tokio::test]
async fn a_profile_the_secret_cannot_sign_is_refused_at_publish() {
    let s = Setup::new();
    assert!(TargetSecret::parse("a github secret with spaces").is_err());
    s.targets
        .create(target("gh", Some("not-base64-github-secret!!")))
        .await
        .unwrap();
    let m = signet_runtime::NewMessage::from_json(
        &json!({"url": "https://example.com/", "target": "gh"}).to_string(),
    )
    .unwrap();
    match s.messages.publish(m, None).await.unwrap_err() {
        RuntimeError::InvalidField(e) => {
            let (field, message) = e.into_parts();
            assert_eq!(field, "signature_profile");
            assert!(message.contains("cannot sign standard"), "{message}");
            assert!(!message.contains("not-base64-github"), "{message}");
        }
        other => panic!("{other}"),
    }
    let m = signet_runtime::NewMessage::from_json(
        &json!({"url": "https://example.com/", "target": "gh", "signature_profile": "github"})
            .to_string(),
    )
    .unwrap();
    s.messages.publish(m, None).await.unwrap();
}

#[tokio::test]
async fn url_prefix_and_https_only_are_enforced_at_publish_and_at_delivery() {
    let s = Setup::new();
    let rx = Receiver::ok().await;
    let (t, _) = s
        .targets
        .create(NewTarget {
            url_prefix: Some(rx.url("/allowed/")),
            ..target("strict", None)
        })
        .await
        .unwrap();
    // At publish: a URL outside the prefix names the field.
    let m = signet_runtime::NewMessage::from_json(
        &json!({"url": rx.url("/elsewhere"), "target": "strict"}).to_string(),
    )
    .unwrap();
    match s.messages.publish(m, None).await.unwrap_err() {
        RuntimeError::InvalidField(e) => {
            let (field, message) = e.into_parts();
            assert_eq!(field, "url");
            assert!(message.contains("url_prefix"), "{message}");
        }
        other => panic!("{other}"),
    }
    // At delivery: the target changed after publishing.
    let id = s
        .publish(json!({"url": rx.url("/allowed/1"), "target": "strict"}))
        .await;
    s.targets
        .update(
            &t.id,
            TargetPatch {
                url_prefix: Some(None),
                https_only: Some(true),
                ..TargetPatch::default()
            },
        )
        .await
        .unwrap();
    let mut d = RunningDispatcher::start(s.dispatcher().build().unwrap());
    let (reason, detail) = dead_of(&d.next_for(&id).await);
    assert_eq!(reason, DeadReason::TargetRefused);
    assert!(detail.contains("https://"), "{detail}");
    // A deleted target refuses its messages too.
    s.targets
        .update(
            &t.id,
            TargetPatch {
                https_only: Some(false),
                ..TargetPatch::default()
            },
        )
        .await
        .unwrap();
    // Stop the dispatcher so it cannot deliver before the target is gone.
    d.stop().await;
    let id = s
        .publish(json!({"url": rx.url("/allowed/2"), "target": "strict"}))
        .await;
    // A pending message keeps the target unless the deletion is forced;
    // forced, the deletion says what it left behind.
    let usage = TargetUsage {
        pending_messages: 1,
        schedules: 0,
        push_queues: 0,
    };
    assert_eq!(
        s.targets.delete(&t.id, false).await.unwrap(),
        TargetDeletion::InUse(usage)
    );
    assert!(s.targets.get(&t.id).await.unwrap().is_some());
    assert_eq!(
        s.targets.delete(&t.id, true).await.unwrap(),
        TargetDeletion::Deleted(usage)
    );
    let mut d = RunningDispatcher::start(s.dispatcher().build().unwrap());
    let (reason, detail) = dead_of(&d.next_for(&id).await);
    assert_eq!(reason, DeadReason::TargetRefused);
    assert!(detail.contains("does not exist"), "{detail}");
    assert!(rx.requests().is_empty());
    d.stop().await;
}

#[tokio::test]
async fn targets_need_a_master_key_and_a_wrong_one_is_named_at_start() {
    let s = Setup::with_master_key(None);
    match s.targets.create(target("x", None)).await.unwrap_err() {
        RuntimeError::MasterKey(m) => assert!(m.contains("SIGNET_MASTER_KEY"), "{m}"),
        other => panic!("{other}"),
    }
    assert_eq!(s.targets.verify_master_key().await.unwrap(), 0);

    let right = signet_runtime::TargetService::new(
        Arc::clone(&s.db.store),
        Some(MasterKey::from_bytes([1; 32])),
    );
    right.create(target("a", None)).await.unwrap();
    right.create(target("b", None)).await.unwrap();
    assert_eq!(right.verify_master_key().await.unwrap(), 2);

    let wrong = signet_runtime::TargetService::new(
        Arc::clone(&s.db.store),
        Some(MasterKey::from_bytes([2; 32])),
    );
    match wrong.verify_master_key().await.unwrap_err() {
        RuntimeError::MasterKey(m) => {
            assert!(m.contains("SIGNET_MASTER_KEY"), "{m}");
            assert!(m.contains("not the key"), "{m}");
        }
        other => panic!("{other}"),
    }
    let none = signet_runtime::TargetService::new(Arc::clone(&s.db.store), None);
    match none.verify_master_key().await.unwrap_err() {
        RuntimeError::MasterKey(m) => assert!(m.contains("2 target(s)"), "{m}"),
        other => panic!("{other}"),
    }
    // Names are unique.
    let e = right.create(target("a", None)).await.unwrap_err();
    assert!(
        matches!(
            e,
            RuntimeError::Store(signet_store::StoreError::Conflict(_))
        ),
        "{e}"
    );
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "current_thread")]
async fn target_secrets_never_appear_in_the_database_file_logs_or_debug() {
    // A process-wide subscriber: a scoped one (`set_default`) misses events
    // whose callsites other test threads registered first (seen in CI).
    // Other tests' log lines land in the capture too, which only widens the
    // check. The subscriber writes to a file of its own, read back below.
    let logs = tempfile::NamedTempFile::new().unwrap();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.reopen().unwrap())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber)
        .expect("no other test in this binary installs a global subscriber");

    let s = Setup::new();
    let rx = Receiver::ok().await;
    let chosen = "whsec_Y2hvc2VuLXNlY3JldC1ieS10aGUtdXNlci0xMjM0NTY3ODk=";
    let (t, first) = s
        .targets
        .create(target("vault", Some(chosen)))
        .await
        .unwrap();
    let (_, generated) = s.targets.rotate(&t.id, None, None).await.unwrap();
    // A push endpoint's path and query may hold its credentials too: the
    // logs name only its origin.
    let push = signet_runtime::PushService::new(
        Arc::clone(&s.db.store),
        s.targets.clone(),
        signet_runtime::SsrfPolicy::parse_allowed("127.0.0.0/8").unwrap(),
    );
    push.bind(
        "vaulted",
        signet_runtime::NewBinding {
            url: rx.url("/hooks/path-s3cret?code=query-s3cret"),
            target: "vault".into(),
            ..signet_runtime::NewBinding::default()
        },
    )
    .await
    .unwrap();
    let mut d = RunningDispatcher::start(s.dispatcher().build().unwrap());
    let id = s
        .publish(json!({"url": rx.url("/v"), "target": "vault"}))
        .await;
    assert_eq!(delivered(&d.next_for(&id).await), 200);
    tokio::time::timeout(crate::support::WAIT, async {
        while !contains(
            &std::fs::read(logs.path()).unwrap(),
            b"draining a bound queue",
        ) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the push loop started");
    d.stop().await;

    let record: TargetRecord = s.db.store.target(&t.id).await.unwrap().unwrap();
    let debug = format!(
        "{record:?} {:?} {first:?} {generated:?} {:?}",
        s.targets,
        s.targets.open(&record).unwrap()
    );
    s.db.store.close().await.unwrap();

    let mut files = Vec::new();
    for entry in std::fs::read_dir(s.db.path.parent().unwrap()).unwrap() {
        let path = entry.unwrap().path();
        files.push((path.display().to_string(), std::fs::read(&path).unwrap()));
    }
    assert!(files.iter().any(|(_, b)| !b.is_empty()));
    let logs = std::fs::read(logs.path()).unwrap();
    assert!(contains(&logs, b"target registered"), "logs were captured");
    for credential in [&b"path-s3cret"[..], b"query-s3cret"] {
        assert!(
            !contains(&logs, credential),
            "a push URL's credential is in the logs"
        );
    }
    for secret in [first.expose_secret(), generated.expose_secret()] {
        let payload = &secret["whsec_".len()..];
        let raw =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, payload).unwrap();
        for needle in [secret.as_bytes(), payload.as_bytes(), &raw[..]] {
            for (name, bytes) in &files {
                assert!(!contains(bytes, needle), "a secret is in clear in {name}");
            }
            assert!(!contains(&logs, needle), "a secret is in the logs");
            assert!(
                !contains(debug.as_bytes(), needle),
                "a secret is in Debug output"
            );
        }
    }
}

#[tokio::test]
async fn publishing_sees_this_process_target_changes_at_once() {
    let s = Setup::new();
    let (t, _) = s.targets.create(target("cached", None)).await.unwrap();
    let publish = |url: &str| {
        NewMessage::from_json(&json!({"url": url, "target": "cached"}).to_string()).unwrap()
    };
    // Two publishes in a row: the second uses the cached lookup.
    for n in 0..2 {
        s.messages
            .publish(publish(&format!("https://example.com/{n}")), None)
            .await
            .unwrap();
    }
    // A new prefix applies to the very next publish.
    s.targets
        .update(
            &t.id,
            TargetPatch {
                url_prefix: Some(Some("https://partner.example/".into())),
                ..TargetPatch::default()
            },
        )
        .await
        .unwrap();
    let e = s
        .messages
        .publish(publish("https://example.com/2"), None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("https://partner.example/"), "{e}");
    // A deleted target too.
    s.targets.delete(&t.id, true).await.unwrap();
    let e = s
        .messages
        .publish(publish("https://partner.example/3"), None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no target"), "{e}");
}

/// Publishes `url` to target `name`; the refusal's message, if refused.
async fn publish_refusal(s: &Setup, url: &str, name: &str) -> Option<String> {
    let m = NewMessage::from_json(&json!({"url": url, "target": name}).to_string()).unwrap();
    match s.messages.publish(m, None).await {
        Ok(_) => None,
        Err(RuntimeError::InvalidField(e)) => {
            let (field, message) = e.into_parts();
            assert_eq!(field, "url", "{message}");
            Some(message)
        }
        Err(other) => panic!("{other}"),
    }
}

#[tokio::test]
async fn url_prefixes_are_origins_and_path_segments_at_publish() {
    let s = Setup::new();
    for (name, prefix) in [
        ("local", "http://localhost"),
        ("port", "http://127.0.0.1:1889"),
        ("hooks", "https://hooks.example/hooks"),
    ] {
        s.targets
            .create(NewTarget {
                url_prefix: Some(prefix.into()),
                ..target(name, None)
            })
            .await
            .unwrap();
    }
    // A string prefix let each of these through.
    let m = publish_refusal(&s, "http://localhost.evil.example/", "local").await;
    assert!(
        m.as_deref()
            .unwrap()
            .contains("host localhost.evil.example"),
        "{m:?}"
    );
    let m = publish_refusal(&s, "http://127.0.0.1:18894/", "port").await;
    assert!(m.as_deref().unwrap().contains("port 18894"), "{m:?}");
    let m = publish_refusal(&s, "https://hooks.example/hooksevil", "hooks").await;
    assert!(m.as_deref().unwrap().contains("path /hooksevil"), "{m:?}");
    let m = publish_refusal(&s, "http://hooks.example/hooks/a", "hooks").await;
    assert!(m.as_deref().unwrap().contains("scheme"), "{m:?}");
    // The same origins and paths below the prefix are admitted.
    assert_eq!(
        publish_refusal(&s, "http://localhost/x", "local").await,
        None
    );
    assert_eq!(
        publish_refusal(&s, "http://127.0.0.1:1889/", "port").await,
        None
    );
    assert_eq!(
        publish_refusal(&s, "https://hooks.example:443/hooks/orders?x=1", "hooks").await,
        None
    );
}

#[tokio::test]
async fn target_secrets_that_cannot_sign_are_refused_at_create_and_rotate() {
    let s = Setup::new();
    // `whsec_!!!…` was stored, then every publish to the target failed.
    for bad in ["whsec_!!!!!!!!!!!!!!!!!!!!", "whsec_c2hvcnQtc2VjcmV0"] {
        let e = TargetSecret::parse(bad).unwrap_err();
        match e {
            RuntimeError::InvalidField(e) => {
                let (field, message) = e.into_parts();
                assert_eq!(field, "secret");
                assert!(message.contains("whsec_"), "{message}");
            }
            other => panic!("{other}"),
        }
    }
    // Rotation takes its secret through the same parse; a good one works.
    let (t, _) = s.targets.create(target("rot", None)).await.unwrap();
    let good =
        TargetSecret::parse("whsec_c2VydmVyLXRlc3QtdGFyZ2V0LXNlY3JldC0zMi1ieXRlcyE=").unwrap();
    s.targets.rotate(&t.id, Some(good), None).await.unwrap();
}

#[tokio::test]
async fn legacy_unkeyed_fingerprints_are_replaced_at_start() {
    let s = Setup::new();
    let (mut t, secret) = s.targets.create(target("legacy", None)).await.unwrap();
    let keyed = t.secret_fingerprint.clone();
    assert!(keyed.starts_with("hmac:"), "{keyed}");
    // A row written by an earlier version: the unkeyed SHA-256 print.
    t.secret_fingerprint = signet_sign::key::fingerprint(secret.expose_secret().as_bytes());
    s.db.store.update_target(t.clone()).await.unwrap();
    assert_eq!(s.targets.verify_master_key().await.unwrap(), 1);
    let after = s.db.store.target(&t.id).await.unwrap().unwrap();
    assert_eq!(after.secret_fingerprint, keyed);
    // Two targets with one secret do not share a fingerprint.
    let chosen = "whsec_Y2hvc2VuLXNlY3JldC1ieS10aGUtdXNlci0xMjM0NTY3ODk=";
    let (a, _) = s
        .targets
        .create(target("same-a", Some(chosen)))
        .await
        .unwrap();
    let (b, _) = s
        .targets
        .create(target("same-b", Some(chosen)))
        .await
        .unwrap();
    assert_ne!(a.secret_fingerprint, b.secret_fingerprint);
}

/// The keys of a master key rotation: 1 is the old key, 2 the new one.
fn key(n: u8) -> MasterKey {
    MasterKey::from_bytes([n; 32])
}

/// Targets on the setup's store under `master`.
fn service(s: &Setup, master: Option<MasterKey>) -> signet_runtime::TargetService {
    signet_runtime::TargetService::with_clock(
        Arc::clone(&s.db.store),
        master,
        Arc::clone(&s.dyn_clock),
    )
}

/// Every target's secrets as they sign now, opened by `targets`: current
/// first, then the ones still in their overlap.
async fn opened(
    targets: &signet_runtime::TargetService,
    now_ms: i64,
) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for t in targets.list().await.unwrap() {
        let secrets = targets.open(&t).unwrap();
        out.push((
            t.id.clone(),
            secrets
                .signing_at(now_ms)
                .map(|s| s.expose_secret().to_owned())
                .collect(),
        ));
    }
    out
}

#[tokio::test]
async fn a_master_key_rotation_survives_an_interrupted_reseal_and_the_old_key_is_refused() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use signet_runtime::ResealOptions;
    use signet_store::testkit::FaultyStore;
    use signet_store::StoreError;

    let s = Setup::with_master_key(Some(key(1)));
    for i in 0..7 {
        s.targets
            .create(target(&format!("t{i}"), None))
            .await
            .unwrap();
    }
    // One target mid-rotation: its previous secret still signs.
    let t3 = s.targets.find("t3").await.unwrap().unwrap();
    s.targets
        .rotate(&t3.id, None, Some(Duration::from_secs(3600)))
        .await
        .unwrap();
    let now = s.dyn_clock.now_ms();
    let before = opened(&s.targets, now).await;
    assert_eq!(before.iter().map(|(_, v)| v.len()).sum::<usize>(), 8);

    // Nodes with the new key and the old one as previous open everything
    // and seal new secrets under the new key only.
    let rotating = service(&s, Some(key(2).with_previous(vec![key(1)])));
    assert_eq!(rotating.verify_master_key().await.unwrap(), 7);
    assert_eq!(opened(&rotating, now).await, before);
    let (fresh, fresh_secret) = rotating.create(target("t7", None)).await.unwrap();
    assert!(service(&s, Some(key(1))).open(&fresh).is_err());
    assert_eq!(
        fresh.secret_fingerprint,
        fresh_secret.fingerprint(&key(2), &fresh.id)
    );
    let before = opened(&rotating, now).await;

    // A re-seal that stops after three swaps (the store goes away).
    let swaps = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&swaps);
    let faulty: Arc<dyn signet_store::Store> =
        Arc::new(FaultyStore::new(Arc::clone(&s.db.store), move |method| {
            (method == "swap_target_secrets" && counted.fetch_add(1, Ordering::SeqCst) >= 3)
                .then(|| StoreError::Invalid("the store went away".into()))
        }));
    let interrupted =
        signet_runtime::TargetService::new(faulty, Some(key(2).with_previous(vec![key(1)])));
    let e = interrupted
        .reseal(
            ResealOptions {
                batch: 2,
                dry_run: false,
            },
            |_| {},
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("the store went away"), "{e}");

    // Half done: every target still opens on the rotating nodes, and a
    // dry run counts what is left without changing it.
    assert_eq!(opened(&rotating, now).await, before);
    let dry = rotating
        .reseal(
            ResealOptions {
                batch: 2,
                dry_run: true,
            },
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!(
        (dry.total, dry.resealed, dry.already_current),
        (8, 4, 4),
        "{dry:?}"
    );
    let dry_again = rotating
        .reseal(
            ResealOptions {
                batch: 2,
                dry_run: true,
            },
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!(dry_again, dry, "a dry run changes nothing");

    // The rerun finishes, reporting each page.
    let mut pages = Vec::new();
    let done = rotating
        .reseal(
            ResealOptions {
                batch: 3,
                dry_run: false,
            },
            |p| pages.push((p.checked, p.total)),
        )
        .await
        .unwrap();
    assert_eq!(pages, [(3, 8), (6, 8), (8, 8)]);
    assert_eq!((done.resealed, done.already_current, done.gone), (4, 4, 0));
    assert!(done.is_complete());
    let again = rotating
        .reseal(ResealOptions::default(), |_| {})
        .await
        .unwrap();
    assert_eq!(
        (again.resealed, again.already_current),
        (0, 8),
        "idempotent"
    );

    // Everything is under the new key alone: same secrets (overlap kept),
    // fingerprints keyed by the new key.
    let new_only = service(&s, Some(key(2)));
    assert_eq!(new_only.verify_master_key().await.unwrap(), 8);
    assert_eq!(opened(&new_only, now).await, before);
    for t in new_only.list().await.unwrap() {
        let secrets = new_only.open(&t).unwrap();
        assert_eq!(
            t.secret_fingerprint,
            secrets.current().unwrap().fingerprint(&key(2), &t.id),
            "{}",
            t.name
        );
    }

    // A node started with only the old key refuses, saying what to do.
    match service(&s, Some(key(1)))
        .verify_master_key()
        .await
        .unwrap_err()
    {
        RuntimeError::MasterKey(m) => {
            assert!(m.contains("not the key"), "{m}");
            assert!(m.contains("SIGNET_MASTER_KEY_PREVIOUS"), "{m}");
            assert!(m.contains(&key(1).fingerprint()), "{m}");
        }
        other => panic!("{other}"),
    }

    // And the target mid-rotation delivers, signed by both of its secrets,
    // through a dispatcher holding only the new key.
    let rx = Receiver::ok().await;
    let mut d = RunningDispatcher::start(s.dispatcher().targets(new_only.clone()).build().unwrap());
    let producer = signet_runtime::Producer::with_ring(
        Arc::clone(&s.db.store),
        Arc::new(s.ring.duplicate()),
        true,
    )
    .unwrap()
    .clock(Arc::clone(&s.dyn_clock));
    let messages = signet_runtime::MessageProducer::new(producer, new_only.clone())
        .retry_schedule(test_schedule());
    let m =
        NewMessage::from_json(&json!({"url": rx.url("/after-reseal"), "target": "t3"}).to_string())
            .unwrap();
    let id = messages
        .publish(m, None)
        .await
        .unwrap()
        .task
        .id()
        .to_owned();
    assert_eq!(delivered(&d.next_for(&id).await), 200);
    let r = rx.wait_for(1).await.pop().unwrap();
    let t3_secrets = &before.iter().find(|(id, _)| *id == t3.id).unwrap().1;
    assert_eq!(t3_secrets.len(), 2);
    for secret in t3_secrets {
        verify_standard(&ring_of(secret), &r, s.now_s()).expect("each secret still signs");
    }
    d.stop().await;
}

#[tokio::test]
async fn a_secret_no_key_opens_is_reported_by_id_and_the_rest_are_resealed() {
    use signet_runtime::ResealOptions;

    let s = Setup::with_master_key(Some(key(1)));
    s.targets.create(target("a", None)).await.unwrap();
    let (lost, _) = service(&s, Some(key(3)))
        .create(target("lost", None))
        .await
        .unwrap();
    s.targets.create(target("b", None)).await.unwrap();

    let rotating = service(&s, Some(key(2).with_previous(vec![key(1)])));
    let report = rotating
        .reseal(ResealOptions::default(), |_| {})
        .await
        .unwrap();
    assert_eq!((report.total, report.resealed), (3, 2), "{report:?}");
    assert!(!report.is_complete());
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].target_id, lost.id);
    let reason = &report.failed[0].reason;
    assert!(reason.contains("different master key"), "{reason}");
    let text = format!("{report:?}");
    for k in [key(1), key(2), key(3)] {
        assert!(!text.contains(k.to_base64_for_display().as_str()), "{text}");
    }
    // Without a master key nothing is re-sealed, with a clear error.
    let e = service(&s, None)
        .reseal(ResealOptions::default(), |_| {})
        .await
        .unwrap_err();
    assert!(e.to_string().contains("SIGNET_MASTER_KEY"), "{e}");
}
