//! Day sets (`Mon-Fri`, `Sat,Sun`, `daily`) and wall-clock times (`HH:MM`) for scaling windows.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use jiff::civil::Weekday;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a day set or a time of day was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The day set was empty or had an empty item (`Mon,,Tue`).
    #[error("empty day list item in `{text}` (write e.g. `Mon-Fri`, `Sat,Sun`, `daily`)")]
    EmptyItem {
        /// The whole input.
        text: String,
    },
    /// A name that is not a weekday.
    #[error(
        "unknown day `{day}` (use Mon, Tue, Wed, Thu, Fri, Sat, Sun, a range like `Mon-Fri`, `weekdays`, `weekends` or `daily`)"
    )]
    UnknownDay {
        /// The unknown day as written.
        day: String,
    },
    /// Not `HH:MM` with 00 ≤ HH ≤ 23 and 00 ≤ MM ≤ 59.
    #[error("invalid time `{text}`: write HH:MM on a 24-hour clock, from 00:00 to 23:59")]
    InvalidTime {
        /// The whole input.
        text: String,
    },
}

const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// A set of weekdays.
///
/// Grammar (case-insensitive, spaces around items ignored):
///
/// ```text
/// days  := "daily" | "*" | item ("," item)*
/// item  := day | day "-" day | "weekdays" | "weekends"
/// day   := "Mon" | "Tue" | "Wed" | "Thu" | "Fri" | "Sat" | "Sun"
/// ```
///
/// A range runs forward through the week and may wrap (`Fri-Mon` = Fri, Sat, Sun, Mon).
/// `weekdays` = `Mon-Fri`, `weekends` = `Sat,Sun`. Serialises canonically (`Mon-Fri`,
/// `Sat,Sun`, `Mon,Wed-Fri`, `daily`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DaySet {
    /// Bit i = day i counted from Monday (0) to Sunday (6).
    mask: u8,
}

impl DaySet {
    /// Every day of the week.
    pub const ALL: DaySet = DaySet { mask: 0b111_1111 };
    /// Monday to Friday.
    pub const WEEKDAYS: DaySet = DaySet { mask: 0b001_1111 };
    /// Saturday and Sunday.
    pub const WEEKENDS: DaySet = DaySet { mask: 0b110_0000 };

    /// The set with just `day`.
    #[must_use]
    pub fn single(day: Weekday) -> Self {
        Self {
            mask: 1 << day.to_monday_zero_offset(),
        }
    }

    /// Whether `day` is in the set.
    #[must_use]
    pub fn contains(&self, day: Weekday) -> bool {
        self.mask & (1 << day.to_monday_zero_offset()) != 0
    }

    /// Whether the day with Monday-zero offset `index` (0..=6) is in the set.
    #[must_use]
    pub const fn contains_index(&self, index: u8) -> bool {
        index < 7 && self.mask & (1 << index) != 0
    }

    /// Number of days in the set.
    #[must_use]
    pub const fn len(&self) -> u32 {
        self.mask.count_ones()
    }

    /// Whether the set is empty (never true for a parsed set).
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.mask == 0
    }

    /// The days in the set, Monday first.
    pub fn iter(&self) -> impl Iterator<Item = Weekday> + '_ {
        (0..7i8)
            .filter(|i| self.mask & (1 << i) != 0)
            .filter_map(|i| Weekday::from_monday_zero_offset(i).ok())
    }

    /// Parses the day-set grammar described on [`DaySet`].
    ///
    /// # Errors
    /// Returns [`Error`] for empty items or unknown day names.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let trimmed = text.trim();
        if trimmed.eq_ignore_ascii_case("daily") || trimmed == "*" {
            return Ok(Self::ALL);
        }
        let mut mask = 0u8;
        for item in trimmed.split(',') {
            let item = item.trim();
            if item.is_empty() {
                return Err(Error::EmptyItem {
                    text: text.to_owned(),
                });
            }
            if item.eq_ignore_ascii_case("weekdays") {
                mask |= Self::WEEKDAYS.mask;
                continue;
            }
            if item.eq_ignore_ascii_case("weekends") {
                mask |= Self::WEEKENDS.mask;
                continue;
            }
            match item.split_once('-') {
                Some((from, to)) => {
                    let from = day_index(from.trim())?;
                    let to = day_index(to.trim())?;
                    let mut day = from;
                    loop {
                        mask |= 1 << day;
                        if day == to {
                            break;
                        }
                        day = (day + 1) % 7;
                    }
                }
                None => mask |= 1 << day_index(item)?,
            }
        }
        Ok(Self { mask })
    }
}

fn day_index(name: &str) -> Result<u8, Error> {
    DAY_NAMES
        .iter()
        .position(|d| d.eq_ignore_ascii_case(name))
        .and_then(|i| u8::try_from(i).ok())
        .ok_or_else(|| Error::UnknownDay {
            day: name.to_owned(),
        })
}

impl fmt::Display for DaySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mask == Self::ALL.mask {
            return f.write_str("daily");
        }
        let mut first = true;
        let mut i = 0u8;
        while i < 7 {
            if self.mask & (1 << i) == 0 {
                i += 1;
                continue;
            }
            let start = i;
            while i + 1 < 7 && self.mask & (1 << (i + 1)) != 0 {
                i += 1;
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            let name = |d: u8| DAY_NAMES[usize::from(d)];
            match i - start {
                0 => f.write_str(name(start))?,
                1 => write!(f, "{},{}", name(start), name(i))?,
                _ => write!(f, "{}-{}", name(start), name(i))?,
            }
            i += 1;
        }
        Ok(())
    }
}

impl FromStr for DaySet {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for DaySet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DaySet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<'de, str>::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The JSON Schema `format` name for [`DaySet`] (checked by the loader).
pub const DAYS_FORMAT: &str = "day-set";
/// The JSON Schema `format` name for [`TimeOfDay`] (checked by the loader).
pub const TIME_FORMAT: &str = "hh-mm";

impl JsonSchema for DaySet {
    fn schema_name() -> Cow<'static, str> {
        "DaySet".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": DAYS_FORMAT,
            "description": "Days of the week: `daily` (or `*`), or a comma-separated list of days (Mon..Sun), ranges (`Mon-Fri`, may wrap like `Fri-Mon`), `weekdays` or `weekends`. Case-insensitive.",
            "examples": ["Mon-Fri", "Sat,Sun", "daily"]
        })
    }
}

/// A wall-clock time of day, written `HH:MM` on a 24-hour clock (`00:00` to `23:59`).
///
/// Quote it in YAML (`"08:30"`) so that every YAML reader sees a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimeOfDay {
    hour: u8,
    minute: u8,
}

impl TimeOfDay {
    /// Midnight, `00:00`.
    pub const MIDNIGHT: TimeOfDay = TimeOfDay { hour: 0, minute: 0 };

    /// `hour:minute`, or `None` when out of range.
    #[must_use]
    pub const fn new(hour: u8, minute: u8) -> Option<Self> {
        if hour < 24 && minute < 60 {
            Some(Self { hour, minute })
        } else {
            None
        }
    }

    /// The hour, 0..=23.
    #[must_use]
    pub const fn hour(&self) -> u8 {
        self.hour
    }

    /// The minute, 0..=59.
    #[must_use]
    pub const fn minute(&self) -> u8 {
        self.minute
    }

    /// Minutes since midnight, 0..=1439.
    #[must_use]
    pub const fn minutes_since_midnight(&self) -> u16 {
        self.hour as u16 * 60 + self.minute as u16
    }

    /// The same time as a [`jiff::civil::Time`].
    #[must_use]
    pub fn to_civil(&self) -> jiff::civil::Time {
        // Both fields are range-checked at construction, so this cannot clamp.
        jiff::civil::Time::constant(self.hour as i8, self.minute as i8, 0, 0)
    }

    /// Parses `HH:MM` (two digits each).
    ///
    /// # Errors
    /// Returns [`Error::InvalidTime`] for anything else.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let invalid = || Error::InvalidTime {
            text: text.to_owned(),
        };
        let bytes = text.as_bytes();
        if bytes.len() != 5 || bytes[2] != b':' {
            return Err(invalid());
        }
        let two = |a: u8, b: u8| -> Option<u8> {
            (a.is_ascii_digit() && b.is_ascii_digit()).then(|| (a - b'0') * 10 + (b - b'0'))
        };
        let hour = two(bytes[0], bytes[1]).ok_or_else(invalid)?;
        let minute = two(bytes[3], bytes[4]).ok_or_else(invalid)?;
        Self::new(hour, minute).ok_or_else(invalid)
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

impl FromStr for TimeOfDay {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for TimeOfDay {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<'de, str>::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for TimeOfDay {
    fn schema_name() -> Cow<'static, str> {
        "TimeOfDay".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": TIME_FORMAT,
            "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$",
            "description": "A wall-clock time `HH:MM` on a 24-hour clock, 00:00 to 23:59 (quote it in YAML).",
            "examples": ["08:30", "15:30"]
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges_lists_and_aliases() {
        assert_eq!(DaySet::parse("Mon-Fri").unwrap(), DaySet::WEEKDAYS);
        assert_eq!(DaySet::parse("sat, SUN").unwrap(), DaySet::WEEKENDS);
        assert_eq!(DaySet::parse("daily").unwrap(), DaySet::ALL);
        assert_eq!(DaySet::parse("*").unwrap(), DaySet::ALL);
        assert_eq!(DaySet::parse("weekdays,weekends").unwrap(), DaySet::ALL);
        let wrap = DaySet::parse("Fri-Mon").unwrap();
        assert_eq!(wrap.to_string(), "Mon,Fri-Sun");
        assert!(wrap.contains(Weekday::Sunday) && !wrap.contains(Weekday::Tuesday));
        assert_eq!(DaySet::parse("Mon").unwrap().len(), 1);
    }

    #[test]
    fn rejects_unknown_days_and_empty_items() {
        assert!(matches!(
            DaySet::parse("Mon-Fry"),
            Err(Error::UnknownDay { .. })
        ));
        assert!(matches!(
            DaySet::parse("Mon,,Tue"),
            Err(Error::EmptyItem { .. })
        ));
        assert!(matches!(DaySet::parse(""), Err(Error::EmptyItem { .. })));
    }

    #[test]
    fn day_sets_display_canonically_and_round_trip() {
        for mask in 1u8..=0b111_1111 {
            let set = DaySet { mask };
            assert_eq!(DaySet::parse(&set.to_string()).unwrap(), set, "{set}");
        }
        assert_eq!(DaySet::WEEKDAYS.to_string(), "Mon-Fri");
        assert_eq!(DaySet::WEEKENDS.to_string(), "Sat,Sun");
    }

    #[test]
    fn times_of_day_are_strict_hh_mm() {
        assert_eq!(
            TimeOfDay::parse("08:30").unwrap().minutes_since_midnight(),
            510
        );
        assert_eq!(TimeOfDay::parse("23:59").unwrap().to_string(), "23:59");
        for bad in ["8:30", "24:00", "12:60", "12-30", "12:3a", " 12:30"] {
            assert!(TimeOfDay::parse(bad).is_err(), "{bad}");
        }
    }
}
