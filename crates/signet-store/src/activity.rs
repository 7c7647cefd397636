//! What happened recently, in time buckets: the console's charts.
//!
//! [`Store::activity`](crate::Store::activity) counts, per queue and
//! bucket, the attempts that succeeded and those that failed, and per
//! bucket the dead letters refused for their signature, by outcome. It
//! reads what the store keeps anyway: a succeeded task's row (its last
//! attempt, by `finished_at_ms`), the failed attempts of the history, and
//! the dead letters' reason and detail.

use crate::error::StoreError;

/// Longest window [`ActivityWindow`] takes: one day.
pub const MAX_ACTIVITY_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

/// Most buckets [`ActivityWindow`] takes.
pub const MAX_ACTIVITY_BUCKETS: i64 = 288;

/// The span [`Store::activity`](crate::Store::activity) counts:
/// `since_ms <= t < since_ms + bucket_ms * buckets`, cut into `buckets`
/// buckets of `bucket_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActivityWindow {
    /// Start of the first bucket, unix ms.
    pub since_ms: i64,
    /// Length of one bucket, ms (at least 1).
    pub bucket_ms: i64,
    /// How many buckets (1 to [`MAX_ACTIVITY_BUCKETS`]).
    pub buckets: i64,
}

impl ActivityWindow {
    /// The `buckets` buckets of `bucket_ms` that end at `now_ms`.
    pub fn ending_at(now_ms: i64, bucket_ms: i64, buckets: i64) -> Self {
        ActivityWindow {
            since_ms: now_ms.saturating_sub(bucket_ms.saturating_mul(buckets)),
            bucket_ms,
            buckets,
        }
    }

    /// End of the last bucket (exclusive), unix ms.
    pub fn until_ms(&self) -> i64 {
        self.since_ms
            .saturating_add(self.bucket_ms.saturating_mul(self.buckets))
    }

    /// Refuses a window with no or too many buckets, or longer than
    /// [`MAX_ACTIVITY_WINDOW_MS`] (the query stays bounded).
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.bucket_ms < 1 {
            return Err(StoreError::invalid(format!(
                "activity bucket of {} ms: a bucket must be at least 1 ms",
                self.bucket_ms
            )));
        }
        if !(1..=MAX_ACTIVITY_BUCKETS).contains(&self.buckets) {
            return Err(StoreError::invalid(format!(
                "{} activity buckets: ask for 1 to {MAX_ACTIVITY_BUCKETS}",
                self.buckets
            )));
        }
        if self.bucket_ms.saturating_mul(self.buckets) > MAX_ACTIVITY_WINDOW_MS {
            return Err(StoreError::invalid(format!(
                "an activity window of {} ms is longer than the {MAX_ACTIVITY_WINDOW_MS} ms allowed",
                self.bucket_ms.saturating_mul(self.buckets)
            )));
        }
        Ok(())
    }
}

/// Attempts of one queue in one bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueActivity {
    /// The queue.
    pub queue: String,
    /// The bucket, from 0 (the oldest).
    pub bucket: i64,
    /// Attempts that succeeded (tasks and messages that finished
    /// `succeeded` in the bucket).
    pub succeeded: u64,
    /// Attempts that failed (retried, dead, lease expired), by when they
    /// ended.
    pub failed: u64,
}

/// Dead letters refused for their signature with one outcome, in one bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureFailures {
    /// The bucket, from 0 (the oldest).
    pub bucket: i64,
    /// The outcome: the dead letter's detail up to its first `:` (the
    /// runtime writes `"<outcome>: <message>"`, as `"mismatch: …"`).
    pub outcome: String,
    /// How many.
    pub count: u64,
}

/// What [`Store::activity`](crate::Store::activity) answers. Buckets with
/// nothing in them are left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Activity {
    /// Per queue and bucket, ordered by queue, then bucket.
    pub queues: Vec<QueueActivity>,
    /// Per bucket and outcome, ordered by bucket, then outcome.
    pub signature_failures: Vec<SignatureFailures>,
}

/// One row as the backends' query gives it: what it counts (`"succeeded"`,
/// `"failed"` or `"signature"`), the queue or outcome, the bucket, the count.
#[doc(hidden)]
pub type ActivityRow = (String, String, i64, i64);

impl Activity {
    /// Builds the answer from the rows of the backends' query (in any
    /// order). An unknown kind is a [`StoreError::Backend`].
    pub fn from_rows(rows: Vec<ActivityRow>) -> Result<Activity, StoreError> {
        use std::collections::BTreeMap;
        let mut queues: BTreeMap<(String, i64), (u64, u64)> = BTreeMap::new();
        let mut signature: BTreeMap<(i64, String), u64> = BTreeMap::new();
        for (kind, label, bucket, count) in rows {
            let count = u64::try_from(count).unwrap_or_default();
            match kind.as_str() {
                "succeeded" => queues.entry((label, bucket)).or_default().0 += count,
                "failed" => queues.entry((label, bucket)).or_default().1 += count,
                "signature" => {
                    *signature
                        .entry((bucket, label.trim().to_owned()))
                        .or_default() += count
                }
                other => {
                    return Err(StoreError::backend(
                        "counting recent activity gave a row of an unknown kind",
                        format!("kind {other:?}"),
                    ))
                }
            }
        }
        Ok(Activity {
            queues: queues
                .into_iter()
                .map(|((queue, bucket), (succeeded, failed))| QueueActivity {
                    queue,
                    bucket,
                    succeeded,
                    failed,
                })
                .collect(),
            signature_failures: signature
                .into_iter()
                .map(|((bucket, outcome), count)| SignatureFailures {
                    bucket,
                    outcome,
                    count,
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_merge_by_queue_and_bucket_and_trim_outcomes() {
        let got = Activity::from_rows(vec![
            ("failed".into(), "b".into(), 3, 2),
            ("succeeded".into(), "a".into(), 1, 5),
            ("failed".into(), "a".into(), 1, 1),
            ("signature".into(), "mismatch ".into(), 0, 4),
        ])
        .unwrap();
        assert_eq!(
            got.queues,
            vec![
                QueueActivity {
                    queue: "a".into(),
                    bucket: 1,
                    succeeded: 5,
                    failed: 1
                },
                QueueActivity {
                    queue: "b".into(),
                    bucket: 3,
                    succeeded: 0,
                    failed: 2
                },
            ]
        );
        assert_eq!(got.signature_failures[0].outcome, "mismatch");
    }

    #[test]
    fn an_unknown_kind_is_an_error_naming_it() {
        let err = Activity::from_rows(vec![("other".into(), "a".into(), 0, 1)]).unwrap_err();
        assert!(format!("{err:?}").contains("other"), "{err:?}");
    }

    #[test]
    fn the_window_ends_now_and_must_stay_bounded() {
        let w = ActivityWindow::ending_at(10_000, 1_000, 3);
        assert_eq!((w.since_ms, w.until_ms()), (7_000, 10_000));
        assert!(w.validate().is_ok());
        let too_many = ActivityWindow {
            buckets: MAX_ACTIVITY_BUCKETS + 1,
            ..w
        };
        assert!(matches!(too_many.validate(), Err(StoreError::Invalid(_))));
    }
}
