//! One request's limit checks (which rule, which counter), what it asks of them, and the answers:
//! a grant with the most restrictive remaining quotas, or a refusal naming the limit.

use tokenrouter_proto::limits::{BudgetPeriod, format_reset, glob_match, window};

use super::config::{KeyLimits, Rule};
use crate::error::ApiError;

/// Which requests a rule counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Key,
    User(String),
    Model(String),
}

/// One rule applied to one request, and the counter it is kept in.
#[derive(Debug, Clone)]
pub struct Check {
    pub scope: Scope,
    /// Counter name, unique per (key, scope): `k:{key}`, `u:{key}:{user}`, `m:{key}:{glob}`.
    pub counter: String,
    pub rule: Rule,
    /// The budget window this request is charged to (Unix ms; data-plane clock, memory only).
    pub window_start: i64,
    pub window_end: Option<i64>,
    pub unix_now: i64,
}

/// What a request reserves (at admission) or used (at the end).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Demand {
    /// Prompt + completion tokens.
    pub tokens: u64,
    /// Cost in micro-USD.
    pub cost_micro: i64,
}

/// The checks that apply to a request of `key` by `user` for `model`.
pub fn checks(
    key: &str,
    limits: &KeyLimits,
    user: Option<&str>,
    model: &str,
    unix_now: i64,
) -> Vec<Check> {
    let mut out = Vec::new();
    let mut push = |scope: Scope, counter: String, rule: &Rule| {
        let (window_start, window_end) = rule
            .budget
            .map_or((0, None), |(_, period)| window(period, unix_now));
        out.push(Check {
            scope,
            counter,
            rule: rule.clone(),
            window_start,
            window_end,
            unix_now,
        });
    };
    if let Some(rule) = &limits.key {
        push(Scope::Key, format!("k:{key}"), rule);
    }
    if let (Some(rule), Some(user)) = (&limits.user, user.filter(|u| !u.is_empty())) {
        push(
            Scope::User(user.to_string()),
            format!("u:{key}:{user}"),
            rule,
        );
    }
    for (glob, rule) in &limits.models {
        if glob_match(glob, model) {
            push(Scope::Model(glob.clone()), format!("m:{key}:{glob}"), rule);
        }
    }
    out
}

/// Remaining quota of one kind (requests or tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u64,
    pub remaining: u64,
    /// Until the quota is whole again.
    pub reset_ms: u64,
}

impl Quota {
    pub fn new(limit: u64, remaining: u64, reset_ms: u64) -> Quota {
        Quota {
            limit,
            remaining,
            reset_ms,
        }
    }
}

/// Keeps the more restrictive of two quotas (fewer remaining).
pub trait Narrow {
    fn narrow(&mut self, q: Quota);
}

impl Narrow for Option<Quota> {
    fn narrow(&mut self, q: Quota) {
        if self.is_none_or(|cur| q.remaining < cur.remaining) {
            *self = Some(q);
        }
    }
}

/// An admitted request's most restrictive quotas, for the `x-ratelimit-*` headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Grant {
    pub requests: Option<Quota>,
    pub tokens: Option<Quota>,
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    Requests,
    Burst,
    Tokens,
    /// The request alone asks for more tokens than the limit allows in a minute.
    TooManyTokens,
    Concurrency,
    Budget,
}

/// A refused request: the check (index into the checks) and when to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub check: usize,
    pub what: Exceeded,
    pub retry_after_ms: u64,
}

impl Refusal {
    pub fn new(check: usize, what: Exceeded, retry_after_ms: u64) -> Refusal {
        Refusal {
            check,
            what,
            retry_after_ms,
        }
    }

    /// The client's answer: 429 `rate_limit_exceeded` with `Retry-After`, or 429
    /// `insufficient_quota` with the reset time. Names the limit, never the key.
    pub fn to_api_error(self, checks: &[Check]) -> ApiError {
        let Some(c) = checks.get(self.check) else {
            return ApiError::rate_limited("Rate limit reached.", Some(1));
        };
        let whose = match &c.scope {
            Scope::Key => "this API key".to_string(),
            Scope::User(u) => format!("end user `{}` of this API key", shorten(u)),
            Scope::Model(glob) => format!("models `{glob}` on this API key"),
        };
        let retry = std::time::Duration::from_millis(self.retry_after_ms);
        let secs = self.retry_after_ms.div_ceil(1000).max(1);
        let r = &c.rule;
        let limit = match self.what {
            Exceeded::Requests => format!("{} requests per minute", r.rpm),
            Exceeded::Burst => format!("a burst of {} requests", r.rpm_burst),
            Exceeded::Tokens => format!("{} tokens per minute", r.tpm),
            Exceeded::TooManyTokens => {
                return ApiError::rate_limited(
                    format!(
                        "This request needs more tokens than the limit of {} tokens per minute for {whose} allows; lower `max_tokens` or the prompt.",
                        r.tpm
                    ),
                    None,
                );
            }
            Exceeded::Concurrency => format!("{} requests at once", r.max_concurrent),
            Exceeded::Budget => {
                let (budget, period) = r.budget.unwrap_or((0, BudgetPeriod::Total));
                let resets = match period {
                    BudgetPeriod::Total => "it does not reset".to_string(),
                    _ => format!("it resets in {}", format_reset(retry)),
                };
                return ApiError::quota_exhausted(
                    format!(
                        "The budget of ${:.2} per {} for {whose} is spent; {resets}.",
                        budget as f64 / 1e6,
                        period.as_str()
                    ),
                    (period != BudgetPeriod::Total).then_some(secs),
                );
            }
        };
        ApiError::rate_limited(
            format!(
                "Rate limit reached: {limit} for {whose}. Retry in {}.",
                format_reset(retry)
            ),
            Some(secs),
        )
    }
}

/// An end-user id in a message, cut to a readable length.
fn shorten(user: &str) -> String {
    user.chars().take(64).collect()
}
