//! Properties: key order never matters, loading never panics and always locates its
//! diagnostics, durations round-trip, and scaling plans agree with a brute-force oracle.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use proptest::prelude::*;
use serde_json::Value;
use steward_spec::{
    DaySet, Duration, Metadata, Scaling, ScalingWindow, ServiceSpec, Spec, TimeOfDay,
    desired_replicas, load,
};

fn examples() -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/examples");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// Rebuilds every mapping of `value` with its keys in an order drawn from `seed`.
fn shuffle_keys(value: &Value, seed: &mut u64) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map
                .iter()
                .map(|(k, v)| (k.clone(), shuffle_keys(v, seed)))
                .collect();
            // Fisher-Yates with a small LCG: deterministic per seed.
            for i in (1..entries.len()).rev() {
                *seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let j = usize::try_from((*seed >> 33) % (i as u64 + 1)).unwrap();
                entries.swap(i, j);
            }
            Value::Object(entries.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| shuffle_keys(v, seed)).collect()),
        other => other.clone(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn reordering_mapping_keys_yields_an_equal_spec(index in 0usize..7, seed in any::<u64>()) {
        let texts = examples();
        let original = load("a.yaml", &texts[index % texts.len()], None).spec.unwrap();
        let value = serde_json::to_value(&original).unwrap();
        let mut state = seed;
        let reordered = shuffle_keys(&value, &mut state);
        let yaml = serde_saphyr::to_string(&reordered).unwrap();
        let loaded = load("b.yaml", &yaml, None);
        prop_assert!(loaded.diagnostics.is_empty(), "{}\n{}", yaml, loaded.render());
        prop_assert_eq!(loaded.spec.unwrap(), original);
    }

    #[test]
    fn loading_never_panics_and_always_locates_its_diagnostics(
        index in 0usize..7,
        cut in any::<prop::sample::Index>(),
        junk in "[ :\\-\\[\\]{}a-z0-9\"'#\\n]{0,8}",
    ) {
        let texts = examples();
        let text = &texts[index % texts.len()];
        // Splice junk into the document at a char boundary.
        let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        let at = boundaries[cut.index(boundaries.len())];
        let mutated = format!("{}{}{}", &text[..at], junk, &text[at..]);
        let loaded = load("m.yaml", &mutated, None);
        let lines: Vec<&str> = mutated.split('\n').collect();
        for d in &loaded.diagnostics {
            prop_assert!(d.line >= 1 && d.line <= lines.len(), "{d:?}");
            prop_assert!(d.column >= 1 && d.end_column > d.column, "{d:?}");
            prop_assert_eq!(d.excerpt.as_str(), lines[d.line - 1].trim_end_matches('\r'));
        }
        prop_assert_eq!(loaded.spec.is_some(), !loaded.has_errors());
    }

    #[test]
    fn durations_round_trip_through_their_canonical_form(nanos in any::<u64>()) {
        let duration = Duration::from_nanos(nanos);
        prop_assert_eq!(Duration::parse(&duration.to_string()).unwrap(), duration);
    }
}

const ZONES: [&str; 5] = [
    "UTC",
    "Asia/Tokyo",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
];

fn window_strategy() -> impl Strategy<Value = ScalingWindow> {
    (1u8..=127, 0u16..96, 1u16..96, 0u32..20).prop_map(|(mask, from, len, replicas)| {
        let days: Vec<&str> = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, d)| *d)
            .collect();
        let from_minutes = from * 15;
        let to_minutes = (from_minutes + len * 15) % 1440;
        let time = |m: u16| {
            TimeOfDay::new(u8::try_from(m / 60).unwrap(), u8::try_from(m % 60).unwrap()).unwrap()
        };
        ScalingWindow {
            days: DaySet::parse(&days.join(",")).unwrap(),
            from: time(from_minutes),
            to: time(to_minutes),
            replicas,
        }
    })
}

fn spec_with(zone: &str, windows: Vec<ScalingWindow>) -> ServiceSpec {
    let body = Spec {
        replicas: 3,
        scaling: Some(Scaling {
            time_zone: zone.to_owned(),
            windows,
        }),
        ..Spec::default()
    };
    ServiceSpec::new(Metadata::new("trading", "cache"), body)
}

/// Brute force for zones without DST: the lowest-index window whose weekly civil
/// interval contains the civil minute of `now`.
fn oracle(spec: &ServiceSpec, now: Timestamp, tz: &TimeZone) -> Option<usize> {
    let civil = now.to_zoned_datetime(tz.clone()).datetime();
    let minute_of_week = i64::from(civil.weekday().to_monday_zero_offset()) * 1440
        + i64::from(civil.hour()) * 60
        + i64::from(civil.minute());
    let windows = &spec.spec.scaling.as_ref().unwrap().windows;
    windows.iter().position(|w| {
        let from = i64::from(w.from.minutes_since_midnight());
        let to = i64::from(w.to.minutes_since_midnight());
        let len = if to > from {
            to - from
        } else {
            to + 1440 - from
        };
        (0..7i64).any(|day| {
            w.days.contains_index(u8::try_from(day).unwrap()) && {
                let start = day * 1440 + from;
                // The occurrence may wrap past the end of the week.
                let offset = (minute_of_week - start).rem_euclid(7 * 1440);
                offset < len
            }
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_plan_holds_until_next_change(
        zone in prop::sample::select(ZONES.to_vec()),
        windows in prop::collection::vec(window_strategy(), 1..4),
        seconds in 1_704_067_200i64..1_893_456_000, // 2024..2030
        probe in 0.0f64..1.0,
    ) {
        let spec = spec_with(zone, windows.clone());
        let now = Timestamp::from_second(seconds).unwrap();
        let plan = desired_replicas(&spec, now);
        // Replicas come from the active window, else the base count.
        let expected = plan.active_window.map_or(3, |i| windows[i].replicas);
        prop_assert_eq!(plan.replicas, expected);
        // There is always a next boundary within eight days.
        let next = plan.next_change.unwrap();
        prop_assert!(next > now);
        prop_assert!(next.as_second() - now.as_second() <= 8 * 86_400);
        // Nothing changes strictly between now and the next boundary.
        let span = next.as_second() - now.as_second();
        #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
        let inside = now.as_second() + ((span as f64) * probe) as i64;
        let inside = Timestamp::from_second(inside.min(next.as_second() - 1)).unwrap();
        let later = desired_replicas(&spec, inside);
        prop_assert_eq!(later.active_window, plan.active_window);
        prop_assert_eq!(later.next_change, plan.next_change);
    }

    #[test]
    fn without_dst_the_plan_matches_a_brute_force_oracle(
        zone in prop::sample::select(vec!["UTC", "Asia/Tokyo"]),
        windows in prop::collection::vec(window_strategy(), 1..4),
        seconds in 1_704_067_200i64..1_893_456_000,
    ) {
        let spec = spec_with(zone, windows);
        let tz = steward_spec::time_zone(zone).unwrap();
        let now = Timestamp::from_second(seconds).unwrap();
        prop_assert_eq!(desired_replicas(&spec, now).active_window, oracle(&spec, now, &tz));
    }
}
