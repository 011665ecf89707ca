//! `tokenrouter keys show`: each limit of a key with its current use, what remains and when it
//! resets, summed from the usage records the control plane stores (`GetUsage` for that key).
//!
//! Budgets sum `cost_usd` since the start of their window ([`window`], the same arithmetic the
//! data plane charges by); `rpm` and `tpm` count the requests and prompt + completion tokens of the
//! last 60 seconds (requests only if admitted: a record without an attempt was refused before
//! reaching a provider, by a limit or as a bad request). Per-user limits group by `user_id`, per-model limits by `requested_model`
//! matched with the data plane's glob. Requests in flight are live state of the data planes and
//! are not shown.

use std::collections::{BTreeSet, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::anyhow;
use tokenrouter_proto::limits::{glob_match, window};
use tokenrouter_proto::v1::{
    ApiKey, Limits, ListRequest, UsageQuery, UsageRecord, UsageReport, UsageRow,
};

use super::client::{Client, call};
use super::key_limits::usd;
use super::output::Printer;

mod print;

use print::{render, to_json};

/// The span `rpm` and `tpm` count over.
const MINUTE_MS: i64 = 60_000;
/// Most end users listed; the others are counted.
const MAX_USERS: usize = 20;
/// Records asked for per one-minute span (the store's maximum), to count admitted requests; when
/// this many come back, some may be missing and the summary's count (refusals included) is used.
const RECORDS: u32 = 1000;

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

/// One usage sum the command asks for: the key's records in `[since, until]`, grouped, and for
/// the one-minute spans the records themselves.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Span {
    group_by: &'static str,
    since: i64,
    until: i64,
    records: bool,
}

impl Span {
    /// A record's value of the span's grouping.
    fn group_of<'r>(&self, record: &'r UsageRecord) -> &'r str {
        match self.group_by {
            "user_id" => &record.user_id,
            "requested_model" => &record.requested_model,
            _ => "",
        }
    }
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
    /// More requests than [`RECORDS`] in the minute: refused ones are counted too.
    approximate: bool,
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
        records: true,
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
                records: false,
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
    fn lines(&self, usage: &HashMap<Span, UsageReport>) -> (Vec<Line>, usize) {
        let line = |scope: &Scope, check: &Check| {
            let mut approximate = false;
            let used = check
                .measure
                .zip(check.span.as_ref())
                .map(|(measure, span)| {
                    let report = usage.get(span);
                    if measure == Measure::Requests && span.records {
                        match report.filter(|r| r.recent.len() < RECORDS as usize) {
                            Some(report) => return admitted(report, span, scope),
                            None => approximate = report.is_some(),
                        }
                    }
                    let rows = report.map(|r| r.rows.as_slice()).unwrap_or_default();
                    let rows = rows.iter().filter(|r| scope.counts(&r.group));
                    // A fold from +0.0: `sum()` of no floats is -0.0, which would print as "-0".
                    rows.fold(0.0, |total, r| total + measure.of(r))
                });
            Line {
                scope: scope.clone(),
                check: check.clone(),
                used,
                approximate,
            }
        };
        let mut lines: Vec<Line> = self.key.iter().map(|c| line(&Scope::Key, c)).collect();

        let mut users = BTreeSet::new();
        for span in self.user.iter().filter_map(|c| c.span.as_ref()) {
            let rows = usage
                .get(span)
                .map(|r| r.rows.as_slice())
                .unwrap_or_default();
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

/// The requests of `scope` in a one-minute span that the limiter admitted: a record without an
/// attempt never reached a provider (refused by a limit, or a bad request) and took no rpm.
fn admitted(report: &UsageReport, span: &Span, scope: &Scope) -> f64 {
    let admitted = report.recent.iter().filter(|r| r.attempts > 0);
    admitted.filter(|r| scope.counts(span.group_of(r))).count() as f64
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
            recent: if span.records { RECORDS } else { 0 },
            api_key: key.name.clone(),
        };
        let report = call(client.get_usage(query)).await?;
        usage.insert(span, report);
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
