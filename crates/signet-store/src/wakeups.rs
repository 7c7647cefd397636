//! Marks in a store's stream of work signals, so that a signal sent
//! between a claim that found nothing and the wait that follows it is not
//! lost.
//!
//! A consumer takes a [`WorkMark`] with [`Store::work_mark`] *before* it
//! claims. When the claim finds nothing it waits with
//! [`Store::wait_for_work`] from that mark: a signal for one of its queues
//! sent after the mark (even before the wait began) ends the wait at once.
//! Backends count signals per queue with [`WorkSignals`].
//!
//! [`Store::work_mark`]: crate::Store::work_mark
//! [`Store::wait_for_work`]: crate::Store::wait_for_work

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Where the work signals of some queues stood at one moment (opaque).
/// Equal marks of the same queues mean no signal came in between.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkMark(u64);

/// Counts the work signals of each queue a consumer has marked, and the
/// signals for every queue. For backends: count a signal *before* waking
/// the waiters, and have a waiter register for wake-ups *before* it
/// compares marks, so that a signal is either counted in what it compares
/// or wakes it.
#[derive(Debug, Default)]
pub struct WorkSignals {
    /// Per queue that a mark has named (others are not counted: nobody
    /// can be waiting from a mark of them).
    queues: Mutex<HashMap<String, u64>>,
    /// Signals for every queue (a reconnect, a wake-all).
    all: AtomicU64,
}

impl WorkSignals {
    /// Counts a signal for `queue`.
    pub fn signal(&self, queue: &str) {
        let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = queues.get_mut(queue) {
            *n = n.wrapping_add(1);
        }
    }

    /// Counts a signal for every queue.
    pub fn signal_all(&self) {
        self.all.fetch_add(1, Ordering::SeqCst);
    }

    /// The mark of `queues` now.
    pub fn mark(&self, queues: &[String]) -> WorkMark {
        let mut counts = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        let sum = queues
            .iter()
            .fold(self.all.load(Ordering::SeqCst), |sum, q| {
                let n = match counts.get(q.as_str()) {
                    Some(n) => *n,
                    None => *counts.entry(q.clone()).or_insert(0),
                };
                sum.wrapping_add(n)
            });
        WorkMark(sum)
    }

    /// Whether a signal for one of `queues` came after `since`.
    pub fn signalled_since(&self, queues: &[String], since: WorkMark) -> bool {
        self.mark(queues) != since
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qs(names: &[&str]) -> Vec<String> {
        names.iter().map(|q| (*q).to_owned()).collect()
    }

    #[test]
    fn a_signal_after_a_mark_moves_it_and_only_for_its_queues() {
        let s = WorkSignals::default();
        let ab = qs(&["a", "b"]);
        let c = qs(&["c"]);
        let mark = s.mark(&ab);
        let mark_c = s.mark(&c);
        assert!(!s.signalled_since(&ab, mark));
        s.signal("b");
        assert!(s.signalled_since(&ab, mark));
        assert!(!s.signalled_since(&c, mark_c), "c was not signalled");
        // A signal for every queue moves every mark.
        let mark_c = s.mark(&c);
        s.signal_all();
        assert!(s.signalled_since(&c, mark_c));
        // A mark taken after the signals is current.
        let now = s.mark(&ab);
        assert!(!s.signalled_since(&ab, now));
    }

    #[test]
    fn queues_nobody_marked_are_not_counted() {
        let s = WorkSignals::default();
        s.signal("never-marked");
        assert!(s.queues.lock().unwrap().is_empty());
        // Marked later, it starts from there.
        let mark = s.mark(&qs(&["never-marked"]));
        assert!(!s.signalled_since(&qs(&["never-marked"]), mark));
    }
}
