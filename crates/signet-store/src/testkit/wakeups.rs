//! `wait_for_work`: it ends by its timeout, and (with [`assert_wakes`], for
//! the backends' own tests) new work ends it early.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use super::{new_task, put};
use crate::{Store, WorkMark, MESSAGE_QUEUE};

/// How long the suite waits for a wait to end before it fails: a bound that
/// catches a wait that never ends, not a measure of speed.
const WAKE_BOUND: Duration = Duration::from_secs(60);

/// Far longer than [`WAKE_BOUND`]: a wait with this timeout that ends
/// within the bound was woken.
const FOREVER: Duration = Duration::from_secs(3600);

/// Asserts that `act` wakes a [`Store::wait_for_work`] on `queues` that
/// started before it. The wait is polled once first, which registers it
/// and must find it still waiting; then `act` runs, and the wait must end
/// within a minute (a bound, not a speed). `what` names the action in a
/// failure.
pub async fn assert_wakes<F: Future<Output = ()>>(
    store: &dyn Store,
    queues: &[&str],
    what: &str,
    act: F,
) {
    let (queues, mark) = marked(store, queues);
    let mut wait = pin!(store.wait_for_work(&queues, mark, FOREVER));
    let first = std::future::poll_fn(|cx| Poll::Ready(wait.as_mut().poll(cx))).await;
    assert!(
        first.is_pending(),
        "{what}: wait_for_work on {queues:?} returned before any work arrived"
    );
    act.await;
    tokio::time::timeout(WAKE_BOUND, wait)
        .await
        .unwrap_or_else(|_| panic!("{what}: the waiter on {queues:?} was not woken"));
}

/// Asserts that `act`, run after a [`Store::work_mark`] of `queues` but
/// before the wait from that mark begins (where a consumer claims and
/// finds nothing), still ends the wait: the signal is not lost in
/// between. The wait must end within a minute (a bound, not a speed).
pub async fn assert_wakes_from_mark<F: Future<Output = ()>>(
    store: &dyn Store,
    queues: &[&str],
    what: &str,
    act: F,
) {
    let (queues, mark) = marked(store, queues);
    act.await;
    tokio::time::timeout(WAKE_BOUND, store.wait_for_work(&queues, mark, FOREVER))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{what} between the mark and the wait on {queues:?} was lost: the waiter slept on"
            )
        });
}

/// `queues` as the store takes them, and their mark now.
fn marked(store: &dyn Store, queues: &[&str]) -> (Vec<String>, WorkMark) {
    let queues: Vec<String> = queues.iter().map(|q| (*q).to_owned()).collect();
    let mark = store.work_mark(&queues);
    (queues, mark)
}

/// `wait_for_work` returns by its timeout.
pub(super) async fn wait_for_work(store: Arc<dyn Store>) {
    let s = &*store;
    let bound = WAKE_BOUND;
    let short = Duration::from_millis(20);
    let queues = vec!["default".to_owned(), MESSAGE_QUEUE.to_owned()];
    let mark = s.work_mark(&queues);
    tokio::time::timeout(bound, s.wait_for_work(&queues, mark, short))
        .await
        .expect("wait_for_work on idle queues did not return after its 20 ms timeout");
    put(s, new_task("default")).await;
    let mark = s.work_mark(&queues);
    tokio::time::timeout(bound, s.wait_for_work(&queues, mark, short))
        .await
        .expect("wait_for_work with work waiting did not return");
    tokio::time::timeout(bound, s.wait_for_work(&[], s.work_mark(&[]), short))
        .await
        .expect("wait_for_work on no queue did not return after its timeout");
    tokio::time::timeout(bound, s.wait_for_work(&queues, mark, Duration::ZERO))
        .await
        .expect("wait_for_work with a zero timeout did not return");
}
