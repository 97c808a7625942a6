//! Turns a list-with-blocking source into change events.
//!
//! Every answer of a [`ListSource`] is a complete listing, so the watcher diffs each
//! one against the keys it knows by per-key modify index (reference §8.1: a blocking
//! return is not a change notification). The index rule is
//! [`steward_hashi::index::next_index`]; what the watcher does with it (§2.5, §8.2,
//! §8.3):
//! - `Deleted` is emitted only when a *successful*, authoritative listing lacks a key; a
//!   failed read, or one served without a known leader, never deletes anything.
//! - An index that goes backwards (snapshot restore) discards that answer and resets the
//!   wait index to 0: the next call is an immediate full relist, diffed against the
//!   known set (no blanket restart, no spurious deletions). Modify indexes from before
//!   and after a restore are not comparable, so that relist reports every present key
//!   as `Applied` (a spare reconcile is harmless; a missed change is not).
//! - An answer with index 0 (fresh Nomad) is never reused as a wait index: the watcher
//!   waits on index 1 instead. A server that answers such a wait at once, again with
//!   index 0, is polled every [`WatcherConfig::empty_poll`] instead of spinning; a token
//!   bucket bounds the loop in every case.
//! - Errors are surfaced as [`Event::Error`] and retried with jittered, capped
//!   exponential backoff that resets after a healthy period; the stream never ends.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tokio::time::Instant;

use steward_hashi::index::{NextIndex, next_index};

use crate::backoff::{Backoff, BackoffConfig};
use crate::tokio_clock::TokenBucket;

/// One object of a listing with its per-object version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListingEntry<K, V> {
    /// Key of the object.
    pub key: K,
    /// The object's modify index (any per-object version that changes on every write).
    pub modify_index: u64,
    /// The object.
    pub item: V,
}

impl<K, V> ListingEntry<K, V> {
    /// An entry.
    pub fn new(key: K, modify_index: u64, item: V) -> Self {
        Self {
            key,
            modify_index,
            item,
        }
    }
}

/// A complete listing as one blocking read returned it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing<K, V> {
    /// The response index (`X-Consul-Index`, `X-Nomad-Index`, or a poll counter).
    pub index: u64,
    /// Whether the serving server knew the leader. A listing without one may be stale
    /// and is treated as a failed read.
    pub known_leader: bool,
    /// Every object.
    pub entries: Vec<ListingEntry<K, V>>,
}

/// A list endpoint that supports blocking: `list(min_index)` returns as soon as the
/// data's index exceeds `min_index` (or at the server's timeout), at once for 0.
pub trait ListSource: Send {
    /// Key of an object.
    type Key: Ord + Clone + fmt::Debug + Send + Sync + 'static;
    /// The object.
    type Item: Clone + Send + Sync + 'static;
    /// What a read fails with.
    type Error: std::error::Error + Send + Sync + 'static;

    /// One (possibly blocking) complete listing.
    fn list(
        &mut self,
        min_index: u64,
    ) -> impl Future<Output = Result<Listing<Self::Key, Self::Item>, Self::Error>> + Send;
}

/// What the watcher saw.
#[derive(Clone, Debug)]
pub enum Event<K, V> {
    /// The first complete listing: everything that exists.
    Restarted(Vec<(K, V)>),
    /// An object was added or modified (its modify index changed).
    Applied(K, V),
    /// An authoritative listing no longer contains the object.
    Deleted(K),
    /// A read failed; the watcher retries after [`WatchError::retry_in`].
    Error(WatchError),
}

/// A failed list, as surfaced in [`Event::Error`].
#[derive(Clone, Debug, thiserror::Error)]
#[error("list failed ({consecutive_failures} in a row); retrying in {retry_in:?}")]
pub struct WatchError {
    /// Consecutive failures, this one included.
    pub consecutive_failures: u32,
    /// Delay before the next attempt.
    pub retry_in: Duration,
    /// The cause.
    #[source]
    pub source: Arc<dyn std::error::Error + Send + Sync>,
}

/// A listing answered by a server that did not know the cluster leader.
#[derive(Clone, Copy, Debug, thiserror::Error)]
#[error("listing at index {index} was served without a known leader (possibly stale)")]
pub struct NoKnownLeader {
    /// Index of the rejected answer.
    pub index: u64,
}

/// Watcher settings.
#[derive(Clone, Debug)]
pub struct WatcherConfig {
    /// Backoff on failed reads.
    pub backoff: BackoffConfig,
    /// Treat listings served without a known leader as failed reads.
    pub require_known_leader: bool,
    /// Most list calls per second in steady state (loop guard; ≤ 0 = unlimited).
    pub max_list_rate: f64,
    /// Calls allowed back to back before `max_list_rate` applies.
    pub list_burst: u32,
    /// Pause before the next call when a wait on index 1 came back at once with index 0
    /// (nothing was ever written: the server did not block).
    pub empty_poll: Duration,
}

impl Default for WatcherConfig {
    /// Backoff 250 ms → 30 s with 50 % jitter, reset after 30 s of health; at most 5
    /// lists per second after a burst of 5; known leader required.
    fn default() -> Self {
        Self {
            backoff: BackoffConfig::new(Duration::from_millis(250), Duration::from_secs(30))
                .reset_after(Duration::from_secs(30)),
            require_known_leader: true,
            max_list_rate: 5.0,
            list_burst: 5,
            empty_poll: Duration::from_secs(1),
        }
    }
}

/// The watcher state machine. [`watcher`] wraps it as a stream.
pub struct Watcher<S: ListSource> {
    source: S,
    require_known_leader: bool,
    empty_poll: Duration,
    index: u64,
    known: Option<BTreeMap<S::Key, u64>>,
    /// The next listing follows an index reset: report every key as applied.
    resync: bool,
    backoff: Backoff,
    failures: u32,
    retry_at: Option<Instant>,
    limiter: Option<TokenBucket>,
    pending: VecDeque<Event<S::Key, S::Item>>,
}

impl<S: ListSource> fmt::Debug for Watcher<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watcher")
            .field("index", &self.index)
            .field("known", &self.known.as_ref().map(BTreeMap::len))
            .field("failures", &self.failures)
            .finish()
    }
}

impl<S: ListSource> Watcher<S> {
    /// A watcher that has not listed yet.
    pub fn new(source: S, config: WatcherConfig) -> Self {
        Self {
            source,
            require_known_leader: config.require_known_leader,
            empty_poll: config.empty_poll,
            index: 0,
            known: None,
            resync: false,
            backoff: Backoff::new(config.backoff),
            failures: 0,
            retry_at: None,
            limiter: TokenBucket::new(config.max_list_rate, config.list_burst),
            pending: VecDeque::new(),
        }
    }

    /// The index the next list call waits on.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The next event. Never ends; errors are events.
    pub async fn next(&mut self) -> Event<S::Key, S::Item> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return event;
            }
            if let Some(at) = self.retry_at.take() {
                tokio::time::sleep_until(at).await;
            }
            if let Some(limiter) = &self.limiter {
                limiter.acquire().await;
            }
            let result = self.source.list(self.index).await;
            let listing = match result {
                Ok(l) if self.require_known_leader && !l.known_leader => {
                    return self.fail(Arc::new(NoKnownLeader { index: l.index }));
                }
                Ok(l) => l,
                Err(e) => return self.fail(Arc::new(e)),
            };
            self.failures = 0;
            self.backoff.success();
            let sent = self.index;
            match next_index(sent, listing.index) {
                NextIndex::Relist => {
                    // Snapshot restore or tombstone reaping: the answer is not comparable
                    // with what we hold. Relist from 0 and diff that (§2.5).
                    tracing::debug!(
                        previous = sent,
                        returned = listing.index,
                        "watch index went backwards; relisting"
                    );
                    self.index = 0;
                    self.resync = true;
                    continue;
                }
                NextIndex::Block(index) => {
                    if listing.index == 0 && sent > 0 {
                        // Asked to block on 1, answered 0 at once: nothing to wait on yet.
                        self.retry_at = Some(Instant::now() + self.empty_poll);
                    }
                    // Never 0: a wait on 0 would return at once, forever (§8.3).
                    self.index = index;
                }
            }
            self.diff(listing.entries);
        }
    }

    fn fail(&mut self, source: Arc<dyn std::error::Error + Send + Sync>) -> Event<S::Key, S::Item> {
        self.failures = self.failures.saturating_add(1);
        let retry_in = self.backoff.failure();
        self.retry_at = Some(Instant::now() + retry_in);
        tracing::debug!(error = %source, ?retry_in, "watch list failed");
        Event::Error(WatchError {
            consecutive_failures: self.failures,
            retry_in,
            source,
        })
    }

    fn diff(&mut self, entries: Vec<ListingEntry<S::Key, S::Item>>) {
        let mut seen: BTreeMap<S::Key, u64> = BTreeMap::new();
        match self.known.take() {
            None => {
                self.resync = false;
                let mut all = Vec::with_capacity(entries.len());
                for e in entries {
                    seen.insert(e.key.clone(), e.modify_index);
                    all.push((e.key, e.item));
                }
                self.pending.push_back(Event::Restarted(all));
            }
            Some(known) => {
                let resync = std::mem::take(&mut self.resync);
                for e in entries {
                    seen.insert(e.key.clone(), e.modify_index);
                    if resync || known.get(&e.key) != Some(&e.modify_index) {
                        self.pending.push_back(Event::Applied(e.key, e.item));
                    }
                }
                for key in known.into_keys() {
                    if !seen.contains_key(&key) {
                        self.pending.push_back(Event::Deleted(key));
                    }
                }
            }
        }
        self.known = Some(seen);
    }

    /// The watcher as a never-ending stream.
    pub fn into_stream(self) -> impl Stream<Item = Event<S::Key, S::Item>> + Send
    where
        S: 'static,
    {
        futures::stream::unfold(self, |mut w| async move {
            let event = w.next().await;
            Some((event, w))
        })
    }
}

/// Watches `source`: the first complete listing as [`Event::Restarted`], then changes.
pub fn watcher<S: ListSource + 'static>(
    source: S,
    config: WatcherConfig,
) -> impl Stream<Item = Event<S::Key, S::Item>> + Send {
    Watcher::new(source, config).into_stream()
}

#[cfg(test)]
mod tests;
