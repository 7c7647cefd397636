//! Wakes idle workers of this process when work arrives on their queues.
//!
//! Every write of this process that makes a task due (enqueue, a retry due
//! now, release, replay, rescue) signals its queues after it committed; a
//! worker waiting in [`Store::wait_for_work`](signet_store::Store::wait_for_work)
//! on one of them wakes and claims. Writes of other processes sharing the
//! database file reach this signal through the watcher (`watch.rs`). A
//! signal sent while no worker waits is dropped, which is fine: a worker
//! claims before it waits.

use std::collections::HashMap;
use std::future::poll_fn;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;

use tokio::sync::futures::Notified;
use tokio::sync::Notify;

/// One [`Notify`] per queue somebody waited on.
#[derive(Default)]
pub(crate) struct WorkSignal {
    queues: Mutex<HashMap<String, Arc<Notify>>>,
}

impl WorkSignal {
    /// Wakes every waiter on each of `queues`.
    pub(crate) fn notify<'a>(&self, queues: impl IntoIterator<Item = &'a str>) {
        let map = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        if map.is_empty() {
            return;
        }
        for q in queues {
            if let Some(n) = map.get(q) {
                n.notify_waiters();
            }
        }
    }

    /// The queues anyone has waited on.
    pub(crate) fn waited_queues(&self) -> Vec<String> {
        let map = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        map.keys().cloned().collect()
    }

    /// Waits until one of `queues` is signalled or `timeout` passes.
    pub(crate) async fn wait(&self, queues: &[String], timeout: Duration) {
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
                signal
                    .wait(&qs(&["a", "b"]), Duration::from_secs(3600))
                    .await
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
            tokio::spawn(async move { signal.wait(&qs(&["a"]), Duration::from_secs(10)).await })
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
}
