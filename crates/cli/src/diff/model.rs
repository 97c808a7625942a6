//! The change model of `steward diff`: what one push would do to the cluster, per spec.
//! Pure data; the three renderings are in [`super::output`]. Its JSON form is the
//! `--output json` document (shape version [`FORMAT_VERSION`], documented in
//! docs/operations.md): field names and enum words are stable; a new field may appear.

use serde::Serialize;

/// Version of the JSON document; bumped on any incompatible change of its shape.
pub const FORMAT_VERSION: u32 = 1;

/// The whole preview.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Shape version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// The push source whose keys `--prune` would delete.
    pub source: String,
    /// Every spec the push would create, update or delete, and every invalid document,
    /// sorted by key (documents without a key by file).
    pub specs: Vec<SpecDiff>,
    /// Specs whose stored document equals the local one (nothing previewed for them).
    pub unchanged: usize,
    /// Keys this source pushed earlier whose files are gone, kept because `--prune` was
    /// not given.
    pub stale: Vec<String>,
}

/// What happens to one spec's document in Consul KV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SpecAction {
    /// A new key.
    Create,
    /// A changed document.
    Update,
    /// Pruned: the key and, through the operator, every object it owns are deleted.
    Delete,
    /// The document is invalid: nothing would be pushed.
    Invalid,
}

impl SpecAction {
    /// The word used in every rendering.
    pub fn as_str(self) -> &'static str {
        match self {
            SpecAction::Create => "create",
            SpecAction::Update => "update",
            SpecAction::Delete => "delete",
            SpecAction::Invalid => "invalid",
        }
    }

    /// The one-character marker of the text and markdown renderings.
    pub fn symbol(self) -> &'static str {
        match self {
            SpecAction::Create => "+",
            SpecAction::Update => "~",
            SpecAction::Delete => "-",
            SpecAction::Invalid => "!",
        }
    }
}

/// The preview of one spec.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecDiff {
    /// `namespace/name`; `None` for a document too broken to name its spec.
    pub key: Option<String>,
    /// The local file (`None` for a pruned key).
    pub file: Option<String>,
    /// What happens to the document.
    pub action: SpecAction,
    /// The Nomad job (absent for invalid documents).
    pub nomad: Option<NomadSection>,
    /// Intention changes, in words.
    pub intentions: Vec<IntentionChange>,
    /// Vault policy changes, per path.
    pub vault: Vec<CapabilityChange>,
    /// Edge route changes.
    pub routes: Vec<RouteChange>,
    /// Objects that would be deleted.
    pub deletions: Vec<Deletion>,
    /// Guardrail violations (the spec is then not applied at all).
    pub guardrails: Vec<Problem>,
    /// Other diagnostics of an invalid document.
    pub invalid: Vec<Problem>,
    /// Things the operator would refuse or wait on (an object it does not own, a
    /// missing Nomad namespace).
    pub warnings: Vec<String>,
    /// Reads or plans that failed: this preview is incomplete.
    pub errors: Vec<String>,
}

impl SpecDiff {
    /// An empty preview of `key`.
    pub fn new(key: Option<String>, file: Option<String>, action: SpecAction) -> Self {
        Self {
            key,
            file,
            action,
            nomad: None,
            intentions: Vec::new(),
            vault: Vec::new(),
            routes: Vec::new(),
            deletions: Vec::new(),
            guardrails: Vec::new(),
            invalid: Vec::new(),
            warnings: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// The heading: the key, or the file of a document without one.
    pub fn title(&self) -> String {
        match (&self.key, &self.file) {
            (Some(key), _) => key.clone(),
            (None, Some(file)) => file.clone(),
            (None, None) => "(unnamed)".to_owned(),
        }
    }

    /// One line summing up the sections, e.g. `job: 1 field, 1 canary; intentions: 1
    /// opened; 2 guardrail violations`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(n) = self.nomad.as_ref().filter(|n| n.changes()) {
            parts.push(format!("job: {}", n.summary()));
        }
        if !self.intentions.is_empty() {
            let mut counts: Vec<(IntentionVerb, usize)> = Vec::new();
            for c in &self.intentions {
                match counts.iter_mut().find(|(v, _)| *v == c.verb) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((c.verb, 1)),
                }
            }
            counts.sort();
            let words: Vec<String> = counts
                .iter()
                .map(|(v, n)| format!("{n} {}", v.counted()))
                .collect();
            parts.push(format!("intentions: {}", words.join(", ")));
        }
        if !self.vault.is_empty() {
            let added: usize = self.vault.iter().map(|c| c.added.len()).sum();
            let removed: usize = self.vault.iter().map(|c| c.removed.len()).sum();
            let mut words = Vec::new();
            if added > 0 {
                words.push(format!(
                    "{} added",
                    plural(added, "capability", "capabilities")
                ));
            }
            if removed > 0 {
                words.push(format!(
                    "{} removed",
                    plural(removed, "capability", "capabilities")
                ));
            }
            parts.push(format!("vault: {}", words.join(", ")));
        }
        if !self.routes.is_empty() {
            let mut words = Vec::new();
            for verb in [RouteVerb::Added, RouteVerb::Changed, RouteVerb::Removed] {
                let n = self.routes.iter().filter(|r| r.verb == verb).count();
                if n > 0 {
                    words.push(format!("{n} {}", verb.as_str()));
                }
            }
            parts.push(format!("routes: {}", words.join(", ")));
        }
        if !self.deletions.is_empty() {
            parts.push(format!(
                "{} deleted",
                plural(self.deletions.len(), "object", "objects")
            ));
        }
        if !self.guardrails.is_empty() {
            parts.push(plural(
                self.guardrails.len(),
                "guardrail violation",
                "guardrail violations",
            ));
        }
        if !self.invalid.is_empty() {
            parts.push(plural(self.invalid.len(), "error", "errors"));
        }
        if !self.warnings.is_empty() {
            parts.push(plural(self.warnings.len(), "warning", "warnings"));
        }
        if !self.errors.is_empty() {
            parts.push(format!(
                "{} (preview incomplete)",
                plural(self.errors.len(), "failed read", "failed reads")
            ));
        }
        if parts.is_empty() {
            return "the document changes; nothing in the cluster does".to_owned();
        }
        parts.join("; ")
    }
}

/// `1 object`, `2 objects`.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A diagnostic of the input, as `validate` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// File.
    pub file: String,
    /// Line (1-based).
    pub line: usize,
    /// Column (1-based).
    pub column: usize,
    /// Field path, e.g. `spec.secrets[0].path`.
    pub path: String,
    /// Diagnostic code, e.g. `guardrail-vault-path`.
    pub code: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl From<&steward_spec::Diagnostic> for Problem {
    fn from(d: &steward_spec::Diagnostic) -> Self {
        Self {
            file: d.file.clone(),
            line: d.line,
            column: d.column,
            path: d.path.clone(),
            code: d.code.clone(),
            message: d.message.clone(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = if self.path.is_empty() {
            String::new()
        } else {
            format!(" {}", self.path)
        };
        write!(
            f,
            "{}:{}:{}{path}: {} [{}]",
            self.file, self.line, self.column, self.message, self.code
        )
    }
}

/// What happens to the Nomad job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobChange {
    /// Registered for the first time.
    Create,
    /// Registered again with changes.
    Update,
    /// The plan shows no change.
    Unchanged,
    /// Stopped (the spec is removed).
    Stop,
    /// Purged (the spec is removed, `purge_on_delete`).
    Purge,
}

impl JobChange {
    /// Word.
    pub fn as_str(self) -> &'static str {
        match self {
            JobChange::Create => "create",
            JobChange::Update => "update",
            JobChange::Unchanged => "unchanged",
            JobChange::Stop => "stop",
            JobChange::Purge => "purge",
        }
    }
}

/// The Nomad job's preview: the plan's field changes, placements and failures.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NomadSection {
    /// `<namespace>/<job id>`.
    pub job: String,
    /// What happens to it.
    pub change: JobChange,
    /// Changed fields from the plan's diff (ownership labels left out; not listed for a
    /// new job).
    pub fields: Vec<JobField>,
    /// What the scheduler would do per task group (`Annotations.DesiredTGUpdates`),
    /// groups with nothing to do left out.
    pub placements: Vec<Placement>,
    /// Placements the scheduler could not make (`FailedTGAllocs`), with its reasons.
    pub failures: Vec<PlacementFailure>,
    /// The plan's warnings.
    pub warnings: Vec<String>,
    /// Next launch of a periodic job (RFC 3339), when the plan gives one.
    pub next_periodic_launch: Option<String>,
}

impl NomadSection {
    /// Whether the job changes at all.
    pub fn changes(&self) -> bool {
        self.change != JobChange::Unchanged
            || self.placements.iter().any(Placement::changes)
            || !self.failures.is_empty()
    }

    /// `update, 2 fields, 1 destructive update, 1 group cannot be placed`.
    pub fn summary(&self) -> String {
        let mut parts = vec![self.change.as_str().to_owned()];
        if !self.fields.is_empty() {
            parts.push(plural(self.fields.len(), "field", "fields"));
        }
        let total = |f: fn(&Placement) -> u64| self.placements.iter().map(f).sum::<u64>();
        for (n, one, many) in [
            (total(|p| p.place), "placement", "placements"),
            (total(|p| p.canary), "canary", "canaries"),
            (
                total(|p| p.destructive_update),
                "destructive update",
                "destructive updates",
            ),
            (
                total(|p| p.in_place_update),
                "in-place update",
                "in-place updates",
            ),
            (total(|p| p.stop), "stop", "stops"),
            (total(|p| p.migrate), "migration", "migrations"),
            (total(|p| p.preemptions), "preemption", "preemptions"),
        ] {
            if n > 0 {
                parts.push(plural(n as usize, one, many));
            }
        }
        if !self.failures.is_empty() {
            let allocs: u64 = self.failures.iter().map(|f| f.allocations).sum();
            parts.push(format!(
                "{} cannot be placed",
                plural(allocs as usize, "allocation", "allocations")
            ));
        }
        parts.join(", ")
    }
}

/// One changed field of the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobField {
    /// Path in the job, e.g. `TaskGroups[web].Tasks[app].Config.image`.
    pub path: String,
    /// The live value (`None` when added).
    pub old: Option<String>,
    /// The new value (`None` when deleted).
    pub new: Option<String>,
    /// Nomad's annotations (`forces create/destroy update`...).
    pub annotations: Vec<String>,
}

/// The scheduler's decisions for one task group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    /// Task group.
    pub group: String,
    /// New allocations.
    pub place: u64,
    /// Canaries.
    pub canary: u64,
    /// Allocations replaced.
    pub destructive_update: u64,
    /// Allocations updated in place.
    pub in_place_update: u64,
    /// Allocations stopped.
    pub stop: u64,
    /// Allocations migrated.
    pub migrate: u64,
    /// Allocations of other jobs preempted.
    pub preemptions: u64,
    /// Allocations left as they are.
    pub ignore: u64,
}

impl Placement {
    /// Whether any allocation changes.
    pub fn changes(&self) -> bool {
        self.place
            + self.canary
            + self.destructive_update
            + self.in_place_update
            + self.stop
            + self.migrate
            + self.preemptions
            > 0
    }

    /// `1 canary, 2 unchanged`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (n, word) in [
            (self.place, "to place"),
            (self.canary, "canary"),
            (self.destructive_update, "to replace"),
            (self.in_place_update, "updated in place"),
            (self.stop, "to stop"),
            (self.migrate, "to migrate"),
            (self.preemptions, "preempted"),
            (self.ignore, "unchanged"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {word}"));
            }
        }
        if parts.is_empty() {
            "nothing to do".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

/// A task group the scheduler could not (fully) place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementFailure {
    /// Task group.
    pub group: String,
    /// Allocations that could not be placed.
    pub allocations: u64,
    /// The scheduler's reasons, worded as `nomad job plan` words them.
    pub reasons: Vec<String>,
}

/// Kinds of intention change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IntentionVerb {
    /// Traffic newly allowed.
    Opens,
    /// Traffic no longer allowed.
    Closes,
    /// An explicit deny added.
    Denies,
    /// An explicit deny removed.
    StopsDenying,
    /// Same rules, another order (the first match wins).
    Reorders,
}

impl IntentionVerb {
    /// The verb as written in a sentence.
    pub fn as_str(self) -> &'static str {
        match self {
            IntentionVerb::Opens => "opens",
            IntentionVerb::Closes => "closes",
            IntentionVerb::Denies => "denies",
            IntentionVerb::StopsDenying => "stops denying",
            IntentionVerb::Reorders => "reorders the rules of",
        }
    }

    /// The past participle used in counts (`2 opened`).
    pub fn counted(self) -> &'static str {
        match self {
            IntentionVerb::Opens => "opened",
            IntentionVerb::Closes => "closed",
            IntentionVerb::Denies => "denied",
            IntentionVerb::StopsDenying => "no longer denied",
            IntentionVerb::Reorders => "reordered",
        }
    }
}

/// One intention change: "opens storefront/web-api → trading/order-api (GET /orders)".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IntentionChange {
    /// What changes.
    pub verb: IntentionVerb,
    /// The calling service (its spec key when one spec is known to run it).
    pub source: String,
    /// The destination (the spec key).
    pub destination: String,
    /// Which requests: `all traffic`, `GET, POST /orders`, `POST /settle (exact path)`.
    pub requests: String,
}

impl std::fmt::Display for IntentionChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} → {} ({})",
            self.verb.as_str(),
            self.source,
            self.destination,
            self.requests
        )
    }
}

/// Capabilities added and removed on one Vault policy path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CapabilityChange {
    /// The policy.
    pub policy: String,
    /// The path pattern.
    pub path: String,
    /// Capabilities granted that were not.
    pub added: Vec<String>,
    /// Capabilities no longer granted.
    pub removed: Vec<String>,
}

impl std::fmt::Display for CapabilityChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if !self.added.is_empty() {
            parts.push(format!("adds {}", self.added.join(", ")));
        }
        if !self.removed.is_empty() {
            parts.push(format!("removes {}", self.removed.join(", ")));
        }
        write!(f, "{}: {}", self.path, parts.join("; "))
    }
}

/// Kinds of edge route change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteVerb {
    /// A new route.
    Added,
    /// The same host and path, other settings.
    Changed,
    /// A route that goes away.
    Removed,
}

impl RouteVerb {
    /// Word.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteVerb::Added => "added",
            RouteVerb::Changed => "changed",
            RouteVerb::Removed => "removed",
        }
    }

    /// Marker.
    pub fn symbol(self) -> &'static str {
        match self {
            RouteVerb::Added => "+",
            RouteVerb::Changed => "~",
            RouteVerb::Removed => "-",
        }
    }
}

/// One edge route change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteChange {
    /// What changes.
    pub verb: RouteVerb,
    /// Host name(s), comma-separated.
    pub host: String,
    /// `/api/` (prefix) or `= /health` (exact).
    pub path: String,
    /// The route's settings (added, removed) or each changed setting `old → new`.
    pub detail: String,
}

impl std::fmt::Display for RouteChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}{}: {}",
            self.verb.symbol(),
            self.host,
            self.path,
            self.detail
        )
    }
}

/// An object that would be deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Deletion {
    /// Kind (`nomad-job`, `service-intentions`, `vault-policy`...).
    pub kind: String,
    /// Name (`<namespace>/<id>` for a job, the mount and name for a role).
    pub name: String,
    /// How (`stopped`, `purged`, `deleted`).
    pub how: String,
}

impl std::fmt::Display for Deletion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} ({})", self.kind, self.name, self.how)
    }
}

impl Report {
    /// Specs whose document the push would write or delete.
    pub fn changed(&self) -> usize {
        self.specs
            .iter()
            .filter(|s| s.action != SpecAction::Invalid)
            .count()
    }

    /// Whether any document is invalid.
    pub fn has_invalid(&self) -> bool {
        self.specs.iter().any(|s| s.action == SpecAction::Invalid)
    }

    /// Whether any read failed (the preview is incomplete).
    pub fn has_errors(&self) -> bool {
        self.specs.iter().any(|s| !s.errors.is_empty())
    }

    /// `2 to create, 1 to update, 1 to delete, 3 unchanged, 1 invalid`.
    pub fn counts(&self) -> String {
        let mut parts = Vec::new();
        for (action, word) in [
            (SpecAction::Create, "to create"),
            (SpecAction::Update, "to update"),
            (SpecAction::Delete, "to delete"),
        ] {
            let n = self.specs.iter().filter(|s| s.action == action).count();
            if n > 0 {
                parts.push(format!("{n} {word}"));
            }
        }
        parts.push(format!("{} unchanged", self.unchanged));
        let invalid = self
            .specs
            .iter()
            .filter(|s| s.action == SpecAction::Invalid)
            .count();
        if invalid > 0 {
            parts.push(format!("{invalid} invalid"));
        }
        parts.join(", ")
    }
}
