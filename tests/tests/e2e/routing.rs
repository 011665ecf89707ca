//! Routing against simulated providers: auto modes pick what they should given set latencies,
//! prices and quality; rules match on keys, headers, metadata and features; keys are limited to
//! their models; usage reaches the control plane.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokenrouter_proto::v1::*;
use tokenrouter_simulators::{Protocol, SimConfig, Simulator};
use tokenrouter_tests::{Backend, DataPlaneHandle, chat, data_plane_config};

use crate::setup::{KEY, Stack, add_provider_full, stack, usage_once, user_message};

fn entry(name: &str, price: f64, quality: u32, caps: &[&str]) -> ModelEntry {
    ModelEntry {
        name: name.into(),
        kind: "openai".into(),
        model: name.into(),
        input_per_mtok: price,
        output_per_mtok: price,
        context_window: 100_000,
        max_output: 4096,
        capabilities: caps.iter().map(|c| c.to_string()).collect(),
        quality,
        quality_source: "test".into(),
        ..Default::default()
    }
}

/// Three providers: `fast` (no latency, pricey, mediocre), `cheap` (150 ms, cheapest, no tools) and
/// `smart` (300 ms, mid price, best quality).
pub(crate) async fn three_providers() -> (Stack, Vec<Simulator>, DataPlaneHandle) {
    let stack = stack(Backend::Sqlite).await.unwrap();
    let mut admin = stack.cp.admin().await;
    for e in [
        entry("fast-m", 10.0, 50, &["tools"]),
        entry("cheap-m", 0.1, 40, &[]),
        entry("smart-m", 5.0, 95, &["tools"]),
    ] {
        admin
            .create_model(ModelWrite {
                model: Some(e),
                expected_version: 0,
            })
            .await
            .unwrap();
    }
    let mut sims = Vec::new();
    let mut version = 0;
    for (name, model, latency) in [
        ("fast", "fast-m", 0),
        ("cheap", "cheap-m", 150),
        ("smart", "smart-m", 300),
    ] {
        let mut config = SimConfig::new(Protocol::OpenAi, name, &format!("k-{name}"));
        config.fixed_latency = Duration::from_millis(latency);
        let (sim, v) = add_provider_full(
            &stack.cp,
            config,
            Provider {
                models: vec![model.into()],
                ..Default::default()
            },
        )
        .await;
        sims.push(sim);
        version = v;
    }
    let dp = DataPlaneHandle::start(data_plane_config("dp"), &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;
    (stack, sims, dp)
}

pub(crate) async fn provider_for(
    http: &reqwest::Client,
    dp: &DataPlaneHandle,
    body: Value,
) -> (String, Value) {
    let (status, answer) = chat(http, dp, KEY, body).await;
    assert_eq!(status, 200, "{answer}");
    (answer["provider"].as_str().unwrap().to_string(), answer)
}

#[tokio::test]
async fn auto_modes_pick_by_price_quality_speed_and_blend() {
    let (_stack, _sims, dp) = three_providers().await;
    let http = reqwest::Client::new();
    let ask =
        |model: &str| json!({"model": model, "messages": user_message("hi"), "max_tokens": 100});

    let (p, answer) = provider_for(&http, &dp, ask("auto:cost")).await;
    assert_eq!(p, "cheap");
    assert_eq!(answer["routing"]["mode"], "auto:cost");
    assert!(
        answer["routing"]["reason"]
            .as_str()
            .unwrap()
            .contains("price")
    );
    assert_eq!(answer["routing"]["runners_up"].as_array().unwrap().len(), 2);
    assert!(answer["cost_usd"].as_f64().unwrap() > 0.0);
    assert_eq!(
        provider_for(&http, &dp, ask("auto:quality")).await.0,
        "smart"
    );

    // Tools rule out the cheap model, which cannot call them.
    let mut with_tools = ask("auto:cost");
    with_tools["tools"] =
        json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]);
    assert_eq!(provider_for(&http, &dp, with_tools).await.0, "smart");

    // Measure everyone, then auto:fast prefers the one that answers first.
    for model in ["fast:fast-m", "cheap:cheap-m", "smart:smart-m"] {
        for _ in 0..2 {
            provider_for(&http, &dp, ask(model)).await;
        }
    }
    for _ in 0..5 {
        let (p, answer) = provider_for(&http, &dp, ask("auto:fast")).await;
        assert_eq!(p, "fast", "{}", answer["routing"]);
    }
    let (p, answer) = provider_for(&http, &dp, ask("auto:balance")).await;
    assert_eq!(p, "cheap", "{}", answer["routing"]);
    assert!(
        answer["routing"]["reason"]
            .as_str()
            .unwrap()
            .contains("blend")
    );

    // The listing shows the modes and what each model can do.
    let models: Value = http
        .get(dp.url("/v1/models"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    for mode in [
        "auto:fast",
        "auto:balance",
        "auto:cost",
        "auto:quality",
        "fast:fast-m",
    ] {
        assert!(ids.contains(&mode), "{ids:?}");
    }
    let smart = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "smart-m")
        .unwrap();
    assert_eq!(smart["capabilities"], json!(["tools"]));

    // A pinned provider that cannot honour a parameter says which and where.
    let mut pinned = ask("cheap:cheap-m");
    pinned["tools"] = json!([{"type": "function", "function": {"name": "f"}}]);
    let (status, body) = chat(&http, &dp, KEY, pinned).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "tools");
    assert_eq!(body["error"]["code"], "unsupported_parameter");
    assert!(body["error"]["message"].as_str().unwrap().contains("cheap"));
}

#[tokio::test]
async fn rules_match_keys_headers_metadata_and_features_and_keys_are_limited() {
    let (stack, _sims, dp) = three_providers().await;
    let mut admin = stack.cp.admin().await;
    let limited = admin
        .create_api_key(ApiKeyCreate {
            name: "limited".into(),
            key: "sk-limited-key-1".into(),
            allowed_models: vec!["auto:*".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let rules = [
        RoutingRule {
            name: "by-header".into(),
            priority: 1,
            match_model: "x".into(),
            match_headers: vec![KeyGlob {
                key: "X-Team".into(),
                glob: "search-*".into(),
            }],
            target_provider: "smart".into(),
            target_model: "smart-m".into(),
            ..Default::default()
        },
        RoutingRule {
            name: "by-meta".into(),
            priority: 2,
            match_model: "x".into(),
            match_metadata: vec![KeyGlob {
                key: "environment".into(),
                glob: "prod".into(),
            }],
            mode: "auto:cost".into(),
            ..Default::default()
        },
        RoutingRule {
            name: "tools".into(),
            priority: 3,
            match_model: "x".into(),
            match_has_tools: "yes".into(),
            target_provider: "fast".into(),
            target_model: "fast-m".into(),
            ..Default::default()
        },
        RoutingRule {
            name: "deny-secret".into(),
            priority: 4,
            match_model: "secret-*".into(),
            deny: true,
            ..Default::default()
        },
        RoutingRule {
            name: "split".into(),
            priority: 5,
            match_model: "x".into(),
            targets: vec![
                WeightedTarget {
                    provider: "fast".into(),
                    model: "fast-m".into(),
                    weight: 1,
                },
                WeightedTarget {
                    provider: "smart".into(),
                    model: "smart-m".into(),
                    weight: 1,
                },
            ],
            ..Default::default()
        },
    ];
    let mut version = limited.version;
    for r in rules {
        version = admin
            .create_routing_rule(RoutingRuleWrite {
                rule: Some(r),
                expected_version: 0,
            })
            .await
            .unwrap()
            .into_inner()
            .version;
    }
    dp.wait_for_version(version).await;
    let http = reqwest::Client::new();
    let base = json!({"model": "x", "messages": user_message("hi")});

    let answer: Value = http
        .post(dp.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .header("x-team", "search-eu")
        .json(&base)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["provider"], "smart");
    assert_eq!(answer["routing_mode"], "rule:by-header");

    let mut meta = base.clone();
    meta["user"] = json!("{\"user_id\":\"u1\",\"environment\":\"prod\"}");
    let (p, answer) = provider_for(&http, &dp, meta).await;
    assert_eq!(
        (p.as_str(), answer["routing"]["mode"].as_str()),
        ("cheap", Some("rule:by-meta"))
    );

    let mut tools = base.clone();
    tools["tools"] = json!([{"type": "function", "function": {"name": "f"}}]);
    assert_eq!(provider_for(&http, &dp, tools).await.0, "fast");

    let (status, body) = chat(
        &http,
        &dp,
        KEY,
        json!({"model": "secret-model", "messages": user_message("x")}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("request_denied"))
    );

    let mut seen = std::collections::HashSet::new();
    for _ in 0..40 {
        seen.insert(provider_for(&http, &dp, base.clone()).await.0);
    }
    assert_eq!(
        seen.len(),
        2,
        "weighted targets share the traffic: {seen:?}"
    );

    let (status, body) = chat(
        &http,
        &dp,
        "sk-limited-key-1",
        json!({"model": "fast-m", "messages": user_message("x")}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("model_not_allowed"))
    );
    let (status, _) = chat(
        &http,
        &dp,
        "sk-limited-key-1",
        json!({"model": "auto:cost", "messages": user_message("x")}),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn usage_reaches_the_control_plane_with_metadata_cost_and_failures() {
    let (stack, _sims, dp) = three_providers().await;
    let http = reqwest::Client::new();
    let meta = json!({"model": "auto:cost", "messages": user_message("bill me"), "user": "{\"user_id\":\"u-42\",\"task\":\"invoice\",\"environment\":\"prod\"}"});
    provider_for(&http, &dp, meta).await;
    let stream =
        json!({"model": "cheap:cheap-m", "stream": true, "messages": user_message("stream bill")});
    let text = http
        .post(dp.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&stream)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"));
    let (status, _) = chat(
        &http,
        &dp,
        KEY,
        json!({"model": "nope", "messages": user_message("x")}),
    )
    .await;
    assert_eq!(status, 404);

    let mut admin = stack.cp.admin().await;
    let report = usage_once(&mut admin, "requested_model", 3).await;
    let billed = report
        .recent
        .iter()
        .find(|r| r.requested_model == "auto:cost")
        .expect("the auto:cost request");
    assert_eq!(
        (
            billed.provider.as_str(),
            billed.model.as_str(),
            billed.status
        ),
        ("cheap", "cheap-m", 200)
    );
    assert_eq!(billed.user_id, "u-42");
    let metadata: Value = serde_json::from_str(&billed.metadata_json).unwrap();
    assert_eq!(metadata["task"], "invoice");
    assert!(billed.cost_usd > 0.0 && billed.completion_tokens > 0);
    assert_eq!(billed.routing_mode, "auto:cost");
    let streamed = report
        .recent
        .iter()
        .find(|r| r.requested_model == "cheap:cheap-m")
        .unwrap();
    assert!(
        streamed.stream && streamed.completed && streamed.prompt_tokens > 0,
        "{streamed:?}"
    );
    let failed = report
        .recent
        .iter()
        .find(|r| r.requested_model == "nope")
        .unwrap();
    assert_eq!(failed.status, 404);
    let row = report.rows.iter().find(|r| r.group == "auto:cost").unwrap();
    assert_eq!(row.requests, 1);
    let by_key = admin
        .get_usage(UsageQuery {
            group_by: "api_key".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_key.rows[0].group, "test");
    assert!(by_key.rows[0].failures >= 1);
}

/// `tokenrouter serve` hands usage to the control plane in-process (no gRPC): records are stored
/// through the same store, and what is still queued when the data plane stops is delivered before
/// `serve` returns (a batch waits up to a second otherwise, so without the final flush this fails).
#[tokio::test]
async fn in_process_usage_is_stored_and_flushed_at_shutdown() {
    use std::sync::Arc;
    use tokenrouter_data_plane::LocalUsage;

    let Some(stack) = stack(Backend::Sqlite).await else {
        return;
    };
    let (_sim, _) = crate::setup::add_simulated_provider(&stack.cp, "local", &["m-local"]).await;
    let cp = stack.cp.cp.clone();
    let mut config = data_plane_config("local-usage");
    config.local_usage = Some(LocalUsage(Arc::new(move |records| {
        let cp = cp.clone();
        Box::pin(async move { cp.record_usage(records).await.map_err(|e| e.to_string()) })
    })));
    let mut dp = DataPlaneHandle::start(config, &stack.cp.url(), None).await;
    dp.wait_until("ready", |s| s.is_ready()).await;
    let http = reqwest::Client::new();
    for _ in 0..3 {
        let (status, _) = chat(
            &http,
            &dp,
            KEY,
            json!({"model": "m-local", "messages": user_message("hi")}),
        )
        .await;
        assert_eq!(status, 200);
    }
    let stopping = Instant::now();
    dp.shutdown().await;
    // The reporter is told to flush, not left to time out (`usage_report::FINAL_FLUSH`, 5 s).
    assert!(
        stopping.elapsed() < Duration::from_secs(3),
        "{:?}",
        stopping.elapsed()
    );
    let report = stack
        .cp
        .admin()
        .await
        .get_usage(UsageQuery {
            group_by: "provider".into(),
            recent: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.recent.len(), 3, "{report:?}");
    assert!(
        report
            .recent
            .iter()
            .all(|r| r.provider == "local" && r.status == 200)
    );
}
