//! Periodic (cron) specs: validation and the next launch time.

use croner::{CivilDate, CivilDateTime, CivilTime, CronDateTime, Resolution, Weekday};
use serde_json::Value;
use std::cmp::Ordering;

/// Parses a cron spec the way Nomad's `cronexpr` accepts it (5, 6 or 7 fields,
/// `@daily`-style nicknames).
///
/// # Errors
/// A description of what is wrong with the spec.
pub(crate) fn parse_cron(spec: &str) -> Result<croner::Cron, String> {
    let parser = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .build();
    parser.parse(spec).map_err(|e| e.to_string())
}

/// A wall-clock date and time (the search runs in the job's time zone).
#[derive(Debug, Clone, Copy)]
struct Civ(jiff::civil::DateTime);

impl CronDateTime for Civ {
    fn to_civil(&self) -> CivilDateTime {
        let d = self.0;
        CivilDateTime::new(
            CivilDate::from_parts_unchecked(i32::from(d.year()), d.month() as u32, d.day() as u32),
            CivilTime::from_parts_unchecked(d.hour() as u32, d.minute() as u32, d.second() as u32),
        )
    }
    fn civil_weekday(&self) -> Weekday {
        Weekday::from_days_from_sunday(self.0.weekday().to_sunday_zero_offset() as u32)
    }
    fn resolve_civil(
        &self,
        civil: CivilDateTime,
    ) -> Result<Resolution<Self>, croner::errors::CronError> {
        let year =
            i16::try_from(civil.year()).map_err(|_| croner::errors::CronError::InvalidDate)?;
        jiff::civil::DateTime::new(
            year,
            civil.month() as i8,
            civil.day() as i8,
            civil.hour() as i8,
            civil.minute() as i8,
            civil.second() as i8,
            0,
        )
        .map(|d| Resolution::Single(Civ(d)))
        .map_err(|_| croner::errors::CronError::InvalidDate)
    }
    fn checked_add_seconds(&self, seconds: i64) -> Option<Self> {
        self.0
            .checked_add(jiff::SignedDuration::from_secs(seconds))
            .ok()
            .map(Civ)
    }
    fn cmp_instant(&self, other: &Self) -> Ordering {
        self.0.cmp(&other.0)
    }
}

/// The next launch after now, RFC 3339 in UTC, for a canonical job's `Periodic`.
pub(crate) fn next_launch(periodic: &Value) -> Option<String> {
    if !periodic
        .get("Enabled")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        return None;
    }
    let spec = periodic.get("Spec").and_then(Value::as_str)?;
    let tz_name = periodic
        .get("TimeZone")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("UTC");
    let tz = jiff::tz::TimeZone::get(tz_name).ok()?;
    let cron = parse_cron(spec).ok()?;
    let now = jiff::Timestamp::now()
        .to_zoned_datetime(tz.clone())
        .datetime();
    let next = cron.find_next_occurrence(&Civ(now), false).ok()?;
    let zoned = next.0.to_zoned_datetime(tz).ok()?;
    Some(zoned.timestamp().to_string())
}
