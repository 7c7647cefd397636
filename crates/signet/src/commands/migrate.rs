//! `signet migrate`: applies the store's pending schema migrations, or
//! with `--status` says where the schema stands without changing it.
//!
//! Safe to run from several machines at once (PostgreSQL migrates under an
//! advisory lock; SQLite under its write lock): one applies, the others
//! find nothing to do. Exit codes for `--status`: 0 up to date, 1
//! migrations pending, 2 the schema is newer than this build (or any
//! error).

use std::process::ExitCode;

use anyhow::{bail, Context as _};
use signet_sqlite::{SqliteConfig, SqliteStore};
use signet_store::{MigrationStatus, Store as _};

use crate::commands::{block_on, finish, Negative};
use crate::store_url::{backend, redact, Backend, DatabaseArgs};

/// Arguments of `signet migrate`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    db: DatabaseArgs,
    /// Only report the schema version and pending migrations; change nothing.
    #[arg(long)]
    status: bool,
}

pub(crate) fn run(args: Args) -> ExitCode {
    finish("migrate", block_on(migrate(args)))
}

fn names(migrations: &[(i64, &'static str)]) -> String {
    migrations
        .iter()
        .map(|(v, n)| format!("{v:04}_{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn status_of(args: &Args) -> anyhow::Result<MigrationStatus> {
    let url = &args.db.database_url;
    Ok(match backend(url)? {
        Backend::Sqlite => signet_sqlite::migration_status(url)?,
        Backend::Postgres => {
            signet_postgres::migration_status(url, &args.db.postgres_options()).await?
        }
    })
}

async fn migrate(args: Args) -> anyhow::Result<()> {
    let url = &args.db.database_url;
    let shown = redact(url);
    let where_ = match &args.db.database_schema {
        Some(schema) if backend(url)? == Backend::Postgres => format!("{shown} (schema {schema})"),
        _ => shown.clone(),
    };
    let status = status_of(&args)
        .await
        .with_context(|| format!("cannot read the schema version of {where_}"))?;
    if status.is_too_new() {
        bail!(
            "{where_}: schema version {} is newer than this build knows ({}); upgrade signet",
            status.current,
            status.known
        );
    }
    if args.status {
        println!(
            "{where_}: schema version {} (this build knows {})",
            status.current, status.known
        );
        if status.pending.is_empty() {
            println!("up to date");
            return Ok(());
        }
        println!("pending: {}", names(&status.pending));
        return Err(Negative(format!(
            "{} migration(s) pending; run `signet migrate`",
            status.pending.len()
        ))
        .into());
    }
    let (from, to, applied) = match backend(url)? {
        Backend::Sqlite => {
            // Opening migrates, under SQLite's write lock. What it applied
            // is what was pending (another process migrating at the same
            // moment is the only way it could differ).
            let store = SqliteStore::open(url, SqliteConfig::default())
                .with_context(|| format!("cannot migrate {where_}"))?;
            let to = store.schema().current;
            store.close().await?;
            let applied = if to > status.current {
                status.pending.clone()
            } else {
                Vec::new()
            };
            (status.current, to, applied)
        }
        Backend::Postgres => {
            let report = signet_postgres::migrate_database(url, &args.db.postgres_options())
                .await
                .with_context(|| format!("cannot migrate {where_}"))?;
            (report.from, report.to, report.applied)
        }
    };
    if applied.is_empty() {
        println!("{where_}: schema version {to}, up to date; nothing to apply");
    } else {
        println!(
            "{where_}: schema version {from} -> {to}; applied {}",
            names(&applied)
        );
    }
    Ok(())
}
