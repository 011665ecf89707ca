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

/// The dashboard's part of the store contract: every backend's tests call it.
#[cfg(test)]
pub(crate) mod contract {
    use crate::store::Store;

    /// Records are rolled up as they are stored (a redelivered one is not counted twice), and
    /// the log pages through them newest first, filtered, by cursor.
    pub async fn rolls_up_and_pages_usage(store: &dyn Store) {
        use super::{LogQuery, RollupQuery, StatusFilter};
        use tokenrouter_proto::v1::UsageRecord;
        let base = 1_700_000_000_000i64;
        let record = |i: i64, key: &str, status: u32, latency: u32| UsageRecord {
            request_id: format!("q{i}"),
            record_id: format!("rec-{i:04}"),
            unix_ms: base + i * 1000,
            api_key: key.into(),
            provider: if i % 2 == 0 { "even" } else { "odd" }.into(),
            model: "m".into(),
            requested_model: "auto:cost".into(),
            status,
            prompt_tokens: 10,
            completion_tokens: 2,
            cost_usd: 0.25,
            latency_ms: latency,
            ttft_ms: 30,
            stream: true,
            completed: true,
            firewall: if i == 3 {
                "pii:email:mask:input:1".into()
            } else {
                String::new()
            },
            ..Default::default()
        };
        let mut batch: Vec<UsageRecord> = (0..10)
            .map(|i| {
                record(
                    i,
                    if i < 6 { "a" } else { "b" },
                    if i == 9 { 500 } else { 200 },
                    80,
                )
            })
            .collect();
        batch[7].request_body =
            r#"[{"role":"user","parts":[{"type":"text","content":"hi"}]}]"#.into();
        batch[7].response_body = "x".repeat(super::super::bodies::MAX_BODY + 10);
        store.record_usage(batch.clone().into()).await.unwrap();
        // Redelivered with one new record: only the new one is added.
        let mut again = batch[..3].to_vec();
        again.push(record(10, "b", 200, 4000));
        store.record_usage(again.into()).await.unwrap();
        let q = |step: &'static str, by: &str, per_bucket: bool| {
            let (dim, group) = crate::store::rollup_sql::group_column(by).unwrap();
            RollupQuery {
                step,
                dim,
                from: 0,
                to: i64::MAX,
                group,
                per_bucket,
                only: Vec::new(),
            }
        };
        for step in ["m", "h", "d"] {
            let rows = store.rollups(q(step, "", false)).await.unwrap();
            assert_eq!(rows.len(), 1, "{step}");
            let r = &rows[0];
            assert_eq!(
                (r.requests, r.errors, r.prompt_tokens),
                (11, 1, 110),
                "{step}"
            );
            assert!((r.cost_usd - 2.75).abs() < 1e-9, "{step}");
            assert_eq!(r.latency[6], 10, "{step}: 80 ms is in the 50-100 bucket");
            assert_eq!(r.latency[11], 1, "{step}: 4 s is in the 2-5 s bucket");
            assert_eq!(r.ttft[5], 11, "{step}: 30 ms TTFT");
        }
        let by_key = store.rollups(q("h", "key", false)).await.unwrap();
        let a = by_key.iter().find(|r| r.group == "a").unwrap();
        assert_eq!(a.requests, 6);
        let only_even = RollupQuery {
            only: vec!["even".into()],
            ..q("m", "provider", false)
        };
        let even = store.rollups(only_even).await.unwrap();
        assert_eq!(even.len(), 1);
        assert_eq!((even[0].group.as_str(), even[0].requests), ("even", 6));
        let per_minute = store.rollups(q("m", "provider", true)).await.unwrap();
        assert!(per_minute.iter().all(|r| r.bucket % 60_000 == 0));
        assert_eq!(per_minute.iter().map(|r| r.requests).sum::<i64>(), 11);

        let page = |before: Option<(i64, String)>, status| LogQuery {
            from: base,
            to: base + 100_000,
            before,
            status,
            limit: 4,
            ..LogQuery::default()
        };
        let first = store
            .usage_page(page(None, StatusFilter::Any))
            .await
            .unwrap();
        assert_eq!(
            first
                .iter()
                .map(|r| r.record_id.as_str())
                .collect::<Vec<_>>(),
            ["rec-0010", "rec-0009", "rec-0008", "rec-0007"]
        );
        let last = first.last().unwrap();
        let second = store
            .usage_page(page(
                Some((last.unix_ms, last.record_id.clone())),
                StatusFilter::Any,
            ))
            .await
            .unwrap();
        assert_eq!(second[0].record_id, "rec-0006");
        let errors = store
            .usage_page(page(None, StatusFilter::Error))
            .await
            .unwrap();
        assert_eq!(errors.len(), 1);
        let masked = store
            .usage_page(LogQuery {
                firewall: Some("mask".into()),
                ..page(None, StatusFilter::Any)
            })
            .await
            .unwrap();
        assert_eq!(masked.len(), 1);
        assert_eq!(masked[0].record_id, "rec-0003");
        let keyed = store
            .usage_page(LogQuery {
                key: Some("b".into()),
                model: Some("auto:cost".into()),
                ..page(None, StatusFilter::Ok)
            })
            .await
            .unwrap();
        assert_eq!(keyed.len(), 4, "keys b, ok answers only");
        let one = store
            .usage_record("rec-0003".into())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(one.firewall, "pii:email:mask:input:1");
        assert!(store.usage_record("nope".into()).await.unwrap().is_none());
        // Bodies live apart: a record never carries them, they are read one record at a time.
        let logged = store
            .usage_record("rec-0007".into())
            .await
            .unwrap()
            .unwrap();
        assert!(logged.request_body.is_empty() && logged.response_body.is_empty());
        let (request, response) = store
            .usage_bodies("rec-0007".into())
            .await
            .unwrap()
            .unwrap();
        assert!(request.contains("\"hi\""));
        assert_eq!(response.len(), super::super::bodies::MAX_BODY, "capped");
        assert!(
            store
                .usage_bodies("rec-0006".into())
                .await
                .unwrap()
                .is_none()
        );
        // Bodies go on their own clock: the record stays.
        store.prune_usage(0, i64::MAX, vec![]).await.unwrap();
        assert!(
            store
                .usage_bodies("rec-0007".into())
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .usage_record("rec-0007".into())
                .await
                .unwrap()
                .is_some()
        );

        // Pruning: records before the cutoff go, in batches; the minute rollups too.
        let gone = store
            .prune_usage(base + 5_000, 0, vec![("m", i64::MAX)])
            .await
            .unwrap();
        assert!(gone >= 5);
        assert!(
            store
                .usage_record("rec-0004".into())
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .usage_record("rec-0005".into())
                .await
                .unwrap()
                .is_some()
        );
        assert!(store.rollups(q("m", "", false)).await.unwrap().is_empty());
        assert_eq!(
            store.rollups(q("h", "", false)).await.unwrap()[0].requests,
            11,
            "hours stay"
        );
    }
}
