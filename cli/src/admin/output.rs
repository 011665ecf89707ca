//! What the admin commands print: aligned plain-text tables for people, JSON for scripts.

use std::io::Write;

use serde_json::{Value, json};

/// A configuration resource the CLI can list: its table row and its JSON form.
///
/// Implemented for the proto messages by hand, since prost types do not derive `Serialize`.
pub(super) trait Resource {
    /// Singular name for people, e.g. `"api key"`; in JSON spaces become underscores.
    const KIND: &'static str;
    /// The proto/snapshot field holding a list of them, e.g. `"api_keys"`.
    const FIELD: &'static str;
    /// Table column headers.
    const HEADERS: &'static [&'static str];
    /// One table row, one cell per header.
    fn row(&self) -> Vec<String>;
    /// The JSON form. Never contains a secret.
    fn to_json(&self) -> Value;
}

/// Renders a list of resources as one JSON array.
pub(super) fn json_list<T: Resource>(items: &[T]) -> Value {
    Value::Array(items.iter().map(Resource::to_json).collect())
}

/// What a write did, for its confirmation line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    Created,
    Updated,
    Deleted,
    Disabled,
    Enabled,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Deleted => "deleted",
            Action::Disabled => "disabled",
            Action::Enabled => "enabled",
        }
    }
}

/// An aligned plain-text table: columns separated by two spaces, no trailing whitespace.
#[derive(Debug, Default)]
pub(super) struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table whose first row is `headers`.
    pub(super) fn with_headers(headers: &[&str]) -> Self {
        let mut table = Self::default();
        table.row(headers.iter().map(|h| h.to_string()).collect());
        table
    }

    /// Appends a row. Cells are shown on one line with control characters blanked, since values come
    /// from the server and must not move the cursor or inject escape sequences.
    pub(super) fn row(&mut self, cells: Vec<String>) {
        let cells = cells
            .into_iter()
            .map(|cell| {
                cell.chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect()
            })
            .collect();
        self.rows.push(cells);
    }

    /// The table as text, one line per row, each ending in `\n`.
    pub(super) fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut text = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                let pad = widths[i] - cell.chars().count();
                line.extend(std::iter::repeat_n(' ', pad));
            }
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }
}

/// `-` for an empty cell, so columns never look shifted.
pub(super) fn or_dash(value: &str) -> String {
    if value.is_empty() {
        "-".to_string()
    } else {
        value.to_string()
    }
}

/// Where command output goes, and in which form.
pub(super) struct Printer<'a> {
    out: &'a mut dyn Write,
    json: bool,
}

impl<'a> Printer<'a> {
    pub(super) fn new(out: &'a mut dyn Write, json: bool) -> Self {
        Self { out, json }
    }

    /// Whether the user asked for JSON.
    pub(super) fn json(&self) -> bool {
        self.json
    }

    /// Prints a value as pretty JSON.
    pub(super) fn value(&mut self, value: &Value) -> anyhow::Result<()> {
        serde_json::to_writer_pretty(&mut *self.out, value)?;
        writeln!(self.out)?;
        Ok(())
    }

    /// Prints text as is.
    pub(super) fn text(&mut self, text: &str) -> anyhow::Result<()> {
        self.out.write_all(text.as_bytes())?;
        Ok(())
    }

    /// Prints a list response: a table and the store version, or `{"<field>": [...], "version": N}`.
    pub(super) fn list<T: Resource>(&mut self, items: &[T], version: u64) -> anyhow::Result<()> {
        if self.json {
            return self.value(&json!({ T::FIELD: json_list(items), "version": version }));
        }
        if items.is_empty() {
            let plural = T::FIELD.replace('_', " ");
            return self.text(&format!("no {plural} (store version {version})\n"));
        }
        let mut table = Table::with_headers(T::HEADERS);
        for item in items {
            table.row(item.row());
        }
        self.text(&table.render())?;
        self.text(&format!("store version {version}\n"))
    }

    /// Confirms a committed write: `created provider openai (version 7)`, or the same facts as JSON.
    /// `extra` adds fields to the JSON object (e.g. a freshly created key).
    pub(super) fn confirm(
        &mut self,
        action: Action,
        kind: &str,
        name: &str,
        version: u64,
        extra: Option<Value>,
    ) -> anyhow::Result<()> {
        if self.json {
            let mut object = json!({
                "action": action.as_str(),
                "kind": kind.replace(' ', "_"),
                "name": name,
                "version": version,
            });
            if let (Some(Value::Object(fields)), Value::Object(target)) = (extra, &mut object) {
                target.extend(fields);
            }
            return self.value(&object);
        }
        self.text(&format!(
            "{} {kind} {name} (version {version})\n",
            action.as_str()
        ))
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn table_aligns_columns_without_trailing_spaces() {
        let mut table = Table::with_headers(&["NAME", "KIND", "URL"]);
        table.row(vec![
            "openai".into(),
            "openai".into(),
            "https://a/v1".into(),
        ]);
        table.row(vec![
            "local-llama".into(),
            "openai-compatible".into(),
            "-".into(),
        ]);
        assert_eq!(
            table.render(),
            "NAME         KIND               URL\n\
             openai       openai             https://a/v1\n\
             local-llama  openai-compatible  -\n"
        );
    }

    #[test]
    fn table_counts_characters_not_bytes_and_blanks_control_characters() {
        let mut table = Table::with_headers(&["A", "B"]);
        table.row(vec!["héllo".into(), "x".into()]);
        table.row(vec!["a\x1b[31m\nb".into(), String::new()]);
        assert_eq!(table.render(), "A         B\nhéllo     x\na [31m b\n");
    }

    #[test]
    fn empty_table_and_dash() {
        assert_eq!(Table::default().render(), "");
        assert_eq!(or_dash(""), "-");
        assert_eq!(or_dash("x"), "x");
    }

    #[test]
    fn confirmation_for_people_and_scripts() {
        let mut buf = Vec::new();
        Printer::new(&mut buf, false)
            .confirm(Action::Created, "provider", "openai", 7, None)
            .unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "created provider openai (version 7)\n"
        );

        let mut buf = Vec::new();
        Printer::new(&mut buf, true)
            .confirm(
                Action::Created,
                "api key",
                "ci",
                8,
                Some(json!({ "key": "sk-tr-x" })),
            )
            .unwrap();
        let value: Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(
            value,
            json!({"action": "created", "kind": "api_key", "name": "ci", "version": 8, "key": "sk-tr-x"})
        );
    }
}
