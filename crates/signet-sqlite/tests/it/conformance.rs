//! The `signet_store` conformance suite on SQLite, one test per check, on a
//! file (`conformance::file::*`) and in memory (`conformance::memory::*`).

use std::sync::Arc;

use async_trait::async_trait;
use signet_sqlite::{SqliteConfig, SqliteStore};
use signet_store::testkit::{self, run_check, Check, Harness};
use signet_store::Store;

use crate::{fast, TempDb};

struct FileHarness {
    db: TempDb,
    config: SqliteConfig,
}

impl FileHarness {
    fn new(config: SqliteConfig) -> Self {
        Self {
            db: TempDb::new(),
            config,
        }
    }
}

#[async_trait]
impl Harness for FileHarness {
    async fn fresh(&self) -> Arc<dyn Store> {
        Arc::new(self.db.open(self.config.clone()).0)
    }
}

struct MemoryHarness;

#[async_trait]
impl Harness for MemoryHarness {
    async fn fresh(&self) -> Arc<dyn Store> {
        Arc::new(SqliteStore::open("sqlite::memory:", SqliteConfig::default()).expect("open"))
    }
}

signet_store::conformance_tests!(file, FileHarness::new(fast()));
signet_store::conformance_tests!(memory, MemoryHarness);

/// The durable default (`synchronous=FULL`) and reads through the writer
/// (no reader pool) behave the same on the checks that stress the writer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_writer_only_configuration() {
    let h = FileHarness::new(SqliteConfig {
        read_connections: 0,
        ..SqliteConfig::default()
    });
    for check in [
        Check::ConcurrentClaims,
        Check::BatchAtomic,
        Check::Idempotency,
        Check::Close,
    ] {
        run_check(&h, check).await;
    }
}

#[test]
fn every_check_has_a_unique_name() {
    let mut names: Vec<&str> = Check::ALL.iter().map(|c| c.name()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), Check::ALL.len());
    assert!(names.contains(&"round_trip"));
    assert_eq!(testkit::T0, 1_700_000_000_000);
}
