//! What `keys show` prints: the table and notes for people, the same facts as JSON for scripts.

use std::time::Duration;

use serde_json::{Value, json};
use tokenrouter_proto::limits::{format_reset, format_utc};
use tokenrouter_proto::v1::ApiKey;

use super::{Line, MAX_USERS, Measure, RECORDS, Reset, Scope};
use crate::admin::output::{Resource, Table};

/// What the numbers are, printed under the table and listed in the JSON.
pub(super) fn notes(lines: &[Line]) -> Vec<String> {
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
            "rpm counts the requests admitted in the last 60 s (refused ones take no rpm); tpm sums \
             their tokens over the same 60 s, while the limiter refills its token bucket \
             continuously"
                .into(),
        );
    }
    if lines.iter().any(|l| l.approximate) {
        notes.push(format!(
            "{RECORDS} or more requests in the last 60 s: rpm use includes refused requests"
        ));
    }
    if lines.iter().any(|l| l.check.reset == Reset::Live) {
        notes.push(
            "max_concurrent: in-flight counts are live in the data planes and not shown".into(),
        );
    }
    notes
}

pub(super) fn reset_text(reset: Reset, now: i64) -> String {
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

pub(super) fn render(key: &ApiKey, lines: &[Line], hidden: usize, now: i64) -> String {
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

pub(super) fn to_json(key: &ApiKey, lines: &[Line], hidden: usize, now: i64) -> Value {
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
                "approximate": l.approximate,
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
