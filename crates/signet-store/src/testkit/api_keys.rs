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
