//! The per-product index counter (the Raft index of the real servers).
//!
//! Every write in a product takes the next index from its one clock, while holding the
//! product's state lock, so indexes are assigned in write order and a woken watcher that
//! takes the state lock always sees the write that woke it.

use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::watch;

/// A monotonically increasing index with change notification.
#[derive(Debug)]
pub struct IndexClock {
    tx: watch::Sender<u64>,
    /// Counts the times the index was moved backwards (snapshot restores), so blocked
    /// watchers can tell a restore from an ordinary wake-up.
    restores: AtomicU64,
}

impl IndexClock {
    /// A clock whose current index is `start`.
    pub fn new(start: u64) -> Self {
        let (tx, _rx) = watch::channel(start);
        IndexClock {
            tx,
            restores: AtomicU64::new(0),
        }
    }

    /// The last index handed out.
    pub fn current(&self) -> u64 {
        *self.tx.borrow()
    }

    /// Hands out the next index and wakes every watcher.
    pub fn next(&self) -> u64 {
        let mut out = 0;
        self.tx.send_modify(|v| {
            *v += 1;
            out = *v;
        });
        out
    }

    /// Wakes every watcher without handing out an index (e.g. a lock-delay ended).
    pub fn touch(&self) {
        self.tx.send_modify(|_| {});
    }

    /// Sets the index (snapshot restore, or loading persisted state) and wakes every
    /// watcher. Unlike [`IndexClock::next`] this may move backwards.
    pub fn set(&self, index: u64) {
        if index < self.current() {
            self.restores.fetch_add(1, Ordering::SeqCst);
        }
        self.tx.send_modify(|v| *v = index);
    }

    /// How many times the index has moved backwards since the clock was created.
    pub fn restores(&self) -> u64 {
        self.restores.load(Ordering::SeqCst)
    }

    /// A receiver that is notified on every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }
}

impl Default for IndexClock {
    fn default() -> Self {
        IndexClock::new(0)
    }
}
