//! Turning PostgreSQL and pool errors into [`StoreError`]s that say what to do.

use std::fmt::Display;

use deadpool_postgres::PoolError;
use signet_store::StoreError;
use tokio_postgres::error::SqlState;

/// Maps a driver error met while doing `context`.
pub(crate) fn map_err(context: impl Display, e: tokio_postgres::Error) -> StoreError {
    let Some(code) = e.code() else {
        // No SQLSTATE: the connection broke, or it could not be made.
        return connection_lost(context, e);
    };
    if *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
        || *code == SqlState::LOCK_NOT_AVAILABLE
        || *code == SqlState::QUERY_CANCELED
    {
        StoreError::Busy {
            message: format!(
                "{context}: PostgreSQL gave up on the statement because of a conflict with another \
                 transaction ({}); nothing was written, retry",
                code.code()
            ),
            source: Some(Box::new(e)),
        }
    } else if *code == SqlState::DISK_FULL
        || *code == SqlState::INSUFFICIENT_RESOURCES
        || *code == SqlState::OUT_OF_MEMORY
    {
        StoreError::Full {
            message: format!(
                "{context}: PostgreSQL is out of disk space or memory ({})",
                code.code()
            ),
            source: Some(Box::new(e)),
        }
    } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION
        || *code == SqlState::INSUFFICIENT_PRIVILEGE
        || code.code().starts_with("58")
    {
        // 25006: a standby or `default_transaction_read_only`; 42501: the
        // role may not write these tables; 58xxx: an I/O error on the
        // server.
        StoreError::Unavailable {
            message: format!(
                "{context}: PostgreSQL cannot write ({}: {}); nothing was written. Point \
                 SIGNET_DATABASE_URL at the primary with a role that may write the Signet tables, \
                 or fix the server's storage; Signet retries on its own",
                code.code(),
                e.as_db_error().map_or("", |d| d.message())
            ),
            source: Some(Box::new(e)),
        }
    } else if *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CRASH_SHUTDOWN
        || *code == SqlState::CANNOT_CONNECT_NOW
        || code.code().starts_with("08")
    {
        connection_lost(context, e)
    } else if code.code().starts_with("28") {
        // 28000 / 28P01: pg_hba.conf refused this user, host or TLS
        // state, the password is wrong, or a client certificate is missing.
        StoreError::backend(
            format!(
                "{context}: PostgreSQL refused the login ({}: {}); check the user and password in the \
                 URL, the server's pg_hba.conf, and whether it wants TLS (sslmode) or a client \
                 certificate (sslcert and sslkey)",
                code.code(),
                e.as_db_error().map_or("", |d| d.message())
            ),
            e,
        )
    } else if *code == SqlState::UNIQUE_VIOLATION {
        StoreError::Conflict(format!(
            "{context}: a database constraint refused it ({})",
            constraint_of(&e)
        ))
    } else if *code == SqlState::UNDEFINED_TABLE || *code == SqlState::UNDEFINED_COLUMN {
        StoreError::backend(
            format!(
                "{context}: the Signet tables are missing or out of date in this database or schema; \
                 run `signet migrate` against it"
            ),
            e,
        )
    } else {
        StoreError::backend(
            format!(
                "{context}: PostgreSQL error {}: {}",
                code.code(),
                e.as_db_error().map_or("", |d| d.message())
            ),
            e,
        )
    }
}

/// The connection to PostgreSQL was lost or could not be made. Retryable:
/// the pool drops broken connections and opens new ones on the next call.
fn connection_lost(context: impl Display, e: tokio_postgres::Error) -> StoreError {
    if let Some(tls) = crate::tls::explain_tls_failure(&e) {
        return StoreError::backend(format!("{context}: {tls}"), e);
    }
    StoreError::backend(
        format!(
            "{context}: the connection to PostgreSQL was lost or refused (server restarting, \
             unreachable, or the connection was terminated); the store reconnects on the next call, \
             retry. If a write was in flight, check whether it took effect"
        ),
        e,
    )
}

fn constraint_of(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .and_then(|d| d.constraint())
        .map_or_else(|| "unique".to_owned(), str::to_owned)
}

/// Whether `e` is a unique violation of `constraint`.
pub(crate) fn is_unique_violation(e: &tokio_postgres::Error, constraint: &str) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
        && e.as_db_error().and_then(|d| d.constraint()) == Some(constraint)
}

/// Maps an error getting a connection from the pool.
pub(crate) fn map_pool_err(e: PoolError) -> StoreError {
    match e {
        PoolError::Closed => StoreError::Closed,
        PoolError::Timeout(kind) => StoreError::Busy {
            message: format!(
                "no PostgreSQL connection became available in time ({kind:?} timeout); every pooled \
                 connection is busy or the server is slow to accept new ones. Retry, raise the pool \
                 size, or check the server"
            ),
            source: None,
        },
        PoolError::Backend(e) => map_err("connecting to PostgreSQL", e),
        other => StoreError::backend("getting a PostgreSQL connection from the pool", other),
    }
}
