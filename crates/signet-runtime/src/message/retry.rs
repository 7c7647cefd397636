//! When a failed delivery is tried again: the retry schedule.

use std::time::Duration;

use rand::Rng;

use crate::error::RuntimeError;

/// The default retry schedule: the waits after the 1st, 2nd, … failed
/// attempt. A message gets one attempt more than there are steps.
pub const DEFAULT_RETRY_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];
/// Default jitter: each wait is moved by up to ±20 %.
pub const DEFAULT_JITTER: f64 = 0.2;

/// When to retry a failed delivery: a wait after each failed attempt,
/// moved by a random jitter so receivers recovering from an outage are not
/// hit by every retry at once.
#[derive(Clone, Debug, PartialEq)]
pub struct RetrySchedule {
    steps: Vec<Duration>,
    jitter: f64,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self {
            steps: DEFAULT_RETRY_SCHEDULE.to_vec(),
            jitter: DEFAULT_JITTER,
        }
    }
}

impl RetrySchedule {
    /// A schedule of these waits with the default jitter. At least one step.
    pub fn new(steps: Vec<Duration>) -> Result<Self, RuntimeError> {
        if steps.is_empty() {
            return Err(RuntimeError::Config(
                "a retry schedule needs at least one step".into(),
            ));
        }
        Ok(Self {
            steps,
            jitter: DEFAULT_JITTER,
        })
    }

    /// The same waits moved by up to `±fraction` (0 for an exact schedule;
    /// clamped to `0..=1`).
    pub fn with_jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// The waits.
    pub fn steps(&self) -> &[Duration] {
        &self.steps
    }

    /// The jitter fraction.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// These `steps` with this schedule's jitter (a message's own
    /// schedule keeps the dispatcher's jitter).
    pub(super) fn with_steps(&self, steps: Vec<Duration>) -> Self {
        Self {
            steps,
            jitter: self.jitter,
        }
    }

    /// Attempts a message gets by default: one more than the steps.
    pub fn default_max_attempts(&self) -> u32 {
        u32::try_from(self.steps.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }

    /// The wait after attempt `attempt` (1-based) failed: its step (the last
    /// step repeats), moved by the jitter.
    pub fn delay_after<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
        let index = usize::try_from(attempt.saturating_sub(1))
            .unwrap_or(usize::MAX)
            .min(self.steps.len().saturating_sub(1));
        let Some(step) = self.steps.get(index) else {
            return Duration::ZERO;
        };
        if self.jitter == 0.0 {
            return *step;
        }
        let factor = 1.0 + rng.gen_range(-self.jitter..=self.jitter);
        step.mul_f64(factor.max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn the_schedule_repeats_its_last_step_and_jitters_within_bounds() {
        let s = RetrySchedule::default();
        assert_eq!(s.default_max_attempts(), 8);
        let mut rng = StdRng::seed_from_u64(3);
        for attempt in 1..=20u32 {
            let step = DEFAULT_RETRY_SCHEDULE[(attempt as usize - 1).min(6)];
            let d = s.delay_after(attempt, &mut rng);
            assert!(
                d >= step.mul_f64(0.8) && d <= step.mul_f64(1.2),
                "{attempt}: {d:?}"
            );
        }
        let exact = RetrySchedule::new(vec![Duration::from_millis(10), Duration::from_millis(30)])
            .unwrap()
            .with_jitter(0.0);
        let got: Vec<_> = (1..=4)
            .map(|a| exact.delay_after(a, &mut rng).as_millis())
            .collect();
        assert_eq!(got, [10, 30, 30, 30]);
        assert!(RetrySchedule::new(Vec::new()).is_err());
    }
}
