//! Logged request and response bodies (for keys with `log_bodies`), kept apart from the usage
//! records so that no list, summary or rollup ever reads them, and pruned on their own, shorter
//! clock (seven days by default). The SQL both backends share.

/// The table and its time index.
pub const CREATE: &str = "CREATE TABLE tokenrouter_usage_bodies (record_id TEXT PRIMARY KEY,
       unix_ms BIGINT NOT NULL, request TEXT NOT NULL, response TEXT NOT NULL);
     CREATE INDEX tokenrouter_usage_bodies_time ON tokenrouter_usage_bodies (unix_ms)";

/// Most bytes kept of one body (the data plane already cuts them at 64 KiB).
pub const MAX_BODY: usize = 64 * 1024;

/// Stores one record's bodies, once.
pub fn insert(p: impl Fn(usize) -> String) -> String {
    format!(
        "INSERT INTO tokenrouter_usage_bodies (record_id, unix_ms, request, response)
         VALUES ({}, {}, {}, {}) ON CONFLICT (record_id) DO NOTHING",
        p(1),
        p(2),
        p(3),
        p(4)
    )
}

/// One record's bodies.
pub fn select(p: impl Fn(usize) -> String) -> String {
    format!(
        "SELECT request, response FROM tokenrouter_usage_bodies WHERE record_id = {}",
        p(1)
    )
}

/// Deletes at most `p(2)` bodies older than `p(1)`.
pub fn prune(p: impl Fn(usize) -> String) -> String {
    format!(
        "DELETE FROM tokenrouter_usage_bodies WHERE record_id IN
           (SELECT record_id FROM tokenrouter_usage_bodies WHERE unix_ms < {} LIMIT {})",
        p(1),
        p(2)
    )
}

/// `s` cut to at most [`MAX_BODY`] bytes, on a character boundary.
pub fn capped(s: &str) -> &str {
    super::usage_sql::cap(s, MAX_BODY)
}

/// Whether a record carries bodies to keep (it must have an id to find them by).
pub fn has_bodies(r: &tokenrouter_proto::v1::UsageRecord) -> bool {
    !r.record_id.is_empty() && (!r.request_body.is_empty() || !r.response_body.is_empty())
}
