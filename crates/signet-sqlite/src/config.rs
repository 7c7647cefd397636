//! Configuration of a [`SqliteStore`](crate::SqliteStore).

use std::time::Duration;

/// How hard SQLite works to make a commit durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// `synchronous=FULL`: a commit is on disk before it is acknowledged, so
    /// an acknowledged enqueue survives power loss. The default.
    #[default]
    Full,
    /// `synchronous=NORMAL`: faster; in WAL mode the last commits before a
    /// power loss (not a process crash) may be lost. Only by explicit choice.
    Normal,
}

impl Synchronous {
    pub(crate) fn pragma_value(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// Default time a write waits for a lock held by another process.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Default number of read-only connections (WAL readers).
pub const DEFAULT_READ_CONNECTIONS: usize = 4;
/// Default largest number of queued operations the writer commits together.
pub const DEFAULT_MAX_BATCH: usize = 512;
/// Size the WAL file is truncated back to after a checkpoint resets it
/// (`PRAGMA journal_size_limit`), in bytes: the WAL stays small in steady
/// state, so the space it holds is never what stops the store from
/// recovering after the disk filled up.
pub const JOURNAL_SIZE_LIMIT_BYTES: u64 = 64 * 1024 * 1024;
/// Default page cache of the writer connection, in KiB.
pub const DEFAULT_CACHE_KIB: u32 = 16 * 1024;

/// Settings of a [`SqliteStore`](crate::SqliteStore).
#[derive(Clone, Debug)]
pub struct SqliteConfig {
    /// Durability of commits ([`Synchronous::Full`] by default).
    pub synchronous: Synchronous,
    /// How long an operation waits for a lock held by another process
    /// before failing with `StoreError::Busy`.
    pub busy_timeout: Duration,
    /// Read-only connections serving listings and lookups. 0 sends reads
    /// through the writer. In-memory databases always use 0.
    pub read_connections: usize,
    /// Most operations committed in one transaction by the writer.
    pub max_batch: usize,
    /// Page cache of the writer connection, in KiB.
    pub cache_kib: u32,
    /// Caps the database size at this many pages (`PRAGMA max_page_count`);
    /// writes beyond it fail with `StoreError::Full`. `None`: no cap.
    pub max_page_count: Option<u64>,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            read_connections: DEFAULT_READ_CONNECTIONS,
            max_batch: DEFAULT_MAX_BATCH,
            cache_kib: DEFAULT_CACHE_KIB,
            max_page_count: None,
        }
    }
}
