//! PostgreSQL URLs: `postgres://user:password@host:5432/db` or
//! `postgresql://…`, with libpq's query parameters (`?sslmode=verify-full`,
//! `?sslrootcert=…`, `?connect_timeout=…`, `?options=…`). The TLS
//! parameters are read by [`crate::tls`]; the driver parses the rest.

use std::str::FromStr;

use percent_encoding::percent_decode_str;
use signet_store::StoreError;
use tokio_postgres::config::Host;

use crate::tls::{TlsParams, TlsSettings};

/// A parsed PostgreSQL URL: the driver's configuration and the TLS
/// settings. Its `Debug` output never shows the password.
#[derive(Clone, Debug)]
pub struct PostgresUrl {
    config: tokio_postgres::Config,
    tls: TlsSettings,
}

impl PostgresUrl {
    /// The driver's configuration, with the TLS mode applied.
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// The TLS settings (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`).
    pub fn tls(&self) -> &TlsSettings {
        &self.tls
    }

    pub(crate) fn into_parts(self) -> (tokio_postgres::Config, TlsSettings) {
        (self.config, self.tls)
    }
}

/// Whether `url` names a PostgreSQL database (`postgres://` or
/// `postgresql://`, any case).
pub fn is_postgres_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// Parses a PostgreSQL URL. The error never repeats the URL (it may hold a
/// password).
pub fn parse_url(url: &str) -> Result<PostgresUrl, StoreError> {
    if !is_postgres_url(url) {
        return Err(StoreError::invalid(
            "the database URL is not a PostgreSQL URL; use postgres://user@host:5432/database",
        ));
    }
    let url = url.trim();
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut tls = TlsParams::default();
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(key, "a parameter name")?;
        if !tls.take(&key, decode(value, &key)?)? {
            kept.push(pair);
        }
    }
    let for_driver = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let mut config = tokio_postgres::Config::from_str(&for_driver).map_err(|e| {
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
    let unix_only = config
        .get_hosts()
        .iter()
        .all(|h| !matches!(h, Host::Tcp(_)));
    let tls = tls.settle(unix_only)?;
    tls.apply(&mut config);
    Ok(PostgresUrl { config, tls })
}

/// Percent-decodes one part of the query, as libpq does (no `+` for space).
fn decode(raw: &str, what: &str) -> Result<String, StoreError> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| {
            // `what` is a parameter name, never a value.
            StoreError::invalid(format!(
                "the PostgreSQL URL's {what} is not valid UTF-8 once percent-decoded; fix the URL"
            ))
        })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use tokio_postgres::config::SslMode as DriverSslMode;

    use super::*;
    use crate::tls::{RootCerts, SslMode};

    #[test]
    fn recognises_and_parses() {
        assert!(is_postgres_url("postgres://u@h/db"));
        assert!(is_postgres_url(" PostgreSQL://u@h/db"));
        assert!(!is_postgres_url("sqlite://x.db"));
        assert!(!is_postgres_url("./x.db"));
        let u = parse_url("postgres://me:pa55word@db.internal:6543/signet").unwrap();
        let c = u.config();
        assert_eq!(c.get_user(), Some("me"));
        assert_eq!(c.get_dbname(), Some("signet"));
        assert_eq!(c.get_ports(), &[6543]);
        assert_eq!(u.tls().mode(), SslMode::Prefer);
        assert_eq!(c.get_ssl_mode(), DriverSslMode::Prefer);
        assert!(parse_url("sqlite://x").is_err());
        assert!(parse_url("postgres://").is_err());
        let e = parse_url("postgres://me:s3cr3t@h:notaport/db").unwrap_err();
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        assert!(!format!("{u:?}").contains("pa55word"), "{u:?}");
    }

    #[test]
    fn reads_tls_parameters_and_leaves_the_rest() {
        let u = parse_url(
            "postgres://me@db.example.com/signet?application_name=w1&sslmode=verify-full\
             &sslrootcert=%2Fetc%2Fssl%2Fca%20bundle.pem&sslcert=/c.pem&sslkey=/k.pem&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(u.tls().mode(), SslMode::VerifyFull);
        assert_eq!(
            u.tls().root(),
            Some(&RootCerts::File("/etc/ssl/ca bundle.pem".into()))
        );
        assert_eq!(
            u.tls().client_cert(),
            Some((Path::new("/c.pem"), Path::new("/k.pem")))
        );
        assert_eq!(u.config().get_application_name(), Some("w1"));
        assert_eq!(
            u.config().get_connect_timeout(),
            Some(&std::time::Duration::from_secs(3))
        );
        assert_eq!(u.config().get_ssl_mode(), DriverSslMode::Require);
        let u = parse_url("postgres://me@h/db?sslmode=disable").unwrap();
        assert_eq!(u.config().get_ssl_mode(), DriverSslMode::Disable);
    }

    #[test]
    fn refusals_never_repeat_secrets() {
        let e = parse_url("postgres://me:s3cr3t@h/db?sslmode=verify-full").unwrap_err();
        assert!(e.to_string().contains("sslrootcert"), "{e}");
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        let e = parse_url("postgres://me@h/db?sslpassword=s3cr3t").unwrap_err();
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        let e = parse_url("postgres://me@h/db?password=s3cr3t&sslmode=%FF").unwrap_err();
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
    }

    #[test]
    fn unix_socket_hosts_skip_tls() {
        let u = parse_url("postgres://me@%2Fvar%2Frun%2Fpostgresql/db?sslmode=require").unwrap();
        assert_eq!(u.config().get_ssl_mode(), DriverSslMode::Disable);
    }
}
