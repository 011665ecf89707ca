//! Resilience against misbehaving providers: breakers open, timeouts move on, hedging wins,
//! disconnects cancel upstream, credentials share load and rest after 429s, per-model timeouts.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use tokenrouter_proto::v1::*;
use tokenrouter_simulators::{Fault, Protocol, SimConfig, Simulator};
use tokenrouter_tests::{Backend, DataPlaneHandle, chat, data_plane_config};

use crate::routing::provider_for;
use crate::setup::{
    KEY, Stack, add_provider_full, add_simulated_provider, stack, usage_once, user_message,
};

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
    let status: Value = reqwest::get(dp.admin_url("/status"))
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
    let metrics = dp.metrics().await;
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

/// Model `h` routed to provider `slow` (model `x`) under a policy that hedges to `quick` (model
/// `y`) after `hedge_after_ms`; a data plane serving it. Returns what must stay alive: the stack,
/// the simulators (`slow`, `quick`) and the data plane.
async fn hedged(hedge_after_ms: u32) -> (Stack, Simulator, Simulator, DataPlaneHandle) {
    let stack = stack(Backend::Sqlite).await.unwrap();
    let (slow, _) = add_simulated_provider(&stack.cp, "slow", &["x"]).await;
    let (quick, _) = add_simulated_provider(&stack.cp, "quick", &["y"]).await;
    let mut admin = stack.cp.admin().await;
    let policy = FallbackPolicy {
        name: "hedge".into(),
        chain: vec![FallbackTarget {
            provider: "quick".into(),
            model: "y".into(),
        }],
        hedge_after_ms,
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
    (stack, slow, quick, dp)
}

#[tokio::test]
async fn hedging_starts_the_next_candidate_and_cancels_the_slow_one() {
    let (_stack, slow, _quick, dp) = hedged(150).await;
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

/// One request, one usage record (issue 11): two streams both won by the hedge while the first
/// candidate holds its stream open without a token. The losers are attempts of their requests,
/// not requests: no usage record and no `requests_total` for the slow provider.
#[tokio::test]
async fn a_hedged_request_is_one_usage_record_whoever_wins() {
    let (stack, slow, _quick, dp) = hedged(100).await;
    let mut admin = stack.cp.admin().await;
    let http = reqwest::Client::new();
    for _ in 0..2 {
        // Headers at once, then nothing: the slow attempt is waiting for its first token.
        slow.push_fault(Fault::StallAfterChunks(0));
        let response = http
            .post(dp.url("/v1/chat/completions"))
            .bearer_auth(KEY)
            .json(&json!({"model": "h", "stream": true, "messages": user_message("x")}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["x-tokenrouter-provider"], "quick");
        assert!(response.text().await.unwrap().ends_with("data: [DONE]\n\n"));
    }
    wait_for(
        || slow.cancelled_count() == 2,
        "both slow attempts are cancelled",
    )
    .await;
    usage_once(&mut admin, "provider", 2).await;
    // Anything recorded late (a loser's drop) has had time to arrive too.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let report = usage_once(&mut admin, "provider", 2).await;
    let by_provider: Vec<_> = report
        .rows
        .iter()
        .map(|r| (r.group.as_str(), r.requests))
        .collect();
    assert_eq!(by_provider, [("quick", 2)], "{report:?}");
    assert!(report.recent.iter().all(|r| r.attempts == 2), "{report:?}");
    let metrics = dp.metrics().await;
    assert!(
        !metrics.contains("provider=\"slow\""),
        "the losing attempts were counted as requests: {metrics}"
    );
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
    let metrics = dp.metrics().await;
    assert!(metrics.contains("tokenrouter_requests_incomplete_total{key=\"test\",provider=\"talker\",model=\"m\",status=\"200\"} 1"), "{metrics}");
    assert!(
        metrics.contains(
            "tokenrouter_completion_tokens_total{key=\"test\",provider=\"talker\",model=\"m\""
        ),
        "{metrics}"
    );
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
