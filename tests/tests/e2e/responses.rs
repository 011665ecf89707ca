//! `POST /v1/responses` end to end: the official OpenAI Python and Node SDKs against two data
//! planes (sharing Redis) in front of OpenAI (native), Anthropic, Gemini, Mistral and DeepSeek
//! simulators (`tests/python/responses.py`, `tests/node/responses.mjs`); then, over plain HTTP,
//! fallback past a failing provider, the firewall's input rules on a Responses body, a stream that
//! breaks ending in `response.failed`, and the usage each request records.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tokenrouter_data_plane::DataPlaneConfig;
use tokenrouter_data_plane::limits::LimiterConfig;
use tokenrouter_proto::v1::Provider;
use tokenrouter_simulators::{Fault, Protocol, SimConfig, Simulator};
use tokenrouter_tests::{Backend, DataPlaneHandle, data_plane_config};

use crate::node::node;
use crate::python::python;
use crate::setup::{KEY, Stack, add_mask_rule, add_provider_full, run_script, stack};

const MODELS: &str = "openai=gpt-4o-mini,anthropic=claude-sonnet-4-5,gemini=gemini-2.5-flash,mistral=mistral-small-latest,deepseek=deepseek-chat";
const THINKING: &str = "anthropic=claude-sonnet-4-5,gemini=gemini-3-pro-preview,deepseek=deepseek-reasoner,openai=o4-mini";

fn serving(models: &[&str]) -> Provider {
    Provider {
        models: models.iter().map(|m| m.to_string()).collect(),
        ..Default::default()
    }
}

/// One simulator per provider kind, each serving its models of [`MODELS`] and [`THINKING`].
async fn providers(stack: &Stack) -> (Vec<Simulator>, u64) {
    let mut sims = Vec::new();
    let mut version = 0;
    for (protocol, name, models) in [
        (Protocol::OpenAi, "oai", &["gpt-4o-mini", "o4-mini"][..]),
        (Protocol::Anthropic, "claude", &["claude-sonnet-4-5"][..]),
        (
            Protocol::Gemini,
            "gem",
            &["gemini-2.5-flash", "gemini-3-pro-preview"][..],
        ),
        (Protocol::Mistral, "mis", &["mistral-small-latest"][..]),
        (
            Protocol::DeepSeek,
            "ds",
            &["deepseek-chat", "deepseek-reasoner"][..],
        ),
    ] {
        let config = SimConfig::new(protocol, name, &format!("k-{name}"));
        let (sim, v) = add_provider_full(&stack.cp, config, serving(models)).await;
        sims.push(sim);
        version = version.max(v);
    }
    (sims, version)
}

/// A data plane keeping stored responses (and the reasoning cache) in Redis under `prefix`.
fn shared(name: &str, url: &str, prefix: &str) -> DataPlaneConfig {
    DataPlaneConfig {
        limits: LimiterConfig {
            redis_url: Some(url.to_string()),
            redis_prefix: prefix.to_string(),
            redis_timeout: Duration::from_secs(2),
            ..LimiterConfig::default()
        },
        ..data_plane_config(name)
    }
}

#[tokio::test]
async fn the_sdks_speak_responses_to_every_provider_and_continue_on_a_second_data_plane() {
    let stack = stack(Backend::Sqlite).await.unwrap();
    let (sims, version) = providers(&stack).await;
    let redis = std::env::var("TOKENROUTER_TEST_REDIS_URL").ok();
    assert!(
        redis.is_some() || std::env::var_os("CI").is_none(),
        "CI must provide Redis"
    );
    let prefix = format!("tre2e:responses:{}:", uuid::Uuid::new_v4().simple());
    let (first, second) = match &redis {
        Some(url) => (
            shared("resp-1", url, &prefix),
            Some(shared("resp-2", url, &prefix)),
        ),
        None => (data_plane_config("resp-1"), None),
    };
    let dp = DataPlaneHandle::start(first, &stack.cp.url(), None).await;
    let dp2 = match second {
        Some(c) => Some(DataPlaneHandle::start(c, &stack.cp.url(), None).await),
        None => None,
    };
    dp.wait_for_version(version).await;
    if let Some(d) = &dp2 {
        d.wait_for_version(version).await;
        // Both data planes reach Redis before the conversation starts.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let env = |dp: &DataPlaneHandle| {
        [
            ("TOKENROUTER_BASE_URL", dp.url("/v1")),
            (
                "TOKENROUTER_BASE_URL_2",
                dp2.as_ref().unwrap_or(dp).url("/v1"),
            ),
            ("TOKENROUTER_API_KEY", KEY.to_string()),
            ("TOKENROUTER_RESPONSES_MODELS", MODELS.to_string()),
            ("TOKENROUTER_THINKING_MODELS", THINKING.to_string()),
        ]
    };
    let tests = Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Some(python) = python() {
        let script = tests.join("python/responses.py");
        run_script(&python, &[&script], env(&dp), "all responses checks passed").await;
    }
    if let Some(node) = node() {
        let script = tests.join("node/responses.mjs");
        run_script(&node, &[&script], env(&dp), "all responses checks passed").await;
    }
    let [oai, claude, _gem, _mis, _ds] = &sims[..] else {
        unreachable!()
    };
    // OpenAI got the Responses API itself; Anthropic its Messages API, thinking sent back.
    assert!(
        oai.requests()
            .iter()
            .any(|r| r.path.ends_with("/responses"))
    );
    let turn2 = claude
        .requests()
        .into_iter()
        .filter(|r| r.body.get("thinking").is_some())
        .find(|r| r.body["messages"].as_array().is_some_and(|m| m.len() >= 3))
        .expect("a second thinking turn reached Anthropic");
    assert_eq!(
        turn2.body["messages"][1]["content"][0]["type"], "thinking",
        "{}",
        turn2.body
    );
}

/// An SSE body's events as (event name, data JSON).
fn events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|f| !f.trim().is_empty())
        .map(|frame| {
            let mut name = String::new();
            let mut data = Value::Null;
            for line in frame.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_string();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).unwrap_or(Value::String(d.into()));
                }
            }
            (name, data)
        })
        .collect()
}

#[tokio::test]
async fn responses_fall_back_pass_the_firewall_and_fail_faithfully() {
    let stack = stack(Backend::Sqlite).await.unwrap();
    let (first, _) = add_provider_full(
        &stack.cp,
        SimConfig::new(Protocol::Anthropic, "a-first", "k-a"),
        serving(&["claude-haiku-4-5"]),
    )
    .await;
    let (next, _) = add_provider_full(
        &stack.cp,
        SimConfig::new(Protocol::Anthropic, "b-next", "k-b"),
        serving(&["claude-haiku-4-5"]),
    )
    .await;
    let (oai, _) = add_provider_full(
        &stack.cp,
        SimConfig::new(Protocol::OpenAi, "oai", "k-o"),
        serving(&["gpt-4o-mini"]),
    )
    .await;
    let version = add_mask_rule(&stack.cp, "emails", "email", "input").await;
    let dp = DataPlaneHandle::start(data_plane_config("resp-fw"), &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;
    let http = reqwest::Client::new();
    let ask = |body: Value| {
        http.post(dp.url("/v1/responses"))
            .bearer_auth(KEY)
            .json(&body)
            .send()
    };

    // The first provider answers 500: the next one answers, as for chat.
    first.push_fault(Fault::Status {
        status: 500,
        retry_after_secs: None,
    });
    let r = ask(json!({"model": "claude-haiku-4-5", "input": "mail jane@example.com", "instructions": "cc bob@example.com"})).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-tokenrouter-provider"], "b-next");
    assert_eq!(r.headers()["x-tokenrouter-attempts"], "2");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["object"], "response");
    assert_eq!(
        body["provider"], "b-next",
        "the extension fields ride on the response object"
    );
    let sent = next.requests().last().unwrap().body.clone();
    let text = sent.to_string();
    assert!(
        text.contains("[EMAIL_") && !text.contains("jane@") && !text.contains("bob@"),
        "{text}"
    );

    // The native path is masked too: OpenAI gets its Responses body with the address replaced.
    let r = ask(json!({"model": "gpt-4o-mini", "input": [{"role": "user", "content": [{"type": "input_text", "text": "to jane@example.com"}]}]})).await.unwrap();
    assert_eq!(r.status(), 200);
    let sent = oai.requests().last().unwrap().clone();
    assert!(sent.path.ends_with("/responses"), "{}", sent.path);
    let text = sent.body["input"].to_string();
    assert!(
        text.contains("[EMAIL_") && !text.contains("jane@"),
        "{text}"
    );

    // The stored turn holds the masked text, so the continuation never carries the address.
    let earlier: Value =
        ask(json!({"model": "claude-haiku-4-5", "input": "I am jane@example.com"}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let id = earlier["id"].as_str().unwrap();
    let r =
        ask(json!({"model": "claude-haiku-4-5", "input": "and then?", "previous_response_id": id}))
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    let answering = if r.headers()["x-tokenrouter-provider"] == "a-first" {
        &first
    } else {
        &next
    };
    let sent = answering.requests().last().unwrap().body.clone();
    assert_eq!(sent["messages"].as_array().unwrap().len(), 3, "{sent}");
    assert!(!sent.to_string().contains("jane@"));

    // A stream that breaks after it started ends in response.failed under the same id.
    next.push_fault(Fault::ErrorAfterChunks(6));
    first.push_fault(Fault::ErrorAfterChunks(6));
    let r =
        ask(json!({"model": "claude-haiku-4-5", "input": "a long story please", "stream": true}))
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let body = r.text().await.unwrap();
    assert!(!body.contains("[DONE]"), "{body}");
    let ev = events(&body);
    let (name, last) = ev.last().unwrap();
    assert_eq!(name, "response.failed", "{body}");
    assert_eq!(last["response"]["status"], "failed");
    let id = &ev[0].1["response"]["id"];
    assert!(
        ev.iter()
            .filter_map(|(_, d)| d.get("response"))
            .all(|r| &r["id"] == id)
    );
    for (name, data) in &ev {
        assert_eq!(
            name,
            data["type"].as_str().unwrap(),
            "the event line names the data's type"
        );
    }

    // Stateless clients (store: false) send the output back: encrypted_content alone carries
    // Anthropic's signed thinking and Gemini 3's signature to a data plane that never saw turn 1
    // (no shared cache), and the simulators refuse a turn 2 without them.
    let (gem, version) = add_provider_full(
        &stack.cp,
        SimConfig::new(Protocol::Gemini, "gem", "k-g"),
        serving(&["gemini-3-pro-preview"]),
    )
    .await;
    dp.wait_for_version(version).await;
    let fresh =
        DataPlaneHandle::start(data_plane_config("resp-fresh"), &stack.cp.url(), None).await;
    fresh.wait_for_version(version).await;
    let tool = json!([{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]);
    for model in ["claude-haiku-4-5", "gemini-3-pro-preview"] {
        let turn1: Value = ask(json!({"model": model, "input": "Weather in Oslo?", "tools": tool, "reasoning": {"effort": "low"},
            "store": false, "include": ["reasoning.encrypted_content"]}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        let output = turn1["output"]
            .as_array()
            .unwrap_or_else(|| panic!("{turn1}"));
        let call = output
            .iter()
            .find(|o| o["type"] == "function_call")
            .unwrap_or_else(|| panic!("{turn1}"));
        assert!(
            output.iter().any(|o| o["encrypted_content"]
                .as_str()
                .is_some_and(|e| e.starts_with("trr1."))),
            "{model}: {turn1}"
        );
        let mut input = vec![json!({"role": "user", "content": "Weather in Oslo?"})];
        input.extend(output.iter().cloned());
        input.push(
            json!({"type": "function_call_output", "call_id": call["call_id"], "output": "snow"}),
        );
        let r = http
            .post(fresh.url("/v1/responses"))
            .bearer_auth(KEY)
            .json(&json!({"model": model, "input": input, "tools": tool, "reasoning": {"effort": "low"}, "store": false}))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let turn2: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "{model}: {turn2}");
        assert!(
            turn2["output"].to_string().contains("snow"),
            "{model}: {turn2}"
        );
    }
    let sent = gem.requests().last().unwrap().body.clone();
    assert!(sent.to_string().contains("thoughtSignature"), "{sent}");
    let claude_turn2 = first
        .requests()
        .into_iter()
        .chain(next.requests())
        .filter(|r| r.body.get("thinking").is_some())
        .find(|r| r.body["messages"].as_array().is_some_and(|m| m.len() == 3))
        .expect("turn 2 reached Anthropic with thinking on");
    assert_eq!(
        claude_turn2.body["messages"][1]["content"][0]["type"], "thinking",
        "{}",
        claude_turn2.body
    );

    // Usage is recorded like chat: the GenAI metrics count Responses requests as chat.
    let metrics = dp.metrics().await;
    assert!(
        metrics.lines().any(|l| l.starts_with("gen_ai_client_token_usage_count{gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"anthropic\",gen_ai_request_model=\"claude-haiku-4-5\"")),
        "{metrics}"
    );
    // Unknown ids, and someone else's, are 404s.
    let r = http
        .get(dp.url("/v1/responses/resp_nope"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["error"]["type"], "invalid_request_error");
}
