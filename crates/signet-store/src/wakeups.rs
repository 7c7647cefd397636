//! Marks in a store's stream of work signals, so that a signal sent
//! between a claim that found nothing and the wait that follows it is not
//! lost.
//!
//! A consumer takes a [`WorkMark`] with [`Store::work_mark`] *before* it
//! claims. When the claim finds nothing it waits with
//! [`Store::wait_for_work`] from that mark: a signal for one of its queues
//! sent after the mark (even before the wait began) ends the wait at once.
//! Backends count signals with [`WorkSignals`].
//!
//! [`Store::work_mark`]: crate::Store::work_mark
//! [`Store::wait_for_work`]: crate::Store::wait_for_work

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// Where the work signals of some queues stood at one moment (opaque).
/// Equal marks of the same queues mean no signal came in between.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkMark(u64);

/// Counters of queue signals: one per bucket of queue names.
const BUCKETS: usize = 256;

/// Counts work signals, for backends. Queues share 256 counters by
/// a hash of their name, so memory stays fixed whatever names clients
/// claim from; two queues in one bucket only cost a waiter on one of them
/// an early return (and a claim that finds nothing) when the other is
/// signalled.
///
/// Count a signal *before* waking the waiters, and have a waiter register
/// for wake-ups *before* it compares marks: a signal is then either in the
/// comparison or wakes the waiter.
#[derive(Debug)]
pub struct WorkSignals {
    queues: [AtomicU64; BUCKETS],
    /// Signals for every queue (a reconnect, a wake-all).
    all: AtomicU64,
}

impl Default for WorkSignals {
    fn default() -> Self {
        Self {
            queues: std::array::from_fn(|_| AtomicU64::new(0)),
            all: AtomicU64::new(0),
        }
    }
}

impl WorkSignals {
    /// Counts a signal for `queue`.
    pub fn signal(&self, queue: &str) {
        self.queues[bucket(queue)].fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a signal for every queue.
    pub fn signal_all(&self) {
        self.all.fetch_add(1, Ordering::SeqCst);
    }

    /// The mark of `queues` now.
    pub fn mark(&self, queues: &[String]) -> WorkMark {
        let sum = queues
            .iter()
            .fold(self.all.load(Ordering::SeqCst), |sum, q| {
                sum.wrapping_add(self.queues[bucket(q)].load(Ordering::SeqCst))
            });
        WorkMark(sum)
    }

    /// Whether a signal for one of `queues` came after `since`.
    pub fn signalled_since(&self, queues: &[String], since: WorkMark) -> bool {
        self.mark(queues) != since
    }
}

/// The counter of `queue` (the same in every process and run: a hasher
/// with fixed keys).
fn bucket(queue: &str) -> usize {
    let mut h = DefaultHasher::new();
    queue.hash(&mut h);
    // The remainder is below BUCKETS, which fits in usize.
    (h.finish() % BUCKETS as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qs(names: &[&str]) -> Vec<String> {
        names.iter().map(|q| (*q).to_owned()).collect()
    }

    /// A queue name in another bucket than every one of `names`.
    fn apart_from(names: &[&str]) -> String {
        (0..)
            .map(|i| format!("other-{i}"))
            .find(|q| names.iter().all(|n| bucket(n) != bucket(q)))
            .expect("some name falls in another bucket")
    }

    #[test]
    fn a_signal_after_a_mark_moves_it_and_only_for_its_queues() {
        let s = WorkSignals::default();
        let ab = qs(&["a", "b"]);
        let c = vec![apart_from(&["a", "b"])];
        let mark = s.mark(&ab);
        let mark_c = s.mark(&c);
        assert!(!s.signalled_since(&ab, mark));
        s.signal("b");
        assert!(s.signalled_since(&ab, mark));
        assert!(!s.signalled_since(&c, mark_c), "{c:?} was not signalled");
        // A signal for every queue moves every mark.
        let mark_c = s.mark(&c);
        s.signal_all();
        assert!(s.signalled_since(&c, mark_c));
        // A mark taken after the signals is current.
        let now = s.mark(&ab);
        assert!(!s.signalled_since(&ab, now));
    }

    #[test]
    fn buckets_are_fixed_and_spread() {
        assert_eq!(bucket("emails"), bucket("emails"));
        let used: std::collections::HashSet<usize> =
            (0..1000).map(|i| bucket(&format!("q{i}"))).collect();
        assert!(used.len() > BUCKETS / 2, "{} buckets used", used.len());
    }
}
