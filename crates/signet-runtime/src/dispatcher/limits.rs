//! Per-target concurrency and rate limits of one dispatcher.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use signet_store::TargetRecord;
use tokio::sync::Semaphore;

/// The limits of every target seen, by target id.
#[derive(Default)]
pub(super) struct Limits {
    by_target: Mutex<HashMap<String, Arc<TargetLimits>>>,
}

/// A target's concurrency and rate limits, kept across cache refreshes so
/// in-flight deliveries stay counted.
pub(super) struct TargetLimits {
    max_concurrency: Option<u32>,
    rate_limit_per_s: Option<u32>,
    pub(super) semaphore: Option<Arc<Semaphore>>,
    pub(super) limiter: Option<DefaultDirectRateLimiter>,
}

impl Limits {
    /// The limits of `target`, rebuilt when its configured values changed.
    pub(super) fn for_target(&self, target: &TargetRecord) -> Option<Arc<TargetLimits>> {
        if target.max_concurrency.is_none() && target.rate_limit_per_s.is_none() {
            return None;
        }
        let mut map = match self.by_target.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(l) = map.get(&target.id) {
            if l.max_concurrency == target.max_concurrency
                && l.rate_limit_per_s == target.rate_limit_per_s
            {
                return Some(Arc::clone(l));
            }
        }
        let limits = Arc::new(TargetLimits {
            max_concurrency: target.max_concurrency,
            rate_limit_per_s: target.rate_limit_per_s,
            semaphore: target
                .max_concurrency
                .map(|n| Arc::new(Semaphore::new(usize::try_from(n).unwrap_or(usize::MAX)))),
            limiter: target
                .rate_limit_per_s
                .and_then(NonZeroU32::new)
                .map(|n| RateLimiter::direct(Quota::per_second(n))),
        });
        map.insert(target.id.clone(), Arc::clone(&limits));
        Some(limits)
    }
}
