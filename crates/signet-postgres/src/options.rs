//! [`PostgresOptions`]: how [`PostgresStore`](crate::PostgresStore) connects.

use std::time::Duration;

use signet_store::StoreError;

/// Default number of pooled connections per process.
pub const DEFAULT_POOL_SIZE: usize = 16;
/// Default time to wait for a pooled connection (or a new one) before giving
/// up with [`StoreError::Busy`].
pub const DEFAULT_POOL_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time to establish one connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The `application_name` Signet's connections show in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "signet";
/// Longest schema name PostgreSQL accepts (NAMEDATALEN - 1).
pub const MAX_SCHEMA_LEN: usize = 63;

/// How to connect. Library crates take this typed struct; the binary fills
/// it from its configuration.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// The schema Signet's tables live in (it becomes the connections'
    /// `search_path`, and `migrate` creates it). `None` uses the server's
    /// default `search_path` (normally `public`). Lower-case letters,
    /// digits and `_`, starting with a letter or `_`.
    pub schema: Option<String>,
    /// Pooled connections per process.
    pub pool_size: usize,
    /// How long a call waits for a pooled connection.
    pub pool_timeout: Duration,
    /// How long establishing one connection may take.
    pub connect_timeout: Duration,
    /// Apply pending migrations at connect (under an advisory lock, so many
    /// nodes starting together is safe). With `false`, connecting to a
    /// database that is behind fails and asks for `signet migrate`.
    pub migrate: bool,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            schema: None,
            pool_size: DEFAULT_POOL_SIZE,
            pool_timeout: DEFAULT_POOL_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            migrate: true,
        }
    }
}

impl PostgresOptions {
    /// These options with Signet's tables in `schema`.
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// Checks the options; the error names what is wrong.
    pub fn validate(&self) -> Result<(), StoreError> {
        if let Some(schema) = &self.schema {
            validate_schema(schema)?;
        }
        if self.pool_size == 0 {
            return Err(StoreError::invalid(
                "PostgreSQL pool size is 0; use at least 1 connection",
            ));
        }
        Ok(())
    }
}

/// Checks a schema name: 1 to 63 characters of `a-z 0-9 _`, not starting
/// with a digit and not `pg_…` (reserved by PostgreSQL). Quoting is never
/// needed for such a name, so it can go into `search_path` as it is.
pub fn validate_schema(schema: &str) -> Result<(), StoreError> {
    let ok_chars = schema
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    let starts_ok = schema
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
    if !ok_chars || !starts_ok || schema.len() > MAX_SCHEMA_LEN || schema.starts_with("pg_") {
        return Err(StoreError::invalid(format!(
            "PostgreSQL schema name {schema:?} is not usable; use 1 to {MAX_SCHEMA_LEN} characters of a-z 0-9 _, starting with a letter or _, and not starting with pg_"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        for ok in ["signet", "_x", "t_123_abc", &"a".repeat(63)] {
            assert!(validate_schema(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1abc",
            "Signet",
            "a-b",
            "a b",
            "x;drop",
            "pg_catalog",
            "caf\u{e9}",
            &"a".repeat(64),
        ] {
            assert!(validate_schema(bad).is_err(), "{bad:?}");
        }
        let o = PostgresOptions {
            pool_size: 0,
            ..PostgresOptions::default()
        };
        assert!(o.validate().is_err());
    }
}
