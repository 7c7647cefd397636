//! Wake-ups over `LISTEN/NOTIFY`.
//!
//! Statements that make work due (enqueue, a retry due now, release,
//! rescue, replay) call `pg_notify(channel, queue)` in the same statement,
//! so the notification is sent exactly when the change commits. One
//! dedicated connection per store (not from the pool) listens on the
//! channel and fans notifications out to the callers of
//! [`Listener::wait`]. It starts on the first wait, reconnects with backoff
//! after losing its connection, and wakes every waiter after each
//! (re)connect, since notifications sent while it was away are lost. The
//! caller's timeout stays the safety net.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use signet_store::{WorkMark, WorkSignals};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_postgres::AsyncMessage;
use tokio_postgres_rustls::MakeRustlsConnect;

/// How often the listener checks that its connection still answers.
const HEALTH_CHECK: Duration = Duration::from_secs(15);
/// First and longest wait between reconnection attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Wake-ups buffered per waiter before it counts as lagged (and wakes).
const FANOUT: usize = 1024;

/// What the listener tells waiters.
#[derive(Clone, Debug)]
enum Wake {
    /// Work may be due on this queue.
    Queue(Arc<str>),
    /// Anything may be due (the listener (re)connected).
    All,
}

/// The notification channel of a schema: `signet.<schema>`, kept within
/// PostgreSQL's 63-byte identifier limit.
pub(crate) fn channel_for(schema: &str) -> String {
    let full = format!("signet.{schema}");
    if full.len() <= 63 {
        return full;
    }
    // FNV-1a keeps long names distinct after truncation.
    let hash = schema.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let head: String = schema.chars().take(38).collect();
    format!("signet.{head}.{hash:016x}")
}

/// Listens on one channel and wakes waiters.
pub(crate) struct Listener {
    config: tokio_postgres::Config,
    connector: MakeRustlsConnect,
    channel: String,
    wakes: broadcast::Sender<Wake>,
    /// Every wake-up, counted before it is sent (see [`Listener::wait`]).
    counts: Arc<WorkSignals>,
    /// Whether the LISTEN is in effect right now.
    listening: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Listener {
    pub(crate) fn new(
        config: tokio_postgres::Config,
        connector: MakeRustlsConnect,
        channel: String,
    ) -> Self {
        let (wakes, _) = broadcast::channel(FANOUT);
        let (listening, _) = watch::channel(false);
        Self {
            config,
            connector,
            channel,
            wakes,
            counts: Arc::default(),
            listening,
            task: Mutex::new(None),
        }
    }

    /// Starts the listening task unless it runs already.
    fn ensure_started(&self) {
        let mut task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if task.is_none() {
            *task = Some(tokio::spawn(listen(
                self.config.clone(),
                self.connector.clone(),
                self.channel.clone(),
                Fanout {
                    wakes: self.wakes.clone(),
                    counts: Arc::clone(&self.counts),
                },
                self.listening.clone(),
            )));
        }
    }

    /// Where the wake-ups of `queues` stand now.
    pub(crate) fn mark(&self, queues: &[String]) -> WorkMark {
        self.counts.mark(queues)
    }

    /// Waits until a notification names one of `queues`, the listener
    /// (re)connects, or `timeout` passes; returns at once when one of those
    /// came after `since`.
    pub(crate) async fn wait(&self, queues: &[String], since: WorkMark, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = self.wakes.subscribe();
        self.ensure_started();
        // After subscribing: a wake-up counted later reaches `rx`, one
        // counted earlier shows here.
        if self.counts.signalled_since(queues, since) {
            return;
        }
        loop {
            tokio::select! {
                got = rx.recv() => match got {
                    Ok(Wake::Queue(q)) if queues.iter().any(|w| **w == *q) => return,
                    Ok(Wake::Queue(_)) => {}
                    Ok(Wake::All) | Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => {
                        tokio::time::sleep_until(deadline).await;
                        return;
                    }
                },
                () = tokio::time::sleep_until(deadline) => return,
            }
        }
    }

    /// Whether notifications are being received right now.
    pub(crate) fn is_listening(&self) -> bool {
        *self.listening.borrow()
    }

    /// Starts listening if needed and waits until the LISTEN is in effect
    /// (or `timeout` passes). Returns whether it is.
    pub(crate) async fn until_listening(&self, timeout: Duration) -> bool {
        let mut rx = self.listening.subscribe();
        self.ensure_started();
        tokio::time::timeout(timeout, rx.wait_for(|up| *up))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Stops listening and closes the connection.
    pub(crate) fn stop(&self) {
        if let Some(task) = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
        self.listening.send_replace(false);
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where the listener sends wake-ups: counted, then sent.
struct Fanout {
    wakes: broadcast::Sender<Wake>,
    counts: Arc<WorkSignals>,
}

impl Fanout {
    fn send(&self, wake: Wake) {
        match &wake {
            Wake::Queue(queue) => self.counts.signal(queue),
            Wake::All => self.counts.signal_all(),
        }
        // No receiver is fine: nobody waits, and the count keeps it.
        let _ = self.wakes.send(wake);
    }
}

/// Connects, listens and forwards notifications until the connection
/// breaks; then again, with backoff. Runs until aborted.
async fn listen(
    config: tokio_postgres::Config,
    connector: MakeRustlsConnect,
    channel: String,
    wakes: Fanout,
    listening: watch::Sender<bool>,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let ended = listen_once(&config, &connector, &channel, &wakes, &listening).await;
        listening.send_replace(false);
        match ended {
            Ok(()) => backoff = BACKOFF_MIN,
            Err(e) => {
                // A TLS failure says which URL setting to change.
                let error = crate::tls::explain_tls_failure(&e).unwrap_or_else(|| e.to_string());
                tracing::warn!(
                    error,
                    retry_in_ms = backoff.as_millis() as u64,
                    "PostgreSQL LISTEN connection failed; idle workers poll until it is back"
                );
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One connection's life. `Ok` when it ended after working for a while.
async fn listen_once(
    config: &tokio_postgres::Config,
    connector: &MakeRustlsConnect,
    channel: &str,
    wakes: &Fanout,
    listening: &watch::Sender<bool>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(connector.clone()).await?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Result<String, tokio_postgres::Error>>();
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            let forwarded = match message {
                Ok(AsyncMessage::Notification(n)) => tx.send(Ok(n.payload().to_owned())),
                Ok(_) => Ok(()),
                Err(e) => {
                    let _ = tx.send(Err(e));
                    break;
                }
            };
            if forwarded.is_err() {
                break;
            }
        }
    });
    // Abort the driver (and so close the connection) however this ends.
    struct AbortOnDrop(JoinHandle<()>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let _driver = AbortOnDrop(driver);
    let quoted = format!("\"{}\"", channel.replace('"', "\"\""));
    client.batch_execute(&format!("LISTEN {quoted}")).await?;
    tracing::debug!(channel, "listening for work notifications");
    // Anything may have been sent while nobody listened: wake the waiters
    // there are, then say the LISTEN is in effect (so one that waits for
    // that, then subscribes, is woken by new work only).
    wakes.send(Wake::All);
    listening.send_replace(true);
    let mut health = tokio::time::interval(HEALTH_CHECK);
    health.tick().await;
    loop {
        tokio::select! {
            got = rx.recv() => match got {
                Some(Ok(queue)) => wakes.send(Wake::Queue(queue.into())),
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            },
            _ = health.tick() => {
                match tokio::time::timeout(HEALTH_CHECK, client.simple_query("SELECT 1")).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(e),
                    Err(_) => {
                        tracing::warn!("PostgreSQL LISTEN connection stopped answering; reconnecting");
                        return Ok(());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_fit_in_an_identifier() {
        assert_eq!(channel_for("public"), "signet.public");
        let long = "a".repeat(63);
        let c = channel_for(&long);
        assert!(c.len() <= 63, "{c}");
        let mut other = long.clone();
        other.replace_range(62.., "b");
        assert_ne!(channel_for(&other), c);
    }
}
