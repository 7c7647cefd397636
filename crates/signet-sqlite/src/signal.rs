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

/// One [`Notify`] per queue somebody waited on, and the counts of every
/// signal ([`WorkSignals`]).
#[derive(Default)]
pub(crate) struct WorkSignal {
    queues: Mutex<HashMap<String, Arc<Notify>>>,
    counts: WorkSignals,
}

impl WorkSignal {
    /// Counts a signal for each of `queues` and wakes their waiters.
    pub(crate) fn notify<'a>(&self, queues: impl IntoIterator<Item = &'a str>) {
        let map = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        for q in queues {
            // Counted before the wake-up: see `wait`.
            self.counts.signal(q);
            if let Some(n) = map.get(q) {
                n.notify_waiters();
            }
        }
    }

    /// Where the signals of `queues` stand now.
    pub(crate) fn mark(&self, queues: &[String]) -> WorkMark {
        self.counts.mark(queues)
    }

    /// The queues anyone has waited on.
    pub(crate) fn waited_queues(&self) -> Vec<String> {
        let map = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        map.keys().cloned().collect()
    }

    /// Waits until one of `queues` is signalled or `timeout` passes;
    /// returns at once when one was signalled after `since`.
    pub(crate) async fn wait(&self, queues: &[String], since: WorkMark, timeout: Duration) {
        let notifies: Vec<Arc<Notify>> = {
            let mut map = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
            queues
                .iter()
                .map(|q| map.entry(q.clone()).or_default().clone())
                .collect()
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
}
