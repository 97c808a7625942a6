//! Micro-benchmarks of the work queue: the add → get → done cycle of 10,000 distinct
//! keys (a cold start or a new leader's resync), and deduplication of adds of keys
//! already queued (a burst of watch events for the same specs).
//!
//! `cargo bench -p steward-runtime --bench queue`.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use steward_runtime::{QueueConfig, WorkQueue};

const KEYS: usize = 10_000;

fn unlimited() -> QueueConfig {
    QueueConfig {
        max_rate: 0.0,
        ..QueueConfig::default()
    }
}

fn keys() -> Vec<String> {
    (0..KEYS)
        .map(|i| format!("team-{}/svc-{i:05}", i % 10))
        .collect()
}

fn benches(c: &mut Criterion) {
    let keys = keys();
    c.bench_function("queue/add+get+done 10k keys", |b| {
        b.iter_batched(
            || WorkQueue::<String>::new(unlimited(), None),
            |q| {
                for k in &keys {
                    q.add(k.clone());
                }
                while let Some(k) = q.try_get() {
                    q.done(black_box(&k));
                }
                q
            },
            BatchSize::SmallInput,
        );
    });
    c.bench_function("queue/re-add 10k queued keys (dedup)", |b| {
        b.iter_batched(
            || {
                let q = WorkQueue::<String>::new(unlimited(), None);
                for k in &keys {
                    q.add(k.clone());
                }
                q
            },
            |q| {
                for k in &keys {
                    q.add(black_box(k.clone()));
                }
                q
            },
            BatchSize::SmallInput,
        );
    });
    // The default rate limiter in the path: 10,000 keys per second burst, like the
    // operator's default `max_reconcile_rate`.
    c.bench_function("queue/add+get+done 10k keys, rate-limited", |b| {
        b.iter_batched(
            || {
                WorkQueue::<String>::new(
                    QueueConfig {
                        max_rate: 1e9,
                        burst: 1_000_000,
                        ..QueueConfig::default()
                    },
                    None,
                )
            },
            |q| {
                for k in &keys {
                    q.add(k.clone());
                }
                while let Some(k) = q.try_get() {
                    q.done(black_box(&k));
                }
                q
            },
            BatchSize::SmallInput,
        );
    });
}

criterion_group!(queue_benches, benches);
criterion_main!(queue_benches);
