//! API keys: create, look up by hash, list, revoke.

use std::sync::Arc;

use super::{assert_invalid, assert_not_found, T0};
use crate::{ApiKeyId, ApiKeyRecord, Store, StoreError};

/// API keys: create, look up by hash, list, revoke.
pub(super) async fn api_keys(store: Arc<dyn Store>) {
    let s = &*store;
    let key = |name: &str, hash: &str, at: i64| ApiKeyRecord {
        id: ApiKeyId::generate().to_string(),
        name: name.into(),
        scope: "publish".into(),
        hash: hash.into(),
        prefix: "sk_abcd".into(),
        created_at_ms: at,
        revoked_at_ms: None,
    };
    let a = key("ci", &"a".repeat(64), T0);
    let b = key("ops", &"b".repeat(64), T0 + 1);
    s.create_api_key(a.clone()).await.expect("create a");
    s.create_api_key(b.clone()).await.expect("create b");
    assert_eq!(
        s.api_key_by_hash(&a.hash).await.expect("by hash"),
        Some(a.clone())
    );
    assert_eq!(s.api_key_by_hash("ffff").await.expect("by hash"), None);
    assert_eq!(
        s.list_api_keys().await.expect("list"),
        vec![a.clone(), b.clone()]
    );
    let mut dup_hash = key("dup", &a.hash, T0 + 2);
    dup_hash.name = "dup".into();
    assert!(
        matches!(
            s.create_api_key(dup_hash).await,
            Err(StoreError::Conflict(_))
        ),
        "a second key with the same hash is a conflict"
    );
    let mut bad = key("bad", "c", T0);
    bad.id = "sk_oops".into();
    assert_invalid("api key id without key_", s.create_api_key(bad).await);

    let revoked = s.revoke_api_key(&a.id, T0 + 50).await.expect("revoke");
    assert_eq!(revoked.revoked_at_ms, Some(T0 + 50));
    let again = s
        .revoke_api_key(&a.id, T0 + 60)
        .await
        .expect("revoke twice");
    assert_eq!(
        again.revoked_at_ms,
        Some(T0 + 50),
        "first revocation time stays"
    );
    let found = s
        .api_key_by_hash(&a.hash)
        .await
        .expect("by hash")
        .expect("revoked keys are still found");
    assert_eq!(found.revoked_at_ms, Some(T0 + 50));
    assert_not_found(
        "revoke unknown",
        s.revoke_api_key(&ApiKeyId::generate().to_string(), T0)
            .await,
    );
}

/// Signed-out console sessions: recorded once, seen by every reader, kept
/// until their expiry, then pruned in batches.
pub(super) async fn ended_sessions(store: Arc<dyn Store>) {
    let s = &*store;
    assert!(
        !s.session_ended("s1").await.expect("lookup"),
        "not ended yet"
    );
    s.end_session("s1", T0 + 100).await.expect("end s1");
    assert!(s.session_ended("s1").await.expect("lookup"));
    assert!(!s.session_ended("s2").await.expect("lookup"), "only s1");
    // Ending twice is fine, and keeps the first expiry.
    s.end_session("s1", T0 + 10_000)
        .await
        .expect("end s1 again");
    s.end_session("s2", T0 + 200).await.expect("end s2");
    s.end_session("s3", T0 + 300).await.expect("end s3");
    assert_invalid("empty id", s.end_session("", T0).await);
    assert_invalid("long id", s.end_session(&"x".repeat(129), T0).await);

    // The expiry is exclusive: a row expiring at now stays.
    assert_eq!(
        s.prune_ended_sessions(T0 + 100, 10).await.expect("prune"),
        0
    );
    assert_eq!(
        s.prune_ended_sessions(T0 + 10_000, 0).await.expect("prune"),
        0
    );
    assert_eq!(
        s.prune_ended_sessions(T0 + 301, 2).await.expect("prune"),
        2,
        "limit"
    );
    assert_eq!(
        s.prune_ended_sessions(T0 + 301, 10).await.expect("prune"),
        1
    );
    for id in ["s1", "s2", "s3"] {
        assert!(!s.session_ended(id).await.expect("lookup"), "{id} pruned");
    }
}
