//! Leader leases on node-wide roles, with terms that count holders.

use rusqlite::{params, Connection, Row};
use signet_store::{LeaderLease, StoreError, StoreResult};

use crate::error_map::map_err;
use crate::row::{column, corrupt};

/// What a resigned lease expires at: before any `now_ms`, so the next
/// [`try_lead`] takes it. The row stays so the term keeps counting.
const RESIGNED_AT_MS: i64 = 0;

/// Checks what SQLite refuses: an empty role or holder, a lease of no time.
pub(crate) fn validate(name: &str, holder: &str, ttl_ms: i64) -> StoreResult<()> {
    if name.is_empty() || holder.is_empty() {
        return Err(StoreError::invalid(
            "a leader lease needs a non-empty role name and a non-empty holder id",
        ));
    }
    if ttl_ms <= 0 {
        return Err(StoreError::invalid(format!(
            "leader lease on {name}: a ttl of {ttl_ms} ms is not positive; use a ttl longer than the renewal interval"
        )));
    }
    Ok(())
}

/// Takes or renews the lease; `None` when another holder's lease is valid.
pub(crate) fn try_lead(
    conn: &Connection,
    name: &str,
    holder: &str,
    ttl_ms: i64,
    now_ms: i64,
) -> StoreResult<Option<LeaderLease>> {
    let expires = now_ms.saturating_add(ttl_ms);
    // In DO UPDATE, bare column names are the old row: the term goes up
    // only when the holder changes.
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO leader_leases (name, holder, term, expires_at_ms) VALUES (?1, ?2, 1, ?3) \
             ON CONFLICT (name) DO UPDATE SET \
                 term = CASE WHEN holder = excluded.holder THEN term ELSE term + 1 END, \
                 holder = excluded.holder, expires_at_ms = excluded.expires_at_ms \
             WHERE holder = excluded.holder OR expires_at_ms <= ?4 \
             RETURNING name, holder, term, expires_at_ms",
        )
        .map_err(|e| map_err("preparing a leader lease", e))?;
    let mut rows = stmt
        .query(params![name, holder, expires, now_ms])
        .map_err(|e| map_err(format!("taking the leader lease on {name}"), e))?;
    match rows
        .next()
        .map_err(|e| map_err(format!("taking the leader lease on {name}"), e))?
    {
        Some(row) => from_row(row).map(Some),
        None => Ok(None),
    }
}

/// Expires the lease at once if `holder` holds it.
pub(crate) fn resign(conn: &Connection, name: &str, holder: &str) -> StoreResult<()> {
    conn.prepare_cached(
        "UPDATE leader_leases SET expires_at_ms = ?3 WHERE name = ?1 AND holder = ?2",
    )
    .and_then(|mut s| s.execute(params![name, holder, RESIGNED_AT_MS]))
    .map_err(|e| map_err(format!("resigning the leader lease on {name}"), e))?;
    Ok(())
}

/// The lease on role `name`, expired or not.
pub(crate) fn current(conn: &Connection, name: &str) -> StoreResult<Option<LeaderLease>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT name, holder, term, expires_at_ms FROM leader_leases WHERE name = ?1",
        )
        .map_err(|e| map_err("preparing a leader lookup", e))?;
    let mut rows = stmt
        .query([name])
        .map_err(|e| map_err(format!("reading the leader lease on {name}"), e))?;
    match rows
        .next()
        .map_err(|e| map_err(format!("reading the leader lease on {name}"), e))?
    {
        Some(row) => from_row(row).map(Some),
        None => Ok(None),
    }
}

fn from_row(row: &Row<'_>) -> StoreResult<LeaderLease> {
    const WHAT: &str = "leader lease";
    let name: String = column(row, 0, WHAT, "(unknown role)", "name")?;
    let term: i64 = column(row, 2, WHAT, &name, "term")?;
    Ok(LeaderLease {
        holder: column(row, 1, WHAT, &name, "holder")?,
        term: u64::try_from(term).map_err(|e| corrupt(WHAT, &name, "term", e))?,
        expires_at_ms: column(row, 3, WHAT, &name, "expires_at_ms")?,
        name,
    })
}
