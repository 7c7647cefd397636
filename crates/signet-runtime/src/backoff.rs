//! Retry schedule: exponential backoff with full jitter.
//!
//! After attempt `n` (1-based) fails, the next try waits a uniformly random
//! time in `[0, min(cap, base · 2^(n-1))]` ("full jitter"), so a burst of
//! failures spreads out instead of retrying in lockstep. The ceiling is
//! computed with saturating arithmetic: any attempt number is safe.

use std::time::Duration;

use rand::Rng;

/// Default first ceiling: the first retry waits up to this long.
pub const DEFAULT_RETRY_BASE: Duration = Duration::from_secs(1);
/// Default largest wait between two attempts.
pub const DEFAULT_RETRY_CAP: Duration = Duration::from_secs(60 * 60);

/// How long to wait before retrying a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The ceiling after the first failed attempt; it doubles each attempt.
    pub base: Duration,
    /// The largest ceiling.
    pub cap: Duration,
    /// Whether to draw the wait uniformly from `[0, ceiling]` (the default,
    /// "full jitter") or to wait exactly the ceiling (deterministic; for
    /// tests and for people who want a fixed schedule).
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: DEFAULT_RETRY_BASE,
            cap: DEFAULT_RETRY_CAP,
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// Full jitter between `base` and `cap`.
    pub fn exponential(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
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

    /// The longest wait after attempt `attempt` (1-based) fails:
    /// `min(cap, base · 2^(attempt-1))`, never overflowing.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1);
        let factor = if exponent >= 64 {
            u64::MAX
        } else {
            1u64 << exponent
        };
        let base_ms = u64::try_from(self.base.as_millis()).unwrap_or(u64::MAX);
        let cap_ms = u64::try_from(self.cap.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(base_ms.saturating_mul(factor).min(cap_ms))
    }

    /// The wait after attempt `attempt` (1-based) fails.
    pub fn delay<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
        let ceiling = self.ceiling(attempt);
        if !self.jitter {
            return ceiling;
        }
        let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rng.gen_range(0..=ceiling_ms))
    }
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
        assert_eq!(p.delay(3, &mut rng), Duration::from_millis(400));
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
        fn delay_is_within_zero_and_the_capped_ceiling(
            base_ms in 0u64..=u64::MAX / 2,
            cap_ms in 0u64..=u64::MAX / 2,
            attempt in any::<u32>(),
            seed in any::<u64>(),
        ) {
            let p = RetryPolicy::exponential(Duration::from_millis(base_ms), Duration::from_millis(cap_ms));
            let mut rng = StdRng::seed_from_u64(seed);
            let d = p.delay(attempt, &mut rng);
            let exponent = attempt.saturating_sub(1);
            let exact = if base_ms == 0 {
                0
            } else if exponent >= 64 {
                u128::MAX
            } else {
                u128::from(base_ms) << exponent
            };
            let bound = exact.min(u128::from(cap_ms));
            prop_assert!(d.as_millis() <= bound);
            prop_assert_eq!(p.ceiling(attempt).as_millis(), bound);
        }

        #[test]
        fn ceilings_never_shrink(base_ms in 1u64..100_000, cap_ms in 1u64..10_000_000, attempt in 1u32..200) {
            let p = RetryPolicy::exponential(Duration::from_millis(base_ms), Duration::from_millis(cap_ms));
            prop_assert!(p.ceiling(attempt + 1) >= p.ceiling(attempt));
        }
    }
}
