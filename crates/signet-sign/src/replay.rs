//! Replay protection for receivers: accept a message id once per window.
//!
//! Signature and timestamp checks stop a message from being altered or
//! replayed after the tolerance window; inside the window, a captured
//! request can still be sent again. A [`ReplayGuard`] closes that gap by
//! remembering the ids it has accepted. Standard Webhooks senders keep the
//! id stable across retries, so the guard also turns a retry of a message
//! already processed into a "duplicate" the receiver can acknowledge
//! without acting on it twice.
//!
//! Run it *after* the signature check, so forged requests cannot fill it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use crate::error::{Error, Result};

/// Remembers accepted message ids and refuses an id seen within its window.
pub trait ReplayGuard: Send + Sync {
    /// Records `id` (sent at `timestamp`, checked at `now`, unix seconds) and
    /// returns `Ok`, or fails when `id` was accepted before and is still
    /// remembered. The error says "duplicate delivery of …"; it is an
    /// [`Error::duplicate`] (the message is authentic but must not be
    /// processed again), so `is_verification()` is false for it.
    fn check(&self, id: &str, timestamp: i64, now: i64) -> Result<()>;
}

/// A bounded in-memory [`ReplayGuard`].
///
/// An id is remembered until `max(timestamp, now) + window_secs`: past that
/// the timestamp check (with a tolerance no larger than the window) refuses
/// the message anyway. Memory is bounded by `capacity` ids: expired ids are
/// dropped on every check, and when the guard is still full the id whose
/// memory ends soonest is dropped to make room. So size `capacity` for the
/// number of messages you accept per window; past it, the oldest ids lose
/// their protection first. It lives in one process: with several receiver
/// processes, use a shared store instead.
pub struct InMemoryReplayGuard {
    capacity: usize,
    window_secs: i64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// id → (expiry, sequence number).
    seen: HashMap<String, (i64, u64)>,
    /// (expiry, sequence number, id), ordered by expiry then arrival.
    by_expiry: BTreeSet<(i64, u64, String)>,
    next_seq: u64,
}

impl InMemoryReplayGuard {
    /// A guard remembering at most `capacity` ids (at least one) for
    /// `window_secs` seconds (negative counts as zero). Use the verifier's
    /// tolerance, e.g. [`crate::standard::DEFAULT_TOLERANCE_SECS`].
    pub fn new(capacity: usize, window_secs: i64) -> Self {
        Self {
            capacity: capacity.max(1),
            window_secs: window_secs.max(0),
            state: Mutex::new(State::default()),
        }
    }

    /// Number of ids remembered now.
    pub fn len(&self) -> usize {
        self.lock().seen.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is consistent after every statement that can panic
        // (none do), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for InMemoryReplayGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryReplayGuard")
            .field("capacity", &self.capacity)
            .field("window_secs", &self.window_secs)
            .field("remembered", &self.len())
            .finish()
    }
}

impl ReplayGuard for InMemoryReplayGuard {
    fn check(&self, id: &str, timestamp: i64, now: i64) -> Result<()> {
        let mut state = self.lock();
        // Forget ids whose window has passed.
        while let Some(first) = state.by_expiry.first() {
            if first.0 >= now {
                break;
            }
            if let Some((_, _, old)) = state.by_expiry.pop_first() {
                state.seen.remove(&old);
            }
        }
        if let Some((expiry, _)) = state.seen.get(id) {
            let shown: String = id.chars().take(100).collect();
            return Err(Error::duplicate(format!(
                "duplicate delivery of {shown:?}: it was accepted before and is remembered for {} s more; acknowledge it without processing it again",
                expiry.saturating_sub(now)
            )));
        }
        while state.seen.len() >= self.capacity {
            match state.by_expiry.pop_first() {
                Some((_, _, old)) => {
                    state.seen.remove(&old);
                }
                None => break,
            }
        }
        let expiry = timestamp.max(now).saturating_add(self.window_secs);
        let seq = state.next_seq;
        state.next_seq += 1;
        state.seen.insert(id.to_owned(), (expiry, seq));
        state.by_expiry.insert((expiry, seq, id.to_owned()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_once_then_refuses_until_the_window_passes() {
        let guard = InMemoryReplayGuard::new(10, 300);
        guard.check("msg_1", 1000, 1000).unwrap();
        let err = guard.check("msg_1", 1000, 1100).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("duplicate delivery of \"msg_1\""));
        assert!(!err.is_verification());
        // A retry with a new timestamp is still the same message.
        assert!(guard.check("msg_1", 1200, 1200).is_err());
        // After the window the id is forgotten (the timestamp check refuses
        // the old signed copy by then).
        guard.check("msg_1", 1301, 1301).unwrap();
        guard.check("msg_2", 1301, 1301).unwrap();
        assert_eq!(guard.len(), 2);
    }

    #[test]
    fn memory_is_bounded_and_the_oldest_go_first() {
        let guard = InMemoryReplayGuard::new(3, 300);
        for (i, id) in ["a", "b", "c", "d"].iter().enumerate() {
            guard.check(id, 1000 + i as i64, 1000 + i as i64).unwrap();
        }
        assert_eq!(guard.len(), 3);
        // "a" was evicted to make room for "d"; the others are remembered.
        guard.check("a", 1010, 1010).unwrap();
        assert!(guard.check("c", 1010, 1010).is_err());
        assert!(guard.check("d", 1010, 1010).is_err());
    }
}
