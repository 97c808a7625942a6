//! The pages, as pure functions from view models to HTML (maud escapes every
//! interpolated value). Semantic HTML that reads correctly without JavaScript; the
//! script only refreshes the regions marked `data-live` (see `assets/dashboard.js`).

use maud::{DOCTYPE, Markup, html};
use steward_operator::detect::Detected;
use steward_operator::status::{ConditionStatus, ObjectState};
use steward_operator::{BlockedSet, Phase, StatusDoc};

use crate::view::{self, Attention, ObjectView, Overview, PhaseFilter, Plan};

/// Objects of a blocked deletion set listed on the page (the rest are counted).
pub const GC_OBJECTS_SHOWN: usize = 200;

/// Which page the navigation marks as current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Overview and spec pages.
    Specs,
    /// Garbage collection.
    Gc,
    /// Cluster.
    Cluster,
}

/// What the live script follows on a page: the SSE stream's `key` (none: every key),
/// and the render time (events up to it are on the page already).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    /// `?key=` of `/api/v1/events`; `None` for every key.
    pub key: Option<String>,
    /// The page's render time (RFC 3339).
    pub rendered_at: jiff::Timestamp,
}

fn layout(title: &str, section: Section, live: Option<&Live>, body: Markup) -> Markup {
    let current = |s: Section| (s == section).then_some("page");
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Steward" }
                link rel="stylesheet" href="/assets/dashboard.css";
                script src="/assets/dashboard.js" defer {}
            }
            body data-stream=[live.map(|_| "/api/v1/events")]
                data-stream-key=[live.and_then(|l| l.key.as_deref())]
                data-rendered-at=[live.map(|l| l.rendered_at.to_string())] {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    span.brand { "Steward" }
                    nav aria-label="Sections" {
                        ul {
                            li { a href="/" aria-current=[current(Section::Specs)] { "Specs" } }
                            li { a href="/gc" aria-current=[current(Section::Gc)] { "Garbage collection" } }
                            li { a href="/cluster" aria-current=[current(Section::Cluster)] { "Cluster" } }
                        }
                    }
                    @if live.is_some() {
                        p #live-state .live-state role="status" { "Live updates off (no JavaScript)" }
                    }
                }
                main #main tabindex="-1" { (body) }
            }
        }
    }
}

fn phase_badge(phase: Option<Phase>, attention: Attention) -> Markup {
    html! {
        span class={ "phase " (attention.as_str()) } data-phase=(phase.map_or("none", |p| p.as_str())) {
            (phase.map_or("No status", |p| p.as_str()))
        }
    }
}

fn time_ago(now: jiff::Timestamp, t: Option<jiff::Timestamp>) -> Markup {
    html! {
        @match t {
            Some(t) => time datetime=(t.to_string()) title=(t.to_string()) { (view::ago(now, t)) },
            None => span.muted { "—" },
        }
    }
}

/// The overview: counts per phase, the filter form, one page of specs (most urgent
/// first) and the pagination links.
#[must_use]
pub fn overview(o: &Overview, error: Option<&str>, now: jiff::Timestamp) -> Markup {
    let live = Live {
        key: None,
        rendered_at: now,
    };
    let selected_phase = |p: &str| match o.filter.phase {
        Some(PhaseFilter::Is(q)) => q.as_str() == p,
        Some(PhaseFilter::None) => p == "none",
        None => p.is_empty(),
    };
    let body = html! {
        h1 { "Specs" }
        section aria-labelledby="counts-title" data-live="counts" {
            h2 #counts-title .visually-hidden { "Specs per phase" }
            ul.counts {
                @for (phase, n) in &o.counts {
                    @let attention = Attention::of(Some(*phase), true);
                    li class={ "count " (attention.as_str()) @if *n == 0 { " zero" } } {
                        a href={ "/?phase=" (phase.as_str()) } {
                            span.n { (n) } " " span.label { (phase.as_str()) }
                        }
                    }
                }
                @if o.no_status > 0 {
                    li class="count in-progress" {
                        a href="/?phase=none" { span.n { (o.no_status) } " " span.label { "No status yet" } }
                    }
                }
            }
        }
        form.filter method="get" action="/" role="search" aria-label="Filter specs" {
            label for="f-ns" { "Namespace" }
            select #f-ns name="ns" {
                option value="" selected[o.filter.namespace.is_none()] { "All namespaces" }
                @for (ns, n) in &o.namespaces {
                    option value=(ns) selected[o.filter.namespace.as_deref() == Some(ns.as_str())] {
                        (ns) " (" (n) ")"
                    }
                }
            }
            label for="f-phase" { "Phase" }
            select #f-phase name="phase" {
                option value="" selected[selected_phase("")] { "All phases" }
                @for phase in Phase::ALL {
                    option value=(phase.as_str()) selected[selected_phase(phase.as_str())] { (phase.as_str()) }
                }
                option value="none" selected[selected_phase("none")] { "No status yet" }
            }
            label for="f-q" { "Text" }
            input #f-q type="search" name="q" value=(o.filter.text.as_deref().unwrap_or_default())
                placeholder="name or message";
            button type="submit" { "Filter" }
            @if !o.filter.is_empty() {
                a href="/" { "Clear" }
            }
        }
        @if let Some(error) = error {
            p.error role="alert" { (error) }
        }
        div data-live="specs" {
            p #matched {
                @if o.matched == 0 {
                    "No spec matches (" (o.total) " in all)."
                } @else {
                    "Showing " (o.page.start + 1) "–" (o.page.end) " of " (o.matched)
                    @if o.matched != o.total { " matching (" (o.total) " in all)" }
                    ", what needs attention first."
                }
            }
            @if !o.rows.is_empty() {
                table.specs #specs {
                    caption.visually-hidden { "Specs, what needs attention first" }
                    thead {
                        tr {
                            th scope="col" { "Spec" }
                            th scope="col" { "Phase" }
                            th scope="col" { "Generation" }
                            th scope="col" { "Changed" }
                            th scope="col" { "Message" }
                        }
                    }
                    tbody {
                        @for row in &o.rows {
                            tr data-key=(row.key) {
                                th scope="row" { a href={ "/specs/" (row.key) } { (row.key) } }
                                td { (phase_badge(row.phase, row.attention())) }
                                td.num {
                                    (row.generation.map_or_else(|| "gone".to_owned(), |g| g.to_string()))
                                    @if !row.current() && row.observed.is_some() {
                                        " " span.muted title="the generation the status describes" {
                                            "(status at " (row.observed.unwrap_or_default()) ")"
                                        }
                                    }
                                }
                                td { (time_ago(now, row.since)) }
                                td.message { (row.message) }
                            }
                        }
                    }
                }
            }
            @if o.page.pages > 1 {
                nav.pages aria-label="Pages" {
                    @if o.page.page > 1 {
                        a rel="prev" href={ "/?" (o.filter.query(o.page.page - 1)) } { "← Previous" }
                    }
                    span aria-current="page" { "Page " (o.page.page) " of " (o.page.pages) }
                    @if o.page.page < o.page.pages {
                        a rel="next" href={ "/?" (o.filter.query(o.page.page + 1)) } { "Next →" }
                    }
                }
            }
        }
    };
    layout("Specs", Section::Specs, Some(&live), body)
}

/// One event on a spec page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventView {
    /// When.
    pub time: jiff::Timestamp,
    /// `Normal` or `Warning`.
    pub type_: String,
    /// CamelCase reason.
    pub reason: String,
    /// Message.
    pub message: String,
    /// The object involved.
    pub object: Option<String>,
}

/// Everything the spec page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecPage {
    /// `<ns>/<name>`.
    pub key: String,
    /// The stored document and its generation (`None`: the key is gone).
    pub document: Option<(u64, String)>,
    /// The status.
    pub status: Option<StatusDoc>,
    /// Owned objects, desired against live.
    pub objects: Vec<ObjectView>,
    /// Why the live comparison is not known, if so.
    pub plan_note: Option<String>,
    /// Recent events, newest first.
    pub events: Vec<EventView>,
}

fn state_word(s: ObjectState) -> &'static str {
    match s {
        ObjectState::Synced => "Synced",
        ObjectState::Created => "Created",
        ObjectState::Updated => "Updated",
        ObjectState::Deleted => "Deleted",
        ObjectState::Conflict => "Conflict",
        ObjectState::Pending => "Pending",
        ObjectState::Error => "Error",
    }
}

fn status_word(s: ConditionStatus) -> &'static str {
    match s {
        ConditionStatus::True => "True",
        ConditionStatus::False => "False",
        ConditionStatus::Unknown => "Unknown",
    }
}

fn object_plan(o: &ObjectView) -> Markup {
    html! {
        @match &o.plan {
            Plan::InSync => p.plan.good { "In sync: every owned field of the live object equals the desired one." },
            Plan::Create => p.plan.bad { "Missing on the server: the next reconcile creates it." },
            Plan::Delete => p.plan.bad { "No longer rendered: the next reconcile deletes it." },
            Plan::Conflict(m) => p.plan.bad { "Conflict: " (m) },
            Plan::Unknown => p.plan.muted { "Live comparison not known (see the note above)." },
            Plan::Update(changes) => {
                p.plan.bad { "Differs in " (changes.len()) " owned field" @if changes.len() != 1 { "s" } ": the next reconcile updates it." }
                table.diff {
                    caption.visually-hidden { "Owned fields of " (o.kind) " " (o.name) ": desired against live" }
                    thead { tr { th scope="col" { "Field" } th scope="col" { "Desired" } th scope="col" { "Live" } } }
                    tbody {
                        @for c in changes {
                            tr {
                                th scope="row" { code { (c.path) } }
                                td.desired { @match &c.desired { Some(v) => code { (v) }, None => em { "absent" } } }
                                td.live { @match &c.live { Some(v) => code { (v) }, None => em { "absent" } } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A spec: phase and generations, conditions with reasons and ages, owned objects
/// (desired against live), recent events (kept live by the script), the document.
#[must_use]
pub fn spec(p: &SpecPage, now: jiff::Timestamp) -> Markup {
    let live = Live {
        key: Some(p.key.clone()),
        rendered_at: now,
    };
    let status = p.status.as_ref();
    let generation = p.document.as_ref().map(|(g, _)| *g);
    let row = view::SpecRow::new(p.key.clone(), generation, status);
    let body = html! {
        nav aria-label="Breadcrumb" { a href="/" { "Specs" } " / " (p.key) }
        h1 { (p.key) }
        section #summary aria-label="Phase" data-live="summary"
            data-phase=(row.phase.map_or("none", |ph| ph.as_str()))
            data-observed=(row.observed.map(|o| o.to_string()).unwrap_or_default()) {
            p.summary {
                (phase_badge(row.phase, row.attention())) " "
                @match generation {
                    Some(g) => { "generation " strong { (g) } }
                    None => { "spec removed from KV" }
                }
                @if let Some(o) = row.observed {
                    ", status of generation " strong.observed { (o) }
                }
            }
            @if let Some(s) = status {
                p.message { (s.message) }
            }
        }
        section aria-labelledby="conditions-title" data-live="conditions" {
            h2 #conditions-title { "Conditions" }
            @match status {
                Some(s) if !s.conditions.is_empty() => {
                    table.conditions {
                        thead { tr {
                            th scope="col" { "Condition" } th scope="col" { "Status" }
                            th scope="col" { "Reason" } th scope="col" { "Message" } th scope="col" { "Since" }
                        } }
                        tbody {
                            @for c in &s.conditions {
                                tr {
                                    th scope="row" { (c.type_) }
                                    td class=(view::condition_class(c.status, &c.type_)) { (status_word(c.status)) }
                                    td { (c.reason) }
                                    td.message { (c.message) }
                                    td { (time_ago(now, c.last_transition_time)) }
                                }
                            }
                        }
                    }
                    @if !s.diagnostics.is_empty() {
                        h3 { "Problems in the document" }
                        ul.diagnostics {
                            @for d in &s.diagnostics {
                                li { "line " (d.line) ", column " (d.column) " (" code { (d.path) } "): " (d.message) }
                            }
                        }
                    }
                },
                _ => p.muted { "No conditions yet: the operator has not reconciled this spec." },
            }
        }
        section aria-labelledby="objects-title" data-live="objects" {
            h2 #objects-title { "Owned objects" }
            @if let Some(note) = &p.plan_note {
                p.note role="note" { "Live comparison unavailable: " (note) }
            }
            @if p.objects.is_empty() {
                p.muted { "No owned objects." }
            }
            @for o in &p.objects {
                article.object {
                    h3 { code { (o.kind) } " " (o.name) }
                    p {
                        "State in the status: "
                        strong { (o.state.map_or("not recorded yet", state_word)) }
                        @if let Some(m) = &o.message { " — " (m) }
                    }
                    (object_plan(o))
                    @if let Some(body) = &o.desired {
                        details {
                            summary { "Desired " (o.kind) }
                            pre { code { (body) } }
                        }
                    }
                }
            }
        }
        section aria-labelledby="events-title" {
            h2 #events-title { "Recent events" }
            ol #events .events reversed aria-live="polite" {
                @for e in &p.events {
                    li class=(e.type_.to_lowercase()) data-event=(event_id(e)) {
                        time datetime=(e.time.to_string()) { (e.time.strftime("%H:%M:%S")) }
                        " " span.type { (e.type_) }
                        " " strong.reason { (e.reason) }
                        " " span.message { (e.message) }
                        @if let Some(o) = &e.object { " " span.object { "(" (o) ")" } }
                    }
                }
            }
            @if p.events.is_empty() {
                p.muted #no-events { "No events recorded for this spec." }
            }
        }
        section aria-labelledby="document-title" data-live="document" {
            @match &p.document {
                Some((g, text)) => {
                    h2 #document-title { "Spec document (generation " (g) ")" }
                    pre.yaml { code { (text) } }
                },
                None => {
                    h2 #document-title { "Spec document" }
                    p.muted { "The spec's key is gone from KV." }
                },
            }
        }
    };
    layout(&p.key, Section::Specs, Some(&live), body)
}

/// The id the script uses to not show an event twice (time, reason, message).
#[must_use]
pub fn event_id(e: &EventView) -> String {
    format!("{}|{}|{}", e.time, e.reason, e.message)
}

/// The outcome of an approval, shown on the GC page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Done.
    Approved(String),
    /// Refused, and why.
    Refused(String),
}

/// What the GC page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct GcPage {
    /// The blocked deletion set, if any.
    pub blocked: Option<BlockedSet>,
    /// Whether this instance leads (only the leader collects and approves).
    pub leader: bool,
    /// Whether the operator has an API token (without one nothing can be approved).
    pub token_configured: bool,
    /// The outcome of the approval just posted.
    pub notice: Option<Notice>,
}

/// The GC panel: the blocked deletion set with its digest, and the approval form.
///
/// The form posts the token as a field of a same-origin `POST` (never in a URL, never
/// echoed back), so approving works without JavaScript.
#[must_use]
pub fn gc(p: &GcPage, now: jiff::Timestamp) -> Markup {
    let live = Live {
        key: Some(steward_operator::gc::GC_STATUS_KEY.to_owned()),
        rendered_at: now,
    };
    let body = html! {
        h1 { "Garbage collection" }
        @match &p.notice {
            Some(Notice::Approved(digest)) => p.notice.good #notice role="status" {
                "Approved deletion set " code { (digest) } ": garbage collection is deleting it now."
            },
            Some(Notice::Refused(why)) => p.notice.bad #notice role="alert" { "Not approved: " (why) },
            None => {},
        }
        @if !p.leader {
            p.note role="note" { "This instance does not lead: it neither collects nor approves. Open the leader's dashboard." }
        }
        div data-live="gc" {
            @match &p.blocked {
                None => p #gc-state { "Nothing is blocked: garbage collection deletes what removed specs owned, unasked, within the mass-deletion guard's limits." },
                Some(set) => {
                    p #gc-state .bad {
                        "Blocked by the mass-deletion guard: removing " strong { (set.specs.len()) } " of "
                        (set.owning_specs) " specs would delete " strong { (set.count) } " of "
                        (set.owned) " owned objects. Nothing is deleted until this exact set is approved."
                    }
                    p { "Digest: " code #gc-digest { (set.digest) } }
                    h2 { "Specs whose keys are gone" }
                    ul.gc-specs { @for s in &set.specs { li { (s) } } }
                    h2 { "Objects that would be deleted" }
                    table.gc-objects {
                        thead { tr { th scope="col" { "Owner" } th scope="col" { "Kind" } th scope="col" { "Name" } } }
                        tbody {
                            @for o in set.objects.iter().take(GC_OBJECTS_SHOWN) {
                                tr { td { (o.owner) } td { code { (o.kind.as_str()) } } td { (o.name) } }
                            }
                        }
                    }
                    @if set.objects.len() > GC_OBJECTS_SHOWN {
                        p.muted { "… and " (set.objects.len() - GC_OBJECTS_SHOWN) " more (all in " code { "GET /api/v1/gc" } ")." }
                    }
                    @if p.token_configured {
                        form.approve method="post" action="/gc/approve" {
                            input type="hidden" name="digest" value=(set.digest);
                            label for="gc-token" { "API token" }
                            input #gc-token type="password" name="token" autocomplete="off" required
                                aria-describedby="gc-token-help";
                            p #gc-token-help .muted { "The operator's API token (STEWARD_API_TOKEN). It is sent in this form's body only and never stored." }
                            button #gc-approve type="submit" { "Approve deleting " (set.count) " objects" }
                        }
                    } @else {
                        p.note { "This operator runs without an API token: its API and dashboard are read-only, and nothing can be approved here." }
                    }
                },
            }
        }
    };
    layout("Garbage collection", Section::Gc, Some(&live), body)
}

/// One connected edge proxy (for the edge xDS server, when it exists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeProxy {
    /// The Envoy node id.
    pub node: String,
    /// Where it connects from.
    pub address: String,
    /// The configuration version it acknowledged last.
    pub acked_version: Option<String>,
    /// Whether its last answer was a NACK, and why.
    pub rejected: Option<String>,
}

/// What the cluster page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterPage {
    /// Start-up detection's findings (`None`: it did not run).
    pub detected: Option<Detected>,
    /// The watch caches' health.
    pub caches: Vec<steward_operator::cache::CacheState>,
    /// Connected edge proxies (`None`: no edge xDS server in this process).
    pub edge: Option<Vec<EdgeProxy>>,
}

fn yes_no(v: Option<bool>) -> Markup {
    html! {
        @match v {
            Some(true) => span.good { "yes" },
            Some(false) => span.bad { "no" },
            None => span.unknown { "unknown" },
        }
    }
}

/// The cluster panel: server versions and features from start-up detection, the
/// caches' health, and the connected edge proxies.
#[must_use]
pub fn cluster(p: &ClusterPage) -> Markup {
    let body = html! {
        h1 { "Cluster" }
        section aria-labelledby="servers-title" {
            h2 #servers-title { "Servers" }
            @match &p.detected {
                None => p.note { "Start-up detection did not run in this process: versions and features are not known." },
                Some(d) => {
                    table.servers {
                        thead { tr { th scope="col" { "Server" } th scope="col" { "Version" } th scope="col" { "Minimum" } th scope="col" { "Supported" } th scope="col" { "Detail" } } }
                        tbody {
                            @for s in &d.servers {
                                tr { th scope="row" { (s.product) } td { (s.version.as_deref().unwrap_or("not read")) } td { (s.minimum) } td { (yes_no(s.supported)) } td.message { (s.detail) } }
                            }
                        }
                    }
                    h2 { "Features" }
                    table.features {
                        thead { tr { th scope="col" { "Server" } th scope="col" { "Feature" } th scope="col" { "Available" } th scope="col" { "Detail" } th scope="col" { "Without it" } } }
                        tbody {
                            @for f in &d.features {
                                tr { td { (f.product) } th scope="row" { (f.feature) } td { (yes_no(f.available)) } td.message { (f.detail) } td.message { (f.without) } }
                            }
                        }
                    }
                },
            }
        }
        section aria-labelledby="caches-title" {
            h2 #caches-title { "Watch caches" }
            table.caches {
                thead { tr { th scope="col" { "Cache" } th scope="col" { "Synced" } th scope="col" { "Fresh" } th scope="col" { "Failing" } } }
                tbody {
                    @for c in &p.caches {
                        tr {
                            th scope="row" { (c.name) }
                            td { (yes_no(Some(c.synced))) }
                            td { (yes_no(Some(c.fresh))) }
                            td.message {
                                @match &c.error {
                                    Some(e) => span.bad { (e) @if let Some(s) = c.failing_for_seconds { " (for " (s) " s)" } },
                                    None => "no",
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="edge-title" {
            h2 #edge-title { "Edge proxies" }
            @match &p.edge {
                None => p.muted { "No edge xDS server runs in this process." },
                Some(proxies) if proxies.is_empty() => p.muted { "No edge proxy is connected." },
                Some(proxies) => table.edge {
                    thead { tr { th scope="col" { "Node" } th scope="col" { "Address" } th scope="col" { "Acked version" } th scope="col" { "Last answer" } } }
                    tbody {
                        @for e in proxies {
                            tr {
                                th scope="row" { (e.node) } td { (e.address) }
                                td { (e.acked_version.as_deref().unwrap_or("none yet")) }
                                td { @match &e.rejected { Some(why) => span.bad { "NACK: " (why) }, None => span.good { "ACK" } } }
                            }
                        }
                    }
                },
            }
        }
    };
    layout("Cluster", Section::Cluster, None, body)
}

/// A page for a missing spec or another error.
#[must_use]
pub fn not_found(what: &str) -> Markup {
    layout(
        "Not found",
        Section::Specs,
        None,
        html! { h1 { "Not found" } p { (what) } p { a href="/" { "Back to the specs" } } },
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
