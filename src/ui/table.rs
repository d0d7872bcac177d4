//! The one table writer: borderless columns two spaces apart, stored text escaped
//! (SPEC §5), laid out to the terminal's width when it reports one; times for people.

use std::borrow::Cow;
use std::io::{self, Write};

use chrono::{DateTime, Local, Utc};
use comfy_table::{presets, Attribute, Cell, ColumnConstraint, ContentArrangement, Table, Width};
use unicode_width::UnicodeWidthStr;

use crate::core::text::escape;
use crate::core::time::relative;

/// A borderless table; `color` styles it even when stdout is not a terminal.
pub fn new_table(color: bool) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic);
    if color {
        table.enforce_styling();
    } else {
        table.force_no_tty();
    }
    // A terminal that reports no width (CI, `docker run -t`) would squash every column
    // to one character: lay out by content instead.
    if table.width().is_none_or(|w| w == 0) {
        table.set_content_arrangement(ContentArrangement::Disabled);
    }
    table
}

/// The width of the terminal stdout is, if it is one that reports a width (with or
/// without colour).
pub fn terminal_width() -> Option<usize> {
    Table::new().width().map(usize::from).filter(|w| *w > 0)
}

/// Renders a table with two spaces between columns and no trailing blanks.
pub fn render(table: &mut Table) -> String {
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    let text = table.to_string();
    let mut lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines.join("\n")
}

/// The width comfy gives each column's content when `table` is rendered, padding
/// excluded. comfy does not expose its layout, so the table is drawn once with ASCII
/// borders (and the borders' columns added to its width, so the room for content is
/// unchanged) and the top border's segments are measured.
pub fn laid_out_widths(table: &Table) -> Vec<usize> {
    let mut framed = table.clone();
    framed.load_preset(presets::ASCII_FULL);
    if let Some(w) = table.width().filter(|w| *w > 0) {
        let borders = u16::try_from(framed.column_count() + 1).unwrap_or(u16::MAX);
        framed.set_width(w.saturating_add(borders));
    }
    for column in framed.column_iter_mut() {
        column.set_padding((0, 2));
    }
    let text = framed.to_string();
    let top = text.lines().next().unwrap_or("");
    top.split('+')
        .filter(|s| !s.is_empty())
        .map(|s| s.len().saturating_sub(2))
        .collect()
}

/// Fixes every column's content to `widths` (padding excluded), so tables drawn in
/// parts line up as one.
pub fn fix_widths(table: &mut Table, widths: &[usize]) {
    for (column, w) in table.column_iter_mut().zip(widths) {
        let fixed = u16::try_from(w + 2).unwrap_or(u16::MAX);
        column.set_constraint(ColumnConstraint::Absolute(Width::Fixed(fixed)));
    }
}

/// The widest line of a cell, as comfy measures it (at least one column).
pub fn cell_width(cell: &Cell) -> usize {
    cell.content().lines().map(width).max().unwrap_or(0).max(1)
}

/// A bold label (a column header, a `show` field name) when colour is on.
pub fn label(name: &str, color: bool) -> Cell {
    let c = Cell::new(name);
    if color {
        c.add_attribute(Attribute::Bold)
    } else {
        c
    }
}

pub fn header(names: &[&str], color: bool) -> Vec<Cell> {
    names.iter().map(|n| label(n, color)).collect()
}

/// A cell of stored text: hidden characters escaped, never printed raw (SPEC §5).
pub fn text_cell(text: &str) -> Cell {
    Cell::new(escape(text))
}

/// A simple table of text cells under a header.
pub fn write_plain_table<const N: usize>(
    out: &mut dyn Write,
    names: &[&str; N],
    rows: Vec<[String; N]>,
    color: bool,
) -> io::Result<()> {
    let mut table = new_table(color);
    table.set_header(header(names, color));
    for row in rows {
        table.add_row(row.iter().map(|c| text_cell(c)).collect::<Vec<_>>());
    }
    writeln!(out, "{}", render(&mut table))
}

/// Columns of text as a terminal shows them.
pub fn width(text: &str) -> usize {
    UnicodeWidthStr::width(text)
}

/// `text` cut to at most `max` columns, ending in `…` when cut.
pub fn elide(text: &str, max: usize) -> Cow<'_, str> {
    if width(text) <= max {
        return Cow::Borrowed(text);
    }
    let mut kept = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w + 1 > max {
            break;
        }
        used += w;
        kept.push(c);
    }
    kept.push('…');
    Cow::Owned(kept)
}

/// `text` padded with spaces to `columns` columns (longer text is left as it is).
pub fn pad(text: &str, columns: usize) -> String {
    format!("{text}{}", " ".repeat(columns.saturating_sub(width(text))))
}

/// "Never", or a relative phrase.
pub fn relative_or_never(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    t.map_or_else(|| "Never".to_string(), |t| relative(t, now))
}

/// Local time with its offset, for people.
pub fn local_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&Local)
        .format("%Y-%m-%d %H:%M:%S %:z")
        .to_string()
}

/// The local time and, beside it, the relative phrase; "Never" for no time.
pub fn time_with_relative(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match t {
        Some(t) => format!("{} ({})", local_time(t), relative(t, now)),
        None => "Never".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elide_cuts_to_the_width_with_an_ellipsis() {
        assert_eq!(elide("short", 5), "short");
        assert_eq!(elide("longer-name", 8), "longer-…");
        assert_eq!(width(&elide("longer-name", 8)), 8);
        // Wide characters count two columns.
        assert_eq!(elide("日本語の名前", 7), "日本語…");
        assert_eq!(pad("ab", 4), "ab  ");
        assert_eq!(pad("abcdef", 4), "abcdef");
    }

    /// A table drawn with its columns fixed to the widths comfy chose for it is the
    /// table comfy draws, whether it fits or must wrap.
    #[test]
    fn fixed_to_its_laid_out_widths_a_table_draws_the_same() {
        for width in [None, Some(200), Some(30), Some(12)] {
            let mut table = new_table(false);
            table.set_content_arrangement(ContentArrangement::Dynamic);
            if let Some(w) = width {
                table.set_width(w);
            }
            table.set_header(vec!["Name", "Status", "Last used"]);
            table.add_row(vec![
                "a-rather-long-name",
                "● active (grace)",
                "3 hours ago",
            ]);
            table.add_row(vec!["b", "● disabled", "Never"]);
            let widths = laid_out_widths(&table);
            assert_eq!(widths.len(), 3);
            let mut fixed = table.clone();
            fix_widths(&mut fixed, &widths);
            assert_eq!(render(&mut fixed), render(&mut table), "width {width:?}");
        }
        let mut table = new_table(false);
        table.set_header(vec!["Name", "Key"]);
        table.add_row(vec!["alpha", "x"]);
        assert_eq!(laid_out_widths(&table), [5, 3]);
    }
}
