//! Wakes idle workers of this process when work arrives on their queues.
//!
//! Every write of this process that makes a task due (enqueue, a retry due
//! now, release, replay, rescue) signals its queues after it committed; a
//! worker waiting in [`Store::wait_for_work`](signet_store::Store::wait_for_work)
//! on one of them wakes and claims. Writes of other processes sharing the
//! database file reach this signal through the watcher (`watch.rs`). A
//! signal sent while no worker waits wakes nobody, but it is counted
//! ([`WorkSignals`]): a worker that marked its queues before a claim that
//! found nothing returns from its wait at once.

use std::collections::HashMap;
use std::future::poll_fn;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;

use signet_store::{WorkMark, WorkSignals};
use tokio::sync::futures::Notified;
use tokio::sync::Notify;

/// Most queues kept in the map: past this many, the least recently used
/// queues nobody waits on go (down to three quarters of it), so queue
/// names sent by remote workers cannot grow the map (nor the watcher's
/// checks of the queues in it) without bound. A mark puts its queues in
/// the map, as a wait does: from the mark on, the watcher checks them, so
/// a write of another process during the claim that follows is counted.
const KEPT_QUEUES: usize = 1024;

/// One [`Notify`] per queue marked or waited on (the [`KEPT_QUEUES`] most
/// recent, and every queue waited on now), and the counts of every signal
/// ([`WorkSignals`]).
#[derive(Default)]
pub(crate) struct WorkSignal {
    queues: Mutex<Queues>,
    counts: WorkSignals,
}

/// The queues in the map, by name.
#[derive(Default)]
struct Queues {
    by_name: HashMap<String, Waited>,
    /// Counts every mark and wait: orders the queues by their last use.
    uses: u64,
}

/// A queue's wake-up, how many waits are on it now, and when it was last
/// marked or waited on.
#[derive(Default)]
struct Waited {
    notify: Arc<Notify>,
    waiters: usize,
    used: u64,
}

impl Queues {
    /// The entry of `q`, added when missing (making room first), as just
    /// used.
    fn touch(&mut self, q: &str) -> &mut Waited {
        self.uses += 1;
        if self.by_name.len() >= KEPT_QUEUES && !self.by_name.contains_key(q) {
            self.make_room();
        }
        let used = self.uses;
        let w = self.by_name.entry(q.to_owned()).or_default();
        w.used = used;
        w
    }

    /// Drops the least recently used queues nobody waits on, down to three
    /// quarters of [`KEPT_QUEUES`] (so this runs once per quarter of new
    /// queues, not on every one).
    fn make_room(&mut self) {
        let excess = self.by_name.len().saturating_sub(KEPT_QUEUES / 4 * 3);
        let mut idle: Vec<(u64, String)> = (self.by_name.iter())
            .filter(|(_, w)| w.waiters == 0)
            .map(|(q, w)| (w.used, q.clone()))
            .collect();
        idle.sort_unstable();
        for (_, q) in idle.into_iter().take(excess) {
            self.by_name.remove(&q);
        }
    }
}

/// A wait's place in the map: given back when the wait ends or is dropped.
struct Registered<'a> {
    signal: &'a WorkSignal,
    queues: &'a [String],
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        let mut queues = self.signal.lock();
        for q in self.queues {
            if let Some(w) = queues.by_name.get_mut(q) {
                w.waiters = w.waiters.saturating_sub(1);
            }
        }
    }
}

impl WorkSignal {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a signal for each of `queues` and wakes their waiters.
    pub(crate) fn notify<'a>(&self, queues: impl IntoIterator<Item = &'a str>) {
        let map = self.lock();
        for q in queues {
            // Counted before the wake-up: see `wait`.
            self.counts.signal(q);
            if let Some(w) = map.by_name.get(q) {
                w.notify.notify_waiters();
            }
        }
    }

    /// Where the signals of `queues` stand now. Puts them in the map first,
    /// so the watcher checks them from here on (a signal it counts before
    /// the mark is taken is in the mark, and the claim after it sees that
    /// work anyway).
    pub(crate) fn mark(&self, queues: &[String]) -> WorkMark {
        {
            let mut map = self.lock();
            for q in queues {
                map.touch(q);
            }
        }
        self.counts.mark(queues)
    }

    /// The queues waited on now, and those recently marked or waited on.
    pub(crate) fn waited_queues(&self) -> Vec<String> {
        self.lock().by_name.keys().cloned().collect()
    }

    /// Waits until one of `queues` is signalled or `timeout` passes;
    /// returns at once when one was signalled after `since`.
    pub(crate) async fn wait(&self, queues: &[String], since: WorkMark, timeout: Duration) {
        let notifies: Vec<Arc<Notify>> = {
            let mut map = self.lock();
            queues
                .iter()
                .map(|q| {
                    let w = map.touch(q);
                    w.waiters += 1;
                    Arc::clone(&w.notify)
                })
                .collect()
        };
        // Given back however this wait ends (woken, timed out, or dropped
        // with its future): the map keeps these queues while it is on them.
        let _registered = Registered {
            signal: self,
            queues,
        };
        let mut waits: Vec<Pin<Box<Notified<'_>>>> =
            notifies.iter().map(|n| Box::pin(n.notified())).collect();
        // Registered from here on: a signal sent before the first poll counts.
        for w in &mut waits {
            w.as_mut().enable();
        }
        // After registering: a signal counted later wakes this wait, one
        // counted earlier shows here.
        if self.counts.signalled_since(queues, since) {
            return;
        }
        let any = poll_fn(|cx| {
            if waits.iter_mut().any(|w| w.as_mut().poll(cx).is_ready()) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        });
        // Either way the caller claims next; which one ended the wait does
        // not matter.
        let _ = tokio::time::timeout(timeout, any).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qs(names: &[&str]) -> Vec<String> {
        names.iter().map(|q| (*q).to_owned()).collect()
    }

    #[tokio::test]
    async fn a_signal_on_a_waited_queue_wakes_the_waiter() {
        let signal = Arc::new(WorkSignal::default());
        let waiter = {
            let signal = signal.clone();
            tokio::spawn(async move {
                let queues = qs(&["a", "b"]);
                let mark = signal.mark(&queues);
                signal.wait(&queues, mark, Duration::from_secs(3600)).await
            })
        };
        // The waiter may not be registered yet: signal until it returns.
        let mut waiter = waiter;
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        for round in 0.. {
            assert!(round < 12_000, "the waiter never woke");
            tokio::select! {
                r = &mut waiter => { r.expect("waiter"); break; }
                _ = tick.tick() => signal.notify(["b"]),
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_signal_on_another_queue_does_not_wake_and_the_timeout_ends_the_wait() {
        let signal = Arc::new(WorkSignal::default());
        let waiter = {
            let signal = signal.clone();
            tokio::spawn(async move {
                let queues = qs(&["a"]);
                let mark = signal.mark(&queues);
                signal.wait(&queues, mark, Duration::from_secs(10)).await
            })
        };
        tokio::task::yield_now().await;
        signal.notify(["other"]);
        tokio::time::sleep(Duration::from_secs(9)).await;
        assert!(!waiter.is_finished(), "woken by another queue's signal");
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the timeout ends the wait")
            .expect("waiter");
    }

    #[tokio::test(start_paused = true)]
    async fn a_signal_between_the_mark_and_the_wait_ends_the_wait_at_once() {
        let signal = WorkSignal::default();
        let queues = qs(&["a"]);
        let mark = signal.mark(&queues);
        // Nobody waits yet (a claim runs and finds nothing).
        signal.notify(["a"]);
        tokio::time::timeout(
            Duration::from_secs(1),
            signal.wait(&queues, mark, Duration::from_secs(3600)),
        )
        .await
        .expect("the signal after the mark was lost");
        // From a fresh mark, the same wait sleeps until its timeout.
        let mark = signal.mark(&queues);
        let wait = tokio::time::timeout(
            Duration::from_secs(1),
            signal.wait(&queues, mark, Duration::from_secs(3600)),
        );
        assert!(wait.await.is_err(), "woken with nothing new");
    }

    #[tokio::test(start_paused = true)]
    async fn the_queues_kept_are_bounded_and_current_and_recent_ones_stay() {
        let signal = Arc::new(WorkSignal::default());
        // A wait that stays on its queue while many others come and go.
        let held = qs(&["held"]);
        let waiter = {
            let signal = signal.clone();
            let held = held.clone();
            tokio::spawn(async move {
                let mark = signal.mark(&held);
                signal.wait(&held, mark, Duration::from_secs(3600)).await
            })
        };
        tokio::task::yield_now().await;
        let real = qs(&["real"]);
        for n in 0..3 * KEPT_QUEUES {
            let queues = qs(&[&format!("q{n}")]);
            let mark = signal.mark(&queues);
            signal.wait(&queues, mark, Duration::from_millis(1)).await;
            // A queue in use among the junk stays, so the watcher checks it.
            let _ = signal.mark(&real);
            assert!(
                signal.waited_queues().contains(&"real".to_owned()),
                "a queue just marked is not watched"
            );
        }
        let waited = signal.waited_queues();
        assert!(waited.len() <= KEPT_QUEUES, "{} queues kept", waited.len());
        assert!(
            waited.contains(&"held".to_owned()),
            "a current wait's queue was dropped"
        );
        // And it still wakes its waiter.
        signal.notify(["held"]);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("the held wait was not woken")
            .expect("waiter");
        // A wait dropped before it ends gives its place back, and the same
        // queue twice in one wait counts twice and goes back twice.
        let queues = qs(&["dropped", "dropped"]);
        let mark = signal.mark(&queues);
        let wait = signal.wait(&queues, mark, Duration::from_secs(3600));
        assert!(tokio::time::timeout(Duration::from_millis(5), wait)
            .await
            .is_err());
        assert_eq!(
            signal.lock().by_name.get("dropped").map(|w| w.waiters),
            Some(0)
        );
    }
}
