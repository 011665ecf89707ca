//! What the dashboard asks of a store: rollup sums over a time range (charts and breakdowns), a
//! page of the request log (newest first, filtered, by cursor, never bodies), one record, and
//! pruning. The SQL both backends share is built here, with every value a bound parameter.

use super::rollup_sql::BUCKETS;
use super::usage_sql::COLUMNS;

/// Most rows a log page holds.
pub const MAX_PAGE: u32 = 100;
/// Most rows pruned in one statement (so pruning never holds the store for long).
pub const PRUNE_BATCH: u32 = 5_000;

/// Rollup sums of one step over `[from, to]` (bucket starts), by a group, per bucket or not.
#[derive(Debug, Clone)]
pub struct RollupQuery {
    pub step: &'static str,
    /// The dimension read, and the expression grouped by: from
    /// [`super::rollup_sql::group_column`].
    pub dim: &'static str,
    pub from: i64,
    pub to: i64,
    pub group: &'static str,
    pub per_bucket: bool,
    /// Only these values of the dimension (empty: all).
    pub only: Vec<String>,
}

/// One group's (and bucket's) sums.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RollupRow {
    pub group: String,
    /// 0 when not per bucket.
    pub bucket: i64,
    pub requests: i64,
    pub errors: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cached_tokens: i64,
    pub reasoning_tokens: i64,
    pub cost_usd: f64,
    pub latency: [i64; BUCKETS],
    pub ttft: [i64; BUCKETS],
}

impl RollupRow {
    /// From the integer sums in [`super::rollup_sql::summed_columns`] order (cost apart).
    pub fn from_sums(group: String, bucket: i64, ints: &[i64], cost_usd: f64) -> RollupRow {
        let at = |i: usize| ints.get(i).copied().unwrap_or(0);
        let mut latency = [0; BUCKETS];
        let mut ttft = [0; BUCKETS];
        for i in 0..BUCKETS {
            latency[i] = at(6 + i);
            ttft[i] = at(6 + BUCKETS + i);
        }
        RollupRow {
            group,
            bucket,
            requests: at(0),
            errors: at(1),
            prompt_tokens: at(2),
            completion_tokens: at(3),
            cached_tokens: at(4),
            reasoning_tokens: at(5),
            cost_usd,
            latency,
            ttft,
        }
    }

    /// Adds `other`'s sums.
    pub fn add(&mut self, other: &RollupRow) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.cached_tokens += other.cached_tokens;
        self.reasoning_tokens += other.reasoning_tokens;
        self.cost_usd += other.cost_usd;
        for i in 0..BUCKETS {
            self.latency[i] += other.latency[i];
            self.ttft[i] += other.ttft[i];
        }
    }
}

/// Which answers a log page holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatusFilter {
    #[default]
    Any,
    Ok,
    Error,
    Code(u32),
}

/// A page of the request log.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub from: i64,
    pub to: i64,
    pub status: StatusFilter,
    pub key: Option<String>,
    /// Matches the served or the requested model.
    pub model: Option<String>,
    pub provider: Option<String>,
    pub user: Option<String>,
    pub routing_mode: Option<String>,
    /// `any` (some rule acted), `none`, or an action (`mask`, `block`, …).
    pub firewall: Option<String>,
    /// Rows strictly older than this (time, record id): the previous page's last row.
    pub before: Option<(i64, String)>,
    pub limit: u32,
}

/// A bound parameter of a log query.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Int(i64),
    Text(String),
}

/// The page's SQL and its parameters; `p(i)` renders placeholder `i` (1-based).
pub fn log_page(q: &LogQuery, p: impl Fn(usize) -> String) -> (String, Vec<Param>) {
    let mut params = vec![Param::Int(q.from), Param::Int(q.to)];
    let mut clauses = vec![format!("unix_ms >= {} AND unix_ms <= {}", p(1), p(2))];
    let bind = |params: &mut Vec<Param>, v: Param| {
        params.push(v);
        p(params.len())
    };
    for (column, value) in [
        ("api_key", &q.key),
        ("provider", &q.provider),
        ("user_id", &q.user),
        ("routing_mode", &q.routing_mode),
    ] {
        if let Some(v) = value {
            let at = bind(&mut params, Param::Text(v.clone()));
            clauses.push(format!("{column} = {at}"));
        }
    }
    if let Some(m) = &q.model {
        let at = bind(&mut params, Param::Text(m.clone()));
        clauses.push(format!("(model = {at} OR requested_model = {at})"));
    }
    match q.status {
        StatusFilter::Any => {}
        StatusFilter::Ok => clauses.push("status < 400 AND completed".into()),
        StatusFilter::Error => clauses.push("(status >= 400 OR NOT completed)".into()),
        StatusFilter::Code(c) => {
            let at = bind(&mut params, Param::Int(i64::from(c)));
            clauses.push(format!("status = {at}"));
        }
    }
    match q.firewall.as_deref() {
        None => {}
        Some("any") => clauses.push("firewall <> ''".into()),
        Some("none") => clauses.push("firewall = ''".into()),
        Some(action) => {
            // Each verdict is `rule:detector:action:direction:count`, comma-separated.
            let at = bind(&mut params, Param::Text(format!("%:{action}:%")));
            clauses.push(format!("firewall LIKE {at}"));
        }
    }
    if let Some((at_ms, id)) = &q.before {
        let t = bind(&mut params, Param::Int(*at_ms));
        let i = bind(&mut params, Param::Text(id.clone()));
        clauses.push(format!(
            "(unix_ms < {t} OR (unix_ms = {t} AND record_id < {i}))"
        ));
    }
    let limit = bind(
        &mut params,
        Param::Int(i64::from(q.limit.clamp(1, MAX_PAGE))),
    );
    let sql = format!(
        "SELECT {} FROM tokenrouter_usage WHERE {} ORDER BY unix_ms DESC, record_id DESC LIMIT {limit}",
        COLUMNS.join(", "),
        clauses.join(" AND ")
    );
    (sql, params)
}

/// One record by its id; placeholder 1.
pub fn one(p: impl Fn(usize) -> String) -> String {
    format!(
        "SELECT {} FROM tokenrouter_usage WHERE record_id = {}",
        COLUMNS.join(", "),
        p(1)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_filter_is_a_bound_parameter() {
        let q = LogQuery {
            from: 1,
            to: 2,
            key: Some("k' OR 1=1".into()),
            model: Some("m".into()),
            status: StatusFilter::Code(429),
            firewall: Some("mask".into()),
            before: Some((5, "r".into())),
            limit: 1000,
            ..LogQuery::default()
        };
        let (sql, params) = log_page(&q, |i| format!("${i}"));
        assert!(!sql.contains("OR 1=1"), "{sql}");
        assert!(
            sql.contains("(model = $4 OR requested_model = $4)"),
            "{sql}"
        );
        assert!(sql.ends_with("LIMIT $9"), "{sql}");
        assert_eq!(params.last(), Some(&Param::Int(i64::from(MAX_PAGE))));
        assert_eq!(params[5], Param::Text("%:mask:%".into()));
    }
}
