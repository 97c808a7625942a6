//! IANA time zone lookup against jiff's bundled database (no file system access).

use std::sync::OnceLock;

use jiff::tz::{TimeZone, TimeZoneDatabase};

use crate::suggest::suggest;

fn database() -> &'static TimeZoneDatabase {
    static DB: OnceLock<TimeZoneDatabase> = OnceLock::new();
    DB.get_or_init(TimeZoneDatabase::bundled)
}

/// Looks up an IANA time zone by its exact (case-sensitive) name, e.g. `Asia/Tokyo` or
/// `UTC`, in the time zone database bundled into the binary.
///
/// Case matters because Nomad resolves periodic time zones with Go's
/// `time.LoadLocation`, which is case-sensitive.
#[must_use]
pub fn time_zone(name: &str) -> Option<TimeZone> {
    let tz = database().get(name).ok()?;
    (tz.iana_name() == Some(name)).then_some(tz)
}

/// Checks a time zone name, explaining what is wrong (with a suggestion) if it is.
pub(crate) fn check_time_zone(name: &str) -> Result<TimeZone, String> {
    if let Some(tz) = time_zone(name) {
        return Ok(tz);
    }
    if let Some(canonical) = database()
        .get(name)
        .ok()
        .and_then(|tz| tz.iana_name().map(str::to_owned))
    {
        return Err(format!(
            "time zone `{name}` must be written exactly as in the IANA database: `{canonical}`"
        ));
    }
    let names: Vec<String> = database().available().map(|n| n.to_string()).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    Err(match suggest(name, &refs) {
        Some(best) => format!("unknown time zone `{name}`, did you mean `{best}`?"),
        None => format!(
            "unknown time zone `{name}`: use an IANA name such as `Europe/Berlin`, `Asia/Tokyo` or `UTC`"
        ),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn accepts_exact_iana_names_only() {
        assert!(time_zone("Asia/Tokyo").is_some());
        assert!(time_zone("UTC").is_some());
        assert!(time_zone("asia/tokyo").is_none());
        assert!(time_zone("Mars/Olympus").is_none());
        assert!(time_zone("Etc/Unknown").is_none());
        let wrong_case = check_time_zone("asia/tokyo").unwrap_err();
        assert!(wrong_case.contains("`Asia/Tokyo`"), "{wrong_case}");
        let typo = check_time_zone("Asia/Tokio").unwrap_err();
        assert!(typo.contains("did you mean `Asia/Tokyo`"), "{typo}");
    }
}
