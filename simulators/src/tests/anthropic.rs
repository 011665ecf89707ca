//! Anthropic protocol: auth and version header, message shape, event stream, thinking, tools,
//! validation and faults in Anthropic's error shape.

use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::Fault;

const PATH: &str = "/messages";

fn hello(stream: bool) -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 2048, "stream": stream,
        "system": "be brief", "messages": [{"role": "user", "content": "hello there world"}]})
}

fn with_tools(mut request: Value) -> Value {
    request["tools"] = json!([{"name": "get_weather", "description": "weather",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"},
        "metric": {"type": "boolean"}}, "required": ["city", "metric"]}}]);
    request
}

#[tokio::test]
async fn auth_and_version_failures_use_the_anthropic_shape() {
    let sim = start(Protocol::Anthropic).await;
    let wrong = post_with(&sim, PATH, &hello(false), auth(Protocol::Anthropic, "nope")).await;
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().contains_key("request-id"));
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");

    let no_version = vec![("x-api-key", KEY.to_string())];
    let response = post_with(&sim, PATH, &hello(false), no_version).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");

    let bearer = auth(Protocol::OpenAi, KEY);
    assert_eq!(
        post_with(&sim, PATH, &hello(false), bearer).await.status(),
        401
    );
}

#[tokio::test]
async fn non_streaming_message_has_the_real_shape() {
    let sim = start(Protocol::Anthropic).await;
    let response = post(&sim, PATH, &hello(false)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(body["model"], "claude-sonnet-4-5");
    assert_eq!(
        body["content"],
        json!([{"type": "text", "text": "[simulated sim] You said: hello there world"}])
    );
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["stop_sequence"], Value::Null);
    assert_eq!(body["usage"]["input_tokens"], 5);
    assert_eq!(body["usage"]["output_tokens"], 7);
    assert_eq!(body["usage"]["cache_read_input_tokens"], 0);
    assert_eq!(body["usage"]["cache_creation_input_tokens"], 0);
}

#[tokio::test]
async fn stream_has_every_event_in_order() {
    let sim = start(Protocol::Anthropic).await;
    let text = post(&sim, PATH, &hello(true)).await.text().await.unwrap();
    let events = parse_sse(&text, "\n\n");
    for event in &events {
        assert_eq!(event.name.as_deref(), event.json()["type"].as_str());
    }
    let names: Vec<&str> = events.iter().map(|e| e.name.as_deref().unwrap()).collect();
    assert_eq!(
        &names[..3],
        &["message_start", "content_block_start", "ping"]
    );
    assert_eq!(
        &names[names.len() - 3..],
        &["content_block_stop", "message_delta", "message_stop"]
    );
    let text: String = events
        .iter()
        .filter(|e| e.name.as_deref() == Some("content_block_delta"))
        .map(|e| {
            let delta = e.json()["delta"].clone();
            assert_eq!(delta["type"], "text_delta");
            delta["text"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(text, "[simulated sim] You said: hello there world");
    let start = events[0].json();
    assert_eq!(start["message"]["content"], json!([]));
    assert_eq!(start["message"]["usage"]["input_tokens"], 5);
    let delta = events[events.len() - 2].json();
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 7);
}

#[tokio::test]
async fn thinking_block_comes_first_with_a_signature() {
    let sim = start(Protocol::Anthropic).await;
    let mut request = hello(true);
    request["thinking"] = json!({"type": "enabled", "budget_tokens": 1024});
    let text = post(&sim, PATH, &request).await.text().await.unwrap();
    let events: Vec<Value> = parse_sse(&text, "\n\n").iter().map(Event::json).collect();
    assert_eq!(events[1]["content_block"]["type"], "thinking");
    let deltas: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "content_block_delta" && e["index"] == 0)
        .map(|e| &e["delta"])
        .collect();
    assert!(deltas.len() > 2);
    assert!(
        deltas[..deltas.len() - 1]
            .iter()
            .all(|d| d["type"] == "thinking_delta")
    );
    let signature = deltas.last().unwrap();
    assert_eq!(signature["type"], "signature_delta");
    assert!(signature["signature"].as_str().unwrap().len() >= 64);
    let text_start = events
        .iter()
        .find(|e| e["type"] == "content_block_start" && e["index"] == 1)
        .unwrap();
    assert_eq!(text_start["content_block"]["type"], "text");

    request["stream"] = json!(false);
    let body: Value = post(&sim, PATH, &request).await.json().await.unwrap();
    assert_eq!(body["content"][0]["type"], "thinking");
    assert!(body["content"][0]["signature"].is_string());
    assert_eq!(body["content"][1]["type"], "text");
}

#[tokio::test]
async fn tool_use_then_tool_result() {
    let sim = start(Protocol::Anthropic).await;
    let body: Value = post(&sim, PATH, &with_tools(hello(false)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["stop_reason"], "tool_use");
    let block = &body["content"][0];
    assert_eq!(block["type"], "tool_use");
    assert!(block["id"].as_str().unwrap().starts_with("toolu_"));
    assert_eq!(block["input"], json!({"city": "example", "metric": true}));

    let mut follow_up = with_tools(hello(false));
    let messages = follow_up["messages"].as_array_mut().unwrap();
    messages.push(json!({"role": "assistant", "content": [block]}));
    messages.push(json!({"role": "user", "content": [{"type": "tool_result",
        "tool_use_id": block["id"], "content": "sunny"}]}));
    let body: Value = post(&sim, PATH, &follow_up).await.json().await.unwrap();
    assert_eq!(
        body["content"][0]["text"],
        "[simulated sim] Tool result: sunny"
    );
    assert_eq!(body["stop_reason"], "end_turn");

    let text = post(&sim, PATH, &with_tools(hello(true)))
        .await
        .text()
        .await
        .unwrap();
    let events: Vec<Value> = parse_sse(&text, "\n\n").iter().map(Event::json).collect();
    let start = &events[1];
    assert_eq!(start["content_block"]["type"], "tool_use");
    assert_eq!(start["content_block"]["input"], json!({}));
    let json: String = events
        .iter()
        .filter(|e| e["delta"]["type"] == "input_json_delta")
        .map(|e| e["delta"]["partial_json"].as_str().unwrap().to_string())
        .collect();
    let args: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(args, json!({"city": "example", "metric": true}));
    assert_eq!(events[events.len() - 2]["delta"]["stop_reason"], "tool_use");
}

#[tokio::test]
async fn validation_rules_of_the_messages_api() {
    let sim = start(Protocol::Anthropic).await;
    let mut request = hello(false);
    request.as_object_mut().unwrap().remove("max_tokens");
    let body: Value = post(&sim, PATH, &request).await.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_tokens")
    );

    let mut request = hello(false);
    request["messages"][0]["name"] = json!("bob");
    let response = post(&sim, PATH, &request).await;
    assert_eq!(response.status(), 400);

    let mut request = with_tools(hello(false));
    request["thinking"] = json!({"type": "enabled", "budget_tokens": 1024});
    let messages = request["messages"].as_array_mut().unwrap();
    messages.push(
        json!({"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1",
        "name": "get_weather", "input": {}}]}),
    );
    messages.push(json!({"role": "user", "content": [{"type": "tool_result",
        "tool_use_id": "toolu_1", "content": "sunny"}]}));
    assert_eq!(
        post(&sim, PATH, &request).await.status(),
        400,
        "thinking dropped"
    );

    let mut request = hello(false);
    request["max_tokens"] = json!(3);
    request["stop_sequences"] = json!(["there"]);
    let body: Value = post(&sim, PATH, &request).await.json().await.unwrap();
    assert_eq!(body["stop_reason"], "max_tokens");
    request["max_tokens"] = json!(100);
    let body: Value = post(&sim, PATH, &request).await.json().await.unwrap();
    assert_eq!(body["stop_reason"], "stop_sequence");
    assert_eq!(body["stop_sequence"], "there");
}

#[tokio::test]
async fn faults_use_anthropic_shapes() {
    let sim = start(Protocol::Anthropic).await;
    sim.push_fault(Fault::Status {
        status: 529,
        retry_after_secs: Some(3),
    });
    let response = post(&sim, PATH, &hello(false)).await;
    assert_eq!(response.status(), 529);
    assert_eq!(response.headers()["retry-after"], "3");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "overloaded_error");

    sim.push_fault(Fault::ErrorAfterChunks(4));
    let text = post(&sim, PATH, &hello(true)).await.text().await.unwrap();
    let events = parse_sse(&text, "\n\n");
    assert_eq!(events.len(), 5);
    assert_eq!(events[4].name.as_deref(), Some("error"));
    assert_eq!(events[4].json()["error"]["type"], "overloaded_error");

    sim.push_fault(Fault::CutAfterChunks(2));
    let mut response = post(&sim, PATH, &hello(true)).await;
    let (text, open) = read_events(&mut response, "\n\n", 50, Duration::from_secs(5)).await;
    assert!(!open);
    assert!(!text.contains("message_stop"));
}
