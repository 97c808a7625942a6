//! `steward validate`: every problem of every file, and the loading shared with `push`.

use std::path::Path;

use anyhow::Context as _;
use steward_spec::{Diagnostic, GuardrailPolicy, ServiceSpec};

use crate::args::{ValidateArgs, ValidateOutput};
use crate::exit::Exit;
use crate::files::{self, SpecFile};
use crate::style;

/// What loading a set of files found.
#[derive(Debug, Default)]
pub struct Checked {
    /// Files that loaded without errors, with their spec.
    pub specs: Vec<(SpecFile, ServiceSpec)>,
    /// Every diagnostic of every file (and of the policy), in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// How many documents were looked at (spec files, plus the policy).
    pub documents: usize,
}

impl Checked {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Reads and validates a guardrail policy file: the policy (when valid) and its
/// diagnostics.
///
/// # Errors
/// The file cannot be read.
pub fn load_policy(path: &Path) -> anyhow::Result<(Option<GuardrailPolicy>, Vec<Diagnostic>)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read policy {}", path.display()))?;
    let loaded = steward_spec::load_guardrail_policy(&path.display().to_string(), &text);
    Ok((loaded.policy, loaded.diagnostics))
}

/// Loads every file (with guardrails when a policy is given). Pure apart from nothing:
/// the texts are already read.
pub fn check_documents(files: Vec<SpecFile>, policy: Option<&GuardrailPolicy>) -> Checked {
    let mut checked = Checked {
        documents: files.len(),
        ..Checked::default()
    };
    for file in files {
        let loaded = steward_spec::load(&file.label(), &file.text, policy);
        checked.diagnostics.extend(loaded.diagnostics);
        if let Some(spec) = loaded.spec {
            checked.specs.push((file, spec));
        }
    }
    checked
}

/// Collects, reads and checks `paths` with an optional policy file (whose own
/// diagnostics come first).
///
/// # Errors
/// Unreadable paths, no files found, unreadable policy (all usage/IO errors).
pub fn check_paths(paths: &[std::path::PathBuf], policy: Option<&Path>) -> anyhow::Result<Checked> {
    let found = files::collect(paths)?;
    let texts = files::read_all(&found)?;
    let (policy, policy_diagnostics) = match policy {
        Some(p) => load_policy(p)?,
        None => (None, Vec::new()),
    };
    let had_policy = !policy_diagnostics.is_empty() || policy.is_some();
    let mut checked = check_documents(texts, policy.as_ref());
    if had_policy {
        checked.documents += 1;
    }
    let mut all = policy_diagnostics;
    all.append(&mut checked.diagnostics);
    checked.diagnostics = all;
    Ok(checked)
}

/// The last line of human output: `ok: 7 files valid` or
/// `error: 12 errors and 1 warning in 1 of 7 files`.
pub fn summary(documents: usize, diagnostics: &[Diagnostic]) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    let mut files: Vec<&str> = diagnostics.iter().map(|d| d.file.as_str()).collect();
    files.sort_unstable();
    files.dedup();
    let files_word = plural(documents, "file");
    match (errors, warnings) {
        (0, 0) => format!("ok: {files_word} valid"),
        (0, w) => format!("ok: {files_word} valid ({})", plural(w, "warning")),
        (e, 0) => format!(
            "error: {} in {} of {files_word}",
            plural(e, "error"),
            files.len()
        ),
        (e, w) => format!(
            "error: {} and {} in {} of {files_word}",
            plural(e, "error"),
            plural(w, "warning"),
            files.len()
        ),
    }
}

/// The human report: every diagnostic's caret rendering, blank-line separated, then
/// the summary line.
pub fn human_report(documents: usize, diagnostics: &[Diagnostic]) -> String {
    let mut out: String = diagnostics
        .iter()
        .map(|d| format!("{}\n", d.render()))
        .collect();
    out.push_str(&summary(documents, diagnostics));
    out.push('\n');
    out
}

/// The JSON report: an array of diagnostics.
pub fn json_report(diagnostics: &[Diagnostic]) -> String {
    let mut text = serde_json::to_string_pretty(diagnostics).unwrap_or_else(|_| "[]".into());
    text.push('\n');
    text
}

/// Runs `steward validate`.
///
/// # Errors
/// Usage/IO errors (exit 2).
pub fn run(args: &ValidateArgs) -> anyhow::Result<Exit> {
    let checked = check_paths(&args.paths, args.policy.as_deref())?;
    match args.output {
        ValidateOutput::Human => {
            let report = human_report(checked.documents, &checked.diagnostics);
            print!("{}", style::diagnostics(&report, style::stdout_colours()));
        }
        ValidateOutput::Json => print!("{}", json_report(&checked.diagnostics)),
    }
    Ok(if checked.has_errors() {
        Exit::Invalid
    } else {
        Exit::Ok
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn file(name: &str, text: &str) -> SpecFile {
        SpecFile {
            path: PathBuf::from(name),
            text: text.to_owned(),
        }
    }

    const GOOD: &str = "apiVersion: steward/v1\nkind: ServiceSpec\nmetadata: {name: web}\nspec: {image: 'nginx:1.27'}\n";

    #[test]
    fn every_file_is_checked_and_valid_ones_are_kept() {
        let checked = check_documents(vec![file("a.yaml", GOOD), file("b.yaml", "kind: [")], None);
        assert_eq!(checked.specs.len(), 1);
        assert_eq!(checked.documents, 2);
        assert!(checked.has_errors());
        assert!(checked.diagnostics.iter().all(|d| d.file == "b.yaml"));
    }

    #[test]
    fn the_summary_counts_errors_warnings_and_files() {
        let checked = check_documents(
            vec![
                file("a.yaml", GOOD),
                file("b.yaml", "kind: ["),
                file("c.yaml", "x: 1\n"),
            ],
            None,
        );
        let s = summary(3, &checked.diagnostics);
        assert!(s.starts_with("error: "), "{s}");
        assert!(s.ends_with(" in 2 of 3 files"), "{s}");
        assert_eq!(summary(1, &[]), "ok: 1 file valid");
    }

    #[test]
    fn the_human_report_ends_with_the_summary() {
        let checked = check_documents(vec![file("b.yaml", "x: 1\n")], None);
        let report = human_report(1, &checked.diagnostics);
        assert!(report.contains("--> b.yaml:1:1"), "{report}");
        assert!(report.ends_with(" in 1 of 1 file\n"), "{report}");
    }
}
