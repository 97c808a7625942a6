//! Schedules: time-of-day scaling windows and periodic (cron) jobs.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{default_time_zone, default_true};
use crate::days::{DaySet, TimeOfDay};

/// Time-of-day scaling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scaling {
    /// IANA time zone the windows are written in, e.g. `Asia/Tokyo`. Default: `UTC`.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// Windows; they must not overlap. Outside every window `replicas` applies.
    /// Default: none.
    #[serde(default)]
    pub windows: Vec<ScalingWindow>,
}

/// A recurring window with its own replica count.
///
/// It starts at `from` on each day in `days` and ends at `to`; when `to` is earlier than
/// `from` it ends at `to` on the following day (crossing midnight).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScalingWindow {
    /// Days on which the window starts (`Mon-Fri`, `Sat,Sun`, `Mon`, `daily`, ...).
    /// Required.
    pub days: DaySet,
    /// Start time `HH:MM` (inclusive). Required.
    pub from: TimeOfDay,
    /// End time `HH:MM` (exclusive); different from `from`. Required.
    pub to: TimeOfDay,
    /// Replicas while the window is active, 0..=1000. Required.
    #[schemars(range(max = 1000))]
    pub replicas: u32,
}

impl ScalingWindow {
    /// Whether the window ends on the day after it starts.
    #[must_use]
    pub fn crosses_midnight(&self) -> bool {
        self.to <= self.from
    }
}

/// Cron schedule for a periodic batch job (Nomad `periodic` block).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Periodic {
    /// Five-field cron expression (`minute hour day-of-month month day-of-week`) or one of
    /// `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@hourly`. Required.
    pub cron: String,
    /// IANA time zone the schedule is evaluated in. Default: `UTC`.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// Skip a launch while the previous one still runs.
    /// Default: `true` (Nomad's own default is `false`).
    #[serde(default = "default_true")]
    pub prohibit_overlap: bool,
}
