//! Scaling-window evaluation: how many replicas a spec wants at an instant, and when
//! that can next change (so the operator can requeue at the boundary).

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;

use crate::types::{ScalingWindow, ServiceSpec};
use crate::tz::time_zone;

/// What [`desired_replicas`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaPlan {
    /// Replicas wanted now: the active window's, else `spec.replicas`.
    pub replicas: u32,
    /// Index into `spec.scaling.windows` of the window active now, if any.
    pub active_window: Option<usize>,
    /// The next instant after `now` at which any window starts or ends (`None` without
    /// windows). Requeue at this instant.
    pub next_change: Option<Timestamp>,
}

/// One concrete occurrence of a window, as instants.
struct Occurrence {
    window: usize,
    start: Timestamp,
    end: Timestamp,
}

/// The replicas `spec` wants at `now`, the active window and the next boundary.
///
/// Windows are wall-clock times in `spec.scaling.timeZone`: a window starts at `from` on
/// each of its days and ends at `to` that day, or the next day when `to` ≤ `from`.
/// Around DST changes wall-clock times are mapped to instants with the RFC 5545
/// "compatible" rule: a time skipped by a spring-forward gap is moved later by the gap's
/// length, and a repeated time in a fall-back fold is its first occurrence. If windows
/// overlap (validation rejects that) the lowest index wins. A spec without windows, or
/// whose time zone is unknown, always wants `spec.replicas` and has no next change.
#[must_use]
pub fn desired_replicas(spec: &ServiceSpec, now: Timestamp) -> ReplicaPlan {
    let fallback = ReplicaPlan {
        replicas: spec.spec.replicas,
        active_window: None,
        next_change: None,
    };
    let Some(scaling) = spec.spec.scaling.as_ref().filter(|s| !s.windows.is_empty()) else {
        return fallback;
    };
    let Some(tz) = time_zone(&scaling.time_zone) else {
        return fallback;
    };
    let today = now.to_zoned_datetime(tz.clone()).date();
    // From yesterday (a window crossing midnight may still run) to eight days ahead (every
    // window recurs within a week, so some boundary after `now` is always found).
    let mut occurrences = Vec::new();
    let mut date = today.yesterday().unwrap_or(today);
    for _ in 0..10 {
        for (index, window) in scaling.windows.iter().enumerate() {
            if let Some(occurrence) = occurrence(&tz, date, index, window) {
                occurrences.push(occurrence);
            }
        }
        match date.tomorrow() {
            Ok(next) => date = next,
            Err(_) => break,
        }
    }
    let active = occurrences
        .iter()
        .filter(|o| o.start <= now && now < o.end)
        .map(|o| o.window)
        .min();
    let next_change = occurrences
        .iter()
        .flat_map(|o| [o.start, o.end])
        .filter(|t| *t > now)
        .min();
    ReplicaPlan {
        replicas: active.map_or(spec.spec.replicas, |i| scaling.windows[i].replicas),
        active_window: active,
        next_change,
    }
}

fn occurrence(tz: &TimeZone, date: Date, window: usize, w: &ScalingWindow) -> Option<Occurrence> {
    if !w.days.contains(date.weekday()) || w.from == w.to {
        return None;
    }
    let end_date = if w.crosses_midnight() {
        date.tomorrow().ok()?
    } else {
        date
    };
    let instant = |d: Date, t: crate::days::TimeOfDay| {
        tz.to_ambiguous_timestamp(DateTime::from_parts(d, t.to_civil()))
            .compatible()
            .ok()
    };
    let start = instant(date, w.from)?;
    let end = instant(end_date, w.to)?;
    // A window that a DST gap swallows entirely has no occurrence that day.
    (start < end).then_some(Occurrence { window, start, end })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::days::{DaySet, TimeOfDay};
    use crate::types::{Metadata, Scaling, Spec};

    fn spec(tz: &str, windows: &[(&str, &str, &str, u32)]) -> ServiceSpec {
        let windows = windows
            .iter()
            .map(|(days, from, to, replicas)| ScalingWindow {
                days: DaySet::parse(days).unwrap(),
                from: TimeOfDay::parse(from).unwrap(),
                to: TimeOfDay::parse(to).unwrap(),
                replicas: *replicas,
            })
            .collect();
        let body = Spec {
            replicas: 2,
            scaling: Some(Scaling {
                time_zone: tz.into(),
                windows,
            }),
            ..Spec::default()
        };
        ServiceSpec::new(Metadata::new("trading", "cache"), body)
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn market_hours_in_tokyo() {
        let s = spec("Asia/Tokyo", &[("Mon-Fri", "08:30", "15:30", 10)]);
        // Monday 2026-03-02 10:00 JST = 01:00Z
        let plan = desired_replicas(&s, at("2026-03-02T01:00:00Z"));
        assert_eq!(plan.replicas, 10);
        assert_eq!(plan.active_window, Some(0));
        assert_eq!(plan.next_change, Some(at("2026-03-02T06:30:00Z")));
        // Saturday: base replicas; next change Monday 08:30 JST.
        let weekend = desired_replicas(&s, at("2026-03-07T03:00:00Z"));
        assert_eq!((weekend.replicas, weekend.active_window), (2, None));
        assert_eq!(weekend.next_change, Some(at("2026-03-08T23:30:00Z")));
        // Exactly at the end boundary the window is over.
        let end = desired_replicas(&s, at("2026-03-02T06:30:00Z"));
        assert_eq!(end.active_window, None);
    }

    #[test]
    fn windows_crossing_midnight_run_into_the_next_day() {
        let s = spec("Asia/Tokyo", &[("Fri", "22:00", "06:00", 4)]);
        // Saturday 03:00 JST belongs to Friday's window.
        let plan = desired_replicas(&s, at("2026-03-06T18:00:00Z"));
        assert_eq!((plan.replicas, plan.active_window), (4, Some(0)));
        assert_eq!(plan.next_change, Some(at("2026-03-06T21:00:00Z")));
    }

    #[test]
    fn dst_gap_and_fold_in_berlin() {
        // 2026-03-29: clocks jump from 02:00 to 03:00 in Europe/Berlin.
        let s = spec("Europe/Berlin", &[("Sun", "02:30", "04:00", 7)]);
        // 02:30 does not exist; the window starts at 03:30 CEST (01:30Z).
        let before = desired_replicas(&s, at("2026-03-29T01:15:00Z"));
        assert_eq!(before.active_window, None);
        assert_eq!(before.next_change, Some(at("2026-03-29T01:30:00Z")));
        let during = desired_replicas(&s, at("2026-03-29T01:45:00Z"));
        assert_eq!(during.replicas, 7);
        assert_eq!(during.next_change, Some(at("2026-03-29T02:00:00Z")));
        // 2026-10-25: 02:00-03:00 happens twice; the window starts at the first 02:30.
        let fold = desired_replicas(&s, at("2026-10-25T00:40:00Z"));
        assert_eq!(fold.active_window, Some(0));
        assert_eq!(fold.next_change, Some(at("2026-10-25T03:00:00Z")));
    }

    #[test]
    fn without_windows_or_with_an_unknown_zone_the_base_count_applies() {
        let none = spec("UTC", &[]);
        let plan = desired_replicas(&none, at("2026-03-02T01:00:00Z"));
        assert_eq!(
            plan,
            ReplicaPlan {
                replicas: 2,
                active_window: None,
                next_change: None
            }
        );
        let bad = spec("Mars/Base", &[("daily", "00:00", "12:00", 9)]);
        assert_eq!(
            desired_replicas(&bad, at("2026-03-02T01:00:00Z")).replicas,
            2
        );
    }
}
