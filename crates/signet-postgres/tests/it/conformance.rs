//! The `signet_store` conformance suite on PostgreSQL, one test per check
//! (`conformance::postgres::*`), each in a schema of its own. Without
//! `SIGNET_TEST_DATABASE_URL` every check skips, saying so.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use signet_postgres::PostgresStore;
use signet_store::testkit::{Check, Harness};
use signet_store::Store;

use crate::{drop_schema, fresh_schema, test_database_url, test_options, NO_DATABASE};

/// Opens each store in a new schema, and drops the schemas once the check
/// passed (a failed check leaves its schema to look at).
struct PgHarness {
    url: Option<String>,
    schemas: Mutex<Vec<String>>,
}

impl PgHarness {
    fn from_env() -> Self {
        Self {
            url: test_database_url(),
            schemas: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait]
impl Harness for PgHarness {
    async fn fresh(&self) -> Arc<dyn Store> {
        let url = self
            .url
            .as_deref()
            .expect("skip() refuses every check without a database");
        let schema = fresh_schema("ck");
        let store = PostgresStore::connect(url, test_options(&schema))
            .await
            .unwrap_or_else(|e| panic!("connect in schema {schema}: {e}"));
        self.schemas
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(schema);
        Arc::new(store)
    }

    fn skip(&self, _check: Check) -> Option<&'static str> {
        self.url.is_none().then_some(NO_DATABASE)
    }

    async fn cleanup(&self) {
        let schemas =
            std::mem::take(&mut *self.schemas.lock().unwrap_or_else(PoisonError::into_inner));
        if let Some(url) = &self.url {
            for schema in schemas {
                drop_schema(url, &schema).await;
            }
        }
    }
}

signet_store::conformance_tests!(postgres, PgHarness::from_env());
