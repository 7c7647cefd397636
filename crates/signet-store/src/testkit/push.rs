//! Push bindings: queues bound to an HTTP endpoint.

use std::sync::Arc;

use super::T0;
use crate::{PushBinding, Store, StoreError, TargetId, MESSAGE_QUEUE};

fn binding(queue: &str) -> PushBinding {
    PushBinding {
        queue: queue.to_owned(),
        url: "https://hooks.example.com/push".to_owned(),
        target_id: TargetId::generate().to_string(),
        timeout_ms: 30_000,
        concurrency: 10,
        require_signed_response: false,
        created_at_ms: T0,
        updated_at_ms: T0,
    }
}

/// Push bindings: bind, read, list by queue, rebind keeps the creation
/// time, unbind; invalid bindings are refused and store nothing.
pub(super) async fn push_bindings(store: Arc<dyn Store>) {
    assert!(store.list_push_bindings().await.unwrap().is_empty());
    assert_eq!(store.push_binding("emails").await.unwrap(), None);

    let a = binding("emails");
    let stored = store.put_push_binding(a.clone()).await.unwrap();
    assert_eq!(stored, a, "a new binding is stored as given");
    let mut b = binding("a.orders:v2");
    b.require_signed_response = true;
    b.timeout_ms = 1_000;
    b.concurrency = 1_000;
    store.put_push_binding(b.clone()).await.unwrap();
    assert_eq!(store.push_binding("emails").await.unwrap(), Some(a.clone()));
    assert_eq!(
        store.list_push_bindings().await.unwrap(),
        vec![b.clone(), a.clone()],
        "listed by queue"
    );

    // Rebinding replaces every field but the creation time.
    let changed = PushBinding {
        url: "http://other.example.com:8080/p?x=1".into(),
        target_id: TargetId::generate().to_string(),
        timeout_ms: 300_000,
        concurrency: 3,
        require_signed_response: true,
        created_at_ms: T0 + 50,
        updated_at_ms: T0 + 60,
        ..a.clone()
    };
    let stored = store.put_push_binding(changed.clone()).await.unwrap();
    let want = PushBinding {
        created_at_ms: T0,
        ..changed
    };
    assert_eq!(stored, want, "a rebind keeps the first created_at_ms");
    assert_eq!(store.push_binding("emails").await.unwrap(), Some(want));

    let refused = [
        ("Signet's own queue", binding(MESSAGE_QUEUE)),
        ("a bad queue name", binding("two words")),
        ("a URL that is not http", {
            let mut x = binding("x1");
            x.url = "ftp://example.com/".into();
            x
        }),
        ("a target id that is not one", {
            let mut x = binding("x2");
            x.target_id = "sch_123".into();
            x
        }),
        ("a timeout under a second", {
            let mut x = binding("x3");
            x.timeout_ms = 999;
            x
        }),
        ("a timeout over five minutes", {
            let mut x = binding("x4");
            x.timeout_ms = 300_001;
            x
        }),
        ("concurrency 0", {
            let mut x = binding("x5");
            x.concurrency = 0;
            x
        }),
        ("concurrency over 1000", {
            let mut x = binding("x6");
            x.concurrency = 1_001;
            x
        }),
    ];
    for (what, bad) in refused {
        let queue = bad.queue.clone();
        match store.put_push_binding(bad).await {
            Err(StoreError::Invalid(_)) => {}
            other => panic!("{what}: want Invalid, got {other:?}"),
        }
        assert_eq!(
            store.push_binding(&queue).await.unwrap(),
            None,
            "{what}: nothing stored"
        );
    }

    store.delete_push_binding("emails").await.unwrap();
    assert_eq!(store.push_binding("emails").await.unwrap(), None);
    match store.delete_push_binding("emails").await {
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("unbinding twice: want NotFound, got {other:?}"),
    }
    assert_eq!(store.list_push_bindings().await.unwrap(), vec![b]);
}
