//! Per-target limits shared by every process on one store: a target's rate
//! (send times handed out from one row per target) and its concurrency
//! (numbered slots leased with an expiry). What a node's death does to them
//! is in `docs/deploy.md`.
//!
//! The rate is a token bucket of one token kept as the time the next token
//! is free (`next_free_us`, the "virtual scheduling" form of GCRA): a take
//! asks for up to `want` send times and gets the free ones that fall before
//! `now + horizon`, spaced one interval apart, in one `UPDATE … RETURNING`.
//! The bucket holds no burst, so any second sees at most `rate + 1` send
//! times across all nodes; a time handed out and not used is lost, never
//! handed out again (the limit errs on the safe side).
//!
//! A concurrency slot is a row `(target_id, slot)` with `slot < max`, a
//! holder and an expiry: taken when absent or expired, renewed by its holder
//! while the request runs, deleted at the end. The primary key makes two
//! nodes taking the same slot impossible; a dead node's slots are free again
//! once their lease expires.

use crate::error::StoreError;
use crate::ids::TargetId;
use crate::rules::target_limit;

/// The target id and limit of a take, held to the rules of a target.
fn check_target(target_id: &str, field: &str, limit: u32) -> Result<(), StoreError> {
    TargetId::parse(target_id)?;
    target_limit(field, Some(limit))
        .map_err(|e| StoreError::invalid(format!("target {target_id}: {e}")))
}

/// Microseconds in a second.
const US_PER_S: i64 = 1_000_000;

/// Most send times one [`RateTake`] may ask for.
pub const MAX_RATE_TAKE: u32 = 10_000;

/// Longest horizon of a [`RateTake`]: send times are never handed out more
/// than this far ahead.
pub const MAX_RATE_HORIZON_MS: i64 = 10_000;

/// A request for send times from a target's rate bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateTake {
    /// The target.
    pub target_id: String,
    /// Its rate limit (requests per second, as
    /// [`target_limit`] allows).
    pub rate_per_s: u32,
    /// How many send times the caller can use (1 to [`MAX_RATE_TAKE`]).
    pub want: u32,
    /// Only send times before `now + horizon_ms` are handed out (1 to
    /// [`MAX_RATE_HORIZON_MS`]).
    pub horizon_ms: i64,
}

impl RateTake {
    /// Checks the request; the store refuses what this refuses with
    /// [`StoreError::Invalid`].
    pub fn validate(&self) -> Result<(), StoreError> {
        check_target(&self.target_id, "rate_limit_per_s", self.rate_per_s)?;
        if !(1..=MAX_RATE_TAKE).contains(&self.want) {
            return Err(StoreError::invalid(format!(
                "a rate take asks for {} send times; ask for 1 to {MAX_RATE_TAKE}",
                self.want
            )));
        }
        if !(1..=MAX_RATE_HORIZON_MS).contains(&self.horizon_ms) {
            return Err(StoreError::invalid(format!(
                "a rate take horizon of {} ms is out of range; use 1 to {MAX_RATE_HORIZON_MS} ms",
                self.horizon_ms
            )));
        }
        Ok(())
    }

    /// Microseconds between two send times: `1 s / rate`, rounded up so the
    /// rate is never exceeded.
    pub fn interval_us(&self) -> i64 {
        let rate = i64::from(self.rate_per_s.max(1));
        // Ceiling division of positive numbers.
        (US_PER_S + rate - 1) / rate
    }
}

/// The send times a [`RateTake`] got: `count` times from `first_us`, one
/// `interval_us` apart (unix microseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateGrant {
    /// The first send time (unix µs); when `count` is 0, the time the next
    /// one is free.
    pub first_us: i64,
    /// How many send times were handed out (0 when none is free before the
    /// horizon).
    pub count: u32,
    /// The spacing between them (µs).
    pub interval_us: i64,
}

impl RateGrant {
    /// The grant a bucket row read back after a take describes: the
    /// bucket's new `next_free_us` and how many times the take handed out
    /// (`granted`). `None` when `granted` is out of range (a corrupt row).
    pub fn from_bucket(next_free_us: i64, granted: i64, interval_us: i64) -> Option<Self> {
        let count = u32::try_from(granted).ok()?;
        Some(Self {
            first_us: next_free_us.saturating_sub(granted.saturating_mul(interval_us)),
            count,
            interval_us,
        })
    }

    /// The `i`-th send time handed out (unix µs).
    pub fn at_us(&self, i: u32) -> i64 {
        self.first_us
            .saturating_add(self.interval_us.saturating_mul(i64::from(i)))
    }
}

/// A request for one of a target's concurrency slots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotTake {
    /// The target.
    pub target_id: String,
    /// Its concurrency limit: slots `0 .. max` exist (as
    /// [`target_limit`] allows).
    pub max: u32,
    /// Who holds the slot if it is taken: unique per take, so a release or
    /// renewal after the slot was lost and taken again by another changes
    /// nothing.
    pub holder: String,
    /// How long the slot is held without renewal (ms, positive).
    pub lease_ms: i64,
}

impl SlotTake {
    /// Checks the request; the store refuses what this refuses with
    /// [`StoreError::Invalid`].
    pub fn validate(&self) -> Result<(), StoreError> {
        check_target(&self.target_id, "max_concurrency", self.max)?;
        check_holder(&self.holder)?;
        check_slot_lease_ms(self.lease_ms)
    }
}

/// A concurrency slot held: what renews and releases it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotLease {
    /// The target.
    pub target_id: String,
    /// The slot's number (below the target's limit when taken).
    pub slot: u32,
    /// The holder named when it was taken.
    pub holder: String,
    /// When it expires unless renewed (unix ms).
    pub expires_at_ms: i64,
}

/// Longest holder name of a slot, in bytes.
pub const MAX_SLOT_HOLDER_BYTES: usize = 256;

fn check_holder(holder: &str) -> Result<(), StoreError> {
    if holder.is_empty() || holder.len() > MAX_SLOT_HOLDER_BYTES {
        return Err(StoreError::invalid(format!(
            "a slot holder of {} bytes is out of range; use 1 to {MAX_SLOT_HOLDER_BYTES} bytes",
            holder.len()
        )));
    }
    Ok(())
}

/// Checks a slot lease length: positive.
pub fn check_slot_lease_ms(lease_ms: i64) -> Result<(), StoreError> {
    if lease_ms <= 0 {
        return Err(StoreError::invalid(format!(
            "a slot lease of {lease_ms} ms is not positive; use a lease longer than the renewal interval"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(rate: u32, want: u32, horizon_ms: i64) -> RateTake {
        RateTake {
            target_id: "tgt_0190aaaa0000700080000000000000aa".into(),
            rate_per_s: rate,
            want,
            horizon_ms,
        }
    }

    #[test]
    fn the_interval_rounds_up_so_the_rate_is_never_exceeded() {
        assert_eq!(take(50, 1, 100).interval_us(), 20_000);
        assert_eq!(take(3, 1, 100).interval_us(), 333_334);
        assert_eq!(take(1, 1, 100).interval_us(), 1_000_000);
        assert_eq!(take(100_000, 1, 100).interval_us(), 10);
    }

    #[test]
    fn bad_takes_are_refused_naming_the_field() {
        assert!(take(50, 1, 100).validate().is_ok());
        let e = take(0, 1, 100).validate().unwrap_err().to_string();
        assert!(e.contains("rate_limit_per_s"), "{e}");
        assert!(take(100_001, 1, 100).validate().is_err());
        let e = take(50, 0, 100).validate().unwrap_err().to_string();
        assert!(e.contains("send times"), "{e}");
        let e = take(50, 1, 0).validate().unwrap_err().to_string();
        assert!(e.contains("horizon"), "{e}");
        let mut t = take(50, 1, 100);
        t.target_id = String::new();
        assert!(t.validate().is_err());
    }

    #[test]
    fn bad_slot_takes_are_refused() {
        let ok = SlotTake {
            target_id: "tgt_0190aaaa0000700080000000000000aa".into(),
            max: 3,
            holder: "node-a/1".into(),
            lease_ms: 1000,
        };
        assert!(ok.validate().is_ok());
        for bad in [
            SlotTake {
                max: 0,
                ..ok.clone()
            },
            SlotTake {
                holder: String::new(),
                ..ok.clone()
            },
            SlotTake {
                lease_ms: 0,
                ..ok.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_grant_spaces_its_times_one_interval_apart() {
        let g = RateGrant {
            first_us: 1_000,
            count: 3,
            interval_us: 20_000,
        };
        assert_eq!((g.at_us(0), g.at_us(2)), (1_000, 41_000));
    }
}
