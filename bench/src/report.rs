//! The one table a run prints (TokenRouter beside the direct baseline and the bare pass-through
//! measured in the same run, with ratios and targets) and the raw JSON it writes.

use std::path::Path;

use serde_json::{Map, Value, json};

/// How a figure compares with its target.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Met,
    Missed,
    /// A figure without a target (context for the others).
    Info,
    /// The scenario could not run; why.
    Skipped(String),
}

impl Verdict {
    /// `Met` when `ok`, else `Missed`.
    pub fn from(ok: bool) -> Verdict {
        if ok { Verdict::Met } else { Verdict::Missed }
    }

    fn text(&self) -> String {
        match self {
            Verdict::Met => "MET".into(),
            Verdict::Missed => "MISSED".into(),
            Verdict::Info => "".into(),
            Verdict::Skipped(why) => format!("SKIPPED: {why}"),
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub section: String,
    pub metric: String,
    pub direct: Option<f64>,
    pub passthrough: Option<f64>,
    pub tokenrouter: Option<f64>,
    /// Ratio or difference against the baselines, already formatted.
    pub compare: String,
    pub target: String,
    pub verdict: Verdict,
}

/// Everything a run measured.
#[derive(Debug, Default)]
pub struct Report {
    pub rows: Vec<Row>,
    pub raw: Map<String, Value>,
}

impl Report {
    /// Adds a row.
    #[allow(clippy::too_many_arguments)]
    pub fn row(
        &mut self,
        section: &str,
        metric: &str,
        values: [Option<f64>; 3],
        compare: String,
        target: &str,
        verdict: Verdict,
    ) {
        let [direct, passthrough, tokenrouter] = values;
        self.rows.push(Row {
            section: section.into(),
            metric: metric.into(),
            direct,
            passthrough,
            tokenrouter,
            compare,
            target: target.into(),
            verdict,
        });
    }

    /// Records that a whole scenario was skipped, and says so on stderr at once.
    pub fn skip(&mut self, section: &str, why: &str) {
        eprintln!("[{section}] skipped: {why}");
        self.row(
            section,
            "(scenario)",
            [None, None, None],
            String::new(),
            "",
            Verdict::Skipped(why.into()),
        );
        self.raw.insert(section.into(), json!({ "skipped": why }));
    }

    /// Stores raw measurements under `key`.
    pub fn raw(&mut self, key: &str, value: Value) {
        self.raw.insert(key.into(), value);
    }

    /// The table as Markdown.
    pub fn table(&self) -> String {
        let mut out = String::from(
            "| scenario | metric | direct | pass-through | TokenRouter | TokenRouter vs baseline | target | verdict |\n|---|---|---|---|---|---|---|---|\n",
        );
        for r in &self.rows {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
                r.section,
                r.metric,
                fmt(r.direct),
                fmt(r.passthrough),
                fmt(r.tokenrouter),
                r.compare,
                r.target,
                r.verdict.text()
            ));
        }
        out
    }

    /// Writes `results.json` (rows and raw data) and `table.md` into `dir`.
    pub fn write(&self, dir: &Path, meta: Value) -> anyhow::Result<()> {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                json!({
                    "section": r.section, "metric": r.metric, "direct": r.direct,
                    "passthrough": r.passthrough, "tokenrouter": r.tokenrouter,
                    "compare": r.compare, "target": r.target, "verdict": r.verdict.text(),
                })
            })
            .collect();
        let doc = json!({ "meta": meta, "rows": rows, "raw": self.raw });
        std::fs::write(dir.join("results.json"), serde_json::to_vec_pretty(&doc)?)?;
        std::fs::write(dir.join("table.md"), self.table())?;
        Ok(())
    }
}

/// A number with sensible precision, or `–`.
pub fn fmt(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(x) if !x.is_finite() => "–".into(),
        Some(x) if x.abs() >= 1000.0 => format!("{x:.0}"),
        Some(x) if x.abs() >= 10.0 => format!("{x:.1}"),
        Some(x) if x.abs() >= 1.0 => format!("{x:.2}"),
        Some(x) => format!("{x:.3}"),
    }
}

/// `a / b` formatted as `0.83×`, or empty.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    }
}

/// `0.83× <what>`.
pub fn ratio_text(r: Option<f64>, what: &str) -> String {
    r.map(|r| format!("{r:.2}× {what}")).unwrap_or_default()
}

/// `a - b` (TokenRouter minus a baseline).
pub fn added(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? - b?)
}

/// `+0.123 ms vs direct`.
pub fn added_text(d: Option<f64>, unit: &str, what: &str) -> String {
    d.map(|d| format!("{d:+.3} {unit} vs {what}"))
        .unwrap_or_default()
}
