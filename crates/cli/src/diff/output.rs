//! The three renderings of a [`Report`]: text for a terminal, markdown for a pull
//! request comment (one collapsible `<details>` section per spec), and JSON.

use std::fmt::Write as _;

use super::model::{JobField, NomadSection, Report, SpecDiff};

/// The first line of the markdown rendering: CI finds its earlier comment by it.
pub const MARKDOWN_MARKER: &str = "<!-- steward-diff -->";

fn field_text(f: &JobField) -> String {
    let notes = if f.annotations.is_empty() {
        String::new()
    } else {
        format!(" ({})", f.annotations.join(", "))
    };
    match (&f.old, &f.new) {
        (Some(old), Some(new)) => format!("{}: {old} → {new}{notes}", f.path),
        (None, Some(new)) => format!("+ {}: {new}{notes}", f.path),
        (Some(old), None) => format!("- {}: {old}{notes}", f.path),
        (None, None) => format!("{}{notes}", f.path),
    }
}

fn nomad_text(n: &NomadSection, out: &mut String) {
    let _ = writeln!(out, "  Nomad job {}: {}", n.job, n.change.as_str());
    for f in &n.fields {
        let _ = writeln!(out, "    {}", field_text(f));
    }
    for p in &n.placements {
        let _ = writeln!(out, "    group {}: {}", p.group, p.describe());
    }
    for f in &n.failures {
        let _ = writeln!(
            out,
            "    cannot place group {} ({} allocation{}):",
            f.group,
            f.allocations,
            if f.allocations == 1 { "" } else { "s" }
        );
        for r in &f.reasons {
            let _ = writeln!(out, "      * {r}");
        }
    }
    for w in &n.warnings {
        let _ = writeln!(out, "    warning: {w}");
    }
    if let Some(t) = &n.next_periodic_launch {
        let _ = writeln!(out, "    next periodic launch: {t}");
    }
}

fn list_text<T: std::fmt::Display>(title: &str, items: &[T], out: &mut String) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(out, "  {title}:");
    for i in items {
        let _ = writeln!(out, "    {i}");
    }
}

fn spec_text(s: &SpecDiff, out: &mut String) {
    let file = s
        .file
        .as_ref()
        .filter(|f| s.key.is_some() && Some(*f) != s.key.as_ref())
        .map(|f| format!(" ({f})"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{} {}{file}: {}: {}",
        s.action.symbol(),
        s.title(),
        s.action.as_str(),
        s.summary()
    );
    if let Some(n) = &s.nomad {
        nomad_text(n, out);
    }
    list_text("intentions", &s.intentions, out);
    let vault: Vec<String> = s
        .vault
        .iter()
        .map(|c| format!("{} {c}", c.policy))
        .collect();
    list_text("vault", &vault, out);
    list_text("edge routes", &s.routes, out);
    list_text("deleted", &s.deletions, out);
    list_text("guardrail violations", &s.guardrails, out);
    list_text("invalid", &s.invalid, out);
    list_text("warnings", &s.warnings, out);
    list_text("failed reads (preview incomplete)", &s.errors, out);
}

fn stale_note(report: &Report) -> Option<String> {
    (!report.stale.is_empty()).then(|| {
        format!(
            "{} pushed earlier by this source {} no longer in the directory (kept; --prune deletes): {}",
            super::model::plural(report.stale.len(), "spec", "specs"),
            if report.stale.len() == 1 { "is" } else { "are" },
            report.stale.join(", ")
        )
    })
}

/// The terminal rendering.
pub fn text(report: &Report) -> String {
    let mut out = format!("steward diff: {}\n", report.counts());
    for s in &report.specs {
        out.push('\n');
        spec_text(s, &mut out);
    }
    if let Some(note) = stale_note(report) {
        let _ = write!(out, "\nnote: {note}\n");
    }
    if report.specs.is_empty() {
        out.push_str("no changes\n");
    }
    out
}

/// Escapes text for markdown (outside code spans).
fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A code span holding `text` whatever backticks it contains.
fn code(text: &str) -> String {
    let text = text.replace('\n', " ");
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

/// Escapes text for HTML (the `<summary>` line).
fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn nomad_markdown(n: &NomadSection, out: &mut String) {
    let _ = writeln!(
        out,
        "**Nomad job** {}: {}\n",
        code(&n.job),
        n.change.as_str()
    );
    if !n.fields.is_empty() {
        out.push_str("| field | live | planned |\n|---|---|---|\n");
        for f in &n.fields {
            let cell = |v: &Option<String>| {
                v.as_ref()
                    .map_or_else(|| "*(absent)*".to_owned(), |v| code(v).replace('|', "\\|"))
            };
            let notes = if f.annotations.is_empty() {
                String::new()
            } else {
                format!(" ({})", md(&f.annotations.join(", ")))
            };
            let _ = writeln!(
                out,
                "| {} | {} | {}{notes} |",
                code(&f.path).replace('|', "\\|"),
                cell(&f.old),
                cell(&f.new)
            );
        }
        out.push('\n');
    }
    for p in &n.placements {
        let _ = writeln!(out, "- group {}: {}", code(&p.group), md(&p.describe()));
    }
    for f in &n.failures {
        let _ = writeln!(
            out,
            "- :warning: **cannot place** group {} ({} allocation{}):",
            code(&f.group),
            f.allocations,
            if f.allocations == 1 { "" } else { "s" }
        );
        for r in &f.reasons {
            let _ = writeln!(out, "  - {}", md(r));
        }
    }
    for w in &n.warnings {
        let _ = writeln!(out, "- warning: {}", md(w));
    }
    if let Some(t) = &n.next_periodic_launch {
        let _ = writeln!(out, "- next periodic launch: {}", code(t));
    }
    if !n.placements.is_empty() || !n.failures.is_empty() || !n.warnings.is_empty() {
        out.push('\n');
    }
}

fn list_markdown(title: &str, items: &[String], out: &mut String) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(out, "**{title}**\n");
    for i in items {
        let _ = writeln!(out, "- {i}");
    }
    out.push('\n');
}

fn spec_markdown(s: &SpecDiff, out: &mut String) {
    let _ = writeln!(
        out,
        "<details><summary><code>{} {}</code> {}: {}</summary>\n",
        s.action.symbol(),
        html(&s.title()),
        s.action.as_str(),
        html(&s.summary())
    );
    if let Some(file) = &s.file {
        let _ = writeln!(out, "File: {}\n", code(file));
    }
    if let Some(n) = &s.nomad {
        nomad_markdown(n, out);
    }
    list_markdown(
        "Intentions",
        &s.intentions
            .iter()
            .map(|c| md(&c.to_string()))
            .collect::<Vec<_>>(),
        out,
    );
    list_markdown(
        "Vault capabilities",
        &s.vault
            .iter()
            .map(|c| {
                let mut parts = Vec::new();
                if !c.added.is_empty() {
                    parts.push(format!("adds {}", md(&c.added.join(", "))));
                }
                if !c.removed.is_empty() {
                    parts.push(format!("removes {}", md(&c.removed.join(", "))));
                }
                format!(
                    "{} {}: {}",
                    code(&c.policy),
                    code(&c.path),
                    parts.join("; ")
                )
            })
            .collect::<Vec<_>>(),
        out,
    );
    list_markdown(
        "Edge routes",
        &s.routes
            .iter()
            .map(|r| {
                format!(
                    "{} {}: {}",
                    r.verb.as_str(),
                    code(&format!("{}{}", r.host, r.path)),
                    md(&r.detail)
                )
            })
            .collect::<Vec<_>>(),
        out,
    );
    list_markdown(
        "Deleted",
        &s.deletions
            .iter()
            .map(|d| format!("{} {} ({})", md(&d.kind), code(&d.name), md(&d.how)))
            .collect::<Vec<_>>(),
        out,
    );
    let problems = |v: &[super::model::Problem]| -> Vec<String> {
        v.iter()
            .map(|p| {
                let path = if p.path.is_empty() {
                    String::new()
                } else {
                    format!(" {}", code(&p.path))
                };
                format!(
                    "{}{path}: {} ({})",
                    code(&format!("{}:{}:{}", p.file, p.line, p.column)),
                    md(&p.message),
                    code(&p.code)
                )
            })
            .collect()
    };
    list_markdown(
        ":no_entry: Guardrail violations",
        &problems(&s.guardrails),
        out,
    );
    list_markdown(":no_entry: Invalid", &problems(&s.invalid), out);
    list_markdown(
        ":warning: Warnings",
        &s.warnings.iter().map(|w| md(w)).collect::<Vec<_>>(),
        out,
    );
    list_markdown(
        ":x: Failed reads (preview incomplete)",
        &s.errors.iter().map(|e| md(e)).collect::<Vec<_>>(),
        out,
    );
    out.push_str("</details>\n\n");
}

/// The pull-request comment.
pub fn markdown(report: &Report) -> String {
    let mut out = format!(
        "{MARKDOWN_MARKER}\n### Steward diff\n\n**{}** (source {})\n\n",
        md(&report.counts()),
        code(&report.source)
    );
    if report.specs.is_empty() {
        out.push_str("No changes.\n\n");
    }
    for s in &report.specs {
        spec_markdown(s, &mut out);
    }
    if let Some(note) = stale_note(report) {
        let _ = writeln!(out, "Note: {}\n", md(&note));
    }
    out
}

/// The JSON document (see [`super::model`] for its stability).
pub fn json(report: &Report) -> String {
    let mut text = serde_json::to_string_pretty(report).unwrap_or_else(|_| "{}".into());
    text.push('\n');
    text
}
