//! Opens a store from `--database-url`.
//!
//! `sqlite:` URLs (`sqlite://./signet.db`, `sqlite:///abs/path.db`,
//! `sqlite::memory:`) and plain file paths open the embedded store;
//! `postgres://` and `postgresql://` URLs open the PostgreSQL store, in the
//! schema `--database-schema` names (default: the server's `search_path`).

use std::sync::Arc;

use anyhow::{bail, Context as _};
use signet_postgres::{PostgresOptions, PostgresStore};
use signet_sqlite::{SqliteConfig, SqliteStore};
use signet_store::Store;

/// The default `--database-url`.
pub(crate) const DEFAULT_DATABASE_URL: &str = "sqlite://./signet.db";

/// The `--database-url` option every store command takes.
#[derive(Debug, clap::Args)]
pub(crate) struct DatabaseArgs {
    /// The store: sqlite://./signet.db (a file), sqlite::memory:, or
    /// postgres://user:password@host:5432/database.
    #[arg(long, env = "SIGNET_DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub(crate) database_url: String,
    /// PostgreSQL only: the schema Signet's tables live in (created by
    /// migrations). Default: the server's search_path, normally public.
    #[arg(long, env = "SIGNET_DATABASE_SCHEMA")]
    pub(crate) database_schema: Option<String>,
}

impl DatabaseArgs {
    /// Opens the store.
    pub(crate) async fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        open_in(&self.database_url, self.database_schema.as_deref()).await
    }

    /// The PostgreSQL options these arguments give.
    pub(crate) fn postgres_options(&self) -> PostgresOptions {
        postgres_options(self.database_schema.as_deref())
    }
}

/// Which backend a URL names.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    /// The embedded SQLite store.
    Sqlite,
    /// The PostgreSQL store.
    Postgres,
}

/// The backend `url` names, or an error that lists the URLs Signet knows.
pub(crate) fn backend(url: &str) -> anyhow::Result<Backend> {
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
             (a file), a plain file path, sqlite::memory:, or postgres://user@host:5432/database",
            redact(url)
        );
    }
    // A plain path is a SQLite file.
    Ok(Backend::Sqlite)
}

/// A URL safe to print: a password in `user:password@host` or in a
/// `password=` or `sslpassword=` query parameter is replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{user}:***@{host}")
        }
        _ => authority.to_owned(),
    };
    let query = query.map(|q| {
        q.split('&')
            .map(|pair| match pair.split_once('=') {
                // `sslpassword` unlocks a client key: as secret as the password.
                Some((k, _))
                    if k.eq_ignore_ascii_case("password")
                        || k.eq_ignore_ascii_case("sslpassword") =>
                {
                    format!("{k}=***")
                }
                _ => pair.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&")
    });
    match query {
        Some(q) => format!("{scheme}://{authority}{path}?{q}"),
        None => format!("{scheme}://{authority}{path}"),
    }
}

/// Opens the store a URL names, with default settings (durable commits),
/// in the server's default schema for PostgreSQL.
pub(crate) async fn open(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    open_in(url, None).await
}

/// Opens the store a URL names; for PostgreSQL in `schema` (`None`: the
/// server's default). Either store migrates at open and refuses a schema
/// newer than this build.
pub(crate) async fn open_in(url: &str, schema: Option<&str>) -> anyhow::Result<Arc<dyn Store>> {
    match backend(url)? {
        Backend::Sqlite => Ok(open_sqlite(url, SqliteConfig::default())?),
        Backend::Postgres => Ok(Arc::new(
            open_postgres(url, postgres_options(schema)).await?,
        )),
    }
}

/// PostgreSQL options with Signet's defaults and `schema`.
pub(crate) fn postgres_options(schema: Option<&str>) -> PostgresOptions {
    PostgresOptions {
        schema: schema.map(str::to_owned),
        ..PostgresOptions::default()
    }
}

/// Opens a PostgreSQL store as its concrete type. Refuses URLs of other
/// backends.
pub(crate) async fn open_postgres(
    url: &str,
    options: PostgresOptions,
) -> anyhow::Result<PostgresStore> {
    if backend(url)? != Backend::Postgres {
        bail!(
            "{} is not a PostgreSQL URL; use postgres://user@host:5432/database",
            redact(url)
        );
    }
    PostgresStore::connect(url, options)
        .await
        .with_context(|| format!("cannot open the store at {}", redact(url)))
}

/// Opens a SQLite store as its concrete type (the benchmark reads its
/// writer statistics). Refuses URLs of other backends.
pub(crate) fn open_sqlite(url: &str, config: SqliteConfig) -> anyhow::Result<Arc<SqliteStore>> {
    if backend(url)? != Backend::Sqlite {
        bail!(
            "{} is not a SQLite URL; use sqlite://./signet.db or a file path",
            redact(url)
        );
    }
    // Opening blocks briefly (file open, migrations); commands do it once at start.
    let store = SqliteStore::open(url, config)
        .with_context(|| format!("cannot open the store at {}", redact(url)))?;
    Ok(Arc::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--database-url` is the same option on every command, so its help
    /// names the store, not what one command keeps there: `api-keys ls`
    /// said "Where the tasks are".
    #[test]
    fn database_url_help_names_the_store_on_every_command() {
        fn visit(cmd: &clap::Command, path: String) {
            for arg in cmd.get_arguments() {
                if arg.get_long() != Some("database-url") {
                    continue;
                }
                let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                assert!(!help.contains("task"), "{path}: {help}");
            }
            for sub in cmd.get_subcommands() {
                visit(sub, format!("{path} {}", sub.get_name()));
            }
        }
        let mut cli = <crate::cli::Cli as clap::CommandFactory>::command();
        cli.build();
        let api_keys = cli.find_subcommand("api-keys").expect("signet api-keys");
        let ls = api_keys.find_subcommand("ls").expect("signet api-keys ls");
        let help = ls
            .get_arguments()
            .find(|a| a.get_long() == Some("database-url"))
            .and_then(|a| a.get_help())
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(help.starts_with("The store: sqlite://"), "{help}");
        visit(&cli, "signet".into());
    }

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
        assert_eq!(
            redact("postgres://me@db/signet?sslmode=disable&password=hunter2"),
            "postgres://me@db/signet?sslmode=disable&password=***"
        );
        assert_eq!(
            redact("postgres://me@db/signet?sslkey=/k.pem&sslpassword=hunter2"),
            "postgres://me@db/signet?sslkey=/k.pem&sslpassword=***"
        );
        assert_eq!(
            redact("postgresql://me:p@ss:w@rd@db"),
            "postgresql://me:***@db"
        );
    }
}
