//! A shutdown signal shared by the worker and the background services.
//!
//! [`Shutdown`] is the trigger; [`ShutdownSignal`] is a cheap, clonable
//! receiver a service awaits. Triggering is idempotent.

use std::sync::Arc;

use tokio::sync::watch;

/// The trigger side. Clonable; triggering any clone triggers all signals.
#[derive(Clone, Debug)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A fresh, untriggered shutdown.
    pub fn new() -> Self {
        let (tx, _rx) = watch::channel(false);
        Self { tx: Arc::new(tx) }
    }

    /// Asks everything holding a signal to stop.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether [`Shutdown::trigger`] was called.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// A receiver to hand to a service.
    pub fn signal(&self) -> ShutdownSignal {
        ShutdownSignal {
            rx: Some(self.tx.subscribe()),
        }
    }
}

/// The receiving side: await [`ShutdownSignal::triggered`].
#[derive(Clone, Debug)]
pub struct ShutdownSignal {
    /// `None` for a signal that never fires.
    rx: Option<watch::Receiver<bool>>,
}

impl ShutdownSignal {
    /// A signal that never fires (for services run until dropped).
    pub fn never() -> Self {
        Self { rx: None }
    }

    /// Whether shutdown was triggered.
    pub fn is_triggered(&self) -> bool {
        self.rx.as_ref().is_some_and(|rx| *rx.borrow())
    }

    /// Completes once shutdown is triggered (at once if it already was).
    /// A dropped [`Shutdown`] counts as triggered.
    pub async fn triggered(&mut self) {
        match &mut self.rx {
            // `wait_for` errs only when every sender is gone: a trigger too.
            Some(rx) => {
                let _ = rx.wait_for(|stop| *stop).await;
            }
            None => std::future::pending().await,
        }
    }
}

/// Completes on SIGINT or SIGTERM (Ctrl-C elsewhere) with the signal's
/// name. The handlers are installed when this is called, not when the
/// future is first polled, so a signal that arrives right after start
/// still stops the process gracefully: call it first thing, inside the
/// Tokio runtime, and await it later. If the handlers cannot be installed
/// it warns and waits for Ctrl-C alone.
pub fn os_signal() -> impl std::future::Future<Output = &'static str> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let handlers = match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(int), Ok(term)) => Some((int, term)),
            _ => None,
        };
        async move {
            match handlers {
                Some((mut int, mut term)) => {
                    tokio::select! {
                        _ = int.recv() => "SIGINT",
                        _ = term.recv() => "SIGTERM",
                    }
                }
                None => {
                    tracing::warn!(
                        "could not install signal handlers; only Ctrl-C stops this process"
                    );
                    if tokio::signal::ctrl_c().await.is_err() {
                        // No way to hear a signal at all: never stop for one.
                        std::future::pending::<()>().await;
                    }
                    "ctrl-c"
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
            "ctrl-c"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn signals_fire_once_triggered() {
        let s = Shutdown::new();
        let mut a = s.signal();
        let b = s.signal();
        assert!(!a.is_triggered());
        s.clone().trigger();
        tokio::time::timeout(Duration::from_secs(5), a.triggered())
            .await
            .unwrap();
        assert!(b.is_triggered() && s.is_triggered());
        // Awaiting again returns at once.
        tokio::time::timeout(Duration::from_secs(5), a.triggered())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn never_does_not_fire() {
        let mut n = ShutdownSignal::never();
        let waited = tokio::time::timeout(Duration::from_millis(20), n.triggered()).await;
        assert!(waited.is_err());
    }
}
