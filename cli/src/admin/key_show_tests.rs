//! `keys show` computed over synthetic usage, summed the way the store sums it.

use serde_json::{Value, json};
use tokenrouter_proto::limits::days_from_civil;
use tokenrouter_proto::v1::ModelLimit;

use super::*;

/// 2026-12-02T10:25:31Z, a Wednesday.
fn now() -> i64 {
    days_from_civil(2026, 12, 2) * 86_400_000 + (10 * 3600 + 25 * 60 + 31) * 1000
}

struct Rec {
    user: &'static str,
    model: &'static str,
    ago_ms: i64,
    tokens: u64,
    cost: f64,
    /// Refused before any attempt (by a limit): recorded, but no rpm taken.
    refused: bool,
}

fn rec(user: &'static str, model: &'static str, ago_ms: i64, tokens: u64, cost: f64) -> Rec {
    Rec {
        user,
        model,
        ago_ms,
        tokens,
        cost,
        refused: false,
    }
}

fn refused(user: &'static str, model: &'static str, ago_ms: i64) -> Rec {
    Rec {
        refused: true,
        ..rec(user, model, ago_ms, 0, 0.0)
    }
}

/// What `GetUsage` answers for `span` over `records` (one key's, newest first).
fn sum(records: &[Rec], span: &Span, now: i64) -> UsageReport {
    let mut rows: Vec<UsageRow> = Vec::new();
    let mut recent = Vec::new();
    for r in records {
        let at = now - r.ago_ms;
        if at < span.since || at > span.until {
            continue;
        }
        if span.records && recent.len() < RECORDS as usize {
            recent.push(UsageRecord {
                unix_ms: at,
                user_id: r.user.into(),
                requested_model: r.model.into(),
                attempts: u32::from(!r.refused),
                status: if r.refused { 429 } else { 200 },
                ..Default::default()
            });
        }
        let group = match span.group_by {
            "user_id" => r.user,
            "requested_model" => r.model,
            _ => "",
        };
        let row = match rows.iter().position(|row| row.group == group) {
            Some(i) => &mut rows[i],
            None => {
                rows.push(UsageRow {
                    group: group.into(),
                    ..Default::default()
                });
                rows.last_mut().unwrap()
            }
        };
        row.requests += 1;
        row.prompt_tokens += r.tokens / 2;
        row.completion_tokens += r.tokens - r.tokens / 2;
        row.cost_usd += r.cost;
    }
    UsageReport { rows, recent }
}

fn limits(rpm: u32, tpm: u64, budget_usd: f64, period: &str) -> Option<Limits> {
    Some(Limits {
        rpm,
        tpm,
        budget_usd,
        budget_period: period.into(),
        ..Default::default()
    })
}

fn team_key() -> ApiKey {
    ApiKey {
        name: "team-a".into(),
        prefix: "sk-tr-ab".into(),
        limits: Some(Limits {
            rpm_burst: 20,
            max_concurrent: 4,
            ..limits(10, 1000, 5.0, "month").unwrap()
        }),
        user_limits: limits(2, 0, 1.0, "day"),
        model_limits: vec![ModelLimit {
            model: "gpt-4o*".into(),
            limits: limits(3, 0, 2.0, "month"),
        }],
        ..Default::default()
    }
}

fn shown(key: &ApiKey, records: &[Rec]) -> (Vec<Line>, usize) {
    let plan = Plan::new(key, now());
    let usage = plan
        .spans()
        .into_iter()
        .map(|span| {
            let rows = sum(records, &span, now());
            (span, rows)
        })
        .collect();
    plan.lines(&usage)
}

#[test]
fn every_limit_with_its_use_remaining_and_reset() {
    let records = [
        rec("u1", "gpt-4o", 1_000, 100, 0.5),
        // Refused by a limit: recorded, but it took no rpm (nor tokens or spend).
        refused("u1", "gpt-4o", 2_000),
        rec("u1", "gpt-4o-mini", 30_000, 300, 0.25),
        rec("u2", "claude-x", 59_000, 50, 0.125),
        // Older than a minute: only the budgets count these.
        rec("u2", "gpt-4o", 61_000, 4000, 1.0),
        // Yesterday: the month's budget only (not the users' day).
        rec("u3", "claude-x", 86_400_000, 10, 2.0),
    ];
    let key = team_key();
    let (lines, hidden) = shown(&key, &records);
    assert_eq!(hidden, 0);
    let text = render(&key, &lines, hidden, now());
    // u2 comes before u1: its day budget is overspent (1.125 of 1), u1 is at its rpm (2 of 2).
    let expected = "\
api key team-a (sk-tr-ab...), enabled; use as of 2026-12-02T10:25:31Z
SCOPE          LIMIT           MAX   USED    REMAINING  RESETS
key            rpm (burst 20)  10    3       7          rolling 60 s
key            tpm             1000  450     550        rolling 60 s
key            max_concurrent  4     -       -          live in the data planes
key            budget/month    $5    $3.875  $1.125     2027-01-01T00:00:00Z (in 709h34m29s)
user u2        rpm             2     1       1          rolling 60 s
user u2        budget/day      $1    $1.125  $0         2026-12-03T00:00:00Z (in 13h34m29s)
user u1        rpm             2     2       0          rolling 60 s
user u1        budget/day      $1    $0.75   $0.25      2026-12-03T00:00:00Z (in 13h34m29s)
model gpt-4o*  rpm             3     2       1          rolling 60 s
model gpt-4o*  budget/month    $2    $1.75   $0.25      2027-01-01T00:00:00Z (in 709h34m29s)
note: use counts finished requests in the control plane's usage records; data planes report them about every second, and requests still running are not counted
note: rpm counts the requests admitted in the last 60 s (refused ones take no rpm); tpm sums their tokens over the same 60 s, while the limiter refills its token bucket continuously
note: max_concurrent: in-flight counts are live in the data planes and not shown
";
    assert_eq!(text, expected, "{text}");

    let value = to_json(&key, &lines, hidden, now());
    let first_user = &value["limits"][4];
    assert_eq!(first_user["scope"], "user");
    assert_eq!(first_user["user"], "u2");
    assert_eq!(first_user["used"], 1.0);
    let budget = &value["limits"][3];
    assert_eq!(budget["limit"], "budget_usd");
    assert_eq!(budget["unit"], "usd");
    assert_eq!(
        budget["resets_at_unix_ms"],
        days_from_civil(2027, 1, 1) * 86_400_000
    );
    assert_eq!(
        budget["since_unix_ms"],
        days_from_civil(2026, 12, 1) * 86_400_000
    );
    assert_eq!(
        value["limits"][2]["used"],
        Value::Null,
        "concurrency is not shown"
    );
    assert_eq!(value["api_key"]["limits"]["budget_period"], "month");
    assert_eq!(value["notes"].as_array().unwrap().len(), 3);
}

#[test]
fn users_without_traffic_and_too_many_users() {
    let key = ApiKey {
        name: "k".into(),
        user_limits: limits(5, 0, 0.0, ""),
        ..Default::default()
    };
    let (lines, hidden) = shown(&key, &[]);
    assert_eq!((lines.len(), hidden), (1, 0));
    assert_eq!(lines[0].scope, Scope::EachUser);
    assert_eq!(
        (lines[0].used, lines[0].remaining()),
        (Some(0.0), Some(5.0))
    );

    let names: Vec<&'static str> = (0..25)
        .map(|i| &*Box::leak(format!("user-{i:02}").into_boxed_str()))
        .collect();
    let records: Vec<Rec> = names
        .iter()
        .enumerate()
        .flat_map(|(i, user)| (0..=i % 5).map(move |_| rec(user, "m", 10, 1, 0.0)))
        .collect();
    let (lines, hidden) = shown(&key, &records);
    assert_eq!((lines.len(), hidden), (20, 5));
    // The busiest first (5 requests: user-04, user-09, ...), ties in name order.
    assert_eq!(lines[0].scope, Scope::User("user-04".into()));
    assert_eq!(lines[1].scope, Scope::User("user-09".into()));
    let text = render(&key, &lines, hidden, now());
    assert!(
        text.contains("5 more users not shown (the 20 closest to a limit are)\n"),
        "{text}"
    );
    assert!(!text.contains("max_concurrent"), "{text}");
}

#[test]
fn total_budgets_never_reset_and_keys_without_limits_say_so() {
    let key = ApiKey {
        name: "k".into(),
        prefix: "sk-tr-x".into(),
        disabled: true,
        limits: limits(0, 0, 10.0, "total"),
        ..Default::default()
    };
    let records = [rec("", "m", 400 * 86_400_000, 1, 4.0)];
    let (lines, _) = shown(&key, &records);
    assert_eq!(lines[0].used, Some(4.0), "a year-old request still counts");
    let text = render(&key, &lines, 0, now());
    assert!(text.contains("never (total)"), "{text}");
    assert!(!text.contains("rolling"), "{text}");

    let bare = ApiKey {
        name: "k".into(),
        prefix: "sk-tr-x".into(),
        ..Default::default()
    };
    let (lines, _) = shown(&bare, &[]);
    assert!(
        Plan::new(&bare, now()).spans().is_empty(),
        "no usage query needed"
    );
    assert_eq!(
        render(&bare, &lines, 0, now()),
        "api key k (sk-tr-x...), enabled; use as of 2026-12-02T10:25:31Z\nno limits\n"
    );
    assert_eq!(to_json(&bare, &lines, 0, now())["notes"], json!([]));
}

#[test]
fn past_the_record_limit_rpm_falls_back_to_the_summary() {
    let key = ApiKey {
        name: "k".into(),
        limits: limits(2000, 0, 0.0, ""),
        ..Default::default()
    };
    let mut records: Vec<Rec> = (0..1200).map(|i| rec("", "m", 10 + i, 1, 0.0)).collect();
    records.push(refused("", "m", 5));
    let (lines, _) = shown(&key, &records[..999]);
    assert_eq!((lines[0].used, lines[0].approximate), (Some(999.0), false));
    let (lines, _) = shown(&key, &records);
    assert_eq!(lines[0].used, Some(1201.0), "refusals included");
    assert!(lines[0].approximate);
    let text = render(&key, &lines, 0, now());
    assert!(
        text.contains(
            "note: 1000 or more requests in the last 60 s: rpm use includes refused requests\n"
        ),
        "{text}"
    );
    assert_eq!(
        to_json(&key, &lines, 0, now())["limits"][0]["approximate"],
        true
    );
}
