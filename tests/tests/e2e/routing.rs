//! Routing against simulated providers: auto modes pick what they should given set latencies,
//! prices and quality; rules match on keys, headers, metadata and features; keys are limited to
//! their models; breakers open; timeouts move on; hedging wins; disconnects cancel upstream.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use tokenrouter_proto::v1::*;
use tokenrouter_simulators::{Fault, Protocol, SimConfig, Simulator};
use tokenrouter_tests::{Backend, DataPlaneHandle, chat, data_plane_config};

use crate::setup::{KEY, Stack, add_provider_full, add_simulated_provider, stack, user_message};

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
async fn three_providers() -> (Stack, Vec<Simulator>, DataPlaneHandle) {
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

async fn provider_for(
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
async fn a_failing_provider_opens_its_breaker_and_stops_receiving_traffic() {
    let stack = stack(Backend::Sqlite).await.unwrap();
    let (bad, _) = add_simulated_provider(&stack.cp, "a-bad", &["m"]).await;
    let (_good, version) = add_simulated_provider(&stack.cp, "b-good", &["m"]).await;
    let dp = DataPlaneHandle::start(data_plane_config("dp"), &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;
    bad.set_fault(Some(Fault::Status {
        status: 500,
        retry_after_secs: None,
    }));
    let http = reqwest::Client::new();
    for _ in 0..12 {
        let (p, _) = provider_for(
            &http,
            &dp,
            json!({"model": "m", "messages": user_message("x")}),
        )
        .await;
        assert_eq!(p, "b-good");
    }
    assert_eq!(
        bad.request_count(),
        5,
        "the breaker opened after 5 consecutive failures"
    );
    let status: Value = reqwest::get(dp.url("/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let open: Vec<&Value> = status["breakers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["breaker"] == "open")
        .collect();
    assert_eq!(open.len(), 1, "{status}");
    assert!(
        open[0]["candidate"]
            .as_str()
            .unwrap()
            .starts_with("a-bad/m/")
    );
    let metrics = reqwest::get(dp.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("tokenrouter_breaker_state{candidate=\"a-bad/m/a-bad-key\"} 2"),
        "{metrics}"
    );
}

async fn with_timeouts(
    first_token_ms: u32,
    idle_ms: u32,
    total_ms: u32,
) -> (Stack, Simulator, Simulator, DataPlaneHandle) {
    let stack = stack(Backend::Sqlite).await.unwrap();
    let slow = Provider {
        models: vec!["m".into()],
        first_token_timeout_ms: first_token_ms,
        idle_timeout_ms: idle_ms,
        timeout_ms: total_ms,
        ..Default::default()
    };
    let (primary, _) = add_provider_full(
        &stack.cp,
        SimConfig::new(Protocol::OpenAi, "a-primary", "kp"),
        slow,
    )
    .await;
    let (backup, version) = add_simulated_provider(&stack.cp, "b-backup", &["m"]).await;
    let dp = DataPlaneHandle::start(data_plane_config("dp"), &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;
    (stack, primary, backup, dp)
}

#[tokio::test]
async fn timeouts_move_on_before_the_first_byte_and_end_streams_after_it() {
    let (_stack, primary, _backup, dp) = with_timeouts(300, 300, 1000).await;
    let http = reqwest::Client::new();
    let stream =
        json!({"model": "m", "stream": true, "messages": user_message("one two three four five")});

    // No first token in time (headers late, then content late): the backup answers.
    for fault in [
        Fault::DelayFirstByte(Duration::from_secs(3)),
        Fault::StallAfterChunks(0),
    ] {
        primary.push_fault(fault.clone());
        let started = Instant::now();
        let response = http
            .post(dp.url("/v1/chat/completions"))
            .bearer_auth(KEY)
            .json(&stream)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.headers()["x-tokenrouter-provider"],
            "b-backup",
            "{fault:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{fault:?} took {:?}",
            started.elapsed()
        );
        let text = response.text().await.unwrap();
        assert!(text.ends_with("data: [DONE]\n\n"));
    }

    // Silence after content: the stream ends with an in-band timeout error, no [DONE], no retry.
    primary.push_fault(Fault::StallAfterChunks(2));
    let response = http
        .post(dp.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&stream)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-tokenrouter-provider"], "a-primary");
    let text = response.text().await.unwrap();
    assert!(!text.contains("[DONE]"));
    assert!(text.contains("upstream_timeout"), "{text}");

    // Total time for a non-streaming answer.
    primary.push_fault(Fault::DelayFirstByte(Duration::from_secs(3)));
    let started = Instant::now();
    let (status, body) = chat(
        &http,
        &dp,
        KEY,
        json!({"model": "a-primary:m", "messages": user_message("x")}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (504, Some("upstream_timeout"))
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn hedging_starts_the_next_candidate_and_cancels_the_slow_one() {
    let stack = stack(Backend::Sqlite).await.unwrap();
    let (slow, _) = add_simulated_provider(&stack.cp, "slow", &["x"]).await;
    let (_quick, _) = add_simulated_provider(&stack.cp, "quick", &["y"]).await;
    let mut admin = stack.cp.admin().await;
    let policy = FallbackPolicy {
        name: "hedge".into(),
        chain: vec![FallbackTarget {
            provider: "quick".into(),
            model: "y".into(),
        }],
        hedge_after_ms: 150,
        ..Default::default()
    };
    admin
        .create_fallback_policy(FallbackPolicyWrite {
            policy: Some(policy),
            expected_version: 0,
        })
        .await
        .unwrap();
    let rule = RoutingRule {
        name: "h".into(),
        match_model: "h".into(),
        target_provider: "slow".into(),
        target_model: "x".into(),
        fallback_policy: "hedge".into(),
        ..Default::default()
    };
    let version = admin
        .create_routing_rule(RoutingRuleWrite {
            rule: Some(rule),
            expected_version: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .version;
    let dp = DataPlaneHandle::start(data_plane_config("dp"), &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;
    slow.push_fault(Fault::DelayFirstByte(Duration::from_secs(5)));
    let started = Instant::now();
    let http = reqwest::Client::new();
    let response = http
        .post(dp.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&json!({"model": "h", "stream": true, "messages": user_message("x")}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-tokenrouter-provider"], "quick");
    assert_eq!(response.headers()["x-tokenrouter-attempts"], "2");
    assert!(response.text().await.unwrap().ends_with("data: [DONE]\n\n"));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    wait_for(
        || slow.cancelled_count() == 1,
        "the slow request is cancelled",
    )
    .await;
}

async fn wait_for(condition: impl Fn() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_the_upstream_and_usage_is_recorded() {
    let stack = stack(Backend::Sqlite).await.unwrap();
    let mut config = SimConfig::new(Protocol::OpenAi, "talker", "kt");
    config.chunk_interval = Duration::from_millis(100);
    let (sim, version) = add_provider_full(
        &stack.cp,
        config,
        Provider {
            models: vec!["m".into()],
            ..Default::default()
        },
    )
    .await;
    let dp = DataPlaneHandle::start(data_plane_config("dp"), &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;
    let http = reqwest::Client::new();
    let response = http
        .post(dp.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&json!({"model": "m", "stream": true, "messages": user_message("a b c d e f g h i j k l m n o p")}))
        .send()
        .await
        .unwrap();
    let mut body = response.bytes_stream();
    body.next().await.unwrap().unwrap();
    drop(body);
    wait_for(
        || sim.cancelled_count() == 1,
        "the simulator sees the cancel",
    )
    .await;

    provider_for(
        &http,
        &dp,
        json!({"model": "m", "messages": user_message("count me")}),
    )
    .await;
    let metrics = reqwest::get(dp.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("tokenrouter_requests_incomplete_total{key=\"test\",provider=\"talker\",model=\"m\",status=\"200\"} 1"), "{metrics}");
    assert!(
        metrics.contains(
            "tokenrouter_completion_tokens_total{key=\"test\",provider=\"talker\",model=\"m\""
        ),
        "{metrics}"
    );
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
    let deadline = Instant::now() + Duration::from_secs(10);
    let report = loop {
        let report = admin
            .get_usage(UsageQuery {
                group_by: "requested_model".into(),
                recent: 10,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        if report.recent.len() >= 3 {
            break report;
        }
        assert!(Instant::now() < deadline, "usage never arrived: {report:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
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

#[tokio::test]
async fn credentials_share_the_load_and_a_rate_limited_one_rests() {
    let stack = stack(Backend::Sqlite).await.unwrap();
    let (sim, _) = add_provider_full(
        &stack.cp,
        SimConfig::new(Protocol::OpenAi, "multi", ""),
        Provider {
            models: vec!["m".into()],
            ..Default::default()
        },
    )
    .await;
    let mut admin = stack.cp.admin().await;
    let mut version = 0;
    for name in ["multi-a", "multi-b"] {
        let credential = Credential {
            name: name.into(),
            provider: "multi".into(),
            secret: format!("secret-{name}"),
        };
        version = admin
            .create_credential(CredentialWrite {
                credential: Some(credential),
                expected_version: 0,
            })
            .await
            .unwrap()
            .into_inner()
            .version;
    }
    let dp = DataPlaneHandle::start(data_plane_config("dp"), &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;
    let http = reqwest::Client::new();
    let ask = json!({"model": "m", "messages": user_message("x")});
    for _ in 0..30 {
        provider_for(&http, &dp, ask.clone()).await;
    }
    let used = |sim: &Simulator| {
        let mut seen = std::collections::HashMap::new();
        for r in sim.requests() {
            *seen
                .entry(r.header("authorization").unwrap_or_default().to_string())
                .or_insert(0) += 1;
        }
        seen
    };
    let seen = used(&sim);
    for name in ["multi-a", "multi-b"] {
        assert!(
            seen.get(&format!("Bearer secret-{name}"))
                .copied()
                .unwrap_or(0)
                >= 5,
            "both credentials carry traffic: {seen:?}"
        );
    }
    // A 429 on one credential sends the next requests to the others while it rests.
    sim.push_fault(Fault::Status {
        status: 429,
        retry_after_secs: Some(30),
    });
    let (status, _) = chat(&http, &dp, KEY, ask.clone()).await;
    assert_eq!(
        status, 429,
        "a single-provider request reports the rate limit"
    );
    let rested = sim
        .requests()
        .last()
        .unwrap()
        .header("authorization")
        .unwrap()
        .to_string();
    let before = sim.request_count();
    for _ in 0..10 {
        provider_for(&http, &dp, ask.clone()).await;
    }
    let after: Vec<String> = sim.requests()[before..]
        .iter()
        .map(|r| r.header("authorization").unwrap().to_string())
        .collect();
    assert!(
        !after.contains(&rested),
        "the rate-limited credential rests"
    );
}

#[tokio::test]
async fn a_models_own_timeouts_override_its_providers() {
    let stack = stack(Backend::Sqlite).await.unwrap();
    let mut admin = stack.cp.admin().await;
    let entry = ModelEntry {
        name: "slow-thinker".into(),
        kind: "openai".into(),
        model: "thinker".into(),
        first_token_timeout_ms: 300,
        ..Default::default()
    };
    admin
        .create_model(ModelWrite {
            model: Some(entry),
            expected_version: 0,
        })
        .await
        .unwrap();
    let (primary, _) = add_simulated_provider(&stack.cp, "a-primary", &["thinker", "other"]).await;
    let (_backup, version) =
        add_simulated_provider(&stack.cp, "b-backup", &["thinker", "other"]).await;
    let dp = DataPlaneHandle::start(data_plane_config("dp"), &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;
    let http = reqwest::Client::new();
    primary.push_fault(Fault::DelayFirstByte(Duration::from_secs(3)));
    let started = Instant::now();
    let response = http
        .post(dp.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&json!({"model": "thinker", "stream": true, "messages": user_message("x")}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-tokenrouter-provider"], "b-backup");
    assert!(started.elapsed() < Duration::from_secs(2));
    let (status, body) = chat(
        &http,
        &dp,
        KEY,
        json!({"model": "ghost:thinker", "messages": user_message("x")}),
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("a-primary, b-backup"),
        "{body}"
    );
}
