//! `/metrics` as Prometheus parses it: the GenAI semantic-convention histograms (names, buckets,
//! labels) after real requests through simulators, the translated provider named as itself, the
//! model that really answered, the gateway's own overhead, and key and user labels only for an
//! operator who asks for them.

use prometheus_parse::{Scrape, Value};
use serde_json::json;
use tokenrouter_data_plane::MetricLabels;
use tokenrouter_simulators::{Protocol, SimConfig};
use tokenrouter_tests::{Backend, DataPlaneHandle, data_plane_config};

use crate::setup::{self, KEY};

fn scrape(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("valid exposition")
}

/// The histogram `name` whose labels include every `(label, value)` of `want`.
fn histogram<'s>(
    s: &'s Scrape,
    name: &str,
    want: &[(&str, &str)],
) -> Option<&'s Vec<prometheus_parse::HistogramCount>> {
    s.samples
        .iter()
        .filter(|x| x.metric == name)
        .filter(|x| want.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .find_map(|x| match &x.value {
            Value::Histogram(h) => Some(h),
            _ => None,
        })
}

fn total_count(h: &[prometheus_parse::HistogramCount]) -> f64 {
    h.iter()
        .find(|b| b.less_than.is_infinite())
        .map_or(0.0, |b| b.count)
}

#[tokio::test]
async fn genai_histograms_name_the_real_upstream() {
    let stack = setup::stack(Backend::Sqlite).await.unwrap();
    // Real providers answer with the snapshot that served the request.
    let mut openai = SimConfig::new(Protocol::OpenAi, "sim", "sim-secret-sim");
    openai.answer_model = Some("gpt-4o-mini-2024-07-18".into());
    let (_openai, _) = setup::add_provider_with(&stack.cp, openai, &["gpt-4o-mini"]).await;
    let mut anthropic = SimConfig::new(Protocol::Anthropic, "claude", "sim-secret-claude");
    anthropic.answer_model = Some("claude-sonnet-4-5-20250929".into());
    let (_anthropic, version) =
        setup::add_provider_with(&stack.cp, anthropic, &["claude-sonnet-4-5"]).await;
    let dp = DataPlaneHandle::start(data_plane_config("telemetry"), &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;
    let http = reqwest::Client::new();
    for model in ["gpt-4o-mini", "claude-sonnet-4-5"] {
        for stream in [false, true] {
            let mut body = json!({"model": model, "stream": stream,
                "messages": setup::user_message("count the tokens")});
            if stream {
                body["stream_options"] = json!({"include_usage": true});
            }
            let r = http
                .post(dp.url("/v1/chat/completions"))
                .bearer_auth(KEY)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let _ = r.text().await.unwrap();
        }
    }
    let text = dp.metrics().await;
    let s = scrape(&text);
    let chat = ("gen_ai_operation_name", "chat");
    for (provider, model, answered_by) in [
        ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
        (
            "anthropic",
            "claude-sonnet-4-5",
            "claude-sonnet-4-5-20250929",
        ),
    ] {
        let labels = [
            chat,
            ("gen_ai_provider_name", provider),
            ("gen_ai_request_model", model),
            ("gen_ai_response_model", answered_by),
        ];
        let duration = histogram(&s, "gen_ai_server_request_duration_seconds", &labels)
            .unwrap_or_else(|| panic!("{provider} duration in:\n{text}"));
        let bounds: Vec<f64> = duration
            .iter()
            .map(|b| b.less_than)
            .filter(|b| b.is_finite())
            .collect();
        assert_eq!(
            bounds,
            [
                0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96,
                81.92
            ],
            "the conventions' boundaries"
        );
        assert_eq!(
            total_count(duration),
            2.0,
            "{provider}: one plain, one streamed"
        );
        let overhead = histogram(&s, "tokenrouter_gateway_overhead_seconds", &labels).unwrap();
        assert_eq!(total_count(overhead), 2.0);
        let client = histogram(&s, "gen_ai_client_operation_duration_seconds", &labels).unwrap();
        assert_eq!(total_count(client), 2.0);
        let ttft = histogram(&s, "gen_ai_server_time_to_first_token_seconds", &labels).unwrap();
        assert_eq!(total_count(ttft), 1.0, "only the stream has a first token");
        for kind in ["input", "output"] {
            let mut with_type = labels.to_vec();
            with_type.push(("gen_ai_token_type", kind));
            let tokens = histogram(&s, "gen_ai_client_token_usage", &with_type)
                .unwrap_or_else(|| panic!("{provider} {kind} tokens in:\n{text}"));
            assert_eq!(total_count(tokens), 2.0);
            assert!(tokens.iter().any(|b| b.less_than == 67108864.0));
        }
        // The gateway's own time is far below the whole request's.
        let sum = |name: &str| {
            s.samples
                .iter()
                .find(|x| {
                    x.metric == name && x.labels.get("gen_ai_provider_name") == Some(provider)
                })
                .and_then(|x| match x.value {
                    Value::Untyped(v) | Value::Counter(v) | Value::Gauge(v) => Some(v),
                    _ => None,
                })
                .unwrap_or_else(|| panic!("{name} for {provider}"))
        };
        assert!(
            sum("tokenrouter_gateway_overhead_seconds_sum")
                <= sum("gen_ai_server_request_duration_seconds_sum")
        );
    }
    assert!(
        !text.contains("gen_ai_provider_name=\"openai\",gen_ai_request_model=\"claude"),
        "a translated call is never labelled openai"
    );
    assert!(
        !text.contains("tokenrouter_key=") && !text.contains("tokenrouter_user="),
        "no key or user labels unless the operator asks"
    );
    let value = |name: &str| {
        s.samples
            .iter()
            .find(|x| x.metric == name)
            .and_then(|x| match x.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{name} in:\n{text}"))
    };
    assert_eq!(value("tokenrouter_snapshot_version"), version as f64);
    assert!(value("tokenrouter_snapshot_age_seconds") >= 0.0);
    assert_eq!(value("tokenrouter_attempts_total"), 4.0, "one attempt each");
    assert_eq!(value("tokenrouter_fallbacks_total"), 0.0);
}

/// An operator who opts in (`--metrics-labels key,user`) gets the key's name and the end user on
/// the GenAI series; never the key's secret.
#[tokio::test]
async fn key_and_user_labels_are_opt_in() {
    let stack = setup::stack(Backend::Sqlite).await.unwrap();
    let (_sim, version) = setup::add_simulated_provider(&stack.cp, "sim", &["gpt-4o-mini"]).await;
    let mut config = data_plane_config("labelled");
    config.metric_labels = MetricLabels {
        key: true,
        user: true,
    };
    let dp = DataPlaneHandle::start(config, &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;
    let http = reqwest::Client::new();
    for user in ["alice", "bob", "alice"] {
        let r = http
            .post(dp.url("/v1/chat/completions"))
            .bearer_auth(KEY)
            .json(&json!({"model": "gpt-4o-mini", "user": user,
                "messages": setup::user_message("hello")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let text = dp.metrics().await;
    let s = scrape(&text);
    for (user, count) in [("alice", 2.0), ("bob", 1.0)] {
        let labels = [("tokenrouter_key", "test"), ("tokenrouter_user", user)];
        let h = histogram(&s, "gen_ai_server_request_duration_seconds", &labels)
            .unwrap_or_else(|| panic!("{user} in:\n{text}"));
        assert_eq!(total_count(h), count);
    }
    assert!(!text.contains(KEY), "never the key itself");
}
