//! The OpenTelemetry GenAI metrics (semantic conventions v1.37 and later, where
//! `gen_ai.provider.name` replaced `gen_ai.system`), as Prometheus histograms with the
//! conventions' names, units and bucket boundaries, plus TokenRouter's own gateway overhead and
//! cost. One series per (operation, provider, model, error type); models come from the snapshot,
//! so the label sets are bounded by the configuration. No key or user labels.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use crate::telemetry::metrics::{escape, label_model, slot};

/// `gen_ai.client.token.usage`.
const TOKEN_BUCKETS: &[f64] = &[
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];
/// `gen_ai.client.operation.duration`, `gen_ai.server.request.duration`.
const DURATION_BUCKETS: &[f64] = &[
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
/// `gen_ai.server.time_to_first_token`, and the client's time to first chunk.
const TTFT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// `gen_ai.server.time_per_output_token`.
const PER_TOKEN_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
];
/// `tokenrouter_gateway_overhead_seconds`: what the gateway itself adds is micro- to milliseconds.
const OVERHEAD_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

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
    /// `gen_ai.provider.name` (empty when no provider was tried).
    pub provider: &'static str,
    /// The model asked of the provider (`gen_ai.request.model`).
    pub model: &'a str,
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

#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    /// Per bucket (not cumulative); one more than `bounds` for +Inf.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, v: f64) {
        if !v.is_finite() || v < 0.0 {
            return;
        }
        let i = self.bounds.partition_point(|b| *b < v);
        self.counts[i] += 1;
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, n) in self.counts.iter().enumerate() {
            cumulative += n;
            let le = self
                .bounds
                .get(i)
                .map_or("+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
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

/// (provider, model, error type).
type Labels<'a> = (&'static str, &'a str, &'a str);

/// Series by provider, model, error type: nested so that recording looks every level up by
/// `&str` and allocates only for a new combination.
type Tree = BTreeMap<&'static str, BTreeMap<String, BTreeMap<String, Series>>>;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct GenAiMetrics {
    series: Mutex<Tree>,
}

impl GenAiMetrics {
    pub fn observe(&self, o: Observation<'_>) {
        let model = label_model(o.model);
        let Ok(mut all) = self.series.lock() else {
            return;
        };
        let models = all.entry(o.provider).or_default();
        let Some(s) = slot(models, model).and_then(|errors| slot(errors, o.error_type)) else {
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
        let Ok(tree) = self.series.lock() else { return };
        let all: Vec<(Labels<'_>, &Series)> = tree
            .iter()
            .flat_map(|(p, models)| {
                models.iter().flat_map(move |(m, errors)| {
                    errors
                        .iter()
                        .map(move |(e, s)| ((*p, m.as_str(), e.as_str()), s))
                })
            })
            .collect();
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
            for (labels, s) in &all {
                let h = pick(s);
                if h.count > 0 {
                    h.render(out, name, &label_text(labels));
                }
            }
        }
        let name = "gen_ai_client_token_usage";
        let _ = writeln!(
            out,
            "# HELP {name} Number of input and output tokens used\n# TYPE {name} histogram\n# UNIT {name} {{token}}"
        );
        for (labels, s) in &all {
            for (kind, h) in [("input", &s.input_tokens), ("output", &s.output_tokens)] {
                if h.count > 0 {
                    let l = format!("{},gen_ai_token_type=\"{kind}\"", label_text(labels));
                    h.render(out, name, &l);
                }
            }
        }
        let name = "tokenrouter_cost_usd_total";
        let _ = writeln!(
            out,
            "# HELP {name} Cost of answered requests in US dollars, from the catalog's prices\n# TYPE {name} counter"
        );
        for (labels, s) in &all {
            let _ = writeln!(out, "{name}{{{}}} {}", label_text(labels), s.cost_usd);
        }
    }
}

fn label_text((provider, model, error): &Labels<'_>) -> String {
    let mut l = format!(
        "gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"{provider}\",gen_ai_request_model=\"{}\"",
        escape(model)
    );
    if !error.is_empty() {
        let _ = write!(l, ",error_type=\"{}\"", escape(error));
    }
    l
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
    fn nonsense_values_are_ignored() {
        let mut h = Histogram::new(DURATION_BUCKETS);
        h.observe(f64::NAN);
        h.observe(-1.0);
        assert_eq!(h.count, 0);
    }
}
