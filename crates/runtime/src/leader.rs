//! Leader election on a Consul session and a lock key, modelled on the official `Lock`
//! (reference §3.4), with fencing of KV writes (§2.7).
//!
//! One elector per process:
//! 1. creates a TTL-only session (empty `NodeChecks`, `LockDelay`), renewed every TTL/2
//!    (adopting the TTL the server returns);
//! 2. waits on the lock key with blocking `?consistent` reads until nobody holds it, then
//!    `acquire`s it; `false` (another holder or the lock-delay after an invalidation)
//!    means wait [`LeaderConfig::retry_pause`] and look again;
//! 3. as leader, publishes [`Leadership::Leader`] with a fresh [`CancellationToken`] and
//!    watches the key with blocking `?consistent` reads;
//! 4. loses leadership when the key shows another or no session, when a renew answers
//!    404, or when no renew has succeeded for a whole TTL (measured from when the last
//!    successful renew was *sent*, so we always step down before the server can hand
//!    the lock to someone else). On loss the token is cancelled first — in-flight
//!    reconciles stop — and only then is `Follower` published and the old session
//!    destroyed; the elector then contends again with a new session;
//! 5. on clean shutdown releases the key and destroys the session.
//!
//! Writes that must only happen while leader go through [`fenced_txn`]: the transaction
//! starts with `check-session(leader_key, session)`, so a deposed leader's write is
//! rolled back by Consul (409) instead of racing the new leader.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use steward_hashi::consul::{KvPair, TxnError, TxnOp, TxnOutcome};
use steward_hashi::index::next_index;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::backoff::{Backoff, BackoffConfig};

mod consul;
pub use consul::ConsulLock;

/// The flags value the official `Lock` writes on its key (`0x2ddccbc058a50c18`).
pub const LOCK_FLAG_VALUE: u64 = 0x2ddc_cbc0_58a5_0c18;

/// What a [`LockBackend`] call fails with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The session is gone (renew answered 404): leadership is lost.
    #[error("session {id} not found")]
    SessionNotFound {
        /// Session ID.
        id: String,
    },
    /// The lock key exists with flags that are not a lock's: someone else uses it.
    #[error("lock key {key} holds flags {flags:#x}, not a lock's")]
    KeyConflict {
        /// Lock key.
        key: String,
        /// Flags found.
        flags: u64,
    },
    /// The backend call failed (transport, status, decoding).
    #[error("lock backend {op} failed")]
    Backend {
        /// The operation (`renew`, `acquire`...).
        op: &'static str,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// `Result` of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The lock key as one read saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockState {
    /// The read's index (to block on next).
    pub index: u64,
    /// Whether the key exists.
    pub exists: bool,
    /// Session holding the lock.
    pub holder: Option<String>,
    /// Successful acquisitions so far (the fencing counter).
    pub lock_index: u64,
    /// The key's flags.
    pub flags: u64,
}

/// Session parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionSpec {
    /// Session name.
    pub name: String,
    /// TTL.
    pub ttl: Duration,
    /// Lock delay after invalidation.
    pub lock_delay: Duration,
}

/// The calls leader election needs; [`ConsulLock`] implements them on Consul.
pub trait LockBackend: Send + Sync + 'static {
    /// Creates a TTL-only session (empty `NodeChecks`) and returns its ID.
    fn create_session(&self, spec: &SessionSpec) -> impl Future<Output = Result<String>> + Send;
    /// Renews a session; the TTL the server answers with, if it says.
    /// [`Error::SessionNotFound`] when the session is gone.
    fn renew_session(&self, id: &str) -> impl Future<Output = Result<Option<Duration>>> + Send;
    /// Destroys a session (success when already gone).
    fn destroy_session(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    /// `acquire` with the lock flags: `false` when held by another session or during a
    /// lock-delay.
    fn acquire(
        &self,
        key: &str,
        session: &str,
        value: &[u8],
    ) -> impl Future<Output = Result<bool>> + Send;
    /// `release` (only the holder can).
    fn release(&self, key: &str, session: &str) -> impl Future<Output = Result<bool>> + Send;
    /// A `?consistent` read of the lock key, blocking from `index` for at most `wait`.
    fn read_lock(
        &self,
        key: &str,
        index: u64,
        wait: Duration,
    ) -> impl Future<Output = Result<LockState>> + Send;
    /// A KV transaction.
    fn txn(&self, ops: Vec<TxnOp>) -> impl Future<Output = Result<TxnOutcome>> + Send;
}

/// Election settings.
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    /// The lock key (`<prefix>/leader`).
    pub key: String,
    /// Session name.
    pub session_name: String,
    /// Value written on the lock key (who holds it).
    pub value: Vec<u8>,
    /// Session TTL (Consul accepts 10 s to 24 h).
    pub ttl: Duration,
    /// Lock delay after an invalidation (Consul caps it at 60 s).
    pub lock_delay: Duration,
    /// Pause after a failed acquire (the official `Lock` waits 5 s).
    pub retry_pause: Duration,
    /// Wait of the blocking reads of the lock key.
    pub monitor_wait: Duration,
    /// Backoff of failed backend calls.
    pub backoff: BackoffConfig,
}

impl LeaderConfig {
    /// Defaults for the lock key `key`: TTL 15 s, lock-delay 15 s, retry pause 5 s,
    /// blocking wait 15 s, backoff 250 ms → 10 s.
    pub fn new(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            session_name: "steward-leader".into(),
            value: Vec::new(),
            ttl: Duration::from_secs(15),
            lock_delay: Duration::from_secs(15),
            retry_pause: Duration::from_secs(5),
            monitor_wait: Duration::from_secs(15),
            backoff: BackoffConfig::new(Duration::from_millis(250), Duration::from_secs(10)),
        }
    }
}

/// What one contender currently is.
#[derive(Clone, Debug, Default)]
pub enum Leadership {
    /// Not the leader (or not yet).
    #[default]
    Follower,
    /// The leader.
    Leader {
        /// Our session.
        session_id: String,
        /// The lock key's `LockIndex` when we acquired it (fencing counter).
        lock_index: u64,
        /// Cancelled the moment leadership is lost (before anything else happens).
        token: CancellationToken,
        /// The lock key.
        key: String,
    },
}

impl Leadership {
    /// True for [`Leadership::Leader`].
    pub fn is_leader(&self) -> bool {
        matches!(self, Leadership::Leader { .. })
    }

    /// The leadership token, when leader.
    pub fn token(&self) -> Option<&CancellationToken> {
        match self {
            Leadership::Leader { token, .. } => Some(token),
            Leadership::Follower => None,
        }
    }

    /// The fencing value, when leader.
    pub fn fence(&self) -> Option<Fence> {
        match self {
            Leadership::Leader {
                session_id,
                lock_index,
                key,
                ..
            } => Some(Fence {
                key: key.clone(),
                session: session_id.clone(),
                lock_index: *lock_index,
            }),
            Leadership::Follower => None,
        }
    }
}

/// The fencing value of one leadership term: lock key, session and `LockIndex`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Fence {
    /// The lock key.
    pub key: String,
    /// The session holding it.
    pub session: String,
    /// `LockIndex` at acquisition; grows with every term (record it with fenced data).
    pub lock_index: u64,
}

impl Fence {
    /// `check-session(key, session)`: fails the transaction unless we still hold the lock.
    pub fn guard(&self) -> TxnOp {
        TxnOp::CheckSession {
            key: self.key.clone(),
            session: self.session.clone(),
        }
    }

    /// `[guard, ops...]`.
    pub fn fenced_ops(&self, ops: impl IntoIterator<Item = TxnOp>) -> Vec<TxnOp> {
        std::iter::once(self.guard()).chain(ops).collect()
    }
}

/// The result of a [`fenced_txn`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FencedWrite {
    /// Applied; one entry per non-delete op (the guard included).
    Committed(Vec<KvPair>),
    /// Rolled back because we no longer hold the lock: nothing was written.
    Fenced,
    /// Rolled back by another operation (a failed `cas`...): nothing was written.
    RolledBack(Vec<TxnError>),
}

/// Runs `ops` in one transaction guarded by `check-session` on the lock key.
///
/// # Errors
/// Backend failures (the write may or may not have been applied only if the backend
/// says the request was sent; a guarded transaction is safe to retry).
pub async fn fenced_txn<B: LockBackend>(
    backend: &B,
    fence: &Fence,
    ops: impl IntoIterator<Item = TxnOp>,
) -> Result<FencedWrite> {
    match backend.txn(fence.fenced_ops(ops)).await? {
        TxnOutcome::Committed(results) => Ok(FencedWrite::Committed(results)),
        TxnOutcome::RolledBack(errors) if errors.iter().any(|e| e.op_index == 0) => {
            Ok(FencedWrite::Fenced)
        }
        TxnOutcome::RolledBack(errors) => Ok(FencedWrite::RolledBack(errors)),
    }
}

/// Health of our session, as the renewer sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SessionHealth {
    /// The session is gone (renew 404) or expired from our point of view.
    lost: bool,
    /// We must consider the session expired from this instant on.
    valid_until: Instant,
}

/// Why a leadership term or a contention ended.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ended {
    Shutdown,
    SessionLost,
    TtlExpired,
    HolderChanged(Option<String>),
}

/// Elects one leader among the processes sharing a lock key.
pub struct LeaderElector<B> {
    backend: Arc<B>,
    config: LeaderConfig,
    tx: watch::Sender<Leadership>,
}

impl<B> fmt::Debug for LeaderElector<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaderElector")
            .field("key", &self.config.key)
            .field("leader", &self.tx.borrow().is_leader())
            .finish()
    }
}

impl<B: LockBackend> LeaderElector<B> {
    /// An elector that has not started contending.
    pub fn new(backend: Arc<B>, config: LeaderConfig) -> Self {
        let (tx, _) = watch::channel(Leadership::Follower);
        Self {
            backend,
            config,
            tx,
        }
    }

    /// Follows the leadership state.
    pub fn subscribe(&self) -> watch::Receiver<Leadership> {
        self.tx.subscribe()
    }

    /// The current fencing value, when leader.
    pub fn fence(&self) -> Option<Fence> {
        self.tx.borrow().fence()
    }

    /// Contends until `shutdown` is cancelled, then releases the lock and destroys the
    /// session. Never fails: backend errors are retried with backoff.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(self.config.backoff);
        let spec = SessionSpec {
            name: self.config.session_name.clone(),
            ttl: self.config.ttl,
            lock_delay: self.config.lock_delay,
        };
        while !shutdown.is_cancelled() {
            let sent = Instant::now();
            let created = tokio::select! {
                () = shutdown.cancelled() => break,
                r = self.backend.create_session(&spec) => r,
            };
            let session = match created {
                Ok(id) => id,
                Err(error) => {
                    let delay = backoff.failure();
                    tracing::warn!(%error, ?delay, "cannot create the leader session");
                    sleep_or_cancel(delay, &shutdown).await;
                    continue;
                }
            };
            backoff.success();
            tracing::debug!(session = %session, "leader session created");
            let keeper_stop = CancellationToken::new();
            let (health_tx, mut health) = watch::channel(SessionHealth {
                lost: false,
                valid_until: sent + self.config.ttl,
            });
            tokio::spawn(keep_session(
                self.backend.clone(),
                session.clone(),
                self.config.ttl,
                sent,
                health_tx,
                keeper_stop.clone(),
            ));
            let _stop_keeper = keeper_stop.drop_guard();

            let ended = match self.contend(&session, &mut health, &shutdown).await {
                Ok((lock_index, index)) => {
                    let token = CancellationToken::new();
                    // If this future is dropped mid-term, the term ends with it.
                    let _term = token.clone().drop_guard();
                    self.tx.send_replace(Leadership::Leader {
                        session_id: session.clone(),
                        lock_index,
                        token: token.clone(),
                        key: self.config.key.clone(),
                    });
                    tracing::info!(session = %session, lock_index, "became leader");
                    let ended = self.lead(&session, index, &mut health, &shutdown).await;
                    // Stop in-flight work before anything else can happen.
                    token.cancel();
                    self.tx.send_replace(Leadership::Follower);
                    match &ended {
                        Ended::Shutdown => tracing::info!("leadership released on shutdown"),
                        other => tracing::warn!(reason = ?other, "leadership lost"),
                    }
                    if ended == Ended::Shutdown
                        && let Err(error) = self.backend.release(&self.config.key, &session).await
                    {
                        tracing::warn!(%error, "cannot release the leader lock");
                    }
                    ended
                }
                Err(ended) => ended,
            };
            if let Err(error) = self.backend.destroy_session(&session).await {
                tracing::debug!(%error, "cannot destroy the old leader session");
            }
            if ended == Ended::Shutdown {
                break;
            }
        }
        self.tx.send_replace(Leadership::Follower);
    }

    /// Waits for the lock and takes it: `(lock_index, read index)` on success.
    async fn contend(
        &self,
        session: &str,
        health: &mut watch::Receiver<SessionHealth>,
        shutdown: &CancellationToken,
    ) -> Result<(u64, u64), Ended> {
        let key = self.config.key.as_str();
        let mut backoff = Backoff::new(self.config.backoff);
        let mut warner = Warner::default();
        let mut index = 0;
        let mut pause: Option<Duration> = None;
        loop {
            let h = *health.borrow_and_update();
            if h.lost {
                return Err(Ended::SessionLost);
            }
            let attempt = async {
                if let Some(p) = pause.take() {
                    tokio::time::sleep(p).await;
                }
                let state = self
                    .backend
                    .read_lock(key, index, self.config.monitor_wait)
                    .await?;
                // Flags 0: a plain PUT by a person; anything else is another tool's key.
                if state.exists
                    && state.holder.is_none()
                    && state.flags != LOCK_FLAG_VALUE
                    && state.flags != 0
                {
                    return Err(Error::KeyConflict {
                        key: key.to_owned(),
                        flags: state.flags,
                    });
                }
                if state.holder.is_some() {
                    // Ours (an earlier acquire went through) or someone else's.
                    return Ok(Some(state));
                }
                if self
                    .backend
                    .acquire(key, session, &self.config.value)
                    .await?
                {
                    let now = self
                        .backend
                        .read_lock(key, 0, self.config.monitor_wait)
                        .await?;
                    return Ok(Some(now));
                }
                Ok(None)
            };
            let outcome = tokio::select! {
                () = shutdown.cancelled() => return Err(Ended::Shutdown),
                r = health.changed() => {
                    if r.is_err() {
                        return Err(Ended::SessionLost);
                    }
                    continue;
                }
                () = tokio::time::sleep_until(h.valid_until) => return Err(Ended::TtlExpired),
                outcome = attempt => outcome,
            };
            match outcome {
                Ok(Some(state)) if state.holder.as_deref() == Some(session) => {
                    // The monitor starts from this answer as from a first read: it may
                    // come from the non-blocking read after the acquire, so it is never
                    // backwards, only raised to 1 when 0.
                    return Ok((state.lock_index, next_index(0, state.index).wait_index()));
                }
                Ok(Some(state)) => {
                    // Held by someone else: block until the key changes (or, if the
                    // index went backwards, look again at once without blocking).
                    backoff.success();
                    warner.succeeded();
                    index = next_index(index, state.index).wait_index();
                }
                Ok(None) => {
                    // Lock-delay or lost race: look again after a pause, without blocking.
                    backoff.success();
                    warner.succeeded();
                    index = 0;
                    pause = Some(self.config.retry_pause);
                }
                Err(Error::SessionNotFound { .. }) => return Err(Ended::SessionLost),
                Err(error @ Error::KeyConflict { .. }) => {
                    let delay = backoff.failure();
                    tracing::warn!(%error, ?delay, "the leader key is not a lock; not acquiring");
                    index = 0;
                    pause = Some(delay);
                }
                Err(error) => {
                    let delay = backoff.failure();
                    if let Some(failures) = warner.failed() {
                        tracing::warn!(%error, ?delay, failures, "cannot contend for the leader lock (reading or acquiring it failed)");
                    } else {
                        tracing::debug!(%error, ?delay, "leader contention step failed");
                    }
                    index = 0;
                    pause = Some(delay);
                }
            }
        }
    }

    /// Watches the lock while leader; returns why leadership ended.
    async fn lead(
        &self,
        session: &str,
        mut index: u64,
        health: &mut watch::Receiver<SessionHealth>,
        shutdown: &CancellationToken,
    ) -> Ended {
        let key = self.config.key.as_str();
        let mut backoff = Backoff::new(self.config.backoff);
        let mut warner = Warner::default();
        let mut pause: Option<Duration> = None;
        loop {
            let h = *health.borrow_and_update();
            if h.lost {
                return Ended::SessionLost;
            }
            let read = async {
                if let Some(p) = pause.take() {
                    tokio::time::sleep(p).await;
                }
                self.backend
                    .read_lock(key, index, self.config.monitor_wait)
                    .await
            };
            let result = tokio::select! {
                biased;
                () = shutdown.cancelled() => return Ended::Shutdown,
                r = health.changed() => {
                    if r.is_err() {
                        return Ended::SessionLost;
                    }
                    continue;
                }
                () = tokio::time::sleep_until(h.valid_until) => return Ended::TtlExpired,
                r = read => r,
            };
            match result {
                Ok(state) if state.holder.as_deref() != Some(session) => {
                    return Ended::HolderChanged(state.holder);
                }
                Ok(state) => {
                    // Still ours. A backwards index relists with one non-blocking read;
                    // an index of 0 is blocked on as 1 so the monitor cannot alternate
                    // between waits on 0 and 1 without ever blocking.
                    backoff.success();
                    warner.succeeded();
                    index = next_index(index, state.index).wait_index();
                }
                Err(error) => {
                    // The renew deadline decides; a flaky read alone does not depose us.
                    let delay = backoff.failure();
                    if let Some(failures) = warner.failed() {
                        tracing::warn!(%error, ?delay, failures, "cannot watch the leader lock (still leading while the session is renewed)");
                    } else {
                        tracing::debug!(%error, ?delay, "leader lock watch failed");
                    }
                    index = 0;
                    pause = Some(delay);
                }
            }
        }
    }
}

/// How often a failure that keeps repeating is logged at WARN again.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Rate-limits the WARN lines of a failure that repeats: the first at once, then at
/// most every [`WARN_EVERY`] while it goes on; a success starts over.
#[derive(Debug, Default)]
struct Warner {
    last: Option<Instant>,
    repeats: u64,
}

impl Warner {
    /// Whether this failure is to be logged at WARN (`repeats` since the last line).
    fn failed(&mut self) -> Option<u64> {
        let now = Instant::now();
        self.repeats += 1;
        let due = self
            .last
            .is_none_or(|at| now.duration_since(at) >= WARN_EVERY);
        if due {
            self.last = Some(now);
            let repeats = self.repeats;
            self.repeats = 0;
            Some(repeats)
        } else {
            None
        }
    }

    fn succeeded(&mut self) {
        self.last = None;
        self.repeats = 0;
    }
}

async fn sleep_or_cancel(delay: Duration, cancel: &CancellationToken) {
    tokio::select! {
        () = cancel.cancelled() => {}
        () = tokio::time::sleep(delay) => {}
    }
}

/// Renews the session every TTL/2 until stopped, the session is gone, or a whole TTL
/// passed since the last successful renew was sent.
async fn keep_session<B: LockBackend>(
    backend: Arc<B>,
    session: String,
    ttl: Duration,
    created_sent: Instant,
    health: watch::Sender<SessionHealth>,
    stop: CancellationToken,
) {
    let mut ttl = ttl;
    let mut last_ok = created_sent;
    let retry = BackoffConfig::new(
        (ttl / 20).max(Duration::from_millis(50)),
        (ttl / 5).max(Duration::from_millis(100)),
    );
    let mut backoff = Backoff::new(retry);
    let mut warner = Warner::default();
    let mut next = last_ok + ttl / 2;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep_until(next) => {}
        }
        let valid_until = last_ok + ttl;
        let sent = Instant::now();
        if sent >= valid_until {
            health.send_replace(SessionHealth {
                lost: true,
                valid_until,
            });
            return;
        }
        let renewed = tokio::select! {
            () = stop.cancelled() => return,
            r = tokio::time::timeout(valid_until - sent, backend.renew_session(&session)) => r,
        };
        match renewed {
            Ok(Ok(server_ttl)) => {
                if let Some(t) = server_ttl.filter(|t| !t.is_zero()) {
                    if t != ttl {
                        tracing::debug!(old = ?ttl, new = ?t, "adopting the session TTL");
                    }
                    ttl = t;
                }
                last_ok = sent;
                backoff.reset();
                warner.succeeded();
                health.send_replace(SessionHealth {
                    lost: false,
                    valid_until: last_ok + ttl,
                });
                next = last_ok + ttl / 2;
            }
            Ok(Err(Error::SessionNotFound { .. })) => {
                health.send_replace(SessionHealth {
                    lost: true,
                    valid_until: sent,
                });
                return;
            }
            Ok(Err(error)) => {
                let delay = backoff.failure();
                if let Some(failures) = warner.failed() {
                    tracing::warn!(%error, ?delay, failures, "cannot renew the leader session (leadership ends a TTL after the last renewal)");
                } else {
                    tracing::debug!(%error, ?delay, "session renew failed");
                }
                next = (Instant::now() + delay).min(last_ok + ttl);
            }
            Err(_elapsed) => {
                next = Instant::now();
            }
        }
    }
}

#[cfg(test)]
mod tests;
