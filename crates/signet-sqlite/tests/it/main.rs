//! Integration tests of the SQLite store: the conformance suite, then what
//! only SQLite has (files, locks, disk space, migrations, group commit).

mod conformance;
mod delivery;
mod sqlite;
mod throughput;

use std::sync::atomic::{AtomicUsize, Ordering};

use signet_sqlite::{SqliteConfig, SqliteStore, Synchronous};
use tempfile::TempDir;

/// A temporary directory that hands out fresh database files.
pub(crate) struct TempDb {
    dir: TempDir,
    next: AtomicUsize,
}

impl TempDb {
    pub(crate) fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            next: AtomicUsize::new(0),
        }
    }

    /// A new database URL in the directory.
    pub(crate) fn url(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("sqlite://{}/db{n}.sqlite", self.dir.path().display())
    }

    /// Opens a new database with `config`.
    pub(crate) fn open(&self, config: SqliteConfig) -> (SqliteStore, String) {
        let url = self.url();
        let store = SqliteStore::open(&url, config).expect("open");
        (store, url)
    }
}

/// Faster commits for tests that do not test durability.
pub(crate) fn fast() -> SqliteConfig {
    SqliteConfig {
        synchronous: Synchronous::Normal,
        ..SqliteConfig::default()
    }
}
