//! Graceful stop for servers: once a server is told to stop it refuses new requests
//! ("shutting down"), lets the sessions in flight finish for up to [`DRAIN_TIME`], then tells
//! the rest to abort and gives them [`ABORT_TIME`] to record that. This module holds the
//! bookkeeping only (a counter of sessions and two signals); each server decides what a
//! session is and how it aborts.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

/// How long a stopping server lets its sessions in flight finish before it aborts them.
/// Long enough for a contribution whose shares are on their way and for a typical query;
/// short enough for a service manager's stop timeout (systemd's default is 90 s).
pub const DRAIN_TIME: Duration = Duration::from_secs(10);

/// How long sessions told to abort get to record it (the coordinator's abort of a
/// contribution reaches each party within its 10 s control timeout) before the server exits
/// anyway; whatever is still undecided then is aborted at the next start.
pub const ABORT_TIME: Duration = Duration::from_secs(15);

/// The reason given to requests that arrive while a server stops.
pub const SHUTTING_DOWN: &str = "the server is shutting down; try again once it is back";

/// Sessions in flight and the stop signals of one server.
pub struct Drain {
    closing: AtomicBool,
    in_flight: AtomicUsize,
    changed: Notify,
    abort: watch::Sender<bool>,
}

/// What a stop did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// Sessions in flight when the stop began.
    pub in_flight: usize,
    /// Sessions told to abort after [`DRAIN_TIME`].
    pub aborted: usize,
    /// Sessions still running when the server gave up waiting.
    pub left: usize,
}

impl Drain {
    pub fn new() -> Arc<Drain> {
        Arc::new(Drain {
            closing: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            changed: Notify::new(),
            abort: watch::Sender::new(false),
        })
    }

    /// Whether the server stops: new requests are refused with [`SHUTTING_DOWN`].
    pub fn closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// Sessions in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Counts one session until the guard is dropped.
    pub fn session(self: &Arc<Self>) -> Session {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        Session {
            drain: self.clone(),
        }
    }

    /// Resolves once the sessions in flight are told to abort (never, if they are not).
    pub async fn aborted(&self) {
        let mut rx = self.abort.subscribe();
        let _ = rx.wait_for(|a| *a).await;
    }

    /// Waits until no session is in flight, or `bound` passed; true when none is left.
    async fn settle(&self, bound: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.changed.notified();
                if self.in_flight() == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(bound, wait).await.is_ok()
    }

    /// Stops: refuses from now on, waits up to `drain` for the sessions in flight, tells
    /// the rest to abort and waits up to `abort` for them.
    pub async fn stop(&self, drain: Duration, abort: Duration) -> Stopped {
        self.closing.store(true, Ordering::SeqCst);
        let in_flight = self.in_flight();
        if self.settle(drain).await {
            return Stopped {
                in_flight,
                aborted: 0,
                left: 0,
            };
        }
        let aborted = self.in_flight();
        self.abort.send_replace(true);
        self.settle(abort).await;
        Stopped {
            in_flight,
            aborted,
            left: self.in_flight(),
        }
    }
}

/// One session in flight; dropping it ends it.
pub struct Session {
    drain: Arc<Drain>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.drain.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.drain.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_waits_for_sessions_then_aborts_the_rest() {
        let d = Drain::new();
        // Nothing in flight: stops at once.
        let idle = Drain::new();
        let s = idle
            .stop(Duration::from_secs(30), Duration::from_secs(30))
            .await;
        assert_eq!(
            s,
            Stopped {
                in_flight: 0,
                aborted: 0,
                left: 0
            }
        );
        assert!(idle.closing());

        // One session that finishes by itself, one that only ends when told to abort.
        let quick = d.session();
        let stubborn = d.session();
        assert_eq!(d.in_flight(), 2);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(quick);
        });
        let watcher = d.clone();
        let told = tokio::spawn(async move {
            watcher.aborted().await;
            drop(stubborn);
            true
        });
        let s = d
            .stop(Duration::from_millis(300), Duration::from_secs(30))
            .await;
        assert!(d.closing());
        assert_eq!(
            s,
            Stopped {
                in_flight: 2,
                aborted: 1,
                left: 0
            }
        );
        assert!(told.await.unwrap());
        assert_eq!(d.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_session_that_ignores_the_abort_is_left_after_the_bound() {
        let d = Drain::new();
        let _deaf = d.session();
        let s = d
            .stop(Duration::from_millis(20), Duration::from_millis(20))
            .await;
        assert_eq!(
            s,
            Stopped {
                in_flight: 1,
                aborted: 1,
                left: 1
            }
        );
    }
}
