#![allow(clippy::unwrap_used)]

use super::*;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use tokio::sync::Notify;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Renew {
    /// Answer with the session's TTL (or this one).
    Ok(Option<Duration>),
    /// Transport failure.
    Fail,
}

#[derive(Default)]
struct FakeState {
    index: u64,
    next_session: u64,
    sessions: HashMap<String, ()>,
    holder: Option<String>,
    exists: bool,
    lock_index: u64,
    lock_delay: Duration,
    delay_until: Option<Instant>,
    renew_script: VecDeque<Renew>,
    renews: Vec<(String, Instant)>,
    destroyed: Vec<String>,
    released: Vec<String>,
    /// Index sent with every lock read.
    reads: Vec<u64>,
    /// Report the index as stored, 0 included (a server that answers index 0).
    raw_index: bool,
}

/// Consul's lock semantics in memory, on tokio time.
#[derive(Default)]
struct Fake {
    state: Mutex<FakeState>,
    changed: Notify,
}

impl Fake {
    fn bump(&self, s: &mut FakeState) {
        s.index += 1;
        self.changed.notify_waiters();
    }

    /// Invalidates a session as Consul does: release its locks, start the lock-delay.
    fn invalidate(&self, id: &str) {
        let mut s = self.state.lock();
        if s.sessions.remove(id).is_some() && s.holder.as_deref() == Some(id) {
            s.holder = None;
            s.delay_until = Some(Instant::now() + s.lock_delay);
            self.bump(&mut s);
        }
    }

    fn holder(&self) -> Option<String> {
        self.state.lock().holder.clone()
    }
}

fn boom(op: &'static str) -> Error {
    Error::Backend {
        op,
        source: "connection reset".into(),
    }
}

impl LockBackend for Fake {
    async fn create_session(&self, spec: &SessionSpec) -> Result<String> {
        let mut s = self.state.lock();
        s.next_session += 1;
        let id = format!("s{}", s.next_session);
        s.sessions.insert(id.clone(), ());
        s.lock_delay = spec.lock_delay;
        Ok(id)
    }

    async fn renew_session(&self, id: &str) -> Result<Option<Duration>> {
        let mut s = self.state.lock();
        s.renews.push((id.to_owned(), Instant::now()));
        if !s.sessions.contains_key(id) {
            return Err(Error::SessionNotFound { id: id.to_owned() });
        }
        match s.renew_script.pop_front().unwrap_or(Renew::Ok(None)) {
            Renew::Ok(ttl) => Ok(ttl),
            Renew::Fail => Err(boom("renew")),
        }
    }

    async fn destroy_session(&self, id: &str) -> Result<()> {
        self.state.lock().destroyed.push(id.to_owned());
        self.invalidate(id);
        Ok(())
    }

    async fn acquire(&self, _key: &str, session: &str, _value: &[u8]) -> Result<bool> {
        let mut s = self.state.lock();
        if !s.sessions.contains_key(session) {
            return Err(boom("acquire: invalid session"));
        }
        if s.delay_until.is_some_and(|until| Instant::now() < until) {
            return Ok(false);
        }
        match s.holder.as_deref() {
            Some(h) if h == session => Ok(true),
            Some(_) => Ok(false),
            None => {
                s.holder = Some(session.to_owned());
                s.exists = true;
                s.lock_index += 1;
                self.bump(&mut s);
                Ok(true)
            }
        }
    }

    async fn release(&self, _key: &str, session: &str) -> Result<bool> {
        let mut s = self.state.lock();
        s.released.push(session.to_owned());
        if s.holder.as_deref() == Some(session) {
            s.holder = None;
            self.bump(&mut s);
            return Ok(true);
        }
        Ok(false)
    }

    async fn read_lock(&self, _key: &str, index: u64, wait: Duration) -> Result<LockState> {
        let deadline = Instant::now() + wait;
        self.state.lock().reads.push(index);
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let s = self.state.lock();
                if index == 0 || s.index > index || Instant::now() >= deadline {
                    return Ok(LockState {
                        index: if s.raw_index { s.index } else { s.index.max(1) },
                        exists: s.exists,
                        holder: s.holder.clone(),
                        lock_index: s.lock_index,
                        flags: LOCK_FLAG_VALUE,
                    });
                }
            }
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    async fn txn(&self, ops: Vec<TxnOp>) -> Result<TxnOutcome> {
        let s = self.state.lock();
        for (i, op) in ops.iter().enumerate() {
            if let TxnOp::CheckSession { session, .. } = op
                && s.holder.as_deref() != Some(session.as_str())
            {
                return Ok(TxnOutcome::RolledBack(vec![TxnError {
                    op_index: i,
                    what: "failed session check".into(),
                }]));
            }
        }
        Ok(TxnOutcome::Committed(Vec::new()))
    }
}

fn config() -> LeaderConfig {
    let mut c = LeaderConfig::new("steward/leader");
    c.ttl = Duration::from_secs(10);
    c.lock_delay = Duration::from_secs(3);
    c.retry_pause = Duration::from_millis(500);
    c.monitor_wait = Duration::from_secs(15);
    c.backoff = BackoffConfig::new(Duration::from_millis(100), Duration::from_secs(1)).jitter(0.0);
    c
}

struct Running {
    rx: watch::Receiver<Leadership>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn start(fake: &Arc<Fake>, config: LeaderConfig) -> Running {
    let elector = LeaderElector::new(fake.clone(), config);
    let rx = elector.subscribe();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(elector.run(shutdown.clone()));
    Running { rx, shutdown, task }
}

async fn wait_for(rx: &mut watch::Receiver<Leadership>, leader: bool) -> Leadership {
    tokio::time::timeout(
        Duration::from_secs(300),
        rx.wait_for(|l| l.is_leader() == leader),
    )
    .await
    .expect("leadership change within the bound")
    .unwrap()
    .clone()
}

#[tokio::test(start_paused = true)]
async fn renews_at_half_the_ttl_and_adopts_the_ttl_the_server_returns() {
    let fake = Arc::new(Fake::default());
    fake.state.lock().renew_script =
        VecDeque::from([Renew::Ok(None), Renew::Ok(Some(Duration::from_secs(30)))]);
    let start_at = Instant::now();
    let mut r = start(&fake, config());
    wait_for(&mut r.rx, true).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    let times: Vec<Duration> = fake
        .state
        .lock()
        .renews
        .iter()
        .map(|(_, at)| *at - start_at)
        .collect();
    let s = Duration::from_secs;
    // 5, 10 (answers TTL 30 s), then every 15 s
    assert_eq!(times, vec![s(5), s(10), s(25), s(40), s(55)]);
    assert!(r.rx.borrow().is_leader());
    r.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), r.task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_lock_monitor_relists_once_after_a_restore_and_never_spins_on_index_zero() {
    let fake = Arc::new(Fake::default());
    let mut c = config();
    // Shorter than the renew period (TTL/2): every renew restarts the monitor's read,
    // so with a longer wait no read would ever reach its timeout in this test.
    c.monitor_wait = Duration::from_secs(2);
    let mut r = start(&fake, c);
    wait_for(&mut r.rx, true).await;
    {
        // unrelated churn moves the index on, then a snapshot restore takes it to 0,
        // which this server reports as is
        let mut s = fake.state.lock();
        s.raw_index = true;
        fake.bump(&mut s);
        fake.bump(&mut s);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = {
        let mut s = fake.state.lock();
        s.index = 0;
        fake.changed.notify_waiters();
        s.reads.len()
    };
    tokio::time::sleep(Duration::from_secs(60)).await;
    let reads = fake.state.lock().reads[before..].to_vec();
    // the blocked read times out with index 0 (backwards): one non-blocking relist,
    // then blocking waits on 1, never alternating with waits on 0
    assert_eq!(reads[0], 0, "{reads:?}");
    assert!(reads[1..].iter().all(|&i| i == 1), "{reads:?}");
    // one read per 2 s wait, plus the reads restarted by the renews (every 5 s)
    assert!(reads.len() <= 30 + 12 + 1, "{} reads", reads.len());
    assert!(r.rx.borrow().is_leader());
    r.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), r.task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_renew_404_deposes_at_once_and_contention_restarts_with_a_new_session() {
    let fake = Arc::new(Fake::default());
    let start_at = Instant::now();
    let mut r = start(&fake, config());
    let Leadership::Leader {
        session_id, token, ..
    } = wait_for(&mut r.rx, true).await
    else {
        unreachable!()
    };
    // The session vanishes without the key changing (only a renew can tell).
    fake.state.lock().sessions.remove(&session_id);
    tokio::time::timeout(Duration::from_secs(30), token.cancelled())
        .await
        .unwrap();
    assert_eq!(
        Instant::now() - start_at,
        Duration::from_secs(5),
        "lost at the first renew"
    );
    assert!(!r.rx.borrow().is_leader());
    // the key still names the dead session here; clear it as Consul would and see a
    // new session take over
    {
        let mut s = fake.state.lock();
        s.holder = None;
        fake.bump(&mut s);
    }
    let Leadership::Leader {
        session_id: second, ..
    } = wait_for(&mut r.rx, true).await
    else {
        unreachable!()
    };
    assert_ne!(second, session_id);
    r.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), r.task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn transport_errors_depose_only_when_a_whole_ttl_passed_since_the_last_renew() {
    let fake = Arc::new(Fake::default());
    fake.state.lock().renew_script = std::iter::once(Renew::Ok(None))
        .chain(std::iter::repeat_n(Renew::Fail, 1000))
        .collect();
    let start_at = Instant::now();
    let mut r = start(&fake, config());
    let Leadership::Leader { token, .. } = wait_for(&mut r.rx, true).await else {
        unreachable!()
    };
    tokio::time::timeout(Duration::from_secs(60), token.cancelled())
        .await
        .unwrap();
    // last good renew sent at 5 s, TTL 10 s
    assert_eq!(Instant::now() - start_at, Duration::from_secs(15));
    let renews = fake.state.lock().renews.len();
    assert!(renews > 3, "failed renews are retried quickly ({renews})");
    r.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), r.task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn another_session_on_the_key_deposes_and_the_lock_delay_holds_off_reacquire() {
    let fake = Arc::new(Fake::default());
    let mut r = start(&fake, config());
    let Leadership::Leader {
        session_id,
        token,
        lock_index,
        ..
    } = wait_for(&mut r.rx, true).await
    else {
        unreachable!()
    };
    assert_eq!(lock_index, 1);
    // An operator destroys our session through the API.
    let destroyed_at = Instant::now();
    fake.invalidate(&session_id);
    tokio::time::timeout(Duration::from_secs(1), token.cancelled())
        .await
        .unwrap();
    assert_eq!(
        Instant::now(),
        destroyed_at,
        "the key watch notices at once"
    );
    let Leadership::Leader { lock_index, .. } = wait_for(&mut r.rx, true).await else {
        unreachable!()
    };
    let waited = Instant::now() - destroyed_at;
    assert!(
        waited >= Duration::from_secs(3),
        "re-acquired after {waited:?}"
    );
    assert!(
        waited <= Duration::from_secs(4),
        "re-acquired after {waited:?}"
    );
    assert_eq!(lock_index, 2);
    r.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), r.task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn shutdown_cancels_the_token_releases_the_lock_and_destroys_the_session() {
    let fake = Arc::new(Fake::default());
    let mut r = start(&fake, config());
    let Leadership::Leader {
        session_id, token, ..
    } = wait_for(&mut r.rx, true).await
    else {
        unreachable!()
    };
    assert_eq!(fake.holder().as_deref(), Some(session_id.as_str()));
    r.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), r.task)
        .await
        .unwrap()
        .unwrap();
    assert!(token.is_cancelled());
    assert!(!r.rx.borrow().is_leader());
    assert_eq!(fake.holder(), None);
    let s = fake.state.lock();
    assert_eq!(s.released, vec![session_id.clone()]);
    assert_eq!(s.destroyed, vec![session_id]);
    assert!(
        s.delay_until.is_none(),
        "a clean release starts no lock-delay"
    );
}

#[tokio::test(start_paused = true)]
async fn two_contenders_never_lead_at_once() {
    let fake = Arc::new(Fake::default());
    let a = start(&fake, config());
    let b = start(&fake, config());
    let leaders = |a: &Running, b: &Running| {
        [a.rx.borrow().is_leader(), b.rx.borrow().is_leader()]
            .iter()
            .filter(|l| **l)
            .count()
    };
    let mut previous: Option<String> = None;
    for _round in 0..4 {
        // sample every 50 ms until someone leads
        let mut waited = Duration::ZERO;
        while leaders(&a, &b) == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            waited += Duration::from_millis(50);
            assert!(waited < Duration::from_secs(60), "nobody became leader");
        }
        assert_eq!(leaders(&a, &b), 1);
        let holder = fake.holder().unwrap();
        assert_ne!(
            Some(&holder),
            previous.as_ref(),
            "a new session leads each round"
        );
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert_eq!(leaders(&a, &b), 1, "exactly one leader");
        }
        fake.invalidate(&holder);
        previous = Some(holder);
        tokio::task::yield_now().await;
        assert!(leaders(&a, &b) <= 1);
    }
    a.shutdown.cancel();
    b.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), a.task)
        .await
        .unwrap()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), b.task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_fenced_write_by_a_deposed_leader_is_rolled_back() {
    let fake = Arc::new(Fake::default());
    let mut r = start(&fake, config());
    let leadership = wait_for(&mut r.rx, true).await;
    let fence = leadership.fence().unwrap();
    let write = || TxnOp::Set {
        key: "steward/status/ns/a".into(),
        value: b"{}".to_vec(),
        flags: 0,
    };
    assert_eq!(
        fenced_txn(&*fake, &fence, [write()]).await.unwrap(),
        FencedWrite::Committed(Vec::new())
    );
    fake.invalidate(&fence.session);
    assert_eq!(
        fenced_txn(&*fake, &fence, [write()]).await.unwrap(),
        FencedWrite::Fenced
    );
    let ops = fence.fenced_ops([write()]);
    assert_eq!(ops.len(), 2);
    assert_eq!(ops[0], fence.guard());
    r.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), r.task)
        .await
        .unwrap()
        .unwrap();
}
