//! A usage batch as PostgreSQL's whole-batch insert takes it: one array per column.

use tokenrouter_proto::v1::UsageRecord;

use crate::store::usage_sql;

/// A usage batch as one array per column, for [`usage_sql::insert_arrays`].
pub(super) struct Columns<'a> {
    text: [Vec<&'a str>; 11],
    record_id: Vec<Option<&'a str>>,
    unix_ms: Vec<i64>,
    status: Vec<i32>,
    counts: [Vec<i64>; 6],
    cost: Vec<f64>,
    flags: [Vec<bool>; 2],
    attempts: Vec<i32>,
}

impl<'a> Columns<'a> {
    /// Element types in [`usage_sql::COLUMNS`] order.
    pub(super) const TYPES: [&'static str; 24] = [
        "text", "int8", "text", "text", "text", "text", "int4", "int8", "int8", "int8", "int8",
        "float8", "int8", "int8", "bool", "bool", "text", "int4", "text", "text", "text", "text",
        "text", "text",
    ];

    pub(super) fn of(records: &'a [UsageRecord]) -> Self {
        let n = records.len();
        let mut c = Columns {
            text: std::array::from_fn(|_| Vec::with_capacity(n)),
            record_id: Vec::with_capacity(n),
            unix_ms: Vec::with_capacity(n),
            status: Vec::with_capacity(n),
            counts: std::array::from_fn(|_| Vec::with_capacity(n)),
            cost: Vec::with_capacity(n),
            flags: std::array::from_fn(|_| Vec::with_capacity(n)),
            attempts: Vec::with_capacity(n),
        };
        for r in records {
            let t = usage_sql::bounded(r);
            for (column, value) in c.text.iter_mut().zip([
                t.request_id,
                t.api_key,
                t.provider,
                t.model,
                t.requested_model,
                t.routing_mode,
                t.user_id,
                t.metadata_json,
                t.firewall,
                t.routing,
                t.failed_attempts,
            ]) {
                column.push(value);
            }
            c.record_id.push(usage_sql::record_id(r));
            c.unix_ms.push(r.unix_ms);
            c.status.push(i32::try_from(r.status).unwrap_or(i32::MAX));
            for (column, value) in c.counts.iter_mut().zip([
                r.prompt_tokens,
                r.completion_tokens,
                r.cached_tokens,
                r.reasoning_tokens,
                u64::from(r.latency_ms),
                u64::from(r.ttft_ms),
            ]) {
                column.push(i64::try_from(value).unwrap_or(i64::MAX));
            }
            c.cost.push(r.cost_usd);
            c.flags[0].push(r.stream);
            c.flags[1].push(r.completed);
            c.attempts
                .push(i32::try_from(r.attempts).unwrap_or(i32::MAX));
        }
        c
    }

    /// The parameters in [`usage_sql::COLUMNS`] order.
    pub(super) fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 24] {
        let [
            request_id,
            api_key,
            provider,
            model,
            requested_model,
            routing_mode,
            user_id,
            metadata,
            firewall,
            routing,
            failed_attempts,
        ] = &self.text;
        let [prompt, completion, cached, reasoning, latency, ttft] = &self.counts;
        let [stream, completed] = &self.flags;
        [
            request_id,
            &self.unix_ms,
            api_key,
            provider,
            model,
            requested_model,
            &self.status,
            prompt,
            completion,
            cached,
            reasoning,
            &self.cost,
            latency,
            ttft,
            stream,
            completed,
            routing_mode,
            &self.attempts,
            user_id,
            metadata,
            &self.record_id,
            firewall,
            routing,
            failed_attempts,
        ]
    }
}
