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
    } else if code.code().starts_with("22") {
        // 22xxx: the data itself was refused (out of range, bad encoding,
        // division by zero…). Trying the same statement again gives the same
        // answer, so it is not retryable: a batch that meets it is written
        // again entry by entry and only the bad entry fails.
        StoreError::Invalid(format!(
            "{context}: PostgreSQL refused the data ({}: {}); nothing was written",
            code.code(),
            e.as_db_error().map_or("", |d| d.message())
        ))
    } else if code.code().starts_with("23") && *code != SqlState::UNIQUE_VIOLATION {
        // 23xxx other than unique: a foreign key, check or not-null
        // constraint refused the row, usually because something it points
        // at changed meanwhile. Not retryable either.
        StoreError::Conflict(format!(
            "{context}: a database constraint refused it ({}: {})",
            code.code(),
            e.as_db_error().and_then(|d| d.constraint()).unwrap_or("")
        ))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Statement errors from a real server: the data refused and a
    /// constraint refused are final, a conflict with another transaction
    /// is not.
    #[tokio::test]
    async fn data_and_constraint_refusals_are_not_retried() {
        let url = match std::env::var("SIGNET_TEST_DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => url,
            _ => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "SIGNET_TEST_DATABASE_URL is not set under CI"
                );
                eprintln!("skipped: SIGNET_TEST_DATABASE_URL is not set");
                return;
            }
        };
        let config: tokio_postgres::Config = url.parse().expect("a PostgreSQL URL");
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);

        let e = client.query("SELECT 1 / 0", &[]).await.unwrap_err();
        let mapped = map_err("dividing", e);
        assert!(matches!(mapped, StoreError::Invalid(_)), "{mapped:?}");
        assert!(!mapped.is_retryable());
        assert!(mapped.to_string().contains("22012"), "{mapped}");

        client
            .batch_execute(
                "CREATE TEMP TABLE em_parent (id int PRIMARY KEY);
                 CREATE TEMP TABLE em_child (parent int NOT NULL REFERENCES em_parent (id))",
            )
            .await
            .expect("temp tables");
        let e = client
            .execute("INSERT INTO em_child VALUES (1)", &[])
            .await
            .unwrap_err();
        let mapped = map_err("inserting", e);
        assert!(matches!(mapped, StoreError::Conflict(_)), "{mapped:?}");
        assert!(!mapped.is_retryable());
        assert!(mapped.to_string().contains("23503"), "{mapped}");

        client
            .execute("INSERT INTO em_parent VALUES (1)", &[])
            .await
            .expect("first row");
        let e = client
            .execute("INSERT INTO em_parent VALUES (1)", &[])
            .await
            .unwrap_err();
        assert!(matches!(map_err("again", e), StoreError::Conflict(_)));
    }
}
