//! Per-target limits shared by every node: send times from a target's rate
//! bucket, and leased concurrency slots (`signet_store::limits`). One
//! statement each; the row lock orders nodes taking from one target at
//! once. The statements mirror SQLite's; the conformance suite holds both
//! to the same answers.

use deadpool_postgres::GenericClient;
use signet_store::rows::corrupt_row;
use signet_store::{RateGrant, RateTake, SlotLease, SlotTake, StoreError, StoreResult};

use crate::error_map::map_err;

fn corrupt(what: &str, id: &str, column: &str, cause: impl std::fmt::Display) -> StoreError {
    corrupt_row(what, id, column, "psql", cause)
}

/// Hands out send times: see [`Store::take_rate`](signet_store::Store::take_rate).
/// With `s = GREATEST(next_free_us, now)`, the times `s, s + iv, …` before
/// the horizon's end, at most `want`; one upsert reads and moves the bucket
/// (in `DO UPDATE`, the row's columns are its old values).
pub(crate) async fn take_rate(
    client: &impl GenericClient,
    take: &RateTake,
    now_ms: i64,
) -> StoreResult<RateGrant> {
    let now_us = now_ms.saturating_mul(1000);
    let end_us = now_us.saturating_add(take.horizon_ms.saturating_mul(1000));
    let iv = take.interval_us();
    let want = i64::from(take.want);
    let stmt = client
        .prepare_cached(
            "INSERT INTO target_rates AS r (target_id, next_free_us, granted) \
             VALUES ($1::TEXT, $2::BIGINT + LEAST($5::BIGINT, ($3::BIGINT - $2 + $4::BIGINT - 1) / $4) * $4, \
                     LEAST($5, ($3 - $2 + $4 - 1) / $4)) \
             ON CONFLICT (target_id) DO UPDATE SET \
                 granted = LEAST($5, GREATEST(0, ($3 - GREATEST(r.next_free_us, $2) + $4 - 1) / $4)), \
                 next_free_us = GREATEST(r.next_free_us, $2) \
                     + LEAST($5, GREATEST(0, ($3 - GREATEST(r.next_free_us, $2) + $4 - 1) / $4)) * $4 \
             RETURNING next_free_us, granted",
        )
        .await
        .map_err(|e| map_err("preparing a rate take", e))?;
    let row = client
        .query_one(&stmt, &[&take.target_id, &now_us, &end_us, &iv, &want])
        .await
        .map_err(|e| map_err(format!("taking send times of target {}", take.target_id), e))?;
    let next_free_us: i64 = row.get(0);
    let granted: i64 = row.get(1);
    RateGrant::from_bucket(next_free_us, granted, iv)
        .ok_or_else(|| corrupt("target rate", &take.target_id, "granted", granted))
}

/// Takes the lowest free slot: see
/// [`Store::take_slot`](signet_store::Store::take_slot). The free slots
/// below `max` are the expired rows, 0 when absent, and each held slot's
/// next number when absent. Two nodes picking the same free number: the
/// second waits on the first's row and then finds it held (its `WHERE`
/// fails), so it gets `None` and asks again.
pub(crate) async fn take_slot(
    client: &impl GenericClient,
    take: &SlotTake,
    now_ms: i64,
) -> StoreResult<Option<SlotLease>> {
    let expires = now_ms.saturating_add(take.lease_ms);
    let max = i64::from(take.max);
    let stmt = client
        .prepare_cached(
            "WITH held AS (SELECT slot, expires_at_ms FROM target_slots WHERE target_id = $1::TEXT), \
             free (slot) AS ( \
                 SELECT slot FROM held WHERE expires_at_ms <= $5::BIGINT AND slot < $2::BIGINT \
                 UNION ALL SELECT 0::BIGINT WHERE NOT EXISTS (SELECT 1 FROM held WHERE slot = 0) \
                 UNION ALL SELECT h.slot + 1 FROM held h WHERE h.slot + 1 < $2 \
                     AND NOT EXISTS (SELECT 1 FROM held g WHERE g.slot = h.slot + 1)) \
             INSERT INTO target_slots AS t (target_id, slot, holder, expires_at_ms) \
             SELECT $1, slot, $3::TEXT, $4::BIGINT FROM free ORDER BY slot LIMIT 1 \
             ON CONFLICT (target_id, slot) DO UPDATE SET \
                 holder = EXCLUDED.holder, expires_at_ms = EXCLUDED.expires_at_ms \
             WHERE t.expires_at_ms <= $5 \
             RETURNING slot, expires_at_ms",
        )
        .await
        .map_err(|e| map_err("preparing a slot take", e))?;
    let row = client
        .query_opt(
            &stmt,
            &[&take.target_id, &max, &take.holder, &expires, &now_ms],
        )
        .await
        .map_err(|e| map_err(format!("taking a slot of target {}", take.target_id), e))?;
    row.map(|r| {
        let slot: i64 = r.get(0);
        Ok(SlotLease {
            target_id: take.target_id.clone(),
            slot: u32::try_from(slot)
                .map_err(|e| corrupt("target slot", &take.target_id, "slot", e))?,
            holder: take.holder.clone(),
            expires_at_ms: r.get(1),
        })
    })
    .transpose()
}

/// Extends a slot still held by `lease`'s holder; whether it was.
pub(crate) async fn renew_slot(
    client: &impl GenericClient,
    lease: &SlotLease,
    lease_ms: i64,
    now_ms: i64,
) -> StoreResult<bool> {
    let stmt = client
        .prepare_cached(
            "UPDATE target_slots SET expires_at_ms = $4 \
             WHERE target_id = $1 AND slot = $2 AND holder = $3",
        )
        .await
        .map_err(|e| map_err("preparing a slot renewal", e))?;
    let n = client
        .execute(
            &stmt,
            &[
                &lease.target_id,
                &i64::from(lease.slot),
                &lease.holder,
                &now_ms.saturating_add(lease_ms),
            ],
        )
        .await
        .map_err(|e| map_err(format!("renewing a slot of target {}", lease.target_id), e))?;
    Ok(n == 1)
}

/// Frees a slot still held by `lease`'s holder.
pub(crate) async fn release_slot(
    client: &impl GenericClient,
    lease: &SlotLease,
) -> StoreResult<()> {
    let stmt = client
        .prepare_cached(
            "DELETE FROM target_slots WHERE target_id = $1 AND slot = $2 AND holder = $3",
        )
        .await
        .map_err(|e| map_err("preparing a slot release", e))?;
    client
        .execute(
            &stmt,
            &[&lease.target_id, &i64::from(lease.slot), &lease.holder],
        )
        .await
        .map_err(|e| map_err(format!("releasing a slot of target {}", lease.target_id), e))?;
    Ok(())
}

/// The database's clock now (unix ms): `clock_timestamp()`, the time of
/// the call, not of the transaction's start.
pub(crate) async fn store_time_ms(client: &impl GenericClient) -> StoreResult<i64> {
    let row = client
        .query_one(
            "SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT",
            &[],
        )
        .await
        .map_err(|e| map_err("reading the database's clock", e))?;
    Ok(row.get(0))
}
