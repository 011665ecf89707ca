//! Mistral and DeepSeek quirks on top of the OpenAI format.

use serde_json::{Value, json};

use super::*;

const PATH: &str = "/chat/completions";

fn request(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream,
        "messages": [{"role": "user", "content": "hello there world"}]})
}

fn tools() -> Value {
    json!([{"type": "function", "function": {"name": "weather", "parameters": {
        "type": "object", "properties": {"location": {"type": "string"}},
        "required": ["location"]}}}])
}

fn data_chunks(text: &str) -> Vec<Value> {
    let events = parse_sse(text, "\n\n");
    assert_eq!(events.last().unwrap().data, "[DONE]");
    events[..events.len() - 1].iter().map(Event::json).collect()
}

#[tokio::test]
async fn auth_failures_for_mistral_and_deepseek() {
    for protocol in [Protocol::Mistral, Protocol::DeepSeek] {
        let sim = start(protocol).await;
        let body = request("m", false);
        let response = post_with(&sim, PATH, &body, auth(protocol, "wrong")).await;
        assert_eq!(response.status(), 401);
        let error: Value = response.json().await.unwrap();
        assert!(error["error"]["message"].is_string());
    }
}

#[tokio::test]
async fn mistral_usage_on_finish_chunk_and_whole_tool_calls() {
    let sim = start(Protocol::Mistral).await;
    let body: Value = post(&sim, PATH, &request("mistral-small-latest", false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["id"].as_str().unwrap().len(), 32);
    assert!(body.get("system_fingerprint").is_none());
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 3, "completion_tokens": 7, "total_tokens": 10})
    );

    let text = post(&sim, PATH, &request("mistral-small-latest", true))
        .await
        .text()
        .await
        .unwrap();
    let chunks = data_chunks(&text);
    let finish = chunks.last().unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish["usage"]["completion_tokens"], 7);
    assert!(
        chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c.get("usage").is_none())
    );

    let mut with_tools = request("mistral-small-latest", true);
    with_tools["tools"] = tools();
    let text = post(&sim, PATH, &with_tools).await.text().await.unwrap();
    let chunks = data_chunks(&text);
    assert_eq!(chunks.len(), 2);
    let call_chunk = &chunks[1];
    assert_eq!(call_chunk["choices"][0]["finish_reason"], "tool_calls");
    assert!(call_chunk["usage"].is_object());
    let call = &call_chunk["choices"][0]["delta"]["tool_calls"][0];
    assert!(call.get("index").is_none());
    let id = call["id"].as_str().unwrap();
    assert!(id.len() == 9 && id.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(call["function"]["arguments"], "{\"location\":\"example\"}");
}

#[tokio::test]
async fn mistral_rejects_foreign_tool_call_ids_and_unknown_fields() {
    let sim = start(Protocol::Mistral).await;
    let mut body = request("mistral-small-latest", false);
    let messages = body["messages"].as_array_mut().unwrap();
    messages.push(
        json!({"role": "assistant", "content": null, "tool_calls": [{
        "id": "call_0fypS1hVX", "type": "function",
        "function": {"name": "weather", "arguments": "{}"}}]}),
    );
    messages.push(json!({"role": "tool", "tool_call_id": "call_0fypS1hVX", "content": "sunny"}));
    let response = post(&sim, PATH, &body).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["code"], "3280");
    assert_eq!(error["type"], "invalid_function_call");

    let mut body = request("mistral-small-latest", false);
    body["seed"] = json!(7);
    assert_eq!(post(&sim, PATH, &body).await.status(), 422);
}

#[tokio::test]
async fn deepseek_keep_alive_usage_on_finish_and_reasoning() {
    let sim = start(Protocol::DeepSeek).await;
    let text = post(&sim, PATH, &request("deepseek-chat", true))
        .await
        .text()
        .await
        .unwrap();
    assert!(text.starts_with(": keep-alive\n\n"));
    let chunks = data_chunks(&text);
    let finish = chunks.last().unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish["usage"]["prompt_cache_miss_tokens"], 3);
    assert!(
        chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c["usage"].is_null())
    );
    assert!(
        chunks
            .iter()
            .all(|c| c["choices"][0]["delta"].get("reasoning_content").is_none())
    );

    let text = post(&sim, PATH, &request("deepseek-reasoner", true))
        .await
        .text()
        .await
        .unwrap();
    let chunks = data_chunks(&text);
    let first_content = chunks
        .iter()
        .position(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        })
        .unwrap();
    let reasoning: String = chunks[..first_content]
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["reasoning_content"].as_str())
        .collect();
    assert!(reasoning.starts_with("Simulated reasoning"));
    let finish = chunks.last().unwrap();
    assert!(
        finish["usage"]["completion_tokens_details"]["reasoning_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );

    let body: Value = post(&sim, PATH, &request("deepseek-reasoner", false))
        .await
        .json()
        .await
        .unwrap();
    let message = &body["choices"][0]["message"];
    assert_eq!(message["reasoning_content"], reasoning);
    assert_eq!(
        message["content"],
        "[simulated sim] You said: hello there world"
    );
}

#[tokio::test]
async fn deepseek_reasoner_requires_reasoning_passed_back_on_tool_turns() {
    let sim = start(Protocol::DeepSeek).await;
    let mut body = request("deepseek-reasoner", false);
    body["tools"] = tools();
    let first: Value = post(&sim, PATH, &body).await.json().await.unwrap();
    let message = first["choices"][0]["message"].clone();
    assert_eq!(first["choices"][0]["finish_reason"], "tool_calls");
    let id = message["tool_calls"][0]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("call_00_"));

    let mut follow_up = body.clone();
    let messages = follow_up["messages"].as_array_mut().unwrap();
    messages.push(message.clone());
    messages.push(json!({"role": "tool", "tool_call_id": id, "content": "sunny"}));
    assert_eq!(post(&sim, PATH, &follow_up).await.status(), 200);

    follow_up["messages"][1]
        .as_object_mut()
        .unwrap()
        .remove("reasoning_content");
    let response = post(&sim, PATH, &follow_up).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("reasoning_content")
    );
}
