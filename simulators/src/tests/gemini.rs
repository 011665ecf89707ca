//! Gemini protocol: header auth and the `?key=` leak check, response shape, CRLF SSE framing,
//! the JSON-array stream, thoughts and signatures, function calls, faults.

use serde_json::{Value, json};

use super::*;
use crate::Fault;

const GENERATE: &str = "/models/gemini-2.5-flash:generateContent";
const STREAM: &str = "/models/gemini-2.5-flash:streamGenerateContent?alt=sse";

fn hello() -> Value {
    json!({"systemInstruction": {"parts": [{"text": "be brief"}]},
        "contents": [{"role": "user", "parts": [{"text": "hello there world"}]}]})
}

fn with_tools(mut request: Value) -> Value {
    request["tools"] = json!([{"functionDeclarations": [{"name": "lookup", "parameters": {
        "type": "OBJECT", "properties": {"q": {"type": "STRING"}, "n": {"type": "NUMBER"}},
        "required": ["q", "n"]}}]}]);
    request
}

#[tokio::test]
async fn auth_failures_and_key_in_url() {
    let sim = start(Protocol::Gemini).await;
    let wrong = post_with(&sim, GENERATE, &hello(), auth(Protocol::Gemini, "nope")).await;
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"]["code"], 401);
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");

    let leaked = format!("{GENERATE}?key={KEY}");
    let response = post_with(&sim, &leaked, &hello(), auth(Protocol::Gemini, KEY)).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    assert!(!body.to_string().contains(KEY), "must not echo the key");
}

#[tokio::test]
async fn non_streaming_response_has_the_real_shape() {
    let sim = start(Protocol::Gemini).await;
    assert!(sim.base_url().ends_with("/v1beta"));
    let body: Value = post(&sim, GENERATE, &hello()).await.json().await.unwrap();
    let candidate = &body["candidates"][0];
    assert_eq!(candidate["content"]["role"], "model");
    assert_eq!(
        candidate["content"]["parts"],
        json!([{"text": "[simulated sim] You said: hello there world"}])
    );
    assert_eq!(candidate["finishReason"], "STOP");
    assert_eq!(candidate["index"], 0);
    let usage = &body["usageMetadata"];
    assert_eq!(usage["promptTokenCount"], 5);
    assert_eq!(usage["candidatesTokenCount"], 7);
    assert_eq!(usage["totalTokenCount"], 12);
    assert_eq!(body["modelVersion"], "gemini-2.5-flash");
    assert!(body["responseId"].is_string());

    let mut request = hello();
    request["generationConfig"] = json!({"maxOutputTokens": 2});
    let body: Value = post(&sim, GENERATE, &request).await.json().await.unwrap();
    assert_eq!(body["candidates"][0]["finishReason"], "MAX_TOKENS");
}

#[tokio::test]
async fn sse_stream_uses_crlf_framing_and_cumulative_usage() {
    let sim = start(Protocol::Gemini).await;
    let text = post(&sim, STREAM, &hello()).await.text().await.unwrap();
    assert!(!text.contains("[DONE]"));
    let chunks: Vec<Value> = parse_sse(&text, "\r\n\r\n")
        .iter()
        .map(Event::json)
        .collect();
    assert_eq!(chunks.len(), 7);
    let text: String = chunks
        .iter()
        .map(|c| {
            c["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(text, "[simulated sim] You said: hello there world");
    for (i, chunk) in chunks.iter().enumerate() {
        assert_eq!(chunk["usageMetadata"]["candidatesTokenCount"], i + 1);
        assert_eq!(chunk["usageMetadata"]["promptTokenCount"], 5);
        let finish = &chunk["candidates"][0]["finishReason"];
        assert_eq!(finish.is_null(), i + 1 < chunks.len());
    }
}

#[tokio::test]
async fn stream_without_alt_sse_is_a_json_array() {
    let sim = start(Protocol::Gemini).await;
    let path = "/models/gemini-2.5-flash:streamGenerateContent";
    let response = post(&sim, path, &hello()).await;
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let array: Vec<Value> = response.json().await.unwrap();
    assert_eq!(array.len(), 7);
}

#[tokio::test]
async fn thoughts_and_function_calls_with_signatures() {
    let sim = start(Protocol::Gemini).await;
    let mut request = with_tools(hello());
    request["generationConfig"] = json!({"thinkingConfig": {"includeThoughts": true}});
    let body: Value = post(&sim, GENERATE, &request).await.json().await.unwrap();
    let parts = &body["candidates"][0]["content"]["parts"];
    assert_eq!(parts[0]["thought"], true);
    assert!(parts[0]["text"].is_string());
    assert_eq!(parts[1]["functionCall"]["name"], "lookup");
    assert_eq!(
        parts[1]["functionCall"]["args"],
        json!({"q": "example", "n": 1})
    );
    assert!(parts[1]["functionCall"].get("id").is_none());
    assert!(parts[1]["thoughtSignature"].is_string());
    assert!(
        body["usageMetadata"]["thoughtsTokenCount"]
            .as_u64()
            .unwrap()
            > 0
    );

    let text = post(&sim, STREAM, &request).await.text().await.unwrap();
    let chunks: Vec<Value> = parse_sse(&text, "\r\n\r\n")
        .iter()
        .map(Event::json)
        .collect();
    assert_eq!(
        chunks[0]["candidates"][0]["content"]["parts"][0]["thought"],
        true
    );
    let last = chunks.last().unwrap();
    let part = &last["candidates"][0]["content"]["parts"][0];
    assert_eq!(
        part["functionCall"]["args"],
        json!({"q": "example", "n": 1})
    );
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");

    let mut follow_up = with_tools(hello());
    let contents = follow_up["contents"].as_array_mut().unwrap();
    contents.push(json!({"role": "model", "parts": [parts[1].clone()]}));
    contents.push(
        json!({"role": "user", "parts": [{"functionResponse": {"name": "lookup",
        "response": {"content": "42 results"}}}]}),
    );
    let body: Value = post(&sim, GENERATE, &follow_up).await.json().await.unwrap();
    assert_eq!(
        body["candidates"][0]["content"]["parts"][0]["text"],
        "[simulated sim] Tool result: 42 results"
    );

    let mut unsigned = follow_up.clone();
    unsigned["contents"][1]["parts"][0]
        .as_object_mut()
        .unwrap()
        .remove("thoughtSignature");
    let path = "/models/gemini-3-pro-preview:generateContent";
    assert_eq!(post(&sim, path, &unsigned).await.status(), 400);
    assert_eq!(post(&sim, GENERATE, &unsigned).await.status(), 200);

    let mut none = with_tools(hello());
    none["toolConfig"] = json!({"functionCallingConfig": {"mode": "NONE"}});
    let body: Value = post(&sim, GENERATE, &none).await.json().await.unwrap();
    assert!(body["candidates"][0]["content"]["parts"][0]["text"].is_string());
}

#[tokio::test]
async fn faults_and_errors_use_gemini_shapes() {
    let sim = start(Protocol::Gemini).await;
    sim.push_fault(Fault::Status {
        status: 429,
        retry_after_secs: Some(34),
    });
    let response = post(&sim, GENERATE, &hello()).await;
    assert_eq!(response.status(), 429);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
    let details = body["error"]["details"].as_array().unwrap();
    assert!(details.iter().any(|d| d["retryDelay"] == "34s"));

    sim.push_fault(Fault::MalformedChunk);
    let text = post(&sim, STREAM, &hello()).await.text().await.unwrap();
    let events: Vec<&str> = text.split("\r\n\r\n").filter(|e| !e.is_empty()).collect();
    assert!(serde_json::from_str::<Value>(&events[1][6..]).is_err());
    assert_eq!(events.len(), 8);

    let mut request = hello();
    request["bogus"] = json!(true);
    let body: Value = post(&sim, GENERATE, &request).await.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Unknown name")
    );

    let response = post(&sim, "/models/gemini-2.5-flash:predict", &hello()).await;
    assert_eq!(response.status(), 404);
}
