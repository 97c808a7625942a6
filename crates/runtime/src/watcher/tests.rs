#![allow(clippy::unwrap_used)]

use super::*;
use parking_lot::Mutex;

#[derive(Debug, thiserror::Error)]
#[error("scripted failure: {0}")]
struct Boom(&'static str);

enum Step {
    Ok {
        index: u64,
        leader: bool,
        entries: Vec<(&'static str, u64)>,
    },
    Err(&'static str),
}

fn ok(index: u64, entries: &[(&'static str, u64)]) -> Step {
    Step::Ok {
        index,
        leader: true,
        entries: entries.to_vec(),
    }
}

type Calls = Arc<Mutex<Vec<(u64, Instant)>>>;

/// Answers from a script; once it runs out, blocks forever like a long poll.
struct Scripted {
    steps: VecDeque<Step>,
    calls: Calls,
}

impl ListSource for Scripted {
    type Key = String;
    type Item = u64;
    type Error = Boom;

    async fn list(&mut self, min_index: u64) -> Result<Listing<String, u64>, Boom> {
        self.calls.lock().push((min_index, Instant::now()));
        match self.steps.pop_front() {
            None => std::future::pending().await,
            Some(Step::Err(m)) => Err(Boom(m)),
            Some(Step::Ok {
                index,
                leader,
                entries,
            }) => Ok(Listing {
                index,
                known_leader: leader,
                entries: entries
                    .into_iter()
                    .map(|(k, mi)| ListingEntry::new(k.to_owned(), mi, mi))
                    .collect(),
            }),
        }
    }
}

fn config() -> WatcherConfig {
    WatcherConfig {
        backoff: BackoffConfig::new(Duration::from_millis(100), Duration::from_secs(2)).jitter(0.0),
        require_known_leader: true,
        max_list_rate: 0.0,
        list_burst: 1,
        empty_poll: Duration::from_secs(1),
    }
}

fn scripted(steps: Vec<Step>, config: WatcherConfig) -> (Watcher<Scripted>, Calls) {
    let calls = Calls::default();
    let source = Scripted {
        steps: steps.into(),
        calls: calls.clone(),
    };
    (Watcher::new(source, config), calls)
}

type Ev = Event<String, u64>;

async fn next(w: &mut Watcher<Scripted>) -> Ev {
    tokio::time::timeout(Duration::from_secs(600), w.next())
        .await
        .expect("an event within the bound")
}

/// Drains events until the script is exhausted (the source then blocks forever).
async fn drain(w: &mut Watcher<Scripted>) -> Vec<Ev> {
    let mut out = Vec::new();
    while let Ok(e) = tokio::time::timeout(Duration::from_secs(3600), w.next()).await {
        out.push(e);
    }
    out
}

fn describe(events: &[Ev]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            Event::Restarted(all) => format!(
                "restarted[{}]",
                all.iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Event::Applied(k, v) => format!("applied {k}@{v}"),
            Event::Deleted(k) => format!("deleted {k}"),
            Event::Error(_) => "error".to_owned(),
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_blocking_return_without_changes_is_not_an_event() {
    let (mut w, calls) = scripted(
        vec![
            ok(10, &[("a", 5), ("b", 10)]),
            ok(10, &[("a", 5), ("b", 10)]), // timeout return
            ok(12, &[("a", 5), ("b", 10)]), // unrelated churn bumped the index
            ok(13, &[("a", 13), ("b", 10), ("c", 11)]),
            ok(14, &[("a", 13)]),
        ],
        config(),
    );
    let events = drain(&mut w).await;
    assert_eq!(
        describe(&events),
        vec![
            "restarted[a,b]",
            "applied a@13",
            "applied c@11",
            "deleted b",
            "deleted c"
        ]
    );
    let indexes: Vec<u64> = calls.lock().iter().map(|(i, _)| *i).collect();
    assert_eq!(indexes, vec![0, 10, 10, 12, 13, 14]);
}

#[tokio::test(start_paused = true)]
async fn failed_reads_never_delete_and_back_off_exponentially() {
    let (mut w, calls) = scripted(
        vec![
            ok(7, &[("a", 3), ("b", 7)]),
            Step::Err("500"),
            Step::Err("reset"),
            Step::Err("503"),
            ok(9, &[("a", 3), ("b", 7), ("c", 9)]),
        ],
        config(),
    );
    let events = drain(&mut w).await;
    assert_eq!(
        describe(&events),
        vec!["restarted[a,b]", "error", "error", "error", "applied c@9"]
    );
    let errors: Vec<(u32, Duration)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Error(e) => Some((e.consecutive_failures, e.retry_in)),
            _ => None,
        })
        .collect();
    let ms = Duration::from_millis;
    assert_eq!(errors, vec![(1, ms(100)), (2, ms(200)), (3, ms(400))]);
    let calls = calls.lock();
    // the retry keeps the last good index and waits for the backoff
    assert!(calls[1..5].iter().all(|(i, _)| *i == 7));
    assert_eq!(calls[5].0, 9);
    let gaps: Vec<Duration> = calls.windows(2).map(|w| w[1].1 - w[0].1).collect();
    assert_eq!(gaps, vec![ms(0), ms(100), ms(200), ms(400), ms(0)]);
}

#[tokio::test(start_paused = true)]
async fn an_index_going_backwards_relists_from_zero_and_diffs() {
    let (mut w, calls) = scripted(
        vec![
            ok(100, &[("a", 40), ("b", 100)]),
            // snapshot restore: lower index, partial-looking answer is discarded
            ok(50, &[("a", 40)]),
            // the relist from 0 is authoritative and diffed against the known set
            ok(52, &[("a", 40), ("b", 52)]),
            ok(60, &[("a", 40), ("b", 52)]),
        ],
        config(),
    );
    let events = drain(&mut w).await;
    // indexes across a restore are not comparable: every present key is re-applied
    assert_eq!(
        describe(&events),
        vec!["restarted[a,b]", "applied a@40", "applied b@52"]
    );
    let indexes: Vec<u64> = calls.lock().iter().map(|(i, _)| *i).collect();
    assert_eq!(indexes, vec![0, 100, 0, 52, 60]);
}

#[tokio::test(start_paused = true)]
async fn index_zero_is_never_reused_as_a_wait_index() {
    // A fresh Nomad answers index 0 for an empty job list.
    let (mut w, calls) = scripted(
        vec![ok(0, &[]), ok(0, &[]), ok(0, &[]), ok(3, &[("j", 3)])],
        config(),
    );
    let events = drain(&mut w).await;
    assert_eq!(describe(&events), vec!["restarted[]", "applied j@3"]);
    let calls = calls.lock();
    let indexes: Vec<u64> = calls.iter().map(|(i, _)| *i).collect();
    assert_eq!(indexes, vec![0, 1, 1, 1, 3]);
    // a server that does not block on index 1 is polled, not hammered
    let gaps: Vec<Duration> = calls.windows(2).map(|w| w[1].1 - w[0].1).collect();
    let s = Duration::from_secs;
    assert_eq!(gaps, vec![s(0), s(1), s(1), s(0)]);
}

#[tokio::test(start_paused = true)]
async fn a_listing_without_known_leader_is_a_failed_read() {
    let (mut w, _calls) = scripted(
        vec![
            ok(5, &[("a", 5), ("b", 4)]),
            Step::Ok {
                index: 6,
                leader: false,
                entries: vec![("a", 5)],
            },
            ok(7, &[("a", 5), ("b", 4)]),
        ],
        config(),
    );
    let events = drain(&mut w).await;
    assert_eq!(describe(&events), vec!["restarted[a,b]", "error"]);
    let Event::Error(e) = &events[1] else {
        panic!("expected an error")
    };
    assert!(e.source.to_string().contains("without a known leader"));
}

#[tokio::test(start_paused = true)]
async fn the_list_rate_is_bounded_even_when_the_server_never_blocks() {
    let steps = (1..=20).map(|i| ok(i, &[("a", 1)])).collect();
    let mut cfg = config();
    cfg.max_list_rate = 5.0;
    cfg.list_burst = 2;
    let (mut w, calls) = scripted(steps, cfg);
    let start = Instant::now();
    let _ = next(&mut w).await;
    let _ = drain(&mut w).await;
    let calls = calls.lock();
    assert_eq!(calls.len(), 21);
    let spent = calls[19].1 - start;
    // 2 free, then 18 more at 5 per second
    assert!(spent >= Duration::from_millis(3500), "{spent:?}");
}

#[tokio::test(start_paused = true)]
async fn the_error_backoff_resets_after_a_healthy_period() {
    let mut cfg = config();
    cfg.backoff = cfg.backoff.reset_after(Duration::from_secs(10));
    let (mut w, _calls) = scripted(
        vec![
            ok(1, &[]),
            Step::Err("x"),
            Step::Err("x"),
            ok(2, &[]),
            Step::Err("x"),
        ],
        cfg,
    );
    let events = drain(&mut w).await;
    let delays: Vec<Duration> = events
        .iter()
        .filter_map(|e| match e {
            Event::Error(e) => Some(e.retry_in),
            _ => None,
        })
        .collect();
    // a short healthy spell does not reset: the third failure keeps growing
    assert_eq!(
        delays,
        vec![
            Duration::from_millis(100),
            Duration::from_millis(200),
            Duration::from_millis(400)
        ]
    );

    let mut cfg = config();
    cfg.backoff = cfg.backoff.reset_after(Duration::from_secs(10));
    let mut steps = vec![ok(1, &[]), Step::Err("x"), Step::Err("x")];
    // healthy long enough: 12 polls a second apart (rate limit paces them)
    steps.extend((2..14).map(|i| ok(i, &[])));
    steps.push(Step::Err("x"));
    cfg.max_list_rate = 1.0;
    let (mut w, _calls) = scripted(steps, cfg);
    let events = drain(&mut w).await;
    let last = events
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::Error(e) => Some(e.retry_in),
            _ => None,
        })
        .unwrap();
    assert_eq!(last, Duration::from_millis(100));
}
