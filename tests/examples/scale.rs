//! Rough scale measurement (not a test): N specs, cold start until every status is
//! Synced, one change's latency, and idle requests.
//!
//! `cargo run -p steward-e2e --example scale -- 2000`
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use steward_e2e::{Env, web};
use steward_hashi::QueryOptions;
use steward_hashi::consul::TxnOp;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let mut env = Env::start().await;
    let t = tokio::time::Instant::now();
    let keys: Vec<String> = (0..n).map(|i| format!("ns{}/svc{i}", i % 50)).collect();
    for chunk in keys.chunks(64) {
        let ops: Vec<TxnOp> = chunk
            .iter()
            .map(|k| {
                let (ns, name) = k.split_once('/').unwrap();
                TxnOp::Set {
                    key: format!("steward/specs/{k}"),
                    value: web(ns, name, "1.0.0").into_bytes(),
                    flags: 0,
                }
            })
            .collect();
        env.clients
            .consul
            .txn(&ops, &QueryOptions::new())
            .await
            .unwrap();
    }
    println!("pushed {n} specs in {:?}", t.elapsed());
    let mut config = env.config();
    config.vault_poll_interval = Duration::from_secs(30);
    config.vault_checks_per_poll = 1;
    config.watch_wait = Duration::from_secs(300);
    config.leader.ttl = Duration::from_secs(30);
    config.leader.monitor_wait = Duration::from_secs(300);
    config.orphan_sweep_interval = Duration::from_secs(60);
    config.concurrency = 16;
    let t = tokio::time::Instant::now();
    let h = env.operator_with("a", config.clone()).await;
    let mut last_print = tokio::time::Instant::now();
    loop {
        let all = h.statuses();
        let synced = all
            .iter()
            .filter(|(_, s)| s.phase == steward_operator::Phase::Synced)
            .count();
        if synced == n {
            break;
        }
        if last_print.elapsed() > Duration::from_secs(1) {
            last_print = tokio::time::Instant::now();
            let mut by: std::collections::BTreeMap<String, usize> = Default::default();
            for (_, s) in &all {
                *by.entry(format!("{:?}", s.phase)).or_default() += 1;
            }
            println!(
                "{:?}: {} statuses {by:?}, {} requests, {} reconciles",
                t.elapsed(),
                all.len(),
                env.log.all().len(),
                h.reconciles()
            );
        }
        if t.elapsed() > Duration::from_secs(900) {
            panic!("only {synced} synced");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "cold start (fresh cluster): {n} Synced in {:?}; {} requests",
        t.elapsed(),
        env.log.all().len()
    );
    env.settle(Duration::from_secs(2)).await;

    // One change.
    let mut lat = Vec::new();
    for i in 0..20 {
        let key = &keys[i * (n / 20).max(1) % n];
        let (ns, name) = key.split_once('/').unwrap();
        let mark = env.log.mark();
        let t = tokio::time::Instant::now();
        env.clients
            .consul
            .kv_put(
                &format!("steward/specs/{key}"),
                web(ns, name, &format!("2.0.{i}")).as_bytes(),
                None,
                &steward_hashi::WriteOptions::new(),
            )
            .await
            .unwrap();
        let put = t.elapsed();
        loop {
            let reqs = env.log.since(mark);
            if let Some(r) = reqs
                .iter()
                .find(|r| r.path == "/v1/jobs" && r.method == "PUT")
            {
                let first = reqs
                    .first()
                    .map(|f| (f.method.clone(), f.path.clone(), f.at.duration_since(t)));
                println!(
                    "  put {put:?}, first operator request {first:?}, register done {:?}",
                    r.at.duration_since(t)
                );
                for q in &reqs {
                    println!(
                        "      {:>10?} {} {}",
                        q.at.duration_since(t),
                        q.method,
                        q.path
                    );
                }
                lat.push(r.at.duration_since(t));
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        env.settle(Duration::from_millis(500)).await;
    }
    lat.sort();
    println!(
        "change → register latency p50 {:?} max {:?}",
        lat[lat.len() / 2],
        lat[lat.len() - 1]
    );

    // Restart: converged cold start.
    env.stop("a").await;
    let before = env.writes();
    let t = tokio::time::Instant::now();
    let mark = env.log.mark();
    let h = env.operator_with("b", config).await;
    loop {
        if h.is_leader() && h.verified() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "cold start (converged): {n} reconciled in {:?}; {} requests; writes {:?}",
        t.elapsed(),
        env.log.since(mark).len(),
        env.writes().rows_since(&before)
    );
    env.settle(Duration::from_secs(2)).await;
    let mark = env.log.mark();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let idle = env.log.since(mark);
    println!(
        "idle 30 s: {} requests, {} writes",
        idle.len(),
        idle.iter().filter(|r| r.is_write()).count()
    );
    let mut by: std::collections::BTreeMap<String, usize> = Default::default();
    for r in idle {
        let path: Vec<&str> = r.path.split('/').take(5).collect();
        *by.entry(format!("{} {}", r.method, path.join("/")))
            .or_default() += 1;
    }
    println!("{by:?}");
    env.finish().await;
}
