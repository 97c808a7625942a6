//! Diagnostics with file, line and column, and their plain-text rendering.

use std::fmt;

use serde::Serialize;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The document is rejected.
    Error,
    /// The document is accepted, but something deserves attention.
    Warning,
}

impl Severity {
    /// `error` or `warning`.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem in one document, located to line and column (serialised as-is for
/// `--output json`).
///
/// Lines and columns are 1-based; columns count Unicode characters (not bytes).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Diagnostic {
    /// The file name the caller passed to the loader.
    pub file: String,
    /// 1-based line of the start of the offending text.
    pub line: usize,
    /// 1-based column of the start of the offending text.
    pub column: usize,
    /// 1-based column just past the offending text on `line` (at least `column + 1`).
    pub end_column: usize,
    /// JSON path of the offending value, e.g. `spec.edge.routes[1].host` (empty for the
    /// document itself, e.g. YAML syntax errors).
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
    /// `error` or `warning`.
    pub severity: Severity,
    /// Stable short id, e.g. `unknown-field`.
    pub code: String,
    /// The source line `line` (without its line break).
    pub excerpt: String,
}

impl Diagnostic {
    /// Whether this is an error.
    #[must_use]
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders the diagnostic for a terminal (plain text, no colours):
    ///
    /// ```text
    /// error[unknown-field]: unknown field `imagee`, did you mean `image`?
    ///   --> deploy/examples/web.yaml:7:3
    ///    |
    ///  7 |   imagee: registry.example/web:1.0
    ///    |   ^^^^^^
    ///    = path: spec.imagee
    /// ```
    #[must_use]
    pub fn render(&self) -> String {
        let number = self.line.to_string();
        let pad = " ".repeat(number.len());
        let excerpt = self.excerpt.replace('\t', " ");
        let caret_start = self.column.saturating_sub(1);
        let caret_len = self.end_column.saturating_sub(self.column).max(1);
        let mut out = format!(
            "{}[{}]: {}\n{pad} --> {}:{}:{}\n{pad}  |\n {number} | {}\n{pad}  | {}{}",
            self.severity,
            self.code,
            self.message,
            self.file,
            self.line,
            self.column,
            excerpt.trim_end(),
            " ".repeat(caret_start),
            "^".repeat(caret_len),
        );
        if !self.path.is_empty() {
            out.push_str(&format!("\n{pad}  = path: {}", self.path));
        }
        out.push('\n');
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

/// Renders several diagnostics separated by blank lines, followed by a summary line
/// (`error: 3 errors and 1 warning in deploy/x.yaml`); empty input renders as "".
#[must_use]
pub fn render_all(diagnostics: &[Diagnostic]) -> String {
    if diagnostics.is_empty() {
        return String::new();
    }
    let mut out = diagnostics
        .iter()
        .map(Diagnostic::render)
        .collect::<Vec<_>>()
        .join("\n");
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let mut files: Vec<&str> = diagnostics.iter().map(|d| d.file.as_str()).collect();
    files.dedup();
    let where_ = if files.len() == 1 {
        format!(" in {}", files[0])
    } else {
        String::new()
    };
    let summary = match (errors, warnings) {
        (0, w) => format!("\nwarning: {}{where_}\n", plural(w, "warning")),
        (e, 0) => format!("\nerror: {}{where_}\n", plural(e, "error")),
        (e, w) => format!(
            "\nerror: {} and {}{where_}\n",
            plural(e, "error"),
            plural(w, "warning")
        ),
    };
    out.push_str(&summary);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(line: usize) -> Diagnostic {
        Diagnostic {
            file: "deploy/examples/web.yaml".into(),
            line,
            column: 3,
            end_column: 9,
            path: "spec.imagee".into(),
            message: "unknown field `imagee`, did you mean `image`?".into(),
            severity: Severity::Error,
            code: "unknown-field".into(),
            excerpt: "  imagee: registry.example/web:1.0".into(),
        }
    }

    #[test]
    fn renders_like_rustc_without_colours() {
        let expected = "\
error[unknown-field]: unknown field `imagee`, did you mean `image`?
  --> deploy/examples/web.yaml:7:3
   |
 7 |   imagee: registry.example/web:1.0
   |   ^^^^^^
   = path: spec.imagee
";
        assert_eq!(sample(7).render(), expected);
    }

    #[test]
    fn gutter_grows_with_the_line_number() {
        let rendered = sample(123).render();
        assert!(
            rendered.contains("\n    --> deploy/examples/web.yaml:123:3\n"),
            "{rendered}"
        );
        assert!(rendered.contains("\n 123 |   imagee"), "{rendered}");
        assert!(rendered.contains("\n     |   ^^^^^^\n"), "{rendered}");
    }

    #[test]
    fn summary_counts_errors_and_warnings() {
        let mut warning = sample(8);
        warning.severity = Severity::Warning;
        let all = render_all(&[sample(7), warning]);
        assert!(all.ends_with("\nerror: 1 error and 1 warning in deploy/examples/web.yaml\n"));
        assert_eq!(render_all(&[]), "");
    }
}
