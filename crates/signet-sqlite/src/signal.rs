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

/// Queues kept in the map once nobody waits on them: beyond this many, a
/// queue's entry goes with its last waiter, so queue names sent by remote
/// workers cannot grow the map (nor the watcher's checks of waited queues)
/// without bound. A queue dropped from the map loses nothing: its signals
/// are still counted ([`WorkSignals`]), and its next waiter adds it back.
const KEPT_IDLE_QUEUES: usize = 1024;

/// One [`Notify`] per queue waited on (the queues of at most
/// [`KEPT_IDLE_QUEUES`] past waits, and those of every current one), and
/// the counts of every signal ([`WorkSignals`]).
#[derive(Default)]
pub(crate) struct WorkSignal {
    queues: Mutex<HashMap<String, Waited>>,
    counts: WorkSignals,
}

/// A queue's wake-up and how many waits are on it now.
#[derive(Default)]
struct Waited {
    notify: Arc<Notify>,
    waiters: usize,
}

/// A wait's place in the map: given back when the wait ends or is dropped.
struct Registered<'a> {
    signal: &'a WorkSignal,
    queues: &'a [String],
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        let mut map = self.signal.lock();
        for q in self.queues {
            let Some(w) = map.get_mut(q) else { continue };
            w.waiters = w.waiters.saturating_sub(1);
            if w.waiters == 0 && map.len() > KEPT_IDLE_QUEUES {
                map.remove(q);
            }
        }
    }
}

impl WorkSignal {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Waited>> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a signal for each of `queues` and wakes their waiters.
    pub(crate) fn notify<'a>(&self, queues: impl IntoIterator<Item = &'a str>) {
        let map = self.lock();
        for q in queues {
            // Counted before the wake-up: see `wait`.
            self.counts.signal(q);
            if let Some(w) = map.get(q) {
                w.notify.notify_waiters();
            }
        }
    }

    /// Where the signals of `queues` stand now.
    pub(crate) fn mark(&self, queues: &[String]) -> WorkMark {
        self.counts.mark(queues)
    }

    /// The queues waited on now, and those of recent waits.
    pub(crate) fn waited_queues(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Waits until one of `queues` is signalled or `timeout` passes;
    /// returns at once when one was signalled after `since`.
    pub(crate) async fn wait(&self, queues: &[String], since: WorkMark, timeout: Duration) {
        let notifies: Vec<Arc<Notify>> = {
            let mut map = self.lock();
            queues
                .iter()
                .map(|q| {
                    let w = map.entry(q.clone()).or_default();
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
    async fn queue_names_from_past_waits_are_bounded_and_current_ones_kept() {
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
        for n in 0..3 * KEPT_IDLE_QUEUES {
            let queues = qs(&[&format!("q{n}")]);
            let mark = signal.mark(&queues);
            signal.wait(&queues, mark, Duration::from_millis(1)).await;
        }
        let waited = signal.waited_queues();
        assert!(
            waited.len() <= KEPT_IDLE_QUEUES + 1,
            "{} queues kept",
            waited.len()
        );
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
        // A wait dropped before it ends gives its place back too.
        let queues = qs(&["dropped"]);
        let mark = signal.mark(&queues);
        let wait = signal.wait(&queues, mark, Duration::from_secs(3600));
        assert!(tokio::time::timeout(Duration::from_millis(5), wait)
            .await
            .is_err());
        assert_eq!(
            signal.lock().get("dropped").map(|w| w.waiters),
            None,
            "the dropped wait still counts (the map is over its bound, so the idle entry goes)"
        );
    }
}
