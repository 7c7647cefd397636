//! Per-target limits shared by every process on the file: send times from
//! a target's rate bucket, and leased concurrency slots
//! (`signet_store::limits`). The statements mirror PostgreSQL's; the
//! conformance suite holds both to the same answers.

use rusqlite::{params, Connection, OptionalExtension};
use signet_store::{RateGrant, RateTake, SlotLease, SlotTake, StoreResult};

use crate::error_map::map_err;
use crate::row::corrupt;

/// Hands out send times: see [`Store::take_rate`](signet_store::Store::take_rate).
/// With `s = MAX(next_free_us, now)`, the times `s, s + iv, …` before the
/// horizon's end, at most `want`; one upsert reads and moves the bucket.
pub(crate) fn take_rate(conn: &Connection, take: &RateTake, now_ms: i64) -> StoreResult<RateGrant> {
    let now_us = now_ms.saturating_mul(1000);
    let end_us = now_us.saturating_add(take.horizon_ms.saturating_mul(1000));
    let iv = take.interval_us();
    let want = i64::from(take.want);
    let (next_free_us, granted): (i64, i64) = conn
        .prepare_cached(
            "INSERT INTO target_rates (target_id, next_free_us, granted) \
             VALUES (?1, ?2 + MIN(?5, (?3 - ?2 + ?4 - 1) / ?4) * ?4, MIN(?5, (?3 - ?2 + ?4 - 1) / ?4)) \
             ON CONFLICT (target_id) DO UPDATE SET \
                 granted = MIN(?5, MAX(0, (?3 - MAX(next_free_us, ?2) + ?4 - 1) / ?4)), \
                 next_free_us = MAX(next_free_us, ?2) \
                     + MIN(?5, MAX(0, (?3 - MAX(next_free_us, ?2) + ?4 - 1) / ?4)) * ?4 \
             RETURNING next_free_us, granted",
        )
        .and_then(|mut s| {
            s.query_row(params![take.target_id, now_us, end_us, iv, want], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
        })
        .map_err(|e| map_err(format!("taking send times of target {}", take.target_id), e))?;
    RateGrant::from_bucket(next_free_us, granted, iv)
        .ok_or_else(|| corrupt("target rate", &take.target_id, "granted", granted))
}

/// Takes the lowest free slot: see
/// [`Store::take_slot`](signet_store::Store::take_slot). The free slots
/// below `max` are the expired rows, 0 when absent, and each held slot's
/// next number when absent (rows are deleted on release, so this finds the
/// lowest gap without listing every number below `max`).
pub(crate) fn take_slot(
    conn: &Connection,
    take: &SlotTake,
    now_ms: i64,
) -> StoreResult<Option<SlotLease>> {
    let expires = now_ms.saturating_add(take.lease_ms);
    let row: Option<(i64, i64)> = conn
        .prepare_cached(
            "WITH held AS (SELECT slot, expires_at_ms FROM target_slots WHERE target_id = ?1), \
             free (slot) AS ( \
                 SELECT slot FROM held WHERE expires_at_ms <= ?5 AND slot < ?2 \
                 UNION ALL SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM held WHERE slot = 0) \
                 UNION ALL SELECT h.slot + 1 FROM held h WHERE h.slot + 1 < ?2 \
                     AND NOT EXISTS (SELECT 1 FROM held g WHERE g.slot = h.slot + 1)) \
             INSERT INTO target_slots (target_id, slot, holder, expires_at_ms) \
             SELECT ?1, slot, ?3, ?4 FROM free WHERE true ORDER BY slot LIMIT 1 \
             ON CONFLICT (target_id, slot) DO UPDATE SET \
                 holder = excluded.holder, expires_at_ms = excluded.expires_at_ms \
             WHERE target_slots.expires_at_ms <= ?5 \
             RETURNING slot, expires_at_ms",
        )
        .and_then(|mut s| {
            s.query_row(
                params![take.target_id, take.max, take.holder, expires, now_ms],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })
        .map_err(|e| map_err(format!("taking a slot of target {}", take.target_id), e))?;
    row.map(|(slot, expires_at_ms)| {
        Ok(SlotLease {
            target_id: take.target_id.clone(),
            slot: u32::try_from(slot)
                .map_err(|e| corrupt("target slot", &take.target_id, "slot", e))?,
            holder: take.holder.clone(),
            expires_at_ms,
        })
    })
    .transpose()
}

/// Extends a slot still held by `lease`'s holder; whether it was.
pub(crate) fn renew_slot(
    conn: &Connection,
    lease: &SlotLease,
    lease_ms: i64,
    now_ms: i64,
) -> StoreResult<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE target_slots SET expires_at_ms = ?4 \
             WHERE target_id = ?1 AND slot = ?2 AND holder = ?3",
        )
        .and_then(|mut s| {
            s.execute(params![
                lease.target_id,
                lease.slot,
                lease.holder,
                now_ms.saturating_add(lease_ms)
            ])
        })
        .map_err(|e| map_err(format!("renewing a slot of target {}", lease.target_id), e))?;
    Ok(n == 1)
}

/// Frees a slot still held by `lease`'s holder.
pub(crate) fn release_slot(conn: &Connection, lease: &SlotLease) -> StoreResult<()> {
    conn.prepare_cached(
        "DELETE FROM target_slots WHERE target_id = ?1 AND slot = ?2 AND holder = ?3",
    )
    .and_then(|mut s| s.execute(params![lease.target_id, lease.slot, lease.holder]))
    .map_err(|e| map_err(format!("releasing a slot of target {}", lease.target_id), e))?;
    Ok(())
}
