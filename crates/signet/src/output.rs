//! What the commands print: aligned tables for people, JSON for scripts,
//! and times in one format.
//!
//! Text that comes from the store (task names, errors, header values) is not
//! trusted: control characters are escaped before they reach a terminal.

use std::fmt::Write as _;
use std::io::Write as _;

/// A table with a header row; columns are padded to their widest cell.
#[derive(Debug)]
pub(crate) struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub(crate) fn new(headers: &[&'static str]) -> Self {
        Self {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row. Missing cells are blank; extra cells are dropped.
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        let mut cells: Vec<String> = cells.into_iter().map(|c| printable(&c)).collect();
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
    }

    /// Whether no row was added.
    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, one line per row, each line ending in `\n`.
    pub(crate) fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.headers.iter().map(|h| (*h).to_owned()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    // Writing to a String cannot fail.
                    let _ = write!(line, "{cell:<w$}  ");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Escapes control characters so untrusted text cannot move the cursor,
/// clear the screen or fake extra lines.
pub(crate) fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// Unix milliseconds as RFC 3339 UTC with three fractional digits
/// (`2026-11-23T12:00:00.000Z`): the formatter the API prints with too.
pub(crate) use signet_runtime::format_time_ms as format_ms;

/// An optional time, or `-`.
pub(crate) fn format_opt_ms(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".to_owned(), format_ms)
}

/// Prints one JSON value on its own line (pretty when `pretty`).
pub(crate) fn print_json(value: &serde_json::Value, pretty: bool) -> anyhow::Result<()> {
    let text = if pretty {
        serde_json::to_string_pretty(value)?
    } else {
        serde_json::to_string(value)?
    };
    emit(&format!("{text}\n"))
}

/// Writes `text` to stdout. A reader that went away (`signet … | head`)
/// ends the output quietly instead of failing the command.
pub(crate) fn emit(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// `println!` through [`emit`]: no panic when stdout is a closed pipe.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::emit(&format!("{}\n", format_args!($($arg)*)))?
    };
}
pub(crate) use outln;

/// Shortens text to `max` characters, marking the cut with `…`.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_columns_and_trims_line_ends() {
        let mut t = Table::new(&["ID", "STATE"]);
        t.row(vec!["task_1".into(), "available".into()]);
        t.row(vec!["t".into()]);
        assert_eq!(
            t.render(),
            "ID      STATE\ntask_1  available\nt\n",
            "{}",
            t.render()
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("a\nb\x1b[2J"), "a\\nb\\u{1b}[2J");
        assert_eq!(printable("plain"), "plain");
    }

    #[test]
    fn times_print_as_rfc3339_utc_with_millis() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_ms(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
        assert_eq!(format_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(format_ms(i64::MAX), i64::MAX.to_string());
        assert_eq!(format_opt_ms(None), "-");
    }

    #[test]
    fn truncate_marks_the_cut() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
