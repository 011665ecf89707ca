//! Usage and request accounting: every finished request is recorded (tokens, outcome, latency) per
//! key, provider and model, and exposed in Prometheus text format on `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use crate::telemetry::usage::Usage;

/// One finished request as recorded.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    pub key: &'a str,
    pub provider: &'a str,
    pub model: &'a str,
    /// HTTP status the client saw (200 for streams that started).
    pub status: u16,
    pub usage: Option<Usage>,
    pub latency_ms: u64,
    pub completed: bool,
    /// The firewall's summary (`rule:detector:action:direction:count`, comma-separated).
    pub firewall: &'a str,
}

/// A metric's name, help text and how to read it from the totals.
type Series = (&'static str, &'static str, fn(&Totals) -> u64);

#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    requests: u64,
    incomplete: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
    cached_tokens: u64,
    latency_ms_sum: u64,
}

/// Totals per status, per model (at most 128 characters), per provider, per key: nested so that
/// recording a request looks every level up by `&str` and allocates only for a new combination.
type Tree = BTreeMap<String, BTreeMap<String, BTreeMap<String, BTreeMap<u16, Totals>>>>;

/// Counters keyed by (key, provider, model, status). Label values come from the snapshot or the
/// request's model name, never from secrets.
#[derive(Debug, Default)]
pub struct Metrics {
    totals: Mutex<Tree>,
    /// Firewall matches per (rule, detector, action, direction).
    firewall: Mutex<BTreeMap<String, u64>>,
    /// The GenAI semantic-convention histograms, gateway overhead and cost.
    pub genai: crate::telemetry::genai::GenAiMetrics,
    /// Provider attempts made, and requests that needed more than one.
    attempts: std::sync::atomic::AtomicU64,
    fallbacks: std::sync::atomic::AtomicU64,
    /// Hedged attempts started alongside a slow one.
    hedges: std::sync::atomic::AtomicU64,
}

/// A model name as a label: at most 128 characters, so a client cannot mint unbounded series
/// with long names (longer ones share the truncated series).
pub(crate) fn label_model(model: &str) -> &str {
    match model.char_indices().nth(128) {
        Some((cut, _)) => &model[..cut],
        None => model,
    }
}

/// The value under `name`, created (with an owned copy of `name`) only when missing. (Always
/// `Some`; an `Option` because the borrow checker cannot yet see a lookup-or-insert through.)
pub(crate) fn slot<'m, V: Default>(
    map: &'m mut BTreeMap<String, V>,
    name: &str,
) -> Option<&'m mut V> {
    if !map.contains_key(name) {
        map.insert(name.to_string(), V::default());
    }
    map.get_mut(name)
}

impl Metrics {
    /// Metrics whose GenAI series carry the optional labels `labels` asks for.
    pub fn with_labels(labels: crate::telemetry::genai::labels::MetricLabels) -> Metrics {
        Metrics {
            genai: crate::telemetry::genai::GenAiMetrics::with_labels(labels),
            ..Metrics::default()
        }
    }

    /// Counts one request's provider attempts (0: none was tried).
    pub fn count_attempts(&self, attempts: u32) {
        use std::sync::atomic::Ordering::Relaxed;
        self.attempts.fetch_add(u64::from(attempts), Relaxed);
        if attempts > 1 {
            self.fallbacks.fetch_add(1, Relaxed);
        }
    }

    /// Counts a hedged attempt started alongside a slow one.
    pub fn count_hedge(&self) {
        self.hedges
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn record(&self, r: Record<'_>) {
        if !r.firewall.is_empty()
            && let Ok(mut fw) = self.firewall.lock()
        {
            for event in r.firewall.split(',') {
                let (labels, count) = event.rsplit_once(':').unwrap_or((event, "1"));
                let count = count.parse::<u64>().unwrap_or(1);
                *fw.entry(labels.to_string()).or_default() += count;
            }
        }
        let Ok(mut totals) = self.totals.lock() else {
            return;
        };
        let model = label_model(r.model);
        let Some(statuses) = slot(&mut totals, r.key)
            .and_then(|providers| slot(providers, r.provider))
            .and_then(|models| slot(models, model))
        else {
            return;
        };
        let t = statuses.entry(r.status).or_default();
        t.requests += 1;
        t.incomplete += u64::from(!r.completed);
        t.latency_ms_sum += r.latency_ms;
        if let Some(u) = r.usage {
            // Saturating: usage comes from the upstream, and an absurd count must not panic
            // (poisoning these totals) or wrap.
            t.prompt_tokens = t.prompt_tokens.saturating_add(u.prompt_tokens);
            t.completion_tokens = t.completion_tokens.saturating_add(u.completion_tokens);
            t.cached_tokens = t.cached_tokens.saturating_add(u.cached_tokens);
        }
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let Ok(totals) = self.totals.lock() else {
            return String::new();
        };
        let mut out = String::new();
        let series: [Series; 6] = [
            ("tokenrouter_requests_total", "Requests answered", |t| {
                t.requests
            }),
            (
                "tokenrouter_requests_incomplete_total",
                "Streams that ended before completion",
                |t| t.incomplete,
            ),
            (
                "tokenrouter_prompt_tokens_total",
                "Prompt tokens reported by providers",
                |t| t.prompt_tokens,
            ),
            (
                "tokenrouter_completion_tokens_total",
                "Completion tokens reported by providers",
                |t| t.completion_tokens,
            ),
            (
                "tokenrouter_cached_tokens_total",
                "Prompt tokens served from provider caches",
                |t| t.cached_tokens,
            ),
            (
                "tokenrouter_latency_ms_sum",
                "Sum of request latencies in milliseconds",
                |t| t.latency_ms_sum,
            ),
        ];
        for (name, help, get) in series {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let rows = totals.iter().flat_map(|(key, providers)| {
                providers.iter().flat_map(move |(provider, models)| {
                    models.iter().flat_map(move |(model, statuses)| {
                        statuses
                            .iter()
                            .map(move |(status, t)| (key, provider, model, status, t))
                    })
                })
            });
            for (key, provider, model, status, t) in rows {
                let _ = writeln!(
                    out,
                    "{name}{{key=\"{}\",provider=\"{}\",model=\"{}\",status=\"{status}\"}} {}",
                    escape(key),
                    escape(provider),
                    escape(model),
                    get(t)
                );
            }
        }
        drop(totals);
        self.render_firewall(&mut out);
        self.genai.render(&mut out);
        use std::sync::atomic::Ordering::Relaxed;
        let _ = writeln!(
            out,
            "# HELP tokenrouter_attempts_total Provider attempts made (retries and fallbacks included)\n# TYPE tokenrouter_attempts_total counter\ntokenrouter_attempts_total {}",
            self.attempts.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP tokenrouter_fallbacks_total Requests that needed more than one attempt\n# TYPE tokenrouter_fallbacks_total counter\ntokenrouter_fallbacks_total {}",
            self.fallbacks.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP tokenrouter_hedges_total Hedged attempts started alongside a slow one\n# TYPE tokenrouter_hedges_total counter\ntokenrouter_hedges_total {}",
            self.hedges.load(Relaxed)
        );
        out
    }

    fn render_firewall(&self, out: &mut String) {
        let Ok(fw) = self.firewall.lock() else { return };
        let name = "tokenrouter_firewall_matches_total";
        let _ = writeln!(
            out,
            "# HELP {name} Matches the firewall acted on, by rule, detector, action and direction\n# TYPE {name} counter"
        );
        for (labels, count) in fw.iter() {
            let mut parts = labels.splitn(4, ':');
            let (rule, detector, action, direction) = (
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            );
            let _ = writeln!(
                out,
                "{name}{{rule=\"{}\",detector=\"{}\",action=\"{}\",direction=\"{}\"}} {count}",
                escape(rule),
                escape(detector),
                escape(action),
                escape(direction)
            );
        }
    }
}

pub(crate) fn escape(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    crate::telemetry::genai::labels::escape_into(&mut out, label);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_attempts_and_fallbacks() {
        let m = Metrics::default();
        m.count_attempts(1);
        m.count_attempts(3);
        m.count_attempts(0);
        let out = m.render();
        assert!(out.contains("tokenrouter_attempts_total 4\n"), "{out}");
        assert!(out.contains("tokenrouter_fallbacks_total 1\n"), "{out}");
    }

    #[test]
    fn aggregates_and_renders() {
        let m = Metrics::default();
        let usage = Usage {
            prompt_tokens: 3,
            completion_tokens: 4,
            ..Default::default()
        };
        for _ in 0..2 {
            m.record(Record {
                key: "k",
                provider: "p",
                model: "m\"x",
                status: 200,
                usage: Some(usage),
                latency_ms: 5,
                completed: true,
                firewall: "",
            });
        }
        let text = m.render();
        assert!(text.contains("tokenrouter_requests_total{key=\"k\",provider=\"p\",model=\"m\\\"x\",status=\"200\"} 2"), "{text}");
        assert!(text.contains("tokenrouter_completion_tokens_total{key=\"k\",provider=\"p\",model=\"m\\\"x\",status=\"200\"} 8"));
    }

    /// Same cause as the usage overflows fuzzing found in the translators: upstream counts
    /// summed without bound.
    #[test]
    fn absurd_usage_saturates_the_totals() {
        let m = Metrics::default();
        for _ in 0..2 {
            m.record(Record {
                key: "k",
                provider: "p",
                model: "m",
                status: 200,
                usage: Some(Usage {
                    prompt_tokens: u64::MAX,
                    ..Default::default()
                }),
                latency_ms: 5,
                completed: true,
                firewall: "",
            });
        }
        let text = m.render();
        assert!(
            text.contains(&format!("status=\"200\"}} {}", u64::MAX)),
            "{text}"
        );
    }

    /// Model labels are cut at 128 characters (not bytes), so a long name is one series.
    #[test]
    fn long_model_names_share_one_truncated_series() {
        let m = Metrics::default();
        for tail in ["a", "b"] {
            m.record(Record {
                key: "k",
                provider: "p",
                model: &format!("{}{tail}", "é".repeat(128)),
                status: 200,
                usage: None,
                latency_ms: 1,
                completed: true,
                firewall: "",
            });
        }
        let text = m.render();
        let expected = format!("model=\"{}\",status=\"200\"}} 2", "é".repeat(128));
        assert!(text.contains(&expected), "{text}");
    }
}
