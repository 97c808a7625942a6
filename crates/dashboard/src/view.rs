//! The dashboard's decisions, pure: what needs attention first, filtering, pagination,
//! the count per phase, ages, and the spec page's owned objects (status, planned
//! writes and desired bodies joined per object). The templates only lay these out.

use std::collections::BTreeMap;

use serde_json::Value;
use steward_operator::status::{ConditionStatus, ObjectState};
use steward_operator::{Phase, StatusDoc};

/// Rows per overview page.
pub const PAGE_SIZE: usize = 50;

/// How urgently a spec needs a person, most urgent first (the overview's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Attention {
    /// A failed write, a failed deployment, a conflict or an invalid document.
    Failing,
    /// Waiting for an approval.
    Blocked,
    /// On its way: pending, progressing, deleting, or a status older than the spec.
    InProgress,
    /// Synced at the spec's current generation.
    Healthy,
}

impl Attention {
    /// Of a phase, at the spec's generation (`current`: the status describes the stored
    /// generation; a `Synced` status of an older one is still on its way).
    #[must_use]
    pub fn of(phase: Option<Phase>, current: bool) -> Self {
        match phase {
            Some(Phase::Error | Phase::Degraded | Phase::Conflict | Phase::Invalid) => {
                Self::Failing
            }
            Some(Phase::Blocked) => Self::Blocked,
            Some(Phase::Synced) if current => Self::Healthy,
            Some(Phase::Synced | Phase::Pending | Phase::Progressing | Phase::Deleting) | None => {
                Self::InProgress
            }
        }
    }

    /// A CSS class and word for it.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Failing => "failing",
            Self::Blocked => "blocked",
            Self::InProgress => "in-progress",
            Self::Healthy => "healthy",
        }
    }
}

/// The order of phases within one [`Attention`] group (worst first).
fn phase_rank(phase: Option<Phase>) -> u8 {
    match phase {
        Some(Phase::Error) => 0,
        Some(Phase::Degraded) => 1,
        Some(Phase::Conflict) => 2,
        Some(Phase::Invalid) => 3,
        Some(Phase::Blocked) => 4,
        Some(Phase::Deleting) => 5,
        Some(Phase::Progressing) => 6,
        Some(Phase::Pending) => 7,
        None => 8,
        Some(Phase::Synced) => 9,
    }
}

/// One spec in the overview.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecRow {
    /// `<ns>/<name>`.
    pub key: String,
    /// The stored spec's generation (`None`: the key is gone, its status remains).
    pub generation: Option<u64>,
    /// The status's phase (`None`: no status yet).
    pub phase: Option<Phase>,
    /// The generation the status describes.
    pub observed: Option<u64>,
    /// The status's one line.
    pub message: String,
    /// The latest condition transition.
    pub since: Option<jiff::Timestamp>,
}

impl SpecRow {
    /// A row from a key, its stored generation and its status.
    #[must_use]
    pub fn new(key: String, generation: Option<u64>, status: Option<&StatusDoc>) -> Self {
        Self {
            key,
            generation,
            phase: status.map(|s| s.phase),
            observed: status.map(|s| s.observed_generation),
            message: status.map_or_else(
                || "no status yet: the operator has not reconciled this spec".to_owned(),
                |s| s.message.clone(),
            ),
            since: status.and_then(|s| {
                s.conditions
                    .iter()
                    .filter_map(|c| c.last_transition_time)
                    .max()
            }),
        }
    }

    /// The namespace part of the key.
    #[must_use]
    pub fn namespace(&self) -> &str {
        self.key.split_once('/').map_or("", |(ns, _)| ns)
    }

    /// Whether the status describes the stored generation.
    #[must_use]
    pub fn current(&self) -> bool {
        match (self.generation, self.observed) {
            (Some(g), Some(o)) => o >= g,
            // A key gone from KV: its status is all there is.
            (None, Some(_)) => true,
            (_, None) => false,
        }
    }

    /// How urgently it needs a person.
    #[must_use]
    pub fn attention(&self) -> Attention {
        Attention::of(self.phase, self.current())
    }
}

/// Every spec as a row: the stored specs (key, generation) with their statuses, and
/// the statuses of keys already gone (being deleted, or blocked).
#[must_use]
pub fn rows_of(specs: Vec<(String, u64)>, statuses: Vec<(String, StatusDoc)>) -> Vec<SpecRow> {
    let mut statuses: std::collections::HashMap<String, StatusDoc> = statuses.into_iter().collect();
    let mut out: Vec<SpecRow> = specs
        .into_iter()
        .map(|(key, generation)| {
            let status = statuses.remove(&key);
            SpecRow::new(key, Some(generation), status.as_ref())
        })
        .collect();
    out.extend(
        statuses
            .into_iter()
            .map(|(key, status)| SpecRow::new(key, None, Some(&status))),
    );
    out
}

/// Sorts rows by what needs attention first: failing, blocked, on its way, synced;
/// within a group the worse phase first, then the key.
pub fn sort_by_attention(rows: &mut [SpecRow]) {
    rows.sort_by(|a, b| {
        (a.attention(), phase_rank(a.phase), &a.key).cmp(&(
            b.attention(),
            phase_rank(b.phase),
            &b.key,
        ))
    });
}

/// A phase filter: one phase, or "no status yet".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseFilter {
    /// This phase.
    Is(Phase),
    /// No status yet.
    None,
}

/// The overview's filter (every part optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Exactly this namespace.
    pub namespace: Option<String>,
    /// This phase.
    pub phase: Option<PhaseFilter>,
    /// Case-insensitive text found in the key or the message.
    pub text: Option<String>,
}

/// The overview's query string, as sent by its form (`?ns=&phase=&q=&page=`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct OverviewQuery {
    /// Namespace.
    pub ns: Option<String>,
    /// Phase name, or `none`.
    pub phase: Option<String>,
    /// Text.
    pub q: Option<String>,
    /// 1-based page.
    pub page: Option<String>,
}

/// A query the overview cannot show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// `phase=` names no phase.
    #[error("unknown phase {0:?}: use one of {phases} or none", phases = phase_names())]
    UnknownPhase(String),
    /// `page=` is not a positive number.
    #[error("page {0:?} is not a page number (1, 2, ...)")]
    BadPage(String),
}

fn phase_names() -> String {
    Phase::ALL
        .iter()
        .map(Phase::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

fn non_empty(s: Option<&String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

impl OverviewQuery {
    /// The filter and the 1-based page it asks for.
    ///
    /// # Errors
    /// [`QueryError`] for an unknown phase or a page that is not a positive number.
    pub fn parse(&self) -> Result<(Filter, usize), QueryError> {
        let phase = match non_empty(self.phase.as_ref()) {
            None => None,
            Some(p) if p.eq_ignore_ascii_case("none") => Some(PhaseFilter::None),
            Some(p) => Some(PhaseFilter::Is(
                Phase::ALL
                    .into_iter()
                    .find(|ph| ph.as_str().eq_ignore_ascii_case(&p))
                    .ok_or(QueryError::UnknownPhase(p))?,
            )),
        };
        let page = match non_empty(self.page.as_ref()) {
            None => 1,
            Some(p) => p
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or(QueryError::BadPage(p))?,
        };
        Ok((
            Filter {
                namespace: non_empty(self.ns.as_ref()),
                phase,
                text: non_empty(self.q.as_ref()),
            },
            page,
        ))
    }
}

impl Filter {
    /// Whether a row passes.
    #[must_use]
    pub fn matches(&self, row: &SpecRow) -> bool {
        if let Some(ns) = &self.namespace
            && row.namespace() != ns
        {
            return false;
        }
        match self.phase {
            Some(PhaseFilter::Is(p)) if row.phase != Some(p) => return false,
            Some(PhaseFilter::None) if row.phase.is_some() => return false,
            _ => {}
        }
        if let Some(text) = &self.text {
            let text = text.to_lowercase();
            if !row.key.to_lowercase().contains(&text)
                && !row.message.to_lowercase().contains(&text)
            {
                return false;
            }
        }
        true
    }

    /// Whether anything filters.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// The query string for this filter at `page` (without the `?`), for links.
    #[must_use]
    pub fn query(&self, page: usize) -> String {
        let mut parts = Vec::new();
        if let Some(ns) = &self.namespace {
            parts.push(format!("ns={}", encode(ns)));
        }
        match self.phase {
            Some(PhaseFilter::Is(p)) => parts.push(format!("phase={}", p.as_str())),
            Some(PhaseFilter::None) => parts.push("phase=none".to_owned()),
            None => {}
        }
        if let Some(q) = &self.text {
            parts.push(format!("q={}", encode(q)));
        }
        if page > 1 {
            parts.push(format!("page={page}"));
        }
        parts.join("&")
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
#[must_use]
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where one page sits in the filtered rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageInfo {
    /// 1-based page shown (clamped to the last page).
    pub page: usize,
    /// Pages in all (at least 1).
    pub pages: usize,
    /// First row shown (0-based, inclusive).
    pub start: usize,
    /// Past the last row shown.
    pub end: usize,
}

/// The rows of `page` (1-based, clamped to the last) among `total`, `size` per page.
#[must_use]
pub fn paginate(total: usize, page: usize, size: usize) -> PageInfo {
    let size = size.max(1);
    let pages = total.div_ceil(size).max(1);
    let page = page.clamp(1, pages);
    let start = ((page - 1) * size).min(total);
    let end = (start + size).min(total);
    PageInfo {
        page,
        pages,
        start,
        end,
    }
}

/// How many specs are in each phase, every phase listed (in [`Phase::ALL`] order), and
/// how many have no status yet.
#[must_use]
pub fn phase_counts(rows: &[SpecRow]) -> (Vec<(Phase, usize)>, usize) {
    let mut counts: Vec<(Phase, usize)> = Phase::ALL.iter().map(|p| (*p, 0)).collect();
    let mut none = 0;
    for row in rows {
        match row.phase {
            Some(p) => {
                if let Some(c) = counts.iter_mut().find(|(q, _)| *q == p) {
                    c.1 += 1;
                }
            }
            None => none += 1,
        }
    }
    (counts, none)
}

/// What the overview shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Overview {
    /// Specs per phase, over every spec (not only the filtered ones).
    pub counts: Vec<(Phase, usize)>,
    /// Specs without a status yet.
    pub no_status: usize,
    /// Namespaces with their spec counts (the filter's choices).
    pub namespaces: Vec<(String, usize)>,
    /// Every spec.
    pub total: usize,
    /// Specs passing the filter.
    pub matched: usize,
    /// The filter.
    pub filter: Filter,
    /// The page shown.
    pub page: PageInfo,
    /// The rows of that page, most urgent first.
    pub rows: Vec<SpecRow>,
}

/// Builds the overview of `rows` for `filter` at `page`.
#[must_use]
pub fn overview(rows: Vec<SpecRow>, filter: Filter, page: usize) -> Overview {
    let (counts, no_status) = phase_counts(&rows);
    let mut namespaces: BTreeMap<String, usize> = BTreeMap::new();
    for row in &rows {
        *namespaces.entry(row.namespace().to_owned()).or_default() += 1;
    }
    let total = rows.len();
    let mut matched: Vec<SpecRow> = rows.into_iter().filter(|r| filter.matches(r)).collect();
    sort_by_attention(&mut matched);
    let info = paginate(matched.len(), page, PAGE_SIZE);
    let count = matched.len();
    let shown = matched.drain(info.start..info.end).collect();
    Overview {
        counts,
        no_status,
        namespaces: namespaces.into_iter().collect(),
        total,
        matched: count,
        filter,
        page: info,
        rows: shown,
    }
}

/// A duration for people: `45s`, `12m`, `3h 5m`, `2d 4h`; `just now` under a second,
/// and `in the future` for a clock ahead of ours.
#[must_use]
pub fn age(now: jiff::Timestamp, then: jiff::Timestamp) -> String {
    let secs = now.as_second() - then.as_second();
    if secs < 0 {
        return "in the future".to_owned();
    }
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m, s) {
        (0, 0, 0, 0) => "just now".to_owned(),
        (0, 0, 0, s) => format!("{s}s"),
        (0, 0, m, _) => format!("{m}m"),
        (0, h, 0, _) => format!("{h}h"),
        (0, h, m, _) => format!("{h}h {m}m"),
        (d, 0, _, _) => format!("{d}d"),
        (d, h, _, _) => format!("{d}d {h}h"),
    }
}

/// [`age`] as a phrase: `45s ago`, `just now`, `in the future`.
#[must_use]
pub fn ago(now: jiff::Timestamp, then: jiff::Timestamp) -> String {
    match now.as_second() - then.as_second() {
        0 | i64::MIN..0 => age(now, then),
        _ => format!("{} ago", age(now, then)),
    }
}

/// A condition as the spec page shows it.
#[must_use]
pub fn condition_class(status: ConditionStatus, type_: &str) -> &'static str {
    // `Degraded` holding is bad news; every other condition holding is good news.
    let good = match status {
        ConditionStatus::True => type_ != steward_operator::status::DEGRADED,
        ConditionStatus::False => type_ == steward_operator::status::DEGRADED,
        ConditionStatus::Unknown => return "unknown",
    };
    if good { "good" } else { "bad" }
}

/// One differing owned field: desired against live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDiff {
    /// Where (`TaskGroups[web].Count`).
    pub path: String,
    /// The desired value as JSON (`None`: should not exist).
    pub desired: Option<String>,
    /// The live value as JSON (`None`: missing on the server).
    pub live: Option<String>,
}

/// What a reconcile would do to one object now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Desired equals live in every owned field.
    InSync,
    /// Missing on the server.
    Create,
    /// Differs: these owned fields.
    Update(Vec<FieldDiff>),
    /// Owned, no longer rendered.
    Delete,
    /// Exists and is someone else's.
    Conflict(String),
    /// Not known (the live view could not be read; see the page's note).
    Unknown,
}

/// One owned object on the spec page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectView {
    /// Kind (`nomad-job`...).
    pub kind: String,
    /// Name.
    pub name: String,
    /// Its state in the status (`None`: not in the status yet).
    pub state: Option<ObjectState>,
    /// The status's detail.
    pub message: Option<String>,
    /// What a reconcile would do now.
    pub plan: Plan,
    /// The desired body, pretty JSON (or the policy's HCL).
    pub desired: Option<String>,
}

fn show(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The desired body of one object inside the `desired` document of
/// `GET /api/v1/specs/{ns}/{name}`.
#[must_use]
pub fn desired_body(desired: &Value, kind: &str, name: &str) -> Option<String> {
    let body = match kind {
        "nomad-job" => desired.pointer("/nomad_job/job"),
        "service-defaults" => desired.pointer("/service_defaults/body"),
        "service-intentions" => desired.pointer("/service_intentions/body"),
        "vault-role" => desired.pointer("/vault_role/body"),
        "vault-policy" => {
            return desired
                .pointer("/vault_policy/hcl")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        "http-route" => desired
            .get("http_routes")
            .and_then(Value::as_array)
            .and_then(|routes| routes.iter().find(|r| r["name"] == name))
            .and_then(|r| r.get("body")),
        _ => None,
    }?;
    serde_json::to_string_pretty(body).ok()
}

/// Joins the status's objects with the planned writes and the desired bodies of
/// `GET /api/v1/specs/{ns}/{name}`'s `desired` and `diff`: one row per object, in the
/// status's order, then any object only the plan knows.
#[must_use]
pub fn objects(status: Option<&StatusDoc>, desired: &Value, diff: &Value) -> Vec<ObjectView> {
    let plan_of = |kind: &str, name: &str| -> Plan {
        let same = |v: &Value| v["kind"] == kind && v["name"] == name;
        let list = |field: &str| {
            diff.get(field)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        if let Some(c) = list("conflicts").iter().find(|v| same(v)) {
            return Plan::Conflict(c["message"].as_str().unwrap_or_default().to_owned());
        }
        if let Some(step) = list("steps").iter().find(|v| same(v)) {
            return match step["action"].as_str() {
                Some("create") => Plan::Create,
                Some("delete") => Plan::Delete,
                _ => Plan::Update(
                    step["changes"]
                        .as_array()
                        .map(|changes| {
                            changes
                                .iter()
                                .map(|c| FieldDiff {
                                    path: c["path"].as_str().unwrap_or_default().to_owned(),
                                    desired: c.get("desired").filter(|v| !v.is_null()).map(show),
                                    live: c.get("live").filter(|v| !v.is_null()).map(show),
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                ),
            };
        }
        if list("inSync").iter().any(same) {
            return Plan::InSync;
        }
        Plan::Unknown
    };
    let mut out: Vec<ObjectView> = status
        .map(|s| s.objects.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|o| ObjectView {
            kind: o.kind.clone(),
            name: o.name.clone(),
            state: Some(o.state),
            message: o.message.clone(),
            plan: plan_of(&o.kind, &o.name),
            desired: desired_body(desired, &o.kind, &o.name),
        })
        .collect();
    for field in ["conflicts", "steps", "inSync"] {
        for v in diff
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(kind), Some(name)) = (v["kind"].as_str(), v["name"].as_str()) else {
                continue;
            };
            if out.iter().any(|o| o.kind == kind && o.name == name) {
                continue;
            }
            out.push(ObjectView {
                kind: kind.to_owned(),
                name: name.to_owned(),
                state: None,
                message: None,
                plan: plan_of(kind, name),
                desired: desired_body(desired, kind, name),
            });
        }
    }
    out
}

/// Why the plan is not known (`diff.error`), if so.
#[must_use]
pub fn plan_note(diff: &Value) -> Option<String> {
    match diff {
        Value::Null => Some("no live view: the spec is not in the operator's cache".to_owned()),
        _ => diff.get("error").and_then(Value::as_str).map(|e| {
            let waiting: Vec<String> = diff
                .get("waitingFor")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|w| {
                    format!(
                        "{} ({})",
                        w["cache"].as_str().unwrap_or_default(),
                        w["error"].as_str().unwrap_or("not listed yet")
                    )
                })
                .collect();
            if waiting.is_empty() {
                e.to_owned()
            } else {
                format!("{e}: {}", waiting.join("; "))
            }
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
