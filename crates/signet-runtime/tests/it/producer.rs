//! The producer: signing rules, validation, idempotency, presigned tasks.

use std::sync::Arc;

use serde_json::json;
use signet_runtime::{Producer, RuntimeError, TaskSpec};
use signet_sign::{KeyRing, SigningConfig};
use signet_store::{NewTask, TaskState, MAX_ARGS_BYTES};

use crate::support::*;

#[tokio::test]
async fn producer_signs_with_the_active_key_and_the_signature_verifies() {
    let db = Db::new();
    let ring = hmac_ring();
    let out = producer(&db, &ring)
        .enqueue(TaskSpec::raw("raw.task", br#"{"x": 1.50}"#.to_vec()).priority(3))
        .await
        .unwrap();
    let row = db.task(out.task.id()).await;
    assert_eq!(
        row.envelope.args, br#"{"x": 1.50}"#,
        "raw args are stored byte for byte"
    );
    assert_eq!(row.priority, 3);
    assert_eq!(row.envelope.queue, "default");
    assert_eq!(
        row.envelope.max_attempts,
        signet_store::DEFAULT_MAX_ATTEMPTS
    );
    let sig = row.signature.unwrap();
    assert_eq!(sig.key_id, "k1");
    let key = row
        .envelope
        .verify(sig.alg, &sig.key_id, &sig.sig, &ring)
        .unwrap();
    assert_eq!(key.as_str(), "k1");
}

#[tokio::test]
async fn signing_required_without_keys_refuses_to_start() {
    let db = Db::new();
    // `SigningConfig::from_vars` already refuses this; build it by hand to
    // check that the runtime refuses it too.
    let config = SigningConfig {
        ring: KeyRing::empty(),
        required: true,
        dev: false,
        warnings: Vec::new(),
    };
    let err = Producer::new(db.store.clone(), &config).unwrap_err();
    assert!(matches!(err, RuntimeError::Config(_)), "{err}");
    assert!(err.to_string().contains("SIGNET_SIGNING_KEYS"), "{err}");
    let err = signet_runtime::Worker::builder(db.store.clone())
        .signing(&config)
        .build()
        .err()
        .expect("worker refuses too");
    assert!(matches!(err, RuntimeError::Config(_)), "{err}");
    // Not required and no keys: tasks go in unsigned.
    let config = SigningConfig::from_vars(Vec::<(String, String)>::new()).unwrap();
    let p = Producer::new(db.store.clone(), &config).unwrap();
    let out = p.enqueue(TaskSpec::new("t", &json!({}))).await.unwrap();
    assert!(out.task.signature.is_none());
}

#[tokio::test]
async fn bad_tasks_are_refused_with_a_reason_and_nothing_is_stored() {
    let db = Db::new();
    let p = producer(&db, &hmac_ring());
    let cases: Vec<(TaskSpec, &str)> = vec![
        (TaskSpec::new("t", &json!({})).queue(""), "queue"),
        (TaskSpec::new("t", &json!({})).queue("has space"), "queue"),
        (
            TaskSpec::new("t", &json!({})).queue("q".repeat(200)),
            "queue",
        ),
        (TaskSpec::new("", &json!({})), "task name"),
        (TaskSpec::raw("t", b"{not json".to_vec()), "not valid JSON"),
        (TaskSpec::raw("t", vec![b' '; MAX_ARGS_BYTES + 1]), "limit"),
        (
            TaskSpec::new("t", &json!({})).max_attempts(0),
            "max_attempts",
        ),
        (
            TaskSpec::new("t", &json!({}))
                .header("a", "1")
                .header("A", "2"),
            "twice",
        ),
        (
            TaskSpec::new("t", &json!({})).callback_url("ftp://x"),
            "callback_url",
        ),
        (
            TaskSpec::new("t", &json!({}))
                .not_before_ms(10)
                .expires_at_ms(5),
            "expires",
        ),
    ];
    for (spec, needle) in cases {
        let err = p.enqueue(spec).await.unwrap_err();
        assert!(
            err.to_string().contains(needle),
            "{err} should mention {needle}"
        );
        assert!(!err.is_retryable());
    }
    let counts = db.store.counts().await.unwrap();
    assert!(counts.is_empty(), "nothing was stored: {counts:?}");
    // A batch with one bad spec stores none of them.
    let err = p
        .enqueue_batch(vec![
            TaskSpec::new("t", &json!({})),
            TaskSpec::new("t", &json!({})).queue("bad queue"),
        ])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("queue"));
    assert!(db.store.counts().await.unwrap().is_empty());
}

#[tokio::test]
async fn idempotency_keys_and_delays() {
    let db = Db::new();
    let p = producer(&db, &hmac_ring());
    let first = p
        .enqueue(TaskSpec::new("t", &json!({ "n": 1 })).idempotency_key("once"))
        .await
        .unwrap();
    let again = p
        .enqueue(TaskSpec::new("t", &json!({ "n": 1 })).idempotency_key("once"))
        .await
        .unwrap();
    assert!(first.created && !again.created);
    assert_eq!(first.task.id(), again.task.id());
    let delayed = p
        .enqueue(TaskSpec::new("t", &json!({})).delay(std::time::Duration::from_secs(3600)))
        .await
        .unwrap();
    assert_eq!(delayed.task.state, TaskState::Scheduled);
    let nb = delayed.task.envelope.not_before_ms.unwrap();
    assert_eq!(nb, delayed.task.envelope.created_at_ms + 3_600_000);
}

#[tokio::test]
async fn presigned_tasks_are_stored_as_given_and_unsigned_ones_refused() {
    let db = Db::new();
    let ring = hmac_ring();
    let client = Producer::with_ring(db.store.clone(), Arc::new(KeyRing::empty()), false).unwrap();
    // Build an envelope the way a client would, sign it with the shared key.
    let mut envelope = client
        .enqueue(TaskSpec::new("x", &json!({})).queue("scratch"))
        .await
        .unwrap()
        .task
        .envelope;
    envelope.id = signet_store::TaskId::generate().into();
    let sig = envelope.sign(&ring).unwrap();
    let task = NewTask {
        envelope: envelope.clone(),
        signature: Some(signet_store::SignatureRecord {
            alg: sig.alg,
            key_id: sig.key_id.as_str().to_owned(),
            sig: sig.sig.clone(),
        }),
        priority: 0,
        idempotency_key: None,
        idempotency_scope: signet_store::IdempotencyScope::Local,
        fingerprint: signet_store::Fingerprint::new(),
    };
    let server = producer(&db, &ring);
    let out = server.enqueue_presigned(task).await.unwrap();
    assert_eq!(out.task.envelope, envelope);
    assert_eq!(out.task.signature.unwrap().sig, sig.sig);
    let mut unsigned = NewTask {
        envelope,
        signature: None,
        priority: 0,
        idempotency_key: None,
        idempotency_scope: signet_store::IdempotencyScope::Local,
        fingerprint: signet_store::Fingerprint::new(),
    };
    unsigned.envelope.id = signet_store::TaskId::generate().into();
    let err = server.enqueue_presigned(unsigned).await.unwrap_err();
    assert!(err.to_string().contains("unsigned"), "{err}");
}

#[tokio::test]
async fn client_signed_tasks_are_verified_and_stored_unchanged() {
    use base64::Engine as _;
    use signet_runtime::ClientSignature;

    let db = Db::new();
    let ring = hmac_ring();
    let p = producer(&db, &ring);
    let id: String = signet_store::TaskId::generate().into();
    let created = 1_700_000_000_000;
    let spec = || {
        TaskSpec::raw("charge", br#"{"amount": 100}"#.to_vec())
            .queue("payments")
            .id(id.clone())
            .created_at_ms(created)
    };
    // The envelope the client signs is the one the spec makes.
    let envelope = signet_sign::TaskEnvelope {
        id: id.clone(),
        queue: "payments".into(),
        name: "charge".into(),
        args: br#"{"amount": 100}"#.to_vec(),
        headers: Default::default(),
        created_at_ms: created,
        not_before_ms: None,
        expires_at_ms: None,
        max_attempts: signet_store::DEFAULT_MAX_ATTEMPTS,
        callback_url: None,
    };
    let sig = envelope.sign(&ring).unwrap();
    let signature = |sig_base64: String| ClientSignature {
        alg: sig.alg.to_string(),
        key_id: sig.key_id.as_str().to_owned(),
        sig_base64,
    };
    let good = base64::engine::general_purpose::STANDARD.encode(&sig.sig);
    // Tampered args do not verify; nothing is stored.
    let tampered = TaskSpec::raw("charge", br#"{"amount": 1000}"#.to_vec())
        .queue("payments")
        .id(id.clone())
        .created_at_ms(created);
    let err = p
        .enqueue_signed(tampered, signature(good.clone()))
        .await
        .unwrap_err();
    match &err {
        RuntimeError::SignatureRejected(e) => assert!(e.is_mismatch(), "{e}"),
        other => panic!("expected a rejected signature, got {other}"),
    }
    let err = p
        .enqueue_signed(spec(), signature("%%%".into()))
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::SignatureRejected(_)), "{err}");
    // A relative delay cannot be signed; the id is required.
    let err = p
        .enqueue_signed(spec().delay_ms(5), signature(good.clone()))
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("delay_ms:"), "{err}");
    let err = p
        .enqueue_signed(
            TaskSpec::raw("charge", b"{}".to_vec()).created_at_ms(created),
            signature(good.clone()),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("id:"), "{err}");
    assert!(db.store.counts().await.unwrap().is_empty());
    // The signed envelope is stored byte for byte with its signature.
    let out = p.enqueue_signed(spec(), signature(good)).await.unwrap();
    assert_eq!(out.task.envelope, envelope);
    assert_eq!(out.task.signature.unwrap().sig, sig.sig);
    // An id or creation time is refused on a task the producer signs.
    let err = p.enqueue(spec()).await.unwrap_err();
    assert!(err.to_string().starts_with("id:"), "{err}");
}

/// A reused key: the same request (a relative delay included, retried
/// later) returns the original; a different one is a conflict naming the
/// key and the fields; another scope or a system key is its own.
#[tokio::test]
async fn a_reused_key_returns_the_original_or_names_what_differs() {
    use signet_runtime::ManualClock;
    use signet_store::IdempotencyScope;
    use std::time::Duration;

    let db = Db::new();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let p = producer(&db, &hmac_ring()).clock(clock.clone());
    let spec = |n: i32| {
        TaskSpec::new("t", &json!({ "n": n }))
            .delay(Duration::from_secs(60))
            .expires_in(Duration::from_secs(3600))
            .idempotency_key("order-7")
    };
    let first = p.enqueue(spec(1)).await.unwrap();
    clock.advance(Duration::from_secs(5));
    let retry = p.enqueue(spec(1)).await.unwrap();
    assert!(first.created && !retry.created);
    assert_eq!(retry.task.id(), first.task.id());

    let err = p.enqueue(spec(2).priority(3)).await.unwrap_err();
    match &err {
        RuntimeError::IdempotencyConflict(c) => {
            assert_eq!(c.key, "order-7");
            assert_eq!(c.fields, ["args", "priority"]);
        }
        other => panic!("expected an idempotency conflict, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "Idempotency-Key \"order-7\" was first used with a different request (args, priority differ); use a new key for a new request"
    );
    assert!(!err.is_retryable());

    // Another caller's scope: its own task.
    let other = p
        .enqueue(spec(2).idempotency_scope(IdempotencyScope::ApiKey("key_other".into())))
        .await
        .unwrap();
    assert!(other.created);
    assert_ne!(other.task.id(), first.task.id());
    // A batch with a conflicting task stores nothing.
    let before = db.store.counts().await.unwrap();
    let err = p
        .enqueue_batch(vec![TaskSpec::new("fresh", &json!({})), spec(3)])
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::IdempotencyConflict(_)), "{err}");
    assert_eq!(db.store.counts().await.unwrap(), before);
}
