//! The OpenTelemetry GenAI metrics (semantic conventions v1.37 and later, where
//! `gen_ai.provider.name` replaced `gen_ai.system`), as Prometheus histograms with the
//! conventions' names, units and bucket boundaries, plus TokenRouter's own gateway overhead and
//! cost. One series per (operation, provider, requested model, response model, error type, and
//! the key and end user when the operator asks for them). Requested models come from the
//! snapshot; response models, keys and users are capped (see [`labels`]).

mod histogram;
pub mod labels;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use histogram::{
    DURATION_BUCKETS, Histogram, OVERHEAD_BUCKETS, PER_TOKEN_BUCKETS, TOKEN_BUCKETS, TTFT_BUCKETS,
};
use labels::{Capped, MAX_KEYS, MAX_RESPONSE_MODELS, MAX_USERS, MetricLabels};

use crate::telemetry::metrics::label_model;

/// The well-known `gen_ai.provider.name` of a provider kind: the real upstream, so a translated
/// call is never labelled `openai`.
pub fn provider_name(kind: &str) -> &'static str {
    match kind {
        "openai" => "openai",
        "anthropic" => "anthropic",
        "gemini" => "gcp.gemini",
        "mistral" => "mistral_ai",
        "deepseek" => "deepseek",
        "openai-compatible" => "openai_compatible",
        _ => "",
    }
}

/// One finished chat request as these metrics see it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Observation<'a> {
    /// `gen_ai.operation.name`.
    pub operation: crate::request::Operation,
    /// `gen_ai.provider.name` (empty when no provider was tried).
    pub provider: &'static str,
    /// The model asked of the provider (`gen_ai.request.model`).
    pub model: &'a str,
    /// The model the answer names (`gen_ai.response.model`; empty when there was no answer).
    pub response_model: &'a str,
    /// The API key's name and the end user, labelled only when the operator opted in.
    pub key: &'a str,
    pub user: &'a str,
    /// `error.type`: the HTTP status for a failure, `incomplete` for a stream cut short; empty.
    pub error_type: &'a str,
    /// From the request's arrival to its last byte.
    pub total: Duration,
    /// From sending the answering attempt to the end of its answer.
    pub upstream: Option<Duration>,
    /// From sending the answering attempt to its first streamed chunk.
    pub upstream_ttft: Option<Duration>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cost_usd: Option<f64>,
}

/// Every histogram of one label set.
#[derive(Debug, Clone)]
struct Series {
    server_duration: Histogram,
    server_ttft: Histogram,
    server_per_token: Histogram,
    client_duration: Histogram,
    client_ttfc: Histogram,
    input_tokens: Histogram,
    output_tokens: Histogram,
    overhead: Histogram,
    cost_usd: f64,
}

impl Default for Series {
    fn default() -> Self {
        Series {
            server_duration: Histogram::new(DURATION_BUCKETS),
            server_ttft: Histogram::new(TTFT_BUCKETS),
            server_per_token: Histogram::new(PER_TOKEN_BUCKETS),
            client_duration: Histogram::new(DURATION_BUCKETS),
            client_ttfc: Histogram::new(TTFT_BUCKETS),
            input_tokens: Histogram::new(TOKEN_BUCKETS),
            output_tokens: Histogram::new(TOKEN_BUCKETS),
            overhead: Histogram::new(OVERHEAD_BUCKETS),
            cost_usd: 0.0,
        }
    }
}

/// Series by their label text (without `gen_ai_token_type`), and the capped label values.
#[derive(Debug)]
struct Inner {
    series: BTreeMap<Box<str>, Series>,
    response_models: Capped,
    keys: Capped,
    users: Capped,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            series: BTreeMap::new(),
            response_models: Capped::new(MAX_RESPONSE_MODELS),
            keys: Capped::new(MAX_KEYS),
            users: Capped::new(MAX_USERS),
        }
    }
}

impl Inner {
    /// The series of `o`, created (its label text owned) only for a new label set.
    fn series(&mut self, o: &Observation<'_>, opted: MetricLabels) -> Option<&mut Series> {
        let mut text = String::with_capacity(160);
        labels::push(&mut text, "gen_ai_operation_name", o.operation.name());
        labels::push(&mut text, "gen_ai_provider_name", o.provider);
        labels::push(&mut text, "gen_ai_request_model", label_model(o.model));
        let response = self.response_models.admit(o.response_model);
        if !response.is_empty() {
            labels::push(&mut text, "gen_ai_response_model", response);
        }
        if !o.error_type.is_empty() {
            labels::push(&mut text, "error_type", o.error_type);
        }
        if opted.key {
            labels::push(&mut text, "tokenrouter_key", self.keys.admit(o.key));
        }
        if opted.user {
            labels::push(&mut text, "tokenrouter_user", self.users.admit(o.user));
        }
        if !self.series.contains_key(text.as_str()) {
            self.series.insert(text.as_str().into(), Series::default());
        }
        self.series.get_mut(text.as_str())
    }
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct GenAiMetrics {
    opted: MetricLabels,
    inner: Mutex<Inner>,
}

impl GenAiMetrics {
    /// Metrics with the optional labels `opted` asks for.
    pub fn with_labels(opted: MetricLabels) -> GenAiMetrics {
        GenAiMetrics {
            opted,
            inner: Mutex::default(),
        }
    }

    pub fn observe(&self, o: Observation<'_>) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let Some(s) = inner.series(&o, self.opted) else {
            return;
        };
        let total = o.total.as_secs_f64();
        s.server_duration.observe(total);
        if let Some(up) = o.upstream {
            s.client_duration.observe(up.as_secs_f64());
            s.overhead.observe(o.total.saturating_sub(up).as_secs_f64());
        }
        if let (Some(up), Some(first)) = (o.upstream, o.upstream_ttft) {
            s.client_ttfc.observe(first.as_secs_f64());
            // The client's first token: everything before the upstream's first chunk, ours included.
            let after_first = up.saturating_sub(first);
            s.server_ttft
                .observe(o.total.saturating_sub(after_first).as_secs_f64());
            if let Some(n) = o.output_tokens.filter(|n| *n > 1) {
                s.server_per_token
                    .observe(after_first.as_secs_f64() / (n - 1) as f64);
            }
        }
        if let Some(n) = o.input_tokens {
            s.input_tokens.observe(n as f64);
        }
        if let Some(n) = o.output_tokens {
            s.output_tokens.observe(n as f64);
        }
        if let Some(c) = o.cost_usd.filter(|c| c.is_finite() && *c > 0.0) {
            s.cost_usd += c;
        }
    }

    /// Appends the Prometheus text exposition.
    pub fn render(&self, out: &mut String) {
        let Ok(inner) = self.inner.lock() else { return };
        let all = &inner.series;
        type Pick = fn(&Series) -> &Histogram;
        let histograms: [(&str, &str, Pick); 6] = [
            (
                "gen_ai_server_request_duration_seconds",
                "GenAI server request duration: from a request's arrival to its last byte",
                |s| &s.server_duration,
            ),
            (
                "gen_ai_server_time_to_first_token_seconds",
                "Time from a streamed request's arrival to its first token",
                |s| &s.server_ttft,
            ),
            (
                "gen_ai_server_time_per_output_token_seconds",
                "Time per output token after the first, streamed requests",
                |s| &s.server_per_token,
            ),
            (
                "gen_ai_client_operation_duration_seconds",
                "GenAI operation duration as the gateway saw the provider answer",
                |s| &s.client_duration,
            ),
            (
                "gen_ai_client_operation_time_to_first_chunk_seconds",
                "Time from sending a streamed request to the provider to its first chunk",
                |s| &s.client_ttfc,
            ),
            (
                "tokenrouter_gateway_overhead_seconds",
                "Time spent inside TokenRouter: request duration less the answering provider call",
                |s| &s.overhead,
            ),
        ];
        for (name, help, pick) in histograms {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
            for (labels, s) in all {
                let h = pick(s);
                if h.count > 0 {
                    h.render(out, name, labels);
                }
            }
        }
        let name = "gen_ai_client_token_usage";
        let _ = writeln!(
            out,
            "# HELP {name} Number of input and output tokens used\n# TYPE {name} histogram\n# UNIT {name} {{token}}"
        );
        for (labels, s) in all {
            for (kind, h) in [("input", &s.input_tokens), ("output", &s.output_tokens)] {
                if h.count > 0 {
                    let l = format!("{labels},gen_ai_token_type=\"{kind}\"");
                    h.render(out, name, &l);
                }
            }
        }
        let name = "tokenrouter_cost_usd_total";
        let _ = writeln!(
            out,
            "# HELP {name} Cost of answered requests in US dollars, from the catalog's prices\n# TYPE {name} counter"
        );
        for (labels, s) in all {
            let _ = writeln!(out, "{name}{{{labels}}} {}", s.cost_usd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_labelled() {
        let m = GenAiMetrics::default();
        m.observe(Observation {
            provider: "anthropic",
            model: "claude-sonnet-4-5",
            total: Duration::from_millis(120),
            upstream: Some(Duration::from_millis(100)),
            upstream_ttft: Some(Duration::from_millis(30)),
            input_tokens: Some(10),
            output_tokens: Some(8),
            cost_usd: Some(0.002),
            ..Default::default()
        });
        let mut out = String::new();
        m.render(&mut out);
        let l = "gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"anthropic\",gen_ai_request_model=\"claude-sonnet-4-5\"";
        assert!(out.contains(&format!(
            "gen_ai_server_request_duration_seconds_bucket{{{l},le=\"0.08\"}} 0"
        )));
        assert!(out.contains(&format!(
            "gen_ai_server_request_duration_seconds_bucket{{{l},le=\"0.16\"}} 1"
        )));
        assert!(out.contains(&format!(
            "gen_ai_server_request_duration_seconds_bucket{{{l},le=\"+Inf\"}} 1"
        )));
        assert!(out.contains(&format!(
            "tokenrouter_gateway_overhead_seconds_bucket{{{l},le=\"0.025\"}} 1"
        )));
        assert!(out.contains(&format!(
            "tokenrouter_gateway_overhead_seconds_bucket{{{l},le=\"0.01\"}} 0"
        )));
        // 120 ms less the 70 ms after the upstream's first chunk.
        assert!(out.contains(&format!(
            "gen_ai_server_time_to_first_token_seconds_sum{{{l}}} 0.05"
        )));
        assert!(out.contains(&format!(
            "gen_ai_client_token_usage_sum{{{l},gen_ai_token_type=\"input\"}} 10"
        )));
        assert!(out.contains(&format!(
            "gen_ai_client_token_usage_sum{{{l},gen_ai_token_type=\"output\"}} 8"
        )));
        assert!(out.contains(&format!("tokenrouter_cost_usd_total{{{l}}} 0.002")));
    }

    #[test]
    fn translated_providers_keep_their_own_name() {
        assert_eq!(provider_name("gemini"), "gcp.gemini");
        assert_eq!(provider_name("mistral"), "mistral_ai");
        assert_eq!(provider_name("anthropic"), "anthropic");
        assert_eq!(provider_name("openai-compatible"), "openai_compatible");
    }

    #[test]
    fn optional_labels_appear_only_when_asked_for() {
        let o = Observation {
            provider: "openai",
            model: "gpt-4o",
            response_model: "gpt-4o-2024-08-06",
            key: "team-a",
            user: "u\"1",
            ..Default::default()
        };
        let plain = GenAiMetrics::default();
        plain.observe(o);
        let mut out = String::new();
        plain.render(&mut out);
        assert!(
            out.contains("gen_ai_response_model=\"gpt-4o-2024-08-06\""),
            "{out}"
        );
        assert!(!out.contains("tokenrouter_key") && !out.contains("tokenrouter_user"));
        let opted = GenAiMetrics::with_labels(MetricLabels {
            key: true,
            user: true,
        });
        opted.observe(o);
        let mut out = String::new();
        opted.render(&mut out);
        assert!(
            out.contains("tokenrouter_key=\"team-a\",tokenrouter_user=\"u\\\"1\""),
            "{out}"
        );
    }

    /// A provider naming a new model in every answer cannot mint a series per answer.
    #[test]
    fn response_models_past_the_cap_share_one_series() {
        let m = GenAiMetrics::default();
        for i in 0..labels::MAX_RESPONSE_MODELS + 10 {
            m.observe(Observation {
                provider: "openai",
                model: "gpt-4o",
                response_model: &format!("gpt-4o-{i}"),
                total: Duration::from_millis(5),
                ..Default::default()
            });
        }
        let mut out = String::new();
        m.render(&mut out);
        let series = out
            .lines()
            .filter(|l| l.starts_with("gen_ai_server_request_duration_seconds_count"))
            .count();
        assert_eq!(series, labels::MAX_RESPONSE_MODELS + 1);
        assert!(out.contains(&format!(
            "gen_ai_response_model=\"{}\"}} 10",
            labels::OVERFLOW
        )));
    }
}
