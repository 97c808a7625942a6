//! Plain aligned text tables (no borders), for terminals and CI logs alike.

/// Formats rows under a header, columns separated by two spaces; the last column is
/// not padded. Cells must not contain line breaks (they are replaced by spaces).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let clean = |s: &str| s.replace(['\n', '\r'], " ");
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| clean(c)).collect())
        .collect();
    let columns = header.len();
    let mut widths = vec![0usize; columns];
    for row in std::iter::once(&header).chain(&rows) {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(console::measure_text_width(cell));
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate().take(columns) {
            line.push_str(cell);
            if i + 1 < columns {
                let pad = widths[i] - console::measure_text_width(cell) + 2;
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_aligned_and_lines_not_padded_at_the_end() {
        let t = table(
            &["KEY", "ACTION", "GEN"],
            &[
                vec!["a/b".into(), "create".into(), "12".into()],
                vec!["team/longer-name".into(), "unchanged".into(), String::new()],
            ],
        );
        assert_eq!(
            t,
            "KEY               ACTION     GEN\n\
             a/b               create     12\n\
             team/longer-name  unchanged\n"
        );
    }

    #[test]
    fn line_breaks_in_cells_become_spaces() {
        let t = table(&["A"], &[vec!["x\ny".into()]]);
        assert_eq!(t, "A\nx y\n");
    }
}
