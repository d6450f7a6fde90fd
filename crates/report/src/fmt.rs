//! Markdown formatting shared by every table: cells, numbers, and the table itself.
//!
//! The conventions of the whole crate live here: a value the results lack is [`DASH`], a planned
//! run without a result is [`NOT_RUN`]; top-1 is a fraction shown in percent with 2 decimals.

use std::fmt::Write as _;

/// A value the tables lack.
pub const DASH: &str = "—";

/// A planned run without a result (its cells, and the rows that would have come from it).
pub const NOT_RUN: &str = "not run";

/// A table cell from text: `|` escaped, line breaks flattened.
pub fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// `x` with `decimals` decimals; `—` when absent.
pub fn fixed(x: Option<f64>, decimals: usize) -> String {
    x.map_or_else(|| DASH.to_string(), |x| format!("{x:.decimals$}"))
}

/// Like [`fixed`] but with an explicit sign (`+0.12`, `-1.30`); used for differences.
pub fn signed(x: Option<f64>, decimals: usize) -> String {
    x.map_or_else(|| DASH.to_string(), |x| format!("{x:+.decimals$}"))
}

/// An integer; `—` when absent.
pub fn int(x: Option<i64>) -> String {
    x.map_or_else(|| DASH.to_string(), |x| x.to_string())
}

/// Column alignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A Markdown table: a header with alignments and rows of already formatted cells. With no rows
/// it renders one row holding `empty` in its first cell.
pub struct Table {
    pub header: Vec<(String, Align)>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[(&str, Align)]) -> Table {
        Table {
            header: header.iter().map(|(h, a)| (h.to_string(), *a)).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.header.len());
        self.rows.push(row);
    }

    pub fn render(&self, empty: &str) -> String {
        let mut md = String::new();
        let names: Vec<&str> = self.header.iter().map(|h| h.0.as_str()).collect();
        let _ = writeln!(md, "| {} |", names.join(" | "));
        let aligns: Vec<&str> = self
            .header
            .iter()
            .map(|h| match h.1 {
                Align::Left => "---",
                Align::Right => "---:",
            })
            .collect();
        let _ = writeln!(md, "|{}|", aligns.join("|"));
        if self.rows.is_empty() {
            let mut cells = vec![String::new(); self.header.len()];
            cells[0] = empty.to_string();
            let _ = writeln!(md, "| {} |", cells.join(" | "));
        }
        for row in &self.rows {
            let _ = writeln!(md, "| {} |", row.join(" | "));
        }
        md
    }
}
