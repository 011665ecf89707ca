//! Chat completions through a data plane: both modes, the error envelope for every kind of bad
//! input, fallback, in-band stream errors, and in-flight streams across a snapshot swap.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use tokenrouter_proto::v1::{
    FallbackPolicy, FallbackPolicyWrite, FallbackTarget, RoutingRule, RoutingRuleWrite,
};
use tokenrouter_simulators::{Fault, Protocol, SimConfig};
use tokenrouter_tests::{Backend, DataPlaneHandle, chat, data_plane_config};

use crate::setup::{KEY, Stack, add_provider_with, add_simulated_provider, stack, user_message};

async fn one_provider() -> (Stack, tokenrouter_simulators::Simulator, DataPlaneHandle) {
    let stack = stack(Backend::Sqlite).await.unwrap();
    let (sim, version) = add_simulated_provider(&stack.cp, "alpha", &["m1"]).await;
    let dp = DataPlaneHandle::start(data_plane_config("dp"), &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;
    (stack, sim, dp)
}

/// Reads an SSE body into its `data:` payloads.
async fn sse_events(response: reqwest::Response) -> Vec<String> {
    let text = response.text().await.unwrap();
    text.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn answers_in_both_modes_with_extension_fields_and_request_ids() {
    let (_stack, sim, dp) = one_provider().await;
    let http = reqwest::Client::new();
    let response = http
        .post(dp.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .header("x-request-id", "client-chosen-id")
        .json(&json!({"model": "m1", "messages": user_message("hello world"), "temperature": 0.2, "user": "{\"user_id\":\"u-7\",\"task\":\"demo\"}"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "client-chosen-id");
    assert_eq!(response.headers()["x-tokenrouter-provider"], "alpha");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert!(
        body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("hello world")
    );
    assert!(body["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert_eq!(body["provider"], "alpha");
    assert_eq!(body["routing_mode"], "direct");
    assert_eq!(body["x_request_id"], "client-chosen-id");
    assert!(body["latency_ms"].is_u64());
    // The upstream saw a plain user id, our credential, and its own model name.
    let seen = sim.requests().last().cloned().unwrap();
    assert_eq!(seen.body["user"], "u-7");
    assert_eq!(
        seen.header("authorization"),
        Some("Bearer sim-secret-alpha")
    );

    let response = http
        .post(dp.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&json!({"model": "alpha:m1", "stream": true, "stream_options": {"include_usage": true}, "messages": user_message("stream please")}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert!(response.headers().contains_key("x-request-id"));
    let events = sse_events(response).await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert!(chunks.len() >= 3);
    let id = &chunks[0]["id"];
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(&c["id"], id);
        assert_eq!(c["provider"], "alpha");
        assert_eq!(c["routing_mode"], "pinned");
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(text.contains("stream please"), "{text}");
    assert!(
        chunks.last().unwrap()["usage"]["total_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn every_bad_input_gets_the_openai_envelope() {
    let (stack, _sim, _dp) = one_provider().await;
    let mut config = data_plane_config("small");
    config.max_body_bytes = 2048;
    let dp = DataPlaneHandle::start(config, &stack.cp.url(), None).await;
    dp.wait_for_version(stack.cp.cp.snapshot().version).await;
    let http = reqwest::Client::new();
    let post = |body: &'static str, key: Option<&'static str>| {
        let mut r = http
            .post(dp.url("/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(body);
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        r
    };
    let good = r#"{"model":"m1","messages":[{"role":"user","content":"hi"}]}"#;
    let big: &'static str = Box::leak(
        format!(
            r#"{{"model":"m1","messages":[{{"role":"user","content":"{}"}}]}}"#,
            "x".repeat(4096)
        )
        .into_boxed_str(),
    );
    let cases: Vec<(reqwest::RequestBuilder, u16, &str, Option<&str>)> = vec![
        (post(good, None), 401, "invalid_api_key", None),
        (
            post(good, Some("sk-wrong-key")),
            401,
            "invalid_api_key",
            None,
        ),
        (
            post(
                r#"{"model":"nope","messages":[{"role":"user","content":"hi"}]}"#,
                Some(KEY),
            ),
            404,
            "model_not_found",
            Some("model"),
        ),
        (
            post(
                r#"{"model":"ghost:m1","messages":[{"role":"user","content":"hi"}]}"#,
                Some(KEY),
            ),
            404,
            "model_not_found",
            Some("model"),
        ),
        (post("{not json", Some(KEY)), 400, "invalid_json", None),
        (post("", Some(KEY)), 400, "empty_body", None),
        (
            post(
                r#"{"model":"m1","messages":[{"role":"user","content":"hi"}],"temperature":5}"#,
                Some(KEY),
            ),
            400,
            "invalid_value",
            Some("temperature"),
        ),
        (
            post(r#"{"model":"m1"}"#, Some(KEY)),
            400,
            "invalid_value",
            Some("messages"),
        ),
        (post(big, Some(KEY)), 413, "request_too_large", None),
        (
            http.post(dp.url("/v1/chat/completions"))
                .bearer_auth(KEY)
                .header("content-type", "text/plain")
                .body(good),
            400,
            "invalid_content_type",
            None,
        ),
        (
            http.get(dp.url("/v1/nothing-here")).bearer_auth(KEY),
            404,
            "not_found",
            None,
        ),
        (
            http.get(dp.url("/v1/chat/completions")).bearer_auth(KEY),
            405,
            "method_not_allowed",
            None,
        ),
    ];
    for (request, status, code, param) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status);
        assert!(response.headers().contains_key("x-request-id"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        assert!(body["error"]["type"].is_string());
        assert_eq!(body["error"]["param"].as_str(), param, "{body}");
    }
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
    assert_eq!(models["object"], "list");
    assert!(ids.contains(&"m1") && ids.contains(&"alpha:m1"), "{ids:?}");
    let one = http
        .get(dp.url("/v1/models/alpha:m1"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    let missing = http
        .get(dp.url("/v1/models/zzz"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

async fn with_fallback() -> (
    Stack,
    tokenrouter_simulators::Simulator,
    tokenrouter_simulators::Simulator,
    DataPlaneHandle,
) {
    let stack = stack(Backend::Sqlite).await.unwrap();
    let (primary, _) = add_simulated_provider(&stack.cp, "primary", &["m1"]).await;
    let (backup, _) = add_simulated_provider(&stack.cp, "backup", &["other"]).await;
    let mut admin = stack.cp.admin().await;
    let policy = FallbackPolicy {
        name: "to-backup".into(),
        chain: vec![FallbackTarget {
            provider: "backup".into(),
            model: "other".into(),
        }],
        max_attempts: 0,
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
        name: "m1".into(),
        match_model: "m1".into(),
        target_provider: "primary".into(),
        fallback_policy: "to-backup".into(),
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
    (stack, primary, backup, dp)
}

#[tokio::test]
async fn retryable_failures_fall_back_and_others_do_not() {
    let (_stack, primary, backup, dp) = with_fallback().await;
    let http = reqwest::Client::new();
    let request = json!({"model": "m1", "messages": user_message("hi")});
    for fault in [
        Fault::Status {
            status: 503,
            retry_after_secs: None,
        },
        Fault::Garbage,
        Fault::Status {
            status: 429,
            retry_after_secs: Some(1),
        },
    ] {
        primary.push_fault(fault.clone());
        let (status, body) = chat(&http, &dp, KEY, request.clone()).await;
        assert_eq!(status, 200, "{fault:?}: {body}");
        assert_eq!(body["provider"], "backup", "{fault:?}");
        assert_eq!(body["model"], "other");
    }
    // The 429 cooled the primary's credential down for its Retry-After: the next request goes
    // straight to the backup without touching the primary, and after a second the primary is back.
    let primary_seen = primary.request_count();
    let (_, body) = chat(&http, &dp, KEY, request.clone()).await;
    assert_eq!(body["provider"], "backup");
    assert_eq!(
        primary.request_count(),
        primary_seen,
        "a cooling credential is not tried"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, body) = chat(&http, &dp, KEY, request.clone()).await;
    assert_eq!(body["provider"], "primary");
    let before = backup.request_count();
    primary.push_fault(Fault::Status {
        status: 400,
        retry_after_secs: None,
    });
    let (status, body) = chat(&http, &dp, KEY, request.clone()).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "upstream_rejected");
    primary.push_fault(Fault::InsufficientQuota);
    let (status, body) = chat(&http, &dp, KEY, request.clone()).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "insufficient_quota");
    assert_eq!(
        backup.request_count(),
        before,
        "non-retryable failures never move on"
    );

    // Both failing: the last error reaches the client, with Retry-After on a 429.
    primary.push_fault(Fault::Status {
        status: 503,
        retry_after_secs: None,
    });
    backup.push_fault(Fault::Status {
        status: 429,
        retry_after_secs: Some(1),
    });
    let response = http
        .post(dp.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");

    // A stream that fails before its first event also falls back.
    primary.push_fault(Fault::CutAfterChunks(0));
    let response = http
        .post(dp.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&json!({"model": "m1", "stream": true, "messages": user_message("s")}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-tokenrouter-provider"], "backup");
    assert_eq!(
        sse_events(response).await.last().map(String::as_str),
        Some("[DONE]")
    );
}

#[tokio::test]
async fn a_stream_cut_midway_ends_with_an_in_band_error_and_no_duplicate_text() {
    let (_stack, primary, backup, dp) = with_fallback().await;
    let http = reqwest::Client::new();
    for fault in [Fault::CutAfterChunks(2), Fault::ErrorAfterChunks(2)] {
        let before = backup.request_count();
        primary.push_fault(fault.clone());
        let response = http.post(dp.url("/v1/chat/completions")).bearer_auth(KEY).json(&json!({"model": "m1", "stream": true, "messages": user_message("one two three four")})).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let events = sse_events(response).await;
        assert_ne!(
            events.last().map(String::as_str),
            Some("[DONE]"),
            "{fault:?}"
        );
        let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
        assert_eq!(
            last["error"]["code"], "upstream_stream_error",
            "{fault:?}: {last}"
        );
        assert_eq!(
            backup.request_count(),
            before,
            "no fallback after bytes reached the client"
        );
    }
}

#[tokio::test]
async fn upstream_credential_failures_never_leak_the_secret() {
    let stack = stack(Backend::Sqlite).await.unwrap();
    let mut config = SimConfig::new(Protocol::OpenAi, "locked", "the-real-key");
    config.api_key = "sk-canary-upstream-0123456789".into();
    let (sim, version) = add_provider_with(&stack.cp, config, &["m1"]).await;
    // Point the credential at a key the simulator refuses: it answers 401 quoting what it got.
    let mut admin = stack.cp.admin().await;
    let cred = tokenrouter_proto::v1::Credential {
        name: "locked-key".into(),
        provider: "locked".into(),
        secret: "sk-canary-wrong-0123456789".into(),
    };
    let version2 = admin
        .update_credential(tokenrouter_proto::v1::CredentialWrite {
            credential: Some(cred),
            expected_version: version,
        })
        .await
        .unwrap()
        .into_inner()
        .version;
    let dp = DataPlaneHandle::start(data_plane_config("dp"), &stack.cp.url(), None).await;
    dp.wait_for_version(version2).await;
    let response = reqwest::Client::new()
        .post(dp.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&json!({"model": "m1", "messages": user_message("x")}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let text = response.text().await.unwrap();
    assert!(!text.contains("canary"), "{text}");
    assert!(text.contains("upstream_auth_failed"), "{text}");
    assert_eq!(sim.request_count(), 1);
    let status = reqwest::get(dp.admin_url("/status"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!status.contains("canary"));
}

#[tokio::test]
async fn an_in_flight_stream_finishes_on_its_snapshot_while_new_requests_use_the_new_one() {
    let stack = stack(Backend::Sqlite).await.unwrap();
    let mut slow = SimConfig::new(Protocol::OpenAi, "slow", "slow-key");
    slow.chunk_interval = Duration::from_millis(40);
    let (_slow, _) = add_provider_with(&stack.cp, slow, &["m1"]).await;
    let (_fast, version) = add_simulated_provider(&stack.cp, "fast", &["x"]).await;
    let dp = DataPlaneHandle::start(data_plane_config("dp"), &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;
    let http = reqwest::Client::new();
    let response = http
        .post(dp.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&json!({"model": "m1", "stream": true, "messages": user_message("a b c d e f g h")}))
        .send()
        .await
        .unwrap();
    let mut body = response.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("\"provider\":\"slow\""));

    let mut admin = stack.cp.admin().await;
    let rule = RoutingRule {
        name: "m1-fast".into(),
        match_model: "m1".into(),
        target_provider: "fast".into(),
        ..Default::default()
    };
    let v2 = admin
        .create_routing_rule(RoutingRuleWrite {
            rule: Some(rule),
            expected_version: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .version;
    dp.wait_for_version(v2).await;
    let (status, now) = chat(
        &http,
        &dp,
        KEY,
        json!({"model": "m1", "messages": user_message("new")}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(now["provider"], "fast");

    let mut rest = Vec::new();
    while let Some(chunk) = body.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    let rest = String::from_utf8(rest).unwrap();
    assert!(rest.ends_with("data: [DONE]\n\n"), "{rest}");
    assert!(!rest.contains("\"provider\":\"fast\""));
}
