//! The usage table both backends share: its columns, and the SQL for inserting and summarising,
//! written once with a placeholder style per backend.

use tokenrouter_proto::v1::{UsageQuery, UsageRecord};

use super::StoreError;

/// Most recent records a query may ask for.
pub const MAX_RECENT: u32 = 1000;

/// Columns in insert order.
pub const COLUMNS: [&str; 24] = [
    "request_id",
    "unix_ms",
    "api_key",
    "provider",
    "model",
    "requested_model",
    "status",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cost_usd",
    "latency_ms",
    "ttft_ms",
    "stream",
    "completed",
    "routing_mode",
    "attempts",
    "user_id",
    "metadata_json",
    "record_id",
    "firewall",
    "routing",
    "failed_attempts",
];

/// Adds what the firewall did to each record (`rule:detector:action:direction:count`).
pub const FIREWALL: &str =
    "ALTER TABLE tokenrouter_usage ADD COLUMN firewall TEXT NOT NULL DEFAULT ''";

/// Adds why routing chose what it chose, and the attempts that failed before the answer.
pub const ROUTING: &str =
    "ALTER TABLE tokenrouter_usage ADD COLUMN routing TEXT NOT NULL DEFAULT '';
     ALTER TABLE tokenrouter_usage ADD COLUMN failed_attempts TEXT NOT NULL DEFAULT ''";

/// The dashboard's users (not configuration: no version, never in a snapshot).
pub const DASHBOARD_USERS: &str = "CREATE TABLE tokenrouter_dashboard_users (name TEXT PRIMARY KEY,
     role TEXT NOT NULL, password_hash TEXT NOT NULL, created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL)";

/// Adds the records' unique ids (older rows keep NULL, which a unique index lets repeat).
pub const RECORD_ID: &str = "ALTER TABLE tokenrouter_usage ADD COLUMN record_id TEXT;
     CREATE UNIQUE INDEX tokenrouter_usage_record ON tokenrouter_usage (record_id)";

/// What an insert does with a record the store already holds: nothing (delivery is idempotent).
const IGNORE_DUPLICATES: &str = "ON CONFLICT (record_id) DO NOTHING";

/// The DDL, with the backend's auto-increment key and float type.
pub fn create_table(id_column: &str, float: &str) -> String {
    format!(
        "CREATE TABLE tokenrouter_usage ({id_column}, request_id TEXT NOT NULL, unix_ms BIGINT NOT NULL,
           api_key TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL, requested_model TEXT NOT NULL,
           status INTEGER NOT NULL, prompt_tokens BIGINT NOT NULL, completion_tokens BIGINT NOT NULL,
           cached_tokens BIGINT NOT NULL, reasoning_tokens BIGINT NOT NULL, cost_usd {float} NOT NULL,
           latency_ms BIGINT NOT NULL, ttft_ms BIGINT NOT NULL, stream BOOLEAN NOT NULL, completed BOOLEAN NOT NULL,
           routing_mode TEXT NOT NULL, attempts INTEGER NOT NULL, user_id TEXT NOT NULL, metadata_json TEXT NOT NULL);
         CREATE INDEX tokenrouter_usage_time ON tokenrouter_usage (unix_ms);"
    )
}

/// `INSERT` for one row, skipping a record id already stored; `p(i)` renders placeholder `i`
/// (1-based).
pub fn insert(p: impl Fn(usize) -> String) -> String {
    let marks: Vec<String> = (1..=COLUMNS.len()).map(p).collect();
    format!(
        "INSERT INTO tokenrouter_usage ({}) VALUES ({}) {IGNORE_DUPLICATES}",
        COLUMNS.join(", "),
        marks.join(", ")
    )
}

/// PostgreSQL's whole-batch `INSERT`: one array parameter per column (of the given element
/// types), unnested into rows, so a batch of any size is one statement and one round trip. With
/// `ignore_duplicates` false it fails on a record id already stored (the fast path: PostgreSQL's
/// per-row conflict check costs ~45% more); the caller then runs the ignoring form.
pub fn insert_arrays(types: &[&str; 24], ignore_duplicates: bool) -> String {
    let arrays: Vec<String> = types
        .iter()
        .enumerate()
        .map(|(i, t)| format!("${}::{t}[]", i + 1))
        .collect();
    format!(
        "INSERT INTO tokenrouter_usage ({}) SELECT * FROM unnest({}) {}",
        COLUMNS.join(", "),
        arrays.join(", "),
        if ignore_duplicates {
            IGNORE_DUPLICATES
        } else {
            ""
        }
    )
}

/// The record id to store: `None` (NULL) for records from data planes that set none.
pub fn record_id(r: &UsageRecord) -> Option<&str> {
    let id = r.record_id.as_str();
    (!id.is_empty()).then(|| cap(id, 64))
}

/// `s` cut to at most `n` bytes, on a character boundary.
pub fn cap(s: &str, n: usize) -> &str {
    &s[..s.floor_char_boundary(n)]
}

/// The grouping expression for a query, from a fixed list (never from the caller's text).
pub fn group_expr(group_by: &str) -> Result<&'static str, StoreError> {
    Ok(match group_by {
        "" => "''",
        "api_key" => "api_key",
        "provider" => "provider",
        "model" => "model",
        "requested_model" => "requested_model",
        "user_id" => "user_id",
        other => {
            return Err(StoreError::Invalid(format!(
                "group_by: {other:?} is not one of api_key, provider, model, requested_model, user_id"
            )));
        }
    })
}

/// The `WHERE` clause of a query: the time bounds at placeholders 1 and 2 and, when the query names
/// a key, the key at 3. Only these fixed fragments vary; every value is a bound parameter.
fn filter(keyed: bool, p: &impl Fn(usize) -> String) -> String {
    let mut clause = format!("unix_ms >= {} AND unix_ms <= {}", p(1), p(2));
    if keyed {
        clause.push_str(&format!(" AND api_key = {}", p(3)));
    }
    clause
}

/// How many placeholders [`filter`] uses.
pub fn filter_params(keyed: bool) -> usize {
    if keyed { 3 } else { 2 }
}

/// Whether a query filters by API key (and so binds the key after the time bounds).
pub fn keyed(q: &UsageQuery) -> bool {
    !q.api_key.is_empty()
}

/// The summary query; its parameters are those of [`filter`].
pub fn summary(group: &str, keyed: bool, p: impl Fn(usize) -> String) -> String {
    format!(
        "SELECT {group} AS grp, COUNT(*),
                CAST(COALESCE(SUM(CASE WHEN status >= 400 OR NOT completed THEN 1 ELSE 0 END), 0) AS BIGINT),
                CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT), CAST(COALESCE(SUM(completion_tokens), 0) AS BIGINT),
                CAST(COALESCE(SUM(cached_tokens), 0) AS BIGINT), CAST(COALESCE(SUM(cost_usd), 0) AS DOUBLE PRECISION),
                CAST(COALESCE(AVG(latency_ms), 0) AS DOUBLE PRECISION)
         FROM tokenrouter_usage WHERE {}
         GROUP BY grp ORDER BY 7 DESC, 2 DESC",
        filter(keyed, &p)
    )
}

/// The most recent records; the parameters of [`filter`], then the limit.
pub fn recent(keyed: bool, p: impl Fn(usize) -> String) -> String {
    format!(
        "SELECT {} FROM tokenrouter_usage WHERE {} ORDER BY unix_ms DESC, record_id DESC LIMIT {}",
        COLUMNS.join(", "),
        filter(keyed, &p),
        p(filter_params(keyed) + 1)
    )
}

/// An index for the dashboard's log filtered by end user (a user's requests are few among many).
pub const USER_INDEX: &str =
    "CREATE INDEX tokenrouter_usage_user_time ON tokenrouter_usage (user_id, unix_ms)";

/// An index for per-key queries (`tokenrouter keys show` sums one key's window).
pub const KEY_INDEX: &str =
    "CREATE INDEX tokenrouter_usage_key_time ON tokenrouter_usage (api_key, unix_ms)";

/// The time bounds of a query (0 means unbounded).
pub fn bounds(q: &UsageQuery) -> (i64, i64) {
    (
        q.since_unix_ms,
        if q.until_unix_ms == 0 {
            i64::MAX
        } else {
            q.until_unix_ms
        },
    )
}

/// A record's free-text fields, capped so a data plane cannot grow rows without bound.
pub struct Bounded<'a> {
    pub request_id: &'a str,
    pub api_key: &'a str,
    pub provider: &'a str,
    pub model: &'a str,
    pub requested_model: &'a str,
    pub routing_mode: &'a str,
    pub user_id: &'a str,
    pub metadata_json: &'a str,
    pub firewall: &'a str,
    pub routing: &'a str,
    pub failed_attempts: &'a str,
}

/// The capped text of `r` (borrowed: nothing is copied).
pub fn bounded(r: &UsageRecord) -> Bounded<'_> {
    Bounded {
        request_id: cap(&r.request_id, 128),
        api_key: cap(&r.api_key, 64),
        provider: cap(&r.provider, 64),
        model: cap(&r.model, 256),
        requested_model: cap(&r.requested_model, 256),
        routing_mode: cap(&r.routing_mode, 128),
        user_id: cap(&r.user_id, 256),
        metadata_json: cap(&r.metadata_json, 4096),
        firewall: cap(&r.firewall, 4096),
        routing: cap(&r.routing, 4096),
        failed_attempts: cap(&r.failed_attempts, 8192),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_filter_is_a_bound_parameter() {
        let sql = summary("user_id", true, |i| format!("${i}"));
        assert!(
            sql.contains("WHERE unix_ms >= $1 AND unix_ms <= $2 AND api_key = $3"),
            "{sql}"
        );
        let sql = recent(true, |i| format!("?{i}"));
        assert!(
            sql.contains("AND api_key = ?3 ORDER BY") && sql.ends_with("LIMIT ?4"),
            "{sql}"
        );
        let sql = recent(false, |i| format!("?{i}"));
        assert!(
            !sql.contains("api_key =") && sql.ends_with("LIMIT ?3"),
            "{sql}"
        );
    }
}
