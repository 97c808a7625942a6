//! The controller: trigger streams → work queue → `reconcile(key)` with bounded
//! concurrency, only while this instance leads.
//!
//! - Triggers are event streams, each with a mapper from one event to the keys it
//!   concerns ([`Controller::watches`]): the operator's caches publish what they changed
//!   (an object and its owners before and after, never a body) and its mappers turn a
//!   spec change into that spec's key, an owned object into its owner's key, a cache's
//!   first sync into every key.
//! - While a follower, triggers keep filling the queue (deduplicated) but nothing runs;
//!   on becoming leader the optional resync adds every known key.
//! - Each reconcile gets a [`Lease`]: a child of the leadership token plus the fencing
//!   value. The controller also drops the reconcile future the moment the token is
//!   cancelled, so losing leadership stops in-flight reconciles at their next await
//!   even if they ignore the token; the key is queued again for the next term.
//! - `Ok(action)` forgets the key's failures and applies the action; `Err(e)` asks
//!   `error_policy` for an action ([`Action::backoff`] = per-key exponential backoff). A
//!   panicking reconcile counts as an error with backoff.

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{BoxStream, SelectAll};
use futures::{FutureExt as _, Stream, StreamExt as _};
use prometheus_client::registry::Registry;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::events::Recorder;
use crate::leader::{Fence, Leadership};
use crate::queue::{QueueConfig, QueueKey, WorkQueue};

/// What to do with a key after a reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Reconcile again after this long (even without a change).
    Requeue(Duration),
    /// Reconcile again only when a trigger fires for the key.
    AwaitChange,
    /// Reconcile again after the key's next exponential backoff delay.
    Backoff,
}

impl Action {
    /// Reconcile again after `after`.
    pub fn requeue(after: Duration) -> Self {
        Action::Requeue(after)
    }

    /// Reconcile again only on a change.
    pub fn await_change() -> Self {
        Action::AwaitChange
    }

    /// Reconcile again after the per-key backoff (the usual error policy).
    pub fn backoff() -> Self {
        Action::Backoff
    }
}

/// Shared state handed to every reconcile: the user's data (clients, stores, metrics)
/// and the event recorder. Dereferences to the user data.
#[derive(Debug)]
pub struct Context<T> {
    data: T,
    recorder: Recorder,
}

impl<T> Context<T> {
    /// A context with a default recorder.
    pub fn new(data: T) -> Self {
        Self {
            data,
            recorder: Recorder::default(),
        }
    }

    /// A context with this recorder (share it with the HTTP API).
    pub fn with_recorder(data: T, recorder: Recorder) -> Self {
        Self { data, recorder }
    }

    /// The user data.
    pub fn data(&self) -> &T {
        &self.data
    }

    /// The event recorder.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }
}

impl<T> Deref for Context<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.data
    }
}

/// One reconcile's hold on leadership.
#[derive(Clone, Debug)]
pub struct Lease {
    token: CancellationToken,
    fence: Option<Fence>,
}

impl Lease {
    /// A lease outside leader election (tests, single-instance mode): no fence.
    pub fn standalone(token: CancellationToken) -> Self {
        Self { token, fence: None }
    }

    /// Cancelled when leadership is lost or the controller stops.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// True once the lease is over: stop writing.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// The fencing value for writes (`None` without leader election).
    pub fn fence(&self) -> Option<&Fence> {
        self.fence.as_ref()
    }
}

/// Controller settings.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// Most reconciles running at once.
    pub concurrency: usize,
    /// The work queue.
    pub queue: QueueConfig,
    /// On shutdown, how long in-flight reconciles may finish before they are dropped.
    pub shutdown_grace: Duration,
}

impl Default for ControllerConfig {
    /// 4 at once, the default queue, 10 s of grace.
    fn default() -> Self {
        Self {
            concurrency: 4,
            queue: QueueConfig::default(),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

type Resync<K> = Box<dyn Fn() -> Vec<K> + Send + Sync>;

/// Builds and runs one controller. See the module documentation.
pub struct Controller<K> {
    queue: WorkQueue<K>,
    triggers: SelectAll<BoxStream<'static, Vec<K>>>,
    leadership: Option<watch::Receiver<Leadership>>,
    resync: Option<Resync<K>>,
    config: ControllerConfig,
}

impl<K: QueueKey> fmt::Debug for Controller<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Controller")
            .field("queue", &self.queue)
            .field("triggers", &self.triggers.len())
            .field("elected", &self.leadership.is_some())
            .finish()
    }
}

impl<K: QueueKey> Controller<K> {
    /// A controller with no triggers that always leads (see
    /// [`Controller::with_leadership`]). Queue metrics go into `registry`.
    pub fn new(config: ControllerConfig, registry: Option<&mut Registry>) -> Self {
        Self {
            queue: WorkQueue::new(config.queue.clone(), registry),
            triggers: SelectAll::new(),
            leadership: None,
            resync: None,
            config,
        }
    }

    /// Runs reconciles only while `leadership` says leader, each under a child of the
    /// leadership token.
    pub fn with_leadership(mut self, leadership: watch::Receiver<Leadership>) -> Self {
        self.leadership = Some(leadership);
        self
    }

    /// Queues the keys `mapper` derives from each event of `stream`. The mapper takes
    /// the event by value, so keys the event carries move to the queue without a copy;
    /// it runs on the controller's trigger task, never on the publisher's.
    pub fn watches<E, S, M>(mut self, stream: S, mapper: M) -> Self
    where
        S: Stream<Item = E> + Send + 'static,
        M: FnMut(E) -> Vec<K> + Send + 'static,
        E: 'static,
    {
        self.triggers.push(stream.map(mapper).boxed());
        self
    }

    /// Queues `keys()` every time this instance becomes leader (a full resync).
    pub fn resync_on_leadership(
        mut self,
        keys: impl Fn() -> Vec<K> + Send + Sync + 'static,
    ) -> Self {
        self.resync = Some(Box::new(keys));
        self
    }

    /// The work queue (to add keys from elsewhere, or inspect it).
    pub fn queue(&self) -> WorkQueue<K> {
        self.queue.clone()
    }

    /// Runs until `shutdown` is cancelled: then stops handing out keys, lets in-flight
    /// reconciles finish within the grace period, drops the rest, and returns.
    pub async fn run<T, E, R, RF, P>(
        self,
        reconcile: R,
        error_policy: P,
        ctx: Arc<Context<T>>,
        shutdown: CancellationToken,
    ) where
        T: Send + Sync + 'static,
        E: fmt::Display + Send + 'static,
        R: Fn(K, Arc<Context<T>>, Lease) -> RF + Send + Sync + 'static,
        RF: Future<Output = Result<Action, E>> + Send + 'static,
        P: Fn(&K, &E, Arc<Context<T>>) -> Action + Send + Sync + 'static,
    {
        let Self {
            queue,
            mut triggers,
            mut leadership,
            resync,
            config,
        } = self;
        let reconcile = Arc::new(reconcile);
        let error_policy = Arc::new(error_policy);

        let trigger_stop = CancellationToken::new();
        let trigger_task = {
            let queue = queue.clone();
            let stop = trigger_stop.clone();
            tokio::spawn(async move {
                loop {
                    let keys = tokio::select! {
                        () = stop.cancelled() => break,
                        next = triggers.next() => match next {
                            Some(keys) => keys,
                            None => break,
                        },
                    };
                    for key in keys {
                        queue.add(key);
                    }
                }
            })
        };

        let semaphore = Arc::new(Semaphore::new(config.concurrency.max(1)));
        let mut tasks: JoinSet<()> = JoinSet::new();
        let standalone = CancellationToken::new();

        'terms: loop {
            // Wait until we lead.
            let (term, fence) = loop {
                reap(&mut tasks);
                let Some(rx) = leadership.as_mut() else {
                    break (standalone.clone(), None);
                };
                let current = rx.borrow_and_update().clone();
                if let Leadership::Leader { token, .. } = &current
                    && !token.is_cancelled()
                {
                    break (token.clone(), current.fence());
                }
                tokio::select! {
                    () = shutdown.cancelled() => break 'terms,
                    changed = rx.changed() => {
                        if changed.is_err() {
                            // The elector is gone: nobody will lead again.
                            shutdown.cancelled().await;
                            break 'terms;
                        }
                    }
                }
            };
            if let Some(keys) = &resync {
                for key in keys() {
                    queue.add(key);
                }
            }
            loop {
                reap(&mut tasks);
                let permit = tokio::select! {
                    () = shutdown.cancelled() => break 'terms,
                    () = term.cancelled() => continue 'terms,
                    p = semaphore.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break 'terms,
                    },
                };
                let key = tokio::select! {
                    () = shutdown.cancelled() => break 'terms,
                    () = term.cancelled() => continue 'terms,
                    k = queue.get() => match k {
                        Some(k) => k,
                        None => break 'terms,
                    },
                };
                let lease = Lease {
                    token: term.child_token(),
                    fence: fence.clone(),
                };
                let queue = queue.clone();
                let reconcile = reconcile.clone();
                let error_policy = error_policy.clone();
                let ctx = ctx.clone();
                tasks.spawn(async move {
                    let _permit = permit;
                    let token = lease.token.clone();
                    let run =
                        AssertUnwindSafe(reconcile(key.clone(), ctx.clone(), lease)).catch_unwind();
                    let outcome = tokio::select! {
                        biased;
                        () = token.cancelled() => None,
                        r = run => Some(r),
                    };
                    match outcome {
                        None => {
                            tracing::debug!(?key, "reconcile cancelled: leadership lost");
                            // Run it again in the next term, without counting a failure.
                            queue.add(key.clone());
                        }
                        Some(Ok(Ok(action))) => {
                            queue.forget(&key);
                            apply(&queue, &key, action);
                        }
                        Some(Ok(Err(error))) => {
                            let action = error_policy(&key, &error, ctx);
                            tracing::debug!(?key, %error, ?action, "reconcile failed");
                            apply(&queue, &key, action);
                        }
                        Some(Err(_panic)) => {
                            tracing::error!(?key, "reconcile panicked");
                            apply(&queue, &key, Action::Backoff);
                        }
                    }
                    queue.done(&key);
                });
            }
        }

        queue.shutdown();
        trigger_stop.cancel();
        let drained = tokio::time::timeout(config.shutdown_grace, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                remaining = tasks.len(),
                "reconciles still running after the grace period; dropping them"
            );
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        standalone.cancel();
        let _ = trigger_task.await;
    }
}

fn apply<K: QueueKey>(queue: &WorkQueue<K>, key: &K, action: Action) {
    match action {
        Action::Requeue(after) => queue.requeue_after(key.clone(), after),
        Action::AwaitChange => {}
        Action::Backoff => {
            queue.add_rate_limited(key.clone());
        }
    }
}

fn reap(tasks: &mut JoinSet<()>) {
    while let Some(result) = tasks.try_join_next() {
        if let Err(error) = result {
            tracing::error!(%error, "reconcile task failed");
        }
    }
}

#[cfg(test)]
mod tests;
