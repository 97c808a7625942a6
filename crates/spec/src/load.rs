//! Loading documents: every problem in one pass, each located to line and column.
//!
//! Pipeline: parse into a span-annotated node tree (YAML syntax errors stop here) →
//! structural walk against the JSON Schema (unknown fields, types, required fields,
//! enums, ranges, formats) → typed deserialisation of the repaired value → semantic
//! validation and guardrails on the typed value → every finding located through the
//! node tree. Findings that are consequences of an earlier structural problem are
//! suppressed, so each mistake is reported once.

use serde::de::DeserializeOwned;

use crate::diagnostic::{Diagnostic, render_all};
use crate::finding::Finding;
use crate::guardrails::{GuardrailPolicy, check_guardrails, validate_policy};
use crate::node::{self, Node, Span};
use crate::path::FieldPath;
use crate::schema::{guardrail_policy_schema_ref, servicespec_schema_ref};
use crate::types::ServiceSpec;
use crate::validate::validate_spec;

/// The result of loading a ServiceSpec document.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The spec, with every default filled in; `Some` only when there is no error
    /// diagnostic (warnings allowed).
    pub spec: Option<ServiceSpec>,
    /// Every problem found, errors and warnings, ordered by position.
    pub diagnostics: Vec<Diagnostic>,
}

/// The result of loading a GuardrailPolicy document.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedPolicy {
    /// The policy; `Some` only when there is no error diagnostic.
    pub policy: Option<GuardrailPolicy>,
    /// Every problem found, ordered by position.
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    /// Whether any diagnostic is an error.
    #[must_use]
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// All diagnostics rendered for a terminal, with a summary line ("" when clean).
    #[must_use]
    pub fn render(&self) -> String {
        render_all(&self.diagnostics)
    }
}

impl LoadedPolicy {
    /// Whether any diagnostic is an error.
    #[must_use]
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// All diagnostics rendered for a terminal, with a summary line ("" when clean).
    #[must_use]
    pub fn render(&self) -> String {
        render_all(&self.diagnostics)
    }
}

/// Loads a ServiceSpec from YAML or JSON `text`, reporting every problem at once.
///
/// `file` is only used to label diagnostics. With a `policy`, guardrail violations are
/// reported too (codes `guardrail-*`), located like any other diagnostic; without one,
/// no guardrails are checked.
#[must_use]
pub fn load(file: &str, text: &str, policy: Option<&GuardrailPolicy>) -> Loaded {
    let (spec, diagnostics) = load_document::<ServiceSpec>(
        file,
        text,
        servicespec_schema_ref(),
        |spec: &ServiceSpec| {
            let mut findings = validate_spec(spec);
            if let Some(policy) = policy {
                findings.extend(check_guardrails(spec, policy));
            }
            findings
        },
    );
    Loaded { spec, diagnostics }
}

/// Loads a ServiceSpec from the bytes of a document as stored (a Consul KV value): bytes
/// that are not UTF-8 are an `invalid-utf8` diagnostic at the first bad byte, never
/// replaced (a replacement character could hide in a comment and the spec would load).
#[must_use]
pub fn load_bytes(file: &str, bytes: &[u8], policy: Option<&GuardrailPolicy>) -> Loaded {
    match std::str::from_utf8(bytes) {
        Ok(text) => load(file, text, policy),
        Err(error) => Loaded {
            spec: None,
            diagnostics: vec![invalid_utf8(file, bytes, &error)],
        },
    }
}

/// The diagnostic of bytes that are not UTF-8: line and column of the first bad byte
/// (columns count the characters before it), with the valid start of its line.
fn invalid_utf8(file: &str, bytes: &[u8], error: &std::str::Utf8Error) -> Diagnostic {
    let offset = error.valid_up_to();
    let valid = std::str::from_utf8(&bytes[..offset]).unwrap_or_default();
    let line_start = valid.rfind('\n').map_or(0, |i| i + 1);
    let before = &valid[line_start..];
    let column = before.chars().count() + 1;
    let bad = bytes.get(offset).copied().unwrap_or_default();
    Diagnostic {
        file: file.to_owned(),
        line: valid.matches('\n').count() + 1,
        column,
        end_column: column + 1,
        path: String::new(),
        message: format!(
            "the document is not valid UTF-8: byte 0x{bad:02x} at byte offset {offset}; specs are read as UTF-8 only, nothing is replaced: save the file as UTF-8"
        ),
        severity: crate::diagnostic::Severity::Error,
        code: "invalid-utf8".to_owned(),
        excerpt: before.trim_end_matches('\r').to_owned(),
    }
}

/// Loads a GuardrailPolicy from YAML or JSON `text`, reporting every problem at once.
#[must_use]
pub fn load_guardrail_policy(file: &str, text: &str) -> LoadedPolicy {
    let (policy, diagnostics) = load_document::<GuardrailPolicy>(
        file,
        text,
        guardrail_policy_schema_ref(),
        validate_policy,
    );
    LoadedPolicy {
        policy,
        diagnostics,
    }
}

/// The shared pipeline behind [`load`] and [`load_guardrail_policy`].
fn load_document<T: DeserializeOwned>(
    file: &str,
    text: &str,
    schema: &serde_json::Value,
    semantic: impl Fn(&T) -> Vec<Finding>,
) -> (Option<T>, Vec<Diagnostic>) {
    let source = Source::new(file, text);
    let parsed = node::parse(text);
    let mut diagnostics: Vec<Diagnostic> = parsed
        .findings
        .iter()
        .map(|(finding, span)| source.diagnostic(finding, *span))
        .collect();
    let Some(root) = parsed.root else {
        return (None, finish(diagnostics));
    };
    let checked = crate::structure::check(&root, schema);
    let mut findings = checked.findings;
    let typed = match serde_json::from_value::<T>(checked.value) {
        Ok(typed) => {
            findings.extend(
                semantic(&typed)
                    .into_iter()
                    .filter(|f| !is_consequence(f, &checked.broken)),
            );
            Some(typed)
        }
        Err(error) => {
            // The structural walk guarantees a deserialisable value; reaching this is a bug
            // in this crate, reported rather than hidden.
            findings.push(Finding::error(
                FieldPath::root(),
                "internal-error",
                format!("internal error: could not read the checked document: {error}"),
            ));
            None
        }
    };
    diagnostics.extend(findings.iter().map(|f| source.locate(&root, f)));
    let diagnostics = finish(diagnostics);
    let typed = typed.filter(|_| !diagnostics.iter().any(Diagnostic::is_error));
    (typed, diagnostics)
}

/// Whether a semantic finding follows from a structural problem already reported: its
/// path lies at or under a broken path, or a path it depends on overlaps a broken one.
fn is_consequence(finding: &Finding, broken: &[FieldPath]) -> bool {
    broken.iter().any(|b| {
        finding.path.starts_with(b)
            || finding
                .related
                .iter()
                .any(|r| r.starts_with(b) || b.starts_with(r))
    })
}

fn finish(mut diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    diagnostics.sort_by(|a, b| {
        (a.line, a.column, &a.path, &a.code, &a.message)
            .cmp(&(b.line, b.column, &b.path, &b.code, &b.message))
    });
    diagnostics.dedup();
    diagnostics
}

/// The text being loaded, split into lines for excerpts.
struct Source<'a> {
    file: &'a str,
    lines: Vec<&'a str>,
}

impl<'a> Source<'a> {
    fn new(file: &'a str, text: &'a str) -> Self {
        let lines = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect();
        Self { file, lines }
    }

    fn locate(&self, root: &Node, finding: &Finding) -> Diagnostic {
        let span = crate::locate::locate(root, &finding.path, finding.anchor);
        self.diagnostic(finding, span)
    }

    fn diagnostic(&self, finding: &Finding, span: Span) -> Diagnostic {
        let line = span.start.line.max(1);
        let excerpt = self.lines.get(line - 1).copied().unwrap_or("");
        let line_end = excerpt.trim_end().chars().count() + 1;
        let column = span.start.column.max(1);
        let end_column = if span.end.line == line {
            span.end.column.min(line_end.max(column + 1))
        } else {
            line_end
        };
        Diagnostic {
            file: self.file.to_owned(),
            line,
            column,
            end_column: end_column.max(column + 1),
            path: finding.path.to_string(),
            // One line per message: values quoted in it may contain line breaks.
            message: finding.message.replace('\r', "\\r").replace('\n', "\\n"),
            severity: finding.severity,
            code: finding.code.clone(),
            excerpt: excerpt.to_owned(),
        }
    }
}
