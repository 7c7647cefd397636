//! Leader leases: one row per role, taken with a single upsert.

use deadpool_postgres::GenericClient;
use signet_store::{LeaderLease, StoreError, StoreResult};

use crate::error_map::map_err;
use crate::row::{lease_from_row, LEASE_COLUMNS};

fn check(name: &str, holder: &str) -> StoreResult<()> {
    if name.is_empty() || holder.is_empty() {
        return Err(StoreError::invalid(
            "a leader lease needs a role name and a holder id; both were not given",
        ));
    }
    Ok(())
}

/// Takes or renews the lease on `name` for `holder`. The upsert's `WHERE`
/// lets the update through only when the lease expired or `holder` holds
/// it; the row lock orders concurrent callers, so exactly one node holds it.
pub(crate) async fn try_lead(
    client: &impl GenericClient,
    name: &str,
    holder: &str,
    ttl_ms: i64,
    now_ms: i64,
) -> StoreResult<Option<LeaderLease>> {
    check(name, holder)?;
    if ttl_ms <= 0 {
        return Err(StoreError::invalid(format!(
            "a leader lease of {ttl_ms} ms is not positive; use a lease longer than the renewal interval"
        )));
    }
    let expires = now_ms.saturating_add(ttl_ms);
    let stmt = client
        .prepare_cached(&format!(
            "INSERT INTO leader_leases AS l (name, holder, term, expires_at_ms) \
             VALUES ($1, $2, 1, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, \
                 term = CASE WHEN l.holder = EXCLUDED.holder THEN l.term ELSE l.term + 1 END, \
                 expires_at_ms = EXCLUDED.expires_at_ms \
             WHERE l.holder = EXCLUDED.holder OR l.expires_at_ms <= $4 \
             RETURNING {LEASE_COLUMNS}"
        ))
        .await
        .map_err(|e| map_err("preparing a leader lease", e))?;
    client
        .query_opt(&stmt, &[&name, &holder, &expires, &now_ms])
        .await
        .map_err(|e| map_err(format!("taking the {name} lease"), e))?
        .map(|r| lease_from_row(&r))
        .transpose()
}

/// Gives up the lease if `holder` holds it: it expires at once (the row
/// stays, so the next holder's term still goes up).
pub(crate) async fn resign(
    client: &impl GenericClient,
    name: &str,
    holder: &str,
) -> StoreResult<()> {
    check(name, holder)?;
    let stmt = client
        .prepare_cached(
            "UPDATE leader_leases SET expires_at_ms = LEAST(expires_at_ms, 0) \
             WHERE name = $1 AND holder = $2",
        )
        .await
        .map_err(|e| map_err("preparing a resignation", e))?;
    client
        .execute(&stmt, &[&name, &holder])
        .await
        .map_err(|e| map_err(format!("resigning the {name} lease"), e))?;
    Ok(())
}

/// The current lease on `name`, expired or not.
pub(crate) async fn leader(
    client: &impl GenericClient,
    name: &str,
) -> StoreResult<Option<LeaderLease>> {
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {LEASE_COLUMNS} FROM leader_leases WHERE name = $1"
        ))
        .await
        .map_err(|e| map_err("preparing a leader lookup", e))?;
    client
        .query_opt(&stmt, &[&name])
        .await
        .map_err(|e| map_err(format!("reading the {name} lease"), e))?
        .map(|r| lease_from_row(&r))
        .transpose()
}
