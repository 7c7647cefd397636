//! Turning SQLite errors into [`StoreError`]s that say what to do.

use std::fmt::Display;

use rusqlite::ErrorCode;
use signet_store::StoreError;

/// Maps a SQLite error met while doing `context`.
pub(crate) fn map_err(context: impl Display, e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy {
            message: busy_message(context),
            source: Some(Box::new(e)),
        },
        Some(ErrorCode::DiskFull) => StoreError::Full {
            message: full_message(context),
            source: Some(Box::new(e)),
        },
        Some(ErrorCode::ConstraintViolation) => {
            StoreError::Conflict(format!("{context}: a database constraint refused it ({e})"))
        }
        _ => StoreError::backend(format!("{context}: SQLite error"), e),
    }
}

fn busy_message(context: impl Display) -> String {
    format!(
        "{context}: the database file is locked by another process and stayed locked past the busy timeout; \
         nothing was written. Stop the other process holding the lock (another signet, or a sqlite3 shell \
         inside a transaction), or raise the busy timeout, then retry"
    )
}

fn full_message(context: impl Display) -> String {
    format!(
        "{context}: the disk is full or the database reached its size limit; nothing was written"
    )
}

/// A failure that hit a whole group commit, reported to every operation in it.
#[derive(Clone, Debug)]
pub(crate) struct Failure {
    kind: FailureKind,
    message: String,
}

#[derive(Clone, Copy, Debug)]
enum FailureKind {
    Busy,
    Full,
    Closed,
    Other,
}

impl Failure {
    /// From a SQLite error met while doing `context`.
    pub(crate) fn from_sqlite(context: &str, e: &rusqlite::Error) -> Self {
        let kind = match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => FailureKind::Busy,
            Some(ErrorCode::DiskFull) => FailureKind::Full,
            _ => FailureKind::Other,
        };
        Self {
            kind,
            message: format!("{context}: {e}"),
        }
    }

    /// From the error an operation of the same commit got, when SQLite then
    /// rolled the whole transaction back.
    pub(crate) fn from_store_error(e: &StoreError) -> Self {
        let kind = match e {
            StoreError::Busy { .. } => FailureKind::Busy,
            StoreError::Full { .. } => FailureKind::Full,
            _ => FailureKind::Other,
        };
        Self {
            kind,
            message: format!(
                "the transaction was rolled back by SQLite after another operation in the same commit failed ({e})"
            ),
        }
    }

    /// SQLite ended the transaction without saying why.
    pub(crate) fn rolled_back() -> Self {
        Self {
            kind: FailureKind::Other,
            message: "the transaction was rolled back by SQLite".into(),
        }
    }

    /// The writer has stopped.
    pub(crate) fn closed() -> Self {
        Self {
            kind: FailureKind::Closed,
            message: String::new(),
        }
    }

    /// A fresh error for one operation.
    pub(crate) fn to_error(&self) -> StoreError {
        match self.kind {
            FailureKind::Busy => StoreError::Busy {
                message: busy_message(&self.message),
                source: None,
            },
            FailureKind::Full => StoreError::Full {
                message: full_message(&self.message),
                source: None,
            },
            FailureKind::Closed => StoreError::Closed,
            FailureKind::Other => {
                StoreError::backend("commit failed; nothing was written", self.message.clone())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_and_full_are_recognised() {
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        let e = map_err("enqueue", busy);
        assert!(matches!(e, StoreError::Busy { .. }));
        assert!(e.to_string().contains("locked by another process"));
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        assert!(matches!(map_err("enqueue", full), StoreError::Full { .. }));
    }
}
