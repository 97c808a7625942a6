//! Terminal colours for diagnostics, diffs and phases: on only when stdout is a terminal
//! and `NO_COLOR` is unset (console decides), so pipes and CI logs get plain text.

use console::Style;

/// Whether stdout gets colours.
pub fn stdout_colours() -> bool {
    console::colors_enabled()
}

fn style(enabled: bool) -> Style {
    Style::new().force_styling(enabled)
}

/// Colours the plain-text rendering of diagnostics (see `Diagnostic::render`): the
/// severity header, the gutter, the carets and the summary line. Returns the text
/// unchanged when `enabled` is false.
pub fn diagnostics(text: &str, enabled: bool) -> String {
    if !enabled {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        out.push_str(&diagnostic_line(body, enabled));
        out.push_str(nl);
    }
    out
}

fn severity_style(word: &str, enabled: bool) -> Style {
    let s = style(enabled).bold();
    if word == "warning" {
        s.yellow()
    } else {
        s.red()
    }
}

fn diagnostic_line(line: &str, enabled: bool) -> String {
    let gutter = style(enabled).blue().bold();
    for word in ["error", "warning"] {
        if let Some(rest) = line.strip_prefix(word)
            && (rest.starts_with('[') || rest.starts_with(':'))
        {
            let sev = severity_style(word, enabled);
            let (head, message) = match rest.find("]: ") {
                Some(i) if rest.starts_with('[') => (&rest[..=i], &rest[i + 1..]),
                _ => ("", rest),
            };
            return format!(
                "{}{}",
                sev.apply_to(format!("{word}{head}")),
                style(enabled).bold().apply_to(message)
            );
        }
    }
    let trimmed = line.trim_start();
    if let Some(rest) = trimmed.strip_prefix("-->") {
        let indent = &line[..line.len() - trimmed.len()];
        return format!("{indent}{}{rest}", gutter.apply_to("-->"));
    }
    if let Some(rest) = trimmed.strip_prefix("= ") {
        let indent = &line[..line.len() - trimmed.len()];
        return format!("{indent}{} {rest}", gutter.apply_to("="));
    }
    if let Some(bar) = line.find('|')
        && line[..bar].chars().all(|c| c == ' ' || c.is_ascii_digit())
    {
        let (head, rest) = line.split_at(bar + 1);
        let body = if !rest.trim().is_empty() && rest.trim().chars().all(|c| c == '^') {
            let lead = &rest[..rest.len() - rest.trim_start().len()];
            format!(
                "{lead}{}",
                style(enabled).red().bold().apply_to(rest.trim_start())
            )
        } else {
            rest.to_owned()
        };
        return format!("{}{body}", gutter.apply_to(head));
    }
    line.to_owned()
}

/// Colours a unified diff: `+` lines green, `-` lines red, hunk headers cyan.
pub fn diff(text: &str, enabled: bool) -> String {
    if !enabled {
        return text.to_owned();
    }
    text.split_inclusive('\n')
        .map(|line| {
            let (body, nl) = match line.strip_suffix('\n') {
                Some(b) => (b, "\n"),
                None => (line, ""),
            };
            let s = if body.starts_with("+++") || body.starts_with("---") {
                style(enabled).bold()
            } else if body.starts_with('+') {
                style(enabled).green()
            } else if body.starts_with('-') {
                style(enabled).red()
            } else if body.starts_with("@@") {
                style(enabled).cyan()
            } else {
                style(enabled)
            };
            format!("{}{nl}", s.apply_to(body))
        })
        .collect()
}

/// Colours a status phase or push action word.
pub fn word(word: &str, enabled: bool) -> String {
    let s = match word {
        "Synced" | "create" | "update" => style(enabled).green(),
        "Pending" | "Progressing" | "Deleting" | "stale" => style(enabled).yellow(),
        "Degraded" | "Invalid" | "Conflict" | "Blocked" | "Error" | "prune" | "failed" => {
            style(enabled).red()
        }
        _ => style(enabled).dim(),
    };
    if enabled {
        s.apply_to(word).to_string()
    } else {
        word.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RENDERED: &str = "\
error[unknown-field]: unknown field `imagee`
  --> web.yaml:7:3
   |
 7 |   imagee: x
   |   ^^^^^^
   = path: spec.imagee
";

    #[test]
    fn without_colours_the_text_is_unchanged() {
        assert_eq!(diagnostics(RENDERED, false), RENDERED);
        assert_eq!(diff("+a\n-b\n", false), "+a\n-b\n");
        assert_eq!(word("Synced", false), "Synced");
    }

    #[test]
    fn with_colours_only_escape_codes_are_added() {
        let coloured = diagnostics(RENDERED, true);
        assert_ne!(coloured, RENDERED);
        assert!(coloured.contains("\u{1b}["), "{coloured:?}");
        assert_eq!(console::strip_ansi_codes(&coloured), RENDERED);
        let d = diff("--- a\n+++ b\n@@ -1 +1 @@\n-x\n+y\n", true);
        assert_eq!(
            console::strip_ansi_codes(&d),
            "--- a\n+++ b\n@@ -1 +1 @@\n-x\n+y\n"
        );
    }

    #[test]
    fn carets_and_the_header_are_coloured() {
        let coloured = diagnostics(RENDERED, true);
        let caret_line = coloured.lines().nth(4).unwrap_or_default();
        assert!(
            caret_line.contains("\u{1b}[31m") || caret_line.contains("\u{1b}[1m"),
            "{caret_line:?}"
        );
        let summary = diagnostics("\nerror: 2 errors in web.yaml\n", true);
        assert_eq!(
            console::strip_ansi_codes(&summary),
            "\nerror: 2 errors in web.yaml\n"
        );
        assert!(summary.contains("\u{1b}["));
    }
}
