//! Opens a store from `--database-url`.
//!
//! `sqlite:` URLs (`sqlite://./signet.db`, `sqlite:///abs/path.db`,
//! `sqlite::memory:`) and plain file paths open the embedded store. PostgreSQL is not built yet;
//! its URLs get an error that says so instead of a confusing parse failure.

use std::sync::Arc;

use anyhow::{bail, Context as _};
use signet_sqlite::{SqliteConfig, SqliteStore};
use signet_store::Store;

/// The default `--database-url`.
pub(crate) const DEFAULT_DATABASE_URL: &str = "sqlite://./signet.db";

/// The `--database-url` option every store command takes.
#[derive(Debug, clap::Args)]
pub(crate) struct DatabaseArgs {
    /// Where the tasks are: sqlite://./signet.db (a file), sqlite::memory:.
    #[arg(long, env = "SIGNET_DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub(crate) database_url: String,
}

impl DatabaseArgs {
    /// Opens the store.
    pub(crate) async fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        open(&self.database_url).await
    }
}

/// Which backend a URL names.
#[derive(Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

fn backend(url: &str) -> anyhow::Result<Backend> {
    let lower = url.trim().to_ascii_lowercase();
    if lower.starts_with("sqlite:") {
        return Ok(Backend::Sqlite);
    }
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        return Ok(Backend::Postgres);
    }
    if lower.is_empty() || lower.contains("://") {
        bail!(
            "--database-url {:?} is not a database URL Signet knows; use sqlite://./signet.db \
             (a file), a plain file path, or sqlite::memory:",
            redact(url)
        );
    }
    // A plain path is a SQLite file.
    Ok(Backend::Sqlite)
}

/// A URL safe to print: a password in `user:password@host` is replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{path}")
            } else {
                url.to_owned()
            }
        }
        None => url.to_owned(),
    }
}

/// Opens the store a URL names, with default settings (durable commits).
pub(crate) async fn open(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    Ok(open_sqlite(url, SqliteConfig::default())?)
}

/// Opens a SQLite store as its concrete type (the benchmark reads its
/// writer statistics). Refuses URLs of other backends.
pub(crate) fn open_sqlite(url: &str, config: SqliteConfig) -> anyhow::Result<Arc<SqliteStore>> {
    match backend(url)? {
        Backend::Sqlite => {}
        Backend::Postgres => bail!(
            "PostgreSQL support is not built yet; use a sqlite:// URL such as {DEFAULT_DATABASE_URL}"
        ),
    }
    // Opening blocks briefly (file open, migrations); commands do it once at start.
    let store = SqliteStore::open(url, config)
        .with_context(|| format!("cannot open the store at {}", redact(url)))?;
    Ok(Arc::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        assert_eq!(backend("sqlite://./x.db").unwrap(), Backend::Sqlite);
        assert_eq!(backend("sqlite::memory:").unwrap(), Backend::Sqlite);
        assert_eq!(backend("postgres://u@h/db").unwrap(), Backend::Postgres);
        assert_eq!(backend("postgresql://u@h/db").unwrap(), Backend::Postgres);
        assert_eq!(backend("./signet.db").unwrap(), Backend::Sqlite);
        assert!(backend("mysql://x").is_err());
        assert!(backend("").is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://me:hunter2@db:5432/signet"),
            "postgres://me:***@db:5432/signet"
        );
        assert_eq!(redact("postgres://me@db/signet"), "postgres://me@db/signet");
        assert_eq!(redact("sqlite://./signet.db"), "sqlite://./signet.db");
    }
}
