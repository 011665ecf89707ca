//! OpenAI Responses API errors: the 400s of invalid requests (OpenAI's messages, params and
//! codes), the 404 of the dialects without the API, and every fault kind on `/v1/responses`.

use std::time::Duration;

use serde_json::{Value, json};

use super::responses::{PATH, create, events, hello};
use super::*;
use crate::Fault;

#[tokio::test]
async fn invalid_requests_get_openai_400s() {
    let sim = start(Protocol::OpenAi).await;
    let cases = [
        (json!({"input": "x"}), "model", "missing_required_parameter"),
        (
            json!({"model": "gpt-4o"}),
            "input",
            "missing_required_parameter",
        ),
        (
            json!({"model": "gpt-4o", "input": 5}),
            "input",
            "invalid_type",
        ),
        (
            json!({"model": "gpt-4o", "input": []}),
            "input",
            "empty_array",
        ),
        (
            json!({"model": "gpt-4o", "input": "x", "stream": "yes"}),
            "stream",
            "invalid_type",
        ),
        (
            json!({"model": "gpt-4o", "input": "x", "messages": []}),
            "messages",
            "unknown_parameter",
        ),
        (
            json!({"model": "gpt-4o", "input": [{"role": "tool", "content": "x"}]}),
            "input[0].role",
            "invalid_value",
        ),
        (
            json!({"model": "gpt-4o", "input": [{"role": "assistant",
            "content": [{"type": "input_text", "text": "x"}]}]}),
            "input[0].content[0]",
            "invalid_value",
        ),
        (
            json!({"model": "gpt-4o", "input": [{"type": "reasoning", "id": "rs_1", "summary": [],
            "status": "completed"}]}),
            "input[0].status",
            "unknown_parameter",
        ),
        (
            json!({"model": "gpt-4o", "input": "x", "tool_choice": {"type": "function"}}),
            "tool_choice.name",
            "missing_required_parameter",
        ),
        (
            json!({"model": "gpt-4o", "input": "x", "text": {"format": {"type": "json_schema",
            "schema": {}}}}),
            "text.format.name",
            "missing_required_parameter",
        ),
    ];
    for (request, param, code) in cases {
        let (status, body) = create(&sim, &request).await;
        assert_eq!(status, 400, "{request}");
        assert_eq!(body["error"]["param"], param, "{request}: {body}");
        assert_eq!(body["error"]["code"], code, "{request}: {body}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }
    // Chat's nested tool shape.
    let mut request = hello();
    request["tools"] = json!([{"type": "function", "function": {"name": "f", "parameters": {}}}]);
    let (status, body) = create(&sim, &request).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": {"message": "Missing required parameter: 'tools[0].name'.",
            "type": "invalid_request_error", "param": "tools[0].name",
            "code": "missing_required_parameter"}})
    );
    let (_, body) = create(&sim, &json!({"model": "gpt-4o", "input": "x", "foo": 1})).await;
    assert_eq!(body["error"]["message"], "Unknown parameter: 'foo'.");
    let orphan = json!({"model": "gpt-4o", "input": [
        {"type": "function_call_output", "call_id": "call_x", "output": "1"}]});
    let (status, body) = create(&sim, &orphan).await;
    assert_eq!(status, 400);
    let message = "No tool call found for function call output with call_id call_x.";
    assert_eq!(body["error"]["message"], message);
}

#[tokio::test]
async fn only_openai_serves_responses() {
    for protocol in [Protocol::Mistral, Protocol::DeepSeek] {
        let sim = start(protocol).await;
        assert_eq!(
            post(&sim, PATH, &hello()).await.status(),
            404,
            "{protocol:?}"
        );
    }
}

#[tokio::test]
async fn faults_apply_to_responses() {
    let sim = start(Protocol::OpenAi).await;
    sim.push_fault(Fault::Status {
        status: 429,
        retry_after_secs: Some(3),
    });
    let response = post(&sim, PATH, &hello()).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "3");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");

    let mut request = hello();
    request["stream"] = json!(true);
    sim.push_fault(Fault::ErrorAfterChunks(4));
    let events = events(&sim, &request).await;
    assert_eq!(events.len(), 5);
    let failed = &events[4];
    assert_eq!(failed["type"], "response.failed");
    assert_eq!(failed["sequence_number"], 4);
    assert_eq!(failed["response"]["status"], "failed");
    assert_eq!(failed["response"]["error"]["code"], "server_error");
    assert!(failed["response"]["error"]["message"].is_string());

    sim.push_fault(Fault::CutAfterChunks(3));
    let mut response = post(&sim, PATH, &request).await;
    let (text, open) = read_events(&mut response, "\n\n", 100, Duration::from_secs(5)).await;
    assert!(!open, "stream must end");
    assert_eq!(text.matches("\n\n").count(), 3);
    assert!(!text.contains("response.completed"));

    sim.push_fault(Fault::MalformedChunk);
    let text = post(&sim, PATH, &request).await.text().await.unwrap();
    let bad = text.split("\n\n").nth(1).unwrap();
    assert!(serde_json::from_str::<Value>(bad.split("data: ").nth(1).unwrap()).is_err());
    assert!(text.contains("response.completed"));
    assert_eq!(sim.request_count(), 4);
    assert!(sim.requests().iter().all(|r| r.path == "/v1/responses"));
}
