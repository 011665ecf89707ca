//! OpenAI protocol: auth, non-streaming and streaming shapes, n, max_tokens, tools, models.

use serde_json::{Value, json};

use super::*;

const PATH: &str = "/chat/completions";

fn hello(stream: bool) -> Value {
    json!({"model": "gpt-4o", "stream": stream,
        "messages": [{"role": "system", "content": "be brief"},
                     {"role": "user", "content": "hello there world"}]})
}

fn weather_tools() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"]}}},
        {"type": "function", "function": {"name": "get_time", "parameters": {
        "type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}}}])
}

#[tokio::test]
async fn auth_failures_use_the_openai_envelope() {
    let sim = start(Protocol::OpenAi).await;
    let wrong = post_with(&sim, PATH, &hello(false), auth(Protocol::OpenAi, "nope")).await;
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_api_key");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    // Deliberately quoted back, so gateways that forward upstream error text get caught.
    assert!(body["error"]["message"].as_str().unwrap().contains("nope"));
    let missing = post_with(&sim, PATH, &hello(false), Vec::new()).await;
    assert_eq!(missing.status(), 401);
    let body: Value = missing.json().await.unwrap();
    assert!(body["error"]["message"].is_string());
}

#[tokio::test]
async fn non_streaming_completion_has_the_real_shape() {
    let sim = start(Protocol::OpenAi).await;
    let response = post(&sim, PATH, &hello(false)).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-4o");
    assert!(body["created"].as_u64().unwrap() > 1_600_000_000);
    assert!(body["system_fingerprint"].is_string());
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(choice["logprobs"], Value::Null);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["refusal"], Value::Null);
    let content = "[simulated sim] You said: hello there world";
    assert_eq!(choice["message"]["content"], content);
    let usage = &body["usage"];
    assert_eq!(usage["prompt_tokens"], 5);
    assert_eq!(usage["completion_tokens"], 7);
    assert_eq!(usage["total_tokens"], 12);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 0);
    assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 0);
    assert_eq!(sim.request_count(), 1);
    let recorded = &sim.requests()[0];
    assert_eq!(recorded.path, "/v1/chat/completions");
    assert_eq!(recorded.method, "POST");
    assert_eq!(recorded.body["model"], "gpt-4o");
    assert_eq!(recorded.header("authorization"), Some("Bearer sk-test-key"));
}

#[tokio::test]
async fn streaming_frames_chunks_usage_and_done() {
    let sim = start(Protocol::OpenAi).await;
    let mut request = hello(true);
    request["stream_options"] = json!({"include_usage": true});
    let response = post(&sim, PATH, &request).await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/event-stream"));
    let text = response.text().await.unwrap();
    let events = parse_sse(&text, "\n\n");
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(Event::json).collect();
    let id = &chunks[0]["id"];
    let created = &chunks[0]["created"];
    assert!(
        chunks
            .iter()
            .all(|c| &c["id"] == id && &c["created"] == created)
    );
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "[simulated sim] You said: hello there world");
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    assert_eq!(finish["usage"], Value::Null);
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 7);
    // One word per content chunk, role chunk first.
    assert_eq!(chunks.len(), 1 + 7 + 1 + 1);
}

#[tokio::test]
async fn streaming_without_include_usage_has_no_usage_chunk() {
    let sim = start(Protocol::OpenAi).await;
    let text = post(&sim, PATH, &hello(true)).await.text().await.unwrap();
    let events = parse_sse(&text, "\n\n");
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(Event::json).collect();
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    assert!(
        chunks
            .iter()
            .all(|c| c["choices"].as_array().unwrap().len() == 1)
    );
}

#[tokio::test]
async fn n_choices_and_max_tokens_truncate_with_length() {
    let sim = start(Protocol::OpenAi).await;
    let mut request = hello(false);
    request["n"] = json!(2);
    request["max_completion_tokens"] = json!(3);
    let body: Value = post(&sim, PATH, &request).await.json().await.unwrap();
    let choices = body["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 2);
    for (i, choice) in choices.iter().enumerate() {
        assert_eq!(choice["index"], i);
        assert_eq!(choice["finish_reason"], "length");
        assert_eq!(choice["message"]["content"], "[simulated sim] You");
    }
    assert_eq!(body["usage"]["completion_tokens"], 6);

    request["stream"] = json!(true);
    let text = post(&sim, PATH, &request).await.text().await.unwrap();
    let events = parse_sse(&text, "\n\n");
    let finishes: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(Event::json)
        .filter(|c| !c["choices"][0]["finish_reason"].is_null())
        .map(|c| c["choices"][0].clone())
        .collect();
    assert_eq!(finishes.len(), 2);
    assert_eq!(finishes[1]["index"], 1);
    assert_eq!(finishes[1]["finish_reason"], "length");
}

#[tokio::test]
async fn tools_produce_a_call_then_quote_the_result() {
    let sim = start(Protocol::OpenAi).await;
    let mut request = hello(false);
    request["tools"] = weather_tools();
    let body: Value = post(&sim, PATH, &request).await.json().await.unwrap();
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = &choice["message"]["tool_calls"][0];
    let id = call["id"].as_str().unwrap();
    assert!(id.starts_with("call_") && id.len() == 29, "{id}");
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "example", "days": 1}));

    request["tool_choice"] = json!({"type": "function", "function": {"name": "get_time"}});
    let body: Value = post(&sim, PATH, &request).await.json().await.unwrap();
    let call = &body["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_time");

    request["tool_choice"] = json!("none");
    let body: Value = post(&sim, PATH, &request).await.json().await.unwrap();
    assert_eq!(body["choices"][0]["finish_reason"], "stop");

    let mut follow_up = request.clone();
    follow_up["tool_choice"] = json!("auto");
    let messages = follow_up["messages"].as_array_mut().unwrap();
    messages.push(
        json!({"role": "assistant", "content": null, "tool_calls": [{"id": id,
        "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]}),
    );
    messages.push(json!({"role": "tool", "tool_call_id": id, "content": "sunny, 21C"}));
    let body: Value = post(&sim, PATH, &follow_up).await.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "[simulated sim] Tool result: sunny, 21C"
    );
}

#[tokio::test]
async fn streamed_tool_call_sends_id_and_name_first_then_fragments() {
    let sim = start(Protocol::OpenAi).await;
    let mut request = hello(true);
    request["tools"] = weather_tools();
    let text = post(&sim, PATH, &request).await.text().await.unwrap();
    let events = parse_sse(&text, "\n\n");
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(Event::json).collect();
    let first = &chunks[0]["choices"][0]["delta"];
    assert_eq!(first["role"], "assistant");
    assert_eq!(first["tool_calls"][0]["index"], 0);
    assert_eq!(first["tool_calls"][0]["function"]["name"], "get_weather");
    assert!(first["tool_calls"][0]["id"].is_string());
    let mut arguments = String::new();
    for chunk in &chunks[1..chunks.len() - 1] {
        let call = &chunk["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(call["index"], 0);
        assert!(call.get("id").is_none());
        arguments.push_str(call["function"]["arguments"].as_str().unwrap());
    }
    assert!(chunks.len() > 3, "arguments come in several fragments");
    let args: Value = serde_json::from_str(&arguments).unwrap();
    assert_eq!(args, json!({"city": "example", "days": 1}));
    let finish = chunks.last().unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn validation_errors_and_models() {
    let sim = start(Protocol::OpenAi).await;
    let mut request = hello(false);
    request["bogus_field"] = json!(1);
    let response = post(&sim, PATH, &request).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bogus_field")
    );

    let response = post(&sim, PATH, &json!({"model": "gpt-4o", "messages": []})).await;
    assert_eq!(response.status(), 400);

    let mut request = hello(false);
    request["model"] = json!("o3-mini");
    request["max_tokens"] = json!(5);
    let body: Value = post(&sim, PATH, &request).await.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupported_parameter");

    let response = client()
        .post(format!("{}{PATH}", sim.base_url()))
        .header("authorization", format!("Bearer {KEY}"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");

    let models: Value = client()
        .get(format!("{}/models", sim.base_url()))
        .header("authorization", format!("Bearer {KEY}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["object"], "model");
}
