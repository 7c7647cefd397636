//! `signet_store::testkit::exercise()` on PostgreSQL, one schema per store.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use signet_store::testkit::{exercise, Check, Harness};
use signet_store::Store;

use crate::{database_url, drop_schema, fresh_schema, test_options};

struct PgHarness {
    url: String,
    schemas: Mutex<Vec<String>>,
}

#[async_trait]
impl Harness for PgHarness {
    async fn fresh(&self) -> Arc<dyn Store> {
        let schema = fresh_schema("ck");
        let store = signet_postgres::PostgresStore::connect(&self.url, test_options(&schema))
            .await
            .unwrap_or_else(|e| panic!("connect in schema {schema}: {e}"));
        self.schemas
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(schema);
        Arc::new(store)
    }
}

impl PgHarness {
    async fn cleanup(&self) {
        let schemas = std::mem::take(
            &mut *self
                .schemas
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for s in schemas {
            drop_schema(&self.url, &s).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exercise_on_postgres() {
    let Some(url) = database_url("exercise_on_postgres") else {
        return;
    };
    let h = PgHarness {
        url,
        schemas: Mutex::new(Vec::new()),
    };
    exercise(&h).await;
    assert!(
        !h.schemas.lock().expect("lock").is_empty() || Check::ALL.is_empty(),
        "the suite ran no check"
    );
    h.cleanup().await;
}
