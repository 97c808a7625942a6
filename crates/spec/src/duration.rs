//! Go-style durations (`10s`, `500ms`, `1h30m`) as a newtype that keeps nanoseconds.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The string was empty.
    #[error("a duration must not be empty (write e.g. `10s`, `500ms`, `1h30m`)")]
    Empty,
    /// A sign was given; durations in a spec are never negative.
    #[error("a duration must not have a sign (write e.g. `10s`)")]
    Signed,
    /// A number was not followed by a unit.
    #[error("missing unit after `{number}` (use one of ns, us, ms, s, m, h)")]
    MissingUnit {
        /// The number that lacks a unit.
        number: String,
    },
    /// A unit that Go's `time.ParseDuration` does not know.
    #[error("unknown unit `{unit}` (use one of ns, us, ms, s, m, h)")]
    UnknownUnit {
        /// The unknown unit as written.
        unit: String,
    },
    /// Something that is neither a digit, a `.` nor a unit letter.
    #[error("invalid duration `{text}` (write e.g. `10s`, `500ms`, `1h30m`)")]
    Invalid {
        /// The whole input.
        text: String,
    },
    /// More than about 584 years.
    #[error("duration `{text}` is too large")]
    Overflow {
        /// The whole input.
        text: String,
    },
}

/// A non-negative duration written the way Go (and therefore Nomad and Consul) writes
/// them: one or more `<number><unit>` parts, units `ns`, `us` (or `µs`), `ms`, `s`, `m`,
/// `h`, decimals allowed (`1.5h`); a bare `0` is zero.
///
/// It serialises back to its canonical form: the non-zero parts from hours down to
/// nanoseconds (`1h30m`, `1s500ms`, `0s`), which parses to the same value.
/// Nomad wants nanoseconds: use [`Duration::as_nanos`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration {
    nanos: u64,
}

const NANOS_PER_MICRO: u64 = 1_000;
const NANOS_PER_MILLI: u64 = 1_000_000;
const NANOS_PER_SEC: u64 = 1_000_000_000;
const NANOS_PER_MIN: u64 = 60 * NANOS_PER_SEC;
const NANOS_PER_HOUR: u64 = 60 * NANOS_PER_MIN;

impl Duration {
    /// Zero.
    pub const ZERO: Duration = Duration { nanos: 0 };

    /// A duration of `nanos` nanoseconds.
    #[must_use]
    pub const fn from_nanos(nanos: u64) -> Self {
        Self { nanos }
    }

    /// A duration of `millis` milliseconds (saturating).
    #[must_use]
    pub const fn from_millis(millis: u64) -> Self {
        Self {
            nanos: millis.saturating_mul(NANOS_PER_MILLI),
        }
    }

    /// A duration of `secs` seconds (saturating).
    #[must_use]
    pub const fn from_secs(secs: u64) -> Self {
        Self {
            nanos: secs.saturating_mul(NANOS_PER_SEC),
        }
    }

    /// A duration of `mins` minutes (saturating).
    #[must_use]
    pub const fn from_mins(mins: u64) -> Self {
        Self {
            nanos: mins.saturating_mul(NANOS_PER_MIN),
        }
    }

    /// Nanoseconds, the unit of every duration in Nomad's job JSON.
    #[must_use]
    pub const fn as_nanos(&self) -> u64 {
        self.nanos
    }

    /// Whole milliseconds (truncated).
    #[must_use]
    pub const fn as_millis(&self) -> u64 {
        self.nanos / NANOS_PER_MILLI
    }

    /// Whole seconds (truncated).
    #[must_use]
    pub const fn as_secs(&self) -> u64 {
        self.nanos / NANOS_PER_SEC
    }

    /// Whether this is zero.
    #[must_use]
    pub const fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// The same duration as a [`std::time::Duration`].
    #[must_use]
    pub const fn as_std(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.nanos)
    }

    /// Parses a Go-style duration.
    ///
    /// # Errors
    /// Returns [`Error`] when the text is empty, signed, has an unknown or missing unit,
    /// or exceeds `u64` nanoseconds.
    pub fn parse(text: &str) -> Result<Self, Error> {
        if text.is_empty() {
            return Err(Error::Empty);
        }
        if text.starts_with(['-', '+']) {
            return Err(Error::Signed);
        }
        if text == "0" {
            return Ok(Self::ZERO);
        }
        let invalid = || Error::Invalid {
            text: text.to_owned(),
        };
        let overflow = || Error::Overflow {
            text: text.to_owned(),
        };
        let mut total: u64 = 0;
        let mut rest = text;
        while !rest.is_empty() {
            let int_len = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            let (int_part, after_int) = rest.split_at(int_len);
            let (frac_part, after_num) = match after_int.strip_prefix('.') {
                Some(after_dot) => {
                    let frac_len = after_dot
                        .find(|c: char| !c.is_ascii_digit())
                        .unwrap_or(after_dot.len());
                    after_dot.split_at(frac_len)
                }
                None => ("", after_int),
            };
            let had_dot = after_int.starts_with('.');
            if int_part.is_empty() || (had_dot && frac_part.is_empty()) {
                return Err(invalid());
            }
            let unit_len = after_num
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(after_num.len());
            let (unit, after_unit) = after_num.split_at(unit_len);
            if unit.is_empty() {
                return Err(Error::MissingUnit {
                    number: text[..text.len() - after_num.len()].to_owned(),
                });
            }
            let scale = match unit {
                "ns" => 1,
                "us" | "µs" | "μs" => NANOS_PER_MICRO,
                "ms" => NANOS_PER_MILLI,
                "s" => NANOS_PER_SEC,
                "m" => NANOS_PER_MIN,
                "h" => NANOS_PER_HOUR,
                other if other.chars().all(char::is_alphabetic) => {
                    return Err(Error::UnknownUnit {
                        unit: other.to_owned(),
                    });
                }
                _ => return Err(invalid()),
            };
            let int: u64 = int_part.parse().map_err(|_| overflow())?;
            let mut part = int.checked_mul(scale).ok_or_else(overflow)?;
            // Fractions: accumulate digit by digit so `1.5h` is exact and never uses floats.
            let mut divisor: u64 = 1;
            for digit in frac_part.bytes() {
                divisor = match divisor.checked_mul(10) {
                    Some(d) => d,
                    None => break, // beyond nanosecond precision: ignore the remaining digits
                };
                let d = u64::from(digit - b'0');
                let add = (u128::from(d) * u128::from(scale)) / u128::from(divisor);
                part = part
                    .checked_add(u64::try_from(add).map_err(|_| overflow())?)
                    .ok_or_else(overflow)?;
            }
            total = total.checked_add(part).ok_or_else(overflow)?;
            rest = after_unit;
        }
        Ok(Self { nanos: total })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.nanos;
        for (scale, unit) in [
            (NANOS_PER_HOUR, "h"),
            (NANOS_PER_MIN, "m"),
            (NANOS_PER_SEC, "s"),
            (NANOS_PER_MILLI, "ms"),
            (NANOS_PER_MICRO, "us"),
            (1, "ns"),
        ] {
            let count = rest / scale;
            if count > 0 {
                write!(f, "{count}{unit}")?;
            }
            rest %= scale;
        }
        Ok(())
    }
}

impl FromStr for Duration {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl From<Duration> for std::time::Duration {
    fn from(value: Duration) -> Self {
        value.as_std()
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<'de, str>::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The JSON Schema `format` name for [`Duration`] (checked by the loader).
pub const FORMAT: &str = "go-duration";

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": FORMAT,
            "pattern": "^(0|([0-9]+(\\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h))+)$",
            "description": "A Go-style duration: one or more <number><unit> parts with units ns, us, ms, s, m, h (e.g. `10s`, `500ms`, `1h30m`).",
            "examples": ["10s", "500ms", "1h30m"]
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_style_durations_to_nanoseconds() {
        assert_eq!(Duration::parse("10s").unwrap().as_nanos(), 10_000_000_000);
        assert_eq!(Duration::parse("500ms").unwrap().as_nanos(), 500_000_000);
        assert_eq!(
            Duration::parse("1h30m").unwrap().as_nanos(),
            90 * 60 * 1_000_000_000
        );
        assert_eq!(
            Duration::parse("1.5h").unwrap(),
            Duration::parse("90m").unwrap()
        );
        assert_eq!(Duration::parse("0").unwrap(), Duration::ZERO);
        assert_eq!(Duration::parse("250us").unwrap().as_nanos(), 250_000);
        assert_eq!(Duration::parse("250µs").unwrap().as_nanos(), 250_000);
        assert_eq!(Duration::parse("0.001s").unwrap().as_nanos(), 1_000_000);
    }

    #[test]
    fn rejects_malformed_durations_with_a_reason() {
        assert_eq!(Duration::parse(""), Err(Error::Empty));
        assert_eq!(Duration::parse("-5s"), Err(Error::Signed));
        assert!(matches!(
            Duration::parse("10"),
            Err(Error::MissingUnit { .. })
        ));
        assert!(matches!(
            Duration::parse("10 s"),
            Err(Error::Invalid { .. })
        ));
        assert!(matches!(
            Duration::parse("5d"),
            Err(Error::UnknownUnit { .. })
        ));
        assert!(matches!(Duration::parse("s"), Err(Error::Invalid { .. })));
        assert!(matches!(Duration::parse("1.s"), Err(Error::Invalid { .. })));
        assert!(matches!(
            Duration::parse("99999999999999h"),
            Err(Error::Overflow { .. })
        ));
    }

    #[test]
    fn displays_the_canonical_form_that_parses_back() {
        assert_eq!(Duration::parse("90s").unwrap().to_string(), "1m30s");
        assert_eq!(Duration::parse("1500ms").unwrap().to_string(), "1s500ms");
        assert_eq!(Duration::ZERO.to_string(), "0s");
        assert_eq!(Duration::parse("5m").unwrap().to_string(), "5m");
        for text in ["1h30m", "1s500ms", "250us", "1h1ns", "0s"] {
            let d = Duration::parse(text).unwrap();
            assert_eq!(Duration::parse(&d.to_string()).unwrap(), d);
        }
    }

    #[test]
    fn serialises_as_the_canonical_string() {
        let d: Duration = serde_json::from_str("\"120s\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"2m\"");
        assert!(serde_json::from_str::<Duration>("\"2 minutes\"").is_err());
    }
}
