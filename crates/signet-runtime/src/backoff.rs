//! Retry schedule: exponential backoff with full jitter above a floor.
//!
//! After attempt `n` (1-based) fails, the next try waits a uniformly random
//! time in `[floor, max(floor, min(cap, base · 2^(n-1)))]` ("full jitter"),
//! so a burst of failures spreads out instead of retrying in lockstep, and
//! no retry comes sooner than the floor (without one, full jitter once
//! retried an I/O error after 61 ms and a three-attempt task was dead within
//! a second). A floor above the cap is lowered to the cap: every wait is in
//! `[min(floor, cap), cap]`. The ceiling is computed with saturating
//! arithmetic: any attempt number is safe.
//!
//! The defaults (1 s base and floor, 1 h cap, jitter on) and the span of the
//! default schedule are in the README ("Retries").

use std::time::Duration;

use rand::Rng;

/// Default first ceiling: the first retry waits up to this long.
pub const DEFAULT_RETRY_BASE: Duration = Duration::from_secs(1);
/// Default largest wait between two attempts.
pub const DEFAULT_RETRY_CAP: Duration = Duration::from_secs(60 * 60);
/// Default shortest wait between two attempts.
pub const DEFAULT_RETRY_FLOOR: Duration = Duration::from_secs(1);

/// How long to wait before retrying a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The ceiling after the first failed attempt; it doubles each attempt.
    pub base: Duration,
    /// The largest ceiling.
    pub cap: Duration,
    /// The shortest wait ([`DEFAULT_RETRY_FLOOR`]); lowered to `cap` if
    /// above it.
    pub floor: Duration,
    /// Whether to draw the wait uniformly from `[floor, ceiling]` (the
    /// default, "full jitter") or to wait exactly the ceiling (never less
    /// than the floor; deterministic, for tests and for people who want a
    /// fixed schedule).
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::exponential(DEFAULT_RETRY_BASE, DEFAULT_RETRY_CAP)
    }
}

impl RetryPolicy {
    /// Full jitter between `base` and `cap`, above [`DEFAULT_RETRY_FLOOR`]
    /// (or `cap`, if lower).
    pub fn exponential(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            floor: DEFAULT_RETRY_FLOOR,
            jitter: true,
        }
    }

    /// The same schedule without jitter: wait exactly the ceiling.
    pub fn without_jitter(self) -> Self {
        Self {
            jitter: false,
            ..self
        }
    }

    /// The same schedule with this shortest wait (`Duration::ZERO` for
    /// none).
    pub fn with_floor(self, floor: Duration) -> Self {
        Self { floor, ..self }
    }

    /// The longest wait after attempt `attempt` (1-based) fails:
    /// `min(cap, base · 2^(attempt-1))`, never overflowing. The wait is
    /// never below the floor, even where this is.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1);
        let factor = if exponent >= 64 {
            u64::MAX
        } else {
            1u64 << exponent
        };
        let base_ms = millis(self.base);
        let cap_ms = millis(self.cap);
        Duration::from_millis(base_ms.saturating_mul(factor).min(cap_ms))
    }

    /// The shortest wait: the floor, or the cap if that is lower.
    pub fn effective_floor(&self) -> Duration {
        Duration::from_millis(millis(self.floor).min(millis(self.cap)))
    }

    /// The wait after attempt `attempt` (1-based) fails.
    pub fn delay<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
        let low_ms = millis(self.effective_floor());
        let high_ms = millis(self.ceiling(attempt)).max(low_ms);
        if !self.jitter {
            return Duration::from_millis(high_ms);
        }
        Duration::from_millis(rng.gen_range(low_ms..=high_ms))
    }
}

/// Whole milliseconds, saturating.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn ceilings_double_then_cap() {
        let p = RetryPolicy::exponential(Duration::from_secs(1), Duration::from_secs(10));
        let ceilings: Vec<u64> = (1..=6).map(|a| p.ceiling(a).as_secs()).collect();
        assert_eq!(ceilings, [1, 2, 4, 8, 10, 10]);
        assert_eq!(p.ceiling(0), Duration::from_secs(1));
        assert_eq!(p.ceiling(u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn without_jitter_waits_the_ceiling() {
        let p = RetryPolicy::exponential(Duration::from_millis(100), Duration::from_secs(1))
            .without_jitter();
        let mut rng = StdRng::seed_from_u64(1);
        // The 400 ms ceiling is below the default 1 s floor.
        assert_eq!(p.delay(3, &mut rng), Duration::from_secs(1));
        assert_eq!(p.delay(5, &mut rng), Duration::from_secs(1));
        let p = p.with_floor(Duration::ZERO);
        assert_eq!(p.delay(3, &mut rng), Duration::from_millis(400));
    }

    #[test]
    fn the_first_retry_is_never_sooner_than_the_floor() {
        let p = RetryPolicy::default();
        assert_eq!(p.floor, Duration::from_secs(1));
        let mut rng = StdRng::seed_from_u64(61);
        for attempt in [1, 2, 3] {
            for _ in 0..500 {
                let d = p.delay(attempt, &mut rng);
                assert!(d >= Duration::from_secs(1), "attempt {attempt}: {d:?}");
            }
        }
        // A three-attempt task is not dead within a second: two waits of at
        // least the floor each.
        let span: Duration = (1..=2).map(|a| p.delay(a, &mut rng)).sum();
        assert!(span >= Duration::from_secs(2), "{span:?}");
    }

    #[test]
    fn a_floor_above_the_cap_is_the_cap() {
        let p = RetryPolicy::exponential(Duration::from_millis(10), Duration::from_millis(300));
        assert_eq!(p.effective_floor(), Duration::from_millis(300));
        let mut rng = StdRng::seed_from_u64(2);
        assert_eq!(p.delay(1, &mut rng), Duration::from_millis(300));
        let none = RetryPolicy::exponential(Duration::ZERO, Duration::ZERO);
        assert_eq!(none.delay(1, &mut rng), Duration::ZERO);
    }

    #[test]
    fn jitter_spreads_over_the_whole_range() {
        let p = RetryPolicy::exponential(Duration::from_secs(1), Duration::from_secs(60));
        let mut rng = StdRng::seed_from_u64(7);
        let draws: Vec<Duration> = (0..200).map(|_| p.delay(4, &mut rng)).collect();
        let low = draws
            .iter()
            .filter(|d| **d < Duration::from_secs(2))
            .count();
        let high = draws
            .iter()
            .filter(|d| **d > Duration::from_secs(6))
            .count();
        assert!(low > 10 && high > 10, "low {low} high {high}");
    }

    proptest! {
        #[test]
        fn every_delay_is_at_least_the_floor_and_at_most_the_cap(
            base_ms in 0u64..=u64::MAX / 2,
            cap_ms in 0u64..=u64::MAX / 2,
            floor_ms in prop_oneof![0u64..=5_000, 0u64..=u64::MAX / 2],
            attempt in any::<u32>(),
            jitter in any::<bool>(),
            seed in any::<u64>(),
        ) {
            let mut p = RetryPolicy::exponential(Duration::from_millis(base_ms), Duration::from_millis(cap_ms))
                .with_floor(Duration::from_millis(floor_ms));
            p.jitter = jitter;
            let mut rng = StdRng::seed_from_u64(seed);
            let d = p.delay(attempt, &mut rng).as_millis();
            let exponent = attempt.saturating_sub(1);
            let exact = if base_ms == 0 {
                0
            } else if exponent >= 64 {
                u128::MAX
            } else {
                u128::from(base_ms) << exponent
            };
            let ceiling = exact.min(u128::from(cap_ms));
            let floor = u128::from(floor_ms.min(cap_ms));
            prop_assert!(d >= floor, "{} < floor {}", d, floor);
            prop_assert!(d <= u128::from(cap_ms), "{} > cap {}", d, cap_ms);
            prop_assert!(d <= ceiling.max(floor));
            prop_assert_eq!(p.ceiling(attempt).as_millis(), ceiling);
        }

        #[test]
        fn ceilings_never_shrink(base_ms in 1u64..100_000, cap_ms in 1u64..10_000_000, attempt in 1u32..200) {
            let p = RetryPolicy::exponential(Duration::from_millis(base_ms), Duration::from_millis(cap_ms));
            prop_assert!(p.ceiling(attempt + 1) >= p.ceiling(attempt));
        }
    }
}
