//! PostgreSQL URLs: `postgres://user:password@host:5432/db` or
//! `postgresql://…`, with libpq's query parameters (`?sslmode=disable`,
//! `?connect_timeout=…`, `?options=…`).

use std::str::FromStr;

use signet_store::StoreError;

/// Whether `url` names a PostgreSQL database (`postgres://` or
/// `postgresql://`, any case).
pub fn is_postgres_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// Parses a PostgreSQL URL. The error never repeats the URL (it may hold a
/// password).
pub fn parse_url(url: &str) -> Result<tokio_postgres::Config, StoreError> {
    if !is_postgres_url(url) {
        return Err(StoreError::invalid(
            "the database URL is not a PostgreSQL URL; use postgres://user@host:5432/database",
        ));
    }
    let config = tokio_postgres::Config::from_str(url.trim()).map_err(|e| {
        StoreError::invalid(format!(
            "the PostgreSQL URL does not parse ({e}); use postgres://user:password@host:5432/database"
        ))
    })?;
    if config.get_hosts().is_empty() {
        return Err(StoreError::invalid(
            "the PostgreSQL URL names no host; use postgres://user@host:5432/database",
        ));
    }
    if config.get_user().is_none() {
        return Err(StoreError::invalid(
            "the PostgreSQL URL names no user; use postgres://user@host:5432/database",
        ));
    }
    if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
        return Err(StoreError::invalid(
            "the PostgreSQL URL asks for sslmode=require, but this build connects without TLS; \
             reach the database over a private network or a local TLS proxy, and drop sslmode=require",
        ));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_and_parses() {
        assert!(is_postgres_url("postgres://u@h/db"));
        assert!(is_postgres_url(" PostgreSQL://u@h/db"));
        assert!(!is_postgres_url("sqlite://./x.db"));
        assert!(!is_postgres_url("./x.db"));
        let c = parse_url("postgres://me:pw@db.internal:6543/signet").unwrap();
        assert_eq!(c.get_user(), Some("me"));
        assert_eq!(c.get_dbname(), Some("signet"));
        assert_eq!(c.get_ports(), &[6543]);
        assert!(parse_url("sqlite://x").is_err());
        assert!(parse_url("postgres://").is_err());
        let e = parse_url("postgres://me:s3cr3t@h:notaport/db").unwrap_err();
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        assert!(parse_url("postgres://me@h/db?sslmode=require").is_err());
    }
}
