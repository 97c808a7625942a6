//! Rules on scaling windows and periodic (cron) jobs.

use croner::parser::{CronParser, Seconds, Year};

use crate::finding::Finding;
use crate::path::FieldPath;
use crate::types::{ScalingWindow, ServiceSpec};
use crate::tz::check_time_zone;

use super::body;

const MINUTES_PER_DAY: u32 = 24 * 60;
const MINUTES_PER_WEEK: u32 = 7 * MINUTES_PER_DAY;
const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

pub(super) fn check(spec: &ServiceSpec, out: &mut Vec<Finding>) {
    scaling(spec, out);
    periodic(spec, out);
}

fn scaling(spec: &ServiceSpec, out: &mut Vec<Finding>) {
    let Some(scaling) = &spec.spec.scaling else {
        return;
    };
    let path = body().key("scaling");
    if let Err(message) = check_time_zone(&scaling.time_zone) {
        out.push(Finding::error(
            path.key("timeZone"),
            "invalid-time-zone",
            message,
        ));
    }
    if scaling.windows.is_empty() {
        out.push(
            Finding::warning(
                path.clone(),
                "no-scaling-windows",
                "`scaling` has no windows and does nothing; add windows or remove it",
            )
            .at_key(),
        );
    }
    let windows = path.key("windows");
    for (j, later) in scaling.windows.iter().enumerate() {
        let item = windows.index(j);
        if later.from == later.to {
            out.push(
                Finding::error(
                    item.key("to"),
                    "empty-window",
                    format!("window starts and ends at {}; `to` must differ from `from` (for a window crossing midnight write e.g. from \"22:00\" to \"06:00\")", later.from),
                )
                .related(item.key("from")),
            );
            continue;
        }
        for (i, earlier) in scaling.windows[..j].iter().enumerate() {
            if earlier.from == earlier.to {
                continue;
            }
            if let Some(minute) = first_overlap(earlier, later) {
                let day = DAY_NAMES[usize::try_from(minute / MINUTES_PER_DAY).unwrap_or(0) % 7];
                let in_day = minute % MINUTES_PER_DAY;
                out.push(
                    Finding::error(
                        item.clone(),
                        "overlapping-windows",
                        format!(
                            "this window ({}) overlaps {} ({}), e.g. on {day} at {:02}:{:02}; windows must not overlap",
                            describe(later),
                            windows.index(i),
                            describe(earlier),
                            in_day / 60,
                            in_day % 60,
                        ),
                    )
                    .related(windows.index(i)),
                );
                break;
            }
        }
    }
}

fn describe(window: &ScalingWindow) -> String {
    format!("{} {}-{}", window.days, window.from, window.to)
}

/// The window's occurrences as `[start, end)` minutes of a week starting Monday 00:00,
/// wrapped at the week's end.
pub(crate) fn weekly_intervals(window: &ScalingWindow) -> Vec<(u32, u32)> {
    let from = u32::from(window.from.minutes_since_midnight());
    let to = u32::from(window.to.minutes_since_midnight());
    let length = if to > from {
        to - from
    } else {
        to + MINUTES_PER_DAY - from
    };
    let mut intervals = Vec::new();
    for day in 0..7u8 {
        if !window.days.contains_index(day) {
            continue;
        }
        let start = u32::from(day) * MINUTES_PER_DAY + from;
        let end = start + length;
        if end <= MINUTES_PER_WEEK {
            intervals.push((start, end));
        } else {
            intervals.push((start, MINUTES_PER_WEEK));
            intervals.push((0, end - MINUTES_PER_WEEK));
        }
    }
    intervals
}

/// The first minute of the week (from Monday 00:00) in both windows, if any.
pub(crate) fn first_overlap(a: &ScalingWindow, b: &ScalingWindow) -> Option<u32> {
    let a = weekly_intervals(a);
    let b = weekly_intervals(b);
    a.iter()
        .flat_map(|x| b.iter().map(move |y| (x, y)))
        .filter(|(x, y)| x.0 < y.1 && y.0 < x.1)
        .map(|(x, y)| x.0.max(y.0))
        .min()
}

fn periodic(spec: &ServiceSpec, out: &mut Vec<Finding>) {
    let Some(periodic) = &spec.spec.periodic else {
        return;
    };
    let path = body().key("periodic");
    if let Err(message) = check_cron(&periodic.cron) {
        out.push(Finding::error(path.key("cron"), "invalid-cron", message));
    }
    if let Err(message) = check_time_zone(&periodic.time_zone) {
        out.push(Finding::error(
            path.key("timeZone"),
            "invalid-time-zone",
            message,
        ));
    }
    let s = &spec.spec;
    let mut listeners: Vec<(FieldPath, &str)> = Vec::new();
    if s.port.is_some() {
        listeners.push((body().key("port"), "`port`"));
    }
    if !s.ports.is_empty() {
        listeners.push((body().key("ports"), "`ports`"));
    }
    if s.check.is_some() {
        listeners.push((body().key("check"), "a health check"));
    }
    if !s.allow_from.is_empty() {
        listeners.push((body().key("allowFrom"), "`allowFrom`"));
    }
    if !s.edge.is_empty() {
        listeners.push((body().key("edge"), "edge routes"));
    }
    if s.protocol.is_some() {
        listeners.push((body().key("protocol"), "`protocol`"));
    }
    for (field, what) in listeners {
        out.push(
            Finding::error(
                field,
                "periodic-listener",
                format!("a periodic batch job accepts no connections, so {what} is not allowed; remove it or drop `periodic`"),
            )
            .at_key()
            .related(path.clone()),
        );
    }
    if s.scaling.is_some() {
        out.push(
            Finding::error(
                body().key("scaling"),
                "periodic-scaling",
                "scaling windows apply to long-running services, not to periodic batch jobs",
            )
            .at_key()
            .related(path),
        );
    }
}

/// Checks a cron expression the way Nomad reads it: five fields
/// (`minute hour day-of-month month day-of-week`) or `@yearly`, `@annually`, `@monthly`,
/// `@weekly`, `@daily`, `@hourly`.
pub(crate) fn check_cron(expression: &str) -> Result<(), String> {
    let trimmed = expression.trim();
    if let Some(nickname) = trimmed.strip_prefix('@') {
        return match nickname {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "hourly" => Ok(()),
            _ => Err(format!(
                "unknown cron shortcut `{trimmed}`; use @yearly, @annually, @monthly, @weekly, @daily or @hourly"
            )),
        };
    }
    let fields = trimmed.split_whitespace().count();
    if fields != 5 {
        return Err(format!(
            "cron expression `{expression}` has {fields} fields; write five: minute hour day-of-month month day-of-week (e.g. `0 2 * * *`)"
        ));
    }
    let parser = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build();
    parser
        .parse(trimmed)
        .map(|_| ())
        .map_err(|error| format!("invalid cron expression `{expression}`: {error}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::days::{DaySet, TimeOfDay};

    fn window(days: &str, from: &str, to: &str) -> ScalingWindow {
        ScalingWindow {
            days: DaySet::parse(days).unwrap(),
            from: TimeOfDay::parse(from).unwrap(),
            to: TimeOfDay::parse(to).unwrap(),
            replicas: 1,
        }
    }

    #[test]
    fn detects_overlap_across_midnight_and_week_end() {
        let night = window("Sun", "22:00", "06:00");
        let monday_morning = window("Mon", "05:00", "09:00");
        // Sunday 22:00 to Monday 06:00 wraps the week; Monday 05:00 is inside it.
        assert_eq!(first_overlap(&night, &monday_morning), Some(5 * 60));
        let tuesday = window("Tue", "05:00", "09:00");
        assert_eq!(first_overlap(&night, &tuesday), None);
        let market = window("Mon-Fri", "08:30", "15:30");
        let lunch = window("Wed", "12:00", "13:00");
        assert_eq!(first_overlap(&market, &lunch), Some(2 * 1440 + 12 * 60));
        let adjacent = window("Mon-Fri", "15:30", "18:00");
        assert_eq!(first_overlap(&market, &adjacent), None);
    }

    #[test]
    fn accepts_what_nomad_accepts_for_cron() {
        for ok in [
            "0 2 * * *",
            "*/15 9-17 * * MON-FRI",
            "@daily",
            "@hourly",
            "0 0 1 * *",
        ] {
            assert_eq!(check_cron(ok), Ok(()), "{ok}");
        }
        for bad in [
            "0 2 * *",
            "0 0 2 * * *",
            "61 * * * *",
            "@reboot",
            "0 25 * * *",
            "x y z a b",
        ] {
            assert!(check_cron(bad).is_err(), "{bad}");
        }
    }
}
