//! Numbered schema migrations as every backend embeds them, and where a
//! database stands against them ([`MigrationStatus`]).
//!
//! Each backend keeps its own SQL (one file per migration, never edited
//! once released) and applies it its own way; the list, its numbering, the
//! status and the "newer than this build" refusal are the same for all.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::StoreError;
use crate::task::MigrationStatus;

/// One migration: version `n` is the `n`-th entry of a backend's list,
/// counting from 1.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    /// Its number.
    pub version: i64,
    /// Its short name (the file is `{version:04}_{name}.sql`).
    pub name: &'static str,
    /// The SQL it runs.
    pub sql: &'static str,
}

impl Migration {
    /// Migration `version`, called `name`, running `sql`.
    pub const fn new(version: i64, name: &'static str, sql: &'static str) -> Self {
        Self { version, name, sql }
    }
}

/// Whether `migrations` are numbered 1, 2, 3, … in list order.
pub const fn numbered_in_order(migrations: &[Migration]) -> bool {
    let mut i = 0;
    while i < migrations.len() {
        if migrations[i].version != i as i64 + 1 {
            return false;
        }
        i += 1;
    }
    true
}

/// The newest version in `migrations` (0 for none): the schema version a
/// build knows. A backend computes its `SCHEMA_VERSION` with it, so a list
/// not [`numbered_in_order`] fails to build.
pub const fn latest_version(migrations: &[Migration]) -> i64 {
    assert!(
        numbered_in_order(migrations),
        "migrations are numbered 1, 2, 3, … in order"
    );
    match migrations.last() {
        Some(m) => m.version,
        None => 0,
    }
}

/// The migrations a database at version `current` has not applied yet, in
/// order.
pub fn pending(migrations: &[Migration], current: i64) -> impl Iterator<Item = &Migration> {
    migrations.iter().filter(move |m| m.version > current)
}

impl MigrationStatus {
    /// Where a database at version `current` stands against `migrations`.
    pub fn of(current: i64, migrations: &[Migration]) -> Self {
        MigrationStatus {
            current,
            known: latest_version(migrations),
            pending: pending(migrations, current)
                .map(|m| (m.version, m.name))
                .collect(),
        }
    }
}

/// Refuses a database at version `current` that is newer than
/// `migrations` know ([`StoreError::SchemaTooNew`]) rather than risk
/// misreading it.
pub fn check_not_too_new(current: i64, migrations: &[Migration]) -> Result<(), StoreError> {
    let known = latest_version(migrations);
    if current > known {
        return Err(StoreError::SchemaTooNew {
            found: current,
            known,
        });
    }
    Ok(())
}

/// The system clock in unix milliseconds, for `schema_migrations.applied_at_ms`
/// (a store migrates while it opens, before any runtime clock is at hand).
pub fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &[Migration] = &[
        Migration::new(1, "init", ""),
        Migration::new(2, "delivery", ""),
    ];

    #[test]
    fn status_names_what_is_pending_and_too_new_is_refused() {
        assert!(numbered_in_order(LIST) && numbered_in_order(&[]));
        assert!(!numbered_in_order(&LIST[1..]));
        assert_eq!(latest_version(LIST), 2);
        assert_eq!(latest_version(&[]), 0);
        assert_eq!(MigrationStatus::of(1, LIST).pending, vec![(2, "delivery")]);
        assert!(MigrationStatus::of(2, LIST).pending.is_empty());
        assert!(MigrationStatus::of(3, LIST).is_too_new());
        assert!(check_not_too_new(2, LIST).is_ok());
        assert!(matches!(
            check_not_too_new(3, LIST),
            Err(StoreError::SchemaTooNew { found: 3, known: 2 })
        ));
    }
}
