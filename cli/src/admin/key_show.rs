//! `tokenrouter keys show`: each limit of a key with its current use, what remains and when it
//! resets, summed from the usage records the control plane stores (`GetUsage` for that key).
//!
//! Budgets sum `cost_usd` since the start of their window ([`window`], the same arithmetic the
//! data plane charges by); `rpm` and `tpm` count the requests and prompt + completion tokens of the
//! last 60 seconds. Per-user limits group by `user_id`, per-model limits by `requested_model`
//! matched with the data plane's glob. Requests in flight are live state of the data planes and
//! are not shown.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::anyhow;
use serde_json::{Value, json};
use tokenrouter_proto::limits::{format_reset, format_utc, glob_match, window};
use tokenrouter_proto::v1::{ApiKey, Limits, ListRequest, UsageQuery, UsageRow};

use super::client::{Client, call};
use super::key_limits::usd;
use super::output::{Printer, Resource, Table};

/// The span `rpm` and `tpm` count over.
const MINUTE_MS: i64 = 60_000;
/// Most end users listed; the others are counted.
const MAX_USERS: usize = 20;

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Measure {
    Requests,
    Tokens,
    Usd,
}

impl Measure {
    fn of(self, row: &UsageRow) -> f64 {
        match self {
            Measure::Requests => row.requests as f64,
            Measure::Tokens => (row.prompt_tokens + row.completion_tokens) as f64,
            Measure::Usd => row.cost_usd,
        }
    }

    fn show(self, amount: f64) -> String {
        match self {
            Measure::Usd => format!("${}", usd(amount)),
            _ => format!("{amount:.0}"),
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Measure::Requests => "requests",
            Measure::Tokens => "tokens",
            Measure::Usd => "usd",
        }
    }
}

/// One usage sum the command asks for: the key's records in `[since, until]`, grouped.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Span {
    group_by: &'static str,
    since: i64,
    until: i64,
}

/// When a limit's use starts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reset {
    /// A sliding minute.
    Rolling,
    /// The end of the budget window.
    At(i64),
    /// A `total` budget.
    Never,
    /// Concurrency: nothing to reset, and no use shown.
    Live,
}

/// One limit of a [`Limits`] message, with what its use is summed over.
#[derive(Debug, Clone)]
struct Check {
    name: &'static str,
    label: String,
    max: f64,
    measure: Option<Measure>,
    span: Option<Span>,
    reset: Reset,
}

/// Who a limit applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    Key,
    User(String),
    /// A per-user limit when no user has used the key in its span yet.
    EachUser,
    Model(String),
}

impl Scope {
    fn show(&self) -> String {
        match self {
            Scope::Key => "key".into(),
            Scope::User(user) => format!("user {user}"),
            Scope::EachUser => "each user".into(),
            Scope::Model(glob) => format!("model {glob}"),
        }
    }

    /// Whether a row of the span's grouping counts for this scope.
    fn counts(&self, group: &str) -> bool {
        match self {
            Scope::Key | Scope::EachUser => true,
            Scope::User(user) => group == user,
            Scope::Model(glob) => glob_match(glob, group),
        }
    }
}

/// One printed limit.
#[derive(Debug, Clone)]
struct Line {
    scope: Scope,
    check: Check,
    used: Option<f64>,
}

impl Line {
    fn remaining(&self) -> Option<f64> {
        self.used.map(|used| (self.check.max - used).max(0.0))
    }

    fn share(&self) -> f64 {
        self.used.map_or(0.0, |used| used / self.check.max)
    }
}

/// The checks of one `Limits`, summing rows grouped by `group_by`.
fn checks(limits: &Limits, group_by: &'static str, now: i64) -> Vec<Check> {
    let minute = Span {
        group_by,
        since: now - MINUTE_MS + 1,
        until: now,
    };
    let mut out = Vec::new();
    if limits.rpm > 0 {
        let label = match limits.rpm_burst {
            0 => "rpm".to_string(),
            burst => format!("rpm (burst {burst})"),
        };
        out.push(Check {
            name: "rpm",
            label,
            max: limits.rpm.into(),
            measure: Some(Measure::Requests),
            span: Some(minute.clone()),
            reset: Reset::Rolling,
        });
    }
    if limits.tpm > 0 {
        out.push(Check {
            name: "tpm",
            label: "tpm".into(),
            max: limits.tpm as f64,
            measure: Some(Measure::Tokens),
            span: Some(minute),
            reset: Reset::Rolling,
        });
    }
    if limits.max_concurrent > 0 {
        out.push(Check {
            name: "max_concurrent",
            label: "max_concurrent".into(),
            max: limits.max_concurrent.into(),
            measure: None,
            span: None,
            reset: Reset::Live,
        });
    }
    if let Some(period) = limits.period().filter(|_| limits.budget_usd > 0.0) {
        let (start, end) = window(period, now);
        out.push(Check {
            name: "budget_usd",
            label: format!("budget/{period}"),
            max: limits.budget_usd,
            measure: Some(Measure::Usd),
            span: Some(Span {
                group_by,
                since: start,
                until: end.map_or(now, |end| end - 1),
            }),
            reset: end.map_or(Reset::Never, Reset::At),
        });
    }
    out
}

/// Every limit of a key, each with the usage sums it needs.
struct Plan {
    key: Vec<Check>,
    user: Vec<Check>,
    models: Vec<(String, Vec<Check>)>,
}

impl Plan {
    fn new(key: &ApiKey, now: i64) -> Self {
        let of = |l: Option<&Limits>, group| l.map(|l| checks(l, group, now)).unwrap_or_default();
        Plan {
            key: of(key.limits.as_ref(), ""),
            user: of(key.user_limits.as_ref(), "user_id"),
            models: key
                .model_limits
                .iter()
                .map(|m| (m.model.clone(), of(m.limits.as_ref(), "requested_model")))
                .collect(),
        }
    }

    fn spans(&self) -> Vec<Span> {
        let all = self.key.iter().chain(&self.user);
        let all = all.chain(self.models.iter().flat_map(|(_, c)| c));
        let mut spans: Vec<Span> = Vec::new();
        for span in all.filter_map(|c| c.span.clone()) {
            if !spans.contains(&span) {
                spans.push(span);
            }
        }
        spans
    }

    /// The printed lines, and how many users were left out.
    fn lines(&self, usage: &HashMap<Span, Vec<UsageRow>>) -> (Vec<Line>, usize) {
        let line = |scope: &Scope, check: &Check| {
            let used = check
                .measure
                .zip(check.span.as_ref())
                .map(|(measure, span)| {
                    let rows = usage.get(span).map(Vec::as_slice).unwrap_or_default();
                    let rows = rows.iter().filter(|r| scope.counts(&r.group));
                    // A fold from +0.0: `sum()` of no floats is -0.0, which would print as "-0".
                    rows.fold(0.0, |total, r| total + measure.of(r))
                });
            Line {
                scope: scope.clone(),
                check: check.clone(),
                used,
            }
        };
        let mut lines: Vec<Line> = self.key.iter().map(|c| line(&Scope::Key, c)).collect();

        let mut users = BTreeSet::new();
        for span in self.user.iter().filter_map(|c| c.span.as_ref()) {
            let rows = usage.get(span).map(Vec::as_slice).unwrap_or_default();
            users.extend(
                rows.iter()
                    .map(|r| r.group.as_str())
                    .filter(|u| !u.is_empty()),
            );
        }
        let mut per_user: Vec<Vec<Line>> = users
            .iter()
            .map(|user| {
                let scope = Scope::User(user.to_string());
                self.user.iter().map(|c| line(&scope, c)).collect()
            })
            .collect();
        if per_user.is_empty() && !self.user.is_empty() {
            per_user.push(
                self.user
                    .iter()
                    .map(|c| line(&Scope::EachUser, c))
                    .collect(),
            );
        }
        // Closest to a limit first; the sort is stable, so ties stay in name order.
        let share = |lines: &Vec<Line>| lines.iter().map(Line::share).fold(0.0, f64::max);
        per_user.sort_by(|a, b| share(b).total_cmp(&share(a)));
        let hidden = per_user.len().saturating_sub(MAX_USERS);
        lines.extend(per_user.into_iter().take(MAX_USERS).flatten());

        for (glob, checks) in &self.models {
            let scope = Scope::Model(glob.clone());
            lines.extend(checks.iter().map(|c| line(&scope, c)));
        }
        (lines, hidden)
    }
}

/// What the numbers are, printed under the table and listed in the JSON.
fn notes(lines: &[Line]) -> Vec<String> {
    if lines.is_empty() {
        return Vec::new();
    }
    let mut notes = vec![
        "use counts finished requests in the control plane's usage records; data planes report \
         them about every second, and requests still running are not counted"
            .to_string(),
    ];
    if lines.iter().any(|l| l.check.reset == Reset::Rolling) {
        notes.push(
            "rpm and tpm count the last 60 s; the limiter's own window (GCRA) may differ slightly"
                .into(),
        );
    }
    if lines.iter().any(|l| l.check.reset == Reset::Live) {
        notes.push(
            "max_concurrent: in-flight counts are live in the data planes and not shown".into(),
        );
    }
    notes
}

fn reset_text(reset: Reset, now: i64) -> String {
    match reset {
        Reset::Rolling => "rolling 60 s".into(),
        Reset::Never => "never (total)".into(),
        Reset::Live => "live in the data planes".into(),
        Reset::At(at) => {
            let secs = ((at - now).max(0) as u64).div_ceil(1000);
            let left = format_reset(Duration::from_secs(secs));
            format!("{} (in {left})", format_utc(at))
        }
    }
}

fn render(key: &ApiKey, lines: &[Line], hidden: usize, now: i64) -> String {
    let status = if key.disabled { "disabled" } else { "enabled" };
    let mut out = format!(
        "api key {} ({}...), {status}; use as of {}\n",
        key.name,
        key.prefix,
        format_utc(now)
    );
    if lines.is_empty() {
        out.push_str("no limits\n");
        return out;
    }
    let mut table = Table::with_headers(&["SCOPE", "LIMIT", "MAX", "USED", "REMAINING", "RESETS"]);
    for l in lines {
        let amount = |v: Option<f64>| match (l.check.measure, v) {
            (Some(m), Some(v)) => m.show(v),
            _ => "-".into(),
        };
        let max = match l.check.measure {
            Some(m) => m.show(l.check.max),
            None => format!("{:.0}", l.check.max),
        };
        table.row(vec![
            l.scope.show(),
            l.check.label.clone(),
            max,
            amount(l.used),
            amount(l.remaining()),
            reset_text(l.check.reset, now),
        ]);
    }
    out.push_str(&table.render());
    if hidden > 0 {
        out.push_str(&format!(
            "{hidden} more users not shown (the {MAX_USERS} closest to a limit are)\n"
        ));
    }
    for note in notes(lines) {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}

fn to_json(key: &ApiKey, lines: &[Line], hidden: usize, now: i64) -> Value {
    let limits: Vec<Value> = lines
        .iter()
        .map(|l| {
            let (scope, user, model) = match &l.scope {
                Scope::Key => ("key", None, None),
                Scope::User(user) => ("user", Some(user.as_str()), None),
                Scope::EachUser => ("user", None, None),
                Scope::Model(glob) => ("model", None, Some(glob.as_str())),
            };
            let (reset, resets_at) = match l.check.reset {
                Reset::Rolling => ("rolling_60s", None),
                Reset::At(at) => ("window_end", Some(at)),
                Reset::Never => ("never", None),
                Reset::Live => ("live", None),
            };
            json!({
                "scope": scope, "user": user, "model": model, "limit": l.check.name,
                "label": l.check.label, "unit": l.check.measure.map(Measure::unit),
                "max": l.check.max, "used": l.used, "remaining": l.remaining(),
                "since_unix_ms": l.check.span.as_ref().map(|s| s.since),
                "reset": reset, "resets_at_unix_ms": resets_at,
            })
        })
        .collect();
    json!({
        "api_key": key.to_json(),
        "as_of_unix_ms": now,
        "limits": limits,
        "users_not_shown": hidden,
        "notes": notes(lines),
    })
}

/// Prints a key's limits with their current use (`keys show`).
pub(super) async fn run(
    client: &mut Client,
    printer: &mut Printer<'_>,
    name: &str,
) -> anyhow::Result<()> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let keys = call(client.list_api_keys(ListRequest {})).await?;
    let key = keys
        .api_keys
        .into_iter()
        .find(|key| key.name == name)
        .ok_or_else(|| anyhow!("NOT_FOUND: no api key named {name:?}"))?;
    let plan = Plan::new(&key, now);
    let mut usage = HashMap::new();
    for span in plan.spans() {
        let query = UsageQuery {
            since_unix_ms: span.since,
            until_unix_ms: span.until,
            group_by: span.group_by.into(),
            recent: 0,
            api_key: key.name.clone(),
        };
        let report = call(client.get_usage(query)).await?;
        usage.insert(span, report.rows);
    }
    let (lines, hidden) = plan.lines(&usage);
    if printer.json() {
        printer.value(&to_json(&key, &lines, hidden, now))
    } else {
        printer.text(&render(&key, &lines, hidden, now))
    }
}

#[cfg(test)]
#[path = "key_show_tests.rs"]
mod tests;
