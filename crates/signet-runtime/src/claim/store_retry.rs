//! Retrying store calls that failed for a passing reason (busy, a lost
//! connection), with a short backoff.

use std::future::Future;
use std::time::{Duration, Instant};

use signet_store::StoreError;

/// How long a store write is retried on transient errors before it is
/// given up (the lease then expires and the row is rescued).
const STORE_RETRY_BUDGET: Duration = Duration::from_secs(60);

/// Retries a store call on transient errors for up to [`STORE_RETRY_BUDGET`].
pub(crate) async fn retry_store<T, F, Fut>(mut op: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let started = Instant::now();
    let mut failures = 0u32;
    loop {
        match op().await {
            Err(e) if e.is_retryable() && started.elapsed() < STORE_RETRY_BUDGET => {
                failures = failures.saturating_add(1);
                let wait = store_backoff(failures);
                tracing::warn!(error = %e, retry_in = ?wait, "store busy; retrying");
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

/// Wait before retrying a failed store call: 10 ms doubling to 1 s.
pub(crate) fn store_backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(7);
    Duration::from_millis((10u64 << exp).min(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_backoff_grows_and_caps() {
        assert_eq!(store_backoff(1), Duration::from_millis(10));
        assert_eq!(store_backoff(2), Duration::from_millis(20));
        assert_eq!(store_backoff(100), Duration::from_millis(1000));
    }
}
