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
        Some(code) if unavailable(code) => StoreError::Unavailable {
            message: unavailable_message(format_args!("{context}: {}", cause(&e))),
            source: Some(Box::new(e)),
        },
        Some(ErrorCode::ConstraintViolation) => {
            StoreError::Conflict(format!("{context}: a database constraint refused it ({e})"))
        }
        _ => StoreError::backend(format!("{context}: {}", cause(&e)), e),
    }
}

/// SQLite's own words for `e` and its extended result code ("attempt to
/// write a readonly database (SQLite code 1032)"), so a log line or an
/// error says what went wrong instead of a bare "SQLite error".
pub(crate) fn cause(e: &rusqlite::Error) -> String {
    match e.sqlite_error() {
        Some(ffi) => {
            let words = match e {
                rusqlite::Error::SqliteFailure(_, Some(message)) => message.clone(),
                _ => ffi.to_string(),
            };
            format!("{words} (SQLite code {})", ffi.extended_code)
        }
        None => e.to_string(),
    }
}

/// Codes meaning the database cannot be written until an operator acts.
fn unavailable(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::ReadOnly
            | ErrorCode::PermissionDenied
            | ErrorCode::CannotOpen
            | ErrorCode::SystemIoFailure
    )
}

fn unavailable_message(what: impl Display) -> String {
    format!(
        "{what}; nothing was written. Check that the database file, its directory and \
         its -wal and -shm files are writable by this user and that the file system is mounted \
         read-write with space left; Signet retries on its own once they are"
    )
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
        "{context}: the disk is full or the database reached its size limit; nothing was written. \
         Free disk space (the WAL is checkpointed and truncated on its own once writes succeed again)"
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
    Unavailable,
    Closed,
    Other,
}

impl Failure {
    /// From a SQLite error met while doing `context`.
    pub(crate) fn from_sqlite(context: &str, e: &rusqlite::Error) -> Self {
        let kind = match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => FailureKind::Busy,
            Some(ErrorCode::DiskFull) => FailureKind::Full,
            Some(code) if unavailable(code) => FailureKind::Unavailable,
            _ => FailureKind::Other,
        };
        Self {
            kind,
            message: format!("{context}: {}", cause(e)),
        }
    }

    /// From the error an operation of the same commit got, when SQLite then
    /// rolled the whole transaction back.
    pub(crate) fn from_store_error(e: &StoreError) -> Self {
        let kind = match e {
            StoreError::Busy { .. } => FailureKind::Busy,
            StoreError::Full { .. } => FailureKind::Full,
            StoreError::Unavailable { .. } => FailureKind::Unavailable,
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

    /// Whether storage could not be written (full, read-only, I/O).
    pub(crate) fn is_storage(&self) -> bool {
        matches!(self.kind, FailureKind::Full | FailureKind::Unavailable)
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
            FailureKind::Unavailable => StoreError::Unavailable {
                message: unavailable_message(&self.message),
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

    #[test]
    fn read_only_is_unavailable_and_errors_carry_sqlites_words() {
        let ro = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
            Some("attempt to write a readonly database".into()),
        );
        let e = map_err("enqueue", ro);
        assert!(matches!(e, StoreError::Unavailable { .. }), "{e:?}");
        assert!(e.is_storage_unavailable());
        let text = e.to_string();
        assert!(
            text.contains("attempt to write a readonly database"),
            "{text}"
        );
        assert!(text.contains("SQLite code 8"), "{text}");
        assert!(text.contains("writable"), "{text}");
        // Anything else names SQLite's cause, not a bare "SQLite error".
        let other = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            Some("database disk image is malformed".into()),
        );
        let text = map_err("claiming", other).to_string();
        assert!(text.contains("database disk image is malformed"), "{text}");
        let failure = Failure::from_sqlite(
            "committing",
            &rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
                None,
            ),
        );
        assert!(matches!(failure.to_error(), StoreError::Unavailable { .. }));
    }
}
